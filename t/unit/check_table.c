/* SPDX-License-Identifier: MIT */
/* Unit tests: Router table grammar, every parse error, and the index. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/table.h"
#include "unit.h"
#include "lib/util.h"

static struct wp_table *parse(const char *text, struct wp_errors *err)
{
    wp_errors_init(err);
    char *buf = wp_strdup(text);
    return wp_table_parse(buf, strlen(text), "t.table", "company.dom", err);
}

/* The table must be rejected with exactly one error containing `want`. */
static void parse_error(const char *text, const char *want)
{
    struct wp_errors err;
    struct wp_table *t = parse(text, &err);
    ck_assert_msg(t == NULL, "accepted: %s", text);
    ck_assert_msg(err.count >= 1, "no error for %s", text);
    ck_assert_msg(strstr(err.msgs[0], want) != NULL, "'%s': got '%s', wanted '%s'", text, err.msgs[0], want);
    ck_assert_msg(strncmp(err.msgs[0], "t.table:", 8) == 0, "no file:line in '%s'", err.msgs[0]);
    wp_errors_free(&err);
}

static const struct wp_record *look(const struct wp_table *t, const char *local, const char *domain,
                                    bool trusted, bool access, struct wp_capture *caps, size_t *n)
{
    struct wp_lookup_mode m = {access, trusted};
    return wp_table_lookup(t, local, domain, &m, caps, n);
}

