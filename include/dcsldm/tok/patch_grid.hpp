// dcsldm/tok/patch_grid.hpp: pixel and patch grids of the DCS-Tok tokenizer (scale-aware patchify,
// non-integer patch sizes), their device tables, and per-pixel / per-patch coordinate features.
//
// "Decoupling Complexity from Scale in Latent Diffusion Model" (Zhong et al. 2025): a sample is cut into
// a fixed number of patches, k along the shorter spatial side, so the patch size p = n / g (pixels per
// patch along an axis with n pixels and g patches) need not be an integer. Along every axis pixel i has
// the continuous coordinate u = (i + 0.5) * g / n in patch units; its patch is floor(u) and its in-patch
// position frac(u). Every computation of a pixel's patch in dcsldm uses the exact integer form
//   patch(i) = floor((2i + 1) g / (2n)),   frac(i) = ((2i + 1) g - 2n patch(i)) / (2n),
// so host tables, device kernels and the PyTorch reference agree bit for bit on the assignment.
#pragma once

#include <dcsldm/core/compat.hpp>
#include <dcsldm/core/error.hpp>
#include <dcsldm/core/types.hpp>

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

namespace dcsldm::tok {

/// Pixel grid and patch grid of one sample (the same for the whole batch).
struct PatchGrid {
  int t = 1, h = 0, w = 0;     ///< frames, rows, cols (pixels)
  int gt = 1, gh = 0, gw = 0;  ///< patches per axis
  KOKKOS_INLINE_FUNCTION int num_pixels() const { return t * h * w; }
  KOKKOS_INLINE_FUNCTION int num_patches() const { return gt * gh * gw; }
  /// Patch size in pixels per axis, n / g (may be non-integer).
  KOKKOS_INLINE_FUNCTION double pt() const { return double(t) / double(gt); }
  KOKKOS_INLINE_FUNCTION double ph() const { return double(h) / double(gh); }
  KOKKOS_INLINE_FUNCTION double pw() const { return double(w) / double(gw); }
};

namespace Impl {

/// floor(a / b) for b > 0 and any sign of a.
inline long long floor_div(long long a, long long b) {
  const long long q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

inline void check_patch_grid(const char* op, const PatchGrid& g) {
  DCSLDM_REQUIRE(g.t >= 1 && g.h >= 1 && g.w >= 1, op, "pixel grid (t, h, w) = (", g.t, ", ", g.h, ", ", g.w,
                 "), expected every extent >= 1");
  DCSLDM_REQUIRE(g.gt >= 1 && g.gh >= 1 && g.gw >= 1, op, "patch grid (gt, gh, gw) = (", g.gt, ", ", g.gh, ", ",
                 g.gw, "), expected every extent >= 1");
  DCSLDM_REQUIRE(g.gt <= g.t && g.gh <= g.h && g.gw <= g.w, op, "patch grid (gt, gh, gw) = (", g.gt, ", ", g.gh,
                 ", ", g.gw, ") has more patches than pixels (t, h, w) = (", g.t, ", ", g.h, ", ", g.w,
                 ") along an axis: a patch must hold at least one pixel");
  DCSLDM_REQUIRE(double(g.t) * g.h * g.w < 2147483647.0, op, "t * h * w = ", double(g.t) * g.h * g.w,
                 " pixels, expected < 2^31");
}

/// The grid of an edge blend's read-out entries (PatchTables::scattered): rows and columns of entries, grouped by
/// patch through the tables' starts (one more than the patches per axis), may hold fewer rows or columns than
/// patches (a patch without entries); the entries listed lie inside it.
template <class Tables>
void check_entry_grid(const char* op, const Tables& tab) {
  const PatchGrid& g = tab.grid;
  DCSLDM_REQUIRE(g.t >= 1 && g.h >= 1 && g.w >= 1 && g.gt >= 1 && g.gh >= 1 && g.gw >= 1 &&
                     double(g.t) * g.h * g.w < 2147483647.0,
                 op, "grid of read-out entries (t, h, w) = (", g.t, ", ", g.h, ", ", g.w, ") of patches (", g.gt, ", ",
                 g.gh, ", ", g.gw, "), expected every extent >= 1 and fewer than 2^31 entries");
  DCSLDM_REQUIRE(tab.t_start.extent(0) == std::size_t(g.gt) + 1 && tab.y_start.extent(0) == std::size_t(g.gh) + 1 &&
                     tab.x_start.extent(0) == std::size_t(g.gw) + 1,
                 op, "grid of read-out entries: starts of ", tab.t_start.extent(0), ", ", tab.y_start.extent(0), ", ",
                 tab.x_start.extent(0), " entries, expected one more than the patches (", g.gt, ", ", g.gh, ", ", g.gw,
                 ")");
  DCSLDM_REQUIRE(tab.first_pixel >= 0 && double(tab.first_pixel) + tab.pixels() <= double(g.t) * g.h * g.w, op,
                 "read-out entries [", tab.first_pixel, ", ", double(tab.first_pixel) + tab.pixels(), ") of a grid of ",
                 double(g.t) * g.h * g.w);
}

/// Patch of pixel i on an axis with n pixels and g patches: floor((2i+1) g / (2n)) (device-callable).
KOKKOS_INLINE_FUNCTION int axis_patch(int i, int n, int g) {
  const long long p = ((2LL * i + 1) * g) / (2LL * n);
  return p < g ? int(p) : g - 1;
}

/// In-patch position frac(u) of pixel i, u = (i + 0.5) g / n: exact numerator, one rounding.
template <class A>
KOKKOS_INLINE_FUNCTION A axis_frac(int i, int n, int g) {
  const long long num = (2LL * i + 1) * g, den = 2LL * n;
  const long long p = axis_patch(i, n, g);
  return A(num - p * den) / A(den);
}

}  // namespace Impl

/// The smallest distance from a patch edge, in patch units, of any pixel of square outputs of the given sizes
/// (scale-aware grids with k patches per side): min over pixels of min(frac, 1 - frac). A decoder trained on those
/// sizes has read its pixels out at no position closer to an edge (TokenizerConfig::edge_margin_out). 0 for an
/// empty list.
inline double training_edge_margin(int k, const std::vector<int>& sizes) {
  double e = 0;
  bool any = false;
  for (int n : sizes) {
    DCSLDM_REQUIRE(n >= k && k >= 1, "training_edge_margin", "size ", n, " px with k = ", k,
                   " patches: expected k >= 1 and at least one pixel per patch");
    for (int i = 0; i < n; ++i) {
      const double f = Impl::axis_frac<double>(i, n, k), d = f < 1 - f ? f : 1 - f;
      if (!any || d < e) e = d;
      any = true;
    }
  }
  return e;
}

/// The read-out entries of one axis of an edge-blended decode (TokenizerConfig::edge_margin_out): pixel i reads
/// patch patch[2i] at in-patch position frac[2i] with weight weight[2i], plus patch[2i + 1] at frac[2i + 1] with
/// weight[2i + 1] where that weight is > 0 (band: the pixels that take a second entry). With margin e, a pixel at
/// in-patch position u of patch j:
///   - e <= u <= 1 - e: (j, u, 1) (unchanged);
///   - u < e and j > 0: (j, e, s), (j - 1, 1 - e, 1 - s), s = (u + e) / (2e), the linear blend across the band
///     [j - e, j + e] between the positions at the margin on both sides; likewise u > 1 - e and j < g - 1;
///   - u < e at j = 0, u > 1 - e at j = g - 1 (the outer border): (j, e or 1 - e, 1).
/// Positions within 1e-9 of the margin count as at it (the blend's weight is continuous there). Entry 0 is always
/// the pixel's own patch. `changed`: some pixel's entries differ from (own patch, own position, 1).
template <class A>
struct EdgeBlendAxis {
  std::vector<int> patch;
  std::vector<A> frac, weight;
  std::vector<int> band;  ///< the pixels with a second entry, ascending
  bool changed = false;
};

template <class A>
EdgeBlendAxis<A> edge_blend_axis(int n, int g, double margin) {
  DCSLDM_REQUIRE(n >= 1 && g >= 1 && g <= n, "edge_blend_axis", "n = ", n, ", g = ", g,
                 ", expected 1 <= g <= n (a patch must hold at least one pixel)");
  DCSLDM_REQUIRE(margin >= 0 && margin <= 0.5, "edge_blend_axis", "margin = ", margin, ", expected [0, 0.5]");
  constexpr double tol = 1e-9;
  EdgeBlendAxis<A> ax;
  ax.patch.assign(2 * std::size_t(n), 0);
  ax.frac.assign(2 * std::size_t(n), A(0));
  ax.weight.assign(2 * std::size_t(n), A(0));
  const double e = margin;
  for (int i = 0; i < n; ++i) {
    const std::size_t a = 2 * std::size_t(i), b = a + 1;
    const int j = Impl::axis_patch(i, n, g);
    const double u = double(Impl::axis_frac<A>(i, n, g));
    ax.patch[a] = ax.patch[b] = j;
    ax.frac[a] = Impl::axis_frac<A>(i, n, g);
    ax.weight[a] = A(1);
    if (e <= 0) continue;
    const bool low = u < e - tol, high = u > 1 - e + tol;
    if (!low && !high) continue;
    ax.changed = true;
    ax.frac[a] = A(low ? e : 1 - e);
    if ((low && j == 0) || (high && j == g - 1)) continue;  // the outer border: clamped
    const double s = low ? (u + e) / (2 * e) : (u - (1 - e)) / (2 * e);  // 0 at the band's lower side
    ax.weight[a] = A(low ? s : 1 - s);
    ax.patch[b] = low ? j - 1 : j + 1;
    ax.frac[b] = A(low ? 1 - e : e);
    ax.weight[b] = A(low ? 1 - s : s);
    ax.band.push_back(i);
  }
  return ax;
}

/// Pixel ranges of the g patches of an axis with n pixels: patch j holds pixels [start[j], start[j+1]).
/// start[j] = smallest i with (i + 0.5) g / n >= j = ceil((2jn - g) / (2g)), clamped to [0, n], in exact
/// integer arithmetic; start has g + 1 entries, start[0] = 0, start[g] = n. Requires 1 <= g <= n.
inline std::vector<int> axis_starts(int n, int g) {
  DCSLDM_REQUIRE(n >= 1 && g >= 1 && g <= n, "axis_starts", "n = ", n, ", g = ", g,
                 ", expected 1 <= g <= n (a patch must hold at least one pixel)");
  std::vector<int> s(std::size_t(g) + 1);
  for (int j = 0; j <= g; ++j) {
    const long long num = 2LL * j * n - g, den = 2LL * g;
    long long c = -Impl::floor_div(-num, den);  // ceil(num / den)
    c = c < 0 ? 0 : (c > n ? n : c);
    s[std::size_t(j)] = int(c);
  }
  return s;
}

/// Explicit patch counts (e.g. to decode the same latent grid to another pixel size).
/// Requires t, h, w >= 1, gt, gh, gw >= 1 and gt <= t, gh <= h, gw <= w.
inline PatchGrid make_patch_grid(int t, int h, int w, int gt, int gh, int gw) {
  PatchGrid g;
  g.t = t;
  g.h = h;
  g.w = w;
  g.gt = gt;
  g.gh = gh;
  g.gw = gw;
  Impl::check_patch_grid("make_patch_grid", g);
  return g;
}

/// Scale-aware patchify: k patches along the shorter spatial side, round(k * max(h,w) / min(h,w)) (>= 1,
/// halves rounded up, exact integer arithmetic) along the longer one. Time: gt = 1 when t == 1 or
/// kt <= 0, else max(1, round(kt * t / fps)) (kt patches per second, fps frames per second; fps > 0).
/// Requires k >= 1, t, h, w >= 1 and gt <= t, gh <= h, gw <= w.
inline PatchGrid scale_aware_grid(int t, int h, int w, int k, double kt = 0, double fps = 0) {
  const char* op = "scale_aware_grid";
  DCSLDM_REQUIRE(k >= 1, op, "k = ", k, ", expected >= 1 patches along the shorter side");
  DCSLDM_REQUIRE(t >= 1 && h >= 1 && w >= 1, op, "pixel grid (t, h, w) = (", t, ", ", h, ", ", w,
                 "), expected every extent >= 1");
  const long long s = h < w ? h : w, l = h < w ? w : h;
  long long gl = (2LL * k * l + s) / (2 * s);  // round(k * l / s), halves up
  if (gl < 1) gl = 1;
  int gt = 1;
  if (t > 1 && kt > 0) {
    DCSLDM_REQUIRE(fps > 0, op, "fps = ", fps, ", expected > 0 for a video (t = ", t, ", kt = ", kt, ")");
    const double r = std::round(kt * double(t) / fps);
    DCSLDM_REQUIRE(r <= double(t), op, "gt = round(kt * t / fps) = ", r, " (kt = ", kt, ", t = ", t, ", fps = ", fps,
                   ") has more patches than frames: a patch must hold at least one frame");
    gt = r < 1 ? 1 : int(r);
  }
  PatchGrid g;
  g.t = t;
  g.h = h;
  g.w = w;
  g.gt = gt;
  g.gh = int(h <= w ? k : gl);
  g.gw = int(h <= w ? gl : k);
  Impl::check_patch_grid(op, g);
  return g;
}

/// Device tables of a grid, built once on the host (allocates; outside hot paths). The tables cover the
/// pixels [first_pixel, first_pixel + pixels()) in row-major (t, y, x) order: all of them for
/// make_patch_tables, one tile of a tiled pass for select_pixel_tile (tok/tokenizer.hpp's tiled decode).
template <class MemSpace>
struct PatchTables {
  PatchGrid grid;
  Kokkos::View<int*, MemSpace> t_start, y_start, x_start;  ///< axis_starts per axis (g + 1 entries)
  Kokkos::View<int*, MemSpace> pixel_patch;                ///< (pixels()) patch (pt * gh + py) * gw + px
  int first_pixel = 0;                                     ///< the pixel of pixel_patch(0)
  /// The tables list read-out entries, not the output grid's pixels (an edge-blended decode's entries of
  /// neighbouring patches, tok/tokenizer.hpp neighbour_pass_tables): grid.h, grid.w count the entries' rows and
  /// columns and the starts group them by patch, which a forward read-out may walk as it walks pixels; there is
  /// no backward over them and no patchifier read-out. Inference only.
  bool scattered = false;

