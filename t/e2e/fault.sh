#!/bin/bash
# SPDX-License-Identifier: MIT
# Fault: waypost-policyd is killed with SIGKILL in the middle of an
# smtp-source run.  While it is down Postfix must answer 4xx (nothing is
# accepted unchecked, nothing refused for good); after a restart every
# message Postfix accepted is delivered exactly once.
. "$(dirname "$0")/lib.sh"
e2e_need || { echo "Bail out! cannot install postfix/python3"; exit 1; }
e2e_init
POLICYD="$top_builddir/policy/waypost-policyd"
W="$E2E/waypost"
mkdir -p "$W"
sample_conf "$W/waypost.conf"
cp "$top_srcdir/conf/router.table" "$top_srcdir/conf/users.passwd" "$W/"
cat >> "$W/waypost.conf" <<C
policyd: { listen = [ "socketmap:unix:$W/map.sock", "policy:unix:$W/policy.sock" ]; };
C
start_policyd() {
    rm -f "$W/policy.sock"
    e2e_bg "policyd$1" "$POLICYD" -f -c "$W/waypost.conf"
    PD=$E2E_LAST_PID
    local i=0; while [ ! -S "$W/policy.sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
}
start_policyd 1
e2e_sink friendmx 127.0.1.4:25; e2e_host friend.com 127.0.1.4
"$top_builddir/waypost" -c "$W/waypost.conf" postconf --main | grep -v '^smtpd_milters' > "$E2E/main.extra"
# smtp-source connects from 127.0.0.1: make it an untrusted client so the
# policy service is asked, as for mail from the Internet.
echo "mynetworks = 127.0.0.2/32" >> "$E2E/main.extra"
e2e_free_port SMTP
e2e_postfix "$SMTP" "$E2E/main.extra" || { echo "Bail out! no Postfix"; exit 1; }

# smtp-source gives up at the first 4xx, as it should: run it in a loop so
# the load continues across the outage.
ROUNDS=60
count_accepted() { grep -c 'postfix/qmgr\[[0-9]*\]: [0-9A-F]*: from=<sender@client.test>' "$PFLOG"; }
count_tempfail() { grep -cE 'NOQUEUE: reject: [A-Z]+ .*: 4[0-9][0-9] |message not accepted, try again later' "$PFLOG"; }
(for r in $(seq $ROUNDS); do
     smtp-source -c -s 2 -m 20 -f sender@client.test -t john@friend.com 127.0.0.1:"$SMTP"
 done) > "$E2E/source.log" 2>&1 &
SRC=$!
i=0; while [ "$(count_accepted)" -lt 50 ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
kill -9 "$PD"
wait "$PD" 2>/dev/null
check "smtp-source still running when the daemon died" kill -0 "$SRC"
i=0; while [ "$(count_tempfail)" -lt 5 ] && [ $i -lt 100 ] && kill -0 "$SRC" 2>/dev/null; do sleep 0.05; i=$((i + 1)); done
start_policyd 2
wait "$SRC"
check "queue drains after the restart" e2e_wait_queue_empty 60

tempfail=$(count_tempfail)
permfail=$(grep -cE 'NOQUEUE: reject: .*: 5[0-9][0-9] ' "$PFLOG")
# The message-ids of the messages Postfix took into its queue...
ids_queued=$(awk '/postfix\/qmgr\[[0-9]*\]: [0-9A-F]*: from=<sender@client.test>/ { sub(":", "", $6); q[$6] = 1 }
                  /postfix\/cleanup\[[0-9]*\]: [0-9A-F]*: message-id=/ { id = $7; sub("message-id=", "", id); sub(":", "", $6); m[$6] = id }
                  END { for (k in q) print m[k] }' "$PFLOG" | sort)
# ... and of the messages the remote server received.
ids_sink=$(cat $(e2e_sink_files friendmx) | sed -n 's/^Message-Id: \(<[^>]*>\).*/\1/ip' | sort)
accepted=$(echo "$ids_queued" | wc -w)
echo "# accepted $accepted, tempfailed $tempfail, refused $permfail"
check "mail was accepted around the outage" [ "$accepted" -gt 100 ]
check "Postfix answered 4xx while the daemon was down" [ "$tempfail" -gt 0 ]
check "nothing was refused for good" [ "$permfail" -eq 0 ]
check "every accepted message delivered" [ "$ids_queued" = "$(echo "$ids_sink" | sort -u)" ]
check "each exactly once" [ "$(echo "$ids_sink" | uniq -d | wc -w)" -eq 0 ]
check "as many deliveries as accepted messages" [ "$(echo "$ids_sink" | wc -w)" -eq "$accepted" ]
done_testing
