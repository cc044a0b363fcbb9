"""The training suite schema (pydantic): models × norms × batch sizes × seeds × devices, budget, optimizer, probes."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from normbench.analysis_config import AnalysisConfig, check_against_suite

SUITE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # also the default output directory's name
BUDGETS = ("steps", "epochs", "samples")
_DEVICE_PATTERN = r"^(cpu|cuda(:\d+)?|mps|auto)$"


def check_device_names(values: list[str]) -> list[str]:
    """Every device name is cpu, cuda, cuda:N, mps or auto (a pydantic validator body; ValueError)."""
    for device in values:
        if not re.match(_DEVICE_PATTERN, device):
            raise ValueError(f"unknown device {device!r}; allowed: cpu, cuda, cuda:N, mps, auto")
    return values


class StrictModel(BaseModel):
    """Base of every suite schema class: unknown fields are errors, parsed suites are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NamedEntry(StrictModel):
    """A registry name with options: written either as a bare string or as {name, options}."""

    name: str
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value}
        return value


class ModelEntry(NamedEntry):
    """A model to train; `label` tells apart the same model with different options; `datasets`
    restricts it to some of the suite's datasets (e.g. cnn2d on images, cnn1d on sequences)."""

    label: str | None = None
    datasets: list[str] | None = Field(default=None, min_length=1)


class NormEntry(NamedEntry):
    """A norm to compare; `label` tells apart the same norm with different options."""

    label: str | None = None


class OptimizerConfig(StrictModel):
    """Optimizer and its hyper-parameters; `lr` (or each rate of a sweep) applies at the reference
    batch size when the suite scales learning rates, at every batch size otherwise."""

    name: Literal["sgd", "adam"] = "sgd"
    lr: float | list[float] = Field(description="learning rate, or a list of rates to sweep")
    momentum: float = Field(default=0.0, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0)

    @field_validator("lr")
    @classmethod
    def _positive_rates(cls, value: float | list[float]) -> float | list[float]:
        rates = value if isinstance(value, list) else [value]
        if not rates or any(not (r > 0) for r in rates):
            raise ValueError(f"learning rates must be positive numbers, got {value}")
        if isinstance(value, list) and len(set(value)) != len(value):
            raise ValueError(f"learning rates in a sweep must be distinct, got {value}")
        return value

    @property
    def rates(self) -> list[float]:
        """The learning rate(s) as a list (one, or the sweep)."""
        return self.lr if isinstance(self.lr, list) else [self.lr]


class PercentileProbe(StrictModel):
    """Track one unit's input to one activation slot (Ioffe & Szegedy 2015, Fig. 1b-c)."""

    layer: int = -1
    unit: int = Field(default=0, ge=0)


class SmoothnessProbe(StrictModel):
    """Santurkar et al. 2018 loss-landscape probe every `every` steps at step sizes `step_scales` × lr."""

    every: int = Field(default=100, gt=0)
    step_scales: list[float] = Field(default_factory=lambda: [0.25, 0.5, 1.0, 2.0], min_length=1)


class BatchStatVarianceProbe(StrictModel):
    """Fluctuation of every norm site's batch statistics across `batches` mini-batches (PowerNorm)."""

    batches: int = Field(default=8, ge=2)
    per_site: bool = False


