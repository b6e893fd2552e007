/* SPDX-License-Identifier: MIT */
/*
 * settings.c - the `odmr` group: rows and the checks beyond them.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "lib/defaults.h"
#include "lib/util.h"
#include "odmr/settings.h"
#include "odmr/spool.h"

static const struct wp_conf_row account_rows[] = {
    WP_ROW_OWN("user", WP_CONF_STRING, NULL, WP_CONF_REQUIRED, NULL),
    WP_ROW_OWN("queues", WP_CONF_STRINGS, NULL, WP_CONF_REQUIRED, NULL),
    WP_ROW_END,
};

#define DEFAULT_LISTEN "inet:*:366" /* RFC 2645's port "odmr" */

/* clang-format off */
#define C struct wp_odmr_conf
const struct wp_conf_row wp_odmr_rows[] = {
    WP_ROW_OWN("listen", WP_CONF_STRINGS, "[ \"" DEFAULT_LISTEN "\" ]", 0, NULL),
    WP_ROW_OWN("lmtp_listen", WP_CONF_STRING, "(from postfix.odmr_transport)", 0, NULL),
    WP_ROW_MODE("socket_mode", C, socket_mode, "0660"),
    WP_ROW_STRING("socket_owner", C, socket_owner, ""),
    WP_ROW_STRING("socket_group", C, socket_group, ""),
    WP_ROW_STRING("user", C, user, ""),
    WP_ROW_STRING("pidfile", C, pidfile, ""),
    WP_ROW_PATH("spool", C, spool, "/var/spool/waypost-odmr"),
    WP_ROW_PATH("passwd_file", C, passwd_file, ""),
    WP_ROW_PATH("tls_cert", C, tls_cert, ""),
    WP_ROW_PATH("tls_key", C, tls_key, ""),
    WP_ROW_STRING("hostname", C, hostname, ""),
    WP_ROW_OWN("accounts", WP_CONF_GROUPS, NULL, 0, account_rows),
    WP_ROW_INT("max_connections", C, max_connections, "256", 1, 100000),
    WP_ROW_INT("lmtp_max_connections", C, lmtp_max_connections, "100", 1, 100000), /* Postfix's default_process_limit */
    WP_ROW_INT("max_connections_per_ip", C, max_connections_per_ip, "10", 0, 100000),
    WP_ROW_DURATION("auth_timeout", C, auth_timeout, "60", 1, 86400), /* NOOP and RSET do not extend it */
    WP_ROW_DURATION("timeout", C, timeout, "300", 1, 86400), /* a command, a reply, or a stalled transfer */
    WP_ROW_SIZE("max_message_size", C, max_message_size, "50M", 1024, 2147483647),
    WP_ROW_DURATION("auth_failure_delay", C, auth_failure_delay, "2", 0, 60),
    WP_ROW_BOOL("auth_penalty", C, auth_penalty, "true"),
    WP_ROW_DURATION("expire", C, expire, "5d", 1, 3650 * 86400), /* Postfix's maximal_queue_lifetime */
    WP_ROW_STRING("dsn_via", C, dsn_via, "sendmail:/usr/sbin/sendmail"),
    WP_ROW_PATH("control_socket", C, control_socket, WP_ODMR_CONTROL_DEFAULT),
    WP_ROW_MODE("control_mode", C, control_mode, "0660"),
    WP_ROW_INT("smtp_port", C, smtp_port, "25", 1, 65535),
    WP_ROW_STRING("dns_servers", C, dns_servers, ""),
    WP_ROW_STRING("metrics", C, metrics, ""),
    WP_ROW_BOOL("metrics_allow_remote", C, metrics_allow_remote, "false"),
    WP_ROW_END,
};
#undef C
/* clang-format on */

/* The intake endpoint Postfix's transport answer points at: "lmtp:unix:PATH"
 * is unix:PATH (a relative PATH is under Postfix's queue directory, as for
 * Postfix), "lmtp:inet:HOST:PORT" is inet:HOST:PORT.  Malloc'ed. */
