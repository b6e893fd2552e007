#!/bin/sh
# SPDX-License-Identifier: MIT
# waypost-milter's life on the daemon skeleton: it survives SIGHUP (libmilter
# alone stops on it) and reloads, as on SIGUSR1, while miltertest runs in a
# loop; a broken configuration keeps the old one; a changed log.level
# applies on reload; sd_notify READY / RELOADING / STOPPING; SIGTERM stops
# it promptly and removes socket and pidfile; its default socket is 0660,
# closed to user nobody; a second instance is refused
# before it touches the live socket; a stale pidfile does not block; a
# failed start leaves nothing.
. "$top_srcdir/t/lib.sh"
scratch
. "$top_srcdir/t/daemon/lib.sh"
MILTER="$top_builddir/milter/waypost-milter"
command -v miltertest >/dev/null || { echo "Bail out! miltertest is not installed"; exit 1; }
SINK=$(free_ports 1)
write_conf() { # write_conf LEVEL [MILTER-SETTING]
    { echo "log = { level = \"$1\"; };"
      sed -e "s|@DIR@|$dir|g" -e "s|@SINKPORT@|$SINK|g" \
          -e "s|^  listen = \"unix:$dir/milter.sock\";|&\n  pidfile = \"$dir/milter.pid\";${2:-}|" \
          "$top_srcdir/t/milter/rules.conf.in"; } > "$dir/waypost.conf"
}
write_conf notice
cat > "$dir/one.lua" <<L
dofile("$top_srcdir/t/milter/common.lua")
local c = send(sock, "<joe@dept1.company.dom>", {"<x@example.org>"}, {{"Subject", "hi"}}, "hello\r\n")
expect_reply(c, SMFIR_REPLYCODE, "dept1 to an outsider")
mt.disconnect(c)
L
one() { miltertest -D sock="unix:$dir/milter.sock" -s "$dir/one.lua" >/dev/null 2>&1; }
grep -q 'pidfile' "$dir/waypost.conf" || echo "Bail out! could not add the pidfile to the configuration"
notify_start
"$MILTER" -f -c "$dir/waypost.conf" 2> "$dir/log" &
pid=$!
trap 'touch "$dir/stop"; kill $pid $npid $lpid $spid 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
check "READY=1 once listening" wait_until 10 '[ "$(notify_count READY=1)" -ge 1 ]'
check "the pidfile names it" [ "$(cat "$dir/milter.pid")" = "$pid" ]
check "a message is judged" one
# Least privilege (issue 17): the default socket is 0660, closed to nobody.
check "the milter socket is 0660 by default" [ "$(stat -c %a "$dir/milter.sock")" = 660 ]
PY=/usr/bin/python3
chmod 755 "$dir"
if command -v setpriv >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && [ -x "$PY" ] &&
   setpriv --reuid=nobody --regid=nogroup --clear-groups "$PY" -c pass 2>/dev/null; then
    check "... user nobody cannot connect to it" sh -c '! setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/bin/python3 -c "import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])" "$1" 2>/dev/null' sh "$dir/milter.sock"
    if getent group postfix >/dev/null && id postfix >/dev/null 2>&1; then
        check "... user postfix can" setpriv --reuid=postfix --regid=postfix --init-groups "$PY" -c "import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])" "$dir/milter.sock"
    fi
fi
chmod 700 "$dir"

(n=0; bad=0; while [ ! -e "$dir/stop" ]; do if one; then n=$((n + 1)); else bad=$((bad + 1)); fi; done
 echo "done $n failed $bad") > "$dir/load.out" 2>&1 &
lpid=$!
sleep 0.5
check "SIGHUP reloads the milter under load" signal_reload HUP "$dir/log"
check "... and it survives" kill -0 "$pid"
check "... announced as RELOADING=1 with MONOTONIC_USEC" \
    sh -c "grep -q '^RELOADING=1\$' '$dir/notify.out' && grep -q '^MONOTONIC_USEC=[0-9][0-9]*\$' '$dir/notify.out'"
check "SIGUSR1 reloads too" signal_reload USR1 "$dir/log"
check "SIGHUP three times, quickly: still running" sh -c "kill -HUP $pid; sleep 0.05; kill -HUP $pid; sleep 0.05; kill -HUP $pid; sleep 0.5; kill -0 $pid"
echo 'rules = ( { name = "broken"; } );' >> "$dir/waypost.conf"
kill -HUP "$pid"
check "a broken configuration is refused on SIGHUP" wait_until 10 'grep -q "reload failed: keeping the configuration loaded before" "$dir/log"'
check "no info lines at level notice" [ "$(log_count ': info: ' "$dir/log")" -eq 0 ]
write_conf info
check "a reload to log.level info" signal_reload HUP "$dir/log"
check "... takes effect: the rules' info lines appear" wait_until 5 'grep -q ": info: TESTQID: " "$dir/log"'
touch "$dir/stop"
wait "$lpid"
sed 's/^/# load: /' "$dir/load.out"
check "every miltertest run under the reloads passed" grep -q "failed 0\$" "$dir/load.out"
check "the socket is still there and answers" one

timeout 5 "$MILTER" -f -c "$dir/waypost.conf" 2> "$dir/second.err"
check "a second instance refuses to start" [ $? -eq 1 ]
check "... saying who runs" grep -q "already running (pid $pid holds $dir/milter.pid)" "$dir/second.err"
check "... the first one's socket is untouched and answers" one
t0=$(date +%s)
stop_daemon
check "SIGTERM stops it" sh -c "! kill -0 $pid 2>/dev/null"
check "... within 3 seconds, with no connection to wake it" [ $(($(date +%s) - t0)) -le 3 ]
check "STOPPING=1 said" grep -q "^STOPPING=1\$" "$dir/notify.out"
check "socket and pidfile removed" sh -c "[ ! -e '$dir/milter.sock' ] && [ ! -e '$dir/milter.pid' ]"

sleep 60 & spid=$!
echo "$spid" > "$dir/milter.pid"
"$MILTER" -f -c "$dir/waypost.conf" 2> "$dir/log2" &
pid=$!
check "a stale pidfile with a foreign PID does not block the start" wait_until 10 'grep -q "ready on" "$dir/log2"'
check "... the pidfile now names the daemon" wait_until 5 '[ "$(cat "$dir/milter.pid")" = "$pid" ]'
stop_daemon

write_conf info ' user = "no-such-user-wp";'
expect_output "a failed start (no such user to drop to)" "no-such-user-wp" timeout 5 "$MILTER" -f -c "$dir/waypost.conf"
check "... leaves no socket" [ ! -e "$dir/milter.sock" ]
check "... and no pidfile" [ ! -e "$dir/milter.pid" ]
done_testing
