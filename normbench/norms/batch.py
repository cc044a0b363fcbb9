"""Batch normalization (Ioffe & Szegedy 2015), with masks, ghost batches and the Keras convention.

Training: per channel, mean and biased variance over N and every spatial position (valid ones only
when a mask is given); ``y = gamma (x - mean) / sqrt(var + eps) + beta``. The running estimates are
exponential moving averages updated with weight ``momentum`` on the new batch (PyTorch semantics:
unbiased variance ``var * n / (n - 1)`` in the estimate; ``momentum=None`` gives the cumulative
average). Eval: the running estimates (population statistics), or batch statistics when
``track_running_stats=False``.

``convention="keras"`` follows ``keras.layers.BatchNormalization``: ``momentum`` is the weight of the
*old* estimate (default 0.99, i.e. PyTorch momentum 0.01), ``eps`` defaults to 1e-3, and the moving
variance is updated with the biased batch variance (Keras does not apply Bessel's correction).

``ghost_batch_size`` (Hoffer, Hubara & Soudry 2017, "Train longer, generalize better", Alg. 1)
splits the batch into consecutive virtual batches of that size and normalizes each with its own
statistics; every virtual batch's statistics enter the running estimates, one update per virtual
batch in order, so k virtual batches give ``(1 - a)^k r + sum_i a (1 - a)^(k - i) s_i``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from normbench.norms.base import NormModule, OptionProblem
from normbench.norms.errors import NormUndefinedError
from normbench.norms.example_weighing import example_weighted_norm
from normbench.norms.layout import flatten, mask_weights
from normbench.norms.moments import moment_norm
from normbench.options import check_bool, check_choice, check_int, check_number, option_error, optional


class _ConventionDefault:
    """Marks ``momentum`` as not given: its default depends on ``convention`` (None means CMA)."""

    def __repr__(self) -> str:
        return "0.1 (torch) / 0.99 (keras)"


_UNSET = _ConventionDefault()
CONVENTIONS = ("torch", "keras")


def require_two_values(norm: str, count: torch.Tensor | float, x: torch.Tensor, what: str) -> None:
    """Raise ``NormUndefinedError`` unless every statistics group holds at least two values.

    With one value per channel the batch variance is 0 and every output equals beta: the layer
    carries no information and the unbiased running variance divides by zero. PyTorch raises
    "Expected more than 1 value per channel when training" for the same reason.
    """
    smallest = count if isinstance(count, float) else float(count.min())
    if smallest <= 1:
        shape = tuple(x.shape)
        raise NormUndefinedError(
            f"{norm} statistics are undefined for input of shape {shape}: {what} must contain more "
            f"than one value per channel (it has {int(smallest)}); batch size 1 on (N, C) "
            "features leaves nothing to normalize over"
        )


class BatchNorm(NormModule):
    """BN over N and spatial positions per channel; see the module docstring for every option."""

    norm_name = "batch"

    def __init__(
        self,
        num_features: int,
        *,
        eps: float | None = None,
        momentum: float | None = _UNSET,  # type: ignore[assignment]
        affine: bool = True,
        track_running_stats: bool = True,
        convention: str = "torch",
        ghost_batch_size: int | None = None,
        inference_weight: float | None = None,
    ) -> None:
        super().__init__(num_features, affine=affine)
        owner = self.owner
        self.convention = check_choice(owner, "convention", convention, CONVENTIONS)
        keras = self.convention == "keras"
        self.eps = check_number(owner, "eps", (1e-3 if keras else 1e-5) if eps is None else eps,
                               low=0.0, low_open=True)
        if momentum is _UNSET:
            momentum = 0.99 if keras else 0.1
        if keras:
            # Keras' momentum weights the old estimate; [0, 1) keeps some of the new batch
            self.momentum = check_number(owner, "momentum", momentum, low=0.0, high=1.0, high_open=True)
            self.update_rate: float | None = 1.0 - self.momentum
        elif momentum is None:
            self.momentum, self.update_rate = None, None
        else:
            self.momentum = check_number(owner, "momentum", momentum, low=0.0, high=1.0, low_open=True)
            self.update_rate = self.momentum
        self.track_running_stats = check_bool(owner, "track_running_stats", track_running_stats)
        self.ghost_batch_size = (
            None if ghost_batch_size is None
            else check_int(owner, "ghost_batch_size", ghost_batch_size, 1)
        )
        self.inference_weight = optional(check_number, owner, "inference_weight", inference_weight,
                                         low=0.0, high=1.0)
        if self.inference_weight is not None and not self.track_running_stats:
            raise option_error(owner, "inference_weight", inference_weight,
                               "null when track_running_stats is false (eval then uses batch statistics)")
        if self.track_running_stats:
            self.register_buffer("running_mean", torch.zeros(self.num_features))
            self.register_buffer("running_var", torch.ones(self.num_features))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def extra_repr(self) -> str:
        """Options as constructed (shown by ``print(model)``)."""
        return (
            f"{self.num_features}, eps={self.eps:g}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}, convention={self.convention!r}, "
            f"ghost_batch_size={self.ghost_batch_size}, inference_weight={self.inference_weight}"
        )

    @classmethod
    def check_batch_sizes(cls, options: Mapping[str, Any], batch_sizes: Sequence[int]) -> OptionProblem | None:
        """Ghost batches must split every batch evenly: name the batch sizes ``ghost_batch_size`` does
        not divide (an invalid ghost size itself is reported when the norm is built)."""
        ghost = options.get("ghost_batch_size")
        if not (isinstance(ghost, int) and ghost > 0):
            return None
        bad = [b for b in batch_sizes if b % ghost]
        if not bad:
            return None
        return OptionProblem("ghost_batch_size", f"{ghost} does not divide batch sizes {bad}; "
                             "ghost batches must split every batch evenly")

    def reset_running_stats(self) -> None:
        """Back to the initial estimates (mean 0, variance 1, no batches), as torch's BN does."""
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1.0)
            self.num_batches_tracked.zero_()

    # -- native fast path: torch's own BN kernel where the definitions agree ---------------------

    def _fast_path(self, x: torch.Tensor):
        """``torch.batch_norm`` (the op ``F.batch_norm`` calls, without its per-call checks) for
        unmasked input without ghost batches; running estimates updated by the kernel (torch's
        convention only: Keras' update skips Bessel's correction, so it keeps the general path).
        Eval with ``inference_weight`` keeps the general path (example weighing)."""
        if self.training or not self.track_running_stats:
            n = x.shape[0]
            if self.ghost_batch_size not in (None, n):
                return None
            update = self.training and self.track_running_stats
            if update and self.convention != "torch":
                return None
            require_two_values("batch norm", float(x.numel() // x.shape[1]), x, "the batch")
            return self._native_update if update else self._native_batch_statistics
        if self.inference_weight is not None:  # eval mixes each example's own statistics in
            return None
        return self._native_running

    def _native_update(self, x: torch.Tensor) -> torch.Tensor:
        rate = self._next_rate()
        return torch.batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var, True, rate,
                                self.eps, torch.backends.cudnn.enabled)

    def _native_batch_statistics(self, x: torch.Tensor) -> torch.Tensor:
        return torch.batch_norm(x, self.weight, self.bias, None, None, True, 0.0, self.eps,
                                torch.backends.cudnn.enabled)

    def _native_running(self, x: torch.Tensor) -> torch.Tensor:
        return torch.batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var, False, 0.0,
                                self.eps, torch.backends.cudnn.enabled)

    def _normalize(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        gamma, beta = self._affine(x.dtype)
        if not (self.training or not self.track_running_stats):
            return self._eval_running(x, mask, gamma, beta)
        n, c = x.shape[0], x.shape[1]
        ghost = self.ghost_batch_size
        if ghost is not None and n % ghost != 0:
            raise ValueError(
                f"norm 'batch': ghost_batch_size={ghost} must divide the batch size, got a batch "
                f"of {n}; use a batch size that is a multiple of {ghost}"
            )
        update = self.training and self.track_running_stats
        fast = (
            mask is None and (ghost is None or ghost == n) and self.convention == "torch"
            and (not update or self.running_mean.dtype == x.dtype)
        )
        if fast:
            require_two_values("batch norm", float(x.numel() // c), x, "the batch")
            rate = self._next_rate() if update else 0.0
            return F.batch_norm(
                x, self.running_mean if update else None, self.running_var if update else None,
                gamma, beta, True, rate, self.eps,
            )
        x3 = flatten(x)
        w3 = None if mask is None else mask_weights(mask, x.dtype)
        groups = 1 if ghost is None else n // ghost
        if groups > 1:
            # ghost batches: view (G, N/G, C, P) and reduce over the sub-batch and positions
            xv = x3.reshape(groups, n // groups, c, -1)
            wv = None if w3 is None else w3.reshape(groups, n // groups, 1, -1)
            dims, pshape = (1, 3), (1, 1, c, 1)
        else:
            xv, wv, dims, pshape = x3, w3, (0, 2), (1, c, 1)
        count = (
            float(xv.shape[dims[0]] * xv.shape[dims[1]]) if wv is None
            else wv.sum(dims, keepdim=True) * 1.0
        )
        require_two_values("batch norm", count, x, "each (ghost) batch" if groups > 1 else "the batch")
        y, mean, var = moment_norm(
            xv, dims, weights=wv,
            gamma=None if gamma is None else gamma.reshape(pshape),
            beta=None if beta is None else beta.reshape(pshape),
            eps=self.eps,
        )
        if update:
            self._update_running(mean.reshape(groups, c), var.reshape(groups, c), count, groups)
        return y.reshape(x.shape)

    def _eval_running(self, x, mask, gamma, beta) -> torch.Tensor:
        dtype = x.dtype
        if self.inference_weight is not None:
            return example_weighted_norm(x, mask, self.running_mean.to(dtype), self.running_var.to(dtype),
                                         self.inference_weight, self.eps, gamma, beta)
        y = F.batch_norm(
            x, self.running_mean.to(dtype), self.running_var.to(dtype), gamma, beta,
            False, 0.0, self.eps,
        )
        if mask is not None:
            y = y * mask.unsqueeze(1).to(dtype)
        return y

    def _next_rate(self) -> float:
        """Count one more tracked batch and return its update weight (1/k for the cumulative mean)."""
        self.num_batches_tracked.add_(1)
        if self.update_rate is None:
            return 1.0 / float(self.num_batches_tracked)
        return self.update_rate

    @torch.no_grad()
    def _update_running(self, mean, var, count, groups: int) -> None:
        """EMA update of the running estimates, once per (ghost) batch, in order."""
        if self.convention == "torch":
            n = count if isinstance(count, float) else count.reshape(groups, 1)
            var = var * (n / (n - 1))  # unbiased, as torch.nn.BatchNorm stores it
        for i in range(groups):
            rate = self._next_rate()
            self.running_mean.lerp_(mean[i].to(self.running_mean.dtype), rate)
            self.running_var.lerp_(var[i].to(self.running_var.dtype), rate)
