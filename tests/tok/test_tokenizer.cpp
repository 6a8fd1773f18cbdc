// DCS-Tok model: gradients of the whole model by finite differences, level causality, decoding to other
// resolutions and frame counts, model files, determinism, training and bit-identical resume.
#include <dcsldm/tok/model.hpp>
#include <dcsldm/tok/trainer.hpp>

#include "testing.hpp"
#include "tok_testing.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

using namespace dcsldm;
using dcsldm::test::fill_uniform;
using dcsldm::test::to_doubles;

namespace {

using Exec = Kokkos::DefaultExecutionSpace;
using Mem = Exec::memory_space;
using TokF = tok::Tokenizer<Exec, float>;

tok::TokenizerConfig tiny_config() { return dcsldm::test::tiny_tokenizer_config(2); }

template <class T>
tok::View5<T, Mem> make5(std::size_t b, std::size_t t, std::size_t h, std::size_t w, std::size_t c) {
  return tok::View5<T, Mem>("x", b, t, h, w, c);
}

/// L = <y, proj> of decode(encode(x)) with m levels; fills the arena's gradients.
template <class T>
double loss_and_grad(tok::Tokenizer<Exec, T>& model, const tok::View5<T, Mem>& x, int m,
                     const tok::View5<T, Mem>& y, const tok::View5<T, Mem>& proj, bool backward) {
  Exec space;
  const auto& cfg = model.config();
  const std::size_t B = x.extent(0);
  View3<T, Mem> z("z", B, std::size_t(cfg.latent_tokens()), std::size_t(cfg.latent_channels));
  View3<T, Mem> dz("dz", B, std::size_t(cfg.latent_tokens()), std::size_t(cfg.latent_channels));
  const auto& ep = model.encode_plan(space, int(B), model.grid(int(x.extent(1)), int(x.extent(2)), int(x.extent(3))), true);
  const auto& dp =
      model.decode_plan(space, int(B), model.grid(int(y.extent(1)), int(y.extent(2)), int(y.extent(3))), m, true);
  tok::encode_forward(space, x, model.params(), cfg, z, ep);
  tok::decode_forward(space, z, model.params(), cfg, y, dp);
  if (backward) {
    optim::zero_grad(space, model.arena());
    tok::decode_backward(space, proj, model.params(), model.grads(), cfg, dp, dz);
    tok::encode_backward(space, dz, x, model.params(), model.grads(), cfg, ep);
  }
  space.fence();
  return test::dot(y, proj);
}

/// Trainer options whose step gradients can be compared exactly: batch 3, training windows of `window` pixels
/// (0: whole targets), no latent noise or L2, no clipping, no logs or checkpoints.
tok::TrainOptions raw_gradient_options(int window) {
  tok::TrainOptions o;
  o.batch = 3;
  o.steps = 10;
  o.max_target_pixels = window;
  o.latent_noise = 0;
  o.latent_l2 = 0;
  o.clip = 1e30;
  o.log_every = 1000;
  o.ckpt_every = 0;
  return o;
}

}  // namespace

TEST_CASE("tokenizer: whole-model gradients match finite differences", "[tok][gradient]") {
  for (bool level_count : {false, true})
  for (int m : {1, 2}) {
    auto cfg = tiny_config();
    cfg.level_count_embedding = level_count;
    INFO("level_count_embedding " << level_count << ", m " << m);
    tok::Tokenizer<Exec, double> model(cfg, optim::ArenaState::ParamsAndOptimizer);
    model.init(Exec(), 7);
    // Non-trivial biases and norms so every path is exercised.
    fill_uniform(model.arena().params, 3, -0.3, 0.3);
    auto x = make5<double>(2, 1, 5, 7, 2);   // 5x7 pixels on a 2x3 patch grid: non-integer patch sizes
    auto y = make5<double>(2, 1, 6, 9, 2);   // decoded at another resolution
    auto proj = make5<double>(2, 1, 6, 9, 2);
    fill_uniform(x, 11, 0, 1);
    fill_uniform(proj, 12);
    loss_and_grad(model, x, m, y, proj, true);
    const auto grads = model.arena().grads;
    View1<double, Mem> gcopy("g", grads.extent(0));
    Kokkos::deep_copy(gcopy, grads);
    for (const auto& s : model.arena().layout.slots()) {
      // levels > m must get no gradient through the decoder
      auto p = model.arena().flat(s, model.arena().params);
      auto g = model.arena().flat(s, gcopy);
      test::check_gradient(s.name.c_str(), Exec(), p, g,
                           [&] { return loss_and_grad(model, x, m, y, proj, false); }, 1e-5, 2e-6, 6);
    }
  }
}

TEST_CASE("tokenizer: levels are causal in the encoder and the decoder", "[tok]") {
  const auto cfg = tiny_config();
  tok::Tokenizer<Exec, double> model(cfg);
  model.init(Exec(), 5);
  auto x = make5<double>(1, 1, 8, 8, 2);
  fill_uniform(x, 1, 0, 1);
  const std::size_t N = std::size_t(cfg.latent_tokens()), c = std::size_t(cfg.latent_channels);
  View3<double, Mem> z1("z1", 1, N, c), z2("z2", 1, N, c);
  model.encode(Exec(), x, z1);
  // Perturb the learned latent token of level 2: level-1 latents must not move (bit for bit).
  const auto lat = model.params().enc_latent;
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), lat);
  h(2, 0) += 0.5;
  Kokkos::deep_copy(lat, h);
  model.encode(Exec(), x, z2);
  const auto a = to_doubles(z1), b = to_doubles(z2);
  bool later_changed = false;
  for (std::size_t i = 0; i < N * c; ++i) {
    if (i / c < std::size_t(cfg.level_sizes[0])) REQUIRE(a[i] == b[i]);
    else later_changed |= a[i] != b[i];
  }
  REQUIRE(later_changed);  // the perturbation is real
  // Decoding with m = 1 ignores levels > 1.
  auto y1 = make5<double>(1, 1, 12, 12, 2), y2 = make5<double>(1, 1, 12, 12, 2);
  model.decode(Exec(), z1, 1, y1);
  model.decode(Exec(), z2, 1, y2);
  REQUIRE(to_doubles(y1) == to_doubles(y2));
  model.decode(Exec(), z1, 2, y1);
  model.decode(Exec(), z2, 2, y2);
  REQUIRE(to_doubles(y1) != to_doubles(y2));
}

