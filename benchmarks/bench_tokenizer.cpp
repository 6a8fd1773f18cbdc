// benchmarks/bench_tokenizer.cpp: the cost of DCS-Tok encode and decode against resolution (16 to 512 px),
// batch 1, the fmnist model's shape (k = 7, one token per patch, 32 latent tokens; weights do not change
// the cost, so they are random). The patch count is the same at every resolution, so the transformer part
// (tok_*_transformer: the encoder or decoder blocks alone, on the same plan) is flat; the rest (pixel
// tokens, patchifier read-out, neighbour depatchifier, per-pixel MLP) grows linearly with pixels.
// tok_decode_blend: the decode with the fmnist model's edge margin (1/8 patch; TokenizerConfig::edge_margin_out),
// whose band pixels take an extra read-out per patch edge they straddle.
// Names: tok_{encode,decode}/res:<R>, tok_{encode,decode}_transformer/res:<R>, tok_decode_blend/res:<R>; counter
// "pixels".
#include "bench_common.hpp"

#include <dcsldm/tok/model.hpp>

namespace dcsldm::bench {
namespace {

tok::TokenizerConfig bench_config() {
  tok::TokenizerConfig c;
  c.channels = 1;
  c.k = 7;
  c.queries = 1;
  c.level_sizes = {4, 4, 8, 16};
  c.latent_channels = 8;
  return c;
}

void run_tok(benchmark::State& state, int res, bool decode, bool transformer_only, bool blend = false) {
  const Exec space;
  auto cfg = bench_config();
  if (blend) cfg.edge_margin_out = 0.125;
  tok::Tokenizer<Exec, float> model(cfg);
  model.init(space, 1);
  tok::View5<float, Mem> x("x", 1, 1, std::size_t(res), std::size_t(res), 1);
  fill(x, 3, 0.5);
  View3<float, Mem> z("z", 1, std::size_t(cfg.latent_tokens()), std::size_t(cfg.latent_channels));
  const auto g = model.grid(1, res, res);
  const auto& ep = model.encode_plan(space, 1, g);
  const auto& dp = model.decode_plan(space, 1, g, cfg.levels());
  tok::encode_forward(space, x, model.params(), cfg, z, ep);
  auto step = [&] {
    if (!decode && !transformer_only) {
      tok::encode_forward(space, x, model.params(), cfg, z, ep);
    } else if (decode && !transformer_only) {
      tok::decode_forward(space, z, model.params(), cfg, x, dp);
    } else {
      const auto& blocks = decode ? dp.blocks : ep.blocks;
      const auto& params = decode ? model.params().dec_blocks : model.params().enc_blocks;
      const auto& mask = decode ? dp.mask : ep.mask;
      const auto& tws = decode ? dp.tws : ep.tws;
      const int L = int(blocks.size());
      for (int i = 0; i < L; ++i)
        nn::transformer_block_forward(space, blocks[i].x, params[i], mask, i + 1 < L ? blocks[i + 1].x : (decode ? dp.xl : ep.xl),
                                      blocks[i], tws);
    }
  };
  step();
  space.fence();
  for (auto _ : state) {
    step();
    space.fence();
  }
  state.counters["pixels"] = double(res) * double(res);
  state.counters["tokens"] = double(decode ? dp.S : ep.S);
}

}  // namespace

void register_tokenizer() {
  for (const bool decode : {false, true})
    for (const bool tr : {false, true})
      for (const int r : {16, 32, 64, 128, 256, 512}) {
        const std::string name = std::string("tok_") + (decode ? "decode" : "encode") + (tr ? "_transformer" : "") +
                                 "/res:" + std::to_string(r);
        benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& s) { run_tok(s, r, decode, tr); })
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
  for (const int r : {16, 32, 64, 128, 256, 512})
    benchmark::RegisterBenchmark(("tok_decode_blend/res:" + std::to_string(r)).c_str(),
                                 [=](benchmark::State& s) { run_tok(s, r, true, false, true); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
}

}  // namespace dcsldm::bench
