// dcsldm/nn/layer_norm.hpp: layer normalisation over the last dimension (torch.nn.LayerNorm,
// Ba, Kiros & Hinton 2016), with or without the elementwise affine transform.
//
// One team per row on devices (host spaces: one work item per row with plain loops, sums in 8 partial lanes
// so they vectorise): the mean and the (biased) variance are two reductions in accum_t<T>, the two-pass
// form that stays exact for rows with a large mean. The parameter gradients are column sums over the rows
// in order (one thread per channel on devices, blocks of 16 channels on host spaces), so they are
// deterministic.
#pragma once

#include <dcsldm/core/compat.hpp>
#include <dcsldm/core/elementwise.hpp>
#include <dcsldm/core/error.hpp>
#include <dcsldm/core/types.hpp>

namespace dcsldm::nn {

/// Parameters (or their gradients) of a LayerNorm over C channels, in PyTorch's layout.
/// An extent-0 weight means "no scale" (weight = 1), an extent-0 bias "no shift" (bias = 0), so
/// elementwise_affine=False is a LayerNorm with both empty.
template <class T, class MemSpace>
struct LayerNorm {
  View1<T, MemSpace> weight;  ///< (C), or extent 0
  View1<T, MemSpace> bias;    ///< (C), or extent 0
  bool has_weight() const { return weight.extent(0) != 0; }
  bool has_bias() const { return bias.extent(0) != 0; }
};

/// What layer_norm_forward saves for layer_norm_backward: per-row statistics.
template <class T, class MemSpace>
struct LayerNormCache {
  View1<accum_t<T>, MemSpace> mean;  ///< (M)
  View1<accum_t<T>, MemSpace> rstd;  ///< (M), 1 / sqrt(var + eps), biased variance
};

namespace Impl {

/// sum_j f(j) for j < n in 8 interleaved partial sums (lane j % 8), combined pairwise: a fixed order that
/// the compiler can vectorise (host row kernels).
template <class A, class F>
KOKKOS_INLINE_FUNCTION A lane_sum(int n, const F& f) {
  A p[8];
  for (int k = 0; k < 8; ++k) p[k] = 0;
  int j = 0;
  for (; j + 8 <= n; j += 8)
    for (int k = 0; k < 8; ++k) p[k] += f(j + k);
  for (int k = 0; j + k < n; ++k) p[k] += f(j + k);
  return ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
}

template <class Member, class XV, class PV, class YV, class SV>
struct LayerNormForward {
  using A = typename SV::non_const_value_type;
  using T = value_t<YV>;
  XV x;    // (M, C)
  PV w;    // (C) or empty
  PV b;    // (C) or empty
  YV y;    // (M, C)
  SV mean; // (M)
  SV rstd; // (M)
  A eps;
  int c;
  bool has_w, has_b;

  KOKKOS_INLINE_FUNCTION void operator()(const Member& team) const {
    const int i = team.league_rank();
    const A inv_c = c > 0 ? A(1) / A(c) : A(0);
    A s = 0;
    Kokkos::parallel_reduce(
        Kokkos::TeamThreadRange(team, c), [&](const int j, A& acc) { acc += A(x(i, j)); }, s);
    const A mu = s * inv_c;
    A v = 0;
    Kokkos::parallel_reduce(
        Kokkos::TeamThreadRange(team, c),
        [&](const int j, A& acc) {
          const A d = A(x(i, j)) - mu;
          acc += d * d;
        },
        v);
    const A r = math::rsqrt(v * inv_c + eps);
    Kokkos::parallel_for(Kokkos::TeamThreadRange(team, c), [&](const int j) {
      A h = (A(x(i, j)) - mu) * r;
      if (has_w) h *= A(w(j));
      if (has_b) h += A(b(j));
      y(i, j) = T(h);
    });
    Kokkos::single(Kokkos::PerTeam(team), [&]() {
      mean(i) = mu;
      rstd(i) = r;
    });
  }

