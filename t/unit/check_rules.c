/* SPDX-License-Identifier: MIT */
/* Unit tests: Server-wide Rules (milter/rules.c): loading, every condition,
 * every operation, every action's effect on the outcome, the two seed
 * examples of conf/waypost.conf, and the automatic reply builder
 * (milter/reply.c).  Also hostile input: many recipients, huge headers,
 * broken encoded words, addresses without '@', empty headers. */
#include "config.h"

#include <gmime/gmime.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/strbuf.h"
#include "milter/reply.h"
#include "milter/rules.h"
#include "milter/unified.h"
#include "milter/view.h"
#include "state/snapshot.h"
#include "router/router.h"
#include "unit_router.h"
#include "lib/util.h"
#include "milter/settings.h"
#include "cli/sections.h"

/* Wed 2024-05-15 14:30:00 UTC; main() sets TZ=UTC. */
#define NOW ((time_t)1715783400)

static const struct wp_rules_env no_router = {NULL, "%a+%m@%d"};

/* ---------------------------------------------------------------- helpers */

#define RCPTS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define HDRS(...) ((const struct wp_header[]){__VA_ARGS__, {NULL, NULL}})

static struct wp_message msg(const char *rp, const char *const *rcpts, const struct wp_header *h)
{
    struct wp_message m;
    memset(&m, 0, sizeof(m));
    m.return_path = rp;
    m.rcpts = rcpts;
    while (rcpts && rcpts[m.nrcpts])
        m.nrcpts++;
    m.headers = h;
    while (h && h[m.nheaders].name)
        m.nheaders++;
    m.size = 1000;
    m.client_addr = "";
    m.auth_user = "";
    m.now = NOW;
    return m;
}

/* An added field as one "Name: value" line (the outcome keeps the two
 * apart); a static buffer, valid until the next call. */
static const char *field_line(const struct wp_field *f)
{
    static char line[1024];
    snprintf(line, sizeof(line), "%s: %s", f->name, f->value);
    return line;
}

/* A libconfig string literal for s (malloc'ed). */
static char *quote(const char *s)
{
    size_t n = strlen(s);
    char *q = wp_malloc(2 * n + 3), *w = q;
    *w++ = '"';
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') {
            *w++ = '\\';
            *w++ = *s;
        } else if (*s == '\n') {
            *w++ = '\\';
            *w++ = 'n';
        } else {
            *w++ = *s;
        }
    }
    *w++ = '"';
    *w = '\0';
    return q;
}

/* Parse "rules = ( ... );" and load it as the file "test.conf". */
static struct wp_rules *load_text(const char *text, const struct wp_rules_env *env, struct wp_errors *err)
{
    config_t cfg;
    config_init(&cfg);
    if (!config_read_string(&cfg, text))
        ck_abort_msg("libconfig: line %d: %s in\n%s", config_error_line(&cfg), config_error_text(&cfg), text);
    struct wp_rules *r = wp_rules_load(config_lookup(&cfg, "rules"), "test.conf", env, err);
    config_destroy(&cfg);
    return r;
}

static struct wp_rules *rules_ok(const char *text, const struct wp_rules_env *env)
{
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_rules *r = load_text(text, env, &err);
    for (size_t i = 0; i < err.count; i++)
        fprintf(stderr, "%s\n", err.msgs[i]);
    ck_assert_msg(r != NULL && err.count == 0, "rules did not load:\n%s", text);
    wp_errors_free(&err);
    return r;
}

/* The load must fail; returns every message, one a line (malloc'ed). */
static char *rules_fail(const char *text, const struct wp_rules_env *env)
{
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_rules *r = load_text(text, env, &err);
    ck_assert_msg(r == NULL, "rules loaded but should not:\n%s", text);
    ck_assert_uint_gt(err.count, 0);
    char *all = wp_strdup("");
    for (size_t i = 0; i < err.count; i++) {
        char *n = wp_asprintf("%s%s\n", all, err.msgs[i]);
        free(all);
        all = n;
    }
    wp_errors_free(&err);
    return all;
}

static void eval_text(const char *text, const struct wp_rules_env *env, const struct wp_message *m,
                      struct wp_outcome *out)
{
    struct wp_rules *r = rules_ok(text, env);
    wp_rules_evaluate(r, env, m, out);
    wp_rules_free(r);
}

/* Does one rule with this one condition fire?  op NULL: ("Cond"). */
static bool cond_env(const struct wp_rules_env *env, const char *cond, const char *op, const char *param,
                     const struct wp_message *m)
{
    char *qc = quote(cond), *qo = op ? quote(op) : NULL, *qp = param ? quote(param) : NULL;
    char *text = wp_asprintf("rules = ( { name = \"t\"; data = ( (%s%s%s%s%s) );\n"
                             "  action = ( (\"Add Header\", \"X-Fired: yes\") ); } );\n",
                             qc, qo ? ", " : "", qo ? qo : "", qp ? ", " : "", qp ? qp : "");
    struct wp_outcome out;
    eval_text(text, env, m, &out);
    bool fired = out.nfired == 1;
    if (fired) {
        ck_assert_str_eq(out.fired[0], "t");
        ck_assert_uint_eq(out.nheaders, 1);
    } else {
        ck_assert_uint_eq(out.nfired, 0);
        ck_assert_uint_eq(out.nheaders, 0);
    }
    wp_outcome_free(&out);
    free(text);
    free(qc);
    free(qo);
    free(qp);
    return fired;
}

#define COND(m, c, o, p) cond_env(&no_router, (c), (o), (p), (m))
static const char *show(const char *s)
{
    return s ? s : "";
}

#define YES(m, c, o, p) ck_assert_msg(COND(m, c, o, p), "%s %s %s: should hold", c, show(o), show(p))
#define NO(m, c, o, p) ck_assert_msg(!COND(m, c, o, p), "%s %s %s: should not hold", c, show(o), show(p))
#define YES_E(env, m, c, o, p)                                                                               \
    ck_assert_msg(cond_env(env, c, o, p, m), "%s %s %s: should hold", c, show(o), show(p))
#define NO_E(env, m, c, o, p)                                                                                \
    ck_assert_msg(!cond_env(env, c, o, p, m), "%s %s %s: should not hold", c, show(o), show(p))

static struct wp_snapshot *sample(void)
{
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_snapshot *s = wp_snapshot_load(srcpath("conf/waypost.conf"), wp_sections_all, &err);
    for (size_t i = 0; i < err.count; i++)
        fprintf(stderr, "%s\n", err.msgs[i]);
    wp_errors_free(&err);
    ck_assert_msg(s != NULL, "cannot load conf/waypost.conf");
    return s;
}

/* The sample's Router, built without waypost.conf: company.dom with its
 * list accounts and alias, the trusted networks, conf/router.table. */
static struct wp_router *sample_router(void)
{
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_router *r = wp_router_new("company.dom", "test", NULL);
    static const char *const aliases[] = {"mail.company.dom", NULL};
    struct wp_domain_spec company = {.name = "company.dom",
                                     .aliases = aliases,
                                     .accounts = "list:alice,bob,security,public,marketing,boss,prices"};
    wp_router_add_domain(r, &company, &err);
    wp_router_add(r, WP_ROUTER_TRUSTED, "127.0.0.0/8", NULL, 0, &err);
    wp_router_add(r, WP_ROUTER_TRUSTED, "::1/128", NULL, 0, &err);
    for (size_t i = 0; i < err.count; i++)
        fprintf(stderr, "%s\n", err.msgs[i]);
    ck_assert_uint_eq(err.count, 0);
    wp_errors_free(&err);
    unit_router_load_sample(r);
    return r;
}

