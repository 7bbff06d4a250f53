"""``pip install ./cli`` into a fresh virtualenv gives a working ``elbia`` that does not bring the server along."""

import shutil
import subprocess
import sys

import pytest

from tests.cli.conftest import CLI_DIR


@pytest.mark.slow
def test_pip_install_into_a_fresh_virtualenv(tmp_path):
    source = tmp_path / "cli"  # a copy, so that the build leaves nothing in the repository
    shutil.copytree(CLI_DIR, source, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    install = subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "install", "--quiet", source],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr

    result = subprocess.run(
        [venv / "bin" / "elbia", "--help"], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "resources" in result.stdout and "functions" in result.stdout

    installed = subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "list", "--format", "freeze"], capture_output=True, text=True, timeout=60
    ).stdout.lower()
    assert "httpx==0.28.1" in installed and "click==8.5.1" in installed and "rich==15.0.0" in installed
    assert "django" not in installed
