/* SPDX-License-Identifier: MIT */
/*
 * settings.c - the `imap` group: rows, the checks beyond them, and the
 * post-login helper's read of this group alone.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "imap/dovecot.h"
#include "imap/settings.h"
#include "lib/address.h"
#include "lib/util.h"
#include "router/router.h"

#ifndef WP_LIBEXECDIR
#define WP_LIBEXECDIR "/usr/local/libexec/waypost"
#endif

/* clang-format off */
static const struct wp_conf_row alias_rows[] = {
    WP_ROW_OWN("name", WP_CONF_STRING, NULL, WP_CONF_REQUIRED, NULL),
    WP_ROW_OWN("target", WP_CONF_STRING, NULL, WP_CONF_REQUIRED, NULL),
    WP_ROW_END,
};

static const struct wp_conf_row template_rows[] = {
    WP_ROW_OWN("subscriptions", WP_CONF_STRINGS, NULL, 0, NULL),
    WP_ROW_OWN("aliases", WP_CONF_GROUPS, NULL, 0, alias_rows),
    WP_ROW_END,
};

#define C struct wp_imap_conf
const struct wp_conf_row wp_imap_rows[] = {
    WP_ROW_STRING("dovecot_version", C, dovecot_version_text, "auto"),
    WP_ROW_STRING("mail_location", C, mail_location, "maildir:~/Maildir"),
    WP_ROW_STRING("alias_prefix", C, alias_prefix, "Aliases/"), /* cannot be "" next to INBOX's namespace */
    WP_ROW_PATH("acl_file", C, acl_file, "/etc/dovecot/waypost-global.acl"),
    WP_ROW_STRING("shared_dict", C, shared_dict, "file:/var/lib/dovecot/waypost/shared-mailboxes.db"),
    WP_ROW_PATH("login_helper", C, login_helper, WP_LIBEXECDIR "/waypost-imap-login"),
    WP_ROW_BOOL("lmtp_autocreate", C, lmtp_autocreate, "false"),
    WP_ROW_STRINGS("server_admins", C, server_admins),
    WP_ROW_STRINGS("domain_admins", C, domain_admins),
    WP_ROW_OWN("template", WP_CONF_GROUP, NULL, 0, template_rows),
    WP_ROW_END,
};
#undef C
/* clang-format on */

