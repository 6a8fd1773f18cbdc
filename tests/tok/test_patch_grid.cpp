// Patch geometry: axis_starts against floor((i + 0.5) g / n) for many (n, g) including non-integer patch
// sizes, every pixel in exactly one patch; scale-aware grids for images and videos; explicit grids; errors;
// device tables, pixel coordinate features and patch centres against host formulas.
#include <dcsldm/tok/patch_grid.hpp>

#include "testing.hpp"

using namespace dcsldm;
using test::ExecSpaces;

namespace {

/// The patch of pixel i in double arithmetic (the definition, independent of the integer form).
int patch_of(int i, int n, int g) { return std::min(int(std::floor((i + 0.5) * g / n)), g - 1); }

void check_axis(int n, int g) {
  INFO("n = " << n << ", g = " << g);
  const auto s = tok::axis_starts(n, g);
  REQUIRE(s.size() == std::size_t(g) + 1);
  CHECK(s.front() == 0);
  CHECK(s.back() == n);
  for (int j = 0; j < g; ++j) CHECK(s[std::size_t(j)] < s[std::size_t(j) + 1]);  // no empty patch
  std::vector<int> count(std::size_t(g), 0);
  for (int i = 0; i < n; ++i) {
    const int p = patch_of(i, n, g);
    CHECK(s[std::size_t(p)] <= i);
    CHECK(i < s[std::size_t(p) + 1]);
    ++count[std::size_t(p)];
  }
  int total = 0;
  for (int j = 0; j < g; ++j) {
    CHECK(count[std::size_t(j)] == s[std::size_t(j) + 1] - s[std::size_t(j)]);
    total += count[std::size_t(j)];
  }
  CHECK(total == n);
}

template <class ExecSpace>
void check_tables(const tok::PatchGrid& g) {
  using Mem = typename ExecSpace::memory_space;
  INFO("grid (" << g.t << ", " << g.h << ", " << g.w << ") on (" << g.gt << ", " << g.gh << ", " << g.gw << ")");
  auto tab = tok::make_patch_tables<Mem>(g);
  CHECK(tab.t_start.extent(0) == std::size_t(g.gt) + 1);
  CHECK(tab.y_start.extent(0) == std::size_t(g.gh) + 1);
  CHECK(tab.x_start.extent(0) == std::size_t(g.gw) + 1);
  const auto pp = test::to_doubles(tab.pixel_patch);
  REQUIRE(pp.size() == std::size_t(g.num_pixels()));
  View2<double, Mem> coords("coords", g.num_pixels(), 6);
  View2<float, Mem> coords_f("coords_f", g.num_pixels(), 6);
  View2<double, Mem> centres("centres", g.num_patches(), 3);
  tok::pixel_coords(ExecSpace(), tab, coords);
  tok::pixel_coords(ExecSpace(), tab, coords_f);
  tok::patch_centres(ExecSpace(), tab, centres);
  const auto c = test::to_doubles(coords);
  const auto cf = test::to_doubles(coords_f);
  std::vector<int> per_patch(std::size_t(g.num_patches()), 0);
  std::size_t p = 0;
  bool ok = true;
  for (int t = 0; t < g.t; ++t)
    for (int y = 0; y < g.h; ++y)
      for (int x = 0; x < g.w; ++x, ++p) {
        const int pt = patch_of(t, g.t, g.gt), py = patch_of(y, g.h, g.gh), px = patch_of(x, g.w, g.gw);
        const int want = (pt * g.gh + py) * g.gw + px;
        ok = ok && int(pp[p]) == want;
        ++per_patch[std::size_t(want)];
        const double u[3] = {(t + 0.5) * g.gt / g.t, (y + 0.5) * g.gh / g.h, (x + 0.5) * g.gw / g.w};
        const double cell[3] = {double(g.gt) / g.t, double(g.gh) / g.h, double(g.gw) / g.w};
        const int pa[3] = {pt, py, px};
        for (int a = 0; a < 3; ++a) {
          const double frac = u[a] - pa[a];
          ok = ok && frac >= 0 && frac < 1;
          ok = ok && std::abs(c[p * 6 + std::size_t(a)] - frac) < 1e-14;
          ok = ok && std::abs(cf[p * 6 + std::size_t(a)] - frac) < 1e-7;
          ok = ok && std::abs(c[p * 6 + 3 + std::size_t(a)] - cell[a]) < 1e-15;
        }
      }
  CHECK(ok);
  for (int q : per_patch) CHECK(q >= 1);
  // A cell floor raises the spatial cells below it to it; positions and the temporal cell are unchanged.
  for (const double floor : {0.0, 0.3, 1.5}) {
    View2<double, Mem> fc("floored", g.num_pixels(), 6);
    tok::pixel_coords(ExecSpace(), tab, fc, floor);
    const auto f = test::to_doubles(fc);
    const double want[6] = {0, 0, 0, double(g.gt) / g.t, std::max(double(g.gh) / g.h, floor),
                            std::max(double(g.gw) / g.w, floor)};
    bool floor_ok = true;
    for (std::size_t q = 0; q < std::size_t(g.num_pixels()); ++q)
      for (std::size_t a = 0; a < 6; ++a)
        floor_ok = floor_ok && (a < 3 ? f[q * 6 + a] == c[q * 6 + a] : std::abs(f[q * 6 + a] - want[a]) < 1e-15);
    INFO("cell floor " << floor);
    CHECK(floor_ok);
  }
  // Tiled passes (tok/tokenizer.hpp's tiled decode): each tile's patch indices and coordinates are the
  // whole grid's rows [first, first + count), for tiles that divide nothing and tiles of one pixel.
  for (const int cap : {1, 3, g.num_pixels()}) {
    INFO("tiles of " << cap << " pixels");
    const auto tiles = tok::make_tile_tables<Mem>(g, cap);
    CHECK(tiles.pixels() == cap);
    bool tiles_ok = true;
    for (int first = 0; first < g.num_pixels(); first += cap) {
      const int count = std::min(cap, g.num_pixels() - first);
      const auto tile = tok::select_pixel_tile(ExecSpace(), tiles, first, count);
      tiles_ok = tiles_ok && tile.first_pixel == first && tile.pixels() == count &&
                 tile.covers_grid() == (count == g.num_pixels());
      View2<double, Mem> tc("tile_coords", std::size_t(count), 6);
      tok::pixel_coords(ExecSpace(), tile, tc);
      const auto tp = test::to_doubles(tile.pixel_patch);
      const auto tcv = test::to_doubles(tc);
      for (int i = 0; i < count; ++i) {
        tiles_ok = tiles_ok && tp[std::size_t(i)] == pp[std::size_t(first + i)];
        for (int a = 0; a < 6; ++a)
          tiles_ok = tiles_ok && tcv[std::size_t(i) * 6 + std::size_t(a)] == c[std::size_t(first + i) * 6 + std::size_t(a)];
      }
    }
    CHECK(tiles_ok);
  }
  const auto ce = test::to_doubles(centres);
  p = 0;
  for (int pt = 0; pt < g.gt; ++pt)
    for (int py = 0; py < g.gh; ++py)
      for (int px = 0; px < g.gw; ++px, ++p) {
        CHECK(ce[p * 3 + 0] == Approx((pt + 0.5) / g.gt).epsilon(1e-15));
        CHECK(ce[p * 3 + 1] == Approx((py + 0.5) / g.gh).epsilon(1e-15));
        CHECK(ce[p * 3 + 2] == Approx((px + 0.5) / g.gw).epsilon(1e-15));
      }
}

template <class ExecSpace>
void check_coords_errors() {
  using Mem = typename ExecSpace::memory_space;
  auto tab = tok::make_patch_tables<Mem>(tok::make_patch_grid(1, 5, 7, 1, 2, 3));
  View2<double, Mem> bad("bad", 35, 5), bad_c("bad_c", 5, 3);
  CHECK_THROWS_WITH(tok::pixel_coords(ExecSpace(), tab, bad),
                    Catch::Contains("dcsldm::pixel_coords") && Catch::Contains("coords is (35, 5)") &&
                        Catch::Contains("(35, 6)"));
  CHECK_THROWS_WITH(tok::patch_centres(ExecSpace(), tab, bad_c),
                    Catch::Contains("dcsldm::patch_centres") && Catch::Contains("(6, 3)"));
  const auto g = tok::make_patch_grid(1, 5, 7, 1, 2, 3);
  CHECK_THROWS_WITH(tok::make_tile_tables<Mem>(g, 0),
                    Catch::Contains("make_tile_tables") && Catch::Contains("capacity = 0 pixels"));
  const auto tiles = tok::make_tile_tables<Mem>(g, 8);
  CHECK_THROWS_WITH(tok::select_pixel_tile(ExecSpace(), tiles, 30, 8),
                    Catch::Contains("select_pixel_tile") && Catch::Contains("pixels [30, 38)") &&
                        Catch::Contains("of a grid of 35 pixels"));
  CHECK_THROWS_WITH(tok::select_pixel_tile(ExecSpace(), tiles, 0, 9),
                    Catch::Contains("select_pixel_tile") && Catch::Contains("with room for 8"));
}

}  // namespace

