"""``stacked_lstm``: Ziaee & Çano's IMDB model, stacked LSTMs with the norm BETWEEN layers, not in the cell.

Source: the authors' notebooks (A2Amir/Batch-Layer-Normalization, commit a79b856; protocol in
``normbench/reference/bln2022.yaml``)::

    Embedding(20000, 512, Glorot-uniform) → LSTM(128, dropout 0.2, recurrent_dropout 0.2,
    return_sequences) → NORM over (N, T, C) → LSTM(64, dropout 0.2, recurrent_dropout 0.2, last
    state) → NORM → Dense(32) → tanh → NORM → Dense(1) (logit)

The LSTM layers are :class:`~normbench.models.keras_lstm.KerasLSTM` (Keras' parameters, init and
dropout). The sequence norm gets the first LSTM's outputs channel-first, ``(N, C, T)``, with the
padding mask, so padded steps never enter a statistic; the other norms get ``(N, C)``. This
placement differs from the ``rnn`` model, whose norm sits inside the cell (BN-LSTM, LN-LSTM). For
a Keras ``LayerNormalization()`` on ``(N, T, C)`` (normalizes C at each step) use ``layer`` with
``per_position: true``; BLN's reference form is ``batch_layer``'s default. Weight normalization
(``weight``) reparameterizes the kernels of the LSTM before a sequence or state slot (both, per
output unit) and the dense layer before the dense slot; a left-out site keeps its layer plain.

Binary tasks: the authors' head is one logit with binary cross-entropy; here a binary dataset has
``num_classes`` 2 and the head two logits with cross-entropy. Both are the same model family:
softmax over (a, b) is sigmoid(a − b), so the two-logit head is the one-logit head
reparameterized (one more weight vector and bias, no difference in what it can express).

Input: with ``vocab_size`` set (default, the authors' 20000), integer token ids of shape ``(N,
T)`` or, as datasets store them, ``(N, 1, T)`` float32 holding whole numbers (``input_shape`` ``(1,
T)``); ids must lie in ``[0, vocab_size)``. With ``vocab_size: null``, float sequences ``(N, C,
T)`` (MNIST-1D and the like) enter through a Glorot-uniform ``Linear(C, embedding_dim)`` with zero
bias instead of the embedding. Masks ``(N, T)`` mark real steps (Keras pre-pads, so the last real
step of every sequence is the final one; any mask works).

Options (defaults): ``vocab_size`` 20000 (an integer, or null for float sequences);
``embedding_dim`` 512; ``hidden_sizes`` (128, 64) (one LSTM layer per entry, every one but the
last returns its sequence); ``dense_width`` 32; ``activation`` tanh (relu | sigmoid | tanh |
gelu); ``dropout`` 0.2 and ``recurrent_dropout`` 0.2 (per LSTM layer, in [0, 1)); ``norm_sites``
(sequence, state, dense): where a norm sits — after each sequence-returning LSTM, after the last
state, after the dense activation; a site left out has none; ``use_mask`` true: respect the
padding mask. The authors' Keras ``Embedding`` sets no ``mask_zero``, so their LSTMs read the
padding tokens as input; ``use_mask: false`` reproduces that.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from normbench.models.blocks import ACTIVATIONS, Feeding, NormFactory, apply_norm, build_norm, check_sequence_input
from normbench.models.keras_lstm import KerasLSTM
from normbench.options import (
    Owner,
    check_bool,
    check_choice,
    check_number,
    check_positive_int,
    check_positive_ints,
    optional,
    resolve_options,
)

NAME = "stacked_lstm"
OWNER = Owner("model", NAME)
NORM_SITES = ("dense", "sequence", "state")

DEFAULTS: dict[str, Any] = {
    "vocab_size": 20000,
    "embedding_dim": 512,
    "hidden_sizes": (128, 64),
    "dense_width": 32,
    "activation": "tanh",
    "dropout": 0.2,
    "recurrent_dropout": 0.2,
    "norm_sites": NORM_SITES,
    "use_mask": True,
}


class StackedLSTMClassifier(nn.Module):
    """Embedding (or input projection) → LSTMs with norms between → dense → norm → head."""

    def __init__(self, embed: nn.Module, layers: list[KerasLSTM], norms: dict[str, nn.ModuleList],
                 dense: nn.Linear, head: nn.Linear, config: dict[str, Any]) -> None:
        super().__init__()
        self.embed = embed
        self.layers = nn.ModuleList(layers)
        self.sequence_norms = norms["sequence"]  # one per sequence-returning layer, or empty
        self.state_norms = norms["state"]  # zero or one module
        self.dense_norms = norms["dense"]
        self.dense = dense
        self.activation = ACTIVATIONS[config["activation"]]()
        self.head = head
        self.config = config

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens ``(N, T)``/``(N, 1, T)`` or features ``(N, C, T)`` (mask ``(N, T)``) → logits ``(N, K)``."""
        seq, mask = self._embed(x, mask)
        if not self.config["use_mask"]:
            mask = None
        for k, layer in enumerate(self.layers[:-1]):
            seq, _ = layer(seq, mask)
            if self.sequence_norms:
                # channel-first (N, C, T) for the norm: statistics over the real steps only
                seq = apply_norm(self.sequence_norms[k], seq.transpose(1, 2), mask).transpose(1, 2)
        _, state = self.layers[-1](seq, mask)
        for norm in self.state_norms:
            state = norm(state)
        hidden = self.activation(self.dense(state))
        for norm in self.dense_norms:
            hidden = norm(hidden)
        return self.head(hidden)

    def _embed(self, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(N, T, embedding_dim)`` and the mask as bool, after checking shapes (and token ids)."""
        if isinstance(self.embed, nn.Linear):
            mask = check_sequence_input(x, mask, self.embed.in_features)
            return self.embed(x.transpose(1, 2)), mask
        ids = token_ids(x, self.embed.num_embeddings)
        if mask is not None:
            if tuple(mask.shape) != tuple(ids.shape):
                raise ValueError(
                    f"mask shape {tuple(mask.shape)} does not match tokens {tuple(ids.shape)}: expected (N, T)"
                )
            mask = mask.to(device=ids.device, dtype=torch.bool)
        return self.embed(ids), mask


def token_ids(x: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """int64 ids ``(N, T)`` from ``(N, T)`` or ``(N, 1, T)`` input; ``ValueError`` if not ids in range."""
    if x.dim() == 3 and x.shape[1] == 1:
        x = x[:, 0]
    if x.dim() != 2:
        raise ValueError(
            f"model {NAME!r} with vocab_size {vocab_size} needs token ids (N, T) or (N, 1, T); got shape "
            f"{tuple(x.shape)} (float sequences (N, C, T) need vocab_size: null)"
        )
    ids = x.long()
    if x.is_floating_point() and not torch.equal(ids.to(x.dtype), x):
        raise ValueError(
            f"model {NAME!r}: input holds non-integer values, not token ids; for float sequences set "
            "vocab_size: null"
        )
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ValueError(
            f"model {NAME!r}: token ids must lie in [0, vocab_size={vocab_size}); found "
            f"{int(ids.min())}..{int(ids.max())} (raise vocab_size to the dataset's vocabulary)"
        )
    return ids


def _check_sites(value: Any) -> tuple[str, ...]:
    """The norm sites as a tuple, each one of ``NORM_SITES`` (an empty list means no norm anywhere)."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(
            f"model {NAME!r}: option 'norm_sites' must be a list drawn from {', '.join(NORM_SITES)}; got {value!r}"
        )
    return tuple(check_choice(OWNER, "norm_sites", site, NORM_SITES) for site in value)


