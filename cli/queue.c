/* SPDX-License-Identifier: MIT */
/*
 * queue.c - `waypost queue ...` (see queue.h).
 *
 * list, show, delete and bounce read and change the spool directly (as
 * odmr.user or root); delete and bounce take the queue's lock first
 * (wp_spool_lock), so they never race a delivery in progress (waypost-odmrd's
 * release processes and ATRN sessions hold it while they deliver).  flush
 * asks the running waypost-odmrd on odmr.control_socket, as policyd does for
 * an ETRN, and waits for the result.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli/queue.h"
#include "cli/sections.h"
#include "lib/util.h"
#include "odmr/dsn.h"
#include "odmr/settings.h"
#include "odmr/spool.h"
#include "router/router.h"
#include "state/snapshot.h"

static struct wp_snapshot *queue_load(const char *path)
{
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_snapshot *s = wp_snapshot_load(path, wp_sections_all, &err);
    for (size_t i = 0; !s && i < err.count; i++)
        fprintf(stderr, "%s\n", err.msgs[i]);
    wp_errors_free(&err);
    return s;
}

static void age_text(time_t oldest, time_t now, char *out, size_t size)
{
    long d = (long)(now - oldest);
    if (d < 0)
        d = 0;
    if (d >= 86400)
        snprintf(out, size, "%ldd%02ldh", d / 86400, d % 86400 / 3600);
    else
        snprintf(out, size, "%02ld:%02ld:%02ld", d / 3600, d % 3600 / 60, d % 60);
}

static void owners_text(const struct wp_odmr_conf *o, const char *queue, char *out, size_t size)
{
    out[0] = '\0';
    for (size_t a = 0; a < o->naccounts; a++)
        for (size_t k = 0; k < o->accounts[a].nqueues; k++)
            if (strcmp(o->accounts[a].queues[k], queue) == 0) {
                size_t len = strlen(out);
                snprintf(out + len, size - len, "%s%s", len ? "," : "", o->accounts[a].user);
            }
}

/* list (legacy: `odmr list`'s columns). */
static int queue_list(const struct wp_snapshot *s, bool legacy)
{
    const struct wp_odmr_conf *o = wp_odmr_conf(s);
    struct stat st;
    if (stat(o->spool, &st) < 0) {
        printf("# %s: no spool yet (waypost-odmrd has not run)\n", o->spool);
        return 0;
    }
    size_t nq;
    char **queues = wp_spool_queues(o->spool, &nq);
    time_t now = time(NULL);
    if (legacy)
        printf("%-32s %8s %10s %12s  %s\n", "QUEUE", "MESSAGES", "RECIPIENTS", "OLDEST", "RELEASED BY");
    else
        printf("%-32s %-9s %8s %10s %12s %12s  %s\n", "QUEUE", "KIND", "MESSAGES", "RECIPIENTS", "BYTES",
               "OLDEST", "ATRN ACCOUNTS");
    for (size_t q = 0; q < nq; q++) {
        size_t n, rcpts = 0;
        unsigned long long bytes = 0;
        char **ids = wp_spool_list(o->spool, queues[q], &n);
        time_t oldest = 0;
        for (size_t i = 0; i < n; i++) {
            struct wp_spool_msg m;
            char err[512];
            if (!wp_spool_load(o->spool, queues[q], ids[i], false, &m, err, sizeof(err))) {
                fprintf(stderr, "waypost: %s\n", err);
                continue;
            }
            rcpts += m.nrcpts;
            bytes += m.size;
            if (!oldest || m.arrival < oldest)
                oldest = m.arrival;
            wp_spool_msg_free(&m);
        }
        char age[32] = "-", owners[512];
        if (oldest)
            age_text(oldest, now, age, sizeof(age));
        owners_text(o, queues[q], owners, sizeof(owners));
        if (legacy) {
            printf("%-32s %8zu %10zu %12s  %s\n", queues[q], n, rcpts, age, owners[0] ? owners : "(nobody)");
        } else {
            bool held = wp_router_queue_listed(s->router, WP_ROUTE_HOLD, queues[q]);
            bool atrn = wp_router_queue_listed(s->router, WP_ROUTE_ODMR, queues[q]);
            const char *kind = held && atrn ? "held+ATRN" : held ? "held" : atrn ? "ATRN" : "(none)";
            printf("%-32s %-9s %8zu %10zu %12llu %12s  %s\n", queues[q], kind, n, rcpts, bytes, age,
                   owners[0] ? owners : "-");
        }
        wp_spool_names_free(ids, n);
    }
    wp_spool_names_free(queues, nq);
    return 0;
}

