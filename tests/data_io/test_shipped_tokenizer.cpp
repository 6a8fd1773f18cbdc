// The shipped tokenizers still measure what docs/tokenizer.md reports. fmnist_tok: on the first 100 Fashion-MNIST
// test images at 28 px, PSNR does not fall with more levels, and all levels stay above the recorded floor.
// glyphs_tok: the 2 dB over bicubic at 64 and 128 px on an unseen font. Skipped (with a message) when a
// model or the data are absent.
#include <dcsldm/eval/tokenizer_eval.hpp>
#include <dcsldm/tok/model.hpp>

#include "testing.hpp"

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
