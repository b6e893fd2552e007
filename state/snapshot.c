/* SPDX-License-Identifier: MIT */
/*
 * snapshot.c - load waypost.conf into a refcounted snapshot.
 */
#include "config.h"

#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/conf.h"
#include "state/snapshot.h"

#include "policy/maps.h"

#include "imap/dovecot.h"
#include "odmr/spool.h"
#include "lib/util.h"

static const struct wp_conf_schema domain_schema[] = {
    { "name", WP_CONF_STRING, NULL, true },
    { "aliases", WP_CONF_STRINGS, NULL, false },
    { "accounts", WP_CONF_STRING, NULL, false },
    { "mail_to_unknown", WP_CONF_STRING, NULL, false },
    { NULL, 0, NULL, false },
};

static const struct wp_conf_schema unified_schema[] = {
    { "domain", WP_CONF_STRING, NULL, true },
    { "account", WP_CONF_STRING, NULL, true },
    { "header", WP_CONF_STRING, NULL, false },
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
    { "unified_accounts", WP_CONF_GROUPS, unified_schema, false },
    { NULL, 0, NULL, false },
};

static const struct wp_conf_schema log_schema[] = {
    { "level", WP_CONF_STRING, NULL, false },
    { "facility", WP_CONF_STRING, NULL, false },
    { NULL, 0, NULL, false },
};

static const struct wp_conf_schema etrn_queue_schema[] = {
    { "queue", WP_CONF_STRING, NULL, true },
    { "release", WP_CONF_STRING, NULL, false },
    { "accounts", WP_CONF_STRINGS, NULL, false },
    { NULL, 0, NULL, false },
};

static const struct wp_conf_schema policyd_schema[] = {
    { "listen", WP_CONF_STRINGS, NULL, false },
    { "socket_mode", WP_CONF_STRING, NULL, false },
    { "socket_owner", WP_CONF_STRING, NULL, false },
    { "socket_group", WP_CONF_STRING, NULL, false },
    { "user", WP_CONF_STRING, NULL, false },
    { "pidfile", WP_CONF_STRING, NULL, false },
    { "threads", WP_CONF_INT, NULL, false },
    { "max_connections", WP_CONF_INT, NULL, false },
    { "idle_timeout", WP_CONF_INT, NULL, false },
    { "max_request", WP_CONF_INT, NULL, false },
    { "io_uring", WP_CONF_BOOL, NULL, false },
    { "etrn_release", WP_CONF_STRING, NULL, false },
    { "etrn_queues", WP_CONF_GROUPS, etrn_queue_schema, false },
    { "etrn_timeout", WP_CONF_INT, NULL, false },
    { "postqueue", WP_CONF_STRING, NULL, false },
    { NULL, 0, NULL, false },
};

static const struct wp_conf_schema postfix_schema[] = {
    { "queue_directory", WP_CONF_STRING, NULL, false },
    { "config_directory", WP_CONF_STRING, NULL, false },
    { "local_transport", WP_CONF_STRING, NULL, false },
    { "relay_transport", WP_CONF_STRING, NULL, false },
    { "hold_transport", WP_CONF_STRING, NULL, false },
    { "odmr_transport", WP_CONF_STRING, NULL, false },
    { "chroot", WP_CONF_BOOL, NULL, false },
    { NULL, 0, NULL, false },
};

static const struct wp_conf_schema milter_schema[] = {
    { "listen", WP_CONF_STRING, NULL, false },
    { "socket_mode", WP_CONF_STRING, NULL, false },
    { "socket_owner", WP_CONF_STRING, NULL, false },
    { "socket_group", WP_CONF_STRING, NULL, false },
    { "user", WP_CONF_STRING, NULL, false },
    { "pidfile", WP_CONF_STRING, NULL, false },
    { "store_address", WP_CONF_STRING, NULL, false },
    { "reply_via", WP_CONF_STRING, NULL, false },
    { "timeout", WP_CONF_INT, NULL, false },
    { NULL, 0, NULL, false },
};

static const struct wp_conf_schema odmr_account_schema[] = {
    { "user", WP_CONF_STRING, NULL, true },
    { "queues", WP_CONF_STRINGS, NULL, true },
    { NULL, 0, NULL, false },
};

