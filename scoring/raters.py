"""Rater models: Dawid-Skene confusion matrices and MACE competence, fitted by EM, with each unit's posterior.

Input is the agreement metrics' shape: ``(unit, rater, label)`` triples, one per rating. A rater may label a unit
several times (Dawid and Skene's first clinician saw every patient three times): each label is one observation.

Dawid-Skene (Dawid & Skene 1979): unit ``u`` has a true class ``k`` with prevalence ``p_k``; rater ``r`` gives
label ``l`` with probability ``pi_r[k, l]``, independently given the class. EM alternates the posterior of each
unit's class (E) and the prevalence and confusion rows (M), from the posterior of a vote count (each unit's share
of labels per class). The prior: each confusion row has a Dirichlet prior worth ``prior_votes`` pseudo-votes, a
share ``prior_accuracy`` of them on the diagonal and the rest spread evenly over the other classes, and the
prevalence one worth ``prior_votes`` spread evenly; the M-step gives the posterior mode (counts plus pseudo-votes,
normalised). With ``prior_votes=0`` it is the maximum-likelihood EM of the paper; the default (2 pseudo-votes, 70%
on the diagonal) keeps a rater seen once from a confusion row of zeros and ones, so EM converges on sparse raters.

MACE (Hovy, Berg-Kirkpatrick, Vaswani & Hovy 2013, "Learning Whom to Trust with MACE"): rater ``r`` knows the
answer with probability ``theta_r`` (its competence) and gives the true class, else guesses from its own
distribution ``xi_r`` over labels; classes are a priori uniform. EM as above, with a Beta prior on ``theta_r``
worth ``prior_votes`` pseudo-votes split evenly (MAP ``(knowing + v/2) / (labels + v)``) and ``prior_votes /
n_classes`` pseudo-votes per label on ``xi_r``. EM starts, as MACE's does, from competent raters (``theta`` 0.8,
uniform ``xi``), not from random restarts, so the result is deterministic.

Edge cases: no triples give a model with no units and no raters (``converged`` true, log-likelihood 0.0); a single
class gives every unit posterior 1 for it and every rater competence 1.0.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from scoring.ratings import RatingCodes

FloatArray = NDArray[np.float64]
Triples = Iterable[tuple[Hashable, Hashable, Hashable]] | RatingCodes
IntArray = NDArray[np.int64]
TINY = 1e-300


@dataclass(frozen=True)
class RaterModel:
    """A fitted rater model.

    ``posterior[u, k]`` is the probability that unit ``units[u]`` is of class ``classes[k]``; ``confusion[r, k, l]``
    the probability that rater ``raters[r]`` labels a unit of class ``k`` as ``l`` (MACE: the one its competence
    and guessing distribution imply); ``competence[r]``: Dawid-Skene, the probability that the rater's label is the
    true class (``sum_k prevalence[k] * confusion[r, k, k]``); MACE, ``theta_r``, the probability that it knows.
    """

    method: str
    classes: tuple[Hashable, ...]
    units: tuple[Hashable, ...]
    raters: tuple[Hashable, ...]
    prevalence: FloatArray
    confusion: FloatArray
    competence: FloatArray
    posterior: FloatArray
    votes: IntArray  # labels each rater gave
    iterations: int
    converged: bool
    log_likelihood: float
    options: dict[str, float] = field(default_factory=dict)

    def labels(self) -> dict[Hashable, Hashable]:
        """Return each unit's most probable class (the first class listed on a tie)."""
        best = np.argmax(self.posterior, axis=1) if len(self.units) else np.zeros(0, np.int64)
        return {unit: self.classes[int(k)] for unit, k in zip(self.units, best, strict=True)}

    def confidence(self) -> dict[Hashable, float]:
        """Return each unit's posterior probability of its most probable class."""
        top = self.posterior.max(axis=1) if len(self.units) else np.zeros(0)
        return {unit: float(p) for unit, p in zip(self.units, top, strict=True)}

    def rater_dict(self) -> dict[Hashable, float]:
        """Return each rater's competence."""
        return {rater: float(c) for rater, c in zip(self.raters, self.competence, strict=True)}

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready summary: per rater competence and votes, per unit posterior over the classes."""
        labels, confidence = self.labels(), self.confidence()
        return {
            "method": self.method,
            "classes": list(self.classes),
            "prevalence": [float(p) for p in self.prevalence],
            "iterations": self.iterations,
            "converged": self.converged,
            "log_likelihood": self.log_likelihood,
            "options": dict(self.options),
            "raters": [
                {"rater": r, "votes": int(n), "competence": float(c)}
                for r, n, c in zip(self.raters, self.votes, self.competence, strict=True)
            ],
            "units": [
                {
                    "unit": u,
                    "label": labels[u],
                    "confidence": confidence[u],
                    "posterior": {str(k): float(p) for k, p in zip(self.classes, row, strict=True)},
                }
                for u, row in zip(self.units, self.posterior, strict=True)
            ],
        }


@dataclass(frozen=True)
class _Coded:
    """Triples as integer codes."""

    classes: tuple[Hashable, ...]
    units: tuple[Hashable, ...]
    raters: tuple[Hashable, ...]
    unit: IntArray
    rater: IntArray
    label: IntArray


def _code(triples: Triples, classes: Sequence[Hashable] | None) -> _Coded:
    """Return the triples as codes; raise ValueError for a label outside ``classes``."""
    if isinstance(triples, RatingCodes):
        return _from_codes(triples, classes)
    rows = list(triples)
    if classes is None:
        classes = sorted({label for _, _, label in rows}, key=lambda x: (str(type(x)), x))
    class_index = {c: i for i, c in enumerate(classes)}
    units: dict[Hashable, int] = {}
    raters: dict[Hashable, int] = {}
    unit, rater, label = (np.empty(len(rows), np.int64) for _ in range(3))
    for n, (u, r, value) in enumerate(rows):
        if value not in class_index:
            raise ValueError(f"label {value!r} is not one of the classes {list(classes)!r}")
        unit[n] = units.setdefault(u, len(units))
        rater[n] = raters.setdefault(r, len(raters))
        label[n] = class_index[value]
    return _Coded(tuple(classes), tuple(units), tuple(raters), unit, rater, label)


def _from_codes(codes: RatingCodes, classes: Sequence[Hashable] | None) -> _Coded:
    """Return RatingCodes as the same codes their triples give: units and raters in order of first appearance."""
    if classes is None:
        classes = sorted(codes.categories, key=lambda x: (str(type(x)), x))
    unknown = [c for c in codes.categories if c not in classes]
    if unknown:
        raise ValueError(f"label {unknown[0]!r} is not one of the classes {list(classes)!r}")
    label = np.array([list(classes).index(c) for c in codes.categories], np.int64)[codes.value]
    first = np.full(len(codes.raters), len(codes.rater), np.int64)
    np.minimum.at(first, codes.rater, np.arange(len(codes.rater)))
    order = np.argsort(first, kind="stable")
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    raters = tuple(codes.raters[int(i)] for i in order)
    return _Coded(tuple(classes), tuple(codes.units.tolist()), raters, codes.unit, rank[codes.rater], label)


def _vote_shares(coded: _Coded) -> FloatArray:
    """Return each unit's share of labels per class (the majority vote, soft)."""
    k = len(coded.classes)
    counts = np.bincount(coded.unit * k + coded.label, minlength=len(coded.units) * k).astype(np.float64)
    counts = counts.reshape(len(coded.units), k)
    shares: FloatArray = counts / counts.sum(axis=1, keepdims=True)
    return shares


