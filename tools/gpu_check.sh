#!/usr/bin/env bash
# GPU check: the CUDA paths that CI (no GPU) never runs, in one script that writes one markdown file.
#
#   bash tools/gpu_check.sh              # on a CUDA machine: ≤ 8 min, writes tools/gpu_check/results.md
#   bash tools/gpu_check.sh --dry-run    # anywhere: checks it can start (tools, data, commands parse); exit 0
#   bash tools/gpu_check.sh --out FILE   # write the report elsewhere
#
# Sections, each under its own time cap (seconds; the caps add up to 450 s, plus ~20 s of set-up):
#   1. the test suite with MEGE_TEST_DEVICE=cuda (the composed test configs train on the GPU; the
#      trainer tests first, so a cap cuts the least GPU-relevant files)           GPU_CHECK_TEST_S=150
#   2. the toy step benchmark on CUDA against the plain PyTorch step, train.compile included
#      (tools/bench/bench.py, its Stacked MNIST/estimator/evaluation/memory sections skipped)
#                                                                                  GPU_CHECK_BENCH_S=150
#   3. a short Stacked MNIST run, `mege train experiment=stacked_mnist` (paper profile) for
#      GPU_CHECK_STEPS=1000 steps, fp32 (joint critic forward, chosen on CUDA) and bf16 autocast with
#      channels-last: throughput (overall and steady, from the TensorBoard events' wall times) and
#      peak CUDA memory; the mode classifier is trained first if none is cached  GPU_CHECK_CLASSIFIER_S=40,
#                                                                                  GPU_CHECK_TRAIN_S=55 per run
# MNIST is looked for in $MEGE_DATA_DIR, ../shared/data/mnist, shared/data/mnist, ~/.cache/mege/mnist;
# without it section 3 is reported as skipped. PYTHON (default .venv/bin/python) runs everything.
# GPU_CHECK_DEVICE=cpu is a rehearsal of the plumbing on a CPU (tiny caps advised; the bf16 run then
# fails by design: train.amp is CUDA only).
set -uo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; }
DRY=0
OUT=tools/gpu_check/results.md
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --out) OUT=${2:?--out needs a file}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu_check: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=$(command -v python3 || echo python3)
TEST_S=${GPU_CHECK_TEST_S:-150}
BENCH_S=${GPU_CHECK_BENCH_S:-150}
CLS_S=${GPU_CHECK_CLASSIFIER_S:-40}
TRAIN_S=${GPU_CHECK_TRAIN_S:-55}
STEPS=${GPU_CHECK_STEPS:-1000}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mege-gpu-check.XXXXXX")
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}

# The trainer files first: a time cap then cuts the tests that touch the GPU least.
FIRST_TESTS=(tests/training/test_train_step.py tests/training/test_trainer.py tests/entropy/test_training.py tests/test_loggers.py
             tests/test_objectives.py tests/test_penalties.py tests/energy/test_conv.py tests/metrics/test_stacked_mnist.py)
TEST_CMD=("$PY" -m pytest -q -rfE -p no:cacheprovider "${FIRST_TESTS[@]}" tests)
BENCH_CMD=("$PY" tools/bench/bench.py --device "$DEVICE" --rounds 3 --block-s 0.5 --batches 256
           --skip stacked estimators evaluation memory --out "$WORK/bench.md")
CLS_CMD=("$PY" -m mege.cli classifier train --epochs 3 --out "$WORK/classifier.pt")
TRAIN_ARGS=(experiment=stacked_mnist "device=$DEVICE" "train.steps=$STEPS" "train.eval_every=$STEPS"
            "train.ckpt_every=$STEPS" train.log_every=100 train.progress=false metric.n_samples=2600
            logger=tensorboard)
VARIANTS=("fp32:" "bf16+channels_last:train.amp=true train.channels_last=true")
# `mege train` in-process, then the CUDA peak memory into a JSON file (argv: peak file, overrides...)
TRAIN_PY='import atexit, json, sys, torch
def peak():
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        json.dump({"allocated_mib": torch.cuda.max_memory_allocated() / 2**20,
                   "reserved_mib": torch.cuda.max_memory_reserved() / 2**20}, open(sys.argv[1], "w"))
atexit.register(peak)
from mege.cli import main
sys.exit(main(["train", *sys.argv[2:]]))'

show() { local text="$*"; echo "${text//"$PY"/python}"; }  # a command as the report prints it

