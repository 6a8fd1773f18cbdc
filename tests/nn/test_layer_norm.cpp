// LayerNorm: PyTorch parity (affine and elementwise_affine=False, forward and backward), += accumulation
// of parameter gradients, finite-difference gradients for x, weight and bias, sizes 0/1/odd, shape errors.
#include <dcsldm/nn/layer_norm.hpp>

#include "testing.hpp"

using namespace dcsldm;
using test::ExecSpaces;

namespace {

std::vector<double> scaled(std::vector<double> v, double s) {
  for (auto& e : v) e *= s;
  return v;
}

template <class ExecSpace, class T>
void check_layer_norm_golden(const std::string& name) {
  using Mem = typename ExecSpace::memory_space;
  test::Golden g(name);
  const bool affine = g.file.contains("weight");
  const double eps = g.meta_double("eps");
  auto x = g.view<T, Mem, 2>("x");
  auto dy = g.view<T, Mem, 2>("dy");
  const int m = int(x.extent(0)), c = int(x.extent(1));
  nn::LayerNorm<T, Mem> p{affine ? g.view<T, Mem, 1>("weight") : View1<T, Mem>(),
                          affine ? g.view<T, Mem, 1>("bias") : View1<T, Mem>()};
  nn::LayerNorm<T, Mem> d{View1<T, Mem>("dw", p.weight.extent(0)), View1<T, Mem>("db", p.bias.extent(0))};
  nn::LayerNormCache<T, Mem> cache{View1<T, Mem>("mean", m), View1<T, Mem>("rstd", m)};
  View2<T, Mem> y("y", m, c), dx("dx", m, c);
  ExecSpace space;
  nn::layer_norm_forward(space, x, p, y, cache, eps);
  nn::layer_norm_backward(space, dy, x, p, d, cache, dx);
  INFO(name << " y err " << g.error(y, "y") << " dx err " << g.error(dx, "dx"));
  CHECK(g.error(y, "y") < test::parity_tol<T>());
  CHECK(g.error(dx, "dx") < test::parity_tol<T>());
  if (affine) {
    CHECK(g.error(d.weight, "dweight") < test::parity_tol<T>());
    CHECK(g.error(d.bias, "dbias") < test::parity_tol<T>());
    // Parameter gradients accumulate (+=): a second backward doubles them; dx is written (=).
    nn::layer_norm_backward(space, dy, x, p, d, cache, dx);
    CHECK(test::rel_error(test::to_doubles(d.weight), scaled(g.values("dweight"), 2)) < test::parity_tol<T>());
    CHECK(test::rel_error(test::to_doubles(d.bias), scaled(g.values("dbias"), 2)) < test::parity_tol<T>());
    CHECK(g.error(dx, "dx") < test::parity_tol<T>());
  }
}

template <class ExecSpace>
void check_layer_norm_gradients(int m, int c, bool weight, bool bias) {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  nn::LayerNorm<double, Mem> p{View1<double, Mem>("w", weight ? c : 0), View1<double, Mem>("b", bias ? c : 0)};
  nn::LayerNorm<double, Mem> d{View1<double, Mem>("dw", weight ? c : 0), View1<double, Mem>("db", bias ? c : 0)};
  nn::LayerNormCache<double, Mem> cache{View1<double, Mem>("mean", m), View1<double, Mem>("rstd", m)};
  View2<double, Mem> x("x", m, c), dx("dx", m, c), y("y", m, c), proj("proj", m, c);
  test::fill_uniform(p.weight, 31, 0.5, 1.5);
  test::fill_uniform(p.bias, 32);
  test::fill_uniform(x, 33);
  test::fill_uniform(proj, 34);
  nn::layer_norm_forward(space, x, p, y, cache);
  nn::layer_norm_backward(space, proj, x, p, d, cache, dx);
  auto loss = [&] {
    nn::layer_norm_forward(space, x, p, y, cache);
    return test::dot(y, proj);
  };
  INFO("m=" << m << " c=" << c << " weight=" << weight << " bias=" << bias);
  test::check_gradient("layer_norm dx", space, x, dx, loss);
  if (weight) test::check_gradient("layer_norm dweight", space, p.weight, d.weight, loss);
  if (bias) test::check_gradient("layer_norm dbias", space, p.bias, d.bias, loss);
}

template <class ExecSpace>
void check_layer_norm_errors() {
  using Mem = typename ExecSpace::memory_space;
  nn::LayerNorm<float, Mem> p{View1<float, Mem>("w", 4), View1<float, Mem>("b", 4)};
  nn::LayerNormCache<float, Mem> cache{View1<float, Mem>("mean", 2), View1<float, Mem>("rstd", 2)};
  View2<float, Mem> x("x", 2, 5), y("y", 2, 5);
  CHECK_THROWS_WITH(nn::layer_norm_forward(ExecSpace(), x, p, y, cache),
                    Catch::Contains("dcsldm::layer_norm_forward") && Catch::Contains("weight.extent(0) = 4") &&
                        Catch::Contains("C = x.extent(1) = 5"));
  nn::LayerNorm<float, Mem> q{View1<float, Mem>("w", 5), View1<float, Mem>("b", 5)};
  nn::LayerNormCache<float, Mem> small{View1<float, Mem>("mean", 1), View1<float, Mem>("rstd", 1)};
  CHECK_THROWS_WITH(nn::layer_norm_forward(ExecSpace(), x, q, y, small),
                    Catch::Contains("cache.mean.extent(0) = 1") && Catch::Contains("M = x.extent(0) = 2"));
  View2<float, Mem> dx("dx", 2, 4);
  nn::LayerNormCache<float, Mem> ok{View1<float, Mem>("mean", 2), View1<float, Mem>("rstd", 2)};
  CHECK_THROWS_WITH(nn::layer_norm_backward(ExecSpace(), y, x, q, q, ok, dx),
                    Catch::Contains("dcsldm::layer_norm_backward") && Catch::Contains("dx is (2, 4)"));
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("layer_norm matches PyTorch", "[nn][layer_norm]", ExecSpaces) {
  check_layer_norm_golden<TestType, float>("layer_norm");
  check_layer_norm_golden<TestType, double>("layer_norm");
  check_layer_norm_golden<TestType, float>("layer_norm_noaffine");
  check_layer_norm_golden<TestType, double>("layer_norm_noaffine");
}
TEMPLATE_LIST_TEST_CASE("layer_norm gradients match finite differences", "[nn][layer_norm][grad]", ExecSpaces) {
  check_layer_norm_gradients<TestType>(5, 7, true, true);
  check_layer_norm_gradients<TestType>(1, 1, true, true);
  check_layer_norm_gradients<TestType>(3, 33, false, false);
  check_layer_norm_gradients<TestType>(4, 9, true, false);
  check_layer_norm_gradients<TestType>(0, 4, true, true);
}
TEMPLATE_LIST_TEST_CASE("layer_norm shape errors", "[nn][layer_norm]", ExecSpaces) {
  check_layer_norm_errors<TestType>();
}
