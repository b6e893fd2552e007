#!/bin/sh
# SPDX-License-Identifier: MIT
# waypost-imap-login, run the way Dovecot's script-login runs it: USER and
# HOME in a clean environment, stdout being the IMAP client, the program
# to continue with last.  It applies the template once, never writes to
# stdout, and always goes on to the program (also when it cannot apply).
. "$top_srcdir/t/lib.sh"
scratch
HELPER="$top_builddir/imap/waypost-imap-login"
cat >"$dir/w.conf" <<C
router: { main_domain = "company.dom"; };
imap: { template = {
  subscriptions = [ "~marketing/announce" ];
  aliases = ( { name = "mkt-announce"; target = "~marketing/announce"; } );
}; };
C
login() { # login HOME [ARGS...]: run the helper; stdout in $dir/out, stderr in $dir/err
    h=$1; shift
    env -i USER=alice HOME="$h" "$HELPER" "$@" >"$dir/out" 2>"$dir/err"
}
login "$dir/alice" -c "$dir/w.conf" sh -c 'echo "$0 $1" >"$HOME/ran"' next arg
check "the program after it runs, with its arguments" test "$(cat "$dir/alice/ran" 2>/dev/null)" = "next arg"
check "nothing on stdout (the IMAP client)" test ! -s "$dir/out"
check "nothing on stderr" test ! -s "$dir/err"
check "marker written" test -f "$dir/alice/.waypost-template"
printf 'V\t2\n\n~marketing/announce\nAliases/mkt-announce\n' >"$dir/want"
check "subscriptions: the template's names and its alias" cmp -s "$dir/want" "$dir/alice/Maildir/subscriptions"
check "alias: a virtual mailbox" grep -qx '~marketing/announce' "$dir/alice/waypost-aliases/mkt-announce/dovecot-virtual"
printf 'V\t2\n\n' >"$dir/alice/Maildir/subscriptions"
login "$dir/alice" -c "$dir/w.conf" true
check "second login: the file as the user left it" test "$(cat "$dir/alice/Maildir/subscriptions")" = "$(printf 'V\t2\n')"
login "$dir/alice" -c "$dir/w.conf" false
check "the program's exit status is the helper's" test $? -ne 0 -a ! -s "$dir/err"
# Problems go to stderr (Dovecot's log); the login goes on.
login "$dir/bob" -c "$dir/missing.conf" sh -c 'touch "$HOME.ran"'
check "missing configuration: the program still runs" test -f "$dir/bob.ran"
expect_output "missing configuration: logged" "account template not applied" cat "$dir/err"
check "missing configuration: no marker (tried again next time)" test ! -e "$dir/bob/.waypost-template"
env -i USER=carol "$HELPER" -c "$dir/w.conf" true 2>"$dir/err"
check "no HOME: the program still runs" test $? -eq 0
expect_output "no HOME: logged" "carol: no absolute HOME" cat "$dir/err"
expect_exit "no program: usage, exit 2" 2 "$HELPER" -c "$dir/w.conf"
expect_exit "unrunnable program: exit 1" 1 env -i HOME="$dir/dave" "$HELPER" -c "$dir/w.conf" "$dir/nonexistent"
done_testing
