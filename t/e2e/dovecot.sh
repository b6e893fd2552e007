#!/bin/bash
# SPDX-License-Identifier: MIT
# t/e2e/dovecot.sh - a private Dovecot 2.3 or 2.4 (IMAP + LMTP) for the
# end-to-end tests.  Source it after t/e2e/lib.sh; call e2e_dovecot after
# e2e_init:
#
#   e2e_dovecot_need               # install dovecot-core/-imapd/-lmtpd if missing
#   e2e_init
#   printf 'alice@company.dom:{PLAIN}secret\n' >"$E2E/users"
#   e2e_dovecot "$E2E/users" [EXTRA_CONF_FILE]
#       -> IMAP_PORT (127.0.0.1), LMTP_SOCKET, USERDB_SOCKET, DOVECOT_CONF,
#          DOVECOT_LOG, DOVECOT_MAIL (mail root: $DOVECOT_MAIL/DOMAIN/USER/Maildir)
#   e2e_dovecot_mailbox alice@company.dom Projects
#   Postfix: transport "company.dom lmtp:unix:$LMTP_SOCKET"
#   e2e_imap_wait alice@company.dom secret INBOX 1 10
#   e2e_imap_count alice@company.dom secret INBOX        # prints 1
#   e2e_imap_fetch alice@company.dom secret INBOX 1      # the raw message
#   e2e_userdb_lookup alice@company.dom                  # USER<TAB>1<TAB>alice@...
#   E2E_DOVECOT_POP3=1 before e2e_dovecot: POP3 too, on POP3_PORT (127.0.0.1)
#   e2e_dovecot_version                                  # 2.3 or 2.4
#
# * The configuration is written in the syntax of the installed Dovecot:
#   2.3 (Debian 12) or 2.4 (Debian 13; also for later versions).  The same
#   instance either way; an EXTRA_CONF_FILE must be in that syntax too.
# * USERS_FILE is a Dovecot passwd-file: "user@domain:{PLAIN}password" lines
#   (more fields are allowed: user:pass:uid:gid:gecos:home:shell:extra).  It
#   is both passdb and userdb; uid/gid default to nobody/nogroup (uid 0 is
#   refused by Dovecot) and home to $DOVECOT_MAIL/%d/%n.  It is read in place
#   (changes are picked up), by the auth process, which runs as root here.
# * recipient_delimiter = +, lmtp_save_to_detail_mailbox = yes: LMTP mail for
#   user+box@domain goes to mailbox "box" of user@domain if that mailbox
#   exists, and to INBOX if it does not (lda_mailbox_autocreate = no; put
#   "lda_mailbox_autocreate = yes" in EXTRA_CONF_FILE to create it instead).
# * EXTRA_CONF_FILE is appended verbatim to dovecot.conf, so a setting given
#   there replaces the one above it (and "namespace inbox { ... }" or
#   "protocol imap { ... }" blocks merge with ours); use it for the acl
#   plugin, shared namespaces, master users...  "$E2E" and the variables
#   above are known when the caller writes it.  The inbox namespace uses
#   separator "/".
# * Names are lower-cased before lookups (auth_username_format = %Lu, 2.4:
#   %{user | lower}): write
#   them in lower case in USERS_FILE.
# * Dovecot runs in the foreground (dovecot -F) under a small subreaper that
#   e2e_bg starts, so lib.sh's trap stops it (in ~25 ms): SIGTERM is passed
#   on to the master and its children, and the reaper exits only when the
#   master and every child (auth, imap-login, imap, lmtp, log, config,
#   anvil, stats...) are gone.  Do not call e2e_dovecot in a subshell.
# * After start-up the anvil-auth-penalty socket is removed: no 2-15 s
#   penalty after failed logins from 127.0.0.1, and
#   auth_failure_delay = 0.
# * E2E_DOVECOT_DEBUG=1: auth_debug, mail_debug in $DOVECOT_LOG.

