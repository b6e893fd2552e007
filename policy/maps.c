/* SPDX-License-Identifier: MIT */
/*
 * maps.c - table answers and policy decisions from the Router.
 */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "policy/maps.h"
#include "policy/settings.h"
#include "lib/util.h"

/* Answers are built with WP_JOIN rather than snprintf(): they are formed
 * once per lookup, and printf's format interpretation alone costs a tenth
 * of a whole lookup.  Like snprintf, an answer that does not fit is cut. */

/* "smtp:host", "smtp:[host]", "smtp:[host]:port" for a route's next hop. */
static void nexthop_value(const char *transport, const struct wp_route *rt, char *out, size_t size)
{
    bool bracket = !rt->mx && rt->nexthop[0] != '[';
    char port[16] = "";
    if (!rt->mx && rt->port)
        snprintf(port, sizeof(port), ":%d", rt->port); /* rare: most routes keep the default port */
    WP_JOIN(out, size, transport, bracket ? ":[" : ":", rt->nexthop, bracket ? "]" : "", port);
}

static enum wp_answer transport_value(const struct wp_snapshot *s, const struct wp_route *rt, char *value,
                                      size_t size)
{
    const struct wp_postfix_conf *pf = &s->postfix;
    switch (rt->kind) {
    case WP_ROUTE_LOCAL:
        if (!pf->local_transport[0])
            return WP_ANS_NOTFOUND;
        WP_JOIN(value, size, pf->local_transport);
        return WP_ANS_FOUND;
    case WP_ROUTE_RELAY: nexthop_value(pf->relay_transport, rt, value, size); return WP_ANS_FOUND;
    /* Held and ATRN queues share waypost-odmrd's spool (DESIGN §5): never
     * Postfix's defer_transports, whose flush releases every queue. */
    case WP_ROUTE_HOLD:
    case WP_ROUTE_ODMR: WP_JOIN(value, size, pf->odmr_transport); return WP_ANS_FOUND;
    case WP_ROUTE_DISCARD: WP_JOIN(value, size, "discard:Waypost route"); return WP_ANS_FOUND;
    case WP_ROUTE_ERROR:
    case WP_ROUTE_UNKNOWN: WP_JOIN(value, size, "error:", rt->text); return WP_ANS_FOUND;
    case WP_ROUTE_TEMP: WP_JOIN(value, size, rt->text); return WP_ANS_TEMP;
    case WP_ROUTE_GROUP:
        /* virtual expands a group first and the members get asked; a group
         * address reaches transport only when its expansion failed (a
         * cycle): it must not leave by relay_transport. */
        WP_JOIN(value, size, "error:5.4.6 Group expansion loop");
        return WP_ANS_FOUND;
    }
    return WP_ANS_NOTFOUND;
}

static const char *const map_names[WP_MAP_COUNT] = {
    [WP_MAP_RELAY] = "relay",         [WP_MAP_RECIPIENT] = "recipient", [WP_MAP_VIRTUAL] = "virtual",
    [WP_MAP_TRANSPORT] = "transport", [WP_MAP_ACCOUNT] = "account",
};

bool wp_map_parse(const char *name, size_t len, enum wp_map *map)
{
    for (int m = 0; m < WP_MAP_COUNT; m++)
        if (strlen(map_names[m]) == len && memcmp(map_names[m], name, len) == 0) {
            *map = (enum wp_map)m;
            return true;
        }
    return false;
}

const char *wp_map_name(enum wp_map map)
{
    return map >= 0 && map < WP_MAP_COUNT ? map_names[map] : "?";
}

static void decision_from_route(struct wp_decision *dec, const struct wp_route *rt)
{
    if (!dec)
        return;
    dec->resolved = true;
    dec->relay_class = rt->relay_class;
    dec->record = rt->record;
    dec->unknown = rt->unknown;
}

enum wp_answer wp_map_lookup(const struct wp_snapshot *s, enum wp_map map, const char *key, char *value,
                             size_t size)
{
    return wp_map_lookup_ex(s, map, key, value, size, NULL);
}

