// dcsldm/dit/prefix_cache.hpp: inference over only the noisy tokens, with a cache of the finished levels.
//
// In progressive generation the tokens of finished levels (rows [0, split)) are clean: they use the t = 0
// condition, and under the level-causal mask they attend only to each other. Their activations are the same
// at every step of the next level, so they are computed once (dit_fill_prefix: one forward of the prefix
// alone) and each block's attention input of those rows — what the keys and values are made from — is
// kept. A step then runs the blocks on the Tq = S - split noisy rows only (dit_forward_tail): their queries
// attend to [cached prefix ; themselves] with the level-causal mask (queries: levels of rows [split, S);
// keys: all S rows). The result equals rows [split, S) of dit_forward with the same split (tested to
// rounding): per step it saves the prefix's queries, attention rows, output projection and MLP, and its
// key/value projections are the only prefix work left.
//
// The cache belongs to one batch: its labels (the class condition reaches the prefix too) and its prefix
// latent; a guided sampler fills it for the doubled (labelled ; null) batch.
#pragma once

#include <dcsldm/dit/dit.hpp>

#include <vector>

namespace dcsldm::dit {

template <class T, class M>
struct DitPrefixCache {
  int batch = 0, levels = 0, split = 0, S = 0, Tq = 0;
  std::vector<View3<T, M>> kv;  ///< per block (B, S, D): rows [0, split) the prefix's attention input
  nn::AttentionMask<M> mask;    ///< queries: levels of rows [split, S); keys: levels of all S rows
  Kokkos::View<int*, M> labels2;
  View1<T, M> t2;
  View2<T, M> temb, c1, c1s, cond, s, fada;
  std::vector<DitBlockCache<T, M>> blocks;  ///< (B, Tq, D) activations; attention caches (B, Tq, S)
  View3<T, M> xf, hf, af, vprefix;          ///< (B, Tq, D) x3; (B, split, c) the prefix forward's discarded v
  nn::LayerNormCache<T, M> lnf;
  nn::AttentionWorkspace<T, M> attn_ws;
  nn::MlpWorkspace<T, M> mlp_ws;
};

/// Allocates a cache for `batch` sequences of the first `levels` levels with the first `split` tokens
/// finished (1 <= split < tokens of `levels`). Allocates (host call, outside the sampling loop).
template <class T, class M>
DitPrefixCache<T, M> make_dit_prefix_cache(const DitConfig& c, const DitParams<T, M>& w, int batch, int levels,
                                           int split) {
  const char* op = "make_dit_prefix_cache";
  DCSLDM_REQUIRE(batch >= 1 && levels >= 1 && levels <= c.levels(), op, "batch = ", batch, ", levels = ", levels,
                 " (1..", c.levels(), ")");
  const int S = c.tokens_upto(levels);
  DCSLDM_REQUIRE(split >= 1 && split < S, op, "split = ", split, ", expected 1..", S - 1);
  DitPrefixCache<T, M> p;
  p.batch = batch;
  p.levels = levels;
  p.split = split;
  p.S = S;
  p.Tq = S - split;
  const std::size_t B = std::size_t(batch), B2 = 2 * B, Tq = std::size_t(p.Tq), Sk = std::size_t(S),
                    D = std::size_t(c.width), F = std::size_t(c.freq_dim), m = B * Tq;
  const std::vector<int> lev = c.token_levels(levels);
  p.mask = nn::make_level_causal_mask<M>(std::vector<int>(lev.begin() + split, lev.end()), lev);
  p.labels2 = Kokkos::View<int*, M>("dcsldm::dit_tail_labels2", B2);
  p.t2 = View1<T, M>("dcsldm::dit_tail_t2", B2);
  p.temb = View2<T, M>("dcsldm::dit_tail_temb", B2, F);
  p.c1 = View2<T, M>("dcsldm::dit_tail_c1", B2, D);
  p.c1s = View2<T, M>("dcsldm::dit_tail_c1s", B2, D);
  p.cond = View2<T, M>("dcsldm::dit_tail_cond", B2, D);
  p.s = View2<T, M>("dcsldm::dit_tail_s", B2, D);
  p.fada = View2<T, M>("dcsldm::dit_tail_fada", B2, 2 * D);
  for (int i = 0; i < c.layers; ++i) {
    p.kv.push_back(View3<T, M>("dcsldm::dit_prefix_kv", B, Sk, D));
    DitBlockCache<T, M> b;
    b.ada = View2<T, M>("dcsldm::dit_tail_ada", B2, 6 * D);
    b.x = View3<T, M>("dcsldm::dit_tail_x", B, Tq, D);
    b.h1 = View3<T, M>("dcsldm::dit_tail_h1", B, Tq, D);
    b.a1 = View3<T, M>("dcsldm::dit_tail_a1", B, Tq, D);
    b.o = View3<T, M>("dcsldm::dit_tail_o", B, Tq, D);
    b.x1 = View3<T, M>("dcsldm::dit_tail_x1", B, Tq, D);
    b.h2 = View3<T, M>("dcsldm::dit_tail_h2", B, Tq, D);
    b.a2 = View3<T, M>("dcsldm::dit_tail_a2", B, Tq, D);
    b.mo = View3<T, M>("dcsldm::dit_tail_mo", B, Tq, D);
    b.ln1 = {View1<T, M>("dcsldm::dit_tail_ln", m), View1<T, M>("dcsldm::dit_tail_ln", m)};
    b.ln2 = {View1<T, M>("dcsldm::dit_tail_ln", m), View1<T, M>("dcsldm::dit_tail_ln", m)};
    b.attn = nn::make_attention_cache(B, Tq, Sk, w.blocks[std::size_t(i)].attn);
    b.mlp = nn::make_gelu_mlp_cache(m, w.blocks[std::size_t(i)].mlp);
    p.blocks.push_back(b);
  }
  p.xf = View3<T, M>("dcsldm::dit_tail_xf", B, Tq, D);
  p.hf = View3<T, M>("dcsldm::dit_tail_hf", B, Tq, D);
  p.af = View3<T, M>("dcsldm::dit_tail_af", B, Tq, D);
  p.vprefix = View3<T, M>("dcsldm::dit_prefix_v", B, std::size_t(split), std::size_t(c.latent_channels));
  p.lnf = {View1<T, M>("dcsldm::dit_tail_lnf", m), View1<T, M>("dcsldm::dit_tail_lnf", m)};
  p.attn_ws = nn::make_attention_workspace(B, Tq, Sk, w.blocks.at(0).attn);
  p.attn_ws.keep_for_backward = false;  // sampling only
  p.mlp_ws = nn::make_gelu_mlp_workspace(m, w.blocks.at(0).mlp);
  return p;
}

/// Fills the cache from the finished rows: x0 (B, split, c), normalised clean latent of the levels below,
/// and the batch's labels. `prefix_plan` is the inference plan of (B, levels of the prefix) — the prefix is
/// exactly those levels' tokens. Runs one forward of the prefix (all clean) and keeps each block's
/// attention input rows.
template <class ExecSpace, class XV, class LV, class T, class M>
void dit_fill_prefix(const ExecSpace& space, const XV& x0, const LV& labels, const DitParams<T, M>& w,
                     const DitConfig& c, const DitPlan<T, M>& prefix_plan, const DitPrefixCache<T, M>& p) {
  const char* op = "dit_fill_prefix";
  DCSLDM_REQUIRE(prefix_plan.batch == p.batch && prefix_plan.S == p.split, op, "the prefix plan is (batch ",
                 prefix_plan.batch, ", ", prefix_plan.S, " tokens), the cache needs (", p.batch, ", ", p.split, ")");
  DCSLDM_REQUIRE(x0.extent(0) == std::size_t(p.batch) && x0.extent(1) == std::size_t(p.split), op, "x0 is (",
                 x0.extent(0), ", ", x0.extent(1), ", ...), expected (", p.batch, ", ", p.split, ", c)");
  // t does not reach clean tokens: any value works; the prefix plan's own t2 row is overwritten.
  const View1<T, M> t(p.t2.data(), std::size_t(p.batch));
  dit_forward(space, x0, t, labels, p.split, w, c, p.vprefix, prefix_plan);
  for (int i = 0; i < c.layers; ++i)
    tok::copy_row_block(space, prefix_plan.blocks[std::size_t(i)].a1, 0, p.kv[std::size_t(i)], 0, p.split);
}

/// Forward over the noisy rows only: xt (B, Tq, c) = rows [split, S) of the normalised x_t, t (B), labels
/// (B) as given to dit_fill_prefix -> v (B, Tq, c) (=), equal to rows [split, S) of dit_forward's v.
template <class ExecSpace, class XV, class TV, class LV, class T, class M, class VV>
void dit_forward_tail(const ExecSpace& space, const XV& xt, const TV& t, const LV& labels, const DitParams<T, M>& w,
                      const DitConfig& c, const VV& v, const DitPrefixCache<T, M>& p) {
  const char* op = "dit_forward_tail";
  const std::size_t B = std::size_t(p.batch), Tq = std::size_t(p.Tq), lc = std::size_t(c.latent_channels);
  const int D = c.width;
  DCSLDM_REQUIRE(xt.extent(0) == B && xt.extent(1) == Tq && xt.extent(2) == lc, op, "x_t is (", xt.extent(0), ", ",
                 xt.extent(1), ", ", xt.extent(2), "), the cache expects (", B, ", ", Tq, ", ", lc, ")");
  DCSLDM_REQUIRE(v.extent(0) == B && v.extent(1) == Tq && v.extent(2) == lc, op, "v is (", v.extent(0), ", ",
                 v.extent(1), ", ", v.extent(2), "), the cache expects (", B, ", ", Tq, ", ", lc, ")");
  DCSLDM_REQUIRE(t.extent(0) == B, op, "t has ", t.extent(0), " entries, expected B = ", B);
  // Conditions (dit_forward's; only the noisy row 2b + 1 is read below).
  Impl::dit_conditions(space, t, labels, w, c, p);
  // Tokens of rows [split, S): in(x_t) + pos[split:S].
  const View2<T, M> xt2(const_cast<T*>(xt.data()), B * Tq, lc);
  const View3<T, M>& h0 = p.blocks.empty() ? p.xf : p.blocks[0].x;
  nn::linear_forward(space, xt2, w.in, Impl::rows(h0));
  const View2<T, M> pos_tail(w.pos.data() + std::size_t(p.split) * std::size_t(D), Tq, std::size_t(D));
  tok::add_table_rows(space, h0, 0, int(Tq), pos_tail, 1, int(Tq));
  // dit_forward's blocks (split 0: every row here is noisy); each block's queries attend to the cached prefix
  // rows and to themselves.
  Impl::dit_blocks_forward(space, w, c, 0, p, [&](int i, const DitBlockCache<T, M>& b) {
    const View3<T, M>& kv = p.kv[std::size_t(i)];
    tok::copy_row_block(space, b.a1, 0, kv, p.split, int(Tq));  // keys/values: [cached prefix ; these rows]
    nn::attention_forward(space, b.a1, kv, w.blocks[std::size_t(i)].attn, p.mask, b.o, b.attn, p.attn_ws);
  });
  nn::linear_forward(space, Impl::rows(p.af), w.final_out, View2<T, M>(v.data(), B * Tq, lc));
}

}  // namespace dcsldm::dit
