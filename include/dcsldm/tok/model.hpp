// dcsldm/tok/model.hpp: the Tokenizer model: configuration, parameters (and optionally their gradients and
// AdamW state) in one arena, and the plans of every shape it has run, so user code calls
//   tok.encode(space, x, z);                 x (B, T, H, W, C) -> z (B, N, c)
//   tok.decode(space, z, m, y);              first m levels of z -> y (B, T', H', W', C), any T', H', W'
// A plan (activations and scratch) is built the first time a shape is seen and reused afterwards; encode
// and decode use separate scratch buffers, so an encode's activations survive a decode (training).
//
// Model files are safetensors with the configuration in __metadata__ ("tok.*", "dcsldm.kind" =
// "tokenizer"), written atomically.
#pragma once

#include <dcsldm/core/error.hpp>
#include <dcsldm/core/scratch.hpp>
#include <dcsldm/io/safetensors.hpp>
#include <dcsldm/optim/param_arena.hpp>
#include <dcsldm/tok/config.hpp>
#include <dcsldm/tok/patch_grid.hpp>
#include <dcsldm/tok/tokenizer.hpp>
#include <dcsldm/tok/tokenizer_params.hpp>

#include <algorithm>
#include <map>
#include <string>
#include <tuple>

namespace dcsldm::tok {

template <class ExecSpace, class T = float>
class Tokenizer {
 public:
  using execution_space = ExecSpace;
  using memory_space = typename ExecSpace::memory_space;
  using M = memory_space;
  using value_type = T;

  /// A tokenizer with zero parameters (call init() or load_params()). With ArenaState::ParamsAndOptimizer
  /// it also holds gradients and AdamW moments (for training).
  explicit Tokenizer(const TokenizerConfig& c, optim::ArenaState state = optim::ArenaState::Params)
      : cfg_((c.validate(), c)), arena_(tokenizer_layout(c), state) {
    params_ = bind_tokenizer(arena_, cfg_, arena_.params);
    if (arena_.has_optimizer_state()) grads_ = bind_tokenizer(arena_, cfg_, arena_.grads);
  }

  /// Reads a model file: configuration from its metadata, then the parameters (validated before copying).
  static Tokenizer load(const std::string& path, optim::ArenaState state = optim::ArenaState::Params) {
    const io::SafeTensors f = io::SafeTensors::read(path);
    const auto& md = f.metadata();
    auto kind = md.find("dcsldm.kind");
    DCSLDM_REQUIRE(kind != md.end() && kind->second == "tokenizer", "Tokenizer::load", "'", path,
                   "' is not a dcsldm tokenizer (metadata 'dcsldm.kind' = '",
                   kind == md.end() ? std::string("<missing>") : kind->second, "')");
    Tokenizer t(TokenizerConfig::from_metadata(md, path), state);
    optim::load_arena(f, t.arena_, optim::ArenaState::Params);
    return t;
  }

  /// Writes the parameters (and with ParamsAndOptimizer the AdamW state and `step`) atomically.
  void save(const std::string& path, optim::ArenaState state = optim::ArenaState::Params, std::int64_t step = 0,
            std::map<std::string, std::string> extra = {}) const {
    auto md = cfg_.to_metadata();
    md["dcsldm.kind"] = "tokenizer";
    for (const auto& kv : extra) md[kv.first] = kv.second;
    optim::save_arena(path, arena_, state, step, md);
  }

  /// Deterministic initialisation from `seed` (tokenizer_params.hpp).
  void init(const ExecSpace& space, std::uint64_t seed, InitScheme scheme = InitScheme::Unit) {
    init_tokenizer(space, arena_, seed, scheme);
  }

  const TokenizerConfig& config() const { return cfg_; }
  /// Sets the cell floors (TokenizerConfig::cell_floor_in / _out; 0: none), e.g. for a file trained before
  /// the trainer recorded them; every plan is rebuilt.
  void set_cell_floors(double in, double out) {
    TokenizerConfig c = cfg_;
    c.cell_floor_in = in;
    c.cell_floor_out = out;
    c.validate();
    cfg_ = c;
    clear_plans();
  }
  /// Sets the decoder's edge margin (TokenizerConfig::edge_margin_out, 0..0.5; 0: no blend), e.g. for a file
  /// trained before the trainer recorded it, or 0 to decode without the blend; every plan is rebuilt.
  void set_edge_margin(double margin) {
    TokenizerConfig c = cfg_;
    c.edge_margin_out = margin;
    c.validate();
    cfg_ = c;
    clear_plans();
  }
  const optim::ParamArena<T, M>& arena() const { return arena_; }
  optim::ParamArena<T, M>& arena() { return arena_; }
  const TokenizerParams<T, M>& params() const { return params_; }
  const TokenizerParams<T, M>& grads() const { return grads_; }
  std::size_t num_params() const { return arena_.layout.n_params(); }

  /// The patch grid of an input or output of T frames of H x W pixels (scale-aware: k patches along the
  /// shorter side; fps only matters for video with kt > 0).
  PatchGrid grid(int t, int h, int w, double fps = 0) const { return scale_aware_grid(t, h, w, cfg_.k, cfg_.kt, fps); }

