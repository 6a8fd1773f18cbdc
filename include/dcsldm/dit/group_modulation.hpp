// dcsldm/dit/group_modulation.hpp: AdaLN modulation with two conditions per sample, for the DiT's
// progressive mode: the first `split` tokens of every sequence (levels already generated, held clean at
// t = 0) use condition row 2b, the others (the noisy levels, at time t) row 2b + 1. nn/adaln.hpp has the
// one-condition-per-sample form; here the conditions are columns [col, col + D) of the AdaLN Linear
// output ada (2B, kD), so no slices are copied.
//
//   modulate:        y(b, r, :) = x(b, r, :) * (1 + ada(c, sc:sc+D)) + ada(c, sh:sh+D),  c = 2b + (r >= split)
//   gated residual:  y(b, r, :) = x(b, r, :) + ada(c, g:g+D) * h(b, r, :)
// and, for the forward between two modulated branches, both with the LayerNorm between them in one pass over
// each token row (group_residual_norm_modulate_forward; host spaces, same arithmetic as the three kernels).
// Backward writes (=) the columns it owns in dada: one thread per (condition, d) sums over that
// condition's rows in order (deterministic, no atomics); a condition without rows gets 0.
#pragma once

#include <dcsldm/core/elementwise.hpp>
#include <dcsldm/core/error.hpp>
#include <dcsldm/core/types.hpp>
#include <dcsldm/nn/layer_norm.hpp>

