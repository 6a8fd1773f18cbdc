// dcsldm/dit/trainer.hpp: rectified-flow training of a DCS-DiT on tokenizer latents (DESIGN.md §3).
//
// Each step: a batch of latents (normalised by the model's per-(level, channel) statistics), t from a
// logit-normal(0, 1), noise eps, x_t = (1 - t) x_0 + t eps, target v = eps - x_0, labels dropped to the null
// label with probability label_dropout (classifier-free guidance). With probability prefix_prob a random
// number k in 1..L-1 of levels is held clean (x_0, condition t = 0) and the loss is taken on the other
// tokens only: that is what progressive (coarse-to-fine) generation runs. Always all L levels: the mask is
// level-causal, so the first m levels never see later ones and a model trained on all levels generates any
// prefix m. Loss: MSE over the noisy tokens. AdamW, warm-up + cosine, clipping, EMA, atomic checkpoints
// (<ckpt> + <ckpt>.ema), bit-identical resume: every random draw of step s is a function of (seed, s),
// made on the host (so every backend trains on the same numbers).
#pragma once

#include <dcsldm/core/error.hpp>
#include <dcsldm/core/progress.hpp>
#include <dcsldm/core/rng.hpp>
#include <dcsldm/dit/latent_set.hpp>
#include <dcsldm/dit/model.hpp>
#include <dcsldm/optim/adamw.hpp>
#include <dcsldm/optim/clip_grad.hpp>
#include <dcsldm/optim/ema.hpp>
#include <dcsldm/optim/lr_schedule.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace dcsldm::dit {

struct DitTrainOptions {
  int batch = 64;
  std::int64_t steps = 20000;
  double lr = 5e-4, min_lr = 5e-5;
  std::int64_t warmup = 500;
  double weight_decay = 0.0;
  double clip = 1.0;
  double ema = 0.999;
  double label_dropout = 0.1;  ///< probability of the null label (classifier-free guidance)
  double prefix_prob = 0.3;    ///< probability of holding a random prefix of levels clean
  std::uint64_t seed = 1;
  std::int64_t log_every = 100;
  std::int64_t ckpt_every = 1000;
  std::string ckpt_path;
};

struct DitStepStats {
  std::int64_t step = 0;
  int split = 0;
  double loss = 0, grad_norm = 0, lr = 0;
};

namespace Impl {
// d(mean squared error)/dv for the noisy tokens; the clean prefix (n < split) gets no gradient. A
// namespace-scope functor: nvcc cannot launch a kernel on a type private to a class.
template <class T, class M>
struct FlowLossGrad {
  View3<T, M> v, tgt, dv;
  int split;
  T scale;
  KOKKOS_INLINE_FUNCTION void operator()(const int b, const int n, const int ch) const {
    dv(b, n, ch) = n < split ? T(0) : scale * (v(b, n, ch) - tgt(b, n, ch));
  }
};
}  // namespace Impl

template <class ExecSpace, class T = float>
class DitTrainer {
 public:
  using M = typename ExecSpace::memory_space;

  /// `data` must outlive the trainer. The model's latent statistics are set from the data.
  DitTrainer(const DitConfig& cfg, const DitTrainOptions& opt, const LatentSet& data)
      : opt_(opt), data_(data), model_(cfg, optim::ArenaState::ParamsAndOptimizer),
        ema_(model_.arena().layout, optim::ArenaState::Params) {
    const char* op = "DitTrainer";
    DCSLDM_REQUIRE(opt.batch >= 1 && opt.steps >= 1, op, "batch = ", opt.batch, ", steps = ", opt.steps);
    DCSLDM_REQUIRE(data.tokens == cfg.latent_tokens() && data.channels == cfg.latent_channels, op,
                   "the latent set holds (", data.tokens, " x ", data.channels, ") latents, the DiT expects (",
                   cfg.latent_tokens(), " x ", cfg.latent_channels, ")");
    DCSLDM_REQUIRE(data.count >= 1, op, "the latent set is empty");
    if (cfg.num_classes > 0)
      for (int i = 0; i < data.count; ++i)
        DCSLDM_REQUIRE(data.labels[std::size_t(i)] >= 0 && data.labels[std::size_t(i)] < cfg.num_classes, op,
                       "sample ", i, " has label ", data.labels[std::size_t(i)], ", expected 0..", cfg.num_classes - 1,
                       " (class-conditional model)");
    const auto st = latent_stats(data, cfg.level_sizes);
    model_.set_latent_stats(st.first, st.second);
    adam_.weight_decay = opt.weight_decay;
    sched_ = {opt.lr, opt.min_lr, opt.warmup, opt.steps};
    const std::size_t B = std::size_t(opt.batch), N = std::size_t(cfg.latent_tokens()),
                      c = std::size_t(cfg.latent_channels);
    xt_ = View3<T, M>("dcsldm::dit_xt", B, N, c);
    tgt_ = View3<T, M>("dcsldm::dit_target", B, N, c);
    v_ = View3<T, M>("dcsldm::dit_v", B, N, c);
    dv_ = View3<T, M>("dcsldm::dit_dv", B, N, c);
    t_ = View1<T, M>("dcsldm::dit_t", B);
    labels_ = Kokkos::View<int*, M>("dcsldm::dit_labels", B);
    h_xt_ = Kokkos::create_mirror_view(xt_);
    h_tgt_ = Kokkos::create_mirror_view(tgt_);
    h_v_ = Kokkos::create_mirror_view(v_);
    h_t_ = Kokkos::create_mirror_view(t_);
    h_labels_ = Kokkos::create_mirror_view(labels_);
    levels_ = cfg.token_levels(cfg.levels());
  }

