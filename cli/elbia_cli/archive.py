"""Reproducible ZIP archives of a function's directory, skipping what ``.elbiaignore`` names.

The same files give the same bytes, and so the same SHA-256, whoever zips them and whenever:
entries are sorted by path, every timestamp is 1980-01-01 (ZIP's epoch), permissions are 0644
(0755 for executables), there are no directory entries and no extra fields.

``.elbiaignore`` follows ``.gitignore``'s rules for the common cases: one pattern a line, ``#``
comments, ``*``, ``?``, ``[...]`` and ``**``; a pattern without a slash matches a name at any depth,
one with a slash is relative to the directory; a trailing ``/`` matches directories only; ``!``
re-includes what an earlier pattern excluded (not inside an excluded directory). The last matching
pattern wins. ``.git/``, ``__pycache__/``, ``*.pyc``, ``.DS_Store`` and ``.elbiaignore`` are always
left out. Symbolic links to directories are not followed.
"""

import hashlib
import io
import os
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

IGNORE_FILE = ".elbiaignore"
ALWAYS_IGNORED = (".git/", "__pycache__/", "*.pyc", ".DS_Store", f"/{IGNORE_FILE}")
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
MAX_ARCHIVE_BYTES = 50 * 1024 * 1024  # the API's limit for PUT /v1/functions/{id}/code


@dataclass(frozen=True)
class Pattern:
    regex: re.Pattern
    negated: bool
    directories_only: bool

    def matches(self, path: str, is_dir: bool) -> bool:
        return (is_dir or not self.directories_only) and self.regex.fullmatch(path) is not None


def _translate(glob: str) -> str:
    """A gitignore glob (already stripped of ``!``, leading and trailing slashes) as a regular expression."""
    out, i = [], 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("/**", i) and i + 3 == len(glob):
            out.append("/.*")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        elif glob[i] == "[" and "]" in glob[i + 2 :]:
            end = glob.index("]", i + 2)
            body = glob[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]")
            i = end + 1
        elif glob[i] == "\\" and i + 1 < len(glob):
            out.append(re.escape(glob[i + 1]))
            i += 2
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return "".join(out)


def parse_patterns(lines: list[str]) -> list[Pattern]:
    patterns = []
    for raw in lines:
        line = raw.rstrip("\n").rstrip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        if negated:
            line = line[1:]
        directories_only = line.endswith("/")
        line = line.rstrip("/")
        anchored = "/" in line
        line = line.lstrip("/")
        if not line:
            continue
        regex = _translate(line)
        if not anchored:
            regex = "(?:.*/)?" + regex
        patterns.append(Pattern(re.compile(regex, re.DOTALL), negated, directories_only))
    return patterns


def is_ignored(path: str, is_dir: bool, patterns: list[Pattern]) -> bool:
    ignored = False
    for pattern in patterns:
        if pattern.matches(path, is_dir):
            ignored = not pattern.negated
    return ignored


def included_files(root: Path) -> list[str]:
    """The directory's files to archive, as sorted POSIX paths relative to it."""
    ignore_file = root / IGNORE_FILE
    lines = list(ALWAYS_IGNORED)
    if ignore_file.is_file():
        lines += ignore_file.read_text(encoding="utf-8").splitlines()
    patterns = parse_patterns(lines)
    found = []
    for directory, subdirectories, files in os.walk(root):
        relative = Path(directory).relative_to(root).as_posix()
        prefix = "" if relative == "." else relative + "/"
        subdirectories[:] = [name for name in subdirectories if not is_ignored(prefix + name, True, patterns)]
        found += [prefix + name for name in files if not is_ignored(prefix + name, False, patterns)]
    return sorted(found)


def build_archive(root: Path) -> bytes:
    """The reproducible ZIP of ``root``'s included files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in included_files(root):
            path = root / name
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.create_system = 3  # Unix, so that the permission bits below are read
            executable = path.stat().st_mode & stat.S_IXUSR
            info.external_attr = ((0o100755 if executable else 0o100644) & 0xFFFF) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