def _normalise_log(log_post: FloatArray) -> tuple[FloatArray, float]:
    """Return the rows of exp(log_post) normalised, and the sum of their log normalisers (the log-likelihood)."""
    top = log_post.max(axis=1, keepdims=True)
    weights = np.exp(log_post - top)
    totals = weights.sum(axis=1, keepdims=True)
    return weights / totals, float((np.log(totals) + top).sum())


def _sum_by_unit(values: FloatArray, unit: IntArray, n_units: int) -> FloatArray:
    """Return per unit the sum of the rows of ``values`` (one row per observation)."""
    return np.stack([np.bincount(unit, values[:, k], n_units) for k in range(values.shape[1])], axis=1)


def _empty(method: str, coded: _Coded, options: dict[str, float]) -> RaterModel:
    """Return the model of no triples."""
    k = len(coded.classes)
    return RaterModel(
        method,
        coded.classes,
        (),
        (),
        np.full(k, 1.0 / k) if k else np.zeros(0),
        np.zeros((0, k, k)),
        np.zeros(0),
        np.zeros((0, k)),
        np.zeros(0, np.int64),
        0,
        True,
        0.0,
        options,
    )


def dawid_skene(
    triples: Triples,
    *,
    classes: Sequence[Hashable] | None = None,
    prior_votes: float = 2.0,
    prior_accuracy: float = 0.7,
    max_iter: int = 1000,
    tol: float = 1e-10,
) -> RaterModel:
    """Return the Dawid-Skene model of (unit, rater, label) triples, fitted by EM (see the module's docstring).

    ``classes`` fixes the classes and their order (default: the labels seen, sorted). EM stops when the
    log-likelihood (with the prior) changes by less than ``tol`` relative, or after ``max_iter`` rounds.
    """
    if prior_votes < 0 or not 0 <= prior_accuracy <= 1:
        raise ValueError("prior_votes must be >= 0 and prior_accuracy in [0, 1]")
    coded = _code(triples, classes)
    options = {"prior_votes": prior_votes, "prior_accuracy": prior_accuracy}
    if not len(coded.unit):
        return _empty("dawid_skene", coded, options)
    k, n_raters, n_units = len(coded.classes), len(coded.raters), len(coded.units)
    pseudo = np.full((k, k), prior_votes * (1 - prior_accuracy) / max(k - 1, 1))
    np.fill_diagonal(pseudo, prior_votes * prior_accuracy if k > 1 else prior_votes)
    cell = coded.rater * k + coded.label

    def m_step(post: FloatArray) -> tuple[FloatArray, FloatArray]:
        by_class = np.ascontiguousarray(post.T)  # the observation's weight for true class t: by_class[t, unit]
        counts = np.stack([np.bincount(cell, by_class[t][coded.unit], n_raters * k) for t in range(k)], axis=1)
        confusion = counts.reshape(n_raters, k, k).transpose(0, 2, 1) + pseudo  # [rater, true, label]
        confusion /= np.maximum(confusion.sum(axis=2, keepdims=True), TINY)
        prevalence = post.sum(axis=0) + prior_votes / k
        return prevalence / prevalence.sum(), confusion

    def e_step(prevalence: FloatArray, confusion: FloatArray) -> tuple[FloatArray, float]:
        # The log of each (rater, label) cell once, then one row per class over the observations: the same
        # numbers as the log of confusion[rater, :, label] per observation, at a fraction of the work.
        table = np.log(np.maximum(confusion, TINY)).transpose(1, 0, 2).reshape(k, n_raters * k)
        sums = [np.bincount(coded.unit, table[t][cell], n_units) for t in range(k)]
        log_post = np.asarray(np.stack(sums, axis=1), dtype=np.float64) + np.log(np.maximum(prevalence, TINY))
        return _normalise_log(log_post)

    def log_prior(prevalence: FloatArray, confusion: FloatArray) -> float:
        return float((pseudo * np.log(np.maximum(confusion, TINY))).sum()) + float(
            (prior_votes / k * np.log(np.maximum(prevalence, TINY))).sum()
        )

    posterior = _vote_shares(coded)
    prevalence, confusion = m_step(posterior)
    objective, converged, iterations = -np.inf, False, 0
    while iterations < max_iter:
        iterations += 1
        posterior, log_likelihood = e_step(prevalence, confusion)
        new = log_likelihood + log_prior(prevalence, confusion)
        prevalence, confusion = m_step(posterior)
        if abs(new - objective) <= tol * max(1.0, abs(new)):
            converged = True
            break
        objective = new
    posterior, log_likelihood = e_step(prevalence, confusion)
    competence = np.einsum("k,rkk->r", prevalence, confusion)
    votes = np.bincount(coded.rater, minlength=n_raters).astype(np.int64)
    return RaterModel(
        "dawid_skene",
        coded.classes,
        coded.units,
        coded.raters,
        prevalence,
        confusion,
        competence,
        posterior,
        votes,
        iterations,
        converged,
        log_likelihood,
        options,
    )


