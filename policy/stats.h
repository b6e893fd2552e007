/* SPDX-License-Identifier: MIT */
/*
 * stats.h - waypost-policyd's decision log lines and counters.
 *
 * Log lines (one per decision, key=value, fields in this order; see
 * waypost-policyd(8), LOGGING):
 *   policy: event=policy queue_id client sasl_username sender recipient
 *           action decision record unknown
 *     at info, for a refusal and for relaying opened to an untrusted client
 *     (decision=refuse|relay); other decisions at debug.
 *   ETRN:   event=etrn queue_id client sasl_username domain queue action
 *           result (released, refused, pass) at notice (pass: debug).
 * Table lookups are logged at debug only.
 *
 * Counters: each worker owns a struct wp_pstats_worker and adds without
 * locks (lib/metrics.h); the endpoint's render sums them.  Record hits and
 * Mail to Unknown reroutes are slots keyed by record file and text / by
 * domain, so they survive a reload while unchanged.  A Router gets its
 * map (record ordinal -> slot) from wp_pstats_map_get the first time a
 * worker or a scrape meets it.
 *
 * Why hits wait for the end of the pass: a table of many records spreads
 * its hits over more memory than the caches hold, and finding a record's
 * counter costs two dependent cache misses (its slot, then the counter).
 * Taken one request at a time they stall the request; taken together at
 * the end of the pass (before its answers go out) the misses of many hits
 * overlap (prefetched).  The latency histogram takes its one clock read a
 * pass the same way: every request of a pass waits from the start of the
 * pass (libevent's cached time) to the send of the pass's answers.
 *
 * Counted per request: protocol, map (policy requests: map="policy") and
 * answer; a hit on the Router record that decided (route->record) for
 * every lookup and policy request that resolved; a reroute for the Mail to
 * Unknown domain on a policy request accepted by it (once per recipient at
 * RCPT, the count the migration drain shows); the relay class of accepted
 * policy requests whose mail leaves the server; ETRN results.
 */
#ifndef WP_POLICY_STATS_H
#define WP_POLICY_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "lib/daemon.h"
#include "lib/metrics.h"
#include "policy/etrn.h"
#include "policy/maps.h"
#include "policy/settings.h"

enum wp_pstats_answer {
    WP_PA_FOUND,
    WP_PA_NOTFOUND,
    WP_PA_TEMP,
    WP_PA_PERM, /* lookups */
    WP_PA_ACCEPT,
    WP_PA_RELAY,
    WP_PA_REJECT,
    WP_PA_DEFER,
    WP_PA_ETRN, /* policy */
    WP_PA_COUNT
};
#define WP_PSTATS_POLICY_MAP WP_MAP_COUNT /* the "map" of policy requests */
#define WP_PSTATS_PROTOS 3
#define WP_PSTATS_RELAY_CLASSES 5
enum wp_pstats_etrn { WP_PE_RELEASED, WP_PE_REFUSED, WP_PE_PASS, WP_PE_COUNT };

#define WP_PSTATS_PENDING 256

/* Cache-line aligned (and so sized): a worker's hot fields never share a
 * line with another worker's. */
struct wp_pstats_worker {
    _Alignas(64) wp_counter req[WP_PSTATS_PROTOS][WP_MAP_COUNT + 1][WP_PA_COUNT];
    wp_counter errors;   /* malformed or oversized requests */
    wp_counter timeouts; /* connections closed idle */
    struct wp_hist latency;
    wp_counter relay_class[WP_PSTATS_RELAY_CLASSES];
    wp_counter etrn[WP_PE_COUNT];
    /* The worker's current event-loop pass (the worker's alone): the
     * record ids its requests hit, folded into the slots at the end of the
     * pass, and how many requests it answered since pass_start_ns. */
    uint32_t pending[WP_PSTATS_PENDING];
    unsigned npending;
    unsigned pass_requests;
    uint64_t pass_start_ns;
};

/* What slots a Router's records and domains have. */
struct wp_pstats_map {
    const struct wp_router *router;
    int refs; /* under the slots' lock */
    uint32_t nrecs;
    uint32_t *rec_slot; /* table order -> slot (for the render) */
    uint32_t *id_slot;  /* record id (its arena offset / 8) -> slot: the request path's one lookup */
    uint32_t nids;
    uint32_t *unknown_slot; /* domain index -> slot (WP_SLOT_NONE: no reroute) */
    struct wp_pstats_map *next;
};

/* Minute samples of the reroute totals, for "last hour / last day". */
#define WP_DRAIN_MINUTES 1441
struct wp_drain {
    uint32_t slot;
    uint64_t sample[WP_DRAIN_MINUTES]; /* ring of totals, one a minute */
};

struct wp_pstats {
    int nworkers;
    struct wp_pstats_worker *workers;
    struct wp_slots slots; /* its lock also guards maps and the drain */
    struct wp_pstats_map *maps;
    struct wp_drain *drain;
    size_t ndrain;
    unsigned minutes; /* samples taken */
    time_t started;
    /* Reloads, written by the main thread. */
    atomic_uint reloads_ok, reloads_failed;
    atomic_llong last_reload; /* unix time, 0: none yet */
    atomic_bool last_reload_ok;
    struct wp_daemon *d; /* the skeleton: generation, current snapshot */
};

void wp_pstats_init(struct wp_pstats *st, struct wp_daemon *d, int nworkers);
void wp_pstats_free(struct wp_pstats *st);

/* The map of a Router (referenced); release with wp_pstats_map_put. */
struct wp_pstats_map *wp_pstats_map_get(struct wp_pstats *st, const struct wp_router *r);
void wp_pstats_map_put(struct wp_pstats *st, struct wp_pstats_map *m);

/* Count one request of worker w (dec may be NULL), answered in the pass
 * that started at pass_start_ns (ns since the epoch).  Its record hit waits
 * in the pass's pending ids: call wp_pstats_pass_end (or wp_pstats_fold)
 * with the same map before a scrape can see it. */
void wp_pstats_count(struct wp_pstats *st, int w, const struct wp_pstats_map *m, int proto, int map,
                     enum wp_pstats_answer a, const struct wp_decision *dec, uint64_t pass_start_ns);
/* Add the pending record hits of worker w (their ids are m's records). */
void wp_pstats_fold(struct wp_pstats *st, int w, const struct wp_pstats_map *m);
/* The end of worker w's pass, before its answers are sent (so that a
 * client that has its answer finds it counted): fold the hits, and one
 * latency sample, now - pass start, for each request the pass answered. */
void wp_pstats_pass_end(struct wp_pstats *st, int w, const struct wp_pstats_map *m);

/* The answer kind of a policy action. */
enum wp_pstats_answer wp_pstats_policy_answer(const char *action, const struct wp_decision *dec);

/* The decision log lines. */
void wp_pstats_log_policy(const struct wp_router *r, const struct wp_policy_request *req, const char *action,
                          const struct wp_decision *dec);
void wp_pstats_log_etrn(const struct wp_policy_request *req, const struct wp_etrn_decision *d);

/* A minute sample of the drain (the endpoint thread calls it every minute). */
void wp_pstats_tick(void *st);

/* Prometheus text of everything (the endpoint's render). */
void wp_pstats_render(struct evbuffer *out, void *st);

#endif
