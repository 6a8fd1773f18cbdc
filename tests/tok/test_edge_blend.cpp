// The decoder's edge blend (TokenizerConfig::edge_margin_out): above the training scales an output pixel closer
// to a patch edge than any training pixel is the linear blend of the two patches' read-outs at the margin; at
// the training scales nothing changes.
#include <dcsldm/tok/model.hpp>
#include <dcsldm/tok/trainer.hpp>

#include "testing.hpp"
#include "tok_testing.hpp"

#include <array>
#include <cmath>

using namespace dcsldm;
using dcsldm::test::fill_uniform;
using dcsldm::test::to_doubles;

namespace {

using Exec = Kokkos::DefaultExecutionSpace;
using Mem = Exec::memory_space;
using TokF = tok::Tokenizer<Exec, float>;

/// k = 2 patches per side; trained (here: as if) on 8-px targets: patches of 4 px, every training pixel at least
/// 1/8 patch from an edge; cell floor 2/8.
tok::TokenizerConfig blend_config(double margin) {
  tok::TokenizerConfig c = dcsldm::test::tiny_tokenizer_config(2);
  c.cell_floor_in = c.cell_floor_out = 0.25;
  c.edge_margin_out = margin;
  return c;
}

tok::View5<float, Mem> make5(std::size_t b, std::size_t t, std::size_t h, std::size_t w, std::size_t c) {
  return tok::View5<float, Mem>("y", b, t, h, w, c);
}

/// Decodes z with m levels onto an explicit grid (t, h, w) of (gt, gh, gw) patches.
std::vector<double> decode_on(TokF& model, const View3<float, Mem>& z, int m, const tok::PatchGrid& g) {
  auto y = make5(z.extent(0), std::size_t(g.t), std::size_t(g.h), std::size_t(g.w), 2);
  Exec space;
  tok::decode_forward(space, z, model.params(), model.config(), y, model.decode_plan(space, int(z.extent(0)), g, m));
  return to_doubles(y);
}

struct At {  // value (b, y, x, ch) of a (B, 1, H, W, 2) output
  const std::vector<double>& v;
  int h, w;
  double operator()(int b, int y, int x, int ch) const {
    return v[((std::size_t(b) * std::size_t(h) + std::size_t(y)) * std::size_t(w) + std::size_t(x)) * 2 + std::size_t(ch)];
  }
};

}  // namespace

TEST_CASE("edge blend: the entries of an axis", "[tok][edge_blend]") {
  // 28 px, 7 patches, margin 1/8: every pixel is at least 1/8 from an edge: nothing changes.
  auto a = tok::edge_blend_axis<double>(28, 7, 0.125);
  REQUIRE_FALSE(a.changed);
  REQUIRE(a.band.empty());
  for (int i = 0; i < 28; ++i) {
    REQUIRE(a.patch[2 * std::size_t(i)] == i / 4);
    REQUIRE(a.weight[2 * std::size_t(i)] == 1.0);
    REQUIRE(a.weight[2 * std::size_t(i) + 1] == 0.0);
  }
  // 112 px (16-px patches): pixel 15 (u = 15.5/16) blends patch 0 at 7/8 and patch 1 at 1/8, 3/8 of the way
  // across the band; pixel 16 (u = 0.5/16 in patch 1) 5/8 of the way.
  a = tok::edge_blend_axis<double>(112, 7, 0.125);
  REQUIRE(a.changed);
  REQUIRE(a.patch[30] == 0);
  REQUIRE(a.frac[30] == 0.875);
  REQUIRE(a.weight[30] == Approx(0.625));
  REQUIRE(a.patch[31] == 1);
  REQUIRE(a.frac[31] == 0.125);
  REQUIRE(a.weight[31] == Approx(0.375));
  REQUIRE(a.patch[32] == 1);
  REQUIRE(a.frac[32] == 0.125);
  REQUIRE(a.weight[32] == Approx(0.625));
  REQUIRE(a.patch[33] == 0);
  REQUIRE(a.frac[33] == 0.875);
  REQUIRE(a.weight[33] == Approx(0.375));
  // Pixel 14 (u = 14.5/16 = 0.906) is in the band too; pixel 13 (0.844) is not and keeps its own position.
  REQUIRE(a.weight[29] > 0);
  REQUIRE(a.frac[26] == 13.5 / 16);
  REQUIRE(a.weight[26] == 1.0);
  REQUIRE(a.weight[27] == 0.0);
  // The outer border has no neighbour: clamped to the margin, weight 1, not in the band list.
  REQUIRE(a.frac[0] == 0.125);
  REQUIRE(a.weight[0] == 1.0);
  REQUIRE(a.weight[1] == 0.0);
  REQUIRE(a.frac[2 * 111] == 0.875);
  // Band: 2 pixels either side of each of the 6 inner edges; weights sum to 1 everywhere.
  REQUIRE(a.band.size() == 24);
  for (int i = 0; i < 112; ++i)
    REQUIRE(a.weight[2 * std::size_t(i)] + a.weight[2 * std::size_t(i) + 1] == Approx(1.0));
  // Margin 0: off; margin 1/2: every inner pixel is a blend of two patch centres.
  REQUIRE_FALSE(tok::edge_blend_axis<double>(112, 7, 0).changed);
  a = tok::edge_blend_axis<double>(112, 7, 0.5);
  REQUIRE(a.band.size() == 112 - 16);
  REQUIRE_THROWS_WITH(tok::edge_blend_axis<double>(112, 7, 0.6), Catch::Contains("margin = 0.6"));
}

