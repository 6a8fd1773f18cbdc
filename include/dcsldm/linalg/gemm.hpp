// dcsldm/linalg/gemm.hpp: C = alpha * op(A) * op(B) + beta * C, single and strided-batched.
//
// Matches torch.matmul / torch.baddbmm on row-major tensors. Dispatch (Algo = gemm_algo::Auto):
//   - host execution spaces, float, unit inner stride, N >= 24, compiled with AVX-512F: the library's own
//     blocked kernel (linalg/gemm_host_avx512.hpp; bit-identical across thread counts); the environment
//     variable DCSLDM_GEMM=blas turns it off at run time (read once);
//   - host execution spaces, float/double, unit inner stride: CBLAS (OpenBLAS), DCSLDM_HAVE_CBLAS;
//   - Kokkos::Cuda with DCSLDM_HAVE_CUBLAS: cuBLAS on the instance's stream;
//   - HIP with DCSLDM_HAVE_ROCBLAS: rocBLAS on the instance's stream;
//   - anything else: the portable Kokkos kernel (gemm_algo::Portable), register-tiled 4x4.
// No fences, no allocations: the call is asynchronous on device spaces like any Kokkos kernel.
#pragma once

#include <dcsldm/core/compat.hpp>
#include <dcsldm/core/error.hpp>
#include <dcsldm/core/types.hpp>
#include <dcsldm/linalg/gemm_host_avx512.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(DCSLDM_HAVE_CBLAS)
#include <cblas.h>
#if defined(DCSLDM_HAVE_OPENBLAS)
extern "C" void openblas_set_num_threads(int);
extern "C" int openblas_get_num_threads(void);
#endif
#endif
#if defined(KOKKOS_ENABLE_CUDA) && defined(DCSLDM_HAVE_CUBLAS)
#include <cublas_v2.h>
#endif
#if defined(KOKKOS_ENABLE_HIP) && defined(DCSLDM_HAVE_ROCBLAS)
#include <rocblas/rocblas.h>
#endif

namespace dcsldm {

/// Transposition of a GEMM operand (runtime choice, like BLAS's 'N'/'T').
enum class Op { N, T };

/// Compile-time GEMM algorithm choice.
namespace gemm_algo {
struct Auto {};      ///< the host AVX-512 kernel where it applies, else Vendor
struct Vendor {};    ///< vendor BLAS where available (CBLAS, cuBLAS, rocBLAS), else Portable
struct Portable {};  ///< the Kokkos kernel on any backend
#if defined(DCSLDM_HAVE_HOST_AVX512_GEMM)
struct HostAvx512 {};  ///< the library's AVX-512 kernel (host spaces, float, unit inner strides only)
#endif
}  // namespace gemm_algo

namespace Impl {

/// Rows/cols of op(X) for a rank-2 View X.
template <class V>
inline std::int64_t op_rows(Op op, const V& x) {
  return op == Op::N ? std::int64_t(x.extent(0)) : std::int64_t(x.extent(1));
}
template <class V>
inline std::int64_t op_cols(Op op, const V& x) {
  return op == Op::N ? std::int64_t(x.extent(1)) : std::int64_t(x.extent(0));
}

/// Portable GEMM kernel: each work item computes a 4x4 tile of one C matrix.
/// A3/B3/C3 are rank-3 (batch, rows, cols) views; rank-2 callers use subviews with batch 1.
template <class AV, class BV, class CV>
struct GemmTileFunctor {
  using acc_t = accum_t<value_t<CV>>;
  AV a;
  BV b;
  CV c;
  Op op_a, op_b;
  acc_t alpha, beta;
  std::int64_t m, n, k;

