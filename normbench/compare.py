"""`normbench compare`: match the cells of two result sets and decide whether NEW regressed.

A cell is everything that defines a run except its seed (model, dataset, norm label, batch size,
device, options, optimizer, budget, kind). The analysis is the one BASE's suite declared (its
``analysis:`` block: test, correction, diverged_as, power; defaults when absent), with alpha from
``--fail-on alpha``. Three metrics, each one family corrected together (``normbench.family``):

* accuracy (percent, completed runs; diverged runs as ``diverged_as`` says - by default excluded
  and gated by the divergence metric instead): paired by seed where both sets share at least two
  seeds (same seed = same initial weights and data order), by the declared paired test, one-sided
  (new below base); otherwise Welch's t-test, one-sided. Plus one pooled row: each seed's mean
  difference over the paired cells (one value per seed - cells share seeds, so pooling every
  (cell, seed) difference would count a seed once per cell). A row fails when its drop is
  significant *and* larger than ``accuracy_drop``. Every metric states the smallest drop it could
  detect at its seeds (declared power, the family's per-comparison level);
  ``require_power`` fails the comparison when one cell's detectable drop exceeds the threshold.
* divergence: Fisher's exact test that NEW diverges more often than BASE, per cell where a run
  diverged; fails when significant.
* speed: ratio of median training samples/s (new / base) with a bootstrap interval; Welch's t on
  log samples/s, declared, no pre-test (runs are independent timings, never paired); throughput
  measurements (``ResultFrames.throughput``) the same way from their raw timing samples. Fails
  when significant and beyond ``slowdown``, never across different machines.
* native tax (only with ``--fail-on native_tax=F``): NEW's layers against torch's own modules,
  timed in alternating blocks of one process (``normbench.compare_native``); fails when a layer is
  significantly more than ``1 + F`` times slower.

Two result sets that share no cell compare nothing: :attr:`CompareResult.nothing_compared`, which
the CLI turns into exit code 2 rather than a pass.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from normbench import analysis, stats
from normbench.analysis_config import AnalysisConfig, declared_analysis
from normbench.compare_accuracy import (
    accuracy_row,
    cell_label,
    divergence_row,
    judge_accuracy,
    judge_divergence,
    pooled_row,
)
from normbench.compare_native import judge_native_tax, native_tax_rows
from normbench.family import correct_rows
from normbench.spec import COMPLETED
from normbench.store import load_frames

CELL_COLUMNS = ("kind", "model", "model_label", "dataset", "norm", "norm_label", "batch_size", "device",
                "model_options", "dataset_options", "optimizer", "lr", "lr_scaling", "lr_schedule", "momentum", "weight_decay",
                "steps", "epochs", "samples")
# What identifies a throughput measurement across two result sets (its spec id also hashes the suite).
SPEC_COLUMNS = ("subject", "name", "label", "norm_label", "shape", "batch_size", "dtype", "memory_format", "mode",
                "operation", "variant", "compile", "device", "threads")
# native_tax (normbench / torch's own module, NEW alone; compare_native.py) is gated only when given.
DEFAULT_FAIL_ON: dict[str, float | None] = {"accuracy_drop": analysis.RELEVANT_EFFECT, "slowdown": 0.05, "alpha": analysis.ALPHA,
                   "native_tax": None}
FORMATS = ("text", "md", "json")
# Environment entries (normbench.env.capture_environment) that say which machine timed the runs.
SPEED_ENVIRONMENT = ("cpu", "cpu_count", "torch_threads", "gpus")


@dataclass
class CompareResult:
    """Everything `normbench compare` reports; ``failed`` decides the exit code (1 when True)."""

    base: str
    new: str
    fail_on: dict[str, float]
    accuracy: list[dict[str, Any]]
    throughput: list[dict[str, Any]]
    only_in_base: list[dict[str, Any]]
    only_in_new: list[dict[str, Any]]
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    divergence: list[dict[str, Any]] = field(default_factory=list)
    power: dict[str, Any] = field(default_factory=dict)
    analysis: dict[str, Any] = field(default_factory=dict)
    native_tax: list[dict[str, Any]] = field(default_factory=list)  # only with --fail-on native_tax=F

    @property
    def failed(self) -> bool:
        """True when some change is significant and beyond its threshold (or power was required and lacking)."""
        return bool(self.failures)

    @property
    def nothing_compared(self) -> bool:
        """True when the two sets share no cell with a result: no evidence either way, not a pass."""
        return not (self.accuracy or self.divergence or self.throughput)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able dict of every number (NaN kept; the renderer writes null)."""
        return {
            "base": self.base, "new": self.new, "fail_on": dict(self.fail_on), "failed": self.failed,
            "nothing_compared": self.nothing_compared, "failures": list(self.failures), "notes": list(self.notes),
            "analysis": self.analysis, "power": self.power, "accuracy": self.accuracy, "divergence": self.divergence,
            "throughput": self.throughput, "native_tax": self.native_tax, "only_in_base": self.only_in_base,
            "only_in_new": self.only_in_new,
        }

    def render(self, fmt: str = "text") -> str:
        """The result as ``text``, ``md`` (GitHub step summary) or ``json``."""
        from normbench.report.comparison import render_comparison

        return render_comparison(self.to_dict(), fmt)