static bool has_str(char **v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

/* ---------------------------------------------------------------- header-address conditions */

START_TEST(cond_from)
{
    struct wp_message m =
        msg("env@x.dom", RCPTS("r@y.dom"), HDRS({"From", "\"Joe User\" <Joe.User@Sales.Example.COM>"}));
    YES(&m, "From", "is", "joe.user@sales.example.com"); /* case-insensitive */
    YES(&m, "From", "is", "*@*.example.com");            /* wildcards */
    YES(&m, "From", "is", "*user@*");
    YES(&m, "From", "is", "*");
    NO(&m, "From", "is", "*@example.com");
    NO(&m, "From", "is", "joe"); /* whole-string match */
    NO(&m, "From", "is not", "*@*.example.com");
    YES(&m, "From", "is not", "*@other.dom");
    YES(&m, "From", "in", "a@b.dom, *@sales.example.com ,c@d.dom");
    NO(&m, "From", "in", "a@b.dom,*@example.com");
    YES(&m, "From", "not in", "a@b.dom,*@example.com");
    NO(&m, "From", "not in", "a@b.dom,  JOE.*");
    /* the envelope sender is not the From */
    NO(&m, "From", "is", "env@x.dom");
    /* the display name is not the address */
    NO(&m, "From", "is", "*Joe User*");
}
END_TEST

START_TEST(cond_from_missing)
{
    /* CommuniGate: without a From address only "is not" and "not in" hold. */
    struct wp_message m = msg("env@x.dom", RCPTS("r@y.dom"), HDRS({"Subject", "hi"}));
    NO(&m, "From", "is", "*");
    NO(&m, "From", "in", "*,*@*");
    YES(&m, "From", "is not", "*");
    YES(&m, "From", "not in", "*,a@b.dom");
    /* an empty or unparsable From is the same as none */
    struct wp_message e = msg("env@x.dom", RCPTS("r@y.dom"), HDRS({"From", ""}));
    NO(&e, "From", "is", "*");
    YES(&e, "From", "is not", "*");
    struct wp_message g = msg("env@x.dom", RCPTS("r@y.dom"), HDRS({"From", "undisclosed-recipients:;"}));
    NO(&g, "From", "is", "*");
    YES(&g, "From", "not in", "*");
    /* the same rule for Sender, To, Cc, Reply-To */
    static const char *const names[] = {"Sender", "To", "Cc", "Reply-To"};
    for (size_t i = 0; i < 4; i++) {
        NO(&m, names[i], "is", "*");
        NO(&m, names[i], "in", "*");
        YES(&m, names[i], "is not", "*");
        YES(&m, names[i], "not in", "*");
    }
}
END_TEST

START_TEST(cond_header_addresses)
{
    struct wp_message m = msg("env@x.dom", RCPTS("r@y.dom"),
                              HDRS({"From", "a@one.dom"}, {"Sender", "list-bounces@lists.dom"},
                                   {"To", "Ann <ann@in.dom>, bob@in.dom"}, {"Cc", "Carl <carl@out.dom>"},
                                   {"Reply-To", "replies@one.dom"}));
    YES(&m, "Sender", "is", "*@lists.dom");
    NO(&m, "Sender", "is", "a@one.dom");
    YES(&m, "Reply-To", "is", "replies@*");
    NO(&m, "Reply-To", "is", "a@one.dom");
    /* several addresses in one header: positive ops need one, negative ops need none */
    YES(&m, "To", "is", "bob@in.dom");
    YES(&m, "To", "is", "ann@*");
    NO(&m, "To", "is", "carl@out.dom");
    YES(&m, "To", "is not", "*@out.dom");
    NO(&m, "To", "is not", "ann@in.dom");
    YES(&m, "Cc", "is", "carl@out.dom");
    NO(&m, "Cc", "in", "*@in.dom");
    YES(&m, "Cc", "not in", "*@in.dom");
}
END_TEST

START_TEST(cond_groups_and_repeats)
{
    struct wp_message m = msg("env@x.dom", RCPTS("r@y.dom"),
                              HDRS({"To", "Team: ann@in.dom, \"Bob B.\" <bob@in.dom>;, solo@far.dom"},
                                   {"To", "second@hdr.dom"}, {"Cc", "Empty Group:;"}));
    YES(&m, "To", "is", "ann@in.dom"); /* group members are flattened */
    YES(&m, "To", "is", "bob@in.dom");
    YES(&m, "To", "is", "solo@far.dom");
    YES(&m, "To", "is", "second@hdr.dom"); /* every To header counts */
    NO(&m, "To", "is", "Team*");
    NO(&m, "To", "is not", "*@far.dom");
    /* an empty group has no address */
    NO(&m, "Cc", "is", "*");
    YES(&m, "Cc", "is not", "*");
}
END_TEST

START_TEST(cond_addresses_without_at)
{
    struct wp_message m =
        msg("postmaster", RCPTS("bob", "alice@x.dom"), HDRS({"From", "alice"}, {"To", "bob, carol@x.dom"}));
    YES(&m, "From", "is", "alice");
    NO(&m, "From", "is", "*@*");
    YES(&m, "From", "is not", "*@*");
    YES(&m, "To", "is", "bob");
    YES(&m, "Return-Path", "is", "postmaster");
    NO(&m, "Return-Path", "is", "*@*");
    YES(&m, "Any Recipient", "is", "bob");
    NO(&m, "Each Recipient", "is", "*@*");
    YES(&m, "Any Recipient", "not in", "*@*");
}
END_TEST

START_TEST(cond_encoded_display_names)
{
    struct wp_message m =
        msg("env@x.dom", RCPTS("r@y.dom"),
            HDRS({"From", "=?utf-8?q?J=C3=B6rg_M=C3=BCller?= <joerg@example.de>"},
                 {"To", "=?iso-8859-1?b?wWxpY2U=?= <alice@example.de>, =?utf-8?q?broken <bob@example.de>"}));
    YES(&m, "From", "is", "joerg@example.de");
    YES(&m, "To", "is", "alice@example.de");
    YES(&m, "To", "is", "bob@example.de");
}
END_TEST

/* ---------------------------------------------------------------- envelope conditions */

START_TEST(cond_return_path)
{
    struct wp_message m = msg("Bounce+123@Lists.DOM", RCPTS("r@y.dom"), NULL);
    YES(&m, "Return-Path", "is", "bounce+*@lists.dom");
    YES(&m, "Return-Path", "in", "x@y.dom,*@lists.dom");
    NO(&m, "Return-Path", "is not", "*@lists.dom");
    YES(&m, "Return-Path", "not in", "x@y.dom,*@other.dom");
    /* the null sender is the empty string */
    struct wp_message n = msg("", RCPTS("r@y.dom"), NULL);
    YES(&n, "Return-Path", "is", "");
    NO(&n, "Return-Path", "is", "*@*");
    YES(&n, "Return-Path", "is not", "*@*");
    YES(&n, "Return-Path", "is", "*");
}
END_TEST

START_TEST(cond_to_cc_any_each)
{
    struct wp_message m =
        msg("s@x.dom", RCPTS("r@y.dom"), HDRS({"To", "a@in.dom, b@in.dom"}, {"Cc", "c@out.dom"}));
    YES(&m, "Any To or Cc", "is", "*@in.dom");
    YES(&m, "Any To or Cc", "is", "c@out.dom");
    NO(&m, "Any To or Cc", "is", "*@nowhere.dom");
    NO(&m, "Each To or Cc", "is", "*@in.dom");
    YES(&m, "Each To or Cc", "in", "*@in.dom,*@out.dom");
    YES(&m, "Each To or Cc", "is", "*");
    /* "Any ... not in L": at least one address is outside L */
    YES(&m, "Any To or Cc", "not in", "*@in.dom");
    NO(&m, "Any To or Cc", "not in", "*@in.dom,*@out.dom");
    /* "Each ... is not P": no address matches P */
    YES(&m, "Each To or Cc", "is not", "*@elsewhere.dom");
    NO(&m, "Each To or Cc", "is not", "*@out.dom");
    /* no To or Cc at all: Any finds no match, Each has nothing to hold for */
    struct wp_message e = msg("s@x.dom", RCPTS("r@y.dom"), HDRS({"Subject", "x"}));
    NO(&e, "Any To or Cc", "is", "*");
    NO(&e, "Each To or Cc", "is", "*");
    NO(&e, "Any To or Cc", "is not", "*");
}
END_TEST

START_TEST(cond_recipients_any_each)
{
    struct wp_message m = msg("s@x.dom", RCPTS("Ann@In.dom", "bob@in.dom", "carl@out.dom"), NULL);
    YES(&m, "Any Recipient", "is", "ann@in.dom");
    YES(&m, "Any Recipient", "in", "nobody@x.dom, carl@*");
    NO(&m, "Any Recipient", "is", "*@nowhere.dom");
    NO(&m, "Each Recipient", "is", "*@in.dom");
    YES(&m, "Each Recipient", "in", "*@in.dom,*@out.dom");
    YES(&m, "Any Recipient", "not in", "*@in.dom");
    NO(&m, "Any Recipient", "not in", "*@in.dom,*@out.dom");
    YES(&m, "Each Recipient", "is not", "*@x.dom");
    NO(&m, "Each Recipient", "is not", "*@out.dom");
    /* headers do not count */
    struct wp_message h = msg("s@x.dom", RCPTS("r@y.dom"), HDRS({"To", "a@in.dom"}));
    NO(&h, "Any Recipient", "is", "a@in.dom");
    struct wp_message none = msg("s@x.dom", NULL, NULL);
    NO(&none, "Any Recipient", "is", "*");
    NO(&none, "Each Recipient", "is", "*");
}
END_TEST

START_TEST(cond_routes)
{
    struct wp_router *r = sample_router();
    const struct wp_rules_env renv = {r, "%a+%m@%d"}, *env = &renv;
    struct wp_message m = msg("alice@company.dom", RCPTS("john@friend.com", "alice@company.dom"), NULL);
    YES_E(env, &m, "Any Route", "is", "SMTP(*");
    YES_E(env, &m, "Any Route", "is", "SMTP(friend.com)john@friend.com");
    YES_E(env, &m, "Any Route", "is", "LOCAL()alice@company.dom");
    YES_E(env, &m, "Any Route", "is", "local(*");
    NO_E(env, &m, "Any Route", "is", "ODMR(*");
    NO_E(env, &m, "Each Route", "is", "LOCAL(*");
    YES_E(env, &m, "Each Route", "in", "LOCAL(*,SMTP(*");
    YES_E(env, &m, "Any Route", "is not", "LOCAL(*");
    /* only local recipients */
    struct wp_message l =
        msg("x@friend.com", RCPTS("alice@company.dom", "postmaster", "BOB@mail.company.dom"), NULL);
    YES_E(env, &l, "Each Route", "is", "LOCAL(*");
    NO_E(env, &l, "Any Route", "is", "SMTP(*");
    YES_E(env, &l, "Any Route", "is", "LOCAL()alice@company.dom"); /* postmaster is an alias of alice */
    YES_E(env, &l, "Any Route", "is", "LOCAL()bob@company.dom");
    /* discarded and refused addresses */
    struct wp_message d = msg("x@friend.com", RCPTS("spam-trap", "former-employee"), NULL);
    YES_E(env, &d, "Any Route", "is", "DISCARD()*");
    YES_E(env, &d, "Any Route", "is", "ERROR()*");
    /* without a router there are no routes: Any never holds, nor Each */
    NO(&m, "Any Route", "is", "*");
    NO(&m, "Each Route", "is", "*");
    wp_router_free(r);
}
END_TEST

START_TEST(cond_submit_address)
{
    struct wp_message m = msg("s@x.dom", RCPTS("r@y.dom"), NULL);
    m.client_addr = "1.2.3.4";
    YES(&m, "Submit Address", "is", "[1.2.3.4]");
    YES(&m, "Submit Address", "is", "[1.2.3.*]");
    NO(&m, "Submit Address", "is", "1.2.3.4"); /* the format is [a.b.c.d] */
    YES(&m, "Submit Address", "in", "[10.*], [1.2.*]");
    YES(&m, "Submit Address", "not in", "[10.*],[192.168.*]");
    NO(&m, "Submit Address", "is not", "[1.2.3.4]");
    m.client_addr = "2001:db8::25";
    YES(&m, "Submit Address", "is", "[2001:db8::25]");
    YES(&m, "Submit Address", "is", "[2001:DB8:*]");
    /* unknown client: only the negative operations hold */
    m.client_addr = "";
    NO(&m, "Submit Address", "is", "*");
    NO(&m, "Submit Address", "is", "[]");
    YES(&m, "Submit Address", "is not", "[1.2.3.4]");
    YES(&m, "Submit Address", "not in", "*");
}
END_TEST

START_TEST(cond_source)
{
    struct wp_router *r = sample_router(); /* trusted_networks 127.0.0.0/8, ::1/128 */
    const struct wp_rules_env renv = {r, "%a+%m@%d"}, *env = &renv;
    struct wp_message m = msg("s@x.dom", RCPTS("r@y.dom"), NULL);
    /* untrusted */
    m.client_addr = "192.0.2.7";
    YES_E(env, &m, "Source", "is", "untrusted");
    NO_E(env, &m, "Source", "is", "trusted");
    NO_E(env, &m, "Source", "is", "authenticated");
    YES_E(env, &m, "Source", "not in", "trusted,authenticated");
    /* trusted network */
    m.client_addr = "127.0.0.1";
    YES_E(env, &m, "Source", "is", "trusted");
    YES_E(env, &m, "Source", "is", "TRUSTED");
    NO_E(env, &m, "Source", "is", "untrusted");
    NO_E(env, &m, "Source", "is", "authenticated");
    YES_E(env, &m, "Source", "is not", "authenticated");
    m.client_addr = "::1";
    YES_E(env, &m, "Source", "is", "trusted");
    /* authenticated (SASL) from outside */
    m.client_addr = "192.0.2.7";
    m.auth_user = "bob";
    YES_E(env, &m, "Source", "is", "authenticated");
    NO_E(env, &m, "Source", "is", "trusted");
    NO_E(env, &m, "Source", "is", "untrusted");
    YES_E(env, &m, "Source", "in", "trusted,authenticated");
    NO_E(env, &m, "Source", "not in", "trusted,authenticated");
    /* both */
    m.client_addr = "127.0.0.5";
    YES_E(env, &m, "Source", "is", "authenticated");
    YES_E(env, &m, "Source", "is", "trusted");
    NO_E(env, &m, "Source", "is not", "trusted");
    /* without a router nothing is trusted */
    m.auth_user = "";
    m.client_addr = "127.0.0.1";
    YES(&m, "Source", "is", "untrusted");
    NO(&m, "Source", "is", "trusted");
    m.client_addr = "";
    YES_E(env, &m, "Source", "is", "untrusted");
    wp_router_free(r);
}
END_TEST

/* ---------------------------------------------------------------- content conditions */

START_TEST(cond_subject)
{
    struct wp_message m =
        msg("s@x.dom", RCPTS("r@y.dom"), HDRS({"Subject", "=?utf-8?q?Caf=C3=A9_menu?= today"}));
    YES(&m, "Subject", "is", "Café menu today"); /* decoded before matching */
    YES(&m, "Subject", "is", "*café*");
    YES(&m, "Subject", "is", "CAF* MENU *");
    NO(&m, "Subject", "is", "*=?utf-8?*");
    YES(&m, "Subject", "in", "*spam*,*menu*");
    YES(&m, "Subject", "not in", "*spam*,*viagra*");
    NO(&m, "Subject", "is not", "*menu*");
    /* base64 encoded word, folded over two lines */
    struct wp_message b =
        msg("s@x.dom", RCPTS("r@y.dom"),
            HDRS({"Subject", " =?UTF-8?B?SGVsbG8=?=\r\n =?UTF-8?B?V29ybGQ=?= and\r\n more"}));
    YES(&b, "Subject", "is", "HelloWorld and more");
    /* padded base64 words in a row (GMime 3.2.13 lost all after the first) */
    struct wp_message p =
        msg("s@x.dom", RCPTS("r@y.dom"),
            HDRS({"Subject", "=?UTF-8?B?SGVsbG8=?= =?UTF-8?B?IHdvcmxk?=\r\n =?utf-8?b?IQ==?= x "
                             "=?UTF-8?B?w6k=?="}));
    YES(&p, "Subject", "is", "Hello world! x é");
    char *d = wp_header_decode("=?UTF-8?B?SGVsbG8=?= =?UTF-8?B?V29ybGQ=?=");
    ck_assert_str_eq(d, "HelloWorld");
    free(d);
    d = wp_header_decode("=?UTF-8?B?SGVsbG8=?= plain =?UTF-8?B?V29ybGQ=?= =?UTF-8?Q?_again?=");
    ck_assert_str_eq(d, "Hello plain World again");
    free(d);
    /* a multibyte character split over two unpadded words still decodes */
    d = wp_header_decode("=?utf-8?B?b2LD?= =?utf-8?B?pHI=?=");
    ck_assert_str_eq(d, "obär");
    free(d);
    /* no Subject: the empty string */
    struct wp_message n = msg("s@x.dom", RCPTS("r@y.dom"), NULL);
    YES(&n, "Subject", "is", "");
    NO(&n, "Subject", "is", "?*");
    YES(&n, "Subject", "is not", "*x*");
}
END_TEST

START_TEST(cond_header_field)
{
    struct wp_message m = msg("s@x.dom", RCPTS("r@y.dom"),
                              HDRS({"x-mailer", " Microsoft Outlook 16.0"}, {"X-Spam-Flag", "YES"},
                                   {"X-Tag", "=?utf-8?q?gr=C3=BC=C3=9Fe?="}, {"X-Tag", "second"}));
    YES(&m, "Header Field", "is", "X-Mailer: *Outlook*");
    YES(&m, "Header Field", "is", "X-MAILER:*outlook*");
    NO(&m, "Header Field", "is", "X-Mailer: *Thunderbird*");
    YES(&m, "Header Field", "is not", "X-Mailer: *Thunderbird*");
    NO(&m, "Header Field", "is not", "X-Mailer: *Outlook*");
    YES(&m, "Header Field", "in", "X-Mailer: *Thunderbird*, *Outlook*");
    YES(&m, "Header Field", "not in", "X-Mailer: *Thunderbird*,*Mutt*");
    YES(&m, "Header Field", "is", "X-Spam-Flag: yes");
    YES(&m, "Header Field", "is", "X-Tag: grüße");  /* decoded */
    YES(&m, "Header Field", "is", "X-Tag: second"); /* any of the repeated fields */
    /* a missing field meets only the negative operations */
    NO(&m, "Header Field", "is", "X-Absent: *");
    YES(&m, "Header Field", "is not", "X-Absent: *");
    YES(&m, "Header Field", "not in", "X-Absent: a,b");
}
END_TEST

START_TEST(cond_message_size)
{
    struct wp_message m = msg("s@x.dom", RCPTS("r@y.dom"), NULL);
    m.size = 10 * 1024 + 1;
    YES(&m, "Message Size", "greater than", "10K");
    YES(&m, "Message Size", "greater than", "10k");
    YES(&m, "Message Size", "greater than", "10240");
    NO(&m, "Message Size", "greater than", "10241");
    NO(&m, "Message Size", "less than", "10K");
    YES(&m, "Message Size", "less than", "1M");
    YES(&m, "Message Size", "less than", "10242");
    m.size = 10 * 1024;
    NO(&m, "Message Size", "greater than", "10K"); /* strictly */
    NO(&m, "Message Size", "less than", "10K");
    m.size = 3 * 1024 * 1024;
    YES(&m, "Message Size", "greater than", "2m");
    NO(&m, "Message Size", "greater than", "3M");
    YES(&m, "Message Size", "less than", "4M");
    m.size = 0;
    YES(&m, "Message Size", "less than", "1");
    NO(&m, "Message Size", "greater than", "0");
}
END_TEST

START_TEST(cond_human_generated)
{
    const char *const *r = RCPTS("r@y.dom");
    struct wp_message m = msg("joe@x.dom", r, HDRS({"From", "joe@x.dom"}));
    YES(&m, "Human Generated", NULL, NULL);
    YES(&m, "Human Generated", "is", NULL);
    NO(&m, "Human Generated", "is not", NULL);
    ck_assert(wp_message_human(&m));
    struct wp_message no = msg("joe@x.dom", r, HDRS({"Auto-Submitted", "no"}));
    YES(&no, "Human Generated", NULL, NULL);
    static const struct wp_header robots[][2] = {
        {{"Auto-Submitted", "auto-replied"}, {NULL, NULL}},
        {{"Auto-Submitted", " auto-generated"}, {NULL, NULL}},
        {{"auto-submitted", "auto-notified; owner-email=\"x@y\""}, {NULL, NULL}},
        {{"Precedence", "bulk"}, {NULL, NULL}},
        {{"Precedence", "List"}, {NULL, NULL}},
        {{"Precedence", " junk"}, {NULL, NULL}},
        {{"List-Id", "Users <users.lists.dom>"}, {NULL, NULL}},
        {{"List-Unsubscribe", "<mailto:u@lists.dom>"}, {NULL, NULL}},
    };
    for (size_t i = 0; i < sizeof(robots) / sizeof(robots[0]); i++) {
        struct wp_message b = msg("joe@x.dom", r, robots[i]);
        ck_assert_msg(!cond_env(&no_router, "Human Generated", NULL, NULL, &b), "human with %s: %s",
                      robots[i][0].name, robots[i][0].value);
        ck_assert_msg(cond_env(&no_router, "Human Generated", "is not", NULL, &b), "%s", robots[i][0].name);
    }
    struct wp_message first = msg("joe@x.dom", r, HDRS({"Precedence", "first-class"}));
    YES(&first, "Human Generated", NULL, NULL);
    /* bounces: the null return path, MAILER-DAEMON */
    struct wp_message bounce = msg("", r, HDRS({"From", "joe@x.dom"}));
    NO(&bounce, "Human Generated", NULL, NULL);
    YES(&bounce, "Human Generated", "is not", NULL);
    struct wp_message md = msg("MAILER-DAEMON@mx.x.dom", r, HDRS({"From", "joe@x.dom"}));
    NO(&md, "Human Generated", NULL, NULL);
    struct wp_message md2 = msg("mailer-daemon", r, NULL);
    NO(&md2, "Human Generated", NULL, NULL);
    struct wp_message owner = msg("owner-users@lists.dom", r, NULL);
    NO(&owner, "Human Generated", NULL, NULL);
}
END_TEST

START_TEST(cond_current_date_day_time)
{
    /* NOW is Wednesday 2024-05-15 14:30 UTC */
    struct wp_message m = msg("s@x.dom", RCPTS("r@y.dom"), NULL);
    YES(&m, "Current Date", "is", "2024-05-15");
    YES(&m, "Current Date", "is", "2024-05-*");
    NO(&m, "Current Date", "is", "2024-05-16");
    YES(&m, "Current Date", "in", "2024-12-25,2024-05-15");
    YES(&m, "Current Date", "greater than", "2024-05-14");
    NO(&m, "Current Date", "greater than", "2024-05-15");
    YES(&m, "Current Date", "less than", "2024-06-01");
    NO(&m, "Current Date", "less than", "2024-01-01");
    YES(&m, "Current Day", "is", "Wed");
    YES(&m, "Current Day", "is", "wed");
    NO(&m, "Current Day", "in", "Sat,Sun");
    YES(&m, "Current Day", "not in", "Sat,Sun");
    YES(&m, "Current Day", "greater than", "Mon");
    NO(&m, "Current Day", "greater than", "Wed");
    YES(&m, "Current Day", "less than", "Fri");
    NO(&m, "Current Day", "less than", "Tue");
    YES(&m, "Current Time", "is", "14:30");
    YES(&m, "Current Time", "is", "14:*");
    YES(&m, "Current Time", "greater than", "09:00");
    YES(&m, "Current Time", "greater than", "14:29");
    NO(&m, "Current Time", "greater than", "14:30");
    YES(&m, "Current Time", "less than", "17:00");
    NO(&m, "Current Time", "less than", "08:00");
    /* office hours: greater than 08:00 and less than 18:00 on a weekday */
    const char *office =
        "rules = ( { name = \"office\"; data = ( (\"Current Day\", \"not in\", \"Sat,Sun\"),\n"
        "  (\"Current Time\", \"greater than\", \"08:00\"), (\"Current Time\", \"less than\", \"18:00\") );\n"
        "  action = ( (\"Add Header\", \"X-Office: open\") ); } );";
    struct wp_outcome out;
    eval_text(office, &no_router, &m, &out);
    ck_assert_uint_eq(out.nfired, 1);
    wp_outcome_free(&out);
    m.now = NOW + 3 * 86400; /* Saturday */
    YES(&m, "Current Day", "is", "Sat");
    eval_text(office, &no_router, &m, &out);
    ck_assert_uint_eq(out.nfired, 0);
    wp_outcome_free(&out);
    m.now = NOW - 6 * 3600 - 30 * 60 - 5 * 86400; /* Friday 08:00 */
    YES(&m, "Current Time", "is", "08:00");
    YES(&m, "Current Date", "is", "2024-05-10");
    YES(&m, "Current Day", "is", "Fri");
    NO(&m, "Current Time", "greater than", "08:00");
}
END_TEST

/* Times and dates written without leading zeros compare as times and
 * dates, not as strings ("14:30" is later than "9:00"). */
START_TEST(cond_time_without_leading_zero)
{
    struct wp_message m = msg("s@x.dom", RCPTS("r@y.dom"), NULL);
    YES(&m, "Current Time", "greater than", "9:00");
    NO(&m, "Current Time", "less than", "9:00");
    YES(&m, "Current Date", "greater than", "2024-5-1");
    NO(&m, "Current Date", "less than", "2024-5-1");
    YES(&m, "Current Date", "less than", "2024-5-16");
}
END_TEST

/* ---------------------------------------------------------------- operations */

START_TEST(op_pictures)
{
    struct wp_message m = msg("s@x.dom", RCPTS("r@y.dom"), HDRS({"Subject", "Quarterly REPORT for Q3 2024"}));
    YES(&m, "Subject", "is", "quarterly report for q3 2024");
    YES(&m, "Subject", "is", "*report*");
    YES(&m, "Subject", "is", "Q*y*R*T*Q3*");
    YES(&m, "Subject", "is", "*2024");
    NO(&m, "Subject", "is", "*2023");
    NO(&m, "Subject", "is", "report");
    YES(&m, "Subject", "is", "********"); /* 8 stars, the most a picture may have */
    /* comma lists: spaces around items are trimmed, empty items ignored */
    YES(&m, "Subject", "in", " , *nothing*,  *q3* ,");
    NO(&m, "Subject", "in", "*q4*,*2023*");
    YES(&m, "Subject", "not in", "*q4*,*2023*");
    NO(&m, "Subject", "not in", "*q4*,*Q3*");
    /* "is" takes the whole parameter as one picture, commas included */
    struct wp_message c = msg("s@x.dom", RCPTS("r@y.dom"), HDRS({"Subject", "a,b"}));
    YES(&c, "Subject", "is", "a,b");
    NO(&c, "Subject", "in", "a,b");
    YES(&c, "Subject", "in", "a*,x");
}
END_TEST

/* ---------------------------------------------------------------- priorities and control */

START_TEST(priorities_and_order)
{
    struct wp_message m = msg("s@x.dom", RCPTS("r@y.dom"), NULL);
    const char *text =
        "rules = (\n"
        "  { name = \"low\"; priority = 1; action = ( (\"Add Header\", \"X-Low: 1\") ); },\n"
        "  { name = \"p5a\"; priority = 5; action = ( (\"Add Header\", \"X-P5: a\") ); },\n"
        "  { name = \"off\"; priority = \"disabled\"; action = ( (\"Discard\") ); },\n"
        "  { name = \"top\"; priority = 9; action = ( (\"Add Header\", \"X-Top: 1\") ); },\n"
        "  { name = \"default\"; action = ( (\"Add Header\", \"X-P5: default\") ); },\n"
        "  { name = \"p5b\"; priority = 5; action = ( (\"Add Header\", \"X-P5: b\") ); },\n"
        "  { name = \"p2\"; priority = 2; action = ( (\"Add Header\", \"X-P2: 1\") ); },\n"
        "  { name = \"off2\"; priority = \"Disabled\"; action = ( (\"Reject with\", \"no\") ); }\n"
        ");";
    struct wp_rules *r = rules_ok(text, &no_router);
    ck_assert_uint_eq(wp_rules_count(r), 6);
    struct wp_outcome out;
    wp_rules_evaluate(r, &no_router, &m, &out);
    static const char *const order[] = {"top", "p5a", "default", "p5b", "p2", "low"};
    ck_assert_uint_eq(out.nfired, 6);
    for (size_t i = 0; i < 6; i++)
        ck_assert_str_eq(out.fired[i], order[i]);
    static const char *const hdrs[] = {"X-Top: 1", "X-P5: a", "X-P5: default",
                                       "X-P5: b",  "X-P2: 1", "X-Low: 1"};
    ck_assert_uint_eq(out.nheaders, 6);
    for (size_t i = 0; i < 6; i++)
        ck_assert_str_eq(field_line(&out.add_headers[i]), hdrs[i]);
    ck_assert(!out.discard && !out.reject);
    ck_assert_uint_eq(out.nlog, 6);
    wp_outcome_free(&out);
    wp_rules_free(r);
    /* no rules at all */
    struct wp_rules *none = rules_ok("rules = ( );", &no_router);
    ck_assert_uint_eq(wp_rules_count(none), 0);
    wp_rules_evaluate(none, &no_router, &m, &out);
    ck_assert_uint_eq(out.nfired, 0);
    wp_outcome_free(&out);
    wp_rules_free(none);
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_rules *nul = wp_rules_load(NULL, "x.conf", &no_router, &err);
    ck_assert(nul && err.count == 0 && wp_rules_count(nul) == 0);
    wp_rules_free(nul);
    wp_errors_free(&err);
    wp_rules_evaluate(NULL, &no_router, &m, &out);
    ck_assert_uint_eq(out.nfired, 0);
    wp_outcome_free(&out);
}
END_TEST

START_TEST(conditions_all_must_hold)
{
    const char *text = "rules = ( { name = \"both\"; data = ( (\"From\", \"is\", \"*@a.dom\"),\n"
                       "  (\"Any Recipient\", \"is\", \"*@b.dom\") ); action = ( (\"Discard\") ); } );";
    struct wp_outcome out;
    struct wp_message m = msg("s@x.dom", RCPTS("r@b.dom"), HDRS({"From", "u@a.dom"}));
    eval_text(text, &no_router, &m, &out);
    ck_assert(out.discard);
    wp_outcome_free(&out);
    struct wp_message m2 = msg("s@x.dom", RCPTS("r@c.dom"), HDRS({"From", "u@a.dom"}));
    eval_text(text, &no_router, &m2, &out);
    ck_assert(!out.discard && out.nfired == 0);
    wp_outcome_free(&out);
    struct wp_message m3 = msg("s@x.dom", RCPTS("r@b.dom"), HDRS({"From", "u@c.dom"}));
    eval_text(text, &no_router, &m3, &out);
    ck_assert(!out.discard && out.nfired == 0);
    wp_outcome_free(&out);
    /* a rule without conditions always fires */
    eval_text("rules = ( { name = \"always\"; data = ( ); action = ( (\"Add Header\", \"X-A: 1\") ); },"
              " { name = \"nodata\"; action = ( (\"Add Header\", \"X-B: 1\") ); } );",
              &no_router, &m3, &out);
    ck_assert_uint_eq(out.nfired, 2);
    wp_outcome_free(&out);
}
END_TEST

START_TEST(stop_processing)
{
    struct wp_message m = msg("s@x.dom", RCPTS("r@y.dom"), NULL);
    struct wp_outcome out;
    eval_text("rules = (\n"
              " { name = \"first\"; priority = 8; action = ( (\"Add Header\", \"X-1: a\"), (\"Mirror to\", "
              "\"copy@x.dom\"),\n"
              "   (\"Stop Processing\") ); },\n"
              " { name = \"second\"; priority = 7; action = ( (\"Add Header\", \"X-2: b\") ); } );",
              &no_router, &m, &out);
    ck_assert_uint_eq(out.nfired, 1);
    ck_assert_str_eq(out.fired[0], "first");
    ck_assert_uint_eq(out.nheaders, 1);
    ck_assert_str_eq(field_line(&out.add_headers[0]), "X-1: a");
    ck_assert_uint_eq(out.nadd, 1);
    ck_assert(!out.reject && !out.discard && !out.drop_recipients);
    wp_outcome_free(&out);
    /* a rule that does not fire does not stop anything */
    eval_text("rules = (\n"
              " { name = \"first\"; priority = 8; data = ( (\"Subject\", \"is\", \"never\") ); action = ( "
              "(\"Stop Processing\") ); },\n"
              " { name = \"second\"; priority = 7; action = ( (\"Add Header\", \"X-2: b\") ); } );",
              &no_router, &m, &out);
    ck_assert_uint_eq(out.nfired, 1);
    ck_assert_str_eq(out.fired[0], "second");
    wp_outcome_free(&out);
}
END_TEST

START_TEST(reject_and_discard_end_processing)
{
    struct wp_message m = msg("s@x.dom", RCPTS("r@y.dom"), NULL);
    struct wp_outcome out;
    eval_text("rules = (\n"
              " { name = \"tag\"; priority = 9; action = ( (\"Add Header\", \"X-Seen: 1\") ); },\n"
              " { name = \"no\"; priority = 6; action = ( (\"Reject with\", \"Go away: policy 5.7.1\"),\n"
              "   (\"Add Header\", \"X-After: reject\") ); },\n"
              " { name = \"later\"; priority = 2; action = ( (\"Discard\") ); } );",
              &no_router, &m, &out);
    ck_assert(out.reject);
    ck_assert_str_eq(out.reject_text, "Go away: policy 5.7.1");
    ck_assert(!out.discard);
    ck_assert_uint_eq(out.nfired, 2);
    ck_assert_str_eq(out.fired[1], "no");
    ck_assert_uint_eq(out.nheaders, 1); /* nothing after Reject with */
    ck_assert_str_eq(field_line(&out.add_headers[0]), "X-Seen: 1");
    wp_outcome_free(&out);

    eval_text("rules = (\n"
              " { name = \"drop\"; priority = 6; action = ( (\"Discard\"), (\"Add Header\", \"X-After: "
              "discard\") ); },\n"
              " { name = \"later\"; priority = 2; action = ( (\"Reject with\", \"x\") ); } );",
              &no_router, &m, &out);
    ck_assert(out.discard);
    ck_assert(!out.reject);
    ck_assert_ptr_null(out.reject_text);
    ck_assert_uint_eq(out.nfired, 1);
    ck_assert_uint_eq(out.nheaders, 0);
    wp_outcome_free(&out);

    /* Reject with no text: the default ("") */
    eval_text("rules = ( { name = \"r\"; action = ( (\"Reject with\") ); } );", &no_router, &m, &out);
    ck_assert(out.reject);
    ck_assert_str_eq(out.reject_text, "");
    wp_outcome_free(&out);
}
END_TEST

/* ---------------------------------------------------------------- actions */

/* CommuniGate's own spellings: priorities (0/Inactive, Highest/Lowest,
 * numbers as strings), long day names and "25 Dec 2004" dates, Header
 * Field lists whose elements name their own fields, addresses without a
 * domain in actions (the main domain). */
START_TEST(cgp_forms)
{
    struct wp_message m =
        msg("s@x.dom", RCPTS("r@y.dom"), HDRS({"X-Mailer", "Outlook 16"}, {"X-Spam", "yes"}));
    const char *text =
        "rules = (\n"
        "  { name = \"inactive\"; priority = 0; action = ( (\"Discard\") ); },\n"
        "  { name = \"Inactive\"; priority = \"Inactive\"; action = ( (\"Discard\") ); },\n"
        "  { name = \"low\"; priority = \"Lowest\"; action = ( (\"Add Header\", \"X-A: low\") ); },\n"
        "  { name = \"seven\"; priority = \"7\"; action = ( (\"Add Header\", \"X-A: seven\") ); },\n"
        "  { name = \"high\"; priority = \"Highest\"; action = ( (\"Add Header\", \"X-A: high\") ); }\n"
        ");";
    struct wp_rules *r = rules_ok(text, &no_router);
    ck_assert_uint_eq(wp_rules_count(r), 3);
    struct wp_outcome out;
    wp_rules_evaluate(r, &no_router, &m, &out);
    ck_assert_uint_eq(out.nfired, 3);
    ck_assert_str_eq(out.fired[0], "high");
    ck_assert_str_eq(out.fired[1], "seven");
    ck_assert_str_eq(out.fired[2], "low");
    wp_outcome_free(&out);
    wp_rules_free(r);

    /* NOW is Wednesday 2024-05-15 */
    YES(&m, "Current Day", "is", "Wednesday");
    YES(&m, "Current Day", "is", "WEDNESDAY");
    NO(&m, "Current Day", "in", "Saturday, Sunday");
    YES(&m, "Current Day", "greater than", "Monday");
    NO(&m, "Current Day", "less than", "Tuesday");
    YES(&m, "Current Date", "is", "15 May 2024");
    YES(&m, "Current Date", "in", "25 Dec 2024, 15-May-2024");
    NO(&m, "Current Date", "is", "16 May 2024");
    YES(&m, "Current Date", "is", "* May 2024");
    NO(&m, "Current Date", "is", "* Dec 2024");
    YES(&m, "Current Date", "not in", "* Dec *, 2023-*");
    NO(&m, "Current Date", "not in", "* May *");
    YES(&m, "Current Date", "greater than", "14 May 2024");
    NO(&m, "Current Date", "less than", "1 Jan 2024");

    /* each element names its own field; one without a name keeps the last */
    YES(&m, "Header Field", "in", "X-Other: *, X-Spam: yes");
    YES(&m, "Header Field", "in", "X-Mailer: *Mutt*, *Outlook*");
    NO(&m, "Header Field", "in", "X-Mailer: *Mutt*, X-Spam: no");
    NO(&m, "Header Field", "not in", "X-Mailer: *Mutt*, X-Spam: yes");
    YES(&m, "Header Field", "not in", "X-Mailer: *Mutt*, X-Spam: no");
    /* the later field's picture is not matched against the first field */
    NO(&m, "Header Field", "in", "X-Spam: no, X-Other: yes");

    /* CommuniGate elements without a faithful milter meaning: refused,
     * naming the replacement; in a disabled rule a warning, and the rest
     * loads */
    char *all = rules_fail(
        "rules = (\n { name = \"dkim\";\n action = ( (\"ExternalFilter\", \"dkim-signer\") ); } );",
        &no_router);
    ck_assert_msg(
        strstr(all, "test.conf:3: action 'ExternalFilter': Waypost does not carry it out -> run the filter "
                    "as a milter (DKIM signing: opendkim"),
        "%s", all);
    free(all);
    all = rules_fail("rules = (\n { name = \"att\";\n data = ( (\"Attachment\", \"is\", \"*.exe\") );\n"
                     " action = ( (\"Discard\") ); } );",
                     &no_router);
    ck_assert_msg(strstr(all, "test.conf:3: condition 'Attachment': Waypost does not test it -> Postfix "
                              "mime_header_checks"),
                  "%s", all);
    free(all);
    struct wp_errors err;
    wp_errors_init(&err);
    r = load_text("rules = (\n { name = \"off\"; priority = \"Inactive\";\n"
                  " action = ( (\"Execute\", \"[STDIN] /bin/x\"), (\"Mark\", \"Seen\"), (\"Discard\") ); },\n"
                  " { name = \"on\"; action = ( (\"Add Header\", \"X-On: 1\") ); } );",
                  &no_router, &err);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(err.count, 0);
    ck_assert_uint_eq(err.nwarn, 2);
    ck_assert_msg(strstr(err.warns[0], "test.conf:3: action 'Execute' left out of this disabled rule") &&
                      strstr(err.warns[0], "content_filter"),
                  "%s", err.warns[0]);
    ck_assert_msg(strstr(err.warns[1], "action 'Mark' left out of this disabled rule") &&
                      strstr(err.warns[1], "imap4flags"),
                  "%s", err.warns[1]);
    ck_assert_uint_eq(wp_rules_count(r), 1);
    wp_rules_free(r);
    wp_errors_free(&err);

    /* a group recipient's route, as Any Route sees it before Postfix expands it */
    {
        struct wp_errors gerr;
        wp_errors_init(&gerr);
        struct wp_router *gr = wp_router_new("company.dom", "test", NULL);
        static const char *const groups[] = {"team: alice, x@y.dom", NULL};
        wp_router_add_domain(
            gr, &(struct wp_domain_spec){.name = "company.dom", .accounts = "list:alice", .groups = groups},
            &gerr);
        wp_router_table_text(gr, "", "inline", &gerr);
        wp_router_finish(gr, &gerr);
        ck_assert_uint_eq(gerr.count, 0);
        struct wp_rules_env genv = {gr, "%a+%m@%d"};
        struct wp_message gm = msg("s@x.dom", RCPTS("Team@company.dom"), NULL);
        YES_E(&genv, &gm, "Any Route", "is", "GROUP()team@company.dom");
        NO_E(&genv, &gm, "Any Route", "is", "SMTP(*");
        wp_router_free(gr);
        wp_errors_free(&gerr);
    }

    /* "Redirect to postmaster": the main domain */
    struct wp_router *router = sample_router();
    struct wp_rules_env env = {router, "%a+%m@%d"};
    eval_text("rules = ( { name = \"r\"; action = ( (\"Redirect to\", \"postmaster, x@y.dom\"), "
              "(\"Mirror to\", \"archive\") ); } );",
              &env, &m, &out);
    ck_assert(out.drop_recipients);
    ck_assert(has_str(out.add_rcpts, out.nadd, "postmaster@company.dom"));
    ck_assert(has_str(out.add_rcpts, out.nadd, "x@y.dom"));
    ck_assert(has_str(out.add_rcpts, out.nadd, "archive@company.dom"));
    wp_outcome_free(&out);
    wp_router_free(router);
}
END_TEST

START_TEST(act_mirror_redirect_forward)
{
    struct wp_message m = msg("s@x.dom", RCPTS("r@y.dom"), NULL);
    struct wp_outcome out;
    eval_text("rules = ( { name = \"m\"; action = ( (\"Mirror to\", \"archive@x.dom, audit@y.dom\") ); } );",
              &no_router, &m, &out);
    ck_assert(!out.drop_recipients && !out.forwarded && !out.reject && !out.discard);
    ck_assert_uint_eq(out.nadd, 2);
    ck_assert_str_eq(out.add_rcpts[0], "archive@x.dom");
    ck_assert_str_eq(out.add_rcpts[1], "audit@y.dom");
    ck_assert_str_eq(out.fired[0], "m");
    wp_outcome_free(&out);

    eval_text("rules = ( { name = \"r\"; action = ( (\"Redirect to\", \"new@z.dom\") ); } );", &no_router, &m,
              &out);
    ck_assert(out.drop_recipients);
    ck_assert(!out.forwarded);
    ck_assert_uint_eq(out.nadd, 1);
    ck_assert_str_eq(out.add_rcpts[0], "new@z.dom");
    wp_outcome_free(&out);

    eval_text("rules = ( { name = \"f\"; action = ( (\"Forward to\", \"a@z.dom,b@z.dom\") ); } );",
              &no_router, &m, &out);
    ck_assert(out.drop_recipients);
    ck_assert(out.forwarded);
    ck_assert_uint_eq(out.nadd, 2);
    wp_outcome_free(&out);

    /* Mirror copies survive a later Redirect; duplicates are added once */
    eval_text(
        "rules = ( { name = \"m\"; priority = 9; action = ( (\"Mirror to\", \"copy@x.dom\") ); },\n"
        " { name = \"m2\"; priority = 8; action = ( (\"Mirror to\", \"COPY@x.dom, copy2@x.dom\") ); },\n"
        " { name = \"r\"; priority = 7; action = ( (\"Redirect to\", \"new@z.dom, copy@x.dom\") ); } );",
        &no_router, &m, &out);
    ck_assert(out.drop_recipients);
    ck_assert_uint_eq(out.nadd, 3);
    ck_assert(has_str(out.add_rcpts, out.nadd, "copy@x.dom"));
    ck_assert(has_str(out.add_rcpts, out.nadd, "copy2@x.dom"));
    ck_assert(has_str(out.add_rcpts, out.nadd, "new@z.dom"));
    ck_assert_uint_eq(out.nfired, 3);
    wp_outcome_free(&out);
}
END_TEST

START_TEST(act_store_in)
{
    struct wp_message m = msg("s@x.dom", RCPTS("r@y.dom"), NULL);
    struct wp_outcome out;
    /* no router: the domain is "localhost" */
    eval_text("rules = ( { name = \"s\"; action = ( (\"Store in\", \"~security/outgoing\") ); } );",
              &no_router, &m, &out);
    ck_assert_uint_eq(out.nadd, 1);
    ck_assert_str_eq(out.add_rcpts[0], "security+outgoing@localhost");
    ck_assert(!out.drop_recipients);
    wp_outcome_free(&out);
    /* with the sample configuration: its main domain and the default store_address */
    struct wp_snapshot *s = sample();
    ck_assert_str_eq(wp_milter_conf(s)->rules_env.store_address, "%a+%m@%d");
    eval_text("rules = ( { name = \"s\"; action = ( (\"Store in\", \"~security/outgoing\"),\n"
              "  (\"Store in\", \"~bob@other.dom/Archive\") ); } );",
              &wp_milter_conf(s)->rules_env, &m, &out);
    ck_assert_uint_eq(out.nadd, 2);
    ck_assert_str_eq(out.add_rcpts[0], "security+outgoing@company.dom");
    ck_assert_str_eq(out.add_rcpts[1], "bob+Archive@other.dom");
    ck_assert(!out.drop_recipients);
    wp_outcome_free(&out);
    wp_snapshot_unref(s);
    /* another store_address form */
    struct wp_rules_env env = {NULL, "%m.%a%%x@%d"};
    eval_text("rules = ( { name = \"s\"; action = ( (\"Store in\", \"~sec@corp.dom/out\") ); } );", &env, &m,
              &out);
    ck_assert_str_eq(out.add_rcpts[0], "out.sec%x@corp.dom");
    wp_outcome_free(&out);
}
END_TEST

START_TEST(act_add_header)
{
    struct wp_message m = msg("s@x.dom", RCPTS("r@y.dom"), NULL);
    struct wp_outcome out;
    eval_text("rules = ( { name = \"h\"; action = ( (\"Add Header\", \"X-Scanned: yes\\nX-Policy: p1\\n\"),\n"
              " (\"Add Header\", \"X-Third: 3\") ); } );",
              &no_router, &m, &out);
    ck_assert_uint_eq(out.nheaders, 3);
    ck_assert_str_eq(field_line(&out.add_headers[0]), "X-Scanned: yes");
    ck_assert_str_eq(field_line(&out.add_headers[1]), "X-Policy: p1");
    ck_assert_str_eq(field_line(&out.add_headers[2]), "X-Third: 3");
    ck_assert_uint_eq(out.nfired, 1);
    wp_outcome_free(&out);
}
END_TEST

START_TEST(act_tag_subject)
{
    struct wp_outcome out;
    struct wp_message m = msg("s@x.dom", RCPTS("r@y.dom"), HDRS({"Subject", "Hello there"}));
    eval_text("rules = ( { name = \"t\"; action = ( (\"Tag Subject\", \"[EXT]\") ); } );", &no_router, &m,
              &out);
    ck_assert_str_eq(out.subject, "[EXT] Hello there");
    wp_outcome_free(&out);
    /* not twice: two rules with the same tag */
    eval_text(
        "rules = ( { name = \"t1\"; action = ( (\"Tag Subject\", \"[EXT]\") ); },\n"
        " { name = \"t2\"; action = ( (\"Tag Subject\", \"[EXT]\"), (\"Tag Subject\", \"[SPAM]\") ); } );",
        &no_router, &m, &out);
    ck_assert_str_eq(out.subject, "[SPAM] [EXT] Hello there");
    ck_assert_uint_eq(out.nfired, 2);
    wp_outcome_free(&out);
    /* the subject already carries the tag: unchanged */
    struct wp_message t = msg("s@x.dom", RCPTS("r@y.dom"), HDRS({"Subject", "Re: [EXT] Hello"}));
    eval_text("rules = ( { name = \"t\"; action = ( (\"Tag Subject\", \"[EXT]\") ); } );", &no_router, &t,
              &out);
    ck_assert_ptr_null(out.subject);
    ck_assert_uint_eq(out.nfired, 1);
    wp_outcome_free(&out);
    /* an encoded Subject is tagged in decoded form */
    struct wp_message e = msg("s@x.dom", RCPTS("r@y.dom"), HDRS({"Subject", "=?utf-8?q?Gr=C3=BC=C3=9Fe?="}));
    eval_text("rules = ( { name = \"t\"; action = ( (\"Tag Subject\", \"[EXT]\") ); } );", &no_router, &e,
              &out);
    ck_assert_str_eq(out.subject, "[EXT] Grüße");
    wp_outcome_free(&out);
    struct wp_message w =
        msg("s@x.dom", RCPTS("r@y.dom"),
            HDRS({"Subject",
                  "=?UTF-8?B?UXVhcnRlcmx5?=\r\n =?UTF-8?B?IHJlcG9ydA==?=\r\n =?UTF-8?B?IGZvciBRMw==?="}));
    eval_text("rules = ( { name = \"t\"; action = ( (\"Tag Subject\", \"[EXT]\") ); } );", &no_router, &w,
              &out);
    ck_assert_str_eq(out.subject, "[EXT] Quarterly report for Q3");
    wp_outcome_free(&out);
    /* no Subject at all */
    struct wp_message n = msg("s@x.dom", RCPTS("r@y.dom"), NULL);
    eval_text("rules = ( { name = \"t\"; action = ( (\"Tag Subject\", \"[EXT]\") ); } );", &no_router, &n,
              &out);
    ck_assert_ptr_nonnull(out.subject);
    ck_assert(strncmp(out.subject, "[EXT]", 5) == 0);
    wp_outcome_free(&out);
}
END_TEST

START_TEST(act_reply)
{
    struct wp_message m = msg("s@x.dom", RCPTS("r@y.dom"), NULL);
    struct wp_outcome out;
    eval_text("rules = ( { name = \"away\"; action = ( (\"Reply with\", \"I am away.\"),\n"
              " (\"Reply to All with\", \"+Subject: Noted\\n\\nWe got it.\") ); } );",
              &no_router, &m, &out);
    ck_assert_uint_eq(out.nreplies, 2);
    ck_assert_str_eq(out.replies[0].text, "I am away.");
    ck_assert(!out.replies[0].to_all);
    ck_assert_str_eq(out.replies[1].text, "+Subject: Noted\n\nWe got it.");
    ck_assert(out.replies[1].to_all);
    ck_assert(!out.reject && !out.discard && !out.drop_recipients && out.nadd == 0);
    ck_assert_uint_eq(out.nfired, 1);
    ck_assert_str_eq(out.fired[0], "away");
    ck_assert_uint_eq(out.nlog, 2);
    wp_outcome_free(&out);
}
END_TEST

START_TEST(act_names_case_insensitive)
{
    struct wp_message m = msg("s@x.dom", RCPTS("r@y.dom"), HDRS({"FROM", "a@b.dom"}));
    struct wp_outcome out;
    eval_text("rules = ( { name = \"ci\"; data = ( (\"from\", \"IS\", \"A@B.DOM\"), (\"any recipient\", "
              "\"Not In\", \"x@y.dom\") );\n"
              " action = ( (\"add header\", \"X-Ci: 1\"), (\"STOP PROCESSING\") ); } );",
              &no_router, &m, &out);
    ck_assert_uint_eq(out.nfired, 1);
    ck_assert_uint_eq(out.nheaders, 1);
    wp_outcome_free(&out);
}
END_TEST

/* ---------------------------------------------------------------- load errors */

static void expect_error(const char *text, const char *want)
{
    char *all = rules_fail(text, &no_router);
    ck_assert_msg(strstr(all, want) != NULL, "want \"%s\" in:\n%s", want, all);
    free(all);
}

#define ONE_RULE(data, action)                                                                               \
    "rules = (\n  { name = \"bad\";\n    data = ( " data " );\n    action = ( " action " ); } );\n"

START_TEST(load_errors)
{
    /* line 3 carries data, line 4 action */
    expect_error(ONE_RULE("(\"Frm\", \"is\", \"x\")", "(\"Discard\")"),
                 "test.conf:3: unknown condition 'Frm'");
    expect_error(ONE_RULE("(\"From\", \"equals\", \"x\")", "(\"Discard\")"),
                 "test.conf:3: unknown operation 'equals'");
    expect_error(ONE_RULE("(\"From\", \"is\", \"x\")", "(\"Explode\")"),
                 "test.conf:4: unknown action 'Explode'");
    expect_error(ONE_RULE("(\"Message Size\", \"is\", \"10K\")", "(\"Discard\")"),
                 "test.conf:3: Message Size takes 'greater than' or 'less than'");
    expect_error(ONE_RULE("(\"Message Size\", \"in\", \"10K\")", "(\"Discard\")"),
                 "test.conf:3: Message Size takes");
    expect_error(ONE_RULE("(\"From\", \"greater than\", \"x\")", "(\"Discard\")"),
                 "test.conf:3: 'greater than' cannot be used with 'From'");
    expect_error(ONE_RULE("(\"Source\", \"less than\", \"trusted\")", "(\"Discard\")"),
                 "cannot be used with");
    static const char *const bad_sizes[] = {"10Q",
                                            "",
                                            "K",
                                            "-1",
                                            "10 K",
                                            "1.5M",
                                            "10KB",
                                            "99999999999999999999",
                                            "9999999999999M",
                                            "9223372036854775807K"};
    for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++) {
        char *q = quote(bad_sizes[i]);
        char *text = wp_asprintf(ONE_RULE("(\"Message Size\", \"greater than\", %s)", "(\"Discard\")"), q);
        char *want = wp_asprintf("test.conf:3: '%s' is not a size", bad_sizes[i]);
        expect_error(text, want);
        free(want);
        free(text);
        free(q);
    }
    expect_error(
        ONE_RULE("(\"From\", \"is\", \"x\")", "(\"Store in\", \"security/outgoing\")"),
        "test.conf:4: Store in 'security/outgoing': Store in takes a foreign mailbox name ~account/mailbox");
    expect_error(ONE_RULE("", "(\"Store in\", \"~security\")"), "test.conf:4: Store in '~security'");
    expect_error(ONE_RULE("", "(\"Store in\", \"~/outgoing\")"), "test.conf:4: Store in '~/outgoing'");
    expect_error(ONE_RULE("", "(\"Store in\", \"~security/\")"), "test.conf:4: Store in '~security/'");
    expect_error(ONE_RULE("", "(\"Reject with\", \"line one\\nline two\")"),
                 "test.conf:4: the Reject with text must be one line");
    expect_error(ONE_RULE("", "(\"Reject with\", \"bad\\r\")"), "must be one line");
    expect_error(ONE_RULE("(\"From\")", "(\"Discard\")"),
                 "test.conf:3: condition 'From' needs an operation and a parameter");
    expect_error(ONE_RULE("(\"From\", \"is\")", "(\"Discard\")"), "needs an operation and a parameter");
    expect_error(ONE_RULE("(\"From\", \"is\", \"a\", \"b\")", "(\"Discard\")"), "a condition is a list");
    expect_error(ONE_RULE("(\"From\", \"is\", 5)", "(\"Discard\")"),
                 "test.conf:3: condition elements must be strings");
    /* a condition that is not a list */
    expect_error(ONE_RULE("\"From\"", "(\"Discard\")"), "test.conf:3: a condition is a list");
    expect_error(ONE_RULE("\"From\", \"is\", \"x\"", "(\"Discard\")"), "a condition is a list");
    expect_error(ONE_RULE("", "\"Discard\""), "test.conf:4: an action is a list");
    expect_error(ONE_RULE("", "(\"Discard\", \"now\")"), "test.conf:4: action 'Discard' takes no parameter");
    expect_error(ONE_RULE("", "(\"Stop Processing\", \"x\")"), "takes no parameter");
    expect_error(ONE_RULE("", "(\"Mirror to\")"), "test.conf:4: action 'Mirror to' needs a parameter");
    expect_error(ONE_RULE("", "(\"Mirror to\", \"\")"), "needs a parameter");
    expect_error(ONE_RULE("", "(\"Mirror to\", \" , \")"), "needs addresses");
    expect_error(ONE_RULE("", "(\"Redirect to\", \"nodomain\")"),
                 "test.conf:4: 'nodomain' is not an address");
    expect_error(ONE_RULE("", "(\"Forward to\", \"a@b.dom, <<bad\")"), "is not an address");
    expect_error(ONE_RULE("", "(\"Add Header\", \"no colon here\")"),
                 "test.conf:4: Add Header takes \"Field: value\" lines");
    expect_error(ONE_RULE("", "(\"Add Header\", \"X-A: 1\\n\\nX-B: 2\")"), "Add Header takes");
    expect_error(ONE_RULE("", "(\"Add Header\", \"Bad Name: 1\")"), "bad header field name in Add Header");
    expect_error(ONE_RULE("", "(\"Tag Subject\")"), "needs a parameter");
    expect_error(ONE_RULE("", "(\"Reply with\", \"\")"), "needs a parameter");
    expect_error(ONE_RULE("(\"Header Field\", \"is\", \"no colon\")", "(\"Discard\")"),
                 "test.conf:3: Header Field takes \"Field-Name: picture\"");
    expect_error(ONE_RULE("(\"Header Field\", \"is\", \": x\")", "(\"Discard\")"), "Header Field takes");
    expect_error(ONE_RULE("(\"Human Generated\", \"in\")", "(\"Discard\")"),
                 "test.conf:3: Human Generated takes no operation");
    expect_error(ONE_RULE("(\"Subject\", \"is\", \"*a*b*c*d*e*f*g*h*i\")", "(\"Discard\")"),
                 "test.conf:3: too many '*'");
    /* priority out of range (line 2 carries it) */
    expect_error("rules = (\n { name = \"p\"; priority = 10; } );",
                 "test.conf:2: rule 'p': priority must be 0..9, \"disabled\", \"Inactive\", \"Highest\" or "
                 "\"Lowest\"");
    expect_error("rules = (\n { name = \"p\"; priority = -3; } );", "priority must be 0..9");
    expect_error("rules = (\n { name = \"p\"; priority = \"10\"; } );", "priority must be 0..9");
    /* Current Day / Current Date spellings that could never match */
    expect_error(ONE_RULE("(\"Current Day\", \"is\", \"Wednes\")", "(\"Discard\")"),
                 "test.conf:3: Current Day 'Wednes' never matches: not a day name");
    expect_error(ONE_RULE("(\"Current Date\", \"in\", \"25 Dec 2004, Christmas\")", "(\"Discard\")"),
                 "test.conf:3: Current Date 'Christmas' never matches: not a date");
    /* an address without a domain needs the Router's main domain */
    expect_error(ONE_RULE("(\"Subject\", \"is\", \"x\")", "(\"Redirect to\", \"postmaster\")"),
                 "test.conf:4: 'postmaster' is not an address: no domain");
    expect_error("rules = (\n { name = \"p\"; priority = \"high\"; } );",
                 "test.conf:2: rule 'p': priority must be");
    expect_error("rules = (\n { name = \"p\"; priority = 5.5; } );", "priority must be");
    expect_error("rules = (\n { priority = 5; } );", "test.conf:2: a rule needs a name");
    expect_error("rules = (\n { name = \"\"; } );", "a rule needs a name");
    /* every problem is reported, not only the first */
    char *all = rules_fail("rules = (\n"
                           " { name = \"a\"; data = ( (\"Frm\", \"is\", \"x\") ); },\n"
                           " { name = \"b\"; action = ( (\"Explode\") ); },\n"
                           " { name = \"c\"; priority = 11; } );",
                           &no_router);
    ck_assert_msg(strstr(all, "test.conf:2: unknown condition") &&
                      strstr(all, "test.conf:3: unknown action") && strstr(all, "test.conf:4: rule 'c'"),
                  "%s", all);
    free(all);
    /* a bad store_address form */
    struct wp_rules_env env = {NULL, "%a+%q@%d"};
    all = rules_fail(ONE_RULE("", "(\"Store in\", \"~a/b\")"), &env);
    ck_assert_msg(strstr(all, "milter.store_address knows %a, %m, %d"), "%s", all);
    free(all);
}
END_TEST

