#!/bin/sh
# SPDX-License-Identifier: MIT
# `waypost postconf` merging into an existing Postfix configuration (a
# scratch config_directory read and written with postconf -c; no Postfix
# runs): what is there stays, Waypost is added once, --undo restores
# `postconf -n` and master.cf exactly, conflicts block --apply.
. "$top_srcdir/t/lib.sh"
command -v postconf >/dev/null 2>&1 || PATH=$PATH:/usr/sbin
if ! command -v postconf >/dev/null 2>&1; then echo "1..0 # SKIP postconf (Debian package postfix) is not installed"; exit 0; fi
scratch
pf="$dir/pf"; mkdir -p "$pf" "$dir/spool"
cp /usr/share/postfix/master.cf.dist "$pf/master.cf"
cat > "$pf/main.cf" <<C
compatibility_level = 3.6
queue_directory = $dir/spool
mydestination = \$myhostname, localhost, company.dom
smtpd_milters = inet:127.0.0.1:9999
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks,
    reject_rbl_client zen.example.org, check_policy_service inet:127.0.0.1:10099
transport_maps = hash:$pf/transport
virtual_alias_maps = hash:$pf/virtual
fast_flush_domains = \$relay_domains, flush.example
C
cat > "$dir/w.conf" <<C
router: { main_domain = "company.dom"; hold_queues = [ "client.isp.dom" ]; };
policyd: { listen = [ "socketmap:unix:$dir/spool/waypost/map.sock",
                      "policy:unix:$dir/spool/waypost/policy.sock" ]; };
milter: { listen = "unix:$dir/spool/waypost/milter.sock"; };
postfix: { config_directory = "$pf"; queue_directory = "$dir/spool"; };
C
pc() { postconf -c "$pf" "$@"; }
pc -F 'cleanup/unix/chroot = n'
pc -n > "$dir/n0"; pc -M > "$dir/m0"

# A Waypost domain in mydestination: a conflict, with the value to set.
out=$("$WAYPOST" -c "$dir/w.conf" postconf --apply 2>&1); rc=$?
check "conflict: --apply exits 1" [ "$rc" -eq 1 ]
case $out in *"conflict: company.dom is a Waypost domain and is listed in mydestination"*"postconf -c $pf -e 'mydestination = \$myhostname, localhost'"*) ok "conflict reported with the fix" ;;
  *) not_ok "conflict reported with the fix"; echo "$out" | sed 's/^/#   /' ;; esac
pc -n > "$dir/n0b"
check "conflict: nothing applied" cmp -s "$dir/n0" "$dir/n0b"
pc -e 'mydestination = $myhostname, localhost'
pc -n > "$dir/n0"

# Printing changes nothing; the commands name every parameter.
out=$("$WAYPOST" -c "$dir/w.conf" postconf); rc=$?
check "print: exit 0" [ "$rc" -eq 0 ]
pc -n > "$dir/n0b"
check "print: main.cf unchanged" cmp -s "$dir/n0" "$dir/n0b"
case $out in *"postconf -c $pf -M 'waypost-hold/unix=waypost-hold unix - - n - - smtp'"*) ok "print: master.cf entry (cleanup not chrooted: n)" ;; *) not_ok "print: master.cf entry"; echo "$out" | sed 's/^/#   /' ;; esac

"$WAYPOST" -c "$dir/w.conf" postconf --apply > "$dir/apply.out" 2>&1; rc=$?
check "--apply: exit 0" [ "$rc" -eq 0 ]
v() { pc -h "$1"; }
check "relay_domains: Waypost's map" [ "$(v relay_domains)" = "socketmap:unix:waypost/map.sock:relay" ]
check "transport_maps: Waypost first, hash: kept" [ "$(v transport_maps)" = "socketmap:unix:waypost/map.sock:transport, hash:$pf/transport" ]
check "virtual_alias_maps: Waypost first, hash: kept" [ "$(v virtual_alias_maps)" = "socketmap:unix:waypost/map.sock:virtual, hash:$pf/virtual" ]
check "virtual_alias_domains: the old maps' domains" [ "$(v virtual_alias_domains)" = "hash:$pf/virtual" ]
check "relay restrictions: policy before reject_unauth_destination" \
    [ "$(v smtpd_relay_restrictions)" = "permit_mynetworks, check_policy_service { unix:waypost/policy.sock, { default_action = 451 4.3.5 Waypost policy service unavailable } }, reject_unauth_destination" ]
r=$(v smtpd_recipient_restrictions)
check "recipient restrictions: RBL and second policy service kept textually" \
    [ "$r" = "permit_mynetworks, reject_rbl_client zen.example.org, check_policy_service inet:127.0.0.1:10099" ]
