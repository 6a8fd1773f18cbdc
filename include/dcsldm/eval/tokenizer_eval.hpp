// dcsldm/eval/tokenizer_eval.hpp: the tokenizer evaluation harness: reconstruction PSNR/SSIM for every
// (levels kept, input resolution, output resolution) against exact ground truth, the bicubic baseline,
// content-adaptive level allocation, and the JSON report (DESIGN.md §4, `dcsldm eval-tokenizer`).
//
// REQUIRES zlib, FreeType and libpng (through eval/sources.hpp). Host code only.
//
// The model enters only through a ReconstructFn: given a batch of inputs (N, in_res, in_res, C) (what
// EvalSource::input gives), the number of latent levels to keep and an output resolution, it returns
// the reconstructions (N, out_res, out_res, C). The harness never sees the model.
//
// Metrics (metrics/image_metrics.hpp, data range 1):
// - Every image compared (reconstruction and bicubic baseline) is clamped to [0, 1] first, as it
//   would be when stored; a non-finite value in a reconstruction is an error naming the sample.
// - PSNR per sample, capped at psnr_cap_db = 100 dB: an exact match (PSNR = +inf) counts as 100 dB,
//   so means stay finite. The cap is written into the JSON report.
// - SSIM per sample with the Gaussian 11 x 11 window; it is undefined (NaN, written as null) for
//   outputs smaller than 11 px.
// - Record values are means over the n samples, accumulated in sample order (deterministic).
// - bicubic_*: the input, resized to out_res with torch-style bicubic (image::ResizeFilter::Bicubic,
//   a = -0.75, align_corners = False) and clamped, against the same ground truth.
#pragma once

#include <dcsldm/core/error.hpp>
#include <dcsldm/eval/json.hpp>
#include <dcsldm/eval/sources.hpp>
#include <dcsldm/image/image.hpp>
#include <dcsldm/image/resize.hpp>
#include <dcsldm/metrics/image_metrics.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace dcsldm::eval {

/// Per-sample PSNR cap (dB): an exact reconstruction counts as this.
constexpr double psnr_cap_db = 100.0;

/// reconstruct(inputs (N, in, in, C), levels, out_res) -> reconstructions (N, out_res, out_res, C).
using ReconstructFn = std::function<image::ImageBatch(const image::ImageBatch& inputs, int levels, int out_res)>;
/// progress(done, total): called after each batch with the number of samples finished.
using ProgressFn = std::function<void(std::size_t done, std::size_t total)>;

/// Means over n samples for one (levels, in_res, out_res).
struct EvalRecord {
  int levels = 0, in_res = 0, out_res = 0;
  std::size_t n = 0;
  double psnr = 0, ssim = 0;                  ///< reconstruction vs ground truth
  double bicubic_psnr = 0, bicubic_ssim = 0;  ///< bicubic upscaling of the input vs ground truth
};

namespace Impl {

/// Clamps a batch to [0, 1] in place; throws naming `what` and the sample when a value is not finite.
inline void clamp01(image::ImageBatch& b, const char* what, int levels, int out_res) {
  const std::size_t N = b.shape()[0], per = N ? b.size() / N : 0;
  float* p = b.data();
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t e = 0; e < per; ++e) {
      float& x = p[n * per + e];
      DCSLDM_REQUIRE(std::isfinite(x), "evaluate_tokenizer", what, " with levels = ", levels, ", out_res = ", out_res,
                     ": batch item ", n, " has a non-finite value (", x, ") at element ", e);
      x = std::min(1.0f, std::max(0.0f, x));
    }
}

/// PSNR (capped) and SSIM (NaN below the window) of each pair; appended to psnr / ssim.
inline void score(const image::ImageBatch& out, const image::ImageBatch& gt, metrics::Ssim& ssim,
                  std::vector<double>& psnr_out, std::vector<double>& ssim_out) {
  const std::size_t N = gt.shape()[0], H = gt.shape()[1], W = gt.shape()[2], C = gt.shape()[3];
  const std::size_t per = H * W * C;
  const bool ssim_ok = H >= ssim.window() && W >= ssim.window();
  for (std::size_t n = 0; n < N; ++n) {
    const float* a = out.data() + n * per;
    const float* b = gt.data() + n * per;
    psnr_out.push_back(std::min(psnr_cap_db, metrics::psnr(a, b, per)));
    ssim_out.push_back(ssim_ok ? ssim(a, b, H, W, C) : std::numeric_limits<double>::quiet_NaN());
  }
}

