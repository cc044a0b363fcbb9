// Fused CPU passes for Batch Layer Normalization's training forward and backward on (N, C, P)
// contiguous input (normbench/norms/bln_kernel.py builds this file; batch_layer_function.py holds
// the maths). BLN reduces over N (batch statistics, per channel and position) and over C (feature
// statistics, per sample and position), so every reduction here is split by blocks of positions:
// each block owns its positions' sums in both directions, the blocks run in parallel on torch's
// intra-op threads, and every sum is accumulated in the same order whatever the number of threads.
//
// moment_sums      one read of x   -> sums of x and x^2 over N (C, P) and over C (N, P)
// gradient_sums    one read of g, x -> sums of g and g x over N (C, P), of gamma g and gamma g x
//                                      over C (N, P), and of g (x - mu_f) rf over N (C, P): the
//                                      gamma gradient's feature part before its sum over P
// apply_forward    y  = x (A + G B) + D + G E
// apply_backward   dx = g (A + G B) - x (A2 + B2) + D + E
// where A, A2, D are (C, P) factors, B, B2, E are (N, P) factors and G is a (C,) channel factor.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

namespace {

void check_input(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), name, " must be on the CPU");
  TORCH_CHECK(t.dim() == 3, name, " must be (N, C, P)");
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
}

void check_factor(const at::Tensor& t, const at::Tensor& like, int64_t rows, int64_t cols, const char* name) {
  TORCH_CHECK(t.is_contiguous() && t.numel() == rows * cols && t.scalar_type() == like.scalar_type(),
              name, " must be a contiguous ", rows, " x ", cols, " tensor of the input's dtype");
}

// Positions per block: the block's per-channel accumulators (``arrays`` of C x block values, kept
// contiguous so that no two of them alias in the cache) fit in ~256 KB of L2, and every thread gets
// a block. (Block boundaries change no sum: each position is summed over (n, c) in order.)
int64_t block_size(int64_t channels, int64_t arrays, int64_t positions, int64_t item) {
  const int64_t fit = (int64_t{256} << 10) / std::max<int64_t>(1, channels * arrays * item);
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  const int64_t per_thread = ((positions + threads - 1) / threads + 15) / 16 * 16;
  return std::min(positions, std::max<int64_t>(16, std::min(fit / 16 * 16, per_thread)));
}

// For every block of positions [p0, p1): visit(n, c, p0, p1, local) in (n, c) order, with ``local``
// the block's zeroed, contiguous (C, width) per-channel accumulators, then copy them into the
// (C, P) outputs. Each position is summed by one thread in the same order whatever the thread count.
template <typename scalar_t, typename Visit>
void for_blocks(int64_t n_, int64_t c_, int64_t p_, std::vector<scalar_t*> outputs, const Visit& visit) {
  const int64_t arrays = static_cast<int64_t>(outputs.size());
  const int64_t block = block_size(c_, arrays, p_, sizeof(scalar_t));
  const int64_t blocks = (p_ + block - 1) / block;
  at::parallel_for(0, blocks, 1, [&](int64_t lo, int64_t hi) {
    std::vector<scalar_t> local(static_cast<size_t>(arrays * c_ * block));
    for (int64_t blk = lo; blk < hi; ++blk) {
      const int64_t p0 = blk * block, p1 = std::min(p_, p0 + block), width = p1 - p0;
      std::fill(local.begin(), local.end(), scalar_t(0));
      for (int64_t n = 0; n < n_; ++n) {
        for (int64_t c = 0; c < c_; ++c) {
          visit(n, c, p0, width, local.data() + c * width, c_ * width);
        }
      }
      for (int64_t k = 0; k < arrays; ++k) {
        for (int64_t c = 0; c < c_; ++c) {
          std::copy_n(local.data() + k * c_ * width + c * width, width, outputs[k] + c * p_ + p0);
        }
      }
    }
  });
}

// The inner loops, as functions so that the compiler takes __restrict__ at its word and
// vectorizes them (it ignores the qualifier on local pointers).
template <typename scalar_t>
void moment_row(const scalar_t* __restrict__ row, scalar_t* __restrict__ fs, scalar_t* __restrict__ fq,
                scalar_t* __restrict__ bs, scalar_t* __restrict__ bq, int64_t width) {
  for (int64_t p = 0; p < width; ++p) {
    const scalar_t v = row[p];
    const scalar_t v2 = v * v;
    fs[p] += v;
    fq[p] += v2;
    bs[p] += v;
    bq[p] += v2;
  }
}

