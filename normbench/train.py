"""The training loop: one RunSpec in, one RunResult out, deterministic on CPU."""

from __future__ import annotations

import dataclasses
import functools
import math
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from normbench.batching import BatchOrder, ClassBatchOrder, Order, batch_order  # noqa: F401 (the orders, for callers)
from normbench.checkpoints import CheckpointSelection
from normbench.data import Dataset, load_dataset
from normbench.env import now_iso
from normbench.epochs import EpochTally
from normbench.flag_search import evaluate_flag_combinations
from normbench.lr_schedule import set_rate
from normbench.models import create_model
from normbench.norms import NormModule, create_norm
from normbench.probes import (
    ActivationInputCapture,
    ProbeConfig,
    ProbeRecorder,
    batch_statistics_accuracy,
    probe_batches,
    record_batch_stat_variance,
    record_grad_norms,
    record_percentiles,
    record_smoothness,
)
from normbench.run_errors import error_outcome
from normbench.spec import COMPLETED, DIVERGED, CurvePoint, EpochRecord, FlagRecord, RunResult, RunSpec, thaw_options

EVAL_CHUNK = 1024  # evaluation batch; eval-mode norms do not depend on it
# Regression tasks (the adding problem) report as "accuracy" the fraction of predictions within this
# absolute error of the target: normbench's convention, so one metric column serves every task.
REGRESSION_TOLERANCE = 0.04
_DATA_INIT_SALT = 0x1D1A  # the data-dependent init batch: its own stream, a function of the seed only
DATA_INIT_SAMPLES = 512  # training samples in the one forward pass of data-dependent initialization


def total_steps(spec: RunSpec, per_epoch: int) -> int:
    """Optimizer steps the budget allows: `steps`, `samples` // batch size, or `epochs` × the batch
    order's batches per epoch (full batches of the training set, or the fixed order's K)."""
    if spec.steps is not None:
        return spec.steps
    if spec.samples is not None:
        return max(1, spec.samples // spec.batch_size)
    return max(1, round(spec.epochs * per_epoch))


def build_model(spec: RunSpec, dataset: Dataset) -> torch.nn.Module:
    """The spec's model with its norm, initialised from the spec's seed (a `swap_norms` model is
    built from its options alone, then its norm layers are replaced: normbench.models.swapped)."""
    norm_factory = functools.partial(create_norm, spec.norm, **spec.norm_kwargs)
    torch.manual_seed(spec.seed)
    if spec.swap_norms:
        from normbench.models.swapped import build_swapped_model

        return build_swapped_model(spec.model, spec.model_kwargs, norm=spec.norm, norm_options=spec.norm_kwargs,
                                   **thaw_options(spec.swap_norms))[0]
    return create_model(
        spec.model,
        norm=norm_factory,
        input_shape=tuple(dataset.input_shape),
        num_classes=dataset.num_classes,
        **spec.model_kwargs,
    )


def build_optimizer(spec: RunSpec, params) -> torch.optim.Optimizer:
    """The spec's optimizer (sgd or adam) over `params`."""
    if spec.optimizer == "sgd":
        return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)
    if spec.optimizer == "adam":
        return torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay)
    raise ValueError(f"unknown optimizer {spec.optimizer!r}; allowed: sgd, adam")


