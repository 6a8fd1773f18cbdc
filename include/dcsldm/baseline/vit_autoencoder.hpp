// dcsldm/baseline/vit_autoencoder.hpp: the conventional baseline tokenizer — a fixed-patch ViT autoencoder
// with a 1D latent (TiTok-style latent tokens), built from the same layers as DCS-Tok:
//   encode: non-overlapping p x p patches -> Linear(p*p*C -> D) + learned position -> [patches ; N latent
//           tokens] -> pre-LN blocks (full attention) -> LayerNorm -> bottleneck Linear(D -> c) of the latents;
//   decode: Linear(c -> D)(z) + latent position ; one mask token + position per patch -> blocks -> LayerNorm
//           -> Linear(D -> p*p*C) per patch -> pixels.
// Its token count is fixed by the training resolution (R/p)^2 and it decodes only at that resolution: the
// design DCS-Tok is compared against (same latent size, same blocks, same optimizer, same budget).
//
// With latent_tokens = 0 it is the conventional *2D-latent* autoencoder of a latent diffusion model: the
// latent is the bottleneck of every patch token, z (B, (R/p)^2, c), so its token count grows with the
// resolution; the decoder reads Linear(c -> D)(z) + position per patch (no mask tokens).
#pragma once

#include <dcsldm/core/error.hpp>
#include <dcsldm/core/rng.hpp>
#include <dcsldm/core/scratch.hpp>
#include <dcsldm/nn/layer_norm.hpp>
#include <dcsldm/nn/linear.hpp>
#include <dcsldm/nn/loss.hpp>
#include <dcsldm/nn/transformer_block.hpp>
#include <dcsldm/optim/adamw.hpp>
#include <dcsldm/optim/clip_grad.hpp>
#include <dcsldm/optim/ema.hpp>
#include <dcsldm/optim/lr_schedule.hpp>
#include <dcsldm/optim/param_arena.hpp>
#include <dcsldm/tok/sequence_ops.hpp>
#include <dcsldm/tok/tokenizer_params.hpp>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

