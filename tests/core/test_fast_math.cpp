// fast_exp / fast_tanh (core/fast_math.hpp) against libm in double, over dense sweeps.
#include <dcsldm/core/fast_math.hpp>

#include "testing.hpp"

#include <algorithm>
#include <cmath>

TEST_CASE("fast_exp is within a few ulp of exp over its whole range", "[core][fast_math]") {
  double worst = 0;
  for (double x = -87.0; x <= 88.2; x += 1.0 / 4096) {
    const float xf = float(x);
    const double ref = std::exp(double(xf));
    const double got = double(dcsldm::math::fast_exp(xf));
    worst = std::max(worst, std::abs(got - ref) / ref);
  }
  INFO("max relative error " << worst);
  REQUIRE(worst < 4 * 5.96e-8);  // 4 ulp of float
  REQUIRE(dcsldm::math::fast_exp(-200.f) >= 0.f);
  REQUIRE(std::isfinite(dcsldm::math::fast_exp(200.f)));
}

#if defined(__AVX512F__)
TEST_CASE("fast_exp_avx512 is within a few ulp of exp over its whole range, every lane", "[core][fast_math]") {
  double worst = 0;
  alignas(64) float in[16], out[16];
  for (double x0 = -87.0; x0 <= 88.2; x0 += 16.0 / 4096) {
    for (int l = 0; l < 16; ++l) in[l] = float(std::min(x0 + l / 4096.0, 88.2));
    _mm512_store_ps(out, dcsldm::math::fast_exp_avx512(_mm512_load_ps(in)));
    for (int l = 0; l < 16; ++l) {
      const double ref = std::exp(double(in[l]));
      worst = std::max(worst, std::abs(double(out[l]) - ref) / ref);
    }
  }
  INFO("max relative error " << worst);
  REQUIRE(worst < 4 * 5.96e-8);  // 4 ulp of float
  for (int l = 0; l < 16; ++l) in[l] = l % 2 ? -200.f : 200.f;  // clamped, never 0 or inf
  _mm512_store_ps(out, dcsldm::math::fast_exp_avx512(_mm512_load_ps(in)));
  for (int l = 0; l < 16; ++l) REQUIRE((std::isfinite(out[l]) && out[l] > 0.f));
}

TEST_CASE("fast_tanh_avx512 keeps fast_tanh's precision on every lane, both signs", "[core][fast_math]") {
  double worst_rel = 0, worst_abs = 0;
  alignas(64) float in[16], out[16];
  for (double u0 = -12.0; u0 <= 12.0; u0 += 16.0 / 8192) {
    for (int l = 0; l < 16; ++l) in[l] = float(u0 + l / 8192.0);
    _mm512_store_ps(out, dcsldm::math::fast_tanh_avx512(_mm512_load_ps(in)));
    for (int l = 0; l < 16; ++l) {
      const double ref = std::tanh(double(in[l]));
      worst_abs = std::max(worst_abs, std::abs(double(out[l]) - ref));
      if (std::abs(ref) > 1e-30) worst_rel = std::max(worst_rel, std::abs(double(out[l]) - ref) / std::abs(ref));
    }
  }
  INFO("max abs error " << worst_abs << ", max rel error " << worst_rel);
  REQUIRE(worst_abs < 2.5e-7);
  REQUIRE(worst_rel < 5e-7);
  for (int l = 0; l < 16; ++l) in[l] = l % 2 ? -30.f : 1e-20f;
  _mm512_store_ps(out, dcsldm::math::fast_tanh_avx512(_mm512_load_ps(in)));
  for (int l = 0; l < 16; ++l) REQUIRE(out[l] == (l % 2 ? -1.f : 1e-20f));
}
#endif

TEST_CASE("fast_tanh keeps relative precision near 0 and absolute precision elsewhere", "[core][fast_math]") {
  double worst_rel = 0, worst_abs = 0;
  for (double u = -12.0; u <= 12.0; u += 1.0 / 8192) {
    const float uf = float(u);
    const double ref = std::tanh(double(uf));
    const double got = double(dcsldm::math::fast_tanh(uf));
    worst_abs = std::max(worst_abs, std::abs(got - ref));
    if (std::abs(ref) > 1e-30) worst_rel = std::max(worst_rel, std::abs(got - ref) / std::abs(ref));
  }
  INFO("max abs error " << worst_abs << ", max rel error " << worst_rel);
  REQUIRE(worst_abs < 2.5e-7);
  REQUIRE(worst_rel < 5e-7);
  REQUIRE(dcsldm::math::fast_tanh(1e-20f) == 1e-20f);
  REQUIRE(dcsldm::math::fast_tanh(-30.f) == -1.f);
}
