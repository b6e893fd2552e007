/* SPDX-License-Identifier: MIT */
/*
 * router.c - build a Router: the construction API (state/ feeds it from
 * waypost.conf, unit tests from plain values).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/accounts.h"
#include "lib/address.h"
#include "router/router.h"
#include "lib/util.h"

static const char *own_key(struct wp_router *r, const char *s)
{
    r->owned_strings = wp_realloc(r->owned_strings, (r->nowned + 1) * sizeof(char *));
    char *k = wp_strdup(s);
    wp_str_lower(k);
    r->owned_strings[r->nowned++] = k;
    return k;
}

static void set_put(struct wp_router *r, struct wp_strmap *m, const char *s, uint32_t value)
{
    const char *k = own_key(r, s);
    struct wp_strmap_entry *e = wp_strmap_put(m, wp_hash_fwd(k, strlen(k)), k, strlen(k));
    if (e->head == WP_NONE)
        e->head = e->tail = value;
}

/* Parse "Rejected", "Discarded", "Accepted and Bounced", "Rerouted to PATTERN". */
static bool parse_unknown(const char *text, struct wp_domain *d, const char **why)
{
    if (wp_strieq(text, "Rejected")) {
        d->unknown = WP_UNKNOWN_REJECT;
    } else if (wp_strieq(text, "Discarded")) {
        d->unknown = WP_UNKNOWN_DISCARD;
    } else if (wp_strieq(text, "Accepted and Bounced")) {
        d->unknown = WP_UNKNOWN_BOUNCE;
    } else if (wp_strnieq(text, "Rerouted to ", 12)) {
        const char *pat = text + 12;
        while (*pat == ' ')
            pat++;
        char sample[WP_ADDR_MAX + 1];
        size_t o = 0;
        for (const char *c = pat; *c && o + 1 < sizeof(sample); c++)
            sample[o++] = *c == '*' ? 'x' : *c;
        sample[o] = '\0';
        struct wp_address a;
        if (!*pat || !wp_address_parse(sample, o, WP_ADDR_HOSTPORT, &a, why)) {
            if (!*pat)
                *why = "empty pattern";
            return false;
        }
        d->unknown = WP_UNKNOWN_REROUTE;
        d->reroute = wp_strdup(pat);
    } else {
        *why = "expected \"Rejected\", \"Discarded\", \"Accepted and Bounced\" or \"Rerouted to PATTERN\"";
        return false;
    }
    return true;
}

static void add_main_domain(struct wp_router *r, struct wp_errors *err);

/* One entry of a router list (trusted_networks, own_addresses, hold_queues,
 * odmr_queues); name is the setting, for messages. */
static void add_listed(struct wp_router *r, enum wp_router_list which, const char *v, const char *file,
                       int line, struct wp_errors *err)
{
    static const char *const names[] = {"trusted_networks", "own_addresses", "hold_queues", "odmr_queues"};
    const char *name = names[which];
    if (which == WP_ROUTER_TRUSTED) {
        struct wp_net n;
        if (!wp_net_parse(v, &n))
            wp_error(err, file, line, "%s: '%s' is not a network (ADDRESS or ADDRESS/BITS)", name, v);
        else
            wp_nets_add(&r->trusted, &n);
        return;
    }
    char text[WP_DOMAIN_MAX + 1];
    if (which == WP_ROUTER_OWN_ADDRESS) {
        if (!wp_domain_ip_literal(v, text, sizeof(text))) {
            wp_error(err, file, line, "%s: '%s' is not an IP address", name, v);
            return;
        }
        v = text;
    } else if (!wp_domain_valid(v, false)) {
        wp_error(err, file, line, "%s: '%s' is not a host name", name, v);
        return;
    }
    set_put(r,
            which == WP_ROUTER_OWN_ADDRESS  ? &r->own_ips
            : which == WP_ROUTER_HOLD_QUEUE ? &r->hold_queues
                                            : &r->odmr_queues,
            v, 0);
}

void wp_router_add(struct wp_router *r, enum wp_router_list which, const char *value, const char *file,
                   int line, struct wp_errors *err)
{
    add_listed(r, which, value, file, line, err);
}

/* A unified account: the domain a valid name that is neither a local
 * domain nor an alias; the header a field name.  The account is checked
 * once the table is in (see check_unified_accounts). */