/* Through the real loader: file name and line of a waypost.conf. */
START_TEST(load_errors_in_file)
{
    char dir[] = "/tmp/wp-rules-XXXXXX";
    ck_assert(mkdtemp(dir));
    char conf[256];
    snprintf(conf, sizeof(conf), "%s/w.conf", dir);
    FILE *f = fopen(conf, "w");
    ck_assert(f);
    fputs("router: { main_domain = \"corp.dom\";\n"
          "  domains = ( { name = \"corp.dom\"; accounts = \"list:sec\"; } ); };\n"
          "milter: { store_address = \"%a-%m@store.%d\"; };\n"
          "rules = (\n"
          "  { name = \"ok\"; action = ( (\"Store in\", \"~sec/box\") ); },\n"
          "  { name = \"bad\"; data = ( (\"Message Size\", \"is\", \"5\") ); }\n"
          ");\n",
          f);
    fclose(f);
    struct wp_errors err;
    wp_errors_init(&err);
    ck_assert_ptr_null(wp_snapshot_load(conf, wp_sections_all, &err));
    ck_assert_uint_eq(err.count, 1);
    char want[300];
    snprintf(want, sizeof(want), "%s:6: Message Size takes 'greater than' or 'less than'", conf);
    ck_assert_str_eq(err.msgs[0], want);
    wp_errors_free(&err);
    /* fixed, it loads; Store in uses milter.store_address and the main domain */
    f = fopen(conf, "w");
    fputs("router: { main_domain = \"corp.dom\";\n"
          "  domains = ( { name = \"corp.dom\"; accounts = \"list:sec\"; } ); };\n"
          "milter: { store_address = \"%a-%m@store.%d\"; };\n"
          "rules = ( { name = \"ok\"; action = ( (\"Store in\", \"~sec/box\") ); } );\n",
          f);
    fclose(f);
    wp_errors_init(&err);
    struct wp_snapshot *s = wp_snapshot_load(conf, wp_sections_all, &err);
    ck_assert_uint_eq(err.count, 0);
    wp_errors_free(&err);
    ck_assert(s && wp_rules_count(wp_milter_conf(s)->rules) == 1);
    struct wp_message m = msg("a@b.dom", RCPTS("c@d.dom"), NULL);
    struct wp_outcome out;
    wp_rules_evaluate(wp_milter_conf(s)->rules, &wp_milter_conf(s)->rules_env, &m, &out);
    ck_assert_uint_eq(out.nadd, 1);
    ck_assert_str_eq(out.add_rcpts[0], "sec-box@store.corp.dom");
    wp_outcome_free(&out);
    wp_snapshot_unref(s);
    unlink(conf);
    rmdir(dir);
}
END_TEST

