// dcsldm/dit/sampler.hpp: sampling a DCS-DiT: time grids (the schedule) and integrators (the sampler)
// chosen separately, classifier-free guidance, joint, progressive (coarse-to-fine) and staged generation.
//
// Rectified flow: x_t = (1 - t) x_0 + t eps, v = eps - x_0, dx/dt = v; sampling integrates from t = 1 (noise)
// to t = 0. The data prediction is D = x_t - t v.
//   schedule: time_grid(steps, shift) = 1 = t_0 > t_1 > ... > t_steps = 0, uniform in u then shifted,
//             t = shift u / (1 + (shift - 1) u) (shift > 1 spends more steps at high noise); or any custom grid.
//   integrators: Euler (1 evaluation per step); Heun (2, Euler on the last step); DPM-Solver++(2M) in the
//             flow parameterisation alpha = 1 - t, sigma = t, lambda = log(alpha / sigma):
//             x_{i+1} = (sigma_{i+1} / sigma_i) x_i + alpha_{i+1} (1 - e^{-h}) D,  h = lambda_{i+1} - lambda_i,
//             D = (1 + 1/(2r)) D_i - 1/(2r) D_{i-1}, r = h_{i-1} / h (first order on the first and last step).
//   guidance: v = v_null + cfg (v_label - v_null), one DiT call on a doubled batch.
// Generation modes: joint (levels 1..m noisy together) and progressive (level 1 first; then each next
// level with the finished ones held clean, the DiT's clean-prefix condition; a callback sees each level's
// latent and may stop); staged generation sits between them (stages of several levels, each generated together with
// the earlier stages held clean). All randomness is the Philox stream (seed, level): same seed, same samples.
// Work happens in buffers made once per (batch, levels) (no allocation per step).
#pragma once

#include <dcsldm/core/error.hpp>
#include <dcsldm/core/rng.hpp>
#include <dcsldm/dit/model.hpp>
#include <dcsldm/tok/sequence_ops.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace dcsldm::dit {

enum class Integrator { Euler, Heun, DpmSolver2M };

inline const char* integrator_name(Integrator i) {
  switch (i) {
    case Integrator::Euler:
      return "euler";
    case Integrator::Heun:
      return "heun";
    case Integrator::DpmSolver2M:
      return "dpm++2m";
  }
  return "?";
}
inline Integrator integrator_from_name(const std::string& s) {
  for (Integrator i : {Integrator::Euler, Integrator::Heun, Integrator::DpmSolver2M})
    if (s == integrator_name(i)) return i;
  detail::fail("integrator_from_name", "unknown sampler '", s, "' (expected euler, heun or dpm++2m)");
}

/// steps + 1 times from 1 down to 0, uniform then shifted: t = shift u / (1 + (shift - 1) u).
inline std::vector<double> time_grid(int steps, double shift = 1.0) {
  DCSLDM_REQUIRE(steps >= 1, "time_grid", "steps = ", steps, " must be >= 1");
  DCSLDM_REQUIRE(shift > 0 && std::isfinite(shift), "time_grid", "shift = ", shift, " must be > 0");
  std::vector<double> g(std::size_t(steps) + 1);
  for (int i = 0; i <= steps; ++i) {
    const double u = 1.0 - double(i) / double(steps);
    g[std::size_t(i)] = shift * u / (1.0 + (shift - 1.0) * u);
  }
  g.front() = 1.0;
  g.back() = 0.0;
  return g;
}

/// Checks a custom grid: starts at 1, ends at 0, strictly decreasing.
inline void check_time_grid(const std::vector<double>& g) {
  DCSLDM_REQUIRE(g.size() >= 2, "time grid", "needs at least 2 times, got ", g.size());
  DCSLDM_REQUIRE(g.front() == 1.0 && g.back() == 0.0, "time grid", "must start at 1 and end at 0 (got ", g.front(),
                 " ... ", g.back(), ")");
  for (std::size_t i = 1; i < g.size(); ++i)
    DCSLDM_REQUIRE(g[i] < g[i - 1], "time grid", "not strictly decreasing at index ", i, " (", g[i - 1], " -> ", g[i],
                   ")");
}

