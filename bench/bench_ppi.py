"""Benchmark: coverage and width of prediction-powered Bradley-Terry intervals (scoring/ppi.py) by simulation.

Known true ratings of 8 models (spread over about 280 points); each trial draws 20,000 comparisons of random model
pairs, every one rated by a biased LLM judge, the first 1,000 also by a human (binary votes, the human's drawn
from the true Bradley-Terry probabilities). The judge copies the human's vote except that it flips it with
probability e, and in addition flips a vote against its own model (the "self-preference" of a judge scoring its
family) with probability BIAS; e is set so that it agrees with the humans on 90% of the comparisons. For each model
and trial the 95% intervals of three fits are checked against the true (mean-centred) rating:

- combined: PPI++ on the 1,000 paired votes plus the 19,000 judge-only comparisons (goal: 93-97% coverage);
- judge only: Bradley-Terry on all 20,000 judge votes (expected to fail under the bias);
- humans only: Bradley-Terry on the 1,000 human votes (the baseline width).

Goal (issue 17): the combined interval at least 30% narrower than the humans-only one at 90% agreement (ideal about
40%: sqrt(1 - rho^2 N / (n + N)) with rho = 0.8).

    python bench/bench_ppi.py [--trials 400] [--seed 0] [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from scoring.ppi import PPIData, judge_only_fit, ppi_fit

MODELS = tuple(f"model-{k}" for k in range(8))
THETA = np.linspace(0.8, -0.8, len(MODELS))
OWN = 5  # the judge's own model: a middle-to-low one, so that the bias moves it visibly
BIAS = 0.3
AGREEMENT = 0.90
Z95 = 1.959963984540054


def against_own_share() -> float:
    """Return the share of comparisons (uniform random pairs) that include OWN and that the human votes against."""
    m = len(MODELS)
    others = [k for k in range(m) if k != OWN]
    lose = np.mean([1 / (1 + np.exp(THETA[OWN] - THETA[k])) for k in others])
    return float(2 / m * lose)


def trial(rng: np.random.Generator, n: int, big_n: int, noise: float) -> dict[str, np.ndarray]:
    """Simulate one data set; return each fit's centred estimates and standard errors (natural log-strengths)."""
    m = len(MODELS)
    a = rng.integers(0, m, big_n)
    b = (a + rng.integers(1, m, big_n)) % m
    y = (rng.random(big_n) < 1 / (1 + np.exp(THETA[b] - THETA[a]))).astype(float)
    against = ((a == OWN) & (y == 0)) | ((b == OWN) & (y == 1))
    flip = rng.random(big_n) < noise + BIAS * against
    yhat = np.where(flip, 1 - y, y)
    data = PPIData.from_arrays(MODELS, (a[:n], b[:n], y[:n], yhat[:n]), (a[n:], b[n:], yhat[n:]))
    combined, human, judge = ppi_fit(data), ppi_fit(data, lam=0.0), judge_only_fit(data)
    return {
        "combined": combined.theta,
        "combined_se": np.sqrt(np.diag(combined.cov)),
        "human": human.theta,
        "human_se": np.sqrt(np.diag(human.cov)),
        "judge": judge.theta,
        "judge_se": np.sqrt(np.diag(judge.cov)),
        "lam": np.array([combined.lam]),
        "agree": np.array([float((yhat == y).mean())]),
    }


def main() -> None:
    """Run the trials and print coverage and widths against the goals."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--humans", type=int, default=1000)
    parser.add_argument("--judged", type=int, default=20000)
    parser.add_argument("--quick", action="store_true", help="100 trials")
    args = parser.parse_args()
    trials = 100 if args.quick else args.trials
    noise = (1 - AGREEMENT) - BIAS * against_own_share()
    rng = np.random.default_rng(args.seed)
    truth = THETA - THETA.mean()
    started = time.perf_counter()
    runs = [trial(rng, args.humans, args.judged, noise) for _ in range(trials)]
    seconds = time.perf_counter() - started
    stack = {key: np.array([run[key] for run in runs]) for key in runs[0]}

    def coverage(name: str) -> np.ndarray:
        covered: np.ndarray = np.abs(stack[name] - truth) <= Z95 * stack[f"{name}_se"]
        return covered

    cov_ppi, cov_judge, cov_human = coverage("combined"), coverage("judge"), coverage("human")
    ratio = stack["combined_se"].mean() / stack["human_se"].mean()
    narrower = 1 - ratio
    half = cov_ppi.mean(axis=1)
    se_cov = half.std(ddof=1) / np.sqrt(trials)
    print(f"{trials} trials of {args.humans:,} human and {args.judged:,} judge votes over {len(MODELS)} models")
    print(f"judge agreement with humans: {stack['agree'].mean():.1%}; own model {MODELS[OWN]}, bias {BIAS}")
    print(f"lambda: median {np.median(stack['lam']):.3f} (range {stack['lam'].min():.3f}-{stack['lam'].max():.3f})")
    shift = 400 / np.log(10) * (stack["judge"][:, OWN] - truth[OWN]).mean()
    print(f"judge-only bias on its own model: {shift:+.1f} pt")
    met = 0.93 <= cov_ppi.mean() <= 0.97
    print(f"combined coverage: {cov_ppi.mean():.1%} (+-{se_cov:.1%})   target 93-97%: {'met' if met else 'NOT met'}")
    worst = ", ".join(f"{name} {value:.0%}" for name, value in zip(MODELS, cov_judge.mean(axis=0), strict=True))
    print(f"judge-only coverage: {cov_judge.mean():.1%} (per model: {worst})   expected to fail under bias")
    print(f"humans-only coverage: {cov_human.mean():.1%}")
    width = f"{Z95 * 400 / np.log(10) * stack['combined_se'].mean():.1f}"
    human_width = f"{Z95 * 400 / np.log(10) * stack['human_se'].mean():.1f}"
    print(f"interval half-width: combined {width} pt, humans only {human_width} pt")
    ok = "met" if narrower >= 0.30 else "NOT met"
    print(f"combined narrower than humans only by {narrower:.1%}   target >= 30%: {ok} (ideal about 40%)")
    print(f"{seconds:.1f} s ({seconds / trials * 1000:.0f} ms a trial)")


if __name__ == "__main__":
    main()
