// dcsldm/io/safetensors.hpp: read and write the safetensors format, validated, with atomic writes.
//
// Format: an 8-byte little-endian header length N, N bytes of JSON
//   {"<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"<key>": "<string>"}}
// and then the data buffer; offsets are relative to the buffer's start. dcsldm keeps a model's
// configuration as a JSON string under metadata key "config".
//
// Reading validates everything before any tensor is handed out: header length against the file size,
// the JSON, each dtype, shape x dtype size against its offsets, offsets inside the buffer, no overlaps.
// Errors name the file and the tensor. Writing goes to a temporary file in the same folder, is flushed
// and fsync'd, then renamed over the target: a reader sees the old file or the new one, never half.
#pragma once

#include <dcsldm/core/compat.hpp>
#include <dcsldm/core/error.hpp>
#include <dcsldm/io/half.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace dcsldm::io {

/// Element types of the safetensors format that dcsldm reads and writes.
enum class DType { F16, BF16, F32, F64, I32, I64 };

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
  }
  return "?";
}
inline std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::F16:
    case DType::BF16: return 2;
    case DType::F32:
    case DType::I32: return 4;
    case DType::F64:
    case DType::I64: return 8;
  }
  return 0;
}
inline bool dtype_from_name(const std::string& s, DType& out) {
  for (DType t : {DType::F16, DType::BF16, DType::F32, DType::F64, DType::I32, DType::I64})
    if (s == dtype_name(t)) {
      out = t;
      return true;
    }
  return false;
}

/// The dtype that stores a C++ scalar exactly.
template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return DType::F32;
  else if constexpr (std::is_same_v<T, double>) return DType::F64;
  else if constexpr (std::is_same_v<T, std::int32_t>) return DType::I32;
  else if constexpr (std::is_same_v<T, std::int64_t>) return DType::I64;
  else static_assert(sizeof(T) == 0, "no safetensors dtype for this scalar type");
}

/// One tensor's header entry.
struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0, end = 0;  ///< byte offsets into the data buffer
  std::int64_t numel() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
};

namespace Impl {
inline std::string shape_str(const std::vector<std::int64_t>& s) {
  std::string r = "(";
  for (std::size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + (s.size() == 1 ? ",)" : ")");
}
inline std::uint64_t read_le64(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
template <class T>
T load_le(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));  // dcsldm supports little-endian hosts only (checked below)
  return v;
}
/// True when the View's elements are contiguous in row-major order (what the file stores): LayoutRight,
/// or any layout whose strides happen to be row-major (LayoutLeft with rank <= 1, row slices, ...).
template <class View>
bool row_major_contiguous(const View& v) {
  if (v.size() != v.span()) return false;
  std::size_t expect = 1;
  for (int r = int(View::rank) - 1; r >= 0; --r) {
    if (v.extent(r) > 1 && std::size_t(v.stride(r)) != expect) return false;
    expect *= v.extent(r);
  }
  return true;
}
inline bool host_is_little_endian() {
  const std::uint16_t x = 1;
  unsigned char c;
  std::memcpy(&c, &x, 1);
  return c == 1;
}
}  // namespace Impl

/// A safetensors file read fully into host memory and validated.
class SafeTensors {
 public:
  /// Largest header accepted (bytes); a larger length field means a corrupt file.
  static constexpr std::uint64_t max_header_bytes = 100u << 20;

  /// Reads and validates `path`; throws dcsldm::Error naming the file (and tensor) on any problem.
  static SafeTensors read(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    DCSLDM_REQUIRE(f.good(), "safetensors", "cannot open '", path, "'");
    std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    return parse(path, std::move(bytes));
  }

