// dcsldm/tok/patch_pool_attention.hpp: multi-head attention pooling of the pixels of each patch by n
// learned queries shared by all patches: the read-out of DCS-Tok's 1D patchifier (encoder side).
//
// Zhong et al. 2025 ("Decoupling Complexity from Scale in Latent Diffusion Model"): the pixels of a patch
// are independent tokens, read by learnable tokens through cross-attention. With E = heads * hd,
// scale = 1 / sqrt(hd), for batch b, patch P, query j and head h, over the pixels i of patch P:
//   s_i = scale * <q[j, h-slice], k_i[h-slice]>,  a = softmax_i(s),  y[b, P*n + j, h-slice] = sum_i a_i v_i[h-slice],
// k_i = kv[b, i, 0:E], v_i = kv[b, i, E:2E] (PyTorch: F.softmax over a gathered, masked key set).
// Every pixel is in exactly one patch, so the cost is linear in pixels at any resolution.
//
// Backward (FlashAttention-2 style, from the saved output and row log-sum-exp):
//   a_ij = exp(s_ij - lse_j), D_j = <dy_j, y_j>, ds_ij = a_ij (<dy_j, v_i> - D_j),
//   dv_i = sum_j a_ij dy_j, dk_i = scale sum_j ds_ij q_j   (a gather per pixel over the n queries),
//   dq_j += scale sum_{b, P} sum_{i in P} ds_ij k_i         (per-(b, P, j) partials, then a fixed-order sum).
// No float atomics: every output element is summed by one thread in a fixed order, so results do not
// depend on the thread count.
#pragma once

#include <dcsldm/core/compat.hpp>
#include <dcsldm/core/fast_math.hpp>
#include <dcsldm/core/error.hpp>
#include <dcsldm/core/types.hpp>
#include <dcsldm/tok/patch_grid.hpp>

#include <cstddef>
#include <type_traits>

namespace dcsldm::tok {

/// Saved by patch_pool_attention_forward, read by backward.
template <class T, class M>
struct PatchPoolCache {
  View3<T, M> out;  ///< (B, P*n, E) the attention output (a copy of y)
  View3<T, M> lse;  ///< (B, P*n, H) log-sum-exp of the scaled scores of each (patch, query, head)
};

/// Scratch of patch_pool_attention_backward (contents are not preserved between calls).
template <class T, class M>
struct PatchPoolWorkspace {
  View3<T, M> delta;    ///< (B, P*n, H) D = <dy, y> per head
  View3<T, M> dq_part;  ///< (B, P*n, E) per-(b, P, j) partial of dq
};

/// Allocates the cache for batch B, grid g, n queries per patch, width E, H heads (host call).
template <class T, class M>
PatchPoolCache<T, M> make_patch_pool_cache(std::size_t batch, const PatchGrid& g, int n, int e, int heads) {
  DCSLDM_REQUIRE(n >= 1 && heads >= 1 && e >= heads && e % heads == 0, "make_patch_pool_cache", "n = ", n,
                 ", E = ", e, ", heads = ", heads, ", expected n >= 1 and E a positive multiple of heads");
  const std::size_t rows = std::size_t(g.num_patches()) * std::size_t(n);
  return {View3<T, M>("dcsldm::patch_pool_out", batch, rows, std::size_t(e)),
          View3<T, M>("dcsldm::patch_pool_lse", batch, rows, std::size_t(heads))};
}

/// Allocates the backward workspace for batch B, grid g, n queries per patch, width E, H heads (host call).
template <class T, class M>
PatchPoolWorkspace<T, M> make_patch_pool_workspace(std::size_t batch, const PatchGrid& g, int n, int e, int heads) {
  DCSLDM_REQUIRE(n >= 1 && heads >= 1 && e >= heads && e % heads == 0, "make_patch_pool_workspace", "n = ", n,
                 ", E = ", e, ", heads = ", heads, ", expected n >= 1 and E a positive multiple of heads");
  const std::size_t rows = std::size_t(g.num_patches()) * std::size_t(n);
  return {View3<T, M>("dcsldm::patch_pool_delta", batch, rows, std::size_t(heads)),
          View3<T, M>("dcsldm::patch_pool_dq_part", batch, rows, std::size_t(e))};
}

namespace Impl {

/// Forward: one thread per (b, P*n + j, h); online softmax over the pixels of P, chunked over hd.
template <class KVV, class QV, class YV, class T, class M>
struct PatchPoolForward {
  using A = accum_t<T>;
  using IV = Kokkos::View<int*, M>;
  KVV kv;            // (B, Npix, 2E)
  QV q;              // (n, E)
  YV y;              // (B, P*n, E)
  View3<T, M> out;   // (B, P*n, E)
  View3<T, M> lse;   // (B, P*n, H)
  IV ts, ys, xs;
  PatchGrid g;
  int n, heads, hd, e;
  A scale;

