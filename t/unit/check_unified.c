/* SPDX-License-Identifier: MIT */
/* Unit tests: Unified Domain-Wide Accounts (router.unified_accounts): the
 * configuration and its errors, resolution, the maps and the policy answer
 * Postfix gets, and the header fields the milter writes. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "policy/maps.h"
#include "state/snapshot.h"
#include "milter/unified.h"
#include "unit.h"
#include "lib/util.h"
#include "cli/sections.h"

static char errors[8192];

/* Load a config text (and a Router table) from a temporary directory; the
 * error messages, joined and without the directory, land in errors. */
static struct wp_snapshot *load(const char *conf, const char *table)
{
    char dir[] = "/tmp/wp-unified-XXXXXX";
    ck_assert(mkdtemp(dir));
    char path[256], tpath[256];
    snprintf(path, sizeof(path), "%s/w.conf", dir);
    snprintf(tpath, sizeof(tpath), "%s/router.table", dir);
    FILE *f = fopen(path, "w");
    fputs(conf, f);
    fclose(f);
    f = fopen(tpath, "w");
    fputs(table ? table : "", f);
    fclose(f);
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_snapshot *s = wp_snapshot_load(path, wp_sections_all, &err);
    errors[0] = '\0';
    for (size_t i = 0; i < err.count; i++) {
        const char *m = strstr(err.msgs[i], "w.conf") ? strstr(err.msgs[i], "w.conf") : err.msgs[i];
        strncat(errors, m, sizeof(errors) - strlen(errors) - 2);
        strcat(errors, "\n");
    }
    ck_assert((s == NULL) == (err.count > 0));
    wp_errors_free(&err);
    unlink(path);
    unlink(tpath);
    rmdir(dir);
    return s;
}

#define HEAD                                                                                                 \
    "router: {\n main_domain = \"company.dom\";\n table = \"router.table\";\n"                               \
    " domains = ( { name = \"company.dom\"; aliases = [ \"mail.company.dom\" ];\n"                           \
    "   accounts = \"list:alice,client-com,other-com\"; } );\n"

/* Two unified domains, one with its own header name; a record in front of
 * the domain and one that sends an outside address into it. */
static struct wp_snapshot *sample(void)
{
    struct wp_snapshot *s =
        load(HEAD " unified_accounts = (\n"
                  "  { domain = \"Client.COM\"; account = \"client-com@company.dom\"; },\n"
                  "  { domain = \"other.com\"; account = \"other-com@mail.company.dom\"; header = "
                  "\"X-Envelope-To\"; } );\n"
                  "};\n",
             "<postmaster@client.com> = alice@company.dom\n<sales@partner.dom> = sales@client.com\n");
    ck_assert_msg(s != NULL, "%s", errors);
    return s;
}

START_TEST(config_loads)
{
    struct wp_snapshot *s = sample();
    const struct wp_router *r = s->router;
    ck_assert_uint_eq(r->nunified, 2);
    ck_assert_str_eq(r->unified[0].domain, "client.com");
    ck_assert_str_eq(r->unified[0].header, WP_DEFAULT_UNIFIED_HEADER);
    ck_assert_str_eq(r->unified[0].header, "X-Real-To");
    ck_assert_str_eq(r->unified[1].header, "X-Envelope-To");
    ck_assert_ptr_eq(wp_router_unified(r, "client.com"), &r->unified[0]);
    ck_assert_ptr_eq(wp_router_unified(r, "CLIENT.com"), &r->unified[0]);
    ck_assert_ptr_null(wp_router_unified(r, "sub.client.com"));
    ck_assert_ptr_null(wp_router_unified(r, "company.dom"));
    ck_assert(wp_router_routes_domain(r, "client.com"));
    ck_assert(wp_router_routes_domain(r, "Other.Com."));
    wp_snapshot_unref(s);
    /* none configured */
    s = load("router: { main_domain = \"company.dom\"; };\n", NULL);
    ck_assert(s);
    ck_assert_uint_eq(s->router->nunified, 0);
    ck_assert_ptr_null(wp_router_unified(s->router, "client.com"));
    wp_snapshot_unref(s);
}
END_TEST

static void expect_error(const char *unified, const char *want)
{
    char conf[2048];
    snprintf(conf, sizeof(conf), HEAD " unified_accounts = (\n%s );\n};\n", unified);
    struct wp_snapshot *s = load(conf, NULL);
    ck_assert_msg(s == NULL, "loaded: %s", unified);
    ck_assert_msg(strstr(errors, want) != NULL, "wanted '%s', got '%s'", want, errors);
}

