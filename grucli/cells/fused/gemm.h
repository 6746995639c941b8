// grucli's own small matrix products for the fused kernels (included by fused_rnn.cpp).
//
// Why: the products inside a recurrent step are small (B x H times H x G*H, H of 16..256),
// and the BLAS libtorch links (MKL) runs them far below this CPU's vector peak: on the AMD
// machines grucli is developed on it takes its AVX2 code path (about 105 GFLOP/s at 512^2 on
// a core that does 270 with AVX-512 FMAs), and a weight gradient of shape (G*H x 2) with a
// reduction over 1,500 rows took 113 us where the FLOPs need 3.
//
// What: C (M x N, row-major, leading dimension ldc) = [C +] op(A) B, with B (K x N)
// row-major and op(A) either A (M x K) or A^T (A stored K x M). Callers with a transposed
// B pass a transposed copy (fused_rnn.cpp makes it once per call, not once per step).
// C is cut into tiles of MR rows x NV vectors; a tile's accumulators stay in registers
// while k runs (only the last panel of a row that ends mid-vector loads and stores through a
// mask; where there are enough rows, a block of B's panel is first copied contiguously), each element of C a chain of fused multiply-adds in increasing k, so
// every element's arithmetic depends only on its own row of A and column of B: never on
// the matrix sizes, the tiling or how many other runs a call computes.

#pragma once

#if defined(GRUCLI_AVX512) || defined(GRUCLI_AVX2)
#include <immintrin.h>
#endif

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>
#include <vector>

// Each build's code in a namespace of its own: a function's static table (tiles() below) is
// a process-wide unique symbol, so an AVX2 and an AVX-512 build loaded in one process
// (grucli bench --simd avx2,native) would otherwise share one build's table.
#if defined(GRUCLI_AVX512)
#define GRUCLI_BUILD build_avx512
#elif defined(GRUCLI_AVX2)
#define GRUCLI_BUILD build_avx2
#else
#define GRUCLI_BUILD build_scalar
#endif

