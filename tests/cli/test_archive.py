"""``elbia functions deploy``'s archive: the same files give the same bytes; .elbiaignore is honoured."""

import io
import os
import zipfile

import pytest
from elbia_cli.archive import build_archive, included_files, is_ignored, parse_patterns, sha256


def write(root, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "hello"
    write(
        root,
        {
            "app.py": "def handler(event, context):\n    return event\n",
            "lib/util.py": "X = 1\n",
            "lib/data/table.csv": "a,b\n",
        },
    )
    return root


def test_the_same_files_give_the_same_bytes_whenever_and_in_whatever_order_they_were_written(project, tmp_path):
    first = build_archive(project)
    for path in project.rglob("*"):
        os.utime(path, (1_000_000_000, 1_000_000_000))  # other timestamps
    other = tmp_path / "other"
    write(other, {"lib/data/table.csv": "a,b\n", "lib/util.py": "X = 1\n"})  # written in another order
    write(other, {"app.py": "def handler(event, context):\n    return event\n"})
    assert build_archive(project) == first
    assert build_archive(other) == first
    assert sha256(first) == sha256(build_archive(other))
    write(project, {"lib/util.py": "X = 2\n"})
    assert build_archive(project) != first


def test_entries_are_sorted_files_with_fixed_times_and_unix_permissions(project):
    (project / "run.sh").write_text("#!/bin/sh\n")
    (project / "run.sh").chmod(0o755)
    entries = zipfile.ZipFile(io.BytesIO(build_archive(project))).infolist()
    assert [entry.filename for entry in entries] == ["app.py", "lib/data/table.csv", "lib/util.py", "run.sh"]
    assert {entry.date_time for entry in entries} == {(1980, 1, 1, 0, 0, 0)}
    modes = {entry.filename: entry.external_attr >> 16 for entry in entries}
    assert modes["run.sh"] == 0o100755 and modes["app.py"] == 0o100644
    archive = zipfile.ZipFile(io.BytesIO(build_archive(project)))
    assert archive.read("lib/util.py") == b"X = 1\n"


def test_elbiaignore_and_the_always_ignored_names(project):
    write(
        project,
        {
            ".elbiaignore": "# build output\nbuild/\n*.log\n!keep.log\n/notes.txt\ndocs/**/*.md\ntests\n",
            "build/out.js": "",
            "debug.log": "",
            "lib/trace.log": "",
            "keep.log": "",
            "notes.txt": "",
            "lib/notes.txt": "",  # /notes.txt is anchored to the top
            "docs/a/b/page.md": "",
            "docs/readme.txt": "",
            "tests/test_app.py": "",
            "lib/tests/test_util.py": "",  # a name without a slash matches at any depth
            ".git/HEAD": "",
            "__pycache__/app.cpython-311.pyc": "",
            "lib/util.pyc": "",
        },
    )
    assert included_files(project) == [
        "app.py",
        "docs/readme.txt",
        "keep.log",
        "lib/data/table.csv",
        "lib/notes.txt",
        "lib/util.py",
    ]


@pytest.mark.parametrize(
    ("patterns", "path", "is_dir", "ignored"),
    [
        (["*.py"], "a/b/c.py", False, True),
        (["a/*.py"], "a/b/c.py", False, False),
        (["a/**/c.py"], "a/b/x/c.py", False, True),
        (["a/**/c.py"], "a/c.py", False, True),
        (["dist/"], "dist", False, False),  # a trailing slash matches directories only
        (["dist/"], "dist", True, True),
        (["file?.txt"], "file1.txt", False, True),
        (["file[0-9].txt"], "filex.txt", False, False),
        (["*.txt", "!keep.txt"], "keep.txt", False, False),
        (["\\#hash"], "#hash", False, True),
        (["   ", "# comment"], "comment", False, False),
    ],
)
def test_patterns(patterns, path, is_dir, ignored):
    assert is_ignored(path, is_dir, parse_patterns(patterns)) is ignored
