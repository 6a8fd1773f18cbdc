#!/usr/bin/python3
"""Tables of compare_pytorch.sh: reads <out>/dcsldm_t<N>.json (Google Benchmark) and
<out>/pytorch_{models,ops}_t<N>.json for each thread count N and prints Markdown.

    compare_report.py OUT_DIR THREADS...

Rounds: when compare_pytorch.sh ran both sides in alternating rounds, the per-round files
(<name>_t<N>_r<K>.json) are first merged into <name>_t<N>.json, each case's time the median over the rounds.

Model table: per case the median time of both sides, the ratio PyTorch / dcsldm (> 1: dcsldm faster) and
the target of issue 6 at 1 thread (training steps >= 1.5, decoding and generation >= 2, everything >= 1).
Scaling table: training throughput at the highest thread count over 1 thread, both sides (target >= 1.7).
Also writes OUT_DIR/summary.json.
"""
import glob
import json
import os
import re
import statistics
import sys

TARGETS = {"model_tok_train": 1.5, "model_dit_train": 1.5, "model_decode": 2.0, "model_generate": 2.0,
           "model_encode": 1.0}


ORDER = ["model_tok_train", "model_dit_train", "model_encode", "model_decode", "model_generate"]


def case_order(case):
    """training, encode, decode, generation; then batch and resolution ascending"""
    parts = case.split("/")
    nums = [int(x.split(":")[1]) for x in parts[1:] if ":" in x]
    batch = next((int(x.split(":")[1]) for x in parts[1:] if x.startswith("batch:")), 0)
    res = next((int(x.split(":")[1]) for x in parts[1:] if x.startswith("res:")), 0)
    return (ORDER.index(parts[0]) if parts[0] in ORDER else 99, batch, res, nums)


def load_cpp(path):
    """{(case, impl): (median seconds, FLOPS, BYTES)} with case = name without its implementation part"""
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
    return f"{x * 1e3:.2f}" if x is not None else "–"


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "–"


def model_tables(out, threads, summary):
    per_t = {}
    for t in threads:
        cpp, ctx = load_cpp(f"{out}/dcsldm_t{t}.json")
        py = json.load(open(f"{out}/pytorch_models_t{t}.json"))
        per_t[t] = ({c: v[0] for (c, i), v in cpp.items() if i == "dcsldm" and c.startswith("model_")}, py["times_s"])
        print(f"\n### Models, {t} thread{'s' if t != '1' else ''} (Kokkos {ctx.get('kokkos_exec_space')} concurrency "
              f"{ctx.get('kokkos_concurrency')}, OpenBLAS core {ctx.get('openblas_corename')}, OPENBLAS_CORETYPE="
              f"{ctx.get('OPENBLAS_CORETYPE')}; torch {py['context']['torch']}, {py['context']['threads']} threads)\n")
        ob1_path = f"{out}/pytorch_models_ob1_t{t}.json"
        ob1 = json.load(open(ob1_path))["times_s"] if os.path.exists(ob1_path) else None
        extra_h = " PyTorch, OpenBLAS 1 thread, ms | its ratio |" if ob1 else ""
        print(f"| case | dcsldm ms | PyTorch ms | PyTorch / dcsldm | target (1 thread) |{extra_h}")
        print("|---|---:|---:|---:|---|" + ("---:|---:|" if ob1 else ""))
        cs, ps = per_t[t]
        for case in sorted(cs, key=case_order):
            d, p = cs[case], ps.get(case)
            target = TARGETS.get(case.split("/")[0], 1.0)
            r = p / d if p else None
            mark = "–" if r is None else (f">= {target:g}: {'met' if r >= target else 'NOT met'}" if t == "1"
                                          else ("faster" if r >= 1 else "slower"))
            extra = f" {ms(ob1.get(case))} | {ratio(ob1.get(case), d)} |" if ob1 else ""
            print(f"| {case} | {ms(d)} | {ms(p)} | {ratio(p, d)} | {mark} |{extra}")
            rec = {"dcsldm_s": d, "pytorch_s": p, "ratio": r}
            if ob1:
                rec["pytorch_openblas1_s"] = ob1.get(case)
            summary.setdefault("models", {}).setdefault(t, {})[case] = rec
    if len(threads) > 1 and "1" in threads:
        hi = max(threads, key=int)
        print(f"\n### Training throughput, {hi} threads over 1 thread (target >= 1.7)\n")
        print("| case | dcsldm | PyTorch |")
        print("|---|---:|---:|")
        for case in sorted(per_t["1"][0], key=case_order):
            if "train" not in case:
                continue
            c1, chi = per_t["1"][0][case], per_t[hi][0].get(case)
            p1, phi = per_t["1"][1].get(case), per_t[hi][1].get(case)
            print(f"| {case} | {ratio(c1, chi)} | {ratio(p1, phi)} |")
            summary.setdefault("scaling", {})[case] = {"dcsldm": c1 / chi if chi else None,
                                                       "pytorch": p1 / phi if p1 and phi else None}
    print("\nPyTorch / dcsldm > 1: dcsldm takes less time.")


