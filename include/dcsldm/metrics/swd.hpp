// dcsldm/metrics/swd.hpp: sliced Wasserstein distance between two image sets on Laplacian-pyramid
// patches, the SWD of ProGAN (Karras et al., "Progressive growing of GANs for improved quality,
// stability, and variation", ICLR 2018, section 5 and appendix D), written from the paper's description.
//
// Host-side evaluation code, double precision, deterministic: the same inputs and seed give bit-identical
// results (every random number is a pure function of (seed, stream, index) from core/rng.hpp's Philox;
// every sum runs in a fixed order).
//
// Images: (N, H, W, C) float, NHWC contiguous.
//
// 1. Laplacian pyramid per image, in double. g = [1, 4, 6, 4, 1] / 16, applied separably (rows, then
//    columns) with mirror boundaries that do not repeat the edge sample (index -1 -> 1, H -> H - 2, as
//    scipy.ndimage's 'mirror'). G_0 = image; G_{i+1} = (g * G_i)[::2, ::2] (side ceil(s / 2));
//    L_i = G_i - up(G_{i+1}), up = zero insertion (G_{i+1} on the even rows and columns of an image of
//    G_i's size) followed by the same separable filter with gain 4 (2 per direction); the last level is
//    the coarsest Gaussian G_{L-1}. Levels continue while the next level's smaller side is
//    >= max(min_res, patch): 28 px gives 28, 14, 7; 64 px gives 64, 32, 16, 8 (min_res = 7).
// 2. Descriptors: from each level, patches_per_image patch x patch windows per image at uniformly random
//    top-left corners (y, x) in [0, h - patch] x [0, w - patch], flattened (py, px, c) to D = patch^2 C
//    values. Corner k of image i at level l: y = uniform_index(2 (i P + k)), x = uniform_index(2 (i P + k)
//    + 1) of Philox{seed, stream 2^32 + l}. Image i of A and image i of B use the same corners, so
//    SWD(A, A) = 0 exactly.
// 3. Each level's descriptor set (A's and B's separately) is normalised per channel: minus the mean and
//    divided by the (population) standard deviation over all its descriptors and window positions of
//    that channel (ProGAN's finalisation; a constant channel is only centred). Hence SWD ignores a
//    per-channel affine change of intensities (and a brightness offset, which the band-pass levels do
//    not see at all).
// 4. Per level and repeat r: `directions` unit directions in R^D, direction j's components the normals
//    j D + k (k < D) of Philox{seed, stream 2^33 + 2^16 l + r}, divided by their norm. Both sets are
//    projected on each direction, sorted, and compared by the 1-D Wasserstein-1 distance of the two
//    empirical distributions, integral_0^1 |Q_A(u) - Q_B(u)| du with Q the quantile step functions:
//    mean |a_(i) - b_(i)| when the sets have equal sizes; for unequal sizes (na != nb images) the exact
//    quantile matching (every sample kept, weights from the overlap of [i/nA, (i+1)/nA) and
//    [j/nB, (j+1)/nB)). The level's value is 1e3 (ProGAN's reporting scale, "SWD x 1e3") times the
//    mean over repeats of the mean over directions.
// SwdResult::mean is the mean over levels (ProGAN's "avg").
//
// Cost: per level 2 * repeats * directions projections of n P descriptors (n P D multiply-adds each) and
// as many sorts of n P values; memory 8 n P D bytes per set for one level (levels are done one at a time).
// About 35 s for 1000 vs 1000 28 x 28 x 1 images with the defaults on one core (2048 directions per
// level; ProGAN's 128 directions x 4 repeats takes a quarter of that), mostly the sorts.
// When a level is no larger than the patch (the 7 x 7 level with 7 x 7 patches), every window of an image
// is the same, so that level compares na against nb samples and carries more sampling noise.
#pragma once

#include <dcsldm/core/error.hpp>
#include <dcsldm/core/rng.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

