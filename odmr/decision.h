/* SPDX-License-Identifier: MIT */
/*
 * decision.h - waypost-odmrd's decision log lines: one key=value line per
 * intake, session, ATRN and delivery, fields in the order of
 * waypost-odmrd(8), LOGGING (lib/kvline.h quotes and escapes them).
 *
 *   event=intake   queue id sender size recipients result reason   (info; refused: notice)
 *   event=session  client user mechanism tls result                (info; failed: notice)
 *   event=atrn     client user domains messages result             (info; refused: notice)
 *   event=delivery queue id recipient result reply                 (info; refused: notice)
 */
#ifndef WP_ODMR_DECISION_H
#define WP_ODMR_DECISION_H

#include <event2/buffer.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/daemon.h"
#include "lib/metrics.h"

/* Counters: written by the daemon's one event loop, read by the metrics
 * thread (relaxed loads, lib/metrics.h). */
struct wp_odmr_stats {
    struct wp_daemon *d;
    const char *spool;      /* the startup spool directory, read at each scrape */
    wp_counter intake[2];   /* queued, refused */
    wp_counter sessions[2]; /* authenticated, failed */
    wp_counter atrn[4];     /* released, refused, empty, busy */
    wp_counter released;    /* messages released by ATRN */
    wp_counter delivery[2]; /* sent, refused (per recipient) */
    wp_counter reloads[2];  /* success, failure */
};
/* The endpoint's render: the counters and, read from the spool at the
 * scrape, per queue the messages, bytes and the oldest message's age. */
void wp_odmr_stats_render(struct evbuffer *out, void *st);

/* result: queued or refused; id, queue "" when refused before the spool. */
void wp_odmr_log_intake(struct wp_odmr_stats *st, const char *queue, const char *id, const char *sender,
                        size_t size, size_t nrcpt, const char *result, const char *reason);
void wp_odmr_log_session(struct wp_odmr_stats *st, const char *client, const char *user, const char *mech,
                         bool tls, bool ok);
/* result: released, refused, empty, busy. */
void wp_odmr_log_atrn(struct wp_odmr_stats *st, const char *client, const char *user, const char *domains,
                      size_t messages, const char *result);
/* result: sent or refused; reply: the customer's reply text. */
void wp_odmr_log_delivery(struct wp_odmr_stats *st, const char *queue, const char *id, const char *rcpt,
                          const char *result, const char *reply);

#endif
