"""RunSpec (the frozen, hashable description of one training run, with its stable id) and its records.

The records of what a run produced (RunResult, CurvePoint) and the outcome names live here, next to
the spec, as throughput/spec.py keeps ThroughputResult next to ThroughputSpec: the store only persists
them and frames only view them. Plain data, no torch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

# Bump when the meaning of a RunSpec field changes, so old ids never match new runs.
SPEC_VERSION = 1

# Run outcomes. Only COMPLETED runs have meaningful final metrics; DIVERGED runs are failures
# of the configuration (a result); UNDEFINED means the norm has no definition there (e.g. BN
# with one value per channel); FAILED is an error of the run itself; SKIPPED never ran.
COMPLETED, DIVERGED, UNDEFINED, FAILED, SKIPPED = "completed", "diverged", "undefined", "failed", "skipped"
OUTCOMES = (COMPLETED, DIVERGED, UNDEFINED, FAILED, SKIPPED)
# Outcomes that are final results: resume never retrains them. Failed and skipped runs are retried.
FINAL_OUTCOMES = (COMPLETED, DIVERGED, UNDEFINED)

Options = tuple[tuple[str, Any], ...]
_MAPPING = "__mapping__"  # marks a frozen nested dict, so lists of pairs are never mistaken for one


def freeze_options(options: dict[str, Any] | None) -> Options:
    """Turn an options mapping into a sorted tuple of pairs (lists become tuples) so it hashes."""
    if not options:
        return ()
    return tuple(sorted((str(k), _freeze_value(v)) for k, v in options.items()))


def _freeze_value(value: Any) -> Any:
    if isinstance(value, dict):
        return (_MAPPING,) + freeze_options(value)
    if isinstance(value, (list, tuple)):
        return tuple(_freeze_value(v) for v in value)
    return value


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: the same data always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON-serializable: {value!r}")


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines one training run; two equal specs give bitwise-equal CPU metrics."""

    suite: str
    model: str
    dataset: str
    norm: str
    batch_size: int
    seed: int
    device: str
    steps: int | None
    epochs: float | None
    optimizer: str
    lr: float
    momentum: float
    weight_decay: float
    eval_every: int
    norm_label: str = ""
    model_options: Options = field(default_factory=tuple)
    dataset_options: Options = field(default_factory=tuple)
    norm_options: Options = field(default_factory=tuple)
    kind: str = "training"
    samples: int | None = None  # budget in training samples seen (steps = samples // batch_size)
    lr_scaling: str = "none"  # how `lr` was derived from `base_lr`: none | linear | sqrt
    base_lr: float | None = None
    reference_batch_size: int | None = None
    target_accuracy: float | None = None
    probes: Options = field(default_factory=tuple)
    model_label: str = ""
    # How the training loop builds mini-batches (normbench/batching.py); () = i.i.d. permutations.
    batching: Options = field(default_factory=tuple)
    # The model is built as its factory gives it, then its norm layers are swapped (normbench.swap);
    # () for a builder that takes normbench's norm factory.
    swap_norms: Options = field(default_factory=tuple)
    # Provenance of the plugins the run uses (role → module, file, version): stored, never hashed,
    # so a new plugin version keeps the run ids (docs/extending.md, "Provenance and run ids").
    plugins: Options = field(default_factory=tuple)
    # Evaluate at every epoch end instead of every `eval_every` steps (the suite's `eval_every: epoch`).
    eval_per_epoch: bool = False
    # Which checkpoint gives the final metrics: the last, or the evaluation point with the lowest
    # validation loss (Ziaee & Cano 2022 evaluate that one on the test set; needs a validation split).
    select: str = "last"
    # The learning rate over the run (normbench/lr_schedule.py): constant, or cosine annealing to 0.
    lr_schedule: str = "constant"

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON view (options as dicts) used for storage; :meth:`identity` is what is hashed.

        Fields added after version 1 are left out at their defaults (``_OMITTED_AT_DEFAULT``), so
        the ids of runs that do not use them stay what they were.
        """
        data = asdict(self)
        for key in _OPTION_FIELDS:
            data[key] = thaw_options(getattr(self, key))
        for key, default in _OMITTED_AT_DEFAULT.items():
            if data[key] == default:
                del data[key]
        return data

    def identity(self) -> dict[str, Any]:
        """What the run id hashes: the stored view without provenance, and without fields added
        after SPEC_VERSION 1 while they hold their defaults (so existing run ids never change)."""
        data = self.to_dict()
        del data["plugins"]
        return data

    @property
    def run_id(self) -> str:
        """Stable id: sha256 of the canonical JSON of the spec's identity plus SPEC_VERSION (16 hex chars)."""
        payload = canonical_json({"spec_version": SPEC_VERSION, "spec": self.identity()})
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @property
    def plugin_provenance(self) -> dict[str, dict[str, Any]]:
        """Role (model, dataset, norm) → provenance of each plugin the run uses."""
        return thaw_options(self.plugins)

    @property
    def model_kwargs(self) -> dict[str, Any]:
        """Model options as keyword arguments for create_model."""
        return thaw_options(self.model_options)

    @property
    def dataset_kwargs(self) -> dict[str, Any]:
        """Dataset options as keyword arguments for load_dataset."""
        return thaw_options(self.dataset_options)

    @property
    def norm_kwargs(self) -> dict[str, Any]:
        """Norm options as keyword arguments for create_norm."""
        return thaw_options(self.norm_options)

    @property
    def batching_kwargs(self) -> dict[str, Any]:
        """Batching options (``{}`` = iid, else e.g. ``{"classes_per_batch": 2}``)."""
        return thaw_options(self.batching)

    @property
    def batching_label(self) -> str:
        """``iid``, ``classes_per_batch=2``, ``fixed`` or ``fixed, samples=9000``: the run's batching as
        the store and reports show it."""
        options = dict(self.batching_kwargs)
        order = options.pop("order", None)
        text = ", ".join(f"{k}={v}" for k, v in sorted(options.items()))
        if order is not None:
            return f"{order}, {text}" if text else str(order)
        return text or "iid"

    @property
    def probe_kwargs(self) -> dict[str, Any]:
        """Probe settings as a plain mapping (probe name → its options)."""
        return thaw_options(self.probes)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunSpec":
        """Rebuild a spec stored with :meth:`to_dict`."""
        values = dict(data)
        for key in _OPTION_FIELDS:
            values[key] = freeze_options(values.get(key) or {})
        return cls(**values)


