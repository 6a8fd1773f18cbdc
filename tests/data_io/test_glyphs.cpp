// data/glyphs: exact unhinted rendering (ink per area agrees across 16..128 px, centroid moves by a
// sub-pixel shift, rotation and scale act as the maths says, bbox centring), every pixel written,
// strides, errors (missing file, not a font, missing code point, bad placement), and the Debian font
// lists and their documented train/test split.
#include <dcsldm/data/glyphs.hpp>

#include "data_io_testing.hpp"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace dcsldm;
using Catch::Matchers::Contains;

namespace {

const std::string dejavu = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const std::string noto_serif = "/usr/share/fonts/truetype/noto/NotoSerif-Regular.ttf";

bool exists(const std::string& p) { return std::ifstream(p).good(); }

struct Moments {
  double ink = 0, cx = 0, cy = 0, vxx = 0, vyy = 0;
};
/// Ink (sum / S^2), centroid (pixel centres at j + 0.5, i + 0.5) and second central moments.
Moments moments(const std::vector<float>& img, int S) {
  Moments m;
  double s = 0;
  for (int i = 0; i < S; ++i)
    for (int j = 0; j < S; ++j) {
      const double v = img[i * S + j];
      s += v;
      m.cx += v * (j + 0.5);
      m.cy += v * (i + 0.5);
    }
  m.cx /= s;
  m.cy /= s;
  for (int i = 0; i < S; ++i)
    for (int j = 0; j < S; ++j) {
      const double v = img[i * S + j];
      m.vxx += v * (j + 0.5 - m.cx) * (j + 0.5 - m.cx);
      m.vyy += v * (i + 0.5 - m.cy) * (i + 0.5 - m.cy);
    }
  m.vxx /= s;
  m.vyy /= s;
  m.ink = s / (double(S) * S);
  return m;
}

std::vector<float> render(data::Font& f, char32_t cp, const data::GlyphPlacement& p) {
  std::vector<float> img(std::size_t(p.size) * p.size, std::numeric_limits<float>::quiet_NaN());
  f.render(cp, p, img.data());
  return img;
}

}  // namespace

TEST_CASE("glyphs: ink per area is the same at 16, 32, 64 and 128 px (0.5 %)", "[data_io][glyphs]") {
  for (const std::string& path : {dejavu, noto_serif}) {
    if (!exists(path)) {
      WARN(path << " missing: skipped");
      continue;
    }
    data::Font font(path);
    for (char32_t cp : {U'A', U'g', U'@', U'W', U'O', U'5'}) {
      data::GlyphPlacement p;
      p.em = 0.75;
      p.size = 128;
      const double ref = moments(render(font, cp, p), 128).ink;
      REQUIRE(ref > 0.02);
      for (int S : {16, 32, 64}) {
        p.size = S;
        const double ink = moments(render(font, cp, p), S).ink;
        INFO(path << " U+" << std::hex << unsigned(cp) << std::dec << " S=" << S << " ink " << ink << " vs " << ref);
        CHECK(std::abs(ink - ref) < 0.005 * ref);
      }
    }
  }
}

TEST_CASE("glyphs: a sub-pixel shift moves the centroid by the shift", "[data_io][glyphs]") {
  data::Font font(dejavu);
  for (char32_t cp : {U'A', U'g', U'R'}) {
    for (int S : {16, 32, 64}) {
      data::GlyphPlacement p;
      p.size = S;
      const Moments m0 = moments(render(font, cp, p), S);
      for (double d : {0.25, 0.5}) {
        p.dx = d;
        p.dy = 0;
        const Moments mx = moments(render(font, cp, p), S);
        p.dx = 0;
        p.dy = d;
        const Moments my = moments(render(font, cp, p), S);
        INFO("U+" << std::hex << unsigned(cp) << std::dec << " S=" << S << " shift " << d);
        CHECK(std::abs((mx.cx - m0.cx) - d) < 0.05);
        CHECK(std::abs(mx.cy - m0.cy) < 0.05);
        CHECK(std::abs((my.cy - m0.cy) - d) < 0.05);  // +dy is down
        CHECK(std::abs(my.cx - m0.cx) < 0.05);
      }
    }
  }
}