namespace dcsldm::baseline {

struct VitAeConfig {
  int res = 28, patch = 4, channels = 1;
  int width = 128, heads = 4, layers = 3, mlp_ratio = 4;
  int latent_tokens = 32, latent_channels = 8;
  int grid() const { return res / patch; }
  bool patch_latent() const { return latent_tokens == 0; }
  /// Tokens of the latent: latent_tokens, or one per patch in the 2D-latent form.
  int latent_count() const { return patch_latent() ? patches() : latent_tokens; }
  int patches() const { return grid() * grid(); }
  int patch_dim() const { return patch * patch * channels; }
  void validate() const {
    const char* op = "VitAeConfig";
    DCSLDM_REQUIRE(patch >= 1 && res >= patch && res % patch == 0, op, "res = ", res, " is not a multiple of patch = ",
                   patch);
    DCSLDM_REQUIRE(width % heads == 0 && heads >= 1, op, "width = ", width, " is not divisible by heads = ", heads);
    DCSLDM_REQUIRE(channels >= 1 && layers >= 1 && latent_tokens >= 0 && latent_channels >= 1 && mlp_ratio >= 1, op,
                   "channels, layers, latent_channels, mlp_ratio must be >= 1 and latent_tokens >= 0 (0: one per patch)");
  }
  std::map<std::string, std::string> to_metadata() const {
    return {{"ae.res", std::to_string(res)},       {"ae.patch", std::to_string(patch)},
            {"ae.channels", std::to_string(channels)}, {"ae.width", std::to_string(width)},
            {"ae.heads", std::to_string(heads)},   {"ae.layers", std::to_string(layers)},
            {"ae.mlp_ratio", std::to_string(mlp_ratio)}, {"ae.latent_tokens", std::to_string(latent_tokens)},
            {"ae.latent_channels", std::to_string(latent_channels)}, {"dcsldm.kind", "vit_autoencoder"}};
  }
  static VitAeConfig from_metadata(const std::map<std::string, std::string>& m, const std::string& src) {
    auto get = [&](const char* k) {
      auto it = m.find(k);
      DCSLDM_REQUIRE(it != m.end(), "VitAeConfig::from_metadata", "'", src, "' has no metadata '", k, "'");
      char* end = nullptr;
      const long v = std::strtol(it->second.c_str(), &end, 10);
      DCSLDM_REQUIRE(end && *end == '\0' && !it->second.empty(), "VitAeConfig::from_metadata", "'", src, "': '", k,
                     "' = '", it->second, "' is not an integer");
      return int(v);
    };
    VitAeConfig c;
    c.res = get("ae.res");
    c.patch = get("ae.patch");
    c.channels = get("ae.channels");
    c.width = get("ae.width");
    c.heads = get("ae.heads");
    c.layers = get("ae.layers");
    c.mlp_ratio = get("ae.mlp_ratio");
    c.latent_tokens = get("ae.latent_tokens");
    c.latent_channels = get("ae.latent_channels");
    c.validate();
    return c;
  }
};

template <class T, class M>
struct VitAeParams {
  nn::Linear<T, M> patch, bottleneck, dec_in, unpatch;
  View2<T, M> pos, latent, dec_latent_pos, mask, dec_pos;
  std::vector<nn::TransformerBlock<T, M>> enc, dec;
  nn::LayerNorm<T, M> enc_ln, dec_ln;
};

inline optim::ParamLayout vit_ae_layout(const VitAeConfig& c) {
  c.validate();
  optim::ParamLayout l;
  const int D = c.width, P = c.patches(), N = c.latent_tokens;
  tok::Impl::add_linear(l, "ae.patch", D, c.patch_dim());
  l.add("ae.pos", {P, D}, optim::Decay::No);
  if (N > 0) l.add("ae.latent", {N, D}, optim::Decay::No);
  for (int i = 0; i < c.layers; ++i) tok::Impl::add_block(l, "ae.enc." + std::to_string(i), D, c.mlp_ratio * D);
  l.add("ae.enc_ln.weight", {D}, optim::Decay::No);
  l.add("ae.enc_ln.bias", {D}, optim::Decay::No);
  tok::Impl::add_linear(l, "ae.bottleneck", c.latent_channels, D);
  tok::Impl::add_linear(l, "ae.dec_in", D, c.latent_channels);
  if (N > 0) {
    l.add("ae.dec_latent_pos", {N, D}, optim::Decay::No);
    l.add("ae.mask", {1, D}, optim::Decay::No);
  }
  l.add("ae.dec_pos", {P, D}, optim::Decay::No);
  for (int i = 0; i < c.layers; ++i) tok::Impl::add_block(l, "ae.dec." + std::to_string(i), D, c.mlp_ratio * D);
  l.add("ae.dec_ln.weight", {D}, optim::Decay::No);
  l.add("ae.dec_ln.bias", {D}, optim::Decay::No);
  tok::Impl::add_linear(l, "ae.unpatch", c.patch_dim(), D);
  l.finalize();
  return l;
}

template <class T, class M>
VitAeParams<T, M> bind_vit_ae(const optim::ParamArena<T, M>& a, const VitAeConfig& c, const View1<T, M>& buf) {
  using tok::Impl::bind_linear;
  VitAeParams<T, M> p;
  p.patch = bind_linear(a, buf, "ae.patch");
  p.bottleneck = bind_linear(a, buf, "ae.bottleneck");
  p.dec_in = bind_linear(a, buf, "ae.dec_in");
  p.unpatch = bind_linear(a, buf, "ae.unpatch");
  p.pos = a.view2(a.layout.slot("ae.pos"), buf);
  if (!c.patch_latent()) {
    p.latent = a.view2(a.layout.slot("ae.latent"), buf);
    p.dec_latent_pos = a.view2(a.layout.slot("ae.dec_latent_pos"), buf);
    p.mask = a.view2(a.layout.slot("ae.mask"), buf);
  }
  p.dec_pos = a.view2(a.layout.slot("ae.dec_pos"), buf);
  for (int i = 0; i < c.layers; ++i) {
    p.enc.push_back(tok::Impl::bind_block(a, buf, "ae.enc." + std::to_string(i), c.heads));
    p.dec.push_back(tok::Impl::bind_block(a, buf, "ae.dec." + std::to_string(i), c.heads));
  }
  p.enc_ln = tok::Impl::bind_ln(a, buf, "ae.enc_ln");
  p.dec_ln = tok::Impl::bind_ln(a, buf, "ae.dec_ln");
  return p;
}

namespace Impl {
/// Patch rows <-> pixels: X(b, py*g + px, (i*p + j)*C + ch) <-> x(b, py*p + i, px*p + j, ch); one-to-one.
template <class XV, class PV>
struct PatchGather {
  XV x;  // (B, R*R*C) flat per sample
  PV X;  // (B*P, p*p*C)
  int g, p, C, R;
  bool to_patches;
  KOKKOS_INLINE_FUNCTION void operator()(const int row, const int col) const {
    const int b = row / (g * g), P = row % (g * g), py = P / g, px = P % g;
    const int ch = col % C, ij = col / C, i = ij / p, j = ij % p;
    const std::size_t xi = std::size_t(b) * std::size_t(R * R * C) + std::size_t(((py * p + i) * R + px * p + j) * C + ch);
    if (to_patches) X(row, col) = x.data()[xi];
    else x.data()[xi] = X(row, col);
  }
};
template <class ExecSpace, class T, class M>
void patch_gather(const ExecSpace& space, T* x, const View2<T, M>& X, const VitAeConfig& c, bool to_patches) {
  const View1<T, M> xf(x, X.extent(0) / std::size_t(c.patches()) * std::size_t(c.res * c.res * c.channels));
  Kokkos::parallel_for("dcsldm::vit_ae_patches",
                       Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<2>, Kokkos::IndexType<int>>(
                           space, {0, 0}, {int(X.extent(0)), int(X.extent(1))}),
                       PatchGather<View1<T, M>, View2<T, M>>{xf, X, c.grid(), c.patch, c.channels, c.res, to_patches});
}
}  // namespace Impl

/// The baseline model with its own training step (same recipe as tok::TokenizerTrainer, one scale).
template <class ExecSpace, class T = float>
class VitAutoencoder {
 public:
  using M = typename ExecSpace::memory_space;

