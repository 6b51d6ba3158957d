"""Judge configurations, judge runs and the judging of verdicts (writes and workflows).

Concurrency is the database's job: verdicts are claimed with a conditional UPDATE and a lease; the judge's
request rate and concurrency limits (judging.limits) are a token bucket row and leased slot rows shared by every
worker; results are written behind unique constraints. Verdicts are judged in batches (judging.batch): network
calls happen between short transactions, never inside one.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from annotation.models import Campaign, Comparison, Rater
from evalplatform.exceptions import Conflict, DomainError
from judging import batch, fetch, limits, policy, prompts, versions
from judging.access import check_may_use_judge
from judging.models import JudgeConfig, JudgeRun, JudgeVerdict

# A claim lasts its calls' timeouts plus this margin (time to write the result); then another worker may take it.
LEASE_MARGIN_SECONDS = float(os.environ.get("JUDGING_LEASE_MARGIN_SECONDS", "10"))
ORDERS_BOTH, ORDERS_ONE = "both", "one"
ORDERS = (ORDERS_BOTH, ORDERS_ONE)  # what a run may ask for instead of the judge's both_orders setting
BATCH_SIZE = 200  # verdicts per judging task: enough to keep a window of calls busy, and few broker messages
# Injectable clock (tests move time); the database stores what this returns.
now: Callable[[], datetime] = timezone.now

JUDGE_FIELDS = (
    "base_url",
    "model",
    "api_key_env",
    "template",
    "system_prompt",
    "custom_template",
    "verdict_format",
    "verdict_pattern",
    "temperature",
    "max_tokens",
    "both_orders",
    "max_concurrency",
    "requests_per_minute",
    "timeout_seconds",
    "max_attempts",
    "price_input_per_million",
    "price_output_per_million",
    "family",
)


@dataclass(frozen=True)
class NextStep:
    """What the task should do after one attempt: nothing, or run again after retry_in seconds."""

    retry_in: float | None = None


# --- judge configurations -------------------------------------------------------------------------------------


@transaction.atomic
def save_judge(*, name: str, **options: Any) -> tuple[JudgeConfig, bool]:
    """Create the judge (and its judge Rater) or update its settings; return it and whether it was created.

    The operator's upsert (add_judge): a new judge has no owner, so every researcher may use it.
    """
    judge = JudgeConfig.objects.select_for_update().filter(name=name).first()
    if judge is not None:
        return update_judge(judge=judge, **options), False
    return create_judge(name=name, **options), True


@transaction.atomic
def create_judge(*, name: str, owner: User | None = None, **options: Any) -> JudgeConfig:
    """Create a judge owned by `owner` (None: the operator's), with its judge Rater and rate limiter."""
    if JudgeConfig.objects.filter(name=name).exists():
        raise Conflict(f"name: a judge is already called {name!r}", field="name")
    if Rater.objects.filter(name=name).exclude(kind=Rater.Kind.JUDGE).exists():
        raise Conflict(f"name: a human rater is already called {name!r}", field="name")
    _check_option_names(options)
    judge = JudgeConfig(name=name, owner=owner, **options)
    check_judge(judge)
    judge.rater, _ = Rater.objects.get_or_create(name=name, kind=Rater.Kind.JUDGE)
    judge.save()
    limits.ensure_limits(judge, current=now())
    return judge


@transaction.atomic
def update_judge(*, judge: JudgeConfig, name: str | None = None, **options: Any) -> JudgeConfig:
    """Change a judge's settings, and its name together with its rater's."""
    _check_option_names(options)
    for key, value in options.items():
        setattr(judge, key, value)
    if name is not None and name != judge.name:
        if Rater.objects.filter(name=name).exclude(pk=judge.rater_id).exists():
            raise Conflict(f"name: a rater is already called {name!r}", field="name")
        judge.name = judge.rater.name = name
        judge.rater.save(update_fields=["name"])
    check_judge(judge)
    judge.save()
    limits.ensure_limits(judge, current=now())
    return judge


@transaction.atomic
def set_judge_owner(*, judge: JudgeConfig, owner: User | None) -> JudgeConfig:
    """Give the judge to another owner (None: make it an operator's judge, usable by every researcher)."""
    judge.owner = owner
    judge.save(update_fields=["owner", "updated_at"])
    return judge


def _check_option_names(options: dict[str, Any]) -> None:
    unknown = set(options) - set(JUDGE_FIELDS)
    if unknown:
        raise DomainError(f"unknown judge setting(s): {', '.join(sorted(unknown))}")


def check_judge(judge: JudgeConfig) -> None:
    """Raise DomainError naming the field when the judge's settings cannot work or the operator's rules refuse them.

    The endpoint must be allowed (resolving its host: every address must be allowed) and the key variable too.
    """
    problems: list[tuple[str, str]] = []
    if not judge.name.strip():
        problems.append(("name", "must not be empty"))
    for check in (
        lambda: policy.check_endpoint(judge.base_url),
        lambda: policy.check_key_env(judge.api_key_env, judge.base_url),
    ):
        try:
            check()
        except policy.PolicyError as exc:
            problems.append((exc.field, exc.message))
    if not judge.model.strip():
        problems.append(("model", "must not be empty"))
    if judge.template not in JudgeConfig.Template.values:
        problems.append(("template", f"must be one of {', '.join(JudgeConfig.Template.values)}"))
    if not 0 <= judge.temperature <= 2:
        problems.append(("temperature", "must be between 0 and 2"))
    for field in ("max_tokens", "max_concurrency", "requests_per_minute", "max_attempts"):
        if getattr(judge, field) < 1:
            problems.append((field, "must be at least 1"))
    if judge.timeout_seconds <= 0:
        problems.append(("timeout_seconds", "must be positive"))
    if judge.template == JudgeConfig.Template.CUSTOM:
        problems += _custom_template_problems(judge)
    if problems:
        raise DomainError("; ".join(f"{f}: {m}" for f, m in problems), field=problems[0][0])


def _custom_template_problems(judge: JudgeConfig) -> list[tuple[str, str]]:
    problems = []
    try:
        prompts.check_custom_template(judge.custom_template)
    except ValueError as exc:
        problems.append(("custom_template", str(exc).split(": ", 1)[1]))
    if judge.verdict_format == JudgeConfig.VerdictFormat.PATTERN or (
        judge.verdict_format == JudgeConfig.VerdictFormat.PROBABILITY and judge.verdict_pattern
    ):
        try:
            prompts.check_verdict_pattern(judge.verdict_pattern)
        except ValueError as exc:
            problems.append(("verdict_pattern", str(exc).split(": ", 1)[1]))
    return problems


# --- runs ------------------------------------------------------------------------------------------------------


@transaction.atomic
def start_run(
    *,
    campaign: Campaign,
    judge: JudgeConfig,
    limit: int | None = None,
    orders: str | None = None,
    requested_by: User | None = None,
    seed: int | None = None,
    repeat: bool = False,
) -> JudgeRun:
    """Create a run over the campaign's comparisons (the first `limit` in sampling order) and enqueue its work.

    `seed` is sent with each request when given. `repeat` makes a stability repeat (judging.versions, the judge
    report): the judge's next repeat number, every verdict judged again bypassing the call cache, none a rating.

    `orders` is "both" (each comparison with each output shown first), "one" (one order per comparison, drawn from
    its random key) or None for the judge's own setting. Verdicts already judged by this judge are kept, not paid
    for again; pending and failed ones join this run. The run records the judge's endpoint (base_url, model,
    api_key_env): its verdicts fail rather than call another one if the judge is edited meanwhile. A judge that
    `requested_by` may not use (another team's) is refused; None is the operator, who may use any.
    """
    comparisons = check_run(campaign=campaign, judge=judge, limit=limit, orders=orders, user=requested_by)
    both = judge.both_orders if orders is None else orders == ORDERS_BOTH
    if seed is not None and not -(2**63) <= seed < 2**63:
        raise DomainError("seed: must fit in 64 bits", field="seed")
    number = next_repeat(judge) if repeat else 0
    run = JudgeRun.objects.create(
        campaign=campaign,
        judge=judge,
        limit=limit,
        requested_by=requested_by,
        base_url=judge.base_url,
        model=judge.model,
        api_key_env=judge.api_key_env,
        status=JudgeRun.Status.RUNNING,
        started_at=now(),
        config_version=versions.config_version(judge),
        temperature=judge.temperature,
        seed=seed,
        repeat=number,
    )
    JudgeVerdict.objects.bulk_create(
        [
            JudgeVerdict(judge=judge, comparison=c, order=order, run=run, repeat=number)
            for c in comparisons
            for order in orders_for(judge, c, both=both)
        ],
        ignore_conflicts=True,
        batch_size=2000,
    )
    if number:  # a repeat's verdicts are all new, and all its own
        _enqueue_pending_on_commit(run)
        _finish_run_on_commit(run.pk)
        return run
    unfinished = JudgeVerdict.objects.filter(judge=judge, comparison__in=comparisons, repeat=0).filter(
        Q(state=JudgeVerdict.State.PENDING) | Q(state=JudgeVerdict.State.FAILED)
    )
    earlier_runs = set(unfinished.exclude(run=run).values_list("run_id", flat=True).distinct()) - {None}
    unfinished.update(run=run, state=JudgeVerdict.State.PENDING, attempts=0, retry_at=None)
    _enqueue_pending_on_commit(run)
    for run_id in [run.pk, *earlier_runs]:  # an earlier run whose last work moved here has ended
        _finish_run_on_commit(run_id)
    return run


def next_repeat(judge: JudgeConfig) -> int:
    """Return the judge's next stability repeat number, holding the judge's row so two repeats never share one."""
    JudgeConfig.objects.select_for_update().filter(pk=judge.pk).first()
    last = JudgeRun.objects.filter(judge=judge).aggregate(last=Max("repeat"))["last"]
    return int(last or 0) + 1


def _finish_run_on_commit(run_id: int) -> None:
    transaction.on_commit(lambda: finish_run_if_done(run_id=run_id))


def check_run(
    *, campaign: Campaign, judge: JudgeConfig, limit: int | None = None, orders: str | None = None,
    user: User | None = None,
) -> list[Comparison]:  # fmt: skip
    """Return the comparisons a run would judge; raise DomainError when it cannot run (or `user` may not use the
    judge)."""
    check_may_use_judge(user=user, judge=judge)
    if limit is not None and limit < 1:
        raise DomainError("limit: must be at least 1", field="limit")
    if orders is not None and orders not in ORDERS:
        raise DomainError(f"orders: must be one of {', '.join(ORDERS)}, not {orders!r}", field="orders")
    selected = campaign.comparisons.order_by("random_key", "id")
    comparisons = list(selected[:limit] if limit else selected)
    if not comparisons:
        raise DomainError(f"campaign: {campaign.slug!r} has no comparisons to judge", field="campaign")
    _check_references(judge, comparisons)
    return comparisons


def orders_for(judge: JudgeConfig, comparison: Comparison, *, both: bool | None = None) -> list[str]:
    """Return the orders to judge: both, or one drawn from the comparison's random key (default: the judge's)."""
    if judge.both_orders if both is None else both:
        return [JudgeVerdict.Order.AB, JudgeVerdict.Order.BA]
    return [JudgeVerdict.Order.AB if comparison.random_key < 0.5 else JudgeVerdict.Order.BA]


def _check_references(judge: JudgeConfig, comparisons: list[Comparison]) -> None:
    if not batch.prompt_spec_for(judge).needs_reference:
        return
    missing = Comparison.objects.filter(pk__in=[c.pk for c in comparisons], prompt__reference_answer="").count()
    if missing:
        raise DomainError(
            f"template: {judge.template} needs reference answers, and {missing} of the selected comparisons' "
            "prompts have none",
            field="template",
        )


@transaction.atomic
def cancel_run(*, run: JudgeRun) -> JudgeRun:
    """Stop a queued or running run: its pending verdicts stay pending, calls in flight finish."""
    updated = JudgeRun.objects.filter(pk=run.pk, status__in=[JudgeRun.Status.QUEUED, JudgeRun.Status.RUNNING]).update(
        status=JudgeRun.Status.CANCELLED, finished_at=now()
    )
    run.refresh_from_db()
    if not updated:
        raise Conflict(f"run #{run.pk} is {run.get_status_display().lower()}, not running")
    return run


@transaction.atomic
def resume_run(*, run: JudgeRun, retry_failed: bool = False) -> JudgeRun:
    """Run again: release expired claims (a worker died), optionally retry failures, and re-enqueue pending work.

    Verdicts still under a live claim are enqueued for when the claim expires: if their worker died, nothing
    else would ever pick them up; if it lives, the late task finds them done and does nothing. Any run with work
    left may be resumed, a running one too (that is how a run whose worker died goes on); Conflict when there is
    nothing left to judge.
    """
    locked = JudgeRun.objects.select_for_update().get(pk=run.pk)  # one resume or cancel of a run at a time
    check_resumable(run=locked, retry_failed=retry_failed)
    current = now()
    JudgeVerdict.objects.filter(run=run, state=JudgeVerdict.State.CLAIMED, claimed_until__lt=current).update(
        state=JudgeVerdict.State.PENDING, claimed_by="", claimed_until=None
    )
    live = dict(
        JudgeVerdict.objects.filter(run=run, state=JudgeVerdict.State.CLAIMED, claimed_until__isnull=False).values_list(
            "pk", "claimed_until"
        )
    )
    if live:  # one task for them all (usually a dead worker's batch), due when the last lease ends
        last = max(until for until in live.values() if until is not None)
        _enqueue_on_commit(list(live), countdown=(last - current).total_seconds() + 0.5)
    if retry_failed:
        JudgeVerdict.objects.filter(run=run, state=JudgeVerdict.State.FAILED).update(
            state=JudgeVerdict.State.PENDING, attempts=0, retry_at=None
        )
    JudgeRun.objects.filter(pk=run.pk).update(status=JudgeRun.Status.RUNNING, finished_at=None, error="")
    _enqueue_pending_on_commit(run)
    transaction.on_commit(lambda: finish_run_if_done(run_id=run.pk))
    run.refresh_from_db()
    return run


def check_resumable(*, run: JudgeRun, retry_failed: bool = False) -> None:
    """Raise Conflict when resuming would do nothing: no pending or claimed verdict (nor failed, to retry), or the
    judge's endpoint changed since the run started (its verdicts would only fail)."""
    judge = JudgeConfig.objects.get(pk=run.judge_id)
    if run.base_url and (run.base_url, run.model, run.api_key_env) != (judge.base_url, judge.model, judge.api_key_env):
        raise Conflict(
            f"run #{run.pk} cannot go on: judge {judge.name}'s endpoint changed since it started (was {run.model} at "
            f"{run.base_url}, now {judge.model} at {judge.base_url}); start a new run"
        )
    states = [JudgeVerdict.State.PENDING, JudgeVerdict.State.CLAIMED]
    if retry_failed:
        states.append(JudgeVerdict.State.FAILED)
    if JudgeVerdict.objects.filter(run=run, state__in=states).exists():
        return
    failed = 0 if retry_failed else JudgeVerdict.objects.filter(run=run, state=JudgeVerdict.State.FAILED).count()
    hint = f"; retrying failures would retry its {failed} failed verdict(s)" if failed else ""
    raise Conflict(f"run #{run.pk} is {run.get_status_display().lower()} and has nothing left to judge{hint}")


def finish_run_if_done(*, run_id: int) -> bool:
    """Mark a running run completed (or failed, when nothing was judged) once no work is left; return whether."""
    if fetch.work_left(run_id):
        return False
    verdicts = JudgeVerdict.objects.filter(run_id=run_id)
    judged = verdicts.filter(state__in=[JudgeVerdict.State.DONE, JudgeVerdict.State.PARSE_FAILED]).exists()
    status, error = JudgeRun.Status.COMPLETED, ""
    if not judged and verdicts.exists():
        first = verdicts.filter(state=JudgeVerdict.State.FAILED).values_list("reason", flat=True).first()
        status, error = JudgeRun.Status.FAILED, f"every call failed; first reason: {first}"
    return bool(
        JudgeRun.objects.filter(pk=run_id, status=JudgeRun.Status.RUNNING).update(
            status=status, error=error, finished_at=now()
        )
    )


def _enqueue_pending_on_commit(run: JudgeRun) -> None:
    def send() -> None:
        ids = list(JudgeVerdict.objects.filter(run=run, state=JudgeVerdict.State.PENDING).values_list("pk", flat=True))
        enqueue_verdicts(ids)

    transaction.on_commit(send)


def _enqueue_on_commit(verdict_ids: list[int], *, countdown: float) -> None:
    transaction.on_commit(lambda: enqueue_verdicts(verdict_ids, countdown=countdown))


def enqueue_verdicts(verdict_ids: Iterable[int], *, countdown: float | None = None) -> None:
    """Send the verdicts in batches of BATCH_SIZE, one judging task each, over a single broker connection."""
    from judging.tasks import judge_verdicts  # the tasks module imports this one

    ids = list(verdict_ids)
    with judge_verdicts.app.producer_or_acquire() as producer:
        for start in range(0, len(ids), BATCH_SIZE):
            judge_verdicts.apply_async((ids[start : start + BATCH_SIZE],), countdown=countdown, producer=producer)


def enqueue_later(waits: dict[int, float]) -> None:
    """Send verdicts back to the broker, due after their waits: one task per span of waits a batch sleeps out."""
    spans: dict[int, list[tuple[float, int]]] = {}
    for verdict_id, wait in waits.items():
        spans.setdefault(math.ceil(wait / batch.BACKOFF_SLEEP_SECONDS), []).append((wait, verdict_id))
    for span in spans.values():
        enqueue_verdicts([verdict_id for _, verdict_id in span], countdown=min(span)[0])


# --- judging verdicts --------------------------------------------------------------------------------------------


def judge_verdicts(*, verdict_ids: list[int], worker: str, max_wait: float) -> dict[int, float]:
    """Judge a batch of verdicts; return those to try again later, with the seconds to wait.

    Those are verdicts backing off after a transient error, and verdicts held up by the judge's limits for more
    than max_wait seconds. Verdicts that are done, claimed by a live worker or in a run that is not running are
    left alone.
    """
    result = batch.judge(verdict_ids, worker=worker, clock=now, lease_margin=LEASE_MARGIN_SECONDS, max_wait=max_wait)
    for run_id in sorted(result.run_ids):
        finish_run_if_done(run_id=run_id)
    return result.later


def judge_verdict(*, verdict_id: int, worker: str) -> NextStep:
    """Make one attempt at a verdict (or answer it from the call cache); say when to try again, if ever."""
    later = judge_verdicts(verdict_ids=[verdict_id], worker=worker, max_wait=0.0)
    return NextStep(retry_in=later.get(verdict_id))


def claim_verdict(*, verdict: JudgeVerdict, worker: str, request_hash: str, limited: bool) -> str | float | None:
    """Claim the verdict for one call; return the claim token, seconds to wait for the judge's limits, or None.

    None means there is nothing to do: the verdict is done, claimed by a live worker, or its run is not running.
    A limited claim holds one of the judge's slots under the token (limits.release_slots gives it back) and takes a
    request from the bucket; an unlimited one (for answers from the call cache) takes neither.
    """
    judge = verdict.judge
    current = now()
    token = f"{worker[:60]}:{uuid.uuid4().hex[:16]}"
    until = current + timedelta(seconds=judge.timeout_seconds + LEASE_MARGIN_SECONDS)
    if limited and not limits.take_slots(judge, holder=token, n=1, until=until, current=current):
        return limits.busy_wait(judge, current=current)
    claimed = limits.claim_verdicts(
        judge, candidates=[(verdict.pk, request_hash)], holder=token, until=until, current=current, limited=limited
    )
    if verdict.pk in claimed.attempts:
        verdict.attempts = claimed.attempts[verdict.pk]
        return token
    if not limited:
        return None
    limits.release_slots(judge.pk, holder=token)
    if (claimed.requests_available or 0) < 1:
        return limits.token_wait(judge, current=current)
    return None


def fail_verdict(*, verdict: JudgeVerdict, token: str, reason: str) -> bool:
    """Mark a claimed verdict failed for good, with the reason; return whether the claim was still ours."""
    return bool(
        JudgeVerdict.objects.filter(pk=verdict.pk, state=JudgeVerdict.State.CLAIMED, claimed_by=token).update(
            state=JudgeVerdict.State.FAILED, claimed_by="", claimed_until=None, reason=reason, finished_at=now()
        )
    )
