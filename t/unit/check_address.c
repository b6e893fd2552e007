/* SPDX-License-Identifier: MIT */
/* Unit tests: RFC 5321 address parsing and CommuniGate path folding. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "lib/address.h"
#include "unit.h"

static void ok(const char *in, const char *local, const char *domain, bool routed)
{
    struct wp_address a;
    const char *why = NULL;
    ck_assert_msg(wp_address_parse(in, strlen(in), 0, &a, &why), "%s: %s", in, why);
    ck_assert_str_eq(a.local, local);
    ck_assert_str_eq(a.domain, domain);
    ck_assert_msg(a.routed == routed, "%s: routed=%d", in, a.routed);
}

static void bad(const char *in, size_t len, unsigned flags, const char *expect_why)
{
    struct wp_address a;
    const char *why = NULL;
    ck_assert_msg(!wp_address_parse(in, len, flags, &a, &why), "accepted: %s", in);
    ck_assert_msg(why && strstr(why, expect_why), "%s: got '%s', wanted '%s'", in, why, expect_why);
}

START_TEST(plain_forms)
{
    ok("alice@company.dom", "alice", "company.dom", false);
    ok("<alice@company.dom>", "alice", "company.dom", false);
    ok("  <Alice@Company.DOM.>  ", "Alice", "company.dom", false);
    ok("postmaster", "postmaster", "", false);
    ok("first.last+tag@d.example", "first.last+tag", "d.example", false);
    ok("u@[11.22.33.44]", "u", "[11.22.33.44]", false);
    ok("u@[IPv6:2001:db8::1]", "u", "[ipv6:2001:db8::1]", false);
    ok("\"john doe\"@d.example", "john doe", "d.example", false);
    ok("\"a\\\"b\"@d.example", "a\"b", "d.example", false);
}
END_TEST

START_TEST(path_forms)
{
    ok("a%b.com@company.dom", "a%b.com", "company.dom", true);
    ok("\"u@d\"@us", "u%d", "us", true);
    ok("u@d@us", "u%d", "us", true);
    ok("@hop:user@dom", "user%dom", "hop", true);
    ok("<@h1,@h2:u@d>", "u%d%h2", "h1", true);
    ok("d!u@us", "u%d", "us", true);
    ok("zzzz!yyyy!xxxx", "xxxx%yyyy", "zzzz", true);
    ok("a!b!c@us", "c%b%a", "us", true);
}
END_TEST

START_TEST(errors)
{
    bad("", 0, 0, "empty address");
    bad("<>", 2, 0, "empty address");
    bad("<a@b", 4, 0, "unbalanced");
    bad("a\0b@c", 5, 0, "NUL");
    bad("@d", 2, 0, "source route");
    bad("@h1:@d", 6, 0, "empty local part");
    bad("a b@c", 5, 0, "invalid character");
    bad("u@", 2, 0, "empty domain");
    bad("u@d..com", 8, 0, "invalid domain");
    bad("u@[1.2.3]", 9, 0, "invalid domain");
    bad("u@host:25", 9, 0, "invalid domain");
    bad("\"unterminated@d", 15, 0, "unterminated");
    bad("\"a\"x@d", 6, 0, "after quoted");
    bad("!u@d", 4, 0, "malformed");
    char big[WP_ADDR_MAX + 10];
    memset(big, 'a', sizeof(big));
    bad(big, sizeof(big), 0, "too long");
    char biglocal[WP_LOCAL_MAX + 20];
    memset(biglocal, 'b', sizeof(biglocal));
    memcpy(biglocal + sizeof(biglocal) - 4, "@d.c", 4);
    bad(biglocal, sizeof(biglocal), 0, "local part too long");
}
END_TEST

START_TEST(hostport)
{
    struct wp_address a;
    const char *why;
    ck_assert(wp_address_parse("x%d@host:26.via", 15, WP_ADDR_HOSTPORT, &a, &why));
    ck_assert_str_eq(a.domain, "host:26.via");
    ck_assert(wp_address_parse("x@[1.2.3.4]:26", 14, WP_ADDR_HOSTPORT, &a, &why));
    ck_assert(!wp_address_parse("x@[1.2.3.4]:x", 13, WP_ADDR_HOSTPORT, &a, &why));
    ck_assert(!wp_address_parse("x@:25", 5, WP_ADDR_HOSTPORT, &a, &why));
}
END_TEST

START_TEST(ip_literals)
{
    char ip[64];
    ck_assert(wp_domain_ip_literal("[127.0.0.1]", ip, sizeof(ip)));
    ck_assert_str_eq(ip, "127.0.0.1");
    ck_assert(wp_domain_ip_literal("10.1.2.3", ip, sizeof(ip)));
    ck_assert(wp_domain_ip_literal("[IPv6:::1]", ip, sizeof(ip)));
    ck_assert_str_eq(ip, "::1");
    ck_assert(!wp_domain_ip_literal("[1.2.3.4", ip, sizeof(ip)));
    ck_assert(!wp_domain_ip_literal("example.com", ip, sizeof(ip)));
}
END_TEST

static void formats_as(const char *local, const char *domain, const char *want)
{
    char out[128];
    ck_assert_msg(wp_address_format(local, domain, out, sizeof(out)), "%s@%s does not fit", local, domain);
    ck_assert_str_eq(out, want);
}

START_TEST(format)
{
    formats_as("alice", "d.example", "alice@d.example");
    formats_as("john doe", "d.example", "\"john doe\"@d.example");
    formats_as("a\"b", "d", "\"a\\\"b\"@d");
    formats_as(".x", "d", "\".x\"@d");
    formats_as("a..b", "d", "\"a..b\"@d");
    formats_as("x.", "d", "\"x.\"@d");
    formats_as("a.b.c", "d", "a.b.c@d");
    formats_as("u%h@x", "", "\"u%h@x\"");
    char out[4];
    ck_assert(!wp_address_format("abcdef", "d", out, sizeof(out)));
}
END_TEST

/* The parser lower-cases, drops one trailing dot and checks the domain in
 * one pass for plain names: it must judge every domain as
 * wp_domain_valid() judges the folded text. */
