// core/rng: Philox4x32-10 known-answer vectors (Random123 kat_vectors), host and device; bit-identical
// fills on every execution space and for every decomposition; moments of uniform, normal, Bernoulli and
// integer streams within statistical bounds; independent streams and seeds; ranks 0..4; errors; the
// accuracy of our own log / sin / cos (Impl::log_unit, Impl::sincos_turns) against libm in higher
// precision; and known-answer bit patterns of OUR uniform/normal transforms (computed once on x86-64 with
// GCC, then frozen), run inside a kernel, so every backend that runs the test checks bit-identity.
#include <dcsldm/core/rng.hpp>

#include "testing.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <sstream>
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

/// Bit pattern of a float or double (for known-answer checks).
template <class T>
std::uint64_t bits_of(T x) {
  if constexpr (sizeof(T) == 4) {
    std::uint32_t b;
    std::memcpy(&b, &x, 4);
    return b;
  } else {
    std::uint64_t b;
    std::memcpy(&b, &x, 8);
    return b;
  }
}
std::string hex(std::uint64_t b) {
  std::ostringstream o;
  o << "0x" << std::hex << b;
  return o.str();
}

/// |got - want| in units of the last place of want in T (want computed in higher precision).
template <class T>
long double ulps(T got, long double want) {
  const int digits = std::numeric_limits<T>::digits;
  int e;
  std::frexp(want, &e);  // want = m 2^e, m in [0.5, 1)
  const long double ulp = std::ldexp(1.0L, e - digits);
  return std::fabs((long double)got - want) / ulp;
}

/// Impl::log_unit<T>(m) = log(m 2^-b) and Impl::sincos_turns<T>(m) = (cos, sin)(2 pi m 2^-b) within
/// 2 ulp of libm's long double functions (the reference reduces the angle exactly as well), over edge
/// values (1, 2^b, both sides of sqrt(2), quadrant boundaries) and 200000 random m.
template <class T>
void check_transcendentals() {
  const int b = rng::Impl::rng_bits<T>;
  const std::uint64_t one_b = std::uint64_t(1) << b;
  std::vector<std::uint64_t> ms = {1, 2, 3, 5, one_b, one_b - 1, one_b / 2, one_b / 2 + 1, one_b / 4, one_b / 8,
                                   one_b / 8 + 1, one_b / 8 - 1, 3 * one_b / 8, 5 * one_b / 8, 7 * one_b / 8,
                                   3 * one_b / 4, 3 * one_b / 4 + 1, 3 * one_b / 4 - 1};
  const std::uint64_t sq = b == 53 ? 12738103345051545ull : 23726566ull;  // floor(sqrt 2 * 2^b)
  for (int sh = 0; sh < 4; ++sh)
    for (std::uint64_t d = 0; d < 3; ++d) ms.push_back(((sq + d) >> 1) >> sh << sh);
  const rng::Philox g{2024, 7};
  for (std::uint64_t i = 0; i < 200000; ++i) {
    std::uint64_t m = g.random_u64(i) >> (64 - b);
    if (i % 4 == 1) m >>= (g.random_u32(i) % std::uint32_t(b));  // small u: all exponents
    ms.push_back(m);
  }
  long double worst_log = 0, worst_sc = 0;
  std::uint64_t arg_log = 0, arg_sc = 0;
  for (std::uint64_t m : ms) {
    if (m >= 1 && m <= one_b) {
      const long double u = std::ldexp((long double)m, -b);
      const T got = rng::Impl::log_unit<T>(m);
      if (m == one_b) {
        CHECK(got == T(0));
      } else {
        const long double e = ulps(got, std::log(u));
        if (e > worst_log) worst_log = e, arg_log = m;
      }
    }
    if (m < one_b) {
      // exact reduction for the reference: t = j / 4 + f, |f| <= 1/8
      const std::uint64_t j = (m + (one_b >> 3)) >> (b - 2);
      const long double f = std::ldexp((long double)(std::int64_t(m) - std::int64_t(j << (b - 2))), -b);
      const long double x = 2 * 3.14159265358979323846264338327950288L * f;
      long double c = std::cos(x), s = std::sin(x), t;
      for (std::uint64_t q = 0; q < (j & 3); ++q) t = c, c = -s, s = t;  // rotate by a quarter turn
      T gc, gs;
      rng::Impl::sincos_turns<T>(m, gc, gs);
      const long double e = std::max(ulps(gc, c), ulps(gs, s));  // exact zeros must be exact
      if (e > worst_sc) worst_sc = e, arg_sc = m;
    }
  }
  INFO("b = " << b << ": worst log error " << double(worst_log) << " ulp at m = " << arg_log
              << ", worst sin/cos error " << double(worst_sc) << " ulp at m = " << arg_sc);
  CHECK(worst_log <= 2);
  CHECK(worst_sc <= 2);
}

