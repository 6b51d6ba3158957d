"""Rater-aware Bradley-Terry: model ratings fitted jointly with each rater's reliability and left-side bias.

Rater ``k`` shown model ``L`` on the left and ``R`` on the right votes left with probability

    q = 1/2 + r_k * (sigmoid(theta_L - theta_R + b_k) - 1/2)

``r_k`` in [0, 1] is its reliability (1: votes as the Bradley-Terry model says, 0: a coin flip, in between: its
votes scaled towards 50/50) and ``b_k`` its left-side bias, a shift of the log-odds towards the left (first)
position. Ties count half a vote each way, as in the plain fit; humans and judges are raters alike. The fit is the
penalised maximum likelihood over (theta, r, b), by L-BFGS-B with analytic gradients, started from the plain fit.

Identifiability. The likelihood leaves one shift of theta per connected component free (the prior below fixes it;
with ``prior=0`` the objective adds half the squared component sum instead); each component is reported centred
at mean 0, as in the plain fit.
Reliability and the ratings' spread trade off (ratings twice as far apart seen by raters half as reliable predict
nearly the same votes), and an inverted (adversarial) rater would be a perfectly reliable one of the mirrored
ratings; so ``r`` is bounded to [``MIN_RELIABILITY``, 1] (an adversarial rater gets ``r`` near 0: its votes are
ignored, not used in reverse) and has the prior ``alpha * log r`` (a Beta(1 + alpha, 1) density, ``alpha`` =
``reliability_prior``, default 10, worth ten votes agreeing with the model): the most reliable raters sit near
``r = 1`` and the ratings are on their scale, and a rater with a handful of votes stays near 1 rather than wandering
to a bound. ``b`` has a normal prior with standard deviation ``bias_sd`` (default 1 logit: an unbiased rater's left
share between equal models is 1/2, one with b = 1 gives 73%) and bounds +-``MAX_BIAS``, so that a rater who always
votes left gets a large finite bias (its left votes then carry little information) instead of an infinite one.
Every model always gets the plain fit's ``prior`` virtual ties (default 1) against a 1000-rated opponent, not only
when the plain maximum-likelihood estimate does not exist: here a model that won every vote but one would
otherwise run off to infinity while the reliability of the rater who voted against it absorbs that vote. With every
rater held at r = 1 and b = 0 the likelihood is the plain fit's with that prior. The defaults were chosen on
simulations (docs/scoring.md): with honest raters only, the ratings stay about as accurate as the plain fit's
from 30 votes per rater; below that the extra two parameters per rater cost accuracy.

Intervals: the sandwich H^-1 J H^-1 of the penalised objective, with J summing per-vote scores (``cluster=None``)
or each rater's summed score (``cluster="rater"``, CR1 factor); parameters at a bound are held fixed. The rater
block of H is 2x2 per rater, so the ratings' block is formed through its Schur complement without a dense
(models + 2 raters)-square matrix.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize

from scoring import bt_fit, graph
from scoring.battles import BattleCounts
from scoring.bradley_terry import Z95, Leaderboard, _assemble, _rating_se, _to_ratings, bradley_terry_from_counts
from scoring.bt_bootstrap import DEFAULT_PRIOR, PointFit
from scoring.bt_fit import RATING_SCALE

Array = NDArray[np.float64]
IntArray = NDArray[np.int64]
RaterCluster = Literal["rater"]
RELIABILITY_PRIOR = 10.0
BIAS_SD = 1.0
MIN_RELIABILITY = 1e-4
MAX_BIAS = 12.0
SPARSE_VOTES = 30
TINY = 1e-300
OUTCOMES = ("left", "right", "tie")


@dataclass(frozen=True, eq=False)
class RaterCells:
    """Votes per rater and ordered (left, right) model pair.

    Cell ``c``: rater ``raters[rater[c]]`` saw ``models[left[c]]`` on the left and ``models[right[c]]`` on the
    right, and voted left ``left_wins[c]`` times, right ``right_wins[c]`` times and tie (or both bad) ``ties[c]``.
    """

    models: tuple[str, ...]
    raters: tuple[str, ...]
    rater: IntArray
    left: IntArray
    right: IntArray
    left_wins: Array
    right_wins: Array
    ties: Array

    def __post_init__(self) -> None:
        n = len(self.rater)
        for name in ("left", "right", "left_wins", "right_wins", "ties"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"RaterCells.{name} must have one entry per cell")
        if (self.left == self.right).any():
            raise ValueError("a vote compares a model with itself")
        if (self.left_wins < 0).any() or (self.right_wins < 0).any() or (self.ties < 0).any():
            raise ValueError("vote counts must not be negative")

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[Hashable, str, str, float, float, float]]) -> RaterCells:
        """Build cells from (rater, left model, right model, left wins, right wins, ties) rows (e.g. SQL groups).

        Rows naming the same rater and ordered pair add up.
        """
        raters: dict[Hashable, int] = {}
        models: dict[str, int] = {}
        table: dict[tuple[int, int, int], Array] = {}
        for rater, left, right, wins_l, wins_r, ties in rows:
            key = (raters.setdefault(rater, len(raters)), models.setdefault(left, len(models)))
            cell = (*key, models.setdefault(right, len(models)))
            table.setdefault(cell, np.zeros(3))[:] += (wins_l, wins_r, ties)
        keys = np.array(list(table), dtype=np.int64).reshape(-1, 3)
        values = np.array(list(table.values()), dtype=np.float64).reshape(-1, 3)
        return cls(
            models=tuple(models),
            raters=tuple(str(r) for r in raters),
            rater=keys[:, 0],
            left=keys[:, 1],
            right=keys[:, 2],
            left_wins=values[:, 0],
            right_wins=values[:, 1],
            ties=values[:, 2],
        )

    @classmethod
    def from_votes(cls, votes: Iterable[tuple[Hashable, str, str, str]]) -> RaterCells:
        """Build cells from (rater, left model, right model, outcome) votes, outcome ``left``/``right``/``tie``."""
        rows = []
        for rater, left, right, outcome in votes:
            if outcome not in OUTCOMES:
                raise ValueError(f"outcome must be left, right or tie, not {outcome!r}")
            rows.append((rater, left, right, outcome == "left", outcome == "right", outcome == "tie"))
        return cls.from_rows((r, a, b, float(x), float(y), float(z)) for r, a, b, x, y, z in rows)

    @property
    def n_votes(self) -> float:
        """Return the number of votes."""
        return float(self.left_wins.sum() + self.right_wins.sum() + self.ties.sum())

    def votes_per_rater(self) -> Array:
        """Return each rater's number of votes."""
        total = self.left_wins + self.right_wins + self.ties
        return np.bincount(self.rater, weights=total, minlength=len(self.raters)).astype(np.float64)

    def counts(self) -> BattleCounts:
        """Return the battle counts of the plain fit (positions and raters dropped; every tie a plain tie)."""
        m = len(self.models)
        wins = np.zeros((m, m))
        ties = np.zeros((m, m))
        np.add.at(wins, (self.left, self.right), self.left_wins)
        np.add.at(wins, (self.right, self.left), self.right_wins)
        np.add.at(ties, (self.left, self.right), self.ties)
        np.add.at(ties, (self.right, self.left), self.ties)
        return BattleCounts.from_arrays(self.models, np.rint(wins).astype(np.int64), np.rint(ties).astype(np.int64))


