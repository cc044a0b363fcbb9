"""Group normalization (Wu & He 2018): per sample, over each group of C/G channels and all positions.

``num_groups`` defaults to 32, the paper's default; ``channels_per_group`` is the paper's other
parameterization (Table 3) and is convenient for narrow layers. Either must divide the channel count;
otherwise construction fails with the list of valid values. ``num_groups=1`` is LN over (C, *spatial)
and ``num_groups=C`` is IN. Train and eval behave identically.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from normbench.norms.base import NormModule
from normbench.norms.layout import flatten, mask_weights
from normbench.norms.moments import moment_norm
from normbench.options import check_int, check_number, divisors

DEFAULT_GROUPS = 32


class GroupNorm(NormModule):
    """GN with ``num_groups`` groups (default 32) or ``channels_per_group`` channels per group."""

    norm_name = "group"

    def __init__(
        self,
        num_features: int,
        *,
        num_groups: int | None = None,
        channels_per_group: int | None = None,
        eps: float = 1e-5,
        affine: bool = True,
    ) -> None:
        super().__init__(num_features, affine=affine)
        owner, name, c = self.owner, self.norm_name, self.num_features
        valid = ", ".join(str(d) for d in divisors(c))
        if num_groups is not None and channels_per_group is not None:
            raise ValueError(
                f"norm {name!r}: give num_groups or channels_per_group, not both "
                f"(got num_groups={num_groups!r}, channels_per_group={channels_per_group!r})"
            )
        if channels_per_group is not None:
            per = check_int(owner, "channels_per_group", channels_per_group, 1)
            if c % per != 0:
                raise ValueError(
                    f"norm {name!r}: channels_per_group={per} does not divide {c} channels; "
                    f"allowed channels_per_group for {c} channels: {valid}"
                )
            groups = c // per
        else:
            groups = check_int(owner, "num_groups", DEFAULT_GROUPS if num_groups is None else num_groups, 1)
            if c % groups != 0:
                raise ValueError(
                    f"norm {name!r}: num_groups={groups} does not divide {c} channels; "
                    f"allowed num_groups for {c} channels: {valid}"
                )
        self.num_groups = groups
        self.eps = check_number(owner, "eps", eps, low=0.0, low_open=True)

    def extra_repr(self) -> str:
        """Options as constructed."""
        return f"{self.num_features}, num_groups={self.num_groups}, eps={self.eps:g}, affine={self.affine}"

    def _fast_path(self, x: torch.Tensor):
        """``torch.group_norm`` (the op ``F.group_norm`` calls) when every group holds two or more values."""
        return self._native_groups if x[0].numel() > self.num_groups else None

    def _native_groups(self, x: torch.Tensor) -> torch.Tensor:
        return torch.group_norm(x, self.num_groups, self.weight, self.bias, self.eps, torch.backends.cudnn.enabled)

    def _normalize(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        gamma, beta = self._affine(x.dtype)
        if mask is None and x[0].numel() > self.num_groups:  # group_norm rejects one-value groups
            return F.group_norm(x, self.num_groups, gamma, beta, self.eps)
        n, c, g = x.shape[0], self.num_features, self.num_groups
        shape = (1, g, c // g, 1)
        y, _, _ = moment_norm(
            flatten(x).reshape(n, g, c // g, -1), (2, 3),
            weights=None if mask is None else mask_weights(mask, x.dtype).reshape(n, 1, 1, -1),
            gamma=None if gamma is None else gamma.reshape(shape),
            beta=None if beta is None else beta.reshape(shape),
            eps=self.eps,
        )
        return y.reshape(x.shape)
