#!/bin/sh
# SPDX-License-Identifier: MIT
# SIGHUP reloads of waypost-policyd under load (t/policyd/reload.py), and
# the log of a failed reload naming file:line.
. "$top_srcdir/t/lib.sh"
scratch
POLICYD="$top_builddir/policy/waypost-policyd"
cp "$top_srcdir/conf/router.table" "$top_srcdir/conf/users.passwd" "$dir/"
sample_conf "$dir/waypost.conf"
cat >> "$dir/waypost.conf" <<C
policyd: {
  listen = [ "socketmap:unix:$dir/sm.sock", "policy:unix:$dir/policy.sock" ];
  threads = 2;
  pidfile = "$dir/policyd.pid";
};
C
"$POLICYD" -f -c "$dir/waypost.conf" 2> "$dir/policyd.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
i=0; while [ ! -S "$dir/policy.sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
check "pidfile holds the daemon's pid" [ "$(cat "$dir/policyd.pid" 2>/dev/null)" = "$pid" ]
python3 "$top_srcdir/t/policyd/reload.py" "$dir" "$pid" > "$dir/reload.out" 2>&1
grep -v '^1\.\.' "$dir/reload.out"
check "daemon still running" kill -0 "$pid"
check "good reload logged" grep -q "reloaded $dir/waypost.conf" "$dir/policyd.log"
check "broken reload logged with file:line" grep -q "$dir/router.table:[0-9]*: unterminated '<'" "$dir/policyd.log"
check "broken reload keeps the old configuration" grep -q "reload failed: keeping the configuration loaded before" "$dir/policyd.log"
# A broken config at start: refused with file:line, exit 1.
printf 'router: { main_domain = "c.dom"; bogus = 1; };\npolicyd: { listen = [ "socketmap:unix:%s/x.sock" ]; };\n' "$dir" > "$dir/bad.conf"
expect_output "-t reports file:line" "bad.conf:1: unknown setting 'bogus' in router" "$POLICYD" -t -c "$dir/bad.conf"
expect_exit "-t exits 1 on a broken config" 1 "$POLICYD" -t -c "$dir/bad.conf"
cp "$top_srcdir/conf/router.table" "$dir/router.table"
expect_exit "-t exits 0 on a good config" 0 "$POLICYD" -t -c "$dir/waypost.conf"
printf 'router: { main_domain = "c.dom"; };\npolicyd: { listen = [ "smtp:unix:/x", "tcp:inet:127.0.0.1:1:nomap" ]; };\n' > "$dir/bad2.conf"
expect_output "bad listen entries are named" "policyd.listen 'smtp:unix:/x': must start with socketmap:, tcp: or policy:" "$POLICYD" -t -c "$dir/bad2.conf"
expect_output "tcp needs a map" "policyd.listen 'tcp:inet:127.0.0.1:1:nomap': expected tcp:inet:HOST:PORT:MAP" "$POLICYD" -t -c "$dir/bad2.conf"
kill "$pid"; wait "$pid"
check "pidfile removed at exit" [ ! -e "$dir/policyd.pid" ]
pid=
done_testing