@dataclass(frozen=True)
class RaterFit:
    """The fitted parameters: ``theta`` (natural log-strength, centred per component), per-rater ``reliability``
    and ``left_bias`` (logits), the sandwich covariance ``cov`` of theta, and diagnostics."""

    theta: Array
    reliability: Array
    left_bias: Array
    cov: Array
    labels: NDArray[np.int32]
    prior: float
    objective: float
    iterations: int
    converged: bool


@dataclass(frozen=True)
class _Setup:
    """What the objective needs besides the parameters."""

    cells: RaterCells
    m: int
    n_raters: int
    alpha: float
    bias_sd: float
    prior: float
    labels: NDArray[np.int32]


@dataclass(frozen=True)
class _Cell:
    """Per-cell quantities at one parameter vector."""

    s: Array
    sc: Array
    r: Array
    q: Array
    qc: Array
    y_left: Array
    y_right: Array


def _cell_terms(x: Array, setup: _Setup) -> _Cell:
    """Return the per-cell probabilities at ``x`` = (theta, r, b)."""
    c, m, n = setup.cells, setup.m, setup.n_raters
    d = x[c.left] - x[c.right] + x[m + n + c.rater]
    s, sc = bt_fit.sigmoid(d), bt_fit.sigmoid(-d)
    r = x[m + c.rater]
    q = np.maximum(0.5 * (1 - r) + r * s, TINY)
    qc = np.maximum(0.5 * (1 - r) + r * sc, TINY)
    return _Cell(s, sc, r, q, qc, c.left_wins + c.ties / 2, c.right_wins + c.ties / 2)


