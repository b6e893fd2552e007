#!/bin/sh
# SPDX-License-Identifier: MIT
# Black-box tests of `waypost route` on the sample configuration: the JSON
# objects carry the fields of the route, the text form shows the trace.
. "$top_srcdir/t/lib.sh"
scratch

# json_field ADDRESS FLAGS... -> prints "kind address nexthop port mx queue relay_class"
route_json() {
    "$WAYPOST" -c "$CONF" route --json "$@" > "$dir/out.json" 2>"$dir/err" || return 1
    python3 - "$dir/out.json" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    o = json.loads(line)
    for key in ("kind", "address", "nexthop", "port", "mx", "queue", "relay_class", "text", "steps"):
        assert key in o, key
    assert isinstance(o["steps"], list) and o["steps"], "no steps"
    print(o["kind"], o["address"], o["nexthop"], o["port"], str(o["mx"]).lower(), o["queue"], o["relay_class"])
PY
}
expect_route() { # expect_route "EXPECTED" ARGS...
    want=$1; shift
    got=$(route_json "$@")
    if [ "$got" = "$want" ]; then ok "route $*: $want"; else not_ok "route $*"; printf '#   wanted: %s\n#   got:    %s\n' "$want" "$got"; fi
}

expect_route "LOCAL carol@domain.dom None None false None none" carol@domain.dom
expect_route "RELAY aname@domain.dom otherserver.dom None true otherserver.dom MailToUnknown" aname@domain.dom
expect_route "RELAY aname@legacy.dom [11.22.33.44] None false [11.22.33.44] MailToUnknown" aname@legacy.dom
expect_route "RELAY john@friend.com friend.com None true friend.com Relay" john@friend.com
expect_route "RELAY bob@client57.com sibling.company.dom 26 false sibling.company.dom none" --trusted bob@client57.com
expect_route "RELAY y@domain2.dom domain1.dom None true domain1.dom Relay" y@domain2.dom
expect_route "LOCAL alice@company.dom None None false None none" LoginPage@alice.company.dom
expect_route "DISCARD spam-trap@company.dom None None false None none" spam-trap@company.dom
expect_route "LOCAL security@company.dom None None false None none" --access security-officer
expect_route "RELAY x@hq.company.dom hq.company.dom None true hq.company.dom NoRelay" --trusted x@hq
expect_route "LOCAL client-com@domain.dom None None false None Relay" Bob@Client.com
expect_output "unified account in JSON" '"unified":{"domain":"client.com","header":"X-Real-To","recipient":"Bob@client.com"}' \
    "$WAYPOST" -c "$CONF" route --json Bob@Client.com
expect_output "no unified account in JSON" '"unified":null' "$WAYPOST" -c "$CONF" route --json carol@domain.dom

# Several addresses: one JSON object per line, in order.
n=$("$WAYPOST" -c "$CONF" route --json alice@company.dom bob@company.dom nobody@company.dom | wc -l)
check "one JSON line per address" [ "$n" -eq 3 ]
expect_output "error text in JSON" '"text":"5.1.6 This person has left the company"' "$WAYPOST" -c "$CONF" route --json former-employee@company.dom
expect_output "hostile bytes are escaped in JSON" '"input":"a\u0001b@x"' "$WAYPOST" -c "$CONF" route --json "$(printf 'a\001b@x')"

# Text form: the trace and the relay verdict.
out=$("$WAYPOST" -c "$CONF" route 'u%d.example@company.dom')
for want in "address u%d.example@company.dom (carries routing)" "main domain with '%': u@d.example" \
            "route: RELAY to d.example by MX" "relaying: refused for this client"; do
    case $out in *"$want"*) ok "trace shows: $want" ;; *) not_ok "trace shows: $want"; echo "# $out" ;; esac
done
out=$("$WAYPOST" -c "$CONF" route --trusted 'u%d.example@company.dom')
case $out in *refused*) not_ok "trusted clients may relay" ;; *) ok "trusted clients may relay" ;; esac
expect_output "loop limit" "5.4.6 Routing loop detected" "$WAYPOST" -c "$top_srcdir/t/data/golden2.conf" route a@loop.dom

