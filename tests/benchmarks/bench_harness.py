"""Harness overhead of training suites: normbench's training step vs a hand-written torch.nn loop.

Run: ``python tests/benchmarks/bench_harness.py [--rounds R] [--steps S] [--threads N] [--dataset blobs|digits]
[--strict]``

The Ioffe & Szegedy MLP (``mlp`` with ``preset: ioffe2015``: 3 x 100 sigmoid units, BN before each
activation) at batch 60, SGD, on a 784-feature synthetic tensor (``blobs`` with ``n_features: 784``;
``--dataset digits`` uses the 64-pixel digits instead). Each round trains S steps through
``normbench.train.run_training`` (its reported ``step_time_median_s``), S steps of a hand-written
loop on the same network built from ``torch.nn`` modules alone (``Linear``, ``BatchNorm1d``,
``Sigmoid``; normbench's weights copied in), and S steps of the same bare loop on normbench's own
model, with the same data, mini-batch order and optimizer, in this process, rotating which goes
first. The loops time exactly the region normbench times (forward, loss, zero_grad, backward,
optimizer step); drawing the mini-batch is outside all three. Reported: the median per-step time of
each and the median of the per-round ratios:

* normbench / torch.nn loop -- what a user pays for training with normbench instead of writing the
  loop with torch's modules (harness and layers together). Target (issue 15): at most 1.05.
* normbench / bare loop on normbench's model -- the harness alone (the layers are the same).

One torch thread by default, as normbench's local and serial executors run each training run;
every label names the thread count. Probes are off, as in a default suite, so this also checks
that disabled probes cost nothing. Not collected by pytest (the file name does not start with
``test_``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from normbench.data import load_dataset
from normbench.spec import RunSpec, freeze_options
from normbench.train import build_model, build_optimizer, run_training

BATCH = 60


def make_spec(dataset: str, steps: int) -> RunSpec:
    options = {"n_features": 784, "n_samples": 6000} if dataset == "blobs" else {}
    return RunSpec(
        suite="harness", model="mlp", dataset=dataset, norm="batch", norm_label="batch", batch_size=BATCH,
        seed=0, device="cpu", steps=steps, epochs=None, optimizer="sgd", lr=0.1, momentum=0.0, weight_decay=0.0,
        eval_every=steps, model_options=freeze_options({"preset": "ioffe2015"}),
        dataset_options=freeze_options(options),
    )


def native_model(model: torch.nn.Module) -> torch.nn.Sequential:
    """The same MLP from torch.nn modules alone, with ``model``'s weights and BN settings."""
    layers: list[torch.nn.Module] = [torch.nn.Flatten()]
    for block in model.blocks:
        linear, norm = block.linear, block.norm_act.norm
        twin_linear = torch.nn.Linear(linear.in_features, linear.out_features, bias=linear.bias is not None)
        bn = torch.nn.BatchNorm1d(linear.out_features, eps=norm.eps, momentum=norm.momentum)
        twin_linear.load_state_dict(linear.state_dict())
        bn.load_state_dict(norm.state_dict())
        layers += [twin_linear, bn, torch.nn.Sigmoid()]
    head = torch.nn.Linear(model.head.in_features, model.head.out_features)
    head.load_state_dict(model.head.state_dict())
    return torch.nn.Sequential(*layers, head)


def bare_loop(spec: RunSpec, data, *, native: bool) -> float:
    """Median seconds per step of a plain PyTorch training loop on the spec's data: normbench's model
    (``native=False``) or its torch.nn twin (``native=True``)."""
    model = build_model(spec, data)
    if native:
        model = native_model(model)
    optimizer = build_optimizer(spec, model.parameters())
    generator = torch.Generator().manual_seed(spec.seed)
    x, y = data.x_train, data.y_train
    per_epoch = len(x) // spec.batch_size
    perm = torch.randperm(len(x), generator=generator)
    model.train()
    times = []
    for step in range(spec.steps):
        if step % per_epoch == 0:
            perm = torch.randperm(len(x), generator=generator)
        idx = perm[(step % per_epoch) * spec.batch_size:(step % per_epoch + 1) * spec.batch_size]
        xb, yb = x[idx], y[idx]
        start = time.perf_counter()
        loss = F.cross_entropy(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Many short rounds: this VM's speed drifts by 10-20 % over seconds, so each normbench run is
    # paired with loops right next to it in time and the median of the pair ratios is taken.
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dataset", choices=("blobs", "digits"), default="blobs")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    spec = make_spec(args.dataset, args.steps)
    data = load_dataset(spec.dataset, **spec.dataset_kwargs)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__} | {args.threads} thread(s) | {spec.dataset} {tuple(data.x_train.shape)} | "
          f"training step of the mlp ioffe2015 + BN (3 x 100 sigmoid), batch {BATCH}, input (60, "
          f"{data.x_train[0].numel()}), {args.steps} steps x {args.rounds} rounds | load average {load:.2f}")
    runners = {
        "normbench": lambda: _normbench_step(spec, data),
        "torch.nn loop": lambda: bare_loop(spec, data, native=True),
        "bare loop on normbench's model": lambda: bare_loop(spec, data, native=False),
    }
    for run in runners.values():
        run()  # warm-up: allocator, thread pool, first-call paths
    times: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for r in range(args.rounds):
        for name in names[r % 3:] + names[:r % 3]:  # rotate who goes first
            times[name].append(runners[name]())
    ours = times["normbench"]
    ok = True
    for name, target in (("torch.nn loop", 1.05), ("bare loop on normbench's model", None)):
        ratios = [a / b for a, b in zip(ours, times[name])]
        ratio = statistics.median(ratios)
        q1, q3 = np.percentile(ratios, [25, 75])
        verdict = ""
        if target is not None:
            ok &= ratio <= target
            verdict = f" -> {'OK' if ratio <= target else 'MISSED'} (target <= {target})"
        print(f"{args.threads} thread(s), training step, batch {BATCH}: normbench {statistics.median(ours) * 1e6:.1f} us "
              f"/ {name} {statistics.median(times[name]) * 1e6:.1f} us = {ratio:.3f} (IQR {q1:.3f}-{q3:.3f}){verdict}")
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average (1 min) at the end: {load_after:.2f}")
    return 0 if ok or not args.strict else 1


def _normbench_step(spec: RunSpec, data) -> float:
    result = run_training(spec, data)
    if result.outcome != "completed":
        raise SystemExit(f"normbench run ended {result.outcome}: {result.error}")
    return result.step_time_median_s


if __name__ == "__main__":
    sys.exit(main())
