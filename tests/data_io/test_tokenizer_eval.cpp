// eval/{sources,json,tokenizer_eval}: the tokenizer evaluation harness. Sources (font renders exact
// across resolutions, input == ground truth at the same size, same seed same samples, categories;
// Fashion-MNIST raw images and class names; PNG folders, non-square resizing, channels, clamping of
// n; errors), evaluate_tokenizer (bicubic reconstruction == bicubic baseline, exact reconstruction ==
// PSNR cap and SSIM 1, baseline against an independent computation, record layout, progress, shape and
// NaN errors), choose_levels and allocate_levels (per-category / per-class means with a fake model
// whose PSNR grows with the levels, early stop), JSON (parsed back with nlohmann::json) and atomic write.
#include <dcsldm/eval/json.hpp>
#include <dcsldm/eval/sources.hpp>
#include <dcsldm/eval/tokenizer_eval.hpp>

#include "data_io_testing.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

using namespace dcsldm;
using Catch::Matchers::Contains;

namespace {

const std::string dejavu = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const std::string fmnist_dir = "/usr/share/datasets/fashion-mnist";

bool exists(const std::string& p) {
  std::error_code ec;
  return std::filesystem::exists(p, ec);
}

double max_abs_diff(const float* a, const float* b, std::size_t n) {
  double m = 0;
  for (std::size_t i = 0; i < n; ++i) m = std::max(m, std::abs(double(a[i]) - double(b[i])));
  return m;
}
double max_abs_diff(const image::Image& a, const image::Image& b) {
  REQUIRE(a.shape() == b.shape());
  return max_abs_diff(a.data(), b.data(), a.size());
}

/// Index of the source sample whose input at in_res equals batch item k (the fake models know the
/// samples only through their inputs). Fails the test when none or several match.
std::size_t find_sample(const eval::EvalSource& src, const image::ImageBatch& inputs, std::size_t k, int in_res) {
  const image::Image x = image::batch_item(inputs, k);
  std::size_t found = src.size(), hits = 0;
  for (std::size_t i = 0; i < src.size(); ++i)
    if (max_abs_diff(src.input(i, in_res), x) == 0) {
      found = i;
      ++hits;
    }
  REQUIRE(hits >= 1);
  return found;
}

image::ImageBatch bicubic_model(const image::ImageBatch& in, int, int out_res) {
  return image::resize(in, std::size_t(out_res), std::size_t(out_res), image::ResizeFilter::Bicubic);
}

/// Writes (H, W, C) pixels v(i, j, c) = a deterministic pattern into a PNG.
void write_pattern_png(const std::string& path, std::size_t H, std::size_t W, std::size_t C, int salt) {
  image::Image img(std::array<std::size_t, 3>{H, W, C});
  for (std::size_t i = 0; i < H; ++i)
    for (std::size_t j = 0; j < W; ++j)
      for (std::size_t c = 0; c < C; ++c)
        img(i, j, c) = float(((i * 7 + j * 13 + c * 29 + std::size_t(salt) * 31) % 256)) / 255.0f;
  image::write_png(path, img);
}

/// Mean over samples of min(cap, PSNR) of clamp(bicubic(input)) vs ground truth, computed directly.
double reference_bicubic_psnr(const eval::EvalSource& src, int in_res, int out_res) {
  double s = 0;
  for (std::size_t i = 0; i < src.size(); ++i) {
    image::Image b = image::resize(src.input(i, in_res), std::size_t(out_res), std::size_t(out_res),
                                   image::ResizeFilter::Bicubic);
    for (auto& v : b) v = std::min(1.0f, std::max(0.0f, v));
    s += std::min(eval::psnr_cap_db, metrics::psnr(b, src.ground_truth(i, out_res)));
  }
  return s / double(src.size());
}

/// A fake model: its reconstruction of a sample of class c with m levels has PSNR exactly
/// base + 4 m + offset[c] (a blend of the ground truth towards 0.5, never leaving [0, 1]).
struct GradedModel {
  const eval::EvalSource* src;
  int in_res;
  std::vector<double> offset;  // per label
  int* calls;
  image::ImageBatch operator()(const image::ImageBatch& in, int m, int out_res) const {
    ++*calls;
    const std::size_t N = in.shape()[0], R = std::size_t(out_res), C = in.shape()[3];
    image::ImageBatch out(std::array<std::size_t, 4>{N, R, R, C});
    for (std::size_t k = 0; k < N; ++k) {
      const std::size_t i = find_sample(*src, in, k, in_res);
      const image::Image gt = src->ground_truth(i, out_res);
      const double P = 20.0 + 4.0 * m + offset[std::size_t(src->label(i))];
      double e = 0;  // mean (0.5 - gt)^2
      for (float v : gt) e += (0.5 - v) * (0.5 - v);
      e /= double(gt.size());
      const double a = std::sqrt(std::pow(10.0, -P / 10.0) / e);
      REQUIRE(a <= 1.0);
      for (std::size_t q = 0; q < gt.size(); ++q)
        out.data()[k * gt.size() + q] = float((1 - a) * gt.data()[q] + a * 0.5);
    }
    return out;
  }
};

}  // namespace

