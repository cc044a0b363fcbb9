"""LSTM and GRU cells with norm slots inside, and the per-time-step norm sites of BN-LSTM.

Both normalized LSTMs of the literature put the norm in the same three places:

* Cooijmans et al. 2016, "Recurrent Batch Normalization" (BN-LSTM), eqs. 6-8, and
* Ba, Kiros & Hinton 2016, "Layer Normalization" (LN-LSTM, supplementary eqs.)::

      (i, f, g, o) = N_h(W_hh h_{t-1}) + N_x(W_ih x_t) + b
      c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
      h_t = sigmoid(o) * tanh(N_c(c_t))

with N = BN (statistics over the batch, per unit) or N = LN (statistics over the 4H gate
pre-activations of one sample). So one norm factory gives either model: ``N_x`` and ``N_h`` are
``norm(4H)`` applied to ``(N, 4H)``, ``N_c`` is ``norm(H)`` applied to ``(N, H)``; the cell state
itself is carried unnormalized (only its read-out is normalized), as in both papers. The GRU
analogue normalizes the two ``(N, 3H)`` terms W_ih x and W_hh h; it has no cell state to read out.
The biases are added after the norms (a bias before a centering norm would be cancelled). With the
``none`` norm the cells compute exactly ``torch.nn.LSTM`` / ``torch.nn.GRU`` (gate order i, f, g, o
and r, z, n; parameters named, shaped and initialised as torch's).

Per-step statistics (Cooijmans §4): BN statistics differ from step to step early in a sequence,
so BN-LSTM keeps separate population statistics for every step t = 1..T_max and reuses those of
T_max beyond it. A :class:`StepNorms` site therefore holds one norm module per step when the norm
keeps running statistics; the modules share one set of affine parameters, as in the paper, whose
eqs. 6-8 give γ and β no time index while §4 gives the statistics one. Cooijmans fix
β_x = β_h = 0; the registry norms' β stay learnable here (redundant with the cell bias b, not
harmful).
"""

from __future__ import annotations

import abc
import math

import torch
from torch import nn

SINGLE_SAMPLE_STEPS = ("batch", "population")
_BATCH_NORM_FAMILY = ("batch", "batch_renorm")  # registry names whose outputs are BN-standardized


def keeps_running_statistics(module: nn.Module) -> bool:
    """Whether a norm keeps population estimates, i.e. has a buffer named ``running_*``.

    That holds for the registry's ``batch``, ``batch_renorm``, ``batch_layer`` (and ``instance``
    with ``track_running_stats``) and for ``torch.nn.BatchNorm*d``; the norms expose no flag of
    their own, and "has running statistics" is exactly what makes separate per-step copies differ.
    """
    return any(name.rsplit(".", 1)[-1].startswith("running_") for name, _ in module.named_buffers())


def is_batch_norm_family(module: nn.Module) -> bool:
    """Whether a norm standardizes with batch statistics like BN (registry ``batch``/``batch_renorm``
    or ``torch.nn.BatchNorm*d``); Cooijmans' γ = 0.1 initialisation is meant for these."""
    return (
        isinstance(module, nn.modules.batchnorm._BatchNorm)
        or getattr(module, "norm_name", None) in _BATCH_NORM_FAMILY
    )


def tie_parameters(modules: list[nn.Module]) -> None:
    """Make every module use the first module's parameters (same objects, so optimizers see one set)."""
    first = dict(modules[0].named_modules())
    for module in modules[1:]:
        for path, sub in module.named_modules():
            for name, param in first[path].named_parameters(recurse=False):
                setattr(sub, name, param)


class StepNorms(nn.Module):
    """One norm site of a recurrent cell: one module for all steps, or one per step (shared γ, β).

    ``forward(x, t, batch_size)`` normalizes the ``(n, C)`` rows of step ``t`` (the valid rows of a
    batch of ``batch_size`` sequences). Step modules are used up to the last one; in eval mode,
    beyond the last step seen in training (T_max; Cooijmans §4). With ``single_sample_steps:
    population``, a training step where only one sequence of a larger batch is still running is
    normalized with the population statistics of its step, because one sample has no batch
    variance (BN would be undefined there although the batch is not); a batch of one is passed on
    as it is, so BN on it stays undefined (``NormUndefinedError``).
    """

    def __init__(self, modules: list[nn.Module], single_sample_steps: str) -> None:
        super().__init__()
        self.steps = nn.ModuleList(modules)
        self.single_sample_steps = single_sample_steps
        self.has_running_statistics = keeps_running_statistics(modules[0])
        if len(modules) > 1:
            tie_parameters(modules)
        # 1 + the last step whose statistics training has updated: eval reuses it beyond (T_max)
        self.register_buffer("trained_steps", torch.tensor(0, dtype=torch.long))

    def _population_index(self, t: int) -> int:
        last = len(self.steps) - 1
        seen = int(self.trained_steps)
        return min(t, last if seen == 0 else seen - 1)

    def forward(self, x: torch.Tensor, t: int, batch_size: int) -> torch.Tensor:
        """Normalize step ``t``'s rows ``x`` ``(n, C)``."""
        if not self.training:
            return self.steps[self._population_index(t)](x)
        if (
            x.shape[0] == 1 < batch_size and self.has_running_statistics
            and self.single_sample_steps == "population"
        ):
            module = self.steps[self._population_index(t)]
            module.eval()  # population statistics for this one call; training mode is restored below
            try:
                return module(x)
            finally:
                module.train()
        index = min(t, len(self.steps) - 1)
        if index >= int(self.trained_steps):
            self.trained_steps.fill_(index + 1)
        return self.steps[index](x)

    def extra_repr(self) -> str:
        return f"steps={len(self.steps)}, single_sample_steps={self.single_sample_steps!r}"


