/* SPDX-License-Identifier: MIT */
/* Unit tests: netstrings, %XX coding, and the maps and policy decisions. */
#include "config.h"

#include <string.h>

#include "policy/framing.h"
#include "policy/maps.h"
#include "unit.h"
#include "lib/util.h"
#include "lib/wire.h"
#include "cli/sections.h"

static enum wp_wire_status ns(const char *in, size_t max, char *payload, size_t *used)
{
    const char *p;
    size_t plen;
    enum wp_wire_status st = wp_netstring_parse(in, strlen(in), max, &p, &plen, used);
    if (st == WP_WIRE_OK) {
        memcpy(payload, p, plen);
        payload[plen] = '\0';
    }
    return st;
}

START_TEST(netstrings)
{
    char pl[64];
    size_t used;
    ck_assert_int_eq(ns("5:hello,", 100, pl, &used), WP_WIRE_OK);
    ck_assert_str_eq(pl, "hello");
    ck_assert_uint_eq(used, 8);
    ck_assert_int_eq(ns("0:,", 100, pl, &used), WP_WIRE_OK);
    ck_assert_int_eq(ns("5:hello,3:abc,", 100, pl, &used), WP_WIRE_OK);
    ck_assert_uint_eq(used, 8);
    ck_assert_int_eq(ns("", 100, pl, &used), WP_WIRE_MORE);
    ck_assert_int_eq(ns("5", 100, pl, &used), WP_WIRE_MORE);
    ck_assert_int_eq(ns("5:hel", 100, pl, &used), WP_WIRE_MORE);
    ck_assert_int_eq(ns("5:hello", 100, pl, &used), WP_WIRE_MORE);
    ck_assert_int_eq(ns("5:hello;", 100, pl, &used), WP_WIRE_BAD);
    ck_assert_int_eq(ns(":hello,", 100, pl, &used), WP_WIRE_BAD);
    ck_assert_int_eq(ns("x:", 100, pl, &used), WP_WIRE_BAD);
    ck_assert_int_eq(ns("05:hello,", 100, pl, &used), WP_WIRE_BAD);
    ck_assert_int_eq(ns("-1:a,", 100, pl, &used), WP_WIRE_BAD);
    ck_assert_int_eq(ns("1234567890:", 100, pl, &used), WP_WIRE_BAD);
    ck_assert_int_eq(ns("101:", 100, pl, &used), WP_WIRE_TOO_BIG);
    ck_assert_int_eq(ns("999", 100, pl, &used), WP_WIRE_TOO_BIG);
}
END_TEST

START_TEST(xcoding)
{
    char s[64];
    strcpy(s, "a%20b%25c%40d");
    ck_assert_int_eq(wp_xdecode(s, strlen(s)), 7);
    s[7] = 0;
    ck_assert_str_eq(s, "a b%c@d");
    strcpy(s, "%7e%7E");
    ck_assert_int_eq(wp_xdecode(s, strlen(s)), 2);
    static const char *const bad[] = {"a%", "a%4", "a%zz", "%g0", "a%00b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        strcpy(s, bad[i]);
        ck_assert_msg(wp_xdecode(s, strlen(s)) < 0, "accepted %s", bad[i]);
    }
    char out[32];
    ck_assert(wp_xencode("a b%c\n\x7f\xc3", out, sizeof(out)));
    ck_assert_str_eq(out, "a%20b%25c%0A%7F%C3");
    ck_assert(!wp_xencode("abcdef", out, 4));
    ck_assert(!wp_xencode("%%%", out, 9));
}
END_TEST

static struct wp_snapshot *sample(void)
{
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_snapshot *s = wp_snapshot_load(srcpath("conf/waypost.conf"), wp_sections_all, &err);
    wp_errors_free(&err);
    ck_assert(s);
    return s;
}

static const char *map(struct wp_snapshot *s, const char *m, const char *key)
{
    static char out[600];
    char value[512];
    enum wp_map id;
    ck_assert_msg(wp_map_parse(m, strlen(m), &id), "map %s", m);
    enum wp_answer a = wp_map_lookup(s, id, key, value, sizeof(value));
    snprintf(out, sizeof(out), "%s %s",
             a == WP_ANS_FOUND      ? "FOUND"
             : a == WP_ANS_NOTFOUND ? "NOTFOUND"
             : a == WP_ANS_TEMP     ? "TEMP"
                                    : "PERM",
             value);
    return out;
}

