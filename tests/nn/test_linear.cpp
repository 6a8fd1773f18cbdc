// Linear: PyTorch parity (forward and backward, with and without bias), finite-difference gradients,
// zero rows, shape errors.
#include <dcsldm/nn/linear.hpp>

#include "testing.hpp"

using namespace dcsldm;
using test::ExecSpaces;

namespace {

template <class ExecSpace, class T>
void check_linear_golden(const std::string& name) {
  using Mem = typename ExecSpace::memory_space;
  test::Golden g(name);
  const bool bias = g.file.contains("bias");
  nn::Linear<T, Mem> p{g.view<T, Mem, 2>("weight"), bias ? g.view<T, Mem, 1>("bias") : View1<T, Mem>()};
  nn::Linear<T, Mem> d{View2<T, Mem>("dw", p.weight.extent(0), p.weight.extent(1)),
                       View1<T, Mem>("db", p.bias.extent(0))};
  auto x = g.view<T, Mem, 2>("x");
  auto dy = g.view<T, Mem, 2>("dy");
  View2<T, Mem> y("y", x.extent(0), p.out_features()), dx("dx", x.extent(0), x.extent(1));
  ExecSpace space;
  nn::linear_forward(space, x, p, y);
  nn::linear_backward(space, dy, x, p, d, dx);
  CHECK(g.error(y, "y") < test::parity_tol<T>());
  CHECK(g.error(dx, "dx") < test::parity_tol<T>());
  CHECK(g.error(d.weight, "dweight") < test::parity_tol<T>());
  if (bias) CHECK(g.error(d.bias, "dbias") < test::parity_tol<T>());
  // Parameter gradients accumulate: a second backward doubles them.
  nn::linear_backward(space, dy, x, p, d, dx);
  auto twice = g.values("dweight");
  for (auto& v : twice) v *= 2;
  CHECK(test::rel_error(test::to_doubles(d.weight), twice) < test::parity_tol<T>());
  if (bias) {
    auto twice_b = g.values("dbias");
    for (auto& v : twice_b) v *= 2;
    CHECK(test::rel_error(test::to_doubles(d.bias), twice_b) < test::parity_tol<T>());
  }
}

template <class ExecSpace>
void check_linear_gradients(int m, int fin, int fout, bool bias) {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  nn::Linear<double, Mem> p{View2<double, Mem>("w", fout, fin), View1<double, Mem>("b", bias ? fout : 0)};
  nn::Linear<double, Mem> d{View2<double, Mem>("dw", fout, fin), View1<double, Mem>("db", bias ? fout : 0)};
  View2<double, Mem> x("x", m, fin), dx("dx", m, fin), y("y", m, fout), proj("proj", m, fout);
  test::fill_uniform(p.weight, 11);
  test::fill_uniform(p.bias, 12);
  test::fill_uniform(x, 13);
  test::fill_uniform(proj, 14);
  nn::linear_backward(space, proj, x, p, d, dx);
  auto loss = [&] {
    nn::linear_forward(space, x, p, y);
    return test::dot(y, proj);
  };
  test::check_gradient("linear dx", space, x, dx, loss);
  test::check_gradient("linear dweight", space, p.weight, d.weight, loss);
  if (bias) test::check_gradient("linear dbias", space, p.bias, d.bias, loss);
}

template <class ExecSpace>
void check_linear_errors() {
  using Mem = typename ExecSpace::memory_space;
  nn::Linear<float, Mem> p{View2<float, Mem>("w", 4, 3), View1<float, Mem>("b", 4)};
  View2<float, Mem> x("x", 2, 5), y("y", 2, 4);
  CHECK_THROWS_WITH(nn::linear_forward(ExecSpace(), x, p, y),
                    Catch::Contains("dcsldm::linear_forward") && Catch::Contains("x.extent(1) = 5") &&
                        Catch::Contains("in_features) = 3"));
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("linear matches PyTorch", "[nn][linear]", ExecSpaces) {
  check_linear_golden<TestType, float>("linear");
  check_linear_golden<TestType, double>("linear");
  check_linear_golden<TestType, float>("linear_nobias");
}
TEMPLATE_LIST_TEST_CASE("linear gradients match finite differences", "[nn][linear][grad]", ExecSpaces) {
  check_linear_gradients<TestType>(5, 7, 3, true);
  check_linear_gradients<TestType>(1, 1, 1, true);
  check_linear_gradients<TestType>(4, 3, 6, false);
  check_linear_gradients<TestType>(0, 3, 2, true);
}
TEMPLATE_LIST_TEST_CASE("linear shape errors", "[nn][linear]", ExecSpaces) {
  check_linear_errors<TestType>();
}
