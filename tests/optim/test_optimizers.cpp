// optim/adamw, clip_grad, lr_schedule, ema: AdamW against torch.optim.AdamW over several steps
// (decayed and non-decayed tensors, float and double), clipping against torch clip_grad_norm_ (active
// and inactive, host read-back and device-only paths), the warm-up + cosine schedule at key steps, EMA
// against a naive loop, and errors.
#include <dcsldm/optim/adamw.hpp>
#include <dcsldm/optim/clip_grad.hpp>
#include <dcsldm/optim/ema.hpp>
#include <dcsldm/optim/lr_schedule.hpp>
#include <dcsldm/optim/param_arena.hpp>

#include "testing.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

using namespace dcsldm;
using namespace dcsldm::optim;
using test::ExecSpaces;

namespace {

/// The golden scripts' tensors, in declaration order (scripts/goldens/optim.py, TENSORS).
ParamLayout golden_layout() {
  ParamLayout l;
  l.add("bias", {5}, Decay::No);
  l.add("weight", {5, 3}, Decay::Yes);
  l.add("norm", {2, 1, 3}, Decay::No);
  l.add("w2", {2, 3, 2, 2}, Decay::Yes);
  l.add("empty", {0}, Decay::Yes);
  l.finalize();
  return l;
}

/// Sets buf[slot] from a golden tensor (host copy; test setup only).
template <class T, class M>
void set_from(const ParamArena<T, M>& a, const View1<T, M>& buf, const test::Golden& g, const std::string& prefix) {
  for (const auto& s : a.layout.slots()) {
    const std::string name = prefix + s.name;
    REQUIRE(g.shape(name) == s.shape);
    const std::vector<T> vals = g.file.to_vector<T>(name);
    auto dst = a.flat(s, buf);
    auto h = Kokkos::create_mirror_view(dst);
    std::copy(vals.begin(), vals.end(), h.data());
    Kokkos::deep_copy(dst, h);
  }
}

template <class ExecSpace, class T>
void check_adamw_golden() {
  using M = typename ExecSpace::memory_space;
  test::Golden g("adamw");
  ParamArena<T, M> a(golden_layout());
  Kokkos::deep_copy(a.params, T(0));
  set_from(a, a.params, g, "p0.");
  AdamW opt;
  opt.beta1 = g.meta_double("beta1");
  opt.beta2 = g.meta_double("beta2");
  opt.eps = g.meta_double("eps");
  opt.weight_decay = g.meta_double("weight_decay");
  const int steps = int(g.meta_int("steps"));
  for (int s = 0; s < steps; ++s) {
    zero_grad(ExecSpace(), a);
    set_from(a, a.grads, g, "g" + std::to_string(s) + ".");
    adamw_step(ExecSpace(), a, opt, g.meta_double("lr" + std::to_string(s)));
  }
  CHECK(opt.step == steps);
  const std::string k = std::to_string(steps);
  for (const auto& s : a.layout.slots()) {
    for (const char* what : {"p", "m", "v"}) {
      const auto& buf = what[0] == 'p' ? a.params : what[0] == 'm' ? a.m : a.v;
      const double err = g.error(a.flat(s, buf), what + k + "." + s.name);
      INFO(what << " of '" << s.name << "' after " << steps << " steps: rel err " << err);
      CHECK(err < test::parity_tol<T>());
    }
  }
  // Padding stays exactly zero.
  const auto p = test::to_doubles(a.params);
  for (std::size_t i : {15, 40, 47, 53, 63, 70, 79}) CHECK(p[i] == 0);
}

/// Decay applies to [0, n_decay) only: with zero gradients, decayed tensors shrink by (1 - lr wd) per
/// step and the others do not move (the Adam part is 0 / (0 + eps) = 0).
template <class ExecSpace>
void check_adamw_decay_split() {
  using M = typename ExecSpace::memory_space;
  ParamArena<double, M> a(golden_layout());
  Kokkos::deep_copy(a.params, 1.0);
  AdamW opt;
  opt.weight_decay = 0.5;
  adamw_step(ExecSpace(), a, opt, 0.1);
  adamw_step(ExecSpace(), a, opt, 0.1);
  const auto p = test::to_doubles(a.params);
  for (std::size_t i = 0; i < p.size(); ++i) {
    INFO("element " << i);
    CHECK(p[i] == (i < a.layout.n_decay() ? 0.95 * 0.95 : 1.0));
  }
  ParamArena<double, M> e(golden_layout(), ArenaState::Params);
  CHECK_THROWS_WITH(adamw_step(ExecSpace(), e, opt, 0.1),
                    Catch::Contains("dcsldm::adamw_step") && Catch::Contains("no grads/m/v"));
  opt.beta2 = 1.0;
  CHECK_THROWS_WITH(adamw_step(ExecSpace(), a, opt, 0.1),
                    Catch::Contains("dcsldm::adamw_step") && Catch::Contains("beta2 = 1"));
  CHECK(opt.step == 2);
}

/// The host float path of adamw_step (16 lanes over chunks) against the per-element kernel, bit for bit: a
/// decayed range, a tensor across a chunk boundary (4096), a tail, three steps. On a device space the kernel
/// itself runs (to 1e-5 relative: nvcc contracts its multiply-adds, the host evaluation here does not).
template <class ExecSpace>
void check_adamw_lanes_bitwise() {
  using M = typename ExecSpace::memory_space;
  ParamLayout l;
  l.add("w1", {37}, Decay::Yes);
  l.add("w2", {41, 100}, Decay::Yes);
  l.add("b", {1003}, Decay::No);
  l.finalize();
  ParamArena<float, M> a(l);
  const std::size_t n = l.total();
  test::fill_uniform(a.params, 1, -1, 1);
  test::fill_uniform(a.m, 2, -0.1, 0.1);
  test::fill_uniform(a.v, 3, 0, 0.01);
  auto hp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a.params);
  auto hm = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a.m);
  auto hv = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a.v);
  std::vector<float> rp(hp.data(), hp.data() + n), rm(hm.data(), hm.data() + n), rv(hv.data(), hv.data() + n);
  AdamW opt;
  opt.weight_decay = 0.1;
  for (int step = 0; step < 3; ++step) {
    test::fill_uniform(a.grads, 10 + step, -2, 2);
    auto hg = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a.grads);
    const double lr = 1e-3 * (step + 1), bc1 = 1 - std::pow(opt.beta1, double(step + 1)),
                 bc2 = 1 - std::pow(opt.beta2, double(step + 1));
    const optim::Impl::AdamWKernel<float> k{rp.data(), hg.data(), rm.data(), rv.data(), l.n_decay(),
                                            float(1 - lr * opt.weight_decay), float(opt.beta1), float(1 - opt.beta1),
                                            float(opt.beta2), float(1 - opt.beta2), float(lr / bc1),
                                            float(std::sqrt(bc2)), float(opt.eps)};
    for (std::size_t i = 0; i < n; ++i) k(i);
    adamw_step(ExecSpace(), a, opt, lr);
  }
  Kokkos::deep_copy(hp, a.params);
  Kokkos::deep_copy(hm, a.m);
  Kokkos::deep_copy(hv, a.v);
  std::size_t differ = 0, first = n;
  double worst = 0;  // relative, against the host evaluation
  for (std::size_t i = 0; i < n; ++i) {
    if (hp(i) != rp[i] || hm(i) != rm[i] || hv(i) != rv[i]) {
      ++differ;
      first = std::min(first, i);
    }
    worst = std::max({worst, std::abs(double(hp(i)) - rp[i]) / (1e-6 + std::abs(double(rp[i]))),
                      std::abs(double(hm(i)) - rm[i]) / (1e-6 + std::abs(double(rm[i]))),
                      std::abs(double(hv(i)) - rv[i]) / (1e-9 + std::abs(double(rv[i])))});
  }
  INFO("n = " << n << ", n_decay = " << l.n_decay() << ", first differing element " << first << ", worst relative "
              << worst);
  if constexpr (compat::is_host_space_v<ExecSpace>) {
    CHECK(differ == 0);  // the 16-lane path (or, without AVX-512, the functor itself) on the host: the same bits
  } else {
    CHECK(worst < 1e-5);  // a device compiler may contract the functor's multiply-adds into FMAs
  }
}

