#!/usr/bin/env bash
# tests/cli/cli_errors.sh <dcsldm> <tmpdir>: every bad-argument case of the dcsldm tool exits non-zero with a
# message that names the problem. Each case: expected exit status, a fixed string the message must contain,
# then the arguments.
set -u
BIN="$1"
TMP="$2"
mkdir -p "$TMP"
fails=0
check() {
  local want_rc="$1" want_msg="$2"
  shift 2
  local out rc
  out="$("$BIN" "$@" 2>&1)"
  rc=$?
  if [[ "$rc" != "$want_rc" || "$out" != *"$want_msg"* ]]; then
    echo "FAIL: dcsldm $* -> rc $rc (want $want_rc), output: $out (want to contain: $want_msg)"
    fails=$((fails + 1))
  else
    echo "ok: dcsldm $* -> rc $rc: $(echo "$out" | head -n1)"
  fi
}
printf 'not a model' > "$TMP/corrupt.safetensors"
check 2 "usage: dcsldm <command>"
check 2 "unknown command 'frobnicate'" frobnicate
check 0 "eval-tokenizer" --help
check 0 "--target-psnr" eval-tokenizer --help
check 2 "unknown option '--colour'" eval-tokenizer --colour red
check 2 "missing required option '--model'" eval-tokenizer --data fmnist:test --in-res 28
check 2 "needs a value" eval-tokenizer --model
check 1 "cannot open" eval-tokenizer --model "$TMP/missing.safetensors" --data fmnist:test --in-res 28
check 1 "corrupt.safetensors" eval-tokenizer --model "$TMP/corrupt.safetensors" --data fmnist:test --in-res 28
check 1 "corrupt.safetensors" info --model "$TMP/corrupt.safetensors"
check 0 "kind: classifier" info --model "$(dirname "$0")/../../examples/models/fmnist_cls.safetensors"
check 0 "kind: dit" info --model "$(dirname "$0")/../../examples/models/fmnist_dit.safetensors"
check 0 "1D latent tokens" info --model "$(dirname "$0")/../../examples/models/fmnist_vitae.safetensors"
check 2 "out of range" eval-tokenizer --model x --data fmnist:test --in-res 0
check 2 "out of range" eval-tokenizer --model x --data fmnist:test --in-res 28 --out-res 28,100000
check 2 "is not an integer" eval-tokenizer --model x --data fmnist:test --in-res 2x8
check 2 "unknown preset 'cats'" train-tokenizer --preset cats --out "$TMP/m.safetensors"
check 0 "--relative-noise" train-tokenizer --help
check 0 "--max-target-pixels" train-tokenizer --help
check 2 "missing required option '--out'" train-tokenizer --preset fmnist
check 2 "out of range" train-tokenizer --preset fmnist --out "$TMP/m.safetensors" --steps 0
check 2 "expected fmnist, glyphs or images" train-tokenizer --preset fmnist --out "$TMP/m.safetensors" --data mnist
check 2 "out of range" train-tokenizer --preset fmnist --out "$TMP/m.safetensors" --max-target-pixels -5
check 0 "--final-phase" train-tokenizer --help
check 2 "out of range" train-tokenizer --preset fmnist --out "$TMP/m.safetensors" --final-phase 1.5
check 0 "--prefix-full-weight" train-tokenizer --help
check 2 "--width with --from: the architecture is the file's" train-tokenizer --preset fmnist --out "$TMP/m.safetensors" \
  --from "$(dirname "$0")/../../examples/models/fmnist_tok.safetensors" --width 64
check 2 "--level-count-embedding with --from: the architecture is the file's" train-tokenizer --preset fmnist \
  --out "$TMP/m.safetensors" --from "$(dirname "$0")/../../examples/models/fmnist_tok.safetensors" --level-count-embedding
check 2 "option '--prefix-encoder-grad': 1.5 is out of range" train-tokenizer --preset fmnist --out "$TMP/m.safetensors" \
  --prefix-encoder-grad 1.5
