#!/usr/bin/env bash
# make-overlay-health-captures.sh - REAL captures for capsift's overlay-health
# detectors: VXLAN MTU mismatch (outer fragmentation / black hole / ICMP too big),
# an IP address that moves to another MAC without a gratuitous ARP, and a VXLAN
# tunnel that only works in one direction.
#
# Every packet in the outputs was produced by the Linux kernel and ordinary
# software (ping, curl, python3 -m http.server, arping, kernel VXLAN, bridge,
# nftables) running in throw-away network namespaces, and captured with tcpdump.
# Nothing is synthesised. One output (arp-mac-moved-announced.pcap) is a tshark
# display-filter subset of another (arp-mac-moved.pcap); no packet is changed.
#
# Usage:  sudo ./make-overlay-health-captures.sh [OUTPUT_DIR]   (default: this script's directory)
#
# Rules this script keeps (other labs may run on the same machine at the same time):
#   * it only creates/deletes network namespaces named csd-*;
#   * all addresses are in 10.204.0.0/16 (IPv6 is switched off everywhere);
#   * all interfaces are created directly inside those namespaces (nothing in the
#     root namespace), so no traffic ever leaves them;
#   * it tears its namespaces down first (leftovers of an interrupted run) and on exit.
#
# See README-overlay-health.md next to this script for the topology and what each
# capture shows.

set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$(realpath -m "${1:-$SCRIPT_DIR}")

# Every namespace this script may create. teardown() deletes exactly these.
ALL_NS=(
  csd-mtu-node1 csd-mtu-node2 csd-mtu-pod1 csd-mtu-pod2   # VXLAN MTU mismatch (3 variants)
  csd-arp-client csd-arp-sw csd-arp-srv1 csd-arp-srv2     # IP moving between MACs
  csd-ow-node1 csd-ow-node2 csd-ow-pod1 csd-ow-pod2       # one-way VXLAN
)

# Outputs, in the order the manifest lists them.
OUTPUTS=(
  vxlan-mtu-mismatch-pod.pcap vxlan-mtu-mismatch-underlay.pcap
  vxlan-mtu-mismatch-df-pod.pcap vxlan-mtu-mismatch-df-underlay.pcap vxlan-mtu-mismatch-df-node-any.pcap
  vxlan-mtu-clamped-icmp-pod.pcap
  arp-mac-moved.pcap arp-mac-moved-announced.pcap
  vxlan-one-way.pcap
)

WORK=""          # temporary directory (web root, logs, raw captures)
BG_PIDS=()       # background processes we started (servers, captures)
LAST_PID=""      # pid of the most recent spawn()
declare -A CAP_LOG=()  # capture pid -> its stderr log (for the drop check)
NOTES=()         # per-run facts written to MANIFEST-overlay-health.txt
PY=""            # absolute path of the python3 interpreter

log() { printf '[ovl] %s\n' "$*" >&2; }
die() { printf '[ovl] ERROR: %s\n' "$*" >&2; exit 1; }
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# ---------------------------------------------------------------- plumbing helpers
# (same helpers and lessons as make-lab-captures.sh)

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

