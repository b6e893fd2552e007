#!/bin/bash
# SPDX-License-Identifier: MIT
# t/e2e/lib.sh - end-to-end test harness: a private Postfix instance and
# smtp-sink servers on loopback, torn down by a trap.  Source it from a bash
# test script, then:
#
#   e2e_need                       # install postfix, python3 if missing
#   e2e_init                       # $E2E, trap, PFCONF/PFSPOOL/PFLOG
#   e2e_free_port P1; e2e_sink a 127.0.0.2:$P1
#   e2e_host otherserver.dom 127.0.0.3    # before or after e2e_postfix
#   e2e_free_port P; e2e_postfix $P extra-main.cf [extra-master.cf]
#   e2e_send s@x.test u@a.test -- --xclient 192.0.2.10
#   e2e_wait_queue_empty 10; e2e_sink_rcpts a
#   done_testing                   # last command: its status is the exit code
#
# Notes:
# * Every process is started as a direct child of the test shell and
#   recorded; the EXIT/INT/TERM trap stops them, waits for them, and removes
#   $E2E (set E2E_KEEP=1 to keep it for debugging).  A test must not install
#   its own EXIT trap (nor use scratch() from t/lib.sh); use e2e_on_exit.
# * Host names (e2e_host): Postfix runs in a private mount namespace
#   (unshare -m) where $E2E/hosts is bind-mounted over /etc/hosts, so the
#   machine's /etc/hosts is never touched and nothing needs undoing: the
#   namespace dies with the processes.  If unshare/mount is not permitted
#   (E2E_HOSTS_MODE=etc forces it), lines tagged "# waypost-e2e PID" are
#   appended to /etc/hosts and removed again by the trap (and by the next
#   e2e_init if a run was SIGKILLed).
# * Config files are backdated after every write (Postfix re-reads a
#   main.cf or texthash file younger than a second), otherwise every
#   Postfix command takes ~2 s.

E2E_LIBDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_TOPDIR=$(cd "$E2E_LIBDIR/../.." && pwd)
: "${top_srcdir:=$E2E_TOPDIR}"
: "${top_builddir:=$top_srcdir}"
# shellcheck source=../lib.sh
. "$E2E_LIBDIR/../lib.sh"

E2E_PY=/usr/bin/python3        # the PATH python3 may be a pyenv shim
E2E=
E2E_PIDS=()                    # helper processes (smtp-sink, e2e_bg)
E2E_PF_PID=                    # reaper running `postfix start-fg` (master is a grandchild)
E2E_SMTP_PORT=
E2E_HOSTS_MODE=${E2E_HOSTS_MODE:-}
E2E_PORTS_TAKEN=" "
E2E_EXIT_HOOKS=()
E2E_CLEANED=0

# ---------------------------------------------------------------- install
# e2e_need [EXTRA-DEBIAN-PACKAGE...]: install what is missing (as root).
e2e_need() {
    local p missing=''
    for p in postfix python3 "$@"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'ok installed' ||
            missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    echo "# e2e_need: installing$missing" >&2
    # No system service may start (the Postfix package would start one).
    if ! grep -qs '^exit 101' /usr/sbin/policy-rc.d; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    fi
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    # shellcheck disable=SC2086 # word splitting wanted
    apt-get update -qq >&2 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            $missing >&2 </dev/null
}

