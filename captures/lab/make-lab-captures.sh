#!/usr/bin/env bash
# make-lab-captures.sh - make REAL packet captures for capsift's tests.
#
# Every packet in the outputs was produced by the Linux kernel and ordinary
# software (ping, curl, python3 -m http.server, kernel VXLAN, nftables) running
# in throw-away network namespaces, and captured with tcpdump / dumpcap.
# Nothing is synthesised.
#
# Usage:  sudo ./make-lab-captures.sh [OUTPUT_DIR]     (default: this script's directory)
#
# Rules this script keeps (other labs may run on the same machine at the same time):
#   * it only creates/deletes network namespaces named csa-*;
#   * all addresses are in 10.201.0.0/16 and fd00:201::/32;
#   * all interfaces are created directly inside those namespaces (nothing in the
#     root namespace), so no traffic ever leaves them;
#   * it tears its namespaces down first (leftovers of an interrupted run) and on exit.
#
# See README.md next to this script for the topology and what each capture shows.

set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$(realpath -m "${1:-$SCRIPT_DIR}")

# Every namespace this script may create. teardown() deletes exactly these.
ALL_NS=(
  csa-fl-node1 csa-fl-node2 csa-fl-pod1 csa-fl-pod2      # flannel-style overlay
  csa-ca-node1 csa-ca-node2 csa-ca-pod1 csa-ca-pod2      # calico-style overlay
  csa-pl-client csa-pl-server                            # plain link
  csa-rt-client csa-rt-router csa-rt-server              # routed lab (loss, SYN)
)

WORK=""          # temporary directory (web root, helper programs, logs, raw captures)
BG_PIDS=()       # background processes we started (servers, captures, tunnel relays)
LAST_PID=""      # pid of the most recent spawn()
declare -A CAP_LOG=()  # capture pid -> its stderr log (for the drop check)
NOTES=()         # per-run facts written to MANIFEST-lab.txt
PY=""            # absolute path of the python3 interpreter

log() { printf '[lab] %s\n' "$*" >&2; }
die() { printf '[lab] ERROR: %s\n' "$*" >&2; exit 1; }
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# ---------------------------------------------------------------- plumbing helpers

# spawn NS LOGFILE CMD...: run CMD in the background inside NS and remember its pid.
# `ip netns exec` execs the command, so $! is the pid of CMD itself (this matters
# for the SIGKILL in the truncated-capture scenario).
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

# mkns NAME [v6]: new namespace with lo up. IPv6 is switched off unless asked for,
# so captures are not sprinkled with router solicitations / MLD reports that the
# scenario does not need. Where IPv6 is wanted, DAD and RS are off so addresses
# are usable at once and the capture stays quiet.
mkns() {
  ip netns add "$1"
  nsx "$1" ip link set lo up
  nsx "$1" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
  if [[ ${2:-} == v6 ]]; then
    nsx "$1" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
      net.ipv6.conf.all.router_solicitations=0 net.ipv6.conf.default.router_solicitations=0 \
      net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0
  else
    nsx "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  fi
}

# veth NS1 IF1 MAC1 NS2 IF2 MAC2 MTU: a veth pair straight between two namespaces,
# with fixed MAC addresses so every run produces the same L2 addresses.
veth() {
  ip -n "$1" link add name "$2" address "$3" mtu "$7" type veth \
    peer name "$5" address "$6" mtu "$7" netns "$4"
  ip -n "$1" link set "$2" up
  ip -n "$4" link set "$5" up
}

# no_offload NS IF...: switch off checksum offload and TSO/GSO/GRO.
#  * TSO/GSO/GRO: otherwise the kernel hands 64 KB "super-packets" to the capture
#    point on veth/vxlan, and a loss rule in a router would drop 40 segments at once.
#  * tx checksum: otherwise a veth passes packets on with the TCP/UDP checksum
#    still "partial" (not filled in), so nearly every TCP segment in the capture,
#    even on the receiving side, has a wrong checksum - unlike a real wire.
# With offloads off every captured frame is a wire-size segment with correct
# checksums. (plain-http-sll2-truncated.pcap deliberately keeps the defaults.)
no_offload() {
  local ns=$1 ifc; shift
  for ifc in "$@"; do nsx "$ns" ethtool -K "$ifc" tx off tso off gso off gro off >/dev/null; done
}

