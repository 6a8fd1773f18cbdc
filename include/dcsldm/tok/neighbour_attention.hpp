// dcsldm/tok/neighbour_attention.hpp: per-pixel multi-head attention over the tokens of the pixel's patch
// and of its neighbouring patches, with a learned key bias per (offset, token slot): the read of DCS-Tok's
// 1D depatchifier (decoder side). The output pixel grid is arbitrary, which is what lets the decoder
// render any resolution; the cost is linear in output pixels.
//
// Zhong et al. 2025 ("Decoupling Complexity from Scale in Latent Diffusion Model"): one query per output
// pixel cross-attends to the tokens of its patch (ours: and of the 26 neighbouring patches, so that there
// are no seams). With E = heads * hd, scale = 1 / sqrt(hd), offsets (dt, dy, dx) in {-1, 0, 1}^3 numbered
// o = ((dt+1) * 3 + (dy+1)) * 3 + (dx+1), for batch b, pixel i in patch (pt, py, px), head h:
//   K_(o,j) = kv[b, Pnb(o)*n + j, 0:E] + rel[o*n + j],  V_(o,j) = kv[b, Pnb(o)*n + j, E:2E],
//   y[b, i, h-slice] = sum_(o,j) softmax_(o,j)(scale <q_i, K_(o,j)>) V_(o,j)   (h-slices throughout),
// over the offsets whose neighbour Pnb(o) = (pt+dt, py+dy, px+dx) lies inside the patch grid.
// (PyTorch reference: an explicit gather of the 27 n keys with a validity mask and F.softmax.)
//
// Backward recomputes the probabilities from the saved lse: a = exp(s - lse),
// dp_(o,j) = <dy_i, V_(o,j)>, D_i = sum a dp (= <dy_i, y_i>), ds = a (dp - D_i);
//   dq_i  = scale sum_b sum_(o,j) ds K_(o,j)         (one thread per (pixel, head), b in order),
//   dk, dv of token (P, j): gathers over the pixels of the (up to 27) patches that see P,
//   drel[o*n + j] += scale sum_b sum_i ds q_i          (per-(b, o, j) partials, then a fixed-order sum over b).
// On host spaces one pass per (patch, head) computes all of it from each pixel's probabilities once: dq, and
// the patch's share of dk | dv of the (up to 27 n) keys it reads, stored per (b, patch, key slot) and summed
// afterwards in a fixed order into dkv and drel (the workspace's kv_part; the other kernels serve devices).
// No float atomics; every output element is summed by one thread in a fixed order.
#pragma once

#include <dcsldm/core/compat.hpp>
#include <dcsldm/core/fast_math.hpp>
#include <dcsldm/core/error.hpp>
#include <dcsldm/core/types.hpp>
#include <dcsldm/tok/patch_grid.hpp>

#include <cstddef>
#include <type_traits>

namespace dcsldm::tok {

/// Number of neighbour offsets (dt, dy, dx) in {-1, 0, 1}^3.
inline constexpr int neighbour_offsets = 27;

/// Saved by neighbour_attention_forward, read by backward.
template <class T, class M>
struct NeighbourCache {
  View3<T, M> lse;  ///< (B, Npix, H) log-sum-exp of each pixel's scaled scores, per head
};

/// Scratch of neighbour_attention_backward (contents are not preserved between calls).
template <class T, class M>
struct NeighbourWorkspace {
  View3<T, M> delta;      ///< (B, Npix, H) D = <dy, y> per pixel and head
  View3<T, M> drel_part;  ///< (B, 27*n, E) per-batch partial of drel (per-pixel kernels)
  View4<T, M> kv_part;    ///< (B, P, 27*n, 2E) per-(patch, key) partial dk | dv (host patch kernel; empty elsewhere)
};

/// Allocates the cache for batch B, `pixels` output pixels (a whole grid or a tile), n tokens per patch,
/// width E, H heads (host call).
template <class T, class M>
NeighbourCache<T, M> make_neighbour_cache(std::size_t batch, int pixels, int n, int e, int heads) {
  DCSLDM_REQUIRE(n >= 1 && heads >= 1 && e >= heads && e % heads == 0, "make_neighbour_cache", "n = ", n, ", E = ", e,
                 ", heads = ", heads, ", expected n >= 1 and E a positive multiple of heads");
  return {View3<T, M>("dcsldm::neighbour_lse", batch, std::size_t(pixels), std::size_t(heads))};
}
/// The cache of every pixel of grid g.
template <class T, class M>
NeighbourCache<T, M> make_neighbour_cache(std::size_t batch, const PatchGrid& g, int n, int e, int heads) {
  return make_neighbour_cache<T, M>(batch, g.num_pixels(), n, e, heads);
}

/// Allocates the backward workspace (host call) for `pixels` pixels of grid g (all of them, or a window of a
/// training decode): B*pixels*H + B*27*n*E elements, and in HostSpace memory also the B*P*27*n*2E partials of
/// the host patch kernel (P = g.num_patches(): fixed by k, not by the resolution).
template <class T, class M>
NeighbourWorkspace<T, M> make_neighbour_workspace(std::size_t batch, const PatchGrid& g, int pixels, int n, int e,
                                                  int heads) {
  DCSLDM_REQUIRE(n >= 1 && heads >= 1 && e >= heads && e % heads == 0, "make_neighbour_workspace", "n = ", n,
                 ", E = ", e, ", heads = ", heads, ", expected n >= 1 and E a positive multiple of heads");
  const std::size_t rr = std::size_t(neighbour_offsets) * std::size_t(n);
  DCSLDM_REQUIRE(pixels >= 1 && pixels <= g.num_pixels(), "make_neighbour_workspace", "pixels = ", pixels,
                 ", expected 1..", g.num_pixels(), " (the grid's pixels)");
  NeighbourWorkspace<T, M> ws{View3<T, M>("dcsldm::neighbour_delta", batch, std::size_t(pixels), std::size_t(heads)),
                              View3<T, M>("dcsldm::neighbour_drel_part", batch, rr, std::size_t(e)), View4<T, M>()};
  if constexpr (std::is_same_v<M, Kokkos::HostSpace>)
    ws.kv_part = View4<T, M>(Kokkos::view_alloc(Kokkos::WithoutInitializing, "dcsldm::neighbour_kv_part"), batch,
                             std::size_t(g.num_patches()), rr, std::size_t(2 * e));
  return ws;
}
/// The workspace of a backward over every pixel of grid g.
template <class T, class M>
NeighbourWorkspace<T, M> make_neighbour_workspace(std::size_t batch, const PatchGrid& g, int n, int e, int heads) {
  return make_neighbour_workspace<T, M>(batch, g, g.num_pixels(), n, e, heads);
}

namespace Impl {

/// sum_d q[d] * (k[d] + r[d]): the score of a query against a biased key (one formula everywhere).
template <class A, class TQ, class TK, class TR>
KOKKOS_INLINE_FUNCTION A biased_dot(const TQ* q, const TK* k, const TR* r, int n) {
  A s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int d = 0;
  for (; d + 4 <= n; d += 4) {
    s0 += A(q[d]) * (A(k[d]) + A(r[d]));
    s1 += A(q[d + 1]) * (A(k[d + 1]) + A(r[d + 1]));
    s2 += A(q[d + 2]) * (A(k[d + 2]) + A(r[d + 2]));
    s3 += A(q[d + 3]) * (A(k[d + 3]) + A(r[d + 3]));
  }
  for (; d < n; ++d) s0 += A(q[d]) * (A(k[d]) + A(r[d]));
  return (s0 + s1) + (s2 + s3);
}

/// Patch coordinates of a flat patch index.
struct PatchCoord {
  int t, y, x;
  KOKKOS_INLINE_FUNCTION PatchCoord(int p, const PatchGrid& g) : t(p / (g.gw * g.gh)), y((p / g.gw) % g.gh), x(p % g.gw) {}
  /// The flat index of the neighbour at offset o = ((dt+1)*3 + (dy+1))*3 + (dx+1), or -1 outside the grid.
  KOKKOS_INLINE_FUNCTION int neighbour(int o, const PatchGrid& g) const {
    const int nt = t + o / 9 - 1, ny = y + (o / 3) % 3 - 1, nx = x + o % 3 - 1;
    if (nt < 0 || nt >= g.gt || ny < 0 || ny >= g.gh || nx < 0 || nx >= g.gw) return -1;
    return (nt * g.gh + ny) * g.gw + nx;
  }
};

/// Forward: one thread per (b, pixel, head); online softmax over the valid (offset, slot) keys (devices,
/// and host spaces beyond NeighbourForwardPatches' limits).
template <class QV, class KVV, class RV, class YV, class T, class M>
struct NeighbourForward {
  using A = accum_t<T>;
  QV q;    // (Npix, E)
  KVV kv;  // (B, P*n, 2E)
  RV rel;  // (27n, E)
  YV y;    // (B, Npix, E)
  View3<T, M> lse;
  Kokkos::View<int*, M> pixel_patch;
  PatchGrid g;
  int npix, n, heads, hd, e;
  A scale;

