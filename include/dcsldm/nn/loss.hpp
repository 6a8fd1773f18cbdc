// dcsldm/nn/loss.hpp: mean-reduced regression losses (torch.nn.functional.l1_loss / mse_loss with
// reduction="mean"), optionally with a per-element weight or 0/1 mask.
//
//   L1:  loss = (1/N) sum_i w_i |pred_i - target_i|,      dpred_i = g * w_i * sign(pred_i - target_i) / N
//   MSE: loss = (1/N) sum_i w_i (pred_i - target_i)^2,    dpred_i = g * w_i * 2 (pred_i - target_i) / N
//
// N is the number of elements (not the sum of the weights: for a mean over the masked elements only,
// scale the mask by N / count). sign(0) = 0, as in PyTorch. The tensors may have any rank but must be
// contiguous and of identical shape; they are processed as flat arrays.
//
// The forward writes the scalar into a View on the device (rank 0, or rank 1 with one element): no host
// copy and no fence; the caller reads it when it needs it. The reduction order depends on the backend
// and thread count (the loss is a diagnostic; the gradient is elementwise and exact).
#pragma once

#include <dcsldm/core/compat.hpp>
#include <dcsldm/core/error.hpp>
#include <dcsldm/core/types.hpp>

#include <cstdint>
#include <sstream>
#include <string>

