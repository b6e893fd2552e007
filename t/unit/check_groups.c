/* SPDX-License-Identifier: MIT */
/* Unit tests: groups and forwarders of a local domain (router/groups.c),
 * their routes, the virtual map's answer and the relay check per member. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/sections.h"
#include "lib/util.h"
#include "policy/maps.h"
#include "state/snapshot.h"
#include "unit.h"

static char errors[8192];

/* Load a config text, a Router table and a groups file (groups.txt) from a
 * temporary directory; error messages, without the directory, in errors. */
static struct wp_snapshot *load(const char *conf, const char *table, const char *groups)
{
    char dir[] = "/tmp/wp-groups-XXXXXX";
    ck_assert(mkdtemp(dir));
    char path[256], tpath[256], gpath[256];
    snprintf(path, sizeof(path), "%s/w.conf", dir);
    snprintf(tpath, sizeof(tpath), "%s/router.table", dir);
    snprintf(gpath, sizeof(gpath), "%s/groups.txt", dir);
    FILE *f = fopen(path, "w");
    fputs(conf, f);
    fclose(f);
    f = fopen(tpath, "w");
    fputs(table ? table : "", f);
    fclose(f);
    f = fopen(gpath, "w");
    fputs(groups ? groups : "", f);
    fclose(f);
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_snapshot *s = wp_snapshot_load(path, wp_sections_all, &err);
    errors[0] = '\0';
    for (size_t i = 0; i < err.count; i++) {
        const char *m = err.msgs[i];
        const char *slash = strstr(m, dir);
        if (slash)
            m = slash + strlen(dir) + 1;
        strncat(errors, m, sizeof(errors) - strlen(errors) - 2);
        strcat(errors, "\n");
    }
    ck_assert((s == NULL) == (err.count > 0));
    wp_errors_free(&err);
    unlink(path);
    unlink(tpath);
    unlink(gpath);
    rmdir(dir);
    return s;
}

#define HEAD                                                                                                 \
    "router: {\n main_domain = \"company.dom\";\n table = \"router.table\";\n"                               \
    " trusted_networks = [ \"127.0.0.0/8\" ];\n"                                                             \
    " domains = ( { name = \"company.dom\"; aliases = [ \"mail.company.dom\" ];\n"                           \
    "   accounts = \"list:alice,bob\";\n"

static const char *const table = "Relay:<*@friend.com> = *%friend.com@friend.com.via\n";

static struct wp_snapshot *sample(void)
{
    struct wp_snapshot *s = load(
        HEAD "   groups = [ \"Team: alice, bob, john@friend.com\", \"offsite: alice, u@far.example\",\n"
             "              \"Relay:partners: u@far.example, bob\", \"file:groups.txt\" ];\n"
             "   forwarders = [ \"fwd: bob\", \"out: u@far.example\", \"Relay:ext: v@far.example\" ]; }\n"
             " );\n};\n",
        table, "# nested\n\nall: team, offsite\nloop1: loop2, alice\nloop2: loop1\n");
    ck_assert_msg(s != NULL, "%s", errors);
    return s;
}

