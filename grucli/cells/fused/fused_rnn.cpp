// grucli fused recurrent kernels (model.impl: fused). Built on first use by grucli/cells/fused/build.py
// with torch.utils.cpp_extension.load_inline and cached per machine.
//
// One layer, one direction, time-major, raw pointers throughout (no ATen op per step).
// Forward, per step: one matmul gh = h W_hh^T (no bias: biases are added in the gate pass),
// then ONE pass over the gate buffer doing all gate arithmetic (vectorised sigmoid/tanh
// through the Sleef functions libtorch already exports; a row's leftover elements go in one
// masked vector: a scalar exp each made a step at H=39 ~1.6x slower). The input projection
// x W_ih^T is one matmul per chunk of a few steps, computed just before they run, so it is
// read back from cache.
// Backward, per step: one pass for the gate gradients and one matmul for dh_prev. Every
// chunk of a few steps, while its gate gradients are still in cache, the weight gradients
// (dW_ih, dW_hh, biases) are accumulated with one matmul each, and dx is formed. Nothing of
// size (T, B, G*H) is written in the backward.
//
// out[t] always holds the state after step t; a masked (padded) step copies the previous
// state, so the last processed step holds every sequence's final state.
//
// Matrix products run on grucli's own register-tiled kernels (gemm.h) where this build has
// SIMD (AVX-512 or AVX2): 2-5x the BLAS libtorch links at these sizes on the AMD machines
// measured. A build without SIMD calls that BLAS (sgemm_/dgemm_, looked up as weak symbols),
// or ATen on tensor views where libtorch exports none. Products whose right operand is a
// transposed weight read a transposed copy made once per call.

#include <cmath>
#include <algorithm>
#include <climits>
#include <cstring>
#include <vector>

#include "gemm.h"

extern "C" {
void sgemm_(const char*, const char*, const int*, const int*, const int*, const float*, const float*, const int*,
            const float*, const int*, const float*, float*, const int*) __attribute__((weak));
void dgemm_(const char*, const char*, const int*, const int*, const int*, const double*, const double*, const int*,
            const double*, const int*, const double*, double*, const int*) __attribute__((weak));
}

#if defined(GRUCLI_AVX512)
#include <immintrin.h>
extern "C" {
__m512 Sleef_expf16_u10(__m512);
__m512 Sleef_tanhf16_u35(__m512);
__m512d Sleef_expd8_u10(__m512d);
__m512d Sleef_tanhd8_u10(__m512d);
}
#elif defined(GRUCLI_AVX2)
#include <immintrin.h>
extern "C" {
__m256 Sleef_expf8_u10(__m256);
__m256 Sleef_tanhf8_u35(__m256);
__m256d Sleef_expd4_u10(__m256d);
__m256d Sleef_tanhd4_u10(__m256d);
}
#endif

namespace {

using at::Tensor;

template <typename T> inline T sigm(T x) { return T(1) / (T(1) + std::exp(-x)); }

template <typename T> void sigmoid_(T* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = sigm(x[i]);
}
template <typename T> void tanh_(T* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = std::tanh(x[i]);
}

#if defined(GRUCLI_AVX512)
template <> void sigmoid_<float>(float* x, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.f), zero = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 v = _mm512_loadu_ps(x + i);
    v = _mm512_div_ps(one, _mm512_add_ps(one, Sleef_expf16_u10(_mm512_sub_ps(zero, v))));
    _mm512_storeu_ps(x + i, v);
  }
  if (i < n) {  // the tail in one masked vector: the same Sleef function as every other element
    const __mmask16 k = __mmask16((1u << (n - i)) - 1);
    __m512 v = _mm512_maskz_loadu_ps(k, x + i);
    v = _mm512_div_ps(one, _mm512_add_ps(one, Sleef_expf16_u10(_mm512_sub_ps(zero, v))));
    _mm512_mask_storeu_ps(x + i, k, v);
  }
}
template <> void tanh_<float>(float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, Sleef_tanhf16_u35(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 k = __mmask16((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(x + i, k, Sleef_tanhf16_u35(_mm512_maskz_loadu_ps(k, x + i)));
  }
}
template <> void sigmoid_<double>(double* x, int64_t n) {
  const __m512d one = _mm512_set1_pd(1.), zero = _mm512_setzero_pd();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m512d v = _mm512_loadu_pd(x + i);
    v = _mm512_div_pd(one, _mm512_add_pd(one, Sleef_expd8_u10(_mm512_sub_pd(zero, v))));
    _mm512_storeu_pd(x + i, v);
  }
  for (; i < n; ++i) x[i] = sigm(x[i]);
}
template <> void tanh_<double>(double* x, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm512_storeu_pd(x + i, Sleef_tanhd8_u10(_mm512_loadu_pd(x + i)));
  for (; i < n; ++i) x[i] = std::tanh(x[i]);
}
#elif defined(GRUCLI_AVX2)
inline __m256i tail_mask8(int64_t r) {  // lanes [0, r) set, 0 < r < 8
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(r)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
template <> void sigmoid_<float>(float* x, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.f), zero = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    v = _mm256_div_ps(one, _mm256_add_ps(one, Sleef_expf8_u10(_mm256_sub_ps(zero, v))));
    _mm256_storeu_ps(x + i, v);
  }
  if (i < n) {  // the tail in one masked vector: the same Sleef function as every other element
    const __m256i k = tail_mask8(n - i);
    __m256 v = _mm256_maskload_ps(x + i, k);
    v = _mm256_div_ps(one, _mm256_add_ps(one, Sleef_expf8_u10(_mm256_sub_ps(zero, v))));
    _mm256_maskstore_ps(x + i, k, v);
  }
}
template <> void tanh_<float>(float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, Sleef_tanhf8_u35(_mm256_loadu_ps(x + i)));
  if (i < n) {
    const __m256i k = tail_mask8(n - i);
    _mm256_maskstore_ps(x + i, k, Sleef_tanhf8_u35(_mm256_maskload_ps(x + i, k)));
  }
}
template <> void sigmoid_<double>(double* x, int64_t n) {
  const __m256d one = _mm256_set1_pd(1.), zero = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    __m256d v = _mm256_loadu_pd(x + i);
    v = _mm256_div_pd(one, _mm256_add_pd(one, Sleef_expd4_u10(_mm256_sub_pd(zero, v))));
    _mm256_storeu_pd(x + i, v);
  }
  for (; i < n; ++i) x[i] = sigm(x[i]);
}
template <> void tanh_<double>(double* x, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) _mm256_storeu_pd(x + i, Sleef_tanhd4_u10(_mm256_loadu_pd(x + i)));
  for (; i < n; ++i) x[i] = std::tanh(x[i]);
}
#endif

