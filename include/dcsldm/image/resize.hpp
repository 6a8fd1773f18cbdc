// dcsldm/image/resize.hpp: separable image resampling on the host: exact area (box) filter, and
// bilinear / bicubic with the semantics of PyTorch's F.interpolate(align_corners=False, antialias=False).
//
// Pure C++ on xtensor images (H, W, C) and batches (N, H, W, C) (dcsldm/image/image.hpp).
//
// Filters, for one axis of `in` input and `out` output pixels (the 2D filters are the product of the
// two axes' filters, applied rows first, then columns):
// - Area: output pixel o is the exact mean of the input over its footprint [o in/out, (o+1) in/out),
//   input pixel k being the box [k, k+1) of constant value. Weights are overlap / (in/out), computed
//   in exact integer arithmetic, for ANY ratio, integer or not. For downscaling this is the exact
//   box-filter integration (the mean of the image is conserved exactly). For upscaling it is the
//   exact integral of the nearest-neighbour (piecewise-constant) image: each output pixel copies the
//   input pixel it falls in, and pixels straddling an input boundary mix the two by area
//   ("pixel mixing"); it is NOT bilinear. It equals torch F.interpolate(mode='area') (which is
//   adaptive_avg_pool2d) when in is a multiple of out; for other ratios torch averages whole input
//   pixels with equal weights and is not exact.
// - Bilinear: torch mode='bilinear', align_corners=False: source coordinate s = (o + 0.5) in/out - 0.5
//   clamped to >= 0, linear interpolation between floor(s) and the next pixel (clamped to the edge).
// - Bicubic: torch mode='bicubic', align_corners=False: s = (o + 0.5) in/out - 0.5 (not clamped),
//   t = s - floor(s), Keys' cubic convolution with a = -0.75 on the 4 pixels floor(s) - 1 .. floor(s) + 2,
//   indices clamped to the edge. The output may leave [0, 1] (overshoot): clamp it if needed.
// Bilinear and bicubic do not antialias: for downscaling use Area.
//
// Efficiency: a Resizer precomputes the taps of both axes once; apply() uses a workspace it owns
// (allocated on first use and reused), so resizing thousands of same-size images allocates nothing
// per image. Accumulation is in double.
#pragma once

#include <dcsldm/core/error.hpp>
#include <dcsldm/image/image.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace dcsldm::image {

/// Resampling filter of resize() / Resizer.
enum class ResizeFilter { Area, Bilinear, Bicubic };

inline const char* resize_filter_name(ResizeFilter f) {
  switch (f) {
    case ResizeFilter::Area: return "area";
    case ResizeFilter::Bilinear: return "bilinear";
    case ResizeFilter::Bicubic: return "bicubic";
  }
  return "?";
}

