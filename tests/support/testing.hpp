// Shared test helpers: execution-space list, deterministic fills, relative errors, golden tensors,
// central finite-difference gradient checks. Test bodies call free function templates only (nvcc
// rejects extended lambdas in TEST_CASE bodies).
#pragma once

#include <dcsldm/core/compat.hpp>
#include <dcsldm/core/types.hpp>
#include <dcsldm/io/safetensors.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#ifndef DCSLDM_TEST_DATA_DIR
#error "DCSLDM_TEST_DATA_DIR must be defined by the build"
#endif

namespace dcsldm::test {

/// The execution spaces every templated test runs on: the default space, and Serial when it is
/// enabled and different.
#if defined(KOKKOS_ENABLE_SERIAL)
using ExecSpaces = std::conditional_t<std::is_same_v<Kokkos::DefaultExecutionSpace, Kokkos::Serial>,
                                      std::tuple<Kokkos::Serial>,
                                      std::tuple<Kokkos::DefaultExecutionSpace, Kokkos::Serial>>;
#else
using ExecSpaces = std::tuple<Kokkos::DefaultExecutionSpace>;
#endif

/// float32 tolerance for PyTorch parity (relative), double tolerance for reference checks.
template <class T>
constexpr double parity_tol() {
  return std::is_same_v<T, float> ? 1e-5 : 1e-12;
}

/// Fills a contiguous View with uniform values in [lo, hi) from a seeded host generator.
template <class View>
void fill_uniform(const View& v, std::uint64_t seed, double lo = -1, double hi = 1) {
  auto h = Kokkos::create_mirror_view(v);
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  using T = value_t<View>;
  for (std::size_t i = 0; i < h.span(); ++i) h.data()[i] = T(dist(gen));
  Kokkos::deep_copy(v, h);
}

/// All elements of a contiguous View as doubles, on the host.
template <class View>
std::vector<double> to_doubles(const View& v) {
  auto h = compat::to_host(v);
  std::vector<double> r(h.span());
  for (std::size_t i = 0; i < h.span(); ++i) r[i] = double(h.data()[i]);
  return r;
}

/// max |a - b| / max(max |b|, tiny): the norm-wise relative error used throughout the tests.
inline double rel_error(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, std::abs(a[i] - b[i]));
    den = std::max(den, std::abs(b[i]));
  }
  if (std::isnan(num)) return INFINITY;
  return num / std::max(den, 1e-30);
}
template <class VA, class VB>
double rel_error_views(const VA& a, const VB& b) {
  return rel_error(to_doubles(a), to_doubles(b));
}

/// A golden-tensor file from tests/data/golden, written by scripts/goldens (PyTorch, float64).
struct Golden {
  io::SafeTensors file;
  explicit Golden(const std::string& name)
      : file(io::SafeTensors::read(std::string(DCSLDM_TEST_DATA_DIR) + "/golden/" + name + ".safetensors")) {}

  std::vector<std::int64_t> shape(const std::string& t) const { return file.info(t).shape; }
  std::vector<double> values(const std::string& t) const { return file.to_vector<double>(t); }
  std::int64_t dim(const std::string& t, int i) const { return file.info(t).shape.at(std::size_t(i)); }
  /// Metadata integer (the golden scripts store sizes and options there).
  long long meta_int(const std::string& key) const { return std::stoll(file.meta(key)); }
  double meta_double(const std::string& key) const { return std::stod(file.meta(key)); }

