#!/usr/bin/env bash
# Peak resident memory and time of `dcsldm decode` (one latent of the shipped fmnist tokenizer, all levels)
# at growing output sizes: the tiled depatchifier (Tokenizer::set_decode_memory, default 128 MiB) keeps the
# peak bounded by the tile, not by the image (issue 6: 2048 x 2048 under 1 GiB).
#
#   benchmarks/decode_memory.sh [build-dir]      (default: build; needs build/examples/dcsldm)
#
# Environment: SIZES (default "256 512 1024 2048 4096"), THREADS (default 1).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
T="$BUILD/examples/dcsldm"
SIZES=${SIZES:-"256 512 1024 2048 4096"}
export OMP_NUM_THREADS=${THREADS:-1} OMP_PROC_BIND=false
[ -x "$T" ] || { echo "decode_memory.sh: $T not built" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "decode_memory.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
"$T" encode --data fmnist:test --n 1 --out "$W/lat.safetensors" > /dev/null
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(lscpu | sed -n 's/^Model name: *//p'), OMP_NUM_THREADS=$OMP_NUM_THREADS"
echo "| output | pixels | decode s (tool's timer) | peak RSS MiB | output floats MiB |"
echo "|---|---:|---:|---:|---:|"
for r in $SIZES; do
  /usr/bin/time -f "%M" -o "$W/rss" "$T" decode --latents "$W/lat.safetensors" --res "$r" --n 1 --out "$W/o$r" > "$W/log" 2>&1
  secs=$(sed -n 's/.* in \([0-9.]*\) s:.*/\1/p' "$W/log" | head -1)
  rss=$(( $(cat "$W/rss") / 1024 ))
  echo "| ${r}x${r} | $((r * r)) | $secs | $rss | $(( r * r * 4 / 1048576 )) |"
  rm -rf "$W/o$r"
done
