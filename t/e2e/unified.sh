#!/bin/bash
# SPDX-License-Identifier: MIT
# Unified Domain-Wide Account end to end: a real Postfix with waypost-policyd
# and waypost-milter, a real Dovecot (LMTP, POP3, and the Router's account
# source through its auth-userdb socket), fetchmail as the customer's
# multidrop poller and smtp-sink as the customer's own mail server.
#
# One message for three client.com addresses lands once in the account
# client-com@company.dom with the three envelope recipients in its
# X-Real-To field (a forged field from outside removed); a second message
# for another set of recipients carries its own, and a third for 120
# recipients (more than Postfix puts in one delivery) lands once too.  fetchmail polls the
# account over POP3 with `envelope "X-Real-To"` and `localdomains
# client.com` and hands each message to exactly its own recipients.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dovecot.sh"
e2e_need fetchmail || { echo "Bail out! cannot install postfix, fetchmail"; exit 1; }
e2e_dovecot_need || { echo "Bail out! cannot install dovecot"; exit 1; }
e2e_init
W="$E2E/waypost"
mkdir -p "$W"
PW=secret
cat > "$E2E/users" <<U
alice@company.dom:{PLAIN}$PW
client-com@company.dom:{PLAIN}$PW
U
E2E_DOVECOT_POP3=1 e2e_dovecot "$E2E/users" || { echo "Bail out! no Dovecot"; exit 1; }
[ -n "$POP3_PORT" ] || { echo "Bail out! Dovecot without POP3"; exit 1; }
e2e_free_port CUSTOMER
e2e_sink customer "127.0.0.1:$CUSTOMER" || { echo "Bail out! no smtp-sink"; exit 1; }
e2e_free_port SMTP

cat > "$W/waypost.conf" <<C
router: {
  main_domain = "company.dom";
  trusted_networks = [ "127.0.0.0/8" ];
  domains = ( { name = "company.dom"; accounts = "userdb:unix:$USERDB_SOCKET"; } );
  unified_accounts = ( { domain = "client.com"; account = "client-com@company.dom"; } );
};
policyd: { listen = [ "socketmap:unix:$W/map.sock", "policy:unix:$W/policy.sock" ]; };
postfix: { local_transport = "lmtp:unix:$LMTP_SOCKET"; };
milter: { listen = "unix:$W/milter.sock"; reply_via = "smtp:127.0.0.1:$SMTP"; };
C
start_daemon() { # NAME BINARY SOCKET
    rm -f "$3"
    e2e_bg "$1" "$2" -f -c "$W/waypost.conf"
    local i=0; while [ ! -S "$3" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
}
start_daemon policyd "$top_builddir/policy/waypost-policyd" "$W/policy.sock"
start_daemon milter "$top_builddir/milter/waypost-milter" "$W/milter.sock"; MD=$E2E_LAST_PID
# libmilter notices SIGTERM only every 5 s unless a connection wakes it.
e2e_on_exit 'kill $MD 2>/dev/null; "$E2E_PY" -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])" "$W/milter.sock" 2>/dev/null'
"$top_builddir/waypost" -c "$W/waypost.conf" postconf --main > "$E2E/main.extra"
e2e_postfix "$SMTP" "$E2E/main.extra" || { echo "Bail out! no Postfix"; exit 1; }

# --- the Router and the maps Postfix asks
expect_output "route: every client.com address is LOCAL to the account" \
    '"kind":"LOCAL","address":"client-com@company.dom"' "$top_builddir/waypost" -c "$W/waypost.conf" route --json Bob@Client.com
expect_output "route: the trace names the unified domain" "unified domain client.com: every address goes to the account client-com@company.dom" \
    "$top_builddir/waypost" -c "$W/waypost.conf" route bob@client.com
check "relay map: client.com is routed" test "$(postmap -c "$PFCONF" -q client.com "socketmap:unix:$W/map.sock:relay")" = OK
check "virtual map: Bob@Client.COM -> the account" test "$(postmap -c "$PFCONF" -q Bob@Client.COM "socketmap:unix:$W/map.sock:virtual")" = client-com@company.dom
check "recipient map: any client.com address is deliverable" test "$(postmap -c "$PFCONF" -q anything@client.com "socketmap:unix:$W/map.sock:recipient")" = OK

# the field, unfolded: its name, then each recipient on a line of its own
field() { awk 'tolower($0) ~ /^x-real-to:/ { on = 1; print; next } on && /^[ \t]/ { print; next } { on = 0 }' "$1"; }

# --- message 1: three client.com recipients from an outside client, with a forged X-Real-To
out=$(e2e_send sender@example.org ann@client.com Bob@client.com carol@client.com -- --xclient 192.0.2.10 \
      --subject "for three" --header "X-Real-To: <ceo@client.com>")
case $out in *"DATA 250"*) ok "an outside client may send to client.com (like a Relay: record)" ;;
             *) not_ok "outside client accepted"; echo "$out" | sed 's/^/#   /' ;; esac
