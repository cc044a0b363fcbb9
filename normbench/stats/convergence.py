"""Convergence: area under an accuracy curve, time to a target with censoring, and the
Kaplan-Meier product-limit estimator with its median for runs that do not all reach the target."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from normbench.stats.conventions import PlainRecord


def normalized_auc(times: Any, values: Any) -> float:
    """Area under the curve ``values`` over ``times`` (shapes ``(n,)``) divided by the time span.

    Trapezoidal rule; the result is the time-averaged value, in the unit of ``values`` (a run that
    sits at 90 % accuracy throughout scores 90), so runs with different evaluation grids compare.
    One point gives that point's value; NaN for none. ``times`` must increase strictly.
    """
    t = np.asarray(times, dtype=float)
    v = np.asarray(values, dtype=float)
    if t.shape != v.shape or t.ndim != 1:
        raise ValueError(f"times and values must be 1-D of equal length, got {t.shape} and {v.shape}")
    if t.size == 0:
        return math.nan
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(v))):
        raise ValueError("times and values must be finite (a diverged run's points count as 0 accuracy)")
    if t.size == 1:
        return float(v[0])
    if np.any(np.diff(t) <= 0):
        raise ValueError("times must increase strictly")
    return float(np.trapezoid(v, t) / (t[-1] - t[0]))


def first_reach(times: Any, values: Any, target: float) -> tuple[float, bool]:
    """When a curve first reaches ``target``: ``(time, True)``, or ``(last time, False)`` if never.

    The second case is a censored observation - the run was followed until its last evaluation
    without reaching the target - not a missing one. Values are only known at evaluation points,
    so the time is the first evaluation at or above the target (an upper bound of the crossing).
    NaN values (a diverged run after divergence) never reach the target.
    """
    t = np.asarray(times, dtype=float)
    v = np.asarray(values, dtype=float)
    if t.size == 0:
        return math.nan, False
    hits = np.flatnonzero(np.nan_to_num(v, nan=-np.inf) >= target)
    if hits.size:
        return float(t[hits[0]]), True
    return float(t[-1]), False


@dataclass(frozen=True)
class SurvivalCurve(PlainRecord):
    """Kaplan-Meier estimate: at each distinct event time, the number at risk, the events and the
    estimated probability of not having reached the target yet (``survival``)."""

    times: tuple[float, ...]
    at_risk: tuple[int, ...]
    events: tuple[int, ...]
    survival: tuple[float, ...]
    median: float
    n: int
    n_events: int


def kaplan_meier(times: Any, observed: Any) -> SurvivalCurve:
    """Product-limit estimator (Kaplan & Meier 1958) of time-to-target.

    ``times`` (shape ``(n,)``) is each run's event time, or its censoring time where ``observed``
    (bool, shape ``(n,)``) is False. S(t) = prod over event times t_i <= t of (1 - d_i / n_i), with
    n_i the runs still at risk just before t_i; a run censored at t_i counts as at risk at t_i
    (events precede censorings at tied times, the usual convention). The median is the smallest
    time at which S(t) <= 0.5, NaN when S stays above 0.5 ("not reached").
    """
    t = np.asarray(times, dtype=float)
    e = np.asarray(observed, dtype=bool)
    if t.shape != e.shape or t.ndim != 1:
        raise ValueError(f"times and observed must be 1-D of equal length, got {t.shape} and {e.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError("times must be finite")
    event_times = np.unique(t[e])
    at_risk = [int(np.sum(t >= u)) for u in event_times]
    events = [int(np.sum((t == u) & e)) for u in event_times]
    survival = np.cumprod([1.0 - d / r for d, r in zip(events, at_risk)]) if events else np.array([])
    below = np.flatnonzero(survival <= 0.5 + 1e-12)
    median = float(event_times[below[0]]) if below.size else math.nan
    return SurvivalCurve(
        times=tuple(float(u) for u in event_times), at_risk=tuple(at_risk), events=tuple(events),
        survival=tuple(float(s) for s in survival), median=median, n=int(t.size), n_events=int(e.sum()),
    )
