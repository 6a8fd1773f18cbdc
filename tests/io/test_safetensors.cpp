// io/safetensors and io/half: every malformed input is refused with a message naming the file (every
// truncation length, header length past the end, bad JSON, unknown dtypes, shape x dtype size !=
// offsets, offsets out of range, overlaps, bad metadata); round trips of every dtype (F16 and BF16
// conversions checked exhaustively: rounding to nearest even, NaN, infinities, subnormals); metadata;
// atomic writes (no temporary left, an existing file replaced only by a complete one).
#include <dcsldm/io/half.hpp>
#include <dcsldm/io/safetensors.hpp>

#include "testing.hpp"

#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

using namespace dcsldm;
using namespace dcsldm::io;

namespace {

namespace fs = std::filesystem;

struct TempDir {
  std::string path;
  TempDir() {
    static int n = 0;
    path = (fs::temp_directory_path() / ("dcsldm_io_test_" + std::to_string(::getpid()) + "_" + std::to_string(n++)))
               .string();
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::vector<std::string> files() const {
    std::vector<std::string> r;
    for (const auto& e : fs::directory_iterator(path)) r.push_back(e.path().filename().string());
    return r;
  }
};

void write_file(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}
std::vector<unsigned char> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<unsigned char>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

/// A file image from a raw header string and a data buffer of `data_bytes` bytes.
std::vector<unsigned char> image(const std::string& header, std::size_t data_bytes) {
  std::vector<unsigned char> out(8 + header.size() + data_bytes, 0);
  const std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[std::size_t(i)] = (n >> (8 * i)) & 0xff;
  std::memcpy(out.data() + 8, header.data(), header.size());
  for (std::size_t i = 0; i < data_bytes; ++i) out[8 + header.size() + i] = static_cast<unsigned char>(i);
  return out;
}

/// parse(image) must throw with all of `parts` in the message (and the source name).
void refuse(const std::string& header, std::size_t data_bytes, const std::vector<std::string>& parts) {
  const std::string src = "bad_input.safetensors";
  INFO("header " << header);
  try {
    SafeTensors::parse(src, image(header, data_bytes));
    FAIL("accepted");
  } catch (const Error& e) {
    const std::string msg = e.what();
    INFO("message: " << msg);
    CHECK(msg.find("dcsldm::safetensors") != std::string::npos);
    CHECK(msg.find(src) != std::string::npos);
    for (const auto& p : parts) CHECK(msg.find(p) != std::string::npos);
  }
}

SafeTensorsWriter small_writer() {
  SafeTensorsWriter w;
  std::vector<float> a{1, 2, 3, 4, 5, 6};
  std::vector<std::int64_t> b{-1, 7};
  std::vector<double> c{0.5};
  w.add_bytes("a", DType::F32, {2, 3}, a.data(), a.size() * 4);
  w.add_bytes("b", DType::I64, {2}, b.data(), 16);
  w.add_bytes("c", DType::F64, {}, c.data(), 8);
  w.set_metadata("config", "{\"k\": 1}");
  return w;
}

}  // namespace

TEST_CASE("safetensors: every truncation of a small file is refused, naming the file", "[io][safetensors]") {
  TempDir dir;
  const auto full = small_writer().serialize();
  const std::string path = dir.path + "/truncated.safetensors";
  write_file(path, full);
  CHECK(SafeTensors::read(path).to_vector<double>("a") == std::vector<double>{1, 2, 3, 4, 5, 6});
  for (std::size_t len = 0; len < full.size(); ++len) {
    write_file(path, std::vector<unsigned char>(full.begin(), full.begin() + std::ptrdiff_t(len)));
    INFO("length " << len << " of " << full.size());
    CHECK_THROWS_WITH(SafeTensors::read(path), Catch::Contains("dcsldm::safetensors") && Catch::Contains(path));
  }
  CHECK_THROWS_WITH(SafeTensors::read(dir.path + "/nope.safetensors"),
                    Catch::Contains("cannot open") && Catch::Contains("nope.safetensors"));
}

TEST_CASE("safetensors: malformed headers are refused with the reason", "[io][safetensors]") {
  const std::string ok = R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  CHECK(SafeTensors::parse("good", image(ok, 8)).info("t").shape == std::vector<std::int64_t>{2});
  // Header length larger than the file, and absurdly large.
  {
    auto img = image(ok, 8);
    img[0] = static_cast<unsigned char>(img.size() - 8 + 1);
    CHECK_THROWS_WITH(SafeTensors::parse("long.st", img), Catch::Contains("'long.st': header length") &&
                                                              Catch::Contains("exceeds the file"));
    for (int i = 0; i < 8; ++i) img[std::size_t(i)] = 0xff;
    CHECK_THROWS_WITH(SafeTensors::parse("huge.st", img), Catch::Contains("'huge.st'") &&
                                                              Catch::Contains("header length 18446744073709551615"));
  }
  refuse("{not json", 0, {"header is not valid JSON"});
  refuse("", 0, {"header is not valid JSON"});
  refuse("[1, 2]", 0, {"header is not a JSON object"});
  refuse(R"({"t":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", 2, {"tensor 't'", "unsupported dtype \"U8\""});
  refuse(R"({"t":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}})", 8, {"unsupported dtype \"f32\""});
  refuse(R"({"t":{"dtype":7,"shape":[2],"data_offsets":[0,8]}})", 8, {"unsupported dtype 7"});
  refuse(R"({"t":{"shape":[2],"data_offsets":[0,8]}})", 8, {"tensor 't'", "needs dtype, shape and data_offsets"});
  refuse(R"({"t":[1,2]})", 8, {"needs dtype, shape and data_offsets"});
  refuse(R"({"t":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", 8, {"shape is not an array"});
  refuse(R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8, {"bad extent"});
  refuse(R"({"t":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8, {"bad extent"});
  // shape x dtype size != offsets
  refuse(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 16,
         {"tensor 't'", "shape (3,) x F32 is 12 bytes but data_offsets [0,8] span 8"});
  refuse(R"({"t":{"dtype":"F64","shape":[1,2],"data_offsets":[0,8]}})", 16, {"shape (1, 2) x F64 is 16 bytes"});
  // Offsets out of range, reversed, negative, malformed.
  refuse(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 8, {"run past the data buffer (8 bytes)"});
  refuse(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8, {"are reversed"});
  refuse(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", 8, {"two non-negative integers"});
  refuse(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8, {"two non-negative integers"});
  // A shape whose byte size wraps around 2^64 (2^61 x 8 bytes) must not pass as "0 bytes".
  refuse(R"({"t":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}})", 8,
         {"tensor 't'", "larger than the data buffer"});
  refuse(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", 8, {"tensor 't'"});
  // Overlaps: neighbours, and one hidden behind an empty tensor that starts at the same offset.
  refuse(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
         12, {"tensors 'a' and 'b' overlap"});
  refuse(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},)"
         R"("c":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
         16, {"tensors 'a' and 'c' overlap"});
  refuse(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
         R"("c":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}})",
         16, {"overlap"});
  // Empty tensors anywhere, and adjacent tensors, are fine.
  const auto fine = SafeTensors::parse(
      "fine", image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]},)"
                    R"("b":{"dtype":"I32","shape":[1],"data_offsets":[8,12]}})",
                    12));
  CHECK(fine.names().size() == 3);
  // Metadata must be an object of strings.
  refuse(R"({"__metadata__":{"k":1}})", 0, {"metadata 'k' is not a string"});
  refuse(R"({"__metadata__":{"k":"v","n":null}})", 0, {"metadata 'n' is not a string"});
  refuse(R"({"__metadata__":"x"})", 0, {"__metadata__ is not an object"});
  // Missing tensors and metadata are named when asked for.
  const auto st = SafeTensors::parse("named.st", image(ok, 8));
  CHECK_THROWS_WITH(st.info("u"), Catch::Contains("'named.st' has no tensor 'u'"));
  CHECK_THROWS_WITH(st.meta("config"), Catch::Contains("'named.st' has no metadata 'config'"));
}

