// dcsldm/linalg/gemm_host_avx512.hpp: single-precision GEMM for host CPUs with AVX-512F, on raw row-major
// pointers: C = alpha * op(A) * op(B) + beta * C (the sgemm of BLAS, row-major, 'N'/'T' per operand).
//
// Why the library has its own: the models' products are small (K and N of 8..1024, M of tens to a few
// thousand rows) and the BLAS a machine has may run them with narrower vectors than the CPU offers (OpenBLAS
// 0.3.21 on a Zen 5 guest runs its Haswell (AVX2) kernels, docs/performance.md). This is the textbook
// blocked GEMM (Goto & van de Geijn, "Anatomy of high-performance matrix multiplication", 2008): C is cut
// into tiles of kMC x kNC; per tile and per block of kKC steps of K, the A block is packed into micro-panels
// of kMR rows (K-major) and the B block into micro-panels of kNR columns, and a 14 x 32 register-blocked
// micro-kernel (28 zmm accumulators, one broadcast of A and two loads of B per step of K) updates C.
//
// Properties the library relies on:
//   - every C element is the sum over K in the same order (blocks of kKC, in order; each block in order,
//     from zero, then added to C), whatever M, N, the tile, the thread or the thread count: results are
//     bit-identical across thread counts and batch sizes;
//   - no allocation after a thread's first call: each thread packs into its own fixed-size buffer
//     (kMC*kKC + kKC*kNC floats, 376 KiB), allocated once;
//   - tiles are independent, so a caller may run tiles (or whole products) on different threads.
// Available only when the translation unit is compiled with AVX-512F (e.g. -march=native on such a CPU);
// DCSLDM_HAVE_HOST_AVX512_GEMM tells; defining DCSLDM_NO_HOST_AVX512_GEMM leaves it out. gemm() in
// linalg/gemm.hpp uses it for float on host spaces.
#pragma once

#if defined(__AVX512F__) && !defined(DCSLDM_NO_HOST_AVX512_GEMM)
#define DCSLDM_HAVE_HOST_AVX512_GEMM 1

#include <dcsldm/core/fast_math.hpp>
#include <immintrin.h>

#include <cstdint>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <new>

