#!/usr/bin/env bash
# make-app-captures.sh - build REAL captures for capsift's DNS, TLS and MTU
# detectors inside throw-away network namespaces.
#
# Usage:  sudo captures/lab/make-app-captures.sh [OUTPUT_DIR]
#         (default OUTPUT_DIR: the directory this script lives in)
#
# Environment knobs:
#   CSB_DNS_DROP=inc|random   how the dns-drops lab picks the ~30% of queries to
#                             drop (default inc: deterministic, reproducible)
#   CSB_ONLY="dns tls mtu"    run only some of the labs (default: all)
#
# Namespaces: csb-* only.  Addresses: 10.202.0.0/16 only.  No traffic leaves
# the namespaces.  Keys and certificates live in a temp dir that is removed on
# exit; only the lab CA's public certificate is written to OUTPUT_DIR
# (tls-lab-ca.pem) so tests can pass it to --ca-bundle.
# See README-app.md next to this script for topology and expected verdicts.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${1:-$SCRIPT_DIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
DNS_DROP_MODE=${CSB_DNS_DROP:-inc}
ONLY=${CSB_ONLY:-dns tls mtu}

ALL_NS="csb-client csb-dns-srv csb-tls-cli csb-tls-srv csb-mtu-cli csb-mtu-rtr csb-mtu-srv"
TMP=""
PIDS=()

log() { printf '[make-app-captures] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (network namespaces, tcpdump, nft)"

# ---------------------------------------------------------------- tools
need() { # need CMD DEBIAN_PACKAGE
    command -v "$1" >/dev/null 2>&1 && return 0
    log "installing $2 (for $1)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; } \
        || die "cannot install $2"
}
need ip iproute2; need tcpdump tcpdump; need tshark tshark; need nft nftables
need dnsmasq dnsmasq-base; need openssl openssl; need curl curl; need dig dnsutils
need ethtool ethtool; need getent libc-bin; need python3 python3; need editcap wireshark-common

# ---------------------------------------------------------------- cleanup
ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }

teardown_ns() {
    local ns p
    for ns in $ALL_NS; do
        if ns_exists "$ns"; then
            # only processes living inside OUR csb-* namespaces
            for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
            sleep 0.2
            for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
            ip netns del "$ns" 2>/dev/null || true
        fi
    done
    rm -rf /etc/netns/csb-client
}

