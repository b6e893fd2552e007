# SPDX-License-Identifier: MIT
# t/lib.sh - helpers for the shell tests (sourced).
#
# Each test prints "ok N - what" or "not ok N - what" lines (TAP style) and
# ends with done_testing, which exits 1 if anything failed.  The top-level
# runner counts these lines.

: "${top_srcdir:=.}"
: "${top_builddir:=.}"
WAYPOST="$top_builddir/waypost"
CONF="$top_srcdir/conf/waypost.conf"
_n=0
_failed=0

ok() { # ok DESCRIPTION  (after a command that succeeded)
    _n=$((_n + 1)); echo "ok $_n - $1"
}
not_ok() {
    _n=$((_n + 1)); _failed=$((_failed + 1)); echo "not ok $_n - $1"
}
check() { # check DESCRIPTION COMMAND...
    desc=$1; shift
    if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}
# expect_output DESCRIPTION EXPECTED-SUBSTRING COMMAND...: the command's
# stdout+stderr must contain the substring.
expect_output() {
    desc=$1; want=$2; shift 2
    got=$("$@" 2>&1) || true
    case $got in
        *"$want"*) ok "$desc" ;;
        *) not_ok "$desc"; printf '#   wanted: %s\n#   got:    %s\n' "$want" "$got" | head -20 ;;
    esac
}
# expect_exit DESCRIPTION CODE COMMAND...
expect_exit() {
    desc=$1; want=$2; shift 2
    "$@" >/dev/null 2>&1; rc=$?
    if [ "$rc" = "$want" ]; then ok "$desc"; else not_ok "$desc (exit $rc, wanted $want)"; fi
}
scratch() { # sets $dir to a private temporary directory, removed at exit
    dir=$(mktemp -d "${TMPDIR:-/tmp}/wp-test-XXXXXX")
    trap 'rm -rf "$dir"' EXIT
}
# free_ports N: print the first of N consecutive TCP ports (30000-39999,
# away from the e2e tests' 20000-29999) on which nothing listens.
free_ports() {
    _p=$((30000 + ($$ * 7) % 9000))
    while :; do
        _ok=1
        for _k in $(seq 0 $(($1 - 1))); do
            _hex=$(printf '%04X' $((_p + _k)))
            if grep -qE "^ *[0-9]+: [0-9A-F]+:$_hex " /proc/net/tcp /proc/net/tcp6 2>/dev/null; then _ok=0; break; fi
        done
        [ $_ok = 1 ] && { echo $_p; return 0; }
        _p=$((_p + $1)); [ $_p -gt 39900 ] && _p=30000
    done
}
# sample_conf DEST: conf/waypost.conf without its log, policyd, postfix and
# milter sections (a test appends its own), router and rules kept.
sample_conf() {
    sed -e '/^log = {/,/^};/d' -e '/^policyd: {/,/^};/d' -e '/^postfix: {/,/^};/d' \
        -e '/^milter: {/,/^};/d' -e '/^odmr: {/,/^};/d' "$top_srcdir/conf/waypost.conf" > "$1"
}
# scrape_metrics PORT: the exposition text of the metrics endpoint on
# 127.0.0.1:PORT (t/wire.py).
scrape_metrics() {
    "${E2E_PY:-python3}" -c 'import sys; sys.path.insert(0, sys.argv[1]); import wire; sys.stdout.write(wire.http_get(int(sys.argv[2]))[1])' \
        "$top_srcdir/t" "$1"
}
done_testing() {
    echo "1..$_n"
    [ "$_failed" -eq 0 ]
}
