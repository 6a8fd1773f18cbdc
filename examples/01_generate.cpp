// 01_generate: the pipeline in a few lines — load the shipped Fashion-MNIST models, generate one sample of
// every class at 56 x 56 pixels, write a PNG grid.
//   01_generate [models_dir] [out_prefix] [steps]   (writes <out_prefix>.png)
#include <dcsldm/image/png.hpp>
#include <dcsldm/pipeline.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  using Exec = Kokkos::DefaultExecutionSpace;
  const std::string dir = argc > 1 ? argv[1] : DCSLDM_MODELS_DIR, out = std::string(argc > 2 ? argv[2] : "01_generate") + ".png";
  auto pipe = dcsldm::Pipeline<Exec>::load(dir + "/fmnist_tok.safetensors", dir + "/fmnist_dit.safetensors");

  dcsldm::GenerateRequest req;
  for (int k = 0; k < pipe.num_classes(); ++k) req.labels.push_back(k);  // one sample per class
  req.height = req.width = 56;                                         // any output size
  req.steps = argc > 3 ? std::stoi(argv[3]) : 20;
  req.sampler = dcsldm::dit::Integrator::DpmSolver2M;
  req.cfg = 1.5;
  req.seed = 1;
  pipe.generate(Exec(), req);

  // (B, T, H, W, C) on the device -> host -> PNG grid
  auto y = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), pipe.output());
  dcsldm::image::ImageBatch grid({y.extent(0), y.extent(2), y.extent(3), y.extent(4)});
  for (std::size_t i = 0; i < grid.size(); ++i) grid.data()[i] = std::min(1.0f, std::max(0.0f, y.data()[i]));
  dcsldm::image::write_png_grid(out, grid, grid.shape()[0]);
  std::printf("wrote %s: %zu samples at %zu x %zu\n", out.c_str(), y.extent(0), y.extent(2), y.extent(3));
  return 0;
}
