// DCS-DiT model: whole-model gradients by finite differences, level causality, the clean prefix's
// independence of the noisy tokens and of t (what makes a key/value cache valid), model files and latent
// statistics, determinism.
#include <dcsldm/dit/model.hpp>

#include "testing.hpp"

#include <cstdio>
#include <filesystem>

using namespace dcsldm;
using dcsldm::test::fill_uniform;
using dcsldm::test::to_doubles;

namespace {

using Exec = Kokkos::DefaultExecutionSpace;
using Mem = Exec::memory_space;

dit::DitConfig tiny_config(int classes = 3) {
  dit::DitConfig c;
  c.level_sizes = {2, 1, 3};
  c.latent_channels = 3;
  c.width = 12;
  c.heads = 2;
  c.layers = 2;
  c.mlp_ratio = 2;
  c.freq_dim = 8;
  c.num_classes = classes;
  return c;
}

struct Inputs {
  View3<double, Mem> xt, v, proj;
  View1<double, Mem> t;
  Kokkos::View<int*, Mem> labels;
};

Inputs make_inputs(const dit::DitConfig& c, int B, int levels, std::uint64_t seed) {
  const std::size_t S = std::size_t(c.tokens_upto(levels)), lc = std::size_t(c.latent_channels);
  Inputs in{View3<double, Mem>("xt", B, S, lc), View3<double, Mem>("v", B, S, lc), View3<double, Mem>("proj", B, S, lc),
            View1<double, Mem>("t", B), Kokkos::View<int*, Mem>("labels", B)};
  fill_uniform(in.xt, seed, -2, 2);
  fill_uniform(in.proj, seed + 1);
  fill_uniform(in.t, seed + 2, 0.05, 0.95);
  auto hl = Kokkos::create_mirror_view(in.labels);
  for (int b = 0; b < B; ++b) hl(b) = b % (c.num_classes + 1);  // includes the null label
  Kokkos::deep_copy(in.labels, hl);
  return in;
}

double loss_and_grad(dit::Dit<Exec, double>& model, const Inputs& in, int levels, int split, bool backward) {
  Exec space;
  const auto& p = model.plan(int(in.xt.extent(0)), levels, true);
  dit::dit_forward(space, in.xt, in.t, in.labels, split, model.params(), model.config(), in.v, p);
  if (backward) {
    optim::zero_grad(space, model.arena());
    dit::dit_backward(space, in.proj, in.xt, split, model.params(), model.grads(), model.config(), p);
  }
  space.fence();
  return test::dot(in.v, in.proj);
}

}  // namespace

TEST_CASE("dit: whole-model gradients match finite differences", "[dit][gradient]") {
  const auto cfg = tiny_config();
  for (int split : {0, 2}) {
    dit::Dit<Exec, double> model(cfg, optim::ArenaState::ParamsAndOptimizer);
    model.init(Exec(), 5);
    // AdaLN-Zero starts at zero: fill everything so every path carries gradient.
    fill_uniform(model.arena().params, 9, -0.4, 0.4);
    const Inputs in = make_inputs(cfg, 3, cfg.levels(), 21);
    loss_and_grad(model, in, cfg.levels(), split, true);
    View1<double, Mem> gcopy("g", model.arena().grads.extent(0));
    Kokkos::deep_copy(gcopy, model.arena().grads);
    for (const auto& s : model.arena().layout.slots()) {
      auto p = model.arena().flat(s, model.arena().params);
      auto g = model.arena().flat(s, gcopy);
      test::check_gradient(s.name.c_str(), Exec(), p, g, [&] { return loss_and_grad(model, in, cfg.levels(), split, false); },
                           1e-6, 2e-6, 8);
    }
  }
}

