// adaLN modulation and gated residual: PyTorch parity (forward and backward), shift/scale/gate as
// strided column slices of a (B, 6D) conditioning output, in-place forms, dx skipping,
// finite-difference gradients for every input, sizes 0/1/odd, shape errors.
#include <dcsldm/nn/adaln.hpp>

#include "testing.hpp"

using namespace dcsldm;
using test::ExecSpaces;

namespace {

template <class ExecSpace, class T>
void check_adaln_golden() {
  using Mem = typename ExecSpace::memory_space;
  test::Golden g("adaln");
  ExecSpace space;
  auto x = g.view<T, Mem, 3>("x");
  const int b = int(x.extent(0)), n = int(x.extent(1)), d = int(x.extent(2));
  // shift and scale live in a (B, 6D) buffer like the output of DiT's adaLN Linear: columns [D, 2D) and
  // [3D, 4D), strided slices.
  View2<T, Mem> cond("cond", b, 6 * d);
  auto shift = Kokkos::subview(cond, Kokkos::ALL, Kokkos::make_pair(d, 2 * d));
  auto scale = Kokkos::subview(cond, Kokkos::ALL, Kokkos::make_pair(3 * d, 4 * d));
  Kokkos::deep_copy(shift, g.view<T, Mem, 2>("shift"));
  Kokkos::deep_copy(scale, g.view<T, Mem, 2>("scale"));
  View2<T, Mem> dcond("dcond", b, 6 * d);
  auto dshift = Kokkos::subview(dcond, Kokkos::ALL, Kokkos::make_pair(d, 2 * d));
  auto dscale = Kokkos::subview(dcond, Kokkos::ALL, Kokkos::make_pair(3 * d, 4 * d));
  auto dy = g.view<T, Mem, 3>("dy_mod");
  View3<T, Mem> y("y", b, n, d), dx("dx", b, n, d);
  nn::modulate_forward(space, x, shift, scale, y);
  nn::modulate_backward(space, dy, x, scale, dx, dshift, dscale);
  View2<T, Mem> ds("ds", b, d), dc("dc", b, d);
  Kokkos::deep_copy(ds, dshift);
  Kokkos::deep_copy(dc, dscale);
  CHECK(g.error(y, "y_mod") < test::parity_tol<T>());
  CHECK(g.error(dx, "dx_mod") < test::parity_tol<T>());
  CHECK(g.error(ds, "dshift") < test::parity_tol<T>());
  CHECK(g.error(dc, "dscale") < test::parity_tol<T>());
  // dshift/dscale are written (=): a second backward gives the same values.
  nn::modulate_backward(space, dy, x, scale, dx, dshift, dscale);
  Kokkos::deep_copy(ds, dshift);
  CHECK(g.error(ds, "dshift") < test::parity_tol<T>());
  // In place: y may be x, dx may be dy.
  nn::modulate_forward(space, x, shift, scale, x);
  CHECK(g.error(x, "y_mod") < test::parity_tol<T>());
  x = g.view<T, Mem, 3>("x");
  nn::modulate_backward(space, dy, x, scale, dy, dshift, dscale);
  CHECK(g.error(dy, "dx_mod") < test::parity_tol<T>());
  Kokkos::deep_copy(dc, dscale);
  CHECK(g.error(dc, "dscale") < test::parity_tol<T>());

  auto r = g.view<T, Mem, 3>("r");
  auto h = g.view<T, Mem, 3>("h");
  auto gate = g.view<T, Mem, 2>("gate");
  auto dyr = g.view<T, Mem, 3>("dy_res");
  View3<T, Mem> dr("dr", b, n, d), dh("dh", b, n, d);
  View2<T, Mem> dgate("dgate", b, d);
  Kokkos::deep_copy(dgate, T(7));
  nn::gated_residual_forward(space, r, h, gate, y);
  nn::gated_residual_backward(space, dyr, h, gate, dr, dh, dgate);
  CHECK(g.error(y, "y_res") < test::parity_tol<T>());
  CHECK(g.error(dr, "dr") < test::parity_tol<T>());
  CHECK(g.error(dh, "dh") < test::parity_tol<T>());
  CHECK(g.error(dgate, "dgate") < test::parity_tol<T>());
  // In-place residual update, and dx skipped (the caller keeps dy) with dh written into dy.
  nn::gated_residual_forward(space, r, h, gate, r);
  CHECK(g.error(r, "y_res") < test::parity_tol<T>());
  nn::gated_residual_backward(space, dyr, h, gate, View3<T, Mem>(), dyr, dgate);
  CHECK(g.error(dyr, "dh") < test::parity_tol<T>());
  CHECK(g.error(dgate, "dgate") < test::parity_tol<T>());
}

template <class ExecSpace>
void check_adaln_gradients(int b, int n, int d) {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  View3<double, Mem> x("x", b, n, d), h("h", b, n, d), y("y", b, n, d), proj("proj", b, n, d);
  View3<double, Mem> dx("dx", b, n, d), dh("dh", b, n, d);
  View2<double, Mem> shift("shift", b, d), scale("scale", b, d), gate("gate", b, d);
  View2<double, Mem> dshift("dshift", b, d), dscale("dscale", b, d), dgate("dgate", b, d);
  test::fill_uniform(x, 71);
  test::fill_uniform(h, 72);
  test::fill_uniform(shift, 73);
  test::fill_uniform(scale, 74);
  test::fill_uniform(gate, 75);
  test::fill_uniform(proj, 76);
  INFO("b=" << b << " n=" << n << " d=" << d);
  nn::modulate_backward(space, proj, x, scale, dx, dshift, dscale);
  auto loss_mod = [&] {
    nn::modulate_forward(space, x, shift, scale, y);
    return test::dot(y, proj);
  };
  test::check_gradient("modulate dx", space, x, dx, loss_mod);
  test::check_gradient("modulate dshift", space, shift, dshift, loss_mod);
  test::check_gradient("modulate dscale", space, scale, dscale, loss_mod);
  nn::gated_residual_backward(space, proj, h, gate, dx, dh, dgate);
  auto loss_res = [&] {
    nn::gated_residual_forward(space, x, h, gate, y);
    return test::dot(y, proj);
  };
  test::check_gradient("gated_residual dx", space, x, dx, loss_res);
  test::check_gradient("gated_residual dh", space, h, dh, loss_res);
  test::check_gradient("gated_residual dgate", space, gate, dgate, loss_res);
}

template <class ExecSpace>
void check_adaln_errors() {
  using Mem = typename ExecSpace::memory_space;
  View3<float, Mem> x("x", 2, 3, 4), y("y", 2, 3, 4);
  View2<float, Mem> good("good", 2, 4), bad("bad", 2, 5);
  CHECK_THROWS_WITH(nn::modulate_forward(ExecSpace(), x, good, bad, y),
                    Catch::Contains("dcsldm::modulate_forward") && Catch::Contains("scale is (2, 5)") &&
                        Catch::Contains("expected (B, D) = (2, 4)"));
  View3<float, Mem> h("h", 2, 2, 4);
  CHECK_THROWS_WITH(nn::gated_residual_forward(ExecSpace(), x, h, good, y),
                    Catch::Contains("dcsldm::gated_residual_forward") && Catch::Contains("h is (2, 2, 4)") &&
                        Catch::Contains("x is (2, 3, 4)"));
  CHECK_THROWS_WITH(nn::gated_residual_backward(ExecSpace(), y, x, good, h, x, good),
                    Catch::Contains("dcsldm::gated_residual_backward") && Catch::Contains("dx is (2, 2, 4)"));
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("adaln modulate and gated residual match PyTorch", "[nn][adaln]", ExecSpaces) {
  check_adaln_golden<TestType, float>();
  check_adaln_golden<TestType, double>();
}
TEMPLATE_LIST_TEST_CASE("adaln gradients match finite differences", "[nn][adaln][grad]", ExecSpaces) {
  check_adaln_gradients<TestType>(2, 5, 3);
  check_adaln_gradients<TestType>(1, 1, 1);
  check_adaln_gradients<TestType>(3, 0, 4);
  check_adaln_gradients<TestType>(0, 2, 3);
}
TEMPLATE_LIST_TEST_CASE("adaln shape errors", "[nn][adaln]", ExecSpaces) {
  check_adaln_errors<TestType>();
}