TEST_CASE("tokenizer_eval: font source renders the same glyph exactly at every size", "[data_io][eval]") {
  if (!exists(dejavu)) {
    WARN(dejavu << " missing: skipped");
    return;
  }
  const eval::EvalSource src = eval::make_source("font:" + dejavu, 12, 7);
  REQUIRE(src.size() == 12);
  REQUIRE(src.channels() == 1);
  CHECK(src.kind() == eval::SourceKind::Font);
  CHECK(src.spec() == "font:" + dejavu);
  CHECK(src.note().empty());
  // Round-robin over the categories: A a 0 ! B b 1 " ...
  CHECK(src.sample(0).code_point == U'A');
  CHECK(src.sample(1).code_point == U'a');
  CHECK(src.sample(2).code_point == U'0');
  CHECK(src.sample(3).code_point == U'!');
  CHECK(src.sample(4).code_point == U'B');
  CHECK(src.sample(7).code_point == U'"');
  CHECK(src.group(0) == "upper");
  CHECK(src.group(1) == "lower");
  CHECK(src.group(2) == "digit");
  CHECK(src.group(3) == "punctuation");
  CHECK(src.label(3) == 3);
  CHECK(src.name(0) == "U+0041 'A'");
  CHECK(src.groups() == std::vector<std::string>{"upper", "lower", "digit", "punctuation"});

  double worst_exact = 0, worst_mean = 0;
  for (std::size_t i = 0; i < src.size(); ++i) {
    INFO("sample " << i << " " << src.name(i));
    const image::Image g64 = src.ground_truth(i, 64);
    const image::Image g32 = src.ground_truth(i, 32);
    REQUIRE(g32.shape() == (std::array<std::size_t, 3>{32, 32, 1}));
    double ink = 0;
    for (float v : g32) ink += v;
    CHECK(ink > 5);  // something was drawn
    // 32 and 64 px rasterise the same 128-px outline (oversample 4 and 2): equal up to float rounding.
    const double d = max_abs_diff(g32, image::resize(g64, 32, 32, image::ResizeFilter::Area));
    CHECK(d < 1e-5);
    worst_exact = std::max(worst_exact, d);
    // 20 vs 60 px: different rasters (140 and 180 px), so only FreeType's raster error remains.
    const image::Image g20 = src.ground_truth(i, 20);
    const image::Image d60 = image::resize(src.ground_truth(i, 60), 20, 20, image::ResizeFilter::Area);
    double mean = 0;
    for (std::size_t q = 0; q < g20.size(); ++q) mean += std::abs(double(g20.data()[q]) - double(d60.data()[q]));
    mean /= double(g20.size());
    CHECK(mean < 1e-3);
    worst_mean = std::max(worst_mean, mean);
    CHECK(max_abs_diff(src.input(i, 24), src.ground_truth(i, 24)) == 0);
    // The glyph stays inside the canvas (the border rows and columns are blank).
    for (std::size_t q = 0; q < 64; ++q) {
      CHECK(g64(0, q, 0) == 0);
      CHECK(g64(63, q, 0) == 0);
      CHECK(g64(q, 0, 0) == 0);
      CHECK(g64(q, 63, 0) == 0);
    }
  }
  WARN("font ground truth: max |gt32 - area(gt64)| = " << worst_exact << ", max mean |gt20 - area(gt60)| = "
                                                       << worst_mean);

  // Placements: scaled with the resolution; same seed same images, other seed other placements.
  const data::GlyphPlacement p1 = src.glyph_placement(5, 1), p40 = src.glyph_placement(5, 40);
  CHECK(p40.size == 40);
  CHECK(p40.em == p1.em);
  CHECK(p40.dx == Approx(40 * p1.dx).epsilon(1e-15));
  CHECK(p1.em >= 0.6);
  CHECK(p1.em <= 0.8);
  CHECK(std::abs(p1.dx) <= 1.0 / 64);
  const eval::EvalSource same = eval::make_source("font:" + dejavu, 12, 7);
  const eval::EvalSource other = eval::make_source("font:" + dejavu, 12, 8);
  std::size_t differ = 0;
  for (std::size_t i = 0; i < 12; ++i) {
    CHECK(max_abs_diff(same.input(i, 32), src.input(i, 32)) == 0);
    CHECK(other.sample(i).code_point == src.sample(i).code_point);
    if (max_abs_diff(other.input(i, 32), src.input(i, 32)) > 0.05) ++differ;
  }
  CHECK(differ >= 10);

  // n = 0: every printable ASCII glyph once; n larger: repeats with a note.
  const eval::EvalSource all = eval::make_source("font:" + dejavu, 0, 1);
  CHECK(all.size() == 94);
  std::vector<int> per(4, 0);
  for (std::size_t i = 0; i < all.size(); ++i) ++per[std::size_t(all.label(i))];
  CHECK(per == std::vector<int>{26, 26, 10, 32});
  const eval::EvalSource more = eval::make_source("font:" + dejavu, 100, 1);
  CHECK(more.size() == 100);
  CHECK(more.sample(94).code_point == more.sample(0).code_point);
  CHECK_THAT(more.note(), Contains("94"));
}

