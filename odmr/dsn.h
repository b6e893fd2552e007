/* SPDX-License-Identifier: MIT */
/*
 * dsn.h - delivery status notifications for ODMR mail: a message nobody
 * collected within odmr.expire, or recipients the customer refused for
 * good, go back to the envelope sender as an RFC 3464 report (null
 * sender, "Auto-Submitted: auto-replied"), injected through the host MTA
 * (odmr.dsn_via, as the milter's replies are).  A message with a null
 * sender is never answered: the recipients are just dropped (and logged).
 */
#ifndef WP_DSN_H
#define WP_DSN_H

#include <stdbool.h>
#include <stddef.h>

#include "state/snapshot.h"
#include "odmr/spool.h"

/* Return the recipients of m with which[i] set to m->sender.  why[i]: the
 * customer's reply for recipient i; why NULL: they expired.  False (with
 * err) if the report could not be handed to the MTA: keep the message then. */
bool wp_dsn_return(const struct wp_snapshot *s, const char *hostname, const struct wp_spool_msg *m,
                   const bool *which, char *const *why, char *err, size_t errlen);

/* The report's text (LF line ends), for tests; malloc'ed. */
char *wp_dsn_text(const char *hostname, const struct wp_spool_msg *m, const bool *which, char *const *why,
                  int expire_seconds);

#endif