  KOKKOS_INLINE_FUNCTION void operator()(const int idx) const {
    constexpr int C = pixel_attention_chunk;
    const int rows = g.num_patches() * n;
    const int h = idx % heads, r = idx / heads, row = r % rows, b = r / rows;
    const int patch = row / n, j = row % n;
    const int px = patch % g.gw, py = (patch / g.gw) % g.gh, pt = patch / (g.gw * g.gh);
    const PatchBox<IV> box(ts, ys, xs, pt, py, px);
    const auto* qj = &q(j, h * hd);
    for (int d0 = 0; d0 < hd; d0 += C) {
      const int cw = math::min(C, hd - d0);
      A acc[C];
      for (int c = 0; c < C; ++c) acc[c] = 0;
      A m = 0, l = 0;
      bool first = true;
      for (int t = box.t0; t < box.t1; ++t)
        for (int yy = box.y0; yy < box.y1; ++yy)
          for (int x = box.x0; x < box.x1; ++x) {
            const int i = (t * g.h + yy) * g.w + x;
            const auto* ki = &kv(b, i, h * hd);
            const auto* vi = &kv(b, i, e + h * hd + d0);
            const A s = scale * dot_n<A>(qj, ki, hd);
            if (first || s > m) {
              const A f = first ? A(0) : math::exp_acc(m - s);
              l *= f;
              for (int c = 0; c < cw; ++c) acc[c] *= f;
              m = s;
              first = false;
            }
            const A p = math::exp_acc(s - m);
            l += p;
            for (int c = 0; c < cw; ++c) acc[c] += p * A(vi[c]);
          }
      const A inv = A(1) / l;
      for (int c = 0; c < cw; ++c) {
        const T v = T(acc[c] * inv);
        y(b, row, h * hd + d0 + c) = v;
        out(b, row, h * hd + d0 + c) = v;
      }
      if (d0 == 0) lse(b, row, h) = T(m + math::log(l));
    }
  }
};

/// Backward 1: one thread per (b, P*n + j, h): D_j = <dy_j, y_j> and the partial
/// dq_part[b, P*n + j, h-slice] = sum_{i in P} ds_ij k_i (scale applied in the reduction).
template <class DYV, class KVV, class QV, class T, class M>
struct PatchPoolDqPartial {
  using A = accum_t<T>;
  using IV = Kokkos::View<int*, M>;
  DYV dy;  // (B, P*n, E)
  KVV kv;  // (B, Npix, 2E)
  QV q;    // (n, E)
  View3<T, M> out, lse, delta, dq_part;
  IV ts, ys, xs;
  PatchGrid g;
  int n, heads, hd, e;
  A scale;