TEST_CASE("tokenizer_eval: fmnist source gives the raw test images and class names", "[data_io][eval]") {
  if (!exists(fmnist_dir + "/t10k-images-idx3-ubyte.gz")) {
    WARN(fmnist_dir << " missing (Debian dataset-fashion-mnist): skipped");
    return;
  }
  const data::LabelledImages raw = data::load_fashion_mnist(data::Split::Test, fmnist_dir);
  const eval::EvalSource src = eval::make_source("fmnist:test", 6, 123);
  REQUIRE(src.size() == 6);
  CHECK(src.channels() == 1);
  CHECK(src.max_exact_res() == 28);
  CHECK(src.note().empty());
  CHECK(src.groups().size() == 10);
  for (std::size_t i = 0; i < 6; ++i) {
    const image::Image x = src.input(i, 28);
    REQUIRE(x.shape() == (std::array<std::size_t, 3>{28, 28, 1}));
    CHECK(max_abs_diff(x.data(), raw.images.data() + i * 784, 784) == 0);
    CHECK(src.label(i) == int(raw.labels[i]));
    CHECK(src.group(i) == data::fashion_mnist_class_names()[raw.labels[i]]);
    CHECK(src.name(i) == "test[" + std::to_string(i) + "]");
    // 14 px: the exact 2 x 2 box mean of the raw image.
    const image::Image h = src.ground_truth(i, 14);
    for (std::size_t r = 0; r < 14; ++r)
      for (std::size_t c = 0; c < 14; ++c) {
        const float* b = raw.images.data() + i * 784;
        const double m = (double(b[2 * r * 28 + 2 * c]) + b[2 * r * 28 + 2 * c + 1] + b[(2 * r + 1) * 28 + 2 * c] +
                          b[(2 * r + 1) * 28 + 2 * c + 1]) / 4;
        CHECK(h(r, c, 0) == Approx(m).margin(1e-6));
      }
  }
  const eval::EvalSource big = eval::make_source("fmnist:test", 20000, 0);
  CHECK(big.size() == 10000);
  CHECK_THAT(big.note(), Contains("clamped to 10000"));
  CHECK(eval::make_source("fmnist:test", 0, 0).size() == 10000);
}

