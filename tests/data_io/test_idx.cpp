// data/idx: the real Fashion-MNIST files (counts, label range and balance, known first labels and
// pixels, read once with Python's gzip module), plain and gzipped synthetic files, and every kind of bad
// file refused with a message naming it (missing, too short, wrong magic, truncated data, trailing
// bytes, truncated or corrupt gzip, bad labels / shapes / counts in a data set folder).
#include <dcsldm/data/idx.hpp>

#include "data_io_testing.hpp"

#include <zlib.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

using namespace dcsldm;
using Catch::Matchers::Contains;

namespace {

const std::string fm_dir = data::fashion_mnist_default_dir();

bool have_fashion_mnist() {
  std::ifstream f(fm_dir + "/t10k-labels-idx1-ubyte.gz");
  return f.good();
}

std::vector<unsigned char> idx_bytes(std::uint32_t magic, const std::vector<std::uint32_t>& dims,
                                     const std::vector<unsigned char>& data) {
  std::vector<unsigned char> b;
  auto put = [&](std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>(v >> s));
  };
  put(magic);
  for (auto d : dims) put(d);
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

std::vector<unsigned char> gzip_bytes(const std::vector<unsigned char>& raw) {
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);  // +16: gzip wrapper
  std::vector<unsigned char> out(deflateBound(&zs, uLong(raw.size())) + 64);
  zs.next_in = const_cast<Bytef*>(raw.data());
  zs.avail_in = uInt(raw.size());
  zs.next_out = out.data();
  zs.avail_out = uInt(out.size());
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::vector<unsigned char> iota_bytes(std::size_t n) {
  std::vector<unsigned char> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<unsigned char>((i * 37) % 256);
  return v;
}

}  // namespace

TEST_CASE("idx: Fashion-MNIST train and test files", "[data_io][idx]") {
  if (!have_fashion_mnist()) {
    WARN("dataset-fashion-mnist is not installed: skipped");
    return;
  }
  const auto train_labels = data::read_idx_labels(fm_dir + "/train-labels-idx1-ubyte.gz");
  const auto test_labels = data::read_idx_labels(fm_dir + "/t10k-labels-idx1-ubyte.gz");
  REQUIRE(train_labels.size() == 60000);
  REQUIRE(test_labels.size() == 10000);
  // First labels, read once with Python's gzip module.
  const std::vector<int> first_train = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5}, first_test = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
  for (int i = 0; i < 10; ++i) {
    CHECK(int(train_labels[i]) == first_train[i]);
    CHECK(int(test_labels[i]) == first_test[i]);
  }
  std::array<int, 10> count_train{}, count_test{};
  for (auto l : train_labels) {
    REQUIRE(l < 10);
    ++count_train[l];
  }
  for (auto l : test_labels) {
    REQUIRE(l < 10);
    ++count_test[l];
  }
  for (int c = 0; c < 10; ++c) {
    CHECK(count_train[c] == 6000);
    CHECK(count_test[c] == 1000);
  }

  const auto imgs = data::read_idx_images(fm_dir + "/t10k-images-idx3-ubyte.gz");
  REQUIRE(imgs.shape()[0] == 10000);
  REQUIRE(imgs.shape()[1] == 28);
  REQUIRE(imgs.shape()[2] == 28);
  // Image 0 of t10k: byte sum 33456; row 14, columns 12..15 hold 0x62 0x88 0x6e 0x6d.
  double s = 0;
  for (int i = 0; i < 28; ++i)
    for (int j = 0; j < 28; ++j) s += imgs(0, i, j);
  CHECK(s * 255.0 == Approx(33456).epsilon(1e-6));
  CHECK(imgs(0, 14, 11) == 0.0f);
  CHECK(imgs(0, 14, 12) == 0x62 * (1.0f / 255.0f));
  CHECK(imgs(0, 14, 13) == 0x88 * (1.0f / 255.0f));
  CHECK(imgs(0, 14, 15) == 0x6d * (1.0f / 255.0f));
  float lo = 1, hi = 0;
  for (float v : imgs) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  CHECK(lo == 0.0f);
  CHECK(hi == 1.0f);
}

