"""Dashboard pages of resources."""

from django.urls import path

from resources import views

app_name = "resources"

urlpatterns = [
    path("", views.resource_list_page, name="list"),
]
