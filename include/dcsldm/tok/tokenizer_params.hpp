// dcsldm/tok/tokenizer_params.hpp: the parameters of a DCS-Tok tokenizer: their names and shapes in a
// flat arena (optim::ParamLayout), the struct of Views a pass reads (TokenizerParams), and initialisation.
//
// Tensor names (E = pixel_width, D = width, n = queries, C = channels, c = latent_channels,
// N = latent tokens, Fw = 6 (2 freqs + 1), Fp = 3 (2 pos_freqs + 1), H = mlp_ratio * D, Hh = head_hidden):
//   enc.pix_x (E, C)                 pixel value -> pixel token (no bias)
//   enc.pix_f.{weight,bias} (E, Fw)  Fourier features of (in-patch position, cell size) -> pixel token
//   enc.pix_g.{weight,bias} (E, Fw)  the same features -> position-dependent scale of the pixel value:
//                                    pre = (x Wx^T) * (1 + g(pos)) + f(pos)   (multiplicative, see tokenizer.hpp)
//   enc.pix_kv (2E, E)               pixel token -> keys | values of the patchifier read-out
//   enc.pool_q (n, E)                the patchifier's learned queries (shared by all patches)
//   enc.proj (D, E)                  read-out -> patch token
//   enc.pos (D, Fp)                  Fourier features of the patch centre -> position embedding
//   enc.slot (n, D), enc.latent (N, D)   token-slot embedding, learned latent tokens
//   enc.blocks.<i>.*                 pre-LN transformer blocks (level-causal mask)
//   enc.ln, enc.bottleneck (c, D)    final norm, bottleneck to the latent
//   dec.in (D, c), dec.latent_pos (N, D), dec.pos (D, Fp), dec.slot (n, D), dec.blocks.<i>.*, dec.ln
//   dec.level_count (L, D)           only with level_count_embedding: row m-1 is added to every query token
//                                    of a decode of m levels
//   dec.kv (2E, D)                   decoder patch tokens -> keys | values of the depatchifier
//   dec.q.fc1 (E, Fw), dec.q.fc2 (E, E)   output-pixel query MLP
//   dec.mod.{weight,bias} (E, Fw)    the pixel's features -> scale of the attention output:
//                                    r = o * (1 + s(pos)) + q(pos)
//   dec.rel (27 n, E)                key bias per (neighbour offset, token slot)
//   dec.head.fc1 (Hh, E), dec.head.fc2 (C, Hh)   per-pixel output MLP
#pragma once

#include <dcsldm/core/error.hpp>
#include <dcsldm/nn/fourier_features.hpp>
#include <dcsldm/nn/linear.hpp>
#include <dcsldm/nn/mlp.hpp>
#include <dcsldm/nn/transformer_block.hpp>
#include <dcsldm/optim/param_arena.hpp>
#include <dcsldm/tok/config.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace dcsldm::tok {

template <class T, class M>
struct TokenizerParams {
  View2<T, M> pix_x;
  nn::Linear<T, M> pix_f, pix_g, pix_kv;
  View2<T, M> pool_q;
  nn::Linear<T, M> enc_proj, enc_pos;
  View2<T, M> enc_slot, enc_latent;
  std::vector<nn::TransformerBlock<T, M>> enc_blocks;
  nn::LayerNorm<T, M> enc_ln;
  nn::Linear<T, M> bottleneck;
  nn::Linear<T, M> dec_in;
  View2<T, M> dec_latent_pos;
  nn::Linear<T, M> dec_pos;
  View2<T, M> dec_slot;
  View2<T, M> dec_level_count;  ///< (L, D), empty unless the configuration has level_count_embedding
  std::vector<nn::TransformerBlock<T, M>> dec_blocks;
  nn::LayerNorm<T, M> dec_ln;
  nn::Linear<T, M> dec_kv;
  nn::GeluMlp<T, M> dec_q;
  nn::Linear<T, M> dec_mod;
  View2<T, M> rel;
  nn::GeluMlp<T, M> head;
};

inline int pixel_feature_width(const TokenizerConfig& c) { return nn::fourier_features_width(6, c.freqs); }
inline int patch_feature_width(const TokenizerConfig& c) { return nn::fourier_features_width(3, c.pos_freqs); }

