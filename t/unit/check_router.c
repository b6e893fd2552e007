/* SPDX-License-Identifier: MIT */
/* Unit tests: Router resolution against the golden lookups, and the
 * behaviours that need a file system (account files changing). */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state/snapshot.h"
#include "unit_router.h"
#include "lib/util.h"
#include "cli/sections.h"

static struct wp_snapshot *load_conf(const char *path)
{
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_snapshot *s = wp_snapshot_load(path, wp_sections_all, &err);
    for (size_t i = 0; i < err.count; i++)
        fprintf(stderr, "%s\n", err.msgs[i]);
    wp_errors_free(&err);
    return s;
}

static bool field_eq(const char *want, const char *have)
{
    if (strcmp(want, "-") == 0)
        return have[0] == '\0';
    return strcmp(want, have) == 0;
}

START_TEST(golden)
{
    FILE *f = fopen(srcpath("t/data/golden.txt"), "r");
    ck_assert_msg(f != NULL, "cannot open golden.txt");
    struct wp_snapshot *s = NULL;
    char line[2048];
    int lineno = 0, cases = 0, failures = 0;
    struct wp_trace *trace = wp_malloc(sizeof(*trace));
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        if (strncmp(line, "@config ", 8) == 0) {
            if (s)
                wp_snapshot_unref(s);
            s = load_conf(srcpath(line + 8));
            ck_assert_msg(s != NULL, "golden.txt:%d: cannot load %s", lineno, line + 8);
            continue;
        }
        char mode[4], addr[512], kind[16], env[512], hop[256], port[8], mx[8], queue[256], cls[32], relay[16];
        int textpos = 0;
        int n = sscanf(line, "%3s %511s => %15s %511s %255s %7s %7s %255s %31s %15s %n", mode, addr, kind,
                       env, hop, port, mx, queue, cls, relay, &textpos);
        if (n < 10) {
            /* Addresses with spaces are not used; a short line is a typo in the data. */
            ck_abort_msg("golden.txt:%d: malformed line", lineno);
        }
        const char *text = textpos ? line + textpos : "";
        struct wp_resolve_opts o = {mode[0] == 'T', mode[0] == 'A'};
        struct wp_route rt;
        wp_resolve(s->router, addr, &o, &rt, trace);
        char portbuf[16];
        snprintf(portbuf, sizeof(portbuf), "%d", rt.port);
        const char *why = NULL;
        if (strcmp(kind, wp_route_kind_name(rt.kind)) != 0)
            why = "kind";
        else if (!field_eq(env, rt.address))
            why = "envelope";
        else if (!field_eq(hop, rt.nexthop))
            why = "nexthop";
        else if (strcmp(port, "-") == 0 ? rt.port != 0 : strcmp(port, portbuf) != 0)
            why = "port";
        else if (strcmp(mx, "-") != 0 && (strcmp(mx, "yes") == 0) != rt.mx)
            why = "mx";
        else if (!field_eq(queue, rt.queue))
            why = "queue";
        else if (strcmp(cls, wp_relay_class_name(rt.relay_class)) != 0)
            why = "relay class";
        else if ((strcmp(relay, "ok") == 0) != wp_route_relay_permitted(&rt, o.trusted))
            why = "relay decision";
        else if (*text && strncmp(rt.text, text, strlen(text)) != 0)
            why = "text";
        cases++;
        if (why) {
            failures++;
            fprintf(stderr, "golden.txt:%d: %s: %s differs: got %s %s %s %d %s %s %s %s '%s'\n", lineno, addr,
                    why, wp_route_kind_name(rt.kind), rt.address, rt.nexthop, rt.port, rt.mx ? "yes" : "no",
                    rt.queue, wp_relay_class_name(rt.relay_class),
                    wp_route_relay_permitted(&rt, o.trusted) ? "ok" : "denied", rt.text);
            for (int k = 0; k < trace->nsteps; k++)
                fprintf(stderr, "    %s\n", trace->steps[k].text);
        }
    }
    fclose(f);
    free(trace);
    if (s)
        wp_snapshot_unref(s);
    ck_assert_int_gt(cases, 60);
    ck_assert_msg(failures == 0, "%d of %d golden lookups failed", failures, cases);
}
END_TEST

