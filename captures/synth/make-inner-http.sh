#!/bin/bash
# Re-make the REAL inner capture that gen_tunnels.py wraps (captures/synth/inner-http.pcap).
#
#   sudo captures/synth/make-inner-http.sh [OUT.pcap]      (default: /tmp/inner-http.pcap)
#
# Two network namespaces csc-a (10.203.0.1, "client pod") and csc-b (10.203.0.2, "server
# pod") on a veth pair, TX checksum offload off so the captured TCP/UDP checksums are
# final, tcpdump on csc-b's veth.  Traffic: two DNS lookups over UDP to a tiny python
# responder (NXDOMAIN for the search-expanded name, then an A answer), then two HTTP/1.0
# GETs with curl to `python3 -m http.server 8080` (a 92-byte page and a 3237-byte JSON, the
# latter sent as 1448-byte segments).  Namespaces, veths and helpers are removed on exit.
# The committed inner-http.pcap came from this procedure; a re-run gives the same packet
# sequence but new timestamps, ports, ISNs and MACs, so the synthetic files would change.
set -euo pipefail
OUT=${1:-/tmp/inner-http.pcap}
TMP=$(mktemp -d /tmp/csc-inner.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    ip netns del csc-a 2>/dev/null || true
    ip netns del csc-b 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

ip netns add csc-a
ip netns add csc-b
ip link add csc-va type veth peer name csc-vb
ip link set csc-va netns csc-a
ip link set csc-vb netns csc-b
ip -n csc-a addr add 10.203.0.1/24 dev csc-va
ip -n csc-b addr add 10.203.0.2/24 dev csc-vb
for ns in csc-a csc-b; do ip -n $ns link set lo up; done
ip -n csc-a link set csc-va up
ip -n csc-b link set csc-vb up
ip netns exec csc-a ethtool -K csc-va tx off >/dev/null
ip netns exec csc-b ethtool -K csc-vb tx off >/dev/null

mkdir "$TMP/www"
python3 - "$TMP/www" <<'EOF'
import json, sys
d = sys.argv[1]
open(d + "/index.html", "w").write(
    "<html><head><title>capsift demo</title></head><body><h1>hello from pod b</h1></body></html>\n")
items = [{"id": i, "name": "item-%d" % i, "ns": "app", "ready": True} for i in range(55)]
open(d + "/api.json", "w").write(json.dumps({"items": items}) + "\n")
EOF

cat >"$TMP/dns.py" <<'EOF'
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.203.0.2", 53))
while True:
    d, a = s.recvfrom(2048)
    tid = struct.unpack("!H", d[:2])[0]
    o, labels = 12, []
    while d[o]:
        labels.append(d[o + 1:o + 1 + d[o]].decode()); o += 1 + d[o]
    q = d[12:o + 5]
    if ".".join(labels) == "web.app.svc.cluster.local":
        ans = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 30, 4) + socket.inet_aton("10.203.0.2")
        r = struct.pack("!HHHHHH", tid, 0x8580, 1, 1, 0, 0) + q + ans
    else:
        r = struct.pack("!HHHHHH", tid, 0x8583, 1, 0, 0, 0) + q
    s.sendto(r, a)
EOF
cat >"$TMP/dnsq.py" <<'EOF'
import socket, struct, sys
for i, name in enumerate(sys.argv[1:]):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
    p = struct.pack("!HHHHHH", 0x1000 + i, 0x0100, 1, 0, 0, 0) + b"".join(
        bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0" + struct.pack("!HH", 1, 1)
    s.sendto(p, ("10.203.0.2", 53)); s.recv(2048)
EOF

ip netns exec csc-b python3 -m http.server 8080 --bind 10.203.0.2 --directory "$TMP/www" \
    >"$TMP/http.log" 2>&1 & PIDS+=($!)
ip netns exec csc-b python3 "$TMP/dns.py" >"$TMP/dns.log" 2>&1 & PIDS+=($!)
sleep 1
ip netns exec csc-b tcpdump -i csc-vb -U -w "$OUT" 'not ip6 and not arp' >"$TMP/tcpdump.log" 2>&1 &
TCPDUMP=$!; PIDS+=($TCPDUMP)
sleep 1.5
ip netns exec csc-a python3 "$TMP/dnsq.py" web.app.svc.cluster.local.app.svc.cluster.local \
    web.app.svc.cluster.local
ip netns exec csc-a curl -s -o /dev/null http://10.203.0.2:8080/index.html
sleep 0.3
ip netns exec csc-a curl -s -o /dev/null http://10.203.0.2:8080/api.json
sleep 1
kill "$TCPDUMP"; wait "$TCPDUMP" 2>/dev/null || true
echo "wrote $OUT"
