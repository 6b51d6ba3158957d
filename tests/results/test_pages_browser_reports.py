"""This week's results pages in chromium at 390 px and 1440 px, read by the campaign's researcher: the leaderboard
with each of its options (and options it cannot combine), categories, the style-controlled and combined (PPI)
leaderboards, the agreement report with the consistency gate, the judge report, and the raters page's actions from
the keyboard. Each page is checked by its figures (against the API's, or counted from the ratings below), its
layout (no sideways scrolling, a heading, every control and table column named) and the console (no errors).
Another campaign's researcher and the campaign's annotator are refused every page (404 / 403); the admin pages of
the same features load for a researcher and a superuser (through the test client).

The campaign fills every page: four humans (alice with an account, shown by pseudonym; expert_2 excluded from
results; alice paused), a judge rating both orders and picking the answer shown first in every fourth comparison
(8 of 30 decided differently in the two orders), prompts with categories and a near-duplicate, answers with
markdown (the style features), and a last prompt rated by the judge alone (the combined leaderboard's unlabelled
comparisons). The live server's database is emptied after each test, so each test builds the campaign again
(about 1.5 s); the tests are few and each reads many pages.
"""

# ruff: noqa: F811  (the tests take the imported `page` fixture as their argument)

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from playwright.sync_api import Page, expect
from rest_framework.test import APIClient

from annotation.models import AnnotatorStatus, Campaign, Output, Prompt, Rater, RaterAction
from annotation.rater_actions import act_on_rater
from judging import panels, services
from judging.models import JudgeConfig, JudgePanel, ModelFamily, PanelRun
from tests import factories
from tests.frontend.conftest import browser, page  # noqa: F401  (the browser fixtures)
from tests.results.conftest import rate
from tests.results.test_pages_browser import VIEWPORTS, log_in, outside

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MODELS = ["llama-3.1-70b-instruct", "mistral-large-2407", "qwen2.5-72b-instruct", "claude-3-haiku-20240307"]
PAIRS = len(MODELS) * (len(MODELS) - 1) // 2
ENDPOINT = "http://127.0.0.1:9/v1"
TAGS = [["coding", "hard"], ["coding"], ["math"], ["writing-and-long-form-explanations"], ["math"]]
JUDGE_ONLY_PROMPT = 4  # the humans leave the last prompt's comparisons to the judge
COMPARISONS = len(TAGS) * PAIRS  # 30
INCONSISTENT = len(range(0, COMPARISONS, 4))  # the judge picks the first answer in both orders: 8 comparisons
STYLES = {  # long formatted, short plain, medium lists, headers and code
    MODELS[0]: "## Answer\n" + "- **point** with some detail\n" * 6,
    MODELS[1]: "Short answer.",
    MODELS[2]: "A medium answer with a list:\n1. first step\n2. second step, **done**.",
    MODELS[3]: "# Title\n\n```python\nprint('hello')\n```\n\nThen some plain text follows here.",
}


@dataclass
class Full:
    campaign: Campaign
    judge: JudgeConfig
    panel: JudgePanel
    run: PanelRun
    family: ModelFamily
    status: AnnotatorStatus
    alice: Rater

    @property
    def base(self) -> str:
        return f"/results/{self.campaign.slug}/"


def human_vote(prompt: int, rater: int, better: str, worse: str) -> str:
    """Return a human's vote: mostly for the better model, with ties and upsets; the second and third models get the
    same votes against the others and tie each other but once, so that one vote decides their order (fragile)."""
    if {better, worse} == {MODELS[1], MODELS[2]}:
        return better if (prompt, rater) == (0, 0) else "tie"
    other = MODELS.index(better if worse in MODELS[1:3] else worse)
    key = prompt + rater + other
    return "tie" if key % 7 == 0 else worse if key % 3 == 0 else better


