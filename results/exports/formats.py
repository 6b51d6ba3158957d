"""The four exports: their columns, Arrow types, and the SQL that yields each column or the id to look it up by.

Long texts (prompts, outputs) and the short strings that come with them (question ids, model names, rater names)
are not selected row by row: a column names the prompt, output or rater to take them from (a ``Ref``), so that
PostgreSQL sorts and sends narrow rows and each text is read and escaped once per export, not once per rating that
shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from annotation.models import Campaign
from evalplatform.exceptions import DomainError
from results.raters import RaterSelection
from results.selectors import (
    A_LEFT_SQL,
    OUTPUT_JOINS,
    VALUE_SQL,
    fetch_all,
    inconsistent_judge_pairs,
    ratings_from,
)
from scoring.raters import dawid_skene

AGGREGATES = ("majority", "unanimous", "each", "posterior")
MIN_CONFIDENCE = 0.5  # posterior: the least posterior probability of a pair's verdict for it to be exported
STR, INT, FLOAT, BOOL = "string", "int64", "float64", "bool"
UTC = "utc"  # a timestamptz, written as the string YYYY-MM-DDTHH:MM:SS.ffffffZ

LEFT_SQL = f"CASE WHEN {A_LEFT_SQL} THEN 'a' ELSE 'b' END"
SHOWN_FIRST = f"CASE WHEN {A_LEFT_SQL} THEN c.output_a_id ELSE c.output_b_id END"
SHOWN_SECOND = f"CASE WHEN {A_LEFT_SQL} THEN c.output_b_id ELSE c.output_a_id END"


@dataclass(frozen=True)
class Ref:
    """A column taken from the prompt, output or rater whose id the SQL expression ``key`` gives (NULL gives NULL)."""

    table: Literal["prompt", "output", "rater"]
    field: Literal["text", "external_id", "model_name", "pseudonym", "public_name"]
    key: str


def prompt(field: Literal["text", "external_id"]) -> Ref:
    """Return a column of the rated comparison's prompt."""
    return Ref("prompt", field, "c.prompt_id")


def output(field: Literal["text", "model_name"], key: str) -> Ref:
    """Return a column of the output whose id ``key`` gives."""
    return Ref("output", field, key)


def rater(field: Literal["pseudonym", "public_name"]) -> Ref:
    """Return a column of the rating's rater: its pseudonym, or its public name (the name of a rater without an
    account, such as a judge or an imported rater, else the pseudonym), which every export shows (one rule with
    the reports and the API: ``results.selectors.PUBLIC_RATER_SQL``)."""
    return Ref("rater", field, "r.rater_id")


@dataclass(frozen=True)
class Query:
    """An export's rows: a value (SQL or Ref) per column, selected ``[prefix] SELECT ... source ORDER BY order_by``."""

    select: tuple[str | Ref, ...]
    source: str
    params: list[Any]
    order_by: str
    prefix: str = ""  # a WITH clause, whose parameters come first in params
    skipped: str = ""  # the FROM ... WHERE of rows left out of the file, to count them (same parameters)
    skips_if: str = "TRUE"  # a cheap condition without which no row is left out (so none need counting)
    skipped_what: str = ""  # what the rows left out are, when not the export's ``skipped``


def counted(query: Query) -> str:
    """Return the SQL that counts the rows the query leaves out, or "" if it leaves none out.

    The count is taken only where ``skips_if`` holds: PostgreSQL runs an uncorrelated subquery when it is first
    needed, so a dpo export of a campaign whose texts are all there does not aggregate its ratings twice.
    """
    if not query.skipped:
        return ""
    return f"{query.prefix} SELECT CASE WHEN {query.skips_if} THEN (SELECT count(*) {query.skipped}) ELSE 0 END"


