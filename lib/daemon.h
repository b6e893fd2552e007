/* SPDX-License-Identifier: MIT */
/*
 * daemon.h - the life of a Waypost daemon, one skeleton for all three
 * (waypost-policyd, waypost-odmrd, waypost-milter; Postfix's multi_server
 * is the model):
 *
 *   wp_daemon_hold_signals  first thing in main(): SIGHUP and SIGUSR1
 *                       wait until the handlers are in place
 *   wp_daemon_init      the startup configuration, logging to stderr
 *   wp_daemon_lock      flock on the pidfile: "already running" is decided
 *                       here, before any socket is touched
 *   wp_daemon_listen    sockets (unix: mode/owner/group before the drop),
 *                       remembered so that a failed start or the stop
 *                       removes exactly the sockets this process created
 *   wp_daemon_detach    background (unless -f), the configured logging,
 *                       our PID into the locked pidfile
 *   wp_daemon_drop      privilege drop
 *   wp_daemon_signals   SIGHUP and SIGUSR1 reload, SIGTERM and SIGINT
 *                       stop, SIGPIPE ignored; a handler writes the signal
 *                       into a pipe that the daemon's loop reads
 *   wp_daemon_ready     sd_notify READY=1 and STATUS=
 *   wp_daemon_reload    RELOADING=1, load, swap (a broken configuration
 *                       keeps the old one), log settings applied again
 *   wp_daemon_end       STOPPING=1; sockets and pidfile removed
 *
 * The configuration is opaque here (lib depends on nothing): the daemon
 * passes hooks that load, reference and release it.  Readiness goes through
 * libsystemd's sd_notify, a no-op when NOTIFY_SOCKET is unset.
 *
 * Limits: one skeleton per process; the signal pipe's write end is the one
 * process-wide variable (a signal handler has no argument).
 */
#ifndef WP_DAEMON_H
#define WP_DAEMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/endpoint.h"
#include "lib/log.h"

/* Bind and listen (non-blocking, close-on-exec).  A stale unix socket is
 * replaced; a non-socket file at the path is an error.  mode/owner/group
 * apply to unix sockets (owner/group "" keep the defaults).  Returns the fd
 * or -1 with a message in err. */
int wp_listen_socket(const struct wp_endpoint *ep, int mode, const char *owner, const char *group, char *err,
                     size_t errlen);

/* Connect to a unix stream socket; the fd, or -1 with errno set. */
int wp_unix_connect(const char *path);

/* The group a unix socket gets when none is configured, where it exists:
 * Postfix's processes run in it.  With the default mode 0660 an unprivileged
 * local user cannot connect (issue 17). */
#define WP_SOCKET_DEFAULT_GROUP "postfix"
#define WP_SOCKET_DEFAULT_MODE "0660"

/* Give an existing unix socket its mode, owner and group (owner "" keeps
 * it; group "" is WP_SOCKET_DEFAULT_GROUP where it exists and we may give
 * it, else kept). */
bool wp_socket_set_owner(const char *path, int mode, const char *owner, const char *group, char *err,
                         size_t errlen);

/* Command line shared by the daemons: -c FILE, -f, -t.  Returns -1 to go
 * on, or the exit status (usage printed). */
struct wp_daemon_args {
    const char *config;
    bool foreground;
    bool test_only;
};
int wp_daemon_args(const char *prog, const char *default_config, int argc, char **argv,
                   struct wp_daemon_args *a);

/* Fork into the background (setsid, stdin/out/err to /dev/null). */
bool wp_daemonize(char *err, size_t errlen);

/* Switch to user (and its primary group) if we are root and user != "". */
bool wp_drop_privileges(const char *user, char *err, size_t errlen);

/* Does something accept connections on this unix socket? */
bool wp_unix_socket_in_use(const char *path);

/* A directory the daemon writes after dropping to user: created (0700) if
 * missing, and given to user (its primary group) when we are root and the
 * directory belongs to root.  user "" or not root: only created. */
bool wp_daemon_user_dir(const char *path, const char *user, char *err, size_t errlen);

/* ------------------------------------------------------------ skeleton */

/* How the skeleton handles the daemon's configuration (opaque here). */
struct wp_daemon_hooks {
    void *(*reload)(const char *path, const void *ctx); /* NULL: broken, the loader logged why */
    void *(*ref)(void *conf);
    void (*unref)(void *conf);
    void (*log_settings)(const void *conf, const char **facility, enum wp_log_level *level);
    const void *ctx; /* what reload needs besides the path (the sections a daemon loads) */
};