def task_loss(task: str, output: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy for classification, mean squared error for regression (output (N, 1))."""
    if task == "regression":
        return F.mse_loss(output.float().squeeze(1), target, reduction=reduction)
    return F.cross_entropy(output.float(), target, reduction=reduction)


def correct_tensor(task: str, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Correct predictions as a 0-d tensor on the output's device (no host sync): argmax for classes,
    |error| < REGRESSION_TOLERANCE for regression."""
    if task == "regression":
        return ((output.detach().float().squeeze(1) - target).abs() < REGRESSION_TOLERANCE).sum()
    return (output.detach().argmax(dim=1) == target).sum()


def correct_count(task: str, output: torch.Tensor, target: torch.Tensor) -> int:
    """Correct predictions: argmax for classes, |error| < REGRESSION_TOLERANCE for regression."""
    return int(correct_tensor(task, output, target).item())


def start_epoch(model: torch.nn.Module) -> None:
    """Epoch-boundary bookkeeping some norms define (e.g. BLN resets its population statistics):
    every norm's own `on_epoch_start` hook."""
    for module in model.modules():
        if isinstance(module, NormModule):
            module.on_epoch_start()


@torch.no_grad()
def initialize_from_data(model: torch.nn.Module, data: Dataset, seed: int) -> None:
    """Data-dependent initialization some norms define (weight norm, Salimans & Kingma 2016, §3):
    every norm whose `prepare_data_init` hook arms itself sees one eval-mode forward pass of
    DATA_INIT_SAMPLES training samples (all when fewer), drawn from a generator of the seed alone.

    Eval mode draws no random numbers (no dropout), so the global RNG, hence pairing, is unchanged.
    """
    armed = [module.prepare_data_init() for module in model.modules() if isinstance(module, NormModule)]
    if not any(armed):
        return
    generator = torch.Generator().manual_seed(seed * 1_000_003 + _DATA_INIT_SALT)
    n_train = len(data.x_train)
    idx = torch.randperm(n_train, generator=generator)[: min(n_train, DATA_INIT_SAMPLES)].to(data.x_train.device)
    mask = None if data.mask_train is None else data.mask_train[idx]
    was_training = model.training
    model.eval()
    _forward(model, data.x_train[idx], mask)
    model.train(was_training)


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None,
             task: str = "classification"):
    """Mean loss and accuracy of `model` in eval mode on (x, y)."""
    was_training = model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    for start in range(0, len(x), EVAL_CHUNK):
        xb, yb = x[start : start + EVAL_CHUNK], y[start : start + EVAL_CHUNK]
        mb = None if mask is None else mask[start : start + EVAL_CHUNK]
        output = _forward(model, xb, mb)
        loss_sum += task_loss(task, output, yb, reduction="sum").item()
        correct += correct_count(task, output, yb)
    model.train(was_training)
    return loss_sum / len(x), correct / len(x)


def run_training(spec: RunSpec, dataset: Dataset | None = None) -> RunResult:
    """Train one spec to its budget; never raises for a run's own failure (outcome says it).

    A run that raises keeps the curve points it recorded before the error.
    """
    started_at = now_iso()
    curve: list[CurvePoint] = []
    step_times: list[float] = []
    try:
        run = prepare_run(spec, dataset)
        for point, times in training_points(run):
            curve.append(point)
            step_times += times
            if not _is_finite(point):
                if point.step == 0:
                    return _stopped_result(spec, curve, DIVERGED, "loss is not finite at initialisation", started_at)
                error = f"loss became NaN/inf at or before step {point.step} (lr {spec.lr:g})"
                return _final_result(run, curve, step_times, DIVERGED, error, started_at)
            run.selection.offer(point, run.model)
        selected = run.selection.restore(run.model)
        flags = search_inference_flags(run)
    except Exception as exc:  # a run's error is a result to store, not a crash of the suite
        outcome, error = error_outcome(exc, spec.plugin_provenance)
        return _stopped_result(spec, curve, outcome, error, started_at)
    return _final_result(run, curve, step_times, COMPLETED, "", started_at, selected=selected, flags=flags)


@dataclass
class TrainingRun:
    """What one run trains with: its data on the device, model, optimizer, batch order and probes."""

    spec: RunSpec
    device: torch.device
    data: Dataset  # tensors on `device`
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    order: Order
    n_steps: int
    probes: ProbeConfig
    recorder: ProbeRecorder
    capture: ActivationInputCapture | None  # the percentiles probe's hook, when enabled
    sync: Callable[[], None] | None  # waits for queued GPU work, so that step times are real
    selection: CheckpointSelection
    epochs: list[EpochRecord] = dataclasses.field(default_factory=list)  # filled as epochs end

    @property
    def task(self) -> str:
        """`classification` or `regression` (the dataset's)."""
        return self.data.task


def prepare_run(spec: RunSpec, dataset: Dataset | None = None) -> TrainingRun:
    """Load the data (unless given) onto the spec's device and build the model, optimizer and probes."""
    device = torch.device(spec.device)
    data = dataset if dataset is not None else load_dataset(spec.dataset, **spec.dataset_kwargs)
    data = _on_device(data, device)
    model = build_model(spec, data).to(device)
    initialize_from_data(model, data, spec.seed)
    optimizer = build_optimizer(spec, model.parameters())
    order = batch_order(spec.batching_kwargs, data.y_train, spec.batch_size, spec.seed, data.task)
    probes = ProbeConfig.from_options(spec.probe_kwargs) if spec.probes else ProbeConfig()
    capture = (
        ActivationInputCapture(model, probes.percentile_layer, probes.percentile_unit) if probes.percentiles else None
    )
    return TrainingRun(
        spec=spec, device=device, data=data, model=model, optimizer=optimizer, order=order,
        n_steps=total_steps(spec, order.per_epoch), probes=probes, recorder=ProbeRecorder(), capture=capture,
        sync=torch.cuda.synchronize if device.type == "cuda" else None, selection=CheckpointSelection(spec.select),
    )


