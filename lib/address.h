/* SPDX-License-Identifier: MIT */
/*
 * address.h - RFC 5321 envelope addresses, parsed and normalised the way the
 * CommuniGate Router sees them.
 *
 * What it does:
 *  - accepts "addr" or "<addr>", a quoted or dot-string local part, a domain
 *    or an address literal ([1.2.3.4], [IPv6:...]);
 *  - folds every path form into '%' form: "@hop1,@hop2:user@dom",
 *    "hop!user" and "user@dom@hop" all become local "user%dom%hop2" style
 *    parts whose last '%' names the next domain to visit;
 *  - lower-cases the domain and drops one trailing dot;
 *  - notes whether the input carried routing (%, !, @hop:, an '@' inside the
 *    local part), which decides whether a Relay: record may relay it.
 * What it does not: look anything up, or judge whether a domain exists.
 * Limits: WP_LOCAL_MAX and WP_DOMAIN_MAX; longer input is refused.
 */
#ifndef WP_ADDRESS_H
#define WP_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/defaults.h"

struct wp_address {
    char local[WP_LOCAL_MAX + 1];   /* unquoted; path forms folded into '%' form */
    char domain[WP_DOMAIN_MAX + 1]; /* lower case, no trailing dot; "" if none */
    bool routed;                    /* input carried source routing */
};

enum {
    /* Also accept next-hop syntax in the domain: "host:port", "[ip]:port"
     * (used for Router targets such as "*%d@host:26.via"). */
    WP_ADDR_HOSTPORT = 1,
    /* Take the local part verbatim (everything before the last '@'; only
     * control bytes are refused): for addresses the Router rebuilt from
     * parts of an address it had already parsed, such as "john doe". */
    WP_ADDR_RAW_LOCAL = 2,
};

/* Parse len bytes of in.  On failure returns false and points *why at a
 * static explanation. */
bool wp_address_parse(const char *in, size_t len, unsigned flags, struct wp_address *out, const char **why);

/* Write "local@domain" (or just local when domain is empty), quoting the
 * local part when RFC 5321 needs it.  Returns false if it does not fit. */
bool wp_address_format(const char *local, const char *domain, char *out, size_t outsize);

/* Domain syntax: letters, digits, '-', '_', dots; or an address literal. */
bool wp_domain_valid(const char *domain, bool allow_hostport);

/* "[1.2.3.4]", "[IPv6:..]" or a bare dotted quad: true, and the address text
 * (without brackets and IPv6: tag) in ip. */
bool wp_domain_ip_literal(const char *domain, char *ip, size_t ipsize);

#endif