struct SampleOptions {
  int steps = 50;
  Integrator integrator = Integrator::Euler;
  double shift = 1.0;
  std::vector<double> grid;  ///< custom time grid (overrides steps/shift) when not empty
  double cfg = 1.0;          ///< guidance scale (1: no guidance; only with a class-conditional model)
  std::uint64_t seed = 0;
  /// Called after every integration step with (level being generated, step done, steps of the level);
  /// return false to cancel. No fence is implied: the step's kernels may still be running.
  std::function<bool(int level, int step, int steps)> on_step;
  /// Progressive and staged modes: compute the finished levels once per stage (dit/prefix_cache.hpp) instead of at
  /// every step. Same result up to rounding; false runs the full sequence every step (the reference).
  bool prefix_cache = true;
  std::vector<double> times() const {
    if (grid.empty()) return time_grid(steps, shift);
    check_time_grid(grid);
    return grid;
  }
};

namespace Impl {
template <class V>
struct EulerRows {  // x = x + dt v on rows [split, S)
  V x, v;
  int split;
  value_t<V> dt;
  KOKKOS_INLINE_FUNCTION void operator()(const int b, const int n, const int c) const {
    if (n >= split) x(b, n, c) += dt * v(b, n, c);
  }
};
template <class V>
struct AxpyRows {  // y = x + dt v on rows [split, S), y = x elsewhere
  V y, x, v;
  int split;
  value_t<V> dt;
  KOKKOS_INLINE_FUNCTION void operator()(const int b, const int n, const int c) const {
    y(b, n, c) = n >= split ? x(b, n, c) + dt * v(b, n, c) : x(b, n, c);
  }
};
template <class V>
struct HeunRows {  // x = x + dt (v1 + v2) / 2
  V x, v1, v2;
  int split;
  value_t<V> dt;
  KOKKOS_INLINE_FUNCTION void operator()(const int b, const int n, const int c) const {
    if (n >= split) x(b, n, c) += dt * value_t<V>(0.5) * (v1(b, n, c) + v2(b, n, c));
  }
};
template <class V>
struct DpmRows {  // D_i = x - t v; D = w1 D_i + w2 D_prev; D_prev = D_i; x = cx x + cd D
  V x, v, dprev;
  int split;
  value_t<V> t, w1, w2, cx, cd;
  KOKKOS_INLINE_FUNCTION void operator()(const int b, const int n, const int c) const {
    if (n < split) return;
    const auto d = x(b, n, c) - t * v(b, n, c);
    const auto dd = w1 * d + w2 * dprev(b, n, c);
    dprev(b, n, c) = d;
    x(b, n, c) = cx * x(b, n, c) + cd * dd;
  }
};
template <class V, class V2>
struct DupRows {  // x2 = [x ; x]
  V x;
  V2 x2;
  int B;
  KOKKOS_INLINE_FUNCTION void operator()(const int b, const int n, const int c) const {
    x2(b, n, c) = x(b, n, c);
    x2(b + B, n, c) = x(b, n, c);
  }
};
template <class V, class V2>
struct GuideRows {  // v = vn + s (vl - vn) with vl = v2[:B], vn = v2[B:]
  V2 v2;
  V v;
  int B;
  value_t<V> s;
  KOKKOS_INLINE_FUNCTION void operator()(const int b, const int n, const int c) const {
    const auto vn = v2(b + B, n, c);
    v(b, n, c) = vn + s * (v2(b, n, c) - vn);
  }
};
}  // namespace Impl

/// Samples latents with a DiT. Holds its buffers per (batch, levels); reuse one sampler across calls.
template <class ExecSpace, class T = float>
class FlowSampler {
 public:
  using M = typename ExecSpace::memory_space;
  using Latent = View3<T, M>;
  /// Called after each level of progressive generation (each stage of staged generation: its last level) with the
  /// level and the (denormalised) latent of every level so far (rows of later levels are 0). Return false to stop.
  using LevelCallback = std::function<bool(int level, const Latent& z)>;

