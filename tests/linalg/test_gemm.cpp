// GEMM: every transpose pair against PyTorch goldens and a naive double reference, the host AVX-512 kernel
// (where compiled), vendor and portable paths, batched, edge sizes (0, 1, odd, across the AVX-512 kernel's
// blocks), beta == 0 ignoring NaN in C, bit-identical results of the AVX-512 kernel whatever the threads and
// rows, and shape errors.
#include <dcsldm/linalg/gemm.hpp>

#include "testing.hpp"

using namespace dcsldm;
using test::ExecSpaces;

namespace {

template <class Algo, class ExecSpace, class T>
void check_gemm_golden() {
  using Mem = typename ExecSpace::memory_space;
  test::Golden g("gemm");
  const double alpha = g.meta_double("alpha"), beta = g.meta_double("beta");
  for (const char* tr : {"NN", "NT", "TN", "TT"}) {
    const std::string s(tr);
    auto a = g.view<T, Mem, 2>("a_" + s);
    auto b = g.view<T, Mem, 2>("b_" + s);
    auto c = g.view<T, Mem, 2>("c_" + s);
    gemm<Algo>(ExecSpace(), s[0] == 'N' ? Op::N : Op::T, s[1] == 'N' ? Op::N : Op::T, alpha, a, b, beta, c);
    const double err = g.error(c, "out_" + s);
    INFO("transposes " << s << " rel err " << err);
    CHECK(err < test::parity_tol<T>());
  }
  auto a3 = g.view<T, Mem, 3>("a3");
  auto b3 = g.view<T, Mem, 3>("b3");
  View3<T, Mem> c3("c3", a3.extent(0), a3.extent(2), b3.extent(2));
  Kokkos::deep_copy(c3, T(NAN));  // beta == 0 must ignore C
  gemm_batched<Algo>(ExecSpace(), Op::T, Op::N, 1, a3, b3, 0, c3);
  const double err = g.error(c3, "out3");
  INFO("batched rel err " << err);
  CHECK(err < test::parity_tol<T>());
}

/// Naive double reference on the host.
std::vector<double> ref_gemm(Op ta, Op tb, int m, int n, int k, double alpha, const std::vector<double>& a,
                             const std::vector<double>& b, double beta, std::vector<double> c) {
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double s = 0;
      for (int p = 0; p < k; ++p)
        s += (ta == Op::N ? a[i * k + p] : a[p * m + i]) * (tb == Op::N ? b[p * n + j] : b[j * k + p]);
      c[i * n + j] = alpha * s + beta * c[i * n + j];
    }
  return c;
}

template <class Algo, class ExecSpace, class T>
void check_gemm_sizes() {
  using Mem = typename ExecSpace::memory_space;
  // The last sizes cross the AVX-512 kernel's blocks (14 x 32 micro-tiles, 112 x 256 tiles, K in 256).
  const int sizes[][3] = {{0, 3, 4}, {3, 0, 4}, {3, 4, 0}, {1, 1, 1},   {1, 7, 3},      {5, 1, 9},
                          {17, 13, 31}, {33, 65, 7}, {64, 64, 64}, {15, 33, 1}, {113, 257, 257}, {130, 290, 520}};
  std::uint64_t seed = 7;
  for (auto& sz : sizes)
    for (Op ta : {Op::N, Op::T})
      for (Op tb : {Op::N, Op::T}) {
        const int m = sz[0], n = sz[1], k = sz[2];
        View2<T, Mem> a("a", ta == Op::N ? m : k, ta == Op::N ? k : m);
        View2<T, Mem> b("b", tb == Op::N ? k : n, tb == Op::N ? n : k);
        View2<T, Mem> c("c", m, n);
        test::fill_uniform(a, seed++);
        test::fill_uniform(b, seed++);
        test::fill_uniform(c, seed++);
        const auto want = ref_gemm(ta, tb, m, n, k, -1.25, test::to_doubles(a), test::to_doubles(b), 0.5,
                                   test::to_doubles(c));
        gemm<Algo>(ExecSpace(), ta, tb, -1.25, a, b, 0.5, c);
        const double err = test::rel_error(test::to_doubles(c), want);
        INFO("m=" << m << " n=" << n << " k=" << k << " ta=" << int(ta) << " tb=" << int(tb) << " err=" << err);
        CHECK(err < (std::is_same_v<T, float> ? 2e-6 : 1e-14));
      }
}

