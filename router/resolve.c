/* SPDX-License-Identifier: MIT */
/*
 * resolve.c - turn an address into a route (see router.h for the order).
 *
 * Works on fixed-size buffers only: a resolution allocates nothing, so it
 * costs the same whether the table holds a thousand records or a million.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "router/accounts.h"
#include "lib/address.h"
#include "router/router.h"
#include "lib/util.h"

static const char *const kind_names[] = {"LOCAL", "RELAY",   "HOLD", "ODMR", "DISCARD",
                                         "ERROR", "UNKNOWN", "TEMP", "GROUP"};
static const char *const class_names[] = {"none", "NoRelay", "Relay", "RelayAll", "MailToUnknown"};

const char *wp_route_kind_name(enum wp_route_kind k)
{
    return kind_names[k];
}

const char *wp_relay_class_name(enum wp_relay_class c)
{
    return class_names[c];
}

bool wp_route_leaves_server(const struct wp_route *route)
{
    return route->kind == WP_ROUTE_RELAY || route->kind == WP_ROUTE_HOLD || route->kind == WP_ROUTE_ODMR;
}

bool wp_route_relay_permitted(const struct wp_route *route, bool trusted)
{
    if (!wp_route_leaves_server(route) || trusted)
        return true;
    switch (route->relay_class) {
    case WP_RC_RELAYALL:
    case WP_RC_UNKNOWN_REROUTE: return true;
    case WP_RC_RELAY: return !route->routed_input;
    default: return false;
    }
}

static void step(struct wp_trace *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void step(struct wp_trace *t, const char *fmt, ...)
{
    if (!t)
        return;
    if (t->nsteps >= WP_ROUTE_STEPS_MAX) {
        t->truncated = true;
        return;
    }
    struct wp_trace_step *st = &t->steps[t->nsteps++];
    st->record = NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->text, sizeof(st->text), fmt, ap);
    va_end(ap);
}

/* The step of a Router record: "router.table:24: <*@a.dom> = ...". */
static void step_record(struct wp_trace *t, const struct wp_table *table, const struct wp_record *rec)
{
    if (!t || t->nsteps >= WP_ROUTE_STEPS_MAX) {
        step(t, "%s", ""); /* marks the trace truncated */
        return;
    }
    char text[WP_ROUTE_STEP_LEN];
    wp_table_record_format(rec, text, sizeof(text));
    step(t, "%s:%u: %s", table->name, rec->line, text);
    t->steps[t->nsteps - 1].record = rec;
}

static void finish_error(struct wp_route *route, struct wp_trace *trace, enum wp_route_kind kind,
                         const char *text)
{
    route->kind = kind;
    /* Texts without an enhanced status code get a generic permanent one. */
    if (text[0] >= '2' && text[0] <= '5' && text[1] == '.')
        wp_strlcpy(route->text, text, sizeof(route->text));
    else
        snprintf(route->text, sizeof(route->text), "5.7.1 %s", text);
    step(trace, "route: %s %s", kind_names[kind], route->text);
}

/* A domain name with its length and wp_hash_fwd(): the resolver asks
 * several maps about the same domain and hashes it once. */
struct hashed {
    const char *name;
    size_t len;
    uint64_t hash;
};

static struct hashed hashed(const char *name)
{
    size_t n = strlen(name);
    return (struct hashed){name, n, wp_hash_fwd(name, n)};
}

static const struct wp_domain *find_domain_hashed(const struct wp_router *r, struct hashed d)
{
    const struct wp_strmap_entry *e = wp_strmap_get(&r->domain_index, d.hash, d.name, d.len);
    return e ? &r->domains[e->head] : NULL;
}

static const struct wp_domain *find_domain(const struct wp_router *r, const char *name)
{
    return find_domain_hashed(r, hashed(name));
}