static const struct wp_conf_schema odmr_schema[] = {
    { "listen", WP_CONF_STRINGS, NULL, false },
    { "lmtp_listen", WP_CONF_STRING, NULL, false },
    { "socket_mode", WP_CONF_STRING, NULL, false },
    { "socket_owner", WP_CONF_STRING, NULL, false },
    { "socket_group", WP_CONF_STRING, NULL, false },
    { "user", WP_CONF_STRING, NULL, false },
    { "pidfile", WP_CONF_STRING, NULL, false },
    { "spool", WP_CONF_STRING, NULL, false },
    { "passwd_file", WP_CONF_STRING, NULL, false },
    { "tls_cert", WP_CONF_STRING, NULL, false },
    { "tls_key", WP_CONF_STRING, NULL, false },
    { "hostname", WP_CONF_STRING, NULL, false },
    { "accounts", WP_CONF_GROUPS, odmr_account_schema, false },
    { "max_connections", WP_CONF_INT, NULL, false },
    { "timeout", WP_CONF_INT, NULL, false },
    { "max_message_size", WP_CONF_INT, NULL, false },
    { "auth_failure_delay", WP_CONF_INT, NULL, false },
    { "expire", WP_CONF_SCALAR, NULL, false },
    { "dsn_via", WP_CONF_STRING, NULL, false },
    { NULL, 0, NULL, false },
};

static const struct wp_conf_schema rule_schema[] = {
    { "name", WP_CONF_STRING, NULL, true },
    { "priority", WP_CONF_SCALAR, NULL, false },
    { "data", WP_CONF_LIST, NULL, false },
    { "action", WP_CONF_LIST, NULL, false },
    { NULL, 0, NULL, false },
};

static const struct wp_conf_schema top_schema[] = {
    { "milter", WP_CONF_GROUP, milter_schema, false },
    { "odmr", WP_CONF_GROUP, odmr_schema, false },
    { "rules", WP_CONF_GROUPS, rule_schema, false },
    { "log", WP_CONF_GROUP, log_schema, false },
    { "policyd", WP_CONF_GROUP, policyd_schema, false },
    { "postfix", WP_CONF_GROUP, postfix_schema, false },
    { "router", WP_CONF_GROUP, router_schema, true },
    { "imap", WP_CONF_GROUP, wp_imap_schema, false },
    { NULL, 0, NULL, false },
};

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
        enum wp_map m;
        if (strncmp(ep, "inet", 4) != 0 || !colon || !wp_map_parse(colon + 1, strlen(colon + 1), &m)) {
            *why = "expected tcp:inet:HOST:PORT:MAP with MAP one of relay, recipient, virtual, transport, account";
            return false;
        }
        l->map = m;
        *colon = '\0';
    }
    if (!wp_endpoint_parse(ep, &l->ep, why))
        return false;
    l->text = wp_strdup(text);
    return true;
}

static char *conf_strdup(const config_setting_t *g, const char *name, const char *def)
{
    return wp_strdup(wp_conf_string(g, name, def));
}

static int setting_line(const config_setting_t *g, const char *name)
{
    const config_setting_t *s = g ? config_setting_get_member(g, name) : NULL;
    return s ? wp_conf_line(s) : (g ? wp_conf_line(g) : 0);
}

