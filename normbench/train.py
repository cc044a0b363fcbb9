"""The training loop: one RunSpec in, one RunResult out, deterministic on CPU."""

from __future__ import annotations

import functools
import math
import statistics
import time
import traceback

import torch
import torch.nn.functional as F

from normbench.data import Dataset, load_dataset
from normbench.env import now_iso
from normbench.models import create_model
from normbench.norms import NormModule, NormUndefinedError, create_norm
from normbench.probes import (
    ActivationInputCapture,
    ProbeConfig,
    ProbeRecorder,
    batch_statistics_accuracy,
    record_grad_norms,
    record_percentiles,
    record_smoothness,
)
from normbench.spec import (
    COMPLETED,
    DIVERGED,
    FAILED,
    UNDEFINED,
    CurvePoint,
    RunResult,
    RunSpec,
)

EVAL_CHUNK = 1024  # evaluation batch; eval-mode norms do not depend on it
# Regression tasks (the adding problem) report as "accuracy" the fraction of predictions within this
# absolute error of the target: normbench's convention, so one metric column serves every task.
REGRESSION_TOLERANCE = 0.04
_DATA_ORDER_SALT = 0x5EED  # the data order generator differs from the init stream yet depends on the seed only


def total_steps(spec: RunSpec, n_train: int) -> int:
    """Optimizer steps the budget allows: `steps`, or `epochs` × full batches per epoch."""
    if spec.steps is not None:
        return spec.steps
    if spec.samples is not None:
        return max(1, spec.samples // spec.batch_size)
    per_epoch = n_train // spec.batch_size
    return max(1, round(spec.epochs * per_epoch))


def build_model(spec: RunSpec, dataset: Dataset) -> torch.nn.Module:
    """The spec's model with its norm, initialised from the spec's seed."""
    norm_factory = functools.partial(create_norm, spec.norm, **spec.norm_kwargs)
    torch.manual_seed(spec.seed)
    return create_model(
        spec.model,
        norm=norm_factory,
        input_shape=tuple(dataset.input_shape),
        num_classes=dataset.num_classes,
        **spec.model_kwargs,
    )


def build_optimizer(spec: RunSpec, params) -> torch.optim.Optimizer:
    if spec.optimizer == "sgd":
        return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)
    if spec.optimizer == "adam":
        return torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay)
    raise ValueError(f"unknown optimizer {spec.optimizer!r}; allowed: sgd, adam")


class BatchOrder:
    """Mini-batch indices: a fresh seeded permutation per epoch, incomplete last batch dropped.

    Dropping the remainder keeps every training batch the declared size, which batch-statistic
    norms need for the comparison to mean what it says.
    """

    def __init__(self, n_train: int, batch_size: int, seed: int):
        self.n_train = n_train
        self.batch_size = batch_size
        self.per_epoch = n_train // batch_size
        self._generator = torch.Generator().manual_seed(seed * 1_000_003 + _DATA_ORDER_SALT)
        self._perm = torch.empty(0, dtype=torch.long)
        self._position = 0
        self.epoch = 0  # epochs started so far (1 after the first batch)

    def next(self) -> torch.Tensor:
        if self._position + self.batch_size > len(self._perm) or len(self._perm) == 0:
            self._perm = torch.randperm(self.n_train, generator=self._generator)
            self._position = 0
            self.epoch += 1
        batch = self._perm[self._position : self._position + self.batch_size]
        self._position += self.batch_size
        return batch


