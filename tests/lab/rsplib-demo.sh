#!/bin/bash
# RSPLIB smoke test, run inside the lab (no namespaces needed):
#   tests/lab/sctp-lab -- tests/lab/rsplib-demo.sh [OUTDIR]
# One registrar on 127.0.0.1, an Echo pool element registering with it, hsdump
# reading the registrar's handlespace over ENRP, and a pool user (rspterminal)
# resolving the pool handle and getting its line echoed by the PE.
# Logs go to OUTDIR (default ./rsplib-demo-out). Exit 0 = everything worked.
set -u
[ -n "${SCTP_LAB:-}" ] || echo "warning: not inside sctp-lab (SCTP_LAB unset)" >&2
OUT=${1:-./rsplib-demo-out}
mkdir -p "$OUT" || exit 2
PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3
children=()
# Stop in reverse start order: PEs deregister before their registrar goes.
stop_all() {
  local i p
  for ((i = ${#children[@]} - 1; i >= 0; i--)); do
    p=${children[i]}
    kill "$p" 2>/dev/null
    for _ in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
}
trap stop_all EXIT
fail() { echo "FAIL: $*"; exit 1; }
step() { printf '\n=== %s\n' "$*"; }
wait_for() { # FILE PATTERN TENTHS
  for _ in $(seq "$3"); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}
nocolor() { sed 's/\x1b\[[0-9;]*m//g' "$@"; }

step "1. kernel SCTP: one-to-one socket pair over IPv4 and IPv6"
"$PY" - <<'PY' || fail "SCTP socket pair"
import socket
for fam, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    srv = socket.socket(fam, socket.SOCK_STREAM, socket.IPPROTO_SCTP)
    srv.bind((addr, 0)); srv.listen(1)
    cli = socket.socket(fam, socket.SOCK_STREAM, socket.IPPROTO_SCTP)
    cli.connect(srv.getsockname()[:2]); conn, peer = srv.accept()
    cli.send(b"hello over SCTP")
    print(addr, "->", conn.recv(64), "from", peer[:2])
PY

step "2. registrar: ASAP 127.0.0.1:3863, ENRP 127.0.0.1:9901, no multicast"
rspregistrar -asap=127.0.0.1:3863 -enrp=127.0.0.1:9901 -asapannounce=off -enrpannounce=off \
  -loglevel=3 -logcolor=off >"$OUT/registrar.log" 2>&1 &
children+=($!)
wait_for "$OUT/registrar.log" 'registrar is ready' 100 || fail "registrar did not start"
grep -E 'ASAP Address|ENRP Address|registrar is ready' "$OUT/registrar.log"

step "3. pool element: rspserver -echo into pool EchoPool"
rspserver -echo -poolhandle=EchoPool -registrar=127.0.0.1:3863 -asapannounce=off \
  -loglevel=3 -logcolor=off >"$OUT/pe.log" 2>&1 &
children+=($!)
wait_for "$OUT/pe.log" 'Connected to registrar' 50 || fail "PE did not reach the registrar"
sleep 1
grep -E 'Connected to registrar|ERROR|Failed' "$OUT/pe.log"

step "4. hsdump: the registrar's handlespace, read over ENRP"
timeout 20 hsdump 127.0.0.1:9901 -loglevel=1 -logcolor=off >"$OUT/hsdump.txt" 2>&1
grep -E 'Handlespace\[|Pool "|idx:#|userT|regT' "$OUT/hsdump.txt" | sort -u
grep -q 'Pool "EchoPool"' "$OUT/hsdump.txt" || fail "the PE is not in the handlespace"

step "5. pool user: rspterminal resolves EchoPool and talks to the PE"
(echo "Hello RSerPool"; sleep 2) | timeout 4 rspterminal -poolhandle=EchoPool -registrar=127.0.0.1:3863 \
  -asapannounce=off -loglevel=1 -logcolor=off >"$OUT/pu.log" 2>&1
nocolor "$OUT/pu.log" | grep -E 'from PE' || fail "no echo from the PE"

echo
echo "PASS: registrar up, PE registered and resolved, echo received"
