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
#   --gpus N           processes per node under torchrun (one per GPU)
#   --dry-run          print the command instead of running it
#
# Everything else goes to trainers/run.py. Environment: PYTHON (default python), TORCHRUN (default torchrun).
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

system1=navdp_async
system2=""
name=""
gpus=${GPUS_PER_NODE:-1}
dry_run=0
extra=()

usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
fail() { echo "train_dual_system.sh: $*" >&2; exit 2; }
value() { [[ $# -ge 2 && -n "$2" && "$2" != --* ]] || fail "$1 needs a value"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --system1) value "$@"; system1="$2"; shift 2 ;;
    --system1=*) system1="${1#*=}"; shift ;;
    --system2) value "$@"; system2="$2"; shift 2 ;;
    --system2=*) system2="${1#*=}"; shift ;;
    --name) value "$@"; name="$2"; shift 2 ;;
    --name=*) name="${1#*=}"; shift ;;
    --gpus) value "$@"; gpus="$2"; shift 2 ;;
    --gpus=*) gpus="${1#*=}"; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h | --help) usage; exit 0 ;;
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
[[ "$name" =~ ^[A-Za-z0-9._-]+$ ]] || fail "--name must be letters, digits, '.', '_' or '-', got '$name'"
[[ "$gpus" =~ ^[1-9][0-9]*$ ]] || fail "--gpus must be a positive integer, got '$gpus'"

args=("agent=dual" "agent.system1=$system1" "agent.system2=$system2" "trainer=bc" "data.action_mode=discrete"
      "optim.lr=1e-4" "run_dir=runs/$name")
cmd=("${PYTHON:-python}" "$ROOT/trainers/run.py")
if (( gpus > 1 )); then
  cmd=("${TORCHRUN:-torchrun}" --nnodes 1 --nproc_per_node "$gpus" "$ROOT/trainers/run.py")
fi
cmd+=("${args[@]}" ${extra[@]+"${extra[@]}"})

if (( dry_run )); then
  printf '%q ' "${cmd[@]}"
  echo
  exit 0
fi
cd "$ROOT"
exec "${cmd[@]}"
