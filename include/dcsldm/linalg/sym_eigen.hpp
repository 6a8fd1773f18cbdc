// dcsldm/linalg/sym_eigen.hpp: eigenvalues and eigenvectors of a dense real symmetric matrix by the
// cyclic Jacobi method (Jacobi 1846; Rutishauser's stable rotation, Golub & Van Loan, "Matrix
// Computations", 4th ed., section 8.5). Matches numpy.linalg.eigh: eigenvalues ascending, eigenvector k
// in column k of a row-major (n, n) matrix.
//
// Host-side evaluation code in double (e.g. the matrix square roots of metrics/frechet.hpp), not a hot
// path: O(n^3) per sweep, usually 6-10 sweeps; n = 128 takes milliseconds, n = 512 a few seconds.
//
// Algorithm. A sweep visits every pair p < q in row order and, when |a_pq| > tol * ||A||_F / n, applies
// the plane rotation J(p, q, theta) with A <- J^T A J that zeroes a_pq:
//   theta = (a_qq - a_pp) / (2 a_pq),  t = sign(theta) / (|theta| + sqrt(theta^2 + 1)),
//   c = 1 / sqrt(t^2 + 1),  s = t c,
//   a_pp <- a_pp - t a_pq,  a_qq <- a_qq + t a_pq,  a_pq = a_qp <- 0,
//   a_pk <- c a_pk - s a_qk,  a_qk <- s a_pk + c a_qk  (k != p, q; mirrored into column p, q),
// and accumulates V <- V J. The iteration stops after the first sweep with no rotation; then every
// off-diagonal |a_pq| <= tol ||A||_F / n, so the off-diagonal Frobenius norm is <= tol ||A||_F and each
// eigenvalue is within that of the returned diagonal (Weyl). Rotations preserve ||A||_F; the rounding
// they add to off-diagonal entries is relative to those (small) entries, so the threshold is reached.
//
// The input must be symmetric to within `symmetry_tol` (relative to max |a_ij|); the method works on
// (A + A^T) / 2, so round-off asymmetry from products such as R S R is harmless.
#pragma once

#include <dcsldm/core/error.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <vector>

