/* SPDX-License-Identifier: MIT */
/* Unit tests: waypost-policyd's request framing (policy/framing.h), over
 * buffers, without sockets: whole, split and pipelined requests, the size
 * limits, and every refusal. */
#include "config.h"

#include <string.h>

#include "lib/defaults.h"
#include "policy/framing.h"
#include "unit.h"

/* A writable copy: the parsers terminate strings in place. */
static char buf[8192];
static size_t load(const char *s)
{
    size_t n = strlen(s);
    memcpy(buf, s, n + 1);
    return n;
}

START_TEST(socketmap)
{
    const char *map = NULL, *key = NULL;
    size_t used = 0;
    size_t n = load("26:transport bob@client57.com,");
    ck_assert_int_eq(wp_framing_socketmap(buf, n, 100, &map, &key, &used), WP_FRAME_REQUEST);
    ck_assert_str_eq(map, "transport");
    ck_assert_str_eq(key, "bob@client57.com");
    ck_assert_uint_eq(used, n);
    /* Two pipelined: the first, then the second from where it ended. */
    n = load("9:relay a.b,10:relay cd.e,");
    ck_assert_int_eq(wp_framing_socketmap(buf, n, 100, &map, &key, &used), WP_FRAME_REQUEST);
    ck_assert_str_eq(key, "a.b");
    size_t first = used;
    ck_assert_int_eq(wp_framing_socketmap(buf + first, n - first, 100, &map, &key, &used), WP_FRAME_REQUEST);
    ck_assert_str_eq(map, "relay");
    ck_assert_str_eq(key, "cd.e");
    ck_assert_uint_eq(first + used, n);
    /* Incomplete at every cut. */
    const char *whole = "26:transport bob@client57.com,";
    for (size_t cut = 0; cut < strlen(whole); cut++) {
        memcpy(buf, whole, cut);
        ck_assert_int_eq(wp_framing_socketmap(buf, cut, 100, &map, &key, &used), WP_FRAME_MORE);
    }
    n = load("26:transport bob@client57.com,");
    ck_assert_int_eq(wp_framing_socketmap(buf, n, 20, &map, &key, &used), WP_FRAME_TOO_BIG);
    n = load("5:hello;");
    ck_assert_int_eq(wp_framing_socketmap(buf, n, 100, &map, &key, &used), WP_FRAME_MALFORMED);
    n = load("x:");
    ck_assert_int_eq(wp_framing_socketmap(buf, n, 100, &map, &key, &used), WP_FRAME_MALFORMED);
    /* Netstrings, but not "<map> <key>". */
    const char *nokey[] = {"5:relay,", "6:relay ,", "6: relay,", "0:,"};
    for (size_t i = 0; i < sizeof(nokey) / sizeof(nokey[0]); i++) {
        n = load(nokey[i]);
        ck_assert_msg(wp_framing_socketmap(buf, n, 100, &map, &key, &used) == WP_FRAME_NO_KEY, "%s",
                      nokey[i]);
    }
    memcpy(buf, "7:rel\0y a,", 10);
    ck_assert_int_eq(wp_framing_socketmap(buf, 10, 100, &map, &key, &used), WP_FRAME_NO_KEY);
    /* The key keeps its later spaces. */
    n = load("11:relay a b c,");
    ck_assert_int_eq(wp_framing_socketmap(buf, n, 100, &map, &key, &used), WP_FRAME_REQUEST);
    ck_assert_str_eq(key, "a b c");
}
END_TEST

START_TEST(tcp_table)
{
    const char *key = NULL;
    size_t used = 0;
    size_t n = load("get bob%40client57.com\n");
    ck_assert_int_eq(wp_framing_tcp(buf, n, 100, &key, &used), WP_FRAME_REQUEST);
    ck_assert_str_eq(key, "bob@client57.com");
    ck_assert_uint_eq(used, n);
    n = load("get a%20b\r\nget c\n");
    ck_assert_int_eq(wp_framing_tcp(buf, n, 100, &key, &used), WP_FRAME_REQUEST);
    ck_assert_str_eq(key, "a b");
    size_t first = used;
    ck_assert_uint_eq(first, 11);
    ck_assert_int_eq(wp_framing_tcp(buf + first, n - first, 100, &key, &used), WP_FRAME_REQUEST);
    ck_assert_str_eq(key, "c");
    n = load("get abc");
    ck_assert_int_eq(wp_framing_tcp(buf, n, 100, &key, &used), WP_FRAME_MORE);
    /* No end of line within max bytes, or a line over max. */
    n = load("get abcdefghijklmnop");
    ck_assert_int_eq(wp_framing_tcp(buf, n, 10, &key, &used), WP_FRAME_TOO_BIG);
    n = load("get abcdefghijklmnop\n");
    ck_assert_int_eq(wp_framing_tcp(buf, n, 10, &key, &used), WP_FRAME_TOO_BIG);
    const char *bad[] = {"put x\n", "get \n", "get\n", "\n", "get %zz\n", "get %00\n", "GET x\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = load(bad[i]);
        ck_assert_msg(wp_framing_tcp(buf, n, 100, &key, &used) == WP_FRAME_MALFORMED, "%s", bad[i]);
    }
    memcpy(buf, "get a\0b\n", 8);
    ck_assert_int_eq(wp_framing_tcp(buf, 8, 100, &key, &used), WP_FRAME_MALFORMED);
}
END_TEST

static const char policy_req[] = "request=smtpd_access_policy\n"
                                 "protocol_state=RCPT\n"
                                 "client_address=192.0.2.1\n"
                                 "recipient=bob@client57.com\n"
                                 "unknown_attribute=ignored\n"
                                 "\n";

