#!/bin/sh
# SPDX-License-Identifier: MIT
# The C sources are formatted as .clang-format says (the style the code
# has): a change that is not fails here, and `clang-format -i FILE` mends
# it.  Checked with the machine's clang-format; the Debian 13 run, whose
# clang-format is another version, does not run it.
. "$top_srcdir/t/lib.sh"
if ! command -v clang-format >/dev/null 2>&1; then
    not_ok "clang-format is installed (Debian package clang-format)"
    done_testing
fi
n=0
bad=""
for dir in lib router state policy milter odmr imap cli bench t/unit t/fuzz; do
    for f in "$top_srcdir/$dir"/*.c "$top_srcdir/$dir"/*.h; do
        [ -f "$f" ] || continue
        n=$((n + 1))
        clang-format --dry-run --Werror --style="file:$top_srcdir/.clang-format" "$f" >/dev/null 2>&1 ||
            bad="$bad ${f#"$top_srcdir"/}"
    done
done
check "the C sources ($n files) are formatted as .clang-format says" [ -z "$bad" ] && [ "$n" -gt 80 ]
[ -n "$bad" ] && echo "# not formatted:$bad"
# The check itself catches a badly formatted file.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'int  main( void ){return 0;}\n' >"$tmp/x.c"
check "a badly formatted file is caught" sh -c "! clang-format --dry-run --Werror --style=file:'$top_srcdir/.clang-format' '$tmp/x.c' >/dev/null 2>&1"
done_testing
