#!/bin/sh
# SPDX-License-Identifier: MIT
# waypost-policyd's decision log lines and metrics endpoint
# (t/policyd/metrics.py): exact counts per answer, record and Mail to
# Unknown domain after a known mix of requests, counts kept over a reload
# for unchanged records, promtool's check, and hostile scrapers while
# Postfix's lookups go on.
. "$top_srcdir/t/lib.sh"
. "$top_srcdir/scripts/deps.sh"
scratch
POLICYD="$top_builddir/policy/waypost-policyd"
cp "$top_srcdir/conf/router.table" "$top_srcdir/conf/users.passwd" "$dir/"
sample_conf "$dir/waypost.conf"
port=$(free_ports 1)
cat >> "$dir/waypost.conf" <<C
log = { level = "info"; };
policyd: {
  listen = [ "socketmap:unix:$dir/sm.sock", "policy:unix:$dir/policy.sock" ];
  threads = 2;
  metrics = "inet:127.0.0.1:$port";
};
C
# promtool (Debian's prometheus package) checks the exposition format.
command -v promtool >/dev/null 2>&1 || install_missing prometheus >/dev/null 2>&1 || true
"$POLICYD" -f -c "$dir/waypost.conf" 2> "$dir/policyd.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
i=0; while [ ! -S "$dir/policy.sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
# the endpoint's connection cap and timeout, as lib/metrics.h has them
WP_METRICS_MAX_CONNECTIONS=$(sed -n 's/^#define WP_METRICS_MAX_CONNECTIONS \([0-9]*\)$/\1/p' "$top_srcdir/lib/metrics.h")
WP_METRICS_TIMEOUT=$(sed -n 's/^#define WP_METRICS_TIMEOUT \([0-9]*\)$/\1/p' "$top_srcdir/lib/metrics.h")
export WP_METRICS_MAX_CONNECTIONS WP_METRICS_TIMEOUT
python3 "$top_srcdir/t/policyd/metrics.py" "$dir" "$port" "$pid" > "$dir/metrics.out" 2>&1; rc=$?
# its ok/not ok lines count as tests of their own
grep -v '^1\.\.' "$dir/metrics.out" | sed 's/^\(\(not \)\{0,1\}ok [0-9]* - \)/\1metrics.py: /'
check "metrics.py tests pass" [ "$rc" -eq 0 ]
if command -v promtool >/dev/null 2>&1; then
    check "promtool check metrics passes" sh -c "promtool check metrics < '$dir/scrape.txt' > '$dir/promtool.out' 2>&1"
    sed 's/^/# /' "$dir/promtool.out"
else
    check "promtool is installed (Debian package prometheus)" false
fi
check "daemon still running" kill -0 "$pid"
# waypost stats reads the endpoint named in the configuration.
"$WAYPOST" -c "$dir/waypost.conf" stats > "$dir/stats.out" 2>&1; rc=$?
sed 's/^/# /' "$dir/stats.out"
check "waypost stats exits 0" [ "$rc" -eq 0 ]
check "stats: the drain shows 3 rerouted for domain.dom" grep -Eq '^  domain\.dom +[0-9]+ +[0-9]+ +3$' "$dir/stats.out"
check "stats: the top record is the Relay: record of friend.com" \
    sh -c "sed -n '/^Top Router/,/^\$/p' '$dir/stats.out' | sed -n 3p | grep -q 'Relay:<\*@friend.com>'"
"$WAYPOST" -c "$dir/waypost.conf" stats --json > "$dir/stats.json" 2>&1
check "stats --json: the same as JSON" python3 -c "
import json, sys
d = json.load(open('$dir/stats.json'))['policyd']
dr = {x['domain']: x for x in d['drain']}
sys.exit(0 if dr['domain.dom']['total'] == 3 and dr['domain.dom']['last_hour'] == 3 and d['reloads']['success'] == 2
         and d['records'][0]['record'].startswith('Relay:<*@friend.com>') else 1)"
# Settings: a non-loopback endpoint needs metrics_allow_remote.
printf 'router: { main_domain = "c.dom"; };\npolicyd: { listen = [ "socketmap:unix:%s/x.sock" ]; metrics = "inet:192.0.2.1:9100"; };\n' "$dir" > "$dir/remote.conf"
expect_output "a remote metrics address is refused" "not a loopback address" "$POLICYD" -t -c "$dir/remote.conf"
sed -i 's/metrics = /metrics_allow_remote = true; metrics = /' "$dir/remote.conf"
expect_exit "metrics_allow_remote allows it" 0 "$POLICYD" -t -c "$dir/remote.conf"
printf 'router: { main_domain = "c.dom"; };\npolicyd: { listen = [ "socketmap:unix:%s/x.sock" ]; metrics = "unix:/x"; };\n' "$dir" > "$dir/unix.conf"
expect_output "a unix metrics endpoint is refused" "the metrics endpoint is inet:HOST:PORT" "$POLICYD" -t -c "$dir/unix.conf"
kill "$pid"; wait "$pid"; rc=$?
pid=
# (in the sanitizer build: no leak, no use after free at the endpoint's stop)
check "the daemon stops cleanly (status $rc)" [ "$rc" -eq 0 ]
check "no sanitizer report" sh -c "! grep -q Sanitizer '$dir/policyd.log'"
# Under a low RLIMIT_NOFILE the endpoint's cap is a quarter of it: a flood
# of idle scrapers leaves the daemon descriptors for Postfix's connections
# (t/policyd/metrics_flood.py).
nofile=64
port2=$(free_ports 1)
sed -e "s|$dir/sm.sock|$dir/low-sm.sock|" -e "s|$dir/policy.sock|$dir/low-policy.sock|" \
    -e "s|127.0.0.1:$port|127.0.0.1:$port2|" "$dir/waypost.conf" > "$dir/low.conf"
(ulimit -n $nofile && exec "$POLICYD" -f -c "$dir/low.conf") 2> "$dir/low.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
i=0; while [ ! -S "$dir/low-policy.sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
mkdir "$dir/low" && ln -s "$dir/low-sm.sock" "$dir/low/sm.sock" && ln -s "$dir/low-policy.sock" "$dir/low/policy.sock"
python3 "$top_srcdir/t/policyd/metrics_flood.py" "$dir/low" "$port2" "$pid" "$nofile" > "$dir/flood.out" 2>&1; rc=$?
grep -v '^1\.\.' "$dir/flood.out" | sed 's/^\(\(not \)\{0,1\}ok [0-9]* - \)/\1metrics_flood.py: /'
check "metrics_flood.py tests pass" [ "$rc" -eq 0 ]
check "the daemon under ulimit -n $nofile still running" kill -0 "$pid"
kill "$pid"; wait "$pid"; rc=$?
pid=
sed 's/^/# /' "$dir/low.log"
check "the daemon under ulimit -n $nofile stops cleanly (status $rc)" [ "$rc" -eq 0 ]
check "no sanitizer report" sh -c "! grep -q Sanitizer '$dir/low.log'"
done_testing
