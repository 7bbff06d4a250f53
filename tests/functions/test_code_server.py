"""Code uploads against the real server (gunicorn): a ZIP body goes through; one over 50 MB is refused unread."""

import hashlib
import http.client
import json
import socket

import pytest

from functions.models import Function
from tests.functions.code_archives import zip_of
from tests.functions.factories import FunctionFactory
from tests.servers import gunicorn

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

CODE = zip_of({"index.mjs": "export const handler = async () => 'served';\n"})
OVERSIZED = 60 * 1024 * 1024


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_zip_is_uploaded_and_an_oversized_body_refused_before_it_is_sent(tmp_path, issue_token, user):
    function = FunctionFactory(account=user.account)
    token = issue_token(user, scopes=["functions:write"]).access_token
    path = f"/v1/functions/{function.public_id}/code"
    with gunicorn(tmp_path / "gunicorn.log", MEDIA_ROOT=str(tmp_path / "media")) as (port, _):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/zip"}
        conn.request("PUT", path, body=CODE, headers=headers)
        response = conn.getresponse()
        uploaded = json.loads(response.read())
        conn.close()

        # Content-Length says 60 MB; 1 KB is sent and the answer read: the server never waits for the rest.
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            head = (
                f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: application/zip\r\nContent-Length: {OVERSIZED}\r\nConnection: close\r\n\r\n"
            )
            sock.sendall(head.encode() + b"\0" * 1024)
            raw = read_all(sock)

    assert response.status == 200, uploaded
    assert uploaded["code_sha256"] == hashlib.sha256(CODE).hexdigest() and uploaded["status"] == "deploying"
    assert (
        tmp_path / "media" / "code" / uploaded["code_sha256"][:2] / f"{uploaded['code_sha256']}.zip"
    ).read_bytes() == CODE
    status_line, _, rest = raw.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"
    error = json.loads(rest.partition(b"\r\n\r\n")[2])["error"]
    assert (error["code"], error["message"]) == (
        "payload_too_large",
        "Request body is too large: at most 52,428,800 bytes are accepted here.",
    )
    assert Function.objects.get(pk=function.pk).code_sha256 == uploaded["code_sha256"]
