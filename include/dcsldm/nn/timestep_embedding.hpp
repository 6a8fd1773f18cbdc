// dcsldm/nn/timestep_embedding.hpp: sinusoidal timestep embedding of DiT / ADM (Dhariwal & Nichol 2021;
// DiT's TimestepEmbedder.timestep_embedding), the input of the timestep MLP.
//
//   half = dim / 2, freq_j = exp(-log(max_period) * j / half), j = 0..half-1
//   emb(b, :) = [cos(t_b * freq_0..half-1), sin(t_b * freq_0..half-1)] and a zero column if dim is odd.
//
// Forward only: timesteps are data, not trained, so there is no gradient with respect to t (the
// gradient of the loss flows into the MLP that follows, not through the embedding).
// The arguments t * freq are computed in double whatever T is: t is of order max_period-scale values
// (0..1000 in ADM/DiT) where float arguments would be off by ~1e-4; the kernel touches only B * dim
// elements, so the cost is negligible.
#pragma once

#include <dcsldm/core/compat.hpp>
#include <dcsldm/core/error.hpp>
#include <dcsldm/core/types.hpp>

#include <cmath>

namespace dcsldm::nn {

namespace Impl {

template <class TV, class YV>
struct TimestepEmbeddingForward {
  using T = value_t<YV>;
  TV t;  // (B)
  YV y;  // (B, dim)
  int half;
  double log_max_period;
  KOKKOS_INLINE_FUNCTION void operator()(const int b, const int j) const {
    if (j >= 2 * half) {
      y(b, j) = T(0);
      return;
    }
    const int k = j < half ? j : j - half;
    const double freq = math::exp(-log_max_period * double(k) / double(half));
    const double arg = double(t(b)) * freq;
    y(b, j) = T(j < half ? math::cos(arg) : math::sin(arg));
  }
};

}  // namespace Impl

/// Sinusoidal timestep embedding: out(b, j) = cos(t(b) * freq_j) for j < half, sin(t(b) * freq_{j-half})
/// for half <= j < 2 half, 0 for the last column of an odd dim; freq_k = exp(-log(max_period) k / half),
/// half = dim / 2. t (B) timesteps (any floating type), out (B, dim) written (=). Forward only: no
/// gradient with respect to t.
template <class ExecSpace, class TV, class YV>
void timestep_embedding_forward(const ExecSpace& space, const TV& t, const YV& out, double max_period = 10000.0) {
  static_assert(TV::rank == 1 && YV::rank == 2, "timestep_embedding: t is (B), out is (B, dim)");
  DCSLDM_REQUIRE(out.extent(0) == t.extent(0), "timestep_embedding_forward", "out.extent(0) = ", out.extent(0),
                 " != B = t.extent(0) = ", t.extent(0));
  DCSLDM_REQUIRE(max_period > 0, "timestep_embedding_forward", "max_period = ", max_period, ", expected > 0");
  if (out.extent(0) == 0 || out.extent(1) == 0) return;
  using Policy = Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<2>, Kokkos::IndexType<int>>;
  Kokkos::parallel_for("dcsldm::timestep_embedding_forward",
                       Policy(space, {0, 0}, {int(out.extent(0)), int(out.extent(1))}),
                       Impl::TimestepEmbeddingForward<TV, YV>{t, out, int(out.extent(1)) / 2,
                                                              std::log(max_period)});
}

}  // namespace dcsldm::nn
