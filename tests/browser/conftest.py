"""Headless Chromium (Debian's /usr/bin/chromium) driving the dashboard on pytest-django's live server."""

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"
PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's

expect.set_options(timeout=10_000)


@pytest.fixture(scope="package")
def browser():
    """One Chromium for the browser tests; stopped when they end, so Playwright's event loop ends with it.

    Playwright's sync API keeps an event loop in this thread, so Django would refuse ORM calls made
    here (by the tests and by the database flush after each of them) while it runs: this package
    alone allows them. The live server, in its own thread, is unaffected.
    """
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def new_page(browser, live_server):
    """``new_page(width=1280, height=860)``: a page in a fresh browser context (its own cookies) on the live server.

    ``page.console_errors`` collects console errors (a Content-Security-Policy violation is one).
    """
    contexts = []

    def open_page(width=1280, height=860):
        context = browser.new_context(
            base_url=live_server.url,
            viewport={"width": width, "height": height},
            permissions=["clipboard-read", "clipboard-write"],
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.console_errors = []
        page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
        return page

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page()


def log_in(page, username: str, password: str = PASSWORD) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


@pytest.fixture
def call_api(live_server):
    """``call_api(path, token)`` -> (status, JSON body): a real HTTP request to the live server's API."""

    def call(path: str, token: str):
        request = urllib.request.Request(live_server.url + path, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    return call
