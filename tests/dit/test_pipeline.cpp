// dcsldm::Pipeline on tiny random models: shapes, determinism, buffers reused per shape, the same latent
// decoded at several sizes, progressive previews and cancellation (per level and per step), errors.
#include <dcsldm/pipeline.hpp>

#include "testing.hpp"
#include "tok_testing.hpp"

using namespace dcsldm;

namespace {

using Exec = Kokkos::DefaultExecutionSpace;
using Mem = Exec::memory_space;

Pipeline<Exec, float> tiny_pipeline() {
  const tok::TokenizerConfig t = dcsldm::test::tiny_tokenizer_config(1);
  dit::DitConfig d;
  d.level_sizes = {1, 2};
  d.latent_channels = 3;
  d.width = 16;
  d.heads = 2;
  d.layers = 1;
  d.mlp_ratio = 2;
  d.freq_dim = 16;
  d.num_classes = 3;
  tok::Tokenizer<Exec, float> tk(t);
  tk.init(Exec(), 1);
  dit::Dit<Exec, float> dm(d);
  dm.init(Exec(), 2);
  return Pipeline<Exec, float>(std::move(tk), std::move(dm));
}

}  // namespace

TEST_CASE("pipeline: generate, determinism, buffers, any resolution", "[pipeline]") {
  Exec space;
  auto pipe = tiny_pipeline();
  GenerateRequest r;
  r.labels = {0, 1, 2, 3};  // 3 = unconditional
  r.height = 8;
  r.width = 12;
  r.steps = 3;
  r.sampler = dit::Integrator::Heun;
  r.seed = 5;
  REQUIRE(pipe.generate(space, r));
  const auto y1 = pipe.output();
  CHECK(y1.extent(0) == 4);
  CHECK(y1.extent(1) == 1);
  CHECK(y1.extent(2) == 8);
  CHECK(y1.extent(3) == 12);
  CHECK(y1.extent(4) == 1);
  const auto v1 = test::to_doubles(y1);
  REQUIRE(pipe.generate(space, r));
  CHECK(pipe.output().data() == y1.data());  // the same buffer
  CHECK(test::to_doubles(pipe.output()) == v1);
  // the same latent at another size, through decode()
  tok::View5<float, Mem> big("big", 4, 1, 16, 24, 1);
  pipe.decode(space, pipe.latent(4), pipe.levels(), big);
  space.fence();
  double s = 0;
  for (double v : test::to_doubles(big)) s += std::abs(v);
  CHECK(s > 0);
  // one level is a different (coarser) image
  r.levels = 1;
  REQUIRE(pipe.generate(space, r));
  CHECK(test::to_doubles(pipe.output()) != v1);
  // another seed differs
  r.levels = 0;
  r.seed = 6;
  REQUIRE(pipe.generate(space, r));
  CHECK(test::to_doubles(pipe.output()) != v1);
}

TEST_CASE("pipeline: progressive previews, cancellation", "[pipeline]") {
  Exec space;
  auto pipe = tiny_pipeline();
  GenerateRequest r;
  r.labels = {1, 2};
  r.height = r.width = 6;
  r.steps = 2;
  r.progressive = true;
  std::vector<int> seen;
  GenerateCallbacks<Exec, float> cb;
  cb.on_level = [&](int l, const tok::View5<float, Mem>& p) {
    seen.push_back(l);
    CHECK(p.extent(2) == 6);
    return true;
  };
  REQUIRE(pipe.generate(space, r, cb));
  CHECK(seen == std::vector<int>{1, 2});
  const auto full = test::to_doubles(pipe.output());
  seen.clear();
  cb.on_level = [&](int l, const tok::View5<float, Mem>&) {
    seen.push_back(l);
    return l < 1;  // stop after level 1
  };
  CHECK_FALSE(pipe.generate(space, r, cb));
  CHECK(seen == std::vector<int>{1});
  int steps = 0;
  cb.on_level = {};
  cb.on_step = [&](int, int, int) { return ++steps < 3; };  // cancel in level 2's first step... third step overall
  CHECK_FALSE(pipe.generate(space, r, cb));
  CHECK(steps == 3);
  cb.on_step = {};
  REQUIRE(pipe.generate(space, r, cb));
  CHECK(test::to_doubles(pipe.output()) == full);  // cancelled runs leave nothing behind
  // Stages: one per level is progressive, a single one is joint; previews after each stage.
  r.progressive = false;
  REQUIRE(pipe.generate(space, r));
  const auto joint = test::to_doubles(pipe.output());
  CHECK(joint != full);
  r.stages = {2};
  REQUIRE(pipe.generate(space, r));
  CHECK(test::to_doubles(pipe.output()) == joint);
  r.stages = {1, 2};
  seen.clear();
  cb.on_level = [&](int l, const tok::View5<float, Mem>&) {
    seen.push_back(l);
    return true;
  };
  REQUIRE(pipe.generate(space, r, cb));
  CHECK(test::to_doubles(pipe.output()) == full);
  CHECK(seen == std::vector<int>{1, 2});
  // Refusing after the last stage is a cancellation too.
  cb.on_level = [](int, const tok::View5<float, Mem>&) { return false; };
  r.stages = {2};
  CHECK_FALSE(pipe.generate(space, r, cb));
}

TEST_CASE("pipeline: errors name the problem", "[pipeline]") {
  Exec space;
  auto pipe = tiny_pipeline();
  GenerateRequest r;
  r.labels = {4};
  CHECK_THROWS_WITH(pipe.generate(space, r), Catch::Contains("label 4 (sample 0)"));
  r.labels = {};
  CHECK_THROWS_WITH(pipe.generate(space, r), Catch::Contains("no labels"));
  r.labels = {0};
  r.levels = 3;
  CHECK_THROWS_WITH(pipe.generate(space, r), Catch::Contains("levels = 3"));
  r.levels = 0;
  r.stages = {1};
  CHECK_THROWS_WITH(pipe.generate(space, r), Catch::Contains("the last stage ends at level 1 but levels = 0"));
  r.stages = {};
  r.height = 0;
  CHECK_THROWS_WITH(pipe.generate(space, r), Catch::Contains("not a valid size"));
  using P = Pipeline<Exec, float>;
  CHECK_THROWS_WITH(P::load("/nonexistent/tok.safetensors", "/nonexistent/dit.safetensors"),
                    Catch::Contains("/nonexistent/tok.safetensors"));
}
