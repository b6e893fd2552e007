/* SPDX-License-Identifier: MIT */
/*
 * stats.h - waypost-milter's counters and metrics endpoint.
 *
 * libmilter runs each connection in a thread of its own, so counters are
 * kept per writer: a thread takes a free writer block the first time it
 * counts and gives it back when it ends (its counts stay in the block and
 * in the sums).  More threads than WP_MSTATS_WRITERS - 1 at once share the
 * last block under a lock.  Counted per message: its result; per rule that
 * fired: one fire, kept under the rule's name and canonical text (a slot,
 * lib/metrics.h), so a reload keeps the count of an unchanged rule and a
 * changed rule starts from zero.  The slot of a fired rule is looked up
 * under the slots' lock once per message and rule (a message costs
 * milliseconds; the lock, uncontended, some nanoseconds).
 */
#ifndef WP_MILTER_STATS_H
#define WP_MILTER_STATS_H

#include <stdatomic.h>
#include <stdbool.h>

#include "lib/daemon.h"
#include "lib/metrics.h"
#include "milter/rules.h"

#define WP_MSTATS_WRITERS 64
enum wp_mstats_result { WP_MR_ACCEPT, WP_MR_REJECT, WP_MR_DISCARD, WP_MR_TEMPFAIL, WP_MR_COUNT };

struct wp_mstats {
    struct wp_daemon *d;
    struct wp_slots slots;
    wp_counter messages[WP_MSTATS_WRITERS][WP_MR_COUNT];
    atomic_bool taken[WP_MSTATS_WRITERS];
    pthread_mutex_t shared; /* the last writer, when every other one is taken */
    pthread_key_t writer;   /* a thread's writer index + 1 */
    atomic_uint reloads_ok, reloads_failed;
    atomic_llong last_reload;
    atomic_bool last_reload_ok;
};

void wp_mstats_init(struct wp_mstats *st, struct wp_daemon *d);
void wp_mstats_free(struct wp_mstats *st);
/* Count one message: its result and the rules that fired (out may be NULL). */
void wp_mstats_message(struct wp_mstats *st, enum wp_mstats_result res, const struct wp_outcome *out);
void wp_mstats_reload(struct wp_mstats *st, bool ok);
/* The endpoint's render (lib/metrics.h). */
void wp_mstats_render(struct evbuffer *out, void *st);

#endif
