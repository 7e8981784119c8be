#!/usr/bin/env bash
# Rebuild the committed tables from the sweep folders that run_reduced.sh wrote (one `mege report`
# per study; report.md, report.csv and report_bars.png land in the committed folders below).
#   experiments/claims/build_tables.sh [ROOT=multirun/reduced]
set -euo pipefail
MEGE=${MEGE:-mege}; ROOT=${1:-multirun/reduced}
for n in 1 2 3; do
    "$MEGE" report "$ROOT/claim$n" --out "experiments/claims/claim${n}_report"
done
# claim 4 and the estimator ablation share one sweep folder (both datasets; grouped by experiment, entropy)
"$MEGE" report "$ROOT/ablation" --by experiment,entropy --out experiments/ablation/report
