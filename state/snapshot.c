/* SPDX-License-Identifier: MIT */
/*
 * snapshot.c - load waypost.conf into a refcounted snapshot: state's own
 * groups (log, postfix, router) and the sections the program registered.
 */
#include "config.h"

#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/address.h"
#include "lib/conf.h"
#include "lib/util.h"
#include "state/snapshot.h"

/* clang-format off */
const struct wp_conf_row wp_log_rows[] = {
    WP_ROW_STRING("level", struct wp_log_conf, level, "info"),
    WP_ROW_STRING("facility", struct wp_log_conf, facility, "mail"),
    WP_ROW_END,
};

#define P struct wp_postfix_conf
const struct wp_conf_row wp_postfix_rows[] = {
    WP_ROW_STRING("queue_directory", P, queue_directory, "/var/spool/postfix"),
    WP_ROW_STRING("config_directory", P, config_directory, "/etc/postfix"),
    WP_ROW_STRING("local_transport", P, local_transport, "lmtp:unix:private/dovecot-lmtp"),
    WP_ROW_STRING("relay_transport", P, relay_transport, "smtp"),
    WP_ROW_STRING("hold_transport", P, hold_transport, "waypost-hold"),
    WP_ROW_STRING("odmr_transport", P, odmr_transport, "lmtp:unix:/run/waypost/odmrd.sock"),
    WP_ROW_BOOL("chroot", P, chroot, "false"),
    WP_ROW_END,
};
#undef P

static const struct wp_conf_row domain_rows[] = {
    { "name", WP_CONF_STRING, WP_CONF_NOFIELD, NULL, 0, 0, WP_CONF_REQUIRED, NULL },
    WP_ROW_OWN("aliases", WP_CONF_STRINGS, NULL, 0, NULL),
    WP_ROW_OWN("accounts", WP_CONF_STRING, "list:", 0, NULL),
    WP_ROW_OWN("mail_to_unknown", WP_CONF_STRING, WP_DEFAULT_MAIL_TO_UNKNOWN, 0, NULL),
    WP_ROW_OWN("groups", WP_CONF_STRINGS, NULL, 0, NULL),
    WP_ROW_OWN("forwarders", WP_CONF_STRINGS, NULL, 0, NULL),
    WP_ROW_END,
};

static const struct wp_conf_row unified_rows[] = {
    WP_ROW_OWN("domain", WP_CONF_STRING, NULL, WP_CONF_REQUIRED, NULL),
    WP_ROW_OWN("account", WP_CONF_STRING, NULL, WP_CONF_REQUIRED, NULL),
    WP_ROW_OWN("header", WP_CONF_STRING, WP_DEFAULT_UNIFIED_HEADER, 0, NULL),
    WP_ROW_END,
};

#define R struct wp_router_conf
const struct wp_conf_row wp_router_rows[] = {
    WP_ROW_PATH("table", R, table, NULL),
    { "main_domain", WP_CONF_STRING, offsetof(R, main_domain), NULL, 0, 0, WP_CONF_REQUIRED, NULL },
    WP_ROW_STRINGS("trusted_networks", R, trusted_networks),
    WP_ROW_STRINGS("own_addresses", R, own_addresses),
    WP_ROW_STRINGS("hold_queues", R, hold_queues),
    WP_ROW_STRINGS("odmr_queues", R, odmr_queues),
    WP_ROW_STRING("recipient_delimiter", R, recipient_delimiter, WP_DEFAULT_RECIPIENT_DELIMITER),
    WP_ROW_INT("account_cache_seconds", R, account_cache_seconds,
               WP_STR(WP_DEFAULT_ACCOUNT_CACHE_SECONDS), 0, 3600),
    WP_ROW_INT("userdb_timeout_ms", R, userdb_timeout_ms,
               WP_STR(WP_DEFAULT_USERDB_TIMEOUT_MS), 10, 60000),
    WP_ROW_OWN("domains", WP_CONF_GROUPS, NULL, 0, domain_rows),
    WP_ROW_OWN("unified_accounts", WP_CONF_GROUPS, NULL, 0, unified_rows),
    WP_ROW_END,
};
#undef R
/* clang-format on */

const char *const wp_snapshot_top_names[] = {"log",   "postfix", "router", "policyd", "milter",
                                             "rules", "odmr",    "imap",   NULL};

