// dcsldm/nn/attention_fused_host.hpp: the attention core (scores, masked softmax, weighted values and
// their backward) as one work item per (batch entry, head), for host execution spaces with a CBLAS.
//
// attention.hpp's blocked path runs the core as batched GEMMs over all (b, h) per query block, with
// separate kernels for the head split/merge, the softmax, the row dots and the softmax backward: right for
// a GPU, but on a CPU every intermediate then makes a round trip through memory, and those passes cost more
// than the small products themselves (docs/performance.md). Here one work item owns one (b, h) and runs
// all of its query blocks: single-threaded products on its head's columns of the merged (B*T, E) projections
// (leading dimension E, so there is no split or merge; the host AVX-512 GEMM where it is compiled, which at
// these 32 x 32 x 32 sizes beats a call into OpenBLAS, else the CBLAS), the softmax and its backward on
// the block's rows while they are in cache (float rows on 16 lanes with AVX-512, the lane masks of the
// level-causal kinds from one gather of the keys' levels). Scores live in the workspace's (B*H, block, Tk)
// rows of that (b, h), as in the blocked path, so the memory bound is the same. (A register-resident forward
// for <= 64 keys, 4 query rows at a time, measured no faster at the DiT's 32 x 32 heads: 26.6 vs 24.4 us per
// sampling-step call; not kept.)
//
// Same formulas as attention.hpp (forward: p = softmax(scale q k^T + mask), o = p V, lse saved; backward:
// p recomputed from lse, dV += p^T dO, dP = dO V^T, D = rowsum(dO * O), dS = p (dP - D),
// dQ = scale dS K, dK += scale dS^T Q). Deterministic: every output element is written by one work item
// in a fixed order.
#pragma once

#include <cstddef>
#include <dcsldm/core/compat.hpp>
#include <dcsldm/core/fast_math.hpp>
#include <dcsldm/core/types.hpp>
#include <dcsldm/linalg/gemm.hpp>
#include <dcsldm/nn/attention_mask.hpp>

namespace dcsldm::nn::Impl {

/// True when the fused host kernels apply: a host space, a CBLAS, float or double.
template <class ExecSpace, class T>
constexpr bool fused_attention_available() {
#if defined(DCSLDM_HAVE_CBLAS)
  return Kokkos::SpaceAccessibility<ExecSpace, Kokkos::HostSpace>::accessible && dcsldm::Impl::is_blas_scalar_v<T>;
#else
  return false;
#endif
}

/// Row-major C (m x n, ldc) = alpha op(A) op(B) + beta C on raw pointers (one thread).
template <class T>
inline void unit_gemm(Op a_op, Op b_op, int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb, T beta,
                      T* c, int ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // C = beta C (no product terms); BLAS implementations differ on k = 0
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) c[std::size_t(i) * ldc + j] = beta == T(0) ? T(0) : beta * c[std::size_t(i) * ldc + j];
    return;
  }
