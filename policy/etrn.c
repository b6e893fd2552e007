/* SPDX-License-Identifier: MIT */
/*
 * etrn.c - ETRN decisions and the merged-domain walk (see etrn.h).
 *
 * Nothing here runs a program: policyd.c turns a RELEASE decision into
 * postqueue runs.  The ETRN argument never reaches postqueue (Postfix
 * flushes it itself); only domains taken from routes do.
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
#define PROBE_LOCAL "waypost-etrn-probe"

static const char *const release_names[] = {"anyone", "trusted", "accounts"};

const char *wp_etrn_release_name(enum wp_etrn_release r)
{
    return release_names[r];
}

static bool parse_release(const char *text, enum wp_etrn_release *out)
{
    for (size_t i = 0; i < sizeof(release_names) / sizeof(release_names[0]); i++)
        if (strcmp(text, release_names[i]) == 0) {
            *out = (enum wp_etrn_release)i;
            return true;
        }
    return false;
}

bool wp_etrn_is_held_queue(const struct wp_router *r, const char *queue)
{
    size_t n = strlen(queue);
    return r->hold_queues.count && wp_strmap_get(&r->hold_queues, wp_hash_fwd(queue, n), queue, n) != NULL;
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
    /* postqueue and timeout are rows of the policyd section: already set. */
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
        if (!r || !wp_etrn_is_held_queue(r, lower)) {
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
        wp_etrn_domains_free(c->queues[i].accounts, c->queues[i].naccounts);
        free(c->queues[i].queue);
    }
    free(c->queues);
    c->queues = NULL;
    c->nqueues = 0; /* postqueue belongs to the policyd rows */
}

/* ---------------------------------------------------------------- merged domains */

struct domain_set {
    char **items;
    size_t n, cap;
    struct wp_strmap index; /* keys are items[] */
};

static void set_add(struct domain_set *s, const char *text)
{
    size_t len = strlen(text);
    uint64_t h = wp_hash_fwd(text, len);
    if (wp_strmap_get(&s->index, h, text, len))
        return;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->items = wp_realloc(s->items, s->cap * sizeof(char *));
    }
    char *k = wp_strdup(text);
    s->items[s->n++] = k;
    wp_strmap_put(&s->index, h, k, len)->head = 0;
}

static void set_free(struct domain_set *s)
{
    wp_strmap_free(&s->index);
    wp_etrn_domains_free(s->items, s->n);
}

/* One probe: if its route ends in the queue, keep its envelope domain. */
static void probe(const struct wp_router *r, const char *queue, const char *address,
                  struct domain_set *probed, struct domain_set *found)
{
    size_t before = probed->n;
    set_add(probed, address);
    if (probed->n == before)
        return; /* resolved already */
    struct wp_resolve_opts o = {true, false};
    struct wp_route rt;
    rt.trace = NULL;
    wp_resolve(r, address, &o, &rt);
    if (rt.kind != WP_ROUTE_HOLD || strcmp(rt.queue, queue) != 0)
        return;
    const char *at = strrchr(rt.address, '@');
    if (!at || !at[1] || at[1] == '-')
        return;
    char domain[WP_DOMAIN_MAX + 1];
    if (!wp_strlcpy(domain, at + 1, sizeof(domain)))
        return;
    wp_str_lower(domain);
    if (wp_domain_valid(domain, false))
        set_add(found, domain);
}

/* A probe address for a record's left side: '*' in the local part stands
 * for the probe text. */
static bool record_probe(const struct wp_record *rec, char *out, size_t size)
{
    char domain[WP_DOMAIN_MAX + 1], local[WP_LOCAL_MAX + 1];
    if (memchr(rec->domain, '*', rec->domain_len) || rec->domain_len >= sizeof(domain))
        return false;
    memcpy(domain, rec->domain, rec->domain_len);
    domain[rec->domain_len] = '\0';
    if (!rec->local) {
        snprintf(local, sizeof(local), "%s", PROBE_LOCAL);
    } else {
        size_t o = 0;
        for (size_t i = 0; i < rec->local_len; i++) {
            const char *piece = rec->local[i] == '*' ? PROBE_LOCAL : NULL;
            size_t plen = piece ? strlen(piece) : 1;
            if (o + plen >= sizeof(local))
                return false;
            memcpy(local + o, piece ? piece : &rec->local[i], plen);
            o += plen;
        }
        local[o] = '\0';
    }
    return wp_address_format(local, domain, out, size);
}

static bool is_local_domain(const struct wp_router *r, const char *domain)
{
    size_t n = strlen(domain);
    return wp_strmap_get(&r->domain_index, wp_hash_fwd(domain, n), domain, n) != NULL;
}

/* Can the route through this record end in the queue?  Resolving every
 * record of a large table costs seconds, so a record is skipped when its
 * target surely ends elsewhere: no record applies to the target, and it
 * leaves for another host, or lands in a local domain (whose own probe
 * covers Mail to Unknown) without a '%' to unwrap.  Anything unclear is
 * resolved. */