/* ---------------------------------------------------------------- the seed's examples */

START_TEST(seed_copy_outgoing)
{
    struct wp_snapshot *s = sample();
    ck_assert_uint_eq(wp_rules_count(wp_milter_conf(s)->rules), 3);
    struct wp_outcome out;
    static const char *const senders[] = {"joe@domain1.dom", "Ann@DOMAIN2.dom"};
    for (size_t i = 0; i < 2; i++) {
        struct wp_message m = msg(senders[i], RCPTS("someone@elsewhere.org"), HDRS({"From", "x@y.dom"}));
        wp_rules_evaluate(wp_milter_conf(s)->rules, &wp_milter_conf(s)->rules_env, &m, &out);
        ck_assert_uint_eq(out.nfired, 1);
        ck_assert_str_eq(out.fired[0], "Copy outgoing mail");
        ck_assert_uint_eq(out.nadd, 1);
        ck_assert_str_eq(out.add_rcpts[0], "security+outgoing@company.dom");
        ck_assert(!out.reject && !out.discard && !out.drop_recipients && out.nreplies == 0);
        wp_outcome_free(&out);
    }
    /* other domains, subdomains and the header From do not count */
    static const char *const others[] = {"joe@domain3.dom", "joe@sub.domain1.dom", "", "domain1.dom"};
    for (size_t i = 0; i < 4; i++) {
        struct wp_message m =
            msg(others[i], RCPTS("someone@elsewhere.org"), HDRS({"From", "joe@domain1.dom"}));
        wp_rules_evaluate(wp_milter_conf(s)->rules, &wp_milter_conf(s)->rules_env, &m, &out);
        ck_assert_msg(out.nadd == 0 && out.nfired == 0, "fired for %s", others[i]);
        wp_outcome_free(&out);
    }
    wp_snapshot_unref(s);
}
END_TEST