@dataclass(frozen=True)
class ExportFormat:
    """An export: its columns with their Arrow types and the query that yields them in that order.

    ``gate`` rewrites the query under the consistency gate (see ``gated``), and ``gate_columns`` are the columns
    it adds.
    """

    name: str
    columns: tuple[tuple[str, str], ...]
    query: Callable[[Campaign, RaterSelection, str, float], Query]
    aggregates: tuple[str, ...] = ("each",)
    skipped: str = ""  # what the rows its query leaves out are, for the warning that counts them
    gate: Callable[[Query, str], Query] | None = None
    gate_columns: tuple[tuple[str, str], ...] = ()

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]


# --- the consistency gate -------------------------------------------------------------------------------------
# The comparisons a judge decided differently in its two orders (results.selectors.inconsistent_judge_pairs, the
# leaderboard's definition) are a CTE ``gate``; a rating of one of them is IN_GATE. What a tie means depends on the
# dataset: the ratings export keeps both ratings and marks them, arena and alpaca_eval keep one record (the rating
# that showed output_a on the left, as the leaderboard's tally) as a tie, dpo each leaves both out (a tie makes no
# preference pair), and the other dpo policies already count such a rater's vote as a tie.
GATE_CTE = "gate AS (SELECT * FROM unnest(%s::bigint[], %s::bigint[]) AS g(rater_id, comparison_id))"
IN_GATE = "EXISTS (SELECT FROM gate g WHERE g.rater_id = r.rater_id AND g.comparison_id = r.comparison_id)"
SECOND_OF_PAIR = f"({IN_GATE} AND NOT {A_LEFT_SQL})"


def gated(fmt: ExportFormat, query: Query, campaign: Campaign, selection: RaterSelection, policy: str) -> Query:
    """Return the export's format and query under the consistency gate, the gate's pairs read now."""
    if fmt.gate is None:
        return query
    pairs = inconsistent_judge_pairs(campaign, selection)
    prefix = f"WITH {GATE_CTE}" + (f", {query.prefix.strip().removeprefix('WITH')}" if query.prefix else "")
    ids = [[p.rater_id for p in pairs], [p.comparison_id for p in pairs]]
    return fmt.gate(replace(query, prefix=prefix, params=[*ids, *query.params]), policy)


def gated_format(fmt: ExportFormat) -> ExportFormat:
    """Return the format with the columns the consistency gate adds."""
    return replace(fmt, columns=fmt.columns + fmt.gate_columns) if fmt.gate_columns else fmt


def mark_gate(query: Query, policy: str) -> Query:
    """Ratings: add the column ``inconsistent``, true for both ratings of a pair the gate makes a tie."""
    return replace(query, select=(*query.select, IN_GATE))


def one_tie(column: int, tie: str) -> Callable[[Query, str], Query]:
    """Return the gate of an export of one record per rating: a pair's second rating goes, its first is a tie
    (``tie``: the SQL of a tie in the column at index ``column``)."""

    def gate(query: Query, policy: str) -> Query:
        select = list(query.select)
        select[column] = f"CASE WHEN {IN_GATE} THEN {tie} ELSE {select[column]} END"
        return replace(query, select=tuple(select), source=f"{query.source} AND NOT {SECOND_OF_PAIR}")

    return gate


def drop_gate(query: Query, policy: str) -> Query:
    """dpo each: leave out both ratings of a pair the gate makes a tie (a tie is no preference pair)."""
    if policy != "each":
        return query
    keep = f" AND NOT {IN_GATE}"
    return replace(query, source=query.source + keep, skipped=query.skipped + keep if query.skipped else "")


