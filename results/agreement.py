"""Agreement reports of a campaign: human-human, each judge against the humans, per annotator, rater by rater.

Conventions (documented in docs/scoring.md, "How the platform applies them", and docs/guide.md):
- unit = comparison; value = the rating's verdict relative to the comparison's stored outputs ("a", "b", "tie",
  "both_bad"), never the shown side, so votes given in either order are comparable;
- a rater with several ratings of one comparison (judges rate both orders) counts once for unit-level metrics:
  their common value when the ratings agree, "tie" when they contradict each other (MT-Bench's convention for
  inconsistent judges); MT-Bench vote-pair agreement instead pairs every vote, as the paper does;
- MT-Bench agreement counts "both_bad" as a tie (the paper has three classes); the ordinal scale for Krippendorff's
  alpha is a < tie = both_bad < b (both_bad sits with tie: neither output is preferred).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

import scoring
from annotation.models import Campaign
from results.agreement_counts import (
    TIE_CLASS,
    B,
    Collapsed,
    annotator_reports,
    by_rater,
    collapse_arrays,
    consensus,
    gate,
    position_consistency_arrays,
    rater_heatmap,
    share,
    strict_modes,
)
from results.leaderboards import cache_key, cached
from results.rater_quality import posterior_summary
from results.raters import RaterSelection
from results.selectors import VALUES, RatingArrays, RatingRow, rating_arrays, ratings_version
from scoring.ratings import RatingCodes, rating_codes

Triple = tuple[int, str, str]
ORDINAL = {"a": 0, "tie": 1, "both_bad": 1, "b": 2}
DECISIVE = ("a", "b")
ORDINAL_CODES = np.array([ORDINAL[v] for v in VALUES], np.int64)


def campaign_agreement(
    campaign: Campaign, selection: RaterSelection, *, bootstrap: int = 200, seed: int = 0, consistent: bool = False
) -> dict[str, Any]:
    """Return the campaign's agreement report, from the cache when the ratings are unchanged."""
    version = ratings_version()
    key = cache_key("agreement", campaign.pk, selection.key, bootstrap, seed, consistent, version.key)
    return dict(
        cached(
            key,
            lambda: compute_agreement(campaign, selection, bootstrap=bootstrap, seed=seed, consistent=consistent),
        )
    )


def compute_agreement(
    campaign: Campaign, selection: RaterSelection, *, bootstrap: int = 200, seed: int = 0, consistent: bool = False
) -> dict[str, Any]:
    """Compute the agreement report from the campaign's selected ratings.

    ``consistent`` is the consistency gate (the leaderboard's): the two ratings of a comparison a judge decided
    differently in its two orders count as one rating, a tie (see ``gate``). Position consistency is still measured
    on the ratings as given, since it is what the gate hides. The ratings are read as compact numpy columns
    (``results.selectors.rating_arrays``) and every figure is counted with numpy, so memory grows by about 19
    bytes a rating and no per-rating Python object is kept.
    """
    given = rating_arrays(campaign, selection)
    rows, gated = gate(given) if consistent else (given, 0)
    everyone = collapse_arrays(rows)
    is_human = np.array([kind == "human" for kind in rows.kinds], dtype=bool)
    humans = rows.take(is_human[rows.rater]) if len(rows.kinds) else rows
    human_triples = everyone.take(is_human[everyone.rater]) if len(rows.kinds) else everyone
    report = human_agreement(humans, human_triples, bootstrap=bootstrap, seed=seed)
    report.update(campaign=campaign.slug, raters=selection.key)
    if consistent:
        report.update(consistent=True, inconsistent_pairs=gated)
    own, own_given = by_rater(rows), by_rater(given)
    report["judges"] = [
        judge_section(
            rows.raters[code],
            own[code],
            humans,
            human_triples,
            bootstrap=bootstrap,
            seed=seed,
            given=own_given[code],
        )
        for code in sorted(own)
        if rows.kinds[code] == "judge"
    ]
    report["annotators"] = annotator_reports(rows, everyone)
    report["rater_heatmap"] = rater_heatmap(everyone, rows.raters)
    report["rater_model"] = posterior_summary(everyone.codes(rows.raters))
    return report


