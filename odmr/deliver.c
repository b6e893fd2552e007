/* SPDX-License-Identifier: MIT */
/*
 * deliver.c - ETRN delivery of one held queue (see deliver.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "odmr/deliver.h"
#include "odmr/dsn.h"
#include "odmr/mx.h"
#include "odmr/settings.h"
#include "odmr/spool.h"
#include "router/router.h"

#define OUT_MAX 65536
#define LINE_MAX_ 1024
#define SYNC_BATCH 64

struct peer {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    char out[OUT_MAX];
    size_t outlen;
    char in[8192];
    size_t inlen, inpos;
    bool broken;
};

static bool raw_write(struct peer *p, const char *buf, size_t len)
{
    while (len && !p->broken) {
        ssize_t n;
        if (p->ssl) {
            int k = SSL_write(p->ssl, buf, (int)len);
            n = k > 0 ? k : -1;
        } else {
            n = send(p->fd, buf, len, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR)
                continue;
        }
        if (n <= 0) {
            p->broken = true;
            break;
        }
        buf += n;
        len -= (size_t)n;
    }
    return !p->broken;
}

static bool flush_out(struct peer *p)
{
    bool ok = raw_write(p, p->out, p->outlen);
    p->outlen = 0;
    return ok;
}

static bool put(struct peer *p, const char *buf, size_t len)
{
    if (p->outlen + len > sizeof(p->out)) {
        if (!flush_out(p))
            return false;
        if (len > sizeof(p->out))
            return raw_write(p, buf, len);
    }
    memcpy(p->out + p->outlen, buf, len);
    p->outlen += len;
    return true;
}

static bool putf(struct peer *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool putf(struct peer *p, const char *fmt, ...)
{
    char line[LINE_MAX_];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line))
        return false;
    return put(p, line, (size_t)n);
}

/* One line without its CRLF; false when the connection broke or timed out. */
static bool get_line(struct peer *p, char *line, size_t size)
{
    size_t o = 0;
    for (;;) {
        if (p->inpos == p->inlen) {
            if (p->broken)
                return false;
            ssize_t n;
            if (p->ssl) {
                int k = SSL_read(p->ssl, p->in, sizeof(p->in));
                n = k > 0 ? k : -1;
            } else {
                n = recv(p->fd, p->in, sizeof(p->in), 0);
                if (n < 0 && errno == EINTR)
                    continue;
            }
            if (n <= 0) {
                p->broken = true;
                return false;
            }
            p->inlen = (size_t)n;
            p->inpos = 0;
        }
        char ch = p->in[p->inpos++];
        if (ch == '\n') {
            if (o && line[o - 1] == '\r')
                o--;
            line[o] = '\0';
            return true;
        }
        if (o + 1 < size)
            line[o++] = ch;
    }
}

/* A whole (multi-line) reply: its code, 0 on a broken connection or a
 * malformed reply.  text gets the last line; ext (if not NULL) every line
 * after the first, space separated, upper-cased (for EHLO keywords). */
static int get_reply(struct peer *p, char *text, size_t size, char *ext, size_t extsize)
{
    char line[LINE_MAX_];
    if (ext && extsize)
        ext[0] = '\0';
    for (bool first = true;; first = false) {
        bool got = get_line(p, line, sizeof(line));
        if (!got || strlen(line) < 3 || line[0] < '2' || line[0] > '5') {
            p->broken = true;
            snprintf(text, size, "%s", got ? line : "connection lost or timed out");
            return 0;
        }
        if (ext && !first && strlen(line) > 4) {
            size_t el = strlen(ext);
            snprintf(ext + el, extsize - el, " %s ", line + 4);
        }
        if (line[3] != '-') {
            snprintf(text, size, "%s", line);
            if (ext)
                for (char *c = ext; *c; c++)
                    if (*c >= 'a' && *c <= 'z')
                        *c = (char)(*c - 'a' + 'A');
            return atoi(line);
        }
    }
}