  KOKKOS_INLINE_FUNCTION acc_t load_a(int bi, std::int64_t i, std::int64_t kk) const {
    return op_a == Op::N ? acc_t(a(bi, i, kk)) : acc_t(a(bi, kk, i));
  }
  KOKKOS_INLINE_FUNCTION acc_t load_b(int bi, std::int64_t kk, std::int64_t j) const {
    return op_b == Op::N ? acc_t(b(bi, kk, j)) : acc_t(b(bi, j, kk));
  }
  KOKKOS_INLINE_FUNCTION void operator()(const int bi, const int ti, const int tj) const {
    const std::int64_t i0 = std::int64_t(ti) * 4, j0 = std::int64_t(tj) * 4;
    const int mi = int(m - i0 < 4 ? m - i0 : 4), nj = int(n - j0 < 4 ? n - j0 : 4);
    acc_t acc[4][4] = {};
    for (std::int64_t kk = 0; kk < k; ++kk) {
      acc_t av[4] = {}, bv[4] = {};
      for (int r = 0; r < mi; ++r) av[r] = load_a(bi, i0 + r, kk);
      for (int s = 0; s < nj; ++s) bv[s] = load_b(bi, kk, j0 + s);
      for (int r = 0; r < 4; ++r)
        for (int s = 0; s < 4; ++s) acc[r][s] += av[r] * bv[s];
    }
    for (int r = 0; r < mi; ++r)
      for (int s = 0; s < nj; ++s) {
        auto& out = c(bi, i0 + r, j0 + s);
        // beta == 0 must not read C (it may hold NaN from uninitialised memory), as in BLAS.
        out = beta == acc_t(0) ? value_t<CV>(alpha * acc[r][s])
                               : value_t<CV>(alpha * acc[r][s] + beta * acc_t(out));
      }
  }
};

template <class ExecSpace, class A3, class B3, class C3>
void gemm_portable_batched(const ExecSpace& space, Op op_a, Op op_b, accum_t<value_t<C3>> alpha,
                           const A3& a, const B3& b, accum_t<value_t<C3>> beta, const C3& c,
                           std::int64_t m, std::int64_t n, std::int64_t k) {
  const std::int64_t batch = c.extent(0);
  if (batch == 0 || m == 0 || n == 0) return;
  GemmTileFunctor<A3, B3, C3> f{a, b, c, op_a, op_b, alpha, beta, m, n, k};
  using policy = Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<3>, Kokkos::IndexType<int>>;
  Kokkos::parallel_for("dcsldm::gemm_portable",
                       policy(space, {0, 0, 0}, {int(batch), int((m + 3) / 4), int((n + 3) / 4)}), f);
}

/// Rank-2 View -> rank-3 unmanaged LayoutStride View with a leading batch of 1 (no copy).
template <class V>
auto as_batch1(const V& v) {
  using T = typename V::value_type;
  using R = Kokkos::View<T***, Kokkos::LayoutStride, typename V::memory_space,
                         Kokkos::MemoryTraits<Kokkos::Unmanaged>>;
  const std::size_t s0 = v.extent(0) * (v.extent(0) ? v.stride(0) : 0) + 1;
  Kokkos::LayoutStride layout(1, s0, v.extent(0), v.stride(0), v.extent(1), v.stride(1));
  return R(v.data(), layout);
}

/// Leading dimension of a row-major operand, or -1 if the inner stride is not 1.
template <class V>
inline std::int64_t leading_dim(const V& v, int rank_offset) {
  const std::int64_t inner = rank_offset == 0 ? v.stride(1) : v.stride(2);
  const std::int64_t outer = rank_offset == 0 ? v.stride(0) : v.stride(1);
  const std::int64_t cols = rank_offset == 0 ? v.extent(1) : v.extent(2);
  if (cols > 1 && inner != 1) return -1;
  return outer < 1 ? 1 : (outer < cols ? cols : outer);
}

template <class T>
inline constexpr bool is_blas_scalar_v = std::is_same_v<T, float> || std::is_same_v<T, double>;

/// Sets OpenBLAS's thread count (cached; a no-op for other CBLAS libraries and without a CBLAS).
inline void blas_threads(int n) {
#if defined(DCSLDM_HAVE_OPENBLAS)
  static int current = -1;
  if (current != n) {
    openblas_set_num_threads(n);
    current = n;
  }
#else
  (void)n;
#endif
}

#if defined(DCSLDM_HAVE_CBLAS)

template <class T>
inline void cblas_gemm_rm(Op op_a, Op op_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha,
                          const T* a, std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c,
                          std::int64_t ldc) {
  const auto ta = op_a == Op::N ? CblasNoTrans : CblasTrans;
  const auto tb = op_b == Op::N ? CblasNoTrans : CblasTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, ta, tb, int(m), int(n), int(k), alpha, a, int(lda), b, int(ldb), beta,
                c, int(ldc));
  else
    cblas_dgemm(CblasRowMajor, ta, tb, int(m), int(n), int(k), alpha, a, int(lda), b, int(ldb), beta,
                c, int(ldc));
}
#endif

#if defined(KOKKOS_ENABLE_CUDA) && defined(DCSLDM_HAVE_CUBLAS)
/// One cuBLAS handle per process (created on first use, stream set per call).
inline cublasHandle_t cublas_handle() {
  static cublasHandle_t h = [] {
    cublasHandle_t x;
    DCSLDM_REQUIRE(cublasCreate(&x) == CUBLAS_STATUS_SUCCESS, "gemm", "cublasCreate failed");
    return x;
  }();
  return h;
}
#endif
#if defined(KOKKOS_ENABLE_HIP) && defined(DCSLDM_HAVE_ROCBLAS)
inline rocblas_handle rocblas_handle_get() {
  static rocblas_handle h = [] {
    rocblas_handle x;
    DCSLDM_REQUIRE(rocblas_create_handle(&x) == rocblas_status_success, "gemm",
                   "rocblas_create_handle failed");
    return x;
  }();
  return h;
}
#endif

/// Vendor path for rank-3 (batch, rows, cols) operands with unit inner stride. Returns false when
/// no vendor library applies to these types and spaces, so the caller falls back.
template <class ExecSpace, class A3, class B3, class C3>
bool gemm_vendor_batched(const ExecSpace& space, Op op_a, Op op_b, accum_t<value_t<C3>> alpha,
                         const A3& a, const B3& b, accum_t<value_t<C3>> beta, const C3& c,
                         std::int64_t m, std::int64_t n, std::int64_t k) {
  using T = value_t<C3>;
  if constexpr (!is_blas_scalar_v<T> || !std::is_same_v<value_t<A3>, T> ||
                !std::is_same_v<value_t<B3>, T>) {
    return false;
  } else {
    const std::int64_t lda = leading_dim(a, 1), ldb = leading_dim(b, 1), ldc = leading_dim(c, 1);
    if (lda < 0 || ldb < 0 || ldc < 0) return false;
    const std::int64_t batch = c.extent(0);
    const std::int64_t sa = a.stride(0), sb = b.stride(0), sc = c.stride(0);
    const T* pa = a.data();
    const T* pb = b.data();
    T* pc = c.data();
    (void)space; (void)pa; (void)pb; (void)pc; (void)sa; (void)sb; (void)sc; (void)batch;
#if defined(DCSLDM_HAVE_CBLAS)
    if constexpr (compat::is_host_space_v<ExecSpace>) {
      const int threads = space.concurrency();
      if (batch == 1 || threads == 1 || batch < 2 * threads) {
        blas_threads(threads);
        for (std::int64_t i = 0; i < batch; ++i)
          cblas_gemm_rm<T>(op_a, op_b, m, n, k, T(alpha), pa + i * sa, lda, pb + i * sb, ldb, T(beta),
                           pc + i * sc, ldc);
      } else {
        // Many small products: one single-threaded BLAS call per batch entry, spread over threads.
        blas_threads(1);
        Kokkos::parallel_for(
            "dcsldm::gemm_blas_batched", Kokkos::RangePolicy<ExecSpace>(space, 0, batch),
            [=](const std::int64_t i) {
              cblas_gemm_rm<T>(op_a, op_b, m, n, k, T(alpha), pa + i * sa, lda, pb + i * sb, ldb,
                               T(beta), pc + i * sc, ldc);
            });
      }
      return true;
    }
#endif
#if defined(KOKKOS_ENABLE_CUDA) && defined(DCSLDM_HAVE_CUBLAS)
    if constexpr (std::is_same_v<ExecSpace, Kokkos::Cuda>) {
      cublasHandle_t h = cublas_handle();
      cublasSetStream(h, space.cuda_stream());
      const auto ta = op_a == Op::N ? CUBLAS_OP_N : CUBLAS_OP_T;
      const auto tb = op_b == Op::N ? CUBLAS_OP_N : CUBLAS_OP_T;
      const T al = T(alpha), be = T(beta);
      // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T.
      cublasStatus_t st;
      if constexpr (std::is_same_v<T, float>)
        st = cublasSgemmStridedBatched(h, tb, ta, int(n), int(m), int(k), &al, pb, int(ldb), sb, pa,
                                       int(lda), sa, &be, pc, int(ldc), sc, int(batch));
      else
        st = cublasDgemmStridedBatched(h, tb, ta, int(n), int(m), int(k), &al, pb, int(ldb), sb, pa,
                                       int(lda), sa, &be, pc, int(ldc), sc, int(batch));
      DCSLDM_REQUIRE(st == CUBLAS_STATUS_SUCCESS, "gemm", "cuBLAS gemm failed with status ", int(st),
                     " (m=", m, ", n=", n, ", k=", k, ", batch=", batch, ")");
      return true;
    }
#endif
#if defined(KOKKOS_ENABLE_HIP) && defined(DCSLDM_HAVE_ROCBLAS)
    if constexpr (std::is_same_v<ExecSpace, HipSpace>) {
      rocblas_handle h = rocblas_handle_get();
      rocblas_set_stream(h, space.hip_stream());
      const auto ta = op_a == Op::N ? rocblas_operation_none : rocblas_operation_transpose;
      const auto tb = op_b == Op::N ? rocblas_operation_none : rocblas_operation_transpose;
      const T al = T(alpha), be = T(beta);
      rocblas_status st;
      if constexpr (std::is_same_v<T, float>)
        st = rocblas_sgemm_strided_batched(h, tb, ta, int(n), int(m), int(k), &al, pb, int(ldb), sb,
                                           pa, int(lda), sa, &be, pc, int(ldc), sc, int(batch));
      else
        st = rocblas_dgemm_strided_batched(h, tb, ta, int(n), int(m), int(k), &al, pb, int(ldb), sb,
                                           pa, int(lda), sa, &be, pc, int(ldc), sc, int(batch));
      DCSLDM_REQUIRE(st == rocblas_status_success, "gemm", "rocBLAS gemm failed with status ",
                     int(st), " (m=", m, ", n=", n, ", k=", k, ", batch=", batch, ")");
      return true;
    }
#endif
    return false;
  }
}

#if defined(DCSLDM_HAVE_HOST_AVX512_GEMM)
/// False when the environment has DCSLDM_GEMM=blas (read on the first call).
inline bool host_avx512_gemm_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("DCSLDM_GEMM");
    return !(e && std::strcmp(e, "blas") == 0);
  }();
  return on;
}