check 1 "cannot open" train-tokenizer --preset fmnist --out "$TMP/m.safetensors" --from "$TMP/missing.safetensors"
check 1 "corrupt.safetensors" train-tokenizer --preset fmnist --out "$TMP/m.safetensors" --from "$TMP/corrupt.safetensors"
check 1 "not a dcsldm tokenizer" train-tokenizer --preset fmnist --out "$TMP/m.safetensors" \
  --from "$(dirname "$0")/../../examples/models/fmnist_dit.safetensors"
mkdir -p "$TMP/rgb" && cp "$(dirname "$0")/../../docs/results/readme_grid_28.png" "$TMP/rgb/a.png"
check 2 "has 1 channels, the data 3" train-tokenizer --preset fmnist --out "$TMP/m.safetensors" --data "images:$TMP/rgb" \
  --channels 3 --from "$(dirname "$0")/../../examples/models/fmnist_tok.safetensors"
check 0 "--all-targets" train-tokenizer --help
check 0 "--freqs" train-tokenizer --help
check 2 "--in-res and --out-res are required" set-cell-floor --model "$TMP/corrupt.safetensors" --in-res 28
check 2 "out of range" set-cell-floor --model "$TMP/corrupt.safetensors" --in-res 0 --out-res 28
check 1 "corrupt.safetensors" set-cell-floor --model "$TMP/corrupt.safetensors" --in-res 28 --out-res 28
cp "$(dirname "$0")/../../examples/models/fmnist_tok.safetensors" "$TMP/floor.safetensors"
check 2 "the largest target scale must be --out-res 28" set-cell-floor --model "$TMP/floor.safetensors" --in-res 28 \
  --out-res 28 --targets 14,21
check 2 "out of range" set-cell-floor --model "$TMP/floor.safetensors" --in-res 28 --out-res 28 --targets 5,28
check 0 "edge margin 0.125" set-cell-floor --model "$TMP/floor.safetensors" --in-res 28 --out-res 28 --targets 14,21,28
check 0 "edge_margin_out: 0.125" info --model "$TMP/floor.safetensors"
check 2 "the fixed-patch model has no edge blend" eval-tokenizer --model \
  "$(dirname "$0")/../../examples/models/fmnist_vitae.safetensors" --data fmnist:test --in-res 28 --edge-margin 0.1
check 2 "option '--edge-margin': 0.6 is out of range" eval-tokenizer --model "$TMP/floor.safetensors" --data fmnist:test \
  --in-res 28 --edge-margin 0.6
