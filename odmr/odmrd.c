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
 * Limits: odmr.max_connections (customers), odmr.lmtp_max_connections (the
 * intake's own), odmr.max_connections_per_ip, odmr.auth_timeout from the
 * greeting to AUTH, an AUTH penalty per client address (anvil.h); out of
 * descriptors the listeners pause (lib/accept.h); odmr.timeout for
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/address.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "odmr/auth.h"
#include "odmr/conn.h"
#include "odmr/control.h"
#include "odmr/dsn.h"
#include "odmr/spool.h"
#include "state/reload.h"

#ifndef WP_SYSCONFDIR
#define WP_SYSCONFDIR "/etc"
#endif

/* ------------------------------------------------------------ expiry */

static void expire_scan(struct server *srv)
{
    const struct wp_odmr_conf *o = wp_odmr_conf(srv->snap);
    time_t now = time(NULL);
    size_t nq;
    char **queues = wp_spool_queues(o->spool, &nq);
    for (size_t q = 0; q < nq; q++) {
        if (wp_conn_queue_busy(srv, queues[q]))
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
    struct server *srv = arg;
    expire_scan(srv);
    if (wp_anvil_full(srv->anvil))
        wp_warn("more client addresses than can be tracked: some went without per-address limits");
    wp_anvil_sweep(srv->anvil, wp_now_ms());
}

static void expire_schedule(struct server *srv)
{
    /* Check often enough that mail leaves within a quarter of its lifetime
     * past expiry, at most once a minute. */
    int every = wp_odmr_conf(srv->snap)->expire / 4;
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
        if (srv->stats) {
            wp_counter_add(&srv->stats->reloads[s ? 0 : 1], 1);
            atomic_store(&srv->stats->last_reload, (long long)time(NULL));
            atomic_store(&srv->stats->last_reload_ok, s != NULL);
        }
        if (!s)
            continue;
        srv->snap = s;
        expire_schedule(srv);
        wp_notice("reloaded %s: %zu ODMR account%s", srv->d->config_path, wp_odmr_conf(s)->naccounts,
                  wp_odmr_conf(s)->naccounts == 1 ? "" : "s");
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
    wp_daemon_hold_signals(); /* before the (maybe long) first load */
    wp_log_open("waypost-odmrd", false, NULL, WP_LOG_INFO);
    char *path = NULL;
    struct wp_snapshot *snap = wp_snapshot_load_startup(args.config, wp_odmr_sections, &path);
    char why[512];
    SSL_CTX *tls = NULL;
    if (snap && wp_odmr_conf(snap)->tls_cert[0]) {
        tls = tls_context(wp_odmr_conf(snap), why, sizeof(why));
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
    const struct wp_odmr_conf *o = wp_odmr_conf(snap); /* endpoints: fixed until restart */
    struct wp_daemon_conf dc = {o->pidfile, o->user, o->socket_mode, o->socket_owner, o->socket_group};
    struct wp_daemon daemon;
    struct wp_daemon_hooks hooks = wp_reload_hooks(wp_odmr_sections);
    wp_daemon_init(&daemon, "waypost-odmrd", path, args.foreground, &hooks, wp_snapshot_ref(snap), &dc);
    struct server srv;
    memset(&srv, 0, sizeof(srv));
    srv.d = &daemon;
    srv.snap = daemon.current;
    srv.tls = tls;
    srv.max_connections = o->max_connections;
    srv.lmtp_max_connections = o->lmtp_max_connections;
    /* Room for every customer connection's address and as many again
     * that failed AUTH lately. */
    srv.anvil = wp_anvil_new((size_t)o->max_connections * 2 + 1024);
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
    struct wp_odmr_stats stats;
    memset(&stats, 0, sizeof(stats));
    struct wp_metricsd *metricsd = NULL;
    int metrics_fd = -1;

    /* Signals from the start: a SIGHUP during start-up waits in the pipe
     * for the loop instead of killing the daemon. */
    int sigfd = wp_daemon_signals(&daemon);
    if (sigfd < 0)
        goto out;
    if (!wp_daemon_lock(&daemon, why, sizeof(why))) {
        fprintf(stderr, "waypost-odmrd: %s\n", why);
        goto out;
    }
    /* The spool is written after the privilege drop: odmr.user's. */
    if (!wp_daemon_user_dir(o->spool, o->user, why, sizeof(why)) ||
        !wp_spool_open(o->spool, why, sizeof(why))) {
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
    int control_fd = -1; /* held-queue releases (odmr/control.h): only with held queues */
    if (o->control_socket[0] && snap->router->hold_queues.count > 0) {
        struct wp_endpoint cep = {.family = WP_EP_UNIX};
        wp_strlcpy(cep.path, o->control_socket, sizeof(cep.path));
        control_fd = wp_daemon_listen(&daemon, &cep, why, sizeof(why));
        if (control_fd < 0 || !wp_socket_set_owner(cep.path, o->control_mode, o->socket_owner,
                                                   o->socket_group, why, sizeof(why))) {
            fprintf(stderr, "waypost-odmrd: cannot listen on %s: %s\n", o->control_socket, why);
            goto out;
        }
    }
    if (o->metrics[0]) {
        metrics_fd = wp_metricsd_bind(&o->metrics_ep, o->metrics_allow_remote, why, sizeof(why));
        if (metrics_fd < 0) {
            fprintf(stderr, "waypost-odmrd: cannot listen on %s: %s\n", o->metrics, why);
            goto out;
        }
        stats.d = &daemon;
        stats.spool = o->spool;
        srv.stats = &stats;
    }
    if (!wp_daemon_detach(&daemon, why, sizeof(why)) || !wp_daemon_drop(&daemon, why, sizeof(why))) {
        wp_err("%s", why);
        goto out;
    }
    if (metrics_fd >= 0) {
        metricsd = wp_metricsd_start(metrics_fd, wp_odmr_stats_render, NULL, &stats, why, sizeof(why));
        if (!metricsd) {
            wp_err("%s", why);
            goto out;
        }
        metrics_fd = -1;
        wp_notice("metrics on http://%s/metrics", o->metrics + 5);
    }
    srv.base = event_base_new();
    if (!srv.base)
        goto out;
    for (size_t i = 0; i < nfds; i++) {
        la[i].srv = &srv;
        la[i].side = i == 0 ? SIDE_LMTP : SIDE_CUSTOMER;
        la[i].tls = i > 0 && o->listen[i - 1].tls;
        ls[i] = evconnlistener_new(srv.base, wp_conn_on_accept, &la[i], LEV_OPT_CLOSE_ON_EXEC, -1, fds[i]);
        if (!ls[i]) {
            wp_err("cannot listen on socket %zu", i);
            goto out;
        }
        evconnlistener_set_error_cb(ls[i], wp_conn_on_accept_error);
    }
    if (control_fd >= 0 && !(srv.control = wp_control_new(&srv, control_fd))) {
        wp_err("cannot listen on %s", o->control_socket);
        goto out;
    }
    wp_accept_guard_init(&srv.guard, srv.base, ls, nfds);
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
    wp_metricsd_stop(metricsd);
    if (metrics_fd >= 0)
        close(metrics_fd);
    for (size_t i = 0; i < nfds; i++)
        if (ls[i])
            evconnlistener_free(ls[i]);
    wp_control_free(srv.control);
    if (sigev)
        event_free(sigev);
    if (srv.expire_ev)
        event_free(srv.expire_ev);
    wp_accept_guard_free(&srv.guard);
    while (srv.conns) /* still open: dropped (their queues stay as they are) */
        wp_conn_free(srv.conns);
    if (srv.base)
        event_base_free(srv.base);
    for (size_t i = 0; i < srv.nbusy; i++)
        free(srv.busy[i]);
    free(srv.busy);
    wp_anvil_free(srv.anvil);
    free(ls);
    free(la);
    free(fds);
    SSL_CTX_free(tls);
    rc = wp_daemon_end(&daemon, rc); /* closes the sockets, removes ours and the pidfile */
    wp_snapshot_unref(snap);
    free(path);
    return rc;
}
