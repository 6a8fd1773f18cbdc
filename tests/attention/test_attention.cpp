// Multi-head attention: PyTorch parity (self-attention with every MaskKind, cross-attention with a
// Neighbourhood mask, Tq != Tk, Dc != D, a fully masked query row, Tq = 1) at several query-block sizes,
// += parameter gradients, finite-difference gradients of x, context and all projections, sizes 0/1/odd,
// and errors; on host spaces each for the fused per-(batch, head) kernels and the blocked GEMM path, and
// the two against each other at the models' sizes.
#include <array>
#include <dcsldm/nn/attention.hpp>

#include "testing.hpp"

#include <utility>

using namespace dcsldm;
using test::ExecSpaces;

namespace {

template <class T, class Mem>
nn::Linear<T, Mem> zero_like(const nn::Linear<T, Mem>& l) {
  return {View2<T, Mem>("dw", l.weight.extent(0), l.weight.extent(1)), View1<T, Mem>("db", l.bias.extent(0))};
}
template <class T, class Mem>
nn::Attention<T, Mem> zero_like(const nn::Attention<T, Mem>& p) {
  nn::Attention<T, Mem> g;
  g.q = zero_like(p.q);
  g.k = zero_like(p.k);
  g.v = zero_like(p.v);
  g.o = zero_like(p.o);
  g.heads = p.heads;
  return g;
}

template <class T, class Mem>
nn::Attention<T, Mem> golden_attention(const test::Golden& g) {
  nn::Attention<T, Mem> p;
  auto lin = [&](const std::string& n) {
    return nn::Linear<T, Mem>{g.view<T, Mem, 2>(n + "_weight"), g.view<T, Mem, 1>(n + "_bias")};
  };
  p.q = lin("q");
  p.k = lin("k");
  p.v = lin("v");
  p.o = lin("o");
  p.heads = int(g.meta_int("heads"));
  return p;
}

template <class Mem>
nn::AttentionMask<Mem> golden_mask(const test::Golden& g) {
  return nn::make_attention_mask<Mem>(nn::mask_kind_from_name(g.file.meta("kind")), g.file.to_vector<int>("q_groups"),
                                      g.file.to_vector<int>("k_groups"), int(g.meta_int("radius")));
}

/// Parameter gradients accumulate: after two backward passes they are twice the golden. `floor` bounds
/// the error's denominator from below: the key bias gradient is exactly zero in exact arithmetic (softmax
/// is invariant to adding q . bk to every score of a row), so it is compared on the scale of the others.
template <class T>
void check_doubled(const test::Golden& g, const std::vector<double>& got, const std::string& name, double floor) {
  auto twice = g.values(name);
  REQUIRE(got.size() == twice.size());
  double num = 0, den = floor;
  for (std::size_t i = 0; i < got.size(); ++i) {
    twice[i] *= 2;
    num = std::max(num, std::abs(got[i] - twice[i]));
    den = std::max(den, std::abs(twice[i]));
  }
  INFO(name << " after two backward passes: max abs err " << num << ", scale " << den);
  CHECK(num / den < test::parity_tol<T>());
}

/// Forward + backward twice against golden `name`, with query blocks of `block` rows (0: the golden's);
/// `fused`: the workspace's host kernel choice (devices ignore it).
template <class ExecSpace, class T>
void check_attention_golden(const std::string& name, int block, bool fused) {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  test::Golden g(name);
  const bool self = g.meta_int("self") != 0;
  if (block == 0) block = int(g.meta_int("block"));
  auto p = golden_attention<T, Mem>(g);
  auto d = zero_like(p);
  auto mask = golden_mask<Mem>(g);
  auto x = g.view<T, Mem, 3>("x");
  auto dy = g.view<T, Mem, 3>("dy");
  View3<T, Mem> c = self ? x : g.view<T, Mem, 3>("context");
  const std::size_t b = x.extent(0), tq = x.extent(1), tk = c.extent(1);
  View3<T, Mem> y("y", b, tq, p.o.out_features()), dx("dx", b, tq, x.extent(2)), dc("dc", b, tk, c.extent(2));
  auto cache = nn::make_attention_cache(b, tq, tk, p);
  auto ws = nn::make_attention_workspace(b, tq, tk, p, block);
  ws.fused = fused;
  CHECK(ws.block() == std::min<int>(block, int(tq)));
  for (int pass = 0; pass < 2; ++pass) {
    if (self) {
      nn::self_attention_forward(space, x, p, mask, y, cache, ws);
      nn::self_attention_backward(space, dy, x, p, d, mask, cache, ws, dx);
    } else {
      nn::attention_forward(space, x, c, p, mask, y, cache, ws);
      nn::attention_backward(space, dy, x, c, p, d, mask, cache, ws, dx, dc);
    }
  }
  const double tol = test::parity_tol<T>();
  INFO(name << " block " << block << (std::is_same_v<T, float> ? " float" : " double") << (fused ? " fused" : " blocked"));
  CHECK(g.error(y, "y") < tol);
  {
    // A pass without a backward (keep_for_backward = false; the fused host path then reads the projections in
    // place): the same output bits, and a backward through it is refused.
    auto ws2 = nn::make_attention_workspace(b, tq, tk, p, block);
    ws2.fused = fused;
    ws2.keep_for_backward = false;
    auto cache2 = nn::make_attention_cache(b, tq, tk, p);
    View3<T, Mem> y2("y2", b, tq, p.o.out_features());
    if (self)
      nn::self_attention_forward(space, x, p, mask, y2, cache2, ws2);
    else
      nn::attention_forward(space, x, c, p, mask, y2, cache2, ws2);
    CHECK(test::to_doubles(y2) == test::to_doubles(y));
    if (self)
      CHECK_THROWS_WITH(nn::self_attention_backward(space, dy, x, p, d, mask, cache2, ws2, dx),
                        Catch::Contains("keep_for_backward = false"));
  }
  CHECK(g.error(dx, "dx") < tol);
  if (!self) CHECK(g.error(dc, "dcontext") < tol);
  double scale = 0;  // largest golden parameter gradient
  for (const char* n : {"dq_weight", "dk_weight", "dv_weight", "do_weight", "dq_bias", "dv_bias", "do_bias"})
    for (double v : g.values(n)) scale = std::max(scale, 2 * std::abs(v));
  for (const char* n : {"q", "k", "v", "o"}) {
    const nn::Linear<T, Mem>& l = n[0] == 'q' ? d.q : n[0] == 'k' ? d.k : n[0] == 'v' ? d.v : d.o;
    check_doubled<T>(g, test::to_doubles(l.weight), std::string("d") + n + "_weight", 0);
    check_doubled<T>(g, test::to_doubles(l.bias), std::string("d") + n + "_bias", n[0] == 'k' ? scale : 0);
  }
  // Rows without an allowed key: the attention output is exactly zero (y = o.bias), dx row exactly 0.
  if (g.meta_int("empty_rows") > 0) {
    const auto qg = g.file.to_vector<int>("q_groups");
    auto yh = compat::to_host(y);
    auto dxh = compat::to_host(dx);
    auto outh = compat::to_host(cache.out);
    auto bias = compat::to_host(p.o.bias);
    const int empty_q = 3;  // the query placed far from every key by the golden script
    REQUIRE(qg[3 * empty_q + 1] == 9);
    for (std::size_t bi = 0; bi < b; ++bi) {
      for (std::size_t j = 0; j < y.extent(2); ++j) CHECK(yh(bi, empty_q, j) == bias(j));
      for (std::size_t j = 0; j < dx.extent(2); ++j) CHECK(dxh(bi, empty_q, j) == T(0));
      for (std::size_t j = 0; j < cache.out.extent(1); ++j) CHECK(outh(bi * tq + empty_q, j) == T(0));
    }
  }
}

/// Group ids for token i of a sequence, per mask kind (deterministic, with repeats and reversals).
std::vector<int> groups_for(nn::MaskKind kind, int t, bool far_first) {
  std::vector<int> v;
  for (int i = 0; i < t; ++i) {
    std::array<int, 3> gi = {0, 0, 0};
    if (kind == nn::MaskKind::LevelCausal) gi = {(i * 7 + 1) % 3, 0, 0};
    if (kind == nn::MaskKind::SegmentLevelCausal) gi = {(i * 7 + 1) % 3, (i * 5) % 2, 0};
    if (kind == nn::MaskKind::Neighbourhood) gi = {i % 2, (i / 2) % 3, (i * 2) % 3};
    if (far_first && i == 0) gi = {100, 100, 100};
    v.insert(v.end(), gi.begin(), gi.end());
  }
  return v;
}

template <class Mem>
nn::Linear<double, Mem> random_linear(int out, int in, std::uint64_t seed) {
  nn::Linear<double, Mem> l{View2<double, Mem>("w", out, in), View1<double, Mem>("b", out)};
  test::fill_uniform(l.weight, seed);
  test::fill_uniform(l.bias, seed + 1);
  return l;
}

struct GradCase {
  nn::MaskKind kind;
  int b, tq, tk, d, dc, e, dout, heads, block;
  bool self, far_query;  // far_query: query 0 has no allowed key (Neighbourhood)
};

template <class ExecSpace>
void check_attention_gradients(const GradCase& gc, bool fused) {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  nn::Attention<double, Mem> p;
  p.q = random_linear<Mem>(gc.e, gc.d, 301);
  p.k = random_linear<Mem>(gc.e, gc.dc, 303);
  p.v = random_linear<Mem>(gc.e, gc.dc, 305);
  p.o = random_linear<Mem>(gc.dout, gc.e, 307);
  p.heads = gc.heads;
  auto g = zero_like(p);
  const int tk = gc.self ? gc.tq : gc.tk;
  auto mask = nn::make_attention_mask<Mem>(gc.kind, groups_for(gc.kind, gc.tq, gc.far_query),
                                           groups_for(gc.kind, tk, false), 1);
  View3<double, Mem> x("x", gc.b, gc.tq, gc.d), dx("dx", gc.b, gc.tq, gc.d);
  View3<double, Mem> c("c", gc.b, tk, gc.dc), dc("dc", gc.b, tk, gc.dc);
  View3<double, Mem> y("y", gc.b, gc.tq, gc.dout), proj("proj", gc.b, gc.tq, gc.dout);
  test::fill_uniform(x, 309);
  test::fill_uniform(c, 310);
  test::fill_uniform(proj, 311);
  Kokkos::deep_copy(dx, 7.0);  // dx and dcontext are written, whatever they held
  Kokkos::deep_copy(dc, 7.0);
  auto cache = nn::make_attention_cache(gc.b, gc.tq, tk, p);
  auto ws = nn::make_attention_workspace(gc.b, gc.tq, tk, p, gc.block);
  ws.fused = fused;
  auto forward = [&] {
    if (gc.self)
      nn::self_attention_forward(space, x, p, mask, y, cache, ws);
    else
      nn::attention_forward(space, x, c, p, mask, y, cache, ws);
  };
  forward();
  if (gc.self)
    nn::self_attention_backward(space, proj, x, p, g, mask, cache, ws, dx);
  else
    nn::attention_backward(space, proj, x, c, p, g, mask, cache, ws, dx, dc);
  auto loss = [&] {
    forward();
    return test::dot(y, proj);
  };
  INFO("mask " << nn::mask_kind_name(gc.kind) << (gc.self ? " self" : " cross") << " B=" << gc.b << " Tq=" << gc.tq
               << " Tk=" << tk << " D=" << gc.d << " Dc=" << gc.dc << " E=" << gc.e << " H=" << gc.heads
               << " block=" << gc.block << (fused ? " fused" : " blocked"));
  for (double v : test::to_doubles(y)) REQUIRE(std::isfinite(v));
  // 16 elements per tensor (first and last included) keep the many small kernel launches affordable.
  auto check = [&](const char* what, auto& param, auto& grad) {
    test::check_gradient(what, space, param, grad, loss, 1e-6, 1e-6, 16);
  };
  check("attention dx", x, dx);
  if (!gc.self) check("attention dcontext", c, dc);
  check("attention dq.weight", p.q.weight, g.q.weight);
  check("attention dq.bias", p.q.bias, g.q.bias);
  check("attention dk.weight", p.k.weight, g.k.weight);
  check("attention dk.bias", p.k.bias, g.k.bias);
  check("attention dv.weight", p.v.weight, g.v.weight);
  check("attention dv.bias", p.v.bias, g.v.bias);
  check("attention do.weight", p.o.weight, g.o.weight);
  check("attention do.bias", p.o.bias, g.o.bias);
}

template <class ExecSpace>
void check_attention_errors() {
  using Mem = typename ExecSpace::memory_space;
  ExecSpace space;
  nn::Attention<float, Mem> p;
  p.q = {View2<float, Mem>("q", 6, 4), View1<float, Mem>("qb", 6)};
  p.k = {View2<float, Mem>("k", 6, 3), View1<float, Mem>("kb", 6)};
  p.v = {View2<float, Mem>("v", 6, 3), View1<float, Mem>("vb", 6)};
  p.o = {View2<float, Mem>("o", 4, 6), View1<float, Mem>("ob", 4)};
  p.heads = 4;
  CHECK_THROWS_WITH(nn::make_attention_cache(2, 5, 7, p), Catch::Contains("dcsldm::make_attention_cache") &&
                                                              Catch::Contains("= 6 is not divisible by heads = 4"));
  p.heads = 2;
  auto cache = nn::make_attention_cache(2, 5, 7, p);
  auto ws = nn::make_attention_workspace(2, 5, 7, p, 2);
  View3<float, Mem> x("x", 2, 5, 4), c("c", 2, 7, 3), y("y", 2, 5, 4), bad_c("bad_c", 2, 7, 4);
  auto full = nn::make_full_mask<Mem>();
  CHECK_THROWS_WITH(nn::attention_forward(space, x, bad_c, p, full, y, cache, ws),
                    Catch::Contains("dcsldm::attention_forward") && Catch::Contains("context.extent(2) = 4") &&
                        Catch::Contains("k.in_features = 3"));
  auto level = nn::make_level_causal_mask<Mem>({0, 1, 1, 2}, {0, 0, 1, 1, 2, 2, 2});
  CHECK_THROWS_WITH(nn::attention_forward(space, x, c, p, level, y, cache, ws),
                    Catch::Contains("dcsldm::attention_forward") && Catch::Contains("q_groups is (4, 3)") &&
                        Catch::Contains("expected (5, 3)"));
  auto ws_wrong = nn::make_attention_workspace(2, 5, 6, p, 2);
  CHECK_THROWS_WITH(nn::attention_forward(space, x, c, p, full, y, cache, ws_wrong),
                    Catch::Contains("dcsldm::attention_forward") && Catch::Contains("workspace does not fit") &&
                        Catch::Contains("Tk = 7"));
  // Self-attention needs k.in_features == D.
  CHECK_THROWS_WITH(nn::self_attention_forward(space, x, p, full, y, cache, ws),
                    Catch::Contains("dcsldm::self_attention_forward") && Catch::Contains("context.extent(2) = 4"));
  auto g = zero_like(p);
  g.o = {View2<float, Mem>("o", 4, 5), View1<float, Mem>("ob", 4)};
  View3<float, Mem> dx("dx", 2, 5, 4), dc("dc", 2, 7, 3);
  nn::attention_forward(space, x, c, p, full, y, cache, ws);
  CHECK_THROWS_WITH(nn::attention_backward(space, y, x, c, p, g, full, cache, ws, dx, dc),
                    Catch::Contains("dcsldm::attention_backward") && Catch::Contains("gradient o is (4, 5)"));
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("self-attention matches PyTorch for every mask kind", "[attention][mha]", ExecSpaces) {
  for (const bool fused : {true, false})
    for (const char* kind : {"full", "causal", "level_causal", "segment_level_causal", "neighbourhood"})
      for (int block : {0, 1, 128}) {  // 0: the golden's block of 3 rows (T = 7: blocks of 3, 3, 1)
        check_attention_golden<TestType, float>(std::string("attn_self_") + kind, block, fused);
        check_attention_golden<TestType, double>(std::string("attn_self_") + kind, block, fused);
      }
}
TEMPLATE_LIST_TEST_CASE("cross-attention matches PyTorch", "[attention][mha]", ExecSpaces) {
  for (const bool fused : {true, false}) {
    for (int block : {0, 3, 128}) {
      check_attention_golden<TestType, float>("attn_cross_neighbourhood", block, fused);
      check_attention_golden<TestType, double>("attn_cross_neighbourhood", block, fused);
    }
    check_attention_golden<TestType, float>("attn_cross_tq1", 0, fused);
    check_attention_golden<TestType, double>("attn_cross_tq1", 0, fused);
  }
}
TEMPLATE_LIST_TEST_CASE("attention gradients match finite differences", "[attention][mha][grad]", ExecSpaces) {
  using K = nn::MaskKind;
  for (const bool fused : {true, false}) {
    // kind, B, Tq, Tk, D, Dc, E, Dout, heads, block, self, far_query
    for (K kind : {K::Full, K::Causal, K::LevelCausal, K::SegmentLevelCausal, K::Neighbourhood})
      check_attention_gradients<TestType>({kind, 2, 5, 5, 4, 4, 4, 3, 2, 2, true, false}, fused);
    check_attention_gradients<TestType>({K::Neighbourhood, 2, 3, 5, 4, 3, 6, 5, 3, 2, false, true}, fused);
    check_attention_gradients<TestType>({K::LevelCausal, 1, 4, 3, 3, 2, 2, 3, 1, 3, false, false}, fused);
    check_attention_gradients<TestType>({K::Full, 1, 1, 1, 1, 1, 1, 1, 1, 128, true, false}, fused);
    check_attention_gradients<TestType>({K::Full, 1, 1, 1, 1, 1, 1, 1, 1, 128, false, false}, fused);
    check_attention_gradients<TestType>({K::Full, 0, 3, 3, 2, 2, 2, 2, 1, 2, true, false}, fused);
    check_attention_gradients<TestType>({K::Full, 2, 0, 3, 2, 3, 2, 2, 1, 2, false, false}, fused);
    check_attention_gradients<TestType>({K::Full, 2, 3, 0, 2, 3, 2, 2, 1, 2, false, false}, fused);
  }
}
TEMPLATE_LIST_TEST_CASE("fused host attention equals the blocked GEMM path at the models' sizes", "[attention][mha]",
                        ExecSpaces) {
  // The encoder's shape (81 tokens: 49 patches + 32 latents in 4 levels, 4 heads of 32) and the DiT's
  // (32 tokens), float; every output and gradient of the two paths within float rounding. Also 20 tokens
  // with heads of 16 (a partial 16-key chunk in the AVX-512 softmax rows) and 64 with heads of 64.
  using Mem = typename TestType::memory_space;
  TestType space;
  for (const auto [t, heads] : {std::pair{81, 4}, std::pair{32, 4}, std::pair{20, 8}, std::pair{64, 2}}) {
    nn::Attention<float, Mem> p;
    auto lin = [](int out, int in, std::uint64_t seed) {
      nn::Linear<float, Mem> l{View2<float, Mem>("w", out, in), View1<float, Mem>("b", out)};
      test::fill_uniform(l.weight, seed, -0.3, 0.3);
      test::fill_uniform(l.bias, seed + 1, -0.1, 0.1);
      return l;
    };
    p.q = lin(128, 128, 11);
    p.k = lin(128, 128, 13);
    p.v = lin(128, 128, 15);
    p.o = lin(128, 128, 17);
    p.heads = heads;
    std::vector<int> levels(std::size_t(t) * 3, 0);
    for (int i = 0; i < t; ++i) levels[std::size_t(i) * 3] = i < t - 32 ? 0 : 1 + (i - (t - 32)) / 8;
    if (t < 32)
      for (int i = 0; i < t; ++i) levels[std::size_t(i) * 3] = i / 6;
    auto mask = nn::make_attention_mask<Mem>(nn::MaskKind::LevelCausal, levels, levels);
    const int b = 3;
    View3<float, Mem> x("x", b, t, 128), dy("dy", b, t, 128);
    test::fill_uniform(x, 21, -1.0, 1.0);
    test::fill_uniform(dy, 23, -1.0, 1.0);
    std::vector<std::vector<double>> res[2];
    for (const bool fused : {true, false}) {
      auto cache = nn::make_attention_cache(b, t, t, p);
      auto ws = nn::make_attention_workspace(b, t, t, p);
      ws.fused = fused;
      auto g = zero_like(p);
      View3<float, Mem> y("y", b, t, 128), dx("dx", b, t, 128);
      nn::self_attention_forward(space, x, p, mask, y, cache, ws);
      nn::self_attention_backward(space, dy, x, p, g, mask, cache, ws, dx);
      auto& r = res[fused ? 0 : 1];
      for (auto v : {test::to_doubles(y), test::to_doubles(dx), test::to_doubles(cache.lse), test::to_doubles(g.q.weight),
                     test::to_doubles(g.k.weight), test::to_doubles(g.v.weight), test::to_doubles(g.o.weight),
                     test::to_doubles(g.q.bias), test::to_doubles(g.v.bias)})
        r.push_back(v);
    }
    const char* names[] = {"y", "dx", "lse", "dq.weight", "dk.weight", "dv.weight", "do.weight", "dq.bias", "dv.bias"};
    for (std::size_t n = 0; n < res[0].size(); ++n) {
      double num = 0, den = 0;
      for (std::size_t i = 0; i < res[0][n].size(); ++i) {
        num = std::max(num, std::abs(res[0][n][i] - res[1][n][i]));
        den = std::max(den, std::abs(res[1][n][i]));
      }
      INFO("T = " << t << ", heads " << heads << ": " << names[n] << " max abs diff " << num << ", scale " << den);
      CHECK(den > 0);
      CHECK(num <= 2e-5 * den);
    }
  }
}
TEMPLATE_LIST_TEST_CASE("attention errors", "[attention][mha]", ExecSpaces) { check_attention_errors<TestType>(); }
