#!/bin/sh
# SPDX-License-Identifier: MIT
# `waypost import cgp` on the sample CommuniGate export (t/data/cgp, written
# from CommuniGate's documented formats): the configuration it writes passes
# `waypost check`, routes the seed's scenarios as CommuniGate documents
# them, runs the seed's two rules, reports every item it did not carry over,
# and is the same when imported twice.
. "$top_srcdir/t/lib.sh"
scratch
SRC="$top_srcdir/t/data/cgp"
OUT="$dir/out"

expect_exit "import of the sample export" 0 "$WAYPOST" import cgp "$SRC" -o "$OUT"
for f in waypost.conf router.table IMPORT-REPORT company.dom.passwd domain.dom.passwd legacy.dom.passwd; do
    check "wrote $f" [ -f "$OUT/$f" ]
done
expect_output "waypost check accepts it" "OK (main domain company.dom, 5 domains, 17 router records, 5 rules)" \
    "$WAYPOST" -c "$OUT/waypost.conf" check

# Routes: kind address nexthop port mx queue relay_class, as in t/cli/route.sh.
route_json() {
    "$WAYPOST" -c "$OUT/waypost.conf" route --json "$@" 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    o = json.loads(line)
    print(o["kind"], o["address"], o["nexthop"], o["port"], str(o["mx"]).lower(), o["queue"], o["relay_class"])'
}
expect_route() { # expect_route "EXPECTED" ARGS...
    want=$1; shift
    got=$(route_json "$@")
    if [ "$got" = "$want" ]; then ok "route $*: $want"; else not_ok "route $*"; printf '#   wanted: %s\n#   got:    %s\n' "$want" "$got"; fi
}
# Mail to Unknown: an account stays local, unknown names go on to the old
# server by name (._via) or by address, through a domain alias too.
expect_route "LOCAL carol@domain.dom None None false None none" carol@domain.dom
expect_route "RELAY aname@domain.dom otherserver.dom None true otherserver.dom MailToUnknown" aname@domain.dom
expect_route "RELAY aname@legacy.dom [11.22.33.44] None false [11.22.33.44] MailToUnknown" aname@legacy.dom
expect_route "RELAY aname@legacy.dom [11.22.33.44] None false [11.22.33.44] MailToUnknown" aname@old-legacy.dom
expect_route "UNKNOWN nobody@company.dom None None false None none" nobody@company.dom
expect_route "DISCARD x@void.dom None None false None none" x@void.dom
expect_route "ERROR x@bounce.dom None None false None none" x@bounce.dom
# Backup MX, relay host, bypassing MX (port 25, another port), one queue.
expect_route "RELAY john@friend.com friend.com None true friend.com Relay" john@friend.com
expect_route "RELAY x@friend.net firewall.friend.net None true firewall.friend.net Relay" x@friend.net
expect_route "RELAY bob@nomx.dom nomx.dom 25 false nomx.dom none" --trusted bob@nomx.dom
expect_route "RELAY bob@client57.com sibling.company.dom 26 false sibling.company.dom none" --trusted bob@client57.com
expect_route "RELAY y@domain2.dom domain1.dom None true domain1.dom Relay" y@domain2.dom
expect_route "LOCAL alice@company.dom None None false None none" postmaster@mail.company.dom
expect_route "ERROR former-employee@company.dom None None false None none" former-employee@company.dom
expect_route "LOCAL security@company.dom None None false None none" --access security-officer
# Forwarders are the domain's forwarders, with Relay: as anyone may send to
# them in CommuniGate: to a local account and off the server.
expect_route "LOCAL alice@company.dom None None false None Relay" sales@company.dom
expect_route "RELAY john@friend.com friend.com None true friend.com Relay" john@company.dom
expect_output "an outside client may send to a forwarder" "policy_untrusted  DUNNO" \
    "$WAYPOST" -c "$OUT/waypost.conf" route john@company.dom

# The seed's two rules.
cat > "$dir/msg.eml" <<'EOF'
From: worker@dept1.company.dom
To: someone@else.dom
Subject: hello

body
EOF
rules() { "$WAYPOST" -c "$OUT/waypost.conf" rules --test "$dir/msg.eml" --client 10.0.0.1 "$@"; }
expect_output "dept1 users may not send outside" \
    "result: REJECT 550 5.7.1 You may send mail only within dept1.company.dom and to supervisor@hq.company.dom" \
    rules --from worker@dept1.company.dom --to someone@else.dom
out=$(rules --from worker@dept1.company.dom --to colleague@dept1.company.dom --to supervisor@hq.company.dom)
case $out in *REJECT*) not_ok "dept1 users may send inside and to the supervisor"; echo "# $out" ;;
             *"result: ACCEPT"*) ok "dept1 users may send inside and to the supervisor" ;; *) not_ok "rules ran"; echo "# $out" ;; esac
