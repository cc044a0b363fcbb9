"""Checks of a schema-valid suite against the registries, the data and this machine."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from normbench.suite import ModelEntry, Suite, SuiteError

if TYPE_CHECKING:
    from normbench.data import Dataset


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


class FieldErrors:
    """Problems found in a suite, each naming the file and the field; raised together as one SuiteError."""

    def __init__(self, source: str | Path) -> None:
        self.source = source
        self.lines: list[str] = []

    def add(self, field_path: str, message: str) -> None:
        """Record that `field_path` of the suite is wrong, and why."""
        self.lines.append(f"{self.source}: field `{field_path}`: {message}")

    def raise_if_any(self) -> None:
        """Raise one SuiteError listing every recorded problem, if there is any."""
        if self.lines:
            raise SuiteError("\n".join(self.lines))


def check_suite(suite: Suite, *, source: str | Path, skip_unavailable: bool = False) -> SuiteCheck:
    """Raise SuiteError naming file, field and allowed values for anything that cannot run."""
    errors = FieldErrors(source)
    # Datasets first: the models need their input shapes and the batch sizes their sizes.
    datasets = _check_datasets(suite, errors)
    _check_batching(suite, datasets, errors)
    norm_names = _check_norm_names(suite, errors)
    built_models = _check_models(suite, datasets, errors)
    _check_norm_options(suite, norm_names, built_models, datasets, errors)
    _check_norm_batch_sizes(suite, norm_names, errors)
    check = SuiteCheck(unavailable_devices=_check_devices(suite, skip_unavailable, errors))
    errors.raise_if_any()
    return check


def _check_datasets(suite: Suite, errors: FieldErrors) -> list[Dataset]:
    """Load every dataset of the suite; each must also hold a full batch of every batch size."""
    from normbench.data import available_datasets, load_dataset

    loaded = []
    many = isinstance(suite.dataset, list)
    for k, entry in enumerate(suite.datasets):
        where = f"dataset[{k}]" if many else "dataset"
        if entry.name not in available_datasets():
            errors.add(f"{where}.name", f"unknown dataset {entry.name!r}; allowed: {', '.join(available_datasets())}")
            continue
        try:
            dataset = load_dataset(entry.name, **entry.options)
        except (ValueError, TypeError, FileNotFoundError) as exc:
            errors.add(where, str(exc))
            continue
        loaded.append(dataset)
        too_big = [b for b in suite.batch_sizes if b > dataset.n_train]
        if too_big:
            errors.add("batch_sizes", f"{too_big} larger than the training set ({dataset.n_train} samples of "
                       f"{entry.name}); use batch sizes up to {dataset.n_train}")
    return loaded


def _check_batching(suite: Suite, datasets: list[Dataset], errors: FieldErrors) -> None:
    """Batches drawn from k classes need class labels and at least k classes in every dataset."""
    wanted = [b["classes_per_batch"] for b in suite.batching if b]
    if not wanted:
        return
    for dataset in datasets:
        if dataset.task != "classification":
            errors.add("batching", f"classes_per_batch needs class labels; dataset {dataset.name!r} is a "
                       f"{dataset.task} task; use batching: iid")
        elif max(wanted) > dataset.num_classes:
            errors.add("batching", f"classes_per_batch={max(wanted)} exceeds the {dataset.num_classes} classes of "
                       f"{dataset.name!r}; use at most {dataset.num_classes}")


def _check_norm_names(suite: Suite, errors: FieldErrors) -> dict[int, str]:
    """Canonical name of every norm entry whose name (or alias) is registered, by entry index."""
    from normbench.norms import canonical_name

    names = {}
    for i, norm in enumerate(suite.norms):
        try:
            names[i] = canonical_name(norm.name)
        except ValueError as exc:
            errors.add(f"norms[{i}].name", str(exc))
    return names


def _check_models(suite: Suite, datasets: list[Dataset], errors: FieldErrors) -> list[int]:
    """Build every model with the identity norm on each of its datasets; indices of those that built."""
    from normbench.models import available_models
    from normbench.norms import create_norm

    built = []
    for j, model in enumerate(suite.models):
        if model.name not in available_models():
            errors.add(f"models[{j}].name", f"unknown model {model.name!r}; allowed: {', '.join(available_models())}")
            continue
        failure = _build_failure(model, functools.partial(create_norm, "none"), datasets)
        if failure is not None:
            exc, data = failure
            errors.add(f"models[{j}].options", f"{exc} (on dataset {data.name!r})" if len(datasets) > 1 else str(exc))
        elif datasets:
            built.append(j)
    return built


def _check_norm_options(
    suite: Suite, norm_names: dict[int, str], built_models: list[int], datasets: list[Dataset], errors: FieldErrors
) -> None:
    """Build each model that built with the identity norm again with each norm (its options meet the widths)."""
    from normbench.norms import create_norm

    for i, name in norm_names.items():
        factory = functools.partial(create_norm, name, **suite.norms[i].options)
        for j in built_models:
            failure = _build_failure(suite.models[j], factory, datasets)
            if failure is not None:
                exc, data = failure
                errors.add(f"norms[{i}].options", f"{exc} (with model {suite.models[j].name!r} on {data.name!r})")
                break


def _check_norm_batch_sizes(suite: Suite, norm_names: dict[int, str], errors: FieldErrors) -> None:
    """Each norm's own constraint on the suite's batch sizes (BN's ghost batches), via its hook."""
    from normbench.norms import NormModule
    from normbench.norms.registry import NORMS

    for i, name in norm_names.items():
        norm_class = NORMS.get(name)
        if not issubclass(norm_class, NormModule):  # a plugin norm need not define the hooks
            continue
        problem = norm_class.check_batch_sizes(suite.norms[i].options, suite.batch_sizes)
        if problem is not None:
            errors.add(f"norms[{i}].options.{problem.option}", problem.message)


def _check_devices(suite: Suite, skip_unavailable: bool, errors: FieldErrors) -> dict[str, str]:
    """Devices absent here, with the reason: to be skipped, or errors unless `skip_unavailable`."""
    unavailable = {}
    for device in suite.devices:
        reason = device_unavailable_reason(device)
        if reason is None:
            continue
        if skip_unavailable:
            unavailable[device] = reason
        else:
            errors.add("devices", f"{device!r}: {reason}; remove it or pass --skip-unavailable to record its runs "
                       "as skipped")
    return unavailable


def _build_failure(model: ModelEntry, norm_factory, datasets: list[Dataset]) -> tuple[Exception, Dataset] | None:
    """The first (error, dataset) building `model` with `norm_factory` on the datasets it runs on raises."""
    for data in datasets:
        if model.datasets is not None and data.name not in model.datasets:
            continue
        try:
            _build(model, norm_factory, data)
        except (ValueError, TypeError) as exc:
            return exc, data
    return None


def _build(model: ModelEntry, norm_factory, dataset: Dataset):
    import torch

    from normbench.models import create_model

    # A throwaway build validates options (GN groups vs channels, etc.); keep the global RNG untouched.
    with torch.random.fork_rng(devices=[]):
        return create_model(model.name, norm=norm_factory, input_shape=tuple(dataset.input_shape),
                            num_classes=dataset.num_classes, **model.options)
