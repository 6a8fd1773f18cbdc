// dcsldm/eval/sources.hpp: the evaluation data sources of the tokenizer harness: a numbered set of
// samples that gives, for sample i, the image the tokenizer encodes at any input resolution and the
// ground truth its reconstruction is compared with at any output resolution.
//
// REQUIRES zlib, FreeType and libpng (it uses data/idx.hpp, data/glyphs.hpp and image/png.hpp): link
// ZLIB::ZLIB, Freetype::Freetype and PNG::PNG. Host code only.
//
// Sources (make_source's spec strings):
// - "fmnist:test", "fmnist:train": Fashion-MNIST (data/idx.hpp; Debian's dataset-fashion-mnist), the
//   FIRST n images of the split in file order (the seed is not used). label = class 0..9, group = the
//   class name (data::fashion_mnist_class_names()), name = "<split>[<index>]". 28 x 28 grey.
// - "images:<folder>": every *.png directly in the folder, sorted by file name (image/png.hpp), the
//   first n. Channels: SourceOptions::channels, or 0 = the first file's colour channels with alpha
//   dropped (grey/grey+alpha -> 1, RGB/RGBA -> 3); every file is converted to them (convert_channels).
//   label = -1, group = "", name = the file name.
// - "font:<path>": one .ttf/.otf/.ttc face (face 0), glyphs of the printable ASCII characters U+0021..
//   U+007E that the font has (missing ones are skipped), taken round-robin over the categories
//   "upper", "lower", "digit", "punctuation" (A a 0 ! B b 1 " ...), so every prefix is balanced;
//   sample i uses glyph i mod K (K the number of glyphs), so n > K repeats glyphs with new placements.
//   label = category index (0 upper, 1 lower, 2 digit, 3 punctuation), group = category name,
//   name = "U+0041 'A'". Placement of sample i (data::GlyphPlacement, anchor SourceOptions::anchor):
//   em fraction uniform in [em_min, em_max], shift (dx, dy) uniform in [-max_shift, max_shift] of the
//   canvas side, drawn from a counter-based hash of (seed, i), so the same seed gives the same samples
//   in any order. At resolution R the placement has size = R and dx, dy multiplied by R: the same
//   continuous glyph at every resolution.
//
// Input and ground truth:
// - fonts: input(i, R) = ground_truth(i, R) = the EXACT FreeType render of the glyph at R x R.
// - images / fmnist: input(i, R) = ground_truth(i, R) = the original area-resized (image/resize.hpp,
//   exact box filter) to R x R; a non-square original is resized to R x R (its aspect ratio is NOT
//   kept). At R above the original's size this is an upsampling (pixel mixing), not a true ground
//   truth: max_exact_res() says up to where it is one. R equal to the original's square size returns
//   the original itself.
//
// n: 0 means "all" (fmnist: the whole split; images: every file; fonts: each glyph once). n larger
// than what a split or folder holds is clamped, and note() says so.
//
// An EvalSource is cheap to copy (samples are shared); its const methods may be called from several
// threads (font rendering is serialised by a mutex).
#pragma once

#include <dcsldm/core/error.hpp>
#include <dcsldm/data/glyphs.hpp>
#include <dcsldm/data/idx.hpp>
#include <dcsldm/data/split.hpp>
#include <dcsldm/image/image.hpp>
#include <dcsldm/image/png.hpp>
#include <dcsldm/image/resize.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace dcsldm::eval {

/// Which kind of data an EvalSource reads.
enum class SourceKind { FashionMnist, Font, Images };

inline const char* source_kind_name(SourceKind k) {
  switch (k) {
    case SourceKind::FashionMnist: return "fmnist";
    case SourceKind::Font: return "font";
    case SourceKind::Images: return "images";
  }
  return "?";
}

/// Options of make_source beyond (spec, n, seed); the defaults are the CLI's.
struct SourceOptions {
  std::string fmnist_dir = data::fashion_mnist_default_dir();  ///< folder of the Fashion-MNIST .gz files
  int channels = 0;       ///< images: 1..4 to convert every file to; 0 = the first file's, alpha dropped
  double em_min = 0.6;    ///< fonts: em square as a fraction of the canvas side, uniform in [em_min, em_max]
  double em_max = 0.8;
  double max_shift = 1.0 / 64;  ///< fonts: |dx|, |dy| <= max_shift * canvas side (0.5 px at 32 px)
  data::GlyphAnchor anchor = data::GlyphAnchor::BBoxCentre;  ///< fonts: which point is placed at the centre
};

