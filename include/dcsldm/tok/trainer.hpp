// dcsldm/tok/trainer.hpp: training of a DCS-Tok tokenizer with asymmetric scale alignment.
//
// Each step: a batch of samples, an input scale and a target scale (drawn independently from the
// configured lists, so input and target usually differ), a number of levels m (level dropout); the input
// is encoded, the latent (plus light Gaussian noise) decoded at the TARGET scale with m levels, and the
// loss  l1_weight * l1 + mse_weight * mse + latent_l2 * mean(z^2)  is taken against the target (DESIGN.md §2);
// with prefix_full_weight, a step of m < L levels also decodes all L levels and adds that loss (and with
// prefix_encoder_grad < 1 the prefix decode's gradient reaches the encoder scaled down). AdamW with
// warm-up + cosine, global-norm clipping, an EMA of the weights, periodic atomic checkpoints and bit-identical
// resume: every random choice of step s is a function of (seed, s) only, and a checkpoint holds parameters, AdamW
// moments, the step and the EMA.
//
// Data enter through TrainSource (host): sample(step, batch, in_res, out_res, in, out) fills two
// (batch, 1, r, r, C) float arrays, deterministically in (its seed, step).
#pragma once

#include <dcsldm/core/error.hpp>
#include <dcsldm/core/progress.hpp>
#include <dcsldm/core/rng.hpp>
#include <dcsldm/nn/loss.hpp>
#include <dcsldm/nn/transformer_block.hpp>
#include <dcsldm/optim/adamw.hpp>
#include <dcsldm/optim/clip_grad.hpp>
#include <dcsldm/optim/ema.hpp>
#include <dcsldm/optim/lr_schedule.hpp>
#include <dcsldm/tok/model.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace dcsldm::tok {

/// A host data source for tokenizer training.
class TrainSource {
 public:
  virtual ~TrainSource() = default;
  virtual int channels() const = 0;
  virtual std::string describe() const = 0;
  /// Fills in (batch, in_res, in_res, C) and out (batch, out_res, out_res, C), row-major, values in [0, 1]:
  /// the same `batch` samples at the two scales; a pure function of (step, the source's own seed).
  virtual void sample(std::int64_t step, int batch, int in_res, int out_res, float* in, float* out) = 0;
};

struct TrainOptions {
  int batch = 32;
  std::int64_t steps = 10000;
  double lr = 8e-4, min_lr = 8e-5;
  std::int64_t warmup = 300;
  double weight_decay = 0.02;
  double clip = 1.0;
  double ema = 0.999;
  double latent_noise = 0.05;   ///< std of the Gaussian noise added to the latent before decoding
  bool latent_noise_relative = false;  ///< latent_noise is a fraction of each level's RMS (batch), not absolute
  double latent_l2 = 1e-3;      ///< weight of mean(z^2)
  double full_levels_prob = 0.5;  ///< probability of decoding all L levels; otherwise m ~ U{1..L}
  /// > 0: a step that decodes a prefix m < L also decodes all L levels from the same latent, at the same target,
  /// and adds that decode's loss with this weight (every step then trains the full decode; level dropout still
  /// trains the prefixes). 0: one decode per step.
  double prefix_full_weight = 0;
  /// Scale of a prefix decode's (m < L) gradient into the latent, and so into the encoder: 1 the plain gradient;
  /// 0 the prefix decodes train the decoder only and the latent is laid out by the all-levels decodes alone
  /// (with prefix_full_weight > 0 every step has one). The decoder's own parameters always get the full gradient.
  double prefix_encoder_grad = 1;
  /// true: every step decodes its latent at every scale of the target list it draws from (out_res, or
  /// final_out_res when the final phase picks that list), each decode's loss weighted 1 / (scales in the list).
  /// The encoder runs once, so each target scale is trained in every step instead of one step in
  /// |out_res|; the input scale and the levels are drawn as usual. false: one target per step.
  bool all_targets = false;
  double l1_weight = 1.0;         ///< weight of the L1 term (sparse data such as glyphs: small, see docs)
  double mse_weight = 1.0;        ///< weight of the MSE term
  std::vector<int> in_res{28}, out_res{28};
  /// A final phase that moves the objective from one set of choices to another (e.g. from one scale and all
  /// levels to the multi-scale, level-dropout recipe: how the shipped fmnist_tok was trained, docs/tokenizer.md):
  /// over the last final_fraction of the steps a weight r rises linearly from 0 to 1; step s decodes all levels
  /// with probability full_levels_prob + r (final_full_levels_prob - full_levels_prob) and draws its scales from
  /// final_in_res / final_out_res with probability r (else from in_res / out_res). 0: no final phase (the
  /// choices of every step are those of the plain recipe).
  double final_fraction = 0;
  double final_full_levels_prob = -1;           ///< < 0: full_levels_prob
  std::vector<int> final_in_res, final_out_res;  ///< empty: in_res / out_res
  /// > 0: a target of more pixels is decoded and trained on a window of this many consecutive pixels (row-major),
  /// one of the target's windows drawn per step (each pixel is an independent query of the depatchifier, so a
  /// 128 x 128 target costs what a 64 x 64 one does); 0: whole targets.
  int max_target_pixels = 0;
  std::uint64_t seed = 1;
  InitScheme init = InitScheme::Unit;  ///< initialisation of a fresh start (tokenizer_params.hpp)
  std::int64_t log_every = 50;
  std::int64_t ckpt_every = 500;
  std::string ckpt_path;  ///< "" = no checkpoints; else <ckpt_path> (+ ".ema" for the EMA)
};

