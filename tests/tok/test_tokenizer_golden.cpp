// DCS-Tok model against the PyTorch reference (scripts/torch_ref/dcs_tok.py; fixtures written by
// scripts/goldens/tokenizer.py): the same model file is loaded by both, and the latent, the decodes at every
// level (at another output size, non-integer patch sizes, image and video) and the gradients of
// L = sum(y * proj) w.r.t. every parameter (through decode and encode) are compared.
#include <dcsldm/tok/model.hpp>

#include "testing.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>
#include <type_traits>

using namespace dcsldm;

namespace {

using Exec = Kokkos::DefaultExecutionSpace;
using Mem = Exec::memory_space;

/// Relative tolerance against the float64 reference through the whole model (two transformers, two
/// pixel attentions, MLPs). Measured: double <= 3e-15, float <= 2e-6 (float accumulation, fast exp/tanh
/// in GELU).
template <class T>
constexpr double model_tol() {
  return std::is_same_v<T, float> ? 1e-5 : 1e-10;
}

inline double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double a : v) m = std::max(m, std::abs(a));
  return m;
}

template <class T>
tok::View5<T, Mem> golden5(const test::Golden& g, const std::string& name) {
  const auto s = g.shape(name);
  REQUIRE(s.size() == 5);
  tok::View5<T, Mem> v(name, std::size_t(s[0]), std::size_t(s[1]), std::size_t(s[2]), std::size_t(s[3]),
                       std::size_t(s[4]));
  g.file.load(name, v);
  return v;
}

template <class T>
void check_against_torch(const std::string& name) {
  Exec space;
  const test::Golden g("tokenizer_" + name);
  const std::string path = std::string(DCSLDM_TEST_DATA_DIR) + "/golden/tokenizer_" + name + ".model.safetensors";
  auto model = tok::Tokenizer<Exec, T>::load(path, optim::ArenaState::ParamsAndOptimizer);
  const auto& cfg = model.config();
  const double tol = model_tol<T>();
  const double fps_in = g.meta_double("fps_in"), fps_out = g.meta_double("fps_out");
  const int levels = int(g.meta_int("levels")), grad_m = int(g.meta_int("grad_m"));
  REQUIRE(levels == cfg.levels());
  const auto x = golden5<T>(g, "x");
  const auto proj = golden5<T>(g, "proj");
  const std::size_t B = x.extent(0), N = std::size_t(cfg.latent_tokens()), lc = std::size_t(cfg.latent_channels);
  View3<T, Mem> z("z", B, N, lc), dz("dz", B, N, lc);
  tok::View5<T, Mem> y("y", proj.extent(0), proj.extent(1), proj.extent(2), proj.extent(3), proj.extent(4));
  INFO("case " << name << ", " << (std::is_same_v<T, float> ? "float" : "double"));

  // Inference path: Tokenizer::encode / decode (plans built on first use).
  model.encode(space, x, z, fps_in);
  space.fence();
  const double ez = g.error(z, "z");
  CHECK(ez <= tol);
  for (int m = 1; m <= levels; ++m) {
    model.decode(space, z, m, y, fps_out);
    space.fence();
    const double ey = g.error(y, "y" + std::to_string(m));
    INFO("decode with m = " << m);
    CHECK(ey <= tol);
  }

  // Training path: encode -> decode(grad_m) -> backward with dy = proj, as the trainer runs it.
  const auto gin = model.grid(int(x.extent(1)), int(x.extent(2)), int(x.extent(3)), fps_in);
  const auto gout = model.grid(int(y.extent(1)), int(y.extent(2)), int(y.extent(3)), fps_out);
  optim::zero_grad(space, model.arena());
  const auto& ep = model.encode_plan(space, int(B), gin, true);
  const auto& dp = model.decode_plan(space, int(B), gout, grad_m, true);
  tok::encode_forward(space, x, model.params(), cfg, z, ep);
  tok::decode_forward(space, z, model.params(), cfg, y, dp);
  tok::decode_backward(space, proj, model.params(), model.grads(), cfg, dp, dz);
  tok::encode_backward(space, dz, x, model.params(), model.grads(), cfg, ep);
  space.fence();
  CHECK(g.error(y, "y" + std::to_string(grad_m)) <= tol);
  const auto& arena = model.arena();
  std::size_t compared = 0;
  double worst = 0;
  std::string worst_name;
  for (const auto& s : arena.layout.slots()) {
    const std::string gname = "grad." + s.name;
    INFO("gradient " << gname << " (m = " << grad_m << ")");
    REQUIRE(g.file.contains(gname));
    double e = 0;
    const std::string kb = ".attn.k.bias";
    if (s.name.size() > kb.size() && s.name.compare(s.name.size() - kb.size(), kb.size(), kb) == 0) {
      // dL/d(key bias) is zero in exact arithmetic (q.b_k is the same for every key of a softmax row), so
      // both sides hold rounding noise: compared absolutely, on the scale of the key weights' gradient.
      const std::string wname = "grad." + s.name.substr(0, s.name.size() - 4) + "weight";
      const double scale = max_abs(g.values(wname));
      REQUIRE(scale > 0);
      CHECK(max_abs(g.values(gname)) <= 1e-12 * scale);  // the reference's noise (float64)
      e = max_abs(test::to_doubles(arena.flat(s, arena.grads))) / scale;
    } else {
      e = g.error(arena.flat(s, arena.grads), gname);
    }
    CHECK(e <= tol);
    if (e > worst) {
      worst = e;
      worst_name = s.name;
    }
    ++compared;
  }
  INFO("largest gradient error " << worst << " (" << worst_name << ")");
  CHECK(worst <= tol);
  // Every parameter of the file has a golden gradient and vice versa.
  std::size_t golden_grads = 0;
  for (const auto& n : g.file.names()) golden_grads += n.rfind("grad.", 0) == 0;
  CHECK(golden_grads == compared);
}

}  // namespace

TEST_CASE("tokenizer: matches the PyTorch reference on an image (5x7 -> 6x9, 2 queries)", "[tok][golden]") {
  check_against_torch<double>("image");
  check_against_torch<float>("image");
}

TEST_CASE("tokenizer: matches the PyTorch reference on a video (4 frames at 4 fps -> 2 at 2 fps, 1 query)",
          "[tok][golden]") {
  check_against_torch<double>("video");
  check_against_torch<float>("video");
}

TEST_CASE("tokenizer: matches the PyTorch reference with the level-count embedding (5x7 -> 6x9)", "[tok][golden]") {
  check_against_torch<double>("image_level_count");
  check_against_torch<float>("image_level_count");
}
