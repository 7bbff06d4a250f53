from django.urls import path
from rest_framework.routers import SimpleRouter

from functions.api import invocations, views

router = SimpleRouter(trailing_slash=False)
router.register("functions", views.FunctionViewSet, basename="function")

invocation_list = invocations.InvocationViewSet.as_view({"get": "list", "post": "create"})
invocation_detail = invocations.InvocationViewSet.as_view({"get": "retrieve"})

urlpatterns = [
    path("runtimes", views.RuntimeListView.as_view(), name="runtime-list"),
    path("functions/<str:function_id>/invocations", invocation_list, name="invocation-list"),
    path("functions/<str:function_id>/invocations/<str:id>", invocation_detail, name="invocation-detail"),
    *router.urls,
]
