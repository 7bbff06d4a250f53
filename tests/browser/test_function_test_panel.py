"""The Test panel of a function's page in headless Chromium: invoke the starter and read its answer, then a
handler that raises; with JavaScript (htmx swaps the panel, no reload) and without (the form posts, the page
comes back with the outcome). Real executions: a runner process runs the handlers."""

import re

import pytest
from playwright.sync_api import expect

from functions.code import code_store
from functions.starters import starter_archive
from tests.browser.conftest import log_in
from tests.functions.code_archives import zip_of
from tests.functions.factories import FunctionFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOT_RELOADED = "window.__notReloaded = true"
RUN = 20_000  # ms: a cold start on a loaded machine


def starter_function(account, name: str):
    handler = "lambda_function.lambda_handler"
    sha256, size = code_store(starter_archive("Python 3.11", handler))
    return FunctionFactory(
        account=account, name=name, runtime="Python 3.11", handler=handler, code_sha256=sha256, code_size=size
    )


def broken_function(account, name: str):
    source = "def handler(event, context):\n    print('about to fail')\n    return event['missing']\n"
    sha256, size = code_store(zip_of({"app.py": source}))
    return FunctionFactory(
        account=account, name=name, runtime="Python 3.11", handler="app.handler", code_sha256=sha256, code_size=size
    )


def test_invoke_the_starter_then_a_broken_handler(page, user, runner_port, artifacts):
    function = starter_function(user.account, "greeter")
    broken = broken_function(user.account, "broken")
    log_in(page, user.username)
    page.goto(f"/functions/{function.public_id}/")
    panel = page.locator("#test")
    expect(panel.get_by_text("No invocations in the last 7 days.")).to_be_visible()

    page.evaluate(NOT_RELOADED)
    panel.get_by_label("Event (JSON)").fill('{"name": "Ada"}')
    panel.get_by_role("button", name="Invoke").click()
    expect(page.locator("#invocation-output")).to_contain_text('"message": "Hello from greeter"', timeout=RUN)
    expect(page.locator("#invocation-output")).to_contain_text('"name": "Ada"')
    expect(page.locator("#invocation-measures")).to_contain_text(re.compile(r"Duration [\d.]+ ms · billed \d+ ms"))
    expect(page.locator("#recent-invocations tbody tr")).to_have_count(1)
    expect(panel.get_by_label("Event (JSON)")).to_have_value('{"name": "Ada"}')  # kept for the next try
    assert page.evaluate("window.__notReloaded") is True  # htmx swapped the panel
    expect(page.locator("#function-details")).not_to_contain_text("Never")  # last executed, swapped too
    expect(page.locator('#function-usage [data-figure="executions"]')).to_have_text("1")
    page.screenshot(path=artifacts / "function-test-panel.png", full_page=True)

    page.goto(f"/functions/{broken.public_id}/")
    page.locator("#test").get_by_role("button", name="Invoke").click()
    expect(page.locator("#invocation-error")).to_have_text("KeyError: 'missing'", timeout=RUN)
    expect(page.locator("#invocation-trace")).to_contain_text("KeyError")
    expect(page.locator("#invocation-log")).to_contain_text("about to fail")
    expect(page.locator("#recent-invocations")).to_contain_text("Failed")
    assert [error for error in page.console_errors if "status of" not in error] == []


def test_the_panel_works_without_javascript(browser, live_server, user, runner_port):
    function = starter_function(user.account, "plain")
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    try:
        page = context.new_page()
        log_in(page, user.username)
        page.goto(f"/functions/{function.public_id}/")
        page.locator("#test").get_by_label("Event (JSON)").fill("[1, 2")
        page.locator("#test").get_by_role("button", name="Invoke").click()
        expect(page.locator("#test .field-error")).to_contain_text("Not valid JSON")
        page.locator("#test").get_by_label("Event (JSON)").fill("[1, 2]")
        page.locator("#test").get_by_role("button", name="Invoke").click()
        expect(page).to_have_url(re.compile(r"\?invocation=EXEC_\d{10}#test$"), timeout=RUN)
        expect(page.locator("#invocation-output")).to_contain_text('"message": "Hello from plain"')
    finally:
        context.close()
