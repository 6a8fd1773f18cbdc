// Test main: initialises Kokkos around the Catch2 session.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <Kokkos_Core.hpp>

#include <cstdlib>

int main(int argc, char* argv[]) {
  // Kokkos 3.4 OpenMP prints an OMP_PROC_BIND advice on stdout otherwise.
  setenv("OMP_PROC_BIND", "false", 0);
  Kokkos::initialize(argc, argv);
  int result = 0;
  {
    Catch::Session session;
    result = session.run(argc, argv);
  }
  Kokkos::finalize();
  return result;
}
