// dcsldm/nn/attention.hpp: masked multi-head attention (self and cross) with query-blocked softmax.
//
// Matches, with nn.Linear projections q, k, v, o and E = q.out_features split into `heads` of hd = E / heads:
//   Q = x Wq^T + bq, K = c Wk^T + bk, V = c Wv^T + bv          (x (B, Tq, D), c (B, Tk, Dc); c = x for self)
//   O_h = softmax(Q_h K_h^T / sqrt(hd) + mask) V_h              per batch entry and head
//   y = concat_h(O_h) Wo^T + bo                                 (B, Tq, Dout)
// where the mask is 0 where allowed and -inf elsewhere (see attention_mask.hpp); a query row with no
// allowed key outputs zeros. (Vaswani et al. 2017; PyTorch 2's F.scaled_dot_product_attention.)
//
// Memory: scores are never materialised for all queries. Query rows are processed in blocks of
// `block` rows; the only score storage is the workspace's (B*H, block, Tk). Forward saves the row
// log-sum-exp; backward recomputes P block by block from it (FlashAttention-2 style):
//   dV += P^T dO,  dP = dO V^T,  D_i = rowsum(dO * O),  dS = P * (dP - D_i),
//   dQ = dS K / sqrt(hd),  dK += dS^T Q / sqrt(hd).
// GEMMs go through dcsldm::gemm_batched (BLAS / cuBLAS / rocBLAS, batched over B*H).
// Host spaces with a CBLAS run the core instead as one work item per (batch entry, head)
// (attention_fused_host.hpp): no split/merge passes, the softmax on rows still in cache;
// AttentionWorkspace::fused = false selects the blocked path there too (tests run both).
#pragma once

#include <cstdint>
#include <dcsldm/core/elementwise.hpp>
#include <dcsldm/core/compat.hpp>
#include <dcsldm/core/fast_math.hpp>
#include <dcsldm/core/error.hpp>
#include <dcsldm/core/types.hpp>
#include <dcsldm/linalg/gemm.hpp>
#include <dcsldm/nn/attention_fused_host.hpp>
#include <dcsldm/nn/attention_mask.hpp>
#include <dcsldm/nn/linear.hpp>

