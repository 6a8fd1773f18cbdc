// dcsldm: the command-line tool of the library.
//   dcsldm info            --model M
//   dcsldm train-tokenizer --preset fmnist|glyphs [--data ...] --out M [...]
//   dcsldm eval-tokenizer  --model M --data SRC --in-res R --out-res R1,R2 [--levels 1,2] [--n N] [--json F]
//                          [--target-psnr P]
//   dcsldm train-dit       --tokenizer M --out D [--steps N] [...]
//   dcsldm generate        --tokenizer M --model D --out DIR [--class C] [--n N] [--levels m] [--res R1,R2]
//                          [--steps S] [--sampler euler|heun|dpm++2m] [--cfg X] [--seed S] [--progressive | --stages l1,l2]
//   dcsldm train-classifier --out C [--steps N] [...]
//   dcsldm eval-generation [--tokenizer M] [--model D] [--classifier C] [--n N] [--levels m1,m2] [--steps S]
//                          [--sampler S] [--cfg X] [--seed S] [--progressive | --stages l1,l2] [--json F]
// Every subcommand has --help. Usage errors exit with status 2, runtime errors (bad files, bad data) with 1,
// both with a message naming the problem.
#include "args.hpp"

#include <xtensor/xmath.hpp>

#include <dcsldm/baseline/vit_autoencoder.hpp>
#include <dcsldm/cls/trainer.hpp>
#include <dcsldm/core/progress.hpp>
#include <dcsldm/dit/latent_set.hpp>
#include <dcsldm/dit/sampler.hpp>
#include <dcsldm/dit/trainer.hpp>
#include <dcsldm/data/idx.hpp>
#include <dcsldm/image/png.hpp>
#include <dcsldm/eval/generation_eval.hpp>
#include <dcsldm/eval/tokenizer_eval.hpp>
#include <dcsldm/tok/model.hpp>
#include <dcsldm/tok/train_sources.hpp>
#include <dcsldm/tok/trainer.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <cstdlib>
#include <unistd.h>