enum wp_answer wp_map_lookup_ex(const struct wp_snapshot *s, enum wp_map map, const char *key, char *value,
                                size_t size, struct wp_decision *dec)
{
    if (dec)
        memset(dec, 0, sizeof(*dec));
    const struct wp_router *r = s->router;
    value[0] = '\0';
    if (map == WP_MAP_RELAY) {
        if (strchr(key, '@') || !wp_router_routes_domain(r, key))
            return WP_ANS_NOTFOUND;
        WP_JOIN(value, size, "OK");
        return WP_ANS_FOUND;
    }
    bool access = map == WP_MAP_ACCOUNT;
    /* Address maps: a bare domain (Postfix's virtual_alias_domains probe)
     * or transport's '*' is never an address we route. */
    if (!access && (!strchr(key, '@') || strcmp(key, "*") == 0))
        return WP_ANS_NOTFOUND;
    struct wp_resolve_opts o = {true, access};
    struct wp_route rt;
    wp_resolve(r, key, &o, &rt, NULL);
    decision_from_route(dec, &rt);
    if (rt.kind == WP_ROUTE_TEMP) {
        WP_JOIN(value, size, rt.text);
        return WP_ANS_TEMP;
    }
    /* Mail for a domain Waypost does not route, sent by MX with no Router
     * record on the way, is none of Waypost's business: "not found" lets
     * the administrator's own transport_maps (which Postfix asks after
     * ours, for the full address first) and the default transport decide. */
    if (!access && rt.kind == WP_ROUTE_RELAY && rt.mx && !rt.record && !rt.unknown && !rt.unified &&
        !rt.routed_input && !wp_router_routes_domain(r, strrchr(key, '@') + 1))
        return WP_ANS_NOTFOUND;
    switch (map) {
    case WP_MAP_TRANSPORT: return transport_value(s, &rt, value, size);
    case WP_MAP_ACCOUNT:
        if (rt.kind != WP_ROUTE_LOCAL)
            return WP_ANS_NOTFOUND;
        WP_JOIN(value, size, rt.account, "@", rt.domain);
        return WP_ANS_FOUND;
    case WP_MAP_RECIPIENT: {
        bool deliverable = rt.kind == WP_ROUTE_LOCAL || rt.kind == WP_ROUTE_GROUP ||
                           wp_route_leaves_server(&rt) || rt.kind == WP_ROUTE_DISCARD ||
                           (rt.kind == WP_ROUTE_ERROR && rt.bounce);
        if (!deliverable)
            return WP_ANS_NOTFOUND;
        WP_JOIN(value, size, "OK");
        return WP_ANS_FOUND;
    }
    default: break;
    }
    /* virtual: a group's members, as virtual(5) takes several addresses;
     * Postfix then asks about each member on its own. */
    if (rt.kind == WP_ROUTE_GROUP) {
        WP_JOIN(value, size, rt.group->answer);
        return WP_ANS_FOUND;
    }
    /* virtual: only when the route changes the envelope recipient. */
    if (rt.kind != WP_ROUTE_LOCAL && !wp_route_leaves_server(&rt))
        return WP_ANS_NOTFOUND;
    if (!rt.address[0] || wp_strieq(rt.address, key))
        return WP_ANS_NOTFOUND;
    WP_JOIN(value, size, rt.address);
    return WP_ANS_FOUND;
}

/* ---------------------------------------------------------------- policy */

/* Where each kept attribute goes, in enum wp_policy_kept order. */
static const struct {
    const char *name;
    size_t offset, size;
} kept[] = {
/* clang-format off */
#define KEEP(f) { #f, offsetof(struct wp_policy_request, f), sizeof(((struct wp_policy_request *)0)->f) }
    KEEP(request),        KEEP(protocol_state), KEEP(recipient),   KEEP(sender),
    KEEP(client_address), KEEP(sasl_username),  KEEP(etrn_domain), KEEP(queue_id),
    KEEP(client_name),
#undef KEEP
    /* clang-format on */
};
_Static_assert(sizeof(kept) / sizeof(kept[0]) == WP_KEPT_COUNT, "one enum value per kept attribute");

void wp_policy_request_clear(struct wp_policy_request *req)
{
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
        ((char *)req)[kept[i].offset] = '\0';
}

bool wp_policy_attr_set(struct wp_policy_request *req, enum wp_policy_kept k, const char *value, size_t len)
{
    if (len >= kept[k].size)
        return false;
    char *field = (char *)req + kept[k].offset;
    memcpy(field, value, len);
    field[len] = '\0';
    return true;
}

/* "550 5.1.1 text" from a route text "5.1.1 text" ("451" for 4.x.x). */
static void reply_from_text(const char *text, char *action, size_t size)
{
    WP_JOIN(action, size, text[0] == '4' ? "451 " : "550 ", text);
}

/* Nested groups are followed this deep for the relay check; deeper
 * nesting is refused for untrusted clients rather than left unchecked. */
#define GROUP_DEPTH_MAX 4

