// dcsldm/metrics/frechet.hpp: the Frechet distance between Gaussians fitted to two feature sets (Dowson &
// Landau 1982), the statistic of FID (Heusel et al., "GANs trained by a two time-scale update rule
// converge to a local Nash equilibrium", NeurIPS 2017); matches pytorch-fid's calculate_frechet_distance
// (numpy mean, np.cov with n - 1, scipy.linalg.sqrtm) up to the conditioning of sqrtm.
//
// Host-side evaluation code, double precision.
//
//   FD = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^{1/2}).
//
// The last trace is computed through symmetric eigen-decompositions (linalg/sym_eigen.hpp) rather than a
// general matrix square root: with S_a = V D V^T and R = S_a^{1/2} = V max(D, 0)^{1/2} V^T,
//   S_a S_b = R (R S_b R) R^{-1}  is similar to  M = R S_b R  (symmetric positive semi-definite), so
//   tr((S_a S_b)^{1/2}) = tr(M^{1/2}) = sum_k sqrt(max(lambda_k(M), 0)).
// Negative eigenvalues (round-off of singular covariances, e.g. n <= dim) are clamped to 0, so the result
// is always real; no epsilon is added to the diagonals (pytorch-fid's fallback). An eigenvalue of M that
// is exactly 0 (singular covariance) comes out as about +-eps ||M||, so each contributes an absolute error
// up to sqrt(eps ||M||) (~1e-8 ||M||^{1/2}), as with any matrix square root; for full-rank covariances the
// result agrees with scipy's sqrtm route to ~1e-12 relative. Cost: two Jacobi
// decompositions and two n^3 products, about 10 ms at dim = 128.
//
// FD of identical statistics is 0 up to round-off (it can come out as a tiny negative number; it is not
// clamped).
#pragma once

#include <dcsldm/core/error.hpp>
#include <dcsldm/linalg/sym_eigen.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace dcsldm::metrics {

/// Mean and unbiased covariance of n feature vectors of length dim.
struct GaussianStats {
  int dim = 0;
  std::int64_t n = 0;        ///< number of samples the statistics came from
  std::vector<double> mean;  ///< (dim,)
  std::vector<double> cov;   ///< (dim, dim) row-major, sum_i (x_i - mean)(x_i - mean)^T / (n - 1)
};

namespace Impl {
template <class T>
GaussianStats gaussian_stats(const T* x, std::int64_t n, int dim) {
  DCSLDM_REQUIRE(dim >= 1, "gaussian_stats", "dim = ", dim, " must be >= 1");
  DCSLDM_REQUIRE(n >= 2, "gaussian_stats", "n = ", n, " samples; the unbiased covariance needs n >= 2");
  const std::size_t d = std::size_t(dim);
  GaussianStats s;
  s.dim = dim;
  s.n = n;
  s.mean.assign(d, 0.0);
  for (std::int64_t i = 0; i < n; ++i) {
    const T* row = x + std::size_t(i) * d;
    for (std::size_t j = 0; j < d; ++j) {
      const double v = double(row[j]);
      DCSLDM_REQUIRE(std::isfinite(v), "gaussian_stats", "feature ", j, " of sample ", i, " is ", v, " (n = ", n,
                     ", dim = ", dim, ")");
      s.mean[j] += v;
    }
  }
  for (double& m : s.mean) m /= double(n);
  // Two-pass: centred rows, upper triangle accumulated, then mirrored.
  s.cov.assign(d * d, 0.0);
  std::vector<double> c(d);
  for (std::int64_t i = 0; i < n; ++i) {
    const T* row = x + std::size_t(i) * d;
    for (std::size_t j = 0; j < d; ++j) c[j] = double(row[j]) - s.mean[j];
    for (std::size_t j = 0; j < d; ++j) {
      const double cj = c[j];
      double* out = &s.cov[j * d];
      for (std::size_t k = j; k < d; ++k) out[k] += cj * c[k];
    }
  }
  const double inv = 1.0 / double(n - 1);
  for (std::size_t j = 0; j < d; ++j)
    for (std::size_t k = j; k < d; ++k) s.cov[k * d + j] = s.cov[j * d + k] = s.cov[j * d + k] * inv;
  return s;
}
}  // namespace Impl

