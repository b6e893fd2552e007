#!/bin/bash
# SPDX-License-Identifier: MIT
# A Route condition meets an account source that does not answer, through
# a real Postfix: waypost-milter's Router asks a stand-in for Dovecot's
# auth-userdb socket (t/unit/fake_userdb) that hangs, so the recipient's
# route is TEMP.  The message must get a 451 4.3.0 at the end of DATA and
# reach nobody (smtp-sink, the next hop, gets nothing), `waypost rules
# --test` must say TEMPFAIL; once the source answers again the client's
# retry is accepted and delivered once, with the rule's header.  The
# milter's counters (waypost-milter(8), METRICS) say so too: one tempfail
# for a source that did not answer, the accepted messages, one transaction
# the client reset (Postfix aborts it), and nothing else.
. "$(dirname "$0")/lib.sh"
e2e_need || { echo "Bail out! cannot install postfix"; exit 1; }
e2e_init
W="$E2E/waypost"
mkdir -p "$W"
FAKE="$top_builddir/t/unit/fake_userdb"
e2e_sink next 127.0.4.5:25 || { echo "Bail out! no smtp-sink"; exit 1; }
e2e_host dove.dom 127.0.4.5
e2e_free_port SMTP
e2e_free_port MPORT

start_fake() { # start_fake MODE USERS...
    [ -n "${FK:-}" ] && { kill "$FK" 2>/dev/null; wait "$FK" 2>/dev/null; }
    rm -f "$W/userdb.sock"
    "$FAKE" "$W/userdb.sock" "$@" >> "$W/fake.log" 2>&1 &
    FK=$!
    local i=0; while [ ! -S "$W/userdb.sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
}
e2e_on_exit '[ -n "${FK:-}" ] && kill $FK 2>/dev/null'
start_fake hang

# The milter's Router: dove.dom's accounts are in "Dovecot"; Postfix itself
# just relays dove.dom to the next hop (no policyd here: the milter is what
# is under test).
cat > "$W/waypost.conf" <<C
router: {
  main_domain = "company.dom";
  userdb_timeout_ms = 500;
  domains = ( { name = "company.dom"; accounts = "list:postmaster"; },
              { name = "dove.dom"; accounts = "userdb:unix:$W/userdb.sock"; } );
};
milter: { listen = "unix:$W/milter.sock"; metrics = "inet:127.0.0.1:$MPORT"; };
rules = (
  { name = "Local mail"; data = ( ("Any Route", "is", "LOCAL()*") );
    action = ( ("Add Header", "X-Local: yes") ); }
);
C
rm -f "$W/milter.sock"
e2e_bg milter "$top_builddir/milter/waypost-milter" -f -c "$W/waypost.conf"; MD=$E2E_LAST_PID
i=0; while [ ! -S "$W/milter.sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
# libmilter notices SIGTERM only every 5 s unless a connection wakes it.
e2e_on_exit 'kill $MD 2>/dev/null; "$E2E_PY" -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])" "$W/milter.sock" 2>/dev/null'
cat > "$E2E/main.extra" <<M
relay_domains = dove.dom
smtpd_milters = unix:$W/milter.sock
milter_default_action = accept
M
e2e_postfix "$SMTP" "$E2E/main.extra" || { echo "Bail out! no Postfix"; exit 1; }

# --- the account source hangs: 451 at the end of DATA, nothing delivered
out=$(e2e_send sender@client.test carol@dove.dom -- --subject "while Dovecot hangs")
case $out in *"DATA 451 4.3.0"*) ok "TEMP route: 451 4.3.0 at the end of DATA" ;;
             *) not_ok "TEMP route: 451 4.3.0 at the end of DATA"; echo "$out" | sed 's/^/#   /' ;; esac
check "Postfix logged the milter's 451" e2e_log_wait "milter-reject: END-OF-MESSAGE .*4\.3\.0 Account lookup failed" 5
sleep 2
check "the next hop got nothing" test "$(e2e_sink_count next)" = 0
check "nothing waits in Postfix's queue" test -z "$(e2e_queue)"
printf 'From: <sender@client.test>\nTo: <carol@dove.dom>\nSubject: test\n\nhello\n' > "$W/msg.eml"
expect_output "rules --test: TEMPFAIL" "result: TEMPFAIL 451 4.3.0 Account lookup failed" \
    "$top_builddir/waypost" -c "$W/waypost.conf" rules --test "$W/msg.eml" --from sender@client.test --to carol@dove.dom
check "the source was asked for carol" grep -q "asked carol@dove.dom" "$W/fake.log"

# --- the source answers again: the client's retry goes through, once
start_fake answer carol@dove.dom
expect_output "rules --test: the rule fires" "add header X-Local: yes" \
    "$top_builddir/waypost" -c "$W/waypost.conf" rules --test "$W/msg.eml" --from sender@client.test --to carol@dove.dom
expect_output "the retry is accepted" "DATA 250" e2e_send sender@client.test carol@dove.dom -- --subject "retry"
check "delivered to the next hop" e2e_sink_wait next 1 10
check "delivered once" test "$(e2e_sink_count next)" = 1
check "with the rule's header" grep -q "^X-Local: yes" $(e2e_sink_files next)
check "the retry, not the refused message" grep -q "^Subject: retry" $(e2e_sink_files next)

# --- a transaction the client resets, then a message: Postfix aborts the first
"$E2E_PY" - "$SMTP" <<'P'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="client.test", timeout=30)
s.ehlo()
s.mail("sender@client.test")
s.rcpt("carol@dove.dom")
s.rset()
# Postfix sends the milter the steps it needs no answer to (the abort
# too) only with the next one it needs answered: a reset transaction
# reaches the milter with the session's next message (waypost-milter(8),
# METRICS)
s.sendmail("sender@client.test", ["carol@dove.dom"], "Subject: after the reset\r\n\r\nhello\r\n")
s.quit()
P
sleep 0.5
scrape_metrics "$MPORT" > "$W/metrics.txt"
metric() { awk -v k="$1 " 'substr($0, 1, length(k)) == k { print $NF }' "$W/metrics.txt"; }
is() { local got; got=$(metric "$1"); check "metrics: $1 = $2 (got ${got:-none})" [ "$got" = "$2" ]; }
is 'waypost_milter_messages_total{result="tempfail"}' 1
is 'waypost_milter_messages_total{result="accept"}' 2
is 'waypost_milter_errors_total{kind="source"}' 1
is 'waypost_milter_errors_total{kind="action"}' 0
is 'waypost_milter_message_duration_seconds_count' 3
is 'waypost_milter_aborted_total' 1
is 'waypost_milter_timeouts_total' 0
is 'waypost_milter_rule_fires_total{rule="Local mail",priority="5"}' 2
check "metrics: the tempfailed message alone waited over 100 ms (for the source)" \
    [ "$(metric 'waypost_milter_message_duration_seconds_bucket{le="0.1"}')" = 2 ]
if command -v promtool >/dev/null 2>&1; then
    check "metrics: promtool check metrics passes" sh -c "promtool check metrics < '$W/metrics.txt'"
fi
done_testing
