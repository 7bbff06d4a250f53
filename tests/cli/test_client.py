"""The client's pure parts: exit codes, links, challenges, token responses, and the config store."""

import json
import multiprocessing
import stat
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from elbia_cli.api import invalid_token, next_link, renewed, retry_after
from elbia_cli.config import Config, ConfigStore, Context
from elbia_cli.errors import ApiError, AuthError, CliError, ExitCode


def error_response(status: int, code: str, message: str, **headers) -> httpx.Response:
    body = {"error": {"status": status, "code": code, "message": message, "request_id": "req_abc"}}
    return httpx.Response(status, json=body, headers=headers)


@pytest.mark.parametrize(
    ("status", "exit_code"),
    [
        (400, ExitCode.USAGE),
        (401, ExitCode.AUTH),
        (403, ExitCode.AUTH),
        (404, ExitCode.NOT_FOUND),
        (409, ExitCode.FAILURE),
        (429, ExitCode.FAILURE),
        (500, ExitCode.FAILURE),
        (503, ExitCode.FAILURE),
    ],
)
def test_api_errors_carry_the_message_the_request_id_and_an_exit_code(status, exit_code):
    error = ApiError.from_response(error_response(status, "some_code", "Something precise"))
    assert (error.exit_code, error.message, error.request_id) == (exit_code, "Something precise", "req_abc")


def test_field_errors_become_detail_lines_and_a_non_json_error_still_reads():
    body = {
        "error": {
            "status": 400,
            "code": "invalid_request",
            "message": "Invalid JSON in request body",
            "details": {"region": ["'mars-1' is not a valid region."]},
            "request_id": "req_1",
        }
    }
    error = ApiError.from_response(httpx.Response(400, json=body))
    assert error.details == ["region: 'mars-1' is not a valid region."]
    assert error.document() == body
    proxy = ApiError.from_response(httpx.Response(502, text="<html>bad gateway</html>", headers={"X-Request-ID": "r"}))
    assert (proxy.message, proxy.request_id, proxy.exit_code) == ("502 Bad Gateway", "r", ExitCode.FAILURE)


@pytest.mark.parametrize(
    "link",
    [
        '<https://a.test/v1/r?limit=2>; rel="first", <https://a.test/v1/r?limit=2&offset=2>; rel="next"',
        '<https://a.test/v1/r?limit=2&offset=2>; rel="next", <https://a.test/v1/r?limit=2>; rel="first"',
    ],
)
def test_next_link_with_offsets(link):
    assert next_link(httpx.Response(200, headers={"Link": link})) == "https://a.test/v1/r?limit=2&offset=2"


def test_next_link_with_an_opaque_cursor_and_without_next():
    cursor = '<https://a.test/v1/r?limit=2&cursor=eyJrIjpbMSwyXX0%3D>; rel="next"'
    assert next_link(httpx.Response(200, headers={"Link": cursor})).endswith("cursor=eyJrIjpbMSwyXX0%3D")
    last = '<https://a.test/v1/r?limit=2>; rel="first", <https://a.test/v1/r?limit=2>; rel="prev"'
    assert next_link(httpx.Response(200, headers={"Link": last})) is None
    assert next_link(httpx.Response(200)) is None


def test_only_an_invalid_token_challenge_calls_for_renewal():
    refused = error_response(
        401,
        "unauthorized",
        "Invalid or missing API token",
        **{"WWW-Authenticate": 'Bearer realm="elbia", error="invalid_token"'},
    )
    missing = error_response(
        401, "unauthorized", "Invalid or missing API token", **{"WWW-Authenticate": 'Bearer realm="elbia"'}
    )
    scope = error_response(
        403,
        "insufficient_scope",
        "needs resources:read",
        **{"WWW-Authenticate": 'Bearer realm="elbia", error="insufficient_scope"'},
    )
    assert invalid_token(refused)
    assert not invalid_token(missing) and not invalid_token(scope)


def test_retry_after_only_for_429_and_503_with_a_short_wait():
    assert retry_after(httpx.Response(429, headers={"Retry-After": "2"})) == 2
    assert retry_after(httpx.Response(503, headers={"Retry-After": "0"})) == 1
    assert retry_after(httpx.Response(429, headers={"Retry-After": "3600"})) is None
    assert retry_after(httpx.Response(500, headers={"Retry-After": "2"})) is None


def test_a_token_response_rotates_both_tokens_and_records_expiry_and_scopes():
    context = Context(server="http://s", access_token="elb_at_old", refresh_token="elb_rt_old", client_id="elbia-cli")
    now = datetime(2025, 1, 1, tzinfo=UTC)
    token = {
        "access_token": "elb_at_new",
        "refresh_token": "elb_rt_new",
        "expires_in": 3600,
        "scope": "resources:read billing:read",
        "token_type": "Bearer",
    }
    new = renewed(context, token, now=now)
    assert (new.access_token, new.refresh_token) == ("elb_at_new", "elb_rt_new")
    assert new.expires_at == "2025-01-01T01:00:00Z" and new.renewed_at == "2025-01-01T00:00:00Z"
    assert new.scopes == ["resources:read", "billing:read"]
    assert new.expires_soon(now=now + timedelta(minutes=1)) and not new.expires_soon(now=now - timedelta(hours=1))


def test_the_config_is_private_and_replaced_whole(tmp_path):
    store = ConfigStore(tmp_path / "elbia" / "config.json")
    assert store.load() == Config()
    with store.locked() as config:
        config.contexts["default"] = Context(server="http://s", access_token="elb_at_x")
        config.current = "default"
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    assert store.load().context() == ("default", Context(server="http://s", access_token="elb_at_x"))
    assert [path.name for path in store.path.parent.iterdir() if path.name.startswith(".config-")] == []


def test_no_context_is_an_auth_error_and_an_unknown_one_a_usage_error(tmp_path):
    store = ConfigStore(tmp_path / "config.json")
    with pytest.raises(AuthError):
        store.load().context()
    with store.locked() as config:
        config.contexts["work"] = Context(server="http://s", access_token="t")
    with pytest.raises(CliError) as raised:
        store.load().context("home")
    assert raised.value.exit_code == ExitCode.USAGE


def test_a_corrupt_config_says_where_it_is(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(CliError, match=str(path)):
        ConfigStore(path).load()


def _add_numbers(path: str, start: int, count: int) -> None:
    store = ConfigStore(__import__("pathlib").Path(path))
    for number in range(start, start + count):
        with store.locked() as config:  # read, change, write: a lost update would lose a context
            config.contexts[f"c{number}"] = Context(server="http://s", access_token=str(number))


def test_changes_from_several_processes_are_serialised(tmp_path):
    path = str(tmp_path / "elbia" / "config.json")
    processes = [
        multiprocessing.get_context("spawn").Process(target=_add_numbers, args=(path, n * 25, 25)) for n in range(3)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    assert [process.exitcode for process in processes] == [0, 0, 0]
    assert len(json.loads((tmp_path / "elbia" / "config.json").read_text())["contexts"]) == 75
