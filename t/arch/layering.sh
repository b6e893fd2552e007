#!/bin/sh
# SPDX-License-Identifier: MIT
# The declared layering (DESIGN.md §1): lib < router < state <
# {policy, milter, odmr, imap} < cli.  A source file may include headers of
# its own folder and of folders below it, never of a folder above it, and
# no component (policy, milter, odmr, imap) includes another component's
# headers.  Includes name their folder ("router/router.h"): a bare
# "router.h" would hide where it comes from.  Then the link side of the
# same rule: the daemons that never parse MIME carry no GMime/GLib.
. "$top_srcdir/t/lib.sh"
okif() { if [ "$1" -eq 0 ]; then ok "$2"; else not_ok "$2"; fi; }

rank() {
    case $1 in
    lib) echo 0 ;; router) echo 1 ;; state) echo 2 ;;
    policy | milter | odmr | imap) echo 3 ;; cli) echo 4 ;;
    *) echo "" ;;
    esac
}

bad=0
checked=0
for dir in lib router state policy milter odmr imap cli; do
    r=$(rank "$dir")
    for f in "$top_srcdir/$dir"/*.c "$top_srcdir/$dir"/*.h; do
        [ -f "$f" ] || continue
        checked=$((checked + 1))
        # shellcheck disable=SC2013
        for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
            [ "$inc" = config.h ] && continue
            case $inc in
            */*) ;;
            *) echo "# $dir/$(basename "$f"): #include \"$inc\" does not name its folder"; bad=$((bad + 1)); continue ;;
            esac
            to=${inc%%/*}
            tr=$(rank "$to")
            if [ -z "$tr" ]; then
                echo "# $dir/$(basename "$f"): #include \"$inc\" names no Waypost folder"; bad=$((bad + 1))
            elif [ "$to" != "$dir" ] && [ "$tr" -ge "$r" ]; then
                echo "# $dir/$(basename "$f"): #include \"$inc\" goes against lib < router < state < {policy, milter, odmr, imap} < cli"
                bad=$((bad + 1))
            fi
        done
    done
done
[ "$checked" -gt 40 ] && [ "$bad" -eq 0 ]
okif $? "includes follow the layering ($checked files)"

# The checker itself must catch what it is for: a sideways and an upward
# include in a scratch copy of the rule.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/policy" "$tmp/router"
printf '#include "milter/rules.h"\n' >"$tmp/policy/x.c"
printf '#include "state/snapshot.h"\n' >"$tmp/router/y.c"
caught=0
for pair in policy/x.c router/y.c; do
    dir=${pair%%/*}
    inc=$(sed -n 's/^#include "\(.*\)"/\1/p' "$tmp/$pair")
    to=${inc%%/*}
    [ "$to" != "$dir" ] && [ "$(rank "$to")" -ge "$(rank "$dir")" ] && caught=$((caught + 1))
done
[ "$caught" -eq 2 ]
okif $? "the rule refuses a sideways and an upward include"

needs() { # needs PROGRAM: its DT_NEEDED libraries, one a line
    readelf -d "$1" 2>/dev/null | sed -n 's/.*Shared library: \[\(.*\)\].*/\1/p'
}
for prog in policy/waypost-policyd odmr/waypost-odmrd imap/waypost-imap-login; do
    p="$top_builddir/$prog"
    libs=$(needs "$p")
    if [ -z "$libs" ]; then
        okif 1 "$prog: readelf lists its libraries"
        continue
    fi
    heavy=$(echo "$libs" | grep -E '^lib(gmime|glib|gobject|gio)-' | tr '\n' ' ')
    [ -z "$heavy" ]
    okif $? "$prog needs no GMime/GLib${heavy:+ (needs: $heavy)}"
done
# ... and the milter, the one MIME parser, does.
needs "$top_builddir/milter/waypost-milter" | grep -q '^libgmime-3.0'
okif $? "milter/waypost-milter links GMime (the check sees a library that is there)"
done_testing
