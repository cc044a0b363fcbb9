"""Speed of normbench's norm layers against torch's own modules, measured in one process.

Run: ``python tests/benchmarks/bench_norms.py [--threads 1 2] [--rounds R] [--strict] [--allocator retain|system]``

Every case is CPU, float32, train mode, forward + backward (``x.grad = None; m(x).backward(dy)``,
the operation docs/throughput.md documents), at each thread count asked for (1 and 2 by
default). Targets (issue 15):

* normbench / native <= 1.05 for ``batch``, ``layer``, ``group`` (4 groups) and ``instance`` at
  (60, 100), (32, 256, 128) and (32, 64, 32, 32), against ``nn.BatchNorm1d/2d``, ``nn.LayerNorm`` /
  ``nn.GroupNorm(1, C)``, ``nn.GroupNorm(4, C)`` and ``nn.InstanceNorm1d/2d`` (IN is undefined on
  (N, C): that case is listed and skipped);
* ``none`` <= 1.1 x ``nn.Identity`` (a bare identity module);
* BLN <= 1.5 x ``nn.BatchNorm2d`` on (32, 64, 32, 32) and x ``nn.BatchNorm1d`` on (60, 100) and
  (32, 256, 128);
* masked BN (half of the positions padding) on (32, 64, 256) <= 2 x unmasked BN.

Method: one ``torch.utils.benchmark.Timer`` per statement, built with ``num_threads`` set to the
thread count of the case; subject and baseline are timed alternately, ``R`` rounds of about 0.1 s
each, and a ratio is taken per round, so drifts in machine load hit both sides of every ratio.
Reported per case: the operation, thread count and shape it measured, median time per call of
each side, the median ratio and its interquartile range over rounds, the target and whether it was
met. The CPU allocator keeps freed blocks (``retain``, as the throughput suite does) unless
``--allocator system``. Not collected by pytest (the name does not start with ``test_``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from dataclasses import dataclass

import torch
import torch.utils.benchmark as benchmark

from normbench.norms import create_norm
from normbench.throughput.measure import set_allocator_policy

SHAPES = [(60, 100), (32, 256, 128), (32, 64, 32, 32)]
NATIVE_TARGET, IDENTITY_TARGET, BLN_TARGET, MASKED_TARGET = 1.05, 1.1, 1.5, 2.0
_BATCH_NORMS = {2: torch.nn.BatchNorm1d, 3: torch.nn.BatchNorm1d, 4: torch.nn.BatchNorm2d}
_INSTANCE_NORMS = {3: torch.nn.InstanceNorm1d, 4: torch.nn.InstanceNorm2d}


@dataclass
class Case:
    """One comparison: subject / baseline, the same operation on the same tensors."""

    label: str
    subject: str  # statement timed for the subject
    baseline: str
    env: dict
    target: float | None


def fwd_bwd(module, x, grad, mask=None):
    """One training step of the layer alone: forward, then backward of a fixed upstream gradient."""
    x.grad = None
    out = module(x) if mask is None else module(x, mask)
    out.backward(grad)


def naive_bln(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """BLN written as a plain composition of torch ops (the ~8x baseline of issue 3)."""
    m, c = x.shape[0], x.shape[1]
    xb = (x - x.mean(0, keepdim=True)) / torch.sqrt(x.var(0, unbiased=False, keepdim=True) + eps)
    xf = (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, unbiased=False, keepdim=True) + eps)
    z = ((1 / m - 1e-4) * xf + (1 - 1 / m - 1e-4) * xb) / c**0.5
    return z * gamma.view(1, -1, *[1] * (x.dim() - 2)) + beta.view(1, -1, *[1] * (x.dim() - 2))


def tensors(shape: tuple[int, ...], seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen).requires_grad_(True)
    return {"x": x, "grad": torch.randn(shape, generator=gen), "fwd_bwd": fwd_bwd}


def shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def native_cases() -> list[Case]:
    """normbench / torch module for BN, LN, GN (4 groups), IN and none, at every shape."""
    cases = []
    for k, shape in enumerate(SHAPES):
        c, rank = shape[1], len(shape)
        pairs = [
            ("batch", create_norm("batch", c), _BATCH_NORMS[rank](c)),
            ("layer", create_norm("layer", c),
             torch.nn.LayerNorm(c) if rank == 2 else torch.nn.GroupNorm(1, c)),
            ("group (4 groups)", create_norm("group", c, num_groups=4), torch.nn.GroupNorm(4, c)),
        ]
        if rank > 2:
            pairs.append(("instance", create_norm("instance", c), _INSTANCE_NORMS[rank](c, affine=True)))
        for name, ours, theirs in pairs:
            env = {**tensors(shape, k), "ours": ours.train(), "theirs": theirs.train()}
            label = f"{name} / torch.nn.{type(theirs).__name__}"
            cases.append(Case(label, "fwd_bwd(ours, x, grad)", "fwd_bwd(theirs, x, grad)", env, NATIVE_TARGET))
    env = {**tensors(SHAPES[0], 9), "ours": create_norm("none", SHAPES[0][1]), "theirs": torch.nn.Identity()}
    cases.append(Case("none / torch.nn.Identity", "fwd_bwd(ours, x, grad)", "fwd_bwd(theirs, x, grad)", env,
                      IDENTITY_TARGET))
    return cases


def bln_cases() -> list[Case]:
    """BLN against torch's BatchNorm on every shape; its forward alone; the naive composition."""
    cases = []
    for k, shape in enumerate(SHAPES):
        c = shape[1]
        bn = _BATCH_NORMS[len(shape)]
        env = {**tensors(shape, 20 + k), "bln": create_norm("batch_layer", c).train(), "bn": bn(c).train()}
        cases.append(Case(f"BLN / torch.nn.{bn.__name__}", "fwd_bwd(bln, x, grad)", "fwd_bwd(bn, x, grad)", env,
                          BLN_TARGET))
    shape = SHAPES[2]
    env = {**tensors(shape, 30), "bln": create_norm("batch_layer", shape[1]).train(),
           "bn": torch.nn.BatchNorm2d(shape[1]).train(), "naive_bln": naive_bln, "torch": torch,
           "gamma": torch.ones(shape[1]), "beta": torch.zeros(shape[1])}
    forward = "with torch.no_grad():\n    {}"
    cases.append(Case("BLN / torch.nn.BatchNorm2d, forward only", forward.format("bln(x)"), forward.format("bn(x)"),
                      env, None))
    cases.append(Case("naive BLN (torch ops) / torch.nn.BatchNorm2d, forward only",
                      forward.format("naive_bln(x, gamma, beta)"), forward.format("bn(x)"), env, None))
    return cases