  VitAutoencoder(const VitAeConfig& c, int batch, optim::ArenaState st = optim::ArenaState::Params)
      : cfg_((c.validate(), c)), arena_(vit_ae_layout(c), st), B_(batch) {
    p_ = bind_vit_ae(arena_, cfg_, arena_.params);
    if (arena_.has_optimizer_state()) g_ = bind_vit_ae(arena_, cfg_, arena_.grads);
    // N: latent tokens appended to the encoder's sequence (0 in the 2D-latent form); Z: latent rows.
    const std::size_t B = std::size_t(batch), P = std::size_t(c.patches()), N = std::size_t(c.latent_tokens);
    const std::size_t D = std::size_t(c.width), S = P + N, pd = std::size_t(c.patch_dim()),
                      Z = std::size_t(c.latent_count());
    auto mk2 = [](const char* n, std::size_t a, std::size_t b) { return View2<T, M>(std::string(n), a, b); };
    auto mk3 = [](const char* n, std::size_t a, std::size_t b, std::size_t d) { return View3<T, M>(std::string(n), a, b, d); };
    X_ = mk2("ae_X", B * P, pd);
    tokp_ = mk3("ae_tok", B, P, D);
    enc_x_ = mk3("ae_enc_x", B, S, D);
    dec_x_ = mk3("ae_dec_x", B, S, D);
    encl_ = mk3("ae_encl", B, S, D);
    encl_h_ = mk3("ae_encl_h", B, S, D);
    decl_ = mk3("ae_decl", B, S, D);
    decl_h_ = mk3("ae_decl_h", B, S, D);
    lat_h_ = mk3("ae_lat_h", B, Z, D);
    zin_ = mk3("ae_zin", B, Z, std::size_t(c.latent_channels));
    lat_ = mk3("ae_lat", B, Z, D);
    ptok_ = mk3("ae_ptok", B, P, D);
    Y_ = mk2("ae_Y", B * P, pd);
    lnf_e_ = {View1<T, M>("ae_lne_m", B * S), View1<T, M>("ae_lne_r", B * S)};
    lnf_d_ = {View1<T, M>("ae_lnd_m", B * S), View1<T, M>("ae_lnd_r", B * S)};
    scratch_.carve_plan([&] { carve(scratch_); });
    mask_ = nn::make_full_mask<M>();
    if (arena_.has_optimizer_state()) {
      dX_ = mk2("ae_dX", B * P, pd);
      dY_ = mk2("ae_dY", B * P, pd);
      da_ = mk3("ae_da", B, S, D);
      db_ = mk3("ae_db", B, S, D);
      dptok_ = mk3("ae_dptok", B, P, D);
      dlat_ = mk3("ae_dlat", B, Z, D);
      dzin_ = mk3("ae_dzin", B, Z, std::size_t(c.latent_channels));
      dlat_h_ = mk3("ae_dlat_h", B, Z, D);
      dtokp_ = mk3("ae_dtokp", B, P, D);
    }
  }

