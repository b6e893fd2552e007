#!/bin/bash
# SPDX-License-Identifier: MIT
# Server-wide Rules end to end: a real Postfix with waypost-policyd and
# waypost-milter, a real Dovecot (LMTP + IMAP; also the Router's account
# source through its auth-userdb socket) and an smtp-sink as the outside
# world.  The seed's two rules work as written there; a Reply with rule
# carrying a PDF answers a request and the attachment decodes to the same
# bytes; with the milter killed or hung Postfix tempfails, and after a
# restart the retried mail is filtered and delivered once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dovecot.sh"
e2e_need || { echo "Bail out! cannot install postfix"; exit 1; }
e2e_dovecot_need || { echo "Bail out! cannot install dovecot"; exit 1; }
e2e_init
W="$E2E/waypost"
mkdir -p "$W"
PW=secret
cat > "$E2E/users" <<U
alice@company.dom:{PLAIN}$PW
security@company.dom:{PLAIN}$PW
prices@company.dom:{PLAIN}$PW
joe@dept1.company.dom:{PLAIN}$PW
ann@dept1.company.dom:{PLAIN}$PW
boss@dept1.company.dom:{PLAIN}$PW
supervisor@hq.company.dom:{PLAIN}$PW
U
e2e_dovecot "$E2E/users" || { echo "Bail out! no Dovecot"; exit 1; }
e2e_dovecot_mailbox security@company.dom outgoing
e2e_sink outside 127.0.3.2:25
e2e_host example.org 127.0.3.2
e2e_free_port SMTP

# The price list: a PDF (made up, with binary bytes) sent back as a MIME attachment.
"$E2E_PY" - "$W/prices.pdf" <<'PY'
import os, sys
data = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + bytes(range(256)) * 40 + os.urandom(3000) + b"\n%%EOF\n"
open(sys.argv[1], "wb").write(data)
PY
"$E2E_PY" - "$W/prices.pdf" "$W/reply.txt" <<'PY'
import base64, sys
pdf = open(sys.argv[1], "rb").read()
b64 = base64.encodebytes(pdf).decode()
text = ("+Subject: Our price list\n"
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=\"=_waypost_reply\"\n\n"
        "--=_waypost_reply\nContent-Type: text/plain; charset=us-ascii\n\n"
        "Thank you for your request. Our current price list is attached.\n"
        "--=_waypost_reply\nContent-Type: application/pdf; name=\"prices.pdf\"\n"
        "Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"prices.pdf\"\n\n"
        + b64 + "--=_waypost_reply--\n")
