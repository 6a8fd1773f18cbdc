// dcsldm/optim/lr_schedule.hpp: linear warm-up then cosine decay to a floor (the usual LDM/DiT recipe;
// SGDR's cosine, Loshchilov & Hutter 2017, without restarts). A host function of the step.
#pragma once

#include <dcsldm/core/compat.hpp>
#include <dcsldm/core/error.hpp>

#include <cmath>
#include <cstdint>

namespace dcsldm::optim {

/// Learning rate for step s = 0, 1, ... (the step about to be taken):
///   s < warmup:            base_lr * (s + 1) / warmup                     (reaches base_lr at s = warmup - 1)
///   warmup <= s < total:   min_lr + (base_lr - min_lr) (1 + cos(pi q)) / 2,  q = (s - warmup) / (total - warmup)
///   s >= total:            min_lr
/// With warmup = 0 the decay starts at base_lr; with total <= warmup there is no decay phase.
struct WarmupCosine {
  double base_lr = 1e-3;
  double min_lr = 0;
  std::int64_t warmup_steps = 0;
  std::int64_t total_steps = 1;

  double operator()(std::int64_t s) const {
    DCSLDM_REQUIRE(s >= 0 && warmup_steps >= 0 && total_steps >= 0, "WarmupCosine", "step = ", s,
                   ", warmup_steps = ", warmup_steps, ", total_steps = ", total_steps, " must be >= 0");
    if (s < warmup_steps) return base_lr * double(s + 1) / double(warmup_steps);
    if (s >= total_steps) return min_lr;
    const double q = double(s - warmup_steps) / double(total_steps - warmup_steps);
    return min_lr + (base_lr - min_lr) * 0.5 * (1 + std::cos(math::pi_v<double> * q));
  }
};

}  // namespace dcsldm::optim
