#!/bin/bash
# SPDX-License-Identifier: MIT
# policyd.sh - waypost-policyd side by side with the null responder and
# postfwd, in one run, on a Router table of 100 000 records.
#
# Usage: bench/policyd.sh BUILD_DIR [SECONDS [REPEAT [metrics]]]
#   BUILD_DIR  holds bench/loadgen, bench/nullsrv and policy/waypost-policyd
#   SECONDS    measurement window of each cell (default 5)
#   REPEAT     runs of each null and waypost cell (default 1); the table
#              shows the run with the median rate, the ratios are medians
#              of the ratios of runs made back to back
#   metrics    instead of null-u and postfwd: a second waypost-policyd with
#              counters and its metrics endpoint on (policyd.metrics),
#              scraped once a second during the runs, side by side with the
#              first (counters off); prints metrics/waypost per N
#
# How long: 21 cells (18 of them REPEAT times) of 1 s warm-up + SECONDS +
# about 0.2 s, plus a few seconds of set-up: about 4 min with 3 s and
# REPEAT 3 on the project's 2-CPU machine.  Without waypost-policyd, 15
# cells.  The first run on a machine also installs postfwd with apt-get: up
# to a minute more.
#
# What it does:
#   1. generates the table (the record mix of bench/bench_router.c: exact
#      addresses, Relay: wildcard addresses, domains, wildcard subdomains),
#      a waypost.conf for it, and 6000 keys spread over the whole table: the
#      kinds bench_router.c resolves (a hit on each of the four record
#      kinds, an account of the local domain, a miss), interleaved;
#   2. starts, as its own children: two null responders (the protocol
#      ceiling; nullsrv writes each answer at once, nullsrv -u sends the
#      answers of a pass in one io_uring submission as waypost-policyd
#      does), BUILD_DIR/policy/waypost-policyd -f -c CONF, and Debian's
#      postfwd2 with bench/postfwd.cf (the same RCPT decisions as a
#      ruleset) on 127.0.0.1;
#   3. measures with loadgen at 1, 16 and 64 connections: socketmap
#      "transport" lookups against null, null-u and waypost, and policy RCPT
#      requests (from an outside client, so each one is a relay decision)
#      against null, null-u, waypost and postfwd.  The null, null-u and
#      waypost cells of one protocol and N run back to back, in rotating
#      order when repeated, so that load from elsewhere on a shared machine
#      hits them alike;
#   4. prints a table, the ratios of waypost to null, to null-u and to the
#      ceiling (the faster null of each run), and to postfwd, and
#      waypost's socketmap lookups per second.
# Every process it started is stopped on exit, however it exits.
#
# Exit status: 0 when every row ran without an error; 1 when a row failed
# or was skipped (waypost-policyd not built or not starting, postfwd not
# available), after printing what did run; 2 on a usage or set-up error.
#
# Limits: load generator and servers share the machine's CPUs, so the
# figures are what Postfix and the daemon would get on one host.  null and
# waypost listen on unix sockets; postfwd speaks TCP on 127.0.0.1, which
# costs the null responder about 0.6x its unix throughput at N>=16 (perf
# anchors) and is negligible next to postfwd's own ~0.5 ms per request.
# postfwd runs with --cache=0: the benchmark cycles through 6000 keys, and
# its request cache would turn most of them into unrealistic hits.  At N=1
# the VM decides: a round trip between two CPUs costs ~50 us, on one CPU
# ~10 us, and the scheduler picks either (the script says when), so N=1
# ratios are rough; N=16 and 64 are the figures to compare.  The
# postfwd part needs root (to install it, and to run it as user postfw in
# its own PID namespace so that none of its forked children can outlive us).
set -u

usage() {
    echo "usage: bench/policyd.sh BUILD_DIR [SECONDS [REPEAT]]" >&2
    exit 2
}

if [ $# -lt 1 ] || [ $# -gt 4 ]; then
    usage
fi
build=$1
seconds=${2:-5}
repeat=${3:-1}
mode=${4:-}
case $mode in '' | metrics) ;; *) usage ;; esac
case $seconds in '' | *[!0-9.]* | .* | *.*.*) usage ;; esac
case $repeat in '' | *[!0-9]* | 0*) usage ;; esac
warmup=1
records=100000
key_count=6000
client_address=198.51.100.77 # outside every trusted network: every RCPT is a relay decision
connection_counts="1 16 64"

