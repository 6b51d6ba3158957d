"""The judge validation report: how far one judge can be trusted, per configuration version (docs/guide.md).

Per version of the judge's request-relevant settings (judging.versions; ratings made before versions were
recorded, or imported, are "unversioned"), over the campaigns in scope:

- agreement and Cohen's kappa with the human majority and with gold, with intervals, and the human-human ceiling
  on the same comparisons (results.agreement.judge_report);
- position: consistency across the two orders, and the share of decisive verdicts that chose the answer shown
  first, with its excess over 0.5 (2 share - 1, the chance of picking the first regardless);
- stability: the flip rate across repeated runs (judge --repeat) and how many repeats a stable majority needs;
- length bias: the logistic slope of "output a wins" against ln(1 + words a) - ln(1 + words b), the judge's and the
  humans' on the same comparisons;
- self-preference: on comparisons where exactly one output is of the judge's family, the judge's score for that
  output (win 1, tie 0.5, loss 0) against the humans' mean score on the same comparisons.

Statistics are scoring.judge_audit's and scoring.position's; this module loads plain rows for them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import connection
from django.db.models import Max, Min, QuerySet
from django.db.models.fields.json import KT

import scoring
from annotation.models import Campaign, Rating
from evalplatform.exceptions import NotFound
from judging.access import access_judges
from judging.models import JudgeConfig, JudgeRun, JudgeVerdict, ModelFamily
from judging.versions import config_version, family_of, judge_family
from results.access import access_campaign_results, researcher_campaigns
from results.agreement import collapse, finite_or_none, finite_pair, metric
from results.agreement import judge_report as agreement_with_humans
from results.rater_exclusions import with_exclusions
from results.raters import RaterSelection, parse_raters
from results.selectors import RatingRow, rating_rows
from scoring.judge_audit import Z95, LogisticSlope, logistic_slope, paired_means, stability
from scoring.position import wilson_interval

UNVERSIONED = "unversioned"
MAX_BOOTSTRAP = 2000
SCORE = {"win": 1.0, "tie": 0.5, "both_bad": 0.5, "loss": 0.0}

# Words as Python's str.split() counts them (runs of non-space), and each output's model, per comparison.
_OUTPUTS = r"""
    SELECT c.id, regexp_count(a.text, '\S+'), regexp_count(b.text, '\S+'), a.model_name, b.model_name
    FROM annotation_comparison c
    JOIN annotation_output a ON a.id = c.output_a_id
    JOIN annotation_output b ON b.id = c.output_b_id
    WHERE c.campaign_id = ANY(%s)
