/* SPDX-License-Identifier: MIT */
/*
 * metrics.c - per-worker counters, slots and the metrics endpoint
 * (metrics.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "lib/daemon.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/strmap.h"
#include "lib/util.h"

const unsigned wp_hist_bounds_us[WP_HIST_BUCKETS] = {10, 25, 50, 100, 250, 500, 1000, 5000, 25000, 100000};

void wp_hist_add(struct wp_hist *h, uint64_t ns)
{
    wp_hist_add_n(h, ns, 1);
}

void wp_hist_add_n(struct wp_hist *h, uint64_t ns, uint64_t n)
{
    uint64_t us = ns / 1000;
    int i = 0;
    while (i < WP_HIST_BUCKETS && us >= wp_hist_bounds_us[i])
        i++;
    wp_counter_add(&h->bucket[i], n);
    wp_counter_add(&h->sum_ns, ns * n);
}

/* ------------------------------------------------------------ slots */

void wp_slots_init(struct wp_slots *s, int nwriters)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->nwriters = nwriters;
    s->per = wp_calloc((size_t)nwriters, sizeof(*s->per));
}

void wp_slots_free(struct wp_slots *s)
{
    for (uint32_t i = 0; i < s->n; i++)
        free(s->keys[i]);
    free(s->keys);
    free(s->index);
    for (int w = 0; w < s->nwriters; w++)
        for (size_t c = 0; c < WP_SLOT_CHUNKS; c++)
            free(atomic_load(&s->per[w].chunk[c]));
    free(s->per);
    pthread_mutex_destroy(&s->lock);
    memset(s, 0, sizeof(*s));
}

static uint64_t key_hash(const char *key, size_t len)
{
    uint64_t h = WP_HASH_INIT;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * 0x100000001b3ULL; /* case matters: keys are exact texts */
    return h;
}

static void index_put(uint32_t *index, size_t icap, const char *key, size_t len, uint32_t slot)
{
    size_t i = (size_t)key_hash(key, len) & (icap - 1);
    while (index[i])
        i = (i + 1) & (icap - 1);
    index[i] = slot + 1;
}

uint32_t wp_slots_intern_locked(struct wp_slots *s, const char *key, size_t len)
{
    if (s->icap) {
        size_t i = (size_t)key_hash(key, len) & (s->icap - 1);
        for (; s->index[i]; i = (i + 1) & (s->icap - 1)) {
            const char *k = s->keys[s->index[i] - 1];
            if (strlen(k) == len && memcmp(k, key, len) == 0)
                return s->index[i] - 1;
        }
    }
    if (s->n >= WP_SLOTS_MAX)
        return WP_SLOT_NONE;
    if ((s->n + 1) * 2 > s->icap) { /* keep the index at most half full */
        size_t icap = s->icap ? s->icap * 2 : 1024;
        uint32_t *index = wp_calloc(icap, sizeof(*index));
        for (uint32_t k = 0; k < s->n; k++)
            index_put(index, icap, s->keys[k], strlen(s->keys[k]), k);
        free(s->index);
        s->index = index;
        s->icap = icap;
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->keys = wp_realloc(s->keys, s->cap * sizeof(*s->keys));
    }
    uint32_t slot = s->n++;
    s->keys[slot] = wp_strndup(key, len);
    index_put(s->index, s->icap, key, len, slot);
    size_t c = slot / WP_SLOT_CHUNK;
    for (int w = 0; w < s->nwriters; w++)
        if (!atomic_load_explicit(&s->per[w].chunk[c], memory_order_relaxed))
            atomic_store_explicit(&s->per[w].chunk[c], wp_calloc(WP_SLOT_CHUNK, sizeof(wp_counter)),
                                  memory_order_release);
    return slot;
}

uint64_t wp_slots_sum(struct wp_slots *s, uint32_t slot)
{
    uint64_t sum = 0;
    if (slot == WP_SLOT_NONE)
        return 0;
    for (int w = 0; w < s->nwriters; w++) {
        wp_counter *c = atomic_load_explicit(&s->per[w].chunk[slot / WP_SLOT_CHUNK], memory_order_acquire);
        if (c)
            sum += wp_counter_get(&c[slot % WP_SLOT_CHUNK]);
    }
    return sum;
}

/* ------------------------------------------------------------ text */

void wp_metrics_help(struct evbuffer *b, const char *name, const char *type, const char *text)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