/// Calls reconstruct and checks its result's shape and values (clamped to [0, 1]).
inline image::ImageBatch reconstruct_checked(const ReconstructFn& fn, const image::ImageBatch& inputs, int levels,
                                             int out_res, std::size_t first) {
  image::ImageBatch out = fn(inputs, levels, out_res);
  const std::size_t N = inputs.shape()[0], C = inputs.shape()[3], R = std::size_t(out_res);
  DCSLDM_REQUIRE(out.shape()[0] == N && out.shape()[1] == R && out.shape()[2] == R && out.shape()[3] == C,
                 "evaluate_tokenizer", "reconstruct(levels = ", levels, ", out_res = ", out_res, ") for samples ",
                 first, "..", first + N - 1, " returned (", out.shape()[0], ", ", out.shape()[1], ", ", out.shape()[2],
                 ", ", out.shape()[3], "), expected (", N, ", ", R, ", ", R, ", ", C, ")");
  clamp01(out, "reconstruction", levels, out_res);
  return out;
}

inline void check_common(const char* op, const EvalSource& src, const ReconstructFn& fn, int in_res,
                         std::size_t batch) {
  DCSLDM_REQUIRE(src.size() > 0, op, "source '", src.spec(), "' has no samples");
  DCSLDM_REQUIRE(bool(fn), op, "no reconstruct function");
  DCSLDM_REQUIRE(in_res >= 1 && in_res <= 16384, op, "in_res = ", in_res, " is not in 1..16384");
  DCSLDM_REQUIRE(batch >= 1, op, "batch = 0");
}

}  // namespace Impl

/// Evaluates reconstructions of `src` encoded at in_res x in_res, for every levels value in `levels`
/// and every out_res x out_res in `out_res`: one EvalRecord per (levels, out_res), levels-major
/// (records[l * out_res.size() + o]). Samples go through `reconstruct` `batch` at a time, in order
/// (the last batch may be smaller); the bicubic baseline is computed once per (batch, out_res).
/// `progress` (optional) is called after each batch. Throws on empty lists, values < 1, an empty
/// source, a reconstruction of the wrong shape or with non-finite values.
inline std::vector<EvalRecord> evaluate_tokenizer(const EvalSource& src, const ReconstructFn& reconstruct,
                                                  int in_res, const std::vector<int>& out_res,
                                                  const std::vector<int>& levels, std::size_t batch = 64,
                                                  const ProgressFn& progress = {}) {
  Impl::check_common("evaluate_tokenizer", src, reconstruct, in_res, batch);
  DCSLDM_REQUIRE(!out_res.empty() && !levels.empty(), "evaluate_tokenizer", "out_res has ", out_res.size(),
                 " values and levels ", levels.size(), ": need at least one of each");
  for (int r : out_res)
    DCSLDM_REQUIRE(r >= 1 && r <= 16384, "evaluate_tokenizer", "out_res value ", r, " is not in 1..16384");
  for (int l : levels) DCSLDM_REQUIRE(l >= 1, "evaluate_tokenizer", "levels value ", l, " is < 1");

  const std::size_t N = src.size(), NL = levels.size(), NO = out_res.size();
  // Per-sample values, (NL * NO) lists of N for the model, NO lists of N for the baseline.
  std::vector<std::vector<double>> psnr(NL * NO), ssim(NL * NO), bpsnr(NO), bssim(NO);
  metrics::Ssim ssim_eval;
  for (std::size_t first = 0; first < N; first += batch) {
    const std::size_t count = std::min(batch, N - first);
    const image::ImageBatch inputs = src.inputs(first, count, in_res);  // (count, in, in, C)
    for (std::size_t o = 0; o < NO; ++o) {
      const std::size_t R = std::size_t(out_res[o]);
      const image::ImageBatch gt = src.ground_truths(first, count, out_res[o]);  // (count, R, R, C)
      image::ImageBatch bic = image::resize(inputs, R, R, image::ResizeFilter::Bicubic);
      Impl::clamp01(bic, "bicubic baseline", 0, out_res[o]);
      Impl::score(bic, gt, ssim_eval, bpsnr[o], bssim[o]);
      for (std::size_t l = 0; l < NL; ++l) {
        const image::ImageBatch out = Impl::reconstruct_checked(reconstruct, inputs, levels[l], out_res[o], first);
        Impl::score(out, gt, ssim_eval, psnr[l * NO + o], ssim[l * NO + o]);
      }
    }
    if (progress) progress(first + count, N);
  }
  std::vector<EvalRecord> records;
  for (std::size_t l = 0; l < NL; ++l)
    for (std::size_t o = 0; o < NO; ++o) {
      EvalRecord r;
      r.levels = levels[l];
      r.in_res = in_res;
      r.out_res = out_res[o];
      r.n = N;
      r.psnr = metrics::mean(psnr[l * NO + o]);
      r.ssim = metrics::mean(ssim[l * NO + o]);
      r.bicubic_psnr = metrics::mean(bpsnr[o]);
      r.bicubic_ssim = metrics::mean(bssim[o]);
      records.push_back(r);
    }
  return records;
}

