/*
 * waypost-policyd - the Router answering Postfix over socketmap, tcp_table
 * and policy delegation.
 *
 *   waypost-policyd [-c FILE] [-f] [-t]
 *
 * One process, a few worker threads (policyd.threads, default one per
 * core).  Every worker runs its own libevent loop and accepts on every
 * listening socket, so connections spread over the cores; a connection
 * stays on the worker that accepted it.  All workers answer from one
 * immutable configuration snapshot; SIGHUP builds a new one and keeps the
 * old one if anything is wrong with it; each worker picks the new snapshot
 * up before its next request.  SIGTERM stops cleanly and removes the unix
 * sockets and the pidfile.
 *
 * Limits (policyd.*): max_connections (over it a new connection is closed
 * at once), idle_timeout (Postfix's tcp client never hangs up), max_request
 * (bytes in one request); a tcp_table reply never exceeds 4096 bytes.  A
 * malformed request gets its protocol's error (socketmap PERM, tcp 400)
 * and the connection is closed, or, for policy requests, just closed, as
 * SMTPD_POLICY_README asks; other connections are not affected.
 *
 * ETRN (smtpd_etrn_restrictions): when a client may release a held queue,
 * every domain merged into it is flushed with "postqueue -c
 * postfix.config_directory -s DOMAIN" before the answer (see etrn.h).  The
 * runs are spawned, one after the other, and watched by the worker's event
 * loop, which keeps serving other connections; only the asking connection
 * waits.  All runs of one ETRN together get policyd.etrn_timeout seconds;
 * then the running one is killed and the answer says the flush failed.
 */
#include "config.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "maps.h"
#include "snapshot.h"
#include "util.h"
#include "wire.h"

#ifndef WP_SYSCONFDIR
#define WP_SYSCONFDIR "/etc"
#endif

/* The daemon: built in main(), shared read-mostly by the workers. */
struct server {
    char *config_path;
    pthread_mutex_t lock;          /* guards current */
    struct wp_snapshot *current;   /* the snapshot new requests use */
    atomic_uint generation;        /* bumped on every successful reload */
    atomic_int connections;
    int max_connections;
    int idle_timeout;
    size_t max_request;
    struct wp_listen *listens;     /* from the startup snapshot: fixed until restart */
    int *fds;
    size_t nlisten;
    struct worker *workers;
    int nworkers;
};

struct worker {
    struct server *srv;
    pthread_t thread;
    struct event_base *base;
    struct evconnlistener **listeners;
    struct wp_snapshot *snap; /* this worker's reference */
    unsigned generation;
};

struct conn {
    struct worker *w;
    evutil_socket_t fd;
    struct event *rev;   /* persistent read event; its timeout is the idle timeout */
    struct event *wev;   /* write event, armed only while replies wait to be sent */
    struct evbuffer *in, *out;
    const struct wp_listen *listen;
    bool closing;        /* close once the output is flushed */
    bool reading;        /* rev is armed */
    size_t policy_bytes; /* bytes of the policy request read so far */
    struct wp_policy_request req;
    struct etrn_job *job; /* an ETRN release whose answer is pending: input waits */
};

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

#define OUTPUT_HIGH_WATER (64 * 1024) /* stop reading from a client that does not read its replies */

/* The snapshot for the next request: refreshed when a reload happened. */
static const struct wp_snapshot *worker_snapshot(struct worker *w)
{
    unsigned gen = atomic_load_explicit(&w->srv->generation, memory_order_acquire);
    if (gen != w->generation) {
        pthread_mutex_lock(&w->srv->lock);
        struct wp_snapshot *old = w->snap;
        w->snap = wp_snapshot_ref(w->srv->current);
        w->generation = atomic_load(&w->srv->generation);
        pthread_mutex_unlock(&w->srv->lock);
        wp_snapshot_unref(old);
    }
    return w->snap;
}

static void etrn_job_free(struct etrn_job *job);

static void conn_free(struct conn *c)
{
    if (c->job)
        etrn_job_free(c->job);
    event_free(c->rev);
    event_free(c->wev);
    evbuffer_free(c->in);
    evbuffer_free(c->out);
    evutil_closesocket(c->fd);
    atomic_fetch_sub(&c->w->srv->connections, 1);
    free(c);
}

static void conn_stop_reading(struct conn *c)
{
    if (c->reading) {
        event_del(c->rev);
        c->reading = false;
    }
}