TEST_CASE("axis_starts matches floor((i + 0.5) g / n)", "[tok][patch_grid]") {
  for (auto [n, g] : std::vector<std::pair<int, int>>{{21, 7}, {28, 7}, {14, 7}, {48, 7}, {17, 5}, {7, 7}, {1, 1},
                                                      {448, 7}, {1000, 3}, {999, 37}})
    check_axis(n, g);
  for (int n = 1; n <= 64; ++n)
    for (int g = 1; g <= n; ++g) check_axis(n, g);
  // Known values: 21 px / 7 patches = 3 px each; 17 px / 5 patches: boundaries at 3.4-pixel steps.
  CHECK(tok::axis_starts(21, 7) == std::vector<int>{0, 3, 6, 9, 12, 15, 18, 21});
  CHECK(tok::axis_starts(17, 5) == std::vector<int>{0, 3, 7, 10, 14, 17});
  CHECK(tok::axis_starts(5, 2) == std::vector<int>{0, 2, 5});  // pixel 2 (u = 1.0) is in patch 1
}

TEST_CASE("scale_aware_grid for images and videos", "[tok][patch_grid]") {
  auto g = tok::scale_aware_grid(1, 28, 28, 7);
  CHECK((g.t == 1 && g.h == 28 && g.w == 28 && g.gt == 1 && g.gh == 7 && g.gw == 7));
  CHECK(g.num_pixels() == 784);
  CHECK(g.num_patches() == 49);
  CHECK(g.ph() == 4.0);
  g = tok::scale_aware_grid(1, 28, 56, 7);
  CHECK((g.gh == 7 && g.gw == 14));
  g = tok::scale_aware_grid(1, 56, 28, 7);
  CHECK((g.gh == 14 && g.gw == 7));
  g = tok::scale_aware_grid(1, 21, 30, 7);  // 7 * 30 / 21 = 10
  CHECK((g.gh == 7 && g.gw == 10));
  CHECK(g.pw() == 3.0);
  g = tok::scale_aware_grid(1, 48, 17, 5);  // round(5 * 48 / 17 = 14.12) = 14
  CHECK((g.gh == 14 && g.gw == 5));
  CHECK(g.pw() == Approx(3.4));
  g = tok::scale_aware_grid(1, 4, 10, 1);  // 2.5 rounds up
  CHECK((g.gh == 1 && g.gw == 3));
  g = tok::scale_aware_grid(1, 448, 448, 7);
  CHECK((g.gh == 7 && g.gw == 7 && g.ph() == 64.0));
  // Video: kt patches per second.
  g = tok::scale_aware_grid(16, 28, 28, 7, 2.0, 8.0);  // 2 * 16 / 8 = 4
  CHECK((g.gt == 4 && g.gh == 7 && g.gw == 7));
  CHECK(g.pt() == 4.0);
  g = tok::scale_aware_grid(5, 28, 28, 7, 1.0, 8.0);  // round(0.625) = 1
  CHECK(g.gt == 1);
  g = tok::scale_aware_grid(6, 28, 28, 7, 4.0, 8.0);  // 3
  CHECK(g.gt == 3);
  g = tok::scale_aware_grid(1, 28, 28, 7, 4.0, 8.0);  // a single frame: one temporal patch
  CHECK(g.gt == 1);
  g = tok::scale_aware_grid(16, 28, 28, 7);  // kt <= 0: one temporal patch
  CHECK(g.gt == 1);
  auto e = tok::make_patch_grid(3, 5, 7, 2, 2, 3);
  CHECK((e.t == 3 && e.h == 5 && e.w == 7 && e.gt == 2 && e.gh == 2 && e.gw == 3));
  CHECK(e.pt() == 1.5);
}