  static VitAutoencoder load(const std::string& path, int batch) {
    const io::SafeTensors f = io::SafeTensors::read(path);
    auto k = f.metadata().find("dcsldm.kind");
    DCSLDM_REQUIRE(k != f.metadata().end() && k->second == "vit_autoencoder", "VitAutoencoder::load", "'", path,
                   "' is not a dcsldm vit_autoencoder file");
    VitAutoencoder m(VitAeConfig::from_metadata(f.metadata(), path), batch);
    optim::load_arena(f, m.arena_, optim::ArenaState::Params);
    return m;
  }
  void save(const std::string& path, const View1<T, M>& params, std::map<std::string, std::string> extra = {}) const {
    optim::ParamArena<T, M> out(arena_.layout, optim::ArenaState::Params);
    Kokkos::deep_copy(out.params, params);
    auto md = cfg_.to_metadata();
    for (auto& kv : extra) md[kv.first] = kv.second;
    optim::save_arena(path, out, optim::ArenaState::Params, 0, md);
  }
  /// The tokenizer's Small scheme (how the shipped baseline was trained; its "ae.*" names match none of
  /// the tokenizer's feature-reading layers, so every weight is N(0, 0.02)).
  void init(const ExecSpace& space, std::uint64_t seed, tok::InitScheme scheme = tok::InitScheme::Small) {
    tok::init_tokenizer(space, arena_, seed, scheme);
  }

  const VitAeConfig& config() const { return cfg_; }
  optim::ParamArena<T, M>& arena() { return arena_; }
  std::size_t num_params() const { return arena_.layout.n_params(); }
  int batch() const { return B_; }

  /// x (B, R, R, C) contiguous -> z (B, Z, c) and y (B, R, R, C); noise_std > 0 adds latent noise (a
  /// training forward: backward() reads what it leaves).
  void forward(const ExecSpace& space, const T* x, const View3<T, M>& z, T* y, double noise_std = 0,
               std::uint64_t seed = 0, std::uint64_t stream = 0) {
    encode(space, x, z);
    Kokkos::deep_copy(space, zin_, z);
    if (noise_std > 0) {
      const View3<T, M> noise(lat_.data(), std::size_t(B_), std::size_t(cfg_.latent_count()),
                              std::size_t(cfg_.latent_channels));
      rng::fill_normal(space, noise, seed, stream, 0.0, noise_std);
      nn::Impl::add_into(space, zin_, noise, zin_);
    }
    decode_zin(space, y);
  }

