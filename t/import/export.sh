#!/bin/sh
# SPDX-License-Identifier: MIT
# `waypost export cgp` against a scripted CommuniGate CLI (t/import/fakecli.py
# on loopback, a port the kernel picks): the login, each command, a refused
# login, malformed answers; and the export imports like the sample it
# was served from.
. "$top_srcdir/t/lib.sh"
scratch
SRC="$top_srcdir/t/data/cgp"
echo secret > "$dir/pw"
fake_pid=

# start_fake NAME [fakecli options]: a fake server for one session; sets $port.
start_fake() {
    name=$1; shift
    rm -f "$dir/$name.port"
    python3 "$top_srcdir/t/import/fakecli.py" "$SRC" "$dir/$name.port" "$dir/$name.log" "$@" &
    fake_pid=$!
    for _i in $(seq 1 100); do [ -s "$dir/$name.port" ] && break; sleep 0.1; done
    port=$(cat "$dir/$name.port")
}
stop_fake() { # the server ends after its session; never leave one behind
    [ -n "$fake_pid" ] || return 0
    for _i in $(seq 1 50); do kill -0 "$fake_pid" 2>/dev/null || break; sleep 0.1; done
    kill "$fake_pid" 2>/dev/null; wait "$fake_pid" 2>/dev/null; fake_pid=
}
trap 'stop_fake; rm -rf "$dir"' EXIT

export_to() { # export_to OUT [options]
    out=$1; shift
    "$WAYPOST" export cgp --host 127.0.0.1 --port "$port" --user postmaster --password-file "$dir/pw" -o "$out" "$@"
}

# A whole export.
start_fake ok
export_to "$dir/exp" > "$dir/ok.out" 2>&1; rc=$?
stop_fake
check "export succeeds" [ "$rc" = 0 ]
check "it logged in with USER and PASS" sh -c "head -2 '$dir/ok.log' | tr '\n' ' ' | grep -qx 'USER postmaster PASS \*\*\* '"
for cmd in MainDomainName ListDomains GetRouterTable GetServerMailRules 'GetDomainSettings "company.dom"' \
           'GetDomainAliases "legacy.dom"' 'ListAccounts "domain.dom"' 'ListForwarders "company.dom"' \
           'GetForwarder "sales@company.dom"' 'ListGroups "company.dom"' 'GetGroup "staff@company.dom"' \
           'ListLists "company.dom"' 'GetDomainSettings "void.dom"' QUIT; do
    check "it sent: $cmd" grep -qxF "$cmd" "$dir/ok.log"
done
# Each file holds the data line exactly as served.
n=0; same=0
for f in "$dir"/exp/*; do
    n=$((n + 1)); b=$(basename "$f")
    cmp -s "$f" "$SRC/$b" && same=$((same + 1))
done
check "22 files, each the answer as served ($same of $n)" [ "$n" = 22 ] && [ "$same" = 22 ]
check "no file for commands the server refused" [ ! -e "$dir/exp/ListLists.domain.dom" ]
expect_output "a refused command is a warning" 'ListLists "domain.dom": refused; its file is left out (warning)' cat "$dir/ok.out"
expect_exit "the export imports" 0 "$WAYPOST" import cgp "$dir/exp" -o "$dir/imp"
expect_exit "the sample imports" 0 "$WAYPOST" import cgp "$SRC" -o "$dir/imp2"
check "to the same waypost.conf and router.table" sh -c "cmp -s '$dir/imp/waypost.conf' '$dir/imp2/waypost.conf' && cmp -s '$dir/imp/router.table' '$dir/imp2/router.table'"

# Existing files are kept unless --force.
start_fake again
expect_output "existing files are not replaced" "exists (--force replaces it)" export_to "$dir/exp"
stop_fake
start_fake force
expect_exit "--force replaces them" 0 export_to "$dir/exp" --force
stop_fake

# A refused login: a clear error, nothing written.
echo wrong > "$dir/pw"
start_fake refused
export_to "$dir/refused" > "$dir/refused.out" 2>&1; rc=$?
stop_fake
check "refused login: exit 1" [ "$rc" = 1 ]
expect_output "refused login: the server's answer" "PASS: '515 Incorrect password or account name'" cat "$dir/refused.out"
expect_output "refused login: a clear error" "refused the login of postmaster; nothing written" cat "$dir/refused.out"
check "refused login: nothing written" [ ! -e "$dir/refused" ]
check "refused login: no command after PASS" sh -c "! grep -q MainDomainName '$dir/refused.log'"
echo secret > "$dir/pw"

# Malformed answers: a clear error naming the command, nothing written.
start_fake malformed --malformed GetServerMailRules
export_to "$dir/malformed" > "$dir/malformed.out" 2>&1; rc=$?
stop_fake
check "malformed data: exit 1" [ "$rc" = 1 ]
expect_output "malformed data: the command and the parser's error" \
    "GetServerMailRules: malformed data from 127.0.0.1: 1:17: unterminated array" cat "$dir/malformed.out"
check "malformed data: nothing written" [ ! -e "$dir/malformed" ]
start_fake garbage --garbage ListDomains
export_to "$dir/garbage" > "$dir/garbage.out" 2>&1; rc=$?
stop_fake
check "not a CLI answer: exit 1" [ "$rc" = 1 ]
expect_output "not a CLI answer: named" "ListDomains: not a CLI answer from 127.0.0.1" cat "$dir/garbage.out"
check "not a CLI answer: nothing written" [ ! -e "$dir/garbage" ]

# Nobody listening: a clear error.
expect_output "connection refused" "cannot connect to 127.0.0.1 port $port" export_to "$dir/none"
expect_exit "usage: no --host" 2 "$WAYPOST" export cgp --user u --password-file "$dir/pw" -o "$dir/x"
done_testing