/// normal_pair<T>(k) against Box-Muller evaluated with libm in long double on the same u1, u2 (the bits
/// the header comment documents): within 4 ulp of T (log ~1 ulp, halved by sqrt; sin/cos ~1 ulp; product).
template <class T>
void check_normal_vs_libm() {
  const int b = rng::Impl::rng_bits<T>;
  const rng::Philox g{31337, 5};
  long double worst = 0;
  std::uint64_t arg = 0;
  for (std::uint64_t k = 0; k < 100000; ++k) {
    const rng::U32x4 w = g.block(k);
    std::uint64_t m1, m2;
    if (b == 53) {
      m1 = ((std::uint64_t(w.v[0]) | (std::uint64_t(w.v[1]) << 32)) >> 11) + 1;
      m2 = (std::uint64_t(w.v[2]) | (std::uint64_t(w.v[3]) << 32)) >> 11;
    } else {
      m1 = std::uint64_t(w.v[0] >> 8) + 1;
      m2 = std::uint64_t(w.v[1] >> 8);
    }
    const long double r = std::sqrt(-2 * std::log(std::ldexp((long double)m1, -b)));
    // angle reduced exactly (as in check_transcendentals) so that the reference is accurate near zeros
    const std::uint64_t j = (m2 + (std::uint64_t(1) << (b - 3))) >> (b - 2);
    const long double f = std::ldexp((long double)(std::int64_t(m2) - std::int64_t(j << (b - 2))), -b);
    const long double x = 2 * 3.14159265358979323846264338327950288L * f;
    long double c = std::cos(x), s = std::sin(x), t;
    for (std::uint64_t q = 0; q < (j & 3); ++q) t = c, c = -s, s = t;
    T z0, z1;
    g.normal_pair<T>(k, z0, z1);
    const long double e = std::max(ulps(z0, r * c), ulps(z1, r * s));
    if (e > worst) worst = e, arg = k;
  }
  INFO("b = " << b << ": worst Box-Muller error " << double(worst) << " ulp at block " << arg);
  CHECK(worst <= 4);
}

// Known answers of OUR transforms (not of any other library): computed once with this code on x86-64
// (GCC 12, -O3, no FMA contraction) and frozen. Any backend that reproduces them bit for bit gives the
// same numbers as every other backend. Columns: uniform<float>(i), uniform<double>(i), normal<float>(i),
// normal<double>(i), as bit patterns.
struct TransformKat {
  std::uint64_t seed, stream, i;
  std::uint64_t want[4];
};
const TransformKat transform_kats[] = {
    {0, 0, 0, {0x3ecc4fd0u, 0x3fec2d38b1acc4fdull, 0x3f7dbb30u, 0xbfd973628c131c05ull}},
    {0, 0, 1, {0x3f6169c5u, 0x3fe3601b7b178af5ull, 0xbf6cb6b3u, 0xbfd3dd84ff91e709ull}},
    {0x1234567890abcdefull, 42, 5, {0x3e15ba54u, 0x3fc6d24f452d9128ull, 0xbfa9291du, 0x3fe0db6ac90861a6ull}},
    {7, 3, 1000001, {0x3f27f368u, 0x3fa69dc67b9775c0ull, 0x3f45a6f9u, 0x3fd9e8b89747d3e8ull}},
    {~0ull, ~0ull, (std::uint64_t(1) << 40) + 3,
     {0x3ca86820u, 0x3fdc24b62752a510ull, 0x3feb8e6cu, 0x3fe67c39439d70faull}},
    {99, 1, 12345, {0x3f62d4b1u, 0x3fdd2066f88acce0ull, 0xbe9d0966u, 0x3faeb50e70d8cb71ull}},
};
// FNV-1a of the bit patterns of fill_uniform(lo = -2, hi = 3) and fill_normal(mean = 0.5, stddev = 2) of
// 10007 values, seed 0x1234567890abcdef, stream 42: float uniform, double uniform, float normal, double normal.
const std::uint64_t fill_hash_want[4] = {0xe5a69cc34ac2d4caull, 0x5c4a16f1037a5c1cull, 0x60fe9bb46d83bcaeull,
                                         0x058b548f0c812900ull};

