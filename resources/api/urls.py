from django.urls import path

from resources.api import views

urlpatterns = [
    path("regions", views.RegionListView.as_view(), name="region-list"),
    path("instance-types", views.InstanceTypeListView.as_view(), name="instance-type-list"),
]
