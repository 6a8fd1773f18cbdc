// benchmarks/bench_models.cpp: whole-model costs with the shipped fmnist models (examples/models, or the
// folder in DCSLDM_MODELS_DIR), the C++ half of benchmarks/compare_pytorch.sh; benchmarks/pytorch_models.py
// times the same cases with the PyTorch reference (scripts/torch_ref) on the same model files.
//   model_tok_train/dcsldm/batch:B     one tokenizer training step (TokenizerTrainer::step: 28 px in and
//                                      out, all levels, latent noise, L1 + MSE + latent L2, backward,
//                                      clipping, AdamW, EMA), B = 1 and 32
//   model_dit_train/dcsldm/batch:B     one DiT training step (DitTrainer::step: rectified flow, prefix
//                                      levels, backward, clipping, AdamW, EMA), B = 1 and 64
//   model_encode/dcsldm/res:R/batch:B  encode R x R images (R = 28, 112, 448 at B = 1; 28, 112 at B = 32)
//   model_decode/dcsldm/res:R/batch:B  decode all levels at R x R (same cases)
//   model_generate/dcsldm/batch:B      Pipeline::generate: all levels, 50 Euler steps, CFG 1.5 (one DiT
//                                      call on the doubled batch per step), decoded at 28 px; B = 1 and 10
//   decode_cost/{dcs,baseline}/res:R  decode of one latent at R x R, R = 28 ... 448: DCS-Tok (shipped weights)
//                                      and the conventional baseline's fixed-patch autoencoder (the shipped
//                                      fmnist_ldm_ae's shape for an R x R output: 7 px patches, (R/7)^2
//                                      latent tokens; random weights), for the generation cost curve
// Weights are the shipped ones (values do not change the cost, but the files are what both sides read).
#include "bench_common.hpp"

#include <dcsldm/baseline/vit_autoencoder.hpp>
#include <dcsldm/dit/trainer.hpp>
#include <dcsldm/pipeline.hpp>
#include <dcsldm/tok/trainer.hpp>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#ifndef DCSLDM_MODELS_DIR
#define DCSLDM_MODELS_DIR "examples/models"
#endif

namespace dcsldm::bench {
namespace {

std::string model_path(const char* name) {
  const char* env = std::getenv("DCSLDM_MODELS_DIR");
  return std::string(env && *env ? env : DCSLDM_MODELS_DIR) + "/" + name + ".safetensors";
}

/// A fixed batch of deterministic "images" at both scales (the same every step: data loading is not timed).
class FixedSource final : public tok::TrainSource {
 public:
  explicit FixedSource(int channels) : channels_(channels) {}
  int channels() const override { return channels_; }
  std::string describe() const override { return "fixed benchmark batch"; }
  void sample(std::int64_t, int batch, int in_res, int out_res, float* in, float* out) override {
    fill_host(in, std::size_t(batch) * std::size_t(in_res) * std::size_t(in_res) * std::size_t(channels_), 1);
    fill_host(out, std::size_t(batch) * std::size_t(out_res) * std::size_t(out_res) * std::size_t(channels_), 2);
  }

