// dcsldm/dit/latent_set.hpp: a data set of tokenizer latents (with class labels) for DiT training:
// encoding images with a tokenizer, per-(level, channel) statistics, and a safetensors cache file.
//
//   LatentSet s = encode_images(space, tokenizer, images, count, h, w, labels, batch);
//   s.save("latents.safetensors");  LatentSet::load(...)        // atomic write, validated read
//   auto [mean, std] = latent_stats(s, level_sizes);
#pragma once

#include <dcsldm/core/error.hpp>
#include <dcsldm/io/safetensors.hpp>
#include <dcsldm/tok/model.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace dcsldm::dit {

struct LatentSet {
  int count = 0, tokens = 0, channels = 0;  ///< count samples of (tokens, channels)
  std::vector<float> z;                     ///< (count, tokens, channels) row-major
  std::vector<std::int32_t> labels;         ///< (count), -1 when unlabelled
  std::string source;                       ///< what was encoded (recorded in the file)

  const float* sample(int i) const { return z.data() + std::size_t(i) * std::size_t(tokens) * std::size_t(channels); }

  void save(const std::string& path) const {
    io::SafeTensorsWriter w;
    w.add_bytes("z", io::DType::F32, {count, tokens, channels}, z.data(), z.size() * sizeof(float));
    w.add_bytes("labels", io::DType::I32, {count}, labels.data(), labels.size() * sizeof(std::int32_t));
    w.set_metadata("dcsldm.kind", "latent_set");
    w.set_metadata("latents.source", source);
    w.write(path);
  }

  static LatentSet load(const std::string& path) {
    const char* op = "LatentSet::load";
    const io::SafeTensors f = io::SafeTensors::read(path);
    auto kind = f.metadata().find("dcsldm.kind");
    DCSLDM_REQUIRE(kind != f.metadata().end() && kind->second == "latent_set", op, "'", path,
                   "' is not a dcsldm latent set");
    DCSLDM_REQUIRE(f.contains("z") && f.contains("labels"), op, "'", path, "' lacks tensor 'z' or 'labels'");
    const auto& zi = f.info("z");
    DCSLDM_REQUIRE(zi.shape.size() == 3 && f.info("labels").shape.size() == 1 &&
                       f.info("labels").shape[0] == zi.shape[0],
                   op, "'", path, "': z must be (count, tokens, channels) and labels (count)");
    LatentSet s;
    s.count = int(zi.shape[0]);
    s.tokens = int(zi.shape[1]);
    s.channels = int(zi.shape[2]);
    s.z = f.to_vector<float>("z");
    s.labels = f.to_vector<std::int32_t>("labels");
    auto src = f.metadata().find("latents.source");
    if (src != f.metadata().end()) s.source = src->second;
    for (std::size_t i = 0; i < s.z.size(); ++i)
      DCSLDM_REQUIRE(std::isfinite(s.z[i]), op, "'", path, "': z has a non-finite value at flat index ", i);
    return s;
  }
};

/// Per-(level, channel) mean and std (level-major, L * c values each) over every sample and every token
/// of the level. level_sizes must add up to the set's tokens.
inline std::pair<std::vector<double>, std::vector<double>> latent_stats(const LatentSet& s,
                                                                        const std::vector<int>& level_sizes) {
  int total = 0;
  for (int n : level_sizes) total += n;
  DCSLDM_REQUIRE(total == s.tokens && s.count > 0, "latent_stats", "level sizes add up to ", total,
                 " tokens, the set has ", s.tokens, " (", s.count, " samples)");
  const std::size_t L = level_sizes.size(), c = std::size_t(s.channels);
  std::vector<double> sum(L * c, 0.0), sq(L * c, 0.0), cnt(L * c, 0.0);
  for (int i = 0; i < s.count; ++i) {
    const float* z = s.sample(i);
    int tok = 0;
    for (std::size_t l = 0; l < L; ++l)
      for (int j = 0; j < level_sizes[l]; ++j, ++tok)
        for (std::size_t ch = 0; ch < c; ++ch) {
          const double v = z[std::size_t(tok) * c + ch];
          sum[l * c + ch] += v;
          sq[l * c + ch] += v * v;
          cnt[l * c + ch] += 1;
        }
  }
  std::vector<double> mean(L * c), sd(L * c);
  for (std::size_t k = 0; k < L * c; ++k) {
    mean[k] = sum[k] / cnt[k];
    sd[k] = std::sqrt(std::max(sq[k] / cnt[k] - mean[k] * mean[k], 1e-12));
  }
  return {mean, sd};
}

/// Encodes `count` images (count, h, w, C) host floats in [0, 1] with `tok` in batches; labels (count) or
/// empty. The last partial batch is padded (its extra outputs dropped), so every plan has one shape.
template <class ExecSpace, class T>
LatentSet encode_images(const ExecSpace& space, tok::Tokenizer<ExecSpace, T>& tk, const float* images, int count,
                        int h, int w, const std::vector<std::int32_t>& labels, int batch, std::string source = "") {
  using M = typename ExecSpace::memory_space;
  const auto& c = tk.config();
  DCSLDM_REQUIRE(count >= 1 && batch >= 1, "encode_images", "count = ", count, ", batch = ", batch);
  DCSLDM_REQUIRE(labels.empty() || int(labels.size()) == count, "encode_images", labels.size(), " labels for ", count,
                 " images");
  LatentSet s;
  s.count = count;
  s.tokens = c.latent_tokens();
  s.channels = c.latent_channels;
  s.source = std::move(source);
  s.z.resize(std::size_t(count) * std::size_t(s.tokens) * std::size_t(s.channels));
  s.labels = labels.empty() ? std::vector<std::int32_t>(std::size_t(count), -1) : labels;
  const std::size_t C = std::size_t(c.channels), px = std::size_t(h) * std::size_t(w) * C;
  tok::View5<T, M> x("dcsldm::encode_x", std::size_t(batch), 1, std::size_t(h), std::size_t(w), C);
  View3<T, M> z("dcsldm::encode_z", std::size_t(batch), std::size_t(s.tokens), std::size_t(s.channels));
  auto hx = Kokkos::create_mirror_view(x);
  auto hz = Kokkos::create_mirror_view(z);
  const std::size_t zs = std::size_t(s.tokens) * std::size_t(s.channels);
  for (int i0 = 0; i0 < count; i0 += batch) {
    const int n = std::min(batch, count - i0);
    for (int b = 0; b < batch; ++b) {
      const float* src = images + std::size_t(i0 + std::min(b, n - 1)) * px;
      for (std::size_t k = 0; k < px; ++k) hx.data()[std::size_t(b) * px + k] = T(src[k]);
    }
    Kokkos::deep_copy(space, x, hx);
    tk.encode(space, x, z);
    Kokkos::deep_copy(space, hz, z);
    space.fence();
    for (int b = 0; b < n; ++b)
      for (std::size_t k = 0; k < zs; ++k) s.z[std::size_t(i0 + b) * zs + k] = float(hz.data()[std::size_t(b) * zs + k]);
  }
  return s;
}

}  // namespace dcsldm::dit
