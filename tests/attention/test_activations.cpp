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