  KOKKOS_INLINE_FUNCTION void operator()(const int idx) const {
    constexpr int C = pixel_attention_chunk;
    const int h = idx % heads, r = idx / heads, i = r % npix, b = r / npix;
    const PatchCoord pc(pixel_patch(i), g);
    const auto* qi = &q(i, h * hd);
    for (int d0 = 0; d0 < hd; d0 += C) {
      const int cw = math::min(C, hd - d0);
      A acc[C];
      for (int c = 0; c < C; ++c) acc[c] = 0;
      A m = 0, l = 0;
      bool first = true;
      for (int o = 0; o < neighbour_offsets; ++o) {
        const int pnb = pc.neighbour(o, g);
        if (pnb < 0) continue;
        for (int j = 0; j < n; ++j) {
          const A s = scale * biased_dot<A>(qi, &kv(b, pnb * n + j, h * hd), &rel(o * n + j, h * hd), hd);
          const auto* vj = &kv(b, pnb * n + j, e + h * hd + d0);
          if (first || s > m) {
            const A f = first ? A(0) : math::exp_acc(m - s);
            l *= f;
            for (int c = 0; c < cw; ++c) acc[c] *= f;
            m = s;
            first = false;
          }
          const A p = math::exp_acc(s - m);
          l += p;
          for (int c = 0; c < cw; ++c) acc[c] += p * A(vj[c]);
        }
      }
      const A inv = A(1) / l;
      for (int c = 0; c < cw; ++c) y(b, i, h * hd + d0 + c) = T(acc[c] * inv);
      if (d0 == 0) lse(b, i, h) = T(m + math::log(l));
    }
  }
};

/// Forward on host spaces: one work item per (b, patch, head). The pixels of a patch share their keys, so the
/// item builds the biased keys K_(o,j) + rel once, transposed (hd x keys, padded to a multiple of 8 with
/// zeros), and then runs each of the patch's pixels (those inside the tables' pixel range) as contiguous
/// loops over the keys: scores, maximum, exp, the weighted sum of the value rows. Limits: 27 n <= 64 keys,
/// hd <= 64 (the local arrays).
template <class QV, class KVV, class RV, class YV, class T, class M>
struct NeighbourForwardPatches {
  using A = accum_t<T>;
  static constexpr int max_keys = 64, max_dim = 64;
  QV q;    // (Npix, E)
  KVV kv;  // (B, P*n, 2E)
  RV rel;  // (27n, E)
  YV y;    // (B, Npix, E)
  View3<T, M> lse;
  Kokkos::View<int*, M> ts, ys, xs;
  PatchGrid g;
  int first, npix, n, heads, hd, e;
  A scale;

  static bool applies(int n, int hd) { return neighbour_offsets * n <= max_keys && hd <= max_dim; }

