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
expect_exit "route without addresses is a usage error" 2 "$WAYPOST" -c "$CONF" route --json
expect_exit "route with a broken config exits 1" 1 "$WAYPOST" -c "$dir/none.conf" route a@b

done_testing
