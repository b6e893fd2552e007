#!/bin/sh
# SPDX-License-Identifier: MIT
# waypost-odmrd's life on the daemon skeleton: SIGHUP and SIGUSR1 reload
# under LMTP intake (every message stored), a broken configuration keeps
# the old one, a changed log.level applies on reload, sd_notify READY /
# RELOADING / STOPPING; a second instance is refused before it touches a
# socket, a stale pidfile does not block, a failed start leaves nothing;
# with odmr.user set on a fresh spool, mail is stored (needs root).
. "$top_srcdir/t/lib.sh"
scratch
. "$top_srcdir/t/daemon/lib.sh"
ODMRD="$top_builddir/odmr/waypost-odmrd"
port=$(free_ports 2)
printf 'Relay:domain1.dom = domain1.dom.via\n' > "$dir/router.table"
printf 'cust1:{PLAIN}secret::::::\n' > "$dir/odmr.passwd"
write_conf() { # write_conf LEVEL [USER] [CUSTOMER-PORT]
    cat > "$dir/waypost.conf" <<C
log = { level = "$1"; };
router: { table = "router.table"; main_domain = "company.dom"; odmr_queues = [ "domain1.dom" ]; };
odmr: {
  lmtp_listen = "unix:$dir/lmtp.sock";
  listen = [ "inet:127.0.0.1:${3:-$port}" ];
  spool = "spool"; passwd_file = "odmr.passwd"; hostname = "odmr.test";
  accounts = ( { user = "cust1"; queues = [ "domain1.dom" ]; } );
  pidfile = "$dir/odmrd.pid";
  user = "${2:-}";
};
C
}
lmtp_ok() { # one LMTP session on $dir/lmtp.sock delivering one message
    python3 - "$dir/lmtp.sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1]); f = s.makefile("rb")
def rep():
    while True:
        l = f.readline()
        if len(l) < 4 or l[3:4] != b"-": return l[:3]
assert rep() == b"220"
for cmd, want in ((b"LHLO t", b"250"), (b"MAIL FROM:<s@example.org>", b"250"), (b"RCPT TO:<u@domain1.dom>", b"250"),
                  (b"DATA", b"354"), (b"Subject: one\r\n\r\nx\r\n.", b"250"), (b"QUIT", b"221")):
    s.sendall(cmd + b"\r\n")
    got = rep()
    assert got == want, (cmd, got)
PY
}
write_conf notice
notify_start
"$ODMRD" -f -c "$dir/waypost.conf" 2> "$dir/log" &
pid=$!
trap 'touch "$dir/stop"; kill $pid $npid $lpid $spid $hpid 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
check "READY=1 once listening" wait_until 10 '[ "$(notify_count READY=1)" -ge 1 ]'
check "the pidfile names it" [ "$(cat "$dir/odmrd.pid")" = "$pid" ]

python3 "$top_srcdir/t/daemon/load.py" lmtp "$dir/lmtp.sock" "$dir/stop" > "$dir/load.out" 2>&1 &
lpid=$!
sleep 0.5
check "SIGHUP reloads under LMTP intake" signal_reload HUP "$dir/log"
check "... announced as RELOADING=1 with MONOTONIC_USEC" \
    sh -c "grep -q '^RELOADING=1\$' '$dir/notify.out' && grep -q '^MONOTONIC_USEC=[0-9][0-9]*\$' '$dir/notify.out'"