class ProbesConfig(StrictModel):
    """Optional diagnostics recorded at evaluation points (see normbench/probes.py)."""

    percentiles: bool | PercentileProbe = False
    train_eval_gap: bool = False
    grad_norms: bool = False
    smoothness: bool | SmoothnessProbe = False
    batch_stat_variance: bool | BatchStatVarianceProbe = False

    def enabled(self) -> dict[str, Any]:
        """Only the probes that are on, as plain data for the RunSpec."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, BaseModel):
                out[name] = value.model_dump()
            elif value:
                out[name] = True
        return out


class Suite(StrictModel):
    """A declared experiment: every combination of models × norms × batch sizes × seeds × devices."""

    name: str = Field(pattern=SUITE_NAME_PATTERN, max_length=80)
    description: str = ""
    kind: Literal["training"] = "training"
    dataset: NamedEntry | list[NamedEntry]
    models: list[ModelEntry] = Field(min_length=1)
    norms: list[NormEntry] = Field(min_length=1)
    batch_sizes: list[int] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    steps: int | None = Field(default=None, gt=0)
    epochs: float | None = Field(default=None, gt=0)
    samples: int | None = Field(default=None, gt=0)
    optimizer: OptimizerConfig
    lr_scaling: Literal["none", "linear", "sqrt"] = "none"
    reference_batch_size: int | None = Field(default=None, gt=0)
    eval_every: int = Field(default=50, gt=0)
    target_accuracy: float | None = Field(default=None, gt=0, le=1)
    probes: ProbesConfig = Field(default_factory=ProbesConfig)
    devices: list[str] = Field(default_factory=lambda: ["cpu"], min_length=1)
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)

    @field_validator("batch_sizes")
    @classmethod
    def _positive_batches(cls, values: list[int]) -> list[int]:
        bad = [v for v in values if v <= 0]
        if bad:
            raise ValueError(f"batch sizes must be positive integers, got {bad}")
        if len(set(values)) != len(values):
            raise ValueError(f"batch sizes must be distinct, got {values}")
        return values

    @field_validator("seeds", mode="before")
    @classmethod
    def _seed_count(cls, value: Any) -> Any:
        # `seeds: 3` means seeds 0, 1, 2: the common case should not need a list.
        if isinstance(value, int) and not isinstance(value, bool):
            if value <= 0:
                raise ValueError("a seed count must be positive (or give a list of seeds)")
            return list(range(value))
        return value

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, values: list[int]) -> list[int]:
        if len(set(values)) != len(values):
            raise ValueError(f"seeds must be distinct, got {values}")
        if any(v < 0 for v in values):
            raise ValueError("seeds must be non-negative")
        return values

    @field_validator("devices")
    @classmethod
    def _known_devices(cls, values: list[str]) -> list[str]:
        return check_device_names(values)

    @model_validator(mode="after")
    def _one_budget(self) -> "Suite":
        budgets = [b for b in BUDGETS if getattr(self, b) is not None]
        if len(budgets) != 1:
            raise ValueError(
                f"give exactly one training budget: `steps`, `epochs` or `samples` (got {', '.join(budgets) or 'none'})"
            )
        if self.lr_scaling != "none" and self.reference_batch_size is None:
            raise ValueError(
                f"lr_scaling: {self.lr_scaling} needs `reference_batch_size` (the batch size at which optimizer.lr applies)"
            )
        return self

    @property
    def datasets(self) -> list[NamedEntry]:
        """The dataset(s) as a list (a suite may name one or several)."""
        return self.dataset if isinstance(self.dataset, list) else [self.dataset]

    @model_validator(mode="after")
    def _analysis_fits(self) -> "Suite":
        check_against_suite(self.analysis, self.batch_sizes)
        return self

    @model_validator(mode="after")
    def _model_datasets_exist(self) -> "Suite":
        names = {d.name for d in self.datasets}
        for j, model in enumerate(self.models):
            unknown = sorted(set(model.datasets or []) - names)
            if unknown:
                raise ValueError(
                    f"models[{j}].datasets names {unknown}, which the suite does not declare; declared: {sorted(names)}"
                )
        return self

    def pairs(self) -> list[tuple[NamedEntry, ModelEntry]]:
        """(dataset, model) combinations that run: every pair, unless a model restricts its datasets."""
        return [(d, m) for d in self.datasets for m in self.models if m.datasets is None or d.name in m.datasets]

    def lr_for(self, batch_size: int, base_lr: float) -> float:
        """Learning rate at `batch_size` under the suite's scaling rule (Goyal et al. 2017 for linear)."""
        if self.lr_scaling == "none":
            return base_lr
        ratio = batch_size / self.reference_batch_size
        return base_lr * (ratio if self.lr_scaling == "linear" else ratio**0.5)