"""


@dataclass(frozen=True)
class OutputFacts:
    words_a: int
    words_b: int
    model_a: str | None
    model_b: str | None


def access_judge_report(
    *, user: AbstractBaseUser | AnonymousUser, judge: str, campaign: str | None
) -> tuple[JudgeConfig, list[Campaign]]:
    """Return the judge (by name, else by id) and the campaigns of its report, if the user may read them.

    The judge must be one the user may use (their own or the operator's; NotFound otherwise, as for a judge that
    does not exist); the campaign one whose results the user reads (403 for its annotators, else 404); without a
    campaign, every campaign whose results the user reads and the judge rated.
    """
    judges = access_judges(user=cast(User, user))
    if "\x00" in judge:  # no judge is so named, and PostgreSQL refuses the character in a query
        raise NotFound(f"No judge {judge!r} that you may use.")
    found = judges.filter(name=judge).first()
    if found is None and judge.isascii() and judge.isdigit() and len(judge) < 18:
        found = judges.filter(pk=int(judge)).first()
    if found is None:
        raise NotFound(f"No judge {judge!r} that you may use.")
    if campaign is not None:
        return found, [access_campaign_results(user=user, slug=campaign)]
    return found, list(report_campaigns(found, researcher_campaigns(user)))


def report_campaigns(judge: JudgeConfig, visible: QuerySet[Campaign]) -> QuerySet[Campaign]:
    """Return the campaigns among `visible` where the judge has verdicts or ratings."""
    judged = JudgeVerdict.objects.filter(judge=judge).values("comparison__campaign")
    rated = Rating.objects.filter(rater_id=judge.rater_id).values("comparison__campaign")
    return visible.filter(pk__in=judged.union(rated)).order_by("slug")


def build_report(
    judge: JudgeConfig, campaigns: Sequence[Campaign], *, bootstrap: int = 500, seed: int = 0
) -> dict[str, Any]:
    """Return the judge report over the campaigns, one section per configuration version, oldest first."""
    bootstrap = max(0, min(bootstrap, MAX_BOOTSTRAP))
    campaign_ids = [c.pk for c in campaigns]
    # Every rater but those the campaign's researchers excluded from results (the judge itself is never excluded
    # here: a report on an excluded judge still shows its ratings).
    rows = [
        row
        for campaign in campaigns
        for row in rating_rows(campaign, with_exclusions(parse_raters("all"), campaign))
        if row.kind == "human" or row.rater_id != judge.rater_id
    ]
    rows += [row for campaign in campaigns for row in rating_rows(campaign, RaterSelection(names=(judge.name,)))]
    humans = [r for r in rows if r.kind == "human"]
    own = [r for r in rows if r.rater_id == judge.rater_id]
    version_of = _rating_versions(judge, campaign_ids)
    families = list(ModelFamily.objects.all())
    family = judge_family(judge, families)
    facts = _output_facts(campaign_ids)
    verdicts = _verdicts(judge, campaign_ids)
    runs = _runs(judge, campaign_ids)
    versions = sorted(
        {version_of.get(r.rating_id, UNVERSIONED) for r in own} | set(runs) | {v for v, *_ in verdicts},
        key=lambda v: (runs[v]["first_run"] if v in runs else "", v),
    )
    context = Context(humans, facts, family, families, bootstrap, seed)
    return {
        "judge": judge.name,
        "model": judge.model,
        "family": family,
        "current_version": config_version(judge),
        "campaigns": [c.slug for c in campaigns],
        "n_human_ratings": len(humans),
        "versions": [
            version_section(
                version,
                [r for r in own if version_of.get(r.rating_id, UNVERSIONED) == version],
                [v for v in verdicts if v[0] == version],
                runs.get(version),
                context,
                judge_name=judge.name,
            )
            for version in versions
        ],
    }


@dataclass(frozen=True)
class Context:
    humans: list[RatingRow]
    facts: dict[int, OutputFacts]
    family: str | None
    families: list[ModelFamily]
    bootstrap: int
    seed: int


Verdict = tuple[str, int, int, str, str]  # version, repeat, comparison id, order, outcome


def version_section(
    version: str,
    judge_rows: list[RatingRow],
    verdicts: list[Verdict],
    runs: dict[str, Any] | None,
    context: Context,
    *,
    judge_name: str,
) -> dict[str, Any]:
    """Return one configuration version's figures."""
    rng = np.random.default_rng(context.seed)
    section: dict[str, Any] = {"version": version, "runs": runs or {"count": 0}, "n_ratings": len(judge_rows)}
    agreement = agreement_with_humans(
        judge_name, judge_rows, context.humans, bootstrap=context.bootstrap, seed=context.seed
    )
    for key in ("with_ties", "without_ties"):
        with_interval(agreement["agreement_with_human_majority"][key])
    with_interval(agreement["position_consistency"])
    section["humans"] = agreement
    section["gold"] = gold_agreement(judge_rows, context.bootstrap, rng)
    rating_verdicts = [v for v in verdicts if v[1] == 0]
    section["position"] = position_section(rating_verdicts or verdicts_of_ratings(version, judge_rows))
    section["stability"] = stability_section(verdicts, context.bootstrap, rng)
    section["length"] = length_section(judge_rows, context)
    section["self_preference"] = self_preference_section(judge_rows, context, rng)
    return section


def with_interval(share: dict[str, Any]) -> dict[str, Any]:
    """Add the 95% Wilson interval to a {agree, n, value} share."""
    share["ci"] = finite_pair(wilson_interval(share["agree"], share["n"])) if share["n"] else None
    return share


def gold_agreement(judge_rows: Sequence[RatingRow], bootstrap: int, rng: np.random.Generator) -> dict[str, Any]:
    """Return the judge's agreement and Cohen's kappa with the gold verdicts of the comparisons it rated."""
    gold = {r.comparison_id: _tie_class(r.gold) for r in judge_rows if r.gold}
    judged = {unit: _tie_class(value) for unit, _, value in collapse(judge_rows) if unit in gold}
    units = sorted(judged)
    agree = sum(judged[u] == gold[u] for u in units)
    kappa_input = [(u, "judge", judged[u]) for u in units] + [(u, "gold", gold[u]) for u in units]
    return {
        "agreement": with_interval({"agree": agree, "n": len(units), "value": agree / len(units) if units else None}),
        "cohen_kappa": metric("cohen_kappa", kappa_input, bootstrap, rng),
    }


