/* SPDX-License-Identifier: MIT */
/*
 * waypost - the administrator's command line.
 *
 *   waypost [-c FILE] check                  validate the whole configuration
 *   waypost [-c FILE] route [--trusted] [--access] [--json] ADDRESS...
 *                                            trace how addresses are routed
 *   waypost [-c FILE] postconf [--apply|--undo|--fresh [--main|--master]] [--chroot|--no-chroot]
 *                                            merge the wiring into Postfix (cli/postconf.c)
 *   waypost [-c FILE] rules --test MESSAGE --from ADDR --to ADDR... [--client IP] [--auth USER]
 *                                            show which rules fire and what they would do
 *   waypost [-c FILE] dovecot [--acl]        print the Dovecot fragment (shared mailboxes)
 *                                            or the administrators' global ACL file
 *
 * Exit codes: 0 success, 1 configuration errors, 2 usage errors.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <gmime/gmime.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/postconf.h"
#include "imap/dovecot.h"
#include "lib/json.h"
#include "milter/reply.h"
#include "milter/rules.h"
#include "lib/log.h"
#include "state/snapshot.h"
#include "odmr/spool.h"
#include "lib/util.h"

#ifndef WP_SYSCONFDIR
#define WP_SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG WP_SYSCONFDIR "/waypost/waypost.conf"

static void usage(FILE *out)
{
    fputs("usage: waypost [-c FILE] check\n"
          "       waypost [-c FILE] route [--trusted] [--access] [--json] ADDRESS...\n"
          "       waypost [-c FILE] postconf [--apply|--undo] [--chroot|--no-chroot]\n"
          "       waypost [-c FILE] postconf --fresh [--main|--master] [--chroot|--no-chroot]\n"
          "       waypost [-c FILE] rules --test MESSAGE --from ADDR --to ADDR... [--client IP] [--auth USER]\n"
          "       waypost [-c FILE] dovecot [--acl]\n"
          "       waypost [-c FILE] odmr list\n"
          "       waypost --version\n"
          "default FILE: " DEFAULT_CONFIG "\n",
          out);
}

static void print_errors(const struct wp_errors *e)
{
    for (size_t i = 0; i < e->nwarn; i++)
        fprintf(stderr, "%s (warning)\n", e->warns[i]);
    for (size_t i = 0; i < e->count; i++)
        fprintf(stderr, "%s\n", e->msgs[i]);
}

static struct wp_snapshot *load(const char *path, bool quiet_ok)
{
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_snapshot *s = wp_snapshot_load(path, &err);
    if (!s || !quiet_ok)
        print_errors(&err);
    wp_errors_free(&err);
    return s;
}

static int cmd_check(const char *path)
{
    struct wp_snapshot *s = load(path, false);
    if (!s)
        return 1;
    const struct wp_router *r = s->router;
    printf("%s: OK (main domain %s, %zu domains, %u router records, %zu rules)\n", path, r->main_domain,
           r->ndomains, r->table ? r->table->nrecs : 0, wp_rules_count(s->rules));
    wp_snapshot_unref(s);
    return 0;
}

static void print_route_json(const char *input, const struct wp_route *rt)
{
    fputs("{\"input\":", stdout);
    wp_json_string(stdout, input);
    fputs(",\"kind\":", stdout);
    wp_json_string(stdout, wp_route_kind_name(rt->kind));
    fputs(",\"address\":", stdout);
    wp_json_string(stdout, rt->address);
    fputs(",\"nexthop\":", stdout);
    if (rt->nexthop[0])
        wp_json_string(stdout, rt->nexthop);
    else
        fputs("null", stdout);
    if (rt->port)
        printf(",\"port\":%d", rt->port);
    else
        fputs(",\"port\":null", stdout);
    printf(",\"mx\":%s", rt->mx ? "true" : "false");
    fputs(",\"queue\":", stdout);
    if (rt->queue[0])
        wp_json_string(stdout, rt->queue);
    else
        fputs("null", stdout);
    fputs(",\"account\":", stdout);
    if (rt->account[0])
        wp_json_string(stdout, rt->account);
    else
        fputs("null", stdout);
    fputs(",\"relay_class\":", stdout);
    wp_json_string(stdout, wp_relay_class_name(rt->relay_class));
    printf(",\"routed_input\":%s", rt->routed_input ? "true" : "false");
    printf(",\"bounce\":%s", rt->bounce ? "true" : "false");
    fputs(",\"text\":", stdout);
    if (rt->text[0])
        wp_json_string(stdout, rt->text);
    else
        fputs("null", stdout);
    fputs(",\"unified\":", stdout);
    if (rt->unified) {
        fputs("{\"domain\":", stdout);
        wp_json_string(stdout, rt->unified->domain);
        fputs(",\"header\":", stdout);
        wp_json_string(stdout, rt->unified->header);
        fputs(",\"recipient\":", stdout);
        wp_json_string(stdout, rt->unified_rcpt);
        putchar('}');
    } else {
        fputs("null", stdout);
    }
    fputs(",\"steps\":[", stdout);
    for (int i = 0; rt->trace && i < rt->trace->nsteps; i++) {
        if (i)
            putchar(',');
        wp_json_string(stdout, rt->trace->steps[i]);
    }
    fputs("]}\n", stdout);
}

static int cmd_route(const char *path, int argc, char **argv)
{
    static const struct option opts[] = {
        { "trusted", no_argument, NULL, 't' },
        { "access", no_argument, NULL, 'a' },
        { "json", no_argument, NULL, 'j' },
        { NULL, 0, NULL, 0 },
    };
    struct wp_resolve_opts ro = { false, false };
    bool json = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+taj", opts, NULL)) != -1) {
        switch (c) {
        case 't': ro.trusted = true; break;
        case 'a': ro.access = true; break;
        case 'j': json = true; break;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    struct wp_snapshot *s = load(path, true);
    if (!s)
        return 1;
    struct wp_trace *trace = wp_malloc(sizeof(*trace));
    for (int i = optind; i < argc; i++) {
        struct wp_route rt;
        rt.trace = trace;
        wp_resolve(s->router, argv[i], &ro, &rt);
        if (json) {
            print_route_json(argv[i], &rt);
            continue;
        }
        printf("%s\n", argv[i]);
        for (int k = 0; k < trace->nsteps; k++)
            printf("  %2d. %s\n", k + 1, trace->steps[k]);
        if (trace->truncated)
            printf("  ... (more steps not shown)\n");
        if (wp_route_leaves_server(&rt) && !wp_route_relay_permitted(&rt, ro.trusted))
            printf("  relaying: refused for this client (%s)\n", WP_TEXT_RELAY_DENIED);
    }
    free(trace);
    wp_snapshot_unref(s);
    return 0;
}

/* One line per queue of the ODMR spool: messages, recipients, oldest age. */
static int cmd_odmr_list(const char *path)
{
    struct wp_snapshot *s = load(path, true);
    if (!s)
        return 1;
    const char *spool = s->odmr.spool;
    struct stat st;
    if (stat(spool, &st) < 0) {
        printf("# %s: no spool yet (waypost-odmrd has not run)\n", spool);
        wp_snapshot_unref(s);
        return 0;
    }
    size_t nq;
    char **queues = wp_spool_queues(spool, &nq);
    time_t now = time(NULL);
    printf("%-32s %8s %10s %12s  %s\n", "QUEUE", "MESSAGES", "RECIPIENTS", "OLDEST", "RELEASED BY");
    for (size_t q = 0; q < nq; q++) {
        size_t n, rcpts = 0;
        char **ids = wp_spool_list(spool, queues[q], &n);
        time_t oldest = 0;
        for (size_t i = 0; i < n; i++) {
            struct wp_spool_msg m;
            char err[512];
            if (!wp_spool_load(spool, queues[q], ids[i], false, &m, err, sizeof(err))) {
                fprintf(stderr, "waypost: %s\n", err);
                continue;
            }
            rcpts += m.nrcpts;
            if (!oldest || m.arrival < oldest)
                oldest = m.arrival;
            wp_spool_msg_free(&m);
        }
        char age[32] = "-";
        if (oldest) {
            long d = (long)(now - oldest);
            if (d < 0)
                d = 0;
            if (d >= 86400)
                snprintf(age, sizeof(age), "%ldd%02ldh", d / 86400, d % 86400 / 3600);
            else
                snprintf(age, sizeof(age), "%02ld:%02ld:%02ld", d / 3600, d % 3600 / 60, d % 60);
        }
        char owners[512] = "";
        for (size_t a = 0; a < s->odmr.naccounts; a++)
            for (size_t k = 0; k < s->odmr.accounts[a].nqueues; k++)
                if (strcmp(s->odmr.accounts[a].queues[k], queues[q]) == 0) {
                    size_t len = strlen(owners);
                    snprintf(owners + len, sizeof(owners) - len, "%s%s", len ? "," : "", s->odmr.accounts[a].user);
                }
        printf("%-32s %8zu %10zu %12s  %s\n", queues[q], n, rcpts, age, owners[0] ? owners : "(nobody)");
        wp_spool_names_free(ids, n);
    }
    wp_spool_names_free(queues, nq);
    wp_snapshot_unref(s);
    return 0;
}

