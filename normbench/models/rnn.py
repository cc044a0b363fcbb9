"""``rnn``: a one-layer LSTM or GRU classifier whose norm sits inside the cell (BN-LSTM, LN-LSTM, ...).

The cell (``rnn_cells``) normalizes the recurrent pre-activations at every step, so the norm
factory decides the model: ``batch`` gives BN-LSTM (Cooijmans et al. 2016), ``layer`` LN-LSTM (Ba et
al. 2016), ``batch_layer`` a BLN-LSTM, ``none`` a plain LSTM (numerically ``torch.nn.LSTM``). The
input ``(N, C, L)`` is read one step at a time from a zero state, and a linear head maps the hidden
state after the last valid step to the outputs.

Options (defaults):

* ``cell`` lstm (lstm | gru); ``hidden_size`` 64. (The MNIST-1D paper's GRU baseline is different:
  bidirectional, 6 hidden units, its head reads the outputs of all 40 steps.)
* ``max_steps`` the input length L: number of per-step norm copies (T_max); longer inputs reuse the
  last step's statistics.
* ``per_step_statistics`` auto (auto | true | false): one norm module per step and site with shared
  γ/β (Cooijmans §4); auto = true for norms that keep running statistics (``batch``,
  ``batch_renorm``, ``batch_layer``; see ``rnn_cells.keeps_running_statistics``). False gives one
  module whose running estimates average over all steps (what Cooijmans found "severely degrades
  performance"), for comparison.
* ``gamma_init`` auto (auto | a positive number): the initial γ of every norm site. auto = 0.1 for
  the BN family (``batch``, ``batch_renorm``): Cooijmans §4/Fig. 1 show that γ = 1 drives the
  pre-activations into the saturated range of sigmoid/tanh where gradients through time vanish,
  and 0.1 avoids it; other norms keep their own initial γ (1). ``batch_layer`` keeps 1 because
  its output is already scaled by 1/sqrt(C). A number applies to every norm with a ``weight``;
  norms without one (``none``) are unaffected. Setting γ draws no random numbers.
* ``single_sample_steps`` population (population | batch): a training step at which one sequence
  of a larger batch is still running is normalized with population statistics, since one sample
  has no batch statistics (see ``StepNorms``); ``batch`` passes it to the norm as it is (BN raises
  ``NormUndefinedError``). Only norms with running statistics are affected.

Weight normalization (``weight``): W_ih and W_hh are reparameterized per gate unit (the norm
sites N_x and N_h hold the identity or mean-only BN); N_c, which no layer feeds, holds the identity.

Masks ``(N, L)`` (True = valid) need not be a prefix: at a padded step a sequence's state is carried
unchanged, the norms see the valid rows only (so batch statistics use valid samples only), and the
head reads the state after each sequence's last valid step. Padded input values are never read.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from normbench.models.blocks import (
    NO_FEEDING,
    Feeding,
    NormFactory,
    attach_feeding,
    build_norm,
    check_sequence_input,
    sequence_shape,
)
from normbench.models.rnn_cells import (
    SINGLE_SAMPLE_STEPS,
    NormGRUCell,
    NormLSTMCell,
    StepNorms,
    is_batch_norm_family,
    keeps_running_statistics,
)
from normbench.options import (
    Owner,
    check_auto_or_bool,
    check_auto_or_positive_number,
    check_choice,
    check_positive_int,
    optional,
    resolve_options,
)

NAME = "rnn"
OWNER = Owner("model", NAME)
CELLS = ("gru", "lstm")
COOIJMANS_GAMMA = 0.1

DEFAULTS: dict[str, Any] = {
    "cell": "lstm",
    "hidden_size": 64,
    "max_steps": None,
    "per_step_statistics": "auto",
    "gamma_init": "auto",
    "single_sample_steps": "population",
}


class RecurrentClassifier(nn.Module):
    """A norm-carrying recurrent cell unrolled over the sequence, then a linear head on the last state."""

    def __init__(self, cell: NormLSTMCell | NormGRUCell, head: nn.Linear, config: dict[str, Any]) -> None:
        super().__init__()
        self.cell = cell
        self.head = head
        self.config = config

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``(N, C, L)`` (optional bool ``mask`` ``(N, L)``) → outputs ``(N, num_classes)``."""
        mask = check_sequence_input(x, mask, self.cell.input_size)
        if mask is not None:
            x = x.masked_fill(~mask.unsqueeze(1), 0.0)  # padded values never reach a weight
        with parametrize.cached():  # a reparameterized W_hh (weight norm) is computed once, not per step
            return self._unroll(x, mask)

    def _unroll(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Step the cell over the sequence; the head reads each sequence's last valid state."""
        n, _, length = x.shape
        wx = self.cell.input_terms(x.transpose(1, 2))  # (N, L, G): one matmul for all steps
        state = self.cell.initial_state(n, wx)
        # one host sync for the whole mask instead of one per step
        counts = [n] * length if mask is None else mask.sum(0).tolist()
        for t in range(length):
            if counts[t] == n:
                state = self.cell(wx[:, t], state, t, n)
            elif counts[t] > 0:
                # step only the running sequences: the norms see valid rows only, the others keep
                # their state (h_t = h_{t-1}), so the final state is each one's last valid state
                rows = mask[:, t].nonzero().squeeze(1)
                sub = tuple(s.index_select(0, rows) for s in state)
                new = self.cell(wx[:, t].index_select(0, rows), sub, t, n)
                state = tuple(s.index_copy(0, rows, v) for s, v in zip(state, new))
        return self.head(state[0])


def build_rnn(
    *, norm: NormFactory, input_shape: tuple[int, ...], num_classes: int, **options: Any
) -> RecurrentClassifier:
    """Build an ``rnn`` from validated options (see the module docstring for names and defaults)."""
    input_size, length = sequence_shape(NAME, input_shape)
    config = resolve_options(OWNER, options, DEFAULTS)
    cell_kind = check_choice(OWNER, "cell", config["cell"], CELLS)
    hidden = check_positive_int(OWNER, "hidden_size", config["hidden_size"])
    max_steps = optional(check_positive_int, OWNER, "max_steps", config["max_steps"]) or length
    per_step = check_auto_or_bool(OWNER, "per_step_statistics", config["per_step_statistics"])
    gamma_init = check_auto_or_positive_number(OWNER, "gamma_init", config["gamma_init"])
    single = check_choice(OWNER, "single_sample_steps", config["single_sample_steps"], SINGLE_SAMPLE_STEPS)

    # The norms draw no random numbers (build_norm), so building them before the cell changes
    # nothing; the cell's weights are drawn in torch's order and the head last, so one seed gives
    # the same non-norm weights whatever the norm.
    cell_class = NormLSTMCell if cell_kind == "lstm" else NormGRUCell
    gates = cell_class.gates * hidden
    sites = [gates, gates] + ([hidden] if cell_kind == "lstm" else [])  # W_ih x, W_hh h, c
    probe = build_norm(norm, gates)  # the first module of the first site, inspected for "auto"
    if per_step == "auto":
        per_step = keeps_running_statistics(probe)
    if gamma_init == "auto":
        gamma_init = COOIJMANS_GAMMA if is_batch_norm_family(probe) else None
    config.update(cell=cell_kind, hidden_size=hidden, max_steps=max_steps, per_step_statistics=per_step,
                  gamma_init=gamma_init, single_sample_steps=single)
    copies = max_steps if per_step else 1
    step_norms = []
    for i, features in enumerate(sites):
        modules = [probe if i == k == 0 else build_norm(norm, features) for k in range(copies)]
        if gamma_init is not None:
            _set_gamma(modules[0], gamma_init)  # tied: every step module shares this γ
        step_norms.append(StepNorms(modules, single))
    cell = cell_class(input_size, hidden, *step_norms)
    _attach_recurrent_feedings(cell, step_norms)
    head = nn.Linear(hidden, num_classes)
    return RecurrentClassifier(cell, head, config)


def _attach_recurrent_feedings(cell: nn.Module, step_norms: list[StepNorms]) -> None:
    """N_x is fed by W_ih and N_h by W_hh (one row per gate unit): a reparameterizing norm (weight
    norm) normalizes those, once per site (its first step module); no layer feeds N_c."""
    for site, weight in zip(step_norms, ("weight_ih", "weight_hh", None)):
        for k, module in enumerate(site.steps):
            feeding = Feeding(cell, ((weight, 0),)) if weight is not None and k == 0 else NO_FEEDING
            attach_feeding(module, feeding)


def _set_gamma(module: nn.Module, value: float) -> None:
    """Fill the norm's ``weight`` (γ) with ``value``; shared by every step module of the site."""
    weight = getattr(module, "weight", None)
    if isinstance(weight, nn.Parameter):
        with torch.no_grad():
            weight.fill_(value)
