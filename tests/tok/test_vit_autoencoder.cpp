// The conventional fixed-patch ViT autoencoder baseline: FD gradients of the whole model, patch layout, and
// parity with the PyTorch reference (scripts/torch_ref/vit_ae.py; fixtures by scripts/goldens/vit_ae.py).
#include <dcsldm/baseline/vit_autoencoder.hpp>

#include "testing.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>

using namespace dcsldm;

namespace {
using Exec = Kokkos::DefaultExecutionSpace;
using Mem = Exec::memory_space;

baseline::VitAeConfig tiny() {
  baseline::VitAeConfig c;
  c.res = 6;
  c.patch = 3;
  c.channels = 2;
  c.width = 8;
  c.heads = 2;
  c.layers = 1;
  c.mlp_ratio = 2;
  c.latent_tokens = 3;
  c.latent_channels = 2;
  return c;
}
}  // namespace

namespace {
void check_vit_ae_gradients(int latent_tokens) {
  auto c = tiny();
  c.latent_tokens = latent_tokens;
  const int B = 2, Z = c.latent_count();
  INFO("latent_tokens = " << latent_tokens);
  baseline::VitAutoencoder<Exec, double> m(c, B, optim::ArenaState::ParamsAndOptimizer);
  m.init(Exec(), 3);
  test::fill_uniform(m.arena().params, 5, -0.3, 0.3);
  View1<double, Mem> x("x", B * 6 * 6 * 2), y("y", B * 6 * 6 * 2), proj("p", B * 6 * 6 * 2);
  View3<double, Mem> z("z", B, Z, 2), zproj("zp", B, Z, 2), z2("z2", B, Z, 2);
  View1<double, Mem> y2("y2", B * 6 * 6 * 2);
  test::fill_uniform(x, 1, 0, 1);
  test::fill_uniform(proj, 2);
  test::fill_uniform(zproj, 4);
  // L = <y, proj> + <z, zproj>: the z term checks the extra-dz path too.
  auto loss = [&] {
    m.forward(Exec(), x.data(), z, y.data());
    Exec().fence();
    return test::dot(y, proj) + test::dot(z, zproj);
  };
  loss();
  optim::zero_grad(Exec(), m.arena());
  View1<double, Mem> dy("dy", proj.extent(0));
  Kokkos::deep_copy(dy, proj);
  m.backward(Exec(), dy.data(), zproj);
  View1<double, Mem> g("g", m.arena().grads.extent(0));
  Kokkos::deep_copy(g, m.arena().grads);
  for (const auto& s : m.arena().layout.slots())
    test::check_gradient(s.name.c_str(), Exec(), m.arena().flat(s, m.arena().params), m.arena().flat(s, g), loss, 1e-6,
                         2e-6, 6);
  // encode + decode == forward without noise, bit for bit
  loss();
  m.encode(Exec(), x.data(), z2);
  m.decode(Exec(), z2, y2.data());
  Exec().fence();
  CHECK(test::to_doubles(z2) == test::to_doubles(z));
  CHECK(test::to_doubles(y2) == test::to_doubles(y));
}
}  // namespace

namespace {
/// The same model file through both implementations: z = encode(x), y = decode(z), and the gradients of
/// L = sum(y * proj) w.r.t. every parameter (forward + backward as the trainer runs them).
template <class T>
void check_vit_ae_against_torch(const std::string& name) {
  Exec space;
  const test::Golden g("vit_ae_" + name);
  const std::string path = std::string(DCSLDM_TEST_DATA_DIR) + "/golden/vit_ae_" + name + ".model.safetensors";
  const auto cfg = baseline::VitAeConfig::from_metadata(io::SafeTensors::read(path).metadata(), path);
  REQUIRE(cfg.latent_tokens == int(g.meta_int("latent_tokens")));
  const auto x = g.view<T, Mem, 4>("x");
  const auto proj = g.view<T, Mem, 4>("proj");
  const int B = int(x.extent(0));
  baseline::VitAutoencoder<Exec, T> m(cfg, B, optim::ArenaState::ParamsAndOptimizer);
  optim::load_arena(path, m.arena(), optim::ArenaState::Params);
  // float: float accumulation and fast exp/tanh through two transformers (measured <= 2e-6).
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-10;
  INFO("case " << name << ", " << (std::is_same_v<T, float> ? "float" : "double"));
  View3<T, Mem> z("z", std::size_t(B), std::size_t(cfg.latent_count()), std::size_t(cfg.latent_channels)),
      dz0("dz0", std::size_t(B), std::size_t(cfg.latent_count()), std::size_t(cfg.latent_channels));
  View1<T, Mem> y("y", proj.size()), dy("dy", proj.size());
  m.encode(space, x.data(), z);
  m.decode(space, z, y.data());
  space.fence();
  CHECK(g.error(z, "z") <= tol);
  CHECK(g.error(y, "y") <= tol);
  optim::zero_grad(space, m.arena());
  m.forward(space, x.data(), z, y.data());
  Kokkos::deep_copy(dy, View1<T, Mem>(proj.data(), proj.size()));
  m.backward(space, dy.data(), dz0);
  space.fence();
  const auto& arena = m.arena();
  std::size_t compared = 0;
  for (const auto& s : arena.layout.slots()) {
    const std::string gname = "grad." + s.name;
    INFO("gradient " << gname);
    REQUIRE(g.file.contains(gname));
    const std::string kb = ".attn.k.bias";
    if (s.name.size() > kb.size() && s.name.compare(s.name.size() - kb.size(), kb.size(), kb) == 0) {
      // zero in exact arithmetic (softmax is shift-invariant per row): both sides hold rounding noise,
      // compared on the scale of the key weights' gradient
      double worst = 0, scale = 0;
      for (double v : test::to_doubles(arena.flat(s, arena.grads))) worst = std::max(worst, std::abs(v));
      for (double v : g.values("grad." + s.name.substr(0, s.name.size() - 4) + "weight"))
        scale = std::max(scale, std::abs(v));
      REQUIRE(scale > 0);
      CHECK(worst <= tol * scale);
    } else {
      CHECK(g.error(arena.flat(s, arena.grads), gname) <= tol);
    }
    ++compared;
  }
  std::size_t golden_grads = 0;
  for (const auto& n : g.file.names()) golden_grads += n.rfind("grad.", 0) == 0;
  CHECK(golden_grads == compared);
}
}  // namespace

TEST_CASE("vit autoencoder: matches the PyTorch reference (1D latent of 3 tokens; 2D latent)", "[baseline][golden]") {
  for (const char* name : {"latent1d", "latent2d"}) {
    check_vit_ae_against_torch<double>(name);
    check_vit_ae_against_torch<float>(name);
  }
}

TEST_CASE("vit autoencoder: whole-model gradients match finite differences", "[baseline][gradient]") {
  check_vit_ae_gradients(3);
}
TEST_CASE("vit autoencoder, 2D latent (one token per patch): gradients, encode/decode", "[baseline][gradient]") {
  check_vit_ae_gradients(0);
  auto c = tiny();
  c.latent_tokens = 0;
  CHECK(c.latent_count() == 4);
  baseline::VitAutoencoder<Exec, double> m(c, 1);
  CHECK_FALSE(m.arena().layout.contains("ae.latent"));
}

TEST_CASE("vit autoencoder: refuses a resolution that is not a multiple of the patch", "[baseline]") {
  auto c = tiny();
  c.res = 7;
  REQUIRE_THROWS_WITH(c.validate(), Catch::Contains("res = 7"));
}
