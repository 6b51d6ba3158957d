"""Vote influence: how many votes must go for two adjacent models of a Bradley-Terry leaderboard to swap places.

For each pair of adjacent models (``upper`` rated above ``lower``) the search looks for the smallest set of
votes whose removal makes the refitted ``lower`` rate strictly above ``upper``. It works on the per-pair
counts, not on votes: the votes of one cell (model pair and outcome) are exchangeable, so a removal is a number
of votes per cell.

1. Linearise. The one-step Newton (infinitesimal jackknife) change of the gap ``d = theta_upper - theta_lower``
   when one vote of cell ``c`` (model ``i`` against ``j`` with score ``y``: 1 a win of ``i``, 1/2 a tie) is
   removed is ``-(y - p_ij) (v_i - v_j)`` with ``v = H^-1 (e_upper - e_lower)``, ``H`` the negative Hessian of the
   Bradley-Terry log-likelihood (ties as half wins) and ``p_ij`` the fitted probability that ``i`` beats ``j``.
2. Greedy. Votes are taken from the cells with the most negative change first until the predicted changes add
   up to the current gap; the counts are refitted. While the order holds, the search linearises again at the
   refit and takes more (at most ``MAX_ROUNDS`` rounds).
3. Confirm. Once a refit reverses the order, a bisection over the votes taken in the last round (in the greedy
   order) finds the fewest that still reverse it, each candidate confirmed by a refit.

The count is an upper bound on the true minimum that a refit confirms: on small cases it matched an exhaustive
search (``tests/scoring/test_influence.py``). The refit is the leaderboard's own fit (its tie mode, and the
virtual-tie prior when the maximum-likelihood estimate stops existing); only the linearisation treats ties as
halves. A pair that is never reversed within ``cap`` votes gets ``None``; so does a pair in two different
components of the comparison graph (their order means nothing). A pair is ``fragile`` when it flips with at most
``max(FRAGILE_MIN_VOTES, FRAGILE_SHARE * n_battles)`` votes.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from scoring import bt_fit, graph
from scoring.battles import BattleCounts
from scoring.bradley_terry import Leaderboard
from scoring.bt_bootstrap import DEFAULT_PRIOR, TieMode

Array = NDArray[np.float64]

FRAGILE_SHARE = 0.001
FRAGILE_MIN_VOTES = 3
DEFAULT_CAP_SHARE = 0.05
DEFAULT_CAP_MIN = 20
MAX_ROUNDS = 40
IMPROVE_ROUNDS = 3
_TOL = 1e-4  # rating points: refits decide a sign, not a rating to print
_FLIP_MARGIN = 1e-9  # natural-log units: an exact tie is not a reversal


@dataclass(frozen=True)
class RemovedVotes:
    """Votes of one cell removed to flip a pair: ``count`` wins of ``winner`` over ``loser`` (or ties)."""

    model_a: str
    model_b: str
    outcome: str  # "model_a" (model_a won) or "tie"
    count: int


@dataclass(frozen=True)
class PairInfluence:
    """The flip count of one adjacent pair; ``n_votes_to_flip`` is None past ``cap`` (or across components)."""

    upper: str
    lower: str
    rating_gap: float
    n_votes_to_flip: int | None
    share: float | None
    fragile: bool
    refits: int
    removed: tuple[RemovedVotes, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-ready dict."""
        return {
            "upper": self.upper,
            "lower": self.lower,
            "rating_gap": self.rating_gap,
            "n_votes_to_flip": self.n_votes_to_flip,
            "share": self.share,
            "fragile": self.fragile,
            "removed": [vars(item) for item in self.removed],
        }


