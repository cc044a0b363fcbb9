"""ThroughputSpec (one timing measurement, frozen, with a stable id) and ThroughputResult.

Outcomes are normbench.spec's names (completed, skipped, undefined, failed).

Plain data, no torch: the store and the report read these without importing torch.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

from normbench.spec import COMPLETED, UNDEFINED, Options, canonical_json, freeze_options, thaw_options

# Bump when the meaning of a ThroughputSpec field or of a measurement changes, so that resume never
# mixes old and new numbers under one id. 2: normbench's own block loop (a guaranteed sample count),
# native twins timed in interleaved blocks, compiled variants, layers' native fast paths.
THROUGHPUT_SPEC_VERSION = 2

KIND = "throughput"
LAYER, MODEL, CONV_BN = "layer", "model", "conv_bn"
# A timing whose interquartile range exceeds this fraction of its median is flagged as noisy.
NOISE_THRESHOLD = 0.10
# Final results: resume skips them. Skipped and failed specs are tried again (a GPU may be present
# next time; an error may be fixed), as for training runs.
FINAL_THROUGHPUT_OUTCOMES = (COMPLETED, UNDEFINED)


@dataclass(frozen=True)
class ThroughputSpec:
    """Everything that determines one measurement.

    `subject` is `layer` (one norm module), `model` (a whole network) or `conv_bn` (a convolution
    followed by BN, `variant` folded or unfolded). `operation` is `forward` / `forward_backward`
    for layers, `train_step` / `inference` for models and `inference` for conv+BN. `shape` is the
    full input shape including the batch axis.
    """

    suite: str
    subject: str
    name: str  # norm name (layer), model name (model), "conv_bn"
    norm: str  # canonical norm: the layer itself, the model's norm, "batch" for conv+BN
    norm_label: str
    shape: tuple[int, ...]
    dtype: str
    memory_format: str
    mode: str  # train | eval: which statistics the norm uses
    operation: str
    device: str
    threads: int
    method: str
    min_run_time: float
    max_run_time: float
    min_samples: int
    warmup: int
    warmup_time: float
    peak_memory: bool
    copy_bandwidth: bool
    allocator: str = "retain"  # CPU allocator policy while measuring (see measure.set_allocator_policy)
    seed: int = 0
    variant: str = ""  # conv_bn: folded | unfolded
    compile: str = "eager"  # eager | inductor (torch.compile; see throughput/compiled.py)
    native: bool = False  # layers: also time torch's own module for the layer (throughput/native.py)
    label: str = ""  # the subject's label (model label, conv case label)
    num_classes: int | None = None
    norm_options: Options = field(default_factory=tuple)
    options: Options = field(default_factory=tuple)  # model options, or the conv case's geometry

    @property
    def batch_size(self) -> int:
        """Rows of the input: the first axis of `shape`."""
        return self.shape[0]

    @property
    def numel(self) -> int:
        """Elements of the input tensor."""
        count = 1
        for size in self.shape:
            count *= size
        return count

    @property
    def norm_kwargs(self) -> dict[str, Any]:
        """Norm options as keyword arguments for create_norm."""
        return thaw_options(self.norm_options)

    @property
    def option_kwargs(self) -> dict[str, Any]:
        """Model options, or the conv case's geometry, as keyword arguments."""
        return thaw_options(self.options)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON view (options as dicts, shape as a list) used for storage and hashing."""
        data = asdict(self)
        data["shape"] = list(self.shape)
        data["norm_options"] = thaw_options(self.norm_options)
        data["options"] = thaw_options(self.options)
        return data

    @property
    def spec_id(self) -> str:
        """Stable id: sha256 of the canonical JSON of the spec plus the spec version (16 hex chars)."""
        payload = canonical_json({"throughput_spec_version": THROUGHPUT_SPEC_VERSION, "spec": self.to_dict()})
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ThroughputSpec":
        """Rebuild a spec stored with :meth:`to_dict`."""
        values = dict(data)
        values["shape"] = tuple(values["shape"])
        values["norm_options"] = freeze_options(values.get("norm_options") or {})
        values["options"] = freeze_options(values.get("options") or {})
        return cls(**values)

    def describe(self) -> str:
        """Short human label, e.g. `batch 32x64x32x32 float32 train forward cpu 2t`."""
        what = {
            LAYER: self.norm_label,
            MODEL: f"{self.label or self.name}/{self.norm_label}",
            CONV_BN: f"{self.label or 'conv_bn'} {self.variant}",
        }[self.subject]
        parts = [what, "x".join(str(s) for s in self.shape), self.dtype]
        if self.memory_format != "contiguous":
            parts.append(self.memory_format)
        parts += [self.mode, self.operation, self.device, f"{self.threads}t"]
        if self.compile != "eager":
            parts.append(self.compile)
        return " ".join(parts)


@dataclass
class ThroughputResult:
    """What measuring one spec produced, whatever its outcome.

    Times are seconds per call. `samples` are torch.utils.benchmark's raw per-block averages
    (each = block time / the block's number of calls, in `sample_numbers`); summaries are
    computed from them. `outcome` is
    completed, skipped (device or dtype not available: `reason` says why), undefined (the norm is
    undefined for this input, e.g. IN on (N, C)) or failed (`reason` holds the error text).
    """

    spec: ThroughputSpec
    outcome: str
    reason: str = ""
    samples: list[float] = field(default_factory=list)
    sample_numbers: list[int] = field(default_factory=list)  # calls in each sample's block
    median_s: float | None = None
    iqr_s: float | None = None
    noisy: bool | None = None
    bytes_moved: int | None = None  # ideal bytes per call (layers; see roofline.py)
    bytes_model: str = ""
    copy_bytes: int | None = None  # bytes one same-size dst.copy_(src) moves (read + write)
    copy_samples: list[float] = field(default_factory=list)
    copy_sample_numbers: list[int] = field(default_factory=list)
    copy_median_s: float | None = None
    compile_time_s: float | None = None  # first call of a compiled subject (compilation included)
    native_module: str = ""  # torch's own module timed beside a layer, e.g. torch.nn.BatchNorm2d(64, ...)
    native_note: str = ""  # why there is no native ratio (no equivalent module, or it failed)
    native_samples: list[float] = field(default_factory=list)  # interleaved with `samples`, round by round
    native_sample_numbers: list[int] = field(default_factory=list)
    native_median_s: float | None = None
    peak_memory_bytes: int | None = None
    peak_memory_method: str = ""
    device_name: str = ""
    allocator: str = ""  # the CPU allocator policy in effect during the measurement
    # 1-minute load average when the measurement started: above the CPU count (this run's own
    # threads included) other processes competed for the cores and the timing is suspect.
    load_avg: float | None = None
    wall_time_s: float = 0.0
    started_at: str = ""
    finished_at: str = ""

    @property
    def number_per_run(self) -> int:
        """Calls per timed block (of the last measurement, if a top-up re-estimated the block size)."""
        return self.sample_numbers[-1] if self.sample_numbers else 0

    @property
    def iqr_over_median(self) -> float | None:
        """Interquartile range over median time (None without a positive median)."""
        if self.median_s is None or self.iqr_s is None or self.median_s <= 0:
            return None
        return self.iqr_s / self.median_s

    @property
    def items_per_s(self) -> float | None:
        """Samples (batch rows) processed per second at the median time."""
        return self.spec.batch_size / self.median_s if self.median_s else None

    @property
    def achieved_gbps(self) -> float | None:
        """Ideal bytes / median time, in GB/s (10^9 bytes per second)."""
        if not self.bytes_moved or not self.median_s:
            return None
        return self.bytes_moved / self.median_s / 1e9

    @property
    def copy_gbps(self) -> float | None:
        """Bandwidth of `dst.copy_(src)` on a same-size tensor (the roofline), in GB/s."""
        if not self.copy_bytes or not self.copy_median_s:
            return None
        return self.copy_bytes / self.copy_median_s / 1e9

    @property
    def native_ratio(self) -> float | None:
        """normbench median / torch's own module's median on the same input (1.0: no wrapper tax)."""
        if not self.median_s or not self.native_median_s:
            return None
        return self.median_s / self.native_median_s

    @property
    def roofline_fraction(self) -> float | None:
        """Achieved GB/s as a fraction of the measured copy bandwidth (1.0 = as fast as a copy)."""
        achieved, copy = self.achieved_gbps, self.copy_gbps
        if achieved is None or not copy:
            return None
        return achieved / copy


# Bytes per element of each dtype name (the spec holds names, not torch dtypes).
_ELEMENT_SIZE = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}


def element_size(dtype: str) -> int:
    """Bytes per element of a dtype name (`float32` → 4)."""
    return _ELEMENT_SIZE[dtype]