TEST_CASE("tokenizer: one latent decodes to any size, aspect and frame count", "[tok]") {
  auto cfg = tiny_config();
  cfg.kt = 2;  // 2 temporal patches per second
  tok::Tokenizer<Exec, float> model(cfg);
  model.init(Exec(), 9);
  auto x = make5<float>(2, 4, 8, 8, 2);  // 4 frames at 4 fps -> 2 temporal patches
  fill_uniform(x, 2, 0, 1);
  View3<float, Mem> z("z", 2, std::size_t(cfg.latent_tokens()), std::size_t(cfg.latent_channels));
  model.encode(Exec(), x, z, 4.0);
  struct Out { int t, h, w; double fps; };
  for (const Out o : {Out{1, 2, 2, 0}, Out{1, 16, 16, 0}, Out{1, 9, 23, 0}, Out{2, 8, 8, 2.0}, Out{6, 5, 7, 6.0}}) {
    auto y = make5<float>(2, std::size_t(o.t), std::size_t(o.h), std::size_t(o.w), 2);
    model.decode(Exec(), z, 2, y, o.fps);
    for (double v : to_doubles(y)) REQUIRE(std::isfinite(v));
  }
  // Bad requests are refused with the offending value.
  auto bad = make5<float>(2, 1, 1, 1, 2);  // fewer pixels than patches
  REQUIRE_THROWS_WITH(model.decode(Exec(), z, 2, bad), Catch::Contains("1"));
  auto y = make5<float>(2, 1, 8, 8, 2);
  REQUIRE_THROWS_WITH(model.decode(Exec(), z, 3, y), Catch::Contains("levels = 3"));
  auto wrongc = make5<float>(2, 1, 8, 8, 3);
  REQUIRE_THROWS_WITH(model.encode(Exec(), wrongc, z), Catch::Contains("x is (2, 1, 8, 8, 3)"));
}

TEST_CASE("tokenizer: cell floors change only pixels smaller than the floor; files and the trainer keep them",
          "[tok]") {
  // tiny_config has k = 2: a floor of 2 / 8 leaves inputs and outputs of <= 8 pixels bit for bit as they were
  // and changes a 16-pixel decode (or a 16-pixel input's latent); the floor is in the file's metadata.
  const auto cfg = tiny_config();
  auto cfl = cfg;
  cfl.cell_floor_in = 2.0 / 8;
  cfl.cell_floor_out = 2.0 / 8;
  TokF plain(cfg), floored(cfl);
  plain.init(Exec(), 31);
  floored.init(Exec(), 31);
  auto x8 = make5<float>(2, 1, 8, 8, 2), x16 = make5<float>(2, 1, 16, 16, 2);
  fill_uniform(x8, 4, 0, 1);
  fill_uniform(x16, 5, 0, 1);
  View3<float, Mem> za("za", 2, 3, 3), zb("zb", 2, 3, 3);
  plain.encode(Exec(), x8, za);
  floored.encode(Exec(), x8, zb);
  REQUIRE(to_doubles(za) == to_doubles(zb));
  for (const int r : {4, 7, 8, 16}) {
    auto ya = make5<float>(2, 1, std::size_t(r), std::size_t(r), 2), yb = make5<float>(2, 1, std::size_t(r), std::size_t(r), 2);
    plain.decode(Exec(), za, 2, ya);
    floored.decode(Exec(), za, 2, yb);
    INFO("decode at " << r << " px");
    if (r <= 8) REQUIRE(to_doubles(ya) == to_doubles(yb));
    else REQUIRE(to_doubles(ya) != to_doubles(yb));
  }
  plain.encode(Exec(), x16, za);
  floored.encode(Exec(), x16, zb);
  REQUIRE(to_doubles(za) != to_doubles(zb));
  // A floored 16-px decode is the plain model's decode with the 8-px cell features at the 16-px positions:
  // equal to setting the floor afterwards.
  plain.set_cell_floors(2.0 / 8, 2.0 / 8);
  auto y1 = make5<float>(2, 1, 16, 16, 2), y2 = make5<float>(2, 1, 16, 16, 2);
  plain.decode(Exec(), za, 2, y1);
  floored.decode(Exec(), za, 2, y2);
  REQUIRE(to_doubles(y1) == to_doubles(y2));
  REQUIRE_THROWS_WITH(plain.set_cell_floors(-1, 0), Catch::Contains("cell_floor_in = -1"));
  // Files: the floors round-trip; metadata without them (older files) loads with none.
  auto md = cfl.to_metadata();
  REQUIRE(md.at("tok.cell_floor_out") == "0.25");
  REQUIRE(tok::TokenizerConfig::from_metadata(md, "f").cell_floor_in == 0.25);
  md.erase("tok.cell_floor_in");
  md.erase("tok.cell_floor_out");
  REQUIRE(tok::TokenizerConfig::from_metadata(md, "f").cell_floor_out == 0);
  // The trainer records k / (largest input scale) and k / (largest target scale), final lists included.
  tok::TrainOptions o;
  o.in_res = {6, 9};
  o.out_res = {9, 12};
  o.final_out_res = {16};
  const auto tc = tok::with_training_cell_floors(cfg, o);
  REQUIRE(tc.cell_floor_in == 2.0 / 9);
  REQUIRE(tc.cell_floor_out == 2.0 / 16);
  REQUIRE(tok::TokenizerTrainer<Exec, float>(cfg, o).model().config().cell_floor_out == 2.0 / 16);
  REQUIRE(tok::with_training_cell_floors(cfl, o).cell_floor_in == 0.25);  // a floor already set is kept
}