/// One task of a threaded product: part t of the partition (column part t / pm, row part t % pm).
struct Avx512GemmTasks {
  bool ta, tb;
  std::int64_t m, n, k;
  float alpha, beta;
  const float* a;
  std::int64_t lda;
  const float* b;
  std::int64_t ldb;
  float* c;
  std::int64_t ldc;
  avx512_gemm::Partition part;
  const float* bias;
  void operator()(const std::int64_t t) const {
    const std::int64_t q = t / part.pm, p = t % part.pm;
    avx512_gemm::gemm_block(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, part.row(p), part.row(p + 1),
                            part.col(q), part.col(q + 1), bias);
  }
};

/// Many products: each on one thread.
struct Avx512GemmBatch {
  bool ta, tb;
  std::int64_t m, n, k;
  float alpha, beta;
  const float* a;
  std::int64_t lda, sa;
  const float* b;
  std::int64_t ldb, sb;
  float* c;
  std::int64_t ldc, sc;
  const float* bias;
  void operator()(const std::int64_t i) const {
    avx512_gemm::gemm_serial(ta, tb, m, n, k, alpha, a + i * sa, lda, b + i * sb, ldb, beta, c + i * sc, ldc, bias);
  }
};

/// The host AVX-512 kernel; false where it does not apply (device space, not float, non-unit inner stride,
/// or, unless forced, N < 24 (a 32-wide micro-kernel wastes most of its lanes there) or DCSLDM_GEMM=blas).
/// bias: n floats added to every row of every product (beta must be 0), or null.
template <class ExecSpace, class A3, class B3, class C3>
bool gemm_host_avx512_batched(const ExecSpace& space, Op op_a, Op op_b, accum_t<value_t<C3>> alpha,
                              const A3& a, const B3& b, accum_t<value_t<C3>> beta, const C3& c,
                              std::int64_t m, std::int64_t n, std::int64_t k, bool forced,
                              const float* bias = nullptr) {
  if constexpr (!compat::is_host_space_v<ExecSpace> || !std::is_same_v<value_t<C3>, float> ||
                !std::is_same_v<value_t<A3>, float> || !std::is_same_v<value_t<B3>, float>) {
    return false;
  } else {
    if (!forced && (n < 24 || !host_avx512_gemm_enabled())) return false;
    const std::int64_t lda = leading_dim(a, 1), ldb = leading_dim(b, 1), ldc = leading_dim(c, 1);
    if (lda < 0 || ldb < 0 || ldc < 0) return false;
    const bool ta = op_a == Op::T, tb = op_b == Op::T;
    const std::int64_t batch = c.extent(0);
    const std::int64_t sa = a.stride(0), sb = b.stride(0), sc = c.stride(0);
    const int threads = space.concurrency();
    using Policy = Kokkos::RangePolicy<ExecSpace, Kokkos::Schedule<Kokkos::Dynamic>, Kokkos::IndexType<std::int64_t>>;
    if (threads == 1) {
      for (std::int64_t i = 0; i < batch; ++i)
        avx512_gemm::gemm_serial(ta, tb, m, n, k, float(alpha), a.data() + i * sa, lda, b.data() + i * sb, ldb,
                                 float(beta), c.data() + i * sc, ldc, bias);
    } else if (batch >= 2 * threads) {
      Avx512GemmBatch f{ta, tb, m, n, k, float(alpha), float(beta), a.data(), lda, sa, b.data(), ldb, sb,
                        c.data(), ldc, sc, bias};
      Kokkos::parallel_for("dcsldm::gemm_avx512_batched", Policy(space, 0, batch), f);
    } else {
      // One product at a time, cut into about 2 parts per thread (dynamic schedule): rows in multiples of
      // the micro-kernel's 14, columns in multiples of its 32, so that small products (a weight gradient's
      // 128 x 128, a sampling step's 64 rows) still split evenly (112-row tiles split a 128-row product
      // 7:1). More parts balance better but repack more: 4 per thread measured slower for K = 1024.
      const auto part = avx512_gemm::Partition::make(m, n, 2 * std::int64_t(threads));
      for (std::int64_t i = 0; i < batch; ++i) {
        Avx512GemmTasks f{ta, tb, m, n, k, float(alpha), float(beta), a.data() + i * sa, lda, b.data() + i * sb,
                          ldb, c.data() + i * sc, ldc, part, bias};
        Kokkos::parallel_for("dcsldm::gemm_avx512", Policy(space, 0, part.count()), f);
      }
    }
    return true;
  }
}
#endif

