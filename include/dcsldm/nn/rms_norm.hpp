// dcsldm/nn/rms_norm.hpp: root-mean-square normalisation over the last dimension (Zhang & Sennrich
// 2019; torch.nn.RMSNorm from PyTorch 2.4): y = x * rsqrt(mean(x^2) + eps) * weight.
//
// One team per row; the weight gradient is a column sum by one thread per channel over the rows in
// order (deterministic), the kernel shared with layer_norm.
#pragma once

#include <dcsldm/core/compat.hpp>
#include <dcsldm/core/error.hpp>
#include <dcsldm/core/types.hpp>
#include <dcsldm/nn/layer_norm.hpp>

namespace dcsldm::nn {

/// Parameters (or their gradients) of an RMSNorm over C channels. An extent-0 weight means weight = 1.
template <class T, class MemSpace>
struct RMSNorm {
  View1<T, MemSpace> weight;  ///< (C), or extent 0
  bool has_weight() const { return weight.extent(0) != 0; }
};

/// What rms_norm_forward saves for rms_norm_backward.
template <class T, class MemSpace>
struct RMSNormCache {
  View1<accum_t<T>, MemSpace> rstd;  ///< (M), 1 / sqrt(mean(x^2) + eps)
};

namespace Impl {

template <class Member, class XV, class PV, class YV, class SV>
struct RMSNormForward {
  using A = typename SV::non_const_value_type;
  using T = value_t<YV>;
  XV x;     // (M, C)
  PV w;     // (C) or empty
  YV y;     // (M, C)
  SV rstd;  // (M)
  A eps;
  int c;
  bool has_w;

  KOKKOS_INLINE_FUNCTION void operator()(const Member& team) const {
    const int i = team.league_rank();
    A s = 0;
    Kokkos::parallel_reduce(
        Kokkos::TeamThreadRange(team, c),
        [&](const int j, A& acc) {
          const A v = A(x(i, j));
          acc += v * v;
        },
        s);
    const A r = math::rsqrt((c > 0 ? s / A(c) : A(0)) + eps);
    Kokkos::parallel_for(Kokkos::TeamThreadRange(team, c), [&](const int j) {
      const A h = A(x(i, j)) * r;
      y(i, j) = T(has_w ? h * A(w(j)) : h);
    });
    Kokkos::single(Kokkos::PerTeam(team), [&]() { rstd(i) = r; });
  }
};

/// dx = rstd * (g - xhat * mean(g * xhat)), g = w * dy, xhat = x * rstd.
template <class Member, class DYV, class XV, class PV, class SV, class DXV>
struct RMSNormBackwardInput {
  using A = typename SV::non_const_value_type;
  using T = value_t<DXV>;
  DYV dy;  // (M, C)
  XV x;    // (M, C)
  PV w;    // (C) or empty
  SV rstd; // (M)
  DXV dx;  // (M, C)
  int c;
  bool has_w;

