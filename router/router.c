/* SPDX-License-Identifier: MIT */
/*
 * router.c - build a Router from the "router" section of waypost.conf.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/accounts.h"
#include "lib/address.h"
#include "lib/conf.h"
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

static void load_strings(struct wp_router *r, const config_setting_t *g, const char *name,
                         const char *file, struct wp_errors *err, struct wp_strmap *set,
                         bool ip, bool net)
{
    const config_setting_t *list = g ? config_setting_get_member(g, name) : NULL;
    if (!list)
        return;
    for (int i = 0; i < config_setting_length(list); i++) {
        const char *v = config_setting_get_string_elem(list, (unsigned)i);
        if (net) {
            struct wp_net n;
            if (!wp_net_parse(v, &n))
                wp_error(err, wp_conf_file(list, file), wp_conf_line(list),
                         "%s: '%s' is not a network (ADDRESS or ADDRESS/BITS)", name, v);
            else
                wp_nets_add(&r->trusted, &n);
            continue;
        }
        char text[WP_DOMAIN_MAX + 1];
        if (ip) {
            if (!wp_domain_ip_literal(v, text, sizeof(text))) {
                wp_error(err, wp_conf_file(list, file), wp_conf_line(list),
                         "%s: '%s' is not an IP address", name, v);
                continue;
            }
            v = text;
        } else if (!wp_domain_valid(v, false)) {
            wp_error(err, wp_conf_file(list, file), wp_conf_line(list), "%s: '%s' is not a host name", name, v);
            continue;
        }
        set_put(r, set, v, 0);
    }
}

/* router.unified_accounts: each domain a valid name that is neither a local
 * domain nor an alias; the header a field name.  The accounts are checked
 * once the table is in (see check_unified_accounts). */
static void load_unified(struct wp_router *r, const config_setting_t *g, const char *file,
                         struct wp_errors *err)
{
    const config_setting_t *list = g ? config_setting_get_member(g, "unified_accounts") : NULL;
    size_t n = list ? (size_t)config_setting_length(list) : 0;
    r->unified = wp_calloc(n + 1, sizeof(*r->unified));
    for (size_t i = 0; i < n; i++) {
        const config_setting_t *ug = config_setting_get_elem(list, (unsigned)i);
        const char *ufile = wp_conf_file(ug, file);
        struct wp_unified *u = &r->unified[r->nunified];
        u->line = wp_conf_line(ug);
        const char *domain = wp_conf_string(ug, "domain", "");
        const char *account = wp_conf_string(ug, "account", "");
        const char *header = wp_conf_string(ug, "header", WP_DEFAULT_UNIFIED_HEADER);
        const config_setting_t *hs = config_setting_get_member(ug, "header");
        int hline = hs ? wp_conf_line(hs) : u->line;
        if (!wp_domain_valid(domain, false) || domain[0] == '[') {
            wp_error(err, ufile, u->line, "unified account: domain '%s' is not a domain name", domain);
            continue;
        }
        if (!wp_header_name_valid(header, strlen(header))) {
            wp_error(err, ufile, hline, "unified account for %s: header '%s' is not a header field name",
                     domain, header);
            continue;
        }
        struct wp_address a;
        const char *why;
        if (!wp_address_parse(account, strlen(account), 0, &a, &why) || !a.domain[0] || a.routed) {
            wp_error(err, ufile, u->line,
                     "unified account for %s: account '%s' is not an address (local@domain)", domain,
                     account);
            continue;
        }
        const char *k = own_key(r, domain);
        size_t kl = strlen(k);
        if (wp_strmap_get(&r->domain_index, wp_hash_fwd(k, kl), k, kl)) {
            wp_error(err, ufile, u->line,
                     "unified account: %s is a local domain or alias; it cannot be unified", k);
            continue;
        }
        struct wp_strmap_entry *e = wp_strmap_put(&r->unified_index, wp_hash_fwd(k, kl), k, kl);
        if (e->head != WP_NONE) {
            wp_error(err, ufile, u->line, "unified account: domain %s is listed twice", k);
            continue;
        }
        e->head = e->tail = (uint32_t)r->nunified++;
        u->domain = (char *)k;
        u->account = wp_strdup(account);
        u->header = wp_strdup(header);
        u->file = wp_strdup(ufile);
    }
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

struct wp_router *wp_router_load(const config_setting_t *g, const char *file, const char *basedir,
                                 struct wp_errors *err)
{
    struct wp_router *r = wp_calloc(1, sizeof(*r));
    r->file = wp_strdup(file);
    size_t before = err->count;

    const char *main_domain = wp_conf_string(g, "main_domain", NULL);
    if (!main_domain) {
        wp_error(err, file, g ? wp_conf_line(g) : 0, "router.main_domain is not set");
        main_domain = "localhost";
    } else if (!wp_domain_valid(main_domain, false)) {
        wp_error(err, wp_conf_file(g, file), wp_conf_line(config_setting_get_member(g, "main_domain")),
                 "main_domain '%s' is not a domain name", main_domain);
    }
    r->main_domain = wp_strdup(main_domain);
    wp_str_lower(r->main_domain);

