/* SPDX-License-Identifier: MIT */
/* Unit tests: ETRN for held queues: the merged-domain walk, who may release
 * a queue, hostile ETRN arguments, and the configuration checks. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "policy/etrn.h"
#include "policy/maps.h"
#include "policy/settings.h"
#include "state/snapshot.h"
#include "unit.h"
#include "lib/util.h"
#include "cli/sections.h"

static char dir[] = "/tmp/wp-etrn-XXXXXX";

static const char *table_text = "Relay:domain1.dom = domain1.dom.via\n"
                                "Relay:domain2.dom = domain1.dom.via\n"
                                "Relay:<*@domain3.dom> = *%domain3.dom@domain1.dom.via\n"
                                "<joe@other.dom> = joe%other.dom@domain1.dom.via\n"
                                "<ann@other.dom> = ann%other.dom@elsewhere.dom.via\n"
                                "<*@domain5.dom> = *%domain5.dom@hub\n"
                                "hub = domain1.dom.via\n"
                                "<*@alias.dom> = *@company.dom\n"
                                "isp1.dom = client.isp.dom.via\n"
                                "isp2.dom = client.isp.dom:2525.via\n"
                                "*.wild.dom = domain1.dom.via\n"
                                "Access:<login@domain4.dom> = alice\n"
                                "Relay:friend.com = friend.com.via\n";

static const char *router_text =
    "router: {\n"
    "  table = \"r.table\";\n"
    "  main_domain = \"company.dom\";\n"
    "  trusted_networks = [ \"127.0.0.0/8\" ];\n"
    "  hold_queues = [ \"domain1.dom\", \"Client.ISP.dom\", \"open.dom\" ];\n"
    "  domains = ( { name = \"company.dom\"; accounts = \"list:alice\"; },\n"
    "              { name = \"old.dom\"; accounts = \"list:bob\";\n"
    "                mail_to_unknown = \"Rerouted to *%old.dom@client.isp.dom.via\"; } );\n"
    "};\n";

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert(f != NULL);
    fputs(text, f);
    fclose(f);
}

/* Load router_text plus a policyd section; errors go to *err if given. */
static struct wp_snapshot *load_with(const char *policyd, struct wp_errors *out)
{
    char text[4096], path[256];
    snprintf(text, sizeof(text), "%s%s", router_text, policyd);
    write_file("w.conf", text);
    snprintf(path, sizeof(path), "%s/w.conf", dir);
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_snapshot *s = wp_snapshot_load(path, wp_sections_all, &err);
    if (out)
        wp_errors_move(out, &err);
    else
        for (size_t i = 0; i < err.count; i++)
            fprintf(stderr, "%s\n", err.msgs[i]);
    wp_errors_free(&err);
    return s;
}

static struct wp_snapshot *snap;

static void setup(void)
{
    ck_assert(mkdtemp(dir) != NULL);
    write_file("r.table", table_text);
    snap = load_with(
        "policyd: {\n"
        "  etrn_release = \"trusted\";\n"
        "  etrn_queues = ( { queue = \"domain1.dom\"; accounts = [ \"Cust1\", \"cust1@company.dom\" ]; },\n"
        "                  { queue = \"open.dom\"; release = \"anyone\"; } );\n"
        "};\n",
        NULL);
    ck_assert(snap != NULL);
}

static void teardown(void)
{
    wp_snapshot_unref(snap);
    char path[256];
    snprintf(path, sizeof(path), "%s/w.conf", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/r.table", dir);
    unlink(path);
    rmdir(dir);
    memcpy(dir + strlen(dir) - 6, "XXXXXX", 6);
}

static void join(char **items, size_t n, char *out, size_t size)
{
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i)
            strncat(out, " ", size - strlen(out) - 1);
        strncat(out, items[i], size - strlen(out) - 1);
    }
}

START_TEST(merged_domains)
{
    char **d, text[512];
    size_t n = wp_router_queue_domains(snap->router, WP_ROUTE_HOLD, "domain1.dom", &d);
    join(d, n, text, sizeof(text));
    /* domain-level, wildcard-local and exact-address records; ann@other.dom
     * goes elsewhere but joe@other.dom puts other.dom in the queue; the
     * wildcard-domain record cannot be listed; domain5.dom gets there
     * through a second record. */
    ck_assert_str_eq(text, "domain1.dom domain2.dom domain3.dom domain5.dom hub other.dom");
    wp_router_domains_free(d, n);
    n = wp_router_queue_domains(snap->router, WP_ROUTE_HOLD, "client.isp.dom", &d);
    join(d, n, text, sizeof(text));
    /* a port does not change the queue; Mail to Unknown reroutes count */
    ck_assert_str_eq(text, "client.isp.dom isp1.dom isp2.dom old.dom");
    wp_router_domains_free(d, n);
    n = wp_router_queue_domains(snap->router, WP_ROUTE_HOLD, "friend.com", &d);
    ck_assert_uint_eq(n, 0); /* not held */
    wp_router_domains_free(d, n);
}
END_TEST

