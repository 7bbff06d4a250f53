"""Function code: ZIP archives checked, stored once per content (keyed by sha256) and unpacked for running.

- ``check_archive(data, runtime=, handler=)``: the archive is a ZIP Elbia can deploy and run, or a
  ``ValidationError`` whose messages say what is wrong (the service files them under ``code``).
- ``code_store(data)`` / ``code_read(sha256)``: the ``code`` storage (``STORAGES["code"]``: the local
  filesystem, or an S3 bucket with ``ELBIA_CODE_BUCKET``); the same archive is stored once.
- ``decode_code_base64(text)``: a request's base64 ``code`` field (AWS Lambda's ``ZipFile``) as bytes.
- ``extract_archive(data, directory)``: what the local runtime runs from; only checked archives go in.

The limits are AWS Lambda's where it has one (50 MB zipped, 250 MB unzipped).
"""

import base64
import binascii
import hashlib
import posixpath
import re
import stat
import zipfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from functions.runtimes import RUNTIMES
from functions.validators import SHA256_HEX

MAX_ZIPPED_BYTES = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024
MAX_ENTRIES = 10_000
MAX_SYMLINK_HOPS = 40  # as Linux's ELOOP
_SHOWN = 5  # offending names quoted in one message


class CodeUnavailable(Exception):
    """The stored archive of a sha256 is missing or does not match its hash (storage lost or altered it)."""


@dataclass(frozen=True)
class Archive:
    """What a checked archive holds: its entries' count and unpacked size."""

    entries: int
    unzipped_size: int


def _size(size: int) -> str:
    return f"{size:,} bytes" + (f" ({size / (1024 * 1024):g} MB)" if size % (1024 * 1024) == 0 else "")


