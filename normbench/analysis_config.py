"""The analysis a suite declares in advance (its `analysis:` block): which paired test, which interval,
alpha, the equivalence margin, the family correction, what a diverged run counts as, and the
reference norm and batch size. The report reads it back from the stored suite YAML.

Every field has a default, so a suite without the block (and every store written before it
existed) is analysed the same documented way; docs/statistics.md explains each choice.
"""

from __future__ import annotations

from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

# Why BCa is allowed at all: the issue's rule is "BCa only where a coverage check shows >= 93 % at
# nominal 95 %"; docs/statistics.md measured 71 / 85 / 90 % at 3 / 5 / 10 seeds, so the report
# prints this caveat whenever a suite declares it.
BCA_CAVEAT = ("BCa bootstrap intervals were declared; at 3-10 seeds they cover the mean far less often than "
              "95 % (71 % at 3 seeds, 85 % at 5, 90 % at 10 on normal data, docs/statistics.md)")


class ConvergenceConfig(BaseModel):
    """"Faster convergence" as declared tests on the per-epoch training loss (normbench/epochs.py),
    each norm against the reference norm, paired by seed: the area under the training-loss curve
    (its mean over the epochs) and, with ``loss_threshold``, the epochs until the training loss is at
    or below it. Lower is faster for both; ``auc_margin`` (loss units) and ``epochs_margin`` are
    the equivalence margins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    loss_threshold: float | None = Field(default=None, gt=0, description="training loss to reach (epochs to threshold)")
    auc_margin: float = Field(default=0.05, gt=0, description="equivalence margin of the AUC, in loss units")
    epochs_margin: float = Field(default=1.0, gt=0, description="equivalence margin of epochs to threshold")


class AnalysisConfig(BaseModel):
    """The pre-declared analysis of a training suite (all fields optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    test: Literal["t", "permutation"] = Field(
        default="t", description="paired test: t (paired t-test) or permutation (exact sign-flip test of the mean)")
    interval: Literal["t", "bca"] = Field(
        default="t", description="interval of a mean: t (Student-t) or bca (undercovers at few seeds)")
    alpha: float = Field(default=0.05, gt=0, lt=0.5, description="family-wise level (Holm) or false discovery rate (BH)")
    margin: float = Field(default=1.0, gt=0, description="equivalence margin and smallest relevant change, in accuracy points")
    correction: Literal["holm", "bh"] = Field(default="holm", description="correction of the report's one family")
    diverged_as: Literal["exclude", "zero", "worst_rank"] = Field(
        default="exclude", description="what a diverged run counts as in accuracy statistics and rankings")
    reference_norm: str = Field(default="batch", min_length=1, description="norm every other norm is compared with")
    reference_batch_size: int | None = Field(
        default=None, gt=0, description="batch size small-batch drops are measured from (default: the largest)")
    power: float = Field(default=0.8, gt=0, lt=1, description="power of the smallest detectable effect")
    convergence: ConvergenceConfig | None = Field(
        default=None, description="declared training-loss convergence tests (AUC, epochs to a loss threshold)")

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, value: Any) -> Any:
        # Named here rather than left to pydantic: the suite's error formatter lists the suite's own
        # fields for an unknown nested key, which would send the user to the wrong place.
        if isinstance(value, dict):
            unknown = sorted(str(k) for k in value if k not in cls.model_fields)
            if unknown:
                raise ValueError(f"unknown analysis field(s) {', '.join(unknown)}; allowed: {', '.join(cls.model_fields)}")
        return value


def check_against_suite(config: AnalysisConfig, batch_sizes: list[int]) -> None:
    """Raise ValueError when the declared reference batch size is not one the suite runs (a suite-level
    check: the block alone cannot know the batch sizes)."""
    if config.reference_batch_size is not None and config.reference_batch_size not in batch_sizes:
        raise ValueError(f"analysis.reference_batch_size {config.reference_batch_size} is not one of the suite's "
                         f"batch_sizes {sorted(batch_sizes)}; declare one of them or leave it out (the largest)")


def declared_analysis(suite_yaml: str | None) -> tuple[AnalysisConfig, str]:
    """The analysis declared in a stored suite's YAML text, and where it came from.

    Returns ``(config, source)``: source ``"suite"`` when the YAML has an ``analysis:`` block,
    ``"defaults"`` when it has none (or no YAML was stored), and ``"defaults (…)"`` with the
    reason when the block cannot be read - a report must still be written from old stores.
    """
    try:
        raw = yaml.safe_load(suite_yaml or "")
    except yaml.YAMLError as exc:
        return AnalysisConfig(), f"defaults (the stored suite YAML cannot be read: {exc.__class__.__name__})"
    block = raw.get("analysis") if isinstance(raw, dict) else None
    if block is None:
        return AnalysisConfig(), "defaults"
    try:
        return AnalysisConfig.model_validate(block), "suite"
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'analysis'}: {e['msg']}" for e in exc.errors())
        return AnalysisConfig(), f"defaults (the stored analysis block is invalid: {problems})"


def describe(config: AnalysisConfig) -> str:
    """One line naming every declared setting, as the report's Methods prints it."""
    reference = config.reference_batch_size if config.reference_batch_size is not None else "the largest"
    text = (f"test {config.test}, interval {config.interval}, alpha {config.alpha:g}, margin {config.margin:g} "
            f"point(s), correction {config.correction}, diverged_as {config.diverged_as}, reference_norm "
            f"{config.reference_norm}, reference_batch_size {reference}, power {config.power:g}")
    convergence = config.convergence
    if convergence is not None:
        threshold = "none" if convergence.loss_threshold is None else f"{convergence.loss_threshold:g}"
        text += (f", convergence (loss_threshold {threshold}, auc_margin {convergence.auc_margin:g}, "
                 f"epochs_margin {convergence.epochs_margin:g})")
    return text
