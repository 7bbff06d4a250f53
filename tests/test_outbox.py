"""The outbox queues work from processes that never import the tasks modules (a web process)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent

SEND = """
import django
django.setup()
from elbia.celery import app
from elbia.outbox import Message
assert "resources.tasks.provision_resource" not in app.tasks  # as in gunicorn: no tasks module imported
Message("resources.tasks.provision_resource", (424242,))()
"""


@pytest.mark.slow
def test_a_process_without_the_tasks_modules_still_queues_the_message():
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    broker.delete(queue)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "elbia.settings", "REDIS_URL": settings.CELERY_BROKER_URL}
    sent = subprocess.run([sys.executable, "-c", SEND], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert sent.returncode == 0, sent.stderr
    assert "Could not queue" not in sent.stderr
    assert broker.llen(queue) == 1
    broker.delete(queue)
