/* SPDX-License-Identifier: MIT */
/*
 * daemon.h - the life of a Waypost daemon: listening sockets (unix sockets
 * with mode/owner/group, created before privileges drop), background mode,
 * pidfile, privilege drop.
 */
#ifndef WP_DAEMON_H
#define WP_DAEMON_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/endpoint.h"

/* Bind and listen (non-blocking, close-on-exec).  A stale unix socket is
 * replaced; a non-socket file at the path is an error.  mode/owner/group
 * apply to unix sockets (owner/group "" keep the defaults).  Returns the fd
 * or -1 with a message in err. */
int wp_listen_socket(const struct wp_endpoint *ep, int mode, const char *owner, const char *group,
                     char *err, size_t errlen);

/* Connect to a unix stream socket; the fd, or -1 with errno set. */
int wp_unix_connect(const char *path);

/* Give an existing unix socket its mode, owner and group ("" keeps them). */
bool wp_socket_set_owner(const char *path, int mode, const char *owner, const char *group, char *err,
                         size_t errlen);

/* Command line shared by the daemons: -c FILE, -f, -t.  Returns -1 to go
 * on, or the exit status (usage printed). */
struct wp_daemon_args {
    const char *config;
    bool foreground;
    bool test_only;
};
int wp_daemon_args(const char *prog, const char *default_config, int argc, char **argv, struct wp_daemon_args *a);

/* Fork into the background (setsid, stdin/out/err to /dev/null). */
bool wp_daemonize(char *err, size_t errlen);

/* Write our pid to path, refusing to if a live process holds it. */
bool wp_pidfile_write(const char *path, char *err, size_t errlen);

/* Switch to user (and its primary group) if we are root and user != "". */
bool wp_drop_privileges(const char *user, char *err, size_t errlen);

#endif
