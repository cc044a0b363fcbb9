"""The `throughput` suite schema: layer, model and folded conv+BN grids, devices, threads and timing.

A throughput suite declares *what to time*; ``normbench.throughput.load.expand_throughput`` turns
it into frozen ``ThroughputSpec``s (one measurement each). Field names and defaults are documented
in docs/throughput.md. Everything here is plain pydantic: no torch import.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field, field_validator, model_validator

from normbench.suite import SUITE_NAME_PATTERN, NormEntry, StrictModel, check_device_names

DTYPES = ("float32", "float16", "bfloat16", "float64")
MEMORY_FORMATS = ("contiguous", "channels_last", "channels_last_3d")
DEVICE_KINDS = ("cpu", "cuda", "mps")
MODEL_STEPS = ("train_step", "inference")
LAYER_PASSES = ("forward", "forward_backward")
MODES = ("train", "eval")
CompileMode = Literal["eager", "inductor"]

# The dtype matrix: float32 everywhere, bfloat16 on CPU, float16 and bfloat16 on CUDA.
# MPS gets float16 (its native half type); bfloat16 on MPS needs macOS 14 and is left to the user.
DEFAULT_LAYER_DTYPES: dict[str, list[str]] = {
    "cpu": ["float32", "bfloat16"],
    "cuda": ["float32", "float16", "bfloat16"],
    "mps": ["float32", "float16"],
}

# One sample's channel-first shape per model when a suite names a model without `input_shape`:
# flattened MNIST for the MLP (Ioffe & Szegedy's setting), CIFAR-sized images for the CNN,
# MNIST-1D sequences (1 channel, 40 steps) for the sequence models.
DEFAULT_INPUT_SHAPES: dict[str, list[int]] = {
    "mlp": [784],
    "cnn2d": [3, 32, 32],
    "cnn1d": [1, 40],
    "rnn": [1, 40],
    "transformer": [1, 40],
}

DtypeName = Literal["float32", "float16", "bfloat16", "float64"]
MemoryFormat = Literal["contiguous", "channels_last", "channels_last_3d"]


def dtypes_for(grid: list[str] | dict[str, list[str]], device: str) -> list[str]:
    """The dtypes a grid asks for on `device` (`cuda:1` uses the `cuda` entry); [] when none."""
    if isinstance(grid, dict):
        return list(grid.get(device.split(":")[0], []))
    return list(grid)


def _check_shape(shape: list[int], what: str, min_dims: int) -> list[int]:
    if len(shape) < min_dims or any(isinstance(d, bool) or d < 1 for d in shape):
        raise ValueError(f"{what} must be a list of at least {min_dims} positive integers, got {shape}")
    return shape


def _distinct(values: list[Any], what: str) -> list[Any]:
    if len({repr(v) for v in values}) != len(values):
        raise ValueError(f"{what} must be distinct, got {values}")
    return values


def check_dtype_grid(value: Any) -> Any:
    """One clear message for a bad `dtypes` (instead of one per branch of the list-or-mapping union)."""
    allowed = ", ".join(DTYPES)
    if isinstance(value, dict):
        bad_keys = [k for k in value if k not in DEVICE_KINDS]
        if bad_keys:
            raise ValueError(f"dtypes per device: unknown device kind(s) {bad_keys}; allowed: {', '.join(DEVICE_KINDS)}")
        lists = list(value.values())
    elif isinstance(value, list):
        lists = [value]
    else:
        raise ValueError(f"dtypes must be a list ({allowed}) or a mapping from cpu/cuda/mps to such lists")
    for names in lists:
        if not isinstance(names, list) or any(n not in DTYPES for n in names):
            raise ValueError(f"unknown dtype in {names!r}; allowed: {allowed}")
        _distinct(names, "dtypes")
    return value


# Either one list for every device, or a list per device kind (cpu / cuda / mps); checked first by
# check_dtype_grid, for one clear message instead of one per branch of the union.
DtypeGrid = Annotated[
    Union[list[DtypeName], dict[Literal["cpu", "cuda", "mps"], list[DtypeName]]],
    BeforeValidator(check_dtype_grid),
]

class TimingConfig(StrictModel):
    """How each subject is timed (torch.utils.benchmark), and what is measured besides time."""

    method: Literal["blocked", "adaptive"] = "blocked"
    # blocked: blocks until min_samples samples and min_run_time of timed calls (max_run_time caps the
    # extra beyond min_samples). adaptive: also until IQR/median <= 10 %. See measure.py.
    min_run_time: float = Field(default=0.2, gt=0)
    max_run_time: float = Field(default=2.0, gt=0)
    min_samples: int = Field(default=10, ge=2)
    # Untimed calls before measuring: at least `warmup` calls and at least `warmup_time` seconds (the
    # first passes grow the heap and fault in fresh pages), then the Timer's own block-size warm-up.
    warmup: int = Field(default=3, ge=0)
    warmup_time: float = Field(default=0.05, ge=0)
    peak_memory: bool = True
    copy_bandwidth: bool = True
    # retain: glibc keeps freed blocks for reuse (no page faults per call); system: glibc defaults.
    allocator: Literal["retain", "system"] = "retain"
    # layers: also time torch's own module for each layer that has one, in interleaved blocks
    native: bool = True

    @model_validator(mode="after")
    def _run_times(self) -> "TimingConfig":
        if self.max_run_time < self.min_run_time:
            raise ValueError(f"max_run_time ({self.max_run_time}) must be at least min_run_time ({self.min_run_time})")
        return self


class LayerGrid(StrictModel):
    """Single norm layers: norms × shapes × dtypes × memory formats × modes × passes."""

    norms: list[NormEntry] = Field(min_length=1)
    shapes: list[list[int]] = Field(min_length=1)  # full input shapes (N, C, *spatial), channel-first
    dtypes: DtypeGrid = Field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_LAYER_DTYPES.items()})
    memory_formats: list[MemoryFormat] = Field(default_factory=lambda: ["contiguous"], min_length=1)
    modes: list[Literal["train", "eval"]] = Field(default_factory=lambda: ["train", "eval"], min_length=1)
    passes: list[Literal["forward", "forward_backward"]] = Field(
        default_factory=lambda: ["forward", "forward_backward"], min_length=1
    )
    compile: list[CompileMode] = Field(default_factory=lambda: ["eager"], min_length=1)

    @field_validator("shapes")
    @classmethod
    def _shapes(cls, values: list[list[int]]) -> list[list[int]]:
        for shape in values:
            _check_shape(shape, "each layer shape (N, C, *spatial)", 2)
            if len(shape) > 5:
                raise ValueError(f"layer shapes have 2 to 5 dimensions (N, C, *spatial), got {shape}")
        return _distinct(values, "layer shapes")

    @field_validator("memory_formats", "modes", "passes", "compile")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        return _distinct(values, "grid values")


class ModelSubject(StrictModel):
    """A model to time; `input_shape` is one sample's shape without N (defaults per model)."""

    name: str
    input_shape: list[int] | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    norms: list[NormEntry] | None = None  # replaces the grid's norms for this model
    num_classes: int = Field(default=10, gt=0)
    label: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("input_shape")
    @classmethod
    def _shape(cls, value: list[int] | None) -> list[int] | None:
        return None if value is None else _check_shape(value, "input_shape (one sample, no batch axis)", 1)

    def resolved_input_shape(self) -> list[int] | None:
        """`input_shape`, else the model's default (DEFAULT_INPUT_SHAPES); None when neither exists."""
        return self.input_shape if self.input_shape is not None else DEFAULT_INPUT_SHAPES.get(self.name)


