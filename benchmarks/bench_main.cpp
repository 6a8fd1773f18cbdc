// benchmarks/bench_main.cpp: Kokkos + Google Benchmark driver for all dcsldm benchmarks.
//
// Threads: KOKKOS_NUM_THREADS / OMP_NUM_THREADS (Kokkos) and OPENBLAS_NUM_THREADS (OpenBLAS); dcsldm's
// host GEMM sets OpenBLAS to the execution space's concurrency, and so does the cblas reference here.
#include "bench_common.hpp"

#include <cstdlib>
#include <string>

#if defined(DCSLDM_HAVE_CBLAS)
#include <cblas.h>
#endif

int main(int argc, char** argv) {
  // Kokkos 3.4 OpenMP prints an OMP_PROC_BIND advice on stdout otherwise (it would corrupt JSON output).
  setenv("OMP_PROC_BIND", "false", 0);
  Kokkos::initialize(argc, argv);
  int rc = 0;
  {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
      rc = 1;
    } else {
      const char* coretype = std::getenv("OPENBLAS_CORETYPE");
      benchmark::AddCustomContext("kokkos_exec_space", dcsldm::bench::Exec::name());
      benchmark::AddCustomContext("kokkos_concurrency", std::to_string(dcsldm::bench::Exec().concurrency()));
      benchmark::AddCustomContext("OPENBLAS_CORETYPE", coretype ? coretype : "(unset)");
#if defined(DCSLDM_HAVE_OPENBLAS)
      benchmark::AddCustomContext("openblas_config", openblas_get_config());
      benchmark::AddCustomContext("openblas_corename", openblas_get_corename());
#endif
      dcsldm::bench::register_gemm();
      dcsldm::bench::register_attention();
      dcsldm::bench::register_neighbour();
      dcsldm::bench::register_layer_norm_gelu();
      dcsldm::bench::register_tokenizer();
      dcsldm::bench::register_dit();
      dcsldm::bench::register_models();
      benchmark::RunSpecifiedBenchmarks();
      benchmark::Shutdown();
    }
  }
  Kokkos::finalize();
  return rc;
}
