/*
 * strmap.c - linear-probing hash index with caller-supplied hashes.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "strmap.h"
#include "util.h"

uint64_t wp_hash_fwd(const char *s, size_t len)
{
    uint64_t h = WP_HASH_INIT;
    for (size_t i = 0; i < len; i++)
        h = wp_hash_step(h, s[i]);
    return h;
}

uint64_t wp_hash_bwd(const char *s, size_t len)
{
    uint64_t h = WP_HASH_INIT;
    for (size_t i = len; i > 0; i--)
        h = wp_hash_step(h, s[i - 1]);
    return h;
}

void wp_strmap_init(struct wp_strmap *m, size_t expected)
{
    size_t cap = 16;
    while (cap < expected * 2)
        cap <<= 1;
    m->slots = wp_calloc_huge(cap * sizeof(*m->slots));
    m->cap = cap;
    m->count = 0;
}

void wp_strmap_free(struct wp_strmap *m)
{
    free(m->filter);
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

/* Mix the 32-bit hash once more: FNV's low bits are weak for short keys. */
static size_t slot_of(uint64_t hash, size_t cap)
{
    hash |= hash << 32;
    hash ^= hash >> 33;
    hash *= 0xff51afd7ed558ccdULL;
    hash ^= hash >> 33;
    return (size_t)hash & (cap - 1);
}

static uint64_t mix64(uint32_t h32)
{
    uint64_t h = (uint64_t)h32 * 0x9e3779b97f4a7c15ULL;
    return h ^ (h >> 29);
}

/* A blocked Bloom filter: both bits of a key sit in one 64-bit word, so a
 * check costs one cache line however large the map. */
static size_t filter_word(const struct wp_strmap *m, uint64_t h)
{
    return (size_t)(h >> 12) & (m->filter_mask >> 6);
}

static uint64_t filter_bits(uint64_t h)
{
    return (1ULL << (h & 63)) | (1ULL << ((h >> 6) & 63));
}

void wp_strmap_seal(struct wp_strmap *m)
{
    free(m->filter);
    m->filter = NULL;
    if (m->count < 64)
        return; /* small maps live in cache anyway */
    size_t bits = 512;
    while (bits < m->count * 8)
        bits <<= 1;
    m->filter = wp_calloc(bits / 64, sizeof(uint64_t));
    m->filter_mask = bits - 1;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].key)
            continue;
        uint64_t h = mix64(m->slots[i].hash32);
        m->filter[filter_word(m, h)] |= filter_bits(h);
    }
}

const struct wp_strmap_entry *wp_strmap_get(const struct wp_strmap *m, uint64_t hash,
                                            const char *key, size_t len)
{
    if (!m->count)
        return NULL;
    uint32_t h32 = (uint32_t)hash;
    if (m->filter) {
        uint64_t h = mix64(h32), bits = filter_bits(h);
        if ((m->filter[filter_word(m, h)] & bits) != bits)
            return NULL;
    }
    for (size_t i = slot_of(h32, m->cap);; i = (i + 1) & (m->cap - 1)) {
        const struct wp_strmap_entry *e = &m->slots[i];
        if (!e->key)
            return NULL;
        /* Keys and probes are mostly in the same case already: memcmp()
         * compares a word at a time, the folding compare a byte. */
        if (e->hash32 == h32 && e->len == len &&
            (memcmp(e->key, key, len) == 0 || wp_strnieq(e->key, key, len)))
            return e;
    }
}

static void grow(struct wp_strmap *m)
{
    struct wp_strmap old = *m;
    m->cap = old.cap * 2;
    m->slots = wp_calloc_huge(m->cap * sizeof(*m->slots));
    for (size_t i = 0; i < old.cap; i++) {
        if (!old.slots[i].key)
            continue;
        /* Slots are placed by hash32 alone, so growing needs no key rehash
         * (we could not: the map does not know the key's hash direction). */
        size_t j = slot_of(old.slots[i].hash32, m->cap);
        while (m->slots[j].key)
            j = (j + 1) & (m->cap - 1);
        m->slots[j] = old.slots[i];
    }
    free(old.slots);
}

struct wp_strmap_entry *wp_strmap_put(struct wp_strmap *m, uint64_t hash, const char *key,
                                      size_t len)
{
    if (!m->cap)
        wp_strmap_init(m, 8);
    if (m->filter) {
        free(m->filter);
        m->filter = NULL;
    }
    if ((m->count + 1) * 2 > m->cap)
        grow(m);
    uint32_t h32 = (uint32_t)hash;
    size_t i = slot_of(h32, m->cap);
    for (;; i = (i + 1) & (m->cap - 1)) {
        struct wp_strmap_entry *e = &m->slots[i];
        if (!e->key) {
            e->key = key;
            e->hash32 = h32;
            e->len = (uint32_t)len;
            e->head = e->tail = WP_NONE;
            m->count++;
            return e;
        }
        if (e->hash32 == h32 && e->len == len && wp_strnieq(e->key, key, len))
            return e;
    }
}
