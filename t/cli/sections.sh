#!/bin/sh
# SPDX-License-Identifier: MIT
# `waypost check` and each daemon's check mode (-t) validate a section with
# the same code: a broken section makes both fail with the same file:line
# message; a daemon does not look at other components' sections; an
# unknown top-level name fails everywhere.  No daemon listens here (-t).
. "$top_srcdir/t/lib.sh"
scratch
POLICYD="$top_builddir/policy/waypost-policyd"
MILTER="$top_builddir/milter/waypost-milter"
ODMRD="$top_builddir/odmr/waypost-odmrd"
cp "$top_srcdir/conf/router.table" "$top_srcdir/conf/users.passwd" "$top_srcdir/conf/odmr.passwd" "$dir/"

# base CASE-TEXT: the sample conf (router, rules, imap) with working
# policyd, milter and odmr sections, then the case's text appended.
base() {
    sample_conf "$dir/w.conf"
    cat >> "$dir/w.conf" <<C
policyd: { listen = [ "socketmap:unix:$dir/sm.sock" ]; };
milter: { listen = "unix:$dir/milter.sock"; };
odmr: { spool = "$dir/spool"; passwd_file = "odmr.passwd";
        accounts = ( { user = "shop"; queues = [ "shop.dom" ]; } ); };
C
    printf '%s\n' "$1" >> "$dir/w.conf"
}
line_of() { grep -n "$1" "$dir/w.conf" | tail -1 | cut -d: -f1; }

# agree NAME DAEMON SED-EXPRESSION WANT PATTERN: the base changed by the
# sed expression; waypost check and DAEMON -t both fail and both print
# "w.conf:LINE: WANT" (LINE: the last line matching PATTERN).
agree() {
    name=$1; daemon=$2; want=$4
    base ""; sed -i "$3" "$dir/w.conf"
    msg="$dir/w.conf:$(line_of "$5"): $want"
    expect_output "$name: waypost check names it" "$msg" "$WAYPOST" -c "$dir/w.conf" check
    expect_exit "$name: waypost check fails" 1 "$WAYPOST" -c "$dir/w.conf" check
    expect_output "$name: $(basename "$daemon") -t names it" "$msg" "$daemon" -t -c "$dir/w.conf"
    expect_exit "$name: $(basename "$daemon") -t fails" 1 "$daemon" -t -c "$dir/w.conf"
}

base ""
expect_exit "the base configuration passes waypost check" 0 "$WAYPOST" -c "$dir/w.conf" check
expect_exit "... and waypost-policyd -t" 0 "$POLICYD" -t -c "$dir/w.conf"
expect_exit "... and waypost-milter -t" 0 "$MILTER" -t -c "$dir/w.conf"
expect_exit "... and waypost-odmrd -t" 0 "$ODMRD" -t -c "$dir/w.conf"

agree "policyd bound" "$POLICYD" 's|^policyd: { listen|policyd: { max_connections = 0; listen|' \
    "policyd.max_connections = 0 is below the minimum 1" "max_connections = 0"
expect_exit "policyd bound: the milter does not check policyd" 0 "$MILTER" -t -c "$dir/w.conf"
expect_exit "policyd bound: odmrd does not check policyd" 0 "$ODMRD" -t -c "$dir/w.conf"
agree "policyd duration" "$POLICYD" 's|^policyd: { listen|policyd: { idle_timeout = "10q"; listen|' \
    "policyd.idle_timeout '10q' must be a duration" "idle_timeout"
expect_exit "policyd duration: the milter does not check policyd" 0 "$MILTER" -t -c "$dir/w.conf"
agree "policyd mode" "$POLICYD" 's|^policyd: { listen|policyd: { socket_mode = "0999"; listen|' \
    "policyd.socket_mode '0999' is not an octal mode" "socket_mode"
agree "policyd listen" "$POLICYD" 's|socketmap:unix:[^"]*|smtp:unix:/x|' \
    "policyd.listen 'smtp:unix:/x': must start with socketmap:, tcp: or policy:" "smtp:unix"

base ""; sed -i "s|^milter: .*|milter: { listen = \"unix:$dir/m.sock\"; timeout = 100000; };|" "$dir/w.conf"
msg="$dir/w.conf:$(line_of 'timeout = 100000'): milter.timeout = 100000 is above the maximum 1d"
expect_output "milter bound: waypost check names it" "$msg" "$WAYPOST" -c "$dir/w.conf" check
expect_output "milter bound: waypost-milter -t names it" "$msg" "$MILTER" -t -c "$dir/w.conf"
expect_exit "milter bound: waypost-milter -t fails" 1 "$MILTER" -t -c "$dir/w.conf"
expect_exit "milter bound: policyd does not check the milter" 0 "$POLICYD" -t -c "$dir/w.conf"

