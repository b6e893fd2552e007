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
 *
 * Counters (waypost-odmrd(8), METRICS): the decisions above; every command
 * answered on the LMTP intake and the customer side by command and reply
 * class, the time from the whole command to its final reply (one
 * histogram for both sides); protocol errors and timeouts; reloads; and,
 * read from the spool at each scrape, per queue (ATRN and held alike) the
 * messages, bytes and the oldest message's age.
 *
 * What a command is: a command line; the SASL response line of an AUTH
 * (AUTH-RESPONSE); the end of an LMTP message (END-OF-MESSAGE, whose
 * replies, one per recipient, count once, with the highest class among
 * them).  An intermediate reply (334, 354) answers its line (3xx).  The
 * command label is bounded: the verbs either side knows, else "other".
 * A failed AUTH's deliberate delay (odmr.auth_failure_delay, the penalty
 * slot) is not in the latency: the clock stops while the answer waits.
 */
#ifndef WP_ODMR_DECISION_H
#define WP_ODMR_DECISION_H

#include <event2/buffer.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/daemon.h"
#include "lib/metrics.h"

/* The sides commands are counted on: protocol="lmtp" and "odmr". */
enum wp_odmr_proto { WP_OP_LMTP, WP_OP_ODMR, WP_OP_COUNT };

/* The command label: verbs either side knows (a verb the other side knows
 * is still itself, refused), END-OF-MESSAGE, AUTH-RESPONSE, else other. */
enum wp_odmr_cmd {
    WP_OC_LHLO,
    WP_OC_EHLO,
    WP_OC_HELO,
    WP_OC_MAIL,
    WP_OC_RCPT,
    WP_OC_DATA,
    WP_OC_EOM, /* END-OF-MESSAGE */
    WP_OC_RSET,
    WP_OC_NOOP,
    WP_OC_QUIT,
    WP_OC_STARTTLS,
    WP_OC_AUTH,
    WP_OC_AUTH_RESPONSE,
    WP_OC_ATRN,
    WP_OC_VRFY,
    WP_OC_EXPN,
    WP_OC_ETRN,
    WP_OC_TURN,
    WP_OC_BDAT,
    WP_OC_HELP,
    WP_OC_OTHER,
    WP_OC_COUNT
};
#define WP_ODMR_ANSWERS 4 /* 2xx, 3xx, 4xx, 5xx */

/* Protocol errors: a line too long or holding a NUL (the connection is
 * closed); a command refused (those counted towards the refused-command
 * limit), by its reply code: syntax (500, 501, 504), sequence (503, 530,
 * 538: a step out of order, or one that needs TLS first), unknown (502);
 * a malformed or overlong reply of the customer in the reversed session. */
enum wp_odmr_error { WP_OE_LINE, WP_OE_SYNTAX, WP_OE_SEQUENCE, WP_OE_UNKNOWN, WP_OE_REPLY, WP_OE_COUNT };
/* Timeouts: idle (odmr.timeout with nothing read or nothing written), auth
 * (odmr.auth_timeout passed without a successful AUTH). */
enum wp_odmr_timeout { WP_OT_IDLE, WP_OT_AUTH, WP_OT_COUNT };

/* Counters: written by the daemon's one event loop, read by the metrics
 * thread (relaxed loads, lib/metrics.h). */
struct wp_odmr_stats {
    struct wp_daemon *d;
    const char *spool;             /* the startup spool directory, read at each scrape */
    wp_counter intake[2];          /* queued, refused */
    wp_counter sessions[2];        /* authenticated, failed */
    wp_counter atrn[4];            /* released, refused, empty, busy */
    wp_counter released;           /* messages released by ATRN */
    wp_counter delivery[2];        /* sent, refused (per recipient) */
    wp_counter reloads[2];         /* success, failure */
    _Atomic long long last_reload; /* unix time of the last reload, 0: none yet */
    atomic_bool last_reload_ok;
    wp_counter commands[WP_OP_COUNT][WP_OC_COUNT][WP_ODMR_ANSWERS];
    struct wp_hist latency; /* both sides: whole command to its final reply */
    wp_counter errors[WP_OP_COUNT][WP_OE_COUNT];
    wp_counter timeouts[WP_OP_COUNT][WP_OT_COUNT];
};

/* The command label of a command line (its first word). */
enum wp_odmr_cmd wp_odmr_command_of(const char *line);
/* A command answered with code after ns nanoseconds (st may be NULL). */
void wp_odmr_count_command(struct wp_odmr_stats *st, enum wp_odmr_proto p, enum wp_odmr_cmd cmd, int code,
                           uint64_t ns);
void wp_odmr_count_error(struct wp_odmr_stats *st, enum wp_odmr_proto p, enum wp_odmr_error e);
/* The error kind of a refused command's reply code. */
enum wp_odmr_error wp_odmr_error_of(int code);
void wp_odmr_count_timeout(struct wp_odmr_stats *st, enum wp_odmr_proto p, enum wp_odmr_timeout t);
/* The endpoint's render: the counters and, read from the spool at the
 * scrape, per queue the messages, bytes and the oldest message's age,
 * with the queue's kind in the current configuration (held, atrn,
 * held+atrn, none: as `waypost queue list` says). */
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