namespace dcsldm::nn {

/// Loss kinds (compile-time tags).
namespace loss {
/// |d|, gradient sign(d) (0 at 0).
struct L1 {
  static constexpr const char* name = "l1_loss";
  template <class A>
  KOKKOS_INLINE_FUNCTION static A value(A d) {
    return math::abs(d);
  }
  template <class A>
  KOKKOS_INLINE_FUNCTION static A grad(A d) {
    return d > A(0) ? A(1) : (d < A(0) ? A(-1) : A(0));
  }
};
/// d^2, gradient 2 d.
struct MSE {
  static constexpr const char* name = "mse_loss";
  template <class A>
  KOKKOS_INLINE_FUNCTION static A value(A d) {
    return d * d;
  }
  template <class A>
  KOKKOS_INLINE_FUNCTION static A grad(A d) {
    return A(2) * d;
  }
};
}  // namespace loss

namespace Impl {

template <class V>
std::string loss_shape_str(const V& v) {
  std::ostringstream s;
  s << "(";
  for (unsigned r = 0; r < V::rank; ++r) s << (r ? ", " : "") << v.extent(r);
  s << ")";
  return s.str();
}

template <class AV, class BV>
bool loss_same_shape(const AV& a, const BV& b) {
  if (unsigned(AV::rank) != unsigned(BV::rank)) return false;
  for (unsigned r = 0; r < AV::rank; ++r)
    if (a.extent(r) != b.extent(r)) return false;
  return true;
}

template <class Kind, class T, class A>
struct LossSum {
  using value_type = A;
  const T* pred;
  const T* target;
  const T* weight;  // nullptr: no weight
  A inv_n;
  KOKKOS_INLINE_FUNCTION void operator()(const std::int64_t i, A& acc) const {
    A v = Kind::value(A(pred[i]) - A(target[i]));
    if (weight) v *= A(weight[i]);
    acc += v * inv_n;
  }
};

template <class Kind, class T, class A>
struct LossGrad {
  const T* pred;
  const T* target;
  const T* weight;  // nullptr: no weight
  T* dpred;
  A coef;  // upstream gradient / N
  KOKKOS_INLINE_FUNCTION void operator()(const std::int64_t i) const {
    A v = coef * Kind::grad(A(pred[i]) - A(target[i]));
    if (weight) v *= A(weight[i]);
    dpred[i] = T(v);
  }
};

template <class Kind, class PV, class TV, class WV>
void check_loss(const char* op, const PV& pred, const TV& target, const WV& weight, bool has_weight) {
  DCSLDM_REQUIRE(loss_same_shape(pred, target), op, "pred is ", loss_shape_str(pred), " but target is ", loss_shape_str(target));
  DCSLDM_REQUIRE(!has_weight || loss_same_shape(pred, weight), op, "pred is ", loss_shape_str(pred), " but weight is ",
                 loss_shape_str(weight));
  DCSLDM_REQUIRE(pred.span_is_contiguous() && target.span_is_contiguous() &&
                     (!has_weight || weight.span_is_contiguous()),
                 op, "pred, target and weight must be contiguous Views");
}

template <class Kind, class ExecSpace, class PV, class TV, class WV, class OV>
void loss_forward_impl(const ExecSpace& space, const PV& pred, const TV& target, const WV& weight,
                       bool has_weight, const OV& out) {
  using T = value_t<PV>;
  using A = accum_t<T>;
  using Mem = typename ExecSpace::memory_space;
  static_assert(std::is_same_v<value_t<OV>, A>, "loss: the output scalar holds accum_t<T>");
  const std::string op = std::string(Kind::name) + "_forward";
  check_loss<Kind>(op.c_str(), pred, target, weight, has_weight);
  DCSLDM_REQUIRE(OV::rank == 0 || (OV::rank == 1 && out.size() == 1), op.c_str(),
                 "the output must be a rank-0 View or a rank-1 View of 1 element, got rank ", unsigned(OV::rank),
                 " with ", out.size(), " elements");
  const std::int64_t n = std::int64_t(pred.size());
  Kokkos::View<A, Kokkos::LayoutRight, Mem, Kokkos::MemoryTraits<Kokkos::Unmanaged>> result(out.data());
  const std::string label = "dcsldm::" + op;
  Kokkos::parallel_reduce(label, Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<std::int64_t>>(space, 0, n),
                          LossSum<Kind, T, A>{pred.data(), target.data(), has_weight ? weight.data() : nullptr,
                                              n > 0 ? A(1) / A(n) : A(0)},
                          result);
}

template <class Kind, class ExecSpace, class PV, class TV, class WV, class DV>
void loss_backward_impl(const ExecSpace& space, const PV& pred, const TV& target, const WV& weight,
                        bool has_weight, double dloss, const DV& dpred) {
  using T = value_t<PV>;
  using A = accum_t<T>;
  const std::string op = std::string(Kind::name) + "_backward";
  check_loss<Kind>(op.c_str(), pred, target, weight, has_weight);
  DCSLDM_REQUIRE(loss_same_shape(pred, dpred) && dpred.span_is_contiguous(), op.c_str(), "dpred is ",
                 loss_shape_str(dpred), ", expected a contiguous View of the shape of pred ", loss_shape_str(pred));
  const std::int64_t n = std::int64_t(pred.size());
  if (n == 0) return;
  const std::string label = "dcsldm::" + op;
  Kokkos::parallel_for(label, Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<std::int64_t>>(space, 0, n),
                       LossGrad<Kind, T, A>{pred.data(), target.data(), has_weight ? weight.data() : nullptr,
                                            dpred.data(), A(dloss / double(n))});
}

}  // namespace Impl

/// Forward of a mean-reduced loss (Kind = loss::L1 or loss::MSE): out = (1/N) sum_i f(pred_i - target_i).
/// pred, target: contiguous Views of any one shape (N elements). kind: the tag value (loss::L1{} or
/// loss::MSE{}), passed as configuration after the inputs. out: rank-0 View, or rank-1 View of one
/// element, of accum_t<T> in the execution space's memory, written (=) asynchronously. N = 0 gives 0.
template <class Kind, class ExecSpace, class PV, class TV, class OV>
void loss_forward(const ExecSpace& space, const PV& pred, const TV& target, Kind, const OV& out) {
  Impl::loss_forward_impl<Kind>(space, pred, target, PV(), false, out);
}
/// Weighted forward: out = (1/N) sum_i weight_i f(pred_i - target_i); weight (an input, not a learned
/// parameter) has the shape of pred.
template <class Kind, class ExecSpace, class PV, class TV, class WV, class OV>
void loss_forward(const ExecSpace& space, const PV& pred, const TV& target, const WV& weight, Kind,
                  const OV& out) {
  Impl::loss_forward_impl<Kind>(space, pred, target, weight, true, out);
}

/// Backward of loss_forward: dpred_i = dloss * f'(pred_i - target_i) / N, written (=). dloss is the
/// upstream gradient of the scalar loss (the d_output: 1 for a loss that is minimised directly, or its
/// weight in a sum of losses). pred, target as given to forward; dpred is contiguous with the shape of pred.
template <class Kind, class ExecSpace, class PV, class TV, class DV>
void loss_backward(const ExecSpace& space, double dloss, const PV& pred, const TV& target, Kind,
                   const DV& dpred) {
  Impl::loss_backward_impl<Kind>(space, pred, target, PV(), false, dloss, dpred);
}
/// Weighted backward: dpred_i = dloss * weight_i * f'(pred_i - target_i) / N, written (=).
template <class Kind, class ExecSpace, class PV, class TV, class WV, class DV>
void loss_backward(const ExecSpace& space, double dloss, const PV& pred, const TV& target, const WV& weight,
                   Kind, const DV& dpred) {
  Impl::loss_backward_impl<Kind>(space, pred, target, weight, true, dloss, dpred);
}

/// l1_loss_forward(space, pred, target, out): loss_forward with loss::L1 (torch l1_loss, mean).
template <class ExecSpace, class PV, class TV, class OV>
void l1_loss_forward(const ExecSpace& space, const PV& pred, const TV& target, const OV& out) {
  loss_forward(space, pred, target, loss::L1{}, out);
}
/// l1_loss_backward(space, dloss, pred, target, dpred): loss_backward with loss::L1 (dpred =).
template <class ExecSpace, class PV, class TV, class DV>
void l1_loss_backward(const ExecSpace& space, double dloss, const PV& pred, const TV& target, const DV& dpred) {
  loss_backward(space, dloss, pred, target, loss::L1{}, dpred);
}
/// mse_loss_forward(space, pred, target, out): loss_forward with loss::MSE (torch mse_loss, mean).
template <class ExecSpace, class PV, class TV, class OV>
void mse_loss_forward(const ExecSpace& space, const PV& pred, const TV& target, const OV& out) {
  loss_forward(space, pred, target, loss::MSE{}, out);
}
/// mse_loss_backward(space, dloss, pred, target, dpred): loss_backward with loss::MSE (dpred =).
template <class ExecSpace, class PV, class TV, class DV>
void mse_loss_backward(const ExecSpace& space, double dloss, const PV& pred, const TV& target,
                       const DV& dpred) {
  loss_backward(space, dloss, pred, target, loss::MSE{}, dpred);
}

}  // namespace dcsldm::nn
