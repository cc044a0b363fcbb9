"""The report's Methods section: the declared analysis and exactly what was done with it, in words."""

from __future__ import annotations

from typing import Any

from normbench.analysis_config import BCA_CAVEAT, AnalysisConfig, describe
from normbench.family import KINDS
from normbench.report.convergence import TARGET_FRACTION

TEST_WORDS = {
    "t": "the paired t-test on the per-seed differences",
    "permutation": ("the sign-flip permutation test of the mean per-seed difference (exact up to 16 seeds, 9,999 "
                    "random sign patterns beyond; its smallest p is 2/2^n two-sided, 0.25 at 3 seeds)"),
}
DIVERGED_WORDS = {
    "exclude": "Diverged runs are excluded from accuracy statistics and counted as diverged beside them",
    "zero": "A diverged run counts as 0 % accuracy in every statistic",
    "worst_rank": ("Diverged runs are excluded from accuracy statistics and counted as diverged beside them; in "
                   "rankings a diverged run ranks below every completed run of its block"),
}


def _family_text(family: dict[str, Any], analysis: AnalysisConfig) -> str:
    counts = "; ".join(f"{n} {KINDS[kind]}" for kind, n in family["counts"].items()) or "none"
    guarantee = ("Holm: the chance of any false verdict is at most alpha" if analysis.correction == "holm" else
                 "Benjamini-Hochberg: the expected share of false verdicts among the verdicts is at most alpha")
    return (f"One family: every hypothesis behind a sentence of the Verdicts list or a mark of the glance - "
            f"m = {family['size']} hypotheses ({counts}) - corrected together ({guarantee}, alpha {analysis.alpha:g}). "
            "p_adj is the adjusted p-value. A pair tested both for the glance and against the reference norm is one "
            "hypothesis; tests that cannot reject (no run diverged in either cell) are not counted.")


def methods(analysis: AnalysisConfig, source: str, family: dict[str, Any]) -> list[str]:
    """Methods lines for ``analysis`` (read from the suite: ``source``) and the report's family summary."""
    reference = analysis.reference_norm
    interval = ("Intervals of a mean are Student-t intervals (mean -/+ t(0.975, n - 1) s / sqrt(n); ci_method t)"
                if analysis.interval == "t" else f"Intervals of a mean are BCa bootstrap intervals. {BCA_CAVEAT}")
    return [
        f"Declared analysis ({'from the suite' if source == 'suite' else source}): {describe(analysis)}. "
        "Nothing in it was chosen after seeing the results; no normality pre-test is run.",
        f"Accuracy is the final test accuracy in percent of completed runs. {DIVERGED_WORDS[analysis.diverged_as]}; "
        "undefined, failed and skipped runs are excluded and listed under Warnings. Tables show n and the runs "
        "excluded next to every statistic.",
        f"{interval}; a cell with one value has no interval, a cell whose seeds all agree the value itself "
        "(degenerate). IQM is the interquartile mean (mean of the middle 50 % of seeds, as in rliable).",
        "Divergence: per cell the diverged runs among those that trained, with the rate's 95 % Clopper-Pearson "
        f"interval; each norm's rate is compared with the reference norm's ({reference}) at the same batch size by "
        "Fisher's exact test (two-sided).",
        f"Paired comparisons: each norm against the reference norm ({reference}) at the same model, dataset and batch "
        f"size, paired by seed (same seed = same initial weights and mini-batch order), by {TEST_WORDS[analysis.test]}, "
        "two-sided; the "
        f"mean difference with its {100 * (1 - analysis.alpha):.0f} % t-interval, Cohen's d_z, and the share of seeds "
        "better (the fraction of seeds on which the norm beats the other, ties half: a description of these seeds, "
        f"not a probability). Equivalence: two one-sided tests (TOST) of |mean difference| < {analysis.margin:g} point.",
        "Verdicts: better / worse when p_adj < alpha, in the direction of the mean difference (a disagreeing effect "
        "size makes it inconclusive and is said); equivalent when TOST p_adj < alpha (also when a significant "
        "difference lies inside the margin); otherwise inconclusive, stated with the smallest detectable effect - the "
        f"true mean difference the declared test finds with {100 * analysis.power:.0f} % power at alpha / m = "
        f"{family['per_comparison_alpha']:.2g}, from the observed SD of the differences - and the seeds needed for "
        f"{analysis.margin:g} point. A test whose smallest possible p is not below that level is said to be unable "
        "to reach it.",
        _family_text(family, analysis),
        "The answer at a glance: at each batch size every norm is compared with the best of the other norms (Hsu's "
        "multiple comparisons with the best): the norm with the highest mean with the runner-up, every other norm "
        "with the highest. best = highest mean, and every other norm is worse than it or equivalent to it; equivalent to best = TOST "
        "within the margin; worse = significantly lower, or diverging significantly more often; inconclusive "
        "otherwise. Consecutive batch sizes with the same recommendation form one regime and one sentence.",
        "Small-batch failure: per norm, each smaller batch size's per-seed accuracy drop from the reference batch "
        f"size (analysis.reference_batch_size; default the largest) is tested one-sided, H0: drop <= {analysis.margin:g} "
        "point, by the declared test; the critical batch size is the largest batch size whose drop exceeds the margin "
        "with p_adj < alpha. Drops are shown with their t-intervals; batch sizes above the reference are shown, not "
        "tested. The replication frequency is the share of 1,000 bootstrap resamples of the seeds (those complete at "
        "every batch size, at least 5) that give the same critical batch size at the family's decision threshold: how "
        "stable the answer is to the seeds drawn, not a confidence interval.",
        "Ranking: one Friedman test per section over independent blocks, one per seed (the norm's rank within each "
        "batch size, averaged over the batch sizes that seed ran: the same seeds run at every batch size, so batch "
        "size x seed blocks would count one seed several times); n_blocks is the number of seeds. Nemenyi pairs and "
        "the critical-difference diagram's cliques count only when Friedman rejects (p_adj < alpha); otherwise every "
        "norm is in one clique.",
        "Convergence curves show the mean over seeds with a 95 % t-interval band at each evaluation step; a diverged "
        "run counts as 0 % after its last evaluation there (whatever diverged_as says: the curve shows the failure). "
        "AUC is the time-averaged test accuracy (trapezoidal area over steps divided by the step span), with a 95 % "
        f"t-interval. Time to target: the first evaluation at or above {TARGET_FRACTION:.0%} of the best cell's mean "
        "final accuracy in the section; runs that never get there are censored (diverged ones at the end of "
        "training) and the median is the Kaplan-Meier median.",
        "Accuracy vs speed: mean final accuracy against the median training samples per second of each norm and "
        "batch size; the Pareto front joins the points no other point beats on both.",
    ]


