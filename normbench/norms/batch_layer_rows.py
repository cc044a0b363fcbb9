"""BatchLayerNorm's training on one position per sample ((N, C) features, or (N, C, 1, ...)).

A mixin of ``BatchLayerNorm`` (``batch_layer.py``), kept apart because it is one concept: which
kernel computes the step and how the population estimates follow it. On the CPU with BLN's
compiled kernels built, the whole step of fixed-size unmasked training -- output, autograd node,
population and count update -- is one native call (``rows_train``, ``bln_rows_kernel.cpp``);
where that uniform update does not apply (the first step, unequal counts, non-contiguous input)
the same kernel gives the output (``rows_forward``) and the update runs in torch, so a step's
output bits never depend on its population state. Without the kernels (no compiler, CUDA,
``NORMBENCH_BLN_KERNEL=eager``, torch.compile): torch's BN kernel over N and LN kernel over C
(``batch_layer_norm_rows``).
"""

from __future__ import annotations

import torch

from normbench.norms import batch_layer_fused as fused
from normbench.norms import bln_kernel
from normbench.norms.batch_layer_function import batch_layer_norm_rows


class RowsTraining:
    """The one-position-per-sample training paths of ``BatchLayerNorm`` (see the module docstring)."""

    def _train_rows_fused(self, x: torch.Tensor) -> torch.Tensor:
        """One position per sample, CPU: output, autograd node, population and count update in one
        native call (``bln_rows_kernel.cpp``; at an MLP's sizes the torch ops around BLN's
        arithmetic were the cost). The kernel declines (None) where the uniform update does not
        apply -- estimates not sized yet, unequal counts, a batch of one, non-contiguous input --
        and the general path runs."""
        if not torch.compiler.is_compiling():
            wf, wb = self._mixing_weights(x.shape[0])
            p, b = self._parameters, self._buffers
            out = bln_kernel.kernel().rows_train(
                x, p["weight"], p["bias"],
                [b["running_batch_mean"], b["running_batch_var"], b["running_feature_mean"], b["running_feature_var"]],
                [b["batch_mean_count"], b["batch_var_count"], b["feature_count"]], b["num_batches_tracked"],
                b["last_batch_size"], -1.0 if self.momentum is None else self.momentum, wf, wb, self.eps)
            if out is not None:
                y, self.__dict__["_uniform_count"] = out  # the counts' new common value, mirrored
                return y
        return self._train_unmasked(x)

    def _train_rows(self, x, gamma, beta, rate: float | None, wf: float, wb: float) -> torch.Tensor:
        """One position per sample: the fused kernel's output where it is built (so that a step's
        output bits never depend on which population update it took), else torch's BN and LN
        kernels, BN's updating the batch estimates itself when every count is equal (``rate``)."""
        n, c = x.shape[0], self.num_features
        rows = x if x.dim() == 2 else x.reshape(n, c)
        if x.device.type == "cpu" and bln_kernel.kernel() is not None and fused.usable(rows := rows.contiguous(), None):
            return self._train_rows_fused_output(x, rows, gamma, beta, rate, wf, wb)
        running = (self.running_batch_mean.view(c), self.running_batch_var.view(c)) if rate is not None else (None, None)
        y, mean_b, invstd_b, mean_f, rstd_f = batch_layer_norm_rows(
            rows, gamma, beta, *running, 0.0 if rate is None else rate, wf, wb, self.eps)
        y = y if x.dim() == 2 else y.reshape(x.shape)
        with torch.no_grad():  # the kernels give 1 / sqrt(var + eps): var = rstd^-2 - eps
            if rate is None:
                var_b = invstd_b.pow(-2).sub_(self.eps).clamp_(min=0.0)
                var_f = rstd_f.pow(-2).sub_(self.eps).clamp_(min=0.0)
                self._update_population(x.shape[2:], None, mean_b.reshape(1, c, 1), var_b.reshape(1, c, 1),
                                        mean_f.reshape(n, 1, 1), var_f.reshape(n, 1, 1), n)
                return y
            self.running_feature_mean.lerp_(mean_f.mean(), rate)
            self.running_feature_var.lerp_(rstd_f.pow(-2).mean(), rate).sub_(rate * self.eps)
        self._count_uniform_step(n)
        return y

    def _train_rows_fused_output(self, x, rows, gamma, beta, rate: float | None, wf: float, wb: float):
        """The fused kernel's output and statistics, with this layer's population update in torch."""
        n, c = rows.shape
        y, mean_b, var_b, mean_f, var_f = bln_kernel.kernel().rows_forward(rows, gamma, beta, wf, wb, self.eps)
        if rate is None:
            with torch.no_grad():
                self._update_population(x.shape[2:], None, mean_b.reshape(1, c, 1), var_b.reshape(1, c, 1),
                                        mean_f.reshape(n, 1, 1), var_f.reshape(n, 1, 1), n)
        else:
            self._uniform_update(rate, n, mean_b, var_b * (n / (n - 1)), mean_f.mean(), var_f.mean())
        return y.reshape(x.shape)
