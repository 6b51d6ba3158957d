"""Judge configurations, runs and judging one verdict, in process against the local server."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from annotation.models import Campaign, Rater, Rating
from evalplatform.exceptions import Conflict, DomainError
from judging import batch, outcomes, prompts, selectors, services
from judging.models import JudgeConfig, JudgeRun, JudgeVerdict, LLMCall
from results import tasks as results_tasks
from tests.judging.conftest import LocalLLM

MakeJudge = Callable[..., JudgeConfig]


def _judge_all(run: JudgeRun) -> None:
    for verdict_id in run.verdicts.values_list("pk", flat=True):
        services.judge_verdict(verdict_id=verdict_id, worker="test")


def test_save_judge_creates_a_judge_rater_with_the_same_name(make_judge: MakeJudge) -> None:
    judge = make_judge("gpt-judge")
    assert (judge.rater.name, judge.rater.kind) == ("gpt-judge", Rater.Kind.JUDGE)
    again, created = services.save_judge(name="gpt-judge", temperature=0.5)
    assert not created
    assert again.rater_id == judge.rater_id
    assert again.temperature == 0.5


def test_save_judge_refuses_the_name_of_a_human_rater(db: None) -> None:
    Rater.objects.create(name="alice", kind=Rater.Kind.HUMAN)
    with pytest.raises(Conflict, match="human rater"):
        services.save_judge(name="alice", base_url="http://x/v1", model="m")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"base_url": "ftp://x"}, "base_url"),
        ({"template": "custom", "custom_template": "{question} {answer_a}"}, "custom_template"),
        (
            {"template": "custom", "custom_template": "{answer_a} {answer_b}", "verdict_pattern": "A|B"},
            "verdict_pattern",
        ),
        (
            {
                "template": "custom",
                "custom_template": "{answer_a} {answer_b}",
                "verdict_format": "probability",
                "verdict_pattern": r"P=\S+",
            },
            "verdict_pattern",
        ),
        ({"temperature": 3.0}, "temperature"),
        ({"max_concurrency": 0}, "max_concurrency"),
    ],
)
def test_save_judge_names_the_bad_setting_and_stores_nothing(db: None, options: dict[str, Any], field: str) -> None:
    options = {"base_url": "http://127.0.0.1:9/v1", "model": "m", **options}
    with pytest.raises(DomainError) as caught:
        services.save_judge(name="bad", **options)
    assert caught.value.field == field
    assert not JudgeConfig.objects.exists()
    assert not Rater.objects.filter(name="bad").exists()


def test_a_judge_config_cannot_use_a_human_rater(db: None) -> None:
    human = Rater.objects.create(name="bob", kind=Rater.Kind.HUMAN)

    def create_and_check() -> None:
        with transaction.atomic():
            JudgeConfig.objects.create(name="bob", rater=human, base_url="http://x/v1", model="m")
            connection.cursor().execute("SET CONSTRAINTS ALL IMMEDIATE")

    with pytest.raises(IntegrityError):
        create_and_check()


def test_start_run_creates_one_pending_verdict_per_comparison_and_order(
    campaign: Campaign, make_judge: MakeJudge, sent: list[Any]
) -> None:
    judge = make_judge()
    run = services.start_run(campaign=campaign, judge=judge)
    comparisons = campaign.comparisons.count()
    assert run.status == JudgeRun.Status.RUNNING
    assert run.verdicts.filter(state=JudgeVerdict.State.PENDING).count() == 2 * comparisons
    assert set(run.verdicts.values_list("order", flat=True)) == {"ab", "ba"}


def test_a_second_run_duplicates_nothing_and_takes_over_pending_work(
    campaign: Campaign, make_judge: MakeJudge, sent: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    judge = make_judge()
    first = services.start_run(campaign=campaign, judge=judge, limit=2)
    with django_capture_on_commit_callbacks(execute=True):
        second = services.start_run(campaign=campaign, judge=judge)
    assert JudgeVerdict.objects.filter(judge=judge).count() == 2 * campaign.comparisons.count()
    assert first.verdicts.count() == 0
    assert second.verdicts.count() == 2 * campaign.comparisons.count()
    first.refresh_from_db()
    assert first.status == JudgeRun.Status.COMPLETED  # its work moved on; it does not hang as running


def test_limit_judges_the_first_comparisons_in_sampling_order(
    campaign: Campaign, make_judge: MakeJudge, sent: list[Any]
) -> None:
    run = services.start_run(campaign=campaign, judge=make_judge(), limit=3)
    expected = list(campaign.comparisons.order_by("random_key", "id").values_list("pk", flat=True)[:3])
    assert sorted(set(run.verdicts.values_list("comparison_id", flat=True))) == sorted(expected)


def test_one_order_judges_judge_each_comparison_once(
    campaign: Campaign, make_judge: MakeJudge, sent: list[Any]
) -> None:
    run = services.start_run(campaign=campaign, judge=make_judge(both_orders=False))
    assert run.verdicts.count() == campaign.comparisons.count()


def test_reference_template_refuses_prompts_without_a_reference(campaign: Campaign, make_judge: MakeJudge) -> None:
    with pytest.raises(DomainError, match="12 of the selected comparisons"):
        services.start_run(campaign=campaign, judge=make_judge(template="mt_bench_reference"))
    assert not JudgeRun.objects.exists()


def test_judged_verdict_becomes_a_judge_rating_of_the_shown_first_output(
    campaign: Campaign, make_judge: MakeJudge, local_llm: LocalLLM, sent: list[Any]
) -> None:
    url, _ = local_llm()
    judge = make_judge(base_url=url, price_input_per_million=Decimal(10), price_output_per_million=Decimal(30))
    run = services.start_run(campaign=campaign, judge=judge, limit=1)
    _judge_all(run)
    for verdict in run.verdicts.select_related("rating", "comparison"):
        assert verdict.state == JudgeVerdict.State.DONE
        rating = verdict.rating
        assert rating is not None
        assert (rating.rater_id, rating.rater_kind, rating.source) == (judge.rater_id, "judge", "judge")
        assert rating.left_output_id == verdict.shown_first_id
        assert verdict.parsed is not None
        if verdict.parsed["outcome"] == "A":
            assert rating.winner_id == verdict.shown_first_id
        assert verdict.tokens_in > 0
        assert verdict.latency_ms is not None
        assert verdict.cost == outcomes.call_cost(judge, verdict.tokens_in, verdict.tokens_out) > 0
        assert len(verdict.request_hash) == 64
        assert verdict.raw_response
    run.refresh_from_db()
    assert run.status == JudgeRun.Status.COMPLETED


def test_unparseable_reply_is_recorded_with_its_text_not_turned_into_a_tie(
    campaign: Campaign, make_judge: MakeJudge, local_llm: LocalLLM, sent: list[Any]
) -> None:
    url, _ = local_llm(fault_rate=1.0, faults=("malformed",))
    run = services.start_run(campaign=campaign, judge=make_judge(base_url=url), limit=1)
    _judge_all(run)
    verdict = run.verdicts.first()
    assert verdict is not None
    assert verdict.state == JudgeVerdict.State.PARSE_FAILED
    assert "no verdict" in verdict.reason
    assert "cannot decide" in verdict.raw_response
    assert not Rating.objects.exists()
    assert selectors.run_progress(run).parse_failed == 2


def test_identical_request_reuses_the_stored_reply_without_calling_or_paying(
    campaign: Campaign, make_judge: MakeJudge, local_llm: LocalLLM, sent: list[Any]
) -> None:
    url, server = local_llm()
    options = {"base_url": url, "price_input_per_million": Decimal(10)}
    _judge_all(services.start_run(campaign=campaign, judge=make_judge("first", **options), limit=2))
    calls = server.stats["completions"]
    twin = services.start_run(campaign=campaign, judge=make_judge("twin", **options), limit=2)
    _judge_all(twin)
    assert server.stats["completions"] == calls == LLMCall.objects.count() == 4
    assert all(v.cached and v.cost == 0 and v.state == "done" for v in twin.verdicts.all())


def test_transient_error_releases_the_claim_with_backoff_then_gives_up_with_the_reason(
    campaign: Campaign, make_judge: MakeJudge, local_llm: LocalLLM, sent: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = local_llm(fault_rate=1.0, faults=("server_error",))
    run = services.start_run(campaign=campaign, judge=make_judge(base_url=url, max_attempts=2), limit=1)
    verdict = run.verdicts.get(order="ab")
    step = services.judge_verdict(verdict_id=verdict.pk, worker="test")
    verdict.refresh_from_db()
    assert step.retry_in is not None
    assert step.retry_in > 0
    assert (verdict.state, verdict.attempts, verdict.reason) == (
        "pending",
        1,
        "attempt 1: HTTP 500: the server had an error while processing your request",
    )
    # Still backing off just before the retry is due (the clock is pinned: a slow machine may take longer than the
    # first attempt's 0.25-0.5 s backoff to get here).
    assert verdict.retry_at is not None
    due = verdict.retry_at
    monkeypatch.setattr(services, "now", lambda: due - timedelta(milliseconds=1))
    assert services.judge_verdict(verdict_id=verdict.pk, worker="test").retry_in is not None
    later = timezone.now() + timedelta(seconds=60)
    monkeypatch.setattr(services, "now", lambda: later)
    assert services.judge_verdict(verdict_id=verdict.pk, worker="test").retry_in is None
    verdict.refresh_from_db()
    assert verdict.state == JudgeVerdict.State.FAILED
    assert verdict.reason.startswith("gave up after 2 attempts: HTTP 500")


def test_rate_limited_call_waits_at_least_retry_after(
    campaign: Campaign, make_judge: MakeJudge, local_llm: LocalLLM, sent: list[Any]
) -> None:
    url, _ = local_llm(fault_rate=1.0, faults=("rate_limit",), retry_after=7)
    run = services.start_run(campaign=campaign, judge=make_judge(base_url=url), limit=1)
    verdict = run.verdicts.first()
    assert verdict is not None
    asked_at = timezone.now()
    step = services.judge_verdict(verdict_id=verdict.pk, worker="test")
    assert step.retry_in is not None
    # The wait counts from now, after the call: the next attempt comes no sooner than 7 s after the call went out.
    assert timezone.now() + timedelta(seconds=step.retry_in) >= asked_at + timedelta(seconds=7)
    verdict.refresh_from_db()
    assert verdict.retry_at is not None
    assert verdict.retry_at >= asked_at + timedelta(seconds=7)


def test_permanent_error_fails_the_verdict_with_the_reason(
    campaign: Campaign, make_judge: MakeJudge, sent: list[Any], monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.EVALPLATFORM_JUDGE_KEY_ENVS = ["MISSING_KEY"]
    monkeypatch.delenv("MISSING_KEY", raising=False)
    run = services.start_run(campaign=campaign, judge=make_judge(api_key_env="MISSING_KEY"), limit=1)
    _judge_all(run)
    assert set(run.verdicts.values_list("state", flat=True)) == {"failed"}
    assert "MISSING_KEY" in run.verdicts.first().reason  # type: ignore[union-attr]
    run.refresh_from_db()
    assert run.status == JudgeRun.Status.FAILED
    assert "MISSING_KEY" in run.error


def test_a_verdict_claimed_by_a_live_worker_is_left_alone_until_its_lease_expires(
    campaign: Campaign, make_judge: MakeJudge, sent: list[Any]
) -> None:
    run = services.start_run(campaign=campaign, judge=make_judge(), limit=1)
    verdict = run.verdicts.select_related("judge").first()
    assert verdict is not None
    token = services.claim_verdict(verdict=verdict, worker="w1", request_hash="h", limited=True)
    assert isinstance(token, str)
    assert services.claim_verdict(verdict=verdict, worker="w2", request_hash="h", limited=True) is None
    JudgeVerdict.objects.filter(pk=verdict.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert isinstance(services.claim_verdict(verdict=verdict, worker="w2", request_hash="h", limited=True), str)
    assert not services.fail_verdict(verdict=verdict, token=token, reason="late")  # w1 lost its claim


def test_concurrency_limit_holds_across_workers(campaign: Campaign, make_judge: MakeJudge, sent: list[Any]) -> None:
    run = services.start_run(campaign=campaign, judge=make_judge(max_concurrency=1), limit=1)
    first, second = run.verdicts.select_related("judge")
    assert isinstance(services.claim_verdict(verdict=first, worker="w1", request_hash="h", limited=True), str)
    wait = services.claim_verdict(verdict=second, worker="w2", request_hash="h", limited=True)
    assert isinstance(wait, float)
    assert wait > 0


def test_request_rate_is_a_token_bucket_shared_by_workers(
    campaign: Campaign, make_judge: MakeJudge, sent: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    start = timezone.now()
    monkeypatch.setattr(services, "now", lambda: start)
    run = services.start_run(campaign=campaign, judge=make_judge(requests_per_minute=60), limit=2)
    verdicts = list(run.verdicts.select_related("judge"))
    assert isinstance(services.claim_verdict(verdict=verdicts[0], worker="w1", request_hash="h", limited=True), str)
    wait = services.claim_verdict(verdict=verdicts[1], worker="w2", request_hash="h", limited=True)
    assert wait == pytest.approx(1.0)
    monkeypatch.setattr(services, "now", lambda: start + timedelta(seconds=1))
    assert isinstance(services.claim_verdict(verdict=verdicts[1], worker="w2", request_hash="h", limited=True), str)


def test_cancelled_run_claims_nothing_and_resume_re_enqueues_pending_and_expired_work(
    campaign: Campaign,
    make_judge: MakeJudge,
    local_llm: LocalLLM,
    sent: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    url, server = local_llm()
    run = services.start_run(campaign=campaign, judge=make_judge(base_url=url), limit=2)
    services.cancel_run(run=run)
    _judge_all(run)
    assert server.stats["completions"] == 0
    with pytest.raises(Conflict):
        services.cancel_run(run=run)
    dead = run.verdicts.first()
    assert dead is not None
    JudgeVerdict.objects.filter(pk=dead.pk).update(
        state="claimed", claimed_by="dead", claimed_until=timezone.now() - timedelta(seconds=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.resume_run(run=run)
    assert sorted(i for i, _ in sent) == sorted(run.verdicts.values_list("pk", flat=True))
    _judge_all(run)
    run.refresh_from_db()
    assert run.status == JudgeRun.Status.COMPLETED
    assert selectors.run_progress(run).done == 4


def test_resume_schedules_live_claims_for_when_their_lease_ends(
    campaign: Campaign, make_judge: MakeJudge, sent: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    run = services.start_run(campaign=campaign, judge=make_judge(), limit=1)
    held = run.verdicts.first()
    assert held is not None
    JudgeVerdict.objects.filter(pk=held.pk).update(
        state="claimed", claimed_by="maybe-dead", claimed_until=timezone.now() + timedelta(seconds=30)
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.resume_run(run=run)
    countdowns = dict(sent)
    assert countdowns[held.pk] is not None
    assert 29 < countdowns[held.pk] <= 31


def test_position_consistency_counts_orders_that_disagree(
    campaign: Campaign, make_judge: MakeJudge, local_llm: LocalLLM, sent: list[Any]
) -> None:
    biased_url, _ = local_llm(position_bias=1.0)
    biased = make_judge("biased", base_url=biased_url)
    _judge_all(services.start_run(campaign=campaign, judge=biased, limit=3))
    consistency = selectors.position_consistency(biased)
    assert (consistency.pairs, consistency.consistent, consistency.rate) == (3, 0, 0.0)
    assert len(consistency.inconsistent_comparison_ids) == 3


def test_consistency_of_many_runs_at_once_equals_each_runs_own(
    campaign: Campaign, make_judge: MakeJudge, local_llm: LocalLLM, sent: list[Any]
) -> None:
    biased_url, _ = local_llm(position_bias=1.0)
    fair_url, _ = local_llm(position_bias=0.0)
    biased, fair = make_judge("biased", base_url=biased_url), make_judge("fair", base_url=fair_url)
    runs = [services.start_run(campaign=campaign, judge=biased, limit=3)]
    runs.append(services.start_run(campaign=campaign, judge=fair, limit=5))
    for run in runs:
        _judge_all(run)
    runs.append(services.start_run(campaign=campaign, judge=biased))  # the rest: nothing judged yet
    together = selectors.runs_consistency(runs)
    assert together == {run.pk: selectors.position_consistency(run.judge, run=run) for run in runs}
    assert (together[runs[0].pk].pairs, together[runs[0].pk].consistent) == (3, 0)
    assert together[runs[1].pk].pairs == 5
    assert together[runs[2].pk].pairs == 0


def test_orders_agree_when_the_same_output_wins_or_both_tie() -> None:
    assert selectors.orders_agree("A", "B")
    assert selectors.orders_agree("tie", "tie")
    assert not selectors.orders_agree("A", "A")
    assert not selectors.orders_agree("tie", "B")


def test_a_judge_rating_schedules_a_leaderboard_refresh_after_commit(
    campaign: Campaign,
    make_judge: MakeJudge,
    local_llm: LocalLLM,
    sent: list[Any],
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, _ = local_llm()
    run = services.start_run(campaign=campaign, judge=make_judge(base_url=url), limit=3)
    refreshes: list[Any] = []
    monkeypatch.setattr(results_tasks.refresh_leaderboards, "apply_async", lambda args, **kw: refreshes.append(args))
    results_tasks.forget_scheduled()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        _judge_all(run)
    results_tasks.forget_scheduled()
    assert Rating.objects.filter(source="judge").count() == 6
    assert callbacks  # scheduled after commit
    # For the burst: one refresh at once and one a window later, not one per rating.
    assert refreshes == [(campaign.pk,), (campaign.pk,)]


def test_a_custom_probability_judge_needs_no_pattern_and_reads_the_marker(db: None) -> None:
    judge, _ = services.save_judge(
        name="p-custom", base_url="http://127.0.0.1:9/v1", model="m", template="custom",
        custom_template="{answer_a} or {answer_b}?", verdict_format="probability",
    )  # fmt: skip

    spec = batch.prompt_spec_for(judge)
    assert (spec.verdict_format, spec.verdict_pattern) == ("probability", prompts.PROBABILITY_PATTERN)
