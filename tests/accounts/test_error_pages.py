"""The dashboard's own "Page not found" and "Something went wrong" pages, with DEBUG on and off.

With DEBUG on Django would show its technical pages; on the dashboard's URLs the customer's pages are
shown instead (the error is logged). /v1 answers JSON either way, and /admin/ keeps Django's pages.
"""

import logging

import pytest
from django.test import Client

from tests.factories import ResourceFactory

pytestmark = pytest.mark.django_db

DASHBOARD = 'class="topbar"'


def broken(**kwargs):
    raise RuntimeError("the database caught fire")


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize(
    "path", ["/no-such-page/", "/resources/RES_0000000000/", "/resources/not-an-id/edit/", "/functions/FUNC_1/"]
)
def test_a_missing_page_is_the_dashboards_404(signed_in, settings, debug, path):
    settings.DEBUG = debug
    response = signed_in.get(path)
    assert response.status_code == 404
    page = response.content.decode()
    assert "<h1>Page not found</h1>" in page and DASHBOARD in page and "Back to the overview" in page
    assert "Traceback" not in page and "URLconf" not in page
    assert response["Content-Security-Policy"] == settings.CONTENT_SECURITY_POLICY  # no inline code, DEBUG or not


def test_another_accounts_object_is_the_same_404_with_debug_on(signed_in, settings, other_user):
    settings.DEBUG = True
    theirs = ResourceFactory(account=other_user.account)
    response = signed_in.get(f"/resources/{theirs.public_id}/")
    assert response.status_code == 404 and "<h1>Page not found</h1>" in response.content.decode()


@pytest.mark.parametrize("debug", [False, True])
def test_a_crash_is_the_dashboards_500_and_is_logged(user, settings, monkeypatch, caplog, debug):
    settings.DEBUG = debug
    monkeypatch.setattr("resources.views.resource_list", broken)
    client = Client(raise_request_exception=False)
    client.force_login(user)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = client.get("/resources/")
    assert response.status_code == 500
    page = response.content.decode()
    assert "<h1>Something went wrong</h1>" in page and DASHBOARD in page
    assert "the database caught fire" not in page and "Traceback" not in page
    assert response["Content-Security-Policy"] == settings.CONTENT_SECURITY_POLICY
    logged = [record for record in caplog.records if record.exc_info]
    assert logged and "the database caught fire" in str(logged[0].exc_info[1])


def test_the_api_and_the_admin_keep_their_own_errors_with_debug_on(signed_in, staff_client, settings):
    settings.DEBUG = True
    api = signed_in.get("/v1/no-such-endpoint")
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"
    admin = staff_client.get("/admin/no-such-page/")
    assert admin.status_code == 404 and DASHBOARD not in admin.content.decode()
