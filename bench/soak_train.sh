#!/usr/bin/env bash
# Many short training runs created, killed at random moments (SIGKILL) and resumed, in a loop
# (`make soak-train ROUNDS=…`). Every resumed run must end with the same weights, bit for bit,
# as a reference run that was never interrupted (CPU runs are exact). Prints one line per round.
set -euo pipefail
SIPL=${SIPL:-target/release/sipl}
ROUNDS=${ROUNDS:-20}
W=${WORK:-.work}/soak-train
rm -rf "$W" && mkdir -p "$W"
"$SIPL" synth --out "$W/images" --classes 2 --per-class 24 --size 40 >/dev/null
"$SIPL" ingest folder "$W/images" --out "$W/ds" --resize 32 --crop 32 -q >/dev/null
cat > "$W/tiny.toml" <<TOML
[data]
path = "$W/ds"
val_fraction = 0.125
workers = 1
[model]
scheme = "siplv1"
[optim]
lr = 1e-4
batch_size = 8
epochs = 3
max_steps = 12
[run]
device = "cpu"
checkpoint_every = 2
keep_checkpoints = 2
log_every = 1
threads = 1
TOML
train() { "$SIPL" train --config "$W/tiny.toml" -q --run-dir "$@"; }
start=$(date +%s%N)
train "$W/reference" >/dev/null
full=$(python3 -c "print(($(date +%s%N) - $start) / 1e9)")
echo "reference run: ${full} s"
for round in $(seq 1 "$ROUNDS"); do
  run="$W/run-$round"
  kills=0
  # Up to three kills per round, each at a random moment of the remaining run.
  for k in 1 2 3; do
    delay=$(python3 -c "import random; random.seed($round*10+$k); print(round(random.uniform(0.05, 0.9)*$full, 2))")
    # Started directly (not through the function) so that $! is sipl itself.
    "$SIPL" train --config "$W/tiny.toml" -q --run-dir "$run" >/dev/null 2>&1 &
    pid=$!
    sleep "$delay"
    if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
    wait "$pid" 2>/dev/null || true
  done
  if ! train "$run" >"$W/last.log" 2>&1; then
    echo "round $round: the resume after $kills kill(s) failed:"; tail -5 "$W/last.log"; exit 1
  fi
  if cmp -s "$run/final.safetensors" "$W/reference/final.safetensors"; then
    echo "round $round: $kills kill(s), resumed, weights identical"
  else
    echo "round $round: $kills kill(s), resumed, WEIGHTS DIFFER" && exit 1
  fi
  rm -rf "$run"
done
echo "soak-train: $ROUNDS rounds, every resumed run identical to the reference"
