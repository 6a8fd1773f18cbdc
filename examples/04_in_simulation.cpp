// 04_in_simulation: a generator inside a simulation. An explicit 2-D advection-diffusion solver on a
// periodic n x n grid,
//     du/dt + a . grad(u) = kappa laplace(u) + s(x, y),
// whose source field s is replaced every `refresh` steps by a newly generated sample decoded directly at
// the grid's resolution. Solver and generator run in the same Kokkos execution space and share its memory:
// the source is a View of the pipeline's output buffer, with no copy to the host (only scalar diagnostics
// come back). This is the pattern to copy when a simulation consumes generated fields.
//   04_in_simulation [models_dir] [out_prefix] [steps] [grid n] [refresh]
#include <dcsldm/image/png.hpp>
#include <dcsldm/pipeline.hpp>

#include <cstdio>
#include <string>

namespace {
using Exec = Kokkos::DefaultExecutionSpace;
using Mem = Exec::memory_space;
using Field = Kokkos::View<float**, Kokkos::LayoutRight, Mem>;
using Source = Kokkos::View<const float**, Kokkos::LayoutRight, Mem, Kokkos::MemoryUnmanaged>;

/// One explicit step: first-order upwind advection with velocity (ax, ay), 5-point diffusion, source.
struct Step {
  Field u, un;
  Source s;
  int n;
  float ax, ay, kappa, dt, h;
  KOKKOS_INLINE_FUNCTION void operator()(const int i, const int j) const {
    const int ip = (i + 1) % n, im = (i + n - 1) % n, jp = (j + 1) % n, jm = (j + n - 1) % n;
    const float c = u(i, j);
    const float dx = ax > 0 ? c - u(i, jm) : u(i, jp) - c;  // upwind in x (columns)
    const float dy = ay > 0 ? c - u(im, j) : u(ip, j) - c;  // upwind in y (rows)
    const float lap = u(ip, j) + u(im, j) + u(i, jp) + u(i, jm) - 4 * c;
    un(i, j) = c + dt * (-(ax * dx + ay * dy) / h + kappa * lap / (h * h) + s(i, j));
  }
};
}  // namespace

int main(int argc, char** argv) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  const std::string dir = argc > 1 ? argv[1] : DCSLDM_MODELS_DIR, prefix = argc > 2 ? argv[2] : "04_in_simulation";
  const int gen_steps = argc > 3 ? std::stoi(argv[3]) : 20, n = argc > 4 ? std::stoi(argv[4]) : 64;
  const int refresh = argc > 5 ? std::stoi(argv[5]) : 100, total = 4 * refresh;
  const Exec space;
  auto pipe = dcsldm::Pipeline<Exec>::load(dir + "/fmnist_tok.safetensors", dir + "/fmnist_dit.safetensors");

  dcsldm::GenerateRequest req;
  req.height = req.width = n;  // decoded straight at the solver's resolution
  req.steps = gen_steps;
  req.sampler = dcsldm::dit::Integrator::DpmSolver2M;

  Field u("u", n, n), un("un", n, n);
  const float h = 1.0f / float(n), kappa = 2e-4f, ax = 0.5f, ay = 0.25f;
  const float dt = 0.2f * std::min(h / (std::abs(ax) + std::abs(ay)), h * h / (4 * kappa));
  Kokkos::MDRangePolicy<Exec, Kokkos::Rank<2>> grid(space, {0, 0}, {n, n});
  Source s;
  for (int step = 0; step < total; ++step) {
    if (step % refresh == 0) {  // a new source field: one generated sample, class cycling, on the device
      req.labels = {(step / refresh) % pipe.num_classes()};
      req.seed = std::uint64_t(step);
      pipe.generate(space, req);
      s = Source(pipe.output().data(), n, n);  // (1, 1, n, n, 1) -> (n, n), same memory
    }
    Kokkos::parallel_for("04_step", grid, Step{u, un, s, n, ax, ay, kappa, dt, h});
    std::swap(u, un);
    if ((step + 1) % refresh == 0) {
      float mass = 0, peak = 0;
      Kokkos::parallel_reduce("04_mass", grid, KOKKOS_LAMBDA(int i, int j, float& m) { m += u(i, j); }, mass);
      Kokkos::parallel_reduce("04_peak", grid, KOKKOS_LAMBDA(int i, int j, float& p) { p = u(i, j) > p ? u(i, j) : p; },
                              Kokkos::Max<float>(peak));
      std::printf("step %4d  t = %.4f  mass %.5f  max %.4f  (source: class %d)\n", step + 1, (step + 1) * dt,
                  mass * h * h, peak, req.labels[0]);
    }
  }
  // the final field, for a look (the only host copy of a field in this program)
  auto hu = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), u);
  float mx = 1e-12f;
  for (std::size_t i = 0; i < hu.size(); ++i) mx = std::max(mx, hu.data()[i]);
  dcsldm::image::Image img(std::array<std::size_t, 3>{std::size_t(n), std::size_t(n), 1});
  for (std::size_t i = 0; i < hu.size(); ++i) img.data()[i] = std::max(0.0f, hu.data()[i] / mx);
  dcsldm::image::write_png(prefix + "_field.png", img);
  std::printf("wrote %s_field.png\n", prefix.c_str());
  return 0;
}