/// The host float path of the norm read-back (double lanes over chunks) against a double sum; a clip factor
/// of 1 leaves the gradients' bits as they were, a smaller one scales them.
template <class ExecSpace>
void check_norm_lanes() {
  using M = typename ExecSpace::memory_space;
  for (const std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(31), std::size_t(4096 * 2 + 77)}) {
    View1<float, M> g("g", n);
    test::fill_uniform(g, 5, -3, 3);
    const auto hg = test::to_doubles(g);
    double ref = 0;
    for (const double x : hg) ref += x * x;
    ref = std::sqrt(ref);
    INFO("n = " << n);
    Kokkos::View<double, M> ns("ns");
    grad_norm_sq(ExecSpace(), g, ns);  // the path without read-back: the same sum, bit for bit
    double ns_host = 0;
    Kokkos::deep_copy(ns_host, ns);
    const double norm = clip_grad_norm_readback(ExecSpace(), g, ref * 1.5 + 1);  // no clipping
    CHECK(std::abs(norm - ref) <= 1e-13 * ref);
    CHECK(std::sqrt(ns_host) == norm);
    const auto after = test::to_doubles(g);
    CHECK(after == hg);
    if (n > 0) {
      clip_grad_norm_readback(ExecSpace(), g, ref * 0.5);
      const auto clipped = test::to_doubles(g);
      double worst = 0;
      for (std::size_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(clipped[i] - 0.5 * hg[i] * ref / (ref + 1e-6)));
      CHECK(worst < 1e-6);
    }
  }
}