namespace dcsldm::nn {

/// Parameters (or their gradients) of multi-head attention.
/// q (E, D), k (E, Dc), v (E, Dc), o (Dout, E); E divisible by heads. For self-attention Dc = D.
template <class T, class MemSpace>
struct Attention {
  Linear<T, MemSpace> q, k, v, o;
  int heads = 1;
  int inner() const { return int(q.weight.extent(0)); }  ///< E
  int head_dim() const { return heads > 0 ? inner() / heads : 0; }
};

/// Saved by forward, read by backward.
template <class T, class MemSpace>
struct AttentionCache {
  View3<T, MemSpace> q;    ///< (B*H, Tq, hd) projected queries, per head
  View3<T, MemSpace> k;    ///< (B*H, Tk, hd) projected keys
  View3<T, MemSpace> v;    ///< (B*H, Tk, hd) projected values
  View2<T, MemSpace> out;  ///< (B*Tq, E) attention output with heads merged (input of the o projection)
  View2<T, MemSpace> lse;  ///< (B*H, Tq) row log-sum-exp of the scaled, masked scores (0 for empty rows)
};

/// Scratch for forward and backward (contents are not preserved between calls).
template <class T, class MemSpace>
struct AttentionWorkspace {
  View2<T, MemSpace> qp;     ///< (B*Tq, E) q projection / dQ merged / d(out)
  View2<T, MemSpace> kp;     ///< (B*Tk, E) k projection / dK merged
  View2<T, MemSpace> vp;     ///< (B*Tk, E) v projection / dV merged
  View3<T, MemSpace> oh;     ///< (B*H, Tq, hd) per-head output (forward) / dO per head (backward)
  View3<T, MemSpace> s;      ///< (B*H, block, Tk) scores / probabilities of one query block
  View3<T, MemSpace> ds;     ///< (B*H, block, Tk) dP / dS of one query block (backward)
  View3<T, MemSpace> dq;     ///< (B*H, Tq, hd)
  View3<T, MemSpace> dk;     ///< (B*H, Tk, hd)
  View3<T, MemSpace> dv;     ///< (B*H, Tk, hd)
  View2<T, MemSpace> delta;  ///< (B*H, Tq) D_i = rowsum(dO * O)
  /// Host spaces with a CBLAS (float, double): run the core as one work item per (batch entry, head) (true,
  /// the default) or as the blocked batched-GEMM path that device spaces always run (false). Both give the
  /// same results to rounding.
  bool fused = true;
  /// false for a pass that will not be differentiated (sampling, decoding): the fused host path then reads the
  /// projections in place instead of copying each head's q, k, v into the cache (whose q/k/v are then not
  /// written; out and lse are). A backward through such a pass is refused.
  bool keep_for_backward = true;
  int block() const { return int(s.extent(1)); }
};

namespace Impl {
template <class T, class M>
void check_attention_params(const char* op, const Attention<T, M>& p) {
  DCSLDM_REQUIRE(p.heads > 0, op, "heads = ", p.heads, " must be > 0");
  const std::size_t e = p.q.weight.extent(0);
  DCSLDM_REQUIRE(e % std::size_t(p.heads) == 0, op, "q.out_features = ", e, " is not divisible by heads = ", p.heads);
  DCSLDM_REQUIRE(p.k.weight.extent(0) == e && p.v.weight.extent(0) == e && p.o.weight.extent(1) == e, op,
                 "inner widths differ: q.out = ", e, ", k.out = ", p.k.weight.extent(0),
                 ", v.out = ", p.v.weight.extent(0), ", o.in = ", p.o.weight.extent(1));
  DCSLDM_REQUIRE(p.k.weight.extent(1) == p.v.weight.extent(1), op, "k.in_features = ", p.k.weight.extent(1),
                 " != v.in_features = ", p.v.weight.extent(1));
}
}  // namespace Impl

/// Allocates the cache for batch B, Tq queries, Tk keys (host call, outside the hot path).
template <class T, class MemSpace>
AttentionCache<T, MemSpace> make_attention_cache(std::size_t batch, std::size_t tq, std::size_t tk,
                                                 const Attention<T, MemSpace>& p) {
  Impl::check_attention_params("make_attention_cache", p);
  const std::size_t h = std::size_t(p.heads), e = std::size_t(p.inner()), hd = e / h;
  return {View3<T, MemSpace>("dcsldm::attn_q", batch * h, tq, hd),
          View3<T, MemSpace>("dcsldm::attn_k", batch * h, tk, hd),
          View3<T, MemSpace>("dcsldm::attn_v", batch * h, tk, hd),
          View2<T, MemSpace>("dcsldm::attn_out", batch * tq, e), View2<T, MemSpace>("dcsldm::attn_lse", batch * h, tq)};
}

/// Allocates the workspace for batch B, Tq queries, Tk keys and query blocks of `block` rows
/// (block <= 0 or > Tq means one block of Tq rows). Scores take B*H*block*Tk elements (twice).
template <class T, class MemSpace>
AttentionWorkspace<T, MemSpace> make_attention_workspace(std::size_t batch, std::size_t tq, std::size_t tk,
                                                         const Attention<T, MemSpace>& p, int block = 128) {
  Impl::check_attention_params("make_attention_workspace", p);
  const std::size_t h = std::size_t(p.heads), e = std::size_t(p.inner()), hd = e / h, bh = batch * h;
  std::size_t nb = block <= 0 || std::size_t(block) > tq ? tq : std::size_t(block);
  if (nb == 0) nb = 1;
  AttentionWorkspace<T, MemSpace> w;
  w.qp = View2<T, MemSpace>("dcsldm::attn_ws_qp", batch * tq, e);
  w.kp = View2<T, MemSpace>("dcsldm::attn_ws_kp", batch * tk, e);
  w.vp = View2<T, MemSpace>("dcsldm::attn_ws_vp", batch * tk, e);
  w.oh = View3<T, MemSpace>("dcsldm::attn_ws_oh", bh, tq, hd);
  w.s = View3<T, MemSpace>("dcsldm::attn_ws_s", bh, nb, tk);
  w.ds = View3<T, MemSpace>("dcsldm::attn_ws_ds", bh, nb, tk);
  w.dq = View3<T, MemSpace>("dcsldm::attn_ws_dq", bh, tq, hd);
  w.dk = View3<T, MemSpace>("dcsldm::attn_ws_dk", bh, tk, hd);
  w.dv = View3<T, MemSpace>("dcsldm::attn_ws_dv", bh, tk, hd);
  w.delta = View2<T, MemSpace>("dcsldm::attn_ws_delta", bh, tq);
  return w;
}

namespace Impl {

/// (B*T, H*hd) -> (B*H, T, hd): dst(b*H + h, t, d) = src(b*T + t, h*hd + d).
template <class SrcV, class DstV>
struct SplitHeads {
  SrcV src;
  DstV dst;
  int heads, t;
  KOKKOS_INLINE_FUNCTION void operator()(const int bh, const int i, const int d) const {
    const int b = bh / heads, h = bh % heads, hd = int(dst.extent(2));
    dst(bh, i, d) = src(b * t + i, h * hd + d);
  }
};

/// (B*H, T, hd) -> (B*T, H*hd), the inverse of SplitHeads.
template <class SrcV, class DstV>
struct MergeHeads {
  SrcV src;
  DstV dst;
  int heads, t;
  KOKKOS_INLINE_FUNCTION void operator()(const int bh, const int i, const int d) const {
    const int b = bh / heads, h = bh % heads, hd = int(src.extent(2));
    dst(b * t + i, h * hd + d) = src(bh, i, d);
  }
};


template <class ExecSpace, class SrcV, class DstV>
void split_heads(const ExecSpace& space, const SrcV& src, const DstV& dst, int heads, int t) {
  for_each_3d("dcsldm::attention_split_heads", space, int(dst.extent(0)), int(dst.extent(1)), int(dst.extent(2)),
              SplitHeads<SrcV, DstV>{src, dst, heads, t});
}
template <class ExecSpace, class SrcV, class DstV>
void merge_heads(const ExecSpace& space, const SrcV& src, const DstV& dst, int heads, int t) {
  for_each_3d("dcsldm::attention_merge_heads", space, int(src.extent(0)), int(src.extent(1)), int(src.extent(2)),
              MergeHeads<SrcV, DstV>{src, dst, heads, t});
}

/// Masked softmax over the keys of one query block, in place, one team per (bh, row):
///   p_ij = allowed(i, j) ? exp(s_ij - m_i) / l_i : 0, lse_i = m_i + log(l_i); rows with no allowed key
///   get p = 0 and lse = 0.
template <class SV, class LV, class MemSpace>
struct MaskedSoftmaxRows {
  using A = accum_t<value_t<SV>>;
  using T = value_t<SV>;
  SV s;    // (BH, nb, Tk) subview of the workspace
  LV lse;  // (BH, Tq)
  AttentionMask<MemSpace> mask;
  int i0, nb, tk;