// ------------------------------------------------------------------------------ matmul
// Which code runs the products: grucli's tiles (gemm.h), the BLAS, or ATen (tests compare them).
enum Products : int64_t { OWN = 0, BLAS = 1, ATEN = 2 };
int64_t products = smallgemm::AVAILABLE ? OWN : BLAS;

// Fortran BLAS gemm (column-major), the same signature for float and double.
template <typename S>
using BlasGemm = void(const char*, const char*, const int*, const int*, const int*, const S*, const S*, const int*,
                      const S*, const int*, const S*, S*, const int*);
template <typename S> BlasGemm<S>* blas_gemm();  // null where libtorch exports none
template <> BlasGemm<float>* blas_gemm<float>() { return sgemm_; }
template <> BlasGemm<double>* blas_gemm<double>() { return dgemm_; }

template <typename S> Tensor view(const S* p, int64_t rows, int64_t cols, int64_t ld) {
  return at::from_blob(const_cast<S*>(p), {rows, cols}, {ld, 1},
                       at::TensorOptions().dtype(c10::CppTypeToScalarType<S>::value));
}

// C^T (N x M) = B^T A for C = A^T B with few columns (N below one vector) and many rows:
// vectorised along M instead of N, then added into C transposed.
template <typename S>
void own_narrow(int64_t M, int64_t N, int64_t K, const S* A, int64_t lda, const S* B, int64_t ldb, bool accumulate,
                S* C, int64_t ldc) {
  thread_local std::vector<S> scratch;
  scratch.resize(size_t(M * N));
  smallgemm::gemm<S>(true, N, M, K, B, ldb, A, lda, false, scratch.data(), M);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = accumulate ? C[i * ldc + j] + scratch[j * M + i] : scratch[j * M + i];
}

// Row-major C (M x N, leading dimension ldc) = op(A) B + beta C (beta 0 or 1), with op(A)
// M x K: A stored M x K (or K x M if ta) with leading dimension lda; B stored K x N (ldb).
template <typename S>
void gemm(bool ta, int64_t M, int64_t N, int64_t K, const S* A, int64_t lda, const S* B, int64_t ldb, S beta, S* C,
          int64_t ldc) {
  if (M == 0 || N == 0) return;
  const bool accumulate = beta != S(0);
  if (K == 0) {  // an empty sum (BLAS implementations disagree on it)
    if (!accumulate)
      for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, S(0));
    return;
  }
  if (products == OWN && smallgemm::AVAILABLE) {
    if (ta && N < smallgemm::Vec<S>::W && M >= smallgemm::Vec<S>::W)
      own_narrow<S>(M, N, K, A, lda, B, ldb, accumulate, C, ldc);
    else
      smallgemm::gemm<S>(ta, M, N, K, A, lda, B, ldb, accumulate, C, ldc);
    return;
  }
  const int64_t big = std::max({M, N, K, lda, ldb, ldc});
  BlasGemm<S>* blas = blas_gemm<S>();
  if (products != ATEN && blas && big < INT_MAX) {
    // column-major BLAS sees each row-major matrix transposed: C^T = B^T op(A)^T
    const int m = int(N), n = int(M), k = int(K), la = int(lda), lb = int(ldb), lc = int(ldc);
    const S one = 1;
    blas("N", ta ? "T" : "N", &m, &n, &k, &one, B, &lb, A, &la, &beta, C, &lc);
    return;
  }
  Tensor a = ta ? view(A, K, M, lda).t() : view(A, M, K, lda);
  Tensor b = view(B, K, N, ldb);
  view(C, M, N, ldc).addmm_(a, b, beta, 1);
}

// A weight's transpose, contiguous: the right operand of x W^T, made once per call.
inline Tensor transposed(const Tensor& w) { return w.t().contiguous(); }

// ------------------------------------------------------------------------------ layout
struct Steps {  // processing order of one direction
  int64_t T;
  bool reverse;
  int64_t at(int64_t s) const { return reverse ? T - 1 - s : s; }
};

inline const bool* mask_ptr(const c10::optional<Tensor>& mask) {
  return mask.has_value() && mask->defined() ? mask->data_ptr<bool>() : nullptr;
}

inline bool given(const c10::optional<Tensor>& t) { return t.has_value() && t->defined(); }

// A window of C consecutive time steps [lo, hi), visited in descending or ascending t.
// C is chosen so that a (C*B, width) buffer holds about `budget` elements (~cache-sized).
struct Chunk {
  int64_t T, C, lo = 0, hi = 0;
  bool descending;
  Chunk(int64_t T_, int64_t rows_per_step, int64_t budget, bool descending_)
      : T(T_), C(std::max<int64_t>(1, std::min<int64_t>(T_, budget / std::max<int64_t>(1, rows_per_step)))),
        descending(descending_) {}
  bool contains(int64_t t) const { return t >= lo && t < hi; }
  void start(int64_t t) {  // the window whose first visited step is t
    lo = descending ? std::max<int64_t>(0, t - C + 1) : t;
    hi = descending ? t + 1 : std::min(T, t + C);
  }
};

// The input projection x W_ih^T, computed a chunk of steps at a time just before those
// steps run, into a cache-sized buffer instead of a (T, B, G*H) array in memory.
template <typename S> struct Projection {
  Tensor wt;  // W_ih^T (I, GH)
  const S *x, *w;  // (T, B, I), W_ih^T
  int64_t B, I, GH;
  Chunk chunk;
  Tensor storage;  // (C*B, GH)
  S* buf;
  // x (T, B, I) and w_ih (GH, I), both contiguous
  Projection(const Tensor& x_, const Tensor& w_ih, bool reverse, int64_t budget)
      : wt(transposed(w_ih)), x(x_.data_ptr<S>()), w(wt.data_ptr<S>()), B(x_.size(1)), I(x_.size(2)),
        GH(w_ih.size(0)), chunk(x_.size(0), B * GH, budget, reverse),
        storage(at::empty({chunk.C * B, GH}, x_.options())), buf(storage.data_ptr<S>()) {}
  const S* step(int64_t t) {  // gi for step t: (B, GH)
    if (!chunk.contains(t)) {
      chunk.start(t);
      gemm<S>(false, (chunk.hi - chunk.lo) * B, GH, I, x + chunk.lo * B * I, I, w, GH, S(0), buf, GH);
    }
    return buf + (t - chunk.lo) * B * GH;
  }
};