START_TEST(seed_dept1_restriction)
{
    struct wp_snapshot *s = sample();
    const char *text = "You may send mail only within dept1.company.dom and to supervisor@hq.company.dom";
    struct wp_outcome out;
    /* to an outsider: rejected */
    struct wp_message m =
        msg("joe@dept1.company.dom", RCPTS("friend@outside.org"), HDRS({"From", "joe@dept1.company.dom"}));
    wp_rules_evaluate(wp_milter_conf(s)->rules, &wp_milter_conf(s)->rules_env, &m, &out);
    ck_assert(out.reject);
    ck_assert_str_eq(out.reject_text, text);
    ck_assert_uint_eq(out.nfired, 1);
    ck_assert_str_eq(out.fired[0], "Dept1 restriction");
    wp_outcome_free(&out);
    /* one outsider among allowed recipients is enough */
    struct wp_message mix =
        msg("joe@dept1.company.dom",
            RCPTS("ann@dept1.company.dom", "supervisor@hq.company.dom", "alice@company.dom"), NULL);
    wp_rules_evaluate(wp_milter_conf(s)->rules, &wp_milter_conf(s)->rules_env, &mix, &out);
    ck_assert(out.reject);
    wp_outcome_free(&out);
    /* inside dept1 and to the supervisor: allowed */
    struct wp_message in =
        msg("joe@dept1.company.dom",
            RCPTS("ann@dept1.company.dom", "SUPERVISOR@hq.company.dom", "Bob@Dept1.Company.Dom"), NULL);
    wp_rules_evaluate(wp_milter_conf(s)->rules, &wp_milter_conf(s)->rules_env, &in, &out);
    ck_assert(!out.reject);
    ck_assert_uint_eq(out.nfired, 0);
    wp_outcome_free(&out);
    /* boss may send anywhere */
    static const char *const bosses[] = {"boss@dept1.company.dom", "BOSS@dept1.company.dom"};
    for (size_t i = 0; i < 2; i++) {
        struct wp_message b = msg(bosses[i], RCPTS("friend@outside.org", "x@domain1.dom"), NULL);
        wp_rules_evaluate(wp_milter_conf(s)->rules, &wp_milter_conf(s)->rules_env, &b, &out);
        ck_assert(!out.reject);
        ck_assert_uint_eq(out.nfired, 0);
        wp_outcome_free(&out);
    }
    /* other senders are not restricted */
    struct wp_message o = msg("joe@dept2.company.dom", RCPTS("friend@outside.org"), NULL);
    wp_rules_evaluate(wp_milter_conf(s)->rules, &wp_milter_conf(s)->rules_env, &o, &out);
    ck_assert(!out.reject);
    wp_outcome_free(&out);
    /* the restriction (priority 9) ends processing before other rules */
    struct wp_message p = msg("joe@dept1.company.dom", RCPTS("prices@company.dom"), NULL);
    wp_rules_evaluate(wp_milter_conf(s)->rules, &wp_milter_conf(s)->rules_env, &p, &out);
    ck_assert(out.reject);
    ck_assert_uint_eq(out.nreplies, 0);
    ck_assert_uint_eq(out.nfired, 1);
    wp_outcome_free(&out);
    wp_snapshot_unref(s);
}
END_TEST

/* The other reading of the How-To: "Any Route is SMTP(*" lets intra-server
 * mail through and stops only mail that leaves the server. */
START_TEST(seed_dept1_by_route)
{
    struct wp_snapshot *s = sample();
    const char *text = "rules = ( { name = \"Dept1 by route\"; priority = 9;\n"
                       "  data = ( (\"Return-Path\", \"is\", \"*@dept1.company.dom\"),\n"
                       "           (\"Return-Path\", \"is not\", \"boss@dept1.company.dom\"),\n"
                       "           (\"Any Route\", \"is\", \"SMTP(*\") );\n"
                       "  action = ( (\"Reject with\", \"local mail only\"), (\"Stop Processing\") ); } );";
    struct wp_outcome out;
    struct wp_message out1 =
        msg("joe@dept1.company.dom", RCPTS("alice@company.dom", "john@friend.com"), NULL);
    eval_text(text, &wp_milter_conf(s)->rules_env, &out1, &out);
    ck_assert(out.reject);
    wp_outcome_free(&out);
    struct wp_message local = msg("joe@dept1.company.dom", RCPTS("alice@company.dom", "postmaster"), NULL);
    eval_text(text, &wp_milter_conf(s)->rules_env, &local, &out);
    ck_assert(!out.reject);
    wp_outcome_free(&out);
    struct wp_message boss = msg("boss@dept1.company.dom", RCPTS("john@friend.com"), NULL);
    eval_text(text, &wp_milter_conf(s)->rules_env, &boss, &out);
    ck_assert(!out.reject);
    wp_outcome_free(&out);
    wp_snapshot_unref(s);
}
END_TEST

START_TEST(seed_price_list)
{
    struct wp_snapshot *s = sample();
    struct wp_outcome out;
    struct wp_message m = msg("carol@customer.org", RCPTS("prices@company.dom"),
                              HDRS({"From", "Carol <carol@customer.org>"}, {"Subject", "prices?"}));
    wp_rules_evaluate(wp_milter_conf(s)->rules, &wp_milter_conf(s)->rules_env, &m, &out);
    ck_assert_uint_eq(out.nfired, 1);
    ck_assert_str_eq(out.fired[0], "Price list");
    ck_assert_uint_eq(out.nreplies, 1);
    ck_assert(!out.replies[0].to_all);
    struct wp_reply_message rm;
    const char *why = NULL;
    ck_assert(wp_reply_build(&m, &out.replies[0], "prices@company.dom", &rm, &why));
    ck_assert_uint_eq(rm.nrcpts, 1);
    ck_assert_str_eq(rm.rcpts[0], "carol@customer.org");
    ck_assert_ptr_nonnull(strstr(rm.text, "\nSubject: Our price list\n"));
    ck_assert_ptr_null(strstr(rm.text, "Re: prices?"));
    ck_assert_ptr_nonnull(strstr(rm.text, "\n\nThank you for your request. Our price list follows.\n"));
    wp_reply_message_free(&rm);
    wp_outcome_free(&out);
    /* a list message gets no reply */
    struct wp_message bulk = msg("list-bounces@lists.org", RCPTS("prices@company.dom"),
                                 HDRS({"From", "list@lists.org"}, {"Precedence", "bulk"}));
    wp_rules_evaluate(wp_milter_conf(s)->rules, &wp_milter_conf(s)->rules_env, &bulk, &out);
    ck_assert_uint_eq(out.nreplies, 0);
    ck_assert_uint_eq(out.nfired, 0);
    wp_outcome_free(&out);
    wp_snapshot_unref(s);
}
END_TEST

