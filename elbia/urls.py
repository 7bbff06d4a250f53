from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerView

from elbia import health
from elbia.accounts import oauth
from elbia.accounts import views as dashboard_views
from elbia.api.throttling import ip_rate_limited
from elbia.favicon import favicon
from elbia.observability.http import metrics_view
from elbia.observability.system import system_view

handler400 = "elbia.api.errors.bad_request"
handler404 = "elbia.api.errors.page_not_found"
handler500 = "elbia.api.errors.server_error"

urlpatterns = [
    path("v1/", include("elbia.api.urls")),
    path("oauth/token/", ip_rate_limited("oauth-token")(oauth.TokenView.as_view()), name="oauth-token"),
    path(
        "oauth/revoke_token/",
        ip_rate_limited("oauth-revoke")(oauth.RevokeTokenView.as_view()),
        name="oauth-revoke-token",
    ),
    path("docs/", SpectacularSwaggerView.as_view(url_name="openapi-schema"), name="api-docs"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("favicon.ico", favicon, name="favicon"),
    path("admin/login/", dashboard_views.admin_login, name="admin-login"),
    path("admin/system/", admin.site.admin_view(system_view), name="admin-system"),
    path("admin/", admin.site.urls),
    path("resources/", include("resources.urls")),
    path("functions/", include("functions.urls")),
    path("", include("billing.urls")),
    path("login/", dashboard_views.LoginView.as_view(), name="login"),
    path("logout/", dashboard_views.LogoutView.as_view(), name="logout"),
    path("signup/", dashboard_views.signup, name="signup"),
    path("verify-email/<str:token>/", dashboard_views.verify_email, name="verify-email"),
    path("invitations/<str:token>/", dashboard_views.invitation, name="invitation"),
    path("", include("elbia.accounts.urls")),
]
