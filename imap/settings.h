/* SPDX-License-Identifier: MIT */
/*
 * settings.h - the `imap` group of waypost.conf (Dovecot shared mailboxes),
 * as a section of the snapshot (state/snapshot.h).
 *
 * The rows say name, type and default of each setting; this module checks
 * what they cannot: the mail location's form, the alias prefix, the
 * template's mailbox names, and (once the Router is built) that the
 * administrators are accounts of Waypost's domains.
 */
#ifndef WP_IMAP_SETTINGS_H
#define WP_IMAP_SETTINGS_H

#include <libconfig.h>
#include <stdbool.h>

#include "lib/errors.h"
#include "state/snapshot.h"

struct wp_imap_alias {
    char *name;   /* as it appears under the alias prefix: "mkt-announce" */
    char *target; /* the mailbox it shows: "~marketing/announce" */
};

/* Dovecot syntax versions: major * 10 + minor. */
enum wp_dovecot_version {
    WP_DOVECOT_AUTO = 0, /* ask the installed Dovecot, else 2.4 */
    WP_DOVECOT_23 = 23,
    WP_DOVECOT_24 = 24,
};

struct wp_imap_conf {
    char *dovecot_version_text; /* imap.dovecot_version as written: "2.3", "2.4" or "auto" */
    int dovecot_version;        /* enum wp_dovecot_version parsed from it */
    char *mail_location;        /* the accounts' Dovecot mail_location */
    char *alias_prefix;         /* namespace prefix of the aliases, ends with "/" */
    char *acl_file;             /* global ACL file (absolute) */
    char *shared_dict;          /* acl_shared_dict */
    char *login_helper;         /* post-login program (absolute) */
    bool lmtp_autocreate;       /* account+box@domain creates "box" */
    char **server_admins;       /* addresses, as written (NULL-terminated) */
    size_t nserver_admins;
    char **domain_admins;
    size_t ndomain_admins;
    char **subscriptions; /* template */
    size_t nsubscriptions;
    struct wp_imap_alias *aliases; /* template */
    size_t naliases;
};

extern const struct wp_conf_row wp_imap_rows[];
extern const struct wp_section wp_imap_section;
extern const struct wp_section *const wp_imap_sections[];

/* The imap section of a snapshot that loaded it. */
const struct wp_imap_conf *wp_imap_conf(const struct wp_snapshot *s);

/* The `imap` group of the configuration file path alone, through the same
 * rows and checks as the section (the post-login helper needs no more: no
 * Router, so the administrators are not checked).  False on errors; free
 * with wp_imap_conf_free either way. */
bool wp_imap_conf_read(const char *path, struct wp_imap_conf *c, struct wp_errors *err);
void wp_imap_conf_free(struct wp_imap_conf *c);

#endif
