// benchmarks/bench_attention.cpp: multi-head self-attention forward and backward (dcsldm/nn/attention.hpp)
// at the models' shapes (tokenizer encoder: 81 tokens x batch 32; DiT: 32 tokens x batch 64) and two longer
// sequences, and one DiT sampling step's (2 x 32 tokens, level-causal mask), registered only when that header
// exists.
//
// Variants: `dcsldm` is the library's default (on host spaces the fused per-(batch, head) kernel),
// `blocked` the query-blocked GEMM path (AttentionWorkspace::fused = false; what devices run). Before a
// variant is timed, its y and dx are checked against the library's blocked path run in double precision
// (the path the PyTorch golden tests pin down); a variant off by more than 1e-4 relative fails the case.
//
// FLOP per forward: q, k, v, o projections 4 * 2 B T C^2, scores and P V 2 * 2 B T^2 C (full mask;
// softmax not counted). Backward: twice the forward's GEMM FLOP. Names:
// attention_{fwd,bwd}/{dcsldm,blocked}/B:<B>/T:<T>/C:<C>/H:<H>[/mask:level].
#include "bench_common.hpp"

#if __has_include(<dcsldm/nn/attention.hpp>) && !defined(DCSLDM_BENCH_NO_ATTENTION)
#define DCSLDM_BENCH_HAVE_ATTENTION 1
#include <dcsldm/nn/attention.hpp>
#endif

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace dcsldm::bench {

#if defined(DCSLDM_BENCH_HAVE_ATTENTION)
namespace {

struct AttnShape {
  int b, t, c, h;
  bool level = false;  // the DiT's level-causal mask (levels of 4, 4, 8, 16 tokens) instead of the full one
};
// The last: one sampling step of the shipped DiT at batch 1 with guidance (2 sequences).
constexpr AttnShape kAttnShapes[] = {{32, 81, 128, 4}, {64, 32, 128, 4},       {8, 256, 256, 4},
                                     {1, 1024, 512, 8}, {2, 32, 128, 4, true}};

/// The mask of a shape: full, or level-causal over levels of 4, 4, 8, 16, ... tokens (t = 32: the DiT's).
nn::AttentionMask<Mem> make_mask(const AttnShape& s) {
  if (!s.level) return nn::make_full_mask<Mem>();
  std::vector<int> levels(std::size_t(s.t));
  for (int i = 0; i < s.t; ++i) levels[std::size_t(i)] = i < 4 ? 0 : (i < 8 ? 1 : (i < 16 ? 2 : 3 + (i - 16) / 16));
  return nn::make_level_causal_mask<Mem>(levels);
}

template <class T>
nn::Linear<T, Mem> make_linear(int out, int in, std::uint32_t seed) {
  nn::Linear<T, Mem> l{V2<T>("w", out, in), V1<T>("b", out)};
  fill(l.weight, seed, 1.0 / std::sqrt(double(in)));
  fill(l.bias, seed + 1, 0.1);
  return l;
}

template <class T = float>
nn::Attention<T, Mem> make_attention(int c, int h, std::uint32_t seed) {
  nn::Attention<T, Mem> p;
  p.q = make_linear<T>(c, c, seed);
  p.k = make_linear<T>(c, c, seed + 2);
  p.v = make_linear<T>(c, c, seed + 4);
  p.o = make_linear<T>(c, c, seed + 6);
  p.heads = h;
  return p;
}

/// One attention layer's parameters, gradients, buffers and inputs in precision T with the given kernel
/// choice (the same seeds for every variant and precision).
template <class T>
struct AttnSetup {
  nn::Attention<T, Mem> p, g;
  nn::AttentionMask<Mem> mask;
  nn::AttentionCache<T, Mem> cache;
  nn::AttentionWorkspace<T, Mem> ws;
  V3<T> x, y, dy, dx;
  AttnSetup(const AttnShape& s, bool fused)
      : p(make_attention<T>(s.c, s.h, 10)), g(make_attention<T>(s.c, s.h, 20)), mask(make_mask(s)),
        cache(nn::make_attention_cache<T, Mem>(s.b, s.t, s.t, p)),
        ws(nn::make_attention_workspace<T, Mem>(s.b, s.t, s.t, p)), x("x", s.b, s.t, s.c), y("y", s.b, s.t, s.c),
        dy("dy", s.b, s.t, s.c), dx("dx", s.b, s.t, s.c) {
    ws.fused = fused;
    fill(x, 1);
    fill(dy, 2);
  }
  void forward(const Exec& space) const { nn::self_attention_forward(space, x, p, mask, y, cache, ws); }
  void backward(const Exec& space) const { nn::self_attention_backward(space, dy, x, p, g, mask, cache, ws, dx); }
};

/// y and dx of one forward + backward in precision T with the given kernel choice.
template <class T>
std::pair<std::vector<double>, std::vector<double>> attention_outputs(const AttnShape& s, bool fused) {
  const Exec space;
  const AttnSetup<T> a(s, fused);
  a.forward(space);
  a.backward(space);
  space.fence();
  auto to_vec = [](const V3<T>& v) {
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
    return std::vector<double>(h.data(), h.data() + h.size());
  };
  return {to_vec(a.y), to_vec(a.dx)};
}

/// Max |a - b| / max |b| over y and dx of the variant against the double-precision blocked path.
double attention_variant_error(const AttnShape& s, bool fused) {
  const auto ref = attention_outputs<double>(s, false);
  const auto got = attention_outputs<float>(s, fused);
  double err = 0;
  for (int w = 0; w < 2; ++w) {
    const auto& r = w ? ref.second : ref.first;
    const auto& g = w ? got.second : got.first;
    double num = 0, den = 0;
    for (std::size_t i = 0; i < r.size(); ++i) {
      num = std::max(num, std::abs(g[i] - r[i]));
      den = std::max(den, std::abs(r[i]));
    }
    err = std::max(err, den > 0 ? num / den : num);
  }
  return err;
}

double attention_forward_flops(const AttnShape& s) {
  const double b = s.b, t = s.t, c = s.c;
  return 8.0 * b * t * c * c + 4.0 * b * t * t * c;
}

void run_attention(benchmark::State& state, AttnShape s, bool backward, bool fused) {
  // Google Benchmark calls this several times per case (iteration estimate, repetitions): check once.
  static std::map<std::string, double> checked;
  const std::string key = std::to_string(s.b) + "/" + std::to_string(s.t) + "/" + std::to_string(s.c) + "/" +
                          std::to_string(s.h) + (s.level ? "/level" : "") + (fused ? "/fused" : "/blocked");
  if (!checked.count(key)) checked[key] = attention_variant_error(s, fused);
  const AttnSetup<float> a(s, fused);
  if (!time_checked_variant(state, checked[key], a, backward)) return;
  set_flops(state, (backward ? 2.0 : 1.0) * attention_forward_flops(s));
}

std::string attn_name(const char* what, const char* variant, const AttnShape& s) {
  return std::string("attention_") + what + "/" + variant + "/B:" + std::to_string(s.b) + "/T:" + std::to_string(s.t) +
         "/C:" + std::to_string(s.c) + "/H:" + std::to_string(s.h) + (s.level ? "/mask:level" : "");
}

}  // namespace

void register_attention() {
  for (const AttnShape& s : kAttnShapes)
    for (const bool fused : {true, false}) {
      // On devices both settings run the blocked path: time it once.
      if (!fused && !Kokkos::SpaceAccessibility<Exec, Kokkos::HostSpace>::accessible) continue;
      const char* variant = fused ? "dcsldm" : "blocked";
      add(attn_name("fwd", variant, s), [=](benchmark::State& st) { run_attention(st, s, false, fused); });
      add(attn_name("bwd", variant, s), [=](benchmark::State& st) { run_attention(st, s, true, fused); });
    }
}
#else
void register_attention() {}
#endif

}  // namespace dcsldm::bench