namespace Impl {
inline void add_linear(optim::ParamLayout& l, const std::string& name, int out, int in, bool bias = true) {
  l.add(name + ".weight", {out, in}, optim::Decay::Yes);
  if (bias) l.add(name + ".bias", {out}, optim::Decay::No);
}
inline void add_block(optim::ParamLayout& l, const std::string& p, int d, int hidden) {
  for (const char* ln : {".ln1", ".ln2"}) {
    l.add(p + ln + ".weight", {d}, optim::Decay::No);
    l.add(p + ln + ".bias", {d}, optim::Decay::No);
  }
  for (const char* a : {".attn.q", ".attn.k", ".attn.v", ".attn.o"}) add_linear(l, p + a, d, d);
  add_linear(l, p + ".mlp.fc1", hidden, d);
  add_linear(l, p + ".mlp.fc2", d, hidden);
}
template <class T, class M>
nn::Linear<T, M> bind_linear(const optim::ParamArena<T, M>& a, const View1<T, M>& buf, const std::string& name,
                             bool bias = true) {
  return {a.view2(a.layout.slot(name + ".weight"), buf),
          bias ? a.view1(a.layout.slot(name + ".bias"), buf) : View1<T, M>()};
}
template <class T, class M>
nn::LayerNorm<T, M> bind_ln(const optim::ParamArena<T, M>& a, const View1<T, M>& buf, const std::string& name) {
  return {a.view1(a.layout.slot(name + ".weight"), buf), a.view1(a.layout.slot(name + ".bias"), buf)};
}
template <class T, class M>
nn::TransformerBlock<T, M> bind_block(const optim::ParamArena<T, M>& a, const View1<T, M>& buf,
                                      const std::string& p, int heads) {
  nn::TransformerBlock<T, M> b;
  b.ln1 = bind_ln(a, buf, p + ".ln1");
  b.ln2 = bind_ln(a, buf, p + ".ln2");
  b.attn = {bind_linear(a, buf, p + ".attn.q"), bind_linear(a, buf, p + ".attn.k"),
            bind_linear(a, buf, p + ".attn.v"), bind_linear(a, buf, p + ".attn.o"), heads};
  b.mlp = {bind_linear(a, buf, p + ".mlp.fc1"), bind_linear(a, buf, p + ".mlp.fc2")};
  return b;
}
}  // namespace Impl

/// The arena layout of a tokenizer with configuration `c` (finalized).
inline optim::ParamLayout tokenizer_layout(const TokenizerConfig& c) {
  c.validate();
  optim::ParamLayout l;
  const int E = c.pixel_width, D = c.width, n = c.queries, C = c.channels, lc = c.latent_channels;
  const int N = c.latent_tokens(), Fw = pixel_feature_width(c), Fp = patch_feature_width(c);
  const int H = c.mlp_ratio * D;
  l.add("enc.pix_x.weight", {E, C}, optim::Decay::Yes);
  Impl::add_linear(l, "enc.pix_f", E, Fw);
  Impl::add_linear(l, "enc.pix_g", E, Fw);
  Impl::add_linear(l, "enc.pix_kv", 2 * E, E);
  l.add("enc.pool_q", {n, E}, optim::Decay::No);
  Impl::add_linear(l, "enc.proj", D, E);
  Impl::add_linear(l, "enc.pos", D, Fp);
  l.add("enc.slot", {n, D}, optim::Decay::No);
  l.add("enc.latent", {N, D}, optim::Decay::No);
  for (int i = 0; i < c.enc_layers; ++i) Impl::add_block(l, "enc.blocks." + std::to_string(i), D, H);
  l.add("enc.ln.weight", {D}, optim::Decay::No);
  l.add("enc.ln.bias", {D}, optim::Decay::No);
  Impl::add_linear(l, "enc.bottleneck", lc, D);
  Impl::add_linear(l, "dec.in", D, lc);
  l.add("dec.latent_pos", {N, D}, optim::Decay::No);
  Impl::add_linear(l, "dec.pos", D, Fp);
  l.add("dec.slot", {n, D}, optim::Decay::No);
  if (c.level_count_embedding) l.add("dec.level_count", {c.levels(), D}, optim::Decay::No);
  for (int i = 0; i < c.dec_layers; ++i) Impl::add_block(l, "dec.blocks." + std::to_string(i), D, H);
  l.add("dec.ln.weight", {D}, optim::Decay::No);
  l.add("dec.ln.bias", {D}, optim::Decay::No);
  Impl::add_linear(l, "dec.kv", 2 * E, D);
  Impl::add_linear(l, "dec.q.fc1", E, Fw);
  Impl::add_linear(l, "dec.q.fc2", E, E);
  Impl::add_linear(l, "dec.mod", E, Fw);
  l.add("dec.rel", {27 * n, E}, optim::Decay::No);
  Impl::add_linear(l, "dec.head.fc1", c.head_hidden, E);
  Impl::add_linear(l, "dec.head.fc2", C, c.head_hidden);
  l.finalize();
  return l;
}

