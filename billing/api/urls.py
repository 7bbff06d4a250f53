from django.urls import path

from billing.api import views

urlpatterns = [
    path("usage/events", views.UsageEventsView.as_view(), name="usage-events"),
    path("usage", views.UsageView.as_view(), name="usage"),
    path("billing/invoices", views.InvoiceViewSet.as_view({"get": "list"}), name="invoice-list"),
    path("billing/invoices/<str:id>", views.InvoiceViewSet.as_view({"get": "retrieve"}), name="invoice-detail"),
]
