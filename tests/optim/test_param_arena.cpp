// optim/param_arena: layout placement (decayed first, aligned), slot Views alias the flat buffers,
// zero_grad, rng-based initialisers, safetensors save/load round trips (bit-identical, with and without
// AdamW state) and refused loads that leave every buffer unchanged with a message naming file, tensor
// and shapes.
#include <dcsldm/optim/param_arena.hpp>

#include "testing.hpp"

#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

using namespace dcsldm;
using namespace dcsldm::optim;
using test::ExecSpaces;

namespace {

std::string temp_dir() {
  const auto d = std::filesystem::temp_directory_path() / ("dcsldm_arena_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(d);
  return d.string();
}

ParamLayout make_layout() {
  ParamLayout l;
  l.add("bias", {5}, Decay::No);
  l.add("weight", {5, 3}, Decay::Yes);
  l.add("norm", {2, 1, 3}, Decay::No);
  l.add("w2", {2, 3, 2, 2}, Decay::Yes);
  l.add("empty", {0}, Decay::Yes);
  return l;
}

template <class T, class M>
std::vector<T> host_bits(const View1<T, M>& v) {
  auto h = compat::to_host(v);
  return std::vector<T>(h.data(), h.data() + h.extent(0));
}

/// Fills all four buffers with distinct values so that any modification is visible.
template <class ExecSpace, class T, class M>
void fill_all(const ParamArena<T, M>& a, std::uint64_t seed) {
  rng::fill_normal(ExecSpace(), a.params, seed, 0);
  if (a.has_optimizer_state()) {
    rng::fill_normal(ExecSpace(), a.grads, seed, 1);
    rng::fill_normal(ExecSpace(), a.m, seed, 2);
    rng::fill_uniform(ExecSpace(), a.v, seed, 3);
  }
  ExecSpace().fence();
}

void check_layout_placement() {
  ParamLayout l = make_layout();
  const TensorSlot early = l.add("late_bias", {3}, Decay::No);
  CHECK(early.offset == TensorSlot::unplaced);
  CHECK_THROWS_WITH(l.total(), Catch::Contains("dcsldm::ParamLayout") && Catch::Contains("before finalize()"));
  CHECK_THROWS_WITH(l.add("weight", {1}, Decay::No),
                    Catch::Contains("dcsldm::ParamLayout::add") && Catch::Contains("duplicate tensor name 'weight'"));
  CHECK_THROWS_WITH(l.add("r5", {1, 1, 1, 1, 1}, Decay::No),
                    Catch::Contains("tensor 'r5' has rank 5, expected 1..4"));
  CHECK_THROWS_WITH(l.add("neg", {2, -1}, Decay::No), Catch::Contains("tensor 'neg' has a negative extent -1"));
  l.finalize();
  // Decayed (declaration order) first: weight 15 -> [0, 15), w2 24 -> [16, 40), empty -> 48;
  // then bias [48, 53), norm [64, 70), late_bias [80, 83); total 96.
  CHECK(l.slot("weight").offset == 0);
  CHECK(l.slot("w2").offset == 16);
  CHECK(l.slot("empty").offset == 48);
  CHECK(l.n_decay() == 48);
  CHECK(l.slot("bias").offset == 48);
  CHECK(l.slot("norm").offset == 64);
  CHECK(l.slot("late_bias").offset == 80);
  CHECK(l.total() == 96);
  CHECK(l.n_params() == 5 + 15 + 6 + 24 + 0 + 3);
  for (const auto& s : l.slots()) {
    CHECK(s.offset % ParamLayout::alignment == 0);
    CHECK((s.decay == Decay::Yes) == (s.offset + s.numel() <= l.n_decay()));
  }
  CHECK(l.resolve(early).offset == 80);
  CHECK_THROWS_WITH(l.add("x", {1}, Decay::No), Catch::Contains("layout is finalized; cannot add 'x'"));
  CHECK_THROWS_WITH(l.slot("nope"), Catch::Contains("no tensor named 'nope'"));
  TensorSlot foreign = early;
  foreign.name = "other";
  CHECK_THROWS_WITH(l.resolve(foreign), Catch::Contains("slot 'other' (index 5) does not belong to this layout"));
  ParamLayout none;
  none.finalize();
  CHECK(none.total() == 0);
  CHECK(none.n_decay() == 0);
}

template <class ExecSpace, class T>
void check_views_alias() {
  using M = typename ExecSpace::memory_space;
  ParamLayout l = make_layout();
  const TensorSlot w2_unplaced = l.slot("w2");
  l.finalize();
  ParamArena<T, M> a(l);
  CHECK(a.params.extent(0) == 96 - 16);  // no late_bias here: total 80
  auto w = a.view2(a.layout.slot("weight"), a.params);
  auto w2 = a.view4(w2_unplaced, a.grads);  // a slot taken before finalize() resolves too
  auto n = a.template view<3>(a.layout.slot("norm"), a.m);
  CHECK(w.extent(0) == 5);
  CHECK(w.extent(1) == 3);
  CHECK(w2.extent(3) == 2);
  CHECK(n.data() == a.m.data() + 64);
  CHECK(w2.data() == a.grads.data() + 16);
  Kokkos::deep_copy(w, T(2));
  Kokkos::deep_copy(w2, T(3));
  const auto p = host_bits(a.params), g = host_bits(a.grads);
  for (std::size_t i = 0; i < p.size(); ++i) {
    CHECK(p[i] == (i < 15 ? T(2) : T(0)));
    CHECK(g[i] == (i >= 16 && i < 40 ? T(3) : T(0)));
  }
  CHECK_THROWS_WITH(a.view2(a.layout.slot("norm"), a.params),
                    Catch::Contains("tensor 'norm' has rank 3, requested rank 2"));
  ParamArena<T, M> ema(l, ArenaState::Params);
  CHECK(!ema.has_optimizer_state());
  CHECK_THROWS_WITH(ema.view1(ema.layout.slot("bias"), ema.grads),
                    Catch::Contains("dcsldm::ParamArena::view") && Catch::Contains("has 0 elements, the layout 80"));
  ParamLayout raw;
  raw.add("x", {1}, Decay::No);
  CHECK_THROWS_WITH((ParamArena<T, M>(raw)), Catch::Contains("layout must be finalized"));
}

template <class ExecSpace, class T>
void check_zero_grad_and_init() {
  using M = typename ExecSpace::memory_space;
  ParamLayout l = make_layout();
  l.finalize();
  ParamArena<T, M> a(l);
  fill_all<ExecSpace>(a, 5);
  zero_grad(ExecSpace(), a);
  for (T x : host_bits(a.grads)) CHECK(x == T(0));

  Kokkos::deep_copy(a.params, T(-7));
  const TensorSlot& w = a.layout.slot("weight");
  init_normal(ExecSpace(), a, w, 123, 0.0, 0.02);
  init_ones(ExecSpace(), a, a.layout.slot("norm"));
  init_zeros(ExecSpace(), a, a.layout.slot("bias"));
  init_uniform(ExecSpace(), a, a.layout.slot("w2"), 123, -0.5, 0.5);
  View1<T, M> want("want", w.numel());
  rng::fill_normal(ExecSpace(), want, 123, rng::stream_of("weight"), 0, 0.02);
  CHECK(test::to_doubles(a.flat(w, a.params)) == test::to_doubles(want));
  const auto p = host_bits(a.params);
  for (std::size_t i = 16; i < 40; ++i) CHECK((p[i] >= T(-0.5) && p[i] <= T(0.5)));
  for (std::size_t i = 48; i < 53; ++i) CHECK(p[i] == T(0));
  for (std::size_t i = 64; i < 70; ++i) CHECK(p[i] == T(1));
  for (std::size_t i : {15, 40, 47, 53, 63, 70, 79}) CHECK(p[i] == T(-7));  // padding untouched
  // The same seed and name give the same values in another layout (stream from the name).
  ParamLayout l2;
  l2.add("other", {7}, Decay::Yes);
  l2.add("weight", {5, 3}, Decay::Yes);
  l2.finalize();
  ParamArena<T, M> b(l2);
  init_normal(ExecSpace(), b, b.layout.slot("weight"), 123, 0.0, 0.02);
  CHECK(test::to_doubles(b.flat(b.layout.slot("weight"), b.params)) == test::to_doubles(want));
}

template <class ExecSpace, class T>
void check_round_trip() {
  using M = typename ExecSpace::memory_space;
  const std::string dir = temp_dir();
  ParamLayout l = make_layout();
  l.finalize();
  ParamArena<T, M> a(l), b(l);
  fill_all<ExecSpace>(a, 1);
  fill_all<ExecSpace>(b, 2);
  // Parameters only: b's params become a's, bit for bit; b's optimizer state is untouched.
  const std::string p1 = dir + "/params.safetensors";
  save_arena(p1, a, ArenaState::Params, 0, {{"config", "{\"width\": 3}"}});
  const auto bm = host_bits(b.m), bv = host_bits(b.v);
  CHECK(load_arena(p1, b) == 0);
  // Padding keeps b's values: compare the tensors.
  for (const auto& s : l.slots()) CHECK(test::to_doubles(a.flat(s, a.params)) == test::to_doubles(b.flat(s, b.params)));
  CHECK(host_bits(b.m) == bm);
  CHECK(host_bits(b.v) == bv);
  const auto f = io::SafeTensors::read(p1);
  CHECK(f.meta("config") == "{\"width\": 3}");
  CHECK(f.names() == std::vector<std::string>{"bias", "empty", "norm", "w2", "weight"});
  CHECK(f.info("w2").shape == std::vector<std::int64_t>{2, 3, 2, 2});
  CHECK(f.info("w2").dtype == io::dtype_of<T>());
  // With AdamW state and the step.
  const std::string p2 = dir + "/ckpt.safetensors";
  save_arena(p2, a, ArenaState::ParamsAndOptimizer, 1234);
  ParamArena<T, M> c(l);
  fill_all<ExecSpace>(c, 3);
  CHECK(load_arena(p2, c, ArenaState::ParamsAndOptimizer) == 1234);
  for (const auto& s : l.slots()) {
    CHECK(test::to_doubles(a.flat(s, a.params)) == test::to_doubles(c.flat(s, c.params)));
    CHECK(test::to_doubles(a.flat(s, a.m)) == test::to_doubles(c.flat(s, c.m)));
    CHECK(test::to_doubles(a.flat(s, a.v)) == test::to_doubles(c.flat(s, c.v)));
  }
  CHECK(io::SafeTensors::read(p2).contains("adam_m.weight"));
  CHECK(io::SafeTensors::read(p2).contains("adam_v.norm"));
  // A params-only arena (EMA copy) loads the parameters of a full checkpoint.
  ParamArena<T, M> e(l, ArenaState::Params);
  CHECK(load_arena(p2, e) == 0);
  for (const auto& s : l.slots()) CHECK(test::to_doubles(a.flat(s, a.params)) == test::to_doubles(e.flat(s, e.params)));
  CHECK_THROWS_WITH(save_arena(p2, e, ArenaState::ParamsAndOptimizer),
                    Catch::Contains("dcsldm::save_arena") && Catch::Contains("the arena has none"));
  // No temporary file is left next to the checkpoints.
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    ++files;
    CHECK(entry.path().filename().string().find(".tmp") == std::string::npos);
  }
  CHECK(files == 2);
  std::filesystem::remove_all(dir);
}

/// A float checkpoint loads into a double arena (and back) by conversion.
template <class ExecSpace>
void check_dtype_conversion() {
  using M = typename ExecSpace::memory_space;
  const std::string dir = temp_dir();
  ParamLayout l = make_layout();
  l.finalize();
  ParamArena<float, M> a(l);
  ParamArena<double, M> d(l);
  fill_all<ExecSpace>(a, 9);
  save_arena(dir + "/f.safetensors", a);
  load_arena(dir + "/f.safetensors", d);
  for (const auto& s : l.slots()) CHECK(test::to_doubles(a.flat(s, a.params)) == test::to_doubles(d.flat(s, d.params)));
  std::filesystem::remove_all(dir);
}

template <class ExecSpace, class T>
void check_refused_loads() {
  using M = typename ExecSpace::memory_space;
  const std::string dir = temp_dir();
  ParamLayout l = make_layout();
  l.finalize();
  ParamArena<T, M> a(l);
  fill_all<ExecSpace>(a, 4);
  const auto p0 = host_bits(a.params), g0 = host_bits(a.grads), m0 = host_bits(a.m), v0 = host_bits(a.v);
  auto unchanged = [&]() {
    CHECK(host_bits(a.params) == p0);
    CHECK(host_bits(a.grads) == g0);
    CHECK(host_bits(a.m) == m0);
    CHECK(host_bits(a.v) == v0);
  };

  // A file that lacks "w2" (all other tensors present and valid, so a partial copy would show).
  {
    ParamLayout lm;
    lm.add("bias", {5}, Decay::No);
    lm.add("weight", {5, 3}, Decay::Yes);
    lm.add("norm", {2, 1, 3}, Decay::No);
    lm.add("empty", {0}, Decay::Yes);
    lm.finalize();
    ParamArena<T, M> src(lm);
    fill_all<ExecSpace>(src, 8);
    const std::string p = dir + "/missing.safetensors";
    save_arena(p, src, ArenaState::ParamsAndOptimizer, 7);
    CHECK_THROWS_WITH(load_arena(p, a), Catch::Contains("dcsldm::load_arena") && Catch::Contains(p) &&
                                            Catch::Contains("has no tensor 'w2'") &&
                                            Catch::Contains("expected shape (2, 3, 2, 2)"));
    unchanged();
  }
  // "norm" with a different shape (same element count: must still be refused).
  {
    ParamLayout ls;
    ls.add("bias", {5}, Decay::No);
    ls.add("weight", {5, 3}, Decay::Yes);
    ls.add("norm", {2, 3}, Decay::No);
    ls.add("w2", {2, 3, 2, 2}, Decay::Yes);
    ls.add("empty", {0}, Decay::Yes);
    ls.finalize();
    ParamArena<T, M> src(ls);
    fill_all<ExecSpace>(src, 8);
    const std::string p = dir + "/shape.safetensors";
    save_arena(p, src, ArenaState::ParamsAndOptimizer, 7);
    CHECK_THROWS_WITH(load_arena(p, a), Catch::Contains(p) && Catch::Contains("tensor 'norm'") &&
                                            Catch::Contains("file shape (2, 3) != layout shape (2, 1, 3)"));
    unchanged();
    CHECK_THROWS_WITH(load_arena(p, a, ArenaState::ParamsAndOptimizer),
                      Catch::Contains("tensor 'norm'") && Catch::Contains("(2, 3) != layout shape (2, 1, 3)"));
    unchanged();
  }
  // Optimizer state requested from a params-only file: params are valid but nothing is copied.
  {
    ParamArena<T, M> src(l);
    fill_all<ExecSpace>(src, 8);
    const std::string p = dir + "/params_only.safetensors";
    save_arena(p, src);
    CHECK_THROWS_WITH(load_arena(p, a, ArenaState::ParamsAndOptimizer),
                      Catch::Contains(p) && Catch::Contains("has no tensor 'adam_m.bias'"));
    unchanged();
  }
  // Moments present but the step counter missing; then an integer dtype for a parameter.
  {
    ParamArena<T, M> src(l);
    fill_all<ExecSpace>(src, 8);
    io::SafeTensorsWriter w;
    for (const auto& s : l.slots())
      for (const char* prefix : {"", "adam_m.", "adam_v."}) {
        const auto& buf = prefix[0] == 0 ? src.params : prefix[5] == 'm' ? src.m : src.v;
        auto h = compat::to_host(src.flat(s, buf));
        w.add_bytes(prefix + s.name, io::dtype_of<T>(), s.shape, h.data(), s.numel() * sizeof(T));
      }
    const std::string p = dir + "/nostep.safetensors";
    w.write(p);
    CHECK_THROWS_WITH(load_arena(p, a, ArenaState::ParamsAndOptimizer),
                      Catch::Contains(p) && Catch::Contains("has no tensor 'adam_step'"));
    unchanged();
    // An integer tensor where a parameter is expected.
    io::SafeTensorsWriter wr;
    for (const auto& s : l.slots()) {
      if (s.name == "norm") {
        std::vector<std::int32_t> k(6, 1);
        wr.add_bytes(s.name, io::DType::I32, s.shape, k.data(), 24);
      } else {
        auto h = compat::to_host(src.flat(s, src.params));
        wr.add_bytes(s.name, io::dtype_of<T>(), s.shape, h.data(), s.numel() * sizeof(T));
      }
    }
    const std::string pi = dir + "/int.safetensors";
    wr.write(pi);
    CHECK_THROWS_WITH(load_arena(pi, a),
                      Catch::Contains(pi) && Catch::Contains("tensor 'norm'") && Catch::Contains("dtype I32"));
    unchanged();
  }
  // Not a file at all.
  CHECK_THROWS_WITH(load_arena(dir + "/absent.safetensors", a), Catch::Contains("absent.safetensors"));
  unchanged();
  std::filesystem::remove_all(dir);
}

}  // namespace

TEST_CASE("ParamLayout places decayed tensors first, aligned", "[optim][arena]") { check_layout_placement(); }

TEMPLATE_LIST_TEST_CASE("ParamArena slot Views alias the flat buffers", "[optim][arena]", ExecSpaces) {
  check_views_alias<TestType, float>();
  check_views_alias<TestType, double>();
}

TEMPLATE_LIST_TEST_CASE("ParamArena zero_grad and initialisers", "[optim][arena]", ExecSpaces) {
  check_zero_grad_and_init<TestType, float>();
  check_zero_grad_and_init<TestType, double>();
}

TEMPLATE_LIST_TEST_CASE("ParamArena save/load round trip is bit-identical", "[optim][arena]", ExecSpaces) {
  check_round_trip<TestType, float>();
  check_round_trip<TestType, double>();
  check_dtype_conversion<TestType>();
}

TEMPLATE_LIST_TEST_CASE("ParamArena refuses bad checkpoints and stays unchanged", "[optim][arena]", ExecSpaces) {
  check_refused_loads<TestType, float>();
  check_refused_loads<TestType, double>();
}
