/* SPDX-License-Identifier: MIT */
/*
 * server.c - waypost-policyd's server (server.h): the accepting main loop,
 * the workers' event loops, connections, and the request path over the
 * framing of framing.h.
 *
 * The request path is kept short, because Postfix asks once per recipient
 * and per lookup table: a request is read into the connection's own buffer
 * and parsed where it lies, the answer is formatted into the output buffer
 * without printf, and all answers to one read leave in one write; no timer
 * is touched per request (the idle timeout is a sweep once a second).
 *
 * Limits (policyd.*): max_connections per endpoint (over it a new
 * connection is closed at once, a warning a minute at most; one endpoint's
 * clients cannot take another's), out of descriptors the listeners pause
 * (lib/accept.h), idle_timeout (Postfix's tcp client never hangs up; a connection
 * is closed within a second after it), max_request (bytes in one request);
 * a tcp_table reply never exceeds 4096 bytes.  A malformed request gets its
 * protocol's error (socketmap PERM, tcp 400) and the connection is closed,
 * or, for policy requests, just closed, as SMTPD_POLICY_README asks; other
 * connections are not affected.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "lib/wire.h"
#include "policy/server.h"
#include "policy/settings.h"

const struct wp_snapshot *wp_server_snapshot(struct worker *w)
{
    struct wp_daemon *d = w->srv->d;
    unsigned gen = atomic_load_explicit(&d->generation, memory_order_acquire);
    if (gen != w->generation) {
        pthread_mutex_lock(&d->lock);
        struct wp_snapshot *old = w->snap;
        w->snap = wp_snapshot_ref(d->current);
        w->generation = atomic_load(&d->generation);
        pthread_mutex_unlock(&d->lock);
        if (w->srv->stats && (!w->smap || w->smap->router != w->snap->router)) {
            wp_pstats_fold(w->srv->stats, w->index, w->smap); /* the pending ids are the old map's */
            wp_pstats_map_put(w->srv->stats, w->smap);
            w->smap = wp_pstats_map_get(w->srv->stats, w->snap->router);
        }
        wp_snapshot_unref(old);
    }
    return w->snap;
}

void wp_server_count_error(struct conn *c)
{
    if (c->w->srv->stats)
        wp_counter_add(&c->w->srv->stats->workers[c->w->index].errors, 1);
}

