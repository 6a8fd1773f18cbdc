// dcsldm/cls/classifier.hpp: the small convolutional image classifier the library trains to measure
// generated samples (class accuracy, Fréchet distance on its features):
//
//   x (B, R, R, C) -> conv3x3(C -> c1) -> GELU -> avgpool2 -> conv3x3(c1 -> c2) -> GELU -> avgpool2
//     -> flatten (R/4 * R/4 * c2) -> Linear(hidden) -> GELU = features (B, hidden) -> Linear(K) = logits
//
// Images are channels-last with values in [0, 1]. The parameters live in one arena ("cls.*" names), the
// configuration in the file's metadata ("cls.*", "dcsldm.kind" = "classifier").
#pragma once

#include <dcsldm/core/error.hpp>
#include <dcsldm/core/types.hpp>
#include <dcsldm/io/safetensors.hpp>
#include <dcsldm/nn/activations.hpp>
#include <dcsldm/nn/avg_pool.hpp>
#include <dcsldm/nn/conv2d.hpp>
#include <dcsldm/nn/cross_entropy.hpp>
#include <dcsldm/nn/linear.hpp>
#include <dcsldm/optim/param_arena.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

namespace dcsldm::cls {

struct ClassifierConfig {
  int res = 28, channels = 1;
  int conv1 = 32, conv2 = 64, hidden = 128;
  int num_classes = 10;
  int flat() const { return (res / 4) * (res / 4) * conv2; }
  void validate() const {
    const char* op = "ClassifierConfig";
    DCSLDM_REQUIRE(res >= 4 && res % 4 == 0, op, "res = ", res, " must be a positive multiple of 4");
    DCSLDM_REQUIRE(channels >= 1 && conv1 >= 1 && conv2 >= 1 && hidden >= 1 && num_classes >= 2, op,
                   "channels = ", channels, ", conv1 = ", conv1, ", conv2 = ", conv2, ", hidden = ", hidden,
                   ", num_classes = ", num_classes, " (need >= 1, classes >= 2)");
  }
  std::map<std::string, std::string> to_metadata() const {
    return {{"cls.res", std::to_string(res)},         {"cls.channels", std::to_string(channels)},
            {"cls.conv1", std::to_string(conv1)},     {"cls.conv2", std::to_string(conv2)},
            {"cls.hidden", std::to_string(hidden)},   {"cls.num_classes", std::to_string(num_classes)},
            {"dcsldm.kind", "classifier"}};
  }
  static ClassifierConfig from_metadata(const std::map<std::string, std::string>& m, const std::string& src) {
    auto get = [&](const char* k) {
      auto it = m.find(k);
      DCSLDM_REQUIRE(it != m.end(), "ClassifierConfig::from_metadata", "'", src, "' has no metadata '", k, "'");
      char* end = nullptr;
      const long v = std::strtol(it->second.c_str(), &end, 10);
      DCSLDM_REQUIRE(end && *end == '\0' && !it->second.empty(), "ClassifierConfig::from_metadata", "'", src, "': '",
                     k, "' = '", it->second, "' is not an integer");
      return int(v);
    };
    ClassifierConfig c;
    c.res = get("cls.res");
    c.channels = get("cls.channels");
    c.conv1 = get("cls.conv1");
    c.conv2 = get("cls.conv2");
    c.hidden = get("cls.hidden");
    c.num_classes = get("cls.num_classes");
    c.validate();
    return c;
  }
};

template <class T, class M>
struct ClassifierParams {
  nn::Conv2d<T, M> conv1, conv2;
  nn::Linear<T, M> fc, head;
};

inline optim::ParamLayout classifier_layout(const ClassifierConfig& c) {
  c.validate();
  optim::ParamLayout l;
  auto lin = [&](const std::string& n, int out, int in) {
    l.add(n + ".weight", {out, in}, optim::Decay::Yes);
    l.add(n + ".bias", {out}, optim::Decay::No);
  };
  lin("cls.conv1", c.conv1, 9 * c.channels);
  lin("cls.conv2", c.conv2, 9 * c.conv1);
  lin("cls.fc", c.hidden, c.flat());
  lin("cls.head", c.num_classes, c.hidden);
  l.finalize();
  return l;
}

template <class T, class M>
ClassifierParams<T, M> bind_classifier(const optim::ParamArena<T, M>& a, const View1<T, M>& buf) {
  auto lin = [&](const std::string& n) {
    return nn::Linear<T, M>{a.view2(a.layout.slot(n + ".weight"), buf), a.view1(a.layout.slot(n + ".bias"), buf)};
  };
  ClassifierParams<T, M> p;
  p.conv1 = {lin("cls.conv1"), 3};
  p.conv2 = {lin("cls.conv2"), 3};
  p.fc = lin("cls.fc");
  p.head = lin("cls.head");
  return p;
}

/// The classifier at a fixed batch size: forward to logits and features, backward of the mean
/// cross-entropy. Workspaces are allocated once, in the constructor.
template <class ExecSpace, class T = float>
class Classifier {
 public:
  using M = typename ExecSpace::memory_space;

