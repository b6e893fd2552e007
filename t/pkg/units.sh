#!/bin/sh
# SPDX-License-Identifier: MIT
# The systemd units: systemd-analyze verify accepts each (run offline on a
# copy whose programs point into a make install DESTDIR), and every path a
# unit names is one that make install installs (programs, configuration,
# man pages) or that tmpfiles.d creates (the writable directories).
. "$top_srcdir/t/lib.sh"
if ! command -v systemd-analyze >/dev/null 2>&1; then echo "1..0 # SKIP systemd-analyze (Debian package systemd) is not installed"; exit 0; fi
scratch
d="$dir/root"
make -s -C "$top_builddir" install DESTDIR="$d" >"$dir/make.log" 2>&1
check "make install" [ $? -eq 0 ]
tmpfiles=$(find "$d" -path '*tmpfiles.d/waypost.conf' | head -1)
sysusers=$(find "$d" -path '*sysusers.d/waypost.conf' | head -1)
for unit in $(find "$d" -name 'waypost-*.service' | sort); do
    u=$(basename "$unit")
    # Paths the unit names that must be installed by us.
    for p in $(sed -n 's/^Exec[A-Za-z]*=//p' "$unit" | tr ' ' '\n' | grep '^/' | grep -v '^/bin/kill$'); do
        check "$u: $p is installed" [ -e "$d$p" ]
    done
    for m in $(sed -n 's/^Documentation=//p' "$unit" | tr ' ' '\n' | sed -n 's/^man:\(.*\)(\([0-9]\))$/\1.\2/p'); do
        check "$u: man page $m is installed" sh -c "find '$d' -path '*/man/man*/$m' | grep -q ."
    done
    for p in $(sed -n 's/^ReadWritePaths=//p' "$unit"); do
        check "$u: writable $p comes from tmpfiles.d" grep -q "^d $p " "$tmpfiles"
    done
    user=$(sed -n 's/^User=//p' "$unit")
    check "$u: User=$user comes from sysusers.d" grep -q "^u $user " "$sysusers"
    for k in Type=notify 'ExecReload=/bin/kill -HUP $MAINPID' Restart=on-failure ProtectSystem=strict \
             NoNewPrivileges=yes PrivateTmp=yes ProtectHome=yes SystemCallFilter=@system-service; do
        check "$u: $k" grep -qxF "$k" "$unit"
    done
    # Offline verify: the programs as installed under DESTDIR.
    sed -e "/^ExecStart/{s|=/|=$d/|; s| /| $d/|g}" "$unit" > "$dir/$u"
    out=$(systemd-analyze verify --man=no "$dir/$u" 2>&1)
    if [ -z "$out" ]; then ok "$u: systemd-analyze verify"; else not_ok "$u: systemd-analyze verify"; echo "$out" | sed 's/^/#   /'; fi
    exposure=$(systemd-analyze security --offline=true "$dir/$u" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    echo "# $u: systemd-analyze security exposure $exposure"
    check "$u: exposure below 2.0" awk -v e="$exposure" 'BEGIN { exit !(e != "" && e < 2.0) }'
done
done_testing