  /// Host form (RangePolicy over the rows): plain loops; exp is taken of every key and masked after, so
  /// the loop has no branch and vectorises. Same result as the team form up to the order of the sum.
  KOKKOS_INLINE_FUNCTION void operator()(const int r) const {
    const int bh = r / nb, i = r % nb, qi = i0 + i;
    A mx = Kokkos::reduction_identity<A>::max();
    for (int j = 0; j < tk; ++j) {
      const A v = A(s(bh, i, j));
      mx = (mask.allowed(qi, j) && v > mx) ? v : mx;
    }
    A sum = 0;
    for (int j = 0; j < tk; ++j) {
      const A e = math::exp_acc(A(s(bh, i, j)) - mx);
      const A w = mask.allowed(qi, j) ? e : A(0);
      s(bh, i, j) = T(w);
      sum += w;
    }
    const A inv = sum > A(0) ? A(1) / sum : A(0);
    for (int j = 0; j < tk; ++j) s(bh, i, j) = T(A(s(bh, i, j)) * inv);
    lse(bh, qi) = sum > A(0) ? T(mx + math::log(sum)) : T(0);
  }

  template <class Member>
  KOKKOS_INLINE_FUNCTION void operator()(const Member& member) const {
    const int r = member.league_rank();
    const int bh = r / nb, i = r % nb, qi = i0 + i;
    A mx = 0;
    Kokkos::parallel_reduce(
        Kokkos::TeamThreadRange(member, tk),
        [&](const int j, A& m) {
          if (mask.allowed(qi, j)) m = math::max(m, A(s(bh, i, j)));
        },
        Kokkos::Max<A>(mx));
    // e_j = exp(s_j - max) on allowed keys, 0 elsewhere. Any allowed key contributes exp(0) = 1 at the
    // maximum, so sum == 0 exactly when the row has no allowed key.
    A sum = 0;
    Kokkos::parallel_reduce(
        Kokkos::TeamThreadRange(member, tk),
        [&](const int j, A& acc) {
          const A e = mask.allowed(qi, j) ? math::exp_acc(A(s(bh, i, j)) - mx) : A(0);
          s(bh, i, j) = T(e);
          acc += e;
        },
        sum);
    const A inv = sum > A(0) ? A(1) / sum : A(0);
    Kokkos::parallel_for(Kokkos::TeamThreadRange(member, tk),
                         [&](const int j) { s(bh, i, j) = T(A(s(bh, i, j)) * inv); });
    Kokkos::single(Kokkos::PerTeam(member), [&]() { lse(bh, qi) = sum > A(0) ? T(mx + math::log(sum)) : T(0); });
  }
};

/// Recomputes P of one query block from the scores and the saved lse: p = allowed ? exp(s - lse) : 0.
template <class SV, class LV, class MemSpace>
struct RecomputeProbabilities {
  using A = accum_t<value_t<SV>>;
  using T = value_t<SV>;
  SV s;
  LV lse;
  AttentionMask<MemSpace> mask;
  int i0;
  KOKKOS_INLINE_FUNCTION void operator()(const int bh, const int i, const int j) const {
    const int qi = i0 + i;
    s(bh, i, j) = mask.allowed(qi, j) ? T(math::exp_acc(A(s(bh, i, j)) - A(lse(bh, qi)))) : T(0);
  }
};

/// dS = P * (dP - D_i), in place in dP.
template <class PV, class DV, class LV>
struct SoftmaxGrad {
  using A = accum_t<value_t<DV>>;
  using T = value_t<DV>;
  PV p;
  DV dp;
  LV delta;
  int i0;
  KOKKOS_INLINE_FUNCTION void operator()(const int bh, const int i, const int j) const {
    dp(bh, i, j) = T(A(p(bh, i, j)) * (A(dp(bh, i, j)) - A(delta(bh, i0 + i))));
  }
};

/// D_i = sum_d dO(bh, i, d) * O(bh, i, d), with O read from the merged (B*Tq, E) layout.
template <class DOV, class OV, class DV>
struct RowDot {
  DOV dout;  // (BH, Tq, hd)
  OV out;    // (B*Tq, E)
  DV delta;  // (BH, Tq)
  int heads, tq;
  KOKKOS_INLINE_FUNCTION void operator()(const int bh, const int i) const {
    const int b = bh / heads, h = bh % heads, hd = int(dout.extent(2));
    accum_t<value_t<DV>> acc = 0;
    for (int d = 0; d < hd; ++d) acc += dout(bh, i, d) * out(b * tq + i, h * hd + d);
    delta(bh, i) = value_t<DV>(acc);
  }
};

/// Unmanaged (rows, cols) View over a contiguous rank-3 View's memory.
template <class V>
auto flatten_rows(const V& v) {
  using T = typename V::value_type;
  using R = Kokkos::View<T**, Kokkos::LayoutRight, typename V::memory_space, Kokkos::MemoryTraits<Kokkos::Unmanaged>>;
  return R(v.data(), v.extent(0) * v.extent(1), v.extent(2));
}

template <class V>
void check_contiguous3(const char* op, const char* name, const V& v) {
  static_assert(V::rank == 3, "attention tensors are rank 3 (B, T, C)");
  DCSLDM_REQUIRE(v.span_is_contiguous() && (v.extent(2) <= 1 || std::size_t(v.stride(2)) == 1) &&
                     (v.extent(1) <= 1 || std::size_t(v.stride(1)) == v.extent(2)),
                 op, name, " must be a contiguous row-major (B, T, C) View");
}

template <class T, class M, class XV, class CV, class YV>
void check_attention_call(const char* op, const XV& x, const CV& c, const Attention<T, M>& p,
                          const AttentionMask<M>& mask, const YV& y, const AttentionCache<T, M>& cache,
                          const AttentionWorkspace<T, M>& ws) {
  check_attention_params(op, p);
  check_contiguous3(op, "x", x);
  check_contiguous3(op, "context", c);
  check_contiguous3(op, "y", y);
  const std::size_t b = x.extent(0), tq = x.extent(1), tk = c.extent(1), h = std::size_t(p.heads);
  const std::size_t e = std::size_t(p.inner()), hd = e / h;
  DCSLDM_REQUIRE(x.extent(2) == p.q.weight.extent(1), op, "x.extent(2) = ", x.extent(2),
                 " != q.in_features = ", p.q.weight.extent(1));
  DCSLDM_REQUIRE(c.extent(0) == b, op, "context.extent(0) = ", c.extent(0), " != x.extent(0) = ", b);
  DCSLDM_REQUIRE(c.extent(2) == p.k.weight.extent(1), op, "context.extent(2) = ", c.extent(2),
                 " != k.in_features = ", p.k.weight.extent(1));
  DCSLDM_REQUIRE(y.extent(0) == b && y.extent(1) == tq && y.extent(2) == p.o.weight.extent(0), op, "y is (",
                 y.extent(0), ", ", y.extent(1), ", ", y.extent(2), "), expected (", b, ", ", tq, ", ",
                 p.o.weight.extent(0), ")");
  check_mask(op, mask, tq, tk);
  const bool cache_ok = cache.q.extent(0) == b * h && cache.q.extent(1) == tq && cache.q.extent(2) == hd &&
                        cache.k.extent(0) == b * h && cache.k.extent(1) == tk && cache.k.extent(2) == hd &&
                        cache.v.extent(0) == b * h && cache.v.extent(1) == tk && cache.v.extent(2) == hd &&
                        cache.out.extent(0) == b * tq && cache.out.extent(1) == e && cache.lse.extent(0) == b * h &&
                        cache.lse.extent(1) == tq;
  DCSLDM_REQUIRE(cache_ok, op, "cache does not fit B = ", b, ", Tq = ", tq, ", Tk = ", tk, ", heads = ", h,
                 ", head_dim = ", hd, " (cache.q is (", cache.q.extent(0), ", ", cache.q.extent(1), ", ",
                 cache.q.extent(2), "), cache.k is (", cache.k.extent(0), ", ", cache.k.extent(1), ", ",
                 cache.k.extent(2), ")); allocate it with make_attention_cache");
  const bool ws_ok =
      ws.qp.extent(0) == b * tq && ws.qp.extent(1) == e && ws.kp.extent(0) == b * tk && ws.kp.extent(1) == e &&
      ws.vp.extent(0) == b * tk && ws.vp.extent(1) == e && ws.oh.extent(0) == b * h && ws.oh.extent(1) == tq &&
      ws.oh.extent(2) == hd && ws.s.extent(0) == b * h && ws.s.extent(1) >= 1 && ws.s.extent(2) == tk &&
      ws.ds.extent(0) == b * h && ws.ds.extent(1) == ws.s.extent(1) && ws.ds.extent(2) == tk &&
      ws.dq.extent(0) == b * h && ws.dq.extent(1) == tq && ws.dq.extent(2) == hd && ws.dk.extent(0) == b * h &&
      ws.dk.extent(1) == tk && ws.dk.extent(2) == hd && ws.dv.extent(0) == b * h && ws.dv.extent(1) == tk &&
      ws.dv.extent(2) == hd && ws.delta.extent(0) == b * h && ws.delta.extent(1) == tq;
  DCSLDM_REQUIRE(ws_ok, op, "workspace does not fit B = ", b, ", Tq = ", tq, ", Tk = ", tk, ", heads = ", h,
                 ", head_dim = ", hd, " (ws.s is (", ws.s.extent(0), ", ", ws.s.extent(1), ", ", ws.s.extent(2),
                 ")); allocate it with make_attention_workspace");
}

template <class T, class M>
void check_grad_params(const char* op, const Attention<T, M>& p, const Attention<T, M>& g) {
  const Linear<T, M>* pp[] = {&p.q, &p.k, &p.v, &p.o};
  const Linear<T, M>* gg[] = {&g.q, &g.k, &g.v, &g.o};
  const char* names[] = {"q", "k", "v", "o"};
  for (int i = 0; i < 4; ++i)
    DCSLDM_REQUIRE(pp[i]->weight.extent(0) == gg[i]->weight.extent(0) &&
                       pp[i]->weight.extent(1) == gg[i]->weight.extent(1) &&
                       pp[i]->bias.extent(0) == gg[i]->bias.extent(0),
                   op, "gradient ", names[i], " is (", gg[i]->weight.extent(0), ", ", gg[i]->weight.extent(1), ") / (",
                   gg[i]->bias.extent(0), "), parameter is (", pp[i]->weight.extent(0), ", ", pp[i]->weight.extent(1),
                   ") / (", pp[i]->bias.extent(0), ")");
}

template <class T, class M>
Linear<T, M> weight_only(const Linear<T, M>& l) {
  return Linear<T, M>{l.weight, View1<T, M>()};
}

/// The forward pass proper (checks done by the caller).
template <class ExecSpace, class XV, class CV, class T, class M, class YV>
void attention_forward_impl(const ExecSpace& space, const XV& x, const CV& c, const Attention<T, M>& p,
                            const AttentionMask<M>& mask, const YV& y, const AttentionCache<T, M>& cache,
                            const AttentionWorkspace<T, M>& ws) {
  const int b = int(x.extent(0)), tq = int(x.extent(1)), tk = int(c.extent(1)), h = p.heads;
  const int hd = p.head_dim(), bh = b * h, nbmax = ws.block();
  if (b == 0 || tq == 0) return;
  const accum_t<T> scale = accum_t<T>(1) / math::sqrt(accum_t<T>(hd > 0 ? hd : 1));
  linear_forward(space, flatten_rows(x), p.q, ws.qp);  // (B*Tq, E)
  linear_forward(space, flatten_rows(c), p.k, ws.kp);  // (B*Tk, E)
  linear_forward(space, flatten_rows(c), p.v, ws.vp);
  if constexpr (fused_attention_available<ExecSpace, T>()) {
    if (ws.fused) {
      dcsldm::Impl::blas_threads(1);  // one single-threaded BLAS call per (b, h) and product
      Kokkos::parallel_for("dcsldm::attention_fused_forward", Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<int>>(space, 0, bh),
                           FusedAttentionForward<T, M>{ws.qp, ws.kp, ws.vp, cache.q, cache.k, cache.v, cache.out,
                                                       cache.lse, ws.s, mask, h, hd, tq, tk, T(scale),
                                                       ws.keep_for_backward});
      linear_forward(space, cache.out, p.o, flatten_rows(y));
      return;
    }
  }
  split_heads(space, ws.qp, cache.q, h, tq);  // (B*H, Tq, hd)
  split_heads(space, ws.kp, cache.k, h, tk);  // (B*H, Tk, hd)
  split_heads(space, ws.vp, cache.v, h, tk);
  using S3 = decltype(Kokkos::subview(ws.s, Kokkos::ALL, std::make_pair(0, 1), Kokkos::ALL));
  using L2 = View2<T, M>;
  for (int i0 = 0; i0 < tq; i0 += nbmax) {
    const int nb = math::min(nbmax, tq - i0);
    const auto rows = std::make_pair(i0, i0 + nb);
    auto qb = Kokkos::subview(cache.q, Kokkos::ALL, rows, Kokkos::ALL);              // (BH, nb, hd)
    auto ob = Kokkos::subview(ws.oh, Kokkos::ALL, rows, Kokkos::ALL);                // (BH, nb, hd)
    S3 sb = Kokkos::subview(ws.s, Kokkos::ALL, std::make_pair(0, nb), Kokkos::ALL);  // (BH, nb, Tk)
    gemm_batched(space, Op::N, Op::T, scale, qb, cache.k, 0, sb);                    // S = Q K^T * scale
    if constexpr (Kokkos::SpaceAccessibility<ExecSpace, Kokkos::HostSpace>::accessible)
      Kokkos::parallel_for("dcsldm::attention_softmax",
                           Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<int>>(space, 0, bh * nb),
                           MaskedSoftmaxRows<S3, L2, M>{sb, cache.lse, mask, i0, nb, tk});
    else
      Kokkos::parallel_for("dcsldm::attention_softmax", Kokkos::TeamPolicy<ExecSpace>(space, bh * nb, Kokkos::AUTO),
                           MaskedSoftmaxRows<S3, L2, M>{sb, cache.lse, mask, i0, nb, tk});
    gemm_batched(space, Op::N, Op::N, 1, sb, cache.v, 0, ob);  // O = P V
  }
  merge_heads(space, ws.oh, cache.out, h, tq);             // (B*Tq, E)
  linear_forward(space, cache.out, p.o, flatten_rows(y));  // (B*Tq, Dout)
}

/// The blocked GEMM path of the backward core: d(out) in ws.qp -> dQ, dK, dV merged in ws.qp, ws.kp,
/// ws.vp (device spaces; host spaces with ws.fused = false).
template <class ExecSpace, class T, class M>
void attention_core_backward_blocked(const ExecSpace& space, const AttentionMask<M>& mask,
                                     const AttentionCache<T, M>& cache, const AttentionWorkspace<T, M>& ws, int h,
                                     int tq, int tk, accum_t<T> scale) {
  const int bh = int(ws.oh.extent(0)), nbmax = ws.block();
  split_heads(space, ws.qp, ws.oh, h, tq);
  Kokkos::parallel_for(
      "dcsldm::attention_row_dot",
      Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<2>, Kokkos::IndexType<int>>(space, {0, 0}, {bh, tq}),
      RowDot<View3<T, M>, View2<T, M>, View2<T, M>>{ws.oh, cache.out, ws.delta, h, tq});
  using S3 = decltype(Kokkos::subview(ws.s, Kokkos::ALL, std::make_pair(0, 1), Kokkos::ALL));
  using L2 = View2<T, M>;
  for (int i0 = 0; i0 < tq; i0 += nbmax) {
    const int nb = math::min(nbmax, tq - i0);
    const auto rows = std::make_pair(i0, i0 + nb);
    const accum_t<T> beta = i0 == 0 ? 0 : 1;
    auto qb = Kokkos::subview(cache.q, Kokkos::ALL, rows, Kokkos::ALL);                // (BH, nb, hd)
    auto dob = Kokkos::subview(ws.oh, Kokkos::ALL, rows, Kokkos::ALL);                 // (BH, nb, hd)
    auto dqb = Kokkos::subview(ws.dq, Kokkos::ALL, rows, Kokkos::ALL);                 // (BH, nb, hd)
    S3 pb = Kokkos::subview(ws.s, Kokkos::ALL, std::make_pair(0, nb), Kokkos::ALL);    // (BH, nb, Tk)
    S3 dsb = Kokkos::subview(ws.ds, Kokkos::ALL, std::make_pair(0, nb), Kokkos::ALL);  // (BH, nb, Tk)
    gemm_batched(space, Op::N, Op::T, scale, qb, cache.k, 0, pb);                      // S
    if (tk > 0)
      for_each_3d("dcsldm::attention_recompute_p", space, bh, nb, tk,
                  RecomputeProbabilities<S3, L2, M>{pb, cache.lse, mask, i0});
    gemm_batched(space, Op::T, Op::N, 1, pb, dob, beta, ws.dv);  // dV (+)= P^T dO
    gemm_batched(space, Op::N, Op::T, 1, dob, cache.v, 0, dsb);  // dP = dO V^T
    if (tk > 0)
      for_each_3d("dcsldm::attention_softmax_backward", space, bh, nb, tk,
                  SoftmaxGrad<S3, S3, L2>{pb, dsb, ws.delta, i0});
    gemm_batched(space, Op::N, Op::N, scale, dsb, cache.k, 0, dqb);  // dQ = dS K * scale
    gemm_batched(space, Op::T, Op::N, scale, dsb, qb, beta, ws.dk);  // dK (+)= dS^T Q * scale
  }
  // Back to (B*T, E).
  merge_heads(space, ws.dq, ws.qp, h, tq);
  merge_heads(space, ws.dk, ws.kp, h, tk);
  merge_heads(space, ws.dv, ws.vp, h, tk);
}

/// The backward pass proper. dctx_is_dx: context == x (self-attention), so the k/v input gradients add
/// into dx.
template <class ExecSpace, class DYV, class XV, class CV, class T, class M, class DXV, class DCV>
void attention_backward_impl(const ExecSpace& space, const DYV& dy, const XV& x, const CV& c, const Attention<T, M>& p,
                             const Attention<T, M>& g, const AttentionMask<M>& mask, const AttentionCache<T, M>& cache,
                             const AttentionWorkspace<T, M>& ws, const DXV& dx, const DCV& dctx, bool dctx_is_dx) {
  const int b = int(x.extent(0)), tq = int(x.extent(1)), tk = int(c.extent(1)), h = p.heads;
  const int hd = p.head_dim();
  DCSLDM_REQUIRE(ws.keep_for_backward, "attention_backward",
                 "the workspace is set up for passes without a backward (keep_for_backward = false): its forward "
                 "did not keep q, k, v per head");
  const bool want_dx = dx.size() != 0, want_dctx = dctx_is_dx ? want_dx : dctx.size() != 0;
  if (b == 0 || tq == 0) {
    // No queries: no gradient flows; inputs gradients are zero, parameters unchanged.
    if (want_dx) Kokkos::deep_copy(space, dx, T(0));
    if (!dctx_is_dx && want_dctx) Kokkos::deep_copy(space, dctx, T(0));
    return;
  }
  const accum_t<T> scale = accum_t<T>(1) / math::sqrt(accum_t<T>(hd > 0 ? hd : 1));
  auto dy2 = flatten_rows(dy);
  // Output projection: g.o += dy^T out, d(out) = dy Wo (into ws.qp), then dO per head (into ws.oh).
  linear_backward(space, dy2, cache.out, p.o, g.o, ws.qp);
  bool fused = false;
  if constexpr (fused_attention_available<ExecSpace, T>()) {
    if (ws.fused) {
      dcsldm::Impl::blas_threads(1);
      Kokkos::parallel_for("dcsldm::attention_fused_backward",
                           Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<int>>(space, 0, b * h),
                           FusedAttentionBackward<T, M>{ws.qp, ws.kp, ws.vp, cache.q, cache.k, cache.v, cache.out,
                                                        cache.lse, ws.s, ws.ds, ws.delta, mask, h, hd, tq, tk,
                                                        T(scale)});
      fused = true;
    }
  }
  if (!fused) attention_core_backward_blocked(space, mask, cache, ws, h, tq, tk, scale);
  // Through the input projections (dQ, dK, dV merged in ws.qp, ws.kp, ws.vp).
  auto x2 = flatten_rows(x);
  auto c2 = flatten_rows(c);
  View2<T, M> none;
  linear_backward(space, ws.qp, x2, p.q, g.q, none);
  linear_backward(space, ws.kp, c2, p.k, g.k, none);
  linear_backward(space, ws.vp, c2, p.v, g.v, none);
  if (want_dx) gemm(space, Op::N, Op::N, 1, ws.qp, p.q.weight, 0, flatten_rows(dx));  // dx = dQp Wq
  if (want_dctx && dctx_is_dx) {  // self-attention: dx += dKp Wk + dVp Wv
    gemm(space, Op::N, Op::N, 1, ws.kp, p.k.weight, 1, flatten_rows(dx));
    gemm(space, Op::N, Op::N, 1, ws.vp, p.v.weight, 1, flatten_rows(dx));
  } else if (want_dctx) {  // cross-attention: dcontext = dKp Wk + dVp Wv
    gemm(space, Op::N, Op::N, 1, ws.kp, p.k.weight, 0, flatten_rows(dctx));
    gemm(space, Op::N, Op::N, 1, ws.vp, p.v.weight, 1, flatten_rows(dctx));
  }
}

}  // namespace Impl

/// Cross-attention forward: y = MHA(queries from x, keys/values from context) with the mask.
/// x (B, Tq, D), context (B, Tk, Dc), y (B, Tq, Dout) written (=); contiguous row-major Views.
/// Fills cache (q, k, v per head, merged output, row lse). ws from make_attention_workspace.
template <class ExecSpace, class XV, class CV, class T, class M, class YV>
void attention_forward(const ExecSpace& space, const XV& x, const CV& context, const Attention<T, M>& p,
                       const AttentionMask<M>& mask, const YV& y, const AttentionCache<T, M>& cache,
                       const AttentionWorkspace<T, M>& ws) {
  Impl::check_attention_call("attention_forward", x, context, p, mask, y, cache, ws);
  Impl::attention_forward_impl(space, x, context, p, mask, y, cache, ws);
}

/// Self-attention forward: attention_forward with context = x. x (B, T, D), y (B, T, Dout).
template <class ExecSpace, class XV, class T, class M, class YV>
void self_attention_forward(const ExecSpace& space, const XV& x, const Attention<T, M>& p, const AttentionMask<M>& mask,
                            const YV& y, const AttentionCache<T, M>& cache, const AttentionWorkspace<T, M>& ws) {
  Impl::check_attention_call("self_attention_forward", x, x, p, mask, y, cache, ws);
  Impl::attention_forward_impl(space, x, x, p, mask, y, cache, ws);
}

/// Cross-attention backward. dy (B, Tq, Dout); x, context, mask as given to forward; cache from forward.
/// Parameter gradients accumulate (g.q, g.k, g.v, g.o +=). dx (B, Tq, D) and dcontext (B, Tk, Dc) are
/// written (=); pass an empty View (size 0) to skip either. ws contents are overwritten.
template <class ExecSpace, class DYV, class XV, class CV, class T, class M, class DXV, class DCV>
void attention_backward(const ExecSpace& space, const DYV& dy, const XV& x, const CV& context, const Attention<T, M>& p,
                        const Attention<T, M>& g, const AttentionMask<M>& mask, const AttentionCache<T, M>& cache,
                        const AttentionWorkspace<T, M>& ws, const DXV& dx, const DCV& dcontext) {
  const char* op = "attention_backward";
  Impl::check_attention_call(op, x, context, p, mask, dy, cache, ws);
  Impl::check_grad_params(op, p, g);
  if (dx.size() != 0) {
    Impl::check_contiguous3(op, "dx", dx);
    DCSLDM_REQUIRE(dx.extent(0) == x.extent(0) && dx.extent(1) == x.extent(1) && dx.extent(2) == x.extent(2), op,
                   "dx is (", dx.extent(0), ", ", dx.extent(1), ", ", dx.extent(2), "), x is (", x.extent(0), ", ",
                   x.extent(1), ", ", x.extent(2), ")");
  }
  if (dcontext.size() != 0) {
    Impl::check_contiguous3(op, "dcontext", dcontext);
    DCSLDM_REQUIRE(dcontext.extent(0) == context.extent(0) && dcontext.extent(1) == context.extent(1) &&
                       dcontext.extent(2) == context.extent(2),
                   op, "dcontext is (", dcontext.extent(0), ", ", dcontext.extent(1), ", ", dcontext.extent(2),
                   "), context is (", context.extent(0), ", ", context.extent(1), ", ", context.extent(2), ")");
  }
  Impl::attention_backward_impl(space, dy, x, context, p, g, mask, cache, ws, dx, dcontext, false);
}

/// Self-attention backward: the x-gradients of the q, k and v paths add up into dx (B, T, D), written (=)
/// (skipped when empty). Parameter gradients accumulate. Other arguments as in attention_backward.
template <class ExecSpace, class DYV, class XV, class T, class M, class DXV>
void self_attention_backward(const ExecSpace& space, const DYV& dy, const XV& x, const Attention<T, M>& p,
                             const Attention<T, M>& g, const AttentionMask<M>& mask, const AttentionCache<T, M>& cache,
                             const AttentionWorkspace<T, M>& ws, const DXV& dx) {
  const char* op = "self_attention_backward";
  Impl::check_attention_call(op, x, x, p, mask, dy, cache, ws);
  Impl::check_grad_params(op, p, g);
  if (dx.size() != 0) {
    Impl::check_contiguous3(op, "dx", dx);
    DCSLDM_REQUIRE(dx.extent(0) == x.extent(0) && dx.extent(1) == x.extent(1) && dx.extent(2) == x.extent(2), op,
                   "dx is (", dx.extent(0), ", ", dx.extent(1), ", ", dx.extent(2), "), x is (", x.extent(0), ", ",
                   x.extent(1), ", ", x.extent(2), ")");
  }
  Impl::attention_backward_impl(space, dy, x, x, p, g, mask, cache, ws, dx, dx, true);
}

}  // namespace dcsldm::nn
