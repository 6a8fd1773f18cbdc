// dcsldm/tok/sequence_ops.hpp: the small token-sequence kernels of the tokenizer: adding a table of
// embeddings to rows of a (B, S, D) sequence (broadcast over the batch), its gradient (a fixed-order sum,
// deterministic), and copying blocks of rows between sequences.
//
// Table row of sequence row r (r counted from r0): t = (r / div) % mod. So div = 1, mod = R adds table
// row r to row r; div = n adds table row r / n (one row per patch of n tokens); div = 1, mod = n adds
// table row r % n (one row per token slot).
//
// modulate_rows scales every batch's rows by a per-row table, y(b, r, :) = a(b, r, :) * (1 + s(r, :)): the
// multiplicative link between a pixel's value (or the attention output at a pixel) and its position.
#pragma once

#include <dcsldm/core/elementwise.hpp>
#include <dcsldm/core/error.hpp>
#include <dcsldm/core/types.hpp>

#include <algorithm>

namespace dcsldm::tok {

namespace Impl {
template <class YV, class TV>
struct AddTableRows {
  YV y;
  TV tab;
  int r0, div, mod;
  KOKKOS_INLINE_FUNCTION void operator()(const int b, const int r, const int d) const {
    y(b, r0 + r, d) += tab((r / div) % mod, d);
  }
};
template <class DYV, class DTV>
struct SumTableRows {
  DYV dy;
  DTV dtab;
  int r0, rows, div, mod, batch;
  KOKKOS_INLINE_FUNCTION void operator()(const int t, const int d) const {
    accum_t<value_t<DTV>> s = 0;
    for (int b = 0; b < batch; ++b)
      for (int q = 0;; ++q) {
        const int base = (q * mod + t) * div;
        if (base >= rows) break;
        for (int j = 0; j < div && base + j < rows; ++j) s += dy(b, r0 + base + j, d);
      }
    dtab(t, d) += s;
  }
  /// Host: columns [d0, d0 + w) at once, same order per column.
  template <int W>
  KOKKOS_INLINE_FUNCTION void block(const int t, const int d0, const int w) const {
    accum_t<value_t<DTV>> s[W];
    for (int c = 0; c < W; ++c) s[c] = 0;
    for (int b = 0; b < batch; ++b)
      for (int q = 0;; ++q) {
        const int base = (q * mod + t) * div;
        if (base >= rows) break;
        for (int j = 0; j < div && base + j < rows; ++j)
          for (int c = 0; c < w; ++c) s[c] += dy(b, r0 + base + j, d0 + c);
      }
    for (int c = 0; c < w; ++c) dtab(t, d0 + c) += s[c];
  }
};
template <class SV, class DV>
struct CopyRowBlock {
  SV src;
  DV dst;
  int src_r0, dst_r0;
  KOKKOS_INLINE_FUNCTION void operator()(const int b, const int r, const int d) const {
    dst(b, dst_r0 + r, d) = src(b, src_r0 + r, d);
  }
};
template <class YV>
struct FillRowBlock {
  YV y;
  int r0;
  value_t<YV> value;
  KOKKOS_INLINE_FUNCTION void operator()(const int b, const int r, const int d) const { y(b, r0 + r, d) = value; }
};
template <class AV, class SV, class YV>
struct ModulateRows {
  AV a;
  SV s;
  YV y;
  KOKKOS_INLINE_FUNCTION void operator()(const int b, const int r, const int d) const {
    y(b, r, d) = a(b, r, d) * (value_t<YV>(1) + s(r, d));
  }
};
template <class DYV, class AV, class SV, class DSV>
struct ModulateRowsGradS {
  DYV dy;
  AV a;
  DSV ds;
  int batch;
  KOKKOS_INLINE_FUNCTION void operator()(const int r, const int d) const {
    accum_t<value_t<DSV>> acc = 0;
    for (int b = 0; b < batch; ++b) acc += dy(b, r, d) * a(b, r, d);
    ds(r, d) += acc;
  }
  /// Host: columns [d0, d0 + w) at once, same order per column.
  template <int W>
  KOKKOS_INLINE_FUNCTION void block(const int r, const int d0, const int w) const {
    accum_t<value_t<DSV>> acc[W];
    for (int c = 0; c < W; ++c) acc[c] = 0;
    if (w == W) {
      for (int b = 0; b < batch; ++b)
        for (int c = 0; c < W; ++c) acc[c] += dy(b, r, d0 + c) * a(b, r, d0 + c);
    } else {
      for (int b = 0; b < batch; ++b)
        for (int c = 0; c < w; ++c) acc[c] += dy(b, r, d0 + c) * a(b, r, d0 + c);
    }
    for (int c = 0; c < w; ++c) ds(r, d0 + c) += acc[c];
  }
};
}  // namespace Impl

/// y(b, r, :) = a(b, r, :) * (1 + s(r, :)). a, y (B, R, E), s (R, E); y may be a.
template <class ExecSpace, class AV, class SV, class YV>
void modulate_rows(const ExecSpace& space, const AV& a, const SV& s, const YV& y) {
  DCSLDM_REQUIRE(a.extent(0) == y.extent(0) && a.extent(1) == y.extent(1) && a.extent(2) == y.extent(2) &&
                     s.extent(0) == a.extent(1) && s.extent(1) == a.extent(2),
                 "modulate_rows", "a is (", a.extent(0), ", ", a.extent(1), ", ", a.extent(2), "), s is (", s.extent(0),
                 ", ", s.extent(1), "), y is (", y.extent(0), ", ", y.extent(1), ", ", y.extent(2), ")");
  if (a.size() == 0) return;
  for_each_3d("dcsldm::modulate_rows", space, int(a.extent(0)), int(a.extent(1)), int(a.extent(2)),
              Impl::ModulateRows<AV, SV, YV>{a, s, y});
}

/// Gradient of modulate_rows: da = dy * (1 + s) (=, da may be dy) and ds(r, :) += sum_b dy(b, r, :) * a(b, r, :)
/// (fixed order). Pass an empty da to skip it.
template <class ExecSpace, class DYV, class AV, class SV, class DAV, class DSV>
void modulate_rows_backward(const ExecSpace& space, const DYV& dy, const AV& a, const SV& s, const DAV& da,
                            const DSV& ds) {
  DCSLDM_REQUIRE(dy.extent(0) == a.extent(0) && dy.extent(1) == a.extent(1) && dy.extent(2) == a.extent(2) &&
                     s.extent(0) == a.extent(1) && s.extent(1) == a.extent(2) && ds.extent(0) == s.extent(0) &&
                     ds.extent(1) == s.extent(1),
                 "modulate_rows_backward", "dy is (", dy.extent(0), ", ", dy.extent(1), ", ", dy.extent(2), "), a is (",
                 a.extent(0), ", ", a.extent(1), ", ", a.extent(2), "), s is (", s.extent(0), ", ", s.extent(1),
                 "), ds is (", ds.extent(0), ", ", ds.extent(1), ")");
  if (a.size() == 0) return;
  // ds first: da may overwrite dy.
  for_each_2d_blocks<16>("dcsldm::modulate_rows_grad_s", space, int(a.extent(1)), int(a.extent(2)),
                         Impl::ModulateRowsGradS<DYV, AV, SV, DSV>{dy, a, ds, int(a.extent(0))});
  if (da.data() != nullptr) modulate_rows(space, dy, s, da);
}

/// y(b, r0 + r, :) = value for r < rows.
template <class ExecSpace, class YV>
void fill_row_block(const ExecSpace& space, const YV& y, int r0, int rows, value_t<YV> value) {
  DCSLDM_REQUIRE(r0 >= 0 && std::size_t(r0 + rows) <= y.extent(1), "fill_row_block", "rows [", r0, ", ", r0 + rows,
                 ") out of range for S = ", y.extent(1));
  if (rows == 0 || y.extent(0) == 0 || y.extent(2) == 0) return;
  for_each_3d("dcsldm::fill_row_block", space, int(y.extent(0)), rows, int(y.extent(2)),
              Impl::FillRowBlock<YV>{y, r0, value});
}

/// y(b, r0 + r, :) += tab((r / div) % mod, :) for b < B, r < rows. y (B, S, D), tab (>= mod rows, D).
template <class ExecSpace, class YV, class TV>
void add_table_rows(const ExecSpace& space, const YV& y, int r0, int rows, const TV& tab, int div, int mod) {
  const char* op = "add_table_rows";
  DCSLDM_REQUIRE(div >= 1 && mod >= 1, op, "div = ", div, ", mod = ", mod, " must be >= 1");
  DCSLDM_REQUIRE(r0 >= 0 && std::size_t(r0 + rows) <= y.extent(1), op, "rows [", r0, ", ", r0 + rows,
                 ") out of range for S = ", y.extent(1));
  DCSLDM_REQUIRE(tab.extent(1) == y.extent(2), op, "table width ", tab.extent(1), " != D = ", y.extent(2));
  DCSLDM_REQUIRE(rows == 0 || std::size_t(std::min((rows - 1) / div, mod - 1)) < tab.extent(0), op, "table has ",
                 tab.extent(0), " rows, needs ", std::min((rows - 1) / div, mod - 1) + 1);
  if (rows == 0 || y.extent(0) == 0 || y.extent(2) == 0) return;
  for_each_3d("dcsldm::add_table_rows", space, int(y.extent(0)), rows, int(y.extent(2)),
              Impl::AddTableRows<YV, TV>{y, tab, r0, div, mod});
}

/// Gradient of add_table_rows: dtab(t, :) += sum over b and the rows r with (r / div) % mod == t of
/// dy(b, r0 + r, :), in a fixed order. dtab rows t < min(mod, ceil(rows / div)) are touched.
template <class ExecSpace, class DYV, class DTV>
void sum_table_rows(const ExecSpace& space, const DYV& dy, int r0, int rows, int div, int mod, const DTV& dtab) {
  const char* op = "sum_table_rows";
  DCSLDM_REQUIRE(div >= 1 && mod >= 1, op, "div = ", div, ", mod = ", mod, " must be >= 1");
  DCSLDM_REQUIRE(r0 >= 0 && std::size_t(r0 + rows) <= dy.extent(1), op, "rows [", r0, ", ", r0 + rows,
                 ") out of range for S = ", dy.extent(1));
  DCSLDM_REQUIRE(dtab.extent(1) == dy.extent(2), op, "table width ", dtab.extent(1), " != D = ", dy.extent(2));
  const int nt = rows == 0 ? 0 : std::min((rows - 1) / div, mod - 1) + 1;
  DCSLDM_REQUIRE(std::size_t(nt) <= dtab.extent(0), op, "table has ", dtab.extent(0), " rows, needs ", nt);
  if (nt == 0 || dy.extent(2) == 0) return;
  for_each_2d_blocks<16>("dcsldm::sum_table_rows", space, nt, int(dy.extent(2)),
                         Impl::SumTableRows<DYV, DTV>{dy, dtab, r0, rows, div, mod, int(dy.extent(0))});
}

/// dst(b, dst_r0 + r, :) = src(b, src_r0 + r, :) for r < rows.
template <class ExecSpace, class SV, class DV>
void copy_row_block(const ExecSpace& space, const SV& src, int src_r0, const DV& dst, int dst_r0, int rows) {
  const char* op = "copy_row_block";
  DCSLDM_REQUIRE(src.extent(0) == dst.extent(0) && src.extent(2) == dst.extent(2), op, "src is (", src.extent(0),
                 ", ", src.extent(1), ", ", src.extent(2), "), dst is (", dst.extent(0), ", ", dst.extent(1), ", ",
                 dst.extent(2), ")");
  DCSLDM_REQUIRE(src_r0 >= 0 && dst_r0 >= 0 && std::size_t(src_r0 + rows) <= src.extent(1) &&
                     std::size_t(dst_r0 + rows) <= dst.extent(1),
                 op, "rows out of range: src [", src_r0, ", ", src_r0 + rows, ") of ", src.extent(1), ", dst [",
                 dst_r0, ", ", dst_r0 + rows, ") of ", dst.extent(1));
  if (rows == 0 || src.extent(0) == 0 || src.extent(2) == 0) return;
  for_each_3d("dcsldm::copy_row_block", space, int(src.extent(0)), rows, int(src.extent(2)),
              Impl::CopyRowBlock<SV, DV>{src, dst, src_r0, dst_r0});
}

}  // namespace dcsldm::tok