TEST_CASE("tokenizer: a decode over the memory budget runs in tiles and equals the whole-grid decode", "[tok]") {
  auto cfg = tiny_config();
  cfg.kt = 2;
  TokF whole(cfg), tiled(cfg);
  whole.init(Exec(), 12);
  tiled.init(Exec(), 12);
  auto x = make5<float>(2, 4, 8, 8, 2);
  fill_uniform(x, 3, 0, 1);
  View3<float, Mem> z("z", 2, std::size_t(cfg.latent_tokens()), std::size_t(cfg.latent_channels));
  whole.encode(Exec(), x, z, 4.0);
  const std::size_t per = tok::decode_bytes_per_pixel(cfg, 2, sizeof(float));
  struct Out { int t, h, w; double fps; std::size_t budget_px; };
  // Tiles of 37 pixels (no divisor of the sizes; tiles cross rows and frames), 1 pixel, and 5000 (one
  // tile holds the image: the plan is not tiled).
  for (const Out o : {Out{1, 19, 23, 0, 37}, Out{6, 5, 7, 6.0, 37}, Out{1, 6, 9, 0, 1}, Out{1, 40, 40, 0, 5000}}) {
    INFO("output " << o.t << "x" << o.h << "x" << o.w << ", tile " << o.budget_px << " pixels");
    tiled.set_decode_memory(o.budget_px * per);
    REQUIRE(tiled.decode_tile_pixels(2) == int(o.budget_px));
    const auto g = tiled.grid(o.t, o.h, o.w, o.fps);
    REQUIRE(tiled.decode_plan(Exec(), 2, g, 2).tile == std::min(int(o.budget_px), g.num_pixels()));
    for (int m = 1; m <= 2; ++m) {
      auto y0 = make5<float>(2, std::size_t(o.t), std::size_t(o.h), std::size_t(o.w), 2);
      auto y1 = make5<float>(2, std::size_t(o.t), std::size_t(o.h), std::size_t(o.w), 2);
      fill_uniform(y1, 5, -9, 9);  // every value must be overwritten
      whole.decode(Exec(), z, m, y0, o.fps);
      tiled.decode(Exec(), z, m, y1, o.fps);
      const auto a = to_doubles(y0), b = to_doubles(y1);
      REQUIRE(a.size() == b.size());
      for (std::size_t i = 0; i < a.size(); ++i) REQUIRE(b[i] == Approx(a[i]).epsilon(1e-5).margin(1e-6));
    }
  }
  // The scratch of a tiled decode is bounded by the tile: a 64 x 64 decode in tiles of 100 pixels takes
  // less than a tenth of the whole-grid decode's scratch.
  TokF big(cfg), small(cfg);
  big.set_decode_memory(std::size_t(1) << 40);
  small.set_decode_memory(100 * per);
  auto y = make5<float>(2, 1, 64, 64, 2);
  big.decode(Exec(), z, 2, y);
  small.decode(Exec(), z, 2, y);
  INFO("scratch: whole grid " << big.scratch_bytes() << " B, tiled " << small.scratch_bytes() << " B");
  REQUIRE(small.scratch_bytes() * 10 < big.scratch_bytes());
  REQUIRE_THROWS_WITH(small.set_decode_memory(0), Catch::Contains("bytes = 0"));
  Scratch<float, Mem> scratch("scratch");
  REQUIRE_THROWS_WITH(tok::make_decode_plan(Exec(), cfg, small.params(), 2, small.grid(1, 8, 8), 2, false, scratch, -1),
                      Catch::Contains("make_decode_plan") && Catch::Contains("max_tile_pixels = -1"));
}

TEST_CASE("tokenizer: a training window decodes its pixels and backpropagates exactly their gradients", "[tok]") {
  // Reference: the whole-grid decode, and the whole-grid backward of a dy that is zero outside the window.
  const auto cfg = tiny_config();  // kt = 0: one temporal patch per clip
  tok::Tokenizer<Exec, double> model(cfg, optim::ArenaState::ParamsAndOptimizer);
  model.init(Exec(), 7);
  fill_uniform(model.arena().params, 3, -0.3, 0.3);
  Exec space;
  struct Out { int t, h, w; };
  for (const Out o : {Out{1, 6, 9}, Out{3, 5, 7}}) {  // an image and a 3-frame video (windows cross frames)
    auto x = make5<double>(2, 1, 5, 7, 2);
    auto y = make5<double>(2, std::size_t(o.t), std::size_t(o.h), std::size_t(o.w), 2);
    auto proj = make5<double>(2, std::size_t(o.t), std::size_t(o.h), std::size_t(o.w), 2);
    fill_uniform(x, 11, 0, 1);
    fill_uniform(proj, 12);
    const auto g = model.grid(o.t, o.h, o.w);
    const int npix = g.num_pixels(), C = cfg.channels;
    for (int m : {1, 2}) {
      loss_and_grad(model, x, m, y, proj, false);
      const auto hy = to_doubles(y), hproj = to_doubles(proj);
      for (const int win : {10, 1, npix - 1}) {
        for (const int first : {0, npix / 2 - win / 2, npix - win}) {
          INFO("output " << o.t << "x" << o.h << "x" << o.w << ", m " << m << ", window [" << first << ", "
                         << first + win << ") of " << npix);
          // The whole-grid gradients of the window's part of the loss.
          auto masked = make5<double>(2, std::size_t(o.t), std::size_t(o.h), std::size_t(o.w), 2);
          {
            std::vector<double> hm(hproj.size(), 0.0);
            for (int b = 0; b < 2; ++b)
              for (int i = first * C; i < (first + win) * C; ++i)
                hm[std::size_t(b * npix * C + i)] = hproj[std::size_t(b * npix * C + i)];
            auto h = Kokkos::create_mirror_view(masked);
            std::copy(hm.begin(), hm.end(), h.data());
            Kokkos::deep_copy(masked, h);
          }
          loss_and_grad(model, x, m, y, masked, true);
          const auto gref = to_doubles(model.arena().grads);
          // The window plan.
          const int bsz = 2;
          View3<double, Mem> z("z", 2, std::size_t(cfg.latent_tokens()), std::size_t(cfg.latent_channels));
          View3<double, Mem> dz("dz", 2, std::size_t(cfg.latent_tokens()), std::size_t(cfg.latent_channels));
          View3<double, Mem> yw("yw", 2, std::size_t(win), std::size_t(C)), dyw("dyw", 2, std::size_t(win), std::size_t(C));
          {
            auto h = Kokkos::create_mirror_view(dyw);
            for (int b = 0; b < 2; ++b)
              for (int i = 0; i < win * C; ++i) h.data()[b * win * C + i] = hproj[std::size_t((b * npix + first) * C + i)];
            Kokkos::deep_copy(dyw, h);
          }
          const auto& ep = model.encode_plan(space, bsz, model.grid(1, 5, 7), true);
          auto& dp = model.decode_plan(space, bsz, g, m, true, win);
          REQUIRE(dp.window);
          REQUIRE(dp.tile == win);
          tok::set_decode_window(space, cfg, dp, first);
          tok::encode_forward(space, x, model.params(), cfg, z, ep);
          tok::decode_forward_window(space, z, model.params(), cfg, yw, dp);
          const auto hyw = to_doubles(yw);
          for (int b = 0; b < 2; ++b)
            for (int i = 0; i < win * C; ++i)
              REQUIRE(hyw[std::size_t(b * win * C + i)] ==
                      Approx(hy[std::size_t((b * npix + first) * C + i)]).epsilon(1e-12).margin(1e-14));
          optim::zero_grad(space, model.arena());
          tok::decode_backward(space, dyw, model.params(), model.grads(), cfg, dp, dz);
          tok::encode_backward(space, dz, x, model.params(), model.grads(), cfg, ep);
          CHECK(test::rel_error(to_doubles(model.arena().grads), gref) < 1e-12);
        }
      }
    }
  }
  // Errors: a window plan is decoded with decode_forward_window, windows lie inside the output, inference plans
  // have no window.
  const auto g = model.grid(1, 6, 9);
  auto& dp = model.decode_plan(space, 2, g, 2, true, 10);
  auto& whole = model.decode_plan(space, 2, g, 2, true);
  REQUIRE_FALSE(whole.window);
  REQUIRE_THROWS_WITH(tok::set_decode_window(space, cfg, dp, 45),
                      Catch::Contains("set_decode_window") && Catch::Contains("first = 45") &&
                          Catch::Contains("must start in [0, 44]"));
  REQUIRE_THROWS_WITH(tok::set_decode_window(space, cfg, whole, 0),
                      Catch::Contains("set_decode_window") && Catch::Contains("not built as a training window"));
  View3<double, Mem> z("z", 2, std::size_t(cfg.latent_tokens()), std::size_t(cfg.latent_channels));
  auto y = make5<double>(2, 1, 6, 9, 2);
  View3<double, Mem> yw("yw", 2, 9, 2);
  REQUIRE_THROWS_WITH(tok::decode_forward(space, z, model.params(), cfg, y, dp),
                      Catch::Contains("use decode_forward_window"));
  REQUIRE_THROWS_WITH(tok::decode_forward_window(space, z, model.params(), cfg, yw, dp),
                      Catch::Contains("output is (2, 9, 2)") && Catch::Contains("expects (2, 10, 2)"));
  REQUIRE_THROWS_WITH(model.decode_plan(space, 2, g, 2, false, 10),
                      Catch::Contains("window_pixels = 10") && Catch::Contains("training plans only"));
}