/// What one step measured (host values; reading them fences).
struct StepStats {
  std::int64_t step = 0;
  int in_res = 0, out_res = 0, levels = 0;
  int targets = 1;  ///< target scales decoded (TrainOptions::all_targets); the losses are their means
  double l1 = 0, mse = 0, reg = 0, grad_norm = 0, lr = 0;
  /// The all-levels decode of a prefix step (TrainOptions::prefix_full_weight > 0 and levels < L); -1 otherwise.
  double full_l1 = -1, full_mse = -1;
};

/// The configuration a trainer builds its model with: `cfg` with the cell floors (TokenizerConfig) set to the
/// smallest cells of the training scales, k / (largest input scale) and k / (largest target scale), and the edge
/// margin to the smallest distance of a target pixel from a patch edge (training_edge_margin of the target
/// scales), where cfg leaves them 0.
inline TokenizerConfig with_training_cell_floors(TokenizerConfig cfg, const TrainOptions& opt) {
  auto largest = [](const std::vector<int>& a, const std::vector<int>& b) {
    int r = 0;
    for (int v : a) r = std::max(r, v);
    for (int v : b) r = std::max(r, v);
    return r;
  };
  const int ri = largest(opt.in_res, opt.final_in_res), ro = largest(opt.out_res, opt.final_out_res);
  if (cfg.cell_floor_in == 0 && ri > 0) cfg.cell_floor_in = double(cfg.k) / double(ri);
  if (cfg.cell_floor_out == 0 && ro > 0) cfg.cell_floor_out = double(cfg.k) / double(ro);
  if (cfg.edge_margin_out == 0) {
    std::vector<int> targets;  // scales below k are refused when the trainer validates its options
    for (const auto* list : {&opt.out_res, &opt.final_out_res})
      for (int r : *list)
        if (r >= cfg.k && cfg.k >= 1) targets.push_back(r);
    cfg.edge_margin_out = training_edge_margin(cfg.k, targets);
  }
  return cfg;
}

template <class ExecSpace, class T = float>
class TokenizerTrainer {
 public:
  using M = typename ExecSpace::memory_space;

