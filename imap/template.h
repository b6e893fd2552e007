/* SPDX-License-Identifier: MIT */
/*
 * template.h - CommuniGate's Account Template on Dovecot: the initial
 * subscription list (own and foreign names) and mailbox aliases, written
 * into an account's files once, at its first IMAP login.
 *
 * The post-login helper (imap/login.c) calls wp_imap_template_apply() as
 * the mail user, before Dovecot's imap process starts, so nothing else
 * writes these files at that moment.
 *
 *   - Subscriptions go into the mail root's "subscriptions" file in the
 *     format Dovecot 2.3 writes (version 2: "V\t2\n\n", then one name a
 *     line, split on the storage's hierarchy separator into TAB-separated
 *     parts).  A foreign name "~owner/rest" keeps "~owner/" as one piece:
 *     that is how Dovecot stores subscriptions of its shared namespace in
 *     the parent namespace's file.  The aliases are subscribed to as well
 *     (clients that show only subscribed mailboxes show them).  Names
 *     already there are kept.
 *   - An alias NAME -> TARGET is the virtual mailbox HOME/waypost-aliases/
 *     NAME/dovecot-virtual showing all of TARGET's messages; an existing
 *     alias of that name is left alone.
 *   - HOME/.waypost-template records that it was done: later logins change
 *     nothing, so a user may unsubscribe or delete an alias for good.
 *
 * Limits: only the mail locations dovecot.h accepts (no CONTROL= or
 * SUBSCRIPTIONS= directories); a subscription file in the old version-1
 * format gets version-1 lines.
 */
#ifndef WP_IMAP_TEMPLATE_H
#define WP_IMAP_TEMPLATE_H

#include <stddef.h>

#include "imap/dovecot.h"

/* The subscriptions-file line (version 2, without the newline) for a
 * mailbox name as the user sees it ("/" separated) whose first prefix_len
 * bytes are a namespace prefix ("~owner/", "Aliases/"; 0 for the user's
 * own mailboxes); sep is the storage's hierarchy separator
 * (wp_imap_storage_separator). */
char *wp_imap_subscription_line(const char *name, size_t prefix_len, char sep);

/* The dovecot-virtual text of an alias showing target. */
char *wp_imap_alias_virtual(const char *target);

/* Apply the template to the account whose home is home (absolute).
 * Returns 1 if it was applied now, 0 if it had been before, -1 on error
 * (why says what; a later login tries again). */
int wp_imap_template_apply(const struct wp_imap_conf *c, const char *home, char *why, size_t whysize);

#endif