void wp_router_add_unified(struct wp_router *r, const char *domain, const char *account, const char *header,
                           const char *file, int line, int header_line, struct wp_errors *err)
{
    add_main_domain(r, err);
    if (!header)
        header = WP_DEFAULT_UNIFIED_HEADER;
    if (!wp_domain_valid(domain, false) || domain[0] == '[') {
        wp_error(err, file, line, "unified account: domain '%s' is not a domain name", domain);
        return;
    }
    if (!wp_header_name_valid(header, strlen(header))) {
        wp_error(err, file, header_line, "unified account for %s: header '%s' is not a header field name",
                 domain, header);
        return;
    }
    struct wp_address a;
    const char *why;
    if (!wp_address_parse(account, strlen(account), 0, &a, &why) || !a.domain[0] || a.routed) {
        wp_error(err, file, line, "unified account for %s: account '%s' is not an address (local@domain)",
                 domain, account);
        return;
    }
    const char *k = own_key(r, domain);
    size_t kl = strlen(k);
    if (wp_strmap_get(&r->domain_index, wp_hash_fwd(k, kl), k, kl)) {
        wp_error(err, file, line, "unified account: %s is a local domain or alias; it cannot be unified", k);
        return;
    }
    struct wp_strmap_entry *e = wp_strmap_put(&r->unified_index, wp_hash_fwd(k, kl), k, kl);
    if (e->head != WP_NONE) {
        wp_error(err, file, line, "unified account: domain %s is listed twice", k);
        return;
    }
    r->unified = wp_realloc(r->unified, (r->nunified + 1) * sizeof(*r->unified));
    e->head = e->tail = (uint32_t)r->nunified;
    struct wp_unified *u = &r->unified[r->nunified++];
    memset(u, 0, sizeof(*u));
    u->line = line;
    u->domain = (char *)k;
    u->account = wp_strdup(account);
    u->header = wp_strdup(header);
    u->file = wp_strdup(file);
}

/* Each unified account must be a local account now: its address resolves,
 * as for any mail, to LOCAL, without passing a unified domain itself.  An
 * account source that cannot answer right now (Dovecot down) only warns. */
static void check_unified_accounts(struct wp_router *r, struct wp_errors *err)
{
    for (size_t i = 0; i < r->nunified; i++) {
        const struct wp_unified *u = &r->unified[i];
        struct wp_resolve_opts o = {true, false};
        struct wp_route rt;
        wp_resolve(r, u->account, &o, &rt, NULL);
        if (rt.kind == WP_ROUTE_TEMP) {
            wp_warning(err, u->file, u->line, "unified account %s for %s: cannot check it now (%s)",
                       u->account, u->domain, rt.text);
        } else if (rt.kind != WP_ROUTE_LOCAL || rt.unified) {
            char why[WP_ROUTE_TEXT_MAX + 64];
            if (rt.unified)
                snprintf(why, sizeof(why), "unified domain %s", rt.unified->domain);
            else
                snprintf(why, sizeof(why), "%s%s%s", wp_route_kind_name(rt.kind), rt.text[0] ? " " : "",
                         rt.text);
            wp_error(err, u->file, u->line,
                     "unified account %s for %s does not route to a local account (%s)", u->account,
                     u->domain, why);
        }
    }
}

struct wp_router *wp_router_new(const char *main_domain, const char *file, const char *basedir)
{
    struct wp_router *r = wp_calloc(1, sizeof(*r));
    r->file = wp_strdup(file ? file : "(router)");
    r->basedir = wp_strdup(basedir ? basedir : ".");
    r->main_domain = wp_strdup(main_domain);
    wp_str_lower(r->main_domain);
    r->delimiter = WP_DEFAULT_RECIPIENT_DELIMITER[0];
    r->cache_seconds = WP_DEFAULT_ACCOUNT_CACHE_SECONDS;
    r->userdb_timeout_ms = WP_DEFAULT_USERDB_TIMEOUT_MS;
    r->domains = wp_calloc(1, sizeof(*r->domains));
    r->unified = wp_calloc(1, sizeof(*r->unified));
    return r;
}

void wp_router_set_accounts(struct wp_router *r, int cache_seconds, int timeout_ms)
{
    r->cache_seconds = cache_seconds;
    r->userdb_timeout_ms = timeout_ms;
}

void wp_router_set_delimiter(struct wp_router *r, char delimiter)
{
    r->delimiter = delimiter;
}

