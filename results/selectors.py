"""Read ratings into plain tuples for scoring: aggregated in SQL, streamed with server-side cursors.

Conventions shared by every report:
- a rating becomes an Arena battle: model_a is the model of the output shown on the left (output_a when the order is
  unknown), model_b the other, winner "model_a" / "model_b" / "tie" / "tie (bothbad)";
- for agreement a rating's value is canonical, relative to the comparison's stored outputs, not the shown sides:
  "a" (output_a won), "b", "tie" or "both_bad".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL

from annotation.models import Campaign, Comparison, Output, Rater, Rating
from evalplatform.db_router import heavy_read_alias
from evalplatform.exceptions import DomainError
from results.raters import RaterSelection

FETCH_ROWS = 10_000

# The ratings of one campaign that a selection keeps; every query below starts from it.
RATINGS_FROM = """
    FROM annotation_rating r
    JOIN annotation_comparison c ON c.id = r.comparison_id{rater_join}{joins}
    WHERE c.campaign_id = %s AND {rater_filter}
"""

# Canonical value of a rating relative to output_a / output_b.
VALUE_SQL = """CASE WHEN r.verdict = 'win' AND r.winner_id = c.output_a_id THEN 'a'
                    WHEN r.verdict = 'win' THEN 'b' ELSE r.verdict END"""
# True when output_a was shown on the left (or the order is unknown).
A_LEFT_SQL = "(COALESCE(r.left_output_id, c.output_a_id) = c.output_a_id)"


OUTPUT_JOINS = """
    JOIN annotation_output xa ON xa.id = c.output_a_id
    JOIN annotation_output xb ON xb.id = c.output_b_id"""


def ratings_from(
    campaign: Campaign, selection: RaterSelection, *, joins: str = "", rater: bool = True
) -> tuple[str, list[Any]]:
    """Return the FROM/WHERE clause of a campaign's selected ratings (plus ``joins``) and its parameters.

    The rater table is joined as ``rr`` when ``rater`` is true or the selection needs it.
    """
    condition, params = selection.sql("rr")
    rater_join = "\n    JOIN annotation_rater rr ON rr.id = r.rater_id" if rater or selection.needs_rater_table else ""
    sql = RATINGS_FROM.format(rater_filter=condition, rater_join=rater_join, joins=joins)
    return sql, [campaign.pk, *params]


def stream_rows(
    sql: str, params: Sequence[Any], *, chunk: int = FETCH_ROWS, using: str = DEFAULT_DB_ALIAS
) -> Iterator[list[tuple[Any, ...]]]:
    """Yield the rows of a query in chunks through a server-side cursor, so memory stays bounded.

    ``using`` names the database alias (``evalplatform.db_router.heavy_read_alias()`` for the replica).
    """
    # Inside a transaction the cursor is declared WITHOUT HOLD; in autocommit mode PostgreSQL would first
    # materialise the whole result.
    reader = connections[using]
    with transaction.atomic(using=using), reader.chunked_cursor() as cursor:
        with reader.cursor() as plain:  # a server-side cursor can only run queries
            no_jit(plain)
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(chunk):
            yield rows


def no_jit(cursor: Any) -> None:
    """Turn PostgreSQL's JIT off for the current transaction.

    Our reports are one large join and aggregation: compiling it costs about a second, more than it saves.
    """
    cursor.execute("SET LOCAL jit = off")


def fetch_all(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Return all rows of a small (aggregated) query."""
    with transaction.atomic(), connection.cursor() as cursor:
        no_jit(cursor)
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def check_rater_names(selection: RaterSelection, *, campaign: Campaign) -> None:
    """Raise DomainError naming the raters of a selection that have not rated in the campaign.

    Names are looked up among the campaign's own raters only: the answer says nothing of whether another team
    has a rater by that name.
    """
    if not selection.names:
        return
    known = set(
        Rater.objects.filter(Q(name__in=selection.names) | Q(pseudonym__in=selection.names))
        .filter(Exists(Rating.objects.filter(rater=OuterRef("pk"), comparison__campaign=campaign)))
        .values_list("name", "pseudonym")
        .iterator()
    )
    found = {n for pair in known for n in pair}
    missing = [n for n in selection.names if n not in found]
    if missing:
        raise DomainError(f"raters: no rater named {', '.join(missing)} has rated in this campaign", field="raters")


@dataclass(frozen=True)
class RatingsVersion:
    """A cheap fingerprint of the ratings: it changes whenever a rating is added, changed or deleted."""

    max_id: int
    updated: int
    deleted: int

    @property
    def key(self) -> str:
        return f"{self.max_id}-{self.updated}-{self.deleted}"