check 2 "out of range" train-tokenizer --preset fmnist --out "$TMP/m.safetensors" --prefix-full-weight -1
check 2 "--final-out-res 4 is below k = 7" train-tokenizer --preset fmnist --out "$TMP/m.safetensors" --final-out-res 28,4
check 2 "given twice" info --model a --model b
check 0 "--progressive" generate --help
check 2 "missing required option '--out'" generate --model d.safetensors
check 1 "cannot open 'd.safetensors'" generate --model d.safetensors --out "$TMP/g"
check 2 "missing required option '--out'" train-dit --tokenizer t.safetensors
check 1 "cannot open" generate --tokenizer "$TMP/missing.safetensors" --model d.safetensors --out "$TMP/g"
check 1 "corrupt.safetensors" train-dit --tokenizer "$TMP/corrupt.safetensors" --out "$TMP/d.safetensors"
check 0 "--classifier" eval-generation --help
check 0 "--no-flip" train-classifier --help
check 2 "missing required option '--out'" train-classifier
check 2 "out of range" train-classifier --out "$TMP/c.safetensors" --steps 0
check 2 "--init" train-baseline-ae --out "$TMP/b.safetensors" --init zeros --steps 1
check 2 "out of range" train-baseline-ae --out "$TMP/b.safetensors" --latent-l2 -1 --steps 1
check 2 "out of range" train-baseline-ae --out "$TMP/b.safetensors" --latent-noise 11 --steps 1
# With the shipped models (the README's main job): class, resolution and sampler errors.
MODELS="$(dirname "$0")/../../examples/models"
if [[ -f "$MODELS/fmnist_tok.safetensors" && -f "$MODELS/fmnist_dit.safetensors" ]]; then
  G=(generate --tokenizer "$MODELS/fmnist_tok.safetensors" --model "$MODELS/fmnist_dit.safetensors" --out "$TMP/g")
  check 2 "out of range" "${G[@]}" --class 10
  check 2 "out of range" "${G[@]}" --res 0
  check 2 "out of range" "${G[@]}" --res 28,100000
  check 2 "unknown sampler 'ddim'" "${G[@]}" --sampler ddim
  check 2 "out of range" "${G[@]}" --levels 9
  check 2 "strictly increasing" "${G[@]}" --stages 3,2
  check 2 "out of range" "${G[@]}" --stages 2,5
  check 2 "exclude each other" "${G[@]}" --stages 2,4 --progressive
  check 2 "--levels must be that level" "${G[@]}" --stages 1,2 --levels 4
  check 0 "wrote $TMP/g/progressive.png (4 levels, 2 stages)" "${G[@]}" --class 3 --n 2 --steps 2 --stages 2,4
  check 1 "not a dcsldm DiT" generate --tokenizer "$MODELS/fmnist_tok.safetensors" --model "$MODELS/fmnist_tok.safetensors" --out "$TMP/g"
  check 2 "missing required option '--data'" encode --out "$TMP/z.safetensors"
  check 1 "the Fashion-MNIST split must be" encode --data fmnist:valid --out "$TMP/z.safetensors"
  check 2 "out of range" encode --data fmnist:test --in-res 2 --out "$TMP/z.safetensors"
  check 0 "encoded 4 images" encode --data fmnist:test --n 4 --in-res 14 --out "$TMP/z.safetensors"
  check 0 "latent spread per level" encode --data fmnist:test --n 4 --in-res 28 --out "$TMP/z.safetensors"
  check 0 "decoded 4 latents (2 levels) at 16x40" decode --latents "$TMP/z.safetensors" --res 28,16x40 --levels 2 --out "$TMP/dec"
  check 2 "is not H or HxW" decode --latents "$TMP/z.safetensors" --res 28y28 --out "$TMP/dec"
  check 2 "out of range 1..16384" decode --latents "$TMP/z.safetensors" --res 0 --out "$TMP/dec"
  check 2 "below k = 7" decode --latents "$TMP/z.safetensors" --res 5 --out "$TMP/dec"
  check 1 "corrupt.safetensors" decode --latents "$TMP/corrupt.safetensors" --out "$TMP/dec"
  check 1 "holds 32 x 8 latents" decode --latents "$TMP/z.safetensors" --tokenizer "$MODELS/glyphs_tok.safetensors" --out "$TMP/dec"
  check 0 "DiT step ms" bench --res 28,56 --reps 1
  check 2 "out of range" bench --res 3
  E=(eval-generation --tokenizer "$MODELS/fmnist_tok.safetensors" --model "$MODELS/fmnist_dit.safetensors")
  check 1 "not a dcsldm classifier file" "${E[@]}" --classifier "$MODELS/fmnist_tok.safetensors"
  check 1 "corrupt.safetensors" "${E[@]}" --classifier "$TMP/corrupt.safetensors"
  check 2 "out of range" "${E[@]}" --levels 0
  check 2 "out of range" "${E[@]}" --n 1
  check 2 "unknown sampler 'ddim'" "${E[@]}" --sampler ddim
  check 2 "strictly increasing" "${E[@]}" --stages 2,2
  check 2 "--levels must be that level" "${E[@]}" --stages 2,4 --levels 3
  check 2 "exclude each other" "${E[@]}" --stages 2,4 --progressive
  check 1 "another layout" eval-generation --tokenizer "$MODELS/fmnist_vitae.safetensors" --model "$MODELS/fmnist_dit.safetensors"
else
  echo "FAIL: the shipped models are missing from $MODELS"
  fails=$((fails + 1))
fi
if [[ $fails -ne 0 ]]; then
  echo "$fails case(s) failed"
  exit 1
fi
echo "all cases passed"
