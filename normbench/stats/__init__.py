"""Statistics for normbench reports: pure functions, arrays in, numbers out, no torch.

Every function takes plain NumPy arrays (shapes in the docstrings) and returns numbers or small
frozen dataclasses. Anything that resamples takes an explicit ``numpy.random.Generator``; the
global NumPy RNG is never used, so a report computed twice from the same store is identical.

Conventions shared by the report:

* Values are per-seed results of one cell (model x dataset x norm x batch size x ...), one value
  per seed. Callers decide what a failed run contributes (the report maps diverged runs to
  accuracy 0 and excludes undefined/failed/skipped runs) - these functions never drop values
  silently and reject NaN/inf.
* Paired comparisons pair by position: ``a[i]`` and ``b[i]`` come from the same seed.

Modules: ``summary`` (cell summaries, curve bands), ``paired`` (paired tests and effect sizes),
``corrections`` (Holm), ``unpaired`` (Welch / Mann-Whitney, ratio of medians), ``ranks``
(Friedman, Nemenyi, critical difference), ``batch_failure`` (critical batch size),
``convergence`` (AUC, time to target, Kaplan-Meier), ``power`` (minimum detectable effect).
"""

from normbench.stats.batch_failure import BatchFailure, critical_batch_size, describe_interval, failure_summary
from normbench.stats.convergence import SurvivalCurve, first_reach, kaplan_meier, normalized_auc
from normbench.stats.corrections import holm
from normbench.stats.paired import (
    NORMALITY_ALPHA,
    PairedResult,
    cohens_dz,
    paired_comparison,
    paired_test_rows,
    probability_of_improvement,
    rank_biserial,
    signed_rank_rows,
    snapped_differences,
)
from normbench.stats.power import (
    detectable_difference,
    minimum_detectable_dz,
    paired_t_power,
    seeds_needed,
    wilcoxon_min_p,
)
from normbench.stats.ranks import FriedmanResult, block_ranks, cd_cliques, critical_difference, friedman, nemenyi
from normbench.stats.summary import (
    DEFAULT_RESAMPLES,
    CellSummary,
    bootstrap_mean_ci,
    iqm,
    mean_confidence_band,
    summarize,
)
from normbench.stats.unpaired import UnpairedResult, cliffs_delta, cohens_d, median_ratio, unpaired_comparison

__all__ = [
    "DEFAULT_RESAMPLES", "NORMALITY_ALPHA", "BatchFailure", "CellSummary", "FriedmanResult", "PairedResult",
    "SurvivalCurve", "UnpairedResult", "block_ranks", "bootstrap_mean_ci", "cd_cliques", "cliffs_delta",
    "cohens_d", "cohens_dz", "critical_batch_size", "critical_difference", "describe_interval",
    "detectable_difference", "failure_summary", "first_reach", "friedman", "holm", "iqm", "kaplan_meier",
    "mean_confidence_band", "median_ratio", "minimum_detectable_dz", "nemenyi", "normalized_auc",
    "paired_comparison", "paired_t_power", "paired_test_rows", "probability_of_improvement", "rank_biserial",
    "seeds_needed", "signed_rank_rows", "snapped_differences", "summarize", "unpaired_comparison",
    "wilcoxon_min_p",
]
