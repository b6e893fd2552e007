/* SPDX-License-Identifier: MIT */
/*
 * stats.c - waypost-policyd's decision log lines and counters (stats.h).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/kvline.h"
#include "lib/log.h"
#include "lib/util.h"
#include "policy/stats.h"
#include "router/table.h"

static const char *const proto_names[WP_PSTATS_PROTOS] = {"socketmap", "tcp", "policy"};
static const char *const answer_names[WP_PA_COUNT] = {"found", "notfound", "temp",  "perm", "accept",
                                                      "relay", "reject",   "defer", "etrn"};
static const char *const relay_class_names[WP_PSTATS_RELAY_CLASSES] = {"none", "norelay", "relay", "relayall",
                                                                       "unknown_reroute"};
static const char *const etrn_names[WP_PE_COUNT] = {"released", "refused", "pass"};

void wp_pstats_init(struct wp_pstats *st, struct wp_daemon *d, int nworkers)
{
    memset(st, 0, sizeof(*st));
    st->d = d;
    st->nworkers = nworkers;
    st->workers = wp_calloc_huge((size_t)nworkers * sizeof(*st->workers)); /* line-aligned */
    wp_slots_init(&st->slots, nworkers);
    st->started = time(NULL);
}

void wp_pstats_free(struct wp_pstats *st)
{
    if (!st->workers)
        return;
    while (st->maps) {
        struct wp_pstats_map *m = st->maps;
        st->maps = m->next;
        free(m->rec_slot);
        free(m->id_slot);
        free(m->unknown_slot);
        free(m);
    }
    free(st->drain);
    wp_slots_free(&st->slots);
    free(st->workers);
    memset(st, 0, sizeof(*st));
}

/* ------------------------------------------------------------ maps */

static void drain_add_locked(struct wp_pstats *st, uint32_t slot)
{
    for (size_t i = 0; i < st->ndrain; i++)
        if (st->drain[i].slot == slot)
            return;
    st->drain = wp_realloc(st->drain, (st->ndrain + 1) * sizeof(*st->drain));
    struct wp_drain *dr = &st->drain[st->ndrain++];
    dr->slot = slot;
    uint64_t now = wp_slots_sum(&st->slots, slot); /* a domain seen before keeps its total */
    for (size_t k = 0; k < WP_DRAIN_MINUTES; k++)
        dr->sample[k] = now;
}

static struct wp_pstats_map *map_build_locked(struct wp_pstats *st, const struct wp_router *r)
{
    struct wp_pstats_map *m = wp_calloc(1, sizeof(*m));
    m->router = r;
    const struct wp_table *t = r->table;
    m->nrecs = t ? t->nrecs : 0;
    m->rec_slot = wp_calloc(m->nrecs + 1, sizeof(*m->rec_slot));
    char key[2048];
    for (uint32_t i = 0; i < m->nrecs; i++) {
        int n = snprintf(key, sizeof(key), "r\t%s\t", t->name ? t->name : "");
        wp_table_record_format(wp_table_record(t, t->ids[i]), key + n, sizeof(key) - (size_t)n);
        m->rec_slot[i] = wp_slots_intern_locked(&st->slots, key, strlen(key));
    }
    /* By record id too: a request finds its record's slot with one load
     * (a search of the table order would cost a cache miss per step on a
     * large table).  Ids are ascending in table order. */
    m->nids = m->nrecs ? t->ids[m->nrecs - 1] + 1 : 0;
    m->id_slot = wp_calloc_huge(((size_t)m->nids + 1) * sizeof(*m->id_slot)); /* random access: huge pages */
    for (uint32_t i = 0; i < m->nids; i++)
        m->id_slot[i] = WP_SLOT_NONE;
    for (uint32_t i = 0; i < m->nrecs; i++)
        m->id_slot[t->ids[i]] = m->rec_slot[i];
    m->unknown_slot = wp_calloc(r->ndomains + 1, sizeof(*m->unknown_slot));
    for (size_t i = 0; i < r->ndomains; i++) {
        m->unknown_slot[i] = WP_SLOT_NONE;
        if (r->domains[i].unknown != WP_UNKNOWN_REROUTE)
            continue;
        snprintf(key, sizeof(key), "u\t%s", r->domains[i].name);
        m->unknown_slot[i] = wp_slots_intern_locked(&st->slots, key, strlen(key));
        if (m->unknown_slot[i] != WP_SLOT_NONE)
            drain_add_locked(st, m->unknown_slot[i]);
    }
    return m;
}

