// dcsldm/tok/config.hpp: the configuration of a DCS-Tok tokenizer (architecture only; training options
// live in tok/trainer.hpp). Stored in a model file's safetensors __metadata__ as "tok.<field>" strings,
// so a model file is self-describing.
#pragma once

#include <dcsldm/core/error.hpp>

#include <cstdlib>
#include <map>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

namespace dcsldm::tok {

struct TokenizerConfig {
  int channels = 1;        ///< C: image/field channels
  int k = 7;               ///< patches along the shorter spatial side (scale-aware patchify)
  double kt = 0;           ///< temporal patches per second (0: one temporal patch per clip)
  int queries = 2;         ///< n: tokens per patch (patchifier queries / decoder query tokens)
  int pixel_width = 64;    ///< E: width of pixel tokens and the pixel-level attention
  int pixel_heads = 4;     ///< heads of the pixel-level attention
  int freqs = 6;           ///< Fourier frequencies of pixel coordinates (6 coordinates)
  int pos_freqs = 4;       ///< Fourier frequencies of patch centres (3 coordinates)
  int width = 128;         ///< D: transformer width
  int heads = 4;           ///< transformer heads
  int enc_layers = 3;      ///< encoder blocks
  int dec_layers = 3;      ///< decoder blocks
  int mlp_ratio = 4;       ///< MLP hidden width = mlp_ratio * D
  int head_hidden = 64;    ///< hidden width of the per-pixel output MLP
  std::vector<int> level_sizes{4, 4, 8, 16};  ///< N_1..N_L latent tokens per level
  int latent_channels = 8;                    ///< c: channels per latent token
  /// Floors of the spatial pixel cell (footprint, patch units) the encoder (in) and the decoder (out) see: a
  /// pixel smaller than the smallest cell of training is presented as one of that size, at its own position
  /// (an input or output above the training scales reads and renders the continuous image as at the largest
  /// training scale instead of extrapolating the cell features). 0: no floor. The trainer records
  /// k / (largest input or target scale); files written before it have none (0). The temporal cell is not
  /// floored.
  double cell_floor_in = 0, cell_floor_out = 0;
  /// The edge margin of the decoder's read-out (patch units, 0..0.5): the smallest distance from a patch edge of
  /// any pixel of the training targets (tok::training_edge_margin). An inference decode evaluates the read-out
  /// only at in-patch positions at least this far from an edge; an output pixel closer to an edge shared with
  /// another patch is blended linearly between the two patches' read-outs at the margin, across the band of
  /// width 2 x margin around the edge (at the outer border: the read-out at the margin). So a decode above the
  /// training scales is continuous across patch edges where the read-out was never trained, and outputs whose
  /// pixels all lie at trained distances (every training scale) are unchanged. Training decodes never blend.
  /// 0: off. The trainer records it; files written before it have none (0; `dcsldm set-cell-floor --edge-margin`).
  double edge_margin_out = 0;
  /// Whether the decoder is told how many levels it decodes: a learned embedding per level count m
  /// (`dec.level_count`, (L, D)) is added to every decoder query token, so one decoder can behave differently
  /// for a prefix and for the whole latent. Off in files written before it (the key is written only when on).
  bool level_count_embedding = false;

  int levels() const { return int(level_sizes.size()); }
  int latent_tokens() const { return std::accumulate(level_sizes.begin(), level_sizes.end(), 0); }
  /// Latent tokens of levels 1..m.
  int tokens_upto(int m) const {
    int s = 0;
    for (int l = 0; l < m && l < levels(); ++l) s += level_sizes[std::size_t(l)];
    return s;
  }

  void validate() const {
    const char* op = "TokenizerConfig";
    auto pos = [&](const char* name, int v) { DCSLDM_REQUIRE(v >= 1, op, name, " = ", v, " must be >= 1"); };
    pos("channels", channels);
    pos("k", k);
    pos("queries", queries);
    pos("pixel_width", pixel_width);
    pos("pixel_heads", pixel_heads);
    pos("freqs", freqs);
    pos("pos_freqs", pos_freqs);
    pos("width", width);
    pos("heads", heads);
    pos("enc_layers", enc_layers);
    pos("dec_layers", dec_layers);
    pos("mlp_ratio", mlp_ratio);
    pos("head_hidden", head_hidden);
    pos("latent_channels", latent_channels);
    DCSLDM_REQUIRE(kt >= 0, op, "kt = ", kt, " must be >= 0");
    DCSLDM_REQUIRE(cell_floor_in >= 0 && cell_floor_out >= 0, op, "cell_floor_in = ", cell_floor_in,
                   ", cell_floor_out = ", cell_floor_out, ": must be >= 0 (0: no floor)");
    DCSLDM_REQUIRE(edge_margin_out >= 0 && edge_margin_out <= 0.5, op, "edge_margin_out = ", edge_margin_out,
                   ": must be in [0, 0.5] (patch units; 0: no blend)");
    DCSLDM_REQUIRE(pixel_width % pixel_heads == 0, op, "pixel_width = ", pixel_width,
                   " is not divisible by pixel_heads = ", pixel_heads);
    DCSLDM_REQUIRE(width % heads == 0, op, "width = ", width, " is not divisible by heads = ", heads);
    DCSLDM_REQUIRE(!level_sizes.empty(), op, "level_sizes is empty");
    for (std::size_t l = 0; l < level_sizes.size(); ++l)
      DCSLDM_REQUIRE(level_sizes[l] >= 1, op, "level_sizes[", l, "] = ", level_sizes[l], " must be >= 1");
  }