// The weight gradients of one layer and direction, accumulated chunk by chunk in the
// backward: dW_hh += dG^T h_prev, dW_ih += dI^T x, db_hh += colsum dG, db_ih += colsum dI,
// dx = dI W_ih. dG is the gradient of h W_hh^T, dI that of x W_ih^T (the same buffer for
// LSTM and RNN; GRU's differs in the n block).
template <typename S> struct WeightGrads {
  const S *x, *w_ih, *out, *h0;  // (T, B, I), (GH, I), (T, B, H), (B, H)
  int64_t T, B, I, H, GH;
  bool reverse;
  S *dw_ih, *dw_hh, *db_ih, *db_hh, *dx;  // dx may be null
  int64_t HR = 0;  // rows of W_hh whose product reads h_prev (0: all GH); GRU-Cho's n block reads r*h_prev

  void add(int64_t lo, int64_t hi, const S* dG, const S* dI) {  // rows of times lo..hi-1
    const int64_t n = (hi - lo) * B;
    // h_prev of step t: out[t-1] (forward) or out[t+1] (reverse); h0 for the first step
    const int64_t first = reverse ? T - 1 : 0;
    const int64_t M = HR ? HR : GH;
    int64_t a = lo, b = hi;  // the times whose h_prev is a row of out
    if (first >= lo && first < hi) {
      gemm<S>(true, M, H, B, dG + (first - lo) * B * GH, GH, h0, H, S(1), dw_hh, H);
      if (reverse) b = hi - 1; else a = lo + 1;
    }
    if (b > a) {
      const S* hp = out + (reverse ? a + 1 : a - 1) * B * H;
      gemm<S>(true, M, H, (b - a) * B, dG + (a - lo) * B * GH, GH, hp, H, S(1), dw_hh, H);
    }
    gemm<S>(true, GH, I, n, dI, GH, x + lo * B * I, I, S(1), dw_ih, I);
    for (int64_t r = 0; r < n; ++r) {
      const S *g = dG + r * GH, *gi = dI + r * GH;
      for (int64_t j = 0; j < GH; ++j) db_hh[j] += g[j];
      if (dI != dG)
        for (int64_t j = 0; j < GH; ++j) db_ih[j] += gi[j];
    }
    if (dx) gemm<S>(false, n, I, GH, dI, GH, w_ih, I, S(0), dx + lo * B * I, I);
  }
};

// Row kernels: one sequence, one step. __restrict__ lets the compiler vectorise them.
template <typename S>
inline void add_(S* __restrict__ d, const S* __restrict__ go, int64_t n) {
  for (int64_t j = 0; j < n; ++j) d[j] += go[j];
}

template <typename S>
inline void gru_row_forward(const S* __restrict__ x, const S* __restrict__ gh, const S* __restrict__ bi,
                            const S* __restrict__ bh, const S* __restrict__ hp, S* __restrict__ g,
                            S* __restrict__ gn, S* __restrict__ o, int64_t H) {
  for (int64_t j = 0; j < 2 * H; ++j) g[j] = (x[j] + bi[j]) + (gh[j] + bh[j]);
  sigmoid_(g, 2 * H);  // r, z
  for (int64_t j = 0; j < H; ++j) {
    gn[j] = gh[2 * H + j] + bh[2 * H + j];
    g[2 * H + j] = (x[2 * H + j] + bi[2 * H + j]) + g[j] * gn[j];
  }
  tanh_(g + 2 * H, H);  // n
  for (int64_t j = 0; j < H; ++j) o[j] = (S(1) - g[H + j]) * g[2 * H + j] + g[H + j] * hp[j];
}

template <typename S>  // dg: gradient of h W_hh^T (r, z, dn * r); di: of x W_ih^T (r, z, dn)
inline void gru_row_backward(const S* __restrict__ g, const S* __restrict__ gn, const S* __restrict__ hp,
                             const S* __restrict__ d, S* __restrict__ dd, S* __restrict__ dg,
                             S* __restrict__ di, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    const S r = g[j], z = g[H + j], n = g[2 * H + j], dhj = d[j];
    const S dn = dhj * (S(1) - z) * (S(1) - n * n);  // through tanh
    const S dz = dhj * (hp[j] - n) * z * (S(1) - z);
    const S dr = dn * gn[j] * r * (S(1) - r);
    dd[j] = dhj * z;
    dg[j] = di[j] = dr;
    dg[H + j] = di[H + j] = dz;
    dg[2 * H + j] = dn * r;
    di[2 * H + j] = dn;
  }
}

template <typename S>
inline void lstm_row_forward(const S* __restrict__ x, const S* __restrict__ gh, const S* __restrict__ bi,
                             const S* __restrict__ bh, const S* __restrict__ cp, S* __restrict__ g,
                             S* __restrict__ c, S* __restrict__ tc, S* __restrict__ o, int64_t H) {
  for (int64_t j = 0; j < 4 * H; ++j) g[j] = (x[j] + bi[j]) + (gh[j] + bh[j]);
  sigmoid_(g, 2 * H);  // i, f
  tanh_(g + 2 * H, H);  // g
  sigmoid_(g + 3 * H, H);  // o
  for (int64_t j = 0; j < H; ++j) tc[j] = c[j] = g[H + j] * cp[j] + g[j] * g[2 * H + j];
  tanh_(tc, H);
  for (int64_t j = 0; j < H; ++j) o[j] = g[3 * H + j] * tc[j];
}

template <typename S>
inline void lstm_row_backward(const S* __restrict__ g, const S* __restrict__ tc, const S* __restrict__ cp,
                              const S* __restrict__ d, S* __restrict__ dcb, S* __restrict__ dg, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    const S i = g[j], f = g[H + j], gg = g[2 * H + j], o = g[3 * H + j], dhj = d[j];
    const S dcj = dcb[j] + dhj * o * (S(1) - tc[j] * tc[j]);
    dg[j] = dcj * gg * i * (S(1) - i);
    dg[H + j] = dcj * cp[j] * f * (S(1) - f);
    dg[2 * H + j] = dcj * i * (S(1) - gg * gg);
    dg[3 * H + j] = dhj * tc[j] * o * (S(1) - o);
    dcb[j] = dcj * f;
  }
}