template <class V>
std::uint64_t fnv_bits(const V& v) {
  auto h = compat::to_host(v);
  std::uint64_t x = 0xcbf29ce484222325ull;
  for (std::size_t i = 0; i < h.extent(0); ++i) {
    const std::uint64_t b = bits_of(h(i));
    for (int k = 0; k < 8; ++k) {
      x ^= (b >> (8 * k)) & 0xff;
      x *= 0x100000001b3ull;
    }
  }
  return x;
}

/// The per-value functions, run inside a kernel of ExecSpace, and the fills of ExecSpace give the frozen
/// bit patterns.
template <class ExecSpace>
void check_transform_kats() {
  using Mem = typename ExecSpace::memory_space;
  constexpr int np = int(sizeof(transform_kats) / sizeof(transform_kats[0]));
  Kokkos::View<std::uint64_t* [3], Kokkos::LayoutRight, Mem> arg("arg", np);
  View1<float, Mem> fu("fu", np), fn("fn", np);
  View1<double, Mem> du("du", np), dn("dn", np);
  auto ha = Kokkos::create_mirror_view(arg);
  for (int k = 0; k < np; ++k) {
    ha(k, 0) = transform_kats[k].seed;
    ha(k, 1) = transform_kats[k].stream;
    ha(k, 2) = transform_kats[k].i;
  }
  Kokkos::deep_copy(arg, ha);
  Kokkos::parallel_for(
      "dcsldm::test::rng_transform_kat", Kokkos::RangePolicy<ExecSpace>(ExecSpace(), 0, np), KOKKOS_LAMBDA(const int k) {
        const rng::Philox g{arg(k, 0), arg(k, 1)};
        fu(k) = g.uniform<float>(arg(k, 2));
        du(k) = g.uniform<double>(arg(k, 2));
        fn(k) = g.normal<float>(arg(k, 2));
        dn(k) = g.normal<double>(arg(k, 2));
      });
  auto hfu = compat::to_host(fu), hfn = compat::to_host(fn);
  auto hdu = compat::to_host(du), hdn = compat::to_host(dn);
  for (int k = 0; k < np; ++k) {
    const std::uint64_t got[4] = {bits_of(hfu(k)), bits_of(hdu(k)), bits_of(hfn(k)), bits_of(hdn(k))};
    for (int c = 0; c < 4; ++c) {
      INFO("kat " << k << " (seed " << transform_kats[k].seed << ", stream " << transform_kats[k].stream << ", i "
                  << transform_kats[k].i << ") column " << c << ": got " << hex(got[c]) << " want "
                  << hex(transform_kats[k].want[c]));
      CHECK(got[c] == transform_kats[k].want[c]);
    }
  }
  const std::size_t n = 10007;
  const std::uint64_t seed = 0x1234567890abcdefull, stream = 42;
  View1<float, Mem> f("f", n);
  View1<double, Mem> d("d", n);
  std::uint64_t got[4];
  rng::fill_uniform(ExecSpace(), f, seed, stream, -2.0, 3.0);
  got[0] = fnv_bits(f);
  rng::fill_uniform(ExecSpace(), d, seed, stream, -2.0, 3.0);
  got[1] = fnv_bits(d);
  rng::fill_normal(ExecSpace(), f, seed, stream, 0.5, 2.0);
  got[2] = fnv_bits(f);
  rng::fill_normal(ExecSpace(), d, seed, stream, 0.5, 2.0);
  got[3] = fnv_bits(d);
  for (int c = 0; c < 4; ++c) {
    INFO("fill hash " << c << ": got " << hex(got[c]) << " want " << hex(fill_hash_want[c]));
    CHECK(got[c] == fill_hash_want[c]);
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
    const T want = T(math::fma(accum_t<T>(5.0), accum_t<T>(g.uniform<T>(i)), accum_t<T>(-2.0)));
    if (h(i) != want) FAIL("uniform value " << i << ": " << h(i) << " != " << want);
  }
  rng::fill_normal(ExecSpace(), a, seed, stream, 0.5, 2.0);
  h = compat::to_host(a);
  for (std::size_t i = 0; i < n; ++i) {
    const T want = T(math::fma(accum_t<T>(2.0), accum_t<T>(g.normal<T>(i)), accum_t<T>(0.5)));
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

TEMPLATE_LIST_TEST_CASE("rng uniform and normal transforms give the frozen bit patterns", "[core][rng]", ExecSpaces) {
  check_transform_kats<TestType>();
}

TEST_CASE("rng log, sin/cos and Box-Muller are within a few ulp of libm in higher precision", "[core][rng]") {
  check_transcendentals<float>();
  check_transcendentals<double>();
  check_normal_vs_libm<float>();
  check_normal_vs_libm<double>();
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