  TokenizerTrainer(const TokenizerConfig& cfg, const TrainOptions& opt)
      : opt_(opt), model_(with_training_cell_floors(cfg, opt), optim::ArenaState::ParamsAndOptimizer),
        ema_(model_.arena().layout, optim::ArenaState::Params), loss_("dcsldm::tok_losses", 1 + 4 * std::max({opt.out_res.size(), opt.final_out_res.size(), std::size_t(1)})) {
    const char* op = "TokenizerTrainer";
    DCSLDM_REQUIRE(opt.batch >= 1 && opt.steps >= 1, op, "batch = ", opt.batch, ", steps = ", opt.steps,
                   " must be >= 1");
    DCSLDM_REQUIRE(!opt.in_res.empty() && !opt.out_res.empty(), op, "in_res and out_res must not be empty");
    DCSLDM_REQUIRE(opt.full_levels_prob >= 0 && opt.full_levels_prob <= 1, op, "full_levels_prob = ",
                   opt.full_levels_prob, " is not in [0, 1]");
    DCSLDM_REQUIRE(opt.prefix_full_weight >= 0, op, "prefix_full_weight = ", opt.prefix_full_weight,
                   " must be >= 0 (0: one decode per step)");
    DCSLDM_REQUIRE(opt.prefix_encoder_grad >= 0 && opt.prefix_encoder_grad <= 1, op, "prefix_encoder_grad = ",
                   opt.prefix_encoder_grad, " is not in [0, 1]");
    DCSLDM_REQUIRE(opt.final_fraction >= 0 && opt.final_fraction <= 1, op, "final_fraction = ", opt.final_fraction,
                   " is not in [0, 1]");
    DCSLDM_REQUIRE(opt.final_full_levels_prob <= 1, op, "final_full_levels_prob = ", opt.final_full_levels_prob,
                   " is above 1");
    for (const auto* list : {&opt.in_res, &opt.out_res, &opt.final_in_res, &opt.final_out_res})
      for (int r : *list) DCSLDM_REQUIRE(r >= 1, op, "a scale of ", r, " pixels in the scale lists must be >= 1");
    DCSLDM_REQUIRE(opt.max_target_pixels >= 0, op, "max_target_pixels = ", opt.max_target_pixels,
                   " must be >= 0 (0: whole targets)");
    adam_.weight_decay = opt.weight_decay;
    sched_ = {opt.lr, opt.min_lr, opt.warmup, opt.steps};
    const std::size_t B = std::size_t(opt.batch), N = std::size_t(cfg.latent_tokens()),
                      c = std::size_t(cfg.latent_channels);
    z_ = View3<T, M>("dcsldm::tok_z", B, N, c);
    dz_ = View3<T, M>("dcsldm::tok_dz", B, N, c);
    dzreg_ = View3<T, M>("dcsldm::tok_dzreg", B, N, c);
    if (opt.prefix_full_weight > 0 || opt.all_targets) dzfull_ = View3<T, M>("dcsldm::tok_dzfull", B, N, c);
    zeros_ = View3<T, M>("dcsldm::tok_zeros", B, N, c);
  }

  /// Fresh start: initialise the weights (seed) and the EMA as a copy.
  void init(const ExecSpace& space) {
    model_.init(space, opt_.seed, opt_.init);
    Kokkos::deep_copy(space, ema_.params, model_.arena().params);
    step_ = 0;
  }

  /// Fine-tuning start: the weights of the model file `path` (its EMA weights, as written by save_model), the EMA
  /// a copy of them, fresh AdamW moments and step 0 (the schedule starts over: warm-up and cosine over
  /// opt.steps). The file's architecture must be this trainer's; its cell floors may differ (the trainer's,
  /// from its scale lists, are kept). Nothing is copied unless the file is a valid tokenizer of that shape.
  void init_from(const ExecSpace& space, const std::string& path) {
    const io::SafeTensors f = io::SafeTensors::read(path);
    const auto kind = f.metadata().find("dcsldm.kind");
    DCSLDM_REQUIRE(kind != f.metadata().end() && kind->second == "tokenizer", "TokenizerTrainer::init_from", "'",
                   path, "' is not a dcsldm tokenizer");
    TokenizerConfig fc = TokenizerConfig::from_metadata(f.metadata(), path), mc = model_.config();
    fc.cell_floor_in = fc.cell_floor_out = mc.cell_floor_in = mc.cell_floor_out = 0;  // not architecture
    fc.edge_margin_out = mc.edge_margin_out = 0;
    DCSLDM_REQUIRE(same_architecture(fc, mc), "TokenizerTrainer::init_from", "'", path,
                   "' has another architecture than the trainer's model (", describe_difference(fc, mc), ")");
    optim::load_arena(f, model_.arena(), optim::ArenaState::Params);
    Kokkos::deep_copy(space, model_.arena().m, T(0));
    Kokkos::deep_copy(space, model_.arena().v, T(0));
    Kokkos::deep_copy(space, ema_.params, model_.arena().params);
    step_ = 0;
    adam_.step = 0;
  }

