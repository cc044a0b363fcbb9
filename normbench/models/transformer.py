"""``transformer``: a tiny encoder classifier whose norm slots take any registry norm.

Input ``(N, C, L)`` → a linear projection of the C channels of each position to ``d_model`` plus a
learned positional embedding → ``layers`` encoder blocks → final norm → mean over valid positions →
linear head. The blocks are pre-norm by default (Xiong et al. 2020, "On Layer Normalization in the
Transformer Architecture": ``x + attn(norm(x))``, ``x + ff(norm(x))``, and a final norm, which trains
without warm-up where post-norm needs it); ``norm_position: post`` gives the original
``norm(x + attn(x))``, ``norm(x + ff(x))`` (no final norm).

Every norm is applied channel-first to ``(N, d_model, L)`` with the padding mask, so it sees what a
norm in a conv net would. With ``layer`` and its option ``per_position: true`` that is the standard
Transformer LN (over d_model at each token); plain ``layer`` normalizes over d_model and all valid
tokens of a sample. ``batch`` normalizes each feature over the valid tokens of the batch, the
setting PowerNorm (Shen et al. 2020, "PowerNorm: Rethinking Batch Normalization in Transformers")
studies; statistics never include padded tokens.

Options (defaults): ``d_model`` 64, ``layers`` 2, ``heads`` 4 (must divide d_model), ``ff_mult`` 2
(hidden width of the feed-forward net = ff_mult × d_model), ``dropout`` 0.0 (attention weights,
and each sub-block's output), ``activation`` gelu (relu | sigmoid | tanh | gelu),
``norm_position`` pre (pre | post), ``max_length`` the input length L (positions with an embedding;
longer inputs are refused).

Masks ``(N, L)`` (True = valid) need not be a prefix: padded tokens are zeroed at the input and after
every block, are never attended to (``key_padding_mask``), are excluded from the norms' statistics and
from the pooled mean, so their values never change the outputs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from normbench.models.blocks import (
    ACTIVATIONS,
    NormFactory,
    apply_norm,
    build_norm,
    check_sequence_input,
    sequence_shape,
)
from normbench.options import Owner, check_choice, check_number, check_positive_int, divisors, optional, resolve_options

NAME = "transformer"
OWNER = Owner("model", NAME)
NORM_POSITIONS = ("post", "pre")
POSITION_INIT_STD = 0.02  # BERT/GPT-2's scale for learned position embeddings

DEFAULTS: dict[str, Any] = {
    "d_model": 64,
    "layers": 2,
    "heads": 4,
    "ff_mult": 2,
    "dropout": 0.0,
    "activation": "gelu",
    "norm_position": "pre",
    "max_length": None,
}


def token_norm(norm: nn.Module, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Apply a channel-first norm to tokens ``(N, L, D)``: it sees ``(N, D, L)`` and the mask ``(N, L)``."""
    return apply_norm(norm, x.transpose(1, 2), mask).transpose(1, 2)


class EncoderBlock(nn.Module):
    """Self-attention and feed-forward sub-blocks, each with a residual connection and a norm."""

    def __init__(self, d_model: int, heads: int, ff_mult: int, dropout: float, activation: str,
                 norm_attn: nn.Module, norm_ff: nn.Module, norm_position: str) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, heads, dropout=dropout, batch_first=True)
        self.ff = nn.Sequential(
            nn.Linear(d_model, ff_mult * d_model),
            ACTIVATIONS[activation](),
            nn.Dropout(dropout),
            nn.Linear(ff_mult * d_model, d_model),
        )
        self.dropout = nn.Dropout(dropout)
        self.norm_attn = norm_attn
        self.norm_ff = norm_ff
        self.norm_position = norm_position

    def _attend(self, x: torch.Tensor, padding: torch.Tensor | None) -> torch.Tensor:
        out, _ = self.attn(x, x, x, key_padding_mask=padding, need_weights=False)
        return self.dropout(out)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None, padding: torch.Tensor | None
    ) -> torch.Tensor:
        """Tokens ``(N, L, D)`` → ``(N, L, D)``; ``padding`` is the attention's key_padding_mask."""
        if self.norm_position == "pre":
            x = x + self._attend(token_norm(self.norm_attn, x, mask), padding)
            x = x + self.dropout(self.ff(token_norm(self.norm_ff, x, mask)))
        else:
            x = token_norm(self.norm_attn, x + self._attend(x, padding), mask)
            x = token_norm(self.norm_ff, x + self.dropout(self.ff(x)), mask)
        # keep padded tokens at zero, so nothing computed for them can be mistaken for data
        return x if mask is None else x.masked_fill(~mask.unsqueeze(-1), 0.0)

    def extra_repr(self) -> str:
        return f"norm_position={self.norm_position!r}"