namespace dcsldm::metrics {

/// SWD parameters; the defaults follow ProGAN (7 x 7 patches), with min_res 7 for small images.
struct SwdOptions {
  int patch = 7;               ///< descriptor window side (pixels)
  int patches_per_image = 64;  ///< windows per image and level
  int directions = 512;        ///< random projection directions per repeat
  int repeats = 4;             ///< independent draws of directions, averaged
  int min_res = 7;             ///< smallest side of the coarsest pyramid level (at least `patch` is used)
  std::uint64_t seed = 0;      ///< Philox key for the window positions and directions
};

/// SWD per pyramid level (finest first) and their mean; values are SWD x 1e3.
struct SwdResult {
  std::vector<int> level_res;    ///< height of each level (28, 14, 7 for 28 x 28 images)
  std::vector<double> per_level;  ///< 1e3 x SWD of each level
  double mean = 0;                ///< mean of per_level
};

namespace Impl {

/// Mirror index without edge repetition: -1 -> 1, n -> n - 2 (periodic with period 2 (n - 1)).
inline std::size_t swd_mirror(std::ptrdiff_t i, std::size_t n) {
  if (n == 1) return 0;
  const std::ptrdiff_t period = 2 * std::ptrdiff_t(n - 1);
  i %= period;
  if (i < 0) i += period;
  return std::size_t(i < std::ptrdiff_t(n) ? i : period - i);
}

/// out = gain * (g x g) * in for (h, w, c) images, g = [1, 4, 6, 4, 1] / 16 separable, mirror boundaries.
/// tmp: (h, w, c) workspace.
inline void swd_blur(const double* in, double* out, double* tmp, std::size_t h, std::size_t w, std::size_t c,
                     double gain) {
  const double g[5] = {1.0 / 16, 4.0 / 16, 6.0 / 16, 4.0 / 16, 1.0 / 16};
  for (std::size_t y = 0; y < h; ++y)  // along x
    for (std::size_t x = 0; x < w; ++x)
      for (std::size_t ch = 0; ch < c; ++ch) {
        double acc = 0;
        for (int t = 0; t < 5; ++t)
          acc += g[t] * in[(y * w + swd_mirror(std::ptrdiff_t(x) + t - 2, w)) * c + ch];
        tmp[(y * w + x) * c + ch] = acc;
      }
  for (std::size_t y = 0; y < h; ++y)  // along y
    for (std::size_t x = 0; x < w; ++x)
      for (std::size_t ch = 0; ch < c; ++ch) {
        double acc = 0;
        for (int t = 0; t < 5; ++t)
          acc += g[t] * tmp[(swd_mirror(std::ptrdiff_t(y) + t - 2, h) * w + x) * c + ch];
        out[(y * w + x) * c + ch] = gain * acc;
      }
}

/// Level sizes (h, w), finest first (see the header comment).
inline std::vector<std::pair<int, int>> swd_levels(int H, int W, int patch, int min_res) {
  std::vector<std::pair<int, int>> s{{H, W}};
  const int floor_side = std::max(min_res, patch);
  for (;;) {
    const int h = (s.back().first + 1) / 2, w = (s.back().second + 1) / 2;
    if (std::min(h, w) < floor_side) break;
    s.emplace_back(h, w);
  }
  return s;
}

/// Laplacian level `level` of one (H, W, C) image into `out` (h_l, w_l, C); work: workspace vectors.
struct SwdPyramid {
  std::vector<std::pair<int, int>> sizes;
  std::size_t C = 0;
  std::vector<double> g, next, blur, tmp, up;

  void level(const float* img, int lvl, std::vector<double>& out) {
    const std::size_t H = std::size_t(sizes[0].first), W = std::size_t(sizes[0].second);
    g.assign(img, img + H * W * C);
    for (int i = 0; i < lvl; ++i) down(i);  // g = G_lvl
    const std::size_t h = std::size_t(sizes[std::size_t(lvl)].first), w = std::size_t(sizes[std::size_t(lvl)].second);
    out = g;
    if (std::size_t(lvl) + 1 == sizes.size()) return;  // coarsest: the Gaussian itself
    // out = G_l - up(G_{l+1})
    const std::size_t h2 = std::size_t(sizes[std::size_t(lvl) + 1].first),
                      w2 = std::size_t(sizes[std::size_t(lvl) + 1].second);
    down(lvl);  // g = G_{l+1}
    up.assign(h * w * C, 0.0);
    for (std::size_t y = 0; y < h2; ++y)
      for (std::size_t x = 0; x < w2; ++x)
        for (std::size_t ch = 0; ch < C; ++ch) up[((2 * y) * w + 2 * x) * C + ch] = g[(y * w2 + x) * C + ch];
    blur.resize(h * w * C);
    tmp.resize(h * w * C);
    swd_blur(up.data(), blur.data(), tmp.data(), h, w, C, 4.0);
    for (std::size_t k = 0; k < out.size(); ++k) out[k] -= blur[k];
  }

