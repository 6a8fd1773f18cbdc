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

  /// Standard normal pair (z0, z1) from block k by Box-Muller (values 2k and 2k + 1 of normal()).
  template <class T>
  KOKKOS_INLINE_FUNCTION void normal_pair(std::uint64_t k, T& z0, T& z1) const {
    const U32x4 b = block(k);
    using A = accum_t<T>;
    A u1, u2;
    if constexpr (sizeof(A) >= 8) {
      const std::uint64_t x = std::uint64_t(b.v[0]) | (std::uint64_t(b.v[1]) << 32);
      const std::uint64_t y = std::uint64_t(b.v[2]) | (std::uint64_t(b.v[3]) << 32);
      u1 = A(double((x >> 11) + 1) * 1.1102230246251565404e-16);  // (0, 1]
      u2 = A(double(y >> 11) * 1.1102230246251565404e-16);        // [0, 1)
    } else {
      u1 = A(float((b.v[0] >> 8) + 1) * 5.9604644775390625e-08f);
      u2 = A(float(b.v[1] >> 8) * 5.9604644775390625e-08f);
    }
    const A r = math::sqrt(A(-2) * math::log(u1));
    const A theta = A(2) * math::pi_v<A> * u2;
    z0 = T(r * math::cos(theta));
    z1 = T(r * math::sin(theta));
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
          p[i] = T(lo + scale * accum_t<T>(double(x >> 11) * 1.1102230246251565404e-16));
        }
      }
    } else {
      const U32x4 r = g.block(b);
      for (int k = 0; k < 4; ++k) {
        const std::size_t i = 4 * b + std::size_t(k);
        if (i < n) p[i] = T(lo + scale * (float(r.v[k] >> 8) * 5.9604644775390625e-08f));
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
    p[2 * k] = T(mean + stddev * z0);
    if (2 * k + 1 < n) p[2 * k + 1] = T(mean + stddev * z1);
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

/// v[i] = lo + (hi - lo) * u_i, u_i = Philox{seed, stream}.uniform<T>(i) in [0, 1), i the flat
/// (row-major) index. v: contiguous View of rank 0..4, written (=). Values lie in [lo, hi) up to the
/// rounding of the affine map (which can give hi itself when |lo|, |hi| differ in magnitude).
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

/// v[i] = mean + stddev * z_i, z_i = Philox{seed, stream}.normal<T>(i) (Box-Muller, one block per pair).
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