class TransformerClassifier(nn.Module):
    """Projection + positions → encoder blocks → (final norm) → masked mean pool → linear head."""

    def __init__(self, input_proj: nn.Linear, positions: nn.Parameter, blocks: list[EncoderBlock],
                 final_norm: nn.Module | None, head: nn.Linear, config: dict[str, Any]) -> None:
        super().__init__()
        self.input_proj = input_proj
        self.pos_embedding = positions
        self.blocks = nn.ModuleList(blocks)
        self.norm_final = final_norm
        self.head = head
        self.config = config

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``(N, C, L)`` (optional bool ``mask`` ``(N, L)``) → outputs ``(N, num_classes)``."""
        mask = check_sequence_input(x, mask, self.input_proj.in_features)
        length = x.shape[2]
        if length > self.pos_embedding.shape[0]:
            raise ValueError(
                f"model {NAME!r}: input length {length} exceeds max_length "
                f"{self.pos_embedding.shape[0]} (the positions that have an embedding)"
            )
        if mask is not None:
            x = x.masked_fill(~mask.unsqueeze(1), 0.0)
        h = self.input_proj(x.transpose(1, 2)) + self.pos_embedding[:length]
        padding = None
        if mask is not None:
            h = h.masked_fill(~mask.unsqueeze(-1), 0.0)
            # a sequence without any valid token masks every key of its attention rows, which some
            # attention kernels turn into NaN; let it attend to its zeroed tokens instead (its
            # pooled features are zero anyway)
            padding = ~mask & mask.any(1, keepdim=True)
        for block in self.blocks:
            h = block(h, mask, padding)
        if self.norm_final is not None:
            h = token_norm(self.norm_final, h, mask)
        if mask is None:
            return self.head(h.mean(1))
        valid = mask.unsqueeze(-1).to(h.dtype)
        return self.head((h * valid).sum(1) / valid.sum(1).clamp_min(1.0))


def build_transformer(
    *, norm: NormFactory, input_shape: tuple[int, ...], num_classes: int, **options: Any
) -> TransformerClassifier:
    """Build a ``transformer`` from validated options (see the module docstring for names and defaults)."""
    channels, length = sequence_shape(NAME, input_shape)
    config = resolve_options(OWNER, options, DEFAULTS)
    d_model = check_positive_int(OWNER, "d_model", config["d_model"])
    layers = check_positive_int(OWNER, "layers", config["layers"])
    heads = check_positive_int(OWNER, "heads", config["heads"])
    if d_model % heads:
        raise ValueError(
            f"model {NAME!r}: option 'heads' must divide d_model ({d_model}); got {heads}, "
            f"allowed: {', '.join(map(str, divisors(d_model)))}"
        )
    ff_mult = check_positive_int(OWNER, "ff_mult", config["ff_mult"])
    dropout = check_number(OWNER, "dropout", config["dropout"], low=0.0, high=1.0, high_open=True)
    activation = check_choice(OWNER, "activation", config["activation"], ACTIVATIONS)
    norm_position = check_choice(OWNER, "norm_position", config["norm_position"], NORM_POSITIONS)
    max_length = optional(check_positive_int, OWNER, "max_length", config["max_length"]) or length
    config.update(d_model=d_model, layers=layers, heads=heads, ff_mult=ff_mult, dropout=dropout,
                  activation=activation, norm_position=norm_position, max_length=max_length)

    # Fixed construction order (projection, positions, blocks, head) and RNG-free norms
    # (build_norm): one seed gives the same non-norm weights whatever the norm.
    input_proj = nn.Linear(channels, d_model)
    positions = nn.Parameter(torch.empty(max_length, d_model))
    nn.init.normal_(positions, std=POSITION_INIT_STD)
    blocks = [
        EncoderBlock(d_model, heads, ff_mult, dropout, activation, build_norm(norm, d_model),
                     build_norm(norm, d_model), norm_position)
        for _ in range(layers)
    ]
    final_norm = build_norm(norm, d_model) if norm_position == "pre" else None
    head = nn.Linear(d_model, num_classes)
    return TransformerClassifier(input_proj, positions, blocks, final_norm, head, config)
