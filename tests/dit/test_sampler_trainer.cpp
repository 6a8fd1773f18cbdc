// DiT samplers (time grids, integrators, guidance, joint and progressive modes) and the DiT trainer (the
// loss falls on a toy latent set; resume continues bit for bit).
#include <dcsldm/dit/sampler.hpp>
#include <dcsldm/dit/trainer.hpp>

#include "testing.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>

using namespace dcsldm;
using dcsldm::test::fill_uniform;
using dcsldm::test::to_doubles;

namespace {

using Exec = Kokkos::DefaultExecutionSpace;
using Mem = Exec::memory_space;

dit::DitConfig small_config() {
  dit::DitConfig c;
  c.level_sizes = {2, 2, 4};
  c.latent_channels = 2;
  c.width = 16;
  c.heads = 2;
  c.layers = 2;
  c.mlp_ratio = 2;
  c.freq_dim = 16;
  c.num_classes = 2;
  return c;
}

/// A toy latent set: class k's latents are k-dependent constants per level plus small noise.
dit::LatentSet toy_set(const dit::DitConfig& c, int count) {
  dit::LatentSet s;
  s.count = count;
  s.tokens = c.latent_tokens();
  s.channels = c.latent_channels;
  std::mt19937_64 g(5);
  std::normal_distribution<double> nd(0, 0.1);
  for (int i = 0; i < count; ++i) {
    const int y = i % 2;
    s.labels.push_back(y);
    for (int n = 0; n < s.tokens; ++n)
      for (int ch = 0; ch < s.channels; ++ch) s.z.push_back(float((y ? 1.0 : -1.0) * (1 + ch) + 0.2 * n + nd(g)));
  }
  return s;
}

}  // namespace

TEST_CASE("sampler: time grids", "[dit][sampler]") {
  const auto g = dit::time_grid(4);
  REQUIRE(g.size() == 5);
  CHECK(g[0] == 1.0);
  CHECK(g[2] == Approx(0.5));
  CHECK(g[4] == 0.0);
  const auto s = dit::time_grid(4, 3.0);  // shifted towards high noise
  CHECK(s[2] == Approx(3 * 0.5 / (1 + 2 * 0.5)));
  CHECK(s[2] > g[2]);
  CHECK_THROWS_WITH(dit::check_time_grid({1.0, 0.5, 0.6, 0.0}), Catch::Contains("not strictly decreasing"));
  CHECK_THROWS_WITH(dit::check_time_grid({0.9, 0.0}), Catch::Contains("must start at 1"));
  CHECK_THROWS_WITH(dit::time_grid(0), Catch::Contains("steps = 0"));
  CHECK_THROWS_WITH(dit::integrator_from_name("ddim"), Catch::Contains("unknown sampler 'ddim'"));
}

TEST_CASE("sampler: deterministic; joint m = 1 equals progressive level 1; cancellation; guidance", "[dit][sampler]") {
  const auto cfg = small_config();
  dit::Dit<Exec, double> model(cfg);
  model.init(Exec(), 2);
  fill_uniform(model.arena().params, 3, -0.3, 0.3);
  Exec space;
  const std::vector<int> labels{0, 1, 2};  // 2 = the null label
  const std::size_t N = std::size_t(cfg.latent_tokens()), c = std::size_t(cfg.latent_channels);
  View3<double, Mem> z1("z1", 3, N, c), z2("z2", 3, N, c);
  dit::FlowSampler<Exec, double> s;
  for (auto integ : {dit::Integrator::Euler, dit::Integrator::Heun, dit::Integrator::DpmSolver2M}) {
    INFO(dit::integrator_name(integ));
    dit::SampleOptions o;
    o.steps = 6;
    o.integrator = integ;
    o.seed = 11;
    o.cfg = 2.0;
    s.joint(space, model, labels, cfg.levels(), o, z1);
    const auto a = to_doubles(z1);
    s.joint(space, model, labels, cfg.levels(), o, z2);
    CHECK(to_doubles(z2) == a);  // same seed, same bits
    for (double v : a) REQUIRE(std::isfinite(v));
    CHECK(s.evaluations() == (integ == dit::Integrator::Heun ? 2 * o.steps - 1 : o.steps));
    o.seed = 12;
    s.joint(space, model, labels, cfg.levels(), o, z2);
    CHECK(test::rel_error(to_doubles(z2), a) > 1e-3);
  }
  // Joint generation of level 1 only is progressive generation's first level; rows of later levels are 0.
  dit::SampleOptions o;
  o.steps = 5;
  o.seed = 4;
  s.joint(space, model, labels, 1, o, z1);
  int calls = 0;
  const int done = s.progressive(space, model, labels, cfg.levels(), o, z2, [&](int level, const View3<double, Mem>& z) {
    ++calls;
    const auto v = to_doubles(z);
    const int n1 = cfg.tokens_upto(level);
    for (std::size_t b = 0; b < 3; ++b)
      for (std::size_t n = std::size_t(n1); n < N; ++n)
        for (std::size_t ch = 0; ch < c; ++ch) REQUIRE(v[(b * N + n) * c + ch] == 0.0);
    if (level == 1) CHECK(v == to_doubles(z1));
    return level < 2;  // cancel after level 2
  });
  CHECK(done == 2);
  CHECK(calls == 2);
  // cfg = 1 is the plain conditional velocity: same as a guided call with scale 1 computed the long way.
  dit::SampleOptions g1 = o;
  g1.cfg = 1.0;
  s.joint(space, model, labels, cfg.levels(), g1, z1);
  const auto plain = to_doubles(z1);
  g1.cfg = 1.0 + 1e-12;  // takes the guided path
  s.joint(space, model, labels, cfg.levels(), g1, z2);
  CHECK(test::rel_error(to_doubles(z2), plain) < 1e-9);
  // bad input
  View3<double, Mem> bad("bad", 2, N, c);
  CHECK_THROWS_WITH(s.joint(space, model, labels, cfg.levels(), o, bad), Catch::Contains("z is (2,"));
  CHECK_THROWS_WITH(s.joint(space, model, {0, 7, 1}, cfg.levels(), o, z1), Catch::Contains("class 7 out of range"));
}

