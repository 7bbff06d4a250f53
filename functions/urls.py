"""Functions pages outside /v1: the dashboard's list, and the signed code download links."""

from django.urls import path

from functions import views

app_name = "functions"

urlpatterns = [
    path("", views.function_list_page, name="list"),
    path("code/<str:token>", views.function_code_download, name="code"),
]
