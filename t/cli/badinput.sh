#!/bin/sh
# SPDX-License-Identifier: MIT
# Hostile and broken input to `waypost check` and `waypost route`: every
# problem is a "file:line: message" (or a route ERROR), never a crash.
. "$top_srcdir/t/lib.sh"
scratch

conf_with_table() { # conf_with_table NAME: a config using table NAME
    printf 'router: {\n  table = "%s";\n  main_domain = "company.dom";\n};\n' "$1" > "$dir/$1.conf"
}
# expect_check_error NAME WANT: check must exit 1 and print WANT.
expect_check_error() {
    name=$1; want=$2
    conf_with_table "$name"
    out=$("$WAYPOST" -c "$dir/$name.conf" check 2>&1); rc=$?
    case "$rc:$out" in
        1:*"$want"*) ok "$name: $want" ;;
        *) not_ok "$name: exit $rc"; printf '#   wanted: %s\n#   got:    %s\n' "$want" "$out" | head -5 ;;
    esac
}

printf 'ok.com = fine.com\n<a@b.com> = \001\002\377@x.com\n' > "$dir/binary.table"
expect_check_error binary.table "binary.table:2: binary byte 0x01 at column 13"

head -c 1048576 /dev/zero | tr '\0' 'a' > "$dir/longline.table"
printf '\nok.com = fine.com\n' >> "$dir/longline.table"
expect_check_error longline.table "longline.table:1: line too long (1048576 bytes, limit 4096)"

printf '; three stars\n<*a*@*.b.com> = x@y.com\n' > "$dir/stars.table"
expect_check_error stars.table "stars.table:2: more than one '*' in the local part"
printf '<a@*.b*.com> = x@y.com\n' > "$dir/stars2.table"
expect_check_error stars2.table "stars2.table:1: more than one '*' in the domain"

printf 'x.com = y.com\n\n<unterminated@x.com = a@b.com\n' > "$dir/bracket.table"
expect_check_error bracket.table "bracket.table:3: unterminated '<' (missing '>')"

# Random bytes (seeded, so the test is repeatable): reported, never a crash.
python3 -c 'import random,sys; r=random.Random(7); sys.stdout.buffer.write(bytes(r.randrange(256) for _ in range(200000)))' > "$dir/random.table"
conf_with_table random.table
"$WAYPOST" -c "$dir/random.table.conf" check > "$dir/out" 2>&1; rc=$?
check "random bytes: exit 1, not a crash" [ "$rc" -eq 1 ]
check "random bytes: errors name the file and line" grep -q "random.table:[0-9]*: " "$dir/out"
check "random bytes: error list is bounded" [ "$(wc -l < "$dir/out")" -le 201 ]

# A rewrite loop: the table loads (resolution stops loops) but check warns.
printf '<a@loop.dom> = b@loop.dom\n<b@loop.dom> = c@loop.dom\n<c@loop.dom> = a@loop.dom\nx.dom = y.dom\ny.dom = x.dom\n' > "$dir/loop.table"
conf_with_table loop.table
expect_output "rewrite loop warned with file:line" "loop.table:1: rewrite loop: this record leads back to itself in 3 steps (warning)" "$WAYPOST" -c "$dir/loop.table.conf" check
expect_output "domain loop warned too" "loop.table:4: rewrite loop" "$WAYPOST" -c "$dir/loop.table.conf" check
expect_output "a looping address routes to a loop error" "5.4.6 Routing loop detected" "$WAYPOST" -c "$dir/loop.table.conf" route a@loop.dom
expect_output "a looping domain routes to a loop error" "5.4.6 Routing loop detected" "$WAYPOST" -c "$dir/loop.table.conf" route u@x.dom

printf 'router: {\n  main_domain = "company.dom";\n  domains = (\n    { name = "d.dom";\n      accounts = "passwd-file:nope.passwd"; }\n  );\n};\n' > "$dir/acc.conf"
out=$("$WAYPOST" -c "$dir/acc.conf" check 2>&1); rc=$?
case "$rc:$out" in 1:*"acc.conf:5: accounts file $dir/nope.passwd: No such file or directory"*) ok "missing accounts file: file:line" ;; *) not_ok "missing accounts file"; echo "# $out" ;; esac

mkdir "$dir/dir.table"
expect_check_error dir.table "is not a regular file"
printf '\377\376garbage {{{\n' > "$dir/garbage.conf"
expect_exit "binary config file exits 1" 1 "$WAYPOST" -c "$dir/garbage.conf" check
expect_output "binary config file: file:line" "garbage.conf:1: " "$WAYPOST" -c "$dir/garbage.conf" check

# Hostile addresses to route: an ERROR route, exit 0, no crash.
big=$(head -c 100000 /dev/zero | tr '\0' 'x')
expect_output "100 kB address" "Bad address syntax: address too long" "$WAYPOST" -c "$CONF" route "$big@company.dom"
expect_output "control bytes" "Bad address syntax" "$WAYPOST" -c "$CONF" route "$(printf 'a\033[2Jb@company.dom')"
for a in '<>' '<' '@' '@@@' '"' '"a' 'a@b@' '!' 'a!!b' '@h:' '<@h1,@h2>' '[1.2.3.4]' 'u@[1.2.3.4' 'u@[999.1.1.1]' 'u@host:99999.via' \
         'u@host:0.via' 'u@.via' 'u@._via' '%@company.dom' 'u%@company.dom' '%%%@company.dom' 'u@a..b'; do
    "$WAYPOST" -c "$CONF" route --json "$a" > "$dir/o" 2>&1; rc=$?
    # exit 2: the route is ERROR (waypost route's status since it reports
    # refused addresses); a crash would be 128 or more.
    if { [ $rc -eq 0 ] || [ $rc -eq 2 ]; } && grep -q '"kind":' "$dir/o"; then ok "hostile address '$a' routed without a crash"; else not_ok "hostile address '$a' (exit $rc)"; cat "$dir/o"; fi
done

done_testing
