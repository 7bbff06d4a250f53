"""The local runtime: real Python 3.11 and Node.js 20 executions in the sandbox, warm reuse, and the runner service.

Nothing is mocked: every test runs handlers in real processes. Where the host cannot isolate (no root, no
namespaces) the tests assert what is enforced according to ``host_isolation()``, the runner's own claim:
a claimed enforcement that is missing fails them.
"""

import json
import math
import os
import signal
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.conf import settings

from elbia.errors import Conflict, Unavailable
from functions.code import code_store
from functions.runtime.environments import FunctionSpec, Pool, RuntimeBusy, RuntimeNotLocal, host_isolation
from functions.runtime.runner import runner_secret, runtime_invoke
from functions.starters import starter_archive
from tests.functions.code_archives import zip_of
from tests.functions.factories import FunctionFactory

pytestmark = pytest.mark.slow

PYTHON, NODE = "Python 3.11", "Node.js 20"
ISOLATION = host_isolation()


def spec_of(runtime: str, source: str, *, handler: str | None = None, **config) -> FunctionSpec:
    """A function whose handler file holds ``source`` (``app.py`` or ``index.mjs``), its code stored."""
    handler = handler or ("app.handler" if runtime == PYTHON else "index.handler")
    path = "app.py" if runtime == PYTHON else "index.mjs"
    sha256, _ = code_store(zip_of({path: source}))
    # 10 s: generous, so a busy machine does not turn a slow start into a timeout
    values = {"public_id": "FUNC_0000000001", "name": "probe", "memory_mb": 128, "timeout_s": 10, "region": "eu-west-1"}
    return FunctionSpec(runtime=runtime, handler=handler, code_sha256=sha256, **(values | config))


def invoke(pool: Pool, spec: FunctionSpec, event=None):
    return pool.invoke(spec, json.dumps(event if event is not None else {}).encode(), uuid.uuid4().hex)


def gone(pid: int) -> bool:
    """The process no longer runs (a zombie waiting for its reaper counts as gone)."""
    try:
        return "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


@pytest.fixture
def pool():
    pool = Pool(max_environments=6, idle_seconds=60)
    yield pool
    pool.close()