  /// Host form: one row per work item.
  KOKKOS_INLINE_FUNCTION void operator()(const int i) const {
    const A inv_c = c > 0 ? A(1) / A(c) : A(0);
    const A mu = lane_sum<A>(c, [&](int j) { return A(x(i, j)); }) * inv_c;
    const A v = lane_sum<A>(c, [&](int j) {
      const A d = A(x(i, j)) - mu;
      return d * d;
    });
    const A r = math::rsqrt(v * inv_c + eps);
    if (has_w && has_b) {
      for (int j = 0; j < c; ++j) y(i, j) = T((A(x(i, j)) - mu) * r * A(w(j)) + A(b(j)));
    } else if (has_w) {
      for (int j = 0; j < c; ++j) y(i, j) = T((A(x(i, j)) - mu) * r * A(w(j)));
    } else if (has_b) {
      for (int j = 0; j < c; ++j) y(i, j) = T((A(x(i, j)) - mu) * r + A(b(j)));
    } else {
      for (int j = 0; j < c; ++j) y(i, j) = T((A(x(i, j)) - mu) * r);
    }
    mean(i) = mu;
    rstd(i) = r;
  }
};

/// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = w * dy, xhat = (x - mean) * rstd.
template <class Member, class DYV, class XV, class PV, class SV, class DXV>
struct LayerNormBackwardInput {
  using A = typename SV::non_const_value_type;
  using T = value_t<DXV>;
  DYV dy;  // (M, C)
  XV x;    // (M, C)
  PV w;    // (C) or empty
  SV mean, rstd;
  DXV dx;  // (M, C)
  int c;
  bool has_w;

  KOKKOS_INLINE_FUNCTION A g(int i, int j) const { return has_w ? A(dy(i, j)) * A(w(j)) : A(dy(i, j)); }
  KOKKOS_INLINE_FUNCTION void operator()(const Member& team) const {
    const int i = team.league_rank();
    const A mu = mean(i), r = rstd(i);
    const A inv_c = c > 0 ? A(1) / A(c) : A(0);
    A sg = 0, sgx = 0;
    Kokkos::parallel_reduce(
        Kokkos::TeamThreadRange(team, c), [&](const int j, A& acc) { acc += g(i, j); }, sg);
    Kokkos::parallel_reduce(
        Kokkos::TeamThreadRange(team, c),
        [&](const int j, A& acc) { acc += g(i, j) * (A(x(i, j)) - mu) * r; }, sgx);
    const A mg = sg * inv_c, mgx = sgx * inv_c;
    Kokkos::parallel_for(Kokkos::TeamThreadRange(team, c), [&](const int j) {
      const A xhat = (A(x(i, j)) - mu) * r;
      dx(i, j) = T(r * (g(i, j) - mg - xhat * mgx));
    });
  }

  /// Host form: one row per work item.
  KOKKOS_INLINE_FUNCTION void operator()(const int i) const {
    const A mu = mean(i), r = rstd(i);
    const A inv_c = c > 0 ? A(1) / A(c) : A(0);
    const A mg = lane_sum<A>(c, [&](int j) { return g(i, j); }) * inv_c;
    const A mgx = lane_sum<A>(c, [&](int j) { return g(i, j) * (A(x(i, j)) - mu) * r; }) * inv_c;
    for (int j = 0; j < c; ++j) {
      const A xhat = (A(x(i, j)) - mu) * r;
      dx(i, j) = T(r * (g(i, j) - mg - xhat * mgx));
    }
  }
};

/// The row kernels' launch: a team per row on devices, a work item per row on host spaces.
template <class ExecSpace, class F>
void launch_norm_rows(const char* name, const ExecSpace& space, int m, const F& f) {
  if constexpr (Kokkos::SpaceAccessibility<ExecSpace, Kokkos::HostSpace>::accessible)
    Kokkos::parallel_for(name, Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<int>>(space, 0, m), f);
  else
    Kokkos::parallel_for(name, Kokkos::TeamPolicy<ExecSpace>(space, m, Kokkos::AUTO), f);
}

/// dweight(j) += sum_i dy(i, j) * xhat(i, j), dbias(j) += sum_i dy(i, j): one thread per channel,
/// rows in order (deterministic). Shared with rms_norm (mean empty there: xhat = x * rstd).
template <class DYV, class XV, class PV, class SV>
struct NormParamGrad {
  using A = typename SV::non_const_value_type;
  using T = value_t<PV>;
  DYV dy;  // (M, C)
  XV x;    // (M, C)
  SV mean; // (M) or empty (RMSNorm)
  SV rstd; // (M)
  PV dw;   // (C) or empty
  PV db;   // (C) or empty
  int m;
  bool has_mean, has_w, has_b;

