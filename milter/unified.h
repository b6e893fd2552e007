/* SPDX-License-Identifier: MIT */
/*
 * unified.h - the header fields that carry the envelope recipients of a
 * Unified Domain-Wide Account (router.unified_accounts).
 *
 * Every address of a unified domain is routed to one account, so the
 * envelope is lost once the message sits in that mailbox.  waypost-milter
 * puts it back into the message: for each header name in use (X-Real-To by
 * default) one field listing, one per line, every envelope recipient that
 * went to a unified account with that name:
 *
 *   X-Real-To: <ann@client.com>,
 *   	<bob@client.com>
 *
 * One field, not one per recipient: multidrop pollers (fetchmail's
 * `envelope "X-Real-To"`) read the first such field only, and take every
 * address in it.  Recipients are those the caller passes (waypost-milter:
 * as seen at RCPT, before Postfix's virtual aliasing, after the rules),
 * resolved through the Router, so a record that sends an address into the
 * unified domain lists the address in that domain.
 * Duplicates are listed once.  What it does not do: per-account fields (a
 * message for two unified domains shows both lists in both copies).
 */
#ifndef WP_UNIFIED_H
#define WP_UNIFIED_H

#include <stddef.h>

#include "milter/view.h"
#include "router/router.h"

struct wp_unified_field {
    const char *name; /* the header field name (points into the router) */
    char *value;      /* "<a@d>,\n\t<b@d>": lines folded for libmilter */
    size_t len, cap;  /* of value */
    size_t nrcpts;
};

struct wp_unified_fields {
    struct wp_unified_field *fields;
    size_t n;
    const struct wp_view_route *temp; /* a recipient's account source did not answer: tempfail */
};

/* The fields for a message with these envelope recipients (without <>);
 * none when no recipient routes to a unified account.  Routes come from
 * the view (resolved once per message, trusted), which must outlive out. */
void wp_unified_fields(struct wp_view *v, const char *const *rcpts, size_t nrcpts,
                       struct wp_unified_fields *out);
void wp_unified_fields_free(struct wp_unified_fields *f);

/* One recipient per account: Postfix rewrites every address of a unified
 * domain to the account, and its LMTP/SMTP client sends that address once
 * per delivery, but a message with more recipients than the transport's
 * destination_recipient_limit (50 by default) is delivered in several
 * parts, each a copy in the account.  So for each account the first of
 * the recipients going to it stays and the others (whose envelope the
 * field keeps) are to be removed: their pointers go to out (room for
 * nrcpts), their number is returned.  A recipient spelled exactly like the
 * one that stays is not listed (removing it would remove both). */
size_t wp_unified_extra_rcpts(struct wp_view *v, const char *const *rcpts, size_t nrcpts, const char **out);

#endif
