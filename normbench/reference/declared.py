"""A suite's `reference:` block: which published results its runs reproduce and how they map onto them.

```yaml
reference:
  source: bln2022            # a reference shipped with normbench, or a path to a YAML file in the same format
  task: cnn                  # the published task every model of the suite reproduces, or
  # tasks: {mlp: mlp, cnn: cnn1d}   # published task -> the suite's model label (several models)
  norms: {bn: BN, ln: LN, bln: BLN} # published norm -> the suite's norm label (or canonical/short name)
  batch_sizes: {100: 64}     # optional: published batch size -> the suite's (default: equal values)
```

The report reads the block back from the stored suite YAML (as it reads `analysis:`), loads the
reference and draws the published per-epoch curves over the suite's, with a table of final numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from normbench.reference import available_references, load_reference


class ReferenceConfig(BaseModel):
    """The declared mapping of a suite's runs onto published ones (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(min_length=1, description="a shipped reference name or a path to a reference YAML file")
    task: str | None = Field(default=None, description="the published task every model of the suite reproduces")
    tasks: dict[str, str] = Field(default_factory=dict, description="published task -> the suite's model label")
    norms: dict[str, str] = Field(min_length=1, description="published norm -> the suite's norm label")
    batch_sizes: dict[int, int] = Field(default_factory=dict, description="published batch size -> the suite's")

    @model_validator(mode="after")
    def _one_task_form(self) -> "ReferenceConfig":
        if (self.task is None) == (not self.tasks):
            raise ValueError("give either `task` (one published task for every model) or `tasks` (published task -> "
                             "model label), not both and not neither")
        data = read_reference(self.source)
        published = {(r["task"], r["norm"]) for r in data["runs"]}
        tasks = [self.task] if self.task is not None else list(self.tasks)
        unknown_tasks = sorted(set(tasks) - {t for t, _ in published})
        unknown_norms = sorted(set(self.norms) - {n for _, n in published})
        if unknown_tasks or unknown_norms:
            known = sorted({t for t, _ in published}), sorted({n for _, n in published})
            raise ValueError(f"reference {data['name']!r} has no task(s) {unknown_tasks or ''} / norm(s) "
                             f"{unknown_norms or ''}; published tasks: {known[0]}, norms: {known[1]}")
        return self

    def published_tasks(self) -> dict[str, str | None]:
        """Published task -> the model label it maps to (None: every model of the suite)."""
        return {self.task: None} if self.task is not None else dict(self.tasks)

    def our_batch_size(self, published: int) -> int:
        """The suite's batch size a published batch size is compared with."""
        return self.batch_sizes.get(published, published)


def read_reference(source: str) -> dict[str, Any]:
    """A shipped reference by name, else a YAML file at ``source``; ValueError saying which exist."""
    if source in available_references():
        return load_reference(source)
    path = Path(source)
    if not path.is_file():
        raise ValueError(f"reference {source!r} is neither a shipped reference ({', '.join(available_references())}) "
                         "nor a readable file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"reference file {source}: cannot be read ({exc.__class__.__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list) or "citation" not in data:
        raise ValueError(f"reference file {source}: needs `name`, `citation` and a list of `runs` "
                         "(the format of normbench/reference/bln2022.yaml)")
    data.setdefault("name", path.stem)
    return data


def declared_reference(suite_yaml: str | None) -> tuple[ReferenceConfig | None, dict[str, Any] | None, str]:
    """The `reference:` block of a stored suite, its data, and a note ('' when fine or absent).

    A block that can no longer be read (a file moved since the run) gives ``(None, None, reason)``:
    the report says so instead of failing.
    """
    try:
        raw = yaml.safe_load(suite_yaml or "")
    except yaml.YAMLError:
        return None, None, ""
    block = raw.get("reference") if isinstance(raw, dict) else None
    if block is None:
        return None, None, ""
    try:
        config = ReferenceConfig.model_validate(block)
        return config, read_reference(config.source), ""
    except (ValidationError, ValueError) as exc:
        return None, None, f"the suite's reference block cannot be used: {exc}"
