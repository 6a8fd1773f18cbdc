// image/resize: PyTorch goldens (F.interpolate bicubic / bilinear with align_corners=False, area at
// integer ratios), exact area resizes at non-integer ratios against a naive double integration and by
// conservation of the mean, identities, constants, batches, empty outputs and errors.
#include <dcsldm/image/resize.hpp>

#include "data_io_testing.hpp"
#include "testing.hpp"

#include <cmath>
#include <random>
#include <string>
#include <vector>

using namespace dcsldm;
using Catch::Matchers::Contains;
using image::ResizeFilter;

namespace {

image::Image random_image(std::size_t H, std::size_t W, std::size_t C, unsigned seed) {
  image::Image img(std::array<std::size_t, 3>{H, W, C});
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(0, 1);
  for (auto& v : img) v = d(gen);
  return img;
}

image::Image golden_image(const test::Golden& g, const std::string& name) {
  const auto s = g.shape(name);
  image::Image img(std::array<std::size_t, 3>{std::size_t(s[0]), std::size_t(s[1]), std::size_t(s[2])});
  const auto v = g.values(name);
  std::copy(v.begin(), v.end(), img.begin());
  return img;
}

std::vector<double> doubles(const image::Image& img) { return std::vector<double>(img.begin(), img.end()); }

/// Naive area resize: 2D overlap integration of the output footprint with every input pixel, double.
std::vector<double> naive_area(const image::Image& in, std::size_t OH, std::size_t OW) {
  const std::size_t H = in.shape()[0], W = in.shape()[1], C = in.shape()[2];
  const double ry = double(H) / OH, rx = double(W) / OW;
  std::vector<double> out(OH * OW * C, 0.0);
  for (std::size_t o = 0; o < OH; ++o)
    for (std::size_t p = 0; p < OW; ++p)
      for (std::size_t k = 0; k < H; ++k)
        for (std::size_t l = 0; l < W; ++l) {
          const double oy = std::max(0.0, std::min((o + 1) * ry, k + 1.0) - std::max(o * ry, double(k)));
          const double ox = std::max(0.0, std::min((p + 1) * rx, l + 1.0) - std::max(p * rx, double(l)));
          for (std::size_t c = 0; c < C; ++c) out[(o * OW + p) * C + c] += oy * ox * in(k, l, c) / (ry * rx);
        }
  return out;
}

double mean(const image::Image& img) {
  double s = 0;
  for (float v : img) s += v;
  return s / double(img.size());
}

}  // namespace

TEST_CASE("resize: PyTorch F.interpolate goldens", "[data_io][resize]") {
  test::Golden g("resize");
  for (const auto& [name, mode] : g.file.metadata()) {
    const ResizeFilter f = mode == "area" ? ResizeFilter::Area
                           : mode == "bilinear" ? ResizeFilter::Bilinear
                                                : ResizeFilter::Bicubic;
    const auto x = golden_image(g, name + ".x");
    const auto ys = g.shape(name + ".y");
    const auto y = image::resize(x, std::size_t(ys[0]), std::size_t(ys[1]), f);
    const double err = test::rel_error(doubles(y), g.values(name + ".y"));
    INFO(name << " (" << mode << ") rel err " << err);
    CHECK(err < test::parity_tol<float>());
  }
  CHECK(g.file.metadata().size() == 8);
}