/* Close after what was written has gone out. */
static void conn_close_after_flush(struct conn *c)
{
    c->closing = true;
    conn_stop_reading(c);
    if (c->job)
        return; /* the job's end closes it, after its answer */
    if (evbuffer_get_length(c->out) == 0)
        conn_free(c);
    else
        event_add(c->wev, NULL);
}

static void send_netstring(struct evbuffer *out, const char *payload)
{
    evbuffer_add_printf(out, "%zu:%s,", strlen(payload), payload);
}

/* ------------------------------------------------------------ socketmap */

/* Returns false when the connection must close. */
static bool serve_socketmap(struct conn *c, struct evbuffer *in, struct evbuffer *out)
{
    size_t max = c->w->srv->max_request;
    for (;;) {
        size_t have = evbuffer_get_length(in);
        if (have == 0)
            return true;
        size_t look = have < max + 16 ? have : max + 16;
        const char *buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)look);
        const char *payload;
        size_t plen, used;
        enum wp_wire_status st = wp_netstring_parse(buf, look, max, &payload, &plen, &used);
        if (st == WP_WIRE_MORE)
            return true;
        if (st != WP_WIRE_OK) {
            wp_notice("socketmap: %s request, closing", st == WP_WIRE_TOO_BIG ? "oversized" : "malformed");
            send_netstring(out, st == WP_WIRE_TOO_BIG ? "PERM request too large" : "PERM malformed netstring");
            return false;
        }
        char *text = wp_strndup(payload, plen);
        evbuffer_drain(in, used);
        char *space = strchr(text, ' ');
        char value[WP_TCP_REPLY_MAX];
        char reply[WP_TCP_REPLY_MAX + 16];
        bool keep = true;
        if (!space || space == text || memchr(text, '\0', plen) || !space[1]) {
            snprintf(reply, sizeof(reply), "PERM expected \"<map> <key>\"");
            keep = false;
        } else {
            *space = '\0';
            const char *map = text, *key = space + 1;
            enum wp_answer a = wp_map_lookup(worker_snapshot(c->w), map, key, value, sizeof(value));
            switch (a) {
            case WP_ANS_FOUND: snprintf(reply, sizeof(reply), "OK %s", value); break;
            case WP_ANS_NOTFOUND: snprintf(reply, sizeof(reply), "NOTFOUND "); break;
            case WP_ANS_TEMP: snprintf(reply, sizeof(reply), "TEMP %s", value); break;
            case WP_ANS_PERM: snprintf(reply, sizeof(reply), "PERM %s", value); break;
            }
            wp_debug("socketmap %s %s -> %s", map, key, reply);
        }
        free(text);
        send_netstring(out, reply);
        if (!keep)
            return false;
    }
}

/* ------------------------------------------------------------ tcp_table */

static bool serve_tcp(struct conn *c, struct evbuffer *in, struct evbuffer *out)
{
    size_t max = c->w->srv->max_request;
    for (;;) {
        size_t n;
        char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
        if (!line) {
            if (evbuffer_get_length(in) > max) {
                wp_notice("tcp_table: request line over %zu bytes, closing", max);
                evbuffer_add_printf(out, "400 request too large\n");
                return false;
            }
            return true;
        }
        if (n > 0 && line[n - 1] == '\r')
            line[--n] = '\0';
        long klen = -1;
        if (n > max) {
            evbuffer_add_printf(out, "400 request too large\n");
            free(line);
            return false;
        }
        if (n >= 4 && strncmp(line, "get ", 4) == 0 && !memchr(line, '\0', n))
            klen = wp_xdecode(line + 4, n - 4);
        if (klen <= 0) {
            wp_notice("tcp_table: malformed request, closing");
            evbuffer_add_printf(out, "400 malformed request\n");
            free(line);
            return false;
        }
        line[4 + klen] = '\0';
        const char *key = line + 4;
        char value[WP_TCP_REPLY_MAX], enc[WP_TCP_REPLY_MAX];
        enum wp_answer a = wp_map_lookup(worker_snapshot(c->w), c->listen->map, key, value, sizeof(value));
        bool keep = true;
        switch (a) {
        case WP_ANS_FOUND:
            /* "200 " + value + "\n" must fit in 4096 bytes. */
            if (wp_xencode(value, enc, WP_TCP_REPLY_MAX - 5)) {
                evbuffer_add_printf(out, "200 %s\n", enc);
            } else {
                wp_warn("tcp_table %s %s: answer longer than the 4096-byte limit", c->listen->map, key);
                evbuffer_add_printf(out, "400 answer too long for tcp_table\n");
            }
            break;
        case WP_ANS_NOTFOUND: evbuffer_add_printf(out, "500 not found\n"); break;
        case WP_ANS_TEMP:
        case WP_ANS_PERM:
            wp_xencode(value, enc, 512);
            evbuffer_add_printf(out, "400 %s\n", enc);
            keep = false; /* Postfix closes after a 400 anyway */
            break;
        }
        wp_debug("tcp %s %s -> %d", c->listen->map, key, (int)a);
        free(line);
        if (!keep)
            return false;
    }
}

