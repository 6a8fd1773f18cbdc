// dcsldm/data/glyphs.hpp: exact glyph images from vector fonts with FreeType, and the font files and
// train/test split of the fonts Debian ships (fonts-dejavu-core, fonts-noto-core).
//
// REQUIRES FreeType: link Freetype::Freetype (find_package(Freetype), Debian libfreetype-dev).
// Uses xtensor (header-only).
//
// Rendering is unhinted and exact: the glyph outline is loaded in font units (FT_LOAD_NO_SCALE, which
// implies FT_LOAD_NO_HINTING | FT_LOAD_NO_BITMAP), mapped to output pixels by an affine transform
// computed in double precision (scale, rotation, sub-pixel shift), rounded once to FreeType's 26.6
// fixed point, and rasterised by FreeType's smooth (anti-aliasing) rasteriser, which computes the
// area coverage of every pixel. So the same glyph rendered at 16, 32, 64 or 512 px is the exact
// ground truth at each size, up to three small errors of FreeType's raster, all fixed in raster
// pixels: point positions rounded to 1/64 px, curves flattened to about 1/16 px, coverage in 8 bits
// (Font::coverage_table). At 16 px they reach ~1 % of a glyph's ink (a 1.2-px stem moved by 1/128
// px), so by default the glyph is rasterised at >= 128 px and block-averaged (GlyphPlacement::
// oversample): the ink per area then agrees within 0.2 % from 16 to 512 px (measured on 8 glyphs of
// DejaVuSans and NotoSerif; 0.5 % at >= 64 px, 1.5 % without oversampling).
//
// (The transform is applied to the unscaled outline rather than through FT_Set_Char_Size +
// FT_Set_Transform: for TrueType fonts that set bit 3 of the 'head' flags, FreeType rounds the pixel
// size to whole pixels per em, which would break exactness at fractional sizes; and FT_Set_Transform's
// 16.16 matrix is coarser than the double-precision map used here. Same result, no rounding of size.)
//
// Coordinates: output pixel (i, j) (row i, column j) covers [j, j+1] x [i, i+1] in image coordinates,
// x to the right, y down; the canvas centre is (S/2, S/2). Images are float in [0, 1], (S, S, 1).
#pragma once

#include <dcsldm/core/error.hpp>
#include <dcsldm/data/split.hpp>

#include <xtensor/xtensor.hpp>