here=$(cd "$(dirname "$0")" && pwd)
loadgen=$build/bench/loadgen
nullsrv=$build/bench/nullsrv
policyd=$build/policy/waypost-policyd
for program in "$loadgen" "$nullsrv"; do
    [ -x "$program" ] || {
        echo "policyd.sh: $program missing: build first (make in BUILD_DIR)" >&2
        exit 2
    }
done
[ -r "$here/postfwd.cf" ] || {
    echo "policyd.sh: $here/postfwd.cf missing" >&2
    exit 2
}

work=$(mktemp -d /tmp/wp-policyd-bench.XXXXXX) || exit 2
children=() # "PID SIGNAL" of every process we started, for cleanup

# Stop one child: its signal, then SIGKILL if it is still there after 5 s.
# NAMESPACE means the child is unshare holding a PID namespace: killing the
# namespace's first process makes the kernel kill every other one, and
# unshare exits only once they are all gone.
# shellcheck disable=SC2317 # called by cleanup, from the trap
stop_child() {
    local pid=$1 signal=$2 i init
    if [ "$signal" = NAMESPACE ]; then
        for init in $(ps -o pid= --ppid "$pid"); do
            kill -KILL "$init" 2>/dev/null
        done
    else
        kill "-$signal" "$pid" 2>/dev/null
    fi
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

# shellcheck disable=SC2317 # called by the trap
cleanup() {
    local child pid signal
    for child in "${children[@]}"; do
        read -r pid signal <<<"$child"
        stop_child "$pid" "$signal"
    done
    rm -rf "$work"
}
# Quietly: bash would report each child it kills as "Killed".
trap 'cleanup 2>/dev/null' EXIT
trap 'exit 130' INT # the EXIT trap still runs
trap 'exit 143' TERM

failures=() # one line for each row that failed or was skipped

note_failure() {
    failures+=("$*")
    echo "policyd.sh: $*" >&2
}

# ------------------------------------------------------------ table and keys

# The record mix of bench/bench_router.c, record for record.
awk -v n=$records 'BEGIN {
    for (i = 0; i < n; i++) {
        r = i % 10
        if (r < 5)
            printf "<user%d@dom%d.example> = user%d@company.dom\n", i, int(i / 10), i
        else if (r < 8)
            printf "Relay:<*@wild%d.example> = *%%wild%d.example@host%d.via\n", i, i, int(i / 100)
        else if (r == 8)
            printf "dlevel%d.example = host%d.via\n", i, int(i / 100)
        else
            printf "*.sub%d.example = hub%d.example\n", i, int(i / 100)
    }
}' >"$work/router.table"

# Keys as bench_router.c picks them: a random record k anywhere in the
# table, then the address of each kind nearest it; kinds interleaved so
# that every part of a run sees all of them.
awk -v n=$records -v count=$key_count 'BEGIN {
    srand(12345)
    for (j = 0; j < count; j++) {
        k = int(rand() * n); base = k - k % 10; kind = j % 6
        if (kind == 0) printf "user%d@dom%d.example\n", base, int(base / 10)
        else if (kind == 1) printf "someone@wild%d.example\n", base + 6
        else if (kind == 2) printf "x@dlevel%d.example\n", base + 8
        else if (kind == 3) printf "y@a.sub%d.example\n", base + 9
        else if (kind == 4) printf "alice@company.dom\n"
        else printf "nobody%d@miss.example\n", k
    }
}' >"$work/keys"

waypost_socketmap=$work/waypost-socketmap.sock
waypost_policy=$work/waypost-policy.sock
cat >"$work/waypost.conf" <<EOF
# Generated by bench/policyd.sh.
log = {
  # One line per request would measure logging to a file, not lookups.
  level = "warning";
};

policyd: {
  listen = [ "socketmap:unix:$waypost_socketmap", "policy:unix:$waypost_policy" ];
  threads = 0;  # one per CPU
};