 private:
  static void fill_host(float* p, std::size_t n, std::uint32_t seed) {
    std::uint32_t h = seed * 2654435761u;
    for (std::size_t i = 0; i < n; ++i) {
      h = h * 1664525u + 1013904223u;
      p[i] = float(h >> 8) * float(1.0 / 16777216.0);
    }
  }
  int channels_;
};

void run_tok_train(benchmark::State& state, int batch) {
  const Exec space;
  const auto shipped = tok::Tokenizer<Exec, float>::load(model_path("fmnist_tok"));
  tok::TrainOptions o;
  o.batch = batch;
  o.steps = 1000000;
  o.warmup = 10;
  o.full_levels_prob = 1.0;
  o.ckpt_path = "";
  tok::TokenizerTrainer<Exec, float> tr(shipped.config(), o);
  tr.init(space);
  Kokkos::deep_copy(tr.model().arena().params, shipped.arena().params);
  FixedSource src(shipped.config().channels);
  tr.step(space, src);  // builds the plans
  for (auto _ : state) benchmark::DoNotOptimize(tr.step(space, src).grad_norm);
  state.counters["samples_per_s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
}

void run_dit_train(benchmark::State& state, int batch) {
  const Exec space;
  const auto shipped = dit::Dit<Exec, float>::load(model_path("fmnist_dit"));
  const auto& cfg = shipped.config();
  dit::LatentSet data;
  data.count = 256;
  data.tokens = cfg.latent_tokens();
  data.channels = cfg.latent_channels;
  data.z.resize(std::size_t(data.count) * std::size_t(data.tokens) * std::size_t(data.channels));
  std::uint32_t h = 7;
  for (auto& v : data.z) {
    h = h * 1664525u + 1013904223u;
    v = float(h >> 8) * float(2.0 / 16777216.0) - 1.0f;
  }
  for (int i = 0; i < data.count; ++i) data.labels.push_back(i % std::max(cfg.num_classes, 1));
  dit::DitTrainOptions o;
  o.batch = batch;
  o.steps = 1000000;
  o.warmup = 10;
  o.ckpt_path = "";
  dit::DitTrainer<Exec, float> tr(cfg, o, data);
  tr.init(space);
  Kokkos::deep_copy(tr.model().arena().params, shipped.arena().params);
  tr.step(space);
  for (auto _ : state) benchmark::DoNotOptimize(tr.step(space).loss);
  state.counters["samples_per_s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
}

void run_codec(benchmark::State& state, bool decode, int res, int batch) {
  const Exec space;
  auto model = tok::Tokenizer<Exec, float>::load(model_path("fmnist_tok"));
  const auto& cfg = model.config();
  tok::View5<float, Mem> x("x", std::size_t(batch), 1, std::size_t(res), std::size_t(res), std::size_t(cfg.channels));
  View3<float, Mem> z("z", std::size_t(batch), std::size_t(cfg.latent_tokens()), std::size_t(cfg.latent_channels));
  fill(x, 3, 0.5);
  model.encode(space, x, z);
  auto call = [&] {
    if (decode)
      model.decode(space, z, cfg.levels(), x);
    else
      model.encode(space, x, z);
  };
  call();
  space.fence();
  for (auto _ : state) {
    call();
    space.fence();
  }
  state.counters["pixels"] = double(res) * double(res) * double(batch);
}

void run_generate(benchmark::State& state, int batch) {
  const Exec space;
  auto pipe = Pipeline<Exec, float>::load(model_path("fmnist_tok"), model_path("fmnist_dit"));
  GenerateRequest req;
  for (int i = 0; i < batch; ++i) req.labels.push_back(i % 10);
  req.steps = 50;
  req.sampler = dit::Integrator::Euler;
  req.cfg = 1.5;
  req.height = req.width = 28;
  pipe.generate(space, req);
  space.fence();
  for (auto _ : state) {
    pipe.generate(space, req);
    space.fence();
  }
}

/// One R x R decode of batch 1: DCS-Tok, or the fixed-patch autoencoder sized for R.
void run_decode_cost(benchmark::State& state, bool baseline, int res) {
  const Exec space;
  if (!baseline) {
    run_codec(state, true, res, 1);
    return;
  }
  auto shipped = io::SafeTensors::read(model_path("fmnist_ldm_ae"));
  baseline::VitAeConfig cfg = baseline::VitAeConfig::from_metadata(shipped.metadata(), model_path("fmnist_ldm_ae"));
  cfg.res = res;  // same patch size and widths; (res / patch)^2 tokens
  baseline::VitAutoencoder<Exec, float> ae(cfg, 1);
  ae.init(space, 1);
  View3<float, Mem> z("z", 1, std::size_t(cfg.latent_count()), std::size_t(cfg.latent_channels));
  Kokkos::View<float*, Mem> y("y", std::size_t(res) * std::size_t(res) * std::size_t(cfg.channels));
  fill(z, 5, 1.0);
  ae.decode(space, z, y.data());
  space.fence();
  for (auto _ : state) {
    ae.decode(space, z, y.data());
    space.fence();
  }
  state.counters["pixels"] = double(res) * double(res);
  state.counters["tokens"] = double(cfg.latent_count());
}

}  // namespace

void register_models() {
  for (const bool baseline : {false, true})
    for (const int r : {28, 56, 112, 224, 448})
      add(std::string("decode_cost/") + (baseline ? "baseline" : "dcs") + "/res:" + std::to_string(r),
          [=](benchmark::State& s) { run_decode_cost(s, baseline, r); });
  for (const int b : {1, 32}) add("model_tok_train/dcsldm/batch:" + std::to_string(b), [=](benchmark::State& s) { run_tok_train(s, b); });
  for (const int b : {1, 64}) add("model_dit_train/dcsldm/batch:" + std::to_string(b), [=](benchmark::State& s) { run_dit_train(s, b); });
  for (const bool decode : {false, true})
    for (const int b : {1, 32})
      for (const int r : {28, 112, 448}) {
        if (b > 1 && r > 112) continue;  // 32 x 448^2 pixel tokens: ~10 GB of activations
        add(std::string(decode ? "model_decode" : "model_encode") + "/dcsldm/res:" + std::to_string(r) +
                "/batch:" + std::to_string(b),
            [=](benchmark::State& s) { run_codec(s, decode, r, b); });
      }
  for (const int b : {1, 10}) add("model_generate/dcsldm/batch:" + std::to_string(b), [=](benchmark::State& s) { run_generate(s, b); });
}

}  // namespace dcsldm::bench