def ratings_query(campaign: Campaign, selection: RaterSelection, aggregate: str, min_confidence: float) -> Query:
    """Return the query of one row per rating, with texts, model names and the rater's public name."""
    source, params = ratings_from(campaign, selection, rater=False)
    select = (
        "r.id",
        "c.id",
        prompt("external_id"),
        prompt("text"),
        "c.output_a_id",
        "c.output_b_id",
        output("model_name", "c.output_a_id"),
        output("model_name", "c.output_b_id"),
        output("text", "c.output_a_id"),
        output("text", "c.output_b_id"),
        rater("public_name"),
        "r.rater_kind",
        "r.source",
        "r.verdict",
        VALUE_SQL,
        output("model_name", "CASE WHEN r.verdict = 'win' THEN r.winner_id END"),
        LEFT_SQL,
        """CASE WHEN r.verdict <> 'win' THEN r.verdict
                WHEN r.winner_id = COALESCE(r.left_output_id, c.output_a_id) THEN 'left' ELSE 'right' END""",
        "r.strength",
        "r.rationale",
        "r.time_ms",
        "r.created_at",
    )
    return Query(select, source, params, "r.id")


RATINGS = ExportFormat(
    name="ratings",
    columns=(
        ("rating_id", INT),
        ("comparison_id", INT),
        ("question_id", STR),
        ("prompt", STR),
        ("output_a_id", INT),
        ("output_b_id", INT),
        ("model_a", STR),
        ("model_b", STR),
        ("output_a", STR),
        ("output_b", STR),
        ("rater", STR),
        ("rater_kind", STR),
        ("source", STR),
        ("verdict", STR),
        ("choice", STR),
        ("winner_model", STR),
        ("shown_left", STR),
        ("choice_side", STR),
        ("strength", INT),
        ("rationale", STR),
        ("time_ms", INT),
        ("created_at", UTC),
    ),
    query=ratings_query,
    gate=mark_gate,
    gate_columns=(("inconsistent", BOOL),),
)


# FastChat's analysis keeps only anonymous battles (models hidden until the vote). Annotators and judges here never
# see model names; an imported battle keeps the ``anony`` its file gave (kept in the rating's metadata), else true.
ANONY_SQL = """CASE WHEN jsonb_typeof(r.metadata -> 'anony') = 'boolean' THEN (r.metadata -> 'anony')::boolean
                    ELSE true END"""


def arena_query(campaign: Campaign, selection: RaterSelection, aggregate: str, min_confidence: float) -> Query:
    """Return the query of one Chatbot Arena battle per rating whose outputs both have a model name."""
    source, params = ratings_from(campaign, selection, joins=OUTPUT_JOINS, rater=False)
    select = (
        f"CASE WHEN {A_LEFT_SQL} THEN xa.model_name ELSE xb.model_name END",
        f"CASE WHEN {A_LEFT_SQL} THEN xb.model_name ELSE xa.model_name END",
        """CASE WHEN r.verdict = 'tie' THEN 'tie' WHEN r.verdict = 'both_bad' THEN 'tie (bothbad)'
                WHEN r.winner_id = COALESCE(r.left_output_id, c.output_a_id) THEN 'model_a' ELSE 'model_b' END""",
        rater("public_name"),
        prompt("external_id"),
        "extract(epoch FROM r.created_at)::float8",
        ANONY_SQL,
        "CASE WHEN r.rater_kind = 'judge' THEN 'llm' ELSE 'human' END",
    )
    named_only = source + " AND xa.model_name IS NOT NULL AND xb.model_name IS NOT NULL"
    return Query(select, named_only, params, "r.id")


ARENA = ExportFormat(
    name="arena",
    columns=(
        ("model_a", STR),
        ("model_b", STR),
        ("winner", STR),
        ("judge", STR),
        ("question_id", STR),
        ("tstamp", FLOAT),
        ("anony", BOOL),
        # human or llm: what `python -m scoring rank FILE --combine ppi` pairs humans' and judges' votes by.
        ("rater_kind", STR),
    ),
    query=arena_query,
    gate=one_tie(2, "'tie'"),
)


