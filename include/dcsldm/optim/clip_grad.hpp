// dcsldm/optim/clip_grad.hpp: global L2 gradient-norm clipping (torch.nn.utils.clip_grad_norm_ with
// norm_type = 2).
//
// Determinism: the norm is a Kokkos::parallel_reduce, which is deterministic for a fixed backend and
// thread count (each thread sums a fixed chunk in order, the partial sums are joined in a fixed order)
// but may differ in the last bits between thread counts or backends. Squares are summed in double.
#pragma once

#include <dcsldm/core/compat.hpp>
#include <dcsldm/core/error.hpp>
#include <dcsldm/core/fast_math.hpp>
#include <dcsldm/core/types.hpp>

#include <cmath>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace dcsldm::optim {

namespace Impl {
template <class T>
struct SumSquares {
  const T* g;
  KOKKOS_INLINE_FUNCTION void operator()(const std::size_t i, double& s) const {
    const double x = double(g[i]);
    s += x * x;
  }
};
#if defined(__AVX512F__)
/// SumSquares for float on host spaces: chunks of kChunk values, each summed in double on 4 x 8 lanes (fixed
/// order within a chunk, chunks joined by parallel_reduce). GCC leaves the functor's one double chain scalar
/// (4 cycles per value on its latency).
struct SumSquaresChunksAvx512 {
  static constexpr std::size_t kChunk = 4096;
  const float* g;
  std::size_t n;
  void operator()(const std::size_t c, double& s) const {
    const std::size_t i0 = c * kChunk, i1 = i0 + kChunk < n ? i0 + kChunk : n;
    __m512d acc[4] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd()};
    std::size_t i = i0;
    for (; i + 32 <= i1; i += 32) {
      const __m512 x0 = _mm512_loadu_ps(g + i), x1 = _mm512_loadu_ps(g + i + 16);
      const __m512d d0 = _mm512_cvtps_pd(_mm512_castps512_ps256(x0));
      const __m512d d1 = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x0), 1)));
      const __m512d d2 = _mm512_cvtps_pd(_mm512_castps512_ps256(x1));
      const __m512d d3 = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x1), 1)));
      acc[0] = _mm512_fmadd_pd(d0, d0, acc[0]);
      acc[1] = _mm512_fmadd_pd(d1, d1, acc[1]);
      acc[2] = _mm512_fmadd_pd(d2, d2, acc[2]);
      acc[3] = _mm512_fmadd_pd(d3, d3, acc[3]);
    }
    double t = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(acc[0], acc[1]), _mm512_add_pd(acc[2], acc[3])));
    for (; i < i1; ++i) t += double(g[i]) * double(g[i]);
    s += t;
  }
};
#endif
/// sum_i g_i^2 in double into `result` (a host double or a rank-0 View): the 16-lane chunks for float on host
/// spaces, the per-element functor elsewhere. Both public paths (with and without read-back) use it, so they agree
/// bit for bit.
template <class ExecSpace, class GV, class R>
void sum_squares(const ExecSpace& space, const GV& g, R&& result) {
  const std::size_t n = g.extent(0);
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<value_t<GV>, float> &&
                Kokkos::SpaceAccessibility<ExecSpace, Kokkos::HostSpace>::accessible) {
    using C = SumSquaresChunksAvx512;
    Kokkos::parallel_reduce("dcsldm::grad_norm_sq",
                            Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<std::size_t>>(space, 0, (n + C::kChunk - 1) / C::kChunk),
                            C{g.data(), n}, result);
    return;
  }
