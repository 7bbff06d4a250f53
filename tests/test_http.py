"""Site-wide HTTP behaviour: HEAD answers carry no body (checked at the WSGI app and on the wire through
gunicorn), and /favicon.ico is a real, cacheable icon."""

import io
import json
import socket

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import RequestFactory
from PIL import Image

from tests.servers import gunicorn

ICO_SIGNATURE = b"\x00\x00\x01\x00"
# Pages of every kind: JSON, HTML, an API list, a redirect, a 404, whitenoise's static files, the icon.
HEAD_PATHS = ["/healthz", "/login/", "/v1/regions", "/", "/nowhere", "/static/css/dashboard.css", "/favicon.ico"]


def wsgi_head(path: str, **headers) -> tuple[str, dict, bytes]:
    """HEAD through Django's WSGI application, as a server calls it: (status, headers, every body byte sent)."""
    environ = RequestFactory(**headers).head(path).environ
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"], answer["headers"] = status, dict(response_headers)

    # As Django's test client does: the test's database connection stays open across the request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        body = WSGIHandler()(environ, start_response)
        try:
            sent = b"".join(body)
        finally:
            body.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return answer["status"], answer["headers"], sent


@pytest.mark.django_db
@pytest.mark.parametrize("path", HEAD_PATHS)
def test_the_app_sends_no_body_on_head(path, client):
    status, _, body = wsgi_head(path)
    assert body == b""
    assert client.get(path).status_code == int(status.split()[0])


@pytest.mark.django_db
def test_head_keeps_the_length_its_get_would_have(api):
    token = api._credentials["HTTP_AUTHORIZATION"]
    status, headers, body = wsgi_head("/v1/regions", HTTP_AUTHORIZATION=token)
    assert status.startswith("200") and body == b""
    assert int(headers["Content-Length"]) == len(api.get("/v1/regions").content) > 0


@pytest.mark.django_db
def test_an_invoice_pdf_answers_head_without_its_file(client, invoice_pdf_path):
    status, headers, body = wsgi_head(invoice_pdf_path)
    assert status.startswith("200") and headers["Content-Type"] == "application/pdf"
    assert body == b""


@pytest.fixture
def invoice_pdf_path(account):
    from billing.links import invoice_pdf_link_path
    from billing.models import Invoice

    invoice = Invoice.objects.create(account=account, period="2024-03-01", date="2024-03-31", amount_cents=1234)
    return invoice_pdf_link_path(invoice.public_id)


def raw_head(port: int, path: str) -> bytes:
    """A HEAD request on a plain socket; everything the server sent until it closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(f"HEAD {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    return received


@pytest.mark.slow
def test_gunicorn_sends_and_drops_no_body_on_head(embedded, tmp_path):
    token = json.loads(embedded.manage("issue_token", "demo", "--scopes", "resources:read", "--json"))["access_token"]
    log = tmp_path / "gunicorn.log"
    with gunicorn(log, "--workers", "1", cwd=embedded.path, environment=embedded.env) as (port, _):
        answers = {path: raw_head(port, path) for path in HEAD_PATHS}
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(
                b"HEAD /v1/resources HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                + f"Authorization: Bearer {token}\r\n\r\n".encode()
            )
            answers["/v1/resources"] = b"".join(iter(lambda: connection.recv(65536), b""))

    for path, received in answers.items():
        head, separator, body = received.partition(b"\r\n\r\n")
        assert separator and body == b"", path
        assert head.startswith(b"HTTP/1.1 "), path
    assert b"HTTP/1.1 200" in answers["/v1/resources"]
    assert "no-body response" not in log.read_text(errors="replace")


def test_the_favicon_is_a_cacheable_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert set(response["Cache-Control"].split(", ")) == {"public", "max-age=604800"}
    assert response.content.startswith(ICO_SIGNATURE)
    icon = Image.open(io.BytesIO(response.content))
    assert icon.format == "ICO"
    assert {(16, 16), (32, 32), (48, 48)} <= set(icon.info["sizes"])
    assert client.post("/favicon.ico").status_code == 405
