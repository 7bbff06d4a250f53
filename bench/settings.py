"""Settings of the benchmark's gunicorn: the product's settings, with the floor's URLs added (bench/floor_urls.py)."""

from elbia.settings import *  # noqa: F403

ROOT_URLCONF = "bench.floor_urls"