static void decide(const char *name, const char *client, const char *sasl, struct wp_etrn_decision *d)
{
    wp_etrn_decide(snap->router, &wp_policyd_conf(snap)->etrn, name, client, sasl, d);
}

START_TEST(release_by_account)
{
    struct wp_etrn_decision d;
    char text[512];
    decide("domain1.dom", "192.0.2.1", "", &d);
    ck_assert_int_eq(d.outcome, WP_ETRN_REFUSE);
    ck_assert_str_eq(d.action, "459 4.7.1 this client may not release queue domain1.dom");
    wp_etrn_decision_free(&d);
    decide("domain1.dom", "127.0.0.1", "", &d); /* trusted, but the queue wants its accounts */
    ck_assert_int_eq(d.outcome, WP_ETRN_REFUSE);
    wp_etrn_decision_free(&d);
    decide("domain1.dom", "192.0.2.1", "someone", &d);
    ck_assert_int_eq(d.outcome, WP_ETRN_REFUSE);
    wp_etrn_decision_free(&d);
    decide("domain1.dom", "192.0.2.1", "CUST1", &d);
    ck_assert_int_eq(d.outcome, WP_ETRN_RELEASE);
    ck_assert_str_eq(d.action, "OK");
    ck_assert_str_eq(d.queue, "domain1.dom");
    join(d.domains, d.ndomains, text, sizeof(text));
    ck_assert_str_eq(text,
                     "domain2.dom domain3.dom domain5.dom hub other.dom"); /* Postfix flushes domain1.dom */
    wp_etrn_decision_free(&d);
    decide("@DOMAIN1.Dom.", "192.0.2.1", "cust1@company.dom", &d);
    ck_assert_int_eq(d.outcome, WP_ETRN_RELEASE);
    ck_assert_str_eq(d.name, "domain1.dom");
    ck_assert_uint_eq(d.ndomains, 5);
    wp_etrn_decision_free(&d);
}
END_TEST

START_TEST(release_trusted_and_anyone)
{
    struct wp_etrn_decision d;
    char text[512];
    decide("client.isp.dom", "127.0.0.1", "", &d);
    ck_assert_int_eq(d.outcome, WP_ETRN_RELEASE);
    join(d.domains, d.ndomains, text, sizeof(text));
    ck_assert_str_eq(text, "isp1.dom isp2.dom old.dom");
    wp_etrn_decision_free(&d);
    decide("client.isp.dom", "::ffff:127.0.0.2", "", &d);
    ck_assert_int_eq(d.outcome, WP_ETRN_RELEASE);
    wp_etrn_decision_free(&d);
    decide("client.isp.dom", "192.0.2.1", "", &d);
    ck_assert_int_eq(d.outcome, WP_ETRN_REFUSE);
    wp_etrn_decision_free(&d);
    decide("client.isp.dom", "192.0.2.1", "anybody", &d); /* authenticated is trusted */
    ck_assert_int_eq(d.outcome, WP_ETRN_RELEASE);
    wp_etrn_decision_free(&d);
    decide("open.dom", "192.0.2.1", "", &d);
    ck_assert_int_eq(d.outcome, WP_ETRN_RELEASE);
    ck_assert_uint_eq(d.ndomains, 0);
    wp_etrn_decision_free(&d);
}
END_TEST

START_TEST(merged_domain_needs_the_queue_right)
{
    struct wp_etrn_decision d;
    decide("domain2.dom", "192.0.2.1", "", &d);
    ck_assert_int_eq(d.outcome, WP_ETRN_REFUSE);
    ck_assert_str_eq(d.queue, "domain1.dom");
    wp_etrn_decision_free(&d);
    decide("x.wild.dom", "192.0.2.1", "", &d);
    ck_assert_int_eq(d.outcome, WP_ETRN_REFUSE);
    wp_etrn_decision_free(&d);
    decide("isp2.dom", "127.0.0.1", "", &d);
    ck_assert_int_eq(d.outcome, WP_ETRN_RELEASE);
    ck_assert_uint_eq(d.ndomains, 0); /* only the domain named: Postfix flushes it */
    wp_etrn_decision_free(&d);
}
END_TEST

START_TEST(not_held_passes)
{
    struct wp_etrn_decision d;
    const char *names[] = {"friend.com", "[127.0.0.1]", "elsewhere.dom", "company.dom", "-s", "bob.old.dom"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        decide(names[i], "192.0.2.1", "", &d);
        ck_assert_msg(d.outcome == WP_ETRN_PASS, "%s: outcome %d", names[i], d.outcome);
        ck_assert_str_eq(d.action, "DUNNO");
        wp_etrn_decision_free(&d);
    }
}
END_TEST