/* The decision for one recipient (depth > 0: a group's member, whose own
 * errors are Postfix's to bounce after the group was accepted: only relay
 * and temporary failures refuse the group).  Returns false and leaves
 * action alone when the recipient may pass. */
static bool decide_rcpt(const struct wp_router *r, const char *rcpt, bool trusted, int depth, char *action,
                        size_t size, struct wp_decision *dec)
{
    struct wp_resolve_opts o = {trusted, false};
    struct wp_route rt;
    wp_resolve(r, rcpt, &o, &rt, NULL);
    /* What decided, for the decision line: the recipient's own route (a
     * member's refusal is told by the action). */
    if (depth == 0) {
        decision_from_route(dec, &rt);
        dec->kind = WP_DECIDED_REFUSE;
    }
    switch (rt.kind) {
    case WP_ROUTE_TEMP: reply_from_text(rt.text, action, size); return true;
    case WP_ROUTE_UNKNOWN:
        if (depth)
            return false;
        reply_from_text(rt.text, action, size);
        return true;
    case WP_ROUTE_ERROR:
        if (depth)
            return false;
        if (!rt.bounce) {
            reply_from_text(rt.text, action, size);
            return true;
        }
        break;
    default: break;
    }
    if (!wp_route_relay_permitted(&rt, trusted)) {
        WP_JOIN(action, size, "554 " WP_TEXT_RELAY_DENIED);
        return true;
    }
    if (!trusted && r->table->has_norelay) {
        /* The maps resolve as for a trusted client; a NoRelay: record that
         * only a trusted client may use must not carry this mail. */
        struct wp_route as_trusted;
        struct wp_resolve_opts ot = {true, false};
        wp_resolve(r, rcpt, &ot, &as_trusted, NULL);
        if (!wp_route_relay_permitted(&as_trusted, false)) {
            if (depth == 0)
                decision_from_route(dec, &as_trusted);
            WP_JOIN(action, size, "554 " WP_TEXT_RELAY_DENIED);
            return true;
        }
    }
    if (rt.kind == WP_ROUTE_GROUP && !(trusted || rt.group->relay)) {
        /* Each member must be one this client may send to: the group's
         * Relay: (or a trusted client) lets them all leave the server. */
        if (depth >= GROUP_DEPTH_MAX) {
            WP_JOIN(action, size, "554 " WP_TEXT_RELAY_DENIED);
            return true;
        }
        const struct wp_group *g = rt.group; /* lives in the Router, not in rt */
        for (size_t i = 0; i < g->nmembers; i++)
            if (decide_rcpt(r, g->members[i], trusted, depth + 1, action, size, dec))
                return true;
    } else if (rt.kind == WP_ROUTE_GROUP) {
        /* Relay may pass; a member whose account source fails still must
         * not be lost: ask again later. */
        const struct wp_group *g = rt.group;
        for (size_t i = 0; depth < GROUP_DEPTH_MAX && i < g->nmembers; i++) {
            struct wp_route m;
            struct wp_resolve_opts ot = {true, false};
            wp_resolve(r, g->members[i], &ot, &m, NULL);
            if (m.kind == WP_ROUTE_TEMP) {
                reply_from_text(m.text, action, size);
                return true;
            }
        }
    }
    /* Relaying opened: an untrusted client's mail leaves the server because
     * a Relay:/RelayAll: record or a Mail to Unknown reroute granted it. */
    if (depth == 0)
        dec->kind = !trusted && wp_route_leaves_server(&rt) && rt.relay_class >= WP_RC_RELAY
                        ? WP_DECIDED_RELAY
                        : WP_DECIDED_ACCEPT;
    return false;
}

void wp_policy_decide(const struct wp_snapshot *s, const struct wp_policy_request *req, char *action,
                      size_t size)
{
    wp_policy_decide_ex(s, req, action, size, NULL);
}

void wp_policy_decide_ex(const struct wp_snapshot *s, const struct wp_policy_request *req, char *action,
                         size_t size, struct wp_decision *dec)
{
    struct wp_decision none;
    if (!dec)
        dec = &none;
    memset(dec, 0, sizeof(*dec));
    const struct wp_router *r = s->router;
    if (strcmp(req->protocol_state, "RCPT") != 0 || !req->recipient[0]) {
        WP_JOIN(action, size, "DUNNO");
        return;
    }
    bool trusted = req->sasl_username[0] != '\0' ||
                   (req->client_address[0] && wp_nets_contain(&r->trusted, req->client_address));
    dec->trusted = trusted;
    if (!decide_rcpt(r, req->recipient, trusted, 0, action, size, dec))
        WP_JOIN(action, size, "DUNNO");
}
