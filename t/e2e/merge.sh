#!/bin/bash
# SPDX-License-Identifier: MIT
# `waypost postconf --apply` on a Postfix that already has its own wiring:
# a milter (bench/nullmilter), an RBL check, a second policy service and a
# hash: transport map.  After --apply every one of them is still there and
# still works (the message passes the existing milter, the hash: map still
# routes its domain, the other policy service is still asked), Waypost's
# route and rules apply, also to mail from sendmail (non_smtpd_milters); a
# second --apply changes nothing; --undo restores postconf -n and master.cf
# exactly.
. "$(dirname "$0")/lib.sh"
e2e_need || { echo "Bail out! cannot install postfix"; exit 1; }
e2e_init
# ck DESCRIPTION COMMAND...: check, and fail (for "|| show why") when it fails.
ck() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; return 1; fi; }
W="$E2E/waypost"
mkdir -p "$W"
WAYPOST="$top_builddir/waypost"

e2e_sink local 127.0.4.10:25      # Waypost's route: the mailbox server
e2e_sink hash 127.0.4.11:25       # the existing hash: transport map's route
e2e_free_port SMTP
e2e_free_port P2

# The second policy service: answers DUNNO, counts the requests.
e2e_bg policy2 "$E2E_PY" -c '
import socketserver, sys
class H(socketserver.StreamRequestHandler):
    def handle(self):
        while True:
            req = {}
            for line in self.rfile:
                line = line.decode().strip()
                if not line:
                    break
                k, _, v = line.partition("=")
                req[k] = v
            else:
                return
            with open(sys.argv[2], "a") as f:
                f.write("%s %s\n" % (req.get("protocol_state"), req.get("recipient")))
            self.wfile.write(b"action=DUNNO\n\n")
            self.wfile.flush()
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
' "$P2" "$E2E/policy2.requests"
e2e_wait_port 127.0.0.1 "$P2" 5 || { echo "Bail out! no policy2"; exit 1; }
e2e_bg nullmilter "$top_builddir/bench/nullmilter" "unix:$E2E/null.sock"
NM=$E2E_LAST_PID
for _ in $(seq 100); do [ -S "$E2E/null.sock" ] && break; sleep 0.05; done

cat > "$W/waypost.conf" <<C
router: {
  main_domain = "company.dom";
  trusted_networks = [ "127.0.0.0/8" ];
  domains = ( { name = "company.dom"; accounts = "list:alice"; mail_to_unknown = "Rejected"; } );
};
policyd: { listen = [ "socketmap:unix:$W/map.sock", "policy:unix:$W/policy.sock" ]; };
milter: { listen = "unix:$W/milter.sock"; reply_via = "smtp:127.0.0.1:$SMTP"; };
postfix: {
  config_directory = "$PFCONF";
  queue_directory = "$PFSPOOL";
  local_transport = "smtp:[127.0.4.10]:25";
};
rules = ( { name = "Stamp"; data = (); action = ( ("Add Header", "X-Waypost-Rules: stamped") ); } );
C
: > "$W/router.table"
e2e_bg policyd "$top_builddir/policy/waypost-policyd" -f -c "$W/waypost.conf"
e2e_bg milter "$top_builddir/milter/waypost-milter" -f -c "$W/waypost.conf"
MD=$E2E_LAST_PID
e2e_on_exit "kill $MD 2>/dev/null; \"$E2E_PY\" -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' '$W/milter.sock' 2>/dev/null"
for _ in $(seq 100); do [ -S "$W/policy.sock" ] && [ -S "$W/milter.sock" ] && break; sleep 0.05; done

cat > "$E2E/main.extra" <<C
smtpd_milters = unix:$E2E/null.sock
smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:$P2, permit_mynetworks,
    reject_rbl_client zen.example.invalid, reject_unauth_destination
transport_maps = hash:$PFCONF/transport
milter_command_timeout = 3s
C
e2e_postfix "$SMTP" "$E2E/main.extra" || { echo "Bail out! no Postfix"; exit 1; }
printf 'hashroute.test smtp:[127.0.4.11]:25\n' > "$PFCONF/transport"
postmap -c "$PFCONF" "hash:$PFCONF/transport"

send_ok() { # send_ok DESCRIPTION FROM TO
    local out
    if out=$(e2e_send "$2" "$3" -- --subject "$1"); then ok "$1: accepted"
    else not_ok "$1: accepted"; echo "$out" | sed 's/^/#   /'; fi
}
send_ok "before: to the hash: map's domain" sender@example.org x@hashroute.test
e2e_sink_wait hash 1 15
check "before: the hash: map routes its domain" [ "$(e2e_sink_count hash)" -eq 1 ]

pcn() { postconf -c "$PFCONF" -n; }
pcn > "$E2E/n0"; postconf -c "$PFCONF" -M > "$E2E/m0"
"$WAYPOST" -c "$W/waypost.conf" postconf --apply > "$E2E/apply.out" 2>&1
check "--apply: exit 0" [ $? -eq 0 ]
sed 's/^/#   /' "$E2E/apply.out"
_e2e_backdate
pcn > "$E2E/n1"; postconf -c "$PFCONF" -M > "$E2E/m1"
v() { postconf -c "$PFCONF" -h "$1"; }
case $(v smtpd_milters) in "unix:$E2E/null.sock, { unix:$W/milter.sock, default_action=tempfail }") ok "smtpd_milters: the existing milter, then Waypost's" ;; *) not_ok "smtpd_milters: $(v smtpd_milters)" ;; esac
case $(v non_smtpd_milters) in "{ unix:$W/milter.sock, default_action=tempfail }") ok "non_smtpd_milters: Waypost's milter" ;; *) not_ok "non_smtpd_milters: $(v non_smtpd_milters)" ;; esac
check "recipient restrictions kept textually (RBL, second policy service)" \
    [ "$(v smtpd_recipient_restrictions)" = "check_policy_service inet:127.0.0.1:$P2, permit_mynetworks, reject_rbl_client zen.example.invalid, reject_unauth_destination" ]
