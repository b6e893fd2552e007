/*
 * strmap.h - open-addressing hash index from strings to chains of uint32 ids.
 *
 * Built once (single writer), then read by any number of threads.  Keys are
 * not copied: they must outlive the map (Router keys point into the table
 * buffer).  Each key owns a chain head/tail so that records sharing a key
 * keep table order.  The hash is supplied by the caller, so that suffix and
 * prefix lookups can compute it incrementally (wp_hash_* below).
 */
#ifndef WP_STRMAP_H
#define WP_STRMAP_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define WP_NONE UINT32_MAX

struct wp_strmap_entry {
    const char *key; /* NULL: empty slot */
    uint32_t hash32;
    uint32_t len;
    uint32_t head;
    uint32_t tail;
};

struct wp_strmap {
    struct wp_strmap_entry *slots;
    size_t cap; /* power of two */
    size_t count;
    uint64_t *filter;   /* after wp_strmap_seal(): a small Bloom filter */
    size_t filter_mask; /* bits - 1 */
};

/* FNV-1a, 64 bit, over lower-cased bytes.  Forward hashes extend a prefix by
 * one byte at its end; backward hashes extend a suffix by one byte at its
 * start.  A key stored with one direction must be looked up with the same. */
#define WP_HASH_INIT 0xcbf29ce484222325ULL
static inline uint64_t wp_hash_step(uint64_t h, char c)
{
    return (h ^ (unsigned char)wp_lower(c)) * 0x100000001b3ULL;
}
uint64_t wp_hash_fwd(const char *s, size_t len);
uint64_t wp_hash_bwd(const char *s, size_t len);

void wp_strmap_init(struct wp_strmap *m, size_t expected);
void wp_strmap_free(struct wp_strmap *m);
/* Build the Bloom filter once all keys are in (about a byte per key, so it
 * stays in cache when the map does not): a lookup of an absent key then
 * rarely touches the slots at all.  Puts after sealing drop the filter. */
void wp_strmap_seal(struct wp_strmap *m);
/* Find the entry for key (compared case-insensitively); NULL if absent. */
const struct wp_strmap_entry *wp_strmap_get(const struct wp_strmap *m, uint64_t hash,
                                            const char *key, size_t len);
/* Find or create; a new entry has head = tail = WP_NONE. */
struct wp_strmap_entry *wp_strmap_put(struct wp_strmap *m, uint64_t hash, const char *key,
                                      size_t len);

#endif