static size_t count(char **v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

static char **load_strings(const config_setting_t *g, const char *name, size_t *n)
{
    const config_setting_t *list = g ? config_setting_get_member(g, name) : NULL;
    if (list && !config_setting_is_array(list) && !config_setting_is_list(list))
        list = NULL; /* reported by the row check */
    *n = list ? (size_t)config_setting_length(list) : 0;
    char **v = wp_calloc(*n + 1, sizeof(*v));
    for (size_t i = 0; i < *n; i++) {
        const char *s = config_setting_get_string_elem(list, (unsigned)i);
        v[i] = wp_strdup(s ? s : "");
    }
    return v;
}

/* Checks beyond the rows, and the template. */
static void imap_load_group(struct wp_imap_conf *c, const config_setting_t *g, const char *path,
                            struct wp_errors *err)
{
    const char *dv = c->dovecot_version_text;
    if (strcmp(dv, "auto") != 0 && !(c->dovecot_version = wp_dovecot_version_parse(dv, true)))
        wp_error(err, path, wp_conf_member_line(g, "dovecot_version"),
                 "imap.dovecot_version '%s' must be \"2.3\", \"2.4\" or \"auto\"", dv);
    c->nserver_admins = count(c->server_admins);
    c->ndomain_admins = count(c->domain_admins);
    char *root = wp_imap_mail_root(c, "/");
    if (!root)
        wp_error(err, path, wp_conf_member_line(g, "mail_location"),
                 "imap.mail_location '%s' must be TYPE:~/PATH[:PARAMS] or TYPE:%%h/PATH[:PARAMS] "
                 "without CONTROL= or SUBSCRIPTIONS= (e.g. maildir:~/Maildir)",
                 c->mail_location);
    free(root);
    size_t plen = strlen(c->alias_prefix);
    char *top = wp_strndup(c->alias_prefix, plen ? plen - 1 : 0); /* without the "/" */
    bool prefix_ok = plen >= 2 && c->alias_prefix[plen - 1] == '/' && wp_imap_name_valid(top) &&
                     !strchr(top, '/') && top[0] != '~' && top[0] != '.' && !wp_strieq(top, "INBOX");
    free(top);
    if (!prefix_ok)
        wp_error(err, path, wp_conf_member_line(g, "alias_prefix"),
                 "imap.alias_prefix '%s' must be one mailbox name ending with '/' (e.g. \"Aliases/\")",
                 c->alias_prefix);
    if (strpbrk(c->shared_dict, "\n\r") || strpbrk(c->acl_file, "\n\r ") || strpbrk(c->login_helper, "\n\r "))
        wp_error(err, path, wp_conf_member_line(g, "shared_dict"),
                 "imap: file names must not contain spaces or line breaks");

    const config_setting_t *t = g ? config_setting_get_member(g, "template") : NULL;
    if (t && !config_setting_is_group(t))
        t = NULL;
    c->subscriptions = load_strings(t, "subscriptions", &c->nsubscriptions);
    for (size_t i = 0; i < c->nsubscriptions; i++)
        if (!wp_imap_name_valid(c->subscriptions[i]))
            wp_error(err, path, wp_conf_member_line(t, "subscriptions"),
                     "imap.template.subscriptions: '%s' is not a mailbox name", c->subscriptions[i]);
    const config_setting_t *al = t ? config_setting_get_member(t, "aliases") : NULL;
    if (al && !config_setting_is_list(al))
        al = NULL;
    size_t na = al ? (size_t)config_setting_length(al) : 0;
    c->aliases = wp_calloc(na + 1, sizeof(*c->aliases));
    for (size_t i = 0; i < na; i++) {
        const config_setting_t *a = config_setting_get_elem(al, (unsigned)i);
        if (!config_setting_is_group(a))
            continue;
        struct wp_imap_alias *x = &c->aliases[c->naliases++];
        x->name = wp_strdup(wp_conf_string(a, "name", ""));
        x->target = wp_strdup(wp_conf_string(a, "target", ""));
        bool has_name = config_setting_get_member(a, "name"),
             has_target = config_setting_get_member(a, "target");
        if (has_name &&
            (!wp_imap_name_valid(x->name) || strchr(x->name, '/') || x->name[0] == '.' || x->name[0] == '~'))
            wp_error(err, path, wp_conf_line(a),
                     "imap.template.aliases: name '%s' must be one plain mailbox name", x->name);
        /* The target is a line of a dovecot-virtual file: a leading space
         * would make it a search program, "-", "+" or "!" a flag. */
        if (has_target && (!wp_imap_name_valid(x->target) || strchr(" -+!", x->target[0])))
            wp_error(err, path, wp_conf_line(a), "imap.template.aliases: target '%s' is not a mailbox name",
                     x->target);
        for (size_t k = 0; k + 1 < c->naliases; k++)
            if (strcmp(c->aliases[k].name, x->name) == 0)
                wp_error(err, path, wp_conf_line(a), "imap.template.aliases: '%s' is defined twice", x->name);
    }
}

static void imap_load(void *conf, const config_setting_t *g, const config_setting_t *root,
                      const struct wp_snapshot *s, struct wp_errors *err)
{
    (void)root;
    imap_load_group(conf, g, s->path, err);
}

static bool local_domain(const struct wp_router *r, const char *domain)
{
    if (wp_strieq(domain, r->main_domain))
        return true;
    for (size_t d = 0; d < r->ndomains; d++)
        if (wp_strieq(r->domains[d].name, domain))
            return true;
    return false;
}

static void check_admins(char **v, size_t n, const struct wp_router *r, const config_setting_t *g,
                         const char *setting, const char *path, struct wp_errors *err)
{
    for (size_t i = 0; i < n; i++) {
        char user[WP_ADDR_MAX + 1];
        const char *at = strrchr(v[i], '@');
        if (!wp_dovecot_user(r, v[i], user, sizeof(user)))
            wp_error(err, path, wp_conf_member_line(g, setting), "imap.%s: '%s' is not an account address",
                     setting, v[i]);
        else if (at && !local_domain(r, at + 1))
            wp_error(err, path, wp_conf_member_line(g, setting),
                     "imap.%s: '%s' is not in a domain of router.domains", setting, v[i]);
    }
}

/* Administrators must be accounts of a Waypost domain: needs the Router. */
static void imap_link(void *conf, const config_setting_t *g, const config_setting_t *root,
                      const struct wp_snapshot *s, struct wp_errors *err)
{
    (void)root;
    const struct wp_imap_conf *c = conf;
    check_admins(c->server_admins, c->nserver_admins, s->router, g, "server_admins", s->path, err);
    check_admins(c->domain_admins, c->ndomain_admins, s->router, g, "domain_admins", s->path, err);
}

/* What imap_load allocated beyond the rows. */
static void imap_free(void *conf)
{
    struct wp_imap_conf *c = conf;
    for (size_t i = 0; c->subscriptions && i < c->nsubscriptions; i++)
        free(c->subscriptions[i]);
    free(c->subscriptions);
    for (size_t i = 0; c->aliases && i < c->naliases; i++) {
        free(c->aliases[i].name);
        free(c->aliases[i].target);
    }
    free(c->aliases);
    c->subscriptions = NULL;
    c->aliases = NULL;
}

const struct wp_section wp_imap_section = {
    .name = "imap",
    .id = WP_SECTION_IMAP,
    .size = sizeof(struct wp_imap_conf),
    .rows = wp_imap_rows,
    .load = imap_load,
    .link = imap_link,
    .free = imap_free,
};

const struct wp_section *const wp_imap_sections[] = {&wp_imap_section, NULL};

const struct wp_imap_conf *wp_imap_conf(const struct wp_snapshot *s)
{
    return wp_snapshot_section(s, WP_SECTION_IMAP);
}

bool wp_imap_conf_read(const char *path, struct wp_imap_conf *c, struct wp_errors *err)
{
    config_t cfg;
    size_t before = err->count;
    memset(c, 0, sizeof(*c));
    if (!wp_conf_read(&cfg, path, err)) {
        config_destroy(&cfg);
        return false;
    }
    char *basedir = wp_dirname(path);
    const config_setting_t *g = config_setting_get_member(config_root_setting(&cfg), "imap");
    if (g && !config_setting_is_group(g)) {
        wp_error(err, path, wp_conf_line(g), "imap must be a group");
        g = NULL;
    }
    wp_conf_load(g, wp_imap_rows, c, "imap", path, basedir, err);
    imap_load_group(c, g, path, err);
    free(basedir);
    config_destroy(&cfg);
    return err->count == before;
}

void wp_imap_conf_free(struct wp_imap_conf *c)
{
    imap_free(c);
    wp_conf_free(wp_imap_rows, c);
    memset(c, 0, sizeof(*c));
}