TEST_CASE("tokenizer: latent noise relative to each level's RMS", "[tok]") {
  // decode(z, noise s * rms_l * eps) must equal decode(z + s * rms_l * eps) without noise, eps the same Philox
  // normals (stream (seed, stream), scaled on the host here), rms_l over the batch's rows of level l.
  const auto cfg = tiny_config();  // levels of 1 and 2 tokens
  tok::Tokenizer<Exec, double> model(cfg, optim::ArenaState::ParamsAndOptimizer);
  model.init(Exec(), 5);
  Exec space;
  const std::size_t B = 3, N = std::size_t(cfg.latent_tokens()), c = std::size_t(cfg.latent_channels);
  View3<double, Mem> z("z", B, N, c), zn("zn", B, N, c), eps("eps", B, N, c);
  fill_uniform(z, 21, -2, 2);
  {  // level 2 ten times larger than level 1: a fixed std would drown level 1
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), z);
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t t = 1; t < N; ++t)
        for (std::size_t ch = 0; ch < c; ++ch) h(b, t, ch) *= 10;
    Kokkos::deep_copy(z, h);
  }
  const double s = 0.1;
  const auto g = model.grid(1, 6, 9);
  for (int m : {1, 2}) {
    INFO("levels " << m);
    // The expected noisy latent, levels 1..m (rows beyond m are not decoded).
    const std::size_t Nm = std::size_t(cfg.tokens_upto(m));
    View3<double, Mem> em("em", B, Nm, c);
    rng::fill_normal(space, em, 9, 77, 0.0, 1.0);
    auto hz = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), z);
    auto he = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), em);
    auto hn = Kokkos::create_mirror_view(zn);
    Kokkos::deep_copy(hn, hz);
    for (int l = 0; l < m; ++l) {
      const int t0 = cfg.tokens_upto(l), t1 = cfg.tokens_upto(l + 1);
      double ss = 0;
      for (std::size_t b = 0; b < B; ++b)
        for (int t = t0; t < t1; ++t)
          for (std::size_t ch = 0; ch < c; ++ch) ss += hz(b, t, ch) * hz(b, t, ch);
      const double rms = std::sqrt(ss / double(B * std::size_t(t1 - t0) * c));
      for (std::size_t b = 0; b < B; ++b)
        for (int t = t0; t < t1; ++t)
          for (std::size_t ch = 0; ch < c; ++ch) hn(b, t, ch) += s * rms * he(b, t, ch);
    }
    Kokkos::deep_copy(zn, hn);
    auto y1 = make5<double>(B, 1, 6, 9, 2), y2 = make5<double>(B, 1, 6, 9, 2);
    const auto& dp = model.decode_plan(space, int(B), g, m, true);
    tok::decode_forward(space, z, model.params(), cfg, y1, dp, s, 9, 77, true);
    tok::decode_forward(space, zn, model.params(), cfg, y2, dp);
    CHECK(test::rel_error_views(y1, y2) < 1e-12);
    // The absolute form differs (a sanity check that the test can fail).
    tok::decode_forward(space, z, model.params(), cfg, y1, dp, s, 9, 77, false);
    CHECK(test::rel_error_views(y1, y2) > 1e-6);
  }
  const auto& inf = model.decode_plan(space, int(B), g, 2);
  auto y = make5<double>(B, 1, 6, 9, 2);
  REQUIRE_THROWS_WITH(tok::decode_forward(space, z, model.params(), cfg, y, inf, s, 9, 77, true),
                      Catch::Contains("needs a training plan"));
}

TEST_CASE("tokenizer: the level-count embedding conditions a decode of m levels on row m - 1 only", "[tok]") {
  auto cfg = tiny_config();  // 2 levels
  cfg.level_count_embedding = true;
  tok::Tokenizer<Exec, double> model(cfg);
  model.init(Exec(), 5);
  const auto& table = model.params().dec_level_count;
  REQUIRE(table.extent(0) == 2);
  REQUIRE(table.extent(1) == std::size_t(cfg.width));
  auto x = make5<double>(1, 1, 8, 8, 2);
  fill_uniform(x, 1, 0, 1);
  const std::size_t N = std::size_t(cfg.latent_tokens()), c = std::size_t(cfg.latent_channels);
  View3<double, Mem> z("z", 1, N, c);
  model.encode(Exec(), x, z);
  auto decode = [&](int m) {
    auto y = make5<double>(1, 1, 12, 12, 2);
    model.decode(Exec(), z, m, y);
    return to_doubles(y);
  };
  const auto y1 = decode(1), y2 = decode(2);
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), table);
  h(1, 3) += 0.5;  // row of m = 2
  Kokkos::deep_copy(table, h);
  REQUIRE(decode(1) == y1);
  REQUIRE(decode(2) != y2);
  h(0, 3) += 0.5;  // row of m = 1
  Kokkos::deep_copy(table, h);
  REQUIRE(decode(1) != y1);
  // The flag is part of the file: written, read back, and the weights with it.
  const std::string path = (std::filesystem::temp_directory_path() / "dcsldm_tok_levelcount.safetensors").string();
  model.save(path);
  auto loaded = tok::Tokenizer<Exec, double>::load(path);
  std::filesystem::remove(path);
  REQUIRE(loaded.config().level_count_embedding);
  REQUIRE(loaded.config().to_metadata() == cfg.to_metadata());
  auto y = make5<double>(1, 1, 12, 12, 2);
  loaded.decode(Exec(), z, 2, y);
  REQUIRE(to_doubles(y) == decode(2));
  // Without it, a model file has no such tensor and no such key (files written before it read as off).
  REQUIRE(tiny_config().to_metadata().count("tok.level_count_embedding") == 0);
  REQUIRE_FALSE(tok::tokenizer_layout(tiny_config()).contains("dec.level_count"));
  auto md = cfg.to_metadata();
  md["tok.level_count_embedding"] = "2";
  REQUIRE_THROWS_WITH(tok::TokenizerConfig::from_metadata(md, "f.safetensors"),
                      Catch::Contains("f.safetensors") && Catch::Contains("level_count_embedding"));
}