/* The route names what decided it: the Mail to Unknown domain of a
 * reroute, nothing for an existing account. */
START_TEST(route_names_unknown_domain)
{
    struct wp_snapshot *s = load_conf(srcpath("conf/waypost.conf"));
    ck_assert(s);
    struct wp_route rt;
    struct wp_resolve_opts o = {true, false};
    wp_resolve(s->router, "nobody@domain.dom", &o, &rt, NULL);
    ck_assert_int_eq(rt.kind, WP_ROUTE_RELAY);
    ck_assert(rt.unknown && strcmp(rt.unknown->name, "domain.dom") == 0);
    ck_assert(rt.record == NULL);
    wp_resolve(s->router, "carol@domain.dom", &o, &rt, NULL);
    ck_assert(rt.kind == WP_ROUTE_LOCAL && rt.unknown == NULL && rt.record == NULL);
    wp_snapshot_unref(s);
}
END_TEST

START_TEST(trace_names_each_step)
{
    /* Only the table matters here: a Router without waypost.conf. */
    struct wp_router *r = unit_sample_router();
    struct wp_trace trace;
    struct wp_route rt;
    struct wp_resolve_opts o = {true, false};
    wp_resolve(r, "bob@client57.com", &o, &rt, &trace);
    ck_assert_int_ge(trace.nsteps, 4);
    ck_assert(strstr(trace.steps[0].text, "address bob@client57.com"));
    ck_assert(strstr(trace.steps[1].text, "router.table:24: "));
    ck_assert(strstr(trace.steps[1].text, "<*@client57.com> = *%client57.com@other-port"));
    ck_assert(strstr(trace.steps[2].text, "other-port = sibling.company.dom:26.via"));
    ck_assert(strstr(trace.steps[trace.nsteps - 1].text, "route: RELAY to sibling.company.dom:26"));
    ck_assert(trace.steps[0].record == NULL);
    ck_assert(trace.steps[1].record && trace.steps[1].record->line == 24);
    ck_assert(trace.steps[2].record && trace.steps[2].record->line == 20);
    ck_assert(trace.steps[trace.nsteps - 1].record == NULL);
    /* without a trace nothing is written; the route still names the record
     * that decided (the last one applied) */
    wp_resolve(r, "bob@client57.com", &o, &rt, NULL);
    ck_assert_int_eq(rt.kind, WP_ROUTE_RELAY);
    ck_assert(rt.record && rt.record->line == 20);
    ck_assert(rt.unknown == NULL);
    char text[128];
    wp_resolve(r, "former-employee@company.dom", &o, &rt, NULL);
    ck_assert(rt.record && wp_table_record_format(rt.record, text, sizeof(text)));
    ck_assert_str_eq(text, "<former-employee@company.dom> = error 5.1.6 This person has left the company");
    ck_assert(!wp_table_record_format(rt.record, text, 10)); /* cut: says so */
    wp_router_free(r);
}
END_TEST

/* A new account in the passwd-file routes locally without a restart. */
START_TEST(account_created_goes_local)
{
    char dir[] = "/tmp/wp-unit-XXXXXX";
    ck_assert(mkdtemp(dir));
    char users[256];
    snprintf(users, sizeof(users), "%s/users", dir);
    FILE *f = fopen(users, "w");
    fputs("carol:{PLAIN}x::::::\n", f);
    fclose(f);
    /* No waypost.conf: the Router from its construction API. */
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_router *r = wp_router_new("company.dom", "test", dir);
    wp_router_set_accounts(r, 0, 1000); /* account_cache_seconds = 0 */
    struct wp_domain_spec dom = {.name = "domain.dom",
                                 .accounts = "passwd-file:users",
                                 .mail_to_unknown = "Rerouted to *%domain.dom@otherserver.dom.via"};
    wp_router_add_domain(r, &dom, &err);
    wp_router_finish(r, &err);
    ck_assert_uint_eq(err.count, 0);
    wp_errors_free(&err);
    struct wp_resolve_opts o = {false, false};
    struct wp_route rt;
    wp_resolve(r, "aname@domain.dom", &o, &rt, NULL);
    ck_assert_int_eq(rt.kind, WP_ROUTE_RELAY);
    ck_assert_str_eq(rt.nexthop, "otherserver.dom");
    f = fopen(users, "a");
    fputs("aname:{PLAIN}y::::::\n", f);
    fclose(f);
    wp_resolve(r, "aname@domain.dom", &o, &rt, NULL);
    ck_assert_int_eq(rt.kind, WP_ROUTE_LOCAL);
    ck_assert_str_eq(rt.account, "aname");
    /* the file vanishing keeps the accounts read before */
    unlink(users);
    wp_resolve(r, "aname@domain.dom", &o, &rt, NULL);
    ck_assert_int_eq(rt.kind, WP_ROUTE_LOCAL);
    wp_router_free(r);
    rmdir(dir);
}
END_TEST

