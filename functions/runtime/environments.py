"""Execution environments: one sandboxed runtime process per environment, kept warm between invocations.

An ``Environment`` is a Python 3.11 or Node.js 20 process started through ``launcher.py`` (namespaces,
limits, its own user) running a bootstrap that loads the handler once and then serves invocations, one at
a time, over two pipes. The ``Pool`` holds idle environments per function, code and configuration
(``FunctionSpec``), so an invocation reuses a warm process when there is one; an environment that timed
out, crashed or ran out of memory is killed, never reused; idle ones are reaped. What is enforced, and
what is not without root or namespaces, is in docs/functions-runtime.md.
"""

import contextlib
import fcntl
import hashlib
import json
import logging
import marshal
import math
import os
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings

from elbia.errors import Conflict, Unavailable
from functions.code import check_archive, code_read, extract_archive
from functions.runtime.launcher import IN_PROCESS, PRIVATE_DIRS
from functions.runtimes import RUNTIMES

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
LOCAL_RUNTIMES = ("Python 3.11", "Node.js 20")
LOG_TAIL_BYTES = 4096
MAX_EVENT_BYTES = 6 * 1024 * 1024  # AWS Lambda's synchronous payload limits
MAX_RESULT_BYTES = 6 * 1024 * 1024
INIT_TIMEOUT_S = 10  # as AWS Lambda's init phase
MB = 1024 * 1024
# Memory the interpreter needs besides the function's own: data (heap) and address space (V8 reserves a lot).
DATA_ALLOWANCE_MB = {"Python 3.11": 64, "Node.js 20": 128}
ADDRESS_SPACE_ALLOWANCE_MB = {"Python 3.11": 256, "Node.js 20": 2048}
FILE_SIZE_LIMIT = 64 * MB
OPEN_FILES_LIMIT = 1024
PROCESS_LIMIT = 64  # threads count: Node.js starts with 7
OUT_OF_MEMORY_SIGNS = (b"MemoryError", b"heap out of memory", b"bad_alloc", b"Allocation failed", b"Cannot allocate")


class LocalRuntimeError(Exception):
    """An invocation the local runtime cannot run; ``str()`` says why, for the caller to show."""


class RuntimeNotLocal(LocalRuntimeError, Conflict):
    """The function's runtime runs only on the AWS provider (a domain ``Conflict``: the API's 409)."""


class RuntimeUnavailable(LocalRuntimeError, Unavailable):
    """The runner, an interpreter or the function's code cannot be reached (a domain ``Unavailable``: 503)."""


class RuntimeBusy(LocalRuntimeError, Unavailable):
    """Every execution environment is busy (a domain ``Unavailable``: 503, retry later)."""


def ensure_local(runtime: str) -> None:
    """``RuntimeNotLocal`` unless the local runtime runs ``runtime``."""
    if runtime not in LOCAL_RUNTIMES:
        raise RuntimeNotLocal(
            f"{runtime} functions run only on the AWS provider (ELBIA_PROVIDER=aws); "
            f"the local runtime runs {' and '.join(LOCAL_RUNTIMES)}."
        )


@dataclass(frozen=True)
class FunctionSpec:
    """What an environment runs: a function's code and configuration. Environments are shared by equal specs."""

    public_id: str
    name: str
    runtime: str
    handler: str
    memory_mb: int
    timeout_s: int
    region: str
    code_sha256: str
    environment: tuple[tuple[str, str], ...] = ()  # plaintext: decrypted only in the runner

    @classmethod
    def of(cls, function) -> "FunctionSpec":
        return cls(
            public_id=function.public_id,
            name=function.name,
            runtime=function.runtime,
            handler=function.handler,
            memory_mb=function.memory_mb,
            timeout_s=function.timeout_s,
            region=function.region,
            code_sha256=function.code_sha256 or "",
            environment=tuple(sorted(function.environment.items())),
        )


@dataclass
class Outcome:
    """One invocation's result: the handler's value or an error document (AWS Lambda's shape), and its measures.

    ``duration_ms`` is measured by the runner from the event's delivery to the answer (the function cannot
    alter it); ``billed_duration_ms`` is it rounded up to the next millisecond. ``init_duration_ms`` is the
    cold start's (process start and handler load), not billed. ``log_tail`` is the last 4 KB of output.
    """

    ok: bool
    result: Any = None
    error: dict | None = None
    duration_ms: float = 0.0
    billed_duration_ms: int = 0
    log_tail: str = ""
    cold: bool = False
    init_duration_ms: float | None = None
    request_id: str = ""

    @property
    def error_type(self) -> str | None:
        return self.error["errorType"] if self.error else None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Outcome":
        return cls(**data)


