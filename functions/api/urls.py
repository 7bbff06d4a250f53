from django.urls import path
from rest_framework.routers import SimpleRouter

from functions.api import views

router = SimpleRouter(trailing_slash=False)
router.register("functions", views.FunctionViewSet, basename="function")

urlpatterns = [
    path("runtimes", views.RuntimeListView.as_view(), name="runtime-list"),
    *router.urls,
]