namespace {
template <class T>
void round_trip_exact(const std::string& dir, std::vector<T> vals) {
  Kokkos::View<T**, Kokkos::LayoutRight, Kokkos::HostSpace> v("v", 2, vals.size() / 2);
  std::copy(vals.begin(), vals.end(), v.data());
  SafeTensorsWriter w;
  w.add("x", v);
  w.write(dir + "/rt.safetensors");
  const auto f = SafeTensors::read(dir + "/rt.safetensors");
  CHECK(f.info("x").dtype == dtype_of<T>());
  CHECK(f.info("x").shape == std::vector<std::int64_t>{2, std::int64_t(vals.size() / 2)});
  const std::vector<T> back = f.to_vector<T>("x");
  CHECK(std::memcmp(back.data(), vals.data(), vals.size() * sizeof(T)) == 0);
  Kokkos::View<T**, Kokkos::LayoutRight, Kokkos::HostSpace> u("u", 2, vals.size() / 2);
  f.load("x", u);
  CHECK(std::memcmp(u.data(), vals.data(), vals.size() * sizeof(T)) == 0);
}
}  // namespace

TEST_CASE("safetensors: F32, F64, I32, I64 round trips are bit-identical", "[io][safetensors]") {
  TempDir dir;
  const float fi = std::numeric_limits<float>::infinity();
  round_trip_exact<float>(dir.path, {0.f, -0.f, 1.5f, -3.25e-41f, 3.4e38f, fi, -fi, std::nanf("0x123"),
                                     1e-45f, 7.f});
  const double di = std::numeric_limits<double>::infinity();
  round_trip_exact<double>(dir.path, {0.0, -0.0, 1e-310, -di, di, std::nan("7"), 1.0 / 3, 1e308});
  round_trip_exact<std::int32_t>(dir.path, {0, -1, 2147483647, -2147483647 - 1});
  round_trip_exact<std::int64_t>(dir.path, {0, -1, 9223372036854775807ll, -9223372036854775807ll - 1, 42, 43});
}

