#!/usr/bin/env bash
# Compares dcsldm with PyTorch (Debian's python3-torch 1.13.1, CPU) in one run, same thread counts, same
# BLAS setting, and prints Markdown tables of times and ratios (docs/performance.md):
#   models (default): the shipped fmnist models, bench_dcsldm's model_* cases (benchmarks/bench_models.cpp)
#     against benchmarks/pytorch_models.py (the PyTorch reference scripts/torch_ref on the same files):
#     tokenizer and DiT training steps, encode / decode at 28, 112, 448 px, one full generation (all
#     levels, 50 steps), batch 1 and a training batch, at 1 and 2 threads, with the targets of issue 6
#     and the 2-thread / 1-thread training throughput;
#   ops: single ops (GEMM, attention, LayerNorm + GELU) against benchmarks/pytorch_ops.py.
#
#   benchmarks/compare_pytorch.sh [build-dir]        (default: build; needs bench_dcsldm built)
#
# Environment: WHAT (models | ops | all; default models), THREADS (default "1 2"), MIN_TIME (seconds per
# case, default 0.5), ROUNDS (default 3), REPS (repetitions per round, default 1), FILTER (a regex for
# bench_dcsldm and a substring for the Python side; default all), OUT (JSON dir).
# Rounds: this VM's speed drifts by +-20 % over minutes, so the two sides are not timed one after the other
# but in ROUNDS alternating rounds (dcsldm then PyTorch, PyTorch then dcsldm, ...); each case's time is the
# median over the rounds (compare_report.py merges them), so both sides sample the same stretch of time.
# Threads: OMP_NUM_THREADS, KOKKOS_NUM_THREADS and OPENBLAS_NUM_THREADS are all set to N, and PyTorch
# calls torch.set_num_threads(N). OPENBLAS_CORETYPE is left as the environment has it and reported.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
BENCH=$BUILD/benchmarks/bench_dcsldm
PY=/usr/bin/python3
THREADS=${THREADS:-"1 2"}
MIN_TIME=${MIN_TIME:-0.5}
REPS=${REPS:-1}
ROUNDS=${ROUNDS:-3}
FILTER=${FILTER:-}
WHAT=${WHAT:-models}
case "$WHAT" in
  models) CPP_FILTER='^model_'; PY_SIDES=(pytorch_models) ;;
  ops) CPP_FILTER='^(?!model_)'; PY_SIDES=(pytorch_ops) ;;
  all) CPP_FILTER='.'; PY_SIDES=(pytorch_models pytorch_ops) ;;
  *) echo "compare_pytorch.sh: WHAT=$WHAT, expected models, ops or all" >&2; exit 2 ;;
esac
[ -n "$FILTER" ] && CPP_FILTER="$FILTER"
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
[ -x "$BENCH" ] || { echo "compare_pytorch.sh: $BENCH not built (cmake --build $BUILD --target bench_dcsldm)" >&2; exit 1; }
$PY -c 'import torch' 2>/dev/null || { echo "compare_pytorch.sh: $PY has no torch (scripts/install-deps.sh --torch)" >&2; exit 1; }

echo "# machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u '+%Y-%m-%d %H:%M UTC'); load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}; results in $OUT"
run_cpp() {  # threads round
  echo "# threads=$1 round $2: bench_dcsldm ($CPP_FILTER)" >&2
  env "${envs[@]}" "$BENCH" --benchmark_format=json --benchmark_min_time="$MIN_TIME" \
    --benchmark_repetitions="$REPS" --benchmark_report_aggregates_only=true \
    --benchmark_enable_random_interleaving=true --benchmark_filter="$CPP_FILTER" > "$OUT/dcsldm_t$1_r$2.json"
}
run_py() {  # threads round
  for side in "${PY_SIDES[@]}"; do
    echo "# threads=$1 round $2: $side.py" >&2
    env "${envs[@]}" $PY "$ROOT/benchmarks/$side.py" --threads "$1" --min-time "$MIN_TIME" \
      --repetitions "$REPS" ${FILTER:+--filter "$FILTER"} > "$OUT/${side}_t$1_r$2.json"
  done
  # PyTorch's OpenMP threads and a multi-threaded OpenBLAS oversubscribe the cores (Debian's torch links the
  # pthreads OpenBLAS): with more than one thread the models side is also run with OpenBLAS at 1 thread,
  # PyTorch's best setting here, and reported beside the same-setting numbers.
  if [ "$1" -gt 1 ] && [[ " ${PY_SIDES[*]} " == *" pytorch_models "* ]]; then
    echo "# threads=$1 round $2: pytorch_models.py with OPENBLAS_NUM_THREADS=1" >&2
    env "${envs[@]}" OPENBLAS_NUM_THREADS=1 $PY "$ROOT/benchmarks/pytorch_models.py" --threads "$1" \
      --min-time "$MIN_TIME" --repetitions "$REPS" ${FILTER:+--filter "$FILTER"} > "$OUT/pytorch_models_ob1_t$1_r$2.json"
  fi
}
for t in $THREADS; do
  envs=(OMP_NUM_THREADS=$t KOKKOS_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t OMP_PROC_BIND=false)
  for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) -eq 1 ]; then run_cpp "$t" "$r"; run_py "$t" "$r"; else run_py "$t" "$r"; run_cpp "$t" "$r"; fi
  done
done
$PY "$ROOT/benchmarks/compare_report.py" "$OUT" $THREADS
