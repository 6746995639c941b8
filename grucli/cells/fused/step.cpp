// grucli's fused kernels, the parts of a stacked training step outside the recurrence (see
// grucli/train/stacked.py): the output layer, the losses computed with it (a classification's
// cross-entropy, a regression's squared error), and the optimiser's update after clipping each
// run's gradient norm. All take a pack: every tensor has a leading run dimension K, and each
// run is computed by the same code on its own slices, so its numbers never depend on the
// others. One call replaces what costs a Python optimiser, torch's clip and an nn.Linear per run.

#include <cmath>
#include <vector>

#include "activations.h"
#include "products.h"

namespace {

using at::Tensor;

template <typename S> S* at_run(const Tensor& t, int64_t k) { return t.data_ptr<S>() + k * t.stride(0); }

}  // namespace

// y (K, N, O) = x (K, N, F) W^T (K, O, F) + b (K, O): each element starts from its bias and
// adds x W^T in one chain.
Tensor linear_forward(Tensor x, Tensor w, Tensor b) {
  x = x.contiguous(), b = b.contiguous();
  const int64_t K = x.size(0), N = x.size(1), F = x.size(2), O = w.size(1);
  const Tensor wt = w.transpose(1, 2).contiguous();  // (K, F, O)
  Tensor y = at::empty({K, N, O}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "linear_forward", [&] {
    using S = scalar_t;
    for (int64_t k = 0; k < K; ++k) {
      S* yk = at_run<S>(y, k);
      const S* bk = at_run<S>(b, k);
      for (int64_t n = 0; n < N; ++n) std::copy(bk, bk + O, yk + n * O);
      products::gemm<S>(false, N, O, F, at_run<S>(x, k), F, at_run<S>(wt, k), O, S(1), yk, O);
    }
  });
  return y;
}

// The gradients of linear_forward: dx (K, N, F) (undefined unless need_dx), dW (K, O, F) =
// dy^T x, db (K, O) = the sum of dy over its N rows, in row order.
std::vector<Tensor> linear_backward(Tensor dy, Tensor x, Tensor w, bool need_dx) {
  dy = dy.contiguous(), x = x.contiguous(), w = w.contiguous();
  const int64_t K = x.size(0), N = x.size(1), F = x.size(2), O = w.size(1);
  Tensor dx = need_dx ? at::empty_like(x) : Tensor(), dw = at::empty_like(w), db = at::zeros({K, O}, w.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "linear_backward", [&] {
    using S = scalar_t;
    for (int64_t k = 0; k < K; ++k) {
      const S* dyk = at_run<S>(dy, k);
      products::gemm<S>(true, O, F, N, dyk, O, at_run<S>(x, k), F, S(0), at_run<S>(dw, k), F);
      S* dbk = at_run<S>(db, k);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t o = 0; o < O; ++o) dbk[o] += dyk[n * O + o];
      if (need_dx) products::gemm<S>(false, N, F, O, dyk, O, at_run<S>(w, k), F, S(0), at_run<S>(dx, k), F);
    }
  });
  return {dx, dw, db};
}