# flush_neigh NS IF...: forget learned ARP/ND entries so that each capture starts
# with the same address resolution exchange (permanent entries are kept).
flush_neigh() {
  local ns=$1 ifc; shift
  for ifc in "$@"; do nsx "$ns" ip neigh flush dev "$ifc" 2>/dev/null || true; done
}

# start_http NS BIND PORT: python3 -m http.server serving $WORK/www.
start_http() {
  spawn "$1" "$WORK/log/http-$1-$3.log" "$PY" -m http.server "$3" --bind "$2" --directory "$WORK/www"
  wait_listen "$1" "$3"
}

# get NS URL [curl options...]: one HTTP GET, body thrown away. --noproxy so an
# http_proxy in the environment can never send the request out of the namespace.
get() {
  local ns=$1 url=$2; shift 2
  nsx "$ns" curl --noproxy '*' -sS -o /dev/null --max-time 30 "$@" "$url"
}

# start_tcpdump NS FILE ARGS...: start tcpdump writing FILE; returns once it is
# really capturing. -Z root: Debian's tcpdump would otherwise drop to the
# "tcpdump" user, which may not be allowed to write FILE. -B 8192: an 8 MB ring;
# with the default 2 MB (and even more with --immediate-mode) tcpdump -i any on
# the overlay node lost ~400 of ~530 packets of a 100 KB download.
start_tcpdump() {
  local ns=$1 f=$2; shift 2
  local l="$WORK/log/$(basename "$f").log"
  spawn "$ns" "$l" tcpdump -n -Z root -B 8192 -w "$f" "$@"
  CAP_LOG[$LAST_PID]=$l
  wait_for_text "$l" 'listening on'
}

# start_dumpcap NS FILE ARGS...: same for dumpcap (always writes pcapng).
start_dumpcap() {
  local ns=$1 f=$2; shift 2
  local l="$WORK/log/$(basename "$f").log"
  spawn "$ns" "$l" dumpcap -q -B 8 -w "$f" "$@"
  CAP_LOG[$LAST_PID]=$l
  wait_for_text "$l" 'Capturing on'
  # dumpcap prints "Capturing on" before every interface is really open: without
  # this pause the first ARP exchange and pings were sometimes missing.
  sleep 0.5
}

# stop_capture PID [nowait]: let the last packets (FIN/ACK, last echo reply)
# arrive, then stop the capture cleanly (SIGINT makes tcpdump/dumpcap flush and
# close the file) and refuse a capture that lost packets in the kernel.
# The wait is longer than libpcap's 1 s TPACKET_V3 block timeout: packets still
# sitting in a not-yet-retired ring block are silently lost on SIGINT (seen here:
# "200 packets received by filter, 0 packets captured").
stop_capture() {
  [[ ${2:-} == nowait ]] || sleep 1.2
  stop "$1" INT
  local l=${CAP_LOG[$1]}
  # tcpdump: "N packets dropped by kernel"; dumpcap: "... on interface 'x': R/D (...)"
  if grep -Eq '^[1-9][0-9]* packets dropped by kernel|received/dropped on interface .*: [0-9]+/[1-9]' "$l"; then
    cat "$l" >&2
    die "capture lost packets in the kernel, see above"
  fi
}

