// MLPs (GELU erf/tanh, SwiGLU): PyTorch parity forward and backward, += parameter gradients,
// finite-difference gradients of x and every parameter, sizes 0/1/odd, errors.
#include <dcsldm/nn/mlp.hpp>

#include "testing.hpp"

using namespace dcsldm;
using test::ExecSpaces;

namespace {

template <class T, class Mem>
nn::Linear<T, Mem> golden_linear(const test::Golden& g, const std::string& name) {
  return {g.view<T, Mem, 2>(name + "_weight"), g.view<T, Mem, 1>(name + "_bias")};
}
template <class T, class Mem>
nn::Linear<T, Mem> zero_like(const nn::Linear<T, Mem>& l) {
  return {View2<T, Mem>("dw", l.weight.extent(0), l.weight.extent(1)), View1<T, Mem>("db", l.bias.extent(0))};
}

template <class T>
void check_doubled(const test::Golden& g, const std::vector<double>& got, const std::string& name) {
  auto twice = g.values(name);
  for (auto& v : twice) v *= 2;
  INFO(name << " after two backward passes");
  CHECK(test::rel_error(got, twice) < test::parity_tol<T>());
}

/// Runs forward + backward twice for either MLP type; checks against golden `name`.
template <class ExecSpace, class T, class Mlp>
void check_mlp_golden(const std::string& name, nn::GeluKind kind) {
  using Mem = typename ExecSpace::memory_space;
  constexpr bool gelu = std::is_same_v<Mlp, nn::GeluMlp<T, Mem>>;
  ExecSpace space;
  test::Golden g(name);
  Mlp p{golden_linear<T, Mem>(g, "fc1"), golden_linear<T, Mem>(g, "fc2")};
  Mlp d{zero_like(p.fc1), zero_like(p.fc2)};
  auto x = g.view<T, Mem, 2>("x");
  auto dy = g.view<T, Mem, 2>("dy");
  const std::size_t m = x.extent(0);
  View2<T, Mem> y("y", m, p.fc2.out_features()), dx("dx", m, x.extent(1));
  nn::MlpCache<T, Mem> cache;
  nn::MlpWorkspace<T, Mem> ws;
  if constexpr (gelu) {
    cache = nn::make_gelu_mlp_cache(m, p);
    ws = nn::make_gelu_mlp_workspace(m, p);
  } else {
    cache = nn::make_swiglu_mlp_cache(m, p);
    ws = nn::make_swiglu_mlp_workspace(m, p);
  }
  for (int pass = 0; pass < 2; ++pass) {
    if constexpr (gelu) {
      nn::gelu_mlp_forward(space, x, p, kind, y, cache);
      nn::gelu_mlp_backward(space, dy, x, p, d, kind, cache, ws, dx);
    } else {
      nn::swiglu_mlp_forward(space, x, p, y, cache);
      nn::swiglu_mlp_backward(space, dy, x, p, d, cache, ws, dx);
    }
  }
  const double tol = test::parity_tol<T>();
  INFO(name);
  CHECK(g.error(y, "y") < tol);
  CHECK(g.error(dx, "dx") < tol);  // written, not accumulated
  check_doubled<T>(g, test::to_doubles(d.fc1.weight), "dfc1_weight");
  check_doubled<T>(g, test::to_doubles(d.fc1.bias), "dfc1_bias");
  check_doubled<T>(g, test::to_doubles(d.fc2.weight), "dfc2_weight");
  check_doubled<T>(g, test::to_doubles(d.fc2.bias), "dfc2_bias");
}

template <class Mem>
nn::Linear<double, Mem> random_linear(int out, int in, std::uint64_t seed) {
  nn::Linear<double, Mem> l{View2<double, Mem>("w", out, in), View1<double, Mem>("b", out)};
  test::fill_uniform(l.weight, seed);
  test::fill_uniform(l.bias, seed + 1);
  return l;
}

template <class ExecSpace, bool Gelu>
void check_mlp_gradients(int m, int d_in, int hidden, int d_out, nn::GeluKind kind) {
  using Mem = typename ExecSpace::memory_space;
  using Mlp = std::conditional_t<Gelu, nn::GeluMlp<double, Mem>, nn::SwiGluMlp<double, Mem>>;
  ExecSpace space;
  const int h1 = Gelu ? hidden : 2 * hidden;
  Mlp p{random_linear<Mem>(h1, d_in, 201), random_linear<Mem>(d_out, hidden, 203)};
  Mlp g{zero_like(p.fc1), zero_like(p.fc2)};
  View2<double, Mem> x("x", m, d_in), dx("dx", m, d_in), y("y", m, d_out), proj("proj", m, d_out);
  test::fill_uniform(x, 205);
  test::fill_uniform(proj, 206);
  nn::MlpCache<double, Mem> cache;
  nn::MlpWorkspace<double, Mem> ws;
  if constexpr (Gelu) {
    cache = nn::make_gelu_mlp_cache(m, p);
    ws = nn::make_gelu_mlp_workspace(m, p);
    nn::gelu_mlp_forward(space, x, p, kind, y, cache);
    nn::gelu_mlp_backward(space, proj, x, p, g, kind, cache, ws, dx);
  } else {
    cache = nn::make_swiglu_mlp_cache(m, p);
    ws = nn::make_swiglu_mlp_workspace(m, p);
    nn::swiglu_mlp_forward(space, x, p, y, cache);
    nn::swiglu_mlp_backward(space, proj, x, p, g, cache, ws, dx);
  }
  auto loss = [&] {
    if constexpr (Gelu)
      nn::gelu_mlp_forward(space, x, p, kind, y, cache);
    else
      nn::swiglu_mlp_forward(space, x, p, y, cache);
    return test::dot(y, proj);
  };
  INFO((Gelu ? "gelu" : "swiglu") << " mlp m=" << m << " d_in=" << d_in << " hidden=" << hidden);
  test::check_gradient("mlp dx", space, x, dx, loss);
  test::check_gradient("mlp dfc1.weight", space, p.fc1.weight, g.fc1.weight, loss);
  test::check_gradient("mlp dfc1.bias", space, p.fc1.bias, g.fc1.bias, loss);
  test::check_gradient("mlp dfc2.weight", space, p.fc2.weight, g.fc2.weight, loss);
  test::check_gradient("mlp dfc2.bias", space, p.fc2.bias, g.fc2.bias, loss);
}

template <class ExecSpace>
void check_mlp_errors() {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  nn::GeluMlp<float, Mem> p{{View2<float, Mem>("w1", 6, 4), View1<float, Mem>("b1", 6)},
                            {View2<float, Mem>("w2", 3, 6), View1<float, Mem>("b2", 3)}};
  View2<float, Mem> x("x", 2, 5), y("y", 2, 3);
  auto cache = nn::make_gelu_mlp_cache(2, p);
  CHECK_THROWS_WITH(nn::gelu_mlp_forward(space, x, p, nn::GeluKind::Erf, y, cache),
                    Catch::Contains("dcsldm::gelu_mlp_forward") && Catch::Contains("x.extent(1) = 5") &&
                        Catch::Contains("fc1.in_features = 4"));
  View2<float, Mem> x4("x4", 3, 4);
  CHECK_THROWS_WITH(nn::gelu_mlp_forward(space, x4, p, nn::GeluKind::Erf, y, cache),
                    Catch::Contains("dcsldm::gelu_mlp_forward") && Catch::Contains("cache is pre (2, 6)"));
  nn::SwiGluMlp<float, Mem> s{{View2<float, Mem>("w1", 7, 4), View1<float, Mem>("b1", 7)},
                              {View2<float, Mem>("w2", 3, 3), View1<float, Mem>("b2", 3)}};
  nn::MlpCache<float, Mem> sc{View2<float, Mem>("pre", 2, 7), View2<float, Mem>("hid", 2, 3)};
  View2<float, Mem> x2("x2", 2, 4);
  CHECK_THROWS_WITH(nn::swiglu_mlp_forward(space, x2, s, y, sc),
                    Catch::Contains("dcsldm::swiglu_mlp_forward") && Catch::Contains("= 7 must be even"));
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("MLPs match PyTorch", "[attention][mlp]", ExecSpaces) {
  using Mem = typename TestType::memory_space;
  check_mlp_golden<TestType, float, nn::GeluMlp<float, Mem>>("mlp_gelu_none", nn::GeluKind::Erf);
  check_mlp_golden<TestType, double, nn::GeluMlp<double, Mem>>("mlp_gelu_none", nn::GeluKind::Erf);
  check_mlp_golden<TestType, float, nn::GeluMlp<float, Mem>>("mlp_gelu_tanh", nn::GeluKind::Tanh);
  check_mlp_golden<TestType, double, nn::GeluMlp<double, Mem>>("mlp_gelu_tanh", nn::GeluKind::Tanh);
  check_mlp_golden<TestType, float, nn::SwiGluMlp<float, Mem>>("mlp_swiglu", nn::GeluKind::Erf);
  check_mlp_golden<TestType, double, nn::SwiGluMlp<double, Mem>>("mlp_swiglu", nn::GeluKind::Erf);
}
TEMPLATE_LIST_TEST_CASE("MLP gradients match finite differences", "[attention][mlp][grad]", ExecSpaces) {
  check_mlp_gradients<TestType, true>(5, 3, 7, 4, nn::GeluKind::Erf);
  check_mlp_gradients<TestType, true>(3, 4, 5, 2, nn::GeluKind::Tanh);
  check_mlp_gradients<TestType, true>(1, 1, 1, 1, nn::GeluKind::Erf);
  check_mlp_gradients<TestType, true>(0, 3, 5, 2, nn::GeluKind::Tanh);
  check_mlp_gradients<TestType, false>(5, 3, 7, 4, nn::GeluKind::Erf);
  check_mlp_gradients<TestType, false>(1, 1, 1, 1, nn::GeluKind::Erf);
  check_mlp_gradients<TestType, false>(0, 3, 5, 2, nn::GeluKind::Erf);
}
TEMPLATE_LIST_TEST_CASE("MLP errors", "[attention][mlp]", ExecSpaces) { check_mlp_errors<TestType>(); }
