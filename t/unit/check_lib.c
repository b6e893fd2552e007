/* SPDX-License-Identifier: MIT */
/* Unit tests: endpoints, networks, config schema errors, JSON strings. */
#include "config.h"

#include <arpa/inet.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/cidr.h"
#include "lib/endpoint.h"
#include "lib/json.h"
#include "state/snapshot.h"
#include "unit.h"
#include "lib/util.h"
#include "cli/sections.h"

START_TEST(endpoints)
{
    struct wp_endpoint ep;
    const char *why;
    ck_assert(wp_endpoint_parse("unix:/run/waypost/policy.sock", &ep, &why));
    ck_assert_int_eq(ep.family, WP_EP_UNIX);
    ck_assert_str_eq(ep.path, "/run/waypost/policy.sock");
    ck_assert(wp_endpoint_parse("inet:127.0.0.1:10025", &ep, &why));
    ck_assert_int_eq(ep.family, WP_EP_INET);
    ck_assert_str_eq(ep.host, "127.0.0.1");
    ck_assert_int_eq(ep.port, 10025);
    ck_assert(wp_endpoint_parse("inet:localhost:1", &ep, &why));
    ck_assert(wp_endpoint_parse("inet6:[::1]:65535", &ep, &why));
    ck_assert_int_eq(ep.family, WP_EP_INET6);
    ck_assert_str_eq(ep.host, "::1");
    static const char *const bad[] = {
        "unix:", "tcp:1.2.3.4:5", "inet:1.2.3.4", "inet:1.2.3.4:0", "inet:1.2.3.4:65536",
        "inet:1.2.3.4:12a", "inet::25", "inet:::1:25", "inet6:::1:25", "inet6:[::1]25",
        "inet6:[nonsense]:25", "inet:bad host:25", "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!wp_endpoint_parse(bad[i], &ep, &why), "accepted '%s'", bad[i]);
    char longpath[200] = "unix:";
    memset(longpath + 5, 'x', 150);
    longpath[155] = '\0';
    ck_assert(!wp_endpoint_parse(longpath, &ep, &why));
}
END_TEST

START_TEST(networks)
{
    struct wp_nets nets = { NULL, 0 };
    struct wp_net n;
    ck_assert(wp_net_parse("127.0.0.0/8", &n));
    wp_nets_add(&nets, &n);
    ck_assert(wp_net_parse("2001:db8::/32", &n));
    wp_nets_add(&nets, &n);
    ck_assert(wp_net_parse("192.0.2.7", &n));
    wp_nets_add(&nets, &n);
    ck_assert(wp_nets_contain(&nets, "127.1.2.3"));
    ck_assert(wp_nets_contain(&nets, "::ffff:127.0.0.1"));
    ck_assert(wp_nets_contain(&nets, "2001:db8:1::5"));
    ck_assert(wp_nets_contain(&nets, "192.0.2.7"));
    ck_assert(!wp_nets_contain(&nets, "192.0.2.8"));
    ck_assert(!wp_nets_contain(&nets, "128.0.0.1"));
    ck_assert(!wp_nets_contain(&nets, "garbage"));
    ck_assert(!wp_net_parse("10.0.0.0/33", &n));
    ck_assert(!wp_net_parse("10.0.0.0/", &n));
    ck_assert(!wp_net_parse("::1/129", &n));
    ck_assert(!wp_net_parse("host.example", &n));
    wp_nets_free(&nets);
}
END_TEST

/* wp_nets_contain reads IPv4 addresses itself: it must agree with
 * inet_pton(AF_INET) on every text, odd ones included. */
START_TEST(networks_ipv4_like_inet_pton)
{
    struct wp_nets all = {NULL, 0};
    struct wp_net n;
    ck_assert(wp_net_parse("0.0.0.0/0", &n));
    wp_nets_add(&all, &n);
    static const char *const texts[] = {
        "0.0.0.0",  "255.255.255.255", "1.2.3.4",    "198.51.100.77",   "256.1.1.1",  "1.2.3.256",
        "01.2.3.4", "1.02.3.4",        "1.2.3.04",   "0.0.0.00",        "1.2.3",      "1.2.3.4.5",
        "1..2.3",   ".1.2.3.4",        "1.2.3.4.",   "1.2.3.4 ",        " 1.2.3.4",   "1.2.3.-4",
        "1.2.3.4x", "1234.1.1.1",      "1.2.3.0000", "999.999.999.999", "",           ".",
        "1",        "a.b.c.d",         "1.2.3.4/8",  "0x1.2.3.4",       "10.0.0.1\n",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        unsigned char bin[4];
        bool want = inet_pton(AF_INET, texts[i], bin) == 1;
        ck_assert_msg(wp_nets_contain(&all, texts[i]) == want, "'%s': inet_pton says %d", texts[i], want);
    }
    wp_nets_free(&all);
}
END_TEST

/* Load a config text; return the joined error messages ("" if it loaded). */
static char *load_text(const char *text)
{
    static char joined[8192];
    char dir[] = "/tmp/wp-conf-XXXXXX";
    ck_assert(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/w.conf", dir);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_snapshot *s = wp_snapshot_load(path, wp_sections_all, &err);
    joined[0] = '\0';
    for (size_t i = 0; i < err.count; i++) {
        /* drop the temporary directory from the messages */
        const char *m = strstr(err.msgs[i], "w.conf") ? strstr(err.msgs[i], "w.conf") : err.msgs[i];
        strncat(joined, m, sizeof(joined) - strlen(joined) - 2);
        strcat(joined, "\n");
    }
    ck_assert((s == NULL) == (err.count > 0));
    wp_snapshot_unref(s);
    wp_errors_free(&err);
    unlink(path);
    rmdir(dir);
    return joined;
}

START_TEST(config_errors)
{
    ck_assert_str_eq(load_text("router: { main_domain = \"company.dom\"; };\n"), "");
    ck_assert_str_eq(load_text("router: {\n main_domain = \"c.dom\";\n bogus = 1;\n};\n"),
                     "w.conf:3: unknown setting 'bogus' in router\n");
    ck_assert_str_eq(load_text("router: {\n main_domain = 5;\n};\n"),
                     "w.conf:2: 'main_domain' must be a string\n");
    ck_assert_str_eq(load_text("log = { level = \"info\"; };\n"), "w.conf: missing required setting 'router'\n");
    ck_assert_str_eq(load_text("router: {\n main_domain = \"c.dom\"\n"),
                     "w.conf:3: syntax error\n");
    ck_assert_str_eq(load_text("router: {\n main_domain = \"c.dom\";\n domains = ( { name = \"d.dom\";\n"
                               "  mail_to_unknown = \"Bounced\"; } );\n};\n"),
                     "w.conf:4: mail_to_unknown: expected \"Rejected\", \"Discarded\", \"Accepted and Bounced\" or \"Rerouted to PATTERN\"\n");
    char *m = load_text("router: {\n main_domain = \"c.dom\";\n domains = ( { name = \"d.dom\";\n"
                        "  accounts = \"passwd-file:missing.passwd\"; } );\n};\n");
    ck_assert_msg(strstr(m, "w.conf:4: accounts file /tmp/") && strstr(m, "missing.passwd: No such file"), "%s", m);
}
END_TEST

START_TEST(config_error_lines)
{
    char *m;
    m = load_text("router: {\n main_domain = \"c.dom\";\n table = \"nope.table\";\n};\n");
    ck_assert_msg(strstr(m, "nope.table: cannot open"), "%s", m);
    m = load_text("router: {\n main_domain = \"c.dom\";\n domains = ( { name = \"d.dom\";\n"
                  "  accounts = \"ldap:x\"; } );\n};\n");
    ck_assert_msg(strstr(m, "w.conf:4: unknown account source 'ldap:x'"), "%s", m);
    m = load_text("router: {\n main_domain = \"c.dom\";\n trusted_networks = [ \"10.0.0.0/40\" ];\n};\n");
    ck_assert_msg(strstr(m, "w.conf:3: trusted_networks: '10.0.0.0/40' is not a network"), "%s", m);
    m = load_text("router: {\n main_domain = \"c.dom\";\n domains = ( { name = \"c.dom\"; },\n { name = \"C.DOM\"; } );\n};\n");
    ck_assert_msg(strstr(m, "w.conf:4: domain c.dom is listed twice"), "%s", m);
    m = load_text("router: {\n main_domain = \"bad domain\";\n};\n");
    ck_assert_msg(strstr(m, "w.conf:2: main_domain 'bad domain' is not a domain name"), "%s", m);
    m = load_text("log = { level = \"loud\"; };\nrouter: { main_domain = \"c.dom\"; };\n");
    ck_assert_msg(strstr(m, "w.conf:1: log.level 'loud'"), "%s", m);
    m = load_text("router: {\n main_domain = \"c.dom\";\n domains = ( { name = \"d.dom\"; aliases = \"x.dom\"; } );\n};\n");
    ck_assert_msg(strstr(m, "w.conf:3: 'aliases' must be a list of strings"), "%s", m);
}
END_TEST

START_TEST(json_strings)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    wp_json_string(f, "a\"b\\c\n\x01\xc3\xa9\xff");
    fclose(f);
    ck_assert_str_eq(buf, "\"a\\\"b\\\\c\\u000a\\u0001\xc3\xa9\\ufffd\"");
    free(buf);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("lib");
    TCase *tc = tcase_create("lib");
    tcase_add_test(tc, endpoints);
    tcase_add_test(tc, networks);
    tcase_add_test(tc, networks_ipv4_like_inet_pton);
    tcase_add_test(tc, config_errors);
    tcase_add_test(tc, config_error_lines);
    tcase_add_test(tc, json_strings);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(suite)
