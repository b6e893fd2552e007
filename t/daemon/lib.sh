# SPDX-License-Identifier: MIT
# t/daemon/lib.sh - what the daemon life tests share (sourced after t/lib.sh
# and `scratch`): a stand-in for systemd's notification socket, waiting, and
# the checks every daemon must pass the same way.

# wait_until SECONDS 'SHELL CODE': poll every 0.1 s until the code (evaluated
# afresh each time) succeeds.
wait_until() {
    _t=$(($1 * 10))
    while ! eval "$2" 2>/dev/null; do
        _t=$((_t - 1)); [ $_t -le 0 ] && return 1
        sleep 0.1
    done
}

# notify_start: $dir/notify.sock as NOTIFY_SOCKET; messages land in $dir/notify.out.
notify_start() {
    python3 "$top_srcdir/t/daemon/notify.py" "$dir/notify.sock" "$dir/notify.out" &
    npid=$!
    wait_until 5 'grep -q listening "$dir/notify.out"'
    NOTIFY_SOCKET="$dir/notify.sock"; export NOTIFY_SOCKET
}
notify_count() { grep -c "^$1\$" "$dir/notify.out" 2>/dev/null || true; }
log_count() { grep -c "$1" "$2" 2>/dev/null || true; }

# signal_reload SIGNAL LOG: send SIGNAL to $pid, wait for one more "reloaded" line.
signal_reload() {
    _before=$(log_count "reloaded $dir/waypost.conf" "$2")
    _ready=$(notify_count READY=1)
    kill -"$1" "$pid"
    _log=$2
    wait_until 10 '[ "$(log_count "reloaded $dir/waypost.conf" "$_log")" -gt "$_before" ]' &&
        wait_until 5 '[ "$(notify_count READY=1)" -gt "$_ready" ]'
}

# stop_daemon: SIGTERM to $pid (a child of the test), wait for it (reaped:
# kill -0 succeeds on a zombie), SIGKILL after 10 s.
stop_daemon() {
    kill -TERM "$pid" 2>/dev/null
    ( sleep 10; kill -KILL "$pid" 2>/dev/null ) >/dev/null 2>&1 &
    _watchdog=$!
    wait "$pid" 2>/dev/null
    kill "$_watchdog" 2>/dev/null
}
