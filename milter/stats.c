/* SPDX-License-Identifier: MIT */
/*
 * stats.c - waypost-milter's counters (stats.h).
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/util.h"
#include "milter/settings.h"
#include "milter/stats.h"
#include "state/snapshot.h"

static const char *const result_names[WP_MR_COUNT] = {"accept", "reject", "discard", "tempfail"};
static const char *const error_names[WP_ME_COUNT] = {"source", "oversized", "action", "reply"};

static void writer_release(void *v)
{
    /* v is the stats' taken flag of the ending thread (never the shared one). */
    atomic_store((atomic_bool *)v, false);
}

void wp_mstats_init(struct wp_mstats *st, struct wp_daemon *d, int timeout)
{
    memset(st, 0, sizeof(*st));
    st->d = d;
    st->timeout = timeout;
    wp_slots_init(&st->slots, WP_MSTATS_WRITERS);
    pthread_mutex_init(&st->shared, NULL);
    pthread_key_create(&st->writer, writer_release);
}

static void map_free(struct wp_mstats_map *m)
{
    wp_snapshot_unref(m->snap);
    free(m->slot);
    free(m);
}

void wp_mstats_free(struct wp_mstats *st)
{
    if (!st->slots.per)
        return;
    while (st->maps) {
        struct wp_mstats_map *m = st->maps;
        st->maps = m->next;
        map_free(m);
    }
    pthread_key_delete(st->writer);
    pthread_mutex_destroy(&st->shared);
    wp_slots_free(&st->slots);
    memset(st, 0, sizeof(*st));
}

/* ------------------------------------------------------------ maps */

struct wp_mstats_map *wp_mstats_map_get(struct wp_mstats *st, struct wp_snapshot *snap)
{
    const struct wp_rules *rules = wp_milter_conf(snap)->rules;
    pthread_mutex_lock(&st->slots.lock);
    struct wp_mstats_map *m = st->maps;
    while (m && m->rules != rules)
        m = m->next;
    if (!m) {
        /* Once per rules object (per reload): the first connection to
         * meet it maps its rules, the others find the map here.  The
         * address is a safe key: a map keeps its rules alive. */
        m = wp_calloc(1, sizeof(*m));
        m->rules = rules;
        m->snap = wp_snapshot_ref(snap);
        m->n = wp_rules_count(rules);
        m->slot = wp_calloc(m->n + 1, sizeof(*m->slot));
        for (size_t i = 0; i < m->n; i++) {
            const char *key = wp_rules_key(rules, i);
            m->slot[i] = wp_slots_intern_locked(&st->slots, key, strlen(key));
        }
        m->next = st->maps;
        st->maps = m;
    }
    m->refs++;
    pthread_mutex_unlock(&st->slots.lock);
    return m;
}

void wp_mstats_map_put(struct wp_mstats *st, struct wp_mstats_map *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&st->slots.lock);
    bool last = --m->refs == 0;
    if (last)
        for (struct wp_mstats_map **p = &st->maps; *p; p = &(*p)->next)
            if (*p == m) {
                *p = m->next;
                break;
            }
    pthread_mutex_unlock(&st->slots.lock);
    if (last)
        map_free(m); /* outside the lock: it may free a whole snapshot */
}

/* ------------------------------------------------------------ counting */

/* This thread's writer; the last one (shared, locked by the caller) if all
 * others are taken. */
static int writer_of(struct wp_mstats *st)
{
    atomic_bool *mine = pthread_getspecific(st->writer);
    if (mine)
        return (int)(mine - st->taken);
    for (int i = 0; i < WP_MSTATS_WRITERS - 1; i++) {
        bool free_ = false;
        if (atomic_compare_exchange_strong(&st->taken[i], &free_, true)) {
            pthread_setspecific(st->writer, &st->taken[i]);
            return i;
        }
    }
    return WP_MSTATS_WRITERS - 1;
}

/* The writer block to count in, locked if it is the shared one (release
 * with writer_end). */
static struct wp_mstats_writer *writer_begin(struct wp_mstats *st, int *w)
{
    *w = writer_of(st);
    if (*w == WP_MSTATS_WRITERS - 1)
        pthread_mutex_lock(&st->shared);
    return &st->w[*w];
}

static void writer_end(struct wp_mstats *st, int w)
{
    if (w == WP_MSTATS_WRITERS - 1)
        pthread_mutex_unlock(&st->shared);
}

