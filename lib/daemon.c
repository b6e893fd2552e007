/* SPDX-License-Identifier: MIT */
/*
 * daemon.c - sockets, background mode, pidfile and privilege drop.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/daemon.h"
#include "lib/util.h"

static bool lookup_ids(const char *owner, const char *group, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
    *uid = (uid_t)-1;
    *gid = (gid_t)-1;
    if (owner && *owner) {
        struct passwd *pw = getpwnam(owner);
        if (!pw) {
            snprintf(err, errlen, "unknown user '%s'", owner);
            return false;
        }
        *uid = pw->pw_uid;
    }
    if (group && *group) {
        struct group *gr = getgrnam(group);
        if (!gr) {
            snprintf(err, errlen, "unknown group '%s'", group);
            return false;
        }
        *gid = gr->gr_gid;
    }
    return true;
}

int wp_unix_connect(const char *path)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (!wp_strlcpy(sun.sun_path, path, sizeof(sun.sun_path))) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Does something accept connections on this unix socket? */
static bool socket_in_use(const char *path)
{
    int fd = wp_unix_connect(path);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

int wp_listen_socket(const struct wp_endpoint *ep, int mode, const char *owner, const char *group,
                     char *err, size_t errlen)
{
    int fd = -1;
    if (ep->family == WP_EP_UNIX) {
        uid_t uid;
        gid_t gid;
        if (!lookup_ids(owner, group, &uid, &gid, err, errlen)) /* before creating anything */
            return -1;
        struct stat st;
        if (lstat(ep->path, &st) == 0) {
            if (!S_ISSOCK(st.st_mode)) {
                snprintf(err, errlen, "%s exists and is not a socket", ep->path);
                return -1;
            }
            if (socket_in_use(ep->path)) {
                snprintf(err, errlen, "%s is in use by a running process", ep->path);
                return -1;
            }
            unlink(ep->path); /* stale socket of an earlier run */
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            goto fail;
        struct sockaddr_un sun;
        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        wp_strlcpy(sun.sun_path, ep->path, sizeof(sun.sun_path));
        /* Create it with the final mode: no window where others can connect. */
        mode_t old = umask((mode_t)(0777 & ~mode));
        int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
        umask(old);
        if (rc < 0)
            goto fail;
        if (!wp_socket_set_owner(ep->path, mode, owner, group, err, errlen)) {
            close(fd);
            return -1;
        }
    } else {
        struct addrinfo hints, *res = NULL;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = ep->family == WP_EP_INET6 ? AF_INET6 : AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        char port[8];
        snprintf(port, sizeof(port), "%d", ep->port);
        const char *host = strcmp(ep->host, "*") == 0 ? NULL : ep->host;
        int gai = getaddrinfo(host, port, &hints, &res);
        if (gai != 0) {
            snprintf(err, errlen, "%s: %s", ep->host, gai_strerror(gai));
            return -1;
        }
        fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            freeaddrinfo(res);
            goto fail;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (res->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        int rc = bind(fd, res->ai_addr, res->ai_addrlen);
        freeaddrinfo(res);
        if (rc < 0)
            goto fail;
    }
    if (listen(fd, 1024) < 0)
        goto fail;
    return fd;
fail:
    snprintf(err, errlen, "%s", strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

bool wp_socket_set_owner(const char *path, int mode, const char *owner, const char *group, char *err,
                         size_t errlen)
{
    uid_t uid;
    gid_t gid;
    if (!lookup_ids(owner, group, &uid, &gid, err, errlen))
        return false;
    if (chmod(path, (mode_t)mode) < 0 ||
        ((uid != (uid_t)-1 || gid != (gid_t)-1) && chown(path, uid, gid) < 0)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return false;
    }
    return true;
}

int wp_daemon_args(const char *prog, const char *default_config, int argc, char **argv, struct wp_daemon_args *a)
{
    a->config = default_config;
    a->foreground = a->test_only = false;
    int opt;
    bool bad = false, help = false;
    while ((opt = getopt(argc, argv, "c:fth")) != -1) {
        switch (opt) {
        case 'c': a->config = optarg; break;
        case 'f': a->foreground = true; break;
        case 't': a->test_only = true; break;
        case 'h': help = true; break;
        default: bad = true; break;
        }
    }
    if (!bad && !help && optind == argc)
        return -1;
    fprintf(help ? stdout : stderr,
            "usage: %s [-c FILE] [-f] [-t]\n"
            "  -c FILE  configuration (default %s)\n"
            "  -f       stay in the foreground and log to stderr\n"
            "  -t       check the configuration and exit\n",
            prog, default_config);
    return help ? 0 : 2;
}

bool wp_daemonize(char *err, size_t errlen)
{
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        return false;
    }
    if (pid > 0)
        _exit(0);
    setsid();
    pid = fork(); /* never reacquire a controlling terminal */
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        return false;
    }
    if (pid > 0)
        _exit(0);
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
    if (chdir("/") < 0) {
        snprintf(err, errlen, "chdir /: %s", strerror(errno));
        return false;
    }
    return true;
}

bool wp_pidfile_write(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f) {
        long pid = 0;
        if (fscanf(f, "%ld", &pid) == 1 && pid > 0 && pid != (long)getpid() && kill((pid_t)pid, 0) == 0) {
            fclose(f);
            snprintf(err, errlen, "%s: process %ld is still running", path, pid);
            return false;
        }
        fclose(f);
    }
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return false;
    }
    fprintf(f, "%ld\n", (long)getpid());
    if (fclose(f) != 0 || rename(tmp, path) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        unlink(tmp);
        return false;
    }
    return true;
}

bool wp_drop_privileges(const char *user, char *err, size_t errlen)
{
    if (!user || !*user || geteuid() != 0)
        return true;
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        snprintf(err, errlen, "unknown user '%s'", user);
        return false;
    }
    if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
        snprintf(err, errlen, "cannot become %s: %s", user, strerror(errno));
        return false;
    }
    if (setuid(0) == 0) {
        snprintf(err, errlen, "privileges were not dropped");
        return false;
    }
    return true;
}