  /// Encoder only: x (B, R, R, C) contiguous -> z (B, Z, c), Z = config().latent_count().
  void encode(const ExecSpace& space, const T* x, const View3<T, M>& z) {
    const int P = cfg_.patches(), N = cfg_.latent_tokens, Z = cfg_.latent_count();
    DCSLDM_REQUIRE(z.extent(0) == std::size_t(B_) && z.extent(1) == std::size_t(Z) &&
                       z.extent(2) == std::size_t(cfg_.latent_channels),
                   "VitAutoencoder::encode", "z is (", z.extent(0), ", ", z.extent(1), ", ", z.extent(2), "), expected (",
                   B_, ", ", Z, ", ", cfg_.latent_channels, ")");
    Impl::patch_gather(space, const_cast<T*>(x), X_, cfg_, true);
    nn::linear_forward(space, X_, p_.patch, nn::Impl::rows_of(tokp_));
    tok::add_table_rows(space, tokp_, 0, P, p_.pos, 1, P);
    tok::copy_row_block(space, tokp_, 0, enc_x_, 0, P);
    if (N > 0) {
      tok::fill_row_block(space, enc_x_, P, N, T(0));
      tok::add_table_rows(space, enc_x_, P, N, p_.latent, 1, N);
    }
    run_blocks(space, p_.enc, enc_c_, enc_x_, encl_);
    nn::layer_norm_forward(space, nn::Impl::rows_of(encl_), p_.enc_ln, nn::Impl::rows_of(encl_h_), lnf_e_);
    tok::copy_row_block(space, encl_h_, N > 0 ? P : 0, lat_h_, 0, Z);
    nn::linear_forward(space, nn::Impl::rows_of(lat_h_), p_.bottleneck, nn::Impl::rows_of(z));
  }

  /// Decoder only: z (B, Z, c) -> y (B, R, R, C) contiguous, at the training resolution.
  void decode(const ExecSpace& space, const View3<T, M>& z, T* y) {
    DCSLDM_REQUIRE(z.extent(0) == zin_.extent(0) && z.extent(1) == zin_.extent(1) && z.extent(2) == zin_.extent(2),
                   "VitAutoencoder::decode", "z is (", z.extent(0), ", ", z.extent(1), ", ", z.extent(2), "), expected (",
                   zin_.extent(0), ", ", zin_.extent(1), ", ", zin_.extent(2), ")");
    Kokkos::deep_copy(space, zin_, z);
    decode_zin(space, y);
  }

  /// Backward from dy (B, R, R, C) and an extra dz (B, N, c) (added to the decoder's); gradients accumulate.
  void backward(const ExecSpace& space, T* dy, const View3<T, M>& dz_extra) {
    const int P = cfg_.patches(), N = cfg_.latent_tokens, Z = cfg_.latent_count();
    const int D0 = N > 0 ? N : 0;  // first patch row of the decoder's sequence
    Impl::patch_gather(space, dy, dY_, cfg_, true);
    nn::linear_backward(space, dY_, nn::Impl::rows_of(ptok_), p_.unpatch, g_.unpatch, nn::Impl::rows_of(dptok_));
    Kokkos::deep_copy(space, da_, T(0));
    tok::copy_row_block(space, dptok_, 0, da_, D0, P);
    nn::layer_norm_backward(space, nn::Impl::rows_of(da_), nn::Impl::rows_of(decl_), p_.dec_ln, g_.dec_ln, lnf_d_,
                            nn::Impl::rows_of(db_));
    for (int i = cfg_.layers - 1; i >= 0; --i)
      nn::transformer_block_backward(space, db_, p_.dec[i], g_.dec[i], mask_, dec_c_[i], ws_, db_);
    if (N > 0) {
      tok::sum_table_rows(space, db_, N, P, 1, 1, g_.mask);
      tok::sum_table_rows(space, db_, 0, N, 1, N, g_.dec_latent_pos);
    }
    tok::sum_table_rows(space, db_, D0, P, 1, P, g_.dec_pos);
    tok::copy_row_block(space, db_, 0, dlat_, 0, Z);
    nn::linear_backward(space, nn::Impl::rows_of(dlat_), nn::Impl::rows_of(zin_), p_.dec_in, g_.dec_in,
                        nn::Impl::rows_of(dzin_));
    nn::Impl::add_into(space, dzin_, dz_extra, dzin_);
    nn::linear_backward(space, nn::Impl::rows_of(dzin_), nn::Impl::rows_of(lat_h_), p_.bottleneck, g_.bottleneck,
                        nn::Impl::rows_of(dlat_h_));
    Kokkos::deep_copy(space, da_, T(0));
    tok::copy_row_block(space, dlat_h_, 0, da_, N > 0 ? P : 0, Z);
    nn::layer_norm_backward(space, nn::Impl::rows_of(da_), nn::Impl::rows_of(encl_), p_.enc_ln, g_.enc_ln, lnf_e_,
                            nn::Impl::rows_of(db_));
    for (int i = cfg_.layers - 1; i >= 0; --i)
      nn::transformer_block_backward(space, db_, p_.enc[i], g_.enc[i], mask_, enc_c_[i], ws_, db_);
    if (N > 0) tok::sum_table_rows(space, db_, P, N, 1, N, g_.latent);
    tok::copy_row_block(space, db_, 0, dtokp_, 0, P);
    tok::sum_table_rows(space, dtokp_, 0, P, 1, P, g_.pos);
    nn::linear_backward(space, nn::Impl::rows_of(dtokp_), X_, p_.patch, g_.patch, View2<T, M>());
  }