def alpaca_eval_query(campaign: Campaign, selection: RaterSelection, aggregate: str, min_confidence: float) -> Query:
    """Return the query of one AlpacaEval annotation per rating: output_1 is the output shown first (left).

    ``annotator_index`` numbers the raters of the campaign from 0 in the order they were created (the same for
    every rater selection).
    """
    source, params = ratings_from(campaign, selection, joins=" JOIN ix ON ix.rater_id = r.rater_id", rater=False)
    prefix = """WITH ix AS (
                   SELECT d.rater_id, row_number() OVER (ORDER BY d.rater_id) - 1 AS annotator_index
                   FROM (SELECT DISTINCT r.rater_id FROM annotation_rating r
                         JOIN annotation_comparison c ON c.id = r.comparison_id WHERE c.campaign_id = %s) d)"""
    select = (
        prompt("text"),
        output("text", SHOWN_FIRST),
        output("text", SHOWN_SECOND),
        output("model_name", SHOWN_FIRST),
        output("model_name", SHOWN_SECOND),
        """CASE WHEN r.verdict <> 'win' THEN 1.5::float8
                WHEN r.winner_id = COALESCE(r.left_output_id, c.output_a_id) THEN 1.0::float8 ELSE 2.0::float8 END""",
        rater("public_name"),
        "ix.annotator_index",
        prompt("external_id"),
        "c.id",
        "r.id",
    )
    return Query(select, source, [campaign.pk, *params], "r.id", prefix)


ALPACA_EVAL = ExportFormat(
    name="alpaca_eval",
    columns=(
        ("instruction", STR),
        ("output_1", STR),
        ("output_2", STR),
        ("generator_1", STR),
        ("generator_2", STR),
        ("preference", FLOAT),
        ("annotator", STR),
        ("annotator_index", INT),
        ("question_id", STR),
        ("comparison_id", INT),
        ("rating_id", INT),
    ),
    query=alpaca_eval_query,
    gate=one_tie(5, "1.5::float8"),
)


def pair(chosen: str, rejected: str, *rest: str | Ref) -> tuple[str | Ref, ...]:
    """Return the columns of a preference pair of the outputs ``chosen`` and ``rejected`` (SQL ids), then rest."""
    texts = (output("text", chosen), output("text", rejected))
    models = (output("model_name", chosen), output("model_name", rejected))
    return (prompt("text"), *texts, *models, prompt("external_id"), "c.id", *rest)


# A preference pair needs a prompt and two answers: a comparison whose prompt or either output has no text (nothing
# but white space; MT-Bench battles imported without their conversations) makes no pair. Each text is read once.
NO_TEXT_PREFIX = """WITH blank_prompt AS MATERIALIZED (
                        SELECT t.id FROM annotation_prompt t WHERE t.campaign_id = %s AND t.text !~ '[^[:space:]]'),
                    blank_output AS MATERIALIZED (
                        SELECT t.id FROM annotation_output t JOIN annotation_prompt p ON p.id = t.prompt_id
                        WHERE p.campaign_id = %s AND t.text !~ '[^[:space:]]')"""
NO_TEXT = """(c.prompt_id IN (SELECT id FROM blank_prompt) OR c.output_a_id IN (SELECT id FROM blank_output)
              OR c.output_b_id IN (SELECT id FROM blank_output))"""
ANY_NO_TEXT = "(EXISTS (SELECT FROM blank_prompt) OR EXISTS (SELECT FROM blank_output))"
NO_TEXT_WARNING = "preference pairs whose prompt, chosen or rejected text is empty"


# One vote per rater and comparison (a judge rates both orders): the rater's common value when their ratings agree,
# "tie" when they contradict each other, as in the agreement report (results.agreement.collapse).
RATER_VALUE_SQL = f"CASE WHEN min({VALUE_SQL}) = max({VALUE_SQL}) THEN min({VALUE_SQL}) ELSE 'tie' END"
VERDICT_CLASSES = ("a", "tie", "both_bad", "b")


