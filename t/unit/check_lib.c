/* SPDX-License-Identifier: MIT */
/* Unit tests: endpoints, networks, config schema errors, JSON strings. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/cidr.h"
#include "lib/endpoint.h"
#include "lib/json.h"
#include "lib/strbuf.h"
#include "lib/submit.h"
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
        "unix:",
        "tcp:1.2.3.4:5",
        "inet:1.2.3.4",
        "inet:1.2.3.4:0",
        "inet:1.2.3.4:65536",
        "inet:1.2.3.4:12a",
        "inet::25",
        "inet:::1:25",
        "inet6:::1:25",
        "inet6:[::1]25",
        "inet6:[nonsense]:25",
        "inet:bad host:25",
        "",
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
    struct wp_nets nets = {NULL, 0};
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
    ck_assert_str_eq(load_text("log = { level = \"info\"; };\n"),
                     "w.conf: missing required setting 'router'\n");
    ck_assert_str_eq(load_text("router: {\n main_domain = \"c.dom\"\n"), "w.conf:3: syntax error\n");
    ck_assert_str_eq(load_text("router: {\n main_domain = \"c.dom\";\n domains = ( { name = \"d.dom\";\n"
                               "  mail_to_unknown = \"Bounced\"; } );\n};\n"),
                     "w.conf:4: mail_to_unknown: expected \"Rejected\", \"Discarded\", \"Accepted and "
                     "Bounced\" or \"Rerouted to PATTERN\"\n");
    char *m = load_text("router: {\n main_domain = \"c.dom\";\n domains = ( { name = \"d.dom\";\n"
                        "  accounts = \"passwd-file:missing.passwd\"; } );\n};\n");
    ck_assert_msg(strstr(m, "w.conf:4: accounts file /tmp/") && strstr(m, "missing.passwd: No such file"),
                  "%s", m);
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
    m = load_text("router: {\n main_domain = \"c.dom\";\n domains = ( { name = \"c.dom\"; },\n { name = "
                  "\"C.DOM\"; } );\n};\n");
    ck_assert_msg(strstr(m, "w.conf:4: domain c.dom is listed twice"), "%s", m);
    m = load_text("router: {\n main_domain = \"bad domain\";\n};\n");
    ck_assert_msg(strstr(m, "w.conf:2: main_domain 'bad domain' is not a domain name"), "%s", m);
    m = load_text("log = { level = \"loud\"; };\nrouter: { main_domain = \"c.dom\"; };\n");
    ck_assert_msg(strstr(m, "w.conf:1: log.level 'loud'"), "%s", m);
    m = load_text("router: {\n main_domain = \"c.dom\";\n domains = ( { name = \"d.dom\"; aliases = "
                  "\"x.dom\"; } );\n};\n");
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

START_TEST(strbuf_and_strv)
{
    struct wp_strbuf b = {NULL, 0, 0};
    char *empty = wp_strbuf_take(&b);
    ck_assert_str_eq(empty, "");
    free(empty);
    char big[5000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    wp_strbuf_puts(&b, "a");
    wp_strbuf_printf(&b, "<%s>%d\n", big, 7); /* longer than the formatting buffer: never cut */
    wp_strbuf_add(&b, "zz", 1);
    ck_assert_uint_eq(b.len, 1 + 1 + 4999 + 1 + 1 + 1 + 1);
    char *s = wp_strbuf_take(&b);
    ck_assert_ptr_null(b.s);
    ck_assert_uint_eq(strlen(s), 5005);
    ck_assert(strncmp(s, "a<xxx", 5) == 0);
    ck_assert_str_eq(s + 5001, ">7\nz");
    free(s);
    char **v = NULL;
    size_t n = 0;
    wp_strv_push(&v, &n, wp_strdup("one"));
    wp_strv_push(&v, &n, wp_strdup("two"));
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(v[1], "two");
    wp_strv_free(v, n);
    wp_strv_free(NULL, 0);
}
END_TEST

static char *slurp(const char *path)
{
    size_t len;
    char err[128];
    char *t = wp_read_file(path, 1 << 20, &len, err, sizeof(err));
    ck_assert_msg(t != NULL, "%s", err);
    return t;
}

/* sendmail:PATH: the sender after -f, the recipients after --, the text
 * on stdin as it is; a failing command is an error. */
