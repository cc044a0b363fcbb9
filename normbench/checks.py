"""Checks of a schema-valid suite against the registries, the data and this machine."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from normbench.plugins.protocols import DATASET_LOADER, MODEL_BUILDER, NORM_CLASS
from normbench.plugins.source import PluginError
from normbench.suite import ModelEntry, NamedEntry, Suite, SuiteError

if TYPE_CHECKING:
    from normbench.data import Dataset


@dataclass(frozen=True)
class LoadedData:
    """A suite's dataset as loaded for checking, under the name the suite gives it."""

    name: str
    dataset: Dataset


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
    """Raise SuiteError naming file, field and allowed values for anything that cannot run.

    Plugins (import paths, entry points) are imported here, their signatures checked against their
    protocol and each run once on the suite's data (docs/extending.md), so a bad plugin is exit 2
    before anything runs.
    """
    errors = FieldErrors(source)
    # Datasets first: the models need their input shapes and the batch sizes their sizes.
    datasets = _check_datasets(suite, errors)
    _check_batching(suite, datasets, errors)
    norm_names = _check_norm_names(suite, datasets, errors)
    built_models = _check_models(suite, datasets, errors)
    _check_norm_options(suite, norm_names, built_models, datasets, errors)
    _check_norm_batch_sizes(suite, norm_names, errors)
    check = SuiteCheck(unavailable_devices=_check_devices(suite, skip_unavailable, errors))
    errors.raise_if_any()
    return check


def _lookup(registry, name: str, unknown: str) -> str | None:
    """Why ``name`` does not resolve in ``registry`` (a plugin's own error, or ``unknown``), or None."""
    try:
        registry.canonical(name)
    except PluginError as exc:
        return str(exc)
    except ValueError:
        return unknown
    return None


def _check_datasets(suite: Suite, errors: FieldErrors) -> list[LoadedData]:
    """Load every dataset of the suite; each must also hold a full batch of every batch size."""
    from normbench.data import available_datasets
    from normbench.data.registry import DATASETS

    loaded = []
    many = isinstance(suite.dataset, list)
    for k, entry in enumerate(suite.datasets):
        where = f"dataset[{k}]" if many else "dataset"
        problem = _lookup(DATASETS, entry.name, f"unknown dataset {entry.name!r}; allowed: "
                          f"{', '.join(available_datasets())}; or an import path package.module:loader")
        if problem:
            errors.add(f"{where}.name", problem)
            continue
        try:
            dataset = _load(entry)
        except (ValueError, TypeError, FileNotFoundError) as exc:
            errors.add(where, str(exc))
            continue
        loaded.append(LoadedData(entry.name, dataset))
        too_big = [b for b in suite.batch_sizes if b > dataset.n_train]
        if too_big:
            errors.add("batch_sizes", f"{too_big} larger than the training set ({dataset.n_train} samples of "
                       f"{entry.name}); use batch sizes up to {dataset.n_train}")
    return loaded


def _load(entry: NamedEntry) -> Dataset:
    """Load a dataset; a plugin's signature is checked first and whatever it raises is named as its."""
    from normbench.data import load_dataset
    from normbench.data.registry import DATASETS
    from normbench.plugins.conformance import check_dataset_result

    if not DATASETS.entry(entry.name).is_plugin:
        return load_dataset(entry.name, **entry.options)
    DATASETS.check_options(entry.name, entry.options)
    DATASET_LOADER.check_signature(entry.name, DATASETS.get(entry.name), entry.options)
    try:
        result = load_dataset(entry.name, **entry.options)
    except Exception as exc:  # a plugin's error, whatever its type, is reported as the plugin's
        raise PluginError(f"dataset {entry.name!r} raised {type(exc).__name__} while loading: {exc}") from None
    return check_dataset_result(entry.name, result)


def _check_batching(suite: Suite, datasets: list[LoadedData], errors: FieldErrors) -> None:
    """Batches drawn from k classes need class labels and at least k classes in every dataset; a
    fixed order of S samples needs S training samples; `select: best_validation_loss` a validation split."""
    for loaded in datasets:
        if suite.select == "best_validation_loss" and loaded.dataset.x_val is None:
            errors.add("select", f"best_validation_loss needs a validation split; dataset {loaded.name!r} has none "
                       "(give it a validation option, e.g. cifar10's `validation`, or use select: last)")
        for samples in (b["samples"] for b in suite.batching if "samples" in b):
            if samples > loaded.dataset.n_train:
                errors.add("batching", f"samples={samples} exceeds the {loaded.dataset.n_train} training samples "
                           f"of {loaded.name!r}")
    wanted = [b["classes_per_batch"] for b in suite.batching if "classes_per_batch" in b]
    if not wanted:
        return
    for loaded in datasets:
        data = loaded.dataset
        if data.task != "classification":
            errors.add("batching", f"classes_per_batch needs class labels; dataset {loaded.name!r} is a "
                       f"{data.task} task; use batching: iid")
        elif max(wanted) > data.num_classes:
            errors.add("batching", f"classes_per_batch={max(wanted)} exceeds the {data.num_classes} classes of "
                       f"{loaded.name!r}; use at most {data.num_classes}")