TEST_CASE("tokenizer: model files round-trip and corrupt files are refused", "[tok][io]") {
  const auto cfg = tiny_config();
  tok::Tokenizer<Exec, float> model(cfg);
  model.init(Exec(), 21);
  const std::string path = (std::filesystem::temp_directory_path() / "dcsldm_tok_roundtrip.safetensors").string();
  model.save(path);
  auto loaded = tok::Tokenizer<Exec, float>::load(path);
  REQUIRE(loaded.config().to_metadata() == cfg.to_metadata());
  auto x = make5<float>(1, 1, 10, 10, 2);
  fill_uniform(x, 3, 0, 1);
  View3<float, Mem> z1("z1", 1, 3, 3), z2("z2", 1, 3, 3);
  model.encode(Exec(), x, z1);
  loaded.encode(Exec(), x, z2);
  REQUIRE(to_doubles(z1) == to_doubles(z2));
  // Truncate: refused, naming the file.
  const auto size = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, size - 10);
  REQUIRE_THROWS_WITH(TokF::load(path), Catch::Contains(path));
  std::filesystem::remove(path);
  REQUIRE_THROWS_WITH(TokF::load(path), Catch::Contains("cannot open"));
}

TEST_CASE("tokenizer: same seed, same results; Serial agrees with the default space", "[tok][determinism]") {
  const auto cfg = tiny_config();
  auto run = [&](auto space_tag) {
    using E = decltype(space_tag);
    using MM = typename E::memory_space;
    tok::Tokenizer<E, float> model(cfg);
    model.init(E(), 33);
    tok::View5<float, MM> x("x", 3, 1, 11, 13, 2), y("y", 3, 1, 17, 19, 2);
    fill_uniform(x, 4, 0, 1);
    View3<float, MM> z("z", 3, 3, 3);
    model.encode(E(), x, z);
    model.decode(E(), z, 2, y);
    return to_doubles(y);
  };
  const auto a = run(Exec()), b = run(Exec());
  REQUIRE(a == b);
#if defined(KOKKOS_ENABLE_SERIAL)
  const auto s = run(Kokkos::Serial());
  REQUIRE(test::rel_error(a, s) < 1e-5);
#endif
}

namespace {
/// Smooth synthetic images: a few Gaussian blobs, rendered exactly at any resolution.
class BlobSource : public tok::TrainSource {
 public:
  int channels() const override { return 2; }
  std::string describe() const override { return "blobs"; }
  void sample(std::int64_t step, int batch, int ri, int ro, float* in, float* out) override {
    for (int b = 0; b < batch; ++b) {
      std::mt19937_64 g(std::uint64_t(step) * 1000 + std::uint64_t(b));
      std::uniform_real_distribution<double> u(0.2, 0.8);
      const double cx = u(g), cy = u(g), s = 0.1 + 0.2 * u(g);
      for (int pass = 0; pass < 2; ++pass) {
        const int r = pass ? ro : ri;
        float* dst = (pass ? out : in) + std::size_t(b) * r * r * 2;
        for (int i = 0; i < r; ++i)
          for (int j = 0; j < r; ++j) {
            const double y = (i + 0.5) / r, x = (j + 0.5) / r;
            const double v = std::exp(-((x - cx) * (x - cx) + (y - cy) * (y - cy)) / (2 * s * s));
            dst[(i * r + j) * 2] = float(v);
            dst[(i * r + j) * 2 + 1] = float(1 - v);
          }
      }
    }
  }
};

/// A short training run on BlobSource: batch 4, inputs 6/9, targets 6/9/12, no logging or checkpoints.
tok::TrainOptions blob_training_options(std::int64_t steps, std::int64_t warmup) {
  tok::TrainOptions o;
  o.batch = 4;
  o.steps = steps;
  o.lr = 3e-3;
  o.min_lr = 3e-4;
  o.warmup = warmup;
  o.in_res = {6, 9};
  o.out_res = {6, 9, 12};
  o.log_every = 1000;
  o.ckpt_every = 0;
  return o;
}
}  // namespace