def verdicts_of_ratings(version: str, rows: Sequence[RatingRow]) -> list[Verdict]:
    """Return ratings made without verdicts (imported) as positional verdicts: A when the output shown left won."""
    verdicts = []
    for row in rows:
        outcome = row.value if row.value not in ("a", "b") else ("A" if (row.value == "a") == row.a_left else "B")
        verdicts.append((version, 0, row.comparison_id, "ab" if row.a_left else "ba", outcome))
    return verdicts


def position_section(verdicts: Sequence[Verdict]) -> dict[str, Any]:
    """Return the left (first) preference with its interval and excess, and the consistency across orders."""
    labels = {"A": "model_a", "B": "model_b"}
    by_comparison: dict[int, dict[str, str]] = defaultdict(dict)
    for _, _, comparison_id, order, outcome in verdicts:
        by_comparison[comparison_id][order] = labels.get(outcome, "tie")
    first = scoring.position_bias(label for orders in by_comparison.values() for label in orders.values())
    pairs = [(o["ab"], o["ba"]) for o in by_comparison.values() if len(o) == 2]
    consistency = scoring.position_consistency(pairs)
    return {
        "first_preference": {
            "value": finite_or_none(first.value), "ci": finite_pair((first.lower, first.upper)),
            "first": first.left, "second": first.right, "ties": first.ties,
        },
        "first_excess": {
            "value": finite_or_none(2 * first.value - 1), "ci": finite_pair((2 * first.lower - 1, 2 * first.upper - 1)),
        },
        "consistency": {
            "value": finite_or_none(consistency.value), "ci": finite_pair((consistency.lower, consistency.upper)),
            "pairs": consistency.pairs, "consistent": consistency.consistent,
            "first_both_times": consistency.favours_first, "second_both_times": consistency.favours_second,
        },
    }  # fmt: skip


def stability_section(verdicts: Sequence[Verdict], bootstrap: int, rng: np.random.Generator) -> dict[str, Any]:
    """Return the flip rate over verdicts judged in the main run and repeats, and the repeats a majority needs."""
    outcomes: dict[tuple[int, str], list[str]] = defaultdict(list)
    for _, _, comparison_id, order, outcome in verdicts:
        outcomes[comparison_id, order].append(outcome)
    result = stability(list(outcomes.values()), bootstrap=bootstrap, rng=rng)
    return {
        "repeats": len({repeat for _, repeat, *_ in verdicts} - {0}),
        "items": result.items,
        "runs_per_item": finite_or_none(result.runs_per_item),
        "flip_rate": {"value": finite_or_none(result.flip_rate), "ci": finite_pair((result.lower, result.upper))},
        "unstable_share": finite_or_none(result.unstable_share),
        "minority_share": finite_or_none(result.minority_share),
        "repeats_for_stable_majority": result.repeats_for_majority,
        "target": result.target,
    }


def length_section(judge_rows: Sequence[RatingRow], context: Context) -> dict[str, Any]:
    """Return the judge's and the humans' length slopes on the comparisons the judge rated."""
    judged = {r.comparison_id for r in judge_rows}
    judge_fit = _length_slope(judge_rows, context.facts)
    human_fit = _length_slope([r for r in context.humans if r.comparison_id in judged], context.facts)
    difference = judge_fit.slope - human_fit.slope
    se = float(np.hypot(judge_fit.se, human_fit.se))
    interval = (difference - Z95 * se, difference + Z95 * se)
    return {
        "scale": "ln(1 + words of output a) - ln(1 + words of output b)",
        "judge": _slope_payload(judge_fit),
        "humans": _slope_payload(human_fit),
        "difference": {"value": finite_or_none(difference), "ci": finite_pair(interval)},
    }


def _length_slope(rows: Iterable[RatingRow], facts: dict[int, OutputFacts]) -> LogisticSlope:
    x, y, clusters = [], [], []
    for row in rows:
        fact = facts.get(row.comparison_id)
        if fact is None or row.value not in ("a", "b"):
            continue
        x.append(float(np.log1p(fact.words_a) - np.log1p(fact.words_b)))
        y.append(row.value == "a")
        clusters.append(row.comparison_id)
    return logistic_slope(x, y, clusters=clusters)