check "smtpd_milters: existing milter first, Waypost's after" \
    [ "$(v smtpd_milters)" = "inet:127.0.0.1:9999, { unix:waypost/milter.sock, default_action=tempfail }" ]
check "non_smtpd_milters: Waypost's milter (mail from sendmail)" \
    [ "$(v non_smtpd_milters)" = "{ unix:waypost/milter.sock, default_action=tempfail }" ]
check "smtpd_etrn_restrictions: the policy service" \
    [ "$(v smtpd_etrn_restrictions)" = "check_policy_service { unix:waypost/policy.sock, { default_action = 451 4.3.5 Waypost policy service unavailable } }" ]
check "fast_flush_domains: held queue appended" [ "$(v fast_flush_domains)" = "\$relay_domains, flush.example, client.isp.dom" ]
check "defer_transports: left alone (held mail waits in waypost-odmrd's spool)" [ -z "$(v defer_transports)" ]
check "master.cf: the hold transport" sh -c "postconf -c '$pf' -M waypost-hold/unix | grep -q smtp"
check "global default actions untouched" sh -c "! postconf -c '$pf' -n | grep -Eq '^(smtpd_policy_service|milter)_default_action'"
check "originals recorded" [ -s "$pf/waypost-postconf.saved" ]

pc -n > "$dir/n1"; pc -M > "$dir/m1"
out=$("$WAYPOST" -c "$dir/w.conf" postconf --apply 2>&1); rc=$?
pc -n > "$dir/n2"; pc -M > "$dir/m2"
check "second --apply: exit 0" [ "$rc" -eq 0 ]
check "second --apply: postconf -n identical" cmp -s "$dir/n1" "$dir/n2"
check "second --apply: master.cf identical" cmp -s "$dir/m1" "$dir/m2"
case $out in *"nothing to change"*) ok "second --apply: says nothing to change" ;; *) not_ok "second --apply: nothing to change"; echo "$out" | sed 's/^/#   /' ;; esac

"$WAYPOST" -c "$dir/w.conf" postconf --undo > "$dir/undo.out" 2>&1; rc=$?
check "--undo: exit 0" [ "$rc" -eq 0 ]
pc -n > "$dir/n3"; pc -M > "$dir/m3"
check "--undo: postconf -n exactly as before" cmp -s "$dir/n0" "$dir/n3"
check "--undo: master.cf exactly as before" cmp -s "$dir/m0" "$dir/m3"
check "--undo: record removed" [ ! -e "$pf/waypost-postconf.saved" ]

# A value edited after --apply: --undo takes out only Waypost's element.
"$WAYPOST" -c "$dir/w.conf" postconf --apply >/dev/null 2>&1
pc -e "transport_maps = socketmap:unix:waypost/map.sock:transport, hash:$pf/transport, hash:$pf/transport2"
out=$("$WAYPOST" -c "$dir/w.conf" postconf --undo 2>&1)
check "edited since --apply: only Waypost's element removed" [ "$(v transport_maps)" = "hash:$pf/transport, hash:$pf/transport2" ]
case $out in *"transport_maps was changed since --apply"*) ok "edited since --apply: said so" ;; *) not_ok "edited since --apply: said so" ;; esac
check "edited since --apply: the rest restored" [ "$(v smtpd_milters)" = "inet:127.0.0.1:9999" ]

# Wiring made by hand (no record): --undo strips Waypost's elements only.
pc -e "smtpd_milters = inet:127.0.0.1:9999, unix:waypost/milter.sock" "relay_domains = socketmap:unix:waypost/map.sock:relay, other.example"
"$WAYPOST" -c "$dir/w.conf" postconf --undo >/dev/null 2>&1
check "no record: milter stripped" [ "$(v smtpd_milters)" = "inet:127.0.0.1:9999" ]
check "no record: map stripped, the rest kept" [ "$(v relay_domains)" = "other.example" ]
# Chrooted cleanup in master.cf: the master.cf line is chrooted too.
pc -F 'cleanup/unix/chroot = y'
case $("$WAYPOST" -c "$dir/w.conf" postconf) in *"waypost-hold unix - - y - - smtp"*) ok "chrooted cleanup detected" ;; *) not_ok "chrooted cleanup detected" ;; esac
expect_exit "--apply with --undo: usage error" 2 "$WAYPOST" -c "$dir/w.conf" postconf --apply --undo
expect_exit "--fresh with --apply: usage error" 2 "$WAYPOST" -c "$dir/w.conf" postconf --fresh --apply
done_testing
