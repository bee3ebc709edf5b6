#!/usr/bin/env bash
# make-wireguard-captures.sh - REAL WireGuard captures for capsift: a working tunnel
# (handshake initiation, response, transport data, keepalive) and a tunnel whose
# handshake is never answered because the responder has the wrong public key for
# the initiator.
#
# Every packet in the outputs was produced by the Linux kernel and ordinary
# software (userspace WireGuard: Debian's wireguard-go + wg from wireguard-tools,
# ping, curl, python3 -m http.server) running in throw-away network namespaces, and
# captured with tcpdump on the underlay veth. Nothing is synthesised or edited.
#
# Usage:  sudo ./make-wireguard-captures.sh [OUTPUT_DIR]   (default: this script's directory)
#
# Rules this script keeps (other labs may run on the same machine at the same time):
#   * it only creates/deletes network namespaces named cse-*;
#   * its WireGuard devices are named cse-wg-a / cse-wg-b. wireguard-go's control
#     sockets (/var/run/wireguard/NAME.sock) are NOT per namespace, so the names must
#     be unique on the machine; the script removes only those two sockets;
#   * all addresses are in 10.205.0.0/16 (IPv6 is switched off everywhere);
#   * all interfaces are created directly inside those namespaces (nothing in the
#     root namespace), so no traffic ever leaves them;
#   * it tears its namespaces and wireguard-go processes down first (leftovers of an
#     interrupted run) and on exit.
#
# See README-wireguard.md next to this script for the topology and what each
# capture shows.

set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$(realpath -m "${1:-$SCRIPT_DIR}")

# Every namespace this script may create. teardown() deletes exactly these.
ALL_NS=(cse-wg-node-a cse-wg-node-b)
# Every WireGuard device (= wireguard-go control socket name) this script may create.
ALL_WG=(cse-wg-a cse-wg-b)

# Outputs, in the order the manifest lists them.
OUTPUTS=(wireguard-real-ok.pcap wireguard-real-handshake-unanswered.pcap)

WG_PORT=51820
WORK=""          # temporary directory (keys, web root, logs, raw captures)
BG_PIDS=()       # background processes we started (wireguard-go, servers, captures)
LAST_PID=""      # pid of the most recent spawn()
declare -A CAP_LOG=()  # capture pid -> its stderr log (for the drop check)
NOTES=()         # per-run facts written to MANIFEST-wireguard.txt
PY=""            # absolute path of the python3 interpreter

log() { printf '[wg] %s\n' "$*" >&2; }
die() { printf '[wg] ERROR: %s\n' "$*" >&2; exit 1; }
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# ---------------------------------------------------------------- plumbing helpers
# (same helpers and lessons as make-lab-captures.sh / make-overlay-health-captures.sh)

# spawn NS LOGFILE CMD...: run CMD in the background inside NS and remember its pid.
spawn() {
  local ns=$1 logf=$2; shift 2
  ip netns exec "$ns" "$@" >"$logf" 2>&1 </dev/null &
  LAST_PID=$!
  BG_PIDS+=("$LAST_PID")
}