// ------------------------------------------------------------------------- cross-entropy
// Each run's mean cross-entropy over its rows, from logits (K, N, C) and targets (K, N)
// (int64; a row whose target is `ignore` does not count): loss_k = the mean over run k's
// counted rows of log(sum_c exp(z_c)) - z_target, z = the row minus its largest logit
// (torch's F.cross_entropy with ignore_index, reduction mean; no counted row: NaN, as
// torch). Also returns the rows' softmax (K, N, C), which the backward reads. Every run is
// computed by the same code on its own rows in one fixed order (exp over its N x C
// elements, each row's sum over its C classes in order, the rows' terms summed in double
// in row order), so its loss never depends on the pack or the thread count. One call
// replaces torch's pad, log_softmax and K nll_loss (and their K slices' backward).
std::vector<Tensor> cross_entropy_forward(Tensor logits, Tensor target, int64_t ignore) {
  logits = logits.contiguous(), target = target.contiguous();
  TORCH_CHECK(logits.dim() == 3 && target.dim() == 2 && target.size(0) == logits.size(0) &&
                  target.size(1) == logits.size(1) && target.scalar_type() == at::kLong,
              "cross_entropy_forward: logits (K, N, C) and int64 targets (K, N)");
  const int64_t K = logits.size(0), N = logits.size(1), C = logits.size(2);
  Tensor probs = at::empty_like(logits), loss = at::empty({K}, logits.options());
  AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "cross_entropy_forward", [&] {
    using S = scalar_t;
    for (int64_t k = 0; k < K; ++k) {
      const S* l = at_run<S>(logits, k);
      const int64_t* t = at_run<int64_t>(target, k);
      S* p = at_run<S>(probs, k);
      for (int64_t n = 0; n < N; ++n) {  // z = l - max (a NaN logit stays NaN in z, so in the loss)
        S m = l[n * C];
        for (int64_t c = 1; c < C; ++c) m = l[n * C + c] > m ? l[n * C + c] : m;
        for (int64_t c = 0; c < C; ++c) p[n * C + c] = l[n * C + c] - m;
      }
      // the row's z at its target, before exp overwrites it: counted rows only
      double total = 0.0;
      int64_t count = 0;
      std::vector<S> zt(N);
      for (int64_t n = 0; n < N; ++n) {
        if (t[n] == ignore) continue;
        TORCH_CHECK(t[n] >= 0 && t[n] < C, "cross_entropy: target ", t[n], " is out of bounds (", C, " classes)");
        zt[n] = p[n * C + t[n]];
      }
      activations::exp_(p, N * C);
      for (int64_t n = 0; n < N; ++n) {
        S sum = 0;
        for (int64_t c = 0; c < C; ++c) sum += p[n * C + c];
        const S inv = S(1) / sum;
        for (int64_t c = 0; c < C; ++c) p[n * C + c] *= inv;
        if (t[n] == ignore) continue;
        total += std::log(double(sum)) - double(zt[n]);
        ++count;
      }
      at_run<S>(loss, k)[0] = count ? S(total / double(count)) : S(NAN);
    }
  });
  return {loss, probs};
}

// The gradient of cross_entropy_forward's losses with respect to the logits, given each
// run's upstream gradient grad (K,): grad_k / count_k * (softmax - one_hot(target)) on run
// k's counted rows, 0 on the others.
Tensor cross_entropy_backward(Tensor grad, Tensor probs, Tensor target, int64_t ignore) {
  grad = grad.contiguous(), target = target.contiguous();
  const int64_t K = probs.size(0), N = probs.size(1), C = probs.size(2);
  Tensor dlogits = at::empty_like(probs);
  AT_DISPATCH_FLOATING_TYPES(probs.scalar_type(), "cross_entropy_backward", [&] {
    using S = scalar_t;
    for (int64_t k = 0; k < K; ++k) {
      const S* p = at_run<S>(probs, k);
      const int64_t* t = at_run<int64_t>(target, k);
      S* d = at_run<S>(dlogits, k);
      int64_t count = 0;
      for (int64_t n = 0; n < N; ++n) count += t[n] != ignore;
      const S scale = S(double(grad.data_ptr<S>()[k]) / double(std::max<int64_t>(count, 1)));
      for (int64_t n = 0; n < N; ++n) {
        if (t[n] == ignore) {
          std::fill(d + n * C, d + (n + 1) * C, S(0));
          continue;
        }
        for (int64_t c = 0; c < C; ++c) d[n * C + c] = scale * p[n * C + c];
        d[n * C + t[n]] = scale * (p[n * C + t[n]] - S(1));
      }
    }
  });
  return dlogits;
}

