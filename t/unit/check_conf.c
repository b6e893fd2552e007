/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the generic settings loader (lib/conf.h): every row of
 * every table (state's groups and every component's section) has a default
 * that parses and lies within its bounds, and its bounds hold (a value
 * below, at and above each); each type's parser with good and bad input;
 * file:line in the messages; the printer.  The row tables are iterated, so
 * a new row is covered without touching this file.
 */
#include "config.h"

#include <libconfig.h>
#include <limits.h>
#include <string.h>

#include "cli/sections.h"
#include "lib/conf.h"
#include "lib/endpoint.h"
#include "lib/util.h"
#include "state/snapshot.h"
#include "unit.h"

struct table {
    const char *prefix;
    const struct wp_conf_row *rows;
    size_t size;
};

/* Every row table with fields: state's and each section's. */
static size_t tables(struct table *t, size_t max)
{
    size_t n = 0;
    t[n++] = (struct table){"log", wp_log_rows, sizeof(struct wp_log_conf)};
    t[n++] = (struct table){"postfix", wp_postfix_rows, sizeof(struct wp_postfix_conf)};
    t[n++] = (struct table){"router", wp_router_rows, sizeof(struct wp_router_conf)};
    for (size_t i = 0; wp_sections_all[i] && n < max; i++)
        t[n++] = (struct table){wp_sections_all[i]->name, wp_sections_all[i]->rows, wp_sections_all[i]->size};
    return n;
}

static bool numeric(enum wp_conf_type t)
{
    return t == WP_CONF_INT || t == WP_CONF_MODE || t == WP_CONF_DURATION || t == WP_CONF_SIZE;
}

/* Load "g: { TEXT };" (TEXT on line 2) through the rows; the messages
 * joined by newlines (malloc'ed, "" when none).  The struct is freed. */
static char *load_group(const struct table *t, const char *text)
{
    /* Required settings other than the one tested get a plain value, on
     * the same line so that line 2 stays the tested one. */
    char *req = wp_strdup("");
    for (const struct wp_conf_row *r = t->rows; r->name; r++)
        if ((r->flags & WP_CONF_REQUIRED) && strncmp(text, r->name, strlen(r->name)) != 0) {
            char *next = wp_asprintf("%s %s = \"x.dom\";", req, r->name);
            free(req);
            req = next;
        }
    char *all = wp_asprintf("g: {\n%s%s\n};\n", text, req);
    free(req);
    config_t cfg;
    config_init(&cfg);
    ck_assert_msg(config_read_string(&cfg, all) == CONFIG_TRUE, "syntax: %s", all);
    const config_setting_t *g = config_lookup(&cfg, "g");
    void *conf = wp_calloc(1, t->size);
    struct wp_errors err;
    wp_errors_init(&err);
    wp_conf_load(g, t->rows, conf, t->prefix, "t.conf", "/base", &err);
    wp_conf_free(t->rows, conf);
    free(conf);
    char *out = wp_strdup("");
    for (size_t i = 0; i < err.count; i++) {
        char *next = wp_asprintf("%s%s\n", out, err.msgs[i]);
        free(out);
        out = next;
    }
    wp_errors_free(&err);
    config_destroy(&cfg);
    free(all);
    return out;
}

/* A value as the config file would write it: MODE as an octal string,
 * negative durations and sizes as plain integers. */
static char *value_text(const struct wp_conf_row *r, long long v)
{
    if (r->type == WP_CONF_MODE)
        return wp_asprintf("\"0%llo\"", v);
    if (v > INT_MAX || v < INT_MIN)
        return wp_asprintf("%lldL", v); /* libconfig's 64-bit integers */
    return wp_asprintf("%lld", v);
}

