#!/bin/sh
# SPDX-License-Identifier: MIT
# Black-box protocol tests of waypost-policyd: socketmap (unix and inet),
# tcp_table (one port per map) and policy delegation on the sample Router,
# with over 100 hostile requests per protocol (t/policyd/proto.py).  The
# whole set runs twice: with the answers of a pass sent in one io_uring
# submission (the default, where the kernel allows io_uring) and with
# policyd.io_uring = false (one send(2) each).
. "$top_srcdir/t/lib.sh"
scratch
POLICYD="$top_builddir/policy/waypost-policyd"
cp "$top_srcdir/conf/router.table" "$top_srcdir/conf/users.passwd" "$dir/"
pid=
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT

# Is io_uring open to us here?  (A kernel setting, or a container's system
# call filter, may close it: the daemon then falls back and says so.)
uring_allowed=yes
[ "$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo 0)" = 0 ] || uring_allowed=no
grep -q '^Seccomp:[[:space:]]*0' /proc/self/status || uring_allowed=no

for io_uring in true false; do
    base=$(free_ports 7)
    sample_conf "$dir/waypost.conf"
    cat >> "$dir/waypost.conf" <<C
policyd: {
  listen = [ "socketmap:unix:$dir/sm.sock", "policy:unix:$dir/policy.sock",
             "tcp:inet:127.0.0.1:$base:transport", "tcp:inet:127.0.0.1:$((base + 1)):virtual",
             "tcp:inet:127.0.0.1:$((base + 2)):relay", "tcp:inet:127.0.0.1:$((base + 3)):recipient",
             "tcp:inet:127.0.0.1:$((base + 4)):account", "socketmap:inet:127.0.0.1:$((base + 5))",
             "policy:inet:127.0.0.1:$((base + 6))" ];
  idle_timeout = 2;
  max_connections = 40;
  threads = 2;
  io_uring = $io_uring;
};
C
    "$POLICYD" -f -c "$dir/waypost.conf" 2> "$dir/policyd.log" &
    pid=$!
    i=0; while [ ! -S "$dir/policy.sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    check "io_uring=$io_uring: daemon starts and listens" [ -S "$dir/sm.sock" ]
    kill -0 "$pid" 2>/dev/null || { echo "# the daemon did not start:"; sed 's/^/#   /' "$dir/policyd.log"; }
    python3 "$top_srcdir/t/policyd/proto.py" "$dir" "$base" > "$dir/proto.out" 2>&1; rc=$?
    # its ok/not ok lines count as tests of their own
    grep -v "^1\.\." "$dir/proto.out" | sed "s/^\(\(not \)\{0,1\}ok [0-9]* - \)/\1io_uring=$io_uring: /"

    check "io_uring=$io_uring: protocol tests pass" [ "$rc" -eq 0 ]
    check "io_uring=$io_uring: daemon survived everything" kill -0 "$pid"
    kill "$pid"; wait "$pid"; rc=$?
    check "io_uring=$io_uring: SIGTERM stops it cleanly (exit 0)" [ "$rc" -eq 0 ]
    check "io_uring=$io_uring: SIGTERM removed the unix sockets" [ ! -e "$dir/sm.sock" ] && [ ! -e "$dir/policy.sock" ]
    pid=
    grep -q "ready: 9 endpoints, 2 worker threads" "$dir/policyd.log"; check "io_uring=$io_uring: startup is logged" [ $? -eq 0 ]
    if [ $io_uring = false ]; then
        want="answers sent with send(2)"
    elif [ $uring_allowed = yes ]; then
        want="answers sent with io_uring"
    else
        want="answers are sent with one send(2) each: io_uring"
    fi
    grep -q "$want" "$dir/policyd.log"; check "io_uring=$io_uring: the log says: $want" [ $? -eq 0 ]
done
done_testing
