/* SPDX-License-Identifier: MIT */
/*
 * deliver.h - ETRN delivery of one held queue: waypost-odmrd as an SMTP
 * client to the queue's next hop as the route says (MX, fixed host, [ip],
 * port; odmr/mx.h).
 *
 * One connection, EHLO (HELO if refused), STARTTLS when offered (no
 * certificate check: opportunistic, like Postfix's "may"), PIPELINING when
 * offered (MAIL, RCPTs and DATA in one write).  Per recipient: 2xx to RCPT
 * and 2xx after the text removes it from the spool; 5xx (to RCPT, or after
 * the text) returns it to the sender with a DSN (odmr/dsn.h) and then
 * removes it; 4xx, a lost connection or an unreachable host leave it
 * waiting for the next release: a held queue has no retry schedule of its
 * own.  Removals are fsync'ed in batches and at the end (a system crash
 * may deliver a message twice, never lose one).
 *
 * Blocking: it runs in a process of its own (odmr/control.c forks one per
 * release), which holds an exclusive flock on the queue's directory so
 * two releases of one queue never overlap, even across a daemon restart.
 */
#ifndef WP_ODMR_DELIVER_H
#define WP_ODMR_DELIVER_H

#include <stdbool.h>
#include <stddef.h>

#include "state/snapshot.h"

struct wp_deliver_result {
    unsigned messages;  /* messages in the queue when the release began */
    unsigned delivered; /* recipients the customer took */
    unsigned returned;  /* recipients refused for good, returned to the sender */
    unsigned waiting;   /* recipients left in the queue */
    char relay[320];    /* host[ip]:port we talked to, or "" */
    char error[512];    /* why the release stopped early, or "" */
};

enum wp_deliver_status {
    WP_DELIVER_DONE, /* the queue was worked through (some may wait after 4xx) */
    WP_DELIVER_BUSY, /* another release or an ATRN session holds the queue */
    WP_DELIVER_FAIL, /* no connection, or it broke: the rest waits */
};

enum wp_deliver_status wp_deliver_queue(const struct wp_snapshot *s, const char *hostname, const char *queue,
                                        struct wp_deliver_result *res);

#endif