def billed(duration_ms: float) -> int:
    return max(1, math.ceil(duration_ms))


def _error(error_type: str, message: str) -> dict:
    return {"errorType": error_type, "errorMessage": message, "trace": []}


@cache
def interpreter(runtime: str) -> str:
    """The interpreter of a local runtime (``ELBIA_RUNTIME_PYTHON`` / ``ELBIA_RUNTIME_NODE`` or found on the host)."""
    if runtime == "Python 3.11":
        candidates = [settings.ELBIA_RUNTIME_PYTHON] if settings.ELBIA_RUNTIME_PYTHON else []
        candidates += ["/usr/local/bin/python3.11", "/usr/bin/python3.11", os.path.realpath(sys._base_executable)]
        wanted, probe = "3.11.", "import sys; print('%d.%d.%d' % sys.version_info[:3])"
        argv = ["-I", "-S", "-c", probe]
    else:
        candidates = [settings.ELBIA_RUNTIME_NODE] if settings.ELBIA_RUNTIME_NODE else []
        candidates += [shutil.which("node") or "", "/usr/bin/node", "/usr/local/bin/node"]
        wanted, argv = "v20.", ["--version"]
    for candidate in filter(None, candidates):
        path = os.path.realpath(candidate)
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            found = subprocess.run([path, *argv], capture_output=True, text=True, timeout=10, check=False).stdout
            if found.strip().startswith(wanted):
                return path
    raise RuntimeUnavailable(
        f"No {runtime} interpreter on this host (looked for {', '.join(filter(None, candidates))})."
    )


@cache
def host_isolation() -> dict:
    """What this host grants the sandbox: ``{"root": bool, "namespaces": bool, "reason": str}`` (asked once)."""
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(HERE / "launcher.py"), "--probe"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(done.stdout)


def check_runtime_dir() -> None:
    """``RuntimeUnavailable`` if ``ELBIA_RUNTIME_DIR`` lies where the sandbox mounts a private tmpfs (/tmp...)."""
    directory = Path(settings.ELBIA_RUNTIME_DIR).resolve()
    hidden = next((private for private in PRIVATE_DIRS if directory.is_relative_to(private)), None)
    if hidden and host_isolation()["namespaces"]:
        raise RuntimeUnavailable(
            f"ELBIA_RUNTIME_DIR={directory} is under {hidden}, which every sandbox replaces with a private "
            "tmpfs: choose a directory elsewhere (the default is var/runtime)."
        )


def _make_read_only(directory: Path) -> None:
    """Everyone may read (and traverse, and run what was executable), nobody may write, the owner included."""
    for folder, _, files in os.walk(directory, topdown=False):
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chmod(path, 0o444 | (os.stat(path).st_mode & 0o111))
        os.chmod(folder, 0o555)


_code_lock = threading.Lock()


def code_directory(spec: FunctionSpec) -> Path:
    """The function's code unpacked (once per sha256) under ``ELBIA_RUNTIME_DIR/code``, read-only for everyone."""
    root = Path(settings.ELBIA_RUNTIME_DIR) / "code"
    target = root / spec.code_sha256
    if target.is_dir():
        return target
    with _code_lock:
        if target.is_dir():
            return target
        data = code_read(spec.code_sha256)
        check_archive(data, runtime=spec.runtime, handler=spec.handler)
        staging = root / f".{spec.code_sha256}.{uuid.uuid4().hex}"
        extract_archive(data, staging)
        _make_read_only(staging)
        os.chmod(root, 0o755)
        staging.rename(target)
    return target


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) a live process has used."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def kill_user_processes(uids: range) -> None:
    """SIGKILL every process of the users ``uids`` (sandboxes' own), until none is left: those that left the group too.

    ``/proc/<pid>`` belongs to the process's user, so one ``stat`` per process finds them; zombies (dead,
    waiting for their parent) are skipped.
    """
    for _ in range(100):
        found = False
        for entry in os.scandir("/proc"):
            with contextlib.suppress(OSError):
                theirs = entry.name.isdigit() and entry.stat().st_uid in uids
                if theirs and "State:\tZ" not in Path(entry.path, "status").read_text():
                    os.kill(int(entry.name), signal.SIGKILL)
                    found = True
        if not found:
            return
        time.sleep(0.001)


