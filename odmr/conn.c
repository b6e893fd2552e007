/* SPDX-License-Identifier: MIT */
/*
 * conn.c - waypost-odmrd's connections (conn.h): replies and lines, closing
 * once the output is out, the event callbacks, accepting with the
 * connection limit.
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
#include "odmr/auth.h"
#include "odmr/command.h"
#include "lib/strbuf.h"
#include "odmr/conn.h"
#include "odmr/dsn.h"
#include "odmr/spool.h"

/* ------------------------------------------------------------ helpers */

/* The reversed session under TLS sends each line in its own TLS record:
 * fetchmail's ODMR client splices the connection one line per readable
 * event on the socket, and lines that OpenSSL has already decrypted into
 * its buffer never make the socket readable again, so a record of several
 * lines stalls it.  A reference chain of the output buffer becomes one
 * SSL_write, hence one record. */
bool wp_conn_line_records(const struct conn *c)
{
    return c->tls && c->state >= ST_TURN_GREET;
}

void wp_conn_free_line(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    free((void *)data);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void wp_conn_cmd_begin(struct conn *c, enum wp_odmr_cmd cmd, unsigned replies)
{
    if (!c->srv->stats)
        return;
    c->cmd = (int)cmd;
    c->cmd_replies = replies ? replies : 1;
    c->cmd_code = 0;
    c->cmd_paused = 0;
    c->cmd_start = now_ns();
}

void wp_conn_cmd_pause(struct conn *c)
{
    if (c->cmd >= 0 && !c->cmd_paused) {
        uint64_t spent = now_ns() - c->cmd_start;
        c->cmd_paused = spent ? spent : 1;
    }
}

void wp_conn_cmd_resume(struct conn *c)
{
    if (c->cmd >= 0 && c->cmd_paused) {
        c->cmd_start = now_ns() - c->cmd_paused;
        c->cmd_paused = 0;
    }
}

/* A reply line of ours: a final one ("ddd " or "ddd") counts towards the
 * command being answered. */
static void cmd_replied(struct conn *c, const char *line, size_t n)
{
    if (c->cmd < 0 || n < 3 || line[0] < '2' || line[0] > '5' || (n > 3 && line[3] != ' '))
        return;
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (code > c->cmd_code)
        c->cmd_code = code;
    if (--c->cmd_replies > 0)
        return;
    uint64_t ns = c->cmd_paused ? c->cmd_paused : now_ns() - c->cmd_start;
    wp_odmr_count_command(c->srv->stats, wp_conn_proto(c), (enum wp_odmr_cmd)c->cmd, c->cmd_code, ns);
    c->cmd = -1;
}

void wp_conn_reply(struct conn *c, const char *fmt, ...)
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
    cmd_replied(c, buf, (size_t)n);
    memcpy(buf + n, "\r\n", 2);
    n += 2;
    if (wp_conn_line_records(c))
        evbuffer_add_reference(out, wp_strndup(buf, (size_t)n), (size_t)n, wp_conn_free_line, NULL);
    else
        evbuffer_add(out, buf, (size_t)n);
}

/* Read one line (CRLF or LF) into buf.  1: a line; 0: need more; -1: too
 * long (the rest of it is dropped) or holds a NUL. */
int wp_conn_get_line(struct evbuffer *in, char *buf, size_t size)
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

bool wp_conn_queue_busy(const struct server *srv, const char *q)
{
    for (size_t i = 0; i < srv->nbusy; i++)
        if (strcmp(srv->busy[i], q) == 0)
            return true;
    return false;
}

void wp_conn_close_inherited(struct server *srv)
{
    for (struct conn *c = srv->conns; c; c = c->next) {
        evutil_socket_t fd = c->bev ? bufferevent_getfd(c->bev) : -1;
        if (fd >= 0)
            close(fd);
        for (size_t k = 0; k < c->nqueues; k++)
            if (c->queue_locks[k] >= 0)
                close(c->queue_locks[k]);
    }
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
        if (c->queue_locks[k] >= 0)
            close(c->queue_locks[k]);
    }
    free(c->queues);
    free(c->queue_locks);
    c->queues = NULL;
    c->queue_locks = NULL;
    c->nqueues = 0;
}

void wp_conn_txn_reset(struct conn *c)
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

void wp_conn_txn_free(struct txn *t)
{
    if (!t->active)
        return;
    wp_strv_free(t->why, t->nwhy);
    wp_spool_msg_free(&t->msg);
    free(t->accepted);
    free(t->refused);
    memset(t, 0, sizeof(*t));
}

