// dcsldm/nn/fourier_features.hpp: fixed Fourier-feature embedding of continuous coordinates (the
// positional encoding of NeRF, Mildenhall et al. 2020, with frequencies 2^k * pi), used by the DCS-Tok
// patchifier/depatchifier for in-patch positions and cell sizes.
//
// Frequencies (not learned): f_k = 2^k * pi, k = 0 .. F-1. For coordinates x (M, P) the output row has
// P * (2F + 1) features, grouped per coordinate; coordinate p fills columns [p * (2F+1), (p+1) * (2F+1)):
//   [ x_p, sin(f_0 x_p), ..., sin(f_{F-1} x_p), cos(f_0 x_p), ..., cos(f_{F-1} x_p) ]
// Accuracy: since f_k x = pi * (2^k x) and 2^k x is exact in floating point, the argument is reduced
// exactly to pi * r with r = 2^k x mod 2 in [0, 2) before sin/cos, so high frequencies lose no
// precision in float.
#pragma once

#include <dcsldm/core/compat.hpp>
#include <dcsldm/core/error.hpp>
#include <dcsldm/core/types.hpp>

namespace dcsldm::nn {

/// Output width of fourier_features_forward for P coordinates and F frequencies: P * (2F + 1).
inline constexpr int fourier_features_width(int num_coords, int num_frequencies) {
  return num_coords * (2 * num_frequencies + 1);
}

namespace Impl {

/// r = u mod 2 in [0, 2), exact in floating point for the binary-scaled u = 2^k x.
template <class A>
KOKKOS_INLINE_FUNCTION A fourier_mod2(A u) {
  return u - A(2) * math::floor(u * A(0.5));
}

template <class XV, class YV>
struct FourierFeaturesForward {
  using T = value_t<YV>;
  using A = accum_t<T>;
  XV x;  // (M, P)
  YV y;  // (M, P * (2F + 1))
  int nf;
  KOKKOS_INLINE_FUNCTION void operator()(const int m, const int p) const {
    const A xv = A(x(m, p));
    const int o = p * (2 * nf + 1);
    y(m, o) = T(xv);
    A s = 1;  // 2^k
    for (int k = 0; k < nf; ++k, s *= A(2)) {
      const A arg = math::pi_v<A> * fourier_mod2(s * xv);
      y(m, o + 1 + k) = T(math::sin(arg));
      y(m, o + 1 + nf + k) = T(math::cos(arg));
    }
  }
};

/// dx(m, p) = dy[x] + sum_k f_k (dy[sin_k] cos(f_k x) - dy[cos_k] sin(f_k x)).
template <class DYV, class XV, class DXV>
struct FourierFeaturesBackward {
  using T = value_t<DXV>;
  using A = accum_t<T>;
  DYV dy;  // (M, P * (2F + 1))
  XV x;    // (M, P)
  DXV dx;  // (M, P)
  int nf;
  KOKKOS_INLINE_FUNCTION void operator()(const int m, const int p) const {
    const A xv = A(x(m, p));
    const int o = p * (2 * nf + 1);
    A g = A(dy(m, o));
    A s = 1;
    for (int k = 0; k < nf; ++k, s *= A(2)) {
      const A arg = math::pi_v<A> * fourier_mod2(s * xv);
      g += math::pi_v<A> * s * (A(dy(m, o + 1 + k)) * math::cos(arg) - A(dy(m, o + 1 + nf + k)) * math::sin(arg));
    }
    dx(m, p) = T(g);
  }
};

template <class XV, class YV>
void check_fourier_features(const char* op, const XV& x, const YV& y, int num_frequencies, const char* yn) {
  static_assert(XV::rank == 2 && YV::rank == 2, "fourier_features: rank-2 Views (M, P) and (M, P*(2F+1))");
  DCSLDM_REQUIRE(num_frequencies >= 0 && num_frequencies <= 64, op, "num_frequencies = ", num_frequencies,
                 ", expected 0..64");
  const int w = fourier_features_width(int(x.extent(1)), num_frequencies);
  DCSLDM_REQUIRE(y.extent(0) == x.extent(0) && y.extent(1) == std::size_t(w), op, yn, " is (", y.extent(0), ", ",
                 y.extent(1), "), expected (M, P * (2F + 1)) = (", x.extent(0), ", ", w, ") for P = ",
                 x.extent(1), ", F = ", num_frequencies);
}

}  // namespace Impl

/// Forward: y(m, p*(2F+1) + 0) = x(m, p), y(m, p*(2F+1) + 1 + k) = sin(2^k pi x(m, p)),
/// y(m, p*(2F+1) + 1 + F + k) = cos(2^k pi x(m, p)), k = 0..F-1.
/// x (M, P) coordinates, y (M, P * (2F + 1)) written (=), F = num_frequencies.
template <class ExecSpace, class XV, class YV>
void fourier_features_forward(const ExecSpace& space, const XV& x, int num_frequencies, const YV& y) {
  Impl::check_fourier_features("fourier_features_forward", x, y, num_frequencies, "y");
  if (x.extent(0) == 0 || x.extent(1) == 0) return;
  using Policy = Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<2>, Kokkos::IndexType<int>>;
  Kokkos::parallel_for("dcsldm::fourier_features_forward",
                       Policy(space, {0, 0}, {int(x.extent(0)), int(x.extent(1))}),
                       Impl::FourierFeaturesForward<XV, YV>{x, y, num_frequencies});
}

/// Backward of fourier_features_forward with respect to the coordinates, written (=):
/// dx(m, p) = dy(m, o) + sum_k 2^k pi (dy(m, o+1+k) cos(2^k pi x) - dy(m, o+1+F+k) sin(2^k pi x)),
/// o = p * (2F + 1). dy (M, P * (2F + 1)), x (M, P) as given to forward, dx (M, P).
template <class ExecSpace, class DYV, class XV, class DXV>
void fourier_features_backward(const ExecSpace& space, const DYV& dy, const XV& x, int num_frequencies,
                               const DXV& dx) {
  Impl::check_fourier_features("fourier_features_backward", x, dy, num_frequencies, "dy");
  DCSLDM_REQUIRE(dx.extent(0) == x.extent(0) && dx.extent(1) == x.extent(1), "fourier_features_backward",
                 "dx is (", dx.extent(0), ", ", dx.extent(1), "), expected (", x.extent(0), ", ", x.extent(1), ")");
  if (x.extent(0) == 0 || x.extent(1) == 0) return;
  using Policy = Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<2>, Kokkos::IndexType<int>>;
  Kokkos::parallel_for("dcsldm::fourier_features_backward",
                       Policy(space, {0, 0}, {int(x.extent(0)), int(x.extent(1))}),
                       Impl::FourierFeaturesBackward<DYV, XV, DXV>{dy, x, dx, num_frequencies});
}

}  // namespace dcsldm::nn
