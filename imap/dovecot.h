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

#include "imap/settings.h"

struct wp_router;

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