cleanup() {
    local rc=$? p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    teardown_ns
    [[ -n $TMP && -d $TMP && -z ${CSB_KEEP_TMP:-} ]] && rm -rf "$TMP"; [[ -n ${CSB_KEEP_TMP:-} ]] && log "kept $TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

teardown_ns
TMP=$(mktemp -d /tmp/csb-lab.XXXXXX)
chmod 755 "$TMP"

# ---------------------------------------------------------------- helpers
mkns() {
    ip netns add "$1"
    ip -n "$1" link set lo up
    # IPv4-only lab: no router solicitations / ND noise in the captures
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

# veth NS_A IF_A NS_B IF_B
veth() {
    ip link add "$2" netns "$1" type veth peer name "$4" netns "$3"
    ip -n "$1" link set "$2" up
    ip -n "$3" link set "$4" up
}

# Offloads off so captured sizes are wire sizes and checksums are filled in
# (tx checksumming off also disables TSO; GSO/GRO off separately).
offload_off() {
    ip netns exec "$1" ethtool -K "$2" tx off tso off gso off gro off >/dev/null 2>&1 \
        || log "warning: ethtool -K $2 (in $1) failed"
}

# start_cap NS IFACE FILE [BPF]   -> sets CAP_PID
start_cap() {
    local ns=$1 ifc=$2 f=$3; shift 3
    ip netns exec "$ns" tcpdump -i "$ifc" -n -s 0 -U --immediate-mode -Z root -w "$f" "$@" >"$f.log" 2>&1 &
    CAP_PID=$!
    PIDS+=("$CAP_PID")
    local i
    for i in $(seq 100); do grep -q 'listening on' "$f.log" 2>/dev/null && break; sleep 0.05; done
    grep -q 'listening on' "$f.log" || die "tcpdump on $ns/$ifc did not start: $(cat "$f.log")"
    sleep 0.3
}
stop_cap() {
    sleep 1
    kill -INT "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
cap_stats() { # FILE: warn when tcpdump saw packets it did not write
    local c r
    c=$(awk '/packets captured/{print $1}' "$1.log"); r=$(awk '/received by filter/{print $1}' "$1.log")
    [[ -n $c && -n $r && $c != "$r" ]] && log "  warning: $1: $c captured but $r received by filter"
    return 0
}

# bg NS CMD...  -> sets BG_PID
bg() {
    local ns=$1; shift
    ip netns exec "$ns" "$@" &
    BG_PID=$!
    PIDS+=("$BG_PID")
}
stop_bg() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# put FILE -> copy a finished capture from the temp dir to OUT
put() {
    cap_stats "$TMP/$1"
    cp "$TMP/$1" "$OUT/$1"
    log "wrote $OUT/$1 ($(stat -c %s "$OUT/$1") bytes, $(capinfos -c -M "$OUT/$1" | awk '/Number of packets/{print $NF}') packets)"
}

wants() { [[ " $ONLY " == *" $1 "* ]]; }

###########################################################################
# 1+2. DNS: cluster DNS (dnsmasq) + glibc client with ndots:5
###########################################################################
# csb-client  csb-dc0 10.202.1.2/24  <---->  csb-ds0 10.202.1.1/24 (+ .54)  csb-dns-srv
DNS_SRV=10.202.1.1
DNS_DEAD=10.202.1.54   # configured on the server, but nft silently drops DNS to it
DNS_CLI=10.202.1.2

dns_setup() {
    mkns csb-client; mkns csb-dns-srv
    veth csb-client csb-dc0 csb-dns-srv csb-ds0
    ip -n csb-client addr add $DNS_CLI/24 dev csb-dc0
    ip -n csb-dns-srv addr add $DNS_SRV/24 dev csb-ds0
    ip -n csb-dns-srv addr add $DNS_DEAD/24 dev csb-ds0
    offload_off csb-client csb-dc0; offload_off csb-dns-srv csb-ds0
    # The client gets an IPv6 link-local address only: that is what makes glibc's
    # getaddrinfo (AI_ADDRCONFIG, as used by getent ahosts) ask A *and* AAAA, like
    # in a typical pod.  DNS itself runs over IPv4; ip6 is filtered from the capture.
    ip netns exec csb-client sysctl -qw net.ipv6.conf.all.disable_ipv6=0 \
        net.ipv6.conf.csb-dc0.accept_ra=0 net.ipv6.conf.csb-dc0.router_solicitations=0 \
        net.ipv6.conf.csb-dc0.dad_transmits=0 net.ipv6.conf.csb-dc0.disable_ipv6=0
    mkdir -p /etc/netns/csb-client
    cat >/etc/netns/csb-client/resolv.conf <<EOF
# capsift lab: Kubernetes-style pod resolv.conf (namespace "app")
nameserver $DNS_SRV
search app.svc.cluster.local svc.cluster.local cluster.local
options ndots:5
EOF
    # an empty hosts file so nothing is answered from /etc/hosts
    printf '127.0.0.1 localhost\n' >/etc/netns/csb-client/hosts

    local big=() i
    for i in $(seq 1 40); do big+=("--host-record=big.app.svc.cluster.local,10.202.60.$i"); done
    local txt
    txt=$(printf 'v=capsift-lab-%03d;' $(seq 1 20))   # 20*18 = 360 chars per string
    bg csb-dns-srv dnsmasq --keep-in-foreground --conf-file=/dev/null --no-hosts --no-resolv \
        --no-poll --bind-interfaces --listen-address=$DNS_SRV --listen-address=$DNS_DEAD \
        --user=root --pid-file= --log-queries --log-facility="$TMP/dnsmasq-$1.log" \
        --local=/cluster.local/ --local=/#/ \
        --host-record=web.app.svc.cluster.local,10.202.2.10 \
        --host-record=api.app.svc.cluster.local,10.202.50.11 \
        --host-record=db.data.svc.cluster.local,10.202.50.20 \
        --host-record=kube-dns.kube-system.svc.cluster.local,$DNS_SRV \
        --host-record=api.github.com,203.0.113.10 \
        --host-record=example.com,203.0.113.20 \
        "${big[@]}" \
        --txt-record="big-txt.app.svc.cluster.local,\"${txt:0:250}\",\"${txt:100:250}\",\"${txt:50:250}\""
    DNSMASQ_PID=$BG_PID
    local i
    for i in $(seq 50); do
        ip netns exec csb-client dig +time=1 +tries=1 +short @$DNS_SRV kube-dns.kube-system.svc.cluster.local >/dev/null 2>&1 && break
        sleep 0.1
    done
}

lookup() { # glibc lookup inside the client namespace (uses /etc/netns/csb-client/resolv.conf)
    local rc=0
    ip netns exec csb-client getent ahosts "$1" >"$TMP/getent.out" 2>&1 || rc=$?
    log "  getent ahosts $1 -> rc=$rc $(awk 'NR==1{print $1}' "$TMP/getent.out")"
    sleep 0.3
}

lab_dns() {
    log "DNS lab: dns-ndots-storm.pcap"
    teardown_ns
    dns_setup storm
    start_cap csb-client csb-dc0 "$TMP/dns-ndots-storm.pcap" 'not ip6'
    lookup api.github.com      # 3 NXDOMAIN search expansions, then the absolute name
    lookup web                 # short service name: first suffix answers
    lookup db.data             # second suffix answers
    lookup wbe                 # typo: 3 suffixes + absolute name, all NXDOMAIN
    lookup api.github.com.     # trailing dot: one A+AAAA pair only
    lookup example.com         # external name again via the search list
    lookup big                 # 40 A records > 512 bytes: TC over UDP, glibc retries over TCP
    ip netns exec csb-client dig +tcp +time=2 +tries=1 @$DNS_SRV TXT big-txt.app.svc.cluster.local >"$TMP/dig-tcp.out" 2>&1 \
        || log "  dig +tcp failed: $(tail -3 "$TMP/dig-tcp.out")"
    log "  dig +tcp TXT big-txt.app.svc.cluster.local -> $(grep -c 'IN.TXT' "$TMP/dig-tcp.out") TXT lines"
    stop_cap "$CAP_PID"
    stop_bg "$DNSMASQ_PID"
    put dns-ndots-storm.pcap

    log "DNS lab: dns-drops.pcap (drop mode: $DNS_DROP_MODE)"
    teardown_ns
    dns_setup drops
    local sel
    if [[ $DNS_DROP_MODE == random ]]; then
        sel='numgen random mod 100 < 30'
    else
        # deterministic ~30%: queries number 2, 5 and 8 of every 10 are dropped
        sel='numgen inc mod 10 { 2, 5, 8 }'
    fi
    ip netns exec csb-dns-srv nft -f - <<EOF
table inet csb_dns_drop {
    chain input {
        type filter hook input priority filter; policy accept;
        ip daddr $DNS_DEAD udp dport 53 drop
        ip daddr $DNS_DEAD tcp dport 53 drop
        ip daddr $DNS_SRV udp dport 53 $sel counter drop
    }
}
EOF
    start_cap csb-client csb-dc0 "$TMP/dns-drops.pcap" 'not ip6'
    local n
    for n in web db.data api.github.com example.com web.app.svc.cluster.local wbe api.github.com. db.data.svc.cluster.local; do
        lookup "$n"
    done
    # a "nameserver" that never answers (address exists, DNS silently dropped)
    ip netns exec csb-client dig +time=2 +tries=2 @$DNS_DEAD A web.app.svc.cluster.local >"$TMP/dig-dead.out" 2>&1 || true
    log "  dig @$DNS_DEAD -> $(grep -m1 -E 'timed out|no servers' "$TMP/dig-dead.out" || echo '?')"
    stop_cap "$CAP_PID"
    log "  nft: $(ip netns exec csb-dns-srv nft list chain inet csb_dns_drop input | grep -o 'counter packets [0-9]*' | head -1)"
    stop_bg "$DNSMASQ_PID"
    put dns-drops.pcap
    teardown_ns
}

###########################################################################
# 3. TLS
###########################################################################
# csb-tls-cli  csb-tc0 10.202.2.2/24  <---->  csb-ts0 10.202.2.10-.14/24  csb-tls-srv
#   10.202.2.10:443 good cert            (SAN web.app.svc.cluster.local, lab CA)
#   10.202.2.11:443 expired cert         (lab CA, valid 2023-01-01 .. 2024-01-01)
#   10.202.2.12:443 other-CA cert        (SAN ok, signed by "capsift other CA")
#   10.202.2.13:443 self-signed cert     (SAN ok)
#   10.202.2.14:443 good cert, ALPN http/1.1 only
TLS_CLI=10.202.2.2
TLS_NAME=web.app.svc.cluster.local

mk_ca() { # DIR CN
    local d=$1
    mkdir -p "$d/newcerts"; : >"$d/index.txt"; echo 1000 >"$d/serial"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/ca.key" 2>/dev/null
    openssl req -x509 -new -key "$d/ca.key" -sha256 -days 7300 -subj "/O=capsift lab/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" -out "$d/ca.pem"
    cat >"$d/ca.cnf" <<EOF
[ ca ]
default_ca = lab
[ lab ]
dir = $d
database = \$dir/index.txt
new_certs_dir = \$dir/newcerts
serial = \$dir/serial
certificate = \$dir/ca.pem
private_key = \$dir/ca.key
default_md = sha256
policy = pol_any
unique_subject = no
copy_extensions = none
[ pol_any ]
organizationName = optional
commonName = supplied
[ leaf ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:$TLS_NAME
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
}

mk_leaf() { # CA_DIR NAME [openssl ca date args...]
    local d=$1 n=$2; shift 2
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TMP/$n.key" 2>/dev/null
    openssl req -new -key "$TMP/$n.key" -subj "/O=capsift lab/CN=$TLS_NAME" -out "$TMP/$n.csr"
    openssl ca -batch -notext -config "$d/ca.cnf" -extensions leaf -in "$TMP/$n.csr" -out "$TMP/$n.pem" "$@" 2>"$TMP/$n.ca.log" \
        || die "openssl ca for $n failed: $(cat "$TMP/$n.ca.log")"
}

# tls_client PORT EXPECT_DESC CMD...  (runs in the client ns, records exit code)
tls_client() {
    local port=$1 what=$2 rc=0; shift 2
    ip netns exec csb-tls-cli timeout 10 "$@" >"$TMP/tls-$port.out" 2>&1 </dev/null || rc=$?
    log "  client port $port: $what -> exit $rc $(grep -oE 'curl: \([0-9]+\).*|Verify return code: .*|alert [a-z ]+' "$TMP/tls-$port.out" | head -1 || true)"
    echo "$port $rc" >>"$TMP/tls-results.txt"
    sleep 0.3
}

lab_tls() {
    log "TLS lab: tls-lab.pcap + per-connection files"
    teardown_ns
    local ca=$TMP/ca-lab other=$TMP/ca-other
    mk_ca "$ca" "capsift lab CA"
    mk_ca "$other" "capsift other CA"
    mk_leaf "$ca" good -days 3650
    mk_leaf "$ca" expired -startdate 20230101000000Z -enddate 20240101000000Z
    mk_leaf "$other" otherca -days 3650
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TMP/selfsigned.key" 2>/dev/null
    openssl req -x509 -new -key "$TMP/selfsigned.key" -sha256 -days 3650 -subj "/O=capsift lab/CN=$TLS_NAME" \
        -addext "subjectAltName=DNS:$TLS_NAME" -addext "basicConstraints=critical,CA:FALSE" \
        -addext "extendedKeyUsage=serverAuth" -out "$TMP/selfsigned.pem"
    cp "$ca/ca.pem" "$OUT/tls-lab-ca.pem"
    log "wrote $OUT/tls-lab-ca.pem ($(openssl x509 -in "$OUT/tls-lab-ca.pem" -noout -subject))"

    mkns csb-tls-cli; mkns csb-tls-srv
    veth csb-tls-cli csb-tc0 csb-tls-srv csb-ts0
    ip -n csb-tls-cli addr add $TLS_CLI/24 dev csb-tc0
    local i
    for i in 10 11 12 13 14; do ip -n csb-tls-srv addr add 10.202.2.$i/24 dev csb-ts0; done
    offload_off csb-tls-cli csb-tc0; offload_off csb-tls-srv csb-ts0

    local spids=()
    srv() { # IP CERT KEY [extra]
        local ip=$1 c=$2 k=$3; shift 3
        bg csb-tls-srv openssl s_server -accept "$ip:443" -cert "$c" -key "$k" -www -no_ticket "$@" \
            >>"$TMP/s_server-$ip.log" 2>&1 </dev/null
        spids+=("$BG_PID")
    }
    srv 10.202.2.10 "$TMP/good.pem" "$TMP/good.key"
    srv 10.202.2.11 "$TMP/expired.pem" "$TMP/expired.key"
    srv 10.202.2.12 "$TMP/otherca.pem" "$TMP/otherca.key"
    srv 10.202.2.13 "$TMP/selfsigned.pem" "$TMP/selfsigned.key"
    srv 10.202.2.14 "$TMP/good.pem" "$TMP/good.key" -alpn http/1.1
    sleep 1

    local CA=$ca/ca.pem U=https://$TLS_NAME/
    local T12=(--tlsv1.2 --tls-max 1.2) C=(curl -sS -o /dev/null --max-time 5)
    : >"$TMP/tls-results.txt"
    start_cap csb-tls-cli csb-tc0 "$TMP/tls-lab.pcap" 'not ip6'
    tls_client 40001 "ok (TLS1.2, verified)" \
        "${C[@]}" "${T12[@]}" --cacert "$CA" --local-port 40001 --resolve $TLS_NAME:443:10.202.2.10 "$U"
    tls_client 40002 "name_mismatch (SNI wrong.app.svc.cluster.local)" \
        "${C[@]}" "${T12[@]}" --cacert "$CA" --local-port 40002 --resolve wrong.app.svc.cluster.local:443:10.202.2.10 https://wrong.app.svc.cluster.local/
    tls_client 40003 "expired" \
        "${C[@]}" "${T12[@]}" --cacert "$CA" --local-port 40003 --resolve $TLS_NAME:443:10.202.2.11 "$U"
    tls_client 40004 "unknown_issuer (other CA)" \
        "${C[@]}" "${T12[@]}" --cacert "$CA" --local-port 40004 --resolve $TLS_NAME:443:10.202.2.12 "$U"
    tls_client 40005 "self_signed" \
        "${C[@]}" "${T12[@]}" --cacert "$CA" --local-port 40005 --resolve $TLS_NAME:443:10.202.2.13 "$U"
    printf 'GET / HTTP/1.0\r\n\r\n' >"$TMP/get.txt"
    ip netns exec csb-tls-cli timeout 10 openssl s_client -tls1_2 -noservername -CAfile "$CA" \
        -bind $TLS_CLI:40006 -connect 10.202.2.10:443 -ign_eof <"$TMP/get.txt" >"$TMP/tls-40006.out" 2>&1 \
        && echo "40006 0" >>"$TMP/tls-results.txt" || echo "40006 $?" >>"$TMP/tls-results.txt"
    log "  client port 40006: no SNI (openssl s_client -noservername) -> $(grep -m1 'Verify return code' "$TMP/tls-40006.out" || true)"
    sleep 0.3
    tls_client 40007 "tls13 complete" \
        "${C[@]}" --tlsv1.3 --cacert "$CA" --local-port 40007 --resolve $TLS_NAME:443:10.202.2.10 "$U"
    tls_client 40008 "tls13 aborted (client does not trust the lab CA)" \
        "${C[@]}" --tlsv1.3 --local-port 40008 --resolve $TLS_NAME:443:10.202.2.10 "$U"
    tls_client 40009 "alpn: client h2,http/1.1 -> server picks http/1.1" \
        "${C[@]}" "${T12[@]}" --http2 --cacert "$CA" --local-port 40009 --resolve $TLS_NAME:443:10.202.2.14 "$U"
    ip netns exec csb-tls-cli timeout 10 openssl s_client -tls1_2 -alpn h2 -servername $TLS_NAME -CAfile "$CA" \
        -bind $TLS_CLI:40010 -connect 10.202.2.14:443 -ign_eof <"$TMP/get.txt" >"$TMP/tls-40010.out" 2>&1 \
        && echo "40010 0" >>"$TMP/tls-results.txt" || echo "40010 $?" >>"$TMP/tls-results.txt"
    log "  client port 40010: alpn h2 only vs server http/1.1 only -> $(grep -oE 'alert [a-z ]+|ALPN protocol: .*|No ALPN negotiated' "$TMP/tls-40010.out" | head -1 || true)"
    stop_cap "$CAP_PID"
    for i in "${spids[@]}"; do stop_bg "$i"; done
    put tls-lab.pcap

    # one file per connection, cut from the combined capture
    local p name
    while read -r p name; do
        tshark -r "$OUT/tls-lab.pcap" -Y "tcp.port==$p" -F pcap -w "$OUT/$name" 2>/dev/null
        log "wrote $OUT/$name ($(capinfos -c -M "$OUT/$name" | awk '/Number of packets/{print $NF}') packets)"
    done <<EOF
40001 tls-ok.pcap
40002 tls-name-mismatch.pcap
40003 tls-expired.pcap
40004 tls-unknown-issuer.pcap
40005 tls-self-signed.pcap
40006 tls-no-sni.pcap
40007 tls13-complete.pcap
40008 tls13-aborted.pcap
40009 tls-alpn-h2-refused.pcap
40010 tls-alpn-mismatch.pcap
EOF
    teardown_ns
}

###########################################################################
# 4. MTU / PMTUD
###########################################################################
# csb-mtu-cli csb-mc0 10.202.3.2/24 mtu 1500
#        <--> csb-mr0 10.202.3.1/24 MTU 1400  [csb-mtu-rtr, ip_forward=1]  csb-mr1 10.202.4.1/24 mtu 1500
#        <--> csb-ms0 10.202.4.2/24 mtu 1500 csb-mtu-srv (python3 -m http.server 80)
# The 1400 MTU is only on the ROUTER's egress toward the client (the client's
# end of that veth stays at 1500), so both endpoints advertise MSS 1460 and the
# server's full-size 1500-byte segments must be shrunk via PMTUD at the router.
mtu_setup() { # OFFLOADS(on|off)
    mkns csb-mtu-cli; mkns csb-mtu-rtr; mkns csb-mtu-srv
    veth csb-mtu-cli csb-mc0 csb-mtu-rtr csb-mr0
    veth csb-mtu-rtr csb-mr1 csb-mtu-srv csb-ms0
    ip -n csb-mtu-cli addr add 10.202.3.2/24 dev csb-mc0
    ip -n csb-mtu-rtr addr add 10.202.3.1/24 dev csb-mr0
    ip -n csb-mtu-rtr addr add 10.202.4.1/24 dev csb-mr1
    ip -n csb-mtu-srv addr add 10.202.4.2/24 dev csb-ms0
    ip -n csb-mtu-rtr link set csb-mr0 mtu 1400
    ip -n csb-mtu-cli route add default via 10.202.3.1
    ip -n csb-mtu-srv route add default via 10.202.4.1
    ip netns exec csb-mtu-rtr sysctl -qw net.ipv4.ip_forward=1
    local ns
    for ns in csb-mtu-cli csb-mtu-srv; do
        # classic PMTUD only: no RFC 4821 black-hole probing, no PMTU cache reuse
        ip netns exec $ns sysctl -qw net.ipv4.tcp_mtu_probing=0 net.ipv4.ip_no_pmtu_disc=0
    done
    if [[ $1 == off ]]; then
        offload_off csb-mtu-cli csb-mc0; offload_off csb-mtu-rtr csb-mr0
        offload_off csb-mtu-rtr csb-mr1; offload_off csb-mtu-srv csb-ms0
    else
        # default veth offloads (TSO/GSO on) and GRO on at the receivers
        ip netns exec csb-mtu-cli ethtool -K csb-mc0 gro on >/dev/null 2>&1 || true
        ip netns exec csb-mtu-rtr ethtool -K csb-mr1 gro on >/dev/null 2>&1 || true
    fi
    mkdir -p "$TMP/www"
    [[ -f $TMP/www/blob.bin ]] || head -c 204800 /dev/urandom >"$TMP/www/blob.bin"
    bg csb-mtu-srv python3 -m http.server 80 --bind 10.202.4.2 --directory "$TMP/www" >"$TMP/http.log" 2>&1
    HTTP_PID=$BG_PID
    local i
    for i in $(seq 50); do
        ip netns exec csb-mtu-srv curl -s -o /dev/null --max-time 1 http://10.202.4.2/ && break
        sleep 0.1
    done
}

mtu_run() { # NAME OFFLOADS BLACKHOLE(yes|no)
    local name=$1 rc=0
    log "MTU lab: $name (offloads $2, blackhole $3)"
    teardown_ns
    mtu_setup "$2"
    if [[ $3 == yes ]]; then
        ip netns exec csb-mtu-rtr nft -f - <<EOF
table inet csb_pmtu_blackhole {
    chain output {
        type filter hook output priority filter; policy accept;
        icmp type destination-unreachable icmp code frag-needed counter drop
    }
    chain forward {
        type filter hook forward priority filter; policy accept;
        icmp type destination-unreachable icmp code frag-needed counter drop
    }
}
EOF
    fi
    start_cap csb-mtu-srv csb-ms0 "$TMP/$name.pcap" 'not ip6'
    local ccap=$CAP_PID
    start_cap csb-mtu-cli csb-mc0 "$TMP/$name-client.pcap" 'not ip6'
    local ccap2=$CAP_PID
    ip netns exec csb-mtu-cli curl -sS -o /dev/null --max-time 8 --local-port 41000 \
        -w '%{http_code} %{size_download} bytes in %{time_total}s' http://10.202.4.2/blob.bin >"$TMP/curl-$name.out" 2>&1 || rc=$?
    log "  curl exit $rc: $(tr '\n' ' ' <"$TMP/curl-$name.out")"
    stop_cap "$ccap2"; stop_cap "$ccap"
    if [[ $3 == yes ]]; then
        log "  nft: $(ip netns exec csb-mtu-rtr nft list chain inet csb_pmtu_blackhole output | grep -o 'counter packets [0-9]*')"
    fi
    log "  server route cache: $(ip -n csb-mtu-srv route get 10.202.3.2 | tr '\n' ' ')"
    stop_bg "$HTTP_PID"
    put "$name.pcap"
    put "$name-client.pcap"
    teardown_ns
}

lab_mtu() {
    mtu_run mtu-blackhole off yes
    mtu_run mtu-pmtud-ok off no
    mtu_run mtu-offload-superframes on no
}

wants dns && lab_dns
wants tls && lab_tls
wants mtu && lab_mtu
log "done; outputs in $OUT"
