/* SPDX-License-Identifier: MIT */
/*
 * etrnjob.c - waypost-policyd's ETRN releases (smtpd_etrn_restrictions).
 *
 * When a client may release a held queue, every domain merged into it is
 * flushed with "postqueue -c postfix.config_directory -s DOMAIN" before the
 * answer (the decision is etrn.h's).  The runs are spawned, one after the
 * other, and watched by the worker's event loop, which keeps serving other
 * connections; only the asking connection waits.  All runs of one ETRN
 * together get policyd.etrn_timeout seconds; then the running one is
 * killed and the answer says the flush failed.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "policy/etrn.h"
#include "policy/server.h"
#include "policy/settings.h"

/* One released ETRN: postqueue -s for each merged domain, one at a time. */
struct etrn_job {
    struct conn *c;
    struct wp_etrn_decision d;
    char *postqueue, *config_directory; /* copies: a reload may drop the snapshot */
    size_t next;                        /* next domain of d.domains to flush */
    pid_t pid;                          /* the running postqueue, 0 if none */
    int out_fd;                         /* its standard output and error */
    struct event *out_ev, *deadline, *reap;
    int timeout;                        /* seconds for all runs */
    char output[WP_ETRN_OUTPUT_MAX];    /* what it said, for the log */
    size_t outlen;
    bool failed;
};

void wp_etrnjob_free(struct etrn_job *job)
{
    if (job->pid > 0) {
        kill(job->pid, SIGKILL);
        waitpid(job->pid, NULL, 0); /* returns at once: SIGKILL cannot be held off */
    }
    if (job->out_ev)
        event_free(job->out_ev);
    if (job->out_fd >= 0)
        close(job->out_fd);
    if (job->deadline)
        event_free(job->deadline);
    if (job->reap)
        event_free(job->reap);
    wp_etrn_decision_free(&job->d);
    free(job->postqueue);
    free(job->config_directory);
    free(job);
}

static void etrn_close_output(struct etrn_job *job)
{
    if (job->out_ev) {
        event_free(job->out_ev);
        job->out_ev = NULL;
    }
    if (job->out_fd >= 0) {
        close(job->out_fd);
        job->out_fd = -1;
    }
}

/* The last run ended: answer, and let the connection read again. */
static void etrn_job_done(struct etrn_job *job)
{
    struct conn *c = job->c;
    char action[WP_ETRN_ACTION_MAX + 64];
    if (job->failed)
        snprintf(action, sizeof(action), "458 4.3.0 unable to flush the domains merged into queue %s", job->d.queue);
    else
        snprintf(action, sizeof(action), "%s", job->d.action);
    wp_notice("ETRN %s: queue %s %s", job->d.name, job->d.queue,
              job->failed ? "not released: a merged domain could not be flushed" : "released");
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

static void on_etrn_output(evutil_socket_t fd, short what, void *arg);

static bool etrn_spawn(struct etrn_job *job, const char *domain)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        wp_warn("ETRN %s: pipe: %s", job->d.name, strerror(errno));
        return false;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    posix_spawnattr_init(&at);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE); /* we ignore it; postqueue should not */
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &defaults);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    char opt_c[] = "-c", opt_s[] = "-s", path[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
    char *argv[] = { job->postqueue, opt_c, job->config_directory, opt_s, (char *)domain, NULL };
    char *envp[] = { path, NULL };
    int e = posix_spawn(&job->pid, job->postqueue, &fa, &at, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(fds[1]);
    if (e != 0) {
        close(fds[0]);
        job->pid = 0;
        wp_warn("ETRN %s: cannot run %s: %s", job->d.name, job->postqueue, strerror(e));
        return false;
    }
    evutil_make_socket_nonblocking(fds[0]);
    job->out_fd = fds[0];
    job->outlen = 0;
    job->output[0] = '\0';
    job->out_ev = event_new(job->c->w->base, fds[0], EV_READ | EV_PERSIST, on_etrn_output, job);
    event_add(job->out_ev, NULL);
    wp_info("ETRN %s: %s -c %s -s %s (pid %d)", job->d.name, job->postqueue, job->config_directory, domain,
            (int)job->pid);
    return true;
}

/* Start the next run, or answer when none is left. */
static void etrn_next(struct etrn_job *job)
{
    while (job->next < job->d.ndomains) {
        if (etrn_spawn(job, job->d.domains[job->next++]))
            return;
        job->failed = true;
    }
    etrn_job_done(job);
}

/* Its output is closed: collect the exit status (a moment later if the
 * process is still exiting). */
static void etrn_reap(struct etrn_job *job)
{
    int status;
    pid_t got = waitpid(job->pid, &status, WNOHANG);
    if (got == 0) {
        struct timeval t = { 0, 20000 };
        evtimer_add(job->reap, &t);
        return;
    }
    const char *domain = job->d.domains[job->next - 1];
    while (job->outlen && (job->output[job->outlen - 1] == '\n' || job->output[job->outlen - 1] == '\r'))
        job->output[--job->outlen] = '\0';
    for (size_t i = 0; i < job->outlen; i++)
        if (job->output[i] == '\n' || job->output[i] == '\r')
            job->output[i] = ' ';
    if (got < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        job->failed = true;
        wp_warn("ETRN %s: postqueue -s %s failed (%s %d)%s%s", job->d.name, domain,
                got > 0 && WIFSIGNALED(status) ? "signal" : "exit status",
                got < 0 ? -1 : WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
                job->outlen ? ": " : "", job->output);
    } else {
        wp_info("ETRN %s: flushed %s", job->d.name, domain);
    }
    job->pid = 0;
    etrn_next(job);
}

/* The timer both starts the first run (from the event loop, so that an
 * answer never re-enters the request parser) and polls for an exit. */
static void on_etrn_reap(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct etrn_job *job = arg;
    if (job->pid > 0)
        etrn_reap(job);
    else
        etrn_next(job);
}

static void on_etrn_output(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct etrn_job *job = arg;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0) {
        size_t room = sizeof(job->output) - 1 - job->outlen;
        size_t take = (size_t)n < room ? (size_t)n : room;
        memcpy(job->output + job->outlen, buf, take);
        job->outlen += take;
        job->output[job->outlen] = '\0';
        return;
    }
    etrn_close_output(job);
    etrn_reap(job);
}

