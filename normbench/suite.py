"""Suite files: the pydantic schema, loading with file/field errors, `--set` overrides, expansion."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any, Callable, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from normbench.analysis_config import AnalysisConfig
from normbench.spec import RunSpec, canonical_json, freeze_options


class SuiteError(Exception):
    """A suite file or override is invalid; the message names the file, the field and the fix."""


_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
_DEVICE_PATTERN = r"^(cpu|cuda(:\d+)?|mps|auto)$"


def check_device_names(values: list[str]) -> list[str]:
    """Every device name is cpu, cuda, cuda:N, mps or auto (a pydantic validator body; ValueError)."""
    for device in values:
        if not re.match(_DEVICE_PATTERN, device):
            raise ValueError(f"unknown device {device!r}; allowed: cpu, cuda, cuda:N, mps, auto")
    return values


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NamedEntry(_Strict):
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


class OptimizerConfig(_Strict):
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
        return self.lr if isinstance(self.lr, list) else [self.lr]


class PercentileProbe(_Strict):
    """Track one unit's input to one activation slot (Ioffe & Szegedy 2015, Fig. 1b-c)."""

    layer: int = -1
    unit: int = Field(default=0, ge=0)


class SmoothnessProbe(_Strict):
    """Santurkar et al. 2018 loss-landscape probe every `every` steps at step sizes `step_scales` × lr."""

    every: int = Field(default=100, gt=0)
    step_scales: list[float] = Field(default_factory=lambda: [0.25, 0.5, 1.0, 2.0], min_length=1)


class ProbesConfig(_Strict):
    """Optional diagnostics recorded at evaluation points (see normbench/probes.py)."""

    percentiles: bool | PercentileProbe = False
    train_eval_gap: bool = False
    grad_norms: bool = False
    smoothness: bool | SmoothnessProbe = False

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


class Suite(_Strict):
    """A declared experiment: every combination of models × norms × batch sizes × seeds × devices."""

    name: str = Field(pattern=_NAME_PATTERN, max_length=80)
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
        budgets = [b for b in ("steps", "epochs", "samples") if getattr(self, b) is not None]
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


# ---------------------------------------------------------------- loading


def load_suite(path: str | Path, overrides: list[str] | None = None) -> tuple[Suite, str]:
    """Read, override and validate a suite file; returns the suite and its YAML text as used.

    Raises SuiteError with the file, field and allowed values on any problem.
    """
    path = Path(path)
    if not path.is_file():
        raise SuiteError(f"{path}: no such suite file (list shipped suites with `normbench list suites`)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"{path}: cannot read the suite file: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path}: invalid YAML: {_yaml_problem(exc)}") from None
    if not isinstance(raw, dict):
        raise SuiteError(f"{path}: a suite must be a YAML mapping with fields such as name, dataset, models, norms")
    for override in overrides or []:
        apply_override(raw, override, source=path)
    suite = validate_suite(raw, source=path)
    used_text = text if not overrides else yaml.safe_dump(suite.model_dump(exclude_none=True), sort_keys=False)
    return suite, used_text


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return problem


def validate_suite(raw: dict[str, Any], *, source: str | Path = "<suite>") -> Suite:
    """Validate a raw mapping against the schema; field errors become one clear SuiteError."""
    try:
        return Suite.model_validate(raw)
    except ValidationError as exc:
        raise validation_suite_error(exc, source, allowed_fields=_allowed_fields) from None


def validation_suite_error(
    exc: ValidationError,
    source: str | Path,
    *,
    allowed_fields: Callable[[tuple[Any, ...]], str],
    locate: Callable[[tuple[Any, ...]], tuple[Any, ...]] = lambda loc: loc,
) -> SuiteError:
    """One SuiteError with a line per field error: `SOURCE: field `a.b[1]`: message`.

    `allowed_fields(loc)` names the fields accepted where an unknown one was written; `locate(loc)`
    maps pydantic's location to the path as the user wrote it (a schema may normalize its input).
    """
    lines = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"unknown field; allowed here: {allowed_fields(loc)}"
        elif error["type"] == "missing":
            message = "required field is missing"
        lines.append(f"{source}: field `{_field_path(locate(loc))}`: {message}")
    return SuiteError("\n".join(dict.fromkeys(lines)))


def _field_path(loc: tuple[Any, ...]) -> str:
    """`('norms', 1, 'options')` → `norms[1].options`."""
    text = ""
    for item in loc:
        if isinstance(item, int):
            text += f"[{item}]"
        else:
            text += f".{item}" if text else str(item)
    return text


_MODELS_BY_FIELD: dict[str, type[BaseModel]] = {"optimizer": OptimizerConfig, "dataset": NamedEntry, "probes": ProbesConfig}
_BUDGETS = ("steps", "epochs", "samples")


def _allowed_fields(loc: tuple[Any, ...]) -> str:
    fields: list[str]
    if len(loc) <= 1:
        fields = list(Suite.model_fields)
    elif loc[0] == "norms":
        fields = list(NormEntry.model_fields)
    elif loc[0] == "models":
        fields = list(ModelEntry.model_fields)
    elif loc[0] == "dataset":
        fields = list(NamedEntry.model_fields)
    else:
        fields = list(_MODELS_BY_FIELD.get(str(loc[0]), Suite).model_fields)
    return ", ".join(fields)


