"""Chatbot Arena battle logs (and MT-Bench human judgments): one rating per battle.

Battles with the same `question_id` and the same two models, in either order, are one comparison; a battle
without a `question_id` is its own prompt and comparison. The rater is the battle's `judge`, else
`arena-anonymous`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User

from annotation.importers.errors import ErrorCollector
from annotation.importers.fields import extras, name_field
from annotation.importers.ratings import (
    PlannedOutput,
    PlannedPrompt,
    PlannedRating,
    RatingsPlan,
    add_output,
    add_prompt,
    add_rating,
    import_plan,
    parse_rated_pairs,
)
from annotation.importers.reading import Progress, Record, Source
from annotation.importers.summary import ImportSummary
from annotation.importers.tags import MAX_TAGS, TAG_FIELDS, check_tag, merge_tags, tags_field
from annotation.models import Verdict
from scoring.categories import record_categories

ANONYMOUS_RATER = "arena-anonymous"
WINNERS = {"model_a", "model_b", "tie", "tie (bothbad)"}
KNOWN_FIELDS = {
    "question_id",
    "model_a",
    "model_b",
    "winner",
    "judge",
    "tstamp",
    "conversation_a",
    "conversation_b",
    *TAG_FIELDS,
}


@dataclass(frozen=True)
class Battle:
    line: int
    question_id: str | None
    model_a: str
    model_b: str
    winner: str
    judge: str
    created_at: dt.datetime | None
    prompt_text: str
    text_a: str
    text_b: str
    conversation_a: list[dict[str, str]] | None
    conversation_b: list[dict[str, str]] | None
    metadata: dict[str, Any]
    tags: tuple[str, ...] = ()  # the record's tags/category, then its category_tag paths that are true

    @property
    def prompt_key(self) -> str:
        """Return the prompt's external id: the question id, else a digest of the battle itself."""
        if self.question_id is not None:
            return self.question_id
        # Every field of the battle, so that only an exact duplicate maps to the same prompt (and is refused).
        fields: list[Any] = [self.model_a, self.model_b, self.winner, self.judge, self.created_at, self.prompt_text]
        fields += [self.conversation_a, self.conversation_b, self.metadata]
        digest = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()
        return f"battle-{digest[:16]}"


def parse_battles(name: str, source: Source, *, progress: Progress | None = None) -> RatingsPlan:
    """Return what a battle log asks to store, or raise ImportRefused listing bad lines."""
    return parse_rated_pairs(name, source, progress=progress, read_vote=_battle, plan_vote=_plan_battle)


def import_battles(
    *, campaign_slug: str, plan: RatingsPlan, owner: User | None, dry_run: bool = False
) -> ImportSummary:
    """Store parsed battles in the campaign, creating it (owned by `owner`) when needed."""
    return import_plan(campaign_slug=campaign_slug, plan=plan, owner=owner, dry_run=dry_run)


def _battle(record: Record, errors: ErrorCollector) -> Battle | None:
    before = errors.total
    model_a = name_field(record, "model_a", errors)
    model_b = name_field(record, "model_b", errors)
    winner = record.data.get("winner")
    if winner is None:
        errors.add(record.line, "winner", "missing field")
    elif not isinstance(winner, str) or winner not in WINNERS:
        errors.add(record.line, "winner", f"unknown label {winner!r} (expected {', '.join(sorted(WINNERS))})")
    if model_a is not None and model_a == model_b:
        errors.add(record.line, "model_b", "the same model as model_a")
    question_id = name_field(record, "question_id", errors, required=False)
    judge = name_field(record, "judge", errors, required=False) or ANONYMOUS_RATER
    created_at = _timestamp(record, errors)
    conversation_a = _conversation(record, "conversation_a", errors)
    conversation_b = _conversation(record, "conversation_b", errors)
    prompt_text = _first(conversation_a, "user") or _first(conversation_b, "user")
    tags = _tags(record, errors)
    if conversation_a and conversation_b and _first(conversation_a, "user") != _first(conversation_b, "user"):
        errors.add(record.line, "conversation_b", "its first user message differs from conversation_a's")
    if errors.total > before or model_a is None or model_b is None:
        return None
    return Battle(
        line=record.line,
        question_id=question_id,
        model_a=model_a,
        model_b=model_b,
        winner=str(winner),
        judge=judge,
        created_at=created_at,
        prompt_text=prompt_text,
        text_a=_first(conversation_a, "assistant"),
        text_b=_first(conversation_b, "assistant"),
        conversation_a=conversation_a,
        conversation_b=conversation_b,
        metadata=extras(record, KNOWN_FIELDS),
        tags=tags,
    )


def _tags(record: Record, errors: ErrorCollector) -> tuple[str, ...]:
    """Return the record's tags/category, then its Arena categories (``scoring.categories.record_categories``).

    Those are its category_tag paths that are true, language:<its language>, is_code and is_refusal; without a
    conversation also auto:multi_turn from ``turn`` and auto:long_query from ``conv_metadata.sum_user_tokens`` (with
    one, the built-in taggers read its user turns when the prompt is stored). Only valid tags are kept.
    """
    given = tags_field(record, errors)
    talk = isinstance(record.data.get("conversation_a"), list) or isinstance(record.data.get("conversation_b"), list)
    found = record_categories(record.data, builtin=not talk)
    return tuple(merge_tags(given, (tag for tag in found if check_tag(tag, builtin=True) is None))[:MAX_TAGS])


def _timestamp(record: Record, errors: ErrorCollector) -> dt.datetime | None:
    value = record.data.get("tstamp")
    if value is None or value == "":
        return None
    try:
        return dt.datetime.fromtimestamp(float(value), tz=dt.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        errors.add(record.line, "tstamp", f"expected seconds since the epoch, got {value!r}")
        return None


def _conversation(record: Record, key: str, errors: ErrorCollector) -> list[dict[str, str]] | None:
    value = record.data.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value
    ):
        errors.add(record.line, key, "expected a list of {role, content} messages")
        return None
    return value


def _first(conversation: list[dict[str, str]] | None, role: str) -> str:
    return next((m["content"] for m in conversation or [] if m["role"] == role), "")


def _plan_battle(plan: RatingsPlan, errors: ErrorCollector, seen: dict[Any, int], battle: Battle) -> None:
    prompt = battle.prompt_key
    turns = [m["content"] for m in battle.conversation_a or battle.conversation_b or [] if m["role"] == "user"]
    add_prompt(
        plan,
        errors,
        prompt,
        PlannedPrompt(battle.line, battle.prompt_text, tags=list(battle.tags), user_turns=turns or None),
    )
    left = add_output(plan, errors, prompt, _output(battle, battle.model_a, battle.text_a, battle.conversation_a))
    right = add_output(plan, errors, prompt, _output(battle, battle.model_b, battle.text_b, battle.conversation_b))
    winner = {"model_a": left, "model_b": right}.get(battle.winner)
    verdict = {"model_a": Verdict.WIN, "model_b": Verdict.WIN, "tie": Verdict.TIE}.get(battle.winner, Verdict.BOTH_BAD)
    metadata = battle.metadata  # the writer adds the file and line
    rating = PlannedRating(battle.line, prompt, left, right, winner, verdict, battle.judge, battle.created_at, metadata)
    add_rating(plan, errors, seen, rating)


def _output(battle: Battle, model: str, text: str, conversation: list[dict[str, str]] | None) -> PlannedOutput:
    # Multi-turn conversations keep every turn in metadata; the output's text is the first answer.
    metadata = {"conversation": conversation} if conversation and len(conversation) > 2 else {}
    return PlannedOutput(battle.line, model, text, metadata)
