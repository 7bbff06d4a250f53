from django.urls import path
from rest_framework.routers import SimpleRouter

from resources.api import views

router = SimpleRouter(trailing_slash=False)
router.register("resources", views.ResourceViewSet, basename="resource")

urlpatterns = [
    path("regions", views.RegionListView.as_view(), name="region-list"),
    path("instance-types", views.InstanceTypeListView.as_view(), name="instance-type-list"),
    *router.urls,
]
