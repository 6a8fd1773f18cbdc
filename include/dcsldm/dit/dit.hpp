// dcsldm/dit/dit.hpp: the DCS-DiT passes (forward, backward) over a caller-built plan.
//
// Data flow (DESIGN.md §3; names in dit/dit_params.hpp). Input: the latent rows of levels 1..m, x_t
// (B, Nm, c), normalised per level, a time t (B) in [0, 1] (rectified flow: x_t = (1 - t) x_0 + t eps),
// labels (B) (num_classes = the null label), and `split`: the first `split` tokens are held clean (t = 0;
// progressive generation and its training), the rest are at time t.
//   conditions, two per sample (row 2b: clean, t = 0; row 2b + 1: time t_b):
//     cond = t.fc2(SiLU(t.fc1(sinusoid(1000 t)))) + label(y);  s = SiLU(cond)   (2B, D)
//   tokens: h = in(x_t) + pos[:Nm]
//   block i (AdaLN-Zero; ada_i = blocks.i.ada(s) (2B, 6D), each token reads its condition's row):
//     h = h + gate1 * Attn(LN(h) * (1 + scale1) + shift1)      (level-causal mask: level_k <= level_q)
//     h = h + gate2 * MLP(LN(h) * (1 + scale2) + shift2)
//   out: v = final.out(LN(h) * (1 + scale) + shift)   (B, Nm, c), the predicted velocity eps - x_0.
// Because of the mask and the per-token condition, the clean tokens' activations do not depend on the
// noisy ones nor on t: they can be computed once per level in progressive sampling.
//
// Plans: DitPlan holds every activation and scratch View of one (batch, levels) shape, carved from a
// Scratch; the mask and the condition index tables are owned. Building a plan allocates; running it does not.
#pragma once

#include <dcsldm/core/error.hpp>
#include <dcsldm/core/scratch.hpp>
#include <dcsldm/core/types.hpp>
#include <dcsldm/dit/config.hpp>
#include <dcsldm/dit/dit_params.hpp>
#include <dcsldm/dit/group_modulation.hpp>
#include <dcsldm/nn/activations.hpp>
#include <dcsldm/nn/attention.hpp>
#include <dcsldm/nn/attention_mask.hpp>
#include <dcsldm/nn/label_embedding.hpp>
#include <dcsldm/nn/layer_norm.hpp>
#include <dcsldm/nn/linear.hpp>
#include <dcsldm/nn/mlp.hpp>
#include <dcsldm/nn/timestep_embedding.hpp>
#include <dcsldm/nn/transformer_block.hpp>
#include <dcsldm/tok/sequence_ops.hpp>

#include <vector>

