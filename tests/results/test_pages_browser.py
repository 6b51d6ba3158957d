"""Researchers read the results pages in the browser, on a desktop and on a phone."""

# ruff: noqa: F811  (the tests take the imported `page` fixture as their argument)

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, ViewportSize, expect

from annotation.models import Campaign, Rater
from tests import factories
from tests.frontend.conftest import browser, page  # noqa: F401  (the browser fixtures)
from tests.results.conftest import rate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"
MODELS = [
    "llama-3.1-70b-instruct",
    "mistral-large-2407",
    "qwen2.5-72b-instruct",
    "gemma-2-27b-it",
    "claude-3-haiku-20240307",
    "gpt-4o-mini-2024-07-18",
]
VIEWPORTS: dict[str, ViewportSize] = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1440, "height": 900}}


@pytest.fixture
def board(researcher: User) -> Campaign:
    """A campaign of six long-named models, each pair rated 12 times by three humans and a judge."""
    campaign = factories.CampaignFactory.create(owner=researcher, status="active", name="Helpfulness, six models")
    comparisons = factories.populate_campaign(campaign, prompts=3, models=MODELS)
    raters = [factories.RaterFactory.create(name=f"expert_{i}") for i in range(3)]
    judge = factories.RaterFactory.create(name="gpt-judge", kind=Rater.Kind.JUDGE)
    for i, comparison in enumerate(comparisons):
        a, b = (comparison.output_a.model_name, comparison.output_b.model_name)
        better, worse = sorted((a, b), key=lambda m: MODELS.index(m or ""))
        for j, rater in enumerate(raters):
            rate(comparison, rater, worse if (i + j) % 4 == 0 else better, time_ms=2000)
        rate(comparison, judge, better)
    return campaign


def log_in(page: Page, live_server: Any, user: User) -> None:
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#id_username", user.get_username())
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_be_visible()


def results_pages(campaign: Campaign) -> list[str]:
    return [
        "/results/",
        f"/results/{campaign.slug}/",
        f"/results/{campaign.slug}/agreement/",
        f"/results/{campaign.slug}/raters/",
    ]