START_TEST(defaults_parse_within_bounds)
{
    struct table t[16];
    size_t n = tables(t, 16);
    size_t rows = 0;
    for (size_t i = 0; i < n; i++) {
        /* No group at all: every field gets its default, with no error. */
        void *conf = wp_calloc(1, t[i].size);
        struct wp_errors err;
        wp_errors_init(&err);
        wp_conf_load(NULL, t[i].rows, conf, t[i].prefix, "t.conf", "/base", &err);
        ck_assert_msg(err.count == 0, "%s: defaults give errors: %s", t[i].prefix,
                      err.count ? err.msgs[0] : "");
        for (const struct wp_conf_row *r = t[i].rows; r->name; r++, rows++) {
            if (r->offset == WP_CONF_NOFIELD)
                continue;
            if (numeric(r->type)) {
                ck_assert_msg(r->min <= r->max, "%s.%s: min > max", t[i].prefix, r->name);
                ck_assert_msg(r->max <= INT_MAX, "%s.%s: max does not fit an int", t[i].prefix, r->name);
                int v = *(int *)((char *)conf + r->offset);
                ck_assert_msg(v >= r->min && v <= r->max, "%s.%s: default %d outside %lld..%lld", t[i].prefix,
                              r->name, v, r->min, r->max);
                /* The default as the text says: parse it the way a value is. */
                long long d = 0;
                bool ok = r->type == WP_CONF_MODE       ? wp_conf_parse_mode(r->def, &d)
                          : r->type == WP_CONF_DURATION ? wp_conf_parse_duration(r->def, &d)
                          : r->type == WP_CONF_SIZE     ? wp_conf_parse_size(r->def, &d)
                                                        : (d = strtoll(r->def, NULL, 10), true);
                ck_assert_msg(ok && d == v, "%s.%s: default '%s' loads as %d", t[i].prefix, r->name, r->def,
                              v);
            }
            if (r->type == WP_CONF_STRING || r->type == WP_CONF_PATH)
                ck_assert_msg(*(char **)((char *)conf + r->offset), "%s.%s: no string", t[i].prefix, r->name);
            if (r->type == WP_CONF_PATH && r->def && r->def[0])
                ck_assert_msg((*(char **)((char *)conf + r->offset))[0] == '/',
                              "%s.%s: default path not absolute", t[i].prefix, r->name);
        }
        wp_conf_free(t[i].rows, conf);
        free(conf);
        wp_errors_free(&err);
    }
    ck_assert_uint_ge(rows, 60); /* all tables were found */
}
END_TEST

START_TEST(bounds_hold)
{
    struct table t[16];
    size_t n = tables(t, 16);
    size_t checked = 0;
    for (size_t i = 0; i < n; i++)
        for (const struct wp_conf_row *r = t[i].rows; r->name; r++) {
            if (r->offset == WP_CONF_NOFIELD || !numeric(r->type))
                continue;
            char bound[32];
            /* At each bound: accepted. */
            long long at[2] = {r->min, r->max};
            for (int k = 0; k < 2; k++) {
                char *v = value_text(r, at[k]);
                char *text = wp_asprintf("%s = %s;", r->name, v);
                char *m = load_group(&t[i], text);
                ck_assert_msg(!*m, "%s.%s = %s refused: %s", t[i].prefix, r->name, v, m);
                free(m), free(text), free(v);
            }
            /* Below the minimum (modes cannot be written below 0). */
            if (!(r->type == WP_CONF_MODE && r->min == 0)) {
                char *v = value_text(r, r->min - 1);
                char *text = wp_asprintf("%s = %s;", r->name, v);
                char *m = load_group(&t[i], text);
                if (r->type == WP_CONF_DURATION)
                    wp_conf_format_duration(r->min, bound, sizeof(bound));
                else if (r->type == WP_CONF_SIZE)
                    wp_conf_format_size(r->min, bound, sizeof(bound));
                else
                    snprintf(bound, sizeof(bound), "%lld", r->min);
                char *want = wp_asprintf("t.conf:2: %s.%s = %s is below the minimum %s\n", t[i].prefix,
                                         r->name, v, bound);
                ck_assert_msg(strncmp(m, want, strlen(want)) == 0, "got '%s', wanted '%s'", m, want);
                free(m), free(text), free(v), free(want);
            }
            /* Above the maximum. */
            {
                char *v = value_text(r, r->max + 1);
                char *text = wp_asprintf("%s = %s;", r->name, v);
                char *m = load_group(&t[i], text);
                if (r->type == WP_CONF_DURATION)
                    wp_conf_format_duration(r->max, bound, sizeof(bound));
                else if (r->type == WP_CONF_SIZE)
                    wp_conf_format_size(r->max, bound, sizeof(bound));
                else if (r->type == WP_CONF_MODE)
                    snprintf(bound, sizeof(bound), "0%03llo", r->max);
                else
                    snprintf(bound, sizeof(bound), "%lld", r->max);
                /* Shown as written, without a mode's quotes or a long's L. */
                const char *shown = r->type == WP_CONF_MODE ? v + 1 : v;
                int slen = (int)strlen(shown) - (r->type == WP_CONF_MODE || shown[strlen(shown) - 1] == 'L');
                char *want = wp_asprintf("t.conf:2: %s.%s = %.*s is above the maximum %s\n", t[i].prefix,
                                         r->name, slen, shown, bound);
                ck_assert_msg(strcmp(m, want) == 0, "got '%s', wanted '%s'", m, want);
                free(want);
                free(m), free(text), free(v);
            }
            checked++;
        }
    ck_assert_uint_ge(checked, 15);
}
END_TEST