static bool connect_timeout(struct peer *p, const struct wp_mx_addr *a, int seconds)
{
    p->fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (p->fd < 0)
        return false;
    int r = connect(p->fd, (const struct sockaddr *)&a->sa, a->len);
    if (r != 0 && errno == EINPROGRESS) {
        struct pollfd pf = {p->fd, POLLOUT, 0};
        int err = 0;
        socklen_t el = sizeof(err);
        r = poll(&pf, 1, seconds * 1000) == 1 && getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 &&
                    !err
                ? 0
                : -1;
        if (err)
            errno = err;
    }
    if (r != 0) {
        close(p->fd);
        p->fd = -1;
        return false;
    }
    int fl = fcntl(p->fd, F_GETFL);
    fcntl(p->fd, F_SETFL, fl & ~O_NONBLOCK);
    struct timeval tv = {seconds, 0};
    setsockopt(p->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(p->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return true;
}

static void peer_close(struct peer *p)
{
    if (p->ssl) {
        SSL_shutdown(p->ssl);
        SSL_free(p->ssl);
    }
    if (p->ctx)
        SSL_CTX_free(p->ctx);
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    p->ssl = NULL;
    p->ctx = NULL;
}

/* EHLO (HELO when refused), STARTTLS when offered and EHLO again.  ext
 * gets the EHLO keywords. */
static bool greet(struct peer *p, const char *hostname, char *ext, size_t extsize, char *text, size_t tsize)
{
    if (get_reply(p, text, tsize, NULL, 0) != 220)
        return false;
    putf(p, "EHLO %s\r\n", hostname);
    flush_out(p);
    int code = get_reply(p, text, tsize, ext, extsize);
    if (code != 250) {
        if (code == 0)
            return false;
        ext[0] = '\0';
        putf(p, "HELO %s\r\n", hostname);
        flush_out(p);
        return get_reply(p, text, tsize, NULL, 0) == 250;
    }
    if (!strstr(ext, " STARTTLS "))
        return true;
    putf(p, "STARTTLS\r\n");
    flush_out(p);
    if (get_reply(p, text, tsize, NULL, 0) != 220)
        return !p->broken; /* refused: go on in clear */
    p->ctx = SSL_CTX_new(TLS_client_method());
    p->ssl = p->ctx ? SSL_new(p->ctx) : NULL;
    if (!p->ssl || SSL_set_fd(p->ssl, p->fd) != 1 || SSL_connect(p->ssl) != 1) {
        char e[256];
        ERR_error_string_n(ERR_get_error(), e, sizeof(e));
        snprintf(text, tsize, "TLS handshake failed: %s", e);
        p->broken = true;
        return false;
    }
    p->inlen = p->inpos = 0; /* nothing read in clear counts after the handshake */
    putf(p, "EHLO %s\r\n", hostname);
    flush_out(p);
    return get_reply(p, text, tsize, ext, extsize) == 250;
}

/* The message text, dot-stuffed, then the lone dot. */
static bool put_body(struct peer *p, const char *body, size_t len)
{
    const char *q = body, *end = body + len;
    while (q < end) {
        if (*q == '.' && !put(p, ".", 1))
            return false;
        const char *nl = memchr(q, '\n', (size_t)(end - q));
        const char *stop = nl ? nl + 1 : end;
        if (!put(p, q, (size_t)(stop - q)))
            return false;
        q = stop;
    }
    if (len && body[len - 1] != '\n' && !put(p, "\r\n", 2))
        return false;
    return put(p, ".\r\n", 3);
}

struct run {
    const struct wp_snapshot *s;
    const struct wp_odmr_conf *o;
    const char *hostname;
    const char *queue;
    struct peer *p;
    bool pipelining;
    unsigned unsynced;
    struct wp_deliver_result *res;
};

/* Return the refused recipients, then drop the settled ones. */
static void settle(struct run *r, struct wp_spool_msg *m, bool *done, bool *refused, char **why)
{
    char err[512];
    bool any = false;
    for (size_t i = 0; i < m->nrcpts; i++)
        any = any || refused[i];
    if (any) {
        if (wp_dsn_return(r->s, r->hostname, m, refused, why, err, sizeof(err))) {
            for (size_t i = 0; i < m->nrcpts; i++)
                if (refused[i]) {
                    done[i] = true;
                    r->res->returned++;
                    wp_info("%s/%s: to=<%s>, relay=%s, status=bounced (%s)", m->queue, m->id, m->rcpts[i],
                            r->res->relay, why[i] ? why[i] : "");
                }
        } else {
            wp_err("%s/%s: cannot return to <%s>: %s", m->queue, m->id, m->sender, err);
        }
    }
    size_t left = 0;
    bool change = false;
    for (size_t i = 0; i < m->nrcpts; i++) {
        left += !done[i];
        change = change || done[i];
    }
    r->res->waiting += (unsigned)left;
    if (!change)
        return;
    if (!wp_spool_settle(r->o->spool, m, done, false, err, sizeof(err)))
        wp_err("spool: %s", err);
    if (++r->unsynced >= SYNC_BATCH) {
        if (!wp_spool_sync(r->o->spool, r->queue, err, sizeof(err)))
            wp_err("spool: %s", err);
        r->unsynced = 0;
    }
}

/* One message; false when the connection broke (the message waits). */
static bool deliver_one(struct run *r, struct wp_spool_msg *m)
{
    struct peer *p = r->p;
    size_t n = m->nrcpts;
    bool *accepted = wp_calloc(n + 1, sizeof(bool));
    bool *refused = wp_calloc(n + 1, sizeof(bool));
    bool *done = wp_calloc(n + 1, sizeof(bool));
    char **why = wp_calloc(n + 1, sizeof(char *));
    char text[LINE_MAX_];
    bool ok = true, need_rset = true;
    int code;

    /* MAIL, RCPTs, DATA: in one write with PIPELINING, else one by one. */
    putf(p, "MAIL FROM:<%s>\r\n", m->sender);
    if (!r->pipelining) {
        flush_out(p);
        code = get_reply(p, text, sizeof(text), NULL, 0);
        goto mail_reply;
    }
    for (size_t i = 0; i < n; i++)
        putf(p, "RCPT TO:<%s>\r\n", m->rcpts[i]);
    putf(p, "DATA\r\n");
    flush_out(p);
    code = get_reply(p, text, sizeof(text), NULL, 0);
mail_reply:
    if (code == 0) {
        ok = false;
        goto out;
    }
    bool mail_ok = code / 100 == 2;
    if (!mail_ok)
        for (size_t i = 0; i < n; i++) {
            refused[i] = code / 100 == 5;
            why[i] = refused[i] ? wp_strdup(text) : NULL;
        }
    size_t nacc = 0;
    for (size_t i = 0; i < n && (mail_ok || r->pipelining); i++) {
        if (!r->pipelining) {
            putf(p, "RCPT TO:<%s>\r\n", m->rcpts[i]);
            flush_out(p);
        }
        code = get_reply(p, text, sizeof(text), NULL, 0);
        if (code == 0) {
            ok = false;
            goto out;
        }
        if (!mail_ok)
            continue;
        if (code / 100 == 2) {
            accepted[i] = true;
            nacc++;
        } else if (code / 100 == 5) {
            refused[i] = true;
            why[i] = wp_strdup(text);
        } else {
            wp_info("%s/%s: to=<%s>, relay=%s, status=deferred (%s)", m->queue, m->id, m->rcpts[i],
                    r->res->relay, text);
        }
    }
    if (!r->pipelining && (!mail_ok || nacc == 0))
        goto settle; /* no DATA sent */
    if (!r->pipelining) {
        putf(p, "DATA\r\n");
        flush_out(p);
    }
    code = get_reply(p, text, sizeof(text), NULL, 0);
    if (code == 0) {
        ok = false;
        goto out;
    }
    if (code != 354)
        goto settle;
    if (!mail_ok || nacc == 0) { /* a server that says 354 to no recipients gets an empty message */
        putf(p, ".\r\n");
        flush_out(p);
        if (get_reply(p, text, sizeof(text), NULL, 0) == 0)
            ok = false;
        need_rset = false;
        goto settle;
    }
    put_body(p, m->body, m->body_len);
    flush_out(p);
    code = get_reply(p, text, sizeof(text), NULL, 0);
    if (code == 0) {
        ok = false; /* the customer may have it: at most a duplicate next time */
        goto out;
    }
    need_rset = false;
    for (size_t i = 0; i < n; i++) {
        if (!accepted[i])
            continue;
        if (code / 100 == 2) {
            done[i] = true;
            r->res->delivered++;
            wp_info("%s/%s: to=<%s>, relay=%s, status=sent (%s)", m->queue, m->id, m->rcpts[i], r->res->relay,
                    text);
        } else if (code / 100 == 5) {
            refused[i] = true;
            why[i] = wp_strdup(text);
        } else {
            wp_info("%s/%s: to=<%s>, relay=%s, status=deferred (%s)", m->queue, m->id, m->rcpts[i],
                    r->res->relay, text);
        }
    }
settle:
    if (need_rset) {
        putf(p, "RSET\r\n");
        flush_out(p);
        if (get_reply(p, text, sizeof(text), NULL, 0) == 0)
            ok = false;
    }
    settle(r, m, done, refused, why);
    free(accepted);
    free(refused);
    free(done);
    wp_router_domains_free(why, n);
    return ok;
out:
    snprintf(r->res->error, sizeof(r->res->error), "%s: %s", r->res->relay, text);
    r->res->waiting += (unsigned)n;
    free(accepted);
    free(refused);
    free(done);
    wp_router_domains_free(why, n);
    return false;
}

/* The next hop of the queue: the route of its first message's first
 * recipient, as Postfix would have taken it. */
static bool queue_route(const struct wp_snapshot *s, const char *queue, const struct wp_spool_msg *m,
                        struct wp_route *rt, char *err, size_t errlen)
{
    if (!wp_router_queue_listed(s->router, WP_ROUTE_HOLD, queue)) {
        snprintf(err, errlen,
                 "queue %s is not listed in router.hold_queues (ATRN only: the customer collects it)", queue);
        return false;
    }
    struct wp_resolve_opts opts = {.trusted = true, .access = false};
    memset(rt, 0, sizeof(*rt));
    wp_resolve(s->router, m->rcpts[0], &opts, rt, NULL);
    wp_str_lower(rt->queue);
    if ((rt->kind != WP_ROUTE_HOLD && rt->kind != WP_ROUTE_ODMR) || strcmp(rt->queue, queue) != 0) {
        snprintf(err, errlen, "<%s> no longer routes to queue %s (%s)", m->rcpts[0], queue,
                 wp_route_kind_name(rt->kind));
        return false;
    }
    return true;
}

enum wp_deliver_status wp_deliver_queue(const struct wp_snapshot *s, const char *hostname, const char *queue,
                                        struct wp_deliver_result *res)
{
    memset(res, 0, sizeof(*res));
    const struct wp_odmr_conf *o = wp_odmr_conf(s);
    if (!wp_spool_queue_name_valid(queue)) {
        snprintf(res->error, sizeof(res->error), "'%s' is not a queue name", queue);
        return WP_DELIVER_FAIL;
    }
    int dfd = wp_spool_lock(o->spool, queue);
    if (dfd < 0) {
        if (errno == ENOENT)
            return WP_DELIVER_DONE; /* nothing ever arrived */
        if (errno == EWOULDBLOCK) {
            snprintf(res->error, sizeof(res->error), "queue %s is being delivered", queue);
            return WP_DELIVER_BUSY;
        }
        snprintf(res->error, sizeof(res->error), "%s/%s: %s", o->spool, queue, strerror(errno));
        return WP_DELIVER_FAIL;
    }
    size_t nids;
    char **ids = wp_spool_list(o->spool, queue, &nids);
    res->messages = (unsigned)nids;
    enum wp_deliver_status st = WP_DELIVER_DONE;
    struct peer *p = NULL;
    struct run r = {s, o, hostname, queue, NULL, false, 0, res};
    size_t i = 0;
    char err[512];
    struct wp_spool_msg m;
    /* The first message that loads tells the route. */
    bool have = false;
    for (; i < nids && !have; i++)
        have = wp_spool_load(o->spool, queue, ids[i], true, &m, err, sizeof(err));
    if (!have)
        goto out;
    i--;
    struct wp_route rt;
    if (!queue_route(s, queue, &m, &rt, res->error, sizeof(res->error))) {
        wp_spool_msg_free(&m);
        st = WP_DELIVER_FAIL;
        goto out;
    }
    struct wp_mx_addr addrs[WP_MX_ADDRS_MAX];
    int port = rt.port > 0 ? rt.port : o->smtp_port;
    size_t na = wp_mx_resolve(rt.nexthop, rt.mx, port, o->dns_servers, addrs, res->error, sizeof(res->error));
    p = wp_calloc(1, sizeof(*p));
    p->fd = -1;
    char ext[2048], text[LINE_MAX_];
    bool up = false;
    for (size_t k = 0; k < na && !up; k++) {
        snprintf(res->relay, sizeof(res->relay), "%s[%s]:%d", addrs[k].host, addrs[k].text, port);
        memset(p, 0, sizeof(*p));
        p->fd = -1;
        if (!connect_timeout(p, &addrs[k], o->timeout)) {
            snprintf(res->error, sizeof(res->error), "%s: %s", res->relay, strerror(errno));
            wp_info("queue %s: %s", queue, res->error);
            continue;
        }
        text[0] = '\0';
        up = greet(p, hostname, ext, sizeof(ext), text, sizeof(text));
        if (!up) {
            snprintf(res->error, sizeof(res->error), "%s: %s", res->relay, text[0] ? text : "no greeting");
            wp_info("queue %s: %s", queue, res->error);
            peer_close(p);
        }
    }
    if (!up) {
        res->waiting += (unsigned)m.nrcpts;
        wp_spool_msg_free(&m);
        res->relay[0] = '\0';
        st = WP_DELIVER_FAIL;
        goto count_rest;
    }
    res->error[0] = '\0';
    r.p = p;
    r.pipelining = strstr(ext, " PIPELINING ") != NULL;
    for (;;) {
        bool alive = deliver_one(&r, &m);
        wp_spool_msg_free(&m);
        if (!alive) {
            st = WP_DELIVER_FAIL;
            break;
        }
        have = false;
        for (i++; i < nids && !have; i++)
            have = wp_spool_load(o->spool, queue, ids[i], true, &m, err, sizeof(err));
        if (!have)
            break;
        i--;
    }
    if (st == WP_DELIVER_FAIL) {
    count_rest: /* what was not tried waits as well */
        for (i++; i < nids; i++)
            if (wp_spool_load(o->spool, queue, ids[i], false, &m, err, sizeof(err))) {
                res->waiting += (unsigned)m.nrcpts;
                wp_spool_msg_free(&m);
            }
    } else {
        putf(p, "QUIT\r\n");
        flush_out(p);
        get_reply(p, text, sizeof(text), NULL, 0);
    }
out:
    if (r.unsynced && !wp_spool_sync(o->spool, queue, err, sizeof(err)))
        wp_err("spool: %s", err);
    if (p) {
        peer_close(p);
        free(p);
    }
    wp_spool_names_free(ids, nids);
    close(dfd); /* drops the lock */
    return st;
}
