// grucli fused recurrent kernels (model.impl: fused). Built on first use by grucli/cells/fused/build.py
// with torch.utils.cpp_extension.load_inline and cached per machine.
//
// One layer, one direction, time-major, raw pointers throughout (no ATen op per step).
// Forward, per step: one matmul gh = h W_hh^T (no bias: biases are added in the gate pass),
// then ONE pass over the gate buffer doing all gate arithmetic. The input projection
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
// Matrix products: products.h (grucli's own tiles, gemm.h); gate nonlinearities: activations.h.
#include <cmath>
#include <algorithm>
#include <cstring>
#include <vector>

#include "activations.h"
#include "products.h"

namespace {

using at::Tensor;
using activations::sigmoid_;
using activations::tanh_;
using products::gemm;
using products::transposed;

// ------------------------------------------------------------------------------ layout
struct Steps {  // processing order of one direction
  int64_t T;
  bool reverse;
  int64_t at(int64_t s) const { return reverse ? T - 1 - s : s; }
};

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

// p: the peepholes (p_i, p_f, p_o), 3H, or null for the plain LSTM (whose arithmetic is then
// exactly the same as without the argument). With them (Gers & Schmidhuber 2000): i and f
// also see c_prev, o sees the new c: i = s(. + p_i * c_prev), f = s(. + p_f * c_prev),
// o = s(. + p_o * c).
template <typename S>
inline void lstm_row_forward(const S* __restrict__ x, const S* __restrict__ gh, const S* __restrict__ bi,
                             const S* __restrict__ bh, const S* __restrict__ cp, S* __restrict__ g,
                             S* __restrict__ c, S* __restrict__ tc, S* __restrict__ o, int64_t H,
                             const S* __restrict__ p = nullptr) {
  for (int64_t j = 0; j < 4 * H; ++j) g[j] = (x[j] + bi[j]) + (gh[j] + bh[j]);
  if (p) {
    for (int64_t j = 0; j < H; ++j) {
      g[j] += p[j] * cp[j];
      g[H + j] += p[H + j] * cp[j];
    }
    sigmoid_(g, 2 * H);  // i, f
    tanh_(g + 2 * H, H);  // g
    for (int64_t j = 0; j < H; ++j) tc[j] = c[j] = g[H + j] * cp[j] + g[j] * g[2 * H + j];
    for (int64_t j = 0; j < H; ++j) g[3 * H + j] += p[2 * H + j] * c[j];
    sigmoid_(g + 3 * H, H);  // o
  } else {
    sigmoid_(g, 2 * H);  // i, f
    tanh_(g + 2 * H, H);  // g
    sigmoid_(g + 3 * H, H);  // o
    for (int64_t j = 0; j < H; ++j) tc[j] = c[j] = g[H + j] * cp[j] + g[j] * g[2 * H + j];
  }
  tanh_(tc, H);
  for (int64_t j = 0; j < H; ++j) o[j] = g[3 * H + j] * tc[j];
}

// dcb: dL/dc carried backward (in: from later steps; out: dL/dc_prev). With peepholes p
// (null: plain LSTM), c's gradient also comes through o's pre-activation, and c_prev's
// through i's and f's.
template <typename S>
inline void lstm_row_backward(const S* __restrict__ g, const S* __restrict__ tc, const S* __restrict__ cp,
                              const S* __restrict__ d, S* __restrict__ dcb, S* __restrict__ dg, int64_t H,
                              const S* __restrict__ p = nullptr) {
  if (p) {
    for (int64_t j = 0; j < H; ++j) {
      const S i = g[j], f = g[H + j], gg = g[2 * H + j], o = g[3 * H + j], dhj = d[j];
      const S dao = dhj * tc[j] * o * (S(1) - o);
      const S dcj = dcb[j] + dhj * o * (S(1) - tc[j] * tc[j]) + dao * p[2 * H + j];
      const S dai = dcj * gg * i * (S(1) - i), daf = dcj * cp[j] * f * (S(1) - f);
      dg[j] = dai;
      dg[H + j] = daf;
      dg[2 * H + j] = dcj * i * (S(1) - gg * gg);
      dg[3 * H + j] = dao;
      dcb[j] = dcj * f + dai * p[j] + daf * p[H + j];
    }
    return;
  }
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

// Shapes of one run, read off its slices.
struct Dims {
  int64_t T, B, I, H;
};
inline Dims dims(const Tensor& x, const Tensor& h0) { return {x.size(0), x.size(1), x.size(2), h0.size(1)}; }

// The (B, H) state gradient carried backward through time, and its scratch twin: each step
// writes dL/dh_prev into `next`, then the two swap.
template <typename S> struct Carry {
  Tensor a, b;
  S *cur, *next;
  Carry(const Tensor& grad_h, int64_t B, int64_t H, const at::TensorOptions& o)
      : a(grad_h.defined() ? grad_h.contiguous().clone() : at::zeros({B, H}, o)), b(at::empty({B, H}, o)),
        cur(a.data_ptr<S>()), next(b.data_ptr<S>()) {}
  void swap() { std::swap(cur, next); }
  Tensor result() const { return cur == a.data_ptr<S>() ? a : b; }
};

// A pack: every tensor of an entry point below has a leading run dimension K (a model
// trained alone is a pack of one). Each run is computed by the same code on its own
// slices, so its numbers never depend on the others.
struct Pack {
  int64_t K;
  static Tensor run(const c10::optional<Tensor>& t, int64_t k) {  // run k's slice, or undefined
    return t.has_value() && t->defined() ? (*t)[k] : Tensor();
  }
  static const bool* mask(const c10::optional<Tensor>& mask, int64_t k) {  // (K, T, B) -> run k's (T, B)
    return mask.has_value() && mask->defined() ? mask->data_ptr<bool>() + k * mask->size(1) * mask->size(2) : nullptr;
  }
};

// A run given without its pack dimension (x (T, B, I), ...) is a pack of one; its results
// come back without it too.
struct Single {
  bool on;
  explicit Single(const Tensor& x) : on(x.dim() == 3) {}
  Tensor in(const Tensor& t) const { return on && t.defined() ? t.unsqueeze(0) : t; }
  c10::optional<Tensor> in(const c10::optional<Tensor>& t) const {
    return on && t.has_value() && t->defined() ? c10::optional<Tensor>(t->unsqueeze(0)) : t;
  }
  std::vector<Tensor> out(std::vector<Tensor> ts) const {
    if (on)
      for (auto& t : ts)
        if (t.defined()) t = t.squeeze(0);
    return ts;
  }
};

// The state after the last processed step of every run (out (K, T, B, H); out[t] holds the
// state after step t, padded steps included), or the initial state when T = 0.
inline Tensor last_state(const Tensor& seq, const Tensor& init, bool reverse) {
  const int64_t T = seq.size(1);
  return T ? seq.select(1, reverse ? 0 : T - 1).clone() : init.clone();
}

// The weight and input gradients of a pack, zeroed, and run k's views of them.
struct Grads {  // dx (or undefined), dW_ih, dW_hh, db_ih, db_hh; all (K, ...)
  Tensor dx, dw_ih, dw_hh, db_ih, db_hh, dh0;
  Grads(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, bool need_dx)
      : dx(need_dx ? at::empty_like(x) : Tensor()), dw_ih(at::zeros_like(w_ih)), dw_hh(at::zeros_like(w_hh)),
        db_ih(at::zeros({w_ih.size(0), w_ih.size(1)}, w_ih.options())),
        db_hh(at::zeros({w_ih.size(0), w_ih.size(1)}, w_ih.options())),
        dh0(at::empty({x.size(0), x.size(2), w_hh.size(2)}, x.options())) {}
  template <typename S>
  WeightGrads<S> acc(int64_t k, const Tensor& x, const Tensor& w_ih, const Tensor& out, const Tensor& h0, const Dims& d,
                     int64_t GH, bool reverse) {
    return {x.data_ptr<S>(), w_ih.data_ptr<S>(), out.data_ptr<S>(), h0.data_ptr<S>(), d.T, d.B, d.I, d.H, GH, reverse,
            dw_ih[k].data_ptr<S>(), dw_hh[k].data_ptr<S>(), db_ih[k].data_ptr<S>(), db_hh[k].data_ptr<S>(),
            dx.defined() ? dx[k].data_ptr<S>() : nullptr};
  }
  std::vector<Tensor> result() const { return {dx, dh0, dw_ih, dw_hh, db_ih, db_hh}; }
};

}  // namespace

// Every entry point takes a pack: x (K, T, B, I), states (K, B, H), W_ih (K, G*H, I),
// W_hh (K, G*H, H), biases (K, G*H), mask (K, T, B) or none; and returns tensors of the
// same leading K. Inside, one loop over the runs calls the one-run code below. A single
// run may come without K (struct Single).

// ------------------------------------------------------------------------------------ GRU
// gates (r, z, n) as torch: r = s(gi_r + b_ir + gh_r + b_hr), z likewise,
// n = tanh(gi_n + b_in + r * (gh_n + b_hn)), h = (1 - z) * n + z * h_prev, gh = h_prev W_hh^T.
// save=false (inference): the gates are kept for one step only.
namespace {
void gru_forward_run(const Tensor& x, const Tensor& w_ih, const Tensor& h0, const Tensor& w_hh, const Tensor& b_ih,
                     const Tensor& b_hh, const bool* m, bool reverse, bool save, int64_t budget, Tensor out,
                     Tensor gates, Tensor ghn) {
  const Dims d = dims(x, h0);
  const int64_t T = d.T, B = d.B, H = d.H;
  auto gh = at::empty({B, 3 * H}, x.options());
  const Tensor whh_t = transposed(w_hh);  // (H, G*H): the right operand of h W_hh^T
  Steps steps{T, reverse};
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
}

void gru_backward_run(const Tensor& go, const Tensor& grad_h, const Tensor& gates, const Tensor& ghn,
                      const Tensor& out, const Tensor& h0, const Tensor& x, const Tensor& w_ih, const Tensor& w_hh,
                      const bool* m, bool reverse, int64_t budget, Grads& grads, int64_t k) {
  const Dims d = dims(x, h0);
  const int64_t T = d.T, B = d.B, H = d.H, GH = 3 * H;
  auto o = out.options();
  const bool has_go = go.defined();
  Chunk chunk(T, B * GH, budget, !reverse);
  auto dGbuf = at::empty({chunk.C * B, GH}, o), dIbuf = at::empty({chunk.C * B, GH}, o);
  Steps steps{T, reverse};
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "gru_backward", [&] {
    using S = scalar_t;
    Carry<S> carry(grad_h, B, H, o);
    WeightGrads<S> acc = grads.acc<S>(k, x, w_ih, out, h0, d, GH, reverse);
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
    grads.dh0[k].copy_(carry.result());
  });
}

// ------------------------------------------------------------------------------- GRU-Cho
// gates (r, z, n) as Cho et al. 2014: r, z as torch's GRU, but the reset gate acts BEFORE
// the hidden product: n = tanh(gi_n + b_in + (r * h_prev) W_hn^T + b_hn),
// h = (1 - z) * n + z * h_prev. Two products per step: h_prev W_h[rz]^T, then (r * h_prev) W_hn^T.
void gru_cho_forward_run(const Tensor& x, const Tensor& w_ih, const Tensor& h0, const Tensor& w_hh,
                         const Tensor& b_ih, const Tensor& b_hh, const bool* m, bool reverse, bool save,
                         int64_t budget, Tensor out, Tensor gates, Tensor rh) {
  const Dims d = dims(x, h0);
  const int64_t T = d.T, B = d.B, H = d.H;
  auto o = x.options();
  auto gh = at::empty({B, 2 * H}, o), gn = at::empty({B, H}, o);
  const Tensor whh_t = transposed(w_hh);  // (H, G*H): the right operand of h W_hh^T
  Steps steps{T, reverse};
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
}

// Every block's pre-activation gradient is the same for its input product, its hidden
// product and both biases (dr, dz, dn), so one buffer serves as dG and dI; the n rows of
// dW_hh read r * h_prev.
void gru_cho_backward_run(const Tensor& go, const Tensor& grad_h, const Tensor& gates, const Tensor& rh,
                          const Tensor& out, const Tensor& h0, const Tensor& x, const Tensor& w_ih, const Tensor& w_hh,
                          const bool* m, bool reverse, int64_t budget, Grads& grads, int64_t k) {
  const Dims d = dims(x, h0);
  const int64_t T = d.T, B = d.B, H = d.H, GH = 3 * H;
  auto o = out.options();
  const bool has_go = go.defined();
  Chunk chunk(T, B * GH, budget, !reverse);
  auto dGbuf = at::empty({chunk.C * B, GH}, o), drh = at::empty({B, H}, o);
  Steps steps{T, reverse};
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "gru_cho_backward", [&] {
    using S = scalar_t;
    Carry<S> carry(grad_h, B, H, o);
    WeightGrads<S> acc = grads.acc<S>(k, x, w_ih, out, h0, d, GH, reverse);
    acc.HR = 2 * H;
    const S *g0 = gates.data_ptr<S>(), *rh0 = rh.data_ptr<S>(), *go0 = has_go ? go.data_ptr<S>() : nullptr;
    const S *out0 = out.data_ptr<S>(), *h00 = h0.data_ptr<S>(), *whh = w_hh.data_ptr<S>();
    S *dG0 = dGbuf.data_ptr<S>(), *drh0 = drh.data_ptr<S>(), *dwhh_n = grads.dw_hh[k].data_ptr<S>() + 2 * H * H;
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
    grads.dh0[k].copy_(carry.result());
  });
}

