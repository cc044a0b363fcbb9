"""The training suite kind: `--set` rules, checks, expansion into RunSpecs, execution by an executor."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from normbench.analysis_config import AnalysisConfig
from normbench.suite.errors import SuiteError
from normbench.suite.expand import expand
from normbench.suite.kind import Execute, RunOptions, SuiteKind
from normbench.suite.load import apply_suite_override
from normbench.suite.schema import BUDGETS, OptimizerConfig, Suite


class TrainingKind(SuiteKind):
    """Suites that train models: each RunSpec is one training run, executed by serial/local/ray executors."""

    name = "training"
    schema = Suite
    title = "suite"
    example_fields = "name, dataset, models, norms"
    override_example = "seeds=5 or --set batch_sizes=[2,64]"
    dotted_override_example = "optimizer.lr=0.1"
    unit = "runs"
    valid_words = "valid"
    progress_verb = "training"
    progress_done = "runs trained"

    def set_field(self, raw: dict[str, Any], key: str, parts: list[str], value: Any) -> None:
        """Top-level fields are replaced; dotted keys reach into `optimizer` and `dataset` only."""
        top = parts[0]
        if len(parts) == 1:
            raw[top] = value
            # A new budget replaces the other one, so `--set steps=100` works on an epochs suite.
            if top in BUDGETS and value is not None:
                for other in BUDGETS:
                    if other != top:
                        raw.pop(other, None)
            return
        if top not in ("optimizer", "dataset", "analysis"):
            raise SuiteError(f"--set {key}: only optimizer.*, dataset.* and analysis.* take dotted keys")
        container = _section(raw, top, key)
        if top == "analysis":
            if len(parts) != 2:
                raise SuiteError(f"--set {key}: use analysis.<field> with one of {', '.join(AnalysisConfig.model_fields)}")
            container[parts[1]] = value
        elif top == "optimizer":
            if len(parts) != 2:
                raise SuiteError(f"--set {key}: use optimizer.<field> with one of {', '.join(OptimizerConfig.model_fields)}")
            container[parts[1]] = value
        elif parts[1] == "name" and len(parts) == 2:
            container["name"] = value
        else:  # dataset.<option> or dataset.options.<option>
            option = parts[2] if parts[1] == "options" and len(parts) == 3 else parts[1]
            container.setdefault("options", {})[option] = value

    def check(self, suite: Suite, *, source: str | Path, options: RunOptions) -> dict[str, str]:
        """Data presence (fetched first with --fetch-data), registry, data and device checks
        (normbench.checks); absent devices are skipped with --skip-unavailable, errors otherwise."""
        from normbench.checks import check_suite
        from normbench.suite_data import prepare_suite_data

        prepare_suite_data(suite, source=source, fetch=options.fetch_data)

        return check_suite(suite, source=source, skip_unavailable=options.skip_unavailable).unavailable_devices

    def expand(self, suite: Suite) -> list:
        return expand(suite)

    def spec_id(self, spec) -> str:
        return spec.run_id

    @contextmanager
    def executing(self, options: RunOptions) -> Iterator[Execute]:
        """Runs train on the named executor, started now: local workers import torch while the
        driver validates the suite. An unknown executor name is a ValueError before anything is written."""
        from normbench.executors import create_executor

        executor = create_executor(options.executor, options.workers, options.address)
        executor.start()
        try:
            yield executor.run
        finally:
            executor.close()

    def environment(self, specs: Iterable) -> dict[str, Any]:
        """The machine and software, plus one `plugin: …` line per plugin the specs use."""
        from normbench.env import capture_environment
        from normbench.plugins.drift import environment_lines

        return {**capture_environment(), **environment_lines(specs)}

    def final_ids(self, store) -> set[str]:
        return store.final_run_ids()

    def resume_notes(self, store, kept: list) -> list[str]:
        """Kept runs made with another version of a plugin than the suite resolves to now."""
        from normbench.plugins.drift import provenance_changes

        if not any(spec.plugins for spec in kept):
            return []
        ids = [spec.run_id for spec in kept]
        marks = ", ".join("?" for _ in ids)
        rows = store.conn.execute(f"SELECT run_id, spec FROM runs WHERE run_id IN ({marks})", ids).fetchall()
        return provenance_changes(dict(rows), kept)

    def write(self, store, result, env_id: int) -> None:
        store.write_run(result)  # the store stamps the environment it recorded last

    def skipped_result(self, spec, reason: str):
        from normbench.env import now_iso
        from normbench.spec import SKIPPED, RunResult

        stamp = now_iso()
        return RunResult(spec=spec, outcome=SKIPPED, error=reason, started_at=stamp, finished_at=stamp)

    def describe(self, result) -> str:
        return f"{_run_label(result.spec)}: {result.outcome}"

    def failure_notice(self, result) -> str | None:
        from normbench.spec import FAILED

        if result.outcome != FAILED:
            return None
        first_line = result.error.splitlines()[0] if result.error else ""
        return f"[red]failed[/] {_run_label(result.spec)}: {first_line}"


def _run_label(spec) -> str:
    """`mlp/batch/b4/s0`: model, norm, batch size and seed of a run."""
    return f"{spec.model_label or spec.model}/{spec.norm_label}/b{spec.batch_size}/s{spec.seed}"


def _section(raw: dict[str, Any], top: str, key: str) -> dict[str, Any]:
    """The mapping under `raw[top]` for a dotted override, made one if absent or a bare name."""
    container = raw.get(top)
    if isinstance(container, list):
        raise SuiteError(f"--set {key}: {top} is a list in this suite; replace it whole, e.g. --set {top}=[...]")
    if isinstance(container, str):
        container = {"name": container}
    if not isinstance(container, dict):
        container = {}
    raw[top] = container
    return container


TRAINING = TrainingKind()


def validate_suite(raw: dict[str, Any], *, source: str | Path = "<suite>") -> Suite:
    """Validate a raw training-suite mapping; field errors become one SuiteError."""
    return TRAINING.validate(raw, source=source)


def apply_override(raw: dict[str, Any], override: str) -> None:
    """Apply one `key=value` override to a raw training suite in place (the value is parsed as YAML)."""
    apply_suite_override(TRAINING, raw, override)