TEST_CASE("idx: load_fashion_mnist gives (N, 28, 28, 1) batches", "[data_io][idx]") {
  if (!have_fashion_mnist()) {
    WARN("dataset-fashion-mnist is not installed: skipped");
    return;
  }
  const auto train = data::load_fashion_mnist(data::Split::Train);
  REQUIRE(train.images.shape() == std::array<std::size_t, 4>{60000, 28, 28, 1});
  REQUIRE(train.labels.size() == 60000);
  CHECK(int(train.labels[0]) == 9);
  // Train image 0: byte sum 76247; row 14, columns 12..15 hold 0xed 0xe2 0xd9 0xdf.
  double s = 0;
  for (int i = 0; i < 28; ++i)
    for (int j = 0; j < 28; ++j) s += train.images(0, i, j, 0);
  CHECK(s * 255.0 == Approx(76247).epsilon(1e-6));
  CHECK(train.images(0, 14, 12, 0) == 0xed * (1.0f / 255.0f));
  CHECK(train.images(0, 14, 15, 0) == 0xdf * (1.0f / 255.0f));
  const auto test = data::load_fashion_mnist(data::Split::Test);
  CHECK(test.images.shape()[0] == 10000);
  CHECK(std::string(data::fashion_mnist_class_names()[9]) == "Ankle boot");
}

TEST_CASE("idx: synthetic files, plain and gzipped", "[data_io][idx]") {
  test::TempDir dir("idx");
  const auto pix = iota_bytes(3 * 2 * 4);
  const auto raw = idx_bytes(0x803, {3, 2, 4}, pix);
  test::write_bytes(dir.file("plain.idx"), raw);
  test::write_bytes(dir.file("packed.idx.gz"), gzip_bytes(raw));
  // Two concatenated gzip members are one stream.
  auto two = gzip_bytes(std::vector<unsigned char>(raw.begin(), raw.begin() + 10));
  const auto rest = gzip_bytes(std::vector<unsigned char>(raw.begin() + 10, raw.end()));
  two.insert(two.end(), rest.begin(), rest.end());
  test::write_bytes(dir.file("two.idx.gz"), two);
  for (const char* f : {"plain.idx", "packed.idx.gz", "two.idx.gz"}) {
    INFO(f);
    const auto a = data::read_idx_images(dir.file(f));
    REQUIRE(a.shape() == std::array<std::size_t, 3>{3, 2, 4});
    for (std::size_t i = 0; i < pix.size(); ++i) CHECK(a.data()[i] == float(pix[i]) * (1.0f / 255.0f));
  }
  // Zero images is a valid file.
  test::write_bytes(dir.file("empty.idx"), idx_bytes(0x803, {0, 28, 28}, {}));
  CHECK(data::read_idx_images(dir.file("empty.idx")).size() == 0);
  test::write_bytes(dir.file("labels.idx"), idx_bytes(0x801, {4}, {1, 2, 3, 255}));
  CHECK(data::read_idx_labels(dir.file("labels.idx")) == std::vector<std::uint8_t>{1, 2, 3, 255});
}

