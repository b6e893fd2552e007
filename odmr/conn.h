/* SPDX-License-Identifier: MIT */
/*
 * conn.h - waypost-odmrd's connections, shared by its parts:
 *
 *   conn.c     lines, replies, closing, the event callbacks and accept
 *   lmtp.c     LMTP intake (Postfix hands over the mail of ODMR queues)
 *   session.c  the customer session: EHLO, STARTTLS, AUTH, ATRN
 *   turn.c     the turned delivery: waypost-odmrd as the SMTP client on
 *              the customer's connection after ATRN
 *   odmrd.c    expiry, signals and main() on the daemon skeleton
 *
 * One thread: every function here runs in the event loop.
 */
#ifndef WP_ODMR_CONN_H
#define WP_ODMR_CONN_H

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/accept.h"
#include "lib/daemon.h"
#include "lib/defaults.h"
#include "odmr/anvil.h"
#include "odmr/spool.h"
#include "odmr/decision.h"
#include "odmr/settings.h"
#include "state/snapshot.h"

#define LMTP_RCPTS_MAX 1000
#define OUTPUT_MAX (1024 * 1024) /* unread replies before we give up on a peer */
#define SYNC_EVERY 64            /* removals in a reversed session between directory fsyncs */

struct server {
    struct event_base *base;
    struct wp_daemon *d;      /* the skeleton: holds the current snapshot */
    struct wp_snapshot *snap; /* d's current one (borrowed); new connections take a reference */
    SSL_CTX *tls;
    char hostname[256];
    int connections; /* customer side */
    int max_connections;
    int lmtp_connections; /* the intake: its own limit, customers cannot take it */
    int lmtp_max_connections;
    struct wp_anvil *anvil;         /* per client address: connections, AUTH penalty */
    struct wp_accept_guard guard;   /* out of descriptors: listeners paused */
    struct wp_ratelimit refuse_log; /* refusals: a warning a minute */
    char **busy;                    /* queues an ATRN session is delivering */
    size_t nbusy;
    struct event *expire_ev;
    struct conn *conns;          /* every open connection, freed at shutdown */
    struct wp_control *control;  /* the control socket and running releases (odmr/control.h), or NULL */
    struct wp_odmr_stats *stats; /* counters (odmr.metrics set), else NULL */
};

enum side { SIDE_LMTP, SIDE_CUSTOMER };

enum state {
    ST_CMD,        /* reading commands */
    ST_DATA,       /* LMTP: message text */
    ST_AUTH_PLAIN, /* waiting for the PLAIN response */
    ST_AUTH_CRAM,  /* waiting for the CRAM-MD5 response */
    ST_AUTH_DELAY, /* a failed AUTH: answer after a delay */
    ST_TURN_GREET, /* reversed: waiting for the customer's 220 */
    ST_TURN_EHLO,  /* reversed: EHLO sent */
    ST_TURN_HELO,  /* reversed: HELO sent after EHLO failed */
    ST_TURN_TXN,   /* reversed: MAIL, RCPTs, DATA sent, replies due */
    ST_TURN_DOT,   /* reversed: message sent, final reply due */
    ST_TURN_RSET,  /* reversed: RSET sent */
    ST_TURN_QUIT,  /* reversed: QUIT sent */
    ST_CLOSING,
};

/* One message of the reversed session. */
struct txn {
    bool active;
    struct wp_spool_msg msg;
    bool *accepted; /* per recipient: RCPT got 2xx */
    bool *refused;  /* per recipient: RCPT got 5xx */
    char **why;     /* per recipient: the customer's refusal */
    size_t nwhy;
    size_t reply_no; /* replies of this transaction read so far */
    bool mail_ok;
    bool data_ok; /* the text was sent (not just a lone dot) */
};

struct lmtp_rcpt {
    char *addr;
    char queue[WP_DOMAIN_MAX + 1];
};