  KOKKOS_INLINE_FUNCTION void operator()(const int j) const {
    A sw = 0, sb = 0;
    for (int i = 0; i < m; ++i) {
      const A d = A(dy(i, j));
      sw += d * (A(x(i, j)) - (has_mean ? mean(i) : A(0))) * rstd(i);
      sb += d;
    }
    if (has_w) dw(j) += T(sw);
    if (has_b) db(j) += T(sb);
  }
  KOKKOS_INLINE_FUNCTION void operator()(const int, const int j) const { (*this)(j); }
  /// Host: channels [j0, j0 + w) at once, rows in the same order.
  template <int W>
  KOKKOS_INLINE_FUNCTION void block(const int, const int j0, const int w) const {
    A sw[W], sb[W];
    for (int k = 0; k < W; ++k) sw[k] = sb[k] = 0;
    for (int i = 0; i < m; ++i) {
      const A mu = has_mean ? mean(i) : A(0), r = rstd(i);
      if (w == W) {
        for (int k = 0; k < W; ++k) {
          const A d = A(dy(i, j0 + k));
          sw[k] += d * (A(x(i, j0 + k)) - mu) * r;
          sb[k] += d;
        }
      } else {
        for (int k = 0; k < w; ++k) {
          const A d = A(dy(i, j0 + k));
          sw[k] += d * (A(x(i, j0 + k)) - mu) * r;
          sb[k] += d;
        }
      }
    }
    for (int k = 0; k < w; ++k) {
      if (has_w) dw(j0 + k) += T(sw[k]);
      if (has_b) db(j0 + k) += T(sb[k]);
    }
  }
};

/// Launch of NormParamGrad over c channels.
template <class ExecSpace, class F>
void launch_norm_param_grad(const char* name, const ExecSpace& space, int c, const F& f) {
  for_each_2d_blocks<16>(name, space, 1, c, f);
}

template <class XV, class T, class M, class YV>
void check_layer_norm(const char* op, const XV& x, const LayerNorm<T, M>& p, const YV& y,
                      const LayerNormCache<T, M>& cache) {
  static_assert(XV::rank == 2 && YV::rank == 2, "layer_norm: x and y are rank-2 (M, C) Views");
  const std::size_t m = x.extent(0), c = x.extent(1);
  DCSLDM_REQUIRE(y.extent(0) == m && y.extent(1) == c, op, "x is (", m, ", ", c, ") but the output is (",
                 y.extent(0), ", ", y.extent(1), ")");
  DCSLDM_REQUIRE(!p.has_weight() || p.weight.extent(0) == c, op, "weight.extent(0) = ", p.weight.extent(0),
                 " != C = x.extent(1) = ", c);
  DCSLDM_REQUIRE(!p.has_bias() || p.bias.extent(0) == c, op, "bias.extent(0) = ", p.bias.extent(0),
                 " != C = x.extent(1) = ", c);
  DCSLDM_REQUIRE(cache.mean.extent(0) == m && cache.rstd.extent(0) == m, op, "cache.mean.extent(0) = ",
                 cache.mean.extent(0), " and cache.rstd.extent(0) = ", cache.rstd.extent(0),
                 " must equal M = x.extent(0) = ", m);
}

}  // namespace Impl

/// Forward: y(i, :) = (x(i, :) - mean_i) * rstd_i * weight + bias, with mean_i = (1/C) sum_j x(i, j),
/// rstd_i = 1 / sqrt((1/C) sum_j (x(i, j) - mean_i)^2 + eps) (biased variance, like PyTorch).
/// x (M, C), y (M, C) written (=); cache.mean and cache.rstd (M) written. Without weight/bias (extent 0)
/// the scale is 1 and the shift 0 (torch.nn.LayerNorm(C, elementwise_affine=False)).
template <class ExecSpace, class XV, class T, class M, class YV>
void layer_norm_forward(const ExecSpace& space, const XV& x, const LayerNorm<T, M>& p, const YV& y,
                        const LayerNormCache<T, M>& cache, double eps = 1e-5) {
  Impl::check_layer_norm("layer_norm_forward", x, p, y, cache);
  const int m = int(x.extent(0));
  if (m == 0) return;
  using Policy = Kokkos::TeamPolicy<ExecSpace>;
  using SV = View1<accum_t<T>, M>;
  Impl::LayerNormForward<typename Policy::member_type, XV, View1<T, M>, YV, SV> f{
      x, p.weight, p.bias, y, cache.mean, cache.rstd, accum_t<T>(eps), int(x.extent(1)), p.has_weight(),
      p.has_bias()};
  Impl::launch_norm_rows("dcsldm::layer_norm_forward", space, m, f);
}

/// Backward of layer_norm_forward, from dy (M, C), the forward's x (M, C), parameters and cache.
/// The input gradient is written (=): dx = rstd * (g - mean_j(g) - xhat * mean_j(g * xhat)) with
/// g = weight * dy and xhat = (x - mean) * rstd. Parameter gradients accumulate (+=):
/// grad.weight += sum_i dy * xhat, grad.bias += sum_i dy (only those present in p).
template <class ExecSpace, class DYV, class XV, class T, class M, class DXV>
void layer_norm_backward(const ExecSpace& space, const DYV& dy, const XV& x, const LayerNorm<T, M>& p,
                         const LayerNorm<T, M>& grad, const LayerNormCache<T, M>& cache, const DXV& dx) {
  Impl::check_layer_norm("layer_norm_backward", x, p, dy, cache);
  DCSLDM_REQUIRE(dx.extent(0) == x.extent(0) && dx.extent(1) == x.extent(1), "layer_norm_backward",
                 "dx is (", dx.extent(0), ", ", dx.extent(1), "), expected (", x.extent(0), ", ", x.extent(1),
                 ")");
  DCSLDM_REQUIRE(grad.weight.extent(0) == p.weight.extent(0) && grad.bias.extent(0) == p.bias.extent(0),
                 "layer_norm_backward", "gradient extents (", grad.weight.extent(0), ") / (",
                 grad.bias.extent(0), ") differ from parameter extents (", p.weight.extent(0), ") / (",
                 p.bias.extent(0), ")");
  const int m = int(x.extent(0)), c = int(x.extent(1));
  if (m == 0) return;
  using Policy = Kokkos::TeamPolicy<ExecSpace>;
  using SV = View1<accum_t<T>, M>;
  Impl::LayerNormBackwardInput<typename Policy::member_type, DYV, XV, View1<T, M>, SV, DXV> fin{
      dy, x, p.weight, cache.mean, cache.rstd, dx, c, p.has_weight()};
  Impl::launch_norm_rows("dcsldm::layer_norm_backward", space, m, fin);
  if ((p.has_weight() || p.has_bias()) && c > 0)
    Impl::launch_norm_param_grad("dcsldm::layer_norm_backward_params", space, c,
                                 Impl::NormParamGrad<DYV, XV, View1<T, M>, SV>{dy, x, cache.mean, cache.rstd, grad.weight,
                                                                              grad.bias, m, true, p.has_weight(),
                                                                              p.has_bias()});
}

}  // namespace dcsldm::nn
