/* SPDX-License-Identifier: MIT */
/*
 * dovecot.c - the Dovecot files made from the `imap` section of waypost.conf
 * (imap/settings.c loads it) (see dovecot.h for what and why).
 *
 * What is printed here is run against a real Dovecot 2.3.19 (Debian 12)
 * and 2.4.1 (Debian 13) by the end-to-end test t/e2e/shared.sh, which the
 * test suite runs on both.  Dovecot facts that shape it:
 *   - a shared namespace prefix "~%%u/" is truncated at the "%" to "~",
 *     which Dovecot accepts only with list = no: a LIST of everything
 *     does not show foreign mailboxes; they open, subscribe and show in
 *     LSUB, the way CommuniGate's subscription list shows them;
 *   - global ACL file patterns are matched against the names the user
 *     sees: a foreign INBOX is "~alice", its other mailboxes "~alice/NAME";
 *   - a virtual mailbox cannot sit next to INBOX in the namespace with the
 *     empty prefix, so aliases live under their own prefix ("Aliases/").
 */
#include "config.h"

#include "imap/dovecot.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "lib/address.h"
#include "lib/conf.h"
#include "lib/defaults.h"
#include "router/router.h"
#include "lib/util.h"

#ifndef WP_LIBEXECDIR
#define WP_LIBEXECDIR "/usr/local/libexec/waypost"
#endif

/* Dovecot rights of an administrator: all of RFC 4314's letters. */
#define ADMIN_RIGHTS "lrwstipekxa"

/* ---------------------------------------------------------------- names */

bool wp_imap_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > WP_IMAP_NAME_MAX || strstr(name, "..") || name[n - 1] == '/')
        return false;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == '%' || *p == '*')
            return false;
    return true;
}

bool wp_dovecot_user(const struct wp_router *r, const char *address, char *out, size_t size)
{
    const char *at = strrchr(address, '@');
    size_t local = at ? (size_t)(at - address) : strlen(address);
    if (local == 0 || local >= size || memchr(address, '/', strlen(address)))
        return false;
    if (at && !wp_domain_valid(at + 1, false))
        return false;
    bool main_domain = !at || wp_strieq(at + 1, r->main_domain);
    if (main_domain)
        memcpy(out, address, local), out[local] = '\0';
    else if (!wp_strlcpy(out, address, size))
        return false;
    wp_str_lower(out);
    return true;
}

/* ---------------------------------------------------------------- versions */

int wp_dovecot_version_parse(const char *s, bool exact)
{
    unsigned long major, minor;
    char *end;
    if (!isdigit((unsigned char)s[0]))
        return 0;
    major = strtoul(s, &end, 10);
    if (*end != '.' || !isdigit((unsigned char)end[1]))
        return 0;
    minor = strtoul(end + 1, &end, 10);
    if (exact ? *end != '\0' : (*end != '\0' && *end != '.' && *end != '-' && *end != ' '))
        return 0;
    if (major == 2 && minor == 3)
        return WP_DOVECOT_23;
    if (exact)
        return major == 2 && minor == 4 ? WP_DOVECOT_24 : 0;
    return (major == 2 && minor >= 4) || (major > 2 && major < 100) ? WP_DOVECOT_24 : 0;
}

int wp_dovecot_version_installed(void)
{
    /* Not in PATH for a user without sbin directories: try Debian's. */
    FILE *p = popen("dovecot --version 2>/dev/null || /usr/sbin/dovecot --version 2>/dev/null", "r");
    if (!p)
        return 0;
    char line[128];
    bool got = fgets(line, sizeof(line), p) != NULL;
    while (got && fgetc(p) != EOF) /* let it finish writing */
        ;
    int rc = pclose(p);
    return got && rc == 0 ? wp_dovecot_version_parse(line, false) : 0;
}

int wp_dovecot_version_choose(const struct wp_imap_conf *c, int override)
{
    if (override != WP_DOVECOT_AUTO)
        return override;
    if (c->dovecot_version != WP_DOVECOT_AUTO)
        return c->dovecot_version;
    int v = wp_dovecot_version_installed();
    return v ? v : WP_DOVECOT_24;
}