  void init(const ExecSpace& space) {
    model_.init(space, opt_.seed);
    Kokkos::deep_copy(space, ema_.params, model_.arena().params);
    step_ = 0;
  }

  bool resume(const ExecSpace& space) {
    (void)space;
    if (opt_.ckpt_path.empty() || !std::filesystem::exists(opt_.ckpt_path)) return false;
    const std::string ep = opt_.ckpt_path + ".ema";
    const io::SafeTensors main = io::SafeTensors::read(opt_.ckpt_path);
    const io::SafeTensors emaf = io::SafeTensors::read(ep);
    const std::string s1 = main.meta("train.step"), s2 = emaf.meta("train.step");
    DCSLDM_REQUIRE(s1 == s2, "DitTrainer::resume", "'", opt_.ckpt_path, "' is at step ", s1, " but '", ep, "' at step ",
                   s2, " (interrupted checkpoint?)");
    const DitConfig fc = DitConfig::from_metadata(main.metadata(), opt_.ckpt_path);
    DCSLDM_REQUIRE(fc.to_metadata() == model_.config().to_metadata(), "DitTrainer::resume", "'", opt_.ckpt_path,
                   "' was trained with another configuration");
    const std::int64_t st = optim::load_arena(main, model_.arena(), optim::ArenaState::ParamsAndOptimizer);
    optim::load_arena(emaf, ema_, optim::ArenaState::Params);
    step_ = st;
    adam_.step = st;
    return true;
  }

  void checkpoint() const {
    if (opt_.ckpt_path.empty()) return;
    std::map<std::string, std::string> md = model_.config().to_metadata();
    md["dcsldm.kind"] = "dit";
    md["train.step"] = std::to_string(step_);
    optim::save_arena(opt_.ckpt_path + ".ema", ema_, optim::ArenaState::Params, 0, md);
    optim::save_arena(opt_.ckpt_path, model_.arena(), optim::ArenaState::ParamsAndOptimizer, step_, md);
  }

  /// The EMA weights with the data's statistics as a model file.
  void save_model(const std::string& path, std::map<std::string, std::string> extra = {}) const {
    Dit<ExecSpace, T> out(model_.config());
    Kokkos::deep_copy(out.arena().params, ema_.params);
    out.set_latent_stats(model_.latent_mean(), model_.latent_std());
    extra["train.step"] = std::to_string(step_);
    out.save(path, optim::ArenaState::Params, 0, extra);
  }

