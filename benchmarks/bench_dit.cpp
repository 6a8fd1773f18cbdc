// benchmarks/bench_dit.cpp: time of one DiT step (one velocity evaluation, batch 1 and 10, no guidance)
// against the requested output resolution, for DCS-LDM and the conventional latent diffusion baseline.
//   dcs      : the shipped fmnist DiT's shape (width 128, 4 heads, 4 blocks) over DCS-Tok's latent, 32
//              tokens x 8 channels in 4 levels, whatever the output size: the output resolution only
//              reaches the tokenizer's decoder (bench_tokenizer), never the DiT.
//   baseline : the same DiT over the 2D latent of the fixed-patch autoencoder (7 px patches, 16 channels),
//              (R / 7)^2 tokens for an R x R output: 16 at 28 px, 256 at 112 px, 4096 at 448 px.
// The baseline at 448 px runs at batch 1 and 2 only (batch 10 would hold 2.7 GB of attention scores).
// Batch 2 (= one step with classifier-free guidance, one call on the doubled batch) also runs at 56 and
// 224 px: with decode_cost (bench_models.cpp) it gives the generation cost curve
// (benchmarks/plot_generation_cost.py).
// dit_progressive/{cached,uncached}: one progressive generation (4 levels x 20 DPM-Solver++(2M) steps,
// CFG 1.5, batch 10) with and without the cache of finished levels (dit/prefix_cache.hpp).
// Weights do not change the cost, so they are random. Names: dit_step/{dcs,baseline}/res:<R>/batch:<B>;
// counter "tokens".
#include "bench_common.hpp"

#include <dcsldm/dit/model.hpp>
#include <dcsldm/dit/sampler.hpp>

namespace dcsldm::bench {
namespace {

dit::DitConfig dit_config(bool baseline, int res) {
  dit::DitConfig c;
  c.width = 128;
  c.heads = 4;
  c.layers = 4;
  c.num_classes = 10;
  if (baseline) {
    const int g = res / 7;
    c.level_sizes = {g * g};
    c.latent_channels = 16;
  } else {
    c.level_sizes = {4, 4, 8, 16};
    c.latent_channels = 8;
  }
  return c;
}

void run_dit_step(benchmark::State& state, bool baseline, int res, int batch) {
  const Exec space;
  const dit::DitConfig cfg = dit_config(baseline, res);
  dit::Dit<Exec, float> model(cfg);
  model.init(space, 1);
  const std::size_t B = std::size_t(batch), N = std::size_t(cfg.latent_tokens()), c = std::size_t(cfg.latent_channels);
  V3<float> x("x", B, N, c), v("v", B, N, c);
  V1<float> t("t", B);
  Kokkos::View<int*, Mem> labels("labels", B);
  fill(x, 3);
  Kokkos::deep_copy(t, 0.5f);
  model.velocity(space, x, t, labels, cfg.levels(), 0, v);  // builds the plan
  space.fence();
  for (auto _ : state) {
    model.velocity(space, x, t, labels, cfg.levels(), 0, v);
    space.fence();
  }
  state.counters["tokens"] = double(N);
  state.counters["output_pixels"] = double(res) * double(res);
}

/// One progressive generation (4 levels, 20 DPM-Solver++(2M) steps each, CFG 1.5, batch 10) with and
/// without the cache of finished levels.
void run_progressive(benchmark::State& state, bool cached) {
  const Exec space;
  const dit::DitConfig cfg = dit_config(false, 28);
  dit::Dit<Exec, float> model(cfg);
  model.init(space, 1);
  fill(model.arena().params, 5, 0.05);
  dit::FlowSampler<Exec, float> sampler;
  dit::SampleOptions o;
  o.steps = 20;
  o.integrator = dit::Integrator::DpmSolver2M;
  o.cfg = 1.5;
  o.prefix_cache = cached;
  const std::vector<int> labels = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  V3<float> z("z", labels.size(), std::size_t(cfg.latent_tokens()), std::size_t(cfg.latent_channels));
  sampler.progressive(space, model, labels, cfg.levels(), o, z);
  space.fence();
  for (auto _ : state) {
    sampler.progressive(space, model, labels, cfg.levels(), o, z);
    space.fence();
  }
  state.counters["evaluations"] = double(sampler.evaluations());
}

}  // namespace

void register_dit() {
  for (const bool cached : {false, true})
    benchmark::RegisterBenchmark(cached ? "dit_progressive/cached" : "dit_progressive/uncached",
                                 [=](benchmark::State& s) { run_progressive(s, cached); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  for (const bool baseline : {false, true})
    for (const int batch : {1, 2, 10})
      for (const int r : {28, 56, 112, 224, 448}) {
        if (batch != 2 && (r == 56 || r == 224)) continue;  // batch 2 (one guided step): the cost curve
        if (baseline && batch > 2 && r > 112) continue;  // 10 x 4096 tokens: 2.7 GB of attention scores
        const std::string name = std::string("dit_step/") + (baseline ? "baseline" : "dcs") + "/res:" +
                                 std::to_string(r) + "/batch:" + std::to_string(batch);
        benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& s) { run_dit_step(s, baseline, r, batch); })
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
}

}  // namespace dcsldm::bench