UID_SPAN = 65536  # sandbox users are claimed from ELBIA_RUNTIME_UID_BASE up to this many above it


def _uid_lock_dir() -> Path:
    """Where uid claims are held: one folder for the whole host (``/run``), so two runners never share a user."""
    shared = Path("/run/elbia-runtime")
    with contextlib.suppress(OSError):
        shared.mkdir(mode=0o700, exist_ok=True)
        return shared
    fallback = Path(settings.ELBIA_RUNTIME_DIR) / "uids"
    fallback.mkdir(mode=0o700, parents=True, exist_ok=True)
    return fallback


def claim_uid() -> tuple[int, int]:
    """A sandbox user no other environment on this host holds, and the locked file descriptor holding it.

    The claim is an exclusive ``flock`` on ``<uid>.lock``, released when the descriptor closes (or its
    process dies). Processes a dead runner left under that user are killed first.
    """
    directory = _uid_lock_dir()
    base = settings.ELBIA_RUNTIME_UID_BASE
    for uid in range(base, base + UID_SPAN):
        fd = os.open(directory / f"{uid}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        kill_user_processes(range(uid, uid + 1))
        return uid, fd
    raise RuntimeBusy(f"All {UID_SPAN} sandbox users from ELBIA_RUNTIME_UID_BASE={base} are taken.")


@dataclass
class _Exchange:
    """What one round trip with the bootstrap produced."""

    answer: dict | None = None
    timed_out: bool = False
    exited: bool = False
    too_large: bool = False
    logs: bytearray = field(default_factory=bytearray)


class Environment:
    """One sandboxed runtime process serving one ``FunctionSpec``, one invocation at a time."""

    def __init__(self, spec: FunctionSpec):
        self.spec = spec
        self.invocations = 0
        self.last_used = time.monotonic()
        self.healthy = False
        # As root, a user of its own, claimed host-wide; its working folder is named after it.
        self.uid, self._uid_claim = claim_uid() if host_isolation()["root"] else (None, None)
        name = f"uid-{self.uid}" if self.uid is not None else uuid.uuid4().hex
        self.root = Path(settings.ELBIA_RUNTIME_DIR) / "work" / name
        shutil.rmtree(self.root, ignore_errors=True)  # what a dead runner left under this user
        # RLIMIT_CPU covers the process's whole life: it is retired before it could hit it mid-invocation.
        self.cpu_budget = max(60, 10 * (spec.timeout_s + 1))
        self.process: subprocess.Popen | None = None
        self._kill_lock = threading.Lock()

    # --- start -----------------------------------------------------------------------------------------

    def _environment(self, code_dir: Path) -> dict[str, str]:
        spec = self.spec
        variables = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "HOME": "/tmp",
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_REGION": spec.region,
            "AWS_DEFAULT_REGION": spec.region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{RUNTIMES[spec.runtime].identifier}",
            "_HANDLER": spec.handler,
            "LAMBDA_TASK_ROOT": str(code_dir),
            "LAMBDA_RUNTIME_DIR": str(HERE),
        }
        return variables | dict(spec.environment)

    def _argv(self, code_dir: Path) -> list[str]:
        """The runtime's argv; Python's bootstrap runs inside the launcher's own interpreter (``IN_PROCESS``)."""
        spec = self.spec
        if spec.runtime == "Python 3.11":
            program = [IN_PROCESS, str(HERE / "bootstrap.py")]
        else:
            program = [interpreter(spec.runtime), f"--max-old-space-size={spec.memory_mb}", str(HERE / "bootstrap.mjs")]
        return [*program, str(code_dir), spec.handler]

    def _limits(self) -> dict[str, tuple[int, int]]:
        spec = self.spec
        data = (spec.memory_mb + DATA_ALLOWANCE_MB[spec.runtime]) * MB
        address_space = (spec.memory_mb + ADDRESS_SPACE_ALLOWANCE_MB[spec.runtime]) * MB
        limits = {
            "DATA": (data, data),
            "AS": (address_space, address_space),
            "CPU": (self.cpu_budget, self.cpu_budget + 1),
            "FSIZE": (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT),
            "NOFILE": (OPEN_FILES_LIMIT, OPEN_FILES_LIMIT),
            "CORE": (0, 0),
        }
        if self.uid is not None:  # counted per user: only meaningful when the sandbox has a user of its own
            limits["NPROC"] = (PROCESS_LIMIT, PROCESS_LIMIT)
        return limits

    def start(self) -> tuple[dict | None, float, str]:
        """Start the process and load the handler: (an init error document or ``None``, init ms, log tail)."""
        code_dir = code_directory(self.spec)
        started = time.perf_counter()
        self.spawn(self._argv(code_dir), self._environment(code_dir))
        exchange = self._exchange(b"", time.monotonic() + INIT_TIMEOUT_S)
        init_ms = (time.perf_counter() - started) * 1000
        tail = _tail(exchange.logs)
        answer = exchange.answer
        if answer is not None and answer.get("ready"):
            self.healthy = True
            return None, init_ms, tail
        if exchange.timed_out:
            error = _error("Runtime.InitTimeout", f"The handler did not load within {INIT_TIMEOUT_S} seconds.")
        elif answer is not None:
            error = answer["error"]
        else:
            error = self._exit_error(exchange.logs)
        self.kill()
        return error, init_ms, tail

    def spawn(self, argv: list[str], environment: dict[str, str]) -> None:
        """Start ``argv`` in the sandbox (through ``launcher.py``) with the control pipes as fds 3 and 4."""
        self.root.mkdir(parents=True, mode=0o711)
        os.chmod(self.root, 0o711)
        init_dir = self._workdir("init")
        events_r, self.events_w = os.pipe()
        self.results_r, results_w = os.pipe()
        self.logs_r, logs_w = os.pipe()
        config = {
            "namespaces": host_isolation()["namespaces"],
            "limits": self._limits(),
            "uid": self.uid,
            "gid": self.uid,
            "cwd": str(init_dir),
            "events_fd": events_r,
            "results_fd": results_w,
            "env": environment,
            "argv": argv,
        }
        try:
            self.process = subprocess.Popen(
                [interpreter("Python 3.11"), "-I", "-S", "-u", "-B", str(HERE / "launcher.py")],
                stdin=subprocess.PIPE,
                stdout=logs_w,
                stderr=logs_w,
                pass_fds=(events_r, results_w),
                start_new_session=True,
                env={},
                cwd=str(init_dir),
            )
        finally:
            for fd in (events_r, results_w, logs_w):
                os.close(fd)
        self.process.stdin.write(marshal.dumps(config))
        self.process.stdin.close()
        for fd in (self.events_w, self.results_r, self.logs_r):
            os.set_blocking(fd, False)
        self.pidfd = os.pidfd_open(self.process.pid)

    def _workdir(self, name: str) -> Path:
        directory = self.root / name
        directory.mkdir(mode=0o700)
        if self.uid is not None:
            os.chown(directory, self.uid, self.uid)
        return directory

    # --- invoke ----------------------------------------------------------------------------------------

    def invoke(self, event: bytes, request_id: str) -> Outcome:
        """Run one invocation; the environment stays ``healthy`` only if it may serve another."""
        self.invocations += 1
        spec = self.spec
        workdir = self._workdir(f"{self.invocations}")
        deadline_ms = int(time.time() * 1000) + spec.timeout_s * 1000
        header = f"{len(event)} {request_id} {deadline_ms} {workdir}\n".encode()
        started = time.perf_counter()
        exchange = self._exchange(header + event, time.monotonic() + spec.timeout_s)
        duration_ms = (time.perf_counter() - started) * 1000
        self.last_used = time.monotonic()
        answer = exchange.answer
        if exchange.timed_out:
            self.kill()
            duration_ms = spec.timeout_s * 1000.0
            outcome = Outcome(ok=False, error=_error("Timeout", f"Task timed out after {spec.timeout_s:.2f} seconds"))
        elif exchange.too_large:
            self.kill()
            outcome = Outcome(
                ok=False,
                error=_error("Function.ResponseSizeTooLarge", f"The response is larger than {MAX_RESULT_BYTES} bytes."),
            )
        elif answer is None:
            outcome = Outcome(ok=False, error=self._exit_error(exchange.logs))
            self.kill()
        else:
            outcome = Outcome(ok=answer["ok"], result=answer.get("result"), error=answer.get("error"))
            if answer.get("fatal"):
                self.kill()
        shutil.rmtree(workdir, ignore_errors=True)
        if self.healthy and _cpu_seconds(self.process.pid) + spec.timeout_s + 1 > self.cpu_budget:
            self.kill()  # retire it before its CPU limit could strike mid-invocation
        outcome.duration_ms = round(duration_ms, 3)
        outcome.billed_duration_ms = billed(duration_ms)
        outcome.log_tail = _tail(exchange.logs)
        outcome.request_id = request_id
        return outcome

    def _exit_error(self, logs: bytearray) -> dict:
        """The error of a process that ended without answering: out of memory, a signal, or an exit status."""
        code = self.process.wait(timeout=5) if self.process else None
        out_of_memory = any(sign in logs[-LOG_TAIL_BYTES * 4 :] for sign in OUT_OF_MEMORY_SIGNS)
        if code is not None and code < 0:
            how = f"signal: {signal.Signals(-code).name}"
            out_of_memory = out_of_memory or code == -signal.SIGKILL  # the kernel's OOM killer
        else:
            how = f"exit status {code}"
        if b"launcher: " in logs:
            return _error("Runtime.StartError", logs.split(b"launcher: ", 1)[1].decode(errors="replace").strip())
        if out_of_memory:
            return _error("Runtime.OutOfMemory", f"Runtime exited with error: {how} (out of memory)")
        return _error("Runtime.ExitError", f"Runtime exited with error: {how}")

    def _exchange(self, message: bytes, deadline: float) -> _Exchange:
        """Send ``message`` and read the output and the next answer line, until the answer, an exit or ``deadline``."""
        result = _Exchange()
        answer = bytearray()
        pending = memoryview(message)
        with selectors.DefaultSelector() as selector:
            selector.register(self.logs_r, selectors.EVENT_READ)
            selector.register(self.results_r, selectors.EVENT_READ)
            selector.register(self.pidfd, selectors.EVENT_READ)
            if pending:
                selector.register(self.events_w, selectors.EVENT_WRITE)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    result.timed_out = True
                    break
                for key, _ in selector.select(remaining):
                    if key.fd == self.events_w:
                        try:
                            pending = pending[os.write(self.events_w, pending) :]
                        except BrokenPipeError:
                            pending = pending[:0]
                        if not pending:
                            selector.unregister(self.events_w)
                    elif key.fd == self.logs_r:
                        _read_into(self.logs_r, result.logs, keep=LOG_TAIL_BYTES * 4)
                    elif key.fd == self.results_r:
                        if not _read_into(self.results_r, answer, keep=None):
                            selector.unregister(self.results_r)
                        if len(answer) > MAX_RESULT_BYTES + 1024:
                            result.too_large = True
                            return result
                        if answer.endswith(b"\n"):
                            _read_into(self.logs_r, result.logs, keep=LOG_TAIL_BYTES * 4)  # what was printed before
                            result.answer = json.loads(answer)
                            return result
                    elif key.fd == self.pidfd:
                        result.exited = True
                if result.exited:
                    _read_into(self.logs_r, result.logs, keep=LOG_TAIL_BYTES * 4)
                    _read_into(self.results_r, answer, keep=None)
                    if answer.endswith(b"\n"):
                        result.answer = json.loads(answer)
                    break
        return result

    # --- end -------------------------------------------------------------------------------------------

    def kill(self) -> None:
        """Kill the process, its whole group and (with a user of its own) every process of that user; clean up.

        Safe to call twice, from two threads (the reaper and an invocation): the second call finds nothing to do.
        """
        with self._kill_lock:
            self.healthy = False
            process, self.process = self.process, None
            if process is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                if self.uid is not None:
                    kill_user_processes(range(self.uid, self.uid + 1))
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=5)
                for fd in (self.events_w, self.results_r, self.logs_r, self.pidfd):
                    with contextlib.suppress(OSError):
                        os.close(fd)
            shutil.rmtree(self.root, ignore_errors=True)
            if self._uid_claim is not None:
                os.close(self._uid_claim)
                self._uid_claim = None