START_TEST(every_form)
{
    struct wp_errors err;
    struct wp_table *t = parse("; comment line\n"
                               "   ; indented comment\n"
                               "\n"
                               "<exact@d.com> = target@x.com   ; trailing comment\n"
                               "<local> = other\n"
                               "<*@wild.com> = *@new.com\n"
                               "<list-*@lists.com> = *@x.com\n"
                               "<LoginPage@*.domain.dom> = *@domain.dom\n"
                               "<*@*.both.com> = *%*@hop.via\n"
                               "old.dom = new.dom\n"
                               "*.sub.dom = sub.dom\n"
                               "pre.* = [1.2.3.4]\n"
                               "Relay:<*@friend.com> = *%friend.com@friend.com.via\n"
                               "RelayAll:friend2.com = friend2.com._via\n"
                               "NoRelay:<*@hq> = *@hq.company.dom\n"
                               "Mail:<m@d.com> = m2@d.com\n"
                               "Access:<login> = alice\n"
                               "Signal:<sip@d.com> = x@d.com\n"
                               "relay:<case@d.com> = y@d.com\n"
                               "<n@d.com> = null\n"
                               "<e@d.com> = error\n"
                               "<e2@d.com> = error 5.1.6 Gone; left\n"
                               "<p@d.com> = x%y@host:26.via\n"
                               "<q@d.com> = x@[1.2.3.4]:25\n"
                               "<r@d.com> = x%d.com@host.smtp\r\n"
                               "trailingdot.com. = other.com\n",
                               &err);
    ck_assert_msg(t != NULL, "%s", err.count ? err.msgs[0] : "");
    ck_assert_uint_eq(t->nrecs, 23);
    struct wp_capture c[2];
    size_t n;
    const struct wp_record *r = look(t, "exact", "d.com", false, false, c, &n);
    ck_assert(r && r->line == 4 && strcmp(r->target, "target@x.com") == 0);
    r = look(t, "local", "company.dom", false, false, c, &n);
    ck_assert(r && r->line == 5);
    r = look(t, "john", "wild.com", false, false, c, &n);
    ck_assert(r && r->line == 6 && n == 1 && c[0].len == 4);
    r = look(t, "list-sales", "lists.com", false, false, c, &n);
    ck_assert(r && r->line == 7 && n == 1 && strncmp(c[0].start, "sales", 5) == 0);
    r = look(t, "loginpage", "bob.domain.dom", false, false, c, &n);
    ck_assert(r && r->line == 8 && n == 1 && strncmp(c[0].start, "bob", 3) == 0);
    r = look(t, "u", "a.both.com", false, false, c, &n);
    ck_assert(r && r->line == 9 && n == 2 && c[0].len == 1 && c[1].len == 1);
    r = look(t, "u", "old.dom", false, false, c, &n);
    ck_assert(r && r->line == 10 && r->target_kind == WP_TGT_DOMAIN);
    r = look(t, "u", "x.sub.dom", false, false, c, &n);
    ck_assert(r && r->line == 11);
    r = look(t, "u", "pre.anything", false, false, c, &n);
    ck_assert(r && r->line == 12);
    r = look(t, "u", "friend.com", false, false, c, &n);
    ck_assert(r && r->prefix == WP_PFX_RELAY);
    r = look(t, "u", "friend2.com", false, false, c, &n);
    ck_assert(r && r->prefix == WP_PFX_RELAYALL);
    /* NoRelay: exists only for trusted lookups */
    ck_assert(look(t, "u", "hq", false, false, c, &n) == NULL);
    r = look(t, "u", "hq", true, false, c, &n);
    ck_assert(r && r->prefix == WP_PFX_NORELAY);
    /* Mail: only for mail, Access: only for logins, Signal: never */
    ck_assert(look(t, "m", "d.com", false, false, c, &n) != NULL);
    ck_assert(look(t, "m", "d.com", false, true, c, &n) == NULL);
    ck_assert(look(t, "login", "company.dom", false, false, c, &n) == NULL);
    ck_assert(look(t, "login", "company.dom", false, true, c, &n) != NULL);
    ck_assert(look(t, "sip", "d.com", true, false, c, &n) == NULL);
    r = look(t, "CASE", "D.COM", false, false, c, &n);
    ck_assert(r && r->prefix == WP_PFX_RELAY);
    r = look(t, "n", "d.com", false, false, c, &n);
    ck_assert(r && r->target_kind == WP_TGT_NULL);
    r = look(t, "e", "d.com", false, false, c, &n);
    ck_assert(r && r->target_kind == WP_TGT_ERROR && r->target[0] == '\0');
    r = look(t, "e2", "d.com", false, false, c, &n);
    ck_assert(r && r->target_kind == WP_TGT_ERROR);
    ck_assert_str_eq(r->target, "5.1.6 Gone; left");
    r = look(t, "r", "d.com", false, false, c, &n);
    ck_assert(r && strcmp(r->target, "x%d.com@host.smtp") == 0);
    r = look(t, "u", "trailingdot.com", false, false, c, &n);
    ck_assert(r != NULL);
    ck_assert(look(t, "nobody", "nowhere.com", true, false, c, &n) == NULL);
    wp_table_free(t);
    wp_errors_free(&err);
}
END_TEST

/* A table large enough for the index's filters (maps of 64 keys and more):
 * every record must still be found through them, whatever its kind, and a
 * domain that only Access: or Signal: addresses name is not routed. */