namespace {

using Exec = Kokkos::DefaultExecutionSpace;
using Mem = Exec::memory_space;
using Tok = dcsldm::tok::Tokenizer<Exec, float>;
namespace tok = dcsldm::tok;
namespace eval = dcsldm::eval;
namespace dit = dcsldm::dit;
namespace cls = dcsldm::cls;
using DitF = dit::Dit<Exec, float>;
using VitAe = dcsldm::baseline::VitAutoencoder<Exec, float>;

std::string backend_name() {
  std::ostringstream o;
  o << Exec::name() << " (concurrency " << Exec().concurrency() << ")";
  return o.str();
}

/// A shipped model's default path: examples/models/<name> under the working directory when it is there,
/// else in the source tree this tool was built from.
std::string shipped(const std::string& name) {
  const std::string local = "examples/models/" + name;
#ifdef DCSLDM_MODELS_DIR
  if (!std::filesystem::exists(local)) return std::string(DCSLDM_MODELS_DIR) + "/" + name;
#endif
  return local;
}

/// Progress for long work: a rewritten line on a terminal, a log line every `every` items otherwise.
struct Progress {
  std::string what;
  bool tty = isatty(fileno(stderr)) != 0;
  std::size_t last = 0;
  void operator()(std::size_t done, std::size_t total) {
    if (tty) {
      const int w = 30, f = total ? int(double(done) / double(total) * w) : w;
      std::fprintf(stderr, "\r%s [%s%s] %zu/%zu", what.c_str(), std::string(std::size_t(f), '#').c_str(),
                   std::string(std::size_t(w - f), '.').c_str(), done, total);
      if (done == total) std::fprintf(stderr, "\n");
    } else if (done == total || done >= last + total / 10) {
      std::fprintf(stderr, "%s: %zu/%zu\n", what.c_str(), done, total);
      last = done;
    }
  }
  /// A trainer's per-step callback: the bar on a terminal (the trainers print their own log lines), none
  /// otherwise.
  std::function<void(std::int64_t, std::int64_t)> step_callback() {
    if (!tty) return {};
    return [this](std::int64_t done, std::int64_t total) { (*this)(std::size_t(done), std::size_t(total)); };
  }
};

// ------------------------------------------------------------------------------------------ set-cell-floor
int cmd_set_cell_floor(int argc, char** argv) {
  cli::Args a("set-cell-floor",
              "Record a tokenizer's cell floors (docs/tokenizer.md): the smallest pixel cells of its training,\n"
              "k / (largest input scale) and k / (largest target scale), so that inputs and outputs above the\n"
              "training scales are read and rendered as at the largest one. The trainer records them itself; this\n"
              "is for files trained before it did. With --targets also the decoder's edge margin: the smallest\n"
              "distance of a training target pixel from a patch edge (outputs above the training scales are blended\n"
              "across patch edges inside it). Rewrites --model atomically (parameters and metadata kept).",
              {{"model", "FILE", "tokenizer file (.safetensors), rewritten in place", ""},
               {"in-res", "R", "largest input scale of its training (pixels, shorter side)", ""},
               {"out-res", "R", "largest target scale of its training (pixels, shorter side)", ""},
               {"targets", "R1,R2,..", "every target scale of its training (sets the edge margin)", ""}});
  a.parse(argc, argv, 2);
  if (a.help()) return std::cout << a.usage(), 0;
  const std::string path = a.required("model");
  if (!a.has("in-res") || !a.has("out-res")) throw cli::UsageError("--in-res and --out-res are required");
  const int ri = int(a.integer("in-res", 1, 1, 1 << 20)), ro = int(a.integer("out-res", 1, 1, 1 << 20));
  const dcsldm::io::SafeTensors f = dcsldm::io::SafeTensors::read(path);
  Tok t = Tok::load(path);
  const double k = double(t.config().k);
  t.set_cell_floors(k / ri, k / ro);
  if (a.has("targets")) {
    const std::vector<int> targets = a.int_list("targets", {}, t.config().k, 1 << 20);
    if (*std::max_element(targets.begin(), targets.end()) != ro)
      throw cli::UsageError("--targets: the largest target scale must be --out-res " + std::to_string(ro));
    t.set_edge_margin(tok::training_edge_margin(t.config().k, targets));
  }
  std::map<std::string, std::string> extra;
  for (const auto& kv : f.metadata())
    if (kv.first.rfind("tok.", 0) != 0) extra[kv.first] = kv.second;
  t.save(path, dcsldm::optim::ArenaState::Params, 0, extra);
  std::printf("%s: cell floors %.6g (inputs, k = %g / %d px) and %.6g (outputs, / %d px); edge margin %.6g\n",
              path.c_str(), t.config().cell_floor_in, k, ri, t.config().cell_floor_out, ro, t.config().edge_margin_out);
  return 0;
}

// ------------------------------------------------------------------------------------------ info
int cmd_info(int argc, char** argv) {
  cli::Args a("info",
              "Print a model file's kind, configuration, parameter count, training metadata, and the backend and\n"
              "threads this build runs on. Reads tokenizers, DiTs, classifiers and baseline autoencoders.",
              {{"model", "FILE", "model file (.safetensors)", ""}});
  a.parse(argc, argv, 2);
  if (a.help()) return std::cout << a.usage(), 0;
  const std::string path = a.required("model");
  const dcsldm::io::SafeTensors f = dcsldm::io::SafeTensors::read(path);
  const auto it = f.metadata().find("dcsldm.kind");
  const std::string kind = it == f.metadata().end() ? "" : it->second;
  std::size_t params = 0;
  std::map<std::string, std::string> md;
  std::string extra;
  if (kind == "dit") {
    DitF m = DitF::load(path);
    params = m.num_params();
    md = m.config().to_metadata();
    extra = "latent: " + std::to_string(m.config().latent_tokens()) + " tokens x " +
            std::to_string(m.config().latent_channels) + " channels in " + std::to_string(m.config().levels()) + " levels";
  } else if (kind == "classifier") {
    auto m = cls::Classifier<Exec, float>::load(path, 1);
    params = m.num_params();
    md = m.config().to_metadata();
    extra = "features: " + std::to_string(m.config().hidden);
  } else if (kind == "vit_autoencoder") {
    VitAe m = VitAe::load(path, 1);
    params = m.num_params();
    md = m.config().to_metadata();
    extra = "latent: " + std::to_string(m.config().latent_count()) + " tokens x " +
            std::to_string(m.config().latent_channels) + " channels (" +
            (m.config().patch_latent() ? "one per patch: a 2D latent" : "1D latent tokens") + ")";
  } else {
    Tok t = Tok::load(path);  // the tokenizer's loader names a wrong kind
    const auto& c = t.config();
    params = t.num_params();
    md = c.to_metadata();
    extra = "latent: " + std::to_string(c.latent_tokens()) + " tokens x " + std::to_string(c.latent_channels) +
            " channels = " + std::to_string(c.latent_tokens() * c.latent_channels) + " floats in " +
            std::to_string(c.levels()) + " levels";
  }
  std::printf("model: %s\nkind: %s\nparameters: %zu\n", path.c_str(), kind.c_str(), params);
  for (const auto& kv : md)
    if (kv.first != "dcsldm.kind") std::printf("%s: %s\n", kv.first.c_str(), kv.second.c_str());
  std::printf("%s\n", extra.c_str());
  for (const auto& kv : f.metadata())
    if (kv.first.rfind("train.", 0) == 0 || kv.first.rfind("eval.", 0) == 0)
      std::printf("%s: %s\n", kv.first.c_str(), kv.second.c_str());
  std::printf("backend: %s\n", backend_name().c_str());
  return 0;
}

// ------------------------------------------------------------------------------ train-tokenizer
struct Preset {
  tok::TokenizerConfig cfg;
  tok::TrainOptions opt;
  std::string data;
};

Preset preset(const std::string& name) {
  Preset p;
  if (name == "fmnist") {
    p.cfg.channels = 1;
    p.cfg.k = 7;
    p.cfg.queries = 1;
    p.cfg.level_sizes = {4, 4, 8, 16};
    p.cfg.latent_channels = 8;
    p.opt.in_res = {14, 21, 28};
    p.opt.out_res = {14, 21, 28};
    p.opt.batch = 32;
    p.data = "fmnist";
  } else if (name == "glyphs") {
    p.cfg.channels = 1;
    p.cfg.k = 8;
    p.cfg.queries = 1;
    p.cfg.level_sizes = {8, 8, 16, 32};
    p.cfg.latent_channels = 16;
    p.opt.in_res = {16, 24, 32, 48};
    p.opt.out_res = {16, 32, 48, 64};
    p.opt.batch = 16;
    // Glyphs are sparse: L1's per-pixel median is the blank canvas, and a latent L2 shrinks the latent before
    // the decoder uses it (both collapsed runs, docs/tokenizer.md): MSE only, light noise, no L2.
    p.opt.l1_weight = 0;
    p.opt.latent_l2 = 0;
    p.opt.latent_noise = 0.02;
    p.opt.warmup = 100;
    p.data = "glyphs";
  } else {
    throw cli::UsageError("unknown preset '" + name + "' (expected fmnist or glyphs)");
  }
  return p;
}

int cmd_train_tokenizer(int argc, char** argv) {
  cli::Args a("train-tokenizer",
              "Train a DCS-Tok tokenizer with asymmetric scale alignment (input and target at different scales).\n"
              "Checkpoints (<out>.ckpt, <out>.ckpt.ema) are written atomically; an existing checkpoint is resumed\n"
              "bit for bit. The EMA weights are written to --out at the end.",
              {{"preset", "NAME", "fmnist or glyphs: model and training defaults", "fmnist"},
               {"data", "SRC", "fmnist | glyphs | images:<folder of PNGs>", "the preset's"},
               {"out", "FILE", "model file to write", ""},
               {"steps", "N", "training steps", "10000"},
               {"batch", "N", "batch size", "the preset's"},
               {"lr", "X", "peak learning rate", "8e-4"},
               {"warmup", "N", "warm-up steps", "300 (glyphs preset: 100)"},
               {"in-res", "R1,R2", "input scales", "the preset's"},
               {"out-res", "R1,R2", "target scales", "the preset's"},
               {"max-target-pixels", "N", "train larger targets on a random window of N pixels per step (0: whole)", "0"},
               {"channels", "C", "channels of images:<folder> data", "1"},
               {"width", "D", "transformer width", "128"},
               {"layers", "N", "encoder and decoder blocks each", "3"},
               {"levels", "N1,N2,..", "latent tokens per level", "the preset's"},
               {"latent-channels", "c", "channels per latent token", "the preset's"},
               {"k", "K", "patches along the shorter side", "the preset's"},
               {"queries", "n", "tokens per patch", "the preset's"},
               {"pixel-width", "E", "width of the pixel tokens and pixel attentions", "64"},
               {"freqs", "F", "Fourier frequencies of in-patch pixel coordinates (pi 2^0 .. pi 2^(F-1))", "the preset's"},
               {"head-hidden", "H", "hidden width of the per-pixel output MLP", "64"},
               {"level-count-embedding", "", "tell the decoder how many levels it decodes (a learned embedding per count)", ""},
               {"latent-noise", "X", "std of the Gaussian noise on the latent in training", "0.05 (glyphs preset: 0.02)"},
               {"relative-noise", "", "--latent-noise is a fraction of each level's RMS (the same SNR for every level)", ""},
               {"latent-l2", "X", "weight of mean(z^2)", "1e-3 (glyphs preset: 0)"},
               {"full-levels", "P", "probability of decoding all levels (else m ~ U{1..L})", "0.5"},
               {"prefix-full-weight", "W", "prefix steps (m < L) also decode all levels; that loss weighted W", "0 (off)"},
               {"prefix-encoder-grad", "S", "scale of a prefix decode's gradient into the encoder (0: prefixes train the decoder only)", "1"},
               {"all-targets", "", "every step decodes its latent at every target scale (losses averaged)", ""},
               {"final-phase", "F", "last fraction F of the steps moves linearly to the --final-* choices", "0 (none)"},
               {"final-full-levels", "P", "--full-levels at the end of the final phase", "--full-levels"},
               {"final-in-res", "R1,R2", "input scales at the end of the final phase", "--in-res"},
               {"final-out-res", "R1,R2", "target scales at the end of the final phase", "--out-res"},
               {"l1-weight", "X", "weight of the L1 loss term", "the preset's"},
               {"seed", "S", "random seed", "1"},
               {"init", "NAME", "initialisation of a fresh start: unit or small (tokenizer_params.hpp)", "unit"},
               {"from", "FILE", "fine-tune: start from this tokenizer's weights and architecture (fresh optimizer, step 0)", ""},
               {"log-every", "N", "steps between progress lines", "50"},
               {"ckpt-every", "N", "steps between checkpoints", "500"},
               {"no-resume", "", "start fresh even if a checkpoint exists", ""}});
  a.parse(argc, argv, 2);
  if (a.help()) return std::cout << a.usage(), 0;
  Preset p = preset(a.str("preset", "fmnist"));
  const std::string out = a.required("out");
  p.opt.steps = a.integer("steps", 10000, 1, 100000000);
  p.opt.batch = int(a.integer("batch", p.opt.batch, 1, 4096));
  p.opt.lr = a.real("lr", p.opt.lr, 1e-7, 1.0);
  p.opt.min_lr = p.opt.lr * 0.1;
  p.opt.warmup = a.integer("warmup", p.opt.warmup, 0, 100000000);
  p.opt.in_res = a.int_list("in-res", p.opt.in_res, 1, 4096);
  p.opt.out_res = a.int_list("out-res", p.opt.out_res, 1, 4096);
  p.opt.max_target_pixels = int(a.integer("max-target-pixels", 0, 0, 1 << 30));
  p.opt.seed = std::uint64_t(a.integer("seed", 1, 0, (1ll << 62)));
  try {
    p.opt.init = tok::init_scheme_from_name(a.str("init", "unit"));
  } catch (const std::exception& e) {
    throw cli::UsageError(std::string("--init: ") + e.what());
  }
  p.opt.log_every = a.integer("log-every", 50, 1, 100000000);
  p.opt.ckpt_every = a.integer("ckpt-every", 500, 0, 100000000);
  p.opt.ckpt_path = out + ".ckpt";
  p.opt.latent_noise = a.real("latent-noise", p.opt.latent_noise, 0, 10);
  p.opt.latent_noise_relative = a.has("relative-noise");
  p.opt.latent_l2 = a.real("latent-l2", p.opt.latent_l2, 0, 10);
  p.opt.full_levels_prob = a.real("full-levels", p.opt.full_levels_prob, 0, 1);
  p.opt.prefix_full_weight = a.real("prefix-full-weight", 0, 0, 100);
  p.opt.prefix_encoder_grad = a.real("prefix-encoder-grad", 1, 0, 1);
  p.opt.all_targets = a.has("all-targets");
  p.opt.final_fraction = a.real("final-phase", 0, 0, 1);
  p.opt.final_full_levels_prob = a.real("final-full-levels", p.opt.full_levels_prob, 0, 1);
  p.opt.final_in_res = a.int_list("final-in-res", {}, 1, 4096);
  p.opt.final_out_res = a.int_list("final-out-res", {}, 1, 4096);
  p.opt.l1_weight = a.real("l1-weight", p.opt.l1_weight, 0, 100);
  p.cfg.width = int(a.integer("width", p.cfg.width, 8, 4096));
  p.cfg.enc_layers = p.cfg.dec_layers = int(a.integer("layers", p.cfg.enc_layers, 1, 64));
  p.cfg.level_sizes = a.int_list("levels", p.cfg.level_sizes, 1, 4096);
  p.cfg.latent_channels = int(a.integer("latent-channels", p.cfg.latent_channels, 1, 4096));
  p.cfg.k = int(a.integer("k", p.cfg.k, 1, 4096));
  p.cfg.queries = int(a.integer("queries", p.cfg.queries, 1, 64));
  p.cfg.pixel_width = int(a.integer("pixel-width", p.cfg.pixel_width, 4, 4096));
  p.cfg.head_hidden = int(a.integer("head-hidden", p.cfg.head_hidden, 1, 4096));
  p.cfg.freqs = int(a.integer("freqs", p.cfg.freqs, 1, 16));
  p.cfg.level_count_embedding = a.has("level-count-embedding");
  const std::string from = a.str("from", "");
  if (!from.empty()) {
    // The architecture is the file's; its cell floors are set again from this run's scale lists.
    for (const char* flag : {"width", "layers", "levels", "latent-channels", "k", "queries", "pixel-width", "freqs",
                             "head-hidden", "level-count-embedding"})
      if (a.has(flag))
        throw cli::UsageError(std::string("--") + flag + " with --from: the architecture is the file's");
    p.cfg = tok::TokenizerConfig::from_metadata(dcsldm::io::SafeTensors::read(from).metadata(), from);
    p.cfg.cell_floor_in = p.cfg.cell_floor_out = 0;
  }
  const std::string data = a.str("data", p.data);
  std::unique_ptr<tok::TrainSource> src;
  if (data == "fmnist") {
    src = tok::fashion_mnist_source(p.opt.seed);
  } else if (data == "glyphs") {
    src = tok::GlyphSource::debian_train(p.opt.seed);
  } else if (data.rfind("images:", 0) == 0) {
    const int C = int(a.integer("channels", 1, 1, 4));
    int largest = *std::max_element(p.opt.out_res.begin(), p.opt.out_res.end());
    for (int r : p.opt.final_out_res) largest = std::max(largest, r);
    src = tok::png_folder_source(data.substr(7), C, largest, p.opt.seed);
  } else {
    throw cli::UsageError("--data '" + data + "': expected fmnist, glyphs or images:<folder>");
  }
  if (!from.empty() && p.cfg.channels != src->channels())
    throw cli::UsageError("--from '" + from + "' has " + std::to_string(p.cfg.channels) + " channels, the data " +
                          std::to_string(src->channels()));
  p.cfg.channels = src->channels();
  for (const auto& [flag, list] : {std::pair<const char*, const std::vector<int>*>{"--in-res", &p.opt.in_res},
                                    {"--out-res", &p.opt.out_res},
                                    {"--final-in-res", &p.opt.final_in_res},
                                    {"--final-out-res", &p.opt.final_out_res}})
    for (int r : *list)
      if (r < p.cfg.k)
        throw cli::UsageError(std::string(flag) + " " + std::to_string(r) + " is below k = " + std::to_string(p.cfg.k));
  Exec space;
  tok::TokenizerTrainer<Exec, float> tr(p.cfg, p.opt);
  const bool resumed = !a.has("no-resume") && tr.resume(space);
  if (!resumed && !from.empty()) tr.init_from(space, from);
  if (!resumed && from.empty()) tr.init(space);
  std::printf("train-tokenizer: %s, %zu parameters, latent %d x %d, data %s, batch %d, %lld steps%s, backend %s\n",
              out.c_str(), tr.model().num_params(), p.cfg.latent_tokens(), p.cfg.latent_channels,
              src->describe().c_str(), p.opt.batch, (long long)p.opt.steps,
              resumed ? (" (resumed at step " + std::to_string(tr.current_step()) + ")").c_str()
                      : (from.empty() ? "" : (" (from " + from + ")").c_str()),
              backend_name().c_str());
  std::fflush(stdout);
  const auto t0 = std::chrono::steady_clock::now();
  Progress bar{"train-tokenizer"};
  tr.run(space, *src, stdout, bar.step_callback());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::ostringstream cmd;
  for (int i = 0; i < argc; ++i) cmd << (i ? " " : "") << argv[i];
  tr.save_model(out, {{"train.command", cmd.str()}, {"train.data", src->describe()}});
  std::printf("wrote %s (EMA weights) after %.1f s in this run\n", out.c_str(), secs);
  return 0;
}

// --------------------------------------------------------------------------- train-baseline-ae
/// The conventional fixed-patch ViT autoencoder, trained with the DCS-Tok recipe at one scale.
int cmd_train_baseline_ae(int argc, char** argv) {
  cli::Args a("train-baseline-ae",
              "Train the conventional baseline: a fixed-patch ViT autoencoder with a 1D latent (same blocks,\n"
              "optimizer, schedule, EMA, latent noise and L1+MSE loss as train-tokenizer), on Fashion-MNIST at 28 px.\n"
              "Checkpoints (<out>.ckpt, <out>.ckpt.ema) are written atomically; an existing checkpoint is resumed\n"
              "bit for bit. The EMA weights are written to --out at the end.",
              {{"out", "FILE", "model file to write", ""},
               {"steps", "N", "training steps", "3500"},
               {"batch", "N", "batch size", "32"},
               {"lr", "X", "peak learning rate", "8e-4"},
               {"warmup", "N", "warm-up steps", "300"},
               {"patch", "P", "patch size in pixels", "4"},
               {"width", "D", "transformer width", "128"},
               {"layers", "N", "encoder and decoder blocks each", "3"},
               {"latent-tokens", "N", "latent tokens (0: one per patch, the 2D latent of a conventional LDM)", "32"},
               {"latent-channels", "c", "channels per latent token", "8"},
               {"init", "NAME", "initialisation scheme: small or unit (as train-tokenizer's --init)", "small"},
               {"latent-noise", "X", "std of the Gaussian noise on the latent in training", "0.05"},
               {"latent-l2", "X", "weight of mean(z^2)", "1e-3"},
               {"seed", "S", "random seed", "1"},
               {"log-every", "N", "steps between progress lines", "50"},
               {"ckpt-every", "N", "steps between checkpoints (0: none)", "500"},
               {"stop-after", "N", "stop after step N, checkpointed, to continue later (a time-limited job)", "--steps"},
               {"no-resume", "", "start fresh even if a checkpoint exists", ""}});
  a.parse(argc, argv, 2);
  if (a.help()) return std::cout << a.usage(), 0;
  const std::string out = a.required("out");
  const std::string ckpt = out + ".ckpt";
  dcsldm::baseline::VitAeConfig c;
  c.patch = int(a.integer("patch", 4, 1, 28));
  c.width = int(a.integer("width", 128, 8, 4096));
  c.layers = int(a.integer("layers", 3, 1, 64));
  c.latent_tokens = int(a.integer("latent-tokens", 32, 0, 4096));
  c.latent_channels = int(a.integer("latent-channels", 8, 1, 4096));
  if (28 % c.patch) throw cli::UsageError("--patch " + std::to_string(c.patch) + " does not divide 28");
  tok::TrainOptions o;
  o.batch = int(a.integer("batch", 32, 1, 4096));
  o.steps = a.integer("steps", 3500, 1, 100000000);
  o.lr = a.real("lr", o.lr, 1e-7, 1.0);
  o.min_lr = 0.1 * o.lr;
  o.warmup = a.integer("warmup", o.warmup, 0, 100000000);
  o.seed = std::uint64_t(a.integer("seed", 1, 0, (1ll << 62)));
  o.log_every = a.integer("log-every", 50, 1, 100000000);
  o.latent_noise = a.real("latent-noise", o.latent_noise, 0, 10);
  o.latent_l2 = a.real("latent-l2", o.latent_l2, 0, 10);
  const std::int64_t ckpt_every = a.integer("ckpt-every", 500, 0, 100000000);
  const std::int64_t stop_after = a.integer("stop-after", o.steps, 1, o.steps);
  if (a.has("stop-after") && ckpt_every == 0) throw cli::UsageError("--stop-after needs checkpoints (--ckpt-every > 0)");
  auto src = tok::fashion_mnist_source(o.seed);
  Exec space;
  dcsldm::baseline::VitAutoencoder<Exec, float> m(c, o.batch, dcsldm::optim::ArenaState::ParamsAndOptimizer);
  try {
    m.init(space, o.seed, tok::init_scheme_from_name(a.str("init", "small")));
  } catch (const dcsldm::Error& e) {
    throw cli::UsageError(std::string("--init: ") + e.what());
  }
  dcsldm::optim::ParamArena<float, Mem> ema(m.arena().layout, dcsldm::optim::ArenaState::Params);
  Kokkos::deep_copy(ema.params, m.arena().params);
  dcsldm::optim::AdamW adam;
  adam.weight_decay = o.weight_decay;
  const dcsldm::optim::WarmupCosine sched{o.lr, o.min_lr, o.warmup, o.steps};
  // The checkpoint records what the step sequence depends on besides the architecture (every random choice of step
  // s is a function of (seed, s); the schedule of steps, lr, warm-up; the loss's latent noise and L2): a resume must
  // match all of it.
  auto exact = [](double v) {
    std::ostringstream os;
    os.precision(17);
    os << v;
    return os.str();
  };
  std::map<std::string, std::string> ckpt_md = c.to_metadata();
  ckpt_md["train.seed"] = std::to_string(o.seed);
  ckpt_md["train.batch"] = std::to_string(o.batch);
  ckpt_md["train.steps"] = std::to_string(o.steps);
  ckpt_md["train.lr"] = exact(o.lr);
  ckpt_md["train.warmup"] = std::to_string(o.warmup);
  ckpt_md["train.latent_noise"] = exact(o.latent_noise);
  ckpt_md["train.latent_l2"] = exact(o.latent_l2);
  std::int64_t start = 0;
  if (!a.has("no-resume") && std::filesystem::exists(ckpt)) {
    const dcsldm::io::SafeTensors f = dcsldm::io::SafeTensors::read(ckpt);
    const dcsldm::io::SafeTensors fe = dcsldm::io::SafeTensors::read(ckpt + ".ema");
    DCSLDM_REQUIRE(f.meta("train.step") == fe.meta("train.step"), "train-baseline-ae", "'", ckpt, "' is at step ",
                   f.meta("train.step"), " but '", ckpt, ".ema' at step ", fe.meta("train.step"),
                   " (interrupted checkpoint?)");
    for (const auto& kv : ckpt_md) {
      const auto it = f.metadata().find(kv.first);
      const std::string had = it == f.metadata().end() ? "(none)" : it->second;
      DCSLDM_REQUIRE(had == kv.second, "train-baseline-ae", "'", ckpt, "' was written by another run: its ", kv.first,
                     " is ", had, ", this run's ", kv.second, " (--no-resume starts fresh)");
    }
    start = dcsldm::optim::load_arena(f, m.arena(), dcsldm::optim::ArenaState::ParamsAndOptimizer);
    dcsldm::optim::load_arena(fe, ema, dcsldm::optim::ArenaState::Params);
    adam.step = start;
  }
  auto checkpoint = [&](std::int64_t step) {
    std::map<std::string, std::string> md = ckpt_md;
    md["train.step"] = std::to_string(step);
    dcsldm::optim::save_arena(ckpt + ".ema", ema, dcsldm::optim::ArenaState::Params, 0, md);
    dcsldm::optim::save_arena(ckpt, m.arena(), dcsldm::optim::ArenaState::ParamsAndOptimizer, step, md);
  };
  const std::size_t B = std::size_t(o.batch), n = B * 28 * 28;
  dcsldm::View1<float, Mem> x("x", n), y("y", n), t("t", n), dy("dy", n), dy2("dy2", n), loss("loss", 3);
  dcsldm::View3<float, Mem> z("z", B, std::size_t(c.latent_count()), std::size_t(c.latent_channels));
  dcsldm::View3<float, Mem> dz("dz", B, std::size_t(c.latent_count()), std::size_t(c.latent_channels));
  dcsldm::View3<float, Mem> zeros("zeros", B, std::size_t(c.latent_count()), std::size_t(c.latent_channels));
  auto hx = Kokkos::create_mirror_view(x);
  auto ht = Kokkos::create_mirror_view(t);
  std::printf("train-baseline-ae: %s, %zu parameters, latent %d x %d, batch %d, %lld steps%s, backend %s\n", out.c_str(),
              m.num_params(), c.latent_count(), c.latent_channels, o.batch, (long long)o.steps,
              start ? (" (resumed at step " + std::to_string(start) + ")").c_str() : "", backend_name().c_str());
  dcsldm::ProgressRate rate(start);
  double l1 = 0, mse = 0;
  int cnt = 0;
  for (std::int64_t s = start; s < stop_after; ++s) {
    src->sample(s, o.batch, 28, 28, hx.data(), ht.data());
    Kokkos::deep_copy(space, x, hx);
    Kokkos::deep_copy(space, t, ht);
    dcsldm::optim::zero_grad(space, m.arena());
    m.forward(space, x.data(), z, y.data(), o.latent_noise, o.seed, dcsldm::rng::stream_of("tok_noise") + std::uint64_t(s));
    dcsldm::nn::l1_loss_forward(space, y, t, Kokkos::subview(loss, std::make_pair(0, 1)));
    dcsldm::nn::mse_loss_forward(space, y, t, Kokkos::subview(loss, std::make_pair(1, 2)));
    dcsldm::nn::l1_loss_backward(space, 1.0, y, t, dy);
    dcsldm::nn::mse_loss_backward(space, 1.0, y, t, dy2);
    dcsldm::nn::Impl::add_into(space, dy, dy2, dy);
    dcsldm::nn::mse_loss_backward(space, o.latent_l2, z, zeros, dz);
    m.backward(space, dy.data(), dz);
    const double gn = dcsldm::optim::clip_grad_norm_readback(space, m.arena().grads, o.clip);
    dcsldm::optim::adamw_step(space, m.arena(), adam, sched(s));
    dcsldm::optim::ema_update(space, ema, m.arena(), dcsldm::optim::ema_decay(o.ema, s, true));
    auto hl = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), loss);
    l1 += hl(0);
    mse += hl(1);
    ++cnt;
    if ((s + 1) % o.log_every == 0 || s + 1 == o.steps) {
      const dcsldm::ProgressRate::Reading r = rate.tick(s + 1, o.steps);
      std::printf("step %lld/%lld  l1 %.5f  mse %.6f (psnr %.2f)  |g| %.3f  %.1f samples/s  ETA %dm%02ds\n",
                  (long long)(s + 1), (long long)o.steps, l1 / cnt, mse / cnt, -10 * std::log10(mse / cnt + 1e-12), gn,
                  r.steps_per_s * o.batch, int(r.eta_s) / 60, int(r.eta_s) % 60);
      std::fflush(stdout);
      l1 = mse = 0;
      cnt = 0;
    }
    if (ckpt_every > 0 && ((s + 1) % ckpt_every == 0 || s + 1 == stop_after)) checkpoint(s + 1);
  }
  if (stop_after < o.steps) {
    if (start >= stop_after)
      std::printf("nothing trained: the checkpoint %s is at step %lld, at or past --stop-after %lld; the same command "
                  "without --stop-after (or a later one) continues from it\n",
                  ckpt.c_str(), (long long)start, (long long)stop_after);
    else
      std::printf("stopped after step %lld; %s continues from %s\n", (long long)stop_after,
                  "the same command without --stop-after", ckpt.c_str());
    return 0;
  }
  std::ostringstream cmd;
  for (int i = 0; i < argc; ++i) cmd << (i ? " " : "") << argv[i];
  m.save(out, ema.params, {{"train.command", cmd.str()}, {"train.step", std::to_string(o.steps)}});
  std::printf("wrote %s (EMA weights)\n", out.c_str());
  return 0;
}

