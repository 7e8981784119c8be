#!/bin/bash
# One training run of the regime search (issue 23), one thread, timed: run_one.sh NAME SEED EXPERIMENT [overrides...].
# Adds entropy=none lambda_h=0 unless ENTROPY=1; writes /tmp/regimes/NAME/SEED with command.txt and time.txt (wall and CPU s).
# usage: run.sh NAME SEED EXPERIMENT [overrides...]
name=$1; seed=$2; exp=$3; shift 3
cd /work/main
d=/tmp/regimes/$name/$seed
rm -rf $d
cmd="OMP_NUM_THREADS=1 .venv/bin/mege train experiment=$exp $* entropy=none lambda_h=0 seed=$seed device=cpu train.progress=false train.plot=false hydra.run.dir=$d"
[ -n "$ENTROPY" ] && cmd="OMP_NUM_THREADS=1 .venv/bin/mege train experiment=$exp $* seed=$seed device=cpu train.progress=false train.plot=false hydra.run.dir=$d"
s=$(date +%s.%N)
eval /usr/bin/time -o /tmp/regimes/$name.$seed.time -f \"%U %S %e\" env $cmd > /tmp/regimes/$name.$seed.log 2>&1
rc=$?
cpu=$(awk '{print $1+$2}' /tmp/regimes/$name.$seed.time)
e=$(date +%s.%N)
mkdir -p $d
echo "$cmd" > $d/command.txt
wall=$(python3 -c "print(round($e-$s,2))")
echo "wall_s $wall cpu_s $cpu" > $d/time.txt
/work/main/.venv/bin/python - "$d" "$name" "$seed" "$wall" "$rc" "$cpu" <<'PY'
import json,sys
d,name,seed,wall,rc,cpu=sys.argv[1:]
try:
    s=json.load(open(d+"/summary.json"))
    m,e=s["metrics"],s["ema_metrics"]
    print(f"{name}\t{seed}\trc={rc}\twall={wall}\tcpu={cpu}\tel={s['elapsed_s']}\traw {m['modes']}/{m['n_modes']} hq={m['hq_fraction']:.3f} akl={m['assigned_kl']:.3f}\tema {e['modes']} hq={e['hq_fraction']:.3f}")
except Exception as ex:
    print(name,seed,"rc",rc,"FAIL",ex)
PY