_OPTION_FIELDS = ("model_options", "dataset_options", "norm_options", "probes", "batching", "swap_norms", "plugins")
# Plain-JSON defaults of fields added without a SPEC_VERSION bump: omitted from to_dict (and the id).
_OMITTED_AT_DEFAULT: dict[str, Any] = {"batching": {}, "swap_norms": {}, "eval_per_epoch": False, "select": "last",
                                       "lr_schedule": "constant"}
SELECTIONS = ("best_validation_loss", "last")


def thaw_options(options: Options) -> dict[str, Any]:
    """Inverse of freeze_options: the plain-JSON mapping (tuples back to lists, nested dicts restored)."""
    out: dict[str, Any] = {}
    for key, value in options:
        out[key] = _thaw_value(value)
    return out


def _thaw_value(value: Any) -> Any:
    if isinstance(value, tuple):
        if value and value[0] == _MAPPING:
            return thaw_options(value[1:])
        return [_thaw_value(v) for v in value]
    return value


@dataclass
class CurvePoint:
    """One evaluation point of a training run."""

    step: int
    epoch: float
    samples_seen: int
    train_loss: float
    test_loss: float
    test_accuracy: float
    wall_time_s: float
    # Eval-mode loss and accuracy on the dataset's validation split (NaN without one).
    val_loss: float = float("nan")
    val_accuracy: float = float("nan")


@dataclass
class EpochRecord:
    """One epoch of training as Keras' History reports it: the mean loss and accuracy over the epoch's
    batches in training mode (``steps`` batches; fewer than a full epoch when the budget ends inside it)."""

    epoch: int
    steps: int
    train_loss: float
    train_accuracy: float


@dataclass
class FlagRecord:
    """A BLN model evaluated under one combination of the four inference flags (no retraining):
    loss and accuracy on the validation split (NaN without one) and on the test set."""

    batch_moving_mean: bool
    batch_moving_var: bool
    feature_moving_mean: bool
    feature_moving_var: bool
    val_loss: float
    val_accuracy: float
    test_loss: float
    test_accuracy: float


@dataclass
class RunResult:
    """What a finished run produced, whatever its outcome (one of OUTCOMES)."""

    spec: RunSpec
    outcome: str
    error: str = ""
    curve: list[CurvePoint] = field(default_factory=list)
    final_test_accuracy: float | None = None
    final_test_loss: float | None = None
    final_train_loss: float | None = None
    step_time_median_s: float | None = None
    steps_done: int = 0
    wall_time_s: float = 0.0
    started_at: str = ""
    finished_at: str = ""
    extra_metrics: dict[str, Any] = field(default_factory=dict)
    probes: list[tuple[int, str, str, float]] = field(default_factory=list)  # (step, probe, key, value)
    epoch_records: list[EpochRecord] = field(default_factory=list)  # not `epochs`: that is the budget
    inference_flags: list[FlagRecord] = field(default_factory=list)  # BLN models: the 16 combinations
    selected_step: int | None = None  # the evaluation point the final metrics come from

    @property
    def samples_per_s(self) -> float | None:
        """Training samples per second at the median step time (None before any timed step)."""
        if not self.step_time_median_s:
            return None
        return self.spec.batch_size / self.step_time_median_s