START_TEST(policy)
{
    struct wp_policy_reader r;
    memset(&r, 0, sizeof(r));
    size_t used = 0;
    size_t n = load(policy_req);
    ck_assert_int_eq(wp_framing_policy(&r, buf, n, 10240, &used), WP_FRAME_REQUEST);
    ck_assert_uint_eq(used, n);
    ck_assert_str_eq(r.req.protocol_state, "RCPT");
    ck_assert_str_eq(r.req.recipient, "bob@client57.com");
    ck_assert_str_eq(r.req.client_address, "192.0.2.1");
    wp_framing_policy_next(&r);
    ck_assert_uint_eq(r.bytes, 0);
    ck_assert_str_eq(r.req.recipient, "");

    /* Byte by byte: lines are taken as they complete, the request at its
     * empty line. */
    size_t pos = 0, have = 0;
    enum wp_frame st = WP_FRAME_MORE;
    for (size_t i = 1; i <= strlen(policy_req) && st == WP_FRAME_MORE; i++) {
        memcpy(buf + have, policy_req + i - 1, 1);
        have++;
        st = wp_framing_policy(&r, buf + pos, have - pos, 10240, &used);
        pos += used;
    }
    ck_assert_int_eq(st, WP_FRAME_REQUEST);
    ck_assert_uint_eq(pos, strlen(policy_req));
    ck_assert_str_eq(r.req.recipient, "bob@client57.com");
    wp_framing_policy_next(&r);

    /* CR LF lines. */
    n = load("request=smtpd_access_policy\r\nrecipient=x@y\r\n\r\n");
    ck_assert_int_eq(wp_framing_policy(&r, buf, n, 10240, &used), WP_FRAME_REQUEST);
    ck_assert_str_eq(r.req.recipient, "x@y");
    wp_framing_policy_next(&r);

    n = load("recipient=x@y\n\n");
    ck_assert_int_eq(wp_framing_policy(&r, buf, n, 10240, &used), WP_FRAME_NOT_POLICY);
    wp_framing_policy_next(&r);
    n = load("request=smtpd_access_policy\nno equals sign\n\n");
    ck_assert_int_eq(wp_framing_policy(&r, buf, n, 10240, &used), WP_FRAME_MALFORMED);
    wp_framing_policy_next(&r);
    n = load("=value\n\n");
    ck_assert_int_eq(wp_framing_policy(&r, buf, n, 10240, &used), WP_FRAME_MALFORMED);
    wp_framing_policy_next(&r);
    memcpy(buf, "request=smtpd\0access_policy\n\n", 30);
    ck_assert_int_eq(wp_framing_policy(&r, buf, 30, 10240, &used), WP_FRAME_NUL);
    wp_framing_policy_next(&r);
    /* The limit counts the whole request, over several calls too. */
    n = load(policy_req);
    ck_assert_int_eq(wp_framing_policy(&r, buf, n, 40, &used), WP_FRAME_TOO_BIG);
    wp_framing_policy_next(&r);
    n = load("request=smtpd_access_policy\nrecipient=");
    ck_assert_int_eq(wp_framing_policy(&r, buf, n, 35, &used), WP_FRAME_TOO_BIG);
    wp_framing_policy_next(&r);
    n = load("request=smtpd_access_policy\n");
    ck_assert_int_eq(wp_framing_policy(&r, buf, n, 40, &used), WP_FRAME_MORE);
    ck_assert_uint_eq(used, n);
    n = load("client_address=192.0.2.1\n");
    ck_assert_int_eq(wp_framing_policy(&r, buf, n, 40, &used), WP_FRAME_TOO_BIG);
    wp_framing_policy_next(&r);
    /* A kept value longer than its buffer. */
    char big[WP_ATTR_VALUE_MAX + 64];
    memset(big, 'a', sizeof(big));
    memcpy(big, "recipient=", 10);
    big[sizeof(big) - 2] = '\n';
    big[sizeof(big) - 1] = '\0';
    n = load(big);
    ck_assert_int_eq(wp_framing_policy(&r, buf, n, 100000, &used), WP_FRAME_LONG_ATTR);
    ck_assert_str_eq(r.long_attr, "recipient");
    wp_framing_policy_next(&r);
}
END_TEST

START_TEST(answers)
{
    char out[128];
    size_t n = wp_framing_put(out, true, "OK ", "smtp:[x]:26", NULL);
    ck_assert_uint_eq(n, 18);
    out[n] = '\0';
    ck_assert_str_eq(out, "14:OK smtp:[x]:26,");
    n = wp_framing_put(out, true, "NOTFOUND ", NULL, NULL);
    out[n] = '\0';
    ck_assert_str_eq(out, "9:NOTFOUND ,");
    n = wp_framing_put(out, true, "", NULL, NULL);
    out[n] = '\0';
    ck_assert_str_eq(out, "0:,");
    n = wp_framing_put(out, false, "action=", "DUNNO", "\n\n");
    out[n] = '\0';
    ck_assert_str_eq(out, "action=DUNNO\n\n");
    /* A long payload: the length prefix has as many digits as it needs. */
    char big[4000], ns[4100];
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    n = wp_framing_put(ns, true, "OK ", big, NULL);
    ck_assert_uint_eq(n, 5 + 3 + 3999 + 1);
    ck_assert(memcmp(ns, "4002:OK v", 9) == 0);
    ck_assert_int_eq(ns[n - 1], ',');
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("framing");
    TCase *tc = tcase_create("framing");
    tcase_add_test(tc, socketmap);
    tcase_add_test(tc, tcp_table);
    tcase_add_test(tc, policy);
    tcase_add_test(tc, answers);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(suite)
