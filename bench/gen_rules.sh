#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/gen_rules.sh N: print a libconfig "rules" list of N rules, a mix of
# the conditions a real rule set uses; most do not fire on the benchmark's
# mail (as in real life), a few add a header.
n=${1:-100}
echo "rules = ("
i=1
while [ "$i" -le "$n" ]; do
    case $((i % 5)) in
    0) cond="(\"Subject\", \"is\", \"*project-$i*\")" ;;
    1) cond="(\"Any Recipient\", \"in\", \"*@customer$i.example,*@partner$i.example\")" ;;
    2) cond="(\"From\", \"is\", \"*@sender$i.example\")" ;;
    3) cond="(\"Header Field\", \"is\", \"X-Mailer: *Tool$i*\")" ;;
    4) cond="(\"Return-Path\", \"not in\", \"*@company.dom,*@client.test\"), (\"Message Size\", \"greater than\", \"${i}M\")" ;;
    esac
    action="(\"Add Header\", \"X-Rule-$i: fired\")"
    [ $((i % 25)) -eq 0 ] && cond="(\"Any Recipient\", \"is\", \"*@friend.com\")"
    [ "$i" -lt "$n" ] && sep="," || sep=""
    echo "  { name = \"rule $i\"; priority = $(( (i % 9) + 1 )); data = ( $cond ); action = ( $action ); }$sep"
    i=$((i + 1))
done
echo ");"
