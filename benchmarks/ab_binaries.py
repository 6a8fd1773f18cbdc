#!/usr/bin/env python3
"""A/B timing of two bench_dcsldm binaries (e.g. before and after a kernel change) on a noisy machine.

This VM's speed drifts by +-20 % over minutes, so two benchmark runs taken one after the other can disagree by
more than the change being measured. This script alternates the binaries round by round (A B, B A, A B, ...),
each round a short Google Benchmark run of the selected cases, and reports per case the median and the minimum
over the rounds of both, and their ratios (A time / B time: > 1 means B is faster). The minimum is the
least disturbed run; the median shows whether the ordering holds throughout.

    benchmarks/ab_binaries.py OLD/bench_dcsldm NEW/bench_dcsldm --filter '^model_tok_train' --rounds 5

Threads: --threads N sets OMP_NUM_THREADS (and OMP_PROC_BIND=false) for both sides.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys


def run(binary, flt, min_time, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OMP_PROC_BIND="false")
    out = subprocess.run([binary, f"--benchmark_filter={flt}", f"--benchmark_min_time={min_time}",
                          "--benchmark_format=json"], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{binary} failed (exit {out.returncode}):\n{out.stderr[-2000:]}")
    res = {}
    for b in json.loads(out.stdout)["benchmarks"]:
        if b.get("error_occurred"):
            sys.exit(f"{binary}: {b['name']}: {b.get('error_message')}")
        scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b.get("time_unit", "ns")]
        res[b["name"]] = b["real_time"] * scale
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--filter", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    times = {"a": {}, "b": {}}
    for r in range(args.rounds):
        order = ("a", "b") if r % 2 == 0 else ("b", "a")
        for side in order:
            for name, t in run(getattr(args, side), args.filter, args.min_time, args.threads).items():
                times[side].setdefault(name, []).append(t)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    print(f"A = {args.a}\nB = {args.b}\n{args.rounds} alternating rounds, {args.threads} thread(s)\n")
    print("| case | A median ms | B median ms | A/B (median) | A min ms | B min ms | A/B (min) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in times["a"]:
        if name not in times["b"]:
            continue
        a, b = times["a"][name], times["b"][name]
        am, bm = statistics.median(a), statistics.median(b)
        print(f"| {name.replace('/real_time', '')} | {am * 1e3:.2f} | {bm * 1e3:.2f} | {am / bm:.2f} | "
              f"{min(a) * 1e3:.2f} | {min(b) * 1e3:.2f} | {min(a) / min(b):.2f} |")


if __name__ == "__main__":
    main()
