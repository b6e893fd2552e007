#!/bin/bash
# SPDX-License-Identifier: MIT
# Shared mailboxes end to end: a real Dovecot configured by nothing but
# "waypost dovecot" (and "waypost dovecot --acl") on top of the e2e base
# configuration, the post-login helper applying the account template, and
# a real Postfix delivering account+mailbox@domain and the milter's
# "Store in ~security/outgoing" over LMTP.  Every paragraph of the seed's
# shared-mailbox text is checked with an IMAP client (t/e2e/shared.py).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dovecot.sh"
e2e_need || { echo "Bail out! cannot install postfix"; exit 1; }
e2e_dovecot_need || { echo "Bail out! cannot install dovecot"; exit 1; }
e2e_init
W="$E2E/waypost"
PW=secret
mkdir -p "$W" "$E2E/bin" "$E2E/shared"
chmod 755 "$W" "$E2E/bin"
# The mail processes (uid nobody) write the shared-mailbox dictionary.
chown nobody:nogroup "$E2E/shared"
# The helper runs as the mail user: a copy it can reach whatever the build tree's modes.
cp "$top_builddir/imap/waypost-imap-login" "$E2E/bin/" && chmod 755 "$E2E/bin/waypost-imap-login"

# Accounts of the main domain are named without it (see the fragment).
{
    for u in marketing alice bob public security boss cadmin; do echo "$u:{PLAIN}$PW"; done
    for u in carol dave; do echo "$u@domain.dom:{PLAIN}$PW"; done
} >"$E2E/users"

e2e_free_port SMTP
cat >"$W/waypost.conf" <<C
router: {
  main_domain = "company.dom";
  trusted_networks = [ "127.0.0.0/8" ];
  domains = (
    { name = "company.dom"; accounts = "list:marketing,alice,bob,public,security,boss,cadmin,newbie"; },
    { name = "domain.dom"; accounts = "list:carol,dave"; }
  );
};
policyd: { listen = [ "socketmap:unix:$W/map.sock", "policy:unix:$W/policy.sock" ]; };
postfix: { local_transport = "lmtp:unix:$E2E/dovecot/lmtp"; };
milter: { listen = "unix:$W/milter.sock"; reply_via = "smtp:127.0.0.1:$SMTP"; };
rules = (
  { name = "Copy outgoing mail"; priority = 5;
    data = ( ("Return-Path", "in", "*@domain1.dom") );
    action = ( ("Store in", "~security/outgoing") ); }
);
imap: {
  acl_file = "global.acl";
  shared_dict = "file:$E2E/shared/shared-mailboxes.db";
  login_helper = "$E2E/bin/waypost-imap-login";
  server_admins = [ "boss@company.dom" ];
  domain_admins = [ "cadmin@company.dom", "dave@domain.dom" ];
  template = {
    subscriptions = [ "~marketing/announce" ];
    aliases = ( { name = "mkt-announce"; target = "~marketing/announce"; } );
  };
};
C
chmod 644 "$W/waypost.conf"
WP() { "$top_builddir/waypost" -c "$W/waypost.conf" "$@"; }
check "waypost dovecot prints the fragment" sh -c "'$top_builddir/waypost' -c '$W/waypost.conf' dovecot >'$E2E/dovecot.extra'"
check "waypost dovecot --acl prints the ACL file" sh -c "'$top_builddir/waypost' -c '$W/waypost.conf' dovecot --acl >'$W/global.acl'"
chmod 644 "$W/global.acl"
# Dovecot limits a service to 256 MB of address space; a sanitizer build of
# the helper reserves far more (untouched) at start-up.  No limit is 0 for
# Dovecot 2.3, "unlimited" for 2.4.
nolimit=unlimited; [ "$(e2e_dovecot_version)" = 2.3 ] && nolimit=0
printf 'service waypost-imap-login {\n  vsz_limit = %s\n}\n' "$nolimit" >>"$E2E/dovecot.extra"

if e2e_dovecot "$E2E/users" "$E2E/dovecot.extra"; then ok "Dovecot runs the generated fragment"
else not_ok "Dovecot runs the generated fragment"; echo "Bail out! no Dovecot"; exit 1; fi

imap() { # imap STEP [ARGS]: shared.py's checks as our TAP lines
    local line
    while IFS= read -r line; do
        case $line in
        "ok - "*) ok "${line#ok - }" ;;
        "not ok - "*) not_ok "${line#not ok - }" ;;
        *) echo "$line" ;;
        esac
    done < <("$E2E_PY" "$E2E_LIBDIR/shared.py" "$IMAP_PORT" "$PW" "$@" 2>&1)
}