# mkns NAME: new namespace, lo up, IPv6 off (no RS/MLD noise in the captures),
# no PLPMTUD (tcp_mtu_probing=0), so a PMTU black hole stays a black hole.
mkns() {
  ip netns add "$1"
  nsx "$1" ip link set lo up
  nsx "$1" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
    net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 \
    net.ipv4.tcp_mtu_probing=0 net.ipv4.ip_no_pmtu_disc=0
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
# For the MTU lab this matters twice: with GSO on, a 64 KB super-packet would reach
# the VXLAN device and be segmented only after the MTU decisions we want to see.
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

# publish NAME: move a finished capture into the output dir; refuse 1 MB or more.
publish() {
  local size
  size=$(stat -c %s "$WORK/cap/$1")
  ((size < 1000000)) || die "$1 is $size bytes (limit 1 MB); not published"
  install -m 0644 "$WORK/cap/$1" "$OUT/$1"
  log "wrote $OUT/$1 ($(stat -c %s "$OUT/$1") bytes)"
}

# counters NS: the kernel's fragmentation / ICMP counters of a namespace (non-zero only).
counters() {
  nsx "$1" nstat -asz 2>/dev/null |
    awk '$1 ~ /^(IpFragOKs|IpFragFails|IpFragCreates|IpReasmOKs|IpReasmReqds|IcmpOutDestUnreachs|IcmpInDestUnreachs|IpForwDatagrams)$/ && $2 != 0 {printf "%s=%s ", $1, $2}'
}

teardown() {
  local pid ns
  for pid in "${BG_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${BG_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  BG_PIDS=()
  for ns in "${ALL_NS[@]}"; do
    [[ -e /run/netns/$ns ]] || continue
    # Anything still running inside one of OUR namespaces was started by this
    # script (possibly by an interrupted earlier run): end it by pid.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    ip netns del "$ns"
  done
}

cleanup() {
  teardown
  [[ -n $WORK && -d $WORK ]] && rm -rf "$WORK"
  return 0
}

# ---------------------------------------------------------------- content

# Deterministic HTTP bodies (same bytes every run, random-looking).
make_webroot() {
  mkdir -p "$WORK/www"
  "$PY" - "$WORK/www" <<'EOF'
import os, random, sys
d = sys.argv[1]
with open(os.path.join(d, "small.txt"), "w") as f:
    for i in range(12):
        f.write(f"capsift lab small object, line {i:02d}: the quick brown fox\n")
with open(os.path.join(d, "obj-100k.bin"), "wb") as f:
    f.write(random.Random(20204).randbytes(100 * 1024))
EOF
}

# ---------------------------------------------------------------- VXLAN MTU mismatch lab
#
#  csd-mtu-pod1                 csd-mtu-node1                         csd-mtu-node2                 csd-mtu-pod2
#  eth0 10.204.10.2/24 ==veth== vethcsd01-[cni0 10.204.10.1/24]       [cni0 10.204.11.1/24]-vethcsd02 ==veth== eth0 10.204.11.2/24
#  MTU 1500 (client: curl)      flannel.1 10.204.10.0/32, VNI 1, UDP 8472, MTU 1500 (!)      MTU 1500 (python3 -m http.server)
#                               eth0 10.204.0.1/24 ======== underlay veth, MTU 1500 ======== eth0 10.204.0.2/24
#
# The misconfiguration: pods and flannel.1 both at MTU 1500 on a 1500 underlay, so a
# full-size inner packet (1500) becomes a 1550-byte outer packet.
#
# The kernel does not let a VXLAN device with a lower device ("dev eth0", which is
# what flanneld creates) have an MTU above lower MTU - 50: it silently clamps 1500
# to 1450 at creation and refuses "ip link set mtu 1500" (EINVAL). To get the real
# mismatch, flannel.1 is created WITHOUT "dev" (only "local", like a collect-metadata
# VXLAN device of Cilium), which lifts the clamp. Variants:
#   frag    : df unset (the kernel default): oversized outer packets are fragmented.
#   df      : df set: oversized outer packets are dropped on node2; the kernel sends
#             the ICMP frag-needed to ITSELF (10.204.0.2 -> 10.204.0.2, on lo), never
#             to the pod: a PMTU black hole.
#   clamped : flannel.1 created WITH "dev eth0", asked for MTU 1500 -> clamped to
#             1450 by the kernel; the pods stay at 1500. node2 then routes like any
#             router with a smaller egress MTU and sends ICMP frag-needed (MTU 1450)
#             to pod2; PMTUD works.
setup_mtu() {
  local variant=$1 ns i o node pod vx
  log "setting up VXLAN MTU lab, variant $variant"
  for ns in csd-mtu-node1 csd-mtu-node2 csd-mtu-pod1 csd-mtu-pod2; do mkns "$ns"; done
  veth csd-mtu-node1 eth0 02:cd:00:00:01:01 csd-mtu-node2 eth0 02:cd:00:00:02:01 1500
  for i in 1 2; do
    o=$((3 - i)); node=csd-mtu-node$i; pod=csd-mtu-pod$i
    nsx $node sysctl -qw net.ipv4.ip_forward=1
    ip -n $node addr add 10.204.0.$i/24 dev eth0
    case $variant in
      frag)    vx=(local 10.204.0.$i nolearning df unset) ;;
      df)      vx=(local 10.204.0.$i nolearning df set) ;;
      clamped) vx=(local 10.204.0.$i dev eth0 nolearning) ;;
    esac
    ip -n $node link add name flannel.1 address 02:cd:00:00:0$i:42 mtu 1500 type vxlan \
      id 1 dstport 8472 "${vx[@]}"
    ip -n $node addr add 10.204.$((9 + i)).0/32 dev flannel.1
    ip -n $node link set flannel.1 up
    ip -n $node link add name cni0 address 02:cd:00:00:0$i:b0 mtu 1500 type bridge
    ip -n $node addr add 10.204.$((9 + i)).1/24 dev cni0
    ip -n $node link set cni0 up
    veth $pod eth0 02:cd:00:00:0$i:a2 $node vethcsd0$i 02:cd:00:00:0$i:a1 1500
    ip -n $node link set vethcsd0$i master cni0
    ip -n $pod addr add 10.204.$((9 + i)).2/24 dev eth0
    ip -n $pod route add default via 10.204.$((9 + i)).1
    no_offload $node eth0 flannel.1 vethcsd0$i
    no_offload $pod eth0
  done
  for i in 1 2; do
    o=$((3 - i)); node=csd-mtu-node$i
    ip -n $node route add 10.204.$((9 + o)).0/24 via 10.204.$((9 + o)).0 dev flannel.1 onlink
    ip -n $node neigh add 10.204.$((9 + o)).0 lladdr 02:cd:00:00:0$o:42 dev flannel.1 nud permanent
    nsx $node bridge fdb append 02:cd:00:00:0$o:42 dev flannel.1 dst 10.204.0.$o
  done
  NOTES+=("mtu lab variant $variant: node2 $(ip -n csd-mtu-node2 -d link show flannel.1 | awk 'NR==1{for(i=1;i<=NF;i++) if($i=="mtu") m=$(i+1)} /vxlan id/{sub(/^ *vxlan /, "vxlan "); sub(/ addrgenmode.*/, ""); v=$0} END{print "flannel.1 mtu " m ": " v}')")
  start_http csd-mtu-pod2 10.204.11.2 8080
}

