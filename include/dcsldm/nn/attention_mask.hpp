// dcsldm/nn/attention_mask.hpp: block-structured attention masks from per-token group ids.
//
// A mask is a rule `allowed(qi, kj)` evaluated inside the attention kernels, never a (Tq, Tk) matrix.
// Each token carries three integer group ids (a row of q_groups / k_groups); the kinds read them as:
//
//   Full                always allowed                                   (groups unused, may be empty)
//   Causal              kj <= qi (token indices)                         (groups unused, may be empty)
//   LevelCausal         level_k <= level_q               column 0 = level
//   SegmentLevelCausal  seg_k <= seg_q && level_k <= level_q   column 0 = level, column 1 = segment
//   Neighbourhood       |q - k| <= radius in each of the 3 columns (t, y, x patch coordinates)
//
// DCS-LDM uses (docs/DESIGN.md):
//   - Encoder: tokens [patch tokens ; latent tokens of levels 1..L]. Give patch tokens level 0 and latent
//     tokens their level l under LevelCausal: patch tokens see only patch tokens (level 0 <= 0), a latent
//     token of level l sees every patch token and latent tokens of levels <= l, so the first m levels
//     never depend on later ones. encoder_levels() builds that level column.
//   - DiT over latent tokens: LevelCausal (images) or SegmentLevelCausal (video: token (s, l) sees
//     (s' <= s, l' <= l)).
//   - Depatchifier / patchifier cross-attention: Neighbourhood on patch coordinates, radius 0 (own patch)
//     or 1 (own and neighbouring patches, no seams).
// A query row with no allowed key gets zero attention output and zero gradients (never NaN).
#pragma once

#include <array>
#include <dcsldm/core/error.hpp>
#include <dcsldm/core/types.hpp>
#include <string>
#include <type_traits>
#include <vector>

namespace dcsldm::nn {

/// The mask rule (runtime configuration, shared by all batch entries and heads).
enum class MaskKind { Full, Causal, LevelCausal, SegmentLevelCausal, Neighbourhood };

/// The name table (serialization).
inline const char* mask_kind_name(MaskKind k) {
  switch (k) {
    case MaskKind::Full:
      return "full";
    case MaskKind::Causal:
      return "causal";
    case MaskKind::LevelCausal:
      return "level_causal";
    case MaskKind::SegmentLevelCausal:
      return "segment_level_causal";
    case MaskKind::Neighbourhood:
      return "neighbourhood";
  }
  return "?";
}
/// Inverse of mask_kind_name; throws dcsldm::Error on an unknown name.
inline MaskKind mask_kind_from_name(const std::string& s) {
  for (MaskKind k :
       {MaskKind::Full, MaskKind::Causal, MaskKind::LevelCausal, MaskKind::SegmentLevelCausal, MaskKind::Neighbourhood})
    if (s == mask_kind_name(k)) return k;
  detail::fail("mask_kind_from_name", "unknown mask kind '", s, "'");
}

/// True when the kind reads the group columns (so q_groups/k_groups must have Tq/Tk rows).
inline bool mask_uses_groups(MaskKind k) { return k != MaskKind::Full && k != MaskKind::Causal; }

/// An attention mask: the rule plus per-token group ids, shared by all batch entries.
template <class MemSpace>
struct AttentionMask {
  using groups_view = Kokkos::View<int**, Kokkos::LayoutRight, MemSpace>;
  MaskKind kind = MaskKind::Full;
  groups_view q_groups;  ///< (Tq, 3) group ids of the query tokens
  groups_view k_groups;  ///< (Tk, 3) group ids of the key tokens
  int radius = 0;        ///< Neighbourhood half-width (same in all three columns)

  /// The rule of kind K (allowed() dispatches to it; a kernel looping over keys can dispatch once per row
  /// and run a loop without the switch).
  template <MaskKind K>
  KOKKOS_INLINE_FUNCTION bool allowed_as(const int qi, const int kj) const {
    if constexpr (K == MaskKind::Full) {
      (void)qi, (void)kj;
      return true;
    } else if constexpr (K == MaskKind::Causal) {
      return kj <= qi;
    } else if constexpr (K == MaskKind::LevelCausal) {
      return k_groups(kj, 0) <= q_groups(qi, 0);
    } else if constexpr (K == MaskKind::SegmentLevelCausal) {
      return k_groups(kj, 1) <= q_groups(qi, 1) && k_groups(kj, 0) <= q_groups(qi, 0);
    } else {
      for (int c = 0; c < 3; ++c) {
        const int d = q_groups(qi, c) - k_groups(kj, c);
        if (d > radius || -d > radius) return false;
      }
      return true;
    }
  }