START_TEST(wrong_types_and_unknown_names)
{
    struct table t[16];
    size_t n = tables(t, 16);
    for (size_t i = 0; i < n; i++)
        for (const struct wp_conf_row *r = t[i].rows; r->name; r++) {
            /* A boolean fits no row but BOOL; a string fits no BOOL or INT. */
            const char *bad = r->type == WP_CONF_BOOL ? "\"yes\"" : "true";
            char *text = wp_asprintf("%s = %s;", r->name, bad);
            char *m = load_group(&t[i], text);
            char *want = wp_asprintf("t.conf:2: '%s' must be ", r->name);
            ck_assert_msg(strncmp(m, want, strlen(want)) == 0, "%s.%s = %s: got '%s'", t[i].prefix, r->name,
                          bad, m);
            free(m), free(text), free(want);
        }
    char *m = load_group(&t[0], "level = \"info\";\n  nonsense = 1;");
    ck_assert_str_eq(m, "t.conf:3: unknown setting 'nonsense' in g\n");
    free(m);
}
END_TEST

START_TEST(parse_mode)
{
    long long v;
    ck_assert(wp_conf_parse_mode("0660", &v) && v == 0660);
    ck_assert(wp_conf_parse_mode("755", &v) && v == 0755);
    ck_assert(wp_conf_parse_mode("0", &v) && v == 0);
    static const char *const bad[] = {"", "0999", "abc", "-1", "+7", " 0660", "0660 ", "010000", "0x1ff"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!wp_conf_parse_mode(bad[i], &v), "accepted '%s'", bad[i]);
}
END_TEST

START_TEST(parse_duration)
{
    long long v;
    ck_assert(wp_conf_parse_duration("10s", &v) && v == 10);
    ck_assert(wp_conf_parse_duration("5m", &v) && v == 300);
    ck_assert(wp_conf_parse_duration("2h", &v) && v == 7200);
    ck_assert(wp_conf_parse_duration("5d", &v) && v == 5 * 86400);
    ck_assert(wp_conf_parse_duration("1w", &v) && v == 7 * 86400);
    ck_assert(wp_conf_parse_duration("90", &v) && v == 90);
    ck_assert(wp_conf_parse_duration("0", &v) && v == 0);
    static const char *const bad[] = {"", "5x", "-1", "5dd", " 5", "1.5m", "m", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!wp_conf_parse_duration(bad[i], &v), "accepted '%s'", bad[i]);
    char out[32];
    wp_conf_format_duration(600, out, sizeof(out));
    ck_assert_str_eq(out, "10m");
    wp_conf_format_duration(90, out, sizeof(out));
    ck_assert_str_eq(out, "90");
    wp_conf_format_duration(5 * 86400, out, sizeof(out));
    ck_assert_str_eq(out, "5d");
}
END_TEST