static const struct wp_unified *unified_hashed(const struct wp_router *r, struct hashed d)
{
    if (!r->nunified)
        return NULL;
    const struct wp_strmap_entry *e = wp_strmap_get(&r->unified_index, d.hash, d.name, d.len);
    return e ? &r->unified[e->head] : NULL;
}

const struct wp_unified *wp_router_unified(const struct wp_router *r, const char *domain)
{
    return r->nunified ? unified_hashed(r, hashed(domain)) : NULL;
}

bool wp_router_routes_domain(const struct wp_router *r, const char *domain)
{
    char d[WP_DOMAIN_MAX + 1];
    if (!wp_strlcpy(d, domain, sizeof(d)) || !d[0])
        return false;
    wp_str_lower(d);
    size_t n = strlen(d);
    if (d[n - 1] == '.')
        d[n - 1] = '\0';
    return find_domain(r, d) != NULL || wp_router_unified(r, d) != NULL ||
           wp_table_mentions_domain(r->table, d);
}

static bool in_set(const struct wp_strmap *m, const char *s)
{
    size_t n = strlen(s);
    return m->count && wp_strmap_get(m, wp_hash_fwd(s, n), s, n) != NULL;
}

/* The length of a relay suffix (._via, .via, .smtp) ending the domain, with
 * at least one byte of host before it; 0 if there is none.  Looks at the
 * last byte first: most domains end in neither 'a' nor 'p'. */
static size_t relay_suffix_len(const char *domain)
{
    size_t n = strlen(domain);
    if (n < 5)
        return 0;
    char last = wp_lower(domain[n - 1]);
    if (last == 'a') {
        if (n > 5 && wp_strnieq(domain + n - 5, "._via", 5))
            return 5;
        return wp_strnieq(domain + n - 4, ".via", 4) ? 4 : 0;
    }
    if (last == 'p' && n > 5 && wp_strnieq(domain + n - 5, ".smtp", 5))
        return 5;
    return 0;
}

/* Parse a next hop "host", "host:port", "[ip]", "[ip]:port", "[ip:port]". */
static bool parse_nexthop(const char *hop, struct wp_route *route, const char **why)
{
    char host[WP_DOMAIN_MAX + 1];
    int port = 0;
    bool ip = false;
    if (!wp_strlcpy(host, hop, sizeof(host))) {
        *why = "next hop too long";
        return false;
    }
    char *portp = NULL;
    char portbuf[8];
    if (host[0] == '[') {
        char *close = strchr(host, ']');
        if (!close) {
            *why = "unterminated '[' in next hop";
            return false;
        }
        if (close[1] == ':')
            portp = close + 2;
        else if (close[1]) {
            *why = "text after ']' in next hop";
            return false;
        }
        close[1] = '\0';
        /* "[ip:port]" (IPv4 only: IPv6 has colons of its own) */
        char *colon = strchr(host, ':');
        if (colon && !wp_strnieq(host + 1, "IPv6:", 5)) {
            size_t plen = strlen(colon + 1) - 1; /* without the ']' */
            if (plen == 0 || plen >= sizeof(portbuf)) {
                *why = "bad port in next hop";
                return false;
            }
            memcpy(portbuf, colon + 1, plen);
            portbuf[plen] = '\0';
            portp = portbuf;
            colon[0] = ']';
            colon[1] = '\0';
        }
        if (!wp_domain_ip_literal(host, NULL, 0)) {
            *why = "bad IP address in next hop";
            return false;
        }
        ip = true;
    } else {
        char *colon = strchr(host, ':');
        if (colon) {
            *colon = '\0';
            portp = colon + 1;
        }
        if (wp_domain_ip_literal(host, NULL, 0)) {
            /* a bare dotted quad is an IP literal too */
            char tmp[WP_DOMAIN_MAX + 1];
            snprintf(tmp, sizeof(tmp), "[%s]", host);
            wp_strlcpy(host, tmp, sizeof(host));
            ip = true;
        } else if (!wp_domain_valid(host, false)) {
            *why = "bad host name in next hop";
            return false;
        }
    }
    if (portp) {
        if (!*portp || strlen(portp) > 5) {
            *why = "bad port in next hop";
            return false;
        }
        for (const char *c = portp; *c; c++)
            if (*c < '0' || *c > '9') {
                *why = "bad port in next hop";
                return false;
            }
        port = 0;
        for (const char *c = portp; *c; c++)
            port = port * 10 + (*c - '0');
        if (port < 1 || port > 65535) {
            *why = "bad port in next hop";
            return false;
        }
    }
    wp_str_lower(host);
    wp_strlcpy(route->nexthop, host, sizeof(route->nexthop));
    wp_strlcpy(route->queue, host, sizeof(route->queue));
    route->port = port;
    route->mx = !ip && port == 0;
    return true;
}

