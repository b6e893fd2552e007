/* SPDX-License-Identifier: MIT */
/*
 * waypost-odmrd - the ATRN provider (RFC 2645, On-Demand Mail Relay).
 *
 *   waypost-odmrd [-c FILE] [-f] [-t]
 *
 * Intake: Postfix delivers mail for ODMR queues over LMTP (odmr.lmtp_listen,
 * by default the socket named in postfix.odmr_transport).  Each recipient's
 * queue is its Router route's queue (the next-hop name, so merged domains
 * share one); recipients whose route is not ODMR get a 550.  A message is
 * stored per queue (spool.h) and fsync'ed before its 250 goes out.
 *
 * Customer side (odmr.listen, port 366 by default; a "tls:" endpoint speaks
 * TLS from the first byte): EHLO advertises STARTTLS (with odmr.tls_cert),
 * AUTH CRAM-MD5 (PLAIN only under TLS) and ATRN.  Before ATRN only EHLO,
 * HELO, AUTH, STARTTLS, NOOP, RSET and QUIT are served.  The account's
 * password comes from odmr.passwd_file (Dovecot's format, auth.h), the
 * queues it may release from odmr.accounts.  "ATRN [d1,d2...]" names
 * queues, or domains merged into one (no argument: all the account's
 * queues); after "250" the roles turn: the customer greets with 220 and
 * waypost-odmrd delivers as an SMTP client on the same connection.  A
 * recipient leaves the spool only after the customer's 250 for the
 * message; a 5xx returns it to the sender with a DSN.  One ATRN session at
 * a time per queue (another gets 451).
 *
 * Expiry: a message older than odmr.expire is returned to its sender with a
 * DSN injected through odmr.dsn_via (null sender) and removed.
 *
 * Limits: odmr.max_connections (both sides together), odmr.timeout for
 * every wait, WP_ODMR_LINE_MAX per command line, odmr.max_message_size,
 * WP_ODMR_BAD_COMMANDS_MAX refused commands and WP_ODMR_AUTH_FAILURES_MAX
 * failed AUTHs per connection, odmr.auth_failure_delay before each "535".
 * One thread: spool writes, fsyncs and DSN injection run in the event loop,
 * so a slow disk slows every connection (the spool is local by design).
 * SIGHUP and SIGUSR1 reload the configuration (endpoints and TLS files need
 * a restart), SIGTERM and SIGINT stop (lib/daemon.h).
 */
#include "config.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/address.h"
#include "odmr/auth.h"
#include "lib/daemon.h"
#include "odmr/dsn.h"
#include "lib/log.h"
#include "milter/rules.h"
#include "state/snapshot.h"
#include "odmr/spool.h"
#include "lib/util.h"
#include "state/reload.h"

#ifndef WP_SYSCONFDIR
#define WP_SYSCONFDIR "/etc"
#endif

#define LMTP_RCPTS_MAX 1000
#define OUTPUT_MAX (1024 * 1024) /* unread replies before we give up on a peer */
#define SYNC_EVERY 64            /* removals in a reversed session between directory fsyncs */

struct server {
    struct event_base *base;
    struct wp_daemon *d;      /* the skeleton: holds the current snapshot */
    struct wp_snapshot *snap; /* d's current one (borrowed); new connections take a reference */
    SSL_CTX *tls;
    char hostname[256];
    int connections;
    int max_connections;
    char **busy; /* queues an ATRN session is delivering */
    size_t nbusy;
    struct event *expire_ev;
    struct conn *conns; /* every open connection, freed at shutdown */
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
    struct event *closer; /* ST_CLOSING: frees the connection once its output is out */
    uint64_t close_deadline;
    /* reversed delivery */
    char **queues; /* locked while we deliver */
    size_t nqueues, qi;
    char **ids;
    size_t nids, ii;
    bool pipelining;
    struct txn cur;  /* the message whose MAIL, RCPT and DATA replies are due */
    struct txn prev; /* sent in full, its final reply due (before cur's replies) */
    unsigned delivered;
    unsigned unsynced; /* removals from the current queue not yet fsync'ed */
};

static void conn_free(struct conn *c);
static void conn_close(struct conn *c);
static void process(struct conn *c);
static void turn_next(struct conn *c);
static void queue_sync(struct conn *c);

/* ------------------------------------------------------------ helpers */

static void reply(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The reversed session under TLS sends each line in its own TLS record:
 * fetchmail's ODMR client splices the connection one line per readable
 * event on the socket, and lines that OpenSSL has already decrypted into
 * its buffer never make the socket readable again, so a record of several
 * lines stalls it.  A reference chain of the output buffer becomes one
 * SSL_write, hence one record. */
static bool line_records(const struct conn *c)
{
    return c->tls && c->state >= ST_TURN_GREET;
}

static void free_line(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    free((void *)data);
}

static void reply(struct conn *c, const char *fmt, ...)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char buf[WP_ODMR_LINE_MAX + 8];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(buf) - 3)
        n = (int)sizeof(buf) - 3;
    memcpy(buf + n, "\r\n", 2);
    n += 2;
    if (line_records(c))
        evbuffer_add_reference(out, wp_strndup(buf, (size_t)n), (size_t)n, free_line, NULL);
    else
        evbuffer_add(out, buf, (size_t)n);
}

/* Is the command word cmd at the start of line (then a space or the end)? */
static bool is_cmd(const char *line, const char *cmd, const char **arg)
{
    size_t n = strlen(cmd);
    if (!wp_strnieq(line, cmd, n) || (line[n] && line[n] != ' '))
        return false;
    const char *a = line + n;
    while (*a == ' ')
        a++;
    *arg = a;
    return true;
}

/* The address of "FROM:<addr> params" or "TO:<addr> params": copied into
 * out; *params points after it.  A source route (@a,@b:) is dropped. */
static bool envelope_arg(const char *arg, const char *prefix, char *out, size_t size, const char **params)
{
    size_t pl = strlen(prefix);
    if (!wp_strnieq(arg, prefix, pl))
        return false;
    const char *p = arg + pl;
    while (*p == ' ')
        p++;
    if (*p != '<')
        return false;
    p++;
    const char *start = p;
    bool quoted = false;
    for (; *p; p++) {
        if (*p == '\\' && quoted && p[1])
            p++;
        else if (*p == '"')
            quoted = !quoted;
        else if (*p == '>' && !quoted)
            break;
        else if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    }
    if (*p != '>')
        return false;
    size_t n = (size_t)(p - start);
    if (n > 0 && start[0] == '@') {
        const char *colon = memchr(start, ':', n);
        if (!colon)
            return false;
        n -= (size_t)(colon + 1 - start);
        start = colon + 1;
    }
    if (n >= size || n > WP_ADDR_MAX)
        return false;
    memcpy(out, start, n);
    out[n] = '\0';
    *params = p + 1;
    return true;
}

/* Read one line (CRLF or LF) into buf.  1: a line; 0: need more; -1: too
 * long (the rest of it is dropped) or holds a NUL. */
