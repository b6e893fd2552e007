/* SPDX-License-Identifier: MIT */
/* Unit tests: the ODMR spool, passwd-file credentials, SASL PLAIN, CRAM-MD5,
 * and the odmr configuration section. */
#include "config.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "odmr/anvil.h"
#include "odmr/auth.h"
#include "odmr/command.h"
#include "odmr/decision.h"
#include "odmr/dsn.h"
#include "state/snapshot.h"
#include "odmr/spool.h"
#include "unit.h"
#include "lib/util.h"
#include "odmr/settings.h"
#include "cli/sections.h"
#include "lib/conf.h"

static char *tmpdir(void)
{
    char tmpl[] = "/tmp/wp-unit-odmr-XXXXXX";
    char *d = mkdtemp(tmpl);
    ck_assert_ptr_nonnull(d);
    return wp_strdup(d);
}

static void rmtree(const char *dir)
{
    char *cmd = wp_asprintf("rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
}

static size_t count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' || (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")))
            n++;
    closedir(d);
    return n;
}

START_TEST(queue_names)
{
    ck_assert(wp_spool_queue_name_valid("domain1.dom"));
    ck_assert(wp_spool_queue_name_valid("mx-1.example_x.com"));
    ck_assert(wp_spool_queue_name_valid("[192.0.2.1]"));
    ck_assert(wp_spool_queue_name_valid("[2001:db8::1]"));
    ck_assert(!wp_spool_queue_name_valid(""));
    ck_assert(!wp_spool_queue_name_valid(".."));
    ck_assert(!wp_spool_queue_name_valid(".hidden"));
    ck_assert(!wp_spool_queue_name_valid("a/b"));
    ck_assert(!wp_spool_queue_name_valid("a b"));
    ck_assert(!wp_spool_queue_name_valid("[1.2.3.4"));
    ck_assert(!wp_spool_queue_name_valid("[../x]"));
    char big[300];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert(!wp_spool_queue_name_valid(big));
}
END_TEST

