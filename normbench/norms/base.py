"""The protocol every normbench norm follows: ``forward(x, mask=None)`` on channel-first input.

``NormModule`` validates input and mask, runs the family's ``_normalize`` in the statistics dtype
(float32 for half/bfloat16 input, with autocast switched off so reductions are not cast down), and
returns the result in the input's dtype. Parameters are created with ``torch.ones``/``torch.zeros``
only, so building a norm never draws random numbers: models built from one seed get identical
weights in every other layer whatever norm they use. What generic code needs to know about a
particular norm sits behind its hooks, whose defaults do nothing: ``on_epoch_start`` (the training
loop), ``prepare_data_init`` (the training loop, once before training) and ``check_batch_sizes``
(suite validation).

Fast path: for unmasked input a family's ``_fast_path(x)`` may return a callable that computes
the layer with no per-call checks -- the torch op its definition equals where there is one (BN in
torch's convention is ``torch.batch_norm``, GN ``torch.group_norm``, ...), else its own kernel.
The first call with a new (shape, dtype, mode) validates the input once and remembers the
callable; later calls with the same key go straight to it, so a layer costs what the torch op
costs (the wrapper tax the throughput suite's native column measures). The key is dropped whenever
parameters, buffers or their dtype/device may change (``_apply``, attribute assignment,
``load_state_dict``). Only inputs already in the compute dtype (float32/float64) are remembered,
unless the family declares ``fast_path_any_dtype`` (the identity: x in, x out).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from normbench.norms.layout import check_input, check_mask, compute_dtype
from normbench.options import Owner, check_bool, check_int

FastPath = Callable[[torch.Tensor], torch.Tensor]


class OptionProblem(NamedTuple):
    """Why an option of a norm cannot work in a suite: the option's name and the reason."""

    option: str
    message: str


class NormModule(nn.Module, abc.ABC):
    """Base class: channel count, optional per-channel affine (gamma = 1, beta = 0), forward template."""

    #: canonical registry name, used in error messages
    norm_name = "norm"
    #: the fast path computes the same bits in any floating dtype (no statistics to keep in float32)
    fast_path_any_dtype = False

    def __init__(self, num_features: int, *, affine: bool = True, bias: bool = True) -> None:
        super().__init__()
        self.num_features = check_int(self.owner, "num_features", num_features, 1)
        self.affine = check_bool(self.owner, "affine", affine)
        if self.affine:
            self.weight = nn.Parameter(torch.ones(self.num_features))
            if bias:
                self.bias = nn.Parameter(torch.zeros(self.num_features))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self._forget_fast_path()

    @property
    def owner(self) -> Owner:
        """How option errors name this norm: ``norm 'batch'``."""
        return Owner("norm", self.norm_name)

    @classmethod
    def check_batch_sizes(cls, options: Mapping[str, Any], batch_sizes: Sequence[int]) -> OptionProblem | None:
        """Why ``options`` cannot train at some of ``batch_sizes``, or None; checked when a suite is
        validated, before any run. Most norms take any batch size."""
        return None

    def on_epoch_start(self) -> None:
        """Called by the training loop at the start of every epoch; most norms do nothing."""

    def prepare_data_init(self) -> bool:
        """Arm a data-dependent initialization for the next forward pass, which the training loop
        then runs once before training (eval mode, a fixed batch of training data); return whether
        anything was armed. Most norms have none (weight norm's is Salimans & Kingma's)."""
        return False

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Normalize ``x`` ``(N, C, *spatial)``; positions where ``mask`` is False are zero."""
        key = self._fast_key
        if key is not None and mask is None and isinstance(x, torch.Tensor) and key == (x.shape, x.dtype, self.training):
            return self._fast_fn(x)
        return self._checked_forward(x, mask)

    def _checked_forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        check_input(self.norm_name, x, self.num_features)
        mask = check_mask(self.norm_name, x, mask)
        dtype = compute_dtype(x.dtype)
        fast = None
        if mask is None and self._parameters_in(dtype):
            fast = self._fast_path(x)  # validates what the key covers; may raise NormUndefinedError
        if fast is not None and (dtype == x.dtype or self.fast_path_any_dtype):
            # torch's norm ops keep float32/float64 input as it is under autocast (none is on its
            # lower-precision list); a family kernel that is (BLN's matrix products) guards itself
            self._fast_key, self._fast_fn = (x.shape, x.dtype, self.training), fast
            return fast(x)
        normalize = self._normalize if fast is None else (lambda x_, _mask: fast(x_))
        device_type = x.device.type
        if torch.is_autocast_enabled(device_type):
            # autocast would run the GEMM-like reductions in bfloat16; statistics must stay float32
            with torch.autocast(device_type, enabled=False):
                y = normalize(x.to(dtype), mask)
        else:
            y = normalize(x.to(dtype), mask)
        return y.to(x.dtype)

    def _fast_path(self, x: torch.Tensor) -> FastPath | None:
        """A check-free callable for unmasked input shaped like ``x`` in this mode, or None.

        Called once per (shape, dtype, mode) with ``x`` already validated; a family raises
        ``NormUndefinedError`` here for the shapes its statistics are undefined on, since later
        calls with the same key skip every check. The callable takes ``x`` in the compute dtype
        and must read options, parameters and buffers when called (they may change between calls).
        """
        return None

    def _parameters_in(self, dtype: torch.dtype) -> bool:
        """True when every parameter and floating buffer already has ``dtype`` (no casts needed)."""
        tensors = [*self._parameters.values(), *self._buffers.values()]
        return all(t is None or not t.is_floating_point() or t.dtype == dtype for t in tensors)

    def _forget_fast_path(self) -> None:
        # plain attributes (not parameters or buffers), set through __dict__ to bypass nn.Module
        self.__dict__["_fast_key"] = None
        self.__dict__["_fast_fn"] = None

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__.get("_parameters", ()) or name in self.__dict__.get("_buffers", ()):
            self._forget_fast_path()  # a replaced parameter or buffer may differ in dtype or device
        super().__setattr__(name, value)

    def __getstate__(self) -> dict[str, Any]:
        # copies and pickles start unremembered: the path is a bound method of this very object
        state = dict(self.__dict__)
        state["_fast_key"] = state["_fast_fn"] = None
        return state

    def _apply(self, fn, recurse: bool = True):
        self._forget_fast_path()  # .to(), .double(), .cuda() change dtypes and devices
        return super()._apply(fn, recurse)

    def _load_from_state_dict(self, *args, **kwargs):
        self._forget_fast_path()
        super()._load_from_state_dict(*args, **kwargs)

    @abc.abstractmethod
    def _normalize(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The norm itself, on validated input already cast to the compute dtype; each norm defines it."""

    def _affine(self, dtype: torch.dtype) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """gamma and beta in the compute dtype (differentiable casts), or None when absent."""
        w = None if self.weight is None else self.weight.to(dtype)
        b = None if self.bias is None else self.bias.to(dtype)
        return w, b
