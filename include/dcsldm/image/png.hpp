// dcsldm/image/png.hpp: PNG files to and from float images (H, W, C) in [0, 1], image grids, folders.
//
// REQUIRES libpng: link PNG::PNG (find_package(PNG), Debian libpng-dev). Uses xtensor (header-only).
//
// Reading accepts every PNG: grey, grey + alpha, RGB, RGBA and palette images at bit depths 1 to 16.
// Palettes become RGB (RGBA with a tRNS chunk), grey below 8 bits is expanded, a tRNS chunk becomes an
// alpha channel; values are v / 255 (8-bit) or v / 65535 (16-bit), exactly as stored (no gamma or
// colour-profile conversion). C is 1 (grey), 2 (grey, alpha), 3 (RGB) or 4 (RGBA).
// Writing stores 8-bit grey (C = 1), grey + alpha (2), RGB (3) or RGBA (4): round(clamp(x, 0, 1) * 255),
// NaN written as 0. Files are written atomically (temporary file, fsync, rename) with
// io::SafeTensorsWriter::write_atomic. Every error is a dcsldm::Error naming the file.
//
// libpng reports errors by longjmp; the functions that call libpng (Impl::png_*) hold no objects with
// destructors between setjmp and the libpng calls, and turn errors into exceptions after returning.
#pragma once

#include <dcsldm/core/error.hpp>
#include <dcsldm/image/image.hpp>
#include <dcsldm/io/safetensors.hpp>

#include <xtensor/xtensor.hpp>

#include <png.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <csetjmp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace dcsldm::image {

/// Largest width or height read or written (a larger header field means a corrupt or hostile file).
constexpr std::uint32_t png_max_extent = 1u << 15;

namespace Impl {

struct PngIo {
  const unsigned char* src = nullptr;  // reading: the file's bytes
  std::size_t size = 0, pos = 0;
  std::vector<unsigned char>* dst = nullptr;  // writing: the encoded bytes
  bool out_of_memory = false;
  char msg[256] = {0};  // libpng's error message
};

inline void png_error_cb(png_structp png, png_const_charp msg) {
  auto* io = static_cast<PngIo*>(png_get_error_ptr(png));
  std::snprintf(io->msg, sizeof io->msg, "%s", msg ? msg : "unknown libpng error");
  png_longjmp(png, 1);
}
inline void png_warning_cb(png_structp, png_const_charp) {}

inline void png_read_cb(png_structp png, png_bytep out, png_size_t n) {
  auto* io = static_cast<PngIo*>(png_get_io_ptr(png));
  if (n > io->size - io->pos) png_error(png, "unexpected end of file (truncated?)");
  std::copy(io->src + io->pos, io->src + io->pos + n, out);
  io->pos += n;
}
inline void png_write_cb(png_structp png, png_bytep data, png_size_t n) {
  auto* io = static_cast<PngIo*>(png_get_io_ptr(png));
  try {
    io->dst->insert(io->dst->end(), data, data + n);
  } catch (...) {
    io->out_of_memory = true;
  }
  if (io->out_of_memory) png_error(png, "out of memory");
}
inline void png_flush_cb(png_structp) {}

struct PngHeader {
  std::uint32_t width = 0, height = 0;
  int channels = 0, bit_depth = 0;
  std::size_t rowbytes = 0;
};

/// Reads the header and sets the expansions; false on a libpng error (message in the PngIo).
inline bool png_read_header(png_structp png, png_infop info, PngHeader* h) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_user_limits(png, png_max_extent, png_max_extent);
  png_read_info(png, info);
  const int ct = png_get_color_type(png, info);
  const int bd = png_get_bit_depth(png, info);
  if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (ct == PNG_COLOR_TYPE_GRAY && bd < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  h->width = png_get_image_width(png, info);
  h->height = png_get_image_height(png, info);
  h->channels = png_get_channels(png, info);
  h->bit_depth = png_get_bit_depth(png, info);
  h->rowbytes = png_get_rowbytes(png, info);
  return true;
}
/// Decodes all rows into rows[0..height); false on a libpng error.
inline bool png_read_rows(png_structp png, png_infop info, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_image(png, rows);
  png_read_end(png, info);
  return true;
}
/// Encodes 8-bit rows; false on a libpng error.
inline bool png_write_rows(png_structp png, png_infop info, std::uint32_t w, std::uint32_t h, int color_type,
                           png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_IHDR(png, info, w, h, 8, color_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, info);
  return true;
}

inline std::vector<unsigned char> read_file(const char* op, const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  DCSLDM_REQUIRE(f.good(), op, "cannot open '", path, "'");
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  DCSLDM_REQUIRE(!f.bad(), op, "error reading '", path, "'");
  return bytes;
}

inline unsigned char quantize8(float x) {
  if (!(x > 0.0f)) return 0;  // also NaN
  if (x >= 1.0f) return 255;
  return static_cast<unsigned char>(std::lround(x * 255.0f));
}

}  // namespace Impl

