// image/png: round trips of 8-bit grey, grey+alpha, RGB, RGBA (exact for k/255 values, clamping, NaN);
// files written directly with libpng in 16-bit, palette + tRNS, 1-bit grey and grey + tRNS read as the
// documented float layouts; channel conversion; corrupt, truncated, foreign and missing files refused
// with messages naming them; atomic writes; grids; folder listing and batch reading.
#include <dcsldm/image/png.hpp>

#include "data_io_testing.hpp"

#include <png.h>

#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

using namespace dcsldm;
using Catch::Matchers::Contains;

namespace {

/// Writes a PNG with libpng directly (for formats the library does not write). Returns false on error.
bool raw_png(const char* path, std::uint32_t w, std::uint32_t h, int bit_depth, int color_type,
             std::vector<unsigned char>* rows_bytes, std::size_t rowbytes, const png_color* palette, int npal,
             const png_byte* trns_alpha, int ntrns, const png_color_16* trns_grey) {
  std::FILE* f = std::fopen(path, "wb");
  if (!f) return false;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    std::fclose(f);
    return false;
  }
  png_init_io(png, f);
  png_set_IHDR(png, info, w, h, bit_depth, color_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (palette) png_set_PLTE(png, info, palette, npal);
  if (trns_alpha || trns_grey) png_set_tRNS(png, info, trns_alpha, ntrns, trns_grey);
  png_write_info(png, info);
  for (std::uint32_t i = 0; i < h; ++i) png_write_row(png, rows_bytes->data() + i * rowbytes);
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  std::fclose(f);
  return true;
}

image::Image make_image(std::size_t H, std::size_t W, std::size_t C, unsigned seed) {
  image::Image img(std::array<std::size_t, 3>{H, W, C});
  for (std::size_t i = 0; i < img.size(); ++i) img.data()[i] = float((i * 7 + seed * 13) % 256) * (1.0f / 255.0f);
  return img;
}

}  // namespace

TEST_CASE("png: 8-bit round trips in 1 to 4 channels", "[data_io][png]") {
  test::TempDir dir("png");
  for (std::size_t C = 1; C <= 4; ++C) {
    const auto img = make_image(5, 7, C, unsigned(C));
    const std::string p = dir.file("img" + std::to_string(C) + ".png");
    image::write_png(p, img);
    const auto back = image::read_png(p);
    REQUIRE(back.shape() == img.shape());
    for (std::size_t i = 0; i < img.size(); ++i) REQUIRE(back.data()[i] == img.data()[i]);
  }
  // No temporary file is left behind.
  CHECK(dir.entries() == std::vector<std::string>{"img1.png", "img2.png", "img3.png", "img4.png"});
  // Quantisation: round(clamp(x) * 255), NaN -> 0.
  image::Image q(std::array<std::size_t, 3>{1, 6, 1});
  const float vals[6] = {-0.5f, 2.0f, std::numeric_limits<float>::quiet_NaN(), 0.5f, 1.0f / 510 + 1e-4f, 0.999f};
  std::copy(vals, vals + 6, q.data());
  image::write_png(dir.file("q.png"), q);
  const auto qb = image::read_png(dir.file("q.png"));
  const int want[6] = {0, 255, 0, 128, 1, 255};
  for (int i = 0; i < 6; ++i) CHECK(qb.data()[i] == float(want[i]) * (1.0f / 255.0f));
  // Overwriting replaces the file.
  image::write_png(dir.file("q.png"), make_image(2, 3, 3, 9));
  CHECK(image::read_png(dir.file("q.png")).shape() == std::array<std::size_t, 3>{2, 3, 3});
}