class ModelGrid(StrictModel):
    """Whole models: subjects × norms × batch sizes × steps (training step, inference) × dtypes."""

    subjects: list[ModelSubject] = Field(min_length=1)
    norms: list[NormEntry] = Field(default_factory=lambda: [NormEntry(name="none"), NormEntry(name="batch")],
                                   min_length=1)
    batch_sizes: list[int] = Field(default_factory=lambda: [64], min_length=1)
    steps: list[Literal["train_step", "inference"]] = Field(
        default_factory=lambda: ["train_step", "inference"], min_length=1
    )
    dtypes: DtypeGrid = Field(default_factory=lambda: ["float32"])
    memory_formats: list[MemoryFormat] = Field(default_factory=lambda: ["contiguous"], min_length=1)
    compile: list[CompileMode] = Field(default_factory=lambda: ["eager"], min_length=1)

    @field_validator("compile")
    @classmethod
    def _unique_modes(cls, values: list[str]) -> list[str]:
        return _distinct(values, "compile modes")

    @field_validator("batch_sizes")
    @classmethod
    def _batches(cls, values: list[int]) -> list[int]:
        if any(isinstance(v, bool) or v < 1 for v in values):
            raise ValueError(f"batch sizes must be positive integers, got {values}")
        return _distinct(values, "batch sizes")