// ------------------------------------------------------------------------------- eval-tokenizer
int cmd_eval_tokenizer(int argc, char** argv) {
  cli::Args a("eval-tokenizer",
              "Reconstruction quality of a tokenizer against exact ground truth: PSNR/SSIM per (levels, in_res,\n"
              "out_res), with a bicubic resize of the input as the baseline; --target-psnr picks the fewest levels\n"
              "per sample that reach a PSNR (content-adaptive allocation).",
              {{"model", "FILE", "tokenizer model", ""},
               {"data", "SRC", "fmnist:test | fmnist:train | font:<.ttf/.otf> | images:<folder>", ""},
               {"in-res", "R", "input resolution", ""},
               {"out-res", "R1,R2,..", "output resolutions", "in-res"},
               {"levels", "M1,M2,..", "levels kept", "every prefix 1..L"},
               {"n", "N", "samples (0: all)", "1000"},
               {"batch", "B", "samples per model call", "64"},
               {"seed", "S", "sample selection seed (fonts)", "0"},
               {"json", "FILE", "write the results as JSON", ""},
               {"target-psnr", "DB", "also choose levels per sample for this PSNR at the first out-res", ""},
               {"edge-margin", "E", "decoder edge margin, patch units (0: no blend across patch edges)", "the model's"},
               {"grid", "FILE", "PNG of the first 8 samples at the last out-res: input (area-upscaled), ground\n"
                                "                              truth, bicubic, then one row per level", ""}});
  a.parse(argc, argv, 2);
  if (a.help()) return std::cout << a.usage(), 0;
  const std::string model_path = a.required("model");
  const std::string spec = a.required("data");
  const int in_res = int(a.integer("in-res", 0, 1, 4096));
  if (!a.has("in-res")) throw cli::UsageError("missing required option '--in-res'");
  const std::vector<int> out_res = a.int_list("out-res", {in_res}, 1, 4096);
  const std::size_t n = std::size_t(a.integer("n", 1000, 0, 10000000));
  const std::size_t batch = std::size_t(a.integer("batch", 64, 1, 4096));
  const std::uint64_t seed = std::uint64_t(a.integer("seed", 0, 0, (1ll << 62)));
  const dcsldm::io::SafeTensors header = dcsldm::io::SafeTensors::read(model_path);
  const auto kind_it = header.metadata().find("dcsldm.kind");
  const std::string kind = kind_it == header.metadata().end() ? "" : kind_it->second;
  Exec space;
  eval::ReconstructFn fn;
  int num_levels = 1, channels = 1, min_res = 1;
  std::unique_ptr<Tok> model;
  std::map<std::size_t, dcsldm::View3<float, Mem>> zs;
  std::map<std::size_t, std::unique_ptr<dcsldm::baseline::VitAutoencoder<Exec, float>>> aes;
  if (kind == "vit_autoencoder") {
    // The fixed-patch baseline: one resolution, all of its latent at once (reported as levels = 1).
    const auto ac = dcsldm::baseline::VitAeConfig::from_metadata(header.metadata(), model_path);
    if (a.has("edge-margin")) throw cli::UsageError("--edge-margin: the fixed-patch model has no edge blend");
    channels = ac.channels;
    if (in_res != ac.res) throw cli::UsageError("--in-res " + std::to_string(in_res) + ": the fixed-patch model reads " + std::to_string(ac.res) + " px only");
    for (int r : out_res)
      if (r != ac.res) throw cli::UsageError("--out-res " + std::to_string(r) + ": the fixed-patch model decodes " + std::to_string(ac.res) + " px only");
    fn = [&, ac](const dcsldm::image::ImageBatch& in, int, int ro) {
      const std::size_t B = in.shape()[0], n = in.size();
      auto& m = aes[B];
      if (!m) m = std::make_unique<dcsldm::baseline::VitAutoencoder<Exec, float>>(
                  dcsldm::baseline::VitAutoencoder<Exec, float>::load(model_path, int(B)));
      dcsldm::View1<float, Mem> x("x", n), y("y", n);
      dcsldm::View3<float, Mem> z("z", B, std::size_t(ac.latent_count()), std::size_t(ac.latent_channels));
      auto hx = Kokkos::create_mirror_view(x);
      std::copy(in.data(), in.data() + n, hx.data());
      Kokkos::deep_copy(x, hx);
      m->forward(space, x.data(), z, y.data());
      auto hy = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), y);
      dcsldm::image::ImageBatch out(std::array<std::size_t, 4>{B, std::size_t(ro), std::size_t(ro), in.shape()[3]});
      std::copy(hy.data(), hy.data() + n, out.data());
      return out;
    };
  } else {
    model = std::make_unique<Tok>(Tok::load(model_path));
    if (a.has("edge-margin")) model->set_edge_margin(a.real("edge-margin", 0, 0, 0.5));
    const auto& cfg = model->config();
    num_levels = cfg.levels();
    channels = cfg.channels;
    min_res = cfg.k;
    // The model behind the harness: encode, decode at the requested size with m levels.
    fn = [&](const dcsldm::image::ImageBatch& in, int m, int ro) {
      const auto& cfg = model->config();
      const std::size_t B = in.shape()[0], r = in.shape()[1], C = in.shape()[3];
      tok::View5<float, Mem> x("x", B, 1, r, in.shape()[2], C), y("y", B, 1, std::size_t(ro), std::size_t(ro), C);
      auto hx = Kokkos::create_mirror_view(x);
      std::copy(in.data(), in.data() + in.size(), hx.data());
      Kokkos::deep_copy(x, hx);
      auto& z = zs[B];
      if (z.extent(0) != B)
        z = dcsldm::View3<float, Mem>("z", B, std::size_t(cfg.latent_tokens()), std::size_t(cfg.latent_channels));
      model->encode(space, x, z);
      model->decode(space, z, m, y);
      auto hy = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), y);
      dcsldm::image::ImageBatch out(std::array<std::size_t, 4>{B, std::size_t(ro), std::size_t(ro), C});
      std::copy(hy.data(), hy.data() + out.size(), out.data());
      return out;
    };
  }
  std::vector<int> levels;
  for (int m = 1; m <= num_levels; ++m) levels.push_back(m);
  levels = a.int_list("levels", levels, 1, 1000000);
  for (int m : levels)
    if (m > num_levels)
      throw cli::UsageError("--levels " + std::to_string(m) + ": the model has " + std::to_string(num_levels) + " levels");
  for (int r : out_res)
    if (r < min_res) throw cli::UsageError("--out-res " + std::to_string(r) + " is below the model's k = " + std::to_string(min_res));
  if (in_res < min_res) throw cli::UsageError("--in-res " + std::to_string(in_res) + " is below the model's k = " + std::to_string(min_res));
  eval::SourceOptions so;
  so.channels = channels;
  const eval::EvalSource src = eval::make_source(spec, n, seed, so);
  if (src.channels() != channels)
    throw std::runtime_error("data '" + spec + "' has " + std::to_string(src.channels()) + " channels, the model " +
                             std::to_string(channels));
  const auto t0 = std::chrono::steady_clock::now();
  Progress prog{"eval-tokenizer"};
  const auto records = eval::evaluate_tokenizer(src, fn, in_res, out_res, levels, batch, std::ref(prog));
  std::printf("%-7s %-7s %-8s %-6s %-9s %-7s %-13s %-12s\n", "levels", "in_res", "out_res", "n", "psnr", "ssim",
              "bicubic_psnr", "bicubic_ssim");
  for (const auto& r : records)
    std::printf("%-7d %-7d %-8d %-6zu %-9.3f %-7.4f %-13.3f %-12.4f\n", r.levels, r.in_res, r.out_res, r.n, r.psnr,
                r.ssim, r.bicubic_psnr, r.bicubic_ssim);
  std::unique_ptr<eval::Allocation> alloc;
  if (a.has("target-psnr")) {
    const double target = a.real("target-psnr", 0, 0, 100);
    Progress p2{"choose-levels"};
    alloc = std::make_unique<eval::Allocation>(
        eval::allocate_levels(src, fn, in_res, out_res[0], num_levels, target, batch, std::ref(p2)));
    std::printf("content-adaptive allocation, target %.2f dB at %d px: mean levels %.3f (unmet %zu of %zu)\n", target,
                out_res[0], alloc->mean_levels, alloc->unmet, alloc->samples.size());
    std::printf("  histogram:");
    for (std::size_t m = 0; m < alloc->histogram.size(); ++m) std::printf(" m=%zu:%zu", m + 1, alloc->histogram[m]);
    std::printf("\n");
    for (const auto& g : alloc->groups)
      std::printf("  %-14s n=%-5zu mean levels %.3f  mean psnr %.2f\n", g.group.c_str(), g.n, g.mean_levels, g.mean_psnr);
  }
  if (a.has("grid")) {
    namespace im = dcsldm::image;
    const int ro = out_res.back();
    const std::size_t k = std::min<std::size_t>(8, src.size());
    const im::ImageBatch in = src.inputs(0, k, in_res), gt = src.ground_truths(0, k, ro);
    std::vector<im::Image> cells;
    for (std::size_t i = 0; i < k; ++i) cells.push_back(im::resize(im::batch_item(in, i), std::size_t(ro), std::size_t(ro), im::ResizeFilter::Area));
    for (std::size_t i = 0; i < k; ++i) cells.push_back(im::batch_item(gt, i));
    for (std::size_t i = 0; i < k; ++i) cells.push_back(im::resize(im::batch_item(in, i), std::size_t(ro), std::size_t(ro), im::ResizeFilter::Bicubic));
    for (int m : levels) {
      const im::ImageBatch rec = fn(in, m, ro);
      for (std::size_t i = 0; i < k; ++i) cells.push_back(im::batch_item(rec, i));
    }
    for (auto& c : cells) c = xt::clip(c, 0.0f, 1.0f);
    im::write_png_grid(a.str("grid"), im::stack_images(cells), k);
    std::printf("wrote %s (rows: input %d px, ground truth %d px, bicubic, then levels", a.str("grid").c_str(), in_res, ro);
    for (int m : levels) std::printf(" %d", m);
    std::printf(")\n");
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("evaluated %zu samples in %.1f s (%s)\n", src.size(), secs, backend_name().c_str());
  if (a.has("json")) {
    eval::EvalReportInfo info;
    info.model = model_path;
    info.source = spec;
    info.note = src.note();
    info.seed = seed;
    eval::write_json_atomic(a.str("json"), eval::to_json(records, alloc.get(), info));
    std::printf("wrote %s\n", a.str("json").c_str());
  }
  return 0;
}