  Classifier(const ClassifierConfig& c, int batch, optim::ArenaState st = optim::ArenaState::Params)
      : cfg_((c.validate(), c)), arena_(classifier_layout(c), st), B_(batch) {
    DCSLDM_REQUIRE(batch >= 1, "Classifier", "batch = ", batch, " must be >= 1");
    p_ = bind_classifier(arena_, arena_.params);
    const std::size_t B = std::size_t(batch), R = std::size_t(c.res), R2 = R / 2, R4 = R / 4;
    const std::size_t C = std::size_t(c.channels), c1 = std::size_t(c.conv1), c2 = std::size_t(c.conv2);
    x_ = View4<T, M>("dcsldm::cls_x", B, R, R, C);
    cols1_ = View2<T, M>("dcsldm::cls_cols1", B * R * R, 9 * C);
    h1_ = View4<T, M>("dcsldm::cls_h1", B, R, R, c1);
    a1_ = View4<T, M>("dcsldm::cls_a1", B, R, R, c1);
    p1_ = View4<T, M>("dcsldm::cls_p1", B, R2, R2, c1);
    cols2_ = View2<T, M>("dcsldm::cls_cols2", B * R2 * R2, 9 * c1);
    h2_ = View4<T, M>("dcsldm::cls_h2", B, R2, R2, c2);
    a2_ = View4<T, M>("dcsldm::cls_a2", B, R2, R2, c2);
    p2_ = View4<T, M>("dcsldm::cls_p2", B, R4, R4, c2);
    h3_ = View2<T, M>("dcsldm::cls_h3", B, std::size_t(c.hidden));
    feat_ = View2<T, M>("dcsldm::cls_features", B, std::size_t(c.hidden));
    logits_ = View2<T, M>("dcsldm::cls_logits", B, std::size_t(c.num_classes));
    if (arena_.has_optimizer_state()) {
      g_ = bind_classifier(arena_, arena_.grads);
      dlogits_ = View2<T, M>("dcsldm::cls_dlogits", B, std::size_t(c.num_classes));
      dfeat_ = View2<T, M>("dcsldm::cls_dfeat", B, std::size_t(c.hidden));
      dp2_ = View4<T, M>("dcsldm::cls_dp2", B, R4, R4, c2);
      da2_ = View4<T, M>("dcsldm::cls_da2", B, R2, R2, c2);
      dcols2_ = View2<T, M>("dcsldm::cls_dcols2", B * R2 * R2, 9 * c1);
      dp1_ = View4<T, M>("dcsldm::cls_dp1", B, R2, R2, c1);
      da1_ = View4<T, M>("dcsldm::cls_da1", B, R, R, c1);
    }
  }

  static Classifier load(const std::string& path, int batch) {
    const io::SafeTensors f = io::SafeTensors::read(path);
    auto k = f.metadata().find("dcsldm.kind");
    DCSLDM_REQUIRE(k != f.metadata().end() && k->second == "classifier", "Classifier::load", "'", path,
                   "' is not a dcsldm classifier file (dcsldm.kind = '",
                   k == f.metadata().end() ? std::string("<none>") : k->second, "')");
    Classifier m(ClassifierConfig::from_metadata(f.metadata(), path), batch);
    optim::load_arena(f, m.arena_, optim::ArenaState::Params);
    return m;
  }
  /// Writes the parameters (atomically, through save_arena) with the configuration and `extra` metadata.
  void save(const std::string& path, std::map<std::string, std::string> extra = {}) const {
    optim::ParamArena<T, M> out(arena_.layout, optim::ArenaState::Params);
    Kokkos::deep_copy(out.params, arena_.params);
    auto md = cfg_.to_metadata();
    for (auto& kv : extra) md[kv.first] = kv.second;
    optim::save_arena(path, out, optim::ArenaState::Params, 0, md);
  }
  /// He-normal weights (std sqrt(2 / fan_in)), zero biases; the head gets std 1 / sqrt(fan_in).
  void init(const ExecSpace& space, std::uint64_t seed) {
    for (const auto& s : arena_.layout.slots()) {
      if (s.shape.size() == 1) {
        optim::init_zeros(space, arena_, s);
      } else {
        const double fan_in = double(s.shape[1]);
        const double gain = s.name == "cls.head.weight" ? 1.0 : 2.0;
        optim::init_normal(space, arena_, s, seed, 0.0, std::sqrt(gain / fan_in));
      }
    }
  }

  const ClassifierConfig& config() const { return cfg_; }
  optim::ParamArena<T, M>& arena() { return arena_; }
  const optim::ParamArena<T, M>& arena() const { return arena_; }
  int batch() const { return B_; }
  std::size_t num_params() const { return arena_.layout.n_params(); }

  /// The input buffer (B, R, R, C): fill it, then call forward().
  const View4<T, M>& input() const { return x_; }
  const View2<T, M>& logits() const { return logits_; }      ///< (B, K) after forward()
  const View2<T, M>& features() const { return feat_; }      ///< (B, hidden) after forward()
  const View2<T, M>& dlogits() const { return dlogits_; }    ///< (B, K): backward() reads it

