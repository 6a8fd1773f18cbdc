// The finished-levels cache (dit/prefix_cache.hpp): the forward over only the noisy rows equals those rows
// of the full forward (double and float, with and without labels, several splits); progressive sampling
// with the cache equals sampling without it (Euler, Heun, DPM-Solver++(2M), guided and unguided), takes
// the same number of evaluations, and is deterministic.
#include <dcsldm/dit/model.hpp>
#include <dcsldm/dit/sampler.hpp>

#include "testing.hpp"

using namespace dcsldm;

namespace {

using Exec = Kokkos::DefaultExecutionSpace;
using Mem = Exec::memory_space;

dit::DitConfig cache_config(int num_classes) {
  dit::DitConfig c;
  c.level_sizes = {2, 2, 4};
  c.latent_channels = 3;
  c.width = 16;
  c.heads = 2;
  c.layers = 2;
  c.mlp_ratio = 2;
  c.freq_dim = 16;
  c.num_classes = num_classes;
  return c;
}

template <class T>
void check_tail_forward(int num_classes, int levels, int split) {
  Exec space;
  const auto c = cache_config(num_classes);
  dit::Dit<Exec, T> m(c);
  m.init(space, 3);
  test::fill_uniform(m.arena().params, 4, -0.3, 0.3);  // AdaLN-Zero starts at zero: make every path live
  const int B = 3, S = c.tokens_upto(levels), Tq = S - split, lc = c.latent_channels;
  View3<T, Mem> x("x", B, S, lc), v("v", B, S, lc), x0("x0", B, split, lc), xt("xt", B, Tq, lc), vt("vt", B, Tq, lc);
  View1<T, Mem> t("t", B);
  Kokkos::View<int*, Mem> labels("labels", B);
  test::fill_uniform(x, 5);
  test::fill_uniform(t, 6, 0.05, 0.95);
  auto hl = Kokkos::create_mirror_view(labels);
  for (int b = 0; b < B; ++b) hl(b) = num_classes > 0 ? (b * 2) % (num_classes + 1) : 0;
  Kokkos::deep_copy(labels, hl);
  m.velocity(space, x, t, labels, levels, split, v);
  tok::copy_row_block(space, x, 0, x0, 0, split);
  tok::copy_row_block(space, x, split, xt, 0, Tq);
  auto& cache = m.prefix_cache(B, levels, split);
  m.fill_prefix(space, x0, labels, cache);
  m.velocity_tail(space, xt, t, labels, cache, vt);
  space.fence();
  const auto full = test::to_doubles(v), tail = test::to_doubles(vt);
  std::vector<double> want;
  for (int b = 0; b < B; ++b)
    for (int n = split; n < S; ++n)
      for (int ch = 0; ch < lc; ++ch) want.push_back(full[(std::size_t(b) * S + n) * lc + ch]);
  INFO("classes " << num_classes << " levels " << levels << " split " << split);
  CHECK(test::rel_error(tail, want) < (std::is_same_v<T, float> ? 1e-5 : 1e-12));
}

template <class T>
std::vector<double> sample(bool cached, dit::Integrator integ, double cfg, int* evals) {
  Exec space;
  const auto c = cache_config(2);
  dit::Dit<Exec, T> m(c);
  m.init(space, 3);
  test::fill_uniform(m.arena().params, 4, -0.3, 0.3);
  dit::FlowSampler<Exec, T> s;
  dit::SampleOptions o;
  o.steps = 4;
  o.integrator = integ;
  o.cfg = cfg;
  o.seed = 9;
  o.prefix_cache = cached;
  View3<T, Mem> z("z", 3, c.latent_tokens(), c.latent_channels);
  REQUIRE(s.progressive(space, m, {0, 1, 2}, 3, o, z) == 3);
  *evals = s.evaluations();
  return test::to_doubles(z);
}

}  // namespace

TEST_CASE("prefix cache: the noisy rows' forward equals the full forward's", "[dit][cache]") {
  for (int classes : {0, 3})
    for (auto [levels, split] : {std::pair{2, 2}, std::pair{3, 2}, std::pair{3, 4}}) {
      check_tail_forward<double>(classes, levels, split);
      check_tail_forward<float>(classes, levels, split);
    }
}

TEST_CASE("prefix cache: progressive sampling with the cache equals sampling without", "[dit][cache]") {
  for (auto integ : {dit::Integrator::Euler, dit::Integrator::Heun, dit::Integrator::DpmSolver2M})
    for (double cfg : {1.0, 2.0}) {
      int e1 = 0, e2 = 0, e3 = 0;
      const auto ref = sample<double>(false, integ, cfg, &e1);
      const auto fast = sample<double>(true, integ, cfg, &e2);
      const auto again = sample<double>(true, integ, cfg, &e3);
      INFO("integrator " << dit::integrator_name(integ) << " cfg " << cfg);
      CHECK(test::rel_error(fast, ref) < 1e-10);
      CHECK(fast == again);
      CHECK(e1 == e2);
      int f1 = 0, f2 = 0;
      CHECK(test::rel_error(sample<float>(true, integ, cfg, &f1), sample<float>(false, integ, cfg, &f2)) < 1e-4);
    }
}

TEST_CASE("prefix cache: errors", "[dit][cache]") {
  const auto c = cache_config(2);
  dit::Dit<Exec, float> m(c);
  using M = Mem;
  CHECK_THROWS_WITH((dit::make_dit_prefix_cache<float, M>(c, m.params(), 2, 3, 0)), Catch::Contains("split = 0"));
  CHECK_THROWS_WITH((dit::make_dit_prefix_cache<float, M>(c, m.params(), 2, 3, 8)), Catch::Contains("split = 8"));
  auto& cache = m.prefix_cache(2, 3, 3);  // 3 tokens: not whole levels
  View3<float, Mem> x0("x0", 2, 3, 3);
  Kokkos::View<int*, Mem> labels("labels", 2);
  CHECK_THROWS_WITH(m.fill_prefix(Exec(), x0, labels, cache), Catch::Contains("not the token count of whole levels"));
}