/* mail_location "TYPE:~/PATH[:PARAMS]" or "TYPE:%h/PATH[:PARAMS]": the
 * pieces, pointing into loc.  False for any other form. */
struct location {
    const char *type;
    size_t type_len;
    const char *path; /* relative to the home */
    size_t path_len;
    const char *params; /* ":..." or "" */
};

static bool location_parse(const char *loc, struct location *l)
{
    const char *colon = strchr(loc, ':');
    if (!colon || colon == loc)
        return false;
    l->type = loc;
    l->type_len = (size_t)(colon - loc);
    const char *rest = colon + 1;
    if (strncmp(rest, "~/", 2) == 0)
        rest += 2;
    else if (strncmp(rest, "%h/", 3) == 0)
        rest += 3;
    else
        return false;
    const char *end = strchr(rest, ':');
    l->path = rest;
    l->path_len = end ? (size_t)(end - rest) : strlen(rest);
    l->params = end ? end : "";
    return l->path_len > 0 && !memchr(l->path, '%', l->path_len);
}

static bool location_split(const char *loc, struct location *l)
{
    if (!location_parse(loc, l))
        return false;
    /* The helper writes the subscriptions file into the mail root. */
    return !strstr(l->params, ":CONTROL=") && !strstr(l->params, ":SUBSCRIPTIONS=") &&
           !strpbrk(loc, " \t\r\n\"");
}

char wp_imap_storage_separator(const struct wp_imap_conf *c)
{
    struct location l;
    if (!location_split(c->mail_location, &l))
        return '/';
    /* Maildir++ ("dir/.a.b") unless LAYOUT=fs; every other layout uses "/". */
    bool maildir = l.type_len == 7 && wp_strnieq(l.type, "maildir", 7);
    return maildir && !strstr(l.params, ":LAYOUT=fs") ? '.' : '/';
}

char *wp_imap_mail_root(const struct wp_imap_conf *c, const char *home)
{
    struct location l;
    if (!location_split(c->mail_location, &l))
        return NULL;
    return wp_asprintf("%s/%.*s", home, (int)l.path_len, l.path);
}

/* ---------------------------------------------------------------- output */

/* Dovecot 2.3 (Debian 12). */
static void print_conf23(FILE *out, const struct wp_imap_conf *c, const char *domain,
                         const struct location *lp, const char *conf_path)
{
    struct location l = *lp;
    int tl = (int)l.type_len, pl = (int)l.path_len;

    fprintf(out,
            "# Waypost: CommuniGate-style shared mailboxes for Dovecot 2.3.\n"
            "# Generated by \"waypost dovecot\" from %s; include it after the rest of\n"
            "# the configuration (Debian: /etc/dovecot/conf.d/90-waypost.conf).\n\n",
            conf_path);
    fprintf(out,
            "# Accounts of the main domain are named without it (\"alice\"), others\n"
            "# with it (\"bob@domain.dom\"): logins, LMTP recipients and the owners of\n"
            "# foreign mailboxes (\"~alice/INBOX\", \"~bob@domain.dom/INBOX\") alike.\n"
            "auth_username_format = %%{if;%%Ld;eq;%s;%%Ln;%%Lu}\n\n",
            domain);
    fprintf(out,
            "mail_location = %s\n"
            "mail_plugins = $mail_plugins acl virtual\n"
            "protocol imap {\n"
            "  mail_plugins = $mail_plugins imap_acl\n"
            "}\n\n",
            c->mail_location);
    fprintf(out,
            "# account+mailbox@domain is delivered into that mailbox (\"Store in\").\n"
            "recipient_delimiter = +\n"
            "lda_mailbox_autocreate = %s\n"
            "protocol lmtp {\n"
            "  lmtp_save_to_detail_mailbox = yes\n"
            "}\n\n",
            c->lmtp_autocreate ? "yes" : "no");
    fprintf(out,
            "# CommuniGate's hierarchy separator.\n"
            "namespace inbox {\n"
            "  separator = /\n"
            "}\n\n"
            "# Foreign mailboxes: ~owner/mailbox.  Dovecot accepts the \"~\" prefix\n"
            "# only with list = no: LIST leaves them out, LSUB shows those subscribed\n"
            "# to (CommuniGate's way: foreign names in the subscription list).\n"
            "# Seen flags stay private to each user.\n"
            "namespace waypost_foreign {\n"
            "  type = shared\n"
            "  separator = /\n"
            "  prefix = ~%%%%u/\n"
            "  location = %.*s:%%%%h/%.*s%s:INDEXPVT=~/" WP_IMAP_SHARED_INDEX_DIR "/%%%%u\n"
            "  subscriptions = no\n"
            "  list = no\n"
            "}\n\n",
            tl, l.type, pl, l.path, l.params);
    fprintf(out,
            "# Mailbox aliases (account template): virtual mailboxes that show a\n"
            "# foreign mailbox, within the rights the account holds there.  Dovecot\n"
            "# has one namespace with the empty prefix (INBOX's): aliases get theirs.\n"
            "namespace waypost_aliases {\n"
            "  separator = /\n"
            "  prefix = %s\n"
            "  location = virtual:~/" WP_IMAP_ALIAS_DIR "\n"
            "  subscriptions = no\n"
            "}\n\n",
            c->alias_prefix);
    fprintf(out,
            "plugin {\n"
            "  # Administrators' rights: written by \"waypost dovecot --acl\".\n"
            "  acl = vfile:%s\n"
            "  # Which accounts share what with whom; written by the mail processes,\n"
            "  # so its directory must be writable by the mail user.\n"
            "  acl_shared_dict = %s\n"
            "  # Owners may grant rights to \"anyone\" and \"authenticated\".\n"
            "  acl_anyone = allow\n"
            "}\n\n",
            c->acl_file, c->shared_dict);
    fprintf(out,
            "# The account template (imap.template) is applied at the first login, as\n"
            "# the mail user (-d), by a helper that reads the waypost.conf named here.\n"
            "service imap {\n"
            "  executable = imap waypost-imap-login\n"
            "}\n"
            "service waypost-imap-login {\n"
            "  executable = script-login -d %s -c %s\n"
            "  unix_listener waypost-imap-login {\n"
            "  }\n"
            "}\n",
            c->login_helper, conf_path);
}