  /// Joint generation of levels 1..m: z (B, N, c) receives the denormalised latent (rows of levels > m = 0).
  /// labels: B class labels (num_classes = null), ignored for an unconditional model. Returns false when
  /// opt.on_step cancelled (z is then left as it was).
  bool joint(const ExecSpace& space, Dit<ExecSpace, T>& dit, const std::vector<int>& labels, int levels,
             const SampleOptions& opt, const Latent& z) {
    Bufs& b = prepare(space, dit, labels, levels, z);
    fill_noise(space, b, opt.seed, 1, 0);  // stream of level 1: joint m = 1 equals progressive's first level
    if (!integrate(space, dit, b, levels, 0, opt)) return false;
    finish(space, dit, b, levels, z);
    return true;
  }

  /// Progressive generation: level 1, then 2 with level 1 clean, ... up to `levels`; returns the number of
  /// levels completed (fewer when the callback or opt.on_step stopped). staged() with stages 1, 2, .., levels.
  int progressive(const ExecSpace& space, Dit<ExecSpace, T>& dit, const std::vector<int>& labels, int levels,
                  const SampleOptions& opt, const Latent& z, const LevelCallback& cb = {}) {
    std::vector<int> stages;
    for (int l = 1; l <= levels; ++l) stages.push_back(l);
    return staged(space, dit, labels, stages, opt, z, cb);
  }

  /// Generation in stages between joint and progressive: `stages` are strictly increasing last levels, e.g.
  /// {1, 4}: level 1 alone, then levels 2..4 together with level 1 held clean. Each stage integrates the whole time
  /// grid over its levels (the finished levels' work cached with opt.prefix_cache) and calls `cb` with its last
  /// level. {m} is joint(m) and {1, 2, .., m} progressive(m), bit for bit: a stage that starts at level l draws the
  /// noise of its rows from level l's stream. Returns the last level completed (0 when stopped in the first stage).
  int staged(const ExecSpace& space, Dit<ExecSpace, T>& dit, const std::vector<int>& labels,
             const std::vector<int>& stages, const SampleOptions& opt, const Latent& z, const LevelCallback& cb = {}) {
    const auto& cfg = dit.config();
    DCSLDM_REQUIRE(!stages.empty(), "FlowSampler::staged", "no stages (expected last levels such as 1,4)");
    for (std::size_t i = 0; i < stages.size(); ++i)
      DCSLDM_REQUIRE(stages[i] >= 1 && stages[i] <= cfg.levels() && (i == 0 || stages[i] > stages[i - 1]),
                     "FlowSampler::staged", "stage ", i + 1, " ends at level ", stages[i],
                     ": stages must be strictly increasing levels in 1..", cfg.levels());
    Bufs& b = prepare(space, dit, labels, stages.back(), z);
    Kokkos::deep_copy(space, b.x, T(0));
    int done = 0;
    for (int l : stages) {
      const int split = cfg.tokens_upto(done);
      fill_noise(space, b, opt.seed, std::uint64_t(done + 1), split);
      tail_ = nullptr;
      if (split > 0 && opt.prefix_cache) tail_ = &prepare_tail(space, dit, b, l, split, opt.cfg);
      const bool ok = integrate(space, dit, b, l, split, opt);
      tail_ = nullptr;
      if (!ok) return done;
      finish(space, dit, b, l, z);
      done = l;
      if (cb && !cb(l, z)) return l;
    }
    return done;
  }

  /// DiT evaluations of the last call (a guided evaluation counts once).
  int evaluations() const { return evals_; }

 private:
  struct Bufs {
    int B = 0;
    Latent x, v, v1, xp, dprev, x2, v2;
    View1<T, M> t, t2;
    Kokkos::View<int*, M> labels, labels2;
    bool guided_ready = false;
  };

