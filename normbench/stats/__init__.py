"""Statistics for normbench reports: pure functions, arrays in, numbers out, no torch.

Every function takes plain NumPy arrays (shapes in the docstrings) and returns numbers or small
frozen dataclasses. Anything that resamples takes an explicit ``numpy.random.Generator``; the
global NumPy RNG is never used, so a report computed twice from the same store is identical.

Conventions shared by the report:

* Values are per-seed results of one cell (model x dataset x norm x batch size x ...), one value
  per seed. Callers decide what a diverged run contributes, declared once as ``diverged_as``
  (:func:`accuracy_values`, :func:`rank_values`) - these functions never drop values silently
  and reject NaN/inf where a value is required.
* Paired comparisons pair by position: ``a[i]`` and ``b[i]`` come from the same seed.
* The analysis is declared in advance (docs/statistics.md): one paired test (:func:`paired_test`,
  t or sign-flip permutation, no normality pre-test), Student-t intervals (:func:`mean_interval`),
  TOST within a margin (:func:`equivalence_test`), one corrected family (:func:`adjust`), verdicts
  from the sign of the mean (:func:`classify_comparison`).

Modules: ``conventions`` (argument checks, plain-data records), ``summary`` (cell summaries,
intervals of the mean, curve bands), ``paired`` (paired differences and the declared paired test),
``permutation`` (sign-flip machinery), ``equivalence`` (TOST), ``verdicts``, ``divergence`` (rates,
exact tests, diverged_as), ``corrections`` (Holm, BH), ``blocks`` (independent Friedman blocks),
``ranks`` (Friedman, gated Nemenyi/Conover, critical difference), ``batch_failure`` (critical batch
size beyond the margin), ``power`` (smallest detectable effect, seeds needed), ``convergence`` (AUC,
time to target, Kaplan-Meier), ``unpaired`` (declared Welch or Mann-Whitney test, ratio of medians).
"""

from normbench.stats.batch_failure import BatchDrop, MarginCriticalBatchSize, critical_batch_size_beyond_margin
from normbench.stats.blocks import Blocks, condition_blocks, seed_blocks
from normbench.stats.convergence import SurvivalCurve, first_reach, kaplan_meier, normalized_auc
from normbench.stats.corrections import CORRECTIONS, adjust, benjamini_hochberg, holm, per_comparison_alpha
from normbench.stats.divergence import (
    DIVERGED_AS,
    DivergenceComparison,
    DivergenceRate,
    accuracy_values,
    compare_divergence,
    divergence_rate,
    rank_values,
)
from normbench.stats.equivalence import DEFAULT_MARGIN, Equivalence, equivalence_test, tost_rows
from normbench.stats.paired import (
    PAIRED_TESTS,
    PairedTest,
    cohens_dz,
    paired_t_rows,
    paired_test,
    share_of_seeds_better,
    snapped_differences,
)
from normbench.stats.permutation import EXACT_MAX_N, sign_flip_effective_alpha, sign_flip_min_p, sign_flip_p_rows
from normbench.stats.power import (
    minimum_detectable_dz,
    paired_t_power,
    seeds_for_margin,
    seeds_needed,
    smallest_detectable_effect,
)
from normbench.stats.ranks import (
    FriedmanResult,
    Ranking,
    RankPair,
    block_ranks,
    cd_cliques,
    conover,
    critical_difference,
    friedman,
    nemenyi,
    rank_norms,
)
from normbench.stats.summary import (
    CI_METHODS,
    DEFAULT_RESAMPLES,
    CellSummary,
    MeanInterval,
    bootstrap_mean_ci,
    iqm,
    mean_confidence_band,
    mean_interval,
    summarize,
    t_interval_rows,
)
from normbench.stats.unpaired import (
    UNPAIRED_TESTS,
    UnpairedResult,
    cliffs_delta,
    cohens_d,
    median_ratio,
    unpaired_comparison,
)
from normbench.stats.verdicts import VERDICTS, Verdict, classify_comparison, signs_disagree

__all__ = [
    "CI_METHODS", "CORRECTIONS", "DEFAULT_MARGIN", "DEFAULT_RESAMPLES", "DIVERGED_AS", "EXACT_MAX_N", "PAIRED_TESTS",
    "UNPAIRED_TESTS", "VERDICTS", "BatchDrop", "Blocks", "CellSummary", "DivergenceComparison", "DivergenceRate",
    "Equivalence", "FriedmanResult", "MarginCriticalBatchSize", "MeanInterval", "PairedTest", "RankPair", "Ranking",
    "SurvivalCurve", "UnpairedResult", "Verdict", "accuracy_values", "adjust", "benjamini_hochberg", "block_ranks",
    "bootstrap_mean_ci", "cd_cliques", "classify_comparison", "cliffs_delta", "cohens_d", "cohens_dz",
    "compare_divergence", "condition_blocks", "conover", "critical_batch_size_beyond_margin", "critical_difference",
    "divergence_rate", "equivalence_test", "first_reach", "friedman", "holm", "iqm", "kaplan_meier",
    "mean_confidence_band", "mean_interval", "median_ratio", "minimum_detectable_dz", "nemenyi", "normalized_auc",
    "paired_t_power", "paired_t_rows", "paired_test", "per_comparison_alpha", "rank_norms", "rank_values",
    "seed_blocks", "seeds_for_margin", "seeds_needed", "share_of_seeds_better", "sign_flip_effective_alpha",
    "sign_flip_min_p", "sign_flip_p_rows", "signs_disagree", "smallest_detectable_effect", "snapped_differences",
    "summarize", "t_interval_rows", "tost_rows", "unpaired_comparison",
]
