#!/bin/sh
# SPDX-License-Identifier: MIT
# waypost-policyd's life on the daemon skeleton: SIGHUP and SIGUSR1 reload
# under load (lookups in a loop never fail), a broken configuration keeps
# the old one, a changed log.level applies on reload, sd_notify READY /
# RELOADING / STOPPING; a second instance is refused before it touches a
# socket, a stale pidfile with a foreign PID does not block, and a failed
# start leaves no socket or pidfile behind; a SIGHUP during the first load
# waits for the start.
. "$top_srcdir/t/lib.sh"
scratch
. "$top_srcdir/t/daemon/lib.sh"
POLICYD="$top_builddir/policy/waypost-policyd"
cp "$top_srcdir/conf/router.table" "$top_srcdir/conf/users.passwd" "$dir/"
write_conf() { # write_conf LEVEL [EXTRA-LISTEN]
    sample_conf "$dir/waypost.conf"
    cat >> "$dir/waypost.conf" <<C
log = { level = "$1"; };
policyd: {
  listen = [ "socketmap:unix:$dir/sm.sock", "policy:unix:$dir/policy.sock"$2 ];
  threads = 2;
  pidfile = "$dir/policyd.pid";
};
C
}
write_conf info
notify_start
"$POLICYD" -f -c "$dir/waypost.conf" 2> "$dir/log" &
pid=$!
trap 'touch "$dir/stop"; kill $pid $npid $lpid $spid $hpid 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
check "READY=1 once listening" wait_until 10 '[ "$(notify_count READY=1)" -ge 1 ]'
check "STATUS= with it" grep -q "^STATUS=ready: 2 endpoints" "$dir/notify.out"
check "the pidfile names it" [ "$(cat "$dir/policyd.pid")" = "$pid" ]

python3 "$top_srcdir/t/daemon/load.py" socketmap "$dir/sm.sock" "$dir/stop" > "$dir/load.out" 2>&1 &
lpid=$!
sleep 0.5
check "SIGHUP reloads under load" signal_reload HUP "$dir/log"
check "... announced as RELOADING=1 with MONOTONIC_USEC" \
    sh -c "grep -q '^RELOADING=1\$' '$dir/notify.out' && grep -q '^MONOTONIC_USEC=[0-9][0-9]*\$' '$dir/notify.out'"
check "SIGUSR1 reloads too" signal_reload USR1 "$dir/log"
check "SIGUSR1 twice, quickly" sh -c "kill -USR1 $pid; kill -USR1 $pid; sleep 0.5; kill -0 $pid"
cp "$dir/waypost.conf" "$dir/good.conf"
echo 'router: { bogus = 1; };' >> "$dir/waypost.conf"
kill -HUP "$pid"
check "a broken configuration is refused on SIGHUP" wait_until 10 'grep -q "reload failed: keeping the configuration loaded before" "$dir/log"'
check "... and said so in STATUS=" wait_until 5 'grep -q "^STATUS=reload of .* failed" "$dir/notify.out"'
check "no debug lines at level info" [ "$(log_count ': debug: ' "$dir/log")" -eq 0 ]
write_conf debug
check "a reload to log.level debug" signal_reload HUP "$dir/log"
check "... takes effect: debug lines appear" wait_until 5 'grep -q ": debug: socketmap relay friend.com" "$dir/log"'
write_conf info
check "and back to info" signal_reload HUP "$dir/log"
sleep 0.3
n1=$(log_count ': debug: ' "$dir/log"); sleep 0.5; n2=$(log_count ': debug: ' "$dir/log")
check "... stops them" [ "$n1" -eq "$n2" ]
touch "$dir/stop"
wait "$lpid"; lrc=$?
sed 's/^/# load: /' "$dir/load.out"
check "every lookup under the reloads answered right" [ "$lrc" -eq 0 ]
check "the daemon still runs" kill -0 "$pid"

# A second instance: refused by the pidfile lock, nothing of the first touched.
timeout 5 "$POLICYD" -f -c "$dir/waypost.conf" 2> "$dir/second.err"
check "a second instance refuses to start" [ $? -eq 1 ]
check "... saying who runs" grep -q "already running (pid $pid holds $dir/policyd.pid)" "$dir/second.err"
check "... the first one's socket still answers" \
    [ "$(python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"16:relay friend.com,"); print(s.recv(100).decode())' "$dir/sm.sock")" = "5:OK OK," ]
check "... and its pidfile is intact" [ "$(cat "$dir/policyd.pid")" = "$pid" ]
stop_daemon
check "SIGTERM stops it" sh -c "! kill -0 $pid 2>/dev/null"
check "STOPPING=1 said" grep -q "^STOPPING=1\$" "$dir/notify.out"
check "sockets removed" [ ! -e "$dir/sm.sock" ] && [ ! -e "$dir/policy.sock" ]
check "pidfile removed" [ ! -e "$dir/policyd.pid" ]

# A stale pidfile holding another live process's PID does not block.
sleep 60 & spid=$!
echo "$spid" > "$dir/policyd.pid"
"$POLICYD" -f -c "$dir/waypost.conf" 2> "$dir/log2" &
pid=$!
check "a stale pidfile with a foreign PID does not block the start" wait_until 10 '[ -S "$dir/policy.sock" ]'
check "... the pidfile now names the daemon" wait_until 5 '[ "$(cat "$dir/policyd.pid")" = "$pid" ]'
check "... and the foreign process lives on" kill -0 "$spid"
stop_daemon

# A failed start (the port of a third listener is taken) leaves nothing.
port=$(free_ports 1)
python3 -c 'import socket,sys,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); print("up", flush=True); time.sleep(60)' "$port" > "$dir/holder" &
hpid=$!
wait_until 5 'grep -q up "$dir/holder"'
write_conf info ", \"tcp:inet:127.0.0.1:$port:relay\""
expect_output "a taken port fails the start" "cannot listen on tcp:inet:127.0.0.1:$port:relay" timeout 5 "$POLICYD" -f -c "$dir/waypost.conf"
check "... leaving no socket" [ ! -e "$dir/sm.sock" ] && [ ! -e "$dir/policy.sock" ]
check "... and no pidfile" [ ! -e "$dir/policyd.pid" ]
kill "$hpid" 2>/dev/null

# SIGHUP while the startup configuration is being loaded (a table of a
# million records: long enough to send it in the middle) waits for the
# handlers, and reloads once the daemon runs, instead of killing it.
write_conf info
cp "$dir/router.table" "$dir/router.table.small"
awk 'BEGIN { for (i = 0; i < 1000000; i++) printf "<user%d@dom%d.example> = relay%d.example\n", i, i % 5000, i % 97 }' >> "$dir/router.table"
"$POLICYD" -f -c "$dir/waypost.conf" 2> "$dir/log3" &
pid=$!
sleep 0.3
loading=no
[ -e "$dir/sm.sock" ] || loading=yes
kill -HUP "$pid"
check "SIGHUP sent while the first load was running" [ "$loading" = yes ]
check "... the daemon lives through it and starts" wait_until 60 '[ -S "$dir/sm.sock" ]'
check "... and reloads once running" wait_until 60 'grep -q "reloaded $dir/waypost.conf" "$dir/log3"'
check "... still running" kill -0 "$pid"
stop_daemon
mv "$dir/router.table.small" "$dir/router.table"
done_testing
