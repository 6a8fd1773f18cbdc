// dcsldm/data/idx.hpp: IDX files (the MNIST / Fashion-MNIST format), plain or gzipped, and the
// Fashion-MNIST data set that Debian's dataset-fashion-mnist installs.
//
// REQUIRES zlib: link ZLIB::ZLIB (find_package(ZLIB)). Uses xtensor (header-only, Debian libxtensor-dev).
//
// Format (big-endian): bytes 0-1 are zero, byte 2 is the element type (0x08 = unsigned byte, the only
// type these data sets use and the only one read here), byte 3 the number of dimensions d, then d
// 32-bit extents, then the elements in row-major order. Images: magic 0x00000803 (N, rows, cols);
// labels: 0x00000801 (N). A file that starts with the gzip magic (1f 8b) is decompressed first.
//
// Everything is validated before data are returned: gzip stream complete and not corrupt, magic, number
// of dimensions, data size equal to the product of the extents (shorter = truncated, longer = trailing
// garbage). Every error is a dcsldm::Error that names the file.
#pragma once

#include <dcsldm/core/error.hpp>
#include <dcsldm/data/split.hpp>

#include <xtensor/xtensor.hpp>

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace dcsldm::data {

namespace Impl {

/// Inflates a gzip (or zlib) image held in memory; `source` names it in errors. Concatenated gzip
/// members (what `cat a.gz b.gz` makes) are decompressed one after the other.
inline std::vector<unsigned char> gunzip(const std::string& source, const std::vector<unsigned char>& in) {
  std::vector<unsigned char> out;
  // The gzip trailer holds the uncompressed size mod 2^32: a good first guess for the buffer.
  std::size_t guess = in.size() * 4 + 1024;
  if (in.size() >= 18) {
    const std::size_t n = in.size();
    const std::size_t isize = std::size_t(in[n - 4]) | std::size_t(in[n - 3]) << 8 |
                              std::size_t(in[n - 2]) << 16 | std::size_t(in[n - 1]) << 24;
    if (isize > 0 && isize < (std::size_t(1) << 31)) guess = isize;
  }
  out.resize(guess);
  z_stream zs{};
  // 15 + 32: window of 2^15, detect gzip or zlib headers automatically.
  DCSLDM_REQUIRE(inflateInit2(&zs, 15 + 32) == Z_OK, "read_idx", "'", source, "': zlib inflateInit2 failed");
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = uInt(in.size());  // IDX files are far below 4 GiB; checked by the caller
  std::size_t produced = 0;
  int rc = Z_OK;
  for (;;) {
    if (produced == out.size()) out.resize(out.size() * 2);
    const std::size_t room = std::min<std::size_t>(out.size() - produced, std::size_t(1) << 30);
    zs.next_out = out.data() + produced;
    zs.avail_out = uInt(room);
    rc = inflate(&zs, Z_NO_FLUSH);
    produced += room - zs.avail_out;
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      // Another gzip member follows; anything else after the stream is an error.
      if (zs.avail_in >= 2 && zs.next_in[0] == 0x1f && zs.next_in[1] == 0x8b && inflateReset(&zs) == Z_OK)
        continue;
      const uInt left = zs.avail_in;
      inflateEnd(&zs);
      detail::fail("read_idx", "'", source, "': ", left, " bytes of garbage after the gzip stream");
    }
    if (rc == Z_OK || rc == Z_BUF_ERROR) {
      if (zs.avail_out == 0) continue;  // output buffer full: grow it
      if (zs.avail_in == 0) {
        inflateEnd(&zs);
        detail::fail("read_idx", "'", source, "': gzip stream ends early after ", produced,
                     " decompressed bytes (file truncated?)");
      }
      continue;
    }
    const std::string msg = zs.msg ? zs.msg : "zlib error code " + std::to_string(rc);
    inflateEnd(&zs);
    detail::fail("read_idx", "'", source, "': corrupt gzip data (", msg, ")");
  }
  inflateEnd(&zs);
  out.resize(produced);
  return out;
}

inline std::uint32_t be32(const unsigned char* p) {
  return std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | std::uint32_t(p[3]);
}

}  // namespace Impl

/// An IDX file's unsigned-byte array: its extents and its elements in row-major order.
struct IdxArray {
  std::vector<std::size_t> dims;
  std::vector<unsigned char> data;
};

