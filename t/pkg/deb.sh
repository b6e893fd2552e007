#!/bin/bash
# SPDX-License-Identifier: MIT
# The Debian package on this machine: it builds (dpkg-buildpackage,
# nocheck), lintian finds no error, it installs (user, directories,
# conffiles, password files 0640 root:waypost), the daemons started exactly
# as the units start them (ExecStartPre/ExecStart, User, Group,
# SupplementaryGroups read from the installed unit files) answer a private
# Postfix wired by the installed `waypost postconf --apply` (postmap -q as
# user postfix over their sockets, one message through), a rebuilt package
# with a higher version upgrades it keeping the edited conffiles, remove
# keeps the configuration, purge removes it.  A trap purges the package
# whatever happens, so the machine is left as it was (the waypost user
# stays, as Debian leaves system users).  Never touches the machine's own
# Postfix configuration: the Postfix here is t/e2e/lib.sh's private one.
. "$top_srcdir/t/e2e/lib.sh"
if [ "$(id -u)" -ne 0 ]; then echo "1..0 # SKIP needs root (installs a package)"; exit 0; fi
if dpkg-query -W -f='${Status}' waypost 2>/dev/null | grep -q 'ok installed\|config-files'; then
    echo "1..0 # SKIP a waypost package is already installed here; not touching it"; exit 0
fi
e2e_need debhelper dh-autoreconf fakeroot lintian dpkg-dev systemd ||
    { echo "Bail out! cannot install the packaging tools"; exit 1; }
e2e_init
# ck DESCRIPTION COMMAND...: check, and fail (for "|| show why") when it fails.
ck() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; return 1; fi; }
DAEMON_PIDS=()
purge_all() {
    local p
    for p in "${DAEMON_PIDS[@]}"; do _e2e_stop_tree "$p"; done
    if dpkg-query -W -f='${Status}' waypost 2>/dev/null | grep -q 'installed\|config-files'; then
        dpkg -P waypost >"$E2E/purge-trap.log" 2>&1 || cat "$E2E/purge-trap.log" >&2
    fi
}
e2e_on_exit purge_all

# ---- build in a copy of the source tree
src="$E2E/src/waypost-0.1.0"
mkdir -p "$src"
if [ "$(git -C "$top_srcdir" rev-parse --show-toplevel 2>/dev/null)" = "$(cd "$top_srcdir" && pwd -P)" ]; then
    (cd "$top_srcdir" && git ls-files -co --exclude-standard -z | xargs -0 tar -cf -) | tar -xf - -C "$src"
else
    (cd "$top_srcdir" && tar --exclude=./build --exclude=./autom4te.cache -cf - .) | tar -xf - -C "$src"
