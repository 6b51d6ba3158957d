"""Judge configurations, judge runs and the judging of one verdict (writes and workflows).

Concurrency is the database's job: a verdict is claimed with a conditional UPDATE and a lease; the judge's
request rate and concurrency limits (judging.limits) are a token bucket row and leased slot rows shared by every
worker; results are written behind unique constraints. The network call happens between two short transactions,
never inside one.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from annotation.models import Campaign, Comparison, Rater, Rating, Verdict
from evalplatform.exceptions import Conflict, DomainError
from judging import fetch, limits, llm, prompts
from judging.models import JudgeConfig, JudgeRun, JudgeVerdict, LLMCall
from results.tasks import schedule_refresh

# A claim lasts the call timeout plus this margin (time to write the result); then another worker may take it.
LEASE_MARGIN_SECONDS = float(os.environ.get("JUDGING_LEASE_MARGIN_SECONDS", "10"))
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 60.0

_PENDING, _CLAIMED = JudgeVerdict.State.PENDING, JudgeVerdict.State.CLAIMED
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
)


@dataclass(frozen=True)
class NextStep:
    """What the task should do after one attempt: nothing, or run again after retry_in seconds."""

    retry_in: float | None = None


# --- judge configurations -------------------------------------------------------------------------------------


@transaction.atomic
def save_judge(*, name: str, **options: Any) -> tuple[JudgeConfig, bool]:
    """Create the judge (and its judge Rater) or update its settings; return it and whether it was created."""
    judge = JudgeConfig.objects.select_for_update().filter(name=name).first()
    if judge is not None:
        return update_judge(judge=judge, **options), False
    if Rater.objects.filter(name=name).exclude(kind=Rater.Kind.JUDGE).exists():
        raise Conflict(f"name: a human rater is already called {name!r}", field="name")
    _check_option_names(options)
    judge = JudgeConfig(name=name, **options)
    check_judge(judge)
    judge.rater, _ = Rater.objects.get_or_create(name=name, kind=Rater.Kind.JUDGE)
    judge.save()
    limits.ensure_limits(judge, current=now())
    return judge, True


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


def _check_option_names(options: dict[str, Any]) -> None:
    unknown = set(options) - set(JUDGE_FIELDS)
    if unknown:
        raise DomainError(f"unknown judge setting(s): {', '.join(sorted(unknown))}")


def check_judge(judge: JudgeConfig) -> None:
    """Raise DomainError naming the field when the judge's settings cannot work."""
    problems: list[tuple[str, str]] = []
    if not judge.name.strip():
        problems.append(("name", "must not be empty"))
    if not judge.base_url.startswith(("http://", "https://")):
        problems.append(("base_url", f"must be an http(s) URL, not {judge.base_url!r}"))
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
    if judge.verdict_format == JudgeConfig.VerdictFormat.PATTERN:
        try:
            prompts.check_verdict_pattern(judge.verdict_pattern)
        except ValueError as exc:
            problems.append(("verdict_pattern", str(exc).split(": ", 1)[1]))
    return problems


def prompt_spec_for(judge: JudgeConfig) -> prompts.PromptSpec:
    """Return the template and verdict reading of a judge."""
    return prompts.prompt_spec(
        template=judge.template,
        system_prompt=judge.system_prompt,
        custom_template=judge.custom_template,
        verdict_format=judge.verdict_format,
        verdict_pattern=judge.verdict_pattern,
    )


# --- runs ------------------------------------------------------------------------------------------------------


@transaction.atomic
def start_run(
    *, campaign: Campaign, judge: JudgeConfig, limit: int | None = None, requested_by: User | None = None
) -> JudgeRun:
    """Create a run over the campaign's comparisons (the first `limit` in sampling order) and enqueue its work.

    Verdicts already judged by this judge are kept, not paid for again; pending and failed ones join this run.
    """
    comparisons = check_run(campaign=campaign, judge=judge, limit=limit)
    run = JudgeRun.objects.create(
        campaign=campaign,
        judge=judge,
        limit=limit,
        requested_by=requested_by,
        status=JudgeRun.Status.RUNNING,
        started_at=now(),
    )
    JudgeVerdict.objects.bulk_create(
        [
            JudgeVerdict(judge=judge, comparison=c, order=order, run=run)
            for c in comparisons
            for order in orders_for(judge, c)
        ],
        ignore_conflicts=True,
        batch_size=2000,
    )
    unfinished = JudgeVerdict.objects.filter(judge=judge, comparison__in=comparisons).filter(
        Q(state=JudgeVerdict.State.PENDING) | Q(state=JudgeVerdict.State.FAILED)
    )
    earlier_runs = set(unfinished.exclude(run=run).values_list("run_id", flat=True).distinct()) - {None}
    unfinished.update(run=run, state=JudgeVerdict.State.PENDING, attempts=0, retry_at=None)
    _enqueue_pending_on_commit(run)
    for run_id in [run.pk, *earlier_runs]:  # an earlier run whose last work moved here has ended
        _finish_run_on_commit(run_id)
    return run


