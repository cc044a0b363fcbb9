"""Expanding a training suite into RunSpecs: every combination, in a stable order, with stable ids."""

from __future__ import annotations

import itertools
from typing import Any, Callable

from normbench.spec import RunSpec, freeze_options
from normbench.suite.errors import SuiteError
from normbench.suite.schema import NormEntry, Suite


def options_label(name: str, options: dict[str, Any]) -> str:
    """`group(num_groups=8)`: a name with its options, sorted; the bare name when there are none."""
    if not options:
        return name
    return f"{name}({', '.join(f'{k}={v}' for k, v in sorted(options.items()))})"


def norm_label(entry: NormEntry, canonical: str) -> str:
    """Human label of a norm entry: its explicit label, else `group(num_groups=8)` style."""
    return entry.label or options_label(canonical, entry.options)


def expand(
    suite: Suite,
    *,
    resolve_device: Callable[[str], str] | None = None,
    canonical_norm: Callable[[str], str] | None = None,
) -> list[RunSpec]:
    """All RunSpecs of a suite, in a stable order (model, batching, norm, batch size, seed, device).

    `canonical_norm` maps aliases to canonical names (defaults to the norm registry);
    `resolve_device` turns `auto` into a concrete device (defaults to cuda if present, else cpu).
    """
    if canonical_norm is None:
        from normbench.norms import canonical_name as canonical_norm
    resolve_device = resolve_device or resolve_auto_device
    specs = []
    for (dataset, model), batching, norm, (optimizer, base_lr), batch_size, seed, device in itertools.product(
        suite.pairs(), suite.batching, suite.norms, suite.optimizer_rates(), suite.batch_sizes, suite.seeds,
        suite.devices,
    ):
        if not suite.runs_norm(model, norm):
            continue
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
                optimizer=optimizer.name,
                lr=suite.lr_for(batch_size, base_lr),
                base_lr=base_lr,
                lr_scaling=suite.lr_scaling,
                reference_batch_size=suite.reference_batch_size,
                target_accuracy=suite.target_accuracy,
                probes=freeze_options(suite.probes.enabled()),
                momentum=optimizer.momentum, weight_decay=optimizer.weight_decay,
                lr_schedule=optimizer.schedule,
                eval_every=0 if suite.eval_every == "epoch" else suite.eval_every,
                eval_per_epoch=suite.eval_every == "epoch",
                select=suite.select,
                model_options=freeze_options(model.options),
                dataset_options=freeze_options(dataset.options),
                norm_options=freeze_options(norm.options),
                batching=freeze_options(batching),
                swap_norms=freeze_options(model.swap_settings()),
                plugins=freeze_options(plugin_provenance(model.name, dataset.name, norm.name)),
            )
        )
    ids = [s.run_id for s in specs]
    if len(set(ids)) != len(ids):
        raise SuiteError(f"suite {suite.name!r} declares the same run twice (duplicate models or norms with equal options)")
    return specs


def plugin_provenance(model: str, dataset: str, norm: str) -> dict[str, dict[str, Any]]:
    """Role → provenance of each plugin among a run's model, dataset and norm (built-ins have none)."""
    from normbench.data.registry import DATASETS
    from normbench.models.registry import MODELS
    from normbench.norms.registry import NORMS

    found = {}
    for role, registry, name in (("model", MODELS, model), ("dataset", DATASETS, dataset), ("norm", NORMS, norm)):
        provenance = registry.provenance(name)
        if provenance is not None:
            found[role] = provenance.to_dict()
    return found


def resolve_auto_device(device: str) -> str:
    """`auto` → `cuda` when a GPU is present, else `cpu`; any other name unchanged."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
