// grucli's fused kernels: the gate nonlinearities over a row of pre-activations, in place
// (included by fused_rnn.cpp). Vectorised sigmoid/tanh through the Sleef functions libtorch
// already exports; a row's leftover elements go in one masked vector (a scalar exp each made
// a step at H=39 ~1.6x slower), so every element goes through the same function.

#pragma once

#include <cmath>
#include <cstdint>

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

namespace activations {

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

}  // namespace activations
