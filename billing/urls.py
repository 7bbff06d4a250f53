"""Billing pages: the dashboard's usage and invoices, and the signed invoice PDF links."""

from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("usage/", views.usage_page, name="usage"),
    path("billing/invoices/", views.invoice_list_page, name="invoices"),
    path("billing/invoices/<str:public_id>/", views.invoice_page, name="invoice"),
    path("invoices/pdf/<str:token>", views.invoice_pdf, name="invoice-pdf"),
]
