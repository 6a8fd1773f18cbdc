// dcsldm/nn/linear.hpp: fully connected layer, y = x W^T + b (torch.nn.Linear).
#pragma once

#include <dcsldm/core/elementwise.hpp>
#include <dcsldm/core/error.hpp>
#include <dcsldm/core/types.hpp>
#include <dcsldm/linalg/gemm.hpp>

namespace dcsldm::nn {

/// Parameters (or their gradients) of a linear layer, in PyTorch's layout.
template <class T, class MemSpace>
struct Linear {
  View2<T, MemSpace> weight;  ///< (out, in)
  View1<T, MemSpace> bias;    ///< (out), or extent 0 for a layer without bias
  int in_features() const { return int(weight.extent(1)); }
  int out_features() const { return int(weight.extent(0)); }
  bool has_bias() const { return bias.extent(0) != 0; }
};

namespace Impl {
template <class YV, class BV>
struct BroadcastRows {
  YV y;
  BV b;
  KOKKOS_INLINE_FUNCTION void operator()(const int i, const int j) const { y(i, j) = b(j); }
};

/// db(j) += sum_i dy(i, j): one thread per column, rows in order (deterministic).
template <class DYV, class DBV>
struct ColumnSumAccumulate {
  DYV dy;
  DBV db;
  KOKKOS_INLINE_FUNCTION void operator()(const int j) const {
    accum_t<value_t<DBV>> s = 0;
    for (std::size_t i = 0; i < dy.extent(0); ++i) s += dy(i, j);
    db(j) += s;
  }
};

/// The host form: a block of 16 adjacent columns per work item, rows in order with the block's columns as
/// the inner (contiguous, vectorised) loop. Each column is summed in the same order as
/// ColumnSumAccumulate (rows ascending, one accumulator), so the result has the same bits.
template <class DYV, class DBV>
struct ColumnBlockSumAccumulate {
  static constexpr int W = 16;
  DYV dy;
  DBV db;
  int n;
  KOKKOS_INLINE_FUNCTION void operator()(const int blk) const {
    using A = accum_t<value_t<DBV>>;
    const int j0 = blk * W, w = n - j0 < W ? n - j0 : W, m = int(dy.extent(0));
    A s[W];
    for (int c = 0; c < W; ++c) s[c] = 0;
    if (w == W) {
      for (int i = 0; i < m; ++i)
        for (int c = 0; c < W; ++c) s[c] += dy(i, j0 + c);
    } else {
      for (int i = 0; i < m; ++i)
        for (int c = 0; c < w; ++c) s[c] += dy(i, j0 + c);
    }
    for (int c = 0; c < w; ++c) db(j0 + c) += s[c];
  }
};

/// db(j) += sum_i dy(i, j) (rows in order): column blocks on host spaces, a thread per column on devices.
template <class ExecSpace, class DYV, class DBV>
void column_sum_accumulate(const char* name, const ExecSpace& space, const DYV& dy, const DBV& db) {
  const int n = int(dy.extent(1));
  if (n == 0) return;
  if constexpr (Kokkos::SpaceAccessibility<ExecSpace, Kokkos::HostSpace>::accessible) {
    constexpr int W = ColumnBlockSumAccumulate<DYV, DBV>::W;
    Kokkos::parallel_for(name, Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<int>>(space, 0, (n + W - 1) / W),
                         ColumnBlockSumAccumulate<DYV, DBV>{dy, db, n});
  } else {
    Kokkos::parallel_for(name, Kokkos::RangePolicy<ExecSpace>(space, 0, dy.extent(1)), ColumnSumAccumulate<DYV, DBV>{dy, db});
  }
}

template <class XV, class T, class M>
void check_linear(const char* op, const XV& x, const Linear<T, M>& p, std::size_t out_rows,
                  std::size_t out_cols) {
  DCSLDM_REQUIRE(x.extent(1) == p.weight.extent(1), op, "x.extent(1) = ", x.extent(1),
                 " != weight.extent(1) (in_features) = ", p.weight.extent(1));
  DCSLDM_REQUIRE(out_rows == x.extent(0) && out_cols == p.weight.extent(0), op, "output is (",
                 out_rows, ", ", out_cols, "), expected (", x.extent(0), ", ", p.weight.extent(0), ")");
  DCSLDM_REQUIRE(!p.has_bias() || p.bias.extent(0) == p.weight.extent(0), op, "bias.extent(0) = ",
                 p.bias.extent(0), " != out_features = ", p.weight.extent(0));
}
}  // namespace Impl

/// Forward: y = x W^T + b.
/// x (M, in), y (M, out); y is written (=). Both may be strided row views with unit inner stride.
template <class ExecSpace, class XV, class T, class M, class YV>
void linear_forward(const ExecSpace& space, const XV& x, const Linear<T, M>& p, const YV& y) {
  Impl::check_linear("linear_forward", x, p, y.extent(0), y.extent(1));
  if (y.extent(0) == 0 || y.extent(1) == 0) return;
  if (p.has_bias()) {
    // The host AVX-512 GEMM adds the bias as it stores C; elsewhere C is preset to it.
    if (dcsldm::Impl::gemm_bias_fused(space, Op::N, Op::T, x, p.weight, p.bias, y)) return;
    for_each_2d("dcsldm::linear_bias", space, int(y.extent(0)), int(y.extent(1)),
                Impl::BroadcastRows<YV, View1<T, M>>{y, p.bias});
    gemm(space, Op::N, Op::T, 1, x, p.weight, 1, y);
  } else {
    gemm(space, Op::N, Op::T, 1, x, p.weight, 0, y);
  }
}

/// Backward of linear_forward.
/// dy (M, out), x (M, in) as given to forward. Parameter gradients accumulate: g.weight += dy^T x,
/// g.bias += sum over rows of dy. The input gradient is written: dx = dy W (M, in); pass an empty
/// View (extent 0) as dx to skip it.
template <class ExecSpace, class DYV, class XV, class T, class M, class DXV>
void linear_backward(const ExecSpace& space, const DYV& dy, const XV& x, const Linear<T, M>& p,
                     const Linear<T, M>& g, const DXV& dx) {
  Impl::check_linear("linear_backward", x, p, dy.extent(0), dy.extent(1));
  DCSLDM_REQUIRE(g.weight.extent(0) == p.weight.extent(0) && g.weight.extent(1) == p.weight.extent(1) &&
                     g.bias.extent(0) == p.bias.extent(0),
                 "linear_backward", "gradient shapes (", g.weight.extent(0), ", ", g.weight.extent(1),
                 ") / (", g.bias.extent(0), ") differ from parameter shapes (", p.weight.extent(0), ", ",
                 p.weight.extent(1), ") / (", p.bias.extent(0), ")");
  if (dx.extent(0) != 0 || dx.extent(1) != 0) {
    DCSLDM_REQUIRE(dx.extent(0) == x.extent(0) && dx.extent(1) == x.extent(1), "linear_backward",
                   "dx is (", dx.extent(0), ", ", dx.extent(1), "), expected (", x.extent(0), ", ",
                   x.extent(1), ")");
    gemm(space, Op::N, Op::N, 1, dy, p.weight, 0, dx);
  }
  gemm(space, Op::T, Op::N, 1, dy, x, 1, g.weight);
  if (p.has_bias()) Impl::column_sum_accumulate("dcsldm::linear_bias_backward", space, dy, g.bias);
}

}  // namespace dcsldm::nn