# ---- owners grant rights; alice reads, bob sees nothing; the old letters c and d
imap owner
imap reader
imap stranger
imap old-letters
# ---- subscriptions and the account template
imap subscribe
check "alice's first login applied the template once (marker)" test -f "$DOVECOT_MAIL/alice/.waypost-template"
imap no-rights-alias bob
imap grant newbie
check "newbie has never logged in" test ! -e "$DOVECOT_MAIL/newbie"
echo "newbie:{PLAIN}$PW" >>"$E2E/users"
sleep 1.1  # Dovecot looks at a passwd-file's mtime at most once a second
imap newcomer newbie
check "newbie's alias is a virtual mailbox" grep -qx '~marketing/announce' "$DOVECOT_MAIL/newbie/waypost-aliases/mkt-announce/dovecot-virtual"
check "no helper errors in Dovecot's log" sh -c "! grep -q 'waypost-imap-login' '$DOVECOT_LOG'"
# ---- administrators
imap seed-inbox alice
imap seed-inbox carol@domain.dom
# Dovecot's own lines for foreign names are the ones the helper writes
# (t/unit/check_imap.c, subscription_lines): prefix kept, split on Maildir++ dots.
imap share carol@domain.dom INBOX alice lr
imap subscribe-other "~carol@domain.dom/INBOX"
printf 'V\t2\n\n~marketing/announce\nAliases/mkt-announce\n~carol@domain\tdom/INBOX\n' >"$E2E/subs.want"
if cmp -s "$E2E/subs.want" "$DOVECOT_MAIL/alice/Maildir/subscriptions"; then ok "alice's subscriptions file: the helper's lines, then Dovecot's"
else not_ok "alice's subscriptions file: the helper's lines, then Dovecot's"; cat -A "$DOVECOT_MAIL/alice/Maildir/subscriptions" | sed 's/^/#   /'; fi
imap admin boss "~alice/INBOX,~carol@domain.dom/INBOX" ""
imap admin cadmin "~alice/INBOX" "~carol@domain.dom/INBOX"
imap admin dave@domain.dom "~carol@domain.dom/INBOX" "~alice/INBOX"
imap admin bob "" "~alice/INBOX,~carol@domain.dom/INBOX"
# ---- the public account
imap public

# ---- Postfix: account+mailbox@domain and the milter's Store in ~security/outgoing
imap outgoing
start_daemon() { # start_daemon NAME PROGRAM SOCKET
    rm -f "$3"
    e2e_bg "$1" "$top_builddir/$2" -f -c "$W/waypost.conf"
    local i=0; while [ ! -S "$3" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    test -S "$3"
}
check "waypost-policyd up" start_daemon policyd policy/waypost-policyd "$W/policy.sock"
check "waypost-milter up" start_daemon milter milter/waypost-milter "$W/milter.sock"
MD=$E2E_LAST_PID
e2e_on_exit '"$E2E_PY" -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])" "$W/milter.sock" 2>/dev/null'
WP postconf --main >"$E2E/main.extra"
e2e_postfix "$SMTP" "$E2E/main.extra" || { echo "Bail out! no Postfix"; exit 1; }
expect_output "mail to security+outgoing@company.dom accepted" "DATA 250" \
    e2e_send someone@example.org security+outgoing@company.dom -- --subject "to outgoing"
check "it is in security's outgoing mailbox" e2e_imap_wait security "$PW" outgoing 1 10
expect_output "mail from domain1.dom to alice accepted" "DATA 250" \
    e2e_send ceo@domain1.dom alice@company.dom -- --subject "deal memo"
check "Store in ~security/outgoing: the copy is in security's outgoing" e2e_imap_wait security "$PW" outgoing 2 10
check "alice got the original" e2e_imap_wait alice "$PW" INBOX 2 10
check "queue drains" e2e_wait_queue_empty 10
out=$(for i in 1 2; do e2e_imap_fetch security "$PW" outgoing $i; done)
like() { if grep -qE -- "$3" <<<"$2"; then ok "$1"; else not_ok "$1"; printf '#   want: /%s/\n' "$3"; fi; }
like "outgoing holds the direct message" "$out" '^Subject: to outgoing'
like "outgoing holds the copy of the memo" "$out" '^Subject: deal memo'
check "security's INBOX stayed empty" test "$(e2e_imap_count security "$PW" INBOX)" = 0
# Dovecot said nothing against the fragment while it ran (2.4 logs what it
# takes for a mistake, e.g. deprecated settings, at run time too).
bad=$(grep -a -E ' (Warning|Error|Fatal|Panic): ' "$DOVECOT_LOG")
if [ -z "$bad" ]; then ok "no warning or error in Dovecot's log"
else not_ok "no warning or error in Dovecot's log"; printf '%s\n' "$bad" | head -10 | sed 's/^/#   /'; fi
kill "$MD" 2>/dev/null
done_testing