  /// Forward of input() to logits() and features().
  void forward(const ExecSpace& space) {
    using nn::Impl::pixel_rows;
    const auto gk = nn::GeluKind::Erf;
    nn::conv2d_forward(space, x_, p_.conv1, h1_, cols1_);
    nn::gelu_forward(space, pixel_rows(h1_), gk, pixel_rows(a1_));
    nn::avg_pool2_forward(space, a1_, p1_);
    nn::conv2d_forward(space, p1_, p_.conv2, h2_, cols2_);
    nn::gelu_forward(space, pixel_rows(h2_), gk, pixel_rows(a2_));
    nn::avg_pool2_forward(space, a2_, p2_);
    nn::linear_forward(space, flat(p2_), p_.fc, h3_);
    nn::gelu_forward(space, h3_, gk, feat_);
    nn::linear_forward(space, feat_, p_.head, logits_);
  }

  /// Mean cross-entropy of logits() against `labels` (B) into `loss` (rank 0), and dlogits() for backward().
  template <class LV, class OV>
  void loss(const ExecSpace& space, const LV& labels, const OV& loss_out) {
    nn::cross_entropy_forward(space, logits_, labels, loss_out);
    nn::cross_entropy_backward(space, 1.0, logits_, labels, dlogits_);
  }

  /// Backward from dlogits() (B, K) after forward(): parameter gradients accumulate (+=) in the arena.
  void backward(const ExecSpace& space) {
    DCSLDM_REQUIRE(arena_.has_optimizer_state(), "Classifier::backward",
                   "the classifier was made without gradient buffers (ArenaState::Params)");
    using nn::Impl::pixel_rows;
    const auto gk = nn::GeluKind::Erf;
    nn::linear_backward(space, dlogits_, feat_, p_.head, g_.head, dfeat_);
    nn::gelu_backward(space, dfeat_, h3_, gk, dfeat_);
    nn::linear_backward(space, dfeat_, flat(p2_), p_.fc, g_.fc, flat(dp2_));
    nn::avg_pool2_backward(space, dp2_, da2_);
    nn::gelu_backward(space, pixel_rows(da2_), pixel_rows(h2_), gk, pixel_rows(da2_));
    nn::conv2d_backward(space, da2_, cols2_, p_.conv2, g_.conv2, dp1_, dcols2_);
    nn::avg_pool2_backward(space, dp1_, da1_);
    nn::gelu_backward(space, pixel_rows(da1_), pixel_rows(h1_), gk, pixel_rows(da1_));
    nn::conv2d_backward(space, da1_, cols1_, p_.conv1, g_.conv1, View4<T, M>(), View2<T, M>());
  }

  /// Classifies n host images (n, R, R, C) contiguous in batches of B (the last one padded with zeros):
  /// writes the predicted class of each into `pred` (n) and, if `features` is not null, its features
  /// (n, hidden). Copies to and from the device and fences (an evaluation routine, not a hot path).
  void predict(const ExecSpace& space, const float* images, std::int64_t n, int* pred, float* features = nullptr) {
    const std::size_t per = std::size_t(cfg_.res) * std::size_t(cfg_.res) * std::size_t(cfg_.channels);
    const int K = cfg_.num_classes, F = cfg_.hidden;
    auto hx = Kokkos::create_mirror_view(x_);
    auto hl = Kokkos::create_mirror_view(logits_);
    auto hf = Kokkos::create_mirror_view(feat_);
    for (std::int64_t s = 0; s < n; s += B_) {
      const std::int64_t m = std::min<std::int64_t>(B_, n - s);
      for (std::int64_t b = 0; b < B_; ++b)
        for (std::size_t i = 0; i < per; ++i)
          hx.data()[std::size_t(b) * per + i] = b < m ? T(images[std::size_t(s + b) * per + i]) : T(0);
      Kokkos::deep_copy(space, x_, hx);
      forward(space);
      Kokkos::deep_copy(space, hl, logits_);
      if (features) Kokkos::deep_copy(space, hf, feat_);
      space.fence();
      for (std::int64_t b = 0; b < m; ++b) {
        int best = 0;
        for (int j = 1; j < K; ++j)
          if (hl(b, j) > hl(b, best)) best = j;
        pred[s + b] = best;
        if (features)
          for (int j = 0; j < F; ++j) features[std::size_t(s + b) * std::size_t(F) + std::size_t(j)] = float(hf(b, j));
      }
    }
  }

 private:
  using Flat = Kokkos::View<T**, Kokkos::LayoutRight, M, Kokkos::MemoryUnmanaged>;
  static Flat flat(const View4<T, M>& v) {  // (B, h, w, c) -> (B, h*w*c), same memory
    return Flat(v.data(), v.extent(0), v.extent(1) * v.extent(2) * v.extent(3));
  }

  ClassifierConfig cfg_;
  optim::ParamArena<T, M> arena_;
  int B_;
  ClassifierParams<T, M> p_, g_;
  View4<T, M> x_, h1_, a1_, p1_, h2_, a2_, p2_, dp2_, da2_, dp1_, da1_;
  View2<T, M> cols1_, cols2_, dcols2_, h3_, feat_, logits_, dlogits_, dfeat_;
};

}  // namespace dcsldm::cls
