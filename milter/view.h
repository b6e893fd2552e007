/* SPDX-License-Identifier: MIT */
/*
 * view.h - one message as the rules, the unified accounts and the replies
 * see it, each thing worked out once, when first asked for.
 *
 * A struct wp_view sits on a struct wp_message (which it does not copy:
 * the message must outlive the view) and the Router, and keeps:
 *   - per header name, the mailbox addresses of every field of that name,
 *     parsed with GMime once (not once per condition that looks at them);
 *   - per header field, its value decoded (encoded words) and unfolded;
 *   - the decoded Subject;
 *   - per address and trust, its route: resolved once, whether a Route
 *     condition, the unified-account fields or the envelope trimming asks;
 *     a TEMP route (an account source that did not answer) stays TEMP, for
 *     the caller to tempfail the message on.
 * Counters tell tests how often each was computed.  One thread uses a view
 * at a time (the milter: the thread that runs the message's end).
 * Limits: the addresses of a name live as long as the view; nothing is
 * forgotten before wp_view_free.
 */
#ifndef WP_VIEW_H
#define WP_VIEW_H

#include <stdbool.h>
#include <stddef.h>

#include "milter/rules.h"
#include "router/router.h"

/* A route as the rules and the unified accounts need it (compact: a
 * struct wp_route is kilobytes, a message may have 100000 recipients). */
struct wp_view_route {
    enum wp_route_kind kind;
    char *text;    /* what a Route condition sees: "LOCAL()acct@dom", "SMTP(queue)addr", ... */
    char *address; /* the final envelope recipient */
    char *reason;  /* ERROR/UNKNOWN/TEMP: the route's text, starting with a status code */
    const struct wp_unified *unified; /* the Unified Domain-Wide Account on the way, or NULL */
    char *unified_rcpt;               /* with unified: the address in its domain */
};

struct wp_view_counts {
    unsigned address_parses; /* GMime address-list parses */
    unsigned decodes;        /* header values decoded */
    unsigned resolves;       /* Router resolutions */
};

struct view_names;
struct view_slot;

struct wp_view {
    const struct wp_message *m; /* NULL: a view for routes only */
    const struct wp_router *router;
    bool authenticated;       /* SASL login */
    bool net_trusted;         /* the client is in router.trusted */
    struct view_names *names; /* per header name: its addresses */
    size_t nnames;
    char **decoded;          /* per header index, NULL until asked */
    char *subject;           /* decoded Subject, NULL until asked */
    struct view_slot *slots; /* routes by (address, trust): open addressing */
    size_t nslots, nroutes;
    struct wp_view_counts counts;
};

/* Header helpers (no view needed). */
const char *wp_message_header(const struct wp_message *m, const char *name);
/* Every mailbox address of every header named name (groups flattened),
 * parsed with GMime.  Returns the count; *out is a malloc'ed array of
 * malloc'ed strings (free with wp_strv_free, lib/strbuf.h). */
size_t wp_message_addresses(const struct wp_message *m, const char *name, char ***out);
/* A header value with encoded words decoded and folding removed (malloc'ed). */
char *wp_header_decode(const char *raw);
/* Is the message written by a person (not bulk, list or auto-submitted)? */
bool wp_message_human(const struct wp_message *m);

/* m may be NULL (routes only); router may be NULL (no routes: every route
 * asked for is NULL). */
void wp_view_init(struct wp_view *v, const struct wp_message *m, const struct wp_router *router);
void wp_view_free(struct wp_view *v);

/* Does the client count as trusted for routing (authenticated, or from a
 * trusted network)? */
bool wp_view_client_trusted(const struct wp_view *v);

/* The mailbox addresses (groups flattened) of every field named name, in
 * order; *n gets their number.  Valid until wp_view_free. */
const char *const *wp_view_addresses(struct wp_view *v, const char *name, size_t *n);
/* Field i's value decoded and unfolded. */
const char *wp_view_decoded(struct wp_view *v, size_t i);
/* The first Subject decoded ("" without one). */
const char *wp_view_subject(struct wp_view *v);
/* The route of address (exact spelling) for a trusted client or not;
 * NULL without a router. */
const struct wp_view_route *wp_view_route(struct wp_view *v, const char *address, bool trusted);

#endif
