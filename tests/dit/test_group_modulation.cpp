// The DiT's fused step between branches (group_residual_norm_modulate_forward) against the three kernels it
// replaces: gated residual, LayerNorm without affine, group modulation.
#include <dcsldm/dit/group_modulation.hpp>

#include "testing.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

using namespace dcsldm;
using dcsldm::test::fill_uniform;
using dcsldm::test::to_doubles;

namespace {

using Exec = Kokkos::DefaultExecutionSpace;
using Mem = Exec::memory_space;

template <class T>
struct Case {
  int B, S, D, split;
  View3<T, Mem> x, h, x1, n, y;
  View2<T, Mem> gada, ada;
  nn::LayerNormCache<T, Mem> ln;
  Case(int b, int s, int d, int sp) : B(b), S(s), D(d), split(sp) {
    x = View3<T, Mem>("x", B, S, D);
    h = View3<T, Mem>("h", B, S, D);
    x1 = View3<T, Mem>("x1", B, S, D);
    n = View3<T, Mem>("n", B, S, D);
    y = View3<T, Mem>("y", B, S, D);
    gada = View2<T, Mem>("gada", 2 * B, 6 * D);
    ada = View2<T, Mem>("ada", 2 * B, 2 * D);
    ln = {View1<accum_t<T>, Mem>("mean", B * S), View1<accum_t<T>, Mem>("rstd", B * S)};
    fill_uniform(x, 11, -3, 5);  // a row mean away from 0
    fill_uniform(h, 12);
    fill_uniform(gada, 13);
    fill_uniform(ada, 14);
  }
};

template <class T>
View2<T, Mem> rows(const View3<T, Mem>& v) {
  return View2<T, Mem>(v.data(), v.extent(0) * v.extent(1), v.extent(2));
}

// The fused pass and the three kernels on the same inputs: every output the same (`exact`: bit for bit).
template <class T>
void check_against_unfused(int B, int S, int D, int split, bool residual) {
  Exec space;
  Case<T> f(B, S, D, split), u(B, S, D, split);
  const View3<T, Mem> none;
  if (residual) {
    dit::group_residual_norm_modulate_forward(space, f.x, f.h, f.gada, 5 * D, split, f.x1, f.n, f.ln, 1e-6, f.ada, 0,
                                              D, f.y);
    dit::group_gated_residual_forward(space, u.x, u.h, u.gada, 5 * D, split, u.x1);
  } else {
    dit::group_residual_norm_modulate_forward(space, f.x, none, f.gada, 0, split, f.x, f.n, f.ln, 1e-6, f.ada, 0, D,
                                              f.y);
    Kokkos::deep_copy(u.x1, u.x);
  }
  nn::layer_norm_forward(space, rows(u.x1), nn::LayerNorm<T, Mem>{}, rows(u.n), u.ln, 1e-6);
  dit::group_modulate_forward(space, u.n, u.ada, 0, D, split, u.y);
  space.fence();
  if (residual) CHECK(to_doubles(f.x1) == to_doubles(u.x1));
  CHECK(to_doubles(f.n) == to_doubles(u.n));
  CHECK(to_doubles(f.y) == to_doubles(u.y));
  CHECK(to_doubles(f.ln.mean) == to_doubles(u.ln.mean));
  CHECK(to_doubles(f.ln.rstd) == to_doubles(u.ln.rstd));
  // And a direct double evaluation of the formulas (the test is not only the two paths agreeing).
  const auto x = to_doubles(f.x), h = to_doubles(f.h), g = to_doubles(f.gada), a = to_doubles(f.ada),
             y = to_doubles(f.y);
  double worst = 0;
  for (int b = 0; b < B; ++b)
    for (int r = 0; r < S; ++r) {
      const int c = 2 * b + (r >= split ? 1 : 0);
      std::vector<double> x1(static_cast<std::size_t>(D), 0.0);
      double mu = 0, var = 0;
      for (int d = 0; d < D; ++d) {
        const std::size_t i = (std::size_t(b) * S + r) * D + d;
        x1[std::size_t(d)] = x[i] + (residual ? g[std::size_t(c) * 6 * D + 5 * D + d] * h[i] : 0.0);
        mu += x1[std::size_t(d)];
      }
      mu /= D;
      for (int d = 0; d < D; ++d) var += (x1[std::size_t(d)] - mu) * (x1[std::size_t(d)] - mu);
      const double rs = 1 / std::sqrt(var / D + 1e-6);
      for (int d = 0; d < D; ++d) {
        const double want = (x1[std::size_t(d)] - mu) * rs * (1 + a[std::size_t(c) * 2 * D + D + d]) +
                            a[std::size_t(c) * 2 * D + d];
        const double got = y[(std::size_t(b) * S + r) * D + d];
        worst = std::max(worst, std::abs(got - want) / (1 + std::abs(want)));
      }
    }
  CHECK(worst < (sizeof(T) == 4 ? 2e-5 : 1e-12));
}

}  // namespace

TEST_CASE("dit: the fused residual / LayerNorm / modulation pass equals the three kernels", "[dit][fused]") {
  for (const bool residual : {true, false}) {
    CAPTURE(residual);
    check_against_unfused<float>(3, 7, 40, 3, residual);     // D not a multiple of the 16 lanes
    check_against_unfused<float>(2, 32, 128, 8, residual);   // the shipped model's shape
    check_against_unfused<float>(2, 5, 16, 0, residual);     // every row noisy
    check_against_unfused<float>(1, 5, 16, 5, residual);     // every row clean
    check_against_unfused<double>(2, 9, 24, 4, residual);
  }
}

TEST_CASE("dit: the fused pass names a wrong shape", "[dit][fused]") {
  Exec space;
  Case<float> f(2, 4, 8, 1);
  const View3<float, Mem> small("small", 2, 4, 4), none;
  CHECK_THROWS_WITH(dit::group_residual_norm_modulate_forward(space, f.x, f.h, f.gada, 0, 1, f.x1, small, f.ln, 1e-6,
                                                              f.ada, 0, 8, f.y),
                    Catch::Contains("group_residual_norm_modulate_forward") &&
                        Catch::Contains("n (2, 4, 4)"));
  CHECK_THROWS_WITH(dit::group_residual_norm_modulate_forward(space, f.x, none, f.gada, 0, 1, f.x1, f.n, f.ln, 1e-6,
                                                              f.ada, 0, 8, f.y),
                    Catch::Contains("without h, x1 must be x"));
  CHECK_THROWS_WITH(dit::group_residual_norm_modulate_forward(space, f.x, f.h, f.gada, 0, 1, f.x1, f.n, f.ln, 1e-6,
                                                              f.ada, 8, 16, f.y),
                    Catch::Contains("out of range for ada width 16"));
}
