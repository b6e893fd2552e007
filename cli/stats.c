/* SPDX-License-Identifier: MIT */
/*
 * stats.c - `waypost stats` (stats.h).
 *
 * The endpoint is read over plain HTTP/1.0 (one GET, the answer read to
 * its end, 5 s timeouts, at most 64 MB), then parsed as Prometheus text:
 * names, labels with \\, \" and \n escapes, one value.  Limits: only the
 * daemons that have an endpoint configured in this configuration file are
 * asked (today waypost-policyd); at most 8 labels per sample.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cli/sections.h"
#include "cli/stats.h"
#include "lib/errors.h"
#include "lib/json.h"
#include "lib/strbuf.h"
#include "lib/util.h"
#include "milter/settings.h"
#include "odmr/settings.h"
#include "policy/settings.h"
#include "state/snapshot.h"

#define STATS_MAX_BODY (64u << 20)

/* GET /metrics from host:port; the body (malloc'ed) or NULL with err. */
static char *http_get(const char *host, int port, char *err, size_t errlen)
{
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST;
    if (getaddrinfo(host, portstr, &hints, &ai) != 0 || !ai) {
        snprintf(err, errlen, "cannot resolve %s", host);
        return NULL;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {5, 0};
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        snprintf(err, errlen, "cannot connect: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return NULL;
    }
    freeaddrinfo(ai);
    const char req[] = "GET /metrics HTTP/1.0\r\nUser-Agent: waypost-stats\r\n\r\n";
    if (write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
        snprintf(err, errlen, "cannot send: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    size_t len = 0, cap = 65536;
    char *buf = wp_malloc(cap + 1);
    for (;;) {
        if (len == cap) {
            if (cap >= STATS_MAX_BODY) {
                snprintf(err, errlen, "answer over %u bytes", STATS_MAX_BODY);
                free(buf);
                close(fd);
                return NULL;
            }
            cap *= 2;
            buf = wp_realloc(buf, cap + 1);
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "cannot read: %s", strerror(errno));
            free(buf);
            close(fd);
            return NULL;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    char *body = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.", 7) != 0 || !body || strncmp(buf + 8, " 200", 4) != 0) {
        snprintf(err, errlen, "not a 200 answer: %.60s", buf);
        free(buf);
        return NULL;
    }
    char *out = wp_strdup(body + 4);
    free(buf);
    return out;
}

/* ------------------------------------------------------------ parser */

const char *wp_sample_label(const struct wp_sample *s, const char *name)
{
    for (int i = 0; i < s->nlabels; i++)
        if (strcmp(s->labels[i][0], name) == 0)
            return s->labels[i][1];
    return NULL;
}

void wp_stats_samples_free(struct wp_sample *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(s[i].name);
        for (int k = 0; k < s[i].nlabels; k++) {
            free(s[i].labels[k][0]);
            free(s[i].labels[k][1]);
        }
    }
    free(s);
}

/* One sample line at p (up to end); false if it does not parse. */
static bool parse_line(const char *p, const char *end, struct wp_sample *s)
{
    memset(s, 0, sizeof(*s));
    const char *q = p;
    while (q < end && (isalnum((unsigned char)*q) || *q == '_' || *q == ':'))
        q++;
    if (q == p)
        return false;
    s->name = wp_strndup(p, (size_t)(q - p));
    if (q < end && *q == '{') {
        q++;
        while (q < end && *q != '}') {
            const char *k = q;
            while (q < end && *q != '=')
                q++;
            if (q + 1 >= end || q[1] != '"' || s->nlabels == 8)
                goto bad;
            char *key = wp_strndup(k, (size_t)(q - k));
            q += 2;
            struct wp_strbuf v = {0};
            while (q < end && *q != '"') {
                char c = *q;
                if (c == '\\' && q + 1 < end) {
                    q++;
                    c = *q == 'n' ? '\n' : *q;
                }
                wp_strbuf_add(&v, &c, 1);
                q++;
            }
            s->labels[s->nlabels][0] = key;
            s->labels[s->nlabels][1] = wp_strbuf_take(&v);
            s->nlabels++;
            if (q >= end)
                goto bad;
            q++;
            if (q < end && *q == ',')
                q++;
        }
        if (q >= end)
            goto bad;
        q++;
    }
    if (q >= end || *q != ' ')
        goto bad;
    char num[64];
    size_t n = (size_t)(end - q - 1);
    if (n == 0 || n >= sizeof(num))
        goto bad;
    memcpy(num, q + 1, n);
    num[n] = '\0';
    char *e;
    s->value = strtod(num, &e);
    if (*e && *e != ' ')
        goto bad;
    return true;
bad:
    free(s->name);
    for (int k = 0; k < s->nlabels; k++) {
        free(s->labels[k][0]);
        free(s->labels[k][1]);
    }
    return false;
}

size_t wp_stats_parse(const char *text, struct wp_sample **out)
{
    size_t n = 0, cap = 64;
    struct wp_sample *v = wp_malloc(cap * sizeof(*v));
    for (const char *p = text; *p;) {
        const char *end = strchr(p, '\n');
        if (!end)
            end = p + strlen(p);
        if (*p != '#' && end > p) {
            if (n == cap)
                v = wp_realloc(v, (cap *= 2) * sizeof(*v));
            if (parse_line(p, end, &v[n]))
                n++;
        }
        p = *end ? end + 1 : end;
    }
    *out = v;
    return n;
}

/* ------------------------------------------------------------ report */

static double sum_of(const struct wp_sample *s, size_t n, const char *name, const char *label,
                     const char *value)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s[i].name, name) == 0 &&
            (!label || (wp_sample_label(&s[i], label) && strcmp(wp_sample_label(&s[i], label), value) == 0)))
            sum += s[i].value;
    return sum;
}