static int get_line(struct evbuffer *in, char *buf, size_t size)
{
    struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
    if (eol.pos < 0)
        return evbuffer_get_length(in) >= size ? -1 : 0;
    size_t n = (size_t)eol.pos;
    if (n + 1 > size) {
        evbuffer_drain(in, n + 1);
        return -1;
    }
    evbuffer_remove(in, buf, n + 1);
    buf[n] = '\0';
    if (n > 0 && buf[n - 1] == '\r')
        buf[--n] = '\0';
    return memchr(buf, '\0', n) ? -1 : 1;
}

static bool queue_busy(const struct server *srv, const char *q)
{
    for (size_t i = 0; i < srv->nbusy; i++)
        if (strcmp(srv->busy[i], q) == 0)
            return true;
    return false;
}

static void queues_release(struct conn *c)
{
    struct server *srv = c->srv;
    for (size_t k = 0; k < c->nqueues; k++) {
        for (size_t i = 0; i < srv->nbusy; i++) {
            if (strcmp(srv->busy[i], c->queues[k]) == 0) {
                free(srv->busy[i]);
                srv->busy[i] = srv->busy[--srv->nbusy];
                break;
            }
        }
        free(c->queues[k]);
    }
    free(c->queues);
    c->queues = NULL;
    c->nqueues = 0;
}

static void txn_reset(struct conn *c)
{
    free(c->sender);
    c->sender = NULL;
    for (size_t i = 0; i < c->nrcpts; i++)
        free(c->rcpts[i].addr);
    free(c->rcpts);
    c->rcpts = NULL;
    c->nrcpts = 0;
    c->have_mail = false;
    c->too_big = false;
    if (c->body)
        evbuffer_drain(c->body, evbuffer_get_length(c->body));
}

static void txn_free(struct txn *t)
{
    if (!t->active)
        return;
    wp_strv_free(t->why, t->nwhy);
    wp_spool_msg_free(&t->msg);
    free(t->accepted);
    free(t->refused);
    memset(t, 0, sizeof(*t));
}

static void conn_free(struct conn *c)
{
    if (c->side == SIDE_CUSTOMER && c->nqueues)
        wp_info("%s: reversed session ended after %u message%s", c->peer, c->delivered,
                c->delivered == 1 ? "" : "s");
    txn_free(&c->cur);
    txn_free(&c->prev);
    queue_sync(c);
    queues_release(c);
    if (c->ids)
        wp_spool_names_free(c->ids, c->nids);
    txn_reset(c);
    if (c->body)
        evbuffer_free(c->body);
    if (c->timer)
        event_free(c->timer);
    if (c->closer)
        event_free(c->closer);
    if (c->bev)
        bufferevent_free(c->bev);
    c->srv->connections--;
    if (c->prev_conn)
        c->prev_conn->next = c->next;
    else
        c->srv->conns = c->next;
    if (c->next)
        c->next->prev_conn = c->prev_conn;
    wp_snapshot_unref(c->snap);
    free(c);
}

/* Bytes still to go out: with TLS on a STARTTLS filter, the encrypted
 * bytes wait in the underlying socket's buffer. */
static size_t pending_output(struct conn *c)
{
    size_t n = evbuffer_get_length(bufferevent_get_output(c->bev));
    struct bufferevent *under = bufferevent_get_underlying(c->bev);
    if (under)
        n += evbuffer_get_length(bufferevent_get_output(under));
    return n;
}

static void on_closer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (pending_output(c) == 0 || wp_now_ms() >= c->close_deadline) {
        conn_free(c);
        return;
    }
    struct timeval tv = {0, 20000};
    evtimer_add(c->closer, &tv);
}

/* Close once what was written has gone out (at most odmr.timeout later).
 * Never frees at once: callers may still look at c. */
static void conn_close(struct conn *c)
{
    if (c->state == ST_CLOSING)
        return;
    c->state = ST_CLOSING;
    bufferevent_disable(c->bev, EV_READ);
    c->close_deadline = wp_now_ms() + (uint64_t)c->snap->odmr.timeout * 1000;
    c->closer = evtimer_new(c->srv->base, on_closer, c);
    struct timeval tv = {0, 0};
    evtimer_add(c->closer, &tv);
}