@dataclass(frozen=True, eq=False)
class _Cells:
    """The counts as cells: model ``i`` against ``j`` with score ``y`` (1 = i won, 0.5 = tie), ``count`` votes."""

    i: NDArray[np.int64]
    j: NDArray[np.int64]
    y: Array
    count: Array
    m: int
    _structures: dict[tuple[bool, bytes], tuple[NDArray[np.int32], bool]] = field(default_factory=dict, repr=False)

    def matrices(self, remaining: Array, mode: TieMode) -> tuple[Array, Array | None]:
        """Return the fit matrices (``bt_fit.newton``'s win and tie) of the remaining counts."""
        m = self.m
        if mode == "half":
            flat = np.bincount(self.i * m + self.j, weights=remaining * self.y, minlength=m * m)
            flat += np.bincount(self.j * m + self.i, weights=remaining * (1 - self.y), minlength=m * m)
            return np.asarray(flat, dtype=np.float64).reshape(m, m), None
        won = self.y == 1.0
        wins = np.bincount(self.i[won] * m + self.j[won], weights=remaining[won], minlength=m * m).reshape(m, m)
        tie = np.bincount(self.i[~won] * m + self.j[~won], weights=remaining[~won], minlength=m * m).reshape(m, m)
        return np.asarray(wins, dtype=np.float64), np.asarray(tie + tie.T, dtype=np.float64)

    def structure(self, remaining: Array, win: Array, tie: Array | None) -> tuple[NDArray[np.int32], bool]:
        """Return the component labels and whether the MLE exists, remembered per pattern of non-empty cells.

        Both depend only on which cells still hold votes (and whether ties are modelled), and most removals keep
        every cell: the graph searches are then done once.
        """
        key = (tie is None, (remaining > 0).tobytes())
        found = self._structures.get(key)
        if found is None:
            played = win + win.T + (0 if tie is None else tie) > 0
            beats = win > 0 if tie is None else (win > 0) | (tie > 0)
            found = (graph.component_labels(played)[1], graph.mle_exists(beats))
            if len(self._structures) > 4096:
                self._structures.clear()
            self._structures[key] = found
        return found


def _cells(counts: BattleCounts) -> _Cells:
    """Return the non-empty cells of ``counts`` (ties of both labels in one cell per pair)."""
    wi, wj = np.nonzero(counts.wins)
    ti, tj = np.nonzero(np.triu(counts.all_ties, 1))
    return _Cells(
        i=np.concatenate([wi, ti]).astype(np.int64),
        j=np.concatenate([wj, tj]).astype(np.int64),
        y=np.concatenate([np.ones(len(wi)), np.full(len(ti), 0.5)]),
        count=np.concatenate([counts.wins[wi, wj], counts.all_ties[ti, tj]]).astype(np.float64),
        m=len(counts.models),
    )


class _Refitter:
    """Refit the leaderboard's model to the remaining counts (warm-started) and count the refits."""

    def __init__(self, cells: _Cells, mode: TieMode) -> None:
        self.cells = cells
        self.mode = mode
        self.refits = 0

    def fit(
        self, remaining: Array, theta0: Array, log_nu0: float | None
    ) -> tuple[Array, float | None, NDArray[np.int32]]:
        """Return (theta, log nu, component labels) fitted to ``remaining`` votes per cell."""
        self.refits += 1
        win, tie = self.cells.matrices(remaining, self.mode)
        if tie is not None and not tie.any():
            # As the leaderboard does: without ties Davidson's nu is zero, fitted as plain Bradley-Terry.
            win, tie, log_nu0 = win + 0.0, None, None
        labels, mle = self.cells.structure(remaining, win, tie)
        prior = 0.0 if mle else DEFAULT_PRIOR
        args = (win[None], None if tie is None else tie[None], labels)
        start = (theta0[None], None if log_nu0 is None else np.array([log_nu0]), _TOL)
        try:
            result = bt_fit.newton(*args, np.array([prior]), *start)
        except np.linalg.LinAlgError:
            # A removal can leave a degenerate design (a model with ties only against an isolated opponent).
            result = bt_fit.newton(*args, np.array([DEFAULT_PRIOR]), *start)
        theta = bt_fit.center(result.theta, labels)[0]
        log_nu = None if result.log_nu is None else float(result.log_nu[0])
        return theta, log_nu if log_nu is not None else log_nu0, labels