def human_agreement(rows: RatingArrays, triples: Collapsed, *, bootstrap: int, seed: int) -> dict[str, Any]:
    """Return the human-human metrics, each with its bootstrap interval over comparisons."""
    nominal = triples.codes(rows.raters)
    ordinal = rating_codes(
        triples.unit, triples.rater, ORDINAL_CODES[triples.value], raters=rows.raters, categories=(0, 1, 2)
    )
    rng = np.random.default_rng(seed)
    return {
        "n_units": len(np.unique(triples.unit)),
        "n_raters": len(np.unique(triples.rater)),
        "n_ratings": len(rows),
        "krippendorff_alpha": {
            "nominal": metric("krippendorff_alpha", nominal, bootstrap, rng, level="nominal"),
            "ordinal": metric("krippendorff_alpha", ordinal, bootstrap, rng, level="ordinal"),
        },
        "fleiss_kappa": metric("fleiss_kappa", nominal, bootstrap, rng),
        "percent_agreement": metric("percent_agreement", nominal, bootstrap, rng),
        "mtbench_agreement": mtbench(vote_codes(rows), bootstrap, rng),
        "loo_mode_agreement": metric("loo_mode_agreement", nominal, bootstrap, rng, max_per_unit=4),
    }


def vote_codes(rows: RatingArrays) -> RatingCodes:
    """Return every vote as RatingCodes with both_bad counted as a tie (as ``mtbench_votes``)."""
    return rating_codes(rows.comparison, rows.rater, TIE_CLASS[rows.value], raters=rows.raters, categories=VALUES)


def collapse(rows: Iterable[RatingRow]) -> list[Triple]:
    """Return one (unit, rater, value) per rater and comparison; contradicting repeat ratings become "tie"."""
    values: dict[tuple[int, str], set[str]] = defaultdict(set)
    for row in rows:
        values[(row.comparison_id, row.rater)].add(row.value)
    return [(unit, rater, next(iter(v)) if len(v) == 1 else "tie") for (unit, rater), v in values.items()]


def mtbench_votes(rows: Iterable[RatingRow]) -> list[Triple]:
    """Return every vote as (unit, rater, value) with both_bad counted as a tie."""
    return [(r.comparison_id, r.rater, "tie" if r.value == "both_bad" else r.value) for r in rows]


def mtbench(votes: Sequence[Triple] | RatingCodes, bootstrap: int, rng: Any) -> dict[str, Any]:
    """Return MT-Bench vote-pair agreement split into with_ties and without_ties, each with counts and interval."""
    both = metric("mtbench_agreement", votes, bootstrap, rng, ties=("tie", "both_bad"))
    if both["value"] is None and "pairs" not in both:
        return {"with_ties": both, "without_ties": dict(both)}
    return {
        "with_ties": {"value": both["value"], "agree": both["agree"], "pairs": both["pairs"], "ci": both["ci"]},
        "without_ties": {
            "value": finite_or_none(both["value_without_ties"]),
            "agree": both["agree_without_ties"],
            "pairs": both["pairs_without_ties"],
            "ci": finite_pair(both["ci_without_ties"]),
        },
    }


def metric(
    name: str, triples: Sequence[tuple[int, str, Any]] | RatingCodes, bootstrap: int, rng: Any, **options: Any
) -> dict[str, Any]:
    """Compute one scoring metric with its bootstrap interval as a JSON-ready dict (value None when undefined)."""
    data = triples if isinstance(triples, RatingCodes) else list(triples)
    try:
        result = getattr(scoring, name)(data, bootstrap=bootstrap, rng=rng, **options)
    except ValueError as exc:  # too few raters or units: the metric is undefined, say why
        return {"value": None, "ci": None, "undefined": str(exc)}
    return as_payload(result)


def as_payload(result: Any) -> dict[str, Any]:
    """Return a scoring result as a JSON-ready dict: value, ci, and counts (agree, pairs...) inlined."""
    if hasattr(result, "to_dict"):
        payload = dict(result.to_dict())
    else:
        payload = {k: getattr(result, k) for k in result.__dataclass_fields__ if k != "counts"}
        payload.update(dict(result.counts))
    payload["value"] = finite_or_none(payload.get("value"))
    payload["ci"] = finite_pair(payload.get("ci"))
    for key in ("observed", "expected"):
        if key in payload:
            payload[key] = finite_or_none(payload[key])
    return payload


def finite_pair(pair: Sequence[Any] | None) -> list[float | None] | None:
    """Return an interval as a JSON-ready pair."""
    return None if pair is None else [finite_or_none(pair[0]), finite_or_none(pair[1])]


def finite_or_none(value: Any) -> float | None:
    """Return a rounded float, or None for a missing or nan value."""
    if value is None:
        return None
    number = float(value)
    return None if np.isnan(number) else round(number, 6)


def strict_mode(values: Iterable[str]) -> str | None:
    """Return the most common value when it is strictly more common than every other, else None."""
    ranked = Counter(values).most_common(2)
    if not ranked or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]


