/* SPDX-License-Identifier: MIT */
/*
 * table.h - the Router table: parser and compiled index.
 *
 * Grammar (one record a line; ';' starts a comment at the start of a line or
 * after white space):
 *     [Prefix:]<local@domain> = target      address-level record
 *     [Prefix:]<local>        = target      local part in the main domain
 *     [Prefix:]domain         = target      domain-level record
 *     Prefix := Relay | RelayAll | NoRelay | Mail | Access | Signal
 *     target := address | domain | null | error [text]
 * '*' may stand once in the local part and once in the domain of the left
 * side; the k-th '*' of the target receives the text the k-th '*' matched.
 *
 * The index makes a lookup cost independent of the table's size: exact
 * records sit in hash maps; wildcard records are filed under their fixed
 * part (the domain, or the text after/before the domain's '*'), which a
 * lookup probes once per suffix/prefix of the queried domain.  Records that
 * share a key are chained in table order, so "first in table order wins".
 * A lone "<*@*>" or "*" record lives on a short list of its own.
 */
#ifndef WP_TABLE_H
#define WP_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/errors.h"
#include "lib/picture.h"
#include "lib/strmap.h"

enum wp_prefix {
    WP_PFX_NONE,
    WP_PFX_RELAY,
    WP_PFX_RELAYALL,
    WP_PFX_NORELAY,
    WP_PFX_MAIL,
    WP_PFX_ACCESS,
    WP_PFX_SIGNAL
};
enum wp_target_kind { WP_TGT_ADDRESS, WP_TGT_DOMAIN, WP_TGT_NULL, WP_TGT_ERROR };

/* A record lives in one block of the table's arena together with its text:
 * the struct, then "local@domain" (or the domain), then the target.  A
 * lookup that has compared its key has the record in the same or the next
 * cache line; the file itself is not kept. */
struct wp_record {
    const char *local;  /* picture (local_len), followed by "@domain"; NULL for domain-level */
    const char *domain; /* picture, terminated (domain_len) */
    const char *target; /* terminated; error text ("" if none) for ERROR, NULL for NULL */
    uint32_t line;
    uint32_t next; /* id of the next record under the same index key, in table order */
    uint16_t local_len;
    uint16_t domain_len;
    uint8_t prefix;
    uint8_t target_kind;
    uint8_t lhs_stars;
};

/* Wildcard-domain keys, with which key lengths and edge bytes occur, so a
 * lookup probes only the suffixes/prefixes that can exist (for "*.x.com"
 * records: only at dots). */
struct wp_picture_map {
    struct wp_strmap map;
    uint64_t lengths[4]; /* bit n: a key of length n exists */
    uint64_t edges[4];   /* bit c: a key starts (suffix map) or ends (prefix map) with byte c */
};

/* Flags of a wp_table.domains entry. */
#define WP_DOMAIN_MAIL_ADDRESSES 1 /* exact address records other than Access:/Signal: */

struct wp_table {
    char *name;    /* file name without directories, for traces */
    char *arena;   /* record blocks in table order; a record's id is its offset / 8 */
    uint32_t *ids; /* the ids in table order */
    uint32_t nrecs;
    bool has_norelay;                   /* some record is NoRelay: (untrusted lookups differ) */
    struct wp_strmap addr_exact;        /* "local@domain", hashed wp_hash_pair(local, domain) */
    struct wp_strmap domains;           /* an exact domain: head = its records with a wildcard local part,
                                         * head2 = its domain-level records; flags WP_DOMAIN_* */
    struct wp_picture_map addr_dsuffix; /* domain picture "P*S", S non-empty: key S (backward hash) */
    struct wp_picture_map addr_dprefix; /* domain picture "P*": key P */
    struct wp_strmap_entry addr_any;
    struct wp_picture_map dom_suffix;
    struct wp_picture_map dom_prefix;
    struct wp_strmap_entry dom_any;
};

static inline const struct wp_record *wp_table_record(const struct wp_table *t, uint32_t id)
{
    return (const struct wp_record *)(const void *)(t->arena + (size_t)id * 8);
}

/* Which records a lookup may see (CommuniGate's prefixes). */
struct wp_lookup_mode {
    bool access;  /* a login name, not a mail address */
    bool trusted; /* the client may relay: NoRelay: records exist for it */
};

/* Parse a table held in buf (taken over and freed, must be NUL-terminated at len).
 * Every problem goes to err as "fname:line: message"; returns NULL if there
 * was any error. */
struct wp_table *wp_table_parse(char *buf, size_t len, const char *fname, const char *main_domain,
                                struct wp_errors *err);
struct wp_table *wp_table_load(const char *path, const char *main_domain, struct wp_errors *err);
void wp_table_free(struct wp_table *t);

const char *wp_prefix_name(enum wp_prefix p);

/* The record as a table line would write it ("Relay:<*@a.dom> = b.via",
 * "old.dom = error 5.1.1 gone"); false if it did not fit (then cut). */
bool wp_table_record_format(const struct wp_record *rec, char *out, size_t size);

/* Does any mail record (not Access:/Signal:) have a left side whose domain
 * matches this one?  (Postfix's relay_domains question.) */
bool wp_table_mentions_domain(const struct wp_table *t, const char *domain);

/* The first applicable record, in the CommuniGate order: exact address,
 * wildcard address, exact domain, wildcard domain.  caps receive the '*'
 * matches (local's first); *ncaps their number.  NULL if none. */
const struct wp_record *wp_table_lookup(const struct wp_table *t, const char *local, const char *domain,
                                        const struct wp_lookup_mode *mode, struct wp_capture caps[2],
                                        size_t *ncaps);
/* The same, for a caller that has the lengths and wp_hash_fwd(domain) at
 * hand already (the resolver hashes each domain once for all its maps). */
const struct wp_record *wp_table_lookup_hashed(const struct wp_table *t, const char *local, size_t llen,
                                               const char *domain, size_t dlen, uint64_t dhash,
                                               const struct wp_lookup_mode *mode, struct wp_capture caps[2],
                                               size_t *ncaps);

#endif