START_TEST(config_errors)
{
    expect_error("  { domain = \"bad domain\"; account = \"client-com@company.dom\"; }",
                 "w.conf:7: unified account: domain 'bad domain' is not a domain name");
    expect_error("  { domain = \"[1.2.3.4]\"; account = \"client-com@company.dom\"; }",
                 "w.conf:7: unified account: domain '[1.2.3.4]' is not a domain name");
    expect_error("  { domain = \"company.dom\"; account = \"client-com@company.dom\"; }",
                 "w.conf:7: unified account: company.dom is a local domain or alias; it cannot be unified");
    expect_error("  { domain = \"Mail.Company.DOM\"; account = \"client-com@company.dom\"; }",
                 "w.conf:7: unified account: mail.company.dom is a local domain or alias");
    expect_error("  { domain = \"client.com\"; account = \"client-com@company.dom\"; },\n"
                 "  { domain = \"CLIENT.com\"; account = \"alice@company.dom\"; }",
                 "w.conf:8: unified account: domain client.com is listed twice");
    expect_error(
        "  { domain = \"client.com\"; account = \"client-com@company.dom\";\n    header = \"X Real To\"; }",
        "w.conf:8: unified account for client.com: header 'X Real To' is not a header field name");
    expect_error(
        "  { domain = \"client.com\"; account = \"client-com@company.dom\"; header = \"X-Real-To:\"; }",
        "w.conf:7: unified account for client.com: header 'X-Real-To:' is not a header field name");
    expect_error("  { domain = \"client.com\"; account = \"client-com@company.dom\"; header = \"\"; }",
                 "header '' is not a header field name");
    expect_error(
        "  { domain = \"client.com\"; account = \"client-com\"; }",
        "w.conf:7: unified account for client.com: account 'client-com' is not an address (local@domain)");
    expect_error("  { domain = \"client.com\"; account = \"a%b.com@company.dom\"; }",
                 "account 'a%b.com@company.dom' is not an address");
    expect_error(
        "  { domain = \"client.com\"; account = \"nobody@company.dom\"; }",
        "w.conf:7: unified account nobody@company.dom for client.com does not route to a local account "
        "(UNKNOWN 5.1.1 User unknown)");
    expect_error(
        "  { domain = \"client.com\"; account = \"client-com@example.org\"; }",
        "w.conf:7: unified account client-com@example.org for client.com does not route to a local account "
        "(RELAY)");
    expect_error("  { domain = \"client.com\"; account = \"client-com@company.dom\"; },\n"
                 "  { domain = \"other.com\"; account = \"x@client.com\"; }",
                 "w.conf:8: unified account x@client.com for other.com does not route to a local account "
                 "(unified domain client.com)");
    expect_error("  { domain = \"client.com\"; }", "w.conf:7: missing required setting 'account'");
    expect_error("  { account = \"client-com@company.dom\"; }",
                 "w.conf:7: missing required setting 'domain'");
    expect_error("  { domain = \"client.com\"; account = \"client-com@company.dom\"; hdr = \"X\"; }",
                 "w.conf:7: unknown setting 'hdr'");
}
END_TEST

