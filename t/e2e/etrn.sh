#!/bin/bash
# SPDX-License-Identifier: MIT
# End to end through a real Postfix: Hold Mail for Domains and ETRN.  The
# sample Router table merges domain2.dom and domain3.dom into the queue of
# domain1.dom; here that queue is held (router.hold_queues) and only the
# SASL account cust1 may release it.  One message per domain waits in
# Postfix's deferred queue; ETRN from clients that may not release the
# queue is refused and delivers nothing; one "ETRN domain1.dom" from cust1
# (XCLIENT LOGIN) delivers all three to the customer's smtp-sink, because
# waypost-policyd flushes the merged domains (Postfix's flush alone is keyed
# by the recipient domain and would release domain1.dom's mail only).
. "$(dirname "$0")/lib.sh"
e2e_need || { echo "Bail out! cannot install postfix/python3"; exit 1; }
e2e_init
. "$(dirname "$0")/stack.sh"
STACK_NET=127.0.8     # sinks apart from routing.sh's, which may run at the same time
STACK_ROUTER_EXTRA='hold_queues = [ "domain1.dom" ];'
STACK_POLICYD_EXTRA='etrn_queues = ( { queue = "domain1.dom"; accounts = [ "cust1" ]; } ); etrn_timeout = 20;'
# Every flush also makes Postfix's queue manager ignore defer_transports on
# its next scan of the deferred queue (for all held mail, not only the
# flushed domain's): with the usual scan interval such a scan cannot happen
# during this test, so what arrives was flushed by name.
if stack_start "queue_run_delay = 300s"; then ok "stack with the held queue domain1.dom is up"
else not_ok "stack up"; echo "Bail out! no stack"; exit 1; fi
check "postconf: the policy service decides ETRN" \
    grep -qx "smtpd_etrn_restrictions = check_policy_service unix:$W/policy.sock" "$E2E/main.extra"
check "postconf: held domains are fast-flush domains" grep -q '^fast_flush_domains = \$relay_domains' "$E2E/main.extra"
check "postconf: the hold transport is deferred" grep -qx 'defer_transports = waypost-hold' "$E2E/main.extra"
got=$(postmap -c "$PFCONF" -q y@domain2.dom "socketmap:unix:$W/map.sock:transport" 2>&1)
check "domain2.dom routes into the held queue (transport $got)" test "$got" = "waypost-hold:domain1.dom"

# etrn [XCLIENT-ATTRS] DOMAIN: print "CODE TEXT" of the ETRN reply.
etrn() {
    "$E2E_PY" - "$SMTP" "$@" <<'EOF'
import smtplib, sys
port, args = int(sys.argv[1]), sys.argv[2:]
s = smtplib.SMTP("127.0.0.1", port, local_hostname="customer.test", timeout=30)
s.ehlo()
if len(args) > 1:
    code, text = s.docmd("XCLIENT", args[0])
    if code != 220:
        print("XCLIENT", code, text.decode()); sys.exit(1)
    s.ehlo()
code, text = s.docmd("ETRN", args[-1])
print(code, text.decode())
s.quit()
EOF
}
expect_etrn() { # expect_etrn DESCRIPTION WANT-PREFIX [XCLIENT-ATTRS] DOMAIN
    local desc=$1 want=$2; shift 2
    local got; got=$(etrn "$@" 2>&1)
    case $got in "$want"*) ok "$desc: $got" ;; *) not_ok "$desc"; echo "#   wanted: $want..."; echo "#   got:    $got" ;; esac
}
# held COUNT: the queue holds COUNT messages, each deferred by the hold transport.
held() {
    local q; q=$(e2e_queue) || return 1
    [ "$(grep -c '"queue_name": *"deferred"' <<<"$q")" = "$1" ] &&
        [ "$(grep -o '"delay_reason": *"deferred transport"' <<<"$q" | wc -l)" = "$1" ]
}
wait_held() { local i; for ((i = 0; i < 100; i++)); do held "$1" && return 0; sleep 0.1; done; return 1; }

