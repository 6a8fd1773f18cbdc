// 02_any_resolution: one latent per class, sampled once, decoded at several resolutions and aspect ratios.
// The DiT never sees the output size: only the tokenizer's decoder does.
//   02_any_resolution [models_dir] [out_prefix] [steps]
#include <dcsldm/image/png.hpp>
#include <dcsldm/pipeline.hpp>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

int main(int argc, char** argv) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  using Exec = Kokkos::DefaultExecutionSpace;
  const std::string dir = argc > 1 ? argv[1] : DCSLDM_MODELS_DIR, prefix = argc > 2 ? argv[2] : "02_any_resolution";
  auto pipe = dcsldm::Pipeline<Exec>::load(dir + "/fmnist_tok.safetensors", dir + "/fmnist_dit.safetensors");
  const Exec space;

  dcsldm::GenerateRequest req;
  req.labels = {0, 3, 5, 7, 9};
  req.steps = argc > 3 ? std::stoi(argv[3]) : 20;
  req.sampler = dcsldm::dit::Integrator::DpmSolver2M;
  req.seed = 2;
  pipe.sample_latents(space, req);  // the latent: pipe.latent(5), (5, 32, 8)

  const std::vector<std::pair<int, int>> sizes = {{28, 28}, {64, 64}, {112, 112}, {48, 96}, {96, 48}};
  for (const auto& [h, w] : sizes) {
    const auto& y = pipe.images(5, 1, h, w);  // the pipeline's buffer for this shape
    pipe.decode(space, pipe.latent(5), pipe.levels(), y);
    auto hy = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), y);
    dcsldm::image::ImageBatch grid({hy.extent(0), hy.extent(2), hy.extent(3), hy.extent(4)});
    for (std::size_t i = 0; i < grid.size(); ++i) grid.data()[i] = std::min(1.0f, std::max(0.0f, hy.data()[i]));
    const std::string f = prefix + "_" + std::to_string(h) + "x" + std::to_string(w) + ".png";
    dcsldm::image::write_png_grid(f, grid, grid.shape()[0]);
    std::printf("%3d x %3d: wrote %s\n", h, w, f.c_str());
  }
  return 0;
}
