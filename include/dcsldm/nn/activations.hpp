// dcsldm/nn/activations.hpp: elementwise activations with their backward passes.
//
// Matches torch.nn.functional.gelu (approximate='none' | 'tanh'), torch.nn.functional.silu, and the
// SwiGLU gate of Shazeer, "GLU Variants Improve Transformer" (2020) as written in PyTorch:
//   a, b = x.chunk(2, dim=-1); y = F.silu(a) * b
// i.e. the FIRST half of the last dimension is the gate (goes through SiLU), the SECOND half is the value.
// All functions take rank-2 Views (rows, cols) with unit inner stride; a (B, T, C) tensor is passed as
// an unmanaged (B*T, C) View over the same memory.
#pragma once

#include <dcsldm/core/compat.hpp>
#include <dcsldm/core/elementwise.hpp>
#include <dcsldm/core/fast_math.hpp>
#include <dcsldm/core/error.hpp>
#include <dcsldm/core/types.hpp>
#include <dcsldm/nn/linear.hpp>
#include <string>

namespace dcsldm::nn {

/// Which GELU formula to use (runtime configuration).
///   Erf:  gelu(x) = x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2)))             torch approximate='none'
///   Tanh: gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))      torch approximate='tanh'
enum class GeluKind { Erf, Tanh };

/// The name table (serialization): the strings are PyTorch's `approximate` argument.
inline const char* gelu_kind_name(GeluKind k) { return k == GeluKind::Erf ? "none" : "tanh"; }
/// Inverse of gelu_kind_name; throws dcsldm::Error on an unknown name.
inline GeluKind gelu_kind_from_name(const std::string& s) {
  if (s == "none") return GeluKind::Erf;
  if (s == "tanh") return GeluKind::Tanh;
  detail::fail("gelu_kind_from_name", "unknown GELU kind '", s, "' (expected 'none' or 'tanh')");
}

namespace Impl {

/// gelu(x) of kind K, in the accumulation type A.
template <GeluKind K, class A>
KOKKOS_INLINE_FUNCTION A gelu_value(A x) {
  if constexpr (K == GeluKind::Erf) {
    return A(0.5) * x * (A(1) + math::erf(x * A(0.70710678118654752440)));
  } else {
    const A u = A(0.79788456080286535588) * (x + A(0.044715) * x * x * x);
    return A(0.5) * x * (A(1) + math::tanh_acc(u));
  }
}

/// d gelu / dx of kind K.
template <GeluKind K, class A>
KOKKOS_INLINE_FUNCTION A gelu_grad(A x) {
  if constexpr (K == GeluKind::Erf) {
    // Phi(x) + x phi(x), phi(x) = exp(-x^2/2) / sqrt(2 pi)
    const A cdf = A(0.5) * (A(1) + math::erf(x * A(0.70710678118654752440)));
    const A pdf = A(0.39894228040143267794) * math::exp(A(-0.5) * x * x);
    return cdf + x * pdf;
  } else {
    const A k0 = A(0.79788456080286535588), k1 = A(0.044715);
    const A t = math::tanh_acc(k0 * (x + k1 * x * x * x));
    return A(0.5) * (A(1) + t) + A(0.5) * x * (A(1) - t * t) * k0 * (A(1) + A(3) * k1 * x * x);
  }
}

/// The same with the kind chosen at run time (one branch per call: not for inner loops).
template <class A>
KOKKOS_INLINE_FUNCTION A gelu_value(A x, GeluKind kind) {
  return kind == GeluKind::Erf ? gelu_value<GeluKind::Erf>(x) : gelu_value<GeluKind::Tanh>(x);
}
template <class A>
KOKKOS_INLINE_FUNCTION A gelu_grad(A x, GeluKind kind) {
  return kind == GeluKind::Erf ? gelu_grad<GeluKind::Erf>(x) : gelu_grad<GeluKind::Tanh>(x);
}

/// y(i, j) = gelu_K(x(i, j) [+ b(j)]): the kind and the bias are compile-time, so the inner loop has no
/// branch and vectorises on the host.
template <GeluKind K, bool Bias, class XV, class BV, class YV>
struct GeluForwardOp {
  XV x;
  BV b;
  YV y;
  KOKKOS_INLINE_FUNCTION void operator()(const int i, const int j) const {
    using A = accum_t<value_t<YV>>;
    A v = A(x(i, j));
    if constexpr (Bias) v += A(b(j));
    y(i, j) = value_t<YV>(gelu_value<K>(v));
  }
};
/// dx(i, j) = dy(i, j) * gelu_K'(x(i, j) [+ b(j)]).
template <GeluKind K, bool Bias, class DYV, class XV, class BV, class DXV>
struct GeluBackwardOp {
  DYV dy;
  XV x;
  BV b;
  DXV dx;
  KOKKOS_INLINE_FUNCTION void operator()(const int i, const int j) const {
    using A = accum_t<value_t<DXV>>;
    A v = A(x(i, j));
    if constexpr (Bias) v += A(b(j));
    dx(i, j) = value_t<DXV>(A(dy(i, j)) * gelu_grad<K>(v));
  }
};

#if defined(__AVX512F__)
/// tanh-GELU of 16 lanes and its derivative (host, float). 0.5 x (1 + tanh(u)) = x sigmoid(2u) with
/// u = k0 (x + k1 x^3): one exp and one division, s = 1 / (1 + exp(-2u)), gelu = x / (1 + exp(-2u)) and
/// d gelu / dx = s + x s (1 - s) 2 k0 (1 + 3 k1 x^2). About 1.7x fewer cycles than through fast_tanh (whose
/// small-|u| polynomial and exp form both run on every lane) and within ~1e-6 relative of the double formula.
/// -2u is capped at 80 so that s stays a normal float (no denormal assists): gelu(x) for x below about -9.6 is
/// ~1e-34 x instead of ~0. grad (if not null) receives the derivative.
inline __m512 gelu_tanh_avx512(__m512 x, __m512* grad) {
  const __m512 k0 = _mm512_set1_ps(0.79788456080286535588f), k1 = _mm512_set1_ps(0.044715f);
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 x2 = _mm512_mul_ps(x, x);
  const __m512 u = _mm512_mul_ps(k0, _mm512_fmadd_ps(_mm512_mul_ps(k1, x2), x, x));
  const __m512 e = math::fast_exp_avx512(_mm512_min_ps(_mm512_mul_ps(_mm512_set1_ps(-2.0f), u), _mm512_set1_ps(80.0f)));
  const __m512 den = _mm512_add_ps(one, e);
  if (grad) {
    const __m512 sg = _mm512_div_ps(one, den);
    const __m512 du =
        _mm512_mul_ps(_mm512_set1_ps(2.0f), _mm512_mul_ps(k0, _mm512_fmadd_ps(_mm512_set1_ps(3.0f * 0.044715f), x2, one)));
    *grad = _mm512_fmadd_ps(_mm512_mul_ps(x, _mm512_mul_ps(sg, _mm512_sub_ps(one, sg))), du, sg);  // s + x s (1-s) 2u'
    return _mm512_mul_ps(x, sg);
  }
  return _mm512_div_ps(x, den);
}

/// Host rows of tanh-GELU (forward: y = gelu(x [+ b]); backward: dx = dy * gelu'(x [+ b])) on raw rows,
/// 16 lanes at a time (GCC does not vectorise the per-element functor's tanh through View indexing here).
template <bool Bias, bool Backward>
struct GeluTanhRowsAvx512 {
  const float* x;
  const float* b;
  const float* dy;  // backward only
  float* y;         // y (forward) or dx (backward)
  std::size_t ldx, ldy, lddy;
  int n;
  void operator()(const int i) const {
    const float* xr = x + std::size_t(i) * ldx;
    const float* dyr = Backward ? dy + std::size_t(i) * lddy : nullptr;
    float* yr = y + std::size_t(i) * ldy;
    for (int j = 0; j < n; j += 16) {
      const __mmask16 m = math::lane_mask(n - j);
      __m512 v = _mm512_maskz_loadu_ps(m, xr + j);
      if constexpr (Bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, b + j));
      if constexpr (Backward) {
        __m512 g;
        gelu_tanh_avx512(v, &g);
        _mm512_mask_storeu_ps(yr + j, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dyr + j), g));
      } else {
        _mm512_mask_storeu_ps(yr + j, m, gelu_tanh_avx512(v, nullptr));
      }
    }
  }
};