  Bufs& prepare(const ExecSpace& space, Dit<ExecSpace, T>& dit, const std::vector<int>& labels, int levels,
                const Latent& z) {
    const auto& cfg = dit.config();
    const char* op = "FlowSampler";
    const int B = int(labels.size());
    DCSLDM_REQUIRE(B >= 1, op, "no labels: the batch size is the number of labels");
    DCSLDM_REQUIRE(levels >= 1 && levels <= cfg.levels(), op, "levels = ", levels, ", expected 1..", cfg.levels());
    DCSLDM_REQUIRE(z.extent(0) == std::size_t(B) && z.extent(1) == std::size_t(cfg.latent_tokens()) &&
                       z.extent(2) == std::size_t(cfg.latent_channels),
                   op, "z is (", z.extent(0), ", ", z.extent(1), ", ", z.extent(2), "), expected (", B, ", ",
                   cfg.latent_tokens(), ", ", cfg.latent_channels, ")");
    for (int y : labels)
      DCSLDM_REQUIRE(cfg.num_classes == 0 || (y >= 0 && y <= cfg.num_classes), op, "class ", y, " out of range 0..",
                     cfg.num_classes - 1, " (", cfg.num_classes, " = unconditional)");
    auto it = bufs_.find(B);
    if (it == bufs_.end()) {
      const std::size_t N = std::size_t(cfg.latent_tokens()), c = std::size_t(cfg.latent_channels), b = std::size_t(B);
      Bufs nb;
      nb.B = B;
      nb.x = Latent("dcsldm::sampler_x", b, N, c);
      nb.v = Latent("dcsldm::sampler_v", b, N, c);
      nb.v1 = Latent("dcsldm::sampler_v1", b, N, c);
      nb.xp = Latent("dcsldm::sampler_xp", b, N, c);
      nb.dprev = Latent("dcsldm::sampler_dprev", b, N, c);
      nb.t = View1<T, M>("dcsldm::sampler_t", b);
      nb.labels = Kokkos::View<int*, M>("dcsldm::sampler_labels", b);
      it = bufs_.emplace(B, nb).first;
    }
    Bufs& bf = it->second;
    auto hl = Kokkos::create_mirror_view(bf.labels);
    for (int i = 0; i < B; ++i) hl(i) = cfg.num_classes > 0 ? labels[std::size_t(i)] : 0;
    Kokkos::deep_copy(space, bf.labels, hl);
    evals_ = 0;
    return bf;
  }

  void ensure_guided(const ExecSpace& space, const DitConfig& cfg, Bufs& b) {
    if (b.guided_ready) return;
    const std::size_t N = std::size_t(cfg.latent_tokens()), c = std::size_t(cfg.latent_channels),
                      B2 = 2 * std::size_t(b.B);
    b.x2 = Latent("dcsldm::sampler_x2", B2, N, c);
    b.v2 = Latent("dcsldm::sampler_v2", B2, N, c);
    b.t2 = View1<T, M>("dcsldm::sampler_t2", B2);
    b.labels2 = Kokkos::View<int*, M>("dcsldm::sampler_labels2", B2);
    b.guided_ready = true;
    (void)space;
  }

  /// Rows [split, N) of x = N(0, 1) from Philox (seed, level); rows below split are kept.
  void fill_noise(const ExecSpace& space, Bufs& b, std::uint64_t seed, std::uint64_t level, int split) {
    rng::fill_normal(space, b.xp, seed, rng::stream_of("dit_sample") + level, 0.0, 1.0);
    const int N = int(b.x.extent(1));
    tok::copy_row_block(space, b.xp, split, b.x, split, N - split);
  }

  /// Buffers of the cached path for one (batch, levels, split): the prefix cache of the (possibly doubled)
  /// batch, its clean rows, the noisy rows in and the velocity out.
  struct Tail {
    DitPrefixCache<T, M>* cache = nullptr;
    bool guided = false;
    Latent x0, xt, vt;               // (B', split, c), (B', Tq, c) x2, B' = B or 2B
    View1<T, M> t;                   // (B')
    Kokkos::View<int*, M> labels;    // (B')
  };