/* ------------------------------------------------------------ ETRN */

static bool process_input(struct conn *c);
static bool flush_output(struct conn *c);

static void etrn_job_free(struct etrn_job *job)
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
    evbuffer_add_printf(c->out, "action=%s\n\n", action);
    c->job = NULL;
    etrn_job_free(job);
    if (c->closing) {
        conn_close_after_flush(c);
        return;
    }
    if (!flush_output(c)) {
        conn_free(c);
        return;
    }
    if (!c->reading && evbuffer_get_length(c->out) == 0) {
        struct timeval idle = { c->w->srv->idle_timeout, 0 };
        event_add(c->rev, &idle);
        c->reading = true;
    }
    if (c->reading && evbuffer_get_length(c->in))
        process_input(c); /* requests that arrived meanwhile */
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
static bool serve_etrn(struct conn *c, struct evbuffer *out)
{
    const struct wp_snapshot *s = worker_snapshot(c->w);
    const struct wp_policy_request *req = &c->req;
    struct wp_etrn_decision d;
    wp_etrn_decide(s->router, &s->policyd.etrn, req->etrn_domain, req->client_address, req->sasl_username, &d);
    const char *who = req->sasl_username[0] ? req->sasl_username : "-";
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
        evbuffer_add_printf(out, "action=%s\n\n", d.action);
        wp_etrn_decision_free(&d);
        return false;
    }
    struct etrn_job *job = wp_calloc(1, sizeof(*job));
    job->c = c;
    job->d = d;
    job->out_fd = -1;
    job->postqueue = wp_strdup(s->policyd.etrn.postqueue);
    job->config_directory = wp_strdup(s->postfix.config_directory);
    job->timeout = s->policyd.etrn.timeout;
    job->deadline = evtimer_new(c->w->base, on_etrn_deadline, job);
    job->reap = evtimer_new(c->w->base, on_etrn_reap, job);
    struct timeval limit = { job->timeout, 0 };
    evtimer_add(job->deadline, &limit);
    c->job = job;
    event_active(job->reap, EV_TIMEOUT, 0);
    return true;
}

/* ------------------------------------------------------------ policy */

