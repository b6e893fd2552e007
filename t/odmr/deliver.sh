#!/bin/sh
# SPDX-License-Identifier: MIT
# Held-queue delivery by waypost-odmrd (t/odmr/deliver.py): a release over
# the control socket delivers one queue only, merged domains included, to
# the next hop as the route says (MX from a local DNS server, a fixed host
# with a port, [ip]:port), STARTTLS when offered; 4xx waits, 5xx is
# returned with a DSN, an unreachable customer leaves it all waiting; kill
# -9 during a delivery or an intake loses nothing.
. "$top_srcdir/t/lib.sh"
command -v dnsmasq >/dev/null || { echo "1..0 # SKIP dnsmasq (Debian package dnsmasq-base) is not installed"; exit 0; }
scratch
ODMRD="$top_builddir/odmr/waypost-odmrd"
base=$(free_ports 5)
dns=$((base + 4))
cat > "$dir/router.table" <<T
Relay:mxq.dom   = mxq.dom.via
Relay:mxq2.dom  = mxq.dom.via
Relay:hostq.dom = sink.hostq.dom:$((base + 1)).via
Relay:ipq.dom   = [127.0.0.4]:$((base + 2)).via
Relay:atrnq.dom = atrnq.dom.via
T
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/key.pem" -out "$dir/cert.pem" -days 2 \
    -subj /CN=sink.test 2>/dev/null
mkdir -p "$dir/dsn"
cat > "$dir/fake-sendmail" <<S
#!/bin/sh
n=\$(date +%s%N)
printf '%s\n' "\$@" > "$dir/dsn/\$n.args"
cat > "$dir/dsn/\$n.msg"
S
chmod 755 "$dir/fake-sendmail"
cat > "$dir/waypost.conf" <<C
router: { table = "router.table"; main_domain = "company.dom";
          hold_queues = [ "mxq.dom", "sink.hostq.dom", "[127.0.0.4]" ]; odmr_queues = [ "atrnq.dom" ]; };
odmr: {
  lmtp_listen = "unix:$dir/lmtp.sock";
  listen = [ "inet:127.0.0.1:$((base + 3))" ];
  control_socket = "$dir/control.sock";
  spool = "spool";
  hostname = "odmr.test";
  timeout = 5;
  smtp_port = $base;
  dns_servers = "127.0.0.1:$dns";
  dsn_via = "sendmail:$dir/fake-sendmail";
};
C
dnsmasq -k --conf-file=/dev/null --port="$dns" --listen-address=127.0.0.1 --bind-interfaces --no-resolv \
    --no-hosts --user="$(id -un)" --pid-file="$dir/dnsmasq.pid" \
    --mx-host=mxq.dom,mx1.mxq.dom,10 --host-record=mx1.mxq.dom,127.0.0.2 \
    --host-record=sink.hostq.dom,127.0.0.3 2> "$dir/dnsmasq.log" &
dpid=$!
trap 'kill $dpid 2>/dev/null; wait $dpid 2>/dev/null; [ "${ODMR_KEEP:-0}" = 1 ] && echo "# kept $dir" || rm -rf "$dir"' EXIT
sleep 0.3
check "dnsmasq runs on 127.0.0.1:$dns" kill -0 "$dpid"
WAYPOST="$WAYPOST" python3 "$top_srcdir/t/odmr/deliver.py" "$dir" "$base" $((base + 1)) $((base + 2)) \
    "$ODMRD" -f -c "$dir/waypost.conf" > "$dir/deliver.out" 2>&1; rc=$?
grep -v '^1\.\.' "$dir/deliver.out"
check "delivery tests pass" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || sed 's/^/#   /' "$dir/odmrd.log" | tail -30
done_testing
