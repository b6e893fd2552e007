# SPDX-License-Identifier: MIT
# t/e2e/stack.sh - the sample Waypost stack on loopback (sourced after
# t/e2e/lib.sh and e2e_init): waypost-policyd on a loopback copy of conf/,
# smtp-sink instances for every remote server of the sample Router table,
# and a private Postfix wired by `waypost postconf`.  Used by the end-to-end
# tests and by scripts/run.
#
#   stack_start [EXTRA_MAIN_CF_LINES]
# STACK_NET (default 127.0.0) is the loopback /24 whose .2 to .10 the sinks
# listen on (port 25, so two stacks on one machine need different nets).
# STACK_ROUTER_EXTRA, STACK_POLICYD_EXTRA and STACK_ODMR_EXTRA, if set, are
# settings added to the router, policyd and odmr sections of waypost.conf
# (one line each; no '|' or '&' in the router one).
# Sets W (the Waypost config dir), SMTP (Postfix's port), ODMR (the ATRN
# port), PD, MD and OD (the pids of the policy daemon, the milter and
# waypost-odmrd).  The milter runs the sample rules; waypost-odmrd keeps the
# sample's ATRN queue shop.dom and offers STARTTLS with a fresh certificate.
# Sinks: old otherserver.dom, oldip [127.0.0.3] (stands for 11.22.33.44),
# friendmx friend.com, firewall firewall.friend.net, sibling26
# sibling.company.dom:26, siblingip [127.0.0.7] (other-ip), nomx nomx.dom,
# customer domain1.dom, local (the mailbox server: local_transport).

STACK_POLICYD="$top_builddir/policy/waypost-policyd"
STACK_ODMRD="$top_builddir/odmr/waypost-odmrd"
STACK_MILTER="$top_builddir/milter/waypost-milter"
STACK_WAYPOST="$top_builddir/waypost"
STACK_STARTS=0

# stack_daemon NAME BINARY SOCKET: (re)start a Waypost daemon as a direct
# child and wait for its socket; its pid in E2E_LAST_PID.
stack_daemon() {
    rm -f "$3"
    e2e_bg "$1$((++STACK_STARTS))" "$2" -f -c "$W/waypost.conf"
    local i=0
    while [ ! -S "$3" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    [ -S "$3" ]
}
stack_policyd() { stack_daemon policyd "$STACK_POLICYD" "$W/policy.sock"; local rc=$?; PD=$E2E_LAST_PID; return $rc; }
stack_milter() { stack_daemon milter "$STACK_MILTER" "$W/milter.sock"; local rc=$?; MD=$E2E_LAST_PID; return $rc; }
stack_odmrd() { stack_daemon odmrd "$STACK_ODMRD" "$W/odmr.sock"; local rc=$?; OD=$E2E_LAST_PID; return $rc; }
# libmilter notices SIGTERM only every 5 s unless a connection wakes it.
stack_milter_stop() {
    [ -n "${MD:-}" ] || return 0
    kill "$MD" 2>/dev/null
    "$E2E_PY" -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' "$W/milter.sock" 2>/dev/null
    wait "$MD" 2>/dev/null
    MD=
}

stack_start() {
    local net=${STACK_NET:-127.0.0}
    W="$E2E/waypost"
    mkdir -p "$W"
    # 11.22.33.44 is not ours: the IP-address scenarios use loopback ones.
    sample_conf "$W/waypost.conf.in"
    sed -e "s/11\.22\.33\.44/$net.3/g" -e "s|^router: {|&${STACK_ROUTER_EXTRA:-}|" \
        "$W/waypost.conf.in" > "$W/waypost.conf"
    sed -e "s/\[11\.22\.33\.44\]/[$net.7]/" "$top_srcdir/conf/router.table" > "$W/router.table"
    cp "$top_srcdir/conf/users.passwd" "$top_srcdir/conf/odmr.passwd" "$W/"
    e2e_free_port STACK_TCP
    e2e_free_port SMTP
    e2e_free_port ODMR
    # waypost-odmrd offers STARTTLS with a certificate made for the stack.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
        -keyout "$W/odmr-key.pem" -out "$W/odmr-cert.pem" -subj /CN=127.0.0.1 \
        -addext subjectAltName=IP:127.0.0.1 2>/dev/null || return 1
    cat >> "$W/waypost.conf" <<C
milter: {
  listen = "unix:$W/milter.sock";
  reply_via = "smtp:127.0.0.1:$SMTP";
};
log = { level = "debug"; };
policyd: {
  listen = [ "socketmap:unix:$W/map.sock", "policy:unix:$W/policy.sock",
             "tcp:inet:127.0.0.1:$STACK_TCP:transport" ];
  threads = 2;
  ${STACK_POLICYD_EXTRA:-}
};
postfix: {
  config_directory = "$PFCONF";
  # the mailbox server is a sink here
  local_transport = "smtp:[$net.10]:25";
  odmr_transport = "lmtp:unix:$W/odmr.sock";
};
odmr: {
  listen = [ "inet:127.0.0.1:$ODMR" ];
  spool = "odmr-spool";
  passwd_file = "odmr.passwd";
  tls_cert = "odmr-cert.pem"; tls_key = "odmr-key.pem";
  accounts = ( { user = "shop"; queues = [ "shop.dom" ]; } );
  dsn_via = "smtp:127.0.0.1:$SMTP";
  ${STACK_ODMR_EXTRA:-}
};
C
    stack_policyd || { echo "# waypost-policyd did not start" >&2; cat "$E2E"/policyd*.log >&2; return 1; }
    stack_milter || { echo "# waypost-milter did not start" >&2; cat "$E2E"/milter*.log >&2; return 1; }
    e2e_on_exit stack_milter_stop
    stack_odmrd || { echo "# waypost-odmrd did not start" >&2; cat "$E2E"/odmrd*.log >&2; return 1; }
    e2e_sink old $net.2:25 && e2e_host otherserver.dom $net.2 &&
    e2e_sink oldip $net.3:25 &&
    e2e_sink friendmx $net.4:25 && e2e_host friend.com $net.4 &&
    e2e_sink firewall $net.5:25 && e2e_host firewall.friend.net $net.5 &&
    e2e_sink sibling26 $net.6:26 && e2e_host sibling.company.dom $net.6 &&
    e2e_sink siblingip $net.7:25 &&
    e2e_sink nomx $net.8:25 && e2e_host nomx.dom $net.8 &&
    e2e_sink customer $net.9:25 && e2e_host domain1.dom $net.9 &&
    e2e_sink local $net.10:25 || return 1
    "$STACK_WAYPOST" -c "$W/waypost.conf" postconf --main > "$E2E/main.extra" || return 1
    [ -n "${1:-}" ] && printf '%s\n' "$1" >> "$E2E/main.extra"
    "$STACK_WAYPOST" -c "$W/waypost.conf" postconf --master > "$E2E/master.extra" || return 1
    e2e_postfix "$SMTP" "$E2E/main.extra" "$E2E/master.extra"
}
