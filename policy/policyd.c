/* SPDX-License-Identifier: MIT */
/*
 * waypost-policyd - the Router answering Postfix over socketmap, tcp_table
 * and policy delegation.
 *
 *   waypost-policyd [-c FILE] [-f] [-t]
 *
 * main() on the daemon skeleton (lib/daemon.h): the pidfile lock, the
 * sockets, background mode, the privilege drop, then the server (server.h:
 * worker threads, connections; framing.h: the three request formats;
 * etrnjob.c: ETRN releases) until a signal stops it.  SIGHUP and SIGUSR1
 * reload the configuration (a broken one keeps the old; policyd.listen
 * changes need a restart), SIGTERM and SIGINT stop cleanly and remove the
 * unix sockets and the pidfile.
 */
#include "config.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/daemon.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "policy/server.h"
#include "policy/settings.h"
#include "state/reload.h"
#include "state/snapshot.h"

#ifndef WP_SYSCONFDIR
#define WP_SYSCONFDIR "/etc"
#endif

static void reload(struct server *srv)
{
    struct wp_snapshot *s = wp_daemon_reload(srv->d);
    if (srv->stats) {
        atomic_fetch_add(s ? &srv->stats->reloads_ok : &srv->stats->reloads_failed, 1);
        atomic_store(&srv->stats->last_reload_ok, s != NULL);
        atomic_store(&srv->stats->last_reload, (long long)time(NULL));
    }
    if (!s)
        return;
    if (strcmp(wp_policyd_conf(s)->metrics, srv->metrics_text) != 0)
        wp_warn("reload: policyd.metrics changed; the new endpoint takes effect at the next restart");
    bool same_listen = wp_policyd_conf(s)->nlisten == srv->nlisten;
    for (size_t i = 0; same_listen && i < srv->nlisten; i++)
        same_listen = strcmp(wp_policyd_conf(s)->listen[i].text, srv->listens[i].text) == 0;
    if (!same_listen)
        wp_warn("reload: policyd.listen changed; the new endpoints take effect at the next restart");
    wp_notice("reloaded %s: %u router records", srv->d->config_path, s->router->table->nrecs);
}

struct control {
    struct server *srv;
    struct event_base *base;
};

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct control *ctl = arg;
    int sig;
    enum wp_daemon_event ev;
    while ((ev = wp_daemon_next_signal(ctl->srv->d, &sig)) != WP_DAEMON_NONE) {
        if (ev == WP_DAEMON_RELOAD) {
            reload(ctl->srv);
        } else {
            wp_notice("stopping on signal %d", sig);
            event_base_loopbreak(ctl->base);
            return;
        }
    }
}

