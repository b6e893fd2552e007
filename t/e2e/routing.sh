#!/bin/bash
# SPDX-License-Identifier: MIT
# End to end through a real Postfix on loopback: Postfix wired by
# `waypost postconf`, waypost-policyd answering from (a loopback copy of)
# the sample configuration, smtp-sink instances standing in for the old
# server, friend.com's MX, friend.net's firewall, the sibling on port 26,
# the sibling on another IP, the no-MX host, the customer of the three
# merged domains, and the local mailbox server.  Every seed routing scenario
# must reach the right sink with the envelope recipient CommuniGate uses;
# a new account moves its mail to local delivery without a restart; an
# untrusted client cannot use the relay tricks; postmap answers every map.
. "$(dirname "$0")/lib.sh"
e2e_need || { echo "Bail out! cannot install postfix/python3"; exit 1; }
e2e_init
. "$(dirname "$0")/stack.sh"
if stack_start; then ok "waypost-policyd, sinks and Postfix wired by waypost postconf are up"
else not_ok "stack up"; echo "Bail out! no stack"; exit 1; fi
check "waypost postconf names the socketmap" grep -q "^transport_maps = socketmap:unix:$W/map.sock:transport" "$E2E/main.extra"

# --- postmap answers every map (socketmap and tcp_table)
pm() { postmap -c "$PFCONF" -q "$1" "socketmap:unix:$W/map.sock:$2" 2>&1; }
expect_pm() { # expect_pm KEY MAP WANT
    got=$(pm "$1" "$2")
    if [ "$got" = "$3" ]; then ok "postmap -q $1 $2 -> $3"; else not_ok "postmap -q $1 $2"; echo "#   wanted: $3"; echo "#   got:    $got"; fi
}
expect_pm aname@domain.dom transport "smtp:otherserver.dom"
expect_pm aname@legacy.dom transport "smtp:[127.0.0.3]"
expect_pm carol@domain.dom transport "smtp:[127.0.0.10]:25"
expect_pm John@Friend.COM transport "smtp:friend.com"
expect_pm john@friend.net transport "smtp:firewall.friend.net"
expect_pm u@nomx.dom transport "smtp:[nomx.dom]:25"
expect_pm u@other-port transport "smtp:[sibling.company.dom]:26"
expect_pm u@other-ip transport "smtp:[127.0.0.7]"
expect_pm bob@client57.com transport "smtp:[sibling.company.dom]:26"
expect_pm bob@client58.com transport "smtp:[sibling.company.dom]:26"
expect_pm x@domain1.dom transport "smtp:domain1.dom"
expect_pm y@domain2.dom transport "smtp:domain1.dom"
expect_pm z@domain3.dom transport "smtp:domain1.dom"
expect_pm spam-trap@company.dom transport "discard:Waypost route"
expect_pm former-employee@company.dom transport "error:5.1.6 This person has left the company"
expect_pm LoginPage@carol.domain.dom virtual "carol@domain.dom"
expect_pm LoginPage@alice.company.dom virtual "alice@company.dom"
expect_pm postmaster@company.dom virtual "alice@company.dom"
expect_pm bob@oldcompany.com virtual "bob@company.dom"
expect_pm u%x.example@company.dom virtual "u@x.example"
expect_pm friend.com relay "OK"
expect_pm domain3.dom relay "OK"
expect_pm mail.company.dom relay "OK"
expect_pm aname@domain.dom recipient "OK"
expect_pm security-officer account "security@company.dom"
got=$(postmap -c "$PFCONF" -q bob@client57.com "tcp:127.0.0.1:$STACK_TCP" 2>&1)
check "postmap -q over tcp_table" test "$got" = "smtp:[sibling.company.dom]:26"
postmap -c "$PFCONF" -q nobody@company.dom "socketmap:unix:$W/map.sock:recipient" >/dev/null 2>&1
check "postmap: unknown user is not a recipient (exit 1)" test $? -eq 1
postmap -c "$PFCONF" -q evil.example "socketmap:unix:$W/map.sock:relay" >/dev/null 2>&1
check "postmap: a foreign domain is not a relay domain" test $? -eq 1

