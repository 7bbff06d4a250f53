from rest_framework import renderers


class JSONRenderer(renderers.JSONRenderer):
    """JSON with an explicit charset, as the contract's ``application/json; charset=utf-8``."""

    charset = "utf-8"