/* The construction API alone: a table text and a domain list. */
START_TEST(router_from_table_text)
{
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_router *r = wp_router_new("Company.DOM", "test.conf", NULL);
    static const char *const aliases[] = {"mail.company.dom", NULL};
    struct wp_domain_spec company = {.name = "company.dom", .aliases = aliases};
    company.accounts = "list:alice,bob";
    wp_router_add_domain(r, &company, &err);
    wp_router_add_domain(r,
                         &(struct wp_domain_spec){.name = "other.dom",
                                                  .accounts = "list:carol",
                                                  .mail_to_unknown = "Rerouted to *%other.dom@old.dom.via",
                                                  .line = 4},
                         &err);
    wp_router_add(r, WP_ROUTER_HOLD_QUEUE, "held.dom", NULL, 0, &err);
    wp_router_table_text(r, "<postmaster> = alice\n", "inline", &err);
    wp_router_finish(r, &err);
    ck_assert_msg(err.count == 0, "%s", err.count ? err.msgs[0] : "");
    ck_assert_str_eq(r->main_domain, "company.dom");
    struct wp_resolve_opts o = {true, false};
    struct wp_route rt;
    wp_resolve(r, "postmaster@mail.company.dom", &o, &rt, NULL);
    ck_assert_int_eq(rt.kind, WP_ROUTE_LOCAL);
    ck_assert_str_eq(rt.account, "alice");
    wp_resolve(r, "nobody@other.dom", &o, &rt, NULL);
    ck_assert_int_eq(rt.kind, WP_ROUTE_RELAY);
    ck_assert_str_eq(rt.nexthop, "old.dom");
    wp_resolve(r, "carol@OTHER.dom", &o, &rt, NULL);
    ck_assert_int_eq(rt.kind, WP_ROUTE_LOCAL);
    wp_resolve(r, "x@held.dom", &o, &rt, NULL);
    ck_assert_int_eq(rt.kind, WP_ROUTE_HOLD);
    wp_router_free(r);

    /* Errors name the file and line given. */
    r = wp_router_new("company.dom", "test.conf", NULL);
    struct wp_domain_spec bad = {.name = "bad domain", .file = "w.conf", .line = 7};
    wp_router_add_domain(r, &bad, &err);
    wp_router_add_domain(
        r,
        &(struct wp_domain_spec){
            .name = "a.dom", .mail_to_unknown = "Bounced", .file = "w.conf", .line = 8, .unknown_line = 9},
        &err);
    wp_router_add(r, WP_ROUTER_TRUSTED, "10.0.0.0/40", "w.conf", 10, &err);
    ck_assert_uint_eq(err.count, 3);
    ck_assert_str_eq(err.msgs[0], "w.conf:7: domain needs a valid name");
    ck_assert_msg(strstr(err.msgs[1], "w.conf:9: mail_to_unknown: expected"), "%s", err.msgs[1]);
    ck_assert_str_eq(err.msgs[2],
                     "w.conf:10: trusted_networks: '10.0.0.0/40' is not a network (ADDRESS or ADDRESS/BITS)");
    wp_router_free(r);
    wp_errors_free(&err);
}
END_TEST

/* CommuniGate's relay suffixes straight after a bracketed IP address, in
 * records and in Mail to Unknown; UTF-8 local parts as SMTPUTF8 has them. */
