"""Bradley-Terry leaderboards on the Chatbot Arena scale, with bootstrap and sandwich intervals.

Ratings are ``1000 + 400 * log10`` odds (``RATING_SCALE`` times the natural log-strength), centred at a
mean of
1000 within each connected component unless an anchor is given. Ties count half a win each way (Chatbot Arena)
or follow Davidson's (1970) model. When the maximum-likelihood estimate does not exist (a model, or a group of
models, never loses or never wins against the rest of its component) every model gets ``prior`` virtual ties
against a 1000-rated opponent; the leaderboard says so in ``warnings`` and flags models with only wins
(``only_wins``) or only losses (``only_losses``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from scoring import bt_fit, graph
from scoring.battles import Battle, BattleCounts, aggregate_battles
from scoring.bt_fit import RATING_SCALE

TieMode = Literal["half", "davidson"]
Z95 = 1.959963984540054
DEFAULT_PRIOR = 1.0


@dataclass(frozen=True)
class ModelRating:
    """One model's row of the leaderboard."""

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


@dataclass(frozen=True)
class Leaderboard:
    """A fitted leaderboard; ``win_probability[i][j]`` is P(model i beats model j) in ``models`` order."""

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
    )


@dataclass(frozen=True)
class _Fit:
    """Point estimate on the natural scale plus diagnostics."""

    theta: NDArray[np.float64]
    log_nu: float | None
    labels: NDArray[np.int32]
    prior: float
    iterations: int


