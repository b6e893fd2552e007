#!/bin/bash
# SPDX-License-Identifier: MIT
# t/e2e/dovecot-selftest.sh - proves t/e2e/dovecot.sh with a plain Postfix
# (no Waypost): a private Dovecot (IMAP + LMTP), Postfix relaying
# company.dom to it over lmtp:unix:$LMTP_SOCKET, account+mailbox@domain
# delivered into that mailbox, the result read back over IMAP, and the
# auth-userdb socket asked the way Waypost's router asks it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dovecot.sh"

# shellcheck disable=SC2119 # e2e_need takes optional extra packages
e2e_need || { echo "Bail out! cannot install postfix/python3"; exit 1; }
e2e_dovecot_need || { echo "Bail out! cannot install dovecot"; exit 1; }
e2e_init

is() { # is DESCRIPTION GOT WANT
    if [ "$2" = "$3" ]; then ok "$1"; else
        not_ok "$1"; printf '#   got:  %s\n#   want: %s\n' "${2//$'\n'/ }" "${3//$'\n'/ }"; fi
}
like() { # like DESCRIPTION GOT EXTENDED-REGEXP
    if grep -qE -- "$3" <<<"$2"; then ok "$1"; else
        not_ok "$1"; printf '#   got:  %s\n#   want: /%s/\n' "$(head -c 300 <<<"$2" | tr '\n' ' ')" "$3"; fi
}

cat >"$E2E/users" <<'EOF'
alice@company.dom:{PLAIN}alicepw
security@company.dom:{PLAIN}secpw::::::
EOF
cat >"$E2E/dovecot.extra" <<'EOF'
login_greeting = Waypost e2e Dovecot ready.
EOF
if e2e_dovecot "$E2E/users" "$E2E/dovecot.extra"; then ok "dovecot up"
else not_ok "dovecot up"; echo "Bail out! no Dovecot"; exit 1; fi
check "IMAP_PORT is a port" test "$IMAP_PORT" -gt 0
is "LMTP_SOCKET" "$LMTP_SOCKET" "$E2E/dovecot/lmtp"
is "lmtp socket mode 0666" "$(stat -c %a "$LMTP_SOCKET")" 666
is "auth-userdb socket mode 0666" "$(stat -c %a "$USERDB_SOCKET")" 666
greeting=$( (exec 3<>"/dev/tcp/127.0.0.1/$IMAP_PORT" && IFS= read -r -t 5 l <&3 && printf 'a LOGOUT\r\n' >&3 && echo "$l") 2>&1)
like "IMAP greeting from EXTRA_CONF_FILE" "$greeting" '^\* OK .*Waypost e2e Dovecot ready\.'
# The postfix user (Postfix's lmtp client) can talk to the LMTP socket.
lhlo=$(runuser -u postfix -- "$E2E_PY" - "$LMTP_SOCKET" <<'EOF' 2>&1
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])
f = s.makefile("rb"); print(f.readline().decode().strip())
s.sendall(b"QUIT\r\n"); print(f.readline().decode().strip())
EOF
)
like "postfix user: LMTP greeting and QUIT" "$(tr '\n' ' ' <<<"$lhlo")" '^220 .* 221 2\.0\.0 '

# ---- auth-userdb, as Waypost's router asks it
out=$(e2e_userdb_lookup alice@company.dom); rc=$?
is "userdb alice: exit 0" "$rc" 0
like "userdb alice: USER, uid/gid nobody, home" "$out" \
    "^USER	1	alice@company\.dom	.*uid=65534	gid=65534	home=$E2E/mail/company\.dom/alice"
out=$(e2e_userdb_lookup security@company.dom); rc=$?
like "userdb security (line with empty fields): USER" "$out" '^USER	1	security@company\.dom	.*uid=65534'
out=$(e2e_userdb_lookup nosuch@company.dom); rc=$?
is "userdb unknown: NOTFOUND" "$out:$rc" "NOTFOUND	1:1"
out=$(e2e_userdb_lookup alice+box@company.dom); rc=$?
is "userdb alice+box: NOTFOUND (no detail stripping here)" "$out:$rc" "NOTFOUND	1:1"
out=$("$E2E_PY" - "$USERDB_SOCKET" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])
s.sendall(b"VERSION\t1\t0\nUSER\t7\tALICE@company.dom\tservice=router\n"
          b"USER\t8\tnobody@company.dom\tservice=router\n")
f = s.makefile("rb"); got = []
for l in f:
    w = l.decode().split("\t")
    if w[0] in ("USER", "NOTFOUND", "FAIL"): got.append(w[0] + " " + w[1])
    if len(got) == 2: break
print(", ".join(got))
EOF
)
is "userdb: two requests on one connection, case-folded name" "$out" "USER 7, NOTFOUND 8"