def agreement_counts(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Return agreement with and without ties over (first, second) value pairs, with counts."""
    pairs = list(pairs)
    decisive = [(x, y) for x, y in pairs if x in DECISIVE and y in DECISIVE]
    return {
        "with_ties": share(sum(x == y for x, y in pairs), len(pairs)),
        "without_ties": share(sum(x == y for x, y in decisive), len(decisive)),
    }


def tie_class(value: str) -> str:
    return "tie" if value == "both_bad" else value


def judge_report(
    name: str,
    judge_rows: Sequence[RatingRow],
    humans: Sequence[RatingRow],
    *,
    bootstrap: int,
    seed: int,
    given: Sequence[RatingRow] | None = None,
) -> dict[str, Any]:
    """Compare one judge with the human majority on the comparisons both rated; give the human ceiling there.

    ``given``: the judge's ratings before the consistency gate, for its position consistency (default judge_rows).
    """
    judge = {unit: tie_class(value) for unit, _, value in collapse(judge_rows)}
    by_unit: dict[int, list[str]] = defaultdict(list)
    for unit, _, value in collapse(humans):
        if unit in judge:
            by_unit[unit].append(tie_class(value))
    majority = {unit: m for unit, values in by_unit.items() if (m := strict_mode(values)) is not None}
    pairs = [(judge[u], majority[u]) for u in sorted(majority)]
    shared_humans = [r for r in humans if r.comparison_id in judge]
    rng = np.random.default_rng(seed)
    kappa_input = [(u, "judge", judge[u]) for u in sorted(majority)]
    kappa_input += [(u, "humans", majority[u]) for u in sorted(majority)]
    return {
        "judge": name,
        "n_comparisons": len(judge),
        "n_with_human_majority": len(majority),
        "agreement_with_human_majority": agreement_counts(pairs),
        "cohen_kappa": metric("cohen_kappa", kappa_input, bootstrap, rng),
        "human_ceiling": {
            "mtbench_agreement": mtbench(mtbench_votes(shared_humans), bootstrap, rng),
            "agreement_with_majority_of_others": loo_counts(shared_humans),
        },
        "position_consistency": position_consistency(judge_rows if given is None else given),
    }


def position_consistency(rows: Sequence[RatingRow]) -> dict[str, Any]:
    """Return the share of comparisons rated in both orders whose verdicts agree."""
    orders: dict[int, dict[bool, str]] = defaultdict(dict)
    for row in rows:
        orders[row.comparison_id][row.a_left] = row.value
    both = [o for o in orders.values() if len(o) == 2]
    consistent = sum(o[True] == o[False] for o in both)
    return share(consistent, len(both))


def loo_counts(rows: Sequence[RatingRow]) -> dict[str, Any]:
    """Return each rating's agreement with the strict mode of the other raters of its comparison."""
    by_unit: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for unit, rater, value in collapse(rows):
        by_unit[unit].append((rater, value))
    agree = total = 0
    for votes in by_unit.values():
        for i, (_, value) in enumerate(votes):
            mode = strict_mode(v for j, (_, v) in enumerate(votes) if j != i)
            if mode is not None:
                total += 1
                agree += mode == value
    return share(agree, total)


def judge_section(
    name: str,
    judge_rows: RatingArrays,
    humans: RatingArrays,
    human_triples: Collapsed,
    *,
    bootstrap: int,
    seed: int,
    given: RatingArrays,
) -> dict[str, Any]:
    """Return ``judge_report`` of one judge, counted on arrays."""
    own = collapse_arrays(judge_rows)
    judge_units = own.unit  # one triple per comparison: a single rater
    shared = human_triples.take(np.isin(human_triples.unit, judge_units))
    units, majority = strict_modes(shared.unit, TIE_CLASS[shared.value])
    judged = TIE_CLASS[own.value[np.argsort(own.unit)]][np.searchsorted(np.sort(own.unit), units)]
    rng = np.random.default_rng(seed)
    ones = np.ones(len(units), np.int64)
    kappa_input = rating_codes(
        np.r_[units, units],
        np.r_[ones, 0 * ones],
        np.r_[judged, majority],
        raters=("humans", "judge"),
        categories=VALUES,
    )
    shared_humans = humans.take(np.isin(humans.comparison, judge_units))
    decisive = (judged <= B) & (majority <= B)
    return {
        "judge": name,
        "n_comparisons": len(own),
        "n_with_human_majority": len(units),
        "agreement_with_human_majority": {
            "with_ties": share(int((judged == majority).sum()), len(units)),
            "without_ties": share(int((judged == majority)[decisive].sum()), int(decisive.sum())),
        },
        "cohen_kappa": metric("cohen_kappa", kappa_input, bootstrap, rng),
        "human_ceiling": {
            "mtbench_agreement": mtbench(vote_codes(shared_humans), bootstrap, rng),
            "agreement_with_majority_of_others": share(*consensus(shared).sum(axis=0).tolist()[::-1]),
        },
        "position_consistency": position_consistency_arrays(given),
    }