def _per_vote_change(cells: _Cells, remaining: Array, theta: Array, upper: int, lower: int) -> Array:
    """Return the one-step Newton change of theta_upper - theta_lower when one vote of each cell is removed."""
    win, _ = cells.matrices(remaining, "half")
    labels, mle = cells.structure(remaining, win, None)
    prior = 0.0 if mle else DEFAULT_PRIOR
    terms = bt_fit.half_terms(theta[None], win[None], np.array([prior]))
    system = terms.neg_hess[0] + (bt_fit.centering_matrix(labels, 0) if prior == 0.0 else 0.0)
    target = np.zeros(cells.m)
    target[upper], target[lower] = 1.0, -1.0
    try:
        v = np.linalg.solve(system, target)
    except np.linalg.LinAlgError:
        v = np.linalg.lstsq(system, target, rcond=None)[0]
    p = bt_fit.sigmoid(theta[cells.i] - theta[cells.j])
    change: Array = -(cells.y - p) * (v[cells.i] - v[cells.j])
    return change


def _take_greedy(change: Array, remaining: Array, gap: float) -> Array:
    """Return votes per cell, most negative change first, until the predicted changes cover ``gap`` (>= 1 vote)."""
    usable = np.flatnonzero((change < 0) & (remaining > 0))
    order = usable[np.argsort(change[usable], kind="stable")]
    taken = np.zeros_like(remaining)
    need = gap
    for cell in order:
        per_vote = -change[cell]
        votes = min(remaining[cell], max(1.0, math.ceil(need / per_vote)))
        taken[cell] = votes
        need -= votes * per_vote
        if need <= 0:
            break
    return taken


def _prefix(steps: list[tuple[int, float]], n: int) -> Array:
    """Return the removal of the first ``n`` votes of ``steps`` ((cell, votes) in greedy order) as votes per cell."""
    out: dict[int, float] = {}
    left = float(n)
    for cell, votes in steps:
        if left <= 0:
            break
        used = min(votes, left)
        out[cell] = out.get(cell, 0.0) + used
        left -= used
    return np.array(list(out.items()), dtype=np.float64).reshape(-1, 2)


def _greedy_steps(change: Array, taken: Array) -> list[tuple[int, float]]:
    """Return the cells of ``taken`` in greedy order with their votes."""
    cells = np.flatnonzero(taken > 0)
    return [(int(c), float(taken[c])) for c in cells[np.argsort(change[cells], kind="stable")]]


def _flipped(theta: Array, labels: NDArray[np.int32], upper: int, lower: int) -> bool:
    """Return whether ``lower`` now rates strictly above ``upper`` (in one component)."""
    return bool(labels[upper] == labels[lower] and theta[lower] - theta[upper] > _FLIP_MARGIN)


def _votes_to_flip(
    refitter: _Refitter,
    theta: Array,
    log_nu: float | None,
    upper: int,
    lower: int,
    cap: int,
) -> Array | None:
    """Return the removal (votes per cell) that flips ``upper`` and ``lower``, or None within ``cap`` votes."""
    cells = refitter.cells
    removed = np.zeros_like(cells.count)
    for _ in range(MAX_ROUNDS):
        remaining = cells.count - removed
        change = _per_vote_change(cells, remaining, theta, upper, lower)
        taken = _take_greedy(change, remaining, float(theta[upper] - theta[lower]))
        if not taken.any() or removed.sum() + taken.sum() > cap:
            taken = _cap_votes(change, remaining, cap - int(removed.sum()))
            if not taken.any():
                return None
            return _confirm(refitter, removed, taken, change, theta, log_nu, upper, lower, last_chance=True)
        new_theta, new_nu, labels = refitter.fit(remaining - taken, theta, log_nu)
        if _flipped(new_theta, labels, upper, lower):
            return _confirm(refitter, removed, taken, change, theta, log_nu, upper, lower, last_chance=False)
        removed += taken
        theta, log_nu = new_theta, new_nu
    return None