TEST_CASE("glyphs: placement, rotation, scale, clipping flag, strides", "[data_io][glyphs]") {
  data::Font font(dejavu);
  CHECK(font.family_name() == "DejaVu Sans");
  CHECK(font.units_per_em() == 2048);
  data::GlyphPlacement p;
  p.size = 64;
  // 'O' is symmetric: bbox centring puts its centroid at the canvas centre.
  const Moments o = moments(render(font, U'O', p), 64);
  CHECK(std::abs(o.cx - 32) < 0.05);
  CHECK(std::abs(o.cy - 32) < 0.05);
  // Every pixel is written (the buffer was NaN), values in [0, 1], interior pixels fully covered.
  const auto img = render(font, U'I', p);
  float lo = 1, hi = 0;
  for (float v : img) {
    REQUIRE(!std::isnan(v));
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  CHECK(lo == 0.0f);
  CHECK(hi == 1.0f);
  // 'I' is a vertical bar: rotating it by 90 degrees swaps the second moments, ink conserved.
  const Moments bar = moments(img, 64);
  p.rotation = std::acos(-1.0) / 2;
  const Moments rot = moments(render(font, U'I', p), 64);
  CHECK(bar.vyy > 10 * bar.vxx);
  CHECK(std::abs(rot.vxx - bar.vyy) < 0.02 * bar.vyy);
  CHECK(std::abs(rot.vyy - bar.vxx) < 0.05 * bar.vxx);
  CHECK(std::abs(rot.ink - bar.ink) < 0.01 * bar.ink);
  // Half the scale: a quarter of the ink.
  p.rotation = 0;
  p.scale = 0.5;
  const Moments half = moments(render(font, U'A', p), 64);
  p.scale = 1;
  const Moments full = moments(render(font, U'A', p), 64);
  CHECK(std::abs(half.ink - full.ink / 4) < 0.01 * full.ink);
  // Without oversampling (FreeType's raster as it is) the ink still agrees within ~1.5 %.
  p.oversample = 1;
  p.size = 16;
  const double raw16 = moments(render(font, U'A', p), 16).ink;
  p.size = 64;
  CHECK(std::abs(raw16 - full.ink) < 0.02 * full.ink);
  p.oversample = 0;
  // The fits-the-canvas flag.
  std::vector<float> buf(64 * 64);
  CHECK(font.render(U'A', p, buf.data()));
  p.em = 3;
  CHECK_FALSE(font.render(U'A', p, buf.data()));
  p.em = 0.75;
  p.dx = 40;
  CHECK_FALSE(font.render(U'A', p, buf.data()));
  p.dx = 0;
  // Stride 3: channel 1 of an (S, S, 3) buffer, the others untouched.
  std::vector<float> rgb(64 * 64 * 3, -1.0f);
  font.render(U'A', p, rgb.data() + 1, 3);
  const auto grey = render(font, U'A', p);
  for (std::size_t i = 0; i < grey.size(); ++i) {
    REQUIRE(rgb[3 * i + 1] == grey[i]);
    REQUIRE(rgb[3 * i] == -1.0f);
    REQUIRE(rgb[3 * i + 2] == -1.0f);
  }
  // The xtensor overload: (S, S, 1), same values.
  const auto t = font.render(U'A', p);
  REQUIRE(t.shape() == std::array<std::size_t, 3>{64, 64, 1});
  for (std::size_t i = 0; i < grey.size(); ++i) REQUIRE(t.data()[i] == grey[i]);
  // A space has no outline: an empty canvas, and it fits.
  CHECK(font.render(U' ', p, buf.data()));
  for (float v : buf) REQUIRE(v == 0.0f);
  // EmBoxCentre keeps the baseline: 'x' and 'X' share their bottom row.
  p.anchor = data::GlyphAnchor::EmBoxCentre;
  auto bottom = [&](char32_t cp) {
    const auto g = render(font, cp, p);
    int last = -1;
    for (int i = 0; i < 64; ++i)
      for (int j = 0; j < 64; ++j)
        if (g[i * 64 + j] > 0.5f) last = i;
    return last;
  };
  CHECK(bottom(U'x') == bottom(U'X'));
  // Moving the Font keeps it usable.
  data::Font moved = std::move(font);
  CHECK(moved.has_glyph(U'A'));
  const auto cps = moved.code_points();
  CHECK(std::is_sorted(cps.begin(), cps.end()));
  CHECK(std::binary_search(cps.begin(), cps.end(), U'A'));
  CHECK_FALSE(std::binary_search(cps.begin(), cps.end(), U'\u4E00'));
}

TEST_CASE("glyphs: errors name the font and the code point", "[data_io][glyphs]") {
  CHECK_THAT(test::error_of([] { data::Font f("/nonexistent/dir/Font.ttf"); }),
             Contains("dcsldm::Font: cannot open font file '/nonexistent/dir/Font.ttf'"));
  test::TempDir dir("glyphs");
  test::write_bytes(dir.file("fake.ttf"), {'n', 'o', 't', ' ', 'a', ' ', 'f', 'o', 'n', 't'});
  CHECK_THAT(test::error_of([&] { data::Font f(dir.file("fake.ttf")); }),
             Contains("'" + dir.file("fake.ttf") + "'") && Contains("FreeType cannot load it"));
  CHECK_THAT(test::error_of([&] { data::Font f(dejavu, 5); }), Contains("face 5") && Contains("no such face"));
  data::Font font(dejavu);
  CHECK_FALSE(font.has_glyph(U'\u4E00'));
  data::GlyphPlacement p;
  std::vector<float> buf(32 * 32);
  CHECK_THAT(test::error_of([&] { font.render(U'\u4E00', p, buf.data()); }),
             Contains("dcsldm::glyph_render: font '" + dejavu + "' has no glyph for U+4E00"));
  p.em = 0;
  CHECK_THAT(test::error_of([&] { font.render(U'A', p, buf.data()); }), Contains("bad placement: em = 0"));
  p.em = 0.75;
  p.size = 0;
  CHECK_THAT(test::error_of([&] { font.render(U'A', p); }), Contains("canvas size 0 is not in 1..16384"));
}

TEST_CASE("glyphs: Debian font lists and the train/test split", "[data_io][glyphs]") {
  const auto dv = data::dejavu_core_fonts();
  REQUIRE(dv.size() == 6);
  CHECK(dv.front() == "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf");
  CHECK(dv.back() == "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf");
  const auto test_dv = data::fonts_in_split(dv, data::Split::Test);
  CHECK(test_dv == std::vector<std::string>{"/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf",
                                            "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"});
  CHECK(data::fonts_in_split(dv, data::Split::Train).size() == 4);

  CHECK(data::font_family("/x/DejaVuSansMono-Bold.ttf") == "DejaVuSansMono");
  CHECK(data::font_family("NotoSans-Regular.ttf") == "NotoSans");
  CHECK(data::font_family("Plain.otf") == "Plain");
  CHECK(data::font_split("NotoSans-Regular.ttf") == data::Split::Train);
  CHECK(data::font_split("NotoSerif-Italic.ttf") == data::Split::Train);
  CHECK(data::font_split("NotoSansMono-Bold.ttf") == data::Split::Train);
  CHECK(data::font_split("NotoSansGeorgian-Regular.ttf") == data::Split::Test);
  CHECK(data::font_split("NotoSerifHebrew-Bold.ttf") == data::Split::Test);
  CHECK(data::font_split("/elsewhere/DejaVuSerif.ttf") == data::Split::Test);

  std::error_code ec;
  if (std::filesystem::is_directory("/usr/share/fonts/truetype/noto", ec)) {
    const auto noto = data::noto_core_fonts();
    REQUIRE(noto.size() >= 100);
    for (std::size_t i = 1; i < noto.size(); ++i)
      REQUIRE(std::filesystem::path(noto[i - 1]).filename() < std::filesystem::path(noto[i]).filename());
    const auto tr = data::fonts_in_split(noto, data::Split::Train), te = data::fonts_in_split(noto, data::Split::Test);
    CHECK(tr.size() + te.size() == noto.size());
    CHECK(te.size() > noto.size() / 10);
    CHECK(te.size() < noto.size() / 3);
    CHECK(data::debian_fonts().size() == dv.size() + noto.size());
  }
  CHECK_THAT(test::error_of([] { data::list_font_files("/nonexistent/fonts"); }),
             Contains("dcsldm::list_font_files: '/nonexistent/fonts' is not a folder"));
  test::TempDir dir("fonts");
  for (const char* n : {"b.ttf", "a.OTF", "c.txt", "d.ttc"}) test::write_bytes(dir.file(n), {0});
  CHECK(data::list_font_files(dir.path) ==
        std::vector<std::string>{dir.file("a.OTF"), dir.file("b.ttf"), dir.file("d.ttc")});
}
