#!/bin/bash
# CPU per handle resolution on the host, over TCP on loopback (the host has
# no SCTP; compare.sh does the SCTP comparison inside the lab):
#   runtime  ours-epoll vs ours-glommio, one shard, the registrar's threads on
#            CPU 0 (--cores 0,0) and hr_load on CPU 1 (taskset); then both
#            again with hr_load on CPU 0 too ("same-cpu")
#   knobs    ours-glommio with its tuning knobs (RSERPOOL_GLOMMIO_*, see
#            registrar/src/driver/glommio.rs) at two values each, next to
#            ours-epoll and ours-glommio with the defaults, pinned as above
#   layout   epoll, --shards 1 (default map: shard on CPU 0, replication on
#            CPU 1) vs --shards 2 --cores 0,1,1, requests spread over 8 pools
#            so that some cross the mesh; both layouts use both CPUs, so
#            hr_load is not pinned
#   layout-pinned  the same two layouts with hr_load on CPU 1
# Every configuration is measured at 1 and 16 connections (depth 1), RUNS
# times; the configurations take turns within each run, so noise from the
# other users of the machine falls on all of them alike.
#   registrar/examples/host_compare.sh [RUNS] [runtime|knobs|layout|layout-pinned ...]
# Needs: cargo build --release -p rserpool-registrar --examples --bins
# Output: one line per measurement (see hr_load.rs), with the 1-minute load
# average when it started, and the server's cross-core forwards per answer
# (from its metrics, over the whole hr_load run).
set -u
runs=${1:-3}
shift
parts=${*:-runtime knobs layout}
bin=./target/release
port=${PORT:-23863}
addr=127.0.0.1:$port
metrics=127.0.0.1:$((port + 2))
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$out"' EXIT

start() { # [ENV=VALUE...] REGISTRAR-ARGS...: starts the registrar, sets $srv
  local envs=()
  while [[ ${1:-} == *=* ]]; do
    envs+=("$1")
    shift
  done
  env "${envs[@]}" "$bin/registrar" --asap "$addr" --transport tcp --announce off \
    --enrp 127.0.0.1:$((port + 1)) --enrp-announce off --metrics "$metrics" \
    --keep-alive-interval 300000 --keep-alive-timeout 60000 \
    --min-address-scope loopback --log-level info "$@" >"$out/srv.log" 2>&1 &
  srv=$!
  for _ in $(seq 100); do
    grep -q 'registrar is ready' "$out/srv.log" && return 0
    sleep 0.1
  done
  echo "registrar did not start:"
  cat "$out/srv.log"
  exit 1
}

stop() {
  kill "$srv"
  wait "$srv" 2>/dev/null
}

forwards() { # the server's cross-core forwards so far
  curl -s "http://$metrics/metrics" |
    awk '/^rserpool_cross_core_forwards_total/ { n += $NF } END { print n + 0 }'
}

measure() { # LABEL RUN POOLS CLIENT-CPUS|- [ENV=VALUE...]
  local label=$1 run=$2 pools=$3 cpus=$4 pin=()
  [ "$cpus" != - ] && pin=(taskset -c "$cpus")
  for c in 1 16; do
    local load f0 f1 line n
    load=$(cut -d' ' -f1 /proc/loadavg)
    f0=$(forwards)
    line=$("${pin[@]}" "$bin/examples/hr_load" --target "$addr" --pid "$srv" \
      --conns "$c" --depth 1 --seconds 4 --register 3 --pe-addr 127.0.0.1 \
      --pool HostPool --pools "$pools" | grep -o 'requests=.*')
    f1=$(forwards)
    n=$(grep -o 'answers=[0-9]*' <<<"$line")
    n=${n#answers=}
    echo "$label conns=$c run=$run load=$load: $line" \
      "forwards_per_answer=$(awk -v f=$((f1 - f0)) -v n="${n:-0}" 'BEGIN { printf "%.2f", n ? f / n : 0 }')"
  done
}

for run in $(seq "$runs"); do
  for part in $parts; do
    case $part in
    runtime)
      start --driver epoll --shards 1 --cores 0,0
      measure "ours-epoll" "$run" 1 1
      stop
      start --driver glommio --shards 1 --cores 0,0
      measure "ours-glommio" "$run" 1 1
      stop
      start --driver epoll --shards 1 --cores 0,0
      measure "ours-epoll-same-cpu" "$run" 1 0
      stop
      start --driver glommio --shards 1 --cores 0,0
      measure "ours-glommio-same-cpu" "$run" 1 0
      stop
      ;;
    knobs)
      start --driver epoll --shards 1 --cores 0,0
      measure "ours-epoll" "$run" 1 1
      stop
      start --driver glommio --shards 1 --cores 0,0
      measure "glommio-default" "$run" 1 1
      stop
      for kv in RSERPOOL_GLOMMIO_SPIN_US=10 RSERPOOL_GLOMMIO_SPIN_US=100 \
        RSERPOOL_GLOMMIO_PREEMPT_US=1000 RSERPOOL_GLOMMIO_PREEMPT_US=10000 \
        RSERPOOL_GLOMMIO_RING_DEPTH=32 RSERPOOL_GLOMMIO_RING_DEPTH=1024; do
        start "$kv" --driver glommio --shards 1 --cores 0,0
        measure "glommio-${kv#RSERPOOL_GLOMMIO_}" "$run" 1 1
        stop
      done
      ;;
    layout)
      start --driver epoll --shards 1
      measure "layout-1shard" "$run" 8 -
      stop
      start --driver epoll --shards 2 --cores 0,1,1
      measure "layout-2shards" "$run" 8 -
      stop
      ;;
    layout-pinned)
      start --driver epoll --shards 1
      measure "layout-1shard-client-cpu1" "$run" 8 1
      stop
      start --driver epoll --shards 2 --cores 0,1,1
      measure "layout-2shards-client-cpu1" "$run" 8 1
      stop
      ;;
    *)
      echo "unknown part $part"
      exit 2
      ;;
    esac
  done
done
