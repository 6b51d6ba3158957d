"""Anomalous raters: the fit and left-bias tests, the corrections, the file reader and ``python -m scoring raters``."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from itertools import product
from pathlib import Path

import numpy as np
import pytest

from scoring.loaders import InputError
from scoring.rater_flags import (
    RESOLUTION,
    Correction,
    RaterVote,
    adjust,
    left_bias,
    lower_tail,
    normal_lower_tail,
    rater_report,
    read_rater_votes,
    two_sided,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS = [f"m{i}" for i in range(6)]


def crowd(seed: int, votes: int = 40) -> list[RaterVote]:
    """Return 30 honest raters voting as a Bradley-Terry model (models 150 points apart) predicts, one adversarial
    rater (the model with sides swapped) and one who always votes left."""
    rng = np.random.default_rng(seed)
    strength = {m: i * 150 * math.log(10) / 400 for i, m in enumerate(MODELS)}
    result = []
    for rater in [f"honest-{i}" for i in range(30)] + ["adversary", "lefty"]:
        for _ in range(votes):
            left, right = (MODELS[i] for i in rng.choice(len(MODELS), 2, replace=False))
            says_left = rng.random() < 1 / (1 + math.exp(strength[right] - strength[left]))
            if rater == "lefty":
                says_left = True
            elif rater == "adversary":
                says_left = not says_left
            result.append(RaterVote(rater, left, right, "left" if says_left else "right"))
    return result


def test_planted_raters_are_flagged_with_their_reasons_and_honest_ones_are_not() -> None:
    rows = rater_report(crowd(0))
    by_name = {row["rater"]: row for row in rows}

    assert [row["rater"] for row in rows[:2]] == sorted(["adversary", "lefty"], key=lambda r: rows.index(by_name[r]))
    assert by_name["adversary"]["flagged"]
    assert "votes against the model's predictions" in by_name["adversary"]["reasons"][0]
    assert by_name["lefty"]["left_bias"] == 1.0
    assert any("left bias: 40 of 40" in reason for reason in by_name["lefty"]["reasons"])
    assert sum(row["flagged"] for row in rows if row["rater"].startswith("honest")) <= 1
    assert set(rows[0]) == {
        "rater",
        "votes",
        "competence",
        "left_bias",
        "left_p_value",
        "p_value",
        "flagged",
        "reasons",
    }


def test_under_the_model_the_fit_p_values_are_roughly_uniform() -> None:
    honest = [v for v in crowd(1, votes=30) if v.rater.startswith("honest")]
    rows = rater_report(honest, alpha=0.05, correction="holm")

    assert not any(row["flagged"] for row in rows)


def test_left_bias_gives_the_exact_binomial_p_value() -> None:
    votes = [RaterVote("x", "a", "b", "left")] * 9 + [
        RaterVote("x", "a", "b", "right"),
        RaterVote("x", "a", "b", "tie"),
    ]

    left, decisive, p_value = left_bias(votes)["x"]

    assert (left, decisive) == (9, 10)
    assert p_value == pytest.approx(22 / 1024)  # P(X >= 9) + P(X <= 1) for X ~ Binomial(10, 1/2)
    assert math.isnan(left_bias([RaterVote("y", "a", "b", "tie")])["y"][2])


def test_the_model_conditioned_left_test_is_the_poisson_binomial_counted_by_enumeration() -> None:
    probabilities = [0.9, 0.8, 0.3, 0.6, 0.95, 0.1]
    outcomes = list(product([0, 1], repeat=len(probabilities)))
    weight = [math.prod(p if x else 1 - p for p, x in zip(probabilities, xs, strict=True)) for xs in outcomes]

    for k in range(len(probabilities) + 1):
        lower = sum(w for w, xs in zip(weight, outcomes, strict=True) if sum(xs) <= k)
        upper = sum(w for w, xs in zip(weight, outcomes, strict=True) if sum(xs) >= k)
        assert two_sided(k, probabilities) == pytest.approx(min(1.0, 2 * min(lower, upper)))
    strengths = {"a": 2.0, "b": 0.0}  # a beats b with probability 0.88
    left, decisive, p_value = left_bias([RaterVote("x", "a", "b", "left")] * 8, strengths)["x"]
    assert (left, decisive) == (8, 8)
    assert p_value == pytest.approx(2 * (1 / (1 + math.exp(-2.0))) ** 8)


@pytest.mark.parametrize(("ours", "theirs"), [("bh", "fdr_bh"), ("holm", "holm")])
def test_corrections_match_statsmodels(ours: Correction, theirs: str) -> None:
    from statsmodels.stats.multitest import multipletests

    p_values = np.random.default_rng(3).uniform(0, 0.2, 40).tolist()

    expected = multipletests(p_values, method=theirs)[1]
    assert adjust([*p_values, math.nan], ours)[:-1] == pytest.approx(expected.tolist())
    assert math.isnan(adjust([*p_values, math.nan], ours)[-1])


def test_no_votes_give_no_rows_and_ties_only_give_no_p_value() -> None:
    assert rater_report([]) == []
    rows = rater_report([RaterVote("x", "a", "b", "tie"), RaterVote("y", "b", "a", "left")])
    tie_only = next(row for row in rows if row["rater"] == "x")
    assert (tie_only["p_value"], tie_only["left_bias"], tie_only["flagged"]) == (None, None, False)


def test_competence_comes_from_comparisons_several_raters_voted_on() -> None:
    votes = []
    for unit in range(40):
        for rater in ("a1", "a2", "a3"):
            votes.append(RaterVote(rater, "m0", "m1", "right", unit=str(unit)))  # m1 is better: all say so
        votes.append(RaterVote("contrarian", "m1", "m0", "right", unit=str(unit)))  # m1 on the left: says m0
    votes.append(RaterVote("alone", "m0", "m1", "right", unit="solo"))

    competence = {row["rater"]: row["competence"] for row in rater_report(votes)}

    assert competence["alone"] is None
    assert min(competence[r] for r in ("a1", "a2", "a3")) > 0.9 > 0.2 > competence["contrarian"]


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_a_battle_log_and_a_ratings_export_give_the_same_votes(tmp_path: Path) -> None:
    battles = write_jsonl(
        tmp_path / "battles.jsonl",
        [
            {"model_a": "x", "model_b": "y", "winner": "model_b", "judge": "ann", "question_id": "q1"},
            {"model_a": "y", "model_b": "x", "winner": "tie (bothbad)", "judge": "bob"},
        ],
    )
    export = tmp_path / "ratings.json"
    export.write_text(
        json.dumps(
            [
                {"model_a": "y", "model_b": "x", "rater": "ann", "choice": "a", "shown_left": "b", "comparison_id": 7},
                {"model_a": "x", "model_b": "y", "rater": "bob", "choice": "both_bad", "shown_left": "b"},
            ]
        )
    )

    assert read_rater_votes(str(battles)) == [
        RaterVote("ann", "x", "y", "right", "q1"),
        RaterVote("bob", "y", "x", "tie", None),
    ]
    assert read_rater_votes(str(export)) == [
        RaterVote("ann", "x", "y", "right", "7"),
        RaterVote("bob", "y", "x", "tie", None),
    ]


def test_a_record_without_a_rater_or_with_a_bad_winner_is_refused(tmp_path: Path) -> None:
    no_rater = write_jsonl(tmp_path / "a.jsonl", [{"model_a": "x", "model_b": "y", "winner": "model_a"}])
    bad = write_jsonl(tmp_path / "b.jsonl", [{"model_a": "x", "model_b": "y", "winner": "x", "judge": "j"}])

    with pytest.raises(InputError, match="record 1: no rater"):
        read_rater_votes(str(no_rater))
    with pytest.raises(InputError, match="record 1: winner must be"):
        read_rater_votes(str(bad))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scoring", *args], cwd=REPO_ROOT, capture_output=True, text=True)


def test_the_raters_command_prints_one_row_per_rater_and_flags_the_planted_ones(tmp_path: Path) -> None:
    winner = {"left": "model_a", "right": "model_b", "tie": "tie"}
    log = write_jsonl(
        tmp_path / "battles.jsonl",
        [{"model_a": v.left, "model_b": v.right, "winner": winner[v.outcome], "judge": v.rater} for v in crowd(2)],
    )

    result = run("raters", str(log))
    table = run("raters", str(log), "--format", "table", "--correction", "holm")
    broken = run("raters", str(tmp_path / "missing.jsonl"))

    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["n_votes"] == 32 * 40
    assert {row["rater"] for row in payload["raters"] if row["flagged"]} >= {"adversary", "lefty"}
    assert len(payload["raters"]) == 32
    assert table.returncode == 0
    assert "adversary" in table.stdout.splitlines()[1] or "adversary" in table.stdout.splitlines()[2]
    assert table.stdout.rstrip().endswith("of 32 raters flagged")
    assert broken.returncode == 1
    assert broken.stderr.startswith("error: cannot read")


def test_the_fit_p_value_is_the_lower_tail_of_the_likelihood_counted_by_enumeration() -> None:
    rng = np.random.default_rng(5)
    p = rng.uniform(0.05, 0.95, 12)
    left = rng.random(12) < 0.5
    log_likelihood = np.where(left, np.log(p), np.log1p(-p)).sum()
    everything = np.array(list(product([True, False], repeat=12)))
    chance = np.where(everything, p, 1 - p).prod(axis=1)
    every_likelihood = np.where(everything, np.log(p), np.log1p(-p)).sum(axis=1)

    exact = chance[every_likelihood <= log_likelihood + 1e-12].sum()

    assert lower_tail(p, left, 0.0005) == pytest.approx(exact, abs=2e-3)
    assert lower_tail(p, left, RESOLUTION) == pytest.approx(exact, abs=2e-2)
    assert lower_tail(p, ~(p >= 0.5), RESOLUTION) == pytest.approx(np.prod(np.minimum(p, 1 - p)))  # the least likely
    many = rng.uniform(0.2, 0.8, 400)
    assert normal_lower_tail(many, many >= 0.5) == pytest.approx(1.0, abs=1e-6)