# --- every seed scenario through Postfix, to the right sink
send_ok() { # send_ok DESCRIPTION [--xclient IP] -- RCPT...
    local desc=$1; shift
    local opts=()
    while [ "$1" != -- ]; do opts+=("$1"); shift; done; shift
    out=$(e2e_send sender@client.test "$@" -- "${opts[@]}")
    case $out in *"DATA 250"*) ok "$desc: accepted" ;; *) not_ok "$desc: accepted"; echo "$out" | sed 's/^/#   /' ;; esac
}
OUT=(--xclient 192.0.2.10)   # an outside, untrusted client
send_ok "unknown user of domain.dom (outside client)" "${OUT[@]}" -- aname@domain.dom
send_ok "known account of domain.dom" "${OUT[@]}" -- carol@domain.dom
send_ok "unknown user of legacy.dom (old server by IP)" "${OUT[@]}" -- aname@legacy.dom
send_ok "backup MX for friend.com (Relay:)" "${OUT[@]}" -- john@friend.com
send_ok "friend.net through its firewall (Relay:)" "${OUT[@]}" -- john@friend.net
send_ok "customer domains into one queue (Relay:)" "${OUT[@]}" -- x@domain1.dom y@domain2.dom z@domain3.dom
send_ok "bypassing MX, siblings, client57/58 (our own client)" -- u@nomx.dom u@other-port u@other-ip bob@client57.com bob@client58.com
send_ok "LoginPage and an alias" -- LoginPage@carol.domain.dom postmaster@company.dom

check "queue drains" e2e_wait_queue_empty 20
expect_sink() { # expect_sink SINK "RCPT..." (sorted, space separated)
    got=$(e2e_sink_rcpts "$1" | tr '\n' ' ' | sed 's/ $//')
    if [ "$got" = "$2" ]; then ok "sink $1 received: $2"; else not_ok "sink $1"; echo "#   wanted: $2"; echo "#   got:    $got"; fi
}
expect_sink old "aname@domain.dom"
expect_sink oldip "aname@legacy.dom"
expect_sink friendmx "john@friend.com"
expect_sink firewall "john@friend.net"
expect_sink customer "x@domain1.dom y@domain2.dom z@domain3.dom"
expect_sink nomx "u@nomx.dom"
expect_sink sibling26 "bob@client57.com bob@client58.com u@other-port"
expect_sink siblingip "u@other-ip"
expect_sink local "alice@company.dom carol@domain.dom carol@domain.dom"
check "the old server got the headers unchanged (To: as sent)" \
    grep -q "^To: <aname@domain.dom>" $(e2e_sink_files old)

# --- a new account receives its mail locally at once, without a restart
send_ok "newuser@domain.dom before the account exists" -- newuser@domain.dom
e2e_sink_wait old 2 10
expect_sink old "aname@domain.dom newuser@domain.dom"
echo "newuser:{PLAIN}x::::::" >> "$W/users.passwd"
sleep 1.2   # account_cache_seconds = 1
# Postfix's queue manager remembers the last address it resolved for a
# short while; any other recipient in between replaces that memory.
send_ok "some other mail meanwhile" -- carol@domain.dom
send_ok "newuser@domain.dom after the account was created" -- newuser@domain.dom
check "queue drains" e2e_wait_queue_empty 20
expect_sink local "alice@company.dom carol@domain.dom carol@domain.dom carol@domain.dom newuser@domain.dom"
expect_sink old "aname@domain.dom newuser@domain.dom"

# --- no open relay: the classic tricks from an outside client are refused
for t in 'u%d.example@company.dom' '"u@d.example"@company.dom' '@company.dom:u@d.example' \
         'd.example!u@company.dom' 'u%d.example@[127.0.0.1]' 'U%D.EXAMPLE@COMPANY.DOM' \
         'u%d.example@mail.company.dom' 'u%friend.com@company.dom' 'u@d.example' 'x@hq' 'bob@client57.com'; do
    out=$(e2e_send sender@outside.example "$t" -- "${OUT[@]}")
    case $out in *"RCPT "*" 554 "*"Relay access denied"*) ok "outside client refused: $t" ;;
                 *) not_ok "outside client refused: $t"; echo "$out" | sed 's/^/#   /' ;; esac