# publish NAME: move a finished capture from the work dir into the output dir.
# Test fixtures must stay small: refuse anything of 1 MB or more.
publish() {
  local size
  size=$(stat -c %s "$WORK/cap/$1")
  ((size < 1000000)) || die "$1 is $size bytes (limit 1 MB); not published"
  install -m 0644 "$WORK/cap/$1" "$OUT/$1"
  log "wrote $OUT/$1 ($(stat -c %s "$OUT/$1") bytes)"
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

# Deterministic HTTP bodies (same bytes every run; random-looking so nothing along
# the path could compress them).
make_webroot() {
  mkdir -p "$WORK/www"
  "$PY" - "$WORK/www" <<'EOF'
import os, random, sys
d = sys.argv[1]
rnd = random.Random(20201)
with open(os.path.join(d, "small.txt"), "w") as f:
    for i in range(12):
        f.write(f"capsift lab small object, line {i:02d}: the quick brown fox\n")
for name, size in [("obj-100k.bin", 100 * 1024), ("obj-200k.bin", 200 * 1024),
                   ("obj-300k.bin", 300 * 1024), ("obj-2m.bin", 2 * 1024 * 1024)]:
    with open(os.path.join(d, name), "wb") as f:
        f.write(rnd.randbytes(size))
EOF
}

# A tiny userspace IP-over-UDP tunnel on a tun device (the shape of wireguard-go /
# tailscale, minus the crypto). It exists only to get a third link type (RAW IP,
# from the tun device) into the multi-interface pcapng: this kernel has no
# ipip/gre/wireguard modules.
write_tun_relay() {
  cat >"$WORK/tunrelay.py" <<'EOF'
import fcntl, os, select, socket, struct, sys
TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000
ifname, local, peer, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
tun = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(tun, TUNSETIFF, struct.pack("16sH", ifname.encode(), IFF_TUN | IFF_NO_PI))
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind((local, port))
print("ready", flush=True)
while True:
    readable, _, _ = select.select([tun, udp], [], [])
    if tun in readable:
        udp.sendto(os.read(tun, 65535), (peer, port))
    if udp in readable:
        os.write(tun, udp.recv(65535))
EOF
}

# ---------------------------------------------------------------- flannel-style overlay
#
#  csa-fl-pod1                csa-fl-node1                       csa-fl-node2                csa-fl-pod2
#  eth0 10.201.10.2/24 ==veth== vethcsa01-[cni0 10.201.10.1/24]   [cni0 10.201.11.1/24]-vethcsa02 ==veth== eth0 10.201.11.2/24
#  (MTU 1450)                  flannel.1 10.201.10.0/32 (VNI 42, UDP 8472, MTU 1450)
#                              eth0 10.201.0.1/24 ======== underlay veth, MTU 1500 ======== eth0 10.201.0.2/24
#
# Like flanneld: a bridge cni0 per node, a VTEP flannel.1 holding the .0 address of
# the node's pod subnet, a route "other subnet via other .0 dev flannel.1 onlink"
# plus a permanent neighbour + fdb entry for the remote VTEP (no ARP in the overlay).
setup_flannel() {
  log "setting up flannel-style VXLAN overlay (VNI 42, UDP 8472)"
  local ns i o node pod
  for ns in csa-fl-node1 csa-fl-node2 csa-fl-pod1 csa-fl-pod2; do mkns "$ns"; done
  veth csa-fl-node1 eth0 02:ca:00:00:01:01 csa-fl-node2 eth0 02:ca:00:00:02:01 1500
  for i in 1 2; do
    o=$((3 - i)); node=csa-fl-node$i; pod=csa-fl-pod$i
    nsx $node sysctl -qw net.ipv4.ip_forward=1
    ip -n $node addr add 10.201.0.$i/24 dev eth0
    ip -n $node link add name flannel.1 address 02:ca:00:00:0$i:42 mtu 1450 type vxlan \
      id 42 dstport 8472 local 10.201.0.$i remote 10.201.0.$o dev eth0 nolearning
    ip -n $node addr add 10.201.$((9 + i)).0/32 dev flannel.1
    ip -n $node link set flannel.1 up
    ip -n $node link add name cni0 address 02:ca:00:00:0$i:b0 mtu 1450 type bridge
    ip -n $node addr add 10.201.$((9 + i)).1/24 dev cni0
    ip -n $node link set cni0 up
    veth $pod eth0 02:ca:00:00:0$i:a2 $node vethcsa0$i 02:ca:00:00:0$i:a1 1450
    ip -n $node link set vethcsa0$i master cni0
    ip -n $pod addr add 10.201.$((9 + i)).2/24 dev eth0
    ip -n $pod route add default via 10.201.$((9 + i)).1
    no_offload $node eth0 flannel.1 vethcsa0$i
    no_offload $pod eth0
  done
  for i in 1 2; do
    o=$((3 - i)); node=csa-fl-node$i
    ip -n $node route add 10.201.$((9 + o)).0/24 via 10.201.$((9 + o)).0 dev flannel.1 onlink
    ip -n $node neigh add 10.201.$((9 + o)).0 lladdr 02:ca:00:00:0$o:42 dev flannel.1 nud permanent
    nsx $node bridge fdb append 02:ca:00:00:0$o:42 dev flannel.1 dst 10.201.0.$o
  done
  start_http csa-fl-pod2 10.201.11.2 8080
}

flannel_flush_neigh() {
  flush_neigh csa-fl-node1 eth0 cni0
  flush_neigh csa-fl-node2 eth0 cni0
  flush_neigh csa-fl-pod1 eth0
  flush_neigh csa-fl-pod2 eth0
}

# 1. tcpdump -i any on a node: every pod packet shows up 4 times (pod veth, cni0,
#    flannel.1, and VXLAN-encapsulated on eth0), as on a real Kubernetes node.
scenario_vxlan_8472_any() {
  local name=vxlan-8472-any.pcap
  log "scenario: $name"
  flannel_flush_neigh
  start_tcpdump csa-fl-node1 "$WORK/cap/$name" -i any
  local cap=$LAST_PID
  NOTES+=("$name: interface indexes in csa-fl-node1 (sll2.ifindex): $(ip -n csa-fl-node1 -o link | awk '{sub(/[@:].*/, "", $2); printf "%s%s ", $1, $2}')")
  nsx csa-fl-pod1 ping -n -q -c 3 -i 0.2 10.201.11.2 >/dev/null
  get csa-fl-pod1 http://10.201.11.2:8080/small.txt
  # full-size (1450 B) segments. 100 KiB, not more: each segment is captured 4
  # times here, and the capture must stay under 1 MB.
  get csa-fl-pod1 http://10.201.11.2:8080/obj-100k.bin
  stop_capture "$cap"
  publish $name
}

# 3. dumpcap on several interfaces of node1 at once -> pcapng with one IDB per
#    interface and three link types: Ethernet (eth0, flannel.1), LINUX_SLL2 (any)
#    and RAW IP (tun0 of the userspace tunnel).
scenario_vxlan_8472_pcapng() {
  local name=vxlan-8472-any.pcapng i
  log "scenario: $name"
  for i in 1 2; do
    spawn csa-fl-node$i "$WORK/log/tunrelay$i.log" "$PY" "$WORK/tunrelay.py" tun0 10.201.0.$i 10.201.0.$((3 - i)) 45678
    wait_for_text "$WORK/log/tunrelay$i.log" ready
    ip -n csa-fl-node$i addr add 10.201.20.$i peer 10.201.20.$((3 - i)) dev tun0
    ip -n csa-fl-node$i link set tun0 mtu 1420 up
  done
  flannel_flush_neigh
  start_dumpcap csa-fl-node1 "$WORK/cap/$name" -i eth0 -i flannel.1 -i any -y LINUX_SLL2 -i tun0
  local cap=$LAST_PID
  nsx csa-fl-pod1 ping -n -q -c 2 -i 0.2 10.201.11.2 >/dev/null
  get csa-fl-pod1 http://10.201.11.2:8080/small.txt
  nsx csa-fl-node1 ping -n -q -c 2 -i 0.2 10.201.20.2 >/dev/null   # through tun0
  stop_capture "$cap"
  publish $name
}

# ---------------------------------------------------------------- calico-style overlay
#
#  csa-ca-pod1                      csa-ca-node1                         csa-ca-node2                      csa-ca-pod2
#  eth0 10.201.12.2/32 ==veth== calicsa01 (ee:ee:ee:ee:ee:ee)         calicsa02 ==veth== eth0 10.201.12.66/32
#  default via 169.254.1.1       vxlan.calico 10.201.12.0/32          vxlan.calico 10.201.12.64/32
#  (MTU 1450)                    (VNI 4096, UDP 4789, MTU 1450)
#                                eth0 10.201.1.1/24 ===== underlay veth, MTU 1500 ===== eth0 10.201.1.2/24
#
# Like Calico in VXLAN mode: routed pods (/32 host routes, no bridge), the pod's
# gateway is the link-local 169.254.1.1 answered by the host side ee:ee:ee:ee:ee:ee
# (Calico uses proxy ARP; here a permanent neighbour entry, since the pod side is
# not captured), one /26 block per node routed via vxlan.calico.
setup_calico() {
  log "setting up calico-style VXLAN overlay (VNI 4096, UDP 4789)"
  local ns i o node pod podip
  for ns in csa-ca-node1 csa-ca-node2 csa-ca-pod1 csa-ca-pod2; do mkns "$ns"; done
  veth csa-ca-node1 eth0 02:ca:00:01:01:01 csa-ca-node2 eth0 02:ca:00:01:02:01 1500
  for i in 1 2; do
    o=$((3 - i)); node=csa-ca-node$i; pod=csa-ca-pod$i; podip=10.201.12.$(((i - 1) * 64 + 2))
    nsx $node sysctl -qw net.ipv4.ip_forward=1
    ip -n $node addr add 10.201.1.$i/24 dev eth0
    ip -n $node link add name vxlan.calico address 02:ca:00:01:0$i:42 mtu 1450 type vxlan \
      id 4096 dstport 4789 local 10.201.1.$i remote 10.201.1.$o dev eth0 nolearning
    ip -n $node addr add 10.201.12.$(((i - 1) * 64))/32 dev vxlan.calico
    ip -n $node link set vxlan.calico up
    veth $pod eth0 02:ca:00:01:0$i:a2 $node calicsa0$i ee:ee:ee:ee:ee:ee 1450
    ip -n $node route add $podip/32 dev calicsa0$i scope link
    ip -n $pod addr add $podip/32 dev eth0
    ip -n $pod route add 169.254.1.1 dev eth0 scope link
    ip -n $pod route add default via 169.254.1.1 dev eth0
    ip -n $pod neigh add 169.254.1.1 lladdr ee:ee:ee:ee:ee:ee dev eth0 nud permanent
    no_offload $node eth0 vxlan.calico calicsa0$i
    no_offload $pod eth0
  done
  for i in 1 2; do
    o=$((3 - i)); node=csa-ca-node$i
    ip -n $node route add 10.201.12.$(((o - 1) * 64))/26 via 10.201.12.$(((o - 1) * 64)) dev vxlan.calico onlink
    ip -n $node neigh add 10.201.12.$(((o - 1) * 64)) lladdr 02:ca:00:01:0$o:42 dev vxlan.calico nud permanent
    nsx $node bridge fdb append 02:ca:00:01:0$o:42 dev vxlan.calico dst 10.201.1.$o
  done
  start_http csa-ca-pod2 10.201.12.66 8080
}

# 2. Underlay only (Ethernet link type), nanosecond pcap: every pod packet appears
#    exactly once, inside Ethernet/IPv4/UDP 4789/VXLAN(VNI 4096).
scenario_vxlan_4789_eth() {
  local name=vxlan-4789-eth.pcap
  log "scenario: $name"
  flush_neigh csa-ca-node1 eth0
  flush_neigh csa-ca-node2 eth0
  start_tcpdump csa-ca-node1 "$WORK/cap/$name" -i eth0 --time-stamp-precision=nano
  local cap=$LAST_PID
  nsx csa-ca-pod1 ping -n -q -c 3 -i 0.2 10.201.12.66 >/dev/null
  get csa-ca-pod1 http://10.201.12.66:8080/small.txt
  get csa-ca-pod1 http://10.201.12.66:8080/obj-200k.bin
  stop_capture "$cap"
  publish $name
}

# ---------------------------------------------------------------- plain link
#
#  csa-pl-client eth0 10.201.3.1/24 fd00:201:3::1/64 ==veth MTU 1500== csa-pl-server eth0 10.201.3.2/24 fd00:201:3::2/64
#  server egress shaped with tbf 8 Mbit/s (so the capture grows at a predictable rate).
#  Offloads are left at the veth defaults here, on purpose: this is the one lab
#  capture that looks like a capture on an ordinary host, with TSO super-frames
#  larger than the MTU and TCP checksums left "partial" (wrong in the file).
setup_plain() {
  log "setting up plain client/server link"
  mkns csa-pl-client v6
  mkns csa-pl-server v6
  veth csa-pl-client eth0 02:ca:00:03:01:01 csa-pl-server eth0 02:ca:00:03:02:01 1500
  ip -n csa-pl-client addr add 10.201.3.1/24 dev eth0
  ip -n csa-pl-server addr add 10.201.3.2/24 dev eth0
  ip -n csa-pl-client addr add fd00:201:3::1/64 dev eth0 nodad
  ip -n csa-pl-server addr add fd00:201:3::2/64 dev eth0 nodad
  nsx csa-pl-server tc qdisc add dev eth0 root tbf rate 8mbit burst 32kb latency 100ms
  start_http csa-pl-server :: 8080    # dual stack: answers IPv4 and IPv6
}

# pcap_tail FILE: "boundary N" if the file ends exactly after record N,
# "cut N" if record N+1 is incomplete.
pcap_tail() {
  "$PY" - "$1" <<'EOF'
import struct, sys
data = open(sys.argv[1], "rb").read()
end = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
off, n = 24, 0
while off + 16 <= len(data):
    incl = struct.unpack(end + "I", data[off + 8:off + 12])[0]
    if off + 16 + incl > len(data):
        break
    off += 16 + incl
    n += 1
print(("boundary" if off == len(data) else "cut"), n)
EOF
}

# 4. tcpdump -i any killed with SIGKILL while two downloads (IPv4 + IPv6) and two
#    pings run. tcpdump writes through a stdio buffer, so whatever was not flushed
#    is lost and the file normally ends in the middle of a record.
scenario_plain_truncated() {
  local name=plain-http-sll2-truncated.pcap f i size state
  f="$WORK/cap/$name"
  log "scenario: $name"
  flush_neigh csa-pl-client eth0
  flush_neigh csa-pl-server eth0
  start_tcpdump csa-pl-client "$f" -i any
  local cap=$LAST_PID pids=()
  spawn csa-pl-client "$WORK/log/ping4.log" ping -n -q -c 20 -i 0.05 10.201.3.2;       pids+=("$LAST_PID")
  spawn csa-pl-client "$WORK/log/ping6.log" ping -n -q -c 20 -i 0.05 fd00:201:3::2;    pids+=("$LAST_PID")
  spawn csa-pl-client "$WORK/log/curl4.log" curl --noproxy '*' -sS -o /dev/null --max-time 10 http://10.201.3.2:8080/obj-2m.bin; pids+=("$LAST_PID")
  spawn csa-pl-client "$WORK/log/curl6.log" curl --noproxy '*' -sS -o /dev/null --max-time 10 'http://[fd00:201:3::2]:8080/obj-2m.bin'; pids+=("$LAST_PID")
  # Kill once 128 KiB have reached the file (max 10 s), traffic still flowing.
  # libpcap hands tcpdump whole ring blocks, so the file grows in jumps of up
  # to a few hundred KB: the final size is 128 KiB + one jump (~250-500 KB).
  for i in $(seq 1000); do
    size=$(stat -c %s "$f" 2>/dev/null || echo 0)
    ((size >= 131072)) && break
    sleep 0.01
  done
  stop "$cap" KILL
  for i in "${pids[@]}"; do stop "$i"; done
  state=$(pcap_tail "$f")
  if [[ $state == boundary* ]]; then
    # The kernel write happened to end on a record boundary: cut 10 bytes off
    # the last record so the file still ends mid-record.
    size=$(stat -c %s "$f")
    head -c $((size - 10)) "$f" >"$f.cut" && mv "$f.cut" "$f"
    NOTES+=("$name: SIGKILL left a clean record boundary; last record cut by 'head -c' (10 bytes removed). $(pcap_tail "$f")")
  else
    NOTES+=("$name: SIGKILL cut the last record itself (no head -c needed); complete records: ${state#cut }")
  fi
  publish $name
}

# ---------------------------------------------------------------- routed lab
#
#  csa-rt-client                 csa-rt-router                            csa-rt-server
#  eth0 10.201.5.2/24 ==veth== eth0 10.201.5.1/24   eth1 10.201.6.1/24 ==veth== eth0 10.201.6.2/24
#  default via 10.201.5.1       (ip_forward, nftables)                   default via 10.201.6.1
#  All links MTU 1500, offloads off (so the loss rule drops single segments).
#  Router eth0 (towards the client, the data direction) is a 20 Mbit/s tbf
#  bottleneck: a download then takes ~130 ms instead of ~10 ms and a real window
#  of segments is in flight, so a loss produces a run of duplicate ACKs as on a
#  real path. Its queue (400 ms) is deep enough that tbf itself drops nothing in
#  practice; MANIFEST-lab.txt records tbf's drop counter to prove it.
setup_routed() {
  log "setting up routed client/router/server lab"
  local ns
  for ns in csa-rt-client csa-rt-router csa-rt-server; do mkns "$ns"; done
  veth csa-rt-client eth0 02:ca:00:05:01:01 csa-rt-router eth0 02:ca:00:05:00:01 1500
  veth csa-rt-router eth1 02:ca:00:05:00:02 csa-rt-server eth0 02:ca:00:05:02:01 1500
  nsx csa-rt-router sysctl -qw net.ipv4.ip_forward=1
  nsx csa-rt-router tc qdisc add dev eth0 root tbf rate 20mbit burst 16kb latency 400ms
  ip -n csa-rt-client addr add 10.201.5.2/24 dev eth0
  ip -n csa-rt-router addr add 10.201.5.1/24 dev eth0
  ip -n csa-rt-router addr add 10.201.6.1/24 dev eth1
  ip -n csa-rt-server addr add 10.201.6.2/24 dev eth0
  ip -n csa-rt-client route add default via 10.201.5.1
  ip -n csa-rt-server route add default via 10.201.6.1
  no_offload csa-rt-client eth0
  no_offload csa-rt-router eth0 eth1
  no_offload csa-rt-server eth0
  start_http csa-rt-server 0.0.0.0 8080
}

routed_flush_neigh() {
  flush_neigh csa-rt-client eth0
  flush_neigh csa-rt-router eth0 eth1
  flush_neigh csa-rt-server eth0
}

# 5. ~7 % random loss of forwarded TCP in the router, both directions; the same
#    two downloads captured at the client and at the server at the same time.
scenario_tcp_loss() {
  log "scenario: tcp-loss-client.pcap / tcp-loss-server.pcap"
  nsx csa-rt-router nft -f - <<'EOF'
table inet csa_loss {
  chain forward {
    type filter hook forward priority filter; policy accept;
    meta l4proto tcp numgen random mod 100 < 7 counter drop
  }
}
EOF
  routed_flush_neigh
  start_tcpdump csa-rt-client "$WORK/cap/tcp-loss-client.pcap" -i eth0
  local capc=$LAST_PID
  start_tcpdump csa-rt-server "$WORK/cap/tcp-loss-server.pcap" -i eth0
  local caps=$LAST_PID
  local i
  for i in 1 2; do
    get csa-rt-client http://10.201.6.2:8080/obj-300k.bin --max-time 60
  done
  stop_capture "$capc"
  stop_capture "$caps" nowait
  local dropped
  dropped=$(nsx csa-rt-router nft list chain inet csa_loss forward | grep -o 'packets [0-9]*' | awk '{print $2}')
  NOTES+=("tcp-loss-*.pcap: nftables in csa-rt-router dropped $dropped forwarded TCP packets this run; tbf on router eth0: $(nsx csa-rt-router tc -s qdisc show dev eth0 | grep -o 'dropped [0-9]*')")
  nsx csa-rt-router nft delete table inet csa_loss
  publish tcp-loss-client.pcap
  publish tcp-loss-server.pcap
}

# 6. From the client: a normal request, a refused connection (closed port -> RST)
#    and an unanswered one (server's nftables drops SYNs to 8443; curl gives up
#    after 4 s, i.e. after the SYN retransmissions at ~1 s and ~3 s).
scenario_syn_unanswered_refused() {
  local name=tcp-syn-unanswered-refused.pcap
  log "scenario: $name"
  nsx csa-rt-server nft -f - <<'EOF'
table inet csa_fw {
  chain input {
    type filter hook input priority filter; policy accept;
    tcp dport 8443 counter drop
  }
}
EOF
  routed_flush_neigh
  start_tcpdump csa-rt-client "$WORK/cap/$name" -i eth0
  local cap=$LAST_PID
  get csa-rt-client http://10.201.6.2:8080/small.txt                              # succeeds
  get csa-rt-client http://10.201.6.2:8081/ || true                               # RST: refused
  get csa-rt-client http://10.201.6.2:8443/ --connect-timeout 4 || true           # SYN, SYN, SYN, give up
  stop_capture "$cap"
  nsx csa-rt-server nft delete table inet csa_fw
  publish $name
}

# ---------------------------------------------------------------- manifest

write_manifest() {
  local m="$OUT/MANIFEST-lab.txt" f
  {
    echo "# generated by make-lab-captures.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "# $(uname -sr); $(tcpdump --version 2>&1 | head -1); $(tcpdump --version 2>&1 | sed -n 2p); $(dumpcap --version 2>&1 | head -1)"
    echo
    for f in vxlan-8472-any.pcap vxlan-4789-eth.pcap vxlan-8472-any.pcapng plain-http-sll2-truncated.pcap \
             tcp-loss-client.pcap tcp-loss-server.pcap tcp-syn-unanswered-refused.pcap; do
      echo "== $f  ($(stat -c %s "$OUT/$f") bytes, sha256 $(sha256sum "$OUT/$f" | cut -c1-16)...)"
      capinfos -t -E -c -u -M "$OUT/$f" 2>&1 | sed 1d || true
    done
    echo
    for f in tcp-loss-client.pcap tcp-loss-server.pcap; do
      echo "== $f tshark TCP analysis:" \
        "retransmission=$(tshark -r "$OUT/$f" -Y tcp.analysis.retransmission 2>/dev/null | wc -l)" \
        "fast_retransmission=$(tshark -r "$OUT/$f" -Y tcp.analysis.fast_retransmission 2>/dev/null | wc -l)" \
        "duplicate_ack=$(tshark -r "$OUT/$f" -Y tcp.analysis.duplicate_ack 2>/dev/null | wc -l)" \
        "lost_segment=$(tshark -r "$OUT/$f" -Y tcp.analysis.lost_segment 2>/dev/null | wc -l)"
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
  for t in ip tcpdump dumpcap capinfos tshark nft ethtool tc curl ss python3; do
    command -v "$t" >/dev/null || die "missing tool: $t"
  done
  PY=$(python3 -c 'import sys; print(sys.executable)')   # resolve pyenv shims once
  mkdir -p "$OUT"

  trap cleanup EXIT
  trap 'exit 130' INT TERM
  teardown                                   # leftovers of an interrupted run
  WORK=$(mktemp -d /tmp/csa-lab.XXXXXX)
  mkdir -p "$WORK/cap" "$WORK/log"
  make_webroot
  write_tun_relay

  setup_flannel
  scenario_vxlan_8472_any
  scenario_vxlan_8472_pcapng
  teardown

  setup_calico
  scenario_vxlan_4789_eth
  teardown

  setup_plain
  scenario_plain_truncated
  teardown

  setup_routed
  scenario_tcp_loss
  scenario_syn_unanswered_refused
  teardown

  write_manifest
  log "done; outputs in $OUT"
}

main "$@"
