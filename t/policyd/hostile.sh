#!/bin/sh
# SPDX-License-Identifier: MIT
# waypost-policyd against hostile neighbours (issue 17): 1 100 idle
# connections to the policy socket while Postfix's lookups over the
# socketmap socket (postmap -q) are answered; at the descriptor limit the
# daemon neither spins nor floods its log and serves again once
# descriptors free; an unprivileged user cannot connect to the default
# sockets.
. "$top_srcdir/t/lib.sh"
scratch
. "$top_srcdir/t/daemon/lib.sh"
POLICYD="$top_builddir/policy/waypost-policyd"
chmod 755 "$dir"
cp "$top_srcdir/conf/router.table" "$top_srcdir/conf/users.passwd" "$dir/"
sample_conf "$dir/waypost.conf"
cat >> "$dir/waypost.conf" <<C
log = { level = "notice"; };
policyd: { listen = [ "socketmap:unix:$dir/sm.sock", "policy:unix:$dir/policy.sock" ]; threads = 2; };
C
trap 'touch "$dir/release"; kill $pid $hpid 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
start() { # start ULIMIT-N
    (ulimit -n "$1" && exec "$POLICYD" -f -c "$dir/waypost.conf") 2>> "$dir/log" &
    pid=$!
    wait_until 10 '[ -S "$dir/policy.sock" ] && [ -S "$dir/sm.sock" ]'
}
hold() { # hold SOCKET N: N connections held until $dir/release exists
    rm -f "$dir/release"
    (ulimit -n 4096 && exec python3 - "$1" "$2" "$dir/release") > "$dir/hold.out" 2>&1 <<'PY' &
import os, socket, sys, time
held = []
def connect(path):
    # Non-blocking: a full backlog says EAGAIN (the daemon has not accepted
    # yet, or stopped accepting): retry for 2 s, then that many are enough.
    s = socket.socket(socket.AF_UNIX)
    s.setblocking(False)
    end = time.time() + 2
    while True:
        try:
            s.connect(path)
            return s
        except BlockingIOError:
            if time.time() > end:
                s.close()
                return None
            time.sleep(0.01)
for _ in range(int(sys.argv[2])):
    s = connect(sys.argv[1])
    if s is None:
        break
    held.append(s)
print("holding %d" % len(held), flush=True)
while not os.path.exists(sys.argv[3]):
    time.sleep(0.1)
PY
    hpid=$!
    wait_until 20 'grep -q holding "$dir/hold.out"'
    sed 's/^/# /' "$dir/hold.out"
}
lookup() { # what Postfix's socketmap client gets
    if command -v postmap >/dev/null 2>&1; then
        [ -f "$dir/pf/main.cf" ] || { mkdir -p "$dir/pf"; : > "$dir/pf/main.cf"; }
        timeout 10 postmap -c "$dir/pf" -q bob@client57.com "socketmap:unix:$dir/sm.sock:transport" 2>&1
    else
        timeout 10 python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"26:transport bob@client57.com,")
print(s.recv(100).decode().split(":", 1)[1].rstrip(",")[3:])' "$dir/sm.sock" 2>&1
    fi
}

start 4096
check "daemon starts" kill -0 "$pid"
hold "$dir/policy.sock" 1100
sleep 1
got=$(lookup)
check "1 100 idle connections to the policy socket: postmap -q over the socketmap answers ($got)" \
    [ "$got" = "smtp:[sibling.company.dom]:26" ]
n=$(grep -c "connection limit" "$dir/log")
check "... the refusals logged once, not once each ($n)" [ "$n" -le 2 ]
touch "$dir/release"; wait "$hpid"
stop_daemon

# Out of descriptors: a low limit for the daemon, more connections than it.
: > "$dir/log"
start 64
hold "$dir/policy.sock" 200
cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
c0=$(cpu); sleep 3; c1=$(cpu)
ticks=$((c1 - c0)); hz=$(getconf CLK_TCK)
check "at the descriptor limit the daemon does not spin ($ticks ticks of $((3 * hz)) in 3 s)" [ "$ticks" -le $((3 * hz / 10)) ]
lines=$(wc -l < "$dir/log")
check "... and its log grows by a few lines ($lines)" [ "$lines" -le 10 ]
check "... one warning for the episode" [ "$(grep -c 'not accepting connections until a descriptor is free' "$dir/log")" -eq 1 ]
touch "$dir/release"; wait "$hpid"
sleep 0.5
got=$(lookup)
check "descriptors free again: answered ($got)" [ "$got" = "smtp:[sibling.company.dom]:26" ]
check "... and the log says so" wait_until 5 'grep -q "accepting connections again" "$dir/log"'

# Least privilege: 0660 by default, closed to an unprivileged user.
check "the sockets are 0660 by default" [ "$(stat -c %a "$dir/sm.sock") $(stat -c %a "$dir/policy.sock")" = "660 660" ]
if getent group postfix >/dev/null; then
    check "... group postfix (it exists here)" [ "$(stat -c %G "$dir/sm.sock")" = postfix ]
fi
# The system's python (a per-user one may be out of nobody's reach); that
# nobody can run it at all is checked first.
PY=/usr/bin/python3
if command -v setpriv >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && [ -x "$PY" ] &&
   setpriv --reuid=nobody --regid=nogroup --clear-groups "$PY" -c pass 2>/dev/null; then
    for s in sm policy; do
        check "user nobody cannot connect to $s.sock" sh -c '! setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/bin/python3 -c "import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])" "$1" 2>/dev/null' sh "$dir/$s.sock"
    done
    if getent group postfix >/dev/null && id postfix >/dev/null 2>&1; then
        check "... user postfix can" setpriv --reuid=postfix --regid=postfix --init-groups "$PY" -c "import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])" "$dir/sm.sock"
    fi
else
    echo "# skipped: the unprivileged connect needs root, setpriv and /usr/bin/python3"
fi
stop_daemon
done_testing