#endif
  Kokkos::parallel_reduce("dcsldm::grad_norm_sq", Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<std::size_t>>(space, 0, n),
                          SumSquares<value_t<GV>>{g.data()}, result);
}
template <class T>
struct ScaleBy {
  T* g;
  accum_t<T> f;
  KOKKOS_INLINE_FUNCTION void operator()(const std::size_t i) const { g[i] = T(f * accum_t<T>(g[i])); }
};
/// g *= min(1, max_norm / (sqrt(norm_sq()) + 1e-6)), the norm read from a device scalar.
template <class T, class NV>
struct ClipByNormSq {
  T* g;
  NV norm_sq;
  double max_norm;
  KOKKOS_INLINE_FUNCTION void operator()(const std::size_t i) const {
    const double f = math::min(1.0, max_norm / (math::sqrt(norm_sq()) + 1e-6));
    g[i] = T(accum_t<T>(f) * accum_t<T>(g[i]));
  }
};
template <class GV>
void check_grads(const char* op, const GV& g) {
  static_assert(GV::rank == 1, "gradient clipping works on the flat gradient buffer (rank 1)");
  DCSLDM_REQUIRE(g.span_is_contiguous(), op, "gradient View '", g.label(), "' is not contiguous");
}
}  // namespace Impl

/// norm_sq() = sum_i g_i^2 over the flat buffer `g` (N), written (=) into a rank-0 View of double in
/// the same memory space. Asynchronous: nothing is read back to the host.
template <class ExecSpace, class GV, class NV>
void grad_norm_sq(const ExecSpace& space, const GV& g, const NV& norm_sq) {
  Impl::check_grads("grad_norm_sq", g);
  static_assert(NV::rank == 0, "grad_norm_sq: the result is a rank-0 View<double>");
  Impl::sum_squares(space, g, norm_sq);
}

/// g *= min(1, max_norm / (sqrt(norm_sq()) + 1e-6)) with norm_sq from grad_norm_sq: the clipping step
/// without a host read-back (for device training loops).
template <class ExecSpace, class GV, class NV>
void clip_grad_by_norm_sq(const ExecSpace& space, const GV& g, const NV& norm_sq, double max_norm) {
  Impl::check_grads("clip_grad_by_norm_sq", g);
  DCSLDM_REQUIRE(max_norm > 0, "clip_grad_by_norm_sq", "max_norm = ", max_norm, " must be positive");
  if (g.extent(0) == 0) return;
  Kokkos::parallel_for("dcsldm::clip_grad_by_norm_sq",
                       Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<std::size_t>>(space, 0, g.extent(0)),
                       Impl::ClipByNormSq<value_t<GV>, NV>{g.data(), norm_sq, max_norm});
}

/// Returns ||g||_2 = sqrt(sum_i g_i^2) as a host double: this READS A SCALAR BACK (waits for `space`).
template <class ExecSpace, class GV>
double grad_norm_readback(const ExecSpace& space, const GV& g) {
  Impl::check_grads("grad_norm_readback", g);
  double s = 0;
  Impl::sum_squares(space, g, s);
  return std::sqrt(s);
}

/// torch.nn.utils.clip_grad_norm_(params, max_norm): total = ||g||_2 over the whole flat buffer,
/// g *= min(1, max_norm / (total + 1e-6)) in place; returns total (before clipping) as a host double.
/// This READS A SCALAR BACK (it waits for `space`); grad_norm_sq + clip_grad_by_norm_sq do the same
/// without the read-back.
template <class ExecSpace, class GV>
double clip_grad_norm_readback(const ExecSpace& space, const GV& g, double max_norm) {
  DCSLDM_REQUIRE(max_norm > 0, "clip_grad_norm_readback", "max_norm = ", max_norm, " must be positive");
  const double total = grad_norm_readback(space, g);
  const double f = std::fmin(1.0, max_norm / (total + 1e-6));
  if (g.extent(0) != 0 && accum_t<value_t<GV>>(f) != accum_t<value_t<GV>>(1))  // x * 1 = x: skip the pass
    Kokkos::parallel_for("dcsldm::clip_grad_scale",
                         Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<std::size_t>>(space, 0, g.extent(0)),
                         Impl::ScaleBy<value_t<GV>>{g.data(), accum_t<value_t<GV>>(f)});
  return total;
}

}  // namespace dcsldm::optim
