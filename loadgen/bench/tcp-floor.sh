#!/bin/bash
# Our registrar against the loadgen's echo floor, over TCP on loopback, in
# the same window: registrar pinned to CPU 0 (shard; replication on CPU 1),
# echo server on CPU 0, loadgen on CPU 1. Runs alternate registrar / echo,
# RUNS times each; the medians are printed at the end.
#   loadgen/bench/tcp-floor.sh [RUNS] [SECONDS] [K]
# Needs: cargo build --release -p rserpool-registrar -p rserpool-loadgen
# 1. highest resolution rate: closed loop, K in flight (K PUs, 100 PEs in
#    10 pools);
# 2. highest re-registration rate: closed loop, K in flight (1000 PEs);
# 3. p99 of resolutions at half the registrar's median highest rate, open
#    loop, against both.
set -u
runs=${1:-3}
secs=${2:-5}
k=${3:-64}
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

field() { # JSON KIND EXPR(k, lat, s)
  python3 -c "
import json,sys
v=json.load(open('$1')); s=v['steps'][0]; k=s['stats']['kinds']['$2']; lat=k['latency'] or {}
bad=k['wrong']+k['errors']+k['timeouts']
if bad: sys.stderr.write('$1: %d wrong/errors/timeouts\n' % bad)
print($3)"
}

lg() { # TARGET NAME ARGS...
  local t=$1 name=$2; shift 2
  local a
  if [ "$t" = reg ]; then a="--registrar tcp:127.0.0.1:39301 --registrar-pid $reg"
  else a="--echo --registrar tcp:127.0.0.1:39302 --registrar-pid $echo"; fi
  "$bin/loadgen" run $a --cores 1 --duration "$secs" --quiet --json "$out/$name.json" "$@" \
    >"$out/$name.txt" 2>&1 || { echo "loadgen failed: $name"; cat "$out/$name.txt"; }
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

for r in $(seq "$runs"); do
  for t in reg echo; do
    lg $t hr-$t-$r --pes 100 --pools 10 --pus "$k" --in-flight "$k"
    echo "load $(cut -d" " -f1 /proc/loadavg) max resolutions $t run $r: $(field "$out/hr-$t-$r.json" handle_resolution "round(lat['count']/s['stats']['window_s']), 'p99_us', lat['p99_us'], 'server_cpu_s_per_s', round(s['registrar_cpu_s_per_s'],3), 'loadgen_cpu_s_per_s', round(s['loadgen_cpu_s_per_s'],3)")"
  done
done
for r in $(seq "$runs"); do
  for t in reg echo; do
    lg $t rr-$t-$r --pes 1000 --pools 10 --pus 1 --reg-in-flight "$k"
    echo "load $(cut -d" " -f1 /proc/loadavg) max re-registrations $t run $r: $(field "$out/rr-$t-$r.json" reregistration "round(lat['count']/s['stats']['window_s']), 'p99_us', lat['p99_us'], 'server_cpu_s_per_s', round(s['registrar_cpu_s_per_s'],3)")"
  done
done
med() { # PREFIX TARGET KIND
  for r in $(seq "$runs"); do field "$out/$1-$2-$r.json" "$3" "lat['count']/s['stats']['window_s']"; done | median
}
hr_reg=$(med hr reg handle_resolution); hr_echo=$(med hr echo handle_resolution)
rr_reg=$(med rr reg reregistration); rr_echo=$(med rr echo reregistration)
half=$(python3 -c "print(round($hr_reg/2))")
for r in $(seq "$runs"); do
  for t in reg echo; do
    lg $t half-$t-$r --pes 100 --pools 10 --pus "$k" --rate "$half"
    echo "load $(cut -d" " -f1 /proc/loadavg) open loop $half/s $t run $r: $(field "$out/half-$t-$r.json" handle_resolution "round(lat['count']/s['stats']['window_s']), 'p50_us', lat['p50_us'], 'p99_us', lat['p99_us']")"
  done
done
p99_reg=$(for r in $(seq "$runs"); do field "$out/half-reg-$r.json" handle_resolution "lat['p99_us']"; done | median)
p99_echo=$(for r in $(seq "$runs"); do field "$out/half-echo-$r.json" handle_resolution "lat['p99_us']"; done | median)
python3 - <<PY
print()
print("medians of $runs runs, $secs s each, K=$k")
print(f"resolutions:      registrar {float('$hr_reg'):.0f}/s, echo {float('$hr_echo'):.0f}/s, ratio {float('$hr_reg')/float('$hr_echo'):.2f} (goal >= 0.8)")
print(f"re-registrations: registrar {float('$rr_reg'):.0f}/s, echo {float('$rr_echo'):.0f}/s, ratio {float('$rr_reg')/float('$rr_echo'):.2f} (goal >= 0.7)")
print(f"p99 at $half/s:   registrar {float('$p99_reg'):.1f} us, echo {float('$p99_echo'):.1f} us, ratio {float('$p99_reg')/float('$p99_echo'):.2f} (goal <= 1.5)")
PY
