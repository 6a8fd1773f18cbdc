// dcsldm/cls/trainer.hpp: supervised training of cls::Classifier on labelled images held on the host
// (mean cross-entropy, AdamW, warm-up + cosine, gradient clipping), with light augmentation: a random
// translation of up to `shift` pixels (zero fill) and, optionally, a horizontal flip. The randomness is
// drawn on the host from (seed, step): same seed, same backend -> the same weights, bit for bit.
#pragma once

#include <dcsldm/cls/classifier.hpp>
#include <dcsldm/core/progress.hpp>
#include <dcsldm/core/rng.hpp>
#include <dcsldm/optim/adamw.hpp>
#include <dcsldm/optim/clip_grad.hpp>
#include <dcsldm/optim/lr_schedule.hpp>

#include <cstdio>
#include <functional>
#include <random>
#include <vector>

namespace dcsldm::cls {

struct ClassifierTrainOptions {
  int batch = 128;
  std::int64_t steps = 2000;
  double lr = 2e-3, min_lr = 2e-5, weight_decay = 0.05, clip = 2.0;
  std::int64_t warmup = 100;
  int shift = 2;       ///< random translation in pixels, each axis, in [-shift, shift]
  bool flip = true;    ///< random horizontal flip
  std::uint64_t seed = 0;
  int log_every = 100;
};

/// Training images: n images (n, R, R, C) contiguous on the host, values in [0, 1], labels in [0, K).
struct LabelledSet {
  const float* images = nullptr;
  const int* labels = nullptr;
  std::int64_t n = 0;
};

template <class ExecSpace, class T = float>
class ClassifierTrainer {
 public:
  using M = typename ExecSpace::memory_space;

  /// `data` must outlive the trainer; every label is checked against the configuration.
  ClassifierTrainer(const ClassifierConfig& cfg, const ClassifierTrainOptions& opt, const LabelledSet& data)
      : opt_(opt), data_(data), model_(cfg, opt.batch, optim::ArenaState::ParamsAndOptimizer) {
    const char* op = "ClassifierTrainer";
    DCSLDM_REQUIRE(opt.batch >= 1 && opt.steps >= 1 && opt.shift >= 0, op, "batch = ", opt.batch, ", steps = ",
                   opt.steps, ", shift = ", opt.shift);
    DCSLDM_REQUIRE(data.n >= 1 && data.images && data.labels, op, "the training set is empty");
    for (std::int64_t i = 0; i < data.n; ++i)
      DCSLDM_REQUIRE(data.labels[i] >= 0 && data.labels[i] < cfg.num_classes, op, "sample ", i, " has label ",
                     data.labels[i], ", expected 0..", cfg.num_classes - 1);
    adam_.weight_decay = opt.weight_decay;
    sched_ = {opt.lr, opt.min_lr, opt.warmup, opt.steps};
    labels_ = Kokkos::View<int*, M>("dcsldm::cls_labels", std::size_t(opt.batch));
    h_labels_ = Kokkos::create_mirror_view(labels_);
    h_x_ = Kokkos::create_mirror_view(model_.input());
    loss_ = Kokkos::View<accum_t<T>, M>("dcsldm::cls_loss");
    h_loss_ = Kokkos::create_mirror_view(loss_);
  }

  void init(const ExecSpace& space) {
    model_.init(space, opt_.seed);
    step_ = 0;
  }