/* Replace the current address by text (a target after '*' expansion).
 * Parsed straight into *a, not copied in: on failure the resolution ends
 * and *a is not looked at again.  Whether the address carried routing is
 * a property of what was received, so it survives the rewrite. */
static bool set_address(struct wp_address *a, const char *text, struct wp_route *route,
                        struct wp_trace *trace)
{
    const char *why;
    bool routed = a->routed;
    if (!wp_address_parse(text, strlen(text), WP_ADDR_HOSTPORT | WP_ADDR_RAW_LOCAL, a, &why)) {
        char msg[WP_ROUTE_TEXT_MAX];
        snprintf(msg, sizeof(msg), "5.1.3 Bad address <%.200s> produced by routing: %s", text, why);
        finish_error(route, trace, WP_ROUTE_ERROR, msg);
        return false;
    }
    a->routed = routed;
    return true;
}

static void format_current(const struct wp_address *a, char *out, size_t size)
{
    if (!wp_address_format(a->local, a->domain, out, size))
        wp_strlcpy(out, "(too long)", size);
}

/* The route leaves through a next hop: envelope is the local part with its
 * last '%' turned into '@' (or local@host when there is none). */
static void finish_relay(const struct wp_router *r, const struct wp_address *a, const char *hop,
                         struct wp_route *route, struct wp_trace *trace)
{
    const char *why;
    if (!parse_nexthop(hop, route, &why)) {
        char msg[WP_ROUTE_TEXT_MAX];
        snprintf(msg, sizeof(msg), "5.1.2 Bad next hop '%.200s': %s", hop, why);
        finish_error(route, trace, WP_ROUTE_ERROR, msg);
        return;
    }
    char local[WP_LOCAL_MAX + 1];
    wp_strlcpy(local, a->local, sizeof(local));
    char *pct = strrchr(local, '%');
    const char *domain = route->nexthop;
    if (pct) {
        *pct = '\0';
        domain = pct + 1;
        wp_str_lower(pct + 1);
    }
    if (!wp_address_format(local, domain, route->address, sizeof(route->address))) {
        finish_error(route, trace, WP_ROUTE_ERROR, "5.1.3 Address too long");
        return;
    }
    route->kind = WP_ROUTE_RELAY;
    if (in_set(&r->odmr_queues, route->queue))
        route->kind = WP_ROUTE_ODMR;
    else if (in_set(&r->hold_queues, route->queue))
        route->kind = WP_ROUTE_HOLD;
    step(trace, "route: %s to %s%s%.0d%s (queue %s), envelope %s", kind_names[route->kind], route->nexthop,
         route->port ? ":" : "", route->port, route->mx ? " by MX" : "", route->queue, route->address);
}

static void grant(struct wp_route *route, enum wp_relay_class c)
{
    if (c > route->relay_class)
        route->relay_class = c;
}