fi
# nice: tests running beside it in "make -j check" keep their timing.
build() { (cd "$src" && DEB_BUILD_OPTIONS="nocheck parallel=2" nice -n 15 dpkg-buildpackage -us -uc -b >"$E2E/build-$1.log" 2>&1); }
build 1; ck "dpkg-buildpackage -us -uc -b" [ $? -eq 0 ] || tail -20 "$E2E/build-1.log" | sed 's/^/#   /'
deb=$(ls "$E2E"/src/waypost_*_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || { echo "Bail out! no package"; tail -30 "$E2E/build-1.log"; exit 1; }
lintian "$E2E"/src/waypost_*.changes > "$E2E/lintian.log" 2>&1
check "lintian: no errors, no warnings" sh -c "! grep -q '^[EW]:' '$E2E/lintian.log'"
sed 's/^/# lintian: /' "$E2E/lintian.log"

# ---- install
spool_before=$(ls -a /var/spool/postfix 2>/dev/null | tr '\n' ' ')
dpkg -i "$deb" >"$E2E/install.log" 2>&1; ck "dpkg -i" [ $? -eq 0 ] || sed 's/^/#   /' "$E2E/install.log"
check "user waypost" sh -c 'getent passwd waypost >/dev/null'
check "group waypost" sh -c 'getent group waypost >/dev/null'
conffiles=$(dpkg-query -W -f='${Conffiles}\n' waypost | awk 'NF { print $1 }' | sort | tr '\n' ' ')
check "conffiles: /etc/waypost/*" [ "$conffiles" = "/etc/waypost/odmr.passwd /etc/waypost/router.table /etc/waypost/users.passwd /etc/waypost/waypost.conf " ]
for f in odmr.passwd users.passwd; do
    check "$f: 0640 root:waypost" [ "$(stat -c '%a %U:%G' /etc/waypost/$f)" = "640 root:waypost" ]
done
check "/var/spool/postfix/waypost: 2750 waypost:postfix" [ "$(stat -c '%a %U:%G' /var/spool/postfix/waypost)" = "2750 waypost:postfix" ]
check "/var/spool/waypost: 750 waypost:waypost" [ "$(stat -c '%a %U:%G' /var/spool/waypost)" = "750 waypost:waypost" ]
check "/run/waypost: 750 waypost:postfix" [ "$(stat -c '%a %U:%G' /run/waypost)" = "750 waypost:postfix" ]
check "installed configuration passes waypost check" sh -c 'waypost check >/dev/null'
for u in waypost-policyd waypost-milter waypost-odmrd; do
    out=$(systemd-analyze verify --man=no /lib/systemd/system/$u.service 2>&1)
    if [ -z "$out" ]; then ok "$u: systemd-analyze verify (installed)"; else not_ok "$u: verify"; echo "$out" | sed 's/^/#   /'; fi
    for p in $(sed -n 's/^Exec[A-Za-z]*=//p' /lib/systemd/system/$u.service | tr ' ' '\n' | grep '^/' | grep -v '^/bin/kill$'); do
        check "$u: $p belongs to the package" sh -c "dpkg -L waypost | grep -qx '$p'"
    done
done

# ---- the installed daemons as the units start them, a private Postfix
sed -i -e "s|^  config_directory = .*|  config_directory = \"$PFCONF\";  # test: the private Postfix|" \
    -e 's|^  local_transport = .*|  local_transport = "smtp:[127.0.4.20]:25";  # test: a sink|' /etc/waypost/waypost.conf
echo 'alice:{PLAIN}alice-secret::::::' >> /etc/waypost/users.passwd
check "edited configuration passes waypost check" sh -c 'waypost check >/dev/null'
unit_key() { sed -n "s/^$2=//p" "/lib/systemd/system/$1.service" | tail -1; }
start_unit() { # start_unit NAME SOCKET: ExecStartPre, then ExecStart as User/Group(+SupplementaryGroups)
    local u=$1 user group sup groups pre cmd i caps='' c
    user=$(unit_key "$u" User); group=$(unit_key "$u" Group); sup=$(unit_key "$u" SupplementaryGroups)
    groups=$(getent group "$group" | cut -d: -f3)
    for i in $sup; do groups="$groups,$(getent group "$i" | cut -d: -f3)"; done
    for c in $(unit_key "$u" AmbientCapabilities); do # CAP_NET_BIND_SERVICE -> +net_bind_service
        c=$(echo "${c#CAP_}" | tr 'A-Z' 'a-z'); caps="${caps:+$caps,}+$c"
    done
    local priv=(setpriv --reuid="$user" --regid="$group" --groups="$groups")
    [ -n "$caps" ] && priv+=(--inh-caps="$caps" --ambient-caps="$caps")
    pre=$(unit_key "$u" ExecStartPre); cmd=$(unit_key "$u" ExecStart)
    # shellcheck disable=SC2086 # the unit's command line, split as systemd does (no quoting in ours)
    "${priv[@]}" $pre >"$E2E/$u-pre.log" 2>&1 ||
        { not_ok "$u: ExecStartPre"; sed 's/^/#   /' "$E2E/$u-pre.log"; return 1; }
    # shellcheck disable=SC2086
    e2e_bg "$u" "${priv[@]}" $cmd
    DAEMON_PIDS+=("$E2E_LAST_PID")
    for ((i = 0; i < 100; i++)); do [ -S "$2" ] && break; sleep 0.05; done
    ck "$u: started as the unit starts it ($user, $cmd)" [ -S "$2" ] || sed 's/^/#   /' "$E2E/$u.log"
}
S=/var/spool/postfix/waypost
start_unit waypost-policyd $S/map.sock
start_unit waypost-milter $S/milter.sock
start_unit waypost-odmrd $S/odmr.sock
for s in map.sock policy.sock milter.sock odmr.sock; do
    check "$s: 660 waypost:postfix" [ "$(stat -c '%a %U:%G' $S/$s)" = "660 waypost:postfix" ]
done
for p in "${DAEMON_PIDS[@]}"; do
    check "pid $p ($(ps -o comm= -p "$p")) runs as waypost" [ "$(ps -o user= -p "$p" | tr -d ' ')" = waypost ]
done
check "no installed daemon runs as root" sh -c "! ps -eo user=,args= | grep -E '^root +/usr/sbin/waypost-(policyd|milter|odmrd)'"

e2e_sink local 127.0.4.20:25
e2e_free_port SMTP
e2e_postfix "$SMTP" || { echo "Bail out! no Postfix"; exit 1; }
waypost postconf --apply > "$E2E/apply.log" 2>&1
ck "installed waypost postconf --apply wires the private Postfix" [ $? -eq 0 ] || sed 's/^/#   /' "$E2E/apply.log"
_e2e_backdate
sleep 1.5
pm() { setpriv --reuid=postfix --regid=postfix --init-groups postmap -c "$PFCONF" -q "$1" "socketmap:unix:$S/map.sock:$2" 2>&1; }
check "postmap -q (as postfix) relay example.com" [ "$(pm example.com relay)" = OK ]
check "postmap -q (as postfix) recipient alice@example.com" [ "$(pm alice@example.com recipient)" = OK ]
check "postmap -q (as postfix) transport alice@example.com" [ "$(pm alice@example.com transport)" = "smtp:[127.0.4.20]:25" ]
out=$(e2e_send sender@example.org alice@example.com -- --subject "through the package")
ck "a message through the private Postfix and the packaged daemons" [ $? -eq 0 ] || echo "$out" | sed 's/^/#   /'
e2e_sink_wait local 1 15
check "it reached Waypost's route" [ "$(e2e_sink_rcpts local)" = "alice@example.com" ]
out=$(e2e_send sender@example.org nobody@example.com)
case $out in *"RCPT <nobody@example.com> 5"*) ok "unknown account refused" ;; *) not_ok "unknown account refused"; echo "$out" | sed 's/^/#   /' ;; esac
for p in "${DAEMON_PIDS[@]}"; do kill "$p" 2>/dev/null; done
"$E2E_PY" -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' "$S/milter.sock" 2>/dev/null
for p in "${DAEMON_PIDS[@]}"; do _e2e_stop_tree "$p"; done
DAEMON_PIDS=()

