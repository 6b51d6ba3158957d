"""Bradley-Terry leaderboards on the Chatbot Arena scale, with bootstrap and sandwich intervals.

Ratings are ``1000 + 400 * log10`` odds (``RATING_SCALE`` times the natural log-strength), centred at a mean
of 1000 within each connected component unless an anchor is given. Ties count half a win each way (Chatbot
Arena) or follow Davidson's (1970) model. When the maximum-likelihood estimate does not exist (a model, or a
group of models, never loses or never wins against the rest of its component) every model gets ``prior``
virtual ties against a 1000-rated opponent; the leaderboard says so in ``warnings`` and flags models with only
wins (``only_wins``) or only losses (``only_losses``); a model without battles (possible with counts) is flagged
``no_votes`` and sits alone in its own component at 1000. ``reweight="pairs"`` (Chatbot Arena's reweighted
sandwich intervals) weighs every battle by the inverse of its pair's battle count (``bt_fit.pair_weights``) in the
fit and in its sandwich covariance.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from scoring import bt_fit, graph
from scoring.battles import Battle, BattleCounts, aggregate_battles
from scoring.bt_bootstrap import DEFAULT_PRIOR, PointFit, TieMode, bootstrap_thetas, fit_matrices
from scoring.bt_fit import RATING_SCALE
from scoring.cores import single_threaded_blas

Z95 = 1.959963984540054
Reweight = Literal["pairs"]


@dataclass(frozen=True)
class ModelRating:
    """One model's row of the leaderboard.

    ``lower``/``upper`` bound the 95% interval (bootstrap percentiles, or rating +- 1.96 ``se`` without a
    bootstrap); ``se`` is the analytic sandwich standard error (relative to the anchor when one is given, so
    the anchor's own interval is a point); ``rank`` is 1 + the number of models rated strictly higher and
    ``rank_ub`` Arena's 1 + the number of models whose lower bound exceeds this model's upper bound; ``ties``
    counts both tie labels, ``ties_bothbad`` the second alone. ``rank_lower``/``rank_upper`` are the rank spread:
    with a bootstrap the best and worst rank the model takes in the central 95% of the rounds (its rank's 2.5% and
    97.5% quantiles, rounded outwards), without one the interval-overlap bounds (``rank_ub``, and 1 + the number of
    other models whose upper bound reaches this model's lower bound).
    """

    model: str
    rating: float
    lower: float
    upper: float
    rank: int
    rank_ub: int
    votes: int
    wins: int
    losses: int
    ties: int
    ties_bothbad: int
    se: float
    flags: tuple[str, ...] = ()
    rank_lower: int = 0
    rank_upper: int = 0


@dataclass(frozen=True, eq=False)
class Leaderboard:
    """A fitted leaderboard, best first.

    ``win_probability[i][j]`` is the predicted probability that ``models[i]`` beats ``models[j]`` in a decisive
    battle (``models`` follows the rating order); ``components`` lists the models of each connected component
    when the comparison graph is disconnected (else it is empty).
    """

    ratings: list[ModelRating]
    models: tuple[str, ...]
    win_probability: NDArray[np.float64]
    components: list[list[str]]
    warnings: list[str]
    ties: TieMode
    interval: Literal["bootstrap", "sandwich"]
    bootstrap: int
    n_battles: int
    anchor: tuple[str, float] | None = None
    tie_parameter: float | None = None
    prior: float = 0.0
    iterations: int = 0
    bootstrap_ratings: NDArray[np.float64] | None = field(default=None, repr=False)
    reweight: Reweight | None = None
    cluster: str | None = None

    def rating(self, model: str) -> ModelRating:
        """Return the row of ``model``; raise KeyError if absent."""
        for row in self.ratings:
            if row.model == model:
                return row
        raise KeyError(model)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (the CLI's output)."""
        rows = []
        for row in self.ratings:
            item = asdict(row)
            item["flags"] = list(row.flags)
            rows.append(item)
        return {
            "ratings": rows,
            "method": "bradley_terry",
            "ties": self.ties,
            "interval": self.interval,
            "bootstrap": self.bootstrap,
            "n_battles": self.n_battles,
            "n_models": len(self.models),
            "anchor": None if self.anchor is None else {"model": self.anchor[0], "rating": self.anchor[1]},
            "tie_parameter": self.tie_parameter,
            "prior": self.prior,
            "components": self.components,
            "warnings": self.warnings,
            **({"reweight": self.reweight} if self.reweight else {}),
            **({"cluster": self.cluster} if self.cluster else {}),
            "win_probability": {"models": list(self.models), "matrix": self.win_probability.tolist()},
        }


def bradley_terry(
    battles: Iterable[Battle],
    *,
    ties: TieMode = "half",
    anchor: tuple[str, float] | None = None,
    bootstrap: int = 0,
    rng: np.random.Generator | None = None,
    prior: float = DEFAULT_PRIOR,
    tol: float = 1e-6,
    reweight: Reweight | None = None,
) -> Leaderboard:
    """Fit a Bradley-Terry leaderboard to (model_a, model_b, winner) battles."""
    return bradley_terry_from_counts(
        aggregate_battles(battles),
        ties=ties,
        anchor=anchor,
        bootstrap=bootstrap,
        rng=rng,
        prior=prior,
        tol=tol,
        reweight=reweight,
    )


@single_threaded_blas
def bradley_terry_from_counts(
    counts: BattleCounts,
    *,
    ties: TieMode = "half",
    anchor: tuple[str, float] | None = None,
    bootstrap: int = 0,
    rng: np.random.Generator | None = None,
    prior: float = DEFAULT_PRIOR,
    tol: float = 1e-6,
    reweight: Reweight | None = None,
    clusters: bt_fit.ClusterCells | None = None,
) -> Leaderboard:
    """Fit a Bradley-Terry leaderboard to pre-aggregated battle counts.

    ``reweight="pairs"`` fits the likelihood with every battle weighted by inverse pair frequency
    (``bt_fit.pair_weights``) and gives the sandwich intervals of that weighted fit; it excludes ``bootstrap``.
    ``clusters`` (the same battles per rater or prompt) gives cluster-robust sandwich intervals (CR1); it excludes
    ``bootstrap`` and ``reweight``.
    """
    if ties not in ("half", "davidson"):
        raise ValueError(f"ties must be 'half' or 'davidson', got {ties!r}")
    if bootstrap < 0:
        raise ValueError("bootstrap must be >= 0")
    if not counts.models:
        raise ValueError("no battles to rank")
    if anchor is not None and anchor[0] not in counts.models:
        raise ValueError(f"anchor model {anchor[0]!r} has no battles")
    if reweight not in (None, "pairs"):
        raise ValueError(f"reweight must be 'pairs' or None, got {reweight!r}")
    if reweight and bootstrap:
        raise ValueError("reweight='pairs' gives sandwich intervals; it cannot be combined with a bootstrap")
    if clusters is not None:
        _check_clusters(counts, clusters, bootstrap, reweight)
    weights = bt_fit.pair_weights(counts.totals.astype(float)) if reweight else None
    warnings: list[str] = []
    mode = _effective_mode(counts, ties, warnings)
    fit = _point_fit(counts, mode, prior, tol, warnings, weights)
    cov = bt_fit.sandwich_cov(
        fit.theta,
        fit.log_nu,
        counts.wins.astype(float),
        counts.all_ties.astype(float),
        fit.labels,
        fit.prior,
        weights,
        clusters,
    )
    anchor_index = None if anchor is None else counts.models.index(anchor[0])
    ratings = _to_ratings(fit.theta[None], fit.labels, anchor, anchor_index)[0]
    se = _rating_se(cov, len(counts.models), anchor_index, fit.labels)
    boot = None
    if bootstrap:
        generator = rng if rng is not None else np.random.default_rng()
        theta_b = bootstrap_thetas(counts, fit, mode, bootstrap, generator, tol)
        boot = _to_ratings(theta_b, fit.labels, anchor, anchor_index)
        lower, upper = np.quantile(boot, [0.025, 0.975], axis=0)
    else:
        lower, upper = ratings - Z95 * se, ratings + Z95 * se
    board = _assemble(counts, fit, ties, anchor, bootstrap, ratings, lower, upper, se, warnings, boot)
    if clusters is not None:
        board = replace(board, cluster=clusters.by)
    return board if reweight is None else replace(board, reweight=reweight)


def _check_clusters(
    counts: BattleCounts, clusters: bt_fit.ClusterCells, bootstrap: int, reweight: Reweight | None
) -> None:
    """Raise ValueError unless the clusters split exactly the counted battles and no other interval is asked."""
    if bootstrap or reweight:
        raise ValueError("clustered sandwich intervals cannot be combined with a bootstrap or reweight='pairs'")
    m = len(counts.models)
    if len(clusters.first) and max(int(clusters.first.max()), int(clusters.second.max())) >= m:
        raise ValueError("the clusters name a model index beyond the counts")
    wins, ties = clusters.matrices(m)
    if not (np.array_equal(wins, counts.wins) and np.array_equal(ties, counts.all_ties)):
        raise ValueError("the clusters do not add up to the battle counts")


def _effective_mode(counts: BattleCounts, ties: TieMode, warnings: list[str]) -> TieMode:
    """Return the tie mode to fit, falling back to half ties when Davidson has no ties to estimate nu."""
    if ties == "davidson" and not counts.all_ties.any():
        warnings.append("no ties in the data: the Davidson tie parameter is zero, fitted as plain Bradley-Terry")
        return "half"
    return ties


def _point_fit(
    counts: BattleCounts,
    mode: TieMode,
    prior: float,
    tol: float,
    warnings: list[str],
    weights: NDArray[np.float64] | None = None,
) -> PointFit:
    """Fit the point estimate, applying the prior only when the MLE does not exist (``weights`` per pair)."""
    win, tie = fit_matrices(counts, mode)
    if weights is not None:
        win = win * weights
        tie = None if tie is None else tie * weights
    n_comp, labels = graph.component_labels(counts.totals > 0)
    if n_comp > 1:
        warnings.append(
            f"the comparison graph falls apart into {n_comp} components: {_name_groups(counts, labels)}; "
            "ratings are comparable only within a component and each component is centred separately"
        )
    used_prior = 0.0
    if not graph.mle_exists(win > 0 if tie is None else (win > 0) | (tie > 0)):
        if prior <= 0:
            raise ValueError("the maximum-likelihood estimate does not exist and prior=0 was requested")
        used_prior = prior
        warnings.append(
            "the maximum-likelihood estimate does not exist (some models never lose or never win against "
            f"the rest of their component); every model got {prior:g} virtual tie(s) against a 1000-rated "
            "opponent"
        )
    m = len(counts.models)
    log_nu0 = None if tie is None else np.array([_initial_log_nu(tie, counts)])
    result = bt_fit.newton(
        win[None],
        None if tie is None else tie[None],
        labels,
        np.array([used_prior]),
        np.zeros((1, m)),
        log_nu0,
        tol,
    )
    if not result.converged.all():
        warnings.append("the Newton iterations did not converge to the requested tolerance")
    log_nu = None if result.log_nu is None else float(result.log_nu[0])
    theta = bt_fit.center(result.theta, labels)[0]
    return PointFit(theta, log_nu, labels, used_prior, result.iterations)


def _initial_log_nu(tie: NDArray[np.float64], counts: BattleCounts) -> float:
    """Return log nu matching the overall tie rate between equal models (P(tie) = nu / (2 + nu))."""
    rate = min(max(float(tie.sum()) / max(float(counts.totals.sum()), 1.0), 1e-3), 0.999)
    return math.log(2 * rate / (1 - rate))


def _to_ratings(
    theta: NDArray[np.float64],
    labels: NDArray[np.int32],
    anchor: tuple[str, float] | None,
    anchor_index: int | None,
) -> NDArray[np.float64]:
    """Map centred natural log-strengths (batch x models) to Arena ratings, honouring the anchor."""
    ratings = 1000.0 + RATING_SCALE * theta
    if anchor is not None and anchor_index is not None:
        members = labels == labels[anchor_index]
        shift = anchor[1] - ratings[:, anchor_index]
        ratings[:, members] += shift[:, None]
    return ratings


def _rating_se(
    cov: NDArray[np.float64], m: int, anchor_index: int | None, labels: NDArray[np.int32]
) -> NDArray[np.float64]:
    """Return sandwich standard errors in rating points (relative to the anchor when one is given)."""
    var = np.diag(cov)[:m].copy()
    if anchor_index is not None:
        members = labels == labels[anchor_index]
        rel = var + cov[anchor_index, anchor_index] - 2 * cov[:m, anchor_index]
        var[members] = rel[members]
    se: NDArray[np.float64] = RATING_SCALE * np.sqrt(np.maximum(var, 0.0))
    return se


def _flags(totals: dict[str, NDArray[np.int64]], i: int) -> tuple[str, ...]:
    """Return the degenerate-data flags of model ``i``."""
    wins, losses, ties = int(totals["wins"][i]), int(totals["losses"][i]), int(totals["ties"][i])
    if not wins and not losses and not ties:
        return ("no_votes",)
    if wins and not losses and not ties:
        return ("only_wins",)
    if losses and not wins and not ties:
        return ("only_losses",)
    return ()


def _assemble(
    counts: BattleCounts,
    fit: PointFit,
    ties: TieMode,
    anchor: tuple[str, float] | None,
    bootstrap: int,
    ratings: NDArray[np.float64],
    lower: NDArray[np.float64],
    upper: NDArray[np.float64],
    se: NDArray[np.float64],
    warnings: list[str],
    boot: NDArray[np.float64] | None,
) -> Leaderboard:
    """Build the sorted Leaderboard."""
    totals = counts.model_totals()
    order = np.argsort(-ratings, kind="stable")
    rank_lower, rank_upper = rank_spread(boot, lower, upper)
    rows = []
    for i in order:
        rows.append(
            ModelRating(
                model=counts.models[i],
                rating=float(ratings[i]),
                lower=float(lower[i]),
                upper=float(upper[i]),
                rank=1 + int((ratings > ratings[i]).sum()),
                rank_ub=1 + int((lower > upper[i]).sum()),
                votes=int(totals["votes"][i]),
                wins=int(totals["wins"][i]),
                losses=int(totals["losses"][i]),
                ties=int(totals["ties"][i]),
                ties_bothbad=int(totals["ties_bothbad"][i]),
                se=float(se[i]),
                flags=_flags(totals, int(i)),
                rank_lower=int(rank_lower[i]),
                rank_upper=int(rank_upper[i]),
            )
        )
    models = tuple(counts.models[i] for i in order)
    theta = fit.theta[order]
    components = _components(counts, fit.labels)
    return Leaderboard(
        ratings=rows,
        models=models,
        win_probability=bt_fit.sigmoid(theta[:, None] - theta[None, :]),
        components=components if len(components) > 1 else [],
        warnings=warnings,
        ties=ties,
        interval="bootstrap" if bootstrap else "sandwich",
        bootstrap=bootstrap,
        n_battles=counts.n_battles,
        anchor=anchor,
        tie_parameter=None if fit.log_nu is None else math.exp(fit.log_nu),
        prior=fit.prior,
        iterations=fit.iterations,
        bootstrap_ratings=None if boot is None else boot[:, order],
    )


def rank_spread(
    boot: NDArray[np.float64] | None, lower: NDArray[np.float64], upper: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Return each model's best and worst plausible rank (1 = best; see ``ModelRating``).

    ``boot`` is (rounds, models) bootstrap ratings, or None for the interval-overlap bounds.
    """
    if boot is None or not len(boot):
        best = 1 + (lower[None, :] > upper[:, None]).sum(axis=1)
        others = ~np.eye(len(lower), dtype=bool)
        worst = 1 + ((upper[None, :] >= lower[:, None]) & others).sum(axis=1)
        return best.astype(np.int64), worst.astype(np.int64)
    ranks = np.empty(boot.shape, dtype=np.int64)
    for start in range(0, len(boot), 64):  # (rounds x models x models) comparisons in slices
        part = boot[start : start + 64]
        ranks[start : start + 64] = 1 + (part[:, None, :] > part[:, :, None]).sum(axis=2)
    best = np.quantile(ranks, 0.025, axis=0, method="lower")
    worst = np.quantile(ranks, 0.975, axis=0, method="higher")
    return np.asarray(best, dtype=np.int64), np.asarray(worst, dtype=np.int64)


def _name_groups(counts: BattleCounts, labels: NDArray[np.int32]) -> str:
    """Return the components as '{a, b, ...}; {c}' (at most five names each)."""
    parts = []
    for group in _components(counts, labels):
        shown = ", ".join(group[:5]) + (f", ... ({len(group)} models)" if len(group) > 5 else "")
        parts.append("{" + shown + "}")
    return "; ".join(parts)


def _components(counts: BattleCounts, labels: NDArray[np.int32]) -> list[list[str]]:
    """Return the model names of each component, largest first."""
    groups: dict[int, list[str]] = {}
    for name, label in zip(counts.models, labels.tolist(), strict=True):
        groups.setdefault(int(label), []).append(name)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: (-len(g), g))
