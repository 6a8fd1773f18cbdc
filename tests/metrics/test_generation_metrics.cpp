// Generation-quality metrics: linalg/sym_eigen (reconstruction, orthonormality, known spectra with
// repeated eigenvalues, numpy eigvalsh golden), metrics/frechet (numpy mean/cov and scipy-sqrtm FD
// goldens, closed forms for commuting covariances, identical sets), metrics/swd (pyramid levels, exact
// zero against itself, monotone growth with noise and blur, distribution shift, invariance to a
// brightness offset, unequal set sizes, determinism), and the error messages of all three.
#include <dcsldm/linalg/sym_eigen.hpp>
#include <dcsldm/metrics/frechet.hpp>
#include <dcsldm/metrics/swd.hpp>

#include "testing.hpp"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace dcsldm;
using Catch::Matchers::Contains;

namespace {

/// Random orthogonal (n, n) row-major matrix: modified Gram-Schmidt (twice) on Gaussian columns.
std::vector<double> random_orthogonal(int n, std::uint64_t seed) {
  const std::size_t N = std::size_t(n);
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> nd;
  std::vector<double> q(N * N);
  for (double& v : q) v = nd(gen);
  for (int pass = 0; pass < 2; ++pass)
    for (std::size_t j = 0; j < N; ++j) {
      for (std::size_t k = 0; k < j; ++k) {
        double d = 0;
        for (std::size_t i = 0; i < N; ++i) d += q[i * N + j] * q[i * N + k];
        for (std::size_t i = 0; i < N; ++i) q[i * N + j] -= d * q[i * N + k];
      }
      double nrm = 0;
      for (std::size_t i = 0; i < N; ++i) nrm += q[i * N + j] * q[i * N + j];
      nrm = std::sqrt(nrm);
      for (std::size_t i = 0; i < N; ++i) q[i * N + j] /= nrm;
    }
  return q;
}

/// Q diag(lambda) Q^T.
std::vector<double> with_spectrum(const std::vector<double>& q, const std::vector<double>& lambda) {
  const std::size_t N = lambda.size();
  std::vector<double> a(N * N, 0.0);
  for (std::size_t i = 0; i < N; ++i)
    for (std::size_t j = 0; j < N; ++j) {
      double s = 0;
      for (std::size_t k = 0; k < N; ++k) s += q[i * N + k] * lambda[k] * q[j * N + k];
      a[i * N + j] = s;
    }
  for (std::size_t i = 0; i < N; ++i)  // exactly symmetric
    for (std::size_t j = 0; j < i; ++j) a[i * N + j] = a[j * N + i];
  return a;
}

struct EigenErrors {
  double reconstruction;  // max |V D V^T - A| / max |A|
  double orthonormality;  // max |V^T V - I|
};

EigenErrors eigen_errors(const std::vector<double>& a, const linalg::SymEigenResult& r) {
  const std::size_t N = std::size_t(r.n);
  double amax = 0, rec = 0, orth = 0;
  for (double v : a) amax = std::max(amax, std::abs(v));
  for (std::size_t i = 0; i < N; ++i)
    for (std::size_t j = 0; j < N; ++j) {
      double s = 0, o = 0;
      for (std::size_t k = 0; k < N; ++k) {
        s += r.vectors[i * N + k] * r.values[k] * r.vectors[j * N + k];
        o += r.vectors[k * N + i] * r.vectors[k * N + j];
      }
      rec = std::max(rec, std::abs(s - a[i * N + j]));
      orth = std::max(orth, std::abs(o - (i == j ? 1.0 : 0.0)));
    }
  return {rec / std::max(amax, 1e-300), orth};
}

std::vector<double> random_symmetric(int n, std::uint64_t seed) {
  const std::size_t N = std::size_t(n);
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> ud(-1, 1);
  std::vector<double> a(N * N);
  for (std::size_t i = 0; i < N; ++i)
    for (std::size_t j = i; j < N; ++j) a[i * N + j] = a[j * N + i] = ud(gen);
  return a;
}

metrics::GaussianStats diag_stats(const std::vector<double>& mean, const std::vector<double>& var) {
  metrics::GaussianStats s;
  s.dim = int(mean.size());
  s.n = 100;
  s.mean = mean;
  s.cov.assign(mean.size() * mean.size(), 0.0);
  for (std::size_t i = 0; i < mean.size(); ++i) s.cov[i * mean.size() + i] = var[i];
  return s;
}

/// Synthetic image set (n, H, W, C): a few Gaussian bumps of random centre, width and height on a dark
/// background, plus `noise` standard normal noise, then `blur` passes of the [1, 2, 1] / 4 box (clamped
/// borders), plus `offset`. Same seed, same images.
std::vector<float> make_images(std::int64_t n, int H, int W, int C, std::uint64_t seed, double noise = 0,
                               int blur = 0, double offset = 0, double stripes = 0) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::normal_distribution<double> nd;
  const std::size_t per = std::size_t(H) * std::size_t(W) * std::size_t(C);
  std::vector<float> out(std::size_t(n) * per);
  std::vector<double> img(per), tmp(per);
  for (std::int64_t i = 0; i < n; ++i) {
    std::fill(img.begin(), img.end(), 0.1);
    for (int b = 0; b < 4; ++b) {
      const double cy = u(gen) * H, cx = u(gen) * W, r = 1.5 + 3 * u(gen);
      for (int c = 0; c < C; ++c) {
        const double amp = 0.3 + 0.6 * u(gen);
        for (int y = 0; y < H; ++y)
          for (int x = 0; x < W; ++x)
            img[(std::size_t(y) * W + x) * C + c] +=
                amp * std::exp(-((y - cy) * (y - cy) + (x - cx) * (x - cx)) / (2 * r * r));
      }
    }
    for (std::size_t k = 0; k < per; ++k) img[k] += noise * nd(gen);
    for (std::size_t k = 0; k < per; ++k)  // vertical stripes (period 4)
      img[k] += stripes * (((k / std::size_t(C)) % std::size_t(W)) % 4 < 2 ? 1 : -1);
    for (int pass = 0; pass < blur; ++pass)
      for (int dir = 0; dir < 2; ++dir) {
        for (int y = 0; y < H; ++y)
          for (int x = 0; x < W; ++x)
            for (int c = 0; c < C; ++c) {
              auto at = [&](int yy, int xx) {
                yy = std::clamp(yy, 0, H - 1);
                xx = std::clamp(xx, 0, W - 1);
                return img[(std::size_t(yy) * W + xx) * C + c];
              };
              tmp[(std::size_t(y) * W + x) * C + c] =
                  dir == 0 ? 0.25 * at(y, x - 1) + 0.5 * at(y, x) + 0.25 * at(y, x + 1)
                           : 0.25 * at(y - 1, x) + 0.5 * at(y, x) + 0.25 * at(y + 1, x);
            }
        img.swap(tmp);
      }
    for (std::size_t k = 0; k < per; ++k) out[std::size_t(i) * per + k] = float(img[k] + offset);
  }
  return out;
}

