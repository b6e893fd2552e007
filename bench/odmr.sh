#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/odmr.sh - delivery of N queued messages to one local smtp-sink, side
# by side in one run:
#   postfix  the messages wait in Postfix's own queue (a transport listed in
#            defer_transports); `postqueue -f` lets Postfix's smtp client
#            deliver them to the sink;
#   odmr     the same messages wait in waypost-odmrd's spool (Postfix handed
#            them over LMTP); a customer logs in, says ATRN, and the reversed
#            session delivers them to the same sink (the customer splices the
#            connection to the sink, as fetchmail does, in Python with large
#            reads);
#   etrn     the same messages wait in a held queue of waypost-odmrd's spool
#            (router.hold_queues, Postfix handed them over LMTP); `waypost
#            queue flush` releases it as an ETRN would, and odmrd's SMTP
#            client delivers them to the same sink.
# Only the delivery is timed (queue full -> sink has all).  Prints the
# rates and the ratios odmr/postfix (target >= 0.8) and etrn/postfix
# (target >= 1.0).
#
#   bench/odmr.sh BUILD_DIR [MESSAGES]     (default 10000)
set -u
build=$(cd "${1:-build/dev}" && pwd)
N=${2:-10000}
top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
top_builddir=$build
export top_srcdir top_builddir
. "$top_srcdir/t/e2e/lib.sh"
e2e_need || exit 1
e2e_init
W="$E2E/waypost"
mkdir -p "$W"
e2e_free_port SMTP
e2e_free_port ODMR
e2e_free_port SINK
cat > "$W/router.table" <<T
Relay:domain1.dom = domain1.dom.via
Relay:held2.dom = [127.0.0.1]:$SINK.via
T
echo 'cust1:{PLAIN}secret' > "$W/odmr.passwd"
cat > "$W/waypost.conf" <<C
log = { level = "warning"; };
router: { table = "router.table"; main_domain = "company.dom"; odmr_queues = [ "domain1.dom" ];
          hold_queues = [ "[127.0.0.1]" ]; };
odmr: { lmtp_listen = "unix:$W/odmr.sock"; listen = [ "inet:127.0.0.1:$ODMR" ]; spool = "spool";
        control_socket = "$W/control.sock";
        passwd_file = "odmr.passwd"; accounts = ( { user = "cust1"; queues = [ "domain1.dom" ]; } ); };
