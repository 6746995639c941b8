// The kernels' own products (grucli/cells/fused/gemm.h) at the shapes a training step computes,
// in GFLOP/s: this build's tiles beside the same file built with GRUCLI_GEMM_BASELINE (every
// panel's last vector masked, B read in place), timed alternately in one process, best of 15
// rounds each; and whether both wrote the same bits. Run by benchmarks/gemm_shapes.py.
#include <immintrin.h>
#include <algorithm>
#include <array>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

// gemm_now.h and gemm_baseline.h: copies of gemm.h, without its "#pragma once" (which would
// let it be included once), that gemm_shapes.py writes; the second defines GRUCLI_GEMM_BASELINE
namespace now {
#include "gemm_now.h"
}
#undef GRUCLI_BUILD
namespace baseline {
#include "gemm_baseline.h"
}

// the FMA units' peak: 12 independent chains of vector FMAs
static double fma_peak() {
  using V = now::smallgemm::Vec<float>;
  typename V::R c[12];
  for (int i = 0; i < 12; ++i) c[i] = V::set1(0.001f * i);
  const typename V::R a = V::set1(0.9999f), b = V::set1(0.0001f);
  const long n = 20000000;
  double best = 1e9;
  for (int r = 0; r < 3; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < n; ++i)
      for (int j = 0; j < 12; ++j) c[j] = V::fma(a, c[j], b);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  float s = 0, out[64];
  for (int j = 0; j < 12; ++j) { V::store(out, c[j]); s += out[0]; }
  return s == 12345.f ? 0 : n * 12.0 * 2 * V::W / best / 1e9;
}

int main() {
  struct Shape { int64_t M, N, K; bool at; const char* what; };
  const Shape shapes[] = {
      {64, 384, 128, false, "H=128 B=64 GRU: h W_hh^T"},     {64, 128, 384, false, "H=128 GRU: dG W_hh (dh)"},
      {384, 128, 640, true, "H=128 GRU: dW_hh += dG^T h"},   {640, 384, 32, false, "H=128 GRU: x W_ih^T (10 steps)"},
      {64, 512, 128, false, "H=128 LSTM: h W_hh^T"},         {512, 128, 640, true, "H=128 LSTM: dW_hh"},
      {256, 512, 32, false, "H=128 LSTM: x W_ih^T (4 steps)"}, {512, 32, 256, true, "H=128 LSTM: dW_ih"},
      {64, 128, 512, false, "H=128 LSTM: dG W_hh (dh)"},
      {50, 117, 39, false, "demo GRU H=39: h W_hh^T"},       {50, 39, 117, false, "demo GRU: dG W_hh"},
      {117, 39, 500, true, "demo GRU: dW_hh"},               {512, 512, 512, false, "512 x 512 x 512"}};
  std::printf("FMA peak of one core (this build's vectors): %.1f GFLOP/s\n", fma_peak());
  std::printf("%-32s %16s %10s %10s %6s  %s\n", "product", "M x N x K", "baseline", "now", "now/b", "bits");
  std::mt19937 g(0);
  std::normal_distribution<float> d;
  for (const Shape& s : shapes) {
    std::vector<float> A(s.M * s.K), B(s.K * s.N), C0(s.M * s.N), C1(s.M * s.N);
    for (auto& x : A) x = d(g);
    for (auto& x : B) x = d(g);
    const int64_t lda = s.at ? s.M : s.K;
    const double flops = 2.0 * s.M * s.N * s.K;
    const int reps = std::max(10, int(3e8 / flops));
    double best[2] = {1e9, 1e9};
    for (int r = 0; r < 15; ++r)
      for (int v = 0; v < 2; ++v) {
        const int w = (r % 2) ? 1 - v : v;  // which goes first alternates
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < reps; ++i) {
          if (w == 0)
            baseline::smallgemm::gemm<float>(s.at, s.M, s.N, s.K, A.data(), lda, B.data(), s.N, false, C0.data(), s.N);
          else
            now::smallgemm::gemm<float>(s.at, s.M, s.N, s.K, A.data(), lda, B.data(), s.N, false, C1.data(), s.N);
        }
        best[w] = std::min(best[w], std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps);
      }
    char dims[32];
    std::snprintf(dims, sizeof dims, "%ldx%ldx%ld%s", long(s.M), long(s.N), long(s.K), s.at ? " (A^T)" : "");
    std::printf("%-32s %16s %10.1f %10.1f %6.2f  %s\n", s.what, dims, flops / best[0] / 1e9, flops / best[1] / 1e9,
                best[0] / best[1], std::memcmp(C0.data(), C1.data(), C0.size() * 4) ? "DIFFERENT" : "same");
  }
}