#if defined(DCSLDM_HAVE_HOST_AVX512_GEMM)
  if constexpr (std::is_same_v<T, float>) {
    if (dcsldm::Impl::host_avx512_gemm_enabled()) {
      dcsldm::Impl::avx512_gemm::gemm_serial(a_op == Op::T, b_op == Op::T, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      return;
    }
  }
#endif
#if defined(DCSLDM_HAVE_CBLAS)
  dcsldm::Impl::cblas_gemm_rm<T>(a_op, b_op, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#else
  // Not reached: fused_attention_available() is false without a CBLAS.
  (void)a_op, (void)b_op, (void)alpha, (void)a, (void)lda, (void)b, (void)ldb;
#endif
}

/// dst[0:n] = src[0:n]
template <class T>
inline void copy_row(int n, const T* KOKKOS_RESTRICT src, T* KOKKOS_RESTRICT dst) {
  for (int i = 0; i < n; ++i) dst[i] = src[i];
}

/// Masked softmax of one score row in place (kind K): p_j = allowed ? exp(s_j - max) / sum : 0. Returns
/// the row's log-sum-exp (0 for a row without an allowed key, whose p is all 0).
template <MaskKind K, class T, class M>
inline T softmax_row(const AttentionMask<M>& m, int qi, int tk, T* KOKKOS_RESTRICT row) {
  T mx = Kokkos::reduction_identity<T>::max();
  for (int j = 0; j < tk; ++j) mx = (m.template allowed_as<K>(qi, j) && row[j] > mx) ? row[j] : mx;
  T sum = 0;
  for (int j = 0; j < tk; ++j) {
    const T e = math::exp_acc(row[j] - mx);
    row[j] = m.template allowed_as<K>(qi, j) ? e : T(0);
    sum += row[j];
  }
  const T inv = sum > T(0) ? T(1) / sum : T(0);
  for (int j = 0; j < tk; ++j) row[j] *= inv;
  return sum > T(0) ? mx + math::log(sum) : T(0);
}

/// p_j = allowed ? exp(s_j - lse) : 0 for one row in place (kind K).
template <MaskKind K, class T, class M>
inline void probabilities_row(const AttentionMask<M>& m, int qi, int tk, T lse, T* KOKKOS_RESTRICT row) {
  for (int j = 0; j < tk; ++j) {
    const T e = math::exp_acc(row[j] - lse);
    row[j] = m.template allowed_as<K>(qi, j) ? e : T(0);
  }
}

#if defined(__AVX512F__)
/// The mask of keys [j0, j0 + 16) of query qi as lane bits (lanes past tk clear): arithmetic for the full
/// and causal kinds, a gather of the keys' group ids and one compare for the level-causal ones.
template <MaskKind K, class M>
inline __mmask16 allowed_lanes(const AttentionMask<M>& m, int qi, int j0, int tk) {
  const __mmask16 all = math::lane_mask(tk - j0);
  if constexpr (K == MaskKind::Full) {
    (void)m, (void)qi;
    return all;
  } else if constexpr (K == MaskKind::Causal) {
    (void)m;
    const int n = qi - j0 + 1;  // keys j0 .. qi
    return n <= 0 ? __mmask16(0) : (n >= 16 ? all : __mmask16(all & ((1u << n) - 1u)));
  } else if constexpr (K == MaskKind::LevelCausal || K == MaskKind::SegmentLevelCausal) {
    const int* kg = m.k_groups.data();
    const int ld = int(m.k_groups.stride(0));
    const __m512i idx = _mm512_mullo_epi32(
        _mm512_add_epi32(_mm512_set1_epi32(j0), _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)),
        _mm512_set1_epi32(ld));
    const __m512i lv = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), all, idx, kg, 4);
    __mmask16 ok = _mm512_mask_cmple_epi32_mask(all, lv, _mm512_set1_epi32(m.q_groups(qi, 0)));
    if constexpr (K == MaskKind::SegmentLevelCausal) {
      const __m512i sg = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), all, idx, kg + 1, 4);
      ok = _mm512_mask_cmple_epi32_mask(ok, sg, _mm512_set1_epi32(m.q_groups(qi, 1)));
    }
    return ok;
  } else {
    unsigned bits = 0;
    const int n = tk - j0 < 16 ? tk - j0 : 16;
    for (int l = 0; l < n; ++l) bits |= unsigned(m.template allowed_as<K>(qi, j0 + l)) << l;
    return __mmask16(bits);
  }
}

