// dcsldm/nn/conv2d.hpp: 2-D convolution, stride 1, "same" zero padding, odd square kernel (torch.nn.Conv2d
// with padding = k / 2), on channels-last tensors, as an explicit im2col followed by a GEMM:
//
//   cols(b*H*W + y*W + x, (ky*k + kx)*Cin + c) = x(b, y + ky - r, x + kx - r, c)   (0 outside), r = k / 2
//   y(b, y, x, :) = cols(row, :) W^T + bias                                          W (Cout, k*k*Cin)
//
// W is PyTorch's (Cout, Cin, kh, kw) weight permuted to (Cout, kh, kw, Cin) (`w.permute(0, 2, 3, 1)`).
// Backward: the GEMMs of a linear layer, then col2im written as a gather (each input pixel sums the k*k
// column entries that read it, in a fixed order): no atomics, bit-identical for a given backend.
#pragma once

#include <dcsldm/core/error.hpp>
#include <dcsldm/core/types.hpp>
#include <dcsldm/nn/linear.hpp>

namespace dcsldm::nn {

/// Parameters (or gradients) of a convolution: a Linear over im2col columns plus the kernel size.
template <class T, class M>
struct Conv2d {
  Linear<T, M> lin;  ///< weight (Cout, k*k*Cin), bias (Cout)
  int k = 3;
  int in_channels() const { return lin.in_features() / (k * k); }
  int out_channels() const { return lin.out_features(); }
};

namespace Impl {
/// One column entry per work item: (row, col) of cols (B*H*W, k*k*C).
template <class XV, class CV>
struct Im2Col {
  XV x;   // (B, H, W, C)
  CV cols;
  int H, W, C, k;
  KOKKOS_INLINE_FUNCTION void operator()(const int row, const int col) const {
    const int b = row / (H * W), yx = row % (H * W), yy = yx / W, xx = yx % W;
    const int c = col % C, kk = col / C, ky = kk / k, kx = kk % k, r = k / 2;
    const int sy = yy + ky - r, sx = xx + kx - r;
    cols(row, col) = (sy >= 0 && sy < H && sx >= 0 && sx < W) ? x(b, sy, sx, c) : value_t<CV>(0);
  }
};
/// dx(b, y, x, c) = sum over kernel taps of dcols at the output pixel that read (y, x) through that tap.
template <class DCV, class DXV>
struct Col2ImGather {
  DCV dcols;  // (B*H*W, k*k*C)
  DXV dx;     // (B, H, W, C)
  int H, W, C, k;
  KOKKOS_INLINE_FUNCTION void operator()(const int b, const int yy, const int xx) const {
    const int r = k / 2;
    for (int c = 0; c < C; ++c) {
      accum_t<value_t<DXV>> s = 0;
      for (int ky = 0; ky < k; ++ky) {
        const int oy = yy - ky + r;
        if (oy < 0 || oy >= H) continue;
        for (int kx = 0; kx < k; ++kx) {
          const int ox = xx - kx + r;
          if (ox < 0 || ox >= W) continue;
          s += dcols((b * H + oy) * W + ox, (ky * k + kx) * C + c);
        }
      }
      dx(b, yy, xx, c) = value_t<DXV>(s);
    }
  }
};
template <class XV, class T, class M, class YV, class CV>
void check_conv(const char* op, const XV& x, const Conv2d<T, M>& p, const YV& y, const CV& cols) {
  DCSLDM_REQUIRE(p.k >= 1 && p.k % 2 == 1 && p.lin.in_features() % (p.k * p.k) == 0, op, "kernel size k = ", p.k,
                 " (must be odd) does not match weight.extent(1) = ", p.lin.in_features());
  DCSLDM_REQUIRE(int(x.extent(3)) == p.in_channels(), op, "x has ", x.extent(3), " channels, the weight expects ",
                 p.in_channels());
  DCSLDM_REQUIRE(y.extent(0) == x.extent(0) && y.extent(1) == x.extent(1) && y.extent(2) == x.extent(2) &&
                     int(y.extent(3)) == p.out_channels(),
                 op, "y is (", y.extent(0), ", ", y.extent(1), ", ", y.extent(2), ", ", y.extent(3), "), expected (",
                 x.extent(0), ", ", x.extent(1), ", ", x.extent(2), ", ", p.out_channels(), ")");
  DCSLDM_REQUIRE(cols.extent(0) == x.extent(0) * x.extent(1) * x.extent(2) && int(cols.extent(1)) == p.lin.in_features(),
                 op, "cols workspace is (", cols.extent(0), ", ", cols.extent(1), "), expected (",
                 x.extent(0) * x.extent(1) * x.extent(2), ", ", p.lin.in_features(), ")");
}
template <class V4>
auto pixel_rows(const V4& v) {  // (B, H, W, C) contiguous -> (B*H*W, C), same memory
  return Kokkos::View<value_t<V4>**, Kokkos::LayoutRight, typename V4::memory_space, Kokkos::MemoryUnmanaged>(
      v.data(), v.extent(0) * v.extent(1) * v.extent(2), v.extent(3));
}
}  // namespace Impl

/// Forward: y = conv2d(x) + bias. x (B, H, W, Cin), y (B, H, W, Cout) written (=); cols (B*H*W, k*k*Cin) is
/// the caller's workspace and holds the im2col matrix afterwards (conv2d_backward reads it).
template <class ExecSpace, class XV, class T, class M, class YV, class CV>
void conv2d_forward(const ExecSpace& space, const XV& x, const Conv2d<T, M>& p, const YV& y, const CV& cols) {
  static_assert(XV::rank == 4 && YV::rank == 4 && CV::rank == 2, "conv2d_forward: x, y rank 4, cols rank 2");
  Impl::check_conv("conv2d_forward", x, p, y, cols);
  if (cols.extent(0) == 0) return;
  Kokkos::parallel_for("dcsldm::conv2d_im2col",
                       Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<2>, Kokkos::IndexType<int>>(
                           space, {0, 0}, {int(cols.extent(0)), int(cols.extent(1))}),
                       Impl::Im2Col<XV, CV>{x, cols, int(x.extent(1)), int(x.extent(2)), int(x.extent(3)), p.k});
  linear_forward(space, cols, p.lin, Impl::pixel_rows(y));
}

/// Backward of conv2d_forward. dy (B, H, W, Cout); cols as left by the forward; g += dW, dbias;
/// dx (B, H, W, Cin) written (=) through the workspace dcols (B*H*W, k*k*Cin); pass an empty dx (extent 0)
/// to skip the input gradient (dcols is then unused).
template <class ExecSpace, class DYV, class T, class M, class CV, class DXV, class DCV>
void conv2d_backward(const ExecSpace& space, const DYV& dy, const CV& cols, const Conv2d<T, M>& p,
                     const Conv2d<T, M>& g, const DXV& dx, const DCV& dcols) {
  static_assert(DYV::rank == 4 && DXV::rank == 4 && CV::rank == 2 && DCV::rank == 2,
                "conv2d_backward: dy, dx rank 4, cols, dcols rank 2");
  DCSLDM_REQUIRE(g.k == p.k, "conv2d_backward", "gradient kernel size ", g.k, " != ", p.k);
  const bool want_dx = dx.extent(0) != 0;
  if (want_dx) {
    Impl::check_conv("conv2d_backward", dx, p, dy, cols);
    DCSLDM_REQUIRE(dcols.extent(0) == cols.extent(0) && dcols.extent(1) == cols.extent(1), "conv2d_backward",
                   "dcols is (", dcols.extent(0), ", ", dcols.extent(1), "), expected (", cols.extent(0), ", ",
                   cols.extent(1), ")");
    linear_backward(space, Impl::pixel_rows(dy), cols, p.lin, g.lin, dcols);
    Kokkos::parallel_for("dcsldm::conv2d_col2im",
                         Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<3>, Kokkos::IndexType<int>>(
                             space, {0, 0, 0}, {int(dx.extent(0)), int(dx.extent(1)), int(dx.extent(2))}),
                         Impl::Col2ImGather<DCV, DXV>{dcols, dx, int(dx.extent(1)), int(dx.extent(2)),
                                                      int(dx.extent(3)), p.k});
  } else {
    linear_backward(space, Impl::pixel_rows(dy), cols, p.lin, g.lin, View2<T, M>());
  }
}

}  // namespace dcsldm::nn
