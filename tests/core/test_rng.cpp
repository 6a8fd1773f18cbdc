// core/rng: Philox4x32-10 known-answer vectors (Random123 kat_vectors), host and device; bit-identical
// fills on every execution space and for every decomposition; moments of uniform, normal, Bernoulli and
// integer streams within statistical bounds; independent streams and seeds; ranks 0..4; errors.
#include <dcsldm/core/rng.hpp>

#include "testing.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

using namespace dcsldm;
using test::ExecSpaces;

namespace {

struct Kat {
  std::uint32_t ctr[4];
  std::uint32_t key[2];
  std::uint32_t want[4];
};
// Random123 kat_vectors, "philox4x32 10" lines.
const Kat kats[] = {
    {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
    {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
     {0xffffffffu, 0xffffffffu},
     {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
    {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
     {0xa4093822u, 0x299f31d0u},
     {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
};

template <class ExecSpace>
void check_kat_device() {
  using Mem = typename ExecSpace::memory_space;
  Kokkos::View<std::uint32_t* [10], Kokkos::LayoutRight, Mem> io("io", 3);
  auto h = Kokkos::create_mirror_view(io);
  for (int k = 0; k < 3; ++k) {
    for (int j = 0; j < 4; ++j) h(k, j) = kats[k].ctr[j];
    h(k, 4) = kats[k].key[0];
    h(k, 5) = kats[k].key[1];
  }
  Kokkos::deep_copy(io, h);
  Kokkos::parallel_for(
      "dcsldm::test::philox_kat", Kokkos::RangePolicy<ExecSpace>(ExecSpace(), 0, 3), KOKKOS_LAMBDA(const int k) {
        const rng::U32x4 r = rng::philox4x32_10(rng::U32x4{{io(k, 0), io(k, 1), io(k, 2), io(k, 3)}}, io(k, 4), io(k, 5));
        for (int j = 0; j < 4; ++j) io(k, 6 + j) = r.v[j];
      });
  Kokkos::deep_copy(h, io);
  for (int k = 0; k < 3; ++k)
    for (int j = 0; j < 4; ++j) {
      INFO("kat " << k << " word " << j);
      CHECK(h(k, 6 + j) == kats[k].want[j]);
    }
}

/// Every fill of ExecSpace equals, bit for bit, the serial evaluation of the pure per-value functions.
template <class ExecSpace, class T>
void check_fills_match_reference(std::size_t n) {
  using Mem = typename ExecSpace::memory_space;
  const std::uint64_t seed = 0x1234567890abcdefull, stream = 42;
  const rng::Philox g{seed, stream};
  View1<T, Mem> a("a", n);
  INFO("n = " << n);

  rng::fill_uniform(ExecSpace(), a, seed, stream, -2.0, 3.0);
  auto h = compat::to_host(a);
  for (std::size_t i = 0; i < n; ++i) {
    const T want = T(accum_t<T>(-2.0) + accum_t<T>(5.0) * g.uniform<T>(i));
    if (h(i) != want) FAIL("uniform value " << i << ": " << h(i) << " != " << want);
  }
  rng::fill_normal(ExecSpace(), a, seed, stream, 0.5, 2.0);
  h = compat::to_host(a);
  for (std::size_t i = 0; i < n; ++i) {
    const T want = T(accum_t<T>(0.5) + accum_t<T>(2.0) * g.normal<T>(i));
    if (h(i) != want) FAIL("normal value " << i << ": " << h(i) << " != " << want);
  }
  rng::fill_bernoulli(ExecSpace(), a, seed, stream, 0.3);
  h = compat::to_host(a);
  const std::uint64_t th = rng::bernoulli_threshold(0.3);
  for (std::size_t i = 0; i < n; ++i)
    if (h(i) != (g.bernoulli(i, th) ? T(1) : T(0))) FAIL("bernoulli value " << i);
  View1<std::int32_t, Mem> ki("ki", n);
  rng::fill_uniform_int(ExecSpace(), ki, seed, stream, 1000);
  auto hk = compat::to_host(ki);
  for (std::size_t i = 0; i < n; ++i)
    if (hk(i) != std::int32_t(g.uniform_index(i, 1000))) FAIL("index value " << i);
}

/// DefaultExecutionSpace (all threads) and Serial (one thread) give identical bits; a short fill is a
/// prefix of a long one (value i does not depend on the size or the decomposition).
template <class T>
void check_spaces_identical() {
  const std::size_t n = 10007;
  View1<T, Kokkos::DefaultExecutionSpace::memory_space> d("d", n);
  View1<T, Kokkos::HostSpace> s("s", n), s_short("s_short", 13);
  INFO("default space concurrency " << Kokkos::DefaultExecutionSpace().concurrency());
  for (int kind = 0; kind < 3; ++kind) {
    if (kind == 0) {
      rng::fill_uniform(Kokkos::DefaultExecutionSpace(), d, 7, 3);
      rng::fill_uniform(Kokkos::DefaultHostExecutionSpace(), s, 7, 3);
#if defined(KOKKOS_ENABLE_SERIAL)
      rng::fill_uniform(Kokkos::Serial(), s, 7, 3);
#endif
      rng::fill_uniform(Kokkos::DefaultHostExecutionSpace(), s_short, 7, 3);
    } else if (kind == 1) {
      rng::fill_normal(Kokkos::DefaultExecutionSpace(), d, 7, 3);
#if defined(KOKKOS_ENABLE_SERIAL)
      rng::fill_normal(Kokkos::Serial(), s, 7, 3);
#else
      rng::fill_normal(Kokkos::DefaultHostExecutionSpace(), s, 7, 3);
#endif
      rng::fill_normal(Kokkos::DefaultHostExecutionSpace(), s_short, 7, 3);
    } else {
      rng::fill_dropout_mask(Kokkos::DefaultExecutionSpace(), d, 7, 3, 0.25);
#if defined(KOKKOS_ENABLE_SERIAL)
      rng::fill_dropout_mask(Kokkos::Serial(), s, 7, 3, 0.25);
#else
      rng::fill_dropout_mask(Kokkos::DefaultHostExecutionSpace(), s, 7, 3, 0.25);
#endif
      rng::fill_dropout_mask(Kokkos::DefaultHostExecutionSpace(), s_short, 7, 3, 0.25);
    }
    Kokkos::fence();
    auto hd = compat::to_host(d);
    INFO("kind " << kind);
    CHECK(std::equal(hd.data(), hd.data() + n, s.data()));
    CHECK(std::equal(s_short.data(), s_short.data() + 13, s.data()));
  }
}

struct Moments {
  double mean = 0, var = 0, skew = 0, kurt = 0;
};
Moments moments(const std::vector<double>& x) {
  Moments m;
  const double n = double(x.size());
  for (double v : x) m.mean += v;
  m.mean /= n;
  double m2 = 0, m3 = 0, m4 = 0;
  for (double v : x) {
    const double d = v - m.mean;
    m2 += d * d;
    m3 += d * d * d;
    m4 += d * d * d * d;
  }
  m.var = m2 / n;
  m.skew = (m3 / n) / std::pow(m.var, 1.5);
  m.kurt = (m4 / n) / (m.var * m.var);
  return m;
}

template <class ExecSpace, class T>
void check_moments() {
  using Mem = typename ExecSpace::memory_space;
  const std::size_t n = std::size_t(1) << 20;
  const double sn = std::sqrt(double(n));
  View1<T, Mem> a("a", n);
  // U[0,1): mean 1/2 (sd 0.2887/sqrt n), variance 1/12 (sd of the estimate 0.0745/sqrt n).
  rng::fill_uniform(ExecSpace(), a, 99, 0);
  auto x = test::to_doubles(a);
  auto m = moments(x);
  CHECK(std::abs(m.mean - 0.5) < 5 * 0.2887 / sn);
  CHECK(std::abs(m.var - 1.0 / 12) < 5 * 0.0745 / sn);
  CHECK(*std::min_element(x.begin(), x.end()) >= 0.0);
  CHECK(*std::max_element(x.begin(), x.end()) < 1.0);
  // N(0,1): mean (sd 1/sqrt n), variance (sd sqrt 2/sqrt n), skewness (sqrt 6), kurtosis (sqrt 24).
  rng::fill_normal(ExecSpace(), a, 99, 1);
  x = test::to_doubles(a);
  m = moments(x);
  INFO("normal mean " << m.mean << " var " << m.var << " skew " << m.skew << " kurt " << m.kurt);
  CHECK(std::abs(m.mean) < 5 / sn);
  CHECK(std::abs(m.var - 1) < 5 * std::sqrt(2.0) / sn);
  CHECK(std::abs(m.skew) < 5 * std::sqrt(6.0) / sn);
  CHECK(std::abs(m.kurt - 3) < 5 * std::sqrt(24.0) / sn);
  // Tail: P(|z| > 2) = 0.0455.
  const double tail = double(std::count_if(x.begin(), x.end(), [](double v) { return std::abs(v) > 2; })) / double(n);
  CHECK(std::abs(tail - 0.0455) < 5 * std::sqrt(0.0455 * 0.9545) / sn);
  // mean/std arguments.
  rng::fill_normal(ExecSpace(), a, 99, 1, 3.0, 0.5);
  auto y = test::to_doubles(a);
  for (std::size_t i = 0; i < 100; ++i) CHECK(std::abs(y[i] - (3.0 + 0.5 * x[i])) < 1e-5);
  // Bernoulli(p) and inverted dropout.
  rng::fill_bernoulli(ExecSpace(), a, 99, 2, 0.3);
  x = test::to_doubles(a);
  m = moments(x);
  CHECK(std::abs(m.mean - 0.3) < 5 * std::sqrt(0.3 * 0.7) / sn);
  CHECK(std::all_of(x.begin(), x.end(), [](double v) { return v == 0 || v == 1; }));
  rng::fill_dropout_mask(ExecSpace(), a, 99, 2, 0.25);
  x = test::to_doubles(a);
  m = moments(x);
  CHECK(std::abs(m.mean - 1) < 5 * (4.0 / 3) * std::sqrt(0.75 * 0.25) / sn);
  CHECK(std::all_of(x.begin(), x.end(), [](double v) { return v == 0 || std::abs(v - 4.0 / 3) < 1e-6; }));
  rng::fill_bernoulli(ExecSpace(), a, 99, 2, 0.0);
  x = test::to_doubles(a);
  CHECK(std::all_of(x.begin(), x.end(), [](double v) { return v == 0; }));
  rng::fill_bernoulli(ExecSpace(), a, 99, 2, 1.0);
  x = test::to_doubles(a);
  CHECK(std::all_of(x.begin(), x.end(), [](double v) { return v == 1; }));
}

template <class ExecSpace>
void check_uniform_int() {
  using Mem = typename ExecSpace::memory_space;
  const std::size_t n = 200000;
  View1<std::int64_t, Mem> a("a", n);
  for (std::int64_t k : {1, 2, 7, 10, 1000003}) {
    rng::fill_uniform_int(ExecSpace(), a, 5, std::uint64_t(k), k);
    auto h = compat::to_host(a);
    INFO("n = " << k);
    CHECK(*std::min_element(h.data(), h.data() + n) >= 0);
    CHECK(*std::max_element(h.data(), h.data() + n) < k);
    if (k <= 10) {  // chi-square with k - 1 degrees of freedom: far below mean + 6 sd
      std::vector<double> c(std::size_t(k), 0.0);
      for (std::size_t i = 0; i < n; ++i) c[std::size_t(h(i))] += 1;
      double chi = 0;
      const double e = double(n) / double(k);
      for (double v : c) chi += (v - e) * (v - e) / e;
      CHECK(chi < double(k - 1) + 6 * std::sqrt(2.0 * double(k - 1)) + 1e-9);
    } else {
      double mean = 0;
      for (std::size_t i = 0; i < n; ++i) mean += double(h(i));
      mean /= double(n);
      const double want = double(k - 1) / 2, sd = double(k) / std::sqrt(12.0 * double(n));
      CHECK(std::abs(mean - want) < 5 * sd);
    }
  }
  // The largest n: values cover the top of the range too.
  rng::fill_uniform_int(ExecSpace(), a, 5, 0, 0xffffffffll);
  auto h = compat::to_host(a);
  CHECK(*std::max_element(h.data(), h.data() + n) > 0xf0000000ll);
  CHECK(*std::max_element(h.data(), h.data() + n) < 0xffffffffll);
}

template <class ExecSpace>
void check_streams_differ() {
  using Mem = typename ExecSpace::memory_space;
  const std::size_t n = 4096;
  View1<double, Mem> a("a", n), b("b", n), c("c", n), d("d", n);
  rng::fill_normal(ExecSpace(), a, 1, 0);
  rng::fill_normal(ExecSpace(), b, 1, 1);
  rng::fill_normal(ExecSpace(), c, 2, 0);
  rng::fill_normal(ExecSpace(), d, 1, std::uint64_t(1) << 32);  // high stream word alone
  const auto xa = test::to_doubles(a), xb = test::to_doubles(b), xc = test::to_doubles(c), xd = test::to_doubles(d);
  auto corr = [&](const std::vector<double>& x, const std::vector<double>& y) {
    double s = 0;
    std::size_t eq = 0;
    for (std::size_t i = 0; i < n; ++i) {
      s += x[i] * y[i];
      eq += x[i] == y[i];
    }
    CHECK(eq == 0);
    return s / double(n);
  };
  CHECK(std::abs(corr(xa, xb)) < 5 / std::sqrt(double(n)));
  CHECK(std::abs(corr(xa, xc)) < 5 / std::sqrt(double(n)));
  CHECK(std::abs(corr(xa, xd)) < 5 / std::sqrt(double(n)));
  CHECK(std::abs(corr(xb, xd)) < 5 / std::sqrt(double(n)));
  CHECK(rng::stream_of("a") != rng::stream_of("b"));
  CHECK(rng::stream_of("blocks.0.w") == rng::stream_of(std::string("blocks.0.w")));
}

/// Views of rank 0..4 are filled in flat row-major order: the same values as a rank-1 fill.
template <class ExecSpace>
void check_ranks() {
  using Mem = typename ExecSpace::memory_space;
  View1<float, Mem> flat("flat", 2 * 3 * 4 * 5);
  rng::fill_normal(ExecSpace(), flat, 11, 4);
  const auto want = test::to_doubles(flat);
  Kokkos::View<float, Kokkos::LayoutRight, Mem> r0("r0");
  View2<float, Mem> r2("r2", 12, 10);
  View3<float, Mem> r3("r3", 2, 3, 20);
  View4<float, Mem> r4("r4", 2, 3, 4, 5);
  rng::fill_normal(ExecSpace(), r0, 11, 4);
  rng::fill_normal(ExecSpace(), r2, 11, 4);
  rng::fill_normal(ExecSpace(), r3, 11, 4);
  rng::fill_normal(ExecSpace(), r4, 11, 4);
  CHECK(test::to_doubles(r0)[0] == want[0]);
  CHECK(test::to_doubles(r2) == want);
  CHECK(test::to_doubles(r3) == want);
  CHECK(test::to_doubles(r4) == want);
  auto h4 = compat::to_host(r4);
  CHECK(double(h4(1, 2, 3, 4)) == want[((1 * 3 + 2) * 4 + 3) * 5 + 4]);
  // Size 0 is a no-op, size 1 works for every fill.
  View1<float, Mem> e("e", 0), one("one", 1);
  rng::fill_uniform(ExecSpace(), e, 1, 1);
  rng::fill_normal(ExecSpace(), e, 1, 1);
  rng::fill_bernoulli(ExecSpace(), e, 1, 1, 0.5);
  rng::fill_uniform_int(ExecSpace(), e, 1, 1, 3);
  rng::fill_normal(ExecSpace(), one, 11, 4);
  CHECK(test::to_doubles(one)[0] == want[0]);
}

template <class ExecSpace>
void check_errors() {
  using Mem = typename ExecSpace::memory_space;
  View2<float, Mem> a("weights", 4, 6);
  auto cols = Kokkos::subview(a, Kokkos::ALL, Kokkos::make_pair(1, 3));
  CHECK_THROWS_WITH(rng::fill_normal(ExecSpace(), cols, 1, 1),
                    Catch::Contains("dcsldm::fill_normal") && Catch::Contains("'weights' is not contiguous") &&
                        Catch::Contains("size 8, span"));
  CHECK_THROWS_WITH(rng::fill_bernoulli(ExecSpace(), a, 1, 1, 1.5),
                    Catch::Contains("dcsldm::fill_bernoulli") && Catch::Contains("p = 1.5"));
  CHECK_THROWS_WITH(rng::fill_dropout_mask(ExecSpace(), a, 1, 1, 1.0),
                    Catch::Contains("dcsldm::fill_dropout_mask") && Catch::Contains("p_drop = 1"));
  View1<int, Mem> k("k", 3);
  CHECK_THROWS_WITH(rng::fill_uniform_int(ExecSpace(), k, 1, 1, 0),
                    Catch::Contains("dcsldm::fill_uniform_int") && Catch::Contains("n = 0"));
}

}  // namespace

TEST_CASE("Philox4x32-10 known-answer vectors on the host", "[core][rng]") {
  for (const Kat& k : kats) {
    const rng::U32x4 r = rng::philox4x32_10(rng::U32x4{{k.ctr[0], k.ctr[1], k.ctr[2], k.ctr[3]}}, k.key[0], k.key[1]);
    for (int j = 0; j < 4; ++j) CHECK(r.v[j] == k.want[j]);
  }
  // Philox{seed, stream}.block(b) is Philox of counter (b lo, b hi, stream lo, stream hi), key seed.
  const rng::Philox g{0x299f31d0a4093822ull, 0x0370734413198a2eull};
  const rng::U32x4 r = g.block(0x85a308d3243f6a88ull);
  for (int j = 0; j < 4; ++j) CHECK(r.v[j] == kats[2].want[j]);
  // Value indices: word i % 4 of block i / 4 (32 bits), words (2k, 2k+1) of block i / 2 (64 bits).
  const rng::Philox z{0, 0};
  for (int j = 0; j < 4; ++j) CHECK(z.random_u32(std::uint64_t(j)) == kats[0].want[j]);
  CHECK(z.random_u64(1) == (std::uint64_t(kats[0].want[3]) << 32 | kats[0].want[2]));
}

TEMPLATE_LIST_TEST_CASE("Philox4x32-10 known-answer vectors inside a kernel", "[core][rng]", ExecSpaces) {
  check_kat_device<TestType>();
}

TEMPLATE_LIST_TEST_CASE("rng fills equal the per-value device functions bit for bit", "[core][rng]", ExecSpaces) {
  for (std::size_t n : {0, 1, 2, 3, 5, 8, 1001}) {
    check_fills_match_reference<TestType, float>(n);
    check_fills_match_reference<TestType, double>(n);
  }
}

TEST_CASE("rng: default space (N threads) and Serial (1 thread) give identical bits", "[core][rng]") {
  check_spaces_identical<float>();
  check_spaces_identical<double>();
}

TEMPLATE_LIST_TEST_CASE("rng moments within statistical bounds", "[core][rng]", ExecSpaces) {
  check_moments<TestType, float>();
  check_moments<TestType, double>();
}

TEMPLATE_LIST_TEST_CASE("rng uniform integers are in range and uniform", "[core][rng]", ExecSpaces) {
  check_uniform_int<TestType>();
}

TEMPLATE_LIST_TEST_CASE("rng streams and seeds are independent", "[core][rng]", ExecSpaces) {
  check_streams_differ<TestType>();
}

TEMPLATE_LIST_TEST_CASE("rng fills Views of rank 0..4 in flat order", "[core][rng]", ExecSpaces) {
  check_ranks<TestType>();
}

TEMPLATE_LIST_TEST_CASE("rng errors name the View and the value", "[core][rng]", ExecSpaces) {
  check_errors<TestType>();
}
