// grucli's fused kernels, the parts of a stacked training step outside the recurrence (see
// grucli/stacked.py): the output layer, and the optimiser's update after clipping each run's
// gradient norm. Both take a pack: every tensor has a leading run dimension K, and each run
// is computed by the same code on its own slices, so its numbers never depend on the others.
// One call replaces what costs a Python optimiser, torch's clip and an nn.Linear per run.

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

// ------------------------------------------------------------------------------ optimiser
// One step of the optimiser for the runs listed in `runs` (indices into K), over stacked
// parameters (each (K, ...), contiguous) and their gradients, after scaling each run's
// gradients by min(1, max_norm / (norm + 1e-6)) where max_norm > 0 (torch's clip_grad_norm_
// rule, the norm over all of the run's gradients, summed in double in parameter order).
// The update is torch's algorithm for each optimiser:
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
  for (const auto& t : params) TORCH_CHECK(t.is_contiguous(), "optimizer_step: parameters must be contiguous");
  const int64_t K = params.empty() ? 0 : params[0].size(0);
  Tensor norms = at::zeros({K}, lr.options().dtype(at::kDouble));
  const double *lr0 = lr.data_ptr<double>(), *wd0 = weight_decay.data_ptr<double>(),
               *clip0 = max_norm.data_ptr<double>();
  double* norm0 = norms.data_ptr<double>();
  const double bc1 = 1.0 - std::pow(beta1, double(step)), bc2 = 1.0 - std::pow(beta2, double(step));
  for (int64_t k : runs) {
    TORCH_CHECK(k >= 0 && k < K, "optimizer_step: run index out of range");
    AT_DISPATCH_FLOATING_TYPES(params[0].scalar_type(), "optimizer_step", [&] {
      using S = scalar_t;
      double sq = 0.0;
      for (size_t j = 0; j < P; ++j) {
        const S* g = at_run<S>(grads[j], k);
        const int64_t n = params[j].numel() / K;
        for (int64_t i = 0; i < n; ++i) sq += double(g[i]) * double(g[i]);
      }
      const double norm = std::sqrt(sq);
      norm0[k] = norm;
      const double clip = clip0[k] > 0 ? std::min(1.0, clip0[k] / (norm + 1e-6)) : 1.0;
      const S coef = S(clip), lr_k = S(lr0[k]), wd = S(wd0[k]), mom = S(momentum), b1 = S(beta1), b2 = S(beta2);
      const S step_size = S(lr0[k] / bc1), sqrt_bc2 = S(std::sqrt(bc2)), e = S(eps), al = S(alpha);
      for (size_t j = 0; j < P; ++j) {
        S *p = at_run<S>(params[j], k), *g = at_run<S>(grads[j], k);
        S *s0 = per > 0 ? at_run<S>(state[j * per], k) : nullptr, *s1 = per > 1 ? at_run<S>(state[j * per + 1], k) : nullptr;
        const int64_t n = params[j].numel() / K;
        for (int64_t i = 0; i < n; ++i) {
          if (clip < 1.0) g[i] *= coef;
          S gi = wd != S(0) ? g[i] + wd * p[i] : g[i];
          if (kind == 0) {  // SGD
            if (mom != S(0)) {
              s0[i] = step == 1 ? gi : mom * s0[i] + gi;
              gi = s0[i];
            }
            p[i] -= lr_k * gi;
          } else if (kind == 1) {  // Adam
            s0[i] += (S(1) - b1) * (gi - s0[i]);
            s1[i] = b2 * s1[i] + (S(1) - b2) * gi * gi;
            p[i] -= step_size * s0[i] / (std::sqrt(s1[i]) / sqrt_bc2 + e);
          } else {  // RMSprop
            s0[i] = al * s0[i] + (S(1) - al) * gi * gi;
            const S avg = std::sqrt(s0[i]) + e;
            if (mom != S(0)) {
              s1[i] = mom * s1[i] + gi / avg;
              p[i] -= lr_k * s1[i];
            } else {
              p[i] -= lr_k * gi / avg;
            }
          }
        }
      }
    });
  }
  return norms;
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