/* A refused command; too many of them end the connection. */
static bool refuse(struct conn *c, const char *text)
{
    reply(c, "%s", text);
    if (++c->bad_commands >= WP_ODMR_BAD_COMMANDS_MAX) {
        wp_notice("%s: too many refused commands, closing", c->peer);
        reply(c, "421 4.7.0 %s Too many errors, closing", c->srv->hostname);
        conn_close(c);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------ LMTP intake */

static void lmtp_rcpt(struct conn *c, const char *arg)
{
    char addr[WP_ADDR_MAX + 1];
    const char *params;
    if (!c->have_mail) {
        refuse(c, "503 5.5.1 MAIL first");
        return;
    }
    if (!envelope_arg(arg, "TO:", addr, sizeof(addr), &params) || !addr[0]) {
        refuse(c, "501 5.5.4 Syntax: RCPT TO:<address>");
        return;
    }
    if (c->nrcpts >= LMTP_RCPTS_MAX) {
        reply(c, "452 4.5.3 Too many recipients");
        return;
    }
    struct wp_route route;
    memset(&route, 0, sizeof(route));
    struct wp_resolve_opts opts = {.trusted = true, .access = false};
    wp_resolve(c->snap->router, addr, &opts, &route);
    if (route.kind == WP_ROUTE_TEMP) {
        reply(c, "451 4.3.0 <%s>: %s", addr, route.text);
        return;
    }
    wp_str_lower(route.queue);
    if (route.kind != WP_ROUTE_ODMR || !wp_spool_queue_name_valid(route.queue)) {
        wp_notice("lmtp: <%s> is not routed to an ODMR queue (%s), refused", addr,
                  wp_route_kind_name(route.kind));
        reply(c, "550 5.1.1 <%s>: not an ODMR queue here", addr);
        return;
    }
    c->rcpts = wp_realloc(c->rcpts, (c->nrcpts + 1) * sizeof(*c->rcpts));
    c->rcpts[c->nrcpts].addr = wp_strdup(addr);
    wp_strlcpy(c->rcpts[c->nrcpts].queue, route.queue, sizeof(c->rcpts[c->nrcpts].queue));
    c->nrcpts++;
    reply(c, "250 2.1.5 <%s> queue %s", addr, route.queue);
}

static void lmtp_command(struct conn *c, const char *line)
{
    const char *arg;
    if (is_cmd(line, "LHLO", &arg)) {
        if (!*arg) {
            refuse(c, "501 5.5.4 Syntax: LHLO hostname");
            return;
        }
        txn_reset(c);
        c->lhlo = true;
        reply(c, "250-%s", c->srv->hostname);
        reply(c, "250-PIPELINING");
        reply(c, "250-SIZE %d", c->snap->odmr.max_message_size);
        reply(c, "250-8BITMIME");
        reply(c, "250 ENHANCEDSTATUSCODES");
    } else if (is_cmd(line, "MAIL", &arg)) {
        char addr[WP_ADDR_MAX + 1];
        const char *params;
        if (!c->lhlo) {
            refuse(c, "503 5.5.1 LHLO first");
        } else if (c->have_mail) {
            refuse(c, "503 5.5.1 Nested MAIL command");
        } else if (!envelope_arg(arg, "FROM:", addr, sizeof(addr), &params)) {
            refuse(c, "501 5.5.4 Syntax: MAIL FROM:<address>");
        } else {
            const char *size = strcasestr(params, "SIZE=");
            if (size && strtoll(size + 5, NULL, 10) > c->snap->odmr.max_message_size) {
                reply(c, "552 5.3.4 Message too big");
                return;
            }
            c->sender = wp_strdup(addr);
            c->have_mail = true;
            reply(c, "250 2.1.0 Ok");
        }
    } else if (is_cmd(line, "RCPT", &arg)) {
        lmtp_rcpt(c, arg);
    } else if (is_cmd(line, "DATA", &arg)) {
        if (!c->have_mail)
            refuse(c, "503 5.5.1 MAIL first");
        else if (c->nrcpts == 0)
            refuse(c, "503 5.5.1 No valid recipients");
        else {
            if (!c->body)
                c->body = evbuffer_new();
            c->state = ST_DATA;
            reply(c, "354 End data with <CR><LF>.<CR><LF>");
        }
    } else if (is_cmd(line, "RSET", &arg)) {
        txn_reset(c);
        reply(c, "250 2.0.0 Ok");
    } else if (is_cmd(line, "NOOP", &arg)) {
        reply(c, "250 2.0.0 Ok");
    } else if (is_cmd(line, "QUIT", &arg)) {
        reply(c, "221 2.0.0 Bye");
        conn_close(c);
    } else {
        refuse(c, "502 5.5.2 Command not implemented");
    }
}

/* The message is complete: store it once per queue, answer per recipient. */
static void lmtp_deliver(struct conn *c)
{
    size_t len = evbuffer_get_length(c->body);
    if (c->too_big) {
        wp_notice("lmtp: message from <%s> over %d bytes, refused", c->sender,
                  c->snap->odmr.max_message_size);
        for (size_t i = 0; i < c->nrcpts; i++)
            reply(c, "552 5.3.4 <%s>: message too big", c->rcpts[i].addr);
        txn_reset(c);
        return;
    }
    const char *body = (const char *)evbuffer_pullup(c->body, -1);
    if (!body)
        body = "";
    char **status = wp_calloc(c->nrcpts, sizeof(char *));
    char **group = wp_calloc(c->nrcpts, sizeof(char *));
    time_t now = time(NULL);
    for (size_t i = 0; i < c->nrcpts; i++) {
        if (status[i])
            continue;
        size_t n = 0;
        for (size_t k = i; k < c->nrcpts; k++)
            if (!status[k] && strcmp(c->rcpts[k].queue, c->rcpts[i].queue) == 0)
                group[n++] = c->rcpts[k].addr;
        char id[WP_SPOOL_ID_MAX], err[512];
        char *st;
        if (wp_spool_store(c->snap->odmr.spool, c->rcpts[i].queue, c->sender, group, n, body, len, now, id,
                           err, sizeof(err))) {
            wp_info("%s/%s: from=<%s>, size=%zu, nrcpt=%zu (queued)", c->rcpts[i].queue, id, c->sender, len,
                    n);
            st = wp_asprintf("250 2.0.0 queued as %s/%s", c->rcpts[i].queue, id);
        } else {
            wp_err("spool: %s", err);
            st = wp_strdup("451 4.3.0 Cannot store the message now");
        }
        for (size_t k = i; k < c->nrcpts; k++)
            if (!status[k] && strcmp(c->rcpts[k].queue, c->rcpts[i].queue) == 0)
                status[k] = k == i ? st : wp_strdup(st);
    }
    for (size_t i = 0; i < c->nrcpts; i++) {
        reply(c, "%.3s <%s>%s", status[i], c->rcpts[i].addr, status[i] + 3);
        free(status[i]);
    }
    free(status);
    free(group);
    txn_reset(c);
}

/* Message text: dot-unstuff, watch the size, stop at the lone dot. */
static bool lmtp_data(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t max = (size_t)c->snap->odmr.max_message_size;
    for (;;) {
        struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
        if (eol.pos < 0) {
            size_t have = evbuffer_get_length(in);
            if (have > max) { /* one endless line: keep the memory bounded */
                c->too_big = true;
                evbuffer_drain(in, have);
            }
            return false;
        }
        size_t n = (size_t)eol.pos + 1; /* with the LF */
        char head[3] = {0, 0, 0};
        evbuffer_copyout(in, head, n < 3 ? n : 3);
        if (head[0] == '.') {
            if ((n == 2 && head[1] == '\n') || (n == 3 && head[1] == '\r' && head[2] == '\n')) {
                evbuffer_drain(in, n);
                c->state = ST_CMD;
                lmtp_deliver(c);
                return true;
            }
            evbuffer_drain(in, 1);
            n--;
        }
        if (c->too_big || evbuffer_get_length(c->body) + n > max) {
            c->too_big = true;
            evbuffer_drain(in, n);
            evbuffer_drain(c->body, evbuffer_get_length(c->body));
        } else {
            evbuffer_remove_buffer(in, c->body, n);
        }
    }
}

/* ------------------------------------------------------------ customer: AUTH */

/* The stored password field of user, read fresh from odmr.passwd_file. */
static char *stored_password(struct conn *c, const char *user)
{
    const char *path = c->snap->odmr.passwd_file;
    if (!path[0])
        return NULL;
    char err[512];
    size_t len;
    char *text = wp_read_file(path, WP_ODMR_PASSWD_FILE_MAX, &len, err, sizeof(err));
    if (!text) {
        wp_err("odmr.passwd_file: %s", err);
        return NULL;
    }
    char *pw = wp_passwd_find(text, len, user);
    OPENSSL_cleanse(text, len);
    free(text);
    return pw;
}

static void on_auth_delay(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (c->auth_failures >= WP_ODMR_AUTH_FAILURES_MAX) {
        reply(c, "421 4.7.0 %s Too many authentication failures, closing", c->srv->hostname);
        conn_close(c);
        return;
    }
    reply(c, "535 5.7.8 Authentication credentials invalid");
    c->state = ST_CMD;
    bufferevent_enable(c->bev, EV_READ);
    process(c); /* commands that arrived meanwhile */
}

static void auth_result(struct conn *c, const char *user, bool ok, const char *mech)
{
    if (ok && !wp_odmr_account_find(c->snap, user)) {
        wp_warn("%s: %s has a password but no odmr.accounts entry: refused", c->peer, user);
        ok = false;
    }
    if (ok) {
        wp_strlcpy(c->user, user, sizeof(c->user));
        wp_info("%s: %s authenticated (%s%s)", c->peer, user, mech, c->tls ? ", TLS" : "");
        c->state = ST_CMD;
        reply(c, "235 2.7.0 Authentication successful");
        return;
    }
    c->auth_failures++;
    wp_notice("%s: authentication failed for %s (%s)", c->peer, user[0] ? user : "?", mech);
    c->state = ST_AUTH_DELAY;
    bufferevent_disable(c->bev, EV_READ);
    struct timeval tv = {c->snap->odmr.auth_failure_delay, 0};
    if (!c->timer)
        c->timer = evtimer_new(c->srv->base, on_auth_delay, c);
    evtimer_add(c->timer, &tv);
}

static void auth_plain(struct conn *c, const char *b64)
{
    unsigned char buf[1024];
    const char *user = "", *pw;
    long n = strcmp(b64, "=") == 0 ? 0 : wp_base64_decode(b64, buf, sizeof(buf));
    if (n < 0 || !wp_sasl_plain_split(buf, (size_t)n, &user, &pw)) {
        c->state = ST_CMD;
        refuse(c, "501 5.5.2 Malformed PLAIN response");
        return;
    }
    char name[256];
    wp_strlcpy(name, user, sizeof(name));
    char *stored = stored_password(c, name);
    bool ok = stored && wp_auth_check_plain(stored, pw);
    if (stored) {
        OPENSSL_cleanse(stored, strlen(stored));
        free(stored);
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    auth_result(c, name, ok, "PLAIN");
}

static void auth_cram(struct conn *c, const char *b64)
{
    char buf[600];
    long n = wp_base64_decode(b64, (unsigned char *)buf, sizeof(buf));
    char *sp = n > 0 ? strrchr(buf, ' ') : NULL;
    if (n < 0 || !sp || (size_t)n != strlen(buf)) {
        c->state = ST_CMD;
        refuse(c, "501 5.5.2 Malformed CRAM-MD5 response");
        return;
    }
    *sp = '\0';
    const char *user = buf;
    char *stored = stored_password(c, user);
    bool ok = stored && wp_auth_check_cram(stored, c->challenge, sp + 1);
    if (stored && !wp_auth_cram_capable(stored))
        wp_notice("%s: the password of %s is stored in a scheme CRAM-MD5 cannot use", c->peer, user);
    if (stored) {
        OPENSSL_cleanse(stored, strlen(stored));
        free(stored);
    }
    auth_result(c, user, ok, "CRAM-MD5");
}

static void cmd_auth(struct conn *c, const char *arg)
{
    if (!c->ehlo) {
        refuse(c, "503 5.5.1 EHLO first");
        return;
    }
    if (c->user[0]) {
        refuse(c, "503 5.5.1 Already authenticated");
        return;
    }
    char mech[32];
    size_t n = strcspn(arg, " ");
    if (n == 0 || n >= sizeof(mech)) {
        refuse(c, "501 5.5.4 Syntax: AUTH mechanism");
        return;
    }
    memcpy(mech, arg, n);
    mech[n] = '\0';
    const char *initial = arg[n] ? arg + n + 1 : NULL;
    if (wp_strieq(mech, "PLAIN")) {
        if (!c->tls) {
            refuse(c, "538 5.7.11 Encryption required for requested authentication mechanism");
            return;
        }
        if (initial) {
            auth_plain(c, initial);
        } else {
            c->state = ST_AUTH_PLAIN;
            reply(c, "334 ");
        }
    } else if (wp_strieq(mech, "CRAM-MD5")) {
        if (initial) {
            refuse(c, "501 5.5.4 CRAM-MD5 takes no initial response");
            return;
        }
        unsigned char rnd[8];
        RAND_bytes(rnd, sizeof(rnd));
        snprintf(c->challenge, sizeof(c->challenge), "<%02x%02x%02x%02x%02x%02x%02x%02x.%lld@%s>", rnd[0],
                 rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], (long long)time(NULL),
                 c->srv->hostname);
        char b64[512];
        wp_base64_encode((const unsigned char *)c->challenge, strlen(c->challenge), b64, sizeof(b64));
        c->state = ST_AUTH_CRAM;
        reply(c, "334 %s", b64);
    } else {
        refuse(c, "504 5.5.4 Unrecognized authentication type");
    }
}

/* ------------------------------------------------------------ customer: ATRN */

/* The account's queue that domain names: the queue itself, or a domain
 * whose Router route is an ODMR route into one of the account's queues. */
static const char *atrn_queue(struct conn *c, const struct wp_odmr_account *a, const char *domain)
{
    for (size_t i = 0; i < a->nqueues; i++)
        if (strcmp(a->queues[i], domain) == 0)
            return a->queues[i];
    char probe[WP_DOMAIN_MAX + 16];
    snprintf(probe, sizeof(probe), "postmaster@%s", domain);
    struct wp_route route;
    memset(&route, 0, sizeof(route));
    struct wp_resolve_opts opts = {.trusted = true, .access = false};
    wp_resolve(c->snap->router, probe, &opts, &route);
    if (route.kind != WP_ROUTE_ODMR)
        return NULL;
    wp_str_lower(route.queue);
    for (size_t i = 0; i < a->nqueues; i++)
        if (strcmp(a->queues[i], route.queue) == 0)
            return a->queues[i];
    return NULL;
}

static void cmd_atrn(struct conn *c, const char *arg)
{
    if (!c->user[0]) {
        refuse(c, "530 5.7.0 Authentication required");
        return;
    }
    const struct wp_odmr_account *a = wp_odmr_account_find(c->snap, c->user);
    if (!a) { /* removed by a reload since the AUTH */
        reply(c, "450 4.7.1 ATRN request refused");
        return;
    }
    const char **want = wp_calloc(a->nqueues + 1, sizeof(char *));
    size_t nwant = 0;
    if (!*arg) {
        for (size_t i = 0; i < a->nqueues; i++)
            want[nwant++] = a->queues[i];
    } else {
        char *list = wp_strdup(arg), *save = NULL;
        for (char *d = strtok_r(list, ",", &save); d; d = strtok_r(NULL, ",", &save)) {
            while (*d == ' ')
                d++;
            size_t n = strlen(d);
            while (n > 0 && d[n - 1] == ' ')
                d[--n] = '\0';
            wp_str_lower(d);
            if (!wp_domain_valid(d, false)) {
                free(list);
                free(want);
                refuse(c, "501 5.5.4 Syntax: ATRN [domain[,domain]...]");
                return;
            }
            const char *q = atrn_queue(c, a, d);
            if (!q) {
                wp_notice("%s: %s may not release %s: ATRN refused", c->peer, c->user, d);
                reply(c, "450 4.7.1 ATRN request refused: %s is not yours", d);
                free(list);
                free(want);
                return;
            }
            bool dup = false;
            for (size_t i = 0; i < nwant; i++)
                dup = dup || want[i] == q;
            if (!dup && nwant < a->nqueues)
                want[nwant++] = q;
        }
        free(list);
    }
    size_t waiting = 0;
    for (size_t i = 0; i < nwant; i++) {
        if (queue_busy(c->srv, want[i])) {
            wp_notice("%s: queue %s is being delivered by another session", c->peer, want[i]);
            reply(c, "451 4.3.0 Unable to process ATRN request now");
            free(want);
            return;
        }
        size_t n;
        char **ids = wp_spool_list(c->snap->odmr.spool, want[i], &n);
        waiting += n;
        wp_spool_names_free(ids, n);
    }
    if (waiting == 0) {
        reply(c, "453 You have no mail");
        free(want);
        return;
    }
    c->queues = wp_calloc(nwant, sizeof(char *));
    for (size_t i = 0; i < nwant; i++) {
        c->queues[c->nqueues++] = wp_strdup(want[i]);
        c->srv->busy = wp_realloc(c->srv->busy, (c->srv->nbusy + 1) * sizeof(char *));
        c->srv->busy[c->srv->nbusy++] = wp_strdup(want[i]);
    }
    free(want);
    wp_info("%s: %s releases %zu message%s, reversing the connection", c->peer, c->user, waiting,
            waiting == 1 ? "" : "s");
    reply(c, "250 OK now reversing the connection");
    c->state = ST_TURN_GREET;
}

/* ------------------------------------------------------------ customer: STARTTLS */

static void on_read(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

static void set_timeouts(struct conn *c)
{
    struct timeval tv = {c->snap->odmr.timeout, 0};
    bufferevent_set_timeouts(c->bev, &tv, &tv);
}

static void cmd_starttls(struct conn *c, const char *arg)
{
    if (!c->srv->tls) {
        refuse(c, "502 5.5.1 STARTTLS not available");
        return;
    }
    if (c->tls) {
        refuse(c, "503 5.5.1 TLS already active");
        return;
    }
    if (*arg) {
        refuse(c, "501 5.5.4 Syntax: STARTTLS");
        return;
    }
    reply(c, "220 2.0.0 Ready to start TLS");
    /* Whatever the client sent after STARTTLS was sent in the clear and
     * must not count as a command under TLS. */
    struct evbuffer *in = bufferevent_get_input(c->bev);
    evbuffer_drain(in, evbuffer_get_length(in));
    SSL *ssl = SSL_new(c->srv->tls);
    struct bufferevent *tls = bufferevent_openssl_filter_new(
        c->srv->base, c->bev, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (!tls) {
        SSL_free(ssl);
        wp_err("%s: cannot start TLS", c->peer);
        conn_close(c);
        return;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
    wp_info("%s: STARTTLS", c->peer);
    c->bev = tls;
    c->tls = true;
    c->ehlo = false; /* RFC 3207: forget everything learnt before TLS */
    c->user[0] = '\0';
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    set_timeouts(c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* ------------------------------------------------------------ customer: commands */

static void customer_command(struct conn *c, const char *line)
{
    const char *arg;
    if (is_cmd(line, "EHLO", &arg) || is_cmd(line, "HELO", &arg)) {
        bool ehlo = wp_strnieq(line, "EHLO", 4);
        if (!*arg) {
            refuse(c, ehlo ? "501 5.5.4 Syntax: EHLO hostname" : "501 5.5.4 Syntax: HELO hostname");
            return;
        }
        c->ehlo = ehlo;
        if (!ehlo) {
            reply(c, "250 %s", c->srv->hostname);
            return;
        }
        reply(c, "250-%s", c->srv->hostname);
        reply(c, "250-AUTH CRAM-MD5%s", c->tls ? " PLAIN" : "");
        if (c->srv->tls && !c->tls)
            reply(c, "250-STARTTLS");
        reply(c, "250-ENHANCEDSTATUSCODES");
        reply(c, "250 ATRN");
    } else if (is_cmd(line, "AUTH", &arg)) {
        cmd_auth(c, arg);
    } else if (is_cmd(line, "STARTTLS", &arg)) {
        cmd_starttls(c, arg);
    } else if (is_cmd(line, "ATRN", &arg)) {
        cmd_atrn(c, arg);
    } else if (is_cmd(line, "NOOP", &arg) || is_cmd(line, "RSET", &arg)) {
        reply(c, "250 2.0.0 Ok");
    } else if (is_cmd(line, "QUIT", &arg)) {
        reply(c, "221 2.0.0 %s closing connection", c->srv->hostname);
        conn_close(c);
    } else if (is_cmd(line, "MAIL", &arg) || is_cmd(line, "RCPT", &arg) || is_cmd(line, "DATA", &arg) ||
               is_cmd(line, "VRFY", &arg) || is_cmd(line, "EXPN", &arg) || is_cmd(line, "ETRN", &arg) ||
               is_cmd(line, "TURN", &arg) || is_cmd(line, "BDAT", &arg)) {
        refuse(c, "503 5.5.1 This is an ODMR service: EHLO, AUTH, STARTTLS, ATRN, QUIT only");
    } else {
        refuse(c, "502 5.5.2 Command not implemented");
    }
}

/* ------------------------------------------------------------ reversed delivery */

/* One SMTP reply from the customer's side: 1 complete (code, last line in
 * text), 0 need more, -1 malformed or too long. */
static int get_reply(struct conn *c, int *code, char *text, size_t size)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    for (;;) {
        char line[WP_ODMR_LINE_MAX];
        int r = get_line(in, line, sizeof(line));
        if (r <= 0)
            return r;
        if (strlen(line) < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
            line[2] < '0' || line[2] > '9' || (line[3] && line[3] != ' ' && line[3] != '-'))
            return -1;
        if (c->state == ST_TURN_EHLO && line[0] == '2' && line[3] && wp_strieq(line + 4, "PIPELINING"))
            c->pipelining = true;
        if (line[3] == '-')
            continue;
        *code = atoi(line);
        wp_strlcpy(text, line, size);
        return 1;
    }
}

static void send_transaction(struct conn *c, struct txn *t)
{
    reply(c, "MAIL FROM:<%s>", t->msg.sender);
    t->reply_no = 0;
    t->mail_ok = t->data_ok = false;
    if (!c->pipelining)
        return;
    for (size_t i = 0; i < t->msg.nrcpts; i++)
        reply(c, "RCPT TO:<%s>", t->msg.rcpts[i]);
    reply(c, "DATA");
}

/* The message text, dot-stuffed, and the final dot. */
static void send_body(struct conn *c, const struct txn *t)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    const char *p = t->msg.body, *end = t->msg.body + t->msg.body_len;
    bool records = line_records(c);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl + 1 : end;
        size_t n = (size_t)(stop - p);
        bool dot = *p == '.';
        if (records) {
            /* One record per line (see line_records); copied, because the
             * message may be freed before a dropped connection's buffer. */
            char *line = wp_malloc(n + 1);
            line[0] = '.';
            memcpy(line + dot, p, n);
            evbuffer_add_reference(out, line, n + dot, free_line, NULL);
        } else {
            if (dot)
                evbuffer_add(out, ".", 1);
            evbuffer_add(out, p, n);
        }
        p = stop;
    }
    if (t->msg.body_len > 0 && end[-1] != '\n')
        reply(c, "%s", "");
    reply(c, ".");
}

/* Return the recipients the customer refused for good to the sender.
 * True when there were none or the report went out. */
static bool dsn_refused(struct conn *c, struct txn *t, const char *why)
{
    bool any = false;
    for (size_t i = 0; i < t->msg.nrcpts; i++)
        any = any || t->refused[i];
    if (!any)
        return true;
    for (size_t i = 0; i < t->msg.nrcpts; i++)
        if (t->refused[i] && !t->why[i])
            t->why[i] = wp_strdup(why);
    char err[512];
    if (wp_dsn_return(c->snap, c->srv->hostname, &t->msg, t->refused, t->why, err, sizeof(err)))
        return true;
    wp_err("%s/%s: cannot return to <%s>: %s", t->msg.queue, t->msg.id, t->msg.sender, err);
    return false;
}

/* Make the removals from the queue being delivered durable. */
static void queue_sync(struct conn *c)
{
    char err[512];
    if (c->unsynced && c->qi > 0 &&
        !wp_spool_sync(c->snap->odmr.spool, c->queues[c->qi - 1], err, sizeof(err)))
        wp_err("spool: %s", err);
    c->unsynced = 0;
}

/* Drop the recipients with done[i] from the spool file.  Removals from the
 * queue being delivered are fsync'ed in batches (queue_sync). */
static void settle(struct conn *c, struct txn *t, const bool *done)
{
    char err[512];
    bool current = c->qi > 0 && strcmp(t->msg.queue, c->queues[c->qi - 1]) == 0;
    if (!wp_spool_settle(c->snap->odmr.spool, &t->msg, done, !current, err, sizeof(err)))
        wp_err("spool: %s", err);
    if (current && ++c->unsynced >= SYNC_EVERY)
        queue_sync(c);
}

/* No delivery this time; refused recipients go back to the sender. */
static void bounce_refused(struct conn *c, struct txn *t, const char *why)
{
    if (dsn_refused(c, t, why))
        settle(c, t, t->refused);
}

/* Load the next message of the released queues into cur and send its
 * transaction.  False when there is none left. */
static bool start_next(struct conn *c)
{
    char err[512];
    for (;;) {
        if (c->ids && c->ii < c->nids) {
            const char *id = c->ids[c->ii++];
            struct txn *t = &c->cur;
            if (!wp_spool_load(c->snap->odmr.spool, c->queues[c->qi - 1], id, true, &t->msg, err,
                               sizeof(err))) {
                wp_warn("%s", err);
                continue;
            }
            t->active = true;
            t->accepted = wp_calloc(t->msg.nrcpts, sizeof(bool));
            t->refused = wp_calloc(t->msg.nrcpts, sizeof(bool));
            t->why = wp_calloc(t->msg.nrcpts, sizeof(char *));
            t->nwhy = t->msg.nrcpts;
            send_transaction(c, t);
            return true;
        }
        if (c->ids) {
            wp_spool_names_free(c->ids, c->nids);
            c->ids = NULL;
            queue_sync(c); /* this queue is done */
        }
        if (c->qi >= c->nqueues)
            return false;
        c->ids = wp_spool_list(c->snap->odmr.spool, c->queues[c->qi++], &c->nids);
        c->ii = 0;
    }
}

/* What comes after a message: the next one, or QUIT. */
static void turn_next(struct conn *c)
{
    if (start_next(c)) {
        c->state = ST_TURN_TXN;
        return;
    }
    c->state = ST_TURN_QUIT;
    reply(c, "QUIT");
}

/* A reply within the transaction of cur (MAIL, RCPT..., DATA). */
static void txn_reply(struct conn *c, int code, const char *text)
{
    struct txn *t = &c->cur;
    size_t n = t->msg.nrcpts;
    size_t k = t->reply_no++;
    if (k == 0) {
        t->mail_ok = code / 100 == 2;
        if (!t->mail_ok)
            wp_notice("%s/%s: customer refused MAIL: %s", t->msg.queue, t->msg.id, text);
        if (!c->pipelining) {
            if (!t->mail_ok) {
                c->state = ST_TURN_RSET;
                reply(c, "RSET");
            } else {
                reply(c, "RCPT TO:<%s>", t->msg.rcpts[0]);
            }
        }
        return;
    }
    if (k <= n) {
        size_t i = k - 1;
        t->accepted[i] = code / 100 == 2;
        t->refused[i] = code / 100 == 5 && t->mail_ok;
        if (t->refused[i])
            t->why[i] = wp_strdup(text);
        if (!t->accepted[i])
            wp_notice("%s/%s: <%s> refused: %s", t->msg.queue, t->msg.id, t->msg.rcpts[i], text);
        if (!c->pipelining) {
            if (i + 1 < n) {
                reply(c, "RCPT TO:<%s>", t->msg.rcpts[i + 1]);
                return;
            }
            bool any = false;
            for (size_t r = 0; r < n; r++)
                any = any || t->accepted[r];
            if (!any) {
                bounce_refused(c, t, text);
                c->state = ST_TURN_RSET;
                reply(c, "RSET");
            } else {
                reply(c, "DATA");
            }
        }
        return;
    }
    /* The DATA reply. */
    bool any = false;
    for (size_t r = 0; r < n; r++)
        any = any || t->accepted[r];
    if (code == 354) {
        if (!any || !t->mail_ok) {
            /* Pipelined, nothing accepted, yet the server wants the text:
             * send an empty message it will refuse. */
            reply(c, ".");
            t->data_ok = false;
        } else {
            send_body(c, t);
            t->data_ok = true;
        }
        /* Its final reply comes next; with PIPELINING the next message's
         * MAIL, RCPT and DATA go out now (RFC 2920), saving a round trip. */
        c->prev = *t;
        memset(t, 0, sizeof(*t));
        if (!c->pipelining || !start_next(c))
            c->state = ST_TURN_DOT;
        return;
    }
    if (t->mail_ok && any)
        wp_notice("%s/%s: customer refused DATA: %s", t->msg.queue, t->msg.id, text);
    bounce_refused(c, t, text);
    c->state = ST_TURN_RSET;
    reply(c, "RSET");
}

/* The final reply for prev. */
static void dot_reply(struct conn *c, int code, const char *text)
{
    struct txn *t = &c->prev;
    if (t->data_ok && code / 100 == 2) {
        for (size_t i = 0; i < t->msg.nrcpts; i++)
            if (t->accepted[i])
                wp_info("%s/%s: to=<%s>, status=sent by ATRN (%s)", t->msg.queue, t->msg.id, t->msg.rcpts[i],
                        text);
        /* Accepted recipients, and refused ones once reported, leave together. */
        bool reported = dsn_refused(c, t, text);
        for (size_t i = 0; i < t->msg.nrcpts; i++)
            t->accepted[i] = t->accepted[i] || (reported && t->refused[i]);
        settle(c, t, t->accepted);
        c->delivered++;
    } else if (t->data_ok) {
        wp_notice("%s/%s: customer refused the message: %s", t->msg.queue, t->msg.id, text);
        if (code / 100 == 5) {
            for (size_t i = 0; i < t->msg.nrcpts; i++)
                t->refused[i] = t->refused[i] || t->accepted[i];
            bounce_refused(c, t, text);
        }
    }
    txn_free(t);
}

static bool turn_input(struct conn *c)
{
    int code;
    char text[WP_ODMR_LINE_MAX];
    int r = get_reply(c, &code, text, sizeof(text));
    if (r == 0)
        return false;
    if (r < 0) {
        wp_notice("%s: malformed reply in the reversed session, closing", c->peer);
        conn_close(c);
        return false;
    }
    if (c->prev.active) {
        /* Replies come in order: prev's final reply before cur's. */
        dot_reply(c, code, text);
        if (!c->cur.active)
            turn_next(c);
        return c->state != ST_CLOSING;
    }
    switch (c->state) {
    case ST_TURN_GREET:
        if (code != 220) {
            wp_notice("%s: customer greeting %s, closing", c->peer, text);
            c->state = ST_TURN_QUIT;
            reply(c, "QUIT");
            break;
        }
        c->state = ST_TURN_EHLO;
        c->pipelining = false;
        reply(c, "EHLO %s", c->srv->hostname);
        break;
    case ST_TURN_EHLO:
    case ST_TURN_HELO:
        if (code / 100 != 2) {
            if (c->state == ST_TURN_EHLO) {
                c->state = ST_TURN_HELO;
                reply(c, "HELO %s", c->srv->hostname);
            } else {
                wp_notice("%s: customer refused HELO: %s", c->peer, text);
                c->state = ST_TURN_QUIT;
                reply(c, "QUIT");
            }
            break;
        }
        c->qi = 0;
        turn_next(c);
        break;
    case ST_TURN_TXN: txn_reply(c, code, text); break;
    case ST_TURN_RSET:
        txn_free(&c->cur);
        turn_next(c);
        break;
    case ST_TURN_QUIT: conn_close(c); return false;
    default: break;
    }
    return c->state != ST_CLOSING;
}

/* ------------------------------------------------------------ events */

static void process(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    while (c->state != ST_CLOSING && c->state != ST_AUTH_DELAY) {
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) > OUTPUT_MAX) {
            /* Commands keep coming, replies are not read: not a mail client. */
            wp_notice("%s: does not read its replies, closing", c->peer);
            conn_close(c);
            return;
        }
        if (c->state == ST_DATA) {
            if (!lmtp_data(c))
                return;
            continue;
        }
        if (c->state >= ST_TURN_GREET) {
            if (!turn_input(c))
                return;
            continue;
        }
        char line[WP_ODMR_LINE_MAX];
        int r = get_line(in, line, sizeof(line));
        if (r == 0)
            return;
        if (r < 0) {
            wp_notice("%s: line too long or with a NUL byte, closing", c->peer);
            reply(c, "500 5.5.2 Line too long or malformed");
            conn_close(c);
            return;
        }
        if (c->state == ST_AUTH_PLAIN || c->state == ST_AUTH_CRAM) {
            if (strcmp(line, "*") == 0) {
                c->state = ST_CMD;
                refuse(c, "501 5.0.0 Authentication cancelled");
            } else if (c->state == ST_AUTH_PLAIN) {
                auth_plain(c, line);
            } else {
                auth_cram(c, line);
            }
            continue;
        }
        if (c->side == SIDE_LMTP)
            lmtp_command(c, line);
        else
            customer_command(c, line);
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    process(arg);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (what & BEV_EVENT_TIMEOUT) {
        wp_notice("%s: timeout, closing", c->peer);
        if ((what & BEV_EVENT_READING) && c->state < ST_TURN_GREET) {
            reply(c, "421 4.4.2 %s Timeout, closing", c->srv->hostname);
            conn_close(c); /* the write timeout still guards the reply */
            return;
        }
    } else if (what & BEV_EVENT_ERROR) {
        unsigned long e = bufferevent_get_openssl_error(c->bev);
        if (e) {
            char buf[256];
            ERR_error_string_n(e, buf, sizeof(buf));
            wp_notice("%s: TLS error: %s", c->peer, buf);
        } else {
            wp_debug("%s: connection error", c->peer);
        }
    } else if (what & BEV_EVENT_EOF) {
        if (c->state != ST_TURN_QUIT && c->state != ST_CLOSING && (c->state >= ST_TURN_GREET || c->have_mail))
            wp_notice("%s: connection closed by the peer in mid-session", c->peer);
    }
    if (what & (BEV_EVENT_TIMEOUT | BEV_EVENT_ERROR | BEV_EVENT_EOF))
        conn_free(c);
}

static void accept_conn(struct server *srv, evutil_socket_t fd, struct sockaddr *sa, enum side side,
                        bool implicit_tls)
{
    if (srv->connections >= srv->max_connections) {
        wp_warn("connection limit (%d) reached: refusing a connection", srv->max_connections);
        static const char busy[] = "421 4.7.0 Too many connections, try again later\r\n";
        ssize_t w = send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)w;
        evutil_closesocket(fd);
        return;
    }
    struct conn *c = wp_calloc(1, sizeof(*c));
    c->srv = srv;
    c->snap = wp_snapshot_ref(srv->snap);
    c->side = side;
    c->state = ST_CMD;
    srv->connections++;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev_conn = c;
    srv->conns = c;
    if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
        char host[64];
        evutil_inet_ntop(sa->sa_family,
                         sa->sa_family == AF_INET ? (void *)&((struct sockaddr_in *)sa)->sin_addr
                                                  : (void *)&((struct sockaddr_in6 *)sa)->sin6_addr,
                         host, sizeof(host));
        snprintf(c->peer, sizeof(c->peer), "%s", host);
    } else {
        snprintf(c->peer, sizeof(c->peer), "%s", side == SIDE_LMTP ? "lmtp" : "local");
    }
    evutil_make_socket_nonblocking(fd);
    if (implicit_tls) {
        SSL *ssl = SSL_new(srv->tls);
        c->bev = bufferevent_openssl_socket_new(srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                BEV_OPT_CLOSE_ON_FREE);
        if (c->bev)
            bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
        c->tls = true;
    } else {
        c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (!c->bev) {
        evutil_closesocket(fd);
        conn_free(c);
        return;
    }
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    set_timeouts(c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (side == SIDE_LMTP)
        reply(c, "220 %s LMTP Waypost ODMR intake", srv->hostname);
    else
        reply(c, "220 %s ESMTP Waypost on-demand mail relay server ready", srv->hostname);
}

struct listener_arg {
    struct server *srv;
    enum side side;
    bool tls;
};

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    (void)l;
    (void)salen;
    struct listener_arg *la = arg;
    accept_conn(la->srv, fd, sa, la->side, la->tls);
}

/* ------------------------------------------------------------ expiry */

static void expire_scan(struct server *srv)
{
    const struct wp_odmr_conf *o = &srv->snap->odmr;
    time_t now = time(NULL);
    size_t nq;
    char **queues = wp_spool_queues(o->spool, &nq);
    for (size_t q = 0; q < nq; q++) {
        if (queue_busy(srv, queues[q]))
            continue;
        size_t n;
        char **ids = wp_spool_list(o->spool, queues[q], &n);
        for (size_t i = 0; i < n; i++) {
            struct wp_spool_msg m;
            char err[512];
            if (!wp_spool_load(o->spool, queues[q], ids[i], false, &m, err, sizeof(err)))
                continue;
            if (m.arrival + o->expire > now) {
                wp_spool_msg_free(&m);
                break; /* ids are in arrival order */
            }
            wp_spool_msg_free(&m);
            if (!wp_spool_load(o->spool, queues[q], ids[i], true, &m, err, sizeof(err)))
                continue;
            bool *all = wp_calloc(m.nrcpts, sizeof(bool));
            for (size_t r = 0; r < m.nrcpts; r++)
                all[r] = true;
            if (wp_dsn_return(srv->snap, srv->hostname, &m, all, NULL, err, sizeof(err))) {
                for (size_t r = 0; r < m.nrcpts; r++)
                    wp_info("%s/%s: to=<%s>, status=expired, returned to <%s>", m.queue, m.id, m.rcpts[r],
                            m.sender);
                if (!wp_spool_remove(o->spool, m.queue, m.id, true, err, sizeof(err)))
                    wp_err("spool: %s", err);
            } else {
                wp_err("%s/%s: cannot return the expired message to <%s>: %s", m.queue, m.id, m.sender, err);
            }
            free(all);
            wp_spool_msg_free(&m);
        }
        wp_spool_names_free(ids, n);
    }
    wp_spool_names_free(queues, nq);
}

static void on_expire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    expire_scan(arg);
}

static void expire_schedule(struct server *srv)
{
    /* Check often enough that mail leaves within a quarter of its lifetime
     * past expiry, at most once a minute. */
    int every = srv->snap->odmr.expire / 4;
    struct timeval tv = {every < 1 ? 1 : every > 60 ? 60 : every, 0};
    if (srv->expire_ev)
        event_free(srv->expire_ev);
    srv->expire_ev = event_new(srv->base, -1, EV_PERSIST, on_expire, srv);
    event_add(srv->expire_ev, &tv);
}

/* ------------------------------------------------------------ control */

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *srv = arg;
    int sig;
    enum wp_daemon_event ev;
    while ((ev = wp_daemon_next_signal(srv->d, &sig)) != WP_DAEMON_NONE) {
        if (ev == WP_DAEMON_STOP) {
            wp_notice("stopping on signal %d", sig);
            event_base_loopbreak(srv->base);
            return;
        }
        struct wp_snapshot *s = wp_daemon_reload(srv->d);
        if (!s)
            continue;
        srv->snap = s;
        expire_schedule(srv);
        wp_notice("reloaded %s: %zu ODMR account%s", srv->d->config_path, s->odmr.naccounts,
                  s->odmr.naccounts == 1 ? "" : "s");
    }
}

