#!/usr/bin/env bash
# The main job on the embedded default, end to end on one machine (CPU or GPU):
#   1. generate a small VLN benchmark of procedural houses (R2R-CE layout)
#   2. collect expert trajectories into a trajectory store
#   3. train CMA with DAgger (round 0 = the expert data)
#   4. evaluate it on val_unseen next to the expert and random baselines; print the table; write the report
# Every step is resumable: rerunning the script continues where it stopped.
# Usage: scripts/demo.sh [PYTHON] (default .venv/bin/python); NAVGYM_DEMO_DIR sets the output (runs/demo).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-.venv/bin/python}"
OUT="${NAVGYM_DEMO_DIR:-runs/demo}"
DATA="$OUT/data"
# The demo's models are small: one intra-op thread per process is fastest on a few cores, and avoids OpenMP's
# oversubscription collapse (measured here: CMA act 3 ms with 1 thread, 635 ms with 2 threads on a busy 2-core box).
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
DEVICE=$("$PY" -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
step() { printf '\n\033[1m== %s ==\033[0m\n' "$*"; }
start=$(date +%s)

step "1/4 generate the benchmark (40 houses: 32 for training, 8 unseen; 320 training episodes) -> $DATA"
"$PY" -m envs.datasets.generate --out "$DATA" --n-scenes 40 --episodes-per-scene 10 --unseen-fraction 0.2 \
  --seed 0 --workers 2

step "2/4 collect expert trajectories -> $OUT/expert"
"$PY" -m trainers.data.collect --data "$DATA" --split train --out "$OUT/expert" --store-frames --size 64

step "3/4 train CMA with DAgger on $DEVICE -> $OUT/cma"
# A run folder is continued, whether or not its run got as far as a checkpoint (a new run would be refused).
resume=false
[ -d "$OUT/cma" ] && [ -n "$(ls -A "$OUT/cma")" ] && resume=true
"$PY" trainers/run.py experiment=demo agent=cma data.dir="$DATA" data.init_store="$OUT/expert" \
  run_dir="$OUT/cma" device="$DEVICE" resume=$resume

step "4/4 evaluate on val_unseen: expert, random, CMA -> $OUT/eval"
"$PY" benchmarks/run.py "agents=[expert,random,$OUT/cma]" benchmark=vln_val_unseen data.dir="$DATA" \
  out_dir="$OUT/eval" device="$DEVICE"

step "results (val_unseen, $(($(date +%s) - start)) s in all)"
sed -n '/^| agent/,/^$/p' "$OUT/eval/report.md"
echo "report: $OUT/eval/report.md (plots, videos and per-episode results beside it)"
