/* SPDX-License-Identifier: MIT */
/*
 * anvil.h - waypost-odmrd's per-client-address accounting, after Postfix's
 * anvil and Dovecot's auth penalty (issue 17):
 *
 *   connections   open connections per address, against
 *                 odmr.max_connections_per_ip
 *   AUTH penalty  consecutive failed AUTHs per address, across its
 *                 connections; while it has any, the address's AUTH
 *                 attempts are checked one at a time, each
 *                 base * 2^(failures-1) (at most WP_ANVIL_PENALTY_MAX_MS)
 *                 after the one before: 200 parallel guessers from one
 *                 address get the rate of one.  A success clears it;
 *                 WP_ANVIL_FORGET_MS after the last failure it is forgotten.
 *
 * Pure (no I/O, the clock is an argument), for unit tests and the fuzzer.
 * Limits: keys are the address text (an IPv6 client that owns a /64 has
 * many); at most max_entries addresses are tracked: past that a new
 * address is let through untracked (the global connection limit still
 * holds) and wp_anvil_full says so.  Lookups hash the address.
 */
#ifndef WP_ODMR_ANVIL_H
#define WP_ODMR_ANVIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WP_ANVIL_PENALTY_MAX_MS 15000
#define WP_ANVIL_FORGET_MS (3600 * 1000)

struct wp_anvil;

struct wp_anvil *wp_anvil_new(size_t max_entries);
void wp_anvil_free(struct wp_anvil *a);

/* A connection from addr: counted, true; false when limit (> 0) open
 * connections from addr exist already (not counted). */
bool wp_anvil_connect(struct wp_anvil *a, const char *addr, int limit, uint64_t now_ms);
/* The end of a connection wp_anvil_connect counted. */
void wp_anvil_disconnect(struct wp_anvil *a, const char *addr, uint64_t now_ms);

/* An AUTH attempt from addr: when may it be checked?  now_ms when addr has
 * no failures; else the slot after the last one reserved, which this call
 * reserves. */
uint64_t wp_anvil_auth_slot(struct wp_anvil *a, const char *addr, unsigned base_ms, uint64_t now_ms);
void wp_anvil_auth_failed(struct wp_anvil *a, const char *addr, uint64_t now_ms);
void wp_anvil_auth_ok(struct wp_anvil *a, const char *addr);

/* Drop what is no longer needed (no connections, penalty forgotten). */
void wp_anvil_sweep(struct wp_anvil *a, uint64_t now_ms);
size_t wp_anvil_entries(const struct wp_anvil *a);
bool wp_anvil_full(const struct wp_anvil *a);

/* For tests: the failures and open connections counted for addr. */
unsigned wp_anvil_failures(const struct wp_anvil *a, const char *addr);
int wp_anvil_connections(const struct wp_anvil *a, const char *addr);

#endif