TEST_CASE("tokenizer_eval: images source from a folder of PNGs; source errors", "[data_io][eval]") {
  test::TempDir dir("eval_images");
  write_pattern_png(dir.file("a.png"), 32, 32, 3, 1);
  write_pattern_png(dir.file("b.png"), 24, 40, 4, 2);  // non-square RGBA
  write_pattern_png(dir.file("c.png"), 16, 16, 1, 3);  // grey
  test::write_bytes(dir.file("notes.txt"), {'h', 'i'});
  const eval::EvalSource src = eval::make_source("images:" + dir.path, 0, 0);
  REQUIRE(src.size() == 3);
  CHECK(src.channels() == 3);  // a.png's
  CHECK(src.max_exact_res() == 16);
  CHECK(src.name(1) == "b.png");
  CHECK(src.group(1).empty());
  CHECK(src.label(1) == -1);
  CHECK(src.groups().empty());
  const image::Image b = image::read_png(dir.file("b.png"), 3);
  const image::Image b16 = src.ground_truth(1, 16);
  REQUIRE(b16.shape() == (std::array<std::size_t, 3>{16, 16, 3}));
  CHECK(max_abs_diff(b16, image::resize(b, 16, 16, image::ResizeFilter::Area)) == 0);
  CHECK(max_abs_diff(src.input(1, 16), b16) == 0);
  CHECK(max_abs_diff(src.input(0, 32), image::read_png(dir.file("a.png"))) == 0);  // native size: the file
  const image::Image c = src.input(2, 16);
  CHECK(c(3, 5, 0) == c(3, 5, 2));  // grey replicated to RGB
  const image::ImageBatch batch = src.inputs(1, 2, 8);
  CHECK(batch.shape() == (std::array<std::size_t, 4>{2, 8, 8, 3}));

  const eval::EvalSource two = eval::make_source("images:" + dir.path, 2, 0);
  CHECK(two.size() == 2);
  CHECK(two.note().empty());
  const eval::EvalSource clamped = eval::make_source("images:" + dir.path, 10, 0);
  CHECK(clamped.size() == 3);
  CHECK_THAT(clamped.note(), Contains("clamped to 3"));
  eval::SourceOptions grey;
  grey.channels = 1;
  CHECK(eval::make_source("images:" + dir.path, 0, 0, grey).input(0, 8).shape()[2] == 1);

  // Errors.
  CHECK_THAT(test::error_of([&] { eval::make_source("images:" + dir.path + "/nope", 1, 0); }),
             Contains("nope") && Contains("does not exist"));
  test::TempDir empty("eval_empty");
  CHECK_THAT(test::error_of([&] { eval::make_source("images:" + empty.path, 1, 0); }),
             Contains(empty.path) && Contains("no *.png"));
  CHECK_THAT(test::error_of([&] { eval::make_source("mnist:test", 1, 0); }),
             Contains("unknown data source 'mnist:test'") && Contains("fmnist:test"));
  CHECK_THAT(test::error_of([&] { eval::make_source("fmnist:val", 1, 0); }), Contains("'test' or 'train'"));
  CHECK_THAT(test::error_of([&] { eval::make_source("font:", 1, 0); }), Contains("expected font:<path"));
  CHECK_THAT(test::error_of([&] { eval::make_source("font:/no/such/font.ttf", 1, 0); }),
             Contains("/no/such/font.ttf"));
  CHECK_THAT(test::error_of([&] { eval::make_source("font:" + dir.file("a.png"), 1, 0); }), Contains("a.png"));
  CHECK_THAT(test::error_of([&] { src.input(3, 8); }), Contains("index 3 out of range"));
  CHECK_THAT(test::error_of([&] { src.input(0, 0); }), Contains("resolution 0"));
}

