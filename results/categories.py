"""Category leaderboards of a campaign: its ratings restricted to prompts carrying one tag (``Prompt.tags``).

A category is a prompt tag: the file's ``tags``/``category``, an Arena ``category_tag`` path, ``language:<name>``,
or a built-in ``auto:`` tag (``annotation/importers/tags.py``, ``scoring/categories.py``). The filter is a join to
the prompt and ``tags @> ARRAY[category]`` (the GIN index ``prompt_tags_gin``); a category's counts are aggregated
per request (no per-rater snapshot as for the whole campaign) and its leaderboard is cached like the others. A
category with fewer than CATEGORY_MIN_BATTLES battles is marked ``provisional``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from annotation.importers.tags import MAX_TAG_LENGTH, TAG_PATTERN
from annotation.models import Campaign, Comparison, Prompt
from evalplatform.exceptions import DomainError
from results.raters import RaterSelection
from results.selectors import (
    A_LEFT_SQL,
    OUTPUT_JOINS,
    VALUE_SQL,
    BattleRow,
    arena_battle,
    fetch_all,
    ratings_from,
    ratings_version,
)

CATEGORY_MIN_BATTLES = 100
PROMPT_JOIN = "\n    JOIN annotation_prompt p ON p.id = c.prompt_id"
# The category filter added to RATINGS_FROM's WHERE clause (its parameter: the category).
CATEGORY_SQL = " AND p.tags @> ARRAY[%s]::varchar(100)[]"
MAX_CATEGORIES_LISTED = 1000


def min_battles() -> int:
    """Return the number of battles under which a category's leaderboard is provisional (a setting, 100 default)."""
    value = getattr(settings, "RESULTS_CATEGORY_MIN_BATTLES", CATEGORY_MIN_BATTLES)
    return int(value)


def tags_version(campaign: Campaign) -> str:
    """Return a fingerprint of the campaign's prompt tags (it changes when a prompt or one of its tags does).

    Part of the cache keys of category reports beside the ratings version: ``tag_prompts`` changes tags without
    adding a rating. One pass over the campaign's prompts (not its ratings).
    """
    rows = fetch_all(
        """SELECT count(*), COALESCE(max(id), 0),
                  COALESCE(sum(hashtextextended(id::text || ':' || array_to_string(tags, ','), 0)), 0)
           FROM annotation_prompt WHERE campaign_id = %s""",
        [campaign.pk],
    )
    count, max_id, digest = rows[0]
    return f"{count}-{max_id}-{digest}"


def check_category(campaign: Campaign, category: str) -> str:
    """Return the category if some prompt of the campaign has it; raise DomainError (400) otherwise."""
    if not category or len(category) > MAX_TAG_LENGTH or not TAG_PATTERN.fullmatch(category):
        raise DomainError(
            f"category: expected a tag of 1 to {MAX_TAG_LENGTH} printable characters without commas", field="category"
        )
    if not Prompt.objects.filter(campaign=campaign, tags__contains=[category]).exists():
        raise DomainError(
            f"category: no prompt of this campaign has the tag {category!r} (GET .../categories/ lists them)",
            field="category",
        )
    return category


def category_source(campaign: Campaign, selection: RaterSelection, category: str) -> tuple[str, list[Any]]:
    """Return the FROM/WHERE clause of the selected ratings on the category's prompts (outputs joined), and params."""
    source, params = ratings_from(campaign, selection, joins=OUTPUT_JOINS + PROMPT_JOIN, rater=False)
    return source + CATEGORY_SQL, [*params, category]


def category_battle_rows(campaign: Campaign, category: str) -> list[BattleRow]:
    """Count the campaign's ratings on the category's prompts per rater, shown models and outcome, in SQL."""
    source, params = category_source(campaign, RaterSelection(), category)
    rows = fetch_all(
        f"""SELECT r.rater_id, xa.model_name, xb.model_name, {A_LEFT_SQL} AS a_left, {VALUE_SQL} AS value, count(*)
            {source} GROUP BY 1, 2, 3, 4, 5""",
        params,
    )
    return [
        (rater_id, *arena_battle(model_a, model_b, a_left, value), n)
        for rater_id, model_a, model_b, a_left, value, n in rows
    ]


def comparisons_in_category(comparison_ids: list[int], category: str) -> set[int]:
    """Return those of the comparisons whose prompt has the category."""
    return set(
        Comparison.objects.filter(pk__in=comparison_ids, prompt__tags__contains=[category]).values_list("pk", flat=True)
    )


def campaign_categories(campaign: Campaign, selection: RaterSelection, *, force: bool = False) -> dict[str, Any]:
    """Return the campaign's categories with their prompts and the selected battles between named models.

    Sorted by battles (most first), then name; at most MAX_CATEGORIES_LISTED (``truncated`` says when more).
    Cached under the ratings version and the tags' fingerprint.
    """
    from results.leaderboards import cache_key, cached

    key = cache_key("categories", campaign.pk, selection.key, ratings_version().key, tags_version(campaign))
    return dict(cached(key, lambda: compute_categories(campaign, selection), force=force))


def compute_categories(campaign: Campaign, selection: RaterSelection) -> dict[str, Any]:
    """Count the campaign's prompts and selected battles per category (see campaign_categories)."""
    prompts = dict(
        fetch_all(
            """SELECT tag, count(*) FROM annotation_prompt, unnest(tags) AS tag
               WHERE campaign_id = %s GROUP BY tag""",
            [campaign.pk],
        )
    )
    joins = OUTPUT_JOINS + PROMPT_JOIN + "\n    CROSS JOIN LATERAL unnest(p.tags) AS tag"
    source, params = ratings_from(campaign, selection, joins=joins, rater=False)
    battles = dict(
        fetch_all(
            f"""SELECT tag, count(*) {source} AND xa.model_name IS NOT NULL AND xb.model_name IS NOT NULL
                GROUP BY tag""",
            params,
        )
    )
    minimum = min_battles()
    rows = [
        {
            "category": tag,
            "n_prompts": n,
            "n_battles": battles.get(tag, 0),
            "provisional": battles.get(tag, 0) < minimum,
        }
        for tag, n in prompts.items()
    ]
    rows.sort(key=lambda row: (-row["n_battles"], row["category"]))
    return {
        "campaign": campaign.slug,
        "raters": selection.key,
        "min_battles": minimum,
        "categories": rows[:MAX_CATEGORIES_LISTED],
        "truncated": len(rows) > MAX_CATEGORIES_LISTED,
    }
