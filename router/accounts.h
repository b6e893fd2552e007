/* SPDX-License-Identifier: MIT */
/*
 * accounts.h - where a local domain's accounts come from.
 *
 *   list:alice,bob          a fixed list
 *   passwd-file:PATH        Dovecot's passwd-file format ("user" or
 *                           "user@domain" in the first field); re-read when
 *                           the file changes (checked at most once per
 *                           cache period), so a new account routes locally
 *                           without a restart
 *   userdb:unix:PATH        Dovecot's auth-userdb socket (auth master
 *                           protocol, USER command with "local@domain");
 *                           answers are cached for the cache period
 *
 * Lookups are thread-safe.  Names compare case-insensitively.
 */
#ifndef WP_ACCOUNTS_H
#define WP_ACCOUNTS_H

#include "lib/errors.h"

enum wp_account_answer { WP_ACCT_NO, WP_ACCT_YES, WP_ACCT_TEMP };

struct wp_accounts;

/* spec as above; relative paths are taken from basedir; file/line locate the
 * setting for error messages. */
struct wp_accounts *wp_accounts_new(const char *spec, const char *domain, const char *basedir,
                                    int cache_seconds, int timeout_ms, const char *file, int line,
                                    struct wp_errors *err);
void wp_accounts_free(struct wp_accounts *a);

enum wp_account_answer wp_accounts_lookup(struct wp_accounts *a, const char *local);

/* "list", "passwd-file" or "userdb" */
const char *wp_accounts_kind(const struct wp_accounts *a);

#endif
