#!/usr/bin/env bash
# InternNav's launcher, as a thin wrapper over the single entry point trainers/run.py:
#
#   scripts/train/base_train/start_train.sh --name NAME --model {seq2seq,cma,rdp,navdp} [--gpus N] [--dry-run] \
#       [key=value ...] [Hydra flags such as --cfg job]
#
#   --name NAME          run folder runs/NAME (InternNav's default: rdp_train); resuming it: resume=true
#   --model, --model-name MODEL
#                        the agent: agent=MODEL (default rdp); navdp adds trainer=bc data.task=pointnav
#                        unless the overrides set them (NavDP trains on windows of goal-task episodes)
#   --gpus N             N > 1 runs under torchrun --nproc_per_node N (one process per GPU, DDP)
#   --dry-run            print the command instead of running it
#
# Everything else is passed to trainers/run.py unchanged, e.g. data.dir=data/navgym_r2r trainer=bc.
# Environment: PYTHON (default python) and TORCHRUN (default torchrun) choose the executables.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
SCRIPT=start_train.sh
source "$ROOT/scripts/train/base_train/launch.sh"
MODELS=(seq2seq cma rdp navdp)

name=rdp_train
model=rdp

while [[ $# -gt 0 ]]; do
  common_option "$@"
  if (( SHIFT )); then shift "$SHIFT"; continue; fi
  case "$1" in
    --model | --model-name) value "$@"; model="$2"; shift 2 ;;
    --model=* | --model-name=*) model="${1#*=}"; shift ;;
    *) extra+=("$1"); shift ;;
  esac
done

[[ " ${MODELS[*]} " == *" $model "* ]] || fail "unknown model '$model'; valid models: ${MODELS[*]}"
check_common

args=("agent=$model" "run_dir=runs/$name")
if [[ "$model" == navdp ]]; then
  for default in trainer=bc data.task=pointnav; do
    [[ " ${extra[*]-} " == *" ${default%%=*}="* ]] || args+=("$default")
  done
fi
launch "${args[@]}"