namespace dcsldm::dit {

/// What one block's forward saves.
template <class T, class M>
struct DitBlockCache {
  View2<T, M> ada;                       // (2B, 6D)
  View3<T, M> x, h1, a1, o, x1, h2, a2;  // (B, S, D)
  View3<T, M> mo;                        // (B, S, D) MLP output
  nn::LayerNormCache<T, M> ln1, ln2;
  nn::AttentionCache<T, M> attn;
  nn::MlpCache<T, M> mlp;
};

template <class T, class M>
struct DitPlan {
  int batch = 0, levels = 0, S = 0;
  bool train = false;
  nn::AttentionMask<M> mask;
  Kokkos::View<int*, M> labels2;  // owned: (2B) labels of the condition rows
  // scratch
  View1<T, M> t2;                   // (2B) 1000 * time of each condition row
  View2<T, M> temb, c1, c1s, cond, s;  // (2B, F), (2B, D) x4
  std::vector<DitBlockCache<T, M>> blocks;
  View2<T, M> fada;                 // (2B, 2D)
  View3<T, M> xf, hf, af;           // (B, S, D)
  nn::LayerNormCache<T, M> lnf;
  nn::AttentionWorkspace<T, M> attn_ws;
  nn::MlpWorkspace<T, M> mlp_ws;
  // backward only
  View3<T, M> d0, d1, d2, d3;  // (B, S, D)
  View2<T, M> dada, dfada, ds, dsum, dcond, dc1;  // (2B, 6D), (2B, 2D), (2B, D) x4
};

namespace Impl {

template <class T, class M, class Scr>
void carve_dit(Scr& s, DitPlan<T, M>& p, const DitConfig& c) {
  const std::size_t B = std::size_t(p.batch), B2 = 2 * B, S = std::size_t(p.S), D = std::size_t(c.width);
  const std::size_t F = std::size_t(c.freq_dim), H = std::size_t(c.mlp_ratio) * D, m = B * S;
  const std::size_t h = std::size_t(c.heads), hd = D / h, bh = B * h;
  p.t2 = s.take1(B2);
  p.temb = s.take2(B2, F);
  p.c1 = s.take2(B2, D);
  p.c1s = s.take2(B2, D);
  p.cond = s.take2(B2, D);
  p.s = s.take2(B2, D);
  p.blocks.clear();
  for (int i = 0; i < c.layers; ++i) {
    DitBlockCache<T, M> b;
    b.ada = s.take2(B2, 6 * D);
    b.x = s.take3(B, S, D);
    b.h1 = s.take3(B, S, D);
    b.a1 = s.take3(B, S, D);
    b.o = s.take3(B, S, D);
    b.x1 = s.take3(B, S, D);
    b.h2 = s.take3(B, S, D);
    b.a2 = s.take3(B, S, D);
    b.mo = s.take3(B, S, D);
    b.ln1 = {s.take1(m), s.take1(m)};
    b.ln2 = {s.take1(m), s.take1(m)};
    b.attn = {s.take3(bh, S, hd), s.take3(bh, S, hd), s.take3(bh, S, hd), s.take2(m, D), s.take2(bh, S)};
    b.mlp = {s.take2(m, H), s.take2(m, H)};
    p.blocks.push_back(b);
  }
  p.fada = s.take2(B2, 2 * D);
  p.xf = s.take3(B, S, D);
  p.hf = s.take3(B, S, D);
  p.af = s.take3(B, S, D);
  p.lnf = {s.take1(m), s.take1(m)};
  p.attn_ws.qp = s.take2(m, D);
  p.attn_ws.kp = s.take2(m, D);
  p.attn_ws.vp = s.take2(m, D);
  p.attn_ws.oh = s.take3(bh, S, hd);
  p.attn_ws.s = s.take3(bh, S, S);
  p.attn_ws.ds = s.take3(bh, S, S);
  p.attn_ws.dq = s.take3(bh, S, hd);
  p.attn_ws.dk = s.take3(bh, S, hd);
  p.attn_ws.dv = s.take3(bh, S, hd);
  p.attn_ws.delta = s.take2(bh, S);
  p.mlp_ws = {s.take2(m, H), s.take2(m, H)};
  if (p.train) {
    p.d0 = s.take3(B, S, D);
    p.d1 = s.take3(B, S, D);
    p.d2 = s.take3(B, S, D);
    p.d3 = s.take3(B, S, D);
    p.dada = s.take2(B2, 6 * D);
    p.dfada = s.take2(B2, 2 * D);
    p.ds = s.take2(B2, D);
    p.dsum = s.take2(B2, D);
    p.dcond = s.take2(B2, D);
    p.dc1 = s.take2(B2, D);
  }
}

template <class TV, class LV, class T2V, class L2V>
struct ConditionRows {
  TV t;
  LV labels;
  T2V t2;
  L2V labels2;
  int null_label;
  KOKKOS_INLINE_FUNCTION void operator()(const int b) const {
    t2(2 * b) = 0;
    t2(2 * b + 1) = value_t<T2V>(1000) * value_t<T2V>(t(b));
    const int y = null_label > 0 ? labels(b) : 0;
    labels2(2 * b) = y;
    labels2(2 * b + 1) = y;
  }
};

/// The conditions of a forward, two rows per sample (2b: t = 0, 2b + 1: t_b), into the buffers of `p`
/// (a DitPlan or a DitPrefixCache: t2, labels2, temb, c1, c1s, cond, s):
/// s = SiLU(t.fc2(SiLU(t.fc1(sinusoid(1000 t)))) + label(y)).
template <class ExecSpace, class TV, class LV, class T, class M, class P>
void dit_conditions(const ExecSpace& space, const TV& t, const LV& labels, const DitParams<T, M>& w,
                    const DitConfig& c, const P& p) {
  Kokkos::parallel_for("dcsldm::dit_condition_rows", Kokkos::RangePolicy<ExecSpace>(space, 0, t.extent(0)),
                       ConditionRows<TV, LV, View1<T, M>, Kokkos::View<int*, M>>{t, labels, p.t2, p.labels2,
                                                                                c.num_classes});
  nn::timestep_embedding_forward(space, p.t2, p.temb);
  nn::linear_forward(space, p.temb, w.t_fc1, p.c1);
  nn::silu_forward(space, p.c1, p.c1s);
  nn::linear_forward(space, p.c1s, w.t_fc2, p.cond);
  if (c.num_classes > 0) {
    nn::label_embedding_forward(space, p.labels2, w.label, p.s);
    nn::Impl::add_into(space, p.cond, p.s, p.cond);
  }
  nn::silu_forward(space, p.cond, p.s);
}

template <class V>
auto rows(const V& v) {  // (B, S, D) -> (B*S, D)
  return View2<value_t<V>, typename V::memory_space>(v.data(), v.extent(0) * v.extent(1), v.extent(2));
}

/// The blocks and the final modulation of a forward over `p` (a DitPlan or a DitPrefixCache) whose tokens are
/// in p.blocks[0].x (p.xf without blocks) and conditions in p.s, up to p.af. Between two branches one fused
/// pass (group_residual_norm_modulate_forward: gated residual, the next LayerNorm and its modulation; the
/// first without a residual); attend(i, b) runs block i's attention from b.a1 into b.o.
template <class ExecSpace, class T, class M, class P, class Attend>
void dit_blocks_forward(const ExecSpace& space, const DitParams<T, M>& w, const DitConfig& c, int split, const P& p,
                        const Attend& attend) {
  const int D = c.width, L = int(p.blocks.size());
  const View3<T, M> none;
  // The branch input after block i - 1: block i's AdaLN rows computed, f(x, n, ln, ada, y) on its buffers (the
  // final layer's after the last block).
  auto into_branch = [&](int i, const auto& f) {
    if (i < L) {
      const auto& nb = p.blocks[std::size_t(i)];
      nn::linear_forward(space, p.s, w.blocks[std::size_t(i)].ada, nb.ada);
      f(nb.x, nb.h1, nb.ln1, nb.ada, nb.a1);
    } else {
      nn::linear_forward(space, p.s, w.final_ada, p.fada);
      f(p.xf, p.hf, p.lnf, p.fada, p.af);
    }
  };
  into_branch(0, [&](const auto& x, const auto& n, const auto& ln, const auto& ada, const auto& y) {
    group_residual_norm_modulate_forward(space, x, none, ada, 0, split, x, n, ln, 1e-6, ada, 0, D, y);
  });
  for (int i = 0; i < L; ++i) {
    const auto& b = p.blocks[std::size_t(i)];
    attend(i, b);
    group_residual_norm_modulate_forward(space, b.x, b.o, b.ada, 2 * D, split, b.x1, b.h2, b.ln2, 1e-6, b.ada, 3 * D,
                                         4 * D, b.a2);
    nn::gelu_mlp_forward(space, rows(b.a2), w.blocks[std::size_t(i)].mlp, nn::GeluKind::Tanh, rows(b.mo), b.mlp);
    into_branch(i + 1, [&](const auto& x, const auto& n, const auto& ln, const auto& ada, const auto& y) {
      group_residual_norm_modulate_forward(space, b.x1, b.mo, b.ada, 5 * D, split, x, n, ln, 1e-6, ada, 0, D, y);
    });
  }
}

}  // namespace Impl

/// Builds a plan for batch B and the first `levels` levels.
template <class T, class M>
DitPlan<T, M> make_dit_plan(const DitConfig& c, int batch, int levels, bool train, Scratch<T, M>& scratch) {
  const char* op = "make_dit_plan";
  DCSLDM_REQUIRE(batch >= 1, op, "batch = ", batch, " must be >= 1");
  DCSLDM_REQUIRE(levels >= 1 && levels <= c.levels(), op, "levels = ", levels, ", expected 1..", c.levels());
  DitPlan<T, M> p;
  p.batch = batch;
  p.levels = levels;
  p.S = c.tokens_upto(levels);
  p.train = train;
  p.mask = nn::make_level_causal_mask<M>(c.token_levels(levels));
  p.labels2 = Kokkos::View<int*, M>("dcsldm::dit_labels2", std::size_t(2 * batch));
  scratch.carve_plan([&] { Impl::carve_dit(scratch, p, c); });
  p.attn_ws.keep_for_backward = train;  // sampling: attention reads the projections in place
  return p;
}

/// Forward: v (B, S, c) (=) from x_t (B, S, c) (S = tokens of the plan's levels), t (B), labels (B) (ignored
/// when num_classes = 0), the first `split` tokens of each sequence clean (t = 0).
template <class ExecSpace, class XV, class TV, class LV, class T, class M, class VV>
void dit_forward(const ExecSpace& space, const XV& xt, const TV& t, const LV& labels, int split,
                 const DitParams<T, M>& w, const DitConfig& c, const VV& v, const DitPlan<T, M>& p) {
  const char* op = "dit::forward";
  const std::size_t B = std::size_t(p.batch), S = std::size_t(p.S), lc = std::size_t(c.latent_channels);
  DCSLDM_REQUIRE(xt.extent(0) == B && xt.extent(1) == S && xt.extent(2) == lc, op, "x_t is (", xt.extent(0), ", ",
                 xt.extent(1), ", ", xt.extent(2), "), the plan expects (", B, ", ", S, ", ", lc, ")");
  DCSLDM_REQUIRE(v.extent(0) == B && v.extent(1) == S && v.extent(2) == lc, op, "v is (", v.extent(0), ", ",
                 v.extent(1), ", ", v.extent(2), "), the plan expects (", B, ", ", S, ", ", lc, ")");
  DCSLDM_REQUIRE(t.extent(0) == B, op, "t has ", t.extent(0), " entries, expected B = ", B);
  DCSLDM_REQUIRE(c.num_classes == 0 || labels.extent(0) == B, op, "labels has ", labels.extent(0),
                 " entries, expected B = ", B);
  DCSLDM_REQUIRE(split >= 0 && std::size_t(split) <= S, op, "split = ", split, ", expected 0..", S);
  Impl::dit_conditions(space, t, labels, w, c, p);
  // Tokens.
  const View2<T, M> xt2(const_cast<T*>(xt.data()), B * S, lc);
  const View3<T, M>& h0 = p.blocks.empty() ? p.xf : p.blocks[0].x;
  nn::linear_forward(space, xt2, w.in, Impl::rows(h0));
  tok::add_table_rows(space, h0, 0, int(S), w.pos, 1, int(S));
  Impl::dit_blocks_forward(space, w, c, split, p, [&](int i, const DitBlockCache<T, M>& b) {
    nn::self_attention_forward(space, b.a1, w.blocks[std::size_t(i)].attn, p.mask, b.o, b.attn, p.attn_ws);
  });
  nn::linear_forward(space, Impl::rows(p.af), w.final_out, View2<T, M>(v.data(), B * S, lc));
}

/// Backward from dv (B, S, c), with the forward's x_t and split: parameter gradients accumulate into g.
/// The inputs get no gradient.
template <class ExecSpace, class DVV, class XV, class T, class M>
void dit_backward(const ExecSpace& space, const DVV& dv, const XV& xt, int split, const DitParams<T, M>& w,
                  const DitParams<T, M>& g, const DitConfig& c, const DitPlan<T, M>& p) {
  DCSLDM_REQUIRE(p.train, "dit::backward", "the plan was built without train = true");
  const std::size_t B = std::size_t(p.batch), S = std::size_t(p.S), lc = std::size_t(c.latent_channels);
  const int D = c.width;
  const nn::LayerNorm<T, M> ln{};
  const View2<T, M> dv2(const_cast<T*>(dv.data()), B * S, lc);
  // Final layer: dsum (d SiLU(cond)) accumulates over the final layer and every block.
  nn::linear_backward(space, dv2, Impl::rows(p.af), w.final_out, g.final_out, Impl::rows(p.d0));
  group_modulate_backward(space, p.d0, p.hf, p.fada, 0, D, split, p.d0, p.dfada);
  nn::layer_norm_backward(space, Impl::rows(p.d0), Impl::rows(p.xf), ln, ln, p.lnf, Impl::rows(p.d1));
  nn::linear_backward(space, p.dfada, p.s, w.final_ada, g.final_ada, p.dsum);
  // p.d1 = dh (the residual stream's gradient)
  for (int i = int(p.blocks.size()) - 1; i >= 0; --i) {
    const auto& b = p.blocks[std::size_t(i)];
    const auto& bw = w.blocks[std::size_t(i)];
    const auto& bg = g.blocks[std::size_t(i)];
    // MLP branch: x2 = x1 + gate2 * mo
    group_gated_residual_backward(space, p.d1, b.mo, b.ada, 5 * D, split, p.d2, p.dada);
    nn::gelu_mlp_backward(space, Impl::rows(p.d2), Impl::rows(b.a2), bw.mlp, bg.mlp, nn::GeluKind::Tanh, b.mlp,
                          p.mlp_ws, Impl::rows(p.d3));
    group_modulate_backward(space, p.d3, b.h2, b.ada, 3 * D, 4 * D, split, p.d3, p.dada);
    nn::layer_norm_backward(space, Impl::rows(p.d3), Impl::rows(b.x1), ln, ln, b.ln2, Impl::rows(p.d2));
    nn::Impl::add_into(space, p.d1, p.d2, p.d1);  // d1 = dx1
    // Attention branch: x1 = x + gate1 * o
    group_gated_residual_backward(space, p.d1, b.o, b.ada, 2 * D, split, p.d2, p.dada);
    nn::self_attention_backward(space, p.d2, b.a1, bw.attn, bg.attn, p.mask, b.attn, p.attn_ws, p.d3);
    group_modulate_backward(space, p.d3, b.h1, b.ada, 0, D, split, p.d3, p.dada);
    nn::layer_norm_backward(space, Impl::rows(p.d3), Impl::rows(b.x), ln, ln, b.ln1, Impl::rows(p.d2));
    nn::Impl::add_into(space, p.d1, p.d2, p.d1);  // d1 = dx
    nn::linear_backward(space, p.dada, p.s, bw.ada, bg.ada, p.ds);
    nn::Impl::add_into(space, p.dsum, p.ds, p.dsum);
  }
  // Tokens: h0 = in(x_t) + pos.
  tok::sum_table_rows(space, p.d1, 0, int(S), 1, int(S), g.pos);
  nn::linear_backward(space, Impl::rows(p.d1), View2<T, M>(const_cast<T*>(xt.data()), B * S, lc), w.in, g.in,
                      View2<T, M>());
  // Conditions.
  nn::silu_backward(space, p.dsum, p.cond, p.dcond);
  if (c.num_classes > 0) nn::label_embedding_backward(space, p.dcond, p.labels2, g.label);
  nn::linear_backward(space, p.dcond, p.c1s, w.t_fc2, g.t_fc2, p.dc1);
  nn::silu_backward(space, p.dc1, p.c1, p.dc1);
  nn::linear_backward(space, p.dc1, p.temb, w.t_fc1, g.t_fc1, View2<T, M>());
}

}  // namespace dcsldm::dit
