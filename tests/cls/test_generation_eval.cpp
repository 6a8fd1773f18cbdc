// eval::generate_images and eval::score_images on tiny random models: counts, ranges, balanced labels,
// determinism per seed, joint vs progressive, levels; a set scored against itself has FD ~ 0 and SWD 0 and
// the classifier's own accuracy; layout and level errors.
#include <dcsldm/eval/generation_eval.hpp>
#include <dcsldm/cls/trainer.hpp>

#include "testing.hpp"
#include "tok_testing.hpp"

using namespace dcsldm;

namespace {

using Exec = Kokkos::DefaultExecutionSpace;

tok::TokenizerConfig tiny_tok() { return dcsldm::test::tiny_tokenizer_config(1); }

dit::DitConfig tiny_dit() {
  dit::DitConfig c;
  c.level_sizes = {1, 2};
  c.latent_channels = 3;
  c.width = 16;
  c.heads = 2;
  c.layers = 1;
  c.mlp_ratio = 2;
  c.freq_dim = 16;
  c.num_classes = 3;
  return c;
}

cls::ClassifierConfig tiny_cls() {
  cls::ClassifierConfig c;
  c.res = 8;
  c.conv1 = 2;
  c.conv2 = 3;
  c.hidden = 4;
  c.num_classes = 3;
  return c;
}

}  // namespace

TEST_CASE("generate_images: counts, ranges, labels, determinism, modes", "[eval][generation]") {
  Exec space;
  tok::Tokenizer<Exec, float> tk(tiny_tok());
  tk.init(space, 3);
  dit::Dit<Exec, float> dm(tiny_dit());
  dm.init(space, 4);
  dit::FlowSampler<Exec, float> sampler;
  eval::GenerateOptions o;
  o.n = 7;
  o.batch = 3;
  o.res = 8;
  o.sample.steps = 4;
  o.sample.cfg = 2.0;
  o.sample.seed = 11;
  const auto a = eval::generate_images(space, dm, tk, sampler, o);
  REQUIRE(a.images.size() == std::size_t(7 * 64));
  REQUIRE(a.labels.size() == 7u);
  for (int i = 0; i < 7; ++i) CHECK(a.labels[std::size_t(i)] == i % 3);
  float lo = 1, hi = 0;
  for (float v : a.images) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  CHECK(lo >= 0.0f);
  CHECK(hi <= 1.0f);
  CHECK(hi > lo);
  CHECK(a.evaluations == 3 * 4);  // three batches of four Euler steps
  const auto b = eval::generate_images(space, dm, tk, sampler, o);
  CHECK(a.images == b.images);
  // batches draw different noise: the first sample of batch 0 and of batch 1 (both label 0 / 0) differ
  CHECK(!std::equal(a.images.begin(), a.images.begin() + 64, a.images.begin() + 3 * 64));
  o.sample.seed = 12;
  const auto c = eval::generate_images(space, dm, tk, sampler, o);
  CHECK(a.images != c.images);
  // progressive and one level run and are deterministic
  o.progressive = true;
  const auto p1 = eval::generate_images(space, dm, tk, sampler, o);
  const auto p2 = eval::generate_images(space, dm, tk, sampler, o);
  CHECK(p1.images == p2.images);
  // stages override progressive: one stage per level is progressive, a single stage joint (c: same seed, joint)
  o.stages = {1, 2};
  CHECK(eval::generate_images(space, dm, tk, sampler, o).images == p1.images);
  o.progressive = false;
  o.stages = {2};
  CHECK(eval::generate_images(space, dm, tk, sampler, o).images == c.images);
  o.stages = {1};  // but 2 levels (all) are asked for
  CHECK_THROWS_WITH(eval::generate_images(space, dm, tk, sampler, o),
                    Catch::Contains("the last stage ends at level 1 but 2 levels"));
  o.stages = {};
  o.levels = 1;
  const auto l1 = eval::generate_images(space, dm, tk, sampler, o);
  CHECK(l1.images.size() == a.images.size());
  o.levels = 3;
  CHECK_THROWS_WITH(eval::generate_images(space, dm, tk, sampler, o), Catch::Contains("levels = 3"));
  auto other = tiny_dit();
  other.level_sizes = {1, 3};
  dit::Dit<Exec, float> dm2(other);
  o.levels = 0;
  CHECK_THROWS_WITH(eval::generate_images(space, dm2, tk, sampler, o), Catch::Contains("another layout"));
}

TEST_CASE("score_images: a set against itself, accuracy as the classifier's", "[eval][generation]") {
  Exec space;
  cls::Classifier<Exec, float> c(tiny_cls(), 5);
  c.init(space, 2);
  const int n = 40;
  std::vector<float> img(std::size_t(n) * 64);
  std::vector<int> lab(static_cast<std::size_t>(n));
  std::mt19937 g(3);
  std::uniform_real_distribution<float> u(0, 1);
  for (auto& v : img) v = u(g);
  for (int i = 0; i < n; ++i) lab[std::size_t(i)] = i % 3;
  eval::ReferenceSet ref;
  ref.images = img.data();
  ref.n = n;
  ref.stats = eval::feature_stats(space, c, img.data(), n);
  metrics::SwdOptions so;
  so.patches_per_image = 8;
  so.directions = 16;
  so.repeats = 1;
  const auto s = eval::score_images(space, c, img.data(), n, lab.data(), ref, so);
  CHECK(std::abs(s.fd) < 1e-6);
  CHECK(s.swd.mean == 0.0);
  CHECK(s.class_accuracy == Approx(cls::classifier_accuracy(space, c, img.data(), lab.data(), n)));
  // a brighter, noisier half differs
  std::vector<float> other(img);
  for (std::size_t i = 0; i < other.size(); ++i) other[i] = std::min(1.0f, 0.5f * other[i] * other[i]);
  const auto d = eval::score_images(space, c, other.data(), n, lab.data(), ref, so);
  CHECK(d.fd > 1e-3);
  CHECK(d.swd.mean > 1.0);
}