namespace Impl {

/// The taps of one axis: output o reads (index[t], weight[t]) for t in [first[o], first[o + 1]).
struct AxisTaps {
  std::vector<std::size_t> first;
  std::vector<std::size_t> index;
  std::vector<double> weight;
};

inline AxisTaps area_taps(std::size_t in, std::size_t out) {
  // In units of 1 / out of an input pixel: the footprint of o is [o in, (o + 1) in), input pixel k is
  // [k out, (k + 1) out); the weight is their overlap / in. Exact integers (in * out < 2^63).
  AxisTaps t;
  t.first.push_back(0);
  for (std::size_t o = 0; o < out; ++o) {
    const std::uint64_t a = std::uint64_t(o) * in, b = a + in;
    for (std::size_t k = std::size_t(a / out); k < in && std::uint64_t(k) * out < b; ++k) {
      const std::uint64_t lo = std::max<std::uint64_t>(a, std::uint64_t(k) * out);
      const std::uint64_t hi = std::min<std::uint64_t>(b, std::uint64_t(k + 1) * out);
      if (hi > lo) {
        t.index.push_back(k);
        t.weight.push_back(double(hi - lo) / double(in));
      }
    }
    t.first.push_back(t.index.size());
  }
  return t;
}

inline AxisTaps bilinear_taps(std::size_t in, std::size_t out) {
  AxisTaps t;
  t.first.push_back(0);
  const double scale = double(in) / double(out);
  for (std::size_t o = 0; o < out; ++o) {
    const double s = std::max(0.0, scale * (double(o) + 0.5) - 0.5);
    const std::size_t i0 = std::min(std::size_t(s), in - 1);
    const std::size_t i1 = i0 + (i0 < in - 1 ? 1 : 0);
    const double l1 = s - double(i0), l0 = 1.0 - l1;
    t.index.push_back(i0);
    t.weight.push_back(l0);
    t.index.push_back(i1);
    t.weight.push_back(l1);
    t.first.push_back(t.index.size());
  }
  return t;
}

inline double cubic1(double x, double a) { return ((a + 2) * x - (a + 3)) * x * x + 1; }          // |x| <= 1
inline double cubic2(double x, double a) { return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a; }  // 1 < |x| < 2

inline AxisTaps bicubic_taps(std::size_t in, std::size_t out) {
  constexpr double a = -0.75;  // PyTorch's choice (PIL uses -0.5)
  AxisTaps t;
  t.first.push_back(0);
  const double scale = double(in) / double(out);
  for (std::size_t o = 0; o < out; ++o) {
    const double s = scale * (double(o) + 0.5) - 0.5;
    const double f = std::floor(s), x = s - f;
    const double w[4] = {cubic2(x + 1, a), cubic1(x, a), cubic1(1 - x, a), cubic2(2 - x, a)};
    for (int j = 0; j < 4; ++j) {
      const long long k = std::min<long long>(std::max<long long>((long long)f - 1 + j, 0), (long long)in - 1);
      t.index.push_back(std::size_t(k));
      t.weight.push_back(w[j]);
    }
    t.first.push_back(t.index.size());
  }
  return t;
}

inline AxisTaps taps(ResizeFilter f, std::size_t in, std::size_t out) {
  switch (f) {
    case ResizeFilter::Area: return area_taps(in, out);
    case ResizeFilter::Bilinear: return bilinear_taps(in, out);
    case ResizeFilter::Bicubic: return bicubic_taps(in, out);
  }
  return {};
}

}  // namespace Impl

/// A resampler from (in_h, in_w) to (out_h, out_w) pixels with a fixed filter: the taps are computed
/// once, the workspace is allocated on first use and reused. One Resizer per thread (apply() writes
/// the workspace).
class Resizer {
 public:
  /// Throws when an input extent is 0 while the output one is not.
  Resizer(std::size_t in_h, std::size_t in_w, std::size_t out_h, std::size_t out_w, ResizeFilter filter)
      : in_h_(in_h), in_w_(in_w), out_h_(out_h), out_w_(out_w), filter_(filter) {
    DCSLDM_REQUIRE((in_h > 0 || out_h == 0) && (in_w > 0 || out_w == 0), "resize", "cannot resize ", in_h, " x ",
                   in_w, " pixels to ", out_h, " x ", out_w, " (", resize_filter_name(filter), ")");
    rows_ = Impl::taps(filter, in_h, out_h);
    cols_ = Impl::taps(filter, in_w, out_w);
  }

  std::size_t in_h() const { return in_h_; }
  std::size_t in_w() const { return in_w_; }
  std::size_t out_h() const { return out_h_; }
  std::size_t out_w() const { return out_w_; }
  ResizeFilter filter() const { return filter_; }