  /// "tok.<field>" -> value strings (for safetensors metadata).
  std::map<std::string, std::string> to_metadata() const {
    std::map<std::string, std::string> m;
    auto put = [&](const char* key, double v) {
      std::ostringstream o;
      o.precision(17);
      o << v;
      m[std::string("tok.") + key] = o.str();
    };
    put("channels", channels);
    put("k", k);
    put("kt", kt);
    put("queries", queries);
    put("pixel_width", pixel_width);
    put("pixel_heads", pixel_heads);
    put("freqs", freqs);
    put("pos_freqs", pos_freqs);
    put("width", width);
    put("heads", heads);
    put("enc_layers", enc_layers);
    put("dec_layers", dec_layers);
    put("mlp_ratio", mlp_ratio);
    put("head_hidden", head_hidden);
    put("latent_channels", latent_channels);
    put("cell_floor_in", cell_floor_in);
    put("cell_floor_out", cell_floor_out);
    if (level_count_embedding) put("level_count_embedding", 1);
    if (edge_margin_out > 0) put("edge_margin_out", edge_margin_out);
    std::string ls;
    for (std::size_t l = 0; l < level_sizes.size(); ++l) ls += (l ? "," : "") + std::to_string(level_sizes[l]);
    m["tok.level_sizes"] = ls;
    return m;
  }

  /// Reads a configuration back; every field must be present and well formed (`source` names the file).
  static TokenizerConfig from_metadata(const std::map<std::string, std::string>& m, const std::string& source) {
    const char* op = "TokenizerConfig::from_metadata";
    auto get = [&](const char* key) -> const std::string& {
      auto it = m.find(std::string("tok.") + key);
      DCSLDM_REQUIRE(it != m.end(), op, "'", source, "' has no metadata 'tok.", key,
                     "' (not a dcsldm tokenizer file?)");
      return it->second;
    };
    auto num = [&](const char* key) {
      const std::string& s = get(key);
      char* end = nullptr;
      const double v = std::strtod(s.c_str(), &end);
      DCSLDM_REQUIRE(end && *end == '\0' && !s.empty(), op, "'", source, "': metadata 'tok.", key, "' = '", s,
                     "' is not a number");
      return v;
    };
    auto inum = [&](const char* key) {
      const double v = num(key);
      DCSLDM_REQUIRE(v == double(int(v)), op, "'", source, "': metadata 'tok.", key, "' = ", v,
                     " is not an integer");
      return int(v);
    };
    TokenizerConfig c;
    c.channels = inum("channels");
    c.k = inum("k");
    c.kt = num("kt");
    c.queries = inum("queries");
    c.pixel_width = inum("pixel_width");
    c.pixel_heads = inum("pixel_heads");
    c.freqs = inum("freqs");
    c.pos_freqs = inum("pos_freqs");
    c.width = inum("width");
    c.heads = inum("heads");
    c.enc_layers = inum("enc_layers");
    c.dec_layers = inum("dec_layers");
    c.mlp_ratio = inum("mlp_ratio");
    c.head_hidden = inum("head_hidden");
    c.latent_channels = inum("latent_channels");
    // Optional: files written before the trainer recorded the cell floors have none.
    if (m.count("tok.cell_floor_in")) c.cell_floor_in = num("cell_floor_in");
    if (m.count("tok.cell_floor_out")) c.cell_floor_out = num("cell_floor_out");
    // Optional: off in files written before them.
    if (m.count("tok.edge_margin_out")) c.edge_margin_out = num("edge_margin_out");
    if (m.count("tok.level_count_embedding")) {
      const int v = inum("level_count_embedding");
      DCSLDM_REQUIRE(v == 0 || v == 1, op, "'", source, "': metadata 'tok.level_count_embedding' = ", v,
                     ", expected 0 or 1");
      c.level_count_embedding = v == 1;
    }
    c.level_sizes.clear();
    std::stringstream ss(get("level_sizes"));
    std::string tok;
    while (std::getline(ss, tok, ',')) {
      char* end = nullptr;
      const long v = std::strtol(tok.c_str(), &end, 10);
      DCSLDM_REQUIRE(!tok.empty() && end && *end == '\0', op, "'", source, "': metadata 'tok.level_sizes' = '",
                     get("level_sizes"), "' is not a comma-separated list of integers");
      c.level_sizes.push_back(int(v));
    }
    c.validate();
    return c;
  }
};

/// Whether two configurations describe the same parameters and computation up to the cell floors and the edge
/// margin (which only change decodes above the training scales).
inline bool same_architecture(TokenizerConfig a, TokenizerConfig b) {
  a.cell_floor_in = a.cell_floor_out = b.cell_floor_in = b.cell_floor_out = 0;
  a.edge_margin_out = b.edge_margin_out = 0;
  return a.to_metadata() == b.to_metadata();
}

/// "field: a vs b" for every metadata field in which two configurations differ (for error messages).
inline std::string describe_difference(const TokenizerConfig& a, const TokenizerConfig& b) {
  const auto ma = a.to_metadata(), mb = b.to_metadata();
  std::string r;
  for (const auto& kv : ma) {
    const auto it = mb.find(kv.first);
    if (it != mb.end() && it->second == kv.second) continue;
    r += (r.empty() ? "" : ", ") + kv.first.substr(4) + " " + kv.second + " vs " + (it == mb.end() ? "-" : it->second);
  }
  return r.empty() ? "identical" : r;
}

}  // namespace dcsldm::tok