# libconfig string: escape backslashes, quotes and newlines
open(sys.argv[2], "w").write(text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n"))
PY
cat > "$W/waypost.conf" <<C
router: {
  main_domain = "company.dom";
  trusted_networks = [ "127.0.0.0/8" ];
  domains = (
    { name = "company.dom"; accounts = "userdb:unix:$USERDB_SOCKET"; },
    { name = "dept1.company.dom"; accounts = "userdb:unix:$USERDB_SOCKET"; },
    { name = "hq.company.dom"; accounts = "userdb:unix:$USERDB_SOCKET"; }
  );
};
policyd: { listen = [ "socketmap:unix:$W/map.sock", "policy:unix:$W/policy.sock" ]; };
postfix: { local_transport = "lmtp:unix:$LMTP_SOCKET"; };
milter: { listen = "unix:$W/milter.sock"; reply_via = "smtp:127.0.0.1:$SMTP"; };
rules = (
  { name = "Copy outgoing mail"; priority = 5;
    data = ( ("Return-Path", "in", "*@domain1.dom,*@domain2.dom") );
    action = ( ("Store in", "~security/outgoing") ); },
  { name = "Dept1 restriction"; priority = 9;
    data = ( ("Return-Path", "is", "*@dept1.company.dom"),
             ("Return-Path", "is not", "boss@dept1.company.dom"),
             ("Any Recipient", "not in", "*@dept1.company.dom,supervisor@hq.company.dom") );
    action = ( ("Reject with", "You may send mail only within dept1.company.dom and to supervisor@hq.company.dom"),
               ("Stop Processing") ); },
  { name = "Price list"; priority = 3;
    data = ( ("Any Recipient", "is", "prices@company.dom"), ("Human Generated") );
    action = ( ("Reply with", "$(cat "$W/reply.txt")") ); },
  { name = "Mark filtered"; priority = 1; data = ( );
    action = ( ("Add Header", "X-Waypost-Rules: seen") ); }
);
C
start_daemon() { # start_daemon policyd|milter
    rm -f "$W/$1.sock"
    local sock=$W/$1.sock
    [ "$1" = policyd ] && sock=$W/policy.sock
    e2e_bg "$1$((++starts))" "$top_builddir/$([ "$1" = policyd ] && echo policy/waypost-policyd || echo milter/waypost-milter)" -f -c "$W/waypost.conf"
    LAST=$E2E_LAST_PID
    local i=0; while [ ! -S "$sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
}
wake_milter() { "$E2E_PY" -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' "$W/milter.sock" 2>/dev/null; }
starts=0
start_daemon policyd
start_daemon milter; MD=$LAST
e2e_on_exit 'kill -CONT $MD 2>/dev/null; kill $MD 2>/dev/null; wake_milter'
"$top_builddir/waypost" -c "$W/waypost.conf" postconf --main > "$E2E/main.extra"
cat >> "$E2E/main.extra" <<M
milter_command_timeout = 3s
milter_content_timeout = 3s
M
e2e_postfix "$SMTP" "$E2E/main.extra" || { echo "Bail out! no Postfix"; exit 1; }

# --- the router asks Dovecot's auth-userdb socket for accounts
expect_output "router: a Dovecot account is LOCAL" '"kind":"LOCAL","address":"alice@company.dom"' "$top_builddir/waypost" -c "$W/waypost.conf" route --json alice@company.dom
expect_output "router: not a Dovecot account is UNKNOWN" '"kind":"UNKNOWN"' "$top_builddir/waypost" -c "$W/waypost.conf" route --json nobody@company.dom

# --- copy mail sent from domain1.dom into security's "outgoing" mailbox
expect_output "domain1.dom mail accepted" "DATA 250" e2e_send ceo@domain1.dom partner@example.org alice@company.dom -- --subject "deal memo"
check "delivered to the outside recipient" e2e_sink_wait outside 1 10
check "the milter's decision line: queue id, the rule, the result" \
    grep -Eq 'event=message queue_id=[0-9A-Za-z]{6,} client=[^ ]* sasl_username="" sender=ceo@domain1\.dom recipients=2 rules="Copy outgoing mail[^"]*" result=accept$' "$E2E"/milter*.log
check "delivered to alice" e2e_imap_wait alice@company.dom $PW INBOX 1 10
check "a copy is in security's outgoing mailbox" e2e_imap_wait security@company.dom $PW outgoing 1 10
check "the copy is the memo" sh -c "e2e_imap_fetch() { \"$E2E_PY\" \"$E2E_LIBDIR/imap.py\" --port $IMAP_PORT fetch \"\$@\"; }; e2e_imap_fetch security@company.dom $PW outgoing 1 | grep -q '^Subject: deal memo'"
check "nothing extra in security's INBOX" test "$(e2e_imap_count security@company.dom $PW INBOX)" = 0
expect_output "mail from elsewhere is not copied" "DATA 250" e2e_send someone@domain9.dom alice@company.dom
e2e_imap_wait alice@company.dom $PW INBOX 2 10
check "still one copy in outgoing" test "$(e2e_imap_count security@company.dom $PW outgoing)" = 1

# --- dept1 users: own domain and the supervisor yes, anyone else gets the rule's text
expect_output "dept1 -> own domain" "DATA 250" e2e_send joe@dept1.company.dom ann@dept1.company.dom
expect_output "dept1 -> supervisor" "DATA 250" e2e_send joe@dept1.company.dom supervisor@hq.company.dom
out=$(e2e_send joe@dept1.company.dom partner@example.org)
case $out in *"DATA 550 5.7.1 You may send mail only within dept1.company.dom and to supervisor@hq.company.dom"*) ok "dept1 -> outside: the rule's text as the SMTP error" ;;
             *) not_ok "dept1 -> outside refused with the rule's text"; echo "$out" | sed 's/^/#   /' ;; esac
out=$(e2e_send joe@dept1.company.dom ann@dept1.company.dom alice@company.dom)
case $out in *"DATA 550 5.7.1 You may send"*) ok "dept1 -> own domain plus alice: refused" ;; *) not_ok "dept1 + alice refused"; echo "$out" | sed 's/^/#   /' ;; esac
expect_output "boss -> anyone" "DATA 250" e2e_send boss@dept1.company.dom partner@example.org alice@company.dom
check "ann got one message" e2e_imap_wait ann@dept1.company.dom $PW INBOX 1 10
check "the supervisor got one" e2e_imap_wait supervisor@hq.company.dom $PW INBOX 1 10
check "queue drains" e2e_wait_queue_empty 20
check "the outside got exactly the allowed mail (memo, boss)" test "$(e2e_sink_count outside)" = 2

