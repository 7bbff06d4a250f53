"""Long work by nature (migrations, reconciliation) runs without the web's statement deadline."""

import pytest
from django.core.management import get_commands
from django.db import connection

from elbia.db.postgresql.base import no_statement_deadline

pytestmark = pytest.mark.django_db


def _statement_timeout() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        return cursor.fetchone()[0]


def test_the_deadlines_are_lifted_inside_and_back_after():
    before = _statement_timeout()
    assert before != "0"
    with no_statement_deadline():
        assert _statement_timeout() == "0"
        assert connection.connection.elbia_wait_timeout is None
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(0.01)")
    assert _statement_timeout() == before
    assert connection.connection.elbia_wait_timeout is not None


def test_migrate_is_the_command_without_the_deadline():
    assert get_commands()["migrate"] == "elbia"
