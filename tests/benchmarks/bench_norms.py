"""Speed of normbench's norm layers against torch.nn.BatchNorm, measured in one process.

Run: ``python tests/benchmarks/bench_norms.py [--threads N] [--rounds R] [--strict]``

Targets (issue 3, "Fast"), CPU, float32, train mode, forward + backward:

* BLN on (32, 64, 32, 32): at most 1.5 x ``torch.nn.BatchNorm2d``;
* masked BN on (32, 64, 256) with half of the positions masked: at most 2 x unmasked BN.

Method: ``torch.utils.benchmark.Timer`` for each statement; the subject and its baseline are
measured alternately, ``R`` rounds of about 0.1 s each, and a ratio is taken per round, so drifts
in machine load hit both sides of every ratio. Reported: median time per call, the median ratio
and its interquartile range over rounds. Other processes on the machine inflate the spread; the
median ratio is the headline. Not collected by pytest (the name does not start with ``test_``).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys

import torch
import torch.utils.benchmark as benchmark

from normbench.norms import available, create_norm

TARGETS = {"bln_vs_bn2d": 1.5, "masked_bn_vs_bn": 2.0}


def naive_bln(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """BLN written as a plain composition of torch ops (the ~8x baseline the issue mentions)."""
    m, c = x.shape[0], x.shape[1]
    xb = (x - x.mean(0, keepdim=True)) / torch.sqrt(x.var(0, unbiased=False, keepdim=True) + eps)
    xf = (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, unbiased=False, keepdim=True) + eps)
    z = ((1 / m - 1e-4) * xf + (1 - 1 / m - 1e-4) * xb) / c**0.5
    return z * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)


def fwd_bwd(module, x, grad, mask=None):
    """One training step of the layer alone: forward, then backward of a fixed upstream gradient."""
    x.grad = None
    out = module(x) if mask is None else module(x, mask)
    out.backward(grad)


def calibrate(timer: benchmark.Timer, seconds: float) -> int:
    """Calls per measurement so that one measurement lasts about ``seconds``."""
    once = timer.timeit(3).median
    return max(1, int(seconds / max(once, 1e-6)))


def compare(subject: str, baseline: str, env: dict, rounds: int, seconds: float = 0.1) -> dict:
    """Alternate subject and baseline ``rounds`` times; per-round ratios and median times."""
    t_sub = benchmark.Timer(stmt=subject, globals=env)
    t_base = benchmark.Timer(stmt=baseline, globals=env)
    t_sub.timeit(5), t_base.timeit(5)  # warm-up: allocator, thread pool, caches
    k_sub, k_base = calibrate(t_sub, seconds), calibrate(t_base, seconds)
    subs, bases = [], []
    for _ in range(rounds):
        subs.append(t_sub.timeit(k_sub).median)
        bases.append(t_base.timeit(k_base).median)
    ratios = sorted(s / b for s, b in zip(subs, bases))
    q = statistics.quantiles(ratios, n=4) if len(ratios) >= 4 else [ratios[0], 0, ratios[-1]]
    return {
        "subject_ms": statistics.median(subs) * 1e3,
        "baseline_ms": statistics.median(bases) * 1e3,
        "ratio": statistics.median(ratios),
        "ratio_q1": q[0],
        "ratio_q3": q[2],
    }


def bln_case(rounds: int) -> dict:
    """BLN vs torch.nn.BatchNorm2d, (32, 64, 32, 32), forward + backward (and forward alone)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(32, 64, 32, 32, generator=gen).requires_grad_(True)
    grad = torch.randn(32, 64, 32, 32, generator=gen)
    env = {
        "fwd_bwd": fwd_bwd, "x": x, "grad": grad, "naive_bln": naive_bln,
        "bln": create_norm("batch_layer", 64).train(), "bn": torch.nn.BatchNorm2d(64).train(),
        "gamma": torch.ones(64, requires_grad=True), "beta": torch.zeros(64, requires_grad=True),
    }
    out = {"train": compare("fwd_bwd(bln, x, grad)", "fwd_bwd(bn, x, grad)", env, rounds)}
    with torch.no_grad():
        out["forward"] = compare("bln(x)", "bn(x)", env, max(3, rounds // 2))
        out["naive_forward"] = compare("naive_bln(x, gamma, beta)", "bn(x)", env, max(3, rounds // 3))
    return out


def masked_bn_case(rounds: int) -> dict:
    """Masked BN (half the positions padding) vs unmasked BN on (32, 64, 256), forward + backward."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(32, 64, 256, generator=gen).requires_grad_(True)
    grad = torch.randn(32, 64, 256, generator=gen)
    # exactly half of each sample's positions are valid, in random places
    order = torch.rand(32, 256, generator=gen).argsort(dim=1)
    mask = order < 128
    env = {
        "fwd_bwd": fwd_bwd, "x": x, "grad": grad, "mask": mask,
        "bn": create_norm("batch", 64).train(), "torch_bn": torch.nn.BatchNorm1d(64).train(),
    }
    return {
        "train": compare("fwd_bwd(bn, x, grad, mask)", "fwd_bwd(bn, x, grad)", env, rounds),
        "unmasked_vs_torch": compare("fwd_bwd(bn, x, grad)", "fwd_bwd(torch_bn, x, grad)", env, max(3, rounds // 3)),
    }


def other_norms(rounds: int) -> dict:
    """Every registry norm vs torch.nn.BatchNorm2d on (32, 64, 32, 32), forward + backward."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(32, 64, 32, 32, generator=gen).requires_grad_(True)
    grad = torch.randn(32, 64, 32, 32, generator=gen)
    env = {"fwd_bwd": fwd_bwd, "x": x, "grad": grad, "bn": torch.nn.BatchNorm2d(64).train()}
    results = {}
    for name in available():
        options = {"num_groups": 32} if name == "group" else {}
        env["layer"] = create_norm(name, 64, **options).train()
        results[name] = compare("fwd_bwd(layer, x, grad)", "fwd_bwd(bn, x, grad)", env, rounds)
    return results


def describe() -> str:
    """Machine and library facts printed with the numbers."""
    return (
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, python {platform.python_version()}, "
        f"{platform.processor() or platform.machine()}"
    )


def main(argv: list[str] | None = None) -> int:
    """Run every case, print a table, return 1 under ``--strict`` when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--rounds", type=int, default=21, help="alternating measurement rounds per ratio")
    parser.add_argument("--all", action="store_true", help="also time every registry norm against BN")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(describe())

    rows = []
    bln = bln_case(args.rounds)
    rows.append(("bln_vs_bn2d", "BLN / BatchNorm2d, (32,64,32,32) fwd+bwd", bln["train"]))
    rows.append(("", "BLN / BatchNorm2d, forward only", bln["forward"]))
    rows.append(("", "naive BLN (torch ops) / BatchNorm2d, forward only", bln["naive_forward"]))
    masked = masked_bn_case(args.rounds)
    rows.append(("masked_bn_vs_bn", "masked BN (50% padding) / BN, (32,64,256) fwd+bwd", masked["train"]))
    rows.append(("", "normbench BN / torch BatchNorm1d, unmasked fwd+bwd", masked["unmasked_vs_torch"]))
    if args.all:
        for name, res in other_norms(max(5, args.rounds // 3)).items():
            rows.append(("", f"{name} / BatchNorm2d, (32,64,32,32) fwd+bwd", res))

    missed = []
    print(f"{'case':58s} {'subject ms':>10s} {'base ms':>8s} {'ratio':>6s} {'IQR':>13s}  target")
    for key, label, r in rows:
        target = TARGETS.get(key)
        verdict = ""
        if target is not None:
            ok = r["ratio"] <= target
            verdict = f"<= {target:g}  {'met' if ok else 'MISSED'}"
            if not ok:
                missed.append(key)
        iqr = f"[{r['ratio_q1']:.2f}, {r['ratio_q3']:.2f}]"
        print(f"{label:58s} {r['subject_ms']:10.3f} {r['baseline_ms']:8.3f} {r['ratio']:6.2f} {iqr:>13s}  {verdict}")
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
