"""Settings for a real gunicorn serving the test-only probe endpoints (tests.api.probe_views)."""

from elbia.settings import *  # noqa: F403

ROOT_URLCONF = "tests.api.probe_views"
