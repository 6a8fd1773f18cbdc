// dcsldm/tok/tokenizer.hpp: the DCS-Tok tokenizer's passes (encode, decode, and their backward) over
// caller-built plans, and the Tokenizer model that owns parameters, plans and scratch.
//
// Data flow (DESIGN.md §2; names of the parameters in tok/tokenizer_params.hpp):
//   encode: pixels (B, T, H, W, C) and Fourier features ff of (in-patch position, cell size)
//           -> pixel tokens gelu((x Wx^T) * (1 + g(ff)) + f(ff)) (the value scaled by a function of its
//              position: a uniform read-out of such tokens is a position-weighted sum of the pixels, as in a
//              linear patch embedding) -> per-patch attention read-out by n learned queries (patch_pool_attention)
//           -> patch tokens (+ patch-centre position, + slot) ; learned latent tokens in L levels
//           -> encoder blocks with the level-causal mask (patch tokens see patch tokens; a latent token of
//              level l sees patch tokens and latent tokens of levels <= l)
//           -> LayerNorm -> bottleneck Linear(D -> c) of the latent rows -> latent (B, N, c).
//   decode: latent rows of levels 1..m -> Linear(c -> D) + (level, index) embedding ; one query token per
//           (output patch, slot) from the output patch-centre position (+ a learned embedding of m, with
//           level_count_embedding) -> decoder blocks (full attention)
//           -> LayerNorm -> keys/values of the output patch tokens ; one query per output pixel (MLP of its
//           coordinate features) attends to the tokens of its patch and the 26 neighbouring patches
//           (neighbour_attention) -> output * (1 + s(ff)) + query -> per-pixel MLP -> C values. The
//           product lets a pixel read its own position's part of a patch's value (an additive query would
//           leave the MLP to learn a bilinear map; it learned much more slowly, docs/tokenizer.md).
//   An inference decode with an edge margin (TokenizerConfig::edge_margin_out) reads a pixel closer to a patch
//   edge than the margin as the blend of its own and the neighbouring patch's read-outs at the margin
//   (depatchify_blended): no pixel is read out where training never put one.
// The number of patches is fixed by k (not by the resolution), so the transformer cost is the same at
// every resolution and only the pixel-level parts (Linear layers over pixels, the two pixel attentions,
// the output MLP) grow, linearly, with the number of pixels.
//
// Plans: EncodePlan / DecodePlan hold every activation and scratch View of one shape (batch, grids, levels),
// carved from a Scratch (core/scratch.hpp); constant per-shape tables (patch tables, coordinate features,
// masks) are owned by the plan. Building a plan allocates; running it does not.
#pragma once

#include <dcsldm/core/error.hpp>
#include <dcsldm/core/rng.hpp>
#include <dcsldm/core/scratch.hpp>
#include <dcsldm/core/types.hpp>
#include <dcsldm/linalg/gemm.hpp>
#include <dcsldm/nn/activations.hpp>
#include <dcsldm/nn/attention_mask.hpp>
#include <dcsldm/nn/fourier_features.hpp>
#include <dcsldm/nn/layer_norm.hpp>
#include <dcsldm/nn/linear.hpp>
#include <dcsldm/nn/mlp.hpp>
#include <dcsldm/nn/transformer_block.hpp>
#include <dcsldm/tok/config.hpp>
#include <dcsldm/tok/neighbour_attention.hpp>
#include <dcsldm/tok/patch_grid.hpp>
#include <dcsldm/tok/patch_pool_attention.hpp>
#include <dcsldm/tok/sequence_ops.hpp>
#include <dcsldm/tok/tokenizer_params.hpp>

#include <algorithm>
#include <string>
#include <type_traits>
#include <vector>