void wp_mstats_message(struct wp_mstats *st, const struct wp_mstats_map *m, enum wp_mstats_result res,
                       uint64_t ns, unsigned errors, unsigned replies_failed, const struct wp_outcome *out)
{
    int w;
    struct wp_mstats_writer *ws = writer_begin(st, &w);
    wp_counter_add(&ws->messages[res], 1);
    wp_hist_add(&ws->latency, ns);
    for (int e = 0; e < WP_ME_COUNT; e++)
        if (e != WP_ME_REPLY && (errors & (1u << e)))
            wp_counter_add(&ws->errors[e], 1);
    if (replies_failed)
        wp_counter_add(&ws->errors[WP_ME_REPLY], replies_failed);
    for (size_t i = 0; m && out && i < out->nfired; i++)
        if (out->fired_index[i] < m->n)
            wp_slots_hit(&st->slots, w, m->slot[out->fired_index[i]]);
    writer_end(st, w);
}

void wp_mstats_aborted(struct wp_mstats *st)
{
    int w;
    wp_counter_add(&writer_begin(st, &w)->aborted, 1);
    writer_end(st, w);
}

void wp_mstats_timeout(struct wp_mstats *st)
{
    int w;
    wp_counter_add(&writer_begin(st, &w)->timeouts, 1);
    writer_end(st, w);
}

void wp_mstats_reload(struct wp_mstats *st, bool ok)
{
    atomic_fetch_add(ok ? &st->reloads_ok : &st->reloads_failed, 1);
    atomic_store(&st->last_reload_ok, ok);
    atomic_store(&st->last_reload, (long long)time(NULL));
}

/* ------------------------------------------------------------ render */

static uint64_t sum_of(const struct wp_mstats *st, size_t offset)
{
    uint64_t sum = 0;
    for (int w = 0; w < WP_MSTATS_WRITERS; w++)
        sum += wp_counter_get((const wp_counter *)((const char *)&st->w[w] + offset));
    return sum;
}

void wp_mstats_render(struct evbuffer *b, void *arg)
{
    struct wp_mstats *st = arg;
    wp_metrics_help(b, "waypost_milter_messages_total", "counter",
                    "Messages that reached the end of message, by result.");
    for (int r = 0; r < WP_MR_COUNT; r++)
        evbuffer_add_printf(b, "waypost_milter_messages_total{result=\"%s\"} %llu\n", result_names[r],
                            (unsigned long long)sum_of(st, offsetof(struct wp_mstats_writer, messages) +
                                                               (size_t)r * sizeof(wp_counter)));
    wp_metrics_hist(b, "waypost_milter_message_duration_seconds",
                    "Time from a message's end to Waypost's answer (rules, actions, replies).",
                    &st->w[0].latency, sizeof(st->w[0]), WP_MSTATS_WRITERS);
    wp_metrics_help(b, "waypost_milter_errors_total", "counter",
                    "Messages tempfailed for an account source (source) or the limits (oversized), messages "
                    "with a change libmilter refused (action), automatic replies not submitted (reply).");
    for (int e = 0; e < WP_ME_COUNT; e++)
        evbuffer_add_printf(b, "waypost_milter_errors_total{kind=\"%s\"} %llu\n", error_names[e],
                            (unsigned long long)sum_of(st, offsetof(struct wp_mstats_writer, errors) +
                                                               (size_t)e * sizeof(wp_counter)));
    wp_metrics_help(
        b, "waypost_milter_aborted_total", "counter",
        "Transactions that ended without an end of message (aborted by Postfix, closed, timed out).");
    evbuffer_add_printf(b, "waypost_milter_aborted_total %llu\n",
                        (unsigned long long)sum_of(st, offsetof(struct wp_mstats_writer, aborted)));
    wp_metrics_help(b, "waypost_milter_timeouts_total", "counter",
                    "Connections that ended milter.timeout seconds or more after their last command.");
    evbuffer_add_printf(b, "waypost_milter_timeouts_total %llu\n",
                        (unsigned long long)sum_of(st, offsetof(struct wp_mstats_writer, timeouts)));

    wp_metrics_help(b, "waypost_milter_rule_fires_total", "counter",
                    "Messages a rule fired for (the current rules; a changed rule counts from zero).");
    struct wp_snapshot *snap = wp_daemon_current(st->d);
    struct wp_mstats_map *m = wp_mstats_map_get(st, snap);
    for (size_t i = 0; i < m->n; i++) {
        evbuffer_add(b, "waypost_milter_rule_fires_total{rule=\"", 38);
        wp_metrics_label(b, wp_rules_name(m->rules, i));
        evbuffer_add_printf(b, "\",priority=\"%d\"} %llu\n", wp_rules_priority(m->rules, i),
                            (unsigned long long)wp_slots_sum(&st->slots, m->slot[i]));
    }
    wp_mstats_map_put(st, m);
    wp_metrics_reloads(b, atomic_load(&st->reloads_ok), atomic_load(&st->reloads_failed),
                       atomic_load(&st->d->generation), (long long)atomic_load(&st->last_reload),
                       atomic_load(&st->last_reload_ok));
    st->d->hooks.unref(snap);
}
