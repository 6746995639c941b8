// grucli fused recurrent kernels (model.impl: fused). Built on first use by grucli/fused.py
// with torch.utils.cpp_extension.load_inline and cached per machine.
//
// One layer, one direction, time-major. The input projection x W_ih^T is one matmul per
// chunk of a few steps (see Projection), computed just before they run. Per step here: one matmul gh = h W_hh^T (no bias: biases are added in the
// gate pass, addmm's broadcast-bias path is ~2x slower at these sizes), then ONE pass over
// the gate buffer doing all gate arithmetic (vectorised sigmoid/tanh through the Sleef
// functions libtorch already exports). The backward through time is hand-written: one gate
// pass and one matmul per step; it returns the gate-preactivation gradients, from which the
// caller forms the weight gradients as a few large matmuls.
//
// out[t] always holds the state after step t; a masked (padded) step copies the previous
// state, so the last processed step holds every sequence's final state.

#include <ATen/ops/addmm_cpu_dispatch.h>
#include <ATen/ops/mm_cpu_dispatch.h>
#include <cmath>
#include <algorithm>
#include <cstring>

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
  for (; i < n; ++i) x[i] = sigm(x[i]);
}
template <> void tanh_<float>(float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, Sleef_tanhf16_u35(_mm512_loadu_ps(x + i)));
  for (; i < n; ++i) x[i] = std::tanh(x[i]);
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
template <> void sigmoid_<float>(float* x, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.f), zero = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    v = _mm256_div_ps(one, _mm256_add_ps(one, Sleef_expf8_u10(_mm256_sub_ps(zero, v))));
    _mm256_storeu_ps(x + i, v);
  }
  for (; i < n; ++i) x[i] = sigm(x[i]);
}
template <> void tanh_<float>(float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, Sleef_tanhf8_u35(_mm256_loadu_ps(x + i)));
  for (; i < n; ++i) x[i] = std::tanh(x[i]);
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

struct Steps {  // processing order of one direction
  int64_t T;
  bool reverse;
  int64_t at(int64_t s) const { return reverse ? T - 1 - s : s; }
};

inline const bool* mask_ptr(const c10::optional<Tensor>& mask) {
  return mask.has_value() && mask->defined() ? mask->data_ptr<bool>() : nullptr;
}