SOURCES = {
    "echo": {
        PYTHON: (
            "import os\n"
            "def handler(event, context):\n"
            "    return {'event': event, 'name': context.function_name, 'memory': context.memory_limit_in_mb,\n"
            "            'request_id': context.aws_request_id, 'remaining': context.get_remaining_time_in_millis(),\n"
            "            'pid': os.getpid(), 'cwd': os.getcwd(), 'uid': os.getuid()}\n"
        ),
        NODE: (
            "export const handler = async (event, context) => ({ event, name: context.functionName,\n"
            "  memory: Number(context.memoryLimitInMB), request_id: context.awsRequestId,\n"
            "  remaining: context.getRemainingTimeInMillis(), pid: process.pid, cwd: process.cwd(),\n"
            "  uid: process.getuid() });\n"
        ),
    },
    "raise": {
        PYTHON: "def handler(event, context):\n    raise ValueError('the answer is ' + str(event['n']))\n",
        NODE: "export const handler = async (event) => { throw new TypeError(`the answer is ${event.n}`); };\n",
    },
    "print": {
        PYTHON: (
            "def handler(event, context):\n"
            "    for n in range(event['lines']):\n"
            "        print('line', n)\n"
            "    return 'done'\n"
        ),
        NODE: (
            "export const handler = async (event) => {\n"
            "  for (let n = 0; n < event.lines; n++) console.log('line', n);\n"
            "  return 'done';\n"
            "};\n"
        ),
    },
    # A child of its own, and a grandchild that leaves the process group (setsid), then sleep past the timeout.
    "sleep": {
        PYTHON: (
            "import subprocess, time\n"
            "def handler(event, context):\n"
            "    child = subprocess.Popen(['sleep', '300'])\n"
            "    escaped = subprocess.Popen(['setsid', 'sleep', '301'])\n"
            "    print('children', child.pid, escaped.pid, flush=True)\n"
            "    time.sleep(300)\n"
        ),
        NODE: (
            "import { spawn } from 'node:child_process';\n"
            "export const handler = async () => {\n"
            "  const child = spawn('sleep', ['300']);\n"
            "  const escaped = spawn('setsid', ['sleep', '301']);\n"
            "  console.log('children', child.pid, escaped.pid);\n"
            "  await new Promise((resolve) => setTimeout(resolve, 300000));\n"
            "};\n"
        ),
    },
    "allocate": {
        PYTHON: "def handler(event, context):\n    hog = bytearray(event['mb'] * 1024 * 1024)\n    return len(hog)\n",
        NODE: "export const handler = async (event) => Buffer.alloc(event.mb * 1024 * 1024, 1).length;\n",
    },
    "environ": {
        PYTHON: "import os\ndef handler(event, context):\n    return dict(os.environ)\n",
        NODE: "export const handler = async () => ({ ...process.env });\n",
    },
    "write": {
        PYTHON: (
            "import os\n"
            "def handler(event, context):\n"
            "    results = {}\n"
            "    for path in event['paths']:\n"
            "        try:\n"
            "            with open(path, 'w') as file:\n"
            "                file.write('x')\n"
            "            results[path] = 'written'\n"
            "        except OSError as error:\n"
            "            results[path] = type(error).__name__\n"
            "    results['listing'] = sorted(os.listdir('.'))\n"
            "    return results\n"
        ),
        NODE: (
            "import fs from 'node:fs';\n"
            "export const handler = async (event) => {\n"
            "  const results = {};\n"
            "  for (const path of event.paths) {\n"
            "    try { fs.writeFileSync(path, 'x'); results[path] = 'written'; }\n"
            "    catch (error) { results[path] = error.code === 'EACCES' || error.code === 'EPERM' || error.code === "
            "'EROFS' ? 'PermissionError' : error.code; }\n"
            "  }\n"
            "  results.listing = fs.readdirSync('.').sort();\n"
            "  return results;\n"
            "};\n"
        ),
    },
    "connect": {
        PYTHON: (
            "import socket\n"
            "def handler(event, context):\n"
            "    try:\n"
            "        socket.create_connection(('127.0.0.1', event['port']), timeout=2).close()\n"
            "        return 'connected'\n"
            "    except OSError as error:\n"
            "        return 'refused: ' + str(error)\n"
        ),
        NODE: (
            "import net from 'node:net';\n"
            "export const handler = (event) => new Promise((resolve) => {\n"
            "  const socket = net.connect(event.port, '127.0.0.1', () => { socket.end(); resolve('connected'); });\n"
            "  socket.on('error', (error) => resolve('refused: ' + error.message));\n"
            "});\n"
        ),
    },
}

BOTH = pytest.mark.parametrize("runtime", [PYTHON, NODE])


@BOTH
def test_a_handler_returns_its_value_with_the_context(pool, runtime):
    spec = spec_of(runtime, SOURCES["echo"][runtime], memory_mb=256)
    outcome = pool.invoke(spec, b'{"order": [1, 2.5, "three", null]}', "req-42")
    assert outcome.ok and outcome.error is None and outcome.cold
    result = outcome.result
    assert result["event"] == {"order": [1, 2.5, "three", None]}
    assert (result["name"], result["memory"], result["request_id"]) == ("probe", 256, "req-42")
    assert 0 < result["remaining"] <= 10000
    assert outcome.billed_duration_ms == max(1, math.ceil(outcome.duration_ms)) and outcome.duration_ms > 0
    assert outcome.init_duration_ms > 0 and outcome.request_id == "req-42"


@BOTH
def test_a_warm_invocation_reuses_the_process(pool, runtime):
    spec = spec_of(runtime, SOURCES["echo"][runtime])
    first, second = invoke(pool, spec), invoke(pool, spec)
    assert (first.cold, second.cold) == (True, False) and second.init_duration_ms is None
    assert first.result["pid"] == second.result["pid"]
    # A fresh working directory per invocation, in the same process.
    assert first.result["cwd"] != second.result["cwd"]
    # Another configuration or other code is another environment.
    other_memory = invoke(pool, spec_of(runtime, SOURCES["echo"][runtime], memory_mb=512))
    other_code = invoke(pool, spec_of(runtime, SOURCES["echo"][runtime] + "\n// v2\n" if runtime == NODE else "#v2\n"))
    assert other_memory.cold and other_memory.result["pid"] != first.result["pid"]
    assert other_code.cold