TEST_CASE("idx: bad files are refused with a message naming the file", "[data_io][idx]") {
  test::TempDir dir("idx_bad");
  const auto raw = idx_bytes(0x803, {3, 2, 4}, iota_bytes(24));
  auto msg = [&](const std::string& name, const std::vector<unsigned char>& bytes) {
    const std::string p = dir.file(name);
    test::write_bytes(p, bytes);
    const std::string m = test::error_of([&] { data::read_idx_images(p); });
    CHECK_THAT(m, Contains("dcsldm::read_idx") && Contains("'" + p + "'"));
    return m;
  };
  CHECK_THAT(test::error_of([&] { data::read_idx_images(dir.file("nope.gz")); }),
             Contains("cannot open '" + dir.file("nope.gz") + "'"));
  CHECK_THAT(msg("short.idx", {0, 0}), Contains("too short for the IDX magic"));
  CHECK_THAT(msg("labels_as_images.idx", idx_bytes(0x801, {3}, {1, 2, 3})), Contains("magic 0x801, expected 0x803"));
  CHECK_THAT(msg("int_type.idx", idx_bytes(0xC03, {3, 2, 4}, iota_bytes(24))), Contains("magic 0xc03, expected 0x803"));
  CHECK_THAT(msg("header_cut.idx", std::vector<unsigned char>(raw.begin(), raw.begin() + 10)),
             Contains("too short for the 3 extents"));
  CHECK_THAT(msg("data_cut.idx", std::vector<unsigned char>(raw.begin(), raw.end() - 1)),
             Contains("header says 24 elements but only 23 bytes follow (truncated?)"));
  auto longer = raw;
  longer.push_back(7);
  CHECK_THAT(msg("data_long.idx", longer), Contains("header says 24 elements but 25 bytes follow (trailing garbage?)"));
  CHECK_THAT(msg("data_cut.idx.gz", gzip_bytes(std::vector<unsigned char>(raw.begin(), raw.end() - 5))),
             Contains("truncated?"));
  const auto gz = gzip_bytes(raw);
  CHECK_THAT(msg("gz_cut.idx.gz", std::vector<unsigned char>(gz.begin(), gz.end() - 6)),
             Contains("gzip stream ends early"));
  auto bad_crc = gz;
  bad_crc[bad_crc.size() - 6] ^= 0xff;  // inside the CRC-32 of the trailer
  CHECK_THAT(msg("gz_crc.idx.gz", bad_crc), Contains("corrupt gzip data"));
  auto bad_data = gz;
  bad_data[10] = 0xff;  // first byte of the deflate stream: invalid block type
  bad_data[11] = 0xff;
  CHECK_THAT(msg("gz_data.idx.gz", bad_data), Contains("corrupt gzip data"));
  auto garbage = gz;
  garbage.push_back(1);
  garbage.push_back(2);
  CHECK_THAT(msg("gz_garbage.idx.gz", garbage), Contains("2 bytes of garbage after the gzip stream"));
}

TEST_CASE("idx: load_fashion_mnist checks labels, sizes and counts", "[data_io][idx]") {
  test::TempDir dir("fm");
  auto write_set = [&](std::uint32_t n_img, std::uint32_t rows, const std::vector<unsigned char>& labels) {
    test::write_bytes(dir.file("train-images-idx3-ubyte.gz"),
                      gzip_bytes(idx_bytes(0x803, {n_img, rows, 28}, iota_bytes(n_img * rows * 28))));
    test::write_bytes(dir.file("train-labels-idx1-ubyte.gz"),
                      gzip_bytes(idx_bytes(0x801, {std::uint32_t(labels.size())}, labels)));
  };
  write_set(2, 28, {3, 9});
  const auto ok = data::load_fashion_mnist(data::Split::Train, dir.path);
  CHECK(ok.images.shape() == std::array<std::size_t, 4>{2, 28, 28, 1});
  CHECK(ok.labels == std::vector<std::uint8_t>{3, 9});
  write_set(2, 28, {3, 12});
  CHECK_THAT(test::error_of([&] { data::load_fashion_mnist(data::Split::Train, dir.path); }),
             Contains("label 12 at index 1 is not in 0..9") && Contains(dir.file("train-labels-idx1-ubyte.gz")));
  write_set(3, 28, {3, 4});
  CHECK_THAT(test::error_of([&] { data::load_fashion_mnist(data::Split::Train, dir.path); }),
             Contains("holds 3 images but") && Contains("holds 2 labels"));
  write_set(2, 27, {3, 4});
  CHECK_THAT(test::error_of([&] { data::load_fashion_mnist(data::Split::Train, dir.path); }),
             Contains("holds 27 x 28 images, expected 28 x 28"));
  CHECK_THAT(test::error_of([&] { data::load_fashion_mnist(data::Split::Test, dir.path); }),
             Contains("cannot open '" + dir.file("t10k-images-idx3-ubyte.gz") + "'"));
}