TEST_CASE("half and bfloat16 conversions: exhaustive round trips and ties to even", "[io][half]") {
  int bad = 0;
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float f = half_to_float(std::uint16_t(h));
    const bool nan = (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu);
    if (nan) {
      bad += !std::isnan(f) || (float_to_half(f) & 0x7fffu) <= 0x7c00u ||
             (float_to_half(f) & 0x8000u) != (h & 0x8000u);
    } else {
      bad += float_to_half(f) != h;
    }
    const float b = bf16_to_float(std::uint16_t(h));
    const bool bnan = (h & 0x7f80u) == 0x7f80u && (h & 0x7fu);
    bad += bnan ? !std::isnan(b) || !std::isnan(bf16_to_float(float_to_bf16(b))) : float_to_bf16(b) != h;
  }
  CHECK(bad == 0);
  // Midpoints between consecutive finite positives round to the even neighbour; just above/below go to
  // the nearer one. Covers subnormals, the subnormal/normal boundary and the largest finite values.
  auto next_up = [](float x) { return std::nextafter(x, INFINITY); };
  auto next_down = [](float x) { return std::nextafter(x, -INFINITY); };
  for (std::uint16_t h = 0; h < 0x7bffu; ++h) {
    const double lo = half_to_float(h), hi = half_to_float(std::uint16_t(h + 1));
    const float mid = float((lo + hi) / 2);  // exact in float
    const std::uint16_t even = (h & 1u) ? std::uint16_t(h + 1) : h;
    if (float_to_half(mid) != even || float_to_half(next_up(mid)) != h + 1 || float_to_half(next_down(mid)) != h) {
      FAIL_CHECK("half rounding between " << h << " and " << h + 1);
      break;
    }
    if (float_to_half(-mid) != (even | 0x8000u)) {
      FAIL_CHECK("negative half rounding at " << h);
      break;
    }
  }
  // Overflow: 65504 is the largest half; 65520 (the midpoint to 2^16) and above round to infinity.
  CHECK(float_to_half(65504.f) == 0x7bffu);
  CHECK(float_to_half(next_down(65520.f)) == 0x7bffu);
  CHECK(float_to_half(65520.f) == 0x7c00u);
  CHECK(float_to_half(1e30f) == 0x7c00u);
  CHECK(float_to_half(-INFINITY) == 0xfc00u);
  CHECK(float_to_half(2.98023223876953125e-08f) == 0);         // 2^-25: half of the smallest subnormal -> 0 (even)
  CHECK(float_to_half(next_up(2.98023223876953125e-08f)) == 1);  // just above -> smallest subnormal
  CHECK(float_to_half(1e-30f) == 0);
  CHECK(float_to_half(-0.f) == 0x8000u);
  CHECK(half_to_float(1) == 5.9604644775390625e-08f);
  CHECK(half_to_float(0x3c00u) == 1.f);
  // bfloat16: ties to even, overflow to infinity, NaN stays NaN (also with a payload in the low bits).
  for (std::uint32_t h = 0; h < 0x7f7fu; h += 97) {
    const float lo = bf16_to_float(std::uint16_t(h)), hi = bf16_to_float(std::uint16_t(h + 1));
    const float mid = float((double(lo) + double(hi)) / 2);
    const std::uint16_t even = (h & 1u) ? std::uint16_t(h + 1) : std::uint16_t(h);
    CHECK(float_to_bf16(mid) == even);
    CHECK(float_to_bf16(next_up(mid)) == h + 1);
    CHECK(float_to_bf16(next_down(mid)) == h);
  }
  CHECK(float_to_bf16(std::numeric_limits<float>::max()) == 0x7f80u);
  CHECK(std::isnan(bf16_to_float(float_to_bf16(bits_to_float(0x7f800001u)))));
  CHECK(std::isnan(half_to_float(float_to_half(bits_to_float(0x7f800001u)))));