# --- one message per domain: flushing domain1.dom's file alone cannot carry the others
OUT=(--xclient 192.0.2.10)
for r in x@domain1.dom y@domain2.dom z@domain3.dom; do
    out=$(e2e_send sender@client.test "$r" -- "${OUT[@]}" --subject "for $r")
    case $out in *"DATA 250"*) ok "accepted for $r" ;; *) not_ok "accepted for $r"; echo "$out" | sed 's/^/#   /' ;; esac
done
check "all three wait in the deferred queue (deferred transport)" wait_held 3
check "the flush logs know the merged domains" test -s "$PFSPOOL/flush/domain2_dom" -a -s "$PFSPOOL/flush/domain3_dom"
check "nothing reached the customer" test "$(e2e_sink_count customer)" = 0

# --- clients that may not release the queue
expect_etrn "outside client refused" "459 4.7.1 <domain1.dom>: Etrn command rejected: this client may not release queue domain1.dom" "ADDR=192.0.2.10" domain1.dom
expect_etrn "trusted network, but not the queue's account, refused" "459 4.7.1" domain1.dom
expect_etrn "another account refused" "459 4.7.1" "ADDR=192.0.2.10 LOGIN=mallory" domain1.dom
expect_etrn "a merged domain needs the queue's right too" "459 4.7.1 <domain2.dom>: Etrn command rejected: this client may not release queue domain1.dom" "ADDR=192.0.2.10" domain2.dom
expect_etrn "a domain that is not held: Postfix's own answer" "459 <elsewhere.example>: service unavailable" \
    "ADDR=192.0.2.10" elsewhere.example
sleep 2
check "refused ETRNs delivered nothing" test "$(e2e_sink_count customer)" = 0
check "the three messages still wait" held 3
check "waypost-policyd logged the refusals" grep -q "ETRN domain1.dom from 192.0.2.10 (login -): refused: 459" "$E2E"/policyd*.log
check "... each on one decision line, fields in order" grep -Eq 'event=etrn queue_id="" client=[^ ]*\[192\.0\.2\.10\] sasl_username="" domain=domain1\.dom queue=domain1\.dom action="459 4\.7\.1 [^"]*" result=refused$' "$E2E"/policyd*.log

# --- the queue's account releases it: all three domains arrive
expect_etrn "cust1 releases domain1.dom" "250 Queuing started" "ADDR=192.0.2.10 LOGIN=cust1" domain1.dom
check "the customer received all three messages" e2e_sink_wait customer 3 15
got=$(e2e_sink_rcpts customer | tr '\n' ' ' | sed 's/ $//')
check "recipients: $got" test "$got" = "x@domain1.dom y@domain2.dom z@domain3.dom"
check "queue drains" e2e_wait_queue_empty 10
check "the release on one decision line" grep -Eq 'event=etrn queue_id="" client=[^ ]*\[192\.0\.2\.10\] sasl_username=cust1 domain=domain1\.dom queue=domain1\.dom action=OK result=released$' "$E2E"/policyd*.log
check "policyd flushed the merged domains with postqueue -s" \
    grep -q "ETRN domain1.dom: flushed domain2.dom" "$E2E"/policyd*.log
check "... and domain3.dom" grep -q "ETRN domain1.dom: flushed domain3.dom" "$E2E"/policyd*.log
check "each message exactly once" test "$(e2e_sink_count customer)" = 3

# --- a new message for a merged domain waits again; ETRN for it alone releases it
out=$(e2e_send sender@client.test z2@domain3.dom -- "${OUT[@]}")
case $out in *"DATA 250"*) ok "accepted for z2@domain3.dom" ;; *) not_ok "accepted for z2@domain3.dom" ;; esac
check "it waits" wait_held 1
expect_etrn "ETRN domain3.dom by cust1" "250 Queuing started" "ADDR=192.0.2.10 LOGIN=cust1" domain3.dom
check "it arrives" e2e_sink_wait customer 4 15

done_testing
