#!/bin/sh
# SPDX-License-Identifier: MIT
# Account source userdb:unix:PATH against a stand-in for Dovecot's
# auth-userdb socket: found, not found (Mail to Unknown), failures and a
# silent server give TEMP, never a wrong answer.
. "$top_srcdir/t/lib.sh"
scratch
FAKE="$top_builddir/t/unit/fake_userdb"
pids=""
trap 'for p in $pids; do kill $p 2>/dev/null; wait $p 2>/dev/null; done; rm -rf "$dir"' EXIT

start_fake() { # start_fake SOCKET MODE USERS...
    sock=$1
    "$FAKE" "$@" > "$dir/fake.log" 2>&1 &
    pids="$pids $!"
    i=0; while [ ! -S "$sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
}
write_conf() { # write_conf SOCKET
    cat > "$dir/w.conf" <<C
router: {
  main_domain = "company.dom";
  userdb_timeout_ms = 300;
  domains = ( { name = "domain.dom"; accounts = "userdb:unix:$1";
                mail_to_unknown = "Rerouted to *%domain.dom@otherserver.dom.via"; } );
};
C
}

start_fake "$dir/ok.sock" answer carol@domain.dom
write_conf "$dir/ok.sock"
expect_output "known account is LOCAL" '"kind":"LOCAL","address":"carol@domain.dom"' "$WAYPOST" -c "$dir/w.conf" route --json carol@domain.dom
expect_output "names are sent folded to lower case" '"kind":"LOCAL"' "$WAYPOST" -c "$dir/w.conf" route --json Carol@Domain.Dom
expect_output "unknown account is rerouted" '"kind":"RELAY","address":"aname@domain.dom","nexthop":"otherserver.dom"' "$WAYPOST" -c "$dir/w.conf" route --json aname@domain.dom
check "the server was asked for the full address" grep -q "asked carol@domain.dom" "$dir/fake.log"

start_fake "$dir/fail.sock" fail
write_conf "$dir/fail.sock"
expect_output "FAIL answer is TEMP" '"kind":"TEMP"' "$WAYPOST" -c "$dir/w.conf" route --json carol@domain.dom

start_fake "$dir/hang.sock" hang
write_conf "$dir/hang.sock"
expect_output "silent server is TEMP after the timeout" '"text":"4.3.0 Account lookup failed, try again later"' "$WAYPOST" -c "$dir/w.conf" route --json carol@domain.dom

write_conf "$dir/absent.sock"
expect_output "no server is TEMP" '"kind":"TEMP"' "$WAYPOST" -c "$dir/w.conf" route --json carol@domain.dom

done_testing