START_TEST(domain_check_like_wp_domain_valid)
{
    static const char *const domains[] = {
        "example.com", "EXAMPLE.Com", "a",          "a.",           "a..",        "a..b",
        ".a",          "..",          ".",          "a.b.",         "a-b_c.d9",   "a b",
        "a!b",         "a%b",         "[1.2.3.4]",  "[1.2.3.4]:26", "host:26",    "host:26.via",
        "host:0",      "host:",       "[IPv6:::1]", "[1.2.3.4",     "x.\xc3\xa9", "UPPER.CASE.",
        "-a.b",        "a-.b",        "1.2.3.4",    "a:b:c",
    };
    for (size_t i = 0; i < sizeof(domains) / sizeof(domains[0]); i++) {
        for (unsigned hp = 0; hp < 2; hp++) {
            char in[300], folded[300];
            snprintf(in, sizeof(in), "u@%s", domains[i]);
            snprintf(folded, sizeof(folded), "%s", domains[i]);
            for (char *c = folded; *c; c++)
                if (*c >= 'A' && *c <= 'Z')
                    *c += 32;
            size_t n = strlen(folded);
            if (n && folded[n - 1] == '.')
                folded[n - 1] = '\0';
            struct wp_address a;
            const char *why;
            bool parsed = wp_address_parse(in, strlen(in), hp ? WP_ADDR_HOSTPORT : 0, &a, &why);
            bool valid = wp_domain_valid(folded, hp);
            ck_assert_msg(parsed == valid, "%s (hp %u): parse %d, wp_domain_valid %d", in, hp, parsed, valid);
            if (parsed)
                ck_assert_str_eq(a.domain, folded);
        }
    }
}
END_TEST

/* Every byte, alone inside a local part and inside a domain: accepted
 * exactly when RFC 5321 (as Waypost widens it for UTF-8) allows it. */
START_TEST(every_byte)
{
    for (int c = 1; c < 256; c++) {
        bool local_ok = c > 0x20 && c != 0x7f && !strchr("<>()[],;:\\\"@", c);
        bool domain_ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                         c == '-' || c == '.' || c == '_';
        char in[16];
        struct wp_address a;
        const char *why;
        snprintf(in, sizeof(in), "a%cb@d.example", c);
        if (c != '@' && c != '!' && c != '%')
            ck_assert_msg(wp_address_parse(in, strlen(in), 0, &a, &why) == local_ok, "local byte 0x%02x", c);
        snprintf(in, sizeof(in), "u@a%cb", c);
        if (c != '@') /* the last '@' starts the domain */
            ck_assert_msg(wp_address_parse(in, strlen(in), 0, &a, &why) == domain_ok, "domain byte 0x%02x",
                          c);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("address");
    TCase *tc = tcase_create("address");
    tcase_add_test(tc, plain_forms);
    tcase_add_test(tc, path_forms);
    tcase_add_test(tc, errors);
    tcase_add_test(tc, hostport);
    tcase_add_test(tc, ip_literals);
    tcase_add_test(tc, format);
    tcase_add_test(tc, domain_check_like_wp_domain_valid);
    tcase_add_test(tc, every_byte);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(suite)