C
e2e_bg odmrd "$build/odmr/waypost-odmrd" -f -c "$W/waypost.conf"
i=0; while [ ! -S "$W/odmr.sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
e2e_sink cust "127.0.0.1:$SINK" || exit 1
cat > "$E2E/transport" <<T
held.dom   held:[127.0.0.1]:$SINK
domain1.dom lmtp:unix:$W/odmr.sock
held2.dom  lmtp:unix:$W/odmr.sock
T
cat > "$E2E/main.cf" <<M
relay_domains = held.dom, domain1.dom, held2.dom
transport_maps = texthash:$E2E/transport
defer_transports = held
default_process_limit = 100
# Deferred mail stays put until the timed flush (the test defaults of 1 s
# would cycle 10 000 messages between deferred and active all along).
queue_run_delay = 3600s
minimal_backoff_time = 3600s
maximal_backoff_time = 3600s
M
echo "held      unix  -       -       n       -       -       smtp" > "$E2E/master.cf"
e2e_postfix "$SMTP" "$E2E/main.cf" "$E2E/master.cf" >/dev/null || exit 1
inject() { # inject DOMAIN: N messages into Postfix
    smtp-source -c -s 20 -m "$N" -f sender@client.test -t "rcpt@$1" 127.0.0.1:"$SMTP" >/dev/null 2>&1
}
rate() { awk -v n="$2" -v t0="$3" -v t1="$4" -v name="$1" \
    'BEGIN { printf "%-8s %6d delivered in %6.2f s  %7.1f msg/s\n", name, n, t1 - t0, n / (t1 - t0) }'; }

# Postfix: fill its queue (held), then time the flush to the sink.
inject held.dom
# Counted in the spool: showq over 10 000 messages twice a second would
# slow the queue manager it waits for.
deferred() { find "$PFSPOOL/deferred" -type f | wc -l; }
i=0; while [ "$(deferred)" -lt "$N" ] && [ $i -lt 600 ]; do
    sleep 0.5; i=$((i + 1)); done
[ "$(deferred)" -ge "$N" ] || echo "# only $(deferred) of $N messages deferred after 5 minutes" >&2
e2e_postconf -e "defer_transports =" && e2e_reload && sleep 1
echo "# $N messages held in Postfix's queue" >&2
t0=$(date +%s.%N)
postqueue -c "$PFCONF" -f
e2e_sink_wait cust "$N" 600
t1=$(date +%s.%N)
pf_n=$(e2e_sink_count cust)
rate postfix "$pf_n" "$t0" "$t1" | tee "$E2E/postfix.rate"
rm -f "$E2E"/sink-cust/*

# ODMR: fill the spool (Postfix -> LMTP), then time ATRN to the same sink.
inject domain1.dom
e2e_wait_queue_empty 600 >/dev/null
spooled=$(find "$W/spool/domain1.dom" -type f ! -name '.*' | wc -l)
t0=$(date +%s.%N)
"$E2E_PY" - "$ODMR" "$SINK" <<'P'
import base64, hashlib, hmac, selectors, socket, sys
odmr = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
f = odmr.makefile("rb")
def reply():
    while True:
        l = f.readline().decode()
        if l[3:4] != "-":
            return l
reply()
def cmd(c):
    odmr.sendall(c.encode() + b"\r\n")
    return reply()
cmd("EHLO customer.test")
challenge = base64.b64decode(cmd("AUTH CRAM-MD5")[4:].strip())
digest = hmac.new(b"secret", challenge, hashlib.md5).hexdigest()
cmd(base64.b64encode(b"cust1 " + digest.encode()).decode())
r = cmd("ATRN domain1.dom")
if not r.startswith("250"):
    sys.exit("ATRN: " + r)
sink = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
sel = selectors.DefaultSelector()
sel.register(odmr, selectors.EVENT_READ, sink)
sel.register(sink, selectors.EVENT_READ, odmr)
while True:
    for key, _ in sel.select():
        d = key.fileobj.recv(1 << 20)
        if not d:
            sys.exit(0)
        key.data.sendall(d)
P
rc=$?
t1=$(date +%s.%N)
od_n=$(e2e_sink_count cust)
rate odmr "$od_n" "$t0" "$t1" | tee "$E2E/odmr.rate"
[ "$rc" -eq 0 ] || echo "customer session failed ($rc)"
rm -f "$E2E"/sink-cust/*

# ETRN: fill the held queue (Postfix -> LMTP), then time its release to the same sink.
inject held2.dom
e2e_wait_queue_empty 600 >/dev/null
held_n=$(find "$W/spool/[127.0.0.1]" -type f ! -name '.*' | wc -l)
t0=$(date +%s.%N)
"$build/waypost" -c "$W/waypost.conf" queue flush '[127.0.0.1]' >&2
e2e_sink_wait cust "$held_n" 600
t1=$(date +%s.%N)
et_n=$(e2e_sink_count cust)
rate etrn "$et_n" "$t0" "$t1" | tee "$E2E/etrn.rate"

echo "spooled $spooled (ATRN) and $held_n (held) of $N; delivered by Postfix $pf_n, by ATRN $od_n, by ETRN release $et_n"
awk '{ r[FILENAME] = $(NF-1) } END {
        p = r[ARGV[1]]; printf "ratio odmr/postfix = %.2f (target >= 0.8)\n", r[ARGV[2]] / p;
        printf "ratio etrn/postfix = %.2f (target >= 1.0)\n", r[ARGV[3]] / p }' \
    "$E2E/postfix.rate" "$E2E/odmr.rate" "$E2E/etrn.rate"
