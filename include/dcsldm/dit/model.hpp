// dcsldm/dit/model.hpp: the Dit model: configuration, parameters (and optionally gradients and AdamW
// state) in one arena, per-(level, channel) latent statistics, and its plans:
//   dit.velocity(space, x_t, t, labels, levels, split, v);     // v (B, S, c) for the first `levels` levels
// Latents are normalised by the model's statistics before they enter the DiT (normalize / denormalize),
// so samplers work on unit-scale tokens whatever the tokenizer produced.
//
// Model files are safetensors with the configuration and the statistics in __metadata__ ("dit.*",
// "dcsldm.kind" = "dit"), written atomically.
#pragma once

#include <dcsldm/core/error.hpp>
#include <dcsldm/core/scratch.hpp>
#include <dcsldm/dit/config.hpp>
#include <dcsldm/dit/dit.hpp>
#include <dcsldm/dit/prefix_cache.hpp>
#include <dcsldm/dit/dit_params.hpp>
#include <dcsldm/io/safetensors.hpp>
#include <dcsldm/optim/param_arena.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace dcsldm::dit {

namespace Impl {
template <class ZV, class SV>
struct NormalizeLatent {
  ZV z;
  SV mean, inv_std;  // (N * c) per token and channel (expanded from the per-level statistics)
  bool inverse;
  KOKKOS_INLINE_FUNCTION void operator()(const int b, const int n, const int ch) const {
    const int i = n * int(z.extent(2)) + ch;
    z(b, n, ch) = inverse ? z(b, n, ch) / inv_std(i) + mean(i) : (z(b, n, ch) - mean(i)) * inv_std(i);
  }
};
inline std::string join(const std::vector<double>& v) {
  std::string s;
  char buf[40];
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%.9g", v[i]);
    s += (i ? "," : "") + std::string(buf);
  }
  return s;
}
inline std::vector<double> split_doubles(const std::string& s, const std::string& key, const std::string& source) {
  std::vector<double> v;
  std::stringstream ss(s);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    char* end = nullptr;
    const double x = std::strtod(tok.c_str(), &end);
    DCSLDM_REQUIRE(!tok.empty() && end && *end == '\0', "Dit::load", "'", source, "': metadata '", key, "' entry '",
                   tok, "' is not a number");
    v.push_back(x);
  }
  return v;
}
}  // namespace Impl

template <class ExecSpace, class T = float>
class Dit {
 public:
  using execution_space = ExecSpace;
  using memory_space = typename ExecSpace::memory_space;
  using M = memory_space;

  explicit Dit(const DitConfig& c, optim::ArenaState state = optim::ArenaState::Params)
      : cfg_((c.validate(), c)), arena_(dit_layout(c), state) {
    params_ = bind_dit(arena_, cfg_, arena_.params);
    if (arena_.has_optimizer_state()) grads_ = bind_dit(arena_, cfg_, arena_.grads);
    set_latent_stats(std::vector<double>(std::size_t(cfg_.levels() * cfg_.latent_channels), 0.0),
                     std::vector<double>(std::size_t(cfg_.levels() * cfg_.latent_channels), 1.0));
  }

  static Dit load(const std::string& path, optim::ArenaState state = optim::ArenaState::Params) {
    const io::SafeTensors f = io::SafeTensors::read(path);
    const auto& md = f.metadata();
    auto kind = md.find("dcsldm.kind");
    DCSLDM_REQUIRE(kind != md.end() && kind->second == "dit", "Dit::load", "'", path,
                   "' is not a dcsldm DiT (metadata 'dcsldm.kind' = '",
                   kind == md.end() ? std::string("<missing>") : kind->second, "')");
    Dit d(DitConfig::from_metadata(md, path), state);
    auto get = [&](const char* key) {
      auto it = md.find(key);
      DCSLDM_REQUIRE(it != md.end(), "Dit::load", "'", path, "' has no metadata '", key, "'");
      return Impl::split_doubles(it->second, key, path);
    };
    d.set_latent_stats(get("dit.latent_mean"), get("dit.latent_std"));
    optim::load_arena(f, d.arena_, optim::ArenaState::Params);
    return d;
  }