TEST_CASE("png: 16-bit, palette, 1-bit and tRNS files", "[data_io][png]") {
  test::TempDir dir("png_raw");
  {  // 16-bit grey, big-endian samples
    std::vector<unsigned char> b = {0x00, 0x00, 0x00, 0x01, 0xff, 0xff, 0x80, 0x00};
    REQUIRE(raw_png(dir.file("g16.png").c_str(), 4, 1, 16, PNG_COLOR_TYPE_GRAY, &b, 8, nullptr, 0, nullptr, 0, nullptr));
    const auto img = image::read_png(dir.file("g16.png"));
    REQUIRE(img.shape() == std::array<std::size_t, 3>{1, 4, 1});
    CHECK(img(0, 0, 0) == 0.0f);
    CHECK(img(0, 1, 0) == 1 * (1.0f / 65535.0f));
    CHECK(img(0, 2, 0) == 1.0f);
    CHECK(img(0, 3, 0) == Approx(32768.0 / 65535.0).epsilon(1e-7));
  }
  {  // 16-bit RGBA, 1 x 1
    std::vector<unsigned char> b = {0x12, 0x34, 0xff, 0xff, 0x00, 0x00, 0x80, 0x00};
    REQUIRE(raw_png(dir.file("rgba16.png").c_str(), 1, 1, 16, PNG_COLOR_TYPE_RGB_ALPHA, &b, 8, nullptr, 0, nullptr, 0,
                    nullptr));
    const auto img = image::read_png(dir.file("rgba16.png"));
    REQUIRE(img.shape() == std::array<std::size_t, 3>{1, 1, 4});
    CHECK(img(0, 0, 0) == Approx(0x1234 / 65535.0).epsilon(1e-7));
    CHECK(img(0, 0, 1) == 1.0f);
    CHECK(img(0, 0, 2) == 0.0f);
  }
  {  // 2-bit palette with tRNS -> RGBA
    const png_color pal[3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
    const png_byte alpha[3] = {255, 128, 0};
    std::vector<unsigned char> b = {0x18};  // 2-bit indices packed MSB first: 00 01 10 00 = 0, 1, 2, 0
    REQUIRE(raw_png(dir.file("pal.png").c_str(), 4, 1, 2, PNG_COLOR_TYPE_PALETTE, &b, 1, pal, 3, alpha, 3, nullptr));
    const auto img = image::read_png(dir.file("pal.png"));
    REQUIRE(img.shape() == std::array<std::size_t, 3>{1, 4, 4});
    CHECK(img(0, 0, 0) == 1.0f);
    CHECK(img(0, 0, 3) == 1.0f);
    CHECK(img(0, 1, 1) == 1.0f);
    CHECK(img(0, 1, 3) == 128 * (1.0f / 255.0f));
    CHECK(img(0, 2, 2) == 1.0f);
    CHECK(img(0, 2, 3) == 0.0f);
    CHECK(img(0, 3, 0) == 1.0f);
  }
  {  // 1-bit grey -> 0 / 1
    std::vector<unsigned char> b = {0xa0};  // 1 0 1 0 0 ...
    REQUIRE(raw_png(dir.file("g1.png").c_str(), 3, 1, 1, PNG_COLOR_TYPE_GRAY, &b, 1, nullptr, 0, nullptr, 0, nullptr));
    const auto img = image::read_png(dir.file("g1.png"));
    REQUIRE(img.shape() == std::array<std::size_t, 3>{1, 3, 1});
    CHECK(img(0, 0, 0) == 1.0f);
    CHECK(img(0, 1, 0) == 0.0f);
    CHECK(img(0, 2, 0) == 1.0f);
  }
  {  // 8-bit grey with a transparent grey value -> grey + alpha
    png_color_16 key{};
    key.gray = 7;
    std::vector<unsigned char> b = {7, 200};
    REQUIRE(raw_png(dir.file("gt.png").c_str(), 2, 1, 8, PNG_COLOR_TYPE_GRAY, &b, 2, nullptr, 0, nullptr, 0, &key));
    const auto img = image::read_png(dir.file("gt.png"));
    REQUIRE(img.shape() == std::array<std::size_t, 3>{1, 2, 2});
    CHECK(img(0, 0, 1) == 0.0f);
    CHECK(img(0, 1, 0) == 200 * (1.0f / 255.0f));
    CHECK(img(0, 1, 1) == 1.0f);
  }
}

TEST_CASE("png: channel conversion", "[data_io][png]") {
  image::Image rgba(std::array<std::size_t, 3>{1, 1, 4});
  rgba(0, 0, 0) = 1.0f;
  rgba(0, 0, 1) = 0.5f;
  rgba(0, 0, 2) = 0.25f;
  rgba(0, 0, 3) = 0.75f;
  const auto g = image::convert_channels(rgba, 1);
  CHECK(g(0, 0, 0) == Approx(0.299 + 0.587 * 0.5 + 0.114 * 0.25).epsilon(1e-6));
  const auto ga = image::convert_channels(rgba, 2);
  CHECK(ga(0, 0, 1) == 0.75f);
  const auto rgb = image::convert_channels(rgba, 3);
  CHECK(rgb(0, 0, 2) == 0.25f);
  const auto rgba2 = image::convert_channels(g, 4);
  CHECK(rgba2(0, 0, 1) == g(0, 0, 0));
  CHECK(rgba2(0, 0, 3) == 1.0f);
  CHECK_THAT(test::error_of([&] { image::convert_channels(rgba, 5); }),
             Contains("dcsldm::convert_channels: channels = 5, expected 1..4"));
}

TEST_CASE("png: bad files are refused with messages naming them", "[data_io][png]") {
  test::TempDir dir("png_bad");
  const std::string good = dir.file("good.png");
  image::write_png(good, make_image(16, 16, 3, 1));
  const auto bytes = test::read_bytes(good);
  CHECK_THAT(test::error_of([&] { image::read_png(dir.file("missing.png")); }),
             Contains("dcsldm::read_png: cannot open '" + dir.file("missing.png") + "'"));
  test::write_bytes(dir.file("text.png"), {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd'});
  CHECK_THAT(test::error_of([&] { image::read_png(dir.file("text.png")); }),
             Contains("'" + dir.file("text.png") + "' is not a PNG file"));
  test::write_bytes(dir.file("cut.png"), std::vector<unsigned char>(bytes.begin(), bytes.begin() + bytes.size() / 2));
  CHECK_THAT(test::error_of([&] { image::read_png(dir.file("cut.png")); }),
             Contains("dcsldm::read_png: '" + dir.file("cut.png") + "'"));
  test::write_bytes(dir.file("header_only.png"), std::vector<unsigned char>(bytes.begin(), bytes.begin() + 20));
  CHECK_THAT(test::error_of([&] { image::read_png(dir.file("header_only.png")); }),
             Contains("'" + dir.file("header_only.png") + "'") && Contains("truncated"));
  auto bad = bytes;
  bad[bad.size() / 2] ^= 0x5a;  // inside the IDAT data: CRC or zlib error
  test::write_bytes(dir.file("corrupt.png"), bad);
  CHECK_THAT(test::error_of([&] { image::read_png(dir.file("corrupt.png")); }),
             Contains("dcsldm::read_png: '" + dir.file("corrupt.png") + "': "));
  // Writing into a missing folder names the file; nothing is left behind.
  CHECK_THAT(test::error_of([&] { image::write_png(dir.file("no/such/dir.png"), make_image(2, 2, 1, 0)); }),
             Contains(dir.file("no/such/dir.png")));
  image::Image five(std::array<std::size_t, 3>{2, 2, 5});
  CHECK_THAT(test::error_of([&] { image::write_png(dir.file("five.png"), five); }),
             Contains("dcsldm::write_png: '" + dir.file("five.png") + "': 5 channels, expected 1..4"));
  image::Image empty(std::array<std::size_t, 3>{0, 2, 1});
  CHECK_THAT(test::error_of([&] { image::write_png(dir.file("empty.png"), empty); }), Contains("image is 0 x 2"));
}

TEST_CASE("png: grids", "[data_io][png]") {
  image::ImageBatch b(std::array<std::size_t, 4>{5, 2, 3, 3});
  for (std::size_t i = 0; i < b.size(); ++i) b.data()[i] = float(i / 18) * 0.1f;  // image n is all n / 10
  const auto g = image::make_grid(b, 3, 1, {0.5f, 0.25f, 1.0f});
  REQUIRE(g.shape() == std::array<std::size_t, 3>{2 * 3 + 1, 3 * 4 + 1, 3});
  CHECK(g(0, 0, 0) == 0.5f);
  CHECK(g(0, 0, 1) == 0.25f);
  CHECK(g(1, 1, 0) == 0.0f);         // image 0 at (1, 1)
  CHECK(g(1, 5, 2) == 0.1f);         // image 1 at (1, 5)
  CHECK(g(2, 4, 0) == 0.5f);         // padding column between images 0 and 1
  CHECK(g(4, 5 + 2, 1) == 0.4f);     // image 4 = row 1, column 1, at (4, 5)
  CHECK(g(4, 9, 2) == 1.0f);         // empty sixth cell: pad colour
  const auto one = image::make_grid(b, 10, 0);  // cols capped at N, no padding
  CHECK(one.shape() == std::array<std::size_t, 3>{2, 15, 3});
  CHECK_THAT(test::error_of([&] { image::make_grid(b, 3, 1, {0.1f, 0.2f}); }),
             Contains("dcsldm::make_grid: pad_colour has 2 values, expected 1 or C = 3"));
  test::TempDir dir("grid");
  image::write_png_grid(dir.file("grid.png"), b, 3);
  CHECK(image::read_png(dir.file("grid.png")).shape() == std::array<std::size_t, 3>{2 * 4 + 2, 3 * 5 + 2, 3});
}

TEST_CASE("png: folders", "[data_io][png]") {
  test::TempDir dir("png_folder");
  image::write_png(dir.file("b.png"), make_image(4, 5, 3, 2));
  image::write_png(dir.file("a.png"), make_image(4, 5, 1, 1));
  image::write_png(dir.file("c.PNG"), make_image(4, 5, 4, 3));
  test::write_bytes(dir.file("notes.txt"), {'x'});
  CHECK(image::list_png_files(dir.path) ==
        std::vector<std::string>{dir.file("a.png"), dir.file("b.png"), dir.file("c.PNG")});
  const auto imgs = image::read_png_folder(dir.path);
  REQUIRE(imgs.size() == 3);
  CHECK(imgs[0].shape()[2] == 1);
  CHECK(imgs[2].shape()[2] == 4);
  const auto batch = image::read_png_batch(dir.path, 3);
  REQUIRE(batch.shape() == std::array<std::size_t, 4>{3, 4, 5, 3});
  const auto b1 = image::read_png(dir.file("b.png"));
  for (std::size_t i = 0; i < b1.size(); ++i) REQUIRE(batch.data()[4 * 5 * 3 + i] == b1.data()[i]);
  image::write_png(dir.file("d.png"), make_image(5, 4, 3, 2));
  CHECK_THAT(test::error_of([&] { image::read_png_batch(dir.path, 3); }),
             Contains("'" + dir.file("d.png") + "' is 5 x 4 but '" + dir.file("a.png") + "' is 4 x 5"));
  CHECK_THAT(test::error_of([&] { image::list_png_files(dir.file("nothere")); }),
             Contains("dcsldm::list_png_files: '" + dir.file("nothere") + "' is not a folder"));
}