  /// A new View of rank R with the tensor's shape, filled from the file (converted to T).
  template <class T, class MemSpace, int R>
  auto view(const std::string& t) const {
    const auto& s = file.info(t).shape;
    REQUIRE(s.size() == std::size_t(R));
    if constexpr (R == 1) {
      View1<T, MemSpace> v(t, s[0]);
      file.load(t, v);
      return v;
    } else if constexpr (R == 2) {
      View2<T, MemSpace> v(t, s[0], s[1]);
      file.load(t, v);
      return v;
    } else if constexpr (R == 3) {
      View3<T, MemSpace> v(t, s[0], s[1], s[2]);
      file.load(t, v);
      return v;
    } else {
      View4<T, MemSpace> v(t, s[0], s[1], s[2], s[3]);
      file.load(t, v);
      return v;
    }
  }
  /// Relative error of a View against golden tensor t.
  template <class View>
  double error(const View& v, const std::string& t) const {
    return rel_error(to_doubles(v), values(t));
  }
};

namespace Impl {
template <class ExecSpace, class T>
void add_at(const ExecSpace& space, T* p, std::size_t i, double delta) {
  Kokkos::parallel_for("dcsldm::test::add_at", Kokkos::RangePolicy<ExecSpace>(space, 0, 1),
                       KOKKOS_LAMBDA(int) { p[i] += T(delta); });
  space.fence();
}
}  // namespace Impl

/// Central finite-difference check in double of an analytic gradient.
///
/// `param` is a contiguous View of doubles in ExecSpace's memory; `analytic` holds dL/dparam as the
/// backward pass computed it; `loss()` re-runs the forward pass and returns the scalar L. Up to
/// `max_checks` elements (spread over the tensor, first and last included) are compared:
/// |analytic - numeric| <= tol * max(1e-3, |numeric|).
template <class ExecSpace, class PV, class GV>
void check_gradient(const char* what, const ExecSpace& space, const PV& param, const GV& analytic,
                    const std::function<double()>& loss, double h = 1e-6, double tol = 1e-6,
                    std::size_t max_checks = 40) {
  static_assert(std::is_same_v<value_t<PV>, double>, "gradient checks run in double");
  const std::vector<double> a = to_doubles(analytic);
  const std::size_t n = param.span();
  REQUIRE(a.size() == n);
  const std::size_t step = n <= max_checks ? 1 : (n + max_checks - 1) / max_checks;
  std::vector<std::size_t> idx;
  for (std::size_t i = 0; i < n; i += step) idx.push_back(i);
  if (n > 0 && idx.back() != n - 1) idx.push_back(n - 1);
  for (const std::size_t i : idx) {
    Impl::add_at(space, param.data(), i, h);
    const double lp = loss();
    Impl::add_at(space, param.data(), i, -2 * h);
    const double lm = loss();
    Impl::add_at(space, param.data(), i, h);
    const double num = (lp - lm) / (2 * h);
    const double err = std::abs(a[i] - num) / std::max(1e-3, std::abs(num));
    if (err > tol) {
      FAIL_CHECK(what << "[" << i << "] of " << n << ": analytic " << a[i] << " vs numeric " << num
                      << " (rel err " << err << ")");
      return;
    }
  }
  SUCCEED(what << ": gradient ok");
}

/// L = sum(out * proj) on the host: the scalar loss used with a random projection in gradient checks.
template <class OV, class PV>
double dot(const OV& out, const PV& proj) {
  const auto o = to_doubles(out);
  const auto p = to_doubles(proj);
  REQUIRE(o.size() == p.size());
  double s = 0;
  for (std::size_t i = 0; i < o.size(); ++i) s += o[i] * p[i];
  return s;
}

/// The first line a trainer's run() wrote to `log` (a std::tmpfile), and the "X samples/s" it reports; closes log.
inline std::pair<std::string, double> first_progress_line(std::FILE* log) {
  std::rewind(log);
  char line[512] = "";
  const bool got = std::fgets(line, sizeof line, log) != nullptr;
  std::fclose(log);
  REQUIRE(got);
  const std::string l(line);
  const std::size_t at = l.find(" samples/s");
  REQUIRE(at != std::string::npos);
  const std::size_t from = l.rfind(' ', at - 1) + 1;
  return {l, std::stod(l.substr(from, at - from))};
}

}  // namespace dcsldm::test
