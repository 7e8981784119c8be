#!/usr/bin/env bash
# Claims 1–3 of the seed on the converged ring-8 recipe (issue 13), one resumable command:
#   experiments/claims/converged.sh [ring8|grid25] [extra hydra overrides]
# Rows (label: overrides); the recipe row is shared by all three claims (real_zero penalty, the
# plain energy difference, Adam β1 = 0.5). Each (row, seed) is one `mege train` into
# $ROOT/<exp>/<label>/<seed>/, JOBS of them at a time (one thread each), in the order below:
# claim 3 first, then claim 1, then claim 2, seeds interleaved so that a stopped queue leaves
# whole rows. Resumable: rerun the same command; a completed run ends at once, an interrupted one
# continues from its checkpoint. Environment: ROOT (outputs/claims_converged), SEEDS ("0 1 2"),
# ETA (1e-2), JOBS (2), MEGE (mege), ROWS (default: every row, in this order).
# Table: python experiments/claims/converged_tables.py $ROOT/<exp>   (→ experiments/claims/converged.md)
set -uo pipefail
exp=${1:-ring8}; shift || true
MEGE=${MEGE:-mege}; ROOT=${ROOT:-outputs/claims_converged}; SEEDS=${SEEDS:-0 1 2}; ETA=${ETA:-1e-2}; JOBS=${JOBS:-2}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
lr() { python3 -c "print(f'{$ETA * (1 - $1):.6g}')"; }   # heavy ball moves lr/(1 − β) per unit gradient: equal effective step η ⇒ lr = η·(1 − β)
declare -A ROW=(
  [recipe]=""
  [sgd_beta0.0]="+sweep=claim3_equal_step_sgd optim.generator.momentum=0.0 optim.generator.lr=$(lr 0.0)"   # claim 3: lr·(1 − β) = ETA
  [sgd_beta0.5]="+sweep=claim3_equal_step_sgd optim.generator.momentum=0.5 optim.generator.lr=$(lr 0.5)"
  [sgd_beta0.9]="+sweep=claim3_equal_step_sgd optim.generator.momentum=0.9 optim.generator.lr=$(lr 0.9)"
  [adam_beta1_0.0]="+sweep=claim3_equal_step_adam optim.generator.betas=[0.0,0.9]"                        # claim 3: Adam β1 at one lr
  [adam_beta1_0.9]="+sweep=claim3_equal_step_adam optim.generator.betas=[0.9,0.9]"
  [wgan_gp]="penalty=wgan_gp penalty.weight=10"   # claim 1 (WGAN-GP's own λ; the experiment's penalty.weight would carry over)
  [no_penalty]="penalty=none"                     # claims 1 and 2 (energy difference without a penalty)
  [hinge]="loss=hinge"                            # claim 2
  [hinge_no_penalty]="loss=hinge penalty=none"
)
ORDER="recipe sgd_beta0.0 sgd_beta0.5 sgd_beta0.9 adam_beta1_0.0 adam_beta1_0.9 wgan_gp no_penalty hinge hinge_no_penalty"
mkdir -p "$ROOT/$exp"
for label in ${ROWS:-$ORDER}; do
    [[ -v "ROW[$label]" ]] || { echo "converged.sh: unknown row '$label'; rows: $ORDER" >&2; exit 2; }
done
for label in ${ROWS:-$ORDER}; do
    for seed in $SEEDS; do
        echo "$label $seed ${ROW[$label]} $*"
    done
done | sed "s/ *$//" | xargs -r -P "$JOBS" -L 1 bash -c '
    label=$0; seed=$1; shift 1; dir="'"$ROOT/$exp"'/$label/$seed"; t0=$(date +%s); mkdir -p "$(dirname "$dir")"
    "'"$MEGE"'" train experiment='"$exp"' seed=$seed train.progress=false "$@" hydra.run.dir="$dir" > "$dir.log" 2>&1 || true
    printf "%s\t%s\t%s\t%s\t%s s\n" "$(date -u +%H:%M:%S)" '"$exp"' "$label" "$seed" "$(( $(date +%s) - t0 ))" >> "'"$ROOT"'/times.tsv"'
