"""What judging a verdict comes to (a reply, a retry or a failure), and storing a batch of them in one statement.

The statement locks the verdicts still claimed by the writer and, for those only, stores the calls (the call
cache), the ratings of replies that parse, and the verdicts' new states. A single statement is one transaction in
one round trip: a worker process whose event loop keeps the GIL busy with calls pays a thread switch per round
trip, and a batch writes several times a second. It is prepared once per connection (evalplatform.db), and its
rows travel as one JSON parameter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from annotation.models import Verdict
from evalplatform.db import prepared_cursor
from judging import fetch, llm, prompts
from judging.models import JudgeConfig, JudgeVerdict
from results.tasks import schedule_refresh

ALREADY_RATED = "this rater already rated the comparison in this order"


@dataclass(frozen=True)
class Call:
    spec: prompts.PromptSpec
    request: llm.ChatRequest
    request_hash: str


@dataclass(eq=False)
class Work:
    """A verdict of a batch with its call; not_before is when it may be claimed again after a backoff."""

    verdict: fetch.LoadedVerdict
    call: Call
    not_before: datetime | None = None

    @property
    def pk(self) -> int:
        return self.verdict.pk


@dataclass(frozen=True)
class Reply:
    work: Work
    result: llm.ChatResult
    cached: bool


@dataclass(frozen=True)
class Retry:
    work: Work
    reason: str
    retry_at: datetime


@dataclass(frozen=True)
class Failure:
    work: Work
    reason: str


Outcome = Reply | Retry | Failure

_COLUMNS = """
    id bigint, kind text, state text, reason text, parsed jsonb, raw text, finish text, tokens_in int,
    tokens_out int, latency_ms int, cost numeric, cached boolean, retry_at timestamptz, call_hash text,
    call_model text, call_request jsonb, call_response jsonb, comparison_id bigint, rater_id bigint, verdict text,
    winner_id bigint, left_output_id bigint, strength int, metadata jsonb, probability double precision
"""
_RECORD = f"""
    WITH input AS (
        SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb) AS u({_COLUMNS})
    ), owned AS (
        SELECT v.id FROM judging_judgeverdict v
        WHERE v.id IN (SELECT id FROM input) AND v.state = 'claimed' AND v.claimed_by = %(holder)s
        ORDER BY v.id FOR UPDATE
    ), mine AS (
        SELECT input.* FROM input JOIN owned USING (id)
    ), calls AS (
        INSERT INTO judging_llmcall (request_hash, model, request, response, text, finish_reason, tokens_in,
                                     tokens_out, latency_ms, created_at)
        SELECT call_hash, call_model, call_request, call_response, raw, finish, tokens_in, tokens_out, latency_ms,
               %(now)s
        FROM mine WHERE call_hash IS NOT NULL
        ON CONFLICT DO NOTHING
    ), ratings AS (
        INSERT INTO annotation_rating (comparison_id, rater_id, rater_kind, source, verdict, winner_id,
                                       left_output_id, strength, rationale, time_ms, metadata, created_at)
        SELECT comparison_id, rater_id, 'judge', 'judge', verdict, winner_id, left_output_id, strength,
               left(raw, 4000), latency_ms, metadata, %(now)s
        FROM mine WHERE verdict IS NOT NULL
        ON CONFLICT DO NOTHING  -- the rater already rated this comparison in this order (e.g. an import)
        RETURNING id, comparison_id, left_output_id
    ), judged AS (
        UPDATE judging_judgeverdict v
        SET state = CASE WHEN m.verdict IS NOT NULL AND r.id IS NULL THEN 'failed' ELSE m.state END,
            reason = CASE WHEN m.verdict IS NOT NULL AND r.id IS NULL THEN %(already)s ELSE m.reason END,
            parsed = m.parsed, probability = m.probability, rating_id = r.id, raw_response = m.raw,
            tokens_in = m.tokens_in, tokens_out = m.tokens_out, latency_ms = m.latency_ms, cost = m.cost,
            cached = m.cached, claimed_by = '', claimed_until = NULL, finished_at = %(now)s
        FROM mine m LEFT JOIN ratings r ON r.comparison_id = m.comparison_id AND r.left_output_id = m.left_output_id
        WHERE v.id = m.id AND m.kind = 'judged'
    ), failed AS (
        UPDATE judging_judgeverdict v
        SET state = 'failed', reason = m.reason, claimed_by = '', claimed_until = NULL, finished_at = %(now)s
        FROM mine m WHERE v.id = m.id AND m.kind = 'failed'
    ), retried AS (
        UPDATE judging_judgeverdict v
        SET state = 'pending', reason = m.reason, retry_at = m.retry_at, claimed_by = '', claimed_until = NULL
        FROM mine m WHERE v.id = m.id AND m.kind = 'retry'
    )
    SELECT (SELECT count(*) FROM ratings)
