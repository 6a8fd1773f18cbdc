// dcsldm/pipeline.hpp: DCS-LDM end to end for users' own code — a tokenizer (DCS-Tok) and a DiT loaded
// from safetensors, composed with a chosen sampler:
//
//   auto pipe = dcsldm::Pipeline<Kokkos::DefaultExecutionSpace>::load("fmnist_tok.safetensors",
//                                                                    "fmnist_dit.safetensors");
//   dcsldm::GenerateRequest req;
//   req.labels = {0, 1, 2};          // one sample per label (num_classes = unconditional)
//   req.levels = 2;                  // knob 1: levels to generate (compute / quality)
//   req.height = req.width = 112;    // knob 2: output resolution, any size
//   req.frames = 1;                  // knob 3: output frame count (fps for video tokenizers)
//   const auto& images = pipe.generate(space, req);   // (B, T, H, W, C) in the execution space
//
// Every buffer (latents, sampler state, DiT and decoder plans, outputs) is allocated on the first call of
// a shape and reused by later calls of that shape. The parts stay reachable — tokenizer(), dit(), sampler(),
// sample_latents(), decode() — for users who write their own loop or decode one latent at many sizes.
#pragma once

#include <dcsldm/core/error.hpp>
#include <dcsldm/dit/model.hpp>
#include <dcsldm/dit/sampler.hpp>
#include <dcsldm/tok/model.hpp>

#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace dcsldm {

/// What to generate. Labels give the batch: one sample per entry.
struct GenerateRequest {
  std::vector<int> labels;  ///< class of each sample; the model's num_classes (or any label of an
                            ///< unconditional model) asks for unconditional samples
  int levels = 0;           ///< levels to generate, 1..L (0: all)
  int height = 28, width = 28;
  int frames = 1;           ///< output frames (1 for images)
  double fps = 0;           ///< output frame rate for video tokenizers (0: the tokenizer's patching in time)
  int steps = 50;
  dit::Integrator sampler = dit::Integrator::Euler;
  double shift = 1.0;       ///< time shift of the schedule
  std::vector<double> grid; ///< custom time grid (overrides steps/shift) when not empty
  double cfg = 1.5;         ///< classifier-free guidance scale (1: none)
  std::uint64_t seed = 0;
  bool progressive = false; ///< level by level (finished levels held clean), a preview after each
  /// Not empty: generation in stages ending at these levels (e.g. {1, 4}: level 1, then 2..4 with level 1 clean;
  /// FlowSampler::staged), a preview after each; the last must be `levels` (or all when levels = 0). Overrides
  /// `progressive`.
  std::vector<int> stages;
};

/// Callbacks of a generation; each may be empty. Returning false cancels (generate() then returns false).
template <class ExecSpace, class T = float>
struct GenerateCallbacks {
  using M = typename ExecSpace::memory_space;
  /// After every sampler step: (level being generated, step done, steps of that level).
  std::function<bool(int level, int step, int steps)> on_step;
  /// Progressive or staged mode, after each level or stage (its last level): the preview decoded at the requested
  /// size (B, T, H, W, C).
  std::function<bool(int level, const tok::View5<T, M>& preview)> on_level;
};

template <class ExecSpace, class T = float>
class Pipeline {
 public:
  using M = typename ExecSpace::memory_space;
  using Latent = View3<T, M>;
  using Images = tok::View5<T, M>;

  Pipeline(tok::Tokenizer<ExecSpace, T> tokenizer, dit::Dit<ExecSpace, T> dit)
      : tok_(std::move(tokenizer)), dit_(std::move(dit)) {
    const auto& dc = dit_.config();
    const auto& tc = tok_.config();
    DCSLDM_REQUIRE(dc.level_sizes == tc.level_sizes && dc.latent_channels == tc.latent_channels, "Pipeline",
                   "the DiT models latents of ", dc.latent_tokens(), " tokens x ", dc.latent_channels,
                   " channels in ", dc.levels(), " levels; the tokenizer makes ", tc.latent_tokens(), " x ",
                   tc.latent_channels, " in ", tc.levels(), " levels");
  }
  /// Loads both models (files are validated; errors name the file).
  static Pipeline load(const std::string& tokenizer_path, const std::string& dit_path) {
    auto tk = tok::Tokenizer<ExecSpace, T>::load(tokenizer_path);  // in order: errors name the first bad file
    auto dm = dit::Dit<ExecSpace, T>::load(dit_path);
    return Pipeline(std::move(tk), std::move(dm));
  }

  tok::Tokenizer<ExecSpace, T>& tokenizer() { return tok_; }
  dit::Dit<ExecSpace, T>& dit() { return dit_; }
  dit::FlowSampler<ExecSpace, T>& sampler() { return sampler_; }
  int levels() const { return dit_.config().levels(); }
  int num_classes() const { return dit_.config().num_classes; }