find_mnist() {
  local d
  for d in "${MEGE_DATA_DIR:-}" ../shared/data/mnist shared/data/mnist "$HOME/.cache/mege/mnist"; do
    [ -n "$d" ] && ls "$d"/t10k-images-idx3-ubyte* >/dev/null 2>&1 && { (cd "$d" && pwd); return 0; }
  done
  return 1
}

cuda_line() {
  "$PY" - <<'EOF' 2>/dev/null || echo "unknown (python/torch failed)"
import torch
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"{p.name}, {p.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}, torch {torch.__version__}")
else:
    print(f"not available (torch {torch.__version__}, built with CUDA {torch.version.cuda})")
EOF
}

# ---------------------------------------------------------------------------------------- dry run
if [ "$DRY" = 1 ]; then
  FAIL=0
  ok() { echo "ok    $*"; }
  bad() { echo "FAIL  $*"; FAIL=1; }
  note() { echo "note  $*"; }
  echo "gpu_check --dry-run: can the real run start? (nothing is trained, nothing is written)"
  if versions=$("$PY" -c 'import torch, mege, pytest, hydra, tensorboard, zuko, PIL
print(f"torch {torch.__version__}, pytest {pytest.__version__}, hydra {hydra.__version__}, tensorboard {tensorboard.__version__}, zuko {zuko.__version__}")' 2>&1); then
    ok "python: $PY ($versions)"
  else
    bad "python: $PY cannot import what the check needs: $(echo "$versions" | tail -1)"
  fi
  for tool in timeout mktemp awk; do
    command -v "$tool" >/dev/null && ok "tool: $tool" || bad "tool: $tool missing"
  done
  command -v nvidia-smi >/dev/null && ok "tool: nvidia-smi" || note "tool: nvidia-smi absent (the report then shows torch's device line only)"
  CUDA=$(cuda_line)
  case "$CUDA" in
    not\ available*) note "CUDA: $CUDA — not fatal for --dry-run; the real run needs a CUDA device" ;;
    unknown*) bad "CUDA: $CUDA" ;;
    *) ok "CUDA: $CUDA" ;;
  esac
  if collected=$(MEGE_TEST_DEVICE=cuda "${TEST_CMD[@]}" --collect-only 2>&1 | tail -1) && [[ "$collected" == *collected* || "$collected" == *"tests"* ]]; then
    ok "1. tests: MEGE_TEST_DEVICE=cuda $(show "${TEST_CMD[@]}") — collects ($collected)"
  else
    bad "1. tests: collection failed: $collected"
  fi
  if err=$("${BENCH_CMD[@]}" --help 2>&1 >/dev/null); then
    ok "2. bench: $(show "${BENCH_CMD[@]}") — parses"
  else
    bad "2. bench: arguments do not parse: $err"
  fi
  if err=$("${CLS_CMD[@]}" --help 2>&1 >/dev/null); then
    ok "3. classifier: $(show "${CLS_CMD[@]}") — parses (run only when no classifier is cached)"
  else
    bad "3. classifier: arguments do not parse: $err"
  fi
  for variant in "${VARIANTS[@]}"; do
    name=${variant%%:*}; read -r -a extra <<< "${variant#*:}"
    if err=$("$PY" -m mege.cli train "${TRAIN_ARGS[@]}" "${extra[@]}" "hydra.run.dir=$WORK/$name" --cfg job 2>&1 >/dev/null); then
      ok "3. train ($name): mege train ${TRAIN_ARGS[*]} ${extra[*]} — config composes"
    else
      bad "3. train ($name): config does not compose: $(echo "$err" | tail -1)"
    fi
  done
  if MNIST=$(find_mnist); then ok "data: MNIST at $MNIST"; else note "data: no MNIST found (section 3 would be skipped; set MEGE_DATA_DIR)"; fi
  parent=$(dirname "$OUT"); while [ ! -d "$parent" ]; do parent=$(dirname "$parent"); done
  [ -w "$parent" ] && ok "output: $OUT can be written" || bad "output: cannot write $OUT ($parent is read-only)"
  echo "time caps: tests ${TEST_S} s, bench ${BENCH_S} s, classifier ${CLS_S} s, train 2 × ${TRAIN_S} s = $((TEST_S + BENCH_S + CLS_S + 2 * TRAIN_S)) s"
  rm -rf "$WORK"
  if [ "$FAIL" = 0 ]; then echo "dry run: OK"; exit 0; else echo "dry run: FAILED"; exit 1; fi
