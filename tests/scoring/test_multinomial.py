"""Exact multinomial draws by Poissonization."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from scoring import compiled, multinomial
from scoring.multinomial import MultinomialSampler


def multinomial_pmf(counts: tuple[int, ...], probabilities: np.ndarray) -> float:
    """Return the multinomial probability of one outcome."""
    n = sum(counts)
    coefficient = math.factorial(n) / math.prod(math.factorial(c) for c in counts)
    return coefficient * float(np.prod(probabilities ** np.array(counts)))


def outcomes(n: int, cells: int) -> list[tuple[int, ...]]:
    """Return every way to put n draws into the cells."""
    return [c for c in itertools.product(range(n + 1), repeat=cells) if sum(c) == n]


@pytest.mark.parametrize("counts", [(2, 1, 1), (5, 3, 0, 2), (9, 4, 3)])
@pytest.mark.usefixtures("kernels")
def test_draws_follow_the_exact_multinomial_distribution(counts: tuple[int, ...]) -> None:
    sampler = MultinomialSampler(np.array(counts))
    draws = sampler.draw(40_000, np.random.default_rng(0)).T.astype(int)
    probabilities = np.array(counts) / sum(counts)
    support = outcomes(sum(counts), len(counts))
    expected = np.array([multinomial_pmf(c, probabilities) for c in support]) * len(draws)
    seen = dict.fromkeys(support, 0)
    for row in map(tuple, draws):
        seen[row] += 1
    observed = np.array([seen[c] for c in support])
    # Outcomes too rare to expect 5 draws are pooled, as the chi-square test needs.
    rare = expected < 5
    if rare.any():
        observed = np.append(observed[~rare], observed[rare].sum())
        expected = np.append(expected[~rare], expected[rare].sum())
    assert stats.chisquare(observed, expected).pvalue > 1e-3


@pytest.mark.usefixtures("kernels")
def test_large_draws_use_the_tables_and_match_multinomial_moments() -> None:
    counts = np.array([900, 60, 15, 3, 1, 0, 21])
    sampler = MultinomialSampler(counts)
    assert sampler.tables is not None
    assert sampler.tables.cdf is not None
    draws = sampler.draw(20_000, np.random.default_rng(1))
    n, p = counts.sum(), counts / counts.sum()
    assert (draws.sum(axis=0) == n).all()
    assert (draws[counts == 0] == 0).all()
    assert np.allclose(draws.mean(axis=1), n * p, atol=4 * np.sqrt(n * p * (1 - p) / 20_000) + 1e-12)
    covariance = np.cov(draws)
    exact = n * (np.diag(p) - np.outer(p, p))
    assert np.allclose(covariance, exact, atol=0.05 * exact.diagonal().max())


@pytest.mark.usefixtures("kernels")
def test_each_cell_is_binomial() -> None:
    counts = np.array([120, 50, 30])
    draws = MultinomialSampler(counts).draw(30_000, np.random.default_rng(2))
    for cell in range(len(counts)):
        values = draws[cell].astype(int)
        dist = stats.binom(counts.sum(), counts[cell] / counts.sum())
        low, high = int(dist.ppf(0.001)), int(dist.ppf(0.999))
        observed = np.array([(values < low).sum(), *[(values == k).sum() for k in range(low, high + 1)]])
        observed = np.append(observed, (values > high).sum())
        expected = np.array([dist.cdf(low - 1), *dist.pmf(range(low, high + 1)), dist.sf(high)]) * len(values)
        assert stats.chisquare(observed, expected / expected.sum() * len(values)).pvalue > 1e-3


@pytest.mark.parametrize("mean", [0.003, 0.7, 7.3, 64.0, 5000.0])
def test_poisson_tables_invert_the_poisson_cdf(mean: float) -> None:
    tables = multinomial._PoissonTables.build(np.array([mean]))
    values = tables.invert(np.random.default_rng(3).random((1, 50_000)))[0].astype(int)
    dist = stats.poisson(mean)
    low, high = int(dist.ppf(1e-4)), int(dist.ppf(1 - 1e-4))
    edges = np.unique(np.linspace(low, high + 1, 40).astype(int))
    observed, _ = np.histogram(values, bins=np.concatenate([[-1], edges, [np.inf]]))
    cdf = np.concatenate([[0.0], dist.cdf(edges - 1), [1.0]])
    expected = np.diff(cdf) * len(values)
    # Tail bins expecting fewer than 5 draws are merged into their neighbours, as the chi-square test needs.
    seen, wanted = observed.tolist(), expected.tolist()
    for at in (-1, 0):
        while len(wanted) > 2 and wanted[at] < 5:
            tail_seen, tail_wanted = seen.pop(at), wanted.pop(at)
            seen[at] += tail_seen
            wanted[at] += tail_wanted
    assert stats.chisquare(seen, wanted).pvalue > 1e-3


@pytest.mark.usefixtures("kernels")
def test_without_room_for_tables_numpy_poisson_gives_the_same_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(multinomial, "TABLE_BYTES", 0)
    counts = np.array([400, 250, 90])
    sampler = MultinomialSampler(counts)
    assert sampler.tables is not None
    assert sampler.tables.cdf is None
    draws = sampler.draw(20_000, np.random.default_rng(4))
    n, p = counts.sum(), counts / counts.sum()
    assert (draws.sum(axis=0) == n).all()
    assert np.allclose(draws.var(axis=1), n * p * (1 - p), rtol=0.05)


@pytest.mark.usefixtures("kernels")
def test_draws_are_reproducible_from_the_seed() -> None:
    sampler = MultinomialSampler(np.array([30, 10, 5, 55]))
    first = sampler.draw(50, np.random.default_rng(7))
    assert np.array_equal(first, sampler.draw(50, np.random.default_rng(7)))
    assert not np.array_equal(first, sampler.draw(50, np.random.default_rng(8)))


@pytest.mark.usefixtures("kernels")
def test_degenerate_inputs() -> None:
    assert MultinomialSampler(np.array([0, 0])).draw(3, np.random.default_rng(0)).tolist() == [[0] * 3] * 2
    assert MultinomialSampler(np.array([0, 7])).draw(2, np.random.default_rng(0)).tolist() == [[0, 0], [7, 7]]
    with pytest.raises(ValueError, match="non-negative"):
        MultinomialSampler(np.array([1, -1]))


@pytest.mark.parametrize(
    "counts",
    [
        [3, 0, 5, 1, 40, 7],
        [900, 60, 15, 3, 1, 0, 21],
        [1, 1],
        [0, 9, 0],
        list(range(0, 3000, 7)),
        [5000] * 50 + [2] * 50,
    ],
)
def test_the_kernels_and_their_numpy_twins_draw_the_same_counts(
    counts: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    if compiled.kernels is None:
        pytest.skip("the compiled kernels are not built (test_compiled fails for that)")
    with_kernels = MultinomialSampler(np.array(counts))
    drawn = [with_kernels.draw(rounds, np.random.default_rng(seed)) for seed, rounds in enumerate([1, 64, 300])]
    monkeypatch.setattr(compiled, "kernels", None)
    twin = MultinomialSampler(np.array(counts))
    if with_kernels.tables is not None and with_kernels.tables.cdf is not None:
        assert twin.tables is not None
        assert twin.tables.cdf is not None
        assert np.array_equal(with_kernels.tables.cdf, twin.tables.cdf)
        assert np.array_equal(with_kernels.tables.guide, twin.tables.guide)
    for seed, (rounds, draws) in enumerate(zip([1, 64, 300], drawn, strict=True)):
        again = twin.draw(rounds, np.random.default_rng(seed))
        assert np.array_equal(draws, again)
        assert (again.sum(axis=0) == sum(counts)).all()


def test_draws_fill_the_array_they_are_given() -> None:
    sampler = MultinomialSampler(np.array([30, 10, 5, 55]))
    out = np.full((4, 20), -1.0)
    assert sampler.draw(20, np.random.default_rng(1), out) is out
    assert np.array_equal(out, sampler.draw(20, np.random.default_rng(1)))
