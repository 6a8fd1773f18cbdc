// dcsldm/nn/label_embedding.hpp: class-label embedding with a null label for classifier-free guidance
// (DiT's LabelEmbedder; Ho & Salimans 2022).
//
// The table has num_classes + 1 rows: rows 0..num_classes-1 are the classes, row num_classes is the
// "null" (unconditional) label. Label dropout replaces a sample's label by the null label; the DiT
// training loop drops labels with probability 0.1, and sampling with guidance runs the null label.
// Labels are int32 Views. Kernels do not check label ranges (an out-of-range label reads or writes out
// of bounds): call the host-side check_labels once where labels enter the program.
#pragma once

#include <dcsldm/core/compat.hpp>
#include <dcsldm/core/error.hpp>
#include <dcsldm/core/types.hpp>

#include <cstdint>
#include <string>

namespace dcsldm::nn {

/// Parameters (or their gradients) of a label embedding.
template <class T, class MemSpace>
struct LabelEmbedding {
  View2<T, MemSpace> table;  ///< (num_classes + 1, D); the last row is the null label
  int num_classes() const { return int(table.extent(0)) - 1; }
  int null_label() const { return int(table.extent(0)) - 1; }
  int dim() const { return int(table.extent(1)); }
};

/// Host-side validation of labels (B): every label must be in [0, num_classes] (num_classes is the null
/// label). Copies the labels to the host, so it allocates and synchronises: call it once where labels
/// enter the program (data loading), never in the training step. Throws dcsldm::Error naming the first
/// offending index and value.
template <class LV>
void check_labels(const LV& labels, int num_classes) {
  static_assert(LV::rank == 1, "check_labels: labels are a rank-1 View (B)");
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), labels);
  for (std::size_t b = 0; b < h.extent(0); ++b)
    DCSLDM_REQUIRE(h(b) >= 0 && h(b) <= num_classes, "check_labels", "labels(", b, ") = ", h(b),
                   " is outside [0, num_classes = ", num_classes, "] (", num_classes, " is the null label)");
}

namespace Impl {

template <class LV, class PV, class YV>
struct LabelGather {
  LV labels;  // (B)
  PV table;   // (num_classes + 1, D)
  YV y;       // (B, D)
  KOKKOS_INLINE_FUNCTION void operator()(const int b, const int d) const { y(b, d) = table(labels(b), d); }
};

/// One thread per feature d, samples in batch order: no two threads touch the same element, and every
/// element receives its contributions in the same order whatever the thread count.
template <class LV, class DYV, class GV>
struct LabelScatterAdd {
  LV labels;  // (B)
  DYV dy;     // (B, D)
  GV dtable;  // (num_classes + 1, D)
  int nb;
  KOKKOS_INLINE_FUNCTION void operator()(const int d) const {
    for (int b = 0; b < nb; ++b) dtable(labels(b), d) += dy(b, d);
  }
};

template <class LV, class DV, class OV>
struct LabelDropout {
  LV in;      // (B)
  DV drop;    // (B): mask (nonzero = drop) or uniform numbers
  OV out;     // (B)
  double p;   // threshold for uniforms; < 0 for a mask
  int null_label;
  KOKKOS_INLINE_FUNCTION void operator()(const int b) const {
    const bool dropped = p < 0 ? drop(b) != 0 : double(drop(b)) < p;
    out(b) = dropped ? null_label : in(b);
  }
};

template <class LV, class YV, class T, class M>
void check_label_embedding(const char* op, const LV& labels, const LabelEmbedding<T, M>& p, const YV& y,
                           const char* yn) {
  static_assert(LV::rank == 1 && YV::rank == 2, "label_embedding: labels (B), rows (B, D)");
  DCSLDM_REQUIRE(p.table.extent(0) >= 1, op, "table.extent(0) = ", p.table.extent(0),
                 ", expected num_classes + 1 >= 1");
  DCSLDM_REQUIRE(y.extent(0) == labels.extent(0) && y.extent(1) == p.table.extent(1), op, yn, " is (",
                 y.extent(0), ", ", y.extent(1), "), expected (B, D) = (", labels.extent(0), ", ",
                 p.table.extent(1), ")");
}

template <class ExecSpace, class LV, class DV, class OV>
void label_dropout_impl(const char* op, const ExecSpace& space, const LV& labels, const DV& drop, double p,
                        int num_classes, const OV& out) {
  static_assert(LV::rank == 1 && DV::rank == 1 && OV::rank == 1, "label_dropout: rank-1 Views (B)");
  DCSLDM_REQUIRE(drop.extent(0) == labels.extent(0) && out.extent(0) == labels.extent(0), op,
                 "labels.extent(0) = ", labels.extent(0), ", drop.extent(0) = ", drop.extent(0),
                 ", out.extent(0) = ", out.extent(0), " must be equal");
  DCSLDM_REQUIRE(num_classes >= 0, op, "num_classes = ", num_classes, ", expected >= 0");
  if (labels.extent(0) == 0) return;
  Kokkos::parallel_for(std::string("dcsldm::") + op, Kokkos::RangePolicy<ExecSpace>(space, 0, labels.extent(0)),
                       LabelDropout<LV, DV, OV>{labels, drop, out, p, num_classes});
}

}  // namespace Impl

