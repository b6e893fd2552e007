/* SPDX-License-Identifier: MIT */
/*
 * waypost-policyd - the Router answering Postfix over socketmap, tcp_table
 * and policy delegation.
 *
 *   waypost-policyd [-c FILE] [-f] [-t]
 *
 * One process, a few worker threads (policyd.threads, default one per
 * core), each running its own libevent loop.  The main thread accepts the
 * connections and hands each one to the worker with the fewest, where it
 * stays.  All workers answer from one immutable configuration snapshot;
 * SIGHUP builds a new one and keeps the old one if anything is wrong with
 * it; each worker picks the new snapshot up before its next request.
 * SIGTERM stops cleanly and removes the unix sockets and the pidfile.
 *
 * The request path is kept short, because Postfix asks once per recipient
 * and per lookup table: a request is read into the connection's own buffer
 * and parsed where it lies, the answer is formatted into the output buffer
 * without printf, and all answers to one read leave in one write; no timer
 * is touched per request (the idle timeout is a sweep once a second).
 *
 * Limits (policyd.*): max_connections (over it a new connection is closed
 * at once), idle_timeout (Postfix's tcp client never hangs up; a connection
 * is closed within a second after it), max_request (bytes in one request);
 * a tcp_table reply never exceeds 4096 bytes.  A
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
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/daemon.h"
#include "lib/log.h"
#include "policy/maps.h"
#include "policy/settings.h"
#include "policy/sendbatch.h"
#include "state/snapshot.h"
#include "lib/util.h"
#include "lib/wire.h"

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
    struct evconnlistener **listeners; /* in main()'s event base */
    struct worker *workers;
    int nworkers;
    int next_worker;               /* where the search for the least busy worker starts */
};

struct conn;

/* A worker owns its event base outright (no other thread touches it, so the
 * base runs without locks) and every connection handed to it. */
struct worker {
    struct server *srv;
    pthread_t thread;
    struct event_base *base;
    struct event *tick;       /* once a second: the clock of the idle timeout */
    int tick_fd;              /* the timerfd behind it */
    struct event *inbox;      /* new connections (and the stop message) from main() */
    int inbox_fds[2];         /* a pipe: read end, write end */
    atomic_int nconns;        /* open connections, read by main() to balance the load */
    unsigned ticks;           /* seconds since the worker started */
    struct conn *conns;       /* every open connection, for the idle sweep */
    struct conn *flush_head;  /* connections with answers to send at the end of this pass */
    struct wp_snapshot *snap; /* this worker's reference */
    unsigned generation;
    struct wp_sendbatch batch; /* the answers of one pass (see flush_queued) */
};

/*
 * One client connection.  Requests are read straight into `in` and parsed
 * where they lie; answers are formatted straight into `out` and sent with
 * one write for all the requests one read brought (Postfix sends one at a
 * time, so usually one read, one answer, one write), at the end of the
 * event-loop pass (see process_input).
 */
struct conn {
    struct worker *w;
    struct conn *prev, *next; /* the worker's list */
    evutil_socket_t fd;
    struct event *rev;   /* persistent read event, armed while we read */
    struct event *wev;   /* write event, armed only while answers wait to be sent */
    const struct wp_listen *listen;
    bool closing;        /* close once the output is flushed */
    bool reading;        /* rev is armed */
    unsigned last_active; /* worker tick of the last byte read or written */
    char *in;            /* unparsed request bytes */
    size_t in_len, in_cap, in_max;
    char *out;           /* answers not yet written: out[out_sent .. out_len) */
    size_t out_len, out_sent, out_cap;
    size_t policy_bytes; /* bytes of the policy request parsed so far */
    struct wp_policy_request req;
    struct etrn_job *job; /* an ETRN release whose answer is pending: input waits */
    struct conn *flush_next; /* on the worker's flush list */
    bool flush_queued;
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

/* Stop answering (and reading) while more than this waits to be written:
 * a client that does not read its answers cannot make us buffer more. */
#define OUTPUT_HIGH_WATER (64 * 1024)
#define INPUT_INITIAL 4096
#define OUTPUT_INITIAL 4096
/* A netstring header ("<9 digits>:" and ","), or "get " and "\r\n", on top
 * of max_request: the input buffer always holds one whole request. */
#define FRAMING_MAX 16

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
    if (c->flush_queued) /* the list holds the connections of one pass: short */
        for (struct conn **p = &c->w->flush_head; *p; p = &(*p)->flush_next)
            if (*p == c) {
                *p = c->flush_next;
                break;
            }
    if (c->prev)
        c->prev->next = c->next;
    else
        c->w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    event_free(c->rev);
    event_free(c->wev);
    free(c->in);
    free(c->out);
    evutil_closesocket(c->fd);
    atomic_fetch_sub(&c->w->srv->connections, 1);
    atomic_fetch_sub(&c->w->nconns, 1);
    free(c);
}