def dpo_query(campaign: Campaign, selection: RaterSelection, aggregate: str, min_confidence: float) -> Query:
    """Return the query of TRL preference pairs under an aggregation policy (see AGGREGATES), without the pairs
    whose texts are empty.

    majority and unanimous count raters, not ratings: ``n_ratings`` is the number of raters of the comparison and
    the votes columns count raters, each rater's several ratings of it making one vote.
    """
    if aggregate == "each":
        return dpo_each_query(campaign, selection)
    if aggregate == "posterior":
        return dpo_posterior_query(campaign, selection, min_confidence)
    source, params = ratings_from(campaign, selection, rater=False)
    keep = "(v.a * 2 > v.n OR v.b * 2 > v.n)" if aggregate == "majority" else "(v.a = v.n OR v.b = v.n)"
    prefix = f"""{NO_TEXT_PREFIX}, {votes_cte(source)}"""
    chosen = "CASE WHEN v.a > v.b THEN c.output_a_id ELSE c.output_b_id END"
    rejected = "CASE WHEN v.a > v.b THEN c.output_b_id ELSE c.output_a_id END"
    policy = {"majority": "'majority'", "unanimous": "'unanimous'"}[aggregate]
    select = pair(
        chosen, rejected, policy, "v.n", "GREATEST(v.a, v.b)", "LEAST(v.a, v.b)", "v.t", "v.bb", "NULL", "NULL", "NULL"
    )
    pairs = f"FROM v JOIN annotation_comparison c ON c.id = v.id WHERE {keep}"
    return Query(
        select,
        f"{pairs} AND NOT {NO_TEXT}",
        [campaign.pk, campaign.pk, *params],
        "c.id",
        prefix,
        skipped=f"{pairs} AND {NO_TEXT}",
        skips_if=ANY_NO_TEXT,
    )


def votes_cte(source: str) -> str:
    """Return the CTEs rv (one vote per rater and comparison) and v (each comparison's counts of votes)."""
    return f"""rv AS (
                   SELECT r.comparison_id AS id, {RATER_VALUE_SQL} AS value
                   {source} GROUP BY r.comparison_id, r.rater_id),
                 v AS (
                   SELECT id, count(*) AS n, count(*) FILTER (WHERE value = 'a') AS a,
                          count(*) FILTER (WHERE value = 'b') AS b, count(*) FILTER (WHERE value = 'tie') AS t,
                          count(*) FILTER (WHERE value = 'both_bad') AS bb
                   FROM rv GROUP BY id)"""


def dpo_posterior_query(campaign: Campaign, selection: RaterSelection, min_confidence: float) -> Query:
    """Return the query of preference pairs whose verdict is the most probable one under the Dawid-Skene model of
    the selected raters (``scoring.raters.dawid_skene`` over the verdicts a, tie, both_bad, b; each rater's ratings
    of a comparison one vote), with its posterior probability as ``confidence``.

    Comparisons whose most probable verdict is a tie or both bad make no pair; a pair whose confidence is below
    ``min_confidence``, or whose texts are empty, is left out and counted. The model is fitted before the export's
    rows are read.
    """
    source, params = ratings_from(campaign, selection, rater=False)
    triples = fetch_all(f"SELECT r.comparison_id, r.rater_id, {RATER_VALUE_SQL} {source} GROUP BY 1, 2", params)
    model = dawid_skene(triples, classes=VERDICT_CLASSES)
    labels, confidence = model.labels(), model.confidence()
    decided = sorted((int(str(u)), labels[u] == "a", confidence[u]) for u in model.units if labels[u] in ("a", "b"))
    ids, a_chosen, probability = [list(column) for column in zip(*decided, strict=True)] if decided else [[], [], []]
    confident = [p >= min_confidence for p in probability]
    prefix = f"""{NO_TEXT_PREFIX}, {votes_cte(source)},
                 p AS (SELECT * FROM unnest(%s::bigint[], %s::boolean[], %s::float8[], %s::boolean[])
                                AS p(id, a_chosen, confidence, confident))"""
    chosen = "CASE WHEN p.a_chosen THEN c.output_a_id ELSE c.output_b_id END"
    rejected = "CASE WHEN p.a_chosen THEN c.output_b_id ELSE c.output_a_id END"
    votes_chosen = "CASE WHEN p.a_chosen THEN v.a ELSE v.b END"
    votes_rejected = "CASE WHEN p.a_chosen THEN v.b ELSE v.a END"
    select = pair(
        chosen, rejected, "'posterior'", "v.n", votes_chosen, votes_rejected, "v.t", "v.bb", "NULL", "NULL",
        "p.confidence",
    )  # fmt: skip
    pairs = "FROM p JOIN v ON v.id = p.id JOIN annotation_comparison c ON c.id = p.id"
    return Query(
        select,
        f"{pairs} WHERE p.confident AND NOT {NO_TEXT}",
        [campaign.pk, campaign.pk, *params, ids, a_chosen, probability, confident],
        "c.id",
        prefix,
        skipped=f"{pairs} WHERE NOT p.confident OR {NO_TEXT}",
        skips_if="TRUE" if not all(confident) else ANY_NO_TEXT,
        skipped_what=f"preference pairs whose posterior confidence is below {min_confidence:g} or whose prompt,"
        " chosen or rejected text is empty",
    )