  /// g = G_{i+1} from g = G_i.
  void down(int i) {
    const std::size_t h = std::size_t(sizes[std::size_t(i)].first), w = std::size_t(sizes[std::size_t(i)].second);
    const std::size_t h2 = std::size_t(sizes[std::size_t(i) + 1].first),
                      w2 = std::size_t(sizes[std::size_t(i) + 1].second);
    blur.resize(h * w * C);
    tmp.resize(h * w * C);
    swd_blur(g.data(), blur.data(), tmp.data(), h, w, C, 1.0);
    next.resize(h2 * w2 * C);
    for (std::size_t y = 0; y < h2; ++y)
      for (std::size_t x = 0; x < w2; ++x)
        for (std::size_t ch = 0; ch < C; ++ch) next[(y * w2 + x) * C + ch] = blur[((2 * y) * w + 2 * x) * C + ch];
    g.swap(next);
  }
};

/// Descriptors of level `lvl` of n images (n, H, W, C) into desc (n P, D), then normalised per channel.
inline void swd_descriptors(const float* imgs, std::int64_t n, SwdPyramid& pyr, int lvl, const SwdOptions& o,
                            std::vector<double>& desc) {
  const std::size_t H = std::size_t(pyr.sizes[0].first), W = std::size_t(pyr.sizes[0].second), C = pyr.C;
  const std::size_t h = std::size_t(pyr.sizes[std::size_t(lvl)].first),
                    w = std::size_t(pyr.sizes[std::size_t(lvl)].second);
  const std::size_t p = std::size_t(o.patch), P = std::size_t(o.patches_per_image), D = p * p * C;
  const rng::Philox pos{o.seed, (std::uint64_t(1) << 32) + std::uint64_t(lvl)};
  desc.resize(std::size_t(n) * P * D);
  std::vector<double> lap;
  for (std::int64_t i = 0; i < n; ++i) {
    pyr.level(imgs + std::size_t(i) * H * W * C, lvl, lap);
    for (std::size_t k = 0; k < P; ++k) {
      const std::uint64_t id = 2 * (std::uint64_t(i) * P + k);
      const std::size_t y0 = pos.uniform_index(id, std::uint32_t(h - p + 1));
      const std::size_t x0 = pos.uniform_index(id + 1, std::uint32_t(w - p + 1));
      double* d = &desc[(std::size_t(i) * P + k) * D];
      for (std::size_t py = 0; py < p; ++py)
        for (std::size_t px = 0; px < p; ++px)
          for (std::size_t ch = 0; ch < C; ++ch) *d++ = lap[((y0 + py) * w + x0 + px) * C + ch];
    }
  }
  // Per-channel normalisation over all descriptors and window positions.
  const std::size_t m = std::size_t(n) * P * p * p;  // values per channel
  for (std::size_t ch = 0; ch < C; ++ch) {
    double s = 0;
    for (std::size_t k = ch; k < desc.size(); k += C) s += desc[k];
    const double mean = s / double(m);
    double v = 0;
    for (std::size_t k = ch; k < desc.size(); k += C) v += (desc[k] - mean) * (desc[k] - mean);
    const double sd = std::sqrt(v / double(m));
    const double inv = sd > 0 ? 1 / sd : 1.0;
    for (std::size_t k = ch; k < desc.size(); k += C) desc[k] = (desc[k] - mean) * inv;
  }
}

/// Wasserstein-1 distance of the empirical distributions of sorted a (na values) and sorted b (nb).
inline double swd_w1_sorted(const double* a, std::size_t na, const double* b, std::size_t nb) {
  if (na == nb) {
    double s = 0;
    for (std::size_t i = 0; i < na; ++i) s += std::abs(a[i] - b[i]);
    return s / double(na);
  }
  // Quantile matching on the common grid of breakpoints i / na and j / nb, in units of 1 / (na nb).
  std::size_t i = 0, j = 0;
  std::uint64_t u = 0;
  double s = 0;
  while (i < na && j < nb) {
    const std::uint64_t ua = std::uint64_t(i + 1) * nb, ub = std::uint64_t(j + 1) * na;
    const std::uint64_t un = std::min(ua, ub);
    s += double(un - u) * std::abs(a[i] - b[j]);
    u = un;
    if (ua == un) ++i;
    if (ub == un) ++j;
  }
  return s / (double(na) * double(nb));
}

/// Sorts n finite doubles ascending: LSD radix sort (6 passes of 11 bits; passes whose digit is the same
/// for every key are skipped) on order-preserving 64-bit keys (sign bit flipped for x >= 0, all bits
/// flipped for x < 0); std::sort below 512 values. Same sorted values as std::sort (-0 before +0), about
/// 2-3x faster than std::sort at 64k values. keys, tmp: workspaces.
inline void swd_sort(double* v, std::size_t n, std::vector<std::uint64_t>& keys, std::vector<std::uint64_t>& tmp) {
  if (n < 512) {
    std::sort(v, v + n);
    return;
  }
  constexpr int kBits = 11, kPasses = 6;
  constexpr std::size_t kBins = std::size_t(1) << kBits;
  constexpr std::uint64_t kSign = std::uint64_t(1) << 63;
  std::vector<std::size_t> count(kPasses * kBins, 0);
  keys.resize(n);
  tmp.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t b;
    std::memcpy(&b, &v[i], sizeof b);
    const std::uint64_t k = (b & kSign) ? ~b : (b | kSign);
    keys[i] = k;
    for (int p = 0; p < kPasses; ++p) ++count[std::size_t(p) * kBins + ((k >> (p * kBits)) & (kBins - 1))];
  }
  for (int p = 0; p < kPasses; ++p) {
    std::size_t* c = &count[std::size_t(p) * kBins];
    if (c[(keys[0] >> (p * kBits)) & (kBins - 1)] == n) continue;  // one digit value: nothing to do
    std::size_t sum = 0;
    for (std::size_t d = 0; d < kBins; ++d) {
      const std::size_t cd = c[d];
      c[d] = sum;
      sum += cd;
    }
    for (std::size_t i = 0; i < n; ++i) tmp[c[(keys[i] >> (p * kBits)) & (kBins - 1)]++] = keys[i];
    keys.swap(tmp);
  }
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t k = keys[i];
    const std::uint64_t b = (k & kSign) ? (k ^ kSign) : ~k;
    std::memcpy(&v[i], &b, sizeof b);
  }
}

