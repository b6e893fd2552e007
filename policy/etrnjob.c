/* SPDX-License-Identifier: MIT */
/*
 * etrnjob.c - waypost-policyd's ETRN releases (smtpd_etrn_restrictions).
 *
 * When a client may release a held queue (the decision is etrn.h's), the
 * queue's mail waits in waypost-odmrd's spool, not in Postfix's queue:
 * policyd asks odmrd to deliver that queue, merged domains included, by
 * sending "FLUSH queue" on odmrd's control socket (policyd.etrn_socket =
 * odmr.control_socket) and answers OK once odmrd said it started.  Nothing
 * of Postfix is flushed for it: Postfix's own flush would make its queue
 * manager release every customer's deferred mail.  The exchange is
 * non-blocking and watched by the worker's event loop, which keeps serving
 * other connections; only the asking connection waits, at most
 * policyd.etrn_timeout seconds, then the answer says the release failed.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "policy/etrn.h"
#include "policy/server.h"
#include "policy/settings.h"

/* One released ETRN: one request to waypost-odmrd, one answer line. */
struct etrn_job {
    struct conn *c;
    struct wp_etrn_decision d;
    char *socket_path; /* a copy: a reload may drop the snapshot */
    int fd;            /* the control connection, -1 if none */
    struct event *ev, *deadline, *start;
    int timeout;
    char request[WP_DOMAIN_MAX + 16];
    size_t reqlen, sent;
    char output[WP_ETRN_OUTPUT_MAX]; /* odmrd's answer, for the log */
    size_t outlen;
    bool failed;
};

void wp_etrnjob_free(struct etrn_job *job)
{
    if (job->ev)
        event_free(job->ev);
    if (job->fd >= 0)
        close(job->fd);
    if (job->deadline)
        event_free(job->deadline);
    if (job->start)
        event_free(job->start);
    wp_etrn_decision_free(&job->d);
    free(job->socket_path);
    free(job);
}

static void etrn_close(struct etrn_job *job)
{
    if (job->ev) {
        event_free(job->ev);
        job->ev = NULL;
    }
    if (job->fd >= 0) {
        close(job->fd);
        job->fd = -1;
    }
}

/* The release was handed over (or failed): answer, and let the connection
 * read again. */
static void etrn_job_done(struct etrn_job *job)
{
    struct conn *c = job->c;
    char action[WP_ETRN_ACTION_MAX + 64];
    etrn_close(job);
    evtimer_del(job->deadline);
    if (job->failed)
        snprintf(action, sizeof(action), "458 4.3.0 unable to release queue %s now", job->d.queue);
    else
        snprintf(action, sizeof(action), "%s", job->d.action);
    wp_notice("ETRN %s: queue %s %s%s%s", job->d.name, job->d.queue,
              job->failed ? "not released" : "released", job->outlen ? ": " : "", job->output);
    wp_server_send_answer(c, false, "action=", action, "\n\n");
    c->job = NULL;
    wp_etrnjob_free(job);
    if (c->closing) {
        wp_server_close_after_flush(c);
        return;
    }
    if (!wp_server_flush_output(c)) {
        wp_server_conn_free(c);
        return;
    }
    c->last_active = c->w->ticks; /* the idle time starts again after the answer */
    if (!c->reading && wp_server_output_pending(c) == 0) {
        event_add(c->rev, NULL);
        c->reading = true;
    }
    if (c->reading && c->in_len)
        wp_server_process_input(c); /* requests that arrived meanwhile */
}

/* Send the request, then read the answer line: "OK" (started) or "BUSY"
 * (a release or an ATRN session is delivering the queue already) are
 * success; anything else, or the connection closing first, is not. */
static void on_etrn_io(evutil_socket_t fd, short what, void *arg)
{
    struct etrn_job *job = arg;
    if (what & EV_WRITE) {
        ssize_t n = send(fd, job->request + job->sent, job->reqlen - job->sent, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            wp_warn("ETRN %s: %s: %s", job->d.name, job->socket_path, strerror(errno));
            job->failed = true;
            etrn_job_done(job);
            return;
        }
        job->sent += (size_t)n;
        if (job->sent == job->reqlen) {
            event_free(job->ev);
            job->ev = event_new(job->c->w->base, fd, EV_READ | EV_PERSIST, on_etrn_io, job);
            event_add(job->ev, NULL);
        }
        return;
    }
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0) {
        size_t room = sizeof(job->output) - 1 - job->outlen;
        size_t take = (size_t)n < room ? (size_t)n : room;
        memcpy(job->output + job->outlen, buf, take);
        job->outlen += take;
        job->output[job->outlen] = '\0';
        char *nl = strchr(job->output, '\n');
        if (!nl && job->outlen + 1 < sizeof(job->output))
            return;
        if (nl)
            *nl = '\0';
        job->outlen = strlen(job->output);
    }
    job->failed = strncmp(job->output, "OK ", 3) != 0 && strncmp(job->output, "BUSY ", 5) != 0;
    if (job->failed)
        wp_warn("ETRN %s: waypost-odmrd at %s answered '%s'", job->d.name, job->socket_path,
                job->outlen ? job->output : "nothing");
    etrn_job_done(job);
}

