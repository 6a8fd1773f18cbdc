// Softmax: PyTorch parity (including large logits), in-place forward and backward, fully masked rows,
// finite-difference gradient, sizes 0/1/odd, shape errors.
#include <dcsldm/nn/softmax.hpp>

#include "testing.hpp"

using namespace dcsldm;
using test::ExecSpaces;

namespace {

template <class ExecSpace, class T>
void check_softmax_golden() {
  using Mem = typename ExecSpace::memory_space;
  test::Golden g("softmax");
  auto x = g.view<T, Mem, 2>("x");
  auto dy = g.view<T, Mem, 2>("dy");
  const int m = int(x.extent(0)), c = int(x.extent(1));
  View2<T, Mem> y("y", m, c), dx("dx", m, c);
  ExecSpace space;
  nn::softmax_forward(space, x, y);
  nn::softmax_backward(space, dy, y, dx);
  CHECK(g.error(y, "y") < test::parity_tol<T>());
  CHECK(g.error(dx, "dx") < test::parity_tol<T>());
  // In place: y may be x, dx may be dy.
  nn::softmax_forward(space, x, x);
  nn::softmax_backward(space, dy, x, dy);
  CHECK(g.error(x, "y") < test::parity_tol<T>());
  CHECK(g.error(dy, "dx") < test::parity_tol<T>());
}

template <class ExecSpace>
void check_softmax_masked_row() {
  using Mem = typename ExecSpace::memory_space;
  View2<double, Mem> x("x", 2, 3), y("y", 2, 3);
  auto h = Kokkos::create_mirror_view(x);
  for (int j = 0; j < 3; ++j) h(0, j) = -INFINITY;
  h(1, 0) = -INFINITY;
  h(1, 1) = 0;
  h(1, 2) = std::log(3.0);
  Kokkos::deep_copy(x, h);
  nn::softmax_forward(ExecSpace(), x, y);
  const auto v = test::to_doubles(y);
  CHECK(test::rel_error(v, {0, 0, 0, 0, 0.25, 0.75}) < 1e-15);
}

template <class ExecSpace>
void check_softmax_gradients(int m, int c) {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  View2<double, Mem> x("x", m, c), dx("dx", m, c), y("y", m, c), proj("proj", m, c);
  test::fill_uniform(x, 51, -3, 3);
  test::fill_uniform(proj, 52);
  nn::softmax_forward(space, x, y);
  nn::softmax_backward(space, proj, y, dx);
  auto loss = [&] {
    nn::softmax_forward(space, x, y);
    return test::dot(y, proj);
  };
  INFO("m=" << m << " c=" << c);
  test::check_gradient("softmax dx", space, x, dx, loss);
}

template <class ExecSpace>
void check_softmax_errors() {
  using Mem = typename ExecSpace::memory_space;
  View2<float, Mem> x("x", 3, 5), y("y", 3, 4), dx("dx", 2, 5);
  CHECK_THROWS_WITH(nn::softmax_forward(ExecSpace(), x, y),
                    Catch::Contains("dcsldm::softmax_forward") && Catch::Contains("x is (3, 5) but y is (3, 4)"));
  CHECK_THROWS_WITH(nn::softmax_backward(ExecSpace(), x, x, dx),
                    Catch::Contains("dcsldm::softmax_backward") && Catch::Contains("dx is (2, 5) but y is (3, 5)"));
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("softmax matches PyTorch", "[nn][softmax]", ExecSpaces) {
  check_softmax_golden<TestType, float>();
  check_softmax_golden<TestType, double>();
}
TEMPLATE_LIST_TEST_CASE("softmax of a fully masked row is zero", "[nn][softmax]", ExecSpaces) {
  check_softmax_masked_row<TestType>();
}
TEMPLATE_LIST_TEST_CASE("softmax gradient matches finite differences", "[nn][softmax][grad]", ExecSpaces) {
  check_softmax_gradients<TestType>(4, 9);
  check_softmax_gradients<TestType>(1, 1);
  check_softmax_gradients<TestType>(3, 257);
  check_softmax_gradients<TestType>(0, 5);
}
TEMPLATE_LIST_TEST_CASE("softmax shape errors", "[nn][softmax]", ExecSpaces) {
  check_softmax_errors<TestType>();
}
