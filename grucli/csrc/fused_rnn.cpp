// grucli fused recurrent kernels (model.impl: fused). Built on first use by grucli/fused.py
// with torch.utils.cpp_extension.load_inline and cached per machine.
//
// One layer, one direction, time-major. The input projection gi = x W_ih^T + b_ih for all
// steps is computed outside (one matmul, autograd handles its backward). Per step here:
// one matmul h W_hh^T + b_hh, then ONE pass over the gate buffer doing all gate arithmetic
// (vectorised sigmoid/tanh through the Sleef functions libtorch already exports). The
// backward through time is hand-written: one matmul per step for dh, then the weight
// gradient dW_hh as a single (G*H, T*B) x (T*B, H) matmul at the end.
//
// out[t] always holds the state after step t; a masked (padded) step copies the previous
// state, so the last processed step holds every sequence's final state.

#include <ATen/ops/addmm_cpu_dispatch.h>
#include <ATen/ops/mm_cpu_dispatch.h>
#include <cmath>
#include <cstring>

#ifdef GRUCLI_AVX2
#include <immintrin.h>
extern "C" {
__m256 Sleef_expf8_u10(__m256);
__m256 Sleef_tanhf8_u10(__m256);
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

#ifdef GRUCLI_AVX2
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
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, Sleef_tanhf8_u10(_mm256_loadu_ps(x + i)));
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

// Previous states for every step, in time order: (T, B, H).
Tensor previous(const Tensor& out, const Tensor& h0, bool reverse) {
  int64_t T = out.size(0);
  if (T == 1) return h0.unsqueeze(0);
  return reverse ? at::cat({out.slice(0, 1, T), h0.unsqueeze(0)}) : at::cat({h0.unsqueeze(0), out.slice(0, 0, T - 1)});
}

}  // namespace

// ------------------------------------------------------------------------------------ GRU
// gates (r, z, n) as torch: r = s(gi_r + gh_r), z = s(gi_z + gh_z),
// n = tanh(gi_n + r * gh_n), h = (1 - z) * n + z * h_prev, with gh = h_prev W_hh^T + b_hh.
std::vector<Tensor> gru_forward(Tensor gi, Tensor h0, Tensor w_hh, Tensor b_hh, c10::optional<Tensor> mask,
                                bool reverse) {
  const int64_t T = gi.size(0), B = gi.size(1), H = h0.size(1);
  auto out = at::empty({T, B, H}, gi.options());
  auto gates = at::empty({T, B, 3 * H}, gi.options());  // activated r, z, n
  auto ghn = at::empty({T, B, H}, gi.options());        // gh_n, needed for dr
  auto gh = at::empty({B, 3 * H}, gi.options());
  auto wt = w_hh.t();
  const bool* m = mask_ptr(mask);
  Steps steps{T, reverse};
  AT_DISPATCH_FLOATING_TYPES(gi.scalar_type(), "gru_forward", [&] {
    using S = scalar_t;
    for (int64_t s = 0; s < T; ++s) {
      const int64_t t = steps.at(s);
      Tensor hprev = s == 0 ? h0 : out[steps.at(s - 1)];
      at::cpu::addmm_out(gh, b_hh, hprev, wt);
      const S* hp0 = hprev.data_ptr<S>();
      const S* gh0 = gh.data_ptr<S>();
      for (int64_t b = 0; b < B; ++b) {
        const int64_t row = t * B + b;
        const S* hp = hp0 + b * H;
        S* o = out.data_ptr<S>() + row * H;
        if (m && !m[row]) {
          std::memcpy(o, hp, H * sizeof(S));
          continue;
        }
        const S* x = gi.data_ptr<S>() + row * 3 * H;
        const S* g_h = gh0 + b * 3 * H;
        S* g = gates.data_ptr<S>() + row * 3 * H;
        S* gn = ghn.data_ptr<S>() + row * H;
        for (int64_t j = 0; j < 2 * H; ++j) g[j] = x[j] + g_h[j];
        sigmoid_(g, 2 * H);
        for (int64_t j = 0; j < H; ++j) {
          gn[j] = g_h[2 * H + j];
          g[2 * H + j] = x[2 * H + j] + g[j] * gn[j];
        }
        tanh_(g + 2 * H, H);
        for (int64_t j = 0; j < H; ++j) {
          const S z = g[H + j];
          o[j] = (S(1) - z) * g[2 * H + j] + z * hp[j];
        }
      }
    }
  });
  Tensor h_last = T ? out[steps.at(T - 1)].clone() : h0.clone();
  return {out, h_last, gates, ghn};
}

