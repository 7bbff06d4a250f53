"""``elbia`` as a program, without a server: help, completion, usage errors, and what it imports."""

import subprocess
import sys

import pytest


def test_help_lists_the_command_groups(elbia):
    result = elbia.ok("--help")
    for group in ("auth", "resources", "functions", "usage", "invoices", "completion"):
        assert group in result.stdout


def test_the_client_imports_no_server_code(elbia):
    script = (
        "import sys, elbia_cli.main; "
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework', 'elbia', "
        "'resources', 'functions', 'billing', 'celery')); print(leaked)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=elbia.home, env=elbia.environment(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_scripts(elbia, shell):
    script = elbia.ok("completion", shell).stdout
    assert "_ELBIA_COMPLETE" in script
    assert f"{shell}_complete" in script


def test_completion_completes_commands_and_choices(elbia):
    def complete(words: str, index: int) -> list[str]:
        environment = {
            **elbia.environment(),
            "_ELBIA_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(index),
        }
        result = subprocess.run(elbia.command(), cwd=elbia.home, env=environment, capture_output=True, text=True)
        return [line.split(",", 1)[1] for line in result.stdout.splitlines()]

    assert "resources" in complete("elbia res", 1)
    assert complete("elbia resources list --status act", 4) == ["active"]


@pytest.mark.parametrize(
    "args",
    [
        ["resources", "frobnicate"],
        ["resources", "create"],  # --region missing
        ["resources", "create", "--region", "us-east-1"],  # --instance-type missing for compute
        ["resources", "list", "--limit", "500"],
        ["resources", "tag", "RES_0000000001", "not-a-pair"],
        ["functions", "invoke", "hello", "--data", "{not json"],
        ["--output", "yaml", "resources", "list"],
    ],
)
def test_usage_errors_exit_2(elbia, args):
    result = elbia.run(*args)
    assert result.returncode == 2, result.stderr
    assert result.stderr


def test_commands_before_signing_in_exit_3(elbia):
    result = elbia.run("resources", "list")
    assert result.returncode == 3
    assert "elbia auth login" in result.stderr


def test_deploy_refuses_a_directory_with_nothing_to_deploy(elbia, tmp_path):
    empty = tmp_path / "empty"
    (empty / "__pycache__").mkdir(parents=True)
    (empty / "__pycache__" / "x.pyc").write_bytes(b"")
    result = elbia.run("functions", "deploy", empty)
    assert result.returncode == 2
    assert "Nothing to deploy" in result.stderr


def test_deploy_refuses_a_file_that_is_not_a_zip(elbia, tmp_path):
    notes = tmp_path / "notes.zip"
    notes.write_text("not an archive")
    result = elbia.run("functions", "deploy", notes)
    assert result.returncode == 2
    assert "is neither a directory nor a ZIP archive" in result.stderr