def epoch_methods(analysis: AnalysisConfig, *, losses: bool, flags: bool, published: bool) -> list[str]:
    """Methods lines for the parts a report has: training loss per epoch (and the declared convergence
    tests), BLN's inference flags, and published results."""
    lines = []
    if losses:
        lines.append("Training loss per epoch: the mean of the batch losses of each epoch, in training mode, as each "
                     "batch was used for its update (Keras' History 'loss'); curves show the mean over seeds with a "
                     "95 % t band.")
    declared = analysis.convergence
    if losses and declared is not None:
        threshold = ("" if declared.loss_threshold is None else
                     f" and the epochs until the training loss is at or below {declared.loss_threshold:g} (a run that "
                     "never gets there counts as one epoch more than it trained: censored, which understates the gap)")
        lines.append("Convergence (declared in analysis.convergence): per completed run the area under the per-epoch "
                     f"training-loss curve divided by its span (the mean loss over training){threshold}; lower is "
                     f"faster. Each norm against the reference norm ({analysis.reference_norm}) at the same batch size, "
                     f"paired by seed, by {TEST_WORDS[analysis.test]}, two-sided, with TOST within "
                     f"{declared.auc_margin:g} (AUC, loss units) and {declared.epochs_margin:g} epoch(s); both tests "
                     "belong to the report's one family. Verdicts as for accuracy: better = converges faster.")
    if flags:
        lines.append("BLN inference flags: after training, every BLN model was evaluated under all 16 combinations of "
                     "its four inference flags (population or current-input statistics, set on every BLN layer "
                     "together; no retraining; the model's state is left unchanged). The combination with the lowest "
                     "validation loss is picked per run and its test accuracy reported; the combination with the "
                     "lowest test loss is what Ziaee & Cano reported (chosen on the test set), and the difference is "
                     "the optimism of that choice. Means with t-intervals over seeds; descriptive, not in the family.")
    if published:
        lines.append("Published vs ours: the suite's declared reference results (`reference:`), matched by task, norm "
                     "and batch size; published per-epoch training losses are drawn dashed over our seed bands. "
                     "Final numbers are computed the way the published ones were (BLN test accuracy with flags picked "
                     "on the test set where the publication did); 'inside' = the published value lies in the "
                     "t-interval of our mean over seeds. A published value is one run, so our seeds' range is shown too.")
    return lines
