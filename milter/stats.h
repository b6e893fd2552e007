/* SPDX-License-Identifier: MIT */
/*
 * stats.h - waypost-milter's counters and metrics endpoint.
 *
 * libmilter serves connections from many threads (Debian's from a pool of
 * workers that take a connection's commands as they come), so counters are
 * kept per writer: a thread takes a free writer block the first time it
 * counts and gives it back when it ends (its counts stay in the block and
 * in the sums).  More threads than WP_MSTATS_WRITERS - 1 at once share the
 * last block under a lock.
 *
 * Counted per message that reached the end of message: its result, the
 * time Waypost took to answer it (from the end of message to the answer:
 * the rules, their actions, the replies submitted), the errors met, and
 * one fire for each rule that fired.  Per transaction that ended without
 * an end of message: one abort; per connection that ended milter.timeout
 * or more after its last command: one timeout (see waypost-milter(8),
 * METRICS).
 *
 * Rule fires: a rule's count is a slot (lib/metrics.h) keyed by its name
 * and canonical text, so a reload keeps the count of an unchanged rule
 * and a changed rule starts from zero.  A map (rule index -> slot) is
 * built once per rules object, under the slots' lock, by the first
 * connection (or scrape) that meets it; a connection keeps its map and
 * fetches another only when its message's rules are not the map's, so
 * counting a message takes no lock.  A map holds a reference to the
 * snapshot of its rules: the rules cannot be freed while a map names
 * them, so no later rules object can take their address and be mistaken
 * for them.  Limit: a connection idle after a reload keeps the old
 * snapshot until its next message or its end.
 */
#ifndef WP_MILTER_STATS_H
#define WP_MILTER_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/daemon.h"
#include "lib/metrics.h"
#include "milter/rules.h"

struct wp_snapshot;

#define WP_MSTATS_WRITERS 64
enum wp_mstats_result { WP_MR_ACCEPT, WP_MR_REJECT, WP_MR_DISCARD, WP_MR_TEMPFAIL, WP_MR_COUNT };
/* Errors, each counted once per message (reply: once per reply). */
enum wp_mstats_error {
    WP_ME_SOURCE,    /* tempfailed: an account source did not answer (a TEMP route) */
    WP_ME_OVERSIZED, /* tempfailed: more recipients or header bytes than the limits */
    WP_ME_ACTION,    /* libmilter refused a change (recipient, header, reply text) */
    WP_ME_REPLY,     /* an automatic reply the host MTA did not take */
    WP_ME_COUNT
};

struct wp_mstats_writer {
    _Alignas(64) wp_counter messages[WP_MR_COUNT]; /* a cache line of its own: no false sharing */
    wp_counter errors[WP_ME_COUNT];
    wp_counter aborted;
    wp_counter timeouts;
    struct wp_hist latency;
};

/* The slots of one rules object's rules. */
struct wp_mstats_map {
    const struct wp_rules *rules;
    struct wp_snapshot *snap; /* referenced: keeps rules alive */
    int refs;                 /* under the slots' lock */
    size_t n;
    uint32_t *slot; /* rule index (evaluation order) -> slot */
    struct wp_mstats_map *next;
};

struct wp_mstats {
    struct wp_daemon *d;
    struct wp_slots slots; /* its lock also guards maps */
    struct wp_mstats_map *maps;
    struct wp_mstats_writer w[WP_MSTATS_WRITERS];
    atomic_bool taken[WP_MSTATS_WRITERS];
    pthread_mutex_t shared; /* the last writer, when every other one is taken */
    pthread_key_t writer;   /* a thread's writer index + 1 */
    int timeout;            /* milter.timeout (seconds) as libmilter took it at start */
    atomic_uint reloads_ok, reloads_failed;
    atomic_llong last_reload;
    atomic_bool last_reload_ok;
};

/* d may be NULL (tests): then there is nothing to render. */
void wp_mstats_init(struct wp_mstats *st, struct wp_daemon *d, int timeout);
void wp_mstats_free(struct wp_mstats *st);

/* The map of snap's rules (referenced); release with wp_mstats_map_put. */
struct wp_mstats_map *wp_mstats_map_get(struct wp_mstats *st, struct wp_snapshot *snap);
void wp_mstats_map_put(struct wp_mstats *st, struct wp_mstats_map *m);

/* Count one message: its result, the time from its end of message to the
 * answer (ns), its errors (a bit per wp_mstats_error; replies_failed for
 * WP_ME_REPLY) and the rules that fired (out may be NULL; its indexes are
 * those of m's rules). */
void wp_mstats_message(struct wp_mstats *st, const struct wp_mstats_map *m, enum wp_mstats_result res,
                       uint64_t ns, unsigned errors, unsigned replies_failed, const struct wp_outcome *out);
/* A transaction that ended without an end of message. */
void wp_mstats_aborted(struct wp_mstats *st);
/* A connection that ended milter.timeout or more after its last command. */
void wp_mstats_timeout(struct wp_mstats *st);
void wp_mstats_reload(struct wp_mstats *st, bool ok);
/* The endpoint's render (lib/metrics.h). */
void wp_mstats_render(struct evbuffer *out, void *st);

#endif