@pytest.fixture
def full(researcher: User, annotator: User, settings: Any) -> Full:
    """A campaign whose every results page has content (see the module's docstring)."""
    settings.EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS = [ENDPOINT]
    researcher.user_permissions.add(
        *Permission.objects.filter(content_type__app_label__in=["annotation", "judging", "results"])
    )
    campaign = factories.CampaignFactory.create(owner=researcher, status="active", name="Helpfulness, four models")
    campaign.annotators.add(annotator)
    comparisons = factories.populate_campaign(campaign, prompts=len(TAGS), models=MODELS)
    for prompt, tags in zip(Prompt.objects.filter(campaign=campaign).order_by("pk"), TAGS, strict=True):
        prompt.tags = [*tags, "auto:language:en"]
        prompt.save(update_fields=["tags"])
    Prompt.objects.filter(campaign=campaign, external_id__in=["q3", "q4"]).update(duplicate_kind="near")
    for output in Output.objects.filter(prompt__campaign=campaign):
        output.text = STYLES[output.model_name or ""] + f" ({output.prompt_id})"
        output.save(update_fields=["text"])

    family = ModelFamily.objects.create(name="anthropic", patterns="claude-*")
    judge, _ = services.save_judge(name="sonnet-judge", base_url=ENDPOINT, model="claude-3-5-sonnet-20241022")
    other, _ = services.save_judge(name="second-judge", base_url=ENDPOINT, model="mistral-large-2407")
    alice = factories.RaterFactory.create(name="alice", user=annotator)
    humans = [alice, *(factories.RaterFactory.create(name=f"expert_{i}") for i in range(3))]
    for i, comparison in enumerate(comparisons):
        a, b = (comparison.output_a.model_name or "", comparison.output_b.model_name or "")
        better, worse = sorted((a, b), key=MODELS.index)
        for j, rater in enumerate(humans if i // PAIRS != JUDGE_ONLY_PROMPT else []):
            winner = human_vote(i // PAIRS, j, better, worse)
            rate(comparison, rater, winner, left=[better, worse][(i + j) % 2], time_ms=1500 + 100 * j)
        rate(comparison, judge.rater, better, left=better)
        rate(comparison, judge.rater, worse if i % 4 == 0 else better, left=worse)  # the first answer, both times
    status = AnnotatorStatus.objects.create(campaign=campaign, rater=alice, rated_count=len(comparisons))
    act_on_rater(campaign=campaign, rater=alice, action="pause", reason="gold accuracy 40%", actor=researcher)
    expert = humans[3]
    AnnotatorStatus.objects.create(campaign=campaign, rater=expert, rated_count=len(comparisons))
    act_on_rater(campaign=campaign, rater=expert, action="exclude", reason="answers at random", actor=researcher)
    panel = panels.create_panel(name="duo", members=[judge, other], owner=researcher)
    run = PanelRun.objects.create(panel=panel, campaign=campaign, limit=5, requested_by=researcher)
    return Full(campaign, judge, panel, run, family, status, alice)


@pytest.fixture
def root(db: None) -> User:
    return factories.UserFactory.create(username="root", is_staff=True, is_superuser=True)


def api(user: User, path: str) -> Any:
    """Return the researcher API's JSON answer to GET /api/v1/<path>."""
    client = APIClient()
    client.force_authenticate(user)
    response = client.get("/api/v1/" + path)
    assert response.status_code == 200, (path, response.content[:300])
    return response.json()


SHOWN = ":not(details:not([open]) *):not([hidden] *)"  # what the reader sees (closed details hold the Elo table)


def open_page(page: Page, url: str, width: int, failed: list[str]) -> list[str]:
    """Load the page and return what is wrong with its layout at this width (empty: nothing).

    ``failed`` collects the page's 4xx/5xx answers (a response listener the caller set).
    """
    failed.clear()
    page.goto(url)
    problems = [f"{url}: {status}" for status in failed]
    if page.locator("h1").count() != 1 or not page.locator("h1").is_visible():
        problems.append(f"{url}: no single visible h1")
    scroll = page.evaluate("document.documentElement.scrollWidth")
    if scroll > width:
        problems.append(f"{url}: scrolls sideways ({scroll} px wide)")
    # A table is read in place, or scrolled inside its own box: no cell of a table outside such a box, and no such
    # box, reaches past the screen's edge.
    cells = outside(page, f"main table:not(.table-scroll table) :is(td, th){SHOWN}", width)
    problems += [f"{url}: cell past the edge: {text.strip()[:40]!r}" for text in cells]
    boxes = outside(page, f"main .table-scroll{SHOWN}", width)
    problems += [f"{url}: table box past the edge: {text.strip()[:40]!r}" for text in boxes]
    headless = page.evaluate(
        "[...document.querySelectorAll('main table')].filter((t) => !t.querySelector('thead th, th')).length"
    )
    if headless:
        problems.append(f"{url}: {headless} table(s) without a th header")
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll("main :is(input, select, textarea, button, th)")].filter((el) => {
            if (el.type === "hidden" || el.hidden) return false;
            if (el.matches("th")) return !el.textContent.trim();
            const label = el.labels && [...el.labels].some((l) => l.textContent.trim());
            return !(label || el.getAttribute("aria-label") || (el.matches("button") && el.textContent.trim()));
        }).map((el) => el.outerHTML.slice(0, 80))"""
    )
    problems += [f"{url}: no label or name: {html}" for html in unnamed]
    return problems


def table(page: Page, selector: str) -> list[list[str]]:
    """Return the body rows of the table as lists of cell texts."""
    rows = (
        page.locator(selector)
        .first.locator("tbody tr")
        .evaluate_all(
            "(trs) => trs.map((tr) => [...tr.querySelectorAll('td, th')].map((cell) => cell.textContent.trim()))"
        )
    )
    return [list(row) for row in rows]


def numbers(text: str) -> list[float]:
    return [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", text)]


def assert_board(rows: list[list[str]], ratings: list[dict[str, Any]], *, model: int = 2, rating: int = 3) -> None:
    """Assert that the page's leaderboard rows give the API's models, ratings and intervals, in its order."""
    assert [row[model] for row in rows] == [r["model"] for r in ratings]
    for row, expected in zip(rows, ratings, strict=True):
        shown = [float(row[rating]), *numbers(row[rating + 1])]
        assert shown == pytest.approx([expected["rating"], expected["lower"], expected["upper"]], abs=0.051), row


def leaderboard_json(user: User, full: Full, query: str) -> dict[str, Any]:
    data: dict[str, Any] = api(user, f"research/campaigns/{full.campaign.slug}/leaderboard/?{query}")
    return data


@pytest.fixture
def reader(page: Page, live_server: Any, researcher: User) -> Any:
    """Return a function (viewport) that sets the page's width, signs the researcher in, and collects 4xx/5xx."""
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    def start(viewport: str) -> tuple[int, list[str]]:
        page.set_viewport_size(VIEWPORTS[viewport])
        log_in(page, live_server, researcher)
        return VIEWPORTS[viewport]["width"], failed

    return start


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_the_leaderboard_shows_the_figures_of_each_option(
    page: Page, live_server: Any, full: Full, researcher: User, reader: Any, viewport: str
) -> None:
    width, failed = reader(viewport)
    url = live_server.url + full.base
    problems: list[str] = []

    problems += open_page(page, url, width, failed)
    plain = leaderboard_json(researcher, full, "")
    assert_board(table(page, "table.leaderboard"), plain["ratings"])
    assert plain["ratings"][0]["model"] == MODELS[0]  # the fixture's best model comes first
    meta = page.locator(".results-meta").first
    expect(meta).to_contain_text(f"{plain['n_battles']} battles")
    expect(meta).to_contain_text("excluded from results: expert_2")
    expect(page.locator("dl.legend")).to_contain_text("sandwich estimate from the fit).")
    expect(page.locator("table.leaderboard th", has_text="Votes to swap")).to_have_count(0)

    for cluster in ("rater", "prompt"):
        problems += open_page(page, f"{url}?cluster={cluster}", width, failed)
        board = leaderboard_json(researcher, full, f"cluster={cluster}")
        assert_board(table(page, "table.leaderboard"), board["ratings"])
        assert [r["lower"] for r in board["ratings"]] != [r["lower"] for r in plain["ratings"]]
        expect(page.locator("dl.legend")).to_contain_text(f"clustered by {cluster}: one {cluster}'s votes")
        expect(page.locator("#cluster")).to_have_value(cluster)
        # The swap link would add influence, which clustered intervals do not take: not offered.
        expect(page.locator("a", has_text="How many votes would swap each pair?")).to_have_count(0)

    problems += open_page(page, f"{url}?rater_model=1", width, failed)
    board = leaderboard_json(researcher, full, "rater_model=1")
    assert_board(table(page, "table.leaderboard"), board["ratings"])
    expect(page.locator("dl.legend")).to_contain_text("of the rater-aware model")
    expect(page.locator(".rater-options input[name=rater_model]")).to_be_checked()
    raters = table(page, "h2:has-text('Raters in the rater-aware model') + p + .table-scroll table")
    expected = board["rater_model"]["raters"]
    assert [row[0] for row in raters] == [r["rater"] for r in expected]
    assert {row[0] for row in raters} == {full.alice.pseudonym, "expert_0", "expert_1", "sonnet-judge"}
    for row, rater in zip(raters, expected, strict=True):
        assert int(row[2]) == rater["votes"]
        assert float(row[3]) == pytest.approx(rater["reliability"], abs=0.0006)

    problems += open_page(page, f"{url}?consistent=1", width, failed)
    gated = leaderboard_json(researcher, full, "consistent=1")
    assert gated["inconsistent_pairs"] == INCONSISTENT
    assert gated["n_battles"] == plain["n_battles"] - INCONSISTENT  # each pair's two votes became one tie
    assert_board(table(page, "table.leaderboard"), gated["ratings"])
    expect(page.locator("main")).to_contain_text(
        f"Consistency gate: {INCONSISTENT} judge comparisons decided differently in the two orders"
    )
    expect(page.locator(".results-meta").first).to_contain_text(f"{gated['n_battles']} battles")
    expect(page.locator(".rater-options input[name=consistent]")).to_be_checked()

    problems += open_page(page, f"{url}?influence=1", width, failed)
    board = leaderboard_json(researcher, full, "influence=1")
    rows = table(page, "table.leaderboard")
    assert_board(rows, board["ratings"])
    flips = [row[-1] for row in rows]
    assert flips[-1] == ""  # the last model has no next one
    assert flips[:-1] == [str(r["n_votes_to_flip"]) for r in board["ratings"][:-1]]
    expect(page.locator(".rater-options input[name=influence]")).to_be_checked()
    expect(page.locator("dl.legend")).to_contain_text("Votes to swap with next")

    problems += open_page(page, f"{url}?downsample=1", width, failed)
    board = leaderboard_json(researcher, full, "downsample=1")
    assert_board(table(page, "table.leaderboard"), board["ratings"])
    kept = board["downsampling"]
    assert (kept["prompts"], kept["high_frequency_prompts"], kept["votes_dropped"]) == (len(TAGS), 0, 0)  # too few
    expect(page.locator("main")).to_contain_text(
        f"Downsampled: no prompt rated more than {kept['cutoff']:.1f} times (the 99.9th percentile of {len(TAGS)}"
        " prompts): no rating left out."
    )
    expect(page.locator(".rater-options input[name=downsample]")).to_be_checked()
    expect(page.locator("details.elo")).to_have_count(0)  # Elo has no downsampled form

    # The swap link keeps the options; the fixture's second and third models are one human vote apart.
    problems += open_page(page, f"{url}?raters=humans&consistent=1", width, failed)
    page.locator("a", has_text="How many votes would swap each pair?").click()
    assert page.url.endswith("?raters=humans&consistent=1&influence=1")
    board = leaderboard_json(researcher, full, "raters=humans&consistent=1&influence=1")
    fragile = [r["model"] for r in board["ratings"] if r.get("fragile")]
    assert fragile, board["ratings"]
    marked = page.locator("table.leaderboard tr:has(strong.fragile) td:nth-child(3)").all_text_contents()
    assert marked == fragile
    page.locator("table.leaderboard strong.fragile").first.scroll_into_view_if_needed()
    assert outside(page, "table.leaderboard td.flip strong.fragile", width) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert problems == []


# The query, the message, the field marked invalid, the choices the form must keep.
BAD_OPTIONS: list[tuple[str, str, str, dict[str, str | bool]]] = [
    ("cluster=rater&influence=1", "influence applies to the Bradley-Terry leaderboard", "input[name=influence]",
     {"#cluster": "rater"}),
    ("rater_model=1&consistent=1", "rater_model reads each judge's two orders", "input[name=consistent]",
     {"input[name=rater_model]": True}),
    ("rater_model=1&cluster=prompt", "rater_model clusters by rater only: use cluster=rater", "#cluster",
     {"#cluster": "prompt", "input[name=rater_model]": True}),
    ("cluster=bogus", "cluster: expected rater or prompt, not 'bogus'", "#cluster", {}),
    ("rater_model=maybe&cluster=rater", "rater_model: expected 1 or 0", "input[name=rater_model]",
     {"#cluster": "rater"}),
    ("downsample=maybe&consistent=1", "downsample: expected 1 or 0", "input[name=downsample]",
     {"input[name=consistent]": True}),
    ("consistent=1&downsample=1&raters=humans", "downsample applies to the plain Bradley-Terry leaderboard",
     "input[name=downsample]", {"input[name=consistent]": True, "input[name=downsample]": True}),
]  # fmt: skip


@pytest.mark.http_errors(400)
@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_options_the_leaderboard_cannot_take_are_named_and_the_form_keeps_the_choices(
    page: Page, live_server: Any, full: Full, reader: Any, viewport: str
) -> None:
    width, failed = reader(viewport)
    for query, message, invalid, kept in BAD_OPTIONS:
        url = f"{live_server.url}{full.base}?{query}"
        problems = open_page(page, url, width, failed)
        assert problems == [f"{url}: 400 {url}"]
        expect(page.locator(".form-error")).to_contain_text("Not shown: " + message)
        expect(page.locator(".rater-options " + invalid)).to_have_attribute("aria-invalid", "true")
        for selector, value in kept.items():
            field = page.locator(".rater-options " + selector)
            if isinstance(value, str):
                expect(field).to_have_value(value)
            else:
                expect(field).to_be_checked()
        expect(page.locator("table.leaderboard")).to_have_count(0)  # no figures under options it refused
    expect(page.locator("#raters-kind")).to_have_value("humans")  # the last query's raters stay in their form

    # An unknown category on the categories page: named, with the page's rater form.
    url = f"{live_server.url}{full.base}categories/?category=nope"
    assert open_page(page, url, width, failed) == [f"{url}: 400 {url}"]
    expect(page.locator(".form-error")).to_contain_text("category: no prompt of this campaign has the tag 'nope'")


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_the_option_forms_work_from_the_keyboard(
    page: Page, live_server: Any, full: Full, reader: Any, viewport: str
) -> None:
    width, _ = reader(viewport)
    page.goto(live_server.url + f"{full.base}?raters=humans")

    page.locator("#cluster").focus()
    page.keyboard.press("ArrowDown")  # clustered by rater (chromium changes a closed select's value by arrow keys)
    expect(page.locator("#cluster")).to_have_value("rater")
    page.keyboard.press("Tab")  # rater-aware model
    page.keyboard.press("Tab")  # consistency gate
    expect(page.locator(".rater-options input[name=consistent]")).to_be_focused()
    page.keyboard.press("Space")
    for _ in range(3):  # votes to swap, downsample, Apply
        page.keyboard.press("Tab")
    expect(page.locator(".rater-options button[type=submit]")).to_be_focused()
    page.keyboard.press("Enter")

    expect(page.locator("dl.legend")).to_contain_text("clustered by rater")
    expect(page.locator("main")).to_contain_text("Consistency gate: ")
    assert "cluster=rater" in page.url
    assert "consistent=1" in page.url
    assert "raters=humans" in page.url  # the other options stay
    expect(page.locator(".rater-options input[name=consistent]")).to_be_checked()
    expect(page.locator(".results-meta").first).to_contain_text("raters: humans")

    page.goto(live_server.url + f"{full.base}agreement/")
    page.locator(".rater-options input[name=consistent]").focus()
    page.keyboard.press("Space")
    page.keyboard.press("Enter")  # Enter in a form's field submits it
    expect(page.locator("main")).to_contain_text("Consistency gate: ")
    assert "consistent=1" in page.url
    expect(page.locator(".rater-options input[name=consistent]")).to_be_checked()

    page.goto(live_server.url + f"{full.base}categories/")
    link = page.locator("table.categories a", has_text="coding")
    link.focus()
    page.keyboard.press("Enter")
    expect(page.locator("h2").first).to_have_text("Category coding")
    expect(page.locator("table.leaderboard")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= width


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_the_other_reports_show_their_figures(
    page: Page, live_server: Any, full: Full, researcher: User, reader: Any, viewport: str
) -> None:
    width, failed = reader(viewport)
    url, slug = live_server.url + full.base, full.campaign.slug
    problems: list[str] = []

    problems += open_page(page, url + "categories/", width, failed)
    listed = {c["category"]: c for c in api(researcher, f"research/campaigns/{slug}/categories/")["categories"]}
    rows = table(page, "table.categories")
    prompts = {tag: sum(tag in tags for tags in TAGS) for tag in {t for tags in TAGS for t in tags}}
    prompts["auto:language:en"] = len(TAGS)
    assert {row[0]: int(row[1]) for row in rows} == prompts
    assert {row[0]: int(row[2]) for row in rows} == {name: c["n_battles"] for name, c in listed.items()}
    assert {row[0]: row[3] for row in rows} == {n: "provisional" if c["provisional"] else "" for n, c in listed.items()}
    assert int(rows[0][2]) == leaderboard_json(researcher, full, "")["n_battles"]  # every prompt is in English

    problems += open_page(page, url + "categories/?category=coding", width, failed)
    board = leaderboard_json(researcher, full, "category=coding")
    expect(page.locator("h2").first).to_have_text("Category coding")
    expect(page.locator(".results-warning")).to_contain_text(f"Provisional: {board['n_battles']} battles, under")
    assert_board(table(page, "table.leaderboard"), board["ratings"])
    expect(page.locator("table.categories tr[aria-current=true] td").first).to_have_text("coding")

    problems += open_page(page, url + "style/", width, failed)
    board = leaderboard_json(researcher, full, "style_control=1&bootstrap=100")
    assert_board(table(page, "table.leaderboard"), board["ratings"])
    coefficients = table(page, "table.style-coefficients")
    assert [row[0] for row in coefficients] == [s["feature"] for s in board["style"]]
    assert [row[0] for row in coefficients] == ["length", "headers", "lists", "bold"]
    for row, item in zip(coefficients, board["style"], strict=True):
        assert float(row[1]) == pytest.approx(item["coefficient"], abs=0.0006)

    problems += open_page(page, url + "combined/", width, failed)
    board = leaderboard_json(researcher, full, "combine=ppi")
    labelled, unlabelled = COMPARISONS - PAIRS, PAIRS
    assert (board["n_labelled"], board["n_unlabelled"]) == (labelled, unlabelled)
    meta = page.locator(".results-meta").first
    expect(meta).to_contain_text(f"{labelled} comparisons rated by humans and a judge · {unlabelled} by judges only")
    rows = table(page, "table.leaderboard")
    assert_board(rows, board["ratings"])
    assert [(int(row[7]), int(row[8])) for row in rows] == [(r["labelled"], r["unlabelled"]) for r in board["ratings"]]
    assert [float(row[5]) for row in rows] == pytest.approx([r["rating_human"] for r in board["ratings"]], abs=0.051)

    problems += open_page(page, url + "agreement/", width, failed)
    judge_row = table(page, "h2:has-text('Per rater') + .table-scroll table")
    judge_row = [row for row in judge_row if row[0] == "sonnet-judge"]
    assert judge_row[0][2] == str(2 * COMPARISONS)
    # First: both orders of 30 comparisons, plus the second order of the 8 inconsistent ones.
    assert (
        judge_row[0][6] == f"{(COMPARISONS + INCONSISTENT) / (2 * COMPARISONS):.3f} ({COMPARISONS + INCONSISTENT}/60)"
    )
    expect(page.locator("main")).not_to_contain_text("Consistency gate: ")
    problems += open_page(page, url + "agreement/?consistent=1", width, failed)
    expect(page.locator("main")).to_contain_text(
        f"Consistency gate: {INCONSISTENT} judge comparisons decided differently in the two orders"
    )
    expect(page.locator(".rater-options input[name=consistent]")).to_be_checked()
    rows = [row for row in table(page, "h2:has-text('Per rater') + .table-scroll table") if row[0] == "sonnet-judge"]
    decisive = 2 * (COMPARISONS - INCONSISTENT)  # each inconsistent pair is one tie now
    assert rows[0][2] == str(2 * COMPARISONS - INCONSISTENT)
    assert rows[0][6] == f"0.500 ({decisive // 2}/{decisive})"

    problems += open_page(page, url + "judge-report/", width, failed)  # the campaign's one judge, chosen
    report = api(researcher, f"judges/sonnet-judge/report/?campaign={slug}&bootstrap=0")
    expect(page.locator("nav[aria-label=Judges] a[aria-current=page]")).to_have_text("sonnet-judge")
    expect(page.locator(".results-meta").first).to_contain_text("family anthropic")
    checks = {row[0]: row[1:] for row in table(page, "section.card table")}
    first, second = COMPARISONS + INCONSISTENT, COMPARISONS - INCONSISTENT
    assert checks["Answer shown first preferred"][0] == f"{first / (first + second):.3f}"
    assert checks["Answer shown first preferred"][2] == f"{first} first, {second} second, 0 ties"
    assert checks["Consistent across the two orders"][2] == f"{COMPARISONS - INCONSISTENT} of {COMPARISONS}"
    version = report["versions"][0]
    majority = version["humans"]["agreement_with_human_majority"]["with_ties"]
    assert checks["Agreement with the human majority"][2] == f"{majority['agree']} of {majority['n']}"
    own = version["self_preference"]
    # claude-3-haiku against each other model, on the prompts the humans rated too (their mean is beside it).
    assert checks["Own family (anthropic) score, judge"][2] == f"{(len(TAGS) - 1) * (len(MODELS) - 1)} comparisons"
    assert float(checks["Own family (anthropic) score, judge"][0]) == pytest.approx(own["judge"]["value"], abs=6e-4)
    assert checks["Flip rate across repeats"][:2] == ["-", ""]  # no repeats: no figure, no empty interval
    problems += open_page(page, url + "judge-report/?judge=second-judge", width, failed)
    expect(page.locator(".results-warning")).to_have_text(
        "second-judge has not rated this campaign: no figures to show."
    )
    assert problems == []


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_raters_are_excluded_included_resumed_and_paused_from_the_keyboard(
    page: Page, live_server: Any, full: Full, researcher: User, reader: Any, viewport: str
) -> None:
    width, failed = reader(viewport)
    url = live_server.url + full.base + "raters/"
    alice, excluded = full.alice.pseudonym, "excluded from results"
    assert open_page(page, url, width, failed) == []
    standing = {row[0]: row[8] for row in table(page, "table.raters")}
    assert standing == {
        "expert_0": "active", "expert_1": "active", "expert_2": excluded, alice: "paused",
        "sonnet-judge": "active",
    }  # fmt: skip
    expect(page.get_by_role("button", name="Pause sonnet-judge")).to_have_count(0)  # a judge has no work to pause

    steps = [  # the button's name, the key, the message, the rater, its standing after
        ("Exclude expert_1 from results", "Enter", "Excluded from results: expert_1.", "expert_1", excluded),
        ("Include expert_2 again", "Space", "Included again: expert_2.", "expert_2", "active"),
        (f"Resume {alice}", "Enter", f"Resumed: {alice}.", alice, "active"),
        (f"Pause {alice}", "Space", f"Paused: {alice}.", alice, "paused"),
    ]  # fmt: skip
    for name, key, message, rater, after in steps:
        page.get_by_role("button", name=name).focus()
        page.keyboard.press(key)
        expect(page.locator(".messages")).to_have_text(message)
        assert {row[0]: row[8] for row in table(page, "table.raters")}[rater] == after
        logged = page.locator(".rater-log li").first
        expect(logged).to_contain_text(f"· rita · {name.split()[0].lower()} {rater}: {message.split(':')[0]}")
        expect(logged).to_contain_text("on the results page by rita")
    actions = RaterAction.objects.filter(campaign=full.campaign, actor=researcher).order_by("created_at", "pk")
    assert [(a.action, a.rater.name) for a in actions][-4:] == [
        ("exclude", "expert_1"), ("include", "expert_2"), ("resume", "alice"), ("pause", "alice"),
    ]  # fmt: skip
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    page.goto(live_server.url + full.base)
    expect(page.locator(".results-meta").first).to_contain_text("(excluded from results: expert_1)")


def report_pages(full: Full) -> list[str]:
    base = full.base
    return [
        *(base + q for q in ["", "?cluster=rater", "?rater_model=1", "?consistent=1", "?influence=1", "?downsample=1"]),
        base + "categories/",
        base + "categories/?category=coding",
        base + "style/",
        base + "combined/",
        base + "raters/",
        base + "judge-report/",
        base + "judge-report/?judge=sonnet-judge",
        base + "agreement/",
        base + "agreement/?consistent=1",
    ]


def test_another_campaigns_researcher_and_the_annotator_are_refused_every_report(
    full: Full, annotator: User, root: User
) -> None:
    stranger = factories.UserFactory.create(username="sam", is_staff=True)
    stranger.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=["annotation", "results"]))
    factories.CampaignFactory.create(owner=stranger, status="active")
    expected = {stranger: 404, annotator: 403, root: 200}
    answers = {}
    for user in expected:
        client = Client()
        client.force_login(user)
        for path in report_pages(full):
            answers[(user.username, path)] = client.get(path).status_code
    assert answers == {
        (user.username, path): status for user, status in expected.items() for path in report_pages(full)
    }

    before = list(AnnotatorStatus.objects.filter(campaign=full.campaign).values_list("pk", "paused", "excluded"))
    for user, status in ((stranger, 404), (annotator, 403)):
        client = Client()
        client.force_login(user)
        response = client.post(full.base + "raters/", {"rater": "expert_2", "action": "include"})
        assert response.status_code == status
    assert (
        list(AnnotatorStatus.objects.filter(campaign=full.campaign).values_list("pk", "paused", "excluded")) == before
    )
    assert RaterAction.objects.filter(campaign=full.campaign).count() == 2  # the fixture's two