"""


def record(outcomes: list[Outcome], *, holder: str, current: datetime) -> None:
    """Store the outcomes of verdicts still claimed by `holder`; those of claims lost to an expired lease are dropped.

    Replies store their call (unless answered from the cache) and, when they parse, a rating; a rating the judge's
    rater already has in that order fails the verdict instead.
    """
    rows = json.dumps([_row(o) for o in outcomes], default=str)
    with prepared_cursor() as cursor:
        cursor.execute(_RECORD, {"rows": rows, "holder": holder, "now": current, "already": ALREADY_RATED})
        (rated,) = cursor.fetchone()
    if rated:
        for campaign_id in sorted({o.work.verdict.campaign_id for o in outcomes}):
            schedule_refresh(campaign_id)


def _row(outcome: Outcome) -> dict[str, Any]:
    if isinstance(outcome, Retry):
        return {"id": outcome.work.pk, "kind": "retry", "reason": outcome.reason, "retry_at": outcome.retry_at}
    if isinstance(outcome, Failure):
        return {"id": outcome.work.pk, "kind": "failed", "reason": outcome.reason}
    work, result, verdict = outcome.work, outcome.result, outcome.work.verdict
    row: dict[str, Any] = {
        "id": work.pk, "kind": "judged", "raw": result.text, "finish": result.finish_reason,
        "tokens_in": result.tokens_in, "tokens_out": result.tokens_out, "latency_ms": result.latency_ms,
        "cached": outcome.cached,
        "cost": Decimal(0) if outcome.cached else call_cost(verdict.judge, result.tokens_in, result.tokens_out),
    }  # fmt: skip
    if not outcome.cached:
        row.update(call_hash=work.call.request_hash, call_model=work.call.request.model,
                   call_request=work.call.request.payload(), call_response=result.raw)  # fmt: skip
    try:
        parsed = prompts.parse_verdict(work.call.spec, result.text, finish_reason=result.finish_reason)
    except prompts.VerdictParseError as exc:
        row.update(state=JudgeVerdict.State.PARSE_FAILED, reason=str(exc))
        return row
    if verdict.repeat:  # a stability repeat: kept on the verdict only, never a rating
        row.update(state=JudgeVerdict.State.DONE, reason="", parsed=parsed.as_json(), probability=parsed.probability)
        return row
    first, second = verdict.in_order()
    winner = {"A": first, "B": second}.get(parsed.outcome)
    row.update(
        state=JudgeVerdict.State.DONE, reason="", parsed=parsed.as_json(), comparison_id=verdict.comparison_id,
        rater_id=verdict.judge.rater_id, verdict=_VERDICTS[parsed.outcome], winner_id=winner.pk if winner else None,
        left_output_id=first.pk, strength=parsed.strength, probability=parsed.probability,
        metadata={"judge_verdict": verdict.pk, "run": verdict.run_id, "order": verdict.order, "label": parsed.label},
    )  # fmt: skip
    return row


_VERDICTS = {"A": Verdict.WIN, "B": Verdict.WIN, "tie": Verdict.TIE, "both_bad": Verdict.BOTH_BAD}


def call_cost(judge: JudgeConfig, tokens_in: int, tokens_out: int) -> Decimal:
    """Return the price of a call from the judge's prices per million tokens."""
    cost = (tokens_in * judge.price_input_per_million + tokens_out * judge.price_output_per_million) / 1_000_000
    return cost.quantize(Decimal("0.000001"))