def ratings_version() -> RatingsVersion:
    """Return the largest rating id and PostgreSQL's counts of updated and deleted rating rows.

    Constant time whatever the number of ratings (an index lookup and a statistics view), at the price of being
    global: a rating anywhere refreshes every campaign's reports, and a deletion is seen once PostgreSQL has
    flushed its statistics (at the deleting transaction's end).
    """
    rows = fetch_all(
        """SELECT (SELECT COALESCE(max(id), 0) FROM annotation_rating),
                  COALESCE((SELECT n_tup_upd FROM pg_stat_user_tables WHERE relid = 'annotation_rating'::regclass), 0),
                  COALESCE((SELECT n_tup_del FROM pg_stat_user_tables WHERE relid = 'annotation_rating'::regclass), 0)
        """,
        [],
    )
    return RatingsVersion(max_id=rows[0][0], updated=rows[0][1], deleted=rows[0][2])


WINNER_LABEL = {"tie": "tie", "both_bad": "tie (bothbad)"}
# (rater id, left model, right model, Arena winner label, count); a model is None when its output has no name.
BattleRow = tuple[int, str | None, str | None, str, int]


def rater_battle_rows(campaign: Campaign, *, after_id: int, upto_id: int) -> list[BattleRow]:
    """Count the campaign's ratings with after_id < id <= upto_id per rater, shown models and outcome, in SQL."""
    source, params = ratings_from(campaign, RaterSelection(), joins=OUTPUT_JOINS, rater=False)
    rows = fetch_all(
        f"""SELECT r.rater_id, xa.model_name, xb.model_name, {A_LEFT_SQL} AS a_left, {VALUE_SQL} AS value, count(*)
            {source} AND r.id > %s AND r.id <= %s GROUP BY 1, 2, 3, 4, 5""",
        [*params, after_id, upto_id],
    )
    return [
        (rater_id, *arena_battle(model_a, model_b, a_left, value), n)
        for rater_id, model_a, model_b, a_left, value, n in rows
    ]


def arena_battle(
    model_a: str | None, model_b: str | None, a_left: bool, value: str
) -> tuple[str | None, str | None, str]:
    """Return (left model, right model, Arena winner label) of a rating given its canonical value."""
    left, right = (model_a, model_b) if a_left else (model_b, model_a)
    return left, right, WINNER_LABEL.get(value) or ("model_a" if (value == "a") == a_left else "model_b")


@dataclass(frozen=True)
class InconsistentPair:
    """A comparison a judge rated in both orders with different canonical values (``votes``: (a_left, value))."""

    rater_id: int
    comparison_id: int
    model_a: str | None
    model_b: str | None
    votes: tuple[tuple[bool, str], ...]


def inconsistent_judge_pairs(campaign: Campaign, selection: RaterSelection) -> list[InconsistentPair]:
    """Return the comparisons each selected judge decided differently in its two orders.

    A pair is exactly two ratings by one judge on one comparison, one with each output shown on the left, whose
    canonical values differ (a win for output_a against a win for output_b, or a win against a tie); humans and
    judges that rated one order only never form one.
    """
    source, params = ratings_from(campaign, selection, joins=OUTPUT_JOINS, rater=False)
    rows = fetch_all(
        f"""SELECT r.rater_id, r.comparison_id, xa.model_name, xb.model_name,
                   array_agg({A_LEFT_SQL} ORDER BY r.id), array_agg({VALUE_SQL} ORDER BY r.id)
            {source} AND r.rater_kind = 'judge'
            GROUP BY r.rater_id, r.comparison_id, xa.model_name, xb.model_name
            HAVING count(*) = 2 AND count(DISTINCT {A_LEFT_SQL}) = 2 AND count(DISTINCT {VALUE_SQL}) = 2""",
        params,
    )
    return [
        InconsistentPair(rater_id, comparison_id, model_a, model_b, tuple(zip(a_lefts, values, strict=True)))
        for rater_id, comparison_id, model_a, model_b, a_lefts, values in rows
    ]


def selected_rater_ids(selection: RaterSelection, candidates: Iterable[int]) -> set[int]:
    """Return the ids among candidates that the selection keeps."""
    raters = Rater.objects.filter(pk__in=list(candidates))
    if selection.kind:
        raters = raters.filter(kind=selection.kind)
    if selection.names:
        raters = raters.filter(Q(name__in=selection.names) | Q(pseudonym__in=selection.names))
    for glob in selection.exclude:
        raters = raters.exclude(name__regex=glob_regex(glob))
    if selection.left_out:
        raters = raters.exclude(pk__in=selection.left_out_ids)
    return set(raters.values_list("pk", flat=True))