template <typename S>
inline void rnn_row_forward(const S* __restrict__ x, const S* __restrict__ gh, const S* __restrict__ bi,
                            const S* __restrict__ bh, S* __restrict__ o, int64_t H, bool relu) {
  for (int64_t j = 0; j < H; ++j) o[j] = (x[j] + bi[j]) + (gh[j] + bh[j]);
  if (relu) {
    for (int64_t j = 0; j < H; ++j) o[j] = o[j] > S(0) ? o[j] : S(0);
  } else {
    tanh_(o, H);
  }
}

template <typename S>
inline void rnn_row_backward(const S* __restrict__ h, const S* __restrict__ d, S* __restrict__ dg, int64_t H,
                             bool relu) {
  if (relu) {
    for (int64_t j = 0; j < H; ++j) dg[j] = h[j] > S(0) ? d[j] : S(0);
  } else {
    for (int64_t j = 0; j < H; ++j) dg[j] = d[j] * (S(1) - h[j] * h[j]);
  }
}

// Shapes shared by the entry points below.
struct Dims {
  int64_t T, B, I, H;
};
inline Dims dims(const Tensor& x, const Tensor& h0) { return {x.size(0), x.size(1), x.size(2), h0.size(1)}; }

// The (B, H) state gradient carried backward through time, and its scratch twin: each step
// writes dL/dh_prev into `next`, then the two swap.
template <typename S> struct Carry {
  Tensor a, b;
  S *cur, *next;
  Carry(const c10::optional<Tensor>& grad_h, int64_t B, int64_t H, const at::TensorOptions& o)
      : a(given(grad_h) ? grad_h->contiguous().clone() : at::zeros({B, H}, o)), b(at::empty({B, H}, o)),
        cur(a.data_ptr<S>()), next(b.data_ptr<S>()) {}
  void swap() { std::swap(cur, next); }
  Tensor result() const { return cur == a.data_ptr<S>() ? a : b; }
};

struct Grads {  // dx (or undefined), dW_ih, dW_hh, db_ih, db_hh
  Tensor dx, dw_ih, dw_hh, db_ih, db_hh;
  Grads(const Dims& d, int64_t GH, bool need_dx, const at::TensorOptions& o)
      : dx(need_dx ? at::empty({d.T, d.B, d.I}, o) : Tensor()), dw_ih(at::zeros({GH, d.I}, o)),
        dw_hh(at::zeros({GH, d.H}, o)), db_ih(at::zeros({GH}, o)), db_hh(at::zeros({GH}, o)) {}
  template <typename S>
  WeightGrads<S> acc(const Tensor& x, const Tensor& w_ih, const Tensor& out, const Tensor& h0, const Dims& d, int64_t GH,
                     bool reverse) {
    return {x.data_ptr<S>(), w_ih.data_ptr<S>(), out.data_ptr<S>(), h0.data_ptr<S>(), d.T, d.B, d.I, d.H, GH, reverse,
            dw_ih.data_ptr<S>(), dw_hh.data_ptr<S>(), db_ih.data_ptr<S>(), db_hh.data_ptr<S>(),
            dx.defined() ? dx.data_ptr<S>() : nullptr};
  }
};

}  // namespace

// ------------------------------------------------------------------------------------ GRU
// gates (r, z, n) as torch: r = s(gi_r + b_ir + gh_r + b_hr), z likewise,
// n = tanh(gi_n + b_in + r * (gh_n + b_hn)), h = (1 - z) * n + z * h_prev, gh = h_prev W_hh^T.
// save=false (inference): the gates are kept for one step only.
// Returns out (T, B, H), h_n, and for the backward: gates (r, z, n), gh_n + b_hn.
std::vector<Tensor> gru_forward(Tensor x, Tensor w_ih, Tensor h0, Tensor w_hh, Tensor b_ih, Tensor b_hh,
                                c10::optional<Tensor> mask, bool reverse, bool save, int64_t budget) {
  const Dims d = dims(x, h0);
  const int64_t T = d.T, B = d.B, H = d.H;
  auto o = x.options();
  auto out = at::empty({T, B, H}, o);
  auto gates = at::empty({save ? T : 1, B, 3 * H}, o);
  auto ghn = at::empty({save ? T : 1, B, H}, o);
  auto gh = at::empty({B, 3 * H}, o);
  const bool* m = mask_ptr(mask);
  Steps steps{T, reverse};
  const Tensor whh_t = transposed(w_hh);  // (H, G*H): the right operand of h W_hh^T
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gru_forward", [&] {
    using S = scalar_t;
    Projection<S> proj(x, w_ih, reverse, budget);
    const S *bi = b_ih.data_ptr<S>(), *bh = b_hh.data_ptr<S>(), *whhT = whh_t.data_ptr<S>(), *h00 = h0.data_ptr<S>();
    S *gh0 = gh.data_ptr<S>(), *out0 = out.data_ptr<S>(), *g0 = gates.data_ptr<S>(), *gn0 = ghn.data_ptr<S>();
    for (int64_t s = 0; s < T; ++s) {
      const int64_t t = steps.at(s);
      const S* hp0 = s == 0 ? h00 : out0 + steps.at(s - 1) * B * H;
      gemm<S>(false, B, 3 * H, H, hp0, H, whhT, 3 * H, S(0), gh0, 3 * H);
      const S* xg = proj.step(t);
      for (int64_t b = 0; b < B; ++b) {
        const int64_t row = t * B + b, srow = save ? row : b;
        S* o = out0 + row * H;
        if (m && !m[row]) {
          std::memcpy(o, hp0 + b * H, H * sizeof(S));
          continue;
        }
        gru_row_forward(xg + b * 3 * H, gh0 + b * 3 * H, bi, bh, hp0 + b * H, g0 + srow * 3 * H, gn0 + srow * H, o,
                        H);
      }
    }
  });
  Tensor h_last = T ? out[steps.at(T - 1)].clone() : h0.clone();
  return {out, h_last, gates, ghn};
}