  /// out(o, p, c) = sum_{k, l} wr(o, k) wc(p, l) in(k, l, c)  (`=`), for one image of C channels:
  /// `in` is (in_h, in_w, C) and `out` is (out_h, out_w, C), both row-major and contiguous.
  void apply(const float* in, std::size_t C, float* out) {
    const std::size_t OW = out_w_, IW = in_w_;
    tmp_.resize(in_h_ * OW * C);  // no-op after the first call with this C
    // Pass 1: columns. tmp(k, p, c) = sum_l wc(p, l) in(k, l, c)   // (in_h, out_w, C)
    for (std::size_t k = 0; k < in_h_; ++k) {
      const float* row = in + k * IW * C;
      double* t = tmp_.data() + k * OW * C;
      for (std::size_t p = 0; p < OW; ++p) {
        for (std::size_t c = 0; c < C; ++c) t[p * C + c] = 0;
        for (std::size_t q = cols_.first[p]; q < cols_.first[p + 1]; ++q) {
          const double w = cols_.weight[q];
          const float* src = row + cols_.index[q] * C;
          for (std::size_t c = 0; c < C; ++c) t[p * C + c] += w * double(src[c]);
        }
      }
    }
    // Pass 2: rows. out(o, p, c) = sum_k wr(o, k) tmp(k, p, c)
    acc_.resize(OW * C);
    for (std::size_t o = 0; o < out_h_; ++o) {
      std::fill(acc_.begin(), acc_.end(), 0.0);
      for (std::size_t q = rows_.first[o]; q < rows_.first[o + 1]; ++q) {
        const double w = rows_.weight[q];
        const double* src = tmp_.data() + rows_.index[q] * OW * C;
        for (std::size_t e = 0; e < OW * C; ++e) acc_[e] += w * src[e];
      }
      float* dst = out + o * OW * C;
      for (std::size_t e = 0; e < OW * C; ++e) dst[e] = float(acc_[e]);
    }
  }

  /// Resizes one image (in_h, in_w, C) -> new (out_h, out_w, C). Throws on a size mismatch.
  Image operator()(const Image& img) {
    check(img.shape()[0], img.shape()[1]);
    const std::size_t C = img.shape()[2];
    Image out(std::array<std::size_t, 3>{out_h_, out_w_, C});
    apply(img.data(), C, out.data());
    return out;
  }
  /// Resizes every image of a batch (N, in_h, in_w, C) -> new (N, out_h, out_w, C).
  ImageBatch operator()(const ImageBatch& b) {
    check(b.shape()[1], b.shape()[2]);
    const std::size_t N = b.shape()[0], C = b.shape()[3];
    ImageBatch out(std::array<std::size_t, 4>{N, out_h_, out_w_, C});
    for (std::size_t n = 0; n < N; ++n) apply(b.data() + n * in_h_ * in_w_ * C, C, out.data() + n * out_h_ * out_w_ * C);
    return out;
  }

 private:
  void check(std::size_t h, std::size_t w) const {
    DCSLDM_REQUIRE(h == in_h_ && w == in_w_, "resize", "image is ", h, " x ", w, " but the Resizer expects ", in_h_,
                   " x ", in_w_);
  }
  std::size_t in_h_, in_w_, out_h_, out_w_;
  ResizeFilter filter_;
  Impl::AxisTaps rows_, cols_;
  std::vector<double> tmp_, acc_;  // workspaces: (in_h, out_w, C) and (out_w, C)
};

/// Resizes an image (H, W, C) to (out_h, out_w, C) with `filter` (see the file comment).
inline Image resize(const Image& img, std::size_t out_h, std::size_t out_w, ResizeFilter filter) {
  Resizer r(img.shape()[0], img.shape()[1], out_h, out_w, filter);
  return r(img);
}

/// Resizes every image of a batch (N, H, W, C) to (N, out_h, out_w, C) with `filter`.
inline ImageBatch resize(const ImageBatch& b, std::size_t out_h, std::size_t out_w, ResizeFilter filter) {
  Resizer r(b.shape()[1], b.shape()[2], out_h, out_w, filter);
  return r(b);
}

}  // namespace dcsldm::image