/// The glyph categories of font sources, in label order.
inline const std::array<const char*, 4>& glyph_category_names() {
  static const std::array<const char*, 4> names = {"upper", "lower", "digit", "punctuation"};
  return names;
}

/// Category label of a printable ASCII code point: 0 upper, 1 lower, 2 digit, 3 punctuation; -1 for
/// anything else (space, control characters, non-ASCII).
inline int glyph_category(char32_t cp) {
  if (cp < 0x21 || cp > 0x7e) return -1;
  const int c = int(cp);
  if (c >= 'A' && c <= 'Z') return 0;
  if (c >= 'a' && c <= 'z') return 1;
  if (c >= '0' && c <= '9') return 2;
  return 3;
}

/// One evaluation sample.
struct Sample {
  image::Image source;  ///< fmnist / images: the original (H, W, C); fonts: empty (0, 0, 1)
  int label = -1;       ///< fmnist: class 0..9; fonts: glyph category (glyph_category); images: -1
  std::string name;     ///< "test[17]", the PNG's file name, or "U+0041 'A'"
  std::string group;    ///< class name / glyph category name / "" (images)
  char32_t code_point = 0;  ///< fonts: the glyph's code point
  /// fonts: the placement on a canvas of side 1 (size = 1; dx, dy as fractions of the side);
  /// glyph_placement(i, R) scales it to R pixels.
  data::GlyphPlacement placement{};
};

namespace Impl {

/// splitmix64 finaliser: a bijective 64-bit mix.
inline std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
/// Uniform double in [0, 1) from (seed, sample, draw), identical on every platform.
inline double unit_hash(std::uint64_t seed, std::uint64_t sample, std::uint64_t draw) {
  const std::uint64_t h = mix64(mix64(mix64(seed) ^ sample) ^ (draw * 0xd1b54a32d192ed03ull));
  return double(h >> 11) * (1.0 / 9007199254740992.0);  // 2^-53
}

inline std::string glyph_name(char32_t cp) {
  char b[32];
  if (cp >= 0x21 && cp <= 0x7e)
    std::snprintf(b, sizeof b, "U+%04X '%c'", unsigned(cp), char(cp));
  else
    std::snprintf(b, sizeof b, "U+%04X", unsigned(cp));
  return b;
}

/// The font of a font source, shared by copies of the source; render() is serialised.
struct SharedFont {
  explicit SharedFont(const std::string& path) : font(path) {}
  std::mutex mutex;
  data::Font font;
};

}  // namespace Impl

/// A numbered set of evaluation samples; see the file comment for the kinds. Build one with
/// make_source (or the named constructors fashion_mnist / font / images).
class EvalSource {
 public:
  /// Fashion-MNIST split `split` from `dir`: the first n images (n = 0: all; larger: clamped, noted).
  static EvalSource fashion_mnist(data::Split split, std::size_t n,
                                  const std::string& dir = data::fashion_mnist_default_dir()) {
    const data::LabelledImages d = data::load_fashion_mnist(split, dir);
    const std::size_t N = d.labels.size();
    EvalSource s;
    s.kind_ = SourceKind::FashionMnist;
    s.spec_ = std::string("fmnist:") + data::split_name(split);
    s.channels_ = 1;
    s.max_exact_res_ = 28;
    s.groups_.assign(data::fashion_mnist_class_names().begin(), data::fashion_mnist_class_names().end());
    const std::size_t m = s.clamp_n(n, N, "images");
    auto samples = std::make_shared<std::vector<Sample>>(m);
    const std::size_t per = 28 * 28;
    for (std::size_t i = 0; i < m; ++i) {
      Sample& x = (*samples)[i];
      x.source = image::Image(std::array<std::size_t, 3>{28, 28, 1});
      std::copy(d.images.data() + i * per, d.images.data() + (i + 1) * per, x.source.data());
      x.label = int(d.labels[i]);
      x.group = data::fashion_mnist_class_names()[d.labels[i]];
      x.name = std::string(data::split_name(split)) + "[" + std::to_string(i) + "]";
    }
    s.samples_ = std::move(samples);
    return s;
  }

