"""Prompt tags (categories): the ones a file gives, checked, and the built-in taggers' ``auto:`` tags.

A prompt's ``tags`` hold the file's ``tags`` (a list of strings, or one comma-separated string) and ``category``
(one string), then the built-in tags of its user turns (``scoring.categories.builtin_tags``). ``auto:`` is
reserved for the built-in taggers; ``manage.py tag_prompts`` recomputes them for stored prompts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from annotation.importers.errors import ErrorCollector
from annotation.importers.reading import Record
from annotation.models import Campaign, Output, Prompt
from scoring.categories import AUTO_PREFIX, builtin_tags

MAX_TAGS = 20
MAX_TAG_LENGTH = 100
TAG_FIELDS = ("tags", "category")
# Printable, no leading or trailing space, no comma (the separator of a tags string).
TAG_PATTERN = re.compile(r"[^\s,\x00-\x1f\x7f](?:[^,\x00-\x1f\x7f]*[^\s,\x00-\x1f\x7f])?")
BACKFILL_BATCH = 1_000


def check_tag(tag: object, *, builtin: bool = False) -> str | None:
    """Return the problem with a tag a user gives, or None when it is a valid one (``builtin``: auto: allowed)."""
    if not isinstance(tag, str):
        return f"a tag must be text, got {type(tag).__name__}"
    if not tag or len(tag) > MAX_TAG_LENGTH:
        return f"a tag must have 1 to {MAX_TAG_LENGTH} characters"
    if not TAG_PATTERN.fullmatch(tag):
        return f"tag {tag!r} has a comma, a control character or a space at an end"
    if tag.startswith(AUTO_PREFIX) and not builtin:
        return f"tag {tag!r}: the prefix {AUTO_PREFIX} is reserved for the built-in taggers"
    return None


def tags_field(record: Record, errors: ErrorCollector) -> tuple[str, ...]:
    """Return the tags of a record's ``tags`` and ``category`` fields (in that order, once each), reporting problems."""
    found: list[str] = []
    for key in TAG_FIELDS:
        value: Any = record.data.get(key)
        if value is None or value == "":
            continue
        if key == "tags" and isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        elif key == "category" or not isinstance(value, list):
            value = [value]
        for tag in value:
            problem = check_tag(tag)
            if problem is not None:
                errors.add(record.line, key, problem)
                return ()
            if tag not in found:
                found.append(tag)
    if len(found) > MAX_TAGS:
        errors.add(record.line, "tags", f"more than {MAX_TAGS} tags")
        return ()
    return tuple(found)


def merge_tags(first: Sequence[str], second: Iterable[str]) -> list[str]:
    """Return first followed by the tags of second it lacks."""
    merged = list(first)
    merged.extend(tag for tag in dict.fromkeys(second) if tag not in merged)
    return merged


def prompt_tags(*, given: Sequence[str], user_turns: Sequence[str]) -> list[str]:
    """Return the tags to store on a prompt: the given ones, then the built-in taggers' on its user turns.

    Given tags never start with auto: when a user gave them (check_tag refuses it); a battle without a conversation
    brings its Arena fallbacks (auto:multi_turn from ``turn``...) among them.
    """
    return merge_tags(given, builtin_tags(user_turns=user_turns))


def user_turns_of(text: str, conversation: object) -> list[str]:
    """Return a prompt's user turns: those of a stored conversation (a list of role/content messages), else text."""
    if isinstance(conversation, list):
        turns = [
            m["content"]
            for m in conversation
            if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str)
        ]
        if turns:
            return turns
    return [text]


def retag_prompts(*, campaign: Campaign | None = None) -> int:
    """Recompute the ``auto:`` tags of stored prompts (of one campaign, or all), keeping their other tags.

    Tags a file gave as ``tags``/``category`` that only reached the prompt's metadata (prompts imported before
    tags were stored) are added too. Works in batches of BACKFILL_BATCH prompts, each its own transaction; a
    multi-turn prompt's turns come from its outputs' stored conversation. Returns the number of prompts changed.
    """
    prompts = Prompt.objects.all() if campaign is None else Prompt.objects.filter(campaign=campaign)
    changed, after = 0, 0
    while True:
        rows = prompts.filter(pk__gt=after).order_by("pk").values_list("pk", "text", "tags", "metadata")
        batch = list(rows[:BACKFILL_BATCH])
        if not batch:
            return changed
        after = batch[-1][0]
        conversations = _conversations([pk for pk, *_ in batch])
        updates = []
        for pk, text, tags, metadata in batch:
            if not text.strip() and pk not in conversations:
                continue  # nothing to tag (a battle's auto: tags from turn/conv_metadata stay as imported)
            kept = [tag for tag in tags if not tag.startswith(AUTO_PREFIX)]
            kept = merge_tags(kept, _metadata_tags(metadata))
            new = prompt_tags(given=kept, user_turns=user_turns_of(text, conversations.get(pk)))
            if new != tags:
                updates.append((pk, new))
        _store_tags(updates)
        changed += len(updates)


def _metadata_tags(metadata: object) -> list[str]:
    """Return the valid tags found under ``tags``/``category`` in a prompt's metadata."""
    if not isinstance(metadata, dict):
        return []
    found: list[str] = []
    for key in TAG_FIELDS:
        value = metadata.get(key)
        if isinstance(value, str):
            value = value.split(",") if key == "tags" else [value]
        if isinstance(value, list):
            found.extend(tag.strip() for tag in value if isinstance(tag, str) and check_tag(tag.strip()) is None)
    return list(dict.fromkeys(found))[:MAX_TAGS]


def _conversations(prompt_ids: list[int]) -> dict[int, object]:
    """Return one stored conversation per prompt among these (battle imports keep multi-turn ones on outputs)."""
    rows = (
        Output.objects.filter(prompt_id__in=prompt_ids, metadata__has_key="conversation")
        .order_by("prompt_id", "pk")
        .values_list("prompt_id", "metadata__conversation")
    )
    found: dict[int, object] = {}
    for prompt_id, conversation in rows:
        found.setdefault(prompt_id, conversation)
    return found


def _store_tags(updates: list[tuple[int, list[str]]]) -> None:
    """Write new tags for these prompts (one statement)."""
    if updates:
        Prompt.objects.bulk_update([Prompt(pk=pk, tags=tags) for pk, tags in updates], ["tags"])