static bool top_known(const char *name)
{
    for (const char *const *n = wp_snapshot_top_names; *n; n++)
        if (strcmp(*n, name) == 0)
            return true;
    return false;
}

/* The top level: unknown names, state's groups' types, "router" required.
 * Sections check their own groups when they load. */
static void check_top(const config_setting_t *root, const char *path, struct wp_errors *err)
{
    int n = config_setting_length(root);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        const char *name = config_setting_name(s);
        if (!top_known(name))
            wp_error(err, wp_conf_file(s, path), wp_conf_line(s), "unknown setting '%s'", name);
    }
    if (!config_setting_get_member(root, "router"))
        wp_error(err, path, 0, "missing required setting 'router'");
}

/* A top-level name that must be a group: NULL (and an error) if it is not. */
static const config_setting_t *group_of(const config_setting_t *root, const char *name, const char *path,
                                        struct wp_errors *err)
{
    const config_setting_t *g = config_setting_get_member(root, name);
    if (g && !config_setting_is_group(g)) {
        wp_error(err, wp_conf_file(g, path), wp_conf_line(g), "'%s' must be a group { ... }", name);
        return NULL;
    }
    return g;
}

/* The strings of a list setting, NULL-terminated (the row check made sure
 * they are strings); NULL for no setting.  Free the array only. */
static const char **strings_of(const config_setting_t *s)
{
    if (!s || (!config_setting_is_array(s) && !config_setting_is_list(s)))
        return NULL;
    size_t n = (size_t)config_setting_length(s);
    const char **v = wp_calloc(n + 1, sizeof(char *));
    for (size_t k = 0; k < n; k++)
        v[k] = config_setting_get_string_elem(s, (unsigned)k);
    return v;
}

/* The Router from the router group, through router/'s construction API. */
static struct wp_router *router_build(const config_setting_t *g, const struct wp_router_conf *rc,
                                      const char *path, const char *basedir, struct wp_errors *err)
{
    size_t before = err->count;
    const char *file = wp_conf_file(g, path);
    if (!wp_domain_valid(rc->main_domain, false))
        wp_error(err, file, wp_conf_member_line(g, "main_domain"), "main_domain '%s' is not a domain name",
                 rc->main_domain);
    if (strlen(rc->recipient_delimiter) > 1)
        wp_error(err, file, wp_conf_member_line(g, "recipient_delimiter"),
                 "recipient_delimiter must be one character or empty");
    struct wp_router *r = wp_router_new(rc->main_domain, path, basedir);
    wp_router_set_delimiter(r, rc->recipient_delimiter[0]);
    wp_router_set_accounts(r, rc->account_cache_seconds, rc->userdb_timeout_ms);

    static const struct {
        const char *name;
        enum wp_router_list which;
        size_t offset;
    } lists[] = {
        {"trusted_networks", WP_ROUTER_TRUSTED, offsetof(struct wp_router_conf, trusted_networks)},
        {"own_addresses", WP_ROUTER_OWN_ADDRESS, offsetof(struct wp_router_conf, own_addresses)},
        {"hold_queues", WP_ROUTER_HOLD_QUEUE, offsetof(struct wp_router_conf, hold_queues)},
        {"odmr_queues", WP_ROUTER_ODMR_QUEUE, offsetof(struct wp_router_conf, odmr_queues)},
    };
    for (size_t l = 0; l < sizeof(lists) / sizeof(lists[0]); l++) {
        char **v = *(char **const *)((const char *)rc + lists[l].offset);
        const config_setting_t *s = config_setting_get_member(g, lists[l].name);
        for (size_t i = 0; v[i]; i++)
            wp_router_add(r, lists[l].which, v[i], wp_conf_file(s, file), wp_conf_line(s), err);
    }

    const config_setting_t *domains = config_setting_get_member(g, "domains");
    for (int i = 0; domains && i < config_setting_length(domains); i++) {
        const config_setting_t *dg = config_setting_get_elem(domains, (unsigned)i);
        const config_setting_t *al = config_setting_get_member(dg, "aliases");
        size_t nal = al ? (size_t)config_setting_length(al) : 0;
        const char **aliases = wp_calloc(nal + 1, sizeof(char *));
        for (size_t k = 0; k < nal; k++)
            aliases[k] = config_setting_get_string_elem(al, (unsigned)k);
        const config_setting_t *acc = config_setting_get_member(dg, "accounts");
        const config_setting_t *mu = config_setting_get_member(dg, "mail_to_unknown");
        const config_setting_t *gs = config_setting_get_member(dg, "groups");
        const config_setting_t *fs = config_setting_get_member(dg, "forwarders");
        const char **groups = strings_of(gs), **forwarders = strings_of(fs);
        int line = wp_conf_line(dg);
        struct wp_domain_spec spec = {
            .name = wp_conf_string(dg, "name", NULL),
            .aliases = aliases,
            .accounts = wp_conf_string(dg, "accounts", NULL),
            .mail_to_unknown = wp_conf_string(dg, "mail_to_unknown", NULL),
            .file = wp_conf_file(dg, file),
            .line = line,
            .accounts_line = acc ? wp_conf_line(acc) : line,
            .unknown_line = mu ? wp_conf_line(mu) : line,
            .aliases_line = al ? wp_conf_line(al) : line,
            .groups = groups,
            .forwarders = forwarders,
            .groups_line = gs ? wp_conf_line(gs) : line,
            .forwarders_line = fs ? wp_conf_line(fs) : line,
        };
        wp_router_add_domain(r, &spec, err);
        free(aliases);
        free(groups);
        free(forwarders);
    }
    /* The table comes after the domains: it needs the main domain. */
    wp_router_load_table(r, rc->table, err);

    const config_setting_t *unified = config_setting_get_member(g, "unified_accounts");
    for (int i = 0; unified && i < config_setting_length(unified); i++) {
        const config_setting_t *ug = config_setting_get_elem(unified, (unsigned)i);
        const config_setting_t *hs = config_setting_get_member(ug, "header");
        int line = wp_conf_line(ug);
        wp_router_add_unified(r, wp_conf_string(ug, "domain", ""), wp_conf_string(ug, "account", ""),
                              wp_conf_string(ug, "header", NULL), wp_conf_file(ug, file), line,
                              hs ? wp_conf_line(hs) : line, err);
    }
    if (err->count == before)
        wp_router_finish(r, err);
    if (err->count > before) {
        wp_router_free(r);
        return NULL;
    }
    return r;
}

