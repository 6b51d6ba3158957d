"""Anomalous raters: each rater's votes against what the fitted Bradley-Terry model predicts, and left bias.

Two tests per rater, on its decisive votes (ties and both-bad take no part):

- fit: the log-likelihood of the rater's votes under the Bradley-Terry model fitted to every vote of the file
  (ties half), against its distribution were the rater to vote as the model predicts (Chatbot Arena's test of
  anomalous users, Chiang et al. 2024, section 5). One-sided: votes *less* likely than the model's. Below
  ``NORMAL_FROM`` decisive votes the p-value is computed on a grid of log-likelihoods ``RESOLUTION`` apart (exact
  but for that rounding, so it has no floor, unlike a Monte Carlo one, and survives a correction over thousands of
  tests), above it by the normal approximation of the sum of independent terms;
- left bias: the share of decisive votes for the output shown on the left, with its two-sided binomial p-value,
  each vote going left with the probability the model gives the model shown left (a Poisson binomial; with the
  order random, as here and in Chatbot Arena, an honest rater's share is near 1/2, but conditioning on the pairs
  it saw keeps one who happened to see the stronger model on the right from looking biased).

All the p-values of all raters are corrected together for multiple testing, by Benjamini-Hochberg (false discovery
rate, the default) or Holm (family-wise error); a rater is flagged when one of its corrected p-values is below
``alpha``, with the reasons. The suspects of that first pass distort the model they are tested against (an
adversarial rater pulls the ratings together): the fit test is run again against the model refitted without them
(when every model keeps a vote), and its result is the one reported. Competence (Dawid-Skene's, ``scoring.raters``) is
reported where the rater shares comparisons with others and is not a reason to flag: on a battle log most prompts
have one vote.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr

from scoring.bradley_terry import bradley_terry
from scoring.loaders import InputError
from scoring.raters import dawid_skene

Outcome = Literal["left", "right", "tie"]
Correction = Literal["bh", "holm"]
NORMAL_FROM = 100  # decisive votes from which the fit test uses the normal approximation
RESOLUTION = 0.005  # grid of the fit test's log-likelihoods (natural log)
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class RaterVote:
    """One vote: who gave it, the models shown left and right, the outcome, and the compared pair's id if known
    (votes with the same unit compared the same outputs)."""

    rater: str
    left: str
    right: str
    outcome: Outcome
    unit: Hashable | None = None


def win_probabilities(votes: Sequence[RaterVote]) -> dict[str, float]:
    """Return each model's Bradley-Terry strength (natural-log odds scale) fitted to every vote, ties half."""
    winner = {"left": "model_a", "right": "model_b", "tie": "tie"}
    board = bradley_terry([(v.left, v.right, winner[v.outcome]) for v in votes])
    return {row.model: row.rating * math.log(10) / 400 for row in board.ratings}


def fit_p_values(votes: Sequence[RaterVote], strengths: dict[str, float], resolution: float) -> dict[str, float]:
    """Return per rater the one-sided p-value of its decisive votes' log-likelihood under the model (nan: none)."""
    by_rater: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    for v in votes:
        if v.outcome != "tie":
            p_left = 1.0 / (1.0 + math.exp(strengths[v.right] - strengths[v.left]))
            by_rater[v.rater].append((p_left, v.outcome == "left"))
    result = {v.rater: math.nan for v in votes}
    for rater, rows in by_rater.items():
        p = np.clip(np.array([r[0] for r in rows]), 1e-12, 1 - 1e-12)
        left = np.array([r[1] for r in rows])
        if len(rows) >= NORMAL_FROM:
            result[rater] = normal_lower_tail(p, left)
        else:
            result[rater] = lower_tail(p, left, resolution)
    return result


