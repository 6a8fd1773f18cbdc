// dcsldm/core/fast_math.hpp: float exp and tanh built from adds and multiplies only (no libm calls),
// for the elementwise hot paths (GELU-tanh in every MLP). Plain multiply-adds (a compiler may contract
// them into fmas, so the last bit may differ between backends; same backend, same bits), inlinable and
// branch-free, so a loop over them vectorises (unlike libm's tanhf (expm1f), which dominated the
// tokenizer's training profile: 29 % of a step at 1 thread). GCC vectorises the selects only without
// trapping-math (dcsldm's CMake target adds -fno-trapping-math; docs/performance.md).
//
// exp: x = k ln2 + r (Cody-Waite, two-part ln2), k = round-to-nearest(x / ln2) by the 1.5 * 2^23 trick (no
// floor call), |r| <= ln2/2, exp(r) by a degree-7 Taylor polynomial (truncation < 2e-9 relative), scaled
// by 2^k built from its exponent bits. Max error measured over [-87, 88]: about 2 ulp
// (tests/core/test_fast_math.cpp). Arguments are clamped to [-87.3, 88.3].
// tanh: sign(u) (1 - 2 / (exp(2|u|) + 1)) for |u| >= 0.35; an odd Taylor polynomial of degree 11 below
// (relative error < 2e-8 there), so small arguments keep full relative precision. Both are computed and
// one is selected (no branch).
#pragma once

#include <dcsldm/core/compat.hpp>

#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace dcsldm::math {

KOKKOS_INLINE_FUNCTION float fast_exp(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
  // k = round(x / ln2): adding 1.5 * 2^23 leaves the integer part in the mantissa (|x / ln2| < 2^22).
  const float shifted = x * 1.44269504088896341f + 12582912.0f;
  const float k = shifted - 12582912.0f;
  float r = (-k * 0.693145751953125f + x);  // ln2 high part (exact product)
  r = (-k * 1.428606765330187045e-06f + r);  // ln2 low part
  float p = 1.0f / 5040.0f;
  p = (p * r + 1.0f / 720.0f);
  p = (p * r + 1.0f / 120.0f);
  p = (p * r + 1.0f / 24.0f);
  p = (p * r + 1.0f / 6.0f);
  p = (p * r + 0.5f);
  p = (p * r + 1.0f);
  p = (p * r + 1.0f);
  // 2^k from its exponent bits. A union, not memcpy: std::memcpy is host-only under HIP; GCC, Clang, nvcc
  // and hipcc all define union type punning.
  union {
    std::int32_t i;
    float f;
  } two_k;
  two_k.i = (std::int32_t(k) + 127) << 23;
  return p * two_k.f;
}

#if defined(__AVX512F__)
/// Mask of the first n of 16 lanes (n <= 0: none, n >= 16: all): the tail of a row of n values.
inline __mmask16 lane_mask(int n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n > 0 ? n : 0)) - 1u); }

/// fast_exp on 16 lanes (host, AVX-512F): the same clamp, reduction and polynomial, with fused multiply-adds.
inline __m512 fast_exp_avx512(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
  const __m512 shifted = _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), _mm512_set1_ps(12582912.0f));
  const __m512 k = _mm512_sub_ps(shifted, _mm512_set1_ps(12582912.0f));
  __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(k, _mm512_set1_ps(1.428606765330187045e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(k), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}
#endif

KOKKOS_INLINE_FUNCTION float fast_tanh(float u) {
  const float a = u < 0 ? -u : u;
  const float u2 = u * u;
  // tanh u = u - u^3/3 + 2u^5/15 - 17u^7/315 + 62u^9/2835 - 1382u^11/155925
  float p = -1382.0f / 155925.0f;
  p = (p * u2 + 62.0f / 2835.0f);
  p = (p * u2 + -17.0f / 315.0f);
  p = (p * u2 + 2.0f / 15.0f);
  p = (p * u2 + -1.0f / 3.0f);
  const float small = (p * u2 * u + u);
  const float big = 1.0f - 2.0f / (fast_exp(2.0f * a) + 1.0f);
  const float signed_big = u < 0 ? -big : big;
  return a < 0.35f ? small : signed_big;
}

#if defined(__AVX512F__)
/// fast_tanh on 16 lanes (host, AVX-512F): the same polynomial below 0.35 and the same exp form above.
inline __m512 fast_tanh_avx512(__m512 u) {
  const __m512 a = _mm512_abs_ps(u);
  const __m512 u2 = _mm512_mul_ps(u, u);
  __m512 p = _mm512_set1_ps(-1382.0f / 155925.0f);
  p = _mm512_fmadd_ps(p, u2, _mm512_set1_ps(62.0f / 2835.0f));
  p = _mm512_fmadd_ps(p, u2, _mm512_set1_ps(-17.0f / 315.0f));
  p = _mm512_fmadd_ps(p, u2, _mm512_set1_ps(2.0f / 15.0f));
  p = _mm512_fmadd_ps(p, u2, _mm512_set1_ps(-1.0f / 3.0f));
  const __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(p, u2), u, u);
  const __m512 e = fast_exp_avx512(_mm512_add_ps(a, a));
  const __m512 big = _mm512_sub_ps(_mm512_set1_ps(1.0f),
                                   _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))));
  // sign of u onto big (big >= 0), then the small-|u| form where |u| < 0.35
  const __m512 signed_big = _mm512_castsi512_ps(_mm512_or_si512(
      _mm512_castps_si512(big), _mm512_and_si512(_mm512_castps_si512(u), _mm512_set1_epi32(int(0x80000000u)))));
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, _mm512_set1_ps(0.35f), _CMP_LT_OQ), signed_big, small);
}
#endif

/// exp in the accumulation type: the fast float version for float (softmax weights in the attention
/// kernels), libm for double.
template <class A>
KOKKOS_INLINE_FUNCTION A exp_acc(A x) {
  if constexpr (sizeof(A) == sizeof(float)) return fast_exp(x);
  else return math::exp(x);
}

/// tanh in the accumulation type: the fast float version for float, libm for double.
template <class A>
KOKKOS_INLINE_FUNCTION A tanh_acc(A u) {
  if constexpr (sizeof(A) == sizeof(float)) return fast_tanh(u);
  else return math::tanh(u);
}

}  // namespace dcsldm::math