static int by_hits(const void *a, const void *b)
{
    double x = (*(const struct wp_sample *const *)a)->value, y = (*(const struct wp_sample *const *)b)->value;
    return x < y ? 1 : x > y ? -1 : 0;
}

static const char *lbl(const struct wp_sample *s, const char *name)
{
    const char *v = wp_sample_label(s, name);
    return v ? v : "";
}

static void report(const char *daemon, const char *endpoint, const struct wp_sample *s, size_t n, int top,
                   bool json, bool first)
{
    const struct wp_sample **recs = wp_calloc(n + 1, sizeof(*recs));
    size_t nrecs = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s[i].name, "waypost_router_record_hits_total") == 0)
            recs[nrecs++] = &s[i];
    qsort(recs, nrecs, sizeof(*recs), by_hits);
    if ((size_t)top < nrecs)
        nrecs = (size_t)top;
    double gen = sum_of(s, n, "waypost_config_generation", NULL, NULL);
    double ok = sum_of(s, n, "waypost_reloads_total", "result", "success");
    double bad = sum_of(s, n, "waypost_reloads_total", "result", "failure");
    double last = sum_of(s, n, "waypost_config_last_reload_timestamp_seconds", NULL, NULL);
    double last_ok = sum_of(s, n, "waypost_config_last_reload_success", NULL, NULL);
    double requests = sum_of(s, n, "waypost_policy_requests_total", NULL, NULL);
    char when[64] = "never";
    if (last > 0) {
        time_t t = (time_t)last;
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&t));
    }
    if (json) {
        printf("%s\"%s\":{\"endpoint\":", first ? "" : ",", daemon);
        wp_json_string(stdout, endpoint);
        printf(",\"generation\":%.0f,\"reloads\":{\"success\":%.0f,\"failure\":%.0f},\"last_reload\":%.0f,"
               "\"last_reload_success\":%s,\"requests\":%.0f,\"records\":[",
               gen, ok, bad, last, last_ok ? "true" : "false", requests);
        for (size_t i = 0; i < nrecs; i++) {
            printf("%s{\"file\":", i ? "," : "");
            wp_json_string(stdout, lbl(recs[i], "file"));
            printf(",\"line\":%s,\"record\":", lbl(recs[i], "line")[0] ? lbl(recs[i], "line") : "null");
            wp_json_string(stdout, lbl(recs[i], "record"));
            printf(",\"hits\":%.0f}", recs[i]->value);
        }
        printf("],\"drain\":[");
        bool any = false;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(s[i].name, "waypost_router_unknown_reroutes_total") != 0)
                continue;
            const char *d = lbl(&s[i], "domain");
            printf("%s{\"domain\":", any ? "," : "");
            wp_json_string(stdout, d);
            printf(",\"last_hour\":%.0f,\"last_day\":%.0f,\"total\":%.0f}",
                   sum_of(s, n, "waypost_router_unknown_reroutes_last_hour", "domain", d),
                   sum_of(s, n, "waypost_router_unknown_reroutes_last_day", "domain", d), s[i].value);
            any = true;
        }
        printf("]}");
        free(recs);
        return;
    }
    printf("%s (%s): configuration generation %.0f; reloads %.0f ok, %.0f failed; last reload %s%s; "
           "%.0f requests\n",
           daemon, endpoint, gen, ok, bad, when, last > 0 ? (last_ok ? " (ok)" : " (FAILED)") : "", requests);
    printf("\nTop Router records by hits:\n");
    if (!nrecs)
        printf("  (none yet)\n");
    else
        printf("  %10s  %-24s  %s\n", "hits", "file:line", "record");
    for (size_t i = 0; i < nrecs; i++) {
        char where[300];
        snprintf(where, sizeof(where), "%s:%s", lbl(recs[i], "file"), lbl(recs[i], "line"));
        printf("  %10.0f  %-24s  %s\n", recs[i]->value, where, lbl(recs[i], "record"));
    }
    printf("\nMigration drain (recipients rerouted to the old server by Mail to Unknown):\n");
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s[i].name, "waypost_router_unknown_reroutes_total") != 0)
            continue;
        const char *d = lbl(&s[i], "domain");
        if (!any)
            printf("  %-32s %10s %10s %10s\n", "domain", "last hour", "last day", "total");
        printf("  %-32s %10.0f %10.0f %10.0f\n", d,
               sum_of(s, n, "waypost_router_unknown_reroutes_last_hour", "domain", d),
               sum_of(s, n, "waypost_router_unknown_reroutes_last_day", "domain", d), s[i].value);
        any = true;
    }
    if (!any)
        printf("  (no domain reroutes its unknown names)\n");
    free(recs);
}