std::vector<Tensor> gru_backward(c10::optional<Tensor> grad_out, c10::optional<Tensor> grad_h, Tensor gates,
                                 Tensor ghn, Tensor out, Tensor h0, Tensor w_hh, c10::optional<Tensor> mask,
                                 bool reverse) {
  const int64_t T = out.size(0), B = out.size(1), H = out.size(2);
  const bool* m = mask_ptr(mask);
  auto dgi = m ? at::zeros({T, B, 3 * H}, out.options()) : at::empty({T, B, 3 * H}, out.options());
  auto dgh = m ? at::zeros({T, B, 3 * H}, out.options()) : at::empty({T, B, 3 * H}, out.options());
  auto dh = grad_h.has_value() && grad_h->defined() ? grad_h->clone() : at::zeros({B, H}, out.options());
  auto dhd = at::empty({B, H}, out.options());  // dL/dh_prev through the direct (z * h_prev) path
  const bool has_go = grad_out.has_value() && grad_out->defined();
  Steps steps{T, reverse};
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "gru_backward", [&] {
    using S = scalar_t;
    for (int64_t s = T - 1; s >= 0; --s) {
      const int64_t t = steps.at(s);
      const S* hp0 = (s == 0 ? h0 : out[steps.at(s - 1)]).data_ptr<S>();
      S* d0 = dh.data_ptr<S>();
      S* dd0 = dhd.data_ptr<S>();
      for (int64_t b = 0; b < B; ++b) {
        const int64_t row = t * B + b;
        S* d = d0 + b * H;
        S* dd = dd0 + b * H;
        if (has_go) {
          const S* go = grad_out->data_ptr<S>() + row * H;
          for (int64_t j = 0; j < H; ++j) d[j] += go[j];
        }
        if (m && !m[row]) {
          std::memcpy(dd, d, H * sizeof(S));
          continue;
        }
        const S* g = gates.data_ptr<S>() + row * 3 * H;
        const S* gn = ghn.data_ptr<S>() + row * H;
        const S* hp = hp0 + b * H;
        S* di = dgi.data_ptr<S>() + row * 3 * H;
        S* dg = dgh.data_ptr<S>() + row * 3 * H;
        for (int64_t j = 0; j < H; ++j) {
          const S r = g[j], z = g[H + j], n = g[2 * H + j], dhj = d[j];
          const S dn = dhj * (S(1) - z) * (S(1) - n * n);  // through tanh
          const S dz = dhj * (hp[j] - n) * z * (S(1) - z);
          const S dr = dn * gn[j] * r * (S(1) - r);
          dd[j] = dhj * z;
          di[j] = dr;
          di[H + j] = dz;
          di[2 * H + j] = dn;
          dg[j] = dr;
          dg[H + j] = dz;
          dg[2 * H + j] = dn * r;
        }
      }
      at::cpu::addmm_out(dh, dhd, dgh[t], w_hh);  // dh_prev = direct + dgh W_hh
    }
  });
  auto dgh2 = dgh.view({T * B, 3 * H});
  auto dw = at::cpu::mm(dgh2.t(), previous(out, h0, reverse).view({T * B, H}));
  auto db = dgh2.sum(0);
  return {dgi, dh, dw, db};
}