def _finish_run_on_commit(run_id: int) -> None:
    transaction.on_commit(lambda: finish_run_if_done(run_id=run_id))


def check_run(*, campaign: Campaign, judge: JudgeConfig, limit: int | None = None) -> list[Comparison]:
    """Return the comparisons a run would judge; raise DomainError when it cannot run."""
    if limit is not None and limit < 1:
        raise DomainError("limit: must be at least 1", field="limit")
    selected = campaign.comparisons.order_by("random_key", "id")
    comparisons = list(selected[:limit] if limit else selected)
    if not comparisons:
        raise DomainError(f"campaign: {campaign.slug!r} has no comparisons to judge", field="campaign")
    _check_references(judge, comparisons)
    return comparisons


def orders_for(judge: JudgeConfig, comparison: Comparison) -> list[str]:
    """Return the orders to judge: both, or one drawn from the comparison's random key."""
    if judge.both_orders:
        return [JudgeVerdict.Order.AB, JudgeVerdict.Order.BA]
    return [JudgeVerdict.Order.AB if comparison.random_key < 0.5 else JudgeVerdict.Order.BA]


def _check_references(judge: JudgeConfig, comparisons: list[Comparison]) -> None:
    if not prompt_spec_for(judge).needs_reference:
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
    if not updated:
        raise Conflict(f"run #{run.pk} is {run.get_status_display().lower()}, not running")
    run.refresh_from_db()
    return run


@transaction.atomic
def resume_run(*, run: JudgeRun, retry_failed: bool = False) -> JudgeRun:
    """Run again: release expired claims (a worker died), optionally retry failures, and re-enqueue pending work.

    Verdicts still under a live claim are enqueued for when the claim expires: if their worker died, nothing
    else would ever pick them up; if it lives, the late task finds them done and does nothing.
    """
    current = now()
    JudgeVerdict.objects.filter(run=run, state=JudgeVerdict.State.CLAIMED, claimed_until__lt=current).update(
        state=JudgeVerdict.State.PENDING, claimed_by="", claimed_until=None
    )
    live = JudgeVerdict.objects.filter(run=run, state=JudgeVerdict.State.CLAIMED, claimed_until__isnull=False)
    for verdict_id, until in live.values_list("pk", "claimed_until"):
        assert until is not None
        _enqueue_on_commit(verdict_id, countdown=(until - current).total_seconds() + 0.5)
    if retry_failed:
        JudgeVerdict.objects.filter(run=run, state=JudgeVerdict.State.FAILED).update(
            state=JudgeVerdict.State.PENDING, attempts=0, retry_at=None
        )
    JudgeRun.objects.filter(pk=run.pk).update(status=JudgeRun.Status.RUNNING, finished_at=None, error="")
    _enqueue_pending_on_commit(run)
    transaction.on_commit(lambda: finish_run_if_done(run_id=run.pk))
    run.refresh_from_db()
    return run


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


def _enqueue_on_commit(verdict_id: int, *, countdown: float) -> None:
    transaction.on_commit(lambda: enqueue_verdicts([verdict_id], countdown=countdown))


def enqueue_verdicts(verdict_ids: Iterable[int], *, countdown: float | None = None) -> None:
    """Send one judging task per verdict over a single broker connection."""
    from judging.tasks import judge_verdict  # the tasks module imports this one

    with judge_verdict.app.producer_or_acquire() as producer:
        for verdict_id in verdict_ids:
            judge_verdict.apply_async((verdict_id,), countdown=countdown, producer=producer)


# --- judging one verdict -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Call:
    spec: prompts.PromptSpec
    request: llm.ChatRequest
    request_hash: str


def judge_verdict(*, verdict_id: int, worker: str) -> NextStep:
    """Claim one verdict, ask the judge (or the call cache), and record the rating or the failure."""
    verdict = fetch.load_verdict(verdict_id)
    if verdict is None or not _workable(verdict):
        return NextStep()
    if verdict.retry_at and verdict.retry_at > now():
        return NextStep(retry_in=(verdict.retry_at - now()).total_seconds())
    call = build_call(verdict)
    cached = fetch.cached_call(call.request_hash)
    claim = claim_verdict(verdict=verdict, worker=worker, request_hash=call.request_hash, limited=cached is None)
    if isinstance(claim, float):
        return NextStep(retry_in=claim)
    if claim is None:
        return NextStep()
    if cached is not None:
        result = llm.ChatResult(
            cached.text, cached.finish_reason, cached.tokens_in, cached.tokens_out, cached.latency_ms, cached.response
        )
        return _finish(verdict, claim, call, result, cached=True)
    try:
        result = llm.complete(
            call.request, api_key_env=verdict.judge.api_key_env, timeout=verdict.judge.timeout_seconds
        )
    except llm.LLMError as exc:
        return _call_failed(verdict, claim, exc)
    finally:
        limits.release_slot(verdict.judge_id, holder=claim)
    return _finish(verdict, claim, call, result, cached=False)


