"""The dashboard's own pages (namespace ``dashboard``): the overview and Account Settings.

Each app's pages are in its own ``urls.py``; sign-in, sign-out and sign-up are in elbia/urls.py.
"""

from django.urls import path

from elbia.accounts import views

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    path("switch-account/", views.switch_account, name="switch-account"),
    path("settings/", views.account_settings, name="settings"),
    path("settings/verify-email/", views.resend_verification, name="resend-verification"),
    path("settings/members/", views.members, name="members"),
    path("settings/members/invite/", views.member_invite, name="member-invite"),
    path("settings/members/invitations/<int:pk>/cancel/", views.invitation_cancel_view, name="invitation-cancel"),
    path("settings/members/<int:pk>/role/", views.member_role, name="member-role"),
    path("settings/members/<int:pk>/remove/", views.member_remove, name="member-remove"),
    path("settings/activity/", views.activity, name="activity"),
    path("settings/tokens/", views.tokens, name="tokens"),
    path("settings/tokens/new/", views.token_create, name="token-create"),
    path("settings/tokens/<int:pk>/revoke/", views.token_revoke_view, name="token-revoke"),
]