TEST_CASE("dit: level-causal, and the clean prefix ignores the noisy tokens and t", "[dit]") {
  const auto cfg = tiny_config();
  dit::Dit<Exec, double> model(cfg);
  model.init(Exec(), 5);
  fill_uniform(model.arena().params, 9, -0.4, 0.4);
  const int L = cfg.levels(), S = cfg.tokens_upto(L), n1 = cfg.tokens_upto(1), n2 = cfg.tokens_upto(2);
  Exec space;
  Inputs a = make_inputs(cfg, 2, L, 31);
  model.velocity(space, a.xt, a.t, a.labels, L, 0, a.v);
  const auto va = to_doubles(a.v);
  // Change the tokens of level 3 only: outputs of levels 1..2 are bit-identical, level 3's change.
  Inputs b = make_inputs(cfg, 2, L, 31);
  {
    auto h = Kokkos::create_mirror_view(b.xt);
    Kokkos::deep_copy(h, b.xt);
    for (int bb = 0; bb < 2; ++bb)
      for (int n = n2; n < S; ++n) h(bb, n, 1) += 0.5;
    Kokkos::deep_copy(b.xt, h);
  }
  model.velocity(space, b.xt, b.t, b.labels, L, 0, b.v);
  const auto vb = to_doubles(b.v);
  const std::size_t lc = std::size_t(cfg.latent_channels);
  bool later_changed = false;
  for (int bb = 0; bb < 2; ++bb)
    for (int n = 0; n < S; ++n)
      for (std::size_t ch = 0; ch < lc; ++ch) {
        const std::size_t i = (std::size_t(bb) * S + std::size_t(n)) * lc + ch;
        if (n < n2) REQUIRE(va[i] == vb[i]);
        else if (va[i] != vb[i]) later_changed = true;
      }
  CHECK(later_changed);
  // Running only the first m levels gives the same outputs for them as running all levels.
  Inputs c2 = make_inputs(cfg, 2, 2, 31);  // the first levels' tokens and t are copied from `a` below
  {
    auto hx = Kokkos::create_mirror_view(a.xt);
    Kokkos::deep_copy(hx, a.xt);
    auto hc = Kokkos::create_mirror_view(c2.xt);
    for (int bb = 0; bb < 2; ++bb)
      for (int n = 0; n < n2; ++n)
        for (std::size_t ch = 0; ch < lc; ++ch) hc(bb, n, ch) = hx(bb, n, ch);
    Kokkos::deep_copy(c2.xt, hc);
    Kokkos::deep_copy(c2.t, a.t);
  }
  model.velocity(space, c2.xt, c2.t, c2.labels, 2, 0, c2.v);
  const auto vc = to_doubles(c2.v);
  for (int bb = 0; bb < 2; ++bb)
    for (int n = 0; n < n2; ++n)
      for (std::size_t ch = 0; ch < lc; ++ch)
        REQUIRE(vc[(std::size_t(bb) * n2 + std::size_t(n)) * lc + ch] == va[(std::size_t(bb) * S + std::size_t(n)) * lc + ch]);
  // Clean prefix (split = n1): its outputs depend neither on t nor on the noisy tokens.
  Inputs d = make_inputs(cfg, 2, L, 31);
  model.velocity(space, d.xt, d.t, d.labels, L, n1, d.v);
  const auto vd = to_doubles(d.v);
  fill_uniform(d.t, 99, 0.05, 0.95);
  {
    auto h = Kokkos::create_mirror_view(d.xt);
    Kokkos::deep_copy(h, d.xt);
    for (int bb = 0; bb < 2; ++bb)
      for (int n = n1; n < S; ++n) h(bb, n, 0) -= 0.7;
    Kokkos::deep_copy(d.xt, h);
  }
  model.velocity(space, d.xt, d.t, d.labels, L, n1, d.v);
  const auto ve = to_doubles(d.v);
  for (int bb = 0; bb < 2; ++bb)
    for (int n = 0; n < n1; ++n)
      for (std::size_t ch = 0; ch < lc; ++ch) {
        const std::size_t i = (std::size_t(bb) * S + std::size_t(n)) * lc + ch;
        REQUIRE(vd[i] == ve[i]);
      }
  // ... and a clean prefix is not the same as the same tokens at time t.
  CHECK(test::rel_error(vd, va) > 1e-6);
}