TEST_CASE("sampler: stages between joint and progressive", "[dit][sampler]") {
  const auto cfg = small_config();  // levels of 2, 2, 4 tokens
  dit::Dit<Exec, double> model(cfg);
  model.init(Exec(), 2);
  fill_uniform(model.arena().params, 3, -0.3, 0.3);
  Exec space;
  const std::vector<int> labels{0, 1, 2};
  const std::size_t N = std::size_t(cfg.latent_tokens()), c = std::size_t(cfg.latent_channels);
  View3<double, Mem> zj("zj", 3, N, c), zs("zs", 3, N, c), zp("zp", 3, N, c);
  dit::FlowSampler<Exec, double> s;
  // rows [0, tokens_upto(m)) of every sample
  auto rows = [&](const std::vector<double>& v, int m) {
    std::vector<double> r;
    for (std::size_t b = 0; b < 3; ++b)
      for (std::size_t i = 0; i < std::size_t(cfg.tokens_upto(m)) * c; ++i) r.push_back(v[b * N * c + i]);
    return r;
  };
  for (auto integ : {dit::Integrator::Euler, dit::Integrator::Heun, dit::Integrator::DpmSolver2M})
    for (double g : {1.0, 2.0}) {
      INFO(dit::integrator_name(integ) << " cfg " << g);
      dit::SampleOptions o;
      o.steps = 5;
      o.integrator = integ;
      o.seed = 9;
      o.cfg = g;
      // One stage is joint generation, bit for bit; a stage per level is progressive generation.
      s.joint(space, model, labels, 3, o, zj);
      CHECK(s.staged(space, model, labels, {3}, o, zs) == 3);
      CHECK(to_doubles(zs) == to_doubles(zj));
      const int ev_joint = s.evaluations();
      s.progressive(space, model, labels, 3, o, zp);
      CHECK(s.staged(space, model, labels, {1, 2, 3}, o, zs) == 3);
      CHECK(to_doubles(zs) == to_doubles(zp));
      // {1, 3}: level 1 is joint(1)'s and stays clean while levels 2..3 are generated together; the result is
      // neither joint's nor progressive's; twice as many evaluations as joint; the cache changes rounding only.
      std::vector<int> seen;
      CHECK(s.staged(space, model, labels, {1, 3}, o, zs, [&](int l, const View3<double, Mem>&) {
        seen.push_back(l);
        return true;
      }) == 3);
      CHECK(seen == std::vector<int>{1, 3});
      CHECK(s.evaluations() == 2 * ev_joint);
      const auto st = to_doubles(zs);
      s.joint(space, model, labels, 1, o, zj);
      CHECK(rows(st, 1) == rows(to_doubles(zj), 1));
      CHECK(test::rel_error(st, to_doubles(zp)) > 1e-3);
      s.joint(space, model, labels, 3, o, zj);
      CHECK(test::rel_error(st, to_doubles(zj)) > 1e-3);
      for (double v : st) REQUIRE(std::isfinite(v));
      dit::SampleOptions nc = o;
      nc.prefix_cache = false;
      s.staged(space, model, labels, {1, 3}, nc, zs);
      CHECK(test::rel_error(to_doubles(zs), st) < 1e-10);
      // {2, 3}: levels 1..2 are joint(2)'s.
      s.staged(space, model, labels, {2, 3}, o, zs);
      s.joint(space, model, labels, 2, o, zj);
      CHECK(rows(to_doubles(zs), 2) == rows(to_doubles(zj), 2));
    }
  // A reference for a later stage, computed here from the DiT alone: {1, 3} with Euler and no guidance is level 1 of
  // joint(1), then levels 2..3 from level 2's noise stream integrated with level 1 held clean (the model's latent
  // statistics are the identity, so normalising changes nothing).
  {
    dit::SampleOptions o;
    o.steps = 4;
    o.seed = 21;
    o.prefix_cache = false;
    s.staged(space, model, labels, {1, 3}, o, zs);
    s.joint(space, model, labels, 1, o, zj);
    const int split = cfg.tokens_upto(1);
    View3<double, Mem> x("x", 3, N, c), v("v", 3, N, c);
    rng::fill_normal(space, x, o.seed, rng::stream_of("dit_sample") + 2, 0.0, 1.0);
    auto hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), x);
    const auto j1 = to_doubles(zj);
    for (std::size_t b = 0; b < 3; ++b)
      for (std::size_t n = 0; n < std::size_t(split); ++n)
        for (std::size_t ch = 0; ch < c; ++ch) hx(b, n, ch) = j1[(b * N + n) * c + ch];
    View1<double, Mem> tv("t", 3);
    Kokkos::View<int*, Mem> lv("labels", 3);
    auto hl = Kokkos::create_mirror_view(lv);
    for (int i = 0; i < 3; ++i) hl(i) = labels[std::size_t(i)];
    Kokkos::deep_copy(lv, hl);
    const auto ts = dit::time_grid(o.steps);
    for (std::size_t i = 0; i + 1 < ts.size(); ++i) {
      Kokkos::deep_copy(x, hx);
      Kokkos::deep_copy(tv, ts[i]);
      model.velocity(space, x, tv, lv, 3, split, v);
      auto hv = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
      for (std::size_t b = 0; b < 3; ++b)
        for (std::size_t n = std::size_t(split); n < N; ++n)
          for (std::size_t ch = 0; ch < c; ++ch) hx(b, n, ch) += (ts[i + 1] - ts[i]) * hv(b, n, ch);
    }
    Kokkos::deep_copy(x, hx);
    CHECK(test::rel_error(to_doubles(zs), to_doubles(x)) < 1e-12);
    // on_step cancelling inside the second stage: stage 1's latent stays, later rows 0, the last level done is 1.
    int steps_seen = 0;
    o.on_step = [&](int, int, int) { return ++steps_seen <= o.steps; };
    CHECK(s.staged(space, model, labels, {1, 3}, o, zs) == 1);
    CHECK(steps_seen == o.steps + 1);
    const auto zc = to_doubles(zs);
    CHECK(rows(zc, 1) == rows(j1, 1));
    for (std::size_t b = 0; b < 3; ++b)
      for (std::size_t i = std::size_t(split) * c; i < N * c; ++i) REQUIRE(zc[b * N * c + i] == 0.0);
  }
  // A callback that returns false after the first stage stops there; rows of later levels are 0.
  dit::SampleOptions o;
  o.steps = 3;
  CHECK(s.staged(space, model, labels, {2, 3}, o, zs, [](int, const View3<double, Mem>&) { return false; }) == 2);
  const auto v = to_doubles(zs);
  for (std::size_t b = 0; b < 3; ++b)
    for (std::size_t i = std::size_t(cfg.tokens_upto(2)) * c; i < N * c; ++i) REQUIRE(v[b * N * c + i] == 0.0);
  // Bad stages are refused with what was wrong.
  CHECK_THROWS_WITH(s.staged(space, model, labels, {}, o, zs), Catch::Contains("no stages"));
  CHECK_THROWS_WITH(s.staged(space, model, labels, {2, 2}, o, zs), Catch::Contains("stage 2 ends at level 2"));
  CHECK_THROWS_WITH(s.staged(space, model, labels, {1, 4}, o, zs), Catch::Contains("stage 2 ends at level 4"));
  CHECK_THROWS_WITH(s.staged(space, model, labels, {0, 3}, o, zs), Catch::Contains("strictly increasing levels in 1..3"));
}