/* ---------------------------------------------------------------- the reply builder */

/* The header block of a built reply (malloc'ed, up to and with the last header's LF). */
static char *reply_headers(const char *text)
{
    const char *blank = strstr(text, "\n\n");
    ck_assert_ptr_nonnull(blank);
    return wp_strndup(text, (size_t)(blank - text) + 1);
}

static size_t count_str(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

START_TEST(reply_recipients)
{
    struct wp_reply r = {(char *)"Thanks.", false};
    struct wp_reply_message rm;
    const char *why = NULL;
    /* Reply-To first */
    struct wp_message m = msg("bounce@x.dom", RCPTS("me@company.dom"),
                              HDRS({"From", "Ann <ann@x.dom>"},
                                   {"Reply-To", "Team <team@x.dom>, other@x.dom"}, {"To", "me@company.dom"}));
    ck_assert(wp_reply_build(&m, &r, "me@company.dom", &rm, &why));
    ck_assert_uint_eq(rm.nrcpts, 2);
    ck_assert_str_eq(rm.rcpts[0], "team@x.dom");
    ck_assert_str_eq(rm.rcpts[1], "other@x.dom");
    wp_reply_message_free(&rm);
    /* else From */
    struct wp_message f = msg("bounce@x.dom", RCPTS("me@company.dom"), HDRS({"From", "Ann <ann@x.dom>"}));
    ck_assert(wp_reply_build(&f, &r, "me@company.dom", &rm, &why));
    ck_assert_uint_eq(rm.nrcpts, 1);
    ck_assert_str_eq(rm.rcpts[0], "ann@x.dom");
    wp_reply_message_free(&rm);
    /* else the return path */
    struct wp_message e = msg("bounce@x.dom", RCPTS("me@company.dom"), HDRS({"Subject", "x"}));
    ck_assert(wp_reply_build(&e, &r, "me@company.dom", &rm, &why));
    ck_assert_uint_eq(rm.nrcpts, 1);
    ck_assert_str_eq(rm.rcpts[0], "bounce@x.dom");
    ck_assert_ptr_nonnull(strstr(rm.text, "\nTo: <bounce@x.dom>\n"));
    wp_reply_message_free(&rm);
    /* nobody but ourselves */
    struct wp_message self = msg("me@company.dom", RCPTS("me@company.dom"), HDRS({"From", "ME@company.dom"}));
    ck_assert(!wp_reply_build(&self, &r, "me@company.dom", &rm, &why));
    ck_assert_str_eq(why, "nobody to reply to");
    ck_assert_ptr_null(rm.text);
}
END_TEST

START_TEST(reply_to_all)
{
    struct wp_reply r = {(char *)"Noted.", true};
    struct wp_reply_message rm;
    const char *why = NULL;
    struct wp_message m =
        msg("ann@x.dom", RCPTS("me@company.dom"),
            HDRS({"From", "Ann <ann@x.dom>"}, {"To", "Me <ME@Company.dom>, bob@y.dom, Ann <ANN@x.dom>"},
                 {"Cc", "carl@z.dom, Group: dan@z.dom, bob@y.dom;"}));
    ck_assert(wp_reply_build(&m, &r, "me@company.dom", &rm, &why));
    ck_assert_uint_eq(rm.nrcpts, 4);
    ck_assert_str_eq(rm.rcpts[0], "ann@x.dom");
    ck_assert_str_eq(rm.rcpts[1], "bob@y.dom");
    ck_assert_str_eq(rm.rcpts[2], "carl@z.dom");
    ck_assert_str_eq(rm.rcpts[3], "dan@z.dom");
    ck_assert(!has_str(rm.rcpts, rm.nrcpts, "ME@Company.dom"));
    char *h = reply_headers(rm.text);
    ck_assert_ptr_nonnull(strstr(h, "To: <ann@x.dom>,\n <bob@y.dom>,\n <carl@z.dom>,\n <dan@z.dom>\n"));
    free(h);
    wp_reply_message_free(&rm);
    /* plain Reply with ignores To and Cc */
    r.to_all = false;
    ck_assert(wp_reply_build(&m, &r, "me@company.dom", &rm, &why));
    ck_assert_uint_eq(rm.nrcpts, 1);
    wp_reply_message_free(&rm);
}
END_TEST

START_TEST(reply_plain_text)
{
    struct wp_reply r = {(char *)"I am away until Monday.", false};
    struct wp_reply_message rm;
    const char *why = NULL;
    struct wp_message m =
        msg("ann@x.dom", RCPTS("me@company.dom"),
            HDRS({"From", "ann@x.dom"}, {"Subject", "Lunch"}, {"Message-ID", " <abc@x.dom>"}));
    ck_assert(wp_reply_build(&m, &r, "me@company.dom", &rm, &why));
    char *h = reply_headers(rm.text);
    ck_assert(strncmp(h, "From: <me@company.dom>\n", 23) == 0);
    ck_assert_ptr_nonnull(strstr(h, "\nSubject: Re: Lunch\n"));
    ck_assert_ptr_nonnull(strstr(h, "\nAuto-Submitted: auto-replied\n"));
    ck_assert_ptr_nonnull(strstr(h, "\nIn-Reply-To: <abc@x.dom>\n"));
    ck_assert_ptr_nonnull(strstr(h, "\nReferences: <abc@x.dom>\n"));
    ck_assert_ptr_nonnull(strstr(h, "\nMessage-ID: <"));
    ck_assert_ptr_nonnull(strstr(h, "@company.dom>\n"));
    ck_assert_ptr_nonnull(strstr(h, "\nDate: "));
    ck_assert_ptr_nonnull(strstr(h, "\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"));
    ck_assert_uint_eq(count_str(h, "Subject:"), 1);
    free(h);
    const char *body = strstr(rm.text, "\n\n") + 2;
    ck_assert_str_eq(body, "I am away until Monday.\n");
    wp_reply_message_free(&rm);
    /* "Re:" is not doubled; an encoded Subject is decoded, then encoded again */
    struct wp_message re =
        msg("ann@x.dom", RCPTS("me@company.dom"), HDRS({"From", "ann@x.dom"}, {"Subject", "RE: Lunch"}));
    ck_assert(wp_reply_build(&re, &r, "me@company.dom", &rm, &why));
    ck_assert_ptr_nonnull(strstr(rm.text, "\nSubject: RE: Lunch\n"));
    wp_reply_message_free(&rm);
    struct wp_message enc = msg("ann@x.dom", RCPTS("me@company.dom"),
                                HDRS({"From", "ann@x.dom"}, {"Subject", "=?utf-8?q?Caf=C3=A9?="}));
    ck_assert(wp_reply_build(&enc, &r, "me@company.dom", &rm, &why));
    char *subj = strstr(rm.text, "\nSubject: ");
    ck_assert_ptr_nonnull(subj);
    subj += 10;
    char *line = wp_strndup(subj, strcspn(subj, "\n"));
    for (const char *c = line; *c; c++)
        ck_assert_msg((unsigned char)*c < 0x80, "raw 8-bit Subject: %s", line);
    char *dec = wp_header_decode(line);
    ck_assert_str_eq(dec, "Re: Café");
    free(dec);
    free(line);
    wp_reply_message_free(&rm);
    /* no Subject */
    struct wp_message none = msg("ann@x.dom", RCPTS("me@company.dom"), HDRS({"From", "ann@x.dom"}));
    ck_assert(wp_reply_build(&none, &r, "me@company.dom", &rm, &why));
    ck_assert_ptr_nonnull(strstr(rm.text, "\nSubject: Re:"));
    wp_reply_message_free(&rm);
}
END_TEST

START_TEST(reply_header_block)
{
    struct wp_reply_message rm;
    const char *why = NULL;
    struct wp_message m =
        msg("ann@x.dom", RCPTS("me@company.dom"), HDRS({"From", "ann@x.dom"}, {"Subject", "Question"}));
    /* "+" marks the header block */
    struct wp_reply plus = {(char *)"+Subject: Our answer\nX-Campaign: 7\n\nHere it is.\n", false};
    ck_assert(wp_reply_build(&m, &plus, "me@company.dom", &rm, &why));
    char *h = reply_headers(rm.text);
    ck_assert_ptr_nonnull(strstr(h, "\nSubject: Our answer\nX-Campaign: 7\n"));
    ck_assert_uint_eq(count_str(h, "Subject:"), 1);
    ck_assert_ptr_null(strstr(h, "Re: Question"));
    ck_assert_ptr_nonnull(strstr(h, "\nAuto-Submitted: auto-replied\n"));
    ck_assert_ptr_nonnull(strstr(h, "\nContent-Type: text/plain; charset=utf-8\n"));
    ck_assert_ptr_null(strstr(h, "\n+"));
    ck_assert(h[0] != '+');
    free(h);
    ck_assert_str_eq(strstr(rm.text, "\n\n") + 2, "Here it is.\n");
    wp_reply_message_free(&rm);
    /* a first line "Subject:" starts it too */
    struct wp_reply subj = {(char *)"Subject: Got it\n\nThanks", false};
    ck_assert(wp_reply_build(&m, &subj, "me@company.dom", &rm, &why));
    h = reply_headers(rm.text);
    ck_assert_ptr_nonnull(strstr(h, "\nSubject: Got it\n"));
    ck_assert_uint_eq(count_str(h, "Subject:"), 1);
    free(h);
    ck_assert_str_eq(strstr(rm.text, "\n\n") + 2, "Thanks\n");
    wp_reply_message_free(&rm);
    /* its own From replaces ours */
    struct wp_reply from = {(char *)"+From: Sales <sales@company.dom>\n\nHi", false};
    ck_assert(wp_reply_build(&m, &from, "me@company.dom", &rm, &why));
    h = reply_headers(rm.text);
    ck_assert_uint_eq(count_str(h, "From:"), 1);
    ck_assert_ptr_nonnull(strstr(h, "From: Sales <sales@company.dom>\n"));
    free(h);
    wp_reply_message_free(&rm);
    /* a plain text that merely mentions a header is a body */
    struct wp_reply body = {(char *)"Dear sender,\nSubject: none\n\nbye", false};
    ck_assert(wp_reply_build(&m, &body, "me@company.dom", &rm, &why));
    ck_assert_ptr_nonnull(strstr(rm.text, "\nSubject: Re: Question\n"));
    ck_assert_str_eq(strstr(rm.text, "\n\n") + 2, "Dear sender,\nSubject: none\n\nbye\n");
    wp_reply_message_free(&rm);
    /* a Content-Type of its own: the reply is still a MIME message */
    struct wp_reply html = {(char *)"+Content-Type: text/html; charset=utf-8\n\n<p>Thanks</p>\n", false};
    ck_assert(wp_reply_build(&m, &html, "me@company.dom", &rm, &why));
    h = reply_headers(rm.text);
    ck_assert_uint_eq(count_str(h, "Content-Type:"), 1);
    ck_assert_ptr_nonnull(strstr(h, "\nContent-Type: text/html; charset=utf-8\n"));
    ck_assert_uint_eq(count_str(h, "MIME-Version: 1.0\n"), 1);
    free(h);
    wp_reply_message_free(&rm);
    /* a MIME-Version of its own is not doubled */
    struct wp_reply mv = {(char *)"+MIME-Version: 1.0\nSubject: x\n\nbody", false};
    ck_assert(wp_reply_build(&m, &mv, "me@company.dom", &rm, &why));
    h = reply_headers(rm.text);
    ck_assert_uint_eq(count_str(h, "MIME-Version:"), 1);
    ck_assert_uint_eq(count_str(h, "Content-Type: text/plain; charset=utf-8\n"), 1);
    free(h);
    wp_reply_message_free(&rm);
}
END_TEST

/* The How-To's price list: multipart/mixed with a base64 attachment. */
START_TEST(reply_mime_attachment)
{
    unsigned char pdf[600];
    memcpy(pdf, "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", 15);
    for (size_t i = 15; i < sizeof(pdf); i++)
        pdf[i] = (unsigned char)(i * 7 + 3);
    gchar *b64 = g_base64_encode(pdf, sizeof(pdf));
    char *lines = wp_strdup("");
    for (size_t off = 0, len = strlen(b64); off < len; off += 76) {
        char *n = wp_asprintf("%s%.76s\n", lines, b64 + off);
        free(lines);
        lines = n;
    }
    g_free(b64);
    const char *head = "+Subject: Our price list\n"
                       "MIME-Version: 1.0\n"
                       "Content-Type: multipart/mixed; boundary=\"=_cgp_reply\"\n"
                       "\n";
    char *body = wp_asprintf("--=_cgp_reply\n"
                             "Content-Type: text/plain; charset=us-ascii\n"
                             "\n"
                             "Thank you for your request. Our current price list is attached.\n"
                             "--=_cgp_reply\n"
                             "Content-Type: application/pdf; name=\"prices.pdf\"\n"
                             "Content-Transfer-Encoding: base64\n"
                             "Content-Disposition: attachment; filename=\"prices.pdf\"\n"
                             "\n"
                             "%s"
                             "--=_cgp_reply--\n",
                             lines);
    free(lines);
    char *text = wp_asprintf("%s%s", head, body);
    struct wp_reply r = {text, false};
    struct wp_message m = msg("ann@x.dom", RCPTS("prices@company.dom"),
                              HDRS({"From", "ann@x.dom"}, {"Subject", "price list please"}));
    struct wp_reply_message rm;
    const char *why = NULL;
    ck_assert(wp_reply_build(&m, &r, "prices@company.dom", &rm, &why));
    /* the body byte for byte */
    const char *got = strstr(rm.text, "\n\n");
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got + 2, body);
    char *h = reply_headers(rm.text);
    ck_assert_ptr_nonnull(strstr(h, "\nSubject: Our price list\nMIME-Version: 1.0\n"
                                    "Content-Type: multipart/mixed; boundary=\"=_cgp_reply\"\n"));
    ck_assert_uint_eq(count_str(h, "Content-Type:"), 1);
    ck_assert_uint_eq(count_str(h, "MIME-Version:"), 1);
    ck_assert_uint_eq(count_str(h, "Subject:"), 1);
    ck_assert_ptr_nonnull(strstr(h, "\nAuto-Submitted: auto-replied\n"));
    free(h);

    /* GMime sees two parts and the attachment decodes to the same bytes */
    GMimeStream *st = g_mime_stream_mem_new_with_buffer(rm.text, strlen(rm.text));
    GMimeParser *parser = g_mime_parser_new_with_stream(st);
    GMimeMessage *gm = g_mime_parser_construct_message(parser, NULL);
    ck_assert_ptr_nonnull(gm);
    ck_assert_str_eq(g_mime_object_get_header(GMIME_OBJECT(gm), "Auto-Submitted"), "auto-replied");
    GMimeObject *top = g_mime_message_get_mime_part(gm);
    ck_assert(GMIME_IS_MULTIPART(top));
    ck_assert_int_eq(g_mime_multipart_get_count(GMIME_MULTIPART(top)), 2);
    GMimeObject *att = g_mime_multipart_get_part(GMIME_MULTIPART(top), 1);
    ck_assert(GMIME_IS_PART(att));
    ck_assert_str_eq(g_mime_part_get_filename(GMIME_PART(att)), "prices.pdf");
    GMimeStream *dec = g_mime_stream_mem_new();
    g_mime_data_wrapper_write_to_stream(g_mime_part_get_content(GMIME_PART(att)), dec);
    GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(dec));
    ck_assert_uint_eq(ba->len, sizeof(pdf));
    ck_assert(memcmp(ba->data, pdf, sizeof(pdf)) == 0);
    g_object_unref(dec);
    g_object_unref(gm);
    g_object_unref(parser);
    g_object_unref(st);
    wp_reply_message_free(&rm);
    free(text);
    free(body);
}
END_TEST

