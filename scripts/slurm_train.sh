#!/usr/bin/env bash
# Multi-node DDP training under SLURM: one torchrun per node, one process per GPU, c10d rendezvous on the
# first node. Rank 0 writes the run folder (checkpoints, metrics, config); every rank collects and evaluates
# its share of the episodes into the shared store, so the run folder and data must sit on a shared filesystem.
#
#   sbatch scripts/slurm_train.sh agent=cma trainer=dagger data.dir=/shared/navgym_r2r run_dir=/shared/runs/cma
#   sbatch --nodes 4 scripts/slurm_train.sh experiment=vlnce_dagger agent=cma data.dir=... run_dir=...
#
# Requeue-safe: a preempted or requeued job resumes from the run folder's last checkpoint (resume=true), which
# restores the agent, optimiser, scheduler, RNG, step and DAgger round / data-loader position.
#SBATCH --job-name=navgym-train
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gres=gpu:8
#SBATCH --cpus-per-task=32
#SBATCH --time=24:00:00
#SBATCH --requeue
#SBATCH --output=slurm-%x-%j.out
set -euo pipefail

GPUS_PER_NODE=${GPUS_PER_NODE:-8}
MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
MASTER_PORT=${MASTER_PORT:-29500}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}"

# One torchrun per node; torchrun starts GPUS_PER_NODE processes and sets RANK/WORLD_SIZE/LOCAL_RANK.
srun --kill-on-bad-exit=1 torchrun \
  --nnodes="$SLURM_NNODES" \
  --nproc_per_node="$GPUS_PER_NODE" \
  --rdzv_id="$SLURM_JOB_ID" \
  --rdzv_backend=c10d \
  --rdzv_endpoint="$MASTER_ADDR:$MASTER_PORT" \
  trainers/run.py resume=true device=cuda "$@"