// ----------------------------------------------------------------------------------- LSTM
// gates (i, f, g, o) as torch: c = f * c_prev + i * g, h = o * tanh(c). With peepholes
// (peep (3H) = p_i, p_f, p_o defined; undefined: torch's LSTM), lstm_peephole: i and f also
// see c_prev, o sees c (lstm_row_forward).
void lstm_forward_run(const Tensor& x, const Tensor& w_ih, const Tensor& h0, const Tensor& c0, const Tensor& w_hh,
                      const Tensor& b_ih, const Tensor& b_hh, const Tensor& peep, const bool* m, bool reverse,
                      bool save, int64_t budget, Tensor out, Tensor cs, Tensor tcs, Tensor gates) {
  const Dims d = dims(x, h0);
  const int64_t T = d.T, B = d.B, H = d.H;
  auto gh = at::empty({B, 4 * H}, x.options());
  const Tensor whh_t = transposed(w_hh);  // (H, G*H): the right operand of h W_hh^T
  Steps steps{T, reverse};
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstm_forward", [&] {
    using S = scalar_t;
    Projection<S> proj(x, w_ih, reverse, budget);
    const S *bi = b_ih.data_ptr<S>(), *bh = b_hh.data_ptr<S>(), *whhT = whh_t.data_ptr<S>();
    const S *h00 = h0.data_ptr<S>(), *c00 = c0.data_ptr<S>(), *p = peep.defined() ? peep.data_ptr<S>() : nullptr;
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
                         H, p);
      }
    }
  });
}

