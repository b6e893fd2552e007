#!/bin/bash
# SPDX-License-Identifier: MIT
# End to end through a real Postfix: Hold Mail for Domains and ETRN.  The
# sample Router table merges domain2.dom and domain3.dom into the queue of
# domain1.dom; here that queue and friend.com's are held
# (router.hold_queues): Postfix hands their mail to waypost-odmrd over LMTP,
# where it waits in the spool.  ETRN from clients that may not release a
# queue is refused and delivers nothing; "ETRN domain1.dom" from cust1
# (XCLIENT LOGIN) makes waypost-odmrd deliver that queue, all three domains,
# to the customer's smtp-sink (next hop from a local DNS server), and
# nothing of friend.com's queue, however often Postfix scans and flushes
# its own queue (queue_run_delay = 10s, postqueue -f): with Postfix's
# defer_transports one flush released every held queue.
. "$(dirname "$0")/lib.sh"
e2e_need || { echo "Bail out! cannot install postfix/python3"; exit 1; }
command -v dnsmasq >/dev/null || { echo "1..0 # SKIP dnsmasq (Debian package dnsmasq-base) is not installed"; exit 0; }
e2e_init
. "$(dirname "$0")/stack.sh"
STACK_NET=127.0.8     # sinks apart from routing.sh's, which may run at the same time
e2e_free_port DNS
dnsmasq -k --conf-file=/dev/null --port="$DNS" --listen-address=127.0.0.1 --bind-interfaces --no-resolv \
    --no-hosts --user=root --mx-host=domain1.dom,mx.domain1.dom,10 --host-record=mx.domain1.dom,$STACK_NET.9 \
    --mx-host=friend.com,friend.com,10 --host-record=friend.com,$STACK_NET.4 \
    >"$E2E/dnsmasq.log" 2>&1 &
_e2e_record $!
STACK_ROUTER_EXTRA='hold_queues = [ "domain1.dom", "friend.com" ];'
STACK_ODMR_EXTRA="control_socket = \"$E2E/odmr-control.sock\"; dns_servers = \"127.0.0.1:$DNS\";"
STACK_POLICYD_EXTRA="etrn_queues = ( { queue = \"domain1.dom\"; accounts = [ \"cust1\" ]; }, { queue = \"friend.com\"; release = \"anyone\"; } ); etrn_timeout = 20; etrn_socket = \"$E2E/odmr-control.sock\";"
if stack_start "queue_run_delay = 10s"; then ok "stack with the held queues domain1.dom and friend.com is up"
else not_ok "stack up"; echo "Bail out! no stack"; exit 1; fi
check "postconf: the policy service decides ETRN" \
    grep -qx "smtpd_etrn_restrictions = check_policy_service unix:$W/policy.sock" "$E2E/main.extra"
check "postconf: held domains are fast-flush domains" grep -q '^fast_flush_domains = \$relay_domains' "$E2E/main.extra"
check "postconf: no defer_transports" sh -c "! grep -q '^defer_transports' '$E2E/main.extra'"
got=$(postmap -c "$PFCONF" -q y@domain2.dom "socketmap:unix:$W/map.sock:transport" 2>&1)
check "domain2.dom routes into waypost-odmrd's spool (transport $got)" test "$got" = "lmtp:unix:$W/odmr.sock"

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
# spooled QUEUE: messages waiting in waypost-odmrd's spool for QUEUE.
spooled() { find "$W/odmr-spool/$1" -maxdepth 1 -type f -name '[0-9a-f]*' 2>/dev/null | wc -l | tr -d ' '; }
wait_spooled() { local i; for ((i = 0; i < 150; i++)); do [ "$(spooled "$1")" = "$2" ] && return 0; sleep 0.1; done; return 1; }

# --- one message per domain, and one for friend.com
OUT=(--xclient 192.0.2.10)
for r in x@domain1.dom y@domain2.dom z@domain3.dom f@friend.com; do
    out=$(e2e_send sender@client.test "$r" -- "${OUT[@]}" --subject "for $r")
    case $out in *"DATA 250"*) ok "accepted for $r" ;; *) not_ok "accepted for $r"; echo "$out" | sed 's/^/#   /' ;; esac
