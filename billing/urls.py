"""Billing pages outside /v1: the signed invoice PDF links."""

from django.urls import path

from billing import views

urlpatterns = [
    path("pdf/<str:token>", views.invoice_pdf, name="invoice-pdf"),
]