void wp_metrics_hist(struct evbuffer *b, const char *name, const char *help, const struct wp_hist *h,
                     size_t stride, int n)
{
    wp_metrics_help(b, name, "histogram", help);
    uint64_t cum = 0, sum_ns = 0;
    for (int k = 0; k <= WP_HIST_BUCKETS; k++) {
        for (int w = 0; w < n; w++)
            cum +=
                wp_counter_get(&((const struct wp_hist *)((const char *)h + (size_t)w * stride))->bucket[k]);
        if (k < WP_HIST_BUCKETS)
            evbuffer_add_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, wp_hist_bounds_us[k] / 1e6,
                                (unsigned long long)cum);
        else
            evbuffer_add_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    }
    for (int w = 0; w < n; w++)
        sum_ns += wp_counter_get(&((const struct wp_hist *)((const char *)h + (size_t)w * stride))->sum_ns);
    evbuffer_add_printf(b, "%s_sum %.9f\n", name, sum_ns / 1e9);
    evbuffer_add_printf(b, "%s_count %llu\n", name, (unsigned long long)cum);
}

void wp_metrics_reloads(struct evbuffer *b, unsigned ok, unsigned failed, unsigned generation, long long last,
                        bool last_ok)
{
    wp_metrics_help(b, "waypost_reloads_total", "counter", "Configuration reloads, by result.");
    evbuffer_add_printf(b, "waypost_reloads_total{result=\"success\"} %u\n", ok);
    evbuffer_add_printf(b, "waypost_reloads_total{result=\"failure\"} %u\n", failed);
    wp_metrics_help(b, "waypost_config_generation", "gauge",
                    "The configuration generation in use (0: the startup one).");
    evbuffer_add_printf(b, "waypost_config_generation %u\n", generation);
    wp_metrics_help(b, "waypost_config_last_reload_timestamp_seconds", "gauge",
                    "When the last reload was tried (0: never).");
    evbuffer_add_printf(b, "waypost_config_last_reload_timestamp_seconds %lld\n", last);
    wp_metrics_help(b, "waypost_config_last_reload_success", "gauge",
                    "Whether the last reload succeeded (1 before any).");
    evbuffer_add_printf(b, "waypost_config_last_reload_success %d\n", last == 0 || last_ok ? 1 : 0);
}

void wp_metrics_label(struct evbuffer *b, const char *value)
{
    const char *run = value;
    for (const char *p = value;; p++) {
        if (*p == '\\' || *p == '"' || *p == '\n' || *p == '\0') {
            evbuffer_add(b, run, (size_t)(p - run));
            if (!*p)
                break;
            evbuffer_add(b, *p == '\n' ? "\\n" : *p == '"' ? "\\\"" : "\\\\", 2);
            run = p + 1;
        }
    }
}

/* ------------------------------------------------------------ endpoint */

int wp_metricsd_bind(const struct wp_endpoint *ep, bool allow_remote, char *err, size_t errlen)
{
    if (ep->family == WP_EP_UNIX) {
        snprintf(err, errlen, "the metrics endpoint must be inet:HOST:PORT or inet6:[ADDRESS]:PORT");
        return -1;
    }
    if (!allow_remote && !wp_endpoint_is_loopback(ep->host)) {
        snprintf(err, errlen,
                 "the metrics endpoint %s is not a loopback address (metrics_allow_remote = true allows it)",
                 ep->host);
        return -1;
    }
    return wp_listen_socket(ep, 0, "", "", err, errlen);
}

struct wp_metricsd {
    pthread_t thread;
    struct event_base *base;
    struct evhttp *http;
    wp_metrics_render *render;
    void *arg;
    wp_metrics_tick *tick;
    struct event *minute;
    int stop_fds[2]; /* the base has no locks: another thread stops it through this pipe */
    struct event *stop;
    /* The connection cap; all of it is touched in the endpoint's thread only
     * (and by wp_metricsd_stop after that thread has ended). */
    struct evconnlistener *listener; /* evhttp's; NULL once stopping */
    int open;                        /* connections whose descriptor is open */
    int cap;
    bool accepting;             /* the listener is enabled */
    bool backoff;               /* accept() failed: paused until retry fires */
    struct event *retry;        /* ends the backoff */
    struct bufferevent **fresh; /* accepted, closecb not set yet (cap of them) */
    int nfresh;
    struct event *adopt; /* sets it, once evhttp_get_request is done */
};

