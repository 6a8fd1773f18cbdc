// dcsldm/core/rng.hpp: counter-based random numbers (Philox4x32-10, Salmon et al., "Parallel random
// numbers: as easy as 1, 2, 3", SC 2011), written from the published algorithm.
//
// Value i of a stream is a pure function of (seed, stream, i): no generator state, so results are
// bit-identical for every thread count, every backend and every kernel decomposition. The 64-bit seed is
// the Philox key; the 128-bit counter is (block index low, block index high, stream low, stream high).
// One Philox call gives a block of four 32-bit words:
//   - random_u32(i):       word i % 4 of block i / 4;
//   - uniform<float>(i):   top 24 bits of random_u32(i), times 2^-24: in [0, 1), exact multiples of 2^-24;
//   - uniform<double>(i):  53 bits from words (2k, 2k+1), k = i % 2, of block i / 2: in [0, 1);
//   - normal<T>(i):        Box-Muller on block i / 2 (one block per pair), element i % 2 of the pair
//                          (cos for even i, sin for odd i); float uses words 0 and 1 (24 bits each),
//                          double uses words (0, 1) and (2, 3) (53 bits each); u1 lies in (0, 1] so the
//                          logarithm is finite (|z| <= 5.77 in float, <= 8.57 in double);
//   - bernoulli(i, p):     random_u32(i) < round(p * 2^32): probability p to within 2^-33;
//   - uniform_index(i, n): floor(x * n / 2^64) with x the 64 bits of words (2k, 2k+1) of block i / 2: in
//                          [0, n) for 1 <= n < 2^32; each value has probability 1/n to within 2^-64
//                          (a bias far below any statistical test; not rejection sampling, so each
//                          value still costs exactly one block half).
// Streams with different ids (or different seeds) are independent sequences: use one stream per tensor
// or per purpose (e.g. noise, dropout, timesteps) and a step counter in the seed or stream.
//
// Same bits on every backend. Integer steps are exact; every floating-point step of the transforms is one
// IEEE operation that is correctly rounded on CPUs and on CUDA/HIP by default (+, -, *, /, sqrt, and
// math::fma for every multiply-add, so that no compiler contraction of `a * b + c` can change a bit). The
// logarithm and the sine/cosine of Box-Muller are our own (Impl::log_unit, Impl::sincos_turns: exact
// range reduction on the integer bits, then Taylor polynomials in Horner form with fma; about 1 ulp), not
// libm's, whose last bits differ between glibc, CUDA and ROCm. Products whose result feeds an addition are
// either fma'd or exact (a power-of-two scaling), so contraction cannot change them either. The guarantee
// needs IEEE defaults: no -ffast-math / --use_fast_math (flush-to-zero, approximate division or sqrt).
// fill_uniform / fill_normal apply their affine map as one fma. tests/core/test_rng.cpp freezes known-answer
// bit patterns of these transforms and checks them inside a kernel of every execution space.
#pragma once

#include <dcsldm/core/compat.hpp>
#include <dcsldm/core/error.hpp>
#include <dcsldm/core/types.hpp>

#include <cstdint>
#include <string>