TEST_CASE("tokenizer_eval: evaluate_tokenizer against bicubic and exact reconstructions", "[data_io][eval]") {
  if (!exists(dejavu)) {
    WARN(dejavu << " missing: skipped");
    return;
  }
  const eval::EvalSource src = eval::make_source("font:" + dejavu, 10, 3);
  const int in_res = 16;
  const std::vector<int> outs = {16, 32, 48}, levels = {1, 3};

  std::vector<std::size_t> progress;
  const auto rec = eval::evaluate_tokenizer(src, bicubic_model, in_res, outs, levels, 4,
                                            [&](std::size_t done, std::size_t total) {
                                              CHECK(total == 10);
                                              progress.push_back(done);
                                            });
  CHECK(progress == std::vector<std::size_t>{4, 8, 10});
  REQUIRE(rec.size() == levels.size() * outs.size());
  for (std::size_t l = 0; l < levels.size(); ++l)
    for (std::size_t o = 0; o < outs.size(); ++o) {
      const auto& r = rec[l * outs.size() + o];
      INFO("levels " << r.levels << " out " << r.out_res);
      CHECK(r.levels == levels[l]);
      CHECK(r.out_res == outs[o]);
      CHECK(r.in_res == in_res);
      CHECK(r.n == 10);
      CHECK(r.psnr == r.bicubic_psnr);
      CHECK(r.ssim == r.bicubic_ssim);
      CHECK(r.bicubic_psnr == Approx(reference_bicubic_psnr(src, in_res, outs[o])).epsilon(1e-12));
    }
  CHECK(rec[0].bicubic_psnr == eval::psnr_cap_db);  // bicubic at scale 1 is the identity
  CHECK(rec[1].bicubic_psnr < 40);                  // upscaling is not exact
  CHECK(rec[1].bicubic_psnr > 10);
  CHECK(rec[2].bicubic_ssim < 0.99);
  CHECK(rec[2].bicubic_psnr < rec[1].bicubic_psnr + 5);

  // A model that returns the exact ground truth.
  int calls = 0;
  const eval::ReconstructFn exact = [&](const image::ImageBatch& in, int, int out_res) {
    ++calls;
    std::vector<image::Image> gts;
    for (std::size_t k = 0; k < in.shape()[0]; ++k) gts.push_back(src.ground_truth(find_sample(src, in, k, in_res), out_res));
    return image::stack_images(gts);
  };
  const auto ex = eval::evaluate_tokenizer(src, exact, in_res, {8, 32}, {2}, 64);
  CHECK(calls == 2);
  REQUIRE(ex.size() == 2);
  CHECK(ex[0].psnr == eval::psnr_cap_db);
  CHECK(std::isnan(ex[0].ssim));  // 8 px is below SSIM's 11-px window
  CHECK(std::isnan(ex[0].bicubic_ssim));
  CHECK(ex[1].psnr == eval::psnr_cap_db);
  CHECK(ex[1].ssim == Approx(1.0).margin(1e-12));
  CHECK(ex[1].bicubic_psnr < 40);
  CHECK(ex[1].bicubic_ssim < 0.99);

  // Errors: wrong shape, NaN, empty lists.
  const eval::ReconstructFn wrong = [](const image::ImageBatch& in, int l, int r) { return bicubic_model(in, l, r + 1); };
  CHECK_THAT(test::error_of([&] { eval::evaluate_tokenizer(src, wrong, in_res, {32}, {1}); }),
             Contains("returned (10, 33, 33, 1), expected (10, 32, 32, 1)"));
  const eval::ReconstructFn nan = [](const image::ImageBatch& in, int l, int r) {
    auto o = bicubic_model(in, l, r);
    o(1, 2, 3, 0) = std::numeric_limits<float>::quiet_NaN();
    return o;
  };
  CHECK_THAT(test::error_of([&] { eval::evaluate_tokenizer(src, nan, in_res, {32}, {1}); }),
             Contains("non-finite") && Contains("batch item 1"));
  CHECK_THAT(test::error_of([&] { eval::evaluate_tokenizer(src, bicubic_model, in_res, {}, {1}); }),
             Contains("out_res has 0 values"));
  CHECK_THAT(test::error_of([&] { eval::evaluate_tokenizer(src, bicubic_model, in_res, {32}, {0}); }),
             Contains("levels value 0"));
}

