"""Judging a batch of verdicts: claims under the judge's limits, calls through a CallPool, results written in bulk.

A Celery task judges one batch (judging.tasks). The batch keeps a window of concurrent calls open:

- it registers as a caller of its judge and leases up to its fair share of the judge's slots (judging.limits);
- it claims verdicts with one conditional UPDATE, one request from the judge's bucket each, enough to keep its
  slots busy plus a few queued behind them, so a finished call is replaced on the event loop at once rather than
  after a database round trip; verdicts whose identical request is stored are answered from it instead;
- it collects the calls that finished and writes their replies, ratings, retries and failures in one short
  transaction, each row guarded by the claim; transient failures come back after a backoff;
- it ends when nothing is left, or when what is left waits: after a backoff, or for the judge's limits longer
  than its caller allows; those verdicts are handed back with their waits (the task sends them to the broker).

No network call runs inside a transaction: the calls run on the event loop's thread, the database work on this one.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Q

from judging import fetch, limits, llm, policy, prompts
from judging.models import JudgeConfig, JudgeRun, JudgeVerdict, LLMCall
from judging.outcomes import Call, Failure, Outcome, Reply, Retry, Work, record

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 60.0
RETRY_AFTER_JITTER = 0.1  # a wait from Retry-After is stretched by up to this fraction (plus 10 ms)
BACKOFF_SLEEP_SECONDS = 0.5  # a batch left with only backoffs sleeps this long at most, else hands them back
CALL_IN_SECONDS = 0.5  # how often a batch renews its registration and slot leases, and learns its fair share
ALIVE_FOR = timedelta(seconds=3 * CALL_IN_SECONDS)  # a registration not renewed for this long is a dead batch's
QUEUED_PER_SLOT = 0.5  # claimed calls waiting on the event loop behind the running ones, per slot
# Once a call is back, wait this long for others before writing them and claiming more: each round costs two
# statements whatever its size, and the calls queued behind the running ones keep the slots busy meanwhile
# (a slot finishes about a quarter of a 200 ms call in this time; QUEUED_PER_SLOT covers twice that).
LINGER_SECONDS = 0.05

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class BatchResult:
    later: dict[int, float] = field(default_factory=dict)  # verdict id -> seconds to wait, for the broker
    run_ids: frozenset[int] = frozenset()  # runs whose verdicts were judged (they may have ended)


def judge(verdict_ids: list[int], *, worker: str, clock: Clock, lease_margin: float, max_wait: float) -> BatchResult:
    """Judge the verdicts; those left waiting (a backoff, or the judge's limits past max_wait) come back in `later`."""
    current = clock()
    works = [Work(v, build_call(v), v.retry_at) for v in fetch.load_verdicts(sorted(set(verdict_ids)))]
    works = [w for w in works if _workable(w.verdict, current)]
    works = _refuse_barred(works, current)
    by_judge: dict[int, list[Work]] = {}
    for work in works:
        by_judge.setdefault(work.verdict.judge_id, []).append(work)
    later: dict[int, float] = {}
    for judge_works in by_judge.values():
        window = Window(judge_works, worker=worker, clock=clock, lease_margin=lease_margin, max_wait=max_wait)
        later.update(window.run())
    return BatchResult(later, frozenset(w.verdict.run_id for w in works if w.verdict.run_id))


def _refuse_barred(works: list[Work], current: datetime) -> list[Work]:
    """Fail the verdicts (and their runs) whose call the operator's rules now refuse, or whose judge's endpoint
    changed since their run started; return the others."""
    problems: dict[int, str | None] = {}
    barred: dict[tuple[int | None, str], list[int]] = {}
    kept = []
    for work in works:
        verdict = work.verdict
        if verdict.judge_id not in problems:
            problems[verdict.judge_id] = call_problem(verdict.judge)
        reason = problems[verdict.judge_id]
        if reason is None and verdict.endpoint_changed():
            reason = endpoint_change(verdict)
        if reason is None:
            kept.append(work)
        else:
            barred.setdefault((verdict.run_id, reason), []).append(verdict.pk)
    for (run_id, reason), ids in barred.items():
        _fail_barred(run_id, ids, reason, current)
    return kept


def call_problem(judge: JudgeConfig) -> str | None:
    """Return why the operator's rules refuse a call by this judge now (endpoint, its addresses, key), or None."""
    try:
        policy.check_endpoint(judge.base_url, unresolvable_ok=True)
        policy.check_key_env(judge.api_key_env, judge.base_url)
    except policy.PolicyError as exc:
        return f"refused by the operator's rules: {exc}"
    return None


def endpoint_change(verdict: fetch.LoadedVerdict) -> str:
    """Return the reason a verdict fails when its judge's endpoint changed since its run started."""
    assert verdict.run_endpoint is not None
    base_url, model, key_env = verdict.run_endpoint
    judge = verdict.judge
    was = f"{model} at {base_url} (key {key_env or '-'})"
    now = f"{judge.model} at {judge.base_url} (key {judge.api_key_env or '-'})"
    return (
        f"judge {judge.name}'s endpoint changed since run #{verdict.run_id} started (was {was}, now {now}); not "
        "calling it: start a new run to use the judge as it is now"
    )


def _fail_barred(run_id: int | None, verdict_ids: list[int], reason: str, current: datetime) -> None:
    """Fail the verdicts and every pending verdict of their run, and the run, with the reason."""
    unclaimed = Q(state=JudgeVerdict.State.PENDING) | Q(state=JudgeVerdict.State.CLAIMED, claimed_until__lt=current)
    ours = Q(pk__in=verdict_ids) if run_id is None else Q(pk__in=verdict_ids) | Q(run_id=run_id)
    JudgeVerdict.objects.filter(unclaimed, ours).update(
        state=JudgeVerdict.State.FAILED, reason=reason, claimed_by="", claimed_until=None, finished_at=current
    )
    if run_id is not None:
        JudgeRun.objects.filter(pk=run_id, status=JudgeRun.Status.RUNNING).update(
            status=JudgeRun.Status.FAILED, error=reason, finished_at=current
        )


def _workable(verdict: fetch.LoadedVerdict, current: datetime) -> bool:
    if not verdict.is_running():
        return False
    if verdict.state == JudgeVerdict.State.PENDING:
        return True
    expired = bool(verdict.claimed_until and verdict.claimed_until < current)
    return verdict.state == JudgeVerdict.State.CLAIMED and expired


class Window:
    """The calls of one judge's verdicts in a batch: claimed, sent, collected and recorded as they finish."""

    def __init__(self, works: list[Work], *, worker: str, clock: Clock, lease_margin: float, max_wait: float) -> None:
        self.judge: JudgeConfig = works[0].verdict.judge
        self.waiting = works  # ours to claim once due
        self.sent: dict[int, Work] = {}  # claimed and handed to the pool, not yet collected
        self.holder = f"{worker[:60]}:{uuid.uuid4().hex[:16]}"
        self.clock = clock
        self.max_wait = max_wait
        timeout = self.judge.timeout_seconds
        # A claim covers its wait in the pool's queue (at most one call) and its own call, plus the margin.
        self.claim_lease = timedelta(seconds=2 * timeout + lease_margin)
        self.slot_lease = timedelta(seconds=timeout + lease_margin)
        # Stability repeats never read the cache: they exist to call the judge again.
        self.cached = fetch.cached_calls([w.call.request_hash for w in works if not w.verdict.repeat])
        self.pool: llm.CallPool | None = None
        self.held = self.share = self.target = self.limit = 0
        self.next_call_in = self.next_take = 0.0  # time.monotonic() deadlines

    def run(self) -> dict[int, float]:
        """Judge every verdict of the window; return those left to wait (after a backoff, or longer than max_wait
        for the judge's limits) with their waits."""
        outcomes: list[Outcome] = []
        try:
            while True:
                current = self.clock()
                due = [w for w in self.waiting if w.not_before is None or w.not_before <= current]
                outcomes += self._answer_from_cache(due, current)
                blocked = self._fill(due, current)
                if outcomes:  # written once the window is refilled: its new calls are under way meanwhile
                    record(outcomes, holder=self.holder, current=self.clock())
                    # Retries wait only once written: claimed before, they would still look claimed, not pending.
                    self.waiting += [o.work for o in outcomes if isinstance(o, Retry)]
                    outcomes = []
                if self.sent:
                    outcomes = self._collect(self._wake_in(current, blocked, bool(due)))
                    continue
                if not self.waiting:
                    return {}
                # Nothing in flight. Backoffs go back to the broker, which frees this thread for other batches
                # meanwhile, unless the first ends soon; a short wait for the judge's limits is spent here.
                pause = blocked if blocked is not None else min(self._wait_of(w, current) for w in self.waiting)
                if pause > (self.max_wait if blocked is not None else min(self.max_wait, BACKOFF_SLEEP_SECONDS)):
                    return {w.pk: max(blocked or 0.0, self._wait_of(w, current)) for w in self.waiting}
                time.sleep(pause)
        except BaseException:
            # Whatever broke, the verdicts claimed here may be claimed again at once (a late reply is dropped).
            with contextlib.suppress(Exception):
                limits.release_claims(holder=self.holder)
            raise
        finally:
            with contextlib.suppress(Exception):
                self._hang_up(self.clock())

    def _answer_from_cache(self, due: list[Work], current: datetime) -> list[Outcome]:
        hits = [w for w in due if w.call.request_hash in self.cached and not w.verdict.repeat]
        if not hits:
            return []
        claimed = limits.claim_verdicts(
            self.judge, candidates=[(w.pk, w.call.request_hash) for w in hits], holder=self.holder,
            until=current + self.claim_lease, current=current, limited=False,
        )  # fmt: skip
        self._forget(hits)
        answered = {id(w) for w in hits}
        due[:] = [w for w in due if id(w) not in answered]
        return [
            Reply(w, _cached_result(self.cached[w.call.request_hash]), cached=True)
            for w in hits
            if w.pk in claimed.attempts
        ]

    def _fill(self, due: list[Work], current: datetime) -> float | None:
        """Lease slots and claim due verdicts to keep the window full; return the wait when the limits block."""
        self._lease_slots(len(due) + len(self.sent), current)
        if not due:
            return None
        room = self.limit + math.ceil(QUEUED_PER_SLOT * self.limit) - len(self.sent)
        if room <= 0:
            return None if self.sent or self.limit else self._slot_wait(current)
        candidates = due[:room]
        claimed = limits.claim_verdicts(
            self.judge, candidates=[(w.pk, w.call.request_hash) for w in candidates], holder=self.holder,
            until=current + self.claim_lease, current=current,
        )  # fmt: skip
        available = math.floor(claimed.requests_available or 0)
        short = available < len(candidates) and len(claimed.attempts) == available
        last = max(claimed.attempts, default=0)
        # Unclaimed candidates are someone else's, finished or in a stopped run, except those the bucket cut off.
        self._forget([w for w in candidates if w.pk in claimed.attempts or not short or w.pk < last])
        for work in candidates:
            if work.pk in claimed.attempts:
                work.verdict.attempts = claimed.attempts[work.pk]
                self._send(work)
        return limits.token_wait(self.judge, current=current) if short else None

    def _lease_slots(self, demand: int, current: datetime) -> None:
        wants = min(demand, self.judge.max_concurrency)
        if time.monotonic() >= self.next_call_in or wants < self.limit:
            self.share = limits.call_in(
                self.judge, holder=self.holder, wants=wants, alive_until=current + ALIVE_FOR,
                slots_until=current + self.slot_lease, current=current,
            )  # fmt: skip
            self.next_call_in = time.monotonic() + CALL_IN_SECONDS
        self.target = target = min(self.share, wants)
        if target > self.held and time.monotonic() >= self.next_take:
            taken = limits.take_slots(
                self.judge, holder=self.holder, n=target - self.held, until=current + self.slot_lease, current=current
            )
            self.held += taken
            if self.held < target:  # every slot is held elsewhere: ask again after a while, not every round
                self.next_take = time.monotonic() + limits.BUSY_WAIT_SECONDS * random.uniform(0.5, 1.5)
        spare = self.held - max(target, len(self.sent))
        if spare > 0:
            limits.release_slots(self.judge.pk, holder=self.holder, n=spare)
            self.held -= spare
        limit = min(self.held, target)
        if limit != self.limit:
            self.limit = limit
            if self.pool is not None:
                self.pool.set_limit(limit)

    def _send(self, work: Work) -> None:
        if self.pool is None:
            self.pool = llm.CallPool(timeout=self.judge.timeout_seconds, limit=self.limit)
        self.sent[work.pk] = work
        self.pool.submit(work.pk, work.call.request, api_key_env=self.judge.api_key_env)

    def _collect(self, timeout: float) -> list[Outcome]:
        assert self.pool is not None
        outcomes: list[Outcome] = []
        current = self.clock()
        for key, result in self.pool.collect(timeout, linger=min(LINGER_SECONDS, timeout)):
            work = self.sent.pop(int(key))  # type: ignore[call-overload]
            if isinstance(result, llm.ChatResult):
                outcomes.append(Reply(work, result, cached=False))
            elif isinstance(result, llm.TransientLLMError):
                outcomes.append(self._retry_or_give_up(work, result, current))
            else:
                outcomes.append(Failure(work, result.reason))
        return outcomes

    def _retry_or_give_up(self, work: Work, error: llm.TransientLLMError, current: datetime) -> Outcome:
        attempts = work.verdict.attempts
        if attempts >= self.judge.max_attempts:
            return Failure(work, f"gave up after {attempts} attempts: {error.reason}")
        work.not_before = current + timedelta(seconds=backoff_seconds(attempts, error.retry_after))
        return Retry(work, f"attempt {attempts}: {error.reason}", work.not_before)

    def _forget(self, works: list[Work]) -> None:
        gone = {id(w) for w in works}
        self.waiting = [w for w in self.waiting if id(w) not in gone]

    def _slot_wait(self, current: datetime) -> float:
        self.next_take = 0.0  # busy_wait creates missing slots: then look again at once
        return limits.busy_wait(self.judge, current=current)

    def _wait_of(self, work: Work, current: datetime) -> float:
        return max(0.0, (work.not_before - current).total_seconds()) if work.not_before else 0.0

    def _wake_in(self, current: datetime, blocked: float | None, due: bool) -> float:
        """Return how long to wait for calls to finish before looking at the limits and the backoffs again."""
        waits = [self.next_call_in - time.monotonic()]
        if blocked is not None:
            waits.append(blocked)
        if due and self.held < self.target:  # more slots would be used: ask again when due
            waits.append(self.next_take - time.monotonic())
        waits += [self._wait_of(w, current) for w in self.waiting if w.not_before and w.not_before > current]
        return max(0.001, min(waits))

    def _hang_up(self, current: datetime) -> None:
        if self.held or self.next_call_in:
            limits.hang_up(self.judge.pk, holder=self.holder, current=current)
        self.held = self.limit = 0
        self.next_call_in = 0.0
        if self.pool is not None:
            self.pool.set_limit(0)


def build_call(verdict: fetch.LoadedVerdict) -> Call:
    """Return the chat request for a verdict: its judge's template over the comparison in the verdict's order."""
    judge = verdict.judge
    first, second = verdict.in_order()
    spec = prompt_spec_for(judge)
    messages = prompts.render_messages(
        spec,
        question=verdict.question,
        answer_a=first.text,
        answer_b=second.text,
        reference=verdict.reference,
    )
    request = llm.ChatRequest(
        base_url=judge.base_url,
        model=judge.model,
        messages=tuple((m["role"], m["content"]) for m in messages),
        temperature=judge.temperature,
        max_tokens=judge.max_tokens,
        response_format=prompts.response_format(spec),
        seed=verdict.seed,
    )
    return Call(spec, request, request.sha256())


def prompt_spec_for(judge: JudgeConfig) -> prompts.PromptSpec:
    """Return the template and verdict reading of a judge."""
    return prompts.prompt_spec(
        template=judge.template,
        system_prompt=judge.system_prompt,
        custom_template=judge.custom_template,
        verdict_format=judge.verdict_format,
        verdict_pattern=judge.verdict_pattern,
    )


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """Return the wait before attempt+1: the server's Retry-After plus a little jitter when it gave one, else
    exponential with equal jitter; capped either way (the judge's max_attempts bounds the attempts)."""
    if retry_after is not None:
        # The server said when: waiting longer (an exponential floor) only idles the judge's slots. The jitter
        # spreads the verdicts it turned away in the same instant, so they do not all come back at once.
        wait = min(max(0.0, retry_after), BACKOFF_CAP_SECONDS)
        return min(BACKOFF_CAP_SECONDS, wait + random.uniform(0, RETRY_AFTER_JITTER * wait + 0.01))
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** max(0, attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def _cached_result(call: LLMCall) -> llm.ChatResult:
    return llm.ChatResult(
        call.text, call.finish_reason, call.tokens_in, call.tokens_out, call.latency_ms, call.response
    )
