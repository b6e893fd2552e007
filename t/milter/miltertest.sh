#!/bin/bash
# SPDX-License-Identifier: MIT
# waypost-milter driven by miltertest (the milter protocol without Postfix):
# one script per action, the seed's two rules, and hostile messages (1000
# recipients, a 1 MB header, broken MIME, invalid encoded words, addresses
# without '@').  Replies go to an smtp-sink standing in for the host MTA.
. "$top_srcdir/t/lib.sh"
scratch
chmod 755 "$dir"
. "$top_srcdir/t/milter/lib.sh"
SINK=$(free_ports 2)   # and the metrics port after it
mkdir -p "$dir/sink" && chown nobody "$dir/sink"
smtp-sink -u nobody -d "$dir/sink/%H%M%S." 127.0.0.1:$SINK 16 2>/dev/null &
sinkpid=$!
MPORT=$((SINK + 1))
sed -e "s|@DIR@|$dir|g" -e "s|@SINKPORT@|$SINK|g" \
    -e "s|^  reply_via = .*|&\\n  metrics = \"inet:127.0.0.1:$MPORT\";|" "$top_srcdir/t/milter/rules.conf.in" > "$dir/w.conf"
MILTER_PIDS=$sinkpid
milter_start
sink_count() { find "$dir/sink" -type f | wc -l; }

mt reject-dept1 '
local c = send(sock, "<joe@dept1.company.dom>", {"<x@example.org>", "<y@dept1.company.dom>"},
               {{"From", "Joe <joe@dept1.company.dom>"}, {"Subject", "hi"}}, "hello\r\n")
expect_reply(c, SMFIR_REPLYCODE, "dept1 to an outsider")
if not mt.eom_check(c, MT_SMTPREPLY, "550", "5.7.1", "You may send mail only within dept1.company.dom and to supervisor@hq.company.dom") then fail("reply text") end
mt.disconnect(c)'
mt dept1-inside '
local c = send(sock, "<joe@dept1.company.dom>", {"<y@dept1.company.dom>", "<supervisor@hq.company.dom>"}, {{"Subject", "hi"}}, "x\r\n")
expect_reply(c, SMFIR_CONTINUE, "dept1 inside")
mt.disconnect(c)'
mt boss-anywhere '
local c = send(sock, "<boss@dept1.company.dom>", {"<x@example.org>"}, {{"Subject", "hi"}}, "x\r\n")
expect_reply(c, SMFIR_CONTINUE, "boss")
mt.disconnect(c)'
mt store-in '
local c = send(sock, "<ceo@domain1.dom>", {"<partner@example.org>"}, {{"Subject", "deal"}}, "x\r\n")
expect_reply(c, SMFIR_CONTINUE, "store")
if not mt.eom_check(c, MT_RCPTADD, "<security+outgoing@company.dom>") then fail("no copy to security+outgoing") end
if mt.eom_check(c, MT_RCPTDELETE, "<partner@example.org>") then fail("original recipient removed") end
mt.disconnect(c)'
mt mirror '
local c = send(sock, "<a@example.org>", {"<mirror@company.dom>"}, {{"Subject", "m"}}, "x\r\n")
if not mt.eom_check(c, MT_RCPTADD, "<archive@company.dom>") then fail("no mirror copy") end
if mt.eom_check(c, MT_RCPTDELETE, "<mirror@company.dom>") then fail("mirror removed the original") end
mt.disconnect(c)'
mt redirect '
local c = send(sock, "<a@example.org>", {"<redirect@company.dom>"}, {{"Subject", "r"}}, "x\r\n")
if not mt.eom_check(c, MT_RCPTDELETE, "<redirect@company.dom>") then fail("original kept") end
if not mt.eom_check(c, MT_RCPTADD, "<new@company.dom>") then fail("no new recipient") end
if mt.eom_check(c, MT_HDRADD, "Resent-To") then fail("redirect must not add Resent- fields") end
mt.disconnect(c)'
mt forward '
local c = send(sock, "<a@example.org>", {"<forward@company.dom>"}, {{"Subject", "f"}}, "x\r\n")
if not mt.eom_check(c, MT_RCPTDELETE, "<forward@company.dom>") then fail("original kept") end
if not mt.eom_check(c, MT_RCPTADD, "<fwd@company.dom>") then fail("no new recipient") end
if not mt.eom_check(c, MT_HDRADD, "Resent-To", "<fwd@company.dom>") then fail("no Resent-To") end
mt.disconnect(c)'
mt discard '
local c = send(sock, "<a@example.org>", {"<alice@company.dom>"}, {{"Subject", "please DISCARDME now"}}, "x\r\n")
expect_reply(c, SMFIR_DISCARD, "discard")
mt.disconnect(c)'
mt add-header '
local c = send(sock, "<a@example.org>", {"<hdr@company.dom>"}, {{"Subject", "h"}}, "x\r\n")
if not mt.eom_check(c, MT_HDRADD, "X-Waypost-Test", "yes") then fail("no header") end
mt.disconnect(c)'
mt tag-subject '
local c = send(sock, "<a@example.org>", {"<alice@company.dom>"}, {{"Subject", "please tagme"}}, "x\r\n")
if not mt.eom_check(c, MT_HDRCHANGE, "Subject", "[tagged] please tagme") then fail("subject not tagged") end
mt.disconnect(c)'
mt percent-in-reject-text '
local c = send(sock, "<a@example.org>", {"<percent@company.dom>"}, {{"Subject", "p"}}, "x\r\n")
expect_reply(c, SMFIR_REPLYCODE, "percent")
if not mt.eom_check(c, MT_SMTPREPLY, "550", "5.7.1", "100%% sure") and not mt.eom_check(c, MT_SMTPREPLY, "550", "5.7.1", "100% sure") then fail("text") end
mt.disconnect(c)'
before=$(sink_count)
mt reply-with '
local c = send(sock, "<asker@example.org>", {"<prices@company.dom>"},
               {{"From", "Asker <asker@example.org>"}, {"Subject", "price list please"}, {"Message-ID", "<q1@example.org>"}}, "x\r\n")
