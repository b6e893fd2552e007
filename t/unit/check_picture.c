/* SPDX-License-Identifier: MIT */
/* Unit tests: '*' pictures, captures and target expansion. */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "lib/picture.h"
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
    struct wp_capture c[2] = {{"john", 4}, {"friend.com", 10}};
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

/* Reference matcher for pictures with at most one star, by brute force:
 * try every capture length.  The capture of a match is unique. */
static bool reference_match(const char *pic, const char *text, size_t *cap_at, size_t *cap_len)
{
    const char *star = strchr(pic, '*');
    size_t plen = strlen(pic), tlen = strlen(text);
    if (!star)
        return strcasecmp(pic, text) == 0;
    size_t head = (size_t)(star - pic);
    for (size_t len = 0; head + len <= tlen; len++) {
        char built[64];
        if (plen - 1 + len >= sizeof(built))
            break;
        memcpy(built, pic, head);
        memcpy(built + head, text + head, len);
        strcpy(built + head + len, star + 1);
        if (strcasecmp(built, text) == 0) {
            *cap_at = head;
            *cap_len = len;
            return true;
        }
    }
    return false;
}

/* Every picture and text of up to four bytes over {a, B, .} (pictures with
 * a star in any place too): the one-star shortcut must agree with the
 * reference, captures included. */
START_TEST(one_star_exhaustive)
{
    static const char alphabet[] = "aB.";
    char pic[8], text[8];
    unsigned long checked = 0;
    for (int plen = 0; plen <= 4; plen++) {
        int pcombos = 1;
        for (int i = 0; i < plen; i++)
            pcombos *= 3;
        for (int star = -1; star <= plen; star++) {
            for (int pc = 0; pc < pcombos; pc++) {
                size_t n = 0;
                for (int i = 0, v = pc; i < plen; i++, v /= 3) {
                    if (i == star)
                        pic[n++] = '*';
                    pic[n++] = alphabet[v % 3];
                }
                if (star == plen)
                    pic[n++] = '*';
                pic[n] = '\0';
                for (int tlen = 0; tlen <= 4; tlen++) {
                    int tcombos = 1;
                    for (int i = 0; i < tlen; i++)
                        tcombos *= 3;
                    for (int tc = 0; tc < tcombos; tc++) {
                        for (int i = 0, v = tc; i < tlen; i++, v /= 3)
                            text[i] = "Ab."[v % 3];
                        text[tlen] = '\0';
                        size_t at = 0, len = 0;
                        bool want = reference_match(pic, text, &at, &len);
                        struct wp_capture cap[WP_PICTURE_STARS];
                        bool got = wp_picture_match(pic, strlen(pic), text, strlen(text), cap);
                        ck_assert_msg(got == want, "'%s' ~ '%s': got %d, want %d", pic, text, got, want);
                        if (got && strchr(pic, '*'))
                            ck_assert_msg(cap[0].start == text + at && cap[0].len == len,
                                          "'%s' ~ '%s': capture", pic, text);
                        checked++;
                    }
                }
            }
        }
    }
    ck_assert_uint_gt(checked, 10000);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("picture");
    TCase *tc = tcase_create("picture");
    tcase_add_test(tc, matching);
    tcase_add_test(tc, expansion);
    tcase_add_test(tc, one_star_exhaustive);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(suite)
