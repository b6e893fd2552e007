/* SPDX-License-Identifier: MIT */
/*
 * waypost - the administrator's command line.
 *
 *   waypost [-c FILE] check                  validate the whole configuration
 *   waypost [-c FILE] show [-n]              print the effective configuration, defaults
 *                                            included (-n: only what differs from them)
 *   waypost [-c FILE] route [--trusted] [--access] [--json] ADDRESS...
 *                                            trace how addresses are routed
 *   waypost [-c FILE] postconf [--apply|--undo|--fresh [--main|--master]] [--chroot|--no-chroot]
 *                                            merge the wiring into Postfix (cli/postconf.c)
 *   waypost [-c FILE] rules --test MESSAGE --from ADDR --to ADDR... [--client IP] [--auth USER]
 *                                            show which rules fire and what they would do
 *   waypost [-c FILE] dovecot [--acl] [--dovecot 2.3|2.4]
 *                                            print the Dovecot fragment (shared mailboxes)
 *                                            or the administrators' global ACL file
 *   waypost import cgp SOURCE... -o DIR [--force]
 *                                            a configuration from CommuniGate Pro's data
 *   waypost export cgp --host H [--port P] --user U --password-file F -o DIR [--force]
 *                                            that data, fetched over CommuniGate's CLI
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

#include "cli/export.h"
#include "cli/import.h"
#include "cli/postconf.h"
#include "cli/queue.h"
#include "cli/stats.h"
#include "imap/dovecot.h"
#include "lib/json.h"
#include "milter/reply.h"
#include "milter/rules.h"
#include "lib/log.h"
#include "state/snapshot.h"
#include "policy/settings.h"
#include "odmr/spool.h"
#include "lib/util.h"
#include "policy/maps.h"
#include "milter/settings.h"
#include "odmr/settings.h"
#include "imap/settings.h"
#include "cli/sections.h"

#ifndef WP_SYSCONFDIR
#define WP_SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG WP_SYSCONFDIR "/waypost/waypost.conf"

static void usage(FILE *out)
{
    fputs(
        "usage: waypost [-c FILE] check\n"
        "       waypost [-c FILE] show [-n]\n"
        "       waypost [-c FILE] route [--trusted] [--access] [--json] ADDRESS...\n"
        "       waypost [-c FILE] postconf [--apply|--undo] [--chroot|--no-chroot]\n"
        "       waypost [-c FILE] postconf --fresh [--main|--master] [--chroot|--no-chroot]\n"
        "       waypost [-c FILE] rules --test MESSAGE --from ADDR --to ADDR... [--client IP] [--auth USER]\n"
        "       waypost [-c FILE] dovecot [--acl] [--dovecot 2.3|2.4]\n"
        "       waypost [-c FILE] queue list\n"
        "       waypost [-c FILE] queue show|flush QUEUE\n"
        "       waypost [-c FILE] queue delete|bounce QUEUE ID\n"
        "       waypost [-c FILE] odmr list           (old name of queue list)\n"
        "       waypost [-c FILE] stats [--json] [--top N]\n"
        "       waypost import cgp SOURCE... -o DIR [--force]\n"
        "       waypost export cgp --host HOST [--port 106] --user USER --password-file FILE -o DIR "
        "[--force]\n"
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
    struct wp_snapshot *s = wp_snapshot_load(path, wp_sections_all, &err);
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
    /* What loads may still fail for every message: resolve it once. */
    struct wp_errors err;
    wp_errors_init(&err);
    wp_router_check(r, &err);
    wp_rules_check(wp_milter_conf(s)->rules, r, &err);
    for (size_t i = 0; i < err.count; i++)
        fprintf(stderr, "%s\n", err.msgs[i]);
    size_t problems = err.count;
    wp_errors_free(&err);
    if (problems) {
        fprintf(stderr, "%s: %zu problem%s that would fail at run time\n", path, problems,
                problems == 1 ? "" : "s");
        wp_snapshot_unref(s);
        return 1;
    }
    printf("%s: OK (main domain %s, %zu domains, %u router records, %zu rules)\n", path, r->main_domain,
           r->ndomains, r->table ? r->table->nrecs : 0, wp_rules_count(wp_milter_conf(s)->rules));
    wp_snapshot_unref(s);
    return 0;
}