TEST_CASE("tokenizer_eval: choose_levels and allocate_levels per category and class", "[data_io][eval]") {
  CHECK(eval::choose_levels({10, 20, 30}, 25) == 3);
  CHECK(eval::choose_levels({10, 20, 30}, 20) == 2);
  CHECK(eval::choose_levels({10, 20, 30}, 5) == 1);
  CHECK(eval::choose_levels({10, 20, 30}, 40) == 3);  // none reaches it: L
  CHECK(eval::choose_levels({std::nan(""), 20}, 0) == 2);
  CHECK(eval::choose_levels({31, 20, 35}, 30) == 1);  // smallest, not best
  CHECK_THAT(test::error_of([] { eval::choose_levels({}, 30); }), Contains("no PSNR values"));

  if (!exists(dejavu)) {
    WARN(dejavu << " missing: skipped");
    return;
  }
  // 20 glyphs, 5 per category. PSNR = 20 + 4 m + offset: upper 31 dB at m = 1, lower 27/31 dB at
  // m = 1/2, digit 31 dB at m = 3, punctuation 26 dB at m = 4 (misses 30 dB).
  const eval::EvalSource src = eval::make_source("font:" + dejavu, 20, 5);
  int calls = 0;
  GradedModel model{&src, 16, {7, 3, -1, -10}, &calls};
  const eval::Allocation a = eval::allocate_levels(src, model, 16, 24, 4, 30.0, 3);
  REQUIRE(a.samples.size() == 20);
  CHECK(a.max_levels == 4);
  CHECK(a.in_res == 16);
  CHECK(a.out_res == 24);
  CHECK(a.histogram == std::vector<std::size_t>{5, 5, 5, 5});
  CHECK(a.mean_levels == Approx(2.5));
  CHECK(a.unmet == 5);
  REQUIRE(a.groups.size() == 4);
  const double want_levels[] = {1, 2, 3, 4}, want_psnr[] = {31, 31, 31, 26};
  for (std::size_t g = 0; g < 4; ++g) {
    INFO("group " << a.groups[g].group);
    CHECK(a.groups[g].group == eval::glyph_category_names()[g]);
    CHECK(a.groups[g].n == 5);
    CHECK(a.groups[g].mean_levels == want_levels[g]);
    CHECK(a.groups[g].mean_psnr == Approx(want_psnr[g]).margin(1e-3));
    CHECK(a.groups[g].unmet == (g == 3 ? 5u : 0u));
  }
  for (const auto& x : a.samples) {
    CHECK(x.levels == x.label + 1);
    CHECK(x.met == (x.label != 3));
    CHECK(x.group == src.group(x.index));
  }
  // One sample per batch: the model is called only up to each sample's chosen level (early stop).
  calls = 0;
  const eval::Allocation b = eval::allocate_levels(src, model, 16, 24, 4, 30.0, 1);
  CHECK(calls == 5 * (1 + 2 + 3 + 4));
  CHECK(b.mean_levels == a.mean_levels);

  if (!exists(fmnist_dir + "/t10k-images-idx3-ubyte.gz")) {
    WARN(fmnist_dir << " missing: per-class part skipped");
    return;
  }
  // Per Fashion-MNIST class c: levels (c mod 4) + 1 reach 30 dB (PSNR 31 dB there, 27 dB one below).
  const eval::EvalSource fm = eval::make_source("fmnist:test", 60, 0);
  std::vector<double> off(10);
  for (int c = 0; c < 10; ++c) off[std::size_t(c)] = 7 - 4 * (c % 4);
  GradedModel fmodel{&fm, 28, off, &calls};
  const eval::Allocation f = eval::allocate_levels(fm, fmodel, 28, 28, 4, 30.0, 16);
  std::vector<std::size_t> count(10, 0);
  for (std::size_t i = 0; i < fm.size(); ++i) ++count[std::size_t(fm.label(i))];
  std::size_t present = 0;
  double total = 0;
  for (std::size_t c = 0; c < 10; ++c) {
    present += count[c] > 0;
    total += double(count[c]) * double(c % 4 + 1);
  }
  REQUIRE(f.groups.size() == present);
  for (const auto& g : f.groups) {
    const auto& names = data::fashion_mnist_class_names();
    const std::size_t c = std::size_t(std::find(names.begin(), names.end(), g.group) - names.begin());
    REQUIRE(c < 10);
    INFO("class " << g.group);
    CHECK(g.n == count[c]);
    CHECK(g.mean_levels == double(c % 4 + 1));
    CHECK(g.unmet == 0);
  }
  CHECK(f.mean_levels == Approx(total / 60.0));
  CHECK(f.unmet == 0);
}

