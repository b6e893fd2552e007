/* SPDX-License-Identifier: MIT */
/*
 * accept.c - the accept guard and rate-limited warnings (accept.h).
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "lib/accept.h"
#include "lib/log.h"
#include "lib/util.h"

static void set_enabled(struct wp_accept_guard *g, bool on)
{
    for (size_t i = 0; i < g->n; i++)
        if (g->ls[i]) {
            if (on)
                evconnlistener_enable(g->ls[i]);
            else
                evconnlistener_disable(g->ls[i]);
        }
    g->paused = !on;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct wp_accept_guard *g = arg;
    if (g->paused)
        set_enabled(g, true); /* still out of descriptors: the next error pauses again */
}

void wp_accept_guard_init(struct wp_accept_guard *g, struct event_base *base, struct evconnlistener **ls,
                          size_t n)
{
    memset(g, 0, sizeof(*g));
    g->base = base;
    g->ls = ls;
    g->n = n;
    g->retry = evtimer_new(base, on_retry, g);
}

void wp_accept_guard_free(struct wp_accept_guard *g)
{
    if (g->retry)
        event_free(g->retry);
    g->retry = NULL;
    /* The listeners go with it: connections freed later touch nothing. */
    g->ls = NULL;
    g->n = 0;
    g->paused = false;
}

static bool out_of_descriptors(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

void wp_accept_guard_error(struct wp_accept_guard *g, int err, const char *what)
{
    if (!out_of_descriptors(err)) {
        /* Not ours to cure (a listener gone bad): pause a little all the
         * same, so that a persistent error cannot spin the loop either. */
        if (!g->episode)
            wp_warn("%s: accept: %s", what, strerror(err));
    } else if (!g->episode) {
        wp_warn("%s: accept: %s: not accepting connections until a descriptor is free", what, strerror(err));
    }
    if (!g->episode) {
        g->episode = true;
        g->since_ms = wp_now_ms();
        g->failures = 0;
    }
    g->failures++;
    set_enabled(g, false);
    struct timeval tv = {WP_ACCEPT_RETRY_MS / 1000, (WP_ACCEPT_RETRY_MS % 1000) * 1000};
    evtimer_add(g->retry, &tv);
}

void wp_accept_guard_accepted(struct wp_accept_guard *g)
{
    if (!g->episode)
        return;
    g->episode = false;
    wp_notice("accepting connections again after %llu ms (%lu failed attempt%s)",
              (unsigned long long)(wp_now_ms() - g->since_ms), g->failures, g->failures == 1 ? "" : "s");
}

void wp_accept_guard_freed(struct wp_accept_guard *g)
{
    if (g->paused) {
        evtimer_del(g->retry);
        set_enabled(g, true);
    }
}

bool wp_ratelimit_pass(struct wp_ratelimit *r, uint64_t now_ms, unsigned interval_ms,
                       unsigned long *suppressed)
{
    if (now_ms < r->next_ms) {
        r->suppressed++;
        return false;
    }
    r->next_ms = now_ms + interval_ms;
    *suppressed = r->suppressed;
    r->suppressed = 0;
    return true;
}