#include <ft2build.h>
#include FT_FREETYPE_H
#include FT_OUTLINE_H
#include FT_BBOX_H

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace dcsldm::data {

/// Which point of the glyph is placed at the canvas centre (and is the centre of scale and rotation).
enum class GlyphAnchor {
  BBoxCentre,  ///< centre of the outline's exact bounding box: every glyph centred, whatever its shape
  EmBoxCentre  ///< (advance / 2, (ascender + descender) / 2): glyphs keep their place on a text line
};

/// Where and how large a glyph is drawn on an S x S canvas.
struct GlyphPlacement {
  int size = 32;           ///< S: output canvas S x S pixels
  double em = 0.75;        ///< em square = em * S pixels (times `scale`): the same fraction at every S
  double dx = 0, dy = 0;   ///< shift of the anchor from the canvas centre, in output pixels (+x right, +y down)
  double scale = 1;        ///< extra scale about the anchor
  double rotation = 0;     ///< radians, counter-clockwise as seen on screen, about the anchor
  GlyphAnchor anchor = GlyphAnchor::BBoxCentre;
  /// Rasterise at oversample * S pixels and average oversample x oversample blocks (still the exact
  /// area coverage, with finer point positions and curve flattening). 0 = automatic: the smallest
  /// factor with oversample * S >= 128 (1 for S >= 128). 1 = FreeType's raster as it is (fastest).
  int oversample = 0;
};

namespace Impl {
inline std::string code_point_str(char32_t cp) {
  char b[16];
  std::snprintf(b, sizeof b, "U+%04X", unsigned(cp));
  return b;
}
}  // namespace Impl

/// One face of a font file, with its own FreeType library instance and render buffer: a Font may be
/// used by one thread at a time; give each thread its own Font. Not copyable, movable.
class Font {
 public:
  /// Opens face `face_index` of `path` (.ttf, .otf, .ttc). Throws dcsldm::Error naming the file when
  /// it is missing, unreadable, not a font, or has no scalable outlines.
  explicit Font(const std::string& path, long face_index = 0) : path_(path) {
    {
      std::FILE* f = std::fopen(path.c_str(), "rb");
      DCSLDM_REQUIRE(f != nullptr, "Font", "cannot open font file '", path, "'");
      std::fclose(f);
    }
    DCSLDM_REQUIRE(FT_Init_FreeType(&lib_) == 0, "Font", "FT_Init_FreeType failed for '", path, "'");
    const FT_Error e = FT_New_Face(lib_, path.c_str(), face_index, &face_);
    if (e != 0) {
      FT_Done_FreeType(lib_);
      lib_ = nullptr;
      detail::fail("Font", "'", path, "' face ", face_index, ": FreeType cannot load it (error ", int(e),
                   e == FT_Err_Unknown_File_Format ? ": unknown file format" : "",
                   e == FT_Err_Invalid_Argument ? ": no such face" : "", ")");
    }
    if (!FT_IS_SCALABLE(face_)) {
      release();
      detail::fail("Font", "'", path, "' is a bitmap font: no outlines to render exactly");
    }
  }
  Font(const Font&) = delete;
  Font& operator=(const Font&) = delete;
  Font(Font&& o) noexcept { swap(o); }
  Font& operator=(Font&& o) noexcept {
    if (this != &o) {
      release();
      swap(o);
    }
    return *this;
  }
  ~Font() { release(); }

  const std::string& path() const { return path_; }
  std::string family_name() const { return face_->family_name ? face_->family_name : ""; }
  std::string style_name() const { return face_->style_name ? face_->style_name : ""; }
  int units_per_em() const { return face_->units_per_EM; }

  /// True when the font maps code point `cp` to a glyph (other than .notdef).
  bool has_glyph(char32_t cp) const { return FT_Get_Char_Index(face_, FT_ULong(cp)) != 0; }

  /// Every code point the font's character map covers, ascending.
  std::vector<char32_t> code_points() const {
    std::vector<char32_t> r;
    FT_UInt gi = 0;
    for (FT_ULong c = FT_Get_First_Char(face_, &gi); gi != 0; c = FT_Get_Next_Char(face_, c, &gi))
      r.push_back(char32_t(c));
    std::sort(r.begin(), r.end());
    return r;
  }

  /// Renders code point `cp` placed by `p` into out[(i * S + j) * stride], i, j in [0, S): the exact
  /// area coverage in [0, 1] (`=`: every pixel of the canvas is written, 0 where there is no ink).
  /// A glyph reaching past the canvas is clipped. Returns true when the whole glyph (its exact
  /// bounding box after the transform) lies inside the canvas.
  /// Throws naming the font and code point when the font has no glyph for `cp` (check has_glyph), or
  /// when S < 1, em, scale or the shifts are not finite, or em * scale <= 0.
  bool render(char32_t cp, const GlyphPlacement& p, float* out, std::ptrdiff_t stride = 1) {
    const int S = p.size;
    DCSLDM_REQUIRE(S >= 1 && S <= 16384, "glyph_render", "canvas size ", S, " is not in 1..16384");
    DCSLDM_REQUIRE(std::isfinite(p.em) && std::isfinite(p.scale) && p.em * p.scale > 0 && std::isfinite(p.dx) &&
                       std::isfinite(p.dy) && std::isfinite(p.rotation),
                   "glyph_render", "bad placement: em = ", p.em, ", scale = ", p.scale, ", dx = ", p.dx,
                   ", dy = ", p.dy, ", rotation = ", p.rotation);
    const FT_UInt gi = FT_Get_Char_Index(face_, FT_ULong(cp));
    DCSLDM_REQUIRE(gi != 0, "glyph_render", "font '", path_, "' has no glyph for ", Impl::code_point_str(cp));
    const FT_Error e = FT_Load_Glyph(face_, gi, FT_LOAD_NO_SCALE | FT_LOAD_NO_HINTING | FT_LOAD_NO_BITMAP);
    DCSLDM_REQUIRE(e == 0, "glyph_render", "font '", path_, "': FreeType error ", int(e), " loading ",
                   Impl::code_point_str(cp));
    FT_GlyphSlot slot = face_->glyph;
    DCSLDM_REQUIRE(slot->format == FT_GLYPH_FORMAT_OUTLINE, "glyph_render", "font '", path_, "': glyph of ",
                   Impl::code_point_str(cp), " is not an outline");
    FT_Outline& ol = slot->outline;

    // Anchor in font units (y up).
    double ax, ay;
    if (p.anchor == GlyphAnchor::BBoxCentre) {
      FT_BBox bb{};
      if (ol.n_points > 0) FT_Outline_Get_BBox(&ol, &bb);
      ax = 0.5 * (double(bb.xMin) + double(bb.xMax));
      ay = 0.5 * (double(bb.yMin) + double(bb.yMax));
    } else {
      ax = 0.5 * double(slot->metrics.horiAdvance);
      ay = 0.5 * (double(face_->ascender) + double(face_->descender));
    }
    // Font units -> FreeType bitmap coordinates at R = k S pixels (y up, origin at the bottom-left):
    //   x_o = k (S/2 + dx + m (c u - s v)),  y_o = k (S/2 - dy + m (s u + c v)),  (u, v) = point - anchor.
    const int k = p.oversample > 0 ? p.oversample : std::max(1, (128 + S - 1) / S);
    DCSLDM_REQUIRE(p.oversample >= 0 && std::size_t(k) * std::size_t(S) <= 16384, "glyph_render",
                   "oversample ", p.oversample, " x canvas ", S, " is not in 0..16384 pixels");
    const int R = k * S;
    const double m = p.em * p.scale * double(S) / double(face_->units_per_EM);
    const double c = std::cos(p.rotation), s = std::sin(p.rotation);
    const double ox = 0.5 * S + p.dx, oy = 0.5 * S - p.dy;
    for (int q = 0; q < ol.n_points; ++q) {
      const double u = double(ol.points[q].x) - ax, v = double(ol.points[q].y) - ay;
      ol.points[q].x = FT_Pos(std::llround(64.0 * k * (ox + m * (c * u - s * v))));
      ol.points[q].y = FT_Pos(std::llround(64.0 * k * (oy + m * (s * u + c * v))));
    }
    bool inside = true;
    if (ol.n_points > 0) {
      FT_BBox bb{};
      FT_Outline_Get_BBox(&ol, &bb);
      inside = bb.xMin >= 0 && bb.yMin >= 0 && bb.xMax <= FT_Pos(R) * 64 && bb.yMax <= FT_Pos(R) * 64;
    }

    buf_.assign(std::size_t(R) * std::size_t(R), 0);
    if (ol.n_points > 0) {
      FT_Bitmap bm{};
      bm.rows = unsigned(R);
      bm.width = unsigned(R);
      bm.pitch = R;  // positive pitch: row 0 is the top row
      bm.buffer = buf_.data();
      bm.num_grays = 256;
      bm.pixel_mode = FT_PIXEL_MODE_GRAY;  // smooth rasteriser: exact area coverage
      const FT_Error re = FT_Outline_Get_Bitmap(lib_, &ol, &bm);
      DCSLDM_REQUIRE(re == 0, "glyph_render", "font '", path_, "': FreeType error ", int(re), " rasterising ",
                     Impl::code_point_str(cp));
    }
    const auto& lut = coverage_table();
    const float norm = 1.0f / float(k * k);
    for (int i = 0; i < S; ++i)
      for (int j = 0; j < S; ++j) {
        float a = 0;
        for (int bi = 0; bi < k; ++bi) {
          const unsigned char* row = buf_.data() + std::size_t(i * k + bi) * std::size_t(R) + std::size_t(j * k);
          for (int bj = 0; bj < k; ++bj) a += lut[row[bj]];
        }
        out[std::ptrdiff_t(i * S + j) * stride] = a * norm;
      }
    return inside;
  }

  /// Area coverage represented by FreeType's 8-bit value v: the smooth rasteriser truncates
  /// (v = floor(256 a), or ceil(256 a) - 1 for the other winding) and clamps full pixels to 255, so
  /// 0 < v < 255 stands for a in [v / 256, (v + 1) / 256] and is mapped to its centre (v + 0.5) / 256;
  /// 0 -> 0, 255 -> 1. (v / 255 would lose about 1/255 of a pixel of ink per edge pixel: -1 % of the
  /// ink of a glyph at 16 px.)
  static const std::array<float, 256>& coverage_table() {
    static const std::array<float, 256> t = [] {
      std::array<float, 256> a{};
      for (int v = 1; v < 255; ++v) a[std::size_t(v)] = float((v + 0.5) / 256.0);
      a[255] = 1.0f;
      return a;
    }();
    return t;
  }

  /// Renders `cp` into a new (S, S, 1) image; see the pointer overload.
  xt::xtensor<float, 3> render(char32_t cp, const GlyphPlacement& p) {
    DCSLDM_REQUIRE(p.size >= 1 && p.size <= 16384, "glyph_render", "canvas size ", p.size, " is not in 1..16384");
    xt::xtensor<float, 3> img(std::array<std::size_t, 3>{std::size_t(p.size), std::size_t(p.size), 1});
    render(cp, p, img.data());
    return img;
  }

 private:
  void release() {
    if (face_) FT_Done_Face(face_);
    if (lib_) FT_Done_FreeType(lib_);
    face_ = nullptr;
    lib_ = nullptr;
  }
  void swap(Font& o) noexcept {
    std::swap(path_, o.path_);
    std::swap(lib_, o.lib_);
    std::swap(face_, o.face_);
    std::swap(buf_, o.buf_);
  }
  std::string path_;
  FT_Library lib_ = nullptr;
  FT_Face face_ = nullptr;
  std::vector<unsigned char> buf_;  // (S, S) 8-bit coverage, reused between calls
};

// ---------------------------------------------------------------------------------------------------
// Font files and their train/test split.

/// Every *.ttf, *.otf and *.ttc file directly in `dir`, as full paths sorted by file name.
/// Throws naming `dir` when it is not a readable folder.
inline std::vector<std::string> list_font_files(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  DCSLDM_REQUIRE(fs::is_directory(dir, ec), "list_font_files", "'", dir, "' is not a folder");
  std::vector<std::pair<std::string, std::string>> found;  // (file name, path)
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& f = it->path();
    std::string ext = f.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
    if ((ext == ".ttf" || ext == ".otf" || ext == ".ttc") && it->is_regular_file(ec))
      found.emplace_back(f.filename().string(), f.string());
  }
  DCSLDM_REQUIRE(!ec, "list_font_files", "cannot read folder '", dir, "': ", ec.message());
  std::sort(found.begin(), found.end());
  std::vector<std::string> r;
  for (auto& f : found) r.push_back(std::move(f.second));
  return r;
}