struct conn {
    struct server *srv;
    struct conn *next, *prev_conn; /* in srv->conns */
    struct wp_snapshot *snap;
    struct bufferevent *bev;
    enum side side;
    enum state state;
    char peer[80];
    bool counted_ip; /* counted in srv->anvil under peer */
    int bad_commands;
    /* LMTP */
    bool lhlo;
    bool have_mail;
    char *sender;
    struct lmtp_rcpt *rcpts;
    size_t nrcpts;
    struct evbuffer *body;
    bool too_big;
    /* customer */
    bool ehlo;
    bool tls;
    char user[256];
    int auth_failures;
    char challenge[300];
    struct event *timer;
    struct event *auth_deadline; /* customer: odmr.auth_timeout from the greeting until AUTH succeeds */
    char *auth_pending;          /* an AUTH response waiting for the address's penalty slot */
    bool auth_pending_cram;      /* ... for CRAM-MD5 (else PLAIN) */
    struct event *closer;        /* ST_CLOSING: frees the connection once its output is out */
    uint64_t close_deadline;
    /* reversed delivery */
    char **queues;    /* ours while we deliver: in srv->busy, and locked */
    int *queue_locks; /* wp_spool_lock's descriptors (-1: no directory yet) */
    size_t nqueues, qi;
    char **ids;
    size_t nids, ii;
    bool pipelining;
    struct txn cur;  /* the message whose MAIL, RCPT and DATA replies are due */
    struct txn prev; /* sent in full, its final reply due (before cur's replies) */
    unsigned delivered;
    unsigned unsynced; /* removals from the current queue not yet fsync'ed */
    /* The command being answered, counted at its final reply (decision.h);
     * only with counters on. */
    int cmd;              /* enum wp_odmr_cmd, or -1: none */
    unsigned cmd_replies; /* final replies still due (END-OF-MESSAGE: one per recipient) */
    int cmd_code;         /* the highest reply code so far */
    uint64_t cmd_start;   /* monotonic ns: the whole command read (moved on by a resume) */
    uint64_t cmd_paused;  /* ns spent when a deliberate delay began, 0: the clock runs */
};

/* The arguments of one listener's accept callback. */
struct listener_arg {
    struct server *srv;
    enum side side;
    bool tls;
};

/* conn.c */
static inline enum wp_odmr_proto wp_conn_proto(const struct conn *c)
{
    return c->side == SIDE_LMTP ? WP_OP_LMTP : WP_OP_ODMR;
}
/* A command begins (its whole line read); replies: its final replies. */
void wp_conn_cmd_begin(struct conn *c, enum wp_odmr_cmd cmd, unsigned replies);
/* A deliberate delay of the answer (a failed AUTH): the clock stops, and
 * runs again at the resume. */
void wp_conn_cmd_pause(struct conn *c);
void wp_conn_cmd_resume(struct conn *c);
bool wp_conn_line_records(const struct conn *c);
void wp_conn_free_line(const void *data, size_t len, void *arg);
void wp_conn_reply(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int wp_conn_get_line(struct evbuffer *in, char *buf, size_t size);
bool wp_conn_queue_busy(const struct server *srv, const char *q);
/* In a forked child that serves no connection (a release process): close
 * its copies of the connections' sockets and queue locks, so that a
 * connection the daemon closes is closed and a lock an ATRN session lets go
 * is free, whatever the child still does. */
void wp_conn_close_inherited(struct server *srv);
void wp_conn_txn_reset(struct conn *c);
void wp_conn_txn_free(struct txn *t);
void wp_conn_free(struct conn *c);
void wp_conn_close(struct conn *c);
bool wp_conn_refuse(struct conn *c, const char *text);
void wp_conn_set_timeouts(struct conn *c);
void wp_conn_process(struct conn *c);
void wp_conn_on_read(struct bufferevent *bev, void *arg);
void wp_conn_on_event(struct bufferevent *bev, short what, void *arg);
void wp_conn_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                       void *arg);
/* accept() failed (out of descriptors): the guard pauses the listeners. */
void wp_conn_on_accept_error(struct evconnlistener *l, void *arg);

/* lmtp.c */
void wp_lmtp_command(struct conn *c, const char *line);
bool wp_lmtp_data(struct conn *c);

/* session.c */
void wp_session_auth_plain(struct conn *c, const char *b64);
void wp_session_auth_cram(struct conn *c, const char *b64);
void wp_session_command(struct conn *c, const char *line);

/* turn.c */
void wp_turn_queue_sync(struct conn *c);
bool wp_turn_input(struct conn *c);

#endif
