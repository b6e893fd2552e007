#!/bin/sh
# SPDX-License-Identifier: MIT
# `waypost postconf`: the main.cf/master.cf wiring, chrooted and not.
. "$top_srcdir/t/lib.sh"
scratch
cat > "$dir/w.conf" <<C
router: { main_domain = "company.dom"; hold_queues = [ "client.isp.dom" ]; };
policyd: { listen = [ "socketmap:unix:/var/spool/postfix/private/waypost",
                      "policy:unix:/var/spool/postfix/private/waypost-policy" ]; };
postfix: { hold_transport = "hold-etrn"; };
C
out=$("$WAYPOST" -c "$dir/w.conf" postconf --fresh)
for want in "relay_domains = socketmap:unix:private/waypost:relay" \
            "relay_recipient_maps = socketmap:unix:private/waypost:recipient" \
            "virtual_alias_maps = socketmap:unix:private/waypost:virtual" \
            "transport_maps = socketmap:unix:private/waypost:transport" \
            "virtual_alias_domains =" \
            "smtpd_recipient_restrictions = permit_mynetworks, permit_sasl_authenticated," \
            "    check_policy_service unix:private/waypost-policy, reject_unauth_destination" \
            "smtpd_etrn_restrictions = check_policy_service unix:private/waypost-policy
" \
            "fast_flush_domains = \$relay_domains, client.isp.dom
" \
            "smtpd_policy_service_default_action = 451 4.3.5" \
            "# Held queues go to waypost-odmrd over LMTP: transport lmtp:unix:/run/waypost/odmrd.sock" \
            "hold-etrn    unix  -       -       n       -       -       smtp"; do
    case $out in *"$want"*) ok "postconf: $want" ;; *) not_ok "postconf: $want"; echo "$out" | sed 's/^/#   /' ;; esac
done
# Held mail waits in waypost-odmrd's spool: Postfix's flush would release
# every deferred queue, so defer_transports is not used any more.
case $out in *defer_transports*) not_ok "postconf: no defer_transports" ;; *) ok "postconf: no defer_transports" ;; esac
# Chrooted Postfix: sockets outside the queue directory are flagged; inet is fine.
cat > "$dir/w2.conf" <<C
router: { main_domain = "company.dom"; };
policyd: { listen = [ "socketmap:unix:/run/waypost/map.sock", "policy:inet:127.0.0.1:10040",
                      "tcp:inet:127.0.0.1:10041:transport" ]; };
C
out=$("$WAYPOST" -c "$dir/w2.conf" postconf --fresh --chroot)
case $out in *"warning: this socket is outside /var/spool/postfix, a chrooted Postfix cannot reach it"*) ok "chroot: outside socket flagged" ;; *) not_ok "chroot: outside socket flagged" ;; esac
case $out in *"check_policy_service inet:127.0.0.1:10040"*) ok "chroot: inet policy" ;; *) not_ok "chroot: inet policy" ;; esac
case $out in *"hold"*"unix  -       -       y"*) ok "chroot: master.cf line chrooted" ;; *) not_ok "chroot: master.cf line chrooted" ;; esac
out=$("$WAYPOST" -c "$dir/w2.conf" postconf --fresh --no-chroot)
case $out in *warning*) not_ok "no chroot: no warning" ;; *) ok "no chroot: no warning" ;; esac
case $out in *"transport_maps = socketmap:unix:/run/waypost/map.sock:transport"*) ok "no chroot: absolute path" ;; *) not_ok "no chroot: absolute path" ;; esac
# tcp_table only: one port per map, missing maps reported, exit 1.
cat > "$dir/w3.conf" <<C
router: { main_domain = "company.dom"; };
policyd: { listen = [ "tcp:inet:127.0.0.1:10041:transport", "tcp:inet:127.0.0.1:10042:virtual" ]; };
C
out=$("$WAYPOST" -c "$dir/w3.conf" postconf --fresh); rc=$?
case $out in *"transport_maps = tcp:127.0.0.1:10041"*"virtual_alias_maps"*|*"virtual_alias_maps = tcp:127.0.0.1:10042"*) ok "tcp_table maps, one port each" ;; *) not_ok "tcp_table maps"; echo "$out" | sed 's/^/#   /' ;; esac
case $out in *"relay_domains: no policyd.listen endpoint serves the 'relay' map"*) ok "missing map reported" ;; *) not_ok "missing map reported" ;; esac
check "missing endpoints: exit 1" [ "$rc" -eq 1 ]
check "--master prints only master.cf" sh -c "! '$WAYPOST' -c '$dir/w.conf' postconf --master | grep -q relay_domains"
check "--main prints only main.cf" sh -c "! '$WAYPOST' -c '$dir/w.conf' postconf --main | grep -q 'unix  -'"
done_testing
