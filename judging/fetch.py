"""Reads on the judging hot path, as plain SQL: a batch runs each once for all its verdicts, and compiling ORM
queries costs more CPU than the queries themselves (the benchmark judges hundreds of verdicts a second on two cores).

Verdicts come back as plain slotted dataclasses holding what a batch uses, not model instances: building six
Django models per verdict cost more CPU than the query that loads them. Judges and cached calls are models.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from django.db import connection

from judging.models import JudgeConfig, JudgeRun, JudgeVerdict, LLMCall

_VERDICT = """
    SELECT v.id, v.judge_id, v.comparison_id, v."order", v.run_id, v.state, v.attempts, v.retry_at,
           v.claimed_until, r.status, j.updated_at, c.campaign_id, c.prompt_id, p.text, p.reference_answer,
           c.output_a_id, a.text, c.output_b_id, b.text, r.base_url, r.model, r.api_key_env, v.repeat, r.seed
    FROM judging_judgeverdict v
    JOIN judging_judgeconfig j ON j.id = v.judge_id
    JOIN annotation_comparison c ON c.id = v.comparison_id
    JOIN annotation_prompt p ON p.id = c.prompt_id
    JOIN annotation_output a ON a.id = c.output_a_id
    JOIN annotation_output b ON b.id = c.output_b_id
    LEFT JOIN judging_judgerun r ON r.id = v.run_id
    WHERE v.id = ANY(%s)
    ORDER BY v.id
"""
_CALLS = """
    SELECT request_hash, model, text, finish_reason, tokens_in, tokens_out, latency_ms, response
    FROM judging_llmcall WHERE request_hash = ANY(%s)
"""
_WORK_LEFT = "SELECT EXISTS (SELECT 1 FROM judging_judgeverdict WHERE run_id = %s AND state IN ('pending', 'claimed'))"

# Judge settings change rarely; a judge is reloaded when its updated_at moves.
_judges: dict[int, JudgeConfig] = {}
_judges_lock = threading.Lock()


class Text(NamedTuple):
    pk: int
    text: str


@dataclass(eq=False, slots=True)
class LoadedVerdict:
    """A verdict to judge, with its judge, run status, comparison and texts (the row of load_verdicts)."""

    pk: int
    judge: JudgeConfig
    comparison_id: int
    campaign_id: int
    order: str
    run_id: int | None
    run_status: str | None
    state: str
    attempts: int
    retry_at: datetime | None
    claimed_until: datetime | None
    question: str
    reference: str
    output_a: Text
    output_b: Text
    run_endpoint: tuple[str, str, str] | None = None  # (base_url, model, api_key_env) recorded by the run
    repeat: int = 0  # a stability repeat (>= 1) bypasses the call cache and makes no rating
    seed: int | None = None  # the run's seed, sent with the request when set

    def endpoint_changed(self) -> bool:
        """Return whether the judge's endpoint differs from the one its run recorded (unrecorded: no)."""
        if not self.run_endpoint or not self.run_endpoint[0]:
            return False
        return self.run_endpoint != (self.judge.base_url, self.judge.model, self.judge.api_key_env)

    @property
    def judge_id(self) -> int:
        return int(self.judge.pk)

    def in_order(self) -> tuple[Text, Text]:
        """Return the outputs as the verdict shows them: (A, B)."""
        if self.order == JudgeVerdict.Order.AB:
            return self.output_a, self.output_b
        return self.output_b, self.output_a

    def is_running(self) -> bool:
        return self.run_status == JudgeRun.Status.RUNNING


def load_verdicts(verdict_ids: list[int]) -> list[LoadedVerdict]:
    """Return the verdicts with their run's status, judge, comparison, prompt and both outputs' texts."""
    with connection.cursor() as cursor:
        cursor.execute(_VERDICT, [verdict_ids])
        return [_verdict(row) for row in cursor.fetchall()]


def _verdict(row: tuple[Any, ...]) -> LoadedVerdict:
    (pk, judge_id, comparison_id, order, run_id, state, attempts, retry_at, claimed_until, run_status,
     judge_updated_at, campaign_id, _prompt_id, prompt_text, reference, a_id, a_text, b_id, b_text, run_base_url,
     run_model, run_key_env, repeat, seed) = row  # fmt: skip
    return LoadedVerdict(
        pk, _judge(judge_id, judge_updated_at), comparison_id, campaign_id, order, run_id, run_status, state,
        attempts, retry_at, claimed_until, prompt_text, reference, Text(a_id, a_text), Text(b_id, b_text),
        None if run_id is None else (run_base_url, run_model, run_key_env), repeat, seed,
    )  # fmt: skip


def cached_calls(request_hashes: list[str]) -> dict[str, LLMCall]:
    """Return the stored replies to identical requests, by request hash."""
    with connection.cursor() as cursor:
        cursor.execute(_CALLS, [request_hashes])
        rows = cursor.fetchall()
    calls = {}
    for request_hash, model, text, finish_reason, tokens_in, tokens_out, latency_ms, response in rows:
        calls[request_hash] = LLMCall(
            request_hash=request_hash, model=model, text=text, finish_reason=finish_reason, tokens_in=tokens_in,
            tokens_out=tokens_out, latency_ms=latency_ms, response=_json(response),
        )  # fmt: skip
    return calls


def work_left(run_id: int) -> bool:
    """Return whether any of the run's verdicts is pending or claimed."""
    with connection.cursor() as cursor:
        cursor.execute(_WORK_LEFT, [run_id])
        return bool(cursor.fetchone()[0])


def _judge(judge_id: int, updated_at: Any) -> JudgeConfig:
    judge = _judges.get(judge_id)
    if judge is None or judge.updated_at != updated_at:
        judge = JudgeConfig.objects.select_related("rater").get(pk=judge_id)
        with _judges_lock:
            _judges[judge_id] = judge
    return judge


def _json(value: Any) -> Any:
    # Django's PostgreSQL backend hands jsonb to the field as text; a bare cursor may see either form.
    return json.loads(value) if isinstance(value, str) else value