static void load_policyd(const config_setting_t *g, const char *path, struct wp_policyd_conf *p,
                         struct wp_errors *err)
{
    const config_setting_t *list = g ? config_setting_get_member(g, "listen") : NULL;
    size_t n = list ? (size_t)config_setting_length(list) : 0;
    p->listen = wp_calloc(n + 1, sizeof(*p->listen));
    for (size_t i = 0; i < n; i++) {
        const char *why;
        const char *text = config_setting_get_string_elem(list, (unsigned)i);
        if (!parse_listen(text, &p->listen[p->nlisten], &why))
            wp_error(err, wp_conf_file(list, path), wp_conf_line(list), "policyd.listen '%s': %s", text, why);
        else
            p->nlisten++;
    }
    const char *mode = wp_conf_string(g, "socket_mode", WP_DEFAULT_SOCKET_MODE);
    char *end;
    long m = strtol(mode, &end, 8);
    if (!*mode || *end || m < 0 || m > 0777)
        wp_error(err, path, setting_line(g, "socket_mode"), "policyd.socket_mode '%s' is not an octal mode", mode);
    p->socket_mode = (int)m;
    p->socket_owner = conf_strdup(g, "socket_owner", "");
    p->socket_group = conf_strdup(g, "socket_group", "");
    p->user = conf_strdup(g, "user", "");
    p->pidfile = conf_strdup(g, "pidfile", "");
    p->threads = wp_conf_int(g, "threads", 0);
    p->max_connections = wp_conf_int(g, "max_connections", WP_DEFAULT_MAX_CONNECTIONS);
    p->idle_timeout = wp_conf_int(g, "idle_timeout", WP_DEFAULT_IDLE_TIMEOUT);
    p->max_request = wp_conf_int(g, "max_request", WP_DEFAULT_MAX_REQUEST);
    p->io_uring = wp_conf_bool(g, "io_uring", true);
    if (p->threads < 0 || p->threads > 256)
        wp_error(err, path, setting_line(g, "threads"), "policyd.threads must be 0 (one per core) .. 256");
    if (p->max_connections < 1 || p->max_connections > 1000000)
        wp_error(err, path, setting_line(g, "max_connections"), "policyd.max_connections must be 1 .. 1000000");
    if (p->idle_timeout < 1 || p->idle_timeout > 86400)
        wp_error(err, path, setting_line(g, "idle_timeout"), "policyd.idle_timeout must be 1 .. 86400 seconds");
    if (p->max_request < 256 || p->max_request > 1000000)
        wp_error(err, path, setting_line(g, "max_request"), "policyd.max_request must be 256 .. 1000000 bytes");
}

static void load_milter(const config_setting_t *g, const char *path, struct wp_milter_conf *m,
                        struct wp_errors *err)
{
    const char *listen = wp_conf_string(g, "listen", WP_DEFAULT_MILTER_LISTEN);
    const char *why;
    if (!wp_endpoint_parse(listen, &m->listen, &why))
        wp_error(err, path, setting_line(g, "listen"), "milter.listen '%s': %s", listen, why);
    const char *mode = wp_conf_string(g, "socket_mode", WP_DEFAULT_SOCKET_MODE);
    char *end;
    long v = strtol(mode, &end, 8);
    if (!*mode || *end || v < 0 || v > 0777)
        wp_error(err, path, setting_line(g, "socket_mode"), "milter.socket_mode '%s' is not an octal mode", mode);
    m->socket_mode = (int)v;
    m->socket_owner = conf_strdup(g, "socket_owner", "");
    m->socket_group = conf_strdup(g, "socket_group", "");
    m->user = conf_strdup(g, "user", "");
    m->pidfile = conf_strdup(g, "pidfile", "");
    m->store_address = conf_strdup(g, "store_address", WP_DEFAULT_STORE_ADDRESS);
    m->reply_via = conf_strdup(g, "reply_via", WP_DEFAULT_REPLY_VIA);
    m->timeout = wp_conf_int(g, "timeout", WP_DEFAULT_MILTER_TIMEOUT);
    if (strncmp(m->reply_via, "smtp:", 5) != 0 && strncmp(m->reply_via, "sendmail:", 9) != 0)
        wp_error(err, path, setting_line(g, "reply_via"), "milter.reply_via must be smtp:HOST:PORT or sendmail:PATH");
    if (m->timeout < 1 || m->timeout > 86400)
        wp_error(err, path, setting_line(g, "timeout"), "milter.timeout must be 1 .. 86400 seconds");
}

static void load_postfix(const config_setting_t *g, struct wp_postfix_conf *p)
{
    p->queue_directory = conf_strdup(g, "queue_directory", WP_DEFAULT_QUEUE_DIRECTORY);
    p->config_directory = conf_strdup(g, "config_directory", WP_DEFAULT_CONFIG_DIRECTORY);
    p->local_transport = conf_strdup(g, "local_transport", WP_DEFAULT_LOCAL_TRANSPORT);
    p->relay_transport = conf_strdup(g, "relay_transport", WP_DEFAULT_RELAY_TRANSPORT);
    p->hold_transport = conf_strdup(g, "hold_transport", WP_DEFAULT_HOLD_TRANSPORT);
    p->odmr_transport = conf_strdup(g, "odmr_transport", WP_DEFAULT_ODMR_TRANSPORT);
    p->chroot = wp_conf_bool(g, "chroot", false);
}