def _cap_votes(change: Array, remaining: Array, budget: int) -> Array:
    """Return the ``budget`` votes with the most negative change (the last try before giving up)."""
    if budget <= 0:
        return np.zeros_like(remaining)
    usable = np.flatnonzero((change < 0) & (remaining > 0))
    taken = np.zeros_like(remaining)
    left = float(budget)
    for cell in usable[np.argsort(change[usable], kind="stable")]:
        taken[cell] = min(remaining[cell], left)
        left -= taken[cell]
        if left <= 0:
            break
    return taken


def _confirm(
    refitter: _Refitter,
    removed: Array,
    taken: Array,
    change: Array,
    theta: Array,
    log_nu: float | None,
    upper: int,
    lower: int,
    *,
    last_chance: bool,
) -> Array | None:
    """Return the fewest of ``taken`` (greedy prefix, on top of ``removed``) that flip the pair, by bisection."""
    steps = _greedy_steps(change, taken)
    base = refitter.cells.count - removed

    def flips(n: int) -> bool:
        part = _prefix(steps, n)
        remaining = base.copy()
        remaining[part[:, 0].astype(np.int64)] -= part[:, 1]
        new_theta, _, labels = refitter.fit(remaining, theta, log_nu)
        return _flipped(new_theta, labels, upper, lower)

    hi = int(taken.sum())
    if last_chance and not flips(hi):
        return None
    lo = 0  # removing nothing more does not flip (checked in the previous round)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if flips(mid):
            hi = mid
        else:
            lo = mid
    out = removed.copy()
    part = _prefix(steps, hi)
    out[part[:, 0].astype(np.int64)] += part[:, 1]
    return out


def _improve(refitter: _Refitter, removal: Array, theta: Array, log_nu: float | None, upper: int, lower: int) -> Array:
    """Return a smaller flipping removal when one exists along the greedy order linearised at the flip point.

    The path to the first flip can take votes that mattered early but not at the end; from the flipped fit the
    greedy order over all the votes is recomputed and bisected (``IMPROVE_ROUNDS`` times at most).
    """
    cells = refitter.cells
    for _ in range(IMPROVE_ROUNDS):
        n = round(removal.sum())
        if n <= 1:
            break
        remaining = cells.count - removal
        point, _, _ = refitter.fit(remaining, theta, log_nu)
        change = _per_vote_change(cells, remaining, point, upper, lower)
        steps = _greedy_steps(change, _cap_votes(change, cells.count, n - 1))

        def flips(k: int, steps: list[tuple[int, float]] = steps) -> Array | None:
            part = _prefix(steps, k)
            candidate = np.zeros_like(cells.count)
            candidate[part[:, 0].astype(np.int64)] = part[:, 1]
            new_theta, _, labels = refitter.fit(cells.count - candidate, theta, log_nu)
            return candidate if _flipped(new_theta, labels, upper, lower) else None

        best = flips(n - 1)
        if best is None:
            break
        lo, hi = 0, n - 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            found = flips(mid)
            if found is None:
                lo = mid
            else:
                hi, best = mid, found
        removal = best
    return removal


def fragile_threshold(n_battles: int) -> float:
    """Return the most votes whose removal may flip a pair that is still called fragile."""
    return max(float(FRAGILE_MIN_VOTES), FRAGILE_SHARE * n_battles)


def default_cap(n_battles: int) -> int:
    """Return the default search cap: 5% of the battles, at least 20 votes."""
    return max(DEFAULT_CAP_MIN, math.ceil(DEFAULT_CAP_SHARE * n_battles))


