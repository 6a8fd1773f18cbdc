// Activations: GELU (erf, tanh), fused bias+GELU, SiLU, SwiGLU gate. PyTorch parity forward and backward,
// finite-difference gradients, sizes 0/1/odd, += on the bias gradient, errors and the name table.
#include <dcsldm/nn/activations.hpp>

#include "testing.hpp"

using namespace dcsldm;
using test::ExecSpaces;

namespace {

template <class ExecSpace, class T>
void check_activations_golden() {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  test::Golden g("activations");
  auto x = g.view<T, Mem, 2>("x");
  auto b = g.view<T, Mem, 1>("b");
  auto dy = g.view<T, Mem, 2>("dy");
  View2<T, Mem> y("y", x.extent(0), x.extent(1)), dx("dx", x.extent(0), x.extent(1));
  View1<T, Mem> db("db", b.extent(0));
  const double tol = test::parity_tol<T>();
  for (nn::GeluKind kind : {nn::GeluKind::Erf, nn::GeluKind::Tanh}) {
    const std::string k = nn::gelu_kind_name(kind);
    INFO("gelu approximate=" << k);
    nn::gelu_forward(space, x, kind, y);
    nn::gelu_backward(space, dy, x, kind, dx);
    CHECK(g.error(y, "gelu_" + k + "_y") < tol);
    CHECK(g.error(dx, "gelu_" + k + "_dx") < tol);
    Kokkos::deep_copy(db, T(0));
    nn::bias_gelu_forward(space, x, b, kind, y);
    nn::bias_gelu_backward(space, dy, x, b, db, kind, dx);
    CHECK(g.error(y, "bias_gelu_" + k + "_y") < tol);
    CHECK(g.error(dx, "bias_gelu_" + k + "_dx") < tol);
    CHECK(g.error(db, "bias_gelu_" + k + "_db") < tol);
    // The bias gradient accumulates; dx is overwritten.
    nn::bias_gelu_backward(space, dy, x, b, db, kind, dx);
    auto twice = g.values("bias_gelu_" + k + "_db");
    for (auto& v : twice) v *= 2;
    CHECK(test::rel_error(test::to_doubles(db), twice) < tol);
    CHECK(g.error(dx, "bias_gelu_" + k + "_dx") < tol);
  }
  nn::silu_forward(space, x, y);
  nn::silu_backward(space, dy, x, dx);
  CHECK(g.error(y, "silu_y") < tol);
  CHECK(g.error(dx, "silu_dx") < tol);

  auto xs = g.view<T, Mem, 2>("swiglu_x");
  auto dys = g.view<T, Mem, 2>("swiglu_dy");
  View2<T, Mem> ys("ys", dys.extent(0), dys.extent(1)), dxs("dxs", xs.extent(0), xs.extent(1));
  nn::swiglu_forward(space, xs, ys);
  nn::swiglu_backward(space, dys, xs, dxs);
  CHECK(g.error(ys, "swiglu_y") < tol);
  CHECK(g.error(dxs, "swiglu_dx") < tol);
}

enum class Act { GeluErf, GeluTanh, Silu };

template <class ExecSpace>
void run_act(const ExecSpace& space, Act a, const View2<double, typename ExecSpace::memory_space>& x,
             const View2<double, typename ExecSpace::memory_space>& y) {
  if (a == Act::Silu)
    nn::silu_forward(space, x, y);
  else
    nn::gelu_forward(space, x, a == Act::GeluErf ? nn::GeluKind::Erf : nn::GeluKind::Tanh, y);
}

template <class ExecSpace>
void check_elementwise_gradients(int m, int n) {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  View2<double, Mem> x("x", m, n), y("y", m, n), dx("dx", m, n), proj("proj", m, n);
  View1<double, Mem> b("b", n), db("db", n);
  test::fill_uniform(x, 101, -3, 3);
  test::fill_uniform(proj, 102);
  test::fill_uniform(b, 103);
  for (Act a : {Act::GeluErf, Act::GeluTanh, Act::Silu}) {
    INFO("activation " << int(a) << " m=" << m << " n=" << n);
    if (a == Act::Silu)
      nn::silu_backward(space, proj, x, dx);
    else
      nn::gelu_backward(space, proj, x, a == Act::GeluErf ? nn::GeluKind::Erf : nn::GeluKind::Tanh, dx);
    test::check_gradient("activation dx", space, x, dx, [&] {
      run_act(space, a, x, y);
      return test::dot(y, proj);
    });
  }
  for (nn::GeluKind kind : {nn::GeluKind::Erf, nn::GeluKind::Tanh}) {
    Kokkos::deep_copy(db, 0.0);
    nn::bias_gelu_backward(space, proj, x, b, db, kind, dx);
    auto loss = [&] {
      nn::bias_gelu_forward(space, x, b, kind, y);
      return test::dot(y, proj);
    };
    test::check_gradient("bias_gelu dx", space, x, dx, loss);
    test::check_gradient("bias_gelu db", space, b, db, loss);
  }
  // SwiGLU on (m, 2n) -> (m, n).
  View2<double, Mem> xs("xs", m, 2 * n), dxs("dxs", m, 2 * n);
  test::fill_uniform(xs, 104, -3, 3);
  nn::swiglu_backward(space, proj, xs, dxs);
  test::check_gradient("swiglu dx", space, xs, dxs, [&] {
    nn::swiglu_forward(space, xs, y);
    return test::dot(y, proj);
  });
}

template <class ExecSpace>
void check_activation_errors() {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  View2<float, Mem> x("x", 3, 4), y("y", 3, 5), h("h", 3, 3);
  View1<float, Mem> b("b", 5);
  CHECK_THROWS_WITH(nn::gelu_forward(space, x, nn::GeluKind::Erf, y),
                    Catch::Contains("dcsldm::gelu_forward") && Catch::Contains("(3, 4)") && Catch::Contains("(3, 5)"));
  CHECK_THROWS_WITH(nn::bias_gelu_forward(space, x, b, nn::GeluKind::Tanh, x),
                    Catch::Contains("dcsldm::bias_gelu_forward") && Catch::Contains("b.extent(0) = 5"));
  CHECK_THROWS_WITH(nn::swiglu_forward(space, x, h),
                    Catch::Contains("dcsldm::swiglu_forward") && Catch::Contains("expected x (M, 2H)"));
  CHECK_THROWS_WITH(nn::gelu_kind_from_name("exact"),
                    Catch::Contains("dcsldm::gelu_kind_from_name") && Catch::Contains("'exact'"));
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("activations match PyTorch", "[attention][activations]", ExecSpaces) {
  check_activations_golden<TestType, float>();
  check_activations_golden<TestType, double>();
}
TEMPLATE_LIST_TEST_CASE("activation gradients match finite differences", "[attention][activations][grad]", ExecSpaces) {
  check_elementwise_gradients<TestType>(3, 5);
  check_elementwise_gradients<TestType>(1, 1);
  check_elementwise_gradients<TestType>(0, 4);
}
TEMPLATE_LIST_TEST_CASE("activation errors", "[attention][activations]", ExecSpaces) {
  check_activation_errors<TestType>();
}
TEST_CASE("gelu kind name table maps to torch's approximate", "[attention][activations]") {
  CHECK(std::string(nn::gelu_kind_name(nn::GeluKind::Erf)) == "none");
  CHECK(std::string(nn::gelu_kind_name(nn::GeluKind::Tanh)) == "tanh");
  CHECK(nn::gelu_kind_from_name("none") == nn::GeluKind::Erf);
  CHECK(nn::gelu_kind_from_name("tanh") == nn::GeluKind::Tanh);
}

#if defined(__AVX512F__)
// The host rows' tanh-GELU on 16 lanes (the sigmoid form): value and derivative on every lane against the
// tanh formula in double, over [-12, 12] and at the extremes (finite, no NaN, the right limits).
TEST_CASE("gelu_tanh_avx512: value and derivative on every lane against the double formula", "[attention][activations]") {
  const auto ref = [](double x, double* g) {
    const double k0 = 0.79788456080286535588, k1 = 0.044715, t = std::tanh(k0 * (x + k1 * x * x * x));
    *g = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k0 * (1 + 3 * k1 * x * x);
    return 0.5 * x * (1 + t);
  };
  double worst_v = 0, worst_g = 0, worst_v_only = 0;
  alignas(64) float in[16], val[16], val_only[16], grad[16];
  for (double x0 = -12.0; x0 <= 12.0; x0 += 16.0 / 4096) {
    for (int l = 0; l < 16; ++l) in[l] = float(x0 + l / 4096.0);
    __m512 g;
    _mm512_store_ps(val, nn::Impl::gelu_tanh_avx512(_mm512_load_ps(in), &g));
    _mm512_store_ps(grad, g);
    _mm512_store_ps(val_only, nn::Impl::gelu_tanh_avx512(_mm512_load_ps(in), nullptr));
    for (int l = 0; l < 16; ++l) {
      double rg;
      const double rv = ref(double(in[l]), &rg);
      // relative to the value's scale (|x|, the size of the terms that cancel for negative x)
      worst_v = std::max(worst_v, std::abs(double(val[l]) - rv) / (1e-3 + std::abs(double(in[l]))));
      worst_v_only = std::max(worst_v_only, std::abs(double(val_only[l]) - rv) / (1e-3 + std::abs(double(in[l]))));
      worst_g = std::max(worst_g, std::abs(double(grad[l]) - rg));
    }
  }
  INFO("value error " << worst_v << " (value-only path " << worst_v_only << "), derivative error " << worst_g);
  CHECK(worst_v < 1e-6);
  CHECK(worst_v_only < 1e-6);
  CHECK(worst_g < 2e-6);
  for (int l = 0; l < 16; ++l) in[l] = l % 4 == 0 ? -1e4f : l % 4 == 1 ? 1e4f : l % 4 == 2 ? 0.0f : -30.0f;
  __m512 g;
  _mm512_store_ps(val, nn::Impl::gelu_tanh_avx512(_mm512_load_ps(in), &g));
  _mm512_store_ps(grad, g);
  for (int l = 0; l < 16; ++l) {
    INFO("x = " << in[l]);
    CHECK(std::isfinite(val[l]));
    CHECK(std::isfinite(grad[l]));
    if (in[l] > 0) {
      CHECK(val[l] == in[l]);
      CHECK(grad[l] == 1.0f);
    } else {
      // gelu(0) = 0, gelu'(0) = 0.5; for x <= -30 the capped exp leaves about 1e-34 x and 1e-35 |x|^3
      CHECK(std::abs(val[l]) < 1e-29);
      CHECK(std::abs(grad[l] - (in[l] == 0 ? 0.5f : 0.0f)) < 1e-20);
    }
  }
}
#endif