// The input projection x W_ih^T, computed a few steps at a time just before those steps run,
// so each chunk is read back from cache (~512 KB) instead of a (T, B, G*H) buffer in memory.
struct Projection {
  Tensor x2d, wt, buf;  // (T*B, I), (I, G*H), (C*B, G*H)
  int64_t T, B, GH, C, lo = 0, hi = 0;
  bool reverse;
  Projection(const Tensor& x, const Tensor& w_ih, bool reverse_)
      : T(x.size(0)), B(x.size(1)), GH(w_ih.size(0)), reverse(reverse_) {
    x2d = x.reshape({T * B, x.size(2)});
    wt = w_ih.t().contiguous();
    C = std::max<int64_t>(1, std::min<int64_t>(T, (int64_t(1) << 17) / std::max<int64_t>(1, B * GH)));
    buf = at::empty({C * B, GH}, x.options());
  }
  template <typename S> const S* step(int64_t t) {  // gi for step t: (B, G*H)
    if (t < lo || t >= hi) {
      lo = reverse ? std::max<int64_t>(0, t - C + 1) : t;
      hi = reverse ? t + 1 : std::min(T, t + C);
      Tensor out = buf.narrow(0, 0, (hi - lo) * B);
      at::cpu::mm_out(out, x2d.narrow(0, lo * B, (hi - lo) * B), wt);
    }
    return buf.data_ptr<S>() + (t - lo) * B * GH;
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

template <typename S>
inline void gru_row_backward(const S* __restrict__ g, const S* __restrict__ gn, const S* __restrict__ hp,
                             const S* __restrict__ d, S* __restrict__ dd, S* __restrict__ dn_out,
                             S* __restrict__ dg, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    const S r = g[j], z = g[H + j], n = g[2 * H + j], dhj = d[j];
    const S dn = dhj * (S(1) - z) * (S(1) - n * n);  // through tanh
    const S dz = dhj * (hp[j] - n) * z * (S(1) - z);
    const S dr = dn * gn[j] * r * (S(1) - r);
    dd[j] = dhj * z;
    dn_out[j] = dn;
    dg[j] = dr;
    dg[H + j] = dz;
    dg[2 * H + j] = dn * r;
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

}  // namespace

// ------------------------------------------------------------------------------------ GRU
// gates (r, z, n) as torch: r = s(gi_r + b_ir + gh_r + b_hr), z likewise,
// n = tanh(gi_n + b_in + r * (gh_n + b_hn)), h = (1 - z) * n + z * h_prev, gh = h_prev W_hh^T.
// save=false (inference): the gates are kept for one step only.
// Returns out (T, B, H), h_n, and for the backward: gates (r, z, n), gh_n + b_hn.
std::vector<Tensor> gru_forward(Tensor x, Tensor w_ih, Tensor h0, Tensor w_hh, Tensor b_ih, Tensor b_hh,
                                c10::optional<Tensor> mask, bool reverse, bool save) {
  const int64_t T = x.size(0), B = x.size(1), H = h0.size(1);
  Projection proj(x, w_ih, reverse);
  auto out = at::empty({T, B, H}, x.options());
  auto gates = at::empty({save ? T : 1, B, 3 * H}, x.options());
  auto ghn = at::empty({save ? T : 1, B, H}, x.options());
  auto gh = at::empty({B, 3 * H}, x.options());
  auto wt = w_hh.t().contiguous();
  const bool* m = mask_ptr(mask);
  Steps steps{T, reverse};
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gru_forward", [&] {
    using S = scalar_t;
    const S *bi = b_ih.data_ptr<S>(), *bh = b_hh.data_ptr<S>(), *gh0 = gh.data_ptr<S>();
    S *out0 = out.data_ptr<S>(), *g0 = gates.data_ptr<S>(), *gn0 = ghn.data_ptr<S>();
    for (int64_t s = 0; s < T; ++s) {
      const int64_t t = steps.at(s);
      Tensor hprev = s == 0 ? h0 : out[steps.at(s - 1)];
      at::cpu::mm_out(gh, hprev, wt);
      const S* hp0 = hprev.data_ptr<S>();
      const S* xg = proj.step<S>(t);
      for (int64_t b = 0; b < B; ++b) {
        const int64_t row = t * B + b, srow = save ? row : b;
        S* o = out0 + row * H;
        if (m && !m[row]) {
          std::memcpy(o, hp0 + b * H, H * sizeof(S));
          continue;
        }
        gru_row_forward(xg + b * 3 * H, gh0 + b * 3 * H, bi, bh, hp0 + b * H, g0 + srow * 3 * H,
                        gn0 + srow * H, o, H);
      }
    }
  });
  Tensor h_last = T ? out[steps.at(T - 1)].clone() : h0.clone();
  return {out, h_last, gates, ghn};
}

// Returns dgh (T, B, 3H), the gradient of h W_hh^T (before b_hh), dn (T, B, H), and dh0.
// The gradient of x W_ih^T is (dgh_r, dgh_z, dn): it shares the r and z blocks, so it is
// never written out.
std::vector<Tensor> gru_backward(c10::optional<Tensor> grad_out, c10::optional<Tensor> grad_h, Tensor gates, Tensor ghn, Tensor out, Tensor h0, Tensor w_hh,
                                 c10::optional<Tensor> mask, bool reverse) {
  const int64_t T = out.size(0), B = out.size(1), H = out.size(2);
  const bool* m = mask_ptr(mask);
  auto dn = m ? at::zeros({T, B, H}, out.options()) : at::empty({T, B, H}, out.options());
  auto dgh = m ? at::zeros({T, B, 3 * H}, out.options()) : at::empty({T, B, 3 * H}, out.options());
  auto dh = grad_h.has_value() && grad_h->defined() ? grad_h->clone() : at::zeros({B, H}, out.options());
  auto dhd = at::empty({B, H}, out.options());  // dL/dh_prev through the direct (z * h_prev) path
  const bool has_go = grad_out.has_value() && grad_out->defined();
  Steps steps{T, reverse};
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "gru_backward", [&] {
    using S = scalar_t;
    const S *g0 = gates.data_ptr<S>(), *gn0 = ghn.data_ptr<S>(), *go0 = has_go ? grad_out->data_ptr<S>() : nullptr;
    S *d0 = dh.data_ptr<S>(), *dd0 = dhd.data_ptr<S>(), *dn0 = dn.data_ptr<S>(), *dg0 = dgh.data_ptr<S>();
    for (int64_t s = T - 1; s >= 0; --s) {
      const int64_t t = steps.at(s);
      const S* hp0 = (s == 0 ? h0 : out[steps.at(s - 1)]).data_ptr<S>();
      for (int64_t b = 0; b < B; ++b) {
        const int64_t row = t * B + b;
        S *d = d0 + b * H, *dd = dd0 + b * H;
        if (has_go) add_(d, go0 + row * H, H);
        if (m && !m[row]) {
          std::memcpy(dd, d, H * sizeof(S));
          continue;
        }
        gru_row_backward(g0 + row * 3 * H, gn0 + row * H, hp0 + b * H, d, dd, dn0 + row * H, dg0 + row * 3 * H, H);
      }
      at::cpu::addmm_out(dh, dhd, dgh[t], w_hh);  // dh_prev = direct + dgh W_hh
    }
  });
  return {dgh, dn, dh};
}