static int by_value(const void *a, const void *b)
{
    return by_hits(a, b);
}

/* waypost-milter: messages by result, rules by fires. */
static void report_milter(const char *endpoint, const struct wp_sample *s, size_t n, int top, bool json,
                          bool first)
{
    const struct wp_sample **rules = wp_calloc(n + 1, sizeof(*rules));
    size_t nrules = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s[i].name, "waypost_milter_rule_fires_total") == 0)
            rules[nrules++] = &s[i];
    qsort(rules, nrules, sizeof(*rules), by_value);
    if ((size_t)top < nrules)
        nrules = (size_t)top;
    static const char *const results[] = {"accept", "reject", "discard", "tempfail"};
    if (json) {
        printf("%s\"milter\":{\"endpoint\":", first ? "" : ",");
        wp_json_string(stdout, endpoint);
        printf(",\"generation\":%.0f,\"reloads\":{\"success\":%.0f,\"failure\":%.0f},\"messages\":{",
               sum_of(s, n, "waypost_config_generation", NULL, NULL),
               sum_of(s, n, "waypost_reloads_total", "result", "success"),
               sum_of(s, n, "waypost_reloads_total", "result", "failure"));
        for (int r = 0; r < 4; r++)
            printf("%s\"%s\":%.0f", r ? "," : "", results[r],
                   sum_of(s, n, "waypost_milter_messages_total", "result", results[r]));
        printf("},\"rules\":[");
        for (size_t i = 0; i < nrules; i++) {
            printf("%s{\"rule\":", i ? "," : "");
            wp_json_string(stdout, lbl(rules[i], "rule"));
            printf(",\"priority\":%s,\"fires\":%.0f}",
                   lbl(rules[i], "priority")[0] ? lbl(rules[i], "priority") : "null", rules[i]->value);
        }
        printf("]}");
        free(rules);
        return;
    }
    printf("%smilter (%s): configuration generation %.0f; reloads %.0f ok, %.0f failed; messages",
           first ? "" : "\n", endpoint, sum_of(s, n, "waypost_config_generation", NULL, NULL),
           sum_of(s, n, "waypost_reloads_total", "result", "success"),
           sum_of(s, n, "waypost_reloads_total", "result", "failure"));
    for (int r = 0; r < 4; r++)
        printf("%s %.0f %s", r ? "," : "",
               sum_of(s, n, "waypost_milter_messages_total", "result", results[r]), results[r]);
    printf("\n\nTop rules by fires:\n");
    if (!nrules)
        printf("  (no rules)\n");
    else
        printf("  %10s  %-8s  %s\n", "fires", "priority", "rule");
    for (size_t i = 0; i < nrules; i++)
        printf("  %10.0f  %-8s  %s\n", rules[i]->value, lbl(rules[i], "priority"), lbl(rules[i], "rule"));
    free(rules);
}