template <class ExecSpace>
void check_gemm_strided_rows() {
  // A row-slice of a wider matrix (LayoutStride, leading dimension > cols) goes through BLAS too.
  using Mem = typename ExecSpace::memory_space;
  View2<double, Mem> big("big", 6, 10), b("b", 4, 3), c("c", 6, 3);
  test::fill_uniform(big, 1);
  test::fill_uniform(b, 2);
  auto a = Kokkos::subview(big, Kokkos::ALL, Kokkos::make_pair(2, 6));
  gemm(ExecSpace(), Op::N, Op::N, 1, a, b, 0, c);
  View2<double, Mem> ac("ac", 6, 4);
  Kokkos::deep_copy(ac, a);
  const auto want = ref_gemm(Op::N, Op::N, 6, 3, 4, 1, test::to_doubles(ac), test::to_doubles(b), 0,
                             std::vector<double>(18, 0.0));
  CHECK(test::rel_error(test::to_doubles(c), want) < 1e-14);
}

template <class ExecSpace>
void check_gemm_errors() {
  using Mem = typename ExecSpace::memory_space;
  View2<float, Mem> a("a", 3, 4), b("b", 5, 2), c("c", 3, 2);
  CHECK_THROWS_WITH(gemm(ExecSpace(), Op::N, Op::N, 1, a, b, 0, c),
                    Catch::Contains("dcsldm::gemm") && Catch::Contains("op(A) is (3, 4)") &&
                        Catch::Contains("op(B) is (5, 2)"));
}

#if defined(DCSLDM_HAVE_HOST_AVX512_GEMM)
/// The AVX-512 kernel through the Kokkos dispatch (threaded when the space has several threads) equals the
/// raw single-threaded kernel bit for bit, and each row of C equals the same row computed alone.
template <class ExecSpace>
void check_avx512_bitwise() {
  using Mem = typename ExecSpace::memory_space;
  if constexpr (compat::is_host_space_v<ExecSpace>) {
    const int m = 300, n = 290, k = 530;
    for (Op tb : {Op::N, Op::T}) {
      View2<float, Mem> a("a", m, k), b("b", tb == Op::N ? k : n, tb == Op::N ? n : k), c("c", m, n);
      test::fill_uniform(a, 11);
      test::fill_uniform(b, 12);
      gemm<gemm_algo::HostAvx512>(ExecSpace(), Op::N, tb, 1, a, b, 0, c);
      std::vector<float> serial(std::size_t(m) * n), row(n);
      Impl::avx512_gemm::gemm_serial(false, tb == Op::T, m, n, k, 1.0f, a.data(), k, b.data(), b.extent(1), 0.0f,
                                     serial.data(), n);
      int differ = 0;
      for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) differ += c(i, j) != serial[std::size_t(i) * n + j];
      INFO("threads " << ExecSpace().concurrency() << " tb=" << int(tb));
      CHECK(differ == 0);
      for (int i : {0, 13, 14, 111, 112, 299}) {
        Impl::avx512_gemm::gemm_serial(false, tb == Op::T, 1, n, k, 1.0f, a.data() + std::size_t(i) * k, k,
                                       b.data(), b.extent(1), 0.0f, row.data(), n);
        int rd = 0;
        for (int j = 0; j < n; ++j) rd += row[j] != c(i, j);
        INFO("row " << i);
        CHECK(rd == 0);
      }
    }
  }
}

