/* SPDX-License-Identifier: MIT */
/*
 * session.c - waypost-odmrd's customer session before the turn: EHLO,
 * STARTTLS, AUTH (CRAM-MD5; PLAIN under TLS only) against odmr.passwd_file,
 * and ATRN, which locks the queues the account may release and turns the
 * connection (turn.c).
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
#include "odmr/anvil.h"
#include "odmr/auth.h"
#include "odmr/command.h"
#include "odmr/conn.h"
#include "odmr/dsn.h"
#include "odmr/spool.h"

/* ------------------------------------------------------------ customer: AUTH */

/* The stored password field of user, read fresh from odmr.passwd_file. */
static char *stored_password(struct conn *c, const char *user)
{
    const char *path = wp_odmr_conf(c->snap)->passwd_file;
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

static void auth_plain_now(struct conn *c, const char *b64);
static void auth_cram_now(struct conn *c, const char *b64);

/* c->timer: either a response waited for its address's penalty slot (check
 * it now), or a failure waited odmr.auth_failure_delay (answer it now). */
static void on_auth_delay(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (c->state == ST_CLOSING) /* odmr.auth_timeout came first */
        return;
    wp_conn_cmd_resume(c);
    if (c->auth_pending) {
        char *line = c->auth_pending;
        c->auth_pending = NULL;
        bool cram = c->auth_pending_cram;
        c->state = ST_CMD;
        if (cram)
            auth_cram_now(c, line);
        else
            auth_plain_now(c, line);
        OPENSSL_cleanse(line, strlen(line));
        free(line);
        if (c->state == ST_CMD) { /* a success, or a malformed response: go on reading */
            bufferevent_enable(c->bev, EV_READ);
            wp_conn_process(c);
        }
        return;
    }
    if (c->auth_failures >= WP_ODMR_AUTH_FAILURES_MAX) {
        wp_conn_reply(c, "421 4.7.0 %s Too many authentication failures, closing", c->srv->hostname);
        wp_conn_close(c);
        return;
    }
    wp_conn_reply(c, "535 5.7.8 Authentication credentials invalid");
    c->state = ST_CMD;
    bufferevent_enable(c->bev, EV_READ);
    wp_conn_process(c); /* commands that arrived meanwhile */
}

static void timer_in(struct conn *c, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    if (!c->timer)
        c->timer = evtimer_new(c->srv->base, on_auth_delay, c);
    evtimer_add(c->timer, &tv);
}

static void auth_result(struct conn *c, const char *user, bool ok, const char *mech)
{
    if (ok && !wp_odmr_account_find(c->snap, user)) {
        wp_warn("%s: %s has a password but no odmr.accounts entry: refused", c->peer, user);
        ok = false;
    }
    if (ok) {
        wp_strlcpy(c->user, user, sizeof(c->user));
        wp_anvil_auth_ok(c->srv->anvil, c->peer);
        wp_info("%s: %s authenticated (%s%s)", c->peer, user, mech, c->tls ? ", TLS" : "");
        wp_odmr_log_session(c->srv->stats, c->peer, user, mech, c->tls, true);
        c->state = ST_CMD;
        wp_conn_reply(c, "235 2.7.0 Authentication successful");
        return;
    }
    c->auth_failures++;
    wp_anvil_auth_failed(c->srv->anvil, c->peer, wp_now_ms());
    wp_notice("%s: authentication failed for %s (%s)", c->peer, user[0] ? user : "?", mech);
    wp_odmr_log_session(c->srv->stats, c->peer, user, mech, c->tls, false);
    c->state = ST_AUTH_DELAY;
    bufferevent_disable(c->bev, EV_READ);
    wp_conn_cmd_pause(c);
    timer_in(c, (uint64_t)wp_odmr_conf(c->snap)->auth_failure_delay * 1000);
}

/* A response is checked at once unless its address has failed lately:
 * then in the address's next penalty slot (anvil.h), so that parallel
 * connections from one address guess no faster than one. */
static bool auth_defer(struct conn *c, const char *b64, bool cram)
{
    if (!wp_odmr_conf(c->snap)->auth_penalty)
        return false;
    uint64_t now = wp_now_ms();
    uint64_t slot = wp_anvil_auth_slot(c->srv->anvil, c->peer,
                                       (unsigned)wp_odmr_conf(c->snap)->auth_failure_delay * 1000, now);
    if (slot <= now)
        return false;
    c->auth_pending = wp_strdup(b64);
    c->auth_pending_cram = cram;
    c->state = ST_AUTH_DELAY;
    bufferevent_disable(c->bev, EV_READ);
    wp_conn_cmd_pause(c);
    timer_in(c, slot - now);
    return true;
}

void wp_session_auth_plain(struct conn *c, const char *b64)
{
    if (!auth_defer(c, b64, false))
        auth_plain_now(c, b64);
}

void wp_session_auth_cram(struct conn *c, const char *b64)
{
    if (!auth_defer(c, b64, true))
        auth_cram_now(c, b64);
}

static void auth_plain_now(struct conn *c, const char *b64)
{
    unsigned char buf[1024];
    const char *user = "", *pw;
    long n = strcmp(b64, "=") == 0 ? 0 : wp_base64_decode(b64, buf, sizeof(buf));
    if (n < 0 || !wp_sasl_plain_split(buf, (size_t)n, &user, &pw)) {
        c->state = ST_CMD;
        wp_conn_refuse(c, "501 5.5.2 Malformed PLAIN response");
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

static void auth_cram_now(struct conn *c, const char *b64)
{
    char buf[600];
    long n = wp_base64_decode(b64, (unsigned char *)buf, sizeof(buf));
    char *sp = n > 0 ? strrchr(buf, ' ') : NULL;
    if (n < 0 || !sp || (size_t)n != strlen(buf)) {
        c->state = ST_CMD;
        wp_conn_refuse(c, "501 5.5.2 Malformed CRAM-MD5 response");
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
        wp_conn_refuse(c, "503 5.5.1 EHLO first");
        return;
    }
    if (c->user[0]) {
        wp_conn_refuse(c, "503 5.5.1 Already authenticated");
        return;
    }
    char mech[32];
    size_t n = strcspn(arg, " ");
    if (n == 0 || n >= sizeof(mech)) {
        wp_conn_refuse(c, "501 5.5.4 Syntax: AUTH mechanism");
        return;
    }
    memcpy(mech, arg, n);
    mech[n] = '\0';
    const char *initial = arg[n] ? arg + n + 1 : NULL;
    if (wp_strieq(mech, "PLAIN")) {
        if (!c->tls) {
            wp_conn_refuse(c, "538 5.7.11 Encryption required for requested authentication mechanism");
            return;
        }
        if (initial) {
            wp_session_auth_plain(c, initial);
        } else {
            c->state = ST_AUTH_PLAIN;
            wp_conn_reply(c, "334 ");
        }
    } else if (wp_strieq(mech, "CRAM-MD5")) {
        if (initial) {
            wp_conn_refuse(c, "501 5.5.4 CRAM-MD5 takes no initial response");
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
        wp_conn_reply(c, "334 %s", b64);
    } else {
        wp_conn_refuse(c, "504 5.5.4 Unrecognized authentication type");
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
    wp_resolve(c->snap->router, probe, &opts, &route, NULL);
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
        wp_conn_refuse(c, "530 5.7.0 Authentication required");
        return;
    }
    const struct wp_odmr_account *a = wp_odmr_account_find(c->snap, c->user);
    if (!a) { /* removed by a reload since the AUTH */
        wp_conn_reply(c, "450 4.7.1 ATRN request refused");
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
                wp_conn_refuse(c, "501 5.5.4 Syntax: ATRN [domain[,domain]...]");
                return;
            }
            const char *q = atrn_queue(c, a, d);
            if (!q) {
                wp_notice("%s: %s may not release %s: ATRN refused", c->peer, c->user, d);
                wp_odmr_log_atrn(c->srv->stats, c->peer, c->user, d, 0, "refused");
                wp_conn_reply(c, "450 4.7.1 ATRN request refused: %s is not yours", d);
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
        if (wp_conn_queue_busy(c->srv, want[i])) {
            wp_notice("%s: queue %s is being delivered by another session", c->peer, want[i]);
            wp_odmr_log_atrn(c->srv->stats, c->peer, c->user, want[i], 0, "busy");
            wp_conn_reply(c, "451 4.3.0 Unable to process ATRN request now");
            free(want);
            return;
        }
        size_t n;
        char **ids = wp_spool_list(wp_odmr_conf(c->snap)->spool, want[i], &n);
        waiting += n;
        wp_spool_names_free(ids, n);
    }
    if (waiting == 0) {
        wp_odmr_log_atrn(c->srv->stats, c->peer, c->user, nwant ? want[0] : "", 0, "empty");
        wp_conn_reply(c, "453 You have no mail");
        free(want);
        return;
    }
    /* The queues' locks: a release process or `waypost queue delete|bounce`
     * may hold one (the busy list knows only this daemon's sessions). */
    int *locks = wp_calloc(nwant, sizeof(int));
    for (size_t i = 0; i < nwant; i++) {
        locks[i] = wp_spool_lock(wp_odmr_conf(c->snap)->spool, want[i]);
        if (locks[i] < 0 && errno != ENOENT) {
            int e = errno;
            for (size_t k = 0; k < i; k++)
                if (locks[k] >= 0)
                    close(locks[k]);
            free(locks);
            if (e == EWOULDBLOCK) {
                wp_notice("%s: queue %s is being delivered or changed by another process", c->peer, want[i]);
                wp_odmr_log_atrn(c->srv->stats, c->peer, c->user, want[i], 0, "busy");
            } else {
                wp_err("%s: queue %s: cannot lock: %s", c->peer, want[i], strerror(e));
            }
            wp_conn_reply(c, "451 4.3.0 Unable to process ATRN request now");
            free(want);
            return;
        }
    }
    c->queues = wp_calloc(nwant, sizeof(char *));
    c->queue_locks = locks;
    for (size_t i = 0; i < nwant; i++) {
        c->queues[c->nqueues++] = wp_strdup(want[i]);
        c->srv->busy = wp_realloc(c->srv->busy, (c->srv->nbusy + 1) * sizeof(char *));
        c->srv->busy[c->srv->nbusy++] = wp_strdup(want[i]);
    }
    free(want);
    wp_info("%s: %s releases %zu message%s, reversing the connection", c->peer, c->user, waiting,
            waiting == 1 ? "" : "s");
    {
        /* the queues released, comma-separated */
        char names[1024] = "";
        size_t len = 0;
        for (size_t i = 0; i < c->nqueues && len < sizeof(names); i++)
            len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s", i ? "," : "", c->queues[i]);
        wp_odmr_log_atrn(c->srv->stats, c->peer, c->user, names, waiting, "released");
    }
    wp_conn_reply(c, "250 OK now reversing the connection");
    c->state = ST_TURN_GREET;
}

/* ------------------------------------------------------------ customer: STARTTLS */

static void cmd_starttls(struct conn *c, const char *arg)
{
    if (!c->srv->tls) {
        wp_conn_refuse(c, "502 5.5.1 STARTTLS not available");
        return;
    }
    if (c->tls) {
        wp_conn_refuse(c, "503 5.5.1 TLS already active");
        return;
    }
    if (*arg) {
        wp_conn_refuse(c, "501 5.5.4 Syntax: STARTTLS");
        return;
    }
    wp_conn_reply(c, "220 2.0.0 Ready to start TLS");
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
        wp_conn_close(c);
        return;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
    wp_info("%s: STARTTLS", c->peer);
    c->bev = tls;
    c->tls = true;
    c->ehlo = false; /* RFC 3207: forget everything learnt before TLS */
    c->user[0] = '\0';
    bufferevent_setcb(c->bev, wp_conn_on_read, NULL, wp_conn_on_event, c);
    wp_conn_set_timeouts(c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* ------------------------------------------------------------ customer: commands */

void wp_session_command(struct conn *c, const char *line)
{
    const char *arg;
    if (wp_command_is(line, "EHLO", &arg) || wp_command_is(line, "HELO", &arg)) {
        bool ehlo = wp_strnieq(line, "EHLO", 4);
        if (!*arg) {
            wp_conn_refuse(c, ehlo ? "501 5.5.4 Syntax: EHLO hostname" : "501 5.5.4 Syntax: HELO hostname");
            return;
        }
        c->ehlo = ehlo;
        if (!ehlo) {
            wp_conn_reply(c, "250 %s", c->srv->hostname);
            return;
        }
        wp_conn_reply(c, "250-%s", c->srv->hostname);
        wp_conn_reply(c, "250-AUTH CRAM-MD5%s", c->tls ? " PLAIN" : "");
        if (c->srv->tls && !c->tls)
            wp_conn_reply(c, "250-STARTTLS");
        wp_conn_reply(c, "250-ENHANCEDSTATUSCODES");
        wp_conn_reply(c, "250 ATRN");
    } else if (wp_command_is(line, "AUTH", &arg)) {
        cmd_auth(c, arg);
    } else if (wp_command_is(line, "STARTTLS", &arg)) {
        cmd_starttls(c, arg);
    } else if (wp_command_is(line, "ATRN", &arg)) {
        cmd_atrn(c, arg);
    } else if (wp_command_is(line, "NOOP", &arg) || wp_command_is(line, "RSET", &arg)) {
        wp_conn_reply(c, "250 2.0.0 Ok");
    } else if (wp_command_is(line, "QUIT", &arg)) {
        wp_conn_reply(c, "221 2.0.0 %s closing connection", c->srv->hostname);
        wp_conn_close(c);
    } else if (wp_command_is(line, "MAIL", &arg) || wp_command_is(line, "RCPT", &arg) ||
               wp_command_is(line, "DATA", &arg) || wp_command_is(line, "VRFY", &arg) ||
               wp_command_is(line, "EXPN", &arg) || wp_command_is(line, "ETRN", &arg) ||
               wp_command_is(line, "TURN", &arg) || wp_command_is(line, "BDAT", &arg)) {
        wp_conn_refuse(c, "503 5.5.1 This is an ODMR service: EHLO, AUTH, STARTTLS, ATRN, QUIT only");
    } else {
        wp_conn_refuse(c, "502 5.5.2 Command not implemented");
    }
}
