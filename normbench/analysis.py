"""The analysis rules that the report and `normbench compare` share: between stats and presenters.

``normbench.stats`` computes (arrays in, numbers out); ``normbench.report`` and ``normbench.compare``
present. Everything in between - what a run's outcome contributes under the declared
``diverged_as``, which runs count for speed, how comparisons are paired and tested, which generator
a cell draws from, how p-values are written - is decided here, once, so both presenters always
agree. The declared analysis itself is :class:`normbench.analysis_config.AnalysisConfig`; the
family a comparison is corrected in, and the verdict it then allows, :mod:`normbench.family`. No torch.

Where to change a policy:

* what a run contributes (outcome -> accuracy): :func:`accuracy_values` (and its words,
  :func:`value_note`); one value per (cell, seed): :func:`accuracy_by_seed`;
* the paired comparison of two cells: :func:`comparison_row`;
* significance of a (corrected) p-value: :func:`is_significant`.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import numpy as np
import pandas as pd

from normbench import stats
from normbench.analysis_config import AnalysisConfig
from normbench.spec import COMPLETED, DIVERGED

# Frames hold accuracies as fractions in [0, 1]; readers think in percentage points.
ACCURACY_SCALE = 100.0
# Defaults of the declared analysis (AnalysisConfig), for callers that have no suite to read.
ALPHA = AnalysisConfig().alpha
POWER = AnalysisConfig().power
# The smallest accuracy change worth acting on: the equivalence margin, and compare's default threshold.
RELEVANT_EFFECT = AnalysisConfig().margin
# Runs of these kinds are training runs (stores written before suite kinds existed have none).
TRAINING_KINDS = ("training", "", None)
# Runs that trained at a measured speed until they stopped: both count for samples per second.
TIMED_OUTCOMES = (COMPLETED, DIVERGED)


# --- plain values -------------------------------------------------------------------------------


def plain_value(value: Any) -> Any:
    """Convert pandas/NumPy scalars and missing markers to plain Python (None for missing);
    dicts (keys as strings), lists and tuples (as lists) recursively."""
    return _plain(value, keep_infinite=True)


def json_safe(value: Any) -> Any:
    """:func:`plain_value` with infinities also as None: what strict JSON can hold."""
    return _plain(value, keep_infinite=False)


def _plain(value: Any, *, keep_infinite: bool) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v, keep_infinite=keep_infinite) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, keep_infinite=keep_infinite) for v in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and (math.isnan(value) or (not keep_infinite and math.isinf(value))):
        return None
    return value


def plain_text(value: Any) -> str:
    """``str(value)``, or '' when the value is missing (None, NaN, pandas NA)."""
    return "" if plain_value(value) is None else str(value)


def finite_number(value: Any) -> float:
    """``float(value)`` when that is a finite number, else NaN (missing, text, infinite)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def is_training(kind: Any) -> bool:
    """Whether a run of suite kind ``kind`` is a training run (accuracy statistics apply)."""
    return plain_value(kind) in TRAINING_KINDS


# --- what runs contribute -----------------------------------------------------------------------


def accuracy_values(runs: pd.DataFrame, diverged_as: str = "exclude") -> np.ndarray:
    """Accuracy in percent per run of ``runs`` (shape ``(len(runs),)``, row order) for accuracy statistics.

    A completed run gives its final test accuracy x 100; a diverged run 0 under ``diverged_as``
    "zero" and NaN (excluded, and counted as diverged) under "exclude" and "worst_rank"
    (``stats.accuracy_values``); undefined, failed, skipped runs and completed runs without an
    accuracy contribute nothing (NaN).
    """
    accuracy = pd.to_numeric(runs["final_test_accuracy"], errors="coerce").astype(float).to_numpy()
    value = np.full(len(runs), np.nan)
    completed = (runs["outcome"] == COMPLETED).to_numpy() & np.isfinite(accuracy)
    value[completed] = accuracy[completed] * ACCURACY_SCALE
    diverged = (runs["outcome"] == DIVERGED).to_numpy()
    return stats.accuracy_values(np.where(diverged, 0.0, value), diverged, diverged_as)


def value_note(outcome: Any, final_accuracy: Any, diverged_as: str = "exclude") -> str:
    """What :func:`accuracy_values` does with a run, in words for a warning ('' = a clean result)."""
    if outcome == COMPLETED:
        return "" if math.isfinite(finite_number(final_accuracy)) else "excluded: completed without a final test accuracy"
    if outcome == DIVERGED:
        return {"zero": "counted as 0 % accuracy",
                "exclude": "excluded from accuracy statistics, counted in the divergence rate",
                "worst_rank": "excluded from accuracy statistics, ranked last, counted in the divergence rate",
                }[diverged_as]
    return "excluded from statistics"


def accuracy_by_seed(runs: pd.DataFrame, diverged_as: str = "exclude") -> dict[int, float]:
    """One cell's accuracy per seed (:func:`accuracy_values`), the first contributing run by run id
    of each seed; the dict is in run-id order of those runs. See :func:`repeated_seeds`."""
    values = accuracy_values(runs, diverged_as)
    order = np.argsort(runs["run_id"].to_numpy(), kind="stable")
    out: dict[int, float] = {}
    for seed, value in zip(runs["seed"].to_numpy()[order], values[order]):
        if math.isfinite(value):
            out.setdefault(int(seed), float(value))
    return out


