"""The outbox in a process that never imported the apps' task modules, as a web worker is."""

import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]

SCRIPT = """
import django
django.setup()
from elbia.celery import app
assert "resources.tasks.provision_resource" not in app.tasks  # nothing imported the task modules yet
from elbia.outbox import Message
Message("resources.tasks.provision_resource", (0,))()
print("sent")
"""


def test_a_fresh_process_queues_a_task_by_name():
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "elbia.settings",
        "ELBIA_TESTING": "1",
        "CELERY_BROKER_URL": "memory://",  # kombu's in-process transport: no message leaves the process
        "PYTHONPATH": str(BASE_DIR),
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=BASE_DIR, env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "Could not queue" not in result.stderr
    assert result.stdout.strip() == "sent"