START_TEST(reply_not_to_robots)
{
    struct wp_reply r = {(char *)"Away.", true};
    struct wp_reply_message rm;
    const char *why = NULL;
    static const struct wp_header robots[][3] = {
        {{"From", "a@x.dom"}, {"Auto-Submitted", "auto-replied"}, {NULL, NULL}},
        {{"From", "a@x.dom"}, {"Precedence", "bulk"}, {NULL, NULL}},
        {{"From", "a@x.dom"}, {"Precedence", "list"}, {NULL, NULL}},
        {{"From", "a@x.dom"}, {"Precedence", "junk"}, {NULL, NULL}},
        {{"From", "a@x.dom"}, {"List-Id", "<l.x.dom>"}, {NULL, NULL}},
    };
    for (size_t i = 0; i < sizeof(robots) / sizeof(robots[0]); i++) {
        struct wp_message m = msg("a@x.dom", RCPTS("me@company.dom"), robots[i]);
        why = NULL;
        ck_assert_msg(!wp_reply_build(&m, &r, "me@company.dom", &rm, &why), "replied despite %s",
                      robots[i][1].name);
        ck_assert_ptr_nonnull(why);
        ck_assert_ptr_null(rm.text);
        ck_assert_uint_eq(rm.nrcpts, 0);
    }
    struct wp_message bounce = msg("", RCPTS("me@company.dom"), HDRS({"From", "a@x.dom"}));
    ck_assert(!wp_reply_build(&bounce, &r, "me@company.dom", &rm, &why));
    struct wp_message md = msg("MAILER-DAEMON@x.dom", RCPTS("me@company.dom"), HDRS({"From", "a@x.dom"}));
    ck_assert(!wp_reply_build(&md, &r, "me@company.dom", &rm, &why));
}
END_TEST

/* ---------------------------------------------------------------- hostile input */

static char *big_string(size_t n, char c)
{
    char *s = wp_malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

START_TEST(hostile_many_recipients)
{
    enum { N = 1000 };
    char **addrs = wp_calloc(N + 1, sizeof(char *));
    for (size_t i = 0; i < N; i++)
        addrs[i] = wp_asprintf("user%zu@%s", i, i % 2 ? "company.dom" : "friend.com");
    struct wp_message m =
        msg("joe@dept1.company.dom", (const char *const *)addrs, HDRS({"From", "joe@x.dom"}));
    ck_assert_uint_eq(m.nrcpts, N);
    YES(&m, "Any Recipient", "is", "user999@company.dom");
    NO(&m, "Each Recipient", "is", "*@company.dom");
    YES(&m, "Each Recipient", "in", "*@company.dom,*@friend.com");
    struct wp_snapshot *s = sample();
    YES_E(&wp_milter_conf(s)->rules_env, &m, "Any Route", "is", "SMTP(friend.com)user0@friend.com");
    NO_E(&wp_milter_conf(s)->rules_env, &m, "Each Route", "is", "LOCAL(*");
    struct wp_outcome out;
    wp_rules_evaluate(wp_milter_conf(s)->rules, &wp_milter_conf(s)->rules_env, &m, &out);
    ck_assert(out.reject); /* the Dept1 restriction */
    wp_outcome_free(&out);
    /* a reply to all of 1000 To addresses */
    char *to = wp_strdup("");
    for (size_t i = 0; i < N; i++) {
        char *n = wp_asprintf("%s%s<%s>", to, i ? ", " : "", addrs[i]);
        free(to);
        to = n;
    }
    struct wp_message h = msg("joe@x.dom", RCPTS("me@company.dom"), HDRS({"From", "joe@x.dom"}, {"To", to}));
    YES(&h, "Any To or Cc", "is", "user500@friend.com");
    YES(&h, "Each To or Cc", "is", "user*@*");
    struct wp_reply r = {(char *)"ok", true};
    struct wp_reply_message rm;
    const char *why;
    ck_assert(wp_reply_build(&h, &r, "me@company.dom", &rm, &why));
    /* the sender first, then To addresses up to the cap of 50 (no mass mailing) */
    ck_assert_uint_eq(rm.nrcpts, 50);
    ck_assert_str_eq(rm.rcpts[0], "joe@x.dom");
    wp_reply_message_free(&rm);
    free(to);
    wp_snapshot_unref(s);
    for (size_t i = 0; i < N; i++)
        free(addrs[i]);
    free(addrs);
}
END_TEST

START_TEST(hostile_huge_header)
{
    const size_t MB = 1024 * 1024;
    char *big = big_string(MB, 'a');
    struct wp_message m =
        msg("joe@x.dom", RCPTS("r@y.dom"),
            HDRS({"Subject", big}, {"X-Big", big}, {"Message-ID", big}, {"From", big}, {"To", big}));
    m.size = 5 * MB;
    YES(&m, "Subject", "is", "a*a");
    NO(&m, "Subject", "is", "*b*");
    YES(&m, "Subject", "is not", "*a*b*c*");
    YES(&m, "Header Field", "is", "X-Big: *aaa");
    NO(&m, "From", "is", "*@*");
    YES(&m, "Message Size", "greater than", "4M");
    struct wp_outcome out;
    eval_text("rules = ( { name = \"t\"; action = ( (\"Tag Subject\", \"[BIG]\") ); } );", &no_router, &m,
              &out);
    ck_assert_uint_eq(strlen(out.subject), MB + 6);
    wp_outcome_free(&out);
    /* a Cc full of addresses, as large as Postfix passes by default
     * (header_size_limit = 102400) */
    const size_t limit = 102400;
    size_t cap = limit + 64, blen = 0;
    char *many = wp_malloc(cap);
    for (size_t i = 0; blen < limit; i++)
        blen += (size_t)snprintf(many + blen, cap - blen, "%su%zu@x.dom", i ? ", " : "", i);
    struct wp_message f = msg("joe@x.dom", RCPTS("r@y.dom"), HDRS({"Cc", many}));
    YES(&f, "Cc", "is", "u1000@x.dom");
    YES(&f, "Each To or Cc", "is", "*@x.dom");
    NO(&f, "Cc", "is not", "u7@x.dom");
    free(many);
    /* the reply keeps its own headers intact around a huge Subject and Message-ID */
    struct wp_message r = msg("joe@x.dom", RCPTS("me@company.dom"),
                              HDRS({"From", "joe@x.dom"}, {"Subject", big}, {"Message-ID", big}));
    struct wp_reply rep = {(char *)"Thanks", false};
    struct wp_reply_message rm;
    const char *why;
    ck_assert(wp_reply_build(&r, &rep, "me@company.dom", &rm, &why));
    ck_assert_ptr_nonnull(strstr(rm.text, "\nAuto-Submitted: auto-replied\n"));
    ck_assert_ptr_nonnull(strstr(rm.text, "\nDate: "));
    ck_assert_str_eq(strstr(rm.text, "\n\n") + 2, "Thanks\n");
    GMimeStream *st = g_mime_stream_mem_new_with_buffer(rm.text, strlen(rm.text));
    GMimeParser *parser = g_mime_parser_new_with_stream(st);
    GMimeMessage *gm = g_mime_parser_construct_message(parser, NULL);
    ck_assert_ptr_nonnull(gm);
    ck_assert_str_eq(g_mime_object_get_header(GMIME_OBJECT(gm), "Auto-Submitted"), "auto-replied");
    g_object_unref(gm);
    g_object_unref(parser);
    g_object_unref(st);
    wp_reply_message_free(&rm);
    free(big);
}
END_TEST

START_TEST(hostile_encoded_words)
{
    static const char *const broken[] = {
        "=?utf-8?q?unterminated",
        "=?utf-8?b?!!!not base64!!!?=",
        "=?x-no-such-charset?q?abc?=",
        "=?utf-8?q?=FF=FE=00bad?=",
        "=?\?=",
        "=?utf-8?\?=",
        "=?utf-8?x?abc?=",
        "=?utf-8*en?q?a?= =?utf-8?b?=?=",
        "=?=?=?=?=?=?=?=?=?",
        "\xff\xfe raw 8-bit \x80",
        "=?utf-8?b?"
        "AAAA"
        "?=",
    };
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
        char *from = wp_asprintf("%s <ann@x.dom>", broken[i]);
        struct wp_message m =
            msg("ann@x.dom", RCPTS("r@y.dom"),
                HDRS({"Subject", broken[i]}, {"From", from}, {"X-H", broken[i]}, {"To", broken[i]}));
        YES(&m, "Subject", "is", "*");
        NO(&m, "Subject", "is", "*\n*");
        YES(&m, "Header Field", "is", "X-H: *");
        (void)COND(&m, "From", "is", "ann@x.dom"); /* must not crash; the result is GMime's guess */
        (void)COND(&m, "To", "is", "*");
        char *d = wp_header_decode(broken[i]);
        ck_assert_ptr_nonnull(d);
        free(d);
        struct wp_outcome out;
        eval_text("rules = ( { name = \"t\"; action = ( (\"Tag Subject\", \"[T]\"), (\"Reply to All with\", "
                  "\"x\") ); } );",
                  &no_router, &m, &out);
        ck_assert_ptr_nonnull(out.subject);
        struct wp_reply_message rm;
        const char *why;
        if (wp_reply_build(&m, &out.replies[0], "r@y.dom", &rm, &why)) {
            ck_assert_ptr_nonnull(strstr(rm.text, "\nAuto-Submitted: auto-replied\n"));
            wp_reply_message_free(&rm);
        }
        wp_outcome_free(&out);
        free(from);
    }
}
END_TEST

START_TEST(hostile_empty)
{
    /* no headers, no recipients, empty everything */
    struct wp_message m = msg("", NULL, NULL);
    static const char *const conds[] = {"From",
                                        "Sender",
                                        "To",
                                        "Cc",
                                        "Reply-To",
                                        "Any To or Cc",
                                        "Each To or Cc",
                                        "Any Recipient",
                                        "Each Recipient",
                                        "Any Route",
                                        "Each Route",
                                        "Submit Address",
                                        "Subject",
                                        "Return-Path"};
    for (size_t i = 0; i < sizeof(conds) / sizeof(conds[0]); i++) {
        (void)COND(&m, conds[i], "is", "x");
        (void)COND(&m, conds[i], "not in", "x,y");
    }
    NO(&m, "Header Field", "is", "X: *");
    YES(&m, "Source", "is", "untrusted");
    NO(&m, "Human Generated", NULL, NULL);
    m.size = 0;
    NO(&m, "Message Size", "greater than", "0");
    struct wp_snapshot *s = sample();
    struct wp_outcome out;
    wp_rules_evaluate(wp_milter_conf(s)->rules, &wp_milter_conf(s)->rules_env, &m, &out);
    ck_assert_uint_eq(out.nfired, 0);
    wp_outcome_free(&out);
    /* empty header values and an empty header name */
    struct wp_message e = msg("a@b.dom", RCPTS("", "r@y.dom"),
                              HDRS({"From", ""}, {"To", ""}, {"Cc", "  "}, {"Subject", ""}, {"", ""},
                                   {"Reply-To", "<>"}, {"Sender", "@"}, {"X-E", ""}));
    NO(&e, "From", "is", "*");
    YES(&e, "From", "is not", "*");
    NO(&e, "Any To or Cc", "is", "*");
    YES(&e, "Subject", "is", "");
    YES(&e, "Header Field", "is", "X-E: ");
    YES(&e, "Any Recipient", "is", "");
    (void)COND(&e, "Reply-To", "is", "*");
    (void)COND(&e, "Sender", "is", "*");
    wp_rules_evaluate(wp_milter_conf(s)->rules, &wp_milter_conf(s)->rules_env, &e, &out);
    wp_outcome_free(&out);
    YES_E(&wp_milter_conf(s)->rules_env, &e, "Any Route", "is", "*");
    struct wp_reply r = {(char *)"", true};
    struct wp_reply_message rm;
    const char *why;
    ck_assert(wp_reply_build(&e, &r, "r@y.dom", &rm, &why)); /* to the return path */
    ck_assert_uint_eq(rm.nrcpts, 1);
    ck_assert_str_eq(rm.rcpts[0], "a@b.dom");
    wp_reply_message_free(&rm);
    struct wp_reply hdr_only = {(char *)"+Subject: only headers", false};
    ck_assert(wp_reply_build(&e, &hdr_only, "r@y.dom", &rm, &why));
    ck_assert_ptr_nonnull(strstr(rm.text, "\nSubject: only headers\n"));
    wp_reply_message_free(&rm);
    /* odd client data */
    char *longaddr = big_string(300, '1');
    e.client_addr = longaddr;
    e.auth_user = "x";
    (void)COND(&e, "Submit Address", "is", "[1*");
    YES(&e, "Source", "is", "authenticated");
    free(longaddr);
    char *longrp = big_string(5000, 'r');
    e.return_path = longrp;
    (void)COND(&e, "Human Generated", NULL, NULL);
    YES(&e, "Return-Path", "is", "r*r");
    free(longrp);
    wp_snapshot_unref(s);
}
END_TEST

START_TEST(helpers)
{
    struct wp_message m = msg(
        "a@b.dom", NULL,
        HDRS({"subject", "=?utf-8?q?a=5Fb?= c"}, {"To", "x@y.dom, G: p@q.dom, r@s.dom;"}, {"TO", "z@z.dom"}));
    ck_assert_str_eq(wp_message_header(&m, "SUBJECT"), "=?utf-8?q?a=5Fb?= c");
    ck_assert_ptr_null(wp_message_header(&m, "Cc"));
    char **v;
    size_t n = wp_message_addresses(&m, "to", &v);
    ck_assert_uint_eq(n, 4);
    ck_assert_str_eq(v[0], "x@y.dom");
    ck_assert_str_eq(v[1], "p@q.dom");
    ck_assert_str_eq(v[2], "r@s.dom");
    ck_assert_str_eq(v[3], "z@z.dom");
    wp_strv_free(v, n);
    n = wp_message_addresses(&m, "Cc", &v);
    ck_assert_uint_eq(n, 0);
    wp_strv_free(v, n);
    char *d = wp_header_decode("  =?utf-8?q?a=5Fb?= c\r\n\td");
    ck_assert_str_eq(d, "a_b c\td");
    free(d);
}
END_TEST

/* ---------------------------------------------------------------- the per-message view */

/* Load a snapshot from text written to DIR/w.conf. */
static struct wp_snapshot *load_conf_text(const char *dir, const char *text)
{
    char conf[256];
    snprintf(conf, sizeof(conf), "%s/w.conf", dir);
    FILE *f = fopen(conf, "w");
    ck_assert(f);
    fputs(text, f);
    fclose(f);
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_snapshot *s = wp_snapshot_load(conf, wp_sections_all, &err);
    for (size_t i = 0; i < err.count; i++)
        fprintf(stderr, "%s\n", err.msgs[i]);
    ck_assert_uint_eq(err.count, 0);
    wp_errors_free(&err);
    ck_assert_ptr_nonnull(s);
    unlink(conf);
    return s;
}

/* Many conditions on the same headers: each header name is parsed once,
 * the Subject and a field decoded once. */
