"""A `throughput` suite past the shared loader: checks against the registries and this machine, expansion.

Errors are `normbench.suite.SuiteError`s in the training suites' style: one line per problem, naming
the file, the field and the allowed values; nothing is measured or written before a suite passes.
Reading, `--set` overrides and schema validation are the shared loader's (`normbench.suite.load`,
with the rules in `normbench.throughput.kind`).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from normbench.spec import freeze_options
from normbench.suite import SuiteError, norm_label, options_label
from normbench.throughput.schema import (
    MEMORY_FORMATS,
    ConvBNCase,
    LayerGrid,
    ModelGrid,
    ThroughputSuite,
    TimingConfig,
    dtypes_for,
)
from normbench.throughput.spec import CONV_BN, LAYER, MODEL, ThroughputSpec

_FORMAT_RANK = {"channels_last": 4, "channels_last_3d": 5}  # contiguous applies to every rank


def section_field(section: str, index: int, count: int) -> str:
    """`layers` for a suite with one layer grid, `layers[1]` when there are several."""
    return section if count == 1 else f"{section}[{index}]"


def check_throughput_suite(suite: ThroughputSuite, *, source: str | Path, strict: bool = False) -> dict[str, str]:
    """Check a schema-valid suite against the registries and this machine.

    Returns the explicitly named devices that are absent here, with the reason (their specs will be
    stored as skipped); raises SuiteError for anything that cannot run, and for absent devices when
    `strict` or the suite's `strict` is set.
    """
    from normbench.checks import device_unavailable_reason

    errors: list[str] = []

    def fail(field: str, message: str) -> None:
        errors.append(f"{source}: field `{field}`: {message}")

    for k, grid in enumerate(suite.layers or []):
        _check_layers(grid, section_field("layers", k, len(suite.layers)), fail)
    for k, grid in enumerate(suite.models or []):
        _check_models(grid, section_field("models", k, len(suite.models)), fail)
    for k, grid in enumerate(suite.fused_conv_bn or []):
        where = section_field("fused_conv_bn", k, len(suite.fused_conv_bn))
        for i, case in enumerate(grid.cases):
            if case.stride > min(case.input_shape[2:]):
                fail(f"{where}.cases[{i}].stride", f"{case.stride} is larger than the input's spatial size")
        _check_formats(grid.memory_formats, [c.input_shape for c in grid.cases], f"{where}.memory_formats", fail)
    unavailable = {}
    for device in suite.devices:
        reason = None if device == "auto" else device_unavailable_reason(device)
        if reason is None:
            continue
        if strict or suite.strict:
            fail("devices", f"{device!r}: {reason}; remove it, use `auto`, or run without --strict to record it as skipped")
        unavailable[device] = reason
    if errors:
        raise SuiteError("\n".join(errors))
    return unavailable


def _check_layers(grid: LayerGrid, where: str, fail) -> None:
    from normbench.norms import canonical_name, create_norm

    for i, norm in enumerate(grid.norms):
        try:
            canonical_name(norm.name)
        except ValueError as exc:
            fail(f"{where}.norms[{i}].name", str(exc))
            continue
        for shape in grid.shapes:
            try:
                create_norm(norm.name, shape[1], **norm.options)
            except (ValueError, TypeError) as exc:
                fail(f"{where}.norms[{i}].options", f"{exc} (with shape {shape})")
                break
    _check_formats(grid.memory_formats, grid.shapes, f"{where}.memory_formats", fail)


def _check_models(grid: ModelGrid, where: str, fail) -> None:
    import functools

    import torch

    from normbench.models import available_models, create_model
    from normbench.norms import canonical_name, create_norm

    for j, subject in enumerate(grid.subjects):
        if subject.name not in available_models():
            fail(f"{where}.subjects[{j}].name", f"unknown model {subject.name!r}; allowed: {', '.join(available_models())}")
            continue
        shape = subject.resolved_input_shape()
        if shape is None:
            fail(f"{where}.subjects[{j}].input_shape", f"required for model {subject.name!r} (one sample's shape, no N)")
            continue
        field = f"{where}.subjects[{j}].norms" if subject.norms is not None else f"{where}.norms"
        for i, norm in enumerate(subject.norms if subject.norms is not None else grid.norms):
            try:
                factory = functools.partial(create_norm, canonical_name(norm.name), **norm.options)
                with torch.random.fork_rng(devices=[]):  # a throwaway build must not move the global RNG
                    create_model(subject.name, norm=factory, input_shape=tuple(shape),
                                 num_classes=subject.num_classes, **subject.options)
            except (ValueError, TypeError) as exc:
                fail(f"{field}[{i}]", f"{exc} (with model {subject.name!r})")
    shapes = [[1, *(s.resolved_input_shape() or [])] for s in grid.subjects]
    _check_formats(grid.memory_formats, shapes, f"{where}.memory_formats", fail)


def _check_formats(formats: list[str], shapes: list[list[int]], field: str, fail) -> None:
    for fmt in formats:
        if not any(format_applies(fmt, len(s)) for s in shapes):
            fitting = [f for f in MEMORY_FORMATS if any(format_applies(f, len(s)) for s in shapes)]
            fail(field, f"{fmt} applies to {_FORMAT_RANK[fmt]}-D inputs only and no input here has that rank; "
                        f"allowed for these shapes: {', '.join(fitting)}")


def format_applies(memory_format: str, rank: int) -> bool:
    """channels_last needs a 4-D input, channels_last_3d a 5-D one; contiguous fits every rank."""
    return _FORMAT_RANK.get(memory_format, rank) == rank


# ---------------------------------------------------------------- expansion


def expand_throughput(suite: ThroughputSuite) -> list[ThroughputSpec]:
    """Every measurement of a suite, in a stable order: device, threads, layers, models, conv+BN.

    `auto` devices become every device available here; `threads: auto` the CPUs this process may
    use. Memory formats that do not fit a shape's rank are not expanded (channels_last: 4-D only).
    """
    from normbench.norms import canonical_name
    from normbench.throughput.device import cpu_threads_default, resolve_devices

    specs: list[ThroughputSpec] = []
    for device in resolve_devices(suite.devices):
        for threads in suite.threads:
            common = _common_fields(suite, device, cpu_threads_default() if threads == "auto" else threads)
            for grid in suite.layers or []:
                specs += _layer_specs(grid, device, common, canonical_name)
            for grid in suite.models or []:
                specs += _model_specs(grid, device, common, canonical_name)
            for grid in suite.fused_conv_bn or []:
                specs += _conv_bn_specs(grid, device, common)
    ids = [s.spec_id for s in specs]
    if len(set(ids)) != len(ids):
        raise SuiteError(f"suite {suite.name!r} declares the same measurement twice (duplicate norms, shapes or models)")
    return specs


def _common_fields(suite: ThroughputSuite, device: str, threads: int) -> dict[str, Any]:
    timing = suite.timing
    return dict(
        suite=suite.name, device=device, threads=threads, seed=suite.seed, method=timing.method,
        min_run_time=timing.min_run_time, max_run_time=timing.max_run_time, min_samples=timing.min_samples,
        warmup=timing.warmup, warmup_time=timing.warmup_time, peak_memory=timing.peak_memory, copy_bandwidth=timing.copy_bandwidth,
        allocator=timing.allocator, native=timing.native,
    )


def _layer_specs(grid, device, common, canonical_name) -> list[ThroughputSpec]:
    specs = []
    for norm, shape, dtype, fmt, mode, operation, compile_mode in itertools.product(
        grid.norms, grid.shapes, dtypes_for(grid.dtypes, device), grid.memory_formats, grid.modes, grid.passes,
        grid.compile,
    ):
        if not format_applies(fmt, len(shape)):
            continue
        canonical = canonical_name(norm.name)
        specs.append(ThroughputSpec(
            subject=LAYER, name=canonical, norm=canonical, norm_label=norm_label(norm, canonical),
            shape=tuple(shape), dtype=dtype, memory_format=fmt, mode=mode, operation=operation,
            norm_options=freeze_options(norm.options), compile=compile_mode, **common,
        ))
    return specs


def _model_specs(grid, device, common, canonical_name) -> list[ThroughputSpec]:
    specs = []
    for subject in grid.subjects:
        norms = subject.norms if subject.norms is not None else grid.norms
        sample_shape = subject.resolved_input_shape()
        for norm, batch, step, dtype, fmt, compile_mode in itertools.product(
            norms, grid.batch_sizes, grid.steps, dtypes_for(grid.dtypes, device), grid.memory_formats, grid.compile
        ):
            shape = (batch, *sample_shape)
            if not format_applies(fmt, len(shape)):
                continue
            canonical = canonical_name(norm.name)
            specs.append(ThroughputSpec(
                subject=MODEL, name=subject.name, norm=canonical, norm_label=norm_label(norm, canonical),
                label=subject.label or options_label(subject.name, subject.options), shape=shape, dtype=dtype, memory_format=fmt,
                mode="train" if step == "train_step" else "eval", operation=step, num_classes=subject.num_classes,
                norm_options=freeze_options(norm.options), options=freeze_options(subject.options),
                compile=compile_mode, **{**common, "native": False},
            ))
    return specs


def _conv_bn_specs(grid, device, common) -> list[ThroughputSpec]:
    specs = []
    for case, dtype, fmt, variant in itertools.product(
        grid.cases, dtypes_for(grid.dtypes, device), grid.memory_formats, ("unfolded", "folded")
    ):
        if not format_applies(fmt, len(case.input_shape)):
            continue
        specs.append(ThroughputSpec(
            subject=CONV_BN, name="conv_bn", norm="batch", norm_label="batch", label=case.label or _conv_label(case),
            shape=tuple(case.input_shape), dtype=dtype, memory_format=fmt, mode="eval", operation="inference",
            variant=variant,
            options=freeze_options({"out_channels": case.out_channels, "kernel_size": case.kernel_size,
                                    "stride": case.stride}),
            **{**common, "native": False},
        ))
    return specs


def _conv_label(case: ConvBNCase) -> str:
    k = "x".join([str(case.kernel_size)] * (len(case.input_shape) - 2))
    return f"conv{k} {case.input_shape[1]}->{case.out_channels}" + (f" /{case.stride}" if case.stride > 1 else "")


def layer_spec(
    norm: str, shape: tuple[int, ...], *, suite: str = "adhoc", dtype: str = "float32", memory_format: str = "contiguous",
    mode: str = "train", operation: str = "forward", device: str = "cpu", threads: int | None = None,
    norm_options: dict[str, Any] | None = None, seed: int = 0, compile: str = "eager", **timing: Any,
) -> ThroughputSpec:
    """One layer measurement without a suite file (benchmarks and tests); timing defaults as in suites."""
    from normbench.norms import canonical_name
    from normbench.throughput.device import cpu_threads_default

    config = TimingConfig(**timing)
    canonical = canonical_name(norm)
    options = norm_options or {}
    return ThroughputSpec(
        suite=suite, subject=LAYER, name=canonical, norm=canonical, norm_label=options_label(canonical, options), shape=tuple(shape), dtype=dtype,
        memory_format=memory_format, mode=mode, operation=operation, device=device,
        threads=threads or cpu_threads_default(), seed=seed, method=config.method, min_run_time=config.min_run_time,
        max_run_time=config.max_run_time, min_samples=config.min_samples, warmup=config.warmup,
        warmup_time=config.warmup_time,
        peak_memory=config.peak_memory, copy_bandwidth=config.copy_bandwidth, allocator=config.allocator,
        native=config.native, norm_options=freeze_options(options), compile=compile,
    )
