/* SPDX-License-Identifier: MIT */
/*
 * strmap.c - linear-probing hash index with caller-supplied hashes.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "lib/strmap.h"
#include "lib/util.h"

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
        uint64_t h = wp_strmap_mix64(m->slots[i].hash32);
        m->filter[wp_strmap_filter_word(m, h)] |= wp_strmap_filter_bits(h);
    }
}

const struct wp_strmap_entry *wp_strmap_get(const struct wp_strmap *m, uint64_t hash, const char *key,
                                            size_t len)
{
    if (!wp_strmap_may_contain(m, hash)) /* also for an empty map */
        return NULL;
    uint32_t h32 = (uint32_t)hash;
    for (size_t i = wp_strmap_slot_of(h32, m->cap);; i = (i + 1) & (m->cap - 1)) {
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
        size_t j = wp_strmap_slot_of(old.slots[i].hash32, m->cap);
        while (m->slots[j].key)
            j = (j + 1) & (m->cap - 1);
        m->slots[j] = old.slots[i];
    }
    free(old.slots);
}

struct wp_strmap_entry *wp_strmap_put(struct wp_strmap *m, uint64_t hash, const char *key, size_t len)
{
    if (len > WP_STRMAP_KEY_MAX)
        abort(); /* a caller's bug: every key is bounded long before this */
    if (!m->cap)
        wp_strmap_init(m, 8);
    if (m->filter) {
        free(m->filter);
        m->filter = NULL;
    }
    if ((m->count + 1) * 2 > m->cap)
        grow(m);
    uint32_t h32 = (uint32_t)hash;
    size_t i = wp_strmap_slot_of(h32, m->cap);
    for (;; i = (i + 1) & (m->cap - 1)) {
        struct wp_strmap_entry *e = &m->slots[i];
        if (!e->key) {
            e->key = key;
            e->hash32 = h32;
            e->len = (uint16_t)len;
            e->flags = 0;
            e->head = e->tail = e->head2 = e->tail2 = WP_NONE;
            m->count++;
            return e;
        }
        if (e->hash32 == h32 && e->len == len && wp_strnieq(e->key, key, len))
            return e;
    }
}