START_TEST(parse_size)
{
    long long v;
    ck_assert(wp_conf_parse_size("512", &v) && v == 512);
    ck_assert(wp_conf_parse_size("10b", &v) && v == 10);
    ck_assert(wp_conf_parse_size("64k", &v) && v == 65536);
    ck_assert(wp_conf_parse_size("64K", &v) && v == 65536);
    ck_assert(wp_conf_parse_size("50M", &v) && v == 52428800);
    ck_assert(wp_conf_parse_size("1G", &v) && v == 1073741824);
    static const char *const bad[] = {"", "1T", "-1", "M", "5MB", "1.5M", " 1k", "1 k"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!wp_conf_parse_size(bad[i], &v), "accepted '%s'", bad[i]);
    char out[32];
    wp_conf_format_size(52428800, out, sizeof(out));
    ck_assert_str_eq(out, "50M");
    wp_conf_format_size(10000, out, sizeof(out));
    ck_assert_str_eq(out, "10000");
}
END_TEST

/* Each type through the loader: a good value lands in the field, a bad one
 * is reported with file:line, the setting and the text as written. */
struct sample {
    int i, mode, dur, size;
    bool b;
    char *s, *p;
    struct wp_endpoint ep;
    char **list;
};

#define S struct sample
static const struct wp_conf_row sample_rows[] = {
    WP_ROW_INT("i", S, i, "7", -5, 100),
    WP_ROW_MODE("mode", S, mode, "0640"),
    WP_ROW_DURATION("dur", S, dur, "1m", 0, 86400),
    WP_ROW_SIZE("size", S, size, "1k", 0, 1 << 30),
    WP_ROW_BOOL("b", S, b, "true"),
    WP_ROW_STRING("s", S, s, "x"),
    WP_ROW_PATH("p", S, p, "rel/file"),
    WP_ROW_ENDPOINT("ep", S, ep, "inet:127.0.0.1:25"),
    WP_ROW_STRINGS("list", S, list),
    {"req", WP_CONF_STRING, WP_CONF_NOFIELD, NULL, 0, 0, WP_CONF_REQUIRED, NULL},
    WP_ROW_END,
};
#undef S

static char *load_sample(const char *text, struct sample *out, const char *path)
{
    config_t cfg;
    config_init(&cfg);
    ck_assert_msg(config_read_string(&cfg, text) == CONFIG_TRUE, "syntax: %s", text);
    struct wp_errors err;
    wp_errors_init(&err);
    memset(out, 0, sizeof(*out));
    wp_conf_load(config_lookup(&cfg, "g"), sample_rows, out, "g", path, "/etc/wp", &err);
    char *m = wp_strdup(err.count ? err.msgs[0] : "");
    wp_errors_free(&err);
    config_destroy(&cfg);
    return m;
}

