/* SPDX-License-Identifier: MIT */
/*
 * anvil.c - per-client-address connection counts and AUTH penalties
 * (anvil.h): a chained hash table of addresses.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "odmr/anvil.h"

#define BUCKETS 1024 /* a power of two */
#define ADDR_MAX 80

struct entry {
    struct entry *next;
    char addr[ADDR_MAX];
    int conns;
    unsigned failures;
    uint64_t last_failure_ms;
    uint64_t next_slot_ms; /* the last AUTH check reserved */
};

struct wp_anvil {
    struct entry *bucket[BUCKETS];
    size_t n, max;
    bool full; /* an address went untracked since the last sweep */
};

static size_t hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h & (BUCKETS - 1);
}

struct wp_anvil *wp_anvil_new(size_t max_entries)
{
    struct wp_anvil *a = wp_calloc(1, sizeof(*a));
    a->max = max_entries;
    return a;
}

void wp_anvil_free(struct wp_anvil *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < BUCKETS; i++)
        for (struct entry *e = a->bucket[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    free(a);
}

static bool forgotten(const struct entry *e, uint64_t now_ms)
{
    return e->failures == 0 || now_ms - e->last_failure_ms >= WP_ANVIL_FORGET_MS;
}

static bool idle(const struct entry *e, uint64_t now_ms)
{
    return e->conns <= 0 && forgotten(e, now_ms) && e->next_slot_ms <= now_ms;
}

/* The entry of addr; created when create (NULL when the table is full). */
static struct entry *find(struct wp_anvil *a, const char *addr, bool create, uint64_t now_ms)
{
    size_t h = hash(addr);
    for (struct entry **p = &a->bucket[h]; *p; p = &(*p)->next) {
        struct entry *e = *p;
        if (strncmp(e->addr, addr, ADDR_MAX - 1) == 0) {
            if (e->failures && forgotten(e, now_ms))
                e->failures = 0;
            return e;
        }
    }
    if (!create)
        return NULL;
    if (a->n >= a->max) {
        wp_anvil_sweep(a, now_ms);
        if (a->n >= a->max) {
            a->full = true;
            return NULL;
        }
    }
    struct entry *e = wp_calloc(1, sizeof(*e));
    wp_strlcpy(e->addr, addr, sizeof(e->addr));
    e->next = a->bucket[h];
    a->bucket[h] = e;
    a->n++;
    return e;
}

static struct entry *find_const(const struct wp_anvil *a, const char *addr)
{
    for (struct entry *e = a->bucket[hash(addr)]; e; e = e->next)
        if (strncmp(e->addr, addr, ADDR_MAX - 1) == 0)
            return e;
    return NULL;
}

bool wp_anvil_connect(struct wp_anvil *a, const char *addr, int limit, uint64_t now_ms)
{
    struct entry *e = find(a, addr, true, now_ms);
    if (!e)
        return true;
    if (limit > 0 && e->conns >= limit)
        return false;
    e->conns++;
    return true;
}

void wp_anvil_disconnect(struct wp_anvil *a, const char *addr, uint64_t now_ms)
{
    struct entry *e = find(a, addr, false, now_ms);
    if (e && e->conns > 0)
        e->conns--;
}

uint64_t wp_anvil_auth_slot(struct wp_anvil *a, const char *addr, unsigned base_ms, uint64_t now_ms)
{
    struct entry *e = find(a, addr, false, now_ms);
    if (!e || e->failures == 0)
        return now_ms;
    unsigned shift = e->failures - 1 > 12 ? 12 : e->failures - 1;
    uint64_t delay = (uint64_t)(base_ms ? base_ms : 1000) << shift;
    if (delay > WP_ANVIL_PENALTY_MAX_MS)
        delay = WP_ANVIL_PENALTY_MAX_MS;
    uint64_t slot = (e->next_slot_ms > now_ms ? e->next_slot_ms : now_ms) + delay;
    e->next_slot_ms = slot;
    return slot;
}

void wp_anvil_auth_failed(struct wp_anvil *a, const char *addr, uint64_t now_ms)
{
    struct entry *e = find(a, addr, true, now_ms);
    if (!e)
        return;
    if (e->failures < 1000000)
        e->failures++;
    e->last_failure_ms = now_ms;
}

void wp_anvil_auth_ok(struct wp_anvil *a, const char *addr)
{
    struct entry *e = find(a, addr, false, 0);
    if (e)
        e->failures = 0;
}

void wp_anvil_sweep(struct wp_anvil *a, uint64_t now_ms)
{
    for (size_t i = 0; i < BUCKETS; i++)
        for (struct entry **p = &a->bucket[i]; *p;) {
            struct entry *e = *p;
            if (idle(e, now_ms)) {
                *p = e->next;
                free(e);
                a->n--;
            } else {
                p = &e->next;
            }
        }
    a->full = false;
}

size_t wp_anvil_entries(const struct wp_anvil *a)
{
    return a->n;
}

bool wp_anvil_full(const struct wp_anvil *a)
{
    return a->full;
}

unsigned wp_anvil_failures(const struct wp_anvil *a, const char *addr)
{
    const struct entry *e = find_const(a, addr);
    return e ? e->failures : 0;
}

int wp_anvil_connections(const struct wp_anvil *a, const char *addr)
{
    const struct entry *e = find_const(a, addr);
    return e ? e->conns : 0;
}