/// Mean and unbiased (n - 1) covariance of `features`, row-major (n, dim), accumulated in double.
/// Throws for dim < 1, n < 2 and a non-finite feature (naming the sample and feature).
inline GaussianStats gaussian_stats(const float* features, std::int64_t n, int dim) {
  return Impl::gaussian_stats(features, n, dim);
}
/// As above, for double features.
inline GaussianStats gaussian_stats(const double* features, std::int64_t n, int dim) {
  return Impl::gaussian_stats(features, n, dim);
}

/// tr((S_a S_b)^{1/2}) for symmetric positive semi-definite (dim, dim) row-major S_a, S_b, through
/// R = S_a^{1/2} and the eigenvalues of R S_b R (see the header comment).
inline double trace_sqrt_product(const std::vector<double>& sa, const std::vector<double>& sb, int dim) {
  const std::size_t d = std::size_t(dim);
  DCSLDM_REQUIRE(dim >= 1 && sa.size() == d * d && sb.size() == d * d, "trace_sqrt_product", "dim = ", dim,
                 ", matrices have ", sa.size(), " and ", sb.size(), " elements, expected dim * dim");
  const auto ea = linalg::sym_eigen(sa, dim);
  // R = V diag(sqrt(max(D, 0))) V^T
  std::vector<double> vs(d * d), R(d * d, 0.0);  // vs = V diag(sqrt D)
  for (std::size_t i = 0; i < d; ++i)
    for (std::size_t k = 0; k < d; ++k) vs[i * d + k] = ea.vectors[i * d + k] * std::sqrt(std::max(ea.values[k], 0.0));
  for (std::size_t i = 0; i < d; ++i)
    for (std::size_t j = i; j < d; ++j) {
      double acc = 0;
      for (std::size_t k = 0; k < d; ++k) acc += vs[i * d + k] * ea.vectors[j * d + k];
      R[i * d + j] = R[j * d + i] = acc;
    }
  // M = R S_b R: T = R S_b, then M = T R (M_ij = sum_k T_ik R_jk, R symmetric); only the upper triangle.
  std::vector<double> T(d * d, 0.0), M(d * d);
  for (std::size_t i = 0; i < d; ++i)
    for (std::size_t k = 0; k < d; ++k) {
      const double r = R[i * d + k];
      for (std::size_t j = 0; j < d; ++j) T[i * d + j] += r * sb[k * d + j];
    }
  for (std::size_t i = 0; i < d; ++i)
    for (std::size_t j = i; j < d; ++j) {
      double acc = 0;
      for (std::size_t k = 0; k < d; ++k) acc += T[i * d + k] * R[j * d + k];
      M[i * d + j] = M[j * d + i] = acc;
    }
  linalg::SymEigenOptions o;
  o.vectors = false;
  const auto em = linalg::sym_eigen(M, dim, o);
  double tr = 0;
  for (double l : em.values) tr += std::sqrt(std::max(l, 0.0));
  return tr;
}

/// Frechet distance |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^{1/2}) between two Gaussians
/// (FID when the features are Inception pool features). Throws when the dimensions differ, a set has
/// n < 2, or the vectors do not have dim (mean) and dim * dim (cov) elements.
inline double frechet_distance(const GaussianStats& a, const GaussianStats& b) {
  DCSLDM_REQUIRE(a.dim == b.dim, "frechet_distance", "feature dimensions differ: ", a.dim, " vs ", b.dim);
  DCSLDM_REQUIRE(a.n >= 2 && b.n >= 2, "frechet_distance", "statistics from n = ", a.n, " and ", b.n,
                 " samples; each needs n >= 2");
  const std::size_t d = std::size_t(a.dim);
  DCSLDM_REQUIRE(a.dim >= 1 && a.mean.size() == d && b.mean.size() == d && a.cov.size() == d * d &&
                     b.cov.size() == d * d,
                 "frechet_distance", "dim = ", a.dim, " but mean sizes ", a.mean.size(), ", ", b.mean.size(),
                 " and cov sizes ", a.cov.size(), ", ", b.cov.size(), " (expected dim and dim * dim)");
  double dmu = 0, tra = 0, trb = 0;
  for (std::size_t j = 0; j < d; ++j) {
    const double x = a.mean[j] - b.mean[j];
    dmu += x * x;
    tra += a.cov[j * d + j];
    trb += b.cov[j * d + j];
  }
  return dmu + tra + trb - 2 * trace_sqrt_product(a.cov, b.cov, a.dim);
}

}  // namespace dcsldm::metrics