/// C = op_a(A) op_b(B) + bias (bias (N) added to every row) in one pass where the host AVX-512 kernel runs it
/// (gemm_algo::Auto's choice: float, host space, N >= 24, unit inner strides, k >= 1); false otherwise, and
/// then nothing was written. Bit for bit C preset to the bias followed by gemm(..., beta = 1, C).
template <class ExecSpace, class AV, class BV, class BiasV, class CV>
bool gemm_bias_fused(const ExecSpace& space, Op op_a, Op op_b, const AV& a, const BV& b, const BiasV& bias,
                     const CV& c) {
#if defined(DCSLDM_HAVE_HOST_AVX512_GEMM)
  if constexpr (std::is_same_v<value_t<BiasV>, float> && std::is_same_v<value_t<CV>, float>) {
    const std::int64_t m = op_rows(op_a, a), k = op_cols(op_a, a), n = op_cols(op_b, b);
    if (k == 0 || m == 0 || n == 0 || bias.extent(0) != std::size_t(n) || bias.stride(0) != 1) return false;
    return gemm_host_avx512_batched(space, op_a, op_b, 1.0f, as_batch1(a), as_batch1(b), 0.0f, as_batch1(c), m, n, k,
                                    false, bias.data());
  }
#endif
  (void)space, (void)op_a, (void)op_b, (void)a, (void)b, (void)bias, (void)c;
  return false;
}

