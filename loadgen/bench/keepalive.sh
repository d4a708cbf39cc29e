#!/bin/bash
# Keep-alive load: N PEs registered with our registrar over TCP (default
# keep-alive interval 5 s), nothing else; the registrar's CPU time per
# second from /proc while the PEs answer its keep-alives.
#   loadgen/bench/keepalive.sh [PES] [SECONDS]
set -u
pes=${1:-10000}
secs=${2:-20}
bin=./target/release
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
trap 'kill $(jobs -p) 2>/dev/null' EXIT
"$bin/registrar" --asap 127.0.0.1:39311 --transport tcp --announce off \
  --min-address-scope loopback --cores 0,1 --log-level warn >"$out/registrar.log" 2>&1 &
reg=$!
sleep 1
"$bin/loadgen" run --registrar tcp:127.0.0.1:39311 --registrar-pid $reg --cores 1 \
  --pes "$pes" --pools 100 --pus 0 --duration "$secs" --quiet --json "$out/ka.json" >"$out/ka.txt" 2>&1
python3 - "$out/ka.json" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
s = v["steps"][0]
k = s["stats"]["kinds"]["keep_alive"]
w = s["stats"]["window_s"]
print(f"{v['settings']['pes']} PEs: {k['ok']/w:.0f} keep-alives answered/s, "
      f"registrar CPU {s['registrar_cpu_s_per_s']:.4f} s/s, loadgen CPU {s['loadgen_cpu_s_per_s']:.4f} s/s")
PY
