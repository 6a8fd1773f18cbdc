// The shipped fmnist tokenizer (examples/models/fmnist_tok.safetensors) still measures what docs/tokenizer.md
// reports: on the first 100 Fashion-MNIST test images at 28 px, PSNR does not fall with more levels, and
// all levels stay above the recorded floor. Skipped (with a message) when the model or the data are absent.
#include <dcsldm/eval/tokenizer_eval.hpp>
#include <dcsldm/tok/model.hpp>

#include "testing.hpp"

#include <filesystem>

#ifndef DCSLDM_MODELS_DIR
#define DCSLDM_MODELS_DIR ""
#endif

TEST_CASE("shipped fmnist tokenizer: PSNR per level on Fashion-MNIST test", "[tok][shipped]") {
  using Exec = Kokkos::DefaultExecutionSpace;
  using Mem = Exec::memory_space;
  const std::string path = std::string(DCSLDM_MODELS_DIR) + "/fmnist_tok.safetensors";
  if (!std::filesystem::exists(path) || !std::filesystem::exists(dcsldm::data::fashion_mnist_default_dir())) {
    WARN("skipped: " << path << " or the Fashion-MNIST data is missing");
    return;
  }
  auto model = dcsldm::tok::Tokenizer<Exec, float>::load(path);
  const auto& cfg = model.config();
  const auto src = dcsldm::eval::make_source("fmnist:test", 100, 0);
  const dcsldm::eval::ReconstructFn fn = [&](const dcsldm::image::ImageBatch& in, int m, int ro) {
    const std::size_t B = in.shape()[0];
    dcsldm::tok::View5<float, Mem> x("x", B, 1, 28, 28, 1), y("y", B, 1, std::size_t(ro), std::size_t(ro), 1);
    dcsldm::View3<float, Mem> z("z", B, std::size_t(cfg.latent_tokens()), std::size_t(cfg.latent_channels));
    auto hx = Kokkos::create_mirror_view(x);
    std::copy(in.data(), in.data() + in.size(), hx.data());
    Kokkos::deep_copy(x, hx);
    model.encode(Exec(), x, z);
    model.decode(Exec(), z, m, y);
    auto hy = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), y);
    dcsldm::image::ImageBatch out(std::array<std::size_t, 4>{B, std::size_t(ro), std::size_t(ro), 1});
    std::copy(hy.data(), hy.data() + out.size(), out.data());
    return out;
  };
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
