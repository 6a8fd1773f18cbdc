// benchmarks/bench_gemm.cpp: dcsldm::gemm next to a direct cblas_sgemm call at transformer shapes.
//
// The three products of a linear layer x (tokens, width) -> y (tokens, width), W (width, width):
//   fwd_NT    y  = x W^T            gemm(Op::N, Op::T), M = tokens, N = width,  K = width
//   bwd_dx_NN dx = dy W             gemm(Op::N, Op::N), M = tokens, N = width,  K = width
//   bwd_dw_TN dW += dy^T x          gemm(Op::T, Op::N), M = width,  N = width,  K = tokens
// Each is 2 M N K FLOP. Names: gemm_<case>/<impl>/tokens:<T>/width:<C>, impl in {dcsldm, cblas,
// portable}; "dcsldm" is gemm() as the layers call it (gemm_algo::Auto: the host AVX-512 kernel where it is
// compiled, else BLAS); "cblas" calls cblas_sgemm directly on the same buffers with the same thread count, so
// cblas / dcsldm is the AVX-512 kernel's gain over the BLAS (or, without it, the cost of the dispatch).
// Every variant is checked before it is timed: one product on a zeroed C against double-precision dot products
// at 61 sampled entries (relative error > 1e-4 fails the case).
#include "bench_common.hpp"

#include <dcsldm/linalg/gemm.hpp>

#if defined(DCSLDM_HAVE_CBLAS)
#include <cblas.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <typeinfo>

namespace dcsldm::bench {
namespace {

struct GemmCase {
  const char* name;
  Op op_a, op_b;
  float beta;
};
constexpr GemmCase kCases[] = {
    {"fwd_NT", Op::N, Op::T, 0.0f},
    {"bwd_dx_NN", Op::N, Op::N, 0.0f},
    {"bwd_dw_TN", Op::T, Op::N, 1.0f},
};

/// Operand buffers for one (case, tokens, width): A, B, C as the case needs them.
struct GemmBuffers {
  V2<float> a, b, c;
  int m, n, k;
};

GemmBuffers make_buffers(const GemmCase& gc, int tokens, int width) {
  GemmBuffers g;
  if (gc.op_a == Op::N) {  // fwd / dx: A = x or dy (tokens, width), B = W (width, width)
    g.a = V2<float>("A", tokens, width);
    g.b = V2<float>("B", width, width);
    g.c = V2<float>("C", tokens, width);
    g.m = tokens, g.n = width, g.k = width;
  } else {  // dW: A = dy (tokens, width) used transposed, B = x (tokens, width)
    g.a = V2<float>("A", tokens, width);
    g.b = V2<float>("B", tokens, width);
    g.c = V2<float>("C", width, width);
    g.m = width, g.n = width, g.k = tokens;
  }
  fill(g.a, 1, 0.5);
  fill(g.b, 2, 0.5);
  fill(g.c, 3, 0.0);
  return g;
}

/// max |C - ref| / max |ref| over sampled entries of C = op(A) op(B) (C as one call with beta = 0 left it).
double sampled_error(const GemmCase& gc, const GemmBuffers& g) {
  auto a = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), g.a);
  auto b = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), g.b);
  auto c = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), g.c);
  double err = 0, ref_max = 0;
  for (int s = 0; s < 61; ++s) {
    const int i = int((std::int64_t(s) * 7919) % g.m), j = int((std::int64_t(s) * 104729 + 13) % g.n);
    double ref = 0;
    for (int p = 0; p < g.k; ++p)
      ref += double(gc.op_a == Op::N ? a(i, p) : a(p, i)) * double(gc.op_b == Op::N ? b(p, j) : b(j, p));
    err = std::max(err, std::abs(double(c(i, j)) - ref));
    ref_max = std::max(ref_max, std::abs(ref));
  }
  return ref_max > 0 ? err / ref_max : err;
}

