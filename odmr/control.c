/* SPDX-License-Identifier: MIT */
/*
 * control.c - the control socket and the release processes (control.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "odmr/conn.h"
#include "odmr/control.h"
#include "odmr/deliver.h"

struct release {
    pid_t pid;
    char *queue;
    int client; /* FLUSH-WAIT: the client, answered once the process is reaped; else -1 */
    int result; /* FLUSH-WAIT: the read end of the pipe the process writes its answer to */
};

struct wp_control {
    struct server *srv;
    struct evconnlistener *l;
    struct event *chld;
    struct release *rel;
    size_t nrel;
};

static void busy_drop(struct server *srv, const char *queue)
{
    for (size_t i = 0; i < srv->nbusy; i++)
        if (strcmp(srv->busy[i], queue) == 0) {
            free(srv->busy[i]);
            srv->busy[i] = srv->busy[--srv->nbusy];
            return;
        }
}

static void send_line(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void send_line(int fd, const char *fmt, ...)
{
    char line[700];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t w = write(fd, line, (size_t)n); /* a socket or the result pipe; SIGPIPE is ignored */
    (void)w;                                /* a client that left does not want the answer */
}

/* The release process: deliver, write the answer to fd when asked to wait
 * (a pipe: the parent forwards it after reaping us, so that a client that
 * asks again at once does not find the queue still busy), exit. */
static void release_child(struct server *srv, const char *queue, int fd, bool wait, pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGUSR1, SIG_IGN);
    signal(SIGCHLD, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    wp_conn_close_inherited(srv);
    struct wp_deliver_result res;
    enum wp_deliver_status st = wp_deliver_queue(srv->snap, srv->hostname, queue, &res);
    switch (st) {
    case WP_DELIVER_BUSY:
        wp_notice("queue %s: %s", queue, res.error);
        if (wait)
            send_line(fd, "BUSY %s: %s", queue, res.error);
        break;
    case WP_DELIVER_DONE:
    case WP_DELIVER_FAIL:
        wp_notice(
            "queue %s released: %u message%s, %u recipient%s delivered, %u returned, %u waiting%s%s%s%s",
            queue, res.messages, res.messages == 1 ? "" : "s", res.delivered, res.delivered == 1 ? "" : "s",
            res.returned, res.waiting, res.relay[0] ? ", relay=" : "", res.relay, res.error[0] ? ": " : "",
            res.error);
        if (wait && st == WP_DELIVER_DONE)
            send_line(fd, "OK %s: %u delivered, %u returned, %u waiting", queue, res.delivered, res.returned,
                      res.waiting);
        else if (wait)
            send_line(fd, "FAIL %s: %s (%u delivered, %u returned, %u waiting)", queue, res.error,
                      res.delivered, res.returned, res.waiting);
        break;
    }
    _exit(st == WP_DELIVER_DONE ? 0 : 1);
}

/* One request; fd is closed here (or handed to the release process). */
static void control_request(struct wp_control *ctl, int fd)
{
    struct timeval tv = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char line[320];
    size_t o = 0;
    while (o + 1 < sizeof(line)) {
        ssize_t n = recv(fd, line + o, 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || line[o] == '\n')
            break;
        o++;
    }
    line[o] = '\0';
    if (o && line[o - 1] == '\r')
        line[--o] = '\0';
    bool wait = false;
    const char *q = NULL;
    if (strncmp(line, "FLUSH ", 6) == 0)
        q = line + 6;
    else if (strncmp(line, "FLUSH-WAIT ", 11) == 0) {
        q = line + 11;
        wait = true;
    }
    char queue[WP_DOMAIN_MAX + 3];
    if (!q || !wp_strlcpy(queue, q, sizeof(queue))) {
        send_line(fd, "ERR expected FLUSH queue or FLUSH-WAIT queue");
        close(fd);
        return;
    }
    wp_str_lower(queue);
    if (!wp_spool_queue_name_valid(queue)) {
        send_line(fd, "ERR '%s' is not a queue name", queue);
        close(fd);
        return;
    }
    struct server *srv = ctl->srv;
    if (wp_conn_queue_busy(srv, queue)) {
        send_line(fd, "BUSY %s: an ATRN session or another release is delivering it", queue);
        close(fd);
        return;
    }
    int pfd[2] = {-1, -1};
    if (wait && pipe2(pfd, O_CLOEXEC) != 0) {
        send_line(fd, "FAIL %s: cannot start the release", queue);
        close(fd);
        return;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        wp_err("queue %s: fork: %s", queue, strerror(errno));
        send_line(fd, "FAIL %s: cannot start the release", queue);
        close(fd);
        if (wait) {
            close(pfd[0]);
            close(pfd[1]);
        }
        return;
    }
    if (pid == 0) {
        close(fd);
        if (wait)
            close(pfd[0]);
        release_child(srv, queue, pfd[1], wait, parent);
    }
    if (wait) {
        close(pfd[1]);
    } else {
        send_line(fd, "OK %s: release started", queue);
        close(fd);
        fd = -1;
    }
    srv->busy = wp_realloc(srv->busy, (srv->nbusy + 1) * sizeof(char *));
    srv->busy[srv->nbusy++] = wp_strdup(queue);
    ctl->rel = wp_realloc(ctl->rel, (ctl->nrel + 1) * sizeof(*ctl->rel));
    ctl->rel[ctl->nrel].pid = pid;
    ctl->rel[ctl->nrel].queue = wp_strdup(queue);
    ctl->rel[ctl->nrel].client = fd;
    ctl->rel[ctl->nrel].result = pfd[0];
    ctl->nrel++;
    wp_info("queue %s: release started (pid %d)", queue, (int)pid);
}

static void on_control_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                              void *arg)
{
    (void)l;
    (void)sa;
    (void)salen;
    evutil_make_socket_closeonexec(fd);
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    control_request(arg, fd);
}