  void operator()(const int idx) const {
    const int h = idx % heads, r = idx / heads, np = g.num_patches(), p = r % np, b = r / np;
    const PatchCoord pc(p, g);
    // The patch's pixel rows (t, y) and columns, clipped to the tables' flat range [first, first + npix).
    const long long f0 = first, f1 = (long long)first + npix;
    const int t0 = ts(pc.t), t1 = ts(pc.t + 1), y0 = ys(pc.y), y1 = ys(pc.y + 1), x0 = xs(pc.x), x1 = xs(pc.x + 1);
    if (t0 >= t1 || y0 >= y1 || x0 >= x1) return;  // no entry of this patch (a neighbour pass's grid of entries)
    if ((((long long)t1 - 1) * g.h + (y1 - 1)) * g.w + (x1 - 1) < f0 || ((long long)t0 * g.h + y0) * g.w + x0 >= f1)
      return;
    A kt[max_dim * max_keys];
    const T* vrow[max_keys];
    int nk = 0;
    for (int o = 0; o < neighbour_offsets; ++o) {
      const int pnb = pc.neighbour(o, g);
      if (pnb < 0) continue;
      for (int j = 0; j < n; ++j, ++nk) {
        const auto* kr = &kv(b, pnb * n + j, h * hd);
        const auto* rr = &rel(o * n + j, h * hd);
        for (int d = 0; d < hd; ++d) kt[d * max_keys + nk] = A(kr[d]) + A(rr[d]);
        vrow[nk] = &kv(b, pnb * n + j, e + h * hd);
      }
    }
    // Score vectors of a fixed length (32 or 64; a 16-key form for an image's 9 neighbours measured slower),
    // so they stay in registers.
    const int nkp = nk <= 32 ? 32 : max_keys;
    for (int d = 0; d < hd; ++d)
      for (int k = nk; k < nkp; ++k) kt[d * max_keys + k] = A(0);
    const Range rg{t0, t1, y0, y1, x0, x1};
    if (nkp == 32) {
      if (hd == 16) pixels<32, 16>(b, h, kt, vrow, nk, rg);
      else if (hd == 32) pixels<32, 32>(b, h, kt, vrow, nk, rg);
      else pixels<32, 0>(b, h, kt, vrow, nk, rg);
    } else {
      if (hd == 16) pixels<max_keys, 16>(b, h, kt, vrow, nk, rg);
      else if (hd == 32) pixels<max_keys, 32>(b, h, kt, vrow, nk, rg);
      else pixels<max_keys, 0>(b, h, kt, vrow, nk, rg);
    }
  }

  struct Range {
    int t0, t1, y0, y1, x0, x1;
  };

  /// The patch's pixels inside the tables' range, with NK (>= nk, padded keys have zero scores and zero
  /// weight) keys and HD = hd (0: hd at run time).
  template <int NK, int HD>
  void pixels(int b, int h, const A* kt, const T* const* vrow, int nk, const Range& rg) const {
#if defined(__AVX512F__)
    if constexpr (NK == 32 && HD == 16 && std::is_same_v<T, float> && std::is_same_v<A, float>) {
      pixels_avx512_32x16(b, h, kt, vrow, nk, rg);
      return;
    }
#endif
    const int hdr = HD > 0 ? HD : hd;
    A s[NK], acc[HD > 0 ? HD : max_dim];
    for_each_pixel(rg, [&](const int li) {
      const auto* qi = &q(li, h * hd);
      for (int k = 0; k < NK; ++k) s[k] = A(0);
      for (int d = 0; d < hdr; ++d) {
        const A qd = scale * A(qi[d]);
        const A* KOKKOS_RESTRICT kd = kt + d * max_keys;
        for (int k = 0; k < NK; ++k) s[k] += qd * kd[k];
      }
      A m = Kokkos::reduction_identity<A>::max();
      for (int k = 0; k < NK; ++k) m = (k < nk && s[k] > m) ? s[k] : m;
      A l = 0;
      for (int k = 0; k < NK; ++k) {
        const A w = math::exp_acc(s[k] - m);
        s[k] = k < nk ? w : A(0);
        l += s[k];
      }
      for (int d = 0; d < hdr; ++d) acc[d] = A(0);
      for (int k = 0; k < nk; ++k) {
        const T* KOKKOS_RESTRICT v = vrow[k];
        for (int d = 0; d < hdr; ++d) acc[d] += s[k] * A(v[d]);
      }
      const A inv = A(1) / l;
      auto* yi = &y(b, li, h * hd);
      for (int d = 0; d < hdr; ++d) yi[d] = T(acc[d] * inv);
      lse(b, li, h) = T(m + math::log(l));
    });
  }

  /// f(li) for the patch's pixels inside the tables' flat range [first, first + npix), li relative to first.
  template <class F>
  void for_each_pixel(const Range& rg, const F& f) const {
    const long long f0 = first, f1 = (long long)first + npix;
    for (int t = rg.t0; t < rg.t1; ++t)
      for (int yy = rg.y0; yy < rg.y1; ++yy) {
        const long long row = ((long long)t * g.h + yy) * g.w;
        const int xa = int(row + rg.x0 < f0 ? f0 - row : rg.x0), xb = int(row + rg.x1 > f1 ? f1 - row : rg.x1);
        for (int x = xa; x < xb; ++x) f(int(row + x - f0));
      }
  }

#if defined(__AVX512F__)
  /// pixels<32, 16> for float with AVX-512 (the shipped models' shape: up to 32 keys, head dimension 16): the
  /// scores of a pixel in two registers, the softmax on them (keys past nk masked), the weighted value sum in
  /// four accumulators (keys round-robin) added at the end. The generic loop keeps the scores in memory and
  /// reduces them with scalar code (decode at 112 px, batch 1: 13.2 ms with it, 10.3 with this; docs/performance.md).
  void pixels_avx512_32x16(int b, int h, const float* kt, const float* const* vrow, int nk, const Range& rg) const {
    const __mmask16 valid0 = math::lane_mask(nk), valid1 = math::lane_mask(nk - 16);
    const __m512 lowest = _mm512_set1_ps(-3.0e38f), vscale = _mm512_set1_ps(float(scale));
    alignas(64) float w[32];
    for_each_pixel(rg, [&](const int li) {
      const float* qi = &q(li, h * hd);
      __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
      for (int d = 0; d < 16; ++d) {
        const __m512 qd = _mm512_set1_ps(qi[d]);
        s0 = _mm512_fmadd_ps(qd, _mm512_loadu_ps(kt + d * max_keys), s0);
        s1 = _mm512_fmadd_ps(qd, _mm512_loadu_ps(kt + d * max_keys + 16), s1);
      }
      s0 = _mm512_mask_mov_ps(lowest, valid0, _mm512_mul_ps(s0, vscale));
      s1 = _mm512_mask_mov_ps(lowest, valid1, _mm512_mul_ps(s1, vscale));
      const float m = _mm512_reduce_max_ps(_mm512_max_ps(s0, s1));
      const __m512 vm = _mm512_set1_ps(m);
      const __m512 w0 = _mm512_maskz_mov_ps(valid0, math::fast_exp_avx512(_mm512_sub_ps(s0, vm)));
      const __m512 w1 = _mm512_maskz_mov_ps(valid1, math::fast_exp_avx512(_mm512_sub_ps(s1, vm)));
      const float l = _mm512_reduce_add_ps(_mm512_add_ps(w0, w1));
      _mm512_store_ps(w, w0);
      _mm512_store_ps(w + 16, w1);
      __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
      int k = 0;
      for (; k + 4 <= nk; k += 4)
        for (int u = 0; u < 4; ++u)
          acc[u] = _mm512_fmadd_ps(_mm512_set1_ps(w[k + u]), _mm512_loadu_ps(vrow[k + u]), acc[u]);
      for (int u = 0; k < nk; ++k, ++u)
        acc[u] = _mm512_fmadd_ps(_mm512_set1_ps(w[k]), _mm512_loadu_ps(vrow[k]), acc[u]);
      const __m512 sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
      _mm512_storeu_ps(&y(b, li, h * hd), _mm512_mul_ps(sum, _mm512_set1_ps(1.0f / l)));
      lse(b, li, h) = m + math::log(l);
    });
  }
#endif
};

/// Shared part of the backward kernels: the views and the probability / score-gradient of one key.
template <class DYV, class QV, class KVV, class RV, class T, class M>
struct NeighbourBackwardBase {
  using A = accum_t<T>;
  DYV dy;  // (B, Npix, E)
  QV q;    // (Npix, E)
  KVV kv;  // (B, P*n, 2E)
  RV rel;  // (27n, E)
  View3<T, M> lse, delta;
  Kokkos::View<int*, M> pixel_patch, ts, ys, xs;
  PatchGrid g;
  int n, heads, hd, e;
  A scale;
  int first, npix;  // the pixels [first, first + npix) the tables cover; dy, q, lse, delta rows are local