def _input_layer(config: dict[str, Any], input_shape: tuple[int, ...]) -> nn.Module:
    """Glorot-uniform ``Embedding(vocab, dim)`` for token ids, or ``Linear(C, dim)`` for float sequences."""
    dim, vocab = config["embedding_dim"], config["vocab_size"]
    if vocab is None:
        if len(input_shape) != 2:
            raise ValueError(f"model {NAME!r} needs a sequence input_shape (C, T); got {tuple(input_shape)!r}")
        layer: nn.Module = nn.Linear(input_shape[0], dim)
        nn.init.zeros_(layer.bias)
    else:
        if input_shape[:-1] not in ((), (1,)):
            raise ValueError(
                f"model {NAME!r} with vocab_size {vocab} needs token input_shape (1, T) or (T,); got "
                f"{tuple(input_shape)!r} (float sequences need vocab_size: null)"
            )
        layer = nn.Embedding(vocab, dim)
    nn.init.xavier_uniform_(layer.weight)
    return layer


def build_stacked_lstm(
    *, norm: NormFactory, input_shape: tuple[int, ...], num_classes: int, **options: Any
) -> StackedLSTMClassifier:
    """Build a ``stacked_lstm`` from validated options (see the module docstring for names and defaults)."""
    config = resolve_options(OWNER, options, DEFAULTS)
    config.update(
        vocab_size=optional(check_positive_int, OWNER, "vocab_size", config["vocab_size"]),
        embedding_dim=check_positive_int(OWNER, "embedding_dim", config["embedding_dim"]),
        hidden_sizes=check_positive_ints(OWNER, "hidden_sizes", config["hidden_sizes"]),
        dense_width=check_positive_int(OWNER, "dense_width", config["dense_width"]),
        activation=check_choice(OWNER, "activation", config["activation"], ACTIVATIONS),
        dropout=check_number(OWNER, "dropout", config["dropout"], low=0.0, high=1.0, high_open=True),
        recurrent_dropout=check_number(OWNER, "recurrent_dropout", config["recurrent_dropout"], low=0.0, high=1.0, high_open=True),
        norm_sites=_check_sites(config["norm_sites"]),
        use_mask=check_bool(OWNER, "use_mask", config["use_mask"]),
    )
    sites, hidden = config["norm_sites"], config["hidden_sizes"]

    # Construction order fixed (input, LSTMs, dense, head) and norms RNG-free (build_norm): one seed
    # gives the same non-norm weights whatever the norm.
    embed = _input_layer(config, input_shape)
    layers, size = [], config["embedding_dim"]
    for width in hidden:
        layers.append(KerasLSTM(size, width, config["dropout"], config["recurrent_dropout"]))
        size = width
    dense = nn.Linear(size, config["dense_width"])
    head = nn.Linear(config["dense_width"], num_classes)
    for linear in (dense, head):  # Keras Dense defaults
        nn.init.xavier_uniform_(linear.weight)
        nn.init.zeros_(linear.bias)
    # a norm slot after an LSTM is fed by its kernels (output units on axis 1); after the dense
    # activation, by the dense layer (what weight normalization reparameterizes)
    fed = [Feeding(layer, (("kernel", 1), ("recurrent_kernel", 1))) for layer in layers]
    norms = {
        "sequence": nn.ModuleList(build_norm(norm, w, fed[k]) for k, w in enumerate(hidden[:-1]))
        if "sequence" in sites else nn.ModuleList(),
        "state": nn.ModuleList([build_norm(norm, hidden[-1], fed[-1])] if "state" in sites else []),
        "dense": nn.ModuleList([build_norm(norm, config["dense_width"], Feeding.layer(dense))]
                               if "dense" in sites else []),
    }
    return StackedLSTMClassifier(embed, layers, norms, dense, head, config)
