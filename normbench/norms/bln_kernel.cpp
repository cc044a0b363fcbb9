// Fused CPU passes for Batch Layer Normalization's training forward and backward on (N, C, P)
// contiguous input (normbench/norms/bln_kernel.py builds this file; batch_layer_function.py holds
// the maths). BLN reduces over N (batch statistics, per channel and position) and over C (feature
// statistics, per sample and position), so every reduction here is split into tasks of (a fixed
// chunk of samples, a block of positions) that run in parallel on torch's intra-op threads; the
// chunks' partial sums are added in a fixed order, so no bit depends on the number of threads.
//
// moment_sums      one read of x   -> sums of x and x^2 over N (C, P) and over C (N, P)
//                                      (rows visited four channels at a time, gradient_sums two
//                                      at a time: measured 29 % / 12 % less CPU time at (32, 64, 1024))
// gradient_sums    one read of g, x -> sums of g and g x over N (C, P), of gamma g and gamma g x
//                                      over C (N, P)
// apply_forward    y  = x (A + G B) + D + G E
// apply_backward   dx = g (A + G B) - x (A2 + B2) + D + E, and in the same read of g and x the
//                  gamma gradient's feature part, sum over (n, p) of g (x - mu_f) rf per channel
//                  (a row's dot product, not a (C, P) accumulator in gradient_sums' pass)
// where A, A2, D are (C, P) factors, B, B2, E are (N, P) factors and G is a (C,) channel factor.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <initializer_list>
#include <utility>
#include <cmath>
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

// The (C, P) factors, then the (N, P) factors, then gamma (C,): each contiguous, in x's dtype.
void check_factors(const at::Tensor& x, std::initializer_list<std::pair<const at::Tensor*, const char*>> per_channel,
                   std::initializer_list<std::pair<const at::Tensor*, const char*>> per_sample, const at::Tensor& gamma) {
  for (const auto& [t, name] : per_channel) check_factor(*t, x, x.size(1), x.size(2), name);
  for (const auto& [t, name] : per_sample) check_factor(*t, x, x.size(0), x.size(2), name);
  check_factor(gamma, x, 1, x.size(1), "gamma");
}

template <typename scalar_t>
void add_row(scalar_t* __restrict__ out, const scalar_t* __restrict__ in, int64_t width) {
  for (int64_t p = 0; p < width; ++p) {
    out[p] += in[p];
  }
}

// Positions per block: the block's per-channel accumulators (``arrays`` of C x block values, kept
// contiguous so that no two of them alias in the cache) fit in ~256 KB of L2, and, when the batch
// is not chunked, every thread gets the same number of equal blocks: the blocks of one thread's
// share are sized equally rather than as large as fits, since a last, short block left one thread
// with up to twice the other's work (the backward at (32, 64, 1024) ran 3 blocks of 336 positions
// against one of 16). (Block boundaries change no sum: each position is summed over (n, c) in order.)
int64_t block_size(int64_t channels, int64_t arrays, int64_t positions, int64_t item, bool chunked) {
  const int64_t fit = std::max<int64_t>(16, (int64_t{256} << 10) / std::max<int64_t>(1, channels * arrays * item) / 16 * 16);
  const int64_t threads = chunked ? 1 : std::max<int64_t>(1, at::get_num_threads());
  const int64_t per_thread = (positions + threads - 1) / threads;
  const int64_t blocks_per_thread = (per_thread + fit - 1) / fit;
  const int64_t block = ((per_thread + blocks_per_thread - 1) / blocks_per_thread + 15) / 16 * 16;
  return std::min(positions, std::max<int64_t>(16, block));
}

// Samples per chunk. Rows shorter than kLongRow positions are split between threads by samples, not
// by positions (half a short row per thread reads every cache line twice): the batch is cut into
// fixed chunks (not one per thread), so the order of every sum depends on the shape alone. Long
// rows are split by positions only (partial sums per chunk would cost a pass of their own).
constexpr int64_t kSamplesPerChunk = 8;
constexpr int64_t kLongRow = 512;

// Channels per visit: a visitor handles this many rows of one sample at once, so the sample's
// per-position values (its feature sums, mean, 1/std) are loaded and stored once per group of rows
// instead of once per row (the reductions are bound by loads and stores, not arithmetic).
constexpr int64_t kChannelsPerVisit = 4;