// With peepholes (peep defined), their gradients are accumulated into dpeep (3H) chunk by
// chunk, with the other weight gradients: dp_i += colsum di * c_prev, dp_f += colsum df *
// c_prev, dp_o += colsum do * c (di, df, do: the pre-activation gradients, 0 on padded steps).
void lstm_backward_run(const Tensor& go, const Tensor& grad_h, const Tensor& grad_c, const Tensor& gates,
                       const Tensor& cs, const Tensor& tcs, const Tensor& out, const Tensor& h0, const Tensor& c0,
                       const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& peep, const bool* m,
                       bool reverse, int64_t budget, Grads& grads, Tensor dc, Tensor dpeep, int64_t k) {
  const Dims d = dims(x, h0);
  const int64_t T = d.T, B = d.B, H = d.H, GH = 4 * H;
  auto o = out.options();
  const bool has_go = go.defined();
  Chunk chunk(T, B * GH, budget, !reverse);
  auto dGbuf = at::empty({chunk.C * B, GH}, o);
  if (grad_c.defined())
    dc.copy_(grad_c);
  else
    dc.zero_();
  Steps steps{T, reverse};
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "lstm_backward", [&] {
    using S = scalar_t;
    Carry<S> carry(grad_h, B, H, o);
    WeightGrads<S> acc = grads.acc<S>(k, x, w_ih, out, h0, d, GH, reverse);
    const S *g0 = gates.data_ptr<S>(), *tc0 = tcs.data_ptr<S>(), *cs0 = cs.data_ptr<S>(), *c00 = c0.data_ptr<S>();
    const S *go0 = has_go ? go.data_ptr<S>() : nullptr, *whh = w_hh.data_ptr<S>();
    const S* p = peep.defined() ? peep.data_ptr<S>() : nullptr;
    S *dc0 = dc.data_ptr<S>(), *dG0 = dGbuf.data_ptr<S>(), *dp = p ? dpeep.data_ptr<S>() : nullptr;
    const int64_t first = reverse ? T - 1 : 0;  // the step whose c_prev is c0
    auto flush = [&](int64_t lo, int64_t hi) {  // the weight gradients of times lo..hi-1
      acc.add(lo, hi, dG0, dG0);
      if (!p) return;
      for (int64_t t = lo; t < hi; ++t) {
        const S *cp0 = t == first ? c00 : cs0 + (reverse ? t + 1 : t - 1) * B * H, *ct0 = cs0 + t * B * H;
        for (int64_t b = 0; b < B; ++b) {
          const S *dg = dG0 + ((t - lo) * B + b) * GH, *cp = cp0 + b * H, *c = ct0 + b * H;
          for (int64_t j = 0; j < H; ++j) {
            dp[j] += dg[j] * cp[j];
            dp[H + j] += dg[H + j] * cp[j];
            dp[2 * H + j] += dg[3 * H + j] * c[j];
          }
        }
      }
    };
    for (int64_t s = T - 1; s >= 0; --s) {
      const int64_t t = steps.at(s);
      if (!chunk.contains(t)) {
        if (chunk.hi > chunk.lo) flush(chunk.lo, chunk.hi);
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
        lstm_row_backward(g0 + row * GH, tc0 + row * H, cp0 + b * H, dh_b, dc0 + b * H, dg, H, p);
      }
      gemm<S>(false, B, H, GH, dG, GH, whh, H, S(m ? 1 : 0), carry.next, H);
      carry.swap();
    }
    if (chunk.hi > chunk.lo) flush(chunk.lo, chunk.hi);
    grads.dh0[k].copy_(carry.result());
  });
}

