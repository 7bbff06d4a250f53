"""Helpers for tests of dashboard pages."""


def rows(response) -> int:
    """Rows of the page's table (minus the header row)."""
    return response.content.decode().count("<tr>") - 1