# --- Reply with a PDF attachment
expect_output "request accepted" "DATA 250" e2e_send asker@example.org prices@company.dom -- --subject "price list please" --header "From: Asker <asker@example.org>"
check "the reply reached the asker" e2e_sink_wait outside 3 15
reply=$(grep -l '^Subject: Our price list' $(e2e_sink_files outside) | head -1)
check "reply found" test -n "$reply"
check "reply: null envelope sender" grep -q '^X-Mail-Args: <>' "$reply"
check "reply: Auto-Submitted" grep -q '^Auto-Submitted: auto-replied' "$reply"
"$E2E_PY" - "$reply" "$W/prices.pdf" <<'PY'
import email, sys
from email import policy
raw = open(sys.argv[1], "rb").read()
# smtp-sink writes its own X- lines first: the message starts after them
msg = email.message_from_bytes(raw, policy=policy.default)
want = open(sys.argv[2], "rb").read()
got = [p.get_content() for p in msg.iter_attachments() if p.get_content_type() == "application/pdf"]
sys.exit(0 if got and got[0] == want else 1)
PY
check "the attachment decodes to the original PDF bytes" test $? -eq 0
expect_output "a bulk request gets no reply" "DATA 250" e2e_send list@example.org prices@company.dom -- --header "Precedence: bulk"
sleep 1
check "no reply to bulk mail" test "$(grep -l '^Subject: Our price list' $(e2e_sink_files outside) | wc -l)" = 1

# --- fault: milter killed, then hung: Postfix tempfails; after a restart the retry is filtered, once
kill -9 "$MD"; wait "$MD" 2>/dev/null
out=$(e2e_send ceo@domain1.dom alice@company.dom -- --subject "while the milter is dead")
case $out in *"DATA 250"*) not_ok "milter dead: not accepted"; echo "$out" | sed 's/^/#   /' ;; *" 4"[0-9][0-9]" "*) ok "milter dead: Postfix tempfails" ;; *) not_ok "milter dead: 4xx"; echo "$out" | sed 's/^/#   /' ;; esac
start_daemon milter; MD=$LAST
kill -STOP "$MD"
out=$(e2e_send ceo@domain1.dom alice@company.dom -- --subject "while the milter hangs")
case $out in *"DATA 250"*) not_ok "milter hung: not accepted"; echo "$out" | sed 's/^/#   /' ;; *" 4"[0-9][0-9]" "*) ok "milter hung: Postfix tempfails" ;; *) not_ok "milter hung: 4xx"; echo "$out" | sed 's/^/#   /' ;; esac
kill -CONT "$MD"; kill "$MD"; wake_milter; wait "$MD" 2>/dev/null
start_daemon milter; MD=$LAST
expect_output "retry after the restart accepted" "DATA 250" e2e_send ceo@domain1.dom alice@company.dom -- --subject "retried after the fault"
check "queue drains" e2e_wait_queue_empty 20
sleep 0.5
n=0; for i in $(seq 1 $(e2e_imap_count alice@company.dom $PW INBOX)); do
    e2e_imap_fetch alice@company.dom $PW INBOX "$i" > "$E2E/m$i"
    grep -q '^Subject: retried after the fault' "$E2E/m$i" && { n=$((n + 1)); last="$E2E/m$i"; }
    grep -q '^Subject: while the milter' "$E2E/m$i" && not_ok "a message that met a broken milter was delivered"
done
check "the retried message was delivered once" test "$n" = 1
check "... and filtered by the rules" grep -q '^X-Waypost-Rules: seen' "$last"
check "... and copied to security" e2e_imap_wait security@company.dom $PW outgoing 2 10
check "every message in alice's INBOX went through the rules" sh -c "! grep -L '^X-Waypost-Rules: seen' $E2E/m[0-9]* | grep -q ."
done_testing