namespace dcsldm::linalg {

/// Options of sym_eigen.
struct SymEigenOptions {
  bool vectors = true;          ///< also compute the eigenvectors
  double tol = 1e-15;           ///< off-diagonal Frobenius norm at convergence, relative to ||A||_F
  int max_sweeps = 100;         ///< error when not converged after this many sweeps
  double symmetry_tol = 1e-10;  ///< max |a_ij - a_ji| allowed, relative to max |a_ij|
};

/// Result of sym_eigen.
struct SymEigenResult {
  int n = 0;
  std::vector<double> values;   ///< (n,) eigenvalues, ascending
  std::vector<double> vectors;  ///< (n, n) row-major, column k = unit eigenvector of values[k]; empty
                                ///< when not requested
  int sweeps = 0;               ///< Jacobi sweeps done (the last one made no rotation)
};

/// Eigen-decomposition A = V diag(values) V^T of the symmetric n x n row-major matrix at `a`
/// (cyclic Jacobi, see the header comment). n >= 0 (n = 0 gives empty results). Throws on a non-finite
/// element (naming it), on asymmetry beyond o.symmetry_tol, and when max_sweeps are not enough.
inline SymEigenResult sym_eigen(const double* a, int n, const SymEigenOptions& o = {}) {
  DCSLDM_REQUIRE(n >= 0, "sym_eigen", "n = ", n, " is negative");
  DCSLDM_REQUIRE(o.tol > 0 && o.max_sweeps >= 1 && o.symmetry_tol >= 0, "sym_eigen", "bad options: tol = ", o.tol,
                 ", max_sweeps = ", o.max_sweeps, ", symmetry_tol = ", o.symmetry_tol);
  const std::size_t N = std::size_t(n);
  SymEigenResult r;
  r.n = n;
  if (n == 0) return r;

  double amax = 0;
  for (std::size_t i = 0; i < N; ++i)
    for (std::size_t j = 0; j < N; ++j) {
      const double v = a[i * N + j];
      DCSLDM_REQUIRE(std::isfinite(v), "sym_eigen", "element (", i, ", ", j, ") of the ", n, " x ", n,
                     " matrix is ", v);
      amax = std::max(amax, std::abs(v));
    }
  std::vector<double> A(N * N);  // (n, n) working copy, kept symmetric
  for (std::size_t i = 0; i < N; ++i)
    for (std::size_t j = i; j < N; ++j) {
      const double x = a[i * N + j], y = a[j * N + i];
      DCSLDM_REQUIRE(std::abs(x - y) <= o.symmetry_tol * amax, "sym_eigen", "matrix is not symmetric: a(", i, ", ",
                     j, ") = ", x, " but a(", j, ", ", i, ") = ", y, " (max |a| = ", amax, ", symmetry_tol = ",
                     o.symmetry_tol, ")");
      A[i * N + j] = A[j * N + i] = 0.5 * (x + y);
    }

  // Wt = V^T (row k = column k of V), so that rotations update contiguous rows.
  std::vector<double> Wt;
  if (o.vectors) {
    Wt.assign(N * N, 0.0);
    for (std::size_t i = 0; i < N; ++i) Wt[i * N + i] = 1;
  }
  double fro2 = 0;
  for (double v : A) fro2 += v * v;
  const double thresh = o.tol * std::sqrt(fro2) / double(n);

  bool converged = false;
  while (!converged) {
    DCSLDM_REQUIRE(r.sweeps < o.max_sweeps, "sym_eigen", "no convergence after ", o.max_sweeps,
                   " sweeps (n = ", n, ", tol = ", o.tol, ")");
    ++r.sweeps;
    converged = true;
    for (std::size_t p = 0; p + 1 < N; ++p) {
      for (std::size_t q = p + 1; q < N; ++q) {
        const double apq = A[p * N + q];
        if (!(std::abs(apq) > thresh)) continue;
        converged = false;
        const double app = A[p * N + p], aqq = A[q * N + q];
        const double theta = (aqq - app) / (2 * apq);
        double t;
        if (std::abs(theta) > 1e150) {
          t = 0.5 / theta;  // theta^2 would overflow; t ~ 1 / (2 theta)
        } else {
          t = (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        }
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        double* rp = &A[p * N];
        double* rq = &A[q * N];
        for (std::size_t k = 0; k < N; ++k) {
          const double x = rp[k], y = rq[k];
          rp[k] = c * x - s * y;
          rq[k] = s * x + c * y;
        }
        for (std::size_t k = 0; k < N; ++k) {  // mirror rows p, q into columns p, q
          A[k * N + p] = rp[k];
          A[k * N + q] = rq[k];
        }
        rp[p] = app - t * apq;
        rq[q] = aqq + t * apq;
        rp[q] = rq[p] = 0;
        if (o.vectors) {
          double* wp = &Wt[p * N];
          double* wq = &Wt[q * N];
          for (std::size_t k = 0; k < N; ++k) {
            const double x = wp[k], y = wq[k];
            wp[k] = c * x - s * y;
            wq[k] = s * x + c * y;
          }
        }
      }
    }
  }

  std::vector<std::size_t> order(N);
  std::iota(order.begin(), order.end(), std::size_t(0));
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t i, std::size_t j) { return A[i * N + i] < A[j * N + j]; });
  r.values.resize(N);
  for (std::size_t k = 0; k < N; ++k) r.values[k] = A[order[k] * N + order[k]];
  if (o.vectors) {
    r.vectors.resize(N * N);
    for (std::size_t k = 0; k < N; ++k)
      for (std::size_t i = 0; i < N; ++i) r.vectors[i * N + k] = Wt[order[k] * N + i];
  }
  return r;
}

/// sym_eigen of a row-major (n, n) matrix held in a vector; throws when a.size() != n * n.
inline SymEigenResult sym_eigen(const std::vector<double>& a, int n, const SymEigenOptions& o = {}) {
  DCSLDM_REQUIRE(n >= 0 && a.size() == std::size_t(n) * std::size_t(n), "sym_eigen", "matrix has ", a.size(),
                 " elements, expected n * n = ", std::int64_t(n) * std::int64_t(n), " for a square n = ", n,
                 " matrix");
  return sym_eigen(a.data(), n, o);
}

}  // namespace dcsldm::linalg