  /// Validates a safetensors image held in memory; `source` names it in errors.
  static SafeTensors parse(const std::string& source, std::vector<unsigned char> bytes) {
    DCSLDM_REQUIRE(Impl::host_is_little_endian(), "safetensors", "big-endian hosts are not supported");
    SafeTensors st;
    st.path_ = source;
    DCSLDM_REQUIRE(bytes.size() >= 8, "safetensors", "'", source, "' is ", bytes.size(),
                   " bytes, too short for the 8-byte header length (truncated?)");
    const std::uint64_t n = Impl::read_le64(bytes.data());
    DCSLDM_REQUIRE(n <= max_header_bytes && n <= bytes.size() - 8, "safetensors", "'", source,
                   "': header length ", n, " exceeds the file (", bytes.size(),
                   " bytes) or the limit: truncated or not a safetensors file");
    nlohmann::json h;
    try {
      h = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + std::ptrdiff_t(n));
    } catch (const std::exception& e) {
      detail::fail("safetensors", "'", source, "': header is not valid JSON (", e.what(), ")");
    }
    DCSLDM_REQUIRE(h.is_object(), "safetensors", "'", source, "': header is not a JSON object");
    const std::uint64_t data_size = bytes.size() - 8 - n;
    for (auto it = h.begin(); it != h.end(); ++it) {
      const std::string& name = it.key();
      const auto& e = it.value();
      if (name == "__metadata__") {
        DCSLDM_REQUIRE(e.is_object(), "safetensors", "'", source, "': __metadata__ is not an object");
        for (auto m = e.begin(); m != e.end(); ++m) {
          DCSLDM_REQUIRE(m.value().is_string(), "safetensors", "'", source, "': metadata '", m.key(),
                         "' is not a string");
          st.metadata_[m.key()] = m.value().get<std::string>();
        }
        continue;
      }
      auto bad = [&](const std::string& what) {
        detail::fail("safetensors", "'", source, "', tensor '", name, "': ", what);
      };
      if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
        bad("entry needs dtype, shape and data_offsets");
      TensorInfo ti;
      ti.name = name;
      if (!e["dtype"].is_string() || !dtype_from_name(e["dtype"].get<std::string>(), ti.dtype))
        bad("unsupported dtype " + e["dtype"].dump() + " (supported: F16 BF16 F32 F64 I32 I64)");
      if (!e["shape"].is_array()) bad("shape is not an array");
      std::uint64_t numel = 1;
      for (const auto& d : e["shape"]) {
        if (!d.is_number_integer() || d.get<std::int64_t>() < 0) bad("shape " + e["shape"].dump() + " has a bad extent");
        const auto v = std::uint64_t(d.get<std::int64_t>());
        if (v != 0 && numel > (std::uint64_t(1) << 62) / v) bad("shape " + e["shape"].dump() + " overflows");
        numel *= v;
        ti.shape.push_back(std::int64_t(v));
      }
      if (numel > data_size / dtype_size(ti.dtype))  // also keeps numel * dtype size from overflowing
        bad("shape " + Impl::shape_str(ti.shape) + " x " + dtype_name(ti.dtype) +
            " is larger than the data buffer (" + std::to_string(data_size) + " bytes): file truncated?");
      const auto& off = e["data_offsets"];
      if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
        bad("data_offsets must be two non-negative integers, got " + off.dump());
      ti.begin = off[0].get<std::uint64_t>();
      ti.end = off[1].get<std::uint64_t>();
      if (ti.begin > ti.end) bad("data_offsets " + off.dump() + " are reversed");
      if (ti.end > data_size)
        bad("data_offsets " + off.dump() + " run past the data buffer (" + std::to_string(data_size) +
            " bytes): file truncated?");
      if (ti.end - ti.begin != numel * dtype_size(ti.dtype))
        bad("shape " + Impl::shape_str(ti.shape) + " x " + dtype_name(ti.dtype) + " is " +
            std::to_string(numel * dtype_size(ti.dtype)) + " bytes but data_offsets " + off.dump() +
            " span " + std::to_string(ti.end - ti.begin));
      st.tensors_.emplace(name, std::move(ti));
    }
    // No two tensors may share bytes.
    std::vector<const TensorInfo*> order;
    for (const auto& kv : st.tensors_) order.push_back(&kv.second);
    std::sort(order.begin(), order.end(),
              [](const TensorInfo* a, const TensorInfo* b) { return a->begin < b->begin; });
    // Compare each non-empty tensor with the non-empty one that reaches furthest before it (comparing
    // neighbours only misses A = [0, 100), B = [0, 0), C = [50, 60)).
    const TensorInfo* reach = nullptr;
    for (const TensorInfo* t : order) {
      if (t->begin == t->end) continue;
      DCSLDM_REQUIRE(reach == nullptr || t->begin >= reach->end, "safetensors", "'", source, "': tensors '",
                     reach ? reach->name : std::string(), "' and '", t->name, "' overlap");
      if (reach == nullptr || t->end > reach->end) reach = t;
    }
    st.data_.assign(bytes.begin() + 8 + std::ptrdiff_t(n), bytes.end());
    return st;
  }

  const std::string& path() const { return path_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  std::vector<std::string> names() const {
    std::vector<std::string> r;
    for (const auto& kv : tensors_) r.push_back(kv.first);
    return r;
  }
  const TensorInfo& info(const std::string& name) const {
    auto it = tensors_.find(name);
    DCSLDM_REQUIRE(it != tensors_.end(), "safetensors", "'", path_, "' has no tensor '", name, "'");
    return it->second;
  }
  /// Metadata value; throws naming the file and key when absent.
  const std::string& meta(const std::string& key) const {
    auto it = metadata_.find(key);
    DCSLDM_REQUIRE(it != metadata_.end(), "safetensors", "'", path_, "' has no metadata '", key, "'");
    return it->second;
  }

  /// Converts tensor `name` to T (float, double, int32, int64) on the host, in row-major order.
  template <class T>
  std::vector<T> to_vector(const std::string& name) const {
    const TensorInfo& ti = info(name);
    const std::size_t n = std::size_t(ti.numel());
    const unsigned char* p = data_.data() + ti.begin;
    const std::size_t es = dtype_size(ti.dtype);
    std::vector<T> out(n);
    for (std::size_t i = 0; i < n; ++i) {
      const unsigned char* q = p + i * es;
      switch (ti.dtype) {
        case DType::F16: out[i] = T(half_to_float(Impl::load_le<std::uint16_t>(q))); break;
        case DType::BF16: out[i] = T(bf16_to_float(Impl::load_le<std::uint16_t>(q))); break;
        case DType::F32: out[i] = T(Impl::load_le<float>(q)); break;
        case DType::F64: out[i] = T(Impl::load_le<double>(q)); break;
        case DType::I32: out[i] = T(Impl::load_le<std::int32_t>(q)); break;
        case DType::I64: out[i] = T(Impl::load_le<std::int64_t>(q)); break;
      }
    }
    return out;
  }

  /// Copies tensor `name` into `dst` (any memory space, contiguous), converting the dtype.
  /// The tensor's shape must equal dst's extents exactly; the error names file, tensor and shapes.
  template <class View>
  void load(const std::string& name, const View& dst) const {
    using T = std::remove_const_t<typename View::value_type>;
    const TensorInfo& ti = info(name);
    std::vector<std::int64_t> want;
    for (unsigned r = 0; r < View::rank; ++r) want.push_back(std::int64_t(dst.extent(r)));
    DCSLDM_REQUIRE(want == ti.shape, "safetensors", "'", path_, "', tensor '", name, "': shape ",
                   Impl::shape_str(ti.shape), " does not match the destination ", Impl::shape_str(want));
    DCSLDM_REQUIRE(Impl::row_major_contiguous(dst), "safetensors", "'", path_, "', tensor '", name,
                   "': destination View '", dst.label(), "' is not contiguous in row-major order");
    auto host = Kokkos::create_mirror_view(dst);
    const std::vector<T> v = to_vector<T>(name);
    std::copy(v.begin(), v.end(), host.data());
    Kokkos::deep_copy(dst, host);
  }

 private:
  std::string path_;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
  std::vector<unsigned char> data_;
};