@BOTH
def test_a_handler_that_raises(pool, runtime):
    spec = spec_of(runtime, SOURCES["raise"][runtime])
    outcome = invoke(pool, spec, {"n": 42})
    assert not outcome.ok and outcome.result is None
    assert outcome.error["errorType"] == ("ValueError" if runtime == PYTHON else "TypeError")
    assert outcome.error["errorMessage"] == "the answer is 42"
    assert any("the answer is 42" in line for line in outcome.error["trace"])
    assert not invoke(pool, spec, {"n": 1}).cold  # a handler's error does not cost the environment


@BOTH
def test_output_is_returned_as_a_4_kb_tail(pool, runtime):
    spec = spec_of(runtime, SOURCES["print"][runtime], timeout_s=60)  # 20,000 writes, on a busy machine too
    short = invoke(pool, spec, {"lines": 2})
    assert short.result == "done" and short.log_tail == "line 0\nline 1\n"
    long = invoke(pool, spec, {"lines": 20000})
    assert len(long.log_tail.encode()) == 4096 and long.log_tail.endswith("line 19998\nline 19999\n")


@BOTH
def test_a_handler_past_its_timeout_is_killed_with_its_process_group(pool, runtime):
    spec = spec_of(runtime, SOURCES["sleep"][runtime], timeout_s=1)
    started = time.monotonic()
    outcome = invoke(pool, spec)
    assert time.monotonic() - started < 30  # generous: only that the timeout is enforced at all
    assert not outcome.ok and outcome.error["errorType"] == "Timeout"
    assert outcome.error["errorMessage"] == "Task timed out after 1.00 seconds"
    assert (outcome.duration_ms, outcome.billed_duration_ms) == (1000.0, 1000)
    _, child, escaped = outcome.log_tail.split()[:3]
    assert gone(int(child))  # in the process group
    if ISOLATION["root"]:  # a user of its own: even what left the group is found and killed
        assert gone(int(escaped))
    else:
        os.kill(int(escaped), signal.SIGKILL)
    assert invoke(pool, spec_of(runtime, SOURCES["echo"][runtime], timeout_s=1)).cold  # never reused


@BOTH
def test_a_handler_past_its_memory_is_stopped_and_reported(pool, runtime):
    spec = spec_of(runtime, SOURCES["allocate"][runtime], memory_mb=128)
    assert invoke(pool, spec, {"mb": 16}).result == 16 * 1024 * 1024
    outcome = invoke(pool, spec, {"mb": 1024})
    assert not outcome.ok and outcome.error["errorType"] == "Runtime.OutOfMemory"
    assert invoke(pool, spec, {"mb": 16}).cold  # the environment that ran out is not reused


def test_a_node_heap_past_its_memory_kills_the_process_and_is_reported(pool):
    source = (
        "export const handler = async () => { const a = []; for (;;) a.push({ n: a.length, s: 'x' + a.length }); };\n"
    )
    outcome = invoke(pool, spec_of(NODE, source, memory_mb=128, timeout_s=60))
    assert not outcome.ok and outcome.error["errorType"] == "Runtime.OutOfMemory"
    assert "heap out of memory" in outcome.log_tail or "bad_alloc" in outcome.log_tail


@BOTH
def test_a_handler_sees_only_its_own_environment_and_the_runtimes(pool, runtime):
    spec = spec_of(runtime, SOURCES["environ"][runtime], environment=(("API_KEY", "s3cr3t"), ("MODE", "test")))
    seen = invoke(pool, spec).result
    runtimes = {
        "PATH", "LANG", "TZ", "HOME", "_HANDLER", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "AWS_REGION",
        "AWS_DEFAULT_REGION", "AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
    }  # fmt: skip
    assert set(seen) == runtimes | {"API_KEY", "MODE"}
    assert (seen["API_KEY"], seen["MODE"], seen["AWS_REGION"]) == ("s3cr3t", "test", "eu-west-1")
    assert seen["AWS_EXECUTION_ENV"] == ("AWS_Lambda_python3.11" if runtime == PYTHON else "AWS_Lambda_nodejs20.x")


@BOTH
def test_a_handler_holds_no_privilege(pool, runtime):
    """No capability (a user namespace grants them all inside it), none to gain by running a setuid program."""
    source = {
        PYTHON: "def handler(event, context):\n    return open('/proc/self/status').read()\n",
        NODE: "import fs from 'node:fs';\n"
        "export const handler = async () => fs.readFileSync('/proc/self/status', 'utf8');\n",
    }[runtime]
    status = dict(line.split(":\t", 1) for line in invoke(pool, spec_of(runtime, source)).result.splitlines())
    assert {name: status[name].strip() for name in ("CapEff", "CapPrm", "NoNewPrivs")} == {
        "CapEff": "0000000000000000",
        "CapPrm": "0000000000000000",
        "NoNewPrivs": "1",
    }