bool wp_duration_parse(const char *text, int *seconds)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (end == text || v < 0)
        return false;
    long unit = 1;
    if (*end) {
        switch (*end) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        case 'w': unit = 7 * 86400; break;
        default: return false;
        }
        if (end[1])
            return false;
    }
    if (v > 100L * 365 * 86400 / unit)
        return false;
    *seconds = (int)(v * unit);
    return true;
}

const struct wp_odmr_account *wp_odmr_account_find(const struct wp_snapshot *s, const char *user)
{
    for (size_t i = 0; i < s->odmr.naccounts; i++)
        if (strcmp(s->odmr.accounts[i].user, user) == 0)
            return &s->odmr.accounts[i];
    return NULL;
}

/* An absolute path (relative ones start at the config file's directory), or "". */
static char *conf_path(const config_setting_t *g, const char *name, const char *def, const char *basedir)
{
    const char *v = wp_conf_string(g, name, def);
    return *v ? wp_path_relative_to(basedir, v) : wp_strdup("");
}

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

static void load_odmr(const config_setting_t *g, const char *path, const char *basedir,
                      const struct wp_postfix_conf *pf, struct wp_odmr_conf *o, struct wp_errors *err)
{
    const char *why;
    char *derived = lmtp_default(pf);
    const char *lmtp = wp_conf_string(g, "lmtp_listen", derived);
    o->lmtp_text = wp_strdup(lmtp);
    free(derived);
    lmtp = o->lmtp_text;
    if (!wp_endpoint_parse(lmtp, &o->lmtp, &why))
        wp_error(err, path, setting_line(g, "lmtp_listen"),
                 "odmr.lmtp_listen '%s' (from postfix.odmr_transport unless set): %s", lmtp, why);

    const config_setting_t *list = g ? config_setting_get_member(g, "listen") : NULL;
    size_t n = list ? (size_t)config_setting_length(list) : 1;
    o->listen = wp_calloc(n + 1, sizeof(*o->listen));
    for (size_t i = 0; i < n; i++) {
        const char *text = list ? config_setting_get_string_elem(list, (unsigned)i) : WP_DEFAULT_ODMR_LISTEN;
        struct wp_odmr_listen *l = &o->listen[o->nlisten];
        const char *ep = text;
        if (strncmp(ep, "tls:", 4) == 0) {
            l->tls = true;
            ep += 4;
        }
        if (!wp_endpoint_parse(ep, &l->ep, &why)) {
            wp_error(err, path, setting_line(g, "listen"), "odmr.listen '%s': %s", text, why);
            continue;
        }
        l->text = wp_strdup(text);
        o->nlisten++;
    }
    const char *mode = wp_conf_string(g, "socket_mode", WP_DEFAULT_SOCKET_MODE);
    char *end;
    long m = strtol(mode, &end, 8);
    if (!*mode || *end || m < 0 || m > 0777)
        wp_error(err, path, setting_line(g, "socket_mode"), "odmr.socket_mode '%s' is not an octal mode", mode);
    o->socket_mode = (int)m;
    o->socket_owner = conf_strdup(g, "socket_owner", "");
    o->socket_group = conf_strdup(g, "socket_group", "");
    o->user = conf_strdup(g, "user", "");
    o->pidfile = conf_strdup(g, "pidfile", "");
    o->spool = conf_path(g, "spool", WP_DEFAULT_ODMR_SPOOL, basedir);
    o->passwd_file = conf_path(g, "passwd_file", "", basedir);
    o->tls_cert = conf_path(g, "tls_cert", "", basedir);
    o->tls_key = conf_path(g, "tls_key", "", basedir);
    o->hostname = conf_strdup(g, "hostname", "");
    if (!o->spool[0])
        wp_error(err, path, setting_line(g, "spool"), "odmr.spool must name a directory");
    if (!o->tls_cert[0] != !o->tls_key[0])
        wp_error(err, path, setting_line(g, o->tls_cert[0] ? "tls_cert" : "tls_key"),
                 "odmr.tls_cert and odmr.tls_key go together");
    for (size_t i = 0; i < o->nlisten; i++)
        if (o->listen[i].tls && !o->tls_cert[0])
            wp_error(err, path, setting_line(g, "listen"), "odmr.listen '%s' needs odmr.tls_cert and odmr.tls_key",
                     o->listen[i].text);
    for (const char *h = o->hostname; *h; h++)
        if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') || *h == '.' ||
              *h == '-')) {
            wp_error(err, path, setting_line(g, "hostname"), "odmr.hostname '%s' is not a host name", o->hostname);
            break;
        }

    const config_setting_t *accts = g ? config_setting_get_member(g, "accounts") : NULL;
    size_t na = accts ? (size_t)config_setting_length(accts) : 0;
    o->accounts = wp_calloc(na + 1, sizeof(*o->accounts));
    for (size_t i = 0; i < na; i++) {
        const config_setting_t *a = config_setting_get_elem(accts, (unsigned)i);
        const config_setting_t *q = config_setting_get_member(a, "queues");
        struct wp_odmr_account *acc = &o->accounts[o->naccounts++];
        acc->user = conf_strdup(a, "user", "");
        size_t nq = q ? (size_t)config_setting_length(q) : 0;
        acc->queues = wp_calloc(nq + 1, sizeof(char *));
        for (size_t k = 0; k < nq; k++) {
            char *name = wp_strdup(config_setting_get_string_elem(q, (unsigned)k));
            wp_str_lower(name);
            if (!wp_spool_queue_name_valid(name))
                wp_error(err, wp_conf_file(q, path), wp_conf_line(q), "odmr.accounts: '%s' is not a queue name", name);
            acc->queues[acc->nqueues++] = name;
        }
        if (!acc->user[0] || strchr(acc->user, ':'))
            wp_error(err, wp_conf_file(a, path), wp_conf_line(a), "odmr.accounts: bad user name '%s'", acc->user);
        for (size_t k = 0; k < i; k++)
            if (strcmp(o->accounts[k].user, acc->user) == 0)
                wp_error(err, wp_conf_file(a, path), wp_conf_line(a), "odmr.accounts: user '%s' listed twice",
                         acc->user);
    }

    o->max_connections = wp_conf_int(g, "max_connections", WP_DEFAULT_ODMR_MAX_CONNECTIONS);
    o->timeout = wp_conf_int(g, "timeout", WP_DEFAULT_ODMR_TIMEOUT);
    o->max_message_size = wp_conf_int(g, "max_message_size", WP_DEFAULT_ODMR_MAX_MESSAGE);
    o->auth_failure_delay = wp_conf_int(g, "auth_failure_delay", WP_DEFAULT_ODMR_AUTH_DELAY);
    o->dsn_via = conf_strdup(g, "dsn_via", WP_DEFAULT_ODMR_DSN_VIA);
    const config_setting_t *ex = g ? config_setting_get_member(g, "expire") : NULL;
    char extext[32];
    if (ex && config_setting_type(ex) == CONFIG_TYPE_INT64)
        snprintf(extext, sizeof(extext), "%lld", config_setting_get_int64(ex));
    else if (ex && config_setting_type(ex) == CONFIG_TYPE_INT)
        snprintf(extext, sizeof(extext), "%d", config_setting_get_int(ex));
    else
        wp_strlcpy(extext, ex ? config_setting_get_string(ex) : WP_DEFAULT_ODMR_EXPIRE, sizeof(extext));
    if (!wp_duration_parse(extext, &o->expire) || o->expire < 1)
        wp_error(err, path, setting_line(g, "expire"),
                 "odmr.expire '%s' must be a duration: seconds, or a number with s, m, h, d or w", extext);
    if (o->max_connections < 1 || o->max_connections > 100000)
        wp_error(err, path, setting_line(g, "max_connections"), "odmr.max_connections must be 1 .. 100000");
    if (o->timeout < 1 || o->timeout > 86400)
        wp_error(err, path, setting_line(g, "timeout"), "odmr.timeout must be 1 .. 86400 seconds");
    if (o->max_message_size < 1024)
        wp_error(err, path, setting_line(g, "max_message_size"), "odmr.max_message_size must be at least 1024 bytes");
    if (o->auth_failure_delay < 0 || o->auth_failure_delay > 60)
        wp_error(err, path, setting_line(g, "auth_failure_delay"), "odmr.auth_failure_delay must be 0 .. 60 seconds");
    if (strncmp(o->dsn_via, "smtp:", 5) != 0 && strncmp(o->dsn_via, "sendmail:", 9) != 0)
        wp_error(err, path, setting_line(g, "dsn_via"), "odmr.dsn_via must be smtp:HOST:PORT or sendmail:PATH");
}