def masked_case() -> Case:
    """Masked BN (half the positions padding) vs unmasked BN on (32, 64, 256), forward + backward."""
    shape = (32, 64, 256)
    env = tensors(shape, 40)
    gen = torch.Generator().manual_seed(41)
    order = torch.rand(shape[0], shape[2], generator=gen).argsort(dim=1)
    env.update(mask=order < shape[2] // 2, bn=create_norm("batch", shape[1]).train())
    return Case("masked BN (50 % padding) / unmasked BN", "fwd_bwd(bn, x, grad, mask)", "fwd_bwd(bn, x, grad)", env,
                MASKED_TARGET)


def compare(case: Case, threads: int, rounds: int, seconds: float = 0.1) -> dict:
    """Alternate subject and baseline ``rounds`` times at ``threads`` threads; per-round ratios."""
    t_sub = benchmark.Timer(stmt=case.subject, globals=case.env, num_threads=threads)
    t_base = benchmark.Timer(stmt=case.baseline, globals=case.env, num_threads=threads)
    t_sub.timeit(5), t_base.timeit(5)  # warm-up: allocator, thread pool, caches
    k_sub = max(1, int(seconds / max(t_sub.timeit(3).median, 1e-7)))
    k_base = max(1, int(seconds / max(t_base.timeit(3).median, 1e-7)))
    subs, bases = [], []
    for r in range(rounds):
        first, second = (t_sub, t_base) if r % 2 == 0 else (t_base, t_sub)  # alternate who goes first
        a = first.timeit(k_sub if first is t_sub else k_base).median
        b = second.timeit(k_sub if second is t_sub else k_base).median
        sub, base = (a, b) if first is t_sub else (b, a)
        subs.append(sub), bases.append(base)
    ratios = sorted(s / b for s, b in zip(subs, bases))
    q = statistics.quantiles(ratios, n=4) if len(ratios) >= 4 else [ratios[0], 0, ratios[-1]]
    return {"subject_ms": statistics.median(subs) * 1e3, "baseline_ms": statistics.median(bases) * 1e3,
            "ratio": statistics.median(ratios), "ratio_q1": q[0], "ratio_q3": q[2]}


def describe(allocator: str) -> str:
    """Machine and library facts printed with the numbers."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"torch {torch.__version__}, python {platform.python_version()}, {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} CPUs, allocator {allocator}, load average (1 min) {load:.2f}")


def main(argv: list[str] | None = None) -> int:
    """Run every case at every thread count, print a table, return 1 under ``--strict`` on a miss."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch intra-op thread counts")
    parser.add_argument("--rounds", type=int, default=21, help="alternating measurement rounds per ratio")
    parser.add_argument("--only", choices=("native", "bln", "masked"), nargs="+", default=["native", "bln", "masked"])
    parser.add_argument("--allocator", choices=("retain", "system"), default="retain")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    print(describe(set_allocator_policy(args.allocator)))
    print("operation: forward + backward (x.grad = None; m(x).backward(dy)), float32, train mode, unless the case "
          "says forward only")
    cases = (native_cases() if "native" in args.only else []) + (bln_cases() if "bln" in args.only else [])
    cases += [masked_case()] if "masked" in args.only else []
    missed = []
    print(f"{'case':58s} {'threads':>7s} {'shape':>17s} {'subject ms':>10s} {'base ms':>9s} {'ratio':>6s} "
          f"{'IQR':>13s}  target")
    for threads in args.threads:
        for case in cases:
            r = compare(case, threads, args.rounds)
            verdict = ""
            if case.target is not None:
                ok = r["ratio"] <= case.target
                verdict = f"<= {case.target:g}  {'met' if ok else 'MISSED'}"
                if not ok:
                    missed.append(f"{case.label} {threads}t")
            shape = shape_text(tuple(case.env["x"].shape))
            iqr = f"[{r['ratio_q1']:.2f}, {r['ratio_q3']:.2f}]"
            print(f"{case.label:58s} {threads:>7d} {shape:>17s} {r['subject_ms']:10.4f} {r['baseline_ms']:9.4f} "
                  f"{r['ratio']:6.2f} {iqr:>13s}  {verdict}", flush=True)
        if "native" in args.only:
            print(f"{'instance / torch.nn.InstanceNorm1d':58s} {threads:>7d} {shape_text(SHAPES[0]):>17s} "
                  "   skipped: instance norm is undefined on (N, C) input")
    print(f"missed: {', '.join(missed) if missed else 'none'}")
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
