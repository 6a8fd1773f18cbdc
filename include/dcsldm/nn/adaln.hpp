// dcsldm/nn/adaln.hpp: adaptive LayerNorm (adaLN / adaLN-Zero) modulation of DiT (Peebles & Xie 2023).
//
// In a DiT block the conditioning c (B, D) goes through SiLU + Linear(D -> 6D) to give per-sample
// shift/scale/gate vectors; they act on the token sequence (B, T, D) broadcast over T:
//   modulate(x, shift, scale) = x * (1 + scale) + shift         (DiT's `modulate`)
//   gated residual            = x + gate * h                     (x + gate.unsqueeze(1) * block(h))
// shift/scale/gate may be strided column slices of the (B, 6D) Linear output. Their gradients are
// activation gradients, written (=): the caller backpropagates them through that Linear.
// The gradients of the (B, D) inputs are sums over T taken by one thread per (b, d) in order
// (deterministic, no atomics).
#pragma once

#include <dcsldm/core/compat.hpp>
#include <dcsldm/core/error.hpp>
#include <dcsldm/core/types.hpp>

namespace dcsldm::nn {

namespace Impl {

template <class XV, class ShV, class ScV, class YV>
struct ModulateForward {
  using T = value_t<YV>;
  using A = accum_t<T>;
  XV x;       // (B, T, D)
  ShV shift;  // (B, D)
  ScV scale;  // (B, D)
  YV y;      // (B, T, D)
  KOKKOS_INLINE_FUNCTION void operator()(const int b, const int t, const int d) const {
    y(b, t, d) = T(A(x(b, t, d)) * (A(1) + A(scale(b, d))) + A(shift(b, d)));
  }
};

/// One thread per (b, d): dx = dy * (1 + scale), dshift = sum_t dy, dscale = sum_t dy * x.
template <class DYV, class XV, class SV, class DXV, class DShV, class DScV>
struct ModulateBackward {
  using T = value_t<DXV>;
  using A = accum_t<T>;
  DYV dy;      // (B, T, D)
  XV x;        // (B, T, D)
  SV scale;    // (B, D)
  DXV dx;      // (B, T, D)
  DShV dshift;  // (B, D)
  DScV dscale;  // (B, D)
  int nt;
  KOKKOS_INLINE_FUNCTION void operator()(const int b, const int d) const {
    const A s1 = A(1) + A(scale(b, d));
    A ssh = 0, ssc = 0;
    for (int t = 0; t < nt; ++t) {
      const A g = A(dy(b, t, d));
      ssh += g;
      ssc += g * A(x(b, t, d));
      dx(b, t, d) = T(g * s1);
    }
    dshift(b, d) = value_t<DShV>(ssh);
    dscale(b, d) = value_t<DScV>(ssc);
  }
};

template <class XV, class GV, class HV, class YV>
struct GatedResidualForward {
  using T = value_t<YV>;
  using A = accum_t<T>;
  XV x;     // (B, T, D)
  GV gate;  // (B, D)
  HV h;     // (B, T, D)
  YV y;     // (B, T, D)
  KOKKOS_INLINE_FUNCTION void operator()(const int b, const int t, const int d) const {
    y(b, t, d) = T(A(x(b, t, d)) + A(gate(b, d)) * A(h(b, t, d)));
  }
};

/// One thread per (b, d): dx = dy (unless skipped), dh = gate * dy, dgate = sum_t dy * h.
template <class DYV, class HV, class GV, class DXV, class DHV, class DGV>
struct GatedResidualBackward {
  using T = value_t<DHV>;
  using A = accum_t<T>;
  DYV dy;     // (B, T, D)
  HV h;       // (B, T, D)
  GV gate;    // (B, D)
  DXV dx;     // (B, T, D) or empty
  DHV dh;     // (B, T, D)
  DGV dgate;  // (B, D)
  int nt;
  bool write_dx;
  KOKKOS_INLINE_FUNCTION void operator()(const int b, const int d) const {
    const A gt = A(gate(b, d));
    A s = 0;
    for (int t = 0; t < nt; ++t) {
      const A g = A(dy(b, t, d));
      s += g * A(h(b, t, d));
      if (write_dx) dx(b, t, d) = value_t<DXV>(g);
      dh(b, t, d) = T(gt * g);
    }
    dgate(b, d) = value_t<DGV>(s);
  }
};

template <class AV, class BV>
void adaln_check_btd(const char* op, const char* an, const AV& a, const char* bn, const BV& b) {
  static_assert(AV::rank == 3 && BV::rank == 3, "adaln: token tensors are rank-3 (B, T, D) Views");
  DCSLDM_REQUIRE(a.extent(0) == b.extent(0) && a.extent(1) == b.extent(1) && a.extent(2) == b.extent(2), op, an,
                 " is (", a.extent(0), ", ", a.extent(1), ", ", a.extent(2), ") but ", bn, " is (", b.extent(0),
                 ", ", b.extent(1), ", ", b.extent(2), ")");
}
template <class XV, class CV>
void adaln_check_bd(const char* op, const XV& x, const char* cn, const CV& c) {
  static_assert(CV::rank == 2, "adaln: shift, scale and gate are rank-2 (B, D) Views");
  DCSLDM_REQUIRE(c.extent(0) == x.extent(0) && c.extent(1) == x.extent(2), op, cn, " is (", c.extent(0), ", ",
                 c.extent(1), "), expected (B, D) = (", x.extent(0), ", ", x.extent(2), ")");
}

template <class ExecSpace>
using AdalnRange3 = Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<3>, Kokkos::IndexType<int>>;
template <class ExecSpace>
using AdalnRange2 = Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<2>, Kokkos::IndexType<int>>;

}  // namespace Impl

/// Forward of DiT's modulate: y(b, t, d) = x(b, t, d) * (1 + scale(b, d)) + shift(b, d).
/// x (B, T, D), shift (B, D), scale (B, D), y (B, T, D) written (=); y may be x (in place).
template <class ExecSpace, class XV, class ShV, class ScV, class YV>
void modulate_forward(const ExecSpace& space, const XV& x, const ShV& shift, const ScV& scale, const YV& y) {
  const char* op = "modulate_forward";
  Impl::adaln_check_btd(op, "y", y, "x", x);
  Impl::adaln_check_bd(op, x, "shift", shift);
  Impl::adaln_check_bd(op, x, "scale", scale);
  if (x.size() == 0) return;
  Kokkos::parallel_for("dcsldm::modulate_forward",
                       Impl::AdalnRange3<ExecSpace>(space, {0, 0, 0},
                                               {int(x.extent(0)), int(x.extent(1)), int(x.extent(2))}),
                       Impl::ModulateForward<XV, ShV, ScV, YV>{x, shift, scale, y});
}

/// Backward of modulate_forward, all written (=):
///   dx(b, t, d) = dy(b, t, d) * (1 + scale(b, d))          (B, T, D); dx may be dy (in place)
///   dshift(b, d) = sum_t dy(b, t, d)                        (B, D)
///   dscale(b, d) = sum_t dy(b, t, d) * x(b, t, d)           (B, D)
template <class ExecSpace, class DYV, class XV, class SV, class DXV, class DShV, class DScV>
void modulate_backward(const ExecSpace& space, const DYV& dy, const XV& x, const SV& scale, const DXV& dx,
                       const DShV& dshift, const DScV& dscale) {
  const char* op = "modulate_backward";
  Impl::adaln_check_btd(op, "dy", dy, "x", x);
  Impl::adaln_check_btd(op, "dx", dx, "x", x);
  Impl::adaln_check_bd(op, x, "scale", scale);
  Impl::adaln_check_bd(op, x, "dshift", dshift);
  Impl::adaln_check_bd(op, x, "dscale", dscale);
  if (x.extent(0) == 0 || x.extent(2) == 0) return;
  Kokkos::parallel_for("dcsldm::modulate_backward",
                       Impl::AdalnRange2<ExecSpace>(space, {0, 0}, {int(x.extent(0)), int(x.extent(2))}),
                       Impl::ModulateBackward<DYV, XV, SV, DXV, DShV, DScV>{dy, x, scale, dx, dshift, dscale,
                                                                    int(x.extent(1))});
}

/// Forward of the adaLN-Zero gated residual: y(b, t, d) = x(b, t, d) + gate(b, d) * h(b, t, d).
/// x (B, T, D) residual stream, h (B, T, D) block output, gate (B, D), y (B, T, D) written (=);
/// y may be x (in-place residual update).
template <class ExecSpace, class XV, class HV, class GV, class YV>
void gated_residual_forward(const ExecSpace& space, const XV& x, const HV& h, const GV& gate, const YV& y) {
  const char* op = "gated_residual_forward";
  Impl::adaln_check_btd(op, "h", h, "x", x);
  Impl::adaln_check_btd(op, "y", y, "x", x);
  Impl::adaln_check_bd(op, x, "gate", gate);
  if (x.size() == 0) return;
  Kokkos::parallel_for("dcsldm::gated_residual_forward",
                       Impl::AdalnRange3<ExecSpace>(space, {0, 0, 0},
                                               {int(x.extent(0)), int(x.extent(1)), int(x.extent(2))}),
                       Impl::GatedResidualForward<XV, GV, HV, YV>{x, gate, h, y});
}

/// Backward of gated_residual_forward, all written (=):
///   dx = dy (B, T, D), skipped when dx is empty (extent 0: the caller keeps using dy);
///   dh(b, t, d) = gate(b, d) * dy(b, t, d) (B, T, D); dh may be dy when dx is skipped;
///   dgate(b, d) = sum_t dy(b, t, d) * h(b, t, d) (B, D).
template <class ExecSpace, class DYV, class HV, class GV, class DXV, class DHV, class DGV>
void gated_residual_backward(const ExecSpace& space, const DYV& dy, const HV& h, const GV& gate, const DXV& dx,
                             const DHV& dh, const DGV& dgate) {
  const char* op = "gated_residual_backward";
  Impl::adaln_check_btd(op, "dy", dy, "h", h);
  Impl::adaln_check_btd(op, "dh", dh, "h", h);
  const bool write_dx = !(dx.extent(0) == 0 && dx.extent(1) == 0 && dx.extent(2) == 0);
  if (write_dx) Impl::adaln_check_btd(op, "dx", dx, "h", h);
  Impl::adaln_check_bd(op, h, "gate", gate);
  Impl::adaln_check_bd(op, h, "dgate", dgate);
  if (h.extent(0) == 0 || h.extent(2) == 0) return;
  Kokkos::parallel_for("dcsldm::gated_residual_backward",
                       Impl::AdalnRange2<ExecSpace>(space, {0, 0}, {int(h.extent(0)), int(h.extent(2))}),
                       Impl::GatedResidualBackward<DYV, HV, GV, DXV, DHV, DGV>{dy, h, gate, dx, dh, dgate,
                                                                              int(h.extent(1)), write_dx});
}

}  // namespace dcsldm::nn