/// Decodes a PNG held in memory; `source` names it in errors. See read_png.
inline Image decode_png(const std::string& source, const std::vector<unsigned char>& bytes) {
  DCSLDM_REQUIRE(bytes.size() >= 8 && png_sig_cmp(bytes.data(), 0, 8) == 0, "read_png", "'", source,
                 "' is not a PNG file (bad signature)");
  Impl::PngIo io;
  io.src = bytes.data();
  io.size = bytes.size();
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &io, Impl::png_error_cb, Impl::png_warning_cb);
  DCSLDM_REQUIRE(png != nullptr, "read_png", "'", source, "': png_create_read_struct failed");
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    detail::fail("read_png", "'", source, "': png_create_info_struct failed");
  }
  png_set_read_fn(png, &io, Impl::png_read_cb);
  Impl::PngHeader h;
  if (!Impl::png_read_header(png, info, &h)) {
    png_destroy_read_struct(&png, &info, nullptr);
    detail::fail("read_png", "'", source, "': ", io.msg);
  }
  std::vector<unsigned char> pixels;
  std::vector<png_bytep> rows;
  try {
    pixels.resize(h.rowbytes * h.height);
    rows.resize(h.height);
  } catch (...) {
    png_destroy_read_struct(&png, &info, nullptr);
    detail::fail("read_png", "'", source, "': cannot allocate ", h.width, " x ", h.height, " pixels");
  }
  for (std::uint32_t i = 0; i < h.height; ++i) rows[i] = pixels.data() + std::size_t(i) * h.rowbytes;
  const bool ok = Impl::png_read_rows(png, info, rows.data());
  png_destroy_read_struct(&png, &info, nullptr);
  DCSLDM_REQUIRE(ok, "read_png", "'", source, "': ", io.msg);

  const std::size_t H = h.height, W = h.width, C = std::size_t(h.channels);
  Image img(std::array<std::size_t, 3>{H, W, C});
  float* o = img.data();
  if (h.bit_depth == 16) {
    for (std::size_t i = 0; i < H; ++i) {
      const unsigned char* r = rows[i];
      for (std::size_t k = 0; k < W * C; ++k)
        o[i * W * C + k] = float((unsigned(r[2 * k]) << 8) | r[2 * k + 1]) * (1.0f / 65535.0f);
    }
  } else {
    for (std::size_t i = 0; i < H; ++i) {
      const unsigned char* r = rows[i];
      for (std::size_t k = 0; k < W * C; ++k) o[i * W * C + k] = float(r[k]) * (1.0f / 255.0f);
    }
  }
  return img;
}

/// Reads the PNG file `path` as (H, W, C) floats in [0, 1], C the file's channels (1 grey, 2 grey +
/// alpha, 3 RGB, 4 RGBA). Throws dcsldm::Error naming the file when it is missing, not a PNG,
/// truncated, corrupt (libpng's message is included) or larger than png_max_extent.
inline Image read_png(const std::string& path) { return decode_png(path, Impl::read_file("read_png", path)); }

