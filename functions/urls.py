"""Functions pages outside /v1: the signed code download links."""

from django.urls import path

from functions import views

urlpatterns = [
    path("code/<str:token>", views.function_code, name="function-code"),
]
