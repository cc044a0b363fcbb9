"""Diagnostic probes recorded at evaluation points; each costs nothing unless a suite enables it.

- `percentiles`: 15th/50th/85th percentiles of the input to one activation unit over the test set
  (Ioffe & Szegedy 2015, Fig. 1b-c: "the evolution of input distributions to a typical sigmoid").
- `train_eval_gap`: test accuracy with batch statistics (train-mode norms, mini-batches of the
  training size, running estimates untouched) next to the usual eval-mode accuracy.
- `grad_norms`: L2 norm of each parameterised layer's weight gradient on the step just taken.
- `smoothness`: loss-landscape smoothness along the gradient (Santurkar et al. 2018, §3.1): from
  the current parameters θ and mini-batch gradient g, move to θ − η·g for several step sizes η and
  record the range of the loss ("loss landscape"), the largest change of the gradient ("gradient
  predictiveness", max ‖∇L(θ − ηg) − g‖) and the effective β-smoothness
  (max ‖∇L(θ − ηg) − g‖ / ‖η g‖). Parameters and norm buffers are restored afterwards.
- `batch_stat_variance`: how much the batch statistics a BN layer would use fluctuate from one
  mini-batch to the next - the quantity Shen et al. 2020 (PowerNorm, §3, Fig. 2) blame for BN's
  failure in Transformers on padded text. At an evaluation point, `batches` training mini-batches
  of the run's batch size (drawn by a generator seeded by the run seed and the step, so the
  training order is untouched) pass through a copy of the model in training mode; at every norm
  site (every norm module, `none` included, so a model without norm shows what BN would see
  there) the per-channel mean μ_b and variance σ²_b of the site's input over its valid positions
  are taken, and across the batches: `mean_fluctuation` = std_b(μ_b) / sqrt(mean_b σ²_b) and
  `var_fluctuation` = std_b(σ²_b) / mean_b σ²_b (scale-free; for i.i.d. normal values and m
  values per statistic about 1/√(m−1) and √(2/(m−1))), averaged over channels, calls (a recurrent
  cell's site is called once per step) and sites; `per_site: true` also records each site's.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

PERCENTILES = (15.0, 50.0, 85.0)


@dataclass(frozen=True)
class ProbeConfig:
    """Which probes a run records, with their settings (all off by default)."""

    percentiles: bool = False
    percentile_layer: int = -1  # index into the model's activation slots, in forward order
    percentile_unit: int = 0  # unit (feature or channel) whose input is tracked
    train_eval_gap: bool = False
    grad_norms: bool = False
    smoothness: bool = False
    smoothness_every: int = 100  # steps between smoothness measurements
    smoothness_step_scales: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)  # η as multiples of the lr
    batch_stat_variance: bool = False
    batch_stat_variance_batches: int = 8  # mini-batches whose statistics are compared
    batch_stat_variance_per_site: bool = False  # also one value per norm site

    @property
    def any(self) -> bool:
        """Whether any probe is on."""
        return (self.percentiles or self.train_eval_gap or self.grad_norms or self.smoothness
                or self.batch_stat_variance)

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> "ProbeConfig":
        """Build from the suite's `probes:` mapping (already schema-validated)."""
        prefixes = {"percentiles": "percentile", "smoothness": "smoothness",
                    "batch_stat_variance": "batch_stat_variance"}
        values: dict[str, Any] = {}
        for name, setting in options.items():
            if isinstance(setting, dict):
                values[name] = True
                for key, value in setting.items():
                    values[f"{prefixes[name]}_{key}"] = tuple(value) if isinstance(value, list) else value
            else:
                values[name] = bool(setting)
        return cls(**values)


@dataclass
class ProbeRecorder:
    """Collects probe rows `(step, probe, key, value)` for one run."""

    rows: list[tuple[int, str, str, float]] = field(default_factory=list)

    def add(self, step: int, probe: str, key: str, value: float) -> None:
        """Record one value."""
        self.rows.append((step, probe, key, float(value)))


