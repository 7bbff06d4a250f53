"""function_record_executions: last_executed and the resource's last_execution only move forward."""

from datetime import UTC, datetime

import pytest

from functions.executions import function_record_executions
from tests.factories import FunctionFactory

pytestmark = pytest.mark.django_db

EARLY = datetime(2025, 1, 1, 10, 0, tzinfo=UTC)
LATE = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def refreshed(function):
    function.refresh_from_db()
    function.resource.refresh_from_db()
    return function.last_executed, function.resource.last_execution


def test_sets_both_timestamps_from_nothing(account):
    function = FunctionFactory(account=account)
    function_record_executions(account=account, last_executed={function.id: EARLY})
    assert refreshed(function) == (EARLY, EARLY)


def test_never_moves_back(account):
    function = FunctionFactory(account=account)
    function_record_executions(account=account, last_executed={function.id: LATE})
    function_record_executions(account=account, last_executed={function.id: EARLY})
    assert refreshed(function) == (LATE, LATE)


def test_many_functions_in_two_statements(account, django_assert_num_queries):
    functions = [FunctionFactory(account=account) for _ in range(6)]
    moments = {function.id: datetime(2025, 1, 1, index, tzinfo=UTC) for index, function in enumerate(functions)}
    with django_assert_num_queries(4):  # savepoint, two UPDATEs, release
        function_record_executions(account=account, last_executed=moments)
    assert [refreshed(function) for function in functions] == [(moments[f.id], moments[f.id]) for f in functions]


def test_a_resource_ahead_of_its_function_keeps_its_value(account):
    function = FunctionFactory(account=account)
    function.resource.last_execution = LATE
    function.resource.save()
    function_record_executions(account=account, last_executed={function.id: EARLY})
    assert refreshed(function) == (EARLY, LATE)


def test_other_accounts_functions_are_untouched(account, other_user):
    foreign = FunctionFactory(account=other_user.account)
    function_record_executions(account=account, last_executed={foreign.id: LATE})
    assert refreshed(foreign) == (None, None)


def test_nothing_to_record(account, django_assert_num_queries):
    with django_assert_num_queries(0):
        function_record_executions(account=account, last_executed={})
