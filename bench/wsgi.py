"""The benchmark's gunicorn application: ``/bench-raw/...`` to the raw floor (no Django), the rest to Django.

Django (``bench.settings``: the product plus the Django floor) is loaded as the Procfile's web
process loads it; the raw floor shares the same gunicorn workers, so the three sides of a
measurement run under the same server, processes and load.
"""

from bench import raw
from elbia.wsgi import application as django_application


def application(environ, start_response):
    if environ.get("PATH_INFO", "").startswith("/bench-raw/"):
        return raw.application(environ, start_response)
    return django_application(environ, start_response)
