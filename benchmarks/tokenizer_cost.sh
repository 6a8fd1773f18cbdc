#!/usr/bin/env bash
# benchmarks/tokenizer_cost.sh [BUILD_DIR] [THREADS]: DCS-Tok encode/decode cost against resolution, from
# bench_dcsldm's tok_* benchmarks (batch 1, fmnist model shape). Prints, per resolution: total and
# transformer-only time of encode and decode, and the rest (the pixel-level part) per pixel, which is flat
# when that part is linear in pixels, and the decode with the edge blend (margin 1/8) and its ratio to the plain one.
# docs/tokenizer.md has a recorded run.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
THREADS=${2:-2}
out=$(mktemp)
OMP_PROC_BIND=false OMP_NUM_THREADS=$THREADS "$BUILD/benchmarks/bench_dcsldm" --benchmark_filter='^tok_' \
  --benchmark_format=json --benchmark_min_time=0.3 > "$out"
python3 - "$out" "$THREADS" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
t = {}
for b in d["benchmarks"]:
    name, res = b["name"].split("/res:")
    res = int(res.split("/")[0])
    t[(name, res)] = b["real_time"]  # ms
    t[("pixels", res)] = b["pixels"]
print(f"threads {sys.argv[2]}; times in ms (batch 1); pixel part = total - transformer")
print(f"{'res':>5} {'pixels':>8} | {'encode':>8} {'enc tr':>7} {'enc px ns/px':>12} | {'decode':>8} {'dec tr':>7} {'dec px ns/px':>12} | {'blend':>8} {'x':>5}")
for r in sorted({k[1] for k in t}):
    px = t[("pixels", r)]
    e, et, dd, dt = t[("tok_encode", r)], t[("tok_encode_transformer", r)], t[("tok_decode", r)], t[("tok_decode_transformer", r)]
    bl = t.get(("tok_decode_blend", r), float("nan"))
    print(f"{r:>5} {int(px):>8} | {e:>8.3f} {et:>7.3f} {1e6*(e-et)/px:>12.1f} | {dd:>8.3f} {dt:>7.3f} {1e6*(dd-dt)/px:>12.1f}"
          f" | {bl:>8.3f} {bl/dd:>5.2f}")
PY
rm -f "$out"