START_TEST(large_table_through_filters)
{
    enum { N = 300 };
    size_t cap = N * 160 + 512, len = 0;
    char *text = wp_malloc(cap);
    for (int i = 0; i < N; i++) {
        len += (size_t)snprintf(text + len, cap - len, "<u%d@d%d.com> = t%d@x.com\n", i, i % 100, i);
        len += (size_t)snprintf(text + len, cap - len, "<*@w%d.com> = *@y.com\n", i);
        len += (size_t)snprintf(text + len, cap - len, "e%d.com = z%d.com\n", i, i);
        len += (size_t)snprintf(text + len, cap - len, "*.s%d.com = s.com\n", i);
    }
    len += (size_t)snprintf(text + len, cap - len,
                            "Access:<login@acc.dom> = alice\nSignal:<sip@sig.dom> = x@y.com\n"
                            "<*@e7.com> = wild@e7.com\n");
    struct wp_errors err;
    struct wp_table *t = parse(text, &err);
    free(text);
    ck_assert_msg(t != NULL, "%s", err.count ? err.msgs[0] : "");
    ck_assert_ptr_nonnull(t->addr_exact.filter);
    ck_assert_ptr_nonnull(t->domains.filter);
    struct wp_capture c[2];
    size_t n;
    char local[32], domain[32];
    for (int i = 0; i < N; i++) {
        snprintf(local, sizeof(local), "U%d", i);
        snprintf(domain, sizeof(domain), "D%d.Com", i % 100);
        const struct wp_record *r = look(t, local, domain, false, false, c, &n);
        ck_assert_msg(r && r->line == (uint32_t)(4 * i + 1), "u%d@d%d.com", i, i % 100);
        /* the record's own text: "u<i>@d<i%100>.com", folded */
        ck_assert(r->local_len == strlen(local) && r->local[0] == 'u' &&
                  strncmp(r->local + 1, local + 1, r->local_len - 1) == 0 && r->local[r->local_len] == '@');
        snprintf(domain, sizeof(domain), "w%d.com", i);
        r = look(t, "anyone", domain, false, false, c, &n);
        ck_assert_msg(r && r->line == (uint32_t)(4 * i + 2) && n == 1, "anyone@%s", domain);
        snprintf(domain, sizeof(domain), "e%d.com", i);
        r = look(t, "someone", domain, false, false, c, &n);
        ck_assert_msg(r && (i == 7 ? r->line == 4 * N + 3 : r->line == (uint32_t)(4 * i + 3)), "@%s", domain);
        ck_assert_str_eq(r->domain, domain);
        snprintf(domain, sizeof(domain), "a.b.s%d.com", i);
        r = look(t, "x", domain, false, false, c, &n);
        ck_assert_msg(r && r->line == (uint32_t)(4 * i + 4), "@%s", domain);
        /* an address of a domain that has exact addresses, but not this one */
        snprintf(domain, sizeof(domain), "d%d.com", i % 100);
        ck_assert(look(t, "nobody", domain, false, false, c, &n) == NULL);
        ck_assert(wp_table_mentions_domain(t, domain));
    }
    ck_assert(look(t, "login", "acc.dom", false, true, c, &n) != NULL);
    ck_assert(look(t, "login", "acc.dom", false, false, c, &n) == NULL);
    ck_assert(look(t, "sip", "sig.dom", true, false, c, &n) == NULL);
    ck_assert(!wp_table_mentions_domain(t, "acc.dom"));
    ck_assert(!wp_table_mentions_domain(t, "sig.dom"));
    ck_assert(wp_table_mentions_domain(t, "w5.com"));
    ck_assert(wp_table_mentions_domain(t, "e5.com"));
    ck_assert(wp_table_mentions_domain(t, "q.s5.com"));
    ck_assert(!wp_table_mentions_domain(t, "nowhere.com"));
    for (int i = 0; i < 1000; i++) {
        snprintf(local, sizeof(local), "v%d", i);
        snprintf(domain, sizeof(domain), "q%d.org", i);
        ck_assert(look(t, local, domain, true, true, c, &n) == NULL);
    }
    wp_table_free(t);
    wp_errors_free(&err);
}
END_TEST