START_TEST(hostile_arguments)
{
    struct wp_etrn_decision d;
    char longname[400];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    const char *bad[] = {"",
                         "@",
                         "domain1.dom;rm -rf /",
                         "domain1.dom extra",
                         "dom\xff.dom",
                         "../../etc/passwd",
                         "domain1.dom%00",
                         "$(reboot)",
                         "<domain1.dom>",
                         "[1.2.3",
                         "a..b",
                         longname};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        decide(bad[i], "192.0.2.1", "cust1", &d);
        ck_assert_msg(d.outcome == WP_ETRN_REFUSE, "argument %zu: outcome %d", i, d.outcome);
        ck_assert_str_eq(d.action, "501 5.5.4 invalid ETRN argument");
        ck_assert_uint_eq(d.ndomains, 0);
        wp_etrn_decision_free(&d);
    }
}
END_TEST

/* ETRN requests are decided by wp_etrn_decide (policyd's ETRN job runs the
 * release); the RCPT decision has nothing to say about them. */
START_TEST(policy_decide_leaves_etrn_alone)
{
    struct wp_policy_request req;
    memset(&req, 0, sizeof(req));
    strcpy(req.protocol_state, "ETRN");
    strcpy(req.etrn_domain, "domain1.dom");
    strcpy(req.client_address, "192.0.2.1");
    char action[600];
    wp_policy_decide(snap, &req, action, sizeof(action));
    ck_assert_str_eq(action, "DUNNO");
}
END_TEST

/* Each bad policyd section and the message (after "file:line: ") it gives. */
START_TEST(config_errors)
{
    static const struct {
        const char *policyd, *want;
    } cases[] = {
        {"policyd: {\n etrn_release = \"everyone\";\n};\n",
         ":11: policyd.etrn_release 'everyone' is not one of"},
        {"policyd: {\n etrn_queues = ( { queue = \"friend.com\"; } );\n};\n",
         ":11: policyd.etrn_queues: queue friend.com is not listed in router.hold_queues"},
        {"policyd: {\n etrn_queues = ( { queue = \"open.dom\"; release = \"accounts\"; } );\n};\n",
         "queue open.dom releases to accounts but lists none"},
        {"policyd: {\n etrn_queues = ( { queue = \"open.dom\"; release = \"anyone\"; accounts = [ \"x\" ]; } "
         ");\n};\n",
         "accounts are only used with release = \"accounts\""},
        {"policyd: {\n etrn_queues = ( { queue = \"open.dom\"; release = \"anyone\"; },\n"
         "  { queue = \"OPEN.dom\"; release = \"trusted\"; } );\n};\n",
         ":12: policyd.etrn_queues: queue open.dom is listed twice"},
        {"policyd: {\n etrn_release = \"accounts\";\n"
         " etrn_queues = ( { queue = \"open.dom\"; accounts = [ \"x\" ]; } );\n};\n",
         ":11: policyd.etrn_release is \"accounts\" but held queue"},
        {"policyd: {\n etrn_timeout = 0;\n};\n", ":11: policyd.etrn_timeout = 0 is below the minimum 1"},
        {"policyd: {\n etrn_socket = "
         "\"/run/waypost/"
         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
         "xxxxxxxxxxx\";\n};\n",
         ":11: policyd.etrn_socket '/run/waypost/x"},
        {"policyd: {\n etrn_queues = ( { release = \"anyone\"; } );\n};\n",
         "missing required setting 'queue'"},
        {"policyd: {\n etrn_queues = ( { queue = \"open.dom\"; accounts = [ \"a b\" ]; } );\n};\n",
         "'a b' is not a login name"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct wp_errors err;
        wp_errors_init(&err);
        struct wp_snapshot *s = load_with(cases[i].policyd, &err);
        ck_assert_msg(s == NULL, "case %zu loaded", i);
        ck_assert_msg(err.count >= 1, "case %zu: no error", i);
        ck_assert_msg(strstr(err.msgs[0], cases[i].want) != NULL && strstr(err.msgs[0], "w.conf:") != NULL,
                      "case %zu: got '%s', wanted '%s'", i, err.msgs[0], cases[i].want);
        wp_errors_free(&err);
    }
}
END_TEST

START_TEST(defaults)
{
    struct wp_snapshot *s = load_with("", NULL);
    ck_assert(s != NULL);
    ck_assert_int_eq(wp_policyd_conf(s)->etrn.release, WP_ETRN_TRUSTED);
    ck_assert_str_eq(wp_policyd_conf(s)->etrn.socket,
                     "/run/waypost/odmrd-control.sock"); /* = odmr.control_socket */
    ck_assert_int_eq(wp_policyd_conf(s)->etrn.timeout, 10);
    ck_assert_str_eq(s->postfix.config_directory, "/etc/postfix");
    wp_snapshot_unref(s);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("etrn");
    TCase *tc = tcase_create("etrn");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, merged_domains);
    tcase_add_test(tc, release_by_account);
    tcase_add_test(tc, release_trusted_and_anyone);
    tcase_add_test(tc, merged_domain_needs_the_queue_right);
    tcase_add_test(tc, not_held_passes);
    tcase_add_test(tc, hostile_arguments);
    tcase_add_test(tc, policy_decide_leaves_etrn_alone);
    tcase_add_test(tc, config_errors);
    tcase_add_test(tc, defaults);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(suite)
