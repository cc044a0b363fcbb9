"""``rnn``: a one-layer LSTM or GRU classifier whose norm sits inside the cell (BN-LSTM, LN-LSTM, ...).

The cell (``rnn_cells``) normalizes the recurrent pre-activations at every step, so the norm
factory decides the model: ``batch`` gives BN-LSTM (Cooijmans et al. 2016), ``layer`` LN-LSTM (Ba et
al. 2016), ``batch_layer`` a BLN-LSTM, ``none`` a plain LSTM (numerically ``torch.nn.LSTM``). The
input ``(N, C, L)`` is read one step at a time from a zero state, and a linear head maps the hidden
state after the last valid step to the outputs.

Options (defaults):

* ``cell`` lstm (lstm | gru); ``hidden_size`` 64.
* ``bidirectional`` false: a second cell (own weights, own norms) reads the sequence backwards,
  from each sequence's last valid step; the head sees both directions.
* ``readout`` last (last | all_steps): the head reads the hidden state after the last valid step
  (after the first step for the backward cell), or the outputs of every step, flattened to
  ``L · directions · H`` features (padded steps contribute zeros). The MNIST-1D paper's GRU
  baseline (Greydanus 2020, ``GRUBase`` in the authors' ``notebooks/models.py``) is ``cell: gru,
  hidden_size: 6, bidirectional: true, readout: all_steps`` (5,134 parameters on MNIST-1D).
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
The backward cell's per-step statistics are indexed by its own step count (0 at position L - 1).
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
    check_bool,
    check_choice,
    check_positive_int,
    optional,
    resolve_options,
)

NAME = "rnn"
OWNER = Owner("model", NAME)
CELLS = ("gru", "lstm")
READOUTS = ("all_steps", "last")
COOIJMANS_GAMMA = 0.1

DEFAULTS: dict[str, Any] = {
    "cell": "lstm",
    "hidden_size": 64,
    "max_steps": None,
    "per_step_statistics": "auto",
    "gamma_init": "auto",
    "single_sample_steps": "population",
    "bidirectional": False,
    "readout": "last",
}


class RecurrentClassifier(nn.Module):
    """Norm-carrying recurrent cell(s) unrolled over the sequence, then a linear head on the readout."""

    def __init__(self, cell: NormLSTMCell | NormGRUCell, head: nn.Linear, config: dict[str, Any],
                 backward_cell: NormLSTMCell | NormGRUCell | None = None) -> None:
        super().__init__()
        self.cell = cell
        self.backward_cell = backward_cell  # registered after `cell`: torch's `_reverse` order
        self.head = head
        self.config = config

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``(N, C, L)`` (optional bool ``mask`` ``(N, L)``) → outputs ``(N, num_classes)``."""
        mask = check_sequence_input(x, mask, self.cell.input_size)
        if mask is not None:
            x = x.masked_fill(~mask.unsqueeze(1), 0.0)  # padded values never reach a weight
        with parametrize.cached():  # a reparameterized W_hh (weight norm) is computed once, not per step
            return self._read_out(x, mask)

    def _read_out(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Unroll the cell(s) over the sequence; the head reads the last valid state(s) or every step."""
        steps = x.transpose(1, 2)
        every_step = self.config["readout"] == "all_steps"
        # one host sync for the whole mask instead of one per step
        counts = [x.shape[0]] * x.shape[2] if mask is None else mask.sum(0).tolist()
        last, outputs = unroll(self.cell, steps, mask, counts, reverse=False, keep_outputs=every_step)
        if self.backward_cell is not None:
            back_last, back_outputs = unroll(self.backward_cell, steps, mask, counts, reverse=True,
                                             keep_outputs=every_step)
            last = torch.cat([last, back_last], dim=1)
            if every_step:
                outputs = torch.cat([outputs, back_outputs], dim=2)
        if every_step:
            return self.head(outputs.flatten(1))  # (N, L, D·H) → (N, L·D·H), step-major
        return self.head(last)


def unroll(
    cell: NormLSTMCell | NormGRUCell, x: torch.Tensor, mask: torch.Tensor | None, counts: list[int],
    *, reverse: bool, keep_outputs: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run ``cell`` over ``x`` ``(N, L, C)``: (hidden state after each sequence's last step read, and
    with ``keep_outputs`` the hidden state at every step ``(N, L, H)``, zero at padded steps)."""
    n, length, _ = x.shape
    wx = cell.input_terms(x)  # (N, L, G): one matmul for all steps
    state = cell.initial_state(n, wx)
    outputs: list[torch.Tensor | None] = [None] * length
    positions = range(length - 1, -1, -1) if reverse else range(length)
    for k, t in enumerate(positions):  # k: the cell's own step count, which indexes per-step norms
        if counts[t] == n:
            state = cell(wx[:, t], state, k, n)
        elif counts[t] > 0:
            # step only the running sequences: the norms see valid rows only, the others keep
            # their state (h_t = h_{t-1}), so the final state is each one's last valid state
            rows = mask[:, t].nonzero().squeeze(1)
            sub = tuple(s.index_select(0, rows) for s in state)
            new = cell(wx[:, t].index_select(0, rows), sub, k, n)
            state = tuple(s.index_copy(0, rows, v) for s, v in zip(state, new))
        if keep_outputs:
            outputs[t] = state[0] if mask is None else state[0] * mask[:, t].unsqueeze(1).to(state[0].dtype)
    return state[0], torch.stack(outputs, dim=1) if keep_outputs else None


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
    bidirectional = check_bool(OWNER, "bidirectional", config["bidirectional"])
    readout = check_choice(OWNER, "readout", config["readout"], READOUTS)

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
                  gamma_init=gamma_init, single_sample_steps=single, bidirectional=bidirectional, readout=readout)
    copies = max_steps if per_step else 1
    cells = []
    for direction in range(2 if bidirectional else 1):
        step_norms = []
        for i, features in enumerate(sites):
            modules = [probe if i == k == direction == 0 else build_norm(norm, features) for k in range(copies)]
            if gamma_init is not None:
                _set_gamma(modules[0], gamma_init)  # tied: every step module shares this γ
            step_norms.append(StepNorms(modules, single))
        cell = cell_class(input_size, hidden, *step_norms)
        _attach_recurrent_feedings(cell, step_norms)
        cells.append(cell)
    features = hidden * len(cells) * (length if readout == "all_steps" else 1)
    head = nn.Linear(features, num_classes)
    return RecurrentClassifier(cells[0], head, config, backward_cell=cells[1] if bidirectional else None)


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