  int pixels() const { return int(pixel_patch.extent(0)); }
  bool covers_grid() const { return first_pixel == 0 && pixels() == grid.num_pixels() && !scattered; }
};

namespace Impl {

/// A host vector copied into a new View of the memory space (host call; allocates).
template <class MemSpace, class V>
Kokkos::View<V*, MemSpace> upload_vector(const char* label, const std::vector<V>& v) {
  Kokkos::View<V*, MemSpace> d(std::string(label), v.size());
  auto h = Kokkos::create_mirror_view(d);
  for (std::size_t i = 0; i < v.size(); ++i) h(i) = v[i];
  Kokkos::deep_copy(d, h);
  return d;
}

template <class MemSpace>
PatchTables<MemSpace> axis_tables(const char* op, const PatchGrid& g) {
  check_patch_grid(op, g);
  PatchTables<MemSpace> tab;
  tab.grid = g;
  tab.t_start = upload_vector<MemSpace>("dcsldm::patch_t_start", axis_starts(g.t, g.gt));
  tab.y_start = upload_vector<MemSpace>("dcsldm::patch_y_start", axis_starts(g.h, g.gh));
  tab.x_start = upload_vector<MemSpace>("dcsldm::patch_x_start", axis_starts(g.w, g.gw));
  return tab;
}

/// pixel_patch(i) = the patch of pixel first + i (row-major (t, y, x) over g).
template <class M>
struct PixelPatch {
  Kokkos::View<int*, M> pixel_patch;
  PatchGrid g;
  int first;
  KOKKOS_INLINE_FUNCTION void operator()(const int i) const {
    const int p = first + i, x = p % g.w, r = p / g.w, y = r % g.h, t = r / g.h;
    pixel_patch(i) = (axis_patch(t, g.t, g.gt) * g.gh + axis_patch(y, g.h, g.gh)) * g.gw + axis_patch(x, g.w, g.gw);
  }
};

}  // namespace Impl

/// Builds the device tables of grid g, every pixel (host call; allocates, fills on the memory space's
/// default execution space and fences).
template <class MemSpace>
PatchTables<MemSpace> make_patch_tables(const PatchGrid& g) {
  using Exec = typename MemSpace::execution_space;
  PatchTables<MemSpace> tab = Impl::axis_tables<MemSpace>("make_patch_tables", g);
  tab.pixel_patch = Kokkos::View<int*, MemSpace>("dcsldm::pixel_patch", std::size_t(g.num_pixels()));
  Kokkos::parallel_for("dcsldm::pixel_patch", Kokkos::RangePolicy<Exec, Kokkos::IndexType<int>>(Exec(), 0, g.num_pixels()),
                       Impl::PixelPatch<MemSpace>{tab.pixel_patch, g, 0});
  Exec().fence();
  return tab;
}

/// The tables of a tiled pass over g: the axis starts and room for the patch indices of `capacity` pixels
/// (filled per tile by select_pixel_tile). Memory is O(capacity), not O(pixels of g). Host call; allocates.
template <class MemSpace>
PatchTables<MemSpace> make_tile_tables(const PatchGrid& g, int capacity) {
  PatchTables<MemSpace> tab = Impl::axis_tables<MemSpace>("make_tile_tables", g);
  DCSLDM_REQUIRE(capacity >= 1, "make_tile_tables", "capacity = ", capacity, " pixels, expected >= 1");
  tab.pixel_patch = Kokkos::View<int*, MemSpace>("dcsldm::pixel_patch_tile", std::size_t(capacity));
  return tab;
}

/// The tables of pixels [first, first + count) of g: pixel_patch is the first `count` entries of
/// tiles.pixel_patch (from make_tile_tables), written by a kernel on `space`. No allocation.
template <class ExecSpace, class M>
PatchTables<M> select_pixel_tile(const ExecSpace& space, const PatchTables<M>& tiles, int first, int count) {
  const PatchGrid& g = tiles.grid;
  DCSLDM_REQUIRE(first >= 0 && count >= 1 && count <= int(tiles.pixel_patch.extent(0)) &&
                     double(first) + count <= double(g.num_pixels()),
                 "select_pixel_tile", "pixels [", first, ", ", double(first) + count, ") with room for ",
                 tiles.pixel_patch.extent(0), " of a grid of ", g.num_pixels(), " pixels");
  PatchTables<M> t = tiles;
  t.first_pixel = first;
  t.pixel_patch = Kokkos::View<int*, M>(tiles.pixel_patch.data(), std::size_t(count));
  Kokkos::parallel_for("dcsldm::pixel_patch_tile", Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<int>>(space, 0, count),
                       Impl::PixelPatch<M>{t.pixel_patch, g, first});
  return t;
}

namespace Impl {

template <class CV>
struct PixelCoords {
  using T = value_t<CV>;
  using A = accum_t<T>;
  CV coords;  // (pixels, 6)
  PatchGrid g;
  int first;
  double floor;  // of the spatial cells
  KOKKOS_INLINE_FUNCTION void operator()(const int i) const {
    const int p = first + i, x = p % g.w, r = p / g.w, y = r % g.h, t = r / g.h;
    coords(i, 0) = T(axis_frac<A>(t, g.t, g.gt));
    coords(i, 1) = T(axis_frac<A>(y, g.h, g.gh));
    coords(i, 2) = T(axis_frac<A>(x, g.w, g.gw));
    coords(i, 3) = T(A(g.gt) / A(g.t));
    const A ch = A(g.gh) / A(g.h), cw = A(g.gw) / A(g.w), f = A(floor);
    coords(i, 4) = T(ch < f ? f : ch);
    coords(i, 5) = T(cw < f ? f : cw);
  }
};

template <class CV>
struct PatchCentres {
  using T = value_t<CV>;
  using A = accum_t<T>;
  CV centres;  // (num_patches, 3)
  PatchGrid g;
  KOKKOS_INLINE_FUNCTION void operator()(const int p) const {
    const int px = p % g.gw, r = p / g.gw, py = r % g.gh, pt = r / g.gh;
    centres(p, 0) = T((A(pt) + A(0.5)) / A(g.gt));
    centres(p, 1) = T((A(py) + A(0.5)) / A(g.gh));
    centres(p, 2) = T((A(px) + A(0.5)) / A(g.gw));
  }
};

}  // namespace Impl

/// Per-pixel coordinate features, row-major pixel order (t, y, x):
///   coords(p, :) = [frac_t, frac_y, frac_x, cell_t, cell_y, cell_x],
/// frac = in-patch position frac((i + 0.5) g / n), cell = g / n (the pixel footprint in patch units), the
/// spatial cells raised to at least `cell_floor` (TokenizerConfig::cell_floor_in / _out; 0: none).
/// coords (tab.pixels(), 6) written (=): row i is pixel tab.first_pixel + i.
template <class ExecSpace, class CV, class M>
void pixel_coords(const ExecSpace& space, const PatchTables<M>& tab, const CV& coords, double cell_floor = 0) {
  static_assert(CV::rank == 2, "pixel_coords: coords is a rank-2 View (pixels, 6)");
  const PatchGrid& g = tab.grid;
  DCSLDM_REQUIRE(coords.extent(0) == std::size_t(tab.pixels()) && coords.extent(1) == 6, "pixel_coords",
                 "coords is (", coords.extent(0), ", ", coords.extent(1), "), expected (pixels, 6) = (", tab.pixels(),
                 ", 6)");
  Kokkos::parallel_for("dcsldm::pixel_coords",
                       Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<int>>(space, 0, tab.pixels()),
                       Impl::PixelCoords<CV>{coords, g, tab.first_pixel, cell_floor});
}

/// Patch centres normalised to [0, 1] per axis: centres(P, :) = [(pt+0.5)/gt, (py+0.5)/gh, (px+0.5)/gw],
/// P = (pt * gh + py) * gw + px. centres (num_patches, 3) written (=).
template <class ExecSpace, class CV, class M>
void patch_centres(const ExecSpace& space, const PatchTables<M>& tab, const CV& centres) {
  static_assert(CV::rank == 2, "patch_centres: centres is a rank-2 View (num_patches, 3)");
  const PatchGrid& g = tab.grid;
  DCSLDM_REQUIRE(centres.extent(0) == std::size_t(g.num_patches()) && centres.extent(1) == 3, "patch_centres",
                 "centres is (", centres.extent(0), ", ", centres.extent(1), "), expected (num_patches, 3) = (",
                 g.num_patches(), ", 3)");
  Kokkos::parallel_for("dcsldm::patch_centres",
                       Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<int>>(space, 0, g.num_patches()),
                       Impl::PatchCentres<CV>{centres, g});
}

namespace Impl {

/// sum_d a[d] * b[d] over n contiguous entries, with four partial sums in a fixed order (the result does
/// not depend on threads or backends). Shared by the pixel-level attention kernels.
template <class A, class TA, class TB>
KOKKOS_INLINE_FUNCTION A dot_n(const TA* a, const TB* b, int n) {
  A s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int d = 0;
  for (; d + 4 <= n; d += 4) {
    s0 += A(a[d]) * A(b[d]);
    s1 += A(a[d + 1]) * A(b[d + 1]);
    s2 += A(a[d + 2]) * A(b[d + 2]);
    s3 += A(a[d + 3]) * A(b[d + 3]);
  }
  for (; d < n; ++d) s0 += A(a[d]) * A(b[d]);
  return (s0 + s1) + (s2 + s3);
}

/// Shape checks shared by the pixel-attention ops: a View whose last dimension has unit stride.
template <class V>
void require_unit_inner_stride(const char* op, const char* name, const V& v) {
  DCSLDM_REQUIRE(v.extent(V::rank - 1) <= 1 || v.stride(V::rank - 1) == 1, op, name,
                 " must have unit stride in its last dimension (stride ", v.stride(V::rank - 1), ")");
}

template <class V>
void require_extents3(const char* op, const char* name, const V& v, std::size_t e0, std::size_t e1, std::size_t e2) {
  static_assert(V::rank == 3, "rank-3 View expected");
  DCSLDM_REQUIRE(v.extent(0) == e0 && v.extent(1) == e1 && v.extent(2) == e2, op, name, " is (", v.extent(0), ", ",
                 v.extent(1), ", ", v.extent(2), "), expected (", e0, ", ", e1, ", ", e2, ")");
}

template <class V>
void require_extents2(const char* op, const char* name, const V& v, std::size_t e0, std::size_t e1) {
  static_assert(V::rank == 2, "rank-2 View expected");
  DCSLDM_REQUIRE(v.extent(0) == e0 && v.extent(1) == e1, op, name, " is (", v.extent(0), ", ", v.extent(1),
                 "), expected (", e0, ", ", e1, ")");
}

/// Pixel range of patch P (device-callable): [t0, t1) x [y0, y1) x [x0, x1).
template <class IV>
struct PatchBox {
  int t0, t1, y0, y1, x0, x1;
  KOKKOS_INLINE_FUNCTION PatchBox(const IV& ts, const IV& ys, const IV& xs, int pt, int py, int px)
      : t0(ts(pt)), t1(ts(pt + 1)), y0(ys(py)), y1(ys(py + 1)), x0(xs(px)), x1(xs(px + 1)) {}
};

/// Head-dimension chunk of the per-thread accumulators of the pixel-level attention kernels: head
/// dimensions up to this are done in one pass over the keys, larger ones in ceil(hd / chunk) passes.
inline constexpr int pixel_attention_chunk = 32;

}  // namespace Impl

}  // namespace dcsldm::tok
