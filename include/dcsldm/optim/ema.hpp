// dcsldm/optim/ema.hpp: exponential moving average of parameters (Polyak averaging as used by DiT/LDM
// training: ema = decay * ema + (1 - decay) * p), with the optional warm-up of the decay of
// tf.train.ExponentialMovingAverage (decay_t = min(decay, (1 + t) / (10 + t))).
#pragma once

#include <dcsldm/core/compat.hpp>
#include <dcsldm/core/error.hpp>
#include <dcsldm/core/types.hpp>
#include <dcsldm/optim/param_arena.hpp>

#include <algorithm>
#include <cstdint>

namespace dcsldm::optim {

/// Decay for update number t = 0, 1, ...: `decay`, or min(decay, (1 + t) / (10 + t)) with warm-up
/// (0.1 at t = 0, 0.5 at t = 8, 0.9 at t = 80, ...). Host.
inline double ema_decay(double decay, std::int64_t t, bool warmup) {
  DCSLDM_REQUIRE(decay >= 0 && decay <= 1 && t >= 0, "ema_decay", "decay = ", decay, ", t = ", t);
  return warmup ? std::min(decay, double(1 + t) / double(10 + t)) : decay;
}

namespace Impl {
template <class T>
struct EmaKernel {
  T* ema;
  const T* p;
  accum_t<T> d, one_minus_d;
  KOKKOS_INLINE_FUNCTION void operator()(const std::size_t i) const {
    ema[i] = T(d * accum_t<T>(ema[i]) + one_minus_d * accum_t<T>(p[i]));
  }
};
}  // namespace Impl

/// ema = decay * ema + (1 - decay) * p, elementwise over flat buffers of equal extent (one kernel);
/// ema is updated in place (=). Use ema_decay() for the warm-up.
template <class ExecSpace, class T, class M>
void ema_update(const ExecSpace& space, const View1<T, M>& ema, const View1<T, M>& p, double decay) {
  DCSLDM_REQUIRE(ema.extent(0) == p.extent(0), "ema_update", "ema.extent(0) = ", ema.extent(0),
                 " != params.extent(0) = ", p.extent(0));
  DCSLDM_REQUIRE(decay >= 0 && decay <= 1, "ema_update", "decay = ", decay, " is not in [0, 1]");
  if (p.extent(0) == 0) return;
  Kokkos::parallel_for("dcsldm::ema_update",
                       Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<std::size_t>>(space, 0, p.extent(0)),
                       Impl::EmaKernel<T>{ema.data(), p.data(), accum_t<T>(decay), accum_t<T>(1 - decay)});
}

/// Arena form: ema.params = decay * ema.params + (1 - decay) * model.params. The EMA arena is usually
/// built from the same layout with ArenaState::Params (no gradients or moments).
template <class ExecSpace, class T, class M>
void ema_update(const ExecSpace& space, const ParamArena<T, M>& ema, const ParamArena<T, M>& model, double decay) {
  ema_update(space, ema.params, model.params, decay);
}

}  // namespace dcsldm::optim
