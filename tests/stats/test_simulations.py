"""Simulations with a known truth for the declared analysis at 3, 5 and 10 seeds (issue 11).

Each check draws data where the answer is known - a true mean, no difference, a difference exactly
on the margin, no norm effect - and counts how often the method is right. Seeded and vectorised,
so the whole module runs in seconds and gives the same numbers every time. Run it as a script for
the larger simulations whose numbers docs/statistics.md quotes:

    PYTHONPATH=. python tests/stats/test_simulations.py
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from normbench import stats

SEEDS = (3, 5, 10)
ALPHA = 0.05
SKEWS = (0.5, 1.0)  # lognormal sigma: skewness about 1.8 and 6.2


def draw(n: int, sims: int, rng: np.random.Generator, sigma: float = 0.0) -> np.ndarray:
    """``(sims, n)`` values with true mean 0: normal(0, 1) for ``sigma`` 0, else lognormal(0, sigma) centred."""
    if sigma == 0:
        return rng.normal(0.0, 1.0, size=(sims, n))
    return rng.lognormal(0.0, sigma, size=(sims, n)) - math.exp(sigma**2 / 2)


def _covers(low: np.ndarray, high: np.ndarray) -> float:
    """Share of intervals that contain the true mean 0."""
    return float(np.mean((low <= 0.0) & (0.0 <= high)))


def t_coverage(n: int, sims: int, rng: np.random.Generator, *, sigma: float = 0.0) -> float:
    """Share of 95 % Student-t intervals of the mean that contain the true mean."""
    return _covers(*stats.t_interval_rows(draw(n, sims, rng, sigma)))


def bca_coverage(n: int, sims: int, rng: np.random.Generator, *, sigma: float = 0.0, resamples: int = 999) -> float:
    """Share of 95 % BCa bootstrap intervals (scipy.stats.bootstrap, as summarize uses) containing the mean."""
    interval = sps.bootstrap((draw(n, sims, rng, sigma),), np.mean, axis=-1, vectorized=True, n_resamples=resamples, method="BCa",
                             rng=rng).confidence_interval
    return _covers(interval.low, interval.high)


def type_one_error(n: int, sims: int, rng: np.random.Generator, *, test: str, alternative: str,
                   sigma: float = 0.0) -> float:
    """Rejection rate of the declared paired test when the differences have mean 0."""
    d = draw(n, sims, rng, sigma)
    if test == "t":
        p = stats.paired_t_rows(d, alternative)[1]
    else:
        p = stats.sign_flip_p_rows(d, alternative)
    return float(np.mean(p < ALPHA))


def tost_at_margin(n: int, sims: int, rng: np.random.Generator, *, test: str, sd: float = 0.5) -> float:
    """Rate at which TOST declares equivalence when the true difference equals the margin (1 point)."""
    d = rng.normal(1.0, sd, size=(sims, n))
    lower, upper = stats.tost_rows(d, 1.0, test=test)
    return float(np.mean(np.maximum(lower, upper) < ALPHA))


def power_at(n: int, effect: float, sims: int, rng: np.random.Generator, *, test: str) -> float:
    """Share of two-sided rejections when the differences are N(effect, 1)."""
    d = rng.normal(effect, 1.0, size=(sims, n))
    p = stats.paired_t_rows(d)[1] if test == "t" else stats.sign_flip_p_rows(d)
    return float(np.mean(p < ALPHA))


def friedman_p(values: np.ndarray) -> np.ndarray:
    """Tie-corrected Friedman p-values for a stack of tables ``(sims, n_blocks, k)``, higher is better.

    Conover's form T1 = (k - 1) sum_j (R_j - b (k + 1) / 2)^2 / (A1 - b k (k + 1)^2 / 4) with
    within-block ranks, which equals scipy.stats.friedmanchisquare with its tie correction.
    """
    ranks = sps.rankdata(-values, axis=2)
    _, b, k = ranks.shape
    sums = ranks.sum(axis=1)
    spread = np.sum(ranks**2, axis=(1, 2)) - b * k * (k + 1) ** 2 / 4
    with np.errstate(invalid="ignore", divide="ignore"):
        statistic = (k - 1) * np.sum((sums - b * (k + 1) / 2) ** 2, axis=1) / spread
    return np.where(spread > 0, sps.chi2.sf(statistic, k - 1), 1.0)


def seed_effect_runs(n_seeds: int, sims: int, rng: np.random.Generator, *, seed_sd: float = 1.0, k: int = 5,
                     conditions: int = 7, shared_seeds: bool = True) -> np.ndarray:
    """Runs ``(sims, conditions, k, n_seeds)`` with no norm effect and a pure seed effect.

    Each seed favours some norms by chance (u[seed, norm] ~ N(0, seed_sd), e.g. its initial
    weights suit one norm) plus run noise N(0, 1). ``shared_seeds``: the same seeds run at every
    condition (batch size), as in normbench suites; otherwise each condition has its own seeds.
    """
    shape = (sims, 1 if shared_seeds else conditions, k, n_seeds)
    return seed_sd * rng.normal(size=shape) + rng.normal(size=(sims, conditions, k, n_seeds))


def friedman_false_positives(n_seeds: int, sims: int, rng: np.random.Generator, *,
                             seed_sd: float = 1.0) -> dict[str, float]:
    """Friedman rejection rates at 5 % with no norm effect, for each way of forming blocks."""
    shared = seed_effect_runs(n_seeds, sims, rng, seed_sd=seed_sd)
    own = seed_effect_runs(n_seeds, sims, rng, seed_sd=seed_sd, shared_seeds=False)
    sims_, conditions, k, _ = shared.shape
    pseudo = shared.transpose(0, 1, 3, 2).reshape(sims_, conditions * n_seeds, k)  # (batch x seed) blocks
    seed = np.stack([stats.seed_blocks(run).values for run in shared])
    return {
        "pseudo-replicated (batch x seed)": float(np.mean(friedman_p(pseudo) < ALPHA)),
        "seed-averaged per batch, shared seeds": float(np.mean(friedman_p(shared.mean(axis=3)) < ALPHA)),
        "seed blocks (mean rank per seed)": float(np.mean(friedman_p(seed) < ALPHA)),
        "seed-averaged per batch, own seeds": float(np.mean(friedman_p(own.mean(axis=3)) < ALPHA)),
    }


def nemenyi_flags(n_blocks: int, sims: int, rng: np.random.Generator, *, k: int = 5) -> dict[str, float]:
    """Under no norm effect: how often Nemenyi flags a pair without, and with, the Friedman gate."""
    values = rng.normal(size=(sims, n_blocks, k))
    rejects = friedman_p(values) < ALPHA
    average = sps.rankdata(-values, axis=2).mean(axis=1)
    flags = np.ptp(average, axis=1) > stats.critical_difference(k, n_blocks)  # some pair beyond the CD
    return {"ungated flag, no rejection": float(np.mean(flags & ~rejects)),
            "gated flag (family-wise error)": float(np.mean(flags & rejects))}


# --- assertions ------------------------------------------------------------------------------

@pytest.mark.parametrize("n", SEEDS)
def test_t_interval_coverage_on_normal_data(n):
    assert 0.93 <= t_coverage(n, 20_000, np.random.default_rng(100 + n)) <= 0.97


def test_bca_undercovers_at_three_seeds():
    # Why the report's default is no longer BCa: at 3 seeds it misses the mean about a quarter of the time.
    assert bca_coverage(3, 1_000, np.random.default_rng(7)) < 0.85


@pytest.mark.parametrize("n", SEEDS)
@pytest.mark.parametrize("test", ["t", "permutation"])
@pytest.mark.parametrize("alternative", ["two-sided", "greater"])
def test_type_one_error_of_the_declared_tests(n, test, alternative):
    assert type_one_error(n, 20_000, np.random.default_rng(200 + n), test=test, alternative=alternative) <= 0.055


@pytest.mark.parametrize("n", SEEDS)
@pytest.mark.parametrize("test", ["t", "permutation"])
def test_tost_rejects_at_most_alpha_on_the_margin(n, test):
    assert tost_at_margin(n, 20_000, np.random.default_rng(300 + n), test=test) <= 0.055


@pytest.mark.parametrize("n", SEEDS)
def test_friedman_false_positives_with_a_pure_seed_effect(n):
    rates = friedman_false_positives(n, 2_000, np.random.default_rng(400 + n))
    assert rates["seed blocks (mean rank per seed)"] <= 0.06
    assert rates["seed-averaged per batch, own seeds"] <= 0.06
    assert rates["pseudo-replicated (batch x seed)"] > 0.06  # the old blocking
    assert rates["seed-averaged per batch, shared seeds"] > 0.06  # averaging does not remove the shared effect


@pytest.mark.parametrize("n", SEEDS)
def test_gated_nemenyi_never_flags_without_an_omnibus_rejection(n):
    rng = np.random.default_rng(500 + n)
    rates = nemenyi_flags(n, 20_000, rng)
    assert rates["gated flag (family-wise error)"] <= 0.055
    # The real function on null data: any flagged pair implies a Friedman rejection.
    for _ in range(30):
        ranking = stats.rank_norms(rng.normal(size=(n, 5)))
        assert ranking.omnibus_rejects or not any(pair.significant for pair in ranking.pairs)


def test_vectorised_friedman_equals_the_package():
    rng = np.random.default_rng(6)
    tables = rng.normal(size=(5, 6, 4))
    tables[0, :, 1] = tables[0, :, 2]  # ties
    assert friedman_p(tables) == pytest.approx([stats.friedman(t).p_value for t in tables], rel=1e-10)


@pytest.mark.parametrize(("n", "test"), [(5, "t"), (10, "t"), (10, "permutation")])
def test_smallest_detectable_effect_has_its_power(n, test):
    effect = stats.smallest_detectable_effect(n, 1.0, test=test)
    assert 0.76 <= power_at(n, effect, 10_000, np.random.default_rng(600 + n), test=test) <= 0.84


# --- the numbers in docs/statistics.md --------------------------------------------------------

def _table(header: list[str], rows: list[tuple[object, list[float]]], digits: int = 3) -> None:
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for label, cells in rows:
        print(f"| {label} | " + " | ".join(f"{c:.{digits}f}" for c in cells) + " |")
    print()


def _report(sims: int = 100_000, seed: int = 2024) -> None:
    """Print the measured rates (Markdown) with ``sims`` simulations per cell from one seeded Generator."""
    rng = np.random.default_rng(seed)
    small = sims // 20  # BCa and Friedman cost more per simulation
    print(f"{sims} simulations per cell ({small} for BCa and Friedman), numpy.random.default_rng({seed})\n")
    print("Coverage of 95 % intervals of the mean")
    _table(["n", "t normal", "t lognormal 0.5", "t lognormal 1.0", "BCa normal", "BCa lognormal 0.5",
            "BCa lognormal 1.0"],
           [(n, [t_coverage(n, sims, rng, sigma=s) for s in (0.0, *SKEWS)]
             + [bca_coverage(n, small, rng, sigma=s) for s in (0.0, *SKEWS)]) for n in SEEDS])
    print("Type-I error at alpha 0.05 (differences with mean 0)")
    _table(["n", "t 2-sided", "t 1-sided", "perm 2-sided", "perm 1-sided", "t 2s lognormal 0.5",
            "perm 2s lognormal 0.5", "t 2s lognormal 1.0", "perm 2s lognormal 1.0"],
           [(n, [type_one_error(n, sims, rng, test=t, alternative=a) for t in ("t", "permutation")
                 for a in ("two-sided", "greater")]
             + [type_one_error(n, sims, rng, test=t, alternative="two-sided", sigma=s) for s in SKEWS
                for t in ("t", "permutation")]) for n in SEEDS], digits=4)
    print("TOST (margin 1, sd 0.5) when the true difference is the margin; power at the smallest detectable effect")
    rows = []
    for n in SEEDS:
        cells = [tost_at_margin(n, sims, rng, test="t"), tost_at_margin(n, sims, rng, test="permutation")]
        for test in ("t", "permutation"):
            effect = stats.smallest_detectable_effect(n, 1.0, test=test)
            cells += [effect, power_at(n, effect, sims, rng, test=test) if math.isfinite(effect) else math.nan]
        rows.append((n, cells))
    _table(["n", "TOST t", "TOST perm", "SDE t (sd units)", "power t", "SDE perm", "power perm"], rows, digits=4)
    for seed_sd in (0.3, 1.0):
        print(f"Friedman rejection rate, no norm effect, seed effect sd {seed_sd} (run noise sd 1), 7 batch sizes, 5 norms")
        results = [(n, friedman_false_positives(n, small, rng, seed_sd=seed_sd)) for n in SEEDS]
        _table(["n seeds", *results[0][1]], [(n, list(r.values())) for n, r in results])
    print("Nemenyi under no norm effect, 5 norms")
    results = [(n, nemenyi_flags(n, sims, rng)) for n in SEEDS]
    _table(["n blocks", *results[0][1]], [(n, list(r.values())) for n, r in results], digits=4)


if __name__ == "__main__":
    _report()