/// Mean over `repeats` of the mean W1 over `directions` random directions (one level).
inline double swd_level(const std::vector<double>& da, std::size_t na, const std::vector<double>& db,
                        std::size_t nb, std::size_t D, int lvl, const SwdOptions& o) {
  constexpr std::size_t kChunk = 32;  // directions projected per pass
  const std::size_t ndir = std::size_t(o.directions);
  std::vector<double> dirT(D * kChunk), acc(kChunk), pa(kChunk * na), pb(kChunk * nb), dir(D);
  std::vector<std::uint64_t> keys, tmp;
  double total = 0;
  for (int r = 0; r < o.repeats; ++r) {
    const rng::Philox gen{o.seed, (std::uint64_t(1) << 33) + (std::uint64_t(lvl) << 16) + std::uint64_t(r)};
    double sum = 0;
    for (std::size_t j0 = 0; j0 < ndir; j0 += kChunk) {
      const std::size_t nc = std::min(kChunk, ndir - j0);
      for (std::size_t jj = 0; jj < nc; ++jj) {
        double nrm = 0;
        for (std::size_t k = 0; k < D; ++k) {
          dir[k] = gen.normal<double>((j0 + jj) * D + k);
          nrm += dir[k] * dir[k];
        }
        const double inv = 1 / std::sqrt(nrm);
        for (std::size_t k = 0; k < D; ++k) dirT[k * kChunk + jj] = dir[k] * inv;
      }
      for (int set = 0; set < 2; ++set) {
        const std::vector<double>& d = set == 0 ? da : db;
        const std::size_t n = set == 0 ? na : nb;
        std::vector<double>& pr = set == 0 ? pa : pb;
        for (std::size_t i = 0; i < n; ++i) {  // pr[jj][i] = <desc_i, dir_jj>
          std::fill(acc.begin(), acc.end(), 0.0);
          const double* x = &d[i * D];
          for (std::size_t k = 0; k < D; ++k) {
            const double xk = x[k];
            const double* dk = &dirT[k * kChunk];
            for (std::size_t jj = 0; jj < kChunk; ++jj) acc[jj] += xk * dk[jj];
          }
          for (std::size_t jj = 0; jj < nc; ++jj) pr[jj * n + i] = acc[jj];
        }
        for (std::size_t jj = 0; jj < nc; ++jj) swd_sort(&pr[jj * n], n, keys, tmp);
      }
      for (std::size_t jj = 0; jj < nc; ++jj) sum += swd_w1_sorted(&pa[jj * na], na, &pb[jj * nb], nb);
    }
    total += sum / double(ndir);
  }
  return total / double(o.repeats);
}