/// softmax_row for float on 16 lanes: the same result up to rounding (the sum is taken in 16 lanes, then
/// across them; fast_exp_avx512), in a fixed order. Rows of up to 1024 keys keep their lane masks.
template <MaskKind K, class M>
inline float softmax_row(const AttentionMask<M>& m, int qi, int tk, float* KOKKOS_RESTRICT row) {
  constexpr int kMaxChunks = 64;
  __mmask16 oks[kMaxChunks];
  const bool keep = tk <= 16 * kMaxChunks;
  __m512 vmx = _mm512_set1_ps(Kokkos::reduction_identity<float>::max());
  for (int j0 = 0, c = 0; j0 < tk; j0 += 16, ++c) {
    const __mmask16 ok = allowed_lanes<K>(m, qi, j0, tk);
    if (keep) oks[c] = ok;
    vmx = _mm512_mask_max_ps(vmx, ok, vmx, _mm512_maskz_loadu_ps(ok, row + j0));
  }
  const float mx = _mm512_reduce_max_ps(vmx);
  const __m512 vm = _mm512_set1_ps(mx);
  __m512 vs = _mm512_setzero_ps();
  for (int j0 = 0, c = 0; j0 < tk; j0 += 16, ++c) {
    const __mmask16 all = math::lane_mask(tk - j0);
    const __mmask16 ok = keep ? oks[c] : allowed_lanes<K>(m, qi, j0, tk);
    const __m512 e = _mm512_maskz_mov_ps(ok, math::fast_exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(all, row + j0), vm)));
    _mm512_mask_storeu_ps(row + j0, all, e);
    vs = _mm512_add_ps(vs, e);
  }
  const float sum = _mm512_reduce_add_ps(vs);
  const __m512 inv = _mm512_set1_ps(sum > 0.0f ? 1.0f / sum : 0.0f);
  for (int j0 = 0; j0 < tk; j0 += 16) {
    const __mmask16 all = math::lane_mask(tk - j0);
    _mm512_mask_storeu_ps(row + j0, all, _mm512_mul_ps(_mm512_maskz_loadu_ps(all, row + j0), inv));
  }
  return sum > 0.0f ? mx + math::log(sum) : 0.0f;
}

/// probabilities_row for float on 16 lanes.
template <MaskKind K, class M>
inline void probabilities_row(const AttentionMask<M>& m, int qi, int tk, float lse, float* KOKKOS_RESTRICT row) {
  const __m512 vl = _mm512_set1_ps(lse);
  for (int j0 = 0; j0 < tk; j0 += 16) {
    const __mmask16 all = math::lane_mask(tk - j0);
    const __mmask16 ok = allowed_lanes<K>(m, qi, j0, tk);
    const __m512 e = math::fast_exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(all, row + j0), vl));
    _mm512_mask_storeu_ps(row + j0, all, _mm512_maskz_mov_ps(ok, e));
  }
}
#endif

/// Forward of one (b, h) per work item. qp (B*Tq, E), kp/vp (B*Tk, E): the projections. Writes the
/// per-head cache q/k/v (B*H, T, hd), the merged output out (B*Tq, E) and lse (B*H, Tq); s (B*H, nb, Tk)
/// holds the scores of one query block.
template <class T, class M>
struct FusedAttentionForward {
  View2<T, M> qp, kp, vp;
  View3<T, M> q, k, v;
  View2<T, M> out, lse;
  View3<T, M> s;
  AttentionMask<M> mask;
  int heads, hd, tq, tk;
  T scale;
  bool keep;  ///< copy this head's q, k, v into the cache (for the backward); else read the projections in place

  void operator()(const int bh) const {
    const int b = bh / heads, c0 = (bh % heads) * hd, e = int(qp.extent(1)), nbmax = int(s.extent(1));
    // This head's rows of q, k, v: the cache's copies (leading dimension hd) or the projections (leading dimension E)
    const T* qh = &qp(std::size_t(b) * tq, c0);
    const T* kh = tk > 0 ? &kp(std::size_t(b) * tk, c0) : nullptr;
    const T* vh = tk > 0 ? &vp(std::size_t(b) * tk, c0) : nullptr;
    int ld = e;
    if (keep) {
      for (int j = 0; j < tk; ++j) {
        copy_row(hd, &kp(std::size_t(b) * tk + j, c0), &k(bh, j, 0));
        copy_row(hd, &vp(std::size_t(b) * tk + j, c0), &v(bh, j, 0));
      }
      for (int i = 0; i < tq; ++i) copy_row(hd, &qp(std::size_t(b) * tq + i, c0), &q(bh, i, 0));
      qh = &q(bh, 0, 0);
      kh = tk > 0 ? &k(bh, 0, 0) : nullptr;
      vh = tk > 0 ? &v(bh, 0, 0) : nullptr;
      ld = hd;
    }
    T* sb = s.data() + std::size_t(bh) * s.stride(0);
    for (int i0 = 0; i0 < tq; i0 += nbmax) {
      const int nb = tq - i0 < nbmax ? tq - i0 : nbmax;
      unit_gemm<T>(Op::N, Op::T, nb, tk, hd, scale, qh + std::size_t(i0) * ld, ld, kh, ld, T(0), sb, tk);
      with_mask_kind(mask, [&](auto kind) {
        for (int r = 0; r < nb; ++r)
          lse(bh, i0 + r) = softmax_row<decltype(kind)::value>(mask, i0 + r, tk, sb + std::size_t(r) * tk);
      });
      unit_gemm<T>(Op::N, Op::N, nb, hd, tk, T(1), sb, tk, vh, ld, T(0), &out(std::size_t(b) * tq + i0, c0), e);
    }
  }
};