// ------------------------------------------------------------------------------------ RNN
// h = phi(gi + b_ih + h_prev W_hh^T + b_hh), phi = tanh or relu.
void rnn_forward_run(const Tensor& x, const Tensor& w_ih, const Tensor& h0, const Tensor& w_hh, const Tensor& b_ih,
                     const Tensor& b_hh, const bool* m, bool reverse, bool relu, int64_t budget, Tensor out) {
  const Dims d = dims(x, h0);
  const int64_t T = d.T, B = d.B, H = d.H;
  auto gh = at::empty({B, H}, x.options());
  const Tensor whh_t = transposed(w_hh);  // (H, G*H): the right operand of h W_hh^T
  Steps steps{T, reverse};
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
}

void rnn_backward_run(const Tensor& go, const Tensor& grad_h, const Tensor& out, const Tensor& h0, const Tensor& x,
                      const Tensor& w_ih, const Tensor& w_hh, const bool* m, bool reverse, bool relu, int64_t budget,
                      Grads& grads, int64_t k) {
  const Dims d = dims(x, h0);
  const int64_t T = d.T, B = d.B, H = d.H, GH = H;
  auto o = out.options();
  const bool has_go = go.defined();
  Chunk chunk(T, B * GH, budget, !reverse);
  auto dGbuf = at::empty({chunk.C * B, GH}, o);
  Steps steps{T, reverse};
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "rnn_backward", [&] {
    using S = scalar_t;
    Carry<S> carry(grad_h, B, H, o);
    WeightGrads<S> acc = grads.acc<S>(k, x, w_ih, out, h0, d, GH, reverse);
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
    grads.dh0[k].copy_(carry.result());
  });
}
}  // namespace

