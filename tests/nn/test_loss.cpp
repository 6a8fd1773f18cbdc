// L1 and MSE losses: PyTorch parity of value and gradient (with and without per-element weight, exact
// ties where torch's l1 gradient is 0), rank-0 and 1-element outputs, dpred written (=),
// finite-difference gradients, empty input, shape errors.
#include <dcsldm/nn/loss.hpp>

#include "testing.hpp"

using namespace dcsldm;
using test::ExecSpaces;

namespace {

template <class Kind, class ExecSpace, class T>
void check_loss_variant(const test::Golden& g, Kind kind, const std::string& name, bool weighted) {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  auto pred = g.view<T, Mem, 3>("pred");
  auto target = g.view<T, Mem, 3>("target");
  auto weight = g.view<T, Mem, 3>("weight");
  View3<T, Mem> dpred("dpred", pred.extent(0), pred.extent(1), pred.extent(2));
  Kokkos::deep_copy(dpred, T(123));  // written (=), not accumulated
  Kokkos::View<T, Mem> out0("out0");
  View1<T, Mem> out1("out1", 1);
  const double upstream = g.meta_double("upstream");
  if (weighted) {
    nn::loss_forward(space, pred, target, weight, kind, out0);
    nn::loss_forward(space, pred, target, weight, kind, out1);
    nn::loss_backward(space, upstream, pred, target, weight, kind, dpred);
  } else {
    nn::loss_forward(space, pred, target, kind, out0);
    nn::loss_forward(space, pred, target, kind, out1);
    nn::loss_backward(space, upstream, pred, target, kind, dpred);
  }
  const auto want = g.values(name);
  const double v0 = double(compat::to_host(out0)());
  INFO(name << ": loss " << v0 << " vs " << want[0]);
  CHECK(std::abs(v0 - want[0]) <= test::parity_tol<T>() * std::abs(want[0]));
  CHECK(g.error(out1, name) < test::parity_tol<T>());
  CHECK(g.error(dpred, "dpred_" + name) < test::parity_tol<T>());
}

template <class ExecSpace, class T>
void check_loss_golden() {
  test::Golden g("loss");
  check_loss_variant<nn::loss::L1, ExecSpace, T>(g, nn::loss::L1{}, "l1", false);
  check_loss_variant<nn::loss::MSE, ExecSpace, T>(g, nn::loss::MSE{}, "mse", false);
  check_loss_variant<nn::loss::L1, ExecSpace, T>(g, nn::loss::L1{}, "l1_w", true);
  check_loss_variant<nn::loss::MSE, ExecSpace, T>(g, nn::loss::MSE{}, "mse_w", true);
  // Named wrappers are the same functions.
  using Mem = typename ExecSpace::memory_space;
  auto pred = g.view<T, Mem, 3>("pred");
  auto target = g.view<T, Mem, 3>("target");
  View1<T, Mem> out("out", 1);
  View3<T, Mem> dpred("dpred", pred.extent(0), pred.extent(1), pred.extent(2));
  nn::l1_loss_forward(ExecSpace(), pred, target, out);
  CHECK(g.error(out, "l1") < test::parity_tol<T>());
  nn::mse_loss_forward(ExecSpace(), pred, target, out);
  CHECK(g.error(out, "mse") < test::parity_tol<T>());
  nn::l1_loss_backward(ExecSpace(), g.meta_double("upstream"), pred, target, dpred);
  CHECK(g.error(dpred, "dpred_l1") < test::parity_tol<T>());
  nn::mse_loss_backward(ExecSpace(), g.meta_double("upstream"), pred, target, dpred);
  CHECK(g.error(dpred, "dpred_mse") < test::parity_tol<T>());
}

template <class Kind, class ExecSpace>
void check_loss_gradient(Kind kind, int m, int c, bool weighted) {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  View2<double, Mem> pred("pred", m, c), target("target", m, c), weight("weight", m, c), dpred("dpred", m, c);
  Kokkos::View<double, Mem> out("out");
  test::fill_uniform(pred, 61);
  test::fill_uniform(target, 62);
  test::fill_uniform(weight, 63, 0, 2);
  const double upstream = 0.7;
  if (weighted)
    nn::loss_backward(space, upstream, pred, target, weight, kind, dpred);
  else
    nn::loss_backward(space, upstream, pred, target, kind, dpred);
  auto loss = [&] {
    if (weighted)
      nn::loss_forward(space, pred, target, weight, kind, out);
    else
      nn::loss_forward(space, pred, target, kind, out);
    return upstream * compat::to_host(out)();
  };
  INFO(Kind::name << " m=" << m << " c=" << c << " weighted=" << weighted);
  test::check_gradient("loss dpred", space, pred, dpred, loss);
}

template <class ExecSpace>
void check_loss_empty() {
  using Mem = typename ExecSpace::memory_space;
  View2<double, Mem> pred("pred", 0, 3), target("target", 0, 3), dpred("dpred", 0, 3);
  View1<double, Mem> out("out", 1);
  Kokkos::deep_copy(out, 5.0);
  nn::mse_loss_forward(ExecSpace(), pred, target, out);
  nn::mse_loss_backward(ExecSpace(), 1.0, pred, target, dpred);
  CHECK(compat::to_host(out)(0) == 0.0);
}

template <class ExecSpace>
void check_loss_errors() {
  using Mem = typename ExecSpace::memory_space;
  View2<float, Mem> pred("pred", 3, 4), target("target", 3, 5), dpred("dpred", 4, 3);
  View1<float, Mem> out("out", 1), out2("out2", 2);
  CHECK_THROWS_WITH(nn::l1_loss_forward(ExecSpace(), pred, target, out),
                    Catch::Contains("dcsldm::l1_loss_forward") && Catch::Contains("pred is (3, 4)") &&
                        Catch::Contains("target is (3, 5)"));
  CHECK_THROWS_WITH(nn::mse_loss_forward(ExecSpace(), pred, pred, out2),
                    Catch::Contains("dcsldm::mse_loss_forward") && Catch::Contains("with 2 elements"));
  CHECK_THROWS_WITH(nn::mse_loss_backward(ExecSpace(), 1.0, pred, pred, dpred),
                    Catch::Contains("dcsldm::mse_loss_backward") && Catch::Contains("dpred is (4, 3)"));
  View2<float, Mem> w("w", 3, 3);
  CHECK_THROWS_WITH(nn::loss_forward(ExecSpace(), pred, pred, w, nn::loss::L1{}, out),
                    Catch::Contains("weight is (3, 3)"));
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("l1 and mse losses match PyTorch", "[nn][loss]", ExecSpaces) {
  check_loss_golden<TestType, float>();
  check_loss_golden<TestType, double>();
}
TEMPLATE_LIST_TEST_CASE("loss gradients match finite differences", "[nn][loss][grad]", ExecSpaces) {
  for (bool w : {false, true}) {
    check_loss_gradient<nn::loss::L1, TestType>(nn::loss::L1{}, 5, 7, w);
    check_loss_gradient<nn::loss::MSE, TestType>(nn::loss::MSE{}, 5, 7, w);
    check_loss_gradient<nn::loss::L1, TestType>(nn::loss::L1{}, 1, 1, w);
    check_loss_gradient<nn::loss::MSE, TestType>(nn::loss::MSE{}, 1, 1, w);
    check_loss_gradient<nn::loss::MSE, TestType>(nn::loss::MSE{}, 0, 3, w);
  }
}
TEMPLATE_LIST_TEST_CASE("loss of an empty tensor is zero", "[nn][loss]", ExecSpaces) {
  check_loss_empty<TestType>();
}
TEMPLATE_LIST_TEST_CASE("loss shape errors", "[nn][loss]", ExecSpaces) {
  check_loss_errors<TestType>();
}
