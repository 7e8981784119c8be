#!/usr/bin/env bash
# Claims 1–3 of the seed on the converged ring-8 recipe (issue 13), one resumable command:
#   experiments/claims/converged.sh [ring8|grid25] [extra hydra overrides]
# Rows (each a hydra multirun over SEEDS into $ROOT/<exp>/<label>); the recipe row is shared by all
# three claims (real_zero penalty, the plain energy difference, Adam β1 = 0.5):
#   recipe                    the recipe as it is
#   claim 1  wgan_gp          penalty=wgan_gp penalty.weight=10 (WGAN-GP's own λ; the experiment's
#                             penalty.weight would otherwise carry over to the new penalty)
#            no_penalty       penalty=none                     (also claim 2's energy difference − penalty)
#   claim 2  hinge            loss=hinge                       (with the recipe's penalty)
#            hinge_no_penalty loss=hinge penalty=none
#   claim 3  sgd_beta<β>      heavy-ball SGD at lr·(1 − β) = ETA for β = 0, 0.5, 0.9 (+sweep=claim3_equal_step_sgd)
#            adam_beta1_<β>   Adam β1 = 0, 0.9 at the recipe's lr (+sweep=claim3_equal_step_adam; 0.5 is the recipe)
# Resumable: rerun the same command; completed runs end at once, interrupted ones continue from
# their checkpoints. Environment: ROOT (outputs/claims_converged), SEEDS (0,1,2), ETA (1e-2),
# MEGE (mege), LAUNCHER (joblib; slurm plus hydra.launcher.* overrides for a cluster).
# Table: mege report $ROOT/<exp> --by penalty._target_,penalty.weight,loss._target_,optim.generator._target_,optim.generator.momentum,optim.generator.lr,optim.generator.betas
set -uo pipefail
exp=${1:-ring8}; shift || true
MEGE=${MEGE:-mege}; ROOT=${ROOT:-outputs/claims_converged}; SEEDS=${SEEDS:-0,1,2}; ETA=${ETA:-1e-2}
LAUNCHER=${LAUNCHER:-joblib}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$ROOT/$exp"
sweep() {  # sweep <label> <overrides...>: one multirun, its wall time appended to $ROOT/times.tsv
    local label=$1; shift
    local t0; t0=$(date +%s)
    "$MEGE" train -m experiment="$exp" seed="$SEEDS" +launcher="$LAUNCHER" train.progress=false "$@" \
        hydra.sweep.dir="$ROOT/$exp/$label" >> "$ROOT/$exp/$label.log" 2>&1
    local rc=$?
    printf '%s\t%s\t%s\t%s s\trc=%s\n' "$(date -u +%H:%M:%S)" "$exp" "$label" "$(( $(date +%s) - t0 ))" "$rc" | tee -a "$ROOT/times.tsv"
}
lr() { python3 -c "print(f'{$ETA / (1 - $1):.6g}')"; }
sweep recipe "$@"
for beta in 0.0 0.5 0.9; do
    sweep "sgd_beta$beta" +sweep=claim3_equal_step_sgd optim.generator.momentum=$beta optim.generator.lr="$(lr $beta)" "$@"
done
for beta in 0.0 0.9; do
    sweep "adam_beta1_$beta" +sweep=claim3_equal_step_adam "optim.generator.betas=[$beta,0.9]" "$@"
done
sweep wgan_gp penalty=wgan_gp penalty.weight=10 "$@"
sweep no_penalty penalty=none "$@"
sweep hinge loss=hinge "$@"
sweep hinge_no_penalty loss=hinge penalty=none "$@"
"$MEGE" report "$ROOT/$exp" --out "$ROOT/$exp/report" \
    --by penalty._target_,penalty.weight,loss._target_,optim.generator._target_,optim.generator.momentum,optim.generator.lr,optim.generator.betas