TEST_CASE("tokenizer trainer: loss falls, and resume continues bit for bit", "[tok][train]") {
  const auto cfg = tiny_config();
  tok::TrainOptions o = blob_training_options(40, 5);
  o.max_target_pixels = 100;  // 12 x 12 targets train on windows of 100 pixels
  BlobSource src;
  Exec space;
  {
    tok::TokenizerTrainer<Exec, float> tr(cfg, o);
    tr.init(space);
    // reserve() sizes both scratch buffers for every scale: no step grows them afterwards.
    tr.reserve(space);
    const std::size_t reserved = tr.model().scratch_bytes();
    CHECK(reserved > 0);
    double first = 0, last = 0;
    for (int s = 0; s < 40; ++s) {
      const auto st = tr.step(space, src);
      if (s < 5) first += st.mse;
      if (s >= 35) last += st.mse;
    }
    REQUIRE(last < 0.5 * first);
    CHECK(tr.model().scratch_bytes() == reserved);
  }
  // Resume: 6 steps straight vs 3 steps, checkpoint, new trainer, 3 more steps.
  const std::string ck = (std::filesystem::temp_directory_path() / "dcsldm_tok_resume.safetensors").string();
  o.steps = 6;
  o.ckpt_path = ck;
  tok::TokenizerTrainer<Exec, float> a(cfg, o);
  a.init(space);
  for (int s = 0; s < 6; ++s) a.step(space, src);
  tok::TokenizerTrainer<Exec, float> b(cfg, o);
  b.init(space);
  for (int s = 0; s < 3; ++s) b.step(space, src);
  b.checkpoint();
  tok::TokenizerTrainer<Exec, float> c(cfg, o);
  REQUIRE(c.resume(space));
  REQUIRE(c.current_step() == 3);
  for (int s = 0; s < 3; ++s) c.step(space, src);
  REQUIRE(to_doubles(a.model().arena().params) == to_doubles(c.model().arena().params));
  REQUIRE(to_doubles(a.ema().params) == to_doubles(c.ema().params));
  // The progress line of a resumed run measures its rate from the resume step: resumed at step 200, the first line
  // reports about one step's rate, not 200 steps' worth in one step's time.
  {
    tok::TrainOptions o2 = o;
    o2.steps = 204;
    o2.log_every = 1;
    o2.ckpt_every = 0;
    o2.ckpt_path = ck + ".rate";
    tok::TokenizerTrainer<Exec, float> e(cfg, o2);
    e.init(space);
    for (int s = 0; s < 200; ++s) e.step(space, src);
    e.checkpoint();
    tok::TokenizerTrainer<Exec, float> f(cfg, o2);
    REQUIRE(f.resume(space));
    f.step(space, src);  // buffers made, caches warm
    const auto t0 = std::chrono::steady_clock::now();
    f.step(space, src);
    const double t_step = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::FILE* log = std::tmpfile();
    REQUIRE(log != nullptr);
    f.run(space, src, log);
    const auto [l, reported] = test::first_progress_line(log);
    INFO(l << "one step took " << t_step << " s");
    REQUIRE(l.rfind("step 203/204", 0) == 0);
    CHECK(reported > 0);
    CHECK(reported < 20 * o2.batch / t_step);  // counting from step 0 would report ~203 steps in one step's time
    std::filesystem::remove(ck + ".rate");
    std::filesystem::remove(ck + ".rate.ema");
  }
  // A checkpoint whose EMA file is from another step is refused.
  c.checkpoint();  // step 6
  std::filesystem::copy_file(ck, ck + ".bak", std::filesystem::copy_options::overwrite_existing);
  b.checkpoint();  // step 3 over both files
  std::filesystem::copy_file(ck + ".bak", ck, std::filesystem::copy_options::overwrite_existing);  // main at 6
  tok::TokenizerTrainer<Exec, float> d(cfg, o);
  REQUIRE_THROWS_WITH(d.resume(space), Catch::Contains("step"));
  tok::TrainOptions bad = o;
  bad.max_target_pixels = -1;
  REQUIRE_THROWS_WITH((tok::TokenizerTrainer<Exec, float>(cfg, bad)),
                      Catch::Contains("TokenizerTrainer") && Catch::Contains("max_target_pixels = -1"));
  bad = o;
  bad.final_fraction = 1.5;
  REQUIRE_THROWS_WITH((tok::TokenizerTrainer<Exec, float>(cfg, bad)), Catch::Contains("final_fraction = 1.5"));
  bad = o;
  bad.final_full_levels_prob = 1.25;
  REQUIRE_THROWS_WITH((tok::TokenizerTrainer<Exec, float>(cfg, bad)),
                      Catch::Contains("final_full_levels_prob = 1.25") && Catch::Contains("above 1"));
  bad = o;
  bad.final_out_res = {9, 0};
  REQUIRE_THROWS_WITH((tok::TokenizerTrainer<Exec, float>(cfg, bad)), Catch::Contains("a scale of 0 pixels"));
  for (const auto& f : {ck, ck + ".ema", ck + ".bak"}) std::filesystem::remove(f);
}

