#!/bin/bash
# The same loadgen, over SCTP, against RSPLIB's rspregistrar and then our
# registrar, one after the other in one lab run. Run inside the SCTP lab:
#   tests/lab/sctp-lab -- loadgen/lab/compare-sctp.sh [RUNS] [SECONDS]
# Needs: cargo build --release -p rserpool-registrar -p rserpool-loadgen
# For each registrar and run: closed-loop handle resolutions (16 in flight,
# 16 PUs) and closed-loop re-registrations (16 in flight), 200 PEs in 10
# pools, and the registrar's CPU time per second from /proc. One summary
# line per measurement (rate, p50, p99, CPU us per request); the JSON
# summaries stay in $OUT (default: a temporary directory, removed).
set -u
runs=${1:-3}
secs=${2:-5}
bin=./target/release
addr=10.77.0.254
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
keep=${OUT:+1}
trap 'kill $(jobs -p) 2>/dev/null; [ -z "$keep" ] && rm -rf "$out"' EXIT

summary() { # LABEL JSON KIND
  python3 - "$@" <<'PY'
import json, sys
label, path, kind = sys.argv[1:4]
v = json.load(open(path))
s = v["steps"][0]
k = s["stats"]["kinds"][kind]
lat = k["latency"] or {}
secs = s["stats"]["window_s"]
n = lat.get("count", 0)
rate = n / secs if secs else 0
cpu = s["registrar_cpu_s_per_s"]
per = cpu / rate * 1e6 if cpu is not None and rate else float("nan")
print(f"{label}: {kind} {rate:.0f}/s p50 {lat.get('p50_us', 0):.0f}us p99 {lat.get('p99_us', 0):.0f}us "
      f"registrar CPU {cpu:.3f} s/s = {per:.1f} us/request; "
      f"wrong {k['wrong']} errors {k['errors']} timeouts {k['timeouts']}")
PY
}

measure() { # LABEL PID
  local label=$1 pid=$2
  for r in $(seq "$runs"); do
    "$bin/loadgen" run --registrar sctp:$addr:3863 --pe-address $addr --registrar-pid "$pid" \
      --pes 200 --pools 10 --pus 16 --in-flight 16 --duration "$secs" --quiet \
      --json "$out/$label-hr-$r.json" >/dev/null 2>"$out/$label-hr-$r.err" \
      && summary "$label run=$r" "$out/$label-hr-$r.json" handle_resolution \
      || { echo "$label run=$r: loadgen failed"; cat "$out/$label-hr-$r.err"; }
    "$bin/loadgen" run --registrar sctp:$addr:3863 --pe-address $addr --registrar-pid "$pid" \
      --pes 200 --pools 10 --pus 1 --reg-in-flight 16 --duration "$secs" --quiet \
      --json "$out/$label-reg-$r.json" >/dev/null 2>"$out/$label-reg-$r.err" \
      && summary "$label run=$r" "$out/$label-reg-$r.json" reregistration \
      || { echo "$label run=$r: loadgen failed"; cat "$out/$label-reg-$r.err"; }
  done
}

rspregistrar -asap=$addr:3863 -enrp=$addr:9901 -asapannounce=off -enrpannounce=off \
  -loglevel=1 -logcolor=off >"$out/rsp.log" 2>&1 &
rsp=$!
sleep 2
measure rsplib $rsp
kill $rsp; wait $rsp 2>/dev/null

"$bin/registrar" --shards 1 --cores none --asap $addr:3863 --transport sctp --announce off \
  --log-level warn >"$out/ours.log" 2>&1 &
ours=$!
sleep 1
measure ours $ours
kill $ours; wait $ours 2>/dev/null