  /// The PNGs of folder `dir` (sorted by file name): the first n (0: all; larger: clamped, noted),
  /// converted to `channels` (0: the first file's colour channels, alpha dropped). Throws naming the
  /// folder when it is missing or holds no PNG, and naming the file when one cannot be read.
  static EvalSource images(const std::string& dir, std::size_t n, int channels = 0) {
    std::error_code ec;
    DCSLDM_REQUIRE(std::filesystem::is_directory(dir, ec), "eval_source", "images folder '", dir,
                   "' does not exist or is not a folder");
    DCSLDM_REQUIRE(channels >= 0 && channels <= 4, "eval_source", "channels = ", channels, ", expected 0..4");
    const std::vector<std::string> files = image::list_png_files(dir);
    DCSLDM_REQUIRE(!files.empty(), "eval_source", "images folder '", dir, "' holds no *.png file");
    EvalSource s;
    s.kind_ = SourceKind::Images;
    s.spec_ = "images:" + dir;
    const std::size_t m = s.clamp_n(n, files.size(), "PNG files");
    auto samples = std::make_shared<std::vector<Sample>>(m);
    int max_exact = 1 << 30;
    for (std::size_t i = 0; i < m; ++i) {
      image::Image img = image::read_png(files[i]);
      if (i == 0 && channels == 0) {
        const int c = int(img.shape()[2]);
        channels = (c == 1 || c == 2) ? 1 : 3;
      }
      Sample& x = (*samples)[i];
      x.source = image::convert_channels(img, channels);
      x.name = std::filesystem::path(files[i]).filename().string();
      max_exact = std::min(max_exact, int(std::min(x.source.shape()[0], x.source.shape()[1])));
    }
    s.channels_ = channels;
    s.max_exact_res_ = max_exact;
    s.samples_ = std::move(samples);
    return s;
  }

  /// Glyphs of the font file `path` (see the file comment): n samples (0: each glyph once), placements
  /// drawn from `seed`. Throws naming the file when it is missing or not a scalable font, or when it
  /// has none of the printable ASCII characters; and on bad options.
  static EvalSource font(const std::string& path, std::size_t n, std::uint64_t seed, const SourceOptions& o = {}) {
    std::error_code ec;
    DCSLDM_REQUIRE(std::filesystem::is_regular_file(path, ec), "eval_source", "font file '", path,
                   "' does not exist or is not a file");
    DCSLDM_REQUIRE(o.em_min > 0 && o.em_max >= o.em_min && o.em_max <= 4 && o.max_shift >= 0 && o.max_shift < 0.5,
                   "eval_source", "bad font placement options: em_min = ", o.em_min, ", em_max = ", o.em_max,
                   ", max_shift = ", o.max_shift, " (need 0 < em_min <= em_max <= 4, 0 <= max_shift < 0.5)");
    auto font = std::make_shared<Impl::SharedFont>(path);
    // Printable ASCII the font has, per category in code order, then round-robin over the categories.
    std::array<std::vector<char32_t>, 4> by_cat;
    for (char32_t cp = 0x21; cp <= 0x7e; ++cp)
      if (font->font.has_glyph(cp)) by_cat[std::size_t(glyph_category(cp))].push_back(cp);
    std::vector<char32_t> glyphs;
    for (std::size_t r = 0;; ++r) {
      bool any = false;
      for (const auto& c : by_cat)
        if (r < c.size()) {
          glyphs.push_back(c[r]);
          any = true;
        }
      if (!any) break;
    }
    DCSLDM_REQUIRE(!glyphs.empty(), "eval_source", "font '", path,
                   "' has none of the printable ASCII characters U+0021..U+007E");
    EvalSource s;
    s.kind_ = SourceKind::Font;
    s.spec_ = "font:" + path;
    s.channels_ = 1;
    s.max_exact_res_ = 16384;
    s.groups_.assign(glyph_category_names().begin(), glyph_category_names().end());
    const std::size_t K = glyphs.size();
    const std::size_t m = n == 0 ? K : n;
    if (n > K)
      s.note_ = "font '" + path + "' has " + std::to_string(K) + " printable ASCII glyphs; n = " + std::to_string(n) +
                " repeats them with other placements";
    auto samples = std::make_shared<std::vector<Sample>>(m);
    for (std::size_t i = 0; i < m; ++i) {
      Sample& x = (*samples)[i];
      x.code_point = glyphs[i % K];
      x.label = glyph_category(x.code_point);
      x.group = glyph_category_names()[std::size_t(x.label)];
      x.name = Impl::glyph_name(x.code_point);
      x.source = image::Image(std::array<std::size_t, 3>{0, 0, 1});
      data::GlyphPlacement& p = x.placement;
      p.size = 1;
      p.em = o.em_min + (o.em_max - o.em_min) * Impl::unit_hash(seed, i, 0);
      p.dx = o.max_shift * (2 * Impl::unit_hash(seed, i, 1) - 1);
      p.dy = o.max_shift * (2 * Impl::unit_hash(seed, i, 2) - 1);
      p.anchor = o.anchor;
    }
    s.samples_ = std::move(samples);
    s.font_ = std::move(font);
    return s;
  }

