"""Content-Security-Policy on the dashboard, not on the admin or the API reference."""

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db


def test_dashboard_pages_send_the_content_security_policy(client, user):
    assert client.get("/login/")["Content-Security-Policy"] == settings.CONTENT_SECURITY_POLICY
    client.force_login(user)
    for path in ["/", "/resources/", "/settings/tokens/", "/settings/tokens/new/"]:
        response = client.get(path)
        assert response["Content-Security-Policy"] == settings.CONTENT_SECURITY_POLICY, path
        assert response["X-Frame-Options"] == "DENY"
        assert "no-store" in response["Cache-Control"]
        assert b"<script>" not in response.content  # every script comes from /static/


def test_the_policy_allows_no_inline_script_or_foreign_origin():
    policy = dict(part.strip().split(" ", 1) for part in settings.CONTENT_SECURITY_POLICY.split(";"))
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"


def test_admin_and_api_reference_keep_their_inline_code_working(client):
    docs = client.get("/docs/")
    assert docs.status_code == 200
    assert "Content-Security-Policy" not in docs
    admin = client.get("/admin/login/")
    assert admin.status_code == 200
    assert "Content-Security-Policy" not in admin


def test_json_responses_are_left_alone(client):
    assert "Content-Security-Policy" not in client.get("/v1/regions")


def test_unknown_dashboard_page_is_a_styled_404(client, user):
    client.force_login(user)
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()
