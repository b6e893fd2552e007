/* SPDX-License-Identifier: MIT */
/*
 * daemon.c - the daemon skeleton (see daemon.h): sockets, the pidfile lock,
 * background mode, privilege drop, signals, reload swap and readiness.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/file.h>
#include <systemd/sd-daemon.h>
#include <time.h>
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

bool wp_unix_socket_in_use(const char *path)
{
    int fd = wp_unix_connect(path);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

int wp_listen_socket(const struct wp_endpoint *ep, int mode, const char *owner, const char *group, char *err,
                     size_t errlen)
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
            if (wp_unix_socket_in_use(ep->path)) {
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
    /* No group configured: Postfix's, where that group exists, so that its
     * processes reach a 0660 socket; a daemon not allowed to give the
     * socket to that group (not root, not a member) keeps its own. */
    if (!group || !*group) {
        struct group *gr = getgrnam(WP_SOCKET_DEFAULT_GROUP);
        if (gr && chown(path, (uid_t)-1, gr->gr_gid) < 0 && errno != EPERM) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            return false;
        }
    }
    return true;
}

int wp_daemon_args(const char *prog, const char *default_config, int argc, char **argv,
                   struct wp_daemon_args *a)
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

bool wp_daemon_user_dir(const char *path, const char *user, char *err, size_t errlen)
{
    if (mkdir(path, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "mkdir %s: %s", path, strerror(errno));
        return false;
    }
    struct stat st;
    if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s is not a directory", path);
        return false;
    }
    if (!user || !*user || geteuid() != 0 || st.st_uid != 0)
        return true; /* only root's directories are given away: never someone else's */
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        snprintf(err, errlen, "unknown user '%s'", user);
        return false;
    }
    if (pw->pw_uid != 0 && chown(path, pw->pw_uid, pw->pw_gid) < 0) {
        snprintf(err, errlen, "chown %s: %s", path, strerror(errno));
        return false;
    }
    return true;
}

/* ------------------------------------------------------------ skeleton */

/* The write end of the signal pipe: a handler gets no argument. */
static volatile sig_atomic_t signal_write_fd = -1;

void wp_daemon_init(struct wp_daemon *d, const char *prog, const char *config_path, bool foreground,
                    const struct wp_daemon_hooks *hooks, void *conf, const struct wp_daemon_conf *dc)
{
    memset(d, 0, sizeof(*d));
    d->prog = prog;
    d->config_path = config_path;
    d->foreground = foreground;
    d->hooks = *hooks;
    d->conf = *dc;
    pthread_mutex_init(&d->lock, NULL);
    d->current = conf;
    atomic_init(&d->generation, 0);
    d->pid_fd = -1;
    d->signal_fds[0] = d->signal_fds[1] = -1;
}

bool wp_daemon_lock(struct wp_daemon *d, char *err, size_t errlen)
{
    const char *path = d->conf.pidfile;
    if (!path || !*path)
        return true;
    if (!wp_strlcpy(d->pidfile, path, sizeof(d->pidfile))) {
        snprintf(err, errlen, "pidfile name too long");
        return false;
    }
    for (int attempt = 0; attempt < 5; attempt++) {
        bool created = false;
        int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 && errno == ENOENT) {
            fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
            created = fd >= 0;
            if (fd < 0 && errno == EEXIST)
                continue; /* someone was quicker: open theirs */
        }
        if (fd < 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            return false;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
            int e = errno;
            char buf[32] = "";
            ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
            buf[n > 0 ? n : 0] = '\0';
            long pid = strtol(buf, NULL, 10);
            close(fd);
            if (e == EWOULDBLOCK) {
                if (pid > 0)
                    snprintf(err, errlen, "already running (pid %ld holds %s)", pid, path);
                else
                    snprintf(err, errlen, "already running (another process holds %s)", path);
            } else {
                snprintf(err, errlen, "%s: flock: %s", path, strerror(e));
            }
            return false;
        }
        /* A daemon that stopped just now removed the file while we opened
         * it: our lock is on a file nobody else will find.  Start over. */
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
            d->pid_fd = fd;
            d->pid_created = created;
            return true;
        }
        close(fd);
    }
    snprintf(err, errlen, "%s: cannot lock it (it keeps being replaced)", path);
    return false;
}

static void remember_socket(struct wp_daemon *d, int fd, const char *path)
{
    d->sockets = wp_realloc(d->sockets, (d->nsockets + 1) * sizeof(*d->sockets));
    struct wp_daemon_socket *s = &d->sockets[d->nsockets++];
    s->fd = fd;
    s->path[0] = '\0';
    if (path)
        wp_strlcpy(s->path, path, sizeof(s->path));
}

int wp_daemon_listen(struct wp_daemon *d, const struct wp_endpoint *ep, char *err, size_t errlen)
{
    int fd =
        wp_listen_socket(ep, d->conf.socket_mode, d->conf.socket_owner, d->conf.socket_group, err, errlen);
    if (fd >= 0)
        remember_socket(d, fd, ep->family == WP_EP_UNIX ? ep->path : NULL);
    return fd;
}

bool wp_daemon_socket_free(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return true;
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "%s exists and is not a socket", path);
        return false;
    }
    if (wp_unix_socket_in_use(path)) {
        snprintf(err, errlen, "%s is in use by a running process", path);
        return false;
    }
    return true;
}

bool wp_daemon_adopt_socket(struct wp_daemon *d, const char *path, char *err, size_t errlen)
{
    remember_socket(d, -1, path); /* ours from now on, even if what follows fails */
    return wp_socket_set_owner(path, d->conf.socket_mode, d->conf.socket_owner, d->conf.socket_group, err,
                               errlen);
}