def adjacent_pair_influence(
    counts: BattleCounts,
    *,
    order: tuple[str, ...],
    theta: Array,
    ties: TieMode = "half",
    log_nu: float | None = None,
    cap: int | None = None,
) -> list[PairInfluence]:
    """Return the flip count of every adjacent pair of ``order`` (best first).

    ``theta`` holds the fitted natural log-strengths in the order of ``counts.models`` (and ``log_nu`` the
    Davidson tie parameter when ``ties="davidson"``); ``cap`` bounds the votes a pair's search may remove
    (default ``default_cap``).
    """
    if ties not in ("half", "davidson"):
        raise ValueError(f"ties must be 'half' or 'davidson', got {ties!r}")
    if ties == "davidson" and log_nu is None:
        raise ValueError("ties='davidson' needs the fitted log_nu")
    index = {name: k for k, name in enumerate(counts.models)}
    n_battles = counts.n_battles
    limit = default_cap(n_battles) if cap is None else cap
    if limit < 0:
        raise ValueError("cap must be >= 0")
    cells = _cells(counts)
    _, labels = graph.component_labels(counts.totals > 0)
    out = []
    for upper_name, lower_name in itertools.pairwise(order):
        upper, lower = index[upper_name], index[lower_name]
        refitter = _Refitter(cells, ties)
        gap = float(bt_fit.RATING_SCALE * (theta[upper] - theta[lower]))
        removal = None
        if labels[upper] == labels[lower]:
            start = np.asarray(theta, dtype=np.float64)
            removal = _votes_to_flip(refitter, start, log_nu, upper, lower, limit)
            if removal is not None:
                removal = _improve(refitter, removal, start, log_nu, upper, lower)
        out.append(_pair_result(counts, cells, upper_name, lower_name, gap, removal, refitter.refits))
    return out


def _pair_result(
    counts: BattleCounts,
    cells: _Cells,
    upper: str,
    lower: str,
    gap: float,
    removal: Array | None,
    refits: int,
) -> PairInfluence:
    """Assemble one pair's result."""
    if removal is None:
        return PairInfluence(upper, lower, gap, None, None, False, refits)
    n = round(removal.sum())
    items = []
    for cell in np.flatnonzero(removal > 0):
        a, b = counts.models[int(cells.i[cell])], counts.models[int(cells.j[cell])]
        outcome = "model_a" if cells.y[cell] == 1.0 else "tie"
        items.append(RemovedVotes(a, b, outcome, round(removal[cell])))
    items.sort(key=lambda item: -item.count)
    share = n / counts.n_battles if counts.n_battles else None
    return PairInfluence(upper, lower, gap, n, share, n <= fragile_threshold(counts.n_battles), refits, tuple(items))


def leaderboard_influence(counts: BattleCounts, board: Leaderboard, *, cap: int | None = None) -> list[PairInfluence]:
    """Return the flip count of every adjacent pair of a leaderboard fitted to ``counts`` (unweighted)."""
    if board.reweight:
        raise ValueError("vote influence refits the unweighted likelihood: it does not apply to --reweight pairs")
    rating = {row.model: row.rating for row in board.ratings}
    theta = np.array([(rating[name] - 1000.0) / bt_fit.RATING_SCALE for name in counts.models])
    davidson = board.ties == "davidson" and board.tie_parameter is not None
    log_nu = math.log(board.tie_parameter) if davidson and board.tie_parameter else None
    return adjacent_pair_influence(
        counts, order=board.models, theta=theta, ties="davidson" if davidson else "half", log_nu=log_nu, cap=cap
    )


def add_to_rows(rows: list[dict[str, object]], pairs: list[PairInfluence]) -> None:
    """Give each leaderboard row (best first) the votes that swap it with the next one, and its ``fragile`` flag."""
    below = {pair.upper: pair for pair in pairs}
    for row in rows:
        pair = below.get(str(row["model"]))
        row["n_votes_to_flip"] = None if pair is None else pair.n_votes_to_flip
        row["fragile"] = False if pair is None else pair.fragile


def table_cells(models: list[str], pairs: list[PairInfluence]) -> list[str]:
    """Return each model's flip-count cell for a text table ('12 fragile', '>cap' as '-', '' for the last)."""
    below = {pair.upper: pair for pair in pairs}
    cells = []
    for name in models:
        pair = below.get(name)
        if pair is None:
            cells.append("")
        elif pair.n_votes_to_flip is None:
            cells.append("-")
        else:
            cells.append(f"{pair.n_votes_to_flip}{' fragile' if pair.fragile else ''}")
    return cells