/* Accept only while fewer than cap connections are open and no accept()
 * error is being waited out.  A paused listener leaves new clients in the
 * kernel's backlog, where they cost the process no descriptor. */
static void conn_cap_update(struct wp_metricsd *m)
{
    bool want = m->listener && m->open < m->cap && !m->backoff;
    if (want == m->accepting || !m->listener)
        return;
    if ((want ? evconnlistener_enable(m->listener) : evconnlistener_disable(m->listener)) == 0)
        m->accepting = want;
}

/* evhttp_connection_set_closecb: evhttp is closing the connection's
 * descriptor (it closes it before returning to the loop). */
static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    struct wp_metricsd *m = arg;
    m->open--;
    conn_cap_update(m);
}

/* evhttp_set_bevcb: the bufferevent of each accepted connection, made as
 * evhttp makes its own (a socket bufferevent, no options: evhttp closes the
 * descriptor).  libevent 2.1 has no connection cap and no hook for a new
 * connection but this one, which runs before the connection exists; the
 * close callback is set by on_adopt, later in the same pass of the loop,
 * and the extra reference keeps the bufferevent valid until then.  NULL
 * (out of memory, or more fresh connections than the cap, which the paused
 * listener prevents) makes evhttp use one of its own, not counted.
 *
 * Not a bufferevent_filter with a free_context as the "gone" hook: a
 * filter's write callback fires when the bytes reach the socket
 * bufferevent, not the socket, so evhttp shuts a "Connection: close" reply
 * down unsent; and a reply added while writing is disabled moves on only
 * if the socket's write event is still pending (both seen with 2.1.12). */
static struct bufferevent *on_conn_new(struct event_base *base, void *arg)
{
    struct wp_metricsd *m = arg;
    if (m->nfresh >= m->cap)
        return NULL;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, 0);
    if (!bev)
        return NULL;
    bufferevent_incref(bev);
    m->fresh[m->nfresh++] = bev;
    event_active(m->adopt, EV_TIMEOUT, 1);
    m->open++;
    conn_cap_update(m);
    return bev;
}

/* After the listener's callback (evhttp_get_request): evhttp has set each
 * fresh bufferevent's callbacks with its connection as their argument, or
 * freed it (its callbacks cleared) if it failed to set the connection up,
 * and closed the descriptor. */
static void on_adopt(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct wp_metricsd *m = arg;
    for (int i = 0; i < m->nfresh; i++) {
        void *evcon = NULL;
        bufferevent_getcb(m->fresh[i], NULL, NULL, NULL, &evcon);
        if (evcon)
            evhttp_connection_set_closecb(evcon, on_conn_close, m);
        else
            m->open--;
        bufferevent_decref(m->fresh[i]);
    }
    m->nfresh = 0;
    conn_cap_update(m);
}

static void on_stop(evutil_socket_t fd, short what, void *arg);

/* event_base_foreach_event: the endpoint is the argument of its stop event,
 * always pending on its base. */
static int find_self(const struct event_base *base, const struct event *ev, void *arg)
{
    (void)base;
    if (event_get_callback(ev) != on_stop)
        return 0;
    *(struct wp_metricsd **)arg = event_get_callback_arg(ev);
    return 1;
}

/* accept() failed for another reason than a retry (EMFILE, ENFILE,
 * ENOBUFS): the listening socket stays readable, so rather than spin on
 * it the endpoint waits a second.  The listener's callbacks are evhttp's
 * and so is their argument: the endpoint is found through the base. */
static void on_accept_error(struct evconnlistener *l, void *evhttp)
{
    (void)evhttp;
    int err = errno;
    struct wp_metricsd *m = NULL;
    event_base_foreach_event(evconnlistener_get_base(l), find_self, &m);
    if (!m)
        return;
    wp_warn("metrics endpoint: cannot accept a connection: %s (pausing 1 s)", strerror(err));
    m->backoff = true;
    conn_cap_update(m);
    struct timeval second = {1, 0};
    event_add(m->retry, &second);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct wp_metricsd *m = arg;
    m->backoff = false;
    conn_cap_update(m);
}

/* The cap: WP_METRICS_MAX_CONNECTIONS, at most a quarter of the soft
 * RLIMIT_NOFILE (at least 1), so that a flood of scrapers leaves the
 * descriptors the daemon needs for Postfix's connections. */
