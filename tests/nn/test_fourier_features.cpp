// Fourier features: PyTorch parity (forward and dx), output width, F = 0, float accuracy at high
// frequencies, finite-difference gradient, sizes 0/1/odd, shape errors.
#include <dcsldm/nn/fourier_features.hpp>

#include "testing.hpp"

using namespace dcsldm;
using test::ExecSpaces;

namespace {

template <class ExecSpace, class T>
void check_fourier_golden() {
  using Mem = typename ExecSpace::memory_space;
  test::Golden g("fourier_features");
  const int nf = int(g.meta_int("num_frequencies"));
  auto x = g.view<T, Mem, 2>("x");
  auto dy = g.view<T, Mem, 2>("dy");
  const int m = int(x.extent(0)), p = int(x.extent(1));
  REQUIRE(nn::fourier_features_width(p, nf) == int(dy.extent(1)));
  View2<T, Mem> y("y", m, nn::fourier_features_width(p, nf)), dx("dx", m, p);
  nn::fourier_features_forward(ExecSpace(), x, nf, y);
  nn::fourier_features_backward(ExecSpace(), dy, x, nf, dx);
  INFO("y err " << g.error(y, "y") << " dx err " << g.error(dx, "dx"));
  CHECK(g.error(y, "y") < test::parity_tol<T>());
  CHECK(g.error(dx, "dx") < test::parity_tol<T>());
}

/// With exact range reduction, float features at 2^20 pi stay accurate against a double reference.
template <class ExecSpace>
void check_fourier_float_high_frequency() {
  using Mem = typename ExecSpace::memory_space;
  const int m = 50, nf = 21;
  View2<float, Mem> x("x", m, 1), y("y", m, nn::fourier_features_width(1, nf));
  test::fill_uniform(x, 81);
  nn::fourier_features_forward(ExecSpace(), x, nf, y);
  const auto xs = test::to_doubles(x);
  std::vector<double> want;
  for (int i = 0; i < m; ++i) {
    want.push_back(xs[std::size_t(i)]);
    for (int k = 0; k < nf; ++k) want.push_back(std::sin(std::ldexp(xs[std::size_t(i)], k) * M_PI));
    for (int k = 0; k < nf; ++k) want.push_back(std::cos(std::ldexp(xs[std::size_t(i)], k) * M_PI));
  }
  CHECK(test::rel_error(test::to_doubles(y), want) < 1e-6);
}

template <class ExecSpace>
void check_fourier_no_frequencies() {
  using Mem = typename ExecSpace::memory_space;
  View2<double, Mem> x("x", 4, 3), y("y", 4, 3), dy("dy", 4, 3), dx("dx", 4, 3);
  test::fill_uniform(x, 82);
  test::fill_uniform(dy, 83);
  nn::fourier_features_forward(ExecSpace(), x, 0, y);
  nn::fourier_features_backward(ExecSpace(), dy, x, 0, dx);
  CHECK(test::rel_error_views(y, x) == 0);
  CHECK(test::rel_error_views(dx, dy) == 0);
}

template <class ExecSpace>
void check_fourier_gradient(int m, int p, int nf) {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  const int w = nn::fourier_features_width(p, nf);
  View2<double, Mem> x("x", m, p), dx("dx", m, p), y("y", m, w), proj("proj", m, w);
  test::fill_uniform(x, 84, -2, 2);
  test::fill_uniform(proj, 85);
  nn::fourier_features_backward(space, proj, x, nf, dx);
  auto loss = [&] {
    nn::fourier_features_forward(space, x, nf, y);
    return test::dot(y, proj);
  };
  INFO("m=" << m << " p=" << p << " F=" << nf);
  test::check_gradient("fourier_features dx", space, x, dx, loss, 1e-7, 1e-6);
}

template <class ExecSpace>
void check_fourier_errors() {
  using Mem = typename ExecSpace::memory_space;
  View2<float, Mem> x("x", 3, 2), y("y", 3, 9), dx("dx", 3, 3);
  CHECK_THROWS_WITH(nn::fourier_features_forward(ExecSpace(), x, 3, y),
                    Catch::Contains("dcsldm::fourier_features_forward") && Catch::Contains("y is (3, 9)") &&
                        Catch::Contains("= (3, 14) for P = 2, F = 3"));
  CHECK_THROWS_WITH(nn::fourier_features_forward(ExecSpace(), x, -1, y),
                    Catch::Contains("num_frequencies = -1"));
  View2<float, Mem> dy("dy", 3, 14);
  CHECK_THROWS_WITH(nn::fourier_features_backward(ExecSpace(), dy, x, 3, dx),
                    Catch::Contains("dcsldm::fourier_features_backward") && Catch::Contains("dx is (3, 3)"));
}

}  // namespace

TEST_CASE("fourier_features_width", "[nn][fourier]") {
  STATIC_REQUIRE(nn::fourier_features_width(2, 6) == 26);
  CHECK(nn::fourier_features_width(3, 0) == 3);
}
TEMPLATE_LIST_TEST_CASE("fourier features match PyTorch", "[nn][fourier]", ExecSpaces) {
  check_fourier_golden<TestType, float>();
  check_fourier_golden<TestType, double>();
  check_fourier_float_high_frequency<TestType>();
  check_fourier_no_frequencies<TestType>();
}
TEMPLATE_LIST_TEST_CASE("fourier features gradient matches finite differences", "[nn][fourier][grad]",
                        ExecSpaces) {
  check_fourier_gradient<TestType>(5, 3, 4);
  check_fourier_gradient<TestType>(1, 1, 1);
  check_fourier_gradient<TestType>(0, 2, 3);
  check_fourier_gradient<TestType>(3, 0, 3);
}
TEMPLATE_LIST_TEST_CASE("fourier features shape errors", "[nn][fourier]", ExecSpaces) {
  check_fourier_errors<TestType>();
}