struct wp_pstats_map *wp_pstats_map_get(struct wp_pstats *st, const struct wp_router *r)
{
    pthread_mutex_lock(&st->slots.lock);
    struct wp_pstats_map *m = st->maps;
    while (m && m->router != r)
        m = m->next;
    if (!m) {
        /* Once per Router (per reload): the first worker to meet it maps
         * its records, the others find the map here. */
        m = map_build_locked(st, r);
        m->next = st->maps;
        st->maps = m;
    }
    m->refs++;
    pthread_mutex_unlock(&st->slots.lock);
    return m;
}

void wp_pstats_map_put(struct wp_pstats *st, struct wp_pstats_map *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&st->slots.lock);
    if (--m->refs == 0) {
        for (struct wp_pstats_map **p = &st->maps; *p; p = &(*p)->next)
            if (*p == m) {
                *p = m->next;
                break;
            }
        free(m->rec_slot);
        free(m->id_slot);
        free(m->unknown_slot);
        free(m);
    }
    pthread_mutex_unlock(&st->slots.lock);
}

void wp_pstats_count(struct wp_pstats *st, int w, const struct wp_pstats_map *m, int proto, int map,
                     enum wp_pstats_answer a, const struct wp_decision *dec, uint64_t pass_start_ns)
{
    struct wp_pstats_worker *ws = &st->workers[w];
    wp_counter_add(&ws->req[proto][map][a], 1);
    if (ws->pass_requests++ == 0)
        ws->pass_start_ns = pass_start_ns;
    if (!dec || !dec->resolved || !m)
        return;
    if (dec->record) {
        if (ws->npending == WP_PSTATS_PENDING)
            wp_pstats_fold(st, w, m);
        uint32_t id = (uint32_t)((size_t)((const char *)dec->record - m->router->table->arena) / 8);
        ws->pending[ws->npending++] = id;
        if (id < m->nids) /* its slot comes into the cache while the request goes on */
            __builtin_prefetch(&m->id_slot[id]);
    }
    if (map != WP_PSTATS_POLICY_MAP || (a != WP_PA_ACCEPT && a != WP_PA_RELAY))
        return;
    if (dec->unknown && dec->relay_class == WP_RC_UNKNOWN_REROUTE)
        wp_slots_hit(&st->slots, w, m->unknown_slot[dec->unknown - m->router->domains]);
    if (dec->relay_class < WP_PSTATS_RELAY_CLASSES && dec->relay_class != WP_RC_NONE)
        wp_counter_add(&ws->relay_class[dec->relay_class], 1);
}

void wp_pstats_fold(struct wp_pstats *st, int w, const struct wp_pstats_map *m)
{
    struct wp_pstats_worker *ws = &st->workers[w];
    uint32_t *ids = ws->pending;
    unsigned n = ws->npending;
    ws->npending = 0;
    if (!m)
        return;
    /* Three sweeps, so that the cache misses of one sweep overlap instead
     * of following each other: the slots, then the counters, then the adds. */
    for (unsigned i = 0; i < n; i++)
        if (ids[i] < m->nids)
            __builtin_prefetch(&m->id_slot[ids[i]]);
    for (unsigned i = 0; i < n; i++) {
        ids[i] = ids[i] < m->nids ? m->id_slot[ids[i]] : WP_SLOT_NONE;
        wp_slots_prefetch(&st->slots, w, ids[i]);
    }
    for (unsigned i = 0; i < n; i++)
        wp_slots_hit(&st->slots, w, ids[i]);
}

void wp_pstats_pass_end(struct wp_pstats *st, int w, const struct wp_pstats_map *m)
{
    struct wp_pstats_worker *ws = &st->workers[w];
    if (ws->npending)
        wp_pstats_fold(st, w, m);
    if (!ws->pass_requests)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    wp_hist_add_n(&ws->latency, now > ws->pass_start_ns ? now - ws->pass_start_ns : 0, ws->pass_requests);
    ws->pass_requests = 0;
}

enum wp_pstats_answer wp_pstats_policy_answer(const char *action, const struct wp_decision *dec)
{
    if (dec->kind == WP_DECIDED_RELAY)
        return WP_PA_RELAY;
    if (dec->kind != WP_DECIDED_REFUSE)
        return WP_PA_ACCEPT;
    return action[0] == '4' ? WP_PA_DEFER : WP_PA_REJECT;
}

/* ------------------------------------------------------------ log lines */

static void add_record(struct wp_kvline *l, const struct wp_router *r, const struct wp_decision *dec)
{
    if (dec && dec->record && r && r->table) {
        wp_kvline_addf(l, "record", "%s:%u", r->table->name ? r->table->name : "",
                       (unsigned)dec->record->line);
    } else {
        wp_kvline_add(l, "record", "");
    }
    wp_kvline_add(l, "unknown", dec && dec->unknown ? dec->unknown->name : "");
}