out=$(rules --from boss@dept1.company.dom --to someone@else.dom)
case $out in *"result: ACCEPT"*) ok "boss is exempt" ;; *) not_ok "boss is exempt"; echo "# $out" ;; esac
expect_output "mail from a chosen domain is copied to ~security/outgoing" "add recipient security+outgoing@company.dom" \
    rules --from x@domain2.dom --to y@else.dom
out=$(rules --from x@other.dom --to y@else.dom)
case $out in *security+outgoing*) not_ok "other mail is not copied" ;; *) ok "other mail is not copied" ;; esac

# Priorities as CommuniGate writes them.
conf=$(cat "$OUT/waypost.conf")
for want in 'name = "Tag external"; priority = 9;' 'name = "Price list"; priority = 1;' \
            'name = "Old archive"; priority = "disabled";' 'name = "#Vacation"; priority = "disabled";' \
            'name = "Big mail"; priority = 9;' '("Mirror to", "archive@company.dom")' \
            '("Reply with", "+Subject: Our price list\n\nThank you' '("Human Generated")' \
            'mail_to_unknown = "Rerouted to *%domain.dom@otherserver.dom._via";' \
            'aliases = [ "mail.company.dom" ];' 'accounts = "passwd-file:company.dom.passwd";'; do
    what="waypost.conf has: $(printf %s "$want" | tr -d '\\')"
    case $conf in *"$want"*) ok "$what" ;; *) not_ok "$what" ;; esac
done
case $conf in *'"Run script"; priority = "disabled";'*'("Discard")'*) ok "a rule that would only discard without its Execute is kept, disabled" ;;
              *) not_ok "Run script kept disabled with Discard" ;; esac
case $conf in *'"Tag external"; priority = 9;'*'("Tag Subject", "[EXT]")'*) ok "a rule that only tags stays enabled without Write To Log" ;;
              *) not_ok "Tag external enabled" ;; esac
for gone in '"DKIM sign"' '"No executables"' '"Notify FingerNotify"' 'Execute' 'Write To Log'; do
    case $conf in *"$gone"*) not_ok "not in waypost.conf: $gone" ;; *) ok "not in waypost.conf: $gone" ;; esac
done
check "accounts as a passwd-file" grep -qx 'carol@domain.dom::::::' "$OUT/domain.dom.passwd"
check "no groups.virtual any more" [ ! -e "$OUT/groups.virtual" ]
case $conf in *'groups = [
        "Relay:staff: alice@company.dom, bob@company.dom, carol@domain.dom" ];'*) ok "groups as the domain's groups" ;;
              *) not_ok "groups as the domain's groups" ;; esac
case $conf in *'"Relay:john: john@friend.com",'*'"Relay:sales: alice@company.dom" ]'*) ok "forwarders as the domain's forwarders" ;;
              *) not_ok "forwarders as the domain's forwarders" ;; esac
expect_route "GROUP staff@company.dom None None false None Relay" staff@company.dom
expect_output "a group names its members for Postfix's virtual map" \
    "virtual           alice@company.dom, bob@company.dom, carol@domain.dom" \
    "$WAYPOST" -c "$OUT/waypost.conf" route staff@company.dom
got=$("$WAYPOST" -c "$OUT/waypost.conf" route --json staff@company.dom | python3 -c 'import json, sys; g = json.load(sys.stdin)["group"]; print(g["address"], g["relay"], " ".join(g["members"]))')
check "route --json names the group and its members" test "$got" = "staff@company.dom True alice@company.dom bob@company.dom carol@domain.dom"
expect_output "an outside client may send to a group" "policy_untrusted  DUNNO" \
    "$WAYPOST" -c "$OUT/waypost.conf" route staff@company.dom

# Every item not carried over is a line of the report, with its replacement.
report=$(cat "$OUT/IMPORT-REPORT")
for want in "record 23 'Mailer:<robot>" "action Write To Log \"external mail\" not carried over -> Postfix header_checks" \
            "action Remember 'From' in \"RepliedAddresses\" not carried over -> Dovecot Sieve vacation" \
            "action ExternalFilter \"dkim-signer\" not carried over -> run the filter as a milter (DKIM signing: opendkim" \
            "rule \"DKIM sign\" not carried over" "action Execute \"[STDIN] /usr/local/bin/report.sh\" not carried over -> run the program as a Postfix content_filter" \
            "rule \"No executables\" not carried over: condition 'Attachment'" "action FingerNotify" \
            "priority 12 written as 9" "rule \"Run script\" written disabled: it discards, rejects or redirects mail" \
            "mailing list announce@company.dom not carried over -> a list manager" \
            "GetDomainSettings.company.dom: settings not carried over: DomainAccessModes, RealName" \
            "ListAccounts.void.dom: missing" "account passwords and settings not carried over" \
            "GetAccountDefaults: not read" "Client IP Addresses"; do
    case $report in *"$want"*) ok "report: $want" ;; *) not_ok "report: $want" ;; esac