TEST_CASE("patch grid errors", "[tok][patch_grid]") {
  CHECK_THROWS_WITH(tok::scale_aware_grid(1, 28, 28, 0),
                    Catch::Contains("dcsldm::scale_aware_grid") && Catch::Contains("k = 0"));
  CHECK_THROWS_WITH(tok::scale_aware_grid(1, 3, 5, 4), Catch::Contains("dcsldm::scale_aware_grid") &&
                                                           Catch::Contains("(gt, gh, gw) = (1, 4, 7)") &&
                                                           Catch::Contains("(t, h, w) = (1, 3, 5)"));
  CHECK_THROWS_WITH(tok::scale_aware_grid(1, 0, 5, 1), Catch::Contains("(t, h, w) = (1, 0, 5)"));
  CHECK_THROWS_WITH(tok::scale_aware_grid(4, 28, 28, 7, 8.0, 4.0),
                    Catch::Contains("dcsldm::scale_aware_grid") && Catch::Contains("= 8") &&
                        Catch::Contains("t = 4"));
  CHECK_THROWS_WITH(tok::scale_aware_grid(4, 28, 28, 7, 1.0, 0.0),
                    Catch::Contains("dcsldm::scale_aware_grid") && Catch::Contains("fps = 0"));
  CHECK_THROWS_WITH(tok::make_patch_grid(1, 5, 7, 1, 6, 3),
                    Catch::Contains("dcsldm::make_patch_grid") && Catch::Contains("(1, 6, 3)") &&
                        Catch::Contains("(1, 5, 7)"));
  CHECK_THROWS_WITH(tok::make_patch_grid(1, 5, 7, 1, 0, 3),
                    Catch::Contains("dcsldm::make_patch_grid") && Catch::Contains("(1, 0, 3)"));
  CHECK_THROWS_WITH(tok::axis_starts(3, 4), Catch::Contains("dcsldm::axis_starts") && Catch::Contains("n = 3, g = 4"));
  CHECK_THROWS_WITH(tok::axis_starts(3, 0), Catch::Contains("dcsldm::axis_starts") && Catch::Contains("g = 0"));
}

TEMPLATE_LIST_TEST_CASE("patch tables, pixel coordinates and patch centres", "[tok][patch_grid]", ExecSpaces) {
  check_tables<TestType>(tok::make_patch_grid(1, 5, 7, 1, 2, 3));
  check_tables<TestType>(tok::make_patch_grid(3, 4, 5, 2, 2, 3));
  check_tables<TestType>(tok::scale_aware_grid(1, 21, 48, 7));
  check_tables<TestType>(tok::scale_aware_grid(1, 17, 17, 5));
  check_tables<TestType>(tok::make_patch_grid(1, 1, 1, 1, 1, 1));
  check_tables<TestType>(tok::scale_aware_grid(7, 14, 9, 3, 3.0, 5.0));
  check_coords_errors<TestType>();
}