static void add_client(struct wp_kvline *l, const struct wp_policy_request *req)
{
    wp_kvline_add(l, "queue_id", req->queue_id);
    wp_kvline_addf(l, "client", "%s[%s]", req->client_name[0] ? req->client_name : "unknown",
                   req->client_address);
    wp_kvline_add(l, "sasl_username", req->sasl_username);
}

void wp_pstats_log_policy(const struct wp_router *r, const struct wp_policy_request *req, const char *action,
                          const struct wp_decision *dec)
{
    enum wp_log_level level =
        dec->kind == WP_DECIDED_REFUSE || dec->kind == WP_DECIDED_RELAY ? WP_LOG_INFO : WP_LOG_DEBUG;
    if (!wp_log_enabled(level)) /* most requests at the default level: no line to build */
        return;
    struct wp_kvline l;
    wp_kvline_init(&l);
    wp_kvline_add(&l, "event", "policy");
    add_client(&l, req);
    wp_kvline_add(&l, "sender", req->sender);
    wp_kvline_add(&l, "recipient", req->recipient);
    wp_kvline_add(&l, "action", action);
    wp_kvline_add(&l, "decision",
                  dec->kind == WP_DECIDED_REFUSE  ? "refuse"
                  : dec->kind == WP_DECIDED_RELAY ? "relay"
                  : dec->kind == WP_DECIDED_NONE  ? "none"
                                                  : "accept");
    add_record(&l, r, dec);
    wp_log(level, "%s", wp_kvline_text(&l));
}

void wp_pstats_log_etrn(const struct wp_policy_request *req, const struct wp_etrn_decision *d)
{
    struct wp_kvline l;
    wp_kvline_init(&l);
    wp_kvline_add(&l, "event", "etrn");
    add_client(&l, req);
    wp_kvline_add(&l, "domain", d->name[0] ? d->name : req->etrn_domain);
    wp_kvline_add(&l, "queue", d->queue);
    wp_kvline_add(&l, "action", d->action);
    wp_kvline_add(&l, "result",
                  d->outcome == WP_ETRN_RELEASE  ? "released"
                  : d->outcome == WP_ETRN_REFUSE ? "refused"
                                                 : "pass");
    wp_log(d->outcome == WP_ETRN_PASS ? WP_LOG_DEBUG : WP_LOG_NOTICE, "%s", wp_kvline_text(&l));
}

/* ------------------------------------------------------------ drain */

void wp_pstats_tick(void *arg)
{
    struct wp_pstats *st = arg;
    pthread_mutex_lock(&st->slots.lock);
    st->minutes++;
    for (size_t i = 0; i < st->ndrain; i++)
        st->drain[i].sample[st->minutes % WP_DRAIN_MINUTES] = wp_slots_sum(&st->slots, st->drain[i].slot);
    pthread_mutex_unlock(&st->slots.lock);
}

static uint64_t drain_since_locked(const struct wp_pstats *st, const struct wp_drain *dr, uint64_t now,
                                   unsigned minutes)
{
    unsigned back = st->minutes < minutes ? st->minutes : minutes;
    uint64_t then = dr->sample[(st->minutes - back) % WP_DRAIN_MINUTES];
    return now >= then ? now - then : 0;
}

/* ------------------------------------------------------------ render */