  KOKKOS_INLINE_FUNCTION void operator()(const int idx) const {
    constexpr int C = pixel_attention_chunk;
    const int rows = g.num_patches() * n;
    const int h = idx % heads, r = idx / heads, row = r % rows, b = r / rows;
    const int patch = row / n, j = row % n;
    const int px = patch % g.gw, py = (patch / g.gw) % g.gh, pt = patch / (g.gw * g.gh);
    const PatchBox<IV> box(ts, ys, xs, pt, py, px);
    const auto* qj = &q(j, h * hd);
    const auto* dyj = &dy(b, row, h * hd);
    const A dd = dot_n<A>(dyj, &out(b, row, h * hd), hd);
    delta(b, row, h) = T(dd);
    const A lj = A(lse(b, row, h));
    for (int d0 = 0; d0 < hd; d0 += C) {
      const int cw = math::min(C, hd - d0);
      A acc[C];
      for (int c = 0; c < C; ++c) acc[c] = 0;
      for (int t = box.t0; t < box.t1; ++t)
        for (int yy = box.y0; yy < box.y1; ++yy)
          for (int x = box.x0; x < box.x1; ++x) {
            const int i = (t * g.h + yy) * g.w + x;
            const auto* ki = &kv(b, i, h * hd);
            const A a = math::exp_acc(scale * dot_n<A>(qj, ki, hd) - lj);
            const A ds = a * (dot_n<A>(dyj, &kv(b, i, e + h * hd), hd) - dd);
            for (int c = 0; c < cw; ++c) acc[c] += ds * A(ki[d0 + c]);
          }
      for (int c = 0; c < cw; ++c) dq_part(b, row, h * hd + d0 + c) = T(acc[c]);
    }
  }
};

/// Backward 2: one thread per (b, pixel i, h): dv_i = sum_j a_ij dy_j, dk_i = scale sum_j ds_ij q_j (=).
template <class DYV, class KVV, class QV, class DKVV, class T, class M>
struct PatchPoolDkv {
  using A = accum_t<T>;
  DYV dy;    // (B, P*n, E)
  KVV kv;    // (B, Npix, 2E)
  QV q;      // (n, E)
  DKVV dkv;  // (B, Npix, 2E)
  View3<T, M> lse, delta;
  Kokkos::View<int*, M> pixel_patch;
  int npix, n, heads, hd, e;
  A scale;

