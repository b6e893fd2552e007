#!/bin/sh
# SPDX-License-Identifier: MIT
# Black-box protocol tests of waypost-odmrd (t/odmr/proto.py): LMTP intake,
# the customer side (EHLO, STARTTLS, AUTH CRAM-MD5/PLAIN, ATRN and the
# reversed delivery), DSNs for refused recipients, over 100 hostile
# sessions while a good one is served, and the connection limit.
. "$top_srcdir/t/lib.sh"
scratch
ODMRD="$top_builddir/odmr/waypost-odmrd"
base=$(free_ports 3)   # customers, customers over TLS, metrics
cat > "$dir/router.table" <<T
Relay:domain1.dom  = domain1.dom.via
Relay:domain2.dom  = domain1.dom.via
Relay:domain3.dom  = domain1.dom.via
Relay:other.dom    = other.dom.via
Relay:nothing.dom  = nothing.dom.via
Relay:held.dom     = held.dom.via
T
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/key.pem" -out "$dir/cert.pem" -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
# Dovecot's schemes, made by doveadm pw for the password "secret":
# {PLAIN}, {CRAM-MD5} (the HMAC-MD5 contexts), {SHA512-CRYPT}.
cat > "$dir/odmr.passwd" <<'P'
# user:{SCHEME}data:uid:gid:gecos:home:shell:extra
cust1:{PLAIN}secret::::::
cust2:{CRAM-MD5}cd3ba7deaad6e5ca23448ba42e379747a9e0f7f1fbc00c8a81bbaac395731b56
hashed:{SHA512-CRYPT}$6$AytnFIdlnMrDXO.G$5gb3ivYdX9HI1ciMe5Yxl5eNFS/fYV.Ot0rJ7mz2M1Mjg5E6U4Muv/hKSgJew5sUt2bTNPcgECcAFm7BhMDwM1
cust3:{PLAIN}secret
P
mkdir -p "$dir/dsn"
cat > "$dir/fake-sendmail" <<S
#!/bin/sh
# Records a report the daemon injects: text in N.msg, arguments in N.args.
n=\$(date +%s%N)
printf '%s\n' "\$@" > "$dir/dsn/\$n.args"
cat > "$dir/dsn/\$n.msg"
S
chmod 755 "$dir/fake-sendmail"
cat > "$dir/waypost.conf" <<C
router: { table = "router.table"; main_domain = "company.dom";
          odmr_queues = [ "domain1.dom", "other.dom", "nothing.dom" ];
          hold_queues = [ "held.dom" ]; };
odmr: {
  lmtp_listen = "unix:$dir/lmtp.sock";
  listen = [ "inet:127.0.0.1:$base", "tls:inet:127.0.0.1:$((base + 1))" ];
  spool = "spool"; passwd_file = "odmr.passwd"; tls_cert = "cert.pem"; tls_key = "key.pem";
  control_socket = "$dir/control.sock"; # held queues (ETRN) are released through it
  hostname = "odmr.test";
  accounts = ( { user = "cust1"; queues = [ "domain1.dom" ]; },
               { user = "cust2"; queues = [ "other.dom" ]; },
               { user = "hashed"; queues = [ "nothing.dom" ]; } );
  timeout = 3; auth_failure_delay = 1; max_message_size = 65536; max_connections = 60;
  # Every session here comes from 127.0.0.1: the per-address limits have a
  # test of their own (t/odmr/hostile.sh).
  max_connections_per_ip = 0; auth_penalty = false;
  dsn_via = "sendmail:$dir/fake-sendmail";
  metrics = "inet:127.0.0.1:$((base + 2))";
};
C
"$ODMRD" -f -c "$dir/waypost.conf" 2> "$dir/odmrd.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; [ "${ODMR_KEEP:-0}" = 1 ] && echo "# kept $dir" || rm -rf "$dir"' EXIT
i=0; while [ ! -S "$dir/lmtp.sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
check "daemon starts and listens" [ -S "$dir/lmtp.sock" ]
kill -0 "$pid" 2>/dev/null || { echo "# the daemon did not start:"; sed 's/^/#   /' "$dir/odmrd.log"; }
python3 "$top_srcdir/t/odmr/proto.py" "$dir" "$base" $((base + 1)) $((base + 2)) > "$dir/proto.out" 2>&1; rc=$?
grep -v '^1\.\.' "$dir/proto.out"  # its ok/not ok lines count as tests of their own
check "protocol tests pass" [ "$rc" -eq 0 ]
check "daemon survived everything" kill -0 "$pid"
# The metrics endpoint agrees with the decision lines (waypost-odmrd(8), LOGGING).
scrape() { scrape_metrics $((base + 2)) > "$dir/metrics.txt"; }
scrape
metric() { grep -v '^#' "$dir/metrics.txt" | grep -F "$1 " | awk '{ print $NF }'; }
for pair in "intake_total{result=\"queued\"}|event=intake .* result=queued " \
            "intake_total{result=\"refused\"}|event=intake .* result=refused " \
            "sessions_total{result=\"authenticated\"}|event=session .* result=authenticated\$" \
            "sessions_total{result=\"failed\"}|event=session .* result=failed\$" \
            "atrn_total{result=\"released\"}|event=atrn .* result=released\$" \
            "atrn_total{result=\"refused\"}|event=atrn .* result=refused\$" \
            "deliveries_total{result=\"sent\"}|event=delivery .* result=sent " \
            "deliveries_total{result=\"refused\"}|event=delivery .* result=refused "; do
    m=${pair%%|*} re=${pair#*|}
    want=$(grep -Ec "$re" "$dir/odmrd.log"); got=$(metric "waypost_odmr_$m")
    check "metrics: waypost_odmr_$m $got = $want decision lines" [ "$got" = "$want" ]
done
check "metrics: something was queued and released" [ "$(metric 'waypost_odmr_intake_total{result="queued"}')" -gt 0 ]
spooled=$(awk '/^waypost_odmr_queue_messages\{/ { n += $NF } END { print n + 0 }' "$dir/metrics.txt")
listed=$("$top_builddir/waypost" -c "$dir/waypost.conf" odmr list 2>/dev/null | awk '$1 ~ /^(domain1|other|nothing|held)\.dom$/ { n += $2 } END { print n + 0 }')
check "metrics: messages waiting ($spooled) as waypost odmr list counts ($listed)" [ "$spooled" = "$listed" ]
# Each queue's gauges name the kind and count `waypost queue list` shows
# (held.dom: held mail, in the same spool since issue 15).
"$top_builddir/waypost" -c "$dir/waypost.conf" queue list > "$dir/queues.out" 2>&1
sed -n 's/^waypost_odmr_queue_messages{queue="\([^"]*\)",kind="\([^"]*\)"} \([0-9]*\)$/\1 \2 \3/p' \
    "$dir/metrics.txt" > "$dir/gauges.txt"
check "metrics: the held queue has its gauges" grep -q '^held\.dom held 1$' "$dir/gauges.txt"
while read -r q kind n; do
    case $kind in atrn) k=ATRN ;; held+atrn) k=held+ATRN ;; none) k='(none)' ;; *) k=$kind ;; esac
    check "metrics: $q kind=$kind messages=$n as waypost queue list" \
        awk -v q="$q" -v k="$k" -v n="$n" '$1 == q && $2 == k && $3 == n { f = 1 } END { exit !f }' "$dir/queues.out"