  /// The columns [xa, xb) of pixel row (t, yy) clipped from [x0, x1) to the covered range (empty: xa >= xb),
  /// and the row's local index base (local pixel = base + x).
  KOKKOS_INLINE_FUNCTION void clip_row(int t, int yy, int x0, int x1, int& xa, int& xb, long long& base) const {
    const long long row = ((long long)t * g.h + yy) * g.w, f0 = first, f1 = (long long)first + npix;
    xa = row + x0 < f0 ? int(f0 - row) : x0;
    xb = row + x1 > f1 ? int(f1 - row) : x1;
    base = row - f0;
  }

  /// a = exp(s - lse) and dp = <dy_i, v> of pixel i against token row `row` at offset o (head h).
  KOKKOS_INLINE_FUNCTION void prob(int b, int i, int h, int o, int row, A& a, A& dp) const {
    const A s = scale * biased_dot<A>(&q(i, h * hd), &kv(b, row, h * hd), &rel(o * n + row % n, h * hd), hd);
    a = math::exp_acc(s - A(lse(b, i, h)));
    dp = dot_n<A>(&dy(b, i, h * hd), &kv(b, row, e + h * hd), hd);
  }
};

/// Backward 1: one thread per (pixel i, head h): D_i for every b (into ws.delta) and
/// dq_i = scale sum_b sum_(o,j) ds K_(o,j) (=), b in order.
template <class DYV, class QV, class KVV, class RV, class DQV, class T, class M>
struct NeighbourDq : NeighbourBackwardBase<DYV, QV, KVV, RV, T, M> {
  using Base = NeighbourBackwardBase<DYV, QV, KVV, RV, T, M>;
  using A = typename Base::A;
  DQV dq;  // (Npix, E)
  int batch;

  NeighbourDq(const Base& base, const DQV& dq_, int batch_) : Base(base), dq(dq_), batch(batch_) {}

  KOKKOS_INLINE_FUNCTION void operator()(const int idx) const {
    constexpr int C = pixel_attention_chunk;
    const PatchGrid& gr = this->g;
    const int nq = this->n, hdim = this->hd;
    const int h = idx % this->heads, i = idx / this->heads;
    const PatchCoord pc(this->pixel_patch(i), gr);
    for (int d0 = 0; d0 < hdim; d0 += C) {
      const int cw = math::min(C, hdim - d0);
      A acc[C];
      for (int c = 0; c < C; ++c) acc[c] = 0;
      for (int b = 0; b < batch; ++b) {
        if (d0 == 0) {  // D_i = sum a dp, stored once; every later use reads the same rounded value
          A sum = 0;
          for (int o = 0; o < neighbour_offsets; ++o) {
            const int pnb = pc.neighbour(o, gr);
            if (pnb < 0) continue;
            for (int j = 0; j < nq; ++j) {
              A a, dp;
              this->prob(b, i, h, o, pnb * nq + j, a, dp);
              sum += a * dp;
            }
          }
          this->delta(b, i, h) = T(sum);
        }
        const A dd = A(this->delta(b, i, h));
        for (int o = 0; o < neighbour_offsets; ++o) {
          const int pnb = pc.neighbour(o, gr);
          if (pnb < 0) continue;
          for (int j = 0; j < nq; ++j) {
            const int row = pnb * nq + j;
            A a, dp;
            this->prob(b, i, h, o, row, a, dp);
            const A ds = a * (dp - dd);
            const auto* kj = &this->kv(b, row, h * hdim + d0);
            const auto* rj = &this->rel(o * nq + j, h * hdim + d0);
            for (int c = 0; c < cw; ++c) acc[c] += ds * (A(kj[c]) + A(rj[c]));
          }
        }
      }
      for (int c = 0; c < cw; ++c) dq(i, h * hdim + d0 + c) = value_t<DQV>(this->scale * acc[c]);
    }
  }
};

/// Backward on host spaces: one work item per (patch, head), b in order inside. For each b it builds the
/// patch's biased keys (transposed and as rows) and values (transposed) once, then runs the patch's pixels
/// with fixed-length key vectors: p = exp(s - lse), dp = <dy_i, v>, D_i (into ws.delta), dS = p (dp - D_i);
/// dq_i (=, then += for later b; scaled after the last b); and the patch's share of the gradients of the keys
/// it reads, sum_i dS q_i | sum_i p dy_i, summed over its pixels on the stack and stored (unscaled) to
/// part[b, patch, o*n + j] (the other slots are left alone). NeighbourKvFromParts and NeighbourDrelFromParts
/// sum the partials in a fixed order. Limits: 27 n <= 64 keys, hd <= 64, T its own accumulation type.
template <class DYV, class QV, class KVV, class RV, class DQV, class T, class M>
struct NeighbourBackwardPatches : NeighbourBackwardBase<DYV, QV, KVV, RV, T, M> {
  using Base = NeighbourBackwardBase<DYV, QV, KVV, RV, T, M>;
  using A = typename Base::A;
  static constexpr int max_keys = 64, max_dim = 64;
  DQV dq;             // (Npix, E)
  View4<T, M> part;   // (B, P, 27n, 2E)
  int batch;

  NeighbourBackwardPatches(const Base& base, const DQV& dq_, const View4<T, M>& part_, int batch_)
      : Base(base), dq(dq_), part(part_), batch(batch_) {}

