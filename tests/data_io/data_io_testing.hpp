// Helpers shared by the data_io tests: a temporary folder, raw file writing, message matching.
#pragma once

#include <dcsldm/core/error.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

#include <unistd.h>

namespace dcsldm::test {

/// A fresh folder under the system temporary folder, removed with its contents at scope exit.
struct TempDir {
  std::string path;
  explicit TempDir(const std::string& tag) {
    static int n = 0;
    path = (std::filesystem::temp_directory_path() /
            ("dcsldm_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(n++)))
               .string();
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return path + "/" + name; }
  /// Names of the entries of the folder, sorted.
  std::vector<std::string> entries() const {
    std::vector<std::string> r;
    for (const auto& e : std::filesystem::directory_iterator(path)) r.push_back(e.path().filename().string());
    std::sort(r.begin(), r.end());
    return r;
  }
};

inline void write_bytes(const std::string& path, const std::vector<unsigned char>& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
  REQUIRE(f.good());
}

inline std::vector<unsigned char> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE(f.good());
  return std::vector<unsigned char>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

/// The message of the dcsldm::Error that `f()` throws ("" and a failed check when it does not throw).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const dcsldm::Error& e) {
    return e.what();
  }
  FAIL_CHECK("no dcsldm::Error thrown");
  return "";
}

}  // namespace dcsldm::test