namespace dcsldm::Impl::avx512_gemm {

inline constexpr int kMR = 14;    ///< rows of the micro-kernel
inline constexpr int kNR = 32;    ///< columns of the micro-kernel (two zmm)
inline constexpr int kMC = 112;   ///< rows of a C tile (8 micro-panels)
inline constexpr int kNC = 256;   ///< columns of a C tile (8 micro-panels)
inline constexpr int kKC = 256;   ///< steps of K per packed block
inline constexpr std::size_t kBufferFloats = std::size_t(kMC) * kKC + std::size_t(kKC) * kNC;

/// This thread's packing buffer (allocated on the thread's first GEMM, 64-byte aligned).
inline float* thread_buffer() {
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  thread_local std::unique_ptr<float, Free> buf;
  if (!buf) {
    void* p = std::aligned_alloc(64, kBufferFloats * sizeof(float));
    if (!p) throw std::bad_alloc();
    buf.reset(static_cast<float*>(p));
  }
  return buf.get();
}

using math::lane_mask;

/// Transposes a 16 x 16 block: rows r < nrows of src (row stride ld, 16 floats each; rows past nrows read as
/// zero) -> col[c] = (src[0][c], ..., src[15][c]). Unpack and shuffle within 128-bit lanes (4 x 4 blocks), then
/// two rounds of 128-bit lane shuffles.
inline void transpose16(const float* src, std::int64_t ld, int nrows, __m512 col[16]) {
  __m512 r[16];
  for (int i = 0; i < 16; ++i) r[i] = i < nrows ? _mm512_loadu_ps(src + i * ld) : _mm512_setzero_ps();
  __m512 u[4][4];  // u[g][j], lane L: column 4L + j of rows 4g .. 4g+3
  for (int g = 0; g < 4; ++g) {
    const __m512 t0 = _mm512_unpacklo_ps(r[4 * g], r[4 * g + 1]), t1 = _mm512_unpackhi_ps(r[4 * g], r[4 * g + 1]);
    const __m512 t2 = _mm512_unpacklo_ps(r[4 * g + 2], r[4 * g + 3]);
    const __m512 t3 = _mm512_unpackhi_ps(r[4 * g + 2], r[4 * g + 3]);
    u[g][0] = _mm512_shuffle_ps(t0, t2, 0x44);
    u[g][1] = _mm512_shuffle_ps(t0, t2, 0xEE);
    u[g][2] = _mm512_shuffle_ps(t1, t3, 0x44);
    u[g][3] = _mm512_shuffle_ps(t1, t3, 0xEE);
  }
  for (int j = 0; j < 4; ++j) {
    const __m512 s0 = _mm512_shuffle_f32x4(u[0][j], u[1][j], 0x44), s1 = _mm512_shuffle_f32x4(u[2][j], u[3][j], 0x44);
    const __m512 s2 = _mm512_shuffle_f32x4(u[0][j], u[1][j], 0xEE), s3 = _mm512_shuffle_f32x4(u[2][j], u[3][j], 0xEE);
    col[j] = _mm512_shuffle_f32x4(s0, s1, 0x88);
    col[4 + j] = _mm512_shuffle_f32x4(s0, s1, 0xDD);
    col[8 + j] = _mm512_shuffle_f32x4(s2, s3, 0x88);
    col[12 + j] = _mm512_shuffle_f32x4(s2, s3, 0xDD);
  }
}

/// Packs op(A)(i0 .. i0+mc, p0 .. p0+kc) into micro-panels of kMR rows: panel r holds, for each step p,
/// the kMR values of its rows (rows past mc are zero).
inline void pack_a(bool trans, const float* a, std::int64_t lda, std::int64_t i0, std::int64_t p0, int mc,
                   int kc, float* out) {
  for (int ir = 0; ir < mc; ir += kMR) {
    const int mr = mc - ir < kMR ? mc - ir : kMR;
    float* dst = out + std::size_t(ir) * kc;
    if (!trans) {  // op(A)(i, p) = a[i * lda + p]: rows of A are contiguous in p; 16 x 16 transposes
      const float* src = a + (i0 + ir) * lda + p0;
      int p = 0;
      for (; p + 16 <= kc; p += 16) {
        __m512 col[16];
        transpose16(src + p, lda, mr, col);
        for (int q = 0; q < 16; ++q) _mm512_mask_storeu_ps(dst + (p + q) * kMR, lane_mask(kMR), col[q]);
      }
      for (; p < kc; ++p)
        for (int r = 0; r < kMR; ++r) dst[p * kMR + r] = r < mr ? src[r * lda + p] : 0.0f;
    } else {  // op(A)(i, p) = a[p * lda + i]: for each p the mr values are contiguous
      const __mmask16 mload = lane_mask(mr), mstore = lane_mask(kMR);
      for (int p = 0; p < kc; ++p)
        _mm512_mask_storeu_ps(dst + p * kMR, mstore, _mm512_maskz_loadu_ps(mload, a + (p0 + p) * lda + i0 + ir));
    }
  }
}

/// Packs op(B)(p0 .. p0+kc, j0 .. j0+nc) into micro-panels of kNR columns: panel j holds, for each step p,
/// the kNR values of its columns (columns past nc are zero).
inline void pack_b(bool trans, const float* b, std::int64_t ldb, std::int64_t p0, std::int64_t j0, int kc,
                   int nc, float* out) {
  for (int jr = 0; jr < nc; jr += kNR) {
    const int nr = nc - jr < kNR ? nc - jr : kNR;
    float* dst = out + std::size_t(jr) * kc;
    if (!trans) {  // op(B)(p, j) = b[p * ldb + j]: contiguous in j
      const __mmask16 m0 = lane_mask(nr), m1 = lane_mask(nr - 16);
      for (int p = 0; p < kc; ++p) {
        const float* src = b + (p0 + p) * ldb + j0 + jr;
        _mm512_store_ps(dst + p * kNR, _mm512_maskz_loadu_ps(m0, src));
        _mm512_store_ps(dst + p * kNR + 16, _mm512_maskz_loadu_ps(m1, src + 16));
      }
    } else {  // op(B)(p, j) = b[j * ldb + p]: columns of op(B) are rows of b; 16 x 16 transposes
      const float* src = b + (j0 + jr) * ldb + p0;
      int p = 0;
      for (; p + 16 <= kc; p += 16) {
        for (int h = 0; h < 2; ++h) {
          __m512 col[16];
          const int rows = nr - 16 * h;
          transpose16(src + 16 * h * ldb + p, ldb, rows < 0 ? 0 : rows, col);
          for (int q = 0; q < 16; ++q) _mm512_store_ps(dst + (p + q) * kNR + 16 * h, col[q]);
        }
      }
      for (; p < kc; ++p)
        for (int j = 0; j < kNR; ++j) dst[p * kNR + j] = j < nr ? src[j * ldb + p] : 0.0f;
    }
  }
}

/// C(0..mr, 0..nr) (row stride ldc) = alpha * acc + (first ? beta * C : C), the 14 x 32 micro-kernel on packed
/// panels ap (kc x kMR) and bp (kc x kNR). first: this is K's first block (beta applies, or C is ignored when
/// beta == 0); later blocks add. bias (nr entries, or null; only with beta == 0): added to every row in the
/// first block, C = alpha * acc + bias, the bits of presetting C to the bias and running with beta = 1.
inline void micro_kernel(int kc, const float* __restrict ap, const float* __restrict bp, float* c,
                         std::int64_t ldc, int mr, int nr, float alpha, float beta, bool first,
                         const float* bias = nullptr) {
#define DCSLDM_AVX512_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)
#define DCSLDM_AVX512_DECL(r) __m512 c##r##0 = _mm512_setzero_ps(), c##r##1 = _mm512_setzero_ps();
  DCSLDM_AVX512_ROWS(DCSLDM_AVX512_DECL)
#undef DCSLDM_AVX512_DECL
  for (int p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_load_ps(bp + p * kNR);
    const __m512 b1 = _mm512_load_ps(bp + p * kNR + 16);
    const float* a = ap + p * kMR;
#define DCSLDM_AVX512_FMA(r)                          \
  {                                                   \
    const __m512 av = _mm512_set1_ps(a[r]);           \
    c##r##0 = _mm512_fmadd_ps(av, b0, c##r##0);       \
    c##r##1 = _mm512_fmadd_ps(av, b1, c##r##1);       \
  }
    DCSLDM_AVX512_ROWS(DCSLDM_AVX512_FMA)
#undef DCSLDM_AVX512_FMA
  }
  const __mmask16 m0 = lane_mask(nr), m1 = lane_mask(nr - 16);
  const __m512 va = _mm512_set1_ps(alpha);
  const bool keep = !first || beta != 0.0f;
  const __m512 vk = _mm512_set1_ps(first ? beta : 1.0f);
  const bool add_bias = first && bias != nullptr;
  const __m512 bias0 = add_bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
  const __m512 bias1 = add_bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
#define DCSLDM_AVX512_STORE(r)                                                          \
  if (r < mr) {                                                                         \
    float* cr = c + std::int64_t(r) * ldc;                                              \
    __m512 o0 = _mm512_mul_ps(va, c##r##0), o1 = _mm512_mul_ps(va, c##r##1);            \
    if (keep) {                                                                         \
      o0 = _mm512_fmadd_ps(vk, _mm512_maskz_loadu_ps(m0, cr), o0);                      \
      o1 = _mm512_fmadd_ps(vk, _mm512_maskz_loadu_ps(m1, cr + 16), o1);                 \
    } else if (add_bias) {                                                              \
      o0 = _mm512_add_ps(bias0, o0);                                                    \
      o1 = _mm512_add_ps(bias1, o1);                                                    \
    }                                                                                   \
    _mm512_mask_storeu_ps(cr, m0, o0);                                                  \
    _mm512_mask_storeu_ps(cr + 16, m1, o1);                                             \
  }
  DCSLDM_AVX512_ROWS(DCSLDM_AVX512_STORE)
#undef DCSLDM_AVX512_STORE
#undef DCSLDM_AVX512_ROWS
}

/// Rows [i0, i1) and columns [j0, j1) of C = alpha * op(A) op(B) + beta * C (+ bias(j) on every row, when
/// bias is not null; then beta must be 0), on the calling thread, in tiles of at most kMC x kNC. op(A) is
/// (m, k), op(B) is (k, n), C is (m, n) with row stride ldc; k >= 1.
inline void gemm_block(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                       const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
                       std::int64_t ldc, std::int64_t i0, std::int64_t i1, std::int64_t j0, std::int64_t j1,
                       const float* bias = nullptr) {
  (void)m, (void)n;
  float* const pa = thread_buffer();
  float* const pb = pa + std::size_t(kMC) * kKC;
  // Rows [r0, r1) of the column block at jb (nc wide) through K block p0: op(B)'s block packed once, each
  // row tile's op(A) block in turn.
  auto block = [&](std::int64_t r0, std::int64_t r1, std::int64_t jb, int nc, std::int64_t p0) {
    const int kc = int(k - p0 < kKC ? k - p0 : kKC);
    pack_b(tb, b, ldb, p0, jb, kc, nc, pb);
    for (std::int64_t it = r0; it < r1; it += kMC) {
      const int mc = int(r1 - it < kMC ? r1 - it : kMC);
      pack_a(ta, a, lda, it, p0, mc, kc, pa);
      for (int jr = 0; jr < nc; jr += kNR) {
        const int nr = nc - jr < kNR ? nc - jr : kNR;
        for (int ir = 0; ir < mc; ir += kMR) {
          const int mr = mc - ir < kMR ? mc - ir : kMR;
          micro_kernel(kc, pa + std::size_t(ir) * kc, pb + std::size_t(jr) * kc,
                       c + (it + ir) * ldc + jb + jr, ldc, mr, nr, alpha, beta, p0 == 0,
                       bias ? bias + jb + jr : nullptr);
        }
      }
    }
  };
  for (std::int64_t jb = j0; jb < j1; jb += kNC) {
    const int nc = int(j1 - jb < kNC ? j1 - jb : kNC);
    if (k <= kKC) {  // one block of K: op(B) packed once for all row tiles
      block(i0, i1, jb, nc, 0);
    } else {  // several: each row tile runs through K with its C tile hot (op(B)'s blocks packed per row tile)
      for (std::int64_t it = i0; it < i1; it += kMC) {
        const std::int64_t ie = i1 - it < kMC ? i1 : it + kMC;
        for (std::int64_t p0 = 0; p0 < k; p0 += kKC) block(it, ie, jb, nc, p0);
      }
    }
  }
}

/// The whole product on the calling thread.
inline void gemm_serial(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                        const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
                        std::int64_t ldc, const float* bias = nullptr) {
  gemm_block(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 0, m, 0, n, bias);
}

/// How a threaded product is cut: C into pm row parts (boundaries on multiples of kMR) times pn column parts
/// (multiples of kNR), part (q, p) covering rows [row(p), row(p + 1)) and columns [col(q), col(q + 1)).
/// About `tasks` parts, in the proportion that repacks the least: a row part repacks its columns of op(B)
/// (k x n / pn per part), a column part its rows of op(A) (m / pm x k), so pm / pn ~ m / n.
struct Partition {
  std::int64_t m, n, pm, pn;
  static Partition make(std::int64_t m, std::int64_t n, std::int64_t tasks) {
    const std::int64_t um = (m + kMR - 1) / kMR, un = (n + kNR - 1) / kNR;
    std::int64_t pm = std::int64_t(std::sqrt(double(tasks) * double(m) / double(n)) + 0.5);
    pm = pm < 1 ? 1 : (pm > um ? um : pm);
    std::int64_t pn = (tasks + pm - 1) / pm;
    pn = pn > un ? un : pn;
    return {m, n, pm, pn};
  }
  std::int64_t count() const { return pm * pn; }
  std::int64_t row(std::int64_t p) const {
    const std::int64_t um = (m + kMR - 1) / kMR, r = (p * um / pm) * kMR;
    return r < m ? r : m;
  }
  std::int64_t col(std::int64_t q) const {
    const std::int64_t un = (n + kNR - 1) / kNR, j = (q * un / pn) * kNR;
    return j < n ? j : n;
  }
};

}  // namespace dcsldm::Impl::avx512_gemm

#endif