// ----------------------------------------------------------------------------------- LSTM
// gates (i, f, g, o) as torch: c = f * c_prev + i * g, h = o * tanh(c).
std::vector<Tensor> lstm_forward(Tensor x, Tensor w_ih, Tensor h0, Tensor c0, Tensor w_hh, Tensor b_ih, Tensor b_hh,
                                 c10::optional<Tensor> mask, bool reverse, bool save) {
  const int64_t T = x.size(0), B = x.size(1), H = h0.size(1);
  Projection proj(x, w_ih, reverse);
  auto out = at::empty({T, B, H}, x.options());
  auto cs = at::empty({T, B, H}, x.options());
  auto tcs = at::empty({save ? T : 1, B, H}, x.options());       // tanh(c)
  auto gates = at::empty({save ? T : 1, B, 4 * H}, x.options());  // activated i, f, g, o
  auto gh = at::empty({B, 4 * H}, x.options());
  auto wt = w_hh.t().contiguous();
  const bool* m = mask_ptr(mask);
  Steps steps{T, reverse};
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstm_forward", [&] {
    using S = scalar_t;
    const S *bi = b_ih.data_ptr<S>(), *bh = b_hh.data_ptr<S>(), *gh0 = gh.data_ptr<S>();
    S *out0 = out.data_ptr<S>(), *cs0 = cs.data_ptr<S>(), *g0 = gates.data_ptr<S>(), *tc0 = tcs.data_ptr<S>();
    for (int64_t s = 0; s < T; ++s) {
      const int64_t t = steps.at(s);
      Tensor hprev = s == 0 ? h0 : out[steps.at(s - 1)];
      const S* cp0 = s == 0 ? c0.data_ptr<S>() : cs0 + steps.at(s - 1) * B * H;
      at::cpu::mm_out(gh, hprev, wt);
      const S* hp0 = hprev.data_ptr<S>();
      const S* xg = proj.step<S>(t);
      for (int64_t b = 0; b < B; ++b) {
        const int64_t row = t * B + b, srow = save ? row : b;
        S *o = out0 + row * H, *c = cs0 + row * H;
        if (m && !m[row]) {
          std::memcpy(o, hp0 + b * H, H * sizeof(S));
          std::memcpy(c, cp0 + b * H, H * sizeof(S));
          continue;
        }
        lstm_row_forward(xg + b * 4 * H, gh0 + b * 4 * H, bi, bh, cp0 + b * H, g0 + srow * 4 * H, c,
                         tc0 + srow * H, o, H);
      }
    }
  });
  Tensor h_last = T ? out[steps.at(T - 1)].clone() : h0.clone();
  Tensor c_last = T ? cs[steps.at(T - 1)].clone() : c0.clone();
  return {out, h_last, c_last, gates, cs, tcs};
}