TEST_CASE("dit: model files round-trip with their statistics; bad files are refused", "[dit][io]") {
  const auto cfg = tiny_config();
  dit::Dit<Exec, float> model(cfg);
  model.init(Exec(), 3);
  fill_uniform(model.arena().params, 4, -0.3, 0.3);
  std::vector<double> mean, sd;
  for (int i = 0; i < cfg.levels() * cfg.latent_channels; ++i) {
    mean.push_back(0.1 * i - 0.3);
    sd.push_back(0.5 + 0.25 * i);
  }
  model.set_latent_stats(mean, sd);
  const auto dir = std::filesystem::temp_directory_path() / "dcsldm_test_dit";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "m.safetensors").string();
  model.save(path);
  auto back = dit::Dit<Exec, float>::load(path);
  for (const auto& sl : model.arena().layout.slots())  // slot by slot (the arena's padding is not saved)
    CHECK(to_doubles(back.arena().flat(sl, back.arena().params)) == to_doubles(model.arena().flat(sl, model.arena().params)));
  for (std::size_t i = 0; i < mean.size(); ++i) {
    CHECK(back.latent_mean()[i] == Approx(mean[i]).epsilon(1e-8));
    CHECK(back.latent_std()[i] == Approx(sd[i]).epsilon(1e-8));
  }
  // normalize then denormalize restores the latent
  View3<float, Mem> z("z", 2, std::size_t(cfg.latent_tokens()), std::size_t(cfg.latent_channels));
  fill_uniform(z, 8, -3, 3);
  const auto z0 = to_doubles(z);
  back.normalize(Exec(), z);
  CHECK(test::rel_error(to_doubles(z), z0) > 0.1);
  back.denormalize(Exec(), z);
  CHECK(test::rel_error(to_doubles(z), z0) < 1e-6);
  // A tokenizer file or a truncated file is refused with the file's name.
  {
    std::FILE* f = std::fopen(path.c_str(), "rb+");
    REQUIRE(f);
    std::filesystem::resize_file(path, std::filesystem::file_size(path) - 10);
    std::fclose(f);
  }
  using DitF = dit::Dit<Exec, float>;
  CHECK_THROWS_WITH(DitF::load(path), Catch::Contains("m.safetensors"));
  const std::vector<double> one{1.0};
  CHECK_THROWS_WITH(model.set_latent_stats(one, one), Catch::Contains("expected L * c"));
  std::vector<double> bad = sd;
  bad[2] = 0;
  CHECK_THROWS_WITH(model.set_latent_stats(mean, bad), Catch::Contains("std must be finite and > 0"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("dit: same inputs, same bits; float agrees with double", "[dit][determinism]") {
  const auto cfg = tiny_config();
  dit::Dit<Exec, double> md(cfg);
  md.init(Exec(), 5);
  fill_uniform(md.arena().params, 9, -0.4, 0.4);
  dit::Dit<Exec, float> mf(cfg);
  {
    auto hd = compat::to_host(md.arena().params);
    auto hf = Kokkos::create_mirror_view(mf.arena().params);
    for (std::size_t i = 0; i < hf.extent(0); ++i) hf(i) = float(hd(i));
    Kokkos::deep_copy(mf.arena().params, hf);
  }
  Exec space;
  const Inputs in = make_inputs(cfg, 4, cfg.levels(), 41);
  md.velocity(space, in.xt, in.t, in.labels, cfg.levels(), 2, in.v);
  const auto v1 = to_doubles(in.v);
  md.velocity(space, in.xt, in.t, in.labels, cfg.levels(), 2, in.v);
  CHECK(to_doubles(in.v) == v1);
  View3<float, Mem> xf("xf", in.xt.extent(0), in.xt.extent(1), in.xt.extent(2)), vf("vf", in.v.extent(0), in.v.extent(1), in.v.extent(2));
  View1<float, Mem> tf("tf", in.t.extent(0));
  {
    auto hx = compat::to_host(in.xt);
    auto hxf = Kokkos::create_mirror_view(xf);
    for (std::size_t i = 0; i < hx.extent(0); ++i)
      for (std::size_t j = 0; j < hx.extent(1); ++j)
        for (std::size_t k = 0; k < hx.extent(2); ++k) hxf(i, j, k) = float(hx(i, j, k));
    Kokkos::deep_copy(xf, hxf);
    auto ht = compat::to_host(in.t);
    auto htf = Kokkos::create_mirror_view(tf);
    for (std::size_t i = 0; i < ht.extent(0); ++i) htf(i) = float(ht(i));
    Kokkos::deep_copy(tf, htf);
  }
  mf.velocity(space, xf, tf, in.labels, cfg.levels(), 2, vf);
  CHECK(test::rel_error(to_doubles(vf), v1) < 1e-4);
}