  /// One step. Returns its statistics (reads the loss and gradient norm back: fences).
  DitStepStats step(const ExecSpace& space) {
    const DitConfig& cfg = model_.config();
    const int B = opt_.batch, L = cfg.levels(), N = cfg.latent_tokens(), c = cfg.latent_channels;
    std::mt19937_64 g(rng::stream_of("dit_step") ^ (opt_.seed * 0x9E3779B97F4A7C15ull) ^ std::uint64_t(step_));
    std::uniform_real_distribution<double> u(0, 1);
    std::normal_distribution<double> nd(0, 1);
    std::uniform_int_distribution<int> pick(0, data_.count - 1);
    int split = 0;
    if (L > 1 && u(g) < opt_.prefix_prob) split = cfg.tokens_upto(std::uniform_int_distribution<int>(1, L - 1)(g));
    const auto& mean = model_.latent_mean();
    const auto& sd = model_.latent_std();
    const std::vector<int>& lev = levels_;
    for (int b = 0; b < B; ++b) {
      const int i = pick(g);
      const double t = 1.0 / (1.0 + std::exp(-nd(g)));  // logit-normal(0, 1)
      h_t_(b) = T(t);
      const int y = data_.labels[std::size_t(i)];
      h_labels_(b) = cfg.num_classes > 0 ? (u(g) < opt_.label_dropout ? cfg.num_classes : y) : 0;
      const float* z = data_.sample(i);
      for (int n = 0; n < N; ++n)
        for (int ch = 0; ch < c; ++ch) {
          const std::size_t k = std::size_t(lev[std::size_t(n)] - 1) * std::size_t(c) + std::size_t(ch);
          const double x0 = (double(z[std::size_t(n) * std::size_t(c) + std::size_t(ch)]) - mean[k]) / sd[k];
          const double e = nd(g);
          const bool clean = n < split;
          h_xt_(b, n, ch) = T(clean ? x0 : (1 - t) * x0 + t * e);
          h_tgt_(b, n, ch) = T(e - x0);
        }
    }
    Kokkos::deep_copy(space, xt_, h_xt_);
    Kokkos::deep_copy(space, tgt_, h_tgt_);
    Kokkos::deep_copy(space, t_, h_t_);
    Kokkos::deep_copy(space, labels_, h_labels_);
    optim::zero_grad(space, model_.arena());
    const auto& p = model_.plan(B, L, true);
    dit_forward(space, xt_, t_, labels_, split, model_.params(), cfg, v_, p);
    const double count = double(B) * double(N - split) * double(c);
    Kokkos::parallel_for("dcsldm::dit_loss_grad",
                         Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<3>, Kokkos::IndexType<int>>(space, {0, 0, 0},
                                                                                                   {B, N, c}),
                         Impl::FlowLossGrad<T, M>{v_, tgt_, dv_, split, T(2.0 / count)});
    dit_backward(space, dv_, xt_, split, model_.params(), model_.grads(), cfg, p);
    DitStepStats st;
    st.grad_norm = optim::clip_grad_norm_readback(space, model_.arena().grads, opt_.clip);
    st.lr = sched_(step_);
    optim::adamw_step(space, model_.arena(), adam_, st.lr);
    optim::ema_update(space, ema_, model_.arena(), optim::ema_decay(opt_.ema, step_, true));
    Kokkos::deep_copy(space, h_v_, v_);
    space.fence();
    double loss = 0;
    for (int b = 0; b < B; ++b)
      for (int n = split; n < N; ++n)
        for (int ch = 0; ch < c; ++ch) {
          const double d = double(h_v_(b, n, ch)) - double(h_tgt_(b, n, ch));
          loss += d * d;
        }
    st.loss = loss / count;
    st.step = step_;
    st.split = split;
    ++step_;
    return st;
  }

  /// Runs to opt.steps (log lines every log_every steps, checkpoints every ckpt_every); on_step (if set)
  /// is called after every step with (steps done, opt.steps).
  void run(const ExecSpace& space, std::FILE* log = stdout,
           const std::function<void(std::int64_t, std::int64_t)>& on_step = {}) {
    ProgressRate rate(step_);
    double loss = 0;
    int cnt = 0;
    while (step_ < opt_.steps) {
      const DitStepStats st = step(space);
      loss += st.loss;
      ++cnt;
      if (step_ % opt_.log_every == 0 || step_ == opt_.steps) {
        const ProgressRate::Reading r = rate.tick(step_, opt_.steps);
        std::fprintf(log, "step %lld/%lld  loss %.5f  |g| %.3f  lr %.2e  %.1f samples/s  ETA %dm%02ds\n",
                     (long long)step_, (long long)opt_.steps, loss / cnt, st.grad_norm, st.lr,
                     r.steps_per_s * opt_.batch, int(r.eta_s) / 60, int(r.eta_s) % 60);
        std::fflush(log);
        loss = 0;
        cnt = 0;
      }
      if (opt_.ckpt_every > 0 && (step_ % opt_.ckpt_every == 0 || step_ == opt_.steps)) checkpoint();
      if (on_step) on_step(step_, opt_.steps);
    }
  }

  std::int64_t current_step() const { return step_; }
  Dit<ExecSpace, T>& model() { return model_; }
  const optim::ParamArena<T, M>& ema() const { return ema_; }

 private:
  DitTrainOptions opt_;
  const LatentSet& data_;
  Dit<ExecSpace, T> model_;
  optim::ParamArena<T, M> ema_;
  optim::AdamW adam_;
  optim::WarmupCosine sched_;
  View3<T, M> xt_, tgt_, v_, dv_;
  View1<T, M> t_;
  Kokkos::View<int*, M> labels_;
  typename View3<T, M>::HostMirror h_xt_, h_tgt_, h_v_;
  typename View1<T, M>::HostMirror h_t_;
  typename Kokkos::View<int*, M>::HostMirror h_labels_;
  std::vector<int> levels_;  // level of each token
  std::int64_t step_ = 0;
};

}  // namespace dcsldm::dit