static char *lmtp_default(const struct wp_postfix_conf *pf)
{
    const char *t = pf->odmr_transport;
    if (strncmp(t, "lmtp:", 5) == 0)
        t += 5;
    if (strncmp(t, "unix:", 5) == 0 && t[5] && t[5] != '/')
        return wp_asprintf("unix:%s/%s", pf->queue_directory, t + 5);
    return wp_strdup(t);
}

static void odmr_load(void *conf, const config_setting_t *g, const config_setting_t *root,
                      const struct wp_snapshot *s, struct wp_errors *err)
{
    (void)root;
    struct wp_odmr_conf *o = conf;
    const char *path = s->path;
    const char *why;
    const config_setting_t *ls = g ? config_setting_get_member(g, "lmtp_listen") : NULL;
    o->lmtp_text = ls && config_setting_get_string(ls) ? wp_strdup(config_setting_get_string(ls))
                                                       : lmtp_default(&s->postfix);
    if (!wp_endpoint_parse(o->lmtp_text, &o->lmtp, &why))
        wp_error(err, path, wp_conf_member_line(g, "lmtp_listen"),
                 "odmr.lmtp_listen '%s' (from postfix.odmr_transport unless set): %s", o->lmtp_text, why);

    const config_setting_t *list = g ? config_setting_get_member(g, "listen") : NULL;
    if (list && !config_setting_is_array(list) && !config_setting_is_list(list))
        list = NULL; /* reported by the row check */
    size_t n = list ? (size_t)config_setting_length(list) : 1;
    o->listen = wp_calloc(n + 1, sizeof(*o->listen));
    for (size_t i = 0; i < n; i++) {
        const char *text = list ? config_setting_get_string_elem(list, (unsigned)i) : DEFAULT_LISTEN;
        if (!text)
            continue;
        struct wp_odmr_listen *l = &o->listen[o->nlisten];
        const char *ep = text;
        if (strncmp(ep, "tls:", 4) == 0) {
            l->tls = true;
            ep += 4;
        }
        if (!wp_endpoint_parse(ep, &l->ep, &why)) {
            wp_error(err, path, wp_conf_member_line(g, "listen"), "odmr.listen '%s': %s", text, why);
            continue;
        }
        l->text = wp_strdup(text);
        o->nlisten++;
    }
    if (!o->spool[0])
        wp_error(err, path, wp_conf_member_line(g, "spool"), "odmr.spool must name a directory");
    const char *mwhy;
    if (o->metrics[0] && !wp_endpoint_parse(o->metrics, &o->metrics_ep, &mwhy))
        wp_error(err, path, wp_conf_member_line(g, "metrics"), "odmr.metrics '%s': %s", o->metrics, mwhy);
    else if (o->metrics[0] && o->metrics_ep.family == WP_EP_UNIX)
        wp_error(err, path, wp_conf_member_line(g, "metrics"),
                 "odmr.metrics '%s': the metrics endpoint is inet:HOST:PORT or inet6:[ADDRESS]:PORT",
                 o->metrics);
    else if (o->metrics[0] && !o->metrics_allow_remote && !wp_endpoint_is_loopback(o->metrics_ep.host))
        wp_error(
            err, path, wp_conf_member_line(g, "metrics"),
            "odmr.metrics '%s': not a loopback address (set odmr.metrics_allow_remote = true to allow it)",
            o->metrics);
    if (!o->tls_cert[0] != !o->tls_key[0])
        wp_error(err, path, wp_conf_member_line(g, o->tls_cert[0] ? "tls_cert" : "tls_key"),
                 "odmr.tls_cert and odmr.tls_key go together");
    for (size_t i = 0; i < o->nlisten; i++)
        if (o->listen[i].tls && !o->tls_cert[0])
            wp_error(err, path, wp_conf_member_line(g, "listen"),
                     "odmr.listen '%s' needs odmr.tls_cert and odmr.tls_key", o->listen[i].text);
    for (const char *h = o->hostname; *h; h++)
        if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') || *h == '.' ||
              *h == '-')) {
            wp_error(err, path, wp_conf_member_line(g, "hostname"), "odmr.hostname '%s' is not a host name",
                     o->hostname);
            break;
        }

    const config_setting_t *accts = g ? config_setting_get_member(g, "accounts") : NULL;
    if (accts && !config_setting_is_list(accts))
        accts = NULL;
    size_t na = accts ? (size_t)config_setting_length(accts) : 0;
    o->accounts = wp_calloc(na + 1, sizeof(*o->accounts));
    for (size_t i = 0; i < na; i++) {
        const config_setting_t *a = config_setting_get_elem(accts, (unsigned)i);
        if (!config_setting_is_group(a))
            continue;
        const config_setting_t *q = config_setting_get_member(a, "queues");
        if (q && !config_setting_is_array(q) && !config_setting_is_list(q))
            q = NULL;
        struct wp_odmr_account *acc = &o->accounts[o->naccounts++];
        acc->user = wp_strdup(wp_conf_string(a, "user", ""));
        size_t nq = q ? (size_t)config_setting_length(q) : 0;
        acc->queues = wp_calloc(nq + 1, sizeof(char *));
        for (size_t k = 0; k < nq; k++) {
            const char *qt = config_setting_get_string_elem(q, (unsigned)k);
            if (!qt)
                continue;
            char *name = wp_strdup(qt);
            wp_str_lower(name);
            if (!wp_spool_queue_name_valid(name))
                wp_error(err, wp_conf_file(q, path), wp_conf_line(q),
                         "odmr.accounts: '%s' is not a queue name", name);
            acc->queues[acc->nqueues++] = name;
        }
        if (!acc->user[0] || strchr(acc->user, ':'))
            wp_error(err, wp_conf_file(a, path), wp_conf_line(a), "odmr.accounts: bad user name '%s'",
                     acc->user);
        for (size_t k = 0; k + 1 < o->naccounts; k++)
            if (strcmp(o->accounts[k].user, acc->user) == 0)
                wp_error(err, wp_conf_file(a, path), wp_conf_line(a), "odmr.accounts: user '%s' listed twice",
                         acc->user);
    }
    if (strlen(o->control_socket) >= sizeof(((struct wp_endpoint *)0)->path))
        wp_error(err, path, wp_conf_member_line(g, "control_socket"), "odmr.control_socket '%s' is too long",
                 o->control_socket);
    if (strncmp(o->dsn_via, "smtp:", 5) != 0 && strncmp(o->dsn_via, "sendmail:", 9) != 0)
        wp_error(err, path, wp_conf_member_line(g, "dsn_via"),
                 "odmr.dsn_via must be smtp:HOST:PORT or sendmail:PATH");
}

