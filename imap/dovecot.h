/* SPDX-License-Identifier: MIT */
/*
 * dovecot.h - CommuniGate's shared-mailbox practice on Dovecot 2.3 and 2.4.
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
 * Dovecot 2.4 renamed or restructured most of the settings involved
 * (mail_driver/mail_path, acl_driver, acl_sharing_map, mail_plugins as a
 * list, the %{...} variables), so the fragment is printed in the syntax of
 * one version: imap.dovecot_version, or what `dovecot --version` answers
 * (2.4 when there is no Dovecot).  What it does is the same on both.
 *
 * Limits: one mail location for all accounts, of the form TYPE:~/PATH or
 * TYPE:%h/PATH (Dovecot's own defaults); aliases live under a namespace
 * prefix (Dovecot cannot have two namespaces with the empty prefix).  For
 * Dovecot 2.4 the location's only parameter may be LAYOUT= (which becomes
 * mailbox_list_layout) and the shared dictionary must be file:PATH.
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

/* "2.3" or "2.4" (also "2.3.19.1 (9b53102964)", "2.4.1-4 (...)": what
 * `dovecot --version` prints; later versions count as 2.4).  0 for
 * anything else. */
int wp_dovecot_version_parse(const char *s, bool exact);
/* The installed Dovecot's version (`dovecot --version`, in PATH or
 * /usr/sbin); 0 when there is none. */
int wp_dovecot_version_installed(void);
/* The version to print for: override (from the command line) if not AUTO,
 * else imap.dovecot_version, else the installed one, else 2.4. */
int wp_dovecot_version_choose(const struct wp_imap_conf *c, int override);

/* Can the configuration be written for this Dovecot version?  False with
 * the reason in why (e.g. a shared_dict other than file: for 2.4). */
bool wp_dovecot_conf_supported(const struct wp_imap_conf *c, int version, char *why, size_t size);

/* The fragment (for a Dovecot version, WP_DOVECOT_23 or _24; check
 * wp_dovecot_conf_supported first) and the ACL file (the same for both),
 * for the configuration in conf_path. */
void wp_dovecot_print_conf(FILE *out, const struct wp_imap_conf *c, const struct wp_router *r,
                           const char *conf_path, int version);
void wp_dovecot_print_acl(FILE *out, const struct wp_imap_conf *c, const struct wp_router *r,
                          const char *conf_path);

/* The account's mail root (e.g. HOME/Maildir) for a home directory; NULL
 * for a mail location not accepted. */
char *wp_imap_mail_root(const struct wp_imap_conf *c, const char *home);
/* The storage's hierarchy separator: '.' for Maildir++, else '/'. */
char wp_imap_storage_separator(const struct wp_imap_conf *c);

#endif