template <class ExecSpace, class T>
void check_clip_golden(bool device_path) {
  using M = typename ExecSpace::memory_space;
  test::Golden g("clip_grad");
  for (const std::string c : {"clip", "noclip"}) {
    ParamArena<T, M> a(golden_layout());
    set_from(a, a.grads, g, c + ".g.");
    const double max_norm = g.values(c + ".max_norm")[0];
    const double want = g.values(c + ".norm")[0];
    double norm;
    if (device_path) {
      Kokkos::View<double, M> nsq("nsq");
      grad_norm_sq(ExecSpace(), a.grads, nsq);
      clip_grad_by_norm_sq(ExecSpace(), a.grads, nsq, max_norm);
      norm = std::sqrt(test::to_doubles(nsq)[0]);
    } else {
      norm = clip_grad_norm_readback(ExecSpace(), a.grads, max_norm);
    }
    INFO(c << ": norm " << norm << " vs torch " << want << (device_path ? " (device path)" : ""));
    CHECK(std::abs(norm - want) <= test::parity_tol<T>() * want);
    for (const auto& s : a.layout.slots()) {
      const double err = g.error(a.flat(s, a.grads), c + ".out." + s.name);
      INFO("tensor " << s.name << " rel err " << err);
      CHECK(err < test::parity_tol<T>());
    }
    if (c == "clip") CHECK(grad_norm_readback(ExecSpace(), a.grads) < max_norm);
  }
}

template <class ExecSpace>
void check_clip_edges() {
  using M = typename ExecSpace::memory_space;
  View1<float, M> e("e", 0), z("z", 5);
  CHECK(clip_grad_norm_readback(ExecSpace(), e, 1.0) == 0);
  CHECK(clip_grad_norm_readback(ExecSpace(), z, 1.0) == 0);  // zero gradients stay zero
  CHECK(test::to_doubles(z) == std::vector<double>(5, 0.0));
  Kokkos::deep_copy(z, 1.0f);  // norm sqrt(5) > 1: scaled by 1 / (sqrt 5 + 1e-6)
  CHECK(std::abs(clip_grad_norm_readback(ExecSpace(), z, 1.0) - std::sqrt(5.0)) < 1e-6);
  CHECK(std::abs(grad_norm_readback(ExecSpace(), z) - 1.0) < 1e-5);
  CHECK_THROWS_WITH(clip_grad_norm_readback(ExecSpace(), z, 0.0),
                    Catch::Contains("dcsldm::clip_grad_norm_readback") && Catch::Contains("max_norm = 0"));
}

