#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/e2e.sh - smtp-source -> Postfix -> smtp-sink, side by side in one
# run: the same routes served by Waypost (socketmap maps + policy service,
# wired by `waypost postconf`) and by native hash: maps.  The client is
# untrusted (mynetworks excludes it), so every recipient goes through the
# relay checks.  Prints messages/s for each and the ratio Waypost/native.
#
#   bench/e2e.sh BUILD_DIR [MESSAGES] [ROUNDS]      (default 4000 messages, 2 rounds)
#
# Takes about 30 s with the defaults on 2 cores.
set -u
build=$(cd "${1:-build/dev}" && pwd)
N=${2:-4000}
ROUNDS=${3:-2}
top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
top_builddir=$build
export top_srcdir top_builddir
. "$top_srcdir/t/e2e/lib.sh"
e2e_need || exit 1
e2e_init
W="$E2E/waypost"
mkdir -p "$W"
sample_conf "$W/waypost.conf"
cp "$top_srcdir/conf/router.table" "$top_srcdir/conf/users.passwd" "$W/"
cat >> "$W/waypost.conf" <<C
log = { level = "warning"; };
policyd: { listen = [ "socketmap:unix:$W/map.sock", "policy:unix:$W/policy.sock" ]; };
C
e2e_bg policyd "$build/policy/waypost-policyd" -f -c "$W/waypost.conf"
i=0; while [ ! -S "$W/policy.sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
e2e_sink friendmx 127.0.2.4:25; e2e_host friend.com 127.0.2.4
e2e_sink sibling 127.0.2.6:26; e2e_host sibling.company.dom 127.0.2.6

# Native equivalent of the Waypost routes used by the load.
cat > "$PFCONF/relay" <<T
friend.com OK
client57.com OK
T
cat > "$PFCONF/transport" <<T
friend.com smtp:friend.com
client57.com smtp:[sibling.company.dom]:26
T
cat > "$PFCONF/recipients" <<T
@friend.com OK
@client57.com OK
T
printf 'placeholder@nowhere.invalid placeholder@nowhere.invalid\n' > "$PFCONF/virtual"

"$build/waypost" -c "$W/waypost.conf" postconf --main | grep -v '^smtpd_milters' > "$E2E/waypost.cf"
echo "mynetworks = 127.0.0.2/32" >> "$E2E/waypost.cf"
cat > "$E2E/native.cf" <<C
relay_domains = hash:$PFCONF/relay
relay_recipient_maps = hash:$PFCONF/recipients
virtual_alias_maps = hash:$PFCONF/virtual
virtual_alias_domains =
transport_maps = hash:$PFCONF/transport
smtpd_recipient_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
mynetworks = 127.0.0.2/32
C
e2e_free_port SMTP
for m in relay transport recipients virtual; do : > "$PFCONF/$m.db"; done  # so Postfix can start
e2e_postfix "$SMTP" "$E2E/native.cf" >/dev/null || exit 1
for m in relay transport recipients virtual; do postmap -c "$PFCONF" "hash:$PFCONF/$m"; done
# Postfix's own per-process limits are the same for both setups.
e2e_postconf -e "default_process_limit = 100" "smtp_destination_concurrency_limit = 50"

apply() { # apply FILE: switch the instance to that wiring
    local args=() line entry=
    while IFS= read -r line || [ -n "$line" ]; do
        case $line in '#'* | '') continue ;; [[:space:]]*) entry="$entry ${line#"${line%%[![:space:]]*}"}"; continue ;; esac
        [ -n "$entry" ] && args+=("$entry"); entry=$line
    done < "$1"
    [ -n "$entry" ] && args+=("$entry")
    e2e_postconf -e "${args[@]}" && e2e_reload && sleep 2
}
run() { # run NAME: N messages, half to each route; prints msgs/s
    local before after t0 t1
    before=$(( $(e2e_sink_count friendmx) + $(e2e_sink_count sibling) ))
    t0=$(date +%s.%N)
    smtp-source -c -s 20 -m $((N / 2)) -f sender@client.test -t john@friend.com 127.0.0.1:"$SMTP" >/dev/null 2>&1 &
    local a=$!
    smtp-source -c -s 20 -m $((N / 2)) -f sender@client.test -t bob@client57.com 127.0.0.1:"$SMTP" >/dev/null 2>&1 &
    local b=$!
    wait $a $b
    e2e_wait_queue_empty 300 || return 1
    t1=$(date +%s.%N)
    after=$(( $(e2e_sink_count friendmx) + $(e2e_sink_count sibling) ))
    awk -v n=$((after - before)) -v t0="$t0" -v t1="$t1" -v name="$1" \
        'BEGIN { printf "%-8s %6d delivered in %6.2f s  %7.1f msg/s\n", name, n, t1 - t0, n / (t1 - t0) }'
}
results=$(mktemp)
for r in $(seq "$ROUNDS"); do
    apply "$E2E/native.cf"; run native | tee -a "$results"
    apply "$E2E/waypost.cf"; run waypost | tee -a "$results"
done
awk '{ s[$1] += $(NF-1); c[$1]++ }
     END { printf "native  %.1f msg/s, waypost %.1f msg/s, ratio waypost/native = %.2f (target >= 0.9)\n",
           s["native"]/c["native"], s["waypost"]/c["waypost"], (s["waypost"]/c["waypost"]) / (s["native"]/c["native"]) }' "$results"
rm -f "$results"
