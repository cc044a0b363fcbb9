// BLN's whole training step on (N, C) features in one native call: forward, population update and
// an autograd node whose backward is one native call too (normbench/norms/bln_kernel.py builds this
// file with bln_kernel.cpp; batch_layer_function.py derives the maths). At the sizes of an MLP's
// hidden layer (e.g. 60 x 100) BLN's arithmetic is a few microseconds and the cost of a training
// step is the number of torch ops and autograd nodes around it (issue 15): torch's BN + LN kernels
// and the population bookkeeping took ~16 ops forward and ~5 nodes backward; this is one of each.
//
// Forward, with x_b = (x - mu_b[c]) rb[c] (statistics over N) and x_f = (x - mu_f[n]) rf[n] (over C):
//   y = gamma[c] (wf x_f + wb x_b) + beta[c]
// Backward, with gz = gamma[c] g and means over C (mean_f) and over N (mean_b):
//   dx = wf rf[n] (gz - mean_f(gz) - x_f mean_f(gz x_f)) + wb rb[c] (gz - mean_b(gz) - x_b mean_b(gz x_b))
//   dgamma[c] = sum_n g (wf x_f + wb x_b),   dbeta[c] = sum_n g
// Statistics are exact two-pass moments (no E[x^2] - E[x]^2), accumulated in double for either dtype.
// Column sums over N are taken in fixed chunks of rows, added in chunk order, so no bit depends on
// the number of threads.
#include <torch/extension.h>
#include <ATen/AccumulateType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <vector>

namespace {

constexpr int64_t kRowsPerChunk = 32;
constexpr int64_t kGrainElements = 32768;  // below this much work a parallel region costs more than it saves

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

int64_t chunk_count(int64_t n) { return (n + kRowsPerChunk - 1) / kRowsPerChunk; }

int64_t chunk_grain(int64_t c) { return std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, kRowsPerChunk * c)); }

// Column sums over the N rows of a (N, C) input: row(n, sums) for every row, in parallel over fixed
// chunks of kRowsPerChunk rows, ``sums`` being the chunk's zeroed ``width`` partial sums (one or more
// arrays of C); the chunks' partials are then added in chunk order, so no bit depends on the number
// of threads. Returns the ``width`` sums.
template <typename acc_t, typename Row>
std::vector<acc_t> column_sums(int64_t n_, int64_t c_, int64_t width, const Row& row) {
  const int64_t chunks = chunk_count(n_);
  std::vector<acc_t> parts(static_cast<size_t>(chunks * width)), out(static_cast<size_t>(width), acc_t(0));
  at::parallel_for(0, chunks, chunk_grain(c_), [&](int64_t lo, int64_t hi) {
    for (int64_t k = lo; k < hi; ++k) {
      acc_t* sums = parts.data() + k * width;
      std::fill(sums, sums + width, acc_t(0));
      for (int64_t n = k * kRowsPerChunk; n < std::min(n_, (k + 1) * kRowsPerChunk); ++n) row(n, sums);
    }
  });
  for (int64_t k = 0; k < chunks; ++k) {
    for (int64_t i = 0; i < width; ++i) out[i] += parts[k * width + i];
  }
  return out;
}

