"""Weight normalization (Salimans & Kingma 2016): the layer feeding a norm slot is reparameterized as
``w = g v / ||v||`` (one g and one v per output unit), and the slot holds the identity or, with
``mean_only_bn``, mean-only batch normalization.

It normalizes weights, not activations, so it cannot work from inside the slot alone: the norm
class declares ``reparameterizes_feeding``, the model's block helper tells each slot's module which
weights feed it (``feed_from``), and once the model's own initialization is done ``create_model``
calls :meth:`WeightNorm.reparameterize`, which applies
``torch.nn.utils.parametrizations.weight_norm`` to them (dim = the output-unit axis). ``g`` starts at
``||v||``, so the reparameterized layer computes exactly what it did: runs stay paired with the
other norms' runs of the same seed.

Options:

* ``mean_only_bn`` (false): the slot subtracts the batch mean per channel (training; its running
  estimate, updated with ``momentum``, at evaluation) and adds a learned bias b (§2.2 of the
  paper: the feeding layer's own bias is cancelled by the centering). Without it the slot is the
  identity.
* ``data_dependent_init`` (false): §3 of the paper. Before training, one forward pass over a batch
  of training data (the training loop's ``DATA_INIT_SAMPLES``, a function of the seed alone) sets,
  layer by layer in forward order, ``g <- g / sigma`` and ``b <- (b - mu) / sigma`` with mu, sigma
  the per-unit mean and standard deviation of the layer's output ``t`` over the batch (and
  positions), so that ``t`` starts with zero mean and unit variance per unit; later layers see the
  initialized outputs. It applies to feed-forward layers (Linear, Conv); recurrent and LSTM
  kernels, whose outputs depend on the step and a zero initial state, keep ``g = ||v||``. Output
  positions outside a padding mask enter mu and sigma (the hook sees the layer's output, not the
  mask).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils import parametrizations

from normbench.norms.base import NormModule
from normbench.norms.batch import require_two_values
from normbench.norms.layout import flatten, mask_weights
from normbench.options import check_bool, check_number

DATA_INIT_EPS = 1e-5  # keeps 1 / sigma finite for a unit that is constant on the init batch


class WeightNorm(NormModule):
    """The slot of a weight-normalized layer: identity or mean-only BN (see the module docstring)."""

    norm_name = "weight"
    #: the model's block helper hands this norm the weights of the layer that feeds its slot
    reparameterizes_feeding = True

    def __init__(
        self,
        num_features: int,
        *,
        mean_only_bn: bool = False,
        data_dependent_init: bool = False,
        momentum: float = 0.1,
    ) -> None:
        super().__init__(num_features, affine=False)
        owner = self.owner
        self.mean_only_bn = check_bool(owner, "mean_only_bn", mean_only_bn)
        self.data_dependent_init = check_bool(owner, "data_dependent_init", data_dependent_init)
        self.momentum = check_number(owner, "momentum", momentum, low=0.0, high=1.0, low_open=True)
        if self.mean_only_bn:
            self.bias = nn.Parameter(torch.zeros(self.num_features))
            self.register_buffer("running_mean", torch.zeros(self.num_features))
        # (module, [(weight name, output axis)], bias name or None, feed_forward); a plain tuple,
        # so the feeding layer is not registered as a submodule of the norm
        self._feeding: tuple[nn.Module | None, tuple[tuple[str, int], ...], str | None, bool] | None = None
        self._reparameterized = False

    def extra_repr(self) -> str:
        """Options as constructed."""
        return (f"{self.num_features}, mean_only_bn={self.mean_only_bn}, "
                f"data_dependent_init={self.data_dependent_init}, momentum={self.momentum:g}")

    # -- the feeding layer ----------------------------------------------------------------------

    def feed_from(self, module: nn.Module | None, weights: Sequence[tuple[str, int]] = (),
                  bias: str | None = None, feed_forward: bool = False) -> None:
        """Record the layer feeding this slot: ``module``'s ``weights`` (name, output-unit axis), the
        ``bias`` shifting the slot's input, and whether the input is ``W x + b`` (feed-forward).
        ``module=None``: no layer feeds the slot (e.g. the LSTM cell state), nothing is reparameterized."""
        self._feeding = (module, tuple(weights), bias, feed_forward)

    @property
    def has_feeding(self) -> bool:
        """Whether the model said what feeds this slot (``feed_from`` was called)."""
        return self._feeding is not None

    def reparameterize(self) -> None:
        """Apply ``weight_norm`` to the recorded weights (once); ``g`` starts at ``||v||``."""
        if self._reparameterized or self._feeding is None or self._feeding[0] is None:
            return
        module, weights, _, _ = self._feeding
        for name, dim in weights:
            parametrizations.weight_norm(module, name=name, dim=dim)
        self._reparameterized = True

    # -- data-dependent initialization ----------------------------------------------------------

    def prepare_data_init(self) -> bool:
        """Arm §3's initialization on the feeding layer's next output (feed-forward layers only)."""
        if not (self.data_dependent_init and self._reparameterized and self._feeding[3]):
            return False
        module = self._feeding[0]
        handles = []

        def initialize(_module: nn.Module, _inputs, output: torch.Tensor) -> torch.Tensor:
            handles.pop().remove()  # once
            return self._initialize_from(output)

        handles.append(module.register_forward_hook(initialize))
        return True

    @torch.no_grad()
    def _initialize_from(self, output: torch.Tensor) -> torch.Tensor:
        """Rescale g and shift the bias so ``output`` has zero mean, unit variance per unit; return it so."""
        module, weights, bias_name, _ = self._feeding
        dims = (0,) + tuple(range(2, output.dim()))
        mean = output.mean(dims)
        std = (output.var(dims, unbiased=False) + DATA_INIT_EPS).sqrt()
        for name, _ in weights:
            g = module.parametrizations[name].original0  # shape (units, 1, ...): one g per unit
            g.div_(std.reshape(g.shape))
        bias = None if bias_name is None else getattr(module, bias_name)
        if bias is not None:
            bias.sub_(mean).div_(std)
        shape = (1, -1) + (1,) * (output.dim() - 2)
        centred = output - mean.reshape(shape) if bias is not None else output
        return centred / std.reshape(shape)

    # -- the slot -------------------------------------------------------------------------------

    def _normalize(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if not self.mean_only_bn:
            return x if mask is None else x * mask.unsqueeze(1).to(x.dtype)
        c = self.num_features
        x3 = flatten(x)
        w3 = None if mask is None else mask_weights(mask, x.dtype)
        if self.training:
            count = float(x3.shape[0] * x3.shape[2]) if w3 is None else float(w3.sum())
            require_two_values("mean-only batch norm", count, x, "the batch")
            mean = (x3 if w3 is None else x3 * w3).sum((0, 2)) / count
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
        else:
            mean = self.running_mean.to(x.dtype)
        y = x3 - mean.reshape(1, c, 1) + self.bias.to(x.dtype).reshape(1, c, 1)
        if w3 is not None:
            y = y * w3
        return y.reshape(x.shape)