void wp_conn_free(struct conn *c)
{
    if (c->side == SIDE_CUSTOMER && c->nqueues)
        wp_info("%s: reversed session ended after %u message%s", c->peer, c->delivered,
                c->delivered == 1 ? "" : "s");
    wp_conn_txn_free(&c->cur);
    wp_conn_txn_free(&c->prev);
    wp_turn_queue_sync(c);
    queues_release(c);
    if (c->ids)
        wp_spool_names_free(c->ids, c->nids);
    wp_conn_txn_reset(c);
    if (c->body)
        evbuffer_free(c->body);
    if (c->timer)
        event_free(c->timer);
    if (c->closer)
        event_free(c->closer);
    if (c->auth_deadline)
        event_free(c->auth_deadline);
    if (c->auth_pending) {
        OPENSSL_cleanse(c->auth_pending, strlen(c->auth_pending));
        free(c->auth_pending);
    }
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->side == SIDE_LMTP)
        c->srv->lmtp_connections--;
    else
        c->srv->connections--;
    if (c->counted_ip)
        wp_anvil_disconnect(c->srv->anvil, c->peer, wp_now_ms());
    wp_accept_guard_freed(&c->srv->guard); /* a descriptor is free again */
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
        wp_conn_free(c);
        return;
    }
    struct timeval tv = {0, 20000};
    evtimer_add(c->closer, &tv);
}

/* Close once what was written has gone out (at most odmr.timeout later).
 * Never frees at once: callers may still look at c. */
void wp_conn_close(struct conn *c)
{
    if (c->state == ST_CLOSING)
        return;
    c->state = ST_CLOSING;
    bufferevent_disable(c->bev, EV_READ);
    c->close_deadline = wp_now_ms() + (uint64_t)wp_odmr_conf(c->snap)->timeout * 1000;
    c->closer = evtimer_new(c->srv->base, on_closer, c);
    struct timeval tv = {0, 0};
    evtimer_add(c->closer, &tv);
}

/* A refused command; too many of them end the connection. */
bool wp_conn_refuse(struct conn *c, const char *text)
{
    wp_odmr_count_error(c->srv->stats, wp_conn_proto(c), wp_odmr_error_of(atoi(text)));
    wp_conn_reply(c, "%s", text);
    if (++c->bad_commands >= WP_ODMR_BAD_COMMANDS_MAX) {
        wp_notice("%s: too many refused commands, closing", c->peer);
        wp_conn_reply(c, "421 4.7.0 %s Too many errors, closing", c->srv->hostname);
        wp_conn_close(c);
        return false;
    }
    return true;
}

void wp_conn_set_timeouts(struct conn *c)
{
    struct timeval tv = {wp_odmr_conf(c->snap)->timeout, 0};
    bufferevent_set_timeouts(c->bev, &tv, &tv);
}

/* ------------------------------------------------------------ events */

void wp_conn_process(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    while (c->state != ST_CLOSING && c->state != ST_AUTH_DELAY) {
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) > OUTPUT_MAX) {
            /* Commands keep coming, replies are not read: not a mail client. */
            wp_notice("%s: does not read its replies, closing", c->peer);
            wp_conn_close(c);
            return;
        }
        if (c->state == ST_DATA) {
            if (!wp_lmtp_data(c))
                return;
            continue;
        }
        if (c->state >= ST_TURN_GREET) {
            if (!wp_turn_input(c))
                return;
            continue;
        }
        char line[WP_ODMR_LINE_MAX];
        int r = wp_conn_get_line(in, line, sizeof(line));
        if (r == 0)
            return;
        if (r < 0) {
            wp_odmr_count_error(c->srv->stats, wp_conn_proto(c), WP_OE_LINE);
            wp_notice("%s: line too long or with a NUL byte, closing", c->peer);
            wp_conn_reply(c, "500 5.5.2 Line too long or malformed");
            wp_conn_close(c);
            return;
        }
        if (c->state == ST_AUTH_PLAIN || c->state == ST_AUTH_CRAM) {
            wp_conn_cmd_begin(c, WP_OC_AUTH_RESPONSE, 1);
            if (strcmp(line, "*") == 0) {
                c->state = ST_CMD;
                wp_conn_refuse(c, "501 5.0.0 Authentication cancelled");
            } else if (c->state == ST_AUTH_PLAIN) {
                wp_session_auth_plain(c, line);
            } else {
                wp_session_auth_cram(c, line);
            }
            continue;
        }
        wp_conn_cmd_begin(c, wp_odmr_command_of(line), 1);
        if (c->side == SIDE_LMTP)
            wp_lmtp_command(c, line);
        else
            wp_session_command(c, line);
    }
}

void wp_conn_on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    wp_conn_process(arg);
}

