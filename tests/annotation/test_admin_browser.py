"""The admin's campaign and comparison lists in the browser: every column fits a 1440 px screen."""

# ruff: noqa: F811  (the tests take the imported `page` fixture as their argument)

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, ViewportSize, expect

from annotation.models import Campaign
from tests import factories
from tests.frontend.conftest import browser, page  # noqa: F401  (the browser fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"
MODELS = ["llama-3.1-70b-instruct", "claude-3-haiku-20240307", "gpt-4o-mini-2024-07-18"]
VIEWPORTS: dict[str, ViewportSize] = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1440, "height": 900}}


@pytest.fixture
def campaigns(researcher: User) -> list[Campaign]:
    """Two campaigns with long names, long model names and prompt ids as imports give them."""
    made = []
    for name in ["Helpfulness of instruction-tuned models, March batch", "Harmlessness red-team prompts, round two"]:
        campaign = factories.CampaignFactory.create(owner=researcher, name=name, status="active")
        factories.populate_campaign(campaign, prompts=3, models=MODELS)
        made.append(campaign)
    return made


def log_in(page: Page, live_server: Any, user: User) -> None:
    page.goto(live_server.url + "/admin/login/")
    page.fill("#id_username", user.get_username())
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()


def widths(page: Page) -> dict[str, float]:
    """Return the page's and the result table's widths against what shows of them."""
    return dict(
        page.evaluate(
            """() => {
                const box = document.querySelector("#changelist .results");
                const table = document.querySelector("#result_list");
                return {page: document.documentElement.scrollWidth, screen: window.innerWidth,
                        table: table.scrollWidth, box: box.clientWidth};
            }"""
        )
    )


LISTS = ["/admin/annotation/campaign/", "/admin/annotation/comparison/"]


@pytest.mark.parametrize("path", LISTS)
def test_the_campaign_and_comparison_lists_fit_a_desktop_screen_without_cut_columns(
    page: Page, live_server: Any, campaigns: list[Campaign], researcher: User, path: str
) -> None:
    page.set_viewport_size(VIEWPORTS["desktop"])
    log_in(page, live_server, researcher)

    page.goto(live_server.url + path)

    seen = widths(page)
    assert seen["page"] <= seen["screen"], seen
    assert seen["table"] <= seen["box"], seen  # else the last columns are cut off and scroll inside the box


@pytest.mark.parametrize("path", LISTS)
def test_on_a_phone_the_lists_scroll_inside_their_box_not_the_page(
    page: Page, live_server: Any, campaigns: list[Campaign], researcher: User, path: str
) -> None:
    page.set_viewport_size(VIEWPORTS["phone"])
    log_in(page, live_server, researcher)

    page.goto(live_server.url + path)

    seen = widths(page)
    page.screenshot(path="/tmp/ap/phone" + path.strip("/").replace("/", "_") + ".png", full_page=True)
    assert seen["page"] <= seen["screen"], seen
