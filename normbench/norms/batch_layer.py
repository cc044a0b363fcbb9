"""Batch Layer Normalization (Ziaee & Cano 2022), faithful by default to the authors' reference code.

Reference: A2Amir/Batch-Layer-Normalization, ``helpers/bln_layer.py`` (Keras, channel-last),
translated to channel-first. With m the training mini-batch size and C the channel count::

    x_b = (x - mu_b) / sqrt(var_b + eps)   over the batch axis N alone, per (channel, position)
    x_f = (x - mu_f) / sqrt(var_f + eps)   over the channel axis C alone, per (sample, position)
    y   = gamma * [(1/m - 1e-4) x_f + (1 - 1/m - 1e-4) x_b] / sqrt(C) + beta      eps = 1e-3

Two options take the formula toward the paper's equations, to attribute differences: ``offset``
(default 1e-4, the reference's constant subtracted from both weights; the paper's equations have
0) and ``divide_by_sqrt_channels`` (default true, the reference's division by sqrt(C); false
removes it). The defaults are the reference code.

Inference follows the reference: the batch statistics are population averages of the training
batches' statistics (the variance scaled by m/(m-1), i.e. the mean of unbiased batch variances),
the feature statistics those of the current input. The reference's four flags select, per
statistic, population (True) or current-input (False) values at inference. m is the size of the
last training mini-batch, remembered so that eval mixes the two terms the same way whatever the
eval batch size. ``pooled=True`` takes the batch statistics over N and all positions (like BN).

Differences from the reference (each forced by a setting or chosen for a stated reason) are in
docs/norms.md, "Batch Layer Normalization in detail": population estimates as running averages
(or an EMA) instead of per-epoch sums; feature population statistics averaged over the samples;
m = 1 defined (x_b = 0); masks (valid entries only); per-position estimates sized by training.
"""

from __future__ import annotations

import math

import torch

from normbench.norms import batch_layer_fused as fused
from normbench.norms import bln_kernel
from normbench.norms.base import NormModule
from normbench.norms.batch_layer_estimates import blend, common_count, masked_moments, or_default, per_position
from normbench.norms.batch_layer_function import BatchLayerNormTrain
from normbench.norms.batch_layer_rows import RowsTraining
from normbench.norms.layout import flatten, mask_weights
from normbench.options import check_bool, check_number

MIX_OFFSET = 1e-4  # the reference's constant in (1/m - 1e-4) and (1 - 1/m - 1e-4)
_LAZY = ("running_batch_mean", "running_batch_var", "batch_mean_count", "batch_var_count",
         "running_feature_mean", "running_feature_var", "feature_count")


def mixing_weights(
    m: int, channels: int, offset: float = MIX_OFFSET, divide_by_sqrt_channels: bool = True
) -> tuple[float, float]:
    """(weight of x_f, weight of x_b) for mini-batch size m: (1/m - offset, 1 - 1/m - offset),
    both divided by sqrt(C) unless ``divide_by_sqrt_channels`` is false."""
    root = math.sqrt(channels) if divide_by_sqrt_channels else 1.0
    return (1.0 / m - offset) / root, (1.0 - 1.0 / m - offset) / root