def _call_failed(verdict: JudgeVerdict, token: str, error: llm.LLMError) -> NextStep:
    if isinstance(error, llm.TransientLLMError):
        return release_for_retry(verdict=verdict, token=token, reason=error.reason, retry_after=error.retry_after)
    fail_verdict(verdict=verdict, token=token, reason=error.reason)
    if verdict.run_id:
        finish_run_if_done(run_id=verdict.run_id)
    return NextStep()


def _workable(verdict: JudgeVerdict) -> bool:
    if verdict.run is None or verdict.run.status != JudgeRun.Status.RUNNING:
        return False
    if verdict.state == JudgeVerdict.State.PENDING:
        return True
    return verdict.state == JudgeVerdict.State.CLAIMED and bool(verdict.claimed_until and verdict.claimed_until < now())


def _finish(verdict: JudgeVerdict, token: str, call: _Call, result: llm.ChatResult, *, cached: bool) -> NextStep:
    try:
        record_result(verdict=verdict, token=token, call=call, result=result, cached=cached)
    except IntegrityError:
        # The judge's rater already has a rating in this order (e.g. one imported under the same rater name).
        fail_verdict(verdict=verdict, token=token, reason="this rater already rated the comparison in this order")
    if verdict.run_id:
        finish_run_if_done(run_id=verdict.run_id)
    return NextStep()


def build_call(verdict: JudgeVerdict) -> _Call:
    """Return the chat request for a verdict: its judge's template over the comparison in the verdict's order."""
    judge, comparison = verdict.judge, verdict.comparison
    first, second = _in_order(verdict)
    spec = prompt_spec_for(judge)
    messages = prompts.render_messages(
        spec,
        question=comparison.prompt.text,
        answer_a=first.text,
        answer_b=second.text,
        reference=comparison.prompt.reference_answer,
    )
    request = llm.ChatRequest(
        base_url=judge.base_url,
        model=judge.model,
        messages=tuple((m["role"], m["content"]) for m in messages),
        temperature=judge.temperature,
        max_tokens=judge.max_tokens,
        response_format=prompts.response_format(spec),
    )
    return _Call(spec, request, request.sha256())


def _in_order(verdict: JudgeVerdict) -> tuple[Any, Any]:
    comparison = verdict.comparison
    if verdict.order == JudgeVerdict.Order.AB:
        return comparison.output_a, comparison.output_b
    return comparison.output_b, comparison.output_a


def claim_verdict(*, verdict: JudgeVerdict, worker: str, request_hash: str, limited: bool) -> str | float | None:
    """Claim the verdict for one call; return the claim token, seconds to wait for the judge's limits, or None.

    None means there is nothing to do: the verdict is done, claimed by a live worker, or its run is not running.
    `limited` is False for answers from the call cache, which take no slot and no request from the bucket.
    """
    judge = verdict.judge
    current = now()
    token = f"{worker[:60]}:{uuid.uuid4().hex[:16]}"
    until = current + timedelta(seconds=judge.timeout_seconds + LEASE_MARGIN_SECONDS)
    if not limited:
        claimed = (
            JudgeVerdict.objects.filter(pk=verdict.pk, run__status=JudgeRun.Status.RUNNING)
            .filter(Q(state=_PENDING) | Q(state=_CLAIMED, claimed_until__lt=current))
            .update(state=_CLAIMED, claimed_by=token, claimed_until=until, attempts=F("attempts") + 1,
                    request_hash=request_hash, retry_at=None)
        )  # fmt: skip
        return _claimed(verdict, token) if claimed else None
    attempt = limits.claim_under_limits(
        judge, verdict_id=verdict.pk, holder=token, until=until, current=current, request_hash=request_hash
    )
    if attempt.claimed:
        return _claimed(verdict, token)
    if not attempt.slot:
        return limits.busy_wait(judge, current=current)
    limits.release_slot(judge.pk, holder=token)
    if not attempt.token:
        return limits.token_wait(judge, current=current)
    limits.refund_token(judge.pk)
    return None