def activation_slots(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The activation modules that follow (or precede) a norm, in forward order."""
    from normbench.models.blocks import NormActivation

    return [m.activation for m in model.modules() if isinstance(m, NormActivation)]


class ActivationInputCapture:
    """Forward pre-hook capturing one unit's input to one activation module (eval passes only)."""

    def __init__(self, model: torch.nn.Module, layer: int, unit: int):
        slots = activation_slots(model)
        if not slots:
            raise ValueError("the percentiles probe needs a model with norm/activation blocks (mlp, cnn2d, cnn1d)")
        try:
            self.module = slots[layer]
        except IndexError:
            raise ValueError(f"percentile_layer {layer} out of range: the model has {len(slots)} activation slots") from None
        self.unit = unit
        self.values: list[torch.Tensor] = []
        self.active = False
        self.module.register_forward_pre_hook(self._hook)  # lives as long as the run's model

    def _hook(self, module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        if self.active:
            x = inputs[0].detach()
            if self.unit >= x.shape[1]:
                raise ValueError(f"percentile_unit {self.unit} out of range: the layer has {x.shape[1]} units")
            self.values.append(x[:, self.unit].reshape(-1).float().cpu())

    def collect(self) -> torch.Tensor:
        """The values captured since the last call, as one flat tensor (then forgotten)."""
        values = torch.cat(self.values) if self.values else torch.empty(0)
        self.values = []
        return values


def record_percentiles(recorder: ProbeRecorder, step: int, values: torch.Tensor) -> None:
    """15/50/85th percentiles (linear interpolation, as numpy's default) of captured inputs."""
    if values.numel() == 0:
        return
    q = torch.quantile(values.double(), torch.tensor(PERCENTILES, dtype=torch.double) / 100)
    for p, v in zip(PERCENTILES, q.tolist()):
        recorder.add(step, "percentiles", f"p{int(p)}", v)


@torch.no_grad()
def batch_statistics_accuracy(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
    correct_count: Callable[[torch.Tensor, torch.Tensor], int], mask: torch.Tensor | None = None,
) -> float:
    """Test accuracy with norms in train mode over full mini-batches of `batch_size`.

    Runs on a deep copy so running estimates and the model's mode stay untouched; dropout is
    disabled so that only the norms' statistics differ from eval mode. The incomplete last chunk is
    dropped (like training batches); with fewer test samples than one batch, one batch of all.
    """
    probe = copy.deepcopy(model)
    probe.train()
    for module in probe.modules():
        if isinstance(module, torch.nn.Dropout):
            module.eval()
    size = min(batch_size, len(x))
    correct, seen = 0, 0
    for start in range(0, len(x) - size + 1, size):
        xb, yb = x[start : start + size], y[start : start + size]
        mb = None if mask is None else mask[start : start + size]
        output = probe(xb) if mb is None else probe(xb, mask=mb)
        correct += correct_count(output, yb)
        seen += len(yb)
    return correct / seen


def record_grad_norms(recorder: ProbeRecorder, step: int, model: torch.nn.Module) -> None:
    """L2 norm of every weight gradient (biases and norm affine parameters excluded); a weight-normalized
    weight reports its direction v's gradient under the layer's name (g, one scale per unit, is left out)."""
    for name, param in model.named_parameters():
        name = name.replace(".parametrizations.weight.original1", ".weight")
        if param.grad is None or not name.endswith("weight") or param.dim() < 2:
            continue
        recorder.add(step, "grad_norms", name.removesuffix(".weight"), param.grad.detach().norm().item())


def record_smoothness(
    recorder: ProbeRecorder, step: int, model: torch.nn.Module, loss_fn: Callable[[], torch.Tensor],
    lr: float, step_scales: tuple[float, ...],
) -> None:
    """Santurkar et al. 2018 loss-landscape measurements along the current gradient.

    `loss_fn` computes the training loss on the current mini-batch. Parameters, gradients and
    norm buffers (running statistics) are restored exactly afterwards.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    saved_params = [p.detach().clone() for p in params]
    saved_grads = [None if p.grad is None else p.grad.detach().clone() for p in params]
    saved_buffers = {k: v.detach().clone() for k, v in model.state_dict().items() if k not in dict(model.named_parameters())}
    try:
        model.zero_grad(set_to_none=True)
        base_loss = loss_fn()
        base_grads = torch.autograd.grad(base_loss, params, allow_unused=True)
        g = [torch.zeros_like(p) if gr is None else gr.detach() for p, gr in zip(params, base_grads)]
        g_norm = torch.sqrt(sum((t.double() ** 2).sum() for t in g)).item()
        losses, grad_changes, betas = [base_loss.item()], [], []
        for scale in step_scales:
            eta = scale * lr
            with torch.no_grad():
                for p, p0, gi in zip(params, saved_params, g):
                    p.copy_(p0 - eta * gi)
            loss = loss_fn()
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            change = torch.sqrt(sum(
                ((torch.zeros_like(p) if gr is None else gr.detach()) - gi).double().pow(2).sum()
                for p, gr, gi in zip(params, grads, g)
            )).item()
            losses.append(loss.item())
            grad_changes.append(change)
            if g_norm > 0:
                betas.append(change / (eta * g_norm))
        recorder.add(step, "smoothness", "loss_range", max(losses) - min(losses))
        recorder.add(step, "smoothness", "gradient_predictiveness", max(grad_changes))
        if betas:
            recorder.add(step, "smoothness", "beta_smoothness", max(betas))
    finally:
        with torch.no_grad():
            for p, p0, g0 in zip(params, saved_params, saved_grads):
                p.copy_(p0)
                p.grad = g0
            model.load_state_dict({**model.state_dict(), **saved_buffers})


def probe_batches(
    x: torch.Tensor, mask: torch.Tensor | None, batch_size: int, count: int, seed: int,
) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """`count` mini-batches of `batch_size` rows of `x` (and `mask`), each a fresh random draw from a
    generator seeded by `seed` alone (never the training order's)."""
    generator = torch.Generator().manual_seed(seed)
    size = min(batch_size, len(x))
    batches = []
    for _ in range(count):
        index = torch.randperm(len(x), generator=generator)[:size].to(x.device)
        batches.append((x[index], None if mask is None else mask[index]))
    return batches


def site_moments(x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (biased) variance of a channel-first input over its valid positions:
    what BN normalizes that input with."""
    values = x.detach().double().transpose(0, 1).reshape(x.shape[1], -1)  # (C, N·spatial)
    if mask is not None:
        values = values[:, mask.reshape(-1).to(torch.bool)]
    return values.mean(dim=1), values.var(dim=1, unbiased=False)


@torch.no_grad()
def batch_statistic_fluctuation(
    model: torch.nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor | None]], per_site: bool = False,
) -> dict[str, float]:
    """`mean_fluctuation` and `var_fluctuation` (see the module docstring) of every norm site's batch
    statistics across `batches`, averaged over sites, and per site (`<path>.…`) with `per_site`.

    Runs a deep copy in training mode (dropout off), so the model, its running estimates and the
    global RNG stay untouched. Channels whose variance is 0 in every batch are left out.
    """
    from normbench.norms import NormModule

    probe = copy.deepcopy(model)
    probe.train()
    calls: dict[str, list[list[tuple[torch.Tensor, torch.Tensor]]]] = {}
    for path, module in probe.named_modules():
        if isinstance(module, torch.nn.Dropout):
            module.eval()
        if isinstance(module, NormModule):
            calls[path] = []
            module.register_forward_pre_hook(_moment_hook(calls[path]), with_kwargs=True)
    for x, mask in batches:
        for seen in calls.values():
            seen.append([])
        probe(x) if mask is None else probe(x, mask=mask)
    out: dict[str, float] = {}
    per_metric: dict[str, list[float]] = {"mean_fluctuation": [], "var_fluctuation": []}
    for path, seen in calls.items():
        values = _site_fluctuation(seen)
        if values is None:
            continue
        for metric, value in values.items():
            per_metric[metric].append(value)
            if per_site:
                out[f"{path}.{metric}"] = value
    for metric, values in per_metric.items():
        if values:
            out[metric] = sum(values) / len(values)
    return out


def _moment_hook(store: list[list[tuple[torch.Tensor, torch.Tensor]]]) -> Callable[..., None]:
    """A forward pre-hook appending the input's per-channel moments to the current batch's list."""
    def hook(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        mask = kwargs.get("mask", args[1] if len(args) > 1 else None)
        store[-1].append(site_moments(args[0], mask))
    return hook


def _site_fluctuation(seen: list[list[tuple[torch.Tensor, torch.Tensor]]]) -> dict[str, float] | None:
    """Across batches (the outer list), the channel- and call-averaged fluctuations; None if unseen."""
    n_calls = min(len(batch) for batch in seen) if seen else 0
    if len(seen) < 2 or n_calls == 0:
        return None
    means = torch.stack([torch.stack([m for m, _ in batch[:n_calls]]) for batch in seen])  # (B, calls, C)
    variances = torch.stack([torch.stack([v for _, v in batch[:n_calls]]) for batch in seen])
    average_variance = variances.mean(dim=0)
    live = average_variance > 0
    if not bool(live.any()):
        return None
    mean_fluctuation = means.std(dim=0)[live] / average_variance[live].sqrt()
    var_fluctuation = variances.std(dim=0)[live] / average_variance[live]
    return {"mean_fluctuation": float(mean_fluctuation.mean()), "var_fluctuation": float(var_fluctuation.mean())}


def record_batch_stat_variance(
    recorder: ProbeRecorder, step: int, model: torch.nn.Module,
    batches: list[tuple[torch.Tensor, torch.Tensor | None]], per_site: bool,
) -> None:
    """Record :func:`batch_statistic_fluctuation` at `step`."""
    for key, value in batch_statistic_fluctuation(model, batches, per_site).items():
        recorder.add(step, "batch_stat_variance", key, value)
