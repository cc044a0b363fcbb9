"""How norms are named and ordered everywhere in a report (tables, legends, verdicts)."""

from __future__ import annotations

NORM_ORDER = ("none", "batch", "layer", "instance", "group", "batch_layer")
NORM_ABBREVIATIONS = {
    "none": "no norm", "batch": "BN", "layer": "LN", "instance": "IN", "group": "GN", "batch_layer": "BLN",
}


def norm_display_name(norm: str, norm_label: str) -> str:
    """Short name readers know (``group(num_groups=8)`` -> ``GN(num_groups=8)``)."""
    abbreviation = NORM_ABBREVIATIONS.get(norm)
    if abbreviation is None:
        return norm_label
    if norm_label == norm:
        return abbreviation
    if norm_label.startswith(norm + "("):
        return abbreviation + norm_label[len(norm):]
    return norm_label


def norm_sort_key(norm: str, norm_label: str) -> tuple[int, str, str]:
    """Canonical order: no norm, BN, LN, IN, GN, BLN, then anything else alphabetically."""
    rank = NORM_ORDER.index(norm) if norm in NORM_ORDER else len(NORM_ORDER)
    return rank, norm, norm_label
