#!/usr/bin/python3
"""The generation cost curve of docs/performance.md: time of one generation (50 sampler steps with
classifier-free guidance, batch 1) against output pixels, for DCS-LDM and the conventional latent diffusion
baseline, on log-log axes, composed from measured parts of one bench_dcsldm run:

    total(R) = 50 x dit_step/<model>/res:R/batch:2  +  decode_cost/<model>/res:R

(a guided step is one DiT call on the doubled batch). DCS-LDM's DiT always runs on its 32 latent tokens;
the baseline's on (R/7)^2. Usage:

    bench_dcsldm --benchmark_filter='(dit_step/.*/batch:2)|(decode_cost/)' --benchmark_format=json > cost.json
    plot_generation_cost.py cost.json docs/results/generation_cost.png

Prints the table (Markdown) and writes the PNG.
"""
import json
import re
import sys

STEPS = 50


def main():
    src, png = sys.argv[1], sys.argv[2]
    d = json.load(open(src))
    t = {}
    for b in d["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        name = re.sub(r"/real_time$", "", b.get("run_name", b["name"]))
        scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b.get("time_unit", "ns")]
        t[name] = b["real_time"] * scale
    rows = []
    for model in ("dcs", "baseline"):
        for r in (28, 56, 112, 224, 448):
            step, dec = t.get(f"dit_step/{model}/res:{r}/batch:2"), t.get(f"decode_cost/{model}/res:{r}")
            if step is None or dec is None:
                continue
            rows.append((model, r, step, dec, STEPS * step + dec))
    print("| model | output | DiT step (guided) ms | 50 steps ms | decode ms | total ms | total / 28 px total |")
    print("|---|---|---:|---:|---:|---:|---:|")
    base = {m: next(x[4] for x in rows if x[0] == m and x[1] == 28) for m in {x[0] for x in rows}}
    for m, r, step, dec, tot in rows:
        print(f"| {'DCS-LDM' if m == 'dcs' else 'conventional LDM'} | {r}x{r} | {step * 1e3:.2f} | "
              f"{STEPS * step * 1e3:.1f} | {dec * 1e3:.2f} | {tot * 1e3:.1f} | {tot / base[m]:.1f} |")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for m, label, style in (("dcs", "DCS-LDM (32 latent tokens at every size)", "o-"),
                            ("baseline", "conventional LDM ((R/7)^2 latent tokens)", "s--")):
        pts = [(r * r, tot, STEPS * step) for mm, r, step, dec, tot in rows if mm == m]
        if not pts:
            continue
        ax.loglog([p[0] for p in pts], [p[1] for p in pts], style, label=label + ": total")
        ax.loglog([p[0] for p in pts], [p[2] for p in pts], style[0] + ":", alpha=0.6, label=label.split(" (")[0] +
                  ": DiT part")
    ax.set_xlabel("output pixels (28^2 ... 448^2)")
    ax.set_ylabel("seconds per generation (batch 1, 50 guided steps)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    ctx = d.get("context", {})
    ax.set_title(f"generation cost vs output size ({ctx.get('kokkos_exec_space', '')}, "
                 f"{ctx.get('kokkos_concurrency', '?')} thread(s))", fontsize=9)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    print(f"\nwrote {png}")


if __name__ == "__main__":
    main()