static void conn_stop_reading(struct conn *c)
{
    if (c->reading) {
        event_del(c->rev);
        c->reading = false;
    }
}

static size_t output_pending(const struct conn *c)
{
    return c->out_len - c->out_sent;
}

/* Close after what was written has gone out. */
static void conn_close_after_flush(struct conn *c)
{
    c->closing = true;
    conn_stop_reading(c);
    if (c->job)
        return; /* the job's end closes it, after its answer */
    if (output_pending(c) == 0)
        conn_free(c);
    else
        event_add(c->wev, NULL);
}

/* ------------------------------------------------------------ answers */

/* Room for n more bytes of output. */
static char *output_reserve(struct conn *c, size_t n)
{
    if (c->out_sent > 0 && c->out_sent == c->out_len)
        c->out_sent = c->out_len = 0;
    if (c->out_cap - c->out_len < n) {
        if (c->out_sent > 0) { /* move the unsent rest to the front first */
            memmove(c->out, c->out + c->out_sent, c->out_len - c->out_sent);
            c->out_len -= c->out_sent;
            c->out_sent = 0;
        }
        size_t cap = c->out_cap ? c->out_cap : OUTPUT_INITIAL;
        while (cap - c->out_len < n)
            cap *= 2;
        if (cap != c->out_cap) {
            c->out = wp_realloc(c->out, cap);
            c->out_cap = cap;
        }
    }
    return c->out + c->out_len;
}

/* Append the concatenation of up to three strings; b and c may be NULL.
 * As a netstring when `netstring` is set.  Answers are formatted by hand:
 * this runs once per request, and printf would cost more than the lookup. */
static void send_answer(struct conn *c, bool netstring, const char *a, const char *b, const char *d)
{
    size_t la = strlen(a), lb = b ? strlen(b) : 0, ld = d ? strlen(d) : 0;
    size_t len = la + lb + ld;
    char *p = output_reserve(c, len + 24), *start = p;
    if (netstring) {
        char digits[24];
        size_t k = 0, v = len;
        do
            digits[k++] = (char)('0' + v % 10);
        while ((v /= 10) > 0);
        while (k > 0)
            *p++ = digits[--k];
        *p++ = ':';
    }
    memcpy(p, a, la);
    p += la;
    if (lb)
        memcpy(p, b, lb);
    p += lb;
    if (ld)
        memcpy(p, d, ld);
    p += ld;
    if (netstring)
        *p++ = ',';
    c->out_len += (size_t)(p - start);
}

/* ------------------------------------------------------------ socketmap */

/* Answer the complete requests in in[0 .. len); *used receives how many
 * bytes they took.  Returns false when the connection must close. */
static bool serve_socketmap(struct conn *c, char *in, size_t len, size_t *used)
{
    size_t max = c->w->srv->max_request;
    size_t pos = 0;
    bool keep = true;
    while (pos < len && output_pending(c) <= OUTPUT_HIGH_WATER) {
        const char *payload_c;
        size_t plen, frame;
        enum wp_wire_status st = wp_netstring_parse(in + pos, len - pos, max, &payload_c, &plen, &frame);
        if (st == WP_WIRE_MORE)
            break;
        if (st != WP_WIRE_OK) {
            wp_notice("socketmap: %s request, closing", st == WP_WIRE_TOO_BIG ? "oversized" : "malformed");
            send_answer(c, true, st == WP_WIRE_TOO_BIG ? "PERM request too large" : "PERM malformed netstring",
                        NULL, NULL);
            keep = false;
            break;
        }
        /* The frame is ours now: terminate the payload on its ',' and split
         * "<map> <key>" on the first space, in place. */
        char *text = in + pos + (size_t)(payload_c - (in + pos));
        pos += frame;
        text[plen] = '\0';
        char *space = memchr(text, ' ', plen);
        if (!space || space == text || memchr(text, '\0', plen) || !space[1]) {
            send_answer(c, true, "PERM expected \"<map> <key>\"", NULL, NULL);
            keep = false;
            break;
        }
        *space = '\0';
        const char *map = text, *key = space + 1;
        char value[WP_TCP_REPLY_MAX];
        enum wp_map m;
        enum wp_answer a = WP_ANS_PERM;
        if (wp_map_parse(map, (size_t)(space - text), &m))
            a = wp_map_lookup(worker_snapshot(c->w), m, key, value, sizeof(value));
        else
            snprintf(value, sizeof(value), "unknown map %.64s", map); /* only for a misconfigured client */
        switch (a) {
        case WP_ANS_FOUND: send_answer(c, true, "OK ", value, NULL); break;
        case WP_ANS_NOTFOUND: send_answer(c, true, "NOTFOUND ", NULL, NULL); break;
        case WP_ANS_TEMP: send_answer(c, true, "TEMP ", value, NULL); break;
        case WP_ANS_PERM: send_answer(c, true, "PERM ", value, NULL); break;
        }
        wp_debug("socketmap %s %s -> %d %s", map, key, (int)a, value);
    }
    *used = pos;
    return keep;
}