def lower_tail(p: FloatArray, left: BoolArray, resolution: float) -> float:
    """Return P(log-likelihood <= observed) for independent votes going left with probabilities ``p``.

    The log-likelihood is a constant plus ``sum w_i M_i``, where ``w_i = |logit p_i|`` and ``M_i`` says whether vote
    i went to the side the model favours (probability ``max(p_i, 1 - p_i)``); the weights are rounded to multiples
    of ``resolution`` and the distribution of the sum computed exactly on that grid, one vote at a time.
    """
    favoured = np.where(p >= 0.5, p, 1 - p)
    weight = np.rint(np.abs(np.log(p) - np.log1p(-p)) / resolution).astype(np.int64)
    observed = int(weight[left == (p >= 0.5)].sum())
    pmf = np.zeros(int(weight.sum()) + 1)
    pmf[0], top = 1.0, 0
    for k, q in zip(weight.tolist(), favoured.tolist(), strict=True):
        moved = pmf[: top + 1] * q
        pmf[: top + 1] *= 1 - q
        pmf[k : k + top + 1] += moved
        top += k
    return float(min(1.0, pmf[: observed + 1].sum()))


def normal_lower_tail(p: FloatArray, left: BoolArray) -> float:
    """Return the normal approximation of P(log-likelihood <= observed) (many votes)."""
    log_left, log_right = np.log(p), np.log1p(-p)
    observed = float(np.where(left, log_left, log_right).sum())
    mean = float((p * log_left + (1 - p) * log_right).sum())
    sd = math.sqrt(float((p * (1 - p) * (log_left - log_right) ** 2).sum()))
    return float(ndtr((observed - mean) / sd)) if sd > 0 else 1.0


def left_bias(
    votes: Sequence[RaterVote], strengths: dict[str, float] | None = None
) -> dict[str, tuple[int, int, float]]:
    """Return per rater (left votes, decisive votes, two-sided p-value; nan with no decisive vote).

    Without ``strengths`` each decisive vote goes left with probability 1/2 (the exact binomial test). With them,
    with the probability the model gives the model shown left (a Poisson binomial: the sum of independent
    Bernoulli votes), so that a rater who happened to see the stronger model on the right more often is not
    taken for biased; the two-sided p-value is twice the smaller tail, at most 1.
    """
    probabilities: dict[str, list[float]] = {v.rater: [] for v in votes}
    lefts = dict.fromkeys(probabilities, 0)
    for v in votes:
        if v.outcome != "tie":
            p = 0.5 if strengths is None else 1.0 / (1.0 + math.exp(strengths[v.right] - strengths[v.left]))
            probabilities[v.rater].append(p)
            lefts[v.rater] += v.outcome == "left"
    return {rater: (lefts[rater], len(ps), two_sided(lefts[rater], ps)) for rater, ps in probabilities.items()}


def two_sided(k: int, probabilities: Sequence[float]) -> float:
    """Return the two-sided p-value of k successes among independent trials of these probabilities (nan: none)."""
    n = len(probabilities)
    if not n:
        return math.nan
    if all(p == 0.5 for p in probabilities):
        # Imported here: scipy.stats costs about a second and 20 MB, and results.views imports this module at the
        # start of every web and worker process.
        from scipy import stats

        return float(stats.binomtest(k, n, 0.5).pvalue)
    pmf = np.zeros(n + 1)
    pmf[0] = 1.0
    for i, p in enumerate(probabilities):  # the distribution of the count, one trial at a time
        pmf[1 : i + 2] = pmf[1 : i + 2] * (1 - p) + pmf[: i + 1] * p
        pmf[0] *= 1 - p
    lower, upper = float(pmf[: k + 1].sum()), float(pmf[k:].sum())
    return min(1.0, 2 * min(lower, upper))


def adjust(p_values: Sequence[float], method: Correction) -> list[float]:
    """Return the p-values corrected by Benjamini-Hochberg or Holm over the finite ones (nan stays nan)."""
    values = np.asarray(p_values, dtype=float)
    finite = np.flatnonzero(np.isfinite(values))
    adjusted = np.full(len(values), math.nan)
    m = len(finite)
    if not m:
        return adjusted.tolist()
    order = finite[np.argsort(values[finite], kind="stable")]
    sorted_p = values[order]
    ranks = np.arange(1, m + 1)
    if method == "bh":
        scaled = np.minimum.accumulate((sorted_p * m / ranks)[::-1])[::-1]
    elif method == "holm":
        scaled = np.maximum.accumulate(sorted_p * (m - ranks + 1))
    else:
        raise ValueError(f"correction must be bh or holm, not {method!r}")
    adjusted[order] = np.minimum(scaled, 1.0)
    return adjusted.tolist()