TEST_CASE("tokenizer trainer: init_from fine-tunes from a model file; a checkpoint without cell floors resumes",
          "[tok][train]") {
  const auto cfg = tiny_config();
  tok::TrainOptions o = blob_training_options(6, 2);
  BlobSource src;
  Exec space;
  const auto dir = std::filesystem::temp_directory_path();
  const std::string model = (dir / "dcsldm_tok_from.safetensors").string();
  tok::TokenizerTrainer<Exec, float> a(cfg, o);
  a.init(space);
  for (int s = 0; s < 3; ++s) a.step(space, src);
  a.save_model(model);
  // Fine-tuning with larger targets: the file's (EMA) weights, the EMA a copy, zero moments, step 0, the new
  // run's cell floors (k / 16).
  tok::TrainOptions f = o;
  f.out_res = {12, 16};
  tok::TokenizerTrainer<Exec, float> b(cfg, f);
  b.init(space);
  const auto fresh = to_doubles(b.model().arena().params);
  b.step(space, src);  // moments and step to reset
  b.init_from(space, model);
  REQUIRE(to_doubles(b.model().arena().params) == to_doubles(a.ema().params));
  REQUIRE(to_doubles(b.ema().params) == to_doubles(a.ema().params));
  REQUIRE(b.current_step() == 0);
  REQUIRE(b.model().config().cell_floor_out == 2.0 / 16);
  for (const auto& buf : {b.model().arena().m, b.model().arena().v})
    for (const double v : to_doubles(buf)) REQUIRE(v == 0);
  const auto st = b.step(space, src);
  REQUIRE(st.step == 0);
  REQUIRE(st.lr == Approx(o.lr / 2));  // the warm-up starts over
  // Another architecture, or a damaged file, is refused with nothing copied.
  auto other = cfg;
  other.latent_channels += 1;
  tok::TokenizerTrainer<Exec, float> c(other, f);
  c.init(space);
  const auto before = to_doubles(c.model().arena().params);
  REQUIRE_THROWS_WITH(c.init_from(space, model),
                      Catch::Contains("another architecture") && Catch::Contains("latent_channels 3 vs 4") &&
                          !Catch::Contains("cell_floor"));
  const std::string cut = (dir / "dcsldm_tok_from_cut.safetensors").string();
  {
    std::ifstream in(model, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  tok::TokenizerTrainer<Exec, float> d(cfg, f);
  d.init(space);
  REQUIRE_THROWS(d.init_from(space, cut));
  REQUIRE(to_doubles(c.model().arena().params) == before);
  REQUIRE(to_doubles(d.model().arena().params) == fresh);

  // A checkpoint written before the trainer recorded cell floors (no tok.cell_floor_* metadata) resumes with the
  // trainer's floors and continues bit for bit; one that records other floors is refused.
  const std::string ck = (dir / "dcsldm_tok_oldckpt.safetensors").string();
  o.ckpt_path = ck;
  tok::TokenizerTrainer<Exec, float> straight(cfg, o), part(cfg, o);
  straight.init(space);
  part.init(space);
  for (int s = 0; s < 6; ++s) straight.step(space, src);
  for (int s = 0; s < 3; ++s) part.step(space, src);
  auto md = part.model().config().to_metadata();
  md.erase("tok.cell_floor_in");
  md.erase("tok.cell_floor_out");
  md["dcsldm.kind"] = "tokenizer";
  md["train.step"] = "3";
  optim::save_arena(ck + ".ema", part.ema(), optim::ArenaState::Params, 0, md);
  optim::save_arena(ck, part.model().arena(), optim::ArenaState::ParamsAndOptimizer, 3, md);
  tok::TokenizerTrainer<Exec, float> resumed(cfg, o);
  REQUIRE(resumed.resume(space));
  REQUIRE(resumed.current_step() == 3);
  REQUIRE(resumed.model().config().cell_floor_out == 2.0 / 12);
  for (int s = 0; s < 3; ++s) resumed.step(space, src);
  REQUIRE(to_doubles(resumed.model().arena().params) == to_doubles(straight.model().arena().params));
  part.checkpoint();  // records the floors of out_res {6, 9, 12}
  tok::TrainOptions g = o;
  g.out_res = {6, 9, 12, 16};
  tok::TokenizerTrainer<Exec, float> refused(cfg, g);
  REQUIRE_THROWS_WITH(refused.resume(space),
                      Catch::Contains("another configuration") && Catch::Contains("cell_floor_out"));
  for (const auto& p : {model, cut, ck, ck + ".ema"}) std::filesystem::remove(p);
}

TEST_CASE("tokenizer trainer: the final phase moves the step choices to the final lists", "[tok][train]") {
  const auto cfg = tiny_config();
  tok::TrainOptions o;
  o.steps = 4000;
  o.in_res = {6, 9};
  o.out_res = {6, 9};
  o.full_levels_prob = 0.5;
  tok::TokenizerTrainer<Exec, float> plain(cfg, o);
  o.final_fraction = 0.5;
  o.final_full_levels_prob = 1.0;
  o.final_in_res = {12};
  o.final_out_res = {15};
  tok::TokenizerTrainer<Exec, float> fin(cfg, o);
  const int L = cfg.levels();
  // Before the final phase the choices are the plain recipe's, step for step.
  for (std::int64_t s = 0; s < 2000; ++s) REQUIRE(plain.choices(s) == fin.choices(s));
  REQUIRE(fin.final_weight(1999) == 0.0);
  REQUIRE(fin.final_weight(3999) == 1.0);
  // In it, the share of final scales and of full-level steps follows the linear weight r: counts per quarter of
  // the phase within 4 sigma of their expectation.
  for (int q = 0; q < 4; ++q) {
    double expect_in = 0, expect_full = 0;
    int n_in = 0, n_out = 0, n_full = 0;
    for (std::int64_t s = 2000 + 500 * q; s < 2000 + 500 * (q + 1); ++s) {
      const double r = fin.final_weight(s);
      expect_in += r;
      expect_full += 0.5 + 0.5 * r + (0.5 - 0.5 * r) / L;  // m = L also drawn uniformly
      const auto [ri, ro, m] = fin.choices(s);
      REQUIRE((ri == 12 || ri == 6 || ri == 9));
      REQUIRE((ro == 15 || ro == 6 || ro == 9));
      n_in += ri == 12;
      n_out += ro == 15;
      n_full += m == L;
    }
    INFO("quarter " << q << ": final inputs " << n_in << ", targets " << n_out << ", full " << n_full);
    REQUIRE(std::abs(n_in - expect_in) < 4 * std::sqrt(500 * 0.25) + 1);
    REQUIRE(std::abs(n_out - expect_in) < 4 * std::sqrt(500 * 0.25) + 1);
    REQUIRE(std::abs(n_full - expect_full) < 4 * std::sqrt(500 * 0.25) + 1);
  }
  // The last step draws only from the final lists and decodes every level.
  const auto [ri, ro, m] = fin.choices(3999);
  REQUIRE(ri == 12);
  REQUIRE(ro == 15);
  REQUIRE(m == L);
}

TEST_CASE("tokenizer trainer: a prefix step with prefix_full_weight adds the all-levels decode's gradient",
          "[tok][train]") {
  // G(prefix + w * all levels) = G(prefix) + w * G(all levels) for the same step (same data, scales, window), with
  // no latent noise or L2 so the two decodes are the only terms; raw gradients (no clipping), float sums.
  const auto cfg = tiny_config();
  const int L = cfg.levels();
  const double w = 0.5;
  for (const int window : {0, 40}) {
    tok::TrainOptions o = raw_gradient_options(window);
    o.in_res = {6, 9};
    o.out_res = {9, 12};
    o.seed = 1;
    while (std::get<2>(tok::TokenizerTrainer<Exec, float>(cfg, o).choices(0)) == L) ++o.seed;  // a prefix step
    tok::TrainOptions o_full = o, o_both = o;
    o_full.full_levels_prob = 1;  // the same scales and window, all levels
    o_both.prefix_full_weight = w;
    BlobSource src;
    Exec space;
    tok::TokenizerTrainer<Exec, float> prefix(cfg, o), full(cfg, o_full), both(cfg, o_both);
    for (auto* t : {&prefix, &full, &both}) t->init(space);
    REQUIRE(std::get<0>(prefix.choices(0)) == std::get<0>(full.choices(0)));
    REQUIRE(std::get<1>(prefix.choices(0)) == std::get<1>(full.choices(0)));
    const auto sp = prefix.step(space, src), sf = full.step(space, src), sb = both.step(space, src);
    INFO("window " << window << ", seed " << o.seed << ", levels " << sp.levels);
    REQUIRE(sp.levels < L);
    REQUIRE(sf.levels == L);
    REQUIRE(sp.full_mse == -1.0);
    REQUIRE(sf.full_mse == -1.0);  // a full-level step decodes once
    REQUIRE(sb.mse == sp.mse);     // the prefix decode is unchanged
    REQUIRE(sb.full_mse == Approx(sf.mse).epsilon(1e-6));
    REQUIRE(sb.full_l1 == Approx(sf.l1).epsilon(1e-6));
    const auto gp = to_doubles(prefix.model().arena().grads), gf = to_doubles(full.model().arena().grads),
               gb = to_doubles(both.model().arena().grads);
    double scale = 0, err = 0, full_part = 0;
    for (std::size_t i = 0; i < gb.size(); ++i) {
      scale = std::max(scale, std::abs(gb[i]));
      err = std::max(err, std::abs(gb[i] - (gp[i] + w * gf[i])));
      full_part = std::max(full_part, std::abs(w * gf[i]));
    }
    INFO("max |g| " << scale << ", max error " << err << ", max |w g_full| " << full_part);
    REQUIRE(full_part > 1e-3 * scale);  // the all-levels term is not negligible
    REQUIRE(err <= 1e-5 * scale);
  }
  tok::TrainOptions bad;
  bad.prefix_full_weight = -1;
  REQUIRE_THROWS_WITH((tok::TokenizerTrainer<Exec, float>(cfg, bad)), Catch::Contains("prefix_full_weight = -1"));
}

TEST_CASE("tokenizer trainer: prefix_encoder_grad scales the prefix decode's gradient into the encoder only",
          "[tok][train]") {
  // With prefix_full_weight w and prefix_encoder_grad s, a prefix step's gradient is G(prefix) + w G(all levels)
  // for the decoder's parameters and s G(prefix) + w G(all levels) for the encoder's (no noise, no L2, no clipping);
  // with all_targets, for the sum over the step's target scales (the later targets' prefix gradients are scaled too).
  const auto cfg = tiny_config();
  const int L = cfg.levels();
  const double w = 0.5;
  for (const bool all_targets : {false, true}) {
    INFO("all_targets " << all_targets);
    tok::TrainOptions o = raw_gradient_options(0);
    o.all_targets = all_targets;
    o.in_res = {6, 9};
    o.out_res = {9, 12};
    o.seed = 1;
    while (std::get<2>(tok::TokenizerTrainer<Exec, float>(cfg, o).choices(0)) == L) ++o.seed;  // a prefix step
    tok::TrainOptions o_full = o;
    o_full.full_levels_prob = 1;
    BlobSource src;
    Exec space;
    tok::TokenizerTrainer<Exec, float> prefix(cfg, o), full(cfg, o_full);
    for (auto* t : {&prefix, &full}) t->init(space);
    REQUIRE(prefix.step(space, src).levels < L);
    full.step(space, src);
    const auto& arena = prefix.model().arena();
    const auto gp = to_doubles(arena.grads), gf = to_doubles(full.model().arena().grads);
    for (const double sc : {0.0, 0.25}) {
      tok::TrainOptions o_s = o;
      o_s.prefix_full_weight = w;
      o_s.prefix_encoder_grad = sc;
      tok::TokenizerTrainer<Exec, float> t(cfg, o_s);
      t.init(space);
      t.step(space, src);
      const auto g = to_doubles(t.model().arena().grads);
      double scale = 0, err = 0, enc_prefix = 0;
      for (const auto& slot : arena.layout.slots()) {
        const bool enc = slot.name.rfind("enc.", 0) == 0;
        for (std::size_t i = slot.offset; i < slot.offset + slot.numel(); ++i) {
          scale = std::max(scale, std::abs(g[i]));
          err = std::max(err, std::abs(g[i] - ((enc ? sc : 1.0) * gp[i] + w * gf[i])));
          if (enc) enc_prefix = std::max(enc_prefix, std::abs(gp[i]));
        }
      }
      INFO("prefix_encoder_grad " << sc << ": max |g| " << scale << ", max error " << err);
      REQUIRE(enc_prefix > 1e-3 * scale);  // the prefix decode does reach the encoder when s = 1
      REQUIRE(err <= 1e-5 * scale);
    }
  }
  tok::TrainOptions bad;
  bad.prefix_encoder_grad = 1.5;
  REQUIRE_THROWS_WITH((tok::TokenizerTrainer<Exec, float>(cfg, bad)), Catch::Contains("prefix_encoder_grad = 1.5"));
}

TEST_CASE("tokenizer trainer: all_targets decodes every target scale of a step, the gradient the targets' mean",
          "[tok][train]") {
  // One input scale and all levels, so the one-target trainers (out_res {9} and {12}) make the same choices as
  // the all-targets one (out_res {9, 12}): G(all) = (G(9) + G(12)) / 2, losses the mean; no noise, no L2.
  const auto cfg = tiny_config();
  for (const int window : {0, 40}) {
    tok::TrainOptions o = raw_gradient_options(window);
    o.in_res = {6};
    o.out_res = {9, 12};
    o.full_levels_prob = 1;
    tok::TrainOptions o9 = o, o12 = o;
    o.all_targets = true;
    o9.out_res = {9};
    o12.out_res = {12};
    BlobSource src;
    Exec space;
    tok::TokenizerTrainer<Exec, float> all(cfg, o), t9(cfg, o9), t12(cfg, o12);
    for (auto* t : {&all, &t9, &t12}) t->init(space);
    for (std::int64_t s = 0; s < 8; ++s) {  // the drawn target first, then the list's other one
      const auto ts = all.targets(s);
      REQUIRE(ts.size() == 2);
      REQUIRE(ts[0] == std::get<1>(all.choices(s)));
      REQUIRE(ts[0] + ts[1] == 21);
    }
    REQUIRE(t9.targets(0) == std::vector<int>{9});
    const auto sa = all.step(space, src), s9 = t9.step(space, src), s12 = t12.step(space, src);
    INFO("window " << window);
    REQUIRE(sa.targets == 2);
    REQUIRE(s9.targets == 1);
    REQUIRE(sa.mse == Approx((s9.mse + s12.mse) / 2).epsilon(1e-6));
    REQUIRE(sa.l1 == Approx((s9.l1 + s12.l1) / 2).epsilon(1e-6));
    const auto ga = to_doubles(all.model().arena().grads), g9 = to_doubles(t9.model().arena().grads),
               g12 = to_doubles(t12.model().arena().grads);
    double scale = 0, err = 0, diff = 0;
    for (std::size_t i = 0; i < ga.size(); ++i) {
      scale = std::max(scale, std::abs(ga[i]));
      err = std::max(err, std::abs(ga[i] - 0.5 * (g9[i] + g12[i])));
      diff = std::max(diff, std::abs(g9[i] - g12[i]));
    }
    INFO("max |g| " << scale << ", max error " << err << ", max |g9 - g12| " << diff);
    REQUIRE(diff > 1e-2 * scale);  // the two targets' gradients differ: the test sees both
    REQUIRE(err <= 1e-5 * scale);
  }
  // In the final phase the list is the one the target was drawn from.
  tok::TrainOptions f;
  f.steps = 100;
  f.in_res = {6};
  f.out_res = {9};
  f.final_fraction = 0.5;
  f.final_out_res = {12, 15};
  f.all_targets = true;
  tok::TokenizerTrainer<Exec, float> fin(cfg, f);
  REQUIRE(fin.targets(0) == std::vector<int>{9});
  REQUIRE(fin.targets(99).size() == 2);
  REQUIRE(fin.targets(99)[0] + fin.targets(99)[1] == 27);
}
