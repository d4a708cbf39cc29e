#!/bin/bash
# Regression test of the SCTP lab itself. Run it on the host (it boots guests):
#   tests/lab/selftest.sh [--rsplib]
# About 20 guest boots (~1 min); --rsplib adds the RSPLIB demos (rsplib-demo.sh,
# two-registrars.sh; ~30 s). Prints one line per check, then
# "N passed, M failed"; exits non-zero if anything failed.
set -u
HERE=$(cd "$(dirname "$0")" && pwd -P)
LAB=${SCTP_LAB_BIN:-$HERE/sctp-lab}
RSPLIB=0
for a in "$@"; do
  case $a in
    --rsplib) RSPLIB=1 ;;
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "selftest: unknown argument '$a' (see --help)" >&2; exit 2 ;;
  esac
done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sctp-lab-selftest.XXXXXX") || exit 1
trap 'rm -rf -- "$WORK"' EXIT
cd "$WORK" || exit 1
T0=$SECONDS
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
show_out() { sed 's/^/     | /' "$WORK/out" | tail -15; }
# check NAME EXPECTED-RC COMMAND...   (stdout+stderr of COMMAND land in $WORK/out)
check() {
  local name=$1 want=$2 rc
  shift 2
  "$@" >"$WORK/out" 2>&1 </dev/null
  rc=$?
  if [ "$rc" = "$want" ]; then ok "$name"; else bad "$name (rc=$rc, want $want)"; show_out; fi
}
# the last check's output must contain TEXT; turns its "ok" into a failure
contains() {
  grep -q -- "$1" "$WORK/out" && return 0
  pass=$((pass - 1)); bad "  ...output lacks '$1'"; show_out
}

check "self-test (--check)"                 0   "$LAB" --check
contains "SCTP IPv6"
check "exit status passes through"          42  "$LAB" -- sh -c 'exit 42'
check "command not found -> 127"            127 "$LAB" -- no-such-command-xyz
check "cwd preserved and writable"          0   "$LAB" -- sh -c 'pwd > where.txt && test "$(cat where.txt)" = "'"$WORK"'"'
if [ -f "$WORK/where.txt" ]; then ok "  ...file written in the guest is on the host"; else bad "  ...where.txt missing on the host"; fi
check "--ro keeps cwd read-only"            1   "$LAB" --ro -- touch ro-test
check "root fs is read-only"                1   "$LAB" -- touch /usr/sctp-lab-ro-test
check "environment passes"                  0   env SCTP_LAB_TEST_VAR=x42 "$LAB" -- sh -c 'test "$SCTP_LAB_TEST_VAR" = x42 && test "$SCTP_LAB" = 1'
"$LAB" -- sh -c 'echo out; echo err >&2' >"$WORK/o" 2>"$WORK/e"
if [ "$(cat "$WORK/o")" = out ] && [ "$(cat "$WORK/e")" = err ]; then ok "stdout/stderr separated"
else bad "stdout/stderr separated: o=$(cat "$WORK/o") e=$(cat "$WORK/e")"; fi
head -c 3000000 /dev/urandom >"$WORK/blob"
"$LAB" -- cat blob >"$WORK/blob.out" 2>/dev/null
if cmp -s "$WORK/blob" "$WORK/blob.out"; then ok "3 MB binary stdout intact"; else bad "binary stdout differs"; fi
printf 'abc\n' | "$LAB" --stdin -- cat >"$WORK/o" 2>&1
if [ "$(cat "$WORK/o")" = abc ]; then ok "--stdin"; else bad "--stdin: $(cat "$WORK/o")"; fi
check "timeout -> 124"                      124 "$LAB" --timeout 4 -- sleep 60
check "COMMAND does not ignore SIGINT"      0   "$LAB" -- sh -c 'grep -q "^SigIgn:[[:space:]]*0*$" /proc/$$/status'
check "leftover background job is killed"   3   "$LAB" -- sh -c 'sleep 600 & exit 3'
check "--sysctl reaches the guest"          0   "$LAB" --sysctl net.sctp.rto_min=200 -- sh -c 'test "$(cat /proc/sys/net/sctp/rto_min)" = 200'

# XSAVE shim: built into the cache, keyed by the source's hash, preloaded
# into linux.uml only.
CACHE=$WORK/cache
check "shim is built into the cache dir"    0   env XDG_CACHE_HOME="$CACHE" "$LAB" -- true
n=$(ls "$CACHE"/sctp-lab/shim/uml-xstate-shim-*.so 2>/dev/null | wc -l)
if [ "$n" = 1 ]; then ok "  ...exactly one shim build"; else bad "  ...$n shim builds in $CACHE/sctp-lab/shim"; fi
check "LD_PRELOAD does not leak into the guest" 0 "$LAB" -- sh -c \
  'test -z "${LD_PRELOAD:-}" && ! grep -qa LD_PRELOAD /proc/1/environ /proc/self/environ'