static SSL_CTX *tls_context(const struct wp_odmr_conf *o, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "cannot create a TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, o->tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, o->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        char e[256];
        ERR_error_string_n(ERR_get_error(), e, sizeof(e));
        snprintf(err, errlen, "%s / %s: %s", o->tls_cert, o->tls_key, e);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

int main(int argc, char **argv)
{
    struct wp_daemon_args args;
    int rc0 = wp_daemon_args("waypost-odmrd", WP_SYSCONFDIR "/waypost/waypost.conf", argc, argv, &args);
    if (rc0 >= 0)
        return rc0;
    wp_log_open("waypost-odmrd", false, NULL, WP_LOG_INFO);
    char *path = NULL;
    struct wp_snapshot *snap = wp_snapshot_load_startup(args.config, &path);
    char why[512];
    SSL_CTX *tls = NULL;
    if (snap && snap->odmr.tls_cert[0]) {
        tls = tls_context(&snap->odmr, why, sizeof(why));
        if (!tls) {
            fprintf(stderr, "waypost-odmrd: %s\n", why);
            wp_snapshot_unref(snap);
            snap = NULL;
        }
    }
    if (!snap || args.test_only) {
        if (snap)
            printf("%s: OK\n", path);
        SSL_CTX_free(tls);
        wp_snapshot_unref(snap);
        free(path);
        return snap ? 0 : 1;
    }
    const struct wp_odmr_conf *o = &snap->odmr; /* endpoints: fixed until restart */
    struct wp_daemon_conf dc = { o->pidfile, o->user, o->socket_mode, o->socket_owner, o->socket_group };
    struct wp_daemon daemon;
    wp_daemon_init(&daemon, "waypost-odmrd", path, args.foreground, &wp_reload_hooks, wp_snapshot_ref(snap), &dc);
    struct server srv;
    memset(&srv, 0, sizeof(srv));
    srv.d = &daemon;
    srv.snap = daemon.current;
    srv.tls = tls;
    srv.max_connections = o->max_connections;
    if (o->hostname[0])
        wp_strlcpy(srv.hostname, o->hostname, sizeof(srv.hostname));
    else if (gethostname(srv.hostname, sizeof(srv.hostname)) != 0 || !srv.hostname[0])
        wp_strlcpy(srv.hostname, "localhost", sizeof(srv.hostname));
    srv.hostname[sizeof(srv.hostname) - 1] = '\0';
    size_t nfds = o->nlisten + 1;
    struct listener_arg *la = wp_calloc(nfds, sizeof(*la));
    struct evconnlistener **ls = wp_calloc(nfds, sizeof(*ls));
    int *fds = wp_calloc(nfds, sizeof(int));
    struct event *sigev = NULL;
    int rc = 1;

    if (!wp_daemon_lock(&daemon, why, sizeof(why))) {
        fprintf(stderr, "waypost-odmrd: %s\n", why);
        goto out;
    }
    /* The spool is written after the privilege drop: odmr.user's. */
    if (!wp_daemon_user_dir(o->spool, o->user, why, sizeof(why)) || !wp_spool_open(o->spool, why, sizeof(why))) {
        fprintf(stderr, "waypost-odmrd: spool: %s\n", why);
        goto out;
    }
    /* Sockets first, while we may still be root. */
    for (size_t i = 0; i < nfds; i++) {
        const struct wp_endpoint *ep = i == 0 ? &o->lmtp : &o->listen[i - 1].ep;
        fds[i] = wp_daemon_listen(&daemon, ep, why, sizeof(why));
        if (fds[i] < 0) {
            fprintf(stderr, "waypost-odmrd: cannot listen on %s: %s\n",
                    i == 0 ? o->lmtp_text : o->listen[i - 1].text, why);
            goto out;
        }
    }
    if (!wp_daemon_detach(&daemon, why, sizeof(why)) || !wp_daemon_drop(&daemon, why, sizeof(why))) {
        wp_err("%s", why);
        goto out;
    }
    int sigfd = wp_daemon_signals(&daemon);
    srv.base = event_base_new();
    if (sigfd < 0 || !srv.base)
        goto out;
    for (size_t i = 0; i < nfds; i++) {
        la[i].srv = &srv;
        la[i].side = i == 0 ? SIDE_LMTP : SIDE_CUSTOMER;
        la[i].tls = i > 0 && o->listen[i - 1].tls;
        ls[i] = evconnlistener_new(srv.base, on_accept, &la[i], LEV_OPT_CLOSE_ON_EXEC, -1, fds[i]);
        if (!ls[i]) {
            wp_err("cannot listen on socket %zu", i);
            goto out;
        }
    }
    sigev = event_new(srv.base, sigfd, EV_READ | EV_PERSIST, on_signal, &srv);
    event_add(sigev, NULL);
    expire_schedule(&srv);
    wp_notice("ready: intake %s, %zu customer endpoint%s, spool %s, STARTTLS %s", o->lmtp_text, o->nlisten,
              o->nlisten == 1 ? "" : "s", o->spool, tls ? "on" : "off");
    wp_daemon_ready(&daemon, "ready: intake %s, %zu customer endpoint%s", o->lmtp_text, o->nlisten,
                    o->nlisten == 1 ? "" : "s");
    event_base_dispatch(srv.base);
    rc = 0;
    wp_notice("stopped");
out:
    for (size_t i = 0; i < nfds; i++)
        if (ls[i])
            evconnlistener_free(ls[i]);
    if (sigev)
        event_free(sigev);
    if (srv.expire_ev)
        event_free(srv.expire_ev);
    while (srv.conns) /* still open: dropped (their queues stay as they are) */
        conn_free(srv.conns);
    if (srv.base)
        event_base_free(srv.base);
    for (size_t i = 0; i < srv.nbusy; i++)
        free(srv.busy[i]);
    free(srv.busy);
    free(ls);
    free(la);
    free(fds);
    SSL_CTX_free(tls);
    rc = wp_daemon_end(&daemon, rc); /* closes the sockets, removes ours and the pidfile */
    wp_snapshot_unref(snap);
    free(path);
    return rc;
}
