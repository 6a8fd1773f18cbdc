// dcsldm/dit/group_modulation.hpp: AdaLN modulation with two conditions per sample, for the DiT's
// progressive mode: the first `split` tokens of every sequence (levels already generated, held clean at
// t = 0) use condition row 2b, the others (the noisy levels, at time t) row 2b + 1. nn/adaln.hpp has the
// one-condition-per-sample form; here the conditions are columns [col, col + D) of the AdaLN Linear
// output ada (2B, kD), so no slices are copied.
//
//   modulate:        y(b, r, :) = x(b, r, :) * (1 + ada(c, sc:sc+D)) + ada(c, sh:sh+D),  c = 2b + (r >= split)
//   gated residual:  y(b, r, :) = x(b, r, :) + ada(c, g:g+D) * h(b, r, :)
// Backward writes (=) the columns it owns in dada: one thread per (condition, d) sums over that
// condition's rows in order (deterministic, no atomics); a condition without rows gets 0.
#pragma once

#include <dcsldm/core/elementwise.hpp>
#include <dcsldm/core/error.hpp>
#include <dcsldm/core/types.hpp>

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

}  // namespace dcsldm::dit