/// The six faces of Debian's fonts-dejavu-core that exist in `dir`, sorted by file name (the folder
/// may also hold fonts-dejavu-extra's faces, which are not listed).
inline std::vector<std::string> dejavu_core_fonts(const std::string& dir = "/usr/share/fonts/truetype/dejavu") {
  static const char* names[] = {"DejaVuSans-Bold.ttf",     "DejaVuSans.ttf",          "DejaVuSansMono-Bold.ttf",
                                "DejaVuSansMono.ttf",      "DejaVuSerif-Bold.ttf",    "DejaVuSerif.ttf"};
  std::vector<std::string> r;
  for (const char* n : names) {
    const std::string p = dir + "/" + n;
    std::error_code ec;
    if (std::filesystem::is_regular_file(p, ec)) r.push_back(p);
  }
  return r;
}

/// The fonts of Debian's fonts-noto-core: every font file in `dir`, sorted by file name (other
/// fonts-noto-* packages install into the same folder and are listed too when installed).
inline std::vector<std::string> noto_core_fonts(const std::string& dir = "/usr/share/fonts/truetype/noto") {
  return list_font_files(dir);
}

/// dejavu_core_fonts() followed by noto_core_fonts() (empty parts when a package is not installed).
inline std::vector<std::string> debian_fonts() {
  std::vector<std::string> r = dejavu_core_fonts();
  std::error_code ec;
  if (std::filesystem::is_directory("/usr/share/fonts/truetype/noto", ec)) {
    for (auto& f : noto_core_fonts()) r.push_back(std::move(f));
  }
  return r;
}