/// C = A W^T + bias in one pass (Impl::gemm_bias_fused, what nn::linear_forward runs) equals C preset to the
/// bias followed by gemm(beta = 1) bit for bit, across the kernel's blocks; where it does not apply (N < 24) it
/// says so and writes nothing.
template <class ExecSpace>
void check_avx512_bias() {
  using Mem = typename ExecSpace::memory_space;
  if constexpr (compat::is_host_space_v<ExecSpace>) {
    struct Shape { int m, n, k; };
    for (const Shape sh : {Shape{1, 24, 5}, Shape{64, 384, 128}, Shape{4, 768, 128}, Shape{300, 290, 530},
                           Shape{113, 257, 257}, Shape{7, 16, 9}}) {
      const int m = sh.m, n = sh.n, k = sh.k;
      View2<float, Mem> a("a", m, k), w("w", n, k), c("c", m, n), ref("ref", m, n);
      View1<float, Mem> bias("bias", n);
      test::fill_uniform(a, 21);
      test::fill_uniform(w, 22);
      test::fill_uniform(bias, 23, -3, 3);
      Kokkos::deep_copy(c, 7.0f);
      const bool fused = Impl::gemm_bias_fused(ExecSpace(), Op::N, Op::T, a, w, bias, c);
      INFO("m=" << m << " n=" << n << " k=" << k << " threads " << ExecSpace().concurrency());
      CHECK(fused == (n >= 24));
      for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) ref(i, j) = bias(j);
      gemm<gemm_algo::HostAvx512>(ExecSpace(), Op::N, Op::T, 1, a, w, 1, ref);
      int differ = 0, untouched = 0;
      for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) {
          differ += c(i, j) != ref(i, j);
          untouched += c(i, j) == 7.0f;
        }
      if (fused) CHECK(differ == 0);
      else CHECK(untouched == m * n);
    }
  }
}
#endif

}  // namespace

TEMPLATE_LIST_TEST_CASE("gemm matches PyTorch (default path)", "[linalg][gemm]", ExecSpaces) {
  check_gemm_golden<gemm_algo::Auto, TestType, float>();
  check_gemm_golden<gemm_algo::Auto, TestType, double>();
}
TEMPLATE_LIST_TEST_CASE("gemm matches PyTorch (vendor path)", "[linalg][gemm]", ExecSpaces) {
  check_gemm_golden<gemm_algo::Vendor, TestType, float>();
  check_gemm_golden<gemm_algo::Vendor, TestType, double>();
}
#if defined(DCSLDM_HAVE_HOST_AVX512_GEMM)
TEMPLATE_LIST_TEST_CASE("gemm: the host AVX-512 kernel", "[linalg][gemm]", ExecSpaces) {
  if constexpr (compat::is_host_space_v<TestType>) {
    check_gemm_golden<gemm_algo::HostAvx512, TestType, float>();
    check_gemm_sizes<gemm_algo::HostAvx512, TestType, float>();
    check_avx512_bitwise<TestType>();
    check_avx512_bias<TestType>();
    // A column-major operand (inner stride != 1) is refused by name, not computed wrongly.
    using Mem = typename TestType::memory_space;
    Kokkos::View<float**, Kokkos::LayoutLeft, Mem> a("a", 3, 4);
    View2<float, Mem> b("b", 4, 2), c("c", 3, 2);
    CHECK_THROWS_WITH(gemm<gemm_algo::HostAvx512>(TestType(), Op::N, Op::N, 1, a, b, 0, c),
                      Catch::Contains("gemm_algo::HostAvx512 needs unit inner strides") && Catch::Contains("m=3"));
  }
}
#endif
TEMPLATE_LIST_TEST_CASE("gemm matches PyTorch (portable kernel)", "[linalg][gemm]", ExecSpaces) {
  check_gemm_golden<gemm_algo::Portable, TestType, float>();
  check_gemm_golden<gemm_algo::Portable, TestType, double>();
}
TEMPLATE_LIST_TEST_CASE("gemm edge and odd sizes against a naive reference", "[linalg][gemm]", ExecSpaces) {
  check_gemm_sizes<gemm_algo::Auto, TestType, float>();
  check_gemm_sizes<gemm_algo::Auto, TestType, double>();
  check_gemm_sizes<gemm_algo::Vendor, TestType, float>();
  check_gemm_sizes<gemm_algo::Portable, TestType, double>();
}
TEMPLATE_LIST_TEST_CASE("gemm on strided row views", "[linalg][gemm]", ExecSpaces) {
  check_gemm_strided_rows<TestType>();
}
TEMPLATE_LIST_TEST_CASE("gemm shape errors name the shapes", "[linalg][gemm]", ExecSpaces) {
  check_gemm_errors<TestType>();
}
