/* SPDX-License-Identifier: MIT */
/*
 * settings.c - the `milter` group and the `rules` list.
 */
#include "config.h"

#include <string.h>

#include "milter/settings.h"

/* clang-format off */
#define C struct wp_milter_conf
const struct wp_conf_row wp_milter_rows[] = {
    /* unix: inet costs ~88 ms a message */
    WP_ROW_ENDPOINT("listen", C, listen, "unix:/run/waypost/milter.sock"),
    WP_ROW_MODE("socket_mode", C, socket_mode, "0660"),
    WP_ROW_STRING("socket_owner", C, socket_owner, ""),
    WP_ROW_STRING("socket_group", C, socket_group, ""),
    WP_ROW_STRING("user", C, user, ""),
    WP_ROW_STRING("pidfile", C, pidfile, ""),
    WP_ROW_STRING("store_address", C, store_address, "%a+%m@%d"), /* Store in ~account/mailbox */
    WP_ROW_STRING("reply_via", C, reply_via, "smtp:127.0.0.1:25"),
    WP_ROW_DURATION("timeout", C, timeout, "300", 1, 86400),
    WP_ROW_STRING("metrics", C, metrics, ""),
    WP_ROW_BOOL("metrics_allow_remote", C, metrics_allow_remote, "false"),
    WP_ROW_END,
};
#undef C

static const struct wp_conf_row rule_rows[] = {
    WP_ROW_OWN("name", WP_CONF_STRING, NULL, WP_CONF_REQUIRED, NULL),
    WP_ROW_OWN("priority", WP_CONF_SCALAR, "5", 0, NULL),
    WP_ROW_OWN("data", WP_CONF_LIST, NULL, 0, NULL),
    WP_ROW_OWN("action", WP_CONF_LIST, NULL, 0, NULL),
    WP_ROW_END,
};

static const struct wp_conf_row top_rows[] = {
    WP_ROW_OWN("rules", WP_CONF_GROUPS, NULL, 0, rule_rows),
    WP_ROW_END,
};
/* clang-format on */

static void milter_load(void *conf, const config_setting_t *g, const config_setting_t *root,
                        const struct wp_snapshot *s, struct wp_errors *err)
{
    (void)root;
    struct wp_milter_conf *m = conf;
    if (strncmp(m->reply_via, "smtp:", 5) != 0 && strncmp(m->reply_via, "sendmail:", 9) != 0)
        wp_error(err, s->path, wp_conf_member_line(g, "reply_via"),
                 "milter.reply_via must be smtp:HOST:PORT or sendmail:PATH");
    const char *why;
    if (m->metrics[0] && !wp_endpoint_parse(m->metrics, &m->metrics_ep, &why))
        wp_error(err, s->path, wp_conf_member_line(g, "metrics"), "milter.metrics '%s': %s", m->metrics, why);
    else if (m->metrics[0] && m->metrics_ep.family == WP_EP_UNIX)
        wp_error(err, s->path, wp_conf_member_line(g, "metrics"),
                 "milter.metrics '%s': the metrics endpoint is inet:HOST:PORT or inet6:[ADDRESS]:PORT",
                 m->metrics);
    else if (m->metrics[0] && !m->metrics_allow_remote && !wp_endpoint_is_loopback(m->metrics_ep.host))
        wp_error(err, s->path, wp_conf_member_line(g, "metrics"),
                 "milter.metrics '%s': not a loopback address (set milter.metrics_allow_remote = true to "
                 "allow it)",
                 m->metrics);
}

/* The rules resolve routes: they load once the Router is built. */
static void milter_link(void *conf, const config_setting_t *g, const config_setting_t *root,
                        const struct wp_snapshot *s, struct wp_errors *err)
{
    (void)g;
    struct wp_milter_conf *m = conf;
    m->rules_env.router = s->router;
    m->rules_env.store_address = m->store_address;
    const config_setting_t *list = config_setting_get_member(root, "rules");
    m->rules = wp_rules_load(list && config_setting_is_list(list) ? list : NULL, s->path, &m->rules_env, err);
}

static void milter_free(void *conf)
{
    struct wp_milter_conf *m = conf;
    wp_rules_free(m->rules);
    m->rules = NULL;
}

const struct wp_section wp_milter_section = {
    .name = "milter",
    .id = WP_SECTION_MILTER,
    .size = sizeof(struct wp_milter_conf),
    .rows = wp_milter_rows,
    .top = top_rows,
    .load = milter_load,
    .link = milter_link,
    .free = milter_free,
};

const struct wp_section *const wp_milter_sections[] = {&wp_milter_section, NULL};

const struct wp_milter_conf *wp_milter_conf(const struct wp_snapshot *s)
{
    return wp_snapshot_section(s, WP_SECTION_MILTER);
}