def _slope_payload(fit: LogisticSlope) -> dict[str, Any]:
    return {
        "slope": finite_or_none(fit.slope), "ci": finite_pair((fit.lower, fit.upper)),
        "p_value": finite_or_none(fit.p_value), "decisive_ratings": fit.n, "comparisons": fit.clusters,
    }  # fmt: skip


def self_preference_section(
    judge_rows: Sequence[RatingRow], context: Context, rng: np.random.Generator
) -> dict[str, Any]:
    """Return the judge's and the humans' scores for the judge family's output on the comparisons both rated."""
    if context.family is None:
        return {"family": None, "undefined": "the judge has no model family (see Model families in the admin)"}
    own_side = {}
    in_family: dict[str | None, bool] = {}  # a campaign has few models: match each name once
    for comparison_id, fact in context.facts.items():
        sides = []
        for model in (fact.model_a, fact.model_b):
            if model not in in_family:
                in_family[model] = family_of(model, context.families) == context.family
            sides.append(in_family[model])
        if sides[0] != sides[1]:
            own_side[comparison_id] = "a" if sides[0] else "b"
    judge = {u: _own_score(v, own_side[u]) for u, _, v in collapse(judge_rows) if u in own_side}
    human_scores: dict[int, list[float]] = defaultdict(list)
    for unit, _, value in collapse(context.humans):
        if unit in judge:
            human_scores[unit].append(_own_score(value, own_side[unit]))
    units = sorted(human_scores)
    result = paired_means(
        [judge[u] for u in units], [float(np.mean(human_scores[u])) for u in units], bootstrap=context.bootstrap,
        rng=rng,
    )  # fmt: skip
    return {
        "family": context.family,
        "comparisons": result.items,
        "judge": {"value": finite_or_none(result.judge), "ci": finite_pair(result.judge_ci)},
        "humans": {"value": finite_or_none(result.humans), "ci": finite_pair(result.humans_ci)},
        "difference": {"value": finite_or_none(result.difference), "ci": finite_pair(result.difference_ci)},
    }


def _own_score(value: str, own: str) -> float:
    if value in ("a", "b"):
        return SCORE["win"] if value == own else SCORE["loss"]
    return SCORE[value]


def _tie_class(value: str) -> str:
    return "tie" if value == "both_bad" else value


# --- loading -----------------------------------------------------------------------------------------------------


def _rating_versions(judge: JudgeConfig, campaign_ids: list[int]) -> dict[int, str]:
    rows = JudgeVerdict.objects.filter(
        judge=judge, comparison__campaign_id__in=campaign_ids, rating__isnull=False
    ).values_list("rating_id", "run__config_version")
    return {rating_id: version or UNVERSIONED for rating_id, version in rows if rating_id is not None}


def _verdicts(judge: JudgeConfig, campaign_ids: list[int]) -> list[Verdict]:
    rows = JudgeVerdict.objects.filter(
        judge=judge, comparison__campaign_id__in=campaign_ids, state=JudgeVerdict.State.DONE
    ).values_list("run__config_version", "repeat", "comparison_id", "order", KT("parsed__outcome"))
    return [(version or UNVERSIONED, repeat, c, order, str(outcome)) for version, repeat, c, order, outcome in rows]


def _runs(judge: JudgeConfig, campaign_ids: list[int]) -> dict[str, dict[str, Any]]:
    rows = (
        JudgeRun.objects.filter(judge=judge, campaign_id__in=campaign_ids)
        .values("config_version")
        .annotate(first=Min("created_at"), last=Max("created_at"), repeat=Max("repeat"))
    )
    runs: dict[str, dict[str, Any]] = {}
    for row in rows:
        version = row["config_version"] or UNVERSIONED
        ids = JudgeRun.objects.filter(judge=judge, campaign_id__in=campaign_ids, config_version=row["config_version"])
        details = list(ids.order_by("created_at").values("id", "repeat", "temperature", "seed", "status", "created_at"))
        runs[version] = {
            "count": len(details),
            "first_run": row["first"].isoformat(),
            "last_run": row["last"].isoformat(),
            "list": [{**d, "created_at": d["created_at"].isoformat()} for d in details[-50:]],
        }
    return runs


def _output_facts(campaign_ids: list[int]) -> dict[int, OutputFacts]:
    with connection.cursor() as cursor:
        cursor.execute(_OUTPUTS, [campaign_ids])
        return {row[0]: OutputFacts(int(row[1]), int(row[2]), row[3], row[4]) for row in cursor.fetchall()}
