// grucli's fused kernels: the one matrix-product call every kernel makes (included by the
// kernels' sources). Products run on grucli's own register-tiled kernels (gemm.h) where this
// build has SIMD (AVX-512 or AVX2): 2-5x the BLAS libtorch links at these sizes on the AMD
// machines measured. A build without SIMD calls that BLAS (sgemm_/dgemm_, looked up as weak
// symbols), or ATen on tensor views where libtorch exports none. Products whose right
// operand is a transposed weight read a transposed copy made once per call.

#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <tuple>
#include <vector>

#include "gemm.h"

extern "C" {
void sgemm_(const char*, const char*, const int*, const int*, const int*, const float*, const float*, const int*,
            const float*, const int*, const float*, float*, const int*) __attribute__((weak));
void dgemm_(const char*, const char*, const int*, const int*, const int*, const double*, const double*, const int*,
            const double*, const int*, const double*, double*, const int*) __attribute__((weak));
}

namespace products {
inline namespace GRUCLI_BUILD {  // gemm.h: each build's symbols its own

using at::Tensor;

// Which code runs the products: grucli's tiles (gemm.h), the BLAS, or ATen (tests compare them).
enum Products : int64_t { OWN = 0, BLAS = 1, ATEN = 2 };
int64_t mode = smallgemm::AVAILABLE ? OWN : BLAS;

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
void gemm_(bool ta, int64_t M, int64_t N, int64_t K, const S* A, int64_t lda, const S* B, int64_t ldb, S beta, S* C,
          int64_t ldc) {
  if (M == 0 || N == 0) return;
  const bool accumulate = beta != S(0);
  if (K == 0) {  // an empty sum (BLAS implementations disagree on it)
    if (!accumulate)
      for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, S(0));
    return;
  }
  if constexpr (smallgemm::AVAILABLE) {
    if (mode == OWN) {
      if (ta && N < smallgemm::Vec<S>::W && M >= smallgemm::Vec<S>::W)
        own_narrow<S>(M, N, K, A, lda, B, ldb, accumulate, C, ldc);
      else
        smallgemm::gemm<S>(ta, M, N, K, A, lda, B, ldb, accumulate, C, ldc);
      return;
    }
  }
  const int64_t big = std::max({M, N, K, lda, ldb, ldc});
  BlasGemm<S>* blas = blas_gemm<S>();
  if (mode != ATEN && blas && big < INT_MAX) {
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

// The time budget (grucli/profile.py, GRUCLI_PROFILE): while `profiling` is on, every
// product's seconds and FLOPs are added up; off (the default) a product pays one branch.
bool profiling = false;
std::atomic<int64_t> profiled_ns{0}, profiled_flops{0};

template <typename S>
void gemm(bool ta, int64_t M, int64_t N, int64_t K, const S* A, int64_t lda, const S* B, int64_t ldb, S beta, S* C,
          int64_t ldc) {
  if (!profiling) return gemm_<S>(ta, M, N, K, A, lda, B, ldb, beta, C, ldc);
  const auto t0 = std::chrono::steady_clock::now();
  gemm_<S>(ta, M, N, K, A, lda, B, ldb, beta, C, ldc);
  profiled_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
  profiled_flops += 2 * M * N * K;
}

// A weight's transpose, contiguous: the right operand of x W^T, made once per call.
inline Tensor transposed(const Tensor& w) { return w.t().contiguous(); }

}  // namespace GRUCLI_BUILD
}  // namespace products

// Tests and bench: which code runs the kernels' products (0 grucli's tiles, 1 the BLAS, 2
// ATen); returns the previous choice. Asking for the tiles in a build without SIMD gives the BLAS.
int64_t set_products(int64_t mode) {
  const int64_t was = products::mode;
  products::mode = mode == products::OWN && !smallgemm::AVAILABLE ? products::BLAS : mode;
  return was;
}

// grucli/profile.py: switch the products' counters on or off; returns (seconds, FLOPs) of
// the products counted so far in this process (every kernel's: recurrent, input, weight
// gradients, output layer).
std::tuple<double, double> product_profile(bool on) {
  products::profiling = on;
  return {1e-9 * double(products::profiled_ns.load()), double(products::profiled_flops.load())};
}

// Whether the products run on grucli's tiles now (false in a build without SIMD, or after
// set_products chose the BLAS or ATen). Only then is each product's result independent of
// where its operands lie in memory (the BLAS picks its code by alignment): grucli.train.stacked
// needs that to keep packed runs bit-identical to runs alone.
bool own_products() { return products::mode == products::OWN; }

// op(a) b with the kernels' own products (op(a) = a^T if at), for tests and `grucli bench`.
at::Tensor matmul(at::Tensor a, at::Tensor b, bool at) {
  a = a.contiguous();
  b = b.contiguous();
  const int64_t M = at ? a.size(1) : a.size(0), K = b.size(0), N = b.size(1);
  TORCH_CHECK((at ? a.size(0) : a.size(1)) == K, "matmul: inner sizes differ");
  at::Tensor c = at::empty({M, N}, b.options());
  AT_DISPATCH_FLOATING_TYPES(b.scalar_type(), "matmul", [&] {
    using S = scalar_t;
    products::gemm<S>(at, M, N, K, a.data_ptr<S>(), a.size(1), b.data_ptr<S>(), N, S(0), c.data_ptr<S>(), N);
  });
  return c;
}