namespace dcsldm::dit {

namespace Impl {

KOKKOS_INLINE_FUNCTION int cond_row(int b, int r, int split) { return 2 * b + (r >= split ? 1 : 0); }

template <class XV, class AV, class YV>
struct GroupModulate {
  XV x;
  AV ada;
  YV y;
  int sh, sc, split;
  KOKKOS_INLINE_FUNCTION void operator()(const int b, const int r, const int d) const {
    using A = accum_t<value_t<YV>>;
    const int c = cond_row(b, r, split);
    y(b, r, d) = value_t<YV>(A(x(b, r, d)) * (A(1) + A(ada(c, sc + d))) + A(ada(c, sh + d)));
  }
};

template <class DYV, class AV, class DXV>
struct GroupModulateDx {
  DYV dy;
  AV ada;
  DXV dx;
  int sc, split;
  KOKKOS_INLINE_FUNCTION void operator()(const int b, const int r, const int d) const {
    dx(b, r, d) = dy(b, r, d) * (value_t<DXV>(1) + ada(cond_row(b, r, split), sc + d));
  }
};

/// One thread per (condition, d): the rows of condition c are [0, split) or [split, S) of batch c / 2.
template <class DYV, class XV, class DAV>
struct GroupModulateDada {
  DYV dy;
  XV x;
  DAV dada;
  int sh, sc, split, seq;
  KOKKOS_INLINE_FUNCTION void operator()(const int c, const int d) const {
    using A = accum_t<value_t<DAV>>;
    const int b = c / 2, r0 = (c % 2) ? split : 0, r1 = (c % 2) ? seq : split;
    A s_sh = 0, s_sc = 0;
    for (int r = r0; r < r1; ++r) {
      s_sh += A(dy(b, r, d));
      s_sc += A(dy(b, r, d)) * A(x(b, r, d));
    }
    dada(c, sh + d) = value_t<DAV>(s_sh);
    dada(c, sc + d) = value_t<DAV>(s_sc);
  }
  /// Host: columns [d0, d0 + w) at once, same order per column.
  template <int W>
  KOKKOS_INLINE_FUNCTION void block(const int c, const int d0, const int w) const {
    using A = accum_t<value_t<DAV>>;
    const int b = c / 2, r0 = (c % 2) ? split : 0, r1 = (c % 2) ? seq : split;
    A s_sh[W], s_sc[W];
    for (int k = 0; k < W; ++k) s_sh[k] = s_sc[k] = 0;
    if (w == W) {
      for (int r = r0; r < r1; ++r)
        for (int k = 0; k < W; ++k) {
          s_sh[k] += A(dy(b, r, d0 + k));
          s_sc[k] += A(dy(b, r, d0 + k)) * A(x(b, r, d0 + k));
        }
    } else {
      for (int r = r0; r < r1; ++r)
        for (int k = 0; k < w; ++k) {
          s_sh[k] += A(dy(b, r, d0 + k));
          s_sc[k] += A(dy(b, r, d0 + k)) * A(x(b, r, d0 + k));
        }
    }
    for (int k = 0; k < w; ++k) {
      dada(c, sh + d0 + k) = value_t<DAV>(s_sh[k]);
      dada(c, sc + d0 + k) = value_t<DAV>(s_sc[k]);
    }
  }
};

template <class XV, class HV, class AV, class YV>
struct GroupGatedResidual {
  XV x;
  HV h;
  AV ada;
  YV y;
  int g, split;
  KOKKOS_INLINE_FUNCTION void operator()(const int b, const int r, const int d) const {
    y(b, r, d) = x(b, r, d) + ada(cond_row(b, r, split), g + d) * h(b, r, d);
  }
};

template <class DYV, class HV, class AV, class DHV, class DAV>
struct GroupGatedResidualBackward {
  DYV dy;
  HV h;
  AV ada;
  DHV dh;
  DAV dada;
  int g, split, seq;
  // one thread per (condition, d): dgate and the rows' dh
  KOKKOS_INLINE_FUNCTION void operator()(const int c, const int d) const {
    using A = accum_t<value_t<DAV>>;
    const int b = c / 2, r0 = (c % 2) ? split : 0, r1 = (c % 2) ? seq : split;
    const auto gate = ada(c, g + d);
    A s = 0;
    for (int r = r0; r < r1; ++r) {
      s += A(dy(b, r, d)) * A(h(b, r, d));
      dh(b, r, d) = dy(b, r, d) * gate;
    }
    dada(c, g + d) = value_t<DAV>(s);
  }
  /// Host: dgate of columns [d0, d0 + w) at once, same order per column (dh is a separate elementwise
  /// pass on host spaces, GroupGateScale: a reduction loop without stores vectorises).
  template <int W>
  KOKKOS_INLINE_FUNCTION void block(const int c, const int d0, const int w) const {
    using A = accum_t<value_t<DAV>>;
    const int b = c / 2, r0 = (c % 2) ? split : 0, r1 = (c % 2) ? seq : split;
    A s[W];
    for (int k = 0; k < W; ++k) s[k] = 0;
    if (w == W) {
      for (int r = r0; r < r1; ++r)
        for (int k = 0; k < W; ++k) s[k] += A(dy(b, r, d0 + k)) * A(h(b, r, d0 + k));
    } else {
      for (int r = r0; r < r1; ++r)
        for (int k = 0; k < w; ++k) s[k] += A(dy(b, r, d0 + k)) * A(h(b, r, d0 + k));
    }
    for (int k = 0; k < w; ++k) dada(c, g + d0 + k) = value_t<DAV>(s[k]);
  }
};

/// dh = dy * gate (host spaces' second pass of the gated residual backward).
template <class DYV, class AV, class DHV>
struct GroupGateScale {
  DYV dy;
  AV ada;
  DHV dh;
  int g, split;
  KOKKOS_INLINE_FUNCTION void operator()(const int b, const int r, const int d) const {
    dh(b, r, d) = dy(b, r, d) * ada(cond_row(b, r, split), g + d);
  }
};

/// One token row per work item (host): x1 = x + gate * h (when Residual), n = LayerNorm(x1) (no affine; the
/// host LayerNormForward's sums), y = n * (1 + scale) + shift. Each value is computed by the same expression
/// as in GroupGatedResidual, LayerNormForward and GroupModulate, so the results are those of the three. Rows
/// are read through raw pointers (unit inner stride, checked at the launch): GCC does not vectorise these
/// loops through 3-D View indexing.
template <bool Residual, class T, class A>
struct GroupResidualNormModulate {
  const T* x;
  const T* h;
  const T* gada;
  T* x1;
  T* n;
  A* mean;
  A* rstd;
  const T* ada;
  T* y;
  std::size_t gld, ald;  // row strides of gada and ada
  int g, sh, sc, split, seq, d;
  A eps;
  void operator()(const int row) const {
    const int b = row / seq, r = row % seq, c = cond_row(b, r, split);
    const std::size_t o = std::size_t(row) * std::size_t(d);
    T* KOKKOS_RESTRICT xr1 = x1 + o;
    if constexpr (Residual) {
      const T* KOKKOS_RESTRICT xr = x + o;
      const T* KOKKOS_RESTRICT hr = h + o;
      const T* KOKKOS_RESTRICT gr = gada + std::size_t(c) * gld + std::size_t(g);
      for (int j = 0; j < d; ++j) xr1[j] = xr[j] + gr[j] * hr[j];
    }
    const A inv_d = d > 0 ? A(1) / A(d) : A(0);
    const A mu = nn::Impl::lane_sum<A>(d, [&](int j) { return A(xr1[j]); }) * inv_d;
    const A v = nn::Impl::lane_sum<A>(d, [&](int j) {
      const A e = A(xr1[j]) - mu;
      return e * e;
    });
    const A rs = math::rsqrt(v * inv_d + eps);
    T* KOKKOS_RESTRICT nr = n + o;
    T* KOKKOS_RESTRICT yr = y + o;
    const T* KOKKOS_RESTRICT scr = ada + std::size_t(c) * ald + std::size_t(sc);
    const T* KOKKOS_RESTRICT shr = ada + std::size_t(c) * ald + std::size_t(sh);
    for (int j = 0; j < d; ++j) {
      const T nv = T((A(xr1[j]) - mu) * rs);
      nr[j] = nv;
      yr[j] = T(A(nv) * (A(1) + A(scr[j])) + A(shr[j]));
    }
    mean[row] = mu;
    rstd[row] = rs;
  }
};

template <class XV, class AV>
void check_group(const char* op, const XV& x, const AV& ada, int col, int split) {
  DCSLDM_REQUIRE(ada.extent(0) == 2 * x.extent(0), op, "ada has ", ada.extent(0), " rows, expected 2 B = ",
                 2 * x.extent(0));
  DCSLDM_REQUIRE(col >= 0 && std::size_t(col) + x.extent(2) <= ada.extent(1), op, "columns [", col, ", ",
                 std::size_t(col) + x.extent(2), ") out of range for ada width ", ada.extent(1));
  DCSLDM_REQUIRE(split >= 0 && std::size_t(split) <= x.extent(1), op, "split = ", split, " out of range for S = ",
                 x.extent(1));
}

}  // namespace Impl

/// y = x * (1 + scale) + shift with shift = ada[:, sh:sh+D], scale = ada[:, sc:sc+D] of each token's
/// condition. x, y (B, S, D) (y may be x), ada (2B, >= max(sh, sc) + D).
template <class ExecSpace, class XV, class AV, class YV>
void group_modulate_forward(const ExecSpace& space, const XV& x, const AV& ada, int sh, int sc, int split,
                            const YV& y) {
  Impl::check_group("group_modulate_forward", x, ada, sh, split);
  Impl::check_group("group_modulate_forward", x, ada, sc, split);
  if (x.size() == 0) return;
  for_each_3d("dcsldm::group_modulate_forward", space, int(x.extent(0)), int(x.extent(1)), int(x.extent(2)),
              Impl::GroupModulate<XV, AV, YV>{x, ada, y, sh, sc, split});
}

/// Backward of group_modulate_forward: dx = dy * (1 + scale) (=, may alias dy; pass an empty dx to skip),
/// dada[:, sh:sh+D] and dada[:, sc:sc+D] written (=).
template <class ExecSpace, class DYV, class XV, class AV, class DXV, class DAV>
void group_modulate_backward(const ExecSpace& space, const DYV& dy, const XV& x, const AV& ada, int sh, int sc,
                             int split, const DXV& dx, const DAV& dada) {
  Impl::check_group("group_modulate_backward", x, ada, sh, split);
  Impl::check_group("group_modulate_backward", x, ada, sc, split);
  DCSLDM_REQUIRE(dada.extent(0) == ada.extent(0) && dada.extent(1) == ada.extent(1), "group_modulate_backward",
                 "dada is (", dada.extent(0), ", ", dada.extent(1), "), ada is (", ada.extent(0), ", ", ada.extent(1),
                 ")");
  if (ada.extent(0) == 0 || x.extent(2) == 0) return;
  for_each_2d_blocks<16>("dcsldm::group_modulate_dada", space, int(ada.extent(0)), int(x.extent(2)),
                         Impl::GroupModulateDada<DYV, XV, DAV>{dy, x, dada, sh, sc, split, int(x.extent(1))});
  if (dx.data() != nullptr && x.size() != 0)
    for_each_3d("dcsldm::group_modulate_dx", space, int(x.extent(0)), int(x.extent(1)), int(x.extent(2)),
                Impl::GroupModulateDx<DYV, AV, DXV>{dy, ada, dx, sc, split});
}

/// y = x + gate * h with gate = ada[:, g:g+D] of each token's condition. y may be x.
template <class ExecSpace, class XV, class HV, class AV, class YV>
void group_gated_residual_forward(const ExecSpace& space, const XV& x, const HV& h, const AV& ada, int g, int split,
                                  const YV& y) {
  Impl::check_group("group_gated_residual_forward", x, ada, g, split);
  if (x.size() == 0) return;
  for_each_3d("dcsldm::group_gated_residual_forward", space, int(x.extent(0)), int(x.extent(1)), int(x.extent(2)),
              Impl::GroupGatedResidual<XV, HV, AV, YV>{x, h, ada, y, g, split});
}

/// Backward of the gated branch: dh = dy * gate (=, may not alias dy), dada[:, g:g+D] written (=).
/// (The residual path's gradient is dy itself.)
template <class ExecSpace, class DYV, class HV, class AV, class DHV, class DAV>
void group_gated_residual_backward(const ExecSpace& space, const DYV& dy, const HV& h, const AV& ada, int g,
                                   int split, const DHV& dh, const DAV& dada) {
  Impl::check_group("group_gated_residual_backward", h, ada, g, split);
  if (ada.extent(0) == 0 || h.extent(2) == 0) return;
  for_each_2d_blocks<16>("dcsldm::group_gated_residual_backward", space, int(ada.extent(0)), int(h.extent(2)),
                         Impl::GroupGatedResidualBackward<DYV, HV, AV, DHV, DAV>{dy, h, ada, dh, dada, g, split,
                                                                                  int(h.extent(1))});
  if constexpr (Kokkos::SpaceAccessibility<ExecSpace, Kokkos::HostSpace>::accessible)
    if (h.size() != 0)
      for_each_3d("dcsldm::group_gated_residual_dh", space, int(h.extent(0)), int(h.extent(1)), int(h.extent(2)),
                  Impl::GroupGateScale<DYV, AV, DHV>{dy, ada, dh, g, split});
}

/// The DiT's step from one branch to the next, all (B, S, D):
///   x1 = x + gate * h     (gate = gada[:, g:g+D]; skipped, x1 = x, when h is empty (extent 0))
///   n  = LayerNorm(x1)    (no affine, eps; mean and rstd (B*S) into `ln`)
///   y  = n * (1 + scale) + shift   (shift = ada[:, sh:sh+D], scale = ada[:, sc:sc+D])
/// with each token's condition row (the first `split` tokens 2b, the others 2b + 1). Equal to
/// group_gated_residual_forward, nn::layer_norm_forward and group_modulate_forward in turn (device spaces run
/// those three); on host spaces one pass per token row. x1, n and y must not overlap x or h (x1 may be x
/// when h is empty); gada and ada may be the same View.
template <class ExecSpace, class XV, class HV, class GV, class X1V, class NV, class T, class M, class AV, class YV>
void group_residual_norm_modulate_forward(const ExecSpace& space, const XV& x, const HV& h, const GV& gada, int g,
                                          int split, const X1V& x1, const NV& n, const nn::LayerNormCache<T, M>& ln,
                                          double eps, const AV& ada, int sh, int sc, const YV& y) {
  const char* op = "group_residual_norm_modulate_forward";
  const bool residual = h.extent(0) != 0;
  const std::size_t B = x.extent(0), S = x.extent(1), D = x.extent(2);
  auto same = [&](const auto& v) { return v.extent(0) == B && v.extent(1) == S && v.extent(2) == D; };
  DCSLDM_REQUIRE(same(x1) && same(n) && same(y) && (!residual || same(h)), op, "x is (", B, ", ", S, ", ", D,
                 "); h (", h.extent(0), ", ", h.extent(1), ", ", h.extent(2), "), x1 (", x1.extent(0), ", ",
                 x1.extent(1), ", ", x1.extent(2), "), n (", n.extent(0), ", ", n.extent(1), ", ", n.extent(2),
                 ") and y (", y.extent(0), ", ", y.extent(1), ", ", y.extent(2), ") must match it (h may be empty)");
  DCSLDM_REQUIRE(residual || x1.data() == x.data(), op, "without h, x1 must be x");
  DCSLDM_REQUIRE(ln.mean.extent(0) == B * S && ln.rstd.extent(0) == B * S, op, "ln.mean / ln.rstd have ",
                 ln.mean.extent(0), " / ", ln.rstd.extent(0), " entries, expected B * S = ", B * S);
  if (residual) Impl::check_group(op, x, gada, g, split);
  Impl::check_group(op, x, ada, sh, split);
  Impl::check_group(op, x, ada, sc, split);
  if (x.size() == 0) return;
  using A = accum_t<T>;
  const auto rows2 = [](const auto& v) {
    return View2<value_t<std::decay_t<decltype(v)>>, M>(v.data(), v.extent(0) * v.extent(1), v.extent(2));
  };
  if constexpr (Kokkos::SpaceAccessibility<ExecSpace, Kokkos::HostSpace>::accessible) {
    auto unit = [](const auto& v) { return v.span_is_contiguous() && v.stride(v.rank - 1) == 1; };
    DCSLDM_REQUIRE(unit(x) && (!residual || unit(h)) && unit(x1) && unit(n) && unit(y) && gada.stride(1) == 1 &&
                       ada.stride(1) == 1,
                   op, "the host pass needs contiguous x, h, x1, n, y and unit column stride in gada and ada");
    auto run = [&](auto tag) {
      constexpr bool R = decltype(tag)::value;
      Kokkos::parallel_for("dcsldm::group_residual_norm_modulate",
                           Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<int>>(space, 0, int(B * S)),
                           Impl::GroupResidualNormModulate<R, T, A>{
                               x.data(), h.data(), gada.data(), x1.data(), n.data(), ln.mean.data(), ln.rstd.data(),
                               ada.data(), y.data(), std::size_t(gada.stride(0)), std::size_t(ada.stride(0)), g, sh,
                               sc, split, int(S), int(D), A(eps)});
    };
    if (residual) run(std::true_type{});
    else run(std::false_type{});
  } else {
    if (residual) group_gated_residual_forward(space, x, h, gada, g, split, x1);
    nn::layer_norm_forward(space, rows2(x1), nn::LayerNorm<T, M>{}, rows2(n), ln, eps);
    group_modulate_forward(space, n, ada, sh, sc, split, y);
  }
}

}  // namespace dcsldm::dit
