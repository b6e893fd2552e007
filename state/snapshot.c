/*
 * snapshot.c - load waypost.conf into a refcounted snapshot.
 */
#include "config.h"

#include <libconfig.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "snapshot.h"
#include "util.h"

static const struct wp_conf_schema domain_schema[] = {
    { "name", WP_CONF_STRING, NULL, true },
    { "aliases", WP_CONF_STRINGS, NULL, false },
    { "accounts", WP_CONF_STRING, NULL, false },
    { "mail_to_unknown", WP_CONF_STRING, NULL, false },
    { NULL, 0, NULL, false },
};

static const struct wp_conf_schema router_schema[] = {
    { "table", WP_CONF_STRING, NULL, false },
    { "main_domain", WP_CONF_STRING, NULL, true },
    { "trusted_networks", WP_CONF_STRINGS, NULL, false },
    { "own_addresses", WP_CONF_STRINGS, NULL, false },
    { "hold_queues", WP_CONF_STRINGS, NULL, false },
    { "odmr_queues", WP_CONF_STRINGS, NULL, false },
    { "recipient_delimiter", WP_CONF_STRING, NULL, false },
    { "account_cache_seconds", WP_CONF_INT, NULL, false },
    { "userdb_timeout_ms", WP_CONF_INT, NULL, false },
    { "domains", WP_CONF_GROUPS, domain_schema, false },
    { NULL, 0, NULL, false },
};

static const struct wp_conf_schema log_schema[] = {
    { "level", WP_CONF_STRING, NULL, false },
    { "facility", WP_CONF_STRING, NULL, false },
    { NULL, 0, NULL, false },
};

static const struct wp_conf_schema top_schema[] = {
    { "log", WP_CONF_GROUP, log_schema, false },
    { "router", WP_CONF_GROUP, router_schema, true },
    { NULL, 0, NULL, false },
};

struct wp_snapshot *wp_snapshot_load(const char *path, struct wp_errors *err)
{
    config_t cfg;
    size_t before = err->count;
    if (!wp_conf_read(&cfg, path, err)) {
        config_destroy(&cfg);
        return NULL;
    }
    const config_setting_t *root = config_root_setting(&cfg);
    wp_conf_check(root, top_schema, path, err);

    struct wp_snapshot *s = wp_calloc(1, sizeof(*s));
    atomic_init(&s->refs, 1);
    s->path = wp_strdup(path);
    s->basedir = wp_dirname(path);

    const config_setting_t *log = config_setting_get_member(root, "log");
    const char *level = wp_conf_string(log, "level", WP_DEFAULT_LOG_LEVEL);
    if (!wp_log_level_parse(level, &s->log_level))
        wp_error(err, path, wp_conf_line(config_setting_get_member(log, "level")),
                 "log.level '%s' is not one of error, warning, notice, info, debug", level);
    const char *facility = wp_conf_string(log, "facility", WP_DEFAULT_LOG_FACILITY);
    if (!wp_log_facility_valid(facility))
        wp_error(err, path, wp_conf_line(config_setting_get_member(log, "facility")),
                 "log.facility '%s' is not a syslog facility (mail, daemon, local0..7)", facility);
    s->log_facility = wp_strdup(facility);

    if (err->count == before) {
        const config_setting_t *router = config_setting_get_member(root, "router");
        s->router = wp_router_load(router, path, s->basedir, err);
    }
    config_destroy(&cfg);
    if (err->count > before) {
        wp_snapshot_unref(s);
        return NULL;
    }
    return s;
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
    free(s->log_facility);
    free(s->basedir);
    free(s->path);
    free(s);
}
