#!/usr/bin/env bash
# Stacked MNIST cpu-profile study: 3 seeds with and without the entropy term (JS MI bound, λ_H = 1),
# two runs at a time on one thread each (joblib); then the table, reference row included.
#   experiments/stacked_mnist/run_cpu.sh [sweep_dir]     (default multirun/stacked_mnist_cpu/study)
# Counts with the committed reference classifier. Wall time appended to <sweep_dir>.time.
set -uo pipefail
dir=${1:-multirun/stacked_mnist_cpu/study}
MEGE=${MEGE:-mege}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$(dirname "$dir")"
t0=$(date +%s)
"$MEGE" train -m +sweep=stacked_mnist_cpu +launcher=joblib hydra.sweep.dir="$dir" > "$dir.log" 2>&1
rc=$?
printf 'started %s, wall %s s, rc=%s\n' "$(date -u -d @"$t0" +%FT%TZ)" "$(( $(date +%s) - t0 ))" "$rc" | tee -a "$dir.time"
"$MEGE" report "$dir" --by entropy --out "$dir/report"