done
out=$(e2e_send sender@outside.example 'u@d.example@company.dom' -- "${OUT[@]}")
case $out in *"RCPT "*" 5"[0-9][0-9]" "*) ok "outside client refused: u@d.example@company.dom" ;;
             *) not_ok "outside client refused: u@d.example@company.dom"; echo "$out" | sed 's/^/#   /' ;; esac
out=$(e2e_send sender@outside.example nobody@company.dom former-employee@company.dom -- "${OUT[@]}")
case $out in *"nobody@company.dom> 550 5.1.1"*) ok "unknown user: 550 5.1.1" ;; *) not_ok "unknown user: 550 5.1.1"; echo "$out" | sed 's/^/#   /' ;; esac
case $out in *"former-employee@company.dom> 550 5.1.6"*"This person has left"*) ok "error record: its text" ;; *) not_ok "error record: its text"; echo "$out" | sed 's/^/#   /' ;; esac
check "nothing went to a sink it should not" test "$(e2e_sink_count friendmx)" = 1
check "no relayed mail is queued" e2e_wait_queue_empty 5

# --- one decision line each (waypost-policyd(8), LOGGING), fields in order
PLOG=$(ls "$E2E"/policyd*.log)
line_of() { grep -h "event=policy .* recipient=$1 " $PLOG | head -1; }
expect_line() { # expect_line DESCRIPTION RCPT-REGEX ERE
    local l; l=$(line_of "$2")
    if printf '%s\n' "$l" | grep -Eq "$3"; then ok "log: $1"; else not_ok "log: $1"; echo "#   wanted: $3"; echo "#   got:    $l"; fi
}
F='event=policy queue_id=[^ ]* client=[^ ]*\[192\.0\.2\.10\] sasl_username="" sender=sender@[a-z.]+ recipient='
expect_line "Mail to Unknown reroute opens relaying, names the domain" 'aname@domain\.dom' \
    "${F}aname@domain\\.dom action=DUNNO decision=relay record=[^ ]* unknown=domain\\.dom\$"
expect_line "a Relay: record opens relaying, named file:line" 'john@friend\.com' \
    "${F}john@friend\\.com action=DUNNO decision=relay record=router\\.table:$(grep -n '^Relay:<\*@friend.com>' "$W/router.table" | cut -d: -f1) unknown=\"\"\$"
# (Postfix refuses the %-hacks itself; an address only a trusted client may
# relay to reaches the policy service.  record= is the last record applied:
# <*@client57.com> leads to other-port, whose route leaves the server.)
expect_line "a refused relay, the record that decided named" 'bob@client57\.com .*decision=refuse' \
    "${F}bob@client57\\.com action=\"554 5\\.7\\.1 Relay access denied\" decision=refuse record=router\\.table:$(grep -n '^other-port ' "$W/router.table" | cut -d: -f1) unknown=\"\"\$"
expect_line "an error record, its text and file:line" 'former-employee@company\.dom' \
    "${F}former-employee@company\\.dom action=\"550 5\\.1\\.6 This person has left the company\" decision=refuse record=router\\.table:$(grep -n '^<former-employee>' "$W/router.table" | cut -d: -f1) unknown=\"\"\$"
expect_line "Postfix's queue id once it has one (a later recipient of the message)" 'y@domain2\.dom' \
    "event=policy queue_id=[0-9A-Za-z]{6,} .*recipient=y@domain2\\.dom action=DUNNO decision=relay"
check "an accepted local recipient: its line at debug only" sh -c "grep -h 'event=policy .* recipient=carol@domain.dom .*decision=accept' $PLOG | grep -q '^waypost-policyd: debug: ' && ! grep -h 'event=policy .* recipient=carol@domain.dom ' $PLOG | grep -vq '^waypost-policyd: debug: '"

done_testing
