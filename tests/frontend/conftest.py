"""Browser fixtures: Debian's chromium driven by Playwright's sync API against pytest-django's live server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Start chromium for one test module; Django may run its synchronous ORM calls meanwhile.

    Playwright's sync API keeps an event loop running in this thread, so Django's async-safety check needs
    DJANGO_ALLOW_ASYNC_UNSAFE while the browser lives; it is restored afterwards so it cannot leak into other
    tests (`manage.py check --deploy` rightly refuses it).
    """
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A page whose script errors and console errors fail the test.

    The browser logs every 4xx/5xx answer as a console error; a test that provokes some on purpose names their
    statuses with `@pytest.mark.http_errors(403, ...)`.
    """
    from playwright.sync_api import expect

    marker = request.node.get_closest_marker("http_errors")
    expected = [f"the server responded with a status of {code} " for code in (marker.args if marker else ())]

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    # A loaded CI machine can take seconds to save a rating; assertions wait as long as actions do.
    expect.set_options(timeout=15_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    def record_console_error(message: Any) -> None:
        if message.type != "error" or "favicon" in message.location.get("url", ""):
            return
        if not any(status in message.text for status in expected):
            errors.append(message.text)

    page.on("console", record_console_error)
    yield page
    context.close()
    assert errors == [], errors
