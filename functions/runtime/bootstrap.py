"""The Python runtime's bootstrap: loads the handler once, then serves invocations until told to stop.

Runs in the sandbox as ``python3.11 -I -S -u -B bootstrap.py CODE_DIR HANDLER`` (standard library only).
Events arrive on fd 3 as ``<length> <request id> <deadline, epoch ms> <working dir>\\n`` followed by the
event's JSON; each answer is one JSON line on fd 4: ``{"ready": ...}`` once, then per invocation
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": {"errorType", "errorMessage", "trace"}}``.
The handler's output (stdout and stderr) is the runner's to collect.
"""

import importlib
import json
import os
import sys
import time
import traceback

EVENTS, RESULTS = 3, 4


class Context:
    """What AWS Lambda's Python runtime passes as ``context``."""

    def __init__(self, request_id: str, deadline_ms: int):
        self.aws_request_id = request_id
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.invoked_function_arn = ""
        self.log_group_name = self.log_stream_name = ""
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def error_document(error: BaseException, error_type: str | None = None) -> dict:
    return {
        "errorType": error_type or type(error).__name__,
        "errorMessage": str(error),
        "trace": traceback.format_exception(error),
    }


def answer(document: dict) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    data = (json.dumps(document, separators=(",", ":"), allow_nan=False) + "\n").encode()
    while data:
        data = data[os.write(RESULTS, data) :]


def read_exactly(count: int) -> bytes:
    chunks = []
    while count:
        chunk = os.read(EVENTS, min(count, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


def read_header() -> list[str]:
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = os.read(EVENTS, 1)
        if not byte:
            raise EOFError
        line += byte
    return line[:-1].decode().split(" ", 3)


def load(code_dir: str, handler: str):
    module_name, _, function_name = handler.rpartition(".")
    sys.path.insert(0, code_dir)
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except SyntaxError as error:
        raise LoadError("Runtime.UserCodeSyntaxError", error) from None
    except ImportError as error:
        raise LoadError("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {error}") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise LoadError("Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'")
    return function


class LoadError(Exception):
    def __init__(self, error_type: str, message):
        super().__init__(str(message))
        self.error_type = error_type


def main() -> None:
    code_dir, handler = sys.argv[1], sys.argv[2]
    try:
        function = load(code_dir, handler)
    except LoadError as error:
        answer({"ready": False, "error": error_document(error, error.error_type)})
        return
    except MemoryError as error:
        answer({"ready": False, "error": error_document(error, "Runtime.OutOfMemory")})
        return
    except BaseException as error:  # the module raised while loading
        answer({"ready": False, "error": error_document(error, "Runtime.InitError")})
        return
    answer({"ready": True})
    while True:
        try:
            length, request_id, deadline_ms, workdir = read_header()
            event = json.loads(read_exactly(int(length)))
        except EOFError:
            return
        os.chdir(workdir)
        try:
            result = function(event, Context(request_id, int(deadline_ms)))
        except MemoryError as error:
            answer({"ok": False, "error": error_document(error, "Runtime.OutOfMemory"), "fatal": True})
            return
        except BaseException as error:  # SystemExit too: the invocation fails, as on AWS
            answer({"ok": False, "error": error_document(error), "fatal": isinstance(error, SystemExit)})
            if isinstance(error, SystemExit):
                return
            continue
        try:
            answer({"ok": True, "result": result})
        except (TypeError, ValueError) as error:
            answer({"ok": False, "error": error_document(error, "Runtime.MarshalError")})


if __name__ == "__main__":
    main()