  KOKKOS_INLINE_FUNCTION void operator()(const int idx) const {
    constexpr int C = pixel_attention_chunk;
    const int h = idx % heads, r = idx / heads, i = r % npix, b = r / npix;
    const int patch = pixel_patch(i);
    const auto* ki = &kv(b, i, h * hd);
    const auto* vi = &kv(b, i, e + h * hd);
    for (int d0 = 0; d0 < hd; d0 += C) {
      const int cw = math::min(C, hd - d0);
      A dk[C], dv[C];
      for (int c = 0; c < C; ++c) dk[c] = dv[c] = 0;
      for (int j = 0; j < n; ++j) {
        const int row = patch * n + j;
        const auto* qj = &q(j, h * hd);
        const auto* dyj = &dy(b, row, h * hd);
        const A a = math::exp_acc(scale * dot_n<A>(qj, ki, hd) - A(lse(b, row, h)));
        const A ds = a * (dot_n<A>(dyj, vi, hd) - A(delta(b, row, h)));
        for (int c = 0; c < cw; ++c) {
          dv[c] += a * A(dyj[d0 + c]);
          dk[c] += ds * A(qj[d0 + c]);
        }
      }
      for (int c = 0; c < cw; ++c) {
        dkv(b, i, h * hd + d0 + c) = T(scale * dk[c]);
        dkv(b, i, e + h * hd + d0 + c) = T(dv[c]);
      }
    }
  }
};

/// Backward 3: dq[j, c] += scale * sum_b sum_P dq_part[b, P*n + j, c], b outer, P inner (fixed order).
template <class DQV, class T, class M>
struct PatchPoolDqReduce {
  using A = accum_t<T>;
  DQV dq;  // (n, E)
  View3<T, M> dq_part;
  int batch, patches, n, e;
  A scale;
  KOKKOS_INLINE_FUNCTION void operator()(const int idx) const {
    const int j = idx / e, c = idx % e;
    A acc = 0;
    for (int b = 0; b < batch; ++b)
      for (int p = 0; p < patches; ++p) acc += A(dq_part(b, p * n + j, c));
    dq(j, c) = value_t<DQV>(A(dq(j, c)) + scale * acc);
  }
};

template <class KVV, class QV, class T, class M>
void check_patch_pool_common(const char* op, const KVV& kv, const QV& q, const PatchTables<M>& tab, int heads,
                             const PatchPoolCache<T, M>& cache) {
  static_assert(KVV::rank == 3 && QV::rank == 2, "patch_pool_attention: kv is (B, Npix, 2E), q is (n, E)");
  static_assert(std::is_same_v<value_t<KVV>, T> && std::is_same_v<value_t<QV>, T>,
                "patch_pool_attention: kv, q and the cache hold the same scalar type");
  check_patch_grid(op, tab.grid);
  const std::size_t n = q.extent(0), e = q.extent(1);
  DCSLDM_REQUIRE(n >= 1, op, "q.extent(0) = n = ", n, ", expected >= 1 queries per patch");
  DCSLDM_REQUIRE(heads >= 1 && e >= std::size_t(heads) && e % std::size_t(heads) == 0, op, "E = q.extent(1) = ", e,
                 ", heads = ", heads, ", expected E a positive multiple of heads");
  DCSLDM_REQUIRE(tab.covers_grid(), op, "the tables cover pixels [", tab.first_pixel, ", ",
                 tab.first_pixel + tab.pixels(), ") of ", tab.grid.num_pixels(),
                 tab.scattered ? " as scattered read-out entries" : "", ", expected the whole grid");
  const std::size_t b = kv.extent(0), npix = std::size_t(tab.grid.num_pixels());
  const std::size_t rows = std::size_t(tab.grid.num_patches()) * n;
  require_extents3(op, "kv", kv, b, npix, 2 * e);
  require_unit_inner_stride(op, "kv", kv);
  require_unit_inner_stride(op, "q", q);
  require_extents3(op, "cache.out", cache.out, b, rows, e);
  require_extents3(op, "cache.lse", cache.lse, b, rows, std::size_t(heads));
  require_unit_inner_stride(op, "cache.out", cache.out);
}

}  // namespace Impl

/// Attention pooling forward. kv (B, Npix, 2E): keys in columns [0, E), values in [E, 2E), rows in the
/// pixel order of tab.grid; q (n, E) learned queries; heads divides E.
/// y (B, P*n, E) written (=): y[b, P*n + j, h-slice] = sum_{i in P} softmax_i(scale <q_j, k_i>) v_i, per head.
/// Fills cache.out (a copy of y; y may be cache.out itself) and cache.lse (B, P*n, H).
template <class ExecSpace, class KVV, class QV, class YV, class T, class M>
void patch_pool_attention_forward(const ExecSpace& space, const KVV& kv, const QV& q, const PatchTables<M>& tab,
                                  int heads, const YV& y, const PatchPoolCache<T, M>& cache) {
  const char* op = "patch_pool_attention_forward";
  Impl::check_patch_pool_common(op, kv, q, tab, heads, cache);
  static_assert(YV::rank == 3 && std::is_same_v<typename YV::value_type, T>, "patch_pool_attention: y is (B, P*n, E)");
  const int n = int(q.extent(0)), e = int(q.extent(1)), b = int(kv.extent(0));
  const int rows = tab.grid.num_patches() * n;
  Impl::require_extents3(op, "y", y, std::size_t(b), std::size_t(rows), std::size_t(e));
  const int hd = e / heads;
  using A = accum_t<T>;
  Kokkos::parallel_for("dcsldm::patch_pool_attention_forward",
                       Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<int>>(space, 0, b * rows * heads),
                       Impl::PatchPoolForward<KVV, QV, YV, T, M>{kv, q, y, cache.out, cache.lse, tab.t_start,
                                                                 tab.y_start, tab.x_start, tab.grid, n, heads, hd, e,
                                                                 A(1) / math::sqrt(A(hd))});
}

/// Attention pooling backward. dy (B, P*n, E); kv, q, tab, heads and cache as given to / filled by forward.
/// dq (n, E) accumulates (+=) in a fixed order (deterministic); dkv (B, Npix, 2E) written (=).
/// ws from make_patch_pool_workspace (overwritten).
template <class ExecSpace, class DYV, class KVV, class QV, class DQV, class DKVV, class T, class M>
void patch_pool_attention_backward(const ExecSpace& space, const DYV& dy, const KVV& kv, const QV& q, const DQV& dq,
                                   const PatchTables<M>& tab, int heads, const PatchPoolCache<T, M>& cache,
                                   const PatchPoolWorkspace<T, M>& ws, const DKVV& dkv) {
  const char* op = "patch_pool_attention_backward";
  Impl::check_patch_pool_common(op, kv, q, tab, heads, cache);
  static_assert(DYV::rank == 3 && DQV::rank == 2 && DKVV::rank == 3,
                "patch_pool_attention_backward: dy (B, P*n, E), dq (n, E), dkv (B, Npix, 2E)");
  static_assert(std::is_same_v<value_t<DYV>, T> && std::is_same_v<typename DQV::value_type, T> &&
                    std::is_same_v<typename DKVV::value_type, T>,
                "patch_pool_attention_backward: dy, dq, dkv hold the cache's scalar type");
  const int n = int(q.extent(0)), e = int(q.extent(1)), b = int(kv.extent(0));
  const int patches = tab.grid.num_patches(), rows = patches * n, npix = tab.grid.num_pixels();
  Impl::require_extents3(op, "dy", dy, std::size_t(b), std::size_t(rows), std::size_t(e));
  Impl::require_unit_inner_stride(op, "dy", dy);
  Impl::require_extents2(op, "dq", dq, std::size_t(n), std::size_t(e));
  Impl::require_extents3(op, "dkv", dkv, std::size_t(b), std::size_t(npix), std::size_t(2 * e));
  Impl::require_extents3(op, "ws.delta", ws.delta, std::size_t(b), std::size_t(rows), std::size_t(heads));
  Impl::require_extents3(op, "ws.dq_part", ws.dq_part, std::size_t(b), std::size_t(rows), std::size_t(e));
  const int hd = e / heads;
  using A = accum_t<T>;
  using Policy = Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<int>>;
  const A scale = A(1) / math::sqrt(A(hd));
  Kokkos::parallel_for("dcsldm::patch_pool_attention_backward_dq_partial", Policy(space, 0, b * rows * heads),
                       Impl::PatchPoolDqPartial<DYV, KVV, QV, T, M>{dy, kv, q, cache.out, cache.lse, ws.delta,
                                                                    ws.dq_part, tab.t_start, tab.y_start, tab.x_start,
                                                                    tab.grid, n, heads, hd, e, scale});
  Kokkos::parallel_for("dcsldm::patch_pool_attention_backward_dkv", Policy(space, 0, b * npix * heads),
                       Impl::PatchPoolDkv<DYV, KVV, QV, DKVV, T, M>{dy, kv, q, dkv, cache.lse, ws.delta,
                                                                    tab.pixel_patch, npix, n, heads, hd, e, scale});
  Kokkos::parallel_for("dcsldm::patch_pool_attention_backward_dq", Policy(space, 0, n * e),
                       Impl::PatchPoolDqReduce<DQV, T, M>{dq, ws.dq_part, b, patches, n, e, scale});
}

}  // namespace dcsldm::tok