// ------------------------------------------------------------------------------------------ train-dit

/// The latent codec a DiT works over: a DCS-Tok tokenizer (any resolution, L levels) or the conventional
/// 2D-latent baseline autoencoder (its training resolution only; its latent is one level).
struct Codec {
  std::string path;
  std::unique_ptr<Tok> tok;
  std::unique_ptr<VitAe> ae;
  std::vector<int> level_sizes;
  int latent_channels = 0, channels = 1;

  /// `batch`: the baseline's fixed batch (DCS-Tok takes any).
  static Codec load(const std::string& path, int batch) {
    const dcsldm::io::SafeTensors header = dcsldm::io::SafeTensors::read(path);
    const auto it = header.metadata().find("dcsldm.kind");
    const std::string kind = it == header.metadata().end() ? "" : it->second;
    Codec c;
    c.path = path;
    if (kind == "vit_autoencoder") {
      c.ae = std::make_unique<VitAe>(VitAe::load(path, batch));
      const auto& ac = c.ae->config();
      c.level_sizes = {ac.latent_count()};
      c.latent_channels = ac.latent_channels;
      c.channels = ac.channels;
    } else {
      c.tok = std::make_unique<Tok>(Tok::load(path));
      c.level_sizes = c.tok->config().level_sizes;
      c.latent_channels = c.tok->config().latent_channels;
      c.channels = c.tok->config().channels;
    }
    return c;
  }
  std::string name() const { return tok ? "DCS-Tok" : "fixed-patch 2D-latent autoencoder"; }
  /// Resolutions it decodes: any >= k for DCS-Tok, its own for the baseline.
  void check_res(int r) const {
    if (ae && r != ae->config().res)
      throw cli::UsageError("--res " + std::to_string(r) + ": the baseline autoencoder '" + path + "' decodes " +
                            std::to_string(ae->config().res) + " px only");
  }
  void decode(Exec space, const dcsldm::View3<float, Mem>& z, int levels, const tok::View5<float, Mem>& y) {
    if (tok) return tok->decode(space, z, levels, y);
    ae->decode(space, z, y.data());
  }
  /// Encodes and decodes n host images (n, r, r, C) in batches of `batch` (the baseline's own batch):
  /// what the codec alone does to real data, the floor under anything generated through it.
  std::vector<float> reconstruct(Exec space, const float* images, int n, int r, int batch) {
    const std::size_t per = std::size_t(r) * std::size_t(r) * std::size_t(channels);
    const int N = std::accumulate(level_sizes.begin(), level_sizes.end(), 0), L = int(level_sizes.size());
    tok::View5<float, Mem> x("x", std::size_t(batch), 1, std::size_t(r), std::size_t(r), std::size_t(channels));
    tok::View5<float, Mem> y("y", std::size_t(batch), 1, std::size_t(r), std::size_t(r), std::size_t(channels));
    dcsldm::View3<float, Mem> z("z", std::size_t(batch), std::size_t(N), std::size_t(latent_channels));
    auto hx = Kokkos::create_mirror_view(x);
    auto hy = Kokkos::create_mirror_view(y);
    std::vector<float> out(std::size_t(n) * per);
    for (int s = 0; s < n; s += batch) {
      const int m = std::min(batch, n - s);
      for (std::size_t k = 0; k < std::size_t(batch) * per; ++k)
        hx.data()[k] = k < std::size_t(m) * per ? images[std::size_t(s) * per + k] : 0.f;
      Kokkos::deep_copy(space, x, hx);
      if (tok) tok->encode(space, x, z);
      else ae->encode(space, x.data(), z);
      decode(space, z, L, y);
      Kokkos::deep_copy(space, hy, y);
      space.fence();
      for (std::size_t k = 0; k < std::size_t(m) * per; ++k)
        out[std::size_t(s) * per + k] = std::min(1.0f, std::max(0.0f, hy.data()[k]));
    }
    return out;
  }
};