/* waypost show [-n]: every setting as "group.name = value", as postconf
 * and doveconf -n do; the configuration must load (the values shown are
 * the ones the daemons would use). */
static int cmd_show(const char *path, int argc, char **argv)
{
    bool changed_only = argc == 2 && strcmp(argv[1], "-n") == 0;
    if (argc > 2 || (argc == 2 && !changed_only)) {
        usage(stderr);
        return 2;
    }
    /* Absolute, as the daemons load it: paths show as they will use them. */
    char *abs = realpath(path, NULL);
    if (abs)
        path = abs;
    struct wp_snapshot *s = load(path, true);
    if (!s) {
        free(abs);
        return 1;
    }
    /* Lists and groups are shown as written: read the file once more. */
    config_t cfg;
    struct wp_errors err;
    wp_errors_init(&err);
    bool read = wp_conf_read(&cfg, path, &err);
    free(abs);
    wp_snapshot_print(stdout, s, read ? config_root_setting(&cfg) : NULL, changed_only);
    config_destroy(&cfg);
    wp_errors_free(&err);
    wp_snapshot_unref(s);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* What Postfix receives for one address: each map's answer (NULL: not
 * found) and the policy service's for an outside and a trusted client. */
#define ROUTE_ANSWERS 5
struct route_answer {
    const char *name;
    const char *value;
    char buf[WP_TCP_REPLY_MAX];
};

static void route_answers(const struct wp_snapshot *s, const char *address, struct route_answer *pf)
{
    static const struct {
        const char *name;
        enum wp_map map;
    } maps[] = {
        {"transport", WP_MAP_TRANSPORT},
        {"virtual", WP_MAP_VIRTUAL},
        {"recipient", WP_MAP_RECIPIENT},
    };
    for (size_t i = 0; i < 3; i++) {
        pf[i].name = maps[i].name;
        enum wp_answer a = wp_map_lookup(s, maps[i].map, address, pf[i].buf, sizeof(pf[i].buf));
        pf[i].value = a == WP_ANS_NOTFOUND ? NULL : pf[i].buf;
        if (a == WP_ANS_TEMP || a == WP_ANS_PERM) {
            char reason[sizeof(pf[i].buf)];
            wp_strlcpy(reason, pf[i].buf, sizeof(reason));
            WP_JOIN(pf[i].buf, sizeof(pf[i].buf), a == WP_ANS_TEMP ? "TEMP " : "PERM ", reason);
        }
    }
    /* An outside client (no SASL login, an address in no trusted network)
     * and an authenticated one: the two relay classes Postfix asks about. */
    struct wp_policy_request req;
    memset(&req, 0, sizeof(req));
    strcpy(req.request, "smtpd_access_policy");
    strcpy(req.protocol_state, "RCPT");
    wp_strlcpy(req.recipient, address, sizeof(req.recipient));
    pf[3].name = "policy_untrusted";
    wp_policy_decide(s, &req, pf[3].buf, sizeof(pf[3].buf));
    pf[3].value = pf[3].buf;
    strcpy(req.sasl_username, "waypost-route");
    pf[4].name = "policy_trusted";
    wp_policy_decide(s, &req, pf[4].buf, sizeof(pf[4].buf));
    pf[4].value = pf[4].buf;
}