TEST_CASE("edge blend: the margin of the training scales", "[tok][edge_blend]") {
  REQUIRE(tok::training_edge_margin(7, {14, 21, 28}) == 0.125);
  REQUIRE(tok::training_edge_margin(7, {14, 21}) == Approx(1.0 / 6));
  REQUIRE(tok::training_edge_margin(8, {16, 32, 48, 64, 128}) == 1.0 / 32);
  // A non-integer patch size: 20 px in 7 patches puts pixel 8 at u = 8.5 * 7/20 = 2.975, 0.025 from an edge.
  REQUIRE(tok::training_edge_margin(7, {20}) == Approx(0.025));
  REQUIRE(tok::training_edge_margin(7, {}) == 0);
  REQUIRE_THROWS_WITH(tok::training_edge_margin(7, {6}), Catch::Contains("size 6 px"));
  // The trainer records the margin of its target scales (final phase included); one already set is kept.
  tok::TrainOptions o;
  o.in_res = {8};
  o.out_res = {6};  // 3-px patches: 1/6
  auto c = blend_config(0);
  REQUIRE(tok::with_training_cell_floors(c, o).edge_margin_out == Approx(1.0 / 6));
  o.final_out_res = {4, 8};
  REQUIRE(tok::TokenizerTrainer<Exec, float>(c, o).model().config().edge_margin_out == 0.125);
  REQUIRE(tok::with_training_cell_floors(blend_config(0.3), o).edge_margin_out == 0.3);
  // Files: recorded when on, absent (0) in older files; out of range refused.
  auto md = blend_config(0.125).to_metadata();
  REQUIRE(md.at("tok.edge_margin_out") == "0.125");
  REQUIRE(tok::TokenizerConfig::from_metadata(md, "f").edge_margin_out == 0.125);
  md.erase("tok.edge_margin_out");
  REQUIRE(tok::TokenizerConfig::from_metadata(md, "f").edge_margin_out == 0);
  REQUIRE(blend_config(0).to_metadata().count("tok.edge_margin_out") == 0);
  REQUIRE_THROWS_WITH(blend_config(0.51).validate(), Catch::Contains("edge_margin_out = 0.51"));
  REQUIRE(tok::same_architecture(blend_config(0), blend_config(0.125)));
}