#if defined(__FLT16_MAX__) && defined(__x86_64__)
  // The compiler's own binary16 conversion as a second oracle, on a sweep of floats.
  int diff = 0;
  for (std::uint32_t u = 0; u < 0x7f800000u; u += 4093) {
    const float f = bits_to_float(u);
    const _Float16 c = static_cast<_Float16>(f);
    std::uint16_t cb;
    std::memcpy(&cb, &c, 2);
    diff += cb != float_to_half(f);
  }
  CHECK(diff == 0);
#endif
}

TEST_CASE("safetensors: F16 and BF16 round trips through float", "[io][safetensors]") {
  TempDir dir;
  const std::vector<float> vals{0.f,         -0.f,     1.f,       -2.5f,       1.0009765625f /* 1 + 2^-10 */,
                                1.00048828125f /* tie 1 + 2^-11 -> 1 */, 65504.f, 70000.f, -1e-7f /* subnormal */,
                                6.1035156e-05f /* 2^-14 */,        INFINITY, -INFINITY, NAN,      3.14159265f};
  Kokkos::View<float*, Kokkos::LayoutRight, Kokkos::HostSpace> v("v", vals.size());
  std::copy(vals.begin(), vals.end(), v.data());
  Kokkos::View<double*, Kokkos::LayoutRight, Kokkos::HostSpace> vd("vd", vals.size());
  for (std::size_t i = 0; i < vals.size(); ++i) vd(i) = double(vals[i]);
  SafeTensorsWriter w;
  w.add_as("h", v, DType::F16);
  w.add_as("b", v, DType::BF16);
  w.add_as("hd", vd, DType::F16);  // from double: converted through float
  w.write(dir.path + "/half.safetensors");
  const auto f = SafeTensors::read(dir.path + "/half.safetensors");
  CHECK(f.info("h").dtype == DType::F16);
  CHECK(f.info("b").dtype == DType::BF16);
  CHECK(f.info("h").end - f.info("h").begin == 2 * vals.size());
  const auto h = f.to_vector<float>("h"), b = f.to_vector<float>("b"), hd = f.to_vector<float>("hd");
  const std::vector<float> want_h{0.f, -0.f, 1.f, -2.5f, 1.0009765625f, 1.f, 65504.f, INFINITY,
                                  -1.1920928955078125e-07f /* 2 x 2^-24 */, 6.103515625e-05f, INFINITY, -INFINITY,
                                  NAN, 3.140625f};
  for (std::size_t i = 0; i < vals.size(); ++i) {
    INFO("value " << vals[i] << ": F16 " << h[i] << " BF16 " << b[i]);
    if (std::isnan(vals[i])) {
      CHECK(std::isnan(h[i]));
      CHECK(std::isnan(b[i]));
      CHECK(std::isnan(hd[i]));
      continue;
    }
    CHECK(std::memcmp(&h[i], &want_h[i], 4) == 0);
    CHECK(std::memcmp(&hd[i], &want_h[i], 4) == 0);
    CHECK(b[i] == bf16_to_float(float_to_bf16(vals[i])));
    if (std::isfinite(vals[i])) CHECK(std::abs(b[i] - vals[i]) <= std::abs(vals[i]) * 0x1p-8f);
  }
  CHECK(std::signbit(h[1]));
  CHECK(std::signbit(b[1]));
}