def _objective(x: Array, setup: _Setup) -> tuple[float, Array]:
    """Return the negative penalised log-likelihood (per vote) and its gradient."""
    c, m, n = setup.cells, setup.m, setup.n_raters
    t = _cell_terms(x, setup)
    theta, r, b = x[:m], x[m : m + n], x[m + n :]
    value = float((t.y_left * np.log(t.q) + t.y_right * np.log(t.qc)).sum())
    value += setup.alpha * float(np.log(r).sum()) - float((b * b).sum()) / (2 * setup.bias_sd**2)
    g = t.y_left / t.q - t.y_right / t.qc
    dd, dr = g * t.r * t.s * t.sc, g * (t.s - 0.5)
    grad = np.zeros_like(x)
    grad[:m] = np.bincount(c.left, dd, m) - np.bincount(c.right, dd, m)
    grad[m : m + n] = np.bincount(c.rater, dr, n) + setup.alpha / r
    grad[m + n :] = np.bincount(c.rater, dd, n) - b / setup.bias_sd**2
    if setup.prior:
        value += setup.prior * 0.5 * float((bt_fit.log_sigmoid(theta) + bt_fit.log_sigmoid(-theta)).sum())
        grad[:m] += setup.prior * (0.5 - bt_fit.sigmoid(theta))
    else:  # without the prior nothing fixes each component's mean: the penalty does, at no cost to the fit
        sums = np.bincount(setup.labels, theta)
        value -= 0.5 * float((sums * sums).sum())
        grad[:m] -= sums[setup.labels]
    scale = max(c.n_votes, 1.0)
    return -value / scale, -grad / scale


def fit_rater_bt(
    cells: RaterCells,
    *,
    reliability_prior: float = RELIABILITY_PRIOR,
    bias_sd: float = BIAS_SD,
    prior: float = DEFAULT_PRIOR,
    cluster: RaterCluster | None = None,
    max_iter: int = 2_000,
) -> RaterFit:
    """Fit ratings, reliabilities and left biases jointly (see the module docstring)."""
    if reliability_prior < 0 or bias_sd <= 0:
        raise ValueError("reliability_prior must be >= 0 and bias_sd > 0")
    if cluster not in (None, "rater"):
        raise ValueError(f"cluster must be 'rater' or None, got {cluster!r}")
    if not len(cells.rater):
        raise ValueError("no votes to rank")
    counts = cells.counts()
    m, n = len(cells.models), len(cells.raters)
    labels = graph.component_labels(counts.totals > 0)[1]
    win = counts.wins + counts.all_ties / 2
    used_prior = prior
    if prior < 0 or (prior == 0 and not graph.mle_exists(win > 0)):
        raise ValueError("the maximum-likelihood estimate does not exist and prior=0 was requested")
    plain = bradley_terry_from_counts(counts, prior=prior)
    theta0 = np.array([(plain.rating(name).rating - 1000.0) / RATING_SCALE for name in cells.models])
    setup = _Setup(cells, m, n, reliability_prior, bias_sd, used_prior, labels)
    x0 = np.concatenate([theta0, np.full(n, 0.95), np.zeros(n)])
    bounds = [(None, None)] * m + [(MIN_RELIABILITY, 1.0)] * n + [(-MAX_BIAS, MAX_BIAS)] * n
    result = minimize(
        _objective,
        x0,
        args=(setup,),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": max_iter, "maxfun": 2 * max_iter, "ftol": 1e-15, "gtol": 1e-11, "maxcor": 10},
    )
    x = np.asarray(result.x, dtype=np.float64)
    x[:m] = bt_fit.center(x[None, :m], labels)[0]
    cov = _sandwich(x, setup, cluster)
    return RaterFit(
        theta=x[:m],
        reliability=x[m : m + n],
        left_bias=x[m + n :],
        cov=cov,
        labels=labels,
        prior=used_prior,
        objective=-float(result.fun) * max(cells.n_votes, 1.0),
        iterations=int(result.nit),
        converged=bool(result.success),
    )


