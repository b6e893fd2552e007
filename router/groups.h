/* SPDX-License-Identifier: MIT */
/*
 * groups.h - a local domain's groups and forwarders (CommuniGate's domain
 * objects beside accounts).
 *
 * A group is a name in the domain that expands to its members; a forwarder
 * is a name that goes to one other address.  Both come from the domain's
 * `groups` / `forwarders` settings: a list of strings, each either
 *
 *   "NAME: MEMBER, MEMBER, ..."   one group (forwarders: "NAME: TARGET")
 *   "Relay:NAME: ..."             the same, and anyone may have mail sent
 *                                 through it off this server (as a Relay:
 *                                 record grants)
 *   "file:PATH"                   one such entry a line of PATH ('#' starts
 *                                 a comment line; PATH relative to basedir)
 *
 * A member or target without '@' is in the group's own domain.  Names are
 * unique in a domain across groups and forwarders and compare case-
 * insensitively.  Files are read once, at load (a reload re-reads them).
 * Limits: a group's members, joined as Postfix's virtual(5) answer
 * ("a@x, b@y") and escaped as tcp_table sends them, fit WP_GROUP_ANSWER_MAX
 * bytes (Postfix's tcp_table reply limit is 4096): larger groups nest (a
 * member may be another group).
 */
#ifndef WP_GROUPS_H
#define WP_GROUPS_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/errors.h"
#include "lib/strmap.h"

#define WP_GROUP_ANSWER_MAX 4000

struct wp_group {
    char *name;     /* lower case */
    char *address;  /* name@domain */
    char **members; /* full addresses; a forwarder has exactly one */
    size_t nmembers;
    char *answer; /* the members joined with ", " (virtual's answer) */
    bool forwarder;
    bool relay; /* "Relay:" given */
    char *file; /* where it was configured */
    int line;
};

struct wp_groups {
    struct wp_group *v;
    size_t n;
    struct wp_strmap index; /* name -> index into v */
};

/* Add the entries of one setting (entries NULL-terminated) to g for the
 * domain; forwarders says which setting.  Errors as "file:line: ...". */
void wp_groups_add(struct wp_groups *g, const char *const *entries, bool forwarders, const char *domain,
                   const char *basedir, const char *file, int line, struct wp_errors *err);
/* The group or forwarder of this local part (any case), or NULL. */
const struct wp_group *wp_groups_find(const struct wp_groups *g, const char *local);
void wp_groups_free(struct wp_groups *g);

#endif
