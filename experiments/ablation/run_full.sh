#!/usr/bin/env bash
# The estimator ablation at the full protocol on one toy dataset: every estimator in
# configs/entropy/ plus `none`, 5 seeds, the tuned setup's 3 000 steps, two runs at a time
# (joblib, one thread each), one evaluation (raw + EMA) and one landscape at the end.
#   experiments/ablation/run_full.sh [grid25|ring8] [main posterior flow_spline]   (defaults: grid25, all three)
# Three sweeps into $ROOT/<exp>/{main,posterior,flow_spline} (posterior_* need generator=noisy_mlp;
# flow_spline is the slowest row and runs last); wall time of each appended to $ROOT/times.tsv.
# Rebuild the table with one command:
#   mege report $ROOT/<exp> --by entropy --out experiments/ablation/full_<exp>
# Environment: ROOT (default multirun/full_ablation), STEPS (3000), SEEDS (0,1,2,3,4), MEGE (mege).
set -uo pipefail
exp=${1:-grid25}; shift || true
studies=${*:-main posterior flow_spline}
MEGE=${MEGE:-mege}; ROOT=${ROOT:-multirun/full_ablation}; STEPS=${STEPS:-3000}; SEEDS=${SEEDS:-0,1,2,3,4}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$ROOT/$exp"
common=(+launcher=joblib experiment="$exp" seed="$SEEDS" train.steps="$STEPS" train.eval_every="$STEPS"
        train.ckpt_every="$STEPS" train.progress=false)
start=$(date +%s)
sweep() {  # sweep <label> <overrides...>
    local label=$1; shift
    local t0; t0=$(date +%s)
    "$MEGE" train -m "$@" "${common[@]}" hydra.sweep.dir="$ROOT/$exp/$label" > "$ROOT/$exp/$label.log" 2>&1
    local rc=$?
    printf '%s\t%s\t%s\t%s s\trc=%s\n' "$(date -u +%H:%M:%S)" "$exp" "$label" "$(( $(date +%s) - t0 ))" "$rc" | tee -a "$ROOT/times.tsv"
}
for study in $studies; do
    case $study in
        main)        sweep main +sweep=estimators 'entropy=glob(*,exclude=[posterior_*,flow_spline])' ;;
        posterior)   sweep posterior +sweep=estimators_posterior ;;
        flow_spline) sweep flow_spline +sweep=estimators entropy=flow_spline ;;
        *) echo "unknown study $study (main, posterior, flow_spline)" >&2; exit 2 ;;
    esac
done
printf '%s\t%s\ttotal\t%s s\n' "$(date -u +%H:%M:%S)" "$exp" "$(( $(date +%s) - start ))" | tee -a "$ROOT/times.tsv"