def dpo_each_query(campaign: Campaign, selection: RaterSelection) -> Query:
    """Return the query of one preference pair per decisive rating, without the pairs whose texts are empty."""
    source, params = ratings_from(campaign, selection, rater=False)
    rejected = "CASE WHEN r.winner_id = c.output_a_id THEN c.output_b_id ELSE c.output_a_id END"
    select = pair("r.winner_id", rejected, "'each'", "1", "1", "0", "0", "0", rater("public_name"), "r.id", "NULL")
    decisive = source + " AND r.verdict = 'win'"
    return Query(
        select,
        f"{decisive} AND NOT {NO_TEXT}",
        [campaign.pk, campaign.pk, *params],
        "r.id",
        NO_TEXT_PREFIX,
        skipped=f"{decisive} AND {NO_TEXT}",
        skips_if=ANY_NO_TEXT,
    )


DPO = ExportFormat(
    name="dpo",
    columns=(
        ("prompt", STR),
        ("chosen", STR),
        ("rejected", STR),
        ("chosen_model", STR),
        ("rejected_model", STR),
        ("question_id", STR),
        ("comparison_id", INT),
        ("policy", STR),
        ("n_ratings", INT),
        ("votes_chosen", INT),
        ("votes_rejected", INT),
        ("votes_tie", INT),
        ("votes_both_bad", INT),
        ("rater", STR),
        ("rating_id", INT),
        ("confidence", FLOAT),
    ),
    query=dpo_query,
    aggregates=AGGREGATES,
    skipped=NO_TEXT_WARNING,
    gate=drop_gate,
)

FORMATS = {f.name: f for f in (RATINGS, ARENA, DPO, ALPACA_EVAL)}


def export_format(name: str, aggregate: str | None, min_confidence: float | None = None) -> tuple[ExportFormat, str]:
    """Return the named export and the aggregation policy to use, raising DomainError for bad names, or for a
    ``min_confidence`` outside [0, 1] or given without the posterior policy."""
    if name not in FORMATS:
        raise DomainError(f"format: unknown export {name!r}; use one of {', '.join(FORMATS)}", field="format")
    fmt = FORMATS[name]
    policy = aggregate or fmt.aggregates[0]
    if policy not in fmt.aggregates:
        allowed = ", ".join(fmt.aggregates)
        raise DomainError(f"aggregate: {name} exports take {allowed}, not {policy!r}", field="aggregate")
    if min_confidence is not None:
        if policy != "posterior":
            raise DomainError("min_confidence: only the posterior aggregation takes it", field="min_confidence")
        if not 0.0 <= min_confidence <= 1.0:
            raise DomainError(f"min_confidence: {min_confidence} is not between 0 and 1", field="min_confidence")
    return fmt, policy
