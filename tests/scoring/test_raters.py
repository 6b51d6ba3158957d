"""Dawid-Skene and MACE rater models: Dawid and Skene's own data, crowd-kit as the reference, edge cases."""

from __future__ import annotations

import json
from collections.abc import Hashable
from itertools import product
from pathlib import Path

import numpy as np
import pytest

from scoring.raters import RaterModel, dawid_skene, mace
from tests.scoring.test_ratings import random_votes

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "scoring"
Triple = tuple[Hashable, Hashable, Hashable]


def anaesthesia() -> list[Triple]:
    """Return Dawid and Skene's (1979) Table 1 as (patient, observer, rating) triples, every rating one triple."""
    doc = json.loads((FIXTURES / "dawid_skene_1979.json").read_text())
    return [
        (patient, observer, int(label))
        for patient, line in enumerate(doc["patients"], 1)
        for observer, labels in enumerate(line.split(), 1)
        for label in labels
    ]


def simulated(seed: int = 0) -> tuple[list[Triple], dict[Hashable, str], set[str]]:
    """Return votes a/tie/b on 200 comparisons by 12 raters, 4 of them random; the true labels; the random raters."""
    rng = np.random.default_rng(seed)
    truth: dict[Hashable, str] = {u: str(rng.choice(["a", "tie", "b"], p=[0.45, 0.1, 0.45])) for u in range(200)}
    careless = {f"r{i}" for i in range(4)}
    triples: list[Triple] = []
    for u, rater in product(range(200), [f"r{i}" for i in range(12)]):
        if rng.random() < 0.5:
            continue
        honest = rater not in careless and rng.random() < 0.85
        triples.append((u, rater, truth[u] if honest else str(rng.choice(["a", "tie", "b"]))))
    return triples, truth, careless


def test_dawid_skene_gives_the_papers_class_prevalences_by_maximum_likelihood() -> None:
    model = dawid_skene(anaesthesia(), prior_votes=0)

    assert model.converged
    assert model.classes == (1, 2, 3, 4)
    # Dawid & Skene's (1979) estimates of the class probabilities, as remembered (not checked against the print).
    assert np.round(model.prevalence, 2).tolist() == [0.40, 0.42, 0.11, 0.07]
    assert model.votes.tolist() == [135, 45, 45, 45, 45]
    assert np.allclose(model.confusion.sum(axis=2), 1.0)
    assert np.allclose(model.posterior.sum(axis=1), 1.0)


def test_dawid_skene_matches_crowd_kit_at_convergence_on_the_anaesthesia_data() -> None:
    import pandas as pd
    from crowdkit.aggregation import DawidSkene

    triples = anaesthesia()
    ours = dawid_skene(triples, prior_votes=0)
    # crowd-kit stops when its bound stops rising; a tolerance of -inf runs its EM the rounds asked.
    theirs = DawidSkene(n_iter=80, tol=-np.inf).fit(pd.DataFrame(triples, columns=["task", "worker", "label"]))

    assert theirs.probas_ is not None
    assert theirs.priors_ is not None
    assert theirs.errors_ is not None
    posterior = theirs.probas_.loc[list(ours.units), list(ours.classes)].to_numpy()
    assert np.abs(posterior - ours.posterior).max() < 1e-5
    assert np.allclose(theirs.priors_.loc[list(ours.classes)].to_numpy(), ours.prevalence, atol=1e-5)
    for r, rater in enumerate(ours.raters):
        errors = theirs.errors_.loc[rater].reindex(index=list(ours.classes), columns=list(ours.classes))
        assert np.allclose(errors.fillna(0.0).to_numpy().T, ours.confusion[r], atol=1e-5)


def test_dawid_skene_prior_keeps_a_rater_seen_once_away_from_certainty() -> None:
    triples, _, _ = simulated()
    sparse = [*triples, (0, "newcomer", "tie")]

    plain = dawid_skene(sparse, prior_votes=0)
    smoothed = dawid_skene(sparse)

    newcomer = plain.raters.index("newcomer")
    assert plain.confusion[newcomer].max() == pytest.approx(1.0)  # maximum likelihood: a row of zeros and a one
    assert smoothed.converged
    assert smoothed.confusion[newcomer].min() > 0.0
    assert smoothed.confusion[newcomer].max() < 0.9


def test_dawid_skene_and_mace_find_the_careless_raters_and_the_true_labels() -> None:
    triples, truth, careless = simulated()

    for model in (dawid_skene(triples), mace(triples)):
        competence = model.rater_dict()
        assert max(competence[r] for r in careless) < min(c for r, c in competence.items() if r not in careless)
        labels = model.labels()
        assert np.mean([labels[u] == truth[u] for u in labels]) > 0.9