const void *wp_snapshot_section(const struct wp_snapshot *s, enum wp_section_id id)
{
    return s ? s->section[id] : NULL;
}

struct wp_snapshot *wp_snapshot_load(const char *path, const struct wp_section *const *sections,
                                     struct wp_errors *err)
{
    config_t cfg;
    size_t before = err->count;
    if (!wp_conf_read(&cfg, path, err)) {
        config_destroy(&cfg);
        return NULL;
    }
    const config_setting_t *root = config_root_setting(&cfg);
    check_top(root, path, err);

    struct wp_snapshot *s = wp_calloc(1, sizeof(*s));
    atomic_init(&s->refs, 1);
    s->path = wp_strdup(path);
    s->basedir = wp_dirname(path);

    const config_setting_t *log = group_of(root, "log", path, err);
    wp_conf_load(log, wp_log_rows, &s->log, "log", path, s->basedir, err);
    if (!wp_log_level_parse(s->log.level, &s->log_level))
        wp_error(err, path, wp_conf_member_line(log, "level"),
                 "log.level '%s' is not one of error, warning, notice, info, debug", s->log.level);
    if (!wp_log_facility_valid(s->log.facility))
        wp_error(err, path, wp_conf_member_line(log, "facility"),
                 "log.facility '%s' is not a syslog facility (mail, daemon, local0..7)", s->log.facility);
    s->log_facility = wp_strdup(s->log.facility);
    const config_setting_t *pf = group_of(root, "postfix", path, err);
    wp_conf_load(pf, wp_postfix_rows, &s->postfix, "postfix", path, s->basedir, err);
    const config_setting_t *router = group_of(root, "router", path, err);
    wp_conf_load(router, wp_router_rows, &s->router_conf, "router", path, s->basedir, err);

    for (size_t i = 0; sections && sections[i]; i++) {
        const struct wp_section *sec = sections[i];
        if (s->section[sec->id])
            continue; /* listed twice */
        const config_setting_t *g = group_of(root, sec->name, path, err);
        s->sections[sec->id] = sec;
        s->section[sec->id] = wp_calloc(1, sec->size);
        wp_conf_load(g, sec->rows, s->section[sec->id], sec->name, path, s->basedir, err);
        /* Top-level settings the section owns (the milter's rules). */
        for (const struct wp_conf_row *r = sec->top; r && r->name; r++) {
            const config_setting_t *t = config_setting_get_member(root, r->name);
            if (t)
                wp_conf_check_setting(t, r, "", path, err);
        }
        if (sec->load)
            sec->load(s->section[sec->id], g, root, s, err);
    }