  /// One step; returns the batch's mean loss (reads it back: fences).
  double step(const ExecSpace& space) {
    const ClassifierConfig& c = model_.config();
    const int R = c.res, C = c.channels, B = opt_.batch;
    std::mt19937_64 g(rng::stream_of("cls_step") ^ (opt_.seed * 0x9E3779B97F4A7C15ull) ^ std::uint64_t(step_));
    std::uniform_int_distribution<std::int64_t> pick(0, data_.n - 1);
    std::uniform_int_distribution<int> sh(-opt_.shift, opt_.shift);
    std::bernoulli_distribution coin(0.5);
    const std::size_t per = std::size_t(R) * std::size_t(R) * std::size_t(C);
    for (int b = 0; b < B; ++b) {
      const std::int64_t i = pick(g);
      const int dy = sh(g), dx = sh(g);
      const bool fl = opt_.flip && coin(g);
      const float* src = data_.images + std::size_t(i) * per;
      for (int y = 0; y < R; ++y)
        for (int x = 0; x < R; ++x) {
          const int sy = y - dy, sx0 = x - dx, sx = fl ? R - 1 - sx0 : sx0;
          const bool in = sy >= 0 && sy < R && sx0 >= 0 && sx0 < R;
          for (int ch = 0; ch < C; ++ch)
            h_x_(b, y, x, ch) = in ? T(src[(std::size_t(sy) * std::size_t(R) + std::size_t(sx)) * std::size_t(C) +
                                           std::size_t(ch)])
                                   : T(0);
        }
      h_labels_(b) = data_.labels[i];
    }
    Kokkos::deep_copy(space, model_.input(), h_x_);
    Kokkos::deep_copy(space, labels_, h_labels_);
    optim::zero_grad(space, model_.arena());
    model_.forward(space);
    model_.loss(space, labels_, loss_);
    model_.backward(space);
    optim::clip_grad_norm_readback(space, model_.arena().grads, opt_.clip);
    optim::adamw_step(space, model_.arena(), adam_, sched_(step_));
    Kokkos::deep_copy(space, h_loss_, loss_);
    space.fence();
    ++step_;
    return double(h_loss_());
  }

  /// Runs to opt.steps (log lines every log_every steps); on_step (if set) is called after every step with
  /// (steps done, opt.steps).
  void run(const ExecSpace& space, std::FILE* log = stdout,
           const std::function<void(std::int64_t, std::int64_t)>& on_step = {}) {
    ProgressRate rate(step_);
    double acc = 0;
    int cnt = 0;
    while (step_ < opt_.steps) {
      acc += step(space);
      ++cnt;
      if (log && (step_ % opt_.log_every == 0 || step_ == opt_.steps)) {
        const ProgressRate::Reading r = rate.tick(step_, opt_.steps);
        std::fprintf(log, "step %lld/%lld  loss %.4f  lr %.2e  %.0f samples/s  ETA %dm%02ds\n", (long long)step_,
                     (long long)opt_.steps, acc / cnt, sched_(step_ < opt_.steps ? step_ : opt_.steps - 1),
                     r.steps_per_s * opt_.batch, int(r.eta_s) / 60, int(r.eta_s) % 60);
        std::fflush(log);
        acc = 0;
        cnt = 0;
      }
      if (on_step) on_step(step_, opt_.steps);
    }
  }

  Classifier<ExecSpace, T>& model() { return model_; }
  std::int64_t current_step() const { return step_; }

 private:
  ClassifierTrainOptions opt_;
  LabelledSet data_;
  Classifier<ExecSpace, T> model_;
  optim::AdamW adam_;
  optim::WarmupCosine sched_;
  Kokkos::View<int*, M> labels_;
  typename Kokkos::View<int*, M>::HostMirror h_labels_;
  typename View4<T, M>::HostMirror h_x_;
  Kokkos::View<accum_t<T>, M> loss_;
  typename Kokkos::View<accum_t<T>, M>::HostMirror h_loss_;
  std::int64_t step_ = 0;
};

/// Accuracy (fraction correct) of `model` on n host images with labels; fences.
template <class ExecSpace, class T>
double classifier_accuracy(const ExecSpace& space, Classifier<ExecSpace, T>& model, const float* images,
                           const int* labels, std::int64_t n) {
  std::vector<int> pred(std::size_t(n > 0 ? n : 0));
  model.predict(space, images, n, pred.data());
  std::int64_t ok = 0;
  for (std::int64_t i = 0; i < n; ++i) ok += pred[std::size_t(i)] == labels[i];
  return n > 0 ? double(ok) / double(n) : 0.0;
}

}  // namespace dcsldm::cls