static void free_odmr(struct wp_odmr_conf *o)
{
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
    free(o->socket_owner);
    free(o->socket_group);
    free(o->user);
    free(o->pidfile);
    free(o->spool);
    free(o->passwd_file);
    free(o->tls_cert);
    free(o->tls_key);
    free(o->hostname);
    free(o->dsn_via);
}

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
    load_policyd(config_setting_get_member(root, "policyd"), path, &s->policyd, err);
    load_postfix(config_setting_get_member(root, "postfix"), &s->postfix);
    load_milter(config_setting_get_member(root, "milter"), path, &s->milter, err);
    const config_setting_t *imap = config_setting_get_member(root, "imap");
    wp_imap_conf_load(imap, path, s->basedir, &s->imap, err);
    load_odmr(config_setting_get_member(root, "odmr"), path, s->basedir, &s->postfix, &s->odmr, err);

    if (err->count == before) {
        const config_setting_t *router = config_setting_get_member(root, "router");
        s->router = wp_router_load(router, path, s->basedir, err);
    }
    if (err->count == before)
        wp_etrn_conf_load(config_setting_get_member(root, "policyd"), path, s->router, &s->policyd.etrn, err);
    if (err->count == before) {
        s->rules_env.router = s->router;
        s->rules_env.store_address = s->milter.store_address;
        s->rules = wp_rules_load(config_setting_get_member(root, "rules"), path, &s->rules_env, err);
        wp_imap_conf_check(&s->imap, s->router, imap, path, err);
    }
    config_destroy(&cfg);
    if (err->count > before) {
        wp_snapshot_unref(s);
        return NULL;
    }
    return s;
}

