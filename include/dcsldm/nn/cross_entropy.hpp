// dcsldm/nn/cross_entropy.hpp: softmax cross-entropy with integer class labels, mean over the batch
// (torch.nn.functional.cross_entropy(logits, labels), reduction = "mean"):
//
//   loss = (1/B) sum_b [ logsumexp_j z(b, j) - z(b, y_b) ]
//   dz(b, j) = g (softmax(z(b, :))_j - [j == y_b]) / B
//
// Labels live in the execution space's memory and must lie in [0, K): the kernels cannot throw, so a label
// outside that range is not read as a class (its row contributes logsumexp and gets softmax as gradient);
// check labels where they are made (the classifier trainer does). The forward writes the scalar into a
// device View (no fence, no host copy); its reduction order depends on the backend (a diagnostic); the
// gradient is computed row by row and is exact.
#pragma once

#include <dcsldm/core/compat.hpp>
#include <dcsldm/core/error.hpp>
#include <dcsldm/core/types.hpp>

#include <cstdint>

namespace dcsldm::nn {

namespace Impl {
template <class ZV>
KOKKOS_INLINE_FUNCTION accum_t<value_t<ZV>> row_logsumexp(const ZV& z, const int b) {
  using A = accum_t<value_t<ZV>>;
  A m = A(z(b, 0));
  for (std::size_t j = 1; j < z.extent(1); ++j) m = A(z(b, j)) > m ? A(z(b, j)) : m;
  A s = 0;
  for (std::size_t j = 0; j < z.extent(1); ++j) s += math::exp(A(z(b, j)) - m);
  return m + math::log(s);
}
template <class ZV, class LV>
struct CrossEntropySum {
  using value_type = accum_t<value_t<ZV>>;
  ZV z;
  LV labels;
  value_type inv_b;
  KOKKOS_INLINE_FUNCTION void operator()(const int b, value_type& acc) const {
    const int y = labels(b);
    const value_type zy = (y >= 0 && y < int(z.extent(1))) ? value_type(z(b, y)) : value_type(0);
    acc += (row_logsumexp(z, b) - zy) * inv_b;
  }
};
template <class ZV, class LV, class DZV>
struct CrossEntropyGrad {
  ZV z;
  LV labels;
  DZV dz;
  accum_t<value_t<ZV>> coef;  // g / B
  KOKKOS_INLINE_FUNCTION void operator()(const int b) const {
    using A = accum_t<value_t<ZV>>;
    const A lse = row_logsumexp(z, b);
    const int y = labels(b);
    for (std::size_t j = 0; j < z.extent(1); ++j)
      dz(b, j) = value_t<DZV>(coef * (math::exp(A(z(b, j)) - lse) - (int(j) == y ? A(1) : A(0))));
  }
};
template <class ZV, class LV>
void check_ce(const char* op, const ZV& z, const LV& labels) {
  DCSLDM_REQUIRE(z.extent(1) >= 1, op, "logits have no classes (shape (", z.extent(0), ", 0))");
  DCSLDM_REQUIRE(labels.extent(0) == z.extent(0), op, "labels has ", labels.extent(0), " entries for ", z.extent(0),
                 " rows of logits");
}
}  // namespace Impl

/// Forward: out = mean cross-entropy. logits (B, K), labels (B) of int in [0, K); out: rank-0 View of
/// accum_t<T> in the execution space's memory, written (=) asynchronously. B = 0 gives 0.
template <class ExecSpace, class ZV, class LV, class OV>
void cross_entropy_forward(const ExecSpace& space, const ZV& logits, const LV& labels, const OV& out) {
  static_assert(ZV::rank == 2 && LV::rank == 1 && OV::rank == 0, "cross_entropy_forward: logits (B, K), labels (B), out rank 0");
  Impl::check_ce("cross_entropy_forward", logits, labels);
  using A = accum_t<value_t<ZV>>;
  const int B = int(logits.extent(0));
  Kokkos::parallel_reduce("dcsldm::cross_entropy_forward", Kokkos::RangePolicy<ExecSpace>(space, 0, B),
                          Impl::CrossEntropySum<ZV, LV>{logits, labels, B > 0 ? A(1) / A(B) : A(0)}, out);
}

/// Backward: dlogits = dloss (softmax(logits) - onehot(labels)) / B, written (=). Shapes as in the forward.
template <class ExecSpace, class ZV, class LV, class DZV>
void cross_entropy_backward(const ExecSpace& space, double dloss, const ZV& logits, const LV& labels,
                            const DZV& dlogits) {
  static_assert(ZV::rank == 2 && LV::rank == 1 && DZV::rank == 2, "cross_entropy_backward: logits, dlogits (B, K), labels (B)");
  Impl::check_ce("cross_entropy_backward", logits, labels);
  DCSLDM_REQUIRE(dlogits.extent(0) == logits.extent(0) && dlogits.extent(1) == logits.extent(1),
                 "cross_entropy_backward", "dlogits is (", dlogits.extent(0), ", ", dlogits.extent(1), "), logits (",
                 logits.extent(0), ", ", logits.extent(1), ")");
  using A = accum_t<value_t<ZV>>;
  const int B = int(logits.extent(0));
  if (B == 0) return;
  Kokkos::parallel_for("dcsldm::cross_entropy_backward", Kokkos::RangePolicy<ExecSpace>(space, 0, B),
                       Impl::CrossEntropyGrad<ZV, LV, DZV>{logits, labels, dlogits, A(dloss / double(B))});
}

}  // namespace dcsldm::nn
