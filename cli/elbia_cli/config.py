"""The per-user configuration: named contexts (a server and a token pair each) and the current one.

The file (``~/.config/elbia/config.json``, or ``$ELBIA_CONFIG``) holds secrets: it is written with mode
0600 in a directory made with mode 0700, always as a whole new file renamed over the old one, so a
reader never sees half a file. Every change happens under an exclusive ``fcntl`` lock on a sidecar
lock file (``config.json.lock``), after reading the file again: two ``elbia`` processes renewing the
same token at once then renew it once, and the second one uses the pair the first one stored. The lock
is on a sidecar because the config file itself is replaced on every write: a lock on the old inode
would not exclude a process that opened the new one.
"""

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

from elbia_cli.errors import AuthError, CliError, ExitCode

DEFAULT_CLIENT_ID = "elbia-cli"
DEFAULT_SERVER = "http://127.0.0.1:8000"
# Renew a token this long before it expires, so that no command, however long it waits, sees it expire.
RENEW_MARGIN = timedelta(hours=1)


def config_path() -> Path:
    """``$ELBIA_CONFIG``, else ``$XDG_CONFIG_HOME/elbia/config.json``, else ``~/.config/elbia/config.json``."""
    explicit = os.environ.get("ELBIA_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "elbia" / "config.json"


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass
class Context:
    """One server and the token pair that signs in to one account there."""

    server: str
    access_token: str
    refresh_token: str | None = None
    client_id: str = DEFAULT_CLIENT_ID
    expires_at: str | None = None  # RFC 3339; unknown until the first renewal when the token was pasted
    scopes: list[str] | None = None  # likewise
    renewed_at: str | None = None

    @classmethod
    def from_dict(cls, data: dict) -> "Context":
        known = {item.name for item in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def expires_soon(self, now: datetime | None = None) -> bool:
        expires = parse_time(self.expires_at)
        return expires is not None and expires - (now or datetime.now(UTC)) < RENEW_MARGIN


@dataclass
class Config:
    current: str | None = None
    contexts: dict[str, Context] = field(default_factory=dict)

    def context(self, name: str | None = None) -> tuple[str, Context]:
        """The named context, or the current one; an auth error (exit 3) when there is none."""
        name = name or self.current
        if not name or name not in self.contexts:
            if name and self.contexts:
                known = ", ".join(sorted(self.contexts))
                raise CliError(f"No context named '{name}' (known: {known}).", ExitCode.USAGE)
            raise AuthError("Not signed in: run `elbia auth login` first.")
        return name, self.contexts[name]

    def to_dict(self) -> dict:
        return {"current": self.current, "contexts": {name: asdict(ctx) for name, ctx in self.contexts.items()}}


class ConfigStore:
    """Reads the config, and changes it under the lock (re-reading it first), atomically."""

    def __init__(self, path: Path | None = None):
        self.path = path or config_path()
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    def load(self) -> Config:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return Config()
        try:
            data = json.loads(text)
            contexts = {name: Context.from_dict(value) for name, value in data.get("contexts", {}).items()}
            return Config(current=data.get("current"), contexts=contexts)
        except (ValueError, TypeError, AttributeError) as exc:
            raise CliError(f"The config file {self.path} is not valid ({exc}); fix or remove it.") from None

    @contextmanager
    def locked(self) -> Iterator[Config]:
        """Hold the lock, yield the config as it is on disk now, and save it (atomically) if the block succeeds."""
        self._ensure_directory()
        descriptor = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            config = self.load()
            before = config.to_dict()
            yield config
            if config.to_dict() != before:
                self._write(config)
        finally:
            os.close(descriptor)  # closing releases the lock

    def _ensure_directory(self) -> None:
        directory = self.path.parent
        if not directory.exists():
            directory.mkdir(parents=True, mode=0o700)
            directory.chmod(0o700)  # whatever the umask

    def _write(self, config: Config) -> None:
        """A new file (0600) in the same directory, flushed, then renamed over the old one."""
        descriptor, temporary = tempfile.mkstemp(prefix=".config-", suffix=".tmp", dir=self.path.parent)
        try:
            os.fchmod(descriptor, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(config.to_dict(), handle, indent=2)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
