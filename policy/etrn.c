/* SPDX-License-Identifier: MIT */
/*
 * etrn.c - ETRN decisions (see etrn.h); the merged-domain walk is the
 * Router's (router/queues.c).
 *
 * Nothing here talks to anyone: etrnjob.c turns a RELEASE decision into a
 * request to waypost-odmrd.  The ETRN argument never reaches it; only the
 * queue name taken from the routes does.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/address.h"
#include "lib/conf.h"
#include "policy/etrn.h"
#include "lib/util.h"

/* The local part resolved for a domain-level probe: one no real record
 * names, so it takes the domain's own route (or its Mail to Unknown). */
#define PROBE_LOCAL WP_ROUTER_PROBE_LOCAL

static const char *const release_names[] = {"anyone", "trusted", "accounts"};

static bool parse_release(const char *text, enum wp_etrn_release *out)
{
    for (size_t i = 0; i < sizeof(release_names) / sizeof(release_names[0]); i++)
        if (strcmp(text, release_names[i]) == 0) {
            *out = (enum wp_etrn_release)i;
            return true;
        }
    return false;
}

static const struct wp_etrn_queue *queue_conf(const struct wp_etrn_conf *c, const char *queue)
{
    for (size_t i = 0; i < c->nqueues; i++)
        if (strcmp(c->queues[i].queue, queue) == 0)
            return &c->queues[i];
    return NULL;
}

void wp_etrn_conf_load(const config_setting_t *g, const char *rel, const char *path,
                       const struct wp_router *r, struct wp_etrn_conf *c, struct wp_errors *err)
{
    /* socket and timeout are rows of the policyd section: already set. */
    c->queues = NULL;
    c->nqueues = 0;
    if (!parse_release(rel, &c->release))
        wp_error(err, path, wp_conf_member_line(g, "etrn_release"),
                 "policyd.etrn_release '%s' is not one of anyone, trusted, accounts", rel);

    const config_setting_t *list = g ? config_setting_get_member(g, "etrn_queues") : NULL;
    size_t n = list ? (size_t)config_setting_length(list) : 0;
    c->queues = wp_calloc(n + 1, sizeof(*c->queues));
    for (size_t i = 0; i < n; i++) {
        const config_setting_t *qg = config_setting_get_elem(list, (unsigned)i);
        const char *file = wp_conf_file(qg, path);
        int line = wp_conf_line(qg);
        const char *name = wp_conf_string(qg, "queue", "");
        char lower[WP_DOMAIN_MAX + 1];
        if (!wp_strlcpy(lower, name, sizeof(lower)) || !wp_domain_valid(lower, false) || lower[0] == '[') {
            wp_error(err, file, line, "policyd.etrn_queues: queue '%s' is not a host name", name);
            continue;
        }
        wp_str_lower(lower);
        if (!r || !wp_router_queue_listed(r, WP_ROUTE_HOLD, lower)) {
            wp_error(err, file, line, "policyd.etrn_queues: queue %s is not listed in router.hold_queues",
                     lower);
            continue;
        }
        if (queue_conf(c, lower)) {
            wp_error(err, file, line, "policyd.etrn_queues: queue %s is listed twice", lower);
            continue;
        }
        struct wp_etrn_queue *q = &c->queues[c->nqueues];
        const config_setting_t *acc = config_setting_get_member(qg, "accounts");
        size_t nacc = acc ? (size_t)config_setting_length(acc) : 0;
        const char *qrel = wp_conf_string(qg, "release", acc ? "accounts" : rel);
        if (!parse_release(qrel, &q->release)) {
            wp_error(err, file, wp_conf_member_line(qg, "release"),
                     "policyd.etrn_queues: release '%s' is not one of anyone, trusted, accounts", qrel);
            continue;
        }
        if (q->release == WP_ETRN_ACCOUNTS && nacc == 0) {
            wp_error(err, file, line, "policyd.etrn_queues: queue %s releases to accounts but lists none",
                     lower);
            continue;
        }
        if (q->release != WP_ETRN_ACCOUNTS && nacc) {
            wp_error(err, file, wp_conf_member_line(qg, "accounts"),
                     "policyd.etrn_queues: accounts are only used with release = \"accounts\"");
            continue;
        }
        q->queue = wp_strdup(lower);
        q->accounts = wp_calloc(nacc + 1, sizeof(char *));
        for (size_t k = 0; k < nacc; k++) {
            const char *a = config_setting_get_string_elem(acc, (unsigned)k);
            if (!a[0] || strlen(a) > 255 || strpbrk(a, " \t\r\n")) {
                wp_error(err, file, wp_conf_line(acc), "policyd.etrn_queues: '%s' is not a login name", a);
                continue;
            }
            q->accounts[q->naccounts++] = wp_strdup(a);
        }
        c->nqueues++;
    }
    /* A default of "accounts" needs a list for every held queue. */
    if (c->release == WP_ETRN_ACCOUNTS && r) {
        for (size_t i = 0; i < r->hold_queues.cap; i++) {
            const char *k = r->hold_queues.slots[i].key;
            if (!k || queue_conf(c, k))
                continue;
            wp_error(err, path, wp_conf_member_line(g, "etrn_release"),
                     "policyd.etrn_release is \"accounts\" but held queue %s lists none in etrn_queues", k);
        }
    }
}