  /// The spec this source was built from ("fmnist:test", "font:/path.ttf", "images:/dir").
  const std::string& spec() const { return spec_; }
  SourceKind kind() const { return kind_; }
  /// Number of samples.
  std::size_t size() const { return samples_ ? samples_->size() : 0; }
  /// Channels of every input and ground truth (1 for fmnist and fonts).
  int channels() const { return channels_; }
  /// What make_source changed or wants the user to know (n clamped, glyphs repeated); "" when nothing.
  const std::string& note() const { return note_; }
  /// Largest resolution at which ground_truth() is a true ground truth: fonts 16384 (any), fmnist 28,
  /// images the smallest side of the smallest image.
  int max_exact_res() const { return max_exact_res_; }
  /// The group names in their canonical order (fmnist: the 10 classes; fonts: glyph_category_names();
  /// images: none).
  const std::vector<std::string>& groups() const { return groups_; }

  const Sample& sample(std::size_t i) const {
    check_index("sample", i);
    return (*samples_)[i];
  }
  int label(std::size_t i) const { return sample(i).label; }
  /// Class name (fmnist), glyph category (fonts) or "" (images).
  const std::string& group(std::size_t i) const { return sample(i).group; }
  const std::string& name(std::size_t i) const { return sample(i).name; }

  /// Font sources: the placement of sample i on an R x R canvas (size R, shifts scaled by R).
  data::GlyphPlacement glyph_placement(std::size_t i, int res) const {
    DCSLDM_REQUIRE(kind_ == SourceKind::Font, "eval_source", "glyph_placement: '", spec_, "' is not a font source");
    check_res("glyph_placement", res);
    data::GlyphPlacement p = sample(i).placement;
    p.size = res;
    p.dx *= double(res);
    p.dy *= double(res);
    return p;
  }

  /// What the tokenizer encodes for sample i at res x res: (res, res, channels()), values in [0, 1].
  image::Image input(std::size_t i, int res) const { return render(i, res, "input"); }
  /// What a reconstruction of sample i at res x res is compared with: (res, res, channels()).
  image::Image ground_truth(std::size_t i, int res) const { return render(i, res, "ground_truth"); }

  /// input(i, res) for i in [first, first + count): (count, res, res, channels()).
  image::ImageBatch inputs(std::size_t first, std::size_t count, int res) const {
    return batch(first, count, res, "inputs");
  }
  /// ground_truth(i, res) for i in [first, first + count): (count, res, res, channels()).
  image::ImageBatch ground_truths(std::size_t first, std::size_t count, int res) const {
    return batch(first, count, res, "ground_truths");
  }

 private:
  EvalSource() = default;