def task_loss(task: str, output: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy for classification, mean squared error for regression (output (N, 1))."""
    if task == "regression":
        return F.mse_loss(output.float().squeeze(1), target, reduction=reduction)
    return F.cross_entropy(output.float(), target, reduction=reduction)


def correct_count(task: str, output: torch.Tensor, target: torch.Tensor) -> int:
    """Correct predictions: argmax for classes, |error| < REGRESSION_TOLERANCE for regression."""
    if task == "regression":
        return int(((output.float().squeeze(1) - target).abs() < REGRESSION_TOLERANCE).sum().item())
    return int((output.argmax(dim=1) == target).sum().item())


def start_epoch(model: torch.nn.Module) -> None:
    """Epoch-boundary bookkeeping some norms define (e.g. BLN resets its population statistics):
    every norm's own `on_epoch_start` hook."""
    for module in model.modules():
        if isinstance(module, NormModule):
            module.on_epoch_start()


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
        output = model(xb) if mb is None else model(xb, mask=mb)
        loss_sum += task_loss(task, output, yb, reduction="sum").item()
        correct += correct_count(task, output, yb)
    model.train(was_training)
    return loss_sum / len(x), correct / len(x)


def run_training(spec: RunSpec, dataset: Dataset | None = None) -> RunResult:
    """Train one spec to its budget; never raises for a run's own failure (outcome says it)."""
    result = RunResult(spec=spec, outcome=COMPLETED, started_at=now_iso())
    try:
        _train(spec, dataset, result)
    except NormUndefinedError as exc:
        result.outcome, result.error = UNDEFINED, str(exc)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # a run's error is a result to store, not a crash of the suite
        result.outcome = FAILED
        result.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
    result.finished_at = now_iso()
    return result


def _train(spec: RunSpec, dataset: Dataset | None, result: RunResult) -> None:
    device = torch.device(spec.device)
    data = dataset if dataset is not None else load_dataset(spec.dataset, **spec.dataset_kwargs)
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    x_test, y_test = data.x_test.to(device), data.y_test.to(device)
    m_train = None if data.mask_train is None else data.mask_train.to(device)
    m_test = None if data.mask_test is None else data.mask_test.to(device)

    model = build_model(spec, data).to(device)
    optimizer = build_optimizer(spec, model.parameters())
    order = BatchOrder(len(x_train), spec.batch_size, spec.seed)
    n_steps = total_steps(spec, len(x_train))
    task = getattr(data, "task", "classification")
    sync = torch.cuda.synchronize if device.type == "cuda" else None

    probes = ProbeConfig.from_options(spec.probe_kwargs) if spec.probes else ProbeConfig()
    recorder = ProbeRecorder()
    capture = (
        ActivationInputCapture(model, probes.percentile_layer, probes.percentile_unit) if probes.percentiles else None
    )
    count_correct = functools.partial(correct_count, task)

    step_times: list[float] = []
    train_time = 0.0
    loss_sum = torch.zeros((), device=device)
    losses_since_eval = 0

    def record(step: int) -> bool:
        """Evaluate and append a curve point; False when the run has diverged."""
        nonlocal loss_sum, losses_since_eval
        train_loss = (loss_sum / losses_since_eval).item() if losses_since_eval else float("nan")
        if capture is not None:
            capture.active = True
        test_loss, test_acc = evaluate(model, x_test, y_test, m_test, task)
        if capture is not None:
            capture.active = False
            record_percentiles(recorder, step, capture.collect())
        if probes.train_eval_gap and math.isfinite(test_loss):
            batch_acc = batch_statistics_accuracy(model, x_test, y_test, spec.batch_size, count_correct, m_test)
            recorder.add(step, "train_eval_gap", "batch_stats_accuracy", batch_acc)
            recorder.add(step, "train_eval_gap", "eval_accuracy", test_acc)
        model.train()
        result.curve.append(
            CurvePoint(step=step, epoch=step / order.per_epoch, samples_seen=step * spec.batch_size,
                       train_loss=train_loss, test_loss=test_loss, test_accuracy=test_acc, wall_time_s=train_time)
        )
        loss_sum = torch.zeros((), device=device)
        losses_since_eval = 0
        return (step == 0 or math.isfinite(train_loss)) and math.isfinite(test_loss)

    model.train()
    if not record(0):
        result.outcome, result.error = DIVERGED, "loss is not finite at initialisation"
        return
    for step in range(1, n_steps + 1):
        epoch_before = order.epoch
        idx = order.next().to(device)
        if order.epoch > 1 and order.epoch != epoch_before:
            start_epoch(model)
        xb, yb = x_train[idx], y_train[idx]
        mb = None if m_train is None else m_train[idx]
        start = time.perf_counter()
        logits = model(xb) if mb is None else model(xb, mask=mb)
        loss = task_loss(task, logits, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if probes.smoothness and step % probes.smoothness_every == 0:
            # Measured before the update, outside the step timer, and undone exactly afterwards.
            paused = time.perf_counter()
            batch_loss = (lambda: task_loss(task, model(xb) if mb is None else model(xb, mask=mb), yb))
            record_smoothness(recorder, step, model, batch_loss, spec.lr, probes.smoothness_step_scales)
            start += time.perf_counter() - paused
        optimizer.step()
        if sync is not None:
            sync()
        elapsed = time.perf_counter() - start
        step_times.append(elapsed)
        train_time += elapsed
        loss_sum += loss.detach()
        losses_since_eval += 1
        if step % spec.eval_every == 0 or step == n_steps:
            if probes.grad_norms:
                record_grad_norms(recorder, step, model)
            finite = record(step)
            result.steps_done = step
            if not finite:
                result.outcome = DIVERGED
                result.error = f"loss became NaN/inf at or before step {step} (lr {spec.lr:g})"
                break

    result.probes = recorder.rows
    last = result.curve[-1]
    result.final_train_loss = last.train_loss if math.isfinite(last.train_loss) else None
    if result.outcome == COMPLETED:
        result.final_test_loss, result.final_test_accuracy = last.test_loss, last.test_accuracy
    result.step_time_median_s = statistics.median(step_times) if step_times else None
    result.wall_time_s = train_time
