# SPDX-License-Identifier: MIT
# scripts/trixie.sh - the test suite on Debian 13 ("trixie": Postfix 3.10,
# Dovecot 2.4) beside the machine's own Debian: a trixie root made once with
# debootstrap from the mirror this machine's apt uses, kept between runs,
# Waypost built and its Postfix/Dovecot/fetchmail tests run inside it with
# chroot.  Sourced by scripts/test (after scripts/deps.sh); usable alone:
#
#   . scripts/deps.sh; . scripts/trixie.sh
#   trixie_root || exit 1       # make or check the cached root
#   trixie_enter                # mount /proc /sys /dev /dev/pts; trap undoes it
#   trixie_run 'make -C /waypost/build check TESTS=...'
#   trixie_leave                # kill what runs in the root, unmount
#
# * The root lives outside the clone, in $WAYPOST_TRIXIE_DIR (default
#   /var/cache/waypost-trixie), as root/; root/.waypost-ready names the
#   packages installed.  A root without it (debootstrap or apt interrupted)
#   or with another package list is made again from scratch.
# * No system service of the root is ever started: its policy-rc.d exits
#   101 before any package is installed.  Tests start their own Postfix and
#   Dovecot on loopback, in the machine's network namespace: never while
#   the machine's own e2e tests run (same fixed addresses).
# * trixie_leave kills every process whose root directory is the trixie
#   root (a test that left something behind must not keep the mounts busy).

TRIXIE_DIR=${WAYPOST_TRIXIE_DIR:-/var/cache/waypost-trixie}
TRIXIE_ROOT=$TRIXIE_DIR/root
# deps.sh's list with trixie's names (no fuzzers there: no clang), and what
# the Postfix/Dovecot/fetchmail tests run.
TRIXIE_PACKAGES="gcc make autoconf automake libtool pkg-config libconfig-dev libssl-dev \
libevent-dev liburing-dev check libmilter-dev libgmime-3.0-dev python3 openssl \
postfix swaks miltertest dovecot-core dovecot-imapd dovecot-lmtpd dovecot-pop3d fetchmail procps"
TRIXIE_MOUNTS=""

# trixie_mirror: the Debian mirror of this machine's apt sources (the
# archive, not the security one); http://deb.debian.org/debian if none.
trixie_mirror() {
    local m
    m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
        awk '/^[[:space:]]*#/ { next }
             $1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; break } }
             $1 == "URIs:" { for (i = 2; i <= NF; i++) print $i }' |
        grep -E '/debian/?$' | grep -v security | head -n 1)
    echo "${m:-http://deb.debian.org/debian}"
}

# trixie_root: the cached root, made (debootstrap + apt-get) when missing
# or incomplete.  Prints the time each step took.
trixie_root() {
    local want t0 mirror
    want=$(echo "$TRIXIE_PACKAGES" | tr -s ' \n' '\n\n' | LC_ALL=C sort | tr '\n' ' ')
    if [ -f "$TRIXIE_ROOT/.waypost-ready" ] && [ "$(cat "$TRIXIE_ROOT/.waypost-ready")" = "$want" ] &&
        [ -x "$TRIXIE_ROOT/usr/sbin/dovecot" ]; then
        return 0
    fi
    install_missing debootstrap || return 1
    trixie_leave_quiet
    mkdir -p "$TRIXIE_DIR" || return 1
    rm -rf "$TRIXIE_ROOT"
    mirror=$(trixie_mirror)
    t0=$(date +%s)
    echo "debootstrap trixie $TRIXIE_ROOT $mirror"
    if ! debootstrap --variant=minbase trixie "$TRIXIE_ROOT" "$mirror" >"$TRIXIE_DIR/debootstrap.log" 2>&1; then
        echo "debootstrap failed:" >&2; tail -20 "$TRIXIE_DIR/debootstrap.log" >&2
        return 1
    fi
    echo "debootstrap took $(( $(date +%s) - t0 )) s"
    printf '#!/bin/sh\nexit 101\n' >"$TRIXIE_ROOT/usr/sbin/policy-rc.d" && chmod 755 "$TRIXIE_ROOT/usr/sbin/policy-rc.d" || return 1
    t0=$(date +%s)
    trixie_enter || return 1
    # shellcheck disable=SC2086 # a list of packages
    if ! trixie_run "echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections &&
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $TRIXIE_PACKAGES" \
            >"$TRIXIE_DIR/install.log" 2>&1 </dev/null; then
        echo "apt-get install in the trixie root failed:" >&2; tail -20 "$TRIXIE_DIR/install.log" >&2
        trixie_leave
        return 1
    fi
    trixie_run 'apt-get clean' >/dev/null 2>&1
    trixie_leave
    echo "trixie packages took $(( $(date +%s) - t0 )) s"
    echo "$want" >"$TRIXIE_ROOT/.waypost-ready"
}