// ------------------------------------------------------------------------- entry points
// Forward: out (K, T, B, H), the final state(s) (K, B, H), and what the backward reads.
// Backward: dx (K, T, B, I) (undefined unless need_dx), dh0 (and dc0), dW_ih, dW_hh, db_ih, db_hh.

// The two GRU families (gru, gru_cho) save the same tensors: the gates (r, z, n) and one
// (T, B, H) tensor of their own (gru: gh_n + b_hn; gru_cho: r * h_prev).
namespace {
using GruForwardRun = void (*)(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                               const Tensor&, const bool*, bool, bool, int64_t, Tensor, Tensor, Tensor);
using GruBackwardRun = void (*)(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                const Tensor&, const Tensor&, const Tensor&, const Tensor&, const bool*, bool, int64_t,
                                Grads&, int64_t);

std::vector<Tensor> gru_family_forward(GruForwardRun run, Tensor x, Tensor w_ih, Tensor h0, Tensor w_hh, Tensor b_ih,
                                       Tensor b_hh, c10::optional<Tensor> mask, bool reverse, bool save,
                                       int64_t budget) {
  const Single one(x);
  x = one.in(x), w_ih = one.in(w_ih), h0 = one.in(h0), w_hh = one.in(w_hh), b_ih = one.in(b_ih), b_hh = one.in(b_hh);
  mask = one.in(mask);
  const int64_t K = x.size(0), T = x.size(1), B = x.size(2), H = h0.size(2);
  auto o = x.options();
  auto out = at::empty({K, T, B, H}, o), gates = at::empty({K, save ? T : 1, B, 3 * H}, o),
       own = at::empty({K, save ? T : 1, B, H}, o);
  for (int64_t k = 0; k < K; ++k)
    run(x[k], w_ih[k], h0[k], w_hh[k], b_ih[k], b_hh[k], Pack::mask(mask, k), reverse, save, budget, out[k], gates[k],
        own[k]);
  return one.out({out, last_state(out, h0, reverse), gates, own});
}

std::vector<Tensor> gru_family_backward(GruBackwardRun run, bool shared_bias, c10::optional<Tensor> grad_out,
                                        c10::optional<Tensor> grad_h, Tensor gates, Tensor own, Tensor out, Tensor h0,
                                        Tensor x, Tensor w_ih, Tensor w_hh, c10::optional<Tensor> mask, bool reverse,
                                        bool need_dx, int64_t budget) {
  const Single one(x);
  grad_out = one.in(grad_out), grad_h = one.in(grad_h), gates = one.in(gates), own = one.in(own), out = one.in(out);
  h0 = one.in(h0), x = one.in(x), w_ih = one.in(w_ih), w_hh = one.in(w_hh), mask = one.in(mask);
  Grads grads(x, w_ih, w_hh, need_dx);
  for (int64_t k = 0; k < x.size(0); ++k)
    run(Pack::run(grad_out, k), Pack::run(grad_h, k), gates[k], own[k], out[k], h0[k], x[k], w_ih[k], w_hh[k],
        Pack::mask(mask, k), reverse, budget, grads, k);
  if (shared_bias) grads.db_ih.copy_(grads.db_hh);
  return one.out(grads.result());
}
}  // namespace