def competences(votes: Sequence[RaterVote]) -> dict[str, float]:
    """Return the Dawid-Skene competence of the raters of comparisons that several raters voted on (others absent).

    Dawid-Skene, not MACE: where the true class hardly varies (a campaign whose better model comes first in name
    order in every pair) MACE explains every rater as guessing that class and gives honest raters a competence
    near 0; Dawid-Skene's class prevalence takes it in.

    A vote's label is relative to the pair's models in name order (first, second, tie), so it means the same
    whichever side each model was shown.
    """
    raters_of: dict[Hashable, set[str]] = defaultdict(set)
    for v in votes:
        if v.unit is not None:
            raters_of[v.unit].add(v.rater)
    triples = []
    for v in votes:
        if v.unit is None or len(raters_of[v.unit]) < 2:
            continue
        first = min(v.left, v.right)
        winner = v.left if v.outcome == "left" else v.right
        label = "tie" if v.outcome == "tie" else ("first" if winner == first else "second")
        triples.append(((v.unit, first, max(v.left, v.right)), v.rater, label))
    if not triples:
        return {}
    return {
        str(rater): value
        for rater, value in dawid_skene(triples, classes=("first", "tie", "second")).rater_dict().items()
    }


def rater_report(
    votes: Iterable[RaterVote],
    *,
    alpha: float = 0.05,
    correction: Correction = "bh",
    resolution: float = RESOLUTION,
) -> list[dict[str, Any]]:
    """Return per rater ``{"rater", "votes", "competence", "left_bias", "left_p_value", "p_value", "flagged",
    "reasons"}``, most suspect first (see the module's docstring).

    ``votes`` counts the rater's votes (ties included); ``left_bias`` is its share of left votes among decisive
    ones (None without any); ``p_value`` and ``left_p_value`` are corrected; ``competence`` is None for a rater
    who shares no comparison with another. No votes give an empty list.
    """
    votes = list(votes)
    if not votes:
        return []
    raters = list(dict.fromkeys(v.rater for v in votes))
    fit_adj, left_adj, bias = corrected_tests(votes, votes, raters, resolution, correction)
    suspects = {r for r in raters if fit_adj[r] < alpha or left_adj[r] < alpha}
    honest = [v for v in votes if v.rater not in suspects]
    if suspects and models(honest) == models(votes):  # refit without them, if every model keeps a vote
        fit_adj, left_adj, bias = corrected_tests(votes, honest, raters, resolution, correction)
    competence = competences(votes)
    counts: dict[str, int] = defaultdict(int)
    for v in votes:
        counts[v.rater] += 1
    rows = []
    for rater in raters:
        left, decisive, _ = bias[rater]
        share = left / decisive if decisive else None
        reasons = []
        if fit_adj[rater] < alpha:
            reasons.append(f"votes against the model's predictions (p={fit_adj[rater]:.2g})")
        if left_adj[rater] < alpha:
            reasons.append(
                f"left bias: {left} of {decisive} decisive votes for the left side (p={left_adj[rater]:.2g})"
            )
        rows.append(
            {
                "rater": rater,
                "votes": counts[rater],
                "competence": competence.get(rater),
                "left_bias": share,
                "left_p_value": _finite(left_adj[rater]),
                "p_value": _finite(fit_adj[rater]),
                "flagged": bool(reasons),
                "reasons": reasons,
            }
        )
    rows.sort(key=_suspicion)
    return rows


def models(votes: Sequence[RaterVote]) -> set[str]:
    """Return the models the votes compare."""
    return {v.left for v in votes} | {v.right for v in votes}


