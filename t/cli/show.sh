#!/bin/sh
# SPDX-License-Identifier: MIT
# `waypost show` prints the effective configuration with defaults, one
# "group.name = value" line a setting; -n only what differs from them.
. "$top_srcdir/t/lib.sh"
scratch
cp "$top_srcdir/conf/router.table" "$top_srcdir/conf/users.passwd" "$top_srcdir/conf/odmr.passwd" \
   "$top_srcdir/conf/waypost.conf" "$dir/"
conf="$dir/waypost.conf"
"$WAYPOST" -c "$conf" show > "$dir/all" 2>&1; rc=$?
check "show exits 0 on the sample" [ "$rc" = 0 ]
"$WAYPOST" -c "$conf" show -n > "$dir/changed" 2>&1
has() { # has FILE LINE
    if grep -qxF -- "$2" "$1"; then ok "$(basename "$1"): $2"; else not_ok "$(basename "$1"): $2"; sed 's/^/#   /' "$1" | head -5; fi
}
hasnt() {
    if grep -q -- "^$2" "$1"; then not_ok "$(basename "$1") leaves out $2"; else ok "$(basename "$1") leaves out $2"; fi
}
# Defaults the sample does not set, as the daemons will use them.
has "$dir/all" "policyd.max_connections = 1024"
has "$dir/all" "policyd.idle_timeout = 10m"
has "$dir/all" "policyd.max_request = 10000"
has "$dir/all" "policyd.io_uring = true"
has "$dir/all" "milter.timeout = 5m"
has "$dir/all" "odmr.max_message_size = 50M"
has "$dir/all" "odmr.expire = 5d"
has "$dir/all" "odmr.socket_mode = 0660"
has "$dir/all" "log.level = info"
has "$dir/all" "postfix.relay_transport = smtp"
has "$dir/all" "router.recipient_delimiter = +"
has "$dir/all" "imap.alias_prefix = Aliases/"
has "$dir/all" "policyd.socket_owner ="
# Configured values; relative paths start at the file's directory.
has "$dir/all" "router.main_domain = company.dom"
has "$dir/all" "router.table = $(cd "$dir" && pwd -P)/router.table"
has "$dir/all" "postfix.chroot = true"
has "$dir/all" "router.trusted_networks = [ \"127.0.0.0/8\", \"::1/128\" ]"
has "$dir/all" "milter.listen = unix:/var/spool/postfix/private/waypost-milter"
# Every row of every section shows once.
n=$(grep -c '^policyd\.' "$dir/all"); check "policyd: 17 settings shown (got $n)" [ "$n" = 17 ]
n=$(grep -c '^odmr\.' "$dir/all"); check "odmr: 29 settings shown (got $n)" [ "$n" = 29 ]
n=$(sort "$dir/all" | cut -d' ' -f1 | uniq -d | wc -l); check "no setting twice" [ "$n" = 0 ]

# -n: what the sample changes, nothing it leaves at the default.
has "$dir/changed" "postfix.chroot = true"
has "$dir/changed" "router.main_domain = company.dom"
has "$dir/changed" "policyd.pidfile = /run/waypost-policyd.pid"
hasnt "$dir/changed" "policyd.max_connections"
hasnt "$dir/changed" "log.level"
hasnt "$dir/changed" "policyd.socket_mode" # "0660" is the default, written out in the sample
hasnt "$dir/changed" "postfix.queue_directory" # likewise
# Equal values written differently are not changes; different ones are.
sed -i 's|^policyd: {|policyd: { idle_timeout = "10m"; max_request = 20000; threads = 0;|' "$conf"
"$WAYPOST" -c "$conf" show -n > "$dir/changed2" 2>&1
hasnt "$dir/changed2" "policyd.idle_timeout"
hasnt "$dir/changed2" "policyd.threads"
has "$dir/changed2" "policyd.max_request = 20000"
# A broken configuration shows nothing and fails as check does.
sed -i 's|max_request = 20000|max_request = 2|' "$conf"
expect_exit "show fails on a broken configuration" 1 "$WAYPOST" -c "$conf" show
expect_output "show names the error" "policyd.max_request = 2 is below the minimum 256" "$WAYPOST" -c "$conf" show -n
expect_exit "show with a bad option is a usage error" 2 "$WAYPOST" -c "$conf" show -x
done_testing