static void print_route_json(const struct wp_snapshot *s, const char *input, const struct wp_route *rt,
                             const struct wp_trace *trace, const struct route_answer *pf)
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
    /* a group: its members; a forwarder on the way: its one target */
    fputs(",\"group\":", stdout);
    if (rt->group) {
        fputs("{\"address\":", stdout);
        wp_json_string(stdout, rt->group->address);
        printf(",\"forwarder\":%s,\"relay\":%s,\"members\":[", rt->group->forwarder ? "true" : "false",
               rt->group->relay ? "true" : "false");
        for (size_t i = 0; i < rt->group->nmembers; i++) {
            if (i)
                fputc(',', stdout);
            wp_json_string(stdout, rt->group->members[i]);
        }
        fputs("]}", stdout);
    } else {
        fputs("null", stdout);
    }
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
    for (int i = 0; trace && i < trace->nsteps; i++) {
        const struct wp_trace_step *st = &trace->steps[i];
        fputs(i ? ",{\"text\":" : "{\"text\":", stdout);
        wp_json_string(stdout, st->text);
        if (st->record) {
            char text[WP_ROUTE_STEP_LEN];
            wp_table_record_format(st->record, text, sizeof(text));
            fputs(",\"file\":", stdout);
            wp_json_string(stdout, s->router->table->name);
            printf(",\"line\":%u,\"record\":", (unsigned)st->record->line);
            wp_json_string(stdout, text);
        } else {
            fputs(",\"file\":null,\"line\":null,\"record\":null", stdout);
        }
        putchar('}');
    }
    if (!pf) {
        fputs("],\"postfix\":null}\n", stdout);
        return;
    }
    fputs("],\"postfix\":{", stdout);
    for (size_t i = 0; i < ROUTE_ANSWERS; i++) {
        printf("%s\"%s\":", i ? "," : "", pf[i].name);
        if (pf[i].value)
            wp_json_string(stdout, pf[i].value);
        else
            fputs("null", stdout);
    }
    fputs("}}\n", stdout);
}