START_TEST(suffix_after_ip_literal)
{
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_router *r = wp_router_new("company.dom", "test.conf", NULL);
    wp_router_add_domain(
        r,
        &(struct wp_domain_spec){.name = "legacy.dom",
                                 .accounts = "list:erin",
                                 .mail_to_unknown = "Rerouted to *%legacy.dom@[10.1.2.3:26].via"},
        &err);
    wp_router_table_text(r,
                         "a1 = [10.1.2.3].via\na2 = [10.1.2.3]._via\na3 = [10.1.2.3].SMTP\n"
                         "a4 = [10.1.2.3:26].via\n<x@a5> = y%a5@[10.1.2.3].via\n",
                         "inline", &err);
    wp_router_finish(r, &err);
    ck_assert_msg(err.count == 0, "%s", err.count ? err.msgs[0] : "");
    static const struct {
        const char *in, *env, *hop;
        int port;
    } cases[] = {
        {"u@a1", "u@a1", "[10.1.2.3]", 0},
        {"u@a2", "u@a2", "[10.1.2.3]", 0},
        {"u@a3", "u@a3", "[10.1.2.3]", 0},
        {"u@a4", "u@a4", "[10.1.2.3]", 26},
        {"x@a5", "y@a5", "[10.1.2.3]", 0},
        {"nobody@legacy.dom", "nobody@legacy.dom", "[10.1.2.3]", 26},
        {"j\xc3\xb6rg@legacy.dom", "j\xc3\xb6rg@legacy.dom", "[10.1.2.3]", 26},
    };
    struct wp_resolve_opts o = {true, false};
    struct wp_route rt;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        wp_resolve(r, cases[i].in, &o, &rt, NULL);
        ck_assert_msg(rt.kind == WP_ROUTE_RELAY, "%s: %s %s", cases[i].in, wp_route_kind_name(rt.kind),
                      rt.text);
        ck_assert_str_eq(rt.address, cases[i].env);
        ck_assert_str_eq(rt.nexthop, cases[i].hop);
        ck_assert_int_eq(rt.port, cases[i].port);
        ck_assert(!rt.mx);
    }
    /* a client cannot write the next-hop form itself */
    wp_resolve(r, "u@[10.1.2.3].via", &o, &rt, NULL);
    ck_assert_int_eq(rt.kind, WP_ROUTE_ERROR);
    wp_router_free(r);
    /* other text after the literal is still refused */
    r = wp_router_new("company.dom", "test.conf", NULL);
    wp_router_table_text(r, "b = [10.1.2.3].com\n", "inline", &err);
    ck_assert_uint_eq(err.count, 1);
    wp_router_free(r);
    wp_errors_free(&err);
}
END_TEST

START_TEST(relay_permission_rules)
{
    struct wp_route rt;
    memset(&rt, 0, sizeof(rt));
    rt.kind = WP_ROUTE_LOCAL;
    ck_assert(wp_route_relay_permitted(&rt, false));
    rt.kind = WP_ROUTE_RELAY;
    ck_assert(!wp_route_relay_permitted(&rt, false));
    ck_assert(wp_route_relay_permitted(&rt, true));
    rt.relay_class = WP_RC_NORELAY;
    ck_assert(!wp_route_relay_permitted(&rt, false));
    rt.relay_class = WP_RC_RELAY;
    ck_assert(wp_route_relay_permitted(&rt, false));
    rt.routed_input = true;
    ck_assert(!wp_route_relay_permitted(&rt, false));
    rt.relay_class = WP_RC_RELAYALL;
    ck_assert(wp_route_relay_permitted(&rt, false));
    rt.relay_class = WP_RC_UNKNOWN_REROUTE;
    ck_assert(wp_route_relay_permitted(&rt, false));
    rt.kind = WP_ROUTE_HOLD;
    rt.relay_class = WP_RC_NONE;
    ck_assert(!wp_route_relay_permitted(&rt, false));
    rt.kind = WP_ROUTE_ERROR;
    ck_assert(wp_route_relay_permitted(&rt, false));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("router");
    tcase_add_test(tc, golden);
    tcase_add_test(tc, trace_names_each_step);
    tcase_add_test(tc, route_names_unknown_domain);
    tcase_add_test(tc, account_created_goes_local);
    tcase_add_test(tc, relay_permission_rules);
    tcase_add_test(tc, router_from_table_text);
    tcase_add_test(tc, suffix_after_ip_literal);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(suite)