/// Converts an image to `channels` (1..4). To fewer colours: grey = 0.299 R + 0.587 G + 0.114 B
/// (ITU-R BT.601, as PIL's "L"); to more: grey replicated. Alpha is dropped when the target has none
/// (not composited) and 1 when the source has none.
inline Image convert_channels(const Image& img, int channels) {
  const std::size_t C = img.shape()[2];
  DCSLDM_REQUIRE(channels >= 1 && channels <= 4, "convert_channels", "channels = ", channels, ", expected 1..4");
  DCSLDM_REQUIRE(C >= 1 && C <= 4, "convert_channels", "image has ", C, " channels, expected 1..4");
  if (C == std::size_t(channels)) return img;
  const std::size_t n = img.shape()[0] * img.shape()[1];
  Image out(std::array<std::size_t, 3>{img.shape()[0], img.shape()[1], std::size_t(channels)});
  const float* in = img.data();
  float* o = out.data();
  const bool src_colour = C >= 3, src_alpha = C == 2 || C == 4;
  const bool dst_colour = channels >= 3, dst_alpha = channels == 2 || channels == 4;
  for (std::size_t p = 0; p < n; ++p) {
    const float* s = in + p * C;
    float* d = o + p * std::size_t(channels);
    const float a = src_alpha ? s[C - 1] : 1.0f;
    if (dst_colour) {
      for (int k = 0; k < 3; ++k) d[k] = src_colour ? s[k] : s[0];
    } else {
      d[0] = src_colour ? 0.299f * s[0] + 0.587f * s[1] + 0.114f * s[2] : s[0];
    }
    if (dst_alpha) d[channels - 1] = a;
  }
  return out;
}

/// Reads `path` and converts it to `channels` (see convert_channels).
inline Image read_png(const std::string& path, int channels) { return convert_channels(read_png(path), channels); }

/// Encodes an 8-bit PNG of the row-major (H, W, C) floats at `data` (C = 1 grey, 2 grey + alpha,
/// 3 RGB, 4 RGBA); `name` names it in errors. Values are round(clamp(x, 0, 1) * 255), NaN -> 0.
inline std::vector<unsigned char> encode_png(const std::string& name, const float* data, std::size_t H,
                                             std::size_t W, std::size_t C) {
  DCSLDM_REQUIRE(C >= 1 && C <= 4, "write_png", "'", name, "': ", C, " channels, expected 1..4");
  DCSLDM_REQUIRE(H >= 1 && W >= 1 && H <= png_max_extent && W <= png_max_extent, "write_png", "'", name,
                 "': image is ", H, " x ", W, ", PNG needs 1..", png_max_extent, " pixels on each side");
  static const int types[] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                              PNG_COLOR_TYPE_RGB_ALPHA};
  std::vector<unsigned char> pix(H * W * C);
  for (std::size_t i = 0; i < pix.size(); ++i) pix[i] = Impl::quantize8(data[i]);
  std::vector<png_bytep> rows(H);
  for (std::size_t i = 0; i < H; ++i) rows[i] = pix.data() + i * W * C;
  std::vector<unsigned char> out;
  out.reserve(pix.size() / 2 + 1024);
  Impl::PngIo io;
  io.dst = &out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &io, Impl::png_error_cb, Impl::png_warning_cb);
  DCSLDM_REQUIRE(png != nullptr, "write_png", "'", name, "': png_create_write_struct failed");
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_write_struct(&png, nullptr);
    detail::fail("write_png", "'", name, "': png_create_info_struct failed");
  }
  png_set_write_fn(png, &io, Impl::png_write_cb, Impl::png_flush_cb);
  const bool ok = Impl::png_write_rows(png, info, std::uint32_t(W), std::uint32_t(H), types[C - 1], rows.data());
  png_destroy_write_struct(&png, &info);
  DCSLDM_REQUIRE(ok, "write_png", "'", name, "': ", io.msg);
  return out;
}

/// Writes `img` (H, W, C), C in 1..4, as an 8-bit PNG at `path`, atomically. Throws naming the file.
inline void write_png(const std::string& path, const Image& img) {
  const auto bytes = encode_png(path, img.data(), img.shape()[0], img.shape()[1], img.shape()[2]);
  io::SafeTensorsWriter::write_atomic(path, bytes);
}

