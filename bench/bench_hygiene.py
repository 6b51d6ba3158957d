"""Benchmark: prompt hygiene (near-duplicate detection) and vote influence.

**Near-duplicates.** --prompts synthetic prompts (default 200,000): 8 to 40 words drawn from a Zipf vocabulary of
20,000 made-up words, of which --planted (default 5%) are copies of an earlier prompt, half of them exact copies
after normalisation (case, punctuation and spacing changed) and half edited (1 to 4 words replaced, or a phrase
added). Every planted pair's true 5-shingle Jaccard similarity is computed; ``scoring.near_duplicates`` should put
the pairs at or above 0.8 in one group (recall) and nothing else together (precision: the share of pairs within
the groups found that are a planted copy and its source, or copies of one source). Prints time and peak memory
(the process's peak RSS before and after the search).

**Influence.** An Arena-shaped log (``bench/arena_logs.write_realistic``: --battles battles, default 200,000,
among --models models, default 60) read by ``scoring.loaders``, fitted, and ``scoring.influence`` run on every
adjacent pair; prints the time, the refits and the fragile pairs.

    python bench/bench_hygiene.py [--prompts N] [--planted F] [--battles N] [--models M] [--seed S] [--skip-influence]
"""

from __future__ import annotations

import argparse
import itertools
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from arena_logs import write_realistic

from scoring.bradley_terry import bradley_terry_from_counts
from scoring.influence import leaderboard_influence
from scoring.loaders import read_battle_counts
from scoring.near_duplicates import THRESHOLD, find_duplicates, jaccard, normalise

LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"))


def vocabulary(rng: np.random.Generator, size: int) -> list[str]:
    """Return ``size`` made-up words of 2 to 10 letters."""
    lengths = rng.integers(2, 11, size)
    return ["".join(rng.choice(LETTERS, n)) for n in lengths]


def synthetic_prompts(
    rng: np.random.Generator, n: int, planted: float
) -> tuple[list[str], np.ndarray, list[tuple[int, int]]]:
    """Return prompts, each prompt's family (its source's index) and the planted (source, copy) pairs."""
    words = vocabulary(rng, 20_000)
    weights = 1 / np.arange(1, len(words) + 1) ** 1.1
    weights /= weights.sum()
    lengths = rng.integers(8, 41, n)
    drawn = rng.choice(len(words), int(lengths.sum()), p=weights)
    ends = np.cumsum(lengths)
    fresh = [" ".join(words[i] for i in drawn[end - length : end]) for end, length in zip(ends, lengths, strict=True)]
    texts: list[str] = []
    family = np.arange(n)
    pairs = []
    copies = rng.random(n) < planted
    for k in range(n):
        if copies[k] and k > 0:
            source = int(family[int(rng.integers(0, k))])
            texts.append(_copy(rng, texts[source], words))
            family[k] = source
            pairs.append((source, k))
        else:
            texts.append(fresh[k])
    return texts, family, pairs


def _copy(rng: np.random.Generator, text: str, words: list[str]) -> str:
    """Return an exact copy up to case, punctuation and spacing, or an edited copy."""
    if rng.random() < 0.5:
        return text.upper().replace(" ", "  ", 1) + "?!"
    tokens = text.split()
    if rng.random() < 0.5:
        for _ in range(int(rng.integers(1, 5))):
            tokens[int(rng.integers(len(tokens)))] = words[int(rng.integers(len(words)))]
    else:
        tokens += ["please", "answer", "briefly"]
    return " ".join(tokens)


def bench_near_duplicates(n: int, planted: float, seed: int) -> None:
    """Run the near-duplicate detection and print recall, precision, time and peak memory."""
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    texts, family, pairs = synthetic_prompts(rng, n, planted)
    print(f"generated {n} prompts ({len(pairs)} planted copies) in {time.perf_counter() - started:.1f} s")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started, cpu = time.perf_counter(), time.process_time()
    groups = find_duplicates(texts)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    group_of = np.full(n, -1)
    for g, group in enumerate(groups):
        group_of[list(group.members)] = g
    similar = [(a, b) for a, b in pairs if jaccard(normalise(texts[a]), normalise(texts[b])) >= THRESHOLD]
    found = sum(group_of[a] >= 0 and group_of[a] == group_of[b] for a, b in similar)
    below = len(pairs) - len(similar)
    found_below = sum(group_of[a] >= 0 and group_of[a] == group_of[b] for a, b in pairs) - found
    within = same_family = 0
    for group in groups:
        members = np.array(group.members)
        size = len(members)
        within += size * (size - 1) // 2
        _, per_family = np.unique(family[members], return_counts=True)
        same_family += int((per_family * (per_family - 1) // 2).sum())
    exact = sum(group.kind == "exact" for group in groups)
    print(
        f"near-duplicates: {n} prompts in {seconds:.1f} s wall, {cpu:.1f} s CPU ({1e6 * cpu / n:.0f} us CPU a "
        f"prompt); peak RSS {peak / 1024:.0f} MB ({before / 1024:.0f} MB before, the prompts included); "
        f"{len(groups)} groups ({exact} exact)"
    )
    print(
        f"  recall {found}/{len(similar)} = {found / max(len(similar), 1):.4f} of planted pairs with Jaccard >= "
        f"{THRESHOLD}; {found_below}/{below} planted pairs below it grouped (through a chain or an exact copy)"
    )
    print(f"  precision {same_family}/{within} = {same_family / max(within, 1):.4f} of the pairs within groups")


def bench_influence(battles: int, models: int, seed: int) -> None:
    """Time the influence search on an Arena-shaped log."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "arena.jsonl"
        write_realistic(path, battles, n_models=models, seed=seed, conversation_share=0.0)
        counts = read_battle_counts(path)
    board = bradley_terry_from_counts(counts)
    started, cpu = time.perf_counter(), time.process_time()
    pairs = leaderboard_influence(counts, board)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    fragile = [pair for pair in pairs if pair.fragile]
    capped = sum(pair.n_votes_to_flip is None for pair in pairs)
    flips = sorted(pair.n_votes_to_flip for pair in pairs if pair.n_votes_to_flip is not None)
    median = flips[len(flips) // 2] if flips else None
    print(
        f"influence: {counts.n_battles} battles, {len(counts.models)} models, {len(pairs)} adjacent pairs in "
        f"{seconds:.1f} s wall, {cpu:.1f} s CPU ({sum(pair.refits for pair in pairs)} refits); "
        f"{len(fragile)} fragile, {capped} past the "
        f"cap, median {median} votes to flip"
    )
    for pair in itertools.islice(fragile, 5):
        print(f"  fragile: {pair.upper} / {pair.lower}: {pair.n_votes_to_flip} votes, gap {pair.rating_gap:.2f}")


def main() -> None:
    """Parse the options and run both benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=200_000)
    parser.add_argument("--planted", type=float, default=0.05)
    parser.add_argument("--battles", type=int, default=200_000)
    parser.add_argument("--models", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-influence", action="store_true")
    args = parser.parse_args()
    bench_near_duplicates(args.prompts, args.planted, args.seed)
    if not args.skip_influence:
        bench_influence(args.battles, args.models, args.seed)


if __name__ == "__main__":
    main()