/* The settings of the daemon's own section the skeleton needs. */
struct wp_daemon_conf {
    const char *pidfile; /* "" or NULL: no pidfile, no lock */
    const char *user;    /* "" or NULL: keep the user */
    int socket_mode;
    const char *socket_owner, *socket_group;
};

struct wp_daemon_socket {
    int fd;         /* -1 once closed */
    char path[108]; /* a unix socket this process created: removed at the end */
};

struct wp_daemon {
    const char *prog;
    const char *config_path;
    bool foreground;
    struct wp_daemon_hooks hooks; /* a copy: the caller's may be a temporary */
    struct wp_daemon_conf conf;
    pthread_mutex_t lock;   /* guards current */
    void *current;          /* the configuration new work uses */
    atomic_uint generation; /* bumped on every successful reload */
    char pidfile[4096];
    int pid_fd;       /* holds the flock for the daemon's life */
    bool pid_created; /* we created the file (a failed start removes it) */
    bool pid_written; /* our PID is in it (the end removes it) */
    struct wp_daemon_socket *sockets;
    size_t nsockets;
    int signal_fds[2]; /* read end for the loop, write end for the handler */
    bool ready;        /* READY=1 was sent: the end says STOPPING=1 */
};

/* Start with the loaded startup configuration conf (the skeleton takes the
 * reference) read from config_path. */
void wp_daemon_init(struct wp_daemon *d, const char *prog, const char *config_path, bool foreground,
                    const struct wp_daemon_hooks *hooks, void *conf, const struct wp_daemon_conf *dc);

/* Lock the pidfile (created if missing).  Held: another instance runs, an
 * error naming its PID.  A stale pidfile, whatever PID it holds, does not
 * block: the lock decides. */
bool wp_daemon_lock(struct wp_daemon *d, char *err, size_t errlen);

/* Listen on ep with the skeleton's socket mode/owner/group; the fd, or -1
 * and err. */
int wp_daemon_listen(struct wp_daemon *d, const struct wp_endpoint *ep, char *err, size_t errlen);

/* Before someone else (libmilter) creates the unix socket at path: refuse a
 * non-socket file there or a socket something answers on. */
bool wp_daemon_socket_free(const char *path, char *err, size_t errlen);

/* A unix socket created for the daemon by someone else (libmilter): give it
 * the skeleton's mode/owner/group and remove it at the end. */
bool wp_daemon_adopt_socket(struct wp_daemon *d, const char *path, char *err, size_t errlen);

/* Background unless foreground, logging as the configuration says, our PID
 * into the pidfile.  On failure err (logging may already be syslog). */
bool wp_daemon_detach(struct wp_daemon *d, char *err, size_t errlen);

bool wp_daemon_drop(struct wp_daemon *d, char *err, size_t errlen);

/* Block SIGHUP and SIGUSR1: called before the startup configuration is
 * loaded (a large table takes a while), so that a reload asked for then
 * (logrotate, an impatient administrator) waits instead of killing the
 * daemon with the signals' default action.  wp_daemon_signals unblocks
 * them, and one that came meanwhile reloads once the daemon runs.
 * SIGTERM and SIGINT keep their default action: a stop during the start
 * stops. */
void wp_daemon_hold_signals(void);

/* Install the signal handlers and unblock what wp_daemon_hold_signals
 * held; the fd to watch for readability. */
int wp_daemon_signals(struct wp_daemon *d);

enum wp_daemon_event { WP_DAEMON_NONE, WP_DAEMON_RELOAD, WP_DAEMON_STOP };
/* Read one signal from the pipe (call when readable; never blocks if the
 * pipe is non-blocking, which it is). */
enum wp_daemon_event wp_daemon_next_signal(struct wp_daemon *d, int *sig);

/* Wake the loop from another thread (the milter's smfi_main ending): the
 * next wp_daemon_next_signal returns STOP with *sig 0. */
void wp_daemon_wake(struct wp_daemon *d);

/* sd_notify READY=1 with STATUS=status (printf-style). */
void wp_daemon_ready(struct wp_daemon *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Load the configuration again.  Success: it is current (the old one is
 * released when its last user lets go), its log settings apply, the
 * generation moves on, and the new configuration is returned (borrowed:
 * valid until the next reload).  Failure: NULL, the old one stays. */
void *wp_daemon_reload(struct wp_daemon *d);

/* A reference to the current configuration (release with hooks->unref). */
void *wp_daemon_current(struct wp_daemon *d);

/* The end: STOPPING=1 (if stopping), sockets closed, the unix sockets we
 * created and the pidfile removed, the lock released, the configuration
 * released.  Also the way out of a failed start.  Returns rc. */
int wp_daemon_end(struct wp_daemon *d, int rc);

#endif