static int cmd_rules(const char *path, int argc, char **argv)
{
    static const struct option opts[] = {
        { "test", required_argument, NULL, 'T' }, { "from", required_argument, NULL, 'f' },
        { "to", required_argument, NULL, 't' },   { "client", required_argument, NULL, 'c' },
        { "auth", required_argument, NULL, 'a' }, { NULL, 0, NULL, 0 },
    };
    const char *file = NULL, *from = NULL, *client = "", *auth = "";
    char **rcpts = NULL;
    size_t nrcpts = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'T': file = optarg; break;
        case 'f': from = optarg; break;
        case 't':
            rcpts = wp_realloc(rcpts, (nrcpts + 1) * sizeof(char *));
            rcpts[nrcpts++] = optarg;
            break;
        case 'c': client = optarg; break;
        case 'a': auth = optarg; break;
        default: usage(stderr); free(rcpts); return 2;
        }
    }
    if (!file || !from || !nrcpts || optind != argc) {
        fprintf(stderr, "waypost rules: --test MESSAGE, --from and at least one --to are needed\n");
        usage(stderr);
        free(rcpts);
        return 2;
    }
    struct wp_snapshot *s = load(path, true);
    if (!s) {
        free(rcpts);
        return 1;
    }
    g_mime_init();
    GError *gerr = NULL;
    GMimeStream *stream = g_mime_stream_fs_open(file, O_RDONLY, 0, &gerr);
    if (!stream) {
        fprintf(stderr, "waypost rules: %s: %s\n", file, gerr ? gerr->message : "cannot open");
        if (gerr)
            g_error_free(gerr);
        wp_snapshot_unref(s);
        free(rcpts);
        return 1;
    }
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    GMimeMessage *msg = g_mime_parser_construct_message(parser, NULL);
    struct stat st;
    size_t size = stat(file, &st) == 0 ? (size_t)st.st_size : 0;
    struct wp_header *headers = NULL;
    size_t nheaders = 0;
    char **values = NULL;
    if (msg) {
        GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(msg));
        int n = g_mime_header_list_get_count(hl);
        headers = wp_calloc((size_t)n + 1, sizeof(*headers));
        values = wp_calloc((size_t)n + 1, sizeof(char *));
        for (int i = 0; i < n; i++) {
            GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
            const char *raw = g_mime_header_get_raw_value(h);
            char *v = wp_strdup(raw ? raw : "");
            char *b = v;
            while (*b == ' ' || *b == '\t')
                b++;
            memmove(v, b, strlen(b) + 1);
            size_t len = strlen(v);
            while (len && (v[len - 1] == '\n' || v[len - 1] == '\r'))
                v[--len] = '\0';
            values[i] = v;
            headers[nheaders].name = g_mime_header_get_name(h);
            headers[nheaders].value = v;
            nheaders++;
        }
    } else {
        fprintf(stderr, "waypost rules: %s: not a message; judging the envelope only\n", file);
    }
    struct wp_message wm = {
        .return_path = from[0] == '<' ? "" : from, .rcpts = (const char *const *)rcpts, .nrcpts = nrcpts,
        .headers = headers, .nheaders = nheaders, .size = size, .client_addr = client, .auth_user = auth,
        .now = time(NULL),
    };
    struct wp_outcome out;
    wp_rules_evaluate(s->rules, &s->rules_env, &wm, &out);
    printf("%zu rules; fired: ", wp_rules_count(s->rules));
    for (size_t i = 0; i < out.nfired; i++)
        printf("%s%s", i ? ", " : "", out.fired[i]);
    printf("%s\n", out.nfired ? "" : "none");
    for (size_t i = 0; i < out.nlog; i++)
        printf("  %s\n", out.log[i]);
    if (out.reject)
        printf("result: REJECT 550 5.7.1 %s\n", out.reject_text[0] ? out.reject_text : "Message rejected by a server-wide rule");
    else if (out.discard)
        printf("result: DISCARD\n");
    else {
        printf("result: ACCEPT\n");
        if (out.drop_recipients)
            printf("  original recipients removed\n");
        for (size_t i = 0; i < out.nadd; i++)
            printf("  add recipient %s\n", out.add_rcpts[i]);
        for (size_t i = 0; i < out.nheaders; i++)
            printf("  add header %s\n", out.add_headers[i]);
        if (out.subject)
            printf("  Subject: %s\n", out.subject);
        for (size_t i = 0; i < out.nreplies; i++) {
            struct wp_reply_message rm;
            const char *why;
            if (wp_reply_build(&wm, &out.replies[i], rcpts[0], &rm, &why)) {
                printf("  reply to");
                for (size_t k = 0; k < rm.nrcpts; k++)
                    printf(" %s", rm.rcpts[k]);
                printf(" via %s\n", s->milter.reply_via);
                wp_reply_message_free(&rm);
            } else {
                printf("  no reply: %s\n", why);
            }
        }
    }
    wp_outcome_free(&out);
    for (size_t i = 0; i < nheaders; i++)
        free(values[i]);
    free(values);
    free(headers);
    if (msg)
        g_object_unref(msg);
    g_object_unref(parser);
    g_object_unref(stream);
    wp_snapshot_unref(s);
    free(rcpts);
    return 0;
}