inline void swd_check_finite(const float* x, std::int64_t n, int H, int W, int C, const char* set) {
  const std::size_t per = std::size_t(H) * std::size_t(W) * std::size_t(C);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::size_t k = 0; k < per; ++k) {
      const float v = x[std::size_t(i) * per + k];
      DCSLDM_REQUIRE(std::isfinite(v), "sliced_wasserstein", "pixel (y ", k / C / std::size_t(W), ", x ",
                     (k / std::size_t(C)) % std::size_t(W), ", c ", k % std::size_t(C), ") of image ", i,
                     " of set ", set, " is ", v);
    }
}

}  // namespace Impl

/// Sliced Wasserstein distance (x 1e3) between image sets a (na, H, W, C) and b (nb, H, W, C), float NHWC
/// contiguous, per Laplacian-pyramid level and averaged (see the header comment for the exact
/// procedure). Throws for empty sets, images smaller than the patch, bad options and non-finite pixels
/// (naming the image, position and channel).
inline SwdResult sliced_wasserstein(const float* a, std::int64_t na, const float* b, std::int64_t nb, int H, int W,
                                    int C, const SwdOptions& o = {}) {
  DCSLDM_REQUIRE(na >= 1 && nb >= 1, "sliced_wasserstein", "empty image set: na = ", na, ", nb = ", nb);
  DCSLDM_REQUIRE(o.patch >= 1 && o.patches_per_image >= 1 && o.directions >= 1 && o.repeats >= 1 &&
                     o.repeats < 65536 && o.min_res >= 1,
                 "sliced_wasserstein", "bad options: patch = ", o.patch, ", patches_per_image = ",
                 o.patches_per_image, ", directions = ", o.directions, ", repeats = ", o.repeats,
                 ", min_res = ", o.min_res);
  DCSLDM_REQUIRE(C >= 1, "sliced_wasserstein", "C = ", C, " channels");
  DCSLDM_REQUIRE(H >= o.patch && W >= o.patch, "sliced_wasserstein", "images are ", H, " x ", W,
                 ", smaller than the ", o.patch, " x ", o.patch, " patch");
  Impl::swd_check_finite(a, na, H, W, C, "a");
  Impl::swd_check_finite(b, nb, H, W, C, "b");

  Impl::SwdPyramid pyr;
  pyr.sizes = Impl::swd_levels(H, W, o.patch, o.min_res);
  pyr.C = std::size_t(C);
  const std::size_t D = std::size_t(o.patch) * std::size_t(o.patch) * std::size_t(C);
  const std::size_t P = std::size_t(o.patches_per_image);
  SwdResult res;
  std::vector<double> da, db;
  for (std::size_t l = 0; l < pyr.sizes.size(); ++l) {
    Impl::swd_descriptors(a, na, pyr, int(l), o, da);
    Impl::swd_descriptors(b, nb, pyr, int(l), o, db);
    res.level_res.push_back(pyr.sizes[l].first);
    res.per_level.push_back(1e3 * Impl::swd_level(da, std::size_t(na) * P, db, std::size_t(nb) * P, D, int(l), o));
  }
  double s = 0;
  for (double v : res.per_level) s += v;
  res.mean = s / double(res.per_level.size());
  return res;
}

}  // namespace dcsldm::metrics