static bool serve_policy(struct conn *c, struct evbuffer *in, struct evbuffer *out)
{
    size_t max = c->w->srv->max_request;
    char line[WP_ATTR_VALUE_MAX + 128];
    for (;;) {
        /* Find the end of the next line without copying (no malloc per line). */
        struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
        if (eol.pos < 0) {
            if (c->policy_bytes + evbuffer_get_length(in) > max) {
                wp_notice("policy: request over %zu bytes, closing", max);
                return false;
            }
            return true;
        }
        size_t n = (size_t)eol.pos;
        c->policy_bytes += n + 1;
        if (c->policy_bytes > max) {
            wp_notice("policy: request too large, closing");
            return false;
        }
        if (n >= sizeof(line)) {
            /* Longer than any value we keep: fine for an attribute we
             * ignore (ccert_subject, say), too long for one we use. */
            char name[64];
            size_t k = evbuffer_copyout(in, name, sizeof(name) - 1);
            name[k] = '\0';
            char *eq = strchr(name, '=');
            if (!eq || wp_policy_attr_kept((*eq = '\0', name))) {
                wp_notice("policy: attribute line of %zu bytes, closing", n);
                return false;
            }
            evbuffer_drain(in, n + 1);
            continue;
        }
        evbuffer_remove(in, line, n + 1);
        line[n] = '\0';
        if (memchr(line, '\0', n)) {
            wp_notice("policy: NUL byte in request, closing");
            return false;
        }
        if (n > 0 && line[n - 1] == '\r')
            line[--n] = '\0';
        if (n == 0) {
            if (strcmp(c->req.request, "smtpd_access_policy") != 0) {
                wp_notice("policy: request without request=smtpd_access_policy, closing");
                return false;
            }
            if (strcmp(c->req.protocol_state, "ETRN") == 0) {
                bool waiting = serve_etrn(c, out);
                memset(&c->req, 0, sizeof(c->req));
                c->policy_bytes = 0;
                if (waiting)
                    return true; /* the rest of the input waits for the job's answer */
                continue;
            }
            char action[WP_ROUTE_TEXT_MAX + 64];
            wp_policy_decide(worker_snapshot(c->w), &c->req, action, sizeof(action));
            wp_debug("policy %s %s from %s -> %s", c->req.protocol_state, c->req.recipient,
                     c->req.client_address, action);
            evbuffer_add_printf(out, "action=%s\n\n", action);
            memset(&c->req, 0, sizeof(c->req));
            c->policy_bytes = 0;
            continue;
        }
        char *eq = strchr(line, '=');
        if (!eq || eq == line) {
            wp_notice("policy: line without name=value, closing");
            return false;
        }
        *eq = '\0';
        if (!wp_policy_attr(&c->req, line, eq + 1)) {
            wp_notice("policy: attribute %s too long, closing", line);
            return false;
        }
    }
}

/* ------------------------------------------------------------ events */

static void on_write(evutil_socket_t fd, short what, void *arg);

/* Send what we can now; arm the write event only for what is left, so the
 * usual request/answer round trip costs no epoll_ctl at all. */
static bool flush_output(struct conn *c)
{
    while (evbuffer_get_length(c->out) > 0) {
        int n = evbuffer_write(c->out, c->fd);
        if (n < 0) {
            int e = EVUTIL_SOCKET_ERROR();
            if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR)
                break;
            return false;
        }
        if (n == 0)
            break;
    }
    if (evbuffer_get_length(c->out) > 0) {
        struct timeval idle = { c->w->srv->idle_timeout, 0 }; /* a client that never reads */
        event_add(c->wev, &idle);
    }
    return true;
}

/* Answer every complete request.  Returns false if the connection is gone
 * or closing. */
static bool process_input(struct conn *c)
{
    bool keep;
    switch (c->listen->proto) {
    case WP_PROTO_SOCKETMAP: keep = serve_socketmap(c, c->in, c->out); break;
    case WP_PROTO_TCP: keep = serve_tcp(c, c->in, c->out); break;
    default: keep = serve_policy(c, c->in, c->out); break;
    }
    if (!flush_output(c)) {
        conn_free(c);
        return false;
    }
    if (!keep) {
        conn_close_after_flush(c);
        return false;
    }
    if (c->job) {
        conn_stop_reading(c); /* etrn_job_done resumes */
        return true;
    }
    if (evbuffer_get_length(c->out) > OUTPUT_HIGH_WATER)
        conn_stop_reading(c); /* on_write resumes once drained */
    return true;
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    if (what & EV_TIMEOUT) {
        wp_debug("closing an idle connection");
        conn_free(c);
        return;
    }
    /* recv() into a stack buffer: evbuffer_read() would first ask the
     * kernel how much is readable, one more system call per request. */
    char buf[16384];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n > 0)
        evbuffer_add(c->in, buf, (size_t)n);
    if (n < 0) {
        int e = EVUTIL_SOCKET_ERROR();
        if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR)
            return;
        wp_debug("connection error: %s", strerror(e));
        conn_free(c);
        return;
    }
    if (n == 0) {
        /* EOF (or half-close): answer what is complete, then close once it is sent. */
        if (process_input(c))
            conn_close_after_flush(c);
        return;
    }
    process_input(c);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct conn *c = arg;
    if (what & EV_TIMEOUT) {
        conn_free(c);
        return;
    }
    if (!flush_output(c)) {
        conn_free(c);
        return;
    }
    if (evbuffer_get_length(c->out) > 0)
        return;
    if (c->closing) {
        if (!c->job)
            conn_free(c);
        return;
    }
    if (!c->reading && !c->job) {
        struct timeval idle = { c->w->srv->idle_timeout, 0 };
        event_add(c->rev, &idle);
        c->reading = true;
        if (evbuffer_get_length(c->in))
            process_input(c); /* requests that waited while we were not reading */
    }
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    (void)l;
    (void)salen;
    struct worker *w = arg;
    struct server *srv = w->srv;
    size_t idx = 0;
    evutil_socket_t lfd = evconnlistener_get_fd(l);
    while (idx < srv->nlisten && srv->fds[idx] != lfd)
        idx++;
    if (atomic_fetch_add(&srv->connections, 1) >= srv->max_connections) {
        atomic_fetch_sub(&srv->connections, 1);
        wp_warn("connection limit (%d) reached: refusing a connection on %s", srv->max_connections,
                srv->listens[idx].text);
        evutil_closesocket(fd);
        return;
    }
    if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    struct conn *c = wp_calloc(1, sizeof(*c));
    c->w = w;
    c->fd = fd;
    c->listen = &srv->listens[idx];
    evutil_make_socket_nonblocking(fd);
    c->in = evbuffer_new();
    c->out = evbuffer_new();
    c->rev = event_new(w->base, fd, EV_READ | EV_PERSIST, on_read, c);
    c->wev = event_new(w->base, fd, EV_WRITE, on_write, c);
    struct timeval idle = { srv->idle_timeout, 0 };
    event_add(c->rev, &idle);
    c->reading = true;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    event_base_dispatch(w->base);
    return NULL;
}