/* The queue named on the command line: a valid name whose directory exists. */
static bool queue_arg(const struct wp_odmr_conf *o, const char *arg, char *queue, size_t size)
{
    if (!wp_strlcpy(queue, arg, size) || (wp_str_lower(queue), !wp_spool_queue_name_valid(queue))) {
        fprintf(stderr, "waypost: '%s' is not a queue name (a host name or [ip])\n", arg);
        return false;
    }
    char dir[4096];
    struct stat st;
    snprintf(dir, sizeof(dir), "%s/%s", o->spool, queue);
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "waypost: no queue %s in %s\n", queue, o->spool);
        return false;
    }
    return true;
}

static int queue_show(const struct wp_snapshot *s, const char *arg)
{
    const struct wp_odmr_conf *o = wp_odmr_conf(s);
    char queue[WP_DOMAIN_MAX + 3];
    if (!queue_arg(o, arg, queue, sizeof(queue)))
        return 1;
    size_t n;
    char **ids = wp_spool_list(o->spool, queue, &n);
    printf("# queue %s: %zu message%s\n", queue, n, n == 1 ? "" : "s");
    for (size_t i = 0; i < n; i++) {
        struct wp_spool_msg m;
        char err[512], when[32];
        if (!wp_spool_load(o->spool, queue, ids[i], false, &m, err, sizeof(err))) {
            fprintf(stderr, "waypost: %s\n", err);
            continue;
        }
        struct tm tm;
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&m.arrival, &tm));
        printf("%s  %s  %zu bytes  from <%s>\n", m.id, when, m.size, m.sender);
        for (size_t r = 0; r < m.nrcpts; r++)
            printf("    to <%s>\n", m.rcpts[r]);
        wp_spool_msg_free(&m);
    }
    wp_spool_names_free(ids, n);
    return 0;
}

static int queue_flush(const struct wp_snapshot *s, const char *arg)
{
    const struct wp_odmr_conf *o = wp_odmr_conf(s);
    char queue[WP_DOMAIN_MAX + 3];
    if (!queue_arg(o, arg, queue, sizeof(queue)))
        return 1;
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (!o->control_socket[0] || !wp_strlcpy(sun.sun_path, o->control_socket, sizeof(sun.sun_path)) ||
        fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        fprintf(stderr, "waypost: cannot reach waypost-odmrd at %s: %s\n",
                o->control_socket[0] ? o->control_socket : "(odmr.control_socket is empty)", strerror(errno));
        if (fd >= 0)
            close(fd);
        return 1;
    }
    char req[WP_DOMAIN_MAX + 16], ans[1024];
    int len = snprintf(req, sizeof(req), "FLUSH-WAIT %s\n", queue);
    size_t got = 0;
    if (write(fd, req, (size_t)len) == len) {
        ssize_t k;
        while (got + 1 < sizeof(ans) && (k = read(fd, ans + got, sizeof(ans) - 1 - got)) > 0)
            got += (size_t)k;
    }
    close(fd);
    ans[got] = '\0';
    char *nl = strchr(ans, '\n');
    if (nl)
        *nl = '\0';
    printf("%s\n", got ? ans : "FAIL: no answer from waypost-odmrd");
    return strncmp(ans, "OK ", 3) == 0 ? 0 : 1;
}