check "SIGUSR1 reloads too" signal_reload USR1 "$dir/log"
cp "$dir/waypost.conf" "$dir/good.conf"
echo 'odmr_bogus: { x = 1; };' >> "$dir/waypost.conf"
kill -HUP "$pid"
check "a broken configuration is refused on SIGHUP" wait_until 10 'grep -q "reload failed: keeping the configuration loaded before" "$dir/log"'
check "no info lines at level notice" [ "$(log_count ': info: ' "$dir/log")" -eq 0 ]
write_conf info
check "a reload to log.level info" signal_reload HUP "$dir/log"
check "... takes effect: the intake's info lines appear" wait_until 5 'grep -q ": info: domain1.dom/.*(queued)" "$dir/log"'
touch "$dir/stop"
wait "$lpid"; lrc=$?
sed 's/^/# load: /' "$dir/load.out"
check "every LMTP session under the reloads got its 250s" [ "$lrc" -eq 0 ]
stored=$(find "$dir/spool/domain1.dom" -type f | wc -l)
check "... and every message is in the spool ($stored files)" [ "$stored" -ge "$(sed -n 's/^done //p' "$dir/load.out")" ]
check "the daemon still runs" kill -0 "$pid"

timeout 5 "$ODMRD" -f -c "$dir/waypost.conf" 2> "$dir/second.err"
check "a second instance refuses to start" [ $? -eq 1 ]
check "... saying who runs" grep -q "already running (pid $pid holds $dir/odmrd.pid)" "$dir/second.err"
check "... the first one still takes mail" lmtp_ok
stop_daemon
check "SIGTERM stops it" sh -c "! kill -0 $pid 2>/dev/null"
check "STOPPING=1 said" grep -q "^STOPPING=1\$" "$dir/notify.out"
check "socket and pidfile removed" sh -c "[ ! -e '$dir/lmtp.sock' ] && [ ! -e '$dir/odmrd.pid' ]"

sleep 60 & spid=$!
echo "$spid" > "$dir/odmrd.pid"
"$ODMRD" -f -c "$dir/waypost.conf" 2> "$dir/log2" &
pid=$!
check "a stale pidfile with a foreign PID does not block the start" wait_until 10 '[ -S "$dir/lmtp.sock" ] && grep -q ready "$dir/log2"'
check "... the pidfile now names the daemon" wait_until 5 '[ "$(cat "$dir/odmrd.pid")" = "$pid" ]'
stop_daemon

python3 -c 'import socket,sys,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); print("up", flush=True); time.sleep(60)' "$((port + 1))" > "$dir/holder" &
hpid=$!
wait_until 5 'grep -q up "$dir/holder"'
write_conf info "" "$((port + 1))"
expect_output "a taken customer port fails the start" "cannot listen on inet:127.0.0.1:$((port + 1))" timeout 5 "$ODMRD" -f -c "$dir/waypost.conf"
check "... leaving no LMTP socket" [ ! -e "$dir/lmtp.sock" ]
check "... and no pidfile" [ ! -e "$dir/odmrd.pid" ]

if [ "$(id -u)" -ne 0 ]; then
    echo "ok $((_n + 1)) - # SKIP odmr.user: not root"; _n=$((_n + 1))
else
    # odmr.user on a fresh spool: the daemon creates it as root and gives it
    # to the user before the drop, so deliveries after the drop succeed.
    rm -rf "$dir/spool"
    chmod 755 "$dir"; chown nobody "$dir"; chmod 644 "$dir"/*.conf "$dir"/*.table "$dir"/*.passwd
    write_conf info nobody
    "$ODMRD" -f -c "$dir/waypost.conf" 2> "$dir/log3" &
    pid=$!
    wait_until 10 '[ -S "$dir/lmtp.sock" ] && grep -q ready "$dir/log3"'
    check "odmr.user: running as nobody" grep -q "^Uid:.*\b$(id -u nobody)\b" "/proc/$pid/status"
    check "... the fresh spool belongs to nobody" [ "$(stat -c %U "$dir/spool")" = nobody ]
    check "... LMTP mail is accepted" lmtp_ok
    check "... and stored" [ "$(find "$dir/spool/domain1.dom" -type f 2>/dev/null | wc -l)" -ge 1 ]
    stop_daemon
    check "... its sockets removed at the end" [ ! -e "$dir/lmtp.sock" ]
fi
done_testing
