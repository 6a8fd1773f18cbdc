// Label embedding: PyTorch parity (gather and scatter-add with repeated and null labels), += accumulation,
// label dropout from a mask and from uniforms (also in place), finite-difference gradient, bit-identical
// backward on different execution spaces, sizes 0/1, host-side label checks and shape errors.
#include <dcsldm/nn/label_embedding.hpp>

#include "testing.hpp"

using namespace dcsldm;
using test::ExecSpaces;

namespace {

template <class ExecSpace, class T>
void check_label_golden() {
  using Mem = typename ExecSpace::memory_space;
  test::Golden g("label_embedding");
  const int num_classes = int(g.meta_int("num_classes"));
  nn::LabelEmbedding<T, Mem> p{g.view<T, Mem, 2>("table")};
  REQUIRE(p.num_classes() == num_classes);
  REQUIRE(p.null_label() == num_classes);
  nn::LabelEmbedding<T, Mem> d{View2<T, Mem>("dtable", p.table.extent(0), p.table.extent(1))};
  auto labels = g.view<int, Mem, 1>("labels");
  auto dy = g.view<T, Mem, 2>("dy");
  const int b = int(labels.extent(0));
  View2<T, Mem> y("y", b, p.dim());
  nn::check_labels(labels, num_classes);
  nn::label_embedding_forward(ExecSpace(), labels, p, y);
  nn::label_embedding_backward(ExecSpace(), dy, labels, d);
  CHECK(g.error(y, "y") < test::parity_tol<T>());
  CHECK(g.error(d.table, "dtable") < test::parity_tol<T>());
  nn::label_embedding_backward(ExecSpace(), dy, labels, d);
  auto twice = g.values("dtable");
  for (auto& v : twice) v *= 2;
  CHECK(test::rel_error(test::to_doubles(d.table), twice) < test::parity_tol<T>());

  // Dropout.
  auto drop = g.view<int, Mem, 1>("drop");
  auto u = g.view<T, Mem, 1>("u");
  View1<int, Mem> out("out", b);
  nn::label_dropout_mask(ExecSpace(), labels, drop, num_classes, out);
  CHECK(g.error(out, "labels_mask") == 0);
  nn::label_dropout_uniform(ExecSpace(), labels, u, g.meta_double("prob"), num_classes, out);
  CHECK(g.error(out, "labels_uniform") == 0);
  nn::label_dropout_uniform(ExecSpace(), labels, u, g.meta_double("prob"), num_classes, labels);  // in place
  CHECK(g.error(labels, "labels_uniform") == 0);
}

template <class ExecSpace>
void check_label_gradient(int num_classes, int b, int dim) {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  nn::LabelEmbedding<double, Mem> p{View2<double, Mem>("table", num_classes + 1, dim)};
  nn::LabelEmbedding<double, Mem> d{View2<double, Mem>("dtable", num_classes + 1, dim)};
  View1<int, Mem> labels("labels", b);
  auto h = Kokkos::create_mirror_view(labels);
  for (int i = 0; i < b; ++i) h(i) = (i * 7 + 3) % (num_classes + 1);
  Kokkos::deep_copy(labels, h);
  View2<double, Mem> y("y", b, dim), proj("proj", b, dim);
  test::fill_uniform(p.table, 91);
  test::fill_uniform(proj, 92);
  nn::label_embedding_backward(space, proj, labels, d);
  auto loss = [&] {
    nn::label_embedding_forward(space, labels, p, y);
    return test::dot(y, proj);
  };
  INFO("classes=" << num_classes << " b=" << b << " dim=" << dim);
  test::check_gradient("label_embedding dtable", space, p.table, d.table, loss, 1e-6, 1e-6, 400);
}

/// The backward sums in batch order whatever the backend and thread count: compare with Serial bitwise.
template <class ExecSpace>
void check_label_backward_deterministic() {
#if defined(KOKKOS_ENABLE_SERIAL)
  using Mem = typename ExecSpace::memory_space;
  using HostMem = Kokkos::HostSpace;
  const int num_classes = 5, b = 1000, dim = 33;
  View1<int, Mem> labels("labels", b);
  View2<float, Mem> dy("dy", b, dim), dt("dt", num_classes + 1, dim);
  auto h = Kokkos::create_mirror_view(labels);
  for (int i = 0; i < b; ++i) h(i) = (i * i + 3 * i) % (num_classes + 1);
  Kokkos::deep_copy(labels, h);
  test::fill_uniform(dy, 93);
  nn::label_embedding_backward(ExecSpace(), dy, labels, nn::LabelEmbedding<float, Mem>{dt});
  View2<float, HostMem> dt_ref("dt_ref", num_classes + 1, dim);
  auto dy_h = compat::to_host(dy);
  nn::label_embedding_backward(Kokkos::Serial(), dy_h, h, nn::LabelEmbedding<float, HostMem>{dt_ref});
  CHECK(test::to_doubles(dt) == test::to_doubles(dt_ref));
#endif
}

template <class ExecSpace>
void check_label_errors() {
  using Mem = typename ExecSpace::memory_space;
  View1<int, Mem> labels("labels", 4);
  auto h = Kokkos::create_mirror_view(labels);
  h(0) = 0;
  h(1) = 10;
  h(2) = 11;
  h(3) = 2;
  Kokkos::deep_copy(labels, h);
  CHECK_THROWS_WITH(nn::check_labels(labels, 10),
                    Catch::Contains("dcsldm::check_labels") && Catch::Contains("labels(2) = 11") &&
                        Catch::Contains("[0, num_classes = 10]"));
  h(2) = -1;
  Kokkos::deep_copy(labels, h);
  CHECK_THROWS_WITH(nn::check_labels(labels, 10), Catch::Contains("labels(2) = -1"));
  nn::LabelEmbedding<float, Mem> p{View2<float, Mem>("table", 11, 6)};
  View2<float, Mem> y("y", 4, 5);
  CHECK_THROWS_WITH(nn::label_embedding_forward(ExecSpace(), labels, p, y),
                    Catch::Contains("dcsldm::label_embedding_forward") && Catch::Contains("y is (4, 5)") &&
                        Catch::Contains("expected (B, D) = (4, 6)"));
  View1<int, Mem> drop("drop", 3);
  CHECK_THROWS_WITH(nn::label_dropout_mask(ExecSpace(), labels, drop, 10, labels),
                    Catch::Contains("dcsldm::label_dropout_mask") && Catch::Contains("drop.extent(0) = 3"));
  View1<float, Mem> u("u", 4);
  CHECK_THROWS_WITH(nn::label_dropout_uniform(ExecSpace(), labels, u, 1.5, 10, labels),
                    Catch::Contains("prob = 1.5"));
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("label embedding matches PyTorch", "[nn][label]", ExecSpaces) {
  check_label_golden<TestType, float>();
  check_label_golden<TestType, double>();
}
TEMPLATE_LIST_TEST_CASE("label embedding gradient matches finite differences", "[nn][label][grad]", ExecSpaces) {
  check_label_gradient<TestType>(4, 9, 5);
  check_label_gradient<TestType>(0, 1, 1);
  check_label_gradient<TestType>(3, 0, 4);
  check_label_gradient<TestType>(2, 3, 0);
}
TEMPLATE_LIST_TEST_CASE("label embedding backward is deterministic", "[nn][label]", ExecSpaces) {
  check_label_backward_deterministic<TestType>();
}
TEMPLATE_LIST_TEST_CASE("label embedding errors", "[nn][label]", ExecSpaces) {
  check_label_errors<TestType>();
}
