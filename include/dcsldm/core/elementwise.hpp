// dcsldm/core/elementwise.hpp: the launch of 2-D and 3-D elementwise kernels, f(i, j) over (m rows, n
// columns) and f(i0, i1, i2), and of column-block reductions (for_each_2d_blocks).
// Host spaces run one work item per row with a plain inner loop over j, which is contiguous in the
// library's LayoutRight Views, so the compiler vectorises it (an MDRange tile loop is not vectorised on
// the host: measured 16.5 vs 4.4 ns per GELU element, docs/performance.md). Device spaces run an MDRange
// over (i, j), consecutive threads on consecutive j (coalesced).
#pragma once

#include <dcsldm/core/compat.hpp>

namespace dcsldm {

namespace Impl {
template <class F>
struct RowsOf {
  F f;
  int n;
  KOKKOS_INLINE_FUNCTION void operator()(const int i) const {
    for (int j = 0; j < n; ++j) f(i, j);
  }
};
template <int W, class F>
struct ColumnBlocksOf {
  F f;
  int nblocks, n;
  KOKKOS_INLINE_FUNCTION void operator()(const int item) const {
    const int i = item / nblocks, j0 = (item % nblocks) * W;
    f.template block<W>(i, j0, n - j0 < W ? n - j0 : W);
  }
};
template <class F>
struct RowsOf3 {
  F f;
  int n1, n2;
  KOKKOS_INLINE_FUNCTION void operator()(const int r) const {
    const int i0 = r / n1, i1 = r % n1;
    for (int i2 = 0; i2 < n2; ++i2) f(i0, i1, i2);
  }
};
}  // namespace Impl

/// Runs f(i, j) for i < m, j < n on `space` (asynchronous, like parallel_for).
template <class ExecSpace, class F>
void for_each_2d(const char* name, const ExecSpace& space, int m, int n, const F& f) {
  if constexpr (Kokkos::SpaceAccessibility<ExecSpace, Kokkos::HostSpace>::accessible) {
    Kokkos::parallel_for(name, Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<int>>(space, 0, m),
                         Impl::RowsOf<F>{f, n});
  } else {
    Kokkos::parallel_for(name,
                         Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<2>, Kokkos::IndexType<int>>(space, {0, 0}, {m, n}),
                         f);
  }
}

/// Runs f(i0, i1, i2) for i0 < n0, i1 < n1, i2 < n2 on `space`: on host spaces one work item per (i0, i1)
/// with the inner loop over i2; on devices an MDRange over the three.
template <class ExecSpace, class F>
void for_each_3d(const char* name, const ExecSpace& space, int n0, int n1, int n2, const F& f) {
  if constexpr (Kokkos::SpaceAccessibility<ExecSpace, Kokkos::HostSpace>::accessible) {
    Kokkos::parallel_for(name, Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<int>>(space, 0, n0 * n1),
                         Impl::RowsOf3<F>{f, n1 > 0 ? n1 : 1, n2});
  } else {
    Kokkos::parallel_for(
        name, Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<3>, Kokkos::IndexType<int>>(space, {0, 0, 0}, {n0, n1, n2}), f);
  }
}

/// Column-block reductions: work item (i, j) for i < m, j < n, where each item reduces over an index of its
/// own (rows of a group, the batch, ...). Host spaces run one work item per (i, block of W columns) and call
/// f.block<W>(i, j0, w) (w <= W columns from j0), which keeps W accumulators and sweeps the reduction index
/// once with contiguous loads; devices run f(i, j) per element (an MDRange). Both must sum in the same
/// order, so the results agree bit for bit.
template <int W, class ExecSpace, class F>
void for_each_2d_blocks(const char* name, const ExecSpace& space, int m, int n, const F& f) {
  if (m == 0 || n == 0) return;
  if constexpr (Kokkos::SpaceAccessibility<ExecSpace, Kokkos::HostSpace>::accessible) {
    const int nb = (n + W - 1) / W;
    Kokkos::parallel_for(name, Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<int>>(space, 0, m * nb),
                         Impl::ColumnBlocksOf<W, F>{f, nb, n});
  } else {
    Kokkos::parallel_for(name,
                         Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<2>, Kokkos::IndexType<int>>(space, {0, 0}, {m, n}),
                         f);
  }
}

}  // namespace dcsldm
