/* SPDX-License-Identifier: MIT */
/*
 * turn.c - waypost-odmrd's turned delivery: after ATRN's 250 the customer
 * greets and waypost-odmrd delivers as an SMTP client on the same
 * connection.  A recipient leaves the spool only after the customer's 250
 * for the message; a 5xx returns it to the sender with a DSN.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/address.h"
#include "lib/log.h"
#include "lib/util.h"
#include "odmr/decision.h"
#include "odmr/auth.h"
#include "odmr/conn.h"
#include "odmr/dsn.h"
#include "odmr/spool.h"

/* ------------------------------------------------------------ reversed delivery */

/* One SMTP reply from the customer's side: 1 complete (code, last line in
 * text), 0 need more, -1 malformed or too long. */
static int get_reply(struct conn *c, int *code, char *text, size_t size)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    for (;;) {
        char line[WP_ODMR_LINE_MAX];
        int r = wp_conn_get_line(in, line, sizeof(line));
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
        wp_str_printable(text); /* the customer's words go into our log and into DSNs */
        return 1;
    }
}

static void send_transaction(struct conn *c, struct txn *t)
{
    wp_conn_reply(c, "MAIL FROM:<%s>", t->msg.sender);
    t->reply_no = 0;
    t->mail_ok = t->data_ok = false;
    if (!c->pipelining)
        return;
    for (size_t i = 0; i < t->msg.nrcpts; i++)
        wp_conn_reply(c, "RCPT TO:<%s>", t->msg.rcpts[i]);
    wp_conn_reply(c, "DATA");
}

/* The message text, dot-stuffed, and the final dot. */
static void send_body(struct conn *c, const struct txn *t)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    const char *p = t->msg.body, *end = t->msg.body + t->msg.body_len;
    bool records = wp_conn_line_records(c);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl + 1 : end;
        size_t n = (size_t)(stop - p);
        bool dot = *p == '.';
        if (records) {
            /* One record per line (see wp_conn_line_records); copied, because the
             * message may be freed before a dropped connection's buffer. */
            char *line = wp_malloc(n + 1);
            line[0] = '.';
            memcpy(line + dot, p, n);
            evbuffer_add_reference(out, line, n + dot, wp_conn_free_line, NULL);
        } else {
            if (dot)
                evbuffer_add(out, ".", 1);
            evbuffer_add(out, p, n);
        }
        p = stop;
    }
    if (t->msg.body_len > 0 && end[-1] != '\n')
        wp_conn_reply(c, "%s", "");
    wp_conn_reply(c, ".");
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
void wp_turn_queue_sync(struct conn *c)
{
    char err[512];
    if (c->unsynced && c->qi > 0 &&
        !wp_spool_sync(wp_odmr_conf(c->snap)->spool, c->queues[c->qi - 1], err, sizeof(err)))
        wp_err("spool: %s", err);
    c->unsynced = 0;
}

/* Drop the recipients with done[i] from the spool file.  Removals from the
 * queue being delivered are fsync'ed in batches (wp_turn_queue_sync). */
static void settle(struct conn *c, struct txn *t, const bool *done)
{
    char err[512];
    bool current = c->qi > 0 && strcmp(t->msg.queue, c->queues[c->qi - 1]) == 0;
    if (!wp_spool_settle(wp_odmr_conf(c->snap)->spool, &t->msg, done, !current, err, sizeof(err)))
        wp_err("spool: %s", err);
    if (current && ++c->unsynced >= SYNC_EVERY)
        wp_turn_queue_sync(c);
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
            if (!wp_spool_load(wp_odmr_conf(c->snap)->spool, c->queues[c->qi - 1], id, true, &t->msg, err,
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
            wp_turn_queue_sync(c); /* this queue is done */
        }
        if (c->qi >= c->nqueues)
            return false;
        c->ids = wp_spool_list(wp_odmr_conf(c->snap)->spool, c->queues[c->qi++], &c->nids);
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
    wp_conn_reply(c, "QUIT");
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
                wp_conn_reply(c, "RSET");
            } else {
                wp_conn_reply(c, "RCPT TO:<%s>", t->msg.rcpts[0]);
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
        if (!t->accepted[i]) {
            wp_notice("%s/%s: <%s> refused: %s", t->msg.queue, t->msg.id, t->msg.rcpts[i], text);
            wp_odmr_log_delivery(c->srv->stats, t->msg.queue, t->msg.id, t->msg.rcpts[i], "refused", text);
        }
        if (!c->pipelining) {
            if (i + 1 < n) {
                wp_conn_reply(c, "RCPT TO:<%s>", t->msg.rcpts[i + 1]);
                return;
            }
            bool any = false;
            for (size_t r = 0; r < n; r++)
                any = any || t->accepted[r];
            if (!any) {
                bounce_refused(c, t, text);
                c->state = ST_TURN_RSET;
                wp_conn_reply(c, "RSET");
            } else {
                wp_conn_reply(c, "DATA");
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
            wp_conn_reply(c, ".");
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
    wp_conn_reply(c, "RSET");
}

/* The final reply for prev. */
static void dot_reply(struct conn *c, int code, const char *text)
{
    struct txn *t = &c->prev;
    if (t->data_ok && code / 100 == 2) {
        for (size_t i = 0; i < t->msg.nrcpts; i++)
            if (t->accepted[i]) {
                wp_info("%s/%s: to=<%s>, status=sent by ATRN (%s)", t->msg.queue, t->msg.id, t->msg.rcpts[i],
                        text);
                wp_odmr_log_delivery(c->srv->stats, t->msg.queue, t->msg.id, t->msg.rcpts[i], "sent", text);
            }
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
    wp_conn_txn_free(t);
}

bool wp_turn_input(struct conn *c)
{
    int code;
    char text[WP_ODMR_LINE_MAX];
    int r = get_reply(c, &code, text, sizeof(text));
    if (r == 0)
        return false;
    if (r < 0) {
        wp_odmr_count_error(c->srv->stats, WP_OP_ODMR, WP_OE_REPLY);
        wp_notice("%s: malformed reply in the reversed session, closing", c->peer);
        wp_conn_close(c);
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
            wp_conn_reply(c, "QUIT");
            break;
        }
        c->state = ST_TURN_EHLO;
        c->pipelining = false;
        wp_conn_reply(c, "EHLO %s", c->srv->hostname);
        break;
    case ST_TURN_EHLO:
    case ST_TURN_HELO:
        if (code / 100 != 2) {
            if (c->state == ST_TURN_EHLO) {
                c->state = ST_TURN_HELO;
                wp_conn_reply(c, "HELO %s", c->srv->hostname);
            } else {
                wp_notice("%s: customer refused HELO: %s", c->peer, text);
                c->state = ST_TURN_QUIT;
                wp_conn_reply(c, "QUIT");
            }
            break;
        }
        c->qi = 0;
        turn_next(c);
        break;
    case ST_TURN_TXN: txn_reply(c, code, text); break;
    case ST_TURN_RSET:
        wp_conn_txn_free(&c->cur);
        turn_next(c);
        break;
    case ST_TURN_QUIT: wp_conn_close(c); return false;
    default: break;
    }
    return c->state != ST_CLOSING;
}