// For every (chunk of samples, block of positions [p0, p0 + width)): visit(n, c, k, p0, width,
// local, stride) for channels c .. c + k - 1 (k = kChannelsPerVisit but for the last group), in
// (n, c) order, with ``local`` the task's zeroed, contiguous (C, width) per-channel
// accumulators (array k at local + k * stride). The chunks' partial sums are then added in chunk
// order into the (C, P) outputs. Every position's sum is accumulated in an order fixed by the shape
// (n within a chunk, then chunk by chunk), so the thread count changes no bit of the result.
template <typename scalar_t, typename Visit>
void for_blocks(const at::Tensor& like, int64_t n_, int64_t c_, int64_t p_, std::vector<scalar_t*> outputs,
                const Visit& visit) {
  const int64_t arrays = static_cast<int64_t>(outputs.size());
  const int64_t chunks = p_ < kLongRow ? (n_ + kSamplesPerChunk - 1) / kSamplesPerChunk : 1;
  const int64_t per_chunk = chunks > 1 ? kSamplesPerChunk : n_;
  const int64_t block = block_size(c_, arrays, p_, sizeof(scalar_t), chunks > 1);
  const int64_t blocks = (p_ + block - 1) / block;
  const int64_t plane = c_ * p_;  // one (C, P) array
  at::Tensor partial;
  if (chunks > 1) {
    partial = at::empty({chunks, arrays, c_, p_}, like.options());
  }
  scalar_t* parts = chunks > 1 ? partial.data_ptr<scalar_t>() : nullptr;
  at::parallel_for(0, chunks * blocks, 1, [&](int64_t lo, int64_t hi) {
    std::vector<scalar_t> local(static_cast<size_t>(arrays * c_ * block));
    for (int64_t task = lo; task < hi; ++task) {
      const int64_t chunk = task / blocks, blk = task % blocks;
      const int64_t n0 = chunk * per_chunk, n1 = std::min(n_, n0 + per_chunk);
      const int64_t p0 = blk * block, p1 = std::min(p_, p0 + block), width = p1 - p0;
      std::fill(local.begin(), local.end(), scalar_t(0));
      for (int64_t n = n0; n < n1; ++n) {
        for (int64_t c = 0; c < c_; c += kChannelsPerVisit) {
          visit(n, c, std::min(kChannelsPerVisit, c_ - c), p0, width, local.data() + c * width, c_ * width);
        }
      }
      for (int64_t k = 0; k < arrays; ++k) {
        scalar_t* target = chunks > 1 ? parts + (chunk * arrays + k) * plane : outputs[k];
        for (int64_t c = 0; c < c_; ++c) {
          std::copy_n(local.data() + k * c_ * width + c * width, width, target + c * p_ + p0);
        }
      }
    }
  });
  if (chunks > 1) {
    at::parallel_for(0, arrays * c_, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, p_)), [&](int64_t lo, int64_t hi) {
      for (int64_t row = lo; row < hi; ++row) {
        const int64_t k = row / c_, c = row % c_;
        scalar_t* out = outputs[k] + c * p_;
        std::copy_n(parts + k * plane + c * p_, p_, out);
        for (int64_t chunk = 1; chunk < chunks; ++chunk) {
          add_row(out, parts + (chunk * arrays + k) * plane + c * p_, p_);
        }
      }
    });
  }
}

// The inner loops, as functions so that the compiler takes __restrict__ at its word and
// vectorizes them (it ignores the qualifier on local pointers).
// Four rows of one sample (channels c .. c + 3): the sample's sums over these channels are added
// to fs / fq once, in channel order. Every array is its own __restrict__ parameter so that the
// compiler vectorizes over positions without alias checks.
template <typename scalar_t>
void moment_rows4(const scalar_t* __restrict__ r0, const scalar_t* __restrict__ r1, const scalar_t* __restrict__ r2,
                  const scalar_t* __restrict__ r3, scalar_t* __restrict__ fs, scalar_t* __restrict__ fq,
                  scalar_t* __restrict__ s0, scalar_t* __restrict__ s1, scalar_t* __restrict__ s2,
                  scalar_t* __restrict__ s3, scalar_t* __restrict__ q0, scalar_t* __restrict__ q1,
                  scalar_t* __restrict__ q2, scalar_t* __restrict__ q3, int64_t width) {
  for (int64_t p = 0; p < width; ++p) {
    const scalar_t v0 = r0[p], v1 = r1[p], v2 = r2[p], v3 = r3[p];
    const scalar_t w0 = v0 * v0, w1 = v1 * v1, w2 = v2 * v2, w3 = v3 * v3;
    s0[p] += v0; s1[p] += v1; s2[p] += v2; s3[p] += v3;
    q0[p] += w0; q1[p] += w1; q2[p] += w2; q3[p] += w3;
    fs[p] += ((v0 + v1) + v2) + v3;
    fq[p] += ((w0 + w1) + w2) + w3;
  }
}

