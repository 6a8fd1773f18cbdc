// dcsldm/dit/config.hpp: the configuration of a DCS-DiT (architecture only; training options live in
// dit/trainer.hpp). Stored in a model file's safetensors __metadata__ as "dit.<field>" strings.
//
// The latent layout (level_sizes, latent_channels) must equal the tokenizer's whose latents the DiT models.
#pragma once

#include <dcsldm/core/error.hpp>

#include <cstdlib>
#include <map>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

namespace dcsldm::dit {

struct DitConfig {
  std::vector<int> level_sizes{4, 4, 8, 16};  ///< N_1..N_L latent tokens per level (the tokenizer's)
  int latent_channels = 8;                    ///< c: channels per latent token (the tokenizer's)
  int width = 192;                            ///< D: transformer width
  int heads = 6;                              ///< attention heads
  int layers = 6;                             ///< AdaLN-Zero blocks
  int mlp_ratio = 4;                          ///< MLP hidden width = mlp_ratio * D
  int freq_dim = 128;                         ///< sinusoidal timestep features before the timestep MLP
  int num_classes = 10;                       ///< class labels 0..num_classes-1 (+ the null label); 0: none

  int levels() const { return int(level_sizes.size()); }
  int latent_tokens() const { return std::accumulate(level_sizes.begin(), level_sizes.end(), 0); }
  int tokens_upto(int m) const {
    int s = 0;
    for (int l = 0; l < m && l < levels(); ++l) s += level_sizes[std::size_t(l)];
    return s;
  }
  /// Level (1-based) of each of the first tokens_upto(m) tokens.
  std::vector<int> token_levels(int m) const {
    std::vector<int> v;
    for (int l = 0; l < m && l < levels(); ++l) v.insert(v.end(), std::size_t(level_sizes[std::size_t(l)]), l + 1);
    return v;
  }

  void validate() const {
    const char* op = "DitConfig";
    auto pos = [&](const char* name, int v) { DCSLDM_REQUIRE(v >= 1, op, name, " = ", v, " must be >= 1"); };
    pos("latent_channels", latent_channels);
    pos("width", width);
    pos("heads", heads);
    pos("layers", layers);
    pos("mlp_ratio", mlp_ratio);
    pos("freq_dim", freq_dim);
    DCSLDM_REQUIRE(freq_dim % 2 == 0, op, "freq_dim = ", freq_dim, " must be even");
    DCSLDM_REQUIRE(num_classes >= 0, op, "num_classes = ", num_classes, " must be >= 0");
    DCSLDM_REQUIRE(width % heads == 0, op, "width = ", width, " is not divisible by heads = ", heads);
    DCSLDM_REQUIRE(!level_sizes.empty(), op, "level_sizes is empty");
    for (std::size_t l = 0; l < level_sizes.size(); ++l)
      DCSLDM_REQUIRE(level_sizes[l] >= 1, op, "level_sizes[", l, "] = ", level_sizes[l], " must be >= 1");
  }

  std::map<std::string, std::string> to_metadata() const {
    std::map<std::string, std::string> m;
    auto put = [&](const char* key, int v) { m[std::string("dit.") + key] = std::to_string(v); };
    put("latent_channels", latent_channels);
    put("width", width);
    put("heads", heads);
    put("layers", layers);
    put("mlp_ratio", mlp_ratio);
    put("freq_dim", freq_dim);
    put("num_classes", num_classes);
    std::string ls;
    for (std::size_t l = 0; l < level_sizes.size(); ++l) ls += (l ? "," : "") + std::to_string(level_sizes[l]);
    m["dit.level_sizes"] = ls;
    return m;
  }

  /// Reads a configuration back; every field must be present and well formed (`source` names the file).
  static DitConfig from_metadata(const std::map<std::string, std::string>& m, const std::string& source) {
    const char* op = "DitConfig::from_metadata";
    auto get = [&](const char* key) -> const std::string& {
      auto it = m.find(std::string("dit.") + key);
      DCSLDM_REQUIRE(it != m.end(), op, "'", source, "' has no metadata 'dit.", key, "' (not a dcsldm DiT file?)");
      return it->second;
    };
    auto inum = [&](const char* key) {
      const std::string& s = get(key);
      char* end = nullptr;
      const long v = std::strtol(s.c_str(), &end, 10);
      DCSLDM_REQUIRE(!s.empty() && end && *end == '\0', op, "'", source, "': metadata 'dit.", key, "' = '", s,
                     "' is not an integer");
      return int(v);
    };
    DitConfig c;
    c.latent_channels = inum("latent_channels");
    c.width = inum("width");
    c.heads = inum("heads");
    c.layers = inum("layers");
    c.mlp_ratio = inum("mlp_ratio");
    c.freq_dim = inum("freq_dim");
    c.num_classes = inum("num_classes");
    c.level_sizes.clear();
    std::stringstream ss(get("level_sizes"));
    std::string tok;
    while (std::getline(ss, tok, ',')) {
      char* end = nullptr;
      const long v = std::strtol(tok.c_str(), &end, 10);
      DCSLDM_REQUIRE(!tok.empty() && end && *end == '\0', op, "'", source, "': metadata 'dit.level_sizes' = '",
                     get("level_sizes"), "' is not a comma-separated list of integers");
      c.level_sizes.push_back(int(v));
    }
    c.validate();
    return c;
  }
};

}  // namespace dcsldm::dit