template <typename scalar_t>
void gradient_row(const scalar_t* __restrict__ grow, const scalar_t* __restrict__ xrow,
                  const scalar_t* __restrict__ mfn, const scalar_t* __restrict__ rfn, scalar_t gc,
                  scalar_t* __restrict__ fs, scalar_t* __restrict__ fx, scalar_t* __restrict__ bs,
                  scalar_t* __restrict__ bx, scalar_t* __restrict__ gfc, int64_t width) {
  for (int64_t p = 0; p < width; ++p) {
    const scalar_t gv = grow[p], xv = xrow[p];
    const scalar_t gx = gv * xv;
    bs[p] += gv;
    bx[p] += gx;
    fs[p] += gc * gv;
    fx[p] += gc * gx;
    gfc[p] += gv * (xv - mfn[p]) * rfn[p];
  }
}

std::vector<at::Tensor> moment_sums(const at::Tensor& x) {
  check_input(x, "x");
  const int64_t n_ = x.size(0), c_ = x.size(1), p_ = x.size(2);
  auto sum_b = at::zeros({c_, p_}, x.options()), sq_b = at::zeros({c_, p_}, x.options());
  auto sum_f = at::zeros({n_, p_}, x.options()), sq_f = at::zeros({n_, p_}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bln_moment_sums", [&] {
    const scalar_t* xs = x.data_ptr<scalar_t>();
    scalar_t *f1 = sum_f.data_ptr<scalar_t>(), *f2 = sq_f.data_ptr<scalar_t>();
    for_blocks<scalar_t>(n_, c_, p_, {sum_b.data_ptr<scalar_t>(), sq_b.data_ptr<scalar_t>()},
        [&](int64_t n, int64_t c, int64_t p0, int64_t width, scalar_t* local, int64_t stride) {
      const int64_t f = n * p_ + p0;
      moment_row(xs + (n * c_ + c) * p_ + p0, f1 + f, f2 + f, local, local + stride, width);
    });
  });
  return {sum_b, sq_b, sum_f, sq_f};
}

std::vector<at::Tensor> gradient_sums(const at::Tensor& g, const at::Tensor& x, const at::Tensor& gamma,
                                      const at::Tensor& mu_f, const at::Tensor& rf) {
  check_input(g, "g");
  check_input(x, "x");
  TORCH_CHECK(g.sizes() == x.sizes() && g.scalar_type() == x.scalar_type(), "g must match x");
  const int64_t n_ = x.size(0), c_ = x.size(1), p_ = x.size(2);
  check_factor(gamma, x, 1, c_, "gamma");
  check_factor(mu_f, x, n_, p_, "mu_f");
  check_factor(rf, x, n_, p_, "rf");
  auto sum_b = at::zeros({c_, p_}, x.options()), sum_bx = at::zeros({c_, p_}, x.options());
  auto sum_f = at::zeros({n_, p_}, x.options()), sum_fx = at::zeros({n_, p_}, x.options());
  auto gamma_f = at::zeros({c_, p_}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bln_gradient_sums", [&] {
    const scalar_t *gs = g.data_ptr<scalar_t>(), *xs = x.data_ptr<scalar_t>();
    const scalar_t *gm = gamma.data_ptr<scalar_t>(), *mf = mu_f.data_ptr<scalar_t>(), *rs = rf.data_ptr<scalar_t>();
    scalar_t *f1 = sum_f.data_ptr<scalar_t>(), *f2 = sum_fx.data_ptr<scalar_t>();
    for_blocks<scalar_t>(n_, c_, p_,
        {sum_b.data_ptr<scalar_t>(), sum_bx.data_ptr<scalar_t>(), gamma_f.data_ptr<scalar_t>()},
        [&](int64_t n, int64_t c, int64_t p0, int64_t width, scalar_t* local, int64_t stride) {
      const int64_t row = (n * c_ + c) * p_ + p0, f = n * p_ + p0;
      gradient_row(gs + row, xs + row, mf + f, rs + f, gm[c], f1 + f, f2 + f, local, local + stride,
                   local + 2 * stride, width);
    });
  });
  return {sum_b, sum_bx, sum_f, sum_fx, gamma_f};
}

// out = u (a + G b) + d + G e over one row of P positions (forward)
template <typename scalar_t>
void forward_row(const scalar_t* __restrict__ u, scalar_t* __restrict__ o, const scalar_t* __restrict__ a,
                 const scalar_t* __restrict__ b, const scalar_t* __restrict__ d, const scalar_t* __restrict__ e,
                 scalar_t gc, int64_t p_) {
  for (int64_t p = 0; p < p_; ++p) {
    o[p] = u[p] * (a[p] + gc * b[p]) + (d[p] + gc * e[p]);
  }
}

