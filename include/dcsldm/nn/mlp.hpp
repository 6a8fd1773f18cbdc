// dcsldm/nn/mlp.hpp: the transformer feed-forward blocks.
//
//   GELU MLP   (ViT / DiT):       y = fc2(gelu(fc1(x)))                   torch: fc2(F.gelu(fc1(x), approximate=...))
//   SwiGLU MLP (Shazeer 2020):     y = fc2(silu(a) * b), [a, b] = fc1(x)   fc1 maps D -> 2H, a = first half
//
// Rows are tokens: x (M, D) is a (B, T, D) tensor seen as (B*T, D). The caller allocates the cache with
// make_*_cache and the backward workspace with make_*_workspace, once, outside the training step.
#pragma once

#include <dcsldm/core/error.hpp>
#include <dcsldm/core/types.hpp>
#include <dcsldm/linalg/gemm.hpp>
#include <dcsldm/nn/activations.hpp>
#include <dcsldm/nn/linear.hpp>

namespace dcsldm::nn {

/// Parameters (or their gradients) of a GELU MLP: fc1 (H, D), fc2 (Dout, H). fc1 must have a bias
/// (it is fused into the GELU); fc2's bias is optional.
template <class T, class MemSpace>
struct GeluMlp {
  Linear<T, MemSpace> fc1;
  Linear<T, MemSpace> fc2;
};

/// Parameters (or their gradients) of a SwiGLU MLP: fc1 (2H, D), rows [0, H) produce the gate a and
/// rows [H, 2H) the value b; fc2 (Dout, H). Biases optional.
template <class T, class MemSpace>
struct SwiGluMlp {
  Linear<T, MemSpace> fc1;
  Linear<T, MemSpace> fc2;
};

/// Saved activations of an MLP forward pass (filled by forward, read by backward).
///   GELU:   pre = x W1^T (M, H), WITHOUT fc1's bias (the bias is fused into the GELU);
///           hidden = gelu(pre + b1) (M, H).
///   SwiGLU: pre = x W1^T + b1 (M, 2H); hidden = silu(pre[:, :H]) * pre[:, H:] (M, H).
template <class T, class MemSpace>
struct MlpCache {
  View2<T, MemSpace> pre;
  View2<T, MemSpace> hidden;
};

/// Scratch for MLP backward: dhidden (M, H), dpre (M, H) for GELU or (M, 2H) for SwiGLU.
template <class T, class MemSpace>
struct MlpWorkspace {
  View2<T, MemSpace> dhidden;
  View2<T, MemSpace> dpre;
};

/// Allocates the cache of a GELU MLP with `rows` tokens (host call, outside the hot path).
template <class T, class MemSpace>
MlpCache<T, MemSpace> make_gelu_mlp_cache(std::size_t rows, const GeluMlp<T, MemSpace>& p) {
  const std::size_t h = p.fc1.weight.extent(0);
  return {View2<T, MemSpace>("dcsldm::mlp_pre", rows, h), View2<T, MemSpace>("dcsldm::mlp_hidden", rows, h)};
}
/// Allocates the backward workspace of a GELU MLP with `rows` tokens.
template <class T, class MemSpace>
MlpWorkspace<T, MemSpace> make_gelu_mlp_workspace(std::size_t rows, const GeluMlp<T, MemSpace>& p) {
  const std::size_t h = p.fc1.weight.extent(0);
  return {View2<T, MemSpace>("dcsldm::mlp_dhidden", rows, h), View2<T, MemSpace>("dcsldm::mlp_dpre", rows, h)};
}
/// Allocates the cache of a SwiGLU MLP with `rows` tokens.
template <class T, class MemSpace>
MlpCache<T, MemSpace> make_swiglu_mlp_cache(std::size_t rows, const SwiGluMlp<T, MemSpace>& p) {
  const std::size_t h2 = p.fc1.weight.extent(0);
  return {View2<T, MemSpace>("dcsldm::mlp_pre", rows, h2), View2<T, MemSpace>("dcsldm::mlp_hidden", rows, h2 / 2)};
}
/// Allocates the backward workspace of a SwiGLU MLP with `rows` tokens.
template <class T, class MemSpace>
MlpWorkspace<T, MemSpace> make_swiglu_mlp_workspace(std::size_t rows, const SwiGluMlp<T, MemSpace>& p) {
  const std::size_t h2 = p.fc1.weight.extent(0);
  return {View2<T, MemSpace>("dcsldm::mlp_dhidden", rows, h2 / 2), View2<T, MemSpace>("dcsldm::mlp_dpre", rows, h2)};
}

namespace Impl {
template <class T, class M>
Linear<T, M> without_bias(const Linear<T, M>& l) {
  return Linear<T, M>{l.weight, View1<T, M>()};
}

template <class XV, class T, class M>
void check_mlp(const char* op, const XV& x, const Linear<T, M>& fc1, const Linear<T, M>& fc2, std::size_t hidden,
               std::size_t pre_cols, const MlpCache<T, M>& c) {
  DCSLDM_REQUIRE(x.extent(1) == fc1.weight.extent(1), op, "x.extent(1) = ", x.extent(1),
                 " != fc1.in_features = ", fc1.weight.extent(1));
  DCSLDM_REQUIRE(fc2.weight.extent(1) == hidden, op, "fc2.in_features = ", fc2.weight.extent(1), " != hidden width ",
                 hidden);
  DCSLDM_REQUIRE(c.pre.extent(0) == x.extent(0) && c.pre.extent(1) == pre_cols && c.hidden.extent(0) == x.extent(0) &&
                     c.hidden.extent(1) == hidden,
                 op, "cache is pre (", c.pre.extent(0), ", ", c.pre.extent(1), "), hidden (", c.hidden.extent(0), ", ",
                 c.hidden.extent(1), "); expected (", x.extent(0), ", ", pre_cols, "), (", x.extent(0), ", ", hidden,
                 ")");
}
template <class T, class M>
void check_mlp_ws(const char* op, const MlpWorkspace<T, M>& w, std::size_t rows, std::size_t hidden,
                  std::size_t pre_cols) {
  DCSLDM_REQUIRE(w.dhidden.extent(0) == rows && w.dhidden.extent(1) == hidden && w.dpre.extent(0) == rows &&
                     w.dpre.extent(1) == pre_cols,
                 op, "workspace is dhidden (", w.dhidden.extent(0), ", ", w.dhidden.extent(1), "), dpre (",
                 w.dpre.extent(0), ", ", w.dpre.extent(1), "); expected (", rows, ", ", hidden, "), (", rows, ", ",
                 pre_cols, ")");
}
template <class T, class M>
void check_same_params(const char* op, const Linear<T, M>& p, const Linear<T, M>& g, const char* name) {
  DCSLDM_REQUIRE(p.weight.extent(0) == g.weight.extent(0) && p.weight.extent(1) == g.weight.extent(1) &&
                     p.bias.extent(0) == g.bias.extent(0),
                 op, name, " gradient is (", g.weight.extent(0), ", ", g.weight.extent(1), ") / (", g.bias.extent(0),
                 "), parameter is (", p.weight.extent(0), ", ", p.weight.extent(1), ") / (", p.bias.extent(0), ")");
}
}  // namespace Impl

/// GELU MLP forward: y = gelu(x W1^T + b1) W2^T + b2.
/// x (M, D), y (M, Dout) written (=); cache filled (see MlpCache). fc1 must have a bias.
template <class ExecSpace, class XV, class T, class M, class YV>
void gelu_mlp_forward(const ExecSpace& space, const XV& x, const GeluMlp<T, M>& p, GeluKind kind, const YV& y,
                      const MlpCache<T, M>& cache) {
  const std::size_t h = p.fc1.weight.extent(0);
  Impl::check_mlp("gelu_mlp_forward", x, p.fc1, p.fc2, h, h, cache);
  DCSLDM_REQUIRE(p.fc1.has_bias() || h == 0, "gelu_mlp_forward", "fc1 must have a bias (extent ", h,
                 "), it has extent ", p.fc1.bias.extent(0));
  gemm(space, Op::N, Op::T, 1, x, p.fc1.weight, 0, cache.pre);  // pre = x W1^T
  bias_gelu_forward(space, cache.pre, p.fc1.bias, kind, cache.hidden);
  linear_forward(space, cache.hidden, p.fc2, y);
}

/// GELU MLP backward. dy (M, Dout), x (M, D) as given to forward, cache from forward.
/// Parameter gradients accumulate (g.fc1, g.fc2 +=); dx (M, D) is written (=), skipped when empty.
template <class ExecSpace, class DYV, class XV, class T, class M, class DXV>
void gelu_mlp_backward(const ExecSpace& space, const DYV& dy, const XV& x, const GeluMlp<T, M>& p,
                       const GeluMlp<T, M>& g, GeluKind kind, const MlpCache<T, M>& cache, const MlpWorkspace<T, M>& ws,
                       const DXV& dx) {
  const std::size_t h = p.fc1.weight.extent(0);
  Impl::check_mlp("gelu_mlp_backward", x, p.fc1, p.fc2, h, h, cache);
  Impl::check_mlp_ws("gelu_mlp_backward", ws, x.extent(0), h, h);
  Impl::check_same_params("gelu_mlp_backward", p.fc1, g.fc1, "fc1");
  Impl::check_same_params("gelu_mlp_backward", p.fc2, g.fc2, "fc2");
  linear_backward(space, dy, cache.hidden, p.fc2, g.fc2, ws.dhidden);
  bias_gelu_backward(space, ws.dhidden, cache.pre, p.fc1.bias, g.fc1.bias, kind, ws.dpre);
  linear_backward(space, ws.dpre, x, Impl::without_bias(p.fc1), Impl::without_bias(g.fc1), dx);
}

/// SwiGLU MLP forward: [a, b] = x W1^T + b1 (a = first H columns), y = (silu(a) * b) W2^T + b2.
/// x (M, D), y (M, Dout) written (=); cache filled (see MlpCache).
template <class ExecSpace, class XV, class T, class M, class YV>
void swiglu_mlp_forward(const ExecSpace& space, const XV& x, const SwiGluMlp<T, M>& p, const YV& y,
                        const MlpCache<T, M>& cache) {
  const std::size_t h2 = p.fc1.weight.extent(0);
  DCSLDM_REQUIRE(h2 % 2 == 0, "swiglu_mlp_forward", "fc1.out_features = ", h2, " must be even (2H)");
  Impl::check_mlp("swiglu_mlp_forward", x, p.fc1, p.fc2, h2 / 2, h2, cache);
  linear_forward(space, x, p.fc1, cache.pre);
  swiglu_forward(space, cache.pre, cache.hidden);
  linear_forward(space, cache.hidden, p.fc2, y);
}

/// SwiGLU MLP backward. dy (M, Dout), x (M, D) as given to forward, cache from forward.
/// Parameter gradients accumulate (g.fc1, g.fc2 +=); dx (M, D) is written (=), skipped when empty.
template <class ExecSpace, class DYV, class XV, class T, class M, class DXV>
void swiglu_mlp_backward(const ExecSpace& space, const DYV& dy, const XV& x, const SwiGluMlp<T, M>& p,
                         const SwiGluMlp<T, M>& g, const MlpCache<T, M>& cache, const MlpWorkspace<T, M>& ws,
                         const DXV& dx) {
  const std::size_t h2 = p.fc1.weight.extent(0);
  DCSLDM_REQUIRE(h2 % 2 == 0, "swiglu_mlp_backward", "fc1.out_features = ", h2, " must be even (2H)");
  Impl::check_mlp("swiglu_mlp_backward", x, p.fc1, p.fc2, h2 / 2, h2, cache);
  Impl::check_mlp_ws("swiglu_mlp_backward", ws, x.extent(0), h2 / 2, h2);
  Impl::check_same_params("swiglu_mlp_backward", p.fc1, g.fc1, "fc1");
  Impl::check_same_params("swiglu_mlp_backward", p.fc2, g.fc2, "fc2");
  linear_backward(space, dy, cache.hidden, p.fc2, g.fc2, ws.dhidden);
  swiglu_backward(space, ws.dhidden, cache.pre, ws.dpre);
  linear_backward(space, ws.dpre, x, p.fc1, g.fc1, dx);
}

}  // namespace dcsldm::nn
