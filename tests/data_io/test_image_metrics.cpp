// metrics/image_metrics: PSNR and SSIM against scikit-image goldens (grey at the minimum 11 x 11 size,
// grey, RGB), exact special values (equal images, known MSE), symmetry, batches, and errors (images
// smaller than the window, shape mismatches).
#include <dcsldm/metrics/image_metrics.hpp>

#include "data_io_testing.hpp"
#include "testing.hpp"

#include <cmath>
#include <string>
#include <vector>

using namespace dcsldm;
using Catch::Matchers::Contains;

namespace {

image::Image golden_image(const test::Golden& g, const std::string& name) {
  const auto s = g.shape(name);
  image::Image img(std::array<std::size_t, 3>{std::size_t(s[0]), std::size_t(s[1]), std::size_t(s[2])});
  const auto v = g.values(name);
  std::copy(v.begin(), v.end(), img.begin());
  return img;
}

}  // namespace

TEST_CASE("metrics: PSNR and SSIM match scikit-image", "[data_io][metrics]") {
  test::Golden g("image_metrics");
  for (const char* name : {"grey_min", "grey", "rgb"}) {
    const std::string n(name);
    const auto a = golden_image(g, n + ".a"), b = golden_image(g, n + ".b");
    const double p = metrics::psnr(a, b), s = metrics::ssim(a, b);
    const double pw = g.values(n + ".psnr")[0], sw = g.values(n + ".ssim")[0];
    INFO(n << ": psnr " << p << " vs " << pw << ", ssim " << s << " vs " << sw);
    CHECK(std::abs(p - pw) < 1e-9 * std::abs(pw));
    CHECK(std::abs(s - sw) < 1e-9);
    CHECK(std::abs(metrics::ssim(b, a) - s) < 1e-12);  // symmetric
  }
}

TEST_CASE("metrics: special values, batches and errors", "[data_io][metrics]") {
  test::Golden g("image_metrics");
  const auto a = golden_image(g, "grey.a"), b = golden_image(g, "grey.b");
  CHECK(std::isinf(metrics::psnr(a, a)));
  CHECK(std::abs(metrics::ssim(a, a) - 1.0) < 1e-12);
  image::Image z(std::array<std::size_t, 3>{12, 12, 2}), t(std::array<std::size_t, 3>{12, 12, 2});
  std::fill(z.begin(), z.end(), 0.0f);
  std::fill(t.begin(), t.end(), 0.25f);
  CHECK(metrics::psnr(z, t) == Approx(10 * std::log10(16.0)).epsilon(1e-12));  // MSE 1/16
  // Constant images: S = C1 / (u^2 + C1) at every pixel.
  const double C1 = 1e-4;
  CHECK(metrics::ssim(z, t) == Approx(C1 / (0.0625 + C1)).epsilon(1e-9));

  image::ImageBatch ba(std::array<std::size_t, 4>{2, 20, 24, 1}), bb(std::array<std::size_t, 4>{2, 20, 24, 1});
  std::copy(a.begin(), a.end(), ba.data());
  std::copy(b.begin(), b.end(), ba.data() + a.size());
  std::copy(b.begin(), b.end(), bb.data());
  std::copy(a.begin(), a.end(), bb.data() + a.size());
  const auto ps = metrics::psnr(ba, bb);
  const auto ss = metrics::ssim(ba, bb);
  REQUIRE(ps.size() == 2);
  REQUIRE(ss.size() == 2);
  CHECK(ps[0] == metrics::psnr(a, b));
  CHECK(ps[1] == metrics::psnr(b, a));
  CHECK(ss[0] == metrics::ssim(a, b));
  CHECK(std::abs(ss[1] - metrics::ssim(a, b)) < 1e-12);
  CHECK(metrics::mean(ss) == Approx((ss[0] + ss[1]) / 2));
  metrics::Ssim eval;
  CHECK(eval.window() == 11);
  CHECK(eval(a, b) == ss[0]);  // reusing the workspace changes nothing
  CHECK(eval(a, b) == ss[0]);

  image::Image small(std::array<std::size_t, 3>{10, 30, 1});
  CHECK_THAT(test::error_of([&] { metrics::ssim(small, small); }),
             Contains("dcsldm::ssim: image is 10 x 30, smaller than the 11 x 11 Gaussian window"));
  CHECK_THAT(test::error_of([&] { metrics::ssim(a, z); }), Contains("dcsldm::ssim: shapes differ: (20, 24, 1) vs (12, 12, 2)"));
  CHECK_THAT(test::error_of([&] { metrics::psnr(a, z); }), Contains("dcsldm::psnr: shapes differ"));
  CHECK_THAT(test::error_of([&] { metrics::Ssim bad(metrics::SsimOptions{0.0}); }), Contains("bad options: sigma = 0"));
}
