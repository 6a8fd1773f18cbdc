// Pixel-level attention of DCS-Tok: patch-pool attention (encoder read-out) and neighbourhood attention
// (decoder read). PyTorch parity (float and double) of forward and every gradient on non-integer grids, an
// image, a 3-frame video and a head dimension above the kernels' accumulator chunk; += / = semantics;
// central finite-difference gradients (double) of every input and parameter; strided kv; batch 0; a
// single patch; bit-identical repeated runs; OpenMP against Serial; errors.
#include <dcsldm/tok/neighbour_attention.hpp>
#include <dcsldm/tok/patch_grid.hpp>
#include <dcsldm/tok/patch_pool_attention.hpp>

#include "testing.hpp"

using namespace dcsldm;
using test::ExecSpaces;

namespace {

tok::PatchGrid golden_grid(const test::Golden& g) {
  return tok::make_patch_grid(int(g.meta_int("t")), int(g.meta_int("h")), int(g.meta_int("w")), int(g.meta_int("gt")),
                              int(g.meta_int("gh")), int(g.meta_int("gw")));
}

std::vector<double> times(std::vector<double> v, double f) {
  for (double& x : v) x *= f;
  return v;
}

/// Forward once, backward twice: parameter gradients (pool dq; neighbour drel) must be twice the golden,
/// activation gradients (dkv; neighbour dq) equal to it (written, not accumulated).
template <class ExecSpace, class T>
void check_pool_golden(const std::string& name) {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  test::Golden g(name);
  const auto grid = golden_grid(g);
  const int heads = int(g.meta_int("heads")), n = int(g.meta_int("n")), e = int(g.meta_int("width"));
  auto kv = g.view<T, Mem, 3>("kv");
  auto q = g.view<T, Mem, 2>("q");
  auto dy = g.view<T, Mem, 3>("dy");
  const std::size_t b = kv.extent(0);
  auto tab = tok::make_patch_tables<Mem>(grid);
  View3<T, Mem> y("y", b, grid.num_patches() * n, e), dkv("dkv", b, grid.num_pixels(), 2 * e);
  View2<T, Mem> dq("dq", n, e);
  Kokkos::deep_copy(dkv, T(7));
  auto cache = tok::make_patch_pool_cache<T, Mem>(b, grid, n, e, heads);
  auto ws = tok::make_patch_pool_workspace<T, Mem>(b, grid, n, e, heads);
  tok::patch_pool_attention_forward(space, kv, q, tab, heads, y, cache);
  for (int pass = 0; pass < 2; ++pass)
    tok::patch_pool_attention_backward(space, dy, kv, q, dq, tab, heads, cache, ws, dkv);
  const double tol = test::parity_tol<T>();
  INFO(name << (std::is_same_v<T, float> ? " float" : " double") << ": y " << g.error(y, "y") << ", dkv "
            << g.error(dkv, "dkv") << ", dq " << test::rel_error(test::to_doubles(dq), times(g.values("dq"), 2)));
  CHECK(g.error(y, "y") < tol);
  CHECK(g.error(cache.out, "y") < tol);
  CHECK(g.error(dkv, "dkv") < tol);
  CHECK(test::rel_error(test::to_doubles(dq), times(g.values("dq"), 2)) < tol);
}

template <class ExecSpace, class T>
void check_neighbour_golden(const std::string& name) {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  test::Golden g(name);
  const auto grid = golden_grid(g);
  const int heads = int(g.meta_int("heads")), n = int(g.meta_int("n")), e = int(g.meta_int("width"));
  auto q = g.view<T, Mem, 2>("q");
  auto kv = g.view<T, Mem, 3>("kv");
  auto rel = g.view<T, Mem, 2>("rel");
  auto dy = g.view<T, Mem, 3>("dy");
  const std::size_t b = kv.extent(0);
  auto tab = tok::make_patch_tables<Mem>(grid);
  View3<T, Mem> y("y", b, grid.num_pixels(), e), dkv("dkv", b, grid.num_patches() * n, 2 * e);
  View2<T, Mem> dq("dq", grid.num_pixels(), e), drel("drel", 27 * n, e);
  Kokkos::deep_copy(dkv, T(7));
  Kokkos::deep_copy(dq, T(7));
  auto cache = tok::make_neighbour_cache<T, Mem>(b, grid, n, e, heads);
  auto ws = tok::make_neighbour_workspace<T, Mem>(b, grid, n, e, heads);
  tok::neighbour_attention_forward(space, q, kv, rel, tab, n, heads, y, cache);
  for (int pass = 0; pass < 2; ++pass)
    tok::neighbour_attention_backward(space, dy, q, kv, rel, drel, tab, n, heads, cache, ws, dq, dkv);
  const double tol = test::parity_tol<T>();
  const double drel_err = test::rel_error(test::to_doubles(drel), times(g.values("drel"), 2));
  INFO(name << (std::is_same_v<T, float> ? " float" : " double") << ": y " << g.error(y, "y") << ", dq "
            << g.error(dq, "dq") << ", dkv " << g.error(dkv, "dkv") << ", drel " << drel_err);
  CHECK(g.error(y, "y") < tol);
  CHECK(g.error(dq, "dq") < tol);
  CHECK(g.error(dkv, "dkv") < tol);
  CHECK(drel_err < tol);
}

struct PixelCase {
  int t, h, w, gt, gh, gw, b, n, e, heads;
  double fd_tol = 1e-6;  ///< relative tolerance of the finite-difference checks
};

std::ostream& operator<<(std::ostream& os, const PixelCase& c) {
  return os << "pixels (" << c.t << ", " << c.h << ", " << c.w << ") patches (" << c.gt << ", " << c.gh << ", " << c.gw
            << ") B=" << c.b << " n=" << c.n << " E=" << c.e << " H=" << c.heads;
}

/// Tables of a window of pixels [first, first + count) (a training decode's random window): the forward gives
/// the window's rows of the whole-grid output, and the backward from dy on the window gives the whole-grid
/// gradients of a dy that is zero outside it (host patch kernel and per-pixel kernels alike).
template <class ExecSpace>
void check_neighbour_windows(const PixelCase& c, const tok::PatchGrid& grid, const View2<double, typename ExecSpace::memory_space>& q,
                             const View3<double, typename ExecSpace::memory_space>& kv,
                             const View2<double, typename ExecSpace::memory_space>& rel,
                             const View3<double, typename ExecSpace::memory_space>& proj) {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  const int npix = grid.num_pixels(), rows = grid.num_patches() * c.n;
  auto full = tok::make_patch_tables<Mem>(grid);
  View3<double, Mem> y("y", c.b, npix, c.e), masked("masked", c.b, npix, c.e), dkv("dkv", c.b, rows, 2 * c.e);
  View2<double, Mem> dq("dq", npix, c.e), drel("drel", 27 * c.n, c.e);
  auto cache = tok::make_neighbour_cache<double, Mem>(c.b, grid, c.n, c.e, c.heads);
  auto ws = tok::make_neighbour_workspace<double, Mem>(c.b, grid, c.n, c.e, c.heads);
  tok::neighbour_attention_forward(space, q, kv, rel, full, c.n, c.heads, y, cache);
  const auto hy = test::to_doubles(y);
  // Windows: the first pixels, a middle range that starts and ends inside rows, the last pixels, one pixel.
  const std::vector<std::pair<int, int>> windows{
      {0, std::max(1, npix / 3)}, {npix / 4 + 1, std::max(1, npix / 2 - 3)}, {npix - std::max(1, npix / 5), std::max(1, npix / 5)},
      {npix / 2, 1}};
  for (auto [first, count] : windows) {
    first = std::min(first, npix - 1);
    count = std::min(count, npix - first);
    INFO("window [" << first << ", " << first + count << ") of " << npix);
    auto tiles = tok::make_tile_tables<Mem>(grid, count);
    const auto tab = tok::select_pixel_tile(space, tiles, first, count);
    View2<double, Mem> qw("qw", count, c.e), dqw("dqw", count, c.e), drelw("drelw", 27 * c.n, c.e);
    View3<double, Mem> yw("yw", c.b, count, c.e), dyw("dyw", c.b, count, c.e), dkvw("dkvw", c.b, rows, 2 * c.e);
    Kokkos::deep_copy(qw, Kokkos::subview(q, std::make_pair(first, first + count), Kokkos::ALL));
    Kokkos::deep_copy(dyw, Kokkos::subview(proj, Kokkos::ALL, std::make_pair(first, first + count), Kokkos::ALL));
    auto wcache = tok::make_neighbour_cache<double, Mem>(c.b, count, c.n, c.e, c.heads);
    auto wws = tok::make_neighbour_workspace<double, Mem>(c.b, grid, count, c.n, c.e, c.heads);
    tok::neighbour_attention_forward(space, qw, kv, rel, tab, c.n, c.heads, yw, wcache);
    const auto hyw = test::to_doubles(yw);
    double ydiff = 0;
    for (int b = 0; b < c.b; ++b)
      for (int i = 0; i < count; ++i)
        for (int d = 0; d < c.e; ++d)
          ydiff = std::max(ydiff, std::abs(hyw[(std::size_t(b) * count + i) * c.e + d] -
                                           hy[(std::size_t(b) * npix + first + i) * c.e + d]));
    CHECK(ydiff == 0);
    // The reference: the whole grid's backward from proj masked to the window.
    Kokkos::deep_copy(masked, 0.0);
    Kokkos::deep_copy(Kokkos::subview(masked, Kokkos::ALL, std::make_pair(first, first + count), Kokkos::ALL), dyw);
    Kokkos::deep_copy(drel, 0.0);
    tok::neighbour_attention_backward(space, masked, q, kv, rel, drel, full, c.n, c.heads, cache, ws, dq, dkv);
    const auto dq_ref = test::to_doubles(Kokkos::subview(dq, std::make_pair(first, first + count), Kokkos::ALL));
    for (int pass = 0; pass < 2; ++pass) {  // host patch kernel, then the per-pixel kernels of devices
      auto wsp = wws;
      if (pass == 1) wsp.kv_part = View4<double, Mem>();
      Kokkos::deep_copy(drelw, 0.0);
      tok::neighbour_attention_backward(space, dyw, qw, kv, rel, drelw, tab, c.n, c.heads, wcache, wsp, dqw, dkvw);
      INFO("pass " << pass);
      CHECK(test::rel_error(test::to_doubles(dqw), dq_ref) < 1e-12);
      CHECK(test::rel_error_views(dkvw, dkv) < 1e-12);
      CHECK(test::rel_error_views(drelw, drel) < 1e-12);
    }
  }
}

template <class ExecSpace>
void check_pool_gradients(const PixelCase& c) {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  INFO("patch pool " << c);
  const auto grid = tok::make_patch_grid(c.t, c.h, c.w, c.gt, c.gh, c.gw);
  auto tab = tok::make_patch_tables<Mem>(grid);
  const int rows = grid.num_patches() * c.n, npix = grid.num_pixels();
  View3<double, Mem> kv("kv", c.b, npix, 2 * c.e), dkv("dkv", c.b, npix, 2 * c.e);
  View2<double, Mem> q("q", c.n, c.e), dq("dq", c.n, c.e);
  View3<double, Mem> y("y", c.b, rows, c.e), proj("proj", c.b, rows, c.e);
  test::fill_uniform(kv, 401, -2, 2);
  test::fill_uniform(q, 402, -2, 2);
  test::fill_uniform(proj, 403);
  Kokkos::deep_copy(dkv, 7.0);
  auto cache = tok::make_patch_pool_cache<double, Mem>(c.b, grid, c.n, c.e, c.heads);
  auto ws = tok::make_patch_pool_workspace<double, Mem>(c.b, grid, c.n, c.e, c.heads);
  auto loss = [&] {
    tok::patch_pool_attention_forward(space, kv, q, tab, c.heads, y, cache);
    return test::dot(y, proj);
  };
  loss();
  tok::patch_pool_attention_backward(space, proj, kv, q, dq, tab, c.heads, cache, ws, dkv);
  for (double v : test::to_doubles(y)) REQUIRE(std::isfinite(v));
  // dq accumulates: a second backward doubles it exactly; dkv is overwritten with the same values.
  const auto dq1 = test::to_doubles(dq), dkv1 = test::to_doubles(dkv);
  tok::patch_pool_attention_backward(space, proj, kv, q, dq, tab, c.heads, cache, ws, dkv);
  CHECK(test::rel_error(test::to_doubles(dq), times(dq1, 2)) == 0);
  CHECK(test::rel_error(test::to_doubles(dkv), dkv1) == 0);
  Kokkos::deep_copy(dq, 0.0);
  tok::patch_pool_attention_backward(space, proj, kv, q, dq, tab, c.heads, cache, ws, dkv);
  // h = 1e-5: the losses sum up to B*P*n*E terms; truncation error h^2 stays far below the tolerance.
  test::check_gradient("patch pool dkv", space, kv, dkv, loss, 1e-5, 1e-6, 40);
  test::check_gradient("patch pool dq", space, q, dq, loss, 1e-5, 1e-6, 40);
}

template <class ExecSpace>
void check_neighbour_gradients(const PixelCase& c) {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  INFO("neighbour " << c);
  const auto grid = tok::make_patch_grid(c.t, c.h, c.w, c.gt, c.gh, c.gw);
  auto tab = tok::make_patch_tables<Mem>(grid);
  const int rows = grid.num_patches() * c.n, npix = grid.num_pixels();
  View2<double, Mem> q("q", npix, c.e), dq("dq", npix, c.e);
  View3<double, Mem> kv("kv", c.b, rows, 2 * c.e), dkv("dkv", c.b, rows, 2 * c.e);
  View2<double, Mem> rel("rel", 27 * c.n, c.e), drel("drel", 27 * c.n, c.e);
  View3<double, Mem> y("y", c.b, npix, c.e), proj("proj", c.b, npix, c.e);
  test::fill_uniform(q, 411, -2, 2);
  test::fill_uniform(kv, 412, -2, 2);
  test::fill_uniform(rel, 413);
  test::fill_uniform(proj, 414);
  Kokkos::deep_copy(dkv, 7.0);
  Kokkos::deep_copy(dq, 7.0);
  auto cache = tok::make_neighbour_cache<double, Mem>(c.b, grid, c.n, c.e, c.heads);
  auto ws = tok::make_neighbour_workspace<double, Mem>(c.b, grid, c.n, c.e, c.heads);
  auto loss = [&] {
    tok::neighbour_attention_forward(space, q, kv, rel, tab, c.n, c.heads, y, cache);
    return test::dot(y, proj);
  };
  loss();
  tok::neighbour_attention_backward(space, proj, q, kv, rel, drel, tab, c.n, c.heads, cache, ws, dq, dkv);
  for (double v : test::to_doubles(y)) REQUIRE(std::isfinite(v));
  if (c.b == 0) {
    for (double v : test::to_doubles(dq)) CHECK(v == 0);  // written: zero without a batch
    for (double v : test::to_doubles(drel)) CHECK(v == 0);
    return;
  }
  const auto drel1 = test::to_doubles(drel), dq1 = test::to_doubles(dq), dkv1 = test::to_doubles(dkv);
  tok::neighbour_attention_backward(space, proj, q, kv, rel, drel, tab, c.n, c.heads, cache, ws, dq, dkv);
  CHECK(test::rel_error(test::to_doubles(drel), times(drel1, 2)) == 0);
  CHECK(test::rel_error(test::to_doubles(dq), dq1) == 0);
  CHECK(test::rel_error(test::to_doubles(dkv), dkv1) == 0);
  Kokkos::deep_copy(drel, 0.0);
  tok::neighbour_attention_backward(space, proj, q, kv, rel, drel, tab, c.n, c.heads, cache, ws, dq, dkv);
  {
    // A workspace without the per-patch partials runs the per-pixel kernels (what devices run): same gradients.
    auto ws_pixel = ws;
    ws_pixel.kv_part = View4<double, Mem>();
    View2<double, Mem> dq2("dq2", npix, c.e), drel2("drel2", 27 * c.n, c.e);
    View3<double, Mem> dkv2("dkv2", c.b, rows, 2 * c.e);
    tok::neighbour_attention_backward(space, proj, q, kv, rel, drel2, tab, c.n, c.heads, cache, ws_pixel, dq2, dkv2);
    CHECK(test::rel_error_views(dq2, dq) < 1e-12);
    CHECK(test::rel_error_views(dkv2, dkv) < 1e-12);
    CHECK(test::rel_error_views(drel2, drel) < 1e-12);
  }
  check_neighbour_windows<ExecSpace>(c, grid, q, kv, rel, proj);
  test::check_gradient("neighbour dq", space, q, dq, loss, 1e-5, c.fd_tol, 40);
  test::check_gradient("neighbour dkv", space, kv, dkv, loss, 1e-5, c.fd_tol, 40);
  test::check_gradient("neighbour drel", space, rel, drel, loss, 1e-5, c.fd_tol, 40);
}

/// The float forward (the host patch kernel, with its AVX-512 form for <= 32 keys and head size 16 where
/// compiled) against the double forward of the same inputs: outputs and log-sum-exps.
template <class ExecSpace>
void check_neighbour_float_forward(const PixelCase& c) {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  const auto grid = tok::make_patch_grid(c.t, c.h, c.w, c.gt, c.gh, c.gw);
  auto tab = tok::make_patch_tables<Mem>(grid);
  const int npix = grid.num_pixels(), rows = grid.num_patches() * c.n;
  View2<double, Mem> q("q", npix, c.e), rel("rel", 27 * c.n, c.e);
  View3<double, Mem> kv("kv", c.b, rows, 2 * c.e), y("y", c.b, npix, c.e);
  test::fill_uniform(q, 451, -2, 2);
  test::fill_uniform(kv, 452, -2, 2);
  test::fill_uniform(rel, 453);
  View2<float, Mem> qf("qf", npix, c.e), relf("relf", 27 * c.n, c.e);
  View3<float, Mem> kvf("kvf", c.b, rows, 2 * c.e), yf("yf", c.b, npix, c.e);
  Kokkos::deep_copy(qf, q);
  Kokkos::deep_copy(relf, rel);
  Kokkos::deep_copy(kvf, kv);
  // The double run on the float-rounded inputs, so the difference is the float arithmetic only.
  Kokkos::deep_copy(q, qf);
  Kokkos::deep_copy(rel, relf);
  Kokkos::deep_copy(kv, kvf);
  auto cache = tok::make_neighbour_cache<double, Mem>(c.b, grid, c.n, c.e, c.heads);
  auto cachef = tok::make_neighbour_cache<float, Mem>(c.b, grid, c.n, c.e, c.heads);
  tok::neighbour_attention_forward(space, q, kv, rel, tab, c.n, c.heads, y, cache);
  tok::neighbour_attention_forward(space, qf, kvf, relf, tab, c.n, c.heads, yf, cachef);
  const double ey = test::rel_error(test::to_doubles(yf), test::to_doubles(y));
  const double el = test::rel_error(test::to_doubles(cachef.lse), test::to_doubles(cache.lse));
  INFO(c << ": y rel err " << ey << ", lse rel err " << el);
  CHECK(ey < 2e-6);
  CHECK(el < 2e-6);
}

/// Outputs and gradients of both ops on one space, float.
struct PixelRun {
  std::vector<double> pool_y, pool_dkv, pool_dq, nb_y, nb_dq, nb_dkv, nb_drel;
};

template <class ExecSpace>
PixelRun run_both(const PixelCase& c) {
  using Mem = typename ExecSpace::memory_space;
  using T = float;
  ExecSpace space;
  const auto grid = tok::make_patch_grid(c.t, c.h, c.w, c.gt, c.gh, c.gw);
  auto tab = tok::make_patch_tables<Mem>(grid);
  const int rows = grid.num_patches() * c.n, npix = grid.num_pixels();
  PixelRun r;
  {
    View3<T, Mem> kv("kv", c.b, npix, 2 * c.e), dkv("dkv", c.b, npix, 2 * c.e);
    View2<T, Mem> q("q", c.n, c.e), dq("dq", c.n, c.e);
    View3<T, Mem> y("y", c.b, rows, c.e), dy("dy", c.b, rows, c.e);
    test::fill_uniform(kv, 421, -2, 2);
    test::fill_uniform(q, 422, -2, 2);
    test::fill_uniform(dy, 423);
    auto cache = tok::make_patch_pool_cache<T, Mem>(c.b, grid, c.n, c.e, c.heads);
    auto ws = tok::make_patch_pool_workspace<T, Mem>(c.b, grid, c.n, c.e, c.heads);
    tok::patch_pool_attention_forward(space, kv, q, tab, c.heads, y, cache);
    tok::patch_pool_attention_backward(space, dy, kv, q, dq, tab, c.heads, cache, ws, dkv);
    r.pool_y = test::to_doubles(y);
    r.pool_dkv = test::to_doubles(dkv);
    r.pool_dq = test::to_doubles(dq);
  }
  {
    View2<T, Mem> q("q", npix, c.e), dq("dq", npix, c.e), rel("rel", 27 * c.n, c.e), drel("drel", 27 * c.n, c.e);
    View3<T, Mem> kv("kv", c.b, rows, 2 * c.e), dkv("dkv", c.b, rows, 2 * c.e);
    View3<T, Mem> y("y", c.b, npix, c.e), dy("dy", c.b, npix, c.e);
    test::fill_uniform(q, 431, -2, 2);
    test::fill_uniform(kv, 432, -2, 2);
    test::fill_uniform(rel, 433);
    test::fill_uniform(dy, 434);
    auto cache = tok::make_neighbour_cache<T, Mem>(c.b, grid, c.n, c.e, c.heads);
    auto ws = tok::make_neighbour_workspace<T, Mem>(c.b, grid, c.n, c.e, c.heads);
    tok::neighbour_attention_forward(space, q, kv, rel, tab, c.n, c.heads, y, cache);
    tok::neighbour_attention_backward(space, dy, q, kv, rel, drel, tab, c.n, c.heads, cache, ws, dq, dkv);
    r.nb_y = test::to_doubles(y);
    r.nb_dq = test::to_doubles(dq);
    r.nb_dkv = test::to_doubles(dkv);
    r.nb_drel = test::to_doubles(drel);
  }
  return r;
}

void compare_runs(const PixelRun& a, const PixelRun& b, double tol) {
  CHECK(test::rel_error(a.pool_y, b.pool_y) <= tol);
  CHECK(test::rel_error(a.pool_dkv, b.pool_dkv) <= tol);
  CHECK(test::rel_error(a.pool_dq, b.pool_dq) <= tol);
  CHECK(test::rel_error(a.nb_y, b.nb_y) <= tol);
  CHECK(test::rel_error(a.nb_dq, b.nb_dq) <= tol);
  CHECK(test::rel_error(a.nb_dkv, b.nb_dkv) <= tol);
  CHECK(test::rel_error(a.nb_drel, b.nb_drel) <= tol);
}

/// kv as a column window of a wider buffer (LayoutStride subview): same results as a packed kv.
template <class ExecSpace>
void check_strided_kv() {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  const auto grid = tok::make_patch_grid(1, 5, 7, 1, 2, 3);
  auto tab = tok::make_patch_tables<Mem>(grid);
  const int n = 2, e = 4, heads = 2, b = 2, rows = grid.num_patches() * n, npix = grid.num_pixels();
  View3<double, Mem> wide("wide", b, npix, 2 * e + 3), packed("packed", b, npix, 2 * e);
  test::fill_uniform(wide, 441);
  auto kv = Kokkos::subview(wide, Kokkos::ALL, Kokkos::ALL, std::make_pair(3, 3 + 2 * e));
  Kokkos::deep_copy(packed, kv);
  View2<double, Mem> q("q", n, e);
  test::fill_uniform(q, 442);
  View3<double, Mem> y1("y1", b, rows, e), y2("y2", b, rows, e);
  auto cache = tok::make_patch_pool_cache<double, Mem>(b, grid, n, e, heads);
  tok::patch_pool_attention_forward(space, kv, q, tab, heads, y1, cache);
  tok::patch_pool_attention_forward(space, packed, q, tab, heads, y2, cache);
  CHECK(test::rel_error_views(y1, y2) == 0);
}

template <class ExecSpace>
void check_pixel_attention_errors() {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  const auto grid = tok::make_patch_grid(1, 5, 7, 1, 2, 3);
  auto tab = tok::make_patch_tables<Mem>(grid);
  const int n = 2, e = 6, b = 2, rows = grid.num_patches() * n, npix = grid.num_pixels();
  CHECK_THROWS_WITH((tok::make_patch_pool_cache<float, Mem>(b, grid, n, e, 4)),
                    Catch::Contains("dcsldm::make_patch_pool_cache") && Catch::Contains("E = 6, heads = 4"));
  View3<float, Mem> kv("kv", b, npix, 2 * e), bad_kv("bad_kv", b, npix - 1, 2 * e), y("y", b, rows, e);
  View2<float, Mem> q("q", n, e), dq("dq", n, e), bad_dq("bad_dq", n + 1, e);
  auto cache = tok::make_patch_pool_cache<float, Mem>(b, grid, n, e, 2);
  auto ws = tok::make_patch_pool_workspace<float, Mem>(b, grid, n, e, 2);
  CHECK_THROWS_WITH(tok::patch_pool_attention_forward(space, bad_kv, q, tab, 2, y, cache),
                    Catch::Contains("dcsldm::patch_pool_attention_forward") && Catch::Contains("kv is (2, 34, 12)") &&
                        Catch::Contains("expected (2, 35, 12)"));
  CHECK_THROWS_WITH(tok::patch_pool_attention_forward(space, kv, q, tab, 4, y, cache),
                    Catch::Contains("dcsldm::patch_pool_attention_forward") && Catch::Contains("heads = 4"));
  CHECK_THROWS_WITH(tok::patch_pool_attention_forward(space, kv, q, tab, 3, y, cache),
                    Catch::Contains("cache.lse is (2, 12, 2)") && Catch::Contains("expected (2, 12, 3)"));
  tok::patch_pool_attention_forward(space, kv, q, tab, 2, y, cache);
  View3<float, Mem> dkv("dkv", b, npix, 2 * e);
  CHECK_THROWS_WITH(tok::patch_pool_attention_backward(space, y, kv, q, bad_dq, tab, 2, cache, ws, dkv),
                    Catch::Contains("dcsldm::patch_pool_attention_backward") && Catch::Contains("dq is (3, 6)"));

  View2<float, Mem> qn("qn", npix, e), rel("rel", 27 * n, e), bad_rel("bad_rel", 27, e), drel("drel", 27 * n, e);
  View3<float, Mem> kvn("kvn", b, rows, 2 * e), yn("yn", b, npix, e), dkvn("dkvn", b, rows, 2 * e);
  View2<float, Mem> dqn("dqn", npix, e);
  auto nc = tok::make_neighbour_cache<float, Mem>(b, grid, n, e, 2);
  auto nw = tok::make_neighbour_workspace<float, Mem>(b, grid, n, e, 2);
  CHECK_THROWS_WITH(tok::neighbour_attention_forward(space, qn, kvn, bad_rel, tab, n, 2, yn, nc),
                    Catch::Contains("dcsldm::neighbour_attention_forward") && Catch::Contains("rel is (27, 6)") &&
                        Catch::Contains("expected (54, 6)"));
  CHECK_THROWS_WITH(tok::neighbour_attention_forward(space, qn, kvn, rel, tab, 3, 2, yn, nc),
                    Catch::Contains("kv is (2, 12, 12)") && Catch::Contains("expected (2, 18, 12)"));
  tok::neighbour_attention_forward(space, qn, kvn, rel, tab, n, 2, yn, nc);
  CHECK_THROWS_WITH(tok::neighbour_attention_backward(space, yn, qn, kvn, rel, drel, tab, n, 2, nc, nw, dqn, dkv),
                    Catch::Contains("dcsldm::neighbour_attention_backward") && Catch::Contains("dkv is (2, 35, 12)"));
  // Tables of one tile: the backward takes the tile's rows (q of 35 pixels is refused); the patchifier
  // read-out needs the whole grid.
  const auto tiles = tok::make_tile_tables<Mem>(grid, 5);
  const auto tile = tok::select_pixel_tile(space, tiles, 5, 5);
  CHECK_THROWS_WITH(tok::neighbour_attention_backward(space, yn, qn, kvn, rel, drel, tile, n, 2, nc, nw, dqn, dkvn),
                    Catch::Contains("dcsldm::neighbour_attention_backward") && Catch::Contains("q is (35, 6)") &&
                        Catch::Contains("expected (5, 6)"));
  // Tables of scattered read-out entries (an edge-blended inference decode): no backward, no patchifier read-out.
  auto scattered = tok::make_patch_tables<Mem>(grid);
  scattered.scattered = true;
  CHECK_THROWS_WITH(tok::neighbour_attention_backward(space, yn, qn, kvn, rel, drel, scattered, n, 2, nc, nw, dqn, dkvn),
                    Catch::Contains("dcsldm::neighbour_attention_backward") &&
                        Catch::Contains("the tables list scattered read-out positions"));
  CHECK_THROWS_WITH(tok::patch_pool_attention_forward(space, kv, q, scattered, 2, y, cache),
                    Catch::Contains("dcsldm::patch_pool_attention_forward") &&
                        Catch::Contains("as scattered read-out entries, expected the whole grid"));
  CHECK_THROWS_WITH((tok::make_neighbour_workspace<float, Mem>(b, grid, 36, n, e, 2)),
                    Catch::Contains("dcsldm::make_neighbour_workspace") && Catch::Contains("pixels = 36, expected 1..35"));
  CHECK_THROWS_WITH(tok::patch_pool_attention_forward(space, kv, q, tile, 2, y, cache),
                    Catch::Contains("dcsldm::patch_pool_attention_forward") &&
                        Catch::Contains("the tables cover pixels [5, 10) of 35, expected the whole grid"));
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("patch pool attention matches PyTorch", "[tok][pixel_attention]", ExecSpaces) {
  for (const char* name : {"pixel_attention_pool_image", "pixel_attention_pool_video", "pixel_attention_pool_wide"}) {
    check_pool_golden<TestType, float>(name);
    check_pool_golden<TestType, double>(name);
  }
}

TEMPLATE_LIST_TEST_CASE("neighbour attention matches PyTorch", "[tok][pixel_attention]", ExecSpaces) {
  for (const char* name :
       {"pixel_attention_neighbour_image", "pixel_attention_neighbour_video", "pixel_attention_neighbour_wide"}) {
    check_neighbour_golden<TestType, float>(name);
    check_neighbour_golden<TestType, double>(name);
  }
}

TEMPLATE_LIST_TEST_CASE("patch pool attention gradients match finite differences", "[tok][pixel_attention][grad]",
                        ExecSpaces) {
  // t, h, w, gt, gh, gw, B, n, E, H
  check_pool_gradients<TestType>({1, 5, 7, 1, 2, 3, 2, 2, 4, 2});
  check_pool_gradients<TestType>({3, 4, 5, 2, 2, 3, 2, 2, 4, 2});
  check_pool_gradients<TestType>({1, 5, 6, 1, 2, 2, 1, 1, 70, 2});  // hd = 35 > the 32-wide chunk
  check_pool_gradients<TestType>({1, 1, 1, 1, 1, 1, 1, 1, 1, 1});
  check_pool_gradients<TestType>({1, 3, 3, 1, 3, 3, 0, 2, 4, 2});  // empty batch
}

TEMPLATE_LIST_TEST_CASE("neighbour attention gradients match finite differences", "[tok][pixel_attention][grad]",
                        ExecSpaces) {
  check_neighbour_gradients<TestType>({1, 5, 7, 1, 2, 3, 2, 2, 4, 2});
  check_neighbour_gradients<TestType>({3, 4, 5, 2, 2, 3, 2, 2, 4, 2});
  check_neighbour_gradients<TestType>({1, 7, 8, 1, 3, 4, 1, 2, 4, 1});  // interior patches see all 9 neighbours
  // n = 1 (9 keys in 32) with hd = 16, and a 27-key interior patch with hd = 32: at these head sizes the
  // softmax of inputs in [-2, 2] is peaked, and central differences carry ~1e-6 relative truncation error.
  check_neighbour_gradients<TestType>({1, 6, 7, 1, 3, 4, 2, 1, 32, 2, 1e-5});
  check_neighbour_gradients<TestType>({3, 5, 6, 3, 3, 3, 1, 1, 64, 2, 1e-5});
  check_neighbour_gradients<TestType>({1, 5, 6, 1, 2, 2, 1, 1, 70, 2});
  check_neighbour_gradients<TestType>({1, 1, 1, 1, 1, 1, 1, 1, 1, 1});
  // Beyond the host patch kernel's limits (27 n > 64 keys; hd > 64): the per-pixel online-softmax kernel.
  check_neighbour_gradients<TestType>({1, 5, 7, 1, 2, 3, 2, 3, 4, 2});
  check_neighbour_gradients<TestType>({1, 5, 6, 1, 2, 2, 1, 1, 140, 2});
  check_neighbour_gradients<TestType>({1, 3, 3, 1, 3, 3, 0, 2, 4, 2});
}

TEMPLATE_LIST_TEST_CASE("neighbour attention in float matches double", "[tok][pixel_attention]", ExecSpaces) {
  // n = 1 and head size 16 (the shipped models; the AVX-512 form where compiled): an image (9 neighbours, edge
  // patches fewer), a video (27), a batch of 2 with a non-integer patch size; then head sizes 8 and 32.
  check_neighbour_float_forward<TestType>({1, 28, 28, 1, 7, 7, 1, 1, 64, 4});
  check_neighbour_float_forward<TestType>({3, 10, 12, 3, 3, 4, 1, 1, 32, 2});
  check_neighbour_float_forward<TestType>({1, 23, 31, 1, 5, 7, 2, 1, 32, 2});
  check_neighbour_float_forward<TestType>({1, 9, 9, 1, 3, 3, 1, 1, 16, 2});
  check_neighbour_float_forward<TestType>({1, 9, 9, 1, 3, 3, 1, 1, 64, 2});
}

TEST_CASE("pixel attention is deterministic and agrees across backends", "[tok][pixel_attention]") {
  const PixelCase c{2, 13, 17, 2, 4, 5, 3, 2, 16, 4};
  const PixelRun a = run_both<Kokkos::DefaultExecutionSpace>(c);
  const PixelRun b = run_both<Kokkos::DefaultExecutionSpace>(c);
  compare_runs(a, b, 0);  // bit-identical
#if defined(KOKKOS_ENABLE_SERIAL)
  const PixelRun s = run_both<Kokkos::Serial>(c);
  compare_runs(a, s, 1e-6);
#endif
}

TEMPLATE_LIST_TEST_CASE("pixel attention accepts a strided kv", "[tok][pixel_attention]", ExecSpaces) {
  check_strided_kv<TestType>();
}

/// The forward over an edge blend's grid of read-out entries (PatchTables::scattered; tok/tokenizer.hpp
/// neighbour_pass_tables): entry rows and columns listed per patch by axis starts, some groups empty, rows repeated
/// and out of order, in passes of a few entries. Each entry is a read-out of its patch at its pixel's query: bit for
/// bit the output of that pixel in the plain forward over the whole grid. n = 1 runs the host's per-patch kernel,
/// n = 3 (81 keys) the per-pixel one.
template <class ExecSpace>
void check_entry_grid_forward(int n) {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  const int e = 8, heads = 2;
  const std::size_t b = 2;
  // Row patches [0, 4) [4, 8) [8, 12); column patches [0, 5) [5, 10).
  const auto grid = tok::make_patch_grid(1, 12, 10, 1, 3, 2);
  View2<float, Mem> q("q", grid.num_pixels(), e), rel("rel", 27 * n, e);
  View3<float, Mem> kv("kv", b, grid.num_patches() * n, 2 * e), y("y", b, grid.num_pixels(), e);
  test::fill_uniform(q, 21);
  test::fill_uniform(rel, 22);
  test::fill_uniform(kv, 23);
  auto cache = tok::make_neighbour_cache<float, Mem>(b, grid, n, e, heads);
  tok::neighbour_attention_forward(space, q, kv, rel, tok::make_patch_tables<Mem>(grid), n, heads, y, cache);
  // Entry rows by row patch: {3, 0, 3} | {} | {11, 8}; entry columns by column patch: {4, 1, 2} | {9, 5}.
  const std::vector<int> rows{3, 0, 3, 11, 8}, row_first{0, 3, 3, 5}, cols{4, 1, 2, 9, 5}, col_first{0, 3, 5};
  const std::vector<int> row_patch{0, 0, 0, 2, 2}, col_patch{0, 0, 0, 1, 1};
  const int ne = int(rows.size() * cols.size());
  auto qh = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), q);
  auto yh = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), y);
  View2<float, Mem> qe("qe", ne, e);
  auto qeh = Kokkos::create_mirror_view(qe);
  std::vector<int> patch(std::size_t(ne), 0), pixel(std::size_t(ne), 0);
  for (int v = 0; v < ne; ++v) {
    const std::size_t yi = std::size_t(v) / cols.size(), xi = std::size_t(v) % cols.size();
    pixel[std::size_t(v)] = rows[yi] * grid.w + cols[xi];
    patch[std::size_t(v)] = row_patch[yi] * grid.gw + col_patch[xi];
    for (int d = 0; d < e; ++d) qeh(v, d) = qh(pixel[std::size_t(v)], d);
  }
  Kokkos::deep_copy(qe, qeh);
  tok::PatchTables<Mem> et = tok::make_patch_tables<Mem>(grid);
  et.grid.h = int(rows.size());
  et.grid.w = int(cols.size());
  et.y_start = tok::Impl::upload_vector<Mem>("row_first", row_first);
  et.x_start = tok::Impl::upload_vector<Mem>("col_first", col_first);
  et.scattered = true;
  const auto all_patches = tok::Impl::upload_vector<Mem>("patch", patch);
  {  // Refused by name: starts that do not fit the patches, entries past the grid's.
    tok::PatchTables<Mem> bad = et;
    bad.pixel_patch = all_patches;
    bad.y_start = bad.x_start;
    View3<float, Mem> yb("yb", b, ne, e);
    auto cb = tok::make_neighbour_cache<float, Mem>(b, ne, n, e, heads);
    CHECK_THROWS_WITH(tok::neighbour_attention_forward(space, qe, kv, rel, bad, n, heads, yb, cb),
                      Catch::Contains("neighbour_attention_forward") &&
                          Catch::Contains("starts of 2, 3, 3 entries, expected one more than the patches (1, 3, 2)"));
    bad = et;
    bad.pixel_patch = all_patches;
    bad.first_pixel = 1;
    CHECK_THROWS_WITH(tok::neighbour_attention_forward(space, qe, kv, rel, bad, n, heads, yb, cb),
                      Catch::Contains("read-out entries [1, 26) of a grid of 25"));
  }
  for (const int pass : {ne, 7, 1}) {
    INFO("n = " << n << ", passes of " << pass << " entries");
    View3<float, Mem> ye("ye", b, ne, e);
    for (int v0 = 0; v0 < ne; v0 += pass) {
      const int count = std::min(pass, ne - v0);
      tok::PatchTables<Mem> pt = et;
      pt.first_pixel = v0;
      pt.pixel_patch = Kokkos::subview(all_patches, Kokkos::make_pair(v0, v0 + count));
      View3<float, Mem> yp("yp", b, count, e);
      auto pc = tok::make_neighbour_cache<float, Mem>(b, count, n, e, heads);
      tok::neighbour_attention_forward(space, Kokkos::subview(qe, Kokkos::make_pair(v0, v0 + count), Kokkos::ALL), kv,
                                       rel, pt, n, heads, yp, pc);
      Kokkos::deep_copy(Kokkos::subview(ye, Kokkos::ALL, Kokkos::make_pair(v0, v0 + count), Kokkos::ALL), yp);
    }
    auto yeh = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), ye);
    for (std::size_t bi = 0; bi < b; ++bi)
      for (int v = 0; v < ne; ++v)
        for (int d = 0; d < e; ++d) REQUIRE(yeh(bi, v, d) == yh(bi, pixel[std::size_t(v)], d));
  }
}

TEMPLATE_LIST_TEST_CASE("neighbour attention over a grid of read-out entries grouped by patch",
                        "[tok][pixel_attention][edge_blend]", ExecSpaces) {
  check_entry_grid_forward<TestType>(1);
  check_entry_grid_forward<TestType>(3);
}

TEMPLATE_LIST_TEST_CASE("pixel attention errors", "[tok][pixel_attention]", ExecSpaces) {
  check_pixel_attention_errors<TestType>();
}
