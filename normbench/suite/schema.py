"""The training suite schema (pydantic): models × norms × batch sizes × seeds × devices, budget, optimizer, probes."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_serializer, field_validator, model_validator

from normbench.analysis_config import AnalysisConfig, check_against_suite
from normbench.lr_schedule import SCHEDULES
from normbench.reference.declared import ReferenceConfig

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


class SwapNormsConfig(StrictModel):
    """`swap_norms: {layer_norm: true}`: swap LayerNorm/RMSNorm (channel-last) too, not only BN/GN/IN."""

    layer_norm: bool = False


class ModelEntry(NamedEntry):
    """A model to train; `label` tells apart the same model with different options; `datasets`
    restricts it to some of the suite's datasets (e.g. cnn2d on images, cnn1d on sequences) and
    `norms` to some of its norms (by label or name: a norm that cannot work in this model);
    `swap_norms` builds a model that has its own norm layers (e.g. `torchvision.models:resnet18`)
    from its options alone and replaces those layers by each norm of the suite (normbench.swap)."""

    label: str | None = None
    datasets: list[str] | None = Field(default=None, min_length=1)
    norms: list[str] | None = Field(default=None, min_length=1)
    swap_norms: bool | SwapNormsConfig = False

    def swap_settings(self) -> dict[str, Any]:
        """The swap as plain data for the RunSpec: {} when off, else its settings."""
        if self.swap_norms is False:
            return {}
        config = self.swap_norms if isinstance(self.swap_norms, SwapNormsConfig) else SwapNormsConfig()
        return config.model_dump()


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
    schedule: Literal[SCHEDULES] = Field(
        default="constant",
        description="learning rate over the run: constant, or cosine annealing from lr to 0 over the budget's "
                    "steps (Loshchilov & Hutter 2017, SGDR, without restarts)")

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


BATCHING_FORMS = ("iid, fixed (the same batches in the same order every epoch), {order: fixed, samples: S} "
                  "(the same first S // batch_size batches every epoch), {classes_per_batch: k} with k a positive "
                  "integer, or a list of those")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def parse_batching(value: Any) -> list[dict[str, Any]]:
    """A suite's `batching` as a list of run options: `{}` for iid, `{"order": "fixed"}` (with
    `"samples": S`), `{"classes_per_batch": k}` (normbench/batching.py); ValueError naming the forms."""
    entries = value if isinstance(value, list) else [value]
    parsed = []
    for entry in entries:
        if entry == "iid" or entry == {}:  # {} is how a parsed suite holds iid
            parsed.append({})
        elif entry == "fixed" or entry == {"order": "fixed"}:
            parsed.append({"order": "fixed"})
        elif (isinstance(entry, dict) and set(entry) == {"order", "samples"} and entry["order"] == "fixed"
              and _positive_int(entry["samples"])):
            parsed.append({"order": "fixed", "samples": entry["samples"]})
        elif isinstance(entry, dict) and set(entry) == {"classes_per_batch"} and _positive_int(entry["classes_per_batch"]):
            parsed.append({"classes_per_batch": entry["classes_per_batch"]})
        else:
            raise ValueError(f"must be {BATCHING_FORMS}; got {entry!r}")
    if not parsed:
        raise ValueError(f"must be {BATCHING_FORMS}; got an empty list")
    if len({json.dumps(p, sort_keys=True) for p in parsed}) != len(parsed):
        raise ValueError(f"entries must be distinct, got {value!r}")
    return parsed


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
    optimizer: OptimizerConfig | list[OptimizerConfig] = Field(
        description="the optimizer, or a list of optimizers to compare (e.g. Adam and SGD)")
    lr_scaling: Literal["none", "linear", "sqrt"] = "none"
    reference_batch_size: int | None = Field(default=None, gt=0)
    eval_every: int | Literal["epoch"] = Field(
        default=50, description="evaluate every this many steps, or `epoch` at every epoch end")
    select: Literal["last", "best_validation_loss"] = Field(
        default="last", description="checkpoint the final metrics come from (best_validation_loss needs a validation split)")
    target_accuracy: float | None = Field(default=None, gt=0, le=1)
    probes: ProbesConfig = Field(default_factory=ProbesConfig)
    devices: list[str] = Field(default_factory=lambda: ["cpu"], min_length=1)
    batching: list[dict[str, Any]] = Field(default_factory=lambda: [{}], description=BATCHING_FORMS)
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)
    reference: ReferenceConfig | None = Field(default=None, description="published results these runs reproduce")

    @field_validator("eval_every")
    @classmethod
    def _positive_interval(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value <= 0:
            raise ValueError(f"must be a positive number of steps or `epoch`, got {value}")
        return value

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

    @field_serializer("batching")
    def _batching_as_written(self, value: list[dict[str, Any]]) -> list[Any]:
        return [("fixed" if entry == {"order": "fixed"} else entry) or "iid" for entry in value]

    @field_validator("batching", mode="before")
    @classmethod
    def _batching_forms(cls, value: Any, info: ValidationInfo) -> list[dict[str, Any]]:
        parsed = parse_batching(value)
        smallest = min(info.data.get("batch_sizes") or [0]) or None
        for options in parsed:
            k = options.get("classes_per_batch", 0)
            if smallest is not None and k > smallest:
                raise ValueError(f"classes_per_batch={k} exceeds batch size {smallest}; every class of a batch "
                                 "needs at least one sample")
        return parsed

    @field_validator("optimizer")
    @classmethod
    def _distinct_optimizers(cls, value: OptimizerConfig | list[OptimizerConfig]) -> Any:
        if isinstance(value, list):
            if not value:
                raise ValueError("give an optimizer, or a non-empty list of them")
            if len({json.dumps(o.model_dump(), sort_keys=True) for o in value}) != len(value):
                raise ValueError("optimizers in a list must be distinct")
        return value

    @property
    def optimizers(self) -> list[OptimizerConfig]:
        """The optimizer(s) as a list (a suite may compare several)."""
        return self.optimizer if isinstance(self.optimizer, list) else [self.optimizer]

    def optimizer_rates(self) -> list[tuple[OptimizerConfig, float]]:
        """(optimizer, learning rate) pairs: every optimizer with each of its rates."""
        return [(optimizer, lr) for optimizer in self.optimizers for lr in optimizer.rates]

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

    @model_validator(mode="after")
    def _model_norms_exist(self) -> "Suite":
        names = {key for norm in self.norms for key in (norm.label, norm.name) if key}
        for j, model in enumerate(self.models):
            unknown = sorted(set(model.norms or []) - names)
            if unknown:
                raise ValueError(
                    f"models[{j}].norms names {unknown}, which no norm of the suite has as label or name; "
                    f"declared: {sorted(names)}"
                )
        return self

    def runs_norm(self, model: ModelEntry, norm: NormEntry) -> bool:
        """Whether `model` trains with `norm`: always, unless the model lists its norms."""
        return model.norms is None or bool({norm.label, norm.name} & set(model.norms))

    def pairs(self) -> list[tuple[NamedEntry, ModelEntry]]:
        """(dataset, model) combinations that run: every pair, unless a model restricts its datasets."""
        return [(d, m) for d in self.datasets for m in self.models if m.datasets is None or d.name in m.datasets]

    def lr_for(self, batch_size: int, base_lr: float) -> float:
        """Learning rate at `batch_size` under the suite's scaling rule (Goyal et al. 2017 for linear)."""
        if self.lr_scaling == "none":
            return base_lr
        ratio = batch_size / self.reference_batch_size
        return base_lr * (ratio if self.lr_scaling == "linear" else ratio**0.5)