/// Forward: y(b, :) = table(labels(b), :). labels (B) int32 in [0, num_classes] (see check_labels),
/// y (B, D) written (=).
template <class ExecSpace, class LV, class T, class M, class YV>
void label_embedding_forward(const ExecSpace& space, const LV& labels, const LabelEmbedding<T, M>& p,
                             const YV& y) {
  Impl::check_label_embedding("label_embedding_forward", labels, p, y, "y");
  if (y.extent(0) == 0 || y.extent(1) == 0) return;
  using Policy = Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<2>, Kokkos::IndexType<int>>;
  Kokkos::parallel_for("dcsldm::label_embedding_forward", Policy(space, {0, 0}, {int(y.extent(0)), int(y.extent(1))}),
                       Impl::LabelGather<LV, View2<T, M>, YV>{labels, p.table, y});
}

/// Backward: grad.table(c, :) += sum_{b : labels(b) = c} dy(b, :) (+=), summed in batch order by one
/// thread per feature: deterministic and bit-identical for any thread count, no atomics.
/// dy (B, D), labels (B) as given to forward. The table itself is not needed.
template <class ExecSpace, class DYV, class LV, class T, class M>
void label_embedding_backward(const ExecSpace& space, const DYV& dy, const LV& labels,
                              const LabelEmbedding<T, M>& grad) {
  static_assert(DYV::rank == 2 && LV::rank == 1, "label_embedding_backward(space, dy (B, D), labels (B), grad)");
  Impl::check_label_embedding("label_embedding_backward", labels, grad, dy, "dy");
  if (dy.extent(0) == 0 || dy.extent(1) == 0) return;
  Kokkos::parallel_for("dcsldm::label_embedding_backward", Kokkos::RangePolicy<ExecSpace>(space, 0, dy.extent(1)),
                       Impl::LabelScatterAdd<LV, DYV, View2<T, M>>{labels, dy, grad.table, int(dy.extent(0))});
}

/// Label dropout from a precomputed mask: out(b) = drop(b) != 0 ? num_classes (the null label) : labels(b).
/// labels, drop (any integer or floating type), out: (B); out written (=), out may be labels (in place).
template <class ExecSpace, class LV, class DV, class OV>
void label_dropout_mask(const ExecSpace& space, const LV& labels, const DV& drop, int num_classes, const OV& out) {
  Impl::label_dropout_impl("label_dropout_mask", space, labels, drop, -1.0, num_classes, out);
}

/// Label dropout from uniform random numbers u (B) in [0, 1): out(b) = u(b) < prob ? num_classes : labels(b).
/// out written (=), out may be labels (in place). prob must be in [0, 1].
template <class ExecSpace, class LV, class UV, class OV>
void label_dropout_uniform(const ExecSpace& space, const LV& labels, const UV& u, double prob, int num_classes,
                           const OV& out) {
  DCSLDM_REQUIRE(prob >= 0 && prob <= 1, "label_dropout_uniform", "prob = ", prob, ", expected in [0, 1]");
  Impl::label_dropout_impl("label_dropout_uniform", space, labels, u, prob, num_classes, out);
}

}  // namespace dcsldm::nn
