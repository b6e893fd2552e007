/* SPDX-License-Identifier: MIT */
/* libFuzzer target: Server-wide Rules, both ways in (milter/rules.h).
 * First byte even: the rest is the body of a "rules = ( ... );" list,
 * parsed by libconfig and loaded by the milter's loader (every condition,
 * operation, action, CommuniGate spelling and refused element), then run
 * on a fixed message.  First byte odd: the rest is a message (envelope
 * sender, recipients, client address and "Name: value" header fields,
 * split at NUL bytes) run through a fixed set of rules that uses every
 * condition kind and operation, so that the view's parsing, decoding and
 * routing meet hostile text. */
#include "config.h"

#include <gmime/gmime.h>
#include <libconfig.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/sections.h"
#include "lib/errors.h"
#include "milter/rules.h"
#include "milter/settings.h"
#include "state/snapshot.h"

/* libconfig's scanner leaks the text of a string left unterminated by a
 * syntax error (its strbuf_append): not ours to fix, and not what this
 * target looks for; leaks in Waypost's loader are still reported. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libconfig.so\n";
}

static struct wp_snapshot *snap;
static struct wp_rules *every; /* one rule per condition kind */

static const char every_text[] =
    "rules = (\n"
    " { name = \"a\"; data = ( (\"From\", \"is\", \"*@*\"), (\"Sender\", \"is not\", \"x\") ); action = ( "
    "(\"Add Header\", \"X-A: 1\") ); },\n"
    " { name = \"b\"; data = ( (\"Return-Path\", \"in\", \"a*, *b\"), (\"To\", \"not in\", \"q,r\") ); "
    "action = ( (\"Tag Subject\", \"T\") ); },\n"
    " { name = \"c\"; data = ( (\"Cc\", \"is\", \"*\"), (\"Reply-To\", \"is not\", \"*z*\"), (\"Any To or "
    "Cc\", \"is\", \"*\") ); action = ( (\"Mirror to\", \"m@company.dom\") ); },\n"
    " { name = \"d\"; data = ( (\"Each To or Cc\", \"is\", \"*\"), (\"Any Recipient\", \"in\", "
    "\"*@company.dom,*\") ); action = ( (\"Stop Processing\") ); },\n"
    " { name = \"e\"; data = ( (\"Each Recipient\", \"is not\", \"x\"), (\"Any Route\", \"is\", \"*\"), "
    "(\"Each Route\", \"is not\", \"ERROR*\") ); action = ( (\"Add Header\", \"X-E: 2\") ); },\n"
    " { name = \"f\"; data = ( (\"Submit Address\", \"is\", \"*\"), (\"Source\", \"is not\", \"trusted\"), "
    "(\"Subject\", \"is\", \"*\") ); action = ( (\"Redirect to\", \"postmaster\") ); },\n"
    " { name = \"g\"; data = ( (\"Header Field\", \"is\", \"X-*: *\"), (\"Message Size\", \"greater than\", "
    "\"1k\"), (\"Message Size\", \"less than\", \"10M\") ); action = ( (\"Reject with\", \"no\") ); },\n"
    " { name = \"h\"; data = ( (\"Human Generated\", \"is\", \"yes\"), (\"Current Date\", \"is\", \"*\"), "
    "(\"Current Day\", \"in\", \"Mon,Tuesday,*\"), (\"Current Time\", \"greater than\", \"00:00\") ); action "
    "= ( (\"Reply with\", \"Subject: r\\n\\nthanks\") ); }\n"
    ");\n";

static struct wp_rules *load_text(const char *text, struct wp_errors *err)
{
    config_t cfg;
    config_init(&cfg);
    struct wp_rules *r = NULL;
    if (config_read_string(&cfg, text) == CONFIG_TRUE) {
        const config_setting_t *list = config_lookup(&cfg, "rules");
        r = wp_rules_load(list && config_setting_is_list(list) ? list : NULL, "fuzz.conf",
                          &wp_milter_conf(snap)->rules_env, err);
    }
    config_destroy(&cfg);
    return r;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    g_mime_init(); /* as waypost-milter does before any message */
    const char *conf = getenv("WAYPOST_FUZZ_CONF");
    struct wp_errors err;
    wp_errors_init(&err);
    snap = wp_snapshot_load(conf ? conf : "conf/waypost.conf", wp_sections_all, &err);
    if (snap)
        every = load_text(every_text, &err);
    for (size_t i = 0; i < err.count; i++)
        fprintf(stderr, "%s\n", err.msgs[i]);
    wp_errors_free(&err);
    if (!snap || !every || wp_rules_count(every) != 8)
        abort(); /* the fixed rules must load: a fuzz run on nothing proves nothing */
    return 0;
}

static void run(const struct wp_rules *r, const struct wp_message *m)
{
    struct wp_outcome out;
    wp_rules_evaluate(r, &wp_milter_conf(snap)->rules_env, m, &out);
    wp_outcome_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    char *text = malloc(size + 32);
    static const struct wp_header fixed_headers[] = {
        {"From", "\"A\" <a@client.test>"}, {"To", "bob@company.dom"}, {"Subject", "=?UTF-8?Q?r=C3=A9?="}};
    static const char *const fixed_rcpts[] = {"alice@company.dom", "x@friend.com"};
    if ((data[0] & 1) == 0) {
        int n = snprintf(text, size + 32, "rules = (%.*s);", (int)(size - 1), (const char *)data + 1);
        (void)n;
        struct wp_errors err;
        wp_errors_init(&err);
        struct wp_rules *r = load_text(text, &err);
        wp_errors_free(&err);
        if (r) {
            struct wp_message m = {"s@client.test", fixed_rcpts, 2,         fixed_headers, 3, 4000,
                                   "192.0.2.1",     "",          1700000000};
            run(r, &m);
            wp_rules_free(r);
        }
        free(text);
        return 0;
    }
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    char *parts[40];
    size_t np = 0;
    for (char *p = text, *end = text + size - 1; np < 40 && p <= end; p += strlen(p) + 1)
        parts[np++] = p;
    /* sender, client, then recipients up to an empty part, then fields */
    const char *rcpts[8];
    size_t nr = 0, i = 2;
    for (; i < np && parts[i][0] && nr < 8; i++)
        rcpts[nr++] = parts[i];
    struct wp_header headers[32];
    size_t nh = 0;
    for (i++; i < np && nh < 32; i++) {
        char *colon = strchr(parts[i], ':');
        if (!colon)
            continue;
        *colon = '\0';
        headers[nh].name = parts[i];
        headers[nh].value = colon + 1;
        nh++;
    }
    struct wp_message m = {np > 0 ? parts[0] : "",
                           rcpts,
                           nr,
                           headers,
                           nh,
                           size * 97,
                           np > 1 ? parts[1] : "",
                           (data[0] & 2) ? "alice" : "",
                           (time_t)1700000000 + (time_t)size * 86311};
    run(every, &m);
    free(text);
    return 0;
}