def bradley_terry_from_counts(
    counts: BattleCounts,
    *,
    ties: TieMode = "half",
    anchor: tuple[str, float] | None = None,
    bootstrap: int = 0,
    rng: np.random.Generator | None = None,
    prior: float = DEFAULT_PRIOR,
    tol: float = 1e-6,
) -> Leaderboard:
    """Fit a Bradley-Terry leaderboard to pre-aggregated battle counts."""
    if ties not in ("half", "davidson"):
        raise ValueError(f"ties must be 'half' or 'davidson', got {ties!r}")
    if bootstrap < 0:
        raise ValueError("bootstrap must be >= 0")
    if not counts.models:
        raise ValueError("no battles to rank")
    if anchor is not None and anchor[0] not in counts.models:
        raise ValueError(f"anchor model {anchor[0]!r} has no battles")
    warnings: list[str] = []
    mode = _effective_mode(counts, ties, warnings)
    fit = _point_fit(counts, mode, prior, tol, warnings)
    cov = bt_fit.sandwich_cov(
        fit.theta, fit.log_nu, counts.wins.astype(float), counts.all_ties.astype(float), fit.labels, fit.prior
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
    return _assemble(counts, fit, ties, anchor, bootstrap, ratings, lower, upper, se, warnings, boot)


def _effective_mode(counts: BattleCounts, ties: TieMode, warnings: list[str]) -> TieMode:
    """Return the tie mode to fit, falling back to half ties when Davidson has no ties to estimate nu."""
    if ties == "davidson" and not counts.all_ties.any():
        warnings.append(
            "no ties in the data: the Davidson tie parameter is zero, fitted as plain Bradley-Terry"
        )
        return "half"
    return ties


def _matrices(counts: BattleCounts, mode: TieMode) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
    """Return the win matrix (with halves for ties in 'half' mode) and the tie matrix for Davidson."""
    wins = counts.wins.astype(np.float64)
    all_ties = counts.all_ties.astype(np.float64)
    if mode == "half":
        return wins + all_ties / 2, None
    return wins, all_ties


def _point_fit(counts: BattleCounts, mode: TieMode, prior: float, tol: float, warnings: list[str]) -> _Fit:
    """Fit the point estimate, applying the prior only when the MLE does not exist."""
    win, tie = _matrices(counts, mode)
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
    return _Fit(theta, log_nu, labels, used_prior, result.iterations)


def _initial_log_nu(tie: NDArray[np.float64], counts: BattleCounts) -> float:
    """Return log nu matching the overall tie rate between equal models (P(tie) = nu / (2 + nu))."""
    rate = min(max(float(tie.sum()) / max(float(counts.totals.sum()), 1.0), 1e-3), 0.999)
    return math.log(2 * rate / (1 - rate))


def bootstrap_thetas(
    counts: BattleCounts, fit: _Fit, mode: TieMode, rounds: int, rng: np.random.Generator, tol: float = 1e-6
) -> NDArray[np.float64]:
    """Refit ``rounds`` multinomial resamples of the aggregated counts, warm-started at the point fit.

    Each resample redistributes all battles over the (pair, outcome) cells in proportion to their counts.
    Rounds
    are solved with chord-Newton steps that reuse the point fit's inverse Hessian (one matrix product per
    step).
    """
    m = len(counts.models)
    pair_i, pair_j = np.nonzero(np.triu(counts.totals) > 0)
    cells = np.stack(
        [counts.wins[pair_i, pair_j], counts.wins[pair_j, pair_i], counts.all_ties[pair_i, pair_j]], axis=1
    ).ravel()
    keep = np.flatnonzero(cells)
    n_total = int(cells.sum())
    pvals = cells[keep] / n_total
    solver = _ChordSolver(counts, fit, mode, pair_i, pair_j, cells.reshape(-1, 3), tol)
    chunk = max(1, min(rounds, 2_000_000 // max(len(cells), 1)))
    out = np.empty((rounds, m))
    for start in range(0, rounds, chunk):
        size = min(chunk, rounds - start)
        draws = np.zeros((size, len(cells)))
        draws[:, keep] = rng.multinomial(n_total, pvals, size=size)
        out[start : start + size] = solver.solve(draws.reshape(size, -1, 3))
    return out


class _ChordSolver:
    """Solve resampled likelihoods by chord-Newton steps with the point fit's inverse Hessian."""

    def __init__(
        self,
        counts: BattleCounts,
        fit: _Fit,
        mode: TieMode,
        pair_i: NDArray[np.intp],
        pair_j: NDArray[np.intp],
        cells: NDArray[np.int64],
        tol: float,
    ) -> None:
        self.fit, self.mode, self.tol, self.cells = fit, mode, tol, cells
        self.pair_i, self.pair_j, self.m = pair_i, pair_j, len(counts.models)
        incidence = np.zeros((len(pair_i), self.m))
        incidence[np.arange(len(pair_i)), pair_i] = 1.0
        incidence[np.arange(len(pair_i)), pair_j] = -1.0
        self.incidence = incidence
        win, tie = _matrices(counts, mode)
        prior = np.array([fit.prior])
        if tie is None:
            neg_hess = bt_fit.half_terms(fit.theta[None], win[None], prior).neg_hess[0]
            self.x0 = fit.theta
        else:
            log_nu = np.array([fit.log_nu], dtype=np.float64)
            neg_hess = bt_fit.davidson_terms(fit.theta[None], log_nu, win[None], tie[None], prior).neg_hess[0]
            self.x0 = np.append(fit.theta, fit.log_nu)
        self.inv_hess = (
            np.linalg.pinv(neg_hess, hermitian=True) if fit.prior == 0.0 else np.linalg.inv(neg_hess)
        )

    def solve(self, draws: NDArray[np.float64]) -> NDArray[np.float64]:
        """Return centred thetas for one chunk of resampled (pair, outcome) counts."""
        size = draws.shape[0]
        suspicious = self._lost_edges(draws) if self.fit.prior == 0.0 else np.zeros(size, dtype=bool)
        won = draws[:, :, 0] + draws[:, :, 2] / 2
        total = draws.sum(axis=2)
        x = np.repeat(self.x0[None], size, axis=0)
        active = ~suspicious
        for _ in range(100):
            idx = np.flatnonzero(active)
            if not len(idx):
                break
            step = self._gradient(x[idx], draws[idx], won[idx], total[idx]) @ self.inv_hess
            x[idx] += step
            active[idx[np.abs(step[:, : self.m]).max(axis=1) * RATING_SCALE < self.tol]] = False
        redo = np.flatnonzero(active | suspicious)
        if len(redo):
            x[redo] = self._newton(draws[redo], x[redo])
        return bt_fit.center(x[:, : self.m], self.fit.labels)

    def _lost_edges(self, draws: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Return the rounds where a 'won or tied against' edge of the data vanished from the resample."""
        forward = draws[:, :, 0] + draws[:, :, 2]
        backward = draws[:, :, 1] + draws[:, :, 2]
        had_forward = self.cells[:, 0] + self.cells[:, 2] > 0
        had_backward = self.cells[:, 1] + self.cells[:, 2] > 0
        lost: NDArray[np.bool_] = ((forward == 0) & had_forward).any(axis=1) | (
            (backward == 0) & had_backward
        ).any(axis=1)
        return lost

    def _dense(self, draws: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Return dense win and tie matrices of a chunk."""
        size, i, j = draws.shape[0], self.pair_i, self.pair_j
        wins = np.zeros((size, self.m, self.m))
        wins[:, i, j], wins[:, j, i] = draws[:, :, 0], draws[:, :, 1]
        ties = np.zeros((size, self.m, self.m))
        ties[:, i, j] = ties[:, j, i] = draws[:, :, 2]
        return wins, ties

    def _gradient(
        self,
        x: NDArray[np.float64],
        draws: NDArray[np.float64],
        won: NDArray[np.float64],
        total: NDArray[np.float64],
    ) -> NDArray[np.float64]:
        """Return the log-likelihood gradient of each round."""
        if self.mode == "davidson":
            wins, ties = self._dense(draws)
            prior = np.full(len(x), self.fit.prior)
            return bt_fit.davidson_terms(x[:, : self.m], x[:, self.m], wins, ties, prior).grad
        p = 1.0 / (1.0 + np.exp(x[:, self.pair_j] - x[:, self.pair_i]))
        grad: NDArray[np.float64] = (won - total * p) @ self.incidence
        if self.fit.prior:
            grad += self.fit.prior * (0.5 - 1.0 / (1.0 + np.exp(-x)))
        return grad

    def _newton(self, draws: NDArray[np.float64], x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Fit the given rounds by full Newton, with the default prior where their MLE does not exist."""
        wins, ties = self._dense(draws)
        prior = np.full(len(x), self.fit.prior)
        if not self.fit.prior:
            prior[_rounds_without_mle(wins, ties, self.fit.labels)] = DEFAULT_PRIOR
        theta0 = x[:, : self.m]
        if self.mode == "half":
            return bt_fit.newton(wins + ties / 2, None, self.fit.labels, prior, theta0, None, self.tol).theta
        result = bt_fit.newton(wins, ties, self.fit.labels, prior, theta0, x[:, self.m], self.tol)
        assert result.log_nu is not None
        return np.concatenate([result.theta, result.log_nu[:, None]], axis=1)


def _rounds_without_mle(
    wins: NDArray[np.float64], ties: NDArray[np.float64], labels: NDArray[np.int32]
) -> list[int]:
    """Return the rounds whose resample has no finite MLE or splits a component of the original data."""
    beats = (wins > 0) | (ties > 0)
    n_comp = len(np.unique(labels))
    return [
        b
        for b in range(len(beats))
        if graph.component_labels(beats[b])[0] != n_comp or not graph.mle_exists(beats[b])
    ]


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
    if wins and not losses and not ties:
        return ("only_wins",)
    if losses and not wins and not ties:
        return ("only_losses",)
    return ()


def _assemble(
    counts: BattleCounts,
    fit: _Fit,
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
