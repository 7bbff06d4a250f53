"""Functions pages outside /v1: the dashboard's pages, and the signed code download links."""

from django.urls import path

from functions import views

app_name = "functions"

urlpatterns = [
    path("", views.function_list_page, name="list"),
    path("code/<str:token>", views.function_code_download, name="code"),
    path("new/", views.function_create_page, name="create"),
    path("<str:public_id>/", views.function_detail_page, name="detail"),
    path("<str:public_id>/lifecycle/", views.function_lifecycle_fragment, name="lifecycle"),
    path("<str:public_id>/edit/", views.function_edit_page, name="edit"),
    path("<str:public_id>/code/", views.function_code_page, name="upload_code"),
    path("<str:public_id>/deprecate/", views.function_deprecate_page, name="deprecate"),
    path("<str:public_id>/delete/", views.function_delete_page, name="delete"),
    path("<str:public_id>/retry/", views.function_retry, name="retry"),
    path("<str:public_id>/invoke/", views.function_invoke, name="invoke"),
]
