/* SPDX-License-Identifier: MIT */
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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/util.h"

#define WP_NONE UINT32_MAX

/* 32 bytes, so that an entry never straddles two cache lines.  head/tail
 * and head2/tail2 are two chains (or values) the user keeps per key: the
 * Router table files two kinds of record under one domain. */
struct wp_strmap_entry {
    const char *key; /* NULL: empty slot */
    uint32_t hash32;
    uint16_t len;
    uint16_t flags; /* the user's */
    uint32_t head;
    uint32_t tail;
    uint32_t head2;
    uint32_t tail2;
};

#define WP_STRMAP_KEY_MAX UINT16_MAX

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
/* The hash of "a@b" from the forward hashes of a and b: a lookup that has
 * hashed the domain already hashes only the local part. */
static inline uint64_t wp_hash_pair(uint64_t ha, uint64_t hb)
{
    ha ^= ha >> 33;
    ha *= 0xff51afd7ed558ccdULL;
    ha ^= ha >> 33;
    return ha ^ hb;
}

/* Where a 32-bit hash goes: its first slot, and its filter word. */
static inline size_t wp_strmap_slot_of(uint64_t hash, size_t cap)
{
    /* Mix the 32-bit hash once more: FNV's low bits are weak for short keys. */
    hash |= hash << 32;
    hash ^= hash >> 33;
    hash *= 0xff51afd7ed558ccdULL;
    hash ^= hash >> 33;
    return (size_t)hash & (cap - 1);
}

static inline uint64_t wp_strmap_mix64(uint32_t h32)
{
    uint64_t h = (uint64_t)h32 * 0x9e3779b97f4a7c15ULL;
    return h ^ (h >> 29);
}

/* A blocked Bloom filter: both bits of a key sit in one 64-bit word, so a
 * check costs one cache line however large the map. */
static inline size_t wp_strmap_filter_word(const struct wp_strmap *m, uint64_t h)
{
    return (size_t)(h >> 12) & (m->filter_mask >> 6);
}

static inline uint64_t wp_strmap_filter_bits(uint64_t h)
{
    return (1ULL << (h & 63)) | (1ULL << ((h >> 6) & 63));
}

void wp_strmap_init(struct wp_strmap *m, size_t expected);
void wp_strmap_free(struct wp_strmap *m);
/* Build the Bloom filter once all keys are in (about a byte per key, so it
 * stays in cache when the map does not): a lookup of an absent key then
 * rarely touches the slots at all.  Puts after sealing drop the filter. */
void wp_strmap_seal(struct wp_strmap *m);
/* Start loading what wp_strmap_get(m, hash, ...) will read (the filter
 * word and the first slot) without waiting for it: a caller that knows
 * several keys it will look up lets their cache misses overlap. */
static inline void wp_strmap_prefetch(const struct wp_strmap *m, uint64_t hash)
{
    if (!m->count)
        return;
    uint32_t h32 = (uint32_t)hash;
    if (m->filter)
        __builtin_prefetch(&m->filter[wp_strmap_filter_word(m, wp_strmap_mix64(h32))]);
    __builtin_prefetch(&m->slots[wp_strmap_slot_of(h32, m->cap)]);
}

/* False when the key is certainly absent (its filter bits are not set);
 * true when it may be there.  Reads one filter word, never the slots. */
static inline bool wp_strmap_may_contain(const struct wp_strmap *m, uint64_t hash)
{
    if (!m->count)
        return false;
    if (!m->filter)
        return true;
    uint64_t h = wp_strmap_mix64((uint32_t)hash), bits = wp_strmap_filter_bits(h);
    return (m->filter[wp_strmap_filter_word(m, h)] & bits) == bits;
}

/* Find the entry for key (compared case-insensitively); NULL if absent. */
const struct wp_strmap_entry *wp_strmap_get(const struct wp_strmap *m, uint64_t hash, const char *key,
                                            size_t len);
/* Find or create; a new entry has every chain WP_NONE and no flags.  len
 * must not pass WP_STRMAP_KEY_MAX (callers' keys are far shorter). */
struct wp_strmap_entry *wp_strmap_put(struct wp_strmap *m, uint64_t hash, const char *key, size_t len);

#endif