E2E_DC_PID=                    # the subreaper (e2e_bg) running dovecot -F
E2E_DC_PKGS="dovecot-core dovecot-imapd dovecot-lmtpd dovecot-pop3d"

# e2e_dovecot_need: install the Dovecot packages if missing (lib.sh's
# e2e_need: policy-rc.d exits 101, so no system service is started).
e2e_dovecot_need() {
    [ -x /usr/sbin/dovecot ] && [ -x /usr/bin/doveadm ] &&
        [ -x /usr/lib/dovecot/imap ] && [ -x /usr/lib/dovecot/lmtp ] &&
        [ -x /usr/lib/dovecot/pop3 ] && return 0
    # shellcheck disable=SC2086 # a list of packages
    e2e_need $E2E_DC_PKGS
}

# Runs CMD as a child subreaper: SIGTERM/INT/HUP are passed on to CMD and
# its children (the Dovecot master would wait 1 s for idle ones, such as
# anvil); orphans left when CMD has exited get SIGTERM (again each second);
# exits with CMD's status when every descendant has been reaped.  If the
# test shell is SIGKILLed, the kernel sends it SIGTERM (PR_SET_PDEATHSIG).
_E2E_DC_REAPER='
import ctypes, os, signal, sys, time
libc = ctypes.CDLL(None)
libc.prctl(36, 1, 0, 0, 0)                      # PR_SET_CHILD_SUBREAPER
libc.prctl(1, signal.SIGTERM, 0, 0, 0)          # PR_SET_PDEATHSIG
def children(parent):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f: st = f.read()
            except OSError: continue
            f = st.rsplit(")", 1)[1].split()
            if f[1] == str(parent) and f[0] != "Z": out.append(int(d))
    return out
def term(pids):
    for p in pids:
        try: os.kill(p, signal.SIGTERM)
        except ProcessLookupError: pass
pid, main_alive, stopping = None, True, False
def forward(sig, frame):
    global stopping
    stopping = True
    if pid and main_alive:
        term([pid] + children(pid))
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, forward)
if os.getppid() == 1:                           # parent already gone
    sys.exit(1)
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
if stopping:
    forward(0, None)
rc, last = 1, 0
while True:
    if not main_alive and time.time() - last >= 1:
        last = time.time()
        term(children(os.getpid()))
    try:
        p, st = os.waitpid(-1, 0 if main_alive else os.WNOHANG)
    except ChildProcessError:
        break
    if p == 0:
        time.sleep(0.05); continue
    if p == pid:
        main_alive = False; last = time.time()   # give orphans 1 s to leave
        rc = os.waitstatus_to_exitcode(st)
sys.exit(rc)
'

# e2e_dovecot_version: the installed Dovecot's major.minor ("2.3", "2.4"),
# which decides the syntax of the configuration written here.
e2e_dovecot_version() {
    local v
    v=$(dovecot --version 2>/dev/null | sed -nE '1s/^([0-9]+\.[0-9]+).*/\1/p')
    [ -n "$v" ] && echo "$v"
}

_e2e_dc_conf() { # PORT [POP3_PORT]: write $DOVECOT_CONF
    case $E2E_DC_VERSION in
    2.3) _e2e_dc_conf23 "$@" ;;
    *) _e2e_dc_conf24 "$@" ;;
    esac || return 1
    if [ -n "$E2E_DC_EXTRA" ]; then
        printf '\n# ---- %s\n' "$E2E_DC_EXTRA" >>"$DOVECOT_CONF"
        cat "$E2E_DC_EXTRA" >>"$DOVECOT_CONF" || return 1
    fi
}