TEST_CASE("safetensors: metadata round trip", "[io][safetensors]") {
  TempDir dir;
  SafeTensorsWriter w;
  const std::string cfg = R"({"layers": [4, 4, 8], "name": "dcs \"ldm\"", "x": 1e-3})";
  w.set_metadata("config", cfg);
  w.set_metadata("empty", "");
  w.set_metadata("unicode", "\xc3\xa9t\xc3\xa9 \xe2\x9c\x93");
  w.set_metadata("newline", "a\nb\tc\\d");
  w.write(dir.path + "/meta.safetensors");
  const auto f = SafeTensors::read(dir.path + "/meta.safetensors");
  CHECK(f.meta("config") == cfg);
  CHECK(f.meta("empty").empty());
  CHECK(f.meta("unicode") == "\xc3\xa9t\xc3\xa9 \xe2\x9c\x93");
  CHECK(f.meta("newline") == "a\nb\tc\\d");
  CHECK(f.metadata().size() == 4);
  CHECK(f.names().empty());
  // The header is padded to a multiple of 8 bytes.
  const auto bytes = read_file(dir.path + "/meta.safetensors");
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[std::size_t(i)];
  CHECK(n % 8 == 0);
  CHECK(n + 8 == bytes.size());
}

TEST_CASE("safetensors: Views must be row-major contiguous", "[io][safetensors]") {
  TempDir dir;
  Kokkos::View<float**, Kokkos::LayoutLeft, Kokkos::HostSpace> left("left", 2, 3);
  SafeTensorsWriter w;
  CHECK_THROWS_WITH(w.add("t", left), Catch::Contains("dcsldm::safetensors_write") && Catch::Contains("tensor 't'") &&
                                          Catch::Contains("not contiguous in row-major order"));
  Kokkos::View<float*, Kokkos::LayoutLeft, Kokkos::HostSpace> left1("left1", 4);
  Kokkos::View<float**, Kokkos::LayoutRight, Kokkos::HostSpace> right("right", 2, 3);
  for (int i = 0; i < 6; ++i) right.data()[i] = float(i);
  w.add("v", left1);
  w.add("t", right);
  w.add("rows", Kokkos::subview(right, Kokkos::make_pair(1, 2), Kokkos::ALL));  // a row slice is row-major
  w.write(dir.path + "/l.safetensors");
  const auto f = SafeTensors::read(dir.path + "/l.safetensors");
  CHECK(f.to_vector<float>("rows") == std::vector<float>{3, 4, 5});
  CHECK_THROWS_WITH(f.load("t", left), Catch::Contains("tensor 't'") && Catch::Contains("'left'") &&
                                           Catch::Contains("not contiguous in row-major order"));
  Kokkos::View<float**, Kokkos::LayoutRight, Kokkos::HostSpace> wrong("wrong", 3, 2);
  CHECK_THROWS_WITH(f.load("t", wrong), Catch::Contains("l.safetensors") && Catch::Contains("tensor 't'") &&
                                            Catch::Contains("shape (2, 3) does not match the destination (3, 2)"));
  SafeTensorsWriter dup;
  dup.add("t", right);
  CHECK_THROWS_WITH(dup.add("t", right), Catch::Contains("duplicate tensor 't'"));
  CHECK_THROWS_WITH(dup.add("__metadata__", right), Catch::Contains("bad tensor name '__metadata__'"));
  float x[3] = {};
  CHECK_THROWS_WITH(dup.add_bytes("y", DType::F32, {2}, x, 12), Catch::Contains("shape (2,) x F32 != 12 bytes"));
}

