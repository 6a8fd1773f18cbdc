// dcsldm/core/compat.hpp: every difference between Kokkos 3.4.1 and Kokkos 4.x that dcsldm touches.
//
// The rest of the library writes only to the API that both share, plus what this header provides.
// Measured differences (see docs/design.md, "Kokkos versions"):
//   - math functions live in Kokkos::Experimental (3.4) or Kokkos (>= 3.7, Experimental removed in 4);
//     3.4 lacks abs (real), min, max, fma (math::fma here calls ::fmaf / ::fma), rsqrt;
//     Kokkos::log2(double) on 3.4 calls an integer helper;
//   - fence(label) is 3.5+;
//   - the HIP execution space is Kokkos::Experimental::HIP in 3.4 and Kokkos::HIP in 4.x;
//   - half_t is plain float on non-CUDA builds of 3.4 (KOKKOS_HALF_T_IS_FLOAT).
#pragma once

#include <Kokkos_Core.hpp>

#include <cmath>
#include <type_traits>

#if KOKKOS_VERSION >= 30700
#define DCSLDM_KOKKOS_MATH_NS Kokkos
#else
#define DCSLDM_KOKKOS_MATH_NS Kokkos::Experimental
#endif

namespace dcsldm {

/// Device-callable math: one spelling for Kokkos 3.4 and 4.x. Use these, never std:: in kernels.
namespace math {

#define DCSLDM_IMPL_UNARY(name)                                                   \
  template <class T>                                                              \
  KOKKOS_INLINE_FUNCTION auto name(T x) { return DCSLDM_KOKKOS_MATH_NS::name(x); }
DCSLDM_IMPL_UNARY(exp)
DCSLDM_IMPL_UNARY(expm1)
DCSLDM_IMPL_UNARY(log)
DCSLDM_IMPL_UNARY(log1p)
DCSLDM_IMPL_UNARY(sqrt)
DCSLDM_IMPL_UNARY(tanh)
DCSLDM_IMPL_UNARY(erf)
DCSLDM_IMPL_UNARY(sin)
DCSLDM_IMPL_UNARY(cos)
DCSLDM_IMPL_UNARY(floor)
DCSLDM_IMPL_UNARY(ceil)
DCSLDM_IMPL_UNARY(fabs)
#undef DCSLDM_IMPL_UNARY

template <class T>
KOKKOS_INLINE_FUNCTION auto pow(T x, T y) {
  return DCSLDM_KOKKOS_MATH_NS::pow(x, y);
}
template <class T>
KOKKOS_INLINE_FUNCTION constexpr T abs(T x) {
  return x < T(0) ? -x : x;
}
template <class T>
KOKKOS_INLINE_FUNCTION constexpr T min(T a, T b) {
  return b < a ? b : a;
}
template <class T>
KOKKOS_INLINE_FUNCTION constexpr T max(T a, T b) {
  return a < b ? b : a;
}
template <class T>
KOKKOS_INLINE_FUNCTION constexpr T clamp(T x, T lo, T hi) {
  return x < lo ? lo : (hi < x ? hi : x);
}
/// log2 through log: Kokkos 3.4's log2(double) silently calls an integer helper.
template <class T>
KOKKOS_INLINE_FUNCTION T log2(T x) {
  return DCSLDM_KOKKOS_MATH_NS::log(x) / T(0.69314718055994530942);
}
template <class T>
KOKKOS_INLINE_FUNCTION T rsqrt(T x) {
  return T(1) / DCSLDM_KOKKOS_MATH_NS::sqrt(x);
}
template <class T>
inline constexpr T pi_v = T(3.14159265358979323846);

/// Fused multiply-add: a * b + c with ONE rounding (IEEE 754 fusedMultiplyAdd), through ::fmaf / ::fma,
/// which are correctly rounded on the host (glibc) and device-callable on CUDA and HIP. Write with it every
/// multiply-add whose bits must not depend on the compiler: a plain `a * b + c` may be contracted into an
/// fma or not (nvcc contracts by default; GCC does with -ffp-contract=fast and FMA hardware), which
/// changes the last bit. (Kokkos 3.4 has no fma.)
KOKKOS_INLINE_FUNCTION float fma(float a, float b, float c) { return ::fmaf(a, b, c); }
KOKKOS_INLINE_FUNCTION double fma(double a, double b, double c) { return ::fma(a, b, c); }

}  // namespace math

namespace compat {

/// Fence an execution-space instance; the label is used where the Kokkos version supports it.
template <class ExecSpace>
inline void fence(const ExecSpace& space, const char* label) {
#if KOKKOS_VERSION >= 30500
  space.fence(label);
#else
  (void)label;
  space.fence();
#endif
}

/// Host copy of a View (allocates and copies; for I/O and tests, never for hot paths).
template <class View>
auto to_host(const View& v) {
  return Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
}

/// True when the execution space runs on the host (Serial, OpenMP, Threads).
template <class ExecSpace>
inline constexpr bool is_host_space_v =
    Kokkos::SpaceAccessibility<Kokkos::HostSpace, typename ExecSpace::memory_space>::accessible;

}  // namespace compat

// The HIP execution space under both spellings.
#if defined(KOKKOS_ENABLE_HIP)
#if KOKKOS_VERSION >= 40000
using HipSpace = Kokkos::HIP;
#else
using HipSpace = Kokkos::Experimental::HIP;
#endif
#endif

}  // namespace dcsldm