/// Runs the AVX-512 rows when they apply (host space, float Views with unit inner stride, tanh kind); false
/// otherwise.
template <bool Bias, bool Backward, class ExecSpace, class DYV, class XV, class BV, class YV>
bool gelu_tanh_avx512_rows(const char* name, const ExecSpace& space, const DYV& dy, const XV& x, const BV& b,
                           const YV& y) {
  if constexpr (Kokkos::SpaceAccessibility<ExecSpace, Kokkos::HostSpace>::accessible &&
                std::is_same_v<value_t<XV>, float> && std::is_same_v<value_t<YV>, float> &&
                std::is_same_v<value_t<DYV>, float>) {
    if (x.stride(1) != 1 || y.stride(1) != 1 || (Backward && dy.stride(1) != 1) || (Bias && b.stride(0) != 1))
      return false;
    Kokkos::parallel_for(name, Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<int>>(space, 0, int(y.extent(0))),
                         GeluTanhRowsAvx512<Bias, Backward>{x.data(), Bias ? b.data() : nullptr,
                                                           Backward ? dy.data() : nullptr, y.data(),
                                                           std::size_t(x.stride(0)), std::size_t(y.stride(0)),
                                                           Backward ? std::size_t(dy.stride(0)) : 0,
                                                           int(y.extent(1))});
    return true;
  } else {
    (void)name, (void)space, (void)dy, (void)x, (void)b, (void)y;
    return false;
  }
}
#endif