template <typename scalar_t>
void forward_kernel(const at::Tensor& x, const scalar_t* gamma, const scalar_t* beta, double wf, double wb, double eps,
                    at::Tensor& y, at::Tensor& mu_b, at::Tensor& rb, at::Tensor& mu_f, at::Tensor& rf, at::Tensor& var_b,
                    at::Tensor& var_f) {
  using acc_t = at::acc_type<scalar_t, false>;
  const int64_t n_ = x.size(0), c_ = x.size(1);
  const scalar_t* xp = x.data_ptr<scalar_t>();
  scalar_t *yp = y.data_ptr<scalar_t>(), *mbp = mu_b.data_ptr<scalar_t>(), *rbp = rb.data_ptr<scalar_t>();
  scalar_t *mfp = mu_f.data_ptr<scalar_t>(), *rfp = rf.data_ptr<scalar_t>();
  scalar_t *vbp = var_b.data_ptr<scalar_t>(), *vfp = var_f.data_ptr<scalar_t>();
  // pass 1: each row's mean and variance (two passes over a row in cache), column sums of x
  std::vector<acc_t> mean_b = column_sums<acc_t>(n_, c_, c_, [&](int64_t n, acc_t* sums) {
    const scalar_t* row = xp + n * c_;
    acc_t s = 0;
    for (int64_t c = 0; c < c_; ++c) { s += row[c]; sums[c] += row[c]; }
    const acc_t mean = s / c_;
    acc_t q = 0;
    for (int64_t c = 0; c < c_; ++c) { const acc_t d = row[c] - mean; q += d * d; }
    mfp[n] = static_cast<scalar_t>(mean);
    vfp[n] = static_cast<scalar_t>(q / c_);
    rfp[n] = static_cast<scalar_t>(1.0 / std::sqrt(q / c_ + eps));
  });
  for (int64_t c = 0; c < c_; ++c) mean_b[c] /= n_;
  // pass 2: column sums of squared deviations from the column means
  const std::vector<acc_t> column = column_sums<acc_t>(n_, c_, c_, [&](int64_t n, acc_t* sums) {
    const scalar_t* row = xp + n * c_;
    for (int64_t c = 0; c < c_; ++c) { const acc_t d = row[c] - mean_b[c]; sums[c] += d * d; }
  });
  // y = x (A[c] + B[n]) + D[c] + E[n]: A = gamma wb rb, D = beta - A mu_b, B = gamma wf rf, E = -B mu_f
  std::vector<scalar_t> a(static_cast<size_t>(c_)), d(static_cast<size_t>(c_)), g(static_cast<size_t>(c_));
  for (int64_t c = 0; c < c_; ++c) {
    const acc_t var = column[c] / n_, r = 1.0 / std::sqrt(var + eps);
    mbp[c] = static_cast<scalar_t>(mean_b[c]);
    vbp[c] = static_cast<scalar_t>(var);
    rbp[c] = static_cast<scalar_t>(r);
    g[c] = gamma[c];
    a[c] = static_cast<scalar_t>(g[c] * wb * r);
    d[c] = static_cast<scalar_t>(beta[c] - a[c] * mean_b[c]);
  }
  at::parallel_for(0, n_, std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, c_)), [&](int64_t lo, int64_t hi) {
    for (int64_t n = lo; n < hi; ++n) {
      const scalar_t bf = static_cast<scalar_t>(wf * rfp[n]), ef = -bf * mfp[n];
      const scalar_t* row = xp + n * c_;
      scalar_t* out = yp + n * c_;
      for (int64_t c = 0; c < c_; ++c) out[c] = row[c] * (a[c] + g[c] * bf) + d[c] + g[c] * ef;
    }
  });
}