static int cmd_route(const char *path, int argc, char **argv)
{
    static const struct option opts[] = {
        {"trusted", no_argument, NULL, 't'},
        {"access", no_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    struct wp_resolve_opts ro = {false, false};
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
    struct route_answer *pf = wp_malloc(ROUTE_ANSWERS * sizeof(*pf));
    int status = 0;
    for (int i = optind; i < argc; i++) {
        struct wp_route rt;
        wp_resolve(s->router, argv[i], &ro, &rt, trace);
        /* 2: the address cannot be delivered (ERROR, UNKNOWN); 3: an account
         * source failed (TEMP); the worst of all addresses is the status. */
        int st = rt.kind == WP_ROUTE_ERROR || rt.kind == WP_ROUTE_UNKNOWN ? 2
                 : rt.kind == WP_ROUTE_TEMP                               ? 3
                                                                          : 0;
        if (st > status)
            status = st;
        if (ro.access) {
            pf[0].name = NULL; /* a login name: Postfix asks no map about it */
        } else {
            route_answers(s, argv[i], pf);
        }
        if (json) {
            print_route_json(s, argv[i], &rt, trace, ro.access ? NULL : pf);
            continue;
        }
        printf("%s\n", argv[i]);
        for (int k = 0; k < trace->nsteps; k++)
            printf("  %2d. %s\n", k + 1, trace->steps[k].text);
        if (trace->truncated)
            printf("  ... (more steps not shown)\n");
        if (wp_route_leaves_server(&rt) && !wp_route_relay_permitted(&rt, ro.trusted))
            printf("  relaying: refused for this client (%s)\n", WP_TEXT_RELAY_DENIED);
        if (ro.access)
            continue;
        printf("  Postfix receives:\n");
        for (size_t k = 0; k < ROUTE_ANSWERS; k++)
            printf("    %-17s %s\n", pf[k].name, pf[k].value ? pf[k].value : "(not found)");
    }
    free(pf);
    free(trace);
    wp_snapshot_unref(s);
    return status;
}

static int cmd_rules(const char *path, int argc, char **argv)
{
    static const struct option opts[] = {
        {"test", required_argument, NULL, 'T'}, {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},   {"client", required_argument, NULL, 'c'},
        {"auth", required_argument, NULL, 'a'}, {NULL, 0, NULL, 0},
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
        default:
            usage(stderr);
            free(rcpts);
            return 2;
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
        .return_path = from[0] == '<' ? "" : from,
        .rcpts = (const char *const *)rcpts,
        .nrcpts = nrcpts,
        .headers = headers,
        .nheaders = nheaders,
        .size = size,
        .client_addr = client,
        .auth_user = auth,
        .now = time(NULL),
    };
    struct wp_outcome out;
    wp_rules_evaluate(wp_milter_conf(s)->rules, &wp_milter_conf(s)->rules_env, &wm, &out);
    printf("%zu rules; fired: ", wp_rules_count(wp_milter_conf(s)->rules));
    for (size_t i = 0; i < out.nfired; i++)
        printf("%s%s", i ? ", " : "", out.fired[i]);
    printf("%s\n", out.nfired ? "" : "none");
    for (size_t i = 0; i < out.nlog; i++)
        printf("  %s\n", out.log[i]);
    if (out.tempfail)
        printf("result: TEMPFAIL 451 %s\n", out.tempfail_text);
    else if (out.reject)
        printf("result: REJECT 550 5.7.1 %s\n",
               out.reject_text[0] ? out.reject_text : "Message rejected by a server-wide rule");
    else if (out.discard)
        printf("result: DISCARD\n");
    else {
        printf("result: ACCEPT\n");
        if (out.drop_recipients)
            printf("  original recipients removed\n");
        for (size_t i = 0; i < out.nadd; i++)
            printf("  add recipient %s\n", out.add_rcpts[i]);
        for (size_t i = 0; i < out.nheaders; i++)
            printf("  add header %s: %s\n", out.add_headers[i].name, out.add_headers[i].value);
        if (out.subject)
            printf("  Subject: %s\n", out.subject);
        for (size_t i = 0; i < out.nreplies; i++) {
            struct wp_reply_message rm;
            const char *why;
            if (wp_reply_build(&wm, &out.replies[i], rcpts[0], &rm, &why)) {
                printf("  reply to");
                for (size_t k = 0; k < rm.nrcpts; k++)
                    printf(" %s", rm.rcpts[k]);
                printf(" via %s\n", wp_milter_conf(s)->reply_via);
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

/* waypost dovecot [--acl] [--dovecot 2.3|2.4]: what Dovecot needs for the
 * imap section, in the syntax of that Dovecot version (default:
 * imap.dovecot_version, else the installed Dovecot's, else 2.4). */
static int cmd_dovecot(const char *path, int argc, char **argv)
{
    bool acl = false;
    int version = WP_DOVECOT_AUTO;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--acl") == 0 && !acl) {
            acl = true;
        } else if (strcmp(argv[i], "--dovecot") == 0 && i + 1 < argc && version == WP_DOVECOT_AUTO &&
                   (version = wp_dovecot_version_parse(argv[i + 1], true)) != 0) {
            i++;
        } else {
            usage(stderr);
            return 2;
        }
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
    int rc = 0;
    if (acl) {
        wp_dovecot_print_acl(stdout, wp_imap_conf(s), s->router, abs ? abs : path);
    } else {
        char why[512];
        version = wp_dovecot_version_choose(wp_imap_conf(s), version);
        if (wp_dovecot_conf_supported(wp_imap_conf(s), version, why, sizeof(why)))
            wp_dovecot_print_conf(stdout, wp_imap_conf(s), s->router, abs ? abs : path, version);
        else
            fprintf(stderr, "waypost: %s: %s\n", path, why), rc = 1;
    }
    free(abs);
    wp_snapshot_unref(s);
    return fflush(stdout) == 0 ? rc : 1;
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
    if (strcmp(argv[i], "show") == 0)
        return cmd_show(path, argc - i, argv + i);
    if (strcmp(argv[i], "route") == 0)
        return cmd_route(path, argc - i, argv + i);
    if (strcmp(argv[i], "rules") == 0)
        return cmd_rules(path, argc - i, argv + i);
    if (strcmp(argv[i], "postconf") == 0)
        return wp_postconf_main(path, argc - i, argv + i);
    if (strcmp(argv[i], "dovecot") == 0)
        return cmd_dovecot(path, argc - i, argv + i);
    if (strcmp(argv[i], "stats") == 0)
        return wp_stats_main(path, argc - i, argv + i);
    if (strcmp(argv[i], "import") == 0)
        return wp_import_main(argc - i, argv + i);
    if (strcmp(argv[i], "export") == 0)
        return wp_export_main(argc - i, argv + i);
    if (strcmp(argv[i], "queue") == 0 ||
        (strcmp(argv[i], "odmr") == 0 && i + 2 == argc && strcmp(argv[i + 1], "list") == 0))
        return wp_queue_main(path, argc - i, argv + i);
    fprintf(stderr, "waypost: unknown command '%s'\n", argv[i]);
    usage(stderr);
    return 2;
}
