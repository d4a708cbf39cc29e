#!/bin/bash
# ENRP smoke test, run inside the lab with three namespace hosts:
#   tests/lab/sctp-lab --hosts 3 -- tests/lab/two-registrars.sh [OUTDIR]
# Registrar A in h1 (10.77.0.1) and registrar B in h2 (10.77.0.2) are static
# ENRP peers. An Echo PE in h3 registers with A only. B must learn the PE
# through ENRP: hsdump of B lists it, and a pool user in h3 that knows only B
# gets its line echoed by the PE. Exit 0 = everything worked.
set -u
[ "${SCTP_LAB_HOSTS:-0}" -ge 3 ] || { echo "run with: sctp-lab --hosts 3 -- $0" >&2; exit 2; }
OUT=${1:-./two-registrars-out}
mkdir -p "$OUT" || exit 2
children=()
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
on() { local h=$1; shift; ip netns exec "$h" "$@"; }
wait_for() { # FILE PATTERN TENTHS
  for _ in $(seq "$3"); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

step "addresses"
for h in h1 h2 h3; do printf '%s: ' "$h"; ip -n "$h" -br -4 addr show eth0; done

step "registrars: A in h1, B in h2, static ENRP peers of each other"
start_registrar() { # HOST NAME OWN-ADDR PEER-ADDR
  on "$1" rspregistrar -asap="$3:3863" -enrp="$3:9901" -peer="$4:9901" \
    -asapannounce=off -enrpannounce=off -loglevel=3 -logcolor=off >"$OUT/registrar-$2.log" 2>&1 &
  children+=($!)
}
start_registrar h1 A 10.77.0.1 10.77.0.2
start_registrar h2 B 10.77.0.2 10.77.0.1
for r in A B; do
  wait_for "$OUT/registrar-$r.log" 'registrar is ready' 150 || fail "registrar $r not ready"
  grep -E 'Server ID|registrar is ready' "$OUT/registrar-$r.log" | sed "s/^/$r: /"
done

step "Echo PE in h3 registers with A (10.77.0.1)"
on h3 rspserver -echo -poolhandle=EchoPool -registrar=10.77.0.1:3863 -asapannounce=off \
  -loglevel=3 -logcolor=off >"$OUT/pe.log" 2>&1 &
children+=($!)
wait_for "$OUT/pe.log" 'Connected to registrar' 50 || fail "PE did not reach registrar A"
sleep 2
grep -E 'Connected to registrar' "$OUT/pe.log"

step "hsdump of B (10.77.0.2): the PE is there, with A as its home"
on h3 timeout 20 hsdump 10.77.0.2:9901 -loglevel=1 -logcolor=off >"$OUT/hsdump-B.txt" 2>&1
grep -E 'Handlespace\[|Pool "|idx:#|home=|userT' "$OUT/hsdump-B.txt" | sort -u
grep -q 'Pool "EchoPool"' "$OUT/hsdump-B.txt" || fail "registrar B does not know the PE"

step "pool user in h3 resolves EchoPool through B only"
(echo "Hello via B"; sleep 2) | on h3 timeout 4 rspterminal -poolhandle=EchoPool \
  -registrar=10.77.0.2:3863 -asapannounce=off -loglevel=1 -logcolor=off >"$OUT/pu.log" 2>&1
sed 's/\x1b\[[0-9;]*m//g' "$OUT/pu.log" | grep -E 'from PE' || fail "no echo"

step "SCTP associations in h1 (ENRP A<->B on 9901, ASAP PE->A on 3863)"
on h1 awk 'NR == 1 || $12 == 9901 || $12 == 3863 { print $12, $13, $14, $15, $16, $17 }' /proc/net/sctp/assocs
echo
echo "PASS: two registrars in separate namespaces share the handlespace over ENRP"