def _on_device(data: Dataset, device: torch.device) -> Dataset:
    """The dataset with its tensors (and masks) on `device`."""
    def move(tensor: torch.Tensor | None) -> torch.Tensor | None:
        return None if tensor is None else tensor.to(device)

    return dataclasses.replace(
        data, x_train=move(data.x_train), y_train=move(data.y_train), x_test=move(data.x_test),
        y_test=move(data.y_test), mask_train=move(data.mask_train), mask_test=move(data.mask_test),
        x_val=move(data.x_val), y_val=move(data.y_val), mask_val=move(data.mask_val),
    )


def training_points(run: TrainingRun) -> Iterator[tuple[CurvePoint, list[float]]]:
    """Train to the budget, yielding each evaluation point (step 0 first) with the step times since
    the previous one. The caller stops early by not asking for more (e.g. when the loss diverged)."""
    order = run.order
    run.model.train()
    yield evaluate_point(run, 0, float("nan"), 0.0), []
    train_time = 0.0
    loss_sum, losses, step_times = torch.zeros((), device=run.device), 0, []
    epoch = EpochTally(run.device)
    for step in range(1, run.n_steps + 1):
        epoch_before = order.epoch
        idx = order.next().to(run.device)
        if order.epoch > 1 and order.epoch != epoch_before:
            start_epoch(run.model)
        set_rate(run.optimizer, run.spec.lr, run.spec.lr_schedule, step, run.n_steps)
        loss, correct, elapsed = train_step(run, step, idx)
        step_times.append(elapsed)
        train_time += elapsed
        loss_sum += loss
        losses += 1
        epoch.add(loss, correct, len(idx))
        epoch_ends = step % order.per_epoch == 0
        if epoch_ends or step == run.n_steps:
            run.epochs.append(epoch.record((step - 1) // order.per_epoch + 1))
            epoch = EpochTally(run.device)
        if _is_evaluation_step(run, step, epoch_ends):
            if run.probes.grad_norms:
                record_grad_norms(run.recorder, step, run.model)
            yield evaluate_point(run, step, (loss_sum / losses).item(), train_time), step_times
            loss_sum, losses, step_times = torch.zeros((), device=run.device), 0, []


def _is_evaluation_step(run: TrainingRun, step: int, epoch_ends: bool) -> bool:
    """Every `eval_every` steps, or every epoch end with `eval_per_epoch`; always the last step."""
    if step == run.n_steps:
        return True
    return epoch_ends if run.spec.eval_per_epoch else step % run.spec.eval_every == 0


def train_step(run: TrainingRun, step: int, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """One optimizer step on the mini-batch `idx`: (its loss, detached; its correct predictions as a
    tensor; seconds spent). The seconds cover forward, loss, zero_grad, backward and the optimizer
    step (and a device sync): the training step a hand-written loop would time. Drawing the batch,
    probes and counting correct predictions are bookkeeping and stay outside."""
    data, model = run.data, run.model
    xb, yb = data.x_train[idx], data.y_train[idx]
    mb = None if data.mask_train is None else data.mask_train[idx]
    start = time.perf_counter()
    output = _forward(model, xb, mb)
    loss = task_loss(run.task, output, yb)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if run.probes.smoothness and step % run.probes.smoothness_every == 0:
        # Measured before the update, outside the step timer, and undone exactly afterwards.
        paused = time.perf_counter()

        def batch_loss() -> torch.Tensor:
            return task_loss(run.task, _forward(model, xb, mb), yb)

        record_smoothness(run.recorder, step, model, batch_loss, run.optimizer.param_groups[0]["lr"],
                          run.probes.smoothness_step_scales)
        start += time.perf_counter() - paused
    run.optimizer.step()
    if run.sync is not None:
        run.sync()
    seconds = time.perf_counter() - start
    return loss.detach(), correct_tensor(run.task, output, yb), seconds


def _forward(model: torch.nn.Module, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return model(x) if mask is None else model(x, mask=mask)


def evaluate_point(run: TrainingRun, step: int, train_loss: float, train_time: float) -> CurvePoint:
    """Evaluate on the test set (recording the probes due at evaluation points) and leave the model
    in training mode. `train_loss` is the mean since the previous point (NaN at step 0)."""
    data, model = run.data, run.model
    if run.capture is not None:
        run.capture.active = True
    test_loss, test_acc = evaluate(model, data.x_test, data.y_test, data.mask_test, run.task)
    if run.capture is not None:
        run.capture.active = False
        record_percentiles(run.recorder, step, run.capture.collect())
    if math.isfinite(test_loss):
        _record_evaluation_probes(run, step, test_acc)
    val_loss, val_acc = evaluate_split(run, "val") if data.x_val is not None else (math.nan, math.nan)
    model.train()
    return CurvePoint(step=step, epoch=step / run.order.per_epoch, samples_seen=step * run.spec.batch_size,
                      train_loss=train_loss, test_loss=test_loss, test_accuracy=test_acc, wall_time_s=train_time,
                      val_loss=val_loss, val_accuracy=val_acc)


def _record_evaluation_probes(run: TrainingRun, step: int, test_acc: float) -> None:
    """The probes due at an evaluation point with a finite test loss: the train/eval gap and the
    fluctuation of batch statistics across mini-batches."""
    data, model = run.data, run.model
    if run.probes.train_eval_gap:
        count_correct = functools.partial(correct_count, run.task)
        batch_acc = batch_statistics_accuracy(model, data.x_test, data.y_test, run.spec.batch_size, count_correct,
                                              data.mask_test)
        run.recorder.add(step, "train_eval_gap", "batch_stats_accuracy", batch_acc)
        run.recorder.add(step, "train_eval_gap", "eval_accuracy", test_acc)
    if run.probes.batch_stat_variance:
        batches = probe_batches(data.x_train, data.mask_train, run.spec.batch_size,
                                run.probes.batch_stat_variance_batches, seed=run.spec.seed * 1_000_003 + step)
        record_batch_stat_variance(run.recorder, step, model, batches, run.probes.batch_stat_variance_per_site)


def evaluate_split(run: TrainingRun, split: str) -> tuple[float, float]:
    """Eval-mode (loss, accuracy) of the run's model on its ``"val"`` or ``"test"`` split."""
    data = run.data
    x, y, mask = getattr(data, f"x_{split}"), getattr(data, f"y_{split}"), getattr(data, f"mask_{split}")
    return evaluate(run.model, x, y, mask, run.task)


def search_inference_flags(run: TrainingRun) -> list[FlagRecord]:
    """A BLN model under all 16 inference-flag combinations (normbench/flag_search.py); [] otherwise."""
    rows = evaluate_flag_combinations(run.model, functools.partial(evaluate_split, run),
                                      has_validation=run.data.x_val is not None)
    run.model.train()
    return rows


def _is_finite(point: CurvePoint) -> bool:
    """Whether the run may go on: finite losses (no training loss exists yet at step 0)."""
    return (point.step == 0 or math.isfinite(point.train_loss)) and math.isfinite(point.test_loss)


def _final_result(run: TrainingRun, curve: list[CurvePoint], step_times: list[float], outcome: str, error: str,
                  started_at: str, *, selected: CurvePoint | None = None,
                  flags: list[FlagRecord] | None = None) -> RunResult:
    """The result of a run that trained: its curve, epochs, probes, timings, and final metrics (from the
    selected checkpoint, normbench/checkpoints.py) when it completed."""
    last = curve[-1]
    completed = outcome == COMPLETED
    final = selected or last
    return RunResult(
        spec=run.spec, outcome=outcome, error=error, curve=curve, steps_done=last.step, probes=run.recorder.rows,
        epoch_records=run.epochs, inference_flags=flags or [], selected_step=final.step if completed else None,
        final_train_loss=last.train_loss if math.isfinite(last.train_loss) else None,
        final_test_loss=final.test_loss if completed else None,
        final_test_accuracy=final.test_accuracy if completed else None,
        step_time_median_s=statistics.median(step_times) if step_times else None,
        wall_time_s=last.wall_time_s, started_at=started_at, finished_at=now_iso(),
    )


def _stopped_result(spec: RunSpec, curve: list[CurvePoint], outcome: str, error: str, started_at: str) -> RunResult:
    """The result of a run that stopped before training (diverged at initialisation) or raised:
    the curve points recorded so far and the steps done, no final metrics."""
    return RunResult(spec=spec, outcome=outcome, error=error, curve=curve, steps_done=curve[-1].step if curve else 0,
                     started_at=started_at, finished_at=now_iso())
