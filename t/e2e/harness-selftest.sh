#!/bin/bash
# SPDX-License-Identifier: MIT
# t/e2e/harness-selftest.sh - proves t/e2e/lib.sh with a plain Postfix (no
# Waypost): two smtp-sinks on different loopback addresses, routing by a
# texthash transport map (one next hop an IP literal, one a host name made
# resolvable by e2e_host), relay refused to an XCLIENT-untrusted client.
. "$(dirname "$0")/lib.sh"

# shellcheck disable=SC2119 # e2e_need takes optional extra packages
e2e_need || { echo "Bail out! cannot install postfix/python3"; exit 1; }
e2e_init

hosts_before=$(md5sum </etc/hosts)
e2e_free_port P1; e2e_free_port P2; e2e_free_port PS

check "sink one on 127.0.0.2" e2e_sink one 127.0.0.2:"$P1"
check "sink two on 127.0.0.3" e2e_sink two 127.0.0.3:"$P2"

cat >"$PFCONF/transport" <<EOF
one.test    smtp:[127.0.0.2]:$P1
two.test    smtp:[otherserver.dom]:$P2
EOF
cat >"$E2E/main.extra" <<EOF
relay_domains = one.test,
    two.test
transport_maps = texthash:$PFCONF/transport
EOF
if e2e_postfix "$PS" "$E2E/main.extra"; then ok "postfix up on 127.0.0.1"
else not_ok "postfix up on 127.0.0.1"; echo "Bail out! no Postfix"; exit 1; fi
check "relay_domains from the extra file" \
    test "$(postconf -c "$PFCONF" -h relay_domains)" = "one.test, two.test"
e2e_host otherserver.dom 127.0.0.3     # also works before e2e_postfix

# A trusted client (127.0.0.1 is in mynetworks): one message for both domains.
expect_output "trusted client: message queued" "DATA 250" \
    e2e_send sender@client.test a@one.test b@one.test c@two.test
expect_output "second message queued" "DATA 250" \
    e2e_send sender@client.test d@two.test -- --subject second

# An outside client (XCLIENT ADDR=192.0.2.10): relay domain yes, others no.
out=$(e2e_send sender@outside.test x@elsewhere.test e@one.test -- --xclient 192.0.2.10)
case $out in *"XCLIENT 220"*) ok "XCLIENT accepted" ;; *) not_ok "XCLIENT accepted"; echo "# $out" ;; esac
case $out in
*"RCPT <x@elsewhere.test> 554 5.7.1 <x@elsewhere.test>: Relay access denied"*) ok "untrusted: 554 Relay access denied" ;;
*) not_ok "untrusted: 554 Relay access denied"; printf '# %s\n' "$out" ;;
esac
case $out in
*"RCPT <e@one.test> 250"*"DATA 250"*) ok "untrusted: relay domain accepted" ;;
*) not_ok "untrusted: relay domain accepted"; printf '# %s\n' "$out" ;;
esac

check "queue drains" e2e_wait_queue_empty 10
is() { # is DESCRIPTION GOT WANT
    if [ "$2" = "$3" ]; then ok "$1"; else
        not_ok "$1"; printf '#   got:  %s\n#   want: %s\n' "${2//$'\n'/ }" "${3//$'\n'/ }"; fi
}
is "sink one got a, b, e" "$(e2e_sink_rcpts one)" "$(printf 'a@one.test\nb@one.test\ne@one.test')"
is "sink two got c, d" "$(e2e_sink_rcpts two)" "$(printf 'c@two.test\nd@two.test')"
is "sink one: 2 messages" "$(e2e_sink_count one)" 2
is "sink two: 2 messages" "$(e2e_sink_count two)" 2
check "no relay to elsewhere.test" test -z "$({ e2e_sink_rcpts one; e2e_sink_rcpts two; } | grep elsewhere)"
check "log: delivered via otherserver.dom[127.0.0.3]" \
    e2e_log_wait "to=<c@two.test>, relay=otherserver.dom\[127.0.0.3\]:$P2, .*status=sent" 5
check "log: untrusted client reject logged" e2e_log_grep -q 'reject: RCPT from unknown\[192.0.2.10\]'
if [ "$E2E_HOSTS_MODE" = ns ]; then
    check "/etc/hosts untouched (private hosts file)" test "$(md5sum </etc/hosts)" = "$hosts_before"
    check "otherserver.dom private to Postfix" eval '! getent hosts otherserver.dom >/dev/null'
else # E2E_HOSTS_MODE=etc: a tagged line, removed again by the trap
    check "/etc/hosts has the tagged line" grep -q "otherserver.dom.*# waypost-e2e $$\$" /etc/hosts
fi

done_testing
