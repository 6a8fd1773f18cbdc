// Attention masks: every kind's rule evaluated on the device against a host reference, the DCS-LDM
// encoder layout (patch tokens level 0 + latent levels), name table, helper errors.
#include <dcsldm/nn/attention_mask.hpp>

#include "testing.hpp"

using namespace dcsldm;
using test::ExecSpaces;

namespace {

/// allowed(qi, kj) for all pairs, computed by a kernel in ExecSpace, returned on the host (Tq, Tk).
template <class ExecSpace>
std::vector<int> evaluate_mask(const nn::AttentionMask<typename ExecSpace::memory_space>& mask, int tq, int tk) {
  using Mem = typename ExecSpace::memory_space;
  Kokkos::View<int**, Kokkos::LayoutRight, Mem> out("allowed", tq, tk);
  using policy = Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<2>, Kokkos::IndexType<int>>;
  Kokkos::parallel_for(
      "dcsldm::test::evaluate_mask", policy(ExecSpace(), {0, 0}, {tq, tk}),
      KOKKOS_LAMBDA(int i, int j) { out(i, j) = mask.allowed(i, j) ? 1 : 0; });
  auto h = compat::to_host(out);
  return std::vector<int>(h.data(), h.data() + h.span());
}

template <class ExecSpace>
void check_mask_rules() {
  using Mem = typename ExecSpace::memory_space;
  const int tq = 6, tk = 5;
  {
    const auto a = evaluate_mask<ExecSpace>(nn::make_full_mask<Mem>(), tq, tk);
    for (int v : a) CHECK(v == 1);
  }
  {
    const auto a = evaluate_mask<ExecSpace>(nn::make_causal_mask<Mem>(), tq, tk);
    for (int i = 0; i < tq; ++i)
      for (int j = 0; j < tk; ++j) CHECK(a[std::size_t(i * tk + j)] == (j <= i ? 1 : 0));
  }
  {
    const std::vector<int> ql = {0, 2, 1, 3, 0, 1}, kl = {1, 0, 2, 1, 3};
    const auto a = evaluate_mask<ExecSpace>(nn::make_level_causal_mask<Mem>(ql, kl), tq, tk);
    for (int i = 0; i < tq; ++i)
      for (int j = 0; j < tk; ++j) CHECK(a[std::size_t(i * tk + j)] == (kl[j] <= ql[i] ? 1 : 0));
  }
  {
    const std::vector<int> ql = {0, 2, 1, 3, 0, 1}, qs = {1, 0, 2, 2, 0, 1}, kl = {1, 0, 2, 1, 3}, ks = {0, 1, 1, 2, 0};
    const auto a = evaluate_mask<ExecSpace>(nn::make_segment_level_causal_mask<Mem>(ql, qs, kl, ks), tq, tk);
    for (int i = 0; i < tq; ++i)
      for (int j = 0; j < tk; ++j) CHECK(a[std::size_t(i * tk + j)] == (kl[j] <= ql[i] && ks[j] <= qs[i] ? 1 : 0));
  }
  {
    const std::vector<std::array<int, 3>> qc = {{0, 0, 0}, {0, 1, 1}, {1, 2, 2}, {0, 5, 5}, {2, 0, 1}, {0, 0, 2}};
    const std::vector<std::array<int, 3>> kc = {{0, 0, 0}, {0, 1, 2}, {1, 1, 1}, {0, 2, 0}, {3, 0, 0}};
    for (int radius : {0, 1, 2}) {
      const auto a = evaluate_mask<ExecSpace>(nn::make_neighbourhood_mask<Mem>(qc, kc, radius), tq, tk);
      for (int i = 0; i < tq; ++i)
        for (int j = 0; j < tk; ++j) {
          bool ok = true;
          for (int c = 0; c < 3; ++c) ok = ok && std::abs(qc[i][c] - kc[j][c]) <= radius;
          INFO("radius " << radius << " q " << i << " k " << j);
          CHECK(a[std::size_t(i * tk + j)] == (ok ? 1 : 0));
        }
    }
  }
}

template <class ExecSpace>
void check_encoder_layout() {
  // DCS-Tok encoder: 4 patch tokens (level 0), then levels 1..3 with 2, 1, 3 tokens.
  using Mem = typename ExecSpace::memory_space;
  const auto levels = nn::encoder_levels(4, {2, 1, 3});
  REQUIRE(levels == std::vector<int>({0, 0, 0, 0, 1, 1, 2, 3, 3, 3}));
  const int t = int(levels.size());
  const auto a = evaluate_mask<ExecSpace>(nn::make_level_causal_mask<Mem>(levels), t, t);
  for (int i = 0; i < t; ++i)
    for (int j = 0; j < t; ++j) {
      const bool q_patch = i < 4, k_patch = j < 4;
      // Patch tokens see only patch tokens; a level-l latent sees all patches and levels <= l.
      const bool expect = q_patch ? k_patch : (k_patch || levels[std::size_t(j)] <= levels[std::size_t(i)]);
      CHECK(a[std::size_t(i * t + j)] == (expect ? 1 : 0));
    }
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("attention mask rules", "[attention][mask]", ExecSpaces) {
  check_mask_rules<TestType>();
  check_encoder_layout<TestType>();
}

TEST_CASE("attention mask names and helper errors", "[attention][mask]") {
  for (nn::MaskKind k : {nn::MaskKind::Full, nn::MaskKind::Causal, nn::MaskKind::LevelCausal,
                         nn::MaskKind::SegmentLevelCausal, nn::MaskKind::Neighbourhood})
    CHECK(nn::mask_kind_from_name(nn::mask_kind_name(k)) == k);
  CHECK(std::string(nn::mask_kind_name(nn::MaskKind::SegmentLevelCausal)) == "segment_level_causal");
  CHECK_THROWS_WITH(nn::mask_kind_from_name("diagonal"),
                    Catch::Contains("dcsldm::mask_kind_from_name") && Catch::Contains("'diagonal'"));
  using Mem = Kokkos::HostSpace;
  CHECK_THROWS_WITH(nn::make_attention_mask<Mem>(nn::MaskKind::LevelCausal, {1, 2, 3, 4}, {0, 0, 0}),
                    Catch::Contains("dcsldm::make_attention_mask") && Catch::Contains("4 values"));
  CHECK_THROWS_WITH(nn::make_neighbourhood_mask<Mem>({{0, 0, 0}}, {{0, 0, 0}}, -1),
                    Catch::Contains("dcsldm::make_attention_mask") && Catch::Contains("radius = -1"));
  CHECK_THROWS_WITH(nn::make_segment_level_causal_mask<Mem>({0, 1}, {0}, {0}, {0}),
                    Catch::Contains("dcsldm::make_segment_level_causal_mask") && Catch::Contains("q 2/1"));
  CHECK_THROWS_WITH(nn::encoder_levels(2, {1, -3}),
                    Catch::Contains("dcsldm::encoder_levels") && Catch::Contains("level_sizes[1] = -3"));
}