TEST_CASE("resize: exact area at non-integer ratios", "[data_io][resize]") {
  const std::size_t sizes[][4] = {{13, 17, 5, 7}, {7, 5, 10, 3}, {9, 11, 9, 4}, {3, 3, 8, 8}, {1, 6, 4, 4}, {16, 16, 5, 5}};
  unsigned seed = 1;
  for (const auto& s : sizes) {
    const auto x = random_image(s[0], s[1], 2, seed++);
    const auto y = image::resize(x, s[2], s[3], ResizeFilter::Area);
    const double err = test::rel_error(doubles(y), naive_area(x, s[2], s[3]));
    INFO(s[0] << "x" << s[1] << " -> " << s[2] << "x" << s[3] << " err " << err << " mean " << mean(y) << " vs "
              << mean(x));
    CHECK(err < 1e-6);
    CHECK(std::abs(mean(y) - mean(x)) < 1e-6 * mean(x));  // the box filter conserves the mean exactly
  }
  // Upscaling by an integer factor replicates pixels (nearest), 3 -> 4 mixes by area.
  const auto x = random_image(2, 3, 1, 9);
  const auto up = image::resize(x, 4, 6, ResizeFilter::Area);
  CHECK(up(0, 0, 0) == x(0, 0, 0));
  CHECK(up(3, 5, 0) == x(1, 2, 0));
  image::Image row(std::array<std::size_t, 3>{1, 3, 1});
  row(0, 0, 0) = 0;
  row(0, 1, 0) = 1;
  row(0, 2, 0) = 0;
  const auto mixed = image::resize(row, 1, 4, ResizeFilter::Area);  // footprints of 0.75 px
  CHECK(mixed(0, 0, 0) == 0.0f);
  CHECK(mixed(0, 1, 0) == Approx(2.0 / 3).epsilon(1e-6));  // [0.75, 1.5): 0.5 of 0.75 on pixel 1
  CHECK(mixed(0, 2, 0) == Approx(2.0 / 3).epsilon(1e-6));
  CHECK(mixed(0, 3, 0) == 0.0f);
}

TEST_CASE("resize: identity, constants, batches, empty, errors", "[data_io][resize]") {
  const auto x = random_image(6, 9, 3, 4);
  for (auto f : {ResizeFilter::Area, ResizeFilter::Bilinear, ResizeFilter::Bicubic}) {
    INFO(image::resize_filter_name(f));
    const auto same = image::resize(x, 6, 9, f);
    for (std::size_t i = 0; i < x.size(); ++i) REQUIRE(same.data()[i] == x.data()[i]);
    image::Image c(std::array<std::size_t, 3>{5, 7, 1});
    std::fill(c.begin(), c.end(), 0.3f);
    for (auto [oh, ow] : {std::pair<std::size_t, std::size_t>{3, 2}, {11, 13}, {1, 1}}) {
      const auto y = image::resize(c, oh, ow, f);
      for (float v : y) REQUIRE(std::abs(v - 0.3f) < 1e-6f);
    }
    // A batch is its images resized one by one.
    image::ImageBatch b(std::array<std::size_t, 4>{3, 6, 9, 3});
    for (std::size_t n = 0; n < 3; ++n) {
      const auto xn = random_image(6, 9, 3, 20 + unsigned(n));
      std::copy(xn.begin(), xn.end(), b.data() + n * xn.size());
    }
    const auto yb = image::resize(b, 4, 13, f);
    REQUIRE(yb.shape() == std::array<std::size_t, 4>{3, 4, 13, 3});
    for (std::size_t n = 0; n < 3; ++n) {
      const auto yn = image::resize(image::batch_item(b, n), 4, 13, f);
      for (std::size_t i = 0; i < yn.size(); ++i) REQUIRE(yb.data()[n * yn.size() + i] == yn.data()[i]);
    }
    CHECK(image::resize(x, 0, 4, f).size() == 0);
  }
  image::Image none(std::array<std::size_t, 3>{0, 4, 1});
  CHECK_THAT(test::error_of([&] { image::resize(none, 3, 3, ResizeFilter::Bicubic); }),
             Contains("dcsldm::resize: cannot resize 0 x 4 pixels to 3 x 3 (bicubic)"));
  image::Resizer r(6, 9, 3, 3, ResizeFilter::Area);
  CHECK_THAT(test::error_of([&] { r(random_image(6, 8, 1, 0)); }),
             Contains("dcsldm::resize: image is 6 x 8 but the Resizer expects 6 x 9"));
}
