// dcsldm/tok/train_sources.hpp: the training data of the tokenizer, all from Debian packages or the user:
//   FashionMnistSource  dataset-fashion-mnist (train split), area-resized to each scale;
//   GlyphSource         glyphs of the training fonts (fonts-dejavu-core, fonts-noto-core; data/glyphs.hpp
//                       split) rendered exactly at each scale, with random placement;
//   PngFolderSource     a folder of PNGs (the user's data), area-resized to each scale.
// Each sample(step, ...) is a pure function of (seed, step), so training resumes bit for bit.
//
// REQUIRES zlib, FreeType and libpng (link ZLIB::ZLIB, Freetype::Freetype, PNG::PNG).
#pragma once

#include <dcsldm/core/error.hpp>
#include <dcsldm/core/rng.hpp>
#include <dcsldm/data/glyphs.hpp>
#include <dcsldm/data/idx.hpp>
#include <dcsldm/image/png.hpp>
#include <dcsldm/image/resize.hpp>
#include <dcsldm/tok/trainer.hpp>

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace dcsldm::tok {

namespace Impl {
inline std::mt19937_64 step_rng(std::uint64_t seed, std::int64_t step, int b) {
  return std::mt19937_64(seed * 0x9E3779B97F4A7C15ull ^ (std::uint64_t(step) << 16) ^ std::uint64_t(b));
}
inline void put_image(const image::Image& img, float* dst) { std::copy(img.begin(), img.end(), dst); }
}  // namespace Impl

/// Square images (N, S, S, C) held in memory, area-resized to the requested scales.
class ImageSetSource : public TrainSource {
 public:
  ImageSetSource(image::ImageBatch images, std::string what, std::uint64_t seed)
      : images_(std::move(images)), what_(std::move(what)), seed_(seed) {
    DCSLDM_REQUIRE(images_.shape()[0] > 0, "ImageSetSource", what_, ": no images");
  }
  int channels() const override { return int(images_.shape()[3]); }
  std::string describe() const override { return what_ + " (" + std::to_string(images_.shape()[0]) + " images)"; }
  std::size_t size() const { return images_.shape()[0]; }
  void sample(std::int64_t step, int batch, int ri, int ro, float* in, float* out) override {
    const std::size_t n = images_.shape()[0], C = images_.shape()[3];
    for (int b = 0; b < batch; ++b) {
      auto g = Impl::step_rng(seed_, step, b);
      const std::size_t i = std::uniform_int_distribution<std::size_t>(0, n - 1)(g);
      const image::Image img = image::batch_item(images_, i);
      Impl::put_image(scaled(img, ri), in + std::size_t(b) * std::size_t(ri * ri) * C);
      Impl::put_image(scaled(img, ro), out + std::size_t(b) * std::size_t(ro * ro) * C);
    }
  }

 private:
  static image::Image scaled(const image::Image& img, int r) {
    if (int(img.shape()[0]) == r && int(img.shape()[1]) == r) return img;
    return image::resize(img, std::size_t(r), std::size_t(r), image::ResizeFilter::Area);
  }
  image::ImageBatch images_;
  std::string what_;
  std::uint64_t seed_;
};

/// Fashion-MNIST training images (60000, 28 x 28 grey).
inline std::unique_ptr<ImageSetSource> fashion_mnist_source(std::uint64_t seed,
                                                            const std::string& dir = data::fashion_mnist_default_dir()) {
  auto d = data::load_fashion_mnist(data::Split::Train, dir);
  return std::make_unique<ImageSetSource>(std::move(d.images), "fmnist:train", seed);
}

/// Every PNG of a folder, converted to `channels` and area-resized to `size` x `size`.
inline std::unique_ptr<ImageSetSource> png_folder_source(const std::string& dir, int channels, int size,
                                                         std::uint64_t seed) {
  const auto imgs = image::read_png_folder(dir, channels);
  DCSLDM_REQUIRE(!imgs.empty(), "png_folder_source", "'", dir, "' holds no PNG files");
  std::vector<image::Image> sq;
  for (const auto& im : imgs) sq.push_back(image::resize(im, std::size_t(size), std::size_t(size), image::ResizeFilter::Area));
  return std::make_unique<ImageSetSource>(image::stack_images(sq), "images:" + dir, seed);
}

/// The characters glyph models are trained and evaluated on: ASCII letters, digits and punctuation.
inline const std::u32string& glyph_charset() {
  static const std::u32string s =
      U"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789&?@#%$!*+=/<>{}[]()";
  return s;
}

/// Random placement of a glyph, as fractions of the canvas (so the same glyph at every size).
struct GlyphJitter {
  double em_lo = 0.55, em_hi = 0.85;  ///< em square as a fraction of the canvas
  double shift = 0.06;                ///< max |dx|, |dy| as a fraction of the canvas
  double rotation = 0.12;             ///< max |rotation| (radians)
};

/// Glyphs of fonts (by default the training split of Debian's fonts), exact renders at each scale.
class GlyphSource : public TrainSource {
 public:
  GlyphSource(const std::vector<std::string>& fonts, std::uint64_t seed, GlyphJitter j = {}) : seed_(seed), j_(j) {
    for (const auto& f : fonts) {
      auto font = std::make_unique<data::Font>(f);
      std::u32string have;
      for (char32_t ch : glyph_charset())
        if (font->has_glyph(ch)) have.push_back(ch);
      if (have.size() * 2 < glyph_charset().size()) continue;  // not a Latin font
      fonts_.push_back(std::move(font));
      chars_.push_back(have);
    }
    DCSLDM_REQUIRE(!fonts_.empty(), "GlyphSource", "none of the ", fonts.size(), " font files covers Latin letters");
  }
  /// The training fonts of Debian's packages (data::font_split).
  static std::unique_ptr<GlyphSource> debian_train(std::uint64_t seed) {
    return std::make_unique<GlyphSource>(data::fonts_in_split(data::debian_fonts(), data::Split::Train), seed);
  }
  int channels() const override { return 1; }
  std::string describe() const override { return "glyphs of " + std::to_string(fonts_.size()) + " fonts"; }
  std::size_t num_fonts() const { return fonts_.size(); }
  void sample(std::int64_t step, int batch, int ri, int ro, float* in, float* out) override {
    for (int b = 0; b < batch; ++b) {
      auto g = Impl::step_rng(seed_, step, b);
      std::uniform_real_distribution<double> u(0, 1);
      const std::size_t f = std::uniform_int_distribution<std::size_t>(0, fonts_.size() - 1)(g);
      const std::u32string& cs = chars_[f];
      const char32_t ch = cs[std::uniform_int_distribution<std::size_t>(0, cs.size() - 1)(g)];
      const double em = j_.em_lo + (j_.em_hi - j_.em_lo) * u(g);
      const double fx = (2 * u(g) - 1) * j_.shift, fy = (2 * u(g) - 1) * j_.shift;
      const double rot = (2 * u(g) - 1) * j_.rotation;
      for (int pass = 0; pass < 2; ++pass) {
        const int r = pass ? ro : ri;
        data::GlyphPlacement p;
        p.size = r;
        p.em = em;
        p.dx = fx * r;
        p.dy = fy * r;
        p.rotation = rot;
        fonts_[f]->render(ch, p, (pass ? out : in) + std::size_t(b) * std::size_t(r * r));
      }
    }
  }

 private:
  std::vector<std::unique_ptr<data::Font>> fonts_;
  std::vector<std::u32string> chars_;
  std::uint64_t seed_;
  GlyphJitter j_;
};

}  // namespace dcsldm::tok