namespace dcsldm::rng {

/// Four 32-bit words: a Philox counter or output block.
struct U32x4 {
  std::uint32_t v[4];
};

namespace Impl {
KOKKOS_INLINE_FUNCTION void mulhilo32(std::uint32_t a, std::uint32_t b, std::uint32_t& hi, std::uint32_t& lo) {
  const std::uint64_t p = std::uint64_t(a) * std::uint64_t(b);
  hi = std::uint32_t(p >> 32);
  lo = std::uint32_t(p);
}
}  // namespace Impl

/// Philox4x32-10: the bijection of the counter `ctr` under the 64-bit key (k0, k1).
/// Each of the 10 rounds: (hi0, lo0) = 0xD2511F53 * c0, (hi1, lo1) = 0xCD9E8D57 * c2,
/// c = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0); between rounds the key is bumped by the Weyl
/// constants (0x9E3779B9, 0xBB67AE85). Device-callable.
KOKKOS_INLINE_FUNCTION U32x4 philox4x32_10(U32x4 ctr, std::uint32_t k0, std::uint32_t k1) {
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    std::uint32_t hi0, lo0, hi1, lo1;
    Impl::mulhilo32(0xD2511F53u, ctr.v[0], hi0, lo0);
    Impl::mulhilo32(0xCD9E8D57u, ctr.v[2], hi1, lo1);
    const U32x4 next{{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
    ctr = next;
  }
  return ctr;
}

namespace Impl {
/// floor(log2(m)) for m >= 1: a fixed six-step binary search on the bits (exact, device-callable).
KOKKOS_INLINE_FUNCTION int floor_log2(std::uint64_t m) {
  int n = 0;
  if (m >> 32) { m >>= 32; n += 32; }
  if (m >> 16) { m >>= 16; n += 16; }
  if (m >> 8) { m >>= 8; n += 8; }
  if (m >> 4) { m >>= 4; n += 4; }
  if (m >> 2) { m >>= 2; n += 2; }
  if (m >> 1) n += 1;
  return n;
}

/// Mantissa bits of the uniforms that feed Box-Muller: 24 (float) or 53 (double).
template <class A>
inline constexpr int rng_bits = sizeof(A) >= 8 ? 53 : 24;

/// 2^-rng_bits<A> (and 2^-(rng_bits<A> + 1) for half_ulp = true), exactly.
template <class A>
KOKKOS_INLINE_FUNCTION constexpr A rng_scale(bool half_ulp = false) {
  if constexpr (sizeof(A) >= 8) {
    return half_ulp ? A(5.5511151231257827021e-17) : A(1.1102230246251565404e-16);  // 2^-54, 2^-53
  } else {
    return half_ulp ? A(2.98023223876953125e-08) : A(5.9604644775390625e-08);  // 2^-25, 2^-24
  }
}

/// log(u) for u = m * 2^-b in (0, 1], 1 <= m <= 2^b, b = rng_bits<A>; a deterministic function of m.
/// Exact reduction on the integer: u = 2^e * (1 + f) with 1 + f in (sqrt(1/2), sqrt(2)), f exact; then
/// log(1 + f) = 2 atanh(s), s = f / (2 + f), written as f - s * (f - R) with
/// R = sum_k 2 s^(2k) / (2k + 1) (k = 1..10 in double, 1..5 in float; truncation < 1e-18 / 2e-9 relative),
/// and log(u) = e * ln2_hi + (e * ln2_lo + log(1 + f)), all multiply-adds as fma. Error about 1 ulp.
template <class A>
KOKKOS_INLINE_FUNCTION A log_unit(std::uint64_t m) {
  constexpr int b = rng_bits<A>;
  const int n = floor_log2(m);                 // m = 2^n * (mm / 2^b)
  const std::uint64_t mm = m << (b - n);       // in [2^b, 2^(b+1))
  const std::uint64_t sqrt2_b = b == 53 ? 12738103345051545ull : 23726566ull;  // floor(sqrt(2) 2^b)
  const std::uint64_t one_b = std::uint64_t(1) << b;
  // 1 + f = mm / 2^b, or mm / 2^(b+1) above sqrt(2); f is an exact integer times an exact power of two.
  const bool halve = mm > sqrt2_b;
  const int e = n - b + (halve ? 1 : 0);
  const A f = A(std::int64_t(mm) - std::int64_t(halve ? 2 * one_b : one_b)) * rng_scale<A>(halve);
  const A s = f / (A(2) + f);  // f is an exact product: contracting 2 + f changes no bit
  const A z = s * s;
  A p;
  if constexpr (sizeof(A) >= 8) {
    p = A(0.095238095238095233);  // 2/21
    p = math::fma(p, z, A(0.10526315789473684));   // 2/19
    p = math::fma(p, z, A(0.11764705882352941));   // 2/17
    p = math::fma(p, z, A(0.13333333333333333));   // 2/15
    p = math::fma(p, z, A(0.15384615384615385));   // 2/13
    p = math::fma(p, z, A(0.18181818181818182));   // 2/11
    p = math::fma(p, z, A(0.22222222222222221));   // 2/9
    p = math::fma(p, z, A(0.2857142857142857));    // 2/7
    p = math::fma(p, z, A(0.40000000000000002));   // 2/5
    p = math::fma(p, z, A(0.66666666666666663));   // 2/3
  } else {
    p = A(0.18181818181818182);                    // 2/11
    p = math::fma(p, z, A(0.22222222222222221));   // 2/9
    p = math::fma(p, z, A(0.2857142857142857));    // 2/7
    p = math::fma(p, z, A(0.40000000000000002));   // 2/5
    p = math::fma(p, z, A(0.66666666666666663));   // 2/3
  }
  const A d = math::fma(-z, p, f);         // f - R, R = z p
  const A l = math::fma(-s, d, f);         // log(1 + f)
  const A ln2_hi = sizeof(A) >= 8 ? A(0.69314718055994529) : A(0.693147182f);
  const A ln2_lo = sizeof(A) >= 8 ? A(2.3190468138462996e-17) : A(-1.90465421e-09f);
  return math::fma(A(e), ln2_hi, math::fma(A(e), ln2_lo, l));
}

/// (cos 2 pi t, sin 2 pi t) for t = m * 2^-b in [0, 1), 0 <= m < 2^b, b = rng_bits<A>; a deterministic
/// function of m. Exact reduction on the integer: t = j / 4 + f, j the nearest quarter turn, |f| <= 1/8
/// (f exact); then Taylor polynomials in f (coefficients (+-)(2 pi)^k / k!, in Horner form with fma):
/// sin(2 pi f) to f^17 (double) / f^9 (float), cos(2 pi f) to f^16 / f^10 (truncation below 1e-17 / 3e-9
/// relative), and the quadrant j mod 4 picks signs and swaps. Error about 1 ulp.
template <class A>
KOKKOS_INLINE_FUNCTION void sincos_turns(std::uint64_t m, A& c, A& s) {
  constexpr int b = rng_bits<A>;
  const std::uint64_t j = (m + (std::uint64_t(1) << (b - 3))) >> (b - 2);  // 0..4
  const A f = A(std::int64_t(m) - std::int64_t(j << (b - 2))) * rng_scale<A>();  // exact, |f| <= 1/8
  const A f2 = f * f;
  A ps, pc;
  if constexpr (sizeof(A) >= 8) {
    ps = A(0.10422916220813984);
    ps = math::fma(ps, f2, A(-0.7181223017785006));
    ps = math::fma(ps, f2, A(3.819952584848282));
    ps = math::fma(ps, f2, A(-15.09464257682299));
    ps = math::fma(ps, f2, A(42.058693944897655));
    ps = math::fma(ps, f2, A(-76.70585975306139));
    ps = math::fma(ps, f2, A(81.60524927607506));
    ps = math::fma(ps, f2, A(-41.34170224039976));
    pc = A(0.28200596845579123);
    pc = math::fma(pc, f2, A(-1.714390711088672));
    pc = math::fma(pc, f2, A(7.903536371318469));
    pc = math::fma(pc, f2, A(-26.4262567833744));
    pc = math::fma(pc, f2, A(60.24464137187666));
    pc = math::fma(pc, f2, A(-85.45681720669373));
    pc = math::fma(pc, f2, A(64.9393940226683));
    pc = math::fma(pc, f2, A(-19.739208802178716));
  } else {
    ps = A(42.058693944897655);
    ps = math::fma(ps, f2, A(-76.70585975306139));
    ps = math::fma(ps, f2, A(81.60524927607506));
    ps = math::fma(ps, f2, A(-41.34170224039976));
    pc = A(-26.4262567833744);
    pc = math::fma(pc, f2, A(60.24464137187666));
    pc = math::fma(pc, f2, A(-85.45681720669373));
    pc = math::fma(pc, f2, A(64.9393940226683));
    pc = math::fma(pc, f2, A(-19.739208802178716));
  }
  // sin = 2 pi f + f^3 ps with 2 pi = pi2_hi + pi2_lo, cos = 1 + f^2 pc (every product is an fma operand)
  const A pi2_hi = sizeof(A) >= 8 ? A(6.283185307179586) : A(6.28318548f);
  const A pi2_lo = sizeof(A) >= 8 ? A(2.4492935982947064e-16) : A(-1.74845560e-07f);
  const A sn = math::fma(pi2_hi, f, math::fma(f * f2, ps, pi2_lo * f));
  const A cs = math::fma(f2, pc, A(1));
  switch (int(j & 3)) {
    case 0: c = cs; s = sn; break;
    case 1: c = -sn; s = cs; break;
    case 2: c = -cs; s = -sn; break;
    default: c = sn; s = -cs; break;
  }
}
}  // namespace Impl

/// A random stream: (seed, stream id). Trivially copyable; capture it by value in kernels.
/// Every member is a pure, device-callable function of (seed, stream, i).
struct Philox {
  std::uint64_t seed = 0;
  std::uint64_t stream = 0;

  /// Block `b` of the stream: Philox4x32-10 of counter (b, stream) under key seed.
  KOKKOS_INLINE_FUNCTION U32x4 block(std::uint64_t b) const {
    const U32x4 ctr{{std::uint32_t(b), std::uint32_t(b >> 32), std::uint32_t(stream), std::uint32_t(stream >> 32)}};
    return philox4x32_10(ctr, std::uint32_t(seed), std::uint32_t(seed >> 32));
  }
  /// 32 random bits: word i % 4 of block i / 4.
  KOKKOS_INLINE_FUNCTION std::uint32_t random_u32(std::uint64_t i) const { return block(i >> 2).v[i & 3]; }
  /// 64 random bits: words (2k, 2k+1) of block i / 2, k = i % 2 (low word first).
  KOKKOS_INLINE_FUNCTION std::uint64_t random_u64(std::uint64_t i) const {
    const U32x4 b = block(i >> 1);
    const int k = int(i & 1) * 2;
    return std::uint64_t(b.v[k]) | (std::uint64_t(b.v[k + 1]) << 32);
  }

  /// Uniform in [0, 1) (see the header comment for the bits used).
  template <class T>
  KOKKOS_INLINE_FUNCTION T uniform(std::uint64_t i) const {
    if constexpr (sizeof(T) >= 8) {
      return T(double(random_u64(i) >> 11) * 1.1102230246251565404e-16);  // 2^-53
    } else {
      return T(float(random_u32(i) >> 8) * 5.9604644775390625e-08f);  // 2^-24
    }
  }

  /// Standard normal pair (z0, z1) from block k by Box-Muller (values 2k and 2k + 1 of normal()):
  /// r = sqrt(-2 log u1), z0 = r cos(2 pi u2), z1 = r sin(2 pi u2), u1 in (0, 1], u2 in [0, 1), with
  /// Impl::log_unit and Impl::sincos_turns (the same bits on every backend).
  template <class T>
  KOKKOS_INLINE_FUNCTION void normal_pair(std::uint64_t k, T& z0, T& z1) const {
    const U32x4 b = block(k);
    using A = accum_t<T>;
    std::uint64_t m1, m2;  // u1 = m1 2^-bits in (0, 1], u2 = m2 2^-bits in [0, 1)
    if constexpr (sizeof(A) >= 8) {
      m1 = ((std::uint64_t(b.v[0]) | (std::uint64_t(b.v[1]) << 32)) >> 11) + 1;
      m2 = (std::uint64_t(b.v[2]) | (std::uint64_t(b.v[3]) << 32)) >> 11;
    } else {
      m1 = std::uint64_t(b.v[0] >> 8) + 1;
      m2 = std::uint64_t(b.v[1] >> 8);
    }
    const A r = math::sqrt(A(-2) * Impl::log_unit<A>(m1));
    A c, s;
    Impl::sincos_turns<A>(m2, c, s);
    z0 = T(r * c);
    z1 = T(r * s);
  }
  /// Standard normal value i: element i % 2 of normal_pair(i / 2).
  template <class T>
  KOKKOS_INLINE_FUNCTION T normal(std::uint64_t i) const {
    T z0, z1;
    normal_pair<T>(i >> 1, z0, z1);
    return (i & 1) ? z1 : z0;
  }

  /// True with probability p: random_u32(i) < threshold, threshold = bernoulli_threshold(p).
  KOKKOS_INLINE_FUNCTION bool bernoulli(std::uint64_t i, std::uint64_t threshold) const {
    return std::uint64_t(random_u32(i)) < threshold;
  }

  /// Integer in [0, n), 1 <= n < 2^32: floor(random_u64(i) * n / 2^64) (bias < 2^-64 per value).
  KOKKOS_INLINE_FUNCTION std::uint32_t uniform_index(std::uint64_t i, std::uint32_t n) const {
    const std::uint64_t x = random_u64(i);
    // high 32 bits of the 96-bit product x * n, computed exactly in 64-bit pieces
    const std::uint64_t hi = (x >> 32) * n + (((x & 0xffffffffu) * n) >> 32);
    return std::uint32_t(hi >> 32);
  }
};

/// The integer threshold for Philox::bernoulli: round(p * 2^32), p clamped to [0, 1]. Host and device.
KOKKOS_INLINE_FUNCTION std::uint64_t bernoulli_threshold(double p) {
  if (!(p > 0)) return 0;
  if (p >= 1) return std::uint64_t(1) << 32;
  return std::uint64_t(p * 4294967296.0 + 0.5);
}

namespace Impl {
template <class V>
void check_fill(const char* op, const V& v) {
  static_assert(V::rank <= 4, "dcsldm::rng fills Views of rank 0..4");
  DCSLDM_REQUIRE(v.span_is_contiguous() && v.span() == v.size(), op, "View '", v.label(),
                 "' is not contiguous (size ", v.size(), ", span ", v.span(), ")");
}

/// Work item b writes values [W b, W b + W) of the flat View: W = 4 (float) or 2 (double) uniforms per
/// block, so every Philox block is computed once.
/// v[i] = fma(scale, u_i, lo): one rounding, whatever the compiler contracts.
template <class T>
struct FillUniform {
  T* p;
  std::size_t n;
  Philox g;
  accum_t<T> lo, scale;
  KOKKOS_INLINE_FUNCTION void operator()(const std::size_t b) const {
    if constexpr (sizeof(accum_t<T>) >= 8) {
      const U32x4 r = g.block(b);
      for (int k = 0; k < 2; ++k) {
        const std::size_t i = 2 * b + std::size_t(k);
        if (i < n) {
          const std::uint64_t x = std::uint64_t(r.v[2 * k]) | (std::uint64_t(r.v[2 * k + 1]) << 32);
          p[i] = T(math::fma(scale, accum_t<T>(double(x >> 11) * 1.1102230246251565404e-16), lo));
        }
      }
    } else {
      const U32x4 r = g.block(b);
      for (int k = 0; k < 4; ++k) {
        const std::size_t i = 4 * b + std::size_t(k);
        if (i < n) p[i] = T(math::fma(scale, float(r.v[k] >> 8) * 5.9604644775390625e-08f, lo));
      }
    }
  }
};

template <class T>
struct FillNormal {
  T* p;
  std::size_t n;
  Philox g;
  accum_t<T> mean, stddev;
  KOKKOS_INLINE_FUNCTION void operator()(const std::size_t k) const {
    accum_t<T> z0, z1;
    g.normal_pair<accum_t<T>>(k, z0, z1);
    p[2 * k] = T(math::fma(stddev, z0, mean));
    if (2 * k + 1 < n) p[2 * k + 1] = T(math::fma(stddev, z1, mean));
  }
};

template <class T>
struct FillBernoulli {
  T* p;
  Philox g;
  std::uint64_t threshold;
  T one, zero;
  KOKKOS_INLINE_FUNCTION void operator()(const std::size_t i) const { p[i] = g.bernoulli(i, threshold) ? one : zero; }
};

template <class T>
struct FillIndex {
  T* p;
  Philox g;
  std::uint32_t n;
  KOKKOS_INLINE_FUNCTION void operator()(const std::size_t i) const { p[i] = T(g.uniform_index(i, n)); }
};
}  // namespace Impl

/// v[i] = fma(hi - lo, u_i, lo) (one rounding in accum_t<T>), u_i = Philox{seed, stream}.uniform<T>(i) in
/// [0, 1), i the flat (row-major) index. v: contiguous View of rank 0..4, written (=). Values lie in
/// [lo, hi) up to the rounding of the affine map (which can give hi itself when |lo|, |hi| differ in
/// magnitude).
template <class ExecSpace, class V>
void fill_uniform(const ExecSpace& space, const V& v, std::uint64_t seed, std::uint64_t stream, double lo = 0,
                  double hi = 1) {
  using T = value_t<V>;
  Impl::check_fill("fill_uniform", v);
  const std::size_t n = v.size();
  if (n == 0) return;
  const std::size_t per = sizeof(accum_t<T>) >= 8 ? 2 : 4;
  Kokkos::parallel_for("dcsldm::fill_uniform",
                       Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<std::size_t>>(space, 0, (n + per - 1) / per),
                       Impl::FillUniform<T>{v.data(), n, Philox{seed, stream}, accum_t<T>(lo), accum_t<T>(hi - lo)});
}

/// v[i] = fma(stddev, z_i, mean) (one rounding in accum_t<T>), z_i = Philox{seed, stream}.normal<T>(i)
/// (Box-Muller, one block per pair).
/// v: contiguous View of rank 0..4, written (=).
template <class ExecSpace, class V>
void fill_normal(const ExecSpace& space, const V& v, std::uint64_t seed, std::uint64_t stream, double mean = 0,
                 double stddev = 1) {
  using T = value_t<V>;
  Impl::check_fill("fill_normal", v);
  const std::size_t n = v.size();
  if (n == 0) return;
  Kokkos::parallel_for("dcsldm::fill_normal",
                       Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<std::size_t>>(space, 0, (n + 1) / 2),
                       Impl::FillNormal<T>{v.data(), n, Philox{seed, stream}, accum_t<T>(mean), accum_t<T>(stddev)});
}

/// Bernoulli mask: v[i] = one with probability p, else zero (Philox{seed, stream}.bernoulli(i, .)).
/// v: contiguous View of rank 0..4, written (=). p must lie in [0, 1].
template <class ExecSpace, class V>
void fill_bernoulli(const ExecSpace& space, const V& v, std::uint64_t seed, std::uint64_t stream, double p,
                    value_t<V> one = value_t<V>(1), value_t<V> zero = value_t<V>(0)) {
  using T = value_t<V>;
  Impl::check_fill("fill_bernoulli", v);
  DCSLDM_REQUIRE(p >= 0 && p <= 1, "fill_bernoulli", "p = ", p, " is not in [0, 1]");
  if (v.size() == 0) return;
  Kokkos::parallel_for("dcsldm::fill_bernoulli",
                       Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<std::size_t>>(space, 0, v.size()),
                       Impl::FillBernoulli<T>{v.data(), Philox{seed, stream}, bernoulli_threshold(p), one, zero});
}

/// Inverted-dropout mask: v[i] = 1 / (1 - p_drop) with probability 1 - p_drop, else 0, so that
/// x * mask keeps the expectation of x (torch.nn.Dropout in training). p_drop in [0, 1).
template <class ExecSpace, class V>
void fill_dropout_mask(const ExecSpace& space, const V& v, std::uint64_t seed, std::uint64_t stream, double p_drop) {
  DCSLDM_REQUIRE(p_drop >= 0 && p_drop < 1, "fill_dropout_mask", "p_drop = ", p_drop, " is not in [0, 1)");
  fill_bernoulli(space, v, seed, stream, 1 - p_drop, value_t<V>(1 / (1 - p_drop)), value_t<V>(0));
}

/// v[i] = Philox{seed, stream}.uniform_index(i, n): integers in [0, n), 1 <= n < 2^32 (bias < 2^-64).
/// v: contiguous View of an integer (or floating) type, rank 0..4, written (=).
template <class ExecSpace, class V>
void fill_uniform_int(const ExecSpace& space, const V& v, std::uint64_t seed, std::uint64_t stream, std::int64_t n) {
  using T = value_t<V>;
  Impl::check_fill("fill_uniform_int", v);
  DCSLDM_REQUIRE(n >= 1 && n <= std::int64_t(0xffffffffu), "fill_uniform_int", "n = ", n,
                 " is not in [1, 2^32 - 1]");
  if (v.size() == 0) return;
  Kokkos::parallel_for("dcsldm::fill_uniform_int",
                       Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<std::size_t>>(space, 0, v.size()),
                       Impl::FillIndex<T>{v.data(), Philox{seed, stream}, std::uint32_t(n)});
}

/// A stable 64-bit stream id for a name (FNV-1a): e.g. one stream per parameter tensor, independent of
/// the order in which tensors were declared. Host only.
inline std::uint64_t stream_of(const std::string& name) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : name) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace dcsldm::rng