done < "$dir/gauges.txt"
if command -v promtool >/dev/null 2>&1; then
    check "promtool check metrics passes" sh -c "promtool check metrics < '$dir/metrics.txt'"
fi
"$top_builddir/waypost" -c "$dir/waypost.conf" stats > "$dir/stats.out" 2>&1
sed 's/^/# /' "$dir/stats.out"
"$top_builddir/waypost" -c "$dir/waypost.conf" stats --json > "$dir/stats.json" 2>&1
check "waypost stats --json: held.dom, kind held, 1 message" python3 -c '
import json, sys
q = [q for q in json.load(open(sys.argv[1]))["odmr"]["queues"] if q["queue"] == "held.dom"]
sys.exit(not (len(q) == 1 and q[0]["kind"] == "held" and q[0]["messages"] == 1))' "$dir/stats.json"
while read -r q kind n; do
    [ "$n" -gt 0 ] || continue
    check "waypost stats lists $q ($kind) with $n" grep -Eq "^  $q +$kind +$n +[0-9]+ +[0-9]+\$" "$dir/stats.out"
done < "$dir/gauges.txt"
# SIGHUP with a broken configuration: refused with file:line, the daemon
# keeps serving on the one it had; then a good one (an account fewer) is
# taken.
cp "$dir/waypost.conf" "$dir/good.conf"
printf 'odmr: { timeout = 0; };\n' >> "$dir/waypost.conf" # a second odmr group
kill -HUP "$pid"; sleep 0.5
check "a broken reload is refused with file:line" grep -q "$dir/waypost.conf:[0-9]*: " "$dir/odmrd.log"
check "and says the old configuration stays" grep -q "reload failed: keeping the configuration" "$dir/odmrd.log"
scrape
check "metrics: the failed reload is counted, generation still 0" \
    [ "$(metric 'waypost_reloads_total{result="failure"}') $(metric waypost_config_generation)" = "1 0" ]
check "metrics: the last reload failed" [ "$(metric waypost_config_last_reload_success)" = 0 ]
greeting=$(python3 -c 'import socket, sys; s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5); print(s.makefile().readline().strip())' "$base")
check "the daemon still greets customers ($greeting)" sh -c 'case "$1" in "220 "*) exit 0 ;; esac; exit 1' sh "$greeting"
grep -v 'user = "cust2"' "$dir/good.conf" > "$dir/waypost.conf"
kill -HUP "$pid"; sleep 0.5
check "a good reload is taken" grep -q "reloaded $dir/waypost.conf: 2 ODMR accounts" "$dir/odmrd.log"
scrape
check "metrics: reloads 1 success, 1 failure, generation 1, the last one succeeded" [ \
    "$(metric 'waypost_reloads_total{result="success"}') $(metric 'waypost_reloads_total{result="failure"}') $(metric waypost_config_generation) $(metric waypost_config_last_reload_success)" = "1 1 1 1" ]
now=$(date +%s); last=$(metric waypost_config_last_reload_timestamp_seconds)
check "metrics: the last reload's time ($last) is now ($now)" [ "$last" -le "$now" -a "$last" -ge $((now - 10)) ]
# A connection still open at SIGTERM is dropped cleanly (no leak under ASan).
python3 -c 'import socket, sys, time; s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); time.sleep(3)' \
    "$base" & held=$!
sleep 0.5
kill "$pid"; wait "$pid"; rc=$?
check "SIGTERM stops it cleanly with a connection open (exit 0)" [ "$rc" -eq 0 ]
kill "$held" 2>/dev/null; wait "$held" 2>/dev/null
check "SIGTERM removed the LMTP socket" [ ! -e "$dir/lmtp.sock" ]
pid=
[ "${ODMR_TEST_VERBOSE:-0}" = 1 ] && sed 's/^/# /' "$dir/odmrd.log"
grep -q "ready: intake unix:$dir/lmtp.sock, 2 customer endpoints" "$dir/odmrd.log"; check "startup is logged" [ $? -eq 0 ]
done_testing