template <class A3, class B3, class C3>
void check_batched_shapes(const char* op, Op op_a, Op op_b, const A3& a, const B3& b, const C3& c,
                          std::int64_t& m, std::int64_t& n, std::int64_t& k) {
  const std::int64_t am = op_a == Op::N ? a.extent(1) : a.extent(2);
  const std::int64_t ak = op_a == Op::N ? a.extent(2) : a.extent(1);
  const std::int64_t bk = op_b == Op::N ? b.extent(1) : b.extent(2);
  const std::int64_t bn = op_b == Op::N ? b.extent(2) : b.extent(1);
  DCSLDM_REQUIRE(ak == bk && am == std::int64_t(c.extent(1)) && bn == std::int64_t(c.extent(2)) &&
                     a.extent(0) == c.extent(0) && b.extent(0) == c.extent(0),
                 op, "shape mismatch: op(A) is (", a.extent(0), ", ", am, ", ", ak, "), op(B) is (",
                 b.extent(0), ", ", bk, ", ", bn, "), C is (", c.extent(0), ", ", c.extent(1), ", ",
                 c.extent(2), ")");
  m = am;
  n = bn;
  k = ak;
}

/// C *= beta (K == 0 products).
template <class ExecSpace, class C3>
void scale_batched(const ExecSpace& space, accum_t<value_t<C3>> beta, const C3& c) {
  using T = value_t<C3>;
  using policy = Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<3>, Kokkos::IndexType<int>>;
  Kokkos::parallel_for("dcsldm::gemm_scale",
                       policy(space, {0, 0, 0}, {int(c.extent(0)), int(c.extent(1)), int(c.extent(2))}),
                       KOKKOS_LAMBDA(int b, int i, int j) {
                         c(b, i, j) = beta == 0 ? T(0) : T(beta * c(b, i, j));
                       });
}

}  // namespace Impl