namespace smallgemm {
inline namespace GRUCLI_BUILD {

template <typename S> struct Vec;  // one SIMD register of S: W lanes, masks for a row's last lanes

#if defined(GRUCLI_AVX512)
constexpr int REGISTERS = 32;
template <> struct Vec<float> {
  using R = __m512;
  using Mask = __mmask16;
  static constexpr int W = 16;
  static Mask mask(int64_t n) { return n >= W ? Mask(0xFFFF) : Mask((1u << n) - 1); }
  static R zero() { return _mm512_setzero_ps(); }
  static R set1(float a) { return _mm512_set1_ps(a); }
  static R load(const float* p) { return _mm512_loadu_ps(p); }
  static R load(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(float* p, R v) { _mm512_storeu_ps(p, v); }
  static void store(float* p, R v, Mask m) { _mm512_mask_storeu_ps(p, m, v); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
};
template <> struct Vec<double> {
  using R = __m512d;
  using Mask = __mmask8;
  static constexpr int W = 8;
  static Mask mask(int64_t n) { return n >= W ? Mask(0xFF) : Mask((1u << n) - 1); }
  static R zero() { return _mm512_setzero_pd(); }
  static R set1(double a) { return _mm512_set1_pd(a); }
  static R load(const double* p) { return _mm512_loadu_pd(p); }
  static R load(const double* p, Mask m) { return _mm512_maskz_loadu_pd(m, p); }
  static void store(double* p, R v) { _mm512_storeu_pd(p, v); }
  static void store(double* p, R v, Mask m) { _mm512_mask_storeu_pd(p, m, v); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_pd(a, b, c); }
};
#elif defined(GRUCLI_AVX2)
constexpr int REGISTERS = 16;
inline __m256i lanes_below(int64_t n, int lanes) {  // lanes [0, n) set (32-bit lanes; 64-bit as pairs)
  const __m256i idx = lanes == 8 ? _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7) : _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(std::min<int64_t>(n, lanes))), idx);
}
template <> struct Vec<float> {
  using R = __m256;
  using Mask = __m256i;
  static constexpr int W = 8;
  static Mask mask(int64_t n) { return lanes_below(n, 8); }
  static R zero() { return _mm256_setzero_ps(); }
  static R set1(float a) { return _mm256_set1_ps(a); }
  static R load(const float* p) { return _mm256_loadu_ps(p); }
  static R load(const float* p, Mask m) { return _mm256_maskload_ps(p, m); }
  static void store(float* p, R v) { _mm256_storeu_ps(p, v); }
  static void store(float* p, R v, Mask m) { _mm256_maskstore_ps(p, m, v); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
};
template <> struct Vec<double> {
  using R = __m256d;
  using Mask = __m256i;
  static constexpr int W = 4;
  static Mask mask(int64_t n) { return lanes_below(n, 4); }
  static R zero() { return _mm256_setzero_pd(); }
  static R set1(double a) { return _mm256_set1_pd(a); }
  static R load(const double* p) { return _mm256_loadu_pd(p); }
  static R load(const double* p, Mask m) { return _mm256_maskload_pd(p, m); }
  static void store(double* p, R v) { _mm256_storeu_pd(p, v); }
  static void store(double* p, R v, Mask m) { _mm256_maskstore_pd(p, m, v); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_pd(a, b, c); }
};
#endif

#if defined(GRUCLI_AVX512) || defined(GRUCLI_AVX2)
constexpr bool AVAILABLE = true;

// Tile shapes: with NV vectors per row of the tile, the most rows whose accumulators, the
// NV vectors of B and one broadcast of A fit in the registers.
constexpr int MAX_NV = REGISTERS == 32 ? 4 : 2;
constexpr int rows_for(int nv) {
  return REGISTERS == 32 ? (nv == 1 ? 14 : nv == 2 ? 12 : nv == 3 ? 8 : 6) : (nv == 1 ? 8 : 6);
}
constexpr int64_t K_BLOCK = 256;  // k is cut into blocks so a tile's panel of B stays in cache
// From this many rows of C on, a block of B's panel (K_BLOCK x NV vectors) is copied to a
// contiguous buffer before the row tiles read it: B's rows lie ldb apart, and at a stride of a
// multiple of 512 bytes (H = 128: h_prev in dW_hh, W^T in the input projection) they fall into
// a few cache sets and evict each other. Measured (AVX2, Zen 3; benchmarks/gemm_shapes.cpp):
// dW_hh 384 x 128 x 640 1.34x, 512^3 1.29x; below 64 rows the copy costs more than it saves.
// GRUCLI_GEMM_BASELINE (benchmarks/gemm_shapes.py only) builds the tiles as they were before
// these: every panel's last vector masked, B read in place, row tiles of MR and a remainder.
#ifdef GRUCLI_GEMM_BASELINE
constexpr int64_t PACK_ROWS = INT64_MAX;
constexpr bool ALWAYS_MASK = true, EVEN_ROWS = false;
#else
constexpr int64_t PACK_ROWS = 64;
constexpr bool ALWAYS_MASK = false, EVEN_ROWS = true;
#endif

// unroll<N>(f): f(0), f(1), ..., f(N - 1), each index a compile-time constant, so arrays
// indexed by them become registers (loops over r and v left to the compiler kept the
// accumulators in memory: one store per FMA).
template <typename F, int... I>
__attribute__((always_inline)) inline void unroll_(F&& f, std::integer_sequence<int, I...>) {
  (f(std::integral_constant<int, I>{}), ...);
}
template <int N, typename F>
__attribute__((always_inline)) inline void unroll(F&& f) {
  unroll_(f, std::make_integer_sequence<int, N>{});
}

// One tile: C[MR x (NV vectors, the last masked by `last` if MASKED)] (+)= op(A)[MR x K] B[K x NV*W].
// (A masked load or store costs more than a plain one: on AMD's Zen 3 a masked 256-bit store
// is ~6x slower, and a tile of few k stores as much as it computes: 1.25-1.4x on such shapes.)
template <typename S, int MR, int NV, bool AT, bool MASKED>
void tile(int64_t K, const S* A, int64_t lda, const S* B, int64_t ldb, S* C, int64_t ldc, bool accumulate,
          typename Vec<S>::Mask last) {
  using V = Vec<S>;
  using R = typename V::R;
  R c[MR][NV];
  unroll<MR>([&](auto r) {
    unroll<NV>([&](auto v) {
      S* p = C + r * ldc + v * V::W;
      c[r][v] = !accumulate ? V::zero() : MASKED && v == NV - 1 ? V::load(p, last) : V::load(p);
    });
  });
  for (int64_t k = 0; k < K; ++k) {
    const S* Bk = B + k * ldb;
    R b[NV];
    unroll<NV>([&](auto v) { b[v] = MASKED && v == NV - 1 ? V::load(Bk + v * V::W, last) : V::load(Bk + v * V::W); });
    unroll<MR>([&](auto r) {
      const R a = V::set1(AT ? A[k * lda + r] : A[r * lda + k]);
      unroll<NV>([&](auto v) { c[r][v] = V::fma(a, b[v], c[r][v]); });
    });
  }
  unroll<MR>([&](auto r) {
    unroll<NV>([&](auto v) {
      S* p = C + r * ldc + v * V::W;
      if (MASKED && v == NV - 1)
        V::store(p, c[r][v], last);
      else
        V::store(p, c[r][v]);
    });
  });
}

template <typename S>
using Tile = void (*)(int64_t, const S*, int64_t, const S*, int64_t, S*, int64_t, bool, typename Vec<S>::Mask);

// tiles<S, NV, AT, MASKED>()[mr - 1]: the tile of mr rows (1 <= mr <= rows_for(NV)).
template <typename S, int NV, bool AT, bool MASKED, int... R>
constexpr std::array<Tile<S>, sizeof...(R)> tiles_of(std::integer_sequence<int, R...>) {
  return {&tile<S, R + 1, NV, AT, MASKED>...};
}
template <typename S, int NV, bool AT, bool MASKED>
const Tile<S>* tiles() {
  static constexpr auto table = tiles_of<S, NV, AT, MASKED>(std::make_integer_sequence<int, rows_for(NV)>{});
  return table.data();
}

template <typename S, bool AT, bool MASKED>
const Tile<S>* tiles_for(int nv) {
  if constexpr (MAX_NV == 4) {
    switch (nv) {
      case 1: return tiles<S, 1, AT, MASKED>();
      case 2: return tiles<S, 2, AT, MASKED>();
      case 3: return tiles<S, 3, AT, MASKED>();
      default: return tiles<S, 4, AT, MASKED>();
    }
  } else {
    return nv == 1 ? tiles<S, 1, AT, MASKED>() : tiles<S, 2, AT, MASKED>();
  }
}

template <typename S>
const Tile<S>* tiles_for(bool at, bool masked, int nv) {
  return at ? (masked ? tiles_for<S, true, true>(nv) : tiles_for<S, true, false>(nv))
            : (masked ? tiles_for<S, false, true>(nv) : tiles_for<S, false, false>(nv));
}

// C (M x N) (+)= op(A) B: column panels of up to MAX_NV vectors, each swept over blocks of
// k (accumulating from the second block on, which keeps every element's chain in order)
// and, inside a block, over tiles of rows (B's block copied first where M >= PACK_ROWS). The
// copy moves no arithmetic: every element of C is the same chain of FMAs, to the bit.
template <typename S>
void gemm(bool at, int64_t M, int64_t N, int64_t K, const S* A, int64_t lda, const S* B, int64_t ldb, bool accumulate,
          S* C, int64_t ldc) {
  using V = Vec<S>;
  if (M <= 0 || N <= 0 || K <= 0) return;  // (the caller handles K = 0)
  for (int64_t j0 = 0; j0 < N; j0 += MAX_NV * V::W) {
    const int64_t cols = std::min<int64_t>(N - j0, MAX_NV * V::W);
    const int nv = int((cols + V::W - 1) / V::W);
    const typename V::Mask last = V::mask(cols - (nv - 1) * V::W);
    const Tile<S>* table = tiles_for<S>(at, ALWAYS_MASK || cols < nv * V::W, nv);
    const int64_t MR = rows_for(nv);
    for (int64_t k0 = 0; k0 < K; k0 += K_BLOCK) {
      const int64_t kb = std::min<int64_t>(K_BLOCK, K - k0);
      const bool acc = accumulate || k0 > 0;
      const S* Bk = B + k0 * ldb + j0;
      int64_t ldbk = ldb;
      if (M >= PACK_ROWS) {
        thread_local std::vector<S> panel;
        ldbk = nv * V::W;
        panel.resize(size_t(kb * ldbk));
        for (int64_t k = 0; k < kb; ++k) std::copy(Bk + k * ldb, Bk + k * ldb + cols, panel.data() + k * ldbk);
        Bk = panel.data();
      }
      // the rows in as few tiles as MR allows, of as even heights as they can be: 50 rows as
      // 5 x 6 + 4 x 5, not 8 x 6 + 2 (a tile of 2 rows holds 4 chains of FMAs, too few to
      // hide their latency; as tall a tile as possible keeps B's loads per FMA low)
      const int64_t tiles = (M + MR - 1) / MR, low = EVEN_ROWS ? M / tiles : MR, taller = EVEN_ROWS ? M % tiles : 0;
      for (int64_t t = 0, i0 = 0; t < tiles; ++t) {
        const int64_t rows = std::min<int64_t>(low + (t < taller), M - i0);
        const S* Ai = at ? A + k0 * lda + i0 : A + i0 * lda + k0;
        table[rows - 1](kb, Ai, lda, Bk, ldbk, C + i0 * ldc + j0, ldc, acc, last);
        i0 += rows;
      }
    }
  }
}
#else
constexpr bool AVAILABLE = false;  // no SIMD build: fused_rnn.cpp uses the BLAS
template <typename S>
void gemm(bool, int64_t, int64_t, int64_t, const S*, int64_t, const S*, int64_t, bool, S*, int64_t) {}
#endif

}  // namespace GRUCLI_BUILD
}  // namespace smallgemm