struct wp_snapshot *wp_snapshot_load_startup(const char *path, char **abs)
{
    char *real = realpath(path, NULL);
    *abs = real ? real : wp_strdup(path);
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_snapshot *s = wp_snapshot_load(*abs, &err);
    for (size_t i = 0; i < err.nwarn; i++)
        fprintf(stderr, "%s (warning)\n", err.warns[i]);
    for (size_t i = 0; i < err.count; i++)
        fprintf(stderr, "%s\n", err.msgs[i]);
    wp_errors_free(&err);
    return s;
}

struct wp_snapshot *wp_snapshot_reload(const char *path)
{
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_snapshot *s = wp_snapshot_load(path, &err);
    for (size_t i = 0; i < err.nwarn; i++)
        wp_warn("%s", err.warns[i]);
    for (size_t i = 0; i < err.count; i++)
        wp_err("%s", err.msgs[i]);
    if (!s)
        wp_err("reload failed: keeping the configuration loaded before");
    wp_errors_free(&err);
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
    wp_imap_conf_free(&s->imap);
    for (size_t i = 0; i < s->policyd.nlisten; i++)
        free(s->policyd.listen[i].text);
    free(s->policyd.listen);
    free(s->policyd.socket_owner);
    free(s->policyd.socket_group);
    free(s->policyd.user);
    free(s->policyd.pidfile);
    wp_etrn_conf_free(&s->policyd.etrn);
    struct wp_postfix_conf *pf = &s->postfix;
    free(pf->queue_directory);
    free(pf->config_directory);
    free(pf->local_transport);
    free(pf->relay_transport);
    free(pf->hold_transport);
    free(pf->odmr_transport);
    wp_rules_free(s->rules);
    free(s->milter.socket_owner);
    free(s->milter.socket_group);
    free(s->milter.user);
    free(s->milter.pidfile);
    free(s->milter.store_address);
    free(s->milter.reply_via);
    free_odmr(&s->odmr);
    free(s->log_facility);
    free(s->basedir);
    free(s->path);
    free(s);
}
