# SPDX-License-Identifier: MIT
# scripts/trixie.sh - the test suite on Debian 13 ("trixie": Postfix 3.10,
# Dovecot 2.4) beside the machine's own Debian: a trixie root made once with
# debootstrap from the mirror this machine's apt uses, kept between runs,
# Waypost built and its Postfix/Dovecot/fetchmail tests run inside it with
# chroot.  Sourced by scripts/test (after scripts/deps.sh); usable alone:
#
#   . scripts/deps.sh; . scripts/trixie.sh
#   trixie_lock || exit 1       # one user of the root at a time
#   trixie_root || exit 1       # make or check the cached root
#   trixie_enter                # mount /proc /sys /dev /dev/pts; trap undoes it
#   trixie_run 'make -C /waypost/build check TESTS=...'
#   trixie_leave                # kill what runs in the root, unmount
#   trixie_unlock
#
# * The root lives outside the clone, in $WAYPOST_TRIXIE_DIR (default
#   /var/cache/waypost-trixie), as root/.  A root whose debootstrap did not
#   finish is made again from scratch; packages missing (an interrupted
#   apt-get, a package added to deps.sh) are installed into it.
# * No system service of the root is ever started: its policy-rc.d exits
#   101 before any package is installed.  Tests start their own Postfix and
#   Dovecot on loopback, in the machine's network namespace: never while
#   the machine's own e2e tests run (same fixed addresses).
# * trixie_leave kills every process whose root directory is the trixie
#   root (a test that left something behind must not keep the mounts busy).

TRIXIE_DIR=${WAYPOST_TRIXIE_DIR:-/var/cache/waypost-trixie}
TRIXIE_ROOT=$TRIXIE_DIR/root
# deps.sh's list (no fuzzers there: no clang, whose runtime package has
# another name on trixie), and what the Postfix/Dovecot/fetchmail tests run.
TRIXIE_PACKAGES="$(echo "${WAYPOST_PACKAGES:?source scripts/deps.sh first}" | tr -s ' \n' '\n\n' |
    grep -v -E '^(clang|libclang-rt-.*)$' | tr '\n' ' ')postfix swaks miltertest \
dovecot-core dovecot-imapd dovecot-lmtpd dovecot-pop3d fetchmail procps"
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

# trixie_root: the cached root, made when missing or incomplete: the base
# system (debootstrap; root/.waypost-base once it is complete), then the
# packages (root/.waypost-packages names those installed; a changed list
# installs what is new).  Prints the time each step took.
trixie_root() {
    local want t0 mirror
    want=$(echo "$TRIXIE_PACKAGES" | tr -s ' \n' '\n\n' | grep . | LC_ALL=C sort | tr '\n' ' ')
    if [ -f "$TRIXIE_ROOT/.waypost-base" ] && [ -x "$TRIXIE_ROOT/usr/sbin/dovecot" ] &&
        [ "$(cat "$TRIXIE_ROOT/.waypost-packages" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    mkdir -p "$TRIXIE_DIR" || return 1
    if [ ! -f "$TRIXIE_ROOT/.waypost-base" ]; then
        install_missing debootstrap || return 1
        trixie_leave_quiet
        if grep -qsF " $TRIXIE_ROOT/" /proc/mounts; then
            echo "trixie: something is still mounted under $TRIXIE_ROOT; not removing it" >&2
            return 1
        fi
        rm -rf "$TRIXIE_ROOT"
        mirror=$(trixie_mirror)
        t0=$(date +%s)
        echo "debootstrap trixie $TRIXIE_ROOT $mirror"
        if ! debootstrap --variant=minbase trixie "$TRIXIE_ROOT" "$mirror" >"$TRIXIE_DIR/debootstrap.log" 2>&1; then
            echo "debootstrap failed:" >&2; tail -20 "$TRIXIE_DIR/debootstrap.log" >&2
            return 1
        fi
        # Never start a service of the root (before any package comes).
        printf '#!/bin/sh\nexit 101\n' >"$TRIXIE_ROOT/usr/sbin/policy-rc.d" &&
            chmod 755 "$TRIXIE_ROOT/usr/sbin/policy-rc.d" || return 1
        touch "$TRIXIE_ROOT/.waypost-base"
        echo "debootstrap took $(( $(date +%s) - t0 )) s"
    fi
    t0=$(date +%s)
    rm -f "$TRIXIE_ROOT/.waypost-packages"
    trixie_enter || return 1
    # shellcheck disable=SC2086 # a list of packages
    if ! trixie_run "echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections &&
            export DEBIAN_FRONTEND=noninteractive && dpkg --configure -a && apt-get update -qq &&
            apt-get install -y -qq --no-install-recommends $want && apt-get clean" \
            >"$TRIXIE_DIR/install.log" 2>&1 </dev/null; then
        echo "apt-get install in the trixie root failed:" >&2; tail -20 "$TRIXIE_DIR/install.log" >&2
        trixie_leave
        return 1
    fi
    trixie_leave
    echo "$want" >"$TRIXIE_ROOT/.waypost-packages"
    echo "trixie packages took $(( $(date +%s) - t0 )) s"
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
        HOME=/root LANG=C.UTF-8 TERM=dumb \
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
    # Ours, and any a killed run left behind: everything mounted under the
    # root, the deepest first.
    for d in $TRIXIE_MOUNTS $(awk -v r="$TRIXIE_ROOT/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r); do
        umount "$d" 2>/dev/null || umount -l "$d" 2>/dev/null
    done
    TRIXIE_MOUNTS=""
    trap - EXIT INT TERM
    return 0
}
# Before remaking a root: nothing of ours may be mounted in the old one.
trixie_leave_quiet() { trixie_leave 2>/dev/null; }

# trixie_lock / trixie_unlock: one user of the root at a time (several
# clones on the machine share it).  File descriptor 9.
trixie_lock() {
    mkdir -p "$TRIXIE_DIR" && exec 9>>"$TRIXIE_DIR/lock" || return 1
    flock -w 3600 9 || { echo "trixie: $TRIXIE_DIR is busy" >&2; exec 9>&-; return 1; }
}
trixie_unlock() { exec 9>&-; }

# trixie_copy_tree: the source tree (without build outputs) to /waypost/src
# in the root; the build directory is /waypost/build.
trixie_copy_tree() {
    rm -rf "$TRIXIE_ROOT/waypost/src" && mkdir -p "$TRIXIE_ROOT/waypost/src" "$TRIXIE_ROOT/waypost/build" || return 1
    tar -c --exclude=./build --exclude=./.git --exclude=autom4te.cache . | tar -x -C "$TRIXIE_ROOT/waypost/src"
}