def parse_fail_on(items: list[str] | None) -> dict[str, float]:
    """``["accuracy_drop=2", "slowdown=0.1"]`` -> a full thresholds dict; raises ValueError naming
    the allowed keys on anything else (what ``--fail-on`` passes through)."""
    thresholds = dict(DEFAULT_FAIL_ON)
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in DEFAULT_FAIL_ON:
            raise ValueError(f"--fail-on {item!r}: expected KEY=VALUE with KEY one of {', '.join(DEFAULT_FAIL_ON)}")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"--fail-on {item!r}: {value!r} is not a number") from None
        if not math.isfinite(number) or number < 0 or (key == "alpha" and not 0 < number < 1):
            raise ValueError(f"--fail-on {item!r}: must be a non-negative number (alpha in (0, 1))")
        thresholds[key] = number
    return thresholds


def compare(base_dir: str | Path, new_dir: str | Path, *, fail_on: dict[str, float] | None = None,
            all_runs: bool = False, rng_seed: int = 0, require_power: bool = False) -> CompareResult:
    """Compare the stores in ``base_dir`` and ``new_dir`` (each holding ``results.sqlite``).

    ``fail_on`` overrides :data:`DEFAULT_FAIL_ON` keys: ``accuracy_drop`` (points),
    ``slowdown`` (fraction: 0.05 = 5 % more time per sample), ``alpha``, ``native_tax`` (fraction
    over torch's own module; not gated unless given). The analysis is the one
    BASE's suite declares. ``require_power``: fail when some paired cell could not detect a drop of
    ``accuracy_drop``. Raises ``normbench.store.StoreError`` when a directory holds no readable store.
    """
    unknown = set(fail_on or {}) - set(DEFAULT_FAIL_ON)
    if unknown:
        raise ValueError(f"unknown fail_on keys {sorted(unknown)}; allowed: {', '.join(DEFAULT_FAIL_ON)}")
    thresholds = {**DEFAULT_FAIL_ON, **(fail_on or {})}
    base_frames = load_frames(base_dir, all_runs=all_runs)
    new_frames = load_frames(new_dir, all_runs=all_runs)
    declared, source = declared_analysis(base_frames.suite_yaml)
    differs = machine_difference(base_frames.environment, new_frames.environment)
    result = compare_cells(_cells(base_frames.runs), _cells(new_frames.runs), thresholds, base_name=str(base_dir),
                           new_name=str(new_dir), rng_seed=rng_seed, declared=declared, require_power=require_power,
                           measurements=(_measurements(base_frames), _measurements(new_frames)),
                           speed_comparable=not differs, machine_note=differs)
    result.analysis["source"] = source
    if thresholds["native_tax"] is not None:
        result.native_tax = native_tax_rows(new_frames, lambda record: _spec_label(_identity(record)))
        result.failures += judge_native_tax(result.native_tax, thresholds["native_tax"], declared, thresholds["alpha"])
    return result


def machine_difference(base: dict[str, Any], new: dict[str, Any]) -> str:
    """What differs between the machines of two result sets, as far as speed is concerned ('' = same).

    A baseline committed from a laptop and a CI runner differ in CPU and threads; their timings
    say nothing about the code, so speed changes between them are shown but never fail.
    """
    changed = [f"{key}: {base.get(key)!r} -> {new.get(key)!r}" for key in SPEED_ENVIRONMENT
               if base.get(key) != new.get(key)]
    return "; ".join(changed)