  std::size_t clamp_n(std::size_t n, std::size_t available, const char* what) {
    if (n == 0) return available;
    if (n > available) {
      note_ = spec_ + " has " + std::to_string(available) + " " + what + "; n = " + std::to_string(n) +
              " clamped to " + std::to_string(available);
      return available;
    }
    return n;
  }
  void check_index(const char* what, std::size_t i) const {
    DCSLDM_REQUIRE(i < size(), "eval_source", what, ": index ", i, " out of range for '", spec_, "' with ", size(),
                   " samples");
  }
  void check_res(const char* what, int res) const {
    DCSLDM_REQUIRE(res >= 1 && res <= 16384, "eval_source", what, ": resolution ", res, " is not in 1..16384 ('",
                   spec_, "')");
  }

  // Same for input and ground truth (the two differ only in meaning); `what` names the caller.
  image::Image render(std::size_t i, int res, const char* what) const {
    check_index(what, i);
    check_res(what, res);
    const Sample& x = (*samples_)[i];
    const std::size_t R = std::size_t(res);
    if (kind_ == SourceKind::Font) {
      image::Image img(std::array<std::size_t, 3>{R, R, 1});
      const data::GlyphPlacement p = glyph_placement(i, res);
      std::lock_guard<std::mutex> lock(font_->mutex);
      font_->font.render(x.code_point, p, img.data());
      return img;
    }
    if (x.source.shape()[0] == R && x.source.shape()[1] == R) return x.source;
    return image::resize(x.source, R, R, image::ResizeFilter::Area);
  }

  image::ImageBatch batch(std::size_t first, std::size_t count, int res, const char* what) const {
    DCSLDM_REQUIRE(first <= size() && count <= size() - first, "eval_source", what, ": samples [", first, ", ",
                   first + count, ") out of range for '", spec_, "' with ", size(), " samples");
    check_res(what, res);
    const std::size_t R = std::size_t(res), C = std::size_t(channels_), per = R * R * C;
    image::ImageBatch b(std::array<std::size_t, 4>{count, R, R, C});
    for (std::size_t k = 0; k < count; ++k) {
      const image::Image img = render(first + k, res, what);
      std::copy(img.data(), img.data() + per, b.data() + k * per);
    }
    return b;
  }

  SourceKind kind_ = SourceKind::Images;
  std::string spec_, note_;
  int channels_ = 1;
  int max_exact_res_ = 0;
  std::vector<std::string> groups_;
  std::shared_ptr<const std::vector<Sample>> samples_;
  std::shared_ptr<Impl::SharedFont> font_;
};

/// Builds a source from a spec: "fmnist:test", "fmnist:train", "font:<path to .ttf/.otf/.ttc>",
/// "images:<folder of PNGs>". n samples (0: all; clamped for fmnist and images, with a note());
/// `seed` draws the font placements. Throws dcsldm::Error for an unknown kind (listing the known
/// ones), an empty path, an unknown fmnist split, a missing file or folder, an empty folder.
inline EvalSource make_source(const std::string& spec, std::size_t n, std::uint64_t seed,
                              const SourceOptions& o = {}) {
  const std::size_t colon = spec.find(':');
  const std::string kind = spec.substr(0, colon);
  const std::string arg = colon == std::string::npos ? std::string() : spec.substr(colon + 1);
  if (kind == "fmnist") {
    DCSLDM_REQUIRE(arg == "test" || arg == "train", "make_source", "'", spec,
                   "': the Fashion-MNIST split must be 'test' or 'train' (fmnist:test, fmnist:train)");
    return EvalSource::fashion_mnist(arg == "test" ? data::Split::Test : data::Split::Train, n, o.fmnist_dir);
  }
  if (kind == "font") {
    DCSLDM_REQUIRE(!arg.empty(), "make_source", "'", spec, "': expected font:<path to a .ttf/.otf/.ttc file>");
    return EvalSource::font(arg, n, seed, o);
  }
  if (kind == "images") {
    DCSLDM_REQUIRE(!arg.empty(), "make_source", "'", spec, "': expected images:<folder of PNG files>");
    return EvalSource::images(arg, n, o.channels);
  }
  detail::fail("make_source", "unknown data source '", spec,
               "': expected fmnist:test, fmnist:train, font:<font file> or images:<folder>");
}

}  // namespace dcsldm::eval