template <typename scalar_t>
void backward_kernel(const at::Tensor& gy, const at::Tensor& x, const scalar_t* gamma, const at::Tensor& mu_b,
                     const at::Tensor& rb, const at::Tensor& mu_f, const at::Tensor& rf, double wf, double wb,
                     at::Tensor& dx, at::Tensor& dgamma, at::Tensor& dbeta) {
  using acc_t = at::acc_type<scalar_t, false>;
  const int64_t n_ = x.size(0), c_ = x.size(1);
  const scalar_t *gp = gy.data_ptr<scalar_t>(), *xp = x.data_ptr<scalar_t>();
  const scalar_t *mbp = mu_b.data_ptr<scalar_t>(), *rbp = rb.data_ptr<scalar_t>();
  const scalar_t *mfp = mu_f.data_ptr<scalar_t>(), *rfp = rf.data_ptr<scalar_t>();
  // per row: mean_f(gz), mean_f(gz x_f); per column (3 arrays): sum_n g, sum_n g x_b, sum_n g x_f
  std::vector<acc_t> row_g(static_cast<size_t>(n_)), row_gx(static_cast<size_t>(n_));
  const std::vector<acc_t> column = column_sums<acc_t>(n_, c_, 3 * c_, [&](int64_t n, acc_t* sums) {
    const scalar_t *grow = gp + n * c_, *xrow = xp + n * c_;
    const acc_t mf = mfp[n], r = rfp[n];
    acc_t sg = 0, sgx = 0;
    for (int64_t c = 0; c < c_; ++c) {
      const acc_t g = grow[c], gm = gamma[c];
      const acc_t xf = (xrow[c] - mf) * r, xb = (xrow[c] - mbp[c]) * rbp[c];
      sg += gm * g;
      sgx += gm * g * xf;
      sums[c] += g;
      sums[c_ + c] += g * xb;
      sums[2 * c_ + c] += g * xf;
    }
    row_g[n] = sg / c_;
    row_gx[n] = sgx / c_;
  });
  std::vector<acc_t> mean_g(static_cast<size_t>(c_)), mean_gx(static_cast<size_t>(c_));
  scalar_t *dgp = dgamma.defined() ? dgamma.data_ptr<scalar_t>() : nullptr;
  scalar_t *dbp = dbeta.defined() ? dbeta.data_ptr<scalar_t>() : nullptr;
  for (int64_t c = 0; c < c_; ++c) {
    const acc_t gm = gamma[c];
    mean_g[c] = gm * column[c] / n_;
    mean_gx[c] = gm * column[c_ + c] / n_;
    if (dgp) dgp[c] = static_cast<scalar_t>(wf * column[2 * c_ + c] + wb * column[c_ + c]);
    if (dbp) dbp[c] = static_cast<scalar_t>(column[c]);
  }
  if (!dx.defined()) return;
  scalar_t* dxp = dx.data_ptr<scalar_t>();
  at::parallel_for(0, n_, std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, c_)), [&](int64_t lo, int64_t hi) {
    for (int64_t n = lo; n < hi; ++n) {
      const scalar_t *grow = gp + n * c_, *xrow = xp + n * c_;
      const acc_t mf = mfp[n], r = rfp[n], kf = wf * r;
      for (int64_t c = 0; c < c_; ++c) {
        const acc_t gz = (gamma[c]) * static_cast<acc_t>(grow[c]);
        const acc_t xf = (xrow[c] - mf) * r, xb = (xrow[c] - mbp[c]) * rbp[c];
        dxp[n * c_ + c] = static_cast<scalar_t>(kf * (gz - row_g[n] - xf * row_gx[n]) +
                                                wb * rbp[c] * (gz - mean_g[c] - xb * mean_gx[c]));
      }
    }
  });
}