/* "LAYOUT=NAME" of a 2.3 location's parameters ("" if none); NULL if there
 * are others (2.4 has a setting for each; we translate only this one). */
static const char *location_layout24(const struct location *l, char *buf, size_t size)
{
    if (!*l->params)
        return "";
    const char *p = l->params;
    if (strncmp(p, ":LAYOUT=", 8) != 0)
        return NULL;
    p += 8;
    size_t n = strlen(p);
    if (n == 0 || n >= size)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)p[i]) && p[i] != '_' && p[i] != '-')
            return NULL;
    memcpy(buf, p, n + 1);
    return buf;
}

bool wp_dovecot_conf_supported(const struct wp_imap_conf *c, int version, char *why, size_t size)
{
    struct location l;
    char layout[32];
    if (!location_split(c->mail_location, &l)) {
        snprintf(why, size, "imap.mail_location '%s' is not accepted", c->mail_location);
        return false;
    }
    if (version != WP_DOVECOT_24)
        return true;
    if (!location_layout24(&l, layout, sizeof(layout))) {
        snprintf(why, size, "imap.mail_location '%s': for Dovecot 2.4 the only parameter may be :LAYOUT=NAME",
                 c->mail_location);
        return false;
    }
    if (strncmp(c->shared_dict, "file:/", 6) != 0 || strpbrk(c->shared_dict, " \t\"{}#")) {
        snprintf(why, size, "imap.shared_dict '%s': for Dovecot 2.4 it must be file:/ABSOLUTE/PATH",
                 c->shared_dict);
        return false;
    }
    return true;
}