router: {
  table = "router.table";
  main_domain = "company.dom";
  trusted_networks = [ "127.0.0.0/8", "::1/128" ];
  domains = (
    { name = "company.dom"; accounts = "list:alice,bob"; mail_to_unknown = "Rejected"; }
  );
};
EOF

# ------------------------------------------------------------------ servers

# Wait until a unix socket exists; fails if its server has exited, or after
# `limit` seconds.
wait_for_socket() {
    local path=$1 pid=$2 limit=$3 i
    for ((i = 0; i < limit * 10; i++)); do
        [ -S "$path" ] && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Two null responders: one writes each answer at once, the other (-u)
# sends the answers of a pass in one io_uring submission as waypost-policyd
# does.  Whichever is faster in a run is the ceiling for that run.
null_socketmap=$work/null-socketmap.sock
null_policy=$work/null-policy.sock
nullu_socketmap=$work/nullu-socketmap.sock
nullu_policy=$work/nullu-policy.sock
for variant in "" -u; do
    "$nullsrv" $variant "socketmap:unix:$work/null${variant#-}-socketmap.sock" \
        "policy:unix:$work/null${variant#-}-policy.sock" 2>"$work/nullsrv$variant.log" &
    children+=("$! TERM")
    pid=$!
    if ! wait_for_socket "$work/null${variant#-}-socketmap.sock" $pid 10 ||
        ! wait_for_socket "$work/null${variant#-}-policy.sock" $pid 10; then
        echo "policyd.sh: nullsrv $variant did not start:" >&2
        cat "$work/nullsrv$variant.log" >&2
        exit 2
    fi
done

waypost_ok=false
waypost_ready_s=
if [ ! -x "$policyd" ]; then
    note_failure "waypost rows skipped: $policyd is not built yet"
else
    started=$(date +%s.%N)
    "$policyd" -f -c "$work/waypost.conf" >"$work/waypost.log" 2>&1 &
    children+=("$! TERM")
    waypost_pid=$!
    if wait_for_socket "$waypost_socketmap" $waypost_pid 60 && wait_for_socket "$waypost_policy" $waypost_pid 60; then
        waypost_ok=true
        waypost_ready_s=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
    else
        if kill -0 $waypost_pid 2>/dev/null; then
            note_failure "waypost rows skipped: waypost-policyd made no sockets within 60 s"
        else
            note_failure "waypost rows skipped: waypost-policyd exited during start-up"
        fi
        tail -n 20 "$work/waypost.log" | sed 's/^/    waypost-policyd: /' >&2
    fi
fi

# metrics mode: the same daemon and configuration with counters and the
# endpoint on, and a scraper that reads the endpoint once a second.
metrics_ok=false
metrics_socketmap=$work/metrics-socketmap.sock
metrics_policy=$work/metrics-policy.sock
scrapes=$work/scrapes
start_metrics() {
    local port pid
    for ((port = 19100; port < 19200; port++)); do
        port_in_use $port || break
    done
    sed -e "s|$waypost_socketmap|$metrics_socketmap|; s|$waypost_policy|$metrics_policy|" \
        -e "s|^  threads = 0;.*|&\\n  metrics = \"inet:127.0.0.1:$port\";|" "$work/waypost.conf" >"$work/metrics.conf"
    "$policyd" -f -c "$work/metrics.conf" >"$work/metrics.log" 2>&1 &
    children+=("$! TERM")
    pid=$!
    if ! wait_for_socket "$metrics_socketmap" $pid 60 || ! wait_for_socket "$metrics_policy" $pid 60; then
        note_failure "metrics rows skipped: the second waypost-policyd did not start"
        tail -n 20 "$work/metrics.log" | sed 's/^/    waypost-policyd (metrics): /' >&2
        return
    fi
    (
        while :; do
            if exec 3<>"/dev/tcp/127.0.0.1/$port"; then
                printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
                grep -c '^waypost_' <&3 >>"$scrapes"
                exec 3>&-
            fi
            sleep 1
        done
    ) 2>/dev/null &
    children+=("$! TERM")
    metrics_ok=true
}
if [ "$mode" = metrics ] && $waypost_ok; then
    start_metrics
fi

postfwd_ok=false
postfwd_port=
start_postfwd() {
    if [ "$(id -u)" -ne 0 ]; then
        note_failure "postfwd rows skipped: they need root"
        return
    fi
    if ! command -v postfwd2 >/dev/null; then
        echo "policyd.sh: installing Debian's postfwd with apt-get (once per machine)..." >&2
        # The package's service stays off: /etc/default/postfwd has STARTUP=0.
        if ! { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postfwd ||
            { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postfwd; }; } \
            >"$work/apt.log" 2>&1; then
            note_failure "postfwd rows skipped: apt-get install postfwd failed (see below)"
            tail -n 5 "$work/apt.log" >&2
            return
        fi
    fi
    local port
    for ((port = 10045; port < 10100; port++)); do
        port_in_use $port || break
    done
    postfwd_port=$port
    # postfwd drops to user postfw: it must read its rules, and write its
    # pid file and cache-daemon socket.
    chmod 755 "$work"
    mkdir -m 1777 "$work/postfwd"
    install -m 644 "$here/postfwd.cf" "$work/postfwd/postfwd.cf"
    # postfwd2 always daemonizes and forks a cache daemon and pre-forked
    # children, so it cannot be our direct child.  It runs instead in a PID
    # namespace owned by a direct child (unshare): when the namespace's first
    # process dies, the kernel kills every process in it, so nothing can be
    # left behind (see stop_child).
    unshare --pid --fork --kill-child /bin/sh -c 'postfwd2 "$@" && exec sleep infinity' postfwd \
        -f "$work/postfwd/postfwd.cf" -i 127.0.0.1 -p "$port" --user postfw --group postfw \
        --pidfile "$work/postfwd/master.pid" --cache_socket "unix::$work/postfwd/cache.socket" \
        --cache=0 -P >"$work/postfwd.log" 2>&1 &
    children+=("$! NAMESPACE")
    local pid=$! i
    for ((i = 0; i < 300; i++)); do
        if port_in_use "$port"; then
            postfwd_ok=true
            return
        fi
        kill -0 $pid 2>/dev/null || break
        sleep 0.1
    done
    note_failure "postfwd rows skipped: postfwd2 did not listen on 127.0.0.1:$port"
    tail -n 20 "$work/postfwd.log" | sed 's/^/    postfwd: /' >&2
}
[ "$mode" = metrics ] || start_postfwd

# --------------------------------------------------------------- measuring

declare -A result # "row,N,field" -> value; a row is "protocol server"
declare -A run    # "row,N,run,field" -> value, for every run of a cell

# run_loadgen ROW N RUN TARGET [loadgen options]: one run of a cell.
run_loadgen() {
    local row=$1 n=$2 k=$3 target=$4 line field
    shift 4
    if line=$("$loadgen" -c "$n" -d "$seconds" -w "$warmup" -k "$work/keys" -a "$client_address" "$@" \
        "$target" 2>"$work/loadgen.err"); then
        :
    else
        note_failure "$row N=$n: $(head -c 300 "$work/loadgen.err" | tr '\n' ' ')"
    fi
    for field in $line; do
        run[$row,$n,$k,${field%%=*}]=${field#*=}
    done
    run[$row,$n,$k,ran]=yes
    result[$row,$n,runs]=$k
    if [ "${run[$row,$n,$k,unanswered]:-0}" != 0 ] || [ "${run[$row,$n,$k,starved]:-0}" != 0 ]; then
        note_failure "$row N=$n: of $n connections, ${run[$row,$n,$k,unanswered]} had no reply after" \
            "${run[$row,$n,$k,warmup_s]} s of warm-up and ${run[$row,$n,$k,starved]} none in the window:" \
            "the cell stands for fewer connections"
    fi
}

# The run with the median rate stands for the cell: its fields become the
# cell's, and the lowest and highest rates are kept beside them.
summarize() { # ROW N
    local row=$1 n=$2 k runs=${result[$1,$2,runs]:-0} median key
    [ "$runs" -gt 0 ] || return
    median=$(for ((k = 1; k <= runs; k++)); do echo "${run[$row,$n,$k,rps]:-0} $k"; done |
        sort -n | awk '{ line[NR] = $2 } END { print line[int((NR + 1) / 2)] }')
    for key in "${!run[@]}"; do
        case $key in "$row,$n,$median,"*) result[$row,$n,${key##*,}]=${run[$key]} ;; esac
    done
    result[$row,$n,range]=$(for ((k = 1; k <= runs; k++)); do echo "${run[$row,$n,$k,rps]:-0}"; done |
        sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo "-" hi }')
}

# A short probe before the real runs: a server that answers with the wrong
# framing, or a ruleset that did not load, should fail in a second with a
# clear message rather than fill the table with errors.
probe() { # WHAT KEYFILE TARGET [options]: prints loadgen's line
    local what=$1 keys=$2 target=$3 line
    shift 3
    if ! line=$("$loadgen" -c 1 -d 0.2 -w 0 -k "$keys" -a "$client_address" "$@" "$target" \
        2>"$work/probe.err"); then
        note_failure "$what: $(head -c 300 "$work/probe.err" | tr '\n' ' ')"
        return 1
    fi
    echo "$line"
}

field() { # NAME LINE: the value of NAME=... in a loadgen line
    local kv
    for kv in $2; do
        [ "${kv%%=*}" = "$1" ] && echo "${kv#*=}"
    done
}

# side_by_side PROTOCOL NULL_TARGET NULLU_TARGET WAYPOST_TARGET [options]:
# the null, null-u and waypost cells of each N, REPEAT times each, back to
# back; the order rotates so that none always runs first.
cell_names=(null null-u waypost) # metrics mode: null metrics waypost
side_by_side() {
    local proto=$1 n k i
    local -a rows=("$proto ${cell_names[0]}" "$proto ${cell_names[1]}" "$proto ${cell_names[2]}") targets=("$2" "$3" "$4")
    shift 4
    for n in $connection_counts; do
        for ((k = 1; k <= repeat; k++)); do
            for ((i = 0; i < 3; i++)); do
                local j=$(((i + k - 1) % 3))
                if { [ $j = 2 ] && ! $waypost_ok; } || { [ $j = 1 ] && [ "$mode" = metrics ] && ! $metrics_ok; }; then
                    continue
                fi
                run_loadgen "${rows[$j]}" "$n" $k "${targets[$j]}" "$@"
            done
        done
        for ((i = 0; i < 3; i++)); do summarize "${rows[$i]}" "$n"; done
    done
}

if $waypost_ok; then
    probe "waypost socketmap" "$work/keys" "socketmap:unix:$waypost_socketmap" -m transport >/dev/null || waypost_ok=false
    probe "waypost policy" "$work/keys" "policy:unix:$waypost_policy" >/dev/null || waypost_ok=false
    $waypost_ok || note_failure "waypost rows skipped: waypost-policyd does not answer as the protocols say"
fi
if $postfwd_ok; then
    # The ruleset must have loaded: a miss is refused and an account passes.
    echo "nobody@miss.example" >"$work/key-miss"
    echo "alice@company.dom" >"$work/key-account"
    if miss=$(probe "postfwd" "$work/key-miss" "policy:inet:127.0.0.1:$postfwd_port") &&
        account=$(probe "postfwd" "$work/key-account" "policy:inet:127.0.0.1:$postfwd_port"); then
        if [ "$(field notfound "$miss")" != 0 ] || [ "$(field found "$account")" != 0 ]; then
            note_failure "postfwd rows skipped: bench/postfwd.cf did not load (a miss passed or an account was refused)"
            postfwd_ok=false
        fi
    else
        postfwd_ok=false
    fi
fi

# ROW_A ROW_B N: rps(A) / rps(B).  When both rows have the same runs (null
# and waypost: made back to back), the median of the runs' ratios, which
# cancels load that came and went between pairs; otherwise the cells'.
# ROW_B may be "PROTO ceiling": in each run, the faster of null and null-u.
rps_of() { # ROW N RUN
    case $1 in
    *" ceiling")
        local p=${1% *} a b
        a=${run[$p null,$2,$3,rps]:-0} b=${run[$p null-u,$2,$3,rps]:-0}
        echo $((a > b ? a : b)) ;;
    *) echo "${run[$1,$2,$3,rps]:-0}" ;;
    esac
}
ratio() {
    local a=${result[$1,$3,rps]:-} b runs=${result[$1,$3,runs]:-0} k brow=$2
    case $2 in *" ceiling") brow="${2% *} null" ;; esac
    b=${result[$brow,$3,rps]:-}
    if [ -z "$a" ] || [ -z "$b" ] || [ "$b" = 0 ]; then
        echo n/a
    elif [ "$runs" -gt 1 ] && [ "${result[$brow,$3,runs]:-0}" = "$runs" ]; then
        for ((k = 1; k <= runs; k++)); do
            echo "$(rps_of "$1" "$3" $k) $(rps_of "$2" "$3" $k)"
        done | awk '$2 > 0 { r[++n] = $1 / $2 } END {
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (r[j] < r[i]) { t = r[i]; r[i] = r[j]; r[j] = t }
            if (n == 0) print "n/a"; else printf "%.3g", n % 2 ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2 }'
    else
        case $2 in *" ceiling") b=$(rps_of "$2" "$3" 1) ;; esac
        awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3g", a / b }'
    fi
}
if [ "$mode" = metrics ]; then
    cell_names=(null metrics waypost)
    side_by_side socketmap "socketmap:unix:$null_socketmap" "socketmap:unix:$metrics_socketmap" \
        "socketmap:unix:$waypost_socketmap" -m transport
    side_by_side policy "policy:unix:$null_policy" "policy:unix:$metrics_policy" "policy:unix:$waypost_policy"
    printf '\nwaypost-policyd with counters and the metrics endpoint (scraped every second) beside the same\n'
    printf 'daemon without: %d-record table, %s s per cell, %s runs, %s CPUs, %s scrapes answered\n' $records \
        "$seconds" "$repeat" "$(nproc)" "$(grep -c '^[1-9]' "$scrapes" 2>/dev/null || echo 0)"
    printf '\n%-10s %-8s %3s %10s %9s %9s %9s %s\n' protocol server N 'req/s' 'p50 us' 'p99 us' 'cpu us/r' '  req/s of all runs'
    for r in "socketmap waypost" "socketmap metrics" "policy waypost" "policy metrics"; do
        for n in $connection_counts; do
            printf '%-10s %-8s %3s %10s %9s %9s %9s   %s\n' "${r% *}" "${r#* }" "$n" "${result[$r,$n,rps]:-n/a}" \
                "${result[$r,$n,p50_us]:-?}" "${result[$r,$n,p99_us]:-?}" "${result[$r,$n,server_cpu_us]:-?}" \
                "${result[$r,$n,range]:-}"
        done
    done
    printf '\n%-30s' 'req/s ratio'
    for n in $connection_counts; do printf '%10s' "N=$n"; done
    echo
    for p in socketmap policy; do
        printf '%-30s' "$p metrics/waypost"
        for n in $connection_counts; do printf '%10s' "$(ratio "$p metrics" "$p waypost" "$n")"; done
        echo
    done
    echo "target: metrics/waypost >= 0.97"
    if [ ${#failures[@]} -gt 0 ]; then
        echo
        echo "Not measured or failed:"
        printf '  %s\n' "${failures[@]}"
        exit 1
    fi
    exit 0
fi
side_by_side socketmap "socketmap:unix:$null_socketmap" "socketmap:unix:$nullu_socketmap" \
    "socketmap:unix:$waypost_socketmap" -m transport
side_by_side policy "policy:unix:$null_policy" "policy:unix:$nullu_policy" "policy:unix:$waypost_policy"
if $postfwd_ok; then
    # Once: postfwd is 25 to 60 times slower, far from the 5x target.
    for n in $connection_counts; do
        run_loadgen "policy postfwd" "$n" 1 "policy:inet:127.0.0.1:$postfwd_port"
        summarize "policy postfwd" "$n"
    done
fi
if $waypost_ok && ! kill -0 "$waypost_pid" 2>/dev/null; then
    note_failure "waypost-policyd died during the runs"
    tail -n 20 "$work/waypost.log" | sed 's/^/    waypost-policyd: /' >&2
fi

# ---------------------------------------------------------------- reporting

printf '\nwaypost-policyd benchmark: %d-record Router table, %d keys, %s s per cell after %s s warm-up, %s CPUs\n' \
    $records $key_count "$seconds" $warmup "$(nproc)"
[ "$repeat" -gt 1 ] && echo "null, null-u and waypost cells: $repeat runs each; the run with the median rate is shown"
[ -n "$waypost_ready_s" ] && echo "waypost-policyd had its sockets $waypost_ready_s s after start (table load included)"
printf '\n%-10s %-8s %-9s %3s %10s %9s %9s %7s %9s %7s %s\n' \
    protocol server transport N 'req/s' 'p50 us' 'p99 us' 'found%' 'cpu us/r' errors \
    "$([ "$repeat" -gt 1 ] && echo '  req/s of all runs')"
for r in "socketmap null" "socketmap null-u" "socketmap waypost" "policy null" "policy null-u" "policy waypost" \
    "policy postfwd"; do
    case $r in *postfwd) transport=inet ;; *) transport=unix ;; esac
    for n in $connection_counts; do
        if [ -z "${result[$r,$n,ran]:-}" ]; then
            printf '%-10s %-8s %-9s %3s %10s\n' "${r% *}" "${r#* }" $transport "$n" 'n/a'
            continue
        fi
        requests=${result[$r,$n,requests]:-0}
        found=${result[$r,$n,found]:-0}
        range=
        [ "${result[$r,$n,runs]:-1}" -gt 1 ] && range="  ${result[$r,$n,range]}"
        printf '%-10s %-8s %-9s %3s %10s %9s %9s %7s %9s %7s %s\n' "${r% *}" "${r#* }" $transport "$n" \
            "${result[$r,$n,rps]:-?}" "${result[$r,$n,p50_us]:-?}" "${result[$r,$n,p99_us]:-?}" \
            "$(awk -v f="$found" -v t="$requests" 'BEGIN { printf t ? "%.1f" : "-", 100 * f / t }')" \
            "${result[$r,$n,server_cpu_us]:-?}" "${result[$r,$n,errors]:-?}" "$range"
    done