  static bool applies(int n, int hd) {
    return neighbour_offsets * n <= max_keys && hd <= max_dim && std::is_same_v<A, T>;
  }

  void operator()(const int idx) const {
    const int h = idx % this->heads, p = idx / this->heads;
    const PatchCoord pc(p, this->g);
    int nk = 0;
    for (int o = 0; o < neighbour_offsets; ++o) nk += pc.neighbour(o, this->g) >= 0 ? this->n : 0;
    const int hd = this->hd;
    if (nk <= 32) {
      if (hd == 16) run<32, 16>(h, p, pc);
      else run<32, 0>(h, p, pc);
    } else {
      if (hd == 16) run<max_keys, 16>(h, p, pc);
      else run<max_keys, 0>(h, p, pc);
    }
  }

  template <int NK, int HD>
  void run(const int h, const int p, const PatchCoord& pc) const {
    constexpr int HM = HD > 0 ? HD : max_dim;
    const PatchGrid& g = this->g;
    const int n = this->n, hd = HD > 0 ? HD : this->hd, c0 = h * this->hd, e = this->e;
    const A scale = this->scale;
    A kt[max_dim * NK], vt[max_dim * NK], kb[NK * HM], gk[NK * HM], gv[NK * HM];
    A s[NK], dp[NK], pr[NK], acc0[HM], acc1[HM];
    int slot[NK];
    const int t0 = this->ts(pc.t), t1 = this->ts(pc.t + 1), y0 = this->ys(pc.y), y1 = this->ys(pc.y + 1);
    const int x0 = this->xs(pc.x), x1 = this->xs(pc.x + 1);
    for (int b = 0; b < batch; ++b) {
      int nk = 0;
      for (int o = 0; o < neighbour_offsets; ++o) {
        const int pnb = pc.neighbour(o, g);
        if (pnb < 0) continue;
        for (int j = 0; j < n; ++j, ++nk) {
          const auto* kr = &this->kv(b, pnb * n + j, c0);
          const auto* rr = &this->rel(o * n + j, c0);
          const auto* vr = &this->kv(b, pnb * n + j, e + c0);
          slot[nk] = o * n + j;
          for (int d = 0; d < hd; ++d) {
            const A kd = A(kr[d]) + A(rr[d]);
            kb[nk * hd + d] = kd;
            kt[d * NK + nk] = kd;
            vt[d * NK + nk] = A(vr[d]);
            gk[nk * hd + d] = gv[nk * hd + d] = A(0);
          }
        }
      }
      for (int d = 0; d < hd; ++d)
        for (int k = nk; k < NK; ++k) kt[d * NK + k] = vt[d * NK + k] = A(0);
      for (int t = t0; t < t1; ++t)
        for (int yy = y0; yy < y1; ++yy) {
          int xa, xb;
          long long base;
          this->clip_row(t, yy, x0, x1, xa, xb, base);
          for (int x = xa; x < xb; ++x) {
            const int i = int(base + x);
            const auto* qi = &this->q(i, c0);
            const auto* dyi = &this->dy(b, i, c0);
            for (int k = 0; k < NK; ++k) s[k] = dp[k] = A(0);
            for (int d = 0; d < hd; ++d) {
              const A qd = scale * A(qi[d]), gd = A(dyi[d]);
              const A* KOKKOS_RESTRICT kd = kt + d * NK;
              const A* KOKKOS_RESTRICT vd = vt + d * NK;
              for (int k = 0; k < NK; ++k) {
                s[k] += qd * kd[k];
                dp[k] += gd * vd[k];
              }
            }
            const A l = A(this->lse(b, i, h));
            A psum[8];
            for (int k = 0; k < 8; ++k) psum[k] = A(0);
            for (int k0 = 0; k0 < NK; k0 += 8)
              for (int k = 0; k < 8; ++k) {
                const A a = math::exp_acc(s[k0 + k] - l);
                pr[k0 + k] = k0 + k < nk ? a : A(0);
                psum[k] += pr[k0 + k] * dp[k0 + k];
              }
            const T delta = T(((psum[0] + psum[1]) + (psum[2] + psum[3])) + ((psum[4] + psum[5]) + (psum[6] + psum[7])));
            this->delta(b, i, h) = delta;
            for (int k = 0; k < NK; ++k) s[k] = pr[k] * (dp[k] - A(delta));  // dS (0 on padded keys)
            for (int d = 0; d < hd; ++d) acc0[d] = acc1[d] = A(0);
            int k = 0;
            for (; k + 2 <= nk; k += 2) {
              const A* KOKKOS_RESTRICT k0r = kb + k * hd;
              const A* KOKKOS_RESTRICT k1r = kb + (k + 1) * hd;
              for (int d = 0; d < hd; ++d) {
                acc0[d] += s[k] * k0r[d];
                acc1[d] += s[k + 1] * k1r[d];
              }
            }
            if (k < nk)
              for (int d = 0; d < hd; ++d) acc0[d] += s[k] * kb[k * hd + d];
            auto* dqi = &dq(i, c0);
            if (b == 0)
              for (int d = 0; d < hd; ++d) dqi[d] = value_t<DQV>(acc0[d] + acc1[d]);
            else
              for (int d = 0; d < hd; ++d) dqi[d] = value_t<DQV>(A(dqi[d]) + (acc0[d] + acc1[d]));
            if (b == batch - 1)
              for (int d = 0; d < hd; ++d) dqi[d] = value_t<DQV>(scale * A(dqi[d]));
            // The keys' gradients: outer products of this pixel's dS and p with its q and dy.
            for (int kk = 0; kk < nk; ++kk) {
              A* KOKKOS_RESTRICT gkr = gk + kk * hd;
              A* KOKKOS_RESTRICT gvr = gv + kk * hd;
              const A sk = s[kk], pk = pr[kk];
              for (int d = 0; d < hd; ++d) {
                gkr[d] += sk * A(qi[d]);
                gvr[d] += pk * A(dyi[d]);
              }
            }
          }
        }
      for (int kk = 0; kk < nk; ++kk) {
        T* dst = &part(b, p, slot[kk], 0);
        for (int d = 0; d < hd; ++d) {
          dst[c0 + d] = T(gk[kk * hd + d]);
          dst[e + c0 + d] = T(gv[kk * hd + d]);
        }
      }
    }
  }
};

/// After NeighbourBackwardPatches, one work item per (b, token row P*n + j): dkv[b, row] = scale * sum dk |
/// sum dv of part[b, P - offset(o), o*n + j] over the offsets o (in order) whose source patch lies inside the
/// grid.
template <class DKVV, class T, class M>
struct NeighbourKvFromParts {
  using A = accum_t<T>;
  DKVV dkv;          // (B, P*n, 2E)
  View4<T, M> part;  // (B, P, 27n, 2E)
  PatchGrid g;
  int n, e;
  A scale;