# The traffic is the same in all variants (pod1 -> pod2):
#   ping -c 3 (small, works), curl /small.txt (works), curl /obj-100k.bin (the 100 KiB
#   body flows pod2 -> pod1 in full-size segments), ping -M do -s 1472 -c 3 (1500-byte
#   IP packets with DF, pod1 -> pod2).
# Captures are taken on node2, where pod2's full-size segments enter the tunnel:
#   POD side      = tcpdump -i vethcsd02 (host end of pod2's veth), Ethernet;
#   UNDERLAY side = tcpdump -i eth0 (node2's underlay veth), Ethernet.
mtu_traffic() {
  local variant=$1 r
  nsx csd-mtu-pod1 ping -n -q -c 3 -i 0.2 10.204.11.2 >/dev/null
  r=$(get csd-mtu-pod1 http://10.204.11.2:8080/small.txt --max-time 5)
  NOTES+=("mtu $variant: curl /small.txt: $r")
  r=$(get csd-mtu-pod1 http://10.204.11.2:8080/obj-100k.bin --max-time 10)
  NOTES+=("mtu $variant: curl /obj-100k.bin (102400 bytes): $r")
  r=$(nsx csd-mtu-pod1 ping -n -q -c 3 -i 0.3 -W 1 -M do -s 1472 10.204.11.2 2>&1 | grep -o '[0-9]* received' || true)
  NOTES+=("mtu $variant: ping -M do -s 1472 -c 3 pod1->pod2: ${r:-0 received}")
}

mtu_flush_neigh() {
  local i
  for i in 1 2; do
    flush_neigh csd-mtu-node$i eth0 cni0
    flush_neigh csd-mtu-pod$i eth0
  done
}

mtu_after() {
  local variant=$1
  NOTES+=("mtu $variant: node1 counters: $(counters csd-mtu-node1)")
  NOTES+=("mtu $variant: node2 counters: $(counters csd-mtu-node2)")
  NOTES+=("mtu $variant: pod2 route to pod1: $(nsx csd-mtu-pod2 ip -o route get 10.204.10.2 | tr -s ' ' | sed -e 's/ uid 0//' -e 's/ *\\ */ /g')")
}

# 1a. df unset (default): node2 fragments each 1550-byte outer packet into
#     1500 + 70 bytes; the transfer completes.
scenario_mtu_frag() {
  setup_mtu frag
  log "scenario: vxlan-mtu-mismatch-pod.pcap / vxlan-mtu-mismatch-underlay.pcap"
  mtu_flush_neigh
  start_tcpdump csd-mtu-node2 "$WORK/cap/vxlan-mtu-mismatch-pod.pcap" -i vethcsd02
  local capp=$LAST_PID
  start_tcpdump csd-mtu-node2 "$WORK/cap/vxlan-mtu-mismatch-underlay.pcap" -i eth0
  local capu=$LAST_PID
  mtu_traffic frag
  stop_capture "$capp"
  stop_capture "$capu" nowait
  mtu_after frag
  publish vxlan-mtu-mismatch-pod.pcap
  publish vxlan-mtu-mismatch-underlay.pcap
  teardown
}

# 1b. df set: the oversized outer packets are dropped on node2 (IpFragFails), the
#     ICMP goes to node2 itself, pod2 never hears about it: black hole. A third
#     capture, tcpdump -i any on node2 (LINUX_SLL2), shows where the ICMP went (lo).
scenario_mtu_df() {
  setup_mtu df
  log "scenario: vxlan-mtu-mismatch-df-{pod,underlay,node-any}.pcap"
  mtu_flush_neigh
  start_tcpdump csd-mtu-node2 "$WORK/cap/vxlan-mtu-mismatch-df-pod.pcap" -i vethcsd02
  local capp=$LAST_PID
  start_tcpdump csd-mtu-node2 "$WORK/cap/vxlan-mtu-mismatch-df-underlay.pcap" -i eth0
  local capu=$LAST_PID
  start_tcpdump csd-mtu-node2 "$WORK/cap/vxlan-mtu-mismatch-df-node-any.pcap" -i any
  local capa=$LAST_PID
  NOTES+=("vxlan-mtu-mismatch-df-node-any.pcap: interface indexes in csd-mtu-node2 (sll2.ifindex): $(ip -n csd-mtu-node2 -o link | awk '{sub(/[@:].*/, "", $2); printf "%s%s ", $1, $2}')")
  mtu_traffic df
  stop_capture "$capp"
  stop_capture "$capu" nowait
  stop_capture "$capa" nowait
  mtu_after df
  publish vxlan-mtu-mismatch-df-pod.pcap
  publish vxlan-mtu-mismatch-df-underlay.pcap
  publish vxlan-mtu-mismatch-df-node-any.pcap
  teardown
}

# 1c. flannel.1 with "dev eth0" (MTU clamped to 1450), pods at 1500: node2 sends
#     ICMP frag-needed MTU 1450 to pod2, pod2 drops to 1450-byte packets.
scenario_mtu_clamped() {
  setup_mtu clamped
  log "scenario: vxlan-mtu-clamped-icmp-pod.pcap"
  mtu_flush_neigh
  start_tcpdump csd-mtu-node2 "$WORK/cap/vxlan-mtu-clamped-icmp-pod.pcap" -i vethcsd02
  local capp=$LAST_PID
  mtu_traffic clamped
  stop_capture "$capp"
  mtu_after clamped
  publish vxlan-mtu-clamped-icmp-pod.pcap
  teardown
}

# ---------------------------------------------------------------- ARP: an IP moves to another MAC
#
#  csd-arp-client eth0 10.204.9.1/24 (02:cd:00:09:01:01) ─┐
#  csd-arp-srv1   eth0 10.204.9.21/24 (02:cd:00:09:0a:01) ─┼─ csd-arp-sw: bridge br0 (swp1..3, no IP)
#  csd-arp-srv2   eth0 10.204.9.22/24 (02:cd:00:09:0b:01) ─┘
#  srv1 starts with the "service" addresses 10.204.9.10 and 10.204.9.11 (secondary).
#  arp_notify=0 on both servers: adding an address never makes the kernel announce it.
#  The client's neighbour timers are shortened (base_reachable_time 2 s,
#  delay_first_probe_time 1 s) so a stale entry is noticed in seconds, not ~30 s.
setup_arp() {
  log "setting up ARP lab (one bridge, client + 2 servers)"
  local ns
  for ns in csd-arp-client csd-arp-sw csd-arp-srv1 csd-arp-srv2; do mkns "$ns"; done
  ip -n csd-arp-sw link add name br0 address 02:cd:00:09:00:f0 type bridge
  ip -n csd-arp-sw link set br0 up
  veth csd-arp-client eth0 02:cd:00:09:01:01 csd-arp-sw swp1 02:cd:00:09:00:01 1500
  veth csd-arp-srv1   eth0 02:cd:00:09:0a:01 csd-arp-sw swp2 02:cd:00:09:00:02 1500
  veth csd-arp-srv2   eth0 02:cd:00:09:0b:01 csd-arp-sw swp3 02:cd:00:09:00:03 1500
  for ns in 1 2 3; do ip -n csd-arp-sw link set swp$ns master br0; done
  no_offload csd-arp-sw swp1 swp2 swp3
  for ns in csd-arp-client csd-arp-srv1 csd-arp-srv2; do no_offload $ns eth0; done
  for ns in csd-arp-srv1 csd-arp-srv2; do
    nsx $ns sysctl -qw net.ipv4.conf.all.arp_notify=0 net.ipv4.conf.default.arp_notify=0 net.ipv4.conf.eth0.arp_notify=0
  done
  nsx csd-arp-client sysctl -qw net.ipv4.neigh.eth0.base_reachable_time_ms=2000 net.ipv4.neigh.eth0.delay_first_probe_time=1
  ip -n csd-arp-client addr add 10.204.9.1/24 dev eth0
  ip -n csd-arp-srv1 addr add 10.204.9.21/24 dev eth0
  ip -n csd-arp-srv2 addr add 10.204.9.22/24 dev eth0
  ip -n csd-arp-srv1 addr add 10.204.9.10/24 dev eth0
  ip -n csd-arp-srv1 addr add 10.204.9.11/24 dev eth0
  # The bridge needs a moment before its ports forward; wait until srv1 answers.
  local i
  for i in $(seq 50); do
    nsx csd-arp-client ping -n -q -c 1 -W 1 10.204.9.21 >/dev/null 2>&1 && break
    sleep 0.1
  done
}

# 2. Capture on the client's eth0. Timeline:
#    A  ping .10 and .11: both answered from srv1's MAC.
#    B  announced move of .11: deleted on srv1, added on srv2, then srv2 runs
#       `arping -U -c 2 10.204.9.11` (gratuitous ARP, sender IP = target IP); the
#       client's entry is updated at once and every ping to .11 is answered (by srv2).
#    C  silent move of .10: deleted on srv1, added on srv2, no announcement. The
#       client keeps sending to srv1's MAC (stale cache): pings lost, then unicast ARP
#       probes to srv1's MAC that nobody answers, then the entry fails, a broadcast
#       ARP request is answered from srv2's MAC and the pings are answered again.
scenario_arp() {
  local name=arp-mac-moved.pcap r
  log "scenario: $name"
  flush_neigh csd-arp-client eth0
  flush_neigh csd-arp-srv1 eth0
  flush_neigh csd-arp-srv2 eth0
  start_tcpdump csd-arp-client "$WORK/cap/$name" -i eth0
  local cap=$LAST_PID
  # A
  nsx csd-arp-client ping -n -q -c 4 -i 0.25 10.204.9.10 >/dev/null
  nsx csd-arp-client ping -n -q -c 4 -i 0.25 10.204.9.11 >/dev/null
  NOTES+=("$name phase A: client neighbours: $(ip -n csd-arp-client neigh show dev eth0 | sort | tr '\n' ';')")
  # B: announced move of .11
  ip -n csd-arp-srv1 addr del 10.204.9.11/24 dev eth0
  ip -n csd-arp-srv2 addr add 10.204.9.11/24 dev eth0
  nsx csd-arp-srv2 arping -q -U -c 2 -I eth0 10.204.9.11 || true   # -U: exits 1, no replies expected
  r=$(nsx csd-arp-client ping -n -q -c 4 -i 0.25 -W 1 10.204.9.11 2>&1 | grep -o '[0-9]* received' || true)
  NOTES+=("$name phase B (.11 moved with arping -U): ping -c 4 .11: ${r:-0 received}; client: $(ip -n csd-arp-client neigh show 10.204.9.11 dev eth0)")
  # C: silent move of .10 (arp_notify=0, nothing sends an announcement)
  ip -n csd-arp-srv1 addr del 10.204.9.10/24 dev eth0
  ip -n csd-arp-srv2 addr add 10.204.9.10/24 dev eth0
  r=$(nsx csd-arp-client ping -n -c 40 -i 0.25 -W 1 10.204.9.10 2>&1 | awk '/bytes from/ && !f {f=$5} /received/ {s=$0} END {print s "; first reply " f}' || true)
  NOTES+=("$name phase C (.10 moved silently): ping -c 40 -i 0.25 .10: $r; client: $(ip -n csd-arp-client neigh show 10.204.9.10 dev eth0)")
  stop_capture "$cap"
  publish $name
  # The announced move alone, as a negative case (no silent move in it): every
  # packet of arp-mac-moved.pcap that involves 10.204.9.11, unchanged.
  tshark -r "$WORK/cap/$name" -Y 'arp.src.proto_ipv4 == 10.204.9.11 || arp.dst.proto_ipv4 == 10.204.9.11 || ip.addr == 10.204.9.11' \
    -F pcap -w "$WORK/cap/arp-mac-moved-announced.pcap" 2>/dev/null
  publish arp-mac-moved-announced.pcap
}

# ---------------------------------------------------------------- one-way VXLAN
#
#  csd-ow-pod1                 csd-ow-node1                          csd-ow-node2                 csd-ow-pod2
#  eth0 10.204.12.2/24 ==veth== vethcsd11-[cni0 10.204.12.1/24]      [cni0 10.204.13.1/24]-vethcsd12 ==veth== eth0 10.204.13.2/24
#  MTU 1450                    flannel.1 10.204.12.0/32 (VNI 1, UDP 8472, dev eth0, MTU 1450)   MTU 1450, python3 -m http.server
#                              eth0 10.204.1.1/24 ======== underlay veth, MTU 1500 ======== eth0 10.204.1.2/24
#                                                                    nft: output udp dport 8472 drop
# A correctly sized Flannel-style overlay; node2's firewall drops every VXLAN packet
# node2 sends (the kernel VXLAN driver's packets are locally generated, so they pass
# the output hook). Pod2 answers everything, but no answer leaves node2.
setup_oneway() {
  log "setting up one-way VXLAN lab"
  local ns i o node pod
  for ns in csd-ow-node1 csd-ow-node2 csd-ow-pod1 csd-ow-pod2; do mkns "$ns"; done
  veth csd-ow-node1 eth0 02:cd:00:01:01:01 csd-ow-node2 eth0 02:cd:00:01:02:01 1500
  for i in 1 2; do
    o=$((3 - i)); node=csd-ow-node$i; pod=csd-ow-pod$i
    nsx $node sysctl -qw net.ipv4.ip_forward=1
    ip -n $node addr add 10.204.1.$i/24 dev eth0
    ip -n $node link add name flannel.1 address 02:cd:00:01:0$i:42 mtu 1450 type vxlan \
      id 1 dstport 8472 local 10.204.1.$i dev eth0 nolearning
    ip -n $node addr add 10.204.$((11 + i)).0/32 dev flannel.1
    ip -n $node link set flannel.1 up
    ip -n $node link add name cni0 address 02:cd:00:01:0$i:b0 mtu 1450 type bridge
    ip -n $node addr add 10.204.$((11 + i)).1/24 dev cni0
    ip -n $node link set cni0 up
    veth $pod eth0 02:cd:00:01:0$i:a2 $node vethcsd1$i 02:cd:00:01:0$i:a1 1450
    ip -n $node link set vethcsd1$i master cni0
    ip -n $pod addr add 10.204.$((11 + i)).2/24 dev eth0
    ip -n $pod route add default via 10.204.$((11 + i)).1
    no_offload $node eth0 flannel.1 vethcsd1$i
    no_offload $pod eth0
  done
  for i in 1 2; do
    o=$((3 - i)); node=csd-ow-node$i
    ip -n $node route add 10.204.$((11 + o)).0/24 via 10.204.$((11 + o)).0 dev flannel.1 onlink
    ip -n $node neigh add 10.204.$((11 + o)).0 lladdr 02:cd:00:01:0$o:42 dev flannel.1 nud permanent
    nsx $node bridge fdb append 02:cd:00:01:0$o:42 dev flannel.1 dst 10.204.1.$o
  done
  start_http csd-ow-pod2 10.204.13.2 8080
  nsx csd-ow-node2 nft -f - <<'EOF'
table inet csd_oneway {
  chain output {
    type filter hook output priority filter; policy accept;
    udp dport 8472 counter drop
  }
}
EOF
}

# 3. Capture on node1's underlay eth0: ping -c 30 and a curl (SYN + retransmissions
#    until --connect-timeout 5) from pod1 to pod2. Only node1 -> node2 VXLAN.
scenario_oneway() {
  local name=vxlan-one-way.pcap r
  log "scenario: $name"
  flush_neigh csd-ow-node1 eth0 cni0
  flush_neigh csd-ow-node2 eth0 cni0
  start_tcpdump csd-ow-node1 "$WORK/cap/$name" -i eth0
  local cap=$LAST_PID
  r=$(nsx csd-ow-pod1 ping -n -q -c 30 -i 0.2 -W 1 10.204.13.2 2>&1 | grep -o '[0-9]* received' || true)
  NOTES+=("$name: ping -c 30 pod1->pod2: ${r:-0 received}")
  r=$(get csd-ow-pod1 http://10.204.13.2:8080/small.txt --connect-timeout 5 --max-time 6)
  NOTES+=("$name: curl /small.txt: $r")
  stop_capture "$cap"
  NOTES+=("$name: nft in csd-ow-node2 dropped $(nsx csd-ow-node2 nft list chain inet csd_oneway output | grep -o 'packets [0-9]*' | awk '{print $2}') outgoing VXLAN packets")
  publish $name
}

# ---------------------------------------------------------------- manifest

write_manifest() {
  local m="$OUT/MANIFEST-overlay-health.txt" f
  {
    echo "# generated by make-overlay-health-captures.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "# $(uname -sr); $(tcpdump --version 2>&1 | head -1); $(tcpdump --version 2>&1 | sed -n 2p); $(ip -V); $(arping -V 2>&1 | head -1)"
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
  for t in ip bridge tcpdump capinfos tshark nft ethtool curl ss nstat python3; do
    command -v "$t" >/dev/null || die "missing tool: $t"
  done
  if ! command -v arping >/dev/null; then
    log "arping missing: installing iputils-arping"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iputils-arping >/dev/null || die "cannot install iputils-arping"
  fi
  arping -V 2>&1 | grep -q iputils || die "need iputils arping (-U), found: $(arping -V 2>&1 | head -1)"
  ip link help vxlan 2>&1 | grep -q 'df DF' || die "this iproute2 has no 'vxlan ... df set'"
  PY=$(python3 -c 'import sys; print(sys.executable)')   # resolve pyenv shims once
  mkdir -p "$OUT"

  trap cleanup EXIT
  trap 'exit 130' INT TERM
  teardown                                   # leftovers of an interrupted run
  WORK=$(mktemp -d /tmp/csd-ovl.XXXXXX)
  mkdir -p "$WORK/cap" "$WORK/log"
  make_webroot

  scenario_mtu_frag
  scenario_mtu_df
  scenario_mtu_clamped

  setup_arp
  scenario_arp
  teardown

  setup_oneway
  scenario_oneway
  teardown

  write_manifest
  log "done; outputs in $OUT"
}

main "$@"
