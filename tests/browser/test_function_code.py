"""A function's code in the dashboard: its hash and size, downloading it, and uploading a new ZIP."""

import hashlib

import pytest
from playwright.sync_api import expect

from elbia.config import code_storage
from functions.code import code_store
from functions.models import Function
from tests.browser.conftest import log_in
from tests.functions.code_archives import NODE_CODE, zip_of
from tests.functions.factories import FunctionFactory

pytestmark = pytest.mark.browser

NEW_CODE = zip_of({"index.mjs": "export const handler = async () => 'v2';\n"})


@pytest.fixture
def function(user, settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "code": code_storage(bucket="", directory=tmp_path / "code")}
    sha256, size = code_store(NODE_CODE)
    return FunctionFactory(account=user.account, name="greeter", code_sha256=sha256, code_size=size)


def test_upload_a_new_zip_and_see_its_hash(page, user, function, tmp_path, artifacts):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(zip_of({"main.js": "exports.handler = async () => 1;\n"}))
    good = tmp_path / "greeter.zip"
    good.write_bytes(NEW_CODE)

    log_in(page, user.username)
    page.goto(f"/functions/{function.public_id}/")
    code = page.locator("#function-code")
    expect(code.locator('[data-field="code_sha256"]')).to_have_text(function.code_sha256)
    expect(code.locator('[data-field="code_size"]')).to_have_text(f"{len(NODE_CODE)}\xa0bytes")
    with page.expect_download() as download:
        code.get_by_role("link", name="greeter.zip").click()
    assert download.value.path().read_bytes() == NODE_CODE  # through the signed link, no token

    page.get_by_label("ZIP archive").set_input_files(bad)
    page.get_by_role("button", name="Upload a new ZIP").click()
    expect(page.get_by_role("heading", name="Upload a new ZIP")).to_be_visible()
    expect(page.locator(".field.has-error")).to_contain_text(
        "The archive has no index.js or index.mjs or index.cjs: the handler 'index.handler' of a Node.js 20 "
        "function is there."
    )
    function.refresh_from_db()
    assert function.code_sha256 == hashlib.sha256(NODE_CODE).hexdigest()

    page.get_by_label("ZIP archive").set_input_files(good)  # the same form, corrected
    page.get_by_role("button", name="Upload and deploy").click()
    expect(page).to_have_url(f"{page.url.split('/functions/')[0]}/functions/{function.public_id}/")
    new_hash = hashlib.sha256(NEW_CODE).hexdigest()
    expect(page.locator('#function-code [data-field="code_sha256"]')).to_have_text(new_hash)
    expect(page.locator('#function-code [data-field="code_size"]')).to_have_text(f"{len(NEW_CODE)}\xa0bytes")
    page.screenshot(path=artifacts / "function-code.png", full_page=True)
    assert Function.objects.get(pk=function.pk).code_sha256 == new_hash
    # Chromium logs the refused upload's page (a 400) as a failed load; nothing else went wrong.
    assert page.console_errors == ["Failed to load resource: the server responded with a status of 400 (Bad Request)"]