  void operator()(const int idx) const {
    const int rows = g.num_patches() * n, row = idx % rows, b = idx / rows, j = row % n;
    const PatchCoord tc(row / n, g);
    auto* out = &dkv(b, row, 0);
    for (int c = 0; c < 2 * e; ++c) out[c] = value_t<DKVV>(0);
    for (int o = 0; o < neighbour_offsets; ++o) {
      // The pixels of patch P' = token patch - offset see this token at offset o.
      const int st = tc.t - (o / 9 - 1), sy = tc.y - ((o / 3) % 3 - 1), sx = tc.x - (o % 3 - 1);
      if (st < 0 || st >= g.gt || sy < 0 || sy >= g.gh || sx < 0 || sx >= g.gw) continue;
      const T* src = &part(b, (st * g.gh + sy) * g.gw + sx, o * n + j, 0);
      for (int c = 0; c < 2 * e; ++c) out[c] = value_t<DKVV>(A(out[c]) + A(src[c]));
    }
    for (int c = 0; c < e; ++c) out[c] = value_t<DKVV>(scale * A(out[c]));
  }
};

/// After NeighbourBackwardPatches, one work item per (key slot o*n + j, 16-column block): drel[slot, c] +=
/// scale * sum_b sum_P part[b, P, slot, c] over the patches P (in order) whose neighbour at offset o lies inside
/// the grid.
template <class DRV, class T, class M>
struct NeighbourDrelFromParts {
  using A = accum_t<T>;
  static constexpr int W = 16;
  DRV drel;          // (27n, E)
  View4<T, M> part;  // (B, P, 27n, 2E)
  PatchGrid g;
  int batch, n, e;
  A scale;

  void operator()(const int idx) const {
    const int blocks = (e + W - 1) / W, r = idx / blocks, c0 = (idx % blocks) * W, w = e - c0 < W ? e - c0 : W;
    const int o = r / n;
    A acc[W];
    for (int c = 0; c < W; ++c) acc[c] = A(0);
    for (int b = 0; b < batch; ++b)
      for (int p = 0; p < g.num_patches(); ++p) {
        if (PatchCoord(p, g).neighbour(o, g) < 0) continue;
        const T* src = &part(b, p, r, c0);
        for (int c = 0; c < w; ++c) acc[c] += A(src[c]);
      }
    for (int c = 0; c < w; ++c) drel(r, c0 + c) = value_t<DRV>(A(drel(r, c0 + c)) + scale * acc[c]);
  }
};

/// Backward 2: one thread per (b, token row P*n + j, head h): gathers over the pixels of the patches that
/// see patch P (P - offset, for every offset) dv = sum a dy_i, dk = scale sum ds q_i (=).
template <class DYV, class QV, class KVV, class RV, class DKVV, class T, class M>
struct NeighbourDkv : NeighbourBackwardBase<DYV, QV, KVV, RV, T, M> {
  using Base = NeighbourBackwardBase<DYV, QV, KVV, RV, T, M>;
  using A = typename Base::A;
  DKVV dkv;  // (B, P*n, 2E)

  NeighbourDkv(const Base& base, const DKVV& dkv_) : Base(base), dkv(dkv_) {}

  KOKKOS_INLINE_FUNCTION void operator()(const int idx) const {
    constexpr int C = pixel_attention_chunk;
    const PatchGrid& gr = this->g;
    const int nq = this->n, hdim = this->hd, ew = this->e;
    const int rows = gr.num_patches() * nq;
    const int h = idx % this->heads, r = idx / this->heads, row = r % rows, b = r / rows;
    const PatchCoord tc(row / nq, gr);
    for (int d0 = 0; d0 < hdim; d0 += C) {
      const int cw = math::min(C, hdim - d0);
      A dk[C], dv[C];
      for (int c = 0; c < C; ++c) dk[c] = dv[c] = 0;
      for (int o = 0; o < neighbour_offsets; ++o) {
        // The pixels of patch P' = token patch - offset see this token at offset o.
        const int st = tc.t - (o / 9 - 1), sy = tc.y - ((o / 3) % 3 - 1), sx = tc.x - (o % 3 - 1);
        if (st < 0 || st >= gr.gt || sy < 0 || sy >= gr.gh || sx < 0 || sx >= gr.gw) continue;
        const int t1 = this->ts(st + 1), y1 = this->ys(sy + 1), x1 = this->xs(sx + 1);
        for (int t = this->ts(st); t < t1; ++t)
          for (int yy = this->ys(sy); yy < y1; ++yy) {
            int xa, xb;
            long long base;
            this->clip_row(t, yy, this->xs(sx), x1, xa, xb, base);
            for (int x = xa; x < xb; ++x) {
              const int i = int(base + x);
              A a, dp;
              this->prob(b, i, h, o, row, a, dp);
              const A ds = a * (dp - A(this->delta(b, i, h)));
              const auto* qi = &this->q(i, h * hdim + d0);
              const auto* dyi = &this->dy(b, i, h * hdim + d0);
              for (int c = 0; c < cw; ++c) {
                dv[c] += a * A(dyi[c]);
                dk[c] += ds * A(qi[c]);
              }
            }
          }
      }
      for (int c = 0; c < cw; ++c) {
        dkv(b, row, h * hdim + d0 + c) = value_t<DKVV>(this->scale * dk[c]);
        dkv(b, row, ew + h * hdim + d0 + c) = value_t<DKVV>(dv[c]);
      }
    }
  }
};

/// Backward 3: one thread per (b, o*n + j, head h): drel_part[b, o*n + j, h-slice] = scale sum_i ds q_i over
/// the pixels whose patch has a neighbour at offset o, in pixel order.
template <class DYV, class QV, class KVV, class RV, class T, class M>
struct NeighbourDrelPartial : NeighbourBackwardBase<DYV, QV, KVV, RV, T, M> {
  using Base = NeighbourBackwardBase<DYV, QV, KVV, RV, T, M>;
  using A = typename Base::A;
  View3<T, M> drel_part;  // (B, 27n, E)

  NeighbourDrelPartial(const Base& base, const View3<T, M>& part) : Base(base), drel_part(part) {}