// One row, as moment_rows4 (the channels left over after the groups of four).
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

// Two rows of g and x of one sample (channels c, c + 1): the batch sums (per channel and
// position) of g and g x; the sample's sums of gamma g and gamma g x over these channels added to
// fs / fx once. Each array is its own __restrict__ parameter, as in moment_rows4 (two rows, not
// four: four rows' arrays spill registers and measured no faster than one row at a time).
template <typename scalar_t>
void gradient_rows2(const scalar_t* __restrict__ g0, const scalar_t* __restrict__ g1, const scalar_t* __restrict__ x0,
                    const scalar_t* __restrict__ x1, scalar_t k0, scalar_t k1, scalar_t* __restrict__ fs,
                    scalar_t* __restrict__ fx, scalar_t* __restrict__ b0, scalar_t* __restrict__ b1,
                    scalar_t* __restrict__ c0, scalar_t* __restrict__ c1, int64_t width) {
  for (int64_t p = 0; p < width; ++p) {
    const scalar_t u0 = g0[p], u1 = g1[p];
    const scalar_t w0 = u0 * x0[p], w1 = u1 * x1[p];
    b0[p] += u0; b1[p] += u1;
    c0[p] += w0; c1[p] += w1;
    fs[p] += k0 * u0 + k1 * u1;
    fx[p] += k0 * w0 + k1 * w1;
  }
}

// One row, as gradient_rows2 (a channel left over after the pairs).
template <typename scalar_t>
void gradient_row(const scalar_t* __restrict__ grow, const scalar_t* __restrict__ xrow, scalar_t gc,
                  scalar_t* __restrict__ fs, scalar_t* __restrict__ fx, scalar_t* __restrict__ bs,
                  scalar_t* __restrict__ bx, int64_t width) {
  for (int64_t p = 0; p < width; ++p) {
    const scalar_t gv = grow[p];
    const scalar_t gx = gv * xrow[p];
    bs[p] += gv;
    bx[p] += gx;
    fs[p] += gc * gv;
    fx[p] += gc * gx;
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
    for_blocks<scalar_t>(x, n_, c_, p_, {sum_b.data_ptr<scalar_t>(), sq_b.data_ptr<scalar_t>()},
        [&](int64_t n, int64_t c, int64_t k, int64_t p0, int64_t width, scalar_t* local, int64_t stride) {
      const int64_t f = n * p_ + p0;
      const scalar_t* rows = xs + (n * c_ + c) * p_ + p0;
      scalar_t *bs = local, *bq = local + stride;
      if (k == 4) {
        moment_rows4(rows, rows + p_, rows + 2 * p_, rows + 3 * p_, f1 + f, f2 + f, bs, bs + width, bs + 2 * width,
                     bs + 3 * width, bq, bq + width, bq + 2 * width, bq + 3 * width, width);
      } else {
        for (int64_t j = 0; j < k; ++j) {
          moment_row(rows + j * p_, f1 + f, f2 + f, bs + j * width, bq + j * width, width);
        }
      }
    });
  });
  return {sum_b, sq_b, sum_f, sq_f};
}