void wp_router_add_domain(struct wp_router *r, const struct wp_domain_spec *spec, struct wp_errors *err)
{
    const char *file = spec->file ? spec->file : r->file;
    const char *name = spec->name;
    int line = spec->line;
    if (!name || !wp_domain_valid(name, false)) {
        wp_error(err, file, line, "domain needs a valid name");
        return;
    }
    r->domains = wp_realloc(r->domains, (r->ndomains + 2) * sizeof(*r->domains));
    struct wp_domain *d = &r->domains[r->ndomains];
    memset(d, 0, sizeof(*d));
    d->line = line;
    d->unknown_line = spec->unknown_line ? spec->unknown_line : line;
    d->file = spec->file ? wp_strdup(spec->file) : NULL;
    d->name = (char *)own_key(r, name);
    d->accounts =
        wp_accounts_new(spec->accounts ? spec->accounts : "list:", d->name, r->basedir, r->cache_seconds,
                        r->userdb_timeout_ms, file, spec->accounts_line ? spec->accounts_line : line, err);
    const char *why;
    const char *unknown = spec->mail_to_unknown ? spec->mail_to_unknown : WP_DEFAULT_MAIL_TO_UNKNOWN;
    if (!parse_unknown(unknown, d, &why))
        wp_error(err, file, spec->unknown_line ? spec->unknown_line : line, "mail_to_unknown: %s", why);

    wp_groups_add(&d->groups, spec->groups, false, d->name, r->basedir, file,
                  spec->groups_line ? spec->groups_line : line, err);
    wp_groups_add(&d->groups, spec->forwarders, true, d->name, r->basedir, file,
                  spec->forwarders_line ? spec->forwarders_line : line, err);

    uint32_t idx = (uint32_t)r->ndomains++;
    const char *k = d->name;
    struct wp_strmap_entry *e = wp_strmap_put(&r->domain_index, wp_hash_fwd(k, strlen(k)), k, strlen(k));
    if (e->head != WP_NONE)
        wp_error(err, file, line, "domain %s is listed twice", k);
    e->head = e->tail = idx;
    int aliases_line = spec->aliases_line ? spec->aliases_line : line;
    for (size_t j = 0; spec->aliases && spec->aliases[j]; j++) {
        const char *al = spec->aliases[j];
        if (!wp_domain_valid(al, false)) {
            wp_error(err, file, aliases_line, "alias '%s' is not a domain name", al);
            continue;
        }
        k = own_key(r, al);
        e = wp_strmap_put(&r->domain_index, wp_hash_fwd(k, strlen(k)), k, strlen(k));
        if (e->head != WP_NONE)
            wp_error(err, file, aliases_line, "alias %s is already a domain or alias", k);
        e->head = e->tail = idx;
    }
}

/* The main domain always exists in CommuniGate; if it was not listed, give
 * it no accounts. */
static void add_main_domain(struct wp_router *r, struct wp_errors *err)
{
    for (size_t i = 0; i < r->ndomains; i++)
        if (strcmp(r->domains[i].name, r->main_domain) == 0)
            return;
    r->domains = wp_realloc(r->domains, (r->ndomains + 2) * sizeof(*r->domains));
    struct wp_domain *d = &r->domains[r->ndomains];
    memset(d, 0, sizeof(*d));
    d->name = r->main_domain;
    d->accounts = wp_accounts_new("list:", d->name, r->basedir, r->cache_seconds, r->userdb_timeout_ms,
                                  r->file, 0, err);
    d->unknown = WP_UNKNOWN_REJECT;
    uint32_t idx = (uint32_t)r->ndomains++;
    struct wp_strmap_entry *e =
        wp_strmap_put(&r->domain_index, wp_hash_fwd(d->name, strlen(d->name)), d->name, strlen(d->name));
    if (e->head == WP_NONE)
        e->head = e->tail = idx;
}

void wp_router_load_table(struct wp_router *r, const char *path, struct wp_errors *err)
{
    add_main_domain(r, err);
    wp_table_free(r->table);
    if (path && *path) {
        r->table = wp_table_load(path, r->main_domain, err);
    } else {
        char *empty = wp_strdup("");
        r->table = wp_table_parse(empty, 0, "(no table)", r->main_domain, err);
    }
}

void wp_router_table_text(struct wp_router *r, const char *text, const char *name, struct wp_errors *err)
{
    add_main_domain(r, err);
    wp_table_free(r->table);
    size_t len = strlen(text);
    char *buf = wp_malloc(len + 1);
    memcpy(buf, text, len + 1);
    r->table = wp_table_parse(buf, len, name, r->main_domain, err);
}

void wp_router_finish(struct wp_router *r, struct wp_errors *err)
{
    add_main_domain(r, err);
    if (!r->table)
        wp_router_load_table(r, NULL, err);
    check_unified_accounts(r, err);
}

void wp_router_free(struct wp_router *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->ndomains; i++) {
        wp_accounts_free(r->domains[i].accounts);
        free(r->domains[i].reroute);
        wp_groups_free(&r->domains[i].groups);
        free(r->domains[i].file);
    }
    free(r->domains);
    wp_strmap_free(&r->domain_index);
    wp_strmap_free(&r->own_ips);
    wp_strmap_free(&r->hold_queues);
    wp_strmap_free(&r->odmr_queues);
    for (size_t i = 0; i < r->nunified; i++) {
        free(r->unified[i].account);
        free(r->unified[i].header);
        free(r->unified[i].file);
    }
    free(r->unified);
    wp_strmap_free(&r->unified_index);
    wp_nets_free(&r->trusted);
    for (size_t i = 0; i < r->nowned; i++)
        free(r->owned_strings[i]);
    free(r->owned_strings);
    wp_table_free(r->table);
    free(r->main_domain);
    free(r->file);
    free(r->basedir);
    free(r);
}
