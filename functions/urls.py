"""Dashboard pages of functions."""

from django.urls import path

from functions import views

app_name = "functions"

urlpatterns = [
    path("", views.function_list_page, name="list"),
]