  KOKKOS_INLINE_FUNCTION void operator()(const int idx) const {
    constexpr int C = pixel_attention_chunk;
    const PatchGrid& gr = this->g;
    const int nq = this->n, hdim = this->hd;
    const int rr = neighbour_offsets * nq;
    const int h = idx % this->heads, r = idx / this->heads, orow = r % rr, b = r / rr;
    const int o = orow / nq, j = orow % nq;
    const int odt = o / 9 - 1, ody = (o / 3) % 3 - 1, odx = o % 3 - 1;
    // Source patches P' with P' + offset inside the grid, as pixel ranges.
    const int pt0 = math::max(0, -odt), pt1 = math::min(gr.gt, gr.gt - odt);
    const int py0 = math::max(0, -ody), py1 = math::min(gr.gh, gr.gh - ody);
    const int px0 = math::max(0, -odx), px1 = math::min(gr.gw, gr.gw - odx);
    const int shift = (odt * gr.gh + ody) * gr.gw + odx;
    for (int d0 = 0; d0 < hdim; d0 += C) {
      const int cw = math::min(C, hdim - d0);
      A acc[C];
      for (int c = 0; c < C; ++c) acc[c] = 0;
      if (pt0 < pt1 && py0 < py1 && px0 < px1) {
        const int t1 = this->ts(pt1), y1 = this->ys(py1), x1 = this->xs(px1);
        for (int t = this->ts(pt0); t < t1; ++t)
          for (int yy = this->ys(py0); yy < y1; ++yy) {
            int xa, xb;
            long long base;
            this->clip_row(t, yy, this->xs(px0), x1, xa, xb, base);
            for (int x = xa; x < xb; ++x) {
              const int i = int(base + x);
              const int row = (this->pixel_patch(i) + shift) * nq + j;
              A a, dp;
              this->prob(b, i, h, o, row, a, dp);
              const A ds = a * (dp - A(this->delta(b, i, h)));
              const auto* qi = &this->q(i, h * hdim + d0);
              for (int c = 0; c < cw; ++c) acc[c] += ds * A(qi[c]);
            }
          }
      }
      for (int c = 0; c < cw; ++c) drel_part(b, orow, h * hdim + d0 + c) = T(this->scale * acc[c]);
    }
  }
};

/// Backward 4: drel[r, c] += sum_b drel_part[b, r, c], b in order.
template <class DRV, class T, class M>
struct NeighbourDrelReduce {
  using A = accum_t<T>;
  DRV drel;  // (27n, E)
  View3<T, M> drel_part;
  int batch, e;
  KOKKOS_INLINE_FUNCTION void operator()(const int idx) const {
    const int r = idx / e, c = idx % e;
    A acc = 0;
    for (int b = 0; b < batch; ++b) acc += A(drel_part(b, r, c));
    drel(r, c) = value_t<DRV>(A(drel(r, c)) + acc);
  }
};

template <class QV, class KVV, class RV, class T, class M>
void check_neighbour_common(const char* op, const QV& q, const KVV& kv, const RV& rel, const PatchTables<M>& tab,
                            int n, int heads, const NeighbourCache<T, M>& cache) {
  static_assert(QV::rank == 2 && KVV::rank == 3 && RV::rank == 2,
                "neighbour_attention: q (Npix, E), kv (B, P*n, 2E), rel (27n, E)");
  static_assert(std::is_same_v<value_t<QV>, T> && std::is_same_v<value_t<KVV>, T> && std::is_same_v<value_t<RV>, T>,
                "neighbour_attention: q, kv, rel and the cache hold the same scalar type");
  if (tab.scattered) check_entry_grid(op, tab);
  else check_patch_grid(op, tab.grid);
  DCSLDM_REQUIRE(n >= 1, op, "n = ", n, ", expected >= 1 tokens per patch");
  const std::size_t e = q.extent(1), npix = std::size_t(tab.pixels());
  DCSLDM_REQUIRE(heads >= 1 && e >= std::size_t(heads) && e % std::size_t(heads) == 0, op, "E = q.extent(1) = ", e,
                 ", heads = ", heads, ", expected E a positive multiple of heads");
  const std::size_t b = kv.extent(0), rows = std::size_t(tab.grid.num_patches()) * std::size_t(n);
  require_extents2(op, "q", q, npix, e);
  require_extents3(op, "kv", kv, b, rows, 2 * e);
  require_extents2(op, "rel", rel, std::size_t(neighbour_offsets) * std::size_t(n), e);
  require_extents3(op, "cache.lse", cache.lse, b, npix, std::size_t(heads));
  require_unit_inner_stride(op, "q", q);
  require_unit_inner_stride(op, "kv", kv);
  require_unit_inner_stride(op, "rel", rel);
}

}  // namespace Impl

/// Neighbourhood attention forward. q (Npix, E) per-pixel queries shared by the batch, for the Npix =
/// tab.pixels() pixels the tables cover (the whole grid, or one tile: tok/patch_grid.hpp select_pixel_tile; or
/// an edge blend's read-out entries, PatchTables::scattered);
/// kv (B, P*n, 2E) token keys [0, E) and values [E, 2E), token (P, j) at row P*n + j;
/// rel (27n, E) learned key bias, row o*n + j. y (B, Npix, E) written (=); fills cache.lse (B, Npix, H).
template <class ExecSpace, class QV, class KVV, class RV, class YV, class T, class M>
void neighbour_attention_forward(const ExecSpace& space, const QV& q, const KVV& kv, const RV& rel,
                                 const PatchTables<M>& tab, int n, int heads, const YV& y,
                                 const NeighbourCache<T, M>& cache) {
  const char* op = "neighbour_attention_forward";
  Impl::check_neighbour_common(op, q, kv, rel, tab, n, heads, cache);
  static_assert(YV::rank == 3 && std::is_same_v<typename YV::value_type, T>, "neighbour_attention: y is (B, Npix, E)");
  const int e = int(q.extent(1)), b = int(kv.extent(0)), npix = tab.pixels();
  Impl::require_extents3(op, "y", y, std::size_t(b), std::size_t(npix), std::size_t(e));
  const int hd = e / heads;
  using A = accum_t<T>;
  using Patches = Impl::NeighbourForwardPatches<QV, KVV, RV, YV, T, M>;
  if constexpr (Kokkos::SpaceAccessibility<ExecSpace, Kokkos::HostSpace>::accessible) {
    if (Patches::applies(n, hd)) {
      Kokkos::parallel_for("dcsldm::neighbour_attention_forward",
                           Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<int>>(
                               space, 0, b * tab.grid.num_patches() * heads),
                           Patches{q, kv, rel, y, cache.lse, tab.t_start, tab.y_start, tab.x_start, tab.grid,
                                   tab.first_pixel, npix, n, heads, hd, e, A(1) / math::sqrt(A(hd))});
      return;
    }
  }
  Kokkos::parallel_for("dcsldm::neighbour_attention_forward",
                       Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<int>>(space, 0, b * npix * heads),
                       Impl::NeighbourForward<QV, KVV, RV, YV, T, M>{q, kv, rel, y, cache.lse, tab.pixel_patch,
                                                                     tab.grid, npix, n, heads, hd, e,
                                                                     A(1) / math::sqrt(A(hd))});
}

/// Neighbourhood attention backward. dy (B, Npix, E); q, kv, rel, tab, n, heads, cache as given to /
/// filled by forward. drel (27n, E) accumulates (+=, summed over b in order); dq (Npix, E) written (=,
/// summed over b in order); dkv (B, P*n, 2E) written (=). ws from make_neighbour_workspace for tab.pixels()
/// pixels (overwritten). The tables may cover a window of the grid (select_pixel_tile): the gradients are then
/// those of the covered pixels' outputs only (what a loss on a random window of a large target needs).
template <class ExecSpace, class DYV, class QV, class KVV, class RV, class DRV, class T, class M, class DQV, class DKVV>
void neighbour_attention_backward(const ExecSpace& space, const DYV& dy, const QV& q, const KVV& kv, const RV& rel,
                                  const DRV& drel, const PatchTables<M>& tab, int n, int heads,
                                  const NeighbourCache<T, M>& cache, const NeighbourWorkspace<T, M>& ws, const DQV& dq,
                                  const DKVV& dkv) {
  const char* op = "neighbour_attention_backward";
  Impl::check_neighbour_common(op, q, kv, rel, tab, n, heads, cache);
  DCSLDM_REQUIRE(!tab.scattered, op, "the tables list scattered read-out positions (an edge-blended inference decode)");
  static_assert(DYV::rank == 3 && DRV::rank == 2 && DQV::rank == 2 && DKVV::rank == 3,
                "neighbour_attention_backward: dy (B, Npix, E), drel (27n, E), dq (Npix, E), dkv (B, P*n, 2E)");
  static_assert(std::is_same_v<value_t<DYV>, T> && std::is_same_v<typename DRV::value_type, T> &&
                    std::is_same_v<typename DQV::value_type, T> && std::is_same_v<typename DKVV::value_type, T>,
                "neighbour_attention_backward: dy, drel, dq, dkv hold the cache's scalar type");
  const int e = int(q.extent(1)), b = int(kv.extent(0)), npix = tab.pixels();
  const int rows = tab.grid.num_patches() * n, rr = neighbour_offsets * n;
  Impl::require_extents3(op, "dy", dy, std::size_t(b), std::size_t(npix), std::size_t(e));
  Impl::require_unit_inner_stride(op, "dy", dy);
  Impl::require_extents2(op, "drel", drel, std::size_t(rr), std::size_t(e));
  Impl::require_extents2(op, "dq", dq, std::size_t(npix), std::size_t(e));
  Impl::require_extents3(op, "dkv", dkv, std::size_t(b), std::size_t(rows), std::size_t(2 * e));
  Impl::require_extents3(op, "ws.delta", ws.delta, std::size_t(b), std::size_t(npix), std::size_t(heads));
  Impl::require_extents3(op, "ws.drel_part", ws.drel_part, std::size_t(b), std::size_t(rr), std::size_t(e));
  const int hd = e / heads;
  using A = accum_t<T>;
  using Policy = Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<int>>;
  using Base = Impl::NeighbourBackwardBase<DYV, QV, KVV, RV, T, M>;
  const Base base{dy,          q,           kv,          rel,      cache.lse, ws.delta, tab.pixel_patch,
                  tab.t_start, tab.y_start, tab.x_start, tab.grid, n,         heads,    hd,
                  e,           A(1) / math::sqrt(A(hd)),    tab.first_pixel,      npix};
  if constexpr (Kokkos::SpaceAccessibility<ExecSpace, Kokkos::HostSpace>::accessible) {
    using Patches = Impl::NeighbourBackwardPatches<DYV, QV, KVV, RV, DQV, T, M>;
    const int np = tab.grid.num_patches();
    if (Patches::applies(n, hd) && b > 0 && ws.kv_part.extent(0) == std::size_t(b) &&
        ws.kv_part.extent(1) == std::size_t(np) && ws.kv_part.extent(2) == std::size_t(rr) &&
        ws.kv_part.extent(3) == std::size_t(2 * e)) {
      Kokkos::parallel_for("dcsldm::neighbour_attention_backward_patches", Policy(space, 0, np * heads),
                           Patches(base, dq, ws.kv_part, b));
      Kokkos::parallel_for("dcsldm::neighbour_attention_backward_dkv", Policy(space, 0, b * rows),
                           Impl::NeighbourKvFromParts<DKVV, T, M>{dkv, ws.kv_part, tab.grid, n, e, base.scale});
      Kokkos::parallel_for("dcsldm::neighbour_attention_backward_drel", Policy(space, 0, rr * ((e + 15) / 16)),
                           Impl::NeighbourDrelFromParts<DRV, T, M>{drel, ws.kv_part, tab.grid, b, n, e, base.scale});
      return;
    }
  }
  // dq first: it also writes D_i (ws.delta), which the two gathers read.
  Kokkos::parallel_for("dcsldm::neighbour_attention_backward_dq", Policy(space, 0, npix * heads),
                       Impl::NeighbourDq<DYV, QV, KVV, RV, DQV, T, M>(base, dq, b));
  Kokkos::parallel_for("dcsldm::neighbour_attention_backward_dkv", Policy(space, 0, b * rows * heads),
                       Impl::NeighbourDkv<DYV, QV, KVV, RV, DKVV, T, M>(base, dkv));
  Kokkos::parallel_for("dcsldm::neighbour_attention_backward_drel_partial", Policy(space, 0, b * rr * heads),
                       Impl::NeighbourDrelPartial<DYV, QV, KVV, RV, T, M>(base, ws.drel_part));
  Kokkos::parallel_for("dcsldm::neighbour_attention_backward_drel", Policy(space, 0, rr * e),
                       Impl::NeighbourDrelReduce<DRV, T, M>{drel, ws.drel_part, b, e});
}

}  // namespace dcsldm::tok