// out = u (a + G b) - v (a2 + b2) + d + e over one row of P positions (backward)
template <typename scalar_t>
void backward_row(const scalar_t* __restrict__ u, const scalar_t* __restrict__ v, scalar_t* __restrict__ o,
                  const scalar_t* __restrict__ a, const scalar_t* __restrict__ b, const scalar_t* __restrict__ a2,
                  const scalar_t* __restrict__ b2, const scalar_t* __restrict__ d, const scalar_t* __restrict__ e,
                  scalar_t gc, int64_t p_) {
  for (int64_t p = 0; p < p_; ++p) {
    o[p] = u[p] * (a[p] + gc * b[p]) - v[p] * (a2[p] + b2[p]) + (d[p] + e[p]);
  }
}

int64_t row_grain(int64_t positions) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, positions)); }

at::Tensor apply_forward(const at::Tensor& x, const at::Tensor& a, const at::Tensor& b, const at::Tensor& d,
                         const at::Tensor& e, const at::Tensor& gamma) {
  check_input(x, "x");
  const int64_t n_ = x.size(0), c_ = x.size(1), p_ = x.size(2);
  check_factor(a, x, c_, p_, "a");
  check_factor(d, x, c_, p_, "d");
  check_factor(b, x, n_, p_, "b");
  check_factor(e, x, n_, p_, "e");
  check_factor(gamma, x, 1, c_, "gamma");
  auto y = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bln_apply_forward", [&] {
    const scalar_t* xs = x.data_ptr<scalar_t>();
    scalar_t* ys = y.data_ptr<scalar_t>();
    const scalar_t *as = a.data_ptr<scalar_t>(), *bs = b.data_ptr<scalar_t>();
    const scalar_t *ds = d.data_ptr<scalar_t>(), *es = e.data_ptr<scalar_t>(), *gs = gamma.data_ptr<scalar_t>();
    at::parallel_for(0, n_ * c_, row_grain(p_), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const int64_t n = r / c_, c = r % c_;
        forward_row(xs + r * p_, ys + r * p_, as + c * p_, bs + n * p_, ds + c * p_, es + n * p_, gs[c], p_);
      }
    });
  });
  return y;
}

at::Tensor apply_backward(const at::Tensor& g, const at::Tensor& x, const at::Tensor& a, const at::Tensor& b,
                          const at::Tensor& a2, const at::Tensor& b2, const at::Tensor& d, const at::Tensor& e,
                          const at::Tensor& gamma) {
  check_input(g, "g");
  check_input(x, "x");
  TORCH_CHECK(g.sizes() == x.sizes() && g.scalar_type() == x.scalar_type(), "g must match x");
  const int64_t n_ = x.size(0), c_ = x.size(1), p_ = x.size(2);
  check_factor(a, x, c_, p_, "a");
  check_factor(a2, x, c_, p_, "a2");
  check_factor(d, x, c_, p_, "d");
  check_factor(b, x, n_, p_, "b");
  check_factor(b2, x, n_, p_, "b2");
  check_factor(e, x, n_, p_, "e");
  check_factor(gamma, x, 1, c_, "gamma");
  auto dx = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bln_apply_backward", [&] {
    const scalar_t *gs = g.data_ptr<scalar_t>(), *xs = x.data_ptr<scalar_t>();
    scalar_t* out = dx.data_ptr<scalar_t>();
    const scalar_t *as = a.data_ptr<scalar_t>(), *bs = b.data_ptr<scalar_t>();
    const scalar_t *a2s = a2.data_ptr<scalar_t>(), *b2s = b2.data_ptr<scalar_t>();
    const scalar_t *ds = d.data_ptr<scalar_t>(), *es = e.data_ptr<scalar_t>(), *gm = gamma.data_ptr<scalar_t>();
    at::parallel_for(0, n_ * c_, row_grain(p_), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const int64_t n = r / c_, c = r % c_;
        backward_row(gs + r * p_, xs + r * p_, out + r * p_, as + c * p_, bs + n * p_, a2s + c * p_,
                     b2s + n * p_, ds + c * p_, es + n * p_, gm[c], p_);
      }
    });
  });
  return dx;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("moment_sums", &moment_sums, "sums of x and x^2 over N (C, P) and over C (N, P)");
  m.def("gradient_sums", &gradient_sums, "BLN backward's reductions in one read of g and x");
  m.def("apply_forward", &apply_forward, "y = x (A + G B) + D + G E");
  m.def("apply_backward", &apply_backward, "dx = g (A + G B) - x (A2 + B2) + D + E");
}