/// Content-adaptive allocation rule: given a sample's PSNR with 1, 2, ..., L levels
/// (psnr_by_level[m - 1]), the smallest m with PSNR >= target_psnr, or L when none reaches it
/// (NaN never does). Throws when the list is empty.
inline int choose_levels(const std::vector<double>& psnr_by_level, double target_psnr) {
  DCSLDM_REQUIRE(!psnr_by_level.empty(), "choose_levels", "no PSNR values (need one per level 1..L)");
  for (std::size_t m = 0; m < psnr_by_level.size(); ++m)
    if (psnr_by_level[m] >= target_psnr) return int(m) + 1;
  return int(psnr_by_level.size());
}

/// One sample's allocation.
struct AllocationSample {
  std::size_t index = 0;  ///< sample index in the source
  std::string name, group;
  int label = -1;
  int levels = 0;       ///< chosen number of levels, 1..L
  double psnr = 0;      ///< PSNR (capped) of the reconstruction with `levels` levels
  bool met = false;     ///< psnr >= target (false: even L levels miss the target)
};

/// Allocation statistics of one group (class name / glyph category).
struct AllocationGroup {
  std::string group;
  std::size_t n = 0;
  double mean_levels = 0, mean_psnr = 0;
  std::size_t unmet = 0;  ///< samples of the group below the target with all L levels
};

/// Result of allocate_levels.
struct Allocation {
  int in_res = 0, out_res = 0, max_levels = 0;  ///< max_levels = L
  double target_psnr = 0;
  std::vector<AllocationSample> samples;  ///< (n), in source order
  std::vector<std::size_t> histogram;     ///< (L): histogram[m - 1] = samples that chose m levels
  double mean_levels = 0, mean_psnr = 0;  ///< over all samples
  std::size_t unmet = 0;                  ///< samples below the target with all L levels (they count as L)
  /// Per group with at least one sample, in the source's groups() order (none for image folders).
  std::vector<AllocationGroup> groups;
};

/// For each sample of `src` encoded at in_res: the smallest number of levels m in 1..L whose
/// reconstruction at out_res reaches PSNR >= target_psnr (choose_levels), or L when none does; with
/// the histogram, the mean and the per-group means. Levels are tried in increasing order per batch and
/// the batch stops as soon as every sample in it has met the target (higher levels are not needed).
/// Same checks as evaluate_tokenizer; L >= 1.
inline Allocation allocate_levels(const EvalSource& src, const ReconstructFn& reconstruct, int in_res, int out_res,
                                  int L, double target_psnr, std::size_t batch = 64,
                                  const ProgressFn& progress = {}) {
  Impl::check_common("allocate_levels", src, reconstruct, in_res, batch);
  DCSLDM_REQUIRE(out_res >= 1 && out_res <= 16384, "allocate_levels", "out_res = ", out_res, " is not in 1..16384");
  DCSLDM_REQUIRE(L >= 1, "allocate_levels", "L = ", L, " levels: need at least 1");
  DCSLDM_REQUIRE(std::isfinite(target_psnr), "allocate_levels", "target_psnr = ", target_psnr, " is not finite");

  const std::size_t N = src.size();
  Allocation a;
  a.in_res = in_res;
  a.out_res = out_res;
  a.max_levels = L;
  a.target_psnr = target_psnr;
  a.histogram.assign(std::size_t(L), 0);
  for (std::size_t first = 0; first < N; first += batch) {
    const std::size_t count = std::min(batch, N - first);
    const image::ImageBatch inputs = src.inputs(first, count, in_res);
    const image::ImageBatch gt = src.ground_truths(first, count, out_res);
    std::vector<std::vector<double>> by_level(count);  // (count, levels tried): PSNR with 1, 2, ... levels
    std::vector<char> met(count, 0);
    for (int m = 1; m <= L; ++m) {
      bool all_met = true;  // every sample of the batch has met the target with fewer levels
      for (std::size_t k = 0; k < count; ++k) all_met = all_met && met[k];
      if (all_met) break;
      const image::ImageBatch out = Impl::reconstruct_checked(reconstruct, inputs, m, out_res, first);
      const std::size_t per = gt.size() / count;
      for (std::size_t k = 0; k < count; ++k) {
        const double p = std::min(psnr_cap_db, metrics::psnr(out.data() + k * per, gt.data() + k * per, per));
        by_level[k].push_back(p);
        met[k] = met[k] || p >= target_psnr;
      }
    }
    for (std::size_t k = 0; k < count; ++k) {
      AllocationSample x;
      x.index = first + k;
      x.name = src.name(x.index);
      x.group = src.group(x.index);
      x.label = src.label(x.index);
      x.levels = choose_levels(by_level[k], target_psnr);
      x.psnr = by_level[k][std::size_t(x.levels) - 1];
      x.met = x.psnr >= target_psnr;
      a.samples.push_back(std::move(x));
    }
    if (progress) progress(first + count, N);
  }
  double sum_l = 0, sum_p = 0;
  for (const auto& x : a.samples) {
    ++a.histogram[std::size_t(x.levels) - 1];
    sum_l += x.levels;
    sum_p += x.psnr;
    if (!x.met) ++a.unmet;
  }
  a.mean_levels = sum_l / double(N);
  a.mean_psnr = sum_p / double(N);
  for (const std::string& g : src.groups()) {
    AllocationGroup gs;
    gs.group = g;
    double gl = 0, gp = 0;
    for (const auto& x : a.samples)
      if (x.group == g) {
        ++gs.n;
        gl += x.levels;
        gp += x.psnr;
        if (!x.met) ++gs.unmet;
      }
    if (gs.n == 0) continue;
    gs.mean_levels = gl / double(gs.n);
    gs.mean_psnr = gp / double(gs.n);
    a.groups.push_back(std::move(gs));
  }
  return a;
}

