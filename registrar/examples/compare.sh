#!/bin/bash
# CPU per handle resolution, ours vs RSPLIB (SCTP) and epoll vs glommio (TCP),
# at 1 and 16 pool users. Run inside the SCTP lab:
#   tests/lab/sctp-lab -- registrar/examples/compare.sh [RUNS]
# Needs: cargo build --release -p rserpool-registrar --examples --bins
# Output: one line per run (see hr_load.rs); the lab's guest makes every
# system call slow, so compare ratios measured here, not absolute figures.
set -u
runs=${1:-3}
bin=./target/release
addr=10.77.0.254
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$out"' EXIT

measure() { # LABEL SERVER-PID HR_LOAD-ARGS...
  local label=$1 pid=$2; shift 2
  for c in 1 16; do
    for r in $(seq "$runs"); do
      echo -n "$label users=$c run=$r: "
      "$bin/examples/hr_load" --pid "$pid" --conns "$c" --depth 1 --seconds 4 "$@" | grep -o 'rate=.*'
    done
  done
}

start_wait() { # LOGFILE PATTERN
  for _ in $(seq 100); do grep -q "$2" "$1" && return 0; sleep 0.1; done
  echo "server did not start:"; cat "$1"; exit 1
}

# RSPLIB over SCTP (keep-alive timeout at its maximum so the test PEs stay).
rspregistrar -asap=$addr:3863 -enrp=$addr:9901 -asapannounce=off -enrpannounce=off \
  -endpointkeepalivetransmissioninterval=300000 -endpointkeepalivetimeoutinterval=60000 \
  -loglevel=3 -logcolor=off >"$out/rsp.log" 2>&1 &
rsp=$!
start_wait "$out/rsp.log" 'registrar is ready'
measure "rsplib sctp" $rsp --target $addr:3863 --transport sctp --register 3 --pe-addr $addr --pool RspPool
kill $rsp; wait $rsp 2>/dev/null

for drv in epoll glommio; do
  transports=(sctp tcp)
  [ $drv = glommio ] && transports=(tcp)
  for tr in "${transports[@]}"; do
    "$bin/registrar" --driver $drv --shards 1 --cores none --asap $addr:3863 --announce off \
      --keep-alive-interval 300000 --keep-alive-timeout 60000 --log-level info \
      $( [ $tr = tcp ] && echo --transport tcp ) >"$out/ours.log" 2>&1 &
    ours=$!
    start_wait "$out/ours.log" 'registrar is ready'
    measure "ours-$drv $tr" $ours --target $addr:3863 --transport $tr --register 3 --pe-addr $addr --pool OurPool
    kill $ours; wait $ours 2>/dev/null
  done
done
