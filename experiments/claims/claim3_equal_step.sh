#!/usr/bin/env bash
# Claim 3 (momentum → collapse) at equal effective step size, on the converged recipe (issue 13):
#   SGD with lr·(1 − β) = ETA fixed: β = 0, 0.5, 0.9 at lr = ETA, 2·ETA, 10·ETA;
#   Adam β1 ∈ {0, 0.5, 0.9} at the recipe's one lr (1e-3, cosine to 0).
# Resumable: rerun the same command; each sweep folder keeps its completed runs, and an interrupted
# run continues from its checkpoint.
#   experiments/claims/claim3_equal_step.sh [ring8|grid25] [extra hydra overrides]
# Environment: ROOT (default outputs/claim3_equal_step), SEEDS (0,1,2,3,4), ETA (1e-2), MEGE (mege),
#   LAUNCHER (joblib; slurm for a cluster, plus hydra.launcher.* overrides).
# Table: mege report $ROOT/<exp> --by optim.generator._target_,optim.generator.momentum,optim.generator.lr,optim.generator.betas
set -uo pipefail
exp=${1:-ring8}; shift || true
MEGE=${MEGE:-mege}; ROOT=${ROOT:-outputs/claim3_equal_step}; SEEDS=${SEEDS:-0,1,2,3,4}; ETA=${ETA:-1e-2}
LAUNCHER=${LAUNCHER:-joblib}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$ROOT/$exp"
sweep() {  # sweep <label> <overrides...>: one multirun, its wall time appended to $ROOT/times.tsv
    local label=$1; shift
    local t0; t0=$(date +%s)
    "$MEGE" train -m experiment="$exp" seed="$SEEDS" +launcher="$LAUNCHER" "$@" \
        hydra.sweep.dir="$ROOT/$exp/$label" > "$ROOT/$exp/$label.log" 2>&1
    local rc=$?
    printf '%s\t%s\t%s\t%s s\trc=%s\n' "$(date -u +%H:%M:%S)" "$exp" "$label" "$(( $(date +%s) - t0 ))" "$rc" | tee -a "$ROOT/times.tsv"
}
lr() { python3 -c "print(f'{$ETA / (1 - $1):.6g}')"; }
for beta in 0.0 0.5 0.9; do
    sweep "sgd_beta$beta" +sweep=claim3_equal_step_sgd optim.generator.momentum=$beta optim.generator.lr="$(lr $beta)" "$@"
done
sweep adam +sweep=claim3_equal_step_adam 'optim.generator.betas=[0.0,0.9],[0.5,0.9],[0.9,0.9]' "$@"
"$MEGE" report "$ROOT/$exp" --by optim.generator._target_,optim.generator.momentum,optim.generator.lr,optim.generator.betas --out "$ROOT/$exp/report"