static bool target_may_reach(const struct wp_router *r, const struct wp_record *rec, const char *queue)
{
    if (rec->target_kind == WP_TGT_NULL || rec->target_kind == WP_TGT_ERROR)
        return false;
    char local[WP_LOCAL_MAX + 1], dom[WP_DOMAIN_MAX + 1];
    const char *t = rec->target;
    const char *at = rec->target_kind == WP_TGT_ADDRESS ? strrchr(t, '@') : NULL;
    const char *d = t;
    if (rec->target_kind == WP_TGT_ADDRESS) {
        size_t llen = at ? (size_t)(at - t) : strlen(t);
        if (llen >= sizeof(local))
            return true;
        memcpy(local, t, llen);
        local[llen] = '\0';
        d = at ? at + 1 : r->main_domain;
    } else {
        snprintf(local, sizeof(local), "%s", PROBE_LOCAL);
    }
    if (!wp_strlcpy(dom, d, sizeof(dom)) || strchr(dom, '*') || strchr(local, '!'))
        return true;
    wp_str_lower(dom);
    size_t n = strlen(dom);
    if (n > 1 && dom[n - 1] == '.')
        dom[--n] = '\0';
    char *star = strchr(local, '*');
    if (star)
        *star = 'x'; /* any text: only the records that apply matter */
    struct wp_lookup_mode mode = {false, true};
    struct wp_capture caps[2];
    size_t ncaps;
    if (wp_table_lookup(r->table, local, dom, &mode, caps, &ncaps))
        return true;
    static const char *const suffixes[] = {"._via", ".via", ".smtp"};
    bool hop = dom[0] == '[';
    for (size_t i = 0; i < 3 && !hop; i++)
        if (wp_has_suffix_ci(dom, n, suffixes[i]) && n > strlen(suffixes[i])) {
            dom[n - strlen(suffixes[i])] = '\0';
            hop = true;
        }
    if (hop) {
        if (dom[0] == '[')
            return r->own_ips.count > 0; /* may be this server; queue names are never literals */
        char *colon = strchr(dom, ':');
        if (colon)
            *colon = '\0';
        return strcmp(dom, queue) == 0;
    }
    if (is_local_domain(r, dom))
        return strchr(local, '%') != NULL;
    return strcmp(dom, queue) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t wp_etrn_merged_domains(const struct wp_router *r, const char *queue, char ***domains)
{
    struct domain_set probed, found;
    memset(&probed, 0, sizeof(probed));
    memset(&found, 0, sizeof(found));
    wp_strmap_init(&probed.index, 64);
    wp_strmap_init(&found.index, 16);
    char addr[WP_ADDR_MAX + 1];
    /* The queue's own name, and local domains (Mail to Unknown may reroute). */
    snprintf(addr, sizeof(addr), "%s@%s", PROBE_LOCAL, queue);
    probe(r, queue, addr, &probed, &found);
    for (size_t i = 0; i < r->ndomains; i++) {
        snprintf(addr, sizeof(addr), "%s@%s", PROBE_LOCAL, r->domains[i].name);
        probe(r, queue, addr, &probed, &found);
    }
    const struct wp_table *t = r->table;
    for (uint32_t i = 0; t && i < t->nrecs; i++) {
        const struct wp_record *rec = wp_table_record(t, t->ids[i]);
        if (rec->prefix == WP_PFX_ACCESS || rec->prefix == WP_PFX_SIGNAL)
            continue;
        if (target_may_reach(r, rec, queue) && record_probe(rec, addr, sizeof(addr)))
            probe(r, queue, addr, &probed, &found);
    }
    set_free(&probed);
    wp_strmap_free(&found.index);
    if (found.n > 1)
        qsort(found.items, found.n, sizeof(char *), cmp_str);
    *domains = found.items;
    return found.n;
}

void wp_etrn_domains_free(char **domains, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(domains[i]);
    free(domains);
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
    bool named_queue = wp_etrn_is_held_queue(r, name);
    if (named_queue) {
        wp_strlcpy(d->queue, name, sizeof(d->queue));
    } else {
        /* A domain merged into a held queue needs the queue's right too. */
        char addr[WP_ADDR_MAX + 1];
        snprintf(addr, sizeof(addr), "%s@%s", PROBE_LOCAL, name);
        struct wp_resolve_opts o = {true, false};
        struct wp_route rt;
        rt.trace = NULL;
        wp_resolve(r, addr, &o, &rt);
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
        return; /* Postfix flushes the domain named; its queue-mates stay */
    char **all;
    size_t nall = wp_etrn_merged_domains(r, d->queue, &all);
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
    wp_etrn_domains_free(d->domains, d->ndomains);
    d->domains = NULL;
    d->ndomains = 0;
}