  void save(const std::string& path, optim::ArenaState state = optim::ArenaState::Params, std::int64_t step = 0,
            std::map<std::string, std::string> extra = {}) const {
    auto md = cfg_.to_metadata();
    md["dcsldm.kind"] = "dit";
    md["dit.latent_mean"] = Impl::join(mean_);
    md["dit.latent_std"] = Impl::join(std_);
    for (const auto& kv : extra) md[kv.first] = kv.second;
    optim::save_arena(path, arena_, state, step, md);
  }

  void init(const ExecSpace& space, std::uint64_t seed) { init_dit(space, arena_, seed); }

  /// Per-(level, channel) mean and std (L * c values each, level-major) used by normalize/denormalize.
  void set_latent_stats(const std::vector<double>& mean, const std::vector<double>& stdev) {
    const std::size_t n = std::size_t(cfg_.levels() * cfg_.latent_channels);
    DCSLDM_REQUIRE(mean.size() == n && stdev.size() == n, "Dit::set_latent_stats", "got ", mean.size(), " means and ",
                   stdev.size(), " stds, expected L * c = ", n);
    for (std::size_t i = 0; i < n; ++i)
      DCSLDM_REQUIRE(stdev[i] > 0 && std::isfinite(stdev[i]) && std::isfinite(mean[i]), "Dit::set_latent_stats",
                     "statistic ", i, ": mean ", mean[i], ", std ", stdev[i], " (std must be finite and > 0)");
    mean_ = mean;
    std_ = stdev;
    const std::size_t N = std::size_t(cfg_.latent_tokens()), c = std::size_t(cfg_.latent_channels);
    View1<T, M> m("dcsldm::dit_latent_mean", N * c), is("dcsldm::dit_latent_inv_std", N * c);
    auto hm = Kokkos::create_mirror_view(m);
    auto hs = Kokkos::create_mirror_view(is);
    std::size_t tok = 0;
    for (int l = 0; l < cfg_.levels(); ++l)
      for (int j = 0; j < cfg_.level_sizes[std::size_t(l)]; ++j, ++tok)
        for (std::size_t ch = 0; ch < c; ++ch) {
          hm(tok * c + ch) = T(mean[std::size_t(l) * c + ch]);
          hs(tok * c + ch) = T(1.0 / stdev[std::size_t(l) * c + ch]);
        }
    Kokkos::deep_copy(m, hm);
    Kokkos::deep_copy(is, hs);
    tok_mean_ = m;
    tok_inv_std_ = is;
  }
  const std::vector<double>& latent_mean() const { return mean_; }
  const std::vector<double>& latent_std() const { return std_; }

  /// z (B, S, c) tokenizer latent rows (S <= N, from token 0) -> normalised, in place.
  template <class ZV>
  void normalize(const ExecSpace& space, const ZV& z) const { apply_stats(space, z, false); }
  /// The inverse of normalize, in place.
  template <class ZV>
  void denormalize(const ExecSpace& space, const ZV& z) const { apply_stats(space, z, true); }

  const DitConfig& config() const { return cfg_; }
  const optim::ParamArena<T, M>& arena() const { return arena_; }
  optim::ParamArena<T, M>& arena() { return arena_; }
  const DitParams<T, M>& params() const { return params_; }
  const DitParams<T, M>& grads() const { return grads_; }
  std::size_t num_params() const { return arena_.layout.n_params(); }