// gru: returns out, h_n, gates (r, z, n), gh_n + b_hn.
std::vector<Tensor> gru_forward(Tensor x, Tensor w_ih, Tensor h0, Tensor w_hh, Tensor b_ih, Tensor b_hh,
                                c10::optional<Tensor> mask, bool reverse, bool save, int64_t budget) {
  return gru_family_forward(gru_forward_run, x, w_ih, h0, w_hh, b_ih, b_hh, mask, reverse, save, budget);
}

std::vector<Tensor> gru_backward(c10::optional<Tensor> grad_out, c10::optional<Tensor> grad_h, Tensor gates,
                                 Tensor ghn, Tensor out, Tensor h0, Tensor x, Tensor w_ih, Tensor w_hh,
                                 c10::optional<Tensor> mask, bool reverse, bool need_dx, int64_t budget) {
  return gru_family_backward(gru_backward_run, false, grad_out, grad_h, gates, ghn, out, h0, x, w_ih, w_hh, mask,
                             reverse, need_dx, budget);
}

// gru_cho: returns out, h_n, gates (r, z, n), r * h_prev. Its n block's input and hidden
// biases get the same gradient, like every block's (the reset acts before the product).
std::vector<Tensor> gru_cho_forward(Tensor x, Tensor w_ih, Tensor h0, Tensor w_hh, Tensor b_ih, Tensor b_hh,
                                    c10::optional<Tensor> mask, bool reverse, bool save, int64_t budget) {
  return gru_family_forward(gru_cho_forward_run, x, w_ih, h0, w_hh, b_ih, b_hh, mask, reverse, save, budget);
}