/// Builds a safetensors file in memory and writes it atomically.
class SafeTensorsWriter {
 public:
  /// Adds raw little-endian bytes for a tensor. Names must be unique and not "__metadata__".
  void add_bytes(const std::string& name, DType dtype, std::vector<std::int64_t> shape,
                 const void* data, std::size_t nbytes) {
    DCSLDM_REQUIRE(name != "__metadata__" && !name.empty(), "safetensors_write", "bad tensor name '",
                   name, "'");
    for (const auto& t : tensors_)
      DCSLDM_REQUIRE(t.name != name, "safetensors_write", "duplicate tensor '", name, "'");
    std::int64_t n = 1;
    for (auto d : shape) {
      DCSLDM_REQUIRE(d >= 0, "safetensors_write", "tensor '", name, "': negative extent");
      n *= d;
    }
    DCSLDM_REQUIRE(std::size_t(n) * dtype_size(dtype) == nbytes, "safetensors_write", "tensor '", name,
                   "': shape ", Impl::shape_str(shape), " x ", dtype_name(dtype), " != ", nbytes,
                   " bytes");
    TensorInfo ti;
    ti.name = name;
    ti.dtype = dtype;
    ti.shape = std::move(shape);
    ti.begin = data_.size();
    ti.end = ti.begin + nbytes;
    const auto* p = static_cast<const unsigned char*>(data);
    data_.insert(data_.end(), p, p + nbytes);
    tensors_.push_back(std::move(ti));
  }

