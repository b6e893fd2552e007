/* SPDX-License-Identifier: MIT */
/*
 * decision.c - waypost-odmrd's decision log lines (decision.h).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/kvline.h"
#include "lib/log.h"
#include "odmr/decision.h"
#include "odmr/spool.h"

void wp_odmr_log_intake(struct wp_odmr_stats *st, const char *queue, const char *id, const char *sender,
                        size_t size, size_t nrcpt, const char *result, const char *reason)
{
    if (st)
        wp_counter_add(&st->intake[strcmp(result, "queued") == 0 ? 0 : 1], 1);
    struct wp_kvline l;
    wp_kvline_init(&l);
    wp_kvline_add(&l, "event", "intake");
    wp_kvline_add(&l, "queue", queue);
    wp_kvline_add(&l, "id", id);
    wp_kvline_add(&l, "sender", sender);
    wp_kvline_addf(&l, "size", "%zu", size);
    wp_kvline_addf(&l, "recipients", "%zu", nrcpt);
    wp_kvline_add(&l, "result", result);
    wp_kvline_add(&l, "reason", reason);
    wp_log(strcmp(result, "queued") == 0 ? WP_LOG_INFO : WP_LOG_NOTICE, "%s", wp_kvline_text(&l));
}

void wp_odmr_log_session(struct wp_odmr_stats *st, const char *client, const char *user, const char *mech,
                         bool tls, bool ok)
{
    if (st)
        wp_counter_add(&st->sessions[ok ? 0 : 1], 1);
    struct wp_kvline l;
    wp_kvline_init(&l);
    wp_kvline_add(&l, "event", "session");
    wp_kvline_add(&l, "client", client);
    wp_kvline_add(&l, "user", user);
    wp_kvline_add(&l, "mechanism", mech);
    wp_kvline_add(&l, "tls", tls ? "yes" : "no");
    wp_kvline_add(&l, "result", ok ? "authenticated" : "failed");
    wp_log(ok ? WP_LOG_INFO : WP_LOG_NOTICE, "%s", wp_kvline_text(&l));
}

static const char *const atrn_results[4] = {"released", "refused", "empty", "busy"};

void wp_odmr_log_atrn(struct wp_odmr_stats *st, const char *client, const char *user, const char *domains,
                      size_t messages, const char *result)
{
    for (int i = 0; st && i < 4; i++)
        if (strcmp(result, atrn_results[i]) == 0)
            wp_counter_add(&st->atrn[i], 1);
    if (st)
        wp_counter_add(&st->released, messages);
    struct wp_kvline l;
    wp_kvline_init(&l);
    wp_kvline_add(&l, "event", "atrn");
    wp_kvline_add(&l, "client", client);
    wp_kvline_add(&l, "user", user);
    wp_kvline_add(&l, "domains", domains);
    wp_kvline_addf(&l, "messages", "%zu", messages);
    wp_kvline_add(&l, "result", result);
    wp_log(strcmp(result, "refused") == 0 ? WP_LOG_NOTICE : WP_LOG_INFO, "%s", wp_kvline_text(&l));
}

void wp_odmr_log_delivery(struct wp_odmr_stats *st, const char *queue, const char *id, const char *rcpt,
                          const char *result, const char *reply)
{
    if (st)
        wp_counter_add(&st->delivery[strcmp(result, "sent") == 0 ? 0 : 1], 1);
    struct wp_kvline l;
    wp_kvline_init(&l);
    wp_kvline_add(&l, "event", "delivery");
    wp_kvline_add(&l, "queue", queue);
    wp_kvline_add(&l, "id", id);
    wp_kvline_add(&l, "recipient", rcpt);
    wp_kvline_add(&l, "result", result);
    wp_kvline_add(&l, "reply", reply);
    wp_log(strcmp(result, "sent") == 0 ? WP_LOG_INFO : WP_LOG_NOTICE, "%s", wp_kvline_text(&l));
}

static void counter(struct evbuffer *b, const char *name, const char *result, const wp_counter *c)
{
    if (result)
        evbuffer_add_printf(b, "%s{result=\"%s\"} %llu\n", name, result,
                            (unsigned long long)wp_counter_get(c));
    else
        evbuffer_add_printf(b, "%s %llu\n", name, (unsigned long long)wp_counter_get(c));
}

void wp_odmr_stats_render(struct evbuffer *b, void *arg)
{
    struct wp_odmr_stats *st = arg;
    wp_metrics_help(b, "waypost_odmr_intake_total", "counter",
                    "Messages offered over LMTP (per queue stored), by result.");
    counter(b, "waypost_odmr_intake_total", "queued", &st->intake[0]);
    counter(b, "waypost_odmr_intake_total", "refused", &st->intake[1]);
    wp_metrics_help(b, "waypost_odmr_sessions_total", "counter", "Customer authentications, by result.");
    counter(b, "waypost_odmr_sessions_total", "authenticated", &st->sessions[0]);
    counter(b, "waypost_odmr_sessions_total", "failed", &st->sessions[1]);
    wp_metrics_help(b, "waypost_odmr_atrn_total", "counter", "ATRN commands, by result.");
    for (int i = 0; i < 4; i++)
        counter(b, "waypost_odmr_atrn_total", atrn_results[i], &st->atrn[i]);
    wp_metrics_help(b, "waypost_odmr_released_messages_total", "counter", "Messages ATRN released.");
    counter(b, "waypost_odmr_released_messages_total", NULL, &st->released);
    wp_metrics_help(b, "waypost_odmr_deliveries_total", "counter",
                    "Recipients delivered in reversed sessions, by result.");
    counter(b, "waypost_odmr_deliveries_total", "sent", &st->delivery[0]);
    counter(b, "waypost_odmr_deliveries_total", "refused", &st->delivery[1]);
    wp_metrics_help(b, "waypost_reloads_total", "counter", "Configuration reloads, by result.");
    counter(b, "waypost_reloads_total", "success", &st->reloads[0]);
    counter(b, "waypost_reloads_total", "failure", &st->reloads[1]);
    wp_metrics_help(b, "waypost_config_generation", "gauge",
                    "The configuration generation in use (0: the startup one).");
    evbuffer_add_printf(b, "waypost_config_generation %u\n", atomic_load(&st->d->generation));
    /* The spool as it is now (a message that leaves while we read is skipped). */
    static const char *const names[3] = {"waypost_odmr_queue_messages", "waypost_odmr_queue_bytes",
                                         "waypost_odmr_queue_oldest_age_seconds"};
    static const char *const helps[3] = {"Messages waiting in an ODMR queue.",
                                         "Bytes waiting in an ODMR queue.",
                                         "Age of the oldest message of an ODMR queue."};
    size_t nq = 0;
    char **queues = wp_spool_queues(st->spool, &nq);
    unsigned long long(*v)[3] = calloc(nq + 1, sizeof(*v));
    time_t now = time(NULL);
    for (size_t q = 0; v && q < nq; q++) {
        size_t n = 0;
        char **ids = wp_spool_list(st->spool, queues[q], &n);
        time_t oldest = now;
        for (size_t i = 0; i < n; i++) {
            struct wp_spool_msg m;
            char err[256];
            if (!wp_spool_load(st->spool, queues[q], ids[i], false, &m, err, sizeof(err)))
                continue;
            v[q][0]++;
            v[q][1] += m.size;
            if (m.arrival < oldest)
                oldest = m.arrival;
            wp_spool_msg_free(&m);
        }
        v[q][2] = v[q][0] ? (unsigned long long)(now - oldest) : 0;
        wp_spool_names_free(ids, n);
    }
    for (int k = 0; k < 3; k++) {
        wp_metrics_help(b, names[k], "gauge", helps[k]);
        for (size_t q = 0; v && q < nq; q++) {
            evbuffer_add_printf(b, "%s{queue=\"", names[k]);
            wp_metrics_label(b, queues[q]);
            evbuffer_add_printf(b, "\"} %llu\n", v[q][k]);
        }
    }
    free(v);
    wp_spool_names_free(queues, nq);
}
