// Classifier and its layers: conv2d / avg_pool2 / cross_entropy against PyTorch goldens and finite
// differences; the whole classifier's logits, features, loss and every parameter gradient against PyTorch
// and finite differences; training learns a separable toy task and is bit-identical for a seed; model files
// round-trip, and wrong or truncated files are refused with their name.
#include <dcsldm/cls/classifier.hpp>
#include <dcsldm/cls/trainer.hpp>

#include "testing.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>

using namespace dcsldm;
using test::ExecSpaces;

namespace {

template <class ExecSpace, class T>
void check_conv_golden() {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  test::Golden g("conv2d");
  auto x = g.view<T, Mem, 4>("x");
  nn::Conv2d<T, Mem> p{{g.view<T, Mem, 2>("w"), g.view<T, Mem, 1>("b")}, 3};
  nn::Conv2d<T, Mem> d{{View2<T, Mem>("dw", p.lin.weight.extent(0), p.lin.weight.extent(1)),
                        View1<T, Mem>("db", p.lin.bias.extent(0))}, 3};
  const std::size_t B = x.extent(0), H = x.extent(1), W = x.extent(2), C = x.extent(3);
  View4<T, Mem> y("y", B, H, W, 4), dx("dx", B, H, W, C);
  View2<T, Mem> cols("cols", B * H * W, 9 * C), dcols("dcols", B * H * W, 9 * C);
  nn::conv2d_forward(space, x, p, y, cols);
  auto dy = g.view<T, Mem, 4>("dy");
  nn::conv2d_backward(space, dy, cols, p, d, dx, dcols);
  CHECK(g.error(y, "y") < test::parity_tol<T>());
  CHECK(g.error(dx, "dx") < test::parity_tol<T>());
  CHECK(g.error(d.lin.weight, "dw") < test::parity_tol<T>());
  CHECK(g.error(d.lin.bias, "db") < test::parity_tol<T>());
}

template <class ExecSpace, class T>
void check_pool_ce_golden() {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  test::Golden gp("avg_pool2");
  auto x = gp.view<T, Mem, 4>("x");
  auto dy = gp.view<T, Mem, 4>("dy");
  View4<T, Mem> y("y", dy.extent(0), dy.extent(1), dy.extent(2), dy.extent(3));
  View4<T, Mem> dx("dx", x.extent(0), x.extent(1), x.extent(2), x.extent(3));
  nn::avg_pool2_forward(space, x, y);
  nn::avg_pool2_backward(space, dy, dx);
  CHECK(gp.error(y, "y") < test::parity_tol<T>());
  CHECK(gp.error(dx, "dx") < test::parity_tol<T>());

  test::Golden gc("cross_entropy");
  auto z = gc.view<T, Mem, 2>("z");
  auto labels = gc.view<int, Mem, 1>("labels");
  View2<T, Mem> dz("dz", z.extent(0), z.extent(1));
  Kokkos::View<accum_t<T>, Mem> loss("loss");
  nn::cross_entropy_forward(space, z, labels, loss);
  nn::cross_entropy_backward(space, 1.0, z, labels, dz);
  auto hl = Kokkos::create_mirror_view(loss);
  Kokkos::deep_copy(hl, loss);
  CHECK(std::abs(double(hl()) - gc.values("loss")[0]) / std::abs(gc.values("loss")[0]) < test::parity_tol<T>());
  CHECK(gc.error(dz, "dz") < test::parity_tol<T>());
}

template <class ExecSpace>
void check_layer_gradients(int B, int H, int W, int C, int Cout) {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  nn::Conv2d<double, Mem> p{{View2<double, Mem>("w", Cout, 9 * C), View1<double, Mem>("b", Cout)}, 3};
  nn::Conv2d<double, Mem> d{{View2<double, Mem>("dw", Cout, 9 * C), View1<double, Mem>("db", Cout)}, 3};
  View4<double, Mem> x("x", B, H, W, C), dx("dx", B, H, W, C), y("y", B, H, W, Cout), proj("proj", B, H, W, Cout);
  View4<double, Mem> py("py", B, H / 2, W / 2, Cout), pproj("pproj", B, H / 2, W / 2, Cout);
  View4<double, Mem> dpy("dpy", B, H, W, Cout);
  View2<double, Mem> cols("cols", B * H * W, 9 * C), dcols("dcols", B * H * W, 9 * C);
  test::fill_uniform(x, 1);
  test::fill_uniform(p.lin.weight, 2);
  test::fill_uniform(p.lin.bias, 3);
  test::fill_uniform(proj, 4);
  test::fill_uniform(pproj, 5);
  nn::conv2d_forward(space, x, p, y, cols);
  nn::conv2d_backward(space, proj, cols, p, d, dx, dcols);
  auto conv_loss = [&] {
    nn::conv2d_forward(space, x, p, y, cols);
    return test::dot(y, proj);
  };
  INFO("B=" << B << " H=" << H << " W=" << W << " C=" << C << " Cout=" << Cout);
  test::check_gradient("conv2d dx", space, x, dx, conv_loss);
  test::check_gradient("conv2d dw", space, p.lin.weight, d.lin.weight, conv_loss);
  test::check_gradient("conv2d db", space, p.lin.bias, d.lin.bias, conv_loss);
  // pooling on the conv output
  nn::avg_pool2_backward(space, pproj, dpy);
  auto pool_loss = [&] {
    nn::avg_pool2_forward(space, y, py);
    return test::dot(py, pproj);
  };
  test::check_gradient("avg_pool2 dx", space, y, dpy, pool_loss);
  // cross-entropy on (B*H, W) logits
  View2<double, Mem> z("z", B * H, W), dz("dz", B * H, W);
  View1<int, Mem> labels("labels", B * H);
  auto hlab = Kokkos::create_mirror_view(labels);
  for (int i = 0; i < B * H; ++i) hlab(i) = (i * 5 + 1) % W;
  Kokkos::deep_copy(labels, hlab);
  test::fill_uniform(z, 6, -3, 3);
  Kokkos::View<double, Mem> loss("loss");
  nn::cross_entropy_backward(space, 0.7, z, labels, dz);
  auto ce_loss = [&] {
    nn::cross_entropy_forward(space, z, labels, loss);
    auto h = Kokkos::create_mirror_view(loss);
    Kokkos::deep_copy(h, loss);
    return 0.7 * h();
  };
  test::check_gradient("cross_entropy dz", space, z, dz, ce_loss);
}

template <class ExecSpace>
cls::ClassifierConfig golden_config(const test::Golden& g) {
  cls::ClassifierConfig c;
  c.res = int(g.meta_int("res"));
  c.channels = int(g.meta_int("channels"));
  c.conv1 = int(g.meta_int("conv1"));
  c.conv2 = int(g.meta_int("conv2"));
  c.hidden = int(g.meta_int("hidden"));
  c.num_classes = int(g.meta_int("num_classes"));
  return c;
}

template <class ExecSpace, class T>
void load_golden_params(const test::Golden& g, cls::Classifier<ExecSpace, T>& m) {
  auto& a = m.arena();
  for (const auto& s : a.layout.slots()) {
    const auto v = g.values(s.name);
    auto h = Kokkos::create_mirror_view(a.params);
    Kokkos::deep_copy(h, a.params);
    REQUIRE(std::size_t(s.numel()) == v.size());
    for (std::size_t i = 0; i < v.size(); ++i) h(s.offset + i) = T(v[i]);
    Kokkos::deep_copy(a.params, h);
  }
}

template <class ExecSpace, class T>
void check_classifier_golden() {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  test::Golden g("classifier");
  const auto cfg = golden_config<ExecSpace>(g);
  const int B = int(g.meta_int("batch"));
  cls::Classifier<ExecSpace, T> m(cfg, B, optim::ArenaState::ParamsAndOptimizer);
  load_golden_params(g, m);
  m.arena();
  optim::zero_grad(space, m.arena());
  Kokkos::deep_copy(m.input(), g.view<T, Mem, 4>("x"));
  auto labels = g.view<int, Mem, 1>("labels");
  Kokkos::View<accum_t<T>, Mem> loss("loss");
  m.forward(space);
  m.loss(space, labels, loss);
  m.backward(space);
  CHECK(g.error(m.logits(), "logits") < test::parity_tol<T>());
  CHECK(g.error(m.features(), "features") < test::parity_tol<T>());
  auto hl = Kokkos::create_mirror_view(loss);
  Kokkos::deep_copy(hl, loss);
  CHECK(std::abs(double(hl()) - g.values("loss")[0]) / g.values("loss")[0] < test::parity_tol<T>());
  const auto grads = test::to_doubles(m.arena().grads);
  for (const auto& s : m.arena().layout.slots()) {
    const std::vector<double> got(grads.begin() + std::ptrdiff_t(s.offset),
                                  grads.begin() + std::ptrdiff_t(s.offset + std::size_t(s.numel())));
    INFO(s.name);
    CHECK(test::rel_error(got, g.values("grad." + s.name)) < 10 * test::parity_tol<T>());
  }
}

template <class ExecSpace>
void check_classifier_fd() {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  cls::ClassifierConfig c;
  c.res = 8;
  c.channels = 2;
  c.conv1 = 3;
  c.conv2 = 4;
  c.hidden = 5;
  c.num_classes = 4;
  const int B = 3;
  cls::Classifier<ExecSpace, double> m(c, B, optim::ArenaState::ParamsAndOptimizer);
  m.init(space, 7);
  test::fill_uniform(m.input(), 8, 0, 1);
  View1<int, Mem> labels("labels", B);
  auto h = Kokkos::create_mirror_view(labels);
  for (int i = 0; i < B; ++i) h(i) = (3 * i + 1) % c.num_classes;
  Kokkos::deep_copy(labels, h);
  Kokkos::View<double, Mem> loss("loss");
  optim::zero_grad(space, m.arena());
  m.forward(space);
  m.loss(space, labels, loss);
  m.backward(space);
  auto f = [&] {
    m.forward(space);
    nn::cross_entropy_forward(space, m.logits(), labels, loss);
    auto hl = Kokkos::create_mirror_view(loss);
    Kokkos::deep_copy(hl, loss);
    return double(hl());
  };
  test::check_gradient("classifier parameters", space, m.arena().params, m.arena().grads, f, 1e-6, 1e-5, 300);
}

// Three classes of 8x8 images: a horizontal bar, a vertical bar, a diagonal, at random places with noise.
void toy_set(int n, std::vector<float>& img, std::vector<int>& lab, unsigned seed) {
  std::mt19937 g(seed);
  std::uniform_int_distribution<int> pos(1, 6), cls3(0, 2);
  std::uniform_real_distribution<float> noise(0.f, 0.2f);
  img.assign(std::size_t(n) * 64, 0.f);
  lab.resize(std::size_t(n));
  for (int i = 0; i < n; ++i) {
    const int k = cls3(g), p = pos(g);
    lab[std::size_t(i)] = k;
    float* im = img.data() + std::size_t(i) * 64;
    for (int j = 0; j < 64; ++j) im[j] = noise(g);
    for (int t = 0; t < 8; ++t) {
      if (k == 0) im[p * 8 + t] = 1;
      if (k == 1) im[t * 8 + p] = 1;
      if (k == 2) im[t * 8 + t] = 1;
    }
  }
}

template <class ExecSpace>
void check_training() {
  ExecSpace space;
  std::vector<float> img, test_img;
  std::vector<int> lab, test_lab;
  toy_set(300, img, lab, 1);
  toy_set(200, test_img, test_lab, 2);
  cls::ClassifierConfig c;
  c.res = 8;
  c.conv1 = 4;
  c.conv2 = 8;
  c.hidden = 16;
  c.num_classes = 3;
  cls::ClassifierTrainOptions o;
  o.batch = 16;
  o.steps = 150;
  o.warmup = 10;
  o.shift = 1;
  o.flip = false;
  o.seed = 5;
  const cls::LabelledSet data{img.data(), lab.data(), std::int64_t(lab.size())};
  cls::ClassifierTrainer<ExecSpace, float> tr(c, o, data), tr2(c, o, data);
  tr.init(space);
  tr2.init(space);
  const double acc0 = cls::classifier_accuracy(space, tr.model(), test_img.data(), test_lab.data(), 200);
  const double first = tr.step(space);
  tr2.step(space);
  tr.run(space, nullptr);
  tr2.run(space, nullptr);
  double last = 0;
  const double acc = cls::classifier_accuracy(space, tr.model(), test_img.data(), test_lab.data(), 200);
  INFO("accuracy " << acc0 << " -> " << acc << ", first loss " << first);
  CHECK(acc > 0.95);
  CHECK(acc0 < 0.7);
  (void)last;
  CHECK(test::to_doubles(tr.model().arena().params) == test::to_doubles(tr2.model().arena().params));
  // save / load round trip, then refusals
  // One file per execution space: ctest runs the instances of this template test case in parallel.
  const std::string path =
      (std::filesystem::temp_directory_path() / ("dcsldm_cls_test_" + std::string(ExecSpace::name()) + ".safetensors"))
          .string();
  tr.model().save(path, {{"train.note", "test"}});
  auto back = cls::Classifier<ExecSpace, float>::load(path, 7);
  CHECK(back.config().to_metadata() == c.to_metadata());
  CHECK(test::to_doubles(back.arena().params) == test::to_doubles(tr.model().arena().params));
  std::vector<int> p1(200), p2(200);
  back.predict(space, test_img.data(), 200, p1.data());
  tr.model().predict(space, test_img.data(), 200, p2.data());
  CHECK(p1 == p2);
  {
    const auto size = std::filesystem::file_size(path);
    std::filesystem::resize_file(path, size - 10);
  }
  using Cls = cls::Classifier<ExecSpace, float>;
  CHECK_THROWS_WITH(Cls::load(path, 4), Catch::Contains(path));
  std::filesystem::remove(path);
}

template <class ExecSpace>
void check_errors() {
  cls::ClassifierConfig c;
  c.res = 10;
  CHECK_THROWS_WITH(c.validate(), Catch::Contains("res = 10"));
  c.res = 8;
  std::vector<float> img(64, 0.f);
  std::vector<int> lab{3};
  c.num_classes = 3;
  cls::ClassifierTrainOptions o;
  const cls::LabelledSet data{img.data(), lab.data(), 1};
  using Tr = cls::ClassifierTrainer<ExecSpace, float>;
  CHECK_THROWS_WITH(Tr(c, o, data), Catch::Contains("sample 0 has label 3"));
  using Mem = typename ExecSpace::memory_space;
  nn::Conv2d<float, Mem> p{{View2<float, Mem>("w", 4, 9 * 2), View1<float, Mem>("b", 4)}, 3};
  View4<float, Mem> x("x", 1, 4, 4, 3), y("y", 1, 4, 4, 4);
  View2<float, Mem> cols("cols", 16, 18);
  CHECK_THROWS_WITH(nn::conv2d_forward(ExecSpace(), x, p, y, cols), Catch::Contains("x has 3 channels"));
  View4<float, Mem> odd("odd", 1, 5, 4, 1), half("half", 1, 2, 2, 1);
  CHECK_THROWS_WITH(nn::avg_pool2_forward(ExecSpace(), odd, half), Catch::Contains("not even"));
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("conv2d matches PyTorch", "[cls][conv]", ExecSpaces) {
  check_conv_golden<TestType, float>();
  check_conv_golden<TestType, double>();
}
TEMPLATE_LIST_TEST_CASE("avg_pool2 and cross_entropy match PyTorch", "[cls]", ExecSpaces) {
  check_pool_ce_golden<TestType, float>();
  check_pool_ce_golden<TestType, double>();
}
TEMPLATE_LIST_TEST_CASE("conv2d, avg_pool2, cross_entropy gradients match finite differences", "[cls][grad]",
                        ExecSpaces) {
  check_layer_gradients<TestType>(2, 4, 6, 3, 2);
  check_layer_gradients<TestType>(1, 2, 2, 1, 1);
}
TEMPLATE_LIST_TEST_CASE("classifier matches PyTorch (logits, features, loss, every gradient)", "[cls]", ExecSpaces) {
  check_classifier_golden<TestType, float>();
  check_classifier_golden<TestType, double>();
}
TEMPLATE_LIST_TEST_CASE("classifier gradients match finite differences", "[cls][grad]", ExecSpaces) {
  check_classifier_fd<TestType>();
}
TEMPLATE_LIST_TEST_CASE("classifier training learns, is deterministic, files round-trip", "[cls][train]", ExecSpaces) {
  check_training<TestType>();
}
TEMPLATE_LIST_TEST_CASE("classifier errors", "[cls]", ExecSpaces) { check_errors<TestType>(); }