expect_reply(c, SMFIR_CONTINUE, "reply")
mt.disconnect(c)'
i=0; while [ "$(sink_count)" -le "$before" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
reply=$(find "$dir/sink" -type f -newer "$dir/w.conf" | head -1)
check "the reply reached the MTA" [ -n "$reply" ]
check "reply: null envelope sender" grep -q '^X-Mail-Args: <>' "$reply"
check "reply: to the asker" grep -q '^X-Rcpt-Args: <asker@example.org>' "$reply"
check "reply: Auto-Submitted: auto-replied" grep -q '^Auto-Submitted: auto-replied' "$reply"
check "reply: the rule's Subject" grep -q '^Subject: Our price list' "$reply"
check "reply: In-Reply-To the request" grep -q '^In-Reply-To: <q1@example.org>' "$reply"
before=$(sink_count)
mt no-reply-to-bulk '
local c = send(sock, "<list@example.org>", {"<prices@company.dom>"}, {{"Subject", "x"}, {"Precedence", "bulk"}}, "x\r\n")
expect_reply(c, SMFIR_CONTINUE, "bulk")
mt.disconnect(c)
local c2 = send(sock, "<>", {"<prices@company.dom>"}, {{"Subject", "bounce"}}, "x\r\n")
mt.disconnect(c2)
local c3 = send(sock, "<robot@example.org>", {"<prices@company.dom>"}, {{"Subject", "x"}, {"Auto-Submitted", "auto-generated"}}, "x\r\n")
mt.disconnect(c3)'
sleep 0.5
check "no reply to bulk, bounces or automatic mail" [ "$(sink_count)" -eq "$before" ]

# ---- hostile messages: no crash, a sane answer, and the milter still works
mt thousand-recipients '
local r = {}
for i = 1, 1000 do r[i] = "<user" .. i .. "@example.org>" end
r[1001] = "<mirror@company.dom>"
local c = send(sock, "<a@example.org>", r, {{"Subject", "many"}}, "x\r\n")
expect_reply(c, SMFIR_CONTINUE, "1000 recipients")
if not mt.eom_check(c, MT_RCPTADD, "<archive@company.dom>") then fail("rules not applied") end
mt.disconnect(c)'
# (miltertest itself overflows a buffer on header values over ~1.5 KB, and
# Postfix cuts a header at header_size_limit anyway: a megabyte of header
# comes as 1100 fields here; the unit tests feed the rules one 1 MB value)
mt one-megabyte-header '
local h = {{"Subject", "big"}}
for i = 1, 1100 do h[#h + 1] = {"X-Big-" .. i, string.rep("a", 1000)} end
local c = send(sock, "<a@example.org>", {"<hdr@company.dom>"}, h, "x\r\n")
if not mt.eom_check(c, MT_HDRADD, "X-Waypost-Test", "yes") then fail("rules not applied") end
mt.disconnect(c)'
mt broken-mime '
local c = send(sock, "<a@example.org>", {"<alice@company.dom>"},
  {{"MIME-Version", "1.0"}, {"Content-Type", "multipart/mixed; boundary="}, {"Content-Transfer-Encoding", "base64"}, {"Subject", "tagme"}},
  "--\r\n--x\r\nContent-Type: text/plain\r\n\r\n====!!!!\r\n--x")
if not mt.eom_check(c, MT_HDRCHANGE, "Subject", "[tagged] tagme") then fail("rules not applied") end
mt.disconnect(c)'
mt invalid-encoded-words '
local c = send(sock, "<a@example.org>", {"<alice@company.dom>"},
  {{"From", "=?utf-8?B?!!!notbase64?= <x@example.org>"}, {"To", "=?bad-charset?Q?=ZZ=?= <alice@company.dom>, =?"},
   {"Subject", "=?UTF-8?Q?tag=E2=80me?= =?UTF-8?B?dGFnbWU=?="}}, "x\r\n")
expect_reply(c, SMFIR_CONTINUE, "encoded words")
mt.disconnect(c)'
mt addresses-without-at '
local c = send(sock, "<joe>", {"<postmaster>", "<>"}, {{"From", "joe"}, {"To", "undisclosed-recipients:;"}, {"Reply-To", "@@@"}}, "x\r\n")
expect_reply(c, SMFIR_CONTINUE, "no @")
mt.disconnect(c)'
mt still-serving '
local c = send(sock, "<joe@dept1.company.dom>", {"<x@example.org>"}, {{"Subject", "again"}}, "x\r\n")
expect_reply(c, SMFIR_REPLYCODE, "after the hostile ones")
mt.disconnect(c)'
check "milter still running" kill -0 "$mpid"

# ---- one decision line per message (waypost-milter(8), LOGGING)
check "a rejected message: its line names the rule and the result" \
    grep -Eq 'event=message queue_id=[^ ]+ client=[^ ]* sasl_username=[^ ]* sender=joe@dept1\.company\.dom recipients=2 rules="Dept1 restriction" result=reject$' "$dir/milter.log"
check "a message no rule fired for: a line too (rules empty, accept)" \
    grep -Eq 'event=message .*sender=boss@dept1\.company\.dom recipients=1 rules="" result=accept$' "$dir/milter.log"
check "a discarded message" grep -Eq 'event=message .*rules=Discard result=discard$' "$dir/milter.log"

# ---- the metrics endpoint: its counts agree with the decision lines
scrape() { scrape_metrics "$MPORT"; }
metric() { grep -F "$1 " "$2" | awk '{ print $NF }'; }
scrape > "$dir/m1.txt"
for r in accept reject discard tempfail; do
    want=$(grep -c "event=message .* result=$r\$" "$dir/milter.log")
    got=$(metric "waypost_milter_messages_total{result=\"$r\"}" "$dir/m1.txt")
    check "metrics: $r messages $got = $want decision lines" [ "$got" = "$want" ]
done
dept1=$(grep -c 'event=message .* rules="Dept1 restriction[,"]' "$dir/milter.log")
check "metrics: fires of Dept1 restriction = its decision lines ($dept1)" \
    [ "$(metric 'waypost_milter_rule_fires_total{rule="Dept1 restriction",priority="9"}' "$dir/m1.txt")" = "$dept1" ]
discards=$(metric 'waypost_milter_rule_fires_total{rule="Discard",priority="5"}' "$dir/m1.txt")
check "metrics: Discard fired ($discards)" [ "${discards:-0}" -ge 1 ]
if command -v promtool >/dev/null 2>&1; then
    check "promtool check metrics passes" sh -c "promtool check metrics < '$dir/m1.txt'"
fi
"$top_builddir/waypost" -c "$dir/w.conf" stats > "$dir/stats.out" 2>&1
sed 's/^/# /' "$dir/stats.out"
check "waypost stats: the milter's rules by fires" grep -Eq "^ +$dept1 +9 +Dept1 restriction\$" "$dir/stats.out"
check "waypost stats --json: the milter's messages" python3 -c "
import json, sys
d = json.loads(sys.stdin.read())['milter']
sys.exit(0 if d['messages']['reject'] == $(metric 'waypost_milter_messages_total{result="reject"}' "$dir/m1.txt") else 1)" \
    < "$("$top_builddir/waypost" -c "$dir/w.conf" stats --json > "$dir/stats.json"; echo "$dir/stats.json")"

# ---- SIGUSR1 reload: a broken file keeps the old rules, a good one applies
cp "$dir/w.conf" "$dir/w.conf.good"
sed 's/("Return-Path", "is", "\*@dept1.company.dom")/("Bogus Condition", "is", "y")/' "$dir/w.conf.good" > "$dir/w.conf"
kill -USR1 "$mpid"; sleep 0.5
check "broken reload logged with file:line" grep -q "w.conf:[0-9]*: unknown condition 'Bogus Condition'" "$dir/milter.log"
mt old-rules-kept '
local c = send(sock, "<joe@dept1.company.dom>", {"<x@example.org>"}, {{"Subject", "x"}}, "x\r\n")
expect_reply(c, SMFIR_REPLYCODE, "old rules")
mt.disconnect(c)'
sed 's/"Dept1 restriction"; priority = 9;/"Dept1 restriction"; priority = "disabled";/' "$dir/w.conf.good" > "$dir/w.conf"
kill -USR1 "$mpid"; sleep 0.5
check "good reload logged" grep -q "reloaded .*w.conf" "$dir/milter.log"
scrape > "$dir/m2.txt"
check "metrics: an unchanged rule keeps its count over the reload" \
    [ "$(metric 'waypost_milter_rule_fires_total{rule="Discard",priority="5"}' "$dir/m2.txt")" = "$discards" ]
check "metrics: a changed (now disabled) rule is no longer listed" \
    sh -c "! grep -q 'rule=\"Dept1 restriction\"' '$dir/m2.txt'"
check "metrics: one good and one failed reload" \
    sh -c "grep -qx 'waypost_reloads_total{result=\"success\"} 1' '$dir/m2.txt' && grep -qx 'waypost_reloads_total{result=\"failure\"} 1' '$dir/m2.txt'"
mt new-rules-apply '
local c = send(sock, "<joe@dept1.company.dom>", {"<x@example.org>"}, {{"Subject", "x"}}, "x\r\n")
expect_reply(c, SMFIR_CONTINUE, "new rules")
mt.disconnect(c)'
check "milter never crashed" kill -0 "$mpid"
done_testing