/* ------------------------------------------------------------ control */

static void reload(struct server *srv)
{
    struct wp_snapshot *s = wp_snapshot_reload(srv->config_path);
    if (!s)
        return;
    bool same_listen = s->policyd.nlisten == srv->nlisten;
    for (size_t i = 0; same_listen && i < srv->nlisten; i++)
        same_listen = strcmp(s->policyd.listen[i].text, srv->listens[i].text) == 0;
    if (!same_listen)
        wp_warn("reload: policyd.listen changed; the new endpoints take effect at the next restart");
    pthread_mutex_lock(&srv->lock);
    struct wp_snapshot *old = srv->current;
    srv->current = s;
    atomic_fetch_add_explicit(&srv->generation, 1, memory_order_release);
    pthread_mutex_unlock(&srv->lock);
    wp_snapshot_unref(old);
    wp_notice("reloaded %s: %u router records", srv->config_path, s->router->table->nrecs);
}

struct control {
    struct server *srv;
    struct event_base *base;
};

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct control *ctl = arg;
    if (sig == SIGHUP) {
        reload(ctl->srv);
        return;
    }
    wp_notice("stopping on signal %d", (int)sig);
    event_base_loopbreak(ctl->base);
}

int main(int argc, char **argv)
{
    struct wp_daemon_args args;
    int rc0 = wp_daemon_args("waypost-policyd", WP_SYSCONFDIR "/waypost/waypost.conf", argc, argv, &args);
    if (rc0 >= 0)
        return rc0;
    bool foreground = args.foreground, test_only = args.test_only;
    wp_log_open("waypost-policyd", false, NULL, WP_LOG_INFO);

    struct server srv;
    memset(&srv, 0, sizeof(srv));
    struct wp_snapshot *snap = wp_snapshot_load_startup(args.config, &srv.config_path);
    if (!snap || snap->policyd.nlisten == 0 || test_only) {
        int rc = 1;
        if (snap && snap->policyd.nlisten == 0)
            fprintf(stderr, "%s: policyd.listen names no endpoint\n", srv.config_path);
        else if (snap) {
            printf("%s: OK\n", srv.config_path);
            rc = 0;
        }
        wp_snapshot_unref(snap);
        free(srv.config_path);
        return rc;
    }
    const struct wp_policyd_conf *pc = &snap->policyd;
    srv.current = snap;
    srv.max_connections = pc->max_connections;
    srv.idle_timeout = pc->idle_timeout;
    srv.max_request = (size_t)pc->max_request;
    srv.nlisten = pc->nlisten;
    srv.listens = pc->listen; /* owned by the startup snapshot, which we keep */
    wp_snapshot_ref(snap);
    pthread_mutex_init(&srv.lock, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Sockets first, while we may still be root. */
    srv.fds = wp_calloc(srv.nlisten, sizeof(int));
    for (size_t i = 0; i < srv.nlisten; i++) {
        char why[256];
        srv.fds[i] = wp_listen_socket(&pc->listen[i].ep, pc->socket_mode, pc->socket_owner, pc->socket_group,
                                      why, sizeof(why));
        if (srv.fds[i] < 0) {
            fprintf(stderr, "waypost-policyd: cannot listen on %s: %s\n", pc->listen[i].text, why);
            for (size_t k = 0; k < i; k++) {
                close(srv.fds[k]);
                if (pc->listen[k].ep.family == WP_EP_UNIX)
                    unlink(pc->listen[k].ep.path);
            }
            free(srv.fds);
            wp_snapshot_unref(snap);
            wp_snapshot_unref(snap);
            free(srv.config_path);
            return 1;
        }
    }
    char why[256];
    if (!foreground && !wp_daemonize(why, sizeof(why))) {
        fprintf(stderr, "waypost-policyd: %s\n", why);
        return 1;
    }
    wp_log_open("waypost-policyd", !foreground, snap->log_facility, snap->log_level);
    if (pc->pidfile[0] && !wp_pidfile_write(pc->pidfile, why, sizeof(why))) {
        wp_err("%s", why);
        return 1;
    }
    if (!wp_drop_privileges(pc->user, why, sizeof(why))) {
        wp_err("%s", why);
        return 1;
    }

    evthread_use_pthreads();
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    srv.nworkers = pc->threads > 0 ? pc->threads : (int)(cores > 0 ? cores : 1);
    srv.workers = wp_calloc((size_t)srv.nworkers, sizeof(*srv.workers));
    for (int i = 0; i < srv.nworkers; i++) {
        struct worker *w = &srv.workers[i];
        w->srv = &srv;
        w->base = event_base_new();
        w->snap = wp_snapshot_ref(snap);
        w->generation = 0;
        w->listeners = wp_calloc(srv.nlisten, sizeof(*w->listeners));
        for (size_t k = 0; k < srv.nlisten; k++) {
            w->listeners[k] = evconnlistener_new(w->base, on_accept, w, LEV_OPT_CLOSE_ON_EXEC, -1, srv.fds[k]);
            if (!w->listeners[k]) {
                wp_err("cannot listen on %s", srv.listens[k].text);
                return 1;
            }
        }
    }
    for (int i = 0; i < srv.nworkers; i++)
        pthread_create(&srv.workers[i].thread, NULL, worker_main, &srv.workers[i]);

    struct control ctl = { &srv, event_base_new() };
    struct event *sighup = evsignal_new(ctl.base, SIGHUP, on_signal, &ctl);
    struct event *sigterm = evsignal_new(ctl.base, SIGTERM, on_signal, &ctl);
    struct event *sigint = evsignal_new(ctl.base, SIGINT, on_signal, &ctl);
    event_add(sighup, NULL);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    wp_notice("ready: %zu endpoint%s, %d worker thread%s, %u router records", srv.nlisten,
              srv.nlisten == 1 ? "" : "s", srv.nworkers, srv.nworkers == 1 ? "" : "s",
              snap->router->table->nrecs);
    event_base_dispatch(ctl.base);

    /* Stop: no new connections, finish the loops, clean up what we created. */
    for (int i = 0; i < srv.nworkers; i++)
        event_base_loopbreak(srv.workers[i].base);
    for (int i = 0; i < srv.nworkers; i++)
        pthread_join(srv.workers[i].thread, NULL);
    for (size_t k = 0; k < srv.nlisten; k++) {
        close(srv.fds[k]);
        if (srv.listens[k].ep.family == WP_EP_UNIX)
            unlink(srv.listens[k].ep.path);
    }
    if (snap->policyd.pidfile[0])
        unlink(snap->policyd.pidfile);
    for (int i = 0; i < srv.nworkers; i++) {
        for (size_t k = 0; k < srv.nlisten; k++)
            evconnlistener_free(srv.workers[i].listeners[k]);
        free(srv.workers[i].listeners);
        wp_snapshot_unref(srv.workers[i].snap);
        /* connections still open are dropped with their base */
        event_base_free(srv.workers[i].base);
    }
    event_free(sighup);
    event_free(sigterm);
    event_free(sigint);
    event_base_free(ctl.base);
    wp_snapshot_unref(srv.current);
    wp_snapshot_unref(snap);
    free(srv.workers);
    free(srv.fds);
    free(srv.config_path);
    wp_notice("stopped");
    return 0;
}