@dataclass(frozen=True)
class RatingRow:
    """One rating as agreement statistics see it."""

    rating_id: int
    comparison_id: int
    rater_id: int
    rater: str
    kind: str
    value: str
    a_left: bool
    time_ms: int | None
    gold: str | None


GOLD_SQL = """CASE WHEN c.gold_verdict = 'win' AND c.gold_winner_id = c.output_a_id THEN 'a'
                   WHEN c.gold_verdict = 'win' THEN 'b' ELSE c.gold_verdict END"""


def rating_rows(campaign: Campaign, selection: RaterSelection) -> list[RatingRow]:
    """Return the campaign's selected ratings, in id order, as RatingRow values (rater = public label)."""
    source, params = ratings_from(campaign, selection)
    sql = f"""SELECT r.id, r.comparison_id, r.rater_id, {PUBLIC_RATER_SQL}, r.rater_kind, {VALUE_SQL},
                     {A_LEFT_SQL}, r.time_ms, {GOLD_SQL}
              {source} ORDER BY r.id"""
    return [RatingRow(*row) for chunk in stream_rows(sql, params, using=heavy_read_alias()) for row in chunk]


# Codes of canonical values in RatingArrays (alphabetical, as the agreement metrics order string values).
VALUES = ("a", "b", "both_bad", "tie")
VALUE_CODE_SQL = """CASE WHEN r.verdict = 'win' AND r.winner_id = c.output_a_id THEN 0 WHEN r.verdict = 'win' THEN 1
                         WHEN r.verdict = 'both_bad' THEN 2 ELSE 3 END"""
GOLD_CODE_SQL = """CASE WHEN c.gold_verdict IS NULL THEN -1
                        WHEN c.gold_verdict = 'win' AND c.gold_winner_id = c.output_a_id THEN 0
                        WHEN c.gold_verdict = 'win' THEN 1 WHEN c.gold_verdict = 'both_bad' THEN 2
                        WHEN c.gold_verdict = 'tie' THEN 3 ELSE 9 END"""


@dataclass(frozen=True, eq=False)
class RatingArrays:
    """A campaign's selected ratings as parallel numpy columns in rating id order (about 19 bytes a rating).

    ``rater`` indexes ``raters`` (public labels, sorted) and ``kinds``; ``value`` and ``gold`` index ``VALUES``
    (gold -1: none, 9: a gold verdict no rating can equal); ``time_ms`` is -1 when unknown.
    """

    comparison: np.ndarray[Any, np.dtype[np.int64]]
    rater: np.ndarray[Any, np.dtype[np.int32]]
    value: np.ndarray[Any, np.dtype[np.int8]]
    a_left: np.ndarray[Any, np.dtype[np.bool_]]
    time_ms: np.ndarray[Any, np.dtype[np.int32]]
    gold: np.ndarray[Any, np.dtype[np.int8]]
    raters: tuple[str, ...]
    kinds: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.comparison)

    def take(self, index: np.ndarray[Any, Any]) -> RatingArrays:
        """Return the ratings at ``index`` (a boolean mask or positions), raters unchanged."""
        return RatingArrays(
            self.comparison[index],
            self.rater[index],
            self.value[index],
            self.a_left[index],
            self.time_ms[index],
            self.gold[index],
            self.raters,
            self.kinds,
        )


def rating_arrays(campaign: Campaign, selection: RaterSelection) -> RatingArrays:
    """Return the campaign's selected ratings as compact numpy columns (what ``rating_rows`` returns as objects),
    streamed in chunks so that no per-rating Python object outlives its chunk."""
    source, params = ratings_from(campaign, selection)
    # Unordered: PostgreSQL streams the join as it goes instead of sorting it first; numpy sorts by id after.
    sql = f"""SELECT r.id, r.comparison_id, r.rater_id, {VALUE_CODE_SQL}, ({A_LEFT_SQL})::int,
                     COALESCE(r.time_ms, -1), {GOLD_CODE_SQL}
              {source}"""
    alias = heavy_read_alias()
    columns: list[list[np.ndarray[Any, Any]]] = [[] for _ in range(7)]
    types = (np.int64, np.int64, np.int64, np.int8, np.bool_, np.int32, np.int8)
    for chunk in stream_rows(sql, params, chunk=50_000, using=alias):
        block = np.array(chunk, dtype=np.int64)
        for column, kind, parts in zip(block.T, types, columns, strict=True):
            parts.append(column.astype(kind))
    rating_id, *rest = (
        np.concatenate(parts) if parts else np.zeros(0, kind) for parts, kind in zip(columns, types, strict=True)
    )
    order = np.argsort(rating_id)
    del rating_id
    comparison, rater_id, value, a_left, time_ms, gold = (column[order] for column in rest)
    del rest
    ids = np.unique(rater_id)
    labels = {
        pk: (label, kind)
        for pk, label, kind in Rater.objects.using(alias)
        .filter(pk__in=ids.tolist())
        .annotate(label=RawSQL(PUBLIC_RATER_SQL.replace("rr.", "annotation_rater."), []))
        .values_list("pk", "label", "kind")
    }
    names = sorted({label for label, _ in labels.values()})
    code = {name: i for i, name in enumerate(names)}
    kinds = dict(labels.values())
    by_id = np.array([code[labels[int(pk)][0]] for pk in ids], dtype=np.int32)
    rater = by_id[np.searchsorted(ids, rater_id)] if len(ids) else np.zeros(0, np.int32)
    return RatingArrays(comparison, rater, value, a_left, time_ms, gold, tuple(names), tuple(kinds[n] for n in names))


