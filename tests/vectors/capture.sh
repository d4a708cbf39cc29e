#!/bin/bash
# capture.sh -- regenerate the RSPLIB 3.4.4 golden vectors in
# tests/vectors/rsplib-3.4.4/ from live traffic.
#
#   tests/vectors/capture.sh            (on the host; boots the SCTP lab itself)
#
# 1. Boots tests/lab/sctp-lab with three namespace hosts (h1..h3 on bridge
#    br0, root namespace 10.77.0.254) and runs this script again inside it
#    (--in-lab). There, each scenario below starts RSPLIB registrars, pool
#    elements and pool users, with dumpcap capturing br0 and lo of the root
#    namespace into one pcapng per scenario (everything that crosses
#    namespaces goes over br0; PE <-> PU traffic in the root namespace over lo).
# 2. Back on the host, extract.py reads the pcaps with tshark, keeps every
#    ASAP (SCTP PPID 11, UDP 3863) and ENRP (PPID 12, UDP 9901) message sent
#    by RSPLIB, deduplicates and caps them, writes one .hex file per vector
#    plus index.tsv, and re-checks every vector with text2pcap + tshark.
#
# Work files (pcaps, logs) go to ./lab-out-vectors/ at the repository root
# (git-ignored; CAPTURE_WORK overrides); they are not needed afterwards.
# Takes about 3 minutes. CAPTURE_ONLY="scenario ..." runs a subset (debugging;
# the extraction then sees only those pcaps).
# Needs: user-mode-linux etc. (tests/lab/sctp-lab --install-deps), tshark
# (dumpcap, text2pcap), python3, rsplib-registrar, rsplib-tools, rsplib-services.
set -u -o pipefail
HERE=$(cd "$(dirname "$0")" && pwd -P)
ROOT=$(cd "$HERE/../.." && pwd -P)

# ====================================================================== host
if [ "${1:-}" != --in-lab ]; then
  case ${1:-} in
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) echo "capture.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  LAB=$ROOT/tests/lab/sctp-lab
  OUT=$HERE/rsplib-3.4.4
  WORK=${CAPTURE_WORK:-$ROOT/lab-out-vectors}
  missing=()
  for t in tshark text2pcap dumpcap python3 rspregistrar rspserver rspterminal hsdump \
           pingpongclient calcappclient; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "capture.sh: missing ${missing[*]} (apt-get install tshark rsplib-registrar rsplib-tools rsplib-services)" >&2
    exit 1
  fi
  ver=$(dpkg-query -W -f '${Version}' rsplib-registrar 2>/dev/null)
  case $ver in
    3.4.4*) ;;
    *) echo "capture.sh: warning: rsplib-registrar is '$ver', the vectors are named for 3.4.4" >&2 ;;
  esac
  T0=$SECONDS
  rm -rf -- "$WORK" && mkdir -p "$WORK" || exit 1
  echo "capture.sh: running the scenarios in the SCTP lab (logs and pcaps in $WORK)"
  (cd "$ROOT" && "$LAB" --hosts 3 --timeout 900 -- "$HERE/capture.sh" --in-lab "$WORK") 2>&1 |
    tee "$WORK/lab.log"
  rc=${PIPESTATUS[0]}
  [ "$rc" = 0 ] || { echo "capture.sh: the lab run failed (status $rc), see $WORK/lab.log" >&2; exit 1; }
  echo "capture.sh: extracting vectors into $OUT"
  python3 "$HERE/extract.py" --work "$WORK" --out "$OUT" || exit 1
  echo "capture.sh: done in $((SECONDS - T0)) s"
  exit 0
fi

# ================================================================== in the lab
WORK=$2
[ "${SCTP_LAB:-}" = 1 ] && [ "${SCTP_LAB_HOSTS:-0}" -ge 3 ] ||
  { echo "capture.sh --in-lab: run me through tests/lab/sctp-lab --hosts 3" >&2; exit 2; }
PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3
CAP=/tmp/capture   # guest tmpfs: dumpcap writes here, copied to $WORK after each scenario
mkdir -p "$CAP" "$WORK/pcaps" "$WORK/logs" || exit 1
cd "$WORK" || exit 1   # whatever a tool writes to its working directory lands here

# Multicast (ASAP Server Announce, ENRP Presence over UDP) goes out on the
# bridge in every namespace.
for i in 1 2 3; do ip -n "h$i" route add 224.0.0.0/4 dev eth0; done
ip route add 224.0.0.0/4 dev br0

ASAP_MC=239.0.0.50:3863
ENRP_MC=239.0.0.51:9901
# craft-errors.py's own messages are not vectors: extract.py drops messages
# from this address and port range in this scenario (see craft-source).
CRAFT_PORTS=40000-40099
printf 'errors\t10.77.0.3\t%s\n' "$CRAFT_PORTS" >"$WORK/craft-source"

log() { printf '[%6.1fs] %s\n' "$(awk '{print $1}' /proc/uptime)" "$*"; }

declare -A PID=()
ORDER=()
LOGS=
# spawn NAME NETNS|- CMD... : start in the background, log to $LOGS/NAME.log
spawn() {
  local name=$1 ns=$2
  shift 2
  if [ "$ns" = - ]; then
    "$@" >"$LOGS/$name.log" 2>&1 &
  else
    ip netns exec "$ns" "$@" >"$LOGS/$name.log" 2>&1 &
  fi
  PID[$name]=$!
  disown "$!"   # no "Killed" job notices; stop() still reaps it
  ORDER+=("$name")
}
# stop NAME [SIGNAL]: signal (default TERM), wait up to 4 s, then KILL
stop() {
  local p=${PID[$1]:-} sig=${2:-TERM}
  [ -n "$p" ] || return 0
  kill "-$sig" "$p" 2>/dev/null
  for _ in $(seq 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null
  wait "$p" 2>/dev/null
  unset "PID[$1]"
}
# stop everything, newest first (PEs deregister before their registrar goes)
stop_all() {
  local i
  for ((i = ${#ORDER[@]} - 1; i >= 0; i--)); do stop "${ORDER[i]}"; done
  ORDER=()
}
# wait_log NAME PATTERN SECONDS
wait_log() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -q -- "$2" "$LOGS/$1.log" 2>/dev/null && return 0
    sleep 0.1
  done
  log "warning: '$2' not seen in $1.log after $3 s"
  return 1
}

COMMON_LOG=(-loglevel=3 -logcolor=off)
# registrar NAME HOST ID EXTRA-OPTIONS... : ASAP and ENRP on 10.77.0.<host>
# (DUAL_STACK=1: and on fd77::<host>)
registrar() {
  local name=$1 h=$2 id=$3 v6=
  shift 3
  [ "${DUAL_STACK:-0}" = 1 ] && v6=",[fd77::$h]"
  spawn "$name" "h$h" rspregistrar -identifier="$id" -asap="10.77.0.$h:3863$v6" -enrp="10.77.0.$h:9901$v6" \
    -mentordiscoverytimeout=1500 -endpointkeepalivetransmissioninterval=2000 "${COMMON_LOG[@]}" "$@"
}
no_announce=(-asapannounce=off -enrpannounce=off)
peers_of() { # HOST: -peer options for the other two registrars
  local i
  for i in 1 2 3; do [ "$i" = "$1" ] || printf -- '-peer=10.77.0.%s:9901\n' "$i"; done
}
# pe NAME POOL ID REGISTRAR-HOST EXTRA... : an Echo PE in the root namespace
pe() {
  local name=$1 pool=$2 id=$3 rh=$4
  shift 4
  spawn "$name" - rspserver -echo -poolhandle="$pool" -identifier="$id" \
    -registrar="10.77.0.$rh:3863" -asapannounce=off "${COMMON_LOG[@]}" "$@"
}
# pu_echo NAME NETNS POOL REGISTRAR-HOST: resolve POOL, send one line.
# NETNS must not be the registrar's host: traffic inside one namespace never
# reaches br0, the captured interface.
pu_echo() {
  (echo "hello $3"; sleep 1.5) | ip netns exec "$2" timeout 4 rspterminal -poolhandle="$3" \
    -registrar="10.77.0.$4:3863" -asapannounce=off "${COMMON_LOG[@]}" >"$LOGS/$1.log" 2>&1
}
hsdump_of() { # NAME NETNS TARGET-HOST
  ip netns exec "$2" timeout 20 hsdump "10.77.0.$3:9901" -loglevel=1 -logcolor=off >"$LOGS/$1.txt" 2>&1
}

SCEN_N=0
scenario() { # NAME FUNCTION
  local name=$1 fn=$2 dpid pcap
  SCEN_N=$((SCEN_N + 1))
  # CAPTURE_ONLY="name ..." runs a subset (for debugging a scenario)
  if [ -n "${CAPTURE_ONLY:-}" ] && [[ " $CAPTURE_ONLY " != *" $name "* ]]; then return 0; fi
  LOGS=$WORK/logs/$name
  mkdir -p "$LOGS"
  pcap=$(printf '%s/%02d-%s.pcapng' "$CAP" "$SCEN_N" "$name")
  log "scenario $name"
  dumpcap -q -i br0 -i lo -B 16 -w "$pcap" >"$LOGS/dumpcap.log" 2>&1 &
  dpid=$!
  for _ in $(seq 100); do grep -q 'Capturing on' "$LOGS/dumpcap.log" && break; sleep 0.1; done
  sleep 0.3
  "$fn"
  stop_all
  sleep 1
  kill -INT "$dpid" 2>/dev/null
  { wait "$dpid"; } 2>/dev/null
  cp "$pcap" "$WORK/pcaps/" || log "warning: no pcap for $name"
  log "scenario $name done ($(stat -c %s "$pcap" 2>/dev/null) bytes captured)"
}

# --------------------------------------------------------------- scenarios
# Every RFC 5356 policy and RSPLIB's private ones, one pool each. All pool
# handles have the same length so that only the policy changes the layout.
POLICIES=(RoundRobin WeightedRoundRobin:7 Random WeightedRandom:3 Priority:5 LeastUsed
  LeastUsedDegradation:0.25 PriorityLeastUsed:0.125 RandomizedLeastUsed
  RandomizedPriorityLeastUsed LeastUsedDPF:0.5 WeightedRandomDPF:4:0.5
  PriorityLeastUsedDegradation:0.25)
# (PriorityLeastUsedDegradationDPF is accepted by rspserver's option parser,
# but RSPLIB's message creator aborts on its policy type 0xb0002005.)

s_static_cluster() {
  local i pool
  for i in 1 2 3; do
    # shellcheck disable=SC2046
    registrar "R$i" "$i" "0x1000000$i" "${no_announce[@]}" $(peers_of "$i")
  done
  for i in 1 2 3; do wait_log "R$i" 'registrar is ready' 20; done
  for i in "${!POLICIES[@]}"; do
    pool=$(printf 'pol-%02d' "$((i + 1))")
    pe "pe-$pool" "$pool" "$(printf '0x2000%04x' "$((i + 1))")" 1 -policy="${POLICIES[i]}"
  done
  pe pe-pol-01b pol-01 0x20010001 2   # a second PE (home R2) in the RR pool
  for i in "${!POLICIES[@]}"; do
    wait_log "pe-$(printf 'pol-%02d' "$((i + 1))")" 'Connected to registrar' 15
  done
  sleep 3   # keep-alives, handle updates to R2/R3
  local pus=()
  for i in "${!POLICIES[@]}"; do
    pool=$(printf 'pol-%02d' "$((i + 1))")
    pu_echo "pu-$pool" h3 "$pool" 2 &
    pus+=($!)
  done
  pu_echo pu-nosuchpool h3 NoSuchPool 1 &
  pus+=($!)
  wait "${pus[@]}"
  grep -l 'from PE' "$LOGS"/pu-*.log | wc -l | sed 's/^/pool users that got an echo: /'
  hsdump_of hsdump-R3 h2 3
  grep -c 'idx:#' "$LOGS/hsdump-R3.txt" | sed 's/^/hsdump of R3: PEs listed: /'
  # PEs leave one by one: Deregistration, Handle Update DEL_PE
  for i in "${!POLICIES[@]}"; do stop "pe-$(printf 'pol-%02d' "$((i + 1))")" INT; done
  stop pe-pol-01b INT
  sleep 2
}

s_multicast() {
  registrar M1 1 0x30000001 -asapannounce="$ASAP_MC" -enrpannounce="$ENRP_MC" -serverannouncecycle=1000
  registrar M2 2 0x30000002 -asapannounce="$ASAP_MC" -enrpannounce="$ENRP_MC" -serverannouncecycle=1000
  wait_log M1 'registrar is ready' 20
  wait_log M2 'registrar is ready' 20
  # PE and PU find a registrar only through ASAP Server Announces
  spawn pe-mcast - rspserver -echo -poolhandle=McastPool -identifier=0x30000101 \
    -asapannounce="$ASAP_MC" "${COMMON_LOG[@]}"
  wait_log pe-mcast 'Connected to registrar' 20
  sleep 4   # ENRP Presences over UDP and over SCTP between M1 and M2
  (echo "hello McastPool"; sleep 1.5) | ip netns exec h3 timeout 6 rspterminal -poolhandle=McastPool \
    -asapannounce="$ASAP_MC" "${COMMON_LOG[@]}" >"$LOGS/pu-mcast.log" 2>&1
  hsdump_of hsdump-M2 h3 2
  stop pe-mcast INT
}

s_handle_table_more() {
  local i
  # at most 2 PEs per Handle Table Response: the M bit is set on all but the last
  registrar B1 1 0x40000001 "${no_announce[@]}" -maxelementsperhtrequest=2
  wait_log B1 'registrar is ready' 20
  for i in 1 2 3 4 5 6 7; do pe "pe-bulk$i" BulkPool1 "0x4000010$i" 1; done
  pe pe-other1 OtherPool 0x40000201 1 -policy=LeastUsed
  pe pe-other2 OtherPool 0x40000202 1 -policy=LeastUsed
  for i in 1 2 3 4 5 6 7; do wait_log "pe-bulk$i" 'Connected to registrar' 15; done
  sleep 1
  hsdump_of hsdump-B1 h3 1
  # a new registrar synchronises from B1 (List Request/Response, Handle Table)
  registrar B2 2 0x40000002 "${no_announce[@]}" -maxelementsperhtrequest=3 -peer=10.77.0.1:9901
  wait_log B2 'registrar is ready' 20
  sleep 3
  hsdump_of hsdump-B2 h3 2
  grep -c 'idx:#' "$LOGS/hsdump-B2.txt" | sed 's/^/hsdump of B2: PEs listed: /'
}

s_policy_reject() {
  registrar P1 1 0x50000001 "${no_announce[@]}"
  wait_log P1 'registrar is ready' 20
  pe pe-mixed-rr MixedPolicy 0x50000101 1 -policy=RoundRobin
  wait_log pe-mixed-rr 'Connected to registrar' 15
  sleep 1
  # same pool, other policies: Registration Response with the R flag
  pe pe-mixed-lu MixedPolicy 0x50000102 1 -policy=LeastUsed
  pe pe-mixed-wrr MixedPolicy 0x50000103 1 -policy=WeightedRoundRobin:2
  sleep 4
  grep -h -i -E 'error|fail' "$LOGS"/pe-mixed-lu.log "$LOGS"/pe-mixed-wrr.log | sort -u | head -4
}

s_failover() {
  registrar F1 1 0x60000001 "${no_announce[@]}" -peer=10.77.0.2:9901
  registrar F2 2 0x60000002 "${no_announce[@]}" -peer=10.77.0.1:9901
  wait_log F1 'registrar is ready' 20
  wait_log F2 'registrar is ready' 20
  # PingPong: the PE sends Cookies; after the PE dies the PU reports it
  # (Endpoint Unreachable) and sends the last Cookie to the new PE (Cookie Echo)
  spawn pp1 - rspserver -pingpong -poolhandle=PingPong -identifier=0x60000101 \
    -registrar=10.77.0.1:3863 -asapannounce=off "${COMMON_LOG[@]}"
  wait_log pp1 'Connected to registrar' 15
  spawn ppclient h3 pingpongclient -poolhandle=PingPong -registrar=10.77.0.2:3863 \
    -interval=250 -asapannounce=off "${COMMON_LOG[@]}"
  sleep 4
  spawn pp2 - rspserver -pingpong -poolhandle=PingPong -identifier=0x60000102 \
    -registrar=10.77.0.2:3863 -asapannounce=off "${COMMON_LOG[@]}"
  wait_log pp2 'Connected to registrar' 15
  sleep 2
  log "kill -9 pp1"
  stop pp1 KILL
  sleep 5
  stop ppclient INT
  # CalcApp: cookies carry the job state (sent every 0.5 s of a job). One job
  # of 6e7 calculations (~60 s at the default capacity of 1e6/s) outlasts the
  # scenario, so the PU always holds a cookie when its PE dies.
  # (CalcApp writes statistics files: keep them out of the working directory)
  local stats=(-capscalar="$LOGS/ca1.sca" -capvector="$LOGS/ca1.vec")
  spawn ca1 - rspserver -calcapp -poolhandle=CalcAppPool -identifier=0x60000201 \
    -registrar=10.77.0.1:3863 -asapannounce=off -capcookiemaxtime=0.5 "${stats[@]}" "${COMMON_LOG[@]}"
  wait_log ca1 'Connected to registrar' 15
  spawn caclient h3 calcappclient -poolhandle=CalcAppPool -registrar=10.77.0.2:3863 \
    -jobinterval=1 -jobsize=60000000 -keepalivetransmissioninterval=500 -keepalivetimeoutinterval=500 \
    -asapannounce=off -scalar="$LOGS/pu.sca" -vector="$LOGS/pu.vec" "${COMMON_LOG[@]}"
  sleep 4
  # The PE hangs (SIGSTOP) instead of dying: its associations stay up, so its
  # registrar keeps listing it until the keep-alive timeout, and the PU,
  # whose CalcApp keep-alives time out, reports it (Endpoint Unreachable,
  # no race with the registrar as after a kill -9) and fails over with its
  # last cookie to the replacement PE.
  log "kill -STOP ca1"
  kill -STOP "${PID[ca1]}"
  sleep 1
  stats=(-capscalar="$LOGS/ca2.sca" -capvector="$LOGS/ca2.vec")
  spawn ca2 - rspserver -calcapp -poolhandle=CalcAppPool -identifier=0x60000202 \
    -registrar=10.77.0.2:3863 -asapannounce=off -capcookiemaxtime=0.5 "${stats[@]}" "${COMMON_LOG[@]}"
  wait_log ca2 'Connected to registrar' 15
  sleep 6
  stop ca1 KILL
}

s_takeover() {
  local i
  local fast=(-peerheartbeatcycle=1000 -peermaxtimelastheard=2500 -peermaxtimenoresponse=1000
    -takeoverexpiryinterval=3000)
  # dual-stack registrars: the taking-over registrar reaches the PEs' ASAP
  # endpoints over IPv6 too (bound to IPv4 only, its INIT leaves from the
  # IPv6 address and the association is aborted)
  for i in 1 2 3; do
    # shellcheck disable=SC2046
    DUAL_STACK=1 registrar "T$i" "$i" "0x7000000$i" "${no_announce[@]}" "${fast[@]}" $(peers_of "$i")
  done
  for i in 1 2 3; do wait_log "T$i" 'registrar is ready' 20; done
  # PEs homed at T3 and knowing only T3
  pe pe-to1 Takeover 0x70000101 3
  pe pe-to2 Takeover 0x70000102 3
  wait_log pe-to1 'Connected to registrar' 15
  wait_log pe-to2 'Connected to registrar' 15
  sleep 3
  log "kill -9 T3"
  stop T3 KILL
  sleep 12   # peer timeout, Init Takeover, Acks, Takeover Server, keep-alives with H
  grep -h -E 'Takeover|takeover' "$LOGS"/T1.log "$LOGS"/T2.log | grep -v '^ ' | cut -d' ' -f3- | sort | uniq -c
}

s_takeover_suggestion() {
  local i
  # With -supporttakeoversuggestion a home registrar hands some of its PEs
  # to a peer (Handle Update with the T flag, point-to-point); the peer then
  # sends those PEs an Endpoint Keep-Alive with the H flag.
  for i in 1 2; do
    DUAL_STACK=1 registrar "S$i" "$i" "0x7100000$i" "${no_announce[@]}" -supporttakeoversuggestion \
      -peer="10.77.0.$((3 - i)):9901"
  done
  for i in 1 2; do wait_log "S$i" 'registrar is ready' 20; done
  pe pe-ts1 Takeover 0x71000101 2
  pe pe-ts2 Takeover 0x71000102 2
  wait_log pe-ts1 'Connected to registrar' 15
  wait_log pe-ts2 'Connected to registrar' 15
  sleep 4
}

s_errors() {
  registrar X1 1 0x80000001 "${no_announce[@]}" -peer=10.77.0.2:9901
  registrar X2 2 0x80000002 "${no_announce[@]}" -peer=10.77.0.1:9901
  wait_log X1 'registrar is ready' 20
  wait_log X2 'registrar is ready' 20
  # two PEs: Handle Resolutions without the 0x803f option get both back
  pe pe-echo EchoPool 0x80000101 1
  pe pe-echo2 EchoPool 0x80000102 2
  wait_log pe-echo 'Connected to registrar' 15
  wait_log pe-echo2 'Connected to registrar' 15
  sleep 1
  ip netns exec h3 "$PY" "$ROOT/tests/vectors/craft-errors.py" 10.77.0.1 --src 10.77.0.3 \
    --base-port "${CRAFT_PORTS%-*}" | tee "$LOGS/craft.log"
  # a registrar still looking for a mentor (no peers, long discovery timeout)
  spawn X3 - rspregistrar -identifier=0x80000003 -asap=10.77.0.254:3863 -enrp=10.77.0.254:9901 \
    -mentordiscoverytimeout=30000 "${no_announce[@]}" "${COMMON_LOG[@]}"
  sleep 1
  ip netns exec h3 "$PY" "$ROOT/tests/vectors/craft-errors.py" 10.77.0.254 --src 10.77.0.3 \
    --base-port "$((${CRAFT_PORTS%-*} + 50))" --probes init | tee -a "$LOGS/craft.log"
}

log "RSPLIB $(dpkg-query -W -f '${Version}' rsplib-registrar 2>/dev/null), tshark $(dpkg-query -W -f '${Version}' tshark 2>/dev/null)"
scenario static-cluster s_static_cluster
scenario multicast s_multicast
scenario handle-table-more s_handle_table_more
scenario policy-reject s_policy_reject
scenario failover-cookies s_failover
scenario takeover s_takeover
scenario takeover-suggestion s_takeover_suggestion
scenario errors s_errors
log "all scenarios done"