# ---------------------------------------------------------------- lifecycle
_e2e_alive() { # PID: exists and is not a zombie
    local s
    s=$(ps -o stat= -p "$1" 2>/dev/null) && [ -n "$s" ] && [ "${s#Z}" = "$s" ]
}
_e2e_descendants() { # PID: "pid comm" of every live descendant
    ps -e -o pid=,ppid=,stat=,comm= 2>/dev/null | awk -v root="$1" '
        { pp[$1] = $2; st[$1] = $3; c[$1] = $4 }
        END { for (p in pp) { q = pp[p]; n = 0
                  while (q != root && (q in pp) && q > 1 && n++ < 100) q = pp[q]
                  if (q == root && st[p] !~ /^Z/) print p, c[p] } }'
}
# _e2e_stop_tree PID [pf]: stop a process, wait for it (SIGKILL after 5 s).
# Helpers get SIGTERM (again every 2 s).  With "pf", PID is the Postfix
# reaper: SIGTERM the master under it (what `postfix stop` does, minus its
# 1 s polling loop); if there is no master (a signal came during start-up,
# or it has exited and daemons remain), SIGTERM whatever runs under the
# reaper (postfix-script...); the reaper exits last, when all are reaped.
_e2e_stop_tree() {
    local root=$1 mode=${2:-} i d m
    for ((i = 0; i < 100; i++)); do
        _e2e_alive "$root" || break
        if [ "$mode" = pf ]; then
            d=$(_e2e_descendants "$root")
            m=$(awk '$2 == "master" { print $1 }' <<<"$d")
            if [ -n "$m" ]; then
                # shellcheck disable=SC2086 # re-sent every 2 s
                [ $((i % 20)) = 0 ] && kill $m 2>/dev/null
            elif [ -n "$d" ]; then
                # shellcheck disable=SC2046 # a list of pids
                kill $(awk '{ print $1 }' <<<"$d") 2>/dev/null
            fi
        elif [ $((i % 20)) = 0 ]; then
            kill "$root" 2>/dev/null
        fi
        sleep 0.05
    done
    if _e2e_alive "$root"; then
        echo "# e2e: pid $root did not stop, SIGKILL" >&2
        # shellcheck disable=SC2046
        kill -9 $(_e2e_descendants "$root" | awk '{ print $1 }') "$root" 2>/dev/null
    fi
    wait "$root" 2>/dev/null
    return 0
}

# e2e_on_exit COMMAND-STRING: run it in the trap, before processes stop.
e2e_on_exit() { E2E_EXIT_HOOKS+=("$1"); }

_e2e_cleanup() {
    [ "$E2E_CLEANED" = 1 ] && return 0
    E2E_CLEANED=1
    set +e
    local h p
    for h in "${E2E_EXIT_HOOKS[@]}"; do eval "$h"; done
    for p in "${E2E_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    [ -n "$E2E_PF_PID" ] && _e2e_stop_tree "$E2E_PF_PID" pf
    for p in "${E2E_PIDS[@]}"; do _e2e_stop_tree "$p"; done
    [ "$E2E_HOSTS_MODE" = etc ] && _e2e_etc_hosts_clean "$$"
    if [ -n "$E2E" ] && [ -d "$E2E" ]; then
        if [ "${E2E_KEEP:-0}" = 1 ]; then
            rm -f "$E2E/owner"; echo "# e2e: kept $E2E" >&2
        else
            rm -rf "$E2E"
        fi
    fi
    return 0
}

_e2e_record() { E2E_PIDS+=("$1"); echo "$1" >>"$E2E/pids"; }
_e2e_starttime() { awk '{ print $22 }' "/proc/$1/stat" 2>/dev/null; }

# Runs that were SIGKILLed (no trap) leave their processes and directory:
# stop those whose owner (PID + start time in $E2E/owner) is gone.
# Only runs from our own PID namespace: a PID from another one means nothing.
_e2e_sweep_stale() {
    local d o st ns p
    for d in "${TMPDIR:-/tmp}"/wp-e2e-*; do
        [ -f "$d/owner" ] || continue
        read -r o st ns <"$d/owner" || continue
        [ "$ns" = "$(readlink /proc/self/ns/pid)" ] || continue
        [ "$(_e2e_starttime "$o")" = "$st" ] && continue # still running
        echo "# e2e: cleaning up after dead run $o ($d)" >&2
        # only processes whose command line names $d
        while read -r p; do
            tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$d/" && _e2e_stop_tree "$p" pf
        done <"$d/pf.pid" 2>/dev/null
        while read -r p; do
            tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$d/" && _e2e_stop_tree "$p"
        done <"$d/pids" 2>/dev/null
        rm -rf "$d"
    done
}

# e2e_init: private directory $E2E, trap, and PFCONF PFSPOOL PFLOG.
e2e_init() {
    E2E=$(mktemp -d "${TMPDIR:-/tmp}/wp-e2e-XXXXXX") || return 1
    chmod 755 "$E2E"                   # postfix and nobody must traverse it
    _e2e_sweep_stale
    echo "$$ $(_e2e_starttime $$) $(readlink /proc/self/ns/pid)" >"$E2E/owner"
    trap '_e2e_cleanup' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
    export E2E
    export PFCONF="$E2E/pf/etc" PFSPOOL="$E2E/pf/spool" PFLOG="$E2E/pf/maillog"
    mkdir -p "$PFCONF" "$PFSPOOL"      # NOT data_directory: Postfix makes it, owned by postfix
    cp /etc/hosts "$E2E/hosts" && chmod 644 "$E2E/hosts"
    _e2e_etc_hosts_clean ''            # stale lines of SIGKILLed runs
    if [ -z "$E2E_HOSTS_MODE" ]; then
        # shellcheck disable=SC2016 # $1 is for the inner sh
        if unshare -m sh -c 'mount --bind "$1" /etc/hosts' sh "$E2E/hosts" 2>/dev/null; then
            E2E_HOSTS_MODE=ns
        else
            E2E_HOSTS_MODE=etc
        fi
    fi
}