# Dovecot 2.4 (Debian 13): the same instance in 2.4's syntax.  The
# dovecot_config_version stays 2.4.0 (the oldest 2.4): its defaults hold on
# every 2.4.x.
_e2e_dc_conf24() { # PORT [POP3_PORT]
    local dir=$E2E/dovecot
    cat >"$DOVECOT_CONF" <<EOF
dovecot_config_version = 2.4.0
dovecot_storage_version = 2.4.0
# Waypost e2e private Dovecot (t/e2e/dovecot.sh), Dovecot 2.4 syntax
base_dir = $dir
state_dir = $dir/state
log_path = $DOVECOT_LOG
protocols = imap lmtp${2:+ pop3}
listen = 127.0.0.1
ssl = no
auth_allow_cleartext = yes
auth_mechanisms = plain login
auth_failure_delay = 0
auth_username_format = %{user | lower}
auth_debug = $E2E_DC_DEBUG
mail_debug = $E2E_DC_DEBUG
mail_driver = maildir
mail_path = ~/Maildir
mail_max_userip_connections = 100
first_valid_uid = 1
recipient_delimiter = +
lmtp_save_to_detail_mailbox = yes
lda_mailbox_autocreate = no
passdb passwd-file {
  passwd_file_path = $E2E_DC_USERS
  default_password_scheme = PLAIN
}
# As for 2.3 below: full lines from the file, short ones from the static
# userdb, which asks the passdb whether the user exists.
userdb passwd-file {
  passwd_file_path = $E2E_DC_USERS
  fields {
    uid:default = nobody
    gid:default = nogroup
    home:default = $DOVECOT_MAIL/%{user | domain}/%{user | username}
  }
}
userdb static {
  fields {
    uid = nobody
    gid = nogroup
    home = $DOVECOT_MAIL/%{user | domain}/%{user | username}
  }
}
namespace inbox {
  inbox = yes
  separator = /
  prefix =
}
service imap-login {
  inet_listener imap {
    port = $1
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  unix_listener lmtp {
    mode = 0666
  }
}
service auth {
  user = root
  unix_listener auth-userdb {
    mode = 0666
  }
}
EOF
    if [ -n "${2:-}" ]; then
        cat >>"$DOVECOT_CONF" <<EOF
service pop3-login {
  inet_listener pop3 {
    port = $2
  }
  inet_listener pop3s {
    port = 0
  }
}
EOF
    fi
}

_e2e_dc_conf23() { # PORT [POP3_PORT]
    local dir=$E2E/dovecot
    cat >"$DOVECOT_CONF" <<EOF
# Waypost e2e private Dovecot (t/e2e/dovecot.sh)
base_dir = $dir
state_dir = $dir/state
log_path = $DOVECOT_LOG
protocols = imap lmtp${2:+ pop3}
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
auth_username_format = %Lu
auth_debug = $E2E_DC_DEBUG
mail_debug = $E2E_DC_DEBUG
mail_location = maildir:~/Maildir
mail_max_userip_connections = 100
first_valid_uid = 1
recipient_delimiter = +
lmtp_save_to_detail_mailbox = yes
lda_mailbox_autocreate = no
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $E2E_DC_USERS
}
# Full passwd-file lines (user:pass:uid:gid:gecos:home:shell:extra, empty
# fields allowed) come from the file; short "user:pass" lines (which the
# passwd-file userdb skips: "missing userdb info") from the static userdb,
# which checks with the passdb that the user exists.
userdb {
  driver = passwd-file
  args = username_format=%u $E2E_DC_USERS
  default_fields = uid=nobody gid=nogroup home=$DOVECOT_MAIL/%d/%n
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$DOVECOT_MAIL/%d/%n allow_all_users=no
}
namespace inbox {
  inbox = yes
  separator = /
  prefix =
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $1
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  unix_listener lmtp {
    mode = 0666
  }
}
service auth {
  user = root
  unix_listener auth-userdb {
    mode = 0666
  }
}
EOF
    if [ -n "${2:-}" ]; then
        cat >>"$DOVECOT_CONF" <<EOF
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $2
  }
  inet_listener pop3s {
    port = 0
  }
}
EOF
    fi
}