/// Backward of one (b, h) per work item. dqp (B*Tq, E) holds d(out) on entry and dQ on exit (block by
/// block: a block's dO is consumed before its dQ overwrites it); dkp/dvp (B*Tk, E) receive dK/dV. s and
/// ds (B*H, nb, Tk) hold P and dP/dS of one query block, delta (B*H, Tq) the row dots.
template <class T, class M>
struct FusedAttentionBackward {
  View2<T, M> dqp, dkp, dvp;
  View3<T, M> q, k, v;
  View2<T, M> out, lse;
  View3<T, M> s, ds;
  View2<T, M> delta;
  AttentionMask<M> mask;
  int heads, hd, tq, tk;
  T scale;

  void operator()(const int bh) const {
    const int b = bh / heads, c0 = (bh % heads) * hd, e = int(dqp.extent(1)), nbmax = int(s.extent(1));
    T* pb = s.data() + std::size_t(bh) * s.stride(0);
    T* dsb = ds.data() + std::size_t(bh) * ds.stride(0);
    T* dk = tk > 0 ? &dkp(std::size_t(b) * tk, c0) : nullptr;  // (Tk, hd) of this head, leading dimension E
    T* dv = tk > 0 ? &dvp(std::size_t(b) * tk, c0) : nullptr;
    for (int i0 = 0; i0 < tq; i0 += nbmax) {
      const int nb = tq - i0 < nbmax ? tq - i0 : nbmax;
      const T beta = i0 == 0 ? T(0) : T(1);
      T* dob = &dqp(std::size_t(b) * tq + i0, c0);  // dO of the block, then its dQ
      for (int r = 0; r < nb; ++r) {
        const T* dor = dob + std::size_t(r) * e;
        const T* orow = &out(std::size_t(b) * tq + i0 + r, c0);
        T acc = 0;
        for (int d = 0; d < hd; ++d) acc += dor[d] * orow[d];
        delta(bh, i0 + r) = acc;
      }
      unit_gemm<T>(Op::N, Op::T, nb, tk, hd, scale, &q(bh, i0, 0), hd, &k(bh, 0, 0), hd, T(0), pb, tk);
      with_mask_kind(mask, [&](auto kind) {
        for (int r = 0; r < nb; ++r)
          probabilities_row<decltype(kind)::value>(mask, i0 + r, tk, T(lse(bh, i0 + r)), pb + std::size_t(r) * tk);
      });
      unit_gemm<T>(Op::T, Op::N, tk, hd, nb, T(1), pb, tk, dob, e, beta, dv, e);       // dV (+)= P^T dO
      unit_gemm<T>(Op::N, Op::T, nb, tk, hd, T(1), dob, e, &v(bh, 0, 0), hd, T(0), dsb, tk);  // dP = dO V^T
      for (int r = 0; r < nb; ++r) {
        T* prow = pb + std::size_t(r) * tk;
        T* drow = dsb + std::size_t(r) * tk;
        const T dl = delta(bh, i0 + r);
        for (int j = 0; j < tk; ++j) drow[j] = prow[j] * (drow[j] - dl);
      }
      unit_gemm<T>(Op::N, Op::N, nb, hd, tk, scale, dsb, tk, &k(bh, 0, 0), hd, T(0), dob, e);  // dQ = dS K
      unit_gemm<T>(Op::T, Op::N, tk, hd, nb, scale, dsb, tk, &q(bh, i0, 0), hd, beta, dk, e);  // dK (+)= dS^T Q
    }
  }
};

}  // namespace dcsldm::nn::Impl
