#!/usr/bin/env bash
# scripts/eval_tokenizers.sh [BUILD_DIR]: the tokenizer evaluation of docs/tokenizer.md, end to end, from the
# shipped models: writes docs/results/*.json and prints the tables. ~5 minutes on the 2-core machine.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
T="$BUILD/examples/dcsldm"
M="$ROOT/examples/models"
R="$ROOT/docs/results"
mkdir -p "$R"
export OMP_PROC_BIND=false
FM_TARGET=${FM_TARGET:-19}       # allocation quality target at 28 px (dB)
GL_TARGET=${GL_TARGET:-29}       # allocation quality target for glyphs at 64 px (dB)
serif=/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf
serifb=/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf

echo "== Fashion-MNIST test, DCS-Tok: every level, 28 -> 28 and asymmetric 14 -> 28, 21 -> 28, 28 -> 56"
"$T" eval-tokenizer --model "$M/fmnist_tok.safetensors" --data fmnist:test --n 1000 --in-res 28 --out-res 28,56 \
  --json "$R/fmnist_tok_in28.json" --grid "$R/fmnist_tok_in28_out56.png"
"$T" eval-tokenizer --model "$M/fmnist_tok.safetensors" --data fmnist:test --n 1000 --in-res 14 --out-res 28 \
  --json "$R/fmnist_tok_in14.json" --grid "$R/fmnist_tok_in14_out28.png"
"$T" eval-tokenizer --model "$M/fmnist_tok.safetensors" --data fmnist:test --n 1000 --in-res 21 --out-res 28 \
  --levels 4 --json "$R/fmnist_tok_in21.json"
echo "== Fashion-MNIST test, conventional fixed-patch ViT autoencoder (same latent size, same budget)"
"$T" eval-tokenizer --model "$M/fmnist_vitae.safetensors" --data fmnist:test --n 1000 --in-res 28 --out-res 28 \
  --levels 1 --json "$R/fmnist_vitae_in28.json"
echo "== Fashion-MNIST test, content-adaptive allocation"
"$T" eval-tokenizer --model "$M/fmnist_tok.safetensors" --data fmnist:test --n 1000 --in-res 28 --out-res 28 \
  --levels 4 --target-psnr "$FM_TARGET" --json "$R/fmnist_tok_alloc.json"
if [[ ! -f "$M/glyphs_tok.safetensors" ]]; then
  echo "== no glyph model in $M (not trained yet): glyph evaluation skipped"
  exit 0
fi
for font in "$serif" "$serifb"; do
  name=$(basename "$font" .ttf)
  echo "== glyphs of $name (a test font: never used in training), 32 -> 32, 48, 64, 128"
  "$T" eval-tokenizer --model "$M/glyphs_tok.safetensors" --data "font:$font" --n 376 --in-res 32 \
    --out-res 32,48,64,128 --json "$R/glyphs_tok_${name}_in32.json" --grid "$R/glyphs_tok_${name}_in32_out128.png"
done
echo "== glyphs, content-adaptive allocation (DejaVuSerif)"
"$T" eval-tokenizer --model "$M/glyphs_tok.safetensors" --data "font:$serif" --n 376 --in-res 32 --out-res 64 \
  --levels 4 --target-psnr "$GL_TARGET" --json "$R/glyphs_tok_alloc.json"
