/* Unit tests: '*' pictures, captures and target expansion. */
#include "config.h"

#include <string.h>

#include "picture.h"
#include "unit.h"

static bool m(const char *pic, const char *text, struct wp_capture *caps)
{
    return wp_picture_match(pic, strlen(pic), text, strlen(text), caps);
}

START_TEST(matching)
{
    struct wp_capture c[WP_PICTURE_STARS];
    ck_assert(m("abc", "ABC", c));
    ck_assert(!m("abc", "abcd", c));
    ck_assert(m("*", "", c));
    ck_assert_uint_eq(c[0].len, 0);
    ck_assert(m("*@friend.com", "john@Friend.COM", c));
    ck_assert_uint_eq(c[0].len, 4);
    ck_assert(strncmp(c[0].start, "john", 4) == 0);
    ck_assert(m("list-*", "list-sales", c));
    ck_assert(strncmp(c[0].start, "sales", c[0].len) == 0);
    ck_assert(!m("list-*", "lis", c));
    ck_assert(m("*.domain.dom", "username.domain.dom", c));
    ck_assert(strncmp(c[0].start, "username", c[0].len) == 0 && c[0].len == 8);
    ck_assert(!m("*.domain.dom", "domain.dom", c));
    ck_assert(m("a*b*c", "axxbyyc", c));
    ck_assert(strncmp(c[0].start, "xx", c[0].len) == 0 && c[0].len == 2);
    ck_assert(strncmp(c[1].start, "yy", c[1].len) == 0 && c[1].len == 2);
    ck_assert(m("*x", "xxx", c));
    ck_assert_uint_eq(c[0].len, 2);
    ck_assert(!m("a*", "b", c));
    ck_assert(m("**", "ab", c));
    ck_assert(!m("*********", "a", c)); /* more stars than supported */
}
END_TEST

START_TEST(expansion)
{
    struct wp_capture c[2] = { { "john", 4 }, { "friend.com", 10 } };
    char out[64];
    ck_assert(wp_picture_expand("*%friend.com@friend.com.via", c, 1, out, sizeof(out)));
    ck_assert_str_eq(out, "john%friend.com@friend.com.via");
    ck_assert(wp_picture_expand("*@*", c, 2, out, sizeof(out)));
    ck_assert_str_eq(out, "john@friend.com");
    ck_assert(wp_picture_expand("a*b*", c, 1, out, sizeof(out)));
    ck_assert_str_eq(out, "ajohnb*");
    ck_assert(!wp_picture_expand("*@*", c, 2, out, 8));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("picture");
    TCase *tc = tcase_create("picture");
    tcase_add_test(tc, matching);
    tcase_add_test(tc, expansion);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(suite)
