/* SPDX-License-Identifier: MIT */
/*
 * stats.c - waypost-milter's counters (stats.h).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "milter/settings.h"
#include "milter/stats.h"
#include "state/snapshot.h"

static const char *const result_names[WP_MR_COUNT] = {"accept", "reject", "discard", "tempfail"};

static void writer_release(void *v)
{
    /* v is the stats' taken flag of the ending thread (never the shared one). */
    atomic_store((atomic_bool *)v, false);
}

void wp_mstats_init(struct wp_mstats *st, struct wp_daemon *d)
{
    memset(st, 0, sizeof(*st));
    st->d = d;
    wp_slots_init(&st->slots, WP_MSTATS_WRITERS);
    pthread_mutex_init(&st->shared, NULL);
    pthread_key_create(&st->writer, writer_release);
}

void wp_mstats_free(struct wp_mstats *st)
{
    if (!st->d)
        return;
    pthread_key_delete(st->writer);
    pthread_mutex_destroy(&st->shared);
    wp_slots_free(&st->slots);
    memset(st, 0, sizeof(*st));
}

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

void wp_mstats_message(struct wp_mstats *st, enum wp_mstats_result res, const struct wp_outcome *out)
{
    uint32_t slots[64];
    size_t n = 0;
    if (out && out->nfired) {
        pthread_mutex_lock(&st->slots.lock);
        for (size_t i = 0; i < out->nfired && n < 64; i++)
            slots[n++] = wp_slots_intern_locked(&st->slots, out->fired_keys[i], strlen(out->fired_keys[i]));
        pthread_mutex_unlock(&st->slots.lock);
    }
    int w = writer_of(st);
    bool shared = w == WP_MSTATS_WRITERS - 1;
    if (shared)
        pthread_mutex_lock(&st->shared);
    wp_counter_add(&st->messages[w][res], 1);
    for (size_t i = 0; i < n; i++)
        wp_slots_hit(&st->slots, w, slots[i]);
    if (shared)
        pthread_mutex_unlock(&st->shared);
}

void wp_mstats_reload(struct wp_mstats *st, bool ok)
{
    atomic_fetch_add(ok ? &st->reloads_ok : &st->reloads_failed, 1);
    atomic_store(&st->last_reload_ok, ok);
    atomic_store(&st->last_reload, (long long)time(NULL));
}

void wp_mstats_render(struct evbuffer *b, void *arg)
{
    struct wp_mstats *st = arg;
    wp_metrics_help(b, "waypost_milter_messages_total", "counter",
                    "Messages the rules looked at, by result.");
    for (int r = 0; r < WP_MR_COUNT; r++) {
        uint64_t sum = 0;
        for (int w = 0; w < WP_MSTATS_WRITERS; w++)
            sum += wp_counter_get(&st->messages[w][r]);
        evbuffer_add_printf(b, "waypost_milter_messages_total{result=\"%s\"} %llu\n", result_names[r],
                            (unsigned long long)sum);
    }
    wp_metrics_help(b, "waypost_milter_rule_fires_total", "counter",
                    "Messages a rule fired for (the current rules; a changed rule counts from zero).");
    struct wp_snapshot *snap = wp_daemon_current(st->d);
    const struct wp_rules *rules = wp_milter_conf(snap)->rules;
    for (size_t i = 0; i < wp_rules_count(rules); i++) {
        const char *key = wp_rules_key(rules, i);
        pthread_mutex_lock(&st->slots.lock);
        uint32_t slot = wp_slots_intern_locked(&st->slots, key, strlen(key));
        pthread_mutex_unlock(&st->slots.lock);
        evbuffer_add(b, "waypost_milter_rule_fires_total{rule=\"", 38);
        wp_metrics_label(b, wp_rules_name(rules, i));
        evbuffer_add_printf(b, "\",priority=\"%d\"} %llu\n", wp_rules_priority(rules, i),
                            (unsigned long long)wp_slots_sum(&st->slots, slot));
    }
    wp_metrics_reloads(b, atomic_load(&st->reloads_ok), atomic_load(&st->reloads_failed),
                       atomic_load(&st->d->generation), (long long)atomic_load(&st->last_reload),
                       atomic_load(&st->last_reload_ok));
    st->d->hooks.unref(snap);
}