/// Strided-batched GEMM on rank-3 Views (batch, rows, cols):
/// C[b] = alpha * op_a(A[b]) * op_b(B[b]) + beta * C[b]   (like torch.baddbmm).
/// Shapes: op_a(A[b]) is (M, K), op_b(B[b]) is (K, N), C[b] is (M, N). beta == 0 ignores C's contents.
template <class Algo = gemm_algo::Auto, class ExecSpace, class A3, class B3, class C3>
void gemm_batched(const ExecSpace& space, Op op_a, Op op_b, accum_t<value_t<C3>> alpha, const A3& a,
                  const B3& b, accum_t<value_t<C3>> beta, const C3& c) {
  static_assert(A3::rank == 3 && B3::rank == 3 && C3::rank == 3, "gemm_batched takes rank-3 Views");
  std::int64_t m, n, k;
  Impl::check_batched_shapes("gemm_batched", op_a, op_b, a, b, c, m, n, k);
  if (c.extent(0) == 0 || m == 0 || n == 0) return;
  if (k == 0) {
    Impl::scale_batched(space, beta, c);
    return;
  }
#if defined(DCSLDM_HAVE_HOST_AVX512_GEMM)
  if constexpr (std::is_same_v<Algo, gemm_algo::HostAvx512>) {
    static_assert(compat::is_host_space_v<ExecSpace> && std::is_same_v<value_t<C3>, float>,
                  "gemm_algo::HostAvx512 runs on host execution spaces with float Views");
    DCSLDM_REQUIRE(Impl::gemm_host_avx512_batched(space, op_a, op_b, alpha, a, b, beta, c, m, n, k, true),
                   "gemm_batched", "gemm_algo::HostAvx512 needs unit inner strides (m=", m, ", n=", n, ", k=", k,
                   ")");
    return;
  }
  if constexpr (std::is_same_v<Algo, gemm_algo::Auto>)
    if (Impl::gemm_host_avx512_batched(space, op_a, op_b, alpha, a, b, beta, c, m, n, k, false)) return;
#endif
  if constexpr (std::is_same_v<Algo, gemm_algo::Auto> || std::is_same_v<Algo, gemm_algo::Vendor>)
    if (Impl::gemm_vendor_batched(space, op_a, op_b, alpha, a, b, beta, c, m, n, k)) return;
  Impl::gemm_portable_batched(space, op_a, op_b, alpha, a, b, beta, c, m, n, k);
}

/// GEMM on rank-2 Views: C = alpha * op_a(A) * op_b(B) + beta * C   (like torch.addmm).
/// op_a(A) is (M, K), op_b(B) is (K, N), C is (M, N). beta == 0 ignores C's contents.
template <class Algo = gemm_algo::Auto, class ExecSpace, class AV, class BV, class CV>
void gemm(const ExecSpace& space, Op op_a, Op op_b, accum_t<value_t<CV>> alpha, const AV& a,
          const BV& b, accum_t<value_t<CV>> beta, const CV& c) {
  static_assert(AV::rank == 2 && BV::rank == 2 && CV::rank == 2, "gemm takes rank-2 Views");
  const std::int64_t am = Impl::op_rows(op_a, a), ak = Impl::op_cols(op_a, a);
  const std::int64_t bk = Impl::op_rows(op_b, b), bn = Impl::op_cols(op_b, b);
  DCSLDM_REQUIRE(ak == bk && am == std::int64_t(c.extent(0)) && bn == std::int64_t(c.extent(1)),
                 "gemm", "shape mismatch: op(A) is (", am, ", ", ak, "), op(B) is (", bk, ", ", bn,
                 "), C is (", c.extent(0), ", ", c.extent(1), ")");
  gemm_batched<Algo>(space, op_a, op_b, alpha, Impl::as_batch1(a), Impl::as_batch1(b), beta,
                     Impl::as_batch1(c));
}

}  // namespace dcsldm