std::vector<Tensor> gru_cho_backward(c10::optional<Tensor> grad_out, c10::optional<Tensor> grad_h, Tensor gates,
                                     Tensor rh, Tensor out, Tensor h0, Tensor x, Tensor w_ih, Tensor w_hh,
                                     c10::optional<Tensor> mask, bool reverse, bool need_dx, int64_t budget) {
  return gru_family_backward(gru_cho_backward_run, true, grad_out, grad_h, gates, rh, out, h0, x, w_ih, w_hh, mask,
                             reverse, need_dx, budget);
}

// The LSTM family: lstm (peep undefined) and lstm_peephole (peep (K, 3H)).
namespace {
std::vector<Tensor> lstm_family_forward(Tensor x, Tensor w_ih, Tensor h0, Tensor c0, Tensor w_hh, Tensor b_ih,
                                        Tensor b_hh, Tensor peep, c10::optional<Tensor> mask, bool reverse, bool save,
                                        int64_t budget) {
  const Single one(x);
  x = one.in(x), w_ih = one.in(w_ih), h0 = one.in(h0), c0 = one.in(c0), w_hh = one.in(w_hh), b_ih = one.in(b_ih);
  b_hh = one.in(b_hh), peep = one.in(peep), mask = one.in(mask);
  const int64_t K = x.size(0), T = x.size(1), B = x.size(2), H = h0.size(2);
  auto o = x.options();
  auto out = at::empty({K, T, B, H}, o), cs = at::empty({K, T, B, H}, o),
       tcs = at::empty({K, save ? T : 1, B, H}, o), gates = at::empty({K, save ? T : 1, B, 4 * H}, o);
  for (int64_t k = 0; k < K; ++k)
    lstm_forward_run(x[k], w_ih[k], h0[k], c0[k], w_hh[k], b_ih[k], b_hh[k], Pack::run(peep, k), Pack::mask(mask, k),
                     reverse, save, budget, out[k], cs[k], tcs[k], gates[k]);
  return one.out({out, last_state(out, h0, reverse), last_state(cs, c0, reverse), gates, cs, tcs});
}

std::vector<Tensor> lstm_family_backward(c10::optional<Tensor> grad_out, c10::optional<Tensor> grad_h,
                                         c10::optional<Tensor> grad_c, Tensor gates, Tensor cs, Tensor tcs, Tensor out,
                                         Tensor h0, Tensor c0, Tensor x, Tensor w_ih, Tensor w_hh, Tensor peep,
                                         c10::optional<Tensor> mask, bool reverse, bool need_dx, int64_t budget) {
  const Single one(x);
  grad_out = one.in(grad_out), grad_h = one.in(grad_h), grad_c = one.in(grad_c), gates = one.in(gates);
  cs = one.in(cs), tcs = one.in(tcs), out = one.in(out), h0 = one.in(h0), c0 = one.in(c0), x = one.in(x);
  w_ih = one.in(w_ih), w_hh = one.in(w_hh), peep = one.in(peep), mask = one.in(mask);
  Grads grads(x, w_ih, w_hh, need_dx);
  auto dc = at::empty_like(c0);
  auto dpeep = peep.defined() ? at::zeros_like(peep) : Tensor();
  for (int64_t k = 0; k < x.size(0); ++k)
    lstm_backward_run(Pack::run(grad_out, k), Pack::run(grad_h, k), Pack::run(grad_c, k), gates[k], cs[k], tcs[k],
                      out[k], h0[k], c0[k], x[k], w_ih[k], w_hh[k], Pack::run(peep, k), Pack::mask(mask, k), reverse,
                      budget, grads, dc[k], Pack::run(dpeep, k), k);
  grads.db_ih.copy_(grads.db_hh);
  auto r = grads.result();
  r.insert(r.begin() + 2, dc);
  if (peep.defined()) r.push_back(dpeep);
  return one.out(r);
}
}  // namespace

// lstm: returns out, h_n, c_n, gates (activated i, f, g, o), c, tanh(c).
std::vector<Tensor> lstm_forward(Tensor x, Tensor w_ih, Tensor h0, Tensor c0, Tensor w_hh, Tensor b_ih, Tensor b_hh,
                                 c10::optional<Tensor> mask, bool reverse, bool save, int64_t budget) {
  return lstm_family_forward(x, w_ih, h0, c0, w_hh, b_ih, b_hh, Tensor(), mask, reverse, save, budget);
}