  /// Resume from opt.ckpt_path (parameters, AdamW state and step; EMA from "<path>.ema"). Returns false
  /// when there is no checkpoint; throws on a corrupt or mismatched one (nothing half-loaded: the files are
  /// validated before anything is copied).
  bool resume(const ExecSpace& space) {
    if (opt_.ckpt_path.empty() || !std::filesystem::exists(opt_.ckpt_path)) return false;
    const std::string ep = opt_.ckpt_path + ".ema";
    const io::SafeTensors main = io::SafeTensors::read(opt_.ckpt_path);
    const io::SafeTensors emaf = io::SafeTensors::read(ep);
    const std::string s1 = main.meta("train.step"), s2 = emaf.meta("train.step");
    DCSLDM_REQUIRE(s1 == s2, "TokenizerTrainer::resume", "'", opt_.ckpt_path, "' is at step ", s1, " but '", ep,
                   "' at step ", s2, " (interrupted checkpoint?)");
    TokenizerConfig fc = TokenizerConfig::from_metadata(main.metadata(), opt_.ckpt_path);
    // A checkpoint written before the trainer recorded cell floors has none: the architecture must match and the
    // trainer's floors are kept; one that records floors must record the trainer's. Likewise the edge margin
    // (it changes no training step).
    const bool floors_recorded = main.metadata().count("tok.cell_floor_in") > 0;
    if (main.metadata().count("tok.edge_margin_out") == 0) fc.edge_margin_out = model_.config().edge_margin_out;
    DCSLDM_REQUIRE(same_architecture(fc, model_.config()) &&
                       (!floors_recorded || fc.to_metadata() == model_.config().to_metadata()),
                   "TokenizerTrainer::resume", "'", opt_.ckpt_path, "' was trained with another configuration (",
                   describe_difference(fc, model_.config()), ")");
    const std::int64_t st = optim::load_arena(main, model_.arena(), optim::ArenaState::ParamsAndOptimizer);
    optim::load_arena(emaf, ema_, optim::ArenaState::Params);
    step_ = st;
    adam_.step = st;
    (void)space;
    return true;
  }

  /// Writes the checkpoint pair atomically (EMA first; the main file names the step both hold).
  void checkpoint() const {
    if (opt_.ckpt_path.empty()) return;
    std::map<std::string, std::string> md = model_.config().to_metadata();
    md["dcsldm.kind"] = "tokenizer";
    md["train.step"] = std::to_string(step_);
    optim::save_arena(opt_.ckpt_path + ".ema", ema_, optim::ArenaState::Params, 0, md);
    optim::save_arena(opt_.ckpt_path, model_.arena(), optim::ArenaState::ParamsAndOptimizer, step_, md);
  }

  /// Saves the EMA weights as a model file (what eval and generation load).
  void save_model(const std::string& path, std::map<std::string, std::string> extra = {}) const {
    Tokenizer<ExecSpace, T> out(model_.config());
    Kokkos::deep_copy(out.arena().params, ema_.params);
    extra["train.step"] = std::to_string(step_);
    out.save(path, optim::ArenaState::Params, 0, extra);
  }

  /// The weight r in [0, 1] of the final phase at step s (0 before it and without one; 1 at the last step).
  double final_weight(std::int64_t s) const {
    if (opt_.final_fraction <= 0) return 0;
    const double start = double(opt_.steps) * (1 - opt_.final_fraction), len = double(opt_.steps) - start;
    return std::clamp((double(s) + 1 - start) / len, 0.0, 1.0);
  }

