#!/bin/sh
# SPDX-License-Identifier: MIT
# The command line side of ODMR: `waypost postconf` names the ODMR intake
# (and warns when a chrooted lmtp client cannot reach it), a relative
# postfix.odmr_transport socket lies under Postfix's queue directory, and
# `waypost odmr list` shows the spool; waypost-odmrd -t checks the TLS files.
. "$top_srcdir/t/lib.sh"
scratch
cat > "$dir/w.conf" <<C
router: { main_domain = "company.dom"; odmr_queues = [ "domain1.dom" ]; };
policyd: { listen = [ "socketmap:unix:/var/spool/postfix/private/waypost",
                      "policy:unix:/var/spool/postfix/private/waypost-policy" ]; };
odmr: { spool = "spool"; accounts = ( { user = "cust1"; queues = [ "domain1.dom" ]; } ); };
C
expect_output "postconf names the ODMR transport and socket" \
    "# ATRN queues go to waypost-odmrd over LMTP: transport lmtp:unix:/run/waypost/odmrd.sock, listening on unix:/run/waypost/odmrd.sock" \
    "$WAYPOST" -c "$dir/w.conf" postconf --main --no-chroot
expect_output "postconf warns when a chrooted lmtp client cannot reach the socket" \
    "# warning: a chrooted lmtp client cannot reach /run/waypost/odmrd.sock" \
    "$WAYPOST" -c "$dir/w.conf" postconf --main --chroot
sed -i 's|^odmr: {|postfix: { odmr_transport = "lmtp:unix:private/waypost-odmr"; };\nodmr: {|' "$dir/w.conf"
expect_output "a relative odmr_transport socket is under the queue directory" \
    "listening on unix:/var/spool/postfix/private/waypost-odmr" \
    "$WAYPOST" -c "$dir/w.conf" postconf --main --chroot
out=$("$WAYPOST" -c "$dir/w.conf" postconf --main --chroot)
case $out in *"warning: a chrooted lmtp"*) not_ok "no warning for a socket under the queue directory" ;;
             *) ok "no warning for a socket under the queue directory" ;; esac
expect_output "odmr list before the daemon ever ran" "no spool yet" "$WAYPOST" -c "$dir/w.conf" odmr list
mkdir -p "$dir/spool/domain1.dom" "$dir/spool/other.dom"
now=$(date +%s)
for i in 1 2; do
    printf 'WAYPOST-ODMR 1\nQ domain1.dom\nT %s\nS s@x.test\nR a@domain1.dom\nR b@domain2.dom\n\nSubject: x\r\n' \
        $((now - 3700 * i)) > "$dir/spool/domain1.dom/000000000$i.00000.000000000000"
done
printf 'WAYPOST-ODMR 1\nQ other.dom\nT %s\nS \nR c@other.dom\n\nx\r\n' $((now - 90000)) \
    > "$dir/spool/other.dom/0000000003.00000.000000000000"
out=$("$WAYPOST" -c "$dir/w.conf" odmr list)
echo "$out" | sed 's/^/#   /'
echo "$out" | grep -Eq '^domain1.dom +2 +4 +02:03:2[0-9] +cust1$'; check "odmr list: messages, recipients, oldest age, account" [ $? -eq 0 ]
echo "$out" | grep -Eq '^other.dom +1 +1 +1d01h +\(nobody\)$'; check "odmr list: a queue nobody may release" [ $? -eq 0 ]
# waypost queue: the same store, more columns; show, delete, bounce; clear errors.
out=$("$WAYPOST" -c "$dir/w.conf" queue list)
echo "$out" | sed 's/^/#   /'
echo "$out" | grep -Eq '^domain1.dom +ATRN +2 +4 +[0-9]+ +02:03:2[0-9] +cust1$'; check "queue list: kind, messages, recipients, bytes, oldest, accounts" [ $? -eq 0 ]
echo "$out" | grep -Eq '^other.dom +\(none\) +1 +1 +'; check "queue list: a queue no longer routed" [ $? -eq 0 ]
out=$("$WAYPOST" -c "$dir/w.conf" queue show domain1.dom)
echo "$out" | grep -q '^0000000001.00000.000000000000  .* bytes  from <s@x.test>$'; check "queue show: a message line" [ $? -eq 0 ]
echo "$out" | grep -q '^    to <b@domain2.dom>$'; check "queue show: its recipients" [ $? -eq 0 ]
expect_output "queue show: a bad queue name" "'../etc' is not a queue name" "$WAYPOST" -c "$dir/w.conf" queue show ../etc
expect_exit "queue show: a bad queue name fails" 1 "$WAYPOST" -c "$dir/w.conf" queue show ../etc
expect_output "queue show: an unknown queue" "no queue nosuch.dom in" "$WAYPOST" -c "$dir/w.conf" queue show nosuch.dom
expect_output "queue delete: an unknown id" "no message 'nope' in queue domain1.dom" \
    "$WAYPOST" -c "$dir/w.conf" queue delete domain1.dom nope