mkdir -p "$WORK/labcopy"
cp "$HERE/sctp-lab" "$HERE/uml-xstate-shim.c" "$WORK/labcopy/"
echo "/* selftest: changed source */" >>"$WORK/labcopy/uml-xstate-shim.c"
check "changed shim source -> rebuilt"      0   env XDG_CACHE_HOME="$CACHE" "$WORK/labcopy/sctp-lab" -- true
n=$(ls "$CACHE"/sctp-lab/shim/uml-xstate-shim-*.so 2>/dev/null | wc -l)
if [ "$n" = 2 ]; then ok "  ...a second build for the new hash"; else bad "  ...$n shim builds, want 2"; fi
# Without a compiler: one line saying so (the boot itself fails on hosts that
# need the shim, and works elsewhere, so its status is not checked).
env XDG_CACHE_HOME="$WORK/cache-nocc" SCTP_LAB_CC=/nonexistent/gcc "$LAB" -- true >"$WORK/out" 2>&1 </dev/null
if [ "$(grep -c 'not found, booting without the XSAVE shim' "$WORK/out")" = 1 ]; then ok "no compiler -> one-line note"
else bad "no compiler -> one-line note"; show_out; fi

# --auto: direct on a host with SCTP, a guest otherwise or when one is needed.
check "--auto, host with SCTP: runs directly" 7 env SCTP_LAB_HOST_SCTP=yes "$LAB" --auto -- sh -c 'test "$SCTP_LAB" = direct && exit 7'
check "--auto direct: --timeout -> 124"     124 env SCTP_LAB_HOST_SCTP=yes "$LAB" --auto --timeout 1 -- sleep 30
check "--auto, host without SCTP: guest"    0   env SCTP_LAB_HOST_SCTP=no "$LAB" --auto -- sh -c 'test "$SCTP_LAB" = 1'
check "--auto --hosts 1: always a guest"    0   env SCTP_LAB_HOST_SCTP=yes "$LAB" --auto --hosts 1 -- sh -c 'test "$SCTP_LAB" = 1 && ip netns list | grep -q h1'

check "--hosts 2: SCTP between namespaces"  0   "$LAB" --hosts 2 -- bash -c '
  PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3
  ip netns exec h1 $PY -c "
import socket; s=socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132); s.bind((\"10.77.0.1\", 7000)); s.listen(1)
open(\"/tmp/ready\", \"w\").close(); c, a = s.accept(); print(\"from\", a[0], c.recv(9))" &
  for i in $(seq 100); do [ -e /tmp/ready ] && break; sleep 0.1; done
  ip netns exec h2 $PY -c "
import socket; c=socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132); c.connect((\"10.77.0.1\", 7000)); c.send(b\"h2-to-h1\")"
  wait'
contains "from 10.77.0.2 b'h2-to-h1'"
check "--multihome: eth1 on 10.78.0.0/24"   0   "$LAB" --hosts 1 --multihome -- sh -c 'ip -n h1 -4 -br addr show eth1 | grep -q 10.78.0.1/24'

"$LAB" -- sleep 60 >/dev/null 2>&1 &
lab=$!
sleep 3
kill -TERM "$lab"
wait "$lab"
rc=$?
sleep 0.5
if [ "$rc" = 143 ]; then ok "SIGTERM to sctp-lab -> 143"; else bad "SIGTERM rc=$rc, want 143"; fi

if [ "$RSPLIB" = 1 ]; then
  # The guest's /tmp is private: a checkout under /tmp is not visible in it,
  # the working directory is. Run the demos from copies there.
  cp "$HERE/rsplib-demo.sh" "$HERE/two-registrars.sh" "$WORK/"
  check "rsplib demo (registrar, PE, PU, hsdump)"  0 "$LAB" -- "$WORK/rsplib-demo.sh" "$WORK/rsplib"
  contains "from PE"
  check "two registrars in namespaces (ENRP)"      0 "$LAB" --hosts 3 -- "$WORK/two-registrars.sh" "$WORK/two"
  contains "Hello via B"
fi
echo
echo "$pass passed, $fail failed ($((SECONDS - T0)) s)"
[ "$fail" = 0 ]