/* delete / bounce one message, under the queue's lock. */
static int queue_remove(const struct wp_snapshot *s, const char *arg, const char *id, bool bounce)
{
    const struct wp_odmr_conf *o = wp_odmr_conf(s);
    char queue[WP_DOMAIN_MAX + 3], err[512];
    if (!queue_arg(o, arg, queue, sizeof(queue)))
        return 1;
    int dfd = wp_spool_lock(o->spool, queue);
    if (dfd < 0 && errno == EWOULDBLOCK) {
        fprintf(stderr,
                "waypost: queue %s is being delivered (a release or an ATRN session); try again when it is "
                "over\n",
                queue);
        return 1;
    }
    if (dfd < 0) {
        fprintf(stderr, "waypost: queue %s: %s/%s: %s\n", queue, o->spool, queue, strerror(errno));
        return 1;
    }
    struct wp_spool_msg m;
    if (!wp_spool_load(o->spool, queue, id, bounce, &m, err, sizeof(err))) {
        fprintf(stderr, "waypost: no message '%s' in queue %s (see waypost queue show %s)\n", id, queue,
                queue);
        close(dfd);
        return 1;
    }
    int rc = 0;
    if (bounce) {
        char host[256] = "localhost";
        if (o->hostname[0])
            wp_strlcpy(host, o->hostname, sizeof(host));
        else if (gethostname(host, sizeof(host)) != 0)
            wp_strlcpy(host, "localhost", sizeof(host));
        host[sizeof(host) - 1] = '\0';
        bool *all = wp_calloc(m.nrcpts + 1, sizeof(bool));
        char **why = wp_calloc(m.nrcpts + 1, sizeof(char *));
        for (size_t r = 0; r < m.nrcpts; r++) {
            all[r] = true;
            why[r] = (char *)"550 5.0.0 returned to the sender by the mail administrator";
        }
        if (!wp_dsn_return(s, host, &m, all, why, err, sizeof(err))) {
            fprintf(stderr, "waypost: cannot return %s to <%s>: %s (the message stays)\n", m.id, m.sender,
                    err);
            rc = 1;
        }
        free(all);
        free(why);
    }
    if (rc == 0 && !wp_spool_remove(o->spool, queue, m.id, true, err, sizeof(err))) {
        fprintf(stderr, "waypost: %s\n", err);
        rc = 1;
    }
    if (rc == 0)
        printf("%s/%s: %s\n", queue, m.id, bounce ? "returned to the sender and removed" : "removed");
    wp_spool_msg_free(&m);
    close(dfd);
    return rc;
}

int wp_queue_main(const char *config, int argc, char **argv)
{
    bool legacy = strcmp(argv[0], "odmr") == 0;
    const char *cmd = argc > 1 ? argv[1] : "";
    int want = strcmp(cmd, "list") == 0                                   ? 2
               : strcmp(cmd, "show") == 0 || strcmp(cmd, "flush") == 0    ? 3
               : strcmp(cmd, "delete") == 0 || strcmp(cmd, "bounce") == 0 ? 4
                                                                          : 0;
    if (!want || argc != want || (legacy && want != 2)) {
        fprintf(stderr, "usage: waypost [-c FILE] queue list\n"
                        "       waypost [-c FILE] queue show|flush QUEUE\n"
                        "       waypost [-c FILE] queue delete|bounce QUEUE ID\n");
        return 2;
    }
    struct wp_snapshot *s = queue_load(config);
    if (!s)
        return 1;
    int rc;
    if (want == 2)
        rc = queue_list(s, legacy);
    else if (strcmp(cmd, "show") == 0)
        rc = queue_show(s, argv[2]);
    else if (strcmp(cmd, "flush") == 0)
        rc = queue_flush(s, argv[2]);
    else
        rc = queue_remove(s, argv[2], argv[3], strcmp(cmd, "bounce") == 0);
    wp_snapshot_unref(s);
    return rc;
}