// Returns dx (undefined unless need_dx), dh0, dW_ih, dW_hh, db_ih, db_hh.
std::vector<Tensor> gru_backward(c10::optional<Tensor> grad_out, c10::optional<Tensor> grad_h, Tensor gates,
                                 Tensor ghn, Tensor out, Tensor h0, Tensor x, Tensor w_ih, Tensor w_hh,
                                 c10::optional<Tensor> mask, bool reverse, bool need_dx, int64_t budget) {
  const Dims d = dims(x, h0);
  const int64_t T = d.T, B = d.B, H = d.H, GH = 3 * H;
  auto o = out.options();
  const bool* m = mask_ptr(mask);
  const bool has_go = given(grad_out);
  Tensor go = has_go ? grad_out->contiguous() : Tensor();
  Grads grads(d, GH, need_dx, o);
  Chunk chunk(T, B * GH, budget, !reverse);
  auto dGbuf = at::empty({chunk.C * B, GH}, o), dIbuf = at::empty({chunk.C * B, GH}, o);
  Tensor dh;
  Steps steps{T, reverse};
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "gru_backward", [&] {
    using S = scalar_t;
    Carry<S> carry(grad_h, B, H, o);
    WeightGrads<S> acc = grads.acc<S>(x, w_ih, out, h0, d, GH, reverse);
    const S *g0 = gates.data_ptr<S>(), *gn0 = ghn.data_ptr<S>(), *go0 = has_go ? go.data_ptr<S>() : nullptr;
    const S *out0 = out.data_ptr<S>(), *h00 = h0.data_ptr<S>(), *whh = w_hh.data_ptr<S>();
    S *dG0 = dGbuf.data_ptr<S>(), *dI0 = dIbuf.data_ptr<S>();
    for (int64_t s = T - 1; s >= 0; --s) {
      const int64_t t = steps.at(s);
      if (!chunk.contains(t)) {
        if (chunk.hi > chunk.lo) acc.add(chunk.lo, chunk.hi, dG0, dI0);
        chunk.start(t);
      }
      const S* hp0 = s == 0 ? h00 : out0 + steps.at(s - 1) * B * H;
      S *dG = dG0 + (t - chunk.lo) * B * GH, *dI = dI0 + (t - chunk.lo) * B * GH;
      for (int64_t b = 0; b < B; ++b) {
        const int64_t row = t * B + b;
        S *dh_b = carry.cur + b * H, *dd = carry.next + b * H, *dg = dG + b * GH, *di = dI + b * GH;
        if (has_go) add_(dh_b, go0 + row * H, H);
        if (m && !m[row]) {
          std::memcpy(dd, dh_b, H * sizeof(S));
          std::memset(dg, 0, GH * sizeof(S));
          std::memset(di, 0, GH * sizeof(S));
          continue;
        }
        gru_row_backward(g0 + row * GH, gn0 + row * H, hp0 + b * H, dh_b, dd, dg, di, H);
      }
      gemm<S>(false, B, H, GH, dG, GH, whh, H, S(1), carry.next, H);  // dh_prev = direct + dG W_hh
      carry.swap();
    }
    if (chunk.hi > chunk.lo) acc.add(chunk.lo, chunk.hi, dG0, dI0);
    dh = carry.result();
  });
  return {grads.dx, dh, grads.dw_ih, grads.dw_hh, grads.db_ih, grads.db_hh};
}

// ------------------------------------------------------------------------------- GRU-Cho
// gates (r, z, n) as Cho et al. 2014: r, z as torch's GRU, but the reset gate acts BEFORE
// the hidden product: n = tanh(gi_n + b_in + (r * h_prev) W_hn^T + b_hn),
// h = (1 - z) * n + z * h_prev. Two products per step: h_prev W_h[rz]^T, then (r * h_prev) W_hn^T.
// Returns out (T, B, H), h_n, and for the backward: gates (r, z, n), rh = r * h_prev.
std::vector<Tensor> gru_cho_forward(Tensor x, Tensor w_ih, Tensor h0, Tensor w_hh, Tensor b_ih, Tensor b_hh,
                                    c10::optional<Tensor> mask, bool reverse, bool save, int64_t budget) {
  const Dims d = dims(x, h0);
  const int64_t T = d.T, B = d.B, H = d.H;
  auto o = x.options();
  auto out = at::empty({T, B, H}, o);
  auto gates = at::empty({save ? T : 1, B, 3 * H}, o);
  auto rh = at::empty({save ? T : 1, B, H}, o);
  auto gh = at::empty({B, 2 * H}, o), gn = at::empty({B, H}, o);
  const bool* m = mask_ptr(mask);
  Steps steps{T, reverse};
  const Tensor whh_t = transposed(w_hh);  // (H, G*H): the right operand of h W_hh^T
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gru_cho_forward", [&] {
    using S = scalar_t;
    Projection<S> proj(x, w_ih, reverse, budget);
    const S *bi = b_ih.data_ptr<S>(), *bh = b_hh.data_ptr<S>(), *whhT = whh_t.data_ptr<S>(), *h00 = h0.data_ptr<S>();
    S *gh0 = gh.data_ptr<S>(), *gn0 = gn.data_ptr<S>(), *out0 = out.data_ptr<S>(), *g0 = gates.data_ptr<S>();
    S* rh0 = rh.data_ptr<S>();
    for (int64_t s = 0; s < T; ++s) {
      const int64_t t = steps.at(s);
      const S* hp0 = s == 0 ? h00 : out0 + steps.at(s - 1) * B * H;
      gemm<S>(false, B, 2 * H, H, hp0, H, whhT, 3 * H, S(0), gh0, 2 * H);  // h_prev W_h[rz]^T
      const S* xg = proj.step(t);
      S* rht = rh0 + (save ? t : 0) * B * H;
      for (int64_t b = 0; b < B; ++b) {  // r, z, and r * h_prev
        const int64_t row = t * B + b, srow = save ? row : b;
        S *g = g0 + srow * 3 * H, *r_h = rht + b * H;
        if (m && !m[row]) {
          std::memset(r_h, 0, H * sizeof(S));  // the backward reads it: keep it finite
          continue;
        }
        const S *xb = xg + b * 3 * H, *ghb = gh0 + b * 2 * H, *hp = hp0 + b * H;
        for (int64_t j = 0; j < 2 * H; ++j) g[j] = (xb[j] + bi[j]) + (ghb[j] + bh[j]);
        sigmoid_(g, 2 * H);
        for (int64_t j = 0; j < H; ++j) r_h[j] = g[j] * hp[j];
      }
      gemm<S>(false, B, H, H, rht, H, whhT + 2 * H, 3 * H, S(0), gn0, H);  // (r * h_prev) W_hn^T
      for (int64_t b = 0; b < B; ++b) {  // n and the new state
        const int64_t row = t * B + b, srow = save ? row : b;
        S* ob = out0 + row * H;
        const S* hp = hp0 + b * H;
        if (m && !m[row]) {
          std::memcpy(ob, hp, H * sizeof(S));
          continue;
        }
        S* g = g0 + srow * 3 * H;
        const S *xb = xg + b * 3 * H, *gnb = gn0 + b * H;
        for (int64_t j = 0; j < H; ++j) g[2 * H + j] = (xb[2 * H + j] + bi[2 * H + j]) + (gnb[j] + bh[2 * H + j]);
        tanh_(g + 2 * H, H);
        for (int64_t j = 0; j < H; ++j) ob[j] = (S(1) - g[H + j]) * g[2 * H + j] + g[H + j] * hp[j];
      }
    }
  });
  Tensor h_last = T ? out[steps.at(T - 1)].clone() : h0.clone();
  return {out, h_last, gates, rh};
}

