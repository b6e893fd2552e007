/*
 * maps.c - table answers and policy decisions from the Router.
 */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "etrn.h"
#include "maps.h"
#include "util.h"

/* "smtp:host", "smtp:[host]", "smtp:[host]:port" for a route's next hop. */
static void nexthop_value(const char *transport, const struct wp_route *rt, char *out, size_t size)
{
    const char *host = rt->nexthop;
    bool bracketed = host[0] == '[';
    if (rt->mx)
        snprintf(out, size, "%s:%s", transport, host);
    else if (rt->port)
        snprintf(out, size, bracketed ? "%s:%s:%d" : "%s:[%s]:%d", transport, host, rt->port);
    else
        snprintf(out, size, bracketed ? "%s:%s" : "%s:[%s]", transport, host);
}

static enum wp_answer transport_value(const struct wp_snapshot *s, const struct wp_route *rt, char *value,
                                      size_t size)
{
    const struct wp_postfix_conf *pf = &s->postfix;
    switch (rt->kind) {
    case WP_ROUTE_LOCAL:
        if (!pf->local_transport[0])
            return WP_ANS_NOTFOUND;
        snprintf(value, size, "%s", pf->local_transport);
        return WP_ANS_FOUND;
    case WP_ROUTE_RELAY: nexthop_value(pf->relay_transport, rt, value, size); return WP_ANS_FOUND;
    case WP_ROUTE_HOLD: nexthop_value(pf->hold_transport, rt, value, size); return WP_ANS_FOUND;
    case WP_ROUTE_ODMR: snprintf(value, size, "%s", pf->odmr_transport); return WP_ANS_FOUND;
    case WP_ROUTE_DISCARD: snprintf(value, size, "discard:Waypost route"); return WP_ANS_FOUND;
    case WP_ROUTE_ERROR:
    case WP_ROUTE_UNKNOWN: snprintf(value, size, "error:%s", rt->text); return WP_ANS_FOUND;
    case WP_ROUTE_TEMP: snprintf(value, size, "%s", rt->text); return WP_ANS_TEMP;
    }
    return WP_ANS_NOTFOUND;
}

enum wp_answer wp_map_lookup(const struct wp_snapshot *s, const char *map, const char *key, char *value,
                             size_t size)
{
    const struct wp_router *r = s->router;
    value[0] = '\0';
    if (strcmp(map, "relay") == 0) {
        if (strchr(key, '@') || !wp_router_routes_domain(r, key))
            return WP_ANS_NOTFOUND;
        snprintf(value, size, "OK");
        return WP_ANS_FOUND;
    }
    bool access = strcmp(map, "account") == 0;
    if (!access && !wp_map_name_valid(map)) {
        snprintf(value, size, "unknown map %.64s", map);
        return WP_ANS_PERM;
    }
    /* Address maps: a bare domain (Postfix's virtual_alias_domains probe)
     * or transport's '*' is never an address we route. */
    if (!access && (!strchr(key, '@') || strcmp(key, "*") == 0))
        return WP_ANS_NOTFOUND;
    struct wp_resolve_opts o = {true, access};
    struct wp_route rt;
    rt.trace = NULL;
    wp_resolve(r, key, &o, &rt);
    if (rt.kind == WP_ROUTE_TEMP) {
        snprintf(value, size, "%s", rt.text);
        return WP_ANS_TEMP;
    }
    if (strcmp(map, "transport") == 0)
        return transport_value(s, &rt, value, size);
    if (access) {
        if (rt.kind != WP_ROUTE_LOCAL)
            return WP_ANS_NOTFOUND;
        snprintf(value, size, "%s@%s", rt.account, rt.domain);
        return WP_ANS_FOUND;
    }
    if (strcmp(map, "recipient") == 0) {
        bool deliverable = rt.kind == WP_ROUTE_LOCAL || wp_route_leaves_server(&rt) ||
                           rt.kind == WP_ROUTE_DISCARD || (rt.kind == WP_ROUTE_ERROR && rt.bounce);
        if (!deliverable)
            return WP_ANS_NOTFOUND;
        snprintf(value, size, "OK");
        return WP_ANS_FOUND;
    }
    /* virtual: only when the route changes the envelope recipient. */
    if (rt.kind != WP_ROUTE_LOCAL && !wp_route_leaves_server(&rt))
        return WP_ANS_NOTFOUND;
    if (!rt.address[0] || wp_strieq(rt.address, key))
        return WP_ANS_NOTFOUND;
    snprintf(value, size, "%s", rt.address);
    return WP_ANS_FOUND;
}