START_TEST(routes)
{
    struct wp_snapshot *s = sample();
    const struct wp_router *r = s->router;
    struct wp_trace *trace = wp_malloc(sizeof(*trace));
    struct wp_route rt;
    struct wp_resolve_opts untrusted = {false, false};
    wp_resolve(r, "TEAM@mail.company.dom", &untrusted, &rt, trace);
    ck_assert_str_eq(wp_route_kind_name(rt.kind), "GROUP");
    ck_assert_str_eq(rt.address, "TEAM@company.dom");
    ck_assert_ptr_nonnull(rt.group);
    ck_assert_uint_eq(rt.group->nmembers, 3);
    ck_assert_str_eq(rt.group->answer, "alice@company.dom, bob@company.dom, john@friend.com");
    /* the trace names the group, where it was configured, and its members */
    bool named = false;
    for (int i = 0; i < trace->nsteps; i++)
        if (strstr(trace->steps[i].text,
                   "w.conf:7: group team@company.dom: alice@company.dom, bob@company.dom"))
            named = true;
    ck_assert_msg(named, "trace does not name the group");
    /* from the file, with its own file:line */
    wp_resolve(r, "all@company.dom", &untrusted, &rt, trace);
    ck_assert_int_eq(rt.kind, WP_ROUTE_GROUP);
    ck_assert_str_eq(rt.group->answer, "team@company.dom, offsite@company.dom");
    ck_assert_int_eq(rt.group->line, 3);
    ck_assert(strstr(rt.group->file, "groups.txt") != NULL);
    /* a forwarder rewrites to its target, which routes on */
    wp_resolve(r, "Fwd@company.dom", &untrusted, &rt, trace);
    ck_assert_int_eq(rt.kind, WP_ROUTE_LOCAL);
    ck_assert_str_eq(rt.account, "bob");
    ck_assert_ptr_nonnull(rt.group);
    ck_assert(rt.group->forwarder);
    named = false;
    for (int i = 0; i < trace->nsteps; i++)
        if (strstr(trace->steps[i].text, "forwarder fwd@company.dom to bob@company.dom"))
            named = true;
    ck_assert_msg(named, "trace does not name the forwarder");
    /* off-server target: an untrusted client may not relay through it ... */
    wp_resolve(r, "out@company.dom", &untrusted, &rt, trace);
    ck_assert_int_eq(rt.kind, WP_ROUTE_RELAY);
    ck_assert_str_eq(rt.address, "u@far.example");
    ck_assert(!wp_route_relay_permitted(&rt, false));
    /* ... unless the forwarder has Relay: */
    wp_resolve(r, "ext@company.dom", &untrusted, &rt, trace);
    ck_assert_int_eq(rt.kind, WP_ROUTE_RELAY);
    ck_assert(wp_route_relay_permitted(&rt, false));
    /* an account name is still an account; a name that is neither is unknown */
    wp_resolve(r, "alice@company.dom", &untrusted, &rt, trace);
    ck_assert_int_eq(rt.kind, WP_ROUTE_LOCAL);
    ck_assert_ptr_null(rt.group);
    wp_resolve(r, "nobody@company.dom", &untrusted, &rt, trace);
    ck_assert_int_eq(rt.kind, WP_ROUTE_UNKNOWN);
    free(trace);
    wp_snapshot_unref(s);
}
END_TEST

static const char *decide(const struct wp_snapshot *s, const char *rcpt, const char *client)
{
    static char action[512];
    struct wp_policy_request req;
    memset(&req, 0, sizeof(req));
    strcpy(req.request, "smtpd_access_policy");
    strcpy(req.protocol_state, "RCPT");
    strcpy(req.client_address, client);
    strcpy(req.recipient, rcpt);
    wp_policy_decide(s, &req, action, sizeof(action));
    return action;
}