def _sandwich(x: Array, setup: _Setup, cluster: RaterCluster | None) -> Array:
    """Return the sandwich covariance of theta, the rater parameters profiled out by the Schur complement."""
    c, m, n = setup.cells, setup.m, setup.n_raters
    t = _cell_terms(x, setup)
    r, b = x[m : m + n], x[m + n :]
    g = t.y_left / t.q - t.y_right / t.qc
    curv = t.y_left / t.q**2 + t.y_right / t.qc**2
    gu, gv = t.r * t.s * t.sc, t.s - 0.5
    n_dd = curv * gu * gu - g * gu * (t.sc - t.s)
    n_dr = curv * gu * gv - g * t.s * t.sc
    n_rr = curv * gv * gv
    free_r = (r > MIN_RELIABILITY * (1 + 1e-6)) & (r < 1 - 1e-9)
    free_b = np.abs(b) < MAX_BIAS * (1 - 1e-9)
    fr, fb = free_r[c.rater], free_b[c.rater]
    # Rater block (b, r) per rater, and its coupling B to theta; a parameter at a bound is held fixed.
    block = np.zeros((n, 2, 2))
    block[:, 0, 0] = np.bincount(c.rater, np.where(fb, n_dd, 0.0), n) + np.where(free_b, 1 / setup.bias_sd**2, 1.0)
    block[:, 0, 1] = block[:, 1, 0] = np.bincount(c.rater, np.where(fb & fr, n_dr, 0.0), n)
    block[:, 1, 1] = np.bincount(c.rater, np.where(fr, n_rr, 0.0), n) + np.where(free_r, setup.alpha / r**2, 1.0)
    coupling = np.zeros((n, m, 2))
    for side, sign in ((c.left, 1.0), (c.right, -1.0)):
        flat = c.rater * m + side
        coupling[:, :, 0] += np.bincount(flat, sign * np.where(fb, n_dd, 0.0), n * m).reshape(n, m)
        coupling[:, :, 1] += np.bincount(flat, sign * np.where(fr, n_dr, 0.0), n * m).reshape(n, m)
    factor = coupling @ np.linalg.pinv(block, hermitian=True)  # B_k D_k^-1, (raters, m, 2)
    schur = bt_fit.half_terms(x[None, :m], np.zeros((1, m, m)), np.array([setup.prior])).neg_hess[0]
    np.add.at(schur, (c.left, c.left), n_dd)
    np.add.at(schur, (c.right, c.right), n_dd)
    np.add.at(schur, (c.left, c.right), -n_dd)
    np.add.at(schur, (c.right, c.left), -n_dd)
    schur -= np.einsum("kia,kja->ij", factor, coupling)
    # Each cell's score direction with the rater parameters profiled out: K grad q.
    rho = np.stack([np.where(fb, gu, 0.0), np.where(fr, gv, 0.0)], axis=1)
    meat = np.zeros((m, m))
    per_rater = np.zeros((n, m))
    for start in range(0, len(g), 20_000):
        part = slice(start, start + 20_000)
        w = -np.einsum("cia,ca->ci", factor[c.rater[part]], rho[part])
        rows = np.arange(len(w))
        w[rows, c.left[part]] += gu[part]
        w[rows, c.right[part]] -= gu[part]
        if cluster is None:
            a = c.left_wins[part] / t.q[part] ** 2 + c.right_wins[part] / t.qc[part] ** 2
            a = a + c.ties[part] * (0.5 / t.q[part] - 0.5 / t.qc[part]) ** 2
            meat += (w * a[:, None]).T @ w
        else:
            np.add.at(per_rater, c.rater[part], g[part, None] * w)
    if cluster is not None:
        n_params = m - int(setup.labels.max()) - 1 + int(free_r.sum() + free_b.sum())
        meat = bt_fit.cluster_factor("cr1", n, c.n_votes, n_params) * (per_rater.T @ per_rater)
    inv = np.linalg.pinv(schur, hermitian=True) if setup.prior == 0.0 else np.linalg.inv(schur)
    cov: Array = inv @ meat @ inv
    if setup.prior:
        project = np.eye(m) - bt_fit.centering_matrix(setup.labels, 0)
        cov = project @ cov @ project.T
    return cov