namespace {
// total += the sum of v[0..n) (of their squares if SQUARE), in double, in 8 interleaved
// partial sums (so the loop vectorises) added in a fixed order: the same bits for every
// run, pack and thread count.
template <bool SQUARE, typename S> void add_sum(double& total, const S* v, int64_t n) {
  double part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) part[j] += SQUARE ? double(v[i + j]) * double(v[i + j]) : double(v[i + j]);
  for (; i < n; ++i) part[0] += SQUARE ? double(v[i]) * double(v[i]) : double(v[i]);
  for (int j = 0; j < 8; ++j) total += part[j];
}

// Run k's gradient norm over all its gradients, tensor by tensor.
template <typename S> double grad_norm(const std::vector<Tensor>& grads, int64_t k, int64_t K) {
  double total = 0.0;
  for (const auto& t : grads) add_sum<true>(total, at_run<S>(t, k), t.numel() / K);
  return std::sqrt(total);
}

struct Hyper {  // one run's step, in the parameters' type
  double lr, step_size, sqrt_bc2, wd, coef, momentum, beta1, beta2, alpha, eps;
  bool clipped, first;
};

// One tensor of one run: clip its gradient, then the optimiser's update (KIND 0 SGD, 1 Adam,
// 2 RMSprop; MOM: with momentum; DECAY: weight decay; FIRST: SGD's first step). Every
// choice is a template parameter, so the loop has no branch and vectorises.
template <typename S, int KIND, bool MOM, bool DECAY, bool FIRST>
void update_loop(S* __restrict__ p, S* __restrict__ g, S* __restrict__ s0, S* __restrict__ s1, int64_t n,
                 const Hyper& h) {
  const S wd = S(h.wd), lr = S(h.lr), mom = S(h.momentum), b1 = S(h.beta1), b2 = S(h.beta2);
  const S step_size = S(h.step_size), sqrt_bc2 = S(h.sqrt_bc2), eps = S(h.eps), al = S(h.alpha);
  for (int64_t i = 0; i < n; ++i) {
    const S gi = DECAY ? g[i] + wd * p[i] : g[i];
    if constexpr (KIND == 0) {  // SGD
      if constexpr (MOM) {
        s0[i] = FIRST ? gi : mom * s0[i] + gi;
        p[i] -= lr * s0[i];
      } else {
        p[i] -= lr * gi;
      }
    } else if constexpr (KIND == 1) {  // Adam
      s0[i] += (S(1) - b1) * (gi - s0[i]);
      s1[i] = b2 * s1[i] + (S(1) - b2) * gi * gi;
      p[i] -= step_size * s0[i] / (std::sqrt(s1[i]) / sqrt_bc2 + eps);
    } else {  // RMSprop
      s0[i] = al * s0[i] + (S(1) - al) * gi * gi;
      const S avg = std::sqrt(s0[i]) + eps;
      if constexpr (MOM) {
        s1[i] = mom * s1[i] + gi / avg;
        p[i] -= lr * s1[i];
      } else {
        p[i] -= lr * gi / avg;
      }
    }
  }
}

template <typename S, int KIND, bool MOM>
void update(S* p, S* g, S* s0, S* s1, int64_t n, const Hyper& h) {
  if (h.clipped) {
    const S coef = S(h.coef);
    for (int64_t i = 0; i < n; ++i) g[i] *= coef;
  }
  const bool decay = h.wd != 0;
  if (decay && h.first)
    update_loop<S, KIND, MOM, true, true>(p, g, s0, s1, n, h);
  else if (decay)
    update_loop<S, KIND, MOM, true, false>(p, g, s0, s1, n, h);
  else if (h.first)
    update_loop<S, KIND, MOM, false, true>(p, g, s0, s1, n, h);
  else
    update_loop<S, KIND, MOM, false, false>(p, g, s0, s1, n, h);
}