    const char *delim = wp_conf_string(g, "recipient_delimiter", WP_DEFAULT_RECIPIENT_DELIMITER);
    if (strlen(delim) > 1)
        wp_error(err, file, wp_conf_line(config_setting_get_member(g, "recipient_delimiter")),
                 "recipient_delimiter must be one character or empty");
    r->delimiter = delim[0];
    int cache = wp_conf_int(g, "account_cache_seconds", WP_DEFAULT_ACCOUNT_CACHE_SECONDS);
    int timeout = wp_conf_int(g, "userdb_timeout_ms", WP_DEFAULT_USERDB_TIMEOUT_MS);
    if (cache < 0 || cache > 3600)
        wp_error(err, file, wp_conf_line(config_setting_get_member(g, "account_cache_seconds")),
                 "account_cache_seconds must be 0..3600");
    if (timeout < 10 || timeout > 60000)
        wp_error(err, file, wp_conf_line(config_setting_get_member(g, "userdb_timeout_ms")),
                 "userdb_timeout_ms must be 10..60000");

    load_strings(r, g, "trusted_networks", file, err, NULL, false, true);
    load_strings(r, g, "own_addresses", file, err, &r->own_ips, true, false);
    load_strings(r, g, "hold_queues", file, err, &r->hold_queues, false, false);
    load_strings(r, g, "odmr_queues", file, err, &r->odmr_queues, false, false);

    /* Domains. */
    const config_setting_t *domains = g ? config_setting_get_member(g, "domains") : NULL;
    size_t n = domains ? (size_t)config_setting_length(domains) : 0;
    r->domains = wp_calloc(n + 1, sizeof(*r->domains));
    bool main_listed = false;
    for (size_t i = 0; i < n; i++) {
        const config_setting_t *dg = config_setting_get_elem(domains, (unsigned)i);
        const char *dfile = wp_conf_file(dg, file);
        struct wp_domain *d = &r->domains[r->ndomains];
        const char *name = wp_conf_string(dg, "name", NULL);
        d->line = wp_conf_line(dg);
        if (!name || !wp_domain_valid(name, false)) {
            wp_error(err, dfile, d->line, "domain needs a valid name");
            continue;
        }
        d->name = (char *)own_key(r, name);
        if (strcmp(d->name, r->main_domain) == 0)
            main_listed = true;
        const config_setting_t *acc = config_setting_get_member(dg, "accounts");
        const char *spec = wp_conf_string(dg, "accounts", "list:");
        d->accounts = wp_accounts_new(spec, d->name, basedir, cache, timeout, dfile,
                                      acc ? wp_conf_line(acc) : d->line, err);
        const char *why;
        const config_setting_t *mu = config_setting_get_member(dg, "mail_to_unknown");
        if (!parse_unknown(wp_conf_string(dg, "mail_to_unknown", WP_DEFAULT_MAIL_TO_UNKNOWN), d, &why))
            wp_error(err, dfile, mu ? wp_conf_line(mu) : d->line, "mail_to_unknown: %s", why);

        uint32_t idx = (uint32_t)r->ndomains++;
        const char *k = d->name;
        struct wp_strmap_entry *e = wp_strmap_put(&r->domain_index, wp_hash_fwd(k, strlen(k)), k, strlen(k));
        if (e->head != WP_NONE)
            wp_error(err, dfile, d->line, "domain %s is listed twice", k);
        e->head = e->tail = idx;
        const config_setting_t *aliases = config_setting_get_member(dg, "aliases");
        for (int j = 0; aliases && j < config_setting_length(aliases); j++) {
            const char *al = config_setting_get_string_elem(aliases, (unsigned)j);
            if (!wp_domain_valid(al, false)) {
                wp_error(err, dfile, wp_conf_line(aliases), "alias '%s' is not a domain name", al);
                continue;
            }
            k = own_key(r, al);
            e = wp_strmap_put(&r->domain_index, wp_hash_fwd(k, strlen(k)), k, strlen(k));
            if (e->head != WP_NONE)
                wp_error(err, dfile, wp_conf_line(aliases), "alias %s is already a domain or alias", k);
            e->head = e->tail = idx;
        }
    }
    if (!main_listed) {
        /* The main domain always exists in CommuniGate; give it no accounts. */
        struct wp_domain *d = &r->domains[r->ndomains];
        d->name = r->main_domain;
        d->accounts = wp_accounts_new("list:", d->name, basedir, cache, timeout, file, 0, err);
        d->unknown = WP_UNKNOWN_REJECT;
        uint32_t idx = (uint32_t)r->ndomains++;
        struct wp_strmap_entry *e = wp_strmap_put(&r->domain_index, wp_hash_fwd(d->name, strlen(d->name)),
                                                  d->name, strlen(d->name));
        if (e->head == WP_NONE)
            e->head = e->tail = idx;
    }

    /* The table comes last: it needs the main domain. */
    const config_setting_t *ts = g ? config_setting_get_member(g, "table") : NULL;
    if (ts) {
        char *path = wp_path_relative_to(basedir, config_setting_get_string(ts));
        r->table = wp_table_load(path, r->main_domain, err);
        free(path);
    } else {
        char *empty = wp_strdup("");
        r->table = wp_table_parse(empty, 0, "(no table)", r->main_domain, err);
    }

    load_unified(r, g, file, err);
    if (err->count == before)
        check_unified_accounts(r, err);

    if (err->count > before) {
        wp_router_free(r);
        return NULL;
    }
    return r;
}

void wp_router_free(struct wp_router *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->ndomains; i++) {
        wp_accounts_free(r->domains[i].accounts);
        free(r->domains[i].reroute);
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
    free(r);
}
