#!/bin/sh
# SPDX-License-Identifier: MIT
# waypost-odmrd against hostile neighbours and clients (issue 17): 2 000
# idle connections on the customer port do not stop the LMTP intake; the
# per-address connection limit; NOOPs do not stretch the time to
# authenticate; 200 parallel AUTH guessers from one address get at most a
# few guesses a second; a bare CR in an envelope address is refused at
# MAIL/RCPT; out of descriptors the daemon neither spins nor floods its log
# and serves again once descriptors free; an unprivileged user cannot
# connect to the default intake socket.  Counters: the NOOP session is one
# auth timeout; the guessers' waits for their penalty slots are not in the
# latency histogram.
. "$top_srcdir/t/lib.sh"
scratch
. "$top_srcdir/t/daemon/lib.sh"
ODMRD="$top_builddir/odmr/waypost-odmrd"
H="$top_srcdir/t/odmr/hostile.py"
port=$(free_ports 2) # customers, metrics
printf 'Relay:domain1.dom = domain1.dom.via\n' > "$dir/router.table"
printf 'cust1:{PLAIN}secret::::::\n' > "$dir/odmr.passwd"
M='metrics = "inet:127.0.0.1:'$((port + 1))'";'
# metric NAME{LABELS}: its value in a fresh scrape.
metric() {
    curl -s "http://127.0.0.1:$((port + 1))/metrics" | grep -v '^#' | grep -F "$1 " | awk '{ print $NF }'
}
write_conf() { # write_conf EXTRA-ODMR-SETTINGS
    cat > "$dir/waypost.conf" <<C
log = { level = "notice"; };
router: { table = "router.table"; main_domain = "company.dom"; odmr_queues = [ "domain1.dom" ]; };
odmr: {
  lmtp_listen = "unix:$dir/lmtp.sock";
  listen = [ "inet:127.0.0.1:$port" ];
  spool = "spool"; passwd_file = "odmr.passwd"; hostname = "odmr.test";
  accounts = ( { user = "cust1"; queues = [ "domain1.dom" ]; } );
  dsn_via = "sendmail:/bin/true";
  $1
};
C
}
start() {
    "$ODMRD" -f -c "$dir/waypost.conf" 2>> "$dir/log" &
    pid=$!
    wait_until 10 '[ -S "$dir/lmtp.sock" ]'
}
trap 'touch "$dir/release"; kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
py() { python3 "$H" "$@" > "$dir/py.out" 2>&1; _rc=$?; sed 's/^/# /' "$dir/py.out"; return $_rc; }

write_conf "max_connections_per_ip = 0; auth_timeout = 3; $M"
start
check "daemon starts" kill -0 "$pid"
# The client holds 2 000 sockets: its own descriptor limit, in its subshell.
check "2 000 idle connections to the customer port: the intake still takes mail" \
    sh -c '(ulimit -n 4096 && python3 "$1" flood "$2" "$3" 2000) > "$2/py.out" 2>&1; rc=$?; sed "s/^/# /" "$2/py.out"; exit $rc' \
    sh "$H" "$dir" "$port"
sleep 0.5
n=$(grep -c "refusing a connection" "$dir/log")
check "... refusals logged once a minute, not once each ($n lines)" [ "$n" -le 2 ]

write_conf "auth_timeout = 3; $M" # max_connections_per_ip at its default, 10
kill -HUP "$pid"
wait_until 10 'grep -q "reloaded" "$dir/log"'
check "12 connections from one address: 2 refused (max_connections_per_ip 10)" py perip "$port" 10
auth0=$(metric 'waypost_odmr_timeouts_total{protocol="odmr",kind="auth"}')
idle0=$(metric 'waypost_odmr_timeouts_total{protocol="odmr",kind="idle"}')
check "NOOPs do not extend odmr.auth_timeout" py noop "$port" 3
auth1=$(metric 'waypost_odmr_timeouts_total{protocol="odmr",kind="auth"}')
idle1=$(metric 'waypost_odmr_timeouts_total{protocol="odmr",kind="idle"}')
check "metrics: that was one auth timeout ($auth0 -> $auth1), no idle one ($idle0 -> $idle1)" \
    [ "$((auth1 - auth0)) $((idle1 - idle0))" = "1 0" ]