# _e2e_dc_owns_port PORT: the Dovecot master has a socket listening on
# 127.0.0.1:PORT.
_e2e_dc_owns_port() {
    local master inode
    master=$(ps -o pid= --ppid "$E2E_DC_PID" 2>/dev/null | head -n 1) || return 1
    [ -n "$master" ] || return 1
    inode=$(awk -v a="$(printf '0100007F:%04X' "$1")" \
        '$2 == a && $4 == "0A" { print $10; exit }' /proc/net/tcp)
    [ -n "$inode" ] && [ -n "$(find "/proc/${master// /}/fd" -lname "socket:\[$inode\]" 2>/dev/null)" ]
}

# e2e_dovecot USERS_FILE [EXTRA_CONF_FILE]: start the private Dovecot (once
# per test).  Exports IMAP_PORT LMTP_SOCKET USERDB_SOCKET DOVECOT_CONF
# DOVECOT_LOG DOVECOT_MAIL, and POP3_PORT (empty unless E2E_DOVECOT_POP3=1).
# Non-zero (log shown) if it does not come up.
e2e_dovecot() {
    local dir=$E2E/dovecot try i err
    if [ -z "$E2E" ]; then echo "# e2e_dovecot: call e2e_init first" >&2; return 1; fi
    if [ -n "$E2E_DC_PID" ]; then echo "# e2e_dovecot: called twice" >&2; return 1; fi
    if [ "$BASHPID" != "$$" ]; then # the trap would not know the process
        echo "# e2e_dovecot: not in a subshell (pipe, \$(...))" >&2; return 1
    fi
    if [ ! -r "${1:-}" ]; then echo "# e2e_dovecot: no users file '${1:-}'" >&2; return 1; fi
    e2e_dovecot_need || return 1
    E2E_DC_VERSION=$(e2e_dovecot_version) || { echo "# e2e_dovecot: no dovecot --version" >&2; return 1; }
    E2E_DC_USERS=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
    E2E_DC_EXTRA=
    if [ -n "${2:-}" ]; then
        [ -r "$2" ] || { echo "# e2e_dovecot: no file '$2'" >&2; return 1; }
        E2E_DC_EXTRA=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
    fi
    E2E_DC_DEBUG=no; [ "${E2E_DOVECOT_DEBUG:-0}" = 1 ] && E2E_DC_DEBUG=yes
    # Not $dir/dovecot.conf: the master makes base_dir/dovecot.conf a symlink
    # to the configuration it runs with.
    export DOVECOT_CONF="$dir/etc/dovecot.conf" DOVECOT_LOG="$dir/dovecot.log"
    export DOVECOT_MAIL="$E2E/mail"
    export LMTP_SOCKET="$dir/lmtp" USERDB_SOCKET="$dir/auth-userdb"
    mkdir -p "$dir/etc" "$DOVECOT_MAIL" || return 1
    chmod 755 "$dir"                   # postfix must reach the lmtp socket
    chown nobody:nogroup "$DOVECOT_MAIL" && chmod 755 "$DOVECOT_MAIL" || return 1
    # A free port can be taken by another run before Dovecot binds it: retry.
    for try in 1 2 3; do
        e2e_free_port IMAP_PORT || return 1
        export IMAP_PORT POP3_PORT=
        [ "${E2E_DOVECOT_POP3:-0}" = 1 ] && { e2e_free_port POP3_PORT || return 1; }
        _e2e_dc_conf "$IMAP_PORT" "$POP3_PORT" || return 1
        err=$(doveconf -c "$DOVECOT_CONF" -n 2>&1 >/dev/null)
        if [ -n "$err" ]; then
            echo "# e2e_dovecot: bad configuration: $err" >&2; return 1
        fi
        rm -f "$LMTP_SOCKET" "$dir/anvil-auth-penalty"
        e2e_bg "dovecot-fg$try" "$E2E_PY" -c "$_E2E_DC_REAPER" dovecot -F -c "$DOVECOT_CONF"
        E2E_DC_PID=$E2E_LAST_PID
        # The master creates every listener before it forks anything that
        # would use them: remove the penalty socket before auth can connect.
        for ((i = 0; i < 200; i++)); do
            [ -S "$LMTP_SOCKET" ] && [ -S "$USERDB_SOCKET" ] &&
                [ -S "$dir/anvil-auth-penalty" ] && break
            _e2e_alive "$E2E_DC_PID" || break
            sleep 0.025
        done
        rm -f "$dir/anvil-auth-penalty"
        # Up when the master itself listens on the port (not whoever else
        # may have taken it meanwhile).
        for ((i = 0; i < 200; i++)); do
            _e2e_alive "$E2E_DC_PID" || break
            _e2e_dc_owns_port "$IMAP_PORT" && [ -S "$LMTP_SOCKET" ] &&
                { [ -z "$POP3_PORT" ] || _e2e_dc_owns_port "$POP3_PORT"; } && return 0
            sleep 0.025
        done
        _e2e_stop_tree "$E2E_DC_PID"
        unset 'E2E_PIDS[-1]'           # reaped: the trap must not signal that pid
        E2E_DC_PID=
        if ! grep -qs 'Address already in use' "$E2E/dovecot-fg$try.log" "$DOVECOT_LOG"; then
            break
        fi
        echo "# e2e_dovecot: port $IMAP_PORT taken, retrying" >&2
    done
    echo "# e2e_dovecot: Dovecot did not start:" >&2
    tail -n 20 "$E2E/dovecot-fg$try.log" "$DOVECOT_LOG" 2>/dev/null | sed 's/^/#   /' >&2
    return 1
}

# e2e_dovecot_mailbox USER MAILBOX...: create mailboxes (doveadm; parents
# are created as needed; an existing mailbox is not an error).
e2e_dovecot_mailbox() {
    local user=$1 out; shift
    out=$(doveadm -c "$DOVECOT_CONF" mailbox create -u "$user" "$@" 2>&1) && return 0
    case $out in *"Mailbox already exists"*) return 0 ;; esac
    printf '# e2e_dovecot_mailbox: %s\n' "$out" >&2
    return 1
}

# e2e_imap_count USER PASSWORD MAILBOX: print the number of messages
# (non-zero exit if the login fails or the mailbox does not exist).
e2e_imap_count() { "$E2E_PY" "$E2E_LIBDIR/imap.py" --port "$IMAP_PORT" count "$@"; }
# e2e_imap_fetch USER PASSWORD MAILBOX N [--crlf]: print message N
# (1-based), headers and body unparsed, with LF line ends as stored (--crlf:
# the bytes IMAP sent); BODY.PEEK[], so \Seen is not set.
e2e_imap_fetch() { "$E2E_PY" "$E2E_LIBDIR/imap.py" --port "$IMAP_PORT" fetch "$@"; }
# e2e_imap_wait USER PASSWORD MAILBOX COUNT [SECONDS]: until MAILBOX has at
# least COUNT messages (a missing mailbox counts as 0); default 10 s.
e2e_imap_wait() { "$E2E_PY" "$E2E_LIBDIR/imap.py" --port "$IMAP_PORT" wait "$@"; }
# e2e_imap_list USER PASSWORD: the user's mailboxes, one a line.
e2e_imap_list() { "$E2E_PY" "$E2E_LIBDIR/imap.py" --port "$IMAP_PORT" list "$@"; }
# e2e_userdb_lookup NAME [SERVICE]: ask $USERDB_SOCKET with the auth-master
# protocol (as Waypost's router does); prints the answer line, e.g.
# "USER<TAB>1<TAB>alice@company.dom<TAB>uid=65534<TAB>..." or "NOTFOUND<TAB>1".
e2e_userdb_lookup() { "$E2E_PY" "$E2E_LIBDIR/imap.py" userdb "$USERDB_SOCKET" "$@"; }
