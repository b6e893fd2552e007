# SPDX-License-Identifier: MIT
# scripts/deps.sh - install the Debian packages Waypost needs, only those
# that are missing (sourced by scripts/run and scripts/test).

# clang's sanitizer and fuzzer runtime is named after its version: 14 on
# Debian 12, 19 on Debian 13.
case $(. /etc/os-release 2>/dev/null && echo "${VERSION_ID:-}") in
13) WP_CLANG_RT=libclang-rt-19-dev ;;
*) WP_CLANG_RT=libclang-rt-14-dev ;;
esac
WAYPOST_PACKAGES="gcc make autoconf automake libtool pkg-config libconfig-dev libssl-dev \
libevent-dev liburing-dev libsystemd-dev check libmilter-dev libgmime-3.0-dev clang $WP_CLANG_RT python3 openssl \
clang-format build-essential debhelper dh-autoreconf fakeroot lintian dpkg-dev systemd dnsmasq-base"

install_missing() {
    missing=""
    for p in $WAYPOST_PACKAGES "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    echo "installing:$missing"
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    # Never let a package start system services (postfix, dovecot) on install.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
        $sudo chmod 755 /usr/sbin/policy-rc.d
    fi
    echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections 2>/dev/null || true
    $sudo apt-get update -qq >/dev/null
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
        { echo "apt-get install failed for:$missing" >&2; return 1; }
}

# build DIR [CONFIGURE-ARGS...]: configure (once) and build in DIR.
build() {
    bdir=$1; shift
    [ -x configure ] || autoreconf -fi >/dev/null 2>&1 || { echo "autoreconf failed" >&2; return 1; }
    mkdir -p "$bdir"
    if [ ! -f "$bdir/Makefile" ]; then
        top=$(pwd)
        (cd "$bdir" && "$top/configure" -q "$@") || return 1
    fi
    make -s -C "$bdir" -j"$(nproc)" >/dev/null || make -C "$bdir"
}
