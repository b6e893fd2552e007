#!/bin/sh
# SPDX-License-Identifier: MIT
# `waypost dovecot [--acl]`: the shipped samples are what the sample
# configuration generates, usage and configuration errors, and Dovecot
# itself accepts the fragment.
. "$top_srcdir/t/lib.sh"
scratch
conf=$(cd "$top_srcdir/conf" && pwd)/waypost.conf
# The samples name the installed paths (see Makefile.am, install-data-local).
generated() { # generated [--acl]
    "$WAYPOST" -c "$conf" dovecot "$@" |
        sed -e "s|$conf|/etc/waypost/waypost.conf|g" -e "s|${pkglibexecdir:-/usr/local/libexec/waypost}/|/usr/libexec/waypost/|g"
}
generated >"$dir/fragment"
if cmp -s "$dir/fragment" "$top_srcdir/conf/dovecot-waypost.conf"; then ok "conf/dovecot-waypost.conf is what waypost dovecot prints"
else not_ok "conf/dovecot-waypost.conf is what waypost dovecot prints"; diff "$top_srcdir/conf/dovecot-waypost.conf" "$dir/fragment" | sed 's/^/#   /'; fi
generated --acl >"$dir/acl"
if cmp -s "$dir/acl" "$top_srcdir/conf/waypost-global.acl"; then ok "conf/waypost-global.acl is what waypost dovecot --acl prints"
else not_ok "conf/waypost-global.acl is what waypost dovecot --acl prints"; diff "$top_srcdir/conf/waypost-global.acl" "$dir/acl" | sed 's/^/#   /'; fi
out=$("$WAYPOST" -c "$conf" dovecot | grep 'script-login')
case $out in *"-c $conf"*) ok "the helper is given the absolute configuration path" ;; *) not_ok "helper -c path"; echo "#   $out" ;; esac

expect_exit "unknown option: exit 2" 2 "$WAYPOST" -c "$conf" dovecot --bogus
expect_exit "two options: exit 2" 2 "$WAYPOST" -c "$conf" dovecot --acl --acl
cat >"$dir/bad.conf" <<C
router: { main_domain = "company.dom"; };
imap: {
  alias_prefix = "";
};
C
cat >"$dir/bad2.conf" <<C
router: { main_domain = "company.dom"; };
imap: {
  server_admins = [ "root@elsewhere.dom" ];
};
C
expect_exit "bad imap section: exit 1" 1 "$WAYPOST" -c "$dir/bad.conf" dovecot
expect_output "error names file:line (alias_prefix)" "bad.conf:3: imap.alias_prefix" "$WAYPOST" -c "$dir/bad.conf" dovecot
expect_output "error names file:line (server_admins)" "bad2.conf:3: imap.server_admins: 'root@elsewhere.dom' is not in a domain" \
    "$WAYPOST" -c "$dir/bad2.conf" dovecot --acl
expect_output "waypost check reports it too" "bad.conf:3: imap.alias_prefix" "$WAYPOST" -c "$dir/bad.conf" check
mkdir -p "$dir/with space"
printf 'router: { main_domain = "company.dom"; };\n' >"$dir/with space/w.conf"
expect_exit "a configuration path with a space: exit 1" 1 "$WAYPOST" -c "$dir/with space/w.conf" dovecot

# Dovecot parses the fragment (when installed): doveconf reports no error.
if command -v doveconf >/dev/null 2>&1; then
    cat >"$dir/dovecot.conf" <<C
base_dir = $dir/run
protocols = imap lmtp
ssl = no
!include $dir/fragment
C
    err=$(doveconf -c "$dir/dovecot.conf" -n 2>&1 >/dev/null)
    if [ -z "$err" ]; then ok "doveconf accepts the fragment"; else not_ok "doveconf accepts the fragment"; echo "#   $err"; fi
    out=$(doveconf -c "$dir/dovecot.conf" -h auth_username_format)
    if [ "$out" = '%{if;%Ld;eq;company.dom;%Ln;%Lu}' ]; then ok "doveconf: auth_username_format"; else not_ok "doveconf: auth_username_format ($out)"; fi
else
    echo "# doveconf not installed: not checked"
fi
done_testing