/* FLUSH-WAIT: forward what the ended process wrote (all of it is in the
 * pipe by now). */
static void release_answer(struct release *r)
{
    if (r->client < 0)
        return;
    char line[800];
    ssize_t n = read(r->result, line, sizeof(line) - 1);
    if (n <= 0)
        send_line(r->client, "FAIL %s: the release process ended without an answer", r->queue);
    else if (write(r->client, line, (size_t)n) < 0)
        wp_debug("queue %s: the client left before the answer", r->queue);
    close(r->client);
    close(r->result);
    r->client = r->result = -1;
}

/* A release ended: its queue is free for ATRN and the next release. */
static void on_child(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    struct wp_control *ctl = arg;
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        for (size_t i = 0; i < ctl->nrel; i++)
            if (ctl->rel[i].pid == pid) {
                if (WIFSIGNALED(status))
                    wp_warn("queue %s: the release process died of signal %d", ctl->rel[i].queue,
                            WTERMSIG(status));
                busy_drop(ctl->srv, ctl->rel[i].queue);
                release_answer(&ctl->rel[i]);
                free(ctl->rel[i].queue);
                ctl->rel[i] = ctl->rel[--ctl->nrel];
                break;
            }
}

struct wp_control *wp_control_new(struct server *srv, int fd)
{
    struct wp_control *ctl = wp_calloc(1, sizeof(*ctl));
    ctl->srv = srv;
    ctl->l = evconnlistener_new(srv->base, on_control_accept, ctl, LEV_OPT_CLOSE_ON_EXEC, -1, fd);
    ctl->chld = evsignal_new(srv->base, SIGCHLD, on_child, ctl);
    if (!ctl->l || !ctl->chld || event_add(ctl->chld, NULL) != 0) {
        wp_control_free(ctl);
        return NULL;
    }
    return ctl;
}

void wp_control_free(struct wp_control *ctl)
{
    if (!ctl)
        return;
    if (ctl->l)
        evconnlistener_free(ctl->l);
    if (ctl->chld)
        event_free(ctl->chld);
    for (size_t i = 0; i < ctl->nrel; i++) {
        kill(ctl->rel[i].pid, SIGTERM); /* the message in flight may go again: never lost */
        waitpid(ctl->rel[i].pid, NULL, 0);
        release_answer(&ctl->rel[i]);
        free(ctl->rel[i].queue);
    }
    free(ctl->rel);
    free(ctl);
}