void wp_pstats_render(struct evbuffer *b, void *arg)
{
    struct wp_pstats *st = arg;
    int nw = st->nworkers;

    wp_metrics_help(b, "waypost_policy_requests_total", "counter",
                    "Requests answered, by protocol, map and answer.");
    for (int p = 0; p < WP_PSTATS_PROTOS; p++)
        for (int m = 0; m <= WP_MAP_COUNT; m++)
            for (int a = 0; a < WP_PA_COUNT; a++) {
                uint64_t sum = 0;
                for (int w = 0; w < nw; w++)
                    sum += wp_counter_get(&st->workers[w].req[p][m][a]);
                if (sum)
                    evbuffer_add_printf(
                        b,
                        "waypost_policy_requests_total{protocol=\"%s\",map=\"%s\",answer=\"%s\"} "
                        "%llu\n",
                        proto_names[p], m == WP_PSTATS_POLICY_MAP ? "policy" : wp_map_name(m),
                        answer_names[a], (unsigned long long)sum);
            }
    uint64_t errors = 0, timeouts = 0;
    for (int w = 0; w < nw; w++) {
        errors += wp_counter_get(&st->workers[w].errors);
        timeouts += wp_counter_get(&st->workers[w].timeouts);
    }
    wp_metrics_help(b, "waypost_policy_errors_total", "counter",
                    "Malformed or oversized requests (the connection closed).");
    evbuffer_add_printf(b, "waypost_policy_errors_total %llu\n", (unsigned long long)errors);
    wp_metrics_help(b, "waypost_policy_timeouts_total", "counter",
                    "Connections closed after the idle timeout.");
    evbuffer_add_printf(b, "waypost_policy_timeouts_total %llu\n", (unsigned long long)timeouts);

    wp_metrics_hist(b, "waypost_policy_request_duration_seconds", "Time from a whole request to its answer.",
                    &st->workers[0].latency, sizeof(st->workers[0]), nw);

    wp_metrics_help(b, "waypost_policy_relay_total", "counter",
                    "Accepted policy requests whose mail leaves the server, by the relay grant met.");
    for (int c = 1; c < WP_PSTATS_RELAY_CLASSES; c++) {
        uint64_t sum = 0;
        for (int w = 0; w < nw; w++)
            sum += wp_counter_get(&st->workers[w].relay_class[c]);
        evbuffer_add_printf(b, "waypost_policy_relay_total{class=\"%s\"} %llu\n", relay_class_names[c],
                            (unsigned long long)sum);
    }
    wp_metrics_help(b, "waypost_policy_etrn_total", "counter", "ETRN requests, by result.");
    for (int e = 0; e < WP_PE_COUNT; e++) {
        uint64_t sum = 0;
        for (int w = 0; w < nw; w++)
            sum += wp_counter_get(&st->workers[w].etrn[e]);
        evbuffer_add_printf(b, "waypost_policy_etrn_total{result=\"%s\"} %llu\n", etrn_names[e],
                            (unsigned long long)sum);
    }

    wp_metrics_reloads(b, atomic_load(&st->reloads_ok), atomic_load(&st->reloads_failed),
                       atomic_load(&st->d->generation), (long long)atomic_load(&st->last_reload),
                       atomic_load(&st->last_reload_ok));
    wp_metrics_help(b, "waypost_start_time_seconds", "gauge", "When the daemon started.");
    evbuffer_add_printf(b, "waypost_start_time_seconds %lld\n", (long long)st->started);

    /* Per record and per domain: the current configuration's. */
    struct wp_snapshot *snap = wp_daemon_current(st->d);
    struct wp_pstats_map *m = wp_pstats_map_get(st, snap->router);
    const struct wp_router *r = snap->router;
    const struct wp_table *t = r->table;
    wp_metrics_help(b, "waypost_router_record_hits_total", "counter",
                    "Lookups and policy requests a Router record decided (records with hits only).");
    char text[2048];
    for (uint32_t i = 0; i < m->nrecs; i++) {
        uint64_t hits = wp_slots_sum(&st->slots, m->rec_slot[i]);
        if (!hits)
            continue;
        const struct wp_record *rec = wp_table_record(t, t->ids[i]);
        wp_table_record_format(rec, text, sizeof(text));
        evbuffer_add(b, "waypost_router_record_hits_total{file=\"", 39);
        wp_metrics_label(b, t->name ? t->name : "");
        evbuffer_add_printf(b, "\",line=\"%u\",record=\"", (unsigned)rec->line);
        wp_metrics_label(b, text);
        evbuffer_add_printf(b, "\"} %llu\n", (unsigned long long)hits);
    }
    static const char *const drain_names[3] = {"waypost_router_unknown_reroutes_total",
                                               "waypost_router_unknown_reroutes_last_hour",
                                               "waypost_router_unknown_reroutes_last_day"};
    static const char *const drain_help[3] = {
        "Recipients accepted at RCPT for the old server by a domain's Mail to Unknown reroute.",
        "The same, in the last 60 minutes (since the start if shorter).",
        "The same, in the last 24 hours (since the start if shorter)."};
    for (int k = 0; k < 3; k++) {
        wp_metrics_help(b, drain_names[k], k == 0 ? "counter" : "gauge", drain_help[k]);
        pthread_mutex_lock(&st->slots.lock);
        for (size_t i = 0; i < r->ndomains; i++) {
            uint32_t slot = m->unknown_slot[i];
            if (slot == WP_SLOT_NONE)
                continue;
            uint64_t v = wp_slots_sum(&st->slots, slot);
            for (size_t j = 0; k > 0 && j < st->ndrain; j++)
                if (st->drain[j].slot == slot)
                    v = drain_since_locked(st, &st->drain[j], v, k == 1 ? 60 : 1440);
            evbuffer_add_printf(b, "%s{domain=\"", drain_names[k]);
            wp_metrics_label(b, r->domains[i].name);
            evbuffer_add_printf(b, "\"} %llu\n", (unsigned long long)v);
        }
        pthread_mutex_unlock(&st->slots.lock);
    }
    wp_pstats_map_put(st, m);
    st->d->hooks.unref(snap);
}
