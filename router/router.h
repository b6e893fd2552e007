/* SPDX-License-Identifier: MIT */
/*
 * router.h - the Router: domains, accounts, the table, and resolution.
 *
 * A struct wp_router is built once (state/ feeds the construction API below
 * from the "router" section of waypost.conf; tests call it directly with
 * a table text) and never changes afterwards (account sources refresh
 * themselves behind a lock); any number of threads may resolve through it.
 *
 * Resolution (CommuniGate's, as Waypost reads it; see waypost-router(5)):
 * parse the address, fold path forms into '%' form; then repeat, at most
 * WP_ROUTER_REWRITES_MAX times: domain alias -> real domain; own IP literal
 * -> main domain; main domain with '%' -> unwrap the last '%'; Router record
 * (exact address, wildcard address, exact domain, wildcard domain); relay
 * suffix (.via ._via .smtp) or IP literal -> next hop; Unified Domain-Wide
 * Account domain -> its one account (a rewrite: the account is resolved
 * next); local domain -> group (GROUP), forwarder (a rewrite to its
 * target), account, or Mail to Unknown; anything else -> relay
 * by MX.
 */
#ifndef WP_ROUTER_H
#define WP_ROUTER_H

#include <stdbool.h>

#include "lib/cidr.h"
#include "lib/defaults.h"
#include "lib/errors.h"
#include "lib/strmap.h"
#include "router/groups.h"
#include "router/table.h"

/* GROUP: the address is a group of a local domain (route.group); Postfix's
 * virtual map expands it to the members, each routed on its own. */
enum wp_route_kind {
    WP_ROUTE_LOCAL,
    WP_ROUTE_RELAY,
    WP_ROUTE_HOLD,
    WP_ROUTE_ODMR,
    WP_ROUTE_DISCARD,
    WP_ROUTE_ERROR,
    WP_ROUTE_UNKNOWN,
    WP_ROUTE_TEMP,
    WP_ROUTE_GROUP
};

/* The strongest relaying grant met on the way (a route may only leave the
 * server for an untrusted client if a record granted it). */
enum wp_relay_class { WP_RC_NONE, WP_RC_NORELAY, WP_RC_RELAY, WP_RC_RELAYALL, WP_RC_UNKNOWN_REROUTE };

enum wp_unknown_mode { WP_UNKNOWN_REJECT, WP_UNKNOWN_DISCARD, WP_UNKNOWN_BOUNCE, WP_UNKNOWN_REROUTE };

struct wp_trace_step {
    const struct wp_record *record; /* the Router record this step applied, or NULL */
    char text[WP_ROUTE_STEP_LEN];
};

struct wp_trace {
    int nsteps;
    bool truncated;
    struct wp_trace_step steps[WP_ROUTE_STEPS_MAX];
};

struct wp_route {
    enum wp_route_kind kind;
    char address[WP_ADDR_MAX + 1];   /* final envelope recipient */
    char account[WP_LOCAL_MAX + 1];  /* LOCAL: the account name */
    char domain[WP_DOMAIN_MAX + 1];  /* LOCAL: the local domain */
    char nexthop[WP_DOMAIN_MAX + 1]; /* RELAY/HOLD/ODMR: host, or [ip] */
    int port;                        /* 0: default */
    bool mx;                         /* look up MX records for nexthop */
    char queue[WP_DOMAIN_MAX + 1];   /* next-hop host without port: the queue name */
    enum wp_relay_class relay_class;
    bool routed_input;                /* the address as received carried routing */
    bool bounce;                      /* ERROR to be accepted, then bounced */
    char text[WP_ROUTE_TEXT_MAX];     /* ERROR/UNKNOWN/TEMP text, starting with a status code */
    const struct wp_unified *unified; /* the Unified Domain-Wide Account on the way, or NULL */
    const struct wp_record *record;   /* the last Router record applied (what decided), or NULL */
    const struct wp_domain *unknown;  /* the local domain whose Mail to Unknown decided, or NULL */
    const struct wp_group *group;     /* GROUP: the group; else the last forwarder on the way, or NULL */
    /* wp_resolve() clears each field it does not set: a new field here
     * needs a line there. */
    char unified_rcpt[WP_ADDR_MAX + 1]; /* with unified: the address in its domain (for the header) */
};

struct wp_domain {
    char *name;
    char *file; /* where it was configured, or NULL: the Router's */
    int line;
    int unknown_line; /* of mail_to_unknown */
    struct wp_accounts *accounts;
    enum wp_unknown_mode unknown;
    char *reroute;           /* pattern for WP_UNKNOWN_REROUTE */
    struct wp_groups groups; /* its groups and forwarders */
};

/* A Unified Domain-Wide Account: all mail for the customer's domain goes to
 * one local account, and waypost-milter lists the envelope recipients of the
 * domain in a header field of each copy, for the customer's multidrop poller. */
struct wp_unified {
    char *domain;  /* lower case */
    char *account; /* the account's address, as configured */
    char *header;  /* the header field name */
    char *file;    /* where it was configured, for messages */
    int line;
};