  /// Samples latents for the request: (B, N, c), rows of levels above req.levels are 0. Returns false when
  /// a callback cancelled. The View is the pipeline's buffer for this batch size (valid until the next call).
  bool sample_latents(const ExecSpace& space, const GenerateRequest& req, const GenerateCallbacks<ExecSpace, T>& cb = {}) {
    check(req);
    const int m = req.levels == 0 ? levels() : req.levels;
    const Latent& z = latent(int(req.labels.size()));
    dit::SampleOptions so = options(req, cb);
    if (!req.progressive && req.stages.empty()) return sampler_.joint(space, dit_, req.labels, m, so, z);
    std::vector<int> stages = req.stages;
    if (stages.empty())  // progressive: a stage per level
      for (int l = 1; l <= m; ++l) stages.push_back(l);
    bool refused = false;  // on_level returned false (also after the last stage: still a cancellation)
    const int done = sampler_.staged(space, dit_, req.labels, stages, so, z, [&](int l, const Latent& zl) {
      if (!cb.on_level) return true;
      const Images& y = images(int(req.labels.size()), req.frames, req.height, req.width);
      tok_.decode(space, zl, l, y, req.fps);
      refused = !cb.on_level(l, y);
      return !refused;
    });
    return done == m && !refused;
  }

  /// The latent of the last sample_latents()/generate() with this batch size.
  const Latent& latent(int batch) {
    auto it = z_.find(batch);
    if (it == z_.end()) {
      const auto& c = dit_.config();
      it = z_.emplace(batch, Latent("dcsldm::pipeline_z", std::size_t(batch), std::size_t(c.latent_tokens()),
                                    std::size_t(c.latent_channels)))
               .first;
    }
    return it->second;
  }

  /// Decodes the first `levels` levels of z (B, N, c) into y (B, T, H, W, C): any size, any frame count.
  template <class ZV, class YV>
  void decode(const ExecSpace& space, const ZV& z, int levels, const YV& y, double fps = 0) {
    tok_.decode(space, z, levels, y, fps);
  }

  /// Generates the request: samples the latents, decodes them at (frames, height, width). Returns false
  /// when cancelled. The images are the pipeline's buffer for this shape: output().
  bool generate(const ExecSpace& space, const GenerateRequest& req, const GenerateCallbacks<ExecSpace, T>& cb = {}) {
    if (!sample_latents(space, req, cb)) return false;
    const int B = int(req.labels.size());
    const Images& y = images(B, req.frames, req.height, req.width);
    tok_.decode(space, latent(B), req.levels == 0 ? levels() : req.levels, y, req.fps);
    last_ = y;
    return true;
  }
  /// The images of the last successful generate(): (B, T, H, W, C).
  const Images& output() const { return last_; }

  /// The output buffer for a shape (allocated once per shape).
  const Images& images(int batch, int frames, int height, int width) {
    const auto key = std::make_tuple(batch, frames, height, width);
    auto it = y_.find(key);
    if (it == y_.end())
      it = y_.emplace(key, Images("dcsldm::pipeline_images", std::size_t(batch), std::size_t(frames),
                                  std::size_t(height), std::size_t(width), std::size_t(tok_.config().channels)))
               .first;
    return it->second;
  }

 private:
  void check(const GenerateRequest& r) const {
    const char* op = "Pipeline::generate";
    DCSLDM_REQUIRE(!r.labels.empty(), op, "no labels: the batch is one sample per label");
    const int K = num_classes();
    for (std::size_t i = 0; i < r.labels.size(); ++i)
      DCSLDM_REQUIRE(K == 0 || (r.labels[i] >= 0 && r.labels[i] <= K), op, "label ", r.labels[i], " (sample ", i,
                     ") is outside 0..", K - 1, " (", K, " = unconditional)");
    DCSLDM_REQUIRE(r.levels >= 0 && r.levels <= levels(), op, "levels = ", r.levels, ", expected 1..", levels(),
                   " (0 = all)");
    DCSLDM_REQUIRE(r.stages.empty() || r.stages.back() == (r.levels == 0 ? levels() : r.levels), op,
                   "the last stage ends at level ", r.stages.empty() ? 0 : r.stages.back(), " but levels = ", r.levels,
                   " (0 = all ", levels(), ")");
    DCSLDM_REQUIRE(r.height >= 1 && r.width >= 1 && r.frames >= 1 && r.height <= 65536 && r.width <= 65536, op,
                   "output ", r.frames, " x ", r.height, " x ", r.width, " is not a valid size");
    DCSLDM_REQUIRE(r.steps >= 1 && r.cfg >= 0 && r.shift > 0, op, "steps = ", r.steps, ", cfg = ", r.cfg,
                   ", shift = ", r.shift);
  }
  dit::SampleOptions options(const GenerateRequest& r, const GenerateCallbacks<ExecSpace, T>& cb) const {
    dit::SampleOptions so;
    so.steps = r.steps;
    so.integrator = r.sampler;
    so.shift = r.shift;
    so.grid = r.grid;
    so.cfg = r.cfg;
    so.seed = r.seed;
    so.on_step = cb.on_step;
    return so;
  }

  tok::Tokenizer<ExecSpace, T> tok_;
  dit::Dit<ExecSpace, T> dit_;
  dit::FlowSampler<ExecSpace, T> sampler_;
  std::map<int, Latent> z_;
  std::map<std::tuple<int, int, int, int>, Images> y_;
  Images last_;
};

}  // namespace dcsldm