TEST_CASE("dit trainer: the loss falls, samples follow the classes, resume continues bit for bit", "[dit][train]") {
  const auto cfg = small_config();
  const dit::LatentSet data = toy_set(cfg, 64);
  const auto dir = std::filesystem::temp_directory_path() / "dcsldm_test_dit_train";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  dit::DitTrainOptions o;
  o.batch = 16;
  o.steps = 300;
  o.lr = 3e-3;
  o.min_lr = 3e-4;
  o.warmup = 20;
  o.ema = 0.9;
  o.log_every = 1000;
  o.ckpt_every = 0;
  o.ckpt_path = (dir / "d.ckpt").string();
  Exec space;
  dit::DitTrainer<Exec, double> tr(cfg, o, data);
  tr.init(space);
  double first = 0, last = 0;
  for (int i = 0; i < 300; ++i) {
    const auto st = tr.step(space);
    if (i < 20) first += st.loss / 20;
    if (i >= 280) last += st.loss / 20;
    if (i == 149) tr.checkpoint();
  }
  INFO("loss " << first << " -> " << last);
  CHECK(last < 0.5 * first);
  // The trained model's samples land near their class's latents (classes 2 apart in channel 0).
  const std::string mp = (dir / "d.safetensors").string();
  tr.save_model(mp);
  auto m = dit::Dit<Exec, double>::load(mp);
  dit::FlowSampler<Exec, double> s;
  const std::size_t N = std::size_t(cfg.latent_tokens()), c = std::size_t(cfg.latent_channels);
  View3<double, Mem> z("z", 4, N, c);
  dit::SampleOptions so;
  so.steps = 20;
  so.seed = 3;
  s.joint(space, m, {0, 1, 0, 1}, cfg.levels(), so, z);
  const auto v = to_doubles(z);
  for (std::size_t b = 0; b < 4; ++b) {
    double mean0 = 0;
    for (std::size_t n = 0; n < N; ++n) mean0 += v[(b * N + n) * c] / double(N);
    const double expect = (b % 2 ? 1.0 : -1.0) + 0.2 * double(N - 1) / 2;  // the class's mean over tokens
    INFO("sample " << b << " channel-0 mean " << mean0 << ", class mean " << expect);
    CHECK(std::abs(mean0 - expect) < 0.4);
  }
  // Resume from the step-150 checkpoint and redo steps 150..299: the same parameters, bit for bit.
  const auto final_params = to_doubles(tr.model().arena().params);
  dit::DitTrainer<Exec, double> tr2(cfg, o, data);
  REQUIRE(tr2.resume(space));
  CHECK(tr2.current_step() == 150);
  while (tr2.current_step() < 300) tr2.step(space);
  CHECK(to_doubles(tr2.model().arena().params) == final_params);
  // The progress line of a resumed run measures its rate from the resume step (ProgressRate starts there): the first
  // line after step 150 reports about one step's rate, not 150 steps' worth in one step's time.
  {
    dit::DitTrainOptions o3 = o;
    o3.steps = 154;
    o3.log_every = 1;
    dit::DitTrainer<Exec, double> tr3(cfg, o3, data);
    REQUIRE(tr3.resume(space));
    tr3.step(space);  // buffers made, caches warm
    const auto t0 = std::chrono::steady_clock::now();
    tr3.step(space);
    const double t_step = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::FILE* log = std::tmpfile();
    REQUIRE(log != nullptr);
    tr3.run(space, log);
    const auto [l, reported] = test::first_progress_line(log);
    INFO(l << "one step took " << t_step << " s: " << o.batch / t_step << " samples/s");
    REQUIRE(l.rfind("step 153/154", 0) == 0);
    CHECK(reported > 0);
    CHECK(reported < 20 * o.batch / t_step);  // counting from step 0 would report ~153 steps in one step's time
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("latent sets: round trip, statistics, bad files refused with their name", "[dit][io]") {
  const auto cfg = small_config();
  const dit::LatentSet s = toy_set(cfg, 10);
  const auto dir = std::filesystem::temp_directory_path() / "dcsldm_test_latent_set";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "l.safetensors").string();
  s.save(path);
  const dit::LatentSet b = dit::LatentSet::load(path);
  CHECK(b.count == 10);
  CHECK(b.z == s.z);
  CHECK(b.labels == s.labels);
  // Statistics per (level, channel): channel 0 of class +-1 alternates, so its mean is 0.2 * (mean token).
  const auto st = dit::latent_stats(b, cfg.level_sizes);
  REQUIRE(st.first.size() == std::size_t(cfg.levels() * cfg.latent_channels));
  CHECK(st.first[0] == Approx(0.2 * 0.5).margin(0.1));  // level 1 = tokens 0, 1
  CHECK(st.second[0] > 0.9);                              // +-1 around it
  CHECK_THROWS_WITH(dit::latent_stats(b, {2, 2}), Catch::Contains("level sizes add up to 4 tokens, the set has 8"));
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 8);
  CHECK_THROWS_WITH(dit::LatentSet::load(path), Catch::Contains("l.safetensors"));
  // A DiT model file is not a latent set.
  dit::Dit<Exec, float> m(cfg);
  m.save(path);
  CHECK_THROWS_WITH(dit::LatentSet::load(path), Catch::Contains("is not a dcsldm latent set"));
  std::filesystem::remove_all(dir);
}
