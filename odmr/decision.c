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
#include "lib/util.h"
#include "odmr/decision.h"
#include "odmr/settings.h"
#include "odmr/spool.h"
#include "router/router.h"
#include "state/snapshot.h"

/* ------------------------------------------------------------ counting */

static const char *const proto_names[WP_OP_COUNT] = {"lmtp", "odmr"};
static const char *const cmd_names[WP_OC_COUNT] = {
    "LHLO", "EHLO", "HELO", "MAIL",     "RCPT", "DATA",          "END-OF-MESSAGE",
    "RSET", "NOOP", "QUIT", "STARTTLS", "AUTH", "AUTH-RESPONSE", "ATRN",
    "VRFY", "EXPN", "ETRN", "TURN",     "BDAT", "HELP",          "other"};
static const char *const answer_names[WP_ODMR_ANSWERS] = {"2xx", "3xx", "4xx", "5xx"};
static const char *const error_names[WP_OE_COUNT] = {"line", "syntax", "sequence", "unknown", "reply"};
static const char *const timeout_names[WP_OT_COUNT] = {"idle", "auth"};

enum wp_odmr_cmd wp_odmr_command_of(const char *line)
{
    size_t n = strcspn(line, " ");
    for (int i = 0; i < WP_OC_OTHER; i++)
        if (i != WP_OC_EOM && i != WP_OC_AUTH_RESPONSE && strlen(cmd_names[i]) == n &&
            wp_strnieq(line, cmd_names[i], n))
            return (enum wp_odmr_cmd)i;
    return WP_OC_OTHER;
}

void wp_odmr_count_command(struct wp_odmr_stats *st, enum wp_odmr_proto p, enum wp_odmr_cmd cmd, int code,
                           uint64_t ns)
{
    if (!st)
        return;
    int a = code / 100 - 2; /* our replies are 2xx to 5xx */
    wp_counter_add(&st->commands[p][cmd][a < 0 ? 0 : a > 3 ? 3 : a], 1);
    wp_hist_add(&st->latency, ns);
}

void wp_odmr_count_error(struct wp_odmr_stats *st, enum wp_odmr_proto p, enum wp_odmr_error e)
{
    if (st)
        wp_counter_add(&st->errors[p][e], 1);
}

enum wp_odmr_error wp_odmr_error_of(int code)
{
    switch (code) {
    case 502: return WP_OE_UNKNOWN;
    case 503:
    case 530:
    case 538: return WP_OE_SEQUENCE;
    default: /* 500, 501, 504 */ return WP_OE_SYNTAX;
    }
}

void wp_odmr_count_timeout(struct wp_odmr_stats *st, enum wp_odmr_proto p, enum wp_odmr_timeout t)
{
    if (st)
        wp_counter_add(&st->timeouts[p][t], 1);
}

/* ------------------------------------------------------------ decision lines */

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
    wp_metrics_help(
        b, "waypost_odmr_commands_total", "counter",
        "Commands answered on the LMTP intake and the customer side, by command and reply class.");
    for (int p = 0; p < WP_OP_COUNT; p++)
        for (int c = 0; c < WP_OC_COUNT; c++)
            for (int a = 0; a < WP_ODMR_ANSWERS; a++) {
                uint64_t n = wp_counter_get(&st->commands[p][c][a]);
                if (n)
                    evbuffer_add_printf(
                        b,
                        "waypost_odmr_commands_total{protocol=\"%s\",command=\"%s\",answer=\"%s\"} "
                        "%llu\n",
                        proto_names[p], cmd_names[c], answer_names[a], (unsigned long long)n);
            }
    wp_metrics_hist(b, "waypost_odmr_command_duration_seconds",
                    "Time from a whole command (or the end of an LMTP message) to its final reply.",
                    &st->latency, sizeof(st->latency), 1);
    wp_metrics_help(b, "waypost_odmr_errors_total", "counter",
                    "Protocol errors: bad lines, refused commands by kind, malformed customer replies.");
    for (int p = 0; p < WP_OP_COUNT; p++)
        for (int e = 0; e < WP_OE_COUNT; e++)
            if (p == WP_OP_ODMR || e != WP_OE_REPLY)
                evbuffer_add_printf(b, "waypost_odmr_errors_total{protocol=\"%s\",kind=\"%s\"} %llu\n",
                                    proto_names[p], error_names[e],
                                    (unsigned long long)wp_counter_get(&st->errors[p][e]));
    wp_metrics_help(b, "waypost_odmr_timeouts_total", "counter", "Connections closed on a timeout, by kind.");
    for (int p = 0; p < WP_OP_COUNT; p++)
        for (int t = 0; t < WP_OT_COUNT; t++)
            if (p == WP_OP_ODMR || t != WP_OT_AUTH)
                evbuffer_add_printf(b, "waypost_odmr_timeouts_total{protocol=\"%s\",kind=\"%s\"} %llu\n",
                                    proto_names[p], timeout_names[t],
                                    (unsigned long long)wp_counter_get(&st->timeouts[p][t]));
    wp_metrics_reloads(b, (unsigned)wp_counter_get(&st->reloads[0]),
                       (unsigned)wp_counter_get(&st->reloads[1]), atomic_load(&st->d->generation),
                       atomic_load(&st->last_reload), atomic_load(&st->last_reload_ok));
    /* The spool as it is now (a message that leaves while we read is skipped). */
    static const char *const names[3] = {"waypost_odmr_queue_messages", "waypost_odmr_queue_bytes",
                                         "waypost_odmr_queue_oldest_age_seconds"};
    static const char *const helps[3] = {"Messages waiting in a queue of the spool (ATRN or held).",
                                         "Bytes waiting in a queue of the spool (ATRN or held).",
                                         "Age of the oldest message of a queue of the spool (ATRN or held)."};
    static const char *const kinds[4] = {"none", "held", "atrn", "held+atrn"};
    size_t nq = 0;
    char **queues = wp_spool_queues(st->spool, &nq);
    struct wp_snapshot *snap = wp_daemon_current(st->d);
    unsigned long long(*v)[4] = calloc(nq + 1, sizeof(*v)); /* messages, bytes, age; the kind */
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
        v[q][2] = v[q][0] && now > oldest ? (unsigned long long)(now - oldest) : 0; /* a clock set back: 0 */
        v[q][3] = (wp_router_queue_listed(snap->router, WP_ROUTE_HOLD, queues[q]) ? 1 : 0) +
                  (wp_router_queue_listed(snap->router, WP_ROUTE_ODMR, queues[q]) ? 2 : 0);
        wp_spool_names_free(ids, n);
    }
    for (int k = 0; k < 3; k++) {
        wp_metrics_help(b, names[k], "gauge", helps[k]);
        for (size_t q = 0; v && q < nq; q++) {
            evbuffer_add_printf(b, "%s{queue=\"", names[k]);
            wp_metrics_label(b, queues[q]);
            evbuffer_add_printf(b, "\",kind=\"%s\"} %llu\n", kinds[v[q][3]], v[q][k]);
        }
    }
    st->d->hooks.unref(snap);
    free(v);
    wp_spool_names_free(queues, nq);
}
