// The shipped tokenizers still measure what docs/tokenizer.md reports. fmnist_tok: on the first 100 Fashion-MNIST
// test images at 28 px, PSNR does not fall with more levels, and all levels stay above the recorded floor.
// glyphs_tok: the 2 dB over bicubic at 64 and 128 px on an unseen font. Skipped (with a message) when a
// model or the data are absent.
#include <dcsldm/eval/tokenizer_eval.hpp>
#include <dcsldm/tok/model.hpp>

#include "testing.hpp"

#include <cmath>
#include <filesystem>

#ifndef DCSLDM_MODELS_DIR
#define DCSLDM_MODELS_DIR ""
#endif

namespace {

using Exec = Kokkos::DefaultExecutionSpace;
using Mem = Exec::memory_space;

/// Encode (at the input's size) and decode with m levels at ro x ro: the evaluation's reconstruction callback.
dcsldm::eval::ReconstructFn reconstruct_with(dcsldm::tok::Tokenizer<Exec, float>& model) {
  return [&model](const dcsldm::image::ImageBatch& in, int m, int ro) {
    const auto& cfg = model.config();
    const std::size_t B = in.shape()[0], ri = in.shape()[1], C = in.shape()[3];
    dcsldm::tok::View5<float, Mem> x("x", B, 1, ri, ri, C), y("y", B, 1, std::size_t(ro), std::size_t(ro), C);
    dcsldm::View3<float, Mem> z("z", B, std::size_t(cfg.latent_tokens()), std::size_t(cfg.latent_channels));
    auto hx = Kokkos::create_mirror_view(x);
    std::copy(in.data(), in.data() + in.size(), hx.data());
    Kokkos::deep_copy(x, hx);
    model.encode(Exec(), x, z);
    model.decode(Exec(), z, m, y);
    auto hy = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), y);
    dcsldm::image::ImageBatch out(std::array<std::size_t, 4>{B, std::size_t(ro), std::size_t(ro), C});
    std::copy(hy.data(), hy.data() + out.size(), out.data());
    return out;
  };
}

}  // namespace

TEST_CASE("shipped fmnist tokenizer: PSNR per level on Fashion-MNIST test", "[tok][shipped]") {
  const std::string path = std::string(DCSLDM_MODELS_DIR) + "/fmnist_tok.safetensors";
  if (!std::filesystem::exists(path) || !std::filesystem::exists(dcsldm::data::fashion_mnist_default_dir())) {
    WARN("skipped: " << path << " or the Fashion-MNIST data is missing");
    return;
  }
  auto model = dcsldm::tok::Tokenizer<Exec, float>::load(path);
  const auto& cfg = model.config();
  const auto src = dcsldm::eval::make_source("fmnist:test", 100, 0);
  const dcsldm::eval::ReconstructFn fn = reconstruct_with(model);
  std::vector<int> levels;
  for (int m = 1; m <= cfg.levels(); ++m) levels.push_back(m);
  const auto rec = dcsldm::eval::evaluate_tokenizer(src, fn, 28, {28}, levels, 50);
  REQUIRE(rec.size() == levels.size());
  for (std::size_t i = 1; i < rec.size(); ++i) {
    INFO("levels " << rec[i].levels << ": " << rec[i].psnr << " dB, levels " << rec[i - 1].levels << ": "
                   << rec[i - 1].psnr << " dB");
    CHECK(rec[i].psnr >= rec[i - 1].psnr - 0.02);
  }
  INFO("all levels: " << rec.back().psnr << " dB");
  CHECK(rec.back().psnr >= DCSLDM_SHIPPED_FMNIST_MIN_PSNR);
}