START_TEST(spool_roundtrip)
{
    char *root = tmpdir();
    char err[256], id[WP_SPOOL_ID_MAX], id2[WP_SPOOL_ID_MAX];
    ck_assert(wp_spool_open(root, err, sizeof(err)));
    char *rcpts[] = {"a@domain1.dom", "b@domain2.dom", "c@domain3.dom"};
    const char body[] = "Subject: t\r\n\r\n.leading dot kept\r\nline\r\n";
    ck_assert_msg(wp_spool_store(root, "domain1.dom", "s@x.test", rcpts, 3, body, strlen(body), 1000, id, err,
                                 sizeof(err)),
                  "%s", err);
    ck_assert(wp_spool_store(root, "domain1.dom", "", rcpts, 1, "x\r\n", 3, 1001, id2, err, sizeof(err)));
    ck_assert_str_lt(id, id2); /* ids sort by arrival */

    size_t n;
    char **ids = wp_spool_list(root, "domain1.dom", &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(ids[0], id);
    wp_spool_names_free(ids, n);
    char **queues = wp_spool_queues(root, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(queues[0], "domain1.dom");
    wp_spool_names_free(queues, n);

    struct wp_spool_msg m;
    ck_assert(wp_spool_load(root, "domain1.dom", id, true, &m, err, sizeof(err)));
    ck_assert_str_eq(m.sender, "s@x.test");
    ck_assert_uint_eq(m.nrcpts, 3);
    ck_assert_str_eq(m.rcpts[1], "b@domain2.dom");
    ck_assert_int_eq(m.arrival, 1000);
    ck_assert_uint_eq(m.body_len, strlen(body));
    ck_assert_mem_eq(m.body, body, m.body_len);

    /* Two of three delivered: the file keeps the third, body intact. */
    bool done[] = {true, false, true};
    ck_assert(wp_spool_settle(root, &m, done, true, err, sizeof(err)));
    ck_assert_uint_eq(m.nrcpts, 1);
    wp_spool_msg_free(&m);
    ck_assert(wp_spool_load(root, "domain1.dom", id, true, &m, err, sizeof(err)));
    ck_assert_uint_eq(m.nrcpts, 1);
    ck_assert_str_eq(m.rcpts[0], "b@domain2.dom");
    ck_assert_mem_eq(m.body, body, m.body_len);
    /* Envelope-only load of the same file. */
    struct wp_spool_msg e;
    ck_assert(wp_spool_load(root, "domain1.dom", id, false, &e, err, sizeof(err)));
    ck_assert_ptr_null(e.body);
    ck_assert_uint_eq(e.nrcpts, 1);
    wp_spool_msg_free(&e);
    /* The last one delivered: the file is gone. */
    bool all[] = {true};
    ck_assert(wp_spool_settle(root, &m, all, false, err, sizeof(err)));
    ck_assert(wp_spool_sync(root, "domain1.dom", err, sizeof(err)));
    wp_spool_msg_free(&m);
    ck_assert(!wp_spool_load(root, "domain1.dom", id, false, &m, err, sizeof(err)));
    ids = wp_spool_list(root, "domain1.dom", &n);
    ck_assert_uint_eq(n, 1);
    wp_spool_names_free(ids, n);

    ck_assert(wp_spool_remove(root, "domain1.dom", id2, true, err, sizeof(err)));
    char *dir = wp_asprintf("%s/domain1.dom", root);
    ck_assert_uint_eq(count_files(dir), 0);
    free(dir);
    rmtree(root);
    free(root);
}
END_TEST

START_TEST(spool_hostile)
{
    char *root = tmpdir();
    char err[256], id[WP_SPOOL_ID_MAX];
    char *bad[] = {"a@b\r\nR evil@x"};
    char *good[] = {"a@b"};
    ck_assert(!wp_spool_store(root, "domain1.dom", "s@x", bad, 1, "x", 1, 1, id, err, sizeof(err)));
    ck_assert(!wp_spool_store(root, "domain1.dom", "s@x\nR x", good, 1, "x", 1, 1, id, err, sizeof(err)));
    ck_assert(!wp_spool_store(root, "../etc", "s@x", good, 1, "x", 1, 1, id, err, sizeof(err)));
    ck_assert(!wp_spool_store(root, "domain1.dom", "s@x", good, 0, "x", 1, 1, id, err, sizeof(err)));
    struct wp_spool_msg m;
    ck_assert(!wp_spool_load(root, "domain1.dom", "../../etc/passwd", false, &m, err, sizeof(err)));
    ck_assert(!wp_spool_load(root, "..", "x", false, &m, err, sizeof(err)));

    /* A temporary file of a crashed writer is removed on open and never listed;
     * a damaged file is refused. */
    char *dir = wp_asprintf("%s/q.dom", root);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    char *tmp = wp_asprintf("%s/.tmp.0000000001.00000.000000000000", dir);
    char *dmg = wp_asprintf("%s/0000000002.00000.000000000000", dir);
    FILE *f = fopen(tmp, "w");
    fputs("WAYPOST-ODMR 1\nQ q.dom\n", f);
    fclose(f);
    f = fopen(dmg, "w");
    fputs("WAYPOST-ODMR 1\nQ q.dom\nT x\n\nbody", f);
    fclose(f);
    size_t n;
    char **ids = wp_spool_list(root, "q.dom", &n);
    ck_assert_uint_eq(n, 1);
    ck_assert(!wp_spool_load(root, "q.dom", ids[0], true, &m, err, sizeof(err)));
    wp_spool_names_free(ids, n);
    ck_assert(wp_spool_open(root, err, sizeof(err)));
    ck_assert_int_ne(access(tmp, F_OK), 0);
    ck_assert_int_eq(access(dmg, F_OK), 0);
    free(tmp);
    free(dmg);
    free(dir);
    rmtree(root);
    free(root);
}
END_TEST

START_TEST(passwd_file)
{
    const char text[] = "# comment\n"
                        "\n"
                        "cust1:{PLAIN}secret:::::\n"
                        "cust10:{CRAM-MD5}cd3ba7deaad6e5ca23448ba42e379747a9e0f7f1fbc00c8a81bbaac395731b56\n"
                        "nofields:{PLAIN}pw\r\n"
                        "#cust2:{PLAIN}commented\n";
    char *p = wp_passwd_find(text, strlen(text), "cust1");
    ck_assert_str_eq(p, "{PLAIN}secret");
    free(p);
    p = wp_passwd_find(text, strlen(text), "cust10");
    ck_assert_str_eq(p, "{CRAM-MD5}cd3ba7deaad6e5ca23448ba42e379747a9e0f7f1fbc00c8a81bbaac395731b56");
    free(p);
    p = wp_passwd_find(text, strlen(text), "nofields");
    ck_assert_str_eq(p, "{PLAIN}pw");
    free(p);
    ck_assert_ptr_null(wp_passwd_find(text, strlen(text), "cust"));
    ck_assert_ptr_null(wp_passwd_find(text, strlen(text), "cust2"));
    ck_assert_ptr_null(wp_passwd_find(text, strlen(text), "#cust2"));
    ck_assert_ptr_null(wp_passwd_find(text, strlen(text), ""));
    ck_assert_ptr_null(wp_passwd_find(text, strlen(text), "cust1:{PLAIN}secret"));
}
END_TEST

START_TEST(schemes)
{
    ck_assert(wp_auth_check_plain("{PLAIN}secret", "secret"));
    ck_assert(!wp_auth_check_plain("{PLAIN}secret", "Secret"));
    ck_assert(!wp_auth_check_plain("{PLAIN}secret", "secret "));
    ck_assert(wp_auth_check_plain("{plain}secret", "secret"));
    /* Hashes made by doveadm pw. */
    ck_assert(wp_auth_check_plain(
        "{CRAM-MD5}cd3ba7deaad6e5ca23448ba42e379747a9e0f7f1fbc00c8a81bbaac395731b56", "secret"));
    ck_assert(!wp_auth_check_plain(
        "{CRAM-MD5}cd3ba7deaad6e5ca23448ba42e379747a9e0f7f1fbc00c8a81bbaac395731b56", "wrong"));
    const char *sha512 =
        "{SHA512-CRYPT}$6$AytnFIdlnMrDXO.G$5gb3ivYdX9HI1ciMe5Yxl5eNFS/fYV.Ot0rJ7mz2M1Mjg5E6U4Muv/"
        "hKSgJew5sUt2bTNPcgECcAFm7BhMDwM1";
    ck_assert(wp_auth_check_plain(sha512, "secret"));
    ck_assert(!wp_auth_check_plain(sha512, "secreT"));
    const char *blf = "{BLF-CRYPT}$2y$05$n4exA.M6P4s3fqBl5RybGuniJLjKITbm8RNt1zszzJssMUYc0er3q";
    ck_assert(wp_auth_check_plain(blf, "secret"));
    ck_assert(!wp_auth_check_plain(blf, "secret2"));
    ck_assert(wp_auth_check_plain("$6$AytnFIdlnMrDXO.G$5gb3ivYdX9HI1ciMe5Yxl5eNFS/fYV.Ot0rJ7mz2M1Mjg5E6U4Muv/"
                                  "hKSgJew5sUt2bTNPcgECcAFm7BhMDwM1",
                                  "secret")); /* no scheme: CRYPT */
    ck_assert(wp_auth_check_plain("{SSHA256}U4BigspGvno+6k5k7bY7nLfkGsdOMfQaPiIl+c2JoZhZf51U", "secret"));
    ck_assert(
        wp_auth_check_plain("{SSHA256}oBmrdHcA6OZEkkCLeXh71YAerbvhXz1qqwjrPsXmEtNzYWx0c2FsdA==", "secret"));
    ck_assert(!wp_auth_check_plain("{SSHA256}oBmrdHcA6OZEkkCLeXh71YAerbvhXz1qqwjrPsXmEtNzYWx0c2FsdA==", "x"));
    ck_assert(wp_auth_check_plain("{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "secret"));
    ck_assert(!wp_auth_check_plain("{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "secrets"));
    ck_assert(!wp_auth_check_plain("{UNKNOWN}secret", "secret"));
    ck_assert(!wp_auth_check_plain("", ""));
    ck_assert(!wp_auth_check_plain("{CRYPT}", ""));
    ck_assert(!wp_auth_check_plain("{CRAM-MD5}zz", "secret"));
    /* Only {PLAIN} and {CRAM-MD5} can answer a CRAM-MD5 challenge. */
    ck_assert(wp_auth_cram_capable("{PLAIN}x"));
    ck_assert(
        wp_auth_cram_capable("{CRAM-MD5}cd3ba7deaad6e5ca23448ba42e379747a9e0f7f1fbc00c8a81bbaac395731b56"));
    ck_assert(!wp_auth_cram_capable(sha512));
    ck_assert(!wp_auth_cram_capable("{CRAM-MD5}cd3ba7de"));
}
END_TEST

START_TEST(cram_md5)
{
    /* RFC 2195's example. */
    const char *chal = "<1896.697170952@postoffice.reston.mci.net>";
    unsigned char ctx[WP_CRAM_CONTEXT_LEN];
    char hex[33];
    wp_cram_context("tanstaaftanstaaf", ctx);
    wp_cram_digest(ctx, chal, hex);
    ck_assert_str_eq(hex, "b913a602c7eda7a495b4e6e7334d3890");
    ck_assert(wp_auth_check_cram("{PLAIN}tanstaaftanstaaf", chal, "b913a602c7eda7a495b4e6e7334d3890"));
    ck_assert(wp_auth_check_cram("{PLAIN}tanstaaftanstaaf", chal, "B913A602C7EDA7A495B4E6E7334D3890"));
    ck_assert(!wp_auth_check_cram("{PLAIN}tanstaaftanstaaf", chal, "b913a602c7eda7a495b4e6e7334d3891"));
    ck_assert(!wp_auth_check_cram("{PLAIN}tanstaaftanstaaf", chal, "b913a602"));
    ck_assert(!wp_auth_check_cram("{PLAIN}other", chal, "b913a602c7eda7a495b4e6e7334d3890"));
    /* Dovecot's stored contexts for "secret" (doveadm pw -s CRAM-MD5). */
    wp_cram_context("secret", ctx);
    char full[65];
    for (int i = 0; i < WP_CRAM_CONTEXT_LEN; i++)
        snprintf(full + 2 * i, 3, "%02x", ctx[i]);
    ck_assert_str_eq(full, "cd3ba7deaad6e5ca23448ba42e379747a9e0f7f1fbc00c8a81bbaac395731b56");
    /* The stored contexts answer a challenge exactly as the password does. */
    char want[33];
    wp_cram_digest(ctx, chal, want);
    ck_assert(wp_auth_check_cram("{CRAM-MD5}cd3ba7deaad6e5ca23448ba42e379747a9e0f7f1fbc00c8a81bbaac395731b56",
                                 chal, want));
    /* Keys over 64 bytes are hashed first (RFC 2104). */
    char longkey[100];
    memset(longkey, 'k', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    wp_cram_context(longkey, ctx);
    wp_cram_digest(ctx, "what do ya want for nothing?", hex);
    ck_assert_uint_eq(strlen(hex), 32);
}
END_TEST

START_TEST(sasl)
{
    unsigned char buf[128];
    ck_assert_int_eq(wp_base64_decode("AGN1c3QxAHNlY3JldA==", buf, sizeof(buf)), 13);
    const char *user, *pw;
    ck_assert(wp_sasl_plain_split(buf, 13, &user, &pw));
    ck_assert_str_eq(user, "cust1");
    ck_assert_str_eq(pw, "secret");
    ck_assert_int_eq(wp_base64_decode("Y3VzdDEAY3VzdDEAc2VjcmV0", buf, sizeof(buf)), 18);
    ck_assert(wp_sasl_plain_split(buf, 18, &user, &pw)); /* authzid = authcid */
    ck_assert_int_eq(wp_base64_decode("b3RoZXIAY3VzdDEAc2VjcmV0", buf, sizeof(buf)), 18);
    ck_assert(!wp_sasl_plain_split(buf, 18, &user, &pw)); /* someone else */
    ck_assert(!wp_sasl_plain_split((const unsigned char *)"abc", 3, &user, &pw));
    ck_assert(!wp_sasl_plain_split((const unsigned char *)"\0\0pw", 4, &user, &pw));
    ck_assert(!wp_sasl_plain_split((const unsigned char *)"\0u\0p\0w", 6, &user, &pw));
    ck_assert_int_eq(wp_base64_decode("", buf, sizeof(buf)), 0);
    ck_assert_int_eq(wp_base64_decode("abc", buf, sizeof(buf)), -1);
    ck_assert_int_eq(wp_base64_decode("ab=c", buf, sizeof(buf)), -1);
    ck_assert_int_eq(wp_base64_decode("a!bc", buf, sizeof(buf)), -1);
    ck_assert_int_eq(wp_base64_decode("AAAAAAAA", buf, 4), -1);
    char enc[64];
    wp_base64_encode((const unsigned char *)"\0cust1\0secret", 13, enc, sizeof(enc));
    ck_assert_str_eq(enc, "AGN1c3QxAHNlY3JldA==");
}
END_TEST

START_TEST(odmr_config)
{
    long long s;
    ck_assert(wp_conf_parse_duration("5d", &s) && s == 5 * 86400);
    ck_assert(wp_conf_parse_duration("90", &s) && s == 90);
    ck_assert(wp_conf_parse_duration("2h", &s) && s == 7200);
    ck_assert(!wp_conf_parse_duration("5x", &s));
    ck_assert(!wp_conf_parse_duration("", &s));
    ck_assert(!wp_conf_parse_duration("-1", &s));
    ck_assert(!wp_conf_parse_duration("5dd", &s));

    char *dir = tmpdir();
    char *path = wp_asprintf("%s/w.conf", dir);
    FILE *f = fopen(path, "w");
    fputs("router: { main_domain = \"company.dom\"; odmr_queues = [\"domain1.dom\"]; };\n"
          "odmr: { listen = [\"inet:127.0.0.1:2366\", \"tls:inet:127.0.0.1:2367\"];\n"
          "  tls_cert = \"c.pem\"; tls_key = \"k.pem\"; spool = \"spool\"; expire = \"2h\";\n"
          "  accounts = ( { user = \"cust1\"; queues = [\"Domain1.dom\"]; } ); };\n",
          f);
    fclose(f);
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_snapshot *snap = wp_snapshot_load(path, wp_sections_all, &err);
    ck_assert_msg(snap != NULL, "%s", err.count ? err.msgs[0] : "");
    ck_assert_uint_eq(wp_odmr_conf(snap)->nlisten, 2);
    ck_assert(!wp_odmr_conf(snap)->listen[0].tls);
    ck_assert(wp_odmr_conf(snap)->listen[1].tls);
    ck_assert_int_eq(wp_odmr_conf(snap)->expire, 7200);
    ck_assert_int_eq(wp_odmr_conf(snap)->lmtp.family, WP_EP_UNIX);
    ck_assert_str_eq(wp_odmr_conf(snap)->lmtp.path,
                     "/run/waypost/odmrd.sock"); /* from postfix.odmr_transport */
    char *want = wp_asprintf("%s/spool", dir);
    ck_assert_str_eq(wp_odmr_conf(snap)->spool, want);
    free(want);
    const struct wp_odmr_account *a = wp_odmr_account_find(snap, "cust1");
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(a->queues[0], "domain1.dom");
    ck_assert_ptr_null(wp_odmr_account_find(snap, "cust2"));
    wp_snapshot_unref(snap);

    f = fopen(path, "w");
    fputs("router: { main_domain = \"company.dom\"; };\n"
          "odmr: { listen = [\"tls:inet:127.0.0.1:2367\", \"bogus\"]; expire = \"soon\";\n"
          "  accounts = ( { user = \"c\"; queues = [\"../x\"]; } ); };\n",
          f);
    fclose(f);
    snap = wp_snapshot_load(path, wp_sections_all, &err);
    ck_assert_ptr_null(snap);
    ck_assert_uint_ge(err.count, 4);
    wp_errors_free(&err);
    rmtree(dir);
    free(dir);
    free(path);
}
END_TEST

START_TEST(dsn_text)
{
    struct wp_spool_msg m;
    memset(&m, 0, sizeof(m));
    wp_strlcpy(m.queue, "domain1.dom", sizeof(m.queue));
    wp_strlcpy(m.id, "0000000001.00000.000000000000", sizeof(m.id));
    m.arrival = 1000;
    m.sender = "s@sender.test";
    char *rcpts[] = {"a@domain1.dom", "b@domain2.dom"};
    m.rcpts = rcpts;
    m.nrcpts = 2;
    m.body = "Subject: hello\r\nFrom: s@sender.test\r\n\r\nsecret body\r\n";
    m.body_len = strlen(m.body);
    bool which[] = {false, true};
    char *t = wp_dsn_text("odmr.test", &m, which, NULL, 5 * 86400);
    ck_assert_ptr_nonnull(strstr(t, "To: <s@sender.test>\n"));
    ck_assert_ptr_nonnull(strstr(t, "Auto-Submitted: auto-replied\n"));
    ck_assert_ptr_nonnull(strstr(t, "report-type=delivery-status"));
    ck_assert_ptr_nonnull(
        strstr(t, "Final-Recipient: rfc822; b@domain2.dom\nAction: failed\nStatus: 4.4.7\n"));
    ck_assert_ptr_nonnull(strstr(t, "within 5 days"));
    ck_assert_ptr_null(strstr(t, "a@domain1.dom"));
    ck_assert_ptr_nonnull(strstr(t, "Subject: hello\nFrom: s@sender.test\n"));
    ck_assert_ptr_null(strstr(t, "secret body")); /* headers only */
    ck_assert_ptr_null(strstr(t, "\r"));
    free(t);
    /* Refused by the customer: the reply's enhanced code, made permanent. */
    char *why[] = {"550 5.1.1 <a@domain1.dom> unknown", "554 no such user"};
    bool both[] = {true, true};
    t = wp_dsn_text("odmr.test", &m, both, why, 3600);
    ck_assert_ptr_nonnull(
        strstr(t, "Final-Recipient: rfc822; a@domain1.dom\nAction: failed\nStatus: 5.1.1\n"));
    ck_assert_ptr_nonnull(strstr(t, "Diagnostic-Code: smtp; 550 5.1.1 <a@domain1.dom> unknown"));
    ck_assert_ptr_nonnull(
        strstr(t, "Final-Recipient: rfc822; b@domain2.dom\nAction: failed\nStatus: 5.0.0\n"));
    free(t);
}
END_TEST

/* Envelope addresses: no control character gets through, quoted, escaped
 * or bare (issue 17: a quoted bare CR was taken at MAIL, then the message
 * failed with 451 after its body). */
START_TEST(envelope_controls)
{
    char out[300];
    const char *params;
    ck_assert(wp_command_envelope_arg("FROM:<a@b.test> SIZE=10", "FROM:", out, sizeof(out), &params));
    ck_assert_str_eq(out, "a@b.test");
    ck_assert_str_eq(params, " SIZE=10");
    ck_assert(wp_command_envelope_arg("FROM:<\"a b\\\"c\"@b.test>", "FROM:", out, sizeof(out), &params));
    ck_assert(wp_command_envelope_arg("TO:<@r1,@r2:x@y.test>", "TO:", out, sizeof(out), &params));
    ck_assert_str_eq(out, "x@y.test");
    ck_assert(wp_command_envelope_arg("FROM:<>", "FROM:", out, sizeof(out), &params));
    ck_assert_str_eq(out, "");
    static const char *const bad[] = {
        "FROM:<\"a\\\rb\"@b.test>", /* escaped CR in a quoted string */
        "FROM:<\"a\rb\"@b.test>",   /* bare CR in a quoted string */
        "FROM:<a\rb@b.test>",       /* bare CR */
        "FROM:<\"a\\\nb\"@b.test>", /* escaped LF */
        "FROM:<\"a\tb\"@b.test>",   /* TAB */
        "FROM:<\"a\x7f\"@b.test>",  /* DEL */
        "FROM:<a@b.test",           /* unterminated */
        "FROM:<\"a>@b.test",        /* unterminated quote */
        "FROM:<@r1x@y.test>",       /* route without a colon */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!wp_command_envelope_arg(bad[i], "FROM:", out, sizeof(out), &params), "accepted %zu",
                      i);
    char big[400];
    memset(big, 'a', sizeof(big));
    memcpy(big, "FROM:<", 6);
    memcpy(big + sizeof(big) - 2, ">", 2);
    ck_assert(!wp_command_envelope_arg(big, "FROM:", out, sizeof(out), &params));
    const char *arg;
    ck_assert(wp_command_is("mail FROM:<>", "MAIL", &arg));
    ck_assert_str_eq(arg, "FROM:<>");
    ck_assert(!wp_command_is("MAILX", "MAIL", &arg));
    ck_assert(wp_command_is("NOOP", "NOOP", &arg) && *arg == '\0');
}
END_TEST

/* Per-address accounting: the connection limit, and AUTH checks from one
 * address spaced by a growing penalty however many connections it uses. */
START_TEST(anvil_limits)
{
    struct wp_anvil *a = wp_anvil_new(4);
    uint64_t t = 1000000;
    ck_assert(wp_anvil_connect(a, "192.0.2.1", 2, t));
    ck_assert(wp_anvil_connect(a, "192.0.2.1", 2, t));
    ck_assert(!wp_anvil_connect(a, "192.0.2.1", 2, t));
    ck_assert(wp_anvil_connect(a, "192.0.2.2", 2, t));
    ck_assert_int_eq(wp_anvil_connections(a, "192.0.2.1"), 2);
    wp_anvil_disconnect(a, "192.0.2.1", t);
    ck_assert(wp_anvil_connect(a, "192.0.2.1", 2, t));
    ck_assert(wp_anvil_connect(a, "192.0.2.1", 0, t)); /* 0: no limit */

    /* No failures: checked at once. */
    ck_assert_uint_eq(wp_anvil_auth_slot(a, "192.0.2.1", 2000, t), t);
    wp_anvil_auth_failed(a, "192.0.2.1", t);
    /* 200 parallel attempts: one every penalty, not 200 at once. */
    uint64_t last = t;
    for (int i = 0; i < 200; i++) {
        uint64_t slot = wp_anvil_auth_slot(a, "192.0.2.1", 2000, t);
        ck_assert_uint_ge(slot, last + 2000);
        last = slot;
    }
    ck_assert_uint_ge(last, t + 200 * 2000);
    /* Growing with consecutive failures, capped. */
    for (int i = 0; i < 3; i++)
        wp_anvil_auth_failed(a, "192.0.2.2", t);
    ck_assert_uint_eq(wp_anvil_auth_slot(a, "192.0.2.2", 2000, t), t + 8000);
    for (int i = 0; i < 20; i++)
        wp_anvil_auth_failed(a, "192.0.2.2", t);
    ck_assert_uint_eq(wp_anvil_auth_slot(a, "192.0.2.2", 2000, t + 60000),
                      t + 60000 + WP_ANVIL_PENALTY_MAX_MS);
    /* A success clears it; an hour forgets it. */
    wp_anvil_auth_ok(a, "192.0.2.2");
    ck_assert_uint_eq(wp_anvil_failures(a, "192.0.2.2"), 0);
    wp_anvil_auth_failed(a, "192.0.2.3", t);
    ck_assert_uint_eq(wp_anvil_failures(a, "192.0.2.3"), 1);
    uint64_t later = t + WP_ANVIL_FORGET_MS + 1000 + 200 * 2000;
    ck_assert_uint_eq(wp_anvil_auth_slot(a, "192.0.2.3", 2000, later), later);
    /* Full: the sweep makes room (the forgotten failure of .3 holds
     * nothing); past that a new address goes untracked (let through). */
    ck_assert_uint_eq(wp_anvil_entries(a), 3);
    ck_assert(wp_anvil_connect(a, "192.0.2.4", 1, t));
    ck_assert(wp_anvil_connect(a, "192.0.2.5", 1, t));
    ck_assert_uint_eq(wp_anvil_entries(a), 4);
    ck_assert(!wp_anvil_full(a));
    ck_assert(wp_anvil_connect(a, "192.0.2.6", 1, t));
    ck_assert(wp_anvil_connect(a, "192.0.2.6", 1, t));
    ck_assert(wp_anvil_full(a));
    wp_anvil_disconnect(a, "192.0.2.4", t);
    wp_anvil_sweep(a, t);
    ck_assert(!wp_anvil_full(a));
    ck_assert_uint_eq(wp_anvil_entries(a), 3);
    ck_assert_int_eq(wp_anvil_connections(a, "192.0.2.1"), 3);
    wp_anvil_free(a);
}
END_TEST

START_TEST(printable_text)
{
    char s[] = "550 no\rsuch\x01user\x80\x7f.";
    wp_str_printable(s);
    ck_assert_str_eq(s, "550 no?such?user??.");
}
END_TEST

START_TEST(command_counting)
{
    /* The command label: known verbs whatever their case, else other;
     * the two pseudo-commands are never taken from a client's line. */
    ck_assert_int_eq(wp_odmr_command_of("MAIL FROM:<a@b>"), WP_OC_MAIL);
    ck_assert_int_eq(wp_odmr_command_of("rcpt TO:<a@b>"), WP_OC_RCPT);
    ck_assert_int_eq(wp_odmr_command_of("STARTTLS"), WP_OC_STARTTLS);
    ck_assert_int_eq(wp_odmr_command_of("LHLO x"), WP_OC_LHLO);
    ck_assert_int_eq(wp_odmr_command_of("EHLOX"), WP_OC_OTHER);
    ck_assert_int_eq(wp_odmr_command_of("EHL"), WP_OC_OTHER);
    ck_assert_int_eq(wp_odmr_command_of(""), WP_OC_OTHER);
    ck_assert_int_eq(wp_odmr_command_of(" QUIT"), WP_OC_OTHER);
    ck_assert_int_eq(wp_odmr_command_of("END-OF-MESSAGE"), WP_OC_OTHER);
    ck_assert_int_eq(wp_odmr_command_of("AUTH-RESPONSE"), WP_OC_OTHER);
    ck_assert_int_eq(wp_odmr_command_of("AUTH PLAIN AGN1"), WP_OC_AUTH);
    ck_assert_int_eq(wp_odmr_error_of(500), WP_OE_SYNTAX);
    ck_assert_int_eq(wp_odmr_error_of(501), WP_OE_SYNTAX);
    ck_assert_int_eq(wp_odmr_error_of(504), WP_OE_SYNTAX);
    ck_assert_int_eq(wp_odmr_error_of(503), WP_OE_SEQUENCE);
    ck_assert_int_eq(wp_odmr_error_of(530), WP_OE_SEQUENCE);
    ck_assert_int_eq(wp_odmr_error_of(538), WP_OE_SEQUENCE);
    ck_assert_int_eq(wp_odmr_error_of(502), WP_OE_UNKNOWN);

    struct wp_odmr_stats *st = calloc(1, sizeof(*st));
    wp_odmr_count_command(st, WP_OP_LMTP, WP_OC_MAIL, 250, 5000);       /* 5 us */
    wp_odmr_count_command(st, WP_OP_LMTP, WP_OC_DATA, 354, 20000);      /* 20 us */
    wp_odmr_count_command(st, WP_OP_ODMR, WP_OC_ATRN, 453, 2000000);    /* 2 ms */
    wp_odmr_count_command(st, WP_OP_ODMR, WP_OC_OTHER, 502, 200000000); /* 200 ms: +Inf */
    wp_odmr_count_command(NULL, WP_OP_ODMR, WP_OC_OTHER, 502, 1);       /* counters off */
    ck_assert_uint_eq(wp_counter_get(&st->commands[WP_OP_LMTP][WP_OC_MAIL][0]), 1);
    ck_assert_uint_eq(wp_counter_get(&st->commands[WP_OP_LMTP][WP_OC_DATA][1]), 1);
    ck_assert_uint_eq(wp_counter_get(&st->commands[WP_OP_ODMR][WP_OC_ATRN][2]), 1);
    ck_assert_uint_eq(wp_counter_get(&st->commands[WP_OP_ODMR][WP_OC_OTHER][3]), 1);
    ck_assert_uint_eq(wp_counter_get(&st->latency.bucket[0]), 1);               /* < 10 us */
    ck_assert_uint_eq(wp_counter_get(&st->latency.bucket[1]), 1);               /* < 25 us */
    ck_assert_uint_eq(wp_counter_get(&st->latency.bucket[7]), 1);               /* < 5 ms */
    ck_assert_uint_eq(wp_counter_get(&st->latency.bucket[WP_HIST_BUCKETS]), 1); /* +Inf */
    ck_assert_uint_eq(wp_counter_get(&st->latency.sum_ns), 202025000);
    wp_odmr_count_error(st, WP_OP_ODMR, WP_OE_LINE);
    wp_odmr_count_timeout(st, WP_OP_LMTP, WP_OT_IDLE);
    ck_assert_uint_eq(wp_counter_get(&st->errors[WP_OP_ODMR][WP_OE_LINE]), 1);
    ck_assert_uint_eq(wp_counter_get(&st->timeouts[WP_OP_LMTP][WP_OT_IDLE]), 1);
    free(st);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("odmr");
    TCase *tc = tcase_create("odmr");
    tcase_add_test(tc, queue_names);
    tcase_add_test(tc, spool_roundtrip);
    tcase_add_test(tc, spool_hostile);
    tcase_add_test(tc, passwd_file);
    tcase_add_test(tc, schemes);
    tcase_add_test(tc, cram_md5);
    tcase_add_test(tc, sasl);
    tcase_add_test(tc, odmr_config);
    tcase_add_test(tc, dsn_text);
    tcase_add_test(tc, envelope_controls);
    tcase_add_test(tc, printable_text);
    tcase_add_test(tc, anvil_limits);
    tcase_add_test(tc, command_counting);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(suite)
