#!/usr/bin/env bash
# InternVLA-N1 dual systems (a frozen System 2 + a System-1 head), after InternNav's
# scripts/train/qwenvl_train/train_dual_system.sh, as a thin wrapper over trainers/run.py (agent=dual
# trainer=bc, discrete expert episodes, the anchor's lr 1e-4):
#
#   scripts/train/base_train/qwenvl_train/train_dual_system.sh --system2 DIR [--system1 HEAD] [--name NAME]
#       [--gpus N] [--dry-run] [key=value ...]
#
#   --system2 DIR      a saved System-2 agent (e.g. runs/system2_train/checkpoints/last/agent)
#   --system1 HEAD     navdp_async (default; RGB-D, DDPM) or nextdit_async (DualVLN; RGB, rectified flow)
#   --name NAME        run folder runs/NAME (default dual_<HEAD>); resuming it: resume=true
#   --gpus N           processes per node under torchrun (one per GPU); several SLURM nodes: srun + c10d
#   --dry-run          print the command instead of running it
#
# Runs with or without SLURM (sbatch this file, or call it directly). Everything else goes to trainers/run.py.
# Environment: PYTHON (default python), TORCHRUN (default torchrun), MASTER_PORT (default 29500).
#SBATCH --job-name=navgym-dual
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --gres=gpu:8
#SBATCH --cpus-per-task=64
#SBATCH --time=48:00:00
#SBATCH --output=slurm-%x-%j.out
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../.." && pwd)"
[[ -f "$ROOT/trainers/run.py" ]] || ROOT="${SLURM_SUBMIT_DIR:-$PWD}"
SCRIPT=train_dual_system.sh
source "$ROOT/scripts/train/base_train/launch.sh"

system1=navdp_async
system2=""

while [[ $# -gt 0 ]]; do
  common_option "$@"
  if (( SHIFT )); then shift "$SHIFT"; continue; fi
  case "$1" in
    --system1) value "$@"; system1="$2"; shift 2 ;;
    --system1=*) system1="${1#*=}"; shift ;;
    --system2) value "$@"; system2="$2"; shift 2 ;;
    --system2=*) system2="${1#*=}"; shift ;;
    *) extra+=("$1"); shift ;;
  esac
done

[[ "$system1" == navdp_async || "$system1" == nextdit_async ]] \
  || fail "--system1 must be navdp_async or nextdit_async, got '$system1'"
[[ -n "$system2" ]] || fail "--system2 DIR is required (a saved System-2 agent folder)"
if (( ! dry_run )) && [[ ! -f "$system2/config.json" ]]; then
  fail "--system2 '$system2' is not an agent folder (no config.json)"
fi
name=${name:-dual_$system1}
check_common

launch "agent=dual" "agent.system1=$system1" "agent.system2=$system2" "trainer=bc" \
  "data.action_mode=discrete" "optim.lr=1e-4" "run_dir=runs/$name"
