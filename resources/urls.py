"""Dashboard pages of resources."""

from django.urls import path

from resources import views

app_name = "resources"

urlpatterns = [
    path("", views.resource_list_page, name="list"),
    path("new/", views.resource_create_page, name="create"),
    path("new-vpc/", views.vpc_create_page, name="create-vpc"),
    path("<str:public_id>/", views.resource_detail_page, name="detail"),
    path("<str:public_id>/lifecycle/", views.resource_lifecycle_fragment, name="lifecycle"),
    path("<str:public_id>/edit/", views.resource_edit_page, name="edit"),
    path("<str:public_id>/delete/", views.resource_delete_page, name="delete"),
    path("<str:public_id>/retry/", views.resource_retry, name="retry"),
]