template <bool Bias, class ExecSpace, class XV, class BV, class YV>
void launch_gelu_forward(const char* name, const ExecSpace& space, const XV& x, const BV& b, GeluKind kind,
                         const YV& y) {
  const int m = int(y.extent(0)), n = int(y.extent(1));
#if defined(__AVX512F__)
  if (kind == GeluKind::Tanh && gelu_tanh_avx512_rows<Bias, false>(name, space, y, x, b, y)) return;
#endif
  if (kind == GeluKind::Tanh)
    for_each_2d(name, space, m, n, GeluForwardOp<GeluKind::Tanh, Bias, XV, BV, YV>{x, b, y});
  else
    for_each_2d(name, space, m, n, GeluForwardOp<GeluKind::Erf, Bias, XV, BV, YV>{x, b, y});
}
template <bool Bias, class ExecSpace, class DYV, class XV, class BV, class DXV>
void launch_gelu_backward(const char* name, const ExecSpace& space, const DYV& dy, const XV& x, const BV& b,
                          GeluKind kind, const DXV& dx) {
  const int m = int(dx.extent(0)), n = int(dx.extent(1));
#if defined(__AVX512F__)
  if (kind == GeluKind::Tanh && gelu_tanh_avx512_rows<Bias, true>(name, space, dy, x, b, dx)) return;
#endif
  if (kind == GeluKind::Tanh)
    for_each_2d(name, space, m, n, GeluBackwardOp<GeluKind::Tanh, Bias, DYV, XV, BV, DXV>{dy, x, b, dx});
  else
    for_each_2d(name, space, m, n, GeluBackwardOp<GeluKind::Erf, Bias, DYV, XV, BV, DXV>{dy, x, b, dx});
}
/// The bias type of the bias-free launches (never read).
template <class V>
using NoBias = Kokkos::View<const value_t<V>*, typename V::memory_space>;

/// silu(x) = x * sigmoid(x).
template <class A>
KOKKOS_INLINE_FUNCTION A sigmoid(A x) {
  // Stable for both signs: exp of a non-positive argument only.
  if (x >= A(0)) return A(1) / (A(1) + math::exp(-x));
  const A e = math::exp(x);
  return e / (A(1) + e);
}
template <class A>
KOKKOS_INLINE_FUNCTION A silu_value(A x) {
  return x * sigmoid(x);
}
/// d silu / dx = s (1 + x (1 - s)), s = sigmoid(x).
template <class A>
KOKKOS_INLINE_FUNCTION A silu_grad(A x) {
  const A s = sigmoid(x);
  return s * (A(1) + x * (A(1) - s));
}

template <class V1, class V2>
void require_same_shape(const char* op, const char* n1, const V1& a, const char* n2, const V2& b) {
  DCSLDM_REQUIRE(a.extent(0) == b.extent(0) && a.extent(1) == b.extent(1), op, n1, " is (", a.extent(0), ", ",
                 a.extent(1), ") but ", n2, " is (", b.extent(0), ", ", b.extent(1), ")");
}

template <class ExecSpace>
using Range2 = Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<2>, Kokkos::IndexType<int>>;

