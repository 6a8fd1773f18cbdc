// dcsldm/nn/avg_pool.hpp: 2 x 2 average pooling with stride 2 on channels-last tensors
// (torch.nn.functional.avg_pool2d(x, 2), H and W even):
//   y(b, i, j, c) = (x(b, 2i, 2j, c) + x(b, 2i, 2j+1, c) + x(b, 2i+1, 2j, c) + x(b, 2i+1, 2j+1, c)) / 4
//   dx(b, y, x, c) = dy(b, y/2, x/2, c) / 4
#pragma once

#include <dcsldm/core/error.hpp>
#include <dcsldm/core/types.hpp>

namespace dcsldm::nn {

namespace Impl {
template <class XV, class YV>
void check_pool(const char* op, const XV& x, const YV& y) {
  DCSLDM_REQUIRE(x.extent(1) % 2 == 0 && x.extent(2) % 2 == 0, op, "input ", x.extent(1), " x ", x.extent(2),
                 " is not even in both sides");
  DCSLDM_REQUIRE(y.extent(0) == x.extent(0) && 2 * y.extent(1) == x.extent(1) && 2 * y.extent(2) == x.extent(2) &&
                     y.extent(3) == x.extent(3),
                 op, "pooled tensor is (", y.extent(0), ", ", y.extent(1), ", ", y.extent(2), ", ", y.extent(3),
                 "), expected (", x.extent(0), ", ", x.extent(1) / 2, ", ", x.extent(2) / 2, ", ", x.extent(3), ")");
}
template <class XV, class YV>
struct AvgPool2Forward {
  XV x;
  YV y;
  KOKKOS_INLINE_FUNCTION void operator()(const int b, const int i, const int j) const {
    using A = accum_t<value_t<YV>>;
    for (std::size_t c = 0; c < y.extent(3); ++c)
      y(b, i, j, c) = value_t<YV>((A(x(b, 2 * i, 2 * j, c)) + A(x(b, 2 * i, 2 * j + 1, c)) +
                                   A(x(b, 2 * i + 1, 2 * j, c)) + A(x(b, 2 * i + 1, 2 * j + 1, c))) *
                                  A(0.25));
  }
};
template <class DYV, class DXV>
struct AvgPool2Backward {
  DYV dy;
  DXV dx;
  KOKKOS_INLINE_FUNCTION void operator()(const int b, const int yy, const int xx) const {
    for (std::size_t c = 0; c < dx.extent(3); ++c)
      dx(b, yy, xx, c) = value_t<DXV>(accum_t<value_t<DXV>>(dy(b, yy / 2, xx / 2, c)) * accum_t<value_t<DXV>>(0.25));
  }
};
}  // namespace Impl

/// Forward: x (B, H, W, C) -> y (B, H/2, W/2, C), written (=).
template <class ExecSpace, class XV, class YV>
void avg_pool2_forward(const ExecSpace& space, const XV& x, const YV& y) {
  static_assert(XV::rank == 4 && YV::rank == 4, "avg_pool2_forward takes rank-4 Views");
  Impl::check_pool("avg_pool2_forward", x, y);
  Kokkos::parallel_for("dcsldm::avg_pool2_forward",
                       Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<3>, Kokkos::IndexType<int>>(
                           space, {0, 0, 0}, {int(y.extent(0)), int(y.extent(1)), int(y.extent(2))}),
                       Impl::AvgPool2Forward<XV, YV>{x, y});
}

/// Backward: dy (B, H/2, W/2, C) -> dx (B, H, W, C), written (=).
template <class ExecSpace, class DYV, class DXV>
void avg_pool2_backward(const ExecSpace& space, const DYV& dy, const DXV& dx) {
  static_assert(DYV::rank == 4 && DXV::rank == 4, "avg_pool2_backward takes rank-4 Views");
  Impl::check_pool("avg_pool2_backward", dx, dy);
  Kokkos::parallel_for("dcsldm::avg_pool2_backward",
                       Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<3>, Kokkos::IndexType<int>>(
                           space, {0, 0, 0}, {int(dx.extent(0)), int(dx.extent(1)), int(dx.extent(2))}),
                       Impl::AvgPool2Backward<DYV, DXV>{dy, dx});
}

}  // namespace dcsldm::nn