static void on_etrn_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct etrn_job *job = arg;
    wp_warn("ETRN %s: flushing the queue took over %d s; stopping", job->d.name, job->timeout);
    if (job->pid > 0) {
        kill(job->pid, SIGKILL);
        waitpid(job->pid, NULL, 0);
        job->pid = 0;
    }
    etrn_close_output(job);
    evtimer_del(job->reap);
    job->failed = true;
    job->next = job->d.ndomains;
    etrn_job_done(job);
}

/* An ETRN request: answer now, or start the flushes (true: the
 * connection now waits for the job's answer). */
bool wp_etrnjob_start(struct conn *c)
{
    const struct wp_snapshot *s = wp_server_snapshot(c->w);
    const struct wp_policy_request *req = &c->policy.req;
    struct wp_etrn_decision d;
    wp_etrn_decide(s->router, &wp_policyd_conf(s)->etrn, req->etrn_domain, req->client_address, req->sasl_username, &d);
    const char *who = req->sasl_username[0] ? req->sasl_username : "-";
    wp_pstats_log_etrn(req, &d);
    struct wp_pstats *stats = c->w->srv->stats;
    if (stats) {
        enum wp_pstats_etrn e = d.outcome == WP_ETRN_RELEASE  ? WP_PE_RELEASED
                                : d.outcome == WP_ETRN_REFUSE ? WP_PE_REFUSED
                                                              : WP_PE_PASS;
        wp_counter_add(&stats->workers[c->w->index].etrn[e], 1);
        wp_counter_add(&stats->workers[c->w->index].req[WP_PROTO_POLICY][WP_PSTATS_POLICY_MAP][WP_PA_ETRN], 1);
    }
    switch (d.outcome) {
    case WP_ETRN_PASS: wp_debug("ETRN %s from %s: not a held queue", d.name, req->client_address); break;
    case WP_ETRN_REFUSE:
        wp_notice("ETRN %s from %s (login %s): refused: %s", d.name[0] ? d.name : "(invalid)", req->client_address,
                  who, d.action);
        break;
    case WP_ETRN_RELEASE:
        wp_notice("ETRN %s from %s (login %s): releasing queue %s, %zu more merged domain%s", d.name,
                  req->client_address, who, d.queue, d.ndomains, d.ndomains == 1 ? "" : "s");
        break;
    }
    if (d.outcome != WP_ETRN_RELEASE || d.ndomains == 0) {
        wp_server_send_answer(c, false, "action=", d.action, "\n\n");
        wp_etrn_decision_free(&d);
        return false;
    }
    struct etrn_job *job = wp_calloc(1, sizeof(*job));
    job->c = c;
    job->d = d;
    job->out_fd = -1;
    job->postqueue = wp_strdup(wp_policyd_conf(s)->etrn.postqueue);
    job->config_directory = wp_strdup(s->postfix.config_directory);
    job->timeout = wp_policyd_conf(s)->etrn.timeout;
    job->deadline = evtimer_new(c->w->base, on_etrn_deadline, job);
    job->reap = evtimer_new(c->w->base, on_etrn_reap, job);
    struct timeval limit = { job->timeout, 0 };
    evtimer_add(job->deadline, &limit);
    c->job = job;
    event_active(job->reap, EV_TIMEOUT, 0);
    return true;
}