@BOTH
def test_writes_stay_in_the_working_directory(pool, runtime):
    spec = spec_of(runtime, SOURCES["write"][runtime])
    code_dir = Path(settings.ELBIA_RUNTIME_DIR) / "code" / spec.code_sha256
    marker = f"elbia-sandbox-{uuid.uuid4().hex}"
    outside = [str(code_dir / "new.txt"), str(code_dir / ("app.py" if runtime == PYTHON else "index.mjs"))]
    if ISOLATION["root"]:
        outside += [str(Path(settings.ELBIA_RUNTIME_DIR) / marker), f"/etc/{marker}"]
    first = invoke(pool, spec, {"paths": ["mine.txt", *outside, f"/tmp/{marker}"]})
    assert first.result["mine.txt"] == "written" and first.result["listing"] == ["mine.txt"]
    for path in outside:  # the code is read-only; as root, nothing outside is writable either
        assert first.result[path] == "PermissionError", path
        assert not Path(path).exists() or path.endswith(("app.py", "index.mjs"))
    assert (code_dir / ("app.py" if runtime == PYTHON else "index.mjs")).read_text() == SOURCES["write"][runtime]
    if ISOLATION["namespaces"]:  # /tmp is the environment's own
        assert first.result[f"/tmp/{marker}"] == "written" and not Path(f"/tmp/{marker}").exists()
    else:
        Path(f"/tmp/{marker}").unlink(missing_ok=True)
    second = invoke(pool, spec, {"paths": []})
    assert not second.cold and second.result["listing"] == []  # a fresh working directory


@BOTH
def test_a_file_past_64_mb_is_refused(pool, runtime):
    source = {
        PYTHON: "def handler(event, context):\n    open('big', 'wb').write(b'x' * (65 * 1024 * 1024))\n",
        NODE: "import fs from 'node:fs';\n"
        "export const handler = async () => fs.writeFileSync('big', Buffer.alloc(65 * 1024 * 1024));\n",
    }[runtime]
    outcome = invoke(pool, spec_of(runtime, source, memory_mb=256))
    assert not outcome.ok
    # Both runtimes ignore SIGXFSZ: the write fails and the handler sees it.
    expected = (
        ("OSError", "[Errno 27] File too large") if runtime == PYTHON else ("Error", "EFBIG: file too large, write")
    )
    assert (outcome.error["errorType"], outcome.error["errorMessage"]) == expected


@BOTH
def test_the_network_is_cut_off_where_the_host_allows(pool, runtime):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        outcome = invoke(pool, spec_of(runtime, SOURCES["connect"][runtime]), {"port": listener.getsockname()[1]})
    if ISOLATION["namespaces"]:
        assert outcome.result.startswith("refused: ")
    else:
        assert outcome.result == "connected"


@BOTH
@pytest.mark.parametrize(
    ("source", "error_type"),
    [
        ({PYTHON: "def handler(event, context)\n", NODE: "export const handler = async (event => 1;\n"},
         "Runtime.UserCodeSyntaxError"),
        ({PYTHON: "def other(event, context):\n    pass\n", NODE: "export const other = async () => 1;\n"},
         "Runtime.HandlerNotFound"),
        ({PYTHON: "import not_a_module_anywhere\n", NODE: "import 'not-a-module-anywhere';\n"},
         "Runtime.ImportModuleError"),
        ({PYTHON: "raise RuntimeError('no config')\n", NODE: "throw new Error('no config');\n"},
         "Runtime.InitError"),
    ],
)  # fmt: skip
def test_code_that_cannot_load(pool, runtime, source, error_type):
    outcome = invoke(pool, spec_of(runtime, source[runtime]))
    assert not outcome.ok and outcome.cold
    assert outcome.error["errorType"] == error_type


def test_the_starters_answer_hello(pool):
    for runtime, handler in ((PYTHON, "lambda_function.lambda_handler"), (NODE, "index.handler")):
        sha256, _ = code_store(starter_archive(runtime, handler))
        spec = FunctionSpec("FUNC_1", "hello-world", runtime, handler, 128, 3, "us-east-1", sha256)
        assert invoke(pool, spec, {"hi": 1}).result == {"message": "Hello from hello-world", "event": {"hi": 1}}