# ---------------------------------------------------------------- host names
# e2e_host NAME IP: NAME resolves to IP for Postfix (and e2e_bg) until exit.
e2e_host() {
    case $E2E_HOSTS_MODE in
    ns) printf '%s\t%s\n' "$2" "$1" >>"$E2E/hosts" ;; # in place: the bind mount follows the inode
    *) printf '%s\t%s\t# waypost-e2e %s\n' "$2" "$1" "$$" >>/etc/hosts ;;
    esac
}
_e2e_etc_hosts_clean() { # PID or '': drop our lines, or those of dead runs
    grep -qs '# waypost-e2e ' /etc/hosts || return 0
    local keep='' line pid
    while IFS= read -r line || [ -n "$line" ]; do
        case $line in
        *'# waypost-e2e '*)
            pid=${line##*# waypost-e2e }
            if [ -n "$1" ]; then [ "$pid" = "$1" ] && continue
            else kill -0 "$pid" 2>/dev/null || continue
            fi ;;
        esac
        keep="$keep$line"$'\n'
    done </etc/hosts
    printf '%s' "$keep" >/etc/hosts    # in place: /etc/hosts may be a bind mount
}
# _e2e_exec CMD...: exec CMD, in the private-hosts namespace if there is one.
_e2e_exec() {
    if [ "$E2E_HOSTS_MODE" = ns ]; then
        # shellcheck disable=SC2016 # for the inner sh
        exec unshare -m sh -c 'mount --bind "$1" /etc/hosts || exit 1; shift; exec "$@"' \
            sh "$E2E/hosts" "$@"
    fi
    exec "$@"
}

# ---------------------------------------------------------------- ports
# e2e_free_port [VAR]: a TCP port in 20000-29999 that nothing listens on and
# this run has not handed out yet (random start, so parallel runs differ).
# With VAR, assigns it (remembered, so the next call differs); else prints it.
e2e_free_port() {
    local i p hex
    p=$((20000 + (RANDOM * 32768 + RANDOM + $$) % 10000))
    for ((i = 0; i < 10000; i++)); do
        p=$((p + 1)); [ $p -gt 29999 ] && p=20000
        case $E2E_PORTS_TAKEN in *" $p "*) continue ;; esac
        hex=$(printf '%04X' $p)
        grep -qE "^ *[0-9]+: [0-9A-F]+:$hex " /proc/net/tcp /proc/net/tcp6 2>/dev/null && continue
        E2E_PORTS_TAKEN="$E2E_PORTS_TAKEN$p "
        if [ -n "${1:-}" ]; then printf -v "$1" %s "$p"; else echo "$p"; fi
        return 0
    done
    return 1
}
# $(e2e_free_port) runs in a subshell, so also remember the ports that
# e2e_sink and e2e_postfix are given.
_e2e_take_port() { E2E_PORTS_TAKEN="$E2E_PORTS_TAKEN$1 "; }

# e2e_wait_port ADDR PORT [SECONDS]: until a TCP connect succeeds.
e2e_wait_port() {
    local i max=$((${3:-10} * 20))
    for ((i = 0; i < max; i++)); do
        (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "# e2e: nothing listens on $1:$2" >&2
    return 1
}
# e2e_wait_banner ADDR PORT [SECONDS]: until the server greets with 220.
e2e_wait_banner() {
    local i max=$((${3:-10} * 20))
    for ((i = 0; i < max; i++)); do
        if (
            exec 3<>"/dev/tcp/$1/$2" || exit 1
            IFS= read -r -t 5 line <&3 || exit 1
            printf 'QUIT\r\n' >&3
            case $line in 220*) exit 0 ;; *) exit 1 ;; esac
        ) 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "# e2e: no 220 greeting on $1:$2" >&2
    return 1
}