START_TEST(maps_and_policy)
{
    struct wp_snapshot *s = sample();
    char v[4096];
    ck_assert_int_eq(wp_map_lookup(s, WP_MAP_VIRTUAL, "Team@Company.DOM", v, sizeof(v)), WP_ANS_FOUND);
    ck_assert_str_eq(v, "alice@company.dom, bob@company.dom, john@friend.com");
    ck_assert_int_eq(wp_map_lookup(s, WP_MAP_RECIPIENT, "team@company.dom", v, sizeof(v)), WP_ANS_FOUND);
    /* transport sees a group only when Postfix's expansion failed: never relay */
    ck_assert_int_eq(wp_map_lookup(s, WP_MAP_TRANSPORT, "team@company.dom", v, sizeof(v)), WP_ANS_FOUND);
    ck_assert_str_eq(v, "error:5.4.6 Group expansion loop");
    ck_assert_int_eq(wp_map_lookup(s, WP_MAP_VIRTUAL, "fwd@company.dom", v, sizeof(v)), WP_ANS_FOUND);
    ck_assert_str_eq(v, "bob@company.dom");
    ck_assert_int_eq(wp_map_lookup(s, WP_MAP_VIRTUAL, "out@company.dom", v, sizeof(v)), WP_ANS_FOUND);
    ck_assert_str_eq(v, "u@far.example");
    ck_assert_int_eq(wp_map_lookup(s, WP_MAP_TRANSPORT, "out@company.dom", v, sizeof(v)), WP_ANS_FOUND);
    ck_assert_str_eq(v, "smtp:far.example");

    const char *outside = "192.0.2.10", *inside = "127.0.0.1";
    /* members local or under a Relay: record: anyone */
    ck_assert_str_eq(decide(s, "team@company.dom", outside), "DUNNO");
    /* an off-server member without a relay grant: outside refused, inside fine */
    ck_assert_str_eq(decide(s, "offsite@company.dom", outside), "554 " WP_TEXT_RELAY_DENIED);
    ck_assert_str_eq(decide(s, "offsite@company.dom", inside), "DUNNO");
    /* the group's Relay: lets anyone through */
    ck_assert_str_eq(decide(s, "partners@company.dom", outside), "DUNNO");
    /* nested: the member group's members are checked too */
    ck_assert_str_eq(decide(s, "all@company.dom", outside), "554 " WP_TEXT_RELAY_DENIED);
    ck_assert_str_eq(decide(s, "all@company.dom", inside), "DUNNO");
    /* groups naming each other: the check ends, refusing for outside */
    ck_assert_str_eq(decide(s, "loop1@company.dom", outside), "554 " WP_TEXT_RELAY_DENIED);
    ck_assert_str_eq(decide(s, "loop1@company.dom", inside), "DUNNO");
    /* forwarders */
    ck_assert_str_eq(decide(s, "out@company.dom", outside), "554 " WP_TEXT_RELAY_DENIED);
    ck_assert_str_eq(decide(s, "ext@company.dom", outside), "DUNNO");
    ck_assert_str_eq(decide(s, "fwd@company.dom", outside), "DUNNO");
    wp_snapshot_unref(s);
}
END_TEST

static void expect_error(const char *domain_rest, const char *groups_file, const char *want)
{
    char conf[16384];
    snprintf(conf, sizeof(conf), HEAD "%s }\n );\n};\n", domain_rest);
    struct wp_snapshot *s = load(conf, table, groups_file);
    ck_assert_msg(s == NULL, "loaded: %s", domain_rest);
    ck_assert_msg(strstr(errors, want) != NULL, "wanted '%s', got:\n%s", want, errors);
}

START_TEST(load_errors)
{
    expect_error("   groups = [ \"team alice\" ];", NULL,
                 "w.conf:7: group: expected \"NAME: MEMBER, MEMBER, ...\"");
    expect_error("   groups = [ \"team: alice, @x:y@z\" ];", NULL,
                 "w.conf:7: group team: member '@x:y@z': a member must not carry source routing");
    expect_error("   groups = [ \"team:\" ];", NULL, "w.conf:7: group team: no members");
    expect_error("   groups = [ \"a@b: alice\" ];", NULL,
                 "w.conf:7: group: 'a@b' is not a name in the domain");
    expect_error("   groups = [ \"team: alice\" ];\n   forwarders = [ \"Team: bob\" ];", NULL,
                 "w.conf:8: forwarder: team@company.dom is already a group or forwarder");
    expect_error("   forwarders = [ \"f: a, b\" ];", NULL, "w.conf:7: forwarder f: one target only");
    expect_error("   groups = [ \"me: alice, ME@Company.dom\" ];", NULL,
                 "w.conf:7: group me: lists itself as a member");
    expect_error("   groups = [ \"file:groups.txt\" ];", "ok: alice\n\nbad line\n",
                 "groups.txt:3: group: expected \"NAME: MEMBER, MEMBER, ...\"");
    expect_error("   groups = [ \"file:missing.txt\" ];", NULL, "w.conf:7: groups: ");
    /* a group larger than one Postfix answer */
    char big[8192];
    strcpy(big, "   groups = [ \"big: ");
    for (int i = 0; i < 200; i++)
        snprintf(big + strlen(big), sizeof(big) - strlen(big), "%smember-number-%03d@far.example",
                 i ? ", " : "", i);
    strcat(big, "\" ];");
    expect_error(big, NULL, "w.conf:7: group big: its members take");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("groups");
    TCase *tc = tcase_create("groups");
    tcase_add_test(tc, routes);
    tcase_add_test(tc, maps_and_policy);
    tcase_add_test(tc, load_errors);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(suite)