def diverged_seeds(runs: pd.DataFrame) -> list[int]:
    """Seeds (ascending) of a cell's diverged runs that no completed run of the same seed stands for."""
    completed = set(int(s) for s in runs.loc[runs["outcome"] == COMPLETED, "seed"])
    return sorted({int(s) for s in runs.loc[runs["outcome"] == DIVERGED, "seed"]} - completed)


def repeated_seeds(runs: pd.DataFrame, diverged_as: str = "exclude") -> list[int]:
    """Seeds (ascending) with more than one contributing run in one cell; only the first counts."""
    seeds = runs["seed"].to_numpy()[np.isfinite(accuracy_values(runs, diverged_as))]
    unique, counts = np.unique(seeds.astype(np.int64), return_counts=True)
    return [int(s) for s in unique[counts > 1]]


def count_outcome(runs: pd.DataFrame, outcome: str) -> int:
    """How many of ``runs`` ended with ``outcome``."""
    return int((runs["outcome"] == outcome).sum())


def training_speeds(runs: pd.DataFrame) -> pd.Series:
    """Training samples per second of each run (index of ``runs``), NaN where the run does not count:
    not completed or diverged (:data:`TIMED_OUTCOMES`), or no finite speed recorded."""
    speed = pd.to_numeric(runs["samples_per_s"], errors="coerce").astype(float)
    return speed.where(np.isfinite(speed.to_numpy()) & runs["outcome"].isin(TIMED_OUTCOMES).to_numpy())


# --- comparisons --------------------------------------------------------------------------------


def aligned_by_seed(a: dict[int, float], b: dict[int, float]) -> tuple[list[int], list[float], list[float]]:
    """The seeds ``a`` and ``b`` share (ascending) and their values in that order: pairs, since the
    same seed means the same initial weights and data order."""
    common = sorted(set(a) & set(b))
    return common, [a[s] for s in common], [b[s] for s in common]


def comparison_row(a: Any, b: Any, analysis: AnalysisConfig, *, rng: np.random.Generator | None = None) -> dict[str, Any]:
    """Paired comparison of ``a`` against ``b`` (shapes ``(n,)``, pairs by position = seed) as the
    report states it: the declared two-sided test, TOST within the margin, the (1 - alpha) t-interval
    of the mean difference and the share of seeds better.

    The family fields (``p_adjusted``, ``equivalence_p_adjusted``, ``family``) and the verdict
    (``direction`` and the rest) are filled in by :mod:`normbench.family` once the report's
    family is complete; until then ``direction`` is "inconclusive". ``rng`` is needed by the
    permutation test beyond 16 seeds.
    """
    test = stats.paired_test(a, b, test=analysis.test, rng=rng)
    equivalence = stats.equivalence_test(a, b, margin=analysis.margin, alpha=analysis.alpha, test=analysis.test,
                                         rng=rng)
    d = stats.snapped_differences(a, b)
    low = high = math.nan
    if d.size >= 2:
        low, high = (float(v[0]) for v in stats.t_interval_rows(d[None, :], confidence=1 - analysis.alpha))
    return {
        "test": test.test, "alternative": test.alternative, "statistic": test.statistic, "p_value": test.p_value,
        "p_adjusted": math.nan, "family": "", "mean_difference": test.mean_difference,
        "sd_difference": test.sd_difference, "ci_low": low, "ci_high": high, "confidence": 1 - analysis.alpha,
        "effect_size": test.effect_size, "effect_name": "d_z", "direction": "inconclusive", "n": test.n,
        "min_p": test.min_p, "exact": test.exact, "reason": test.reason,
        "equivalence_p": equivalence.p_value, "equivalence_p_adjusted": math.nan, "margin": analysis.margin,
        "share_of_seeds_better": stats.share_of_seeds_better(d) if d.size else math.nan,
    }


def is_significant(p_value: float, alpha: float) -> bool:
    """A (corrected) p-value below ``alpha``; NaN (not tested) never is."""
    return bool(np.isfinite(p_value) and p_value < alpha)


# --- generators ---------------------------------------------------------------------------------


def seeded_generator(rng_seed: int, identity: str) -> np.random.Generator:
    """A generator seeded by ``rng_seed`` and a hash of ``identity`` (what is being resampled).

    Deriving it from the identity (rather than drawing from one shared stream) makes each result
    independent of which other cells exist and of the order they are visited.
    """
    digest = hashlib.sha256(identity.encode()).digest()
    return np.random.default_rng(np.random.SeedSequence([int(rng_seed), int.from_bytes(digest[:8], "little")]))


def cell_rng(rng_seed: int, *key: Any) -> np.random.Generator:
    """The generator a report cell's bootstrap uses; a cell's key is
    ``(model, dataset, *varying settings, batch_size, norm_label)``."""
    return seeded_generator(rng_seed, json.dumps([str(part) for part in key]))


# --- formatting ---------------------------------------------------------------------------------


def format_p(p: float | None, *, relation: bool = True, missing: str = "n/a") -> str:
    """p-value as printed: '= 0.012' or '< 0.001' ('0.012' without ``relation``; a table column),
    ``missing`` when not testable."""
    if p is None or not math.isfinite(p):
        return missing
    if p < 0.001:
        return "< 0.001"
    return f"= {p:.3f}" if relation else f"{p:.3f}"


def format_detectable(mde: float | None, *, missing: str = "n/a") -> str:
    """Minimum detectable difference in points: '4.2', 'none' when no effect can be detected,
    ``missing`` when not computed."""
    if mde is None or (isinstance(mde, float) and math.isnan(mde)):
        return missing
    return "none" if math.isinf(mde) else f"{mde:.1f}"
