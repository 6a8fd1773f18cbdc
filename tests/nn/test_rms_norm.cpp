// RMSNorm: parity with an explicit PyTorch reference (1.13 has no RMSNorm), += accumulation of the
// weight gradient, finite-difference gradients for x and weight, sizes 0/1/odd, shape errors.
#include <dcsldm/nn/rms_norm.hpp>

#include "testing.hpp"

using namespace dcsldm;
using test::ExecSpaces;

namespace {

template <class ExecSpace, class T>
void check_rms_norm_golden() {
  using Mem = typename ExecSpace::memory_space;
  test::Golden g("rms_norm");
  auto x = g.view<T, Mem, 2>("x");
  auto dy = g.view<T, Mem, 2>("dy");
  const int m = int(x.extent(0)), c = int(x.extent(1));
  nn::RMSNorm<T, Mem> p{g.view<T, Mem, 1>("weight")};
  nn::RMSNorm<T, Mem> d{View1<T, Mem>("dw", c)};
  nn::RMSNormCache<T, Mem> cache{View1<T, Mem>("rstd", m)};
  View2<T, Mem> y("y", m, c), dx("dx", m, c);
  ExecSpace space;
  nn::rms_norm_forward(space, x, p, y, cache, g.meta_double("eps"));
  nn::rms_norm_backward(space, dy, x, p, d, cache, dx);
  CHECK(g.error(y, "y") < test::parity_tol<T>());
  CHECK(g.error(dx, "dx") < test::parity_tol<T>());
  CHECK(g.error(d.weight, "dweight") < test::parity_tol<T>());
  nn::rms_norm_backward(space, dy, x, p, d, cache, dx);
  auto twice = g.values("dweight");
  for (auto& v : twice) v *= 2;
  CHECK(test::rel_error(test::to_doubles(d.weight), twice) < test::parity_tol<T>());
  CHECK(g.error(dx, "dx") < test::parity_tol<T>());
}

template <class ExecSpace>
void check_rms_norm_gradients(int m, int c, bool weight) {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  nn::RMSNorm<double, Mem> p{View1<double, Mem>("w", weight ? c : 0)};
  nn::RMSNorm<double, Mem> d{View1<double, Mem>("dw", weight ? c : 0)};
  nn::RMSNormCache<double, Mem> cache{View1<double, Mem>("rstd", m)};
  View2<double, Mem> x("x", m, c), dx("dx", m, c), y("y", m, c), proj("proj", m, c);
  test::fill_uniform(p.weight, 41, 0.5, 1.5);
  test::fill_uniform(x, 42);
  test::fill_uniform(proj, 43);
  nn::rms_norm_forward(space, x, p, y, cache);
  nn::rms_norm_backward(space, proj, x, p, d, cache, dx);
  auto loss = [&] {
    nn::rms_norm_forward(space, x, p, y, cache);
    return test::dot(y, proj);
  };
  INFO("m=" << m << " c=" << c << " weight=" << weight);
  test::check_gradient("rms_norm dx", space, x, dx, loss);
  if (weight) test::check_gradient("rms_norm dweight", space, p.weight, d.weight, loss);
}

template <class ExecSpace>
void check_rms_norm_errors() {
  using Mem = typename ExecSpace::memory_space;
  nn::RMSNorm<float, Mem> p{View1<float, Mem>("w", 6)};
  nn::RMSNormCache<float, Mem> cache{View1<float, Mem>("rstd", 3)};
  View2<float, Mem> x("x", 3, 5), y("y", 3, 5);
  CHECK_THROWS_WITH(nn::rms_norm_forward(ExecSpace(), x, p, y, cache),
                    Catch::Contains("dcsldm::rms_norm_forward") && Catch::Contains("weight.extent(0) = 6") &&
                        Catch::Contains("C = x.extent(1) = 5"));
  nn::RMSNorm<float, Mem> q{View1<float, Mem>("w", 5)};
  View2<float, Mem> wrong("y", 3, 4);
  CHECK_THROWS_WITH(nn::rms_norm_forward(ExecSpace(), x, q, wrong, cache),
                    Catch::Contains("x is (3, 5) but the output is (3, 4)"));
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("rms_norm matches the PyTorch reference", "[nn][rms_norm]", ExecSpaces) {
  check_rms_norm_golden<TestType, float>();
  check_rms_norm_golden<TestType, double>();
}
TEMPLATE_LIST_TEST_CASE("rms_norm gradients match finite differences", "[nn][rms_norm][grad]", ExecSpaces) {
  check_rms_norm_gradients<TestType>(5, 7, true);
  check_rms_norm_gradients<TestType>(1, 1, true);
  check_rms_norm_gradients<TestType>(3, 33, false);
  check_rms_norm_gradients<TestType>(0, 4, true);
}
TEMPLATE_LIST_TEST_CASE("rms_norm shape errors", "[nn][rms_norm]", ExecSpaces) {
  check_rms_norm_errors<TestType>();
}