def compare_cells(base: dict[str, pd.DataFrame], new: dict[str, pd.DataFrame], thresholds: dict[str, float], *,
                  base_name: str, new_name: str, rng_seed: int, declared: AnalysisConfig | None = None,
                  measurements: tuple[dict[str, dict], dict[str, dict]] = ({}, {}), speed_comparable: bool = True,
                  machine_note: str = "", require_power: bool = False) -> CompareResult:
    """Compare training cells grouped by :func:`_cells` (keys are canonical cell JSON) and, when
    given, throughput measurements grouped by :func:`_measurements`, under the ``declared`` analysis
    (defaults when None)."""
    declared = declared or AnalysisConfig()
    alpha = thresholds["alpha"]
    matched = sorted(set(base) & set(new))
    accuracy = [row for key in matched
                if (row := accuracy_row(key, base[key], new[key], declared, _rng(rng_seed, key))) is not None]
    pooled = pooled_row(accuracy, declared, _rng(rng_seed, "pooled"))
    if pooled is not None:
        accuracy.append(pooled)
    divergence = [row for key in matched if (row := divergence_row(key, base[key], new[key])) is not None]
    throughput = [row for key in matched
                  if (row := _throughput_row(key, base[key], new[key], _rng(rng_seed, key))) is not None]
    base_specs, new_specs = measurements
    for key in sorted(set(base_specs) & set(new_specs)):
        throughput.append(_measurement_row(key, base_specs[key], new_specs[key], _rng(rng_seed, key)))

    failures, power = judge_accuracy(accuracy, thresholds, declared, require_power=require_power)
    failures += judge_divergence(divergence, declared, alpha)
    failures += _judge_speed(throughput, thresholds, declared, speed_comparable)
    notes = []
    if not speed_comparable and throughput:
        notes.append(f"speed is not compared across machines ({machine_note}): speed changes are shown, never failed")
    if accuracy:
        notes.append(power["text"])
    if not (accuracy or divergence or throughput):
        notes.append("nothing compared: the two result sets share no cell with results (a changed setting gives "
                     "every cell a new identity)")
    return CompareResult(
        base=base_name, new=new_name, fail_on=thresholds, accuracy=accuracy, throughput=throughput,
        only_in_base=_unmatched(set(base) - set(new), set(base_specs) - set(new_specs)),
        only_in_new=_unmatched(set(new) - set(base), set(new_specs) - set(base_specs)),
        failures=failures, notes=notes, divergence=divergence, power=power,
        analysis={**declared.model_dump(), "alpha": alpha},
    )


def _rng(rng_seed: int, key: str) -> np.random.Generator:
    return analysis.seeded_generator(rng_seed, key)


def _judge_speed(rows: list[dict[str, Any]], thresholds: dict[str, float], declared: AnalysisConfig,
                 comparable: bool) -> list[str]:
    """Correct the speed family; a row fails when significant, beyond ``slowdown`` and timed on the same machine."""
    alpha = thresholds["alpha"]
    correct_rows("speed", "regression", rows, declared.correction, alpha)
    failures = []
    for row in rows:
        row["beyond_threshold"] = bool(row["slowdown"] > thresholds["slowdown"])
        row["fails"] = row["significant"] and row["beyond_threshold"] and comparable
        if row["fails"]:
            failures.append(f"throughput {row['label']}: {100 * row['slowdown']:+.1f} % time per sample "
                            f"(ratio {row['ratio']:.3f}, 95 % CI [{row['ratio_low']:.3f}, {row['ratio_high']:.3f}], "
                            f"p_adj {analysis.format_p(row['p_adjusted'])})")
    return failures


def _unmatched(cells: set[str], specs: set[str]) -> list[dict[str, Any]]:
    out = [{"kind": json.loads(k)["kind"], "label": cell_label(json.loads(k)), "cell": json.loads(k)} for k in sorted(cells)]
    out += [{"kind": "throughput", "label": _spec_label(json.loads(k)), "cell": json.loads(k)} for k in sorted(specs)]
    return out


def _spec_label(cell: dict[str, Any]) -> str:
    return " ".join(str(cell[c]) for c in ("subject", "label", "norm_label", "shape", "dtype", "mode", "operation",
                                           "variant", "device") if cell.get(c) not in (None, ""))