template <class ExecSpace, class T>
void check_ema() {
  using M = typename ExecSpace::memory_space;
  const std::size_t n = 37;
  View1<T, M> ema("ema", n), p("p", n);
  test::fill_uniform(ema, 1);
  std::vector<double> want = test::to_doubles(ema);
  for (std::int64_t t = 0; t < 5; ++t) {
    test::fill_uniform(p, 10 + std::uint64_t(t));
    const double d = ema_decay(0.999, t, true);
    const auto pv = test::to_doubles(p);
    for (std::size_t i = 0; i < n; ++i) {
      // The kernel's arithmetic in accum_t<T>, rounded like it.
      const accum_t<T> dd = accum_t<T>(d), om = accum_t<T>(1 - d);
      want[i] = double(T(dd * accum_t<T>(T(want[i])) + om * accum_t<T>(T(pv[i]))));
    }
    ema_update(ExecSpace(), ema, p, d);
  }
  CHECK(test::rel_error(test::to_doubles(ema), want) <= (std::is_same_v<T, float> ? 1e-7 : 1e-15));
  // Arena form: decay 0 copies the parameters, decay 1 keeps the EMA.
  ParamArena<T, M> model(golden_layout()), avg(golden_layout(), ArenaState::Params);
  test::fill_uniform(model.params, 3);
  test::fill_uniform(avg.params, 4);
  const auto before = test::to_doubles(avg.params);
  ema_update(ExecSpace(), avg, model, 1.0);
  CHECK(test::to_doubles(avg.params) == before);
  ema_update(ExecSpace(), avg, model, 0.0);
  CHECK(test::to_doubles(avg.params) == test::to_doubles(model.params));
  View1<T, M> short_p("short", n - 1);
  CHECK_THROWS_WITH(ema_update(ExecSpace(), ema, short_p, 0.9),
                    Catch::Contains("dcsldm::ema_update") && Catch::Contains("ema.extent(0) = 37 != params.extent(0) = 36"));
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("AdamW matches torch.optim.AdamW over several steps", "[optim][adamw]", ExecSpaces) {
  check_adamw_golden<TestType, float>();
  check_adamw_golden<TestType, double>();
}

TEMPLATE_LIST_TEST_CASE("AdamW decays exactly the decayed range", "[optim][adamw]", ExecSpaces) {
  check_adamw_decay_split<TestType>();
}

TEMPLATE_LIST_TEST_CASE("AdamW on floats: the vector path equals the per-element kernel bit for bit", "[optim][adamw]",
                        ExecSpaces) {
  check_adamw_lanes_bitwise<TestType>();
}
TEMPLATE_LIST_TEST_CASE("gradient norm read-back and clipping on floats against a double sum", "[optim][clip]",
                        ExecSpaces) {
  check_norm_lanes<TestType>();
}
TEMPLATE_LIST_TEST_CASE("clip_grad_norm matches torch clip_grad_norm_", "[optim][clip]", ExecSpaces) {
  check_clip_golden<TestType, float>(false);
  check_clip_golden<TestType, double>(false);
  check_clip_golden<TestType, float>(true);
  check_clip_golden<TestType, double>(true);
  check_clip_edges<TestType>();
}

TEST_CASE("WarmupCosine at key steps", "[optim][lr]") {
  const WarmupCosine s{1e-3, 1e-5, 10, 110};
  CHECK(s(0) == Approx(1e-4).epsilon(1e-14));
  CHECK(s(4) == Approx(5e-4).epsilon(1e-14));
  CHECK(s(9) == Approx(1e-3).epsilon(1e-14));
  CHECK(s(10) == Approx(1e-3).epsilon(1e-14));   // start of the decay: q = 0
  CHECK(s(60) == Approx(5.05e-4).epsilon(1e-14));  // q = 1/2
  CHECK(s(35) == Approx(1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + std::cos(M_PI * 0.25))).epsilon(1e-14));
  CHECK(s(109) == Approx(1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + std::cos(M_PI * 0.99))).epsilon(1e-14));
  CHECK(s(110) == 1e-5);
  CHECK(s(100000) == 1e-5);
  for (std::int64_t k = 10; k < 120; ++k) CHECK(s(k + 1) <= s(k));
  for (std::int64_t k = 0; k < 9; ++k) CHECK(s(k + 1) > s(k));
  const WarmupCosine nowarm{2.0, 0.0, 0, 4};
  CHECK(nowarm(0) == 2.0);
  CHECK(nowarm(2) == Approx(1.0).epsilon(1e-15));
  CHECK(nowarm(4) == 0.0);
  const WarmupCosine onlywarm{1.0, 0.5, 4, 4};
  CHECK(onlywarm(3) == 1.0);
  CHECK(onlywarm(4) == 0.5);
  CHECK_THROWS_WITH(s(-1), Catch::Contains("dcsldm::WarmupCosine") && Catch::Contains("step = -1"));
}

TEST_CASE("ema_decay warm-up", "[optim][ema]") {
  CHECK(ema_decay(0.9999, 0, true) == Approx(0.1));
  CHECK(ema_decay(0.9999, 8, true) == Approx(0.5));
  CHECK(ema_decay(0.9999, 80, true) == Approx(0.9));
  CHECK(ema_decay(0.9, 1000, true) == 0.9);
  CHECK(ema_decay(0.9999, 0, false) == 0.9999);
}

TEMPLATE_LIST_TEST_CASE("EMA update equals a naive loop", "[optim][ema]", ExecSpaces) {
  check_ema<TestType, float>();
  check_ema<TestType, double>();
}