base ""; sed -i "s|^milter: .*|milter: { listen = \"tcp:1\"; };|" "$dir/w.conf"
msg="$dir/w.conf:$(line_of 'tcp:1'): milter.listen 'tcp:1': endpoint must start with unix:, inet: or inet6:"
expect_output "milter endpoint: waypost check names it" "$msg" "$WAYPOST" -c "$dir/w.conf" check
expect_output "milter endpoint: waypost-milter -t names it" "$msg" "$MILTER" -t -c "$dir/w.conf"

base ""; sed -i 's|name = "Copy outgoing mail"; priority = 5;|name = "Copy outgoing mail"; priority = 12;|' "$dir/w.conf"
msg="$dir/w.conf:$(line_of 'priority = 12'): rule 'Copy outgoing mail': priority must be 0..9"
expect_output "rules: waypost check names it" "$msg" "$WAYPOST" -c "$dir/w.conf" check
expect_output "rules: waypost-milter -t names it" "$msg" "$MILTER" -t -c "$dir/w.conf"
expect_exit "rules: waypost-milter -t fails" 1 "$MILTER" -t -c "$dir/w.conf"
expect_exit "rules: policyd does not load the rules" 0 "$POLICYD" -t -c "$dir/w.conf"

base ""; sed -i 's|^odmr: { spool|odmr: { max_message_size = "1k"; expire = "2x"; spool|' "$dir/w.conf"
l=$(line_of 'max_message_size')
msg1="$dir/w.conf:$l: odmr.expire '2x' must be a duration"
expect_output "odmr duration: waypost check names it" "$msg1" "$WAYPOST" -c "$dir/w.conf" check
expect_output "odmr duration: waypost-odmrd -t names it" "$msg1" "$ODMRD" -t -c "$dir/w.conf"
base ""; sed -i 's|^odmr: { spool|odmr: { max_message_size = 1000; spool|' "$dir/w.conf"
msg="$dir/w.conf:$(line_of 'max_message_size'): odmr.max_message_size = 1000 is below the minimum 1k"
expect_output "odmr size: waypost check names it" "$msg" "$WAYPOST" -c "$dir/w.conf" check
expect_output "odmr size: waypost-odmrd -t names it" "$msg" "$ODMRD" -t -c "$dir/w.conf"
expect_exit "odmr size: waypost-odmrd -t fails" 1 "$ODMRD" -t -c "$dir/w.conf"
expect_exit "odmr size: the milter does not check odmr" 0 "$MILTER" -t -c "$dir/w.conf"

base ""; sed -i 's|mail_location = .*|mail_location = "/var/mail/%u";|' "$dir/w.conf"
if grep -q '/var/mail/%u' "$dir/w.conf"; then
    msg="$dir/w.conf:$(line_of '/var/mail/%u'): imap.mail_location '/var/mail/%u' must be"
    expect_output "imap: waypost check names it" "$msg" "$WAYPOST" -c "$dir/w.conf" check
    expect_output "imap: waypost dovecot names it" "$msg" "$WAYPOST" -c "$dir/w.conf" dovecot
    expect_exit "imap: policyd does not check imap" 0 "$POLICYD" -t -c "$dir/w.conf"
else
    not_ok "the sample conf sets imap.mail_location"
fi

# Everybody refuses an unknown top-level name and a broken router.
base 'bogus = 1;'
for p in "$WAYPOST -c $dir/w.conf check" "$POLICYD -t -c $dir/w.conf" "$MILTER -t -c $dir/w.conf" "$ODMRD -t -c $dir/w.conf"; do
    expect_output "unknown top-level name: $(basename "${p%% *}")" "$dir/w.conf:$(line_of bogus): unknown setting 'bogus'" $p
done
base ""; sed -i 's|account_cache_seconds = [0-9]*;||; s|main_domain = "company.dom";|main_domain = "company.dom"; account_cache_seconds = 4000;|' "$dir/w.conf"
for p in "$WAYPOST -c $dir/w.conf check" "$POLICYD -t -c $dir/w.conf" "$MILTER -t -c $dir/w.conf" "$ODMRD -t -c $dir/w.conf"; do
    expect_output "router bound: $(basename "${p%% *}")" "$dir/w.conf:$(line_of 'account_cache_seconds = 4000'): router.account_cache_seconds = 4000 is above the maximum 3600" $p
done
done_testing
