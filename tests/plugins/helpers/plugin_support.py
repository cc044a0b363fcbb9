"""Helpers for the plugin tests (a plain module; tests/plugins/conftest.py puts this folder on sys.path)."""

from __future__ import annotations

from pathlib import Path


def forget_all_plugins() -> None:
    """Every registry looks for plugins afresh on its next lookup."""
    from normbench.data.registry import DATASETS
    from normbench.models.registry import MODELS
    from normbench.norms.registry import NORMS

    for registry in (MODELS, DATASETS, NORMS):
        registry.forget_plugins()


def write_distribution(site: Path, name: str, version: str, entry_points: dict[str, dict[str, str]]) -> Path:
    """A minimal installed distribution (dist-info with METADATA and entry_points.txt) under ``site``."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = []
    for group, points in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{key} = {value}" for key, value in points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return info


def tiny_suite(**changes) -> dict:
    """A suite that validates and trains in well under a second per run on digits."""
    suite = {
        "name": "plugins", "dataset": "digits", "models": ["mlp"], "norms": ["batch"], "batch_sizes": [8],
        "seeds": [0], "steps": 2, "eval_every": 2, "optimizer": {"lr": 0.05},
    }
    suite.update(changes)
    return suite


REPO = Path(__file__).resolve().parents[3]
SAMPLES = Path(__file__).resolve().parents[1] / "samples"
