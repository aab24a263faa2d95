# Shared part of the launchers (start_train.sh, qwenvl_train/*.sh), sourced after they set ROOT and SCRIPT:
# the options every launcher takes (--name, --gpus, --dry-run, --help), their checks, and the command that
# runs trainers/run.py: python for one process, torchrun for several GPUs on one node, srun + torchrun (c10d
# rendezvous) across the nodes of a SLURM job. Not meant to be run by itself.
# Environment: PYTHON (default python), TORCHRUN (default torchrun), MASTER_PORT (default 29500).

name=""
gpus=${GPUS_PER_NODE:-1}
dry_run=0
extra=()

# The launcher's header comment (from its line 2 to the first line that is not a comment) as help.
usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 && !/^#SBATCH/' "$0" | sed 's/^# \{0,1\}//'; }
fail() { echo "$SCRIPT: $*" >&2; exit 2; }
value() { [[ $# -ge 2 && -n "$2" && "$2" != --* ]] || fail "$1 needs a value"; }

# common_option ARGS...: takes a common option off the front; SHIFT = how many words it used (0: not one).
common_option() {
  SHIFT=0
  case "$1" in
    --name) value "$@"; name="$2"; SHIFT=2 ;;
    --name=*) name="${1#*=}"; SHIFT=1 ;;
    --gpus) value "$@"; gpus="$2"; SHIFT=2 ;;
    --gpus=*) gpus="${1#*=}"; SHIFT=1 ;;
    --dry-run) dry_run=1; SHIFT=1 ;;
    -h | --help) usage; exit 0 ;;
  esac
}

check_common() {
  [[ "$name" =~ ^[A-Za-z0-9._-]+$ ]] || fail "--name must be letters, digits, '.', '_' or '-', got '$name'"
  [[ "$gpus" =~ ^[1-9][0-9]*$ ]] || fail "--gpus must be a positive integer, got '$gpus'"
}

# launch ARGS...: run trainers/run.py with ARGS then the launcher's pass-through words (or print it), from
# the caller's folder (relative paths in the words are the caller's).
launch() {
  local nodes=${SLURM_NNODES:-1} cmd master
  cmd=("${PYTHON:-python}" "$ROOT/trainers/run.py")
  if (( nodes > 1 )); then
    master=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
    cmd=(srun --kill-on-bad-exit=1 "${TORCHRUN:-torchrun}" --nnodes "$nodes" --nproc_per_node "$gpus"
         --rdzv_id "${SLURM_JOB_ID}" --rdzv_backend c10d --rdzv_endpoint "$master:${MASTER_PORT:-29500}"
         "$ROOT/trainers/run.py" resume=true device=cuda)
  elif (( gpus > 1 )); then
    cmd=("${TORCHRUN:-torchrun}" --nnodes 1 --nproc_per_node "$gpus" "$ROOT/trainers/run.py")
  fi
  cmd+=("$@" ${extra[@]+"${extra[@]}"})
  if (( dry_run )); then
    printf '%q ' "${cmd[@]}"
    echo
    exit 0
  fi
  exec "${cmd[@]}"
}