struct RowsFunction : public torch::autograd::Function<RowsFunction> {
  // Outputs: y, then the statistics (not differentiable): mu_b, var_b (biased), mu_f, var_f (biased).
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& gamma,
                               const at::Tensor& beta, double wf, double wb, double eps) {
    const int64_t n_ = x.size(0), c_ = x.size(1);
    auto y = at::empty_like(x);
    auto mu_b = at::empty({c_}, x.options()), rb = at::empty({c_}, x.options()), var_b = at::empty({c_}, x.options());
    auto mu_f = at::empty({n_}, x.options()), rf = at::empty({n_}, x.options()), var_f = at::empty({n_}, x.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bln_rows_forward", [&] {
      forward_kernel<scalar_t>(x, gamma.data_ptr<scalar_t>(), beta.data_ptr<scalar_t>(), wf, wb, eps, y, mu_b, rb,
                               mu_f, rf, var_b, var_f);
    });
    ctx->save_for_backward({x, gamma, mu_b, rb, mu_f, rf});
    ctx->saved_data["wf"] = wf;
    ctx->saved_data["wb"] = wb;
    ctx->mark_non_differentiable({mu_b, var_b, mu_f, var_f});
    return {y, mu_b, var_b, mu_f, var_f};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    TORCH_CHECK(!torch::autograd::GradMode::is_enabled(),
                "BLN's fused (N, C) kernel is differentiable once; for higher-order gradients set "
                "NORMBENCH_BLN_KERNEL=eager");
    auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &gamma = saved[1];
    const double wf = ctx->saved_data["wf"].toDouble(), wb = ctx->saved_data["wb"].toDouble();
    const at::Tensor gy = grads[0].defined() ? grads[0].contiguous() : at::zeros_like(x);
    at::Tensor dx, dgamma, dbeta;
    if (ctx->needs_input_grad(0)) dx = at::empty_like(x);
    if (ctx->needs_input_grad(1)) dgamma = at::empty({x.size(1)}, x.options());
    if (ctx->needs_input_grad(2)) dbeta = at::empty({x.size(1)}, x.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bln_rows_backward", [&] {
      backward_kernel<scalar_t>(gy, x, gamma.data_ptr<scalar_t>(), saved[2], saved[3], saved[4], saved[5], wf, wb, dx,
                                dgamma, dbeta);
    });
    return {dx, dgamma, dbeta, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

bool holds(const at::Tensor& t, const at::Tensor& x, int64_t size) {
  return t.is_contiguous() && t.numel() == size && t.scalar_type() == x.scalar_type() && t.device() == x.device();
}

// The common value of the count buffers (float32 or float64, one value each), or -1 if they differ.
double common_count(const std::vector<at::Tensor>& counts) {
  double k = -1;
  for (const auto& t : counts) {
    if (t.numel() != 1 || !t.is_contiguous()) return -1;
    double v;
    if (t.scalar_type() == at::kFloat) v = *t.data_ptr<float>();
    else if (t.scalar_type() == at::kDouble) v = *t.data_ptr<double>();
    else return -1;
    if (k >= 0 && v != k) return -1;
    k = v;
  }
  return k;
}

void set_count(const at::Tensor& t, double k) {
  if (t.scalar_type() == at::kFloat) *t.data_ptr<float>() = static_cast<float>(k);
  else *t.data_ptr<double>() = k;
}

// BLN's training output on one position per sample ((N, C) or (N, C, 1, ...), contiguous) with its
// autograd node, and the batch's statistics (mu_b, biased var_b per channel; mu_f, biased var_f per
// sample; not differentiable) for a population update done by the caller: the same output bits as
// rows_train, for the steps where its uniform update does not apply.
std::vector<at::Tensor> rows_forward(const at::Tensor& x, const c10::optional<at::Tensor>& gamma,
                                     const c10::optional<at::Tensor>& beta, double wf, double wb, double eps) {
  TORCH_CHECK(x.device().is_cpu() && x.dim() >= 2 && x.is_contiguous() && x.numel() == x.size(0) * x.size(1),
              "x must be contiguous CPU input with one position per sample");
  const int64_t c_ = x.size(1);
  const at::Tensor g = gamma.has_value() ? *gamma : at::ones({c_}, x.options());
  const at::Tensor b = beta.has_value() ? *beta : at::zeros({c_}, x.options());
  TORCH_CHECK(holds(g, x, c_) && holds(b, x, c_), "gamma and beta must be contiguous, C values in x's dtype");
  return RowsFunction::apply(x, g, b, wf, wb, eps);
}

// BatchLayerNorm's training step on input with one position per sample ((N, C) or (N, C, 1, ...),
// contiguous): y with its autograd node; the population estimates moved toward this batch's
// statistics (batch mean; batch variance times N / (N - 1); feature mean and variance averaged over
// the samples) with the layer's uniform rate (1 / (k + 1) for the cumulative average, else
// ``momentum``, 1 for the first batch), the counts set to k + 1, num_batches_tracked + 1 and
// last_batch_size N -- batch_layer.py's ``_uniform_rate`` / ``_train_uniform`` / ``_count_uniform_step``
// in one call. ``estimates``: running batch mean, batch var (C values), feature mean, feature var
// (1 value); ``counts``: batch mean, batch var, feature count (k each). Returns None, touching
// nothing, where that update does not apply (estimates not yet sized for this input, counts that
// differ, a batch of one, non-contiguous input): the caller then takes its general path. Else
// returns (y, k + 1), the new common count.
c10::optional<std::tuple<at::Tensor, int64_t>> rows_train(const at::Tensor& x,
                                                     const c10::optional<at::Tensor>& gamma,
                                                     const c10::optional<at::Tensor>& beta,
                                                     const std::vector<at::Tensor>& estimates,
                                                     const std::vector<at::Tensor>& counts,
                                                     const at::Tensor& num_batches_tracked,
                                                     const at::Tensor& last_batch_size, double momentum, double wf,
                                                     double wb, double eps) {
  TORCH_CHECK(estimates.size() == 4 && counts.size() == 3, "four estimates and three counts expected");
  TORCH_CHECK(x.device().is_cpu() && x.dim() >= 2, "x must be CPU input (N, C, ...)");
  const int64_t n_ = x.size(0), c_ = x.size(1);
  const bool sized = holds(estimates[0], x, c_) && holds(estimates[1], x, c_) && holds(estimates[2], x, 1) &&
                     holds(estimates[3], x, 1) && counts[2].dim() == x.dim() - 2 &&
                     num_batches_tracked.scalar_type() == at::kLong && last_batch_size.scalar_type() == at::kLong;
  const double k = common_count(counts);
  if (!x.is_contiguous() || x.numel() != n_ * c_ || n_ < 2 || !sized || k < 0) return c10::nullopt;
  const double rate = momentum < 0 ? 1.0 / (k + 1) : (k > 0 ? momentum : 1.0);
  // a layer without affine parameters runs with gamma = 1, beta = 0 (constants: no gradient asked)
  const at::Tensor g = gamma.has_value() ? *gamma : at::ones({c_}, x.options());
  const at::Tensor b = beta.has_value() ? *beta : at::zeros({c_}, x.options());
  TORCH_CHECK(holds(g, x, c_) && holds(b, x, c_), "gamma and beta must be contiguous, C values in x's dtype");
  auto out = RowsFunction::apply(x, g, b, wf, wb, eps);
  at::NoGradGuard no_grad;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bln_rows_population", [&] {
    using acc_t = at::acc_type<scalar_t, false>;
    const scalar_t *mb = out[1].data_ptr<scalar_t>(), *vb = out[2].data_ptr<scalar_t>();
    const scalar_t *mf = out[3].data_ptr<scalar_t>(), *vf = out[4].data_ptr<scalar_t>();
    scalar_t *rm = estimates[0].data_ptr<scalar_t>(), *rv = estimates[1].data_ptr<scalar_t>();
    const acc_t bessel = static_cast<acc_t>(n_) / (n_ - 1);
    for (int64_t c = 0; c < c_; ++c) {
      rm[c] += static_cast<scalar_t>(rate * (mb[c] - rm[c]));
      rv[c] += static_cast<scalar_t>(rate * (vb[c] * bessel - rv[c]));
    }
    acc_t sm = 0, sv = 0;
    for (int64_t n = 0; n < n_; ++n) { sm += mf[n]; sv += vf[n]; }
    scalar_t *fm = estimates[2].data_ptr<scalar_t>(), *fv = estimates[3].data_ptr<scalar_t>();
    fm[0] += static_cast<scalar_t>(rate * (sm / n_ - fm[0]));
    fv[0] += static_cast<scalar_t>(rate * (sv / n_ - fv[0]));
  });
  for (const auto& t : counts) set_count(t, k + 1);
  *num_batches_tracked.data_ptr<int64_t>() += 1;
  *last_batch_size.data_ptr<int64_t>() = n_;
  return std::make_tuple(out[0], static_cast<int64_t>(k) + 1);
}

}  // namespace

// The Python bindings of this file's two entry points, added to the module bln_kernel.cpp defines.
void register_rows_kernel(pybind11::module& m) {
  m.def("rows_forward", &rows_forward, "BLN's training output on (N, C) with its autograd node, and the batch's statistics");
  m.def("rows_train", &rows_train, "BatchLayerNorm's training step on (N, C): output with its autograd node, population "
        "and count update -> (y, new count); None where it does not apply");
}
