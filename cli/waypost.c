/*
 * waypost - the administrator's command line.
 *
 *   waypost [-c FILE] check                  validate the whole configuration
 *   waypost [-c FILE] route [--trusted] [--access] [--json] ADDRESS...
 *                                            trace how addresses are routed
 *
 * Exit codes: 0 success, 1 configuration errors, 2 usage errors.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "snapshot.h"
#include "util.h"

#ifndef WP_SYSCONFDIR
#define WP_SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG WP_SYSCONFDIR "/waypost/waypost.conf"

static void usage(FILE *out)
{
    fputs("usage: waypost [-c FILE] check\n"
          "       waypost [-c FILE] route [--trusted] [--access] [--json] ADDRESS...\n"
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
    printf("%s: OK (main domain %s, %zu domains, %u router records)\n", path, r->main_domain,
           r->ndomains, r->table ? r->table->nrecs : 0);
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
    fprintf(stderr, "waypost: unknown command '%s'\n", argv[i]);
    usage(stderr);
    return 2;
}