done
check "domain1.dom's queue holds three messages in the spool" wait_spooled domain1.dom 3
check "friend.com's queue holds one" wait_spooled friend.com 1
check "Postfix's own queue is empty" e2e_wait_queue_empty 10
check "nothing reached the customers" test "$(e2e_sink_count customer)$(e2e_sink_count friendmx)" = 00
out=$("$STACK_WAYPOST" -c "$W/waypost.conf" queue list)
echo "$out" | grep -Eq '^domain1.dom +held +3 +3 '; check "waypost queue list shows the held queue" [ $? -eq 0 ]

# --- clients that may not release the queue
expect_etrn "outside client refused" "459 4.7.1 <domain1.dom>: Etrn command rejected: this client may not release queue domain1.dom" "ADDR=192.0.2.10" domain1.dom
expect_etrn "trusted network, but not the queue's account, refused" "459 4.7.1" domain1.dom
expect_etrn "another account refused" "459 4.7.1" "ADDR=192.0.2.10 LOGIN=mallory" domain1.dom
expect_etrn "a merged domain needs the queue's right too" "459 4.7.1 <domain2.dom>: Etrn command rejected: this client may not release queue domain1.dom" "ADDR=192.0.2.10" domain2.dom
expect_etrn "a domain that is not held: Postfix's own answer" "459 <elsewhere.example>: service unavailable" \
    "ADDR=192.0.2.10" elsewhere.example
sleep 2
check "refused ETRNs delivered nothing" test "$(e2e_sink_count customer)" = 0
check "the three messages still wait" test "$(spooled domain1.dom)" = 3
check "waypost-policyd logged the refusals" grep -q "ETRN domain1.dom from 192.0.2.10 (login -): refused: 459" "$E2E"/policyd*.log
check "... each on one decision line, fields in order" grep -Eq 'event=etrn queue_id="" client=[^ ]*\[192\.0\.2\.10\] sasl_username="" domain=domain1\.dom queue=domain1\.dom action="459 4\.7\.1 [^"]*" result=refused$' "$E2E"/policyd*.log

# --- the queue's account releases it: all three domains arrive, friend.com's stays
expect_etrn "cust1 releases domain1.dom" "250" "ADDR=192.0.2.10 LOGIN=cust1" domain1.dom
check "the customer received all three messages" e2e_sink_wait customer 3 15
got=$(e2e_sink_rcpts customer | tr '\n' ' ' | sed 's/ $//')
check "recipients: $got" test "$got" = "x@domain1.dom y@domain2.dom z@domain3.dom"
check "domain1.dom's queue is empty" wait_spooled domain1.dom 0
check "waypost-odmrd logged the release" grep -q "queue domain1.dom released: 3 messages, 3 recipients delivered" "$E2E"/odmrd*.log
# Postfix flushes and scans its queue (queue_run_delay 10 s) meanwhile:
# friend.com's message is not in it to be released.
postqueue -c "$PFCONF" -f
sleep 12
postqueue -c "$PFCONF" -f
sleep 2
check "friend.com's message was not delivered by domain1.dom's ETRN, a flush or 12 s of queue scans" \
    test "$(e2e_sink_count friendmx)" = 0
check "... it still waits in its queue" test "$(spooled friend.com)" = 1
check "each of domain1.dom's messages exactly once" test "$(e2e_sink_count customer)" = 3
check "the release on one decision line" grep -Eq 'event=etrn queue_id="" client=[^ ]*\[192\.0\.2\.10\] sasl_username=cust1 domain=domain1\.dom queue=domain1\.dom action=OK result=released$' "$E2E"/policyd*.log

# --- friend.com's own ETRN releases it
expect_etrn "ETRN friend.com (anyone may)" "250" "ADDR=192.0.2.10" friend.com
check "friend.com's message arrives" e2e_sink_wait friendmx 1 15

# --- a new message for a merged domain waits again; ETRN for it releases its queue
out=$(e2e_send sender@client.test z2@domain3.dom -- "${OUT[@]}")
case $out in *"DATA 250"*) ok "accepted for z2@domain3.dom" ;; *) not_ok "accepted for z2@domain3.dom" ;; esac
check "it waits in domain1.dom's queue" wait_spooled domain1.dom 1
expect_etrn "ETRN domain3.dom by cust1" "250" "ADDR=192.0.2.10 LOGIN=cust1" domain3.dom
check "it arrives" e2e_sink_wait customer 4 15
check "nothing twice" test "$(e2e_sink_count customer)$(e2e_sink_count friendmx)" = 41

done_testing
