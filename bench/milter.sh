#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/milter.sh - smtp-source -> Postfix -> smtp-sink with waypost-milter
# running 100 rules (unix socket) and without any milter, side by side in
# one run, with a do-nothing milter (bench/nullmilter) as the floor of the
# milter protocol itself; then the in-process cost of the rules per message.
#
#   bench/milter.sh BUILD_DIR [MESSAGES] [ROUNDS]    (default 4000 messages, 2 rounds)
#
# Also prints the CPU time each milter process used per message.
# Takes about 40 s with the defaults on 2 cores.
set -u
build=$(cd "${1:-build/dev}" && pwd)
N=${2:-4000}
ROUNDS=${3:-2}
top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
top_builddir=$build
export top_srcdir top_builddir
. "$top_srcdir/t/e2e/lib.sh"
e2e_need || exit 1
e2e_init
W="$E2E/waypost"
mkdir -p "$W"
sample_conf "$W/waypost.conf"
sed -i '/^rules = (/,/^);/d' "$W/waypost.conf"
cp "$top_srcdir/conf/router.table" "$top_srcdir/conf/users.passwd" "$W/"
cat >> "$W/waypost.conf" <<C
log = { level = "warning"; };
milter: { listen = "unix:$W/milter.sock"; };
C
sh "$top_srcdir/bench/gen_rules.sh" 100 >> "$W/waypost.conf"
e2e_bg milter "$build/milter/waypost-milter" -f -c "$W/waypost.conf"
MD=$E2E_LAST_PID
e2e_on_exit 'kill $MD 2>/dev/null; "$E2E_PY" -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])" "$W/milter.sock" 2>/dev/null'
i=0; while [ ! -S "$W/milter.sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
e2e_bg nullmilter "$build/bench/nullmilter" "unix:$W/null.sock"
NM=$E2E_LAST_PID
e2e_on_exit 'kill $NM 2>/dev/null; "$E2E_PY" -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])" "$W/null.sock" 2>/dev/null'
e2e_sink friendmx 127.0.4.4:25; e2e_host friend.com 127.0.4.4
cat > "$E2E/main.cf" <<C
relay_domains = friend.com
smtpd_milters =
milter_default_action = tempfail
default_process_limit = 100
C
e2e_free_port SMTP
e2e_postfix "$SMTP" "$E2E/main.cf" >/dev/null || exit 1
run() { # run NAME: N messages; prints msgs/s
    local before after t0 t1
    before=$(e2e_sink_count friendmx)
    t0=$(date +%s.%N)
    smtp-source -c -s 20 -m "$N" -f sender@client.test -t john@friend.com 127.0.0.1:"$SMTP" >/dev/null 2>&1
    e2e_wait_queue_empty 300 || return 1
    t1=$(date +%s.%N)
    after=$(e2e_sink_count friendmx)
    awk -v n=$((after - before)) -v t0="$t0" -v t1="$t1" -v name="$1" \
        'BEGIN { printf "%-10s %6d delivered in %6.2f s  %7.1f msg/s\n", name, n, t1 - t0, n / (t1 - t0) }'
}
results=$(mktemp)
for r in $(seq "$ROUNDS"); do
    e2e_postconf -e "smtpd_milters =" && e2e_reload && sleep 1
    run no-milter | tee -a "$results"
    e2e_postconf -e "smtpd_milters = unix:$W/null.sock" && e2e_reload && sleep 1
    run null-milter | tee -a "$results"
    e2e_postconf -e "smtpd_milters = unix:$W/milter.sock" && e2e_reload && sleep 1
    run milter | tee -a "$results"
done
# CPU time each milter process used, per message it saw (both only ever
# see their own rounds): what the rules add to the protocol's own cost.
cpu_us() { awk -v n=$((N * ROUNDS)) -v hz="$(getconf CLK_TCK)" '{ printf "%.0f", ($14 + $15) * 1e6 / hz / n }' "/proc/$1/stat"; }
echo "milter CPU per message: waypost-milter $(cpu_us "$MD") us, null milter $(cpu_us "$NM") us"
check_fired=$(grep -l '^X-Rule-25: fired' $(e2e_sink_files friendmx) 2>/dev/null | wc -l)
awk -v fired="$check_fired" '{ s[$1] += $(NF-1); c[$1]++ }
     END { n = s["no-milter"]/c["no-milter"]; z = s["null-milter"]/c["null-milter"]; w = s["milter"]/c["milter"]
           printf "no milter %.1f msg/s, null milter %.1f msg/s, waypost-milter (100 rules) %.1f msg/s\n", n, z, w
           printf "ratio waypost/no milter = %.2f (target >= 0.95); null milter/no milter = %.2f (the protocol alone); waypost/null milter = %.2f\n", w / n, z / n, w / z
           printf "%d messages carry a rule-added header\n", fired }' "$results"
rm -f "$results"
echo "rule evaluation in process:"
"$build/bench/bench_rules" "$W/waypost.conf" 2