def test_idle_environments_are_reaped():
    pool = Pool(max_environments=2, idle_seconds=0.2)
    try:
        spec = spec_of(PYTHON, SOURCES["echo"][PYTHON])
        pid = invoke(pool, spec).result["pid"]
        assert pool.reap() == 0 and not gone(pid)
        time.sleep(0.3)
        assert pool.reap() == 1 and gone(pid) and pool.idle_count() == 0
        assert invoke(pool, spec).cold
    finally:
        pool.close()


def test_concurrent_invocations_get_environments_of_their_own_up_to_the_limit():
    pool = Pool(max_environments=2, idle_seconds=60)
    source = "import os, time\ndef handler(event, context):\n    time.sleep(event['s'])\n    return os.getpid()\n"
    spec = spec_of(PYTHON, source, timeout_s=30)
    try:
        with ThreadPoolExecutor(2) as threads:
            running = [threads.submit(invoke, pool, spec, {"s": 2}) for _ in range(2)]
            while pool.live_count() < 2:
                time.sleep(0.01)
            with pytest.raises(RuntimeBusy, match="All 2 execution environments are busy"):
                invoke(pool, spec, {"s": 0})
            outcomes = [future.result() for future in running]
        assert all(outcome.ok and outcome.cold for outcome in outcomes)
        assert outcomes[0].result != outcomes[1].result  # two processes
        assert pool.idle_count() == 2 and not invoke(pool, spec, {"s": 0}).cold
    finally:
        pool.close()


@pytest.mark.skipif(not ISOLATION["root"], reason="environments have users of their own only as root")
def test_two_pools_never_share_a_user():
    """Two runners on one host (two pools here): each environment's user is its own, so ending one spares the other."""
    first, second = Pool(max_environments=1), Pool(max_environments=1)
    try:
        spec = spec_of(PYTHON, SOURCES["echo"][PYTHON])
        mine, theirs = invoke(first, spec).result, invoke(second, spec).result
        assert mine["uid"] != theirs["uid"] and mine["uid"] >= settings.ELBIA_RUNTIME_UID_BASE
        first.close()
        assert gone(mine["pid"]) and not gone(theirs["pid"])
        assert invoke(second, spec).result["pid"] == theirs["pid"]
    finally:
        first.close()
        second.close()


def test_other_runtimes_run_only_on_aws(pool):
    spec = FunctionSpec("FUNC_1", "java", "Java 21", "a.B::c", 128, 3, "us-east-1", "0" * 64)
    with pytest.raises(
        RuntimeNotLocal, match=r"^Java 21 functions run only on the AWS provider \(ELBIA_PROVIDER=aws\)"
    ) as caught:
        invoke(pool, spec)
    assert isinstance(caught.value, Conflict)  # the API answers 409


@pytest.mark.django_db
def test_the_runner_service_runs_functions_warm(runner, account):
    source = "import os\ndef handler(event, context):\n    return {'key': os.environ['API_KEY'], 'pid': os.getpid()}\n"
    sha256, size = code_store(zip_of({"app.py": source}))
    function = FunctionFactory(
        account=account, runtime=PYTHON, handler="app.handler", code_sha256=sha256, code_size=size,
        environment={"API_KEY": "decrypted-in-the-runner"},
    )  # fmt: skip
    first = runtime_invoke(function, b"{}", "req-1", port=runner)
    second = runtime_invoke(function, b"{}", "req-2", port=runner)
    assert first.ok and first.result["key"] == "decrypted-in-the-runner"
    assert (first.cold, second.cold, second.result["pid"]) == (True, False, first.result["pid"])


def test_the_runner_wants_its_secret(runner):
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", runner, timeout=10)
    connection.request("POST", "/invoke", body=b"{}\n{}", headers={"Authorization": "Bearer " + "0" * 64})
    assert connection.getresponse().status == 401
    assert runner_secret() != "0" * 64


@pytest.mark.django_db
def test_an_unreachable_runner_is_a_clear_error(account):
    function = FunctionFactory(account=account, runtime=PYTHON, handler="app.handler", code_sha256="0" * 64)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    with pytest.raises(Unavailable, match=rf"The function runner at 127.0.0.1:{port} is not reachable .*run_runtime"):
        runtime_invoke(function, b"{}", "req-1", port=port)