check "a bare CR in an envelope address: 501 at MAIL and RCPT" py cr "$dir"
write_conf "$M" # the guessers get the default odmr.auth_timeout: time to wait for their turn
kill -HUP "$pid"
wait_until 10 '[ "$(grep -c "reloaded" "$dir/log")" -ge 2 ]'
before=$(grep -c "authentication failed" "$dir/log")
HIST='waypost_odmr_command_duration_seconds'
sum0=$(metric "${HIST}_sum"); count0=$(metric "${HIST}_count")
check "200 parallel AUTH guessers from one address: a few guesses a second" py guess "$dir" "$port" 8
n=$(( $(grep -c "authentication failed" "$dir/log") - before ))
check "... the log agrees ($n failures in 8 s)" [ "$n" -le 24 ]
sum1=$(metric "${HIST}_sum"); count1=$(metric "${HIST}_count")
# Each checked guess waited its penalty slot, then odmr.auth_failure_delay:
# seconds each, none of it in the histogram.
check "... metrics: $((count1 - count0)) commands measured, $n of them failed guesses, in $sum0 -> $sum1 s" \
    awk -v a="$sum0" -v b="$sum1" -v n="$((count1 - count0))" -v f="$n" 'BEGIN { exit !(n >= f && f > 0 && b - a < 1.0) }'
check "... and a good login from elsewhere is not delayed" python3 - "$port" <<'PY'
import base64, hashlib, hmac, socket, sys, time
# From 127.0.0.2: another address, no penalty.
s = socket.socket(); s.settimeout(5); s.bind(("127.0.0.2", 0)); s.connect(("127.0.0.1", int(sys.argv[1])))
f = s.makefile("rb")
def rep():
    while True:
        l = f.readline()
        if l[3:4] != b"-": return l
rep(); s.sendall(b"EHLO x\r\n"); rep(); s.sendall(b"AUTH CRAM-MD5\r\n")
ch = base64.b64decode(rep()[4:].strip())
t0 = time.time()
s.sendall(base64.b64encode(b"cust1 " + hmac.new(b"secret", ch, hashlib.md5).hexdigest().encode()) + b"\r\n")
r = rep()
sys.exit(0 if r.startswith(b"235") and time.time() - t0 < 1 else 1)
PY
stop_daemon

# Out of descriptors: the daemon's limit is low, the client holds more
# connections than it has descriptors.
write_conf 'max_connections_per_ip = 0;'
: > "$dir/log"
(ulimit -n 48 && exec "$ODMRD" -f -c "$dir/waypost.conf") 2>> "$dir/log" &
pid=$!
wait_until 10 '[ -S "$dir/lmtp.sock" ]'
rm -f "$dir/release"
python3 "$H" hold "$port" 100 "$dir/release" > "$dir/hold.out" 2>&1 &
hpid=$!
wait_until 10 'grep -q holding "$dir/hold.out"'
sed 's/^/# /' "$dir/hold.out"
cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
c0=$(cpu); sleep 3; c1=$(cpu)
ticks=$((c1 - c0)); hz=$(getconf CLK_TCK)
check "at the descriptor limit the daemon does not spin ($ticks ticks of $((3 * hz)) in 3 s)" [ "$ticks" -le $((3 * hz / 10)) ]
lines=$(wc -l < "$dir/log")
check "... and its log grows by a few lines ($lines)" [ "$lines" -le 10 ]
check "... one warning for the episode" [ "$(grep -c 'not accepting connections until a descriptor is free' "$dir/log")" -eq 1 ]
touch "$dir/release"; wait "$hpid"
greeting=$(python3 -c 'import socket, sys; s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5); print(s.makefile().readline().strip())' "$port" 2>&1)
check "descriptors free again: served ($greeting)" sh -c 'case "$1" in "220 "*) exit 0 ;; esac; exit 1' sh "$greeting"
check "... and the log says so" wait_until 5 'grep -q "accepting connections again" "$dir/log"'

# Least privilege: the intake socket (default mode) is closed to others.
mode=$(stat -c %a "$dir/lmtp.sock")
check "the intake socket is 0660 by default ($mode)" [ "$mode" = 660 ]
# The system's python (a per-user one may be out of nobody's reach); that
# nobody can run it at all is checked first.
PY=/usr/bin/python3
if command -v setpriv >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && [ -x "$PY" ] &&
   setpriv --reuid=nobody --regid=nogroup --clear-groups "$PY" -c pass 2>/dev/null; then
    chmod 755 "$dir"
    check "user nobody cannot connect to the intake" sh -c '! setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/bin/python3 -c "import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])" "$1" 2>/dev/null' sh "$dir/lmtp.sock"
    check "... while root (or group postfix) can" python3 -c "import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])" "$dir/lmtp.sock"
else
    echo "# skipped: the unprivileged connect needs root, setpriv and /usr/bin/python3"
fi
stop_daemon
done_testing