def op_tables(out, threads):
    for t in threads:
        cpp, ctx = load_cpp(f"{out}/dcsldm_t{t}.json")
        py = json.load(open(f"{out}/pytorch_ops_t{t}.json"))
        pyt = py["times_s"]
        print(f"\n### Ops, {t} thread{'s' if t != '1' else ''} (Kokkos {ctx.get('kokkos_exec_space')} concurrency "
              f"{ctx.get('kokkos_concurrency')}, OpenBLAS core {ctx.get('openblas_corename')}, "
              f"OPENBLAS_CORETYPE={ctx.get('OPENBLAS_CORETYPE')}, torch {py['context']['torch']} threads "
              f"{py['context']['threads']})\n")
        print("| op | shape | dcsldm ms | GFLOP/s | cblas ms | dcsldm/cblas speed | PyTorch ms | PyTorch/dcsldm |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        names = [c for (c, i) in cpp if i == "dcsldm" and not c.startswith("model_")]
        for case in names:
            op, shape = case.split("/", 1)
            d = cpp[(case, "dcsldm")]
            c = cpp.get((case, "cblas"))
            p = pyt.get(case)
            rate = f"{d[1] / 1e9:.1f}" if d[1] else (f"{d[2] / 1e9:.1f} GB/s" if d[2] else "–")
            print(f"| {op} | {shape} | {ms(d[0])} | {rate} | {ms(c[0]) if c else '–'} | "
                  f"{ratio(c[0], d[0]) if c else '–'} | {ms(p)} | {ratio(p, d[0])} |")
        for (case, impl), v in cpp.items():
            if impl not in ("dcsldm", "cblas"):  # other variants: the portable GEMM, blocked attention
                op, shape = case.split("/", 1)
                rate = f"{v[1] / 1e9:.1f}" if v[1] else "–"
                print(f"| {op} ({impl} variant) | {shape} | {ms(v[0])} | {rate} | | | {ms(pyt.get(case))} | "
                      f"{ratio(pyt.get(case), v[0])} |")
    print("\nRatios > 1: PyTorch (or cblas) takes longer than dcsldm. dcsldm/cblas speed = cblas time / dcsldm time.")


def merge_rounds(out, threads):
    """<name>_t<N>_r<K>.json (K = 1, 2, ...) -> <name>_t<N>.json with per-case medians over the rounds."""
    for t in threads:
        rounds = sorted(glob.glob(f"{out}/dcsldm_t{t}_r*.json"))
        if rounds:
            per = {}
            ctx = {}
            for path in rounds:
                cpp, ctx = load_cpp(path)
                for key, v in cpp.items():
                    per.setdefault(key, []).append(v)
            bench = []
            for (case, impl), vs in per.items():
                parts = case.split("/")
                name = "/".join([parts[0], impl] + parts[1:])
                med = statistics.median(v[0] for v in vs)
                rec = {"name": name, "run_name": name, "run_type": "aggregate", "aggregate_name": "median",
                       "real_time": med * 1e9, "time_unit": "ns", "rounds": len(vs)}
                for i, key in ((1, "FLOPS"), (2, "BYTES")):
                    if vs[0][i] is not None:
                        rec[key] = vs[0][i] * vs[0][0] / med if med else vs[0][i]  # work per call / median time
                bench.append(rec)
            json.dump({"context": ctx, "benchmarks": bench}, open(f"{out}/dcsldm_t{t}.json", "w"), indent=1)
        for side in ("pytorch_models", "pytorch_models_ob1", "pytorch_ops"):
            rounds = sorted(glob.glob(f"{out}/{side}_t{t}_r*.json"))
            if not rounds:
                continue
            per, ctx = {}, {}
            for path in rounds:
                d = json.load(open(path))
                ctx = d["context"]
                for case, v in d["times_s"].items():
                    per.setdefault(case, []).append(v)
            json.dump({"context": ctx, "rounds": len(rounds),
                       "times_s": {c: statistics.median(v) for c, v in per.items()}},
                      open(f"{out}/{side}_t{t}.json", "w"), indent=1)


def main():
    out, threads = sys.argv[1], sys.argv[2:]
    merge_rounds(out, threads)
    summary = {}
    if all(os.path.exists(f"{out}/pytorch_models_t{t}.json") for t in threads):
        model_tables(out, threads, summary)
    if all(os.path.exists(f"{out}/pytorch_ops_t{t}.json") for t in threads):
        op_tables(out, threads)
    json.dump(summary, open(f"{out}/summary.json", "w"), indent=1)


if __name__ == "__main__":
    main()
