/* SPDX-License-Identifier: MIT */
/*
 * queues.c - customers' queues: which next-hop names are held or ATRN
 * queues, and which domains Router records merge into one queue.
 *
 * A queue is the next-hop host of a route (router.hold_queues,
 * router.odmr_queues); Router records that send domain2.dom and
 * domain3.dom to domain1.dom's host merge them into domain1.dom's queue,
 * and the queue is the unit that is stored and released (DESIGN §5).
 *
 * Merged domains are found by resolving, as a trusted client would, one
 * address for every local domain and for every mail record whose left side
 * names an exact domain; each route that ends in the queue contributes the
 * domain of its final envelope address (what the queued message holds).
 * Domains reached only through a wildcard-domain record ("*.dom") cannot
 * be listed.  Records whose target surely ends elsewhere (one table lookup
 * tells) are not resolved.  The walk costs about half a second on a
 * million-record table: callers run it per release, not per lookup.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/address.h"
#include "lib/util.h"
#include "router/router.h"

bool wp_router_queue_listed(const struct wp_router *r, enum wp_route_kind kind, const char *queue)
{
    const struct wp_strmap *m = kind == WP_ROUTE_ODMR ? &r->odmr_queues : &r->hold_queues;
    if ((kind != WP_ROUTE_ODMR && kind != WP_ROUTE_HOLD) || !m->count)
        return false;
    size_t n = strlen(queue);
    return wp_strmap_get(m, wp_hash_fwd(queue, n), queue, n) != NULL;
}

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
    wp_router_domains_free(s->items, s->n);
}

/* One probe: if its route ends in the queue, keep its envelope domain. */
static void probe(const struct wp_router *r, enum wp_route_kind kind, const char *queue, const char *address,
                  struct domain_set *probed, struct domain_set *found)
{
    size_t before = probed->n;
    set_add(probed, address);
    if (probed->n == before)
        return; /* resolved already */
    struct wp_resolve_opts o = {true, false};
    struct wp_route rt;
    wp_resolve(r, address, &o, &rt, NULL);
    if (rt.kind != kind || strcmp(rt.queue, queue) != 0)
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
        snprintf(local, sizeof(local), "%s", WP_ROUTER_PROBE_LOCAL);
    } else {
        size_t o = 0;
        for (size_t i = 0; i < rec->local_len; i++) {
            const char *piece = rec->local[i] == '*' ? WP_ROUTER_PROBE_LOCAL : NULL;
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
        snprintf(local, sizeof(local), "%s", WP_ROUTER_PROBE_LOCAL);
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

size_t wp_router_queue_domains(const struct wp_router *r, enum wp_route_kind kind, const char *queue,
                               char ***domains)
{
    struct domain_set probed, found;
    memset(&probed, 0, sizeof(probed));
    memset(&found, 0, sizeof(found));
    wp_strmap_init(&probed.index, 64);
    wp_strmap_init(&found.index, 16);
    char addr[WP_ADDR_MAX + 1];
    /* The queue's own name, and local domains (Mail to Unknown may reroute). */
    snprintf(addr, sizeof(addr), "%s@%s", WP_ROUTER_PROBE_LOCAL, queue);
    probe(r, kind, queue, addr, &probed, &found);
    for (size_t i = 0; i < r->ndomains; i++) {
        snprintf(addr, sizeof(addr), "%s@%s", WP_ROUTER_PROBE_LOCAL, r->domains[i].name);
        probe(r, kind, queue, addr, &probed, &found);
    }
    const struct wp_table *t = r->table;
    for (uint32_t i = 0; t && i < t->nrecs; i++) {
        const struct wp_record *rec = wp_table_record(t, t->ids[i]);
        if (rec->prefix == WP_PFX_ACCESS || rec->prefix == WP_PFX_SIGNAL)
            continue;
        if (target_may_reach(r, rec, queue) && record_probe(rec, addr, sizeof(addr)))
            probe(r, kind, queue, addr, &probed, &found);
    }
    set_free(&probed);
    wp_strmap_free(&found.index);
    if (found.n > 1)
        qsort(found.items, found.n, sizeof(char *), cmp_str);
    *domains = found.items;
    return found.n;
}

void wp_router_domains_free(char **domains, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(domains[i]);
    free(domains);
}