/* waypost dovecot [--acl]: what Dovecot needs for the imap section. */
static int cmd_dovecot(const char *path, int argc, char **argv)
{
    bool acl = argc == 2 && strcmp(argv[1], "--acl") == 0;
    if (argc > 2 || (argc == 2 && !acl)) {
        usage(stderr);
        return 2;
    }
    struct wp_snapshot *s = load(path, true);
    if (!s)
        return 1;
    /* Dovecot's helper finds waypost.conf by this name, from any directory. */
    char *abs = realpath(path, NULL);
    if (abs && strpbrk(abs, " \t\r\n\"")) {
        fprintf(stderr, "waypost: %s: Dovecot cannot be given a file name with spaces or quotes\n", abs);
        free(abs);
        wp_snapshot_unref(s);
        return 1;
    }
    if (acl)
        wp_dovecot_print_acl(stdout, &s->imap, s->router, abs ? abs : path);
    else
        wp_dovecot_print_conf(stdout, &s->imap, s->router, abs ? abs : path);
    free(abs);
    wp_snapshot_unref(s);
    return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *path = DEFAULT_CONFIG;
    wp_log_open("waypost", false, NULL, WP_LOG_WARNING);
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("waypost %s\n", PACKAGE_VERSION);
            return 0;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            break;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[i], "check") == 0 && i + 1 == argc)
        return cmd_check(path);
    if (strcmp(argv[i], "route") == 0)
        return cmd_route(path, argc - i, argv + i);
    if (strcmp(argv[i], "rules") == 0)
        return cmd_rules(path, argc - i, argv + i);
    if (strcmp(argv[i], "postconf") == 0)
        return wp_postconf_main(path, argc - i, argv + i);
    if (strcmp(argv[i], "dovecot") == 0)
        return cmd_dovecot(path, argc - i, argv + i);
    if (strcmp(argv[i], "odmr") == 0 && i + 2 == argc && strcmp(argv[i + 1], "list") == 0)
        return cmd_odmr_list(path);
    fprintf(stderr, "waypost: unknown command '%s'\n", argv[i]);
    usage(stderr);
    return 2;
}
