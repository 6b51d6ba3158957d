"""Benchmark: do the anomalous-rater tests (``scoring.rater_flags``) find planted bad raters among honest ones?

Each round simulates a crowd on 10 models whose Bradley-Terry ratings are 100 points apart (0 to 900): 85 honest
raters who vote as the model predicts (5% ties), and 15 planted ones, 5 of each kind: careless (left or right at
random), always-left, and adversarial (votes as the model predicts with the two models swapped). Every rater
gives --votes votes (default 30) on random pairs shown in random order. ``rater_report`` (Benjamini-Hochberg at
0.05 over both tests of every rater) flags raters; recall is the share of planted raters flagged, the false-flag
rate the share of honest ones flagged, over --rounds rounds (default 20).

    python bench/bench_raters.py [--rounds N] [--votes N] [--correction bh|holm] [--seed S]
Target (issue 16): at least 90% of planted raters flagged at under 5% false flags with 30 votes each.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scoring.rater_flags import RaterVote, rater_report

MODELS = [f"model-{i}" for i in range(10)]
STRENGTH = {m: i * 100 * math.log(10) / 400 for i, m in enumerate(MODELS)}  # 100 rating points apart
KINDS = {"honest": 85, "careless": 5, "always_left": 5, "adversarial": 5}


def crowd(rng: np.random.Generator, votes: int) -> tuple[list[RaterVote], dict[str, str]]:
    """Return one simulated crowd's votes and each rater's kind."""
    kinds = {f"{kind}-{i}": kind for kind, n in KINDS.items() for i in range(n)}
    result = []
    for rater, kind in kinds.items():
        for _ in range(votes):
            left, right = (MODELS[i] for i in rng.choice(len(MODELS), 2, replace=False))
            p_left = 1 / (1 + math.exp(STRENGTH[right] - STRENGTH[left]))
            if kind == "careless":
                outcome = "left" if rng.random() < 0.5 else "right"
            elif kind == "always_left":
                outcome = "left"
            elif rng.random() < 0.05:
                outcome = "tie"
            else:
                says_left = rng.random() < p_left
                outcome = "left" if says_left != (kind == "adversarial") else "right"
            result.append(RaterVote(rater, left, right, outcome))  # type: ignore[arg-type]
    return result, kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--votes", type=int, default=30)
    parser.add_argument("--correction", choices=("bh", "holm"), default="bh")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    flagged = dict.fromkeys(KINDS, 0)
    seen = dict.fromkeys(KINDS, 0)
    started = time.perf_counter()
    for _ in range(args.rounds):
        votes, kinds = crowd(rng, args.votes)
        for row in rater_report(votes, correction=args.correction):
            kind = kinds[row["rater"]]
            seen[kind] += 1
            flagged[kind] += row["flagged"]
    seconds = (time.perf_counter() - started) / args.rounds
    planted = [k for k in KINDS if k != "honest"]
    recall = sum(flagged[k] for k in planted) / sum(seen[k] for k in planted)
    false_flags = flagged["honest"] / seen["honest"]
    print(f"{args.rounds} rounds of 100 raters x {args.votes} votes, {args.correction}, {seconds:.2f} s a round")
    for kind in planted:
        print(f"  {kind:<12} flagged {flagged[kind]:>4} of {seen[kind]:>4} ({flagged[kind] / seen[kind]:.1%})")
    print(f"  honest       flagged {flagged['honest']:>4} of {seen['honest']:>4} ({false_flags:.1%})")
    met = recall >= 0.9 and false_flags < 0.05
    print(f"recall {recall:.1%}, false flags {false_flags:.1%}")
    verdict = "met" if met else "NOT met"
    print(f"target: >= 90% of planted raters flagged at < 5% false flags with 30 votes each: {verdict}")


if __name__ == "__main__":
    main()