/// Fashion-MNIST train latents of `tokenizer`, cached in `cache` (reused when it was made from the same
/// tokenizer file contents: its size and modification time are recorded).
dit::LatentSet fmnist_latents(const std::string& tokenizer, const std::string& cache, Codec& codec, Exec space) {
  namespace fs = std::filesystem;
  const std::string stamp = tokenizer + " size " + std::to_string(fs::file_size(tokenizer)) + " mtime " +
                            std::to_string(fs::last_write_time(tokenizer).time_since_epoch().count());
  if (!cache.empty() && fs::exists(cache)) {
    dit::LatentSet s = dit::LatentSet::load(cache);
    if (s.source == "fmnist:train of " + stamp) {
      std::printf("latents: %d from %s (cached)\n", s.count, cache.c_str());
      std::fflush(stdout);
      return s;
    }
    std::printf("latents: %s was made from another tokenizer; re-encoding\n", cache.c_str());
  }
  const auto d = dcsldm::data::load_fashion_mnist(dcsldm::data::Split::Train);
  std::vector<std::int32_t> labels(d.labels.begin(), d.labels.end());
  std::printf("latents: encoding the %zu Fashion-MNIST training images with %s\n", labels.size(), tokenizer.c_str());
  std::fflush(stdout);
  const auto t0 = std::chrono::steady_clock::now();
  dit::LatentSet s;
  if (codec.tok) {
    s = dit::encode_images(space, *codec.tok, d.images.data(), int(d.images.shape(0)), 28, 28, labels, 250,
                           "fmnist:train of " + stamp);
  } else {  // the baseline: its fixed batch, 28 px
    VitAe& ae = *codec.ae;
    const int B = ae.batch(), Z = ae.config().latent_count(), c = ae.config().latent_channels, count = int(labels.size());
    const std::size_t per = 28 * 28, zl = std::size_t(Z) * std::size_t(c);
    s.count = count;
    s.tokens = Z;
    s.channels = c;
    s.labels = labels;
    s.source = "fmnist:train of " + stamp;
    s.z.resize(std::size_t(count) * zl);
    dcsldm::View1<float, Mem> x("x", std::size_t(B) * per);
    dcsldm::View3<float, Mem> z("z", std::size_t(B), std::size_t(Z), std::size_t(c));
    auto hx = Kokkos::create_mirror_view(x);
    auto hz = Kokkos::create_mirror_view(z);
    for (int i0 = 0; i0 < count; i0 += B) {
      const int m = std::min(B, count - i0);
      for (std::size_t k = 0; k < std::size_t(B) * per; ++k)
        hx.data()[k] = k < std::size_t(m) * per ? d.images.data()[std::size_t(i0) * per + k] : 0.f;
      Kokkos::deep_copy(space, x, hx);
      ae.encode(space, x.data(), z);
      Kokkos::deep_copy(space, hz, z);
      space.fence();
      std::copy(hz.data(), hz.data() + std::size_t(m) * zl, s.z.begin() + std::ptrdiff_t(std::size_t(i0) * zl));
    }
  }
  std::printf("latents: encoded %d images in %.1f s\n", s.count,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  std::fflush(stdout);
  if (!cache.empty()) s.save(cache);
  return s;
}

int cmd_train_dit(int argc, char** argv) {
  cli::Args a("train-dit",
              "Train a class-conditional DCS-DiT (rectified flow, level-causal) on the Fashion-MNIST latents of a\n"
              "tokenizer. Checkpoints (<out>.ckpt, <out>.ckpt.ema) are written atomically and resumed bit for bit.",
              {{"tokenizer", "FILE", "tokenizer model whose latents are modelled", ""},
               {"out", "FILE", "DiT model file to write (EMA weights)", ""},
               {"latents", "FILE", "latent cache file", "<out>.latents.safetensors"},
               {"steps", "N", "training steps", "20000"},
               {"batch", "N", "batch size", "64"},
               {"lr", "X", "peak learning rate", "5e-4"},
               {"warmup", "N", "warm-up steps", "500"},
               {"width", "D", "transformer width", "192"},
               {"heads", "H", "attention heads", "6"},
               {"layers", "N", "AdaLN-Zero blocks", "6"},
               {"prefix-prob", "P", "probability of a clean prefix of levels (progressive training)", "0.3"},
               {"label-dropout", "P", "probability of the null label", "0.1"},
               {"seed", "S", "random seed", "1"},
               {"log-every", "N", "steps between progress lines", "100"},
               {"ckpt-every", "N", "steps between checkpoints", "1000"},
               {"no-resume", "", "start fresh even if a checkpoint exists", ""}});
  a.parse(argc, argv, 2);
  if (a.help()) return std::cout << a.usage(), 0;
  const std::string tok_path = a.required("tokenizer"), out = a.required("out");
  dit::DitTrainOptions o;
  o.steps = a.integer("steps", o.steps, 1, 100000000);
  o.batch = int(a.integer("batch", o.batch, 1, 65536));
  o.lr = a.real("lr", o.lr, 1e-7, 1.0);
  o.min_lr = 0.1 * o.lr;
  o.warmup = a.integer("warmup", o.warmup, 0, 100000000);
  o.prefix_prob = a.real("prefix-prob", o.prefix_prob, 0, 1);
  o.label_dropout = a.real("label-dropout", o.label_dropout, 0, 1);
  o.seed = std::uint64_t(a.integer("seed", 1, 0, (1ll << 62)));
  o.log_every = a.integer("log-every", o.log_every, 1, 100000000);
  o.ckpt_every = a.integer("ckpt-every", o.ckpt_every, 0, 100000000);
  o.ckpt_path = out + ".ckpt";
  Exec space;
  Codec codec = Codec::load(tok_path, 250);
  dit::DitConfig c;
  c.level_sizes = codec.level_sizes;
  c.latent_channels = codec.latent_channels;
  c.width = int(a.integer("width", c.width, 8, 4096));
  c.heads = int(a.integer("heads", c.heads, 1, 256));
  c.layers = int(a.integer("layers", c.layers, 1, 256));
  c.num_classes = 10;
  if (c.width % c.heads != 0)
    throw cli::UsageError("--width " + std::to_string(c.width) + " is not divisible by --heads " + std::to_string(c.heads));
  const dit::LatentSet data = fmnist_latents(tok_path, a.str("latents", out + ".latents.safetensors"), codec, space);
  dit::DitTrainer<Exec, float> tr(c, o, data);
  const bool resumed = !a.has("no-resume") && tr.resume(space);
  if (!resumed) tr.init(space);
  std::printf("train-dit: %s, %zu parameters, %d levels (%d tokens x %d), batch %d, %lld steps%s, backend %s\n",
              out.c_str(), tr.model().num_params(), c.levels(), c.latent_tokens(), c.latent_channels, o.batch,
              (long long)o.steps,
              resumed ? (" (resumed at step " + std::to_string(tr.current_step()) + ")").c_str() : "",
              backend_name().c_str());
  std::fflush(stdout);
  const auto t0 = std::chrono::steady_clock::now();
  Progress bar{"train-dit"};
  tr.run(space, stdout, bar.step_callback());
  tr.save_model(out, {{"train.tokenizer", std::filesystem::path(tok_path).filename().string()}});
  std::printf("wrote %s (EMA weights) after %.1f s in this run\n", out.c_str(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return 0;
}

// --stages of generate and eval-generation: strictly increasing last levels in 1..L; excludes --progressive; --levels,
// when given, must be the last stage. Empty when --stages is not given.
std::vector<int> parse_stages(const cli::Args& a, int L) {
  if (!a.has("stages")) return {};
  if (a.has("progressive"))
    throw cli::UsageError("--stages and --progressive exclude each other (--progressive is --stages 1,2,..,L)");
  const std::vector<int> st = a.int_list("stages", {}, 1, L);
  for (std::size_t i = 1; i < st.size(); ++i)
    if (st[i] <= st[i - 1]) throw cli::UsageError("--stages: levels must be strictly increasing");
  if (a.has("levels") && a.int_list("levels", {}, 1, L) != std::vector<int>{st.back()})
    throw cli::UsageError("--stages ends at level " + std::to_string(st.back()) +
                          ": --levels must be that level or left out");
  return st;
}

// ------------------------------------------------------------------------------------------- generate
int cmd_generate(int argc, char** argv) {
  cli::Args a("generate",
              "Generate images: the DiT samples latents (levels 1..m), the tokenizer decodes the SAME latents at\n"
              "every requested resolution. Writes <out>/sample_<i>_<res>.png and <out>/grid_<res>.png (one row per\n"
              "class when --class is not given); --progressive also writes the per-level previews\n"
              "<out>/preview_level<l>.png and <out>/progressive.png (first sample of each class, levels 1..m across);\n"
              "--stages 2,4 generates levels 1..2, then 3..4 with 1..2 held clean (previews and progressive.png after each stage).",
              {{"tokenizer", "FILE", "tokenizer model", "examples/models/fmnist_tok.safetensors"},
               {"model", "FILE", "DiT model", "examples/models/fmnist_dit.safetensors"},
               {"out", "DIR", "output folder (created)", ""},
               {"class", "C", "class label 0..9 (default: every class)", ""},
               {"n", "N", "samples per class", "8"},
               {"levels", "m", "levels to generate (default: all)", ""},
               {"res", "R1,R2", "output resolutions (square)", "28"},
               {"steps", "S", "sampler steps", "50"},
               {"sampler", "NAME", "euler, heun or dpm++2m", "euler"},
               {"shift", "X", "time shift of the schedule", "1"},
               {"cfg", "X", "classifier-free guidance scale", "1.5"},
               {"seed", "S", "random seed", "0"},
               {"progressive", "", "level by level, with a preview after each level", ""},
               {"edge-margin", "E", "decoder edge margin, patch units (0: no blend across patch edges)", "the model's"},
               {"stages", "l1,l2,..", "generate in stages ending at these levels, with a preview after each (e.g. "
                "2,4; the last is --levels)", ""}});
  a.parse(argc, argv, 2);
  if (a.help()) return std::cout << a.usage(), 0;
  const std::string tok_path = a.str("tokenizer", shipped("fmnist_tok.safetensors"));
  const std::string dit_path = a.str("model", shipped("fmnist_dit.safetensors")), out = a.required("out");
  Exec space;
  DitF dm = DitF::load(dit_path);
  const auto& dc = dm.config();
  std::vector<int> stages = parse_stages(a, dc.levels());  // empty: joint generation (or --progressive below)
  const int levels = stages.empty() ? int(a.integer("levels", dc.levels(), 1, dc.levels())) : stages.back();
  if (a.has("progressive"))
    for (int l = 1; l <= levels; ++l) stages.push_back(l);
  const int n = int(a.integer("n", 8, 1, 4096));
  std::vector<int> classes;
  if (a.has("class")) classes.push_back(int(a.integer("class", 0, 0, dc.num_classes - 1)));
  else for (int k = 0; k < dc.num_classes; ++k) classes.push_back(k);
  Codec codec = Codec::load(tok_path, int(classes.size()) * n);
  if (a.has("edge-margin")) {
    if (!codec.tok) throw cli::UsageError("--edge-margin: '" + tok_path + "' is not a DCS-Tok tokenizer");
    codec.tok->set_edge_margin(a.real("edge-margin", 0, 0, 0.5));
  }
  if (dc.level_sizes != codec.level_sizes || dc.latent_channels != codec.latent_channels)
    throw std::runtime_error("'" + dit_path + "' models latents of another layout than the tokenizer '" + tok_path + "'");
  const std::vector<int> res = a.int_list("res", {28}, codec.tok ? codec.tok->config().k : 1, 4096);
  for (int r : res) codec.check_res(r);
  dit::SampleOptions so;
  so.steps = int(a.integer("steps", 50, 1, 10000));
  try {
    so.integrator = dit::integrator_from_name(a.str("sampler", "euler"));
  } catch (const std::exception& e) {
    throw cli::UsageError(std::string("--sampler: ") + e.what());
  }
  so.shift = a.real("shift", 1.0, 1e-3, 1e3);
  so.cfg = a.real("cfg", 1.5, 0, 100);
  so.seed = std::uint64_t(a.integer("seed", 0, 0, (1ll << 62)));
  std::vector<int> labels;
  for (int k : classes)
    for (int i = 0; i < n; ++i) labels.push_back(k);
  std::filesystem::create_directories(out);
  const int B = int(labels.size());
  dcsldm::View3<float, Mem> z("z", std::size_t(B), std::size_t(dc.latent_tokens()), std::size_t(dc.latent_channels));
  dit::FlowSampler<Exec, float> sampler;
  namespace im = dcsldm::image;
  auto decode_grid = [&](int m, int r) {
    tok::View5<float, Mem> y("y", std::size_t(B), 1, std::size_t(r), std::size_t(r), 1);
    codec.decode(space, z, m, y);
    auto hy = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), y);
    im::ImageBatch imgs({std::size_t(B), std::size_t(r), std::size_t(r), 1});
    for (std::size_t i = 0; i < imgs.size(); ++i) imgs.data()[i] = std::min(1.0f, std::max(0.0f, hy.data()[i]));
    return imgs;
  };
  Progress prog{"generate"};
  {
    const std::size_t total = std::size_t(so.steps) * std::max<std::size_t>(1, stages.size());
    std::size_t done_steps = 0;
    so.on_step = [&prog, total, done_steps](int, int, int) mutable {
      prog(++done_steps, total);
      return true;
    };
  }
  const auto t0 = std::chrono::steady_clock::now();
  if (!stages.empty()) {
    const int rs = res.back(), nc = int(classes.size()), ns = int(stages.size());
    im::ImageBatch strip({std::size_t(nc) * std::size_t(ns), std::size_t(rs), std::size_t(rs), std::size_t(codec.channels)});
    const std::size_t per = std::size_t(rs) * std::size_t(rs) * std::size_t(codec.channels);
    int col = 0;
    const int done = sampler.staged(space, dm, labels, stages, so, z, [&](int l, const dcsldm::View3<float, Mem>&) {
      const im::ImageBatch g = decode_grid(l, rs);
      const std::string f = out + "/preview_level" + std::to_string(l) + ".png";
      im::write_png_grid(f, g, std::size_t(n));
      for (int k = 0; k < nc; ++k)  // row k: the first sample of class k, column col: its preview after this stage
        std::copy(g.data() + std::size_t(k) * std::size_t(n) * per, g.data() + (std::size_t(k) * std::size_t(n) + 1) * per,
                  strip.data() + (std::size_t(k) * std::size_t(ns) + std::size_t(col)) * per);
      ++col;
      std::printf("level %d: wrote %s\n", l, f.c_str());
      return true;
    });
    im::write_png_grid(out + "/progressive.png", strip, std::size_t(ns));
    std::printf("wrote %s/progressive.png (%d levels, %d stage%s)\n", out.c_str(), done, ns, ns == 1 ? "" : "s");
  } else {
    sampler.joint(space, dm, labels, levels, so, z);
  }
  space.fence();
  const double gen_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (int r : res) {
    const im::ImageBatch g = decode_grid(levels, r);
    const std::string f = out + "/grid_" + std::to_string(r) + ".png";
    im::write_png_grid(f, g, std::size_t(n));
    for (int i = 0; i < B; ++i)
      im::write_png(out + "/sample_" + std::to_string(i) + "_" + std::to_string(r) + ".png", im::batch_item(g, std::size_t(i)));
    std::printf("wrote %s and %d samples at %d px\n", f.c_str(), B, r);
  }
  std::printf("generated %d samples (%d levels, %d %s steps, cfg %.2f, %d DiT evaluations) in %.2f s, %s\n", B, levels,
              so.steps, dit::integrator_name(so.integrator), so.cfg, sampler.evaluations(), gen_s, backend_name().c_str());
  return 0;
}


// ---------------------------------------------------------------------------------- train-classifier

int cmd_train_classifier(int argc, char** argv) {
  cli::Args a("train-classifier",
              "Train the library's small convolutional Fashion-MNIST classifier (the feature extractor and judge\n"
              "of eval-generation) and report its accuracy on the test split.",
              {{"out", "FILE", "classifier model file to write", ""},
               {"steps", "N", "training steps", "6000"},
               {"batch", "N", "batch size", "128"},
               {"lr", "X", "peak learning rate", "2e-3"},
               {"warmup", "N", "warm-up steps", "200"},
               {"shift", "P", "random translation in pixels", "2"},
               {"no-flip", "", "no random horizontal flips", ""},
               {"seed", "S", "random seed", "1"},
               {"log-every", "N", "steps between progress lines", "200"}});
  a.parse(argc, argv, 2);
  if (a.help()) return std::cout << a.usage(), 0;
  const std::string out = a.required("out");
  cls::ClassifierTrainOptions o;
  o.steps = a.integer("steps", o.steps, 1, 100000000);
  o.batch = int(a.integer("batch", o.batch, 1, 65536));
  o.lr = a.real("lr", o.lr, 1e-7, 1.0);
  o.min_lr = 0.01 * o.lr;
  o.warmup = a.integer("warmup", 200, 0, 100000000);
  o.shift = int(a.integer("shift", o.shift, 0, 14));
  o.flip = !a.has("no-flip");
  o.seed = std::uint64_t(a.integer("seed", 1, 0, (1ll << 62)));
  o.log_every = int(a.integer("log-every", 200, 1, 100000000));
  namespace data = dcsldm::data;
  const auto train = data::load_fashion_mnist(data::Split::Train);
  const auto test = data::load_fashion_mnist(data::Split::Test);
  const std::vector<int> ytrain(train.labels.begin(), train.labels.end()), ytest(test.labels.begin(), test.labels.end());
  Exec space;
  cls::ClassifierConfig c;
  cls::ClassifierTrainer<Exec, float> tr(c, o, {train.images.data(), ytrain.data(), std::int64_t(ytrain.size())});
  tr.init(space);
  std::printf("train-classifier: %s, %zu parameters, %zu training images, batch %d, %lld steps, backend %s\n", out.c_str(),
              tr.model().num_params(), ytrain.size(), o.batch, (long long)o.steps, backend_name().c_str());
  std::fflush(stdout);
  const auto t0 = std::chrono::steady_clock::now();
  Progress bar{"train-classifier"};
  tr.run(space, stdout, bar.step_callback());
  const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double acc = cls::classifier_accuracy(space, tr.model(), test.images.data(), ytest.data(), std::int64_t(ytest.size()));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", acc);
  tr.model().save(out, {{"train.steps", std::to_string(o.steps)}, {"eval.test_accuracy", buf}});
  std::printf("test accuracy %.2f %% (%zu images); wrote %s after %.1f s of training\n", 100 * acc, ytest.size(),
              out.c_str(), train_s);
  return 0;
}


// ----------------------------------------------------------------------------------- eval-generation
int cmd_eval_generation(int argc, char** argv) {
  cli::Args a("eval-generation",
              "Measure class-conditional generation on Fashion-MNIST: class accuracy of the samples under the\n"
              "library's classifier, Fréchet distance of its features and sliced Wasserstein distance of\n"
              "Laplacian-pyramid patches, both against the training split; the same for the held-out test split\n"
              "(the floors). --levels takes a list: one record per value (the compute-quality curve).",
              {{"tokenizer", "FILE", "tokenizer model", "examples/models/fmnist_tok.safetensors"},
               {"model", "FILE", "DiT model", "examples/models/fmnist_dit.safetensors"},
               {"classifier", "FILE", "classifier model", "examples/models/fmnist_cls.safetensors"},
               {"n", "N", "generated samples (labels i % 10) and test images for the floor", "1000"},
               {"ref-n", "N", "training images in the reference (FD)", "10000"},
               {"swd-ref-n", "N", "training images the SWD compares against (the first of the reference)", "--n"},
               {"levels", "m1,m2", "levels to generate (default: all)", ""},
               {"steps", "S", "sampler steps", "50"},
               {"sampler", "NAME", "euler, heun or dpm++2m", "euler"},
               {"shift", "X", "time shift of the schedule", "1"},
               {"cfg", "X", "classifier-free guidance scale", "1.5"},
               {"seed", "S", "random seed", "0"},
               {"batch", "N", "samples per generation batch", "100"},
               {"progressive", "", "level by level (finished levels held clean)", ""},
               {"stages", "l1,l2,..", "generate in stages ending at these levels (e.g. 2,4: levels 1..2, then 3..4 "
                "with 1..2 clean); the last is the one level count evaluated", ""},
               {"json", "FILE", "write the results as JSON", ""}});
  a.parse(argc, argv, 2);
  if (a.help()) return std::cout << a.usage(), 0;
  const std::string tok_path = a.str("tokenizer", shipped("fmnist_tok.safetensors"));
  const std::string dit_path = a.str("model", shipped("fmnist_dit.safetensors"));
  const std::string cls_path = a.str("classifier", shipped("fmnist_cls.safetensors"));
  eval::GenerateOptions go;
  go.n = int(a.integer("n", 1000, 2, 10000));
  const int ref_n = int(a.integer("ref-n", 10000, 2, 60000));
  go.batch = int(a.integer("batch", 100, 1, 4096));
  go.progressive = a.has("progressive");
  go.sample.steps = int(a.integer("steps", 50, 1, 10000));
  try {
    go.sample.integrator = dit::integrator_from_name(a.str("sampler", "euler"));
  } catch (const std::exception& e) {
    throw cli::UsageError(std::string("--sampler: ") + e.what());
  }
  go.sample.shift = a.real("shift", 1.0, 1e-3, 1e3);
  go.sample.cfg = a.real("cfg", 1.5, 0, 100);
  go.sample.seed = std::uint64_t(a.integer("seed", 0, 0, (1ll << 62)));
  Exec space;
  DitF dm = DitF::load(dit_path);
  auto clf = cls::Classifier<Exec, float>::load(cls_path, 100);
  go.batch = std::min(go.batch, go.n);
  Codec codec = Codec::load(tok_path, go.batch);
  if (dm.config().level_sizes != codec.level_sizes || dm.config().latent_channels != codec.latent_channels)
    throw std::runtime_error("'" + dit_path + "' models latents of another layout than the tokenizer '" + tok_path + "'");
  codec.check_res(clf.config().res);
  if (dm.config().num_classes != clf.config().num_classes)
    throw std::runtime_error("'" + dit_path + "' has " + std::to_string(dm.config().num_classes) + " classes, '" +
                             cls_path + "' " + std::to_string(clf.config().num_classes));
  if (codec.channels != clf.config().channels)
    throw std::runtime_error("'" + tok_path + "' and '" + cls_path + "' differ in image channels");
  std::vector<int> levels = a.int_list("levels", {dm.config().levels()}, 1, dm.config().levels());
  go.stages = parse_stages(a, dm.config().levels());
  if (!go.stages.empty()) levels = {go.stages.back()};
  go.res = clf.config().res;
  namespace data = dcsldm::data;
  const auto train = data::load_fashion_mnist(data::Split::Train);
  const auto test = data::load_fashion_mnist(data::Split::Test);
  const std::vector<int> ytest(test.labels.begin(), test.labels.end());
  const double test_acc = cls::classifier_accuracy(space, clf, test.images.data(), ytest.data(), std::int64_t(ytest.size()));
  eval::ReferenceSet ref;
  ref.images = train.images.data();
  ref.n = ref_n;
  ref.stats = eval::feature_stats(space, clf, train.images.data(), ref_n);
  ref.swd_n = a.integer("swd-ref-n", go.n, 2, ref_n);
  std::printf("eval-generation: classifier test accuracy %.2f %%; reference: %d training images\n", 100 * test_acc, ref_n);
  std::fflush(stdout);
  const eval::ImageScore floor =
      eval::score_images(space, clf, test.images.data(), go.n, ytest.data(), ref);
  std::printf("floor (first %d test images vs train): fd %.4f  swd %.3f  accuracy %.2f %%\n", go.n, floor.fd,
              floor.swd.mean, 100 * floor.class_accuracy);
  std::fflush(stdout);
  // The codec's own floor: the same test images encoded and decoded (no generation).
  const std::vector<float> recon = codec.reconstruct(space, test.images.data(), go.n, go.res, go.batch);
  const eval::ImageScore rfloor = eval::score_images(space, clf, recon.data(), go.n, ytest.data(), ref);
  std::printf("codec floor (%s, the same test images encoded and decoded): fd %.4f  swd %.3f  accuracy %.2f %%\n",
              codec.name().c_str(), rfloor.fd, rfloor.swd.mean, 100 * rfloor.class_accuracy);
  std::fflush(stdout);
  dit::FlowSampler<Exec, float> sampler;
  eval::JsonWriter j;
  j.begin_object();
  j.field("tokenizer", tok_path).field("codec", codec.name()).field("model", dit_path).field("classifier", cls_path);
  j.field("n", go.n).field("ref_n", ref_n).field("swd_ref_n", (long long)ref.swd_n).field("steps", go.sample.steps);
  j.field("sampler", std::string(dit::integrator_name(go.sample.integrator))).field("cfg", go.sample.cfg);
  j.field("shift", go.sample.shift).field("seed", (long long)go.sample.seed).field("progressive", go.progressive);
  if (!go.stages.empty()) {
    j.key("stages").begin_array();
    for (int l : go.stages) j.value(l);
    j.end_array();
  }
  j.field("backend", backend_name());
  j.field("classifier_test_accuracy", test_acc).field("fd_floor", floor.fd).field("swd_floor", floor.swd.mean);
  j.field("floor_class_accuracy", floor.class_accuracy);
  j.field("codec_fd", rfloor.fd).field("codec_swd", rfloor.swd.mean).field("codec_class_accuracy", rfloor.class_accuracy);
  std::vector<eval::ImageScore> scores;
  std::vector<eval::GeneratedImages> gens;
  j.key("runs").begin_array();
  for (int m : levels) {
    go.levels = m;
    Progress prog{"levels " + std::to_string(m) + (go.progressive ? " (progressive)" : go.stages.empty() ? "" : " (stages)")};
    std::size_t done = 0;
    auto decode = [&](const dcsldm::View3<float, Mem>& z, int lv, const tok::View5<float, Mem>& y) {
      codec.decode(space, z, lv, y);
      done += z.extent(0);  // one call per generated batch
      prog(done, std::size_t(go.n));
    };
    eval::GeneratedImages g = eval::generate_images(space, dm, decode, codec.channels, sampler, go);
    const eval::ImageScore sc = eval::score_images(space, clf, g.images.data(), g.n, g.labels.data(), ref);
    std::printf("levels %d: class accuracy %.2f %%  fd %.4f (%.2fx floor)  swd %.3f (%.2fx floor)  "
                "%.2f ms/sample DiT + %.2f ms/sample decode (%lld evaluations)\n",
                m, 100 * sc.class_accuracy, sc.fd, sc.fd / floor.fd, sc.swd.mean, sc.swd.mean / floor.swd.mean,
                1e3 * g.dit_seconds / g.n, 1e3 * g.decode_seconds / g.n, g.evaluations);
    std::fflush(stdout);
    j.begin_object(true);
    j.field("levels", m).field("class_accuracy", sc.class_accuracy).field("fd", sc.fd).field("swd", sc.swd.mean);
    j.key("swd_per_level").begin_array(true);
    for (double v : sc.swd.per_level) j.value(v);
    j.end_array();
    j.field("dit_seconds_per_sample", g.dit_seconds / g.n).field("decode_seconds_per_sample", g.decode_seconds / g.n);
    j.field("evaluations", g.evaluations);
    j.end_object();
    scores.push_back(sc);
  }
  j.end_array();
  // Top-level fields: the run with the most levels (all levels by default).
  const std::size_t best = std::size_t(std::max_element(levels.begin(), levels.end()) - levels.begin());
  j.field("levels", levels[best]).field("class_accuracy", scores[best].class_accuracy);
  j.field("fd", scores[best].fd).field("swd", scores[best].swd.mean);
  j.end_object();
  if (a.has("json")) {
    eval::write_json_atomic(a.str("json"), j.str());
    std::printf("wrote %s\n", a.str("json").c_str());
  }
  return 0;
}


// ------------------------------------------------------------------------------------- encode / decode
int cmd_encode(int argc, char** argv) {
  cli::Args a("encode",
              "Encode images into latents with a DCS-Tok tokenizer: the latent has the same size whatever the input\n"
              "resolution. Writes a latent set (safetensors: z (n, N, c), labels) that `decode` reads.",
              {{"tokenizer", "FILE", "tokenizer model", "the shipped fmnist_tok"},
               {"data", "SRC", "fmnist:test|fmnist:train|font:<path>|images:<folder of PNGs>", ""},
               {"n", "N", "samples (0: all)", "100"},
               {"in-res", "R", "input resolution (square)", "28"},
               {"batch", "N", "encoding batch", "64"},
               {"seed", "S", "seed of font placements", "0"},
               {"out", "FILE", "latent set to write", ""}});
  a.parse(argc, argv, 2);
  if (a.help()) return std::cout << a.usage(), 0;
  const std::string tok_path = a.str("tokenizer", shipped("fmnist_tok.safetensors")), spec = a.required("data");
  const std::string out = a.required("out");
  const std::size_t n = std::size_t(a.integer("n", 100, 0, 10000000));
  const int batch = int(a.integer("batch", 64, 1, 4096));
  Exec space;
  Tok tk = Tok::load(tok_path);
  const int res = int(a.integer("in-res", 28, tk.config().k, 4096));
  eval::SourceOptions so;
  so.channels = tk.config().channels;
  const eval::EvalSource src = eval::make_source(spec, n, std::uint64_t(a.integer("seed", 0, 0, (1ll << 62))), so);
  std::vector<dcsldm::image::Image> imgs;
  std::vector<std::int32_t> labels;
  for (std::size_t i = 0; i < src.size(); ++i) {
    imgs.push_back(src.input(i, res));
    labels.push_back(src.sample(i).label);
  }
  const dcsldm::image::ImageBatch b = dcsldm::image::stack_images(imgs);
  const auto t0 = std::chrono::steady_clock::now();
  dit::LatentSet z = dit::encode_images(space, tk, b.data(), int(b.shape()[0]), res, res, labels, batch,
                                        spec + " at " + std::to_string(res) + " px, " + tok_path);
  z.save(out);
  std::printf("encoded %d images of %d px into %d x %d latents in %.2f s; wrote %s\n", z.count, res, z.tokens,
              z.channels, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), out.c_str());
  // How much each level varies from sample to sample: a level whose spread is near the training noise on the
  // latent (train-tokenizer --latent-noise) carries little information.
  const auto& sizes = tk.config().level_sizes;
  const auto stats = dit::latent_stats(z, sizes);
  std::printf("latent spread per level (std over samples and tokens, mean over channels):");
  for (std::size_t l = 0; l < sizes.size(); ++l) {
    double m = 0;
    for (int ch = 0; ch < z.channels; ++ch) m += stats.second[l * std::size_t(z.channels) + std::size_t(ch)];
    std::printf(" %.3f", m / z.channels);
  }
  std::printf("\n");
  return 0;
}