metrics::SwdOptions fast_swd() {
  metrics::SwdOptions o;
  o.patches_per_image = 32;
  o.directions = 64;
  o.repeats = 2;
  o.seed = 7;
  return o;
}

std::string describe(const metrics::SwdResult& r) {
  std::ostringstream s;
  for (std::size_t l = 0; l < r.per_level.size(); ++l) s << r.level_res[l] << ": " << r.per_level[l] << "  ";
  s << "mean " << r.mean;
  return s.str();
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// sym_eigen

TEST_CASE("sym_eigen: known spectra, repeated eigenvalues, reconstruction", "[metrics][linalg]") {
  const std::vector<std::vector<double>> spectra = {
      {3.5},                                  // n = 1
      {-2, 1, 1, 1, 4, 4},                    // repeated
      {2, 2, 2, 2, 2},                        // a multiple of I (already diagonal after rounding)
      {1e-9, 1e-3, 1, 10, 1e4},               // wide range, nearly singular
      {0, 0, 0.5, 0.5, 0.5, -1, -1, 7, 7, 7}, // singular, several clusters
  };
  std::uint64_t seed = 1;
  for (const auto& lambda : spectra) {
    const int n = int(lambda.size());
    const auto a = with_spectrum(random_orthogonal(n, seed++), lambda);
    const auto r = linalg::sym_eigen(a, n);
    auto sorted = lambda;
    std::sort(sorted.begin(), sorted.end());
    double lmax = 0, err = 0;
    for (double l : lambda) lmax = std::max(lmax, std::abs(l));
    for (int k = 0; k < n; ++k) err = std::max(err, std::abs(r.values[std::size_t(k)] - sorted[std::size_t(k)]));
    const auto e = eigen_errors(a, r);
    INFO("n = " << n << ", sweeps " << r.sweeps << ": eigenvalue error " << err / lmax << ", reconstruction "
                << e.reconstruction << ", orthonormality " << e.orthonormality);
    CHECK(err <= 1e-13 * lmax);
    CHECK(e.reconstruction <= 1e-13);
    CHECK(e.orthonormality <= 1e-13);
    CHECK(std::is_sorted(r.values.begin(), r.values.end()));
  }
}

TEST_CASE("sym_eigen: random symmetric matrices up to n = 200, values-only mode, numpy golden",
          "[metrics][linalg]") {
  for (int n : {1, 2, 3, 17, 64, 200}) {
    const auto a = random_symmetric(n, 100 + std::uint64_t(n));
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = linalg::sym_eigen(a, n);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const auto e = eigen_errors(a, r);
    INFO("n = " << n << ": " << r.sweeps << " sweeps, " << secs << " s, reconstruction " << e.reconstruction
                << ", orthonormality " << e.orthonormality);
    CHECK(e.reconstruction <= 1e-13 * std::max(1.0, std::sqrt(double(n))));
    CHECK(e.orthonormality <= 1e-13 * std::max(1.0, std::sqrt(double(n))));
    linalg::SymEigenOptions o;
    o.vectors = false;
    const auto v = linalg::sym_eigen(a, n, o);
    CHECK(v.vectors.empty());
    CHECK(test::rel_error(v.values, r.values) <= 1e-13);
    // trace and Frobenius norm are preserved
    double tr = 0, fro = 0, sl = 0, sl2 = 0;
    for (int i = 0; i < n; ++i) tr += a[std::size_t(i) * std::size_t(n) + std::size_t(i)];
    for (double x : a) fro += x * x;
    for (double l : r.values) {
      sl += l;
      sl2 += l * l;
    }
    CHECK(std::abs(sl - tr) <= 1e-12 * std::sqrt(fro));
    CHECK(std::abs(sl2 - fro) <= 1e-12 * fro);
  }
  test::Golden g("generation_metrics");
  const int n = int(g.dim("eig.a", 0));
  const auto r = linalg::sym_eigen(g.values("eig.a"), n);
  const double err = test::rel_error(r.values, g.values("eig.values"));
  INFO("eigvalsh golden: relative error " << err);
  CHECK(err <= 1e-13);
  // zero matrix and n = 0
  const auto z = linalg::sym_eigen(std::vector<double>(16, 0.0), 4);
  for (double l : z.values) CHECK(l == 0);
  CHECK(eigen_errors(std::vector<double>(16, 0.0), z).orthonormality == 0);
  CHECK(linalg::sym_eigen(std::vector<double>{}, 0).values.empty());
}

TEST_CASE("sym_eigen: errors", "[metrics][linalg]") {
  CHECK_THROWS_WITH(linalg::sym_eigen(std::vector<double>(6, 1.0), 3),
                    Contains("sym_eigen") && Contains("6 elements") && Contains("n * n = 9"));
  CHECK_THROWS_WITH(linalg::sym_eigen(std::vector<double>(4, 1.0), -2), Contains("n = -2"));
  std::vector<double> a = {1, 2, 2, 3};
  a[3] = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH(linalg::sym_eigen(a, 2), Contains("element (1, 1)") && Contains("nan"));
  a = {1, 2, 2.5, 3};
  CHECK_THROWS_WITH(linalg::sym_eigen(a, 2), Contains("not symmetric") && Contains("a(0, 1) = 2"));
  linalg::SymEigenOptions o;
  o.max_sweeps = 1;
  CHECK_THROWS_WITH(linalg::sym_eigen(random_symmetric(20, 3), 20, o), Contains("no convergence after 1 sweeps"));
}

// ---------------------------------------------------------------------------------------------------
// Frechet distance

TEST_CASE("frechet: statistics and distance match numpy / scipy", "[metrics][frechet]") {
  test::Golden g("generation_metrics");
  for (const char* name : {"fd_small", "fd_mid"}) {
    const std::string n(name);
    const auto xa = g.values(n + ".xa"), xb = g.values(n + ".xb");
    const std::int64_t na = g.dim(n + ".xa", 0), nb = g.dim(n + ".xb", 0);
    const int dim = int(g.dim(n + ".xa", 1));
    const auto sa = metrics::gaussian_stats(xa.data(), na, dim), sb = metrics::gaussian_stats(xb.data(), nb, dim);
    CHECK(sa.n == na);
    CHECK(test::rel_error(sa.mean, g.values(n + ".mean_a")) <= 1e-13);
    CHECK(test::rel_error(sa.cov, g.values(n + ".cov_a")) <= 1e-13);
    // The float overload gives the same statistics (the golden features are float32 values).
    const std::vector<float> xaf(xa.begin(), xa.end());
    const auto saf = metrics::gaussian_stats(xaf.data(), na, dim);
    CHECK(saf.mean == sa.mean);
    CHECK(saf.cov == sa.cov);
    const double fd = metrics::frechet_distance(sa, sb), want = g.values(n + ".fd")[0];
    const double rel = std::abs(fd - want) / want;
    INFO(n << ": FD " << fd << " vs scipy " << want << ", relative error " << rel);
    CHECK(rel <= 1e-10);
    // Symmetric up to rounding: the two orders take different matrix square roots (with FMA contraction,
    // -march=native, they differed by 3e-13 relative).
    CHECK(std::abs(metrics::frechet_distance(sb, sa) - fd) <= 1e-10 * fd);
    const double self = metrics::frechet_distance(sa, sa);
    INFO(n << ": FD(a, a) = " << self);
    CHECK(std::abs(self) <= 1e-12 * (1 + fd));
  }
}

TEST_CASE("frechet: closed forms for commuting covariances", "[metrics][frechet]") {
  // Diagonal: FD = sum_i (mu_a - mu_b)_i^2 + (sqrt(va_i) - sqrt(vb_i))^2.
  const std::vector<double> ma = {0.5, -1, 2, 0, 3}, mb = {0, -1, 1, 0.25, 3};
  const std::vector<double> va = {1, 4, 0.25, 9, 0}, vb = {4, 4, 1, 1, 2};
  double want = 0;
  for (std::size_t i = 0; i < ma.size(); ++i)
    want += (ma[i] - mb[i]) * (ma[i] - mb[i]) + (std::sqrt(va[i]) - std::sqrt(vb[i])) * (std::sqrt(va[i]) - std::sqrt(vb[i]));
  const double fd = metrics::frechet_distance(diag_stats(ma, va), diag_stats(mb, vb));
  INFO("diagonal: FD " << fd << " vs closed form " << want);
  CHECK(std::abs(fd - want) <= 1e-12 * want);

  // The same spectra in a common random basis: S = Q diag(v) Q^T; the closed form is unchanged. With
  // singular S_b, eigenvalues of R S_b R that should be 0 come out as +-eps ||S||, and their square roots
  // (inherent to any matrix square root) cost up to sqrt(eps ||S||) ~ 1e-8 each: a looser bound there.
  for (const auto& [n, singular] : {std::pair{1, false}, std::pair{8, false}, std::pair{128, false},
                                    std::pair{8, true}, std::pair{128, true}}) {
    std::mt19937_64 gen{std::uint64_t(n)};
    std::uniform_real_distribution<double> u(0, 2);
    const std::size_t N = std::size_t(n);
    std::vector<double> a_var(N), b_var(N), a_mu(N), b_mu(N);
    double closed = 0;
    for (int i = 0; i < n; ++i) {
      const std::size_t k = std::size_t(i);
      a_var[k] = u(gen);
      b_var[k] = singular && i % 7 == 0 ? 0 : 0.1 + u(gen);  // singular: some zero variances
      a_mu[k] = u(gen);
      b_mu[k] = u(gen);
      const double ds = std::sqrt(a_var[k]) - std::sqrt(b_var[k]);
      closed += (a_mu[k] - b_mu[k]) * (a_mu[k] - b_mu[k]) + ds * ds;
    }
    const auto q = random_orthogonal(n, 50 + std::uint64_t(n));
    auto sa = diag_stats(a_mu, a_var), sb = diag_stats(b_mu, b_var);
    sa.cov = with_spectrum(q, a_var);
    sb.cov = with_spectrum(q, b_var);
    const auto t0 = std::chrono::steady_clock::now();
    const double f = metrics::frechet_distance(sa, sb);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    INFO("rotated, dim " << n << (singular ? " (singular S_b)" : "") << ": FD " << f << " vs closed form "
                         << closed << ", relative error " << std::abs(f - closed) / closed << " (" << secs << " s)");
    CHECK(std::abs(f - closed) <= (singular ? 1e-7 : 1e-11) * closed);
  }
}

TEST_CASE("frechet: errors", "[metrics][frechet]") {
  std::vector<float> x(12, 0.5f);
  CHECK_THROWS_WITH(metrics::gaussian_stats(x.data(), 1, 12), Contains("gaussian_stats") && Contains("n = 1"));
  CHECK_THROWS_WITH(metrics::gaussian_stats(x.data(), 3, 0), Contains("dim = 0"));
  x[7] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH(metrics::gaussian_stats(x.data(), 3, 4),
                    Contains("feature 3 of sample 1 is inf") && Contains("dim = 4"));
  const auto a = diag_stats({0, 0}, {1, 1}), b = diag_stats({0, 0, 0}, {1, 1, 1});
  CHECK_THROWS_WITH(metrics::frechet_distance(a, b), Contains("frechet_distance") && Contains("2 vs 3"));
  auto c = a;
  c.n = 1;
  CHECK_THROWS_WITH(metrics::frechet_distance(a, c), Contains("n = 100 and 1"));
  c = a;
  c.cov.pop_back();
  CHECK_THROWS_WITH(metrics::frechet_distance(a, c), Contains("cov sizes 4, 3"));
}

// ---------------------------------------------------------------------------------------------------
// Sliced Wasserstein distance

TEST_CASE("swd: pyramid levels and exact zero against itself", "[metrics][swd]") {
  const auto o = fast_swd();
  const auto a28 = make_images(8, 28, 28, 1, 1);
  const auto r28 = metrics::sliced_wasserstein(a28.data(), 8, a28.data(), 8, 28, 28, 1, o);
  CHECK(r28.level_res == std::vector<int>{28, 14, 7});
  for (double v : r28.per_level) CHECK(v == 0);
  CHECK(r28.mean == 0);
  const auto a64 = make_images(3, 64, 64, 3, 2);
  const auto b64 = make_images(3, 64, 64, 3, 3);
  const auto r64 = metrics::sliced_wasserstein(a64.data(), 3, b64.data(), 3, 64, 64, 3, o);
  CHECK(r64.level_res == std::vector<int>{64, 32, 16, 8});
  CHECK(r64.mean > 0);
  double s = 0;
  for (double v : r64.per_level) s += v;
  CHECK(r64.mean == Approx(s / 4).epsilon(1e-15));
  // non-square, odd sides: 30 x 20 -> 15 x 10 -> (8 x 5 stops: 5 < 7)
  const auto an = make_images(4, 30, 20, 2, 4);
  const auto rn = metrics::sliced_wasserstein(an.data(), 4, an.data(), 4, 30, 20, 2, o);
  CHECK(rn.level_res == std::vector<int>{30, 15});
  // an image exactly the patch size: one level
  const auto a7 = make_images(4, 7, 7, 1, 5);
  const auto b7 = make_images(4, 7, 7, 1, 6);
  const auto r7 = metrics::sliced_wasserstein(a7.data(), 4, b7.data(), 4, 7, 7, 1, o);
  CHECK(r7.level_res == std::vector<int>{7});
  CHECK(std::isfinite(r7.mean));
}

TEST_CASE("swd: grows monotonically with noise and blur, detects a shift, ignores a brightness offset",
          "[metrics][swd]") {
  const auto o = fast_swd();
  const std::int64_t n = 128;
  const int H = 28, W = 28, C = 1;
  const auto ref = make_images(n, H, W, C, 11);
  auto swd = [&](const std::vector<float>& b) { return metrics::sliced_wasserstein(ref.data(), n, b.data(), n, H, W, C, o); };

  const auto same = swd(make_images(n, H, W, C, 12));  // another draw of the same distribution
  INFO("same distribution: " << describe(same));
  double prev = same.mean;
  for (double noise : {0.02, 0.05, 0.1, 0.2}) {
    const auto r = swd(make_images(n, H, W, C, 12, noise));
    INFO("noise " << noise << ": " << describe(r));
    CHECK(r.mean > prev);
    CHECK(r.per_level[0] > same.per_level[0]);
    prev = r.mean;
  }
  prev = same.mean;
  for (int blur : {1, 2, 4}) {
    const auto r = swd(make_images(n, H, W, C, 12, 0, blur));
    INFO("blur " << blur << ": " << describe(r));
    CHECK(r.mean > prev);
    prev = r.mean;
  }
  const auto shifted = swd(make_images(n, H, W, C, 12, 0, 0, 0, 0.1));
  INFO("stripes: " << describe(shifted));
  CHECK(shifted.mean > 3 * same.mean);
  // A brightness offset moves every Gaussian level by the offset; the band-pass levels do not see it and
  // the coarsest level's normalisation removes it.
  const auto offset = swd(make_images(n, H, W, C, 12, 0, 0, 0.3));
  INFO("offset 0.3: " << describe(offset));
  CHECK(std::abs(offset.mean - same.mean) <= 1e-3 * same.mean);
}

TEST_CASE("swd: unequal set sizes, quantile matching, determinism", "[metrics][swd]") {
  // 1-D W1 of step quantile functions: {0, 1} vs {0, 0.5, 1} differ by 0.5 on [1/3, 2/3): 1/6.
  const std::vector<double> a = {0, 1}, b = {0, 0.5, 1}, aa = {0, 0, 1, 1};
  CHECK(metrics::Impl::swd_w1_sorted(a.data(), 2, b.data(), 3) == Approx(1.0 / 6).epsilon(1e-15));
  CHECK(metrics::Impl::swd_w1_sorted(b.data(), 3, a.data(), 2) == Approx(1.0 / 6).epsilon(1e-15));
  CHECK(metrics::Impl::swd_w1_sorted(a.data(), 2, aa.data(), 4) == 0);  // duplicates: same distribution
  CHECK(metrics::Impl::swd_w1_sorted(a.data(), 2, b.data() + 1, 2) == Approx(0.25).epsilon(1e-15));

  auto o = fast_swd();
  const auto x = make_images(96, 28, 28, 1, 21), y = make_images(64, 28, 28, 1, 22);
  const auto yn = make_images(64, 28, 28, 1, 22, 0.1);
  const auto r1 = metrics::sliced_wasserstein(x.data(), 96, y.data(), 64, 28, 28, 1, o);
  const auto r2 = metrics::sliced_wasserstein(x.data(), 96, y.data(), 64, 28, 28, 1, o);
  const auto rn = metrics::sliced_wasserstein(x.data(), 96, yn.data(), 64, 28, 28, 1, o);
  INFO("96 vs 64 images: " << describe(r1) << "; noisy: " << describe(rn));
  CHECK(r1.per_level == r2.per_level);  // bit-identical
  CHECK(r1.mean == r2.mean);
  // (the 7 x 7 level has one window position: 96 vs 64 samples of a 49-d distribution, noisy itself)
  CHECK(rn.per_level[0] > 2 * r1.per_level[0]);
  // The first 64 images of x against y with the same seed: the same positions as the equal-size path.
  const auto e1 = metrics::sliced_wasserstein(x.data(), 64, y.data(), 64, 28, 28, 1, o);
  CHECK(std::isfinite(e1.mean));
  o.seed = 8;
  const auto r3 = metrics::sliced_wasserstein(x.data(), 96, y.data(), 64, 28, 28, 1, o);
  INFO("seed 8: " << describe(r3));
  CHECK(r3.mean != r1.mean);
  CHECK(std::abs(r3.mean - r1.mean) <= 0.3 * r1.mean);  // a different draw, not a different answer
}

TEST_CASE("swd: errors", "[metrics][swd]") {
  const auto x = make_images(2, 8, 8, 1, 1);
  CHECK_THROWS_WITH(metrics::sliced_wasserstein(x.data(), 0, x.data(), 2, 8, 8, 1),
                    Contains("sliced_wasserstein") && Contains("empty image set: na = 0"));
  CHECK_THROWS_WITH(metrics::sliced_wasserstein(x.data(), 2, x.data(), 2, 6, 8, 1),
                    Contains("images are 6 x 8, smaller than the 7 x 7 patch"));
  metrics::SwdOptions o;
  o.directions = 0;
  CHECK_THROWS_WITH(metrics::sliced_wasserstein(x.data(), 2, x.data(), 2, 8, 8, 1, o), Contains("directions = 0"));
  auto bad = x;
  bad[64 + 8 * 3 + 5] = std::numeric_limits<float>::quiet_NaN();  // image 1, y 3, x 5
  CHECK_THROWS_WITH(metrics::sliced_wasserstein(x.data(), 2, bad.data(), 2, 8, 8, 1),
                    Contains("pixel (y 3, x 5, c 0) of image 1 of set b is nan"));
}

TEST_CASE("swd: timing of 1000 vs 1000 28 x 28 images with the default options", "[.][metrics][swd][timing]") {
  const auto a = make_images(1000, 28, 28, 1, 1), b = make_images(1000, 28, 28, 1, 2);
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = metrics::sliced_wasserstein(a.data(), 1000, b.data(), 1000, 28, 28, 1);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  WARN("1000 vs 1000 28x28x1, defaults: " << describe(r) << " in " << secs << " s");
  CHECK(std::isfinite(r.mean));
}