  /// Whether query token qi may attend to key token kj (device callable).
  KOKKOS_INLINE_FUNCTION bool allowed(const int qi, const int kj) const {
    switch (kind) {
      case MaskKind::Full:
        return allowed_as<MaskKind::Full>(qi, kj);
      case MaskKind::Causal:
        return allowed_as<MaskKind::Causal>(qi, kj);
      case MaskKind::LevelCausal:
        return allowed_as<MaskKind::LevelCausal>(qi, kj);
      case MaskKind::SegmentLevelCausal:
        return allowed_as<MaskKind::SegmentLevelCausal>(qi, kj);
      case MaskKind::Neighbourhood:
        return allowed_as<MaskKind::Neighbourhood>(qi, kj);
    }
    return false;
  }
};

/// Calls f(std::integral_constant<MaskKind, kind>{}) for the mask's kind (host code: one dispatch, then
/// loops over mask.allowed_as<K>).
template <class MemSpace, class F>
void with_mask_kind(const AttentionMask<MemSpace>& mask, F&& f) {
  switch (mask.kind) {
    case MaskKind::Full:
      f(std::integral_constant<MaskKind, MaskKind::Full>{});
      return;
    case MaskKind::Causal:
      f(std::integral_constant<MaskKind, MaskKind::Causal>{});
      return;
    case MaskKind::LevelCausal:
      f(std::integral_constant<MaskKind, MaskKind::LevelCausal>{});
      return;
    case MaskKind::SegmentLevelCausal:
      f(std::integral_constant<MaskKind, MaskKind::SegmentLevelCausal>{});
      return;
    case MaskKind::Neighbourhood:
      f(std::integral_constant<MaskKind, MaskKind::Neighbourhood>{});
      return;
  }
}

namespace Impl {
template <class MemSpace>
typename AttentionMask<MemSpace>::groups_view groups_from_host(const char* op, const char* name,
                                                               const std::vector<int>& flat) {
  DCSLDM_REQUIRE(flat.size() % 3 == 0, op, name, " has ", flat.size(), " values, not a multiple of 3");
  const std::size_t n = flat.size() / 3;
  typename AttentionMask<MemSpace>::groups_view v(std::string(name), n, std::size_t(3));
  auto h = Kokkos::create_mirror_view(v);
  for (std::size_t i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c) h(i, c) = flat[3 * i + std::size_t(c)];
  Kokkos::deep_copy(v, h);
  return v;
}
inline std::vector<int> columns_to_flat(const char* op, const std::vector<int>& c0, const std::vector<int>& c1,
                                        const std::vector<int>& c2) {
  DCSLDM_REQUIRE(c1.empty() || c1.size() == c0.size(), op, "column sizes differ: ", c0.size(), " vs ", c1.size());
  DCSLDM_REQUIRE(c2.empty() || c2.size() == c0.size(), op, "column sizes differ: ", c0.size(), " vs ", c2.size());
  std::vector<int> f(3 * c0.size(), 0);
  for (std::size_t i = 0; i < c0.size(); ++i) {
    f[3 * i] = c0[i];
    if (!c1.empty()) f[3 * i + 1] = c1[i];
    if (!c2.empty()) f[3 * i + 2] = c2[i];
  }
  return f;
}
}  // namespace Impl

/// Builds a mask from host group ids given row-major as (T, 3) flattened vectors (allocates and copies:
/// call outside the hot path). Kinds without groups accept empty vectors.
template <class MemSpace>
AttentionMask<MemSpace> make_attention_mask(MaskKind kind, const std::vector<int>& q_groups_flat,
                                            const std::vector<int>& k_groups_flat, int radius = 0) {
  DCSLDM_REQUIRE(radius >= 0, "make_attention_mask", "radius = ", radius, " must be >= 0");
  AttentionMask<MemSpace> m;
  m.kind = kind;
  m.radius = radius;
  m.q_groups = Impl::groups_from_host<MemSpace>("make_attention_mask", "dcsldm::mask_q_groups", q_groups_flat);
  m.k_groups = Impl::groups_from_host<MemSpace>("make_attention_mask", "dcsldm::mask_k_groups", k_groups_flat);
  return m;
}

/// No masking.
template <class MemSpace>
AttentionMask<MemSpace> make_full_mask() {
  return make_attention_mask<MemSpace>(MaskKind::Full, {}, {});
}
/// Token-causal: query i sees keys j <= i.
template <class MemSpace>
AttentionMask<MemSpace> make_causal_mask() {
  return make_attention_mask<MemSpace>(MaskKind::Causal, {}, {});
}
/// Level-causal: a query of level l sees keys of level <= l. One level per token.
template <class MemSpace>
AttentionMask<MemSpace> make_level_causal_mask(const std::vector<int>& q_levels, const std::vector<int>& k_levels) {
  return make_attention_mask<MemSpace>(MaskKind::LevelCausal,
                                       Impl::columns_to_flat("make_level_causal_mask", q_levels, {}, {}),
                                       Impl::columns_to_flat("make_level_causal_mask", k_levels, {}, {}));
}
/// Level-causal self-attention (queries and keys are the same tokens).
template <class MemSpace>
AttentionMask<MemSpace> make_level_causal_mask(const std::vector<int>& levels) {
  return make_level_causal_mask<MemSpace>(levels, levels);
}
/// Segment-and-level causal: query (s, l) sees keys (s' <= s, l' <= l).
template <class MemSpace>
AttentionMask<MemSpace> make_segment_level_causal_mask(const std::vector<int>& q_levels,
                                                       const std::vector<int>& q_segments,
                                                       const std::vector<int>& k_levels,
                                                       const std::vector<int>& k_segments) {
  const char* op = "make_segment_level_causal_mask";
  DCSLDM_REQUIRE(q_levels.size() == q_segments.size() && k_levels.size() == k_segments.size(), op,
                 "levels/segments sizes differ: q ", q_levels.size(), "/", q_segments.size(), ", k ", k_levels.size(),
                 "/", k_segments.size());
  return make_attention_mask<MemSpace>(MaskKind::SegmentLevelCausal,
                                       Impl::columns_to_flat(op, q_levels, q_segments, {}),
                                       Impl::columns_to_flat(op, k_levels, k_segments, {}));
}
/// Neighbourhood: query at (t, y, x) sees keys with every coordinate within `radius`.
template <class MemSpace>
AttentionMask<MemSpace> make_neighbourhood_mask(const std::vector<std::array<int, 3>>& q_coords,
                                                const std::vector<std::array<int, 3>>& k_coords, int radius) {
  std::vector<int> q, k;
  for (const auto& c : q_coords) q.insert(q.end(), c.begin(), c.end());
  for (const auto& c : k_coords) k.insert(k.end(), c.begin(), c.end());
  return make_attention_mask<MemSpace>(MaskKind::Neighbourhood, q, k, radius);
}

/// The level column of the DCS-Tok encoder sequence [patch tokens ; level 1 ; ... ; level L]:
/// `num_patch_tokens` zeros, then level_sizes[l-1] copies of l for l = 1..L.
inline std::vector<int> encoder_levels(int num_patch_tokens, const std::vector<int>& level_sizes) {
  DCSLDM_REQUIRE(num_patch_tokens >= 0, "encoder_levels", "num_patch_tokens = ", num_patch_tokens);
  std::vector<int> v(std::size_t(num_patch_tokens), 0);
  for (std::size_t l = 0; l < level_sizes.size(); ++l) {
    DCSLDM_REQUIRE(level_sizes[l] >= 0, "encoder_levels", "level_sizes[", l, "] = ", level_sizes[l]);
    v.insert(v.end(), std::size_t(level_sizes[l]), int(l + 1));
  }
  return v;
}

namespace Impl {
/// Host check that a mask fits a (Tq, Tk) attention.
template <class MemSpace>
void check_mask(const char* op, const AttentionMask<MemSpace>& m, std::size_t tq, std::size_t tk) {
  if (!mask_uses_groups(m.kind)) return;
  DCSLDM_REQUIRE(m.q_groups.extent(0) == tq && m.q_groups.extent(1) == 3, op, "mask '", mask_kind_name(m.kind),
                 "': q_groups is (", m.q_groups.extent(0), ", ", m.q_groups.extent(1), "), expected (", tq, ", 3)");
  DCSLDM_REQUIRE(m.k_groups.extent(0) == tk && m.k_groups.extent(1) == 3, op, "mask '", mask_kind_name(m.kind),
                 "': k_groups is (", m.k_groups.extent(0), ", ", m.k_groups.extent(1), "), expected (", tk, ", 3)");
  DCSLDM_REQUIRE(m.radius >= 0, op, "mask radius = ", m.radius, " must be >= 0");
}
}  // namespace Impl

}  // namespace dcsldm::nn
