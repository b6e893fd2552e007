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

#include <stdbool.h>
#include <stddef.h>

/* result: queued or refused; id, queue "" when refused before the spool. */
void wp_odmr_log_intake(const char *queue, const char *id, const char *sender, size_t size, size_t nrcpt,
                        const char *result, const char *reason);
void wp_odmr_log_session(const char *client, const char *user, const char *mech, bool tls, bool ok);
/* result: released, refused, empty, busy. */
void wp_odmr_log_atrn(const char *client, const char *user, const char *domains, size_t messages,
                      const char *result);
/* result: sent or refused; reply: the customer's reply text. */
void wp_odmr_log_delivery(const char *queue, const char *id, const char *rcpt, const char *result,
                          const char *reply);

#endif
