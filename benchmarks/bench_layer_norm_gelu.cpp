// benchmarks/bench_layer_norm_gelu.cpp: LayerNorm then GELU (erf), forward and backward
// (dcsldm/nn/layer_norm.hpp + dcsldm/nn/activations.hpp), registered only when those headers exist.
//
// Memory-bound: the counter is bytes moved at the minimum (forward reads x, writes h and y; backward
// reads dy, h, x, writes dh and dx: 3 and 5 floats per element), as "BYTES" per second.
// Names: layernorm_gelu_{fwd,bwd}/dcsldm/rows:<M>/width:<C>.
#include "bench_common.hpp"

#if __has_include(<dcsldm/nn/layer_norm.hpp>) && __has_include(<dcsldm/nn/activations.hpp>)
#define DCSLDM_BENCH_HAVE_LN_GELU 1
#include <dcsldm/nn/activations.hpp>
#include <dcsldm/nn/layer_norm.hpp>
#endif

#include <string>

namespace dcsldm::bench {

#if defined(DCSLDM_BENCH_HAVE_LN_GELU)
namespace {

void run_ln_gelu(benchmark::State& state, int rows, int width, bool backward) {
  const Exec space;
  using Acc = accum_t<float>;
  nn::LayerNorm<float, Mem> p{V1<float>("w", width), V1<float>("b", width)};
  nn::LayerNorm<float, Mem> g{V1<float>("dw", width), V1<float>("db", width)};
  nn::LayerNormCache<float, Mem> cache{V1<Acc>("mean", rows), V1<Acc>("rstd", rows)};
  fill(p.weight, 1, 1.0);
  fill(p.bias, 2, 0.5);
  fill(g.weight, 3, 0.0);
  fill(g.bias, 4, 0.0);
  V2<float> x("x", rows, width), h("h", rows, width), y("y", rows, width);
  V2<float> dy("dy", rows, width), dh("dh", rows, width), dx("dx", rows, width);
  fill(x, 5, 2.0);
  fill(dy, 6);
  fill(h, 7, 0.0);
  fill(y, 8, 0.0);
  fill(dh, 9, 0.0);
  fill(dx, 10, 0.0);
  fill(cache.mean, 11, 0.0);
  fill(cache.rstd, 12, 0.0);
  auto forward = [&] {
    nn::layer_norm_forward(space, x, p, h, cache);
    nn::gelu_forward(space, h, nn::GeluKind::Erf, y);
  };
  auto backward_step = [&] {
    nn::gelu_backward(space, dy, h, nn::GeluKind::Erf, dh);
    nn::layer_norm_backward(space, dh, x, p, g, cache, dx);
  };
  forward();
  if (backward) backward_step();
  space.fence();
  for (auto _ : state) {
    if (backward)
      backward_step();
    else
      forward();
    space.fence();
  }
  const double elems = double(rows) * double(width);
  state.counters["BYTES"] = benchmark::Counter((backward ? 5.0 : 3.0) * 4.0 * elems,
                                               benchmark::Counter::kIsIterationInvariantRate,
                                               benchmark::Counter::OneK::kIs1000);
  state.counters["threads"] = Exec().concurrency();
}

std::string ln_name(const char* what, int rows, int width) {
  return std::string("layernorm_gelu_") + what + "/dcsldm/rows:" + std::to_string(rows) +
         "/width:" + std::to_string(width);
}

}  // namespace

void register_layer_norm_gelu() {
  for (const int rows : {2048})
    for (const int width : {256, 1024}) {
      add(ln_name("fwd", rows, width), [=](benchmark::State& s) { run_ln_gelu(s, rows, width, false); });
      add(ln_name("bwd", rows, width), [=](benchmark::State& s) { run_ln_gelu(s, rows, width, true); });
    }
}
#else
void register_layer_norm_gelu() {}
#endif

}  // namespace dcsldm::bench
