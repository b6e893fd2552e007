#!/bin/bash
# SPDX-License-Identifier: MIT
# End to end through a real Postfix: groups and forwarders of a local domain
# (router.domains' groups/forwarders).  The sample stack of t/e2e/routing.sh
# gets groups in company.dom by a reload; mail to a group reaches every
# member's sink exactly once (nested groups and duplicate members too), a
# forwarder delivers to its target, and a client that is not trusted cannot
# relay through a group member or forwarder target that leaves the server
# unless a relay class (the member's Relay: record, the group's Relay:)
# allows it.
. "$(dirname "$0")/lib.sh"
e2e_need || { echo "Bail out! cannot install postfix/python3"; exit 1; }
e2e_init
. "$(dirname "$0")/stack.sh"
if stack_start; then ok "waypost-policyd, sinks and Postfix are up"
else not_ok "stack up"; echo "Bail out! no stack"; exit 1; fi

# groups into company.dom, one of them from a file, then a reload
cat > "$W/groups.txt" <<'G'
# nested: team's members and alice again (Postfix delivers each once)
all: team, alice
G
sed -i 's|mail_to_unknown = "Rejected"; },|mail_to_unknown = "Rejected";\
      groups = [ "Team: alice, carol@domain.dom, john@friend.com", "offsite: alice, u@nomx.dom",\
                 "Relay:partners: u@nomx.dom", "file:groups.txt" ];\
      forwarders = [ "fwd: carol@domain.dom", "away: u@nomx.dom" ]; },|' "$W/waypost.conf"
check "waypost check accepts the groups" "$STACK_WAYPOST" -c "$W/waypost.conf" check
kill -HUP "$PD"
pm() { postmap -c "$PFCONF" -q "$1" "socketmap:unix:$W/map.sock:$2" 2>&1; }
for i in $(seq 50); do [ "$(pm team@company.dom virtual)" != "" ] && break; sleep 0.1; done
expect_pm() { # expect_pm KEY MAP WANT
    got=$(pm "$1" "$2")
    if [ "$got" = "$3" ]; then ok "postmap -q $1 $2 -> $3"; else not_ok "postmap -q $1 $2"; echo "#   wanted: $3"; echo "#   got:    $got"; fi
}
expect_pm Team@Company.DOM virtual "alice@company.dom, carol@domain.dom, john@friend.com"
expect_pm all@company.dom virtual "team@company.dom, alice@company.dom"
expect_pm fwd@company.dom virtual "carol@domain.dom"
expect_pm team@company.dom recipient "OK"
out=$("$STACK_WAYPOST" -c "$W/waypost.conf" route team@company.dom fwd@company.dom)
check "waypost route names the group and its members" grep -q "group team@company.dom: alice@company.dom, carol@domain.dom, john@friend.com" <<<"$out"
check "waypost route names the forwarder" grep -q "forwarder fwd@company.dom to carol@domain.dom" <<<"$out"

OUT=(--xclient 192.0.2.10)   # an outside, untrusted client
send() { # send DESCRIPTION WANT [opts] -- RCPT...
    local desc=$1 want=$2; shift 2
    local opts=()
    while [ "$1" != -- ]; do opts+=("$1"); shift; done; shift
    out=$(e2e_send sender@client.test "$@" -- "${opts[@]}")
    case $out in *$want*) ok "$desc" ;; *) not_ok "$desc"; echo "$out" | sed 's/^/#   /' ;; esac
}
send "a group from outside (members local or under Relay:)" "DATA 250" "${OUT[@]}" -- team@company.dom
send "a group with an off-server member, outside: refused" "RCPT <offsite@company.dom> 554 5.7.1 <offsite@company.dom>: Recipient address rejected: Relay access denied" "${OUT[@]}" -- offsite@company.dom
send "a forwarder to an off-server target, outside: refused" "RCPT <away@company.dom> 554 5.7.1 <away@company.dom>: Recipient address rejected: Relay access denied" "${OUT[@]}" -- away@company.dom
send "a nested group from outside" "DATA 250" "${OUT[@]}" -- all@company.dom
send "a group with Relay: from outside" "DATA 250" "${OUT[@]}" -- partners@company.dom
send "a forwarder from outside" "DATA 250" "${OUT[@]}" -- fwd@company.dom
send "the off-server group from our own client" "DATA 250" -- offsite@company.dom
check "queue drains" e2e_wait_queue_empty 20
expect_sink() { # expect_sink SINK "RCPT..." (sorted, space separated)
    got=$(e2e_sink_rcpts "$1" | tr '\n' ' ' | sed 's/ $//')
    if [ "$got" = "$2" ]; then ok "sink $1 received: $2"; else not_ok "sink $1"; echo "#   wanted: $2"; echo "#   got:    $got"; fi
}
# team: alice, carol, john once each; all: the same again (alice once);
# fwd: carol; offsite from inside: alice and u@nomx.dom; partners: u@nomx.dom
expect_sink local "alice@company.dom alice@company.dom alice@company.dom carol@domain.dom carol@domain.dom carol@domain.dom"
expect_sink friendmx "john@friend.com john@friend.com"
expect_sink nomx "u@nomx.dom u@nomx.dom"
check "the nested group's mail reached local in one transaction per message" \
    test "$(grep -l '^X-Rcpt-Args: <alice@company.dom>' $(e2e_sink_files local) | wc -l)" = 3
check "nothing else left the server" test "$(e2e_sink_count old)" = 0

done_testing