def mace(
    triples: Triples,
    *,
    classes: Sequence[Hashable] | None = None,
    prior_votes: float = 2.0,
    max_iter: int = 1000,
    tol: float = 1e-10,
) -> RaterModel:
    """Return the MACE model of (unit, rater, label) triples, fitted by EM (see the module's docstring)."""
    if prior_votes < 0:
        raise ValueError("prior_votes must be >= 0")
    coded = _code(triples, classes)
    options = {"prior_votes": prior_votes}
    if not len(coded.unit):
        return _empty("mace", coded, options)
    k, n_raters, n_units = len(coded.classes), len(coded.raters), len(coded.units)
    votes = np.bincount(coded.rater, minlength=n_raters).astype(np.float64)
    theta = np.full(n_raters, 0.8)
    guess = np.full((n_raters, k), 1.0 / k)
    onehot = np.eye(k)[coded.label]  # (N, K)

    def e_step(theta: FloatArray, guess: FloatArray) -> tuple[FloatArray, float, FloatArray]:
        t = theta[coded.rater][:, None]
        guessed = (1 - t) * guess[coded.rater, coded.label][:, None]
        likelihood = t * onehot + guessed  # (N, K): P(label | true class k)
        log_post = _sum_by_unit(np.log(np.maximum(likelihood, TINY)), coded.unit, n_units) - np.log(k)
        posterior, log_likelihood = _normalise_log(log_post)
        # P(the rater knew | its label, the data): only when the true class is the label given.
        knew = posterior[coded.unit, coded.label] * (t[:, 0] / np.maximum(t[:, 0] + guessed[:, 0], TINY))
        return posterior, log_likelihood, knew

    def m_step(knew: FloatArray) -> tuple[FloatArray, FloatArray]:
        knowing = np.bincount(coded.rater, knew, n_raters)
        theta = (knowing + prior_votes / 2) / np.maximum(votes + prior_votes, TINY)
        spent = np.bincount(coded.rater * k + coded.label, 1 - knew, n_raters * k).reshape(n_raters, k)
        guessed: FloatArray = spent.astype(np.float64) + prior_votes / k
        totals = guessed.sum(axis=1, keepdims=True)
        guess = np.where(totals > 0, guessed / np.maximum(totals, TINY), 1.0 / k)
        return theta, guess

    def log_prior(theta: FloatArray, guess: FloatArray) -> float:
        half = prior_votes / 2
        t = np.clip(theta, TINY, 1 - 1e-16)
        return float(
            (half * (np.log(t) + np.log1p(-t))).sum() + (prior_votes / k * np.log(np.maximum(guess, TINY))).sum()
        )

    objective, converged, iterations = -np.inf, False, 0
    while iterations < max_iter:
        iterations += 1
        posterior, log_likelihood, knew = e_step(theta, guess)
        new = log_likelihood + log_prior(theta, guess)
        theta, guess = m_step(knew)
        if abs(new - objective) <= tol * max(1.0, abs(new)):
            converged = True
            break
        objective = new
    posterior, log_likelihood, _ = e_step(theta, guess)
    if k == 1:
        theta = np.ones(n_raters)
    confusion = theta[:, None, None] * np.eye(k)[None] + (1 - theta)[:, None, None] * guess[:, None, :]
    return RaterModel(
        "mace",
        coded.classes,
        coded.units,
        coded.raters,
        np.full(k, 1.0 / k),
        confusion,
        theta,
        posterior,
        votes.astype(np.int64),
        iterations,
        converged,
        log_likelihood,
        options,
    )
