#!/usr/bin/env bash
# scripts/seed_spread_tokenizers.sh [BUILD_DIR]: the run-to-run spread behind the fmnist parity comparison of
# docs/tokenizer.md. For each seed in SEEDS it trains the shipped fmnist_tok command and the shipped ViT
# autoencoder command with --seed S, in two lanes of one thread each (~80 minutes a seed on the
# 2-core machine; nothing else should run meanwhile), and evaluates both on the first 1000 test images at 28 px with all
# levels. The shipped models are seed 1. JSONs: docs/results/seeds/; trained files: $WORK (kept, so a seed that
# finished is not trained again, and an interrupted run resumes from its checkpoint).
#   SEEDS="2 3" WORK=/tmp/dcsldm_seeds bash scripts/seed_spread_tokenizers.sh
# A recipe variant: TAG names it (files *_seedS$TAG*), TOK_ARGS / AE_ARGS are added to the commands, and KIND=tok or
# KIND=ae trains that model only, its seeds one after the other in one lane (run two such calls side by side):
#   KIND=ae SEEDS="1 2" TAG=_w1000 AE_ARGS="--warmup 1000" WORK=/tmp/dcsldm_seeds bash scripts/seed_spread_tokenizers.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
T="$BUILD/examples/dcsldm"
SEEDS=${SEEDS:-"2 3"}
WORK=${WORK:-/tmp/dcsldm_seeds}
KIND=${KIND:-both}
TAG=${TAG:-}
read -r -a tok_args <<< "${TOK_ARGS:-}"  # extra options, split at blanks
read -r -a ae_args <<< "${AE_ARGS:-}"
[[ $KIND == both || $KIND == tok || $KIND == ae ]] || { echo "KIND=$KIND, expected both, tok or ae" >&2; exit 2; }
R="$ROOT/docs/results/seeds"
mkdir -p "$R" "$WORK"
export OMP_PROC_BIND=false

eval_all_levels() {  # model json levels
  OMP_NUM_THREADS=2 "$T" eval-tokenizer --model "$1" --data fmnist:test --n 1000 --in-res 28 --out-res 28 \
    --levels "$3" --json "$2" > /dev/null
}

train_tok() {  # seed
  local tok="$WORK/fmnist_tok_seed$1$TAG.safetensors"
  [[ -f "$tok" ]] && return 0
  OMP_NUM_THREADS=1 "$T" train-tokenizer --preset fmnist --out "$tok" --steps 10000 --full-levels 1.0 --in-res 28 \
    --out-res 28 --final-phase 0.4 --final-full-levels 0.5 --final-in-res 14,21,28 --final-out-res 14,21,28 \
    --pixel-width 128 --head-hidden 128 --freqs 3 --prefix-full-weight 1 --seed "$1" --log-every 500 "${tok_args[@]}" \
    >> "$WORK/tok_seed$1$TAG.log" 2>&1
}
train_ae() {  # seed
  local ae="$WORK/fmnist_vitae_seed$1$TAG.safetensors"
  [[ -f "$ae" ]] && return 0
  OMP_NUM_THREADS=1 "$T" train-baseline-ae --out "$ae.tmp" --steps 10000 --seed "$1" --log-every 500 "${ae_args[@]}" \
    >> "$WORK/vitae_seed$1$TAG.log" 2>&1 && mv "$ae.tmp" "$ae"
}

# Two lanes of one thread each, the models alternating (lane 1: DCS-Tok of the 1st seed, autoencoder of the 2nd,
# ...; lane 2 the other way round), so neither core idles while the faster autoencoder waits for the tokenizer.
lane() {  # first-kind seeds...
  local kind=$1
  shift
  for s in "$@"; do
    if [[ $kind == tok ]]; then train_tok "$s"; kind=ae; else train_ae "$s"; kind=tok; fi
  done
}
if [[ $KIND == both ]]; then
  # shellcheck disable=SC2086
  lane tok $SEEDS &
  p1=$!
  # shellcheck disable=SC2086
  lane ae $SEEDS &
  p2=$!
  wait $p1 || true
  wait $p2 || true
else
  for s in $SEEDS; do if [[ $KIND == tok ]]; then train_tok "$s" || true; else train_ae "$s" || true; fi; done
fi
for s in $SEEDS; do
  tok="$WORK/fmnist_tok_seed$s$TAG.safetensors"
  ae="$WORK/fmnist_vitae_seed$s$TAG.safetensors"
  if [[ $KIND != ae ]]; then
    [[ -f "$tok" ]] || { echo "seed $s: the DCS-Tok run failed (logs in $WORK)" >&2; exit 1; }
    eval_all_levels "$tok" "$R/fmnist_tok_seed${s}${TAG}_in28.json" 1,2,3,4
  fi
  if [[ $KIND != tok ]]; then
    [[ -f "$ae" ]] || { echo "seed $s: the autoencoder run failed (logs in $WORK)" >&2; exit 1; }
    eval_all_levels "$ae" "$R/fmnist_vitae_seed${s}${TAG}_in28.json" 1
  fi
done
[[ -z $TAG ]] || exit 0  # a variant's JSONs; the table below is the shipped recipe's

echo "== all levels, 28 -> 28, first 1000 test images (seed 1: the shipped models, docs/results/*_in28.json)"
python3 - "$ROOT/docs/results" "$SEEDS" <<'EOF'
import json, statistics, sys
res, seeds = sys.argv[1], ["1"] + sys.argv[2].split()
def full(path):
    rs = [r for r in json.load(open(path))["results"] if r["in_res"] == 28 and r["out_res"] == 28]
    return max(rs, key=lambda r: r["levels"])["psnr"]
rows = {"DCS-Tok": [], "ViT autoencoder": []}
for s in seeds:
    tok = f"{res}/fmnist_tok_in28.json" if s == "1" else f"{res}/seeds/fmnist_tok_seed{s}_in28.json"
    ae = f"{res}/fmnist_vitae_in28.json" if s == "1" else f"{res}/seeds/fmnist_vitae_seed{s}_in28.json"
    rows["DCS-Tok"].append(full(tok))
    rows["ViT autoencoder"].append(full(ae))
for name, v in rows.items():
    sd = statistics.stdev(v) if len(v) > 1 else float("nan")
    print(f"{name:16s} seeds {' '.join(seeds)}: " + " / ".join(f"{x:.2f}" for x in v) +
          f"   mean {statistics.mean(v):.2f}  sd {sd:.2f}")
EOF