// Returns dG (T, B, 4H), the gradient of both x W_ih^T and h W_hh^T, dh0, dc0.
std::vector<Tensor> lstm_backward(c10::optional<Tensor> grad_out, c10::optional<Tensor> grad_h,
                                  c10::optional<Tensor> grad_c, Tensor gates, Tensor cs, Tensor tcs,
                                  Tensor out, Tensor h0, Tensor c0, Tensor w_hh, c10::optional<Tensor> mask,
                                  bool reverse) {
  const int64_t T = out.size(0), B = out.size(1), H = out.size(2);
  const bool* m = mask_ptr(mask);
  auto dG = m ? at::zeros({T, B, 4 * H}, out.options()) : at::empty({T, B, 4 * H}, out.options());
  auto dh = grad_h.has_value() && grad_h->defined() ? grad_h->clone() : at::zeros({B, H}, out.options());
  auto dc = grad_c.has_value() && grad_c->defined() ? grad_c->clone() : at::zeros({B, H}, out.options());
  auto dhd = at::zeros({B, H}, out.options());  // masked rows pass dh through
  const bool has_go = grad_out.has_value() && grad_out->defined();
  Steps steps{T, reverse};
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "lstm_backward", [&] {
    using S = scalar_t;
    const S *g0 = gates.data_ptr<S>(), *tc0 = tcs.data_ptr<S>(), *cs0 = cs.data_ptr<S>();
    const S* go0 = has_go ? grad_out->data_ptr<S>() : nullptr;
    S *d0 = dh.data_ptr<S>(), *dc0 = dc.data_ptr<S>(), *dd0 = dhd.data_ptr<S>(), *dG0 = dG.data_ptr<S>();
    for (int64_t s = T - 1; s >= 0; --s) {
      const int64_t t = steps.at(s);
      const S* cp0 = s == 0 ? c0.data_ptr<S>() : cs0 + steps.at(s - 1) * B * H;
      for (int64_t b = 0; b < B; ++b) {
        const int64_t row = t * B + b;
        S *d = d0 + b * H, *dd = dd0 + b * H;
        if (has_go) add_(d, go0 + row * H, H);
        if (m && !m[row]) {
          std::memcpy(dd, d, H * sizeof(S));
          continue;
        }
        if (m) std::memset(dd, 0, H * sizeof(S));
        lstm_row_backward(g0 + row * 4 * H, tc0 + row * H, cp0 + b * H, d, dc0 + b * H, dG0 + row * 4 * H, H);
      }
      at::cpu::addmm_out(dh, dhd, dG[t], w_hh);
    }
  });
  return {dG, dh, dc};
}

// ------------------------------------------------------------------------------------ RNN
// h = phi(gi + b_ih + h_prev W_hh^T + b_hh), phi = tanh or relu.
std::vector<Tensor> rnn_forward(Tensor x, Tensor w_ih, Tensor h0, Tensor w_hh, Tensor b_ih, Tensor b_hh,
                                c10::optional<Tensor> mask, bool reverse, bool relu) {
  const int64_t T = x.size(0), B = x.size(1), H = h0.size(1);
  Projection proj(x, w_ih, reverse);
  auto out = at::empty({T, B, H}, x.options());
  auto gh = at::empty({B, H}, x.options());
  auto wt = w_hh.t().contiguous();
  const bool* m = mask_ptr(mask);
  Steps steps{T, reverse};
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rnn_forward", [&] {
    using S = scalar_t;
    const S *bi = b_ih.data_ptr<S>(), *bh = b_hh.data_ptr<S>(), *gh0 = gh.data_ptr<S>();
    S* out0 = out.data_ptr<S>();
    for (int64_t s = 0; s < T; ++s) {
      const int64_t t = steps.at(s);
      Tensor hprev = s == 0 ? h0 : out[steps.at(s - 1)];
      at::cpu::mm_out(gh, hprev, wt);
      const S* hp0 = hprev.data_ptr<S>();
      const S* xg = proj.step<S>(t);
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

std::vector<Tensor> rnn_backward(c10::optional<Tensor> grad_out, c10::optional<Tensor> grad_h, Tensor out, Tensor h0, Tensor w_hh, c10::optional<Tensor> mask, bool reverse,
                                 bool relu) {
  const int64_t T = out.size(0), B = out.size(1), H = out.size(2);
  const bool* m = mask_ptr(mask);
  auto dG = m ? at::zeros({T, B, H}, out.options()) : at::empty({T, B, H}, out.options());
  auto dh = grad_h.has_value() && grad_h->defined() ? grad_h->clone() : at::zeros({B, H}, out.options());
  auto dhd = at::zeros({B, H}, out.options());
  const bool has_go = grad_out.has_value() && grad_out->defined();
  Steps steps{T, reverse};
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "rnn_backward", [&] {
    using S = scalar_t;
    const S *out0 = out.data_ptr<S>(), *go0 = has_go ? grad_out->data_ptr<S>() : nullptr;
    S *d0 = dh.data_ptr<S>(), *dd0 = dhd.data_ptr<S>(), *dG0 = dG.data_ptr<S>();
    for (int64_t s = T - 1; s >= 0; --s) {
      const int64_t t = steps.at(s);
      for (int64_t b = 0; b < B; ++b) {
        const int64_t row = t * B + b;
        S *d = d0 + b * H, *dd = dd0 + b * H;
        if (has_go) add_(d, go0 + row * H, H);
        if (m && !m[row]) {
          std::memcpy(dd, d, H * sizeof(S));
          continue;
        }
        if (m) std::memset(dd, 0, H * sizeof(S));
        rnn_row_backward(out0 + row * H, d, dG0 + row * H, H, relu);
      }
      at::cpu::addmm_out(dh, dhd, dG[t], w_hh);
    }
  });
  return {dG, dh};
}