template <class ExecSpace, class V>
Range2<ExecSpace> range2(const ExecSpace& space, const V& v) {
  return Range2<ExecSpace>(space, {0, 0}, {int(v.extent(0)), int(v.extent(1))});
}

}  // namespace Impl

/// GELU forward: y = gelu(x), elementwise. x, y (M, N); y is written (=). y may alias x.
template <class ExecSpace, class XV, class YV>
void gelu_forward(const ExecSpace& space, const XV& x, GeluKind kind, const YV& y) {
  static_assert(XV::rank == 2 && YV::rank == 2, "gelu_forward takes rank-2 Views");
  Impl::require_same_shape("gelu_forward", "x", x, "y", y);
  Impl::launch_gelu_forward<false>("dcsldm::gelu_forward", space, x, Impl::NoBias<YV>(), kind, y);
}

/// GELU backward: dx = dy * gelu'(x), elementwise. dy, x, dx (M, N); dx is written (=), may alias dy.
template <class ExecSpace, class DYV, class XV, class DXV>
void gelu_backward(const ExecSpace& space, const DYV& dy, const XV& x, GeluKind kind, const DXV& dx) {
  static_assert(DYV::rank == 2 && XV::rank == 2 && DXV::rank == 2, "gelu_backward takes rank-2 Views");
  Impl::require_same_shape("gelu_backward", "dy", dy, "x", x);
  Impl::require_same_shape("gelu_backward", "dx", dx, "x", x);
  Impl::launch_gelu_backward<false>("dcsldm::gelu_backward", space, dy, x, Impl::NoBias<DXV>(), kind, dx);
}

/// Fused bias + GELU forward (the MLP hot path): y(i, j) = gelu(x(i, j) + b(j)).
/// x, y (M, N), b (N); y is written (=) and may alias x.
template <class ExecSpace, class XV, class BV, class YV>
void bias_gelu_forward(const ExecSpace& space, const XV& x, const BV& b, GeluKind kind, const YV& y) {
  static_assert(XV::rank == 2 && BV::rank == 1 && YV::rank == 2, "bias_gelu_forward: x, y rank 2, b rank 1");
  Impl::require_same_shape("bias_gelu_forward", "x", x, "y", y);
  DCSLDM_REQUIRE(b.extent(0) == x.extent(1), "bias_gelu_forward", "b.extent(0) = ", b.extent(0),
                 " != x.extent(1) = ", x.extent(1));
  Impl::launch_gelu_forward<true>("dcsldm::bias_gelu_forward", space, x, b, kind, y);
}

/// Fused bias + GELU backward: dx(i, j) = dy(i, j) * gelu'(x(i, j) + b(j)) is written (=);
/// db(j) += sum_i dx(i, j) accumulates. x is the input of bias_gelu_forward (without the bias).
/// dy, x, dx (M, N), b, db (N); dx may alias dy.
template <class ExecSpace, class DYV, class XV, class BV, class DXV, class DBV>
void bias_gelu_backward(const ExecSpace& space, const DYV& dy, const XV& x, const BV& b, const DBV& db, GeluKind kind,
                        const DXV& dx) {
  static_assert(DYV::rank == 2 && XV::rank == 2 && DXV::rank == 2 && BV::rank == 1 && DBV::rank == 1,
                "bias_gelu_backward: dy, x, dx rank 2, b, db rank 1");
  Impl::require_same_shape("bias_gelu_backward", "dy", dy, "x", x);
  Impl::require_same_shape("bias_gelu_backward", "dx", dx, "x", x);
  DCSLDM_REQUIRE(b.extent(0) == x.extent(1) && db.extent(0) == x.extent(1), "bias_gelu_backward",
                 "b.extent(0) = ", b.extent(0), ", db.extent(0) = ", db.extent(0),
                 ", expected x.extent(1) = ", x.extent(1));
  Impl::launch_gelu_backward<true>("dcsldm::bias_gelu_backward", space, dy, x, b, kind, dx);
  Impl::column_sum_accumulate("dcsldm::bias_gelu_backward_bias", space, dx, db);
}