/* ---------------------------------------------------------------- policy */

static const struct {
    const char *name;
    size_t len; /* compared first: most attributes are not kept */
    size_t offset, size;
} kept[] = {
/* clang-format off */
#define KEEP(f) { #f, sizeof(#f) - 1, offsetof(struct wp_policy_request, f), sizeof(((struct wp_policy_request *)0)->f) }
    KEEP(request),        KEEP(protocol_state), KEEP(recipient),   KEEP(sender),
    KEEP(client_address), KEEP(sasl_username),  KEEP(etrn_domain),
#undef KEEP
/* clang-format on */
};

static int kept_index(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
        if (kept[i].len == n && memcmp(name, kept[i].name, n) == 0)
            return (int)i;
    return -1;
}

bool wp_policy_attr_kept(const char *name)
{
    return kept_index(name) >= 0;
}

bool wp_policy_attr(struct wp_policy_request *req, const char *name, const char *value)
{
    int i = kept_index(name);
    if (i < 0)
        return true; /* unknown attributes are ignored */
    return wp_strlcpy((char *)req + kept[i].offset, value, kept[i].size);
}

/* "550 5.1.1 text" from a route text "5.1.1 text" ("451" for 4.x.x). */
static void reply_from_text(const char *text, char *action, size_t size)
{
    snprintf(action, size, "%s %s", text[0] == '4' ? "451" : "550", text);
}

void wp_policy_decide(const struct wp_snapshot *s, const struct wp_policy_request *req, char *action,
                      size_t size)
{
    const struct wp_router *r = s->router;
    if (strcmp(req->protocol_state, "ETRN") == 0) {
        /* The decision only: waypost-policyd runs the flushes of a release. */
        struct wp_etrn_decision d;
        wp_etrn_decide(r, &s->policyd.etrn, req->etrn_domain, req->client_address, req->sasl_username, &d);
        snprintf(action, size, "%s", d.action);
        wp_etrn_decision_free(&d);
        return;
    }
    if (strcmp(req->protocol_state, "RCPT") != 0 || !req->recipient[0]) {
        snprintf(action, size, "DUNNO");
        return;
    }
    bool trusted = req->sasl_username[0] != '\0' ||
                   (req->client_address[0] && wp_nets_contain(&r->trusted, req->client_address));
    struct wp_resolve_opts o = {trusted, false};
    struct wp_route rt;
    rt.trace = NULL;
    wp_resolve(r, req->recipient, &o, &rt);
    switch (rt.kind) {
    case WP_ROUTE_UNKNOWN:
    case WP_ROUTE_TEMP: reply_from_text(rt.text, action, size); return;
    case WP_ROUTE_ERROR:
        if (!rt.bounce) {
            reply_from_text(rt.text, action, size);
            return;
        }
        break;
    default: break;
    }
    if (!wp_route_relay_permitted(&rt, trusted)) {
        snprintf(action, size, "554 %s", WP_TEXT_RELAY_DENIED);
        return;
    }
    if (!trusted && r->table->has_norelay) {
        /* The maps resolve as for a trusted client; a NoRelay: record that
         * only a trusted client may use must not carry this mail. */
        struct wp_route as_trusted;
        struct wp_resolve_opts ot = {true, false};
        as_trusted.trace = NULL;
        wp_resolve(r, req->recipient, &ot, &as_trusted);
        if (!wp_route_relay_permitted(&as_trusted, false)) {
            snprintf(action, size, "554 %s", WP_TEXT_RELAY_DENIED);
            return;
        }
    }
    snprintf(action, size, "DUNNO");
}