namespace dcsldm::tok {

/// A 5-D sample tensor (B, T, H, W, C), LayoutRight: the tokenizer's input and output.
template <class T, class MemSpace>
using View5 = Kokkos::View<T*****, Kokkos::LayoutRight, MemSpace>;

// ------------------------------------------------------------------------------------------------ plans

/// Device tables of an edge-blended decode (TokenizerConfig::edge_margin_out; tok/patch_grid.hpp
/// edge_blend_axis): per output row and column its two read-out entries (patch, in-patch position, weight),
/// the rows and columns that take a second entry, and room for one pass's entries (patch, output pixel).
template <class T, class M>
struct EdgeBlendTables {
  using A = accum_t<T>;
  Kokkos::View<int**, Kokkos::LayoutRight, M> y_patch, x_patch;  // (h, 2), (w, 2)
  Kokkos::View<A**, Kokkos::LayoutRight, M> y_frac, x_frac, y_w, x_w;
  // Rows / columns with a second entry, grouped by that entry's patch (ascending within a patch); the group of
  // patch j is [band_*_first(j), band_*_first(j + 1)): the axis starts of a neighbour pass's grid of entries.
  Kokkos::View<int*, M> band_y, band_x, band_y_first, band_x_first;
  int ny = 0, nx = 0;  // their counts
  Kokkos::View<int*, M> entry_patch, entry_pixel;  // (tile) one pass's entries
};

/// Everything one encode (and its backward) of a (B, grid) shape needs.
template <class T, class M>
struct EncodePlan {
  int batch = 0, P = 0, Pn = 0, N = 0, S = 0, npix = 0;
  bool train = false;
  PatchGrid grid;
  PatchTables<M> tab;
  View2<T, M> ff, ffpos;       // owned: (npix, Fw), (P, Fp)
  nn::AttentionMask<M> mask;   // owned: level-causal over [patch tokens ; latent tokens]
  PatchPoolCache<T, M> pool;   // owned
  PatchPoolWorkspace<T, M> pool_ws;
  // scratch
  View2<T, M> pix_a, pix_gt, pix_xw, pix_pre, pix_h, kv;  // (npix, E) x2, (B*npix, E) x3, (B*npix, 2E)
  View3<T, M> pooled, tok;                // (B, Pn, E), (B, Pn, D)
  View2<T, M> pos;                        // (P, D)
  std::vector<nn::TransformerBlockCache<T, M>> blocks;
  View3<T, M> xl, hl, lat_h;              // (B, S, D) x2, (B, N, D)
  nn::LayerNormCache<T, M> lnf;
  nn::TransformerWorkspace<T, M> tws;
  // backward only
  View3<T, M> dlat_h, da, db, dtok, dpooled;  // (B, N, D), (B, S, D) x2, (B, Pn, D), (B, Pn, E)
  View2<T, M> dkv, dh, dpre, dpix_a, dpix_g, dpos;
};

/// Everything one decode (and its backward) of a (B, output grid, levels m) shape needs.
template <class T, class M>
struct DecodePlan {
  int batch = 0, levels = 0, Nm = 0, P = 0, Pn = 0, S = 0, npix = 0;
  int tile = 0;  // pixels per depatchifier pass: npix, or fewer (a tiled inference decode; a training window)
  bool train = false;
  bool window = false;    // training on a window of `tile` pixels of the output (set_decode_window)
  PatchGrid grid;
  PatchTables<M> tab;     // every pixel, or (tiled, window) room for one tile's patch indices
  PatchTables<M> wtab;    // window only: the tables of the current window
  View2<T, M> ff, ffpos;  // owned (untiled ff: every pixel's features; tiled, window: scratch of one tile)
  View2<T, M> coords;     // tiled, window only: one tile's pixel coordinates (scratch)
  nn::AttentionMask<M> mask;
  NeighbourCache<T, M> nb;
  NeighbourWorkspace<T, M> nb_ws;
  // scratch
  View3<T, M> zin, lat;   // (B, Nm, c), (B, Nm, D)
  View2<T, M> qpos;       // (P, D)
  std::vector<nn::TransformerBlockCache<T, M>> blocks;
  View3<T, M> xl, hl, qtok;  // (B, S, D) x2, (B, Pn, D)
  nn::LayerNormCache<T, M> lnf;
  nn::TransformerWorkspace<T, M> tws;
  View2<T, M> kv;           // (B*Pn, 2E)
  nn::MlpCache<T, M> qmlp;  // npix rows
  View2<T, M> qpix, smod;   // (npix, E) x2
  View3<T, M> o;            // (B, npix, E)
  View2<T, M> r;            // (B*npix, E)
  nn::MlpCache<T, M> head;  // B*npix rows
  // Edge blend (inference with TokenizerConfig::edge_margin_out > 0 on a grid with pixels inside the margin)
  bool blend = false;
  EdgeBlendTables<T, M> eb;            // owned: per-axis entries, band lists, entry buffers of one tile
  View1<T, M> bweight;                 // (tile) scratch: the weight of each entry of a pass
  View2<T, M> by;                      // (B * tile, C) scratch: the read-out of a pass of neighbour entries
  // backward only
  Kokkos::View<int*, M> level_end;  // (L) owned: first token after each level (relative latent noise)
  View1<T, M> level_rms;            // (L) the RMS of each level's rows in the batch (relative latent noise)
  View2<T, M> dr, do_, dqpix, dsmod, dkv, dqpos;
  View3<T, M> dqtok, da, db, dlat, dzin;
  nn::MlpWorkspace<T, M> head_ws, q_ws;
};

namespace Impl {

template <class V>
auto rows2(const V& v) {  // (B, S, D) -> (B*S, D)
  return View2<value_t<V>, typename V::memory_space>(v.data(), v.extent(0) * v.extent(1), v.extent(2));
}
template <class V>
auto as3(const V& v, std::size_t b) {  // (B*S, D) -> (B, S, D)
  return View3<value_t<V>, typename V::memory_space>(v.data(), b, v.extent(0) / b, v.extent(1));
}

/// The patch-centre features ffpos (P, Fp) and, unless `patches_only`, every pixel's features ff (npix, Fw).
template <class ExecSpace, class T, class M>
void fill_features(const ExecSpace& space, const PatchTables<M>& tab, const TokenizerConfig& c, View2<T, M>& ff,
                   View2<T, M>& ffpos, double cell_floor, bool patches_only = false) {
  const PatchGrid& g = tab.grid;
  View2<T, M> centres("dcsldm::tok_patch_centres", std::size_t(g.num_patches()), 3);
  ffpos = View2<T, M>("dcsldm::tok_patch_features", std::size_t(g.num_patches()),
                      std::size_t(patch_feature_width(c)));
  patch_centres(space, tab, centres);
  nn::fourier_features_forward(space, centres, c.pos_freqs, ffpos);
  if (patches_only) return;
  View2<T, M> coords("dcsldm::tok_pixel_coords", std::size_t(g.num_pixels()), 6);
  ff = View2<T, M>("dcsldm::tok_pixel_features", std::size_t(g.num_pixels()), std::size_t(pixel_feature_width(c)));
  pixel_coords(space, tab, coords, cell_floor);
  nn::fourier_features_forward(space, coords, c.freqs, ff);
}

/// Carves the scratch part of an encode plan (called twice: measuring, then for real).
template <class T, class M, class Scr>
void carve_encode(Scr& s, EncodePlan<T, M>& p, const TokenizerConfig& c, const TokenizerParams<T, M>& w) {
  const std::size_t B = std::size_t(p.batch), E = std::size_t(c.pixel_width), D = std::size_t(c.width);
  const std::size_t np = std::size_t(p.npix), S = std::size_t(p.S), Pn = std::size_t(p.Pn), N = std::size_t(p.N);
  p.pix_a = s.take2(np, E);
  p.pix_gt = s.take2(np, E);
  p.pix_xw = s.take2(B * np, E);
  p.pix_pre = s.take2(B * np, E);
  p.pix_h = s.take2(B * np, E);
  p.kv = s.take2(B * np, 2 * E);
  p.pooled = s.take3(B, Pn, E);
  p.tok = s.take3(B, Pn, D);
  p.pos = s.take2(std::size_t(p.P), D);
  p.blocks.clear();
  for (const auto& blk : w.enc_blocks) p.blocks.push_back(nn::make_transformer_block_cache(s, B, S, blk));
  p.xl = s.take3(B, S, D);
  p.hl = s.take3(B, S, D);
  p.lat_h = s.take3(B, N, D);
  p.lnf = {s.take1(B * S), s.take1(B * S)};
  p.tws = nn::make_transformer_workspace(s, B, S, w.enc_blocks.at(0));
  if (p.train) {
    p.dlat_h = s.take3(B, N, D);
    p.da = s.take3(B, S, D);
    p.db = s.take3(B, S, D);
    p.dtok = s.take3(B, Pn, D);
    p.dpooled = s.take3(B, Pn, E);
    p.dkv = s.take2(B * np, 2 * E);
    p.dh = s.take2(B * np, E);
    p.dpre = s.take2(B * np, E);
    p.dpix_a = s.take2(np, E);
    p.dpix_g = s.take2(np, E);
    p.dpos = s.take2(std::size_t(p.P), D);
  }
}

template <class T, class M, class Scr>
void carve_decode(Scr& s, DecodePlan<T, M>& p, const TokenizerConfig& c, const TokenizerParams<T, M>& w) {
  const std::size_t B = std::size_t(p.batch), E = std::size_t(c.pixel_width), D = std::size_t(c.width);
  const std::size_t np = std::size_t(p.tile), S = std::size_t(p.S), Pn = std::size_t(p.Pn);
  const std::size_t Nm = std::size_t(p.Nm), lc = std::size_t(c.latent_channels);
  const std::size_t Fw = std::size_t(pixel_feature_width(c)), Hh = std::size_t(c.head_hidden);
  if (p.tile < p.npix || p.blend) {  // tiled or blended: the pixel features of one pass
    p.coords = s.take2(np, 6);
    p.ff = s.take2(np, Fw);
  }
  if (p.blend) {
    p.bweight = s.take1(np);
    p.by = s.take2(B * np, std::size_t(c.channels));
  }
  p.zin = s.take3(B, Nm, lc);
  p.lat = s.take3(B, Nm, D);
  p.qpos = s.take2(std::size_t(p.P), D);
  p.blocks.clear();
  for (const auto& blk : w.dec_blocks) p.blocks.push_back(nn::make_transformer_block_cache(s, B, S, blk));
  p.xl = s.take3(B, S, D);
  p.hl = s.take3(B, S, D);
  p.qtok = s.take3(B, Pn, D);
  p.lnf = {s.take1(B * S), s.take1(B * S)};
  p.tws = nn::make_transformer_workspace(s, B, S, w.dec_blocks.at(0));
  p.kv = s.take2(B * Pn, 2 * E);
  p.qmlp = {s.take2(np, E), s.take2(np, E)};
  p.qpix = s.take2(np, E);
  p.smod = s.take2(np, E);
  p.o = s.take3(B, np, E);
  p.r = s.take2(B * np, E);
  p.head = {s.take2(B * np, Hh), s.take2(B * np, Hh)};
  if (p.train) {
    p.level_rms = s.take1(std::size_t(c.levels()));
    p.dr = s.take2(B * np, E);
    p.do_ = s.take2(B * np, E);
    p.dqpix = s.take2(np, E);
    p.dsmod = s.take2(np, E);
    p.dkv = s.take2(B * Pn, 2 * E);
    p.dqpos = s.take2(std::size_t(p.P), D);
    p.dqtok = s.take3(B, Pn, D);
    p.da = s.take3(B, S, D);
    p.db = s.take3(B, S, D);
    p.dlat = s.take3(B, Nm, D);
    p.dzin = s.take3(B, Nm, lc);
    p.head_ws = {s.take2(B * np, Hh), s.take2(B * np, Hh)};
    p.q_ws = {s.take2(np, E), s.take2(np, E)};
  }
}

/// The depatchifier over the pixels `tab` covers (all, or one tile): per pixel a query MLP of its features
/// ff (rows as tab), neighbourhood attention to the decoder's patch tokens (p.kv), modulation, residual and
/// the head, written to y (B, npix, C) at the tab's pixels. Buffers are the plan's, viewed at tab's rows.
/// With `compact`, y holds just the tab's pixels of each sample, (B, tab.pixels(), C) (a training window).
template <class ExecSpace, class T, class M>
void depatchify(const ExecSpace& space, const TokenizerParams<T, M>& w, const TokenizerConfig& c,
                const DecodePlan<T, M>& p, const PatchTables<M>& tab, const View2<T, M>& ff, T* y,
                bool compact = false) {
  const std::size_t B = std::size_t(p.batch), n = std::size_t(tab.pixels()), E = std::size_t(c.pixel_width);
  const std::size_t Hh = std::size_t(c.head_hidden), C = std::size_t(c.channels);
  auto rows = [](const View2<T, M>& v, std::size_t r) { return View2<T, M>(v.data(), r, v.extent(1)); };
  const View2<T, M> qpix = rows(p.qpix, n), smod = rows(p.smod, n), r(p.r.data(), B * n, E);
  const nn::MlpCache<T, M> qmlp{rows(p.qmlp.pre, n), rows(p.qmlp.hidden, n)};
  const nn::MlpCache<T, M> head{rows(p.head.pre, B * n), rows(p.head.hidden, B * n)};
  const View3<T, M> o(p.o.data(), B, n, E);
  const NeighbourCache<T, M> nb{View3<T, M>(p.nb.lse.data(), B, n, p.nb.lse.extent(2))};
  nn::gelu_mlp_forward(space, ff, w.dec_q, nn::GeluKind::Tanh, qpix, qmlp);
  neighbour_attention_forward(space, qpix, as3(p.kv, B), w.rel, tab, c.queries, c.pixel_heads, o, nb);
  nn::linear_forward(space, ff, w.dec_mod, smod);
  modulate_rows(space, o, smod, as3(r, B));
  add_table_rows(space, as3(r, B), 0, int(n), qpix, 1, int(n));
  if (compact || n == std::size_t(p.npix)) {  // the whole grid or a window: one head pass over every (b, pixel) row
    nn::gelu_mlp_forward(space, r, w.head, nn::GeluKind::Tanh, View2<T, M>(y, B * n, C), head);
    return;
  }
  for (std::size_t b = 0; b < B; ++b) {  // a tile: its rows of each sample are apart in y
    const nn::MlpCache<T, M> hb{View2<T, M>(head.pre.data() + b * n * Hh, n, Hh),
                                View2<T, M>(head.hidden.data() + b * n * Hh, n, Hh)};
    nn::gelu_mlp_forward(space, View2<T, M>(r.data() + b * n * E, n, E), w.head, nn::GeluKind::Tanh,
                         View2<T, M>(y + (b * std::size_t(p.npix) + std::size_t(tab.first_pixel)) * C, n, C), hb);
  }
}

/// The coordinate row i of a read-out entry: frame t's temporal position, in-patch positions fy, fx (from the
/// edge-blend tables), the cells (spatial ones floored) as pixel_coords writes them.
template <class CV, class A>
KOKKOS_INLINE_FUNCTION void entry_coords(const CV& coords, int i, const PatchGrid& g, double floor, int t, A fy,
                                         A fx) {
  using T = value_t<CV>;
  coords(i, 0) = T(axis_frac<A>(t, g.t, g.gt));
  coords(i, 1) = T(fy);
  coords(i, 2) = T(fx);
  coords(i, 3) = T(A(g.gt) / A(g.t));
  const A ch = A(g.gh) / A(g.h), cw = A(g.gw) / A(g.w), f = A(floor);
  coords(i, 4) = T(ch < f ? f : ch);
  coords(i, 5) = T(cw < f ? f : cw);
}

/// Entry 0 (the own patch) of output pixels [first, first + count): coordinates and weight.
template <class T, class M>
struct BlendOwnEntries {
  using A = accum_t<T>;
  EdgeBlendTables<T, M> eb;
  View2<T, M> coords;
  View1<T, M> weight;
  PatchGrid g;
  int first;
  double floor;
  KOKKOS_INLINE_FUNCTION void operator()(const int i) const {
    const int p = first + i, x = p % g.w, r = p / g.w, y = r % g.h, t = r / g.h;
    entry_coords(coords, i, g, floor, t, eb.y_frac(y, 0), eb.x_frac(x, 0));
    weight(i) = T(eb.y_w(y, 0) * eb.x_w(x, 0));
  }
};

/// Entries [v0, v0 + count) of the neighbour pass `slot` (1: the row's second entry with the column's first,
/// 2: the column's second with the row's first, 3: both second entries), in (t, row, column) order over the
/// rows / columns the slot takes (the band's grouped by patch, or every one): patch, output pixel, coordinates and
/// weight. The entries of one read-out patch are a block of that order (neighbour_pass_tables).
template <class T, class M>
struct BlendNeighbourEntries {
  using A = accum_t<T>;
  EdgeBlendTables<T, M> eb;
  View2<T, M> coords;
  View1<T, M> weight;
  PatchGrid g;
  int slot, nrows, ncols, v0;
  double floor;
  KOKKOS_INLINE_FUNCTION void operator()(const int i) const {
    const int ey = slot & 1, ex = (slot >> 1) & 1, v = v0 + i;
    const int xi = v % ncols, r = v / ncols, yi = r % nrows, t = r / nrows;
    const int y = ey ? eb.band_y(yi) : yi, x = ex ? eb.band_x(xi) : xi;
    eb.entry_patch(i) = (axis_patch(t, g.t, g.gt) * g.gh + eb.y_patch(y, ey)) * g.gw + eb.x_patch(x, ex);
    eb.entry_pixel(i) = (t * g.h + y) * g.w + x;
    entry_coords(coords, i, g, floor, t, eb.y_frac(y, ey), eb.x_frac(x, ex));
    weight(i) = T(eb.y_w(y, ey) * eb.x_w(x, ex));
  }
};

/// y(b, first + i, :) *= weight(i), y (B, npix, C) flat.
template <class T, class M>
struct ScaleOutputRows {
  T* y;
  View1<T, M> weight;
  int count, npix, first, C;
  KOKKOS_INLINE_FUNCTION void operator()(const int idx) const {
    const int ch = idx % C, i = (idx / C) % count, b = idx / (C * count);
    y[(std::size_t(b) * std::size_t(npix) + std::size_t(first + i)) * std::size_t(C) + std::size_t(ch)] *= weight(i);
  }
};

/// y(b, entry_pixel(i), :) += weight(i) * by(b * count + i, :): the output pixels of one pass are distinct.
template <class T, class M>
struct AddWeightedEntries {
  T* y;
  View2<T, M> by;
  View1<T, M> weight;
  Kokkos::View<int*, M> pixel;
  int count, npix, C;
  KOKKOS_INLINE_FUNCTION void operator()(const int idx) const {
    const int ch = idx % C, i = (idx / C) % count, b = idx / (C * count);
    y[(std::size_t(b) * std::size_t(npix) + std::size_t(pixel(i))) * std::size_t(C) + std::size_t(ch)] +=
        weight(i) * by(std::size_t(b) * std::size_t(count) + std::size_t(i), std::size_t(ch));
  }
};

/// The tables of an edge-blended decode of grid g with the given margin, passes of `tile` entries; false (and
/// nothing allocated) when no output pixel lies inside the margin. Host call; allocates.
template <class T, class M>
bool make_edge_blend(const PatchGrid& g, double margin, int tile, EdgeBlendTables<T, M>& eb) {
  using A = accum_t<T>;
  const EdgeBlendAxis<A> ay = edge_blend_axis<A>(g.h, g.gh, margin), ax = edge_blend_axis<A>(g.w, g.gw, margin);
  if (!ay.changed && !ax.changed) return false;
  auto upload2 = [](const char* label, const auto& v) {  // (n, 2) from the axis's 2n entries
    using V = typename std::decay_t<decltype(v)>::value_type;
    Kokkos::View<V**, Kokkos::LayoutRight, M> d(std::string(label), v.size() / 2, 2);
    auto h = Kokkos::create_mirror_view(d);
    for (std::size_t i = 0; i < v.size(); ++i) h(i / 2, i % 2) = v[i];
    Kokkos::deep_copy(d, h);
    return d;
  };
  eb.y_patch = upload2("dcsldm::blend_y_patch", ay.patch);
  eb.x_patch = upload2("dcsldm::blend_x_patch", ax.patch);
  eb.y_frac = upload2("dcsldm::blend_y_frac", ay.frac);
  eb.x_frac = upload2("dcsldm::blend_x_frac", ax.frac);
  eb.y_w = upload2("dcsldm::blend_y_w", ay.weight);
  eb.x_w = upload2("dcsldm::blend_x_w", ax.weight);
  // The band grouped by the second entry's patch (a stable counting sort) and the groups' starts.
  auto group = [](const EdgeBlendAxis<A>& a, int np, std::vector<int>& band, std::vector<int>& first) {
    first.assign(std::size_t(np) + 1, 0);
    for (const int i : a.band) ++first[std::size_t(a.patch[2 * std::size_t(i) + 1]) + 1];
    for (std::size_t j = 0; j < std::size_t(np); ++j) first[j + 1] += first[j];
    band.assign(a.band.size(), 0);
    std::vector<int> next(first.begin(), first.end() - 1);
    for (const int i : a.band) band[std::size_t(next[std::size_t(a.patch[2 * std::size_t(i) + 1])]++)] = i;
  };
  std::vector<int> by, bx, fy, fx;
  group(ay, g.gh, by, fy);
  group(ax, g.gw, bx, fx);
  eb.band_y = upload_vector<M>("dcsldm::blend_band_y", by);
  eb.band_x = upload_vector<M>("dcsldm::blend_band_x", bx);
  eb.band_y_first = upload_vector<M>("dcsldm::blend_band_y_first", fy);
  eb.band_x_first = upload_vector<M>("dcsldm::blend_band_x_first", fx);
  eb.ny = int(by.size());
  eb.nx = int(bx.size());
  eb.entry_patch = Kokkos::View<int*, M>("dcsldm::blend_entry_patch", std::size_t(tile));
  eb.entry_pixel = Kokkos::View<int*, M>("dcsldm::blend_entry_pixel", std::size_t(tile));
  return true;
}

/// The tables of entries [v0, v0 + count) of the neighbour pass `slot` (BlendNeighbourEntries): a grid of entries
/// (t, row, column) over the rows and columns the slot takes, whose axis starts group them by read-out patch (the
/// band's groups, or the output grid's own starts), so the neighbour attention runs them patch by patch. Marked
/// scattered: their positions are not the output grid's pixels. No allocation.
template <class T, class M>
PatchTables<M> neighbour_pass_tables(const PatchTables<M>& tab, const EdgeBlendTables<T, M>& eb, int slot, int v0,
                                     int count) {
  PatchTables<M> st = tab;
  const bool ey = slot & 1, ex = slot & 2;
  st.grid.h = ey ? eb.ny : tab.grid.h;
  st.grid.w = ex ? eb.nx : tab.grid.w;
  if (ey) st.y_start = eb.band_y_first;
  if (ex) st.x_start = eb.band_x_first;
  st.first_pixel = v0;
  st.pixel_patch = Kokkos::View<int*, M>(eb.entry_patch.data(), std::size_t(count));
  st.scattered = true;
  return st;
}

/// The depatchifier of an edge-blended decode (TokenizerConfig::edge_margin_out), written to y (B, npix, C):
/// every pixel's own-patch entry (at its position clamped to the margin) scaled by its weight, then the passes
/// of the band's neighbour entries added, each pass over at most plan.tile entries. Fixed order: deterministic.
template <class ExecSpace, class T, class M>
void depatchify_blended(const ExecSpace& space, const TokenizerParams<T, M>& w, const TokenizerConfig& c,
                        const DecodePlan<T, M>& p, T* y) {
  using Policy = Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<int>>;
  const PatchGrid& g = p.grid;
  const EdgeBlendTables<T, M>& eb = p.eb;
  const std::size_t Fw = std::size_t(pixel_feature_width(c));
  const int B = p.batch, C = c.channels;
  for (int first = 0; first < p.npix; first += p.tile) {
    const int count = std::min(p.tile, p.npix - first);
    const PatchTables<M> tile = count == p.npix ? p.tab : select_pixel_tile(space, p.tab, first, count);
    const View2<T, M> coords(p.coords.data(), std::size_t(count), 6), ff(p.ff.data(), std::size_t(count), Fw);
    Kokkos::parallel_for("dcsldm::blend_own_entries", Policy(space, 0, count),
                         BlendOwnEntries<T, M>{eb, coords, p.bweight, g, first, c.cell_floor_out});
    nn::fourier_features_forward(space, coords, c.freqs, ff);
    depatchify(space, w, c, p, tile, ff, y);
    Kokkos::parallel_for("dcsldm::blend_scale_rows", Policy(space, 0, B * count * C),
                         ScaleOutputRows<T, M>{y, p.bweight, count, p.npix, first, C});
  }
  for (int slot = 1; slot <= 3; ++slot) {
    const int nrows = (slot & 1) ? eb.ny : g.h, ncols = (slot & 2) ? eb.nx : g.w;
    const int total = g.t * nrows * ncols;  // <= the grid's pixels (< 2^31)
    for (int v0 = 0; v0 < total; v0 += p.tile) {
      const int count = std::min(p.tile, total - v0);
      const View2<T, M> coords(p.coords.data(), std::size_t(count), 6), ff(p.ff.data(), std::size_t(count), Fw);
      Kokkos::parallel_for("dcsldm::blend_neighbour_entries", Policy(space, 0, count),
                           BlendNeighbourEntries<T, M>{eb, coords, p.bweight, g, slot, nrows, ncols, v0,
                                                       c.cell_floor_out});
      nn::fourier_features_forward(space, coords, c.freqs, ff);
      depatchify(space, w, c, p, neighbour_pass_tables(p.tab, eb, slot, v0, count), ff, p.by.data(), true);
      Kokkos::parallel_for("dcsldm::blend_add_entries", Policy(space, 0, B * count * C),
                           AddWeightedEntries<T, M>{y, p.by, p.bweight, eb.entry_pixel, count, p.npix, C});
    }
  }
}

}  // namespace Impl

/// Builds an encode plan for batch B and input grid g. Allocates the owned tables and (re)carves scratch.
template <class ExecSpace, class T, class M>
EncodePlan<T, M> make_encode_plan(const ExecSpace& space, const TokenizerConfig& c, const TokenizerParams<T, M>& w,
                                  int batch, const PatchGrid& g, bool train, Scratch<T, M>& scratch) {
  DCSLDM_REQUIRE(batch >= 1, "make_encode_plan", "batch = ", batch, " must be >= 1");
  EncodePlan<T, M> p;
  p.batch = batch;
  p.grid = g;
  p.train = train;
  p.P = g.num_patches();
  p.Pn = p.P * c.queries;
  p.N = c.latent_tokens();
  p.S = p.Pn + p.N;
  p.npix = g.num_pixels();
  p.tab = make_patch_tables<M>(g);
  Impl::fill_features(space, p.tab, c, p.ff, p.ffpos, c.cell_floor_in);
  p.mask = nn::make_level_causal_mask<M>(nn::encoder_levels(p.Pn, c.level_sizes));
  p.pool = make_patch_pool_cache<T, M>(std::size_t(batch), g, c.queries, c.pixel_width, c.pixel_heads);
  if (train) p.pool_ws = make_patch_pool_workspace<T, M>(std::size_t(batch), g, c.queries, c.pixel_width, c.pixel_heads);
  scratch.carve_plan([&] { Impl::carve_encode(scratch, p, c, w); });
  p.tws.attn.keep_for_backward = train;
  return p;
}

/// Bytes of decode scratch per output pixel in a depatchifier pass of `batch` latents (the part of a decode
/// that grows with the output: features, query MLP, attention output, head; with an edge margin the blend's
/// entry weight, patch and pixel (counted as three scalars) and read-out buffer).
inline std::size_t decode_bytes_per_pixel(const TokenizerConfig& c, int batch, std::size_t scalar_bytes) {
  const std::size_t E = std::size_t(c.pixel_width), Hh = std::size_t(c.head_hidden);
  const bool blend = c.edge_margin_out > 0;
  const std::size_t shared = std::size_t(pixel_feature_width(c)) + 6 + 4 * E + (blend ? 3 : 0);
  const std::size_t per_b = 2 * E + 2 * Hh + std::size_t(c.pixel_heads) + (blend ? std::size_t(c.channels) : 0);
  return (shared + std::size_t(batch) * per_b) * scalar_bytes;
}

/// Moves a training window plan to the output pixels [first, first + plan.tile) (row-major (t, y, x)): the
/// window's patch indices, coordinates and features (kernels on `space`, no allocation).
template <class ExecSpace, class T, class M>
void set_decode_window(const ExecSpace& space, const TokenizerConfig& c, DecodePlan<T, M>& p, int first) {
  const char* op = "set_decode_window";
  DCSLDM_REQUIRE(p.window, op, "the plan was not built as a training window (train, max_tile_pixels below the ",
                 p.npix, " output pixels)");
  DCSLDM_REQUIRE(first >= 0 && first <= p.npix - p.tile, op, "first = ", first, ": the window of ", p.tile,
                 " pixels must start in [0, ", p.npix - p.tile, "]");
  p.wtab = select_pixel_tile(space, p.tab, first, p.tile);
  pixel_coords(space, p.wtab, p.coords, c.cell_floor_out);
  nn::fourier_features_forward(space, p.coords, c.freqs, p.ff);
}

/// Builds a decode plan for batch B, output grid g and m levels. With max_tile_pixels > 0 and more output
/// pixels than that, an inference plan runs the depatchifier in tiles of max_tile_pixels pixels (memory bounded
/// by the tile, not by the output size), and a training plan decodes a window of max_tile_pixels consecutive
/// pixels (set_decode_window; decode_forward_window / decode_backward): a loss on a random window of a large
/// target costs what a loss on a small target does.
template <class ExecSpace, class T, class M>
DecodePlan<T, M> make_decode_plan(const ExecSpace& space, const TokenizerConfig& c, const TokenizerParams<T, M>& w,
                                  int batch, const PatchGrid& g, int levels, bool train, Scratch<T, M>& scratch,
                                  int max_tile_pixels = 0) {
  const char* op = "make_decode_plan";
  DCSLDM_REQUIRE(batch >= 1, op, "batch = ", batch, " must be >= 1");
  DCSLDM_REQUIRE(levels >= 1 && levels <= c.levels(), op, "levels = ", levels, ", expected 1..", c.levels());
  DCSLDM_REQUIRE(max_tile_pixels >= 0, op, "max_tile_pixels = ", max_tile_pixels, ", expected >= 0 (0: untiled)");
  DecodePlan<T, M> p;
  p.batch = batch;
  p.grid = g;
  p.levels = levels;
  p.train = train;
  p.Nm = c.tokens_upto(levels);
  p.P = g.num_patches();
  p.Pn = p.P * c.queries;
  p.S = p.Nm + p.Pn;
  p.npix = g.num_pixels();
  const bool part = max_tile_pixels > 0 && p.npix > max_tile_pixels;  // tiles (inference) or a window (training)
  p.window = train && part;
  p.tile = part ? max_tile_pixels : p.npix;
  p.blend = !train && c.edge_margin_out > 0 && Impl::make_edge_blend(g, c.edge_margin_out, p.tile, p.eb);
  p.tab = part ? make_tile_tables<M>(g, p.tile) : make_patch_tables<M>(g);
  Impl::fill_features(space, p.tab, c, p.ff, p.ffpos, c.cell_floor_out, part || p.blend);
  p.mask = nn::make_full_mask<M>();
  p.nb = make_neighbour_cache<T, M>(std::size_t(batch), p.tile, c.queries, c.pixel_width, c.pixel_heads);
  if (train) {
    p.nb_ws = make_neighbour_workspace<T, M>(std::size_t(batch), g, p.tile, c.queries, c.pixel_width, c.pixel_heads);
    p.level_end = Kokkos::View<int*, M>("dcsldm::tok_level_end", std::size_t(c.levels()));
    auto h = Kokkos::create_mirror_view(p.level_end);
    for (int l = 0; l < c.levels(); ++l) h(l) = c.tokens_upto(l + 1);
    Kokkos::deep_copy(p.level_end, h);
  }
  scratch.carve_plan([&] { Impl::carve_decode(scratch, p, c, w); });
  p.tws.attn.keep_for_backward = train;
  if (p.window) set_decode_window(space, c, p, 0);
  return p;
}

// ------------------------------------------------------------------------------------------------ passes

/// Encode forward: x (B, T, H, W, C) on plan.grid -> z (B, N, c) (=).
template <class ExecSpace, class XV, class T, class M, class ZV>
void encode_forward(const ExecSpace& space, const XV& x, const TokenizerParams<T, M>& w, const TokenizerConfig& c,
                    const ZV& z, const EncodePlan<T, M>& p) {
  const char* op = "tok::encode_forward";
  const PatchGrid& g = p.grid;
  DCSLDM_REQUIRE(x.extent(0) == std::size_t(p.batch) && x.extent(1) == std::size_t(g.t) &&
                     x.extent(2) == std::size_t(g.h) && x.extent(3) == std::size_t(g.w) &&
                     x.extent(4) == std::size_t(c.channels),
                 op, "x is (", x.extent(0), ", ", x.extent(1), ", ", x.extent(2), ", ", x.extent(3), ", ", x.extent(4),
                 "), the plan expects (", p.batch, ", ", g.t, ", ", g.h, ", ", g.w, ", ", c.channels, ")");
  DCSLDM_REQUIRE(z.extent(0) == std::size_t(p.batch) && z.extent(1) == std::size_t(p.N) &&
                     z.extent(2) == std::size_t(c.latent_channels),
                 op, "latent is (", z.extent(0), ", ", z.extent(1), ", ", z.extent(2), "), expected (", p.batch, ", ",
                 p.N, ", ", c.latent_channels, ")");
  const std::size_t B = std::size_t(p.batch);
  const View2<const T, M> x2(x.data(), B * std::size_t(p.npix), std::size_t(c.channels));
  // Pixel tokens: gelu((x Wx^T) * (1 + ff Wg^T + bg) + ff Wf^T + bf), then keys|values.
  nn::linear_forward(space, p.ff, w.pix_f, p.pix_a);
  nn::linear_forward(space, p.ff, w.pix_g, p.pix_gt);
  gemm(space, Op::N, Op::T, 1, x2, w.pix_x, 0, p.pix_xw);
  modulate_rows(space, Impl::as3(p.pix_xw, B), p.pix_gt, Impl::as3(p.pix_pre, B));
  add_table_rows(space, Impl::as3(p.pix_pre, B), 0, p.npix, p.pix_a, 1, p.npix);
  nn::gelu_forward(space, p.pix_pre, nn::GeluKind::Tanh, p.pix_h);
  nn::linear_forward(space, p.pix_h, w.pix_kv, p.kv);
  // Patchifier read-out, patch tokens.
  patch_pool_attention_forward(space, Impl::as3(p.kv, B), w.pool_q, p.tab, c.pixel_heads, p.pooled, p.pool);
  nn::linear_forward(space, p.ffpos, w.enc_pos, p.pos);
  nn::linear_forward(space, Impl::rows2(p.pooled), w.enc_proj, Impl::rows2(p.tok));
  add_table_rows(space, p.tok, 0, p.Pn, p.pos, c.queries, p.P);
  add_table_rows(space, p.tok, 0, p.Pn, w.enc_slot, 1, c.queries);
  // Sequence [patch tokens ; latent tokens] into block 0's input.
  const View3<T, M>& x0 = p.blocks[0].x;
  copy_row_block(space, p.tok, 0, x0, 0, p.Pn);
  fill_row_block(space, x0, p.Pn, p.N, T(0));
  add_table_rows(space, x0, p.Pn, p.N, w.enc_latent, 1, p.N);
  const int L = int(p.blocks.size());
  for (int i = 0; i < L; ++i)
    nn::transformer_block_forward(space, p.blocks[i].x, w.enc_blocks[i], p.mask, i + 1 < L ? p.blocks[i + 1].x : p.xl,
                                  p.blocks[i], p.tws);
  nn::layer_norm_forward(space, Impl::rows2(p.xl), w.enc_ln, Impl::rows2(p.hl), p.lnf);
  copy_row_block(space, p.hl, p.Pn, p.lat_h, 0, p.N);
  nn::linear_forward(space, Impl::rows2(p.lat_h), w.bottleneck,
                     View2<T, M>(z.data(), B * std::size_t(p.N), std::size_t(c.latent_channels)));
}

/// Encode backward from dz (B, N, c): parameter gradients accumulate into g (the input gets none).
template <class ExecSpace, class DZV, class XV, class T, class M>
void encode_backward(const ExecSpace& space, const DZV& dz, const XV& x, const TokenizerParams<T, M>& w,
                     const TokenizerParams<T, M>& g, const TokenizerConfig& c, const EncodePlan<T, M>& p) {
  DCSLDM_REQUIRE(p.train, "tok::encode_backward", "the plan was built without train = true");
  const std::size_t B = std::size_t(p.batch);
  const View2<const T, M> x2(x.data(), B * std::size_t(p.npix), std::size_t(c.channels));
  const View2<T, M> dz2(dz.data(), B * std::size_t(p.N), std::size_t(c.latent_channels));
  nn::linear_backward(space, dz2, Impl::rows2(p.lat_h), w.bottleneck, g.bottleneck, Impl::rows2(p.dlat_h));
  Kokkos::deep_copy(space, p.da, T(0));
  copy_row_block(space, p.dlat_h, 0, p.da, p.Pn, p.N);
  nn::layer_norm_backward(space, Impl::rows2(p.da), Impl::rows2(p.xl), w.enc_ln, g.enc_ln, p.lnf, Impl::rows2(p.db));
  for (int i = int(p.blocks.size()) - 1; i >= 0; --i)
    nn::transformer_block_backward(space, p.db, w.enc_blocks[i], g.enc_blocks[i], p.mask, p.blocks[i], p.tws, p.db);
  sum_table_rows(space, p.db, p.Pn, p.N, 1, p.N, g.enc_latent);
  copy_row_block(space, p.db, 0, p.dtok, 0, p.Pn);
  sum_table_rows(space, p.dtok, 0, p.Pn, 1, c.queries, g.enc_slot);
  Kokkos::deep_copy(space, p.dpos, T(0));
  sum_table_rows(space, p.dtok, 0, p.Pn, c.queries, p.P, p.dpos);
  nn::linear_backward(space, p.dpos, p.ffpos, w.enc_pos, g.enc_pos, View2<T, M>());
  nn::linear_backward(space, Impl::rows2(p.dtok), Impl::rows2(p.pooled), w.enc_proj, g.enc_proj,
                      Impl::rows2(p.dpooled));
  patch_pool_attention_backward(space, p.dpooled, Impl::as3(p.kv, B), w.pool_q, g.pool_q, p.tab, c.pixel_heads,
                                p.pool, p.pool_ws, Impl::as3(p.dkv, B));
  nn::linear_backward(space, p.dkv, p.pix_h, w.pix_kv, g.pix_kv, p.dh);
  nn::gelu_backward(space, p.dh, p.pix_pre, nn::GeluKind::Tanh, p.dpre);
  Kokkos::deep_copy(space, p.dpix_a, T(0));
  sum_table_rows(space, Impl::as3(p.dpre, B), 0, p.npix, 1, p.npix, p.dpix_a);
  nn::linear_backward(space, p.dpix_a, p.ff, w.pix_f, g.pix_f, View2<T, M>());
  Kokkos::deep_copy(space, p.dpix_g, T(0));
  modulate_rows_backward(space, Impl::as3(p.dpre, B), Impl::as3(p.pix_xw, B), p.pix_gt, Impl::as3(p.dh, B),
                         p.dpix_g);
  nn::linear_backward(space, p.dpix_g, p.ff, w.pix_g, g.pix_g, View2<T, M>());
  gemm(space, Op::T, Op::N, 1, p.dh, x2, 1, g.pix_x);
}

namespace Impl {

/// One thread per level l < levels: rms(l) = sqrt(mean of z^2 over the batch's rows of level l), rows [end(l-1),
/// end(l)) of z (B, Nm, c), summed in a fixed order.
template <class T, class M>
struct LevelRms {
  using A = accum_t<T>;
  View3<T, M> z;
  Kokkos::View<int*, M> end;
  View1<T, M> rms;
  KOKKOS_INLINE_FUNCTION void operator()(const int l) const {
    const int t0 = l == 0 ? 0 : end(l - 1), t1 = end(l);
    A s = 0;
    for (std::size_t b = 0; b < z.extent(0); ++b)
      for (int t = t0; t < t1; ++t)
        for (std::size_t ch = 0; ch < z.extent(2); ++ch) s += A(z(b, t, ch)) * A(z(b, t, ch));
    const A n = A(z.extent(0)) * A(t1 - t0) * A(z.extent(2));
    rms(l) = T(math::sqrt(s / (n > 0 ? n : A(1))));
  }
};

/// z(b, t, ch) += scale * rms(level of t) * noise(b, t, ch).
template <class T, class M>
struct AddLevelNoise {
  View3<T, M> z, noise;
  Kokkos::View<int*, M> end;
  View1<T, M> rms;
  T scale;
  int levels;
  KOKKOS_INLINE_FUNCTION void operator()(const int i) const {
    const int c = int(z.extent(2)), t = (i / c) % int(z.extent(1)), b = i / (c * int(z.extent(1))), ch = i % c;
    int l = 0;
    while (l + 1 < levels && t >= end(l)) ++l;
    z(b, t, ch) += scale * rms(l) * noise(b, t, ch);
  }
};

/// Row m - 1 of the level-count embedding (L, D) as a one-row table (1, D).
template <class T, class M>
View2<T, M> level_count_row(const View2<T, M>& table, int m) {
  return Kokkos::subview(table, std::make_pair(std::size_t(m - 1), std::size_t(m)), Kokkos::ALL);
}

/// Everything of a decode before the depatchifier: latent rows (+ noise) -> decoder blocks -> the output patch
/// tokens' keys | values (p.kv).
template <class ExecSpace, class ZV, class T, class M>
void decode_tokens(const ExecSpace& space, const ZV& z, const TokenizerParams<T, M>& w, const TokenizerConfig& c,
                   const DecodePlan<T, M>& p, double noise_std, std::uint64_t noise_seed, std::uint64_t noise_stream,
                   bool noise_per_level_rms) {
  const std::size_t B = std::size_t(p.batch);
  const View3<T, M> z3(const_cast<T*>(z.data()), B, z.extent(1), z.extent(2));
  copy_row_block(space, z3, 0, p.zin, 0, p.Nm);
  if (noise_std > 0) {  // the noise goes through p.lat's memory (written right after)
    const View3<T, M> noise(p.lat.data(), B, std::size_t(p.Nm), std::size_t(c.latent_channels));
    if (!noise_per_level_rms) {
      rng::fill_normal(space, noise, noise_seed, noise_stream, 0.0, noise_std);
      nn::Impl::add_into(space, p.zin, noise, p.zin);
    } else {
      DCSLDM_REQUIRE(p.train, "tok::decode_forward", "noise relative to each level's RMS needs a training plan");
      using Policy = Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<int>>;
      rng::fill_normal(space, noise, noise_seed, noise_stream, 0.0, 1.0);
      Kokkos::parallel_for("dcsldm::tok_level_rms", Policy(space, 0, p.levels),
                           LevelRms<T, M>{p.zin, p.level_end, p.level_rms});
      Kokkos::parallel_for("dcsldm::tok_level_noise", Policy(space, 0, int(p.zin.size())),
                           AddLevelNoise<T, M>{p.zin, noise, p.level_end, p.level_rms, T(noise_std), p.levels});
    }
  }
  nn::linear_forward(space, Impl::rows2(p.zin), w.dec_in, Impl::rows2(p.lat));
  const View3<T, M>& x0 = p.blocks[0].x;
  copy_row_block(space, p.lat, 0, x0, 0, p.Nm);
  add_table_rows(space, x0, 0, p.Nm, w.dec_latent_pos, 1, c.latent_tokens());
  fill_row_block(space, x0, p.Nm, p.Pn, T(0));
  nn::linear_forward(space, p.ffpos, w.dec_pos, p.qpos);
  add_table_rows(space, x0, p.Nm, p.Pn, p.qpos, c.queries, p.P);
  add_table_rows(space, x0, p.Nm, p.Pn, w.dec_slot, 1, c.queries);
  if (c.level_count_embedding)
    add_table_rows(space, x0, p.Nm, p.Pn, level_count_row(w.dec_level_count, p.levels), 1, 1);
  const int L = int(p.blocks.size());
  for (int i = 0; i < L; ++i)
    nn::transformer_block_forward(space, p.blocks[i].x, w.dec_blocks[i], p.mask, i + 1 < L ? p.blocks[i + 1].x : p.xl,
                                  p.blocks[i], p.tws);
  nn::layer_norm_forward(space, Impl::rows2(p.xl), w.dec_ln, Impl::rows2(p.hl), p.lnf);
  copy_row_block(space, p.hl, p.Nm, p.qtok, 0, p.Pn);
  nn::linear_forward(space, rows2(p.qtok), w.dec_kv, p.kv);
}

}  // namespace Impl

/// Decode forward: the first plan.levels levels of z (B, N, c) -> y (B, T, H, W, C) on plan.grid (=).
/// With noise_std > 0 (training), z + noise_std * N(0, 1) (Philox stream (seed, noise_stream)) is decoded; with
/// noise_per_level_rms (a training plan) z + noise_std * rms_l * N(0, 1), rms_l the RMS of level l's rows over
/// the batch (not differentiated): the same signal-to-noise ratio for every level, whatever the latent's scale.
template <class ExecSpace, class ZV, class T, class M, class YV>
void decode_forward(const ExecSpace& space, const ZV& z, const TokenizerParams<T, M>& w, const TokenizerConfig& c,
                    const YV& y, const DecodePlan<T, M>& p, double noise_std = 0, std::uint64_t noise_seed = 0,
                    std::uint64_t noise_stream = 0, bool noise_per_level_rms = false) {
  const char* op = "tok::decode_forward";
  const PatchGrid& g = p.grid;
  DCSLDM_REQUIRE(z.extent(0) == std::size_t(p.batch) && z.extent(1) == std::size_t(c.latent_tokens()) &&
                     z.extent(2) == std::size_t(c.latent_channels),
                 op, "latent is (", z.extent(0), ", ", z.extent(1), ", ", z.extent(2), "), expected (", p.batch, ", ",
                 c.latent_tokens(), ", ", c.latent_channels, ")");
  DCSLDM_REQUIRE(y.extent(0) == std::size_t(p.batch) && y.extent(1) == std::size_t(g.t) &&
                     y.extent(2) == std::size_t(g.h) && y.extent(3) == std::size_t(g.w) &&
                     y.extent(4) == std::size_t(c.channels),
                 op, "output is (", y.extent(0), ", ", y.extent(1), ", ", y.extent(2), ", ", y.extent(3), ", ",
                 y.extent(4), "), the plan expects (", p.batch, ", ", g.t, ", ", g.h, ", ", g.w, ", ", c.channels, ")");
  DCSLDM_REQUIRE(!p.window, op, "the plan decodes a training window: use decode_forward_window");
  Impl::decode_tokens(space, z, w, c, p, noise_std, noise_seed, noise_stream, noise_per_level_rms);
  // Depatchifier: one query per output pixel, over the whole grid or tile by tile (edge-blended: per entry).
  if (p.blend) {
    Impl::depatchify_blended(space, w, c, p, y.data());
    return;
  }
  if (p.tile == p.npix) {
    Impl::depatchify(space, w, c, p, p.tab, p.ff, y.data());
    return;
  }
  const std::size_t Fw = std::size_t(pixel_feature_width(c));
  for (int first = 0; first < p.npix; first += p.tile) {
    const int count = std::min(p.tile, p.npix - first);
    const PatchTables<M> tile = select_pixel_tile(space, p.tab, first, count);
    const View2<T, M> coords(p.coords.data(), std::size_t(count), 6), ff(p.ff.data(), std::size_t(count), Fw);
    pixel_coords(space, tile, coords, c.cell_floor_out);
    nn::fourier_features_forward(space, coords, c.freqs, ff);
    Impl::depatchify(space, w, c, p, tile, ff, y.data());
  }
}

/// Decode forward of a training window plan: the first plan.levels levels of z (B, N, c) -> the window's pixels
/// y (B, plan.tile, C) (=), i.e. rows [first, first + tile) of each sample's output (set_decode_window).
/// Noise as in decode_forward.
template <class ExecSpace, class ZV, class T, class M, class YV>
void decode_forward_window(const ExecSpace& space, const ZV& z, const TokenizerParams<T, M>& w,
                           const TokenizerConfig& c, const YV& y, const DecodePlan<T, M>& p, double noise_std = 0,
                           std::uint64_t noise_seed = 0, std::uint64_t noise_stream = 0,
                           bool noise_per_level_rms = false) {
  const char* op = "tok::decode_forward_window";
  DCSLDM_REQUIRE(p.window, op, "the plan does not decode a training window");
  DCSLDM_REQUIRE(z.extent(0) == std::size_t(p.batch) && z.extent(1) == std::size_t(c.latent_tokens()) &&
                     z.extent(2) == std::size_t(c.latent_channels),
                 op, "latent is (", z.extent(0), ", ", z.extent(1), ", ", z.extent(2), "), expected (", p.batch, ", ",
                 c.latent_tokens(), ", ", c.latent_channels, ")");
  static_assert(YV::rank == 3, "decode_forward_window: y is (B, window pixels, C)");
  DCSLDM_REQUIRE(y.extent(0) == std::size_t(p.batch) && y.extent(1) == std::size_t(p.tile) &&
                     y.extent(2) == std::size_t(c.channels),
                 op, "output is (", y.extent(0), ", ", y.extent(1), ", ", y.extent(2), "), the plan expects (",
                 p.batch, ", ", p.tile, ", ", c.channels, ")");
  Impl::decode_tokens(space, z, w, c, p, noise_std, noise_seed, noise_stream, noise_per_level_rms);
  Impl::depatchify(space, w, c, p, p.wtab, p.ff, y.data(), true);
}

/// Decode backward from dy (B, T, H, W, C), or for a training window plan dy (B, plan.tile, C) of the window's
/// pixels: parameter gradients accumulate into g; dz (B, N, c) is written (=; rows of levels > m get 0). noise
/// is not differentiated (straight-through: d(z + noise) = dz).
template <class ExecSpace, class DYV, class T, class M, class DZV>
void decode_backward(const ExecSpace& space, const DYV& dy, const TokenizerParams<T, M>& w,
                     const TokenizerParams<T, M>& g, const TokenizerConfig& c, const DecodePlan<T, M>& p,
                     const DZV& dz) {
  const char* op = "tok::decode_backward";
  DCSLDM_REQUIRE(p.train, op, "the plan was built without train = true");
  const std::size_t B = std::size_t(p.batch), n = std::size_t(p.tile);  // tile = npix unless a window
  DCSLDM_REQUIRE(dy.size() == B * n * std::size_t(c.channels), op, "dy has ", dy.size(), " elements, expected ", B,
                 " x ", n, " pixels x ", c.channels, " channels");
  const PatchTables<M>& tab = p.window ? p.wtab : p.tab;
  const View2<T, M> dy2(const_cast<T*>(dy.data()), B * n, std::size_t(c.channels));
  nn::gelu_mlp_backward(space, dy2, p.r, w.head, g.head, nn::GeluKind::Tanh, p.head, p.head_ws, p.dr);
  Kokkos::deep_copy(space, p.dsmod, T(0));
  modulate_rows_backward(space, Impl::as3(p.dr, B), p.o, p.smod, Impl::as3(p.do_, B), p.dsmod);
  nn::linear_backward(space, p.dsmod, p.ff, w.dec_mod, g.dec_mod, View2<T, M>());
  neighbour_attention_backward(space, Impl::as3(p.do_, B), p.qpix, Impl::as3(p.kv, B), w.rel, g.rel, tab, c.queries,
                               c.pixel_heads, p.nb, p.nb_ws, p.dqpix, Impl::as3(p.dkv, B));
  sum_table_rows(space, Impl::as3(p.dr, B), 0, int(n), 1, int(n), p.dqpix);
  nn::gelu_mlp_backward(space, p.dqpix, p.ff, w.dec_q, g.dec_q, nn::GeluKind::Tanh, p.qmlp, p.q_ws, View2<T, M>());
  nn::linear_backward(space, p.dkv, Impl::rows2(p.qtok), w.dec_kv, g.dec_kv, Impl::rows2(p.dqtok));
  Kokkos::deep_copy(space, p.da, T(0));
  copy_row_block(space, p.dqtok, 0, p.da, p.Nm, p.Pn);
  nn::layer_norm_backward(space, Impl::rows2(p.da), Impl::rows2(p.xl), w.dec_ln, g.dec_ln, p.lnf, Impl::rows2(p.db));
  for (int i = int(p.blocks.size()) - 1; i >= 0; --i)
    nn::transformer_block_backward(space, p.db, w.dec_blocks[i], g.dec_blocks[i], p.mask, p.blocks[i], p.tws, p.db);
  sum_table_rows(space, p.db, p.Nm, p.Pn, 1, c.queries, g.dec_slot);
  if (c.level_count_embedding)
    sum_table_rows(space, p.db, p.Nm, p.Pn, 1, 1, Impl::level_count_row(g.dec_level_count, p.levels));
  Kokkos::deep_copy(space, p.dqpos, T(0));
  sum_table_rows(space, p.db, p.Nm, p.Pn, c.queries, p.P, p.dqpos);
  nn::linear_backward(space, p.dqpos, p.ffpos, w.dec_pos, g.dec_pos, View2<T, M>());
  sum_table_rows(space, p.db, 0, p.Nm, 1, c.latent_tokens(), g.dec_latent_pos);
  copy_row_block(space, p.db, 0, p.dlat, 0, p.Nm);
  nn::linear_backward(space, Impl::rows2(p.dlat), Impl::rows2(p.zin), w.dec_in, g.dec_in, Impl::rows2(p.dzin));
  const View3<T, M> dz3(dz.data(), B, dz.extent(1), dz.extent(2));
  Kokkos::deep_copy(space, dz3, T(0));
  copy_row_block(space, p.dzin, 0, dz3, 0, p.Nm);
}

}  // namespace dcsldm::tok
