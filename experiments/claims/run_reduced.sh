#!/usr/bin/env bash
# The four claims and the estimator ablation on a reduced budget, one experiment (dataset) at a
# time, studies in priority order; wall time of each sweep appended to <root>/times.tsv.
#   experiments/claims/run_reduced.sh <experiment: grid25|ring8> [studies...]
# Environment: ROOT (default multirun/reduced), STEPS (1500), SEEDS (0,1,2), MEGE (mege), TAG
# (appended to every sweep folder name, e.g. TAG=_seeds34 SEEDS=3,4 to add seeds beside a sweep).
# Studies: ablation posterior claim1 claim3 claim2 flow_spline (default: all but flow_spline).
# Every run: OMP_NUM_THREADS=1, two at a time (joblib), no plots, one evaluation at the end.
set -uo pipefail
exp=$1; shift
studies=${*:-ablation posterior claim1 claim3 claim2}
MEGE=${MEGE:-mege}; ROOT=${ROOT:-multirun/reduced}; STEPS=${STEPS:-1500}; SEEDS=${SEEDS:-0,1,2}; TAG=${TAG:-}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$ROOT"
common=(+launcher=joblib experiment="$exp" seed="$SEEDS" train.steps="$STEPS" train.eval_every="$STEPS"
        train.ckpt_every="$STEPS" train.progress=false train.plot=false)
sweep() {  # sweep <label> <dir> <overrides...>
    local label=$1 dir=$2; shift 2
    local t0; t0=$(date +%s)
    "$MEGE" train -m "$@" "${common[@]}" hydra.sweep.dir="$dir" > "$dir.log" 2>&1 || true
    printf '%s\t%s\t%s\t%s s\n' "$(date -u +%H:%M:%S)" "$exp" "$label$TAG" "$(( $(date +%s) - t0 ))" | tee -a "$ROOT/times.tsv"
}
for study in $studies; do
    case $study in
        ablation)    mkdir -p "$ROOT/ablation"
                     sweep ablation "$ROOT/ablation/$exp$TAG" +sweep=estimators 'entropy=glob(*,exclude=[posterior_*,flow_spline])' ;;
        flow_spline) mkdir -p "$ROOT/ablation"
                     sweep flow_spline "$ROOT/ablation/${exp}_flow_spline$TAG" +sweep=estimators entropy=flow_spline ;;
        posterior)   mkdir -p "$ROOT/ablation"
                     sweep posterior "$ROOT/ablation/${exp}_posterior$TAG" +sweep=estimators_posterior ;;
        claim1)      mkdir -p "$ROOT/claim1"; sweep claim1 "$ROOT/claim1/$exp$TAG" +sweep=claim1_penalty ;;
        claim2)      mkdir -p "$ROOT/claim2"; sweep claim2 "$ROOT/claim2/$exp$TAG" +sweep=claim2_loss ;;
        claim3)      mkdir -p "$ROOT/claim3/$exp$TAG"
                     sweep claim3_adam "$ROOT/claim3/$exp$TAG/adam" +sweep=claim3_adam
                     sweep claim3_sgd "$ROOT/claim3/$exp$TAG/sgd" +sweep=claim3_sgd ;;
        *) echo "unknown study $study" >&2; exit 2 ;;
    esac
done