# Judges and imported raters are shown by name (a judge configuration or a public dataset id); raters with an
# account here only by pseudonym, so exports and reports never carry a user's name or email.
PUBLIC_RATER_SQL = "CASE WHEN rr.user_id IS NULL THEN rr.name ELSE rr.pseudonym END"


def judge_raters(campaign: Campaign, selection: RaterSelection) -> list[tuple[int, str]]:
    """Return (id, name) of the judges with selected ratings in the campaign."""
    source, params = ratings_from(campaign, selection)
    return [
        (rid, name)
        for rid, name in fetch_all(
            f"SELECT DISTINCT rr.id, rr.name {source} AND rr.kind = 'judge' ORDER BY rr.name", params
        )
    ]


def comparisons(
    campaign: Campaign, *, model: str | None = None, prompt: str | None = None, gold: bool | None = None
) -> QuerySet[Comparison]:
    """Return the campaign's comparisons with their prompt, outputs and rating count, filtered."""
    qs = Comparison.objects.filter(campaign=campaign).select_related("prompt", "output_a", "output_b")
    if model:
        qs = qs.filter(Q(output_a__model_name=model) | Q(output_b__model_name=model))
    if prompt:
        qs = qs.filter(prompt__external_id=prompt)
    if gold is not None:
        qs = qs.filter(gold_verdict__isnull=not gold)
    return qs.annotate(n_ratings=Count("ratings")).order_by("id")


def ratings(
    campaign: Campaign,
    selection: RaterSelection,
    *,
    comparison: int | None = None,
    verdict: str | None = None,
    source: str | None = None,
) -> QuerySet[Rating]:
    """Return the campaign's selected ratings with rater and comparison loaded, filtered."""
    qs = Rating.objects.filter(comparison__campaign=campaign).select_related("rater", "comparison")
    if selection.kind:
        qs = qs.filter(rater_kind=selection.kind)
    if selection.names:
        qs = qs.filter(Q(rater__name__in=selection.names) | Q(rater__pseudonym__in=selection.names))
    for glob in selection.exclude:
        qs = qs.exclude(rater__name__regex=glob_regex(glob))
    if selection.left_out:
        qs = qs.exclude(rater_id__in=selection.left_out_ids)
    if comparison is not None:
        qs = qs.filter(comparison_id=comparison)
    if verdict:
        qs = qs.filter(verdict=verdict)
    if source:
        qs = qs.filter(source=source)
    return qs.order_by("id")


def glob_regex(glob: str) -> str:
    """Translate a shell glob into an anchored PostgreSQL regular expression."""
    special = set(".^$+{}[]()|\\")
    body = "".join(".*" if ch == "*" else "." if ch == "?" else ("\\" + ch if ch in special else ch) for ch in glob)
    return f"^{body}$"


def campaign_summary(campaign: Campaign) -> dict[str, Any]:
    """Return the campaign's settings with its numbers of prompts, comparisons and ratings and its models."""
    models = (
        Output.objects.filter(prompt__campaign=campaign, model_name__isnull=False)
        .values_list("model_name", flat=True)
        .distinct()
        .order_by("model_name")
    )
    return {
        "slug": campaign.slug,
        "name": campaign.name,
        "status": campaign.status,
        "label_scheme": campaign.label_scheme,
        "ratings_per_comparison": campaign.ratings_per_comparison,
        "instructions": campaign.instructions,
        "created_at": campaign.created_at,
        "n_prompts": campaign.prompts.count(),
        "n_comparisons": campaign.comparisons.count(),
        "n_ratings": Rating.objects.filter(comparison__campaign=campaign).count(),
        "models": list(models),
    }
