#!/bin/sh
# SPDX-License-Identifier: MIT
# `waypost dovecot [--acl]`: the shipped samples are what the sample
# configuration generates, usage and configuration errors, and Dovecot
# itself accepts the fragment.
. "$top_srcdir/t/lib.sh"
scratch
conf=$(cd "$top_srcdir/conf" && pwd)/waypost.conf
# The samples name the installed paths (see Makefile.am, install-data-local).
generated() { # generated [--acl | --dovecot VERSION]
    "$WAYPOST" -c "$conf" dovecot "$@" |
        sed -e "s|$conf|/etc/waypost/waypost.conf|g" -e "s|${pkglibexecdir:-/usr/local/libexec/waypost}/|/usr/libexec/waypost/|g"
}
for v in 23 24; do
    sample=conf/dovecot$v-waypost.conf
    generated --dovecot "${v%?}.${v#?}" >"$dir/fragment$v"
    if cmp -s "$dir/fragment$v" "$top_srcdir/$sample"; then ok "$sample is what waypost dovecot --dovecot ${v%?}.${v#?} prints"
    else not_ok "$sample is what waypost dovecot --dovecot ${v%?}.${v#?} prints"; diff "$top_srcdir/$sample" "$dir/fragment$v" | sed 's/^/#   /'; fi
done
generated --acl >"$dir/acl"
if cmp -s "$dir/acl" "$top_srcdir/conf/waypost-global.acl"; then ok "conf/waypost-global.acl is what waypost dovecot --acl prints"
else not_ok "conf/waypost-global.acl is what waypost dovecot --acl prints"; diff "$top_srcdir/conf/waypost-global.acl" "$dir/acl" | sed 's/^/#   /'; fi
expect_output "2.3 syntax: mail_location" "mail_location = maildir:~/Maildir" "$WAYPOST" -c "$conf" dovecot --dovecot 2.3
expect_output "2.4 syntax: mail_driver" "mail_driver = maildir" "$WAYPOST" -c "$conf" dovecot --dovecot 2.4
# Without --dovecot: imap.dovecot_version, else the installed Dovecot's, else 2.4.
printf 'router: { main_domain = "company.dom"; };\nimap: { dovecot_version = "2.3"; };\n' >"$dir/v23.conf"
expect_output "imap.dovecot_version = 2.3: 2.3 syntax" "mail_location = maildir:~/Maildir" "$WAYPOST" -c "$dir/v23.conf" dovecot
expect_output "--dovecot overrides imap.dovecot_version" "mail_driver = maildir" "$WAYPOST" -c "$dir/v23.conf" dovecot --dovecot 2.4
installed=$(dovecot --version 2>/dev/null || /usr/sbin/dovecot --version 2>/dev/null)
case $installed in
2.3.*) want="mail_location = " ;;
*) want="mail_driver = " ;; # 2.4, or no Dovecot at all
esac
expect_output "default: the installed Dovecot's syntax (${installed%% *})" "$want" "$WAYPOST" -c "$conf" dovecot
expect_exit "--dovecot 2.5: exit 2" 2 "$WAYPOST" -c "$conf" dovecot --dovecot 2.5
expect_exit "--dovecot without a version: exit 2" 2 "$WAYPOST" -c "$conf" dovecot --dovecot
printf 'router: { main_domain = "company.dom"; };\nimap: { shared_dict = "proxy::shared"; };\n' >"$dir/proxy.conf"
expect_exit "a dictionary 2.4 cannot be given: exit 1" 1 "$WAYPOST" -c "$dir/proxy.conf" dovecot --dovecot 2.4
expect_output "... and why" "for Dovecot 2.4 it must be file:/ABSOLUTE/PATH" "$WAYPOST" -c "$dir/proxy.conf" dovecot --dovecot 2.4
expect_exit "2.3 takes it" 0 "$WAYPOST" -c "$dir/proxy.conf" dovecot --dovecot 2.3
printf 'router: { main_domain = "company.dom"; };\nimap: { dovecot_version = "2.5"; };\n' >"$dir/v25.conf"
expect_output "imap.dovecot_version 2.5 is refused" "imap.dovecot_version '2.5' must be" "$WAYPOST" -c "$dir/v25.conf" check
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

# The installed Dovecot takes the fragment printed for it into its own
# stock configuration (a copy of /etc/dovecot, the fragment as
# conf.d/90-waypost.conf, as README says) without a word on standard
# error: no error and no warning (Dovecot 2.4 warns about settings that
# do not do what they seem to).
if command -v doveconf >/dev/null 2>&1 && [ -f /etc/dovecot/dovecot.conf ]; then
    cp -a /etc/dovecot "$dir/etc" || not_ok "copy /etc/dovecot"
    "$WAYPOST" -c "$conf" dovecot >"$dir/etc/conf.d/90-waypost.conf"
    err=$(doveconf -c "$dir/etc/dovecot.conf" -n 2>&1 >/dev/null)
    if [ -z "$err" ]; then ok "doveconf ${installed%% *}: the stock configuration with the fragment, no error or warning"
    else not_ok "doveconf ${installed%% *}: the stock configuration with the fragment, no error or warning"; printf '%s\n' "$err" | sed 's/^/#   /'; fi
    # Accounts of the main domain without it, for IMAP and for LMTP (whose
    # filter Debian 13's 20-lmtp.conf sets).
    for p in imap lmtp; do
        out=$(doveconf -c "$dir/etc/dovecot.conf" -f protocol=$p -h auth_username_format 2>&1)
        case $installed in
        2.3.*) want='%{if;%Ld;eq;company.dom;%Ln;%Lu}' ;;
        *) want="%{user | lower | regexp('^(.*)@company[.]dom\$', '\\\\1')}" ;;
        esac
        if [ "$out" = "$want" ]; then ok "doveconf: auth_username_format for $p"
        else not_ok "doveconf: auth_username_format for $p"; printf '#   got:  %s\n#   want: %s\n' "$out" "$want"; fi
    done
    out=$(doveconf -c "$dir/etc/dovecot.conf" -n 2>/dev/null)
    case $out in *"waypost-imap-login"*) ok "doveconf -n shows the post-login service" ;; *) not_ok "doveconf -n shows the post-login service" ;; esac
else
    echo "# doveconf or /etc/dovecot not installed: not checked"
fi
done_testing