  Tail& prepare_tail(const ExecSpace& space, Dit<ExecSpace, T>& dit, Bufs& b, int levels, int split, double cfg_scale) {
    const auto& cfg = dit.config();
    const bool guided = cfg_scale != 1.0 && cfg.num_classes > 0;
    const int B = b.B, Bp = guided ? 2 * B : B, S = cfg.tokens_upto(levels), Tq = S - split;
    const std::size_t c = std::size_t(cfg.latent_channels);
    auto key = std::make_tuple(Bp, levels, split);
    auto it = tails_.find(key);
    if (it == tails_.end()) {
      Tail nt;
      nt.guided = guided;
      nt.x0 = Latent("dcsldm::sampler_prefix_x0", std::size_t(Bp), std::size_t(split), c);
      nt.xt = Latent("dcsldm::sampler_tail_x", std::size_t(Bp), std::size_t(Tq), c);
      nt.vt = Latent("dcsldm::sampler_tail_v", std::size_t(Bp), std::size_t(Tq), c);
      nt.t = View1<T, M>("dcsldm::sampler_tail_t", std::size_t(Bp));
      nt.labels = Kokkos::View<int*, M>("dcsldm::sampler_tail_labels", std::size_t(Bp));
      it = tails_.emplace(key, nt).first;
    }
    Tail& tl = it->second;
    tl.cache = &dit.prefix_cache(Bp, levels, split);
    const auto xs = Kokkos::subview(b.x, Kokkos::ALL, std::make_pair(0, split), Kokkos::ALL);
    if (guided) {
      Kokkos::parallel_for("dcsldm::sampler_dup",
                           Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<3>, Kokkos::IndexType<int>>(
                               space, {0, 0, 0}, {B, split, int(c)}),
                           Impl::DupRows<decltype(xs), Latent>{xs, tl.x0, B});
      Kokkos::deep_copy(space, Kokkos::subview(tl.labels, std::make_pair(0, B)), b.labels);
      Kokkos::deep_copy(space, Kokkos::subview(tl.labels, std::make_pair(B, 2 * B)), cfg.num_classes);
    } else {
      tok::copy_row_block(space, b.x, 0, tl.x0, 0, split);
      Kokkos::deep_copy(space, tl.labels, b.labels);
    }
    dit.fill_prefix(space, tl.x0, tl.labels, *tl.cache);
    return tl;
  }

  /// velocity() over the noisy rows with the finished levels from the cache (tail_ set by staged()).
  void velocity_tail(const ExecSpace& space, Dit<ExecSpace, T>& dit, Bufs& b, const Latent& x, double t,
                     double cfg_scale, const Latent& v) {
    Tail& tl = *tail_;
    const int B = b.B, split = tl.cache->split, Tq = tl.cache->Tq, c = int(x.extent(2));
    Kokkos::deep_copy(space, tl.t, T(t));
    const auto xs = Kokkos::subview(x, Kokkos::ALL, std::make_pair(split, split + Tq), Kokkos::ALL);
    const auto vs = Kokkos::subview(v, Kokkos::ALL, std::make_pair(split, split + Tq), Kokkos::ALL);
    using Pol = Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<3>, Kokkos::IndexType<int>>;
    if (tl.guided) {
      Kokkos::parallel_for("dcsldm::sampler_dup", Pol(space, {0, 0, 0}, {B, Tq, c}),
                           Impl::DupRows<decltype(xs), Latent>{xs, tl.xt, B});
      dit.velocity_tail(space, tl.xt, tl.t, tl.labels, *tl.cache, tl.vt);
      Kokkos::parallel_for("dcsldm::sampler_guide", Pol(space, {0, 0, 0}, {B, Tq, c}),
                           Impl::GuideRows<decltype(vs), Latent>{tl.vt, vs, B, T(cfg_scale)});
    } else {
      tok::copy_row_block(space, x, split, tl.xt, 0, Tq);
      dit.velocity_tail(space, tl.xt, tl.t, tl.labels, *tl.cache, tl.vt);
      tok::copy_row_block(space, tl.vt, 0, v, split, Tq);
    }
  }

