#!/bin/sh
# SPDX-License-Identifier: MIT
# Black-box tests of ETRN requests to waypost-policyd over the policy
# protocol (t/policyd/etrn.py), with a fake waypost-odmrd control socket
# that records the requests and can fail or hang: releases, refusals, names
# that are not held, hostile arguments, pipelining, and one worker thread
# that keeps answering others while odmrd hangs until policyd.etrn_timeout.
. "$top_srcdir/t/lib.sh"
scratch
POLICYD="$top_builddir/policy/waypost-policyd"
cat > "$dir/r.table" <<T
Relay:domain1.dom = domain1.dom.via
Relay:domain2.dom = domain1.dom.via
Relay:<*@domain3.dom> = *%domain3.dom@domain1.dom.via
isp1.dom = client.isp.dom.via
Relay:friend.com = friend.com.via
T
cat > "$dir/waypost.conf" <<C
router: {
  table = "r.table";
  main_domain = "company.dom";
  trusted_networks = [ "127.0.0.0/8" ];
  hold_queues = [ "domain1.dom", "client.isp.dom" ];
  domains = ( { name = "company.dom"; accounts = "list:alice"; } );
};
policyd: {
  listen = [ "policy:unix:$dir/policy.sock" ];
  threads = 1;
  etrn_release = "trusted";
  etrn_queues = ( { queue = "domain1.dom"; accounts = [ "cust1" ]; } );
  etrn_timeout = 2;
  etrn_socket = "$dir/control.sock";
};
postfix: { config_directory = "$dir/pfconf"; };
C
"$POLICYD" -f -c "$dir/waypost.conf" 2> "$dir/policyd.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
i=0; while [ ! -S "$dir/policy.sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
check "daemon starts" [ -S "$dir/policy.sock" ]
python3 "$top_srcdir/t/policyd/etrn.py" "$dir" > "$dir/etrn.out" 2>&1; rc=$?
grep -v '^1\.\.' "$dir/etrn.out"
check "ETRN protocol tests pass" [ "$rc" -eq 0 ]
check "daemon survived everything" kill -0 "$pid"
check "the timeout is logged" grep -q "ETRN domain1.dom: waypost-odmrd did not answer within 2 s" "$dir/policyd.log"
check "a failed release is logged with odmrd's answer" \
    grep -q "ETRN domain1.dom: waypost-odmrd at $dir/control.sock answered 'FAIL domain1.dom: cannot start the release'" "$dir/policyd.log"
kill "$pid"; wait "$pid"; rc=$?
check "SIGTERM stops it cleanly (exit 0)" [ "$rc" -eq 0 ]
pid=
[ "$rc" -eq 0 ] || sed 's/^/#   /' "$dir/policyd.log" | tail -20
done_testing
