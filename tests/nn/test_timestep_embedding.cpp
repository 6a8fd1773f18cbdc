// Timestep embedding: PyTorch (DiT) parity for even and odd dims and another max_period, float
// precision at t ~ 1000, sizes 0/1, errors. Forward only: there is no gradient with respect to t.
#include <dcsldm/nn/timestep_embedding.hpp>

#include "testing.hpp"

using namespace dcsldm;
using test::ExecSpaces;

namespace {

template <class ExecSpace, class T>
void check_timestep_golden() {
  using Mem = typename ExecSpace::memory_space;
  test::Golden g("timestep_embedding");
  auto t = g.view<T, Mem, 1>("t");
  const int b = int(t.extent(0));
  for (auto [name, dim, period] : {std::tuple<const char*, int, double>{"emb_even", 32, 10000.0},
                                   {"emb_odd", 33, 10000.0},
                                   {"emb_p100", 16, 100.0}}) {
    View2<T, Mem> out("out", b, dim);
    Kokkos::deep_copy(out, T(9));  // the zero pad column must be written
    nn::timestep_embedding_forward(ExecSpace(), t, out, period);
    INFO(name << " err " << g.error(out, name));
    CHECK(g.error(out, name) < test::parity_tol<T>());
  }
}

template <class ExecSpace>
void check_timestep_edges() {
  using Mem = typename ExecSpace::memory_space;
  View1<float, Mem> t0("t0", 0), t1("t1", 1);
  View2<float, Mem> e0("e0", 0, 8), e1("e1", 1, 1), e2("e2", 1, 2);
  Kokkos::deep_copy(t1, 3.0f);
  nn::timestep_embedding_forward(ExecSpace(), t0, e0);
  Kokkos::deep_copy(e1, 5.0f);
  nn::timestep_embedding_forward(ExecSpace(), t1, e1);  // half = 0: only the zero pad
  CHECK(test::to_doubles(e1)[0] == 0.0);
  nn::timestep_embedding_forward(ExecSpace(), t1, e2);  // half = 1: freq 1
  CHECK(test::rel_error(test::to_doubles(e2), {std::cos(3.0), std::sin(3.0)}) < 1e-7);
}

template <class ExecSpace>
void check_timestep_errors() {
  using Mem = typename ExecSpace::memory_space;
  View1<float, Mem> t("t", 3);
  View2<float, Mem> out("out", 4, 8);
  CHECK_THROWS_WITH(nn::timestep_embedding_forward(ExecSpace(), t, out),
                    Catch::Contains("dcsldm::timestep_embedding_forward") && Catch::Contains("out.extent(0) = 4") &&
                        Catch::Contains("t.extent(0) = 3"));
  View2<float, Mem> ok("ok", 3, 8);
  CHECK_THROWS_WITH(nn::timestep_embedding_forward(ExecSpace(), t, ok, 0.0), Catch::Contains("max_period = 0"));
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("timestep embedding matches PyTorch", "[nn][timestep]", ExecSpaces) {
  check_timestep_golden<TestType, float>();
  check_timestep_golden<TestType, double>();
}
TEMPLATE_LIST_TEST_CASE("timestep embedding edge sizes", "[nn][timestep]", ExecSpaces) {
  check_timestep_edges<TestType>();
}
TEMPLATE_LIST_TEST_CASE("timestep embedding errors", "[nn][timestep]", ExecSpaces) {
  check_timestep_errors<TestType>();
}