/// SiLU forward: y = x * sigmoid(x), elementwise. x, y (M, N); y is written (=), may alias x.
template <class ExecSpace, class XV, class YV>
void silu_forward(const ExecSpace& space, const XV& x, const YV& y) {
  static_assert(XV::rank == 2 && YV::rank == 2, "silu_forward takes rank-2 Views");
  Impl::require_same_shape("silu_forward", "x", x, "y", y);
  using A = accum_t<value_t<YV>>;
  using T = value_t<YV>;
  for_each_2d("dcsldm::silu_forward", space, int(y.extent(0)), int(y.extent(1)),
              KOKKOS_LAMBDA(int i, int j) { y(i, j) = T(Impl::silu_value(A(x(i, j)))); });
}

/// SiLU backward: dx = dy * sigmoid(x) (1 + x (1 - sigmoid(x))). dy, x, dx (M, N); dx is written (=).
template <class ExecSpace, class DYV, class XV, class DXV>
void silu_backward(const ExecSpace& space, const DYV& dy, const XV& x, const DXV& dx) {
  static_assert(DYV::rank == 2 && XV::rank == 2 && DXV::rank == 2, "silu_backward takes rank-2 Views");
  Impl::require_same_shape("silu_backward", "dy", dy, "x", x);
  Impl::require_same_shape("silu_backward", "dx", dx, "x", x);
  using A = accum_t<value_t<DXV>>;
  using T = value_t<DXV>;
  for_each_2d("dcsldm::silu_backward", space, int(dx.extent(0)), int(dx.extent(1)),
              KOKKOS_LAMBDA(int i, int j) { dx(i, j) = T(A(dy(i, j)) * Impl::silu_grad(A(x(i, j)))); });
}

/// SwiGLU gate forward: y(i, j) = silu(x(i, j)) * x(i, H + j) for j < H.
/// x (M, 2H): first half = gate a, second half = value b (torch: `a, b = x.chunk(2, -1)`); y (M, H),
/// written (=).
template <class ExecSpace, class XV, class YV>
void swiglu_forward(const ExecSpace& space, const XV& x, const YV& y) {
  static_assert(XV::rank == 2 && YV::rank == 2, "swiglu_forward takes rank-2 Views");
  DCSLDM_REQUIRE(x.extent(0) == y.extent(0) && x.extent(1) == 2 * y.extent(1), "swiglu_forward", "x is (", x.extent(0),
                 ", ", x.extent(1), "), y is (", y.extent(0), ", ", y.extent(1), "); expected x (M, 2H) and y (M, H)");
  using A = accum_t<value_t<YV>>;
  using T = value_t<YV>;
  const int h = int(y.extent(1));
  for_each_2d("dcsldm::swiglu_forward", space, int(y.extent(0)), int(y.extent(1)),
              KOKKOS_LAMBDA(int i, int j) { y(i, j) = T(Impl::silu_value(A(x(i, j))) * A(x(i, h + j))); });
}

/// SwiGLU gate backward. dy (M, H), x (M, 2H) as given to forward; dx (M, 2H) is written (=):
///   dx(i, j)     = dy(i, j) * x(i, H + j) * silu'(x(i, j))     (gate half)
///   dx(i, H + j) = dy(i, j) * silu(x(i, j))                    (value half)
template <class ExecSpace, class DYV, class XV, class DXV>
void swiglu_backward(const ExecSpace& space, const DYV& dy, const XV& x, const DXV& dx) {
  static_assert(DYV::rank == 2 && XV::rank == 2 && DXV::rank == 2, "swiglu_backward takes rank-2 Views");
  DCSLDM_REQUIRE(x.extent(0) == dy.extent(0) && x.extent(1) == 2 * dy.extent(1), "swiglu_backward", "x is (",
                 x.extent(0), ", ", x.extent(1), "), dy is (", dy.extent(0), ", ", dy.extent(1),
                 "); expected x (M, 2H) and dy (M, H)");
  Impl::require_same_shape("swiglu_backward", "dx", dx, "x", x);
  using A = accum_t<value_t<DXV>>;
  using T = value_t<DXV>;
  const int h = int(dy.extent(1));
  for_each_2d("dcsldm::swiglu_backward", space, int(dy.extent(0)), int(dy.extent(1)),
              KOKKOS_LAMBDA(int i, int j) {
        const A a = A(x(i, j)), b = A(x(i, h + j)), g = A(dy(i, j));
        dx(i, j) = T(g * b * Impl::silu_grad(a));
        dx(i, h + j) = T(g * Impl::silu_value(a));
      });
}

}  // namespace dcsldm::nn
