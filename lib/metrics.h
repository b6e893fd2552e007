/* SPDX-License-Identifier: MIT */
/*
 * metrics.h - counters kept per worker thread and summed when read, and the
 * HTTP endpoint that serves them as Prometheus text.
 *
 * Counters: a wp_counter belongs to one writer thread (its worker), which
 * adds with a relaxed load and store (a plain add, no locked instruction
 * on the hot path); readers load it relaxed and sum the workers' copies.
 *
 * Slots: counters keyed by a string (a Router record's file and text, a
 * Mail to Unknown domain) that must outlive the configuration they came
 * from: the same key gets the same slot at every reload, so a count
 * survives a reload while its record or rule is unchanged, and a changed
 * record (a new key) starts from zero.  Slots are only added (by whoever
 * maps a new configuration, under the registry's lock); each worker's
 * counters live in fixed chunks that never move, so a worker writes
 * without a lock.  Limit: WP_SLOTS_MAX keys over the life of the process
 * (past it, wp_slots_intern returns WP_SLOT_NONE and those hits are not
 * counted).
 *
 * Endpoint: one thread with its own event base and evhttp, so a scrape
 * never delays an answer to Postfix.  Bounded: request headers (URL
 * included) WP_METRICS_MAX_HEADERS bytes, no body, a WP_METRICS_TIMEOUT
 * second timeout per connection (slow clients: a connection that sends
 * nothing is closed after it).  GET /metrics only.
 *
 * Connection cap: descriptors are the whole process's, so clients of the
 * endpoint could otherwise take those the daemon needs to accept Postfix's
 * connections.  At most WP_METRICS_MAX_CONNECTIONS connections are open at
 * once, fewer under a small RLIMIT_NOFILE (a quarter of its soft limit, at
 * least 1).  At the cap the endpoint stops accepting: further clients wait
 * in the kernel's listen backlog, which costs no descriptor, and are
 * accepted as open connections close (answered or timed out).  libevent 2.1
 * has no such cap (evhttp_set_max_connections is 2.2's): the endpoint makes
 * each connection's bufferevent (evhttp_set_bevcb) and sets a close
 * callback on its evhttp_connection, which evhttp calls as it closes the
 * descriptor.  If accept() fails (no descriptor left in the process), the
 * endpoint pauses a second rather than spin.  Limit: a flood delays scrapes
 * (a scraper queues behind the flood in the backlog), never Postfix.
 */
#ifndef WP_METRICS_H
#define WP_METRICS_H

#include <event2/buffer.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/endpoint.h"

typedef _Atomic uint64_t wp_counter;

static inline void wp_counter_add(wp_counter *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}
static inline uint64_t wp_counter_get(const wp_counter *c)
{
    return atomic_load_explicit((wp_counter *)c, memory_order_relaxed);
}

/* Latency histogram: upper bounds in microseconds (and +Inf). */
#define WP_HIST_BUCKETS 10
extern const unsigned wp_hist_bounds_us[WP_HIST_BUCKETS];
struct wp_hist {
    wp_counter bucket[WP_HIST_BUCKETS + 1]; /* not cumulative; the last is +Inf */
    wp_counter sum_ns;
};
void wp_hist_add(struct wp_hist *h, uint64_t ns);
/* n samples of ns each. */
void wp_hist_add_n(struct wp_hist *h, uint64_t ns, uint64_t n);

/* ------------------------------------------------------------ slots */

#define WP_SLOT_NONE UINT32_MAX
#define WP_SLOT_CHUNK 1024
#define WP_SLOT_CHUNKS 2048
#define WP_SLOTS_MAX (WP_SLOT_CHUNK * WP_SLOT_CHUNKS)

struct wp_slot_counters {
    _Atomic(wp_counter *) chunk[WP_SLOT_CHUNKS];
};

struct wp_slots {
    pthread_mutex_t lock; /* guards keys/index (writers and readers of keys) */
    char **keys;          /* slot -> key */
    uint32_t n, cap;
    uint32_t *index; /* open addressing: slot + 1, 0 empty */
    size_t icap;
    int nwriters;
    struct wp_slot_counters *per; /* one per writer */
};

void wp_slots_init(struct wp_slots *s, int nwriters);
void wp_slots_free(struct wp_slots *s);
/* The slot of key (len bytes), added if new; call with s->lock held. */
uint32_t wp_slots_intern_locked(struct wp_slots *s, const char *key, size_t len);

static inline void wp_slots_hit(struct wp_slots *s, int writer, uint32_t slot)
{
    if (slot == WP_SLOT_NONE)
        return;
    wp_counter *c = atomic_load_explicit(&s->per[writer].chunk[slot / WP_SLOT_CHUNK], memory_order_acquire);
    wp_counter_add(&c[slot % WP_SLOT_CHUNK], 1);
}
/* Bring slot's counter of writer into the cache before wp_slots_hit. */
static inline void wp_slots_prefetch(struct wp_slots *s, int writer, uint32_t slot)
{
    if (slot == WP_SLOT_NONE)
        return;
    wp_counter *c = atomic_load_explicit(&s->per[writer].chunk[slot / WP_SLOT_CHUNK], memory_order_acquire);
    __builtin_prefetch(&c[slot % WP_SLOT_CHUNK], 1);
}
uint64_t wp_slots_sum(struct wp_slots *s, uint32_t slot);

/* ------------------------------------------------------------ text */

/* Append a label value to b, escaped as the exposition format asks
 * (backslash, double quote, newline). */
void wp_metrics_label(struct evbuffer *b, const char *value);

/* A metric's "# HELP" and "# TYPE" lines. */
void wp_metrics_help(struct evbuffer *b, const char *name, const char *type, const char *text);

/* A histogram (name_bucket, name_sum, name_count, in seconds) summed over
 * n copies kept per writer: the first at h, the next stride bytes on. */
void wp_metrics_hist(struct evbuffer *b, const char *name, const char *help, const struct wp_hist *h,
                     size_t stride, int n);

/* The reload metrics every daemon serves: waypost_reloads_total{result},
 * waypost_config_generation, waypost_config_last_reload_timestamp_seconds
 * and waypost_config_last_reload_success (last is 0 before any reload). */
void wp_metrics_reloads(struct evbuffer *b, unsigned ok, unsigned failed, unsigned generation, long long last,
                        bool last_ok);

/* ------------------------------------------------------------ endpoint */

#define WP_METRICS_MAX_HEADERS 8192
#define WP_METRICS_TIMEOUT 5
#define WP_METRICS_MAX_CONNECTIONS 32

struct wp_metricsd;
typedef void wp_metrics_render(struct evbuffer *out, void *arg);
typedef void wp_metrics_tick(void *arg);

/* Bind the endpoint (before the privilege drop): the fd, or -1 and err.
 * Loopback only unless allow_remote. */
int wp_metricsd_bind(const struct wp_endpoint *ep, bool allow_remote, char *err, size_t errlen);
/* Serve on fd in a thread of its own: render fills each answer; tick (if
 * not NULL) runs in that thread once a minute. */
struct wp_metricsd *wp_metricsd_start(int fd, wp_metrics_render *render, wp_metrics_tick *tick, void *arg,
                                      char *err, size_t errlen);
void wp_metricsd_stop(struct wp_metricsd *m);

#endif
