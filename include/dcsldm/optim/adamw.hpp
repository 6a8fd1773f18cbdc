// dcsldm/optim/adamw.hpp: AdamW with decoupled weight decay over the flat parameter arena, matching
// torch.optim.AdamW (amsgrad=False, maximize=False; Loshchilov & Hutter, "Decoupled Weight Decay
// Regularization", ICLR 2019).
#pragma once

#include <dcsldm/core/compat.hpp>
#include <dcsldm/core/error.hpp>
#include <dcsldm/core/types.hpp>
#include <dcsldm/optim/param_arena.hpp>

#include <cmath>
#include <cstdint>

namespace dcsldm::optim {

/// AdamW hyper-parameters and the step counter (host side: the number of steps taken so far).
struct AdamW {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;  ///< applied to the arena's decayed range [0, n_decay) only
  std::int64_t step = 0;
};

namespace Impl {
template <class T>
struct AdamWKernel {
  using A = accum_t<T>;
  T* p;
  const T* g;
  T* m;
  T* v;
  std::size_t n_decay;
  A decay_factor;  // 1 - lr * weight_decay
  A beta1, one_minus_beta1, beta2, one_minus_beta2;
  A step_size;      // lr / (1 - beta1^t)
  A bc2_sqrt;       // sqrt(1 - beta2^t)
  A eps;
  KOKKOS_INLINE_FUNCTION void operator()(const std::size_t i) const {
    A pi = p[i];
    if (i < n_decay) pi *= decay_factor;
    const A gi = g[i];
    const A mi = beta1 * A(m[i]) + one_minus_beta1 * gi;
    const A vi = beta2 * A(v[i]) + one_minus_beta2 * gi * gi;
    const A denom = math::sqrt(vi) / bc2_sqrt + eps;
    p[i] = T(pi - step_size * (mi / denom));
    m[i] = T(mi);
    v[i] = T(vi);
  }
};
}  // namespace Impl

/// One AdamW step over the whole arena (one kernel), then opt.step += 1. With t = opt.step + 1,
///   p <- p (1 - lr wd)            for elements in [0, n_decay) (decayed tensors), p otherwise
///   m <- beta1 m + (1 - beta1) g
///   v <- beta2 v + (1 - beta2) g^2
///   p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
/// exactly as torch.optim.AdamW. params, m, v are updated in place (=); grads are read, not cleared.
/// Bias corrections are computed on the host in double; the kernel works in accum_t<T>.
template <class ExecSpace, class T, class M>
void adamw_step(const ExecSpace& space, const ParamArena<T, M>& a, AdamW& opt, double lr) {
  DCSLDM_REQUIRE(a.has_optimizer_state(), "adamw_step", "the arena has no grads/m/v buffers (size ",
                 a.grads.extent(0), ", layout ", a.layout.total(), ")");
  DCSLDM_REQUIRE(lr >= 0 && opt.eps > 0 && opt.beta1 >= 0 && opt.beta1 < 1 && opt.beta2 >= 0 && opt.beta2 < 1 &&
                     opt.weight_decay >= 0,
                 "adamw_step", "bad hyper-parameters: lr = ", lr, ", beta1 = ", opt.beta1, ", beta2 = ", opt.beta2,
                 ", eps = ", opt.eps, ", weight_decay = ", opt.weight_decay);
  const std::int64_t t = opt.step + 1;
  const double bc1 = 1 - std::pow(opt.beta1, double(t));
  const double bc2 = 1 - std::pow(opt.beta2, double(t));
  using A = accum_t<T>;
  const Impl::AdamWKernel<T> k{a.params.data(), a.grads.data(), a.m.data(), a.v.data(), a.layout.n_decay(),
                               A(1 - lr * opt.weight_decay), A(opt.beta1), A(1 - opt.beta1), A(opt.beta2),
                               A(1 - opt.beta2), A(lr / bc1), A(std::sqrt(bc2)), A(opt.eps)};
  opt.step = t;
  if (a.layout.total() == 0) return;
  Kokkos::parallel_for("dcsldm::adamw_step",
                       Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<std::size_t>>(space, 0, a.layout.total()), k);
}

}  // namespace dcsldm::optim