// Returns dx (undefined unless need_dx), dh0, dW_ih, dW_hh, db_ih, db_hh. Every block's
// pre-activation gradient is the same for its input product, its hidden product and both
// biases (dr, dz, dn), so one buffer serves as dG and dI; the n rows of dW_hh read r * h_prev.
std::vector<Tensor> gru_cho_backward(c10::optional<Tensor> grad_out, c10::optional<Tensor> grad_h, Tensor gates,
                                     Tensor rh, Tensor out, Tensor h0, Tensor x, Tensor w_ih, Tensor w_hh,
                                     c10::optional<Tensor> mask, bool reverse, bool need_dx, int64_t budget) {
  const Dims d = dims(x, h0);
  const int64_t T = d.T, B = d.B, H = d.H, GH = 3 * H;
  auto o = out.options();
  const bool* m = mask_ptr(mask);
  const bool has_go = given(grad_out);
  Tensor go = has_go ? grad_out->contiguous() : Tensor();
  Grads grads(d, GH, need_dx, o);
  Chunk chunk(T, B * GH, budget, !reverse);
  auto dGbuf = at::empty({chunk.C * B, GH}, o), drh = at::empty({B, H}, o);
  Tensor dh;
  Steps steps{T, reverse};
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "gru_cho_backward", [&] {
    using S = scalar_t;
    Carry<S> carry(grad_h, B, H, o);
    WeightGrads<S> acc = grads.acc<S>(x, w_ih, out, h0, d, GH, reverse);
    acc.HR = 2 * H;
    const S *g0 = gates.data_ptr<S>(), *rh0 = rh.data_ptr<S>(), *go0 = has_go ? go.data_ptr<S>() : nullptr;
    const S *out0 = out.data_ptr<S>(), *h00 = h0.data_ptr<S>(), *whh = w_hh.data_ptr<S>();
    S *dG0 = dGbuf.data_ptr<S>(), *drh0 = drh.data_ptr<S>(), *dwhh_n = grads.dw_hh.data_ptr<S>() + 2 * H * H;
    auto flush = [&](int64_t lo, int64_t hi) {
      acc.add(lo, hi, dG0, dG0);
      gemm<S>(true, H, H, (hi - lo) * B, dG0 + 2 * H, GH, rh0 + lo * B * H, H, S(1), dwhh_n, H);
    };
    for (int64_t s = T - 1; s >= 0; --s) {
      const int64_t t = steps.at(s);
      if (!chunk.contains(t)) {
        if (chunk.hi > chunk.lo) flush(chunk.lo, chunk.hi);
        chunk.start(t);
      }
      const S* hp0 = s == 0 ? h00 : out0 + steps.at(s - 1) * B * H;
      S* dG = dG0 + (t - chunk.lo) * B * GH;
      for (int64_t b = 0; b < B; ++b) {  // dz, dn, and the direct path dh * z
        const int64_t row = t * B + b;
        S *dh_b = carry.cur + b * H, *dd = carry.next + b * H, *dg = dG + b * GH;
        if (has_go) add_(dh_b, go0 + row * H, H);
        if (m && !m[row]) {
          std::memcpy(dd, dh_b, H * sizeof(S));
          std::memset(dg, 0, GH * sizeof(S));
          continue;
        }
        const S *g = g0 + row * GH, *hp = hp0 + b * H;
        for (int64_t j = 0; j < H; ++j) {
          const S z = g[H + j], n = g[2 * H + j];
          dg[2 * H + j] = dh_b[j] * (S(1) - z) * (S(1) - n * n);  // dn
          dg[H + j] = dh_b[j] * (hp[j] - n) * z * (S(1) - z);     // dz
          dd[j] = dh_b[j] * z;
        }
      }
      gemm<S>(false, B, H, H, dG + 2 * H, GH, whh + 2 * H * H, H, S(0), drh0, H);  // d(r * h_prev) = dn W_hn
      for (int64_t b = 0; b < B; ++b) {  // dr, and the path through r * h_prev
        const int64_t row = t * B + b;
        if (m && !m[row]) continue;
        const S *g = g0 + row * GH, *hp = hp0 + b * H, *dr_h = drh0 + b * H;
        S *dg = dG + b * GH, *dd = carry.next + b * H;
        for (int64_t j = 0; j < H; ++j) {
          const S r = g[j];
          dg[j] = dr_h[j] * hp[j] * r * (S(1) - r);
          dd[j] += dr_h[j] * r;
        }
      }
      gemm<S>(false, B, H, 2 * H, dG, GH, whh, H, S(1), carry.next, H);  // + [dr, dz] W_h[rz]
      carry.swap();
    }
    if (chunk.hi > chunk.lo) flush(chunk.lo, chunk.hi);
    dh = carry.result();
  });
  grads.db_ih.copy_(grads.db_hh);
  return {grads.dx, dh, grads.dw_ih, grads.dw_hh, grads.db_ih, grads.db_hh};
}