case $(v smtpd_relay_restrictions) in "permit_mynetworks, permit_sasl_authenticated, check_policy_service { unix:$W/policy.sock,"*"}, reject_unauth_destination") ok "relay restrictions: Waypost's policy before reject_unauth_destination" ;; *) not_ok "relay restrictions: $(v smtpd_relay_restrictions)" ;; esac
check "transport_maps: Waypost's map, then the hash: map" [ "$(v transport_maps)" = "socketmap:unix:$W/map.sock:transport, hash:$PFCONF/transport" ]
check "relay_domains: Waypost's map" [ "$(v relay_domains)" = "socketmap:unix:$W/map.sock:relay" ]
check "master.cf: the hold transport" sh -c "postconf -c '$PFCONF' -M waypost-hold/unix | grep -q smtp"
sleep 1.5   # the reload: Postfix's daemons restart with the new main.cf

: > "$E2E/policy2.requests"
send_ok "after: to a Waypost account" sender@example.org alice@company.dom
e2e_sink_wait local 1 15
check "Waypost's route: alice@company.dom reached the mailbox server" [ "$(e2e_sink_rcpts local)" = "alice@company.dom" ]
# The administrator's hash: transport map still routes its own domain:
# Postfix asks Waypost's map first, for the full address, and Waypost
# answers "not found" for a domain it does not route.
send_ok "after: to the hash: map's domain" sender@example.org y@hashroute.test
e2e_sink_wait hash 2 15
check "after: the hash: map still routes its domain" [ "$(e2e_sink_count hash)" -eq 2 ]
check "the rules ran (X-Waypost-Rules) on SMTP mail" grep -q '^X-Waypost-Rules: stamped' $(e2e_sink_files local)
check "the second policy service is still asked" grep -q 'RCPT alice@company.dom' "$E2E/policy2.requests"

# Mail from sendmail goes through the rules too (non_smtpd_milters).
printf 'Subject: from sendmail\n\nnot over SMTP\n' |
    sendmail -C "$PFCONF" -f local-sender@company.dom alice@company.dom
check "sendmail: submitted" [ $? -eq 0 ]
e2e_sink_wait local 2 20
n=0; for f in $(e2e_sink_files local); do grep -q '^Subject: from sendmail' "$f" && grep -q '^X-Waypost-Rules: stamped' "$f" && n=$((n + 1)); done
check "sendmail: the rules ran on mail that never saw smtpd" [ "$n" -eq 1 ]

# The existing milter is still in the path: without it Postfix tempfails.
kill "$NM"; wait "$NM" 2>/dev/null
out=$(e2e_send sender@example.org alice@company.dom -- --subject "no nullmilter")
# Postfix 3.7 tempfails the transaction; Postfix 3.10 already refuses the
# session with 421 when the milter cannot be reached at connect.
case $out in
*"DATA 4"*|*"RCPT <alice@company.dom> 4"*|*"MAIL 4"*|*"ERROR"*"421"*) ok "nullmilter stopped: Postfix tempfails (it is still consulted)" ;;
*) not_ok "nullmilter stopped: tempfail"; echo "$out" | sed 's/^/#   /' ;;
esac

rm -f "$E2E/null.sock"
e2e_bg nullmilter2 "$top_builddir/bench/nullmilter" "unix:$E2E/null.sock"
for _ in $(seq 100); do [ -S "$E2E/null.sock" ] && break; sleep 0.05; done

out=$("$WAYPOST" -c "$W/waypost.conf" postconf --apply 2>&1)
_e2e_backdate
pcn > "$E2E/n2"; postconf -c "$PFCONF" -M > "$E2E/m2"
check "second --apply: postconf -n identical" cmp -s "$E2E/n1" "$E2E/n2"
check "second --apply: master.cf identical" cmp -s "$E2E/m1" "$E2E/m2"
case $out in *"nothing to change"*) ok "second --apply: nothing to change" ;; *) not_ok "second --apply: nothing to change"; echo "$out" | sed 's/^/#   /' ;; esac

"$WAYPOST" -c "$W/waypost.conf" postconf --undo > "$E2E/undo.out" 2>&1
check "--undo: exit 0" [ $? -eq 0 ]
_e2e_backdate
pcn > "$E2E/n3"; postconf -c "$PFCONF" -M > "$E2E/m3"
ck "--undo: postconf -n exactly the original" cmp -s "$E2E/n0" "$E2E/n3" || diff "$E2E/n0" "$E2E/n3" | sed 's/^/#   /'
check "--undo: master.cf exactly the original" cmp -s "$E2E/m0" "$E2E/m3"
sleep 1.5   # the reload
send_ok "after --undo: to the hash: map's domain" sender@example.org z@hashroute.test
e2e_sink_wait hash 3 15
check "after --undo: the hash: map routes its domain again" [ "$(e2e_sink_count hash)" -eq 3 ]
done_testing