/* Dovecot 2.4 (Debian 13): the same behaviour in 2.4's settings. */
static void print_conf24(FILE *out, const struct wp_imap_conf *c, const char *domain,
                         const struct location *l, const char *conf_path)
{
    int tl = (int)l->type_len, pl = (int)l->path_len;
    char buf[32];
    const char *layout = location_layout24(l, buf, sizeof(buf));
    if (!layout)
        return; /* wp_dovecot_conf_supported said so */
    /* regexp() of the lower-cased name: the domain's letters, digits and
     * hyphens as they are, anything else ("." and an address literal's
     * "[", "]", ":") as a one-character class ("[.]"; "[]]" for "]"). */
    char re[3 * WP_DOMAIN_MAX + 1], *q = re;
    for (const char *p = domain; *p && q + 3 < re + sizeof(re); p++) {
        if (isalnum((unsigned char)*p) || *p == '-')
            *q++ = *p;
        else
            *q++ = '[', *q++ = *p, *q++ = ']';
    }
    *q = '\0';

    fprintf(out,
            "# Waypost: CommuniGate-style shared mailboxes for Dovecot 2.4.\n"
            "# Generated by \"waypost dovecot\" from %s; include it after the rest of\n"
            "# the configuration (Debian: /etc/dovecot/conf.d/90-waypost.conf).\n\n",
            conf_path);
    fprintf(out,
            "# Accounts of the main domain are named without it (\"alice\"), others\n"
            "# with it (\"bob@domain.dom\"): logins, LMTP recipients and the owners of\n"
            "# foreign mailboxes (\"~alice/INBOX\", \"~bob@domain.dom/INBOX\") alike.\n"
            "# Debian's 20-lmtp.conf sets this for LMTP, which a global setting here\n"
            "# would not change: the two filters below cover every protocol.\n"
            "protocol lmtp {\n"
            "  auth_username_format = %%{user | lower | regexp('^(.*)@%s$', '\\\\1')}\n"
            "}\n"
            "protocol !lmtp {\n"
            "  auth_username_format = %%{user | lower | regexp('^(.*)@%s$', '\\\\1')}\n"
            "}\n\n",
            re, re);
    fprintf(out,
            "mail_driver = %.*s\n"
            "mail_path = ~/%.*s\n"
            "mail_inbox_path =\n",
            tl, l->type, pl, l->path);
    if (*layout)
        fprintf(out, "mailbox_list_layout = %s\n", layout);
    fprintf(out, "mail_plugins {\n"
                 "  acl = yes\n"
                 "  virtual = yes\n"
                 "}\n"
                 "protocol imap {\n"
                 "  mail_plugins {\n"
                 "    imap_acl = yes\n"
                 "  }\n"
                 "}\n\n");
    fprintf(out,
            "# account+mailbox@domain is delivered into that mailbox (\"Store in\").\n"
            "recipient_delimiter = +\n"
            "lda_mailbox_autocreate = %s\n"
            "protocol lmtp {\n"
            "  lmtp_save_to_detail_mailbox = yes\n"
            "}\n\n",
            c->lmtp_autocreate ? "yes" : "no");
    fprintf(out,
            "# CommuniGate's hierarchy separator.\n"
            "namespace inbox {\n"
            "  separator = /\n"
            "}\n\n"
            "# Foreign mailboxes: ~owner/mailbox.  Dovecot accepts the \"~\" prefix\n"
            "# only with list = no: LIST leaves them out, LSUB shows those subscribed\n"
            "# to (CommuniGate's way: foreign names in the subscription list).\n"
            "# Seen flags stay private to each user.\n"
            "namespace waypost_foreign {\n"
            "  type = shared\n"
            "  separator = /\n"
            "  prefix = ~$user/\n"
            "  mail_driver = %.*s\n"
            "  mail_path = %%{owner_home}/%.*s\n"
            "  mail_index_private_path = ~/" WP_IMAP_SHARED_INDEX_DIR "/%%{owner_user}\n"
            "  subscriptions = no\n"
            "  list = no\n"
            "}\n\n",
            tl, l->type, pl, l->path);
    fprintf(out,
            "# Mailbox aliases (account template): virtual mailboxes that show a\n"
            "# foreign mailbox, within the rights the account holds there.  Dovecot\n"
            "# has one namespace with the empty prefix (INBOX's): aliases get theirs.\n"
            "namespace waypost_aliases {\n"
            "  separator = /\n"
            "  prefix = %s\n"
            "  mail_driver = virtual\n"
            "  mail_path = ~/" WP_IMAP_ALIAS_DIR "\n"
            "  subscriptions = no\n"
            "}\n\n",
            c->alias_prefix);
    fprintf(out,
            "acl_driver = vfile\n"
            "# Administrators' rights: written by \"waypost dovecot --acl\".\n"
            "acl_global_path = %s\n"
            "# Which accounts share what with whom; written by the mail processes,\n"
            "# so its directory must be writable by the mail user.\n"
            "acl_sharing_map {\n"
            "  dict file {\n"
            "    path = %s\n"
            "  }\n"
            "}\n"
            "# Owners may grant rights to \"anyone\" and \"authenticated\".\n"
            "imap_acl_allow_anyone = yes\n\n",
            c->acl_file, c->shared_dict + 5);
    fprintf(out,
            "# The account template (imap.template) is applied at the first login, as\n"
            "# the mail user (-d), by a helper that reads the waypost.conf named here.\n"
            "service imap {\n"
            "  executable = imap waypost-imap-login\n"
            "}\n"
            "service waypost-imap-login {\n"
            "  executable = script-login -d %s -c %s\n"
            "  unix_listener waypost-imap-login {\n"
            "  }\n"
            "}\n",
            c->login_helper, conf_path);
}