def _check_norm_names(suite: Suite, datasets: list[LoadedData], errors: FieldErrors) -> dict[int, str]:
    """Canonical name of every norm entry that resolves, by entry index; a plugin norm's signature
    is checked, and its handling of the padding mask when a dataset has masks."""
    from normbench.norms import create_norm
    from normbench.norms.registry import NORMS
    from normbench.plugins.conformance import check_norm_mask

    masked = [data.name for data in datasets if data.dataset.mask_train is not None]
    names = {}
    for i, norm in enumerate(suite.norms):
        try:
            name = NORMS.canonical(norm.name)
        except ValueError as exc:
            errors.add(f"norms[{i}].name", str(exc))
            continue
        try:
            if NORMS.entry(name).is_plugin:
                NORMS.check_options(name, norm.options)
                NORM_CLASS.check_signature(name, NORMS.get(name), norm.options)
                if masked:
                    check_norm_mask(name, functools.partial(create_norm, name, **norm.options), masked[0])
        except PluginError as exc:
            errors.add(f"norms[{i}]", str(exc))
        except ValueError as exc:
            errors.add(f"norms[{i}].options", str(exc))
        else:
            names[i] = name
    return names


def _check_models(suite: Suite, datasets: list[LoadedData], errors: FieldErrors) -> list[int]:
    """Build every model with the identity norm on each of its datasets; indices of those that built."""
    from normbench.models import available_models
    from normbench.models.registry import MODELS

    built = []
    for j, model in enumerate(suite.models):
        problem = _lookup(MODELS, model.name, f"unknown model {model.name!r}; allowed: "
                          f"{', '.join(available_models())}; or an import path package.module:builder")
        if problem:
            errors.add(f"models[{j}].name", problem)
            continue
        failure = _build_failure(model, "none", {}, datasets)
        if failure is not None:
            exc, data = failure
            field_path = f"models[{j}]" if isinstance(exc, PluginError) else f"models[{j}].options"
            errors.add(field_path, f"{exc} (on dataset {data!r})" if len(datasets) > 1 else str(exc))
        elif datasets:
            built.append(j)
    return built


def _check_norm_options(
    suite: Suite, norm_names: dict[int, str], built_models: list[int], datasets: list[LoadedData], errors: FieldErrors
) -> None:
    """Build each model that built with the identity norm again with each norm (its options meet the widths)."""
    for i, name in norm_names.items():
        for j in built_models:
            if not suite.runs_norm(suite.models[j], suite.norms[i]):
                continue
            failure = _build_failure(suite.models[j], name, suite.norms[i].options, datasets)
            if failure is not None:
                exc, data = failure
                errors.add(f"norms[{i}].options", f"{exc} (with model {suite.models[j].name!r} on {data!r})")
                break


def _check_norm_batch_sizes(suite: Suite, norm_names: dict[int, str], errors: FieldErrors) -> None:
    """Each norm's own constraint on the suite's batch sizes (BN's ghost batches), via its hook."""
    from normbench.norms import NormModule
    from normbench.norms.registry import NORMS

    for i, name in norm_names.items():
        norm_class = NORMS.get(name)
        if not (isinstance(norm_class, type) and issubclass(norm_class, NormModule)):  # plugins need no hooks
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


def _build_failure(model: ModelEntry, norm: str, norm_options: dict, datasets: list[LoadedData]
                   ) -> tuple[Exception, str] | None:
    """The first (error, dataset name) building ``model`` with ``norm`` on the datasets it runs on raises."""
    from normbench.models.registry import MODELS

    plugin = MODELS.entry(model.name).is_plugin
    for data in datasets:
        if model.datasets is not None and data.name not in model.datasets:
            continue
        try:
            _build(model, norm, norm_options, data.dataset, plugin)
        except (ValueError, TypeError) as exc:
            return exc, data.name
        except Exception as exc:  # only a plugin's code gets here: built-ins raise ValueError/TypeError
            if not plugin:
                raise
            return PluginError(f"model {model.name!r} raised {type(exc).__name__} while building: {exc}"), data.name
    return None


def _build(model: ModelEntry, norm: str, norm_options: dict, dataset: Dataset, plugin: bool) -> None:
    """A throwaway build (validates options: GN groups vs channels, etc.); a plugin model also runs
    one forward pass. The global RNG is left untouched."""
    import torch

    from normbench.models import create_model
    from normbench.models.registry import MODELS
    from normbench.models.swapped import build_swapped_model
    from normbench.norms import create_norm
    from normbench.plugins.conformance import check_model_output

    with torch.random.fork_rng(devices=[]):
        if model.swap_norms:
            built, report = build_swapped_model(model.name, model.options, norm=norm, norm_options=norm_options,
                                                layer_norm=model.swap_settings().get("layer_norm", False))
            if not report.replaced:
                raise PluginError(f"model {model.name!r}: swap_norms found no norm layer to replace "
                                  f"({report.summary()}); remove swap_norms or use a model with norm layers")
        else:
            if plugin:
                options = set(model.options)
                MODELS.check_options(model.name, options)
                MODEL_BUILDER.check_signature(model.name, MODELS.get(model.name), options)
            factory = functools.partial(create_norm, norm, **norm_options)
            built = create_model(model.name, norm=factory, input_shape=tuple(dataset.input_shape),
                                 num_classes=dataset.num_classes, **model.options)
        if plugin:
            check_model_output(model.name, built, dataset)