def _names(names: list[str]) -> str:
    shown = ", ".join(repr(name[:100]) for name in names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


def handler_files(runtime: str, handler: str) -> tuple[str, ...]:
    """The archive paths one of which must hold ``handler`` on ``runtime`` (``index.js`` for ``index.handler``...)."""
    language = RUNTIMES[runtime].language
    if language == "javascript":
        base = handler.rsplit(".", 1)[0]
        return tuple(base + extension for extension in (".js", ".mjs", ".cjs"))
    if language == "python":
        folder, _, module = handler.rsplit(".", 1)[0].rpartition("/")
        path = (folder + "/" if folder else "") + module.replace(".", "/")
        return (path + ".py", path + "/__init__.py")
    if language == "ruby":
        return (handler.rsplit(".", 1)[0] + ".rb",)
    if language == "java":  # the class at the root (packages as folders), unless jars in lib/ hold it
        return (handler.split("::")[0].replace(".", "/") + ".class",)
    if language == "csharp":  # Assembly::Namespace.Class::Method: the assembly's DLL
        return (handler.split("::")[0] + ".dll",)
    return (handler,)  # go: the executable itself


def archive_handler_problem(data: bytes, *, runtime: str, handler: str) -> str | None:
    """Why the stored (already checked) archive ``data`` cannot serve ``handler``, or ``None`` if it can."""
    with zipfile.ZipFile(BytesIO(data)) as archive:
        return _handler_problem(runtime, handler, {info.filename for info in archive.infolist() if not info.is_dir()})


def _handler_problem(runtime: str, handler: str, files: set[str]) -> str | None:
    candidates = handler_files(runtime, handler)
    if any(candidate in files for candidate in candidates):
        return None
    if RUNTIMES[runtime].language == "java" and any(
        name.startswith("lib/") and name.endswith(".jar") for name in files
    ):
        return None
    wanted = " or ".join(candidates) + (" (or jars in lib/)" if RUNTIMES[runtime].language == "java" else "")
    return f"The archive has no {wanted}: the handler {handler!r} of a {runtime} function is there."


def _resolve(parts: list[str], links: dict[str, str], hops: int = 0) -> list[str] | None:
    """``parts`` (a path from the archive's root) resolved through the archive's symlinks; ``None`` if it escapes."""
    resolved: list[str] = []
    for part in parts:
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                return None
            resolved.pop()
            continue
        resolved.append(part)
        target = links.get("/".join(resolved))
        if target is not None:
            if target.startswith("/") or hops >= MAX_SYMLINK_HOPS:
                return None
            resolved = _resolve(resolved[:-1] + target.split("/"), links, hops + 1)
            if resolved is None:
                return None
    return resolved


def _path_problems(infos: list[zipfile.ZipInfo], links: dict[str, str]) -> list[str]:
    """Entries that would land outside the function's folder, or write through a symlink."""
    problems = []
    unsafe = [
        info.filename
        for info in infos
        if info.filename.startswith("/")
        or "\\" in info.filename
        or re.match(r"[A-Za-z]:", info.filename)
        or ".." in info.filename.split("/")
    ]
    if unsafe:
        problems.append(
            f"Entries must be relative paths inside the archive (no leading '/', drive letter, '\\' or '..'): "
            f"{_names(unsafe)}."
        )
    escaping = [
        name
        for name, target in links.items()
        if target.startswith("/") or _resolve(name.split("/")[:-1] + target.split("/"), links) is None
    ]
    if escaping:
        problems.append(f"Symbolic links must point inside the archive: {_names(escaping)}.")
    through = [
        info.filename
        for info in infos
        if any("/".join(info.filename.split("/")[:depth]) in links for depth in range(1, info.filename.count("/") + 1))
    ]
    if through:
        problems.append(f"Entries must not sit inside a symbolically linked folder: {_names(through)}.")
    return problems


def check_archive(data: bytes, *, runtime: str, handler: str) -> Archive:
    """Check that ``data`` is a ZIP the ``runtime`` can run ``handler`` from; ``ValidationError`` saying what is wrong.

    A valid ZIP (every entry's checksum verified), at most 50 MB zipped, 250 MB unzipped and 10,000
    entries, no encrypted entries, no absolute or ``..`` paths, no symbolic link leading outside, no
    duplicate names, and the handler's file present (``index.js``/``.mjs``/``.cjs`` for ``index.handler``
    on Node.js, ``app.py`` for ``app.handler`` on Python, and so on; see ``handler_files``).
    """
    if not isinstance(data, bytes | bytearray):
        raise ValidationError("The code must be the bytes of a ZIP archive.")
    if not data:
        raise ValidationError("The code is empty: send a ZIP archive.")
    if len(data) > MAX_ZIPPED_BYTES:
        raise ValidationError(
            f"The archive is {_size(len(data))}; at most {_size(MAX_ZIPPED_BYTES)} zipped are allowed."
        )
    try:
        archive = zipfile.ZipFile(BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError):
        raise ValidationError("The code is not a ZIP archive (or the archive is damaged).") from None
    with archive:
        infos = archive.infolist()
        if not infos:
            raise ValidationError("The archive is empty: it needs at least the handler's file.")
        if len(infos) > MAX_ENTRIES:
            raise ValidationError(f"The archive has {len(infos)} entries; at most {MAX_ENTRIES} are allowed.")
        unzipped = sum(info.file_size for info in infos)
        if unzipped > MAX_UNZIPPED_BYTES:
            raise ValidationError(
                f"The archive unpacks to {_size(unzipped)}; at most {_size(MAX_UNZIPPED_BYTES)} unzipped are allowed."
            )
        encrypted = [info.filename for info in infos if info.flag_bits & 0x1]
        if encrypted:
            raise ValidationError(f"The archive has encrypted entries, which cannot be run: {_names(encrypted)}.")
        try:
            damaged = archive.testzip()
            links = {
                info.filename: archive.read(info).decode("utf-8")
                for info in infos
                if _is_symlink(info) and not info.is_dir()
            }
        except (zipfile.BadZipFile, NotImplementedError, EOFError, OSError, UnicodeDecodeError, ValueError) as error:
            raise ValidationError(f"The archive is damaged or uses an unsupported feature: {error}") from None
        if damaged is not None:
            raise ValidationError(f"The archive is damaged: the checksum of {damaged!r} does not match.")
    problems = _path_problems(infos, links)
    names = [info.filename.rstrip("/") for info in infos]
    duplicates = sorted({name for name in names if names.count(name) > 1}) if len(set(names)) != len(names) else []
    if duplicates:
        problems.append(f"The archive holds the same path more than once: {_names(duplicates)}.")
    files = {info.filename for info in infos if not info.is_dir()}
    handler_problem = _handler_problem(runtime, handler, files) if runtime in RUNTIMES else None
    if handler_problem:
        problems.append(handler_problem)
    if problems:
        raise ValidationError(problems)
    return Archive(entries=len(infos), unzipped_size=unzipped)


def decode_code_base64(value) -> bytes:
    """A request's ``code`` (base64 of a ZIP, as AWS Lambda's ``ZipFile``) decoded; ``ValidationError`` if it is not."""
    if not isinstance(value, str):
        raise ValidationError("The code must be a base64 string of a ZIP archive.")
    if len(value) > (MAX_ZIPPED_BYTES + 2) // 3 * 4 + 4:
        raise ValidationError(f"The archive is larger than {_size(MAX_ZIPPED_BYTES)} zipped.")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise ValidationError("The code is not valid base64 (standard alphabet, with padding).") from None


def _storage():
    return storages["code"]


def _object_name(sha256: str) -> str:
    return f"{sha256[:2]}/{sha256}.zip"


def code_store(data: bytes) -> tuple[str, int]:
    """Store an archive in the ``code`` storage once per content; its sha256 (hex) and size in bytes.

    Storing bytes already stored writes nothing. Two processes storing the same new bytes at once both
    end with the one object (a second copy under another name is removed).
    """
    sha256 = hashlib.sha256(data).hexdigest()
    storage, name = _storage(), _object_name(sha256)
    if not storage.exists(name):
        saved = storage.save(name, ContentFile(bytes(data)))
        if saved != name:  # a concurrent store of the same bytes took the name first
            storage.delete(saved)
    return sha256, len(data)


def code_read(sha256: str) -> bytes:
    """The stored archive whose sha256 (hex) is ``sha256``; ``CodeUnavailable`` if it is missing or altered."""
    if not isinstance(sha256, str) or not SHA256_HEX.fullmatch(sha256):
        raise CodeUnavailable(f"{sha256!r} is not a sha256 (64 lowercase hex digits).")
    try:
        with _storage().open(_object_name(sha256), "rb") as stored:
            data = stored.read()
    except FileNotFoundError:
        raise CodeUnavailable(f"The code {sha256} is missing from the code storage.") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise CodeUnavailable(f"The stored code {sha256} does not match its hash.")
    return data


def extract_archive(data: bytes, directory: Path) -> None:
    """Unpack a checked archive into ``directory`` (which must not exist yet), symbolic links included."""
    directory.mkdir(parents=True)
    with zipfile.ZipFile(BytesIO(data)) as archive:
        links = []
        for info in archive.infolist():
            target = directory / info.filename
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            elif _is_symlink(info):
                links.append((target, archive.read(info).decode("utf-8")))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, open(target, "wb") as sink:
                    while chunk := source.read(1024 * 1024):
                        sink.write(chunk)
                mode = (info.external_attr >> 16) & 0o777 if info.create_system == 3 else 0
                target.chmod((mode | 0o644) & 0o755)  # readable by all; executable bits kept (go's bootstrap)
        for link, pointing_to in links:
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(posixpath.normpath(pointing_to))
