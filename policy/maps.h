/* SPDX-License-Identifier: MIT */
/*
 * maps.h - what waypost-policyd answers, independent of the wire.
 *
 * Tables (socketmap map names, or one tcp_table port each):
 *   relay      domain  -> found if Waypost routes mail for it (relay_domains)
 *   recipient  address -> found if the route delivers somewhere
 *                         (relay_recipient_maps)
 *   virtual    address -> the new envelope address when the route changes it
 *                         (virtual_alias_maps)
 *   transport  address -> transport:nexthop (transport_maps; '*' is not found)
 *   account    login   -> account@domain, with Access: records
 * Postfix sends only full keys in mixed case (pattern tables): the Router
 * does every fallback and all case folding.  Table lookups have no client
 * context, so they resolve as for a trusted client; the policy service is
 * what refuses untrusted clients (see wp_policy_decide).
 *
 * Policy: at RCPT the recipient is resolved for this client, and relaying
 * is decided on the resolved route (DESIGN 2.2).  ETRN requests are not
 * decided here: waypost-policyd hands them to etrn.h.
 */
#ifndef WP_MAPS_H
#define WP_MAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "state/snapshot.h"

enum wp_answer { WP_ANS_FOUND, WP_ANS_NOTFOUND, WP_ANS_TEMP, WP_ANS_PERM };

/* The tables, named as in socketmap requests and tcp listeners. */
enum wp_map {
    WP_MAP_RELAY,
    WP_MAP_RECIPIENT,
    WP_MAP_VIRTUAL,
    WP_MAP_TRANSPORT,
    WP_MAP_ACCOUNT,
    WP_MAP_COUNT
};

/* The table a name (len bytes, exact lower case as Postfix sends it)
 * stands for; false if none.  Parsed once: at load for a tcp listener, once
 * per request for socketmap (whose requests carry the name). */
bool wp_map_parse(const char *name, size_t len, enum wp_map *map);
const char *wp_map_name(enum wp_map map);

/* value receives the answer (FOUND) or a reason (TEMP/PERM). */
enum wp_answer wp_map_lookup(const struct wp_snapshot *s, enum wp_map map, const char *key, char *value,
                             size_t size);

/* The attributes of one policy request that Waypost uses. */
#define WP_ATTR_VALUE_MAX 1024
struct wp_policy_request {
    char request[64];
    char protocol_state[32];
    char recipient[WP_ATTR_VALUE_MAX];
    char sender[WP_ATTR_VALUE_MAX];
    char client_address[64];
    char sasl_username[256];
    char etrn_domain[256];
    char queue_id[64];     /* Postfix's queue id, once it has one (logs) */
    char client_name[256]; /* the client's verified name or "unknown" (logs) */
};

/* The kept attributes (the fields above), numbered. */
enum wp_policy_kept {
    WP_KEPT_REQUEST,
    WP_KEPT_PROTOCOL_STATE,
    WP_KEPT_RECIPIENT,
    WP_KEPT_SENDER,
    WP_KEPT_CLIENT_ADDRESS,
    WP_KEPT_SASL_USERNAME,
    WP_KEPT_ETRN_DOMAIN,
    WP_KEPT_QUEUE_ID,
    WP_KEPT_CLIENT_NAME,
    WP_KEPT_COUNT
};

/* Which kept attribute the name (len bytes) is, or -1.  Inline: it runs
 * for each of the some 30 attributes of every request, and most names are
 * ruled out by their length and first byte before any comparison (a new
 * kept name of a length already listed goes into that case). */
static inline int wp_policy_kept_index(const char *name, size_t len)
{
#define WP_KEPT_IS(s) (name[0] == (s)[0] && memcmp(name, s, sizeof(s) - 1) == 0)
    switch (len) {
    case 6: return WP_KEPT_IS("sender") ? WP_KEPT_SENDER : -1;
    case 7: return WP_KEPT_IS("request") ? WP_KEPT_REQUEST : -1;
    case 9: return WP_KEPT_IS("recipient") ? WP_KEPT_RECIPIENT : -1;
    case 8: return WP_KEPT_IS("queue_id") ? WP_KEPT_QUEUE_ID : -1;
    case 11:
        return WP_KEPT_IS("etrn_domain")   ? WP_KEPT_ETRN_DOMAIN
               : WP_KEPT_IS("client_name") ? WP_KEPT_CLIENT_NAME
                                           : -1;
    case 13: return WP_KEPT_IS("sasl_username") ? WP_KEPT_SASL_USERNAME : -1;
    case 14:
        return WP_KEPT_IS("protocol_state")   ? WP_KEPT_PROTOCOL_STATE
               : WP_KEPT_IS("client_address") ? WP_KEPT_CLIENT_ADDRESS
                                              : -1;
    default: return -1;
    }
#undef WP_KEPT_IS
}

/* Store the value (len bytes, no terminating NUL needed) of kept attribute
 * k.  Returns false if it is too long for its buffer. */
bool wp_policy_attr_set(struct wp_policy_request *req, enum wp_policy_kept k, const char *value, size_t len);

/* Forget the attributes of the last request (cheaper than zeroing it all). */
void wp_policy_request_clear(struct wp_policy_request *req);

/* The access(5) action for a request ("DUNNO", "550 5.1.1 ...", ...). */
void wp_policy_decide(const struct wp_snapshot *s, const struct wp_policy_request *req, char *action,
                      size_t size);

/* What decided a lookup or a policy request, for logs and counters. */
enum wp_decision_kind { WP_DECIDED_NONE, WP_DECIDED_ACCEPT, WP_DECIDED_RELAY, WP_DECIDED_REFUSE };
struct wp_decision {
    enum wp_decision_kind kind; /* policy: RELAY = an untrusted client may relay through a grant */
    bool resolved;              /* a route was resolved (the fields below mean something) */
    bool trusted;               /* policy: the client is trusted */
    enum wp_relay_class relay_class;
    const struct wp_record *record;  /* route->record */
    const struct wp_domain *unknown; /* route->unknown */
};
/* The same, saying what decided (dec may be NULL). */
enum wp_answer wp_map_lookup_ex(const struct wp_snapshot *s, enum wp_map map, const char *key, char *value,
                                size_t size, struct wp_decision *dec);
void wp_policy_decide_ex(const struct wp_snapshot *s, const struct wp_policy_request *req, char *action,
                         size_t size, struct wp_decision *dec);

#endif