    if (err->count == before)
        s->router = router_build(router, &s->router_conf, path, s->basedir, err);
    for (size_t i = 0; sections && sections[i]; i++) {
        const struct wp_section *sec = sections[i];
        if (err->count == before && sec->link)
            sec->link(s->section[sec->id], config_setting_get_member(root, sec->name), root, s, err);
    }
    config_destroy(&cfg);
    if (err->count > before) {
        wp_snapshot_unref(s);
        return NULL;
    }
    return s;
}

struct wp_snapshot *wp_snapshot_load_startup(const char *path, const struct wp_section *const *sections,
                                             char **abs)
{
    char *real = realpath(path, NULL);
    *abs = real ? real : wp_strdup(path);
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_snapshot *s = wp_snapshot_load(*abs, sections, &err);
    for (size_t i = 0; i < err.nwarn; i++)
        fprintf(stderr, "%s (warning)\n", err.warns[i]);
    for (size_t i = 0; i < err.count; i++)
        fprintf(stderr, "%s\n", err.msgs[i]);
    wp_errors_free(&err);
    return s;
}

struct wp_snapshot *wp_snapshot_reload(const char *path, const struct wp_section *const *sections)
{
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_snapshot *s = wp_snapshot_load(path, sections, &err);
    for (size_t i = 0; i < err.nwarn; i++)
        wp_warn("%s", err.warns[i]);
    for (size_t i = 0; i < err.count; i++)
        wp_err("%s", err.msgs[i]);
    if (!s)
        wp_err("reload failed: keeping the configuration loaded before");
    wp_errors_free(&err);
    return s;
}

void wp_snapshot_print(FILE *out, const struct wp_snapshot *s, const config_setting_t *root,
                       bool changed_only)
{
    const config_setting_t *g;
    g = root ? config_setting_get_member(root, "log") : NULL;
    wp_conf_print(out, "log", wp_log_rows, &s->log, g, s->basedir, changed_only);
    g = root ? config_setting_get_member(root, "postfix") : NULL;
    wp_conf_print(out, "postfix", wp_postfix_rows, &s->postfix, g, s->basedir, changed_only);
    g = root ? config_setting_get_member(root, "router") : NULL;
    wp_conf_print(out, "router", wp_router_rows, &s->router_conf, g, s->basedir, changed_only);
    for (int id = 0; id < WP_SECTION_MAX; id++) {
        const struct wp_section *sec = s->sections[id];
        if (!sec)
            continue;
        g = root ? config_setting_get_member(root, sec->name) : NULL;
        wp_conf_print(out, sec->name, sec->rows, s->section[id], g, s->basedir, changed_only);
        for (const struct wp_conf_row *r = sec->top; r && r->name; r++) {
            const config_setting_t *t = root ? config_setting_get_member(root, r->name) : NULL;
            if (changed_only && !t)
                continue;
            /* A top-level setting: shown as "name = value" (no group). */
            const struct wp_conf_row one[2] = {*r, WP_ROW_END};
            wp_conf_print(out, "", one, NULL, root, s->basedir, changed_only);
        }
    }
}

struct wp_snapshot *wp_snapshot_ref(struct wp_snapshot *s)
{
    atomic_fetch_add(&s->refs, 1);
    return s;
}

void wp_snapshot_unref(struct wp_snapshot *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    wp_router_free(s->router);
    for (int id = 0; id < WP_SECTION_MAX; id++) {
        const struct wp_section *sec = s->sections[id];
        if (!sec)
            continue;
        if (sec->free)
            sec->free(s->section[id]);
        wp_conf_free(sec->rows, s->section[id]);
        free(s->section[id]);
    }
    wp_conf_free(wp_log_rows, &s->log);
    wp_conf_free(wp_postfix_rows, &s->postfix);
    wp_conf_free(wp_router_rows, &s->router_conf);
    free(s->log_facility);
    free(s->basedir);
    free(s->path);
    free(s);
}