 private:
  /// zin_ (B, Z, c) -> y: the decoder half of forward().
  void decode_zin(const ExecSpace& space, T* y) {
    const int P = cfg_.patches(), N = cfg_.latent_tokens, Z = cfg_.latent_count();
    nn::linear_forward(space, nn::Impl::rows_of(zin_), p_.dec_in, nn::Impl::rows_of(lat_));
    if (N > 0) {
      tok::copy_row_block(space, lat_, 0, dec_x_, 0, N);
      tok::add_table_rows(space, dec_x_, 0, N, p_.dec_latent_pos, 1, N);
      tok::fill_row_block(space, dec_x_, N, P, T(0));
      tok::add_table_rows(space, dec_x_, N, P, p_.mask, 1, 1);
      tok::add_table_rows(space, dec_x_, N, P, p_.dec_pos, 1, P);
    } else {
      tok::copy_row_block(space, lat_, 0, dec_x_, 0, Z);
      tok::add_table_rows(space, dec_x_, 0, P, p_.dec_pos, 1, P);
    }
    run_blocks(space, p_.dec, dec_c_, dec_x_, decl_);
    nn::layer_norm_forward(space, nn::Impl::rows_of(decl_), p_.dec_ln, nn::Impl::rows_of(decl_h_), lnf_d_);
    tok::copy_row_block(space, decl_h_, N, ptok_, 0, P);
    nn::linear_forward(space, nn::Impl::rows_of(ptok_), p_.unpatch, Y_);
    Impl::patch_gather(space, y, Y_, cfg_, false);
  }

  template <class Scr>
  void carve(Scr& s) {
    const std::size_t B = std::size_t(B_), S = std::size_t(cfg_.patches() + cfg_.latent_tokens);
    enc_c_.clear();
    dec_c_.clear();
    for (const auto& b : p_.enc) enc_c_.push_back(nn::make_transformer_block_cache(s, B, S, b));
    for (const auto& b : p_.dec) dec_c_.push_back(nn::make_transformer_block_cache(s, B, S, b));
    ws_ = nn::make_transformer_workspace(s, B, S, p_.enc.at(0));
  }
  void run_blocks(const ExecSpace& space, const std::vector<nn::TransformerBlock<T, M>>& blocks,
                  const std::vector<nn::TransformerBlockCache<T, M>>& caches, const View3<T, M>& x0,
                  const View3<T, M>& out) {
    const int L = int(blocks.size());
    Kokkos::deep_copy(space, caches[0].x, x0);
    for (int i = 0; i < L; ++i)
      nn::transformer_block_forward(space, caches[i].x, blocks[i], mask_, i + 1 < L ? caches[i + 1].x : out, caches[i],
                                    ws_);
  }

  VitAeConfig cfg_;
  optim::ParamArena<T, M> arena_;
  int B_;
  VitAeParams<T, M> p_, g_;
  Scratch<T, M> scratch_{"dcsldm::vit_ae_scratch"};
  std::vector<nn::TransformerBlockCache<T, M>> enc_c_, dec_c_;
  nn::TransformerWorkspace<T, M> ws_;
  nn::AttentionMask<M> mask_;
  nn::LayerNormCache<T, M> lnf_e_, lnf_d_;
  View2<T, M> X_, Y_, dX_, dY_;
  View3<T, M> tokp_, enc_x_, dec_x_, encl_, encl_h_, decl_, decl_h_, lat_h_, zin_, lat_, ptok_;
  View3<T, M> da_, db_, dptok_, dlat_, dzin_, dlat_h_, dtokp_;
};

}  // namespace dcsldm::baseline