done
check "the record kept as a comment in router.table" grep -q '^; not imported (unknown prefix' "$OUT/router.table"

# Twice gives the same files; nothing is replaced without --force.
expect_exit "second import" 0 "$WAYPOST" import cgp "$SRC" -o "$dir/again"
check "importing twice gives identical files" diff -r "$OUT" "$dir/again"
echo "# edited" >> "$OUT/router.table"
expect_output "an existing file is not replaced" "router.table exists (--force replaces it)" \
    "$WAYPOST" import cgp "$SRC" -o "$OUT"
check "... and is left as it was" grep -q '^# edited' "$OUT/router.table"
expect_exit "--force replaces it" 0 "$WAYPOST" import cgp "$SRC" -o "$OUT" --force
check "... with the same files again" diff -r "$OUT" "$dir/again"

# The WebAdmin text form of the Router table, and Rules.settings, in place
# of the CLI answers, give the same configuration.
mkdir "$dir/web"
cp "$SRC"/* "$dir/web/" && rm "$dir/web/GetRouterTable" && mv "$dir/web/GetServerMailRules" "$dir/web/Rules.settings"
cp "$top_srcdir/t/data/cgp-webadmin/RouterTable.txt" "$dir/web/"
expect_exit "import of the WebAdmin form" 0 "$WAYPOST" import cgp "$dir/web" -o "$dir/webout"
check "same waypost.conf" sh -c "sed 's/Rules.settings/GetServerMailRules/' '$dir/webout/waypost.conf' | cmp -s - '$OUT/waypost.conf'"
tail -n +2 "$OUT/router.table" > "$dir/a"; tail -n +2 "$dir/webout/router.table" > "$dir/b"
check "same Router records from RouterTable.txt" cmp -s "$dir/a" "$dir/b"

# Broken input: a clear error naming file:line:column, nothing written.
mkdir "$dir/bad"
cp "$SRC"/* "$dir/bad/"
printf '((5, "x", ((From, is, "a")), (("Discard")))\n' > "$dir/bad/GetServerMailRules"
expect_output "a malformed file is named with line:column" "GetServerMailRules:1:1: unterminated array" \
    "$WAYPOST" import cgp "$dir/bad" -o "$dir/badout"
expect_exit "... exit 1" 1 "$WAYPOST" import cgp "$dir/bad" -o "$dir/badout"
check "... nothing written" [ ! -e "$dir/badout/waypost.conf" ]
rm "$dir/bad/MainDomainName"
expect_output "MainDomainName is required" "MainDomainName: missing" "$WAYPOST" import cgp "$dir/bad" -o "$dir/badout"

# Hostile names never become paths or configuration syntax.
mkdir "$dir/evil"
echo 'x.dom' > "$dir/evil/MainDomainName"
printf '(x.dom, "../../etc", "a\\"b.dom")\n' > "$dir/evil/ListDomains"
printf '{"bad/name" = macnt; ok = macnt;}\n' > "$dir/evil/ListAccounts.x.dom"
printf '{MailToUnknown = Rerouted; MailRerouteAddress = "*@x\\"; y";}\n' > "$dir/evil/GetDomainSettings.x.dom"
printf '("../../../etc/passwd", ok)\n' > "$dir/evil/ListForwarders.x.dom"
printf '"ok@else.dom"\n' > "$dir/evil/GetForwarder.ok@x.dom"
expect_output "a reroute address that is not one is an error" "the address is not one Waypost can write" \
    "$WAYPOST" import cgp "$dir/evil" -o "$dir/evilout"
printf '{MailToUnknown = Rejected;}\n' > "$dir/evil/GetDomainSettings.x.dom"
expect_exit "hostile names: import goes on" 0 "$WAYPOST" import cgp "$dir/evil" -o "$dir/evilout"
report=$(cat "$dir/evilout/IMPORT-REPORT")
for want in "domain '../../etc' not carried over" "domain 'a\"b.dom' not carried over" "account 'bad/name' not carried over" \
            "forwarder '../../../etc/passwd' not carried over"; do
    case $report in *"$want"*) ok "report: $want" ;; *) not_ok "report: $want" ;; esac
done
expect_output "and the result passes check" "OK (main domain x.dom, 1 domains, 0 router records" "$WAYPOST" -c "$dir/evilout/waypost.conf" check
check "the good forwarder is written" grep -q "\"Relay:ok: ok@else.dom\"" "$dir/evilout/waypost.conf"

expect_exit "usage: no -o" 2 "$WAYPOST" import cgp "$SRC"
expect_exit "usage: not cgp" 2 "$WAYPOST" import exchange "$SRC" -o "$dir/x"
done_testing
