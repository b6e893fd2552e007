#!/bin/bash
# SPDX-License-Identifier: MIT
# waypost-milter and Unified Domain-Wide Accounts, driven by miltertest: the
# envelope recipients of a unified domain come out as one header field at
# the top of the message (one recipient a line), each account keeps one
# recipient in the envelope, a field of that name that came with the
# message is deleted, each account's header name is used, the
# recipients are those after the rules (Redirect, Mirror), and mail for no
# unified domain is left alone.
. "$top_srcdir/t/lib.sh"
scratch
chmod 755 "$dir"
. "$top_srcdir/t/milter/lib.sh"
printf '<sales@partner.dom> = sales@client.com\n' > "$dir/router.table"
cat > "$dir/w.conf" <<C
router: {
  main_domain = "company.dom";
  table = "router.table";
  domains = ( { name = "company.dom"; accounts = "list:alice,bob,client-com,other-com"; } );
  unified_accounts = ( { domain = "client.com"; account = "client-com@company.dom"; },
                       { domain = "other.com"; account = "other-com@company.dom"; header = "X-Envelope-To"; } );
};
milter: { listen = "unix:$dir/milter.sock"; };
rules = (
  { name = "Moved"; data = ( ("Any Recipient", "is", "moved@client.com") );
    action = ( ("Redirect to", "alice@company.dom") ); },
  { name = "Archive"; data = ( ("Any Recipient", "is", "alice@company.dom") );
    action = ( ("Mirror to", "archive@client.com") ); }
);
C
milter_start

mt three-recipients-one-field '
local c = send(sock, "<a@example.org>", {"<ann@client.com>", "<Bob@Client.COM>", "<carol@client.com>"}, {{"Subject", "s"}}, "x\r\n")
expect_reply(c, SMFIR_CONTINUE, "accepted")
if not mt.eom_check(c, MT_HDRINSERT, "X-Real-To", "<ann@client.com>,\n\t<Bob@client.com>,\n\t<carol@client.com>", 0) then
  fail("no X-Real-To field with the three recipients at the top") end
if mt.eom_check(c, MT_HDRDELETE) then fail("deleted a field the message did not have") end
if not mt.eom_check(c, MT_RCPTDELETE, "<Bob@Client.COM>") or not mt.eom_check(c, MT_RCPTDELETE, "<carol@client.com>") then
  fail("the account keeps more than one recipient") end
if mt.eom_check(c, MT_RCPTDELETE, "<ann@client.com>") then fail("the first recipient went too") end
mt.disconnect(c)'
mt forged-field-removed '
local c = send(sock, "<a@example.org>", {"<ann@client.com>"}, {{"X-Real-To", "<ceo@client.com>"}, {"Subject", "s"}, {"x-real-to", "<cfo@client.com>"}}, "x\r\n")
if not mt.eom_check(c, MT_HDRDELETE, "X-Real-To") then fail("the forged field stays") end
if not mt.eom_check(c, MT_HDRINSERT, "X-Real-To", "<ann@client.com>", 0) then fail("no field of our own") end
mt.disconnect(c)'
mt duplicates-once-local-user-not-listed '
local c = send(sock, "<a@example.org>", {"<ann@client.com>", "<bob@company.dom>", "<ANN@client.com>"}, {{"Subject", "s"}}, "x\r\n")
if not mt.eom_check(c, MT_HDRINSERT, "X-Real-To", "<ann@client.com>", 0) then fail("ann listed once, bob not at all") end
mt.disconnect(c)'
mt each-accounts-header-name '
local c = send(sock, "<a@example.org>", {"<ann@client.com>", "<zoe@other.com>"}, {{"Subject", "s"}}, "x\r\n")
if not mt.eom_check(c, MT_HDRINSERT, "X-Real-To", "<ann@client.com>") then fail("X-Real-To") end
if not mt.eom_check(c, MT_HDRINSERT, "X-Envelope-To", "<zoe@other.com>") then fail("X-Envelope-To") end
mt.disconnect(c)'
mt routed-into-the-domain '
local c = send(sock, "<a@example.org>", {"<sales@partner.dom>"}, {{"Subject", "s"}}, "x\r\n")
if not mt.eom_check(c, MT_HDRINSERT, "X-Real-To", "<sales@client.com>", 0) then fail("the address in the unified domain") end
mt.disconnect(c)'
mt no-unified-recipient-untouched '
local c = send(sock, "<a@example.org>", {"<bob@company.dom>", "<x@example.net>"}, {{"X-Real-To", "<ceo@client.com>"}, {"Subject", "s"}}, "x\r\n")
expect_reply(c, SMFIR_CONTINUE, "accepted")
if mt.eom_check(c, MT_HDRINSERT) or mt.eom_check(c, MT_HDRADD) then fail("added a field") end
if mt.eom_check(c, MT_HDRDELETE) then fail("deleted a field") end
if mt.eom_check(c, MT_RCPTDELETE, "<bob@company.dom>") or mt.eom_check(c, MT_RCPTDELETE, "<x@example.net>") then
  fail("removed a recipient") end
mt.disconnect(c)'
mt after-the-rules-redirect '
local c = send(sock, "<a@example.org>", {"<moved@client.com>"}, {{"Subject", "s"}}, "x\r\n")
if not mt.eom_check(c, MT_RCPTDELETE, "<moved@client.com>") then fail("the rule did not redirect") end
if mt.eom_check(c, MT_HDRINSERT) then fail("listed a recipient the rules took away") end
mt.disconnect(c)'
mt after-the-rules-mirror '
local c = send(sock, "<a@example.org>", {"<alice@company.dom>"}, {{"Subject", "s"}}, "x\r\n")
if not mt.eom_check(c, MT_RCPTADD, "<archive@client.com>") then fail("the rule did not mirror") end
if not mt.eom_check(c, MT_HDRINSERT, "X-Real-To", "<archive@client.com>", 0) then fail("the mirror copy is not listed") end
mt.disconnect(c)'
check "the milter logged what it listed" grep -q 'TESTQID: unified account: X-Real-To lists 3 recipients' "$dir/milter.log"
check "... and the recipients that left the envelope" grep -q 'TESTQID: unified account: 2 recipients left the envelope (one copy per account)' "$dir/milter.log"
check "... and the removal" grep -q "TESTQID: unified account: X-Real-To lists 1 recipient (the message's own fields removed)" "$dir/milter.log"
check "milter still running" kill -0 "$mpid"
done_testing