static int conn_cap(void)
{
    struct rlimit rl;
    int cap = WP_METRICS_MAX_CONNECTIONS;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur / 4 < (rlim_t)cap)
        cap = rl.rlim_cur / 4 > 0 ? (int)(rl.rlim_cur / 4) : 1;
    return cap;
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct wp_metricsd *m = arg;
    event_base_loopbreak(m->base);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct wp_metricsd *m = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET || !path || strcmp(path, "/metrics") != 0) {
        evhttp_send_error(req, HTTP_NOTFOUND, "GET /metrics only");
        return;
    }
    struct evbuffer *out = evbuffer_new();
    m->render(out, m->arg);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, HTTP_OK, "OK", out);
    evbuffer_free(out);
}

static void on_minute(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct wp_metricsd *m = arg;
    m->tick(m->arg);
}

static void *metricsd_main(void *arg)
{
    struct wp_metricsd *m = arg;
    event_base_dispatch(m->base);
    return NULL;
}

struct wp_metricsd *wp_metricsd_start(int fd, wp_metrics_render *render, wp_metrics_tick *tick, void *arg,
                                      char *err, size_t errlen)
{
    struct wp_metricsd *m = wp_calloc(1, sizeof(*m));
    m->render = render;
    m->tick = tick;
    m->arg = arg;
    m->stop_fds[0] = m->stop_fds[1] = -1;
    m->base = event_base_new();
    m->http = m->base ? evhttp_new(m->base) : NULL;
    struct evhttp_bound_socket *bound = m->http ? evhttp_accept_socket_with_handle(m->http, fd) : NULL;
    m->retry = bound ? event_new(m->base, -1, 0, on_retry, m) : NULL;
    m->adopt = m->retry ? event_new(m->base, -1, 0, on_adopt, m) : NULL;
    if (!m->adopt || pipe2(m->stop_fds, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "cannot serve metrics: %s", strerror(errno));
        goto fail;
    }
    m->listener = evhttp_bound_socket_get_listener(bound);
    m->accepting = true;
    m->cap = conn_cap();
    m->fresh = wp_calloc((size_t)m->cap, sizeof(*m->fresh));
    evconnlistener_set_error_cb(m->listener, on_accept_error);
    evhttp_set_bevcb(m->http, on_conn_new, m);
    m->stop = event_new(m->base, m->stop_fds[0], EV_READ, on_stop, m);
    event_add(m->stop, NULL);
    if (tick) {
        struct timeval minute = {60, 0};
        m->minute = event_new(m->base, -1, EV_PERSIST, on_minute, m);
        event_add(m->minute, &minute);
    }
    evhttp_set_max_headers_size(m->http, WP_METRICS_MAX_HEADERS);
    evhttp_set_max_body_size(m->http, 0);
    evhttp_set_timeout(m->http, WP_METRICS_TIMEOUT);
    evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET);
    evhttp_set_gencb(m->http, on_request, m);
    if (pthread_create(&m->thread, NULL, metricsd_main, m) != 0) {
        snprintf(err, errlen, "cannot start the metrics thread");
        goto fail;
    }
    return m;
fail:
    m->listener = NULL;
    if (m->adopt)
        event_free(m->adopt);
    if (m->retry)
        event_free(m->retry);
    if (m->minute)
        event_free(m->minute);
    if (m->stop)
        event_free(m->stop);
    if (m->http)
        evhttp_free(m->http);
    if (m->base)
        event_base_free(m->base);
    if (m->stop_fds[0] >= 0) {
        close(m->stop_fds[0]);
        close(m->stop_fds[1]);
    }
    free(m->fresh);
    free(m);
    return NULL;
}

void wp_metricsd_stop(struct wp_metricsd *m)
{
    if (!m)
        return;
    if (write(m->stop_fds[1], "", 1) != 1)
        wp_warn("cannot stop the metrics thread: %s", strerror(errno));
    pthread_join(m->thread, NULL);
    /* evhttp_free frees the listener, then the connections (on_conn_close
     * must not touch the listener then); fresh ones that on_adopt has not
     * seen drop the extra reference here. */
    m->listener = NULL;
    for (int i = 0; i < m->nfresh; i++)
        bufferevent_decref(m->fresh[i]);
    free(m->fresh);
    event_free(m->adopt);
    event_free(m->retry);
    event_free(m->stop);
    if (m->minute)
        event_free(m->minute);
    close(m->stop_fds[0]);
    close(m->stop_fds[1]);
    evhttp_free(m->http);
    event_base_free(m->base);
    free(m);
}