START_TEST(view_parses_once)
{
    struct wp_message m =
        msg("a@b.dom", RCPTS("c@d.dom"),
            HDRS({"From", "Ann <ann@x.dom>"}, {"To", "b@y.dom"}, {"To", "G: c@z.dom;"},
                 {"Subject", "=?utf-8?q?caf=C3=A9?= menu"}, {"X-Tool", "=?utf-8?q?T=C3=B6ol?= 1"}));
    struct wp_rules *r = rules_ok(
        "rules = (\n"
        " { name = \"a\"; data = ( (\"From\", \"is\", \"*@nowhere\") ); action = ( (\"Discard\") ); },\n"
        " { name = \"b\"; data = ( (\"From\", \"is not\", \"*@x.dom\") ); action = ( (\"Discard\") ); },\n"
        " { name = \"c\"; data = ( (\"Reply-To\", \"is\", \"*\") ); action = ( (\"Discard\") ); },\n"
        " { name = \"d\"; data = ( (\"Any To or Cc\", \"is\", \"*@nowhere\") ); action = ( (\"Discard\") ); "
        "},\n"
        " { name = \"e\"; data = ( (\"To\", \"is\", \"*@nowhere\") ); action = ( (\"Discard\") ); },\n"
        " { name = \"f\"; data = ( (\"Subject\", \"is\", \"x*\") ); action = ( (\"Discard\") ); },\n"
        " { name = \"g\"; data = ( (\"Subject\", \"is\", \"y*\") ); action = ( (\"Discard\") ); },\n"
        " { name = \"h\"; data = ( (\"Header Field\", \"is\", \"X-Tool: x*\") ); action = ( (\"Discard\") ); "
        "},\n"
        " { name = \"i\"; data = ( (\"Header Field\", \"is\", \"X-Tool: T\xc3\xb6ol*\") ); action = ( (\"Tag "
        "Subject\", \"[t]\") ); },\n"
        " { name = \"j\"; data = ( (\"Each To or Cc\", \"in\", \"*@y.dom,*@z.dom\") ); action = ( (\"Reply "
        "with\", \"hi\") ); }\n"
        ");",
        &no_router);
    struct wp_view v;
    wp_view_init(&v, &m, NULL);
    struct wp_outcome out;
    wp_rules_evaluate_view(r, &no_router, &v, &out);
    ck_assert_uint_eq(out.nfired, 2);
    ck_assert_str_eq(out.subject, "[t] caf\xc3\xa9 menu");
    /* From: one field, parsed once; To: two fields, parsed once each;
     * Reply-To, Cc: none, nothing parsed. */
    ck_assert_uint_eq(v.counts.address_parses, 3);
    ck_assert_uint_eq(v.counts.decodes, 2); /* Subject and X-Tool */
    /* The reply reads the same view: From is not parsed again. */
    struct wp_reply_message rm;
    const char *why;
    ck_assert(wp_reply_build_view(&v, &out.replies[0], "me@company.dom", &rm, &why));
    ck_assert_uint_eq(rm.nrcpts, 1);
    ck_assert_str_eq(rm.rcpts[0], "ann@x.dom");
    ck_assert_ptr_nonnull(strstr(rm.text, "Subject: Re: =?"));
    wp_reply_message_free(&rm);
    ck_assert_uint_eq(v.counts.address_parses, 3);
    ck_assert_uint_eq(v.counts.decodes, 2);
    wp_outcome_free(&out);
    wp_view_free(&v);
    wp_rules_free(r);
}
END_TEST

/* Each recipient is routed once per message, however many Route
 * conditions look at it and after them the unified-account fields. */
START_TEST(view_routes_once)
{
    char dir[] = "/tmp/wp-view-XXXXXX";
    ck_assert(mkdtemp(dir));
    struct wp_snapshot *s = load_conf_text(
        dir,
        "router: { main_domain = \"corp.dom\";\n"
        "  domains = ( { name = \"corp.dom\"; accounts = \"list:ann,bob,uni\"; } );\n"
        "  unified_accounts = ( { domain = \"client.com\"; account = \"uni@corp.dom\"; } ); };\n"
        "rules = (\n"
        " { name = \"a\"; data = ( (\"Any Route\", \"is\", \"ODMR(*\") ); action = ( (\"Discard\") ); },\n"
        " { name = \"b\"; data = ( (\"Each Route\", \"is\", \"SMTP(*\") ); action = ( (\"Discard\") ); },\n"
        " { name = \"c\"; data = ( (\"Any Route\", \"is\", \"LOCAL()ann@corp.dom\") );\n"
        "   action = ( (\"Add Header\", \"X-Ann: yes\") ); },\n"
        " { name = \"d\"; data = ( (\"Any Route\", \"is not\", \"ERROR(*\") ); action = ( (\"Add Header\", "
        "\"X-Ok: 1\") ); }\n"
        ");\n");
    struct wp_message m = msg(
        "x@outside.dom", RCPTS("ann@corp.dom", "bob@corp.dom", "joe@client.com", "friend@far.example"), NULL);
    m.auth_user = "ann"; /* trusted: the rules' routes are the unified fields' routes */
    struct wp_view v;
    wp_view_init(&v, &m, s->router);
    struct wp_outcome out;
    wp_rules_evaluate_view(wp_milter_conf(s)->rules, &wp_milter_conf(s)->rules_env, &v, &out);
    ck_assert(!out.tempfail);
    ck_assert_uint_eq(out.nfired, 2);
    ck_assert_uint_eq(v.counts.resolves, 4);
    struct wp_unified_fields uf;
    wp_unified_fields(&v, m.rcpts, m.nrcpts, &uf);
    ck_assert_uint_eq(uf.n, 1);
    ck_assert_str_eq(uf.fields[0].value, "<joe@client.com>");
    const char *extra[4];
    ck_assert_uint_eq(wp_unified_extra_rcpts(&v, m.rcpts, m.nrcpts, extra), 0);
    ck_assert_uint_eq(v.counts.resolves, 4);
    wp_unified_fields_free(&uf);
    wp_outcome_free(&out);
    wp_view_free(&v);

    /* An untrusted client: the rules' routes and the (trusted) unified
     * routes differ, each resolved once. */
    m.auth_user = "";
    wp_view_init(&v, &m, s->router);
    wp_rules_evaluate_view(wp_milter_conf(s)->rules, &wp_milter_conf(s)->rules_env, &v, &out);
    ck_assert_uint_eq(v.counts.resolves, 4);
    wp_unified_fields(&v, m.rcpts, m.nrcpts, &uf);
    ck_assert_uint_eq(v.counts.resolves, 8);
    wp_unified_fields_free(&uf);
    wp_unified_fields(&v, m.rcpts, m.nrcpts, &uf);
    ck_assert_uint_eq(v.counts.resolves, 8);
    wp_unified_fields_free(&uf);
    wp_outcome_free(&out);
    wp_view_free(&v);
    wp_snapshot_unref(s);
    rmdir(dir);
}
END_TEST

/* A Route condition that meets a TEMP route (the account source does not
 * answer): the outcome is a tempfail with the route's 4.x.x text, and
 * nothing that fired before it holds.  Without a Route condition the same
 * message is judged as usual. */
START_TEST(view_temp_route_tempfails)
{
    char dir[] = "/tmp/wp-view-XXXXXX";
    ck_assert(mkdtemp(dir));
    char *text =
        wp_asprintf("router: { main_domain = \"corp.dom\"; userdb_timeout_ms = 200;\n"
                    "  domains = ( { name = \"corp.dom\"; accounts = \"list:ann\"; },\n"
                    "              { name = \"dove.dom\"; accounts = \"userdb:unix:%s/absent.sock\"; } );\n"
                    "  unified_accounts = ( { domain = \"client.com\"; account = \"uni@dove.dom\"; } ); };\n"
                    "rules = (\n"
                    " { name = \"first\"; priority = 9; action = ( (\"Add Header\", \"X-First: 1\") ); },\n"
                    " { name = \"route\"; data = ( (\"Any Route\", \"is\", \"SMTP(*\") ); action = ( "
                    "(\"Discard\") ); },\n"
                    " { name = \"after\"; priority = 1; action = ( (\"Add Header\", \"X-After: 1\") ); }\n"
                    ");\n",
                    dir);
    struct wp_snapshot *s = load_conf_text(dir, text);
    free(text);
    struct wp_message m = msg("x@outside.dom", RCPTS("ann@corp.dom", "carol@dove.dom"), NULL);
    struct wp_outcome out;
    wp_rules_evaluate(wp_milter_conf(s)->rules, &wp_milter_conf(s)->rules_env, &m, &out);
    ck_assert(out.tempfail);
    ck_assert_str_eq(out.tempfail_text, "4.3.0 Account lookup failed, try again later");
    ck_assert(!out.discard && !out.reject);
    ck_assert_uint_eq(out.nfired, 0);
    ck_assert_uint_eq(out.nheaders, 0);
    ck_assert_uint_eq(out.nlog, 1);
    ck_assert_ptr_nonnull(strstr(out.log[0], "route: a Route condition met a temporary failure"));
    wp_outcome_free(&out);
    /* Each Route too, and in a trusted session. */
    m.auth_user = "ann";
    wp_rules_evaluate(wp_milter_conf(s)->rules, &wp_milter_conf(s)->rules_env, &m, &out);
    ck_assert(out.tempfail);
    wp_outcome_free(&out);
    /* Only local recipients: decided as before. */
    struct wp_message l = msg("x@outside.dom", RCPTS("ann@corp.dom"), NULL);
    wp_rules_evaluate(wp_milter_conf(s)->rules, &wp_milter_conf(s)->rules_env, &l, &out);
    ck_assert(!out.tempfail);
    ck_assert_uint_eq(out.nfired, 2);
    ck_assert_uint_eq(out.nheaders, 2);
    wp_outcome_free(&out);
    /* A unified account whose account source does not answer: the fields
     * cannot be made, and say so. */
    struct wp_view v;
    wp_view_init(&v, &l, s->router);
    const char *const uni[] = {"ann@corp.dom", "joe@client.com"};
    struct wp_unified_fields uf;
    wp_unified_fields(&v, uni, 2, &uf);
    ck_assert_ptr_nonnull(uf.temp);
    ck_assert_str_eq(uf.temp->reason, "4.3.0 Account lookup failed, try again later");
    wp_unified_fields_free(&uf);
    wp_unified_fields(&v, uni, 1, &uf);
    ck_assert_ptr_null(uf.temp);
    wp_unified_fields_free(&uf);
    wp_view_free(&v);
    wp_snapshot_unref(s);
    rmdir(dir);
}
END_TEST

/* Added fields stay name and value apart, as the rule wrote them after the
 * colon's blanks; incoming fields keep their folding in the message and
 * are unfolded only to be tested. */
START_TEST(view_header_pairs)
{
    struct wp_message m = msg("a@b.dom", RCPTS("c@d.dom"),
                              HDRS({"To", "Ann <ann@x.dom>,\r\n\tBob\r\n  <bob@y.dom>"},
                                   {"X-Folded", "first part\r\n\tsecond  part"}));
    struct wp_outcome out;
    eval_text("rules = ( { name = \"h\"; data = ( (\"Each To or Cc\", \"in\", \"ann@x.dom,bob@y.dom\"),\n"
              "  (\"Header Field\", \"is\", \"X-Folded: first part\\tsecond  part\") );\n"
              "  action = ( (\"Add Header\", \"X-Tight:value\\nX-Spaced:  \\t two  words  \\nX-Colons: a: "
              "b:c\") ); } );",
              &no_router, &m, &out);
    ck_assert_uint_eq(out.nfired, 1);
    ck_assert_uint_eq(out.nheaders, 3);
    ck_assert_str_eq(out.add_headers[0].name, "X-Tight");
    ck_assert_str_eq(out.add_headers[0].value, "value");
    ck_assert_str_eq(out.add_headers[1].name, "X-Spaced");
    ck_assert_str_eq(out.add_headers[1].value, "two  words  ");
    ck_assert_str_eq(out.add_headers[2].name, "X-Colons");
    ck_assert_str_eq(out.add_headers[2].value, "a: b:c");
    wp_outcome_free(&out);
    ck_assert_str_eq(m.headers[1].value, "first part\r\n\tsecond  part");
}
END_TEST

static Suite *rules_suite(void)
{
    Suite *s = suite_create("rules");
    TCase *c = tcase_create("conditions");
    tcase_add_test(c, cond_from);
    tcase_add_test(c, cond_from_missing);
    tcase_add_test(c, cond_header_addresses);
    tcase_add_test(c, cond_groups_and_repeats);
    tcase_add_test(c, cond_addresses_without_at);
    tcase_add_test(c, cond_encoded_display_names);
    tcase_add_test(c, cond_return_path);
    tcase_add_test(c, cond_to_cc_any_each);
    tcase_add_test(c, cond_recipients_any_each);
    tcase_add_test(c, cond_routes);
    tcase_add_test(c, cond_submit_address);
    tcase_add_test(c, cond_source);
    tcase_add_test(c, cond_subject);
    tcase_add_test(c, cond_header_field);
    tcase_add_test(c, cond_message_size);
    tcase_add_test(c, cond_human_generated);
    tcase_add_test(c, cond_current_date_day_time);
    tcase_add_test(c, cond_time_without_leading_zero);
    tcase_add_test(c, op_pictures);
    tcase_add_test(c, helpers);
    tcase_set_timeout(c, 60);
    suite_add_tcase(s, c);

    c = tcase_create("evaluation");
    tcase_add_test(c, priorities_and_order);
    tcase_add_test(c, conditions_all_must_hold);
    tcase_add_test(c, stop_processing);
    tcase_add_test(c, reject_and_discard_end_processing);
    tcase_add_test(c, act_mirror_redirect_forward);
    tcase_add_test(c, cgp_forms);
    tcase_add_test(c, act_store_in);
    tcase_add_test(c, act_add_header);
    tcase_add_test(c, act_tag_subject);
    tcase_add_test(c, act_reply);
    tcase_add_test(c, act_names_case_insensitive);
    tcase_set_timeout(c, 60);
    suite_add_tcase(s, c);

    c = tcase_create("loading");
    tcase_add_test(c, load_errors);
    tcase_add_test(c, load_errors_in_file);
    tcase_set_timeout(c, 60);
    suite_add_tcase(s, c);

    c = tcase_create("seed");
    tcase_add_test(c, seed_copy_outgoing);
    tcase_add_test(c, seed_dept1_restriction);
    tcase_add_test(c, seed_dept1_by_route);
    tcase_add_test(c, seed_price_list);
    tcase_set_timeout(c, 60);
    suite_add_tcase(s, c);

    c = tcase_create("reply");
    tcase_add_test(c, reply_recipients);
    tcase_add_test(c, reply_to_all);
    tcase_add_test(c, reply_plain_text);
    tcase_add_test(c, reply_header_block);
    tcase_add_test(c, reply_mime_attachment);
    tcase_add_test(c, reply_not_to_robots);
    tcase_set_timeout(c, 60);
    suite_add_tcase(s, c);

    c = tcase_create("view");
    tcase_add_test(c, view_parses_once);
    tcase_add_test(c, view_routes_once);
    tcase_add_test(c, view_temp_route_tempfails);
    tcase_add_test(c, view_header_pairs);
    tcase_set_timeout(c, 60);
    suite_add_tcase(s, c);

    c = tcase_create("hostile");
    tcase_add_test(c, hostile_many_recipients);
    tcase_add_test(c, hostile_huge_header);
    tcase_add_test(c, hostile_encoded_words);
    tcase_add_test(c, hostile_empty);
    tcase_set_timeout(c, 300);
    suite_add_tcase(s, c);
    return s;
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    g_mime_init();
    SRunner *sr = srunner_create(rules_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    g_mime_shutdown();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