// ----------------------------------------------------------------------------------- LSTM
// gates (i, f, g, o) as torch: c = f * c_prev + i * g, h = o * tanh(c).
std::vector<Tensor> lstm_forward(Tensor x, Tensor w_ih, Tensor h0, Tensor c0, Tensor w_hh, Tensor b_ih, Tensor b_hh,
                                 c10::optional<Tensor> mask, bool reverse, bool save, int64_t budget) {
  const Dims d = dims(x, h0);
  const int64_t T = d.T, B = d.B, H = d.H;
  auto o = x.options();
  auto out = at::empty({T, B, H}, o);
  auto cs = at::empty({T, B, H}, o);
  auto tcs = at::empty({save ? T : 1, B, H}, o);       // tanh(c)
  auto gates = at::empty({save ? T : 1, B, 4 * H}, o);  // activated i, f, g, o
  auto gh = at::empty({B, 4 * H}, o);
  const bool* m = mask_ptr(mask);
  Steps steps{T, reverse};
  const Tensor whh_t = transposed(w_hh);  // (H, G*H): the right operand of h W_hh^T
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstm_forward", [&] {
    using S = scalar_t;
    Projection<S> proj(x, w_ih, reverse, budget);
    const S *bi = b_ih.data_ptr<S>(), *bh = b_hh.data_ptr<S>(), *whhT = whh_t.data_ptr<S>();
    const S *h00 = h0.data_ptr<S>(), *c00 = c0.data_ptr<S>();
    S *gh0 = gh.data_ptr<S>(), *out0 = out.data_ptr<S>(), *cs0 = cs.data_ptr<S>(), *g0 = gates.data_ptr<S>(),
      *tc0 = tcs.data_ptr<S>();
    for (int64_t s = 0; s < T; ++s) {
      const int64_t t = steps.at(s);
      const S* hp0 = s == 0 ? h00 : out0 + steps.at(s - 1) * B * H;
      const S* cp0 = s == 0 ? c00 : cs0 + steps.at(s - 1) * B * H;
      gemm<S>(false, B, 4 * H, H, hp0, H, whhT, 4 * H, S(0), gh0, 4 * H);
      const S* xg = proj.step(t);
      for (int64_t b = 0; b < B; ++b) {
        const int64_t row = t * B + b, srow = save ? row : b;
        S *o = out0 + row * H, *c = cs0 + row * H;
        if (m && !m[row]) {
          std::memcpy(o, hp0 + b * H, H * sizeof(S));
          std::memcpy(c, cp0 + b * H, H * sizeof(S));
          continue;
        }
        lstm_row_forward(xg + b * 4 * H, gh0 + b * 4 * H, bi, bh, cp0 + b * H, g0 + srow * 4 * H, c, tc0 + srow * H, o,
                         H);
      }
    }
  });
  Tensor h_last = T ? out[steps.at(T - 1)].clone() : h0.clone();
  Tensor c_last = T ? cs[steps.at(T - 1)].clone() : c0.clone();
  return {out, h_last, c_last, gates, cs, tcs};
}

// Returns dx (undefined unless need_dx), dh0, dc0, dW_ih, dW_hh, db_ih, db_hh.
std::vector<Tensor> lstm_backward(c10::optional<Tensor> grad_out, c10::optional<Tensor> grad_h,
                                  c10::optional<Tensor> grad_c, Tensor gates, Tensor cs, Tensor tcs, Tensor out,
                                  Tensor h0, Tensor c0, Tensor x, Tensor w_ih, Tensor w_hh, c10::optional<Tensor> mask,
                                  bool reverse, bool need_dx, int64_t budget) {
  const Dims d = dims(x, h0);
  const int64_t T = d.T, B = d.B, H = d.H, GH = 4 * H;
  auto o = out.options();
  const bool* m = mask_ptr(mask);
  const bool has_go = given(grad_out);
  Tensor go = has_go ? grad_out->contiguous() : Tensor();
  Grads grads(d, GH, need_dx, o);
  Chunk chunk(T, B * GH, budget, !reverse);
  auto dGbuf = at::empty({chunk.C * B, GH}, o);
  auto dc = given(grad_c) ? grad_c->contiguous().clone() : at::zeros({B, H}, o);
  Tensor dh;
  Steps steps{T, reverse};
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "lstm_backward", [&] {
    using S = scalar_t;
    Carry<S> carry(grad_h, B, H, o);
    WeightGrads<S> acc = grads.acc<S>(x, w_ih, out, h0, d, GH, reverse);
    const S *g0 = gates.data_ptr<S>(), *tc0 = tcs.data_ptr<S>(), *cs0 = cs.data_ptr<S>(), *c00 = c0.data_ptr<S>();
    const S *go0 = has_go ? go.data_ptr<S>() : nullptr, *whh = w_hh.data_ptr<S>();
    S *dc0 = dc.data_ptr<S>(), *dG0 = dGbuf.data_ptr<S>();
    for (int64_t s = T - 1; s >= 0; --s) {
      const int64_t t = steps.at(s);
      if (!chunk.contains(t)) {
        if (chunk.hi > chunk.lo) acc.add(chunk.lo, chunk.hi, dG0, dG0);
        chunk.start(t);
      }
      const S* cp0 = s == 0 ? c00 : cs0 + steps.at(s - 1) * B * H;
      S* dG = dG0 + (t - chunk.lo) * B * GH;
      for (int64_t b = 0; b < B; ++b) {
        const int64_t row = t * B + b;
        S *dh_b = carry.cur + b * H, *dd = carry.next + b * H, *dg = dG + b * GH;
        if (has_go) add_(dh_b, go0 + row * H, H);
        if (m && !m[row]) {  // a padded step passes h's and c's gradients through unchanged
          std::memcpy(dd, dh_b, H * sizeof(S));
          std::memset(dg, 0, GH * sizeof(S));
          continue;
        }
        if (m) std::memset(dd, 0, H * sizeof(S));
        lstm_row_backward(g0 + row * GH, tc0 + row * H, cp0 + b * H, dh_b, dc0 + b * H, dg, H);
      }
      gemm<S>(false, B, H, GH, dG, GH, whh, H, S(m ? 1 : 0), carry.next, H);
      carry.swap();
    }
    if (chunk.hi > chunk.lo) acc.add(chunk.lo, chunk.hi, dG0, dG0);
    dh = carry.result();
  });
  grads.db_ih.copy_(grads.db_hh);
  return {grads.dx, dh, dc, grads.dw_ih, grads.dw_hh, grads.db_ih, grads.db_hh};
}

