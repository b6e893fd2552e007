/* SPDX-License-Identifier: MIT */
/*
 * settings.c - the `policyd` group: rows, listen entries, ETRN queues.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "lib/defaults.h"
#include "lib/util.h"
#include "policy/settings.h"

static const struct wp_conf_row etrn_queue_rows[] = {
    WP_ROW_OWN("queue", WP_CONF_STRING, NULL, WP_CONF_REQUIRED, NULL),
    WP_ROW_OWN("release", WP_CONF_STRING, NULL, 0, NULL),
    WP_ROW_OWN("accounts", WP_CONF_STRINGS, NULL, 0, NULL),
    WP_ROW_END,
};

/* clang-format off */
#define C struct wp_policyd_conf
const struct wp_conf_row wp_policyd_rows[] = {
    WP_ROW_OWN("listen", WP_CONF_STRINGS, NULL, 0, NULL),
    WP_ROW_MODE("socket_mode", C, socket_mode, "0660"), /* with group postfix (lib/daemon.h) */
    WP_ROW_STRING("socket_owner", C, socket_owner, ""),
    WP_ROW_STRING("socket_group", C, socket_group, ""),
    WP_ROW_STRING("user", C, user, ""),
    WP_ROW_STRING("pidfile", C, pidfile, ""),
    WP_ROW_INT("threads", C, threads, "0", 0, 256),
    WP_ROW_INT("max_connections", C, max_connections, "1024", 1, 1000000),
    /* Postfix's tcp client never hangs up; 10000: Postfix 3.12's socketmap query limit */
    WP_ROW_DURATION("idle_timeout", C, idle_timeout, "600", 1, 86400),
    WP_ROW_SIZE("max_request", C, max_request, "10000", 256, 1000000),
    WP_ROW_BOOL("io_uring", C, io_uring, "true"),
    WP_ROW_STRING("etrn_release", C, etrn_release, "trusted"),
    WP_ROW_OWN("etrn_queues", WP_CONF_GROUPS, NULL, 0, etrn_queue_rows),
    WP_ROW_DURATION("etrn_timeout", C, etrn.timeout, "10", 1, 600),
    WP_ROW_PATH("etrn_socket", C, etrn.socket, WP_ODMR_CONTROL_DEFAULT),
    WP_ROW_STRING("metrics", C, metrics, ""),
    WP_ROW_BOOL("metrics_allow_remote", C, metrics_allow_remote, "false"),
    WP_ROW_END,
};
#undef C
/* clang-format on */

static bool parse_listen(const char *text, struct wp_listen *l, const char **why)
{
    memset(l, 0, sizeof(*l));
    const char *rest;
    if (strncmp(text, "socketmap:", 10) == 0) {
        l->proto = WP_PROTO_SOCKETMAP;
        rest = text + 10;
    } else if (strncmp(text, "policy:", 7) == 0) {
        l->proto = WP_PROTO_POLICY;
        rest = text + 7;
    } else if (strncmp(text, "tcp:", 4) == 0) {
        l->proto = WP_PROTO_TCP;
        rest = text + 4;
    } else {
        *why = "must start with socketmap:, tcp: or policy:";
        return false;
    }
    char ep[512];
    if (!wp_strlcpy(ep, rest, sizeof(ep))) {
        *why = "too long";
        return false;
    }
    if (l->proto == WP_PROTO_TCP) {
        /* tcp_table carries no map name: the port decides (tcp:inet:H:P:MAP). */
        char *colon = strrchr(ep, ':');
        if (strncmp(ep, "inet", 4) != 0 || !colon || !wp_map_parse(colon + 1, strlen(colon + 1), &l->map)) {
            *why = "expected tcp:inet:HOST:PORT:MAP with MAP one of relay, recipient, virtual, transport, "
                   "account";
            return false;
        }
        *colon = '\0';
    }
    if (!wp_endpoint_parse(ep, &l->ep, why))
        return false;
    l->text = wp_strdup(text);
    return true;
}

static void policyd_load(void *conf, const config_setting_t *g, const config_setting_t *root,
                         const struct wp_snapshot *s, struct wp_errors *err)
{
    (void)root;
    struct wp_policyd_conf *p = conf;
    const char *path = s->path;
    const config_setting_t *list = g ? config_setting_get_member(g, "listen") : NULL;
    bool strings = list && (config_setting_is_array(list) || config_setting_is_list(list));
    size_t n = strings ? (size_t)config_setting_length(list) : 0;
    p->listen = wp_calloc(n + 1, sizeof(*p->listen));
    for (size_t i = 0; i < n; i++) {
        const char *why;
        const char *text = config_setting_get_string_elem(list, (unsigned)i);
        if (!text)
            continue; /* not a string: reported by the row check */
        if (!parse_listen(text, &p->listen[p->nlisten], &why))
            wp_error(err, wp_conf_file(list, path), wp_conf_line(list), "policyd.listen '%s': %s", text, why);
        else
            p->nlisten++;
    }
    if (strlen(p->etrn.socket) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        wp_error(err, path, wp_conf_member_line(g, "etrn_socket"), "policyd.etrn_socket '%s' is too long",
                 p->etrn.socket);
    const char *why;
    if (p->metrics[0] && !wp_endpoint_parse(p->metrics, &p->metrics_ep, &why))
        wp_error(err, path, wp_conf_member_line(g, "metrics"), "policyd.metrics '%s': %s", p->metrics, why);
    else if (p->metrics[0] && p->metrics_ep.family == WP_EP_UNIX)
        wp_error(err, path, wp_conf_member_line(g, "metrics"),
                 "policyd.metrics '%s': the metrics endpoint is inet:HOST:PORT or inet6:[ADDRESS]:PORT",
                 p->metrics);
    else if (p->metrics[0] && !p->metrics_allow_remote && !wp_endpoint_is_loopback(p->metrics_ep.host))
        wp_error(err, path, wp_conf_member_line(g, "metrics"),
                 "policyd.metrics '%s': not a loopback address (set policyd.metrics_allow_remote = true to "
                 "allow it)",
                 p->metrics);
}

static void policyd_link(void *conf, const config_setting_t *g, const config_setting_t *root,
                         const struct wp_snapshot *s, struct wp_errors *err)
{
    (void)root;
    struct wp_policyd_conf *p = conf;
    wp_etrn_conf_load(g, p->etrn_release, s->path, s->router, &p->etrn, err);
}

static void policyd_free(void *conf)
{
    struct wp_policyd_conf *p = conf;
    for (size_t i = 0; i < p->nlisten; i++)
        free(p->listen[i].text);
    free(p->listen);
    wp_etrn_conf_free(&p->etrn);
}

const struct wp_section wp_policyd_section = {
    .name = "policyd",
    .id = WP_SECTION_POLICYD,
    .size = sizeof(struct wp_policyd_conf),
    .rows = wp_policyd_rows,
    .load = policyd_load,
    .link = policyd_link,
    .free = policyd_free,
};

const struct wp_section *const wp_policyd_sections[] = {&wp_policyd_section, NULL};

const struct wp_policyd_conf *wp_policyd_conf(const struct wp_snapshot *s)
{
    return wp_snapshot_section(s, WP_SECTION_POLICYD);
}