  /// Adds a View (any memory space; copied to the host), stored with the dtype of its scalar type,
  /// or converted to `as` (F16/BF16/F32/F64 for floating Views).
  template <class View>
  void add(const std::string& name, const View& v) {
    using T = std::remove_const_t<typename View::value_type>;
    add_as(name, v, dtype_of<T>());
  }
  template <class View>
  void add_as(const std::string& name, const View& v, DType as) {
    using T = std::remove_const_t<typename View::value_type>;
    std::vector<std::int64_t> shape;
    for (unsigned r = 0; r < View::rank; ++r) shape.push_back(std::int64_t(v.extent(r)));
    DCSLDM_REQUIRE(Impl::row_major_contiguous(v), "safetensors_write", "tensor '", name, "': View '",
                   v.label(), "' is not contiguous in row-major order");
    auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
    const std::size_t n = host.size();
    const T* src = host.data();
    if (as == dtype_of<T>()) {
      add_bytes(name, as, shape, src, n * sizeof(T));
      return;
    }
    std::vector<unsigned char> buf(n * dtype_size(as));
    for (std::size_t i = 0; i < n; ++i) {
      unsigned char* q = buf.data() + i * dtype_size(as);
      const double x = double(src[i]);
      switch (as) {
        case DType::F16: { std::uint16_t h = float_to_half(float(x)); std::memcpy(q, &h, 2); break; }
        case DType::BF16: { std::uint16_t h = float_to_bf16(float(x)); std::memcpy(q, &h, 2); break; }
        case DType::F32: { float f = float(x); std::memcpy(q, &f, 4); break; }
        case DType::F64: { std::memcpy(q, &x, 8); break; }
        case DType::I32: { std::int32_t k = std::int32_t(x); std::memcpy(q, &k, 4); break; }
        case DType::I64: { std::int64_t k = std::int64_t(x); std::memcpy(q, &k, 8); break; }
      }
    }
    add_bytes(name, as, shape, buf.data(), buf.size());
  }

  void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

  /// The whole file image (header padded with spaces to a multiple of 8 bytes).
  std::vector<unsigned char> serialize() const {
    nlohmann::json h = nlohmann::json::object();
    if (!metadata_.empty()) h["__metadata__"] = metadata_;
    for (const auto& t : tensors_)
      h[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {t.begin, t.end}}};
    std::string js = h.dump();
    while ((js.size() + 8) % 8 != 0) js.push_back(' ');
    std::vector<unsigned char> out(8 + js.size() + data_.size());
    std::uint64_t n = js.size();
    for (int i = 0; i < 8; ++i) out[i] = static_cast<unsigned char>((n >> (8 * i)) & 0xff);
    std::memcpy(out.data() + 8, js.data(), js.size());
    if (!data_.empty()) std::memcpy(out.data() + 8 + js.size(), data_.data(), data_.size());
    return out;
  }

  /// Writes atomically: temporary file next to `path`, fsync, rename.
  void write(const std::string& path) const { write_atomic(path, serialize()); }

  /// Writes bytes to `path` atomically (used by every file writer of the library): a new temporary
  /// file "<path>.tmp.<pid>.<n>" in the same folder (unique per process and call, created exclusively),
  /// written, fsync'd and renamed over `path`, then the folder is fsync'd (best effort). On any failure
  /// the temporary file is removed and an existing `path` is left as it was.
  static void write_atomic(const std::string& path, const std::vector<unsigned char>& bytes) {
    static std::atomic<unsigned long> counter{0};
    const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_TRUNC, 0644);
    DCSLDM_REQUIRE(fd >= 0, "safetensors_write", "cannot create '", tmp, "' to write '", path, "': ",
                   std::strerror(errno));
    auto give_up = [&](const char* what, int err) {
      ::close(fd);
      std::remove(tmp.c_str());
      detail::fail("safetensors_write", what, " '", tmp, "' for '", path, "' failed: ", std::strerror(err));
    };
    std::size_t done = 0;
    while (done < bytes.size()) {
      errno = 0;
      const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) give_up("writing", errno ? errno : EIO);
      done += std::size_t(w);
    }
    if (::fsync(fd) != 0) give_up("syncing", errno);
    if (::close(fd) != 0) {
      const int err = errno;
      std::remove(tmp.c_str());
      detail::fail("safetensors_write", "closing '", tmp, "' for '", path, "' failed: ", std::strerror(err));
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
      const int err = errno;
      std::remove(tmp.c_str());
      detail::fail("safetensors_write", "could not replace '", path, "': ", std::strerror(err));
    }
    // Make the rename itself durable (best effort: some file systems refuse to open folders).
    const std::size_t slash = path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
      (void)::fsync(dfd);
      ::close(dfd);
    }
  }

 private:
  std::vector<TensorInfo> tensors_;
  std::vector<unsigned char> data_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace dcsldm::io