  /// v = DiT(x, t) (guided when cfg != 1) on the first `levels` levels.
  void velocity(const ExecSpace& space, Dit<ExecSpace, T>& dit, Bufs& b, const Latent& x, double t, int levels,
                int split, double cfg_scale, const Latent& v) {
    const auto& cfg = dit.config();
    const int S = cfg.tokens_upto(levels);
    ++evals_;
    if (tail_) return velocity_tail(space, dit, b, x, t, cfg_scale, v);
    if (cfg_scale == 1.0 || cfg.num_classes == 0) {
      Kokkos::deep_copy(space, b.t, T(t));
      dit.velocity(space, contiguous(space, x, S, b.xp), b.t, b.labels, levels, split, contiguous_out(v, S, b.v1));
      scatter_out(space, v, S, b.v1);
      return;
    }
    const auto xs = Kokkos::subview(x, Kokkos::ALL, std::make_pair(0, S), Kokkos::ALL);
    ensure_guided(space, cfg, b);
    const int B = b.B;
    Kokkos::deep_copy(space, b.t2, T(t));
    // labels2 = [labels ; null]
    auto l1 = Kokkos::subview(b.labels2, std::make_pair(0, B));
    auto l2 = Kokkos::subview(b.labels2, std::make_pair(B, 2 * B));
    Kokkos::deep_copy(space, l1, b.labels);
    Kokkos::deep_copy(space, l2, cfg.num_classes);
    Latent x2(b.x2.data(), std::size_t(2 * B), std::size_t(S), b.x2.extent(2));
    Latent v2(b.v2.data(), std::size_t(2 * B), std::size_t(S), b.v2.extent(2));
    Kokkos::parallel_for("dcsldm::sampler_dup",
                         Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<3>, Kokkos::IndexType<int>>(
                             space, {0, 0, 0}, {B, S, int(x.extent(2))}),
                         Impl::DupRows<decltype(xs), Latent>{xs, x2, B});
    dit.velocity(space, x2, b.t2, b.labels2, levels, split, v2);
    auto vs = Kokkos::subview(v, Kokkos::ALL, std::make_pair(0, S), Kokkos::ALL);
    Kokkos::parallel_for("dcsldm::sampler_guide",
                         Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<3>, Kokkos::IndexType<int>>(
                             space, {0, 0, 0}, {B, S, int(x.extent(2))}),
                         Impl::GuideRows<decltype(vs), Latent>{v2, vs, B, T(cfg_scale)});
  }

  // The DiT reads contiguous (B, S, c) rows: views of the first S tokens of a (B, N, c) buffer are not, so
  // they go through a (B, S, c) reshaped scratch.
  Latent contiguous(const ExecSpace& space, const Latent& x, int S, const Latent& scratch) {
    if (S == int(x.extent(1))) return x;
    Latent out(scratch.data(), x.extent(0), std::size_t(S), x.extent(2));
    tok::copy_row_block(space, x, 0, out, 0, S);
    return out;
  }
  Latent contiguous_out(const Latent& v, int S, const Latent& scratch) {
    if (S == int(v.extent(1))) return v;
    return Latent(scratch.data(), v.extent(0), std::size_t(S), v.extent(2));
  }
  void scatter_out(const ExecSpace& space, const Latent& v, int S, const Latent& scratch) {
    if (S == int(v.extent(1))) return;
    const Latent src(scratch.data(), v.extent(0), std::size_t(S), v.extent(2));
    tok::copy_row_block(space, src, 0, v, 0, S);
  }

