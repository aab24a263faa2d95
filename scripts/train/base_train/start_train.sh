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
MODELS=(seq2seq cma rdp navdp)
PLANNED=()

name=rdp_train
model=rdp
gpus=1
dry_run=0
extra=()

usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
fail() { echo "start_train.sh: $*" >&2; exit 2; }
value() { [[ $# -ge 2 && -n "$2" && "$2" != --* ]] || fail "$1 needs a value"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) value "$@"; name="$2"; shift 2 ;;
    --name=*) name="${1#*=}"; shift ;;
    --model | --model-name) value "$@"; model="$2"; shift 2 ;;
    --model=* | --model-name=*) model="${1#*=}"; shift ;;
    --gpus) value "$@"; gpus="$2"; shift 2 ;;
    --gpus=*) gpus="${1#*=}"; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) extra+=("$1"); shift ;;
  esac
done

valid="valid models: ${MODELS[*]}"
if (( ${#PLANNED[@]} )) && [[ " ${PLANNED[*]} " == *" $model "* ]]; then
  fail "model '$model' is not available yet; $valid"
fi
[[ " ${MODELS[*]} " == *" $model "* ]] || fail "unknown model '$model'; $valid"
[[ "$name" =~ ^[A-Za-z0-9._-]+$ ]] || fail "--name must be letters, digits, '.', '_' or '-', got '$name'"
[[ "$gpus" =~ ^[1-9][0-9]*$ ]] || fail "--gpus must be a positive integer, got '$gpus'"

cmd=("${PYTHON:-python}" "$ROOT/trainers/run.py")
if (( gpus > 1 )); then
  cmd=("${TORCHRUN:-torchrun}" --nnodes 1 --nproc_per_node "$gpus" "$ROOT/trainers/run.py")
fi
cmd+=("agent=$model" "run_dir=runs/$name")
if [[ "$model" == navdp ]]; then
  for default in trainer=bc data.task=pointnav; do
    [[ " ${extra[*]-} " == *" ${default%%=*}="* ]] || cmd+=("$default")
  done
fi
cmd+=(${extra[@]+"${extra[@]}"})

if (( dry_run )); then
  printf '%q ' "${cmd[@]}"
  echo
  exit 0
fi
exec "${cmd[@]}"