done
echo
echo "found% = share of OK answers (socketmap) or of actions other than DUNNO (policy); for policy,"
echo "  waypost and postfwd should both refuse 4 of the 6 key kinds (66.7), null refuses none."
echo "null writes each answer at once; null-u sends the answers of a pass in one io_uring submission."
echo "cpu us/r = busy CPU of the whole machine during the window, less loadgen's, per request."

printf '\n%-30s' 'req/s ratio'
for n in $connection_counts; do printf '%10s' "N=$n"; done
echo
for pair in "socketmap waypost|socketmap null" "socketmap waypost|socketmap null-u" \
    "socketmap waypost|socketmap ceiling" "policy waypost|policy null" "policy waypost|policy null-u" \
    "policy waypost|policy ceiling" "policy waypost|policy postfwd"; do
    a=${pair%|*} b=${pair#*|}
    printf '%-30s' "${a% *} ${a#* }/${b#* }"
    for n in $connection_counts; do printf '%10s' "$(ratio "$a" "$b" "$n")"; done
    echo
done
echo "ceiling = the faster of null and null-u in each run (the target: waypost/ceiling >= 0.8)"
# On this kind of VM a round trip between two CPUs takes ~50 us, one on a
# single CPU ~10 us, and at N=1 the scheduler picks either: a 4-5x swing
# that has nothing to do with the server.  Say so when it happens.
for r in "socketmap null" "socketmap null-u" "socketmap waypost" "policy null" "policy null-u" "policy waypost"; do
    p50=${result[$r,1,p50_us]:-}
    if [ -n "$p50" ] && awk -v p="$p50" 'BEGIN { exit !(p > 0 && p < 25) }'; then
        echo "note: $r N=1 ran with client and server on one CPU (p50 $p50 us, usually ~50):" \
            "N=1 ratios with it compare scheduler placements, not servers"
    fi
done
printf '\nwaypost socketmap transport lookups/s:'
for n in $connection_counts; do printf ' N=%s %s' "$n" "${result[socketmap waypost,$n,rps]:-n/a}"; done
echo

if [ ${#failures[@]} -gt 0 ]; then
    echo
    echo "Not measured or failed:"
    printf '  %s\n' "${failures[@]}"
    exit 1
fi
exit 0