  /// The plan of (batch, levels, train), built once per shape.
  const DitPlan<T, M>& plan(int batch, int levels, bool train = false) {
    const Key key{batch, levels, train};
    auto it = plans_.find(key);
    if (it == plans_.end() || it->second.second != scratch_.generation()) {
      auto p = make_dit_plan(cfg_, batch, levels, train, scratch_);
      it = plans_.insert_or_assign(key, std::make_pair(std::move(p), scratch_.generation())).first;
    }
    return it->second.first;
  }

  /// v = DiT(x_t, t, labels) for the first `levels` levels (the first `split` tokens held clean).
  template <class XV, class TV, class LV, class VV>
  void velocity(const ExecSpace& space, const XV& xt, const TV& t, const LV& labels, int levels, int split,
                const VV& v) {
    dit_forward(space, xt, t, labels, split, params_, cfg_, v, plan(int(xt.extent(0)), levels));
  }

  /// The finished-levels cache of (batch, levels, split), built once per shape (dit/prefix_cache.hpp);
  /// `split` must be the token count of a whole number of levels below `levels`.
  DitPrefixCache<T, M>& prefix_cache(int batch, int levels, int split) {
    const auto key = std::make_tuple(batch, levels, split);
    auto it = prefix_.find(key);
    if (it == prefix_.end()) it = prefix_.emplace(key, make_dit_prefix_cache(cfg_, params_, batch, levels, split)).first;
    return it->second;
  }
  /// Fills `cache` from the clean rows x0 (B, split, c) (normalised) and the batch's labels.
  template <class XV, class LV>
  void fill_prefix(const ExecSpace& space, const XV& x0, const LV& labels, DitPrefixCache<T, M>& cache) {
    int m = 0;
    while (m < cfg_.levels() && cfg_.tokens_upto(m) < cache.split) ++m;
    DCSLDM_REQUIRE(cfg_.tokens_upto(m) == cache.split, "Dit::fill_prefix", "split = ", cache.split,
                   " is not the token count of whole levels");
    dit_fill_prefix(space, x0, labels, params_, cfg_, plan(cache.batch, m), cache);
  }
  /// v (B, Tq, c) of the noisy rows xt (B, Tq, c) after fill_prefix (dit_forward_tail).
  template <class XV, class TV, class LV, class VV>
  void velocity_tail(const ExecSpace& space, const XV& xt, const TV& t, const LV& labels,
                     const DitPrefixCache<T, M>& cache, const VV& v) {
    dit_forward_tail(space, xt, t, labels, params_, cfg_, v, cache);
  }

 private:
  template <class ZV>
  void apply_stats(const ExecSpace& space, const ZV& z, bool inverse) const {
    DCSLDM_REQUIRE(z.extent(1) <= std::size_t(cfg_.latent_tokens()) && z.extent(2) == std::size_t(cfg_.latent_channels),
                   "Dit::normalize", "latent is (", z.extent(0), ", ", z.extent(1), ", ", z.extent(2),
                   "), expected (B, <= ", cfg_.latent_tokens(), ", ", cfg_.latent_channels, ")");
    if (z.size() == 0) return;
    Kokkos::parallel_for("dcsldm::dit_normalize",
                         Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<3>, Kokkos::IndexType<int>>(
                             space, {0, 0, 0}, {int(z.extent(0)), int(z.extent(1)), int(z.extent(2))}),
                         Impl::NormalizeLatent<ZV, View1<T, M>>{z, tok_mean_, tok_inv_std_, inverse});
  }

  using Key = std::tuple<int, int, bool>;
  DitConfig cfg_;
  optim::ParamArena<T, M> arena_;
  DitParams<T, M> params_, grads_;
  std::vector<double> mean_, std_;
  View1<T, M> tok_mean_, tok_inv_std_;
  Scratch<T, M> scratch_{"dcsldm::dit_scratch"};
  std::map<Key, std::pair<DitPlan<T, M>, std::size_t>> plans_;
  std::map<std::tuple<int, int, int>, DitPrefixCache<T, M>> prefix_;
};

}  // namespace dcsldm::dit
