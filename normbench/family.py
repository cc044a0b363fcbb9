"""One declared family of hypotheses, corrected together, and what a comparison may claim afterwards.

A report (or one metric of `normbench compare`) registers every hypothesis whose outcome can
become a sentence - each paired comparison's difference test and its equivalence test (TOST),
each critical-batch-size drop test, each divergence-rate test, each ranking - in one
:class:`Family`. Only when the family is complete are the p-values adjusted together (Holm or
Benjamini-Hochberg, ``normbench.stats.adjust``) and the verdicts drawn, so the size m the Methods
section names is the size actually used. A hypothesis registered twice under the same key (the
same pair of cells tested for the glance and against the reference norm) is counted once.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from normbench import stats
from normbench.analysis import is_significant
from normbench.analysis_config import AnalysisConfig

# Kinds of hypothesis, in the order the Methods section lists them.
KINDS = {
    "difference": "paired difference tests (two-sided)",
    "equivalence": "equivalence tests (TOST within the margin)",
    "drop": "small-batch drop tests (one-sided, drop > margin)",
    "divergence": "divergence-rate tests (Fisher's exact test)",
    "ranking": "Friedman rankings",
    "regression": "regression tests (one-sided, new below base)",
    "native tax": "wrapper-tax tests (one-sided, normbench / torch module above 1 + threshold)",
    "convergence": "training-loss convergence tests (AUC, epochs to threshold; paired, two-sided)",
    "convergence_equivalence": "convergence equivalence tests (TOST within the declared convergence margins)",
}


class Family:
    """Hypotheses registered by key, adjusted together by :meth:`adjust`.

    ``add(key, kind, p, row, field)`` records a hypothesis and asks for its adjusted p-value to be
    written to ``row[field]``; NaN p-values (not testable) are carried but are not part of m.
    """

    def __init__(self, name: str, correction: str, alpha: float) -> None:
        if correction not in stats.CORRECTIONS:
            raise ValueError(f"correction must be one of {', '.join(stats.CORRECTIONS)}, got {correction!r}")
        self.name, self.correction, self.alpha = name, correction, float(alpha)
        self._index: dict[str, int] = {}
        self._p: list[float] = []
        self._kind: list[str] = []
        self._targets: list[list[tuple[dict[str, Any], str]]] = []
        self._adjusted: np.ndarray | None = None

    def add(self, key: str, kind: str, p_value: float, row: dict[str, Any], field: str = "p_adjusted") -> None:
        """Register hypothesis ``key`` of ``kind`` with raw ``p_value``; :meth:`adjust` fills ``row[field]``."""
        if kind not in KINDS:
            raise ValueError(f"unknown hypothesis kind {kind!r}; known: {', '.join(KINDS)}")
        row["family"] = self.name
        if key not in self._index:
            self._index[key] = len(self._p)
            self._p.append(float(p_value) if p_value is not None else math.nan)
            self._kind.append(kind)
            self._targets.append([])
        self._targets[self._index[key]].append((row, field))

    @property
    def size(self) -> int:
        """m: the number of tested hypotheses (finite p-values)."""
        return int(np.sum(np.isfinite(self._p)))

    def counts(self) -> dict[str, int]:
        """Tested hypotheses per kind, in :data:`KINDS` order."""
        tested = Counter(k for k, p in zip(self._kind, self._p) if math.isfinite(p))
        return {kind: tested[kind] for kind in KINDS if tested[kind]}

    def adjust(self) -> None:
        """Adjust every registered p-value together and write the results to the rows."""
        p = np.asarray(self._p, dtype=float)
        self._adjusted = stats.adjust(p, self.correction) if p.size else p
        for adjusted, targets in zip(self._adjusted, self._targets):
            for row, field in targets:
                row[field] = float(adjusted)

    @property
    def per_comparison_alpha(self) -> float:
        """alpha / m: the level the smallest p must clear, what a detectable-effect statement can promise."""
        return stats.per_comparison_alpha(self.alpha, self.size, self.correction)

    @property
    def threshold(self) -> float:
        """The raw-p level at which this family's decisions fall: raw p below it <=> adjusted p below alpha.

        With k rejections of m: Holm's alpha / (m - k) (alpha when all are rejected), BH's
        alpha k / m (alpha / m when none is). Resampling a part of the family at this fixed level
        reproduces the family's decisions on the observed data (the critical batch size's
        replication frequency uses it).
        """
        if self._adjusted is None:
            raise RuntimeError("adjust() the family first")
        tested = np.isfinite(self._adjusted)
        m = int(tested.sum())
        k = int(np.sum(self._adjusted[tested] < self.alpha))
        if m == 0:
            return self.alpha
        if self.correction == "bh":
            return self.alpha * k / m if k else self.alpha / m
        if self.correction == "holm":
            return self.alpha / (m - k) if k < m else self.alpha
        return self.alpha

    def summary(self) -> dict[str, Any]:
        """Plain dict for the context and JSON: name, correction, alpha, size, counts, levels."""
        return {"name": self.name, "correction": self.correction, "alpha": self.alpha, "size": self.size,
                "counts": self.counts(), "per_comparison_alpha": self.per_comparison_alpha}


def register_comparison(family: Family, key: str, row: dict[str, Any]) -> None:
    """Register a :func:`normbench.analysis.comparison_row` as two hypotheses: difference and equivalence."""
    family.add(f"{key}|difference", "difference", row["p_value"], row, "p_adjusted")
    family.add(f"{key}|equivalence", "equivalence", row["equivalence_p"], row, "equivalence_p_adjusted")


def finish_comparison(row: dict[str, Any], family: Family, analysis: AnalysisConfig) -> None:
    """After :meth:`Family.adjust`: the row's verdict and what its seeds could have detected.

    Sets ``direction`` (better / worse / equivalent / inconclusive from the sign of the mean
    difference), ``significant``, ``equivalent``, ``sign_conflict``, ``within_margin``,
    ``verdict_reason``; ``level`` (alpha / m) and ``power``, ``detectable`` (smallest true difference the
    declared test finds with the declared power at that level, in points), ``seeds_for_margin``
    and ``cannot_reach`` (the test's smallest possible p is not below the level).
    """
    verdict = stats.classify_comparison(row["p_adjusted"], row["equivalence_p_adjusted"], row["mean_difference"],
                                        alpha=analysis.alpha, effect_size=row["effect_size"])
    row.update(direction=verdict.direction, significant=verdict.significant, equivalent=verdict.equivalent,
               sign_conflict=verdict.sign_conflict, within_margin=verdict.within_margin, verdict_reason=verdict.reason)
    level = family.per_comparison_alpha
    n, sd = int(row["n"]), float(row["sd_difference"])
    row["level"], row["power"] = level, analysis.power
    row["detectable"] = stats.smallest_detectable_effect(n, sd, alpha=level, power=analysis.power, test=analysis.test)
    row["seeds_for_margin"] = (stats.seeds_for_margin(analysis.margin, sd, alpha=level, power=analysis.power,
                                                      test=analysis.test) if math.isfinite(sd) and sd > 0 else None)
    row["cannot_reach"] = bool(n >= 2 and math.isfinite(row["min_p"]) and row["min_p"] >= level)


def correct_rows(name: str, kind: str, rows: list[dict[str, Any]], correction: str, alpha: float) -> Family:
    """Correct the rows' ``p_value`` as one family (a gate's family: one kind of test) and mark each
    row's ``p_adjusted`` and ``significant``; returns the adjusted family."""
    family = Family(name, correction, alpha)
    for row in rows:
        family.add(row["label"], kind, row["p_value"], row)
    family.adjust()
    for row in rows:
        row["significant"] = is_significant(row["p_adjusted"], alpha)
    return family