# stop PID [SIGNAL]: signal one of our background processes and reap it.
stop() {
  kill -"${2:-TERM}" "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# wait_for_text FILE REGEX: wait (max 5 s) until a log file says something.
wait_for_text() {
  local i
  for i in $(seq 100); do
    grep -Eq "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  cat "$1" >&2 || true
  die "timed out waiting for '$2' in $1"
}

# wait_listen NS PORT: wait until a TCP server listens on PORT inside NS.
wait_listen() {
  local i
  for i in $(seq 100); do
    nsx "$1" ss -Hltn "sport = :$2" | grep -q . && return 0
    sleep 0.05
  done
  die "nothing listens on port $2 in $1"
}

# mkns NAME: new namespace, lo up, IPv6 off (no RS/MLD noise in the captures).
mkns() {
  ip netns add "$1"
  nsx "$1" ip link set lo up
  nsx "$1" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
    net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

# veth NS1 IF1 MAC1 NS2 IF2 MAC2 MTU: a veth pair straight between two namespaces,
# with fixed MAC addresses so every run produces the same L2 addresses.
veth() {
  ip -n "$1" link add name "$2" address "$3" mtu "$7" type veth \
    peer name "$5" address "$6" mtu "$7" netns "$4"
  ip -n "$1" link set "$2" up
  ip -n "$4" link set "$5" up
}

# no_offload NS IF...: switch off checksum offload and TSO/GSO/GRO, so every captured
# frame is a wire-size frame with correct checksums (see make-lab-captures.sh).
no_offload() {
  local ns=$1 ifc; shift
  for ifc in "$@"; do nsx "$ns" ethtool -K "$ifc" tx off tso off gso off gro off >/dev/null; done
}

# flush_neigh NS IF...: forget learned ARP entries (permanent entries are kept).
flush_neigh() {
  local ns=$1 ifc; shift
  for ifc in "$@"; do nsx "$ns" ip neigh flush dev "$ifc" 2>/dev/null || true; done
}

# start_http NS BIND PORT: python3 -m http.server serving $WORK/www.
start_http() {
  spawn "$1" "$WORK/log/http-$1-$3.log" "$PY" -m http.server "$3" --bind "$2" --directory "$WORK/www"
  wait_listen "$1" "$3"
}

# get NS URL [curl options...]: one HTTP GET, body thrown away; prints
# "code=... bytes=... time=... exit=..." (curl's exit code, 0 = complete).
# --noproxy so an http_proxy in the environment can never send the request out.
get() {
  local ns=$1 url=$2 rc=0 res; shift 2
  res=$(nsx "$ns" curl --noproxy '*' -sS -o /dev/null --max-time 30 \
        -w 'code=%{http_code} bytes=%{size_download} time=%{time_total}' "$@" "$url" 2>/dev/null) || rc=$?
  echo "$res exit=$rc"
}

# start_tcpdump NS FILE ARGS...: start tcpdump writing FILE; returns once it is
# really capturing. -Z root: Debian's tcpdump would otherwise drop privileges to
# "tcpdump". -B 8192: an 8 MB ring (the 2 MB default lost packets in the lab).
start_tcpdump() {
  local ns=$1 f=$2; shift 2
  local l="$WORK/log/$(basename "$f").log"
  spawn "$ns" "$l" tcpdump -n -Z root -B 8192 -w "$f" "$@"
  CAP_LOG[$LAST_PID]=$l
  wait_for_text "$l" 'listening on'
}

# stop_capture PID [nowait]: wait 1.2 s (longer than libpcap's 1 s TPACKET_V3 block
# timeout, otherwise the last ring block is lost silently), stop with SIGINT, and
# refuse a capture that lost packets in the kernel.
stop_capture() {
  [[ ${2:-} == nowait ]] || sleep 1.2
  stop "$1" INT
  local l=${CAP_LOG[$1]}
  if grep -Eq '^[1-9][0-9]* packets dropped by kernel' "$l"; then
    cat "$l" >&2
    die "capture lost packets in the kernel, see above"
  fi
}

# publish NAME: move a finished capture into the output dir; refuse 200 KB or more.
publish() {
  local size
  size=$(stat -c %s "$WORK/cap/$1")
  ((size < 200000)) || die "$1 is $size bytes (limit 200 KB); not published"
  install -m 0644 "$WORK/cap/$1" "$OUT/$1"
  log "wrote $OUT/$1 ($(stat -c %s "$OUT/$1") bytes)"
}

teardown() {
  local pid ns wg
  for pid in "${BG_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${BG_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  BG_PIDS=()
  for ns in "${ALL_NS[@]}"; do
    [[ -e /run/netns/$ns ]] || continue
    # Anything still running inside one of OUR namespaces was started by this
    # script (possibly by an interrupted earlier run, e.g. a wireguard-go): end it by pid.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    for pid in $(seq 20); do [[ -z $(ip netns pids "$ns" 2>/dev/null) ]] && break; sleep 0.1; done
    ip netns del "$ns"
  done
  # wireguard-go removes its socket on SIGTERM; a SIGKILLed one leaves it behind.
  for wg in "${ALL_WG[@]}"; do rm -f "/var/run/wireguard/$wg.sock"; done
}

cleanup() {
  teardown
  [[ -n $WORK && -d $WORK ]] && rm -rf "$WORK"
  return 0
}

# ---------------------------------------------------------------- content

# Deterministic HTTP body (same bytes every run), as in the other labs.
make_webroot() {
  mkdir -p "$WORK/www"
  "$PY" - "$WORK/www" <<'EOF'
import os, sys
d = sys.argv[1]
with open(os.path.join(d, "small.txt"), "w") as f:
    for i in range(12):
        f.write(f"capsift lab small object, line {i:02d}: the quick brown fox\n")
EOF
}

# Key pairs: node A, node B, and a third, unrelated one ("stranger") that node B is
# wrongly given as node A's public key in the unanswered scenario. New keys each run.
make_keys() {
  local k
  mkdir -p "$WORK/keys"
  chmod 700 "$WORK/keys"
  for k in a b stranger; do
    (umask 077; wg genkey >"$WORK/keys/$k.key")
    wg pubkey <"$WORK/keys/$k.key" >"$WORK/keys/$k.pub"
  done
  NOTES+=("public keys of this run: node A $(cat "$WORK/keys/a.pub"), node B $(cat "$WORK/keys/b.pub"), stranger (wrong key given to B in the unanswered scenario) $(cat "$WORK/keys/stranger.pub")")
}

# ---------------------------------------------------------------- WireGuard lab
#
#  cse-wg-node-a                                         cse-wg-node-b
#  cse-wg-a 10.205.77.1/24 (wireguard-go, MTU 1420)      cse-wg-b 10.205.77.2/24 (wireguard-go, MTU 1420)
#    listen-port 51820, peer B: endpoint 10.205.0.2:51820    listen-port 51820, peer "A": endpoint 10.205.0.1:51820
#    allowed-ips 10.205.77.2/32                              allowed-ips 10.205.77.1/32
#  eth0 10.205.0.1/24 ============ underlay veth, MTU 1500 ============ eth0 10.205.0.2/24
#  02:ce:00:00:01:01                                                    02:ce:00:00:02:01
#                                                                       python3 -m http.server 10.205.77.2:8080
#
# Like a Kubernetes node-to-node WireGuard mesh (Calico wireguard.cali on 51820,
# Cilium cilium_wg0 on 51871): one WireGuard device per node, one peer per remote
# node, the remote node's pod/tunnel addresses as allowed-ips. Here each node has a
# single /32 of the tunnel subnet. Capture point: node A's underlay eth0.
#
# B_PEER_KEY selects the public key node B is given for its peer:
#   a        = node A's real public key (working tunnel);
#   stranger = an unrelated key: B decrypts A's initiation (it is encrypted to B's
#              static key, which A has right), finds no peer with A's static key and
#              drops it without an answer. A retries every 5 s (REKEY_TIMEOUT + up to
#              333 ms jitter) for 90 s.
setup_wg() {
  local b_peer_key=$1 i o ns dev
  log "setting up WireGuard lab (node B's peer key: $b_peer_key)"
  for ns in "${ALL_NS[@]}"; do mkns "$ns"; done
  veth cse-wg-node-a eth0 02:ce:00:00:01:01 cse-wg-node-b eth0 02:ce:00:00:02:01 1500
  ip -n cse-wg-node-a addr add 10.205.0.1/24 dev eth0
  ip -n cse-wg-node-b addr add 10.205.0.2/24 dev eth0
  no_offload cse-wg-node-a eth0
  no_offload cse-wg-node-b eth0
  for i in a b; do
    ns=cse-wg-node-$i dev=cse-wg-$i
    # -f: stay in the foreground, so the pid we keep is wireguard-go itself.
    # LOG_LEVEL=verbose: it logs rejected handshake messages (counted below).
    spawn "$ns" "$WORK/log/wireguard-go-$i.log" env LOG_LEVEL=verbose wireguard-go -f "$dev"
    wait_for_text "$WORK/log/wireguard-go-$i.log" 'UAPI listener started'
  done
  # node A: peer = node B, real key.
  nsx cse-wg-node-a wg set cse-wg-a listen-port $WG_PORT private-key "$WORK/keys/a.key" \
    peer "$(cat "$WORK/keys/b.pub")" endpoint 10.205.0.2:$WG_PORT allowed-ips 10.205.77.2/32
  # node B: peer = "node A", with the key chosen by the scenario.
  nsx cse-wg-node-b wg set cse-wg-b listen-port $WG_PORT private-key "$WORK/keys/b.key" \
    peer "$(cat "$WORK/keys/$b_peer_key.pub")" endpoint 10.205.0.1:$WG_PORT allowed-ips 10.205.77.1/32
  for i in a b; do
    o=$([[ $i == a ]] && echo 1 || echo 2)
    ip -n cse-wg-node-$i addr add 10.205.77.$o/24 dev cse-wg-$i
    ip -n cse-wg-node-$i link set cse-wg-$i up
  done
  flush_neigh cse-wg-node-a eth0
  flush_neigh cse-wg-node-b eth0
}

# wg_show NS DEV: `wg show` of one device, private key and peer keys left out
# (the keys are listed once, in make_keys), as one line.
wg_show() {
  nsx "$1" wg show "$2" dump | awk -F'\t' '
    NR == 1 {printf "listen-port %s; ", $3; next}
    {printf "peer %.8s... endpoint %s allowed-ips %s latest-handshake %s rx %s tx %s; ", $1, $3, $4, $5, $6, $7}'
}

# wg_log_count I REGEX: how many lines of wireguard-go's log on node I match REGEX.
wg_log_count() {
  grep -Ec "$2" "$WORK/log/wireguard-go-$1.log" || true
}

# A. Working tunnel. Capture on node A's underlay eth0:
#    ping -c 3 over the tunnel (the first echo triggers the handshake: initiation
#    148 bytes, response 92 bytes), then curl /small.txt from python3 -m http.server
#    on B's tunnel address, then ~11 s of silence: the side that received data last
#    and has sent nothing for 10 s (KEEPALIVE_TIMEOUT) sends one passive keepalive
#    (transport data with an empty payload, 32 bytes).
scenario_ok() {
  local name=wireguard-real-ok.pcap r
  setup_wg a
  start_http cse-wg-node-b 10.205.77.2 8080
  log "scenario: $name"
  start_tcpdump cse-wg-node-a "$WORK/cap/$name" -i eth0
  local cap=$LAST_PID
  r=$(nsx cse-wg-node-a ping -n -q -c 3 -i 0.3 -W 2 10.205.77.2 2>&1 | grep -o '[0-9]* received' || true)
  NOTES+=("$name: ping -c 3 10.205.77.1 -> 10.205.77.2 over the tunnel: ${r:-0 received}")
  r=$(get cse-wg-node-a http://10.205.77.2:8080/small.txt --max-time 5)
  NOTES+=("$name: curl http://10.205.77.2:8080/small.txt (660 bytes): $r")
  sleep 11
  stop_capture "$cap"
  NOTES+=("$name: node A wg show: $(wg_show cse-wg-node-a cse-wg-a)")
  NOTES+=("$name: node B wg show: $(wg_show cse-wg-node-b cse-wg-b)")
  NOTES+=("$name: wireguard-go logs: A sent $(wg_log_count a 'Sending handshake initiation') initiation(s), $(wg_log_count a 'Sending keepalive packet') keepalive(s); B sent $(wg_log_count b 'Sending handshake response') response(s), $(wg_log_count b 'Sending keepalive packet') keepalive(s)")
  publish $name
}

# B. Handshake never answered: B has the wrong public key for A. Capture on node
#    A's underlay eth0 while A pings B's tunnel address once a second for 12 s:
#    initiations at ~0, ~5, ~10 s, nothing back but the underlay ARP.
scenario_unanswered() {
  local name=wireguard-real-handshake-unanswered.pcap r
  setup_wg stranger
  log "scenario: $name"
  start_tcpdump cse-wg-node-a "$WORK/cap/$name" -i eth0
  local cap=$LAST_PID
  r=$(nsx cse-wg-node-a ping -n -q -c 12 -i 1 -W 1 10.205.77.2 2>&1 | grep -o '[0-9]* received' || true)
  NOTES+=("$name: ping -c 12 -i 1 10.205.77.1 -> 10.205.77.2 over the tunnel: ${r:-0 received}")
  stop_capture "$cap"
  NOTES+=("$name: node A wg show: $(wg_show cse-wg-node-a cse-wg-a)")
  NOTES+=("$name: node B wg show: $(wg_show cse-wg-node-b cse-wg-b)")
  NOTES+=("$name: wireguard-go logs: A sent $(wg_log_count a 'Sending handshake initiation') initiation(s); B logged $(wg_log_count b 'Received invalid initiation message') 'Received invalid initiation message', sent $(wg_log_count b 'Sending handshake response') response(s)")
  publish $name
}

# ---------------------------------------------------------------- checks and manifest

# check NAME EXPECTED: the WireGuard message types tshark decodes (sorted, unique,
# comma-separated) must be EXPECTED; and nothing but WireGuard and ARP on the wire.
check() {
  local f="$OUT/$1" types other
  types=$(tshark -r "$f" -Y wg -T fields -e wg.type 2>/dev/null | sort -un | paste -sd, -)
  [[ $types == "$2" ]] || die "$1: tshark sees WireGuard message types '$types', expected '$2'"
  other=$(tshark -r "$f" -Y '!wg && !arp' 2>/dev/null | wc -l)
  ((other == 0)) || die "$1: $other packets that are neither WireGuard nor ARP"
  NOTES+=("$1: tshark wg.type counts: $(tshark -r "$f" -Y wg -T fields -e wg.type -e udp.length -e ip.src 2>/dev/null |
    sort -k1,1n -k2,2n -k3,3 | uniq -c | awk '{printf "%s x type %s (UDP payload %d bytes, from %s); ", $1, $2, $3 - 8, $4}')")
}

write_manifest() {
  local m="$OUT/MANIFEST-wireguard.txt" f
  {
    echo "# generated by make-wireguard-captures.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "# $(uname -sr); $(tcpdump --version 2>&1 | head -1); $(tcpdump --version 2>&1 | sed -n 2p); $(ip -V); wireguard-go $(dpkg-query -W -f '${Version}' wireguard-go 2>/dev/null || echo '?') ($(wireguard-go --version 2>&1 | head -1)); wireguard-tools $(dpkg-query -W -f '${Version}' wireguard-tools 2>/dev/null || echo '?')"
    echo
    for f in "${OUTPUTS[@]}"; do
      echo "== $f  ($(stat -c %s "$OUT/$f") bytes, sha256 $(sha256sum "$OUT/$f" | cut -c1-16)...)"
      capinfos -t -E -c -u -M "$OUT/$f" 2>&1 | sed 1d || true
    done
    echo
    for f in "${NOTES[@]}"; do echo "note: $f"; done
  } >"$m"
  log "wrote $m"
}

# ---------------------------------------------------------------- main

main() {
  [[ $EUID -eq 0 ]] || die "run as root (network namespaces, tcpdump)"
  local t
  if ! command -v wireguard-go >/dev/null || ! command -v wg >/dev/null; then
    log "wireguard-go / wg missing: installing wireguard-go wireguard-tools"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wireguard-go wireguard-tools >/dev/null ||
      die "cannot install wireguard-go wireguard-tools"
  fi
  for t in ip ss tcpdump capinfos tshark ethtool curl python3 wireguard-go wg; do
    command -v "$t" >/dev/null || die "missing tool: $t"
  done
  [[ -c /dev/net/tun ]] || die "no /dev/net/tun (wireguard-go needs a tun device)"
  PY=$(python3 -c 'import sys; print(sys.executable)')   # resolve pyenv shims once
  mkdir -p "$OUT"

  trap cleanup EXIT
  trap 'exit 130' INT TERM
  teardown                                   # leftovers of an interrupted run
  WORK=$(mktemp -d /tmp/cse-wg.XXXXXX)
  mkdir -p "$WORK/cap" "$WORK/log"
  make_webroot
  make_keys

  scenario_ok
  teardown
  scenario_unanswered
  teardown

  check wireguard-real-ok.pcap 1,2,4
  check wireguard-real-handshake-unanswered.pcap 1
  write_manifest
  log "done; outputs in $OUT"
}

main "$@"