def outside(page: Page, selector: str, width: int) -> list[str]:
    """Return the elements matching selector that reach past the screen's or their figure's edges."""
    return list(
        page.evaluate(
            """([selector, width]) => [...document.querySelectorAll(selector)].filter((el) => {
                const box = el.getBoundingClientRect();
                const frame = (el.closest("figure") || document.body).getBoundingClientRect();
                return box.width === 0 || box.left < Math.max(0, frame.left) - 0.5
                    || box.right > Math.min(width, frame.right) + 0.5;
            }).map((el) => (el.closest("g") || el).textContent)""",
            [selector, width],
        )
    )


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_no_results_page_scrolls_sideways_and_the_chart_shows_every_model(
    page: Page, live_server: Any, board: Campaign, researcher: User, viewport: str
) -> None:
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.set_viewport_size(VIEWPORTS[viewport])
    width = VIEWPORTS[viewport]["width"]
    log_in(page, live_server, researcher)

    for path in results_pages(board):
        page.goto(live_server.url + path)
        expect(page.locator("h1")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= width, path

    page.goto(live_server.url + f"/results/{board.slug}/")
    assert page.locator("figure.intervals g.interval line").count() == len(MODELS)
    assert outside(page, "figure.intervals g.interval line, figure.intervals g.interval circle", width) == []
    assert outside(page, "figure svg g.cell rect", width) == []
    page.goto(live_server.url + f"/results/{board.slug}/agreement/")
    assert page.locator("figure svg g.cell").count() == 16  # four raters
    assert outside(page, "figure svg g.cell rect", width) == []
    assert outside(page, "table.metrics td", width) == []  # the agreement figures are read without scrolling
    assert page.evaluate("document.querySelector('link[rel=icon]')?.href").endswith("favicon.svg")
    assert failed == []  # no 404 for a favicon either


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_heatmap_cells_give_their_counts_on_hover(
    page: Page, live_server: Any, board: Campaign, researcher: User, viewport: str
) -> None:
    page.set_viewport_size(VIEWPORTS[viewport])
    log_in(page, live_server, researcher)
    page.goto(live_server.url + f"/results/{board.slug}/")

    number = page.locator("figure svg").nth(1).locator("text", has_text="75").first
    number.hover()
    box = number.bounding_box()
    assert box is not None
    hovered = page.evaluate(
        "([x, y]) => document.elementFromPoint(x, y).closest('g.cell').querySelector('title').textContent",
        [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
    )
    assert hovered == "llama-3.1-70b-instruct vs mistral-large-2407: 75% over 12 battles"
    titles = page.locator("figure svg").nth(2).locator("g.cell title").all_text_contents()
    assert "gpt-4o-mini-2024-07-18 vs gemma-2-27b-it: 28% over 12 battles" in titles

    page.goto(live_server.url + f"/results/{board.slug}/agreement/")
    titles = page.locator("figure svg g.cell title").all_text_contents()
    assert any(t.startswith("expert_0 vs expert_1: ") and t.endswith(" over 45 shared comparisons") for t in titles)


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_the_leaderboard_explains_its_columns_and_shows_elo_only_on_request(
    page: Page, live_server: Any, board: Campaign, researcher: User, viewport: str
) -> None:
    page.set_viewport_size(VIEWPORTS[viewport])
    log_in(page, live_server, researcher)
    page.goto(live_server.url + f"/results/{board.slug}/")

    table = page.locator("table.leaderboard")
    headers = table.locator("thead th").all_text_contents()
    assert "Elo" not in headers
    assert "Rank (UB)" not in headers
    ranks = table.locator("td.ranks").all_text_contents()
    assert ranks[2] == "1\u20134"  # third by rating, first in its rank upper bound: shown as a range, not "3 | 1"
    assert table.locator("td.ranks").nth(2).get_attribute("data-rank-ub") == "1"
    legend = page.locator("dl.legend")
    expect(legend).to_be_visible()
    expect(legend).to_contain_text("rank upper bound")
    expect(legend).to_contain_text("This is the number to read")
    expect(legend).to_contain_text("1.96 standard errors")
    table.locator("thead a", has_text="Plausible ranks").click()
    expect(page.locator("#legend-ranks")).to_be_in_viewport()

    elo = page.locator("details.elo")
    expect(elo.locator("table")).to_be_hidden()
    elo.locator("summary").click()
    expect(elo.locator("table")).to_be_visible()
    expect(elo).to_contain_text("depends on that order")
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS[viewport]["width"]


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_the_rater_picker_offers_kinds_and_names(
    page: Page, live_server: Any, board: Campaign, researcher: User, viewport: str
) -> None:
    page.set_viewport_size(VIEWPORTS[viewport])
    log_in(page, live_server, researcher)
    page.goto(live_server.url + f"/results/{board.slug}/")
    kind = page.locator("#raters-kind")
    box = page.locator("#raters")
    expect(box).to_be_hidden()
    assert kind.locator("option").all_text_contents() == ["All raters", "Humans", "Judges", "Named raters…"]

    kind.select_option("judges")
    page.click("button:has-text('Show')")
    expect(page.locator(".results-meta").first).to_contain_text("raters: judges")
    expect(kind).to_have_value("judges")

    kind.select_option("names")
    expect(box).to_be_visible()
    expect(box).to_be_focused()
    assert set(page.locator("#rater-names option").evaluate_all("os => os.map((o) => o.value)")) >= {
        "humans",
        "judges",
        "all",
        "expert_0",
        "gpt-judge",
    }
    box.fill("expert_0, expert_1")
    page.click("button:has-text('Show')")
    expect(page.locator(".results-meta").first).to_contain_text("raters: expert_0,expert_1")
    expect(kind).to_have_value("names")
    expect(box).to_have_value("expert_0, expert_1")


@pytest.mark.http_errors(400)
@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_a_bad_raters_value_shows_the_page_with_its_form_and_the_message(
    page: Page, live_server: Any, board: Campaign, researcher: User, viewport: str
) -> None:
    page.set_viewport_size(VIEWPORTS[viewport])
    log_in(page, live_server, researcher)
    page.goto(live_server.url + f"/results/{board.slug}/")
    page.locator("#raters-kind").select_option("names")
    page.locator("#raters").fill("nobody")
    page.click("button:has-text('Show')")

    expect(page.locator(".form-error")).to_have_text(
        "Not shown: raters: no rater named nobody has rated in this campaign"
    )
    expect(page.locator("#raters")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#raters")).to_be_visible()
    expect(page.locator("#raters")).to_have_value("nobody")
    assert page.evaluate("getComputedStyle(document.querySelector('.raters-form button')).borderRadius") == "6px"
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS[viewport]["width"]