// ----------------------------------------------------------------------------------- LSTM
// gates (i, f, g, o) as torch: c = f * c_prev + i * g, h = o * tanh(c).
std::vector<Tensor> lstm_forward(Tensor gi, Tensor h0, Tensor c0, Tensor w_hh, Tensor b_hh,
                                 c10::optional<Tensor> mask, bool reverse) {
  const int64_t T = gi.size(0), B = gi.size(1), H = h0.size(1);
  auto out = at::empty({T, B, H}, gi.options());
  auto cs = at::empty({T, B, H}, gi.options());
  auto tcs = at::empty({T, B, H}, gi.options());       // tanh(c)
  auto gates = at::empty({T, B, 4 * H}, gi.options());  // activated i, f, g, o
  auto gh = at::empty({B, 4 * H}, gi.options());
  auto wt = w_hh.t();
  const bool* m = mask_ptr(mask);
  Steps steps{T, reverse};
  AT_DISPATCH_FLOATING_TYPES(gi.scalar_type(), "lstm_forward", [&] {
    using S = scalar_t;
    for (int64_t s = 0; s < T; ++s) {
      const int64_t t = steps.at(s);
      Tensor hprev = s == 0 ? h0 : out[steps.at(s - 1)];
      const S* cp0 = (s == 0 ? c0 : cs[steps.at(s - 1)]).data_ptr<S>();
      at::cpu::addmm_out(gh, b_hh, hprev, wt);
      const S* hp0 = hprev.data_ptr<S>();
      const S* gh0 = gh.data_ptr<S>();
      for (int64_t b = 0; b < B; ++b) {
        const int64_t row = t * B + b;
        S* o = out.data_ptr<S>() + row * H;
        S* c = cs.data_ptr<S>() + row * H;
        const S* cp = cp0 + b * H;
        if (m && !m[row]) {
          std::memcpy(o, hp0 + b * H, H * sizeof(S));
          std::memcpy(c, cp, H * sizeof(S));
          continue;
        }
        const S* x = gi.data_ptr<S>() + row * 4 * H;
        const S* g_h = gh0 + b * 4 * H;
        S* g = gates.data_ptr<S>() + row * 4 * H;
        S* tc = tcs.data_ptr<S>() + row * H;
        for (int64_t j = 0; j < 4 * H; ++j) g[j] = x[j] + g_h[j];
        sigmoid_(g, 2 * H);
        tanh_(g + 2 * H, H);
        sigmoid_(g + 3 * H, H);
        for (int64_t j = 0; j < H; ++j) tc[j] = c[j] = g[H + j] * cp[j] + g[j] * g[2 * H + j];
        tanh_(tc, H);
        for (int64_t j = 0; j < H; ++j) o[j] = g[3 * H + j] * tc[j];
      }
    }
  });
  Tensor h_last = T ? out[steps.at(T - 1)].clone() : h0.clone();
  Tensor c_last = T ? cs[steps.at(T - 1)].clone() : c0.clone();
  return {out, h_last, c_last, gates, cs, tcs};
}

std::vector<Tensor> lstm_backward(c10::optional<Tensor> grad_out, c10::optional<Tensor> grad_h,
                                  c10::optional<Tensor> grad_c, Tensor gates, Tensor cs, Tensor tcs, Tensor out,
                                  Tensor h0, Tensor c0, Tensor w_hh, c10::optional<Tensor> mask, bool reverse) {
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
    for (int64_t s = T - 1; s >= 0; --s) {
      const int64_t t = steps.at(s);
      const S* cp0 = (s == 0 ? c0 : cs[steps.at(s - 1)]).data_ptr<S>();
      for (int64_t b = 0; b < B; ++b) {
        const int64_t row = t * B + b;
        S* d = dh.data_ptr<S>() + b * H;
        S* dcb = dc.data_ptr<S>() + b * H;
        S* dd = dhd.data_ptr<S>() + b * H;
        if (has_go) {
          const S* go = grad_out->data_ptr<S>() + row * H;
          for (int64_t j = 0; j < H; ++j) d[j] += go[j];
        }
        if (m && !m[row]) {
          std::memcpy(dd, d, H * sizeof(S));
          continue;
        }
        if (m) std::memset(dd, 0, H * sizeof(S));
        const S* g = gates.data_ptr<S>() + row * 4 * H;
        const S* tc = tcs.data_ptr<S>() + row * H;
        const S* cp = cp0 + b * H;
        S* dg = dG.data_ptr<S>() + row * 4 * H;
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
      at::cpu::addmm_out(dh, dhd, dG[t], w_hh);
    }
  });
  auto dG2 = dG.view({T * B, 4 * H});
  auto dw = at::cpu::mm(dG2.t(), previous(out, h0, reverse).view({T * B, H}));
  auto db = dG2.sum(0);
  return {dG, dh, dc, dw, db};
}