def _cells(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Runs grouped by cell; the key is the canonical JSON of the cell's settings."""
    if runs.empty:
        return {}
    keys = [json.dumps({c: analysis.plain_value(v) for c, v in zip(CELL_COLUMNS, row)}, sort_keys=True)
            for row in runs[list(CELL_COLUMNS)].itertuples(index=False)]
    return {key: group.drop(columns="_cell") for key, group in runs.assign(_cell=keys).groupby("_cell", sort=True)}


def _speeds(runs: pd.DataFrame) -> np.ndarray:
    speed = analysis.training_speeds(runs).to_numpy()
    return speed[speed > 0]  # compared on a log scale


def _throughput_row(key: str, base: pd.DataFrame, new: pd.DataFrame, rng: np.random.Generator) -> dict[str, Any] | None:
    before, after = _speeds(base), _speeds(new)
    if before.size == 0 or after.size == 0:
        return None
    cell = json.loads(key)
    ratio, low, high = stats.median_ratio(after, before, rng)
    result = stats.unpaired_comparison(np.log(after), np.log(before), test="welch")
    return {
        "cell": cell, "label": cell_label(cell), "n_base": int(before.size), "n_new": int(after.size),
        "base_median": float(np.median(before)), "new_median": float(np.median(after)),
        "ratio": ratio, "ratio_low": low, "ratio_high": high,
        # Slowdown in time per sample: samples/s falling to 1/1.05 of before is a 5 % slowdown.
        "slowdown": 1.0 / ratio - 1.0, "test": f"{result.test} on log samples/s", "statistic": result.statistic,
        "p_value": result.p_value, "effect_size": result.effect_size, "effect_name": result.effect_name,
        "n": result.n_a + result.n_b,
    }


def _measurements(frames: Any) -> dict[str, dict[str, Any]]:
    """Completed throughput measurements by identity: their median and raw samples (seconds per call)."""
    table, samples = frames.throughput, frames.throughput_samples
    if len(table) == 0:
        return {}
    by_spec: dict[str, np.ndarray] = {}
    if len(samples):
        own = samples[samples["series"] == "subject"]
        by_spec = {str(k): pd.to_numeric(g["time_s"], errors="coerce").dropna().to_numpy()
                   for k, g in own.groupby("spec_id")}
    out = {}
    for record in table[table["outcome"] == COMPLETED].to_dict("records"):
        out[json.dumps(_identity(record), sort_keys=True)] = {"median_s": analysis.plain_value(record.get("median_s")),
                                                      "samples": by_spec.get(str(record["spec_id"]), np.array([]))}
    return out


def _identity(record: dict[str, Any]) -> dict[str, Any]:
    """What names a throughput measurement across result sets (SPEC_COLUMNS of its row)."""
    return {c: analysis.plain_value(record.get(c)) for c in SPEC_COLUMNS}


def _measurement_row(key: str, base: dict[str, Any], new: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """One throughput measurement in both sets: speed ratio (base time / new time) from raw samples."""
    cell = json.loads(key)
    row: dict[str, Any] = {"cell": {"kind": "throughput", **cell}, "label": _spec_label(cell),
                           "n_base": int(base["samples"].size), "n_new": int(new["samples"].size)}
    before, after = base["samples"], new["samples"]
    if before.size >= 2 and after.size >= 2 and np.all(before > 0) and np.all(after > 0):
        # Speed is 1/time: the ratio of median speeds is median(base time) / median(new time).
        time_ratio, low, high = stats.median_ratio(after, before, rng)
        result = stats.unpaired_comparison(np.log(after), np.log(before), test="welch")
        row.update(ratio=1 / time_ratio, ratio_low=1 / high, ratio_high=1 / low, test=f"{result.test} on log time",
                   statistic=result.statistic, p_value=result.p_value, effect_size=-result.effect_size,
                   effect_name=result.effect_name, n=result.n_a + result.n_b)
    else:
        medians = (base["median_s"], new["median_s"])
        ratio = medians[0] / medians[1] if all(m and m > 0 for m in medians) else math.nan
        row.update(ratio=ratio, ratio_low=math.nan, ratio_high=math.nan, test="none (no raw samples)",
                   statistic=math.nan, p_value=math.nan, effect_size=math.nan, effect_name="none", n=0)
    row.update(base_median=1 / base["median_s"] if base["median_s"] else math.nan,
               new_median=1 / new["median_s"] if new["median_s"] else math.nan,
               slowdown=1 / row["ratio"] - 1 if row["ratio"] and math.isfinite(row["ratio"]) else math.nan)
    return row
