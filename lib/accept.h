/* SPDX-License-Identifier: MIT */
/*
 * accept.h - accepting connections when the other side is hostile (issue
 * 17): what to do when accept() fails for want of descriptors, and warnings
 * that a flood cannot multiply.
 *
 * At the descriptor limit (EMFILE, ENFILE, ENOBUFS, ENOMEM) a listener that
 * stays armed wakes the loop again at once: the daemon spins and logs a line
 * per wake.  The guard disables every listener it watches instead, logs one
 * warning for the episode, and arms them again when the daemon says a
 * descriptor was freed (wp_accept_guard_freed) or, for descriptors freed
 * elsewhere, after WP_ACCEPT_RETRY_MS; the episode ends, with one line, at
 * the next accept that succeeds.
 *
 * Limits: the guard belongs to the event base of its listeners and must be
 * used from that base's thread only.
 */
#ifndef WP_ACCEPT_H
#define WP_ACCEPT_H

#include <event2/event.h>
#include <event2/listener.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WP_ACCEPT_RETRY_MS 250

struct wp_accept_guard {
    struct event_base *base;
    struct evconnlistener **ls; /* borrowed */
    size_t n;
    struct event *retry;
    bool paused;            /* the listeners are disabled */
    bool episode;           /* out of descriptors since the last good accept */
    unsigned long failures; /* accept() failures in this episode */
    uint64_t since_ms;
};

void wp_accept_guard_init(struct wp_accept_guard *g, struct event_base *base, struct evconnlistener **ls,
                          size_t n);
/* Before the listeners are freed, or after: the guard forgets them. */
void wp_accept_guard_free(struct wp_accept_guard *g);
/* From the listeners' error callback: errno-style error err. */
void wp_accept_guard_error(struct wp_accept_guard *g, int err, const char *what);
/* An accept succeeded: an episode, if any, is over. */
void wp_accept_guard_accepted(struct wp_accept_guard *g);
/* A descriptor was closed: paused listeners try again now. */
void wp_accept_guard_freed(struct wp_accept_guard *g);

/* A warning that repeats at most once per interval; what it suppressed in
 * between is counted and said with the next one. */
struct wp_ratelimit {
    uint64_t next_ms;
    unsigned long suppressed;
};
/* May the warning go out now?  *suppressed: how many were held back since
 * the last one that went out (then reset). */
bool wp_ratelimit_pass(struct wp_ratelimit *r, uint64_t now_ms, unsigned interval_ms,
                       unsigned long *suppressed);

#endif