// ------------------------------------------------------------------------------------ RNN
// h = phi(gi + h_prev W_hh^T + b_hh), phi = tanh or relu.
std::vector<Tensor> rnn_forward(Tensor gi, Tensor h0, Tensor w_hh, Tensor b_hh, c10::optional<Tensor> mask,
                                bool reverse, bool relu) {
  const int64_t T = gi.size(0), B = gi.size(1), H = h0.size(1);
  auto out = at::empty({T, B, H}, gi.options());
  auto wt = w_hh.t();
  const bool* m = mask_ptr(mask);
  Steps steps{T, reverse};
  AT_DISPATCH_FLOATING_TYPES(gi.scalar_type(), "rnn_forward", [&] {
    using S = scalar_t;
    for (int64_t s = 0; s < T; ++s) {
      const int64_t t = steps.at(s);
      Tensor hprev = s == 0 ? h0 : out[steps.at(s - 1)];
      Tensor o_t = out[t];
      at::cpu::addmm_out(o_t, b_hh, hprev, wt);
      const S* hp0 = hprev.data_ptr<S>();
      for (int64_t b = 0; b < B; ++b) {
        const int64_t row = t * B + b;
        S* o = out.data_ptr<S>() + row * H;
        if (m && !m[row]) {
          std::memcpy(o, hp0 + b * H, H * sizeof(S));
          continue;
        }
        const S* x = gi.data_ptr<S>() + row * H;
        for (int64_t j = 0; j < H; ++j) o[j] += x[j];
        if (relu) {
          for (int64_t j = 0; j < H; ++j) o[j] = o[j] > S(0) ? o[j] : S(0);
        } else {
          tanh_(o, H);
        }
      }
    }
  });
  Tensor h_last = T ? out[steps.at(T - 1)].clone() : h0.clone();
  return {out, h_last};
}

std::vector<Tensor> rnn_backward(c10::optional<Tensor> grad_out, c10::optional<Tensor> grad_h, Tensor out,
                                 Tensor h0, Tensor w_hh, c10::optional<Tensor> mask, bool reverse, bool relu) {
  const int64_t T = out.size(0), B = out.size(1), H = out.size(2);
  const bool* m = mask_ptr(mask);
  auto dG = m ? at::zeros({T, B, H}, out.options()) : at::empty({T, B, H}, out.options());
  auto dh = grad_h.has_value() && grad_h->defined() ? grad_h->clone() : at::zeros({B, H}, out.options());
  auto dhd = at::zeros({B, H}, out.options());
  const bool has_go = grad_out.has_value() && grad_out->defined();
  Steps steps{T, reverse};
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "rnn_backward", [&] {
    using S = scalar_t;
    for (int64_t s = T - 1; s >= 0; --s) {
      const int64_t t = steps.at(s);
      for (int64_t b = 0; b < B; ++b) {
        const int64_t row = t * B + b;
        S* d = dh.data_ptr<S>() + b * H;
        S* dd = dhd.data_ptr<S>() + b * H;
        if (has_go) {
          const S* go = grad_out->data_ptr<S>() + row * H;
          for (int64_t j = 0; j < H; ++j) d[j] += go[j];
        }
        if (m && !m[row]) {
          std::memcpy(dd, d, H * sizeof(S));
          continue;
        }
        if (m) std::memset(dd, 0, H * sizeof(S));
        const S* h = out.data_ptr<S>() + row * H;
        S* dg = dG.data_ptr<S>() + row * H;
        if (relu) {
          for (int64_t j = 0; j < H; ++j) dg[j] = h[j] > S(0) ? d[j] : S(0);
        } else {
          for (int64_t j = 0; j < H; ++j) dg[j] = d[j] * (S(1) - h[j] * h[j]);
        }
      }
      at::cpu::addmm_out(dh, dhd, dG[t], w_hh);
    }
  });
  auto dG2 = dG.view({T * B, H});
  auto dw = at::cpu::mm(dG2.t(), previous(out, h0, reverse).view({T * B, H}));
  auto db = dG2.sum(0);
  return {dG, dh, dw, db};
}
