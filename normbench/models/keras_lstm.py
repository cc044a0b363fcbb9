"""An LSTM layer with Keras' parameters, initialisation, dropout and recurrent dropout, unrolled step by step.

The stacked recurrent model of Ziaee & Çano's IMDB experiment (``stacked_rnn``) is built from Keras
``LSTM(units, dropout=0.2, recurrent_dropout=0.2)`` layers; this module reproduces what such a
layer computes (TensorFlow 2 Keras, ``implementation=2``, the default):

* parameters: ``kernel`` ``(C, 4H)`` Glorot-uniform, ``recurrent_kernel`` ``(H, 4H)`` orthogonal,
  one ``bias`` ``(4H)`` of zeros with the forget-gate quarter set to 1 (``unit_forget_bias``);
  so ``4H (C + H + 1)`` parameters where ``torch.nn.LSTM`` has ``4H (C + H + 2)``;
* gates in the order i, f, g (Keras' c), o: ``z = x_t K + (h_{t-1} ⊙ r) R + b``, ``c_t = σ(f) c_{t-1}
  + σ(i) tanh(g)``, ``h_t = σ(o) tanh(c_t)`` (``recurrent_activation`` sigmoid, TF2's default);
* dropout (Gal & Ghahramani 2016, as Keras applies it): in training, one Bernoulli mask per
  sequence for the inputs (``dropout``) and one for the recurrent state (``recurrent_dropout``),
  drawn once per forward and reused at every step, scaled by 1/(1 - rate); none in eval. A
  recurrent mask is why the layer runs its own per-step loop instead of ``torch.nn.LSTM``.

Masks ``(N, T)`` (True = real step): at a padded step a sequence's state is carried unchanged and
its output is 0, so the state after the loop is each sequence's state after its last real step
(with Keras' pre-padding, the final step). Padded input values are zeroed first and never reach a
weight.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize


def dropout_mask(shape: tuple[int, ...], rate: float, like: torch.Tensor) -> torch.Tensor:
    """A Bernoulli keep-mask of ``shape`` scaled by 1/(1 - rate) (dtype/device of ``like``)."""
    keep = 1.0 - rate
    return torch.bernoulli(torch.full(shape, keep, dtype=like.dtype, device=like.device)) / keep


class KerasLSTM(nn.Module):
    """One LSTM layer over ``(N, T, C)``; returns all outputs ``(N, T, H)`` and the last state ``(N, H)``."""

    def __init__(self, input_size: int, hidden_size: int, dropout: float = 0.0,
                 recurrent_dropout: float = 0.0) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.dropout, self.recurrent_dropout = dropout, recurrent_dropout
        h = hidden_size
        self.kernel = nn.Parameter(torch.empty(input_size, 4 * h))
        self.recurrent_kernel = nn.Parameter(torch.empty(h, 4 * h))
        self.bias = nn.Parameter(torch.zeros(4 * h))
        with torch.no_grad():
            nn.init.xavier_uniform_(self.kernel)
            nn.init.orthogonal_(self.recurrent_kernel)
            self.bias[h : 2 * h] = 1.0  # unit_forget_bias

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` ``(N, T, C)``, optional bool ``mask`` ``(N, T)`` → (outputs ``(N, T, H)``, last h ``(N, H)``)."""
        n, steps, _ = x.shape
        if mask is not None:
            x = x.masked_fill(~mask.unsqueeze(-1), 0.0)
        if self.training and self.dropout > 0:
            x = x * dropout_mask((n, 1, self.input_size), self.dropout, x)
        with parametrize.cached():  # a reparameterized recurrent kernel (weight norm) is computed once
            return self._unroll(x, mask)

    def _unroll(self, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The step loop of :meth:`forward` on masked, dropped-out inputs."""
        n, steps, _ = x.shape
        inputs = torch.matmul(x, self.kernel) + self.bias  # (N, T, 4H): one matmul for all steps
        recurrent_mask = None
        if self.training and self.recurrent_dropout > 0:
            recurrent_mask = dropout_mask((n, self.hidden_size), self.recurrent_dropout, x)
        h = c = x.new_zeros(n, self.hidden_size)
        outputs = []
        for t in range(steps):
            h_in = h if recurrent_mask is None else h * recurrent_mask
            i, f, g, o = (inputs[:, t] + h_in @ self.recurrent_kernel).chunk(4, dim=1)
            c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h_new = torch.sigmoid(o) * torch.tanh(c_new)
            if mask is None:
                h, c = h_new, c_new
                outputs.append(h)
                continue
            real = mask[:, t].unsqueeze(1)
            h, c = torch.where(real, h_new, h), torch.where(real, c_new, c)
            outputs.append(h * real)
        return torch.stack(outputs, dim=1), h

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, dropout={self.dropout}, "
                f"recurrent_dropout={self.recurrent_dropout}")