  KOKKOS_INLINE_FUNCTION A g(int i, int j) const { return has_w ? A(dy(i, j)) * A(w(j)) : A(dy(i, j)); }
  KOKKOS_INLINE_FUNCTION void operator()(const Member& team) const {
    const int i = team.league_rank();
    const A r = rstd(i);
    A sgx = 0;
    Kokkos::parallel_reduce(
        Kokkos::TeamThreadRange(team, c), [&](const int j, A& acc) { acc += g(i, j) * A(x(i, j)) * r; }, sgx);
    const A mgx = c > 0 ? sgx / A(c) : A(0);
    Kokkos::parallel_for(Kokkos::TeamThreadRange(team, c), [&](const int j) {
      dx(i, j) = T(r * (g(i, j) - A(x(i, j)) * r * mgx));
    });
  }
};

template <class XV, class T, class M, class YV>
void check_rms_norm(const char* op, const XV& x, const RMSNorm<T, M>& p, const YV& y,
                    const RMSNormCache<T, M>& cache) {
  static_assert(XV::rank == 2 && YV::rank == 2, "rms_norm: x and y are rank-2 (M, C) Views");
  const std::size_t m = x.extent(0), c = x.extent(1);
  DCSLDM_REQUIRE(y.extent(0) == m && y.extent(1) == c, op, "x is (", m, ", ", c, ") but the output is (",
                 y.extent(0), ", ", y.extent(1), ")");
  DCSLDM_REQUIRE(!p.has_weight() || p.weight.extent(0) == c, op, "weight.extent(0) = ", p.weight.extent(0),
                 " != C = x.extent(1) = ", c);
  DCSLDM_REQUIRE(cache.rstd.extent(0) == m, op, "cache.rstd.extent(0) = ", cache.rstd.extent(0),
                 " != M = x.extent(0) = ", m);
}

}  // namespace Impl

/// Forward: y(i, j) = x(i, j) * rstd_i * weight(j), rstd_i = 1 / sqrt((1/C) sum_j x(i, j)^2 + eps).
/// x (M, C), y (M, C) written (=), cache.rstd (M) written. An empty weight means weight = 1.
template <class ExecSpace, class XV, class T, class M, class YV>
void rms_norm_forward(const ExecSpace& space, const XV& x, const RMSNorm<T, M>& p, const YV& y,
                      const RMSNormCache<T, M>& cache, double eps = 1e-6) {
  Impl::check_rms_norm("rms_norm_forward", x, p, y, cache);
  const int m = int(x.extent(0));
  if (m == 0) return;
  using Policy = Kokkos::TeamPolicy<ExecSpace>;
  using SV = View1<accum_t<T>, M>;
  Impl::RMSNormForward<typename Policy::member_type, XV, View1<T, M>, YV, SV> f{
      x, p.weight, y, cache.rstd, accum_t<T>(eps), int(x.extent(1)), p.has_weight()};
  Kokkos::parallel_for("dcsldm::rms_norm_forward", Policy(space, m, Kokkos::AUTO), f);
}

/// Backward of rms_norm_forward, from dy (M, C), the forward's x (M, C), parameters and cache.
/// dx is written (=): dx = rstd * (g - xhat * mean_j(g * xhat)), g = weight * dy, xhat = x * rstd.
/// grad.weight accumulates (+=): grad.weight += sum_i dy * xhat.
template <class ExecSpace, class DYV, class XV, class T, class M, class DXV>
void rms_norm_backward(const ExecSpace& space, const DYV& dy, const XV& x, const RMSNorm<T, M>& p,
                       const RMSNorm<T, M>& grad, const RMSNormCache<T, M>& cache, const DXV& dx) {
  Impl::check_rms_norm("rms_norm_backward", x, p, dy, cache);
  DCSLDM_REQUIRE(dx.extent(0) == x.extent(0) && dx.extent(1) == x.extent(1), "rms_norm_backward", "dx is (",
                 dx.extent(0), ", ", dx.extent(1), "), expected (", x.extent(0), ", ", x.extent(1), ")");
  DCSLDM_REQUIRE(grad.weight.extent(0) == p.weight.extent(0), "rms_norm_backward", "grad.weight.extent(0) = ",
                 grad.weight.extent(0), " != weight.extent(0) = ", p.weight.extent(0));
  const int m = int(x.extent(0)), c = int(x.extent(1));
  if (m == 0) return;
  using Policy = Kokkos::TeamPolicy<ExecSpace>;
  using SV = View1<accum_t<T>, M>;
  Impl::RMSNormBackwardInput<typename Policy::member_type, DYV, XV, View1<T, M>, SV, DXV> fin{
      dy, x, p.weight, cache.rstd, dx, c, p.has_weight()};
  Kokkos::parallel_for("dcsldm::rms_norm_backward", Policy(space, m, Kokkos::AUTO), fin);
  if (p.has_weight() && c > 0)
    Impl::launch_norm_param_grad("dcsldm::rms_norm_backward_params", space, c,
                                 Impl::NormParamGrad<DYV, XV, View1<T, M>, SV>{dy, x, SV(), cache.rstd, grad.weight,
                                                                              View1<T, M>(), m, false, true, false});
}

}  // namespace dcsldm::nn