fi

# ---------------------------------------------------------------------------------------- the check
CUDA=$(cuda_line)
case "$DEVICE:$CUDA" in
  cuda:not\ available*|*:unknown*)
    echo "gpu_check: no CUDA device ($CUDA); run it on a GPU machine, or check the set-up with --dry-run" >&2
    rm -rf "$WORK"; exit 2 ;;
esac
START=$SECONDS
mkdir -p "$(dirname "$OUT")"
REPORT="$WORK/report.md"
log() { echo "[gpu_check $((SECONDS - START))s] $*" >&2; }
{
  echo "# GPU check"
  echo
  echo "Written by \`bash tools/gpu_check.sh\` on $(date '+%Y-%m-%d %H:%M') at commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')."
  echo
  echo "- Device: $CUDA"
  [ "$DEVICE" = cuda ] || echo "- **Rehearsal on $DEVICE** (GPU_CHECK_DEVICE=$DEVICE): the plumbing only, no CUDA number."
  if command -v nvidia-smi >/dev/null; then
    echo "- nvidia-smi: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)"
  fi
  echo "- Host: $(getconf _NPROCESSORS_ONLN) CPUs, OMP_NUM_THREADS=$OMP_NUM_THREADS; caps: tests ${TEST_S} s, bench ${BENCH_S} s, classifier ${CLS_S} s, train 2 × ${TRAIN_S} s"
} > "$REPORT"

# 1. the test suite on CUDA
log "1. tests"
t0=$SECONDS
MEGE_TEST_DEVICE=$DEVICE timeout "$TEST_S" "${TEST_CMD[@]}" > "$WORK/tests.log" 2>&1
rc=$?
summary=$(grep -E '(passed|failed|error)' "$WORK/tests.log" | tail -1)
{
  echo
  echo "## 1. Test suite on CUDA (\`MEGE_TEST_DEVICE=$DEVICE\`)"
  echo
  echo "\`MEGE_TEST_DEVICE=$DEVICE $(show "${TEST_CMD[@]}")\` — $((SECONDS - t0)) s, exit $rc."
  echo
  if [ "$rc" = 124 ]; then
    echo "**Stopped at the ${TEST_S} s cap** (raise GPU_CHECK_TEST_S); progress when stopped:"
    echo; echo '```'; grep -E '^[.FEsx]+' "$WORK/tests.log" | tail -5; echo '```'
  else
    echo "**${summary:-no summary line}**"
  fi
  if grep -qE '^(FAILED|ERROR) ' "$WORK/tests.log"; then
    echo; echo "Failures:"; echo; echo '```'; grep -E '^(FAILED|ERROR) ' "$WORK/tests.log" | head -40; echo '```'
  fi
} >> "$REPORT"

# 2. toy step benchmark on CUDA against the plain step
log "2. bench"
t0=$SECONDS
timeout "$BENCH_S" "${BENCH_CMD[@]}" > "$WORK/bench.log" 2>&1
rc=$?
{
  echo
  echo "## 2. Toy step on CUDA against the plain PyTorch step"
  echo
  echo "\`$(show "${BENCH_CMD[@]}")\` — $((SECONDS - t0)) s, exit $rc."
  echo
  if [ -f "$WORK/bench.md" ]; then
    sed -e 's/^#/##/' -e '/^## mege benchmarks/d' "$WORK/bench.md"
  else
    [ "$rc" = 124 ] && echo "**Stopped at the ${BENCH_S} s cap** (raise GPU_CHECK_BENCH_S, or add --no-compile to the bench command)."
    echo; echo '```'; tail -15 "$WORK/bench.log"; echo '```'
  fi
} >> "$REPORT"