// Returns dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh.
std::vector<Tensor> lstm_backward(c10::optional<Tensor> grad_out, c10::optional<Tensor> grad_h,
                                  c10::optional<Tensor> grad_c, Tensor gates, Tensor cs, Tensor tcs, Tensor out,
                                  Tensor h0, Tensor c0, Tensor x, Tensor w_ih, Tensor w_hh, c10::optional<Tensor> mask,
                                  bool reverse, bool need_dx, int64_t budget) {
  return lstm_family_backward(grad_out, grad_h, grad_c, gates, cs, tcs, out, h0, c0, x, w_ih, w_hh, Tensor(), mask,
                              reverse, need_dx, budget);
}

// lstm_peephole: the same, with the peepholes peep (3H) = (p_i, p_f, p_o) after the biases.
std::vector<Tensor> lstm_peephole_forward(Tensor x, Tensor w_ih, Tensor h0, Tensor c0, Tensor w_hh, Tensor b_ih,
                                          Tensor b_hh, Tensor peep, c10::optional<Tensor> mask, bool reverse, bool save,
                                          int64_t budget) {
  return lstm_family_forward(x, w_ih, h0, c0, w_hh, b_ih, b_hh, peep, mask, reverse, save, budget);
}

// Returns dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh, dpeep.
std::vector<Tensor> lstm_peephole_backward(c10::optional<Tensor> grad_out, c10::optional<Tensor> grad_h,
                                           c10::optional<Tensor> grad_c, Tensor gates, Tensor cs, Tensor tcs,
                                           Tensor out, Tensor h0, Tensor c0, Tensor x, Tensor w_ih, Tensor w_hh,
                                           Tensor peep, c10::optional<Tensor> mask, bool reverse, bool need_dx,
                                           int64_t budget) {
  return lstm_family_backward(grad_out, grad_h, grad_c, gates, cs, tcs, out, h0, c0, x, w_ih, w_hh, peep, mask,
                              reverse, need_dx, budget);
}

// rnn (tanh or relu): returns out, h_n.
std::vector<Tensor> rnn_forward(Tensor x, Tensor w_ih, Tensor h0, Tensor w_hh, Tensor b_ih, Tensor b_hh,
                                c10::optional<Tensor> mask, bool reverse, bool relu, int64_t budget) {
  const Single one(x);
  x = one.in(x), w_ih = one.in(w_ih), h0 = one.in(h0), w_hh = one.in(w_hh), b_ih = one.in(b_ih), b_hh = one.in(b_hh);
  mask = one.in(mask);
  const int64_t K = x.size(0), T = x.size(1), B = x.size(2), H = h0.size(2);
  auto out = at::empty({K, T, B, H}, x.options());
  for (int64_t k = 0; k < K; ++k)
    rnn_forward_run(x[k], w_ih[k], h0[k], w_hh[k], b_ih[k], b_hh[k], Pack::mask(mask, k), reverse, relu, budget, out[k]);
  return one.out({out, last_state(out, h0, reverse)});
}

std::vector<Tensor> rnn_backward(c10::optional<Tensor> grad_out, c10::optional<Tensor> grad_h, Tensor out, Tensor h0,
                                 Tensor x, Tensor w_ih, Tensor w_hh, c10::optional<Tensor> mask, bool reverse, bool relu,
                                 bool need_dx, int64_t budget) {
  const Single one(x);
  grad_out = one.in(grad_out), grad_h = one.in(grad_h), out = one.in(out), h0 = one.in(h0), x = one.in(x);
  w_ih = one.in(w_ih), w_hh = one.in(w_hh), mask = one.in(mask);
  Grads grads(x, w_ih, w_hh, need_dx);
  for (int64_t k = 0; k < x.size(0); ++k)
    rnn_backward_run(Pack::run(grad_out, k), Pack::run(grad_h, k), out[k], h0[k], x[k], w_ih[k], w_hh[k],
                     Pack::mask(mask, k), reverse, relu, budget, grads, k);
  grads.db_ih.copy_(grads.db_hh);
  return one.out(grads.result());
}