/// Checks a variant once per case (Google Benchmark calls a case several times): `call_zero_beta` computes
/// C = op(A) op(B) into g.c. False (case skipped with the error) if it differs from the reference.
template <class Call>
bool check_variant(benchmark::State& state, const std::string& key, const GemmCase& gc, const GemmBuffers& g,
                   const Call& call_zero_beta) {
  static std::map<std::string, double> checked;
  if (!checked.count(key)) {
    call_zero_beta();
    Kokkos::fence();
    checked[key] = sampled_error(gc, g);
  }
  const double err = checked[key];
  if (!(err <= 1e-4)) {
    state.SkipWithError(("variant differs from the double-precision reference: relative error " +
                         std::to_string(err)).c_str());
    return false;
  }
  state.counters["rel_err_vs_double"] = err;
  return true;
}

template <class Algo>
void run_dcsldm(benchmark::State& state, GemmCase gc, int tokens, int width) {
  GemmBuffers g = make_buffers(gc, tokens, width);
  const Exec space;
  const std::string key = std::string(gc.name) + typeid(Algo).name() + std::to_string(tokens) + "x" + std::to_string(width);
  if (!check_variant(state, key, gc, g,
                     [&] { gemm<Algo>(space, gc.op_a, gc.op_b, 1.0f, g.a, g.b, 0.0f, g.c); }))
    return;
  gemm<Algo>(space, gc.op_a, gc.op_b, 1.0f, g.a, g.b, gc.beta, g.c);  // warm-up (thread pools, caches)
  space.fence();
  for (auto _ : state) {
    gemm<Algo>(space, gc.op_a, gc.op_b, 1.0f, g.a, g.b, gc.beta, g.c);
    space.fence();
  }
  set_flops(state, 2.0 * g.m * g.n * g.k);
}

#if defined(DCSLDM_HAVE_CBLAS)
void run_cblas(benchmark::State& state, GemmCase gc, int tokens, int width) {
  GemmBuffers g = make_buffers(gc, tokens, width);
#if defined(DCSLDM_HAVE_OPENBLAS)
  openblas_set_num_threads(Exec().concurrency());  // what dcsldm::gemm does on this space
#endif
  const auto ta = gc.op_a == Op::N ? CblasNoTrans : CblasTrans;
  const auto tb = gc.op_b == Op::N ? CblasNoTrans : CblasTrans;
  const int lda = int(g.a.extent(1)), ldb = int(g.b.extent(1)), ldc = int(g.c.extent(1));
  auto call = [&] {
    cblas_sgemm(CblasRowMajor, ta, tb, g.m, g.n, g.k, 1.0f, g.a.data(), lda, g.b.data(), ldb, gc.beta,
                g.c.data(), ldc);
  };
  const std::string key = std::string(gc.name) + "cblas" + std::to_string(tokens) + "x" + std::to_string(width);
  if (!check_variant(state, key, gc, g, [&] {
        cblas_sgemm(CblasRowMajor, ta, tb, g.m, g.n, g.k, 1.0f, g.a.data(), lda, g.b.data(), ldb, 0.0f,
                    g.c.data(), ldc);
      }))
    return;
  call();
  for (auto _ : state) {
    call();
    benchmark::ClobberMemory();
  }
  set_flops(state, 2.0 * g.m * g.n * g.k);
}
#endif

std::string shape_name(const GemmCase& gc, const char* impl, int tokens, int width) {
  return std::string("gemm_") + gc.name + "/" + impl + "/tokens:" + std::to_string(tokens) +
         "/width:" + std::to_string(width);
}

}  // namespace

void register_gemm() {
  for (const int tokens : {256, 1024})
    for (const int width : {128, 256, 512, 1024})
      for (const GemmCase& gc : kCases) {
        add(shape_name(gc, "dcsldm", tokens, width), [=](benchmark::State& s) {
          run_dcsldm<gemm_algo::Auto>(s, gc, tokens, width);
        });
#if defined(DCSLDM_HAVE_CBLAS)
        if constexpr (Kokkos::SpaceAccessibility<Kokkos::HostSpace, Mem>::accessible)
          add(shape_name(gc, "cblas", tokens, width),
              [=](benchmark::State& s) { run_cblas(s, gc, tokens, width); });
#endif
      }
  // The portable Kokkos kernel (what non-BLAS backends run), at one small shape for reference.
  add(shape_name(kCases[0], "portable", 256, 128), [](benchmark::State& s) {
    run_dcsldm<gemm_algo::Portable>(s, kCases[0], 256, 128);
  });
}

}  // namespace dcsldm::bench
