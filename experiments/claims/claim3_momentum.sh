#!/usr/bin/env bash
# Claim 3 (optimiser momentum → mode coverage) as one command: the Adam β1 sweep and the SGD
# momentum sweep into one folder, then one report over both.
#   experiments/claims/claim3_momentum.sh [extra hydra overrides, e.g. data=grid25 train.steps=2000]
set -euo pipefail
MEGE=${MEGE:-mege}
dir=multirun/claim3_momentum/$(date +%Y-%m-%d_%H-%M-%S)
"$MEGE" train -m +sweep=claim3_adam +launcher=joblib hydra.sweep.dir="$dir/adam" "$@"
"$MEGE" train -m +sweep=claim3_sgd +launcher=joblib hydra.sweep.dir="$dir/sgd" "$@"
"$MEGE" report "$dir"
