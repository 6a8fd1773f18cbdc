// benchmarks/bench_attention.cpp: multi-head self-attention forward and backward (dcsldm/nn/attention.hpp)
// at DiT shapes, registered only when that header exists.
//
// FLOP per forward: q, k, v, o projections 4 * 2 B T C^2, scores and P V 2 * 2 B T^2 C (full mask;
// softmax not counted). Backward: twice the forward's GEMM FLOP. Names:
// attention_{fwd,bwd}/dcsldm/B:<B>/T:<T>/C:<C>/H:<H>.
#include "bench_common.hpp"

#if __has_include(<dcsldm/nn/attention.hpp>) && !defined(DCSLDM_BENCH_NO_ATTENTION)
#define DCSLDM_BENCH_HAVE_ATTENTION 1
#include <dcsldm/nn/attention.hpp>
#endif

#include <string>

namespace dcsldm::bench {

#if defined(DCSLDM_BENCH_HAVE_ATTENTION)
namespace {

struct AttnShape {
  int b, t, c, h;
};
constexpr AttnShape kAttnShapes[] = {{8, 256, 256, 4}, {1, 1024, 512, 8}};

nn::Linear<float, Mem> make_linear(int out, int in, std::uint32_t seed) {
  nn::Linear<float, Mem> l{V2<float>("w", out, in), V1<float>("b", out)};
  fill(l.weight, seed, 1.0 / std::sqrt(double(in)));
  fill(l.bias, seed + 1, 0.1);
  return l;
}

nn::Attention<float, Mem> make_attention(int c, int h, std::uint32_t seed) {
  nn::Attention<float, Mem> p;
  p.q = make_linear(c, c, seed);
  p.k = make_linear(c, c, seed + 2);
  p.v = make_linear(c, c, seed + 4);
  p.o = make_linear(c, c, seed + 6);
  p.heads = h;
  return p;
}

double attention_forward_flops(const AttnShape& s) {
  const double b = s.b, t = s.t, c = s.c;
  return 8.0 * b * t * c * c + 4.0 * b * t * t * c;
}

void run_attention(benchmark::State& state, AttnShape s, bool backward) {
  const Exec space;
  auto p = make_attention(s.c, s.h, 10);
  auto g = make_attention(s.c, s.h, 20);
  auto mask = nn::make_full_mask<Mem>();
  auto cache = nn::make_attention_cache<float, Mem>(s.b, s.t, s.t, p);
  auto ws = nn::make_attention_workspace<float, Mem>(s.b, s.t, s.t, p);
  V3<float> x("x", s.b, s.t, s.c), y("y", s.b, s.t, s.c), dy("dy", s.b, s.t, s.c), dx("dx", s.b, s.t, s.c);
  fill(x, 1);
  fill(dy, 2);
  fill(y, 3, 0.0);
  fill(dx, 4, 0.0);
  nn::self_attention_forward(space, x, p, mask, y, cache, ws);
  if (backward) nn::self_attention_backward(space, dy, x, p, g, mask, cache, ws, dx);
  space.fence();
  for (auto _ : state) {
    if (backward)
      nn::self_attention_backward(space, dy, x, p, g, mask, cache, ws, dx);
    else
      nn::self_attention_forward(space, x, p, mask, y, cache, ws);
    space.fence();
  }
  set_flops(state, (backward ? 2.0 : 1.0) * attention_forward_flops(s));
}

std::string attn_name(const char* what, const AttnShape& s) {
  return std::string("attention_") + what + "/dcsldm/B:" + std::to_string(s.b) + "/T:" + std::to_string(s.t) +
         "/C:" + std::to_string(s.c) + "/H:" + std::to_string(s.h);
}

}  // namespace

void register_attention() {
  for (const AttnShape& s : kAttnShapes) {
    add(attn_name("fwd", s), [=](benchmark::State& st) { run_attention(st, s, false); });
    add(attn_name("bwd", s), [=](benchmark::State& st) { run_attention(st, s, true); });
  }
}
#else
void register_attention() {}
#endif

}  // namespace dcsldm::bench
