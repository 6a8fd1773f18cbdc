// core/progress: the progress line's rate is the last interval's, not the run's average, and the ETA follows it.
#include <dcsldm/core/progress.hpp>

#include "testing.hpp"

#include <chrono>

using dcsldm::ProgressRate;
using std::chrono::seconds;

TEST_CASE("ProgressRate measures each interval on its own", "[core][progress]") {
  const ProgressRate::clock::time_point t0{};
  ProgressRate p(100, t0);  // a run resumed at step 100
  // 50 steps in 10 s: 5 steps/s, 850 steps left -> 170 s.
  auto r = p.tick(150, 1000, t0 + seconds(10));
  CHECK(r.steps_per_s == Approx(5.0));
  CHECK(r.eta_s == Approx(170.0));
  // The next 50 steps take 2 s: 25 steps/s (the average since the start would be 100 / 12 = 8.3).
  r = p.tick(200, 1000, t0 + seconds(12));
  CHECK(r.steps_per_s == Approx(25.0));
  CHECK(r.eta_s == Approx(32.0));
  // The last line: nothing left.
  r = p.tick(1000, 1000, t0 + seconds(44));
  CHECK(r.steps_per_s == Approx(25.0));
  CHECK(r.eta_s == 0.0);
}

TEST_CASE("ProgressRate reports 0 rather than dividing by zero", "[core][progress]") {
  const ProgressRate::clock::time_point t0{};
  ProgressRate p(0, t0);
  auto r = p.tick(10, 100, t0);  // no time passed
  CHECK(r.steps_per_s == 0.0);
  CHECK(r.eta_s == 0.0);
  r = p.tick(10, 100, t0 + seconds(3));  // no step passed
  CHECK(r.steps_per_s == 0.0);
  CHECK(r.eta_s == 0.0);
}