/* From the event loop (an answer never re-enters the request parser):
 * connect to waypost-odmrd's control socket. */
static void on_etrn_start(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct etrn_job *job = arg;
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (!wp_strlcpy(sun.sun_path, job->socket_path, sizeof(sun.sun_path))) {
        job->failed = true;
        etrn_job_done(job);
        return;
    }
    job->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (job->fd < 0 || (connect(job->fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 && errno != EINPROGRESS &&
                        errno != EAGAIN)) {
        wp_warn("ETRN %s: cannot reach waypost-odmrd at %s: %s", job->d.name, job->socket_path,
                strerror(errno));
        job->failed = true;
        etrn_job_done(job);
        return;
    }
    job->reqlen = (size_t)snprintf(job->request, sizeof(job->request), "FLUSH %s\n", job->d.queue);
    job->ev = event_new(job->c->w->base, job->fd, EV_WRITE | EV_PERSIST, on_etrn_io, job);
    event_add(job->ev, NULL);
}

static void on_etrn_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct etrn_job *job = arg;
    wp_warn("ETRN %s: waypost-odmrd did not answer within %d s", job->d.name, job->timeout);
    job->failed = true;
    etrn_job_done(job);
}

/* An ETRN request: answer now, or start the flushes (true: the
 * connection now waits for the job's answer). */
bool wp_etrnjob_start(struct conn *c)
{
    const struct wp_snapshot *s = wp_server_snapshot(c->w);
    const struct wp_policy_request *req = &c->policy.req;
    struct wp_etrn_decision d;
    wp_etrn_decide(s->router, &wp_policyd_conf(s)->etrn, req->etrn_domain, req->client_address,
                   req->sasl_username, &d);
    const char *who = req->sasl_username[0] ? req->sasl_username : "-";
    wp_pstats_log_etrn(req, &d);
    struct wp_pstats *stats = c->w->srv->stats;
    if (stats) {
        enum wp_pstats_etrn e = d.outcome == WP_ETRN_RELEASE  ? WP_PE_RELEASED
                                : d.outcome == WP_ETRN_REFUSE ? WP_PE_REFUSED
                                                              : WP_PE_PASS;
        wp_counter_add(&stats->workers[c->w->index].etrn[e], 1);
        wp_counter_add(&stats->workers[c->w->index].req[WP_PROTO_POLICY][WP_PSTATS_POLICY_MAP][WP_PA_ETRN],
                       1);
    }
    switch (d.outcome) {
    case WP_ETRN_PASS: wp_debug("ETRN %s from %s: not a held queue", d.name, req->client_address); break;
    case WP_ETRN_REFUSE:
        wp_notice("ETRN %s from %s (login %s): refused: %s", d.name[0] ? d.name : "(invalid)",
                  req->client_address, who, d.action);
        break;
    case WP_ETRN_RELEASE:
        wp_notice("ETRN %s from %s (login %s): releasing queue %s, %zu more merged domain%s", d.name,
                  req->client_address, who, d.queue, d.ndomains, d.ndomains == 1 ? "" : "s");
        break;
    }
    if (d.outcome != WP_ETRN_RELEASE) {
        wp_server_send_answer(c, false, "action=", d.action, "\n\n");
        wp_etrn_decision_free(&d);
        return false;
    }
    struct etrn_job *job = wp_calloc(1, sizeof(*job));
    job->c = c;
    job->d = d;
    job->fd = -1;
    job->socket_path = wp_strdup(wp_policyd_conf(s)->etrn.socket);
    job->timeout = wp_policyd_conf(s)->etrn.timeout;
    job->deadline = evtimer_new(c->w->base, on_etrn_deadline, job);
    job->start = evtimer_new(c->w->base, on_etrn_start, job);
    struct timeval limit = {job->timeout, 0};
    evtimer_add(job->deadline, &limit);
    c->job = job;
    event_active(job->start, EV_TIMEOUT, 0);
    return true;
}