# ---------------------------------------------------------------- helpers
# e2e_bg NAME CMD...: start a helper as a direct child (private hosts
# namespace), output in $E2E/NAME.log, stopped by SIGTERM in the trap.
# Sets E2E_LAST_PID.
e2e_bg() {
    local name=$1; shift
    (_e2e_exec "$@") >"$E2E/$name.log" 2>&1 &
    E2E_LAST_PID=$!
    _e2e_record "$E2E_LAST_PID"
}

# ---------------------------------------------------------------- smtp-sink
# e2e_sink NAME ADDR:PORT: smtp-sink dumping every transaction to
# $E2E/sink-NAME/ (one file each).
e2e_sink() {
    local name=$1 addr=${2%:*} port=${2##*:} dir="$E2E/sink-$1"
    mkdir -p "$dir" && chown nobody "$dir" && chmod 755 "$dir" || return 1
    _e2e_take_port "$port"
    smtp-sink -u nobody -d "$dir/%H%M%S." "$addr:$port" 64 >"$E2E/sink-$name.log" 2>&1 &
    _e2e_record $!
    e2e_wait_port "$addr" "$port" 5 || { cat "$E2E/sink-$name.log" >&2; return 1; }
}
# e2e_sink_rcpts NAME: envelope recipients of all received mail, sorted.
e2e_sink_rcpts() {
    find "$E2E/sink-$1" -type f -exec cat {} + 2>/dev/null |
        sed -n 's/^X-Rcpt-Args: <\([^>]*\)>.*/\1/p' | LC_ALL=C sort
}
# e2e_sink_count NAME: number of transactions (dump files) received.
e2e_sink_count() {
    find "$E2E/sink-$1" -type f 2>/dev/null | wc -l | tr -d ' '
}
# e2e_sink_files NAME: the dump files, for grepping headers/bodies.
e2e_sink_files() { find "$E2E/sink-$1" -type f 2>/dev/null | LC_ALL=C sort; }
# e2e_sink_wait NAME COUNT [SECONDS]: until the sink has COUNT messages.
e2e_sink_wait() {
    local i max=$((${3:-10} * 10))
    for ((i = 0; i < max; i++)); do
        [ "$(e2e_sink_count "$1")" -ge "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

# ---------------------------------------------------------------- postfix
_e2e_backdate() { touch -d '-1 min' "$PFCONF"/*; } # files younger than 1 s are re-read

# e2e_postconf ARGS...: postconf on the private instance (e.g. -e 'a = b'),
# backdating the config afterwards.  After -e, run e2e_reload if running.
e2e_postconf() {
    _e2e_backdate
    postconf -c "$PFCONF" "$@"
    local rc=$?
    _e2e_backdate
    return $rc
}

# The master exits before its daemons; orphans would then linger as zombies
# until PID 1 reaps them (slowly).  This wrapper is a child subreaper: it
# runs CMD and exits only when every descendant has been reaped.
_E2E_REAPER='
import ctypes, os, signal, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)        # PR_SET_CHILD_SUBREAPER
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)            # outlive the master: reap all
rc = 1
while True:
    try:
        p, st = os.wait()
    except ChildProcessError:
        break
    except KeyboardInterrupt:
        continue
    if p == pid:
        rc = os.waitstatus_to_exitcode(st)
sys.exit(rc)
'

# e2e_reload: `postfix reload` (its background postsuper reaped, too).
e2e_reload() { "$E2E_PY" -c "$_E2E_REAPER" postfix -c "$PFCONF" reload >/dev/null 2>&1; }

# e2e_postfix SMTP_PORT [EXTRA_MAIN_CF_FILE] [EXTRA_MASTER_CF_FILE]: write
# main.cf (defaults below, then the extra file's settings replace or add
# to them) and master.cf (Debian's, smtpd on 127.0.0.1:SMTP_PORT, extra
# lines appended, nothing chrooted), start Postfix, wait for its 220.  Once
# per test; change settings later with e2e_postconf -e ... && e2e_reload.
e2e_postfix() {
    local port=$1 extra_main=${2:-} extra_master=${3:-} line entry args=()
    if [ -n "$E2E_PF_PID" ]; then echo "# e2e: e2e_postfix called twice" >&2; return 1; fi
    E2E_SMTP_PORT=$port
    _e2e_take_port "$port"
    cat >"$PFCONF/main.cf" <<EOF
# Waypost e2e private instance (t/e2e/lib.sh)
compatibility_level = 3.6
queue_directory = $PFSPOOL
data_directory = $E2E/pf/data
meta_directory = /etc/postfix
maillog_file = $PFLOG
maillog_file_prefixes = $E2E
myhostname = test.local
mydomain = test.local
myorigin = test.local
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains =
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_authorized_xclient_hosts = 127.0.0.0/8
smtp_dns_support_level = disabled
smtp_host_lookup = native
lmtp_host_lookup = native
smtpd_peername_lookup = no
smtpd_error_sleep_time = 0
smtputf8_enable = no
append_dot_mydomain = no
biff = no
alias_maps =
alias_database =
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
EOF
    sed "s/^smtp      inet/127.0.0.1:$port inet/" /etc/postfix/master.cf >"$PFCONF/master.cf"
    if [ -n "$extra_master" ]; then cat "$extra_master" >>"$PFCONF/master.cf" || return 1; fi
    if [ -n "$extra_main" ]; then
        # Logical lines (continuations start with white space) -> postconf -e,
        # so a parameter given again replaces the default above.
        entry=
        while IFS= read -r line || [ -n "$line" ]; do
            case $line in
            '#'* | '') continue ;;
            [[:space:]]*) entry="$entry ${line#"${line%%[![:space:]]*}"}"; continue ;;
            esac
            [ -n "$entry" ] && args+=("$entry")
            entry=$line
        done <"$extra_main"
        [ -n "$entry" ] && args+=("$entry")
        if [ ${#args[@]} -gt 0 ]; then e2e_postconf -e "${args[@]}" || return 1; fi
    fi
    e2e_postconf -F '*/*/chroot = n' || return 1
    (_e2e_exec "$E2E_PY" -c "$_E2E_REAPER" postfix -c "$PFCONF" start-fg) \
        >"$E2E/postfix-fg.log" 2>&1 &
    E2E_PF_PID=$!
    echo "$E2E_PF_PID" >"$E2E/pf.pid"
    if ! e2e_wait_banner 127.0.0.1 "$port" 15; then
        echo "# e2e: Postfix did not start:" >&2
        cat "$E2E/postfix-fg.log" >&2; tail -20 "$PFLOG" >&2 2>/dev/null
        return 1
    fi
}
# e2e_send FROM TO... [-- SEND.PY-OPTIONS]: one small message through the
# private Postfix.  Prints "XCLIENT code text", "MAIL code text",
# "RCPT <to> code text" for each recipient and "DATA code text".  Exit 0 if
# the message was queued.  Options (t/e2e/send.py): --xclient IP (look like
# that outside client), --helo NAME, --subject S, --header 'N: v' (repeat),
# --body TEXT, --port P (default: e2e_postfix's).
e2e_send() {
    local from=$1 rcpts=() ; shift
    while [ $# -gt 0 ] && [ "$1" != -- ]; do rcpts+=("$1"); shift; done
    [ "${1:-}" = -- ] && shift
    "$E2E_PY" "$E2E_LIBDIR/send.py" --port "$E2E_SMTP_PORT" "$@" -- "$from" "${rcpts[@]}"
}

# _e2e_pf_running: our Postfix is up.  (postqueue without a master falls
# back to running showq itself, slowly, leaving zombies: don't.)
_e2e_pf_running() {
    [ -n "$E2E_PF_PID" ] && _e2e_alive "$E2E_PF_PID" && return 0
    echo "# e2e: Postfix is not running" >&2
    return 1
}

# e2e_wait_queue_empty [SECONDS]: poll postqueue -j; non-zero on timeout.
e2e_wait_queue_empty() {
    local i max=$((${1:-10} * 10)) out
    _e2e_pf_running || return 1
    for ((i = 0; i < max; i++)); do
        out=$(postqueue -c "$PFCONF" -j 2>&1) && [ -z "$out" ] && return 0
        sleep 0.1
    done
    echo "# e2e: queue not empty after ${1:-10}s:" >&2
    printf '%s\n' "$out" | head -5 | sed 's/^/#   /' >&2
    return 1
}
# e2e_queue: the queue as JSON lines (postqueue -j).
e2e_queue() { _e2e_pf_running && postqueue -c "$PFCONF" -j; }

# e2e_log_grep [GREP-OPTIONS] PATTERN: grep the maillog.
e2e_log_grep() { grep "$@" "$PFLOG"; }
# e2e_log_wait PATTERN [SECONDS]: until an extended regexp shows in the log.
e2e_log_wait() {
    local i max=$((${2:-10} * 10))
    for ((i = 0; i < max; i++)); do
        grep -qE -- "$1" "$PFLOG" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