  /// The encode plan of a batch of `batch` inputs on `g` (built once per shape).
  const EncodePlan<T, M>& encode_plan(const ExecSpace& space, int batch, const PatchGrid& g, bool train = false) {
    const Key key{batch, g.t, g.h, g.w, g.gt, g.gh, g.gw, 0, train, 0};
    auto it = enc_plans_.find(key);
    if (it == enc_plans_.end() || it->second.gen != enc_scratch_.generation()) {
      Cached<EncodePlan<T, M>> c{make_encode_plan(space, cfg_, params_, batch, g, train, enc_scratch_), 0};
      c.gen = enc_scratch_.generation();
      it = enc_plans_.insert_or_assign(key, std::move(c)).first;
    }
    return it->second.plan;
  }
  /// The decode plan of `batch` latents decoded with `levels` levels onto `g`. An inference decode whose
  /// pixel stage would take more than decode_memory() bytes runs in tiles of pixels that fit. A training plan
  /// with 0 < window_pixels < g's pixels decodes a window of that many pixels (set_decode_window).
  DecodePlan<T, M>& decode_plan(const ExecSpace& space, int batch, const PatchGrid& g, int levels, bool train = false,
                                int window_pixels = 0) {
    DCSLDM_REQUIRE(window_pixels >= 0 && (train || window_pixels == 0), "Tokenizer::decode_plan", "window_pixels = ",
                   window_pixels, ": a window (> 0) is for training plans only");
    const int tile = train ? (window_pixels < g.num_pixels() ? window_pixels : 0) : decode_tile_pixels(batch);
    const Key key{batch, g.t, g.h, g.w, g.gt, g.gh, g.gw, levels, train, tile};
    auto it = dec_plans_.find(key);
    if (it == dec_plans_.end() || it->second.gen != dec_scratch_.generation()) {
      Cached<DecodePlan<T, M>> c{
          make_decode_plan(space, cfg_, params_, batch, g, levels, train, dec_scratch_, tile), 0};
      c.gen = dec_scratch_.generation();
      it = dec_plans_.insert_or_assign(key, std::move(c)).first;
    }
    return it->second.plan;
  }

  /// x (B, T, H, W, C) -> z (B, N, c).
  template <class XV, class ZV>
  void encode(const ExecSpace& space, const XV& x, const ZV& z, double fps = 0) {
    const PatchGrid g = grid(int(x.extent(1)), int(x.extent(2)), int(x.extent(3)), fps);
    encode_forward(space, x, params_, cfg_, z, encode_plan(space, int(x.extent(0)), g));
  }
  /// The first `levels` levels of z (B, N, c) -> y (B, T, H, W, C): any output size and frame count.
  template <class ZV, class YV>
  void decode(const ExecSpace& space, const ZV& z, int levels, const YV& y, double fps = 0) {
    DCSLDM_REQUIRE(levels >= 1 && levels <= cfg_.levels(), "Tokenizer::decode", "levels = ", levels, ", expected 1..",
                   cfg_.levels());
    const PatchGrid g = grid(int(y.extent(1)), int(y.extent(2)), int(y.extent(3)), fps);
    decode_forward(space, z, params_, cfg_, y, decode_plan(space, int(z.extent(0)), g, levels));
  }

  /// The memory budget (bytes) of an inference decode's pixel stage, the part that grows with the output
  /// size: outputs of more pixels are decoded in tiles, so decoding 2048 x 2048 or larger needs this much
  /// plus the output itself. Default 128 MiB; at least one pixel per tile.
  void set_decode_memory(std::size_t bytes) {
    DCSLDM_REQUIRE(bytes > 0, "Tokenizer::set_decode_memory", "bytes = 0, expected > 0");
    decode_memory_ = bytes;
  }
  std::size_t decode_memory() const { return decode_memory_; }
  /// Output pixels per depatchifier pass of a `batch`-latent inference decode under decode_memory().
  int decode_tile_pixels(int batch) const {
    const std::size_t per = decode_bytes_per_pixel(cfg_, batch, sizeof(T));
    return int(std::min<std::size_t>(std::max<std::size_t>(decode_memory_ / per, 1), std::size_t(1) << 30));
  }

  /// Drops every plan (frees nothing of the scratch; the next call of each shape rebuilds its plan).
  void clear_plans() {
    enc_plans_.clear();
    dec_plans_.clear();
  }
  std::size_t scratch_bytes() const { return (enc_scratch_.capacity() + dec_scratch_.capacity()) * sizeof(T); }

 private:
  using Key = std::tuple<int, int, int, int, int, int, int, int, bool, int>;
  template <class P>
  struct Cached {
    P plan;
    std::size_t gen;
  };
  TokenizerConfig cfg_;
  optim::ParamArena<T, M> arena_;
  TokenizerParams<T, M> params_, grads_;
  Scratch<T, M> enc_scratch_{"dcsldm::tok_encode_scratch"}, dec_scratch_{"dcsldm::tok_decode_scratch"};
  std::map<Key, Cached<EncodePlan<T, M>>> enc_plans_;
  std::map<Key, Cached<DecodePlan<T, M>>> dec_plans_;
  std::size_t decode_memory_ = std::size_t(128) << 20;
};

}  // namespace dcsldm::tok