def _read_into(fd: int, buffer: bytearray, *, keep: int | None) -> bool:
    """Read what ``fd`` holds now into ``buffer`` (keeping its last ``keep`` bytes); False at end of file."""
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not chunk:
            return False
        buffer += chunk
        if keep is not None and len(buffer) > keep:
            del buffer[:-keep]


def _tail(logs: bytearray) -> str:
    return bytes(logs[-LOG_TAIL_BYTES:]).decode("utf-8", errors="replace")


def spec_key(spec: FunctionSpec) -> str:
    """A pool key that does not keep the environment's values readable in memory dumps of the key table."""
    return hashlib.sha256(repr(spec).encode()).hexdigest()


class Pool:
    """Warm environments per ``FunctionSpec``, at most ``ELBIA_RUNTIME_MAX_ENVIRONMENTS`` at once; idle ones reaped."""

    def __init__(self, *, max_environments: int | None = None, idle_seconds: float | None = None):
        self.max_environments = max_environments or settings.ELBIA_RUNTIME_MAX_ENVIRONMENTS
        self.idle_seconds = settings.ELBIA_RUNTIME_IDLE_SECONDS if idle_seconds is None else idle_seconds
        self._lock = threading.Lock()
        self._idle: dict[str, list[Environment]] = {}
        self._live: set[Environment] = set()
        check_runtime_dir()

    def invoke(self, spec: FunctionSpec, event: bytes, request_id: str) -> Outcome:
        """Run one invocation in a warm environment of ``spec`` if one is idle, else in a new one (cold)."""
        ensure_local(spec.runtime)
        if not spec.code_sha256:
            raise RuntimeUnavailable(f"Function {spec.public_id} has no code.")
        if len(event) > MAX_EVENT_BYTES:
            raise LocalRuntimeError(f"The event is larger than {MAX_EVENT_BYTES} bytes.")
        environment = self._take(spec)
        cold = environment.process is None
        init_ms = None
        try:
            if cold:
                init_error, init_ms, tail = environment.start()
                if init_error is not None:
                    return Outcome(
                        ok=False,
                        error=init_error,
                        log_tail=tail,
                        cold=True,
                        init_duration_ms=round(init_ms, 3),
                        request_id=request_id,
                    )
            outcome = environment.invoke(event, request_id)
        except BaseException:
            environment.kill()
            raise
        finally:
            self._give_back(environment)
        outcome.cold = cold
        outcome.init_duration_ms = round(init_ms, 3) if init_ms is not None else None
        return outcome

    def _take(self, spec: FunctionSpec) -> Environment:
        key = spec_key(spec)
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                return idle.pop()
            if len(self._live) >= self.max_environments:
                victim = self._oldest_idle()
                if victim is None:
                    raise RuntimeBusy(
                        f"All {self.max_environments} execution environments are busy; try again shortly."
                    )
                victim.kill()
                self._live.discard(victim)
            environment = Environment(spec)
            self._live.add(environment)
            return environment

    def _oldest_idle(self) -> Environment | None:
        """Remove and return the environment idle the longest (lock held)."""
        candidates = [(environment.last_used, key) for key, idle in self._idle.items() for environment in idle[:1]]
        if not candidates:
            return None
        _, key = min(candidates)
        environment = self._idle[key].pop(0)
        if not self._idle[key]:
            del self._idle[key]
        return environment

    def _give_back(self, environment: Environment) -> None:
        if not environment.healthy:
            environment.kill()  # outside the lock: killing sweeps /proc
        with self._lock:
            if environment.healthy:
                self._idle.setdefault(spec_key(environment.spec), []).append(environment)
            else:
                self._live.discard(environment)

    def reap(self) -> int:
        """Kill the environments idle longer than ``idle_seconds``; how many."""
        limit = time.monotonic() - self.idle_seconds
        with self._lock:
            stale = [env for idle in self._idle.values() for env in idle if env.last_used < limit]
            for key in list(self._idle):
                self._idle[key] = [env for env in self._idle[key] if env.last_used >= limit]
                if not self._idle[key]:
                    del self._idle[key]
        for environment in stale:
            self._retire(environment)
        return len(stale)

    def _retire(self, environment: Environment) -> None:
        environment.kill()
        with self._lock:
            self._live.discard(environment)

    def close(self) -> None:
        """Kill every environment, idle or busy (a busy one's invocation ends as an exit error)."""
        with self._lock:
            self._idle.clear()
            live = list(self._live)
        for environment in live:
            self._retire(environment)

    def idle_count(self) -> int:
        """Environments waiting for an invocation."""
        with self._lock:
            return sum(len(envs) for envs in self._idle.values())

    def live_count(self) -> int:
        """Environments that exist, idle or busy."""
        with self._lock:
            return len(self._live)
