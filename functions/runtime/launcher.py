"""Enter the sandbox, then become the function's runtime: the first program of every execution environment.

Run as ``python -I -S launcher.py`` with the sandbox's description on standard input, in ``marshal``'s
format (the same interpreter writes it; ``json`` would cost this start its ``re`` import), never in argv,
which every local user can read: namespaces, limits, user, working directory, control pipes,
environment and the runtime's argv. It is single-threaded and imports only the standard library, so
what ``preexec_fn`` cannot do safely in the multi-threaded runner happens here, before ``execve``.

``--probe`` prints, as JSON, which isolation this host grants (the runner asks once at start).
On a sandbox step that fails although it was asked for, it writes ``launcher: <reason>`` to standard
error and exits 127: the runner reports that as the start error.
"""

import ctypes
import marshal
import os
import resource
import sys
import time

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 2, 4, 16384, 1 << 18
PR_SET_NO_NEW_PRIVS = 38
LINUX_CAPABILITY_VERSION_3 = 0x20080522
IN_PROCESS = "-"  # argv[0] meaning: run the Python script argv[1] here instead of exec'ing a program
PRIVATE_DIRS = ("/tmp", "/var/tmp", "/dev/shm")  # the world-writable places, each a private tmpfs

_libc = ctypes.CDLL(None, use_errno=True)  # the interpreter's own libc (find_library would run ldconfig)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    _check(
        _libc.mount(
            source.encode(),
            target.encode(),
            fstype.encode() if fstype else None,
            flags,
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def _write(path: str, text: str) -> None:
    with open(path, "w") as file:
        file.write(text)


def enter_namespaces(*, as_root: bool) -> None:
    """A new network namespace (no interface but a down loopback) and a mount namespace with a private /tmp.

    As root, directly; otherwise inside a new user namespace mapping only the current user to itself.
    """
    if as_root:
        _unshare(CLONE_NEWNET | CLONE_NEWNS)
    else:
        uid, gid = os.getuid(), os.getgid()
        _unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS)
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
    _mount("none", "/", None, MS_REC | MS_PRIVATE, None)  # nothing mounted here shows outside
    for directory in PRIVATE_DIRS:
        if os.path.isdir(directory):
            _mount("tmpfs", directory, "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777")


class _CapabilityHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapabilityData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_privileges() -> None:
    """No capability left (a new user namespace grants them all inside it) and none to gain by exec'ing a program.

    Needed because the Python runtime is not exec'd (an ``execve`` would clear them for a non-root user).
    """
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    header = _CapabilityHeader(LINUX_CAPABILITY_VERSION_3, 0)
    _check(_libc.capset(ctypes.byref(header), (_CapabilityData * 2)()), "capset")


def probe() -> dict:
    """Which isolation this host grants: ``{"root": bool, "namespaces": bool, "reason": str}``."""
    as_root = os.geteuid() == 0
    try:
        enter_namespaces(as_root=as_root)
    except OSError as error:
        return {"root": as_root, "namespaces": False, "reason": str(error)}
    return {"root": as_root, "namespaces": True, "reason": ""}


def main() -> None:
    if sys.argv[1:] == ["--probe"]:
        import json

        print(json.dumps(probe()))
        return
    config = marshal.loads(sys.stdin.buffer.read())  # noqa: S302 (written by the runner, our parent)
    try:
        if config["namespaces"]:
            enter_namespaces(as_root=os.geteuid() == 0)
        for name, (soft, hard) in config["limits"].items():
            resource.setrlimit(getattr(resource, f"RLIMIT_{name}"), (soft, hard))
        # The control pipes become fds 3 (events in) and 4 (results out); nothing else is inherited.
        os.dup2(config["events_fd"], 3)
        os.dup2(config["results_fd"], 4)
        os.closerange(5, 1 << 16)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        if config["uid"] is not None:
            os.setgroups([])
            os.setgid(config["gid"])
            os.setuid(config["uid"])
        drop_privileges()
        os.chdir(config["cwd"])
        os.umask(0o077)
        if config["argv"][0] != IN_PROCESS:
            os.execve(config["argv"][0], config["argv"], config["env"])
    except OSError as error:
        sys.stderr.write(f"launcher: {error}\n")
        sys.stderr.flush()
        os._exit(127)
    run_here(config["argv"][1:], config["env"])


def run_here(argv: list[str], environment: dict[str, str]) -> None:
    """Run the Python script ``argv[0]`` in this very interpreter, now sandboxed: one interpreter start, not two.

    The launcher was started as the Python runtime is (``python3.11 -I -S -u -B``); what it imported
    (ctypes, marshal, resource) stays loaded, nothing else of it is reachable but this module's globals.
    """
    os.environ.clear()
    os.environ.update(environment)
    time.tzset()
    sys.argv = list(argv)
    with open(argv[0], "rb") as source:
        code = compile(source.read(), argv[0], "exec")
    exec(code, {"__name__": "__main__", "__file__": argv[0], "__builtins__": __builtins__})  # noqa: S102


if __name__ == "__main__":
    main()
