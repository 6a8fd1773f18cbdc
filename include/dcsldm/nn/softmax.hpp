// dcsldm/nn/softmax.hpp: softmax over the last dimension (torch.softmax(x, dim=-1)), numerically stable.
//
// One team per row: a max reduction, a sum of exp(x - max) in accum_t<T>, then the normalised write.
// Rows that are entirely -inf (fully masked) give zeros instead of NaN.
#pragma once

#include <dcsldm/core/compat.hpp>
#include <dcsldm/core/fast_math.hpp>
#include <dcsldm/core/error.hpp>
#include <dcsldm/core/types.hpp>

namespace dcsldm::nn {

namespace Impl {

template <class Member, class XV, class YV>
struct SoftmaxForward {
  using T = value_t<YV>;
  using A = accum_t<T>;
  XV x;  // (M, C)
  YV y;  // (M, C)
  int c;

  KOKKOS_INLINE_FUNCTION void operator()(const Member& team) const {
    const int i = team.league_rank();
    A mx;
    Kokkos::parallel_reduce(
        Kokkos::TeamThreadRange(team, c),
        [&](const int j, A& acc) {
          const A v = A(x(i, j));
          if (v > acc) acc = v;
        },
        Kokkos::Max<A>(mx));
    // A fully masked row (all -inf) leaves mx at -inf or at the reducer's identity (the lowest value):
    // it gives zeros, not NaN. A NaN input still propagates through the sum.
    const bool masked = mx <= Kokkos::reduction_identity<A>::max();
    A s = 0;
    Kokkos::parallel_reduce(
        Kokkos::TeamThreadRange(team, c),
        [&](const int j, A& acc) { acc += masked ? A(0) : math::exp_acc(A(x(i, j)) - mx); }, s);
    const A inv = s > A(0) ? A(1) / s : A(0);
    Kokkos::parallel_for(Kokkos::TeamThreadRange(team, c), [&](const int j) {
      y(i, j) = T(masked ? A(0) : math::exp_acc(A(x(i, j)) - mx) * inv);
    });
  }
};

template <class Member, class DYV, class YV, class DXV>
struct SoftmaxBackward {
  using T = value_t<DXV>;
  using A = accum_t<T>;
  DYV dy;  // (M, C)
  YV y;    // (M, C)
  DXV dx;  // (M, C)
  int c;

  KOKKOS_INLINE_FUNCTION void operator()(const Member& team) const {
    const int i = team.league_rank();
    A s = 0;
    Kokkos::parallel_reduce(
        Kokkos::TeamThreadRange(team, c), [&](const int j, A& acc) { acc += A(dy(i, j)) * A(y(i, j)); }, s);
    Kokkos::parallel_for(Kokkos::TeamThreadRange(team, c),
                         [&](const int j) { dx(i, j) = T(A(y(i, j)) * (A(dy(i, j)) - s)); });
  }
};

template <class AV, class BV>
void check_softmax_shapes(const char* op, const char* an, const AV& a, const char* bn, const BV& b) {
  static_assert(AV::rank == 2 && BV::rank == 2, "softmax: rank-2 (M, C) Views");
  DCSLDM_REQUIRE(a.extent(0) == b.extent(0) && a.extent(1) == b.extent(1), op, an, " is (", a.extent(0), ", ",
                 a.extent(1), ") but ", bn, " is (", b.extent(0), ", ", b.extent(1), ")");
}

}  // namespace Impl

/// Forward: y(i, j) = exp(x(i, j) - max_k x(i, k)) / sum_k exp(x(i, k) - max_k x(i, k)).
/// x (M, C), y (M, C) written (=); y may be x (in place). A row of all -inf gives a row of zeros.
template <class ExecSpace, class XV, class YV>
void softmax_forward(const ExecSpace& space, const XV& x, const YV& y) {
  Impl::check_softmax_shapes("softmax_forward", "x", x, "y", y);
  if (x.extent(0) == 0) return;
  using Policy = Kokkos::TeamPolicy<ExecSpace>;
  Kokkos::parallel_for("dcsldm::softmax_forward", Policy(space, int(x.extent(0)), Kokkos::AUTO),
                       Impl::SoftmaxForward<typename Policy::member_type, XV, YV>{x, y, int(x.extent(1))});
}

/// Backward of softmax_forward from its output y (M, C) and dy (M, C):
/// dx(i, j) = y(i, j) * (dy(i, j) - sum_k dy(i, k) * y(i, k)), written (=); dx may be dy (in place).
template <class ExecSpace, class DYV, class YV, class DXV>
void softmax_backward(const ExecSpace& space, const DYV& dy, const YV& y, const DXV& dx) {
  Impl::check_softmax_shapes("softmax_backward", "dy", dy, "y", y);
  Impl::check_softmax_shapes("softmax_backward", "dx", dx, "y", y);
  if (y.extent(0) == 0) return;
  using Policy = Kokkos::TeamPolicy<ExecSpace>;
  Kokkos::parallel_for("dcsldm::softmax_backward", Policy(space, int(y.extent(0)), Kokkos::AUTO),
                       Impl::SoftmaxBackward<typename Policy::member_type, DYV, YV, DXV>{dy, y, dx,
                                                                                        int(y.extent(1))});
}

}  // namespace dcsldm::nn
