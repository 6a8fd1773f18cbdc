// dcsldm/nn/transformer_block.hpp: the pre-LN transformer block (ViT / GPT-2 style) and a stack of them.
//
//   x1 = x  + Attn(LN1(x))        (self-attention with a mask)
//   y  = x1 + MLP(LN2(x1))        (GELU MLP)
// torch: x = x + attn(ln1(x)); x = x + mlp(ln2(x)). Tokens (B, S, D), contiguous LayoutRight.
// The cache holds what backward reads; the workspace is shared by all blocks of a stack (one block's
// backward at a time). Both come from the caller (e.g. carved from a Scratch), so nothing is allocated
// in forward or backward.
#pragma once

#include <dcsldm/core/error.hpp>
#include <dcsldm/core/types.hpp>
#include <dcsldm/nn/attention.hpp>
#include <dcsldm/nn/layer_norm.hpp>
#include <dcsldm/nn/mlp.hpp>

#include <vector>

namespace dcsldm::nn {

/// Parameters (or gradients) of one block.
template <class T, class MemSpace>
struct TransformerBlock {
  LayerNorm<T, MemSpace> ln1;
  Attention<T, MemSpace> attn;
  LayerNorm<T, MemSpace> ln2;
  GeluMlp<T, MemSpace> mlp;
};

/// Saved by one block's forward (B*S rows).
template <class T, class MemSpace>
struct TransformerBlockCache {
  View3<T, MemSpace> x;   ///< (B, S, D) the block input (the residual stream)
  View3<T, MemSpace> h1;  ///< LN1(x)
  View3<T, MemSpace> x1;  ///< x + attention
  View3<T, MemSpace> h2;  ///< LN2(x1)
  LayerNormCache<T, MemSpace> ln1, ln2;
  AttentionCache<T, MemSpace> attn;
  MlpCache<T, MemSpace> mlp;
};

/// Scratch shared by the blocks of a stack.
template <class T, class MemSpace>
struct TransformerWorkspace {
  View3<T, MemSpace> t0, t1, t2;  ///< (B, S, D)
  AttentionWorkspace<T, MemSpace> attn;
  MlpWorkspace<T, MemSpace> mlp;
};

namespace Impl {
/// out = a + b (elementwise over contiguous Views of equal size; out may alias a or b).
template <class T>
struct AddInto {
  const T* a;
  const T* b;
  T* out;
  KOKKOS_INLINE_FUNCTION void operator()(const std::size_t i) const { out[i] = a[i] + b[i]; }
};
template <class ExecSpace, class V>
void add_into(const ExecSpace& space, const V& a, const V& b, const V& out) {
  using T = value_t<V>;
  Kokkos::parallel_for("dcsldm::residual_add",
                       Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<std::size_t>>(space, 0, out.size()),
                       AddInto<T>{a.data(), b.data(), out.data()});
}
template <class V>
auto rows_of(const V& v) {  // (B, S, D) -> (B*S, D), same memory
  return View2<value_t<V>, typename V::memory_space>(v.data(), v.extent(0) * v.extent(1), v.extent(2));
}
}  // namespace Impl

/// Carves a block cache for (B, S) tokens out of `take` (a Scratch or anything with take1/take2/take3).
template <class T, class MemSpace, class Scr>
TransformerBlockCache<T, MemSpace> make_transformer_block_cache(Scr& s, std::size_t b, std::size_t seq,
                                                                const TransformerBlock<T, MemSpace>& p) {
  const std::size_t d = p.ln1.weight.extent(0), e = std::size_t(p.attn.inner()), h = std::size_t(p.attn.heads);
  const std::size_t hd = e / h, hid = p.mlp.fc1.weight.extent(0), m = b * seq;
  TransformerBlockCache<T, MemSpace> c;
  c.x = s.take3(b, seq, d);
  c.h1 = s.take3(b, seq, d);
  c.x1 = s.take3(b, seq, d);
  c.h2 = s.take3(b, seq, d);
  c.ln1 = {s.take1(m), s.take1(m)};
  c.ln2 = {s.take1(m), s.take1(m)};
  c.attn = {s.take3(b * h, seq, hd), s.take3(b * h, seq, hd), s.take3(b * h, seq, hd), s.take2(m, e),
            s.take2(b * h, seq)};
  c.mlp = {s.take2(m, hid), s.take2(m, hid)};
  return c;
}

/// Carves the shared workspace of a stack for (B, S) tokens (query blocks of `block` rows).
template <class T, class MemSpace, class Scr>
TransformerWorkspace<T, MemSpace> make_transformer_workspace(Scr& s, std::size_t b, std::size_t seq,
                                                             const TransformerBlock<T, MemSpace>& p,
                                                             int block = 128) {
  const std::size_t d = p.ln1.weight.extent(0), e = std::size_t(p.attn.inner()), h = std::size_t(p.attn.heads);
  const std::size_t hd = e / h, hid = p.mlp.fc1.weight.extent(0), m = b * seq, bh = b * h;
  std::size_t nb = block <= 0 || std::size_t(block) > seq ? seq : std::size_t(block);
  if (nb == 0) nb = 1;
  TransformerWorkspace<T, MemSpace> w;
  w.t0 = s.take3(b, seq, d);
  w.t1 = s.take3(b, seq, d);
  w.t2 = s.take3(b, seq, d);
  w.attn.qp = s.take2(m, e);
  w.attn.kp = s.take2(m, e);
  w.attn.vp = s.take2(m, e);
  w.attn.oh = s.take3(bh, seq, hd);
  w.attn.s = s.take3(bh, nb, seq);
  w.attn.ds = s.take3(bh, nb, seq);
  w.attn.dq = s.take3(bh, seq, hd);
  w.attn.dk = s.take3(bh, seq, hd);
  w.attn.dv = s.take3(bh, seq, hd);
  w.attn.delta = s.take2(bh, seq);
  w.mlp = {s.take2(m, hid), s.take2(m, hid)};
  return w;
}

/// One block forward: y = block(x). x (B, S, D) is copied into cache.x (the residual stream saved for
/// backward) unless it already is cache.x; y (B, S, D) written (=), may alias x.
template <class ExecSpace, class XV, class T, class M, class YV>
void transformer_block_forward(const ExecSpace& space, const XV& x, const TransformerBlock<T, M>& p,
                               const AttentionMask<M>& mask, const YV& y, const TransformerBlockCache<T, M>& c,
                               const TransformerWorkspace<T, M>& ws) {
  DCSLDM_REQUIRE(x.extent(0) == c.x.extent(0) && x.extent(1) == c.x.extent(1) && x.extent(2) == c.x.extent(2),
                 "transformer_block_forward", "x is (", x.extent(0), ", ", x.extent(1), ", ", x.extent(2),
                 "), the cache was made for (", c.x.extent(0), ", ", c.x.extent(1), ", ", c.x.extent(2), ")");
  if (x.data() != c.x.data()) Kokkos::deep_copy(space, c.x, x);
  layer_norm_forward(space, Impl::rows_of(c.x), p.ln1, Impl::rows_of(c.h1), c.ln1);
  self_attention_forward(space, c.h1, p.attn, mask, ws.t0, c.attn, ws.attn);
  Impl::add_into(space, c.x, ws.t0, c.x1);
  layer_norm_forward(space, Impl::rows_of(c.x1), p.ln2, Impl::rows_of(c.h2), c.ln2);
  gelu_mlp_forward(space, Impl::rows_of(c.h2), p.mlp, GeluKind::Tanh, Impl::rows_of(ws.t0), c.mlp);
  Impl::add_into(space, c.x1, ws.t0, View3<T, M>(y.data(), y.extent(0), y.extent(1), y.extent(2)));
}

/// One block backward from dy (B, S, D). Parameter gradients accumulate; dx (B, S, D) written (=) and
/// may alias dy.
template <class ExecSpace, class DYV, class T, class M, class DXV>
void transformer_block_backward(const ExecSpace& space, const DYV& dy, const TransformerBlock<T, M>& p,
                                const TransformerBlock<T, M>& g, const AttentionMask<M>& mask,
                                const TransformerBlockCache<T, M>& c, const TransformerWorkspace<T, M>& ws,
                                const DXV& dx) {
  const View3<T, M> dy3(dy.data(), dy.extent(0), dy.extent(1), dy.extent(2));
  const View3<T, M> dx3(dx.data(), dx.extent(0), dx.extent(1), dx.extent(2));
  // MLP branch: dx1 = dy + LN2^T(MLP^T(dy))
  gelu_mlp_backward(space, Impl::rows_of(dy3), Impl::rows_of(c.h2), p.mlp, g.mlp, GeluKind::Tanh, c.mlp, ws.mlp,
                    Impl::rows_of(ws.t0));
  layer_norm_backward(space, Impl::rows_of(ws.t0), Impl::rows_of(c.x1), p.ln2, g.ln2, c.ln2, Impl::rows_of(ws.t1));
  Impl::add_into(space, dy3, ws.t1, ws.t2);  // t2 = dx1
  // Attention branch: dx = dx1 + LN1^T(Attn^T(dx1))
  self_attention_backward(space, ws.t2, c.h1, p.attn, g.attn, mask, c.attn, ws.attn, ws.t0);
  layer_norm_backward(space, Impl::rows_of(ws.t0), Impl::rows_of(c.x), p.ln1, g.ln1, c.ln1, Impl::rows_of(ws.t1));
  Impl::add_into(space, ws.t2, ws.t1, dx3);
}

}  // namespace dcsldm::nn
