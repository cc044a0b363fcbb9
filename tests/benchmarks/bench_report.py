"""Benchmark: `normbench report` on 1,000 stored runs (issue 5 asks for <= 10 s on 2 cores).

Writes 1,008 synthetic runs - 4 model x dataset sections x 6 norms x 7 batch sizes (1-64) x 6 seeds,
21 evaluation points each, BN failing and sometimes diverging at small batches - through the real
``normbench.store.Store``, then times what `normbench report OUT_DIR` does: load the frames, build
the context (every bootstrap, test, ranking, critical-batch-size bootstrap) and render the HTML
with its figures. Also times the command itself in a fresh process (imports included).

    python tests/benchmarks/bench_report.py [--out DIR] [--repeat 3]

A script, not a pytest test: timings on a shared CI machine are not a pass/fail signal.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from normbench.spec import CurvePoint, RunResult, RunSpec, freeze_options
from normbench.store import Store, load_frames, store_path

SECTIONS = (("cnn2d", "digits"), ("mlp", "digits"), ("cnn1d", "mnist1d"), ("mlp", "mnist1d"))
NORMS = (("none", {}), ("batch", {}), ("layer", {}), ("instance", {}), ("group", {"num_groups": 8}),
         ("batch_layer", {}))
BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)
SEEDS = range(6)
EVALS = 21
N_TEST = 360


def _final_accuracy(norm: str, batch_size: int, seed_effect: float, rng: np.random.Generator) -> tuple[str, float]:
    """Plausible final accuracy (fraction) and outcome: BN/BLN degrade and may diverge below batch 8."""
    base = {"none": 0.90, "batch": 0.97, "layer": 0.95, "instance": 0.93, "group": 0.96, "batch_layer": 0.96}[norm]
    if norm in ("batch", "batch_layer") and batch_size < 8:
        base -= 0.25 / batch_size
        if rng.random() < 0.15 / batch_size:
            return "diverged", float("nan")
    accuracy = np.clip(base + seed_effect + rng.normal(0, 0.006), 0, 1)
    return "completed", round(accuracy * N_TEST) / N_TEST


def write_store(out_dir: Path, seed: int = 0) -> int:
    """Write the synthetic suite; returns the number of runs."""
    rng = np.random.default_rng(seed)
    ids = []
    with Store(store_path(out_dir)) as store:
        store.record_environment({"torch": "synthetic", "cpu": "benchmark"}, "2025-01-01T00:00:00")
        for model, dataset in SECTIONS:
            for seed_index in SEEDS:
                seed_effect = rng.normal(0, 0.005)
                for norm, options in NORMS:
                    label = norm if not options else f"{norm}(num_groups={options['num_groups']})"
                    for batch_size in BATCH_SIZES:
                        spec = RunSpec(suite="bench", model=model, dataset=dataset, norm=norm, batch_size=batch_size,
                                       seed=seed_index, device="cpu", steps=None, epochs=5.0, optimizer="sgd",
                                       lr=0.05 * batch_size / 64, momentum=0.9, weight_decay=0.0, eval_every=10,
                                       norm_label=label, norm_options=freeze_options(options))
                        outcome, final = _final_accuracy(norm, batch_size, seed_effect, rng)
                        steps_total = 5 * 1400 // batch_size
                        step_time = 0.0004 + 0.00002 * batch_size * (1.3 if norm == "batch_layer" else 1.0)
                        curve = []
                        for i in range(EVALS if outcome == "completed" else EVALS // 2):
                            step = i * steps_total // (EVALS - 1)
                            progress = 1 - np.exp(-5 * i / (EVALS - 1))
                            accuracy = final * progress if outcome == "completed" else 0.3 * progress
                            curve.append(CurvePoint(step, step * batch_size / 1400, step * batch_size, 2.3 * (1 - progress),
                                                    2.3 * (1 - progress), float(accuracy), step * step_time))
                        store.write_run(RunResult(
                            spec=spec, outcome=outcome, error="loss became nan" if outcome == "diverged" else "",
                            curve=curve, final_test_accuracy=None if outcome != "completed" else final,
                            final_test_loss=0.2, final_train_loss=0.1, step_time_median_s=step_time,
                            steps_done=curve[-1].step, wall_time_s=curve[-1].wall_time_s,
                            started_at="2025-01-01T00:00:00", finished_at="2025-01-01T00:00:01"))
                        ids.append(spec.run_id)
        store.record_suite("bench", "1,008 synthetic runs for the report benchmark", "name: bench\n",
                           "python tests/benchmarks/bench_report.py", ids, "2025-01-01T00:00:00")
    return len(ids)


def time_in_process(out_dir: Path) -> dict[str, float]:
    """Seconds for each stage of `normbench report` in this (already importing) process."""
    from normbench.report import build_context, render

    started = time.perf_counter()
    frames = load_frames(out_dir)
    loaded = time.perf_counter()
    context = build_context(frames)
    built = time.perf_counter()
    html = render(context, "html")
    rendered = time.perf_counter()
    (out_dir / "report.html").write_text(html, encoding="utf-8")
    return {"load": loaded - started, "build": built - loaded, "render": rendered - built,
            "total": time.perf_counter() - started, "runs": len(frames.runs), "bytes": len(html)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="where to write the store (default: a temporary directory)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "bench"
        start = time.perf_counter()
        runs = write_store(out)
        print(f"wrote {runs} runs through the Store in {time.perf_counter() - start:.1f} s ({out})")
        for attempt in range(args.repeat):
            t = time_in_process(out)
            print(f"in process #{attempt + 1}: load {t['load']:.2f} s, build context {t['build']:.2f} s, "
                  f"render HTML {t['render']:.2f} s, total {t['total']:.2f} s ({t['bytes'] / 1e6:.1f} MB)")
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "normbench", "report", str(out), "-o", str(out / "cli.html")],
                       check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        print(f"`normbench report` in a fresh process: {time.perf_counter() - start:.2f} s wall "
              f"(cores: {os.cpu_count()})")


if __name__ == "__main__":
    main()