int cmd_decode(int argc, char** argv) {
  cli::Args a("decode",
              "Decode a latent set (from `encode`) at any resolution and with any number of levels: PNG samples and\n"
              "a grid per resolution.",
              {{"tokenizer", "FILE", "tokenizer model", "the shipped fmnist_tok"},
               {"latents", "FILE", "latent set (from encode)", ""},
               {"res", "H[xW],...", "output sizes, e.g. 28,64x128", "28"},
               {"levels", "m", "levels to decode (default: all)", ""},
               {"n", "N", "first N latents (0: all)", "0"},
               {"edge-margin", "E", "decoder edge margin, patch units (0: no blend across patch edges)", "the model's"},
               {"out", "DIR", "output folder (created)", ""}});
  a.parse(argc, argv, 2);
  if (a.help()) return std::cout << a.usage(), 0;
  const std::string tok_path = a.str("tokenizer", shipped("fmnist_tok.safetensors"));
  const std::string lat_path = a.required("latents"), out = a.required("out");
  // sizes: "28,64x128"
  std::vector<std::pair<int, int>> sizes;
  {
    std::stringstream ss(a.str("res", "28"));
    std::string item;
    while (std::getline(ss, item, ',')) {
      const std::size_t x = item.find('x');
      auto num = [&](const std::string& t) {
        char* end = nullptr;
        const long v = std::strtol(t.c_str(), &end, 10);
        if (t.empty() || !end || *end != '\0') throw cli::UsageError("--res: '" + item + "' is not H or HxW");
        if (v < 1 || v > 16384) throw cli::UsageError("--res: " + t + " is out of range 1..16384");
        return int(v);
      };
      sizes.emplace_back(num(item.substr(0, x)), x == std::string::npos ? num(item) : num(item.substr(x + 1)));
    }
    if (sizes.empty()) throw cli::UsageError("--res: empty list");
  }
  Exec space;
  Tok tk = Tok::load(tok_path);
  if (a.has("edge-margin")) tk.set_edge_margin(a.real("edge-margin", 0, 0, 0.5));
  const auto& c = tk.config();
  const dit::LatentSet z = dit::LatentSet::load(lat_path);
  if (z.tokens != c.latent_tokens() || z.channels != c.latent_channels)
    throw std::runtime_error("'" + lat_path + "' holds " + std::to_string(z.tokens) + " x " + std::to_string(z.channels) +
                             " latents; '" + tok_path + "' decodes " + std::to_string(c.latent_tokens()) + " x " +
                             std::to_string(c.latent_channels));
  const int levels = int(a.integer("levels", c.levels(), 1, c.levels()));
  const long long nn = a.integer("n", 0, 0, 10000000);
  const int n = nn == 0 ? z.count : int(std::min<long long>(nn, z.count));
  for (const auto& [h, w] : sizes)
    if (std::min(h, w) < c.k)
      throw cli::UsageError("--res " + std::to_string(h) + "x" + std::to_string(w) + ": the shorter side is below k = " +
                            std::to_string(c.k));
  std::filesystem::create_directories(out);
  dcsldm::View3<float, Mem> zd("z", std::size_t(n), std::size_t(z.tokens), std::size_t(z.channels));
  auto hz = Kokkos::create_mirror_view(zd);
  std::copy(z.z.begin(), z.z.begin() + std::ptrdiff_t(std::size_t(n) * std::size_t(z.tokens) * std::size_t(z.channels)),
            hz.data());
  Kokkos::deep_copy(zd, hz);
  namespace im = dcsldm::image;
  for (const auto& [h, w] : sizes) {
    tok::View5<float, Mem> y("y", std::size_t(n), 1, std::size_t(h), std::size_t(w), std::size_t(c.channels));
    const auto t0 = std::chrono::steady_clock::now();
    tk.decode(space, zd, levels, y);
    space.fence();
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    auto hy = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), y);
    im::ImageBatch g({std::size_t(n), std::size_t(h), std::size_t(w), std::size_t(c.channels)});
    for (std::size_t i = 0; i < g.size(); ++i) g.data()[i] = std::min(1.0f, std::max(0.0f, hy.data()[i]));
    const std::string tag = std::to_string(h) + "x" + std::to_string(w);
    im::write_png_grid(out + "/grid_" + tag + ".png", g, std::size_t(std::min(n, 10)));
    for (int i = 0; i < n; ++i) im::write_png(out + "/sample_" + std::to_string(i) + "_" + tag + ".png", im::batch_item(g, std::size_t(i)));
    std::printf("decoded %d latents (%d levels) at %s in %.3f s: %s/grid_%s.png\n", n, levels, tag.c_str(), sec,
                out.c_str(), tag.c_str());
  }
  return 0;
}