template <typename S>
using Update = void (*)(S*, S*, S*, S*, int64_t, const Hyper&);
template <typename S> Update<S> update_for(int64_t kind, bool momentum) {
  switch (kind) {
    case 0: return momentum ? update<S, 0, true> : update<S, 0, false>;
    case 1: return update<S, 1, false>;
    default: return momentum ? update<S, 2, true> : update<S, 2, false>;
  }
}
}  // namespace

// ------------------------------------------------------------------------------ optimiser
// One step of the optimiser for the runs listed in `runs` (indices into K), over stacked
// parameters (each (K, ...), contiguous) and their gradients, after scaling each run's
// gradients by min(1, max_norm / (norm + 1e-6)) where max_norm > 0 (torch's clip_grad_norm_
// rule, the norm over all of the run's gradients, summed in double).
// The update is torch's algorithm for each optimiser (g: the gradient after clipping):
//   kind 0, SGD:     g += wd p; buf = g (first step) or momentum buf + g; p -= lr buf (or lr g)
//   kind 1, Adam:    g += wd p; m += (1 - b1)(g - m); v = b2 v + (1 - b2) g^2;
//                    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
//   kind 2, RMSprop: g += wd p; v = alpha v + (1 - alpha) g^2; a = sqrt(v) + eps;
//                    buf = momentum buf + g / a, p -= lr buf (or p -= lr g / a)
// `state` holds, per parameter in order, the optimiser's tensors for it (SGD with momentum:
// buf; Adam: m, v; RMSprop: v, and buf with momentum), shaped like the parameter.
// lr, weight_decay, max_norm: (K,) float64. step: this step's number (1 for the first).
// Returns each run's gradient norm before clipping, (K,) float64 (0 for runs not stepped).
Tensor optimizer_step(std::vector<Tensor> params, std::vector<Tensor> grads, std::vector<Tensor> state, int64_t kind,
                      int64_t step, Tensor lr, Tensor weight_decay, Tensor max_norm, std::vector<int64_t> runs,
                      double momentum, double beta1, double beta2, double alpha, double eps) {
  TORCH_CHECK(kind >= 0 && kind <= 2, "optimizer_step: kind is 0 (sgd), 1 (adam) or 2 (rmsprop)");
  const size_t P = params.size();
  const size_t per = kind == 0 ? (momentum != 0 ? 1 : 0) : kind == 1 ? 2 : (momentum != 0 ? 2 : 1);
  TORCH_CHECK(grads.size() == P && state.size() == P * per, "optimizer_step: params, grads and state do not match");
  for (size_t j = 0; j < P; ++j)
    TORCH_CHECK(params[j].is_contiguous() && grads[j].is_contiguous(), "optimizer_step: tensors must be contiguous");
  const int64_t K = params.empty() ? 0 : params[0].size(0);
  Tensor norms = at::zeros({K}, lr.options().dtype(at::kDouble));
  const double *lr0 = lr.data_ptr<double>(), *wd0 = weight_decay.data_ptr<double>(),
               *clip0 = max_norm.data_ptr<double>();
  double* norm0 = norms.data_ptr<double>();
  const double bc1 = 1.0 - std::pow(beta1, double(step)), bc2 = 1.0 - std::pow(beta2, double(step));
  AT_DISPATCH_FLOATING_TYPES(P ? params[0].scalar_type() : at::kFloat, "optimizer_step", [&] {
    using S = scalar_t;
    const Update<S> apply = update_for<S>(kind, momentum != 0);
    for (int64_t k : runs) {
      TORCH_CHECK(k >= 0 && k < K, "optimizer_step: run index out of range");
      const double norm = grad_norm<S>(grads, k, K);
      norm0[k] = norm;
      const double coef = clip0[k] > 0 ? std::min(1.0, clip0[k] / (norm + 1e-6)) : 1.0;
      const Hyper h{lr0[k], lr0[k] / bc1, std::sqrt(bc2), wd0[k], coef, momentum, beta1, beta2, alpha, eps,
                    coef < 1.0, step == 1};
      for (size_t j = 0; j < P; ++j)
        apply(at_run<S>(params[j], k), at_run<S>(grads[j], k), per > 0 ? at_run<S>(state[j * per], k) : nullptr,
              per > 1 ? at_run<S>(state[j * per + 1], k) : nullptr, params[j].numel() / K, h);
    }
  });
  return norms;
}