  /// The random choices of step s: (in_res, out_res, levels).
  std::tuple<int, int, int> choices(std::int64_t s) const {
    const Draw d = draw(s);
    return {d.in_res, d.out_res, d.levels};
  }

  /// The target scales step s decodes: {out_res} of choices(s), or with all_targets every scale of the list
  /// that target was drawn from, the drawn one first.
  std::vector<int> targets(std::int64_t s) const { return targets_of(draw(s)); }

 private:
  struct Draw {
    int in_res, out_res, levels;
    const std::vector<int>* out_list;  ///< the list out_res was drawn from
  };
  std::vector<int> targets_of(const Draw& d) const {
    if (!opt_.all_targets) return {d.out_res};
    std::vector<int> t{d.out_res};
    for (int r : *d.out_list)
      if (std::find(t.begin(), t.end(), r) == t.end()) t.push_back(r);
    return t;
  }

 public:

  /// The first pixel of step s's target window: one of the ceil(npix / window) windows that tile the target
  /// (the last one ends at the last pixel), uniformly (its own random stream: the other choices of a step do
  /// not depend on whether windows are used).
  std::int64_t window_start(std::int64_t s, int npix, int window) const {
    std::mt19937_64 g(rng::stream_of("tok_window") ^ (opt_.seed * 0x9E3779B97F4A7C15ull) ^ std::uint64_t(s));
    const int count = (npix + window - 1) / window;
    std::uniform_int_distribution<int> d(0, count - 1);
    return std::min<std::int64_t>(std::int64_t(d(g)) * window, npix - window);
  }

  /// Builds what every step shape needs up front: the batch buffers of every (input, output) scale pair and
  /// the plans of every input scale and every output scale with all levels (the largest of each), so that
  /// the encode and decode scratch reach their final size here (their pages touched once) and no step
  /// allocates afterwards. step() calls it before its first step; calling it again does nothing.
  void reserve(const ExecSpace& space) {
    if (reserved_) return;
    const TokenizerConfig& cfg = model_.config();
    std::vector<int> ins = opt_.in_res, outs = opt_.out_res;
    ins.insert(ins.end(), opt_.final_in_res.begin(), opt_.final_in_res.end());
    outs.insert(outs.end(), opt_.final_out_res.begin(), opt_.final_out_res.end());
    for (int ri : ins)
      for (int ro : outs) batch_for(ri, ro);
    for (int ri : ins) model_.encode_plan(space, opt_.batch, model_.grid(1, ri, ri), true);
    for (int ro : outs)
      model_.decode_plan(space, opt_.batch, model_.grid(1, ro, ro), cfg.levels(), true, batch_for(ins[0], ro).window);
    reserved_ = true;
  }

