// 05_train_your_own: both models on a folder of your own PNGs, then generation — the whole library path:
//   1. a DCS-Tok tokenizer, trained with asymmetric scale alignment on the folder's images
//      (inputs and targets at different scales of the same image);
//   2. the images' latents, encoded once;
//   3. an unconditional DCS-DiT on those latents;
//   4. samples decoded at two resolutions from the same latents.
//   05_train_your_own <png_folder> <out_prefix> [tokenizer_steps] [dit_steps]
//   05_train_your_own --demo <out_prefix> [...]   (writes 48 synthetic PNGs to <out_prefix>_images first)
#include <dcsldm/dit/latent_set.hpp>
#include <dcsldm/dit/trainer.hpp>
#include <dcsldm/image/png.hpp>
#include <dcsldm/pipeline.hpp>
#include <dcsldm/tok/train_sources.hpp>
#include <dcsldm/tok/trainer.hpp>

#include <cstdio>
#include <filesystem>
#include <random>
#include <string>

namespace {
using Exec = Kokkos::DefaultExecutionSpace;
namespace im = dcsldm::image;

/// Bright discs and squares of random size and place on a dark background, 32 x 32.
void write_demo_images(const std::string& dir) {
  std::filesystem::create_directories(dir);
  std::mt19937 g(7);
  std::uniform_real_distribution<float> u(0, 1);
  for (int i = 0; i < 48; ++i) {
    im::Image img(std::array<std::size_t, 3>{32, 32, 1});
    const float cx = 8 + 16 * u(g), cy = 8 + 16 * u(g), r = 4 + 6 * u(g);
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) {
        const float dx = float(x) + 0.5f - cx, dy = float(y) + 0.5f - cy;
        const bool in = i % 2 ? dx * dx + dy * dy < r * r : std::abs(dx) < r && std::abs(dy) < r;
        img(std::size_t(y), std::size_t(x), 0) = in ? 0.9f : 0.05f;
      }
    im::write_png(dir + "/shape_" + std::to_string(i) + ".png", img);
  }
}

void write_grid(const std::string& path, const dcsldm::tok::View5<float, Exec::memory_space>& y) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), y);
  im::ImageBatch grid({h.extent(0), h.extent(2), h.extent(3), h.extent(4)});
  for (std::size_t i = 0; i < grid.size(); ++i) grid.data()[i] = std::min(1.0f, std::max(0.0f, h.data()[i]));
  im::write_png_grid(path, grid, 8);
}
}  // namespace

int main(int argc, char** argv) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  if (argc < 3) {
    std::fprintf(stderr, "usage: 05_train_your_own <png_folder>|--demo <out_prefix> [tokenizer_steps] [dit_steps]\n");
    return 2;
  }
  const std::string prefix = argv[2];
  std::string folder = argv[1];
  if (folder == "--demo") write_demo_images(folder = prefix + "_images");
  const int tok_steps = argc > 3 ? std::stoi(argv[3]) : 1500, dit_steps = argc > 4 ? std::stoi(argv[4]) : 1500;
  const Exec space;

  // 1. Tokenizer: a small DCS-Tok, inputs at 16 and 32 px, targets at 32 px.
  dcsldm::tok::TokenizerConfig tc;
  tc.k = 4;
  tc.queries = 1;
  tc.width = 64;
  tc.enc_layers = tc.dec_layers = 2;
  tc.level_sizes = {2, 2, 4};
  tc.latent_channels = 4;
  dcsldm::tok::TrainOptions to;
  to.steps = tok_steps;
  to.batch = 16;
  to.warmup = std::min<std::int64_t>(100, tok_steps / 4);
  to.in_res = {16, 32};
  to.out_res = {32};
  to.log_every = std::max(1, tok_steps / 5);
  auto images = dcsldm::tok::png_folder_source(folder, 1, 32, to.seed);  // every PNG, grey, area-resized
  dcsldm::tok::TokenizerTrainer<Exec> tt(tc, to);
  tt.init(space);
  tt.run(space, *images);
  tt.save_model(prefix + "_tok.safetensors");

  // 2. Latents of every image, with the EMA tokenizer just written.
  auto tok = dcsldm::tok::Tokenizer<Exec>::load(prefix + "_tok.safetensors");
  const std::vector<im::Image> pngs = im::read_png_folder(folder, 1);
  std::vector<im::Image> sq;
  for (const auto& p : pngs) sq.push_back(im::resize(p, 32, 32, im::ResizeFilter::Area));
  const im::ImageBatch batch = im::stack_images(sq);
  const dcsldm::dit::LatentSet latents = dcsldm::dit::encode_images(
      space, tok, batch.data(), int(batch.shape()[0]), 32, 32, {}, 16, "images:" + folder);

  // 3. An unconditional DiT on the latents.
  dcsldm::dit::DitConfig dc;
  dc.level_sizes = tc.level_sizes;
  dc.latent_channels = tc.latent_channels;
  dc.width = 64;
  dc.heads = 4;
  dc.layers = 3;
  dc.num_classes = 0;
  dcsldm::dit::DitTrainOptions dopt;
  dopt.steps = dit_steps;
  dopt.batch = 32;
  dopt.lr = 1e-3;
  dopt.warmup = std::min<std::int64_t>(100, dit_steps / 4);
  dopt.log_every = std::max(1, dit_steps / 5);
  dcsldm::dit::DitTrainer<Exec> dtr(dc, dopt, latents);
  dtr.init(space);
  dtr.run(space);
  dtr.save_model(prefix + "_dit.safetensors");

  // 4. Generate with the pipeline: 16 samples, the same latents at 32 and 64 px.
  auto pipe = dcsldm::Pipeline<Exec>::load(prefix + "_tok.safetensors", prefix + "_dit.safetensors");
  dcsldm::GenerateRequest req;
  req.labels.assign(16, 0);
  req.steps = 20;
  req.sampler = dcsldm::dit::Integrator::DpmSolver2M;
  req.cfg = 1.0;  // unconditional: no guidance
  req.height = req.width = 32;
  pipe.generate(space, req);
  write_grid(prefix + "_samples_32.png", pipe.output());
  const auto& y64 = pipe.images(16, 1, 64, 64);
  pipe.decode(space, pipe.latent(16), pipe.levels(), y64);
  write_grid(prefix + "_samples_64.png", y64);
  std::printf("trained on %zu images; wrote %s_{tok,dit}.safetensors and %s_samples_{32,64}.png\n", pngs.size(),
              prefix.c_str(), prefix.c_str());
  return 0;
}
