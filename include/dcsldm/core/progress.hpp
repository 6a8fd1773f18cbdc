// dcsldm/core/progress.hpp: the rate and ETA of a training progress line.
//
// The rate is measured over the interval since the previous line, not averaged since the run started: a run
// whose step cost changes (a tokenizer's final phase moving to other scales, a machine that gets busier or
// quieter) reports what it does now, and the ETA follows at that rate. Host-side bookkeeping only.
#pragma once

#include <chrono>
#include <cstdint>

namespace dcsldm {

class ProgressRate {
 public:
  using clock = std::chrono::steady_clock;

  struct Reading {
    double steps_per_s;  ///< over the interval since the previous reading (0 when no time or no step passed)
    double eta_s;        ///< seconds left for the remaining steps at that rate (0 when the rate is 0)
  };

  /// Starts measuring at `step` (0, or the step a resumed run continues from).
  explicit ProgressRate(std::int64_t step, clock::time_point now = clock::now()) : step_(step), t_(now) {}

  /// The rate since the previous reading (or the start) and the time left to `total`; starts the next interval.
  Reading tick(std::int64_t step, std::int64_t total, clock::time_point now = clock::now()) {
    const double el = std::chrono::duration<double>(now - t_).count();
    const double sps = el > 0 && step > step_ ? double(step - step_) / el : 0.0;
    const double eta = sps > 0 && total > step ? double(total - step) / sps : 0.0;
    step_ = step;
    t_ = now;
    return {sps, eta};
  }

 private:
  std::int64_t step_;
  clock::time_point t_;
};

}  // namespace dcsldm