  /// One training step on `src`. Returns the step's statistics (reads the losses back: fences).
  StepStats step(const ExecSpace& space, TrainSource& src) {
    reserve(space);
    const TokenizerConfig& cfg = model_.config();
    const Draw d = draw(step_);  // the step's random choices, drawn once
    const int ri = d.in_res, ro = d.out_res, m = d.levels;
    const std::vector<int> outs = targets_of(d);
    DCSLDM_REQUIRE(loss_.extent(0) >= 1 + 4 * outs.size(), "TokenizerTrainer::step", "loss slots for ", outs.size(),
                   " targets");
    optim::zero_grad(space, model_.arena());
    const auto& P = model_.params();
    const auto& G = model_.grads();
    const auto& ep = model_.encode_plan(space, opt_.batch, model_.grid(1, ri, ri), true);
    const bool full_too = opt_.prefix_full_weight > 0 && m < cfg.levels();
    const double share = 1.0 / double(outs.size());
    for (std::size_t k = 0; k < outs.size(); ++k) {
      const int rk = outs[k];
      Batch& b = batch_for(ri, rk);
      src.sample(step_, opt_.batch, ri, rk, b.h_in.data(), b.h_out.data());  // the same samples at every scale
      if (k == 0) {
        Kokkos::deep_copy(space, b.x, b.h_in);
        encode_forward(space, b.x, P, cfg, z_, ep);
      }
      int first = 0;
      if (b.window > 0) {  // the window's target pixels of every sample, packed
        first = int(window_start(step_, rk * rk, b.window));
        const std::size_t C = std::size_t(cfg.channels), wn = std::size_t(b.window) * C;
        for (std::size_t i = 0; i < std::size_t(opt_.batch); ++i)
          std::copy_n(b.h_out.data() + (i * std::size_t(rk * rk) + std::size_t(first)) * C, wn, b.h_win.data() + i * wn);
        Kokkos::deep_copy(space, b.target, b.h_win);
      } else {
        Kokkos::deep_copy(space, b.target, b.h_out);
      }
      // Decodes z_ with `plan` (noise stream `stream`), writes its L1 | MSE into loss_(slot), loss_(slot + 1) and
      // backpropagates `weight` x the loss into the parameters and `dz` (=).
      auto decode_pass = [&](DecodePlan<T, M>& plan, std::uint64_t stream, int slot, double weight,
                             const View3<T, M>& dz) {
        if (b.window > 0) {
          set_decode_window(space, cfg, plan, first);
          const View3<T, M> yw(b.y.data(), std::size_t(opt_.batch), std::size_t(b.window), std::size_t(cfg.channels));
          decode_forward_window(space, z_, P, cfg, yw, plan, opt_.latent_noise, opt_.seed, stream,
                                opt_.latent_noise_relative);
        } else {
          decode_forward(space, z_, P, cfg, b.y, plan, opt_.latent_noise, opt_.seed, stream, opt_.latent_noise_relative);
        }
        nn::l1_loss_forward(space, b.y, b.target, Kokkos::subview(loss_, std::make_pair(slot, slot + 1)));
        nn::mse_loss_forward(space, b.y, b.target, Kokkos::subview(loss_, std::make_pair(slot + 1, slot + 2)));
        nn::l1_loss_backward(space, weight * opt_.l1_weight, b.y, b.target, b.dy);
        nn::mse_loss_backward(space, weight * opt_.mse_weight, b.y, b.target, b.dy2);
        nn::Impl::add_into(space, b.dy, b.dy2, b.dy);
        decode_backward(space, b.dy, P, G, cfg, plan, dz);
      };
      // Target k's decode (the first one's noise stream is the one-target recipe's); dz adds up over decodes.
      // Plans share the decode scratch: taking one may rebuild it over the previous plan's buffers, which are done.
      const std::uint64_t kk = std::uint64_t(k) << 40;
      auto& dp = model_.decode_plan(space, opt_.batch, model_.grid(1, rk, rk), m, true, b.window);
      decode_pass(dp, rng::stream_of("tok_noise") + std::uint64_t(step_) + kk, 1 + 4 * int(k), share,
                  k == 0 ? dz_ : dzfull_);
      if (m < cfg.levels() && opt_.prefix_encoder_grad != 1) {
        const View3<T, M>& dzk = k == 0 ? dz_ : dzfull_;
        Kokkos::parallel_for("dcsldm::tok_prefix_encoder_grad",
                             Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<std::size_t>>(space, 0, dzk.size()),
                             optim::Impl::ScaleBy<T>{dzk.data(), accum_t<T>(opt_.prefix_encoder_grad)});
      }
      if (k > 0) nn::Impl::add_into(space, dz_, dzfull_, dz_);
      if (full_too) {  // the same latent decoded with all levels (own noise draw), its loss weighted
        auto& dpf = model_.decode_plan(space, opt_.batch, model_.grid(1, rk, rk), cfg.levels(), true, b.window);
        decode_pass(dpf, rng::stream_of("tok_noise_full") + std::uint64_t(step_) + kk, 3 + 4 * int(k),
                    share * opt_.prefix_full_weight, dzfull_);
        nn::Impl::add_into(space, dz_, dzfull_, dz_);
      }
    }
    auto regv = Kokkos::subview(loss_, std::make_pair(0, 1));
    nn::mse_loss_forward(space, z_, zeros_, regv);
    nn::mse_loss_backward(space, opt_.latent_l2, z_, zeros_, dzreg_);
    nn::Impl::add_into(space, dz_, dzreg_, dz_);
    encode_backward(space, dz_, batch_for(ri, outs[0]).x, P, G, cfg, ep);
    StepStats st;
    st.grad_norm = optim::clip_grad_norm_readback(space, model_.arena().grads, opt_.clip);
    st.lr = sched_(step_);
    optim::adamw_step(space, model_.arena(), adam_, st.lr);
    optim::ema_update(space, ema_, model_.arena(), optim::ema_decay(opt_.ema, step_, true));
    auto hl = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), loss_);
    st.step = step_;
    st.in_res = ri;
    st.out_res = ro;
    st.levels = m;
    st.targets = int(outs.size());
    st.reg = double(hl(0));
    st.l1 = st.mse = 0;
    if (full_too) st.full_l1 = st.full_mse = 0;
    for (std::size_t k = 0; k < outs.size(); ++k) {  // means over the targets
      st.l1 += double(hl(1 + 4 * k)) * share;
      st.mse += double(hl(2 + 4 * k)) * share;
      if (full_too) {
        st.full_l1 += double(hl(3 + 4 * k)) * share;
        st.full_mse += double(hl(4 + 4 * k)) * share;
      }
    }
    ++step_;
    return st;
  }

  /// Runs to opt.steps with a progress line every log_every steps and checkpoints every ckpt_every;
  /// on_step (if set) is called after every step with (steps done, opt.steps) — e.g. a terminal progress bar.
  void run(const ExecSpace& space, TrainSource& src, std::FILE* log = stdout,
           const std::function<void(std::int64_t, std::int64_t)>& on_step = {}) {
    ProgressRate rate(step_);
    double l1 = 0, mse = 0, full_mse = 0;
    int cnt = 0, full_cnt = 0;
    while (step_ < opt_.steps) {
      const StepStats st = step(space, src);
      l1 += st.l1;
      mse += st.mse;
      ++cnt;
      if (st.full_mse >= 0) {
        full_mse += st.full_mse;
        ++full_cnt;
      }
      if (step_ % opt_.log_every == 0 || step_ == opt_.steps) {
        const ProgressRate::Reading r = rate.tick(step_, opt_.steps);
        char full[48] = "";
        if (full_cnt > 0)  // the extra all-levels decodes of prefix steps (prefix_full_weight)
          std::snprintf(full, sizeof full, "  full psnr %.2f", -10 * std::log10(full_mse / full_cnt + 1e-12));
        std::fprintf(log,
                     "step %lld/%lld  l1 %.5f  mse %.6f (psnr %.2f)%s  reg %.4f  |g| %.3f  lr %.2e  %.1f samples/s  "
                     "ETA %dm%02ds\n",
                     (long long)step_, (long long)opt_.steps, l1 / cnt, mse / cnt, -10 * std::log10(mse / cnt + 1e-12),
                     full, st.reg, st.grad_norm, st.lr, r.steps_per_s * opt_.batch, int(r.eta_s) / 60,
                     int(r.eta_s) % 60);
        std::fflush(log);
        l1 = mse = full_mse = 0;
        cnt = full_cnt = 0;
      }
      if (opt_.ckpt_every > 0 && (step_ % opt_.ckpt_every == 0 || step_ == opt_.steps)) checkpoint();
      if (on_step) on_step(step_, opt_.steps);
    }
  }

  std::int64_t current_step() const { return step_; }
  Tokenizer<ExecSpace, T>& model() { return model_; }
  const optim::ParamArena<T, M>& ema() const { return ema_; }
  const TrainOptions& options() const { return opt_; }

 private:
  Draw draw(std::int64_t s) const {
    std::mt19937_64 g(rng::stream_of("tok_step") ^ (opt_.seed * 0x9E3779B97F4A7C15ull) ^ std::uint64_t(s));
    const int L = model_.config().levels();
    std::uniform_int_distribution<std::size_t> di(0, opt_.in_res.size() - 1), dout(0, opt_.out_res.size() - 1);
    std::uniform_real_distribution<double> u(0, 1);
    std::uniform_int_distribution<int> dl(1, L);
    Draw d{opt_.in_res[di(g)], opt_.out_res[dout(g)], 0, &opt_.out_res};
    const double r = final_weight(s);
    const double pf = opt_.final_full_levels_prob < 0 ? opt_.full_levels_prob : opt_.final_full_levels_prob;
    d.levels = u(g) < opt_.full_levels_prob + r * (pf - opt_.full_levels_prob) ? L : dl(g);
    if (r > 0) {  // the final phase's scales: their own stream, so the draws above are the recipe's
      std::mt19937_64 gf(rng::stream_of("tok_final") ^ (opt_.seed * 0x9E3779B97F4A7C15ull) ^ std::uint64_t(s));
      const auto& fi = opt_.final_in_res.empty() ? opt_.in_res : opt_.final_in_res;
      const auto& fo = opt_.final_out_res.empty() ? opt_.out_res : opt_.final_out_res;
      std::uniform_int_distribution<std::size_t> fdi(0, fi.size() - 1), fdo(0, fo.size() - 1);
      if (u(gf) < r) d.in_res = fi[fdi(gf)];
      if (u(gf) < r) {
        d.out_res = fo[fdo(gf)];
        d.out_list = &fo;
      }
    }
    return d;
  }

  struct Batch {
    View5<T, M> x, target, y, dy, dy2;  // target .. dy2: (B, 1, ro, ro, C), or (B, 1, 1, window, C) for a window
    typename View5<T, M>::HostMirror h_in, h_out, h_win;  // h_out: the whole target; h_win: its window (packed)
    int window = 0;                                       // > 0: the target is trained on windows of this many pixels
  };
  Batch& batch_for(int ri, int ro) {
    const auto key = std::make_pair(ri, ro);
    auto it = batches_.find(key);
    if (it != batches_.end()) return it->second;
    const std::size_t B = std::size_t(opt_.batch), C = std::size_t(model_.config().channels);
    Batch b;
    b.window = opt_.max_target_pixels > 0 && ro * ro > opt_.max_target_pixels ? opt_.max_target_pixels : 0;
    const std::size_t th = b.window > 0 ? 1 : std::size_t(ro);
    const std::size_t tw = b.window > 0 ? std::size_t(b.window) : std::size_t(ro);
    b.x = View5<T, M>("dcsldm::tok_x", B, 1, std::size_t(ri), std::size_t(ri), C);
    b.target = View5<T, M>("dcsldm::tok_target", B, 1, th, tw, C);
    b.y = View5<T, M>("dcsldm::tok_y", B, 1, th, tw, C);
    b.dy = View5<T, M>("dcsldm::tok_dy", B, 1, th, tw, C);
    b.dy2 = View5<T, M>("dcsldm::tok_dy2", B, 1, th, tw, C);
    b.h_in = Kokkos::create_mirror_view(b.x);
    if (b.window > 0) {
      b.h_out = typename View5<T, M>::HostMirror("dcsldm::tok_target_host", B, 1, std::size_t(ro), std::size_t(ro), C);
      b.h_win = Kokkos::create_mirror_view(b.target);
    } else {
      b.h_out = Kokkos::create_mirror_view(b.target);
    }
    return batches_.emplace(key, std::move(b)).first->second;
  }

  TrainOptions opt_;
  Tokenizer<ExecSpace, T> model_;
  optim::ParamArena<T, M> ema_;
  optim::AdamW adam_;
  optim::WarmupCosine sched_;
  View1<T, M> loss_;
  View3<T, M> z_, dz_, dzreg_, dzfull_, zeros_;
  std::map<std::pair<int, int>, Batch> batches_;
  std::int64_t step_ = 0;
  bool reserved_ = false;
};

}  // namespace dcsldm::tok
