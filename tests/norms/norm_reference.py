"""Independent NumPy float64 implementations of every norm, written from the definitions.

Deliberately naive: explicit loops over channels, samples, groups and positions, boolean indexing
for masks, and running estimates kept as the full history of per-batch statistics (averaged when
needed) rather than incremental updates, so they share no structure with the torch code.
Arrays are channel-first ``(N, C, *spatial)``; a mask is bool ``(N, *spatial)`` (True = valid).
"""

from __future__ import annotations

import math

import numpy as np


def full_mask(x: np.ndarray) -> np.ndarray:
    """An all-valid mask for ``x``."""
    return np.ones((x.shape[0],) + x.shape[2:], dtype=bool)


def as_ncp(x: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(N, C, P) values and (N, P) mask."""
    n, c = x.shape[:2]
    m = full_mask(x) if mask is None else mask
    return x.reshape(n, c, -1).astype(np.float64), m.reshape(n, -1)


def moments(values: np.ndarray) -> tuple[float, float]:
    """Mean and biased variance of a 1-D array."""
    mean = values.sum() / values.size
    return mean, ((values - mean) ** 2).sum() / values.size


def affine(y: np.ndarray, gamma, beta) -> np.ndarray:
    """Apply per-channel gamma/beta to (N, C, P)."""
    if gamma is not None:
        y = y * np.asarray(gamma)[None, :, None]
    if beta is not None:
        y = y + np.asarray(beta)[None, :, None]
    return y


def finish(y: np.ndarray, m: np.ndarray, shape) -> np.ndarray:
    """Zero the masked positions and restore the input shape."""
    return (y * m[:, None, :]).reshape(shape)


# --------------------------------------------------------------------------------------------
# stateless per-sample norms


def layer_norm(x, mask=None, gamma=None, beta=None, eps=1e-5, per_position=False):
    """LN: per sample over C and valid positions, or over C at each position."""
    X, M = as_ncp(x, mask)
    n, c, p = X.shape
    y = np.zeros_like(X)
    for i in range(n):
        if per_position:
            for j in range(p):
                mu, var = moments(X[i, :, j])
                y[i, :, j] = (X[i, :, j] - mu) / math.sqrt(var + eps)
        elif M[i].any():
            vals = X[i][:, M[i]]
            mu, var = moments(vals.ravel())
            y[i] = (X[i] - mu) / math.sqrt(var + eps)
    return finish(affine(y, gamma, beta), M, x.shape)


def group_norm(x, groups, mask=None, gamma=None, beta=None, eps=1e-5):
    """GN: per sample and group of C/G channels over valid positions."""
    X, M = as_ncp(x, mask)
    n, c, p = X.shape
    size = c // groups
    y = np.zeros_like(X)
    for i in range(n):
        if not M[i].any():
            continue
        for g in range(groups):
            block = X[i, g * size:(g + 1) * size]
            mu, var = moments(block[:, M[i]].ravel())
            y[i, g * size:(g + 1) * size] = (block - mu) / math.sqrt(var + eps)
    return finish(affine(y, gamma, beta), M, x.shape)


def instance_stats(x, mask=None):
    """Per (sample, channel) mean, biased var and valid count over positions."""
    X, M = as_ncp(x, mask)
    n, c, _ = X.shape
    mean, var, count = np.zeros((n, c)), np.zeros((n, c)), np.zeros(n)
    for i in range(n):
        count[i] = M[i].sum()
        for k in range(c):
            if count[i] > 0:
                mean[i, k], var[i, k] = moments(X[i, k, M[i]])
    return mean, var, count


def instance_norm(x, mask=None, gamma=None, beta=None, eps=1e-5, running=None):
    """IN with instance statistics, or with ``running=(mean, var)`` per channel."""
    X, M = as_ncp(x, mask)
    n, c, _ = X.shape
    if running is None:
        mean, var, _ = instance_stats(x, mask)
    else:
        mean = np.tile(running[0], (n, 1))
        var = np.tile(running[1], (n, 1))
    y = (X - mean[:, :, None]) / np.sqrt(var[:, :, None] + eps)
    return finish(affine(y, gamma, beta), M, x.shape)


def rms_norm(x, mask=None, gamma=None, beta=None, eps=1e-6, per_position=False):
    """RMSNorm: x / sqrt(mean(x^2) + eps) over C and valid positions, or over C per position."""
    X, M = as_ncp(x, mask)
    n, c, p = X.shape
    y = np.zeros_like(X)
    for i in range(n):
        if per_position:
            for j in range(p):
                y[i, :, j] = X[i, :, j] / math.sqrt((X[i, :, j] ** 2).mean() + eps)
        elif M[i].any():
            y[i] = X[i] / math.sqrt((X[i][:, M[i]] ** 2).mean() + eps)
    return finish(affine(y, gamma, beta), M, x.shape)


# --------------------------------------------------------------------------------------------
# batch norm family: classes that keep the history of batch statistics


def channel_stats(X, M):
    """Per channel mean, biased var, count over the valid (sample, position) entries."""
    c = X.shape[1]
    count = int(M.sum())
    mean, var = np.zeros(c), np.zeros(c)
    for k in range(c):
        mean[k], var[k] = moments(X[:, k, :][M])
    return mean, var, count


class RefBatchNorm:
    """BN with PyTorch or Keras running-estimate conventions, masks and ghost batches."""

    def __init__(self, c, eps=None, momentum="default", convention="torch", ghost=None,
                 track=True):
        keras = convention == "keras"
        self.eps = (1e-3 if keras else 1e-5) if eps is None else eps
        if momentum == "default":
            momentum = 0.99 if keras else 0.1
        self.rate = (1 - momentum) if keras else momentum  # weight of the new batch; None = average
        self.keras, self.ghost, self.track = keras, ghost, track
        self.mean, self.var = np.zeros(c), np.ones(c)
        self.history: list[tuple[np.ndarray, np.ndarray]] = []

    def _record(self, mean, var, count):
        est_var = var if self.keras else var * count / (count - 1)
        self.history.append((mean, est_var))
        if self.rate is None:  # cumulative average of every batch seen
            self.mean = np.mean([h[0] for h in self.history], axis=0)
            self.var = np.mean([h[1] for h in self.history], axis=0)
        else:
            self.mean = (1 - self.rate) * self.mean + self.rate * mean
            self.var = (1 - self.rate) * self.var + self.rate * est_var

    def train(self, x, mask=None, gamma=None, beta=None):
        """Training forward: statistics per (ghost) batch, running estimates updated in order."""
        X, M = as_ncp(x, mask)
        n = X.shape[0]
        size = n if self.ghost is None else self.ghost
        y = np.zeros_like(X)
        for start in range(0, n, size):
            part, pm = X[start:start + size], M[start:start + size]
            mean, var, count = channel_stats(part, pm)
            y[start:start + size] = (part - mean[None, :, None]) / np.sqrt(var[None, :, None] + self.eps)
            if self.track:
                self._record(mean, var, count)
        return finish(affine(y, gamma, beta), M, x.shape)

    def eval(self, x, mask=None, gamma=None, beta=None):
        """Eval forward with the running estimates (or batch statistics when not tracking)."""
        if not self.track:
            return self.train(x, mask, gamma, beta)
        X, M = as_ncp(x, mask)
        y = (X - self.mean[None, :, None]) / np.sqrt(self.var[None, :, None] + self.eps)
        return finish(affine(y, gamma, beta), M, x.shape)


class RefBatchRenorm:
    """Ioffe (2017) Algorithm 1 with linearly relaxed r_max/d_max after the warm-up."""

    def __init__(self, c, eps=1e-5, momentum=0.01, r_max=3.0, d_max=5.0, warmup=5000,
                 r_steps=40000, d_steps=25000):
        self.eps, self.alpha = eps, momentum
        self.r_max, self.d_max, self.warmup, self.r_steps, self.d_steps = r_max, d_max, warmup, r_steps, d_steps
        self.mu, self.sigma, self.step = np.zeros(c), np.ones(c), 0

    def bounds(self):
        """(r_max, d_max) at the current step."""
        def ramp(end_step):
            if self.step <= self.warmup:
                return 0.0
            return min(1.0, (self.step - self.warmup) / (end_step - self.warmup))
        return 1 + (self.r_max - 1) * ramp(self.r_steps), self.d_max * ramp(self.d_steps)

    def train(self, x, mask=None, gamma=None, beta=None):
        X, M = as_ncp(x, mask)
        mean, var, _ = channel_stats(X, M)
        sigma_b = np.sqrt(var + self.eps)
        r_max, d_max = self.bounds()
        r = np.clip(sigma_b / self.sigma, 1 / r_max, r_max)
        d = np.clip((mean - self.mu) / self.sigma, -d_max, d_max)
        y = (X - mean[None, :, None]) / sigma_b[None, :, None] * r[None, :, None] + d[None, :, None]
        self.mu = self.mu + self.alpha * (mean - self.mu)
        self.sigma = self.sigma + self.alpha * (sigma_b - self.sigma)
        self.step += 1
        return finish(affine(y, gamma, beta), M, x.shape)

    def eval(self, x, mask=None, gamma=None, beta=None):
        X, M = as_ncp(x, mask)
        y = (X - self.mu[None, :, None]) / self.sigma[None, :, None]
        return finish(affine(y, gamma, beta), M, x.shape)


class RefInstanceRunning:
    """torch.nn.InstanceNorm running estimates: EMA of batch-averaged instance statistics."""

    def __init__(self, c, momentum=0.1):
        self.mean, self.var, self.rate = np.zeros(c), np.ones(c), momentum

    def update(self, x, mask=None):
        mean, var, count = instance_stats(x, mask)
        has_mean, has_var = count >= 1, count >= 2
        unbiased = var[has_var] * (count[has_var] / (count[has_var] - 1))[:, None]
        self.mean = (1 - self.rate) * self.mean + self.rate * mean[has_mean].mean(0)
        self.var = (1 - self.rate) * self.var + self.rate * unbiased.mean(0)


class RefBatchLayerNorm:
    """BLN as the reference code defines it, with population estimates as equal-weight averages.

    Population statistics are computed at eval time from the full history: per position, the
    average of the batch means (batches with a valid sample there) and of the unbiased batch
    variances (batches with two or more); positions never observed use the average over all
    observations of all positions; nothing observed -> mean 0, var 1.
    """

    def __init__(self, c, eps=1e-3, pooled=False, flags=(True, True, False, False), offset=1e-4,
                 divide_by_sqrt_channels=True):
        self.c, self.eps, self.pooled, self.flags = c, eps, pooled, flags
        self.offset, self.root = offset, math.sqrt(c) if divide_by_sqrt_channels else 1.0
        self.m = None
        self.bm: dict = {}  # key -> list of per-channel batch means
        self.bv: dict = {}
        self.fm: dict = {}  # position -> list of feature means
        self.fv: dict = {}

    def _weights(self, m):
        return (1 / m - self.offset) / self.root, (1 - 1 / m - self.offset) / self.root

    def train(self, x, mask=None, gamma=None, beta=None):
        X, M = as_ncp(x, mask)
        n, c, p = X.shape
        self.m = n
        wf, wb = self._weights(n)
        xb, xf = np.zeros_like(X), np.zeros_like(X)
        for j in range(p):
            for i in range(n):
                mu, var = moments(X[i, :, j])
                xf[i, :, j] = (X[i, :, j] - mu) / math.sqrt(var + self.eps)
        keys = ["all"] if self.pooled else list(range(p))
        for key in keys:
            cols = list(range(p)) if key == "all" else [key]
            sel = M[:, cols]
            count = int(sel.sum())
            if count == 0:
                continue
            mean, var = np.zeros(c), np.zeros(c)
            for k in range(c):
                mean[k], var[k] = moments(X[:, k, cols][sel])
            for j in cols:
                xb[:, :, j] = (X[:, :, j] - mean[None, :]) / np.sqrt(var[None, :] + self.eps)
            self.bm.setdefault(key, []).append(mean)
            if count >= 2:
                self.bv.setdefault(key, []).append(var * count / (count - 1))
        for j in range(p):
            valid = M[:, j]
            if valid.any():
                fmeans = [moments(X[i, :, j])[0] for i in range(n) if valid[i]]
                fvars = [moments(X[i, :, j])[1] for i in range(n) if valid[i]]
                self.fm.setdefault(j, []).append(np.mean(fmeans))
                self.fv.setdefault(j, []).append(np.mean(fvars))
        y = affine(wf * xf + wb * xb, gamma, beta)
        return finish(y, M, x.shape)

    @staticmethod
    def _population(history, key, default):
        if key in history:
            return np.mean(history[key], axis=0)
        every = [v for values in history.values() for v in values]
        return np.mean(every, axis=0) if every else default

    def eval(self, x, mask=None, gamma=None, beta=None):
        X, M = as_ncp(x, mask)
        n, c, p = X.shape
        m = self.m or n
        wf, wb = self._weights(m)
        bmm, bmv, fmm, fmv = self.flags
        y = np.zeros_like(X)
        for j in range(p):
            key = "all" if self.pooled else j
            cols = list(range(p)) if self.pooled else [j]
            sel = M[:, cols]
            cur_mean, cur_var = np.zeros(c), np.zeros(c)
            for k in range(c):
                vals = X[:, k, cols][sel]
                if vals.size:
                    cur_mean[k], cur_var[k] = moments(vals)
            mean_b = self._population(self.bm, key, np.zeros(c)) if bmm else cur_mean
            var_b = self._population(self.bv, key, np.ones(c)) if bmv else cur_var
            factor = m / (m - 1) if m > 1 else 1.0
            for i in range(n):
                mu_f, var_f = moments(X[i, :, j])
                if fmm:
                    mu_f = self._population(self.fm, j, 0.0)
                if fmv:
                    var_f = self._population(self.fv, j, 1.0) * factor
                xf = (X[i, :, j] - mu_f) / math.sqrt(var_f + self.eps)
                xb = (X[i, :, j] - mean_b) / np.sqrt(var_b + self.eps)
                y[i, :, j] = wf * xf + wb * xb
        return finish(affine(y, gamma, beta), M, x.shape)


# --------------------------------------------------------------------------------------------
# issue 17: inference example weighing, Full Normalization, weight normalization's slot


def example_weighted(X, M, mean, var, alpha, eps):
    """Summers & Dinneen (2020) inference example weighing on (N, C, P): per sample and channel,
    first and second moments mixed between the sample's own valid values (weight alpha) and the
    population (mean, var)."""
    n, c, _ = X.shape
    y = np.zeros_like(X)
    for i in range(n):
        for k in range(c):
            own = X[i, k][M[i]]
            if own.size == 0:
                continue
            mu = alpha * own.mean() + (1 - alpha) * mean[k]
            second = alpha * (own ** 2).mean() + (1 - alpha) * (var[k] + mean[k] ** 2)
            y[i, k] = (X[i, k] - mu) / math.sqrt(max(second - mu ** 2, 0.0) + eps)
    return y


class RefBatchNormWeighted(RefBatchNorm):
    """BN whose eval applies inference example weighing with the running estimates as population."""

    def __init__(self, c, alpha, **kwargs):
        super().__init__(c, **kwargs)
        self.alpha = alpha

    def eval(self, x, mask=None, gamma=None, beta=None):
        X, M = as_ncp(x, mask)
        y = example_weighted(X, M, self.mean, self.var, self.alpha, self.eps)
        return finish(affine(y, gamma, beta), M, x.shape)


class RefFullNorm:
    """Full Normalization (Lian & Liu 2019) with estimates written as explicit weighted sums.

    After k batches the estimate of each moment is sum_i w_i m_i over the batches' moments m_i, with
    w_1 = (1 - a)^(k - 1) (the first batch replaces the initial value) and w_i = a (1 - a)^(k - i)
    for i >= 2; with momentum None every batch weighs 1/k. Before any batch: mean 0, second moment 1.
    """

    def __init__(self, c, eps=1e-5, momentum=0.1):
        self.c, self.eps, self.a = c, eps, momentum
        self.history: list[tuple[np.ndarray, np.ndarray]] = []  # (mean, mean of squares) per batch

    def weights(self):
        """Weight of each batch so far in the estimates."""
        k = len(self.history)
        if self.a is None:
            return [1.0 / k] * k
        return [(1 - self.a) ** (k - 1)] + [self.a * (1 - self.a) ** (k - i) for i in range(2, k + 1)]

    def estimates(self):
        """(mean, second moment) estimates per channel."""
        if not self.history:
            return np.zeros(self.c), np.ones(self.c)
        w = self.weights()
        mean = sum(wi * h[0] for wi, h in zip(w, self.history))
        second = sum(wi * h[1] for wi, h in zip(w, self.history))
        return mean, second

    def _normalize(self, X, M, gamma, beta, shape):
        mean, second = self.estimates()
        var = np.maximum(second - mean ** 2, 0.0)
        y = (X - mean[None, :, None]) / np.sqrt(var[None, :, None] + self.eps)
        return finish(affine(y, gamma, beta), M, shape)

    def train(self, x, mask=None, gamma=None, beta=None):
        X, M = as_ncp(x, mask)
        mean, second = np.zeros(self.c), np.zeros(self.c)
        for k in range(self.c):
            vals = X[:, k, :][M]
            mean[k], second[k] = vals.mean(), (vals ** 2).mean()
        self.history.append((mean, second))
        return self._normalize(X, M, gamma, beta, x.shape)

    def eval(self, x, mask=None, gamma=None, beta=None):
        X, M = as_ncp(x, mask)
        return self._normalize(X, M, gamma, beta, x.shape)


class RefMeanOnlyBatchNorm:
    """Salimans & Kingma's mean-only BN: x - batch mean + beta in training, x - running mean + beta in
    eval; the running mean is an EMA (weight `momentum` on the new batch) from 0."""

    def __init__(self, c, momentum=0.1):
        self.mean, self.a = np.zeros(c), momentum

    def train(self, x, mask=None, gamma=None, beta=None):
        X, M = as_ncp(x, mask)
        mean, _, _ = channel_stats(X, M)
        self.mean = (1 - self.a) * self.mean + self.a * mean
        return finish(affine(X - mean[None, :, None], None, beta), M, x.shape)

    def eval(self, x, mask=None, gamma=None, beta=None):
        X, M = as_ncp(x, mask)
        return finish(affine(X - self.mean[None, :, None], None, beta), M, x.shape)
