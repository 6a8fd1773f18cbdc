#!/usr/bin/env bash
# Compares bench_dcsldm with PyTorch (Debian's python3-torch 1.13.1, CPU) at the same shapes, at 1 and 2
# threads, and prints per-op times and ratios as Markdown tables (docs/performance.md).
#
#   benchmarks/compare_pytorch.sh [build-dir]        (default: build; needs bench_dcsldm built)
#
# Environment: THREADS (default "1 2"), MIN_TIME (seconds per case, default 0.2), REPS (default 3),
# FILTER (a regex for bench_dcsldm and a substring for pytorch_ops.py; default all), OUT (JSON dir).
# Threads: OMP_NUM_THREADS, KOKKOS_NUM_THREADS and OPENBLAS_NUM_THREADS are all set to N, and PyTorch
# calls torch.set_num_threads(N). OPENBLAS_CORETYPE is left as the environment has it and reported.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
BENCH=$BUILD/benchmarks/bench_dcsldm
PY=/usr/bin/python3
THREADS=${THREADS:-"1 2"}
MIN_TIME=${MIN_TIME:-0.2}
REPS=${REPS:-3}
FILTER=${FILTER:-}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
[ -x "$BENCH" ] || { echo "compare_pytorch.sh: $BENCH not built (cmake --build $BUILD --target bench_dcsldm)" >&2; exit 1; }
$PY -c 'import torch' 2>/dev/null || { echo "compare_pytorch.sh: $PY has no torch (scripts/install-deps.sh --torch)" >&2; exit 1; }

echo "# machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u '+%Y-%m-%d %H:%M UTC'); load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}; results in $OUT"
for t in $THREADS; do
  envs=(OMP_NUM_THREADS=$t KOKKOS_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t OMP_PROC_BIND=false)
  echo "# threads=$t: bench_dcsldm" >&2
  env "${envs[@]}" "$BENCH" --benchmark_format=json --benchmark_min_time="$MIN_TIME" \
    --benchmark_repetitions="$REPS" --benchmark_report_aggregates_only=true \
    --benchmark_enable_random_interleaving=true \
    ${FILTER:+--benchmark_filter="$FILTER"} > "$OUT/dcsldm_t$t.json"
  echo "# threads=$t: pytorch_ops.py" >&2
  env "${envs[@]}" $PY "$ROOT/benchmarks/pytorch_ops.py" --threads "$t" --min-time "$MIN_TIME" \
    --repetitions "$REPS" ${FILTER:+--filter "$FILTER"} > "$OUT/pytorch_t$t.json"
done

$PY - "$OUT" $THREADS <<'PYEOF'
import json, re, sys
out, threads = sys.argv[1], sys.argv[2:]

def load_cpp(path):
    """median real time (s) per benchmark name, keyed by (case, impl)"""
    d = json.load(open(path))
    res, ctx = {}, d.get("context", {})
    for b in d["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        name = re.sub(r"/real_time$", "", b.get("run_name", b["name"]))
        parts = name.split("/")
        case, impl = "/".join([parts[0]] + parts[2:]), parts[1]
        scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b.get("time_unit", "ns")]
        res[(case, impl)] = (b["real_time"] * scale, b.get("FLOPS"), b.get("BYTES"))
    return res, ctx

def ms(x):
    return f"{x * 1e3:.3f}" if x is not None else "–"

def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "–"

for t in threads:
    cpp, ctx = load_cpp(f"{out}/dcsldm_t{t}.json")
    py = json.load(open(f"{out}/pytorch_t{t}.json"))
    pyt = py["times_s"]
    print(f"\n### {t} thread{'s' if t != '1' else ''} (Kokkos {ctx.get('kokkos_exec_space')} concurrency "
          f"{ctx.get('kokkos_concurrency')}, OpenBLAS core {ctx.get('openblas_corename')}, "
          f"OPENBLAS_CORETYPE={ctx.get('OPENBLAS_CORETYPE')}, torch {py['context']['torch']} threads "
          f"{py['context']['threads']})\n")
    print("| op | shape | dcsldm ms | GFLOP/s | cblas ms | dcsldm/cblas speed | PyTorch ms | PyTorch/dcsldm |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    cases = sorted({c for (c, i) in cpp if i == "dcsldm"}, key=lambda c: list(cpp).index((c, "dcsldm")))
    for case in cases:
        op, shape = case.split("/", 1)
        d = cpp[(case, "dcsldm")]
        c = cpp.get((case, "cblas"))
        p = pyt.get(case)
        rate = f"{d[1] / 1e9:.1f}" if d[1] else (f"{d[2] / 1e9:.1f} GB/s" if d[2] else "–")
        print(f"| {op} | {shape} | {ms(d[0])} | {rate} | {ms(c[0]) if c else '–'} | "
              f"{ratio(c[0], d[0]) if c else '–'} | {ms(p)} | {ratio(p, d[0])} |")
    for (case, impl), v in cpp.items():
        if impl == "portable":
            op, shape = case.split("/", 1)
            print(f"| {op} (portable kernel) | {shape} | {ms(v[0])} | {v[1] / 1e9:.1f} | | | {ms(pyt.get(case))} | "
                  f"{ratio(pyt.get(case), v[0])} |")
print("\nRatios > 1: PyTorch (or cblas) takes longer than dcsldm. dcsldm/cblas speed = cblas time / dcsldm time.")
PYEOF
