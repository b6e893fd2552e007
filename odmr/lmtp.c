/* SPDX-License-Identifier: MIT */
/*
 * lmtp.c - waypost-odmrd's LMTP intake: Postfix delivers the mail of ODMR
 * queues here; each recipient's queue is its Router route's queue (merged
 * domains share one), other recipients get a 550.  A message is stored per
 * queue (spool.h) and fsync'ed before its 250 goes out.
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
#include "odmr/command.h"
#include "odmr/conn.h"
#include "odmr/dsn.h"
#include "odmr/spool.h"

/* ------------------------------------------------------------ LMTP intake */

static void lmtp_rcpt(struct conn *c, const char *arg)
{
    char addr[WP_ADDR_MAX + 1];
    const char *params;
    if (!c->have_mail) {
        wp_conn_refuse(c, "503 5.5.1 MAIL first");
        return;
    }
    if (!wp_command_envelope_arg(arg, "TO:", addr, sizeof(addr), &params) || !addr[0]) {
        wp_conn_refuse(c, "501 5.5.4 Syntax: RCPT TO:<address>");
        return;
    }
    if (c->nrcpts >= LMTP_RCPTS_MAX) {
        wp_conn_reply(c, "452 4.5.3 Too many recipients");
        return;
    }
    struct wp_route route;
    memset(&route, 0, sizeof(route));
    struct wp_resolve_opts opts = {.trusted = true, .access = false};
    wp_resolve(c->snap->router, addr, &opts, &route, NULL);
    if (route.kind == WP_ROUTE_TEMP) {
        wp_conn_reply(c, "451 4.3.0 <%s>: %s", addr, route.text);
        return;
    }
    wp_str_lower(route.queue);
    /* Held (ETRN) and ATRN queues share the store (DESIGN §5). */
    if ((route.kind != WP_ROUTE_ODMR && route.kind != WP_ROUTE_HOLD) ||
        !wp_spool_queue_name_valid(route.queue)) {
        wp_notice("lmtp: <%s> is not routed to a held or ODMR queue (%s), refused", addr,
                  wp_route_kind_name(route.kind));
        wp_odmr_log_intake(c->srv->stats, "", "", c->sender, 0, 1, "refused", "not an ODMR queue");
        wp_conn_reply(c, "550 5.1.1 <%s>: not an ODMR queue here", addr);
        return;
    }
    c->rcpts = wp_realloc(c->rcpts, (c->nrcpts + 1) * sizeof(*c->rcpts));
    c->rcpts[c->nrcpts].addr = wp_strdup(addr);
    wp_strlcpy(c->rcpts[c->nrcpts].queue, route.queue, sizeof(c->rcpts[c->nrcpts].queue));
    c->nrcpts++;
    wp_conn_reply(c, "250 2.1.5 <%s> queue %s", addr, route.queue);
}

void wp_lmtp_command(struct conn *c, const char *line)
{
    const char *arg;
    if (wp_command_is(line, "LHLO", &arg)) {
        if (!*arg) {
            wp_conn_refuse(c, "501 5.5.4 Syntax: LHLO hostname");
            return;
        }
        wp_conn_txn_reset(c);
        c->lhlo = true;
        wp_conn_reply(c, "250-%s", c->srv->hostname);
        wp_conn_reply(c, "250-PIPELINING");
        wp_conn_reply(c, "250-SIZE %d", wp_odmr_conf(c->snap)->max_message_size);
        wp_conn_reply(c, "250-8BITMIME");
        wp_conn_reply(c, "250 ENHANCEDSTATUSCODES");
    } else if (wp_command_is(line, "MAIL", &arg)) {
        char addr[WP_ADDR_MAX + 1];
        const char *params;
        if (!c->lhlo) {
            wp_conn_refuse(c, "503 5.5.1 LHLO first");
        } else if (c->have_mail) {
            wp_conn_refuse(c, "503 5.5.1 Nested MAIL command");
        } else if (!wp_command_envelope_arg(arg, "FROM:", addr, sizeof(addr), &params)) {
            wp_conn_refuse(c, "501 5.5.4 Syntax: MAIL FROM:<address>");
        } else {
            const char *size = strcasestr(params, "SIZE=");
            if (size && strtoll(size + 5, NULL, 10) > wp_odmr_conf(c->snap)->max_message_size) {
                wp_conn_reply(c, "552 5.3.4 Message too big");
                return;
            }
            c->sender = wp_strdup(addr);
            c->have_mail = true;
            wp_conn_reply(c, "250 2.1.0 Ok");
        }
    } else if (wp_command_is(line, "RCPT", &arg)) {
        lmtp_rcpt(c, arg);
    } else if (wp_command_is(line, "DATA", &arg)) {
        if (!c->have_mail)
            wp_conn_refuse(c, "503 5.5.1 MAIL first");
        else if (c->nrcpts == 0)
            wp_conn_refuse(c, "503 5.5.1 No valid recipients");
        else {
            if (!c->body)
                c->body = evbuffer_new();
            c->state = ST_DATA;
            wp_conn_reply(c, "354 End data with <CR><LF>.<CR><LF>");
        }
    } else if (wp_command_is(line, "RSET", &arg)) {
        wp_conn_txn_reset(c);
        wp_conn_reply(c, "250 2.0.0 Ok");
    } else if (wp_command_is(line, "NOOP", &arg)) {
        wp_conn_reply(c, "250 2.0.0 Ok");
    } else if (wp_command_is(line, "QUIT", &arg)) {
        wp_conn_reply(c, "221 2.0.0 Bye");
        wp_conn_close(c);
    } else {
        wp_conn_refuse(c, "502 5.5.2 Command not implemented");
    }
}

/* The message is complete: store it once per queue, answer per recipient. */
static void lmtp_deliver(struct conn *c)
{
    size_t len = evbuffer_get_length(c->body);
    if (c->too_big) {
        wp_notice("lmtp: message from <%s> over %d bytes, refused", c->sender,
                  wp_odmr_conf(c->snap)->max_message_size);
        wp_odmr_log_intake(c->srv->stats, "", "", c->sender, len, c->nrcpts, "refused", "message too big");
        for (size_t i = 0; i < c->nrcpts; i++)
            wp_conn_reply(c, "552 5.3.4 <%s>: message too big", c->rcpts[i].addr);
        wp_conn_txn_reset(c);
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
        if (wp_spool_store(wp_odmr_conf(c->snap)->spool, c->rcpts[i].queue, c->sender, group, n, body, len,
                           now, id, err, sizeof(err))) {
            wp_info("%s/%s: from=<%s>, size=%zu, nrcpt=%zu (queued)", c->rcpts[i].queue, id, c->sender, len,
                    n);
            wp_odmr_log_intake(c->srv->stats, c->rcpts[i].queue, id, c->sender, len, n, "queued", "");
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
        wp_conn_reply(c, "%.3s <%s>%s", status[i], c->rcpts[i].addr, status[i] + 3);
        free(status[i]);
    }
    free(status);
    free(group);
    wp_conn_txn_reset(c);
}

/* Message text: dot-unstuff, watch the size, stop at the lone dot. */
bool wp_lmtp_data(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t max = (size_t)wp_odmr_conf(c->snap)->max_message_size;
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
                wp_conn_cmd_begin(c, WP_OC_EOM, (unsigned)c->nrcpts);
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