void wp_server_conn_free(struct conn *c)
{
    if (c->job)
        wp_etrnjob_free(c->job);
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
    atomic_fetch_sub(&c->w->srv->ep_connections[c->listen - c->w->srv->listens], 1);
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

/* Close after what was written has gone out. */
void wp_server_close_after_flush(struct conn *c)
{
    c->closing = true;
    conn_stop_reading(c);
    if (c->job)
        return; /* the job's end closes it, after its answer */
    if (wp_server_output_pending(c) == 0)
        wp_server_conn_free(c);
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

void wp_server_send_answer(struct conn *c, bool netstring, const char *a, const char *b, const char *d)
{
    size_t len = strlen(a) + (b ? strlen(b) : 0) + (d ? strlen(d) : 0);
    char *p = output_reserve(c, len + WP_FRAMING_OVERHEAD);
    c->out_len += wp_framing_put(p, netstring, a, b, d);
}

/* ------------------------------------------------------------ socketmap */

/* Answer the complete requests in in[0 .. len); *used receives how many
 * bytes they took.  Returns false when the connection must close. */
static bool serve_socketmap(struct conn *c, char *in, size_t len, size_t *used)
{
    uint64_t t0 =
        c->w->srv->stats ? wp_server_pass_start_ns(c->w->base) : 0; /* the same for the whole pass */
    size_t max = c->w->srv->max_request;
    size_t pos = 0;
    bool keep = true;
    while (pos < len && wp_server_output_pending(c) <= OUTPUT_HIGH_WATER) {
        const char *map, *key;
        size_t frame = 0;
        enum wp_frame st = wp_framing_socketmap(in + pos, len - pos, max, &map, &key, &frame);
        if (st == WP_FRAME_MORE)
            break;
        pos += frame;
        if (st != WP_FRAME_REQUEST) {
            if (st == WP_FRAME_NO_KEY) {
                wp_server_send_answer(c, true, "PERM expected \"<map> <key>\"", NULL, NULL);
            } else {
                wp_notice("socketmap: %s request, closing",
                          st == WP_FRAME_TOO_BIG ? "oversized" : "malformed");
                wp_server_send_answer(
                    c, true, st == WP_FRAME_TOO_BIG ? "PERM request too large" : "PERM malformed netstring",
                    NULL, NULL);
            }
            wp_server_count_error(c);
            keep = false;
            break;
        }
        char value[WP_TCP_REPLY_MAX];
        enum wp_map m;
        enum wp_answer a = WP_ANS_PERM;
        struct wp_decision dec;
        struct wp_pstats *stats = c->w->srv->stats;
        bool known = wp_map_parse(map, strlen(map), &m);
        if (known)
            a = wp_map_lookup_ex(wp_server_snapshot(c->w), m, key, value, sizeof(value), stats ? &dec : NULL);
        else
            snprintf(value, sizeof(value), "unknown map %.64s", map); /* only for a misconfigured client */
        switch (a) {
        case WP_ANS_FOUND: wp_server_send_answer(c, true, "OK ", value, NULL); break;
        case WP_ANS_NOTFOUND: wp_server_send_answer(c, true, "NOTFOUND ", NULL, NULL); break;
        case WP_ANS_TEMP: wp_server_send_answer(c, true, "TEMP ", value, NULL); break;
        case WP_ANS_PERM: wp_server_send_answer(c, true, "PERM ", value, NULL); break;
        }
        if (stats && known) { /* an unknown map name is counted as an error */
            wp_pstats_count(stats, c->w->index, c->w->smap, WP_PROTO_SOCKETMAP, (int)m,
                            (enum wp_pstats_answer)a, &dec, t0);
        } else if (!known) {
            wp_server_count_error(c);
        }
        wp_debug("socketmap %s %s -> %d %s", map, key, (int)a, value);
    }
    *used = pos;
    return keep;
}

/* ------------------------------------------------------------ tcp_table */

static bool serve_tcp(struct conn *c, char *in, size_t len, size_t *used)
{
    uint64_t t0 =
        c->w->srv->stats ? wp_server_pass_start_ns(c->w->base) : 0; /* the same for the whole pass */
    size_t max = c->w->srv->max_request;
    size_t pos = 0;
    bool keep = true;
    while (pos < len && wp_server_output_pending(c) <= OUTPUT_HIGH_WATER) {
        const char *key;
        size_t n = 0;
        enum wp_frame st = wp_framing_tcp(in + pos, len - pos, max, &key, &n);
        if (st == WP_FRAME_MORE)
            break;
        pos += n;
        if (st == WP_FRAME_TOO_BIG) {
            if (n == 0) /* no end of line within max bytes */
                wp_notice("tcp_table: request line over %zu bytes, closing", max);
            wp_server_send_answer(c, false, "400 request too large\n", NULL, NULL);
            wp_server_count_error(c);
            keep = false;
            break;
        }
        if (st != WP_FRAME_REQUEST) {
            wp_notice("tcp_table: malformed request, closing");
            wp_server_send_answer(c, false, "400 malformed request\n", NULL, NULL);
            wp_server_count_error(c);
            keep = false;
            break;
        }
        char value[WP_TCP_REPLY_MAX], enc[WP_TCP_REPLY_MAX];
        struct wp_decision dec;
        struct wp_pstats *stats = c->w->srv->stats;
        enum wp_answer a = wp_map_lookup_ex(wp_server_snapshot(c->w), c->listen->map, key, value,
                                            sizeof(value), stats ? &dec : NULL);
        if (stats) {
            wp_pstats_count(stats, c->w->index, c->w->smap, WP_PROTO_TCP, (int)c->listen->map,
                            (enum wp_pstats_answer)a, &dec, t0);
        }
        switch (a) {
        case WP_ANS_FOUND:
            /* "200 " + value + "\n" must fit in 4096 bytes. */
            if (wp_xencode(value, enc, WP_TCP_REPLY_MAX - 5)) {
                wp_server_send_answer(c, false, "200 ", enc, "\n");
            } else {
                wp_warn("tcp_table %s %s: answer longer than the 4096-byte limit",
                        wp_map_name(c->listen->map), key);
                wp_server_send_answer(c, false, "400 answer too long for tcp_table\n", NULL, NULL);
            }
            break;
        case WP_ANS_NOTFOUND: wp_server_send_answer(c, false, "500 not found\n", NULL, NULL); break;
        case WP_ANS_TEMP:
        case WP_ANS_PERM:
            wp_xencode(value, enc, 512);
            wp_server_send_answer(c, false, "400 ", enc, "\n");
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

/* ------------------------------------------------------------ policy */

/* Attribute lines are taken one by one as they arrive (a request may come
 * in several reads); the empty line ends the request. */
static bool serve_policy(struct conn *c, char *in, size_t len, size_t *used)
{
    uint64_t t0 =
        c->w->srv->stats ? wp_server_pass_start_ns(c->w->base) : 0; /* the same for the whole pass */
    size_t max = c->w->srv->max_request;
    size_t pos = 0;
    while (pos < len && wp_server_output_pending(c) <= OUTPUT_HIGH_WATER) {
        size_t n = 0;
        enum wp_frame st = wp_framing_policy(&c->policy, in + pos, len - pos, max, &n);
        pos += n;
        if (st == WP_FRAME_MORE)
            break;
        if (st != WP_FRAME_REQUEST) {
            switch (st) {
            case WP_FRAME_TOO_BIG: wp_notice("policy: request over %zu bytes, closing", max); break;
            case WP_FRAME_NUL: wp_notice("policy: NUL byte in request, closing"); break;
            case WP_FRAME_LONG_ATTR:
                wp_notice("policy: attribute %s too long, closing", c->policy.long_attr);
                break;
            case WP_FRAME_NOT_POLICY:
                wp_notice("policy: request without request=smtpd_access_policy, closing");
                break;
            default: wp_notice("policy: line without name=value, closing"); break;
            }
            wp_server_count_error(c);
            *used = pos;
            return false;
        }
        const struct wp_policy_request *req = &c->policy.req;
        if (strcmp(req->protocol_state, "ETRN") == 0) {
            bool waiting = wp_etrnjob_start(c);
            wp_framing_policy_next(&c->policy);
            if (waiting) {
                *used = pos;
                return true; /* the rest of the input waits for the job's answer */
            }
            continue;
        }
        char action[WP_ROUTE_TEXT_MAX + 64];
        struct wp_decision dec;
        struct wp_pstats *stats = c->w->srv->stats;
        const struct wp_snapshot *snap = wp_server_snapshot(c->w);
        wp_policy_decide_ex(snap, req, action, sizeof(action), &dec);
        if (stats) {
            wp_pstats_count(stats, c->w->index, c->w->smap, WP_PROTO_POLICY, WP_PSTATS_POLICY_MAP,
                            wp_pstats_policy_answer(action, &dec), &dec, t0);
        }
        wp_pstats_log_policy(snap->router, req, action, &dec);
        wp_server_send_answer(c, false, "action=", action, "\n\n");
        wp_framing_policy_next(&c->policy);
    }
    *used = pos;
    return true;
}

/* ------------------------------------------------------------ events */

/* Send what we can now; arm the write event only for what is left, so the
 * usual request/answer round trip costs one write and no epoll_ctl. */
bool wp_server_flush_output(struct conn *c)
{
    while (wp_server_output_pending(c) > 0) {
        ssize_t n = send(c->fd, c->out + c->out_sent, wp_server_output_pending(c), MSG_NOSIGNAL);
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
    if (wp_server_output_pending(c) == 0)
        c->out_sent = c->out_len = 0;
    else
        event_add(c->wev, NULL); /* a client that never reads: the idle sweep closes it */
    return true;
}

/* Answer every complete request (while the output is not backed up).
 * Returns false if the connection is gone or closing. */
bool wp_server_process_input(struct conn *c)
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
        if (wp_server_output_pending(c) > 0 && !c->flush_queued) {
            c->flush_queued = true;
            c->flush_next = c->w->flush_head;
            c->w->flush_head = c;
        }
        if (wp_server_output_pending(c) > OUTPUT_HIGH_WATER)
            conn_stop_reading(c); /* on_write resumes once drained */
        return true;
    }
    if (!wp_server_flush_output(c)) {
        wp_server_conn_free(c);
        return false;
    }
    if (!keep) {
        wp_server_close_after_flush(c);
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
        wp_server_conn_free(c);
        return;
    }
    if (!wp_server_flush_output(c))
        wp_server_conn_free(c);
    else if (c->closing && !c->job && wp_server_output_pending(c) == 0)
        wp_server_conn_free(c);
}

/* Send the answers of this pass (see wp_server_process_input), all in one system
 * call where io_uring is there (see sendbatch.h for why). */
static void flush_queued(struct worker *w)
{
    struct conn *c;
    while ((c = w->flush_head) != NULL) {
        w->flush_head = c->flush_next;
        c->flush_queued = false;
        wp_sendbatch_add(&w->batch, c->fd, c->out + c->out_sent, wp_server_output_pending(c), c);
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
            wp_server_close_after_flush(c);
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
        wp_server_conn_free(c);
        return;
    }
    if (n == 0) {
        /* EOF (or half-close): answer what is complete, then close once it is sent. */
        if (wp_server_process_input(c))
            wp_server_close_after_flush(c);
        return;
    }
    c->in_len += (size_t)n;
    c->last_active = c->w->ticks;
    wp_server_process_input(c);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (!wp_server_flush_output(c)) {
        wp_server_conn_free(c);
        return;
    }
    if (wp_server_output_pending(c) > 0)
        return;
    if (c->closing) {
        if (!c->job)
            wp_server_conn_free(c);
        return;
    }
    if (!c->reading && !c->job) {
        event_add(c->rev, NULL);
        c->reading = true;
        if (c->in_len)
            wp_server_process_input(c); /* requests that waited while we were not reading */
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
            if (w->srv->stats)
                wp_counter_add(&w->srv->stats->workers[w->index].timeouts, 1);
            wp_server_conn_free(c);
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
    wp_accept_guard_accepted(&srv->guard);
    if (idx >= srv->nlisten) { /* cannot happen: a listener we do not know */
        evutil_closesocket(fd);
        return;
    }
    /* The limit is per endpoint; one counter more per connection, none per
     * request. */
    if (atomic_fetch_add(&srv->ep_connections[idx], 1) >= srv->max_connections) {
        atomic_fetch_sub(&srv->ep_connections[idx], 1);
        unsigned long suppressed;
        if (wp_ratelimit_pass(&srv->refuse_log, wp_now_ms(), 60000, &suppressed))
            wp_warn("connection limit (%d) reached: refusing a connection on %s (%lu more refused since the "
                    "last warning)",
                    srv->max_connections, srv->listens[idx].text, suppressed);
        evutil_closesocket(fd);
        return;
    }
    atomic_fetch_add(&srv->connections, 1);
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
    struct handoff msg = {fd, (int)idx}; /* the listener accepted it non-blocking already */
    if (write(best->inbox_fds[1], &msg, sizeof(msg)) != (ssize_t)sizeof(msg)) {
        wp_warn("cannot hand a connection on %s to a worker: %s", srv->listens[idx].text, strerror(errno));
        atomic_fetch_sub(&best->nconns, 1);
        atomic_fetch_sub(&srv->connections, 1);
        atomic_fetch_sub(&srv->ep_connections[idx], 1);
        evutil_closesocket(fd);
    }
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    (void)l;
    struct server *srv = arg;
    wp_accept_guard_error(&srv->guard, EVUTIL_SOCKET_ERROR(), "waypost-policyd");
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    /* One pass at a time (wait, run every ready callback), then the
     * answers of the pass go out together. */
    while (!event_base_got_break(w->base)) {
        int rc = event_base_loop(w->base, EVLOOP_ONCE);
        /* Counted before the answers leave, so that a client that has its
         * answer finds it counted. */
        if (w->srv->stats)
            wp_pstats_pass_end(w->srv->stats, w->index, w->smap);
        flush_queued(w);
        if (rc != 0)
            break; /* an error, or no events left at all */
    }
    return NULL;
}

bool wp_server_start(struct server *srv, struct event_base *base, int nworkers, bool io_uring)
{
    srv->nworkers = nworkers;
    srv->workers = wp_calloc((size_t)srv->nworkers, sizeof(*srv->workers));
    const struct wp_snapshot *snap = srv->d->current;
    /* Each worker's base is used by its thread alone (main() only writes to
     * its inbox pipe), so it needs no locks: one lock and unlock fewer per
     * event. */
    struct event_config *cfg = event_config_new();
    event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
    for (int i = 0; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        w->srv = srv;
        w->index = i;
        w->inbox_fds[0] = w->inbox_fds[1] = w->tick_fd = -1;
        w->base = event_base_new_with_config(cfg);
        if (!w->base || pipe2(w->inbox_fds, O_CLOEXEC) < 0) {
            wp_err("cannot set up worker %d: %s", i, strerror(errno));
            event_config_free(cfg);
            return false;
        }
        evutil_make_socket_nonblocking(w->inbox_fds[0]);
        w->inbox = event_new(w->base, w->inbox_fds[0], EV_READ | EV_PERSIST, on_inbox, w);
        event_add(w->inbox, NULL);
        w->tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        struct itimerspec second = {{1, 0}, {1, 0}};
        if (w->tick_fd < 0 || timerfd_settime(w->tick_fd, 0, &second, NULL) < 0) {
            wp_err("cannot set up worker %d: %s", i, strerror(errno));
            event_config_free(cfg);
            return false;
        }
        w->tick = event_new(w->base, w->tick_fd, EV_READ | EV_PERSIST, on_tick, w);
        event_add(w->tick, NULL);
        w->snap = wp_snapshot_ref((struct wp_snapshot *)snap);
        if (srv->stats)
            w->smap = wp_pstats_map_get(srv->stats, w->snap->router);
        w->generation = atomic_load(&srv->d->generation);
        char batch_why[128];
        if (!wp_sendbatch_init(&w->batch, io_uring, batch_why, sizeof(batch_why)) && io_uring && i == 0)
            wp_notice("answers are sent with one send(2) each: %s", batch_why);
    }
    event_config_free(cfg);
    srv->listeners = wp_calloc(srv->nlisten, sizeof(*srv->listeners));
    srv->ep_connections = wp_calloc(srv->nlisten, sizeof(*srv->ep_connections));
    for (size_t k = 0; k < srv->nlisten; k++) {
        atomic_init(&srv->ep_connections[k], 0);
        srv->listeners[k] = evconnlistener_new(base, on_accept, srv, LEV_OPT_CLOSE_ON_EXEC, -1, srv->fds[k]);
        if (!srv->listeners[k]) {
            wp_err("cannot listen on %s", srv->listens[k].text);
            return false;
        }
        evconnlistener_set_error_cb(srv->listeners[k], on_accept_error);
    }
    /* Descriptors close in the workers: paused listeners try again on the
     * guard's timer. */
    wp_accept_guard_init(&srv->guard, base, srv->listeners, srv->nlisten);
    for (int i = 0; i < srv->nworkers; i++) {
        if (pthread_create(&srv->workers[i].thread, NULL, worker_main, &srv->workers[i]) != 0) {
            wp_err("cannot start worker %d", i);
            return false;
        }
        srv->workers[i].started = true;
    }
    return true;
}

void wp_server_stop(struct server *srv)
{
    /* No new connections, finish the loops, free what they hold. */
    for (size_t k = 0; srv->listeners && k < srv->nlisten; k++)
        if (srv->listeners[k])
            evconnlistener_free(srv->listeners[k]);
    free(srv->listeners);
    srv->listeners = NULL;
    wp_accept_guard_free(&srv->guard);
    for (int i = 0; i < srv->nworkers; i++) {
        struct handoff stop = {-1, 0};
        if (srv->workers[i].started &&
            write(srv->workers[i].inbox_fds[1], &stop, sizeof(stop)) != (ssize_t)sizeof(stop))
            wp_warn("cannot stop worker %d: %s", i, strerror(errno));
    }
    for (int i = 0; i < srv->nworkers; i++)
        if (srv->workers[i].started)
            pthread_join(srv->workers[i].thread, NULL);
    for (int i = 0; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        while (w->conns)
            wp_server_conn_free(w->conns);
        if (srv->stats)
            wp_pstats_map_put(srv->stats, w->smap);
        wp_snapshot_unref(w->snap);
        if (w->tick)
            event_free(w->tick);
        if (w->tick_fd >= 0)
            close(w->tick_fd);
        if (w->inbox)
            event_free(w->inbox);
        if (w->inbox_fds[0] >= 0) {
            close(w->inbox_fds[0]);
            close(w->inbox_fds[1]);
        }
        if (w->base)
            event_base_free(w->base);
        wp_sendbatch_free(&w->batch);
    }
    free(srv->workers);
    srv->workers = NULL;
    free(srv->ep_connections);
    srv->ep_connections = NULL;
    srv->nworkers = 0;
}