// --------------------------------------------------------------------------------------------- bench
int cmd_bench(int argc, char** argv) {
  cli::Args a("bench",
              "Time the shipped (or given) models on this machine and backend: encode, decode and one DiT step per\n"
              "resolution (median of --reps runs after a warm-up). The DiT never sees the resolution; the tokenizer's\n"
              "pixel work grows with it. Google-Benchmark versions with the baselines: build/benchmarks/bench_dcsldm.",
              {{"tokenizer", "FILE", "tokenizer model", "the shipped fmnist_tok"},
               {"model", "FILE", "DiT model", "the shipped fmnist_dit"},
               {"res", "R1,R2", "resolutions (square)", "28,112,448"},
               {"batch", "N", "batch size", "1"},
               {"reps", "N", "timed repetitions", "5"}});
  a.parse(argc, argv, 2);
  if (a.help()) return std::cout << a.usage(), 0;
  Exec space;
  Tok tk = Tok::load(a.str("tokenizer", shipped("fmnist_tok.safetensors")));
  DitF dm = DitF::load(a.str("model", shipped("fmnist_dit.safetensors")));
  const auto& c = tk.config();
  const std::vector<int> res = a.int_list("res", {28, 112, 448}, c.k, 4096);
  const int B = int(a.integer("batch", 1, 1, 4096)), reps = int(a.integer("reps", 5, 1, 1000));
  auto median_ms = [&](auto&& fn) {
    fn();
    space.fence();
    std::vector<double> t;
    for (int i = 0; i < reps; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      fn();
      space.fence();
      t.push_back(1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  };
  dcsldm::View3<float, Mem> z("z", std::size_t(B), std::size_t(c.latent_tokens()), std::size_t(c.latent_channels));
  dcsldm::View3<float, Mem> v("v", std::size_t(B), std::size_t(c.latent_tokens()), std::size_t(c.latent_channels));
  dcsldm::View1<float, Mem> t("t", std::size_t(B));
  Kokkos::View<int*, Mem> labels("labels", std::size_t(B));
  Kokkos::deep_copy(t, 0.5f);
  std::printf("backend %s, batch %d, median of %d\n%6s %12s %12s %14s %12s\n", backend_name().c_str(), B, reps, "res",
              "encode ms", "decode ms", "DiT step ms", "pixels");
  for (int r : res) {
    tok::View5<float, Mem> x("x", std::size_t(B), 1, std::size_t(r), std::size_t(r), std::size_t(c.channels));
    Kokkos::deep_copy(x, 0.5f);
    const double enc = median_ms([&] { tk.encode(space, x, z); });
    const double dec = median_ms([&] { tk.decode(space, z, c.levels(), x); });
    const double step = median_ms([&] { dm.velocity(space, z, t, labels, dm.config().levels(), 0, v); });
    std::printf("%6d %12.3f %12.3f %14.3f %12d\n", r, enc, dec, step, r * r);
    std::fflush(stdout);
  }
  return 0;
}

const char* kUsage =
    "usage: dcsldm <command> [options]   (dcsldm <command> --help for each)\n\n"
    "commands:\n"
    "  info              model configuration, parameter count, backend and threads\n"
    "  train-tokenizer   train a DCS-Tok tokenizer (asymmetric scale alignment, checkpoints, resume)\n"
    "  set-cell-floor    record a tokenizer's cell floors (files trained before the trainer did)\n"
    "  eval-tokenizer    reconstruction PSNR/SSIM vs exact ground truth and bicubic; level allocation\n"
    "  train-baseline-ae train the conventional fixed-patch ViT autoencoder (the comparison baseline)\n"
    "  train-dit         train a class-conditional DCS-DiT on a tokenizer's Fashion-MNIST latents\n"
    "  generate          sample latents with a DiT and decode them at any resolution (PNG grids)\n"
    "  encode            images -> a latent set (fixed size whatever the input resolution)\n"
    "  decode            a latent set -> images at any resolution and number of levels\n"
    "  bench             encode / decode / DiT-step times per resolution on this machine\n"
    "  train-classifier  train the Fashion-MNIST classifier used by eval-generation\n"
    "  eval-generation   class accuracy, FD and SWD of generated samples, with the test-split floors\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  int rc = 0;
  setenv("OMP_PROC_BIND", "false", 0);  // Kokkos 3.4 OpenMP advice otherwise; threads: OMP_NUM_THREADS
  int kargc = 1;                         // the tool's own options are not Kokkos'
  Kokkos::initialize(kargc, argv);
  try {
    if (cmd == "info") rc = cmd_info(argc, argv);
    else if (cmd == "train-tokenizer") rc = cmd_train_tokenizer(argc, argv);
    else if (cmd == "set-cell-floor") rc = cmd_set_cell_floor(argc, argv);
    else if (cmd == "eval-tokenizer") rc = cmd_eval_tokenizer(argc, argv);
    else if (cmd == "train-baseline-ae") rc = cmd_train_baseline_ae(argc, argv);
    else if (cmd == "train-dit") rc = cmd_train_dit(argc, argv);
    else if (cmd == "generate") rc = cmd_generate(argc, argv);
    else if (cmd == "train-classifier") rc = cmd_train_classifier(argc, argv);
    else if (cmd == "encode") rc = cmd_encode(argc, argv);
    else if (cmd == "decode") rc = cmd_decode(argc, argv);
    else if (cmd == "bench") rc = cmd_bench(argc, argv);
    else if (cmd == "eval-generation") rc = cmd_eval_generation(argc, argv);
    else {
      std::fprintf(stderr, "dcsldm: unknown command '%s'\n%s", cmd.c_str(), kUsage);
      rc = 2;
    }
  } catch (const cli::UsageError& e) {
    std::fprintf(stderr, "dcsldm %s: %s\n", cmd.c_str(), e.what());
    rc = 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dcsldm %s: error: %s\n", cmd.c_str(), e.what());
    rc = 1;
  }
  Kokkos::finalize();
  return rc;
}
