"""The local `.env` that `make` writes: read by settings (the environment wins), written once, never overwritten;
without it, or a SECRET_KEY, a process with DEBUG off refuses to start."""

import subprocess

import pytest

pytestmark = pytest.mark.slow

SHOW = ["shell", "--no-imports", "-c", "from django.conf import settings; print(settings.DEBUG, settings.SECRET_KEY)"]


def dotenv(copy) -> dict[str, str]:
    lines = (copy.path / ".env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_settings_read_the_generated_env(embedded):
    written = dotenv(embedded)
    assert written["DEBUG"] == "1"
    assert len(written["SECRET_KEY"]) >= 50
    assert embedded.manage(*SHOW).split() == ["True", written["SECRET_KEY"]]


def test_the_environment_wins_over_the_file(embedded):
    done = embedded.run("env", "DEBUG=0", "SECRET_KEY=from-the-environment", ".venv/bin/python", "manage.py", *SHOW)
    assert done.stdout.split() == ["False", "from-the-environment"]


def test_make_never_overwrites_it(embedded):
    (embedded.path / ".env").write_text("DEBUG=1\nSECRET_KEY=mine\n")
    embedded.run("make", "--no-print-directory", "-s", ".env")
    assert dotenv(embedded) == {"DEBUG": "1", "SECRET_KEY": "mine"}


def test_without_it_debug_off_refuses_to_start(embedded):
    (embedded.path / ".env").unlink()
    done = subprocess.run(
        [".venv/bin/python", "manage.py", "check"],
        cwd=embedded.path,
        env=embedded.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in done.stderr