namespace {

/// Mean absolute step between horizontally or vertically neighbouring pixels of a (B, R, R, 1) batch that straddle
/// a patch edge (patches of `patch` px), over the mean step between the other neighbouring pairs.
double seam_ratio(const dcsldm::image::ImageBatch& y, int patch) {
  const std::size_t B = y.shape()[0], R = y.shape()[1];
  double edge = 0, inner = 0;
  std::size_t ne = 0, ni = 0;
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t i = 0; i < R; ++i)
      for (std::size_t j = 0; j + 1 < R; ++j) {
        const float* img = y.data() + b * R * R;
        const double sx = std::abs(double(img[i * R + j + 1]) - img[i * R + j]);
        const double sy = std::abs(double(img[(j + 1) * R + i]) - img[j * R + i]);
        const bool at_edge = int(j) % patch == patch - 1;
        (at_edge ? edge : inner) += sx + sy;
        (at_edge ? ne : ni) += 2;
      }
  return (edge / double(ne)) / (inner / double(ni));
}

}  // namespace

// Above its 28-px training targets (here 112 px: 16-px patches) the fmnist tokenizer's read-out is evaluated
// closer to patch edges than any training pixel; its recorded edge margin blends across that band, so the patch grid
// does not show: the step across patch edges is about the step elsewhere (measured 1.25 on 300 test images, bicubic
// 1.26; without the blend 5.58, docs/tokenizer.md "Edge blend").
TEST_CASE("shipped fmnist tokenizer: no patch grid at 112 px", "[tok][shipped]") {
  const std::string path = std::string(DCSLDM_MODELS_DIR) + "/fmnist_tok.safetensors";
  if (!std::filesystem::exists(path) || !std::filesystem::exists(dcsldm::data::fashion_mnist_default_dir())) {
    WARN("skipped: " << path << " or the Fashion-MNIST data is missing");
    return;
  }
  auto model = dcsldm::tok::Tokenizer<Exec, float>::load(path);
  CHECK(model.config().edge_margin_out == dcsldm::tok::training_edge_margin(model.config().k, {14, 21, 28}));
  const auto src = dcsldm::eval::make_source("fmnist:test", 32, 0);
  const dcsldm::eval::ReconstructFn fn = reconstruct_with(model);
  const double blended = seam_ratio(fn(src.inputs(0, 32, 28), model.config().levels(), 112), 16);
  model.set_edge_margin(0);
  const double plain = seam_ratio(fn(src.inputs(0, 32, 28), model.config().levels(), 112), 16);
  INFO("seam ratio at 112 px: " << blended << " (without the blend " << plain << ")");
  CHECK(blended < 1.5);
  CHECK(plain > 3);  // the measure sees the grid where it is
}

// The shipped glyph tokenizer on a font never used in training (DejaVu Serif, one placement of each of its 94
// glyphs), 32-px input, all levels: at 64 and at 128 px it beats bicubic upscaling of the input by the issue's
// 2 dB (docs/tokenizer.md: +3.72 / +3.74 dB over 376 placements). The model before the 128-px fine-tune passes
// only at 64 px (+1.05 dB at 128 px on these 94 glyphs).
TEST_CASE("shipped glyph tokenizer: unseen font, 32 px decoded at 64 and 128 px against bicubic", "[tok][shipped]") {
  const std::string path = std::string(DCSLDM_MODELS_DIR) + "/glyphs_tok.safetensors";
  const std::string font = "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf";
  if (!std::filesystem::exists(path) || !std::filesystem::exists(font)) {
    WARN("skipped: " << path << " or " << font << " is missing");
    return;
  }
  auto model = dcsldm::tok::Tokenizer<Exec, float>::load(path);
  const auto& cfg = model.config();
  const auto src = dcsldm::eval::make_source("font:" + font, 94, 0);
  const dcsldm::eval::ReconstructFn fn = reconstruct_with(model);
  const auto rec = dcsldm::eval::evaluate_tokenizer(src, fn, 32, {64, 128}, {cfg.levels()}, 47);
  REQUIRE(rec.size() == 2);
  INFO("64 px: " << rec[0].psnr << " dB, bicubic " << rec[0].bicubic_psnr << "; 128 px: " << rec[1].psnr
                 << " dB, bicubic " << rec[1].bicubic_psnr);
  CHECK(rec[0].out_res == 64);
  CHECK(rec[0].psnr >= rec[0].bicubic_psnr + 2.0);
  CHECK(rec[1].out_res == 128);
  CHECK(rec[1].psnr >= rec[1].bicubic_psnr + 2.0);
}
