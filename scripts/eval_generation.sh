#!/usr/bin/env bash
# scripts/eval_generation.sh [BUILD_DIR]: the generation evaluation of docs/dit.md from the shipped models.
#   1. DCS-LDM, joint generation of m = 1..L levels (the compute-quality curve), class-conditional, all classes;
#   2. DCS-LDM, progressive generation of all levels (finished levels held clean), and in two stages (levels 1..2, then
#      3..4 with 1..2 clean: --stages 2,4);
#   3. the conventional LDM baseline (fixed-patch 2D-latent autoencoder + DiT, same training budget), if shipped;
# each with the test-split floors. Writes docs/results/gen_*.json and the curve docs/results/gen_curve.png.
# N (default 500) samples per run, STEPS (20), SAMPLER (dpm++2m), CFG (guidance, default 1.0: the best FD of both models,
# docs/dit.md); TAG (default empty) is appended to every output name (e.g. TAG=_cfg1.5). ~5 minutes at N = 500.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
T="$BUILD/examples/dcsldm"
M="$ROOT/examples/models"
R="$ROOT/docs/results"
N=${N:-500}
STEPS=${STEPS:-20}
SAMPLER=${SAMPLER:-dpm++2m}
CFG=${CFG:-1.0}
TAG=${TAG:-}
mkdir -p "$R"
export OMP_PROC_BIND=false
common=(--n "$N" --steps "$STEPS" --sampler "$SAMPLER" --cfg "$CFG" --classifier "$M/fmnist_cls.safetensors")
echo "== DCS-LDM, joint, levels 1..4"
"$T" eval-generation --tokenizer "$M/fmnist_tok.safetensors" --model "$M/fmnist_dit.safetensors" "${common[@]}" \
  --levels 1,2,3,4 --json "$R/gen_dcs_joint$TAG.json"
echo "== DCS-LDM, progressive, 4 levels"
"$T" eval-generation --tokenizer "$M/fmnist_tok.safetensors" --model "$M/fmnist_dit.safetensors" "${common[@]}" \
  --progressive --json "$R/gen_dcs_progressive$TAG.json"
echo "== DCS-LDM, in stages: levels 1..2, then 3..4 with 1..2 clean"
"$T" eval-generation --tokenizer "$M/fmnist_tok.safetensors" --model "$M/fmnist_dit.safetensors" "${common[@]}" \
  --stages 2,4 --json "$R/gen_dcs_stages24$TAG.json"
if [[ -f "$M/fmnist_ldm_ae.safetensors" && -f "$M/fmnist_ldm_dit.safetensors" ]]; then
  echo "== conventional LDM baseline"
  "$T" eval-generation --tokenizer "$M/fmnist_ldm_ae.safetensors" --model "$M/fmnist_ldm_dit.safetensors" \
    "${common[@]}" --json "$R/gen_baseline$TAG.json"
fi
/usr/bin/python3 - "$R" "$TAG" <<'PY'
import json, os, sys
R, TAG = sys.argv[1], sys.argv[2]
runs = []
for name, label in [("gen_dcs_joint", "DCS-LDM joint"), ("gen_dcs_progressive", "DCS-LDM progressive"),
                    ("gen_dcs_stages24", "DCS-LDM stages 2,4"), ("gen_baseline", "conventional LDM")]:
    p = os.path.join(R, name + TAG + ".json")
    if not os.path.exists(p):
        continue
    d = json.load(open(p))
    for r in d["runs"]:
        runs.append((label, r, d))
f0 = runs[0][2]
print(f"classifier test accuracy {100*f0['classifier_test_accuracy']:.2f} %; floors (test vs train, n = {f0['n']}): "
      f"FD {f0['fd_floor']:.3f}, SWD {f0['swd_floor']:.2f}")
print(f"{'model':<22} {'levels':>6} {'class acc':>9} {'FD':>8} {'FD/floor':>8} {'SWD':>7} {'SWD/floor':>9} "
      f"{'DiT ms/sample':>13} {'decode ms':>9}")
for label, r, d in runs:
    print(f"{label:<22} {r['levels']:>6} {100*r['class_accuracy']:>8.2f}% {r['fd']:>8.3f} {r['fd']/d['fd_floor']:>8.2f} "
          f"{r['swd']:>7.2f} {r['swd']/d['swd_floor']:>9.2f} {1e3*r['dit_seconds_per_sample']:>13.2f} "
          f"{1e3*r['decode_seconds_per_sample']:>9.2f}")
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    sys.exit(0)
fig, ax = plt.subplots(1, 2, figsize=(9, 3.6))
for label, marker in [("DCS-LDM joint", "o-"), ("DCS-LDM progressive", "s"), ("DCS-LDM stages 2,4", "D"),
                      ("conventional LDM", "^")]:
    pts = [(1e3 * (r["dit_seconds_per_sample"] + r["decode_seconds_per_sample"]), r["fd"], r["swd"], r["levels"])
           for l, r, d in runs if l == label]
    if not pts:
        continue
    ax[0].plot([p[0] for p in pts], [p[1] for p in pts], marker, label=label)
    ax[1].plot([p[0] for p in pts], [p[2] for p in pts], marker, label=label)
    if label == "DCS-LDM joint":
        for p in pts:
            ax[0].annotate(f"m={p[3]}", (p[0], p[1]), textcoords="offset points", xytext=(4, 4), fontsize=8)
            ax[1].annotate(f"m={p[3]}", (p[0], p[2]), textcoords="offset points", xytext=(4, 4), fontsize=8)
for a, key, name in [(ax[0], "fd_floor", "FD"), (ax[1], "swd_floor", "SWD x 1e3")]:
    a.axhline(f0[key], color="gray", ls="--", lw=1, label="test-vs-train floor")
    a.axhline(2 * f0[key], color="gray", ls=":", lw=1, label="2x floor")
    a.set_xlabel("time per sample (ms)")
    a.set_ylabel(name)
    a.set_yscale("log")
ax[0].legend(fontsize=7)
fig.suptitle(f"Fashion-MNIST class-conditional generation, n = {f0['n']}, {f0['steps']} {f0['sampler']} steps, cfg {f0['cfg']}")
fig.tight_layout()
fig.savefig(os.path.join(R, "gen_curve" + TAG + ".png"), dpi=110)
print("wrote", os.path.join(R, "gen_curve" + TAG + ".png"))
PY
