// dcsldm/dit/dit_params.hpp: the parameters of a DCS-DiT: names and shapes in a flat arena
// (optim::ParamLayout), the struct of Views the passes read (DitParams), and initialisation.
//
// Tensor names (c = latent_channels, D = width, N = latent tokens, F = freq_dim, H = mlp_ratio * D,
// K = num_classes):
//   in.{weight,bias} (D, c)            latent token -> width D
//   pos (N, D)                         learned embedding of each (level, index) token position
//   t.fc1 (D, F), t.fc2 (D, D)         timestep MLP: sinusoid(1000 t) -> Linear -> SiLU -> Linear
//   label (K + 1, D)                   class embedding, last row the null label (absent when K = 0)
//   blocks.<i>.ada (6D, D)             AdaLN-Zero: SiLU(cond) -> shift1 scale1 gate1 shift2 scale2 gate2
//   blocks.<i>.attn.{q,k,v,o} (D, D), blocks.<i>.mlp.fc1 (H, D), blocks.<i>.mlp.fc2 (D, H)
//   final.ada (2D, D)                  SiLU(cond) -> shift scale of the final LayerNorm
//   final.out (c, D)                   -> the velocity of each latent token
// LayerNorms have no parameters (elementwise_affine = False, as in DiT).
#pragma once

#include <dcsldm/dit/config.hpp>
#include <dcsldm/nn/attention.hpp>
#include <dcsldm/nn/label_embedding.hpp>
#include <dcsldm/nn/linear.hpp>
#include <dcsldm/nn/mlp.hpp>
#include <dcsldm/optim/param_arena.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace dcsldm::dit {

/// One AdaLN-Zero block.
template <class T, class M>
struct DitBlock {
  nn::Linear<T, M> ada;
  nn::Attention<T, M> attn;
  nn::GeluMlp<T, M> mlp;
};

template <class T, class M>
struct DitParams {
  nn::Linear<T, M> in;
  View2<T, M> pos;
  nn::Linear<T, M> t_fc1, t_fc2;
  nn::LabelEmbedding<T, M> label;  // empty table when num_classes = 0
  std::vector<DitBlock<T, M>> blocks;
  nn::Linear<T, M> final_ada, final_out;
};

namespace Impl {
inline void add_linear(optim::ParamLayout& l, const std::string& name, int out, int in) {
  l.add(name + ".weight", {out, in}, optim::Decay::Yes);
  l.add(name + ".bias", {out}, optim::Decay::No);
}
template <class T, class M>
nn::Linear<T, M> bind_linear(const optim::ParamArena<T, M>& a, const View1<T, M>& buf, const std::string& name) {
  return {a.view2(a.layout.slot(name + ".weight"), buf), a.view1(a.layout.slot(name + ".bias"), buf)};
}
}  // namespace Impl

/// The arena layout of a DiT with configuration `c` (finalized).
inline optim::ParamLayout dit_layout(const DitConfig& c) {
  c.validate();
  optim::ParamLayout l;
  const int D = c.width, H = c.mlp_ratio * c.width;
  Impl::add_linear(l, "in", D, c.latent_channels);
  l.add("pos", {c.latent_tokens(), D}, optim::Decay::No);
  Impl::add_linear(l, "t.fc1", D, c.freq_dim);
  Impl::add_linear(l, "t.fc2", D, D);
  if (c.num_classes > 0) l.add("label", {c.num_classes + 1, D}, optim::Decay::No);
  for (int i = 0; i < c.layers; ++i) {
    const std::string p = "blocks." + std::to_string(i);
    Impl::add_linear(l, p + ".ada", 6 * D, D);
    for (const char* a : {".attn.q", ".attn.k", ".attn.v", ".attn.o"}) Impl::add_linear(l, p + a, D, D);
    Impl::add_linear(l, p + ".mlp.fc1", H, D);
    Impl::add_linear(l, p + ".mlp.fc2", D, H);
  }
  Impl::add_linear(l, "final.ada", 2 * D, D);
  Impl::add_linear(l, "final.out", c.latent_channels, D);
  l.finalize();
  return l;
}

/// Views of one of the arena's buffers (params or grads) as DiT parameters.
template <class T, class M>
DitParams<T, M> bind_dit(const optim::ParamArena<T, M>& a, const DitConfig& c, const View1<T, M>& buf) {
  DitParams<T, M> p;
  p.in = Impl::bind_linear(a, buf, "in");
  p.pos = a.view2(a.layout.slot("pos"), buf);
  p.t_fc1 = Impl::bind_linear(a, buf, "t.fc1");
  p.t_fc2 = Impl::bind_linear(a, buf, "t.fc2");
  if (c.num_classes > 0) p.label.table = a.view2(a.layout.slot("label"), buf);
  for (int i = 0; i < c.layers; ++i) {
    const std::string n = "blocks." + std::to_string(i);
    DitBlock<T, M> b;
    b.ada = Impl::bind_linear(a, buf, n + ".ada");
    b.attn = {Impl::bind_linear(a, buf, n + ".attn.q"), Impl::bind_linear(a, buf, n + ".attn.k"),
              Impl::bind_linear(a, buf, n + ".attn.v"), Impl::bind_linear(a, buf, n + ".attn.o"), c.heads};
    b.mlp = {Impl::bind_linear(a, buf, n + ".mlp.fc1"), Impl::bind_linear(a, buf, n + ".mlp.fc2")};
    p.blocks.push_back(b);
  }
  p.final_ada = Impl::bind_linear(a, buf, "final.ada");
  p.final_out = Impl::bind_linear(a, buf, "final.out");
  return p;
}

/// DiT's initialisation (deterministic in `seed`): biases 0; AdaLN and output layers 0 (AdaLN-Zero: every
/// block starts as the identity and the output as 0); timestep MLP and embeddings N(0, 0.02); other
/// weights Xavier-uniform-like N(0, sqrt(2 / (fan_in + fan_out))); the latent input N(0, 1/sqrt(c)).
template <class ExecSpace, class T, class M>
void init_dit(const ExecSpace& space, const optim::ParamArena<T, M>& a, std::uint64_t seed) {
  for (const auto& s : a.layout.slots()) {
    const std::string& nm = s.name;
    auto ends = [&](const char* suf) {
      const std::string x(suf);
      return nm.size() >= x.size() && nm.compare(nm.size() - x.size(), x.size(), x) == 0;
    };
    const bool zero = ends(".bias") || nm.find(".ada.") != std::string::npos || nm.rfind("final.out", 0) == 0;
    if (zero) {
      optim::init_zeros(space, a, s);
    } else if (nm == "pos" || nm == "label" || nm.rfind("t.fc", 0) == 0) {
      optim::init_normal(space, a, s, seed, 0.0, 0.02);
    } else if (nm == "in.weight") {
      optim::init_normal(space, a, s, seed, 0.0, 1.0 / std::sqrt(double(s.shape[1])));
    } else {
      optim::init_normal(space, a, s, seed, 0.0, std::sqrt(2.0 / double(s.shape[0] + s.shape[1])));
    }
  }
}

}  // namespace dcsldm::dit
