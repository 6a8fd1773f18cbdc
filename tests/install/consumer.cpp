// tests/install/consumer.cpp: a downstream program using dcsldm as an installed or added package.
// Runs nn::linear_forward (which calls dcsldm::gemm) on the default execution space and checks
// y = x W^T + b against a plain host loop. Exit status 0 on success, 1 on a mismatch.
#include <dcsldm/nn/linear.hpp>

#include <Kokkos_Core.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace {

using Exec = Kokkos::DefaultExecutionSpace;
using Mem = Exec::memory_space;

template <class V>
void set_host(const V& h, double scale) {
  for (std::size_t i = 0; i < h.span(); ++i) h.data()[i] = float(scale * double(int(i * 7 % 13) - 6));
}

int run() {
  constexpr int M = 5, IN = 7, OUT = 3;  // odd sizes: no tile or vector width divides them
  dcsldm::nn::Linear<float, Mem> p{dcsldm::View2<float, Mem>("weight", OUT, IN),
                                   dcsldm::View1<float, Mem>("bias", OUT)};
  dcsldm::View2<float, Mem> x("x", M, IN), y("y", M, OUT);
  auto hx = Kokkos::create_mirror_view(x);
  auto hw = Kokkos::create_mirror_view(p.weight);
  auto hb = Kokkos::create_mirror_view(p.bias);
  set_host(hx, 0.25);
  set_host(hw, 0.125);
  set_host(hb, 0.5);
  Kokkos::deep_copy(x, hx);
  Kokkos::deep_copy(p.weight, hw);
  Kokkos::deep_copy(p.bias, hb);

  dcsldm::nn::linear_forward(Exec(), x, p, y);
  Exec().fence();
  auto hy = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), y);

  int bad = 0;
  for (int i = 0; i < M; ++i)
    for (int o = 0; o < OUT; ++o) {
      double ref = hb(o);
      for (int k = 0; k < IN; ++k) ref += double(hx(i, k)) * double(hw(o, k));
      if (std::fabs(hy(i, o) - ref) > 1e-5 * (1.0 + std::fabs(ref))) {
        std::printf("mismatch at (%d, %d): got %.8g, expected %.8g\n", i, o, double(hy(i, o)), ref);
        ++bad;
      }
    }
  std::printf("dcsldm consumer on %s: %s (%d x %d outputs)\n", Exec::name(), bad ? "FAILED" : "ok", M, OUT);
  return bad ? 1 : 0;
}

}  // namespace

int main(int argc, char* argv[]) {
  setenv("OMP_PROC_BIND", "false", 0);
  Kokkos::initialize(argc, argv);
  int rc = run();
  Kokkos::finalize();
  return rc;
}