class ConvBNCase(StrictModel):
    """A convolution followed by BN, timed at inference unfolded and folded (``fuse_conv_bn``)."""

    input_shape: list[int]  # full input (N, C_in, *spatial) with 1 to 3 spatial axes
    out_channels: int = Field(gt=0)
    kernel_size: int = Field(default=3, gt=0)
    stride: int = Field(default=1, gt=0)
    label: str | None = None

    @field_validator("input_shape")
    @classmethod
    def _shape(cls, value: list[int]) -> list[int]:
        _check_shape(value, "input_shape (N, C_in, *spatial)", 3)
        if len(value) > 5:
            raise ValueError(f"input_shape has 1 to 3 spatial axes (Conv1d/2d/3d), got {value}")
        return value

    @field_validator("kernel_size")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"kernel_size must be odd (same-size padding k // 2), got {value}")
        return value


class FusedConvBNGrid(StrictModel):
    """Conv+BN inference, unfolded vs folded, per case × dtype × memory format."""

    cases: list[ConvBNCase] = Field(min_length=1)
    dtypes: DtypeGrid = Field(default_factory=lambda: ["float32"])
    memory_formats: list[MemoryFormat] = Field(default_factory=lambda: ["contiguous"], min_length=1)


class ThroughputSuite(StrictModel):
    """A declared timing experiment: at least one of `layers`, `models`, `fused_conv_bn`."""

    name: str = Field(pattern=SUITE_NAME_PATTERN, max_length=80)
    description: str = ""
    kind: Literal["throughput"]
    devices: list[str] = Field(default_factory=lambda: ["auto"], min_length=1)
    threads: list[int | Literal["auto"]] = Field(default_factory=lambda: ["auto"], min_length=1)
    strict: bool = False  # an unavailable (explicitly named) device is an error instead of skipped
    seed: int = Field(default=0, ge=0)  # seeds the synthetic inputs and the model weights
    timing: TimingConfig = Field(default_factory=TimingConfig)
    # Each section is one grid or a list of grids (so that, e.g., eval mode is timed only for the
    # norms whose eval differs from train); a single mapping is read as a list of one.
    layers: list[LayerGrid] | None = None
    models: list[ModelGrid] | None = None
    fused_conv_bn: list[FusedConvBNGrid] | None = None

    @field_validator("layers", "models", "fused_conv_bn", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @field_validator("devices")
    @classmethod
    def _known_devices(cls, values: list[str]) -> list[str]:
        return _distinct(check_device_names(values), "devices")

    @field_validator("threads")
    @classmethod
    def _positive_threads(cls, values: list[int | str]) -> list[int | str]:
        if any(v != "auto" and (isinstance(v, bool) or v < 1) for v in values):
            raise ValueError(f"threads must be positive integers or auto, got {values}")
        return _distinct(values, "threads")

    @model_validator(mode="after")
    def _something_to_time(self) -> "ThroughputSuite":
        if not self.layers and not self.models and not self.fused_conv_bn:
            raise ValueError("a throughput suite needs at least one of `layers`, `models`, `fused_conv_bn`")
        return self