void wp_resolve(const struct wp_router *r, const char *address, const struct wp_resolve_opts *o,
                struct wp_route *route, struct wp_trace *trace)
{
    /* Field by field rather than a memset of the whole 4 KB: the strings
     * need only their first byte cleared, and this runs for every lookup. */
    route->kind = WP_ROUTE_LOCAL; /* every way out sets it */
    route->address[0] = route->account[0] = route->domain[0] = '\0';
    route->nexthop[0] = route->queue[0] = route->text[0] = route->unified_rcpt[0] = '\0';
    route->port = 0;
    route->mx = route->routed_input = route->bounce = false;
    route->relay_class = WP_RC_NONE;
    route->unified = NULL;
    route->record = NULL;
    route->unknown = NULL;
    route->group = NULL;
    if (trace) {
        trace->nsteps = 0;
        trace->truncated = false;
    }
    char buf[WP_ADDR_MAX + 1], cur[WP_ADDR_MAX + 1];
    struct wp_address a;
    const char *why;
    if (!wp_address_parse(address, strlen(address), 0, &a, &why)) {
        char msg[WP_ROUTE_TEXT_MAX];
        snprintf(msg, sizeof(msg), "5.1.3 Bad address syntax: %s", why);
        finish_error(route, trace, WP_ROUTE_ERROR, msg);
        return;
    }
    route->routed_input = a.routed;
    if (!a.domain[0]) {
        wp_strlcpy(a.domain, r->main_domain, sizeof(a.domain));
        step(trace, "no domain: using the main domain %s", r->main_domain);
    }
    if (trace) {
        format_current(&a, cur, sizeof(cur));
        step(trace, "address %s%s", cur, a.routed ? " (carries routing)" : "");
    }
    const struct wp_lookup_mode mode = {o->access, o->trusted};