/* waypost-odmrd: the queues (held and ATRN, with their kind), ATRN releases. */
static void report_odmr(const char *endpoint, const struct wp_sample *s, size_t n, bool json, bool first)
{
    if (json) {
        printf("%s\"odmr\":{\"endpoint\":", first ? "" : ",");
        wp_json_string(stdout, endpoint);
        printf(",\"generation\":%.0f,\"released\":%.0f,\"queues\":[",
               sum_of(s, n, "waypost_config_generation", NULL, NULL),
               sum_of(s, n, "waypost_odmr_released_messages_total", NULL, NULL));
    } else {
        printf("%sodmr (%s): configuration generation %.0f; %.0f messages released by ATRN\n\nqueues (held "
               "and ATRN):\n",
               first ? "" : "\n", endpoint, sum_of(s, n, "waypost_config_generation", NULL, NULL),
               sum_of(s, n, "waypost_odmr_released_messages_total", NULL, NULL));
    }
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s[i].name, "waypost_odmr_queue_messages") != 0)
            continue;
        const char *q = lbl(&s[i], "queue");
        const char *kind = lbl(&s[i], "kind"); /* "" from a daemon before kinds */
        double bytes = sum_of(s, n, "waypost_odmr_queue_bytes", "queue", q);
        double age = sum_of(s, n, "waypost_odmr_queue_oldest_age_seconds", "queue", q);
        if (json) {
            printf("%s{\"queue\":", any ? "," : "");
            wp_json_string(stdout, q);
            printf(",\"kind\":");
            wp_json_string(stdout, kind);
            printf(",\"messages\":%.0f,\"bytes\":%.0f,\"oldest_age_seconds\":%.0f}", s[i].value, bytes, age);
        } else {
            if (!any)
                printf("  %-32s %-9s %10s %12s %12s\n", "queue", "kind", "messages", "bytes", "oldest (s)");
            printf("  %-32s %-9s %10.0f %12.0f %12.0f\n", q, kind[0] ? kind : "-", s[i].value, bytes, age);
        }
        any = true;
    }
    if (json)
        printf("]}");
    else if (!any)
        printf("  (empty)\n");
}

int wp_stats_main(const char *config, int argc, char **argv)
{
    bool json = false;
    int top = 10;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--top") == 0 && i + 1 < argc) {
            char *e;
            long v = strtol(argv[++i], &e, 10);
            if (*e || v < 1 || v > 1000000) {
                fprintf(stderr, "waypost stats: --top wants a number from 1 to 1000000\n");
                return 2;
            }
            top = (int)v;
        } else {
            fprintf(stderr, "usage: waypost [-c FILE] stats [--json] [--top N]\n");
            return 2;
        }
    }
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_snapshot *snap = wp_snapshot_load(config, wp_sections_all, &err);
    for (size_t i = 0; i < err.count; i++)
        fprintf(stderr, "%s\n", err.msgs[i]);
    wp_errors_free(&err);
    if (!snap)
        return 1;
    const struct wp_policyd_conf *pc = wp_policyd_conf(snap);
    const struct wp_milter_conf *mc = wp_milter_conf(snap);
    const struct wp_odmr_conf *oc = wp_odmr_conf(snap);
    int rc = 0;
    if (!pc->metrics[0] && !mc->metrics[0] && !oc->metrics[0]) {
        fprintf(stderr,
                "waypost stats: %s: no daemon has a metrics endpoint (policyd.metrics, milter.metrics, "
                "odmr.metrics)\n",
                config);
        wp_snapshot_unref(snap);
        return 1;
    }
    if (json)
        printf("{");
    bool first = true;
    static const char *const daemons[3] = {"waypost-policyd", "waypost-milter", "waypost-odmrd"};
    for (int k = 0; k < 3; k++) {
        const char *text = k == 0 ? pc->metrics : k == 1 ? mc->metrics : oc->metrics;
        const struct wp_endpoint *ep = k == 0 ? &pc->metrics_ep : k == 1 ? &mc->metrics_ep : &oc->metrics_ep;
        if (!text[0])
            continue;
        char why[256];
        char *body = http_get(ep->host, ep->port, why, sizeof(why));
        if (!body) {
            fprintf(stderr, "waypost stats: %s at %s: %s\n", daemons[k], text, why);
            rc = 1;
            continue;
        }
        struct wp_sample *s;
        size_t n = wp_stats_parse(body, &s);
        if (k == 0)
            report("policyd", text, s, n, top, json, first);
        else if (k == 1)
            report_milter(text, s, n, top, json, first);
        else
            report_odmr(text, s, n, json, first);
        first = false;
        wp_stats_samples_free(s, n);
        free(body);
    }
    if (json)
        printf("}\n");
    wp_snapshot_unref(snap);
    return fflush(stdout) == 0 ? rc : 1;
}