# ---- upgrade: the same tree, version 0.1.1
{ printf 'waypost (0.1.1) unstable; urgency=medium\n\n  * Test upgrade.\n\n -- Waypost developers <waypost@example.org>  %s\n\n' "$(date -R)"
  cat "$src/debian/changelog"; } > "$E2E/changelog" && mv "$E2E/changelog" "$src/debian/changelog"
build 2; check "rebuilt as 0.1.1" [ $? -eq 0 ]
dpkg -i "$E2E"/src/waypost_0.1.1_*.deb >"$E2E/upgrade.log" 2>&1; ck "dpkg -i (upgrade)" [ $? -eq 0 ] || sed 's/^/#   /' "$E2E/upgrade.log"
check "version 0.1.1 installed" [ "$(dpkg-query -W -f='${Version}' waypost)" = 0.1.1 ]
check "upgrade kept the edited waypost.conf" grep -q 'test: the private Postfix' /etc/waypost/waypost.conf
check "upgrade kept the edited users.passwd" grep -q '^alice:' /etc/waypost/users.passwd
check "upgrade kept users.passwd 0640 root:waypost" [ "$(stat -c '%a %U:%G' /etc/waypost/users.passwd)" = "640 root:waypost" ]
check "upgrade left no .dpkg-dist copies" sh -c "! ls /etc/waypost/*.dpkg-* 2>/dev/null | grep -q ."

# ---- remove keeps the configuration, purge removes it
dpkg -r waypost >"$E2E/remove.log" 2>&1; check "dpkg -r" [ $? -eq 0 ]
check "remove: programs gone" [ ! -e /usr/sbin/waypost-policyd ]
check "remove: configuration kept" grep -q 'test: the private Postfix' /etc/waypost/waypost.conf
dpkg -P waypost >"$E2E/purge.log" 2>&1; check "dpkg -P" [ $? -eq 0 ]
check "purge: /etc/waypost gone" [ ! -e /etc/waypost ]
check "purge: /var/spool/waypost gone" [ ! -e /var/spool/waypost ]
check "purge: /run/waypost gone" [ ! -e /run/waypost ]
check "purge: /var/spool/postfix as before" [ "$(ls -a /var/spool/postfix 2>/dev/null | tr '\n' ' ')" = "$spool_before" ]
check "purge: no unit symlinks left" sh -c "! find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled -name '*waypost*' 2>/dev/null | grep -q ."
check "purge: nothing of the package left" sh -c "! dpkg-query -W waypost >/dev/null 2>&1 || [ -z \"\$(dpkg-query -W -f='\${Status}' waypost | grep -v not-installed)\" ]"
done_testing