    for (int rewrites = 0;; rewrites++) {
        if (rewrites > WP_ROUTER_REWRITES_MAX) {
            finish_error(route, trace, WP_ROUTE_ERROR, WP_TEXT_LOOP);
            return;
        }
        struct hashed d = hashed(a.domain);
        const struct wp_domain *dom = find_domain_hashed(r, d);
        if (dom && strcmp(dom->name, a.domain) != 0) {
            step(trace, "domain alias %s is %s", a.domain, dom->name);
            wp_strlcpy(a.domain, dom->name, sizeof(a.domain));
            d = hashed(a.domain);
        }
        char ip[WP_DOMAIN_MAX + 1];
        ip[0] = '\0';
        /* "[ip]" and "[ip]:port" (the parser has checked the latter) */
        bool is_ip = !dom && (wp_domain_ip_literal(a.domain, ip, sizeof(ip)) || a.domain[0] == '[');
        if (is_ip && a.domain[0] == '[' && strchr(a.domain, ']')[1] != '\0')
            ip[0] = '\0'; /* a port: never this server's own literal */
        if (is_ip && in_set(&r->own_ips, ip)) {
            step(trace, "%s is this server: main domain %s", a.domain, r->main_domain);
            wp_strlcpy(a.domain, r->main_domain, sizeof(a.domain));
            d = hashed(a.domain);
            dom = find_domain_hashed(r, d);
            is_ip = false;
        }
        /* Own-domain stripping: "a%b.com@company.dom" is "a@b.com". */
        char *pct = strrchr(a.local, '%');
        if (dom && pct && strcmp(dom->name, r->main_domain) == 0) {
            *pct = '\0';
            WP_JOIN(buf, sizeof(buf), a.local, "@", pct + 1);
            *pct = '%';
            step(trace, "main domain with '%%': %s", buf);
            if (!set_address(&a, buf, route, trace))
                return;
            continue;
        }

        struct wp_capture caps[2];
        size_t ncaps = 0;
        const struct wp_record *rec = wp_table_lookup_hashed(r->table, a.local, strlen(a.local), d.name,
                                                             d.len, d.hash, &mode, caps, &ncaps);
        if (rec) {
            static const enum wp_relay_class grants[] = {
                [WP_PFX_NONE] = WP_RC_NONE,         [WP_PFX_RELAY] = WP_RC_RELAY,
                [WP_PFX_RELAYALL] = WP_RC_RELAYALL, [WP_PFX_NORELAY] = WP_RC_NORELAY,
                [WP_PFX_MAIL] = WP_RC_NONE,         [WP_PFX_ACCESS] = WP_RC_NONE,
                [WP_PFX_SIGNAL] = WP_RC_NONE,
            };
            grant(route, grants[rec->prefix]);
            route->record = rec;
            step_record(trace, r->table, rec);
            if (rec->target_kind == WP_TGT_NULL) {
                format_current(&a, route->address, sizeof(route->address));
                route->kind = WP_ROUTE_DISCARD;
                step(trace, "route: DISCARD");
                return;
            }
            if (rec->target_kind == WP_TGT_ERROR) {
                format_current(&a, route->address, sizeof(route->address));
                finish_error(route, trace, WP_ROUTE_ERROR,
                             rec->target[0] ? rec->target : "5.1.1 Address rejected");
                return;
            }
            char target[WP_ADDR_MAX + 1];
            if (!wp_picture_expand(rec->target, caps, ncaps, target, sizeof(target))) {
                finish_error(route, trace, WP_ROUTE_ERROR, "5.1.3 Address too long after rewriting");
                return;
            }
            if (rec->target_kind == WP_TGT_ADDRESS) {
                if (!strchr(target, '@')) {
                    WP_JOIN(buf, sizeof(buf), target, "@", r->main_domain);
                    wp_strlcpy(target, buf, sizeof(target));
                }
            } else if ((relay_suffix_len(target) || target[0] == '[') && !strchr(a.local, '%')) {
                /* Domain-level record to a next hop: the envelope keeps its
                 * domain, unless the local part already says where it goes. */
                WP_JOIN(buf, sizeof(buf), a.local, "%", a.domain, "@", target);
                wp_strlcpy(target, buf, sizeof(target));
            } else {
                WP_JOIN(buf, sizeof(buf), a.local, "@", target);
                wp_strlcpy(target, buf, sizeof(target));
            }
            if (strlen(target) >= WP_ADDR_MAX) {
                finish_error(route, trace, WP_ROUTE_ERROR, "5.1.3 Address too long after rewriting");
                return;
            }
            if (!set_address(&a, target, route, trace))
                return;
            continue;
        }

        size_t sl = relay_suffix_len(a.domain);
        if (sl || is_ip) {
            char hop[WP_DOMAIN_MAX + 1];
            wp_strlcpy(hop, a.domain, sizeof(hop));
            hop[strlen(hop) - sl] = '\0';
            finish_relay(r, &a, hop, route, trace);
            return;
        }
        if (strchr(a.domain, ':')) {
            finish_error(route, trace, WP_ROUTE_ERROR, "5.1.2 A port needs a relay suffix (host:port.via)");
            return;
        }

        /* Mail only: a login name in the domain is not the account's login. */
        const struct wp_unified *unified = dom || o->access ? NULL : unified_hashed(r, d);
        if (unified) {
            /* The customer's inbound mail: anyone may send it, as with a
             * Relay: record; it stays here, in the one account. */
            route->unified = unified;
            format_current(&a, route->unified_rcpt, sizeof(route->unified_rcpt));
            grant(route, WP_RC_RELAY);
            step(trace,
                 "unified domain %s: every address goes to the account %s, the milter adds %s: %s; "
                 "anyone may send to it (Relay)",
                 unified->domain, unified->account, unified->header, route->unified_rcpt);
            if (!set_address(&a, unified->account, route, trace))
                return;
            continue;
        }

        /* Groups and forwarders first: they are in memory, and an account
         * source may cost a round trip (names are unique in a domain). */
        const struct wp_group *grp = dom ? wp_groups_find(&dom->groups, a.local) : NULL;
        if (grp) {
            route->group = grp;
            if (grp->relay)
                grant(route, WP_RC_RELAY);
            if (grp->forwarder) {
                step(trace, "%s:%d: forwarder %s%s to %s", grp->file, grp->line, grp->address,
                     grp->relay ? " (Relay: anyone may send through it)" : "", grp->members[0]);
                if (!set_address(&a, grp->members[0], route, trace))
                    return;
                continue;
            }
            format_current(&a, route->address, sizeof(route->address));
            route->kind = WP_ROUTE_GROUP;
            step(trace, "%s:%d: group %s%s: %s", grp->file, grp->line, grp->address,
                 grp->relay ? " (Relay: anyone may send to its off-server members)" : "", grp->answer);
            step(trace, "route: GROUP of %zu member%s (each routed on its own)", grp->nmembers,
                 grp->nmembers == 1 ? "" : "s");
            return;
        }
        if (dom) {
            char account[WP_LOCAL_MAX + 1];
            wp_strlcpy(account, a.local, sizeof(account));
            enum wp_account_answer ans = wp_accounts_lookup(dom->accounts, account);
            char *delim = r->delimiter ? strchr(account, r->delimiter) : NULL;
            if (ans == WP_ACCT_NO && delim && delim != account) {
                *delim = '\0';
                ans = wp_accounts_lookup(dom->accounts, account);
            }
            if (ans == WP_ACCT_TEMP) {
                finish_error(route, trace, WP_ROUTE_TEMP, "4.3.0 Account lookup failed, try again later");
                return;
            }
            format_current(&a, route->address, sizeof(route->address));
            if (ans == WP_ACCT_YES) {
                route->kind = WP_ROUTE_LOCAL;
                wp_str_lower(account);
                wp_strlcpy(route->account, account, sizeof(route->account));
                wp_strlcpy(route->domain, dom->name, sizeof(route->domain));
                step(trace, "route: LOCAL account %s in %s (%s)", account, dom->name,
                     wp_accounts_kind(dom->accounts));
                return;
            }
            step(trace, "no account %s in %s", a.local, dom->name);
            route->unknown = dom;
            switch (dom->unknown) {
            case WP_UNKNOWN_REJECT:
                finish_error(route, trace, WP_ROUTE_UNKNOWN, WP_TEXT_UNKNOWN_USER);
                return;
            case WP_UNKNOWN_DISCARD:
                route->kind = WP_ROUTE_DISCARD;
                step(trace, "Mail to Unknown: Discarded; route: DISCARD");
                return;
            case WP_UNKNOWN_BOUNCE:
                route->bounce = true;
                step(trace, "Mail to Unknown: Accepted and Bounced");
                finish_error(route, trace, WP_ROUTE_ERROR, WP_TEXT_BOUNCE_UNKNOWN);
                return;
            case WP_UNKNOWN_REROUTE: {
                struct wp_capture cap = {a.local, strlen(a.local)};
                char target[WP_ADDR_MAX + 1];
                if (!wp_picture_expand(dom->reroute, &cap, 1, target, sizeof(target))) {
                    finish_error(route, trace, WP_ROUTE_ERROR, "5.1.3 Address too long after rewriting");
                    return;
                }
                step(trace, "Mail to Unknown: Rerouted to %s", target);
                grant(route, WP_RC_UNKNOWN_REROUTE);
                if (!set_address(&a, target, route, trace))
                    return;
                continue;
            }
            }
        }

        /* Not ours and not routed by a record: SMTP by MX, as CommuniGate does. */
        format_current(&a, route->address, sizeof(route->address));
        route->kind = WP_ROUTE_RELAY;
        wp_strlcpy(route->nexthop, a.domain, sizeof(route->nexthop));
        wp_strlcpy(route->queue, a.domain, sizeof(route->queue));
        route->mx = true;
        if (in_set(&r->odmr_queues, route->queue))
            route->kind = WP_ROUTE_ODMR;
        else if (in_set(&r->hold_queues, route->queue))
            route->kind = WP_ROUTE_HOLD;
        step(trace, "route: %s to %s by MX (queue %s)", kind_names[route->kind], route->nexthop,
             route->queue);
        return;
    }
}