@dataclass(frozen=True)
class RaterRow:
    """One rater of the fit: ``left_bias`` is the logit shift towards the left side."""

    rater: str
    votes: int
    reliability: float
    left_bias: float


@dataclass(frozen=True, eq=False)
class RaterLeaderboard:
    """A rater-aware leaderboard: the ratings (``board``, as the plain one's) and each rater's parameters."""

    board: Leaderboard
    raters: list[RaterRow]
    reliability_prior: float
    bias_sd: float
    converged: bool

    def to_dict(self) -> dict[str, Any]:
        """Return the plain leaderboard's dict plus ``rater_model``: the settings and a row per rater."""
        out = self.board.to_dict()
        out["method"] = "rater_bradley_terry"
        out["rater_model"] = {
            "reliability_prior": self.reliability_prior,
            "bias_sd": self.bias_sd,
            "converged": self.converged,
            "raters": [asdict(row) for row in self.raters],
        }
        return out


def rater_bradley_terry(
    cells: RaterCells,
    *,
    counts: BattleCounts | None = None,
    anchor: tuple[str, float] | None = None,
    cluster: RaterCluster | None = None,
    reliability_prior: float = RELIABILITY_PRIOR,
    bias_sd: float = BIAS_SD,
    prior: float = DEFAULT_PRIOR,
) -> RaterLeaderboard:
    """Return the rater-aware leaderboard (sandwich intervals; per-vote, or clustered by rater).

    ``counts`` (optional) gives the vote columns (wins, losses, both tie labels); it must hold the same battles.
    """
    fit = fit_rater_bt(cells, reliability_prior=reliability_prior, bias_sd=bias_sd, prior=prior, cluster=cluster)
    plain_counts = cells.counts()
    if counts is None:
        counts = plain_counts
    elif counts.models != cells.models:
        counts = _reorder(counts, cells.models)
    if not (np.array_equal(counts.wins, plain_counts.wins) and np.array_equal(counts.all_ties, plain_counts.ties)):
        raise ValueError("the counts do not hold the same votes as the rater cells")
    if anchor is not None and anchor[0] not in cells.models:
        raise ValueError(f"anchor model {anchor[0]!r} has no battles")
    anchor_index = None if anchor is None else cells.models.index(anchor[0])
    ratings = _to_ratings(fit.theta[None], fit.labels, anchor, anchor_index)[0]
    se = _rating_se(fit.cov, len(cells.models), anchor_index, fit.labels)
    warnings = [] if fit.converged else ["the rater model's optimiser did not converge"]
    n_components = int(fit.labels.max()) + 1
    if n_components > 1:
        warnings.append(
            f"the comparison graph falls apart into {n_components} components: ratings are comparable only within "
            "a component and each component is centred separately"
        )
    if np.median(cells.votes_per_rater()) < SPARSE_VOTES:
        warnings.append(
            f"most raters have fewer than {SPARSE_VOTES} votes: the rater model's two parameters per rater cost "
            "accuracy there (docs/scoring.md)"
        )
    point = PointFit(fit.theta, None, fit.labels, fit.prior, fit.iterations)
    board = _assemble(
        counts, point, "half", anchor, 0, ratings, ratings - Z95 * se, ratings + Z95 * se, se, warnings, None
    )
    votes = cells.votes_per_rater()
    rows = [
        RaterRow(name, round(votes[k]), float(fit.reliability[k]), float(fit.left_bias[k]))
        for k, name in enumerate(cells.raters)
    ]
    rows.sort(key=lambda row: (row.reliability, row.rater))
    return RaterLeaderboard(replace(board, cluster=cluster), rows, reliability_prior, bias_sd, fit.converged)


def _reorder(counts: BattleCounts, models: tuple[str, ...]) -> BattleCounts:
    """Return ``counts`` with its models in the order ``models`` (the same set)."""
    if set(counts.models) != set(models) or len(counts.models) != len(models):
        raise ValueError("the counts and the rater cells name different models")
    order = [counts.models.index(name) for name in models]
    pick = np.ix_(order, order)
    return BattleCounts(models, counts.wins[pick], counts.ties[pick], counts.ties_bothbad[pick])
