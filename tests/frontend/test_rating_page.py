"""An annotator rates in the browser: keyboard, undo, progress, blindness and untrusted output."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Dialog, Page, Route, expect

from annotation.models import AnnotatorStatus, Assignment, Campaign, Comparison, Output, Prompt, Rating
from tests import factories
from tests.factories import make_comparison

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"
SECRET_MODELS = ["zephyr-secret-7b", "orca-hidden-13b"]
XSS = '<script>window.__pwned = 1</script>\n\n<img src=x onerror="window.__pwned = 2">'


def _campaign(*, prompts: int, texts: tuple[str, str] = ("A first answer.", "A second answer."), **fields: Any) -> Any:
    owner = factories.UserFactory.create(username="rita", is_staff=True)
    annotator = factories.UserFactory.create(username="alice")
    fields.setdefault("status", "active")
    campaign = factories.CampaignFactory.create(owner=owner, name="Helpfulness", **fields)
    campaign.annotators.add(annotator)
    for i in range(prompts):
        prompt = Prompt.objects.create(campaign=campaign, external_id=f"q{i}", text=f"Question {i}: *why*?")
        pairs = zip(SECRET_MODELS, texts, strict=True)
        first, second = (Output.objects.create(prompt=prompt, model_name=m, text=t) for m, t in pairs)
        make_comparison(prompt, first, second)
    return campaign, annotator


def _log_in(page: Page, live_server: Any, user: User) -> None:
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#id_username", user.get_username())
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("My campaigns")


def _assert_blind(page: Page) -> None:
    html = page.content()
    for name in SECRET_MODELS:
        assert name not in html


def test_an_annotator_rates_three_with_the_keyboard_undoes_one_and_sees_progress(page: Page, live_server: Any) -> None:
    campaign, annotator = _campaign(prompts=5, quota_per_annotator=4)
    _log_in(page, live_server, annotator)
    expect(page.locator(".campaign .progress-line")).to_contain_text("0 rated of 4")
    page.click("text=Start rating")
    comparison = page.locator("#comparison")
    expect(comparison).to_be_visible()
    _assert_blind(page)

    for rated, key in enumerate(["1", "2", "3"], start=1):
        shown = comparison.get_attribute("data-assignment")
        page.keyboard.press(key)
        expect(page.locator(f"button.choice[data-choice={['left', 'right', 'tie'][rated - 1]}]")).to_have_attribute(
            "aria-pressed", "true"
        )
        page.keyboard.press("Enter")
        expect(page.locator("#progress")).to_have_attribute("data-done", str(rated))
        expect(comparison).not_to_have_attribute("data-assignment", shown or "")
        _assert_blind(page)
    assert Rating.objects.filter(comparison__campaign=campaign).count() == 3

    page.keyboard.press("z")
    expect(page.locator("#progress")).to_have_attribute("data-done", "2")
    expect(page.locator("#status")).to_contain_text("Undone")
    assert Rating.objects.filter(comparison__campaign=campaign).count() == 2
    undone = comparison.get_attribute("data-assignment")
    assert not Rating.objects.filter(assignment_id=int(undone or 0)).exists()
    _assert_blind(page)

    page.keyboard.press("?")
    expect(page.locator("#help")).to_be_visible()
    page.goto(live_server.url + "/")
    expect(page.locator(".campaign .progress-line")).to_contain_text("2 rated of 4")


def test_mouse_and_touch_work_like_the_keys_and_time_on_task_is_stored(page: Page, live_server: Any) -> None:
    campaign, annotator = _campaign(prompts=2, require_rationale=True, label_scheme=Campaign.LabelScheme.BINARY)
    _log_in(page, live_server, annotator)
    page.click("text=Start rating")
    expect(page.locator("button.choice[data-choice=tie]")).to_have_count(0)

    page.click("button.choice[data-choice=right]")
    page.click("#submit")
    expect(page.locator("#status")).to_contain_text("rationale")
    page.fill("#rationale", "The right one cites its source.")
    page.click("#submit")

    expect(page.locator("#progress")).to_have_attribute("data-done", "1")
    rating = Rating.objects.get(comparison__campaign=campaign)
    assert rating.rationale == "The right one cites its source."
    assert rating.time_ms is not None


def test_an_output_with_script_and_onerror_payloads_renders_as_text_and_runs_nothing(
    page: Page, live_server: Any
) -> None:
    _, annotator = _campaign(prompts=1, texts=(XSS, "Plain answer with `code` and a [link](https://example.org)."))
    dialogs: list[str] = []

    def record(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    _log_in(page, live_server, annotator)
    page.click("text=Start rating")

    payload_side = page.locator(".side .scroll", has_text="window.__pwned")
    expect(payload_side).to_contain_text("<script>window.__pwned = 1</script>")
    expect(payload_side).to_contain_text('<img src=x onerror="window.__pwned = 2">')
    assert page.locator("#comparison img, #comparison script, #comparison a[href]").count() == 0
    page.wait_for_timeout(300)  # give a stray image error handler the chance to fire before checking
    assert page.evaluate("window.__pwned") is None
    assert dialogs == []


LONG_CODE = "```python\nresult = " + " + ".join(f"value_{i}" for i in range(60)) + "\n```"
WIDE_TABLE = (
    "| "
    + " | ".join(f"column number {i}" for i in range(12))
    + " |\n|"
    + "---|" * 12
    + "\n| "
    + " | ".join(str(i) for i in range(12))
    + " |"
)


def test_on_a_phone_the_outputs_stack_nothing_overflows_the_screen_and_taps_rate(
    browser: Any, live_server: Any
) -> None:
    campaign, annotator = _campaign(prompts=1, texts=(LONG_CODE, WIDE_TABLE + "\n\nhttps://example.org/" + "x" * 120))
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        _log_in(page, live_server, annotator)
        page.tap("text=Start rating")
        expect(page.locator("#comparison")).to_be_visible()

        left, right = (page.locator(f"#{side}").bounding_box() for side in ("left", "right"))
        assert left is not None
        assert right is not None
        assert left["y"] + left["height"] <= right["y"]  # stacked, the left output first
        answer = page.locator("#answer").bounding_box()
        assert answer is not None
        assert answer["y"] >= right["y"] + right["height"]  # after the outputs, not pinned over them
        # The page never scrolls sideways: long code and wide tables scroll inside their own box.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.evaluate("[...document.querySelectorAll('#comparison pre, #comparison table')].length") == 2
        for selector in ("#comparison pre", "#comparison table"):
            assert page.evaluate(f"document.querySelector('{selector}').scrollWidth") > page.evaluate(
                f"document.querySelector('{selector}').clientWidth"
            )
        for button in page.locator(".answer button").all():
            box = button.bounding_box()
            assert box is not None
            assert box["x"] >= 0
            assert box["x"] + box["width"] <= 390

        page.tap("button.choice[data-choice=left]")
        page.tap("#submit")
        expect(page.locator("#progress")).to_have_attribute("data-done", "1")
        assert Rating.objects.filter(comparison__campaign=campaign).count() == 1
    finally:
        context.close()


def test_an_annotator_paused_by_a_wrong_gold_answer_is_told_so_and_shown_nothing_more(
    page: Page, live_server: Any
) -> None:
    campaign, annotator = _campaign(prompts=3, gold_rate=1.0, gold_min_answered=1, gold_min_accuracy=0.9)
    gold = Comparison.objects.filter(campaign=campaign).first()
    assert gold is not None
    Comparison.objects.filter(pk=gold.pk).update(gold_verdict="tie")  # every claim tries gold first
    _log_in(page, live_server, annotator)
    page.click("text=Start rating")
    expect(page.locator("#comparison")).to_be_visible()

    page.keyboard.press("1")  # the gold answer is a tie
    page.keyboard.press("Enter")

    expect(page.locator("#paused")).to_be_visible()
    expect(page.locator("#comparison")).to_be_hidden()
    expect(page.locator("#done")).to_be_hidden()
    assert AnnotatorStatus.objects.get(campaign=campaign).paused
    page.reload()  # coming back says the same, without asking for a comparison
    expect(page.locator("#paused")).to_be_visible()
    expect(page.locator("#comparison")).to_be_hidden()
    assert Rating.objects.filter(comparison__campaign=campaign).count() == 1


@pytest.mark.http_errors(403)
def test_a_rating_given_after_the_session_ended_is_kept_and_sent_once_signed_in_again(
    page: Page, live_server: Any
) -> None:
    campaign, annotator = _campaign(prompts=3)
    _log_in(page, live_server, annotator)
    page.click("text=Start rating")
    expect(page.locator("#comparison")).to_be_visible()
    page.context.clear_cookies()  # signed out elsewhere, or the session expired

    page.keyboard.press("2")
    page.keyboard.press("Enter")

    expect(page.locator("#status")).to_contain_text("You are signed out")
    expect(page.locator("#status a")).to_have_attribute("href", "/accounts/login/?next=/")
    assert not Rating.objects.exists()
    other_tab = page.context.new_page()
    _log_in(other_tab, live_server, annotator)
    other_tab.close()
    expect(page.locator("#progress")).to_have_attribute("data-done", "1")  # sent by the page's own retry
    rating = Rating.objects.get(comparison__campaign=campaign)
    assert rating.verdict == "win"
    assert rating.winner_id != rating.left_output_id  # 2: the right side


@pytest.mark.http_errors(409)
def test_coming_back_after_the_lease_ended_replaces_the_released_comparison(page: Page, live_server: Any) -> None:
    campaign, annotator = _campaign(prompts=4)
    _log_in(page, live_server, annotator)
    page.click("text=Start rating")
    comparison = page.locator("#comparison")
    expect(comparison).to_be_visible()
    released = comparison.get_attribute("data-assignment")
    # The computer slept past the lease time: every lease this page holds has ended.
    Assignment.objects.filter(state="leased").update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")  # the tab is visible again

    expect(page.locator("#status")).to_contain_text("released while you were away")
    expect(comparison).not_to_have_attribute("data-assignment", released or "")
    expect(comparison).to_be_visible()
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(page.locator("#progress")).to_have_attribute("data-done", "1")
    rating = Rating.objects.get(comparison__campaign=campaign)
    assert rating.assignment_id != int(released or 0)


@pytest.mark.http_errors(409)
def test_a_campaign_paused_while_the_page_is_open_is_said_at_the_next_heartbeat(page: Page, live_server: Any) -> None:
    campaign, annotator = _campaign(prompts=4)
    _log_in(page, live_server, annotator)
    page.click("text=Start rating")
    expect(page.locator("#comparison")).to_be_visible()
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)

    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")  # the heartbeat runs at once

    expect(page.locator("#status")).to_contain_text("This campaign is paused and takes no ratings now.")
    expect(page.locator("#comparison")).to_be_hidden()
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    assert not Rating.objects.exists()


@pytest.mark.http_errors(404)
def test_an_annotator_removed_while_rating_is_told_and_the_rating_is_not_stored(page: Page, live_server: Any) -> None:
    campaign, annotator = _campaign(prompts=4)
    _log_in(page, live_server, annotator)
    page.click("text=Start rating")
    expect(page.locator("#comparison")).to_be_visible()
    page.wait_for_load_state("networkidle")  # the next comparison is prefetched before the removal
    campaign.annotators.remove(annotator)

    page.keyboard.press("1")
    page.keyboard.press("Enter")

    expect(page.locator("#status")).to_contain_text("A rating was not accepted: You no longer annotate this campaign.")
    expect(page.locator("#comparison")).to_be_hidden()
    assert not Rating.objects.exists()


LONG_ANSWER = "\n\n".join(f"Paragraph {i} of a long answer, worth reading in full." for i in range(60))
LONG_INSTRUCTIONS = "\n\n".join(f"Rule {i}: read both answers to the end before you choose." for i in range(40))


def _assert_outputs_readable_beside(page: Page, panel: str) -> None:
    """The open panel covers no output, and the sticky answer leaves at least 300 px of them on the screen."""
    names = (panel, "#left", "#right", "#answer")
    panel_box, left, right, answer = (page.locator(name).bounding_box() for name in names)
    assert panel_box is not None
    assert left is not None
    assert right is not None
    assert answer is not None
    assert panel_box["x"] >= right["x"] + right["width"]  # beside the outputs, not over them
    visible = min(left["y"] + left["height"], answer["y"], 900) - max(left["y"], 0)
    assert visible >= 300, (left, answer)


def test_panels_open_beside_the_outputs_close_for_the_next_comparison_and_ctrl_enter_leaves_the_rationale(
    page: Page, live_server: Any
) -> None:
    campaign, annotator = _campaign(prompts=3, texts=(LONG_ANSWER, LONG_ANSWER), instructions=LONG_INSTRUCTIONS)
    page.set_viewport_size({"width": 1440, "height": 900})
    _log_in(page, live_server, annotator)
    page.click("text=Start rating")
    comparison = page.locator("#comparison")
    expect(comparison).to_be_visible()
    expect(page.locator("#submit kbd")).to_be_visible()  # key hints on a desktop

    page.keyboard.press("i")
    expect(page.locator("#instructions")).to_be_visible()
    _assert_outputs_readable_beside(page, "#instructions")
    page.keyboard.press("?")
    expect(page.locator("#instructions")).to_be_hidden()
    expect(page.locator("#help")).to_be_visible()
    expect(page.locator("#help")).to_contain_text("Ctrl+Enter")
    _assert_outputs_readable_beside(page, "#help")

    shown = comparison.get_attribute("data-assignment")
    page.keyboard.press("1")
    page.click("#rationale")
    page.keyboard.type("The left one is clearer.")
    page.keyboard.press("Control+Enter")
    expect(comparison).not_to_have_attribute("data-assignment", shown or "")
    expect(page.locator("#help")).to_be_hidden()  # not kept open over the next comparison
    page.keyboard.press("2")  # a key again, not a character typed into the next rationale
    expect(page.locator("button.choice[data-choice=right]")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#rationale")).to_have_value("")
    expect(page.locator("#progress")).to_have_attribute("data-done", "1")
    assert Rating.objects.get(comparison__campaign=campaign).rationale == "The left one is clearer."


def test_undo_brings_the_answer_back_a_skip_is_said_and_not_undone_and_the_undo_offer_expires(
    page: Page, live_server: Any
) -> None:
    campaign, annotator = _campaign(prompts=4)
    page.clock.install()
    _log_in(page, live_server, annotator)
    page.click("text=Start rating")
    comparison, progress, status = page.locator("#comparison"), page.locator("#progress"), page.locator("#status")
    expect(progress).to_have_text("0 of 4 rated")
    first = comparison.get_attribute("data-assignment")

    page.keyboard.press("2")
    page.fill("#rationale", "It cites a source.")
    page.click("#submit")
    expect(progress).to_have_text("1 of 4 rated")
    page.keyboard.press("z")
    expect(status).to_contain_text("Undone")
    expect(comparison).to_have_attribute("data-assignment", first or "")
    expect(page.locator("button.choice[data-choice=right]")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#rationale")).to_have_value("It cites a source.")
    expect(progress).to_have_text("0 of 4 rated")

    page.click("#submit")
    expect(progress).to_have_text("1 of 4 rated")
    skipped = comparison.get_attribute("data-assignment")
    page.keyboard.press("s")
    expect(status).to_contain_text("Skipped")
    expect(comparison).not_to_have_attribute("data-assignment", skipped or "")
    third = comparison.get_attribute("data-assignment")
    page.keyboard.press("z")
    expect(status).to_contain_text("a skipped comparison is not brought back")
    expect(comparison).to_have_attribute("data-assignment", third or "")
    assert Rating.objects.get(comparison__campaign=campaign).assignment_id == int(first or 0)

    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(progress).to_have_text("2 of 4 rated")
    expect(status).to_have_text("Saved. Press Z within 15 s to undo.")
    page.clock.fast_forward(16_000)
    expect(status).to_have_text("")  # the offer goes with the window
    expect(page.locator("#undo")).to_be_disabled()


def test_on_a_phone_the_choices_pair_up_submit_comes_into_view_and_no_key_hints_show(
    browser: Any, live_server: Any
) -> None:
    campaign, annotator = _campaign(prompts=2, texts=(LONG_ANSWER, LONG_ANSWER), instructions=LONG_INSTRUCTIONS)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        _log_in(page, live_server, annotator)
        page.tap("text=Start rating")
        expect(page.locator("#comparison")).to_be_visible()
        boxes = [button.bounding_box() for button in page.locator("button.choice").all()]
        assert len(boxes) == 4
        rows: dict[float, list[float]] = {}
        for box in boxes:
            assert box is not None
            rows.setdefault(round(box["y"]), []).append(round(box["width"]))
        assert [len(widths) for widths in rows.values()] == [2, 2]  # two even rows, not 1, 2, 1
        assert all(max(widths) - min(widths) <= 1 for widths in rows.values())
        expect(page.locator(".answer kbd").first).to_be_hidden()
        expect(page.locator("#toggle-help")).to_be_hidden()
        expect(page.locator("#toggle-instructions")).to_have_text("Instructions", use_inner_text=True)

        left = page.locator("button.choice[data-choice=left]")
        left.evaluate("button => button.scrollIntoView({block: 'end'})")  # the choices at the screen's bottom edge
        left.tap()
        submit = page.locator("#submit").bounding_box()
        assert submit is not None
        assert submit["y"] >= 0
        assert submit["y"] + submit["height"] <= 844

        page.tap("#toggle-instructions")
        instructions, first_output = page.locator("#instructions").bounding_box(), page.locator("#left").bounding_box()
        assert instructions is not None
        assert first_output is not None
        assert instructions["y"] + instructions["height"] <= first_output["y"]  # in the page's flow, above
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.tap("#submit")
        expect(page.locator("#progress")).to_have_text("1 of 2 rated")
        expect(page.locator("#status")).to_have_text("Saved. Tap Undo within 15 s to undo.")
        expect(page.locator("#instructions")).to_be_hidden()
        assert Rating.objects.filter(comparison__campaign=campaign).count() == 1
    finally:
        context.close()


def test_progress_counts_a_rating_once_it_is_saved_before_the_next_comparison_appears(
    page: Page, live_server: Any
) -> None:
    _, annotator = _campaign(prompts=3)
    _log_in(page, live_server, annotator)
    page.click("text=Start rating")
    comparison, progress = page.locator("#comparison"), page.locator("#progress")
    expect(progress).to_have_text("0 of 3 rated")
    page.wait_for_load_state("networkidle")  # the second comparison is prefetched
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)

    page.route("**/next/", hold)  # the third is not: its request waits
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(progress).to_have_text("1 of 3 rated")
    second = comparison.get_attribute("data-assignment")

    page.keyboard.press("2")
    page.keyboard.press("Enter")

    expect(progress).to_have_text("2 of 3 rated")
    expect(comparison).to_have_attribute("data-assignment", second or "")  # the next one has not appeared
    assert held
    for route in held:
        route.continue_()
    page.unroute("**/next/")  # and lets any request held meanwhile through
    expect(comparison).not_to_have_attribute("data-assignment", second or "")
    expect(progress).to_have_text("2 of 3 rated")