check "the account received it" e2e_imap_wait client-com@company.dom $PW INBOX 1 10
# --- message 2: another set of recipients (one shared with message 1), a local user too
expect_output "second message accepted" "DATA 250" e2e_send friend@example.org dave@client.com ann@client.com alice@company.dom -- --subject "for two"
check "the account received the second one" e2e_imap_wait client-com@company.dom $PW INBOX 2 10
check "alice received hers" e2e_imap_wait alice@company.dom $PW INBOX 1 10
# --- message 3: more recipients than Postfix puts in one delivery (50 by default)
many=(); for i in $(seq 1 120); do many+=("u$i@client.com"); done
expect_output "message for 120 recipients accepted" "DATA 250" e2e_send bulk@example.org "${many[@]}" -- --subject "for many"
check "the account received the third one" e2e_imap_wait client-com@company.dom $PW INBOX 3 10
check "queue drains" e2e_wait_queue_empty 20
sleep 0.5
check "one copy per message in the account (no duplicate deliveries)" test "$(e2e_imap_count client-com@company.dom $PW INBOX)" = 3
for i in 1 2 3; do e2e_imap_fetch client-com@company.dom $PW INBOX $i > "$E2E/acct$i"; done
m1=$(grep -l '^Subject: for three' "$E2E"/acct[123]); m2=$(grep -l '^Subject: for two' "$E2E"/acct[123])
m3=$(grep -l '^Subject: for many' "$E2E"/acct[123])
check "message 3: all 120 recipients in its field" test "$(field "$m3" | grep -c '<u[0-9]*@client\.com>')" = 120
field "$m1" | sed 's/^/# m1: /'
check "message 1: one X-Real-To field" test "$(grep -ci '^X-Real-To:' "$m1")" = 1
check "message 1: three X-Real-To lines, one recipient each" \
    test "$(field "$m1" | grep -c '<[^>]*@client\.com>,\{0,1\}$')" = 3
check "message 1: exactly ann, Bob, carol" \
    test "$(field "$m1" | grep -o '<[^>]*>' | LC_ALL=C sort | tr '\n' ' ')" = "<Bob@client.com> <ann@client.com> <carol@client.com> "
check "message 1: the forged X-Real-To from outside is gone" sh -c "! grep -q 'ceo@client.com' '$m1'"
check "message 2: exactly ann and dave (alice is not in the account's field)" \
    test "$(field "$m2" | grep -o '<[^>]*>' | LC_ALL=C sort | tr '\n' ' ')" = "<ann@client.com> <dave@client.com> "
# The milter leaves one recipient per account in the envelope (the field
# keeps them all), so Postfix delivers each message to the account once,
# also when there are more recipients than one delivery takes (50).
check "Postfix delivered each message to the account once" \
    test "$(grep -c 'to=<client-com@company.dom>, orig_to=<[^>]*@client.com>.*status=sent' "$PFLOG")" = 3
check "Dovecot saved one copy per message" \
    test "$(grep -c 'lmtp(client-com@company.dom).*saved mail to INBOX' "$DOVECOT_LOG")" = 3

# --- the customer: fetchmail, multidrop over POP3, into the customer's own server
FM="$E2E/fetchmail"
mkdir -p "$FM" && chmod 700 "$FM"
cat > "$FM/fetchmailrc" <<F
set postmaster "postmaster@client.com"
set no bouncemail
poll 127.0.0.1 proto pop3 port $POP3_PORT no dns
    envelope "X-Real-To"
    localdomains client.com
    user "client-com@company.dom" there with password "$PW" is * here
    smtphost 127.0.0.1/$CUSTOMER
    smtpaddress client.com
    sslproto ""
    fetchall
F
chmod 600 "$FM/fetchmailrc"
FETCHMAILHOME="$FM" fetchmail -f "$FM/fetchmailrc" --nodetach -d0 -v --pidfile "$FM/pid" -i "$FM/ids" >"$E2E/fetchmail.log" 2>&1
rc=$?
check "fetchmail polled the account (exit $rc)" test "$rc" = 0 || sed 's/^/#   /' "$E2E/fetchmail.log"
check "the customer's server got the three messages" e2e_sink_wait customer 3 10
rcpts_of() { # SUBJECT: envelope recipients of the sink's message with it
    local f; f=$(grep -l "^Subject: $1" $(e2e_sink_files customer)) || return 1
    sed -n 's/^X-Rcpt-Args: <\([^>]*\)>.*/\1/p' $f | tr 'A-Z' 'a-z' | LC_ALL=C sort | tr '\n' ' '
}
check "message 1 went to exactly ann, bob, carol" test "$(rcpts_of 'for three')" = "ann@client.com bob@client.com carol@client.com "
check "message 2 went to exactly ann, dave" test "$(rcpts_of 'for two')" = "ann@client.com dave@client.com "
check "message 3 went to its 120 recipients" test "$(rcpts_of 'for many' | wc -w)" = 120
check "each message was handed over once" test "$(e2e_sink_count customer)" = 3
check "the account is empty after the poll" test "$(e2e_imap_count client-com@company.dom $PW INBOX)" = 0
done_testing
