"""``elbia functions invoke``: the event sent, the log decoded, the exit status when the function raised."""

import base64
import io
import json

import click
import httpx
import pytest
from elbia_cli.errors import ExitCode
from elbia_cli.invocations import UNDECODABLE_LOG, Invocation, decode_log, read_event, render
from elbia_cli.output import Printer


def response(body: dict, **headers) -> httpx.Response:
    return httpx.Response(200, json=body, headers={name.replace("_", "-"): value for name, value in headers.items()})


def test_the_event_comes_from_text_a_file_or_standard_input(tmp_path):
    event_file = tmp_path / "event.json"
    event_file.write_text('{"from": "file"}')
    assert read_event(None, io.StringIO()) == b"{}"
    assert read_event('{"a": [1, 2]}', io.StringIO()) == b'{"a": [1, 2]}'
    assert read_event(f"@{event_file}", io.StringIO()) == b'{"from": "file"}'
    assert read_event("@-", io.StringIO('"from stdin"')) == b'"from stdin"'


@pytest.mark.parametrize("data", ["{not json", "@/no/such/file.json"])
def test_a_bad_event_is_a_usage_error(data):
    with pytest.raises(click.BadParameter):
        read_event(data, io.StringIO())


def test_log_result_is_base64_of_utf8_and_a_cut_character_does_not_break_it():
    text = "START\nhello, wörld\nEND\n"
    assert decode_log(base64.b64encode(text.encode()).decode()) == text
    cut = base64.b64encode("é".encode()[1:] + b"tail").decode()  # the last 4 KB began inside a character
    assert decode_log(cut) == "\ufffdtail"
    assert decode_log("not base64!") == UNDECODABLE_LOG
    assert decode_log(None) is None


def test_a_result_prints_the_body_and_exits_0(capsys):
    answer = response(
        {"greeting": "hello"},
        X_Elbia_Invocation_Id="inv_1",
        X_Elbia_Duration_Ms="12",
        X_Elbia_Billed_Duration_Ms="100",
        X_Elbia_Log_Result=base64.b64encode(b"said hello\n").decode(),
    )
    code = render(Printer("table"), Invocation.from_response(answer), show_logs=True)
    out, err = capsys.readouterr()
    assert code == ExitCode.OK
    assert json.loads(out) == {"greeting": "hello"}
    assert "said hello" in err
    assert "inv_1: 12 ms, billed 100 ms" in err


def test_logs_only_when_asked(capsys):
    answer = response({}, X_Elbia_Log_Result=base64.b64encode(b"secret-ish output").decode())
    render(Printer("table"), Invocation.from_response(answer), show_logs=False)
    assert "secret-ish output" not in capsys.readouterr().err


def test_a_function_that_raised_exits_1_with_its_error_and_json_keeps_the_body(capsys):
    error = {"errorType": "ValueError", "errorMessage": "bad input", "trace": ["line 1"]}
    answer = response(error, X_Elbia_Function_Error="Unhandled")
    code = render(Printer("json"), Invocation.from_response(answer), show_logs=False)
    out, err = capsys.readouterr()
    assert code == ExitCode.FAILURE
    assert json.loads(out) == error
    assert "The function raised (Unhandled): ValueError: bad input" in err
