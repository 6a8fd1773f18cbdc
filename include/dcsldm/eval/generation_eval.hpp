// dcsldm/eval/generation_eval.hpp: measuring class-conditional generation (issue: DCS-DiT metrics).
//
//   generate_images : the DiT samples n latents (labels i % K, balanced), the tokenizer decodes them at `res`;
//                     host images (n, res, res, C) clamped to [0, 1], with the time spent in each part.
//   score_images    : class accuracy of the images under the library's classifier (the label they were
//                     generated for), Fréchet distance of its features against a reference's Gaussian, and
//                     the sliced Wasserstein distance of Laplacian-pyramid patches against reference images.
// The same score_images applied to held-out real images (the test split) gives the floor each generated
// score is compared with: real data against real data at the same sample count.
#pragma once

#include <dcsldm/cls/classifier.hpp>
#include <dcsldm/dit/sampler.hpp>
#include <dcsldm/metrics/frechet.hpp>
#include <dcsldm/metrics/swd.hpp>
#include <dcsldm/tok/model.hpp>

#include <algorithm>
#include <chrono>
#include <vector>

namespace dcsldm::eval {

struct GeneratedImages {
  std::vector<float> images;  ///< (n, res, res, C)
  std::vector<int> labels;    ///< (n)
  int n = 0, res = 0, channels = 0;
  double dit_seconds = 0, decode_seconds = 0;
  long long evaluations = 0;  ///< DiT evaluations (a guided one counts once)
};

struct GenerateOptions {
  int n = 1000;
  int levels = 0;       ///< 0: all levels
  int res = 28;
  int batch = 100;
  bool progressive = false;
  /// Not empty: generation in these stages (FlowSampler::staged; e.g. {1, 4}), up to `levels` (0: all), which
  /// must be the last stage; overrides `progressive`.
  std::vector<int> stages;
  dit::SampleOptions sample;  ///< its seed is mixed with the batch index: every batch draws its own noise
};

/// Generates opt.n class-conditional samples (label i % K) in batches of B = min(opt.batch, opt.n) and
/// decodes them at opt.res with `decode(z, levels, y)`: z (B, N, c) the sampled latent, y (B, 1, res, res,
/// channels) to fill. Any decoder fits (DCS-Tok at any resolution, the conventional baseline at its own).
/// Fences (timing); allocates its batch buffers once per call.
template <class ExecSpace, class T, class Decode>
GeneratedImages generate_images(const ExecSpace& space, dit::Dit<ExecSpace, T>& dm, Decode&& decode, int channels,
                                dit::FlowSampler<ExecSpace, T>& sampler, const GenerateOptions& opt) {
  using M = typename ExecSpace::memory_space;
  const auto& dc = dm.config();
  const char* op = "generate_images";
  DCSLDM_REQUIRE(opt.n >= 1 && opt.batch >= 1 && opt.res >= 1 && channels >= 1, op, "n = ", opt.n, ", batch = ",
                 opt.batch, ", res = ", opt.res, ", channels = ", channels, " must be >= 1");
  const int levels = opt.levels == 0 ? dc.levels() : opt.levels;
  DCSLDM_REQUIRE(levels >= 1 && levels <= dc.levels(), op, "levels = ", levels, ", expected 1..", dc.levels());
  DCSLDM_REQUIRE(opt.stages.empty() || opt.stages.back() == levels, op, "the last stage ends at level ",
                 opt.stages.empty() ? 0 : opt.stages.back(), " but ", levels, " levels are to be generated");
  const int K = std::max(1, dc.num_classes), C = channels, R = opt.res;
  GeneratedImages out;
  out.n = opt.n;
  out.res = R;
  out.channels = C;
  out.images.resize(std::size_t(opt.n) * std::size_t(R) * std::size_t(R) * std::size_t(C));
  out.labels.resize(std::size_t(opt.n));
  const int B = std::min(opt.batch, opt.n);
  View3<T, M> z("dcsldm::gen_eval_z", std::size_t(B), std::size_t(dc.latent_tokens()), std::size_t(dc.latent_channels));
  tok::View5<T, M> y("dcsldm::gen_eval_y", std::size_t(B), 1, std::size_t(R), std::size_t(R), std::size_t(C));
  auto hy = Kokkos::create_mirror_view(y);
  using clock = std::chrono::steady_clock;
  const std::size_t per = std::size_t(R) * std::size_t(R) * std::size_t(C);
  for (int s = 0, bi = 0; s < opt.n; s += B, ++bi) {
    const int m = std::min(B, opt.n - s);
    std::vector<int> labels(static_cast<std::size_t>(B));
    for (int i = 0; i < B; ++i) labels[std::size_t(i)] = dc.num_classes > 0 ? (s + std::min(i, m - 1)) % K : 0;
    dit::SampleOptions so = opt.sample;
    so.seed = opt.sample.seed * 0x9E3779B97F4A7C15ull + std::uint64_t(bi) + 1;
    const auto t0 = clock::now();
    if (!opt.stages.empty()) sampler.staged(space, dm, labels, opt.stages, so, z);
    else if (opt.progressive) sampler.progressive(space, dm, labels, levels, so, z);
    else sampler.joint(space, dm, labels, levels, so, z);
    space.fence();
    const auto t1 = clock::now();
    out.evaluations += sampler.evaluations();
    decode(z, levels, y);
    Kokkos::deep_copy(space, hy, y);
    space.fence();
    const auto t2 = clock::now();
    out.dit_seconds += std::chrono::duration<double>(t1 - t0).count();
    out.decode_seconds += std::chrono::duration<double>(t2 - t1).count();
    for (int i = 0; i < m; ++i) {
      out.labels[std::size_t(s + i)] = labels[std::size_t(i)];
      for (std::size_t k = 0; k < per; ++k)
        out.images[std::size_t(s + i) * per + k] = std::min(1.0f, std::max(0.0f, float(hy.data()[std::size_t(i) * per + k])));
    }
  }
  return out;
}

/// generate_images with a DCS-Tok decoder (checks that the DiT models the tokenizer's latent layout).
template <class ExecSpace, class T>
GeneratedImages generate_images(const ExecSpace& space, dit::Dit<ExecSpace, T>& dm, tok::Tokenizer<ExecSpace, T>& tk,
                                dit::FlowSampler<ExecSpace, T>& sampler, const GenerateOptions& opt) {
  DCSLDM_REQUIRE(dm.config().level_sizes == tk.config().level_sizes &&
                     dm.config().latent_channels == tk.config().latent_channels,
                 "generate_images", "the DiT models latents of another layout than the tokenizer");
  auto decode = [&](const View3<T, typename ExecSpace::memory_space>& z, int levels,
                    const tok::View5<T, typename ExecSpace::memory_space>& y) { tk.decode(space, z, levels, y); };
  return generate_images(space, dm, decode, tk.config().channels, sampler, opt);
}

/// A reference set: real images with the classifier's feature statistics.
struct ReferenceSet {
  const float* images = nullptr;  ///< (n, R, R, C)
  std::int64_t n = 0;
  metrics::GaussianStats stats;   ///< classifier features of all n images (FD)
  std::int64_t swd_n = 0;         ///< SWD compares against the first swd_n images (0: all n); SWD's cost
                                  ///< grows with the set sizes, ProGAN compared equal-size sets
};

/// Feature statistics of n images under the classifier (fences).
template <class ExecSpace, class T>
metrics::GaussianStats feature_stats(const ExecSpace& space, cls::Classifier<ExecSpace, T>& c, const float* images,
                                     std::int64_t n) {
  std::vector<int> pred(static_cast<std::size_t>(n));
  std::vector<float> f(std::size_t(n) * std::size_t(c.config().hidden));
  c.predict(space, images, n, pred.data(), f.data());
  return metrics::gaussian_stats(f.data(), n, c.config().hidden);
}

struct ImageScore {
  double class_accuracy = 0;  ///< fraction classified as their label (when labels are given)
  double fd = 0;              ///< Fréchet distance of classifier features against the reference
  metrics::SwdResult swd;     ///< against the reference images
};

/// Scores n images (n, R, R, C) at the classifier's resolution against `ref`. labels may be null.
template <class ExecSpace, class T>
ImageScore score_images(const ExecSpace& space, cls::Classifier<ExecSpace, T>& c, const float* images, std::int64_t n,
                        const int* labels, const ReferenceSet& ref, const metrics::SwdOptions& swd = {}) {
  const auto& cc = c.config();
  std::vector<int> pred(static_cast<std::size_t>(n));
  std::vector<float> f(std::size_t(n) * std::size_t(cc.hidden));
  c.predict(space, images, n, pred.data(), f.data());
  ImageScore s;
  if (labels) {
    std::int64_t ok = 0;
    for (std::int64_t i = 0; i < n; ++i) ok += pred[std::size_t(i)] == labels[i];
    s.class_accuracy = double(ok) / double(n);
  }
  s.fd = metrics::frechet_distance(metrics::gaussian_stats(f.data(), n, cc.hidden), ref.stats);
  const std::int64_t nref = ref.swd_n > 0 ? std::min(ref.swd_n, ref.n) : ref.n;
  s.swd = metrics::sliced_wasserstein(images, n, ref.images, nref, cc.res, cc.res, cc.channels, swd);
  return s;
}

}  // namespace dcsldm::eval