/// The family of a font file: its file name without folder and extension, up to the first '-'
/// ("/x/DejaVuSansMono-Bold.ttf" -> "DejaVuSansMono", "NotoSans-Regular.ttf" -> "NotoSans").
inline std::string font_family(const std::string& path) {
  std::string stem = std::filesystem::path(path).stem().string();
  const std::size_t dash = stem.find('-');
  return dash == std::string::npos ? stem : stem.substr(0, dash);
}

/// The documented font split: a font belongs to Split::Test when the 32-bit FNV-1a hash of its
/// family name (font_family) is divisible by 5, else to Split::Train. All faces of a family (Bold,
/// Italic, ...) fall on the same side, so no test glyph shapes leak into training through a sibling
/// face. The rule depends on the file name only, so it is stable across machines and package
/// versions. With Debian 12's packages: DejaVuSerif (Regular and Bold) is the test part of
/// fonts-dejavu-core (DejaVuSans and DejaVuSansMono train); 39 of the 190 Noto families (54 of
/// fonts-noto-core's 268 files) are test families, among them NotoSansGeorgian, NotoSansArabic and
/// NotoSerifHebrew, while NotoSans, NotoSerif, NotoSansMono and the Display families train.
inline Split font_split(const std::string& path) {
  std::uint32_t h = 0x811c9dc5u;
  for (unsigned char ch : font_family(path)) {
    h ^= ch;
    h *= 0x01000193u;
  }
  return h % 5u == 0 ? Split::Test : Split::Train;
}

/// The fonts of `files` in split `s`, in their given order.
inline std::vector<std::string> fonts_in_split(const std::vector<std::string>& files, Split s) {
  std::vector<std::string> r;
  for (const auto& f : files)
    if (font_split(f) == s) r.push_back(f);
  return r;
}

}  // namespace dcsldm::data