# ---- IMAP logins
check "mailbox outgoing created (doveadm)" e2e_dovecot_mailbox security@company.dom outgoing
check "creating it again is fine" e2e_dovecot_mailbox security@company.dom outgoing
is "security's mailboxes" "$(e2e_imap_list security@company.dom secpw | LC_ALL=C sort | tr '\n' ' ')" "INBOX outgoing "
# Dovecot's failure delay and auth penalty each add 2 s.  The limit is
# relative to two plain logins timed just before, so a loaded machine
# (slow client start-up) does not fail it, and either delay still does.  A
# delay is there every time; a burst of load from elsewhere is not: up to
# three measurements, the first within the limit passes.
try=0
while :; do
    try=$((try + 1))
    t0=$EPOCHREALTIME
    e2e_imap_count alice@company.dom alicepw INBOX >/dev/null
    e2e_imap_count alice@company.dom alicepw INBOX >/dev/null
    base=$(( (${EPOCHREALTIME/./} - ${t0/./}) / 1000 ))
    t0=$EPOCHREALTIME
    e2e_imap_count alice@company.dom wrong INBOX >/dev/null 2>&1; rc=$?
    good=$(e2e_imap_count alice@company.dom alicepw INBOX)
    dt=$(( (${EPOCHREALTIME/./} - ${t0/./}) / 1000 ))
    [ "$dt" -lt $((base + 1500)) ] || [ "$try" -ge 3 ] && break
done
is "wrong password: exit 2" "$rc" 2
is "right password after a failure (no auth penalty)" "$good" 0
check "failed login + good login took < two good logins + 1.5 s (${dt} ms vs ${base} ms, try $try; 2 s more with a delay)" \
    test "$dt" -lt $((base + 1500))
expect_exit "count of a missing mailbox: exit 1" 1 e2e_imap_count alice@company.dom alicepw Nope

# ---- Postfix -> LMTP -> Dovecot
printf 'company.dom lmtp:unix:%s\n' "$LMTP_SOCKET" >"$PFCONF/transport"
cat >"$E2E/main.extra" <<EOF
relay_domains = company.dom
transport_maps = texthash:$PFCONF/transport
EOF
e2e_free_port PS
if e2e_postfix "$PS" "$E2E/main.extra"; then ok "postfix up"
else not_ok "postfix up"; echo "Bail out! no Postfix"; exit 1; fi
expect_output "mail to alice queued" "DATA 250" \
    e2e_send sender@client.test alice@company.dom -- --subject to-alice
expect_output "mail to security+outgoing queued" "DATA 250" \
    e2e_send sender@client.test security+outgoing@company.dom -- --subject to-outgoing
check "alice INBOX gets 1" e2e_imap_wait alice@company.dom alicepw INBOX 1 10
check "security outgoing gets 1" e2e_imap_wait security@company.dom secpw outgoing 1 10
check "queue drains" e2e_wait_queue_empty 10
is "alice INBOX: 1" "$(e2e_imap_count alice@company.dom alicepw INBOX)" 1
is "security outgoing: 1" "$(e2e_imap_count security@company.dom secpw outgoing)" 1
is "security INBOX: 0" "$(e2e_imap_count security@company.dom secpw INBOX)" 0
msg=$(e2e_imap_fetch alice@company.dom alicepw INBOX 1)
like "alice's message: subject" "$msg" '^Subject: to-alice'
like "alice's message: Delivered-To" "$msg" '^Delivered-To: <?alice@company\.dom>?$'
is "fetch: LF line ends (no CR)" "$(tr -cd '\r' <<<"$msg" | wc -c)" 0
check "fetch --crlf: CRLF line ends" test "$(e2e_imap_fetch alice@company.dom alicepw INBOX 1 --crlf | tr -cd '\r' | wc -c)" -gt 5
msg=$(e2e_imap_fetch security@company.dom secpw outgoing 1)
like "outgoing message: subject" "$msg" '^Subject: to-outgoing'
like "outgoing message: Delivered-To keeps +outgoing" "$msg" '^Delivered-To: <?security\+outgoing@company\.dom>?'
expect_exit "fetch of a missing message: exit 1" 1 e2e_imap_fetch alice@company.dom alicepw INBOX 2
check "maillog: delivered over lmtp" \
    e2e_log_grep -qE "to=<security\+outgoing@company\.dom>, relay=[^ ]*\[$LMTP_SOCKET\], .*status=sent \(250 2\.0\.0"

# A detail naming no existing mailbox: Dovecot saves to INBOX
# (lda_mailbox_autocreate = no), it does not create the mailbox.
expect_output "mail to security+nosuchbox queued" "DATA 250" \
    e2e_send sender@client.test security+nosuchbox@company.dom -- --subject to-nosuchbox
check "security+nosuchbox lands in INBOX" e2e_imap_wait security@company.dom secpw INBOX 1 10
like "INBOX message: subject" "$(e2e_imap_fetch security@company.dom secpw INBOX 1)" '^Subject: to-nosuchbox'
is "no mailbox nosuchbox was created" "$(e2e_imap_list security@company.dom secpw | LC_ALL=C sort | tr '\n' ' ')" "INBOX outgoing "
# An unknown user is rejected by LMTP at RCPT time: Postfix bounces.
expect_output "mail to an unknown user queued" "DATA 250" \
    e2e_send sender@client.test nosuch@company.dom -- --subject to-nosuch
check "maillog: unknown user bounced (550 5.1.1)" \
    e2e_log_wait "to=<nosuch@company\.dom>, relay=.*status=bounced .*550 5\.1\.1" 10

done_testing
