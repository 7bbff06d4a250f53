"""URLs of the benchmark's gunicorn: the floor's endpoints under /bench-floor/, then the product's own URLs."""

from django.urls import include, path

from bench import floor

urlpatterns = [
    path("bench-floor/resources", floor.resources),
    path("bench-floor/resources/<str:public_id>", floor.resource_detail),
    path("bench-floor/functions", floor.functions),
    path("bench-floor/usage", floor.usage),
    path("bench-floor/usage/events", floor.usage_events),
    path("", include("elbia.urls")),
]

handler404 = "elbia.api.errors.page_not_found"
handler500 = "elbia.api.errors.server_error"