/* ------------------------------------------------------------ tcp_table */

static bool serve_tcp(struct conn *c, char *in, size_t len, size_t *used)
{
    size_t max = c->w->srv->max_request;
    size_t pos = 0;
    bool keep = true;
    while (pos < len && output_pending(c) <= OUTPUT_HIGH_WATER) {
        char *line = in + pos;
        char *nl = memchr(line, '\n', len - pos);
        if (!nl) {
            if (len - pos > max) {
                wp_notice("tcp_table: request line over %zu bytes, closing", max);
                send_answer(c, false, "400 request too large\n", NULL, NULL);
                keep = false;
            }
            break;
        }
        size_t n = (size_t)(nl - line);
        pos += n + 1;
        if (n > 0 && line[n - 1] == '\r')
            n--;
        line[n] = '\0';
        if (n > max) {
            send_answer(c, false, "400 request too large\n", NULL, NULL);
            keep = false;
            break;
        }
        long klen = -1;
        if (n >= 4 && strncmp(line, "get ", 4) == 0 && !memchr(line, '\0', n))
            klen = wp_xdecode(line + 4, n - 4);
        if (klen <= 0) {
            wp_notice("tcp_table: malformed request, closing");
            send_answer(c, false, "400 malformed request\n", NULL, NULL);
            keep = false;
            break;
        }
        line[4 + klen] = '\0';
        const char *key = line + 4;
        char value[WP_TCP_REPLY_MAX], enc[WP_TCP_REPLY_MAX];
        enum wp_answer a = wp_map_lookup(worker_snapshot(c->w), c->listen->map, key, value, sizeof(value));
        switch (a) {
        case WP_ANS_FOUND:
            /* "200 " + value + "\n" must fit in 4096 bytes. */
            if (wp_xencode(value, enc, WP_TCP_REPLY_MAX - 5)) {
                send_answer(c, false, "200 ", enc, "\n");
            } else {
                wp_warn("tcp_table %s %s: answer longer than the 4096-byte limit", wp_map_name(c->listen->map), key);
                send_answer(c, false, "400 answer too long for tcp_table\n", NULL, NULL);
            }
            break;
        case WP_ANS_NOTFOUND: send_answer(c, false, "500 not found\n", NULL, NULL); break;
        case WP_ANS_TEMP:
        case WP_ANS_PERM:
            wp_xencode(value, enc, 512);
            send_answer(c, false, "400 ", enc, "\n");
            keep = false; /* Postfix closes after a 400 anyway */
            break;
        }
        wp_debug("tcp %s %s -> %d", wp_map_name(c->listen->map), key, (int)a);
        if (!keep)
            break;
    }
    *used = pos;
    return keep;
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
    send_answer(c, false, "action=", action, "\n\n");
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
    c->last_active = c->w->ticks; /* the idle time starts again after the answer */
    if (!c->reading && output_pending(c) == 0) {
        event_add(c->rev, NULL);
        c->reading = true;
    }
    if (c->reading && c->in_len)
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
static bool serve_etrn(struct conn *c)
{
    const struct wp_snapshot *s = worker_snapshot(c->w);
    const struct wp_policy_request *req = &c->req;
    struct wp_etrn_decision d;
    wp_etrn_decide(s->router, &wp_policyd_conf(s)->etrn, req->etrn_domain, req->client_address, req->sasl_username, &d);
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
        send_answer(c, false, "action=", d.action, "\n\n");
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

/* ------------------------------------------------------------ policy */

/* Attribute lines are taken one by one as they arrive (a request may come
 * in several reads); the empty line ends the request. */
static bool serve_policy(struct conn *c, char *in, size_t len, size_t *used)
{
    size_t max = c->w->srv->max_request;
    size_t pos = 0;
    bool keep = true;
    /* No line may hold a NUL byte: one search over everything read, not
     * one per line. */
    const char *nul = memchr(in, '\0', len);
    while (pos < len && output_pending(c) <= OUTPUT_HIGH_WATER) {
        char *line = in + pos;
        char *nl = memchr(line, '\n', len - pos);
        if (!nl) {
            if (c->policy_bytes + (len - pos) > max) {
                wp_notice("policy: request over %zu bytes, closing", max);
                keep = false;
            }
            break;
        }
        size_t n = (size_t)(nl - line);
        pos += n + 1;
        c->policy_bytes += n + 1;
        if (c->policy_bytes > max) {
            wp_notice("policy: request too large, closing");
            keep = false;
            break;
        }
        if (nul && nul < nl) {
            wp_notice("policy: NUL byte in request, closing");
            keep = false;
            break;
        }
        if (n > 0 && line[n - 1] == '\r')
            n--;
        line[n] = '\0';
        if (n == 0) {
            if (strcmp(c->req.request, "smtpd_access_policy") != 0) {
                wp_notice("policy: request without request=smtpd_access_policy, closing");
                keep = false;
                break;
            }
            if (strcmp(c->req.protocol_state, "ETRN") == 0) {
                bool waiting = serve_etrn(c);
                wp_policy_request_clear(&c->req);
                c->policy_bytes = 0;
                if (waiting) {
                    *used = pos;
                    return true; /* the rest of the input waits for the job's answer */
                }
                continue;
            }
            char action[WP_ROUTE_TEXT_MAX + 64];
            wp_policy_decide(worker_snapshot(c->w), &c->req, action, sizeof(action));
            wp_debug("policy %s %s from %s -> %s", c->req.protocol_state, c->req.recipient,
                     c->req.client_address, action);
            send_answer(c, false, "action=", action, "\n\n");
            wp_policy_request_clear(&c->req);
            c->policy_bytes = 0;
            continue;
        }
        char *eq = memchr(line, '=', n);
        if (!eq || eq == line) {
            wp_notice("policy: line without name=value, closing");
            keep = false;
            break;
        }
        *eq = '\0';
        size_t name_len = (size_t)(eq - line);
        int k = wp_policy_kept_index(line, name_len);
        if (k >= 0 && !wp_policy_attr_set(&c->req, (enum wp_policy_kept)k, eq + 1, n - name_len - 1)) {
            wp_notice("policy: attribute %s too long, closing", line);
            keep = false;
            break;
        }
    }
    *used = pos;
    return keep;
}

/* ------------------------------------------------------------ events */

/* Send what we can now; arm the write event only for what is left, so the
 * usual request/answer round trip costs one write and no epoll_ctl. */
static bool flush_output(struct conn *c)
{
    while (output_pending(c) > 0) {
        ssize_t n = send(c->fd, c->out + c->out_sent, output_pending(c), MSG_NOSIGNAL);
        if (n < 0) {
            int e = EVUTIL_SOCKET_ERROR();
            if (e == EINTR)
                continue;
            if (e == EAGAIN || e == EWOULDBLOCK)
                break;
            return false;
        }
        c->out_sent += (size_t)n;
        c->last_active = c->w->ticks;
    }
    if (output_pending(c) == 0)
        c->out_sent = c->out_len = 0;
    else
        event_add(c->wev, NULL); /* a client that never reads: the idle sweep closes it */
    return true;
}

/* Answer every complete request (while the output is not backed up).
 * Returns false if the connection is gone or closing. */
static bool process_input(struct conn *c)
{
    size_t used = 0;
    bool keep;
    switch (c->listen->proto) {
    case WP_PROTO_SOCKETMAP: keep = serve_socketmap(c, c->in, c->in_len, &used); break;
    case WP_PROTO_TCP: keep = serve_tcp(c, c->in, c->in_len, &used); break;
    default: keep = serve_policy(c, c->in, c->in_len, &used); break;
    }
    if (used > 0) {
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
    }
    if (keep && !c->job) {
        /* The usual case: the answers go out at the end of this pass of
         * the event loop, with those of every other connection that was
         * ready.  Sending wakes the client, and a client woken in the
         * middle of the pass would take the CPU from the worker with the
         * other answers still unwritten. */
        if (output_pending(c) > 0 && !c->flush_queued) {
            c->flush_queued = true;
            c->flush_next = c->w->flush_head;
            c->w->flush_head = c;
        }
        if (output_pending(c) > OUTPUT_HIGH_WATER)
            conn_stop_reading(c); /* on_write resumes once drained */
        return true;
    }
    if (!flush_output(c)) {
        conn_free(c);
        return false;
    }
    if (!keep) {
        conn_close_after_flush(c);
        return false;
    }
    conn_stop_reading(c); /* an ETRN job: etrn_job_done resumes */
    return true;
}

/* The fate of one answer of the batch: what is left goes out through the
 * connection's write event. */
static void batch_sent(void *arg, ssize_t result)
{
    struct conn *c = arg;
    if (result > 0) {
        c->out_sent += (size_t)result;
        c->last_active = c->w->ticks;
    } else if (result != -EAGAIN) {
        wp_debug("connection error: %s", strerror((int)-result));
        conn_free(c);
        return;
    }
    if (!flush_output(c))
        conn_free(c);
    else if (c->closing && !c->job && output_pending(c) == 0)
        conn_free(c);
}

/* Send the answers of this pass (see process_input), all in one system
 * call where io_uring is there (see sendbatch.h for why). */
static void flush_queued(struct worker *w)
{
    struct conn *c;
    while ((c = w->flush_head) != NULL) {
        w->flush_head = c->flush_next;
        c->flush_queued = false;
        wp_sendbatch_add(&w->batch, c->fd, c->out + c->out_sent, output_pending(c), c);
        if (wp_sendbatch_full(&w->batch))
            wp_sendbatch_run(&w->batch, batch_sent);
    }
    wp_sendbatch_run(&w->batch, batch_sent);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct conn *c = arg;
    if (c->in_len == c->in_cap) {
        /* Grow up to one whole request; a full buffer at in_max holds a
         * request the parsers have already refused. */
        size_t cap = c->in_cap ? c->in_cap * 2 : INPUT_INITIAL;
        if (cap > c->in_max)
            cap = c->in_max;
        if (cap == c->in_cap) {
            conn_close_after_flush(c);
            return;
        }
        c->in = wp_realloc(c->in, cap);
        c->in_cap = cap;
    }
    /* One read per readiness: the loop is level-triggered and calls again
     * if more is there, and a second read would mostly find nothing. */
    ssize_t n = recv(fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
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
    c->in_len += (size_t)n;
    c->last_active = c->w->ticks;
    process_input(c);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (!flush_output(c)) {
        conn_free(c);
        return;
    }
    if (output_pending(c) > 0)
        return;
    if (c->closing) {
        if (!c->job)
            conn_free(c);
        return;
    }
    if (!c->reading && !c->job) {
        event_add(c->rev, NULL);
        c->reading = true;
        if (c->in_len)
            process_input(c); /* requests that waited while we were not reading */
    }
}

/*
 * Once a second: close connections idle (nothing read or written) for more
 * than idle_timeout seconds.  One timer per worker instead of one per
 * connection keeps the request path free of timer updates; the price is
 * that a connection is closed up to a second after its time is up.  The
 * tick is a timerfd rather than a libevent timer: with no timer pending,
 * libevent waits in epoll without a timeout, and the kernel need not arm a
 * timer each time the worker goes to sleep (on a busy server, after every
 * few requests).
 */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct worker *w = arg;
    uint64_t expirations;
    if (read(fd, &expirations, sizeof(expirations)) != (ssize_t)sizeof(expirations))
        return;
    w->ticks += (unsigned)expirations;
    unsigned limit = (unsigned)w->srv->idle_timeout;
    for (struct conn *c = w->conns, *next; c; c = next) {
        next = c->next;
        if (w->ticks - c->last_active > limit && !c->job) { /* a job answers before its deadline */
            wp_debug("closing an idle connection");
            conn_free(c);
        }
    }
}

/* What main() sends a worker through its inbox: a new connection, or
 * fd -1 to stop.  Pipe writes this small are atomic, so a read of a multiple
 * of its size always returns whole messages. */
struct handoff {
    int fd;
    int listen; /* index into srv->listens */
};

static void conn_open(struct worker *w, int fd, const struct wp_listen *listen)
{
    struct conn *c = wp_calloc(1, sizeof(*c));
    c->w = w;
    c->fd = fd;
    c->listen = listen;
    c->in_max = w->srv->max_request + FRAMING_MAX;
    c->last_active = w->ticks;
    c->rev = event_new(w->base, fd, EV_READ | EV_PERSIST, on_read, c);
    c->wev = event_new(w->base, fd, EV_WRITE, on_write, c);
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    event_add(c->rev, NULL);
    c->reading = true;
}

static void on_inbox(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct worker *w = arg;
    struct handoff msgs[64];
    ssize_t n = read(fd, msgs, sizeof(msgs));
    for (ssize_t i = 0; n > 0 && i < n / (ssize_t)sizeof(msgs[0]); i++) {
        if (msgs[i].fd < 0)
            event_base_loopbreak(w->base);
        else
            conn_open(w, msgs[i].fd, &w->srv->listens[msgs[i].listen]);
    }
}

/*
 * main() accepts every connection and hands it to the worker with the
 * fewest open connections.  Workers that each accepted for themselves would
 * not share the load: the first one to wake takes every connection waiting,
 * and a burst of Postfix processes connecting at once lands on one core.
 */
static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    (void)salen;
    struct server *srv = arg;
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
    struct worker *best = &srv->workers[srv->next_worker];
    int least = atomic_load(&best->nconns);
    for (int i = 1; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[(srv->next_worker + i) % srv->nworkers];
        int n = atomic_load(&w->nconns);
        if (n < least) {
            least = n;
            best = w;
        }
    }
    srv->next_worker = (srv->next_worker + 1) % srv->nworkers;
    /* Counted here, not when the worker opens it, so that a burst of
     * connections spreads before any worker has run. */
    atomic_fetch_add(&best->nconns, 1);
    struct handoff msg = { fd, (int)idx }; /* the listener accepted it non-blocking already */
    if (write(best->inbox_fds[1], &msg, sizeof(msg)) != (ssize_t)sizeof(msg)) {
        wp_warn("cannot hand a connection on %s to a worker: %s", srv->listens[idx].text, strerror(errno));
        atomic_fetch_sub(&best->nconns, 1);
        atomic_fetch_sub(&srv->connections, 1);
        evutil_closesocket(fd);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    /* One pass at a time (wait, run every ready callback), then the
     * answers of the pass go out together. */
    while (!event_base_got_break(w->base)) {
        int rc = event_base_loop(w->base, EVLOOP_ONCE);
        flush_queued(w);
        if (rc != 0)
            break; /* an error, or no events left at all */
    }
    return NULL;
}

/* ------------------------------------------------------------ control */

static void reload(struct server *srv)
{
    struct wp_snapshot *s = wp_snapshot_reload(srv->config_path, wp_policyd_sections);
    if (!s)
        return;
    bool same_listen = wp_policyd_conf(s)->nlisten == srv->nlisten;
    for (size_t i = 0; same_listen && i < srv->nlisten; i++)
        same_listen = strcmp(wp_policyd_conf(s)->listen[i].text, srv->listens[i].text) == 0;
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
    struct wp_snapshot *snap = wp_snapshot_load_startup(args.config, wp_policyd_sections, &srv.config_path);
    if (!snap || wp_policyd_conf(snap)->nlisten == 0 || test_only) {
        int rc = 1;
        if (snap && wp_policyd_conf(snap)->nlisten == 0)
            fprintf(stderr, "%s: policyd.listen names no endpoint\n", srv.config_path);
        else if (snap) {
            printf("%s: OK\n", srv.config_path);
            rc = 0;
        }
        wp_snapshot_unref(snap);
        free(srv.config_path);
        return rc;
    }
    const struct wp_policyd_conf *pc = wp_policyd_conf(snap);
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

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    srv.nworkers = pc->threads > 0 ? pc->threads : (int)(cores > 0 ? cores : 1);
    srv.workers = wp_calloc((size_t)srv.nworkers, sizeof(*srv.workers));
    /* Each worker's base is used by its thread alone (main() only writes to
     * its inbox pipe), so it needs no locks: one lock and unlock fewer per
     * event. */
    struct event_config *cfg = event_config_new();
    event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
    for (int i = 0; i < srv.nworkers; i++) {
        struct worker *w = &srv.workers[i];
        w->srv = &srv;
        w->base = event_base_new_with_config(cfg);
        if (!w->base || pipe2(w->inbox_fds, O_CLOEXEC) < 0) {
            wp_err("cannot set up worker %d: %s", i, strerror(errno));
            return 1;
        }
        evutil_make_socket_nonblocking(w->inbox_fds[0]);
        w->inbox = event_new(w->base, w->inbox_fds[0], EV_READ | EV_PERSIST, on_inbox, w);
        event_add(w->inbox, NULL);
        w->tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        struct itimerspec second = { { 1, 0 }, { 1, 0 } };
        if (w->tick_fd < 0 || timerfd_settime(w->tick_fd, 0, &second, NULL) < 0) {
            wp_err("cannot set up worker %d: %s", i, strerror(errno));
            return 1;
        }
        w->tick = event_new(w->base, w->tick_fd, EV_READ | EV_PERSIST, on_tick, w);
        event_add(w->tick, NULL);
        w->snap = wp_snapshot_ref(snap);
        w->generation = 0;
        char batch_why[128];
        if (!wp_sendbatch_init(&w->batch, pc->io_uring, batch_why, sizeof(batch_why)) && pc->io_uring && i == 0)
            wp_notice("answers are sent with one send(2) each: %s", batch_why);
    }
    event_config_free(cfg);
    for (int i = 0; i < srv.nworkers; i++)
        pthread_create(&srv.workers[i].thread, NULL, worker_main, &srv.workers[i]);

    struct control ctl = { &srv, event_base_new() };
    srv.listeners = wp_calloc(srv.nlisten, sizeof(*srv.listeners));
    for (size_t k = 0; k < srv.nlisten; k++) {
        srv.listeners[k] = evconnlistener_new(ctl.base, on_accept, &srv, LEV_OPT_CLOSE_ON_EXEC, -1, srv.fds[k]);
        if (!srv.listeners[k]) {
            wp_err("cannot listen on %s", srv.listens[k].text);
            return 1;
        }
    }
    struct event *sighup = evsignal_new(ctl.base, SIGHUP, on_signal, &ctl);
    struct event *sigterm = evsignal_new(ctl.base, SIGTERM, on_signal, &ctl);
    struct event *sigint = evsignal_new(ctl.base, SIGINT, on_signal, &ctl);
    event_add(sighup, NULL);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    wp_notice("ready: %zu endpoint%s, %d worker thread%s, %u router records, answers sent with %s", srv.nlisten,
              srv.nlisten == 1 ? "" : "s", srv.nworkers, srv.nworkers == 1 ? "" : "s",
              snap->router->table->nrecs, srv.workers[0].batch.uring ? "io_uring" : "send(2)");
    event_base_dispatch(ctl.base);

    /* Stop: no new connections, finish the loops, clean up what we created. */
    for (size_t k = 0; k < srv.nlisten; k++)
        evconnlistener_free(srv.listeners[k]);
    for (int i = 0; i < srv.nworkers; i++) {
        struct handoff stop = { -1, 0 };
        if (write(srv.workers[i].inbox_fds[1], &stop, sizeof(stop)) != (ssize_t)sizeof(stop))
            wp_warn("cannot stop worker %d: %s", i, strerror(errno));
    }
    for (int i = 0; i < srv.nworkers; i++)
        pthread_join(srv.workers[i].thread, NULL);
    for (size_t k = 0; k < srv.nlisten; k++) {
        close(srv.fds[k]);
        if (srv.listens[k].ep.family == WP_EP_UNIX)
            unlink(srv.listens[k].ep.path);
    }
    if (wp_policyd_conf(snap)->pidfile[0])
        unlink(wp_policyd_conf(snap)->pidfile);
    for (int i = 0; i < srv.nworkers; i++) {
        struct worker *w = &srv.workers[i];
        wp_snapshot_unref(w->snap);
        while (w->conns)
            conn_free(w->conns);
        event_free(w->tick);
        close(w->tick_fd);
        event_free(w->inbox);
        close(w->inbox_fds[0]);
        close(w->inbox_fds[1]);
        event_base_free(w->base);
        wp_sendbatch_free(&w->batch);
    }
    free(srv.listeners);
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