/// Lays out `images` (N, H, W, C) in a grid of `cols` columns and ceil(N / cols) rows, row by row, with
/// `pad` pixels of `pad_colour` between the images and around the grid (as torchvision's make_grid):
/// the result is (rows * (H + pad) + pad, cols * (W + pad) + pad, C). Empty cells of the last row are
/// pad colour. `pad_colour` has 1 value (used for every channel) or C values.
inline Image make_grid(const ImageBatch& images, std::size_t cols, std::size_t pad = 2,
                       const std::vector<float>& pad_colour = {1.0f}) {
  const std::size_t N = images.shape()[0], H = images.shape()[1], W = images.shape()[2], C = images.shape()[3];
  DCSLDM_REQUIRE(N >= 1 && cols >= 1, "make_grid", "N = ", N, ", cols = ", cols, ": need at least one of each");
  DCSLDM_REQUIRE(pad_colour.size() == 1 || pad_colour.size() == C, "make_grid", "pad_colour has ",
                 pad_colour.size(), " values, expected 1 or C = ", C);
  cols = std::min(cols, N);
  const std::size_t rows = (N + cols - 1) / cols;
  const std::size_t GH = rows * (H + pad) + pad, GW = cols * (W + pad) + pad;
  Image g(std::array<std::size_t, 3>{GH, GW, C});
  float* o = g.data();
  for (std::size_t p = 0; p < GH * GW; ++p)
    for (std::size_t c = 0; c < C; ++c) o[p * C + c] = pad_colour.size() == 1 ? pad_colour[0] : pad_colour[c];
  const float* in = images.data();
  for (std::size_t n = 0; n < N; ++n) {
    const std::size_t y0 = pad + (n / cols) * (H + pad), x0 = pad + (n % cols) * (W + pad);
    for (std::size_t i = 0; i < H; ++i)
      std::copy(in + ((n * H + i) * W) * C, in + ((n * H + i) * W + W) * C, o + ((y0 + i) * GW + x0) * C);
  }
  return g;
}

/// make_grid followed by write_png (atomic). Errors name the file.
inline void write_png_grid(const std::string& path, const ImageBatch& images, std::size_t cols, std::size_t pad = 2,
                           const std::vector<float>& pad_colour = {1.0f}) {
  write_png(path, make_grid(images, cols, pad, pad_colour));
}

/// Every *.png (any case of the extension) directly in `dir`, full paths sorted by file name.
/// Throws naming `dir` when it is not a readable folder.
inline std::vector<std::string> list_png_files(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  DCSLDM_REQUIRE(fs::is_directory(dir, ec), "list_png_files", "'", dir, "' is not a folder");
  std::vector<std::pair<std::string, std::string>> found;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string ext = it->path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
    if (ext == ".png" && it->is_regular_file(ec)) found.emplace_back(it->path().filename().string(), it->path().string());
  }
  DCSLDM_REQUIRE(!ec, "list_png_files", "cannot read folder '", dir, "': ", ec.message());
  std::sort(found.begin(), found.end());
  std::vector<std::string> r;
  for (auto& f : found) r.push_back(std::move(f.second));
  return r;
}

/// Reads every PNG of `dir` (list_png_files order). `channels` = 0 keeps each file's channels, 1..4
/// converts (convert_channels). Errors name the failing file.
inline std::vector<Image> read_png_folder(const std::string& dir, int channels = 0) {
  std::vector<Image> r;
  for (const auto& f : list_png_files(dir)) r.push_back(channels == 0 ? read_png(f) : read_png(f, channels));
  return r;
}

/// Reads every PNG of `dir` into one batch (N, H, W, C); all files must have the same size after
/// conversion to `channels` (1..4). Throws naming the first file whose size differs from the first's.
inline ImageBatch read_png_batch(const std::string& dir, int channels) {
  DCSLDM_REQUIRE(channels >= 1 && channels <= 4, "read_png_batch", "channels = ", channels, ", expected 1..4");
  const auto files = list_png_files(dir);
  std::vector<Image> imgs;
  for (const auto& f : files) {
    imgs.push_back(read_png(f, channels));
    DCSLDM_REQUIRE(imgs.back().shape() == imgs.front().shape(), "read_png_batch", "'", f, "' is ",
                   imgs.back().shape()[0], " x ", imgs.back().shape()[1], " but '", files.front(), "' is ",
                   imgs.front().shape()[0], " x ", imgs.front().shape()[1]);
  }
  return stack_images(imgs);
}

}  // namespace dcsldm::image
