#!/bin/sh
# SPDX-License-Identifier: MIT
# waypost-policyd as a daemon: unix sockets created with the configured
# mode/owner/group before privileges drop to policyd.user, background mode
# with a pidfile and syslog, stop by SIGTERM.  Needs root (as in CI).
. "$top_srcdir/t/lib.sh"
scratch
POLICYD="$top_builddir/policy/waypost-policyd"
if [ "$(id -u)" -ne 0 ]; then echo "ok 1 - # SKIP not root"; done_testing; exit 0; fi
chmod 755 "$dir"
chown nobody "$dir"   # as /run/waypost would be: the daemon removes its sockets at exit
cp "$top_srcdir/conf/router.table" "$top_srcdir/conf/users.passwd" "$dir/"
chmod 644 "$dir"/*
sample_conf "$dir/waypost.conf"
cat >> "$dir/waypost.conf" <<C
policyd: {
  listen = [ "socketmap:unix:$dir/sm.sock", "policy:unix:$dir/policy.sock" ];
  socket_mode = "0660";
  socket_owner = "nobody";
  socket_group = "nogroup";
  user = "nobody";
  pidfile = "$dir/policyd.pid";
};
C
chmod 644 "$dir/waypost.conf"
# Background mode: the command returns, the daemon runs on.
"$POLICYD" -c "$dir/waypost.conf"
check "background start returns 0" [ $? -eq 0 ]
i=0; while [ ! -s "$dir/policyd.pid" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
pid=$(cat "$dir/policyd.pid" 2>/dev/null)
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
check "pidfile names a running daemon" kill -0 "$pid"
check "socket mode 0660" [ "$(stat -c %a "$dir/sm.sock")" = 660 ]
check "socket owner and group" [ "$(stat -c %U:%G "$dir/sm.sock")" = nobody:nogroup ]
check "privileges dropped to nobody" grep -q "^Uid:.*\b$(id -u nobody)\b" "/proc/$pid/status"
check "no controlling terminal, own session" [ "$(ps -o tty= -p "$pid" | tr -d ' ')" = "?" ]
answer=$(python3 - "$dir/sm.sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"26:transport bob@client57.com,")
print(s.recv(100).decode())
PY
)
check "answers after dropping privileges" [ "$answer" = "32:OK smtp:[sibling.company.dom]:26," ]
timeout 5 "$POLICYD" -f -c "$dir/waypost.conf" 2> "$dir/second.err"
check "a second instance refuses to start" [ $? -eq 1 ]
# The pidfile lock decides, before any socket is touched (it used to be the
# socket check, which still guards configurations without a pidfile).
check "... saying why" grep -q "already running (pid $pid holds $dir/policyd.pid)" "$dir/second.err"
check "... and the first one still answers" [ "$(python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"16:relay friend.com,"); print(s.recv(100).decode())' "$dir/sm.sock")" = "5:OK OK," ]
kill "$pid"
i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
check "SIGTERM stops the background daemon" sh -c "! kill -0 $pid 2>/dev/null"
check "sockets removed" [ ! -e "$dir/sm.sock" ]
# A non-socket file where a socket should go is not clobbered.
echo precious > "$dir/sm.sock"
expect_output "refuses to replace a regular file" "$dir/sm.sock exists and is not a socket" timeout 5 "$POLICYD" -f -c "$dir/waypost.conf"
check "the file is untouched" grep -q precious "$dir/sm.sock"
done_testing