START_TEST(submit_sendmail)
{
    char dir[] = "/tmp/wp-submit-XXXXXX";
    ck_assert(mkdtemp(dir));
    char *script = wp_asprintf("%s/sendmail", dir);
    char *body = wp_asprintf("#!/bin/sh\nprintf '%%s|' \"$@\" > %s/args\ncat > %s/stdin\n"
                             "[ \"$4\" = -- ] || exit 3\nexit 0\n",
                             dir, dir);
    FILE *f = fopen(script, "w");
    ck_assert(f);
    fputs(body, f);
    fclose(f);
    chmod(script, 0755);
    char *via = wp_asprintf("sendmail:%s", script);
    const char *const rcpts[] = {"a@x.dom", "b@y.dom"};
    const char *text = "Subject: t\n\n.dot line\nbody\n";
    char err[256] = "";
    ck_assert_msg(wp_submit(via, "", rcpts, 2, text, err, sizeof(err)), "%s", err);
    char *path = wp_asprintf("%s/args", dir), *got = slurp(path);
    ck_assert_str_eq(got, "-i|-f||--|a@x.dom|b@y.dom|");
    free(got);
    free(path);
    path = wp_asprintf("%s/stdin", dir);
    got = slurp(path);
    ck_assert_str_eq(got, text);
    free(got);
    unlink(path);
    free(path);
    ck_assert(wp_submit(via, "bounce@z.dom", rcpts, 1, text, err, sizeof(err)));
    path = wp_asprintf("%s/args", dir);
    got = slurp(path);
    ck_assert_str_eq(got, "-i|-f|bounce@z.dom|--|a@x.dom|");
    free(got);
    unlink(path);
    free(path);
    /* a command that fails */
    f = fopen(script, "w");
    fputs("#!/bin/sh\ncat >/dev/null\nexit 75\n", f);
    fclose(f);
    ck_assert(!wp_submit(via, "", rcpts, 1, text, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "exited with status 75"));
    ck_assert(!wp_submit("carrier-pigeon:x", "", rcpts, 1, text, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "unknown submission method"));
    ck_assert(!wp_submit(via, "", rcpts, 0, text, err, sizeof(err)));
    unlink(script);
    rmdir(dir);
    free(via);
    free(body);
    free(script);
}
END_TEST

/* smtp:HOST:PORT against a one-shot server in a child process that
 * records what it is sent: null sender, every recipient, dot stuffing,
 * CRLF line ends. */
START_TEST(submit_smtp)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(ls, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(listen(ls, 1), 0);
    socklen_t sl = sizeof(sin);
    getsockname(ls, (struct sockaddr *)&sin, &sl);
    char log[] = "/tmp/wp-smtp-XXXXXX";
    int lfd = mkstemp(log);
    ck_assert_int_ge(lfd, 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = accept(ls, NULL, NULL);
        FILE *c = fdopen(fd, "r+");
        FILE *out = fdopen(lfd, "w");
        fputs("220 test\r\n", c);
        fflush(c);
        char line[1024];
        bool data = false;
        while (fgets(line, sizeof(line), c)) {
            fputs(line, out);
            if (data) {
                if (strcmp(line, ".\r\n") == 0) {
                    data = false;
                    fputs("250 queued\r\n", c);
                }
            } else if (strncmp(line, "DATA", 4) == 0) {
                data = true;
                fputs("354 go\r\n", c);
            } else if (strncmp(line, "RCPT TO:<no@", 12) == 0) {
                fputs("550 5.1.1 no such user\r\n", c);
            } else if (strncmp(line, "QUIT", 4) == 0) {
                fputs("221 bye\r\n", c);
                fflush(c);
                break;
            } else {
                fputs("250-ok\r\n250 ok\r\n", c);
            }
            fflush(c);
        }
        fclose(out);
        _exit(0);
    }
    close(ls);
    close(lfd);
    char *via = wp_asprintf("smtp:127.0.0.1:%d", ntohs(sin.sin_port));
    const char *const rcpts[] = {"a@x.dom", "no@y.dom"};
    char err[256] = "";
    ck_assert_msg(wp_submit(via, "", rcpts, 2, "Subject: t\n\n.dot\nend", err, sizeof(err)), "%s", err);
    int status;
    waitpid(pid, &status, 0);
    char *got = slurp(log);
    ck_assert_str_eq(got,
                     "EHLO waypost\r\nMAIL FROM:<>\r\nRCPT TO:<a@x.dom>\r\nRCPT TO:<no@y.dom>\r\nDATA\r\n"
                     "Subject: t\r\n\r\n..dot\r\nend\r\n.\r\nQUIT\r\n");
    free(got);
    unlink(log);
    /* nobody listening */
    ck_assert(!wp_submit(via, "", rcpts, 1, "x\n", err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "connect to"));
    free(via);
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
    tcase_add_test(tc, strbuf_and_strv);
    tcase_add_test(tc, submit_sendmail);
    tcase_add_test(tc, submit_smtp);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(suite)
