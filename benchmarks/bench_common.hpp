// benchmarks/bench_common.hpp: shared helpers for the dcsldm benchmark program.
//
// Every benchmark allocates and first-touches its Views once, outside the timed loop (first touch of
// fresh memory is expensive on these machines), times whole calls with wall-clock time (the work is
// multi-threaded), fences after each call, and reports FLOP/s through a rate counter.
#pragma once

#include <benchmark/benchmark.h>

#include <Kokkos_Core.hpp>

#include <cmath>
#include <cstdint>
#include <string>

namespace dcsldm::bench {

using Exec = Kokkos::DefaultExecutionSpace;
using Mem = Exec::memory_space;
template <class T>
using V1 = Kokkos::View<T*, Kokkos::LayoutRight, Mem>;
template <class T>
using V2 = Kokkos::View<T**, Kokkos::LayoutRight, Mem>;
template <class T>
using V3 = Kokkos::View<T***, Kokkos::LayoutRight, Mem>;
template <class T>
using V4 = Kokkos::View<T****, Kokkos::LayoutRight, Mem>;

/// Fills a View's span with deterministic values in [-scale, scale) (a cheap integer hash).
template <class V>
void fill(const V& v, std::uint32_t seed, double scale = 1.0) {
  using T = typename V::value_type;
  auto* p = v.data();
  const T s = T(scale);
  Kokkos::parallel_for(
      "dcsldm::bench_fill", Kokkos::RangePolicy<Exec>(0, v.span()), KOKKOS_LAMBDA(const std::size_t i) {
        std::uint32_t h = std::uint32_t(i) * 2654435761u + seed * 40503u + 0x9e3779b9u;
        h ^= h >> 16;
        h *= 0x85ebca6bu;
        h ^= h >> 13;
        h *= 0xc2b2ae35u;
        h ^= h >> 16;
        p[i] = s * (T(h >> 8) * T(1.0 / 8388608.0) - T(1));
      });
  Kokkos::fence();
}

/// Adds FLOP/s (as "FLOPS": benchmark's reporters print it as e.g. "95.1G/s") and the thread count.
inline void set_flops(benchmark::State& state, double flops_per_call) {
  state.counters["FLOPS"] = benchmark::Counter(flops_per_call, benchmark::Counter::kIsIterationInvariantRate,
                                               benchmark::Counter::OneK::kIs1000);
  state.counters["threads"] = Exec().concurrency();
}

/// Registers `fn` under `name` with the common settings (wall-clock time, milliseconds).
template <class Fn>
benchmark::internal::Benchmark* add(const std::string& name, Fn&& fn) {
  return benchmark::RegisterBenchmark(name.c_str(), std::forward<Fn>(fn))
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
}

/// The variant harness's timed part: a variant whose relative error `err` against its double-precision reference
/// exceeds 1e-4 fails the case; otherwise `setup` (with const forward(space) / backward(space)) runs forward
/// (and backward) once, then the timed loop runs one of them per iteration. Returns false if the case failed.
template <class Setup>
bool time_checked_variant(benchmark::State& state, double err, const Setup& setup, bool backward) {
  if (!(err <= 1e-4)) {
    state.SkipWithError(
        ("variant differs from the double-precision reference: relative error " + std::to_string(err)).c_str());
    return false;
  }
  state.counters["rel_err_vs_double"] = err;
  const Exec space;
  setup.forward(space);
  if (backward) setup.backward(space);
  space.fence();
  for (auto _ : state) {
    if (backward)
      setup.backward(space);
    else
      setup.forward(space);
    space.fence();
  }
  return true;
}

/// Registration hooks, one per benchmark source file (called from bench_main.cpp).
void register_gemm();
void register_attention();
void register_neighbour();
void register_layer_norm_gelu();
void register_tokenizer();
void register_dit();
void register_models();

}  // namespace dcsldm::bench