bool wp_daemon_detach(struct wp_daemon *d, char *err, size_t errlen)
{
    if (!d->foreground && !wp_daemonize(err, errlen))
        return false;
    const char *facility = NULL;
    enum wp_log_level level = WP_LOG_INFO;
    d->hooks.log_settings(d->current, &facility, &level);
    wp_log_open(d->prog, !d->foreground, facility, level);
    if (d->pid_fd >= 0) {
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
        d->pid_written = true; /* from here on the file names us: the end removes it */
        if (ftruncate(d->pid_fd, 0) < 0 || pwrite(d->pid_fd, buf, (size_t)n, 0) != n) {
            snprintf(err, errlen, "%s: %s", d->pidfile, strerror(errno));
            return false;
        }
    }
    return true;
}

bool wp_daemon_drop(struct wp_daemon *d, char *err, size_t errlen)
{
    return wp_drop_privileges(d->conf.user, err, errlen);
}

static void on_signal(int sig)
{
    int e = errno;
    unsigned char b = (unsigned char)sig;
    if (signal_write_fd >= 0 && write(signal_write_fd, &b, 1) < 0) {
        /* full pipe: signals enough are waiting already */
    }
    errno = e;
}

static void held_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGUSR1);
}

void wp_daemon_hold_signals(void)
{
    sigset_t set;
    held_signals(&set);
    sigprocmask(SIG_BLOCK, &set, NULL);
}

int wp_daemon_signals(struct wp_daemon *d)
{
    if (pipe2(d->signal_fds, O_CLOEXEC | O_NONBLOCK) < 0) {
        wp_err("signal pipe: %s", strerror(errno));
        return -1;
    }
    signal_write_fd = d->signal_fds[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    const int sigs[] = {SIGHUP, SIGUSR1, SIGTERM, SIGINT};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigset_t held;
    held_signals(&held);
    pthread_sigmask(SIG_UNBLOCK, &held, NULL); /* one that came while held is handled now */
    return d->signal_fds[0];
}

enum wp_daemon_event wp_daemon_next_signal(struct wp_daemon *d, int *sig)
{
    unsigned char b;
    ssize_t n = read(d->signal_fds[0], &b, 1);
    if (n != 1)
        return WP_DAEMON_NONE;
    *sig = b;
    if (b == SIGHUP || b == SIGUSR1)
        return WP_DAEMON_RELOAD;
    return WP_DAEMON_STOP; /* SIGTERM, SIGINT, or 0 from wp_daemon_wake */
}

void wp_daemon_wake(struct wp_daemon *d)
{
    unsigned char b = 0;
    if (write(d->signal_fds[1], &b, 1) < 0)
        wp_warn("cannot wake the main loop: %s", strerror(errno));
}

void wp_daemon_ready(struct wp_daemon *d, const char *fmt, ...)
{
    char status[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(status, sizeof(status), fmt, ap);
    va_end(ap);
    for (char *p = status; *p; p++) /* one line: a newline would start another assignment */
        if (*p == '\n')
            *p = ' ';
    d->ready = true;
    sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void *wp_daemon_reload(struct wp_daemon *d)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading %s",
               (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000ull,
               d->config_path);
    void *conf = d->hooks.reload(d->config_path, d->hooks.ctx);
    if (!conf) {
        sd_notifyf(0, "READY=1\nSTATUS=reload of %s failed: the previous configuration stays",
                   d->config_path);
        return NULL;
    }
    const char *facility = NULL;
    enum wp_log_level level = WP_LOG_INFO;
    d->hooks.log_settings(conf, &facility, &level);
    if (!wp_log_set(facility, level))
        wp_warn("reload: unknown log.facility; the level applies, the facility stays");
    pthread_mutex_lock(&d->lock);
    void *old = d->current;
    d->current = conf;
    atomic_fetch_add_explicit(&d->generation, 1, memory_order_release);
    pthread_mutex_unlock(&d->lock);
    d->hooks.unref(old);
    sd_notifyf(0, "READY=1\nSTATUS=running, configuration reloaded from %s", d->config_path);
    return conf;
}

void *wp_daemon_current(struct wp_daemon *d)
{
    pthread_mutex_lock(&d->lock);
    void *conf = d->hooks.ref(d->current);
    pthread_mutex_unlock(&d->lock);
    return conf;
}

int wp_daemon_end(struct wp_daemon *d, int rc)
{
    if (d->ready)
        sd_notify(0, "STOPPING=1");
    for (size_t i = 0; i < d->nsockets; i++) {
        if (d->sockets[i].fd >= 0)
            close(d->sockets[i].fd);
        if (d->sockets[i].path[0] && unlink(d->sockets[i].path) < 0 && errno != ENOENT)
            wp_warn("cannot remove %s: %s", d->sockets[i].path, strerror(errno));
    }
    free(d->sockets);
    d->sockets = NULL;
    d->nsockets = 0;
    if (d->pid_fd >= 0) {
        /* Removed while we still hold the lock: a new instance either finds
         * no file or one it can lock. */
        if ((d->pid_created || d->pid_written) && unlink(d->pidfile) < 0 && errno != ENOENT)
            wp_warn("cannot remove %s: %s", d->pidfile, strerror(errno));
        close(d->pid_fd);
        d->pid_fd = -1;
    }
    if (d->signal_fds[0] >= 0) {
        signal_write_fd = -1;
        close(d->signal_fds[0]);
        close(d->signal_fds[1]);
        d->signal_fds[0] = d->signal_fds[1] = -1;
    }
    if (d->current)
        d->hooks.unref(d->current);
    d->current = NULL;
    pthread_mutex_destroy(&d->lock);
    return rc;
}
