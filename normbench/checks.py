"""Checks of a schema-valid suite against the registries, the data and this machine."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from normbench.suite import Suite, SuiteError


@dataclass
class SuiteCheck:
    """Outcome of checking a suite: devices that will be skipped, and why."""

    unavailable_devices: dict[str, str] = field(default_factory=dict)


def device_unavailable_reason(device: str) -> str | None:
    """Why `device` cannot run here, or None when it can."""
    import torch

    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            return "CUDA is not available on this machine (torch.cuda.is_available() is False)"
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            return f"{device} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)"
    if device == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        return "MPS is not available on this machine"
    return None


def check_suite(suite: Suite, *, source: str | Path, skip_unavailable: bool = False) -> SuiteCheck:
    """Raise SuiteError naming file, field and allowed values for anything that cannot run."""
    from normbench.data import available_datasets, load_dataset
    from normbench.models import available_models, create_model
    from normbench.norms import canonical_name, create_norm

    errors: list[str] = []

    def fail(field_path: str, message: str) -> None:
        errors.append(f"{source}: field `{field_path}`: {message}")

    # Datasets first: the models need their input shapes and the batch sizes their sizes.
    datasets = []
    many = isinstance(suite.dataset, list)
    for k, entry in enumerate(suite.datasets):
        where = f"dataset[{k}]" if many else "dataset"
        if entry.name not in available_datasets():
            fail(f"{where}.name", f"unknown dataset {entry.name!r}; allowed: {', '.join(available_datasets())}")
            continue
        try:
            dataset = load_dataset(entry.name, **entry.options)
        except (ValueError, TypeError, FileNotFoundError) as exc:
            fail(where, str(exc))
            continue
        datasets.append(dataset)
        too_big = [b for b in suite.batch_sizes if b > dataset.n_train]
        if too_big:
            fail("batch_sizes", f"{too_big} larger than the training set ({dataset.n_train} samples of "
                 f"{entry.name}); use batch sizes up to {dataset.n_train}")
    norm_names: dict[int, str] = {}
    for i, norm in enumerate(suite.norms):
        try:
            norm_names[i] = canonical_name(norm.name)
        except ValueError as exc:
            fail(f"norms[{i}].name", str(exc))
    model_ok: dict[int, bool] = {}
    for j, model in enumerate(suite.models):
        if model.name not in available_models():
            fail(f"models[{j}].name", f"unknown model {model.name!r}; allowed: {', '.join(available_models())}")
            continue
        try:
            for data in datasets:
                if model.datasets is not None and data.name not in model.datasets:
                    continue
                _build(create_model, model.name, model.options, functools.partial(create_norm, "none"), data)
            model_ok[j] = bool(datasets)
        except (ValueError, TypeError) as exc:
            fail(f"models[{j}].options", f"{exc} (on dataset {data.name!r})" if len(datasets) > 1 else str(exc))
    for i, name in norm_names.items():
        factory = functools.partial(create_norm, name, **suite.norms[i].options)
        problem = None
        for j, data in ((j, d) for j, ok in model_ok.items() if ok for d in datasets
                        if suite.models[j].datasets is None or d.name in suite.models[j].datasets):
            try:
                _build(create_model, suite.models[j].name, suite.models[j].options, factory, data)
            except (ValueError, TypeError) as exc:
                problem = f"{exc} (with model {suite.models[j].name!r} on {data.name!r})"
                break
        if problem:
            fail(f"norms[{i}].options", problem)

    for i, norm in enumerate(suite.norms):
        ghost = norm.options.get("ghost_batch_size")
        if isinstance(ghost, int) and ghost > 0:
            bad = [b for b in suite.batch_sizes if b % ghost]
            if bad:
                fail(f"norms[{i}].options.ghost_batch_size",
                     f"{ghost} does not divide batch sizes {bad}; ghost batches must split every batch evenly")

    check = SuiteCheck()
    for device in suite.devices:
        reason = device_unavailable_reason(device)
        if reason is None:
            continue
        if skip_unavailable:
            check.unavailable_devices[device] = reason
        else:
            fail("devices", f"{device!r}: {reason}; remove it or pass --skip-unavailable to record its runs as skipped")
    if errors:
        raise SuiteError("\n".join(errors))
    return check


def _build(create_model, name, options, norm_factory, dataset):
    import torch

    # A throwaway build validates options (GN groups vs channels, etc.); keep the global RNG untouched.
    with torch.random.fork_rng(devices=[]):
        return create_model(
            name, norm=norm_factory, input_shape=tuple(dataset.input_shape), num_classes=dataset.num_classes, **options
        )