// Each run's mean of its terms: x (K, N) -> (K,), summed by add_sum (the same for every run
// and pack, whatever the thread count: torch's own reductions split large sums by threads).
Tensor mean_per_run(Tensor x) {
  x = x.contiguous();
  const int64_t K = x.size(0), N = x.numel() / std::max<int64_t>(K, 1);
  Tensor out = at::empty({K}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "mean_per_run", [&] {
    using S = scalar_t;
    for (int64_t k = 0; k < K; ++k) {
      double total = 0.0;
      add_sum<false>(total, x.data_ptr<S>() + k * N, N);
      out.data_ptr<S>()[k] = S(total / double(N));
    }
  });
  return out;
}

// Each run's mean squared error: out and y (K, ...) of one type and size -> {loss (K,),
// diff = out - y}, loss_k = the mean of diff^2 over run k's elements: op for op what
// (out - y) ** 2 and mean_per_run compute (the same bits), in one call.
std::vector<Tensor> squared_error_forward(Tensor out, Tensor y) {
  out = out.contiguous(), y = y.contiguous();
  TORCH_CHECK(out.numel() == y.numel() && out.scalar_type() == y.scalar_type() && out.dim() > 0,
              "squared_error_forward: out and y of one type and size, (K, ...)");
  const int64_t K = out.size(0), N = out.numel() / std::max<int64_t>(K, 1);
  Tensor diff = at::empty({K, N}, out.options()), loss = at::empty({K}, out.options());
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "squared_error_forward", [&] {
    using S = scalar_t;
    std::vector<S> terms(N);
    for (int64_t k = 0; k < K; ++k) {
      const S *o = out.data_ptr<S>() + k * N, *t = y.data_ptr<S>() + k * N;
      S* d = diff.data_ptr<S>() + k * N;
      for (int64_t i = 0; i < N; ++i) {
        d[i] = o[i] - t[i];
        terms[i] = d[i] * d[i];
      }
      double total = 0.0;
      add_sum<false>(total, terms.data(), N);
      loss.data_ptr<S>()[k] = S(total / double(N));
    }
  });
  return {loss, diff};
}

// The gradient of squared_error_forward's losses with respect to out, given each run's
// upstream gradient already divided by its element count, g (K,): g_k * (2 diff), as
// torch's backward of mean_per_run and ** 2 computes it (the same bits).
Tensor squared_error_backward(Tensor g, Tensor diff) {
  g = g.contiguous();
  const int64_t K = diff.size(0), N = diff.size(1);
  Tensor dout = at::empty_like(diff);
  AT_DISPATCH_FLOATING_TYPES(diff.scalar_type(), "squared_error_backward", [&] {
    using S = scalar_t;
    for (int64_t k = 0; k < K; ++k) {
      const S gk = g.data_ptr<S>()[k], *d = diff.data_ptr<S>() + k * N;
      S* o = dout.data_ptr<S>() + k * N;
      for (int64_t i = 0; i < N; ++i) o[i] = gk * (S(2) * d[i]);
    }
  });
  return dout;
}

// Tests: the gate nonlinearity the kernels use (0 sigmoid, 1 tanh) over a copy of x.
Tensor activation(Tensor x, int64_t which) {
  Tensor y = x.contiguous().clone();
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "activation", [&] {
    if (which == 0)
      activations::sigmoid_(y.data_ptr<scalar_t>(), y.numel());
    else
      activations::tanh_(y.data_ptr<scalar_t>(), y.numel());
  });
  return y;
}