START_TEST(lookup_order)
{
    struct wp_errors err;
    struct wp_table *t = parse("d.com = domain-level.com\n"       /* 1 */
                               "*.com = wild-domain.com\n"        /* 2 */
                               "<*@d.com> = wild-address@x.com\n" /* 3 */
                               "<u@d.com> = exact@x.com\n"        /* 4 */
                               "<*@*.com> = second-wild@x.com\n"  /* 5 */
                               "<v*@d.com> = later-wild@x.com\n"  /* 6 */
                               "<*@*> = catch-all@x.com\n"        /* 7 */
                               "e.org = e2.org\n"                 /* 8 */
                               "* = any.org\n",                   /* 9 */
                               &err);
    ck_assert(t);
    struct wp_capture c[2];
    size_t n;
    /* exact address beats everything */
    ck_assert_uint_eq(look(t, "u", "d.com", 0, 0, c, &n)->line, 4);
    /* wildcard addresses: first in table order wins, whatever bucket they sit in */
    ck_assert_uint_eq(look(t, "v1", "d.com", 0, 0, c, &n)->line, 3);
    ck_assert_uint_eq(look(t, "w", "x.com", 0, 0, c, &n)->line, 5);
    ck_assert_uint_eq(look(t, "w", "e.org", 0, 0, c, &n)->line, 7);
    wp_table_free(t);
    wp_errors_free(&err);

    t = parse("d.com = a.com\n*.com = b.com\n<x@d.com> = c@d.com\n", &err);
    ck_assert(t);
    /* exact domain beats wildcard domain; address records beat both */
    ck_assert_uint_eq(look(t, "y", "d.com", 0, 0, c, &n)->line, 1);
    ck_assert_uint_eq(look(t, "y", "e.com", 0, 0, c, &n)->line, 2);
    ck_assert_uint_eq(look(t, "x", "d.com", 0, 0, c, &n)->line, 3);
    wp_table_free(t);
    wp_errors_free(&err);
}
END_TEST

START_TEST(duplicates_warn)
{
    struct wp_errors err;
    struct wp_table *t = parse("<a@d.com> = b@d.com\n<A@D.com> = c@d.com\n", &err);
    ck_assert(t);
    ck_assert_uint_eq(err.nwarn, 1);
    ck_assert(strstr(err.warns[0], "t.table:2: same left side as line 1"));
    struct wp_capture c[2];
    size_t n;
    ck_assert_uint_eq(look(t, "a", "d.com", 0, 0, c, &n)->line, 1);
    wp_table_free(t);
    wp_errors_free(&err);
}
END_TEST

START_TEST(utf8_and_ip_suffix_forms)
{
    struct wp_errors err;
    struct wp_table *t = parse("<j\xc3\xb6rg@d.com> = m\xc3\xbcller@x.com\n"
                               "a.com = [10.1.2.3].via\nb.com = [10.1.2.3]._via\nc.com = [10.1.2.3].smtp\n"
                               "d.com = [10.1.2.3:26].via\n<x@e.com> = y%e.com@[10.1.2.3].via\n",
                               &err);
    ck_assert_msg(err.count == 0, "%s", err.count ? err.msgs[0] : "");
    ck_assert_uint_eq(t->nrecs, 6);
    struct wp_lookup_mode mode = {false, true};
    struct wp_capture caps[2];
    size_t ncaps;
    const struct wp_record *r = wp_table_lookup(t, "j\xc3\xb6rg", "d.com", &mode, caps, &ncaps);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r->target, "m\xc3\xbcller@x.com");
    r = wp_table_lookup(t, "u", "d.com", &mode, caps, &ncaps);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r->target, "[10.1.2.3:26].via");
    wp_table_free(t);
    wp_errors_free(&err);
}
END_TEST