START_TEST(resolution)
{
    struct wp_snapshot *s = sample();
    const struct wp_router *r = s->router;
    struct wp_trace *trace = wp_malloc(sizeof(*trace));
    struct wp_route rt;
    struct wp_resolve_opts untrusted = {false, false};
    wp_resolve(r, "Bob@Client.COM", &untrusted, &rt, trace);
    ck_assert_str_eq(wp_route_kind_name(rt.kind), "LOCAL");
    ck_assert_str_eq(rt.address, "client-com@company.dom");
    ck_assert_str_eq(rt.account, "client-com");
    ck_assert_str_eq(rt.domain, "company.dom");
    ck_assert_ptr_eq(rt.unified, &r->unified[0]);
    ck_assert_str_eq(rt.unified_rcpt, "Bob@client.com");
    ck_assert_str_eq(wp_relay_class_name(rt.relay_class), "Relay");
    ck_assert(wp_route_relay_permitted(&rt, false));
    ck_assert_int_eq(trace->nsteps, 3);
    ck_assert_msg(strstr(trace->steps[1].text,
                         "unified domain client.com: every address goes to the account "
                         "client-com@company.dom, the milter adds X-Real-To: Bob@client.com"),
                  "%s", trace->steps[1].text);
    ck_assert(strstr(trace->steps[1].text, "anyone may send to it (Relay)"));
    ck_assert(strstr(trace->steps[2].text, "route: LOCAL account client-com in company.dom"));

    /* the account through a domain alias */
    wp_resolve(r, "zoe@other.com", &untrusted, &rt, trace);
    ck_assert_int_eq(rt.kind, WP_ROUTE_LOCAL);
    ck_assert_str_eq(rt.address, "other-com@company.dom");
    ck_assert_str_eq(rt.unified->header, "X-Envelope-To");
    /* a Router record is looked up before the unified domain */
    wp_resolve(r, "postmaster@client.com", &untrusted, &rt, trace);
    ck_assert_int_eq(rt.kind, WP_ROUTE_LOCAL);
    ck_assert_str_eq(rt.account, "alice");
    ck_assert_ptr_null(rt.unified);
    /* a record sending an address into the domain: the header names it there */
    wp_resolve(r, "sales@partner.dom", &untrusted, &rt, trace);
    ck_assert_str_eq(rt.account, "client-com");
    ck_assert_str_eq(rt.unified_rcpt, "sales@client.com");
    /* a subdomain is not the domain */
    wp_resolve(r, "x@sub.client.com", &untrusted, &rt, trace);
    ck_assert_int_eq(rt.kind, WP_ROUTE_RELAY);
    ck_assert_ptr_null(rt.unified);
    ck_assert(!wp_route_relay_permitted(&rt, false));
    /* routing in the local part does not make it leave: it stays in the account */
    wp_resolve(r, "a%evil.example@client.com", &untrusted, &rt, trace);
    ck_assert_int_eq(rt.kind, WP_ROUTE_LOCAL);
    ck_assert_str_eq(rt.account, "client-com");
    ck_assert(wp_route_relay_permitted(&rt, false));
    /* a login name in the domain is not the account's login (mail only) */
    struct wp_resolve_opts login = {false, true};
    wp_resolve(r, "bob@client.com", &login, &rt, trace);
    ck_assert_int_ne(rt.kind, WP_ROUTE_LOCAL);
    ck_assert_ptr_null(rt.unified);
    char v[256];
    ck_assert_int_eq(wp_map_lookup(s, WP_MAP_ACCOUNT, "bob@client.com", v, sizeof(v)), WP_ANS_NOTFOUND);
    ck_assert_int_eq(wp_map_lookup(s, WP_MAP_ACCOUNT, "client-com@company.dom", v, sizeof(v)), WP_ANS_FOUND);
    /* the account itself is an ordinary local account */
    wp_resolve(r, "client-com@company.dom", &untrusted, &rt, trace);
    ck_assert_int_eq(rt.kind, WP_ROUTE_LOCAL);
    ck_assert_ptr_null(rt.unified);
    free(trace);
    wp_snapshot_unref(s);
}
END_TEST

START_TEST(maps_and_policy)
{
    struct wp_snapshot *s = sample();
    char v[512];
    ck_assert_int_eq(wp_map_lookup(s, WP_MAP_RELAY, "client.com", v, sizeof(v)), WP_ANS_FOUND);
    ck_assert_int_eq(wp_map_lookup(s, WP_MAP_RELAY, "sub.client.com", v, sizeof(v)), WP_ANS_NOTFOUND);
    ck_assert_int_eq(wp_map_lookup(s, WP_MAP_VIRTUAL, "client.com", v, sizeof(v)), WP_ANS_NOTFOUND);
    ck_assert_int_eq(wp_map_lookup(s, WP_MAP_VIRTUAL, "Bob@Client.COM", v, sizeof(v)), WP_ANS_FOUND);
    ck_assert_str_eq(v, "client-com@company.dom");
    ck_assert_int_eq(wp_map_lookup(s, WP_MAP_VIRTUAL, "client-com@company.dom", v, sizeof(v)),
                     WP_ANS_NOTFOUND);
    ck_assert_int_eq(wp_map_lookup(s, WP_MAP_RECIPIENT, "anyone@client.com", v, sizeof(v)), WP_ANS_FOUND);
    ck_assert_int_eq(wp_map_lookup(s, WP_MAP_TRANSPORT, "anyone@client.com", v, sizeof(v)), WP_ANS_FOUND);
    ck_assert_str_eq(v, "lmtp:unix:private/dovecot-lmtp");
    struct wp_policy_request req;
    memset(&req, 0, sizeof(req));
    strcpy(req.request, "smtpd_access_policy");
    strcpy(req.protocol_state, "RCPT");
    strcpy(req.client_address, "192.0.2.10");
    strcpy(req.recipient, "anyone@client.com");
    char action[512];
    wp_policy_decide(s, &req, action, sizeof(action));
    ck_assert_str_eq(action, "DUNNO");
    strcpy(req.recipient, "x@sub.client.com");
    wp_policy_decide(s, &req, action, sizeof(action));
    ck_assert_str_eq(action, "554 " WP_TEXT_RELAY_DENIED);
    wp_snapshot_unref(s);
}
END_TEST