  bool integrate(const ExecSpace& space, Dit<ExecSpace, T>& dit, Bufs& b, int levels, int split,
                 const SampleOptions& opt) {
    const auto& cfg = dit.config();
    const std::vector<double> ts = opt.times();
    const int S = cfg.tokens_upto(levels), B = b.B, c = cfg.latent_channels;
    using Pol = Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<3>, Kokkos::IndexType<int>>;
    const Pol pol(space, {0, 0, 0}, {B, S, c});
    const double inf = std::numeric_limits<double>::infinity();
    auto lambda = [&](double t) { return t <= 0 ? inf : (t >= 1 ? -inf : std::log((1 - t) / t)); };
    double h_prev = inf;
    // Heun's predictor needs a full buffer separate from x and the DiT's scratch: xp is reused only
    // after the velocity call that reads it.
    Latent xpred;
    for (std::size_t i = 0; i + 1 < ts.size(); ++i) {
      const double t = ts[i], tn = ts[i + 1], dt = tn - t;
      velocity(space, dit, b, b.x, t, levels, split, opt.cfg, b.v);
      switch (opt.integrator) {
        case Integrator::Euler:
          Kokkos::parallel_for("dcsldm::sampler_euler", pol, Impl::EulerRows<Latent>{b.x, b.v, split, T(dt)});
          break;
        case Integrator::Heun: {
          if (tn <= 0) {
            Kokkos::parallel_for("dcsldm::sampler_euler", pol, Impl::EulerRows<Latent>{b.x, b.v, split, T(dt)});
            break;
          }
          if (xpred.extent(0) != b.x.extent(0)) xpred = heun_buffer(b);
          Kokkos::parallel_for("dcsldm::sampler_heun_predict", pol,
                               Impl::AxpyRows<Latent>{xpred, b.x, b.v, split, T(dt)});
          Kokkos::deep_copy(space, b.dprev, b.v);  // v1 (dprev is free outside DPM)
          velocity(space, dit, b, xpred, tn, levels, split, opt.cfg, b.v);
          Kokkos::parallel_for("dcsldm::sampler_heun_correct", pol,
                               Impl::HeunRows<Latent>{b.x, b.dprev, b.v, split, T(dt)});
          break;
        }
        case Integrator::DpmSolver2M: {
          const double h = lambda(tn) - lambda(t);
          const bool first_order = !std::isfinite(h_prev) || !std::isfinite(h) || i == 0;
          const double r = first_order ? 1.0 : h_prev / h;
          const double w2 = first_order ? 0.0 : -1.0 / (2 * r), w1 = 1.0 - w2;
          const double cx = tn / t;  // sigma ratio (t > 0 here)
          const double cd = (1 - tn) * (std::isfinite(h) ? -std::expm1(-h) : 1.0);
          Kokkos::parallel_for("dcsldm::sampler_dpm", pol,
                               Impl::DpmRows<Latent>{b.x, b.v, b.dprev, split, T(t), T(w1), T(w2), T(cx), T(cd)});
          h_prev = h;
          break;
        }
      }
      if (opt.on_step && !opt.on_step(levels, int(i) + 1, int(ts.size()) - 1)) return false;
    }
    return true;
  }

  Latent heun_buffer(const Bufs& b) {
    auto it = heun_.find(b.B);
    if (it == heun_.end())
      it = heun_.emplace(b.B, Latent("dcsldm::sampler_xpred", b.x.extent(0), b.x.extent(1), b.x.extent(2))).first;
    return it->second;
  }

  /// z = denormalised x on the first `levels` levels, 0 elsewhere.
  void finish(const ExecSpace& space, Dit<ExecSpace, T>& dit, Bufs& b, int levels, const Latent& z) {
    const int S = dit.config().tokens_upto(levels), N = int(z.extent(1));
    Kokkos::deep_copy(space, z, b.x);
    dit.denormalize(space, z);
    if (S < N) tok::fill_row_block(space, z, S, N - S, T(0));
  }

  std::map<int, Bufs> bufs_;
  std::map<int, Latent> heun_;
  std::map<std::tuple<int, int, int>, Tail> tails_;
  Tail* tail_ = nullptr;  // set during a cached stage of staged()
  int evals_ = 0;
};

}  // namespace dcsldm::dit
