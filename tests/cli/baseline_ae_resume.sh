#!/usr/bin/env bash
# tests/cli/baseline_ae_resume.sh <dcsldm> <tmpdir>: train-baseline-ae's checkpoints. A run stopped after step 3
# (--stop-after) and continued by the same command ends with the same files, byte for byte, as a run straight
# through, and prints the same losses; a checkpoint of another run, or a checkpoint pair at different steps, is
# refused with a message naming the file and what differs.
set -u
BIN="$(realpath "$1")"
TMP="$2"
rm -rf "$TMP"
mkdir -p "$TMP/straight" "$TMP/split" "$TMP/pair"
fails=0
fail() {
  echo "FAIL: $*"
  fails=$((fails + 1))
}
# A tiny model: the test is about the step sequence, not the autoencoder's quality.
ARGS=(train-baseline-ae --out m.safetensors --steps 6 --width 16 --layers 1 --batch 4 --ckpt-every 2 --log-every 1
      --seed 7)
losses() { grep '^step' "$1" | sed 's/  [0-9.]* samples\/s.*//'; }

(cd "$TMP/straight" && "$BIN" "${ARGS[@]}" > log 2>&1) || fail "straight run: $(cat "$TMP/straight/log")"
(cd "$TMP/split" && "$BIN" "${ARGS[@]}" --stop-after 3 > log1 2>&1) || fail "first half: $(cat "$TMP/split/log1")"
grep -q "stopped after step 3" "$TMP/split/log1" || fail "first half did not say where it stopped"
[[ ! -e "$TMP/split/m.safetensors" ]] || fail "a stopped run wrote the model file"
# A stop at or before the checkpoint's step trains nothing, says so, and leaves the checkpoint as it was.
cp "$TMP/split/m.safetensors.ckpt" "$TMP/ckpt3"
out=$(cd "$TMP/split" && "$BIN" "${ARGS[@]}" --stop-after 2 2>&1) || fail "stop before the checkpoint: $out"
[[ "$out" == *"nothing trained: the checkpoint m.safetensors.ckpt is at step 3, at or past --stop-after 2"* ]] ||
  fail "stop before the checkpoint: $out"
cmp -s "$TMP/ckpt3" "$TMP/split/m.safetensors.ckpt" || fail "a stop before the checkpoint changed it"
(cd "$TMP/split" && "$BIN" "${ARGS[@]}" > log2 2>&1) || fail "second half: $(cat "$TMP/split/log2")"
grep -q "resumed at step 3" "$TMP/split/log2" || fail "second half did not resume at step 3: $(head -n1 "$TMP/split/log2")"
for f in m.safetensors m.safetensors.ckpt m.safetensors.ckpt.ema; do
  cmp -s "$TMP/straight/$f" "$TMP/split/$f" || fail "$f differs between the straight and the resumed run"
done
[[ "$(losses "$TMP/straight/log")" == "$(cat <(losses "$TMP/split/log1") <(losses "$TMP/split/log2"))" ]] ||
  fail "progress lines differ: $(losses "$TMP/straight/log") vs $(losses "$TMP/split/log1") $(losses "$TMP/split/log2")"

# Another run's checkpoint (other steps, other width) is refused, not resumed.
out=$(cd "$TMP/split" && "$BIN" "${ARGS[@]/#6/8}" 2>&1)
rc=$?
[[ $rc == 1 && "$out" == *"m.safetensors.ckpt' was written by another run: its train.steps is 6, this run's 8"* ]] ||
  fail "a checkpoint of --steps 6 resumed by --steps 8: rc $rc, $out"
out=$(cd "$TMP/split" && "$BIN" "${ARGS[@]/#16/32}" 2>&1)
rc=$?
[[ $rc == 1 && "$out" == *"its ae.width is 16, this run's 32"* ]] || fail "a width-16 checkpoint resumed at width 32: rc $rc, $out"
out=$(cd "$TMP/split" && "$BIN" "${ARGS[@]}" --latent-l2 0 2>&1)
rc=$?
[[ $rc == 1 && "$out" == *"its train.latent_l2 is 0.001, this run's 0"* ]] || fail "latent L2 changed on resume: rc $rc, $out"
# ... unless asked to start fresh.
(cd "$TMP/split" && "$BIN" "${ARGS[@]/#6/8}" --no-resume --stop-after 1 > /dev/null 2>&1) || fail "--no-resume did not start fresh"

# A pair of files at different steps (a checkpoint interrupted between its two writes) is refused.
(cd "$TMP/pair" && "$BIN" "${ARGS[@]}" --stop-after 2 > /dev/null 2>&1 && cp m.safetensors.ckpt.ema ema2 &&
  "$BIN" "${ARGS[@]}" --stop-after 4 > /dev/null 2>&1 && cp ema2 m.safetensors.ckpt.ema) || fail "pair set-up"
out=$(cd "$TMP/pair" && "$BIN" "${ARGS[@]}" 2>&1)
rc=$?
[[ $rc == 1 && "$out" == *"is at step 4 but"*"at step 2 (interrupted checkpoint?)"* ]] || fail "mismatched pair: rc $rc, $out"
[[ ! -e "$TMP/pair/m.safetensors" ]] || fail "a refused resume wrote the model file"

# --stop-after needs checkpoints.
out=$(cd "$TMP/pair" && "$BIN" "${ARGS[@]/#2/0}" --stop-after 2 2>&1)
rc=$?
[[ $rc == 2 && "$out" == *"--stop-after needs checkpoints"* ]] || fail "--stop-after without checkpoints: rc $rc, $out"

if ((fails)); then
  echo "$fails failure(s)"
  exit 1
fi
echo "all train-baseline-ae resume checks passed"
