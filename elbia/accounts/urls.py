"""The dashboard's pages (namespace ``dashboard``); sign-in, sign-out and sign-up are in elbia/urls.py."""

from django.urls import path

from elbia.accounts import views

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    path("resources/", views.resources, name="resources"),
    path("functions/", views.functions, name="functions"),
    path("usage/", views.usage, name="usage"),
    path("billing/invoices/", views.invoices, name="invoices"),
    path("billing/invoices/<str:public_id>/", views.invoice_detail, name="invoice"),
    path("settings/", views.account_settings, name="settings"),
    path("settings/verify-email/", views.resend_verification, name="resend-verification"),
    path("settings/tokens/", views.tokens, name="tokens"),
    path("settings/tokens/new/", views.token_create, name="token-create"),
    path("settings/tokens/<int:pk>/revoke/", views.token_revoke_view, name="token-revoke"),
]