TEST_CASE("edge blend: decodes at the training scales are unchanged; above them the band is the blend of the "
          "read-outs at the margin",
          "[tok][edge_blend]") {
  TokF plain(blend_config(0)), blend(blend_config(0.125));
  plain.init(Exec(), 41);
  blend.init(Exec(), 41);
  auto x = make5(2, 1, 8, 8, 2);
  fill_uniform(x, 6, 0, 1);
  View3<float, Mem> z("z", 2, 3, 3);
  plain.encode(Exec(), x, z);
  for (int m = 1; m <= 2; ++m) {
    INFO("levels " << m);
    // At 8 px (and 4 px) every pixel is at a trained distance from the edges: bit for bit the plain decode.
    for (int r : {4, 8}) {
      const auto g = plain.grid(1, r, r);
      REQUIRE(decode_on(blend, z, m, g) == decode_on(plain, z, m, g));
      REQUIRE_FALSE(blend.decode_plan(Exec(), 2, g, m).blend);
    }
    // 16 px: 8-px patches, pixels at u = (i + 0.5) / 8; rows/columns 0, 7, 8, 15 are inside the margin.
    const auto g16 = plain.grid(1, 16, 16);
    REQUIRE(blend.decode_plan(Exec(), 2, g16, m).blend);
    REQUIRE_FALSE(blend.decode_plan(Exec(), 2, g16, m, true).blend);  // training decodes never blend
    const auto vb = decode_on(blend, z, m, g16), vp = decode_on(plain, z, m, g16);
    // The plain read-out at the margin's positions: 8 x 8 grids put pixels at u = 1/8, 3/8, 5/8, 7/8 (cells at
    // the floor, as at 16 px), 16 x 8 and 8 x 16 grids of 2 x 2 patches do so along one axis.
    const auto v88 = decode_on(plain, z, m, tok::make_patch_grid(1, 8, 8, 1, 2, 2));
    const auto v168 = decode_on(plain, z, m, tok::make_patch_grid(1, 16, 8, 1, 2, 2));
    const auto v816 = decode_on(plain, z, m, tok::make_patch_grid(1, 8, 16, 1, 2, 2));
    const At B{vb, 16, 16}, P{vp, 16, 16}, A88{v88, 8, 8}, A168{v168, 16, 8}, A816{v816, 8, 16};
    const auto inside = [](int i) { return i != 0 && i != 7 && i != 8 && i != 15; };
    for (int b = 0; b < 2; ++b)
      for (int ch = 0; ch < 2; ++ch) {
        for (int y = 0; y < 16; ++y)
          for (int xx = 0; xx < 16; ++xx)
            if (inside(y) && inside(xx)) REQUIRE(B(b, y, xx, ch) == P(b, y, xx, ch));  // untouched, bit for bit
        for (int y : {2, 5, 11}) {
          // Column 7 (u = 15/16, patch 0): 1/4 of the way across the band from patch 0 at 7/8 to patch 1 at 1/8;
          // column 8 (patch 1, u = 1/16): 3/4 of the way. Column 0: the outer border, clamped to 1/8.
          const double l = A168(b, y, 3, ch), r = A168(b, y, 4, ch);
          REQUIRE(B(b, y, 7, ch) == Approx(0.75 * l + 0.25 * r).epsilon(1e-5).margin(1e-6));
          REQUIRE(B(b, y, 8, ch) == Approx(0.25 * l + 0.75 * r).epsilon(1e-5).margin(1e-6));
          REQUIRE(B(b, y, 0, ch) == Approx(A168(b, y, 0, ch)).epsilon(1e-5).margin(1e-6));
          REQUIRE(B(b, y, 15, ch) == Approx(A168(b, y, 7, ch)).epsilon(1e-5).margin(1e-6));
          // The same along the other axis.
          REQUIRE(B(b, 8, y, ch) == Approx(0.25 * A816(b, 3, y, ch) + 0.75 * A816(b, 4, y, ch)).epsilon(1e-5).margin(1e-6));
        }
        // A corner of four patches: the bilinear blend of the four read-outs at the margin.
        const double c00 = A88(b, 3, 3, ch), c01 = A88(b, 3, 4, ch), c10 = A88(b, 4, 3, ch), c11 = A88(b, 4, 4, ch);
        REQUIRE(B(b, 7, 7, ch) == Approx(0.5625 * c00 + 0.1875 * c01 + 0.1875 * c10 + 0.0625 * c11).epsilon(1e-5).margin(1e-6));
        REQUIRE(B(b, 8, 7, ch) == Approx(0.1875 * c00 + 0.0625 * c01 + 0.5625 * c10 + 0.1875 * c11).epsilon(1e-5).margin(1e-6));
      }
  }
  // Off again: set_edge_margin(0) decodes as the plain model; the same call twice is bit-identical.
  const auto g16 = plain.grid(1, 16, 16);
  REQUIRE(decode_on(blend, z, 2, g16) == decode_on(blend, z, 2, g16));
  blend.set_edge_margin(0);
  REQUIRE(decode_on(blend, z, 2, g16) == decode_on(plain, z, 2, g16));
  REQUIRE_THROWS_WITH(blend.set_edge_margin(-0.1), Catch::Contains("edge_margin_out = -0.1"));
}

TEST_CASE("edge blend: a tiled decode (video, tiles across rows, frames and the band's passes) equals the whole one",
          "[tok][edge_blend]") {
  auto cfg = blend_config(0.125);
  cfg.kt = 2;
  TokF whole(cfg), tiled(cfg);
  whole.init(Exec(), 43);
  tiled.init(Exec(), 43);
  auto x = make5(2, 4, 8, 8, 2);
  fill_uniform(x, 7, 0, 1);
  View3<float, Mem> z("z", 2, 3, 3);
  whole.encode(Exec(), x, z, 4.0);
  const std::size_t per = tok::decode_bytes_per_pixel(cfg, 2, sizeof(float));
  for (const std::size_t budget : {std::size_t(37), std::size_t(1)}) {
    INFO("tile " << budget << " pixels");
    tiled.set_decode_memory(budget * per);
    for (const auto& o : {std::array<int, 3>{1, 19, 23}, std::array<int, 3>{6, 16, 12}}) {
      const auto g = whole.grid(o[0], o[1], o[2], 6.0);
      REQUIRE(tiled.decode_plan(Exec(), 2, g, 2).tile == int(budget));
      REQUIRE(tiled.decode_plan(Exec(), 2, g, 2).blend);
      auto y0 = make5(2, std::size_t(o[0]), std::size_t(o[1]), std::size_t(o[2]), 2);
      auto y1 = make5(2, std::size_t(o[0]), std::size_t(o[1]), std::size_t(o[2]), 2);
      fill_uniform(y1, 5, -9, 9);  // every value must be overwritten
      whole.decode(Exec(), z, 2, y0, 6.0);
      tiled.decode(Exec(), z, 2, y1, 6.0);
      const auto a = to_doubles(y0), b = to_doubles(y1);
      for (std::size_t i = 0; i < a.size(); ++i) REQUIRE(b[i] == Approx(a[i]).epsilon(1e-5).margin(1e-6));
    }
  }
}