_trixie_mount() { # _trixie_mount DIR MOUNT-ARGS...: mount, remember for trixie_leave
    local d=$TRIXIE_ROOT$1; shift
    mkdir -p "$d" && mount "$@" "$d" && TRIXIE_MOUNTS="$d $TRIXIE_MOUNTS"
}

# trixie_enter: the kernel file systems the tests need, in the root; the
# EXIT trap (and INT/TERM) undoes them.
trixie_enter() {
    [ -n "$TRIXIE_MOUNTS" ] && return 0
    trap 'trixie_leave' EXIT
    trap 'trixie_leave; exit 130' INT
    trap 'trixie_leave; exit 143' TERM
    _trixie_mount /proc -t proc proc &&
        _trixie_mount /sys -t sysfs sysfs &&
        _trixie_mount /dev --bind /dev &&
        _trixie_mount /dev/pts --bind /dev/pts || { trixie_leave; return 1; }
    # The machine's name resolution for loopback names (localhost).
    cp /etc/hosts "$TRIXIE_ROOT/etc/hosts" 2>/dev/null
    return 0
}

# trixie_run COMMAND-STRING: run it with bash inside the root, in a clean
# environment.
trixie_run() {
    chroot "$TRIXIE_ROOT" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 TERM=dumb ${ASAN_OPTIONS:+ASAN_OPTIONS=$ASAN_OPTIONS} \
        /bin/bash -c "$1"
}

# trixie_pids: processes whose root directory is the trixie root.
trixie_pids() {
    local p r want
    want=$(readlink -f "$TRIXIE_ROOT")
    for p in /proc/[0-9]*; do
        r=$(readlink "$p/root" 2>/dev/null) || continue
        [ "$r" = "$want" ] && echo "${p#/proc/}"
    done
}

# trixie_leave: stop every process left in the root (SIGTERM, then SIGKILL
# after 3 s), then unmount what trixie_enter mounted.
trixie_leave() {
    local pids i d
    pids=$(trixie_pids)
    if [ -n "$pids" ]; then
        echo "trixie: stopping processes left in the root: $(echo $pids)" >&2
        # shellcheck disable=SC2086 # a list of pids
        kill $pids 2>/dev/null
        for i in 1 2 3 4 5 6; do
            pids=$(trixie_pids); [ -z "$pids" ] && break
            sleep 0.5
        done
        # shellcheck disable=SC2086
        [ -n "$pids" ] && kill -9 $pids 2>/dev/null
    fi
    for d in $TRIXIE_MOUNTS; do
        umount "$d" 2>/dev/null || umount -l "$d" 2>/dev/null
    done
    TRIXIE_MOUNTS=""
    trap - EXIT INT TERM
    return 0
}
# Before remaking a root: nothing of ours may be mounted in the old one.
trixie_leave_quiet() { trixie_leave 2>/dev/null; }

# trixie_copy_tree: the source tree (without build outputs) to /waypost/src
# in the root; the build directory is /waypost/build.
trixie_copy_tree() {
    rm -rf "$TRIXIE_ROOT/waypost/src" && mkdir -p "$TRIXIE_ROOT/waypost/src" "$TRIXIE_ROOT/waypost/build" || return 1
    tar -c --exclude=./build --exclude=./.git --exclude=autom4te.cache . | tar -x -C "$TRIXIE_ROOT/waypost/src"
}
