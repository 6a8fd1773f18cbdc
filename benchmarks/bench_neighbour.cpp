// benchmarks/bench_neighbour.cpp: the decoder's neighbourhood attention (dcsldm/tok/neighbour_attention.hpp),
// forward and backward, at the tokenizer trainers' shapes (fmnist preset: 28 px, 7 x 7 patches, batch 32;
// glyphs preset: 64 px targets, 8 x 8 patches, batch 16; one token per patch, E = 64, 4 heads).
//
// Variants: `dcsldm` is the library's default (on host spaces the per-(patch, head) kernels: the backward's
// dq, dk, dv and drel from one pass over each patch's pixels), `per_pixel` the backward's per-pixel kernels
// (a workspace without the per-patch partials; what devices run). Before a variant is timed, its y, dq, dkv
// and drel are checked against the per-pixel path run in double precision (the PyTorch golden tests pin both
// down); a variant off by more than 1e-4 relative fails the case.
// Names: neighbour_{fwd,bwd}/{dcsldm,per_pixel}/B:<B>/px:<res>/patches:<k>.
#include "bench_common.hpp"

#if __has_include(<dcsldm/tok/neighbour_attention.hpp>)
#define DCSLDM_BENCH_HAVE_NEIGHBOUR 1
#include <dcsldm/tok/neighbour_attention.hpp>
#endif

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

namespace dcsldm::bench {

#if defined(DCSLDM_BENCH_HAVE_NEIGHBOUR)
namespace {

struct NbShape {
  int b, res, k;
};
constexpr NbShape kNbShapes[] = {{32, 28, 7}, {16, 64, 8}};
constexpr int kNbTokens = 1, kNbWidth = 64, kNbHeads = 4;

/// One neighbour attention's inputs, outputs, cache and workspace in precision T (the same seeds for every
/// variant and precision); per_pixel drops the workspace's per-patch partials.
template <class T>
struct NbSetup {
  tok::PatchGrid grid;
  tok::PatchTables<Mem> tab;
  V2<T> q, dq, rel, drel;
  V3<T> kv, dkv, y, dy;
  tok::NeighbourCache<T, Mem> cache;
  tok::NeighbourWorkspace<T, Mem> ws;
  NbSetup(const NbShape& s, bool per_pixel)
      : grid(tok::make_patch_grid(1, s.res, s.res, 1, s.k, s.k)), tab(tok::make_patch_tables<Mem>(grid)),
        q("q", grid.num_pixels(), kNbWidth), dq("dq", grid.num_pixels(), kNbWidth),
        rel("rel", tok::neighbour_offsets * kNbTokens, kNbWidth),
        drel("drel", tok::neighbour_offsets * kNbTokens, kNbWidth),
        kv("kv", s.b, grid.num_patches() * kNbTokens, 2 * kNbWidth),
        dkv("dkv", s.b, grid.num_patches() * kNbTokens, 2 * kNbWidth), y("y", s.b, grid.num_pixels(), kNbWidth),
        dy("dy", s.b, grid.num_pixels(), kNbWidth),
        cache(tok::make_neighbour_cache<T, Mem>(s.b, grid, kNbTokens, kNbWidth, kNbHeads)),
        ws(tok::make_neighbour_workspace<T, Mem>(s.b, grid, kNbTokens, kNbWidth, kNbHeads)) {
    if (per_pixel) ws.kv_part = V4<T>();
    fill(q, 31, 2.0);
    fill(kv, 32, 2.0);
    fill(rel, 33, 0.5);
    fill(dy, 34);
  }
  void forward(const Exec& space) const {
    tok::neighbour_attention_forward(space, q, kv, rel, tab, kNbTokens, kNbHeads, y, cache);
  }
  void backward(const Exec& space) const {
    tok::neighbour_attention_backward(space, dy, q, kv, rel, drel, tab, kNbTokens, kNbHeads, cache, ws, dq, dkv);
  }
};

template <class V>
std::vector<double> to_vec(const V& v) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  return std::vector<double>(h.data(), h.data() + h.span());
}

/// y, dq, dkv, drel of one forward + backward in precision T.
template <class T>
std::vector<std::vector<double>> nb_outputs(const NbShape& s, bool per_pixel) {
  const Exec space;
  const NbSetup<T> a(s, per_pixel);
  a.forward(space);
  a.backward(space);
  space.fence();
  return {to_vec(a.y), to_vec(a.dq), to_vec(a.dkv), to_vec(a.drel)};
}

/// Max |a - b| / max |b| over every output of the variant against the double-precision per-pixel path.
double nb_variant_error(const NbShape& s, bool per_pixel) {
  const auto ref = nb_outputs<double>(s, true);
  const auto got = nb_outputs<float>(s, per_pixel);
  double err = 0;
  for (std::size_t w = 0; w < ref.size(); ++w) {
    double num = 0, den = 0;
    for (std::size_t i = 0; i < ref[w].size(); ++i) {
      num = std::max(num, std::abs(got[w][i] - ref[w][i]));
      den = std::max(den, std::abs(ref[w][i]));
    }
    err = std::max(err, den > 0 ? num / den : num);
  }
  return err;
}

void run_neighbour(benchmark::State& state, NbShape s, bool backward, bool per_pixel) {
  static std::map<std::string, double> checked;  // called several times per case: check once
  const std::string key = std::to_string(s.b) + "/" + std::to_string(s.res) + (per_pixel ? "/per_pixel" : "/dcsldm");
  if (!checked.count(key)) checked[key] = nb_variant_error(s, per_pixel);
  const NbSetup<float> a(s, per_pixel);
  if (!time_checked_variant(state, checked[key], a, backward)) return;
  state.counters["pixels"] = double(s.b) * s.res * s.res;
  state.counters["threads"] = Exec().concurrency();
}

}  // namespace

void register_neighbour() {
  for (const NbShape& s : kNbShapes) {
    const std::string tail =
        "/B:" + std::to_string(s.b) + "/px:" + std::to_string(s.res) + "/patches:" + std::to_string(s.k);
    add("neighbour_fwd/dcsldm" + tail, [=](benchmark::State& st) { run_neighbour(st, s, false, false); });
    for (const bool per_pixel : {false, true}) {
      // On devices both variants run the per-pixel kernels: time them once.
      if (per_pixel && !Kokkos::SpaceAccessibility<Exec, Kokkos::HostSpace>::accessible) continue;
      add(std::string("neighbour_bwd/") + (per_pixel ? "per_pixel" : "dcsldm") + tail,
          [=](benchmark::State& st) { run_neighbour(st, s, true, per_pixel); });
    }
  }
}
#else
void register_neighbour() {}
#endif

}  // namespace dcsldm::bench
