"""Every /v1 route: each app contributes its own, then unknown paths get the JSON 404."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularJSONAPIView

from elbia.api.errors import not_found_view

urlpatterns = [
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi-schema"),
    path("", include("resources.api.urls")),
    path("", include("functions.api.urls")),
    path("", include("billing.api.urls")),
    re_path(r"^.*$", not_found_view),
]
