// dcsldm/metrics/image_metrics.hpp: PSNR and SSIM of images (H, W, C) and batches (N, H, W, C), on
// the host, matching scikit-image's peak_signal_noise_ratio(data_range=1) and
// structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1,
// channel_axis=-1) (Wang et al. 2004).
//
// Pure C++ on xtensor images (dcsldm/image/image.hpp); computed in double.
//
// PSNR = 10 log10(R^2 / MSE), MSE over all pixels and channels; +inf when the images are equal (skimage
// returns inf too, with a warning).
//
// SSIM, per channel: with G the normalised Gaussian of standard deviation sigma truncated at radius
// r = int(3.5 sigma + 0.5) (11 taps for sigma = 1.5), applied separably,
//   ux = G*x, uy = G*y, vx = G*(x x) - ux^2, vy = G*(y y) - uy^2, vxy = G*(x y) - ux uy,
//   S = (2 ux uy + C1)(2 vxy + C2) / ((ux^2 + uy^2 + C1)(vx + vy + C2)),  C1 = (K1 R)^2, C2 = (K2 R)^2,
// and the SSIM is the mean of S over the pixels at least r from every border (skimage crops r), then
// the mean over channels. Only those pixels are computed; their windows lie inside the image, so
// skimage's border mode ('reflect') never enters the result and none is implemented.
// Images smaller than the window (H or W < 2r + 1) are refused with an error, as skimage does.
//
// Efficiency: an Ssim object owns its workspace (reused across calls); the batch functions reuse one.
#pragma once

#include <dcsldm/core/error.hpp>
#include <dcsldm/image/image.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

namespace dcsldm::metrics {

using image::Image;
using image::ImageBatch;

/// PSNR of n values: 10 log10(data_range^2 / mean((a - b)^2)); +inf when equal, NaN when n == 0.
inline double psnr(const float* a, const float* b, std::size_t n, double data_range = 1.0) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = double(a[i]) - double(b[i]);
    s += d * d;
  }
  if (n == 0) return std::numeric_limits<double>::quiet_NaN();
  if (s == 0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(data_range * data_range / (s / double(n)));
}

/// PSNR of two images of one shape (H, W, C), data range 1. Throws when the shapes differ.
inline double psnr(const Image& a, const Image& b, double data_range = 1.0) {
  DCSLDM_REQUIRE(a.shape() == b.shape(), "psnr", "shapes differ: (", a.shape()[0], ", ", a.shape()[1], ", ",
                 a.shape()[2], ") vs (", b.shape()[0], ", ", b.shape()[1], ", ", b.shape()[2], ")");
  return psnr(a.data(), b.data(), a.size(), data_range);
}

/// PSNR of each image pair of two batches (N, H, W, C): N values.
inline std::vector<double> psnr(const ImageBatch& a, const ImageBatch& b, double data_range = 1.0) {
  DCSLDM_REQUIRE(a.shape() == b.shape(), "psnr", "batch shapes differ: (", a.shape()[0], ", ", a.shape()[1], ", ",
                 a.shape()[2], ", ", a.shape()[3], ") vs (", b.shape()[0], ", ", b.shape()[1], ", ", b.shape()[2],
                 ", ", b.shape()[3], ")");
  const std::size_t N = a.shape()[0], per = N ? a.size() / N : 0;
  std::vector<double> r(N);
  for (std::size_t n = 0; n < N; ++n) r[n] = psnr(a.data() + n * per, b.data() + n * per, per, data_range);
  return r;
}

/// SSIM parameters; the defaults are Wang et al.'s and skimage's gaussian_weights=True settings.
struct SsimOptions {
  double sigma = 1.5;       ///< Gaussian window's standard deviation (pixels); radius int(3.5 sigma + 0.5)
  double K1 = 0.01, K2 = 0.03;
  double data_range = 1.0;  ///< R
};

/// SSIM evaluator owning its workspace; one per thread.
class Ssim {
 public:
  explicit Ssim(const SsimOptions& o = {}) : opt_(o) {
    DCSLDM_REQUIRE(o.sigma > 0 && o.K1 >= 0 && o.K2 >= 0 && o.data_range > 0, "ssim", "bad options: sigma = ",
                   o.sigma, ", K1 = ", o.K1, ", K2 = ", o.K2, ", data_range = ", o.data_range);
    r_ = std::size_t(3.5 * o.sigma + 0.5);
    g_.resize(2 * r_ + 1);
    double sum = 0;
    for (std::size_t k = 0; k < g_.size(); ++k) {
      const double x = double(k) - double(r_);
      g_[k] = std::exp(-0.5 / (o.sigma * o.sigma) * x * x);
      sum += g_[k];
    }
    for (double& w : g_) w /= sum;
  }

  /// Window side 2r + 1 (11 for sigma = 1.5): the smallest image height and width accepted.
  std::size_t window() const { return g_.size(); }

