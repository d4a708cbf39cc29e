#!/bin/bash
# Capacity at equal latency, over SCTP, in one lab run: the SCTP echo floor
# (`loadgen echo --listen sctp:...`), RSPLIB's rspregistrar and our
# registrar, one after the other, each with `loadgen sweep` at the same
# objective, for handle resolutions and for re-registrations. Run inside
# the SCTP lab:
#   tests/lab/sctp-lab -- loadgen/lab/sweep-sctp.sh [RUNS] [STEP_SECONDS] [OBJECTIVE]
# Needs: cargo build --release -p rserpool-registrar -p rserpool-loadgen
# Sweeps: open loop, from 1000/s times 1.4 per step up to 60000/s, 200 PEs
# in 10 pools (16 PUs for resolutions), each step judged by `loadgen sweep`
# (no wrong answers, errors or timeouts, >= 95 % answered, the objective
# met). Per target and kind: the highest passing offered rate and the
# server's CPU time per answered request at that step (/proc, via
# --registrar-pid); then per run the ratios ours/RSPLIB and ours/floor.
# JSON summaries stay in $OUT (default: a temporary directory, removed).
set -u
runs=${1:-3}
secs=${2:-1}
objective=${3:-p99=10ms}
bin=./target/release
addr=10.77.0.254
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
keep=${OUT:+1}
trap 'kill $(jobs -p) 2>/dev/null; [ -z "$keep" ] && rm -rf "$out"' EXIT

best() { # LABEL JSON KIND -> prints a line, "RATE CPU_US" on fd 3
  python3 - "$@" <<'PY'
import json, sys
label, path, kind = sys.argv[1:4]
v = json.load(open(path))
sw = v["sweep"]
b = sw["highest_passing_rate"]
key = "offered_resolutions_per_s" if kind == "handle_resolution" else "offered_reregistrations_per_s"
per = float("nan"); p99 = float("nan")
for s in v["steps"]:
    if b is not None and abs(s[key] - b) < 1e-6:
        k = s["stats"]["kinds"][kind]
        n = (k["latency"] or {}).get("count", 0)
        secs = s["stats"]["window_s"]
        cpu = s["registrar_cpu_s_per_s"]
        if cpu is not None and n and secs:
            per = cpu / (n / secs) * 1e6
        p99 = (k["latency"] or {}).get("p99_us", float("nan"))
last = sw["verdicts"][-1] if sw["verdicts"] else "no step"
print(f"{label}: {kind} highest passing {b or 0:.0f}/s (p99 {p99:.0f}us, "
      f"server CPU {per:.1f} us/request); stopped by: {last}")
with open(3, "w") as f:
    f.write(f"{b or 0} {per}\n")
PY
}

sweep() { # LABEL PID KIND ARGS...
  local label=$1 pid=$2 kind=$3; shift 3
  local json="$out/$label-$kind-$r.json"
  local what=resolution k=handle_resolution load=(--pus 16)
  if [ "$kind" = reg ]; then what=registration k=reregistration load=(--pus 1); fi
  "$bin/loadgen" sweep "$@" --sweep $what --objective "$objective" --pe-address $addr \
    --registrar-pid "$pid" --pes 200 --pools 10 "${load[@]}" --duration "$secs" \
    --start-rate 1000 --step-factor 1.4 --max-rate 60000 --quiet --json "$json" \
    >"$out/$label-$kind-$r.out" 2>"$out/$label-$kind-$r.err"
  if [ -s "$json" ]; then
    best "$label run=$r" "$json" $k 3>"$out/$label-$kind-$r.best"
  else
    echo "$label run=$r: loadgen sweep failed"; cat "$out/$label-$kind-$r.err"
    echo "0 nan" >"$out/$label-$kind-$r.best"
  fi
}

for r in $(seq "$runs"); do
  "$bin/loadgen" echo --listen sctp:$addr:3863 >"$out/echo.log" 2>&1 &
  echo_pid=$!
  sleep 1
  for kind in hr reg; do
    sweep floor $echo_pid $kind --echo --registrar sctp:$addr:3863
  done
  kill $echo_pid; wait $echo_pid 2>/dev/null

  rspregistrar -asap=$addr:3863 -enrp=$addr:9901 -asapannounce=off -enrpannounce=off \
    -loglevel=1 -logcolor=off >"$out/rsp.log" 2>&1 &
  rsp=$!
  sleep 2
  for kind in hr reg; do
    sweep rsplib $rsp $kind --registrar sctp:$addr:3863
  done
  kill $rsp; wait $rsp 2>/dev/null

  "$bin/registrar" --shards 1 --cores none --asap $addr:3863 --transport sctp --announce off \
    --log-level warn >"$out/ours.log" 2>&1 &
  ours=$!
  sleep 1
  for kind in hr reg; do
    sweep ours $ours $kind --registrar sctp:$addr:3863
  done
  kill $ours; wait $ours 2>/dev/null

  for kind in hr reg; do
    read -r f _ <"$out/floor-$kind-$r.best"
    read -r p _ <"$out/rsplib-$kind-$r.best"
    read -r o _ <"$out/ours-$kind-$r.best"
    python3 -c "
f, p, o = $f, $p, $o
q = lambda a, b: f'{a / b:.2f}' if b else 'n/a'
print(f'ratios run=$r $kind at $objective: ours/rsplib {q(o, p)}  ours/floor {q(o, f)}  rsplib/floor {q(p, f)}')"
  done
done