std::vector<at::Tensor> gradient_sums(const at::Tensor& g, const at::Tensor& x, const at::Tensor& gamma) {
  check_input(g, "g");
  check_input(x, "x");
  TORCH_CHECK(g.sizes() == x.sizes() && g.scalar_type() == x.scalar_type(), "g must match x");
  const int64_t n_ = x.size(0), c_ = x.size(1), p_ = x.size(2);
  check_factors(x, {}, {}, gamma);
  auto sum_b = at::zeros({c_, p_}, x.options()), sum_bx = at::zeros({c_, p_}, x.options());
  auto sum_f = at::zeros({n_, p_}, x.options()), sum_fx = at::zeros({n_, p_}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bln_gradient_sums", [&] {
    const scalar_t *gs = g.data_ptr<scalar_t>(), *xs = x.data_ptr<scalar_t>(), *gm = gamma.data_ptr<scalar_t>();
    scalar_t *f1 = sum_f.data_ptr<scalar_t>(), *f2 = sum_fx.data_ptr<scalar_t>();
    for_blocks<scalar_t>(x, n_, c_, p_, {sum_b.data_ptr<scalar_t>(), sum_bx.data_ptr<scalar_t>()},
        [&](int64_t n, int64_t c, int64_t k, int64_t p0, int64_t width, scalar_t* local, int64_t stride) {
      const int64_t row = (n * c_ + c) * p_ + p0, f = n * p_ + p0;
      const scalar_t *gr = gs + row, *xr = xs + row;
      scalar_t *bs = local, *bx = local + stride;
      const int64_t w = width;
      int64_t j = 0;
      for (; j + 1 < k; j += 2) {
        const int64_t o = j * p_, l = j * w;
        gradient_rows2(gr + o, gr + o + p_, xr + o, xr + o + p_, gm[c + j], gm[c + j + 1], f1 + f, f2 + f, bs + l,
                       bs + l + w, bx + l, bx + l + w, w);
      }
      for (; j < k; ++j) {
        gradient_row(gr + j * p_, xr + j * p_, gm[c + j], f1 + f, f2 + f, bs + j * w, bx + j * w, w);
      }
    });
  });
  return {sum_b, sum_bx, sum_f, sum_fx};
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

// out = u (a + G b) - v (a2 + b2) + d + e over one row of P positions (backward); returns the
// row's sum of u (v - mf) rf, the gamma gradient's feature part (u = g, v = x)
template <typename scalar_t>
scalar_t backward_row(const scalar_t* __restrict__ u, const scalar_t* __restrict__ v, scalar_t* __restrict__ o,
                      const scalar_t* __restrict__ a, const scalar_t* __restrict__ b, const scalar_t* __restrict__ a2,
                      const scalar_t* __restrict__ b2, const scalar_t* __restrict__ d, const scalar_t* __restrict__ e,
                      const scalar_t* __restrict__ mf, const scalar_t* __restrict__ rf, scalar_t gc, int64_t p_) {
  scalar_t dot = 0;
  for (int64_t p = 0; p < p_; ++p) {
    o[p] = u[p] * (a[p] + gc * b[p]) - v[p] * (a2[p] + b2[p]) + (d[p] + e[p]);
    dot += u[p] * (v[p] - mf[p]) * rf[p];
  }
  return dot;
}

int64_t row_grain(int64_t positions) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, positions)); }

// row(r, n, c) for every row r = n C + c of the (N, C, P) input, in parallel over rows.
template <typename Row>
void for_rows(int64_t n_, int64_t c_, int64_t p_, const Row& row) {
  at::parallel_for(0, n_ * c_, row_grain(p_), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      row(r, r / c_, r % c_);
    }
  });
}

at::Tensor apply_forward(const at::Tensor& x, const at::Tensor& a, const at::Tensor& b, const at::Tensor& d,
                         const at::Tensor& e, const at::Tensor& gamma) {
  check_input(x, "x");
  const int64_t n_ = x.size(0), c_ = x.size(1), p_ = x.size(2);
  check_factors(x, {{&a, "a"}, {&d, "d"}}, {{&b, "b"}, {&e, "e"}}, gamma);
  auto y = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bln_apply_forward", [&] {
    const scalar_t* xs = x.data_ptr<scalar_t>();
    scalar_t* ys = y.data_ptr<scalar_t>();
    const scalar_t *as = a.data_ptr<scalar_t>(), *bs = b.data_ptr<scalar_t>();
    const scalar_t *ds = d.data_ptr<scalar_t>(), *es = e.data_ptr<scalar_t>(), *gs = gamma.data_ptr<scalar_t>();
    for_rows(n_, c_, p_, [&](int64_t r, int64_t n, int64_t c) {
      forward_row(xs + r * p_, ys + r * p_, as + c * p_, bs + n * p_, ds + c * p_, es + n * p_, gs[c], p_);
    });
  });
  return y;
}

