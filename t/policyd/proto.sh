#!/bin/sh
# Black-box protocol tests of waypost-policyd: socketmap (unix and inet),
# tcp_table (one port per map) and policy delegation on the sample Router,
# with over 100 hostile requests per protocol (t/policyd/proto.py).
. "$top_srcdir/t/lib.sh"
scratch
POLICYD="$top_builddir/policy/waypost-policyd"
base=$(free_ports 7)
cp "$top_srcdir/conf/router.table" "$top_srcdir/conf/users.passwd" "$dir/"
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
};
C
"$POLICYD" -f -c "$dir/waypost.conf" 2> "$dir/policyd.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
i=0; while [ ! -S "$dir/policy.sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
check "daemon starts and listens" [ -S "$dir/sm.sock" ]
kill -0 "$pid" 2>/dev/null || { echo "# the daemon did not start:"; sed 's/^/#   /' "$dir/policyd.log"; }
python3 "$top_srcdir/t/policyd/proto.py" "$dir" "$base" > "$dir/proto.out" 2>&1; rc=$?
grep -v '^1\.\.' "$dir/proto.out"  # its ok/not ok lines count as tests of their own

check "protocol tests pass" [ "$rc" -eq 0 ]
check "daemon survived everything" kill -0 "$pid"
kill "$pid"; wait "$pid"; rc=$?
check "SIGTERM stops it cleanly (exit 0)" [ "$rc" -eq 0 ]
check "SIGTERM removed the unix sockets" [ ! -e "$dir/sm.sock" ] && [ ! -e "$dir/policy.sock" ]
pid=
grep -q "ready: 9 endpoints, 2 worker threads" "$dir/policyd.log"; check "startup is logged" [ $? -eq 0 ]
done_testing
