#!/bin/bash
# Our registrar against the loadgen's echo floor, over TCP on loopback, in
# the same window: registrar pinned to CPU 0 (shard; replication on CPU 1),
# echo server on CPU 0, loadgen (one worker) on CPU 1. Registrar and echo
# take turns, RUNS times each; medians and ratios are printed at the end.
#   loadgen/bench/tcp-floor.sh [RUNS] [STEP_SECONDS] [OBJECTIVE]
# Needs: cargo build --release -p rserpool-registrar -p rserpool-loadgen
# 1. highest handle-resolution rate: open-loop sweep (100 PEs in 10 pools,
#    256 PUs) in steps of 20000/s until a step misses OBJECTIVE (default
#    p99=10ms), has any error, timeout or wrong answer, or answers less than
#    95 % of the offered rate;
# 2. highest re-registration rate: the same with 2000 PEs re-registering
#    (steps of 10000/s);
# 3. resolution latency at half the registrar's median highest rate, open
#    loop, against both.
set -u
runs=${1:-3}
secs=${2:-2}
objective=${3:-p99=10ms}
bin=./target/release
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
keep=${OUT:+1}
trap 'kill $(jobs -p) 2>/dev/null; [ -z "$keep" ] && rm -rf "$out"' EXIT

"$bin/registrar" --asap 127.0.0.1:39301 --transport tcp --announce off \
  --min-address-scope loopback --cores 0,1 --log-level warn >"$out/registrar.log" 2>&1 &
reg=$!
"$bin/loadgen" echo --listen 127.0.0.1:39302 --cores 0 >"$out/echo.log" 2>&1 &
echo=$!
sleep 1

target() { # reg|echo
  if [ "$1" = reg ]; then echo "--registrar tcp:127.0.0.1:39301 --registrar-pid $reg"
  else echo "--echo --registrar tcp:127.0.0.1:39302 --registrar-pid $echo"; fi
}
load() { cut -d" " -f1 /proc/loadavg; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

sweep() { # TARGET NAME ARGS...
  local t=$1 name=$2; shift 2
  "$bin/loadgen" sweep $(target "$t") --cores 1 --duration "$secs" --objective "$objective" \
    --quiet --json "$out/$name.json" "$@" >"$out/$name.txt" 2>&1
  local best
  best=$(python3 -c "import json; print(json.load(open('$out/$name.json'))['sweep']['highest_passing_rate'] or 0)")
  echo "$best" >"$out/$name.best"
  echo "load $(load) $name: highest passing $best/s; $(grep FAIL "$out/$name.txt" | head -1 | sed 's/^ *//')"
}

for r in $(seq "$runs"); do
  for t in reg echo; do
    sweep $t hr-$t-$r --pes 100 --pools 10 --pus 256 --start-rate 20000 --step-rate 20000 --max-rate 400000
  done
done
for r in $(seq "$runs"); do
  for t in reg echo; do
    sweep $t rr-$t-$r --sweep registration --pes 2000 --pools 10 --pus 0 --start-rate 10000 --step-rate 10000 --max-rate 300000
  done
done
best() { for r in $(seq "$runs"); do cat "$out/$1-$2-$r.best"; done | median; }
hr_reg=$(best hr reg); hr_echo=$(best hr echo); rr_reg=$(best rr reg); rr_echo=$(best rr echo)
half=$(python3 -c "print(round($hr_reg/2))")
for r in $(seq "$runs"); do
  for t in reg echo; do
    "$bin/loadgen" run $(target $t) --cores 1 --duration 5 --quiet --json "$out/half-$t-$r.json" \
      --pes 100 --pools 10 --pus 256 --rate "$half" >"$out/half-$t-$r.txt" 2>&1
    echo "load $(load) open loop $half/s $t run $r: $(python3 -c "
import json; v=json.load(open('$out/half-$t-$r.json')); s=v['steps'][0]; k=s['stats']['kinds']['handle_resolution']; l=k['latency']
print('answered', round(l['count']/s['stats']['window_s']), 'p50', l['p50_us'], 'p99', l['p99_us'], 'us; wrong/errors/timeouts', k['wrong'], k['errors'], k['timeouts'], '; server CPU', round(s['registrar_cpu_s_per_s'], 3), 's/s, loadgen CPU', round(s['loadgen_cpu_s_per_s'], 3), 's/s')")"
  done
done
p99() { for r in $(seq "$runs"); do python3 -c "import json; print(json.load(open('$out/half-$1-$r.json'))['steps'][0]['stats']['kinds']['handle_resolution']['latency']['p99_us'])"; done | median; }
p99_reg=$(p99 reg); p99_echo=$(p99 echo)
python3 - <<PY
print()
print("medians of $runs runs (sweep steps of $secs s, objective $objective)")
print(f"resolutions:      registrar {float('$hr_reg'):.0f}/s, echo {float('$hr_echo'):.0f}/s, ratio {float('$hr_reg')/max(float('$hr_echo'),1):.2f} (goal >= 0.8)")
print(f"re-registrations: registrar {float('$rr_reg'):.0f}/s, echo {float('$rr_echo'):.0f}/s, ratio {float('$rr_reg')/max(float('$rr_echo'),1):.2f} (goal >= 0.7)")
print(f"p99 at $half/s:   registrar {float('$p99_reg'):.1f} us, echo {float('$p99_echo'):.1f} us, ratio {float('$p99_reg')/float('$p99_echo'):.2f} (goal <= 1.5)")
PY