// dx, and d_gamma[c] += wf sum_{n, p} g (x - mu_f) rf: the gamma gradient's feature part, from the
// same read of g and x (each row's dot product is taken by one task, then the rows of a channel are
// added in sample order, so no bit depends on the thread count). ``d_gamma`` holds the batch part
// (backward_factors) on entry.
at::Tensor apply_backward(const at::Tensor& g, const at::Tensor& x, const at::Tensor& a, const at::Tensor& b,
                          const at::Tensor& a2, const at::Tensor& b2, const at::Tensor& d, const at::Tensor& e,
                          const at::Tensor& gamma, const at::Tensor& mu_f, const at::Tensor& rf, at::Tensor d_gamma,
                          double wf) {
  check_input(g, "g");
  check_input(x, "x");
  TORCH_CHECK(g.sizes() == x.sizes() && g.scalar_type() == x.scalar_type(), "g must match x");
  const int64_t n_ = x.size(0), c_ = x.size(1), p_ = x.size(2);
  check_factors(x, {{&a, "a"}, {&a2, "a2"}, {&d, "d"}}, {{&b, "b"}, {&b2, "b2"}, {&e, "e"}, {&mu_f, "mu_f"}, {&rf, "rf"}},
                gamma);
  check_factor(d_gamma, x, 1, c_, "d_gamma");
  auto dx = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bln_apply_backward", [&] {
    const scalar_t *gs = g.data_ptr<scalar_t>(), *xs = x.data_ptr<scalar_t>();
    scalar_t* out = dx.data_ptr<scalar_t>();
    const scalar_t *as = a.data_ptr<scalar_t>(), *bs = b.data_ptr<scalar_t>();
    const scalar_t *a2s = a2.data_ptr<scalar_t>(), *b2s = b2.data_ptr<scalar_t>();
    const scalar_t *ds = d.data_ptr<scalar_t>(), *es = e.data_ptr<scalar_t>(), *gm = gamma.data_ptr<scalar_t>();
    const scalar_t *mfs = mu_f.data_ptr<scalar_t>(), *rfs = rf.data_ptr<scalar_t>();
    std::vector<scalar_t> dots(static_cast<size_t>(n_ * c_));
    for_rows(n_, c_, p_, [&](int64_t r, int64_t n, int64_t c) {
      dots[r] = backward_row(gs + r * p_, xs + r * p_, out + r * p_, as + c * p_, bs + n * p_, a2s + c * p_,
                             b2s + n * p_, ds + c * p_, es + n * p_, mfs + n * p_, rfs + n * p_, gm[c], p_);
    });
    scalar_t* dg = d_gamma.data_ptr<scalar_t>();
    for (int64_t c = 0; c < c_; ++c) {
      scalar_t sum = 0;
      for (int64_t n = 0; n < n_; ++n) sum += dots[n * c_ + c];
      dg[c] += static_cast<scalar_t>(wf) * sum;
    }
  });
  return dx;
}

// ---- small factors: per (channel, position) and per (sample, position), computed in one place ----