int main(int argc, char **argv)
{
    struct wp_daemon_args args;
    int rc0 = wp_daemon_args("waypost-policyd", WP_SYSCONFDIR "/waypost/waypost.conf", argc, argv, &args);
    if (rc0 >= 0)
        return rc0;
    wp_daemon_hold_signals(); /* before the (maybe long) first load */
    wp_log_open("waypost-policyd", false, NULL, WP_LOG_INFO);
    char *path = NULL;
    struct wp_snapshot *snap = wp_snapshot_load_startup(args.config, wp_policyd_sections, &path);
    if (!snap || wp_policyd_conf(snap)->nlisten == 0 || args.test_only) {
        int rc = 1;
        if (snap && wp_policyd_conf(snap)->nlisten == 0)
            fprintf(stderr, "%s: policyd.listen names no endpoint\n", path);
        else if (snap) {
            printf("%s: OK\n", path);
            rc = 0;
        }
        wp_snapshot_unref(snap);
        free(path);
        return rc;
    }
    /* The startup snapshot stays ours to the end: the endpoints in it are
     * fixed until restart. */
    const struct wp_policyd_conf *pc = wp_policyd_conf(snap);
    struct wp_daemon_conf dc = {pc->pidfile, pc->user, pc->socket_mode, pc->socket_owner, pc->socket_group};
    struct wp_daemon daemon;
    struct wp_daemon_hooks hooks = wp_reload_hooks(wp_policyd_sections);
    wp_daemon_init(&daemon, "waypost-policyd", path, args.foreground, &hooks, wp_snapshot_ref(snap), &dc);
    struct server srv;
    memset(&srv, 0, sizeof(srv));
    srv.d = &daemon;
    srv.max_connections = pc->max_connections;
    srv.idle_timeout = pc->idle_timeout;
    srv.max_request = (size_t)pc->max_request;
    srv.nlisten = pc->nlisten;
    srv.listens = pc->listen;
    srv.fds = wp_calloc(srv.nlisten, sizeof(int));
    srv.metrics_text = pc->metrics;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int nworkers = pc->threads > 0 ? pc->threads : (int)(cores > 0 ? cores : 1);
    struct wp_pstats stats;
    memset(&stats, 0, sizeof(stats));
    struct wp_metricsd *metricsd = NULL;
    int metrics_fd = -1;
    if (pc->metrics[0]) {
        wp_pstats_init(&stats, &daemon, nworkers);
        srv.stats = &stats;
    }
    struct control ctl = {&srv, NULL};
    struct event *sigev = NULL;
    int rc = 1;
    char why[512];

    /* Signals from the start: a SIGHUP during start-up waits in the pipe
     * for the loop instead of killing the daemon. */
    int sigfd = wp_daemon_signals(&daemon);
    if (sigfd < 0)
        goto out;
    if (!wp_daemon_lock(&daemon, why, sizeof(why))) {
        fprintf(stderr, "waypost-policyd: %s\n", why);
        goto out;
    }
    /* Sockets first, while we may still be root. */
    for (size_t i = 0; i < srv.nlisten; i++) {
        srv.fds[i] = wp_daemon_listen(&daemon, &pc->listen[i].ep, why, sizeof(why));
        if (srv.fds[i] < 0) {
            fprintf(stderr, "waypost-policyd: cannot listen on %s: %s\n", pc->listen[i].text, why);
            goto out;
        }
    }
    if (pc->metrics[0]) {
        metrics_fd = wp_metricsd_bind(&pc->metrics_ep, pc->metrics_allow_remote, why, sizeof(why));
        if (metrics_fd < 0) {
            fprintf(stderr, "waypost-policyd: cannot listen on %s: %s\n", pc->metrics, why);
            goto out;
        }
    }
    if (!wp_daemon_detach(&daemon, why, sizeof(why)) || !wp_daemon_drop(&daemon, why, sizeof(why))) {
        wp_err("%s", why);
        goto out;
    }
    ctl.base = event_base_new();
    if (!ctl.base)
        goto out;
    if (!wp_server_start(&srv, ctl.base, nworkers, pc->io_uring))
        goto out;
    if (metrics_fd >= 0) {
        metricsd = wp_metricsd_start(metrics_fd, wp_pstats_render, wp_pstats_tick, &stats, why, sizeof(why));
        if (!metricsd) {
            wp_err("%s", why);
            goto out;
        }
        metrics_fd = -1; /* evhttp owns it */
        wp_notice("metrics on http://%s/metrics", pc->metrics + 5);
    }
    sigev = event_new(ctl.base, sigfd, EV_READ | EV_PERSIST, on_signal, &ctl);
    event_add(sigev, NULL);
    wp_notice("ready: %zu endpoint%s, %d worker thread%s, %u router records, answers sent with %s",
              srv.nlisten, srv.nlisten == 1 ? "" : "s", srv.nworkers, srv.nworkers == 1 ? "" : "s",
              snap->router->table->nrecs, srv.workers[0].batch.uring ? "io_uring" : "send(2)");
    wp_daemon_ready(&daemon, "ready: %zu endpoint%s, %u router records", srv.nlisten,
                    srv.nlisten == 1 ? "" : "s", snap->router->table->nrecs);
    event_base_dispatch(ctl.base);
    rc = 0;
    wp_notice("stopped");
out:
    wp_metricsd_stop(metricsd);
    if (metrics_fd >= 0)
        close(metrics_fd);
    wp_server_stop(&srv);
    wp_pstats_free(&stats);
    if (sigev)
        event_free(sigev);
    if (ctl.base)
        event_base_free(ctl.base);
    free(srv.fds);
    rc = wp_daemon_end(&daemon, rc); /* closes the listening sockets, removes ours and the pidfile */
    wp_snapshot_unref(snap);
    free(path);
    return rc;
}