/// Views of one of the arena's buffers (params or grads) as tokenizer parameters.
template <class T, class M>
TokenizerParams<T, M> bind_tokenizer(const optim::ParamArena<T, M>& a, const TokenizerConfig& c,
                                     const View1<T, M>& buf) {
  TokenizerParams<T, M> p;
  p.pix_x = a.view2(a.layout.slot("enc.pix_x.weight"), buf);
  p.pix_f = Impl::bind_linear(a, buf, "enc.pix_f");
  p.pix_g = Impl::bind_linear(a, buf, "enc.pix_g");
  p.pix_kv = Impl::bind_linear(a, buf, "enc.pix_kv");
  p.pool_q = a.view2(a.layout.slot("enc.pool_q"), buf);
  p.enc_proj = Impl::bind_linear(a, buf, "enc.proj");
  p.enc_pos = Impl::bind_linear(a, buf, "enc.pos");
  p.enc_slot = a.view2(a.layout.slot("enc.slot"), buf);
  p.enc_latent = a.view2(a.layout.slot("enc.latent"), buf);
  for (int i = 0; i < c.enc_layers; ++i)
    p.enc_blocks.push_back(Impl::bind_block(a, buf, "enc.blocks." + std::to_string(i), c.heads));
  p.enc_ln = Impl::bind_ln(a, buf, "enc.ln");
  p.bottleneck = Impl::bind_linear(a, buf, "enc.bottleneck");
  p.dec_in = Impl::bind_linear(a, buf, "dec.in");
  p.dec_latent_pos = a.view2(a.layout.slot("dec.latent_pos"), buf);
  p.dec_pos = Impl::bind_linear(a, buf, "dec.pos");
  p.dec_slot = a.view2(a.layout.slot("dec.slot"), buf);
  if (c.level_count_embedding) p.dec_level_count = a.view2(a.layout.slot("dec.level_count"), buf);
  for (int i = 0; i < c.dec_layers; ++i)
    p.dec_blocks.push_back(Impl::bind_block(a, buf, "dec.blocks." + std::to_string(i), c.heads));
  p.dec_ln = Impl::bind_ln(a, buf, "dec.ln");
  p.dec_kv = Impl::bind_linear(a, buf, "dec.kv");
  p.dec_q = {Impl::bind_linear(a, buf, "dec.q.fc1"), Impl::bind_linear(a, buf, "dec.q.fc2")};
  p.dec_mod = Impl::bind_linear(a, buf, "dec.mod");
  p.rel = a.view2(a.layout.slot("dec.rel"), buf);
  p.head = {Impl::bind_linear(a, buf, "dec.head.fc1"), Impl::bind_linear(a, buf, "dec.head.fc2")};
  return p;
}

/// Initialisation schemes.
///   Small: norms 1/0, biases 0, embeddings N(0, 0.02); weights N(0, 1/sqrt(fan_in)) for the layers that
///          read raw features (pixel values, Fourier features, latents), N(0, 0.02) for every other weight
///          (GPT-2 / ViT). The shipped fmnist tokenizer was trained from it (docs/tokenizer.md).
///   Unit:  as Small, but unit gain N(0, 1/sqrt(fan_in)) also for the pixel-level chain outside the
///          residual streams (pixel tokens -> read-out -> patch token -> bottleneck; decoder token ->
///          keys/values -> query MLP -> output MLP) and for the attention q/k/v and MLP fc1 of the
///          transformer blocks (their o and fc2, which write into the residual stream, keep 0.02). At widths
///          of 64..128, N(0, 0.02) shrinks a signal ~5x per layer and makes the attention logits ~0, so
///          training sat on the mean image for hundreds of steps (glyphs never left it; docs/tokenizer.md).
enum class InitScheme { Small, Unit };

inline const char* init_scheme_name(InitScheme s) { return s == InitScheme::Small ? "small" : "unit"; }
inline InitScheme init_scheme_from_name(const std::string& n) {
  if (n == "small") return InitScheme::Small;
  if (n == "unit") return InitScheme::Unit;
  detail::fail("init_scheme_from_name", "unknown initialisation '", n, "' (expected small or unit)");
}

/// Initialises the parameters (deterministic in `seed`) with `scheme`; the output MLP's last layer is
/// N(0, 0.02) in both.
template <class ExecSpace, class T, class M>
void init_tokenizer(const ExecSpace& space, const optim::ParamArena<T, M>& a, std::uint64_t seed,
                    InitScheme scheme = InitScheme::Unit) {
  for (const auto& s : a.layout.slots()) {
    const std::string& nm = s.name;
    auto ends = [&](const char* suf) {
      const std::string x(suf);
      return nm.size() >= x.size() && nm.compare(nm.size() - x.size(), x.size(), x) == 0;
    };
    const bool is_norm = nm.find(".ln") != std::string::npos;
    if (is_norm && ends(".weight")) {
      optim::init_ones(space, a, s);
    } else if (ends(".bias")) {
      optim::init_zeros(space, a, s);
    } else {
      const bool raw = nm == "enc.pix_x.weight" || nm == "enc.pix_f.weight" || nm == "enc.pos.weight" ||
                       nm == "dec.pos.weight" || nm == "dec.in.weight" || nm == "dec.q.fc1.weight" ||
                       nm == "enc.pix_g.weight" || nm == "dec.mod.weight";
      const bool chain = nm == "enc.pix_kv.weight" || nm == "enc.proj.weight" || nm == "enc.bottleneck.weight" ||
                         nm == "dec.kv.weight" || nm == "dec.q.fc2.weight" || nm == "dec.head.fc1.weight" ||
                         ends(".attn.q.weight") || ends(".attn.k.weight") || ends(".attn.v.weight") ||
                         ends(".mlp.fc1.weight");
      const bool unit = raw || (scheme == InitScheme::Unit && chain);
      const double fan_in = double(s.shape.size() == 2 ? s.shape[1] : 1);
      optim::init_normal(space, a, s, seed, 0.0, unit ? 1.0 / std::sqrt(fan_in) : 0.02);
    }
  }
}

}  // namespace dcsldm::tok
