#!/bin/sh
# SPDX-License-Identifier: MIT
# make install never destroys: a second install keeps an edited
# configuration file, password files are never world-readable, the samples
# go to the examples directory, nothing is written into Dovecot's or
# Postfix's configuration, and uninstall leaves the configuration.
. "$top_srcdir/t/lib.sh"
scratch
d="$dir/root"
inst() { make -s -C "$top_builddir" "$@" DESTDIR="$d" >"$dir/make.log" 2>&1; }
inst install; check "make install" [ $? -eq 0 ]
etc=$(find "$d" -type d -path '*/etc/waypost' | head -1)
check "configuration installed in .../etc/waypost" [ -f "$etc/waypost.conf" ]
check "the server configuration, not the sample" grep -q 'CHANGE: this server' "$etc/waypost.conf"
for f in odmr.passwd users.passwd; do
    check "$f: mode 0640" [ "$(stat -c %a "$etc/$f")" = 640 ]
done
ex=$(find "$d" -type d -path '*/doc/waypost/examples' | head -1)
for f in waypost.conf router.table dovecot23-waypost.conf dovecot24-waypost.conf waypost-global.acl; do
    check "example $f installed" [ -f "$ex/$f" ]
done
for f in odmr.passwd users.passwd; do
    check "example $f: not world-readable" [ "$(stat -c %a "$ex/$f" | cut -c3)" = 0 ]
done
check "nothing written into Dovecot's or Postfix's configuration" \
    sh -c "! find '$d' -path '*/etc/dovecot*' -o -path '*/etc/postfix*' | grep -q ."
check "units installed" [ "$(find "$d" -name 'waypost-*.service' | wc -l)" -eq 3 ]
check "sysusers.d and tmpfiles.d installed" sh -c "find '$d' -path '*sysusers.d/waypost.conf' | grep -q . && find '$d' -path '*tmpfiles.d/waypost.conf' | grep -q ."

echo "# an administrator's edit" >> "$etc/waypost.conf"
echo "customer:{PLAIN}secret" >> "$etc/odmr.passwd"
chmod 0600 "$etc/odmr.passwd"
inst install; check "second make install" [ $? -eq 0 ]
check "second install kept the edited waypost.conf" grep -q "an administrator's edit" "$etc/waypost.conf"
check "second install kept the edited odmr.passwd" grep -q "^customer:" "$etc/odmr.passwd"
check "second install kept odmr.passwd's mode" [ "$(stat -c %a "$etc/odmr.passwd")" = 600 ]
check "second install said it kept them" grep -q "KEEP .*waypost.conf (exists)" "$dir/make.log"

inst uninstall; check "make uninstall" [ $? -eq 0 ]
check "uninstall left the configuration" grep -q "an administrator's edit" "$etc/waypost.conf"
for f in odmr.passwd users.passwd router.table; do check "uninstall left $f" [ -f "$etc/$f" ]; done
check "uninstall removed the programs" sh -c "! find '$d' -type f -name 'waypost-policyd' | grep -q ."
check "uninstall removed the units" sh -c "! find '$d' -name '*.service' | grep -q ."
done_testing
