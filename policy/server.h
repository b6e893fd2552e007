/* SPDX-License-Identifier: MIT */
/*
 * server.h - waypost-policyd's server: the event loops, connections and
 * workers (server.c), shared with the ETRN jobs (etrnjob.c) and main()
 * (policyd.c).
 *
 * One process, a few worker threads (policyd.threads, default one per
 * core), each running its own libevent loop.  The main thread accepts the
 * connections and hands each one to the worker with the fewest, where it
 * stays.  All workers answer from the skeleton's current snapshot
 * (lib/daemon.h); each worker picks a reloaded one up before its next
 * request.
 */
#ifndef WP_POLICY_SERVER_H
#define WP_POLICY_SERVER_H

#include <event2/event.h>
#include <event2/listener.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "lib/accept.h"
#include "lib/daemon.h"
#include "policy/framing.h"
#include "policy/sendbatch.h"
#include "policy/stats.h"
#include "state/snapshot.h"

struct server {
    struct wp_daemon *d;            /* the skeleton: the current snapshot and its generation */
    atomic_int connections;         /* all endpoints */
    atomic_int *ep_connections;     /* per endpoint (index into listens): each has max_connections of
                                     * its own, so a client holding one endpoint's cannot starve
                                     * another (the socketmap Postfix's lookups use) */
    int max_connections;            /* per endpoint */
    struct wp_accept_guard guard;   /* out of descriptors: listeners paused (main thread) */
    struct wp_ratelimit refuse_log; /* refusals: a warning a minute (main thread) */
    int idle_timeout;
    size_t max_request;
    struct wp_listen *listens; /* from the startup snapshot: fixed until restart */
    int *fds;
    size_t nlisten;
    struct evconnlistener **listeners; /* in main()'s event base */
    struct worker *workers;
    int nworkers;
    int next_worker;          /* where the search for the least busy worker starts */
    struct wp_pstats *stats;  /* counters (NULL: none kept, the metrics endpoint is off) */
    const char *metrics_text; /* policyd.metrics at startup */
};

struct conn;
struct etrn_job;

/* A worker owns its event base outright (no other thread touches it, so the
 * base runs without locks) and every connection handed to it. */
struct worker {
    struct server *srv;
    pthread_t thread;
    bool started; /* the thread runs (join it) */
    struct event_base *base;
    struct event *tick;         /* once a second: the clock of the idle timeout */
    int tick_fd;                /* the timerfd behind it */
    struct event *inbox;        /* new connections (and the stop message) from main() */
    int inbox_fds[2];           /* a pipe: read end, write end */
    atomic_int nconns;          /* open connections, read by main() to balance the load */
    unsigned ticks;             /* seconds since the worker started */
    struct conn *conns;         /* every open connection, for the idle sweep */
    struct conn *flush_head;    /* connections with answers to send at the end of this pass */
    struct wp_snapshot *snap;   /* this worker's reference */
    int index;                  /* in srv->workers: its counters in srv->stats */
    struct wp_pstats_map *smap; /* the slots of snap's records (with stats) */
    unsigned generation;
    struct wp_sendbatch batch; /* the answers of one pass (see flush_queued) */
};

/*
 * One client connection.  Requests are read straight into `in` and parsed
 * where they lie; answers are formatted straight into `out` and sent with
 * one write for all the requests one read brought (Postfix sends one at a
 * time, so usually one read, one answer, one write), at the end of the
 * event-loop pass (see wp_server_process_input).
 */
struct conn {
    struct worker *w;
    struct conn *prev, *next; /* the worker's list */
    evutil_socket_t fd;
    struct event *rev; /* persistent read event, armed while we read */
    struct event *wev; /* write event, armed only while answers wait to be sent */
    const struct wp_listen *listen;
    bool closing;         /* close once the output is flushed */
    bool reading;         /* rev is armed */
    unsigned last_active; /* worker tick of the last byte read or written */
    char *in;             /* unparsed request bytes */
    size_t in_len, in_cap, in_max;
    char *out; /* answers not yet written: out[out_sent .. out_len) */
    size_t out_len, out_sent, out_cap;
    struct wp_policy_reader policy; /* the policy request read so far */
    struct etrn_job *job;           /* an ETRN release whose answer is pending: input waits */
    struct conn *flush_next;        /* on the worker's flush list */
    bool flush_queued;
};

/* Stop answering (and reading) while more than this waits to be written:
 * a client that does not read its answers cannot make us buffer more. */
#define OUTPUT_HIGH_WATER (64 * 1024)
#define INPUT_INITIAL 4096
#define OUTPUT_INITIAL 4096
/* A netstring header ("<9 digits>:" and ","), or "get " and "\r\n", on top
 * of max_request: the input buffer always holds one whole request. */
#define FRAMING_MAX 16

/* The snapshot for the next request: refreshed when a reload happened. */
const struct wp_snapshot *wp_server_snapshot(struct worker *w);

static inline size_t wp_server_output_pending(const struct conn *c)
{
    return c->out_len - c->out_sent;
}

/* The start of the event-loop pass that read a request: libevent's cached
 * time, which it takes after every wait anyway (free), the same for every
 * request of the pass.  The latency histogram measures from there to the
 * end of the pass, when its answers go out (wp_pstats_pass_end: one clock read a
 * pass).  Wall-clock time (libevent's cache is): a step of the clock gives
 * a 0 or an outsized sample, nothing worse. */
static inline uint64_t wp_server_pass_start_ns(struct event_base *base)
{
    struct timeval tv;
    if (event_base_gettimeofday_cached(base, &tv) != 0)
        return 0;
    return (uint64_t)tv.tv_sec * 1000000000u + (uint64_t)tv.tv_usec * 1000u;
}

/* Count a malformed or oversized request (with counters on). */
void wp_server_count_error(struct conn *c);

void wp_server_conn_free(struct conn *c);
/* Close after what was written has gone out. */
void wp_server_close_after_flush(struct conn *c);
/* Append a, b, d (b, d may be NULL) to the output, as a netstring if asked. */
void wp_server_send_answer(struct conn *c, bool netstring, const char *a, const char *b, const char *d);
/* Send what we can now; false: the connection failed (free it). */
bool wp_server_flush_output(struct conn *c);
/* Answer every complete request; false if the connection is gone or closing. */
bool wp_server_process_input(struct conn *c);

/* Workers, their threads, and the listeners in main()'s base; false with a
 * logged error. */
bool wp_server_start(struct server *srv, struct event_base *base, int nworkers, bool io_uring);
/* No new connections, the workers stopped and joined, everything freed. */
void wp_server_stop(struct server *srv);

/* ETRN (etrnjob.c): answer the request in c->policy now, or start the
 * flushes (true: the connection waits for the job's answer). */
bool wp_etrnjob_start(struct conn *c);
void wp_etrnjob_free(struct etrn_job *job);

#endif