void wp_dovecot_print_conf(FILE *out, const struct wp_imap_conf *c, const struct wp_router *r,
                           const char *conf_path, int version)
{
    struct location l;
    if (!location_split(c->mail_location, &l))
        return; /* the load reported it */
    char domain[WP_DOMAIN_MAX + 1];
    wp_strlcpy(domain, r->main_domain, sizeof(domain));
    wp_str_lower(domain);
    if (version == WP_DOVECOT_23)
        print_conf23(out, c, domain, &l, conf_path);
    else
        print_conf24(out, c, domain, &l, conf_path);
}

/* One ACL line per pattern that names a domain's mailboxes: its accounts'
 * INBOXes ("~user@domain") and everything below them. */
static void acl_domain_lines(FILE *out, const char *domain, const char *ident, const char *rights)
{
    fprintf(out, "~*@%s %s %s\n", domain, ident, rights);
    fprintf(out, "~*@%s/* %s %s\n", domain, ident, rights);
}

void wp_dovecot_print_acl(FILE *out, const struct wp_imap_conf *c, const struct wp_router *r,
                          const char *conf_path)
{
    char user[WP_ADDR_MAX + 1], domain[WP_DOMAIN_MAX + 1];
    fprintf(out,
            "# Waypost administrators' rights, for Dovecot's acl plugin (global file).\n"
            "# Generated by \"waypost dovecot --acl\" from %s.\n"
            "# Patterns match the names users see: \"~alice\" is alice's INBOX.\n",
            conf_path);
    if (c->nserver_admins)
        fprintf(out, "\n# Server administrators: every mailbox of every account.\n");
    for (size_t i = 0; i < c->nserver_admins; i++)
        if (wp_dovecot_user(r, c->server_admins[i], user, sizeof(user)))
            fprintf(out, "~* user=%s " ADMIN_RIGHTS "\n", user);
    for (size_t i = 0; i < c->ndomain_admins; i++) {
        if (!wp_dovecot_user(r, c->domain_admins[i], user, sizeof(user)))
            continue;
        const char *at = strrchr(c->domain_admins[i], '@');
        wp_strlcpy(domain, at ? at + 1 : r->main_domain, sizeof(domain));
        wp_str_lower(domain);
        fprintf(out, "\n# Domain administrator %s: the accounts of %s only.\n", c->domain_admins[i], domain);
        if (!wp_strieq(domain, r->main_domain)) {
            char ident[WP_ADDR_MAX + 8];
            snprintf(ident, sizeof(ident), "user=%s", user);
            acl_domain_lines(out, domain, ident, ADMIN_RIGHTS);
            continue;
        }
        /* Main-domain owners have no "@domain" in their names: grant every
         * foreign mailbox, then take the other domains away again. */
        fprintf(out, "~* user=%s " ADMIN_RIGHTS "\n", user);
        char ident[WP_ADDR_MAX + 8];
        snprintf(ident, sizeof(ident), "-user=%s", user);
        for (size_t d = 0; d < r->ndomains; d++) {
            if (wp_strieq(r->domains[d].name, r->main_domain)) /* the main domain is listed too */
                continue;
            wp_strlcpy(domain, r->domains[d].name, sizeof(domain));
            wp_str_lower(domain);
            acl_domain_lines(out, domain, ident, ADMIN_RIGHTS);
        }
    }
}
