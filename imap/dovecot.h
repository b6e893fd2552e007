/* SPDX-License-Identifier: MIT */
/*
 * dovecot.h - CommuniGate's shared-mailbox practice on Dovecot 2.3.
 *
 * Waypost stores no mail: Dovecot's acl plugin enforces the rights.  This
 * module turns the `imap` section of waypost.conf into what Dovecot needs:
 *
 *   - a configuration fragment (wp_dovecot_print_conf): the acl/imap_acl
 *     plugins, the foreign-mailbox namespace "~owner/mailbox", the alias
 *     namespace (virtual mailboxes), LMTP per-mailbox delivery and the
 *     post-login helper that applies the account template;
 *   - the global ACL file (wp_dovecot_print_acl): server administrators on
 *     every account, domain administrators on their own domain's accounts;
 *   - the account template (template.h): initial subscriptions and mailbox
 *     aliases, written once, at an account's first login.
 *
 * Dovecot user names follow CommuniGate: accounts of the main domain are
 * named without a domain ("alice"), others with it ("bob@domain.dom"), so
 * that "~alice/INBOX" and "~bob@domain.dom/INBOX" name foreign mailboxes.
 *
 * Limits: one mail location for all accounts, of the form TYPE:~/PATH or
 * TYPE:%h/PATH (Dovecot's own defaults); aliases live under a namespace
 * prefix (Dovecot cannot have two namespaces with the empty prefix).
 */
#ifndef WP_IMAP_DOVECOT_H
#define WP_IMAP_DOVECOT_H

#include <libconfig.h>
#include <stdbool.h>
#include <stdio.h>

#include "lib/conf.h"
#include "lib/errors.h"

struct wp_router;

struct wp_imap_alias {
    char *name;   /* as it appears under the alias prefix: "mkt-announce" */
    char *target; /* the mailbox it shows: "~marketing/announce" */
};

struct wp_imap_conf {
    char *mail_location;  /* the accounts' Dovecot mail_location */
    char *alias_prefix;   /* namespace prefix of the aliases, ends with "/" */
    char *acl_file;       /* global ACL file (absolute) */
    char *shared_dict;    /* acl_shared_dict */
    char *login_helper;   /* post-login program (absolute) */
    bool lmtp_autocreate; /* account+box@domain creates "box" */
    char **server_admins; /* addresses, as written */
    size_t nserver_admins;
    char **domain_admins;
    size_t ndomain_admins;
    char **subscriptions; /* template */
    size_t nsubscriptions;
    struct wp_imap_alias *aliases; /* template */
    size_t naliases;
};

/* The `imap` group's schema, for the top-level schema. */
extern const struct wp_conf_schema wp_imap_schema[];

/* Load the `imap` group (NULL: all defaults).  Relative paths start at
 * basedir.  Errors go to err as "file:line: message". */
void wp_imap_conf_load(const config_setting_t *g, const char *path, const char *basedir,
                       struct wp_imap_conf *c, struct wp_errors *err);
/* The `imap` group of the configuration file path alone (the post-login
 * helper needs no more).  False on errors. */
bool wp_imap_conf_read(const char *path, struct wp_imap_conf *c, struct wp_errors *err);
/* Checks that need the Router: administrators must be accounts of a
 * Waypost domain. */
void wp_imap_conf_check(const struct wp_imap_conf *c, const struct wp_router *r, const config_setting_t *g,
                        const char *path, struct wp_errors *err);
void wp_imap_conf_free(struct wp_imap_conf *c);

/* The Dovecot user name of an account address: lower case, without the
 * domain for the main domain.  False if it does not fit or is no address. */
bool wp_dovecot_user(const struct wp_router *r, const char *address, char *out, size_t size);

/* Is this a mailbox name we are willing to write into Dovecot's files (no
 * control characters, no "..", not empty, bounded)? */
bool wp_imap_name_valid(const char *name);

/* The fragment and the ACL file, for the configuration in conf_path. */
void wp_dovecot_print_conf(FILE *out, const struct wp_imap_conf *c, const struct wp_router *r,
                           const char *conf_path);
void wp_dovecot_print_acl(FILE *out, const struct wp_imap_conf *c, const struct wp_router *r,
                          const char *conf_path);

/* The account's mail root (e.g. HOME/Maildir) for a home directory; NULL
 * for a mail location not accepted. */
char *wp_imap_mail_root(const struct wp_imap_conf *c, const char *home);
/* The storage's hierarchy separator: '.' for Maildir++, else '/'. */
char wp_imap_storage_separator(const struct wp_imap_conf *c);

#endif