def test_mace_reaches_a_higher_likelihood_than_crowd_kit_and_agrees_on_who_is_careless() -> None:
    import pandas as pd
    from crowdkit.aggregation import MACE

    triples, _, careless = simulated(1)
    ours = mace(triples, prior_votes=0)
    frame = pd.DataFrame(triples, columns=["task", "worker", "label"])
    theirs = MACE(n_restarts=1, n_iter=50, method="em", random_state=0).fit(frame)

    workers = list(pd.factorize(frame["worker"])[1])
    labels = list(pd.factorize(frame["label"])[1])
    knows = np.array([theirs.spamming_[workers.index(r), 1] for r in ours.raters])
    guess = np.array([[theirs.thetas_[workers.index(r), labels.index(c)] for c in ours.classes] for r in ours.raters])
    assert ours.log_likelihood >= mace_log_likelihood(triples, ours, knows, guess) - 1e-6
    assert np.corrcoef(knows, ours.competence)[0, 1] > 0.95
    assert theirs.probas_ is not None
    theirs_labels = theirs.probas_.idxmax(axis=1)
    assert np.mean([theirs_labels[u] == label for u, label in ours.labels().items()]) > 0.95
    assert {r for r, c in ours.rater_dict().items() if c < 0.5} == careless


def mace_log_likelihood(triples: list[Triple], model: RaterModel, knows: np.ndarray, guess: np.ndarray) -> float:
    """Return MACE's log-likelihood of the triples under competences ``knows`` and guessing distributions ``guess``
    (rows in the model's rater order, columns in its class order), classes uniform a priori."""
    by_unit: dict[Hashable, list[tuple[int, int]]] = {}
    for unit, rater, label in triples:
        by_unit.setdefault(unit, []).append((model.raters.index(rater), model.classes.index(label)))
    total = 0.0
    for votes in by_unit.values():
        per_class = [
            np.prod([knows[r] * (label == k) + (1 - knows[r]) * guess[r, label] for r, label in votes])
            for k in range(len(model.classes))
        ]
        total += float(np.log(np.mean(per_class)))
    return total


def test_mace_log_likelihood_is_the_one_it_reports() -> None:
    triples, _, _ = simulated(2)
    model = mace(triples)
    knows = model.competence
    guess = (model.confusion[:, 0, :] - knows[:, None] * np.eye(len(model.classes))[0]) / (1 - knows[:, None])

    assert model.log_likelihood == pytest.approx(mace_log_likelihood(triples, model, knows, guess), rel=1e-9)


def test_no_triples_and_one_class_give_documented_values() -> None:
    empty = dawid_skene([], classes=["a", "b"])
    assert (empty.units, empty.raters, empty.converged, empty.log_likelihood) == ((), (), True, 0.0)
    assert empty.prevalence.tolist() == [0.5, 0.5]
    assert mace([]).to_dict()["units"] == []

    for model in (dawid_skene([(1, "x", "a"), (2, "y", "a")]), mace([(1, "x", "a"), (2, "y", "a")])):
        assert model.posterior.tolist() == [[1.0], [1.0]]
        assert model.competence.tolist() == pytest.approx([1.0, 1.0])


def test_a_label_outside_the_classes_is_refused() -> None:
    with pytest.raises(ValueError, match="label 'c' is not one of the classes"):
        dawid_skene([(1, "x", "c")], classes=["a", "b"])


def test_to_dict_gives_each_units_posterior_and_each_raters_competence() -> None:
    payload = dawid_skene([(1, "x", "a"), (1, "y", "a"), (2, "x", "b"), (2, "y", "a")]).to_dict()

    assert [r["rater"] for r in payload["raters"]] == ["x", "y"]
    assert payload["units"][0]["label"] == "a"
    assert sum(payload["units"][1]["posterior"].values()) == pytest.approx(1.0)
    json.dumps(payload)


def test_rating_codes_give_the_same_dawid_skene_model_as_their_triples() -> None:
    triples, codes = random_votes(3)
    classes = ("a", "tie", "both_bad", "b")
    expected, got = dawid_skene(triples, classes=classes), dawid_skene(codes, classes=classes)
    assert (got.units, got.raters, got.iterations) == (expected.units, expected.raters, expected.iterations)
    assert got.posterior.tolist() == expected.posterior.tolist()
    assert got.competence.tolist() == expected.competence.tolist()