static void odmr_free(void *conf)
{
    struct wp_odmr_conf *o = conf;
    free(o->lmtp_text);
    for (size_t i = 0; i < o->nlisten; i++)
        free(o->listen[i].text);
    free(o->listen);
    for (size_t i = 0; i < o->naccounts; i++) {
        free(o->accounts[i].user);
        for (size_t k = 0; k < o->accounts[i].nqueues; k++)
            free(o->accounts[i].queues[k]);
        free(o->accounts[i].queues);
    }
    free(o->accounts);
}

const struct wp_section wp_odmr_section = {
    .name = "odmr",
    .id = WP_SECTION_ODMR,
    .size = sizeof(struct wp_odmr_conf),
    .rows = wp_odmr_rows,
    .load = odmr_load,
    .free = odmr_free,
};

const struct wp_section *const wp_odmr_sections[] = {&wp_odmr_section, NULL};

const struct wp_odmr_conf *wp_odmr_conf(const struct wp_snapshot *s)
{
    return wp_snapshot_section(s, WP_SECTION_ODMR);
}

const struct wp_odmr_account *wp_odmr_account_find(const struct wp_snapshot *s, const char *user)
{
    const struct wp_odmr_conf *o = wp_odmr_conf(s);
    for (size_t i = 0; o && i < o->naccounts; i++)
        if (strcmp(o->accounts[i].user, user) == 0)
            return &o->accounts[i];
    return NULL;
}