TEST_CASE("tokenizer_eval: JSON report parses back; atomic write", "[data_io][eval]") {
  eval::EvalRecord r1{1, 16, 32, 10, 23.456789012345678, 0.875, 21.5, 0.8};
  eval::EvalRecord r2{2, 16, 8, 10, 100.0, std::numeric_limits<double>::quiet_NaN(), 30.25, 0.1 + 0.2};
  eval::Allocation a;
  a.in_res = 16;
  a.out_res = 32;
  a.max_levels = 3;
  a.target_psnr = 28.5;
  a.samples = {{0, "U+0022 '\"'", "punctuation", 3, 3, 26.5, false}, {1, "U+005C '\\'", "punctuation", 3, 1, 31, true}};
  a.histogram = {1, 0, 1};
  a.mean_levels = 2;
  a.mean_psnr = 28.75;
  a.unmet = 1;
  a.groups = {{"punctuation", 2, 2.0, 28.75, 1}};
  eval::EvalReportInfo info;
  info.model = "/m/model \"x\".safetensors";
  info.source = "fmnist:test";
  info.note = "line1\nline2\ttab";
  info.seed = 18446744073709551615ull;
  info.extra = {{"version", "1"}};
  const std::string text = eval::to_json({r1, r2}, &a, info);
  const nlohmann::json j = nlohmann::json::parse(text);
  CHECK(j["model"] == info.model);
  CHECK(j["note"] == info.note);
  CHECK(j["seed"].get<std::uint64_t>() == info.seed);
  CHECK(j["version"] == "1");
  CHECK(j["psnr_cap_db"].get<double>() == 100.0);
  REQUIRE(j["results"].size() == 2);
  const auto& k = j["results"][0];
  CHECK(k["levels"] == 1);
  CHECK(k["in_res"] == 16);
  CHECK(k["out_res"] == 32);
  CHECK(k["n"] == 10);
  CHECK(k["psnr"].get<double>() == r1.psnr);  // exact round trip
  CHECK(k["ssim"].get<double>() == 0.875);
  CHECK(k["bicubic_psnr"].get<double>() == 21.5);
  CHECK(j["results"][1]["ssim"].is_null());  // NaN
  CHECK(j["results"][1]["bicubic_ssim"].get<double>() == 0.1 + 0.2);
  const auto& al = j["allocation"];
  CHECK(al["target_psnr"].get<double>() == 28.5);
  CHECK(al["max_levels"] == 3);
  CHECK(al["n"] == 2);
  CHECK(al["unmet"] == 1);
  REQUIRE(al["histogram"].size() == 3);
  CHECK(al["histogram"][2]["levels"] == 3);
  CHECK(al["histogram"][2]["count"] == 1);
  CHECK(al["groups"][0]["group"] == "punctuation");
  CHECK(al["groups"][0]["mean_psnr"].get<double>() == 28.75);
  CHECK(al["samples"][0]["name"] == "U+0022 '\"'");
  CHECK(al["samples"][1]["name"] == "U+005C '\\'");
  CHECK(al["samples"][0]["met"] == false);
  CHECK(al["samples"][1]["levels"] == 1);
  CHECK(text.find("NaN") == std::string::npos);
  CHECK(text.find("nan") == std::string::npos);
  // Without an allocation there is no "allocation" key.
  CHECK(!nlohmann::json::parse(eval::to_json({r1}, nullptr)).contains("allocation"));

  CHECK(eval::JsonWriter::number(1.0 / 3) == "0.3333333333333333");
  CHECK(eval::JsonWriter::number(-2) == "-2");
  CHECK(eval::JsonWriter::number(0.1) == "0.1");
  CHECK(eval::JsonWriter::number(std::numeric_limits<double>::infinity()) == "null");
  CHECK_THAT(test::error_of([] { eval::JsonWriter().begin_object().value(1); }), Contains("needs a key"));
  CHECK_THAT(test::error_of([] { (void)eval::JsonWriter().begin_array().str(); }), Contains("still open"));

  test::TempDir dir("eval_json");
  const std::string path = dir.file("report.json");
  eval::write_json_atomic(path, text);
  eval::write_json_atomic(path, text);  // replaces
  const auto bytes = test::read_bytes(path);
  CHECK(std::string(bytes.begin(), bytes.end()) == text);
  CHECK(dir.entries() == std::vector<std::string>{"report.json"});  // no temporary left
  const std::string bad = dir.file("missing/report.json");
  CHECK_THAT(test::error_of([&] { eval::write_json_atomic(bad, text); }),
             Contains("write_json_atomic") && Contains(bad));
}