START_TEST(every_error)
{
    parse_error("<a@b.com = x@y.com\n", "unterminated '<'");
    parse_error("<*a*@*.dom> = x@y.com\n", "more than one '*' in the local part");
    parse_error("<a@*.*.dom> = x@y.com\n", "more than one '*' in the domain");
    parse_error("*.*.dom = x.com\n", "more than one '*' in the domain");
    parse_error("Bogus:<a@b.com> = c@d.com\n", "unknown prefix 'Bogus:'");
    parse_error("<a@b.com> x@y.com\n", "missing '='");
    parse_error("<a@b.com> =\n", "missing target");
    parse_error("<a@b.com> = x @y.com\n", "white space inside the target");
    parse_error("<a@b.com> = *@y.com\n", "the target has 1 '*' but the left side only 0");
    parse_error("<*@b.com> = *@*.com\n", "the target has 2 '*'");
    parse_error("<a@b.com> = x@y..com\n", "invalid target");
    parse_error("<a@b.com> = x@host:99999.via\n", "invalid target");
    parse_error("<@b.com> = x@y.com\n", "empty local part");
    parse_error("<a@> = x@y.com\n", "empty or too long domain");
    parse_error("<a b@c.com> = x@y.com\n", "invalid character ' ' in the local part");
    parse_error("a@b.com = x@y.com\n", "need angle brackets");
    parse_error("b/c.com = x.com\n", "invalid character '/' in the domain");
    parse_error("= x.com\n", "missing left side");
    parse_error("<a@b.com> = x@y.com\x01\n", "binary byte 0x01 at column 20");
    /* UTF-8 local parts are taken (SMTPUTF8); other high bytes, and UTF-8
     * in a domain, are not */
    parse_error("<a@b.com> = \xe9@y.com\n", "non-ASCII byte at column 13 that is not UTF-8");
    parse_error("<a@b.com> = x\xc3@y.com\n", "that is not UTF-8");
    parse_error("<a@b.com> = x@\xc3\xa9.com\n", "invalid target");
    parse_error("<a@b\xc3\xa9.com> = x@y.com\n", "invalid character");
}
END_TEST

START_TEST(error_has_line_and_all_errors_reported)
{
    struct wp_errors err;
    struct wp_table *t = parse("good.com = x.com\n<bad = x\nalso.good = y.com\n<a@b> = *\n", &err);
    ck_assert(t == NULL);
    ck_assert_uint_eq(err.count, 2);
    ck_assert(strncmp(err.msgs[0], "t.table:2: ", 11) == 0);
    ck_assert(strncmp(err.msgs[1], "t.table:4: ", 11) == 0);
    wp_errors_free(&err);
}
END_TEST

START_TEST(nul_byte)
{
    static const char text[] = "ok.com = fine.com\n<a@b.com> = x@y.com\0junk\n";
    struct wp_errors err;
    wp_errors_init(&err);
    char *buf = wp_malloc(sizeof(text));
    memcpy(buf, text, sizeof(text));
    struct wp_table *t = wp_table_parse(buf, sizeof(text) - 1, "t.table", "company.dom", &err);
    ck_assert(t == NULL);
    ck_assert_uint_eq(err.count, 1);
    ck_assert_str_eq(err.msgs[0], "t.table:2: binary byte 0x00 at column 20");
    wp_errors_free(&err);
}
END_TEST

START_TEST(long_line)
{
    size_t n = 1 << 20;
    char *text = wp_malloc(n + 64);
    memset(text, 'a', n);
    strcpy(text + n, "\nok.com = fine.com\n");
    struct wp_errors err;
    struct wp_table *t = parse(text, &err);
    ck_assert(t == NULL);
    ck_assert_uint_eq(err.count, 1);
    ck_assert(strstr(err.msgs[0], "t.table:1: line too long (1048576 bytes"));
    wp_errors_free(&err);
    free(text);
}
END_TEST

START_TEST(too_many_errors_stop)
{
    size_t lines = 1000;
    char *text = wp_malloc(lines * 8 + 1);
    text[0] = '\0';
    for (size_t i = 0; i < lines; i++)
        strcat(text, "<bad\n");
    struct wp_errors err;
    struct wp_table *t = parse(text, &err);
    ck_assert(t == NULL);
    ck_assert(err.truncated);
    ck_assert(strstr(err.msgs[err.count - 1], "too many errors"));
    wp_errors_free(&err);
    free(text);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("table");
    TCase *tc = tcase_create("table");
    tcase_add_test(tc, every_form);
    tcase_add_test(tc, lookup_order);
    tcase_add_test(tc, large_table_through_filters);
    tcase_add_test(tc, duplicates_warn);
    tcase_add_test(tc, every_error);
    tcase_add_test(tc, utf8_and_ip_suffix_forms);
    tcase_add_test(tc, error_has_line_and_all_errors_reported);
    tcase_add_test(tc, nul_byte);
    tcase_add_test(tc, long_line);
    tcase_add_test(tc, too_many_errors_stop);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(suite)