def corrected_tests(
    votes: Sequence[RaterVote],
    model_votes: Sequence[RaterVote],
    raters: Sequence[str],
    resolution: float,
    correction: Correction,
) -> tuple[dict[str, float], dict[str, float], dict[str, tuple[int, int, float]]]:
    """Return per rater the corrected p-values of the fit and left-bias tests against the model fitted to
    ``model_votes``, and the left-bias counts."""
    strengths = win_probabilities(model_votes)
    fit = fit_p_values(votes, strengths, resolution)
    bias = left_bias(votes, strengths)
    corrected = adjust([fit[r] for r in raters] + [bias[r][2] for r in raters], correction)
    fit_adj = dict(zip(raters, corrected[: len(raters)], strict=True))
    return fit_adj, dict(zip(raters, corrected[len(raters) :], strict=True)), bias


def _suspicion(row: dict[str, Any]) -> tuple[bool, float]:
    """Return the sort key that puts flagged raters first, then by their smallest corrected p-value."""
    smallest = min(1.0 if p is None else float(p) for p in (row["p_value"], row["left_p_value"]))
    return (not row["flagged"], smallest)


def _finite(value: float) -> float | None:
    """Return the value, or None for nan."""
    return None if math.isnan(value) else value


ARENA_WINNERS: dict[str, Outcome] = {"model_a": "left", "model_b": "right", "tie": "tie", "tie (bothbad)": "tie"}


def read_rater_votes(path: str) -> list[RaterVote]:
    """Read votes from a Chatbot Arena battle log or a ``ratings`` export (JSON array, JSON Lines or CSV).

    A battle (``model_a``, ``model_b``, ``winner``) is voted by its ``judge`` (the rater), ``model_a`` shown on the
    left, its unit the ``question_id`` if any. A ``ratings`` export row (``rater``, ``choice``, ``shown_left``) is
    one rating of the comparison ``comparison_id``. Raise InputError naming the record at fault.
    """
    return [_vote(row, n) for n, row in enumerate(_records(path), 1)]


def _records(path: str) -> list[dict[str, Any]]:
    """Return the file's records: a JSON array, JSON Lines, or CSV (by the .csv extension)."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            if path.lower().endswith(".csv"):
                return list(csv.DictReader(handle))
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid JSON: {exc}") from None
        if not all(isinstance(r, dict) for r in records):
            raise InputError(f"{path}: the JSON array must hold objects")
        return list(records)
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}: line {number}: not valid JSON: {exc}") from None
            if not isinstance(record, dict):
                raise InputError(f"{path}: line {number}: not a JSON object")
            rows.append(record)
    return rows


def _vote(row: dict[str, Any], number: int) -> RaterVote:
    """Return one record as a vote."""
    a, b = row.get("model_a"), row.get("model_b")
    if not a or not b:
        raise InputError(f"record {number}: needs model_a and model_b")
    if "choice" in row and "shown_left" in row:
        rater, choice, shown = row.get("rater"), row["choice"], row["shown_left"]
        if choice not in ("a", "b", "tie", "both_bad") or shown not in ("a", "b"):
            raise InputError(f"record {number}: choice must be a, b, tie or both_bad and shown_left a or b")
        left, right = (a, b) if shown == "a" else (b, a)
        outcome: Outcome = "tie" if choice in ("tie", "both_bad") else ("left" if choice == shown else "right")
        unit = row.get("comparison_id")
    else:
        rater, winner = row.get("judge"), row.get("winner")
        if winner not in ARENA_WINNERS:
            raise InputError(f"record {number}: winner must be model_a, model_b, tie or tie (bothbad), not {winner!r}")
        left, right, outcome, unit = a, b, ARENA_WINNERS[winner], row.get("question_id")
    if not rater:
        raise InputError(f"record {number}: no rater (judge in a battle log, rater in a ratings export)")
    return RaterVote(str(rater), str(left), str(right), outcome, None if unit in (None, "") else str(unit))