/// Metadata written at the top of the JSON report.
struct EvalReportInfo {
  std::string model;   ///< model path
  std::string source;  ///< source spec
  std::string note;    ///< e.g. EvalSource::note()
  std::uint64_t seed = 0;
  std::vector<std::pair<std::string, std::string>> extra;  ///< more string fields, written in order
};

/// The JSON report:
///   {"model": str, "source": str, "note": str, "seed": int, "psnr_cap_db": 100, <extra string fields>,
///    "results": [{"levels", "in_res", "out_res", "n", "psnr", "ssim", "bicubic_psnr", "bicubic_ssim"}, ...],
///    "allocation": {"target_psnr", "in_res", "out_res", "max_levels", "n", "mean_levels", "mean_psnr",
///                   "unmet", "histogram": [{"levels", "count"}, ...],
///                   "groups": [{"group", "n", "mean_levels", "mean_psnr", "unmet"}, ...],
///                   "samples": [{"index", "name", "group", "label", "levels", "psnr", "met"}, ...]}}
/// "allocation" only when `allocation` is not null. Doubles round-trip exactly; PSNRs are capped at
/// psnr_cap_db (so finite); NaN (SSIM of outputs below 11 px) is written as null.
inline std::string to_json(const std::vector<EvalRecord>& records, const Allocation* allocation,
                           const EvalReportInfo& info = {}) {
  JsonWriter w;
  w.begin_object();
  w.field("model", info.model).field("source", info.source).field("note", info.note);
  w.field("seed", static_cast<unsigned long long>(info.seed)).field("psnr_cap_db", psnr_cap_db);
  for (const auto& kv : info.extra) w.field(kv.first, kv.second);
  w.key("results").begin_array();
  for (const auto& r : records) {
    w.begin_object(true);
    w.field("levels", r.levels).field("in_res", r.in_res).field("out_res", r.out_res);
    w.field("n", static_cast<unsigned long long>(r.n));
    w.field("psnr", r.psnr).field("ssim", r.ssim).field("bicubic_psnr", r.bicubic_psnr);
    w.field("bicubic_ssim", r.bicubic_ssim);
    w.end_object();
  }
  w.end_array();
  if (allocation) {
    const Allocation& a = *allocation;
    w.key("allocation").begin_object();
    w.field("target_psnr", a.target_psnr).field("in_res", a.in_res).field("out_res", a.out_res);
    w.field("max_levels", a.max_levels).field("n", static_cast<unsigned long long>(a.samples.size()));
    w.field("mean_levels", a.mean_levels).field("mean_psnr", a.mean_psnr);
    w.field("unmet", static_cast<unsigned long long>(a.unmet));
    w.key("histogram").begin_array();
    for (std::size_t m = 0; m < a.histogram.size(); ++m)
      w.begin_object(true).field("levels", int(m) + 1).field("count", static_cast<unsigned long long>(a.histogram[m])).end_object();
    w.end_array();
    w.key("groups").begin_array();
    for (const auto& g : a.groups) {
      w.begin_object(true).field("group", g.group).field("n", static_cast<unsigned long long>(g.n));
      w.field("mean_levels", g.mean_levels).field("mean_psnr", g.mean_psnr);
      w.field("unmet", static_cast<unsigned long long>(g.unmet)).end_object();
    }
    w.end_array();
    w.key("samples").begin_array();
    for (const auto& x : a.samples) {
      w.begin_object(true).field("index", static_cast<unsigned long long>(x.index)).field("name", x.name);
      w.field("group", x.group).field("label", x.label).field("levels", x.levels).field("psnr", x.psnr);
      w.field("met", x.met).end_object();
    }
    w.end_array();
    w.end_object();
  }
  w.end_object();
  return w.str();
}

}  // namespace dcsldm::eval