// The (C, P) batch-side and (N, P) feature-side statistics and output factors of the forward, from
// the sums (batch sums given per (c, q) with Q = P, or Q = 1 for pooled statistics):
//   mu = sum / count, var = max(sq / count - mu^2, 0), r = 1 / sqrt(var + eps)
//   A = gamma wb rb, D = beta - A mu_b (per (c, p)); B = wf rf, E = -wf rf mu_f (per (n, p)).
// The last tensor holds 1 where a group's squared mean exceeds ill_ratio (var + eps) (E[x^2] -
// E[x]^2 would lose precision there: the caller recomputes those variances around their means).
std::vector<at::Tensor> forward_factors(const at::Tensor& sum_b, const at::Tensor& sq_b, const at::Tensor& sum_f,
                                        const at::Tensor& sq_f, const at::Tensor& gamma, const at::Tensor& beta,
                                        double inv_b, double inv_c, double wf, double wb, double eps,
                                        double ill_ratio) {
  const int64_t c_ = sum_b.size(0), q_ = sum_b.size(1), n_ = sum_f.size(0), p_ = sum_f.size(1);
  auto opts = sum_b.options();
  auto mu_b = at::empty({c_, q_}, opts), var_b = at::empty({c_, q_}, opts), rb = at::empty({c_, q_}, opts);
  auto mu_f = at::empty({n_, p_}, opts), var_f = at::empty({n_, p_}, opts), rf = at::empty({n_, p_}, opts);
  auto a = at::empty({c_, p_}, opts), d = at::empty({c_, p_}, opts);
  auto b = at::empty({n_, p_}, opts), e = at::empty({n_, p_}, opts);
  int64_t ill = 0;
  AT_DISPATCH_FLOATING_TYPES(sum_b.scalar_type(), "bln_forward_factors", [&] {
    const scalar_t *s1 = sum_b.data_ptr<scalar_t>(), *s2 = sq_b.data_ptr<scalar_t>();
    const scalar_t *f1 = sum_f.data_ptr<scalar_t>(), *f2 = sq_f.data_ptr<scalar_t>();
    const scalar_t *gm = gamma.data_ptr<scalar_t>(), *bt = beta.data_ptr<scalar_t>();
    scalar_t *mb = mu_b.data_ptr<scalar_t>(), *vb = var_b.data_ptr<scalar_t>(), *rbs = rb.data_ptr<scalar_t>();
    scalar_t *mf = mu_f.data_ptr<scalar_t>(), *vf = var_f.data_ptr<scalar_t>(), *rfs = rf.data_ptr<scalar_t>();
    scalar_t *as = a.data_ptr<scalar_t>(), *ds = d.data_ptr<scalar_t>(), *bs = b.data_ptr<scalar_t>(), *es = e.data_ptr<scalar_t>();
    const scalar_t ib = inv_b, ic = inv_c, ep = eps, kf = wf, kb = wb, ratio = ill_ratio;
    for (int64_t c = 0; c < c_; ++c) {
      for (int64_t q = 0; q < q_; ++q) {
        const int64_t i = c * q_ + q;
        const scalar_t m = s1[i] * ib, v = std::max(s2[i] * ib - m * m, scalar_t(0));
        const scalar_t r = scalar_t(1) / std::sqrt(v + ep);
        ill |= (m * m > ratio * (v + ep));
        mb[i] = m, vb[i] = v, rbs[i] = r;
      }
      const scalar_t g = gm[c] * kb;
      for (int64_t p = 0; p < p_; ++p) {
        const int64_t i = c * q_ + (q_ == 1 ? 0 : p);
        const scalar_t scale = g * rbs[i];
        as[c * p_ + p] = scale;
        ds[c * p_ + p] = bt[c] - scale * mb[i];
      }
    }
    for (int64_t i = 0; i < n_ * p_; ++i) {
      const scalar_t m = f1[i] * ic, v = std::max(f2[i] * ic - m * m, scalar_t(0));
      const scalar_t r = scalar_t(1) / std::sqrt(v + ep);
      ill |= (m * m > ratio * (v + ep));
      mf[i] = m, vf[i] = v, rfs[i] = r;
      bs[i] = kf * r;
      es[i] = -kf * r * m;
    }
  });
  return {mu_b, var_b, rb, mu_f, var_f, rf, a, b, d, e, at::scalar_tensor(ill, at::kLong)};
}