START_TEST(maps)
{
    struct wp_snapshot *s = sample();
    ck_assert_str_eq(map(s, "transport", "bob@client57.com"), "FOUND smtp:[sibling.company.dom]:26");
    ck_assert_str_eq(map(s, "transport", "u@other-ip"), "FOUND smtp:[11.22.33.44]");
    ck_assert_str_eq(map(s, "transport", "u@nomx.dom"), "FOUND smtp:[nomx.dom]:25");
    ck_assert_str_eq(map(s, "transport", "john@friend.com"), "FOUND smtp:friend.com");
    ck_assert_str_eq(map(s, "transport", "alice@company.dom"), "FOUND lmtp:unix:private/dovecot-lmtp");
    ck_assert_str_eq(map(s, "transport", "spam-trap@company.dom"), "FOUND discard:Waypost route");
    ck_assert_str_eq(map(s, "transport", "nobody@company.dom"), "FOUND error:5.1.1 User unknown");
    ck_assert_str_eq(map(s, "transport", "*"), "NOTFOUND ");
    ck_assert_str_eq(map(s, "transport", "company.dom"), "NOTFOUND ");
    /* A domain Waypost does not route, reached by MX without a record: the
     * administrator's own transport_maps and the default transport decide. */
    ck_assert_str_eq(map(s, "transport", "u@elsewhere.example"), "NOTFOUND ");
    ck_assert_str_eq(map(s, "virtual", "u@elsewhere.example"), "NOTFOUND ");
    /* ... but an address of ours that routing sends there is Waypost's. */
    ck_assert_str_eq(map(s, "transport", "u%elsewhere.example@company.dom"), "FOUND smtp:elsewhere.example");
    ck_assert_str_eq(map(s, "virtual", "postmaster@company.dom"), "FOUND alice@company.dom");
    ck_assert_str_eq(map(s, "virtual", "ALICE@company.dom"), "NOTFOUND ");
    ck_assert_str_eq(map(s, "virtual", "company.dom"), "NOTFOUND ");
    ck_assert_str_eq(map(s, "virtual", "x@hq"), "FOUND x@hq.company.dom");
    ck_assert_str_eq(map(s, "relay", "Friend.COM"), "FOUND OK");
    ck_assert_str_eq(map(s, "relay", "friend.com."), "FOUND OK");
    ck_assert_str_eq(map(s, "relay", "x.domain.dom"), "FOUND OK");
    ck_assert_str_eq(map(s, "relay", "other-port"), "FOUND OK");
    ck_assert_str_eq(map(s, "relay", "evil.example"), "NOTFOUND ");
    ck_assert_str_eq(map(s, "relay", "a@company.dom"), "NOTFOUND ");
    ck_assert_str_eq(map(s, "recipient", "aname@domain.dom"), "FOUND OK");
    ck_assert_str_eq(map(s, "recipient", "spam-trap@company.dom"), "FOUND OK");
    ck_assert_str_eq(map(s, "recipient", "nobody@company.dom"), "NOTFOUND ");
    ck_assert_str_eq(map(s, "account", "security-officer"), "FOUND security@company.dom");
    ck_assert_str_eq(map(s, "account", "security-officer@company.dom"), "FOUND security@company.dom");
    /* An unknown name is refused when it is parsed (the PERM answer it gets
     * over socketmap is checked by t/policyd/proto.py). */
    enum wp_map id;
    ck_assert(!wp_map_parse("bogus", 5, &id));
    ck_assert(!wp_map_parse("relayx", 6, &id) && !wp_map_parse("rela", 4, &id) && !wp_map_parse("", 0, &id));
    ck_assert(wp_map_parse("relay", 5, &id) && id == WP_MAP_RELAY);
    ck_assert(wp_map_parse("account", 7, &id) && id == WP_MAP_ACCOUNT);
    wp_snapshot_unref(s);
}
END_TEST