TEST_CASE("safetensors: atomic writes", "[io][safetensors]") {
  TempDir dir;
  const std::string path = dir.path + "/model.safetensors";
  small_writer().write(path);
  CHECK(dir.files() == std::vector<std::string>{"model.safetensors"});
  // Replacing an existing file: the new content, and still no temporary file.
  SafeTensorsWriter w2;
  std::vector<float> big(1000, 2.f);
  w2.add_bytes("big", DType::F32, {1000}, big.data(), 4000);
  w2.write(path);
  CHECK(dir.files() == std::vector<std::string>{"model.safetensors"});
  CHECK(SafeTensors::read(path).contains("big"));
  const auto good = read_file(path);
  // A write that fails half-way (file size limit: write() returns EFBIG) leaves the old file intact
  // and removes the temporary file.
  {
    struct rlimit old_lim;
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_lim) == 0);
    auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = old_lim;
    lim.rlim_cur = 1024;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &lim) == 0);
    SafeTensorsWriter w3;
    std::vector<float> bigger(4000, 3.f);
    w3.add_bytes("bigger", DType::F32, {4000}, bigger.data(), 16000);
    std::string msg;
    try {
      w3.write(path);
    } catch (const Error& e) {
      msg = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &old_lim);
    std::signal(SIGXFSZ, old_handler);
    INFO("message: " << msg);
    CHECK(msg.find("dcsldm::safetensors_write") != std::string::npos);
    CHECK(msg.find(path) != std::string::npos);
    CHECK(read_file(path) == good);
    CHECK(dir.files() == std::vector<std::string>{"model.safetensors"});
  }
  // The target is a non-empty folder: rename fails, nothing is left behind.
  fs::create_directories(dir.path + "/folder/inner");
  CHECK_THROWS_WITH(small_writer().write(dir.path + "/folder"),
                    Catch::Contains("could not replace") && Catch::Contains("/folder"));
  CHECK(fs::is_directory(dir.path + "/folder/inner"));
  // A folder that does not exist.
  CHECK_THROWS_WITH(small_writer().write(dir.path + "/absent/x.safetensors"),
                    Catch::Contains("cannot create") && Catch::Contains("absent/x.safetensors"));
  auto files = dir.files();
  std::sort(files.begin(), files.end());
  CHECK(files == std::vector<std::string>{"folder", "model.safetensors"});
}