class _NormRecurrentCell(nn.Module, abc.ABC):
    """Parameters of torch's RNN layers (names, shapes, init) plus the norm sites; subclasses step."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        g = self.gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(g, input_size))
        self.weight_hh = nn.Parameter(torch.empty(g, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(g))
        self.bias_hh = nn.Parameter(torch.empty(g))
        # torch.nn.LSTM/GRU draw U(-1/sqrt(H), 1/sqrt(H)) for every parameter in this order, so a
        # seed gives the same weights as torch's layer would (and the same for every norm)
        bound = 1.0 / math.sqrt(hidden_size)
        for param in (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh):
            nn.init.uniform_(param, -bound, bound)

    def input_terms(self, x: torch.Tensor) -> torch.Tensor:
        """W_ih x_t for all steps in one matmul: ``(N, L, C)`` → ``(N, L, gates·H)``.

        No bias here: it is added after the norm, which would cancel it.
        """
        return x @ self.weight_ih.t()

    @abc.abstractmethod
    def initial_state(self, n: int, like: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Zero state for a batch of ``n`` (dtype and device of ``like``): (h, c) for LSTM, (h,) for GRU."""

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


class NormLSTMCell(_NormRecurrentCell):
    """LSTM step with norm sites ``norm_x``, ``norm_h`` (4H) and ``norm_c`` (H); see the module doc."""

    gates = 4

    def __init__(self, input_size: int, hidden_size: int, norm_x: StepNorms, norm_h: StepNorms,
                 norm_c: StepNorms) -> None:
        super().__init__(input_size, hidden_size)
        self.norm_x, self.norm_h, self.norm_c = norm_x, norm_h, norm_c

    def initial_state(self, n: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero (h, c), as torch's LSTM starts by default."""
        zeros = like.new_zeros(n, self.hidden_size)
        return zeros, zeros

    def forward(
        self, wx: torch.Tensor, state: tuple[torch.Tensor, ...], t: int, batch_size: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: ``wx`` = W_ih x_t ``(n, 4H)``, state (h, c) ``(n, H)`` → new (h, c)."""
        h, c = state
        gates = (
            self.norm_x(wx, t, batch_size) + self.norm_h(h @ self.weight_hh.t(), t, batch_size)
            + (self.bias_ih + self.bias_hh)
        )
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(self.norm_c(c, t, batch_size))
        return h, c


class NormGRUCell(_NormRecurrentCell):
    """GRU step with norm sites ``norm_x`` and ``norm_h`` (3H) on the input and recurrent terms.

    r = σ(N_x(W_ir x)_r + b_ir + N_h(W_hr h)_r + b_hr), z likewise,
    n = tanh(N_x(W_in x)_n + b_in + r ⊙ (N_h(W_hn h)_n + b_hn)), h' = (1 − z) ⊙ n + z ⊙ h.
    """

    gates = 3

    def __init__(self, input_size: int, hidden_size: int, norm_x: StepNorms, norm_h: StepNorms) -> None:
        super().__init__(input_size, hidden_size)
        self.norm_x, self.norm_h = norm_x, norm_h

    def initial_state(self, n: int, like: torch.Tensor) -> tuple[torch.Tensor]:
        """Zero h, as torch's GRU starts by default."""
        return (like.new_zeros(n, self.hidden_size),)

    def forward(
        self, wx: torch.Tensor, state: tuple[torch.Tensor, ...], t: int, batch_size: int
    ) -> tuple[torch.Tensor]:
        """One step: ``wx`` = W_ih x_t ``(n, 3H)``, state (h,) ``(n, H)`` → new (h,)."""
        (h,) = state
        gi = self.norm_x(wx, t, batch_size) + self.bias_ih
        gh = self.norm_h(h @ self.weight_hh.t(), t, batch_size) + self.bias_hh
        i_r, i_z, i_n = gi.chunk(3, dim=1)
        h_r, h_z, h_n = gh.chunk(3, dim=1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return ((1.0 - z) * n + z * h,)