void wp_etrn_conf_free(struct wp_etrn_conf *c)
{
    for (size_t i = 0; i < c->nqueues; i++) {
        wp_router_domains_free(c->queues[i].accounts, c->queues[i].naccounts);
        free(c->queues[i].queue);
    }
    free(c->queues);
    c->queues = NULL;
    c->nqueues = 0; /* socket belongs to the policyd rows */
}

/* ---------------------------------------------------------------- decision */

static bool may_release(const struct wp_router *r, const struct wp_etrn_conf *c, const char *queue,
                        const char *client, const char *sasl)
{
    const struct wp_etrn_queue *q = queue_conf(c, queue);
    enum wp_etrn_release rel = q ? q->release : c->release;
    switch (rel) {
    case WP_ETRN_ANYONE: return true;
    case WP_ETRN_TRUSTED: return sasl[0] != '\0' || (client[0] && wp_nets_contain(&r->trusted, client));
    case WP_ETRN_ACCOUNTS:
        for (size_t i = 0; q && sasl[0] && i < q->naccounts; i++)
            if (wp_strieq(q->accounts[i], sasl))
                return true;
        return false;
    }
    return false;
}

void wp_etrn_decide(const struct wp_router *r, const struct wp_etrn_conf *c, const char *etrn_domain,
                    const char *client_address, const char *sasl_username, struct wp_etrn_decision *d)
{
    memset(d, 0, sizeof(*d));
    const char *arg = etrn_domain;
    if (arg[0] == '@' || arg[0] == '#') /* as Postfix strips them */
        arg++;
    char name[WP_DOMAIN_MAX + 1];
    bool fits = wp_strlcpy(name, arg, sizeof(name));
    size_t n = strlen(name);
    if (fits && n > 1 && name[n - 1] == '.')
        name[--n] = '\0';
    if (!fits || !wp_domain_valid(name, false)) {
        d->outcome = WP_ETRN_REFUSE;
        snprintf(d->action, sizeof(d->action), "501 5.5.4 invalid ETRN argument");
        return;
    }
    wp_str_lower(name);
    wp_strlcpy(d->name, name, sizeof(d->name));
    d->outcome = WP_ETRN_PASS;
    snprintf(d->action, sizeof(d->action), "DUNNO");
    if (name[0] == '[')
        return; /* an address literal is never a held queue */
    bool named_queue = wp_router_queue_listed(r, WP_ROUTE_HOLD, name);
    if (named_queue) {
        wp_strlcpy(d->queue, name, sizeof(d->queue));
    } else {
        /* A domain merged into a held queue needs the queue's right too. */
        char addr[WP_ADDR_MAX + 1];
        snprintf(addr, sizeof(addr), "%s@%s", PROBE_LOCAL, name);
        struct wp_resolve_opts o = {true, false};
        struct wp_route rt;
        wp_resolve(r, addr, &o, &rt, NULL);
        if (rt.kind != WP_ROUTE_HOLD)
            return;
        wp_strlcpy(d->queue, rt.queue, sizeof(d->queue));
    }
    if (!may_release(r, c, d->queue, client_address, sasl_username)) {
        d->outcome = WP_ETRN_REFUSE;
        snprintf(d->action, sizeof(d->action), "459 4.7.1 this client may not release queue %s", d->queue);
        return;
    }
    d->outcome = WP_ETRN_RELEASE;
    snprintf(d->action, sizeof(d->action), "OK");
    if (!named_queue)
        return; /* the whole queue is released; domains[] is only for the log */
    char **all;
    size_t nall = wp_router_queue_domains(r, WP_ROUTE_HOLD, d->queue, &all);
    d->domains = wp_calloc(nall + 1, sizeof(char *));
    for (size_t i = 0; i < nall; i++) {
        if (strcmp(all[i], name) == 0)
            free(all[i]);
        else
            d->domains[d->ndomains++] = all[i];
    }
    free(all);
}

void wp_etrn_decision_free(struct wp_etrn_decision *d)
{
    wp_router_domains_free(d->domains, d->ndomains);
    d->domains = NULL;
    d->ndomains = 0;
}