static const char *decide(struct wp_snapshot *s, const char *state, const char *rcpt, const char *client,
                          const char *sasl)
{
    static char action[600];
    /* The request as Postfix sends it, read by waypost-policyd's framing. */
    char text[4096];
    snprintf(text, sizeof(text),
             "request=smtpd_access_policy\nprotocol_state=%s\nrecipient=%s\nclient_address=%s\n"
             "sasl_username=%s\nunknown_attribute=ignored\n\n",
             state, rcpt, client, sasl);
    struct wp_policy_reader r;
    memset(&r, 0, sizeof(r));
    size_t used = 0;
    ck_assert_int_eq(wp_framing_policy(&r, text, strlen(text), sizeof(text), &used), WP_FRAME_REQUEST);
    wp_policy_decide(s, &r.req, action, sizeof(action));
    return action;
}

START_TEST(policy)
{
    struct wp_snapshot *s = sample();
    const char *out = "192.0.2.1", *in = "127.0.0.1";
    ck_assert_str_eq(decide(s, "RCPT", "alice@company.dom", out, ""), "DUNNO");
    ck_assert_str_eq(decide(s, "RCPT", "nobody@company.dom", out, ""), "550 5.1.1 User unknown");
    ck_assert_str_eq(decide(s, "RCPT", "u@d.example", out, ""), "554 5.7.1 Relay access denied");
    ck_assert_str_eq(decide(s, "RCPT", "u@d.example", in, ""), "DUNNO");
    ck_assert_str_eq(decide(s, "RCPT", "u@d.example", out, "alice"), "DUNNO");
    ck_assert_str_eq(decide(s, "RCPT", "u%d.example@company.dom", out, ""), "554 5.7.1 Relay access denied");
    ck_assert_str_eq(decide(s, "RCPT", "john@friend.com", out, ""), "DUNNO");
    ck_assert_str_eq(decide(s, "RCPT", "aname@domain.dom", out, ""), "DUNNO");
    ck_assert_str_eq(decide(s, "RCPT", "x@hq", out, ""), "554 5.7.1 Relay access denied");
    ck_assert_str_eq(decide(s, "RCPT", "x@hq", "::ffff:127.0.0.1", ""), "DUNNO");
    ck_assert_str_eq(decide(s, "MAIL", "u@d.example", out, ""), "DUNNO");
    ck_assert_str_eq(decide(s, "RCPT", "", out, ""), "DUNNO");
    struct wp_policy_request req;
    char big[2000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert(!wp_policy_attr_set(&req, WP_KEPT_RECIPIENT, big, strlen(big)));
    wp_snapshot_unref(s);
}
END_TEST

/* Every attribute Postfix 3.7 sends (and near misses): exactly the seven
 * Waypost uses are kept, each into its own field. */
START_TEST(policy_kept_names)
{
    /* queue_id and client_name: kept for the decision log lines (issue 14) */
    static const char *const kept_names[] = {"request",     "protocol_state", "recipient",
                                             "sender",      "client_address", "sasl_username",
                                             "etrn_domain", "queue_id",       "client_name"};
    static const char *const ignored[] = {
        "protocol_name",
        "helo_name",
        "recipient_count",
        "reverse_client_name",
        "instance",
        "sasl_method",
        "sasl_sender",
        "size",
        "ccert_subject",
        "ccert_issuer",
        "ccert_fingerprint",
        "ccert_pubkey_fingerprint",
        "encryption_protocol",
        "encryption_cipher",
        "encryption_keysize",
        "stress",
        "server_address",
        "server_port",
        "policy_context",
        "compatibility_level",
        "mail_version",
        "client_port",
        "Sender",
        "senders",
        "recipienT",
        "client_addresz",
        "",
        "s",
    };
    for (size_t i = 0; i < sizeof(kept_names) / sizeof(kept_names[0]); i++) {
        int k = wp_policy_kept_index(kept_names[i], strlen(kept_names[i]));
        ck_assert_msg(k >= 0, "%s not kept", kept_names[i]);
        for (size_t j = 0; j < i; j++)
            ck_assert_int_ne(k, wp_policy_kept_index(kept_names[j], strlen(kept_names[j])));
    }
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
        ck_assert_msg(wp_policy_kept_index(ignored[i], strlen(ignored[i])) < 0, "%s kept", ignored[i]);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("wire");
    TCase *tc = tcase_create("wire");
    tcase_add_test(tc, netstrings);
    tcase_add_test(tc, xcoding);
    tcase_add_test(tc, maps);
    tcase_add_test(tc, policy);
    tcase_add_test(tc, policy_kept_names);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(suite)