def _claimed(verdict: JudgeVerdict, token: str) -> str:
    verdict.attempts += 1
    return token


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """Return the wait before attempt+1: exponential with equal jitter, at least Retry-After, capped."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** max(0, attempt - 1))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, BACKOFF_CAP_SECONDS))
    return delay


def release_for_retry(*, verdict: JudgeVerdict, token: str, reason: str, retry_after: float | None) -> NextStep:
    """Give back a claim after a transient error, to be retried after a backoff; fail it once attempts run out."""
    if verdict.attempts >= verdict.judge.max_attempts:
        fail_verdict(verdict=verdict, token=token, reason=f"gave up after {verdict.attempts} attempts: {reason}")
        if verdict.run_id:
            finish_run_if_done(run_id=verdict.run_id)
        return NextStep()
    delay = backoff_seconds(verdict.attempts, retry_after)
    JudgeVerdict.objects.filter(pk=verdict.pk, state=JudgeVerdict.State.CLAIMED, claimed_by=token).update(
        state=JudgeVerdict.State.PENDING,
        claimed_by="",
        claimed_until=None,
        retry_at=now() + timedelta(seconds=delay),
        reason=f"attempt {verdict.attempts}: {reason}",
    )
    return NextStep(retry_in=delay)


def fail_verdict(*, verdict: JudgeVerdict, token: str, reason: str) -> bool:
    """Mark a claimed verdict failed for good, with the reason; return whether the claim was still ours."""
    return bool(
        JudgeVerdict.objects.filter(pk=verdict.pk, state=JudgeVerdict.State.CLAIMED, claimed_by=token).update(
            state=JudgeVerdict.State.FAILED, claimed_by="", claimed_until=None, reason=reason, finished_at=now()
        )
    )


@transaction.atomic
def record_result(*, verdict: JudgeVerdict, token: str, call: _Call, result: llm.ChatResult, cached: bool) -> bool:
    """Store the reply, and the rating when it parses; return False (storing nothing) when the claim was lost."""
    if not cached:
        LLMCall.objects.bulk_create([_llm_call(call, result)], ignore_conflicts=True)
    fields: dict[str, Any] = {"parsed": None, "rating": None}
    try:
        parsed = prompts.parse_verdict(call.spec, result.text, finish_reason=result.finish_reason)
    except prompts.VerdictParseError as exc:
        fields.update(state=JudgeVerdict.State.PARSE_FAILED, reason=str(exc))
    else:
        # A worker whose claim expired may get here too: the unique constraint on ratings makes it wait for the
        # current holder's transaction, and the conditional update below rolls the loser back.
        rating = _rating_for(verdict, parsed, result)
        fields.update(state=JudgeVerdict.State.DONE, reason="", parsed=parsed.as_json(), rating=rating)
    updated = JudgeVerdict.objects.filter(pk=verdict.pk, state=_CLAIMED, claimed_by=token).update(
        raw_response=result.text,
        tokens_in=result.tokens_in,
        tokens_out=result.tokens_out,
        latency_ms=result.latency_ms,
        cost=Decimal(0) if cached else call_cost(verdict.judge, result.tokens_in, result.tokens_out),
        cached=cached,
        claimed_by="",
        claimed_until=None,
        finished_at=now(),
        **fields,
    )
    if not updated:
        transaction.set_rollback(True)
    elif fields["rating"] is not None:
        campaign_id = Comparison.objects.filter(pk=verdict.comparison_id).values_list("campaign_id", flat=True).get()
        schedule_refresh(campaign_id)
    return bool(updated)


def _llm_call(call: _Call, result: llm.ChatResult) -> LLMCall:
    return LLMCall(
        request_hash=call.request_hash,
        model=call.request.model,
        request=call.request.payload(),
        response=result.raw,
        text=result.text,
        finish_reason=result.finish_reason,
        tokens_in=result.tokens_in,
        tokens_out=result.tokens_out,
        latency_ms=result.latency_ms,
    )


def call_cost(judge: JudgeConfig, tokens_in: int, tokens_out: int) -> Decimal:
    """Return the price of a call from the judge's prices per million tokens."""
    cost = (tokens_in * judge.price_input_per_million + tokens_out * judge.price_output_per_million) / 1_000_000
    return cost.quantize(Decimal("0.000001"))


def _rating_for(verdict: JudgeVerdict, parsed: prompts.ParsedVerdict, result: llm.ChatResult) -> Rating:
    first, second = _in_order(verdict)
    winner = {"A": first, "B": second}.get(parsed.outcome)
    outcome_verdict = {"A": Verdict.WIN, "B": Verdict.WIN, "tie": Verdict.TIE, "both_bad": Verdict.BOTH_BAD}
    return Rating.objects.create(
        comparison_id=verdict.comparison_id,
        rater_id=verdict.judge.rater_id,
        rater_kind=Rater.Kind.JUDGE,
        source=Rating.Source.JUDGE,
        verdict=outcome_verdict[parsed.outcome],
        winner=winner,
        left_output=first,
        strength=parsed.strength,
        rationale=result.text[:4000],
        time_ms=result.latency_ms,
        metadata={"judge_verdict": verdict.pk, "run": verdict.run_id, "order": verdict.order, "label": parsed.label},
        created_at=now(),
    )