START_TEST(types_through_the_loader)
{
    struct sample v;
    char *m =
        load_sample("g: { req = \"r\";\n i = -5; mode = \"0755\"; dur = \"2h\"; size = \"2M\"; b = false;\n"
                    " s = \"y\"; p = \"/abs\"; ep = \"unix:/run/x.sock\"; list = [ \"a\", \"b\" ]; };",
                    &v, "t.conf");
    ck_assert_str_eq(m, "");
    ck_assert_int_eq(v.i, -5);
    ck_assert_int_eq(v.mode, 0755);
    ck_assert_int_eq(v.dur, 7200);
    ck_assert_int_eq(v.size, 2 << 20);
    ck_assert(!v.b);
    ck_assert_str_eq(v.s, "y");
    ck_assert_str_eq(v.p, "/abs");
    ck_assert_int_eq(v.ep.family, WP_EP_UNIX);
    ck_assert_str_eq(v.ep.path, "/run/x.sock");
    ck_assert_str_eq(v.list[0], "a");
    ck_assert_str_eq(v.list[1], "b");
    ck_assert_ptr_null(v.list[2]);
    wp_conf_free(sample_rows, &v);
    ck_assert_ptr_null(v.s);
    free(m);

    /* Defaults, through the same parsers; a relative PATH starts at basedir. */
    m = load_sample("g: { req = \"r\"; };", &v, "t.conf");
    ck_assert_str_eq(m, "");
    ck_assert_int_eq(v.i, 7);
    ck_assert_int_eq(v.mode, 0640);
    ck_assert_int_eq(v.dur, 60);
    ck_assert_int_eq(v.size, 1024);
    ck_assert(v.b);
    ck_assert_str_eq(v.p, "/etc/wp/rel/file");
    ck_assert_int_eq(v.ep.family, WP_EP_INET);
    ck_assert_int_eq(v.ep.port, 25);
    ck_assert_ptr_null(v.list[0]);
    wp_conf_free(sample_rows, &v);
    free(m);
    m = load_sample("g: { req = \"r\"; dur = 45; size = 3000; };", &v, "t.conf");
    ck_assert_str_eq(m, "");
    ck_assert_int_eq(v.dur, 45); /* durations and sizes as plain integers */
    ck_assert_int_eq(v.size, 3000);
    wp_conf_free(sample_rows, &v);
    free(m);

    static const struct {
        const char *text, *want;
    } bad[] = {
        {"g: { req = \"r\";\n\n mode = \"0999\"; };", "t.conf:3: g.mode '0999' is not an octal mode"},
        {"g: { req = \"r\";\n dur = \"5x\"; };", "t.conf:2: g.dur '5x' must be a duration"},
        {"g: { req = \"r\";\n size = \"1T\"; };", "t.conf:2: g.size '1T' must be a size"},
        {"g: { req = \"r\";\n ep = \"inet:1.2.3.4\"; };",
         "t.conf:2: g.ep 'inet:1.2.3.4': expected inet:HOST:PORT"},
        {"g: { req = \"r\";\n i = 101; };", "t.conf:2: g.i = 101 is above the maximum 100"},
        {"g: { req = \"r\";\n dur = \"2d\"; };", "t.conf:2: g.dur = 2d is above the maximum 1d"},
        {"g: { req = \"r\";\n i = \"7\"; };", "t.conf:2: 'i' must be an integer"},
        {"g: { req = \"r\";\n list = [ 1 ]; };", "t.conf:2: 'list' must be a list of strings"},
        {"g: {\n i = 1; };", "t.conf:1: missing required setting 'req' in g"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        m = load_sample(bad[i].text, &v, "t.conf");
        ck_assert_msg(strncmp(m, bad[i].want, strlen(bad[i].want)) == 0, "got '%s', wanted '%s'", m,
                      bad[i].want);
        wp_conf_free(sample_rows, &v);
        free(m);
    }
}
END_TEST

START_TEST(printer)
{
    struct sample v;
    char *m = load_sample("g: { req = \"r\"; dur = 600; s = \"x\"; i = 9; };", &v, "t.conf");
    ck_assert_str_eq(m, "");
    free(m);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    wp_conf_print(f, "g", sample_rows, &v, NULL, "/etc/wp", false);
    fclose(f);
    ck_assert_msg(strstr(buf, "g.i = 9\n"), "%s", buf);
    ck_assert_msg(strstr(buf, "g.mode = 0640\n"), "%s", buf);
    ck_assert_msg(strstr(buf, "g.dur = 10m\n"), "%s", buf);
    ck_assert_msg(strstr(buf, "g.size = 1k\n"), "%s", buf);
    ck_assert_msg(strstr(buf, "g.p = /etc/wp/rel/file\n"), "%s", buf);
    ck_assert_msg(strstr(buf, "g.ep = inet:127.0.0.1:25\n"), "%s", buf);
    ck_assert_msg(strstr(buf, "g.list = []\n"), "%s", buf);
    free(buf);
    f = open_memstream(&buf, &len);
    wp_conf_print(f, "g", sample_rows, &v, NULL, "/etc/wp", true);
    fclose(f);
    ck_assert_str_eq(buf, "g.i = 9\ng.dur = 10m\n"); /* s = "x" is the default */
    free(buf);
    wp_conf_free(sample_rows, &v);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("conf");
    TCase *tc = tcase_create("rows");
    tcase_add_test(tc, defaults_parse_within_bounds);
    tcase_add_test(tc, bounds_hold);
    tcase_add_test(tc, wrong_types_and_unknown_names);
    tcase_add_test(tc, parse_mode);
    tcase_add_test(tc, parse_duration);
    tcase_add_test(tc, parse_size);
    tcase_add_test(tc, types_through_the_loader);
    tcase_add_test(tc, printer);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(suite)