// The input-gradient factors and the parameter gradients of the backward, from its sums (batch
// sums per (c, q) as in forward_factors) and the forward's statistics; with S_b = sum_n g,
// X_b = sum_n g x, S_f = sum_c gamma g, X_f = sum_c gamma g x and inv_b = 1 / (batch count):
//   t_b = (X_b - mu_b S_b) rb (= sum of g xb), A = gamma wb rb, A2 = A rb t_b inv_b,
//   D = -A (S_b inv_b - mu_b rb t_b inv_b); per (n, p):
//   B = wf rf, u = (X_f - mu_f S_f) rf^2 / C, B2 = B u, E = B (u mu_f - S_f / C);
//   dgamma[c] = wb sum_q t_b[c, q] (apply_backward adds wf sum g x_f), dbeta[c] = sum_q S_b[c, q].
std::vector<at::Tensor> backward_factors(const at::Tensor& s_b, const at::Tensor& x_b, const at::Tensor& s_f,
                                         const at::Tensor& x_f, const at::Tensor& mu_b,
                                         const at::Tensor& rb, const at::Tensor& mu_f, const at::Tensor& rf,
                                         const at::Tensor& gamma, double inv_b, double inv_c, double wf, double wb) {
  const int64_t c_ = s_b.size(0), q_ = s_b.size(1), n_ = s_f.size(0), p_ = s_f.size(1);
  auto opts = s_b.options();
  auto a = at::empty({c_, p_}, opts), a2 = at::empty({c_, p_}, opts), d = at::empty({c_, p_}, opts);
  auto b = at::empty({n_, p_}, opts), b2 = at::empty({n_, p_}, opts), e = at::empty({n_, p_}, opts);
  auto d_gamma = at::empty({c_}, opts), d_beta = at::empty({c_}, opts);
  AT_DISPATCH_FLOATING_TYPES(s_b.scalar_type(), "bln_backward_factors", [&] {
    const scalar_t *sb = s_b.data_ptr<scalar_t>(), *xb = x_b.data_ptr<scalar_t>();
    const scalar_t *sf = s_f.data_ptr<scalar_t>(), *xf = x_f.data_ptr<scalar_t>();
    const scalar_t *mb = mu_b.data_ptr<scalar_t>(), *rbs = rb.data_ptr<scalar_t>();
    const scalar_t *mf = mu_f.data_ptr<scalar_t>(), *rfs = rf.data_ptr<scalar_t>(), *gm = gamma.data_ptr<scalar_t>();
    scalar_t *as = a.data_ptr<scalar_t>(), *a2s = a2.data_ptr<scalar_t>(), *ds = d.data_ptr<scalar_t>();
    scalar_t *bs = b.data_ptr<scalar_t>(), *b2s = b2.data_ptr<scalar_t>(), *es = e.data_ptr<scalar_t>();
    scalar_t *dg = d_gamma.data_ptr<scalar_t>(), *db = d_beta.data_ptr<scalar_t>();
    const scalar_t ib = inv_b, ic = inv_c, kf = wf, kb = wb;
    std::vector<scalar_t> coef(q_), shift(q_);
    for (int64_t c = 0; c < c_; ++c) {
      scalar_t t_sum = 0, s_sum = 0;
      const scalar_t scale_g = gm[c] * kb;
      for (int64_t q = 0; q < q_; ++q) {
        const int64_t i = c * q_ + q;
        const scalar_t t = (xb[i] - mb[i] * sb[i]) * rbs[i];  // sum of g xb over the batch group
        const scalar_t rb_m = rbs[i] * t * ib;                 // rb mean_b(g xb)
        const scalar_t scale = scale_g * rbs[i];
        coef[q] = scale * rb_m;
        shift[q] = -(sb[i] * ib - mb[i] * rb_m) * scale;
        t_sum += t;
        s_sum += sb[i];
      }
      for (int64_t p = 0; p < p_; ++p) {
        const int64_t q = q_ == 1 ? 0 : p;
        as[c * p_ + p] = scale_g * rbs[c * q_ + q];
        a2s[c * p_ + p] = coef[q];
        ds[c * p_ + p] = shift[q];
      }
      dg[c] = kb * t_sum;  // the feature part is added by apply_backward
      db[c] = s_sum;
    }
    for (int64_t i = 0; i < n_ * p_; ++i) {
      const scalar_t kfr = kf * rfs[i];
      const scalar_t u = (xf[i] - mf[i] * sf[i]) * rfs[i] * rfs[i] * ic;
      bs[i] = kfr;
      b2s[i] = kfr * u;
      es[i] = kfr * (u * mf[i] - sf[i] * ic);
    }
  });
  return {a, b, a2, b2, d, e, d_gamma, d_beta};
}

}  // namespace

void register_rows_kernel(pybind11::module& m);  // bln_rows_kernel.cpp: BLN on one position per sample

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  register_rows_kernel(m);
  m.def("moment_sums", &moment_sums, "sums of x and x^2 over N (C, P) and over C (N, P)");
  m.def("gradient_sums", &gradient_sums, "BLN backward's reductions in one read of g and x");
  m.def("apply_forward", &apply_forward, "y = x (A + G B) + D + G E");
  m.def("apply_backward", &apply_backward, "dx = g (A + G B) - x (A2 + B2) + D + E; adds the gamma gradient's feature part to d_gamma");
  m.def("forward_factors", &forward_factors, "statistics and output factors from the forward's sums");
  m.def("backward_factors", &backward_factors, "input-gradient factors and parameter gradients from the backward's sums");
}
