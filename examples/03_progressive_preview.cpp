// 03_progressive_preview: coarse-to-fine generation with a preview after each level, through a callback
// that may cancel — here it stops after level 2 (an application that has seen enough).
//   03_progressive_preview [models_dir] [out_prefix] [steps]
#include <dcsldm/image/png.hpp>
#include <dcsldm/pipeline.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  using Exec = Kokkos::DefaultExecutionSpace;
  using Mem = Exec::memory_space;
  const std::string dir = argc > 1 ? argv[1] : DCSLDM_MODELS_DIR, prefix = argc > 2 ? argv[2] : "03_preview";
  auto pipe = dcsldm::Pipeline<Exec>::load(dir + "/fmnist_tok.safetensors", dir + "/fmnist_dit.safetensors");

  dcsldm::GenerateRequest req;
  req.labels = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  req.height = req.width = 64;
  req.steps = argc > 3 ? std::stoi(argv[3]) : 20;
  req.sampler = dcsldm::dit::Integrator::DpmSolver2M;
  req.progressive = true;
  req.seed = 3;

  dcsldm::GenerateCallbacks<Exec> cb;
  int steps = 0;
  cb.on_step = [&](int, int, int) { return ++steps, true; };
  cb.on_level = [&](int level, const dcsldm::tok::View5<float, Mem>& preview) {
    auto y = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), preview);
    dcsldm::image::ImageBatch grid({y.extent(0), y.extent(2), y.extent(3), y.extent(4)});
    for (std::size_t i = 0; i < grid.size(); ++i) grid.data()[i] = std::min(1.0f, std::max(0.0f, y.data()[i]));
    const std::string f = prefix + "_level" + std::to_string(level) + ".png";
    dcsldm::image::write_png_grid(f, grid, grid.shape()[0]);
    std::printf("level %d of %d after %d sampler steps: wrote %s\n", level, pipe.levels(), steps, f.c_str());
    return level < 2;  // cancel after the second level
  };
  const bool finished = pipe.generate(Exec(), req, cb);
  std::printf("%s\n", finished ? "finished every level" : "cancelled after level 2, as asked");
  return finished ? 1 : 0;  // this example expects the cancellation
}