def admin_pages(full: Full) -> list[str]:
    """The admin pages of this week's features: lists, a row's page and, where adding is offered, the add form."""
    action = RaterAction.objects.filter(campaign=full.campaign).order_by("pk").first()
    assert action is not None
    return [
        "/admin/annotation/annotatorstatus/",
        f"/admin/annotation/annotatorstatus/?campaign__id__exact={full.campaign.pk}",
        f"/admin/annotation/annotatorstatus/{full.status.pk}/change/",
        "/admin/annotation/rateraction/",
        f"/admin/annotation/rateraction/{action.pk}/change/",
        "/admin/judging/modelfamily/",
        "/admin/judging/modelfamily/add/",
        f"/admin/judging/modelfamily/{full.family.pk}/change/",
        "/admin/judging/judgepanel/",
        "/admin/judging/judgepanel/add/",
        f"/admin/judging/judgepanel/{full.panel.pk}/change/",
        "/admin/judging/panelrun/",
        "/admin/judging/panelrun/add/",
        f"/admin/judging/panelrun/{full.run.pk}/change/",
    ]


def test_the_admin_pages_of_these_features_load_for_a_researcher_and_a_superuser(
    full: Full, researcher: User, root: User
) -> None:
    answers = {}
    for user in (researcher, root):
        client = Client()
        client.force_login(user)
        for path in admin_pages(full):
            response = client.get(path)
            answers[(user.username, path)] = response.status_code
            if response.status_code == 200:
                assert re.search(rb'<div id="content"[^>]*>\s*<h1>[^<]+</h1>', response.content), path
    # Model families are shared by every team: a researcher reads them, only a superuser adds one.
    refused = {("rita", "/admin/judging/modelfamily/add/"): 403}
    assert answers == {key: refused.get(key, 200) for key in answers}