void wp_conn_on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (what & BEV_EVENT_TIMEOUT) {
        wp_odmr_count_timeout(c->srv->stats, wp_conn_proto(c), WP_OT_IDLE);
        wp_notice("%s: timeout, closing", c->peer);
        if ((what & BEV_EVENT_READING) && c->state < ST_TURN_GREET) {
            wp_conn_reply(c, "421 4.4.2 %s Timeout, closing", c->srv->hostname);
            wp_conn_close(c); /* the write timeout still guards the reply */
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
        wp_conn_free(c);
}

/* A refused connection: a short answer if the socket takes it at once,
 * and a warning at most once a minute (a flood must not flood the log). */
static void refuse_conn(struct server *srv, evutil_socket_t fd, const char *why)
{
    unsigned long suppressed;
    if (wp_ratelimit_pass(&srv->refuse_log, wp_now_ms(), 60000, &suppressed))
        wp_warn("%s: refusing a connection (%lu more refused since the last warning)", why, suppressed);
    static const char busy[] = "421 4.7.0 Too many connections, try again later\r\n";
    ssize_t w = send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)w;
    evutil_closesocket(fd);
}

/* odmr.auth_timeout: the customer has not authenticated in time.  NOOP and
 * RSET do not move this deadline (they do move the idle timeout). */
static void on_auth_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (c->user[0] || c->state >= ST_TURN_GREET || c->state == ST_CLOSING)
        return;
    wp_odmr_count_timeout(c->srv->stats, WP_OP_ODMR, WP_OT_AUTH);
    wp_notice("%s: no successful AUTH within %d s, closing", c->peer, wp_odmr_conf(c->snap)->auth_timeout);
    wp_conn_reply(c, "421 4.4.2 %s Authentication timeout, closing", c->srv->hostname);
    wp_conn_close(c);
}

static void accept_conn(struct server *srv, evutil_socket_t fd, struct sockaddr *sa, enum side side,
                        bool implicit_tls)
{
    wp_accept_guard_accepted(&srv->guard);
    char host[64] = "";
    if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)
        evutil_inet_ntop(sa->sa_family,
                         sa->sa_family == AF_INET ? (void *)&((struct sockaddr_in *)sa)->sin_addr
                                                  : (void *)&((struct sockaddr_in6 *)sa)->sin6_addr,
                         host, sizeof(host));
    else
        wp_strlcpy(host, side == SIDE_LMTP ? "lmtp" : "local", sizeof(host));
    if (side == SIDE_LMTP && srv->lmtp_connections >= srv->lmtp_max_connections) {
        char why[96];
        snprintf(why, sizeof(why), "LMTP intake limit (%d) reached", srv->lmtp_max_connections);
        refuse_conn(srv, fd, why);
        return;
    }
    if (side == SIDE_CUSTOMER && srv->connections >= srv->max_connections) {
        char why[96];
        snprintf(why, sizeof(why), "connection limit (%d) reached", srv->max_connections);
        refuse_conn(srv, fd, why);
        return;
    }
    int per_ip = wp_odmr_conf(srv->snap)->max_connections_per_ip;
    if (side == SIDE_CUSTOMER && !wp_anvil_connect(srv->anvil, host, per_ip, wp_now_ms())) {
        char why[160];
        snprintf(why, sizeof(why), "%s: per-address limit (%d) reached", host, per_ip);
        refuse_conn(srv, fd, why);
        return;
    }
    struct conn *c = wp_calloc(1, sizeof(*c));
    c->srv = srv;
    c->snap = wp_snapshot_ref(srv->snap);
    c->side = side;
    c->state = ST_CMD;
    c->cmd = -1;
    c->counted_ip = side == SIDE_CUSTOMER;
    if (side == SIDE_LMTP)
        srv->lmtp_connections++;
    else
        srv->connections++;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev_conn = c;
    srv->conns = c;
    wp_strlcpy(c->peer, host, sizeof(c->peer));
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
        wp_conn_free(c);
        return;
    }
    bufferevent_setcb(c->bev, wp_conn_on_read, NULL, wp_conn_on_event, c);
    wp_conn_set_timeouts(c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (side == SIDE_LMTP)
        wp_conn_reply(c, "220 %s LMTP Waypost ODMR intake", srv->hostname);
    else
        wp_conn_reply(c, "220 %s ESMTP Waypost on-demand mail relay server ready", srv->hostname);
    if (side == SIDE_CUSTOMER) {
        c->auth_deadline = evtimer_new(srv->base, on_auth_deadline, c);
        struct timeval tv = {wp_odmr_conf(c->snap)->auth_timeout, 0};
        evtimer_add(c->auth_deadline, &tv);
    }
}

void wp_conn_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                       void *arg)
{
    (void)l;
    (void)salen;
    struct listener_arg *la = arg;
    accept_conn(la->srv, fd, sa, la->side, la->tls);
}

void wp_conn_on_accept_error(struct evconnlistener *l, void *arg)
{
    (void)l;
    struct listener_arg *la = arg;
    wp_accept_guard_error(&la->srv->guard, EVUTIL_SOCKET_ERROR(), "waypost-odmrd");
}