# ---------------------------------------------------------------- --set overrides


def parse_override(override: str, *, example: str, dotted_example: str) -> tuple[str, list[str], Any]:
    """`key=value` → (key, its dotted parts, the value parsed as YAML); SuiteError when malformed.
    `example` and `dotted_example` (e.g. `seeds=5`, `optimizer.lr=0.1`) go into the messages."""
    if "=" not in override:
        raise SuiteError(f"--set {override!r}: expected key=value, e.g. --set {example}")
    key, _, text = override.partition("=")
    key = key.strip()
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$", key):
        raise SuiteError(f"--set {override!r}: {key!r} is not a field path (use dots: {dotted_example})")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        raise SuiteError(f"--set {key}: the value {text!r} is not valid YAML: {_yaml_problem(exc)}") from None
    return key, key.split("."), value


def apply_override(raw: dict[str, Any], override: str, *, source: str | Path = "<suite>") -> None:
    """Apply one `key=value` override in place; the value is parsed as YAML (`[2,64]`, `5`, `adam`)."""
    key, parts, value = parse_override(
        override, example="seeds=5 or --set batch_sizes=[2,64]", dotted_example="optimizer.lr=0.1")
    top = parts[0]
    if top not in Suite.model_fields:
        raise SuiteError(f"--set {key}: unknown suite field {top!r}; allowed: {', '.join(Suite.model_fields)}")
    if len(parts) == 1:
        raw[top] = value
        # A new budget replaces the other one, so `--set steps=100` works on an epochs suite.
        if top in _BUDGETS and value is not None:
            for other in _BUDGETS:
                if other != top:
                    raw.pop(other, None)
        return
    if top not in ("optimizer", "dataset"):
        raise SuiteError(f"--set {key}: only optimizer.* and dataset.* take dotted keys")
    container = raw.get(top)
    if isinstance(container, list):
        raise SuiteError(f"--set {key}: {top} is a list in this suite; replace it whole, e.g. --set {top}=[...]")
    if isinstance(container, str):
        container = {"name": container}
    if not isinstance(container, dict):
        container = {}
    raw[top] = container
    if top == "optimizer":
        if len(parts) != 2:
            raise SuiteError(f"--set {key}: use optimizer.<field> with one of {', '.join(OptimizerConfig.model_fields)}")
        container[parts[1]] = value
    else:  # dataset.name or dataset.<option>
        if parts[1] == "name" and len(parts) == 2:
            container["name"] = value
        else:
            option = parts[2] if parts[1] == "options" and len(parts) == 3 else parts[1]
            container.setdefault("options", {})[option] = value


# ---------------------------------------------------------------- expansion


def norm_label(entry: NormEntry, canonical: str) -> str:
    """Human label of a norm entry: its explicit label, else `group(num_groups=8)` style."""
    if entry.label:
        return entry.label
    if not entry.options:
        return canonical
    args = ", ".join(f"{k}={v}" for k, v in sorted(entry.options.items()))
    return f"{canonical}({args})"


def expand(suite: Suite, *, resolve_device=None, canonical_norm=None) -> list[RunSpec]:
    """All RunSpecs of a suite, in a stable order (model, norm, batch size, seed, device).

    `canonical_norm` maps aliases to canonical names (defaults to the norm registry);
    `resolve_device` turns `auto` into a concrete device (defaults to cuda if present, else cpu).
    """
    if canonical_norm is None:
        from normbench.norms import canonical_name as canonical_norm
    if resolve_device is None:
        resolve_device = _resolve_device
    specs = []
    for (dataset, model), norm, base_lr, batch_size, seed, device in itertools.product(
        suite.pairs(), suite.norms, suite.optimizer.rates, suite.batch_sizes, suite.seeds, suite.devices,
    ):
        canonical = canonical_norm(norm.name)
        specs.append(
            RunSpec(
                suite=suite.name,
                model=model.name,
                model_label=model.label or "",
                dataset=dataset.name,
                norm=canonical,
                norm_label=norm_label(norm, canonical),
                batch_size=batch_size,
                seed=seed,
                device=resolve_device(device),
                steps=suite.steps,
                epochs=suite.epochs,
                samples=suite.samples,
                optimizer=suite.optimizer.name,
                lr=suite.lr_for(batch_size, base_lr),
                base_lr=base_lr,
                lr_scaling=suite.lr_scaling,
                reference_batch_size=suite.reference_batch_size,
                target_accuracy=suite.target_accuracy,
                probes=freeze_options(suite.probes.enabled()),
                momentum=suite.optimizer.momentum,
                weight_decay=suite.optimizer.weight_decay,
                eval_every=suite.eval_every,
                model_options=freeze_options(model.options),
                dataset_options=freeze_options(dataset.options),
                norm_options=freeze_options(norm.options),
            )
        )
    ids = [s.run_id for s in specs]
    if len(set(ids)) != len(ids):
        raise SuiteError(f"suite {suite.name!r} declares the same run twice (duplicate models or norms with equal options)")
    return specs


def _resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def suite_fingerprint(suite: Suite) -> str:
    """Canonical JSON of a suite (for logging and reproducibility)."""
    return canonical_json(suite.model_dump())
