// The conventional fixed-patch ViT autoencoder baseline: FD gradients of the whole model, patch layout.
#include <dcsldm/baseline/vit_autoencoder.hpp>

#include "testing.hpp"

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