# What Postfix receives from each map and from the policy service.
out=$("$WAYPOST" -c "$CONF" route bob@client57.com)
for want in "transport         smtp:[sibling.company.dom]:26" "virtual           (not found)" \
            "recipient         OK" "policy_untrusted  554 5.7.1 Relay access denied" "policy_trusted    DUNNO"; do
    case $out in *"$want"*) ok "route shows what Postfix receives: $want" ;; *) not_ok "Postfix answer: $want"; echo "$out" | sed 's/^/# /' ;; esac
done
out=$("$WAYPOST" -c "$CONF" route former-employee@company.dom)
case $out in *"transport         error:5.1.6 This person has left the company"*"policy_untrusted  550 5.1.6 This person has left the company"*) ok "an error record's transport and policy answers" ;;
*) not_ok "an error record's transport and policy answers"; echo "$out" | sed 's/^/# /' ;; esac
out=$("$WAYPOST" -c "$CONF" route nobody@domain.dom)
case $out in *"transport         smtp:otherserver.dom"*"policy_untrusted  DUNNO"*) ok "a Mail to Unknown reroute is open to everyone" ;;
*) not_ok "Mail to Unknown reroute answers"; echo "$out" | sed 's/^/# /' ;; esac

# JSON: steps are objects; a record's step names its file, line and text.
"$WAYPOST" -c "$CONF" route --json bob@client57.com former-employee@company.dom > "$dir/steps.json"
python3 - "$dir/steps.json" <<'PY' >"$dir/steps.out" 2>&1
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
st = lines[0]["steps"]
assert all(set(x) == {"text", "file", "line", "record"} for x in st), st
assert st[0]["file"] is None and st[0]["line"] is None and st[0]["record"] is None, st[0]
assert st[1] == {"text": "router.table:24: <*@client57.com> = *%client57.com@other-port", "file": "router.table",
                 "line": 24, "record": "<*@client57.com> = *%client57.com@other-port"}, st[1]
assert st[2]["line"] == 20 and st[2]["record"] == "other-port = sibling.company.dom:26.via", st[2]
pf = lines[0]["postfix"]
assert pf == {"transport": "smtp:[sibling.company.dom]:26", "virtual": None, "recipient": "OK",
              "policy_untrusted": "554 5.7.1 Relay access denied", "policy_trusted": "DUNNO"}, pf
rec = [x for x in lines[1]["steps"] if x["record"]]
assert rec and rec[-1]["record"] == "<former-employee@company.dom> = error 5.1.6 This person has left the company", rec
assert lines[1]["postfix"]["recipient"] is None, lines[1]["postfix"]
PY
check "JSON steps carry file, line and record; postfix answers" [ ! -s "$dir/steps.out" ]
[ -s "$dir/steps.out" ] && sed 's/^/# /' "$dir/steps.out"
expect_output "a login name has no Postfix answers" '"postfix":null' "$WAYPOST" -c "$CONF" route --json --access security-officer

# Exit status: 0 for a deliverable route, 2 for ERROR or UNKNOWN, 3 when an
# account source failed; several addresses: the worst.
expect_exit "LOCAL exits 0" 0 "$WAYPOST" -c "$CONF" route carol@domain.dom
expect_exit "RELAY, HOLD and DISCARD exit 0" 0 "$WAYPOST" -c "$CONF" route john@friend.com y@domain2.dom spam-trap@company.dom
expect_exit "ERROR exits 2" 2 "$WAYPOST" -c "$CONF" route former-employee@company.dom
expect_exit "UNKNOWN exits 2" 2 "$WAYPOST" -c "$CONF" route nobody@company.dom
expect_exit "the worst of several addresses" 2 "$WAYPOST" -c "$CONF" route --json carol@domain.dom nobody@company.dom
printf 'router: { main_domain = "t.dom"; domains = ( { name = "t.dom"; accounts = "userdb:unix:%s/no-such.sock"; } ); };\n' "$dir" > "$dir/temp.conf"
expect_exit "TEMP (account source down) exits 3" 3 "$WAYPOST" -c "$dir/temp.conf" route a@t.dom
expect_exit "route without addresses is a usage error" 2 "$WAYPOST" -c "$CONF" route --json
expect_exit "route with a broken config exits 1" 1 "$WAYPOST" -c "$dir/none.conf" route a@b

done_testing