START_TEST(header_fields)
{
    struct wp_snapshot *s = sample();
    struct wp_view v;
    wp_view_init(&v, NULL, s->router);
    struct wp_unified_fields uf;
    const char *three[] = {"ann@client.com", "Bob@Client.COM", "alice@company.dom", "ANN@client.com",
                           "carol@client.com"};
    wp_unified_fields(&v, three, 5, &uf);
    ck_assert_uint_eq(uf.n, 1);
    ck_assert_str_eq(uf.fields[0].name, "X-Real-To");
    ck_assert_str_eq(uf.fields[0].value, "<ann@client.com>,\n\t<Bob@client.com>,\n\t<carol@client.com>");
    ck_assert_uint_eq(uf.fields[0].nrcpts, 3);
    ck_assert_uint_eq(uf.fields[0].len, strlen(uf.fields[0].value));
    wp_unified_fields_free(&uf);

    const char *mixed[] = {"zoe@other.com", "sales@partner.dom", "postmaster@client.com", "x@example.org"};
    wp_unified_fields(&v, mixed, 4, &uf);
    ck_assert_uint_eq(uf.n, 2);
    ck_assert_str_eq(uf.fields[0].name, "X-Envelope-To");
    ck_assert_str_eq(uf.fields[0].value, "<zoe@other.com>");
    ck_assert_str_eq(uf.fields[1].name, "X-Real-To");
    ck_assert_str_eq(uf.fields[1].value, "<sales@client.com>");
    wp_unified_fields_free(&uf);

    const char *none[] = {"alice@company.dom", "x@example.org", ""};
    wp_unified_fields(&v, none, 3, &uf);
    ck_assert_uint_eq(uf.n, 0);
    wp_unified_fields_free(&uf);

    /* many recipients: one field, every one listed once, no overflow */
    enum { N = 2000 };
    char **many = wp_calloc(N, sizeof(char *));
    for (int i = 0; i < N; i++)
        many[i] = wp_asprintf("user%d@client.com", i % 1500);
    wp_unified_fields(&v, (const char *const *)many, N, &uf);
    ck_assert_uint_eq(uf.n, 1);
    ck_assert_uint_eq(uf.fields[0].nrcpts, 1500);
    ck_assert(strstr(uf.fields[0].value, "<user1499@client.com>"));
    ck_assert_uint_eq(uf.fields[0].len, strlen(uf.fields[0].value));
    wp_unified_fields_free(&uf);
    for (int i = 0; i < N; i++)
        free(many[i]);
    free(many);
    wp_view_free(&v);
    wp_snapshot_unref(s);
}
END_TEST

START_TEST(one_recipient_per_account)
{
    struct wp_snapshot *s = sample();
    struct wp_view v;
    wp_view_init(&v, NULL, s->router);
    const char *out[8];
    /* ann stays for client-com; Bob, sales (routed into client.com) go;
     * ann again, spelled alike, is not listed (it would take ann along);
     * ANN is another spelling and goes; zoe stays for other-com; the local
     * user and the outside address are not unified. */
    const char *rcpts[] = {"ann@client.com", "alice@company.dom", "Bob@Client.COM", "zoe@other.com",
                           "ann@client.com", "sales@partner.dom", "x@example.org",  "ANN@client.com"};
    size_t n = wp_unified_extra_rcpts(&v, rcpts, 8, out);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(out[0], "Bob@Client.COM");
    ck_assert_str_eq(out[1], "sales@partner.dom");
    ck_assert_str_eq(out[2], "ANN@client.com");
    const char *single[] = {"bob@client.com", "zoe@other.com"};
    ck_assert_uint_eq(wp_unified_extra_rcpts(&v, single, 2, out), 0);
    wp_view_free(&v);
    wp_snapshot_unref(s);
}
END_TEST

START_TEST(header_name_syntax)
{
    ck_assert(wp_header_name_valid("X-Real-To", 9));
    ck_assert(wp_header_name_valid("Delivered-To", 12));
    ck_assert(!wp_header_name_valid("", 0));
    ck_assert(!wp_header_name_valid("X Real", 6));
    ck_assert(!wp_header_name_valid("X:Real", 6));
    ck_assert(!wp_header_name_valid("X-\xc3\xa9", 4));
    ck_assert(!wp_header_name_valid("X\tY", 3));
    char longname[WP_HEADER_NAME_MAX + 2];
    memset(longname, 'X', sizeof(longname));
    ck_assert(wp_header_name_valid(longname, WP_HEADER_NAME_MAX));
    ck_assert(!wp_header_name_valid(longname, WP_HEADER_NAME_MAX + 1));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("unified");
    TCase *tc = tcase_create("unified");
    tcase_add_test(tc, config_loads);
    tcase_add_test(tc, config_errors);
    tcase_add_test(tc, resolution);
    tcase_add_test(tc, maps_and_policy);
    tcase_add_test(tc, header_fields);
    tcase_add_test(tc, one_recipient_per_account);
    tcase_add_test(tc, header_name_syntax);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(suite)
