"""Judging verdicts in batches: a window of calls under the judge's limits, outcomes written in bulk."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from annotation.models import Campaign, Rating
from judging import batch, fetch, limits, llm, outcomes, selectors, services
from judging.models import JudgeCaller, JudgeConfig, JudgeRun, JudgeSlot, JudgeVerdict, LLMCall
from tests.judging.conftest import LocalLLM

MakeJudge = Callable[..., JudgeConfig]


def _judge_run(run: JudgeRun, max_wait: float = 5.0) -> dict[int, float]:
    ids = list(run.verdicts.values_list("pk", flat=True))
    return services.judge_verdicts(verdict_ids=ids, worker="test", max_wait=max_wait)


def test_a_batch_judges_every_verdict_with_one_rating_each_and_ends_the_run(
    campaign: Campaign, make_judge: MakeJudge, local_llm: LocalLLM, sent: list[Any]
) -> None:
    url, server = local_llm(latency_ms=20)
    run = services.start_run(campaign=campaign, judge=make_judge(base_url=url, max_concurrency=4))
    assert _judge_run(run) == {}
    total = 2 * campaign.comparisons.count()
    assert run.verdicts.filter(state=JudgeVerdict.State.DONE).count() == total
    assert Rating.objects.filter(source="judge").count() == total
    assert LLMCall.objects.count() == server.stats["completions"] == total
    run.refresh_from_db()
    assert run.status == JudgeRun.Status.COMPLETED


def test_backoff_without_retry_after_grows_exponentially_with_jitter_and_is_capped() -> None:
    for attempt in range(1, 6):
        ceiling = 0.5 * 2 ** (attempt - 1)
        assert ceiling / 2 <= batch.backoff_seconds(attempt) <= ceiling
    assert batch.BACKOFF_CAP_SECONDS / 2 <= batch.backoff_seconds(30) <= batch.BACKOFF_CAP_SECONDS


def test_backoff_waits_what_retry_after_says_with_a_little_jitter_whatever_the_attempt() -> None:
    waits = [batch.backoff_seconds(attempt, retry_after=1.0) for attempt in range(1, 11) for _ in range(20)]
    assert all(1.0 <= wait <= 1.11 for wait in waits)
    assert len(set(waits)) > 1  # jittered
    assert 0.0 <= batch.backoff_seconds(5, retry_after=0.0) <= 0.01


def test_backoff_caps_a_huge_retry_after() -> None:
    assert batch.backoff_seconds(1, retry_after=3600) == batch.BACKOFF_CAP_SECONDS


@pytest.mark.parametrize(
    ("capacity", "wants", "others", "share"),
    [
        (64, 64, [], 64),
        (64, 64, [64], 32),
        (64, 64, [64, 64, 64], 16),
        (64, 64, [4], 60),
        (64, 3, [64], 3),
        (8, 8, [8, 8], 3),
        (4, 9, [1, 1, 1, 1], 1),
    ],
)
def test_fair_share_meets_small_wants_and_splits_the_rest_evenly(
    capacity: int, wants: int, others: list[int], share: int
) -> None:
    assert limits.fair_share(capacity, wants, others) == share


def test_calls_in_flight_never_exceed_the_judges_max_concurrency_and_slots_held_elsewhere(
    campaign: Campaign, make_judge: MakeJudge, local_llm: LocalLLM, sent: list[Any]
) -> None:
    url, server = local_llm(latency_ms=50)
    judge = make_judge(base_url=url, max_concurrency=3)
    assert limits.take_slots(judge, holder="another-worker", n=1, until=timezone.now() + timedelta(minutes=1),
                             current=timezone.now()) == 1  # fmt: skip
    run = services.start_run(campaign=campaign, judge=judge)
    assert _judge_run(run) == {}
    assert server.stats["completions"] == run.verdicts.count() > 3
    assert server.stats["max_in_flight"] == 2  # 3 slots, one of them held by another worker
    assert not JudgeSlot.objects.filter(judge=judge).exclude(holder="another-worker").exclude(holder="").exists()
    assert not JudgeCaller.objects.filter(judge=judge).exists()


def test_a_batch_answers_from_the_call_cache_what_it_can_and_calls_for_the_rest(
    campaign: Campaign, make_judge: MakeJudge, local_llm: LocalLLM, sent: list[Any]
) -> None:
    url, server = local_llm()
    options = {"base_url": url, "price_input_per_million": Decimal(10)}
    _judge_run(services.start_run(campaign=campaign, judge=make_judge("first", **options), limit=2))
    twin = services.start_run(campaign=campaign, judge=make_judge("twin", **options), limit=3)
    assert _judge_run(twin) == {}
    verdicts = list(twin.verdicts.all())
    assert len(verdicts) == 6
    assert sum(v.cached for v in verdicts) == 4
    assert server.stats["completions"] == 4 + 2
    assert all(v.state == "done" and (v.cost == 0) == v.cached for v in verdicts)


def test_a_batch_hands_back_rate_limited_verdicts_for_after_retry_after_and_judges_the_rest(
    campaign: Campaign, make_judge: MakeJudge, local_llm: LocalLLM, sent: list[Any]
) -> None:
    url, server = local_llm(fault_rate=0.4, faults=("rate_limit",), retry_after=3, seed=1)
    run = services.start_run(campaign=campaign, judge=make_judge(base_url=url))
    asked_at = timezone.now()
    later = _judge_run(run, max_wait=2.0)
    limited = run.verdicts.filter(state=JudgeVerdict.State.PENDING)
    assert set(later) == set(limited.values_list("pk", flat=True))
    assert server.stats["fault_rate_limit"] == len(later) > 0
    assert all(timezone.now() + timedelta(seconds=wait) >= asked_at + timedelta(seconds=3) for wait in later.values())
    for verdict in limited:
        assert verdict.reason == "attempt 1: 429 rate limited"
        assert verdict.retry_at is not None
        assert (verdict.claimed_by, verdict.attempts) == ("", 1)
    assert run.verdicts.filter(state=JudgeVerdict.State.DONE).count() == run.verdicts.count() - len(later)
    run.refresh_from_db()
    assert run.status == JudgeRun.Status.RUNNING  # the handed-back verdicts are still to come


def test_a_verdict_rate_limited_again_and_again_waits_retry_after_not_longer(
    campaign: Campaign, make_judge: MakeJudge, local_llm: LocalLLM, sent: list[Any]
) -> None:
    url, _ = local_llm(fault_rate=1.0, faults=("rate_limit",), retry_after=1)
    run = services.start_run(campaign=campaign, judge=make_judge(base_url=url, max_attempts=10), limit=1)
    verdict = run.verdicts.get(order="ab")
    JudgeVerdict.objects.filter(pk=verdict.pk).update(attempts=6)  # exponential backoff would now wait 8-16 s
    before = timezone.now()
    step = services.judge_verdict(verdict_id=verdict.pk, worker="test")
    after = timezone.now()
    verdict.refresh_from_db()
    assert (verdict.state, verdict.attempts, verdict.reason) == ("pending", 7, "attempt 7: 429 rate limited")
    assert verdict.retry_at is not None
    assert before + timedelta(seconds=1) <= verdict.retry_at <= after + timedelta(seconds=1.11)
    assert step.retry_in is not None
    assert step.retry_in <= 1.11


def test_a_batch_records_unparseable_replies_with_their_text_beside_judged_ones(
    campaign: Campaign, make_judge: MakeJudge, local_llm: LocalLLM, sent: list[Any]
) -> None:
    url, _ = local_llm(fault_rate=0.5, faults=("malformed",), seed=2)
    run = services.start_run(campaign=campaign, judge=make_judge(base_url=url))
    assert _judge_run(run) == {}
    unparseable = run.verdicts.filter(state=JudgeVerdict.State.PARSE_FAILED)
    assert 0 < unparseable.count() < run.verdicts.count()
    assert all("cannot decide" in v.raw_response and "no verdict" in v.reason for v in unparseable)
    assert Rating.objects.filter(source="judge").count() == run.verdicts.filter(state=JudgeVerdict.State.DONE).count()
    assert selectors.run_progress(run).finished == run.verdicts.count()


def test_a_rating_the_judges_rater_already_has_fails_that_verdict_not_the_batch(
    campaign: Campaign, make_judge: MakeJudge, local_llm: LocalLLM, sent: list[Any]
) -> None:
    url, _ = local_llm()
    judge = make_judge(base_url=url)
    run = services.start_run(campaign=campaign, judge=judge, limit=2)
    taken = run.verdicts.select_related("comparison").get(comparison=run.verdicts.first().comparison, order="ab")  # type: ignore[union-attr]
    comparison = taken.comparison
    Rating.objects.create(
        comparison=comparison, rater=judge.rater, rater_kind="judge", source="import", verdict="tie",
        left_output_id=comparison.output_a_id, created_at=timezone.now(),
    )  # fmt: skip
    assert _judge_run(run) == {}
    taken.refresh_from_db()
    assert (taken.state, taken.reason) == (JudgeVerdict.State.FAILED, outcomes.ALREADY_RATED)
    assert run.verdicts.filter(state=JudgeVerdict.State.DONE).count() == 3


def test_outcomes_of_a_claim_lost_to_an_expired_lease_are_dropped(
    campaign: Campaign, make_judge: MakeJudge, local_llm: LocalLLM, sent: list[Any]
) -> None:
    url, _ = local_llm()
    run = services.start_run(campaign=campaign, judge=make_judge(base_url=url), limit=1)
    verdict = run.verdicts.select_related("judge").get(order="ab")
    late = services.claim_verdict(verdict=verdict, worker="late", request_hash="h", limited=False)
    JudgeVerdict.objects.filter(pk=verdict.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert isinstance(services.claim_verdict(verdict=verdict, worker="live", request_hash="h", limited=False), str)
    assert isinstance(late, str)
    (loaded,) = fetch.load_verdicts([verdict.pk])
    work = outcomes.Work(loaded, batch.build_call(loaded))
    reply = llm.ChatResult("[[A]]", "stop", 10, 2, 5, {"choices": []})
    outcomes.record([outcomes.Reply(work, reply, cached=False)], holder=late, current=timezone.now())
    verdict.refresh_from_db()
    assert verdict.state == JudgeVerdict.State.CLAIMED
    assert not Rating.objects.exists()
    assert not LLMCall.objects.exists()


def test_verdicts_handed_back_go_to_the_broker_in_one_task_per_half_second_of_waits(sent: list[Any]) -> None:
    services.enqueue_later({1: 0.2, 2: 0.45, 3: 1.7, 4: 1.9, 5: 6.0})
    assert sorted(sent) == [(1, 0.2), (2, 0.2), (3, 1.7), (4, 1.7), (5, 6.0)]


def test_a_judge_made_without_its_slots_gets_them_on_first_use(
    campaign: Campaign, make_judge: MakeJudge, local_llm: LocalLLM, sent: list[Any]
) -> None:
    url, _ = local_llm()
    judge = make_judge(base_url=url, max_concurrency=2)
    JudgeSlot.objects.filter(judge=judge).delete()
    run = services.start_run(campaign=campaign, judge=judge, limit=2)
    later = _judge_run(run, max_wait=1.0)
    while later:
        later = _judge_run(run, max_wait=1.0)
    assert run.verdicts.filter(state=JudgeVerdict.State.DONE).count() == 4
    assert JudgeSlot.objects.filter(judge=judge).count() == 2


def test_a_batch_that_breaks_mid_way_gives_back_its_claims_and_slots_and_a_rerun_finishes_it(
    campaign: Campaign, make_judge: MakeJudge, local_llm: LocalLLM, sent: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = local_llm(latency_ms=20)
    judge = make_judge(base_url=url, max_concurrency=2)
    run = services.start_run(campaign=campaign, judge=judge)
    writes = 0

    def record_once_then_break(*args: Any, **kwargs: Any) -> None:
        nonlocal writes
        writes += 1
        if writes > 1:
            raise ConnectionError("the database went away")
        outcomes.record(*args, **kwargs)

    monkeypatch.setattr(batch, "record", record_once_then_break)
    with pytest.raises(ConnectionError):
        _judge_run(run)
    judged = run.verdicts.filter(state=JudgeVerdict.State.DONE).count()
    assert 0 < judged < run.verdicts.count()
    assert not run.verdicts.filter(state=JudgeVerdict.State.CLAIMED).exists()
    assert not JudgeSlot.objects.filter(judge=judge).exclude(holder="").exists()

    monkeypatch.setattr(batch, "record", outcomes.record)
    assert _judge_run(run) == {}
    assert run.verdicts.filter(state=JudgeVerdict.State.DONE).count() == run.verdicts.count()
    assert Rating.objects.filter(rater=judge.rater).count() == run.verdicts.count()


def test_a_retry_due_before_the_next_round_is_written_first_then_retried_not_lost(
    campaign: Campaign, make_judge: MakeJudge, local_llm: LocalLLM, sent: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = local_llm(fault_rate=1.0, faults=("rate_limit",), retry_after=0)
    run = services.start_run(campaign=campaign, judge=make_judge(base_url=url, max_attempts=3), limit=1)
    start, ticks = timezone.now(), itertools.count()
    monkeypatch.setattr(services, "now", lambda: start + timedelta(seconds=next(ticks)))  # a second per look
    later = _judge_run(run, max_wait=0.0)
    for _ in range(5):
        if not later:
            break
        later = _judge_run(run, max_wait=0.0)
    assert later == {}
    assert [(v.state, v.reason) for v in run.verdicts.all()] == [
        ("failed", "gave up after 3 attempts: 429 rate limited")
    ] * 2
    run.refresh_from_db()
    assert run.status == JudgeRun.Status.FAILED
