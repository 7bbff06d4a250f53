"""``/favicon.ico``: browsers ask for it on every page that names no icon (the API docs, the admin, error pages)."""

from functools import cache

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

ICON_PATH = settings.BASE_DIR / "static" / "favicon.ico"  # the logo (static/img/logo.svg) at 16, 32 and 48 px
MAX_AGE = 7 * 24 * 3600


@cache
def _icon() -> bytes:
    return ICON_PATH.read_bytes()


@require_safe
@cache_control(public=True, max_age=MAX_AGE)
def favicon(request) -> HttpResponse:
    return HttpResponse(_icon(), content_type="image/x-icon")