class BatchLayerNorm(RowsTraining, NormModule):
    """BLN; see the module docstring for the definition, the options and the reference differences."""

    norm_name = "batch_layer"

    def __init__(
        self,
        num_features: int,
        *,
        eps: float = 1e-3,
        affine: bool = True,
        pooled: bool = False,
        batch_moving_mean: bool = True,
        batch_moving_var: bool = True,
        feature_moving_mean: bool = False,
        feature_moving_var: bool = False,
        momentum: float | None = None,
        offset: float = MIX_OFFSET,
        divide_by_sqrt_channels: bool = True,
    ) -> None:
        super().__init__(num_features, affine=affine)
        owner = self.owner
        self.eps = check_number(owner, "eps", eps, low=0.0, low_open=True)
        self.pooled = check_bool(owner, "pooled", pooled)
        self.batch_moving_mean = check_bool(owner, "batch_moving_mean", batch_moving_mean)
        self.batch_moving_var = check_bool(owner, "batch_moving_var", batch_moving_var)
        self.feature_moving_mean = check_bool(owner, "feature_moving_mean", feature_moving_mean)
        self.feature_moving_var = check_bool(owner, "feature_moving_var", feature_moving_var)
        self.momentum = (
            None if momentum is None
            else check_number(owner, "momentum", momentum, low=0.0, high=1.0, low_open=True)
        )
        # offset < 1/2 keeps the batch weight 1 - 1/m - offset non-negative for every m >= 2
        self.offset = check_number(owner, "offset", offset, low=0.0, high=0.5, high_open=True)
        self.divide_by_sqrt_channels = check_bool(owner, "divide_by_sqrt_channels", divide_by_sqrt_channels)
        c = self.num_features
        # Per-position estimates cannot be sized before the first training input: they start as
        # empty placeholders (numel 0) and are materialized, or grown, by training forwards.
        batch_shape, count_shape = ((c,), ()) if self.pooled else ((0,), (0,))
        self.register_buffer("running_batch_mean", torch.zeros(batch_shape))
        self.register_buffer("running_batch_var", torch.zeros(batch_shape))
        self.register_buffer("batch_mean_count", torch.zeros(count_shape))
        self.register_buffer("batch_var_count", torch.zeros(count_shape))
        self.register_buffer("running_feature_mean", torch.zeros(0))
        self.register_buffer("running_feature_var", torch.zeros(0))
        self.register_buffer("feature_count", torch.zeros(0))
        self.register_buffer("last_batch_size", torch.tensor(0, dtype=torch.long))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def extra_repr(self) -> str:
        """Options as constructed."""
        flags = "".join(
            "T" if f else "F"
            for f in (self.batch_moving_mean, self.batch_moving_var,
                      self.feature_moving_mean, self.feature_moving_var)
        )
        return (
            f"{self.num_features}, eps={self.eps:g}, affine={self.affine}, pooled={self.pooled}, "
            f"moving_flags={flags}, momentum={self.momentum}, offset={self.offset:g}, "
            f"divide_by_sqrt_channels={self.divide_by_sqrt_channels}"
        )

    def _mixing_weights(self, m: int) -> tuple[float, float]:
        return mixing_weights(m, self.num_features, self.offset, self.divide_by_sqrt_channels)

    def reset_running_stats(self) -> None:
        """Forget the population estimates (the reference does this at every epoch start)."""
        for name in _LAZY:
            getattr(self, name).zero_()
        self.num_batches_tracked.zero_()
        self._forget_uniform_count()

    def on_epoch_start(self) -> None:
        """The reference (Ziaee & Cano 2022, Keras callback) resets the population statistics at every
        epoch start, so eval uses the latest epoch's average; with an explicit ``momentum`` (an EMA)
        they are kept."""
        if self.momentum is None:
            self.reset_running_stats()

    # -- forward ---------------------------------------------------------------------------------

    def _fast_path(self, x: torch.Tensor):
        """Training on unmasked input: the kernels below, with no per-call checks; one position per
        sample on the CPU: the fused kernel's whole-step call (``_train_rows_fused``) first."""
        if not self.training:
            return None
        if x.numel() == x.shape[0] * self.num_features and fused.usable(x, None) and bln_kernel.kernel() is not None:
            return self._train_rows_fused
        return self._train_unmasked

    def _train_unmasked(self, x: torch.Tensor) -> torch.Tensor:
        device_type = x.device.type
        if torch.is_autocast_enabled(device_type):  # the kernel's matrix products must stay float32
            with torch.autocast(device_type, enabled=False):
                return self._train(x, None)
        return self._train(x, None)

    def _normalize(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if self.training:
            return self._train(x, mask)
        gamma, beta = self._affine(x.dtype)
        c = self.num_features
        g3 = None if gamma is None else gamma.reshape(1, c, 1)
        b3 = None if beta is None else beta.reshape(1, c, 1)
        w3 = None if mask is None else mask_weights(mask, x.dtype)
        return self._inference(flatten(x), w3, g3, b3, x.shape[2:]).reshape(x.shape)

    def _train(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Training forward: batch statistics of this input, population estimates updated. The
        kernel depends on the input alone (one position per sample: the fused rows kernel, or
        torch's BN + LN kernels where it is not built), so equal inputs give bitwise-equal outputs
        whatever the population state."""
        n = x.shape[0]
        wf, wb = self._mixing_weights(n)
        gamma, beta = self.weight, self.bias
        if gamma is not None and gamma.dtype != x.dtype:
            gamma, beta = self._affine(x.dtype)
        # under torch.compile the mirrored count (a Python int) would be a new constant every step
        # and recompile the graph each time: the count buffers (tensors) drive the update there
        uniform = mask is None and n >= 2 and not torch.compiler.is_compiling()
        rate = self._uniform_rate(x) if uniform else None
        if mask is None and x.numel() == n * self.num_features:
            return self._train_rows(x, gamma, beta, rate, wf, wb)
        if rate is not None:
            return self._train_uniform(x, gamma, beta, rate, wf, wb)
        w3 = None if mask is None else mask_weights(mask, x.dtype)
        y, mu_b, var_b, mu_f, var_f = BatchLayerNormTrain.apply(
            flatten(x), w3, gamma, beta, self.pooled, wf, wb, self.eps
        )
        self._update_population(x.shape[2:], w3, mu_b, var_b, mu_f, var_f, n)
        return y.reshape(x.shape)

    # -- training where every population estimate has seen the same number of batches ------------

    def _uniform_rate(self, x: torch.Tensor) -> float | None:
        """The population update weight of this step when every count (batch mean, batch variance,
        feature, at every position) holds one value k and the estimates cover exactly this input's
        positions in its dtype -- the case of unmasked fixed-size training -- else None."""
        counts = self.feature_count
        if counts.shape != x.shape[2:] or self.running_batch_mean.dtype != x.dtype:
            return None
        k = self.__dict__["_uniform_count"]
        if k is None:
            k = self._read_uniform_count()
        if k < 0:
            return None
        if self.momentum is None:
            return 1.0 / (k + 1)
        return self.momentum if k > 0 else 1.0

    def _read_uniform_count(self) -> int:
        """The common value of every count buffer, or -1 when they differ (read once, then mirrored)."""
        k = common_count([self.batch_mean_count, self.batch_var_count, self.feature_count])
        self.__dict__["_uniform_count"] = k
        return k

    def _forget_uniform_count(self) -> None:
        self.__dict__["_uniform_count"] = None

    def _forget_fast_path(self) -> None:
        # buffers replaced (functional_call, load_state_dict, .to()) may hold other counts
        super()._forget_fast_path()
        self._forget_uniform_count()

    def _train_uniform(self, x, gamma, beta, rate: float, wf: float, wb: float) -> torch.Tensor:
        """Several positions, unmasked, every count equal: the general kernel, then one fused
        update of the four estimates (no per-position counts or validity to consult)."""
        n = x.shape[0]
        y, mu_b, var_b, mu_f, var_f = BatchLayerNormTrain.apply(
            flatten(x), None, gamma, beta, self.pooled, wf, wb, self.eps)
        total = n * (mu_f.shape[2] if self.pooled else 1)
        self._uniform_update(rate, n, mu_b, var_b.mul_(total / (total - 1)), mu_f.mean(0), var_f.mean(0))
        return y.reshape(x.shape)

    @torch.no_grad()
    def _uniform_update(self, rate: float, n: int, batch_mean, batch_var, feature_mean, feature_var) -> None:
        """Every count equal: the four estimates move toward this batch's statistics (batch variance
        already unbiased, feature statistics averaged over the samples) in one fused op, and the
        counts advance."""
        estimates = [self.running_batch_mean, self.running_batch_var, self.running_feature_mean,
                     self.running_feature_var]
        targets = [batch_mean, batch_var, feature_mean, feature_var]
        torch._foreach_lerp_(estimates, [t.view_as(e) for t, e in zip(targets, estimates)], rate)
        self._count_uniform_step(n)

    @torch.no_grad()
    def _count_uniform_step(self, n: int) -> None:
        k = self.__dict__["_uniform_count"] + 1
        for count in (self.batch_mean_count, self.batch_var_count, self.feature_count):
            count.fill_(k)  # every position has now seen k batches (fill_ is cheaper than add_)
        self.num_batches_tracked.add_(1)
        self.last_batch_size.fill_(n)
        self.__dict__["_uniform_count"] = k

    def _inference(self, x3, w3, g3, b3, spatial) -> torch.Tensor:
        """Eval: population or current statistics per the four flags, mixed with the training m."""
        n, c, _ = x3.shape
        m = int(self.last_batch_size) or n  # never trained: mix as for the current batch
        wf, wb = self._mixing_weights(m)
        mu_b, var_b = self._population_batch(spatial, x3.dtype)
        if not (self.batch_moving_mean and self.batch_moving_var):
            # like the reference, a current variance is taken around the current mean
            cur_mu, cur_var = masked_moments(x3, w3, (0, 2) if self.pooled else (0,))
            mu_b = mu_b if self.batch_moving_mean else cur_mu
            var_b = var_b if self.batch_moving_var else cur_var
        mu_f, var_f = self._population_feature(spatial, x3.dtype)
        # the reference multiplies the averaged feature variance by m/(m-1) too
        var_f = var_f * (m / (m - 1) if m > 1 else 1.0)
        if not (self.feature_moving_mean and self.feature_moving_var):
            cur_mu, cur_var = masked_moments(x3, None, (1,))
            mu_f = mu_f if self.feature_moving_mean else cur_mu
            var_f = var_f if self.feature_moving_var else cur_var
        z = (x3 - mu_f) * ((var_f + self.eps).rsqrt() * wf)
        z = z + (x3 - mu_b) * ((var_b + self.eps).rsqrt() * wb)
        if g3 is not None:
            z = z * g3
        if b3 is not None:
            z = z + b3
        return z if w3 is None else z * w3

    # -- population estimates --------------------------------------------------------------------

    @torch.no_grad()
    def _update_population(self, spatial, w3, mu_b, var_b, mu_f, var_f, n: int) -> None:
        """Fold one training batch's statistics into the population estimates."""
        if self.__dict__["_uniform_count"] != -1:  # masks and partial regions may make counts differ
            self._forget_uniform_count()  # (once found to differ they are left to this general path)
        self.last_batch_size.fill_(n)
        self.num_batches_tracked.add_(1)
        self._materialize(tuple(spatial))
        c = self.num_features
        p = mu_f.shape[2]
        region = (slice(None),) + tuple(slice(0, s) for s in spatial)
        # valid samples per position: (P,)
        per_pos = (torch.full((p,), float(n), dtype=mu_f.dtype, device=mu_f.device)
                   if w3 is None else w3.sum((0, 1)))
        if self.pooled:
            total = per_pos.sum()
            blend(self.momentum, self.running_batch_mean, self.batch_mean_count,
                        mu_b.reshape(c), total >= 1)
            unbiased = var_b.reshape(c) * (total / (total - 1).clamp(min=1))
            blend(self.momentum, self.running_batch_var, self.batch_var_count, unbiased, total >= 2)
        else:
            est_shape = (c,) + tuple(spatial)
            unbiased = var_b * (per_pos / (per_pos - 1).clamp(min=1))
            blend(self.momentum, self.running_batch_mean[region], self.batch_mean_count[region[1:]],
                        mu_b.reshape(est_shape), (per_pos >= 1).reshape(spatial))
            blend(self.momentum, self.running_batch_var[region], self.batch_var_count[region[1:]],
                        unbiased.reshape(est_shape), (per_pos >= 2).reshape(spatial))
        # feature statistics: average over the valid samples at each position
        weights = torch.ones_like(mu_f) if w3 is None else w3
        denom = per_pos.clamp(min=1)
        f_mean = (mu_f * weights).sum((0, 1)) / denom
        f_var = (var_f * weights).sum((0, 1)) / denom
        seen = (per_pos >= 1).reshape(spatial)
        # mean and variance share one count: blend the mean against a copy so it advances once
        f_count = self.feature_count[region[1:]]
        blend(self.momentum, self.running_feature_mean[region[1:]], f_count.clone(), f_mean.reshape(spatial), seen)
        blend(self.momentum, self.running_feature_var[region[1:]], f_count, f_var.reshape(spatial), seen)

    def _materialize(self, spatial: tuple[int, ...]) -> None:
        """Create the per-position buffers on first use, or grow them to cover ``spatial``."""
        c = self.num_features
        current = self.feature_count
        if current.numel() > 0 and current.dim() != len(spatial):
            raise ValueError(
                f"norm 'batch_layer': trained on inputs with {current.dim()} spatial axes, got "
                f"{len(spatial)}; use one layout per layer"
            )
        old = tuple(current.shape) if current.numel() > 0 else tuple(0 for _ in spatial)
        new = tuple(max(a, b) for a, b in zip(old, spatial))
        if current.numel() > 0 and new == old:
            return
        names = ["running_feature_mean", "running_feature_var", "feature_count"]
        if not self.pooled:
            names += ["running_batch_mean", "running_batch_var", "batch_mean_count", "batch_var_count"]
        for name in names:
            buf = getattr(self, name)
            lead = (c,) if name.startswith("running_batch") else ()
            grown = buf.new_zeros(lead + new)
            if buf.numel() > 0:
                grown[(slice(None),) * len(lead) + tuple(slice(0, s) for s in old)] = buf
            setattr(self, name, grown)

    def _population_batch(self, spatial, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Population batch mean and variance for an input of this spatial extent, as (1, C, P)."""
        c = self.num_features
        if self.pooled:
            mean = or_default(self.running_batch_mean, self.batch_mean_count, 0.0)
            var = or_default(self.running_batch_var, self.batch_var_count, 1.0)
            return mean.to(dtype).reshape(1, c, 1), var.to(dtype).reshape(1, c, 1)
        mean = per_position(self.running_batch_mean, self.batch_mean_count, spatial, 0.0, c)
        var = per_position(self.running_batch_var, self.batch_var_count, spatial, 1.0, c)
        return mean.to(dtype).reshape(1, c, -1), var.to(dtype).reshape(1, c, -1)

    def _population_feature(self, spatial, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Population feature mean and variance per position, as (1, 1, P)."""
        mean = per_position(self.running_feature_mean, self.feature_count, spatial, 0.0, None)
        var = per_position(self.running_feature_var, self.feature_count, spatial, 1.0, None)
        return mean.to(dtype).reshape(1, 1, -1), var.to(dtype).reshape(1, 1, -1)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: D401
        """Resize the lazily shaped buffers to the saved ones before the usual copy."""
        self._forget_uniform_count()
        for name in _LAZY:
            key = prefix + name
            if key in state_dict and getattr(self, name).shape != state_dict[key].shape:
                setattr(self, name, torch.zeros_like(state_dict[key], device=getattr(self, name).device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

