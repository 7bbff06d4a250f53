"""Rate limits on the embedded defaults (`make run`: SQLite, no Redis): one budget per token across processes."""

import json

import pytest

from tests.servers import ACCESS_LOG_WITH_PID, call, fire, gunicorn, served_by

pytestmark = pytest.mark.slow


@pytest.fixture
def limited_token(embedded) -> str:
    """A token of the demo account limited to 3 requests a minute."""
    issued = embedded.manage("issue_token", "demo", "--scopes", "resources:read", "--rate-limit", "3/minute", "--json")
    return json.loads(issued)["access_token"]


def test_two_workers_share_one_budget_per_token(embedded, limited_token, tmp_path):
    log = tmp_path / "gunicorn.log"
    with gunicorn(log, *ACCESS_LOG_WITH_PID, cwd=embedded.path, environment=embedded.env) as (port, _):
        answers = [call(port, "GET", "/v1/regions", limited_token) for _ in range(6)]
        # A second burst, all at once, from a token of its own: still exactly its budget.
        other = json.loads(
            embedded.manage("issue_token", "demo", "--scopes", "resources:read", "--rate-limit", "3/minute", "--json")
        )["access_token"]
        burst = fire(12, 6, lambda: call(port, "GET", "/v1/regions", other))

    assert [status for status, _, _ in answers] == [200, 200, 200, 429, 429, 429]
    assert [headers["x-ratelimit-remaining"] for _, headers, _ in answers] == ["2", "1", "0", "0", "0", "0"]
    assert {headers["x-ratelimit-limit"] for _, headers, _ in answers} == {"3"}
    assert answers[3][2]["error"]["code"] == "rate_limited"
    assert sorted(int(h["x-ratelimit-remaining"]) for status, h, _ in burst if status == 200) == [0, 1, 2]
    assert sorted(status for status, _, _ in burst) == [200] * 3 + [429] * 9
    assert len(served_by(log)) == 2  # both worker processes answered: the budget is shared, not per process