  /// Mean SSIM of two row-major (H, W, C) images at `a` and `b` (mean over the cropped pixels, then
  /// over channels). Throws when H or W is smaller than window().
  double operator()(const float* a, const float* b, std::size_t H, std::size_t W, std::size_t C) {
    const std::size_t win = window(), r = r_;
    DCSLDM_REQUIRE(H >= win && W >= win, "ssim", "image is ", H, " x ", W, ", smaller than the ", win, " x ", win,
                   " Gaussian window (skimage refuses it too)");
    DCSLDM_REQUIRE(C >= 1, "ssim", "image has no channels");
    const std::size_t IW = W - 2 * r, IH = H - 2 * r;  // interior (cropped) extents
    h_.resize(5 * H * IW);                              // horizontal sums of x, y, xx, yy, xy: (5, H, IW)
    const double C1 = (opt_.K1 * opt_.data_range) * (opt_.K1 * opt_.data_range);
    const double C2 = (opt_.K2 * opt_.data_range) * (opt_.K2 * opt_.data_range);
    const std::size_t plane = H * IW;
    double total = 0;
    for (std::size_t c = 0; c < C; ++c) {
      for (std::size_t i = 0; i < H; ++i) {
        for (std::size_t j = 0; j < IW; ++j) {
          double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
          const std::size_t base = (i * W + j) * C + c;
          for (std::size_t k = 0; k < win; ++k) {
            const double x = a[base + k * C], y = b[base + k * C], w = g_[k];
            sx += w * x;
            sy += w * y;
            sxx += w * x * x;
            syy += w * y * y;
            sxy += w * x * y;
          }
          const std::size_t o = i * IW + j;
          h_[o] = sx;
          h_[plane + o] = sy;
          h_[2 * plane + o] = sxx;
          h_[3 * plane + o] = syy;
          h_[4 * plane + o] = sxy;
        }
      }
      double sum = 0;
      for (std::size_t i = 0; i < IH; ++i) {
        for (std::size_t j = 0; j < IW; ++j) {
          double ux = 0, uy = 0, uxx = 0, uyy = 0, uxy = 0;
          for (std::size_t k = 0; k < win; ++k) {
            const std::size_t o = (i + k) * IW + j;
            const double w = g_[k];
            ux += w * h_[o];
            uy += w * h_[plane + o];
            uxx += w * h_[2 * plane + o];
            uyy += w * h_[3 * plane + o];
            uxy += w * h_[4 * plane + o];
          }
          const double vx = uxx - ux * ux, vy = uyy - uy * uy, vxy = uxy - ux * uy;
          sum += ((2 * ux * uy + C1) * (2 * vxy + C2)) / ((ux * ux + uy * uy + C1) * (vx + vy + C2));
        }
      }
      total += sum / double(IH * IW);
    }
    return total / double(C);
  }

  /// Mean SSIM of two images of one shape (H, W, C).
  double operator()(const Image& a, const Image& b) {
    DCSLDM_REQUIRE(a.shape() == b.shape(), "ssim", "shapes differ: (", a.shape()[0], ", ", a.shape()[1], ", ",
                   a.shape()[2], ") vs (", b.shape()[0], ", ", b.shape()[1], ", ", b.shape()[2], ")");
    return (*this)(a.data(), b.data(), a.shape()[0], a.shape()[1], a.shape()[2]);
  }

  /// SSIM of each image pair of two batches (N, H, W, C): N values.
  std::vector<double> operator()(const ImageBatch& a, const ImageBatch& b) {
    DCSLDM_REQUIRE(a.shape() == b.shape(), "ssim", "batch shapes differ: (", a.shape()[0], ", ", a.shape()[1],
                   ", ", a.shape()[2], ", ", a.shape()[3], ") vs (", b.shape()[0], ", ", b.shape()[1], ", ",
                   b.shape()[2], ", ", b.shape()[3], ")");
    const std::size_t N = a.shape()[0], H = a.shape()[1], W = a.shape()[2], C = a.shape()[3];
    std::vector<double> r(N);
    for (std::size_t n = 0; n < N; ++n)
      r[n] = (*this)(a.data() + n * H * W * C, b.data() + n * H * W * C, H, W, C);
    return r;
  }

 private:
  SsimOptions opt_;
  std::size_t r_ = 0;
  std::vector<double> g_;  // (2r + 1) normalised Gaussian taps
  std::vector<double> h_;  // workspace (5, H, W - 2r)
};

/// Mean SSIM of two images (H, W, C) with the default options (see Ssim).
inline double ssim(const Image& a, const Image& b, const SsimOptions& o = {}) { return Ssim(o)(a, b); }

/// SSIM of each image pair of two batches (N, H, W, C), one workspace for all.
inline std::vector<double> ssim(const ImageBatch& a, const ImageBatch& b, const SsimOptions& o = {}) {
  return Ssim(o)(a, b);
}

/// Mean of a vector of per-image values (e.g. the batch PSNR or SSIM); NaN when empty.
inline double mean(const std::vector<double>& v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  double s = 0;
  for (double x : v) s += x;
  return s / double(v.size());
}

}  // namespace dcsldm::metrics