expect_output "queue delete: a hostile id" "no message '../other.dom/0000000003.00000.000000000000' in queue" \
    "$WAYPOST" -c "$dir/w.conf" queue delete domain1.dom ../other.dom/0000000003.00000.000000000000
check "the hostile id removed nothing" [ -f "$dir/spool/other.dom/0000000003.00000.000000000000" ]
expect_output "queue delete removes one message" "domain1.dom/0000000001.00000.000000000000: removed" \
    "$WAYPOST" -c "$dir/w.conf" queue delete domain1.dom 0000000001.00000.000000000000
check "it is gone, the other stays" sh -c "[ ! -f '$dir/spool/domain1.dom/0000000001.00000.000000000000' ] && [ -f '$dir/spool/domain1.dom/0000000002.00000.000000000000' ]"
mkdir -p "$dir/dsn"
printf '#!/bin/sh\ncat > "%s/dsn/report"\n' "$dir" > "$dir/sendmail"; chmod 755 "$dir/sendmail"
sed -i "s|^odmr: {|odmr: { dsn_via = \"sendmail:$dir/sendmail\";|" "$dir/w.conf"
expect_output "queue bounce returns and removes" "domain1.dom/0000000002.00000.000000000000: returned to the sender and removed" \
    "$WAYPOST" -c "$dir/w.conf" queue bounce domain1.dom 0000000002.00000.000000000000
check "the report went to the sender, naming the recipients" sh -c "grep -q 'To: <s@x.test>' '$dir/dsn/report' && grep -q 'b@domain2.dom' '$dir/dsn/report'"
expect_output "queue flush without a daemon: a clear error" "cannot reach waypost-odmrd at" \
    "$WAYPOST" -c "$dir/w.conf" queue flush other.dom
expect_exit "queue with a bad subcommand: usage" 2 "$WAYPOST" -c "$dir/w.conf" queue frob
expect_exit "waypost-odmrd -t accepts the configuration" 0 "$top_builddir/odmr/waypost-odmrd" -t -c "$dir/w.conf"
printf 'odmr: { tls_cert = "nope.pem"; tls_key = "nope.key"; };\n' > "$dir/bad.conf"
sed -n '1p' "$dir/w.conf" >> "$dir/bad.conf"
expect_output "waypost-odmrd -t reports a missing certificate" "nope.pem" "$top_builddir/odmr/waypost-odmrd" -t -c "$dir/bad.conf"
printf 'router: { main_domain = "c.dom"; };\nodmr: { listen = [ "tls:inet:127.0.0.1:1" ]; expire = "soon"; };\n' > "$dir/bad2.conf"
expect_output "a tls: endpoint needs a certificate" "needs odmr.tls_cert" "$WAYPOST" -c "$dir/bad2.conf" check
expect_output "a bad expire names file and line" "bad2.conf:2: odmr.expire 'soon'" "$WAYPOST" -c "$dir/bad2.conf" check
done_testing