/// Reads an IDX file of unsigned bytes (gzipped or not) with exactly `rank` dimensions.
/// Throws dcsldm::Error naming `path` if it cannot be read, the gzip stream is truncated or corrupt,
/// the magic is not 0x0000 08 <rank>, or the data size differs from the product of the extents.
inline IdxArray read_idx(const std::string& path, int rank) {
  std::ifstream f(path, std::ios::binary);
  DCSLDM_REQUIRE(f.good(), "read_idx", "cannot open '", path, "'");
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  DCSLDM_REQUIRE(!f.bad(), "read_idx", "error reading '", path, "'");
  DCSLDM_REQUIRE(bytes.size() < (std::size_t(1) << 32), "read_idx", "'", path, "' is larger than 4 GiB");
  if (bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) bytes = Impl::gunzip(path, bytes);
  DCSLDM_REQUIRE(bytes.size() >= 4, "read_idx", "'", path, "' holds ", bytes.size(),
                 " bytes, too short for the IDX magic (truncated?)");
  const std::uint32_t magic = Impl::be32(bytes.data());
  const std::uint32_t want = 0x800u + std::uint32_t(rank);
  DCSLDM_REQUIRE(magic == want, "read_idx", "'", path, "': magic 0x", std::hex, magic, ", expected 0x", want,
                 std::dec, " (unsigned bytes, ", rank, " dimensions)");
  const std::size_t header = 4 + 4 * std::size_t(rank);
  DCSLDM_REQUIRE(bytes.size() >= header, "read_idx", "'", path, "' holds ", bytes.size(),
                 " bytes, too short for the ", rank, " extents of its header (truncated?)");
  IdxArray a;
  std::size_t numel = 1;
  for (int d = 0; d < rank; ++d) {
    const std::size_t e = Impl::be32(bytes.data() + 4 + 4 * d);
    a.dims.push_back(e);
    DCSLDM_REQUIRE(e == 0 || numel <= (std::size_t(1) << 48) / e, "read_idx", "'", path,
                   "': extents overflow (corrupt header)");
    numel *= e;
  }
  const std::size_t have = bytes.size() - header;
  DCSLDM_REQUIRE(have >= numel, "read_idx", "'", path, "': header says ", numel, " elements but only ", have,
                 " bytes follow (truncated?)");
  DCSLDM_REQUIRE(have == numel, "read_idx", "'", path, "': header says ", numel, " elements but ", have,
                 " bytes follow (trailing garbage?)");
  a.data.assign(bytes.begin() + std::ptrdiff_t(header), bytes.end());
  return a;
}

/// Images of an IDX file with magic 0x803, as floats v / 255 in [0, 1].
/// Returns (N, rows, cols). Errors as read_idx.
inline xt::xtensor<float, 3> read_idx_images(const std::string& path) {
  const IdxArray a = read_idx(path, 3);
  xt::xtensor<float, 3> out(std::array<std::size_t, 3>{a.dims[0], a.dims[1], a.dims[2]});
  float* o = out.data();
  for (std::size_t i = 0; i < a.data.size(); ++i) o[i] = float(a.data[i]) * (1.0f / 255.0f);
  return out;
}

/// Labels of an IDX file with magic 0x801. Returns (N). Errors as read_idx.
inline std::vector<std::uint8_t> read_idx_labels(const std::string& path) {
  IdxArray a = read_idx(path, 1);
  return std::vector<std::uint8_t>(a.data.begin(), a.data.end());
}

/// Where Debian's dataset-fashion-mnist installs the files.
inline const char* fashion_mnist_default_dir() { return "/usr/share/datasets/fashion-mnist"; }

/// The ten Fashion-MNIST classes, in label order.
inline const std::array<const char*, 10>& fashion_mnist_class_names() {
  static const std::array<const char*, 10> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

/// One split of Fashion-MNIST in the library's batch layout.
struct LabelledImages {
  xt::xtensor<float, 4> images;      ///< (N, 28, 28, 1), values in [0, 1] (byte / 255)
  std::vector<std::uint8_t> labels;  ///< (N), 0..9
};

/// Loads `<dir>/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`: 60000 (Train) or 10000 (Test)
/// 28 x 28 grey images and their labels. Checks that the files agree in N, that the images are 28 x 28,
/// and that every label is below 10; errors name the file.
inline LabelledImages load_fashion_mnist(Split split, const std::string& dir = fashion_mnist_default_dir()) {
  const std::string stem = dir + "/" + (split == Split::Train ? "train" : "t10k");
  const std::string ipath = stem + "-images-idx3-ubyte.gz", lpath = stem + "-labels-idx1-ubyte.gz";
  IdxArray im = read_idx(ipath, 3);
  LabelledImages r;
  r.labels = read_idx_labels(lpath);
  DCSLDM_REQUIRE(im.dims[1] == 28 && im.dims[2] == 28, "load_fashion_mnist", "'", ipath, "' holds ", im.dims[1],
                 " x ", im.dims[2], " images, expected 28 x 28");
  DCSLDM_REQUIRE(im.dims[0] == r.labels.size(), "load_fashion_mnist", "'", ipath, "' holds ", im.dims[0],
                 " images but '", lpath, "' holds ", r.labels.size(), " labels");
  for (std::size_t i = 0; i < r.labels.size(); ++i)
    DCSLDM_REQUIRE(r.labels[i] < 10, "load_fashion_mnist", "'", lpath, "': label ", int(r.labels[i]),
                   " at index ", i, " is not in 0..9");
  r.images = xt::xtensor<float, 4>(std::array<std::size_t, 4>{im.dims[0], 28, 28, 1});
  float* o = r.images.data();
  for (std::size_t i = 0; i < im.data.size(); ++i) o[i] = float(im.data[i]) * (1.0f / 255.0f);
  return r;
}

}  // namespace dcsldm::data