// ------------------------------------------------------------------------------------ RNN
// h = phi(gi + b_ih + h_prev W_hh^T + b_hh), phi = tanh or relu.
std::vector<Tensor> rnn_forward(Tensor x, Tensor w_ih, Tensor h0, Tensor w_hh, Tensor b_ih, Tensor b_hh,
                                c10::optional<Tensor> mask, bool reverse, bool relu, int64_t budget) {
  const Dims d = dims(x, h0);
  const int64_t T = d.T, B = d.B, H = d.H;
  auto o = x.options();
  auto out = at::empty({T, B, H}, o);
  auto gh = at::empty({B, H}, o);
  const bool* m = mask_ptr(mask);
  Steps steps{T, reverse};
  const Tensor whh_t = transposed(w_hh);  // (H, G*H): the right operand of h W_hh^T
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rnn_forward", [&] {
    using S = scalar_t;
    Projection<S> proj(x, w_ih, reverse, budget);
    const S *bi = b_ih.data_ptr<S>(), *bh = b_hh.data_ptr<S>(), *whhT = whh_t.data_ptr<S>(), *h00 = h0.data_ptr<S>();
    S *gh0 = gh.data_ptr<S>(), *out0 = out.data_ptr<S>();
    for (int64_t s = 0; s < T; ++s) {
      const int64_t t = steps.at(s);
      const S* hp0 = s == 0 ? h00 : out0 + steps.at(s - 1) * B * H;
      gemm<S>(false, B, H, H, hp0, H, whhT, H, S(0), gh0, H);
      const S* xg = proj.step(t);
      for (int64_t b = 0; b < B; ++b) {
        const int64_t row = t * B + b;
        if (m && !m[row]) {
          std::memcpy(out0 + row * H, hp0 + b * H, H * sizeof(S));
          continue;
        }
        rnn_row_forward(xg + b * H, gh0 + b * H, bi, bh, out0 + row * H, H, relu);
      }
    }
  });
  Tensor h_last = T ? out[steps.at(T - 1)].clone() : h0.clone();
  return {out, h_last};
}

// Returns dx (undefined unless need_dx), dh0, dW_ih, dW_hh, db_ih, db_hh.
std::vector<Tensor> rnn_backward(c10::optional<Tensor> grad_out, c10::optional<Tensor> grad_h, Tensor out, Tensor h0,
                                 Tensor x, Tensor w_ih, Tensor w_hh, c10::optional<Tensor> mask, bool reverse, bool relu,
                                 bool need_dx, int64_t budget) {
  const Dims d = dims(x, h0);
  const int64_t T = d.T, B = d.B, H = d.H, GH = H;
  auto o = out.options();
  const bool* m = mask_ptr(mask);
  const bool has_go = given(grad_out);
  Tensor go = has_go ? grad_out->contiguous() : Tensor();
  Grads grads(d, GH, need_dx, o);
  Chunk chunk(T, B * GH, budget, !reverse);
  auto dGbuf = at::empty({chunk.C * B, GH}, o);
  Tensor dh;
  Steps steps{T, reverse};
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "rnn_backward", [&] {
    using S = scalar_t;
    Carry<S> carry(grad_h, B, H, o);
    WeightGrads<S> acc = grads.acc<S>(x, w_ih, out, h0, d, GH, reverse);
    const S *out0 = out.data_ptr<S>(), *go0 = has_go ? go.data_ptr<S>() : nullptr, *whh = w_hh.data_ptr<S>();
    S* dG0 = dGbuf.data_ptr<S>();
    for (int64_t s = T - 1; s >= 0; --s) {
      const int64_t t = steps.at(s);
      if (!chunk.contains(t)) {
        if (chunk.hi > chunk.lo) acc.add(chunk.lo, chunk.hi, dG0, dG0);
        chunk.start(t);
      }
      S* dG = dG0 + (t - chunk.lo) * B * GH;
      for (int64_t b = 0; b < B; ++b) {
        const int64_t row = t * B + b;
        S *dh_b = carry.cur + b * H, *dd = carry.next + b * H, *dg = dG + b * GH;
        if (has_go) add_(dh_b, go0 + row * H, H);
        if (m && !m[row]) {
          std::memcpy(dd, dh_b, H * sizeof(S));
          std::memset(dg, 0, GH * sizeof(S));
          continue;
        }
        if (m) std::memset(dd, 0, H * sizeof(S));
        rnn_row_backward(out0 + row * H, dh_b, dg, H, relu);
      }
      gemm<S>(false, B, H, GH, dG, GH, whh, H, S(m ? 1 : 0), carry.next, H);
      carry.swap();
    }
    if (chunk.hi > chunk.lo) acc.add(chunk.lo, chunk.hi, dG0, dG0);
    dh = carry.result();
  });
  grads.db_ih.copy_(grads.db_hh);
  return {grads.dx, dh, grads.dw_ih, grads.dw_hh, grads.db_ih, grads.db_hh};
}

// Tests and bench: which code runs the kernels' products (0 grucli's tiles, 1 the BLAS, 2
// ATen); returns the previous choice. Asking for the tiles in a build without SIMD gives the BLAS.
int64_t set_products(int64_t mode) {
  const int64_t was = products;
  products = mode == OWN && !smallgemm::AVAILABLE ? BLAS : mode;
  return was;
}

// op(a) b with the kernels' own products (op(a) = a^T if at), for tests and `grucli bench`.
Tensor matmul(Tensor a, Tensor b, bool at) {
  a = a.contiguous();
  b = b.contiguous();
  const int64_t M = at ? a.size(1) : a.size(0), K = b.size(0), N = b.size(1);
  TORCH_CHECK((at ? a.size(0) : a.size(1)) == K, "matmul: inner sizes differ");
  Tensor c = at::empty({M, N}, b.options());
  AT_DISPATCH_FLOATING_TYPES(b.scalar_type(), "matmul", [&] {
    using S = scalar_t;
    gemm<S>(at, M, N, K, a.data_ptr<S>(), a.size(1), b.data_ptr<S>(), N, S(0), c.data_ptr<S>(), N);
  });
  return c;
}
