#!/usr/bin/env bash
# InternVLA-N1 System 2 (Qwen2.5-VL pixel goals), after InternNav's scripts/train/qwenvl_train/train_system2.sh,
# as a thin wrapper over the single entry point trainers/run.py (agent=system2 trainer=bc):
#
#   scripts/train/base_train/qwenvl_train/train_system2.sh [--name NAME] [--model-path DIR] [--gpus N]
#       [--dry-run] [key=value ...]
#
#   --name NAME        run folder runs/NAME (default system2_train); resuming it: resume=true
#   --model-path DIR   a local Qwen2.5-VL folder (3B/7B): bf16, gradient checkpointing, FSDP across ranks,
#                      lr 2e-5 (vision tower 5e-6), pixels 3136..313600, 384 px frames. Without it: the tiny
#                      model, trained from scratch (DDP across ranks)
#   --gpus N           processes per node under torchrun (one per GPU); several SLURM nodes: srun + c10d
#   --dry-run          print the command instead of running it
#
# Runs with or without SLURM (sbatch this file, or call it directly). Everything else goes to trainers/run.py.
# Environment: PYTHON (default python), TORCHRUN (default torchrun), MASTER_PORT (default 29500).
#SBATCH --job-name=navgym-system2
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --gres=gpu:8
#SBATCH --cpus-per-task=64
#SBATCH --time=48:00:00
#SBATCH --requeue
#SBATCH --output=slurm-%x-%j.out
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../.." && pwd)"
[[ -f "$ROOT/trainers/run.py" ]] || ROOT="${SLURM_SUBMIT_DIR:-$PWD}"
SCRIPT=train_system2.sh
source "$ROOT/scripts/train/base_train/launch.sh"

name=system2_train
model_path=""

while [[ $# -gt 0 ]]; do
  common_option "$@"
  if (( SHIFT )); then shift "$SHIFT"; continue; fi
  case "$1" in
    --model-path) value "$@"; model_path="$2"; shift 2 ;;
    --model-path=*) model_path="${1#*=}"; shift ;;
    *) extra+=("$1"); shift ;;
  esac
done

check_common
if [[ -n "$model_path" && $dry_run -eq 0 && ! -d "$model_path" ]]; then
  fail "--model-path '$model_path' is not a folder (a local Qwen2.5-VL copy; nothing is downloaded)"
fi

args=("agent=system2" "trainer=bc" "run_dir=runs/$name")
if [[ -n "$model_path" ]]; then
  args+=("agent.model_path=$model_path" "agent.dtype=bfloat16" "agent.gradient_checkpointing=true"
         "agent.min_pixels=3136" "agent.max_pixels=313600" "agent.image_size=384" "agent.lr_vision=5e-6"
         "optim.lr=2e-5" "distributed=fsdp")
fi
launch "${args[@]}"
