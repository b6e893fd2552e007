#!/bin/bash
# SPDX-License-Identifier: MIT
# waypost-milter's counters (waypost-milter(8), METRICS), driven by
# miltertest: a known mix of messages, transactions that end without an end
# of message, a connection that ends after idling past milter.timeout, and the errors
# Waypost meets (an account source that hangs, a message over the limits,
# a reply text libmilter refuses, a reply the MTA refuses) give exact counts
# on the endpoint, and the output passes promtool.
. "$top_srcdir/t/lib.sh"
scratch
chmod 755 "$dir"
. "$top_srcdir/t/milter/lib.sh"
DEAD=$(free_ports 2)   # nothing listens there: replies fail; the metrics port after it
MPORT=$((DEAD + 1))
FAKE="$top_builddir/t/unit/fake_userdb"
"$FAKE" "$dir/userdb.sock" hang > "$dir/fake.log" 2>&1 &
MILTER_PIDS=$!
i=0; while [ ! -S "$dir/userdb.sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
cat > "$dir/w.conf" <<C
router: {
  main_domain = "company.dom";
  userdb_timeout_ms = 300;
  domains = ( { name = "company.dom"; accounts = "list:alice,hdr,prices"; },
              { name = "dove.dom"; accounts = "userdb:unix:$dir/userdb.sock"; } );
};
milter: {
  listen = "unix:$dir/milter.sock";
  reply_via = "smtp:127.0.0.1:$DEAD";
  timeout = 1;
  metrics = "inet:127.0.0.1:$MPORT";
};
rules = (
  { name = "Refuse"; priority = 9; data = ( ("Subject", "is", "*REFUSE*") );
    action = ( ("Reject with", "refused"), ("Stop Processing") ); },
  { name = "Long"; priority = 9; data = ( ("Subject", "is", "*LONGTEXT*") );
    action = ( ("Reject with", "$(printf 'refused %.0s' $(seq 150))"), ("Stop Processing") ); },
  { name = "Discard"; data = ( ("Subject", "is", "*DISCARDME*") ); action = ( ("Discard") ); },
  { name = "Header"; data = ( ("Any Recipient", "is", "hdr@company.dom") );
    action = ( ("Add Header", "X-Waypost-Test: yes") ); },
  { name = "Prices"; data = ( ("Any Recipient", "is", "prices@company.dom") );
    action = ( ("Reply with", "+Subject: Our price list\n\nHere.\n") ); },
  { name = "Dove"; data = ( ("Any Route", "is", "NOWHERE*") ); action = ( ("Add Header", "X-Never: yes") ); }
);
C
milter_start

mt results '
local c = send(sock, "<a@example.org>", {"<alice@company.dom>"}, {{"Subject", "please REFUSE"}}, "x\r\n")
expect_reply(c, SMFIR_REPLYCODE, "reject")
mt.disconnect(c)
c = send(sock, "<a@example.org>", {"<alice@company.dom>"}, {{"Subject", "DISCARDME"}}, "x\r\n")
expect_reply(c, SMFIR_DISCARD, "discard")
mt.disconnect(c)
c = send(sock, "<a@example.org>", {"<hdr@company.dom>"}, {{"Subject", "h"}}, "x\r\n")
if not mt.eom_check(c, MT_HDRADD, "X-Waypost-Test", "yes") then fail("no header") end
mt.disconnect(c)
c = send(sock, "<a@example.org>", {"<nobody@example.org>"}, {{"Subject", "plain"}}, "x\r\n")
expect_reply(c, SMFIR_CONTINUE, "no rule")
mt.disconnect(c)'
mt reply-refused '
local c = send(sock, "<asker@example.org>", {"<prices@company.dom>"}, {{"From", "<asker@example.org>"}, {"Subject", "prices?"}}, "x\r\n")
expect_reply(c, SMFIR_CONTINUE, "reply")
mt.disconnect(c)'
mt source-hangs '
local c = send(sock, "<a@example.org>", {"<carol@dove.dom>"}, {{"Subject", "to dove"}}, "x\r\n")
expect_reply(c, SMFIR_REPLYCODE, "tempfail")
if not mt.eom_check(c, MT_SMTPREPLY, "451", "4.3.0", "Account lookup failed, try again later") then fail("not 451 4.3.0") end
mt.disconnect(c)'
# 17000 fields of 1 KB: over the 16 MB of header fields a message may bring
mt oversized '
local h = {{"Subject", "big"}}
for i = 1, 17000 do h[#h + 1] = {"X-Big-" .. i, string.rep("a", 1000)} end
local c = send(sock, "<a@example.org>", {"<alice@company.dom>"}, h, "x\r\n")
expect_reply(c, SMFIR_REPLYCODE, "oversized")
if not mt.eom_check(c, MT_SMTPREPLY, "452", "4.3.1", "Too many recipients or headers for the rules") then fail("not 452 4.3.1") end
mt.disconnect(c)'
# A reject text longer than an SMTP reply may be: libmilter refuses it (the
# message is still rejected, with Postfix's own text)
mt reject-text-refused '
local c = send(sock, "<a@example.org>", {"<alice@company.dom>"}, {{"Subject", "LONGTEXT"}}, "x\r\n")
expect_reply(c, SMFIR_REJECT, "rejected without our text")
mt.disconnect(c)'
# Two transactions without an end of message: an abort, and a QUIT amid one
mt aborted '
local c = open_conn(sock)
mt.mailfrom(c, "<a@example.org>")
mt.rcptto(c, "<alice@company.dom>")
if mt.abort(c) ~= nil then fail("abort") end
mt.disconnect(c)
c = open_conn(sock)
mt.mailfrom(c, "<a@example.org>")
mt.disconnect(c)'
# A transaction left idle past milter.timeout (1 s), then ended: a timeout
# (libmilter's own idle check runs every 10 minutes, too slow for a test)
mt timeout '
local c = open_conn(sock)
mt.mailfrom(c, "<a@example.org>")
mt.sleep(2.5)
mt.disconnect(c)'
sleep 0.3

scrape() { scrape_metrics "$MPORT"; }
scrape > "$dir/m.txt"
sed 's/^/# /' "$dir/m.txt" | grep -v '^# # '
metric() { awk -v k="$1 " 'substr($0, 1, length(k)) == k { print $NF }' "$dir/m.txt"; }
is() { # is NAME WANT
    local got; got=$(metric "$1")
    check "$1 = $2 (got ${got:-none})" [ "$got" = "$2" ]
}
# accept: header, no rule, reply; reject: short and long text; tempfail:
# source, oversized
is 'waypost_milter_messages_total{result="accept"}' 3
is 'waypost_milter_messages_total{result="reject"}' 2
is 'waypost_milter_messages_total{result="discard"}' 1
is 'waypost_milter_messages_total{result="tempfail"}' 2
is 'waypost_milter_message_duration_seconds_count' 8
is 'waypost_milter_message_duration_seconds_bucket{le="+Inf"}' 8
is 'waypost_milter_errors_total{kind="source"}' 1
is 'waypost_milter_errors_total{kind="oversized"}' 1
is 'waypost_milter_errors_total{kind="action"}' 1
is 'waypost_milter_errors_total{kind="reply"}' 1
is 'waypost_milter_aborted_total' 3
is 'waypost_milter_timeouts_total' 1
is 'waypost_milter_rule_fires_total{rule="Refuse",priority="9"}' 1
is 'waypost_milter_rule_fires_total{rule="Discard",priority="5"}' 1
is 'waypost_milter_rule_fires_total{rule="Header",priority="5"}' 1
is 'waypost_milter_rule_fires_total{rule="Long",priority="9"}' 1
is 'waypost_milter_rule_fires_total{rule="Prices",priority="5"}' 1
is 'waypost_milter_rule_fires_total{rule="Dove",priority="5"}' 0
# The message whose source hung waited its 300 ms in Waypost: the sum and
# the buckets say so (the others take well under 100 ms)
check "duration: the sum holds the 300 ms wait" \
    python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= 0.3 else 1)" "$(metric waypost_milter_message_duration_seconds_sum)"
check "duration: exactly one message above 100 ms" \
    [ "$(metric 'waypost_milter_message_duration_seconds_bucket{le="0.1"}')" = 7 ]
check "promtool check metrics passes" sh -c "promtool check metrics < '$dir/m.txt'"
check "the decision lines agree: 8 messages" [ "$(grep -c 'event=message ' "$dir/milter.log")" = 8 ]
check "the oversized and the source's messages have their lines" \
    [ "$(grep -c 'event=message .*rules="" result=tempfail$' "$dir/milter.log")" = 2 ]

# A reload between two messages of one connection: the second counts under
# the new rules (the connection's rule map is refreshed), the changed rule
# starts from zero, the unchanged one keeps its count.
sed -i 's/X-Waypost-Test: yes/X-Waypost-Test: changed/' "$dir/w.conf"
mt reload-midway '
local c = open_conn(sock)
local function message(rcpt, subject)
  mt.macro(c, SMFIC_MAIL, "i", "MIDWAY")
  if mt.mailfrom(c, "<a@example.org>") ~= nil then fail("mailfrom") end
  if mt.rcptto(c, rcpt) ~= nil then fail("rcptto") end
  if mt.header(c, "Subject", subject) ~= nil then fail("header") end
  if mt.eom(c) ~= nil then fail("eom") end
end
message("<alice@company.dom>", "DISCARDME")
expect_reply(c, SMFIR_DISCARD, "before the reload")
os.execute("kill -USR1 '"$mpid"'; sleep 0.5")
message("<hdr@company.dom>", "h")
if not mt.eom_check(c, MT_HDRADD, "X-Waypost-Test", "changed") then fail("the new rules did not apply") end
message("<alice@company.dom>", "DISCARDME")
expect_reply(c, SMFIR_DISCARD, "after the reload")
mt.disconnect(c)'
check "the reload happened" grep -q "reloaded .*w.conf" "$dir/milter.log"
scrape > "$dir/m.txt"
is 'waypost_milter_rule_fires_total{rule="Discard",priority="5"}' 3
is 'waypost_milter_rule_fires_total{rule="Header",priority="5"}' 1
is 'waypost_milter_messages_total{result="discard"}' 3
is 'waypost_milter_message_duration_seconds_count' 11
check "promtool check metrics passes after the reload" sh -c "promtool check metrics < '$dir/m.txt'"
check "milter still running" kill -0 "$mpid"
done_testing