# 3. Stacked MNIST, paper profile
log "3. stacked MNIST"
{
  echo
  echo "## 3. Stacked MNIST, paper profile (\`mege train experiment=stacked_mnist\`, $STEPS steps)"
  echo
} >> "$REPORT"
if MNIST=$(find_mnist); then
  export MEGE_DATA_DIR=$MNIST
  classifier=${MEGE_CLASSIFIER:-$HOME/.cache/mege/mnist_classifier.pt}
  if [ ! -f "$classifier" ]; then
    t0=$SECONDS
    timeout "$CLS_S" "${CLS_CMD[@]}" > "$WORK/classifier.log" 2>&1
    rc=$?
    echo "No cached mode classifier: \`$(show "${CLS_CMD[@]}")\` trained one in $((SECONDS - t0)) s (exit $rc; last line: $(tail -1 "$WORK/classifier.log"))." >> "$REPORT"
    echo >> "$REPORT"
    classifier=$WORK/classifier.pt
  fi
  export MEGE_CLASSIFIER=$classifier
  for variant in "${VARIANTS[@]}"; do
    name=${variant%%:*}; read -r -a extra <<< "${variant#*:}"
    log "3. train $name"
    t0=$SECONDS
    timeout "$TRAIN_S" "$PY" -c "$TRAIN_PY" "$WORK/$name.peak.json" "${TRAIN_ARGS[@]}" "${extra[@]}" \
      "hydra.run.dir=$WORK/$name" > "$WORK/$name.log" 2>&1
    echo "$name $? $((SECONDS - t0))" >> "$WORK/train_runs.txt"
  done
  "$PY" - "$WORK" "$STEPS" "${TRAIN_ARGS[*]}" >> "$REPORT" 2>> "$WORK/report_errors.log" <<'EOF' || echo "_(the table could not be written: $(tail -1 "$WORK/report_errors.log"))_" >> "$REPORT"
import json, sys
from pathlib import Path
work, steps, args = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
print(f"Overrides: `{args}`; the variant's own overrides in the first column. Steady it/s is measured between "
      "the first and the last logged step (TensorBoard event wall times), overall it/s over the whole run "
      "(CUDA start-up, cuDNN autotuning and the first steps included; evaluation excluded).\n")
print("| variant | exit | wall s | steps | overall it/s | steady it/s | peak allocated MiB | peak reserved MiB | modes (EMA) | KL (EMA) |")
print("|---|---|---|---|---|---|---|---|---|---|")
for line in (work / "train_runs.txt").read_text().splitlines():
    name, rc, wall = line.split()
    run = work / name
    cells = {"steps": "—", "overall": "—", "steady": "—", "alloc": "—", "reserved": "—", "modes": "—", "kl": "—"}
    rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()] if (run / "metrics.jsonl").exists() else []
    if rows:
        last = rows[-1]
        cells["steps"] = str(last["step"])
        cells["overall"] = f"{last['step'] / last['time_s']:.1f}" if last.get("time_s") else "—"
        block = last.get("ema_metrics") or last.get("metrics") or {}
        cells["modes"] = str(block.get("modes", "—"))
        cells["kl"] = f"{block['reverse_kl']:.3f}" if isinstance(block.get("reverse_kl"), float) else "—"
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
        acc.Reload()
        points = acc.Scalars("train/critic_loss") if "train/critic_loss" in acc.Tags()["scalars"] else []
        if len(points) >= 2:
            cells["steady"] = f"{(points[-1].step - points[0].step) / (points[-1].wall_time - points[0].wall_time):.1f}"
    except Exception as err:  # noqa: BLE001 — a run that died early has no events
        cells["steady"] = f"— ({type(err).__name__})"
    peak = work / f"{name}.peak.json"
    if peak.exists():
        p = json.loads(peak.read_text())
        cells["alloc"], cells["reserved"] = f"{p['allocated_mib']:.0f}", f"{p['reserved_mib']:.0f}"
    print(f"| {name} | {rc} | {wall} | {cells['steps']} | {cells['overall']} | {cells['steady']} | {cells['alloc']} | "
          f"{cells['reserved']} | {cells['modes']} | {cells['kl']} |")
for line in (work / "train_runs.txt").read_text().splitlines():
    name, rc, _ = line.split()
    if rc != "0":
        tail = (work / f"{name}.log").read_text().strip().splitlines()[-12:]
        print(f"\n{name} exited {rc} ({'the time cap' if rc == '124' else 'an error'}); its last lines:\n\n```\n" + "\n".join(tail) + "\n```")
EOF
else
  echo "Skipped: no MNIST IDX files found (looked in \$MEGE_DATA_DIR, ../shared/data/mnist, shared/data/mnist, ~/.cache/mege/mnist)." >> "$REPORT"
fi

echo >> "$REPORT"
echo "Total: $(( (SECONDS - START) / 60 )) min $(( (SECONDS - START) % 60 )) s." >> "$REPORT"
cp "$REPORT" "$OUT"
log "written $OUT"
rm -rf "$WORK"