struct wp_router {
    char *main_domain;
    char *file; /* the config file, for messages */
    struct wp_domain *domains;
    size_t ndomains;
    struct wp_strmap domain_index; /* name or alias -> chain of one domain index */
    char *domain_names;            /* storage for alias keys */
    struct wp_nets trusted;
    struct wp_strmap own_ips; /* IP literal texts that mean "this server" */
    struct wp_strmap hold_queues;
    struct wp_strmap odmr_queues;
    struct wp_unified *unified; /* router.unified_accounts */
    size_t nunified;
    struct wp_strmap unified_index; /* domain -> index into unified */
    char **owned_strings;           /* keys of the maps above */
    size_t nowned;
    char delimiter; /* recipient delimiter, '\0' for none */
    struct wp_table *table;
    char *basedir;     /* relative account files start here */
    int cache_seconds; /* account sources: re-stat/cache lifetime */
    int userdb_timeout_ms;
};

/* Construction, in this order: new; set_*; add_domain for each domain;
 * add for each list entry; load_table or table_text; add_unified for each
 * unified account; finish.  Errors go to err as "file:line: message" (file
 * and line say where the value was configured; 0 leaves the line out); a
 * caller that got errors frees the Router instead of using it.  file is the
 * config file, for messages; basedir resolves relative account files. */
struct wp_router *wp_router_new(const char *main_domain, const char *file, const char *basedir);
void wp_router_set_accounts(struct wp_router *r, int cache_seconds, int timeout_ms);
void wp_router_set_delimiter(struct wp_router *r, char delimiter);
/* One local domain.  Only name is required: aliases NULL-terminated (or
 * NULL), accounts an accounts spec (NULL: "list:", none), mail_to_unknown
 * NULL for "Rejected".  file and the lines locate the settings in
 * messages (file NULL: the Router's; a line 0: the domain's line). */
struct wp_domain_spec {
    const char *name;
    const char *const *aliases;
    const char *accounts;
    const char *mail_to_unknown;
    const char *const *groups; /* NULL-terminated entries (groups.h), or NULL */
    const char *const *forwarders;
    const char *file;
    int line, accounts_line, unknown_line, aliases_line, groups_line, forwarders_line;
};
void wp_router_add_domain(struct wp_router *r, const struct wp_domain_spec *spec, struct wp_errors *err);
enum wp_router_list { WP_ROUTER_TRUSTED, WP_ROUTER_OWN_ADDRESS, WP_ROUTER_HOLD_QUEUE, WP_ROUTER_ODMR_QUEUE };
/* One entry of router.trusted_networks, own_addresses, hold_queues or odmr_queues. */
void wp_router_add(struct wp_router *r, enum wp_router_list which, const char *value, const char *file,
                   int line, struct wp_errors *err);
/* The Router table from a file (NULL or "": an empty table) or from text. */
void wp_router_load_table(struct wp_router *r, const char *path, struct wp_errors *err);
void wp_router_table_text(struct wp_router *r, const char *text, const char *name, struct wp_errors *err);
/* header NULL: the default header field. */
void wp_router_add_unified(struct wp_router *r, const char *domain, const char *account, const char *header,
                           const char *file, int line, int header_line, struct wp_errors *err);
/* Checks that need everything in place (unified accounts route locally). */
void wp_router_finish(struct wp_router *r, struct wp_errors *err);
void wp_router_free(struct wp_router *r);

struct wp_resolve_opts {
    bool trusted; /* NoRelay: records exist only for trusted clients */
    bool access;  /* a login name (Access: records), not a mail recipient */
};

/* Resolve one address.  trace (may be NULL) receives every step taken:
 * it is kept out of the route, which every lookup fills, because only
 * `waypost route` and the tests read it. */
void wp_resolve(const struct wp_router *r, const char *address, const struct wp_resolve_opts *o,
                struct wp_route *route, struct wp_trace *trace);

/* Does Waypost route mail for this domain (a local domain or alias, or a
 * domain some mail record names)?  Postfix's relay_domains. */
bool wp_router_routes_domain(const struct wp_router *r, const char *domain);

/* The Unified Domain-Wide Account of this domain (lower case), or NULL. */
const struct wp_unified *wp_router_unified(const struct wp_router *r, const char *domain);

/* May a client (trusted or not) have mail sent along this route? */
bool wp_route_relay_permitted(const struct wp_route *route, bool trusted);
bool wp_route_leaves_server(const struct wp_route *route);

const char *wp_route_kind_name(enum wp_route_kind k);

/* The run-time pass of `waypost check` (check.c): every record, Mail to
 * Unknown reroute, group member and forwarder target resolved once; those
 * that would answer ERROR (a loop, a port without a relay suffix, ...) or,
 * for a fixed address, UNKNOWN, are errors with file:line. */
void wp_router_check(const struct wp_router *r, struct wp_errors *err);

/* ---------------------------------------------------------------- queues (queues.c) */

/* The local part of the probe addresses the queue walk resolves: one no
 * real record names, so it takes the domain's own route. */
#define WP_ROUTER_PROBE_LOCAL "waypost-etrn-probe"

/* Is the (lower-case) next-hop name listed as a queue of this kind:
 * WP_ROUTE_HOLD (router.hold_queues) or WP_ROUTE_ODMR (router.odmr_queues)? */
bool wp_router_queue_listed(const struct wp_router *r, enum wp_route_kind kind, const char *queue);

/* Every domain whose mail Router records send into the queue of this kind
 * (WP_ROUTE_HOLD or WP_ROUTE_ODMR): lower case, sorted, each once, the
 * queue's own name included when mail for it goes there.  Returns the
 * count; free with wp_router_domains_free. */
size_t wp_router_queue_domains(const struct wp_router *r, enum wp_route_kind kind, const char *queue,
                               char ***domains);
void wp_router_domains_free(char **domains, size_t n);
const char *wp_relay_class_name(enum wp_relay_class c);

#endif
