/* SPDX-License-Identifier: MIT */
/*
 * bench_rules - cost of evaluating the rules on one message.
 *
 *   bench_rules CONFIG [SECONDS]
 *
 * Loads CONFIG (its rules list), builds a typical message (From, To, Cc,
 * Subject with an encoded word, Message-ID, a few more header fields, two
 * envelope recipients) and evaluates the rules on it repeatedly on one core.
 * Prints messages per second and microseconds per message.
 */
#include "config.h"

#include <gmime/gmime.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "milter/rules.h"
#include "state/snapshot.h"
#include "milter/settings.h"
#include "cli/sections.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    double seconds = argc > 2 ? atof(argv[2]) : 2.0;
    g_mime_init();
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_snapshot *s = wp_snapshot_load(argv[1], wp_sections_all, &err);
    if (!s) {
        for (size_t i = 0; i < err.count; i++)
            fprintf(stderr, "%s\n", err.msgs[i]);
        return 1;
    }
    static const struct wp_header headers[] = {
        {"Received", "from client.test (unknown [192.0.2.10]) by mx.company.dom (Postfix) with ESMTP id 4Xy"},
        {"From", "\"Sender, Someone\" <someone@client.test>"},
        {"To", "John <john@friend.com>, alice@company.dom"},
        {"Cc", "team: bob@company.dom, carol@domain.dom;"},
        {"Subject", "=?UTF-8?Q?Quarterly_r=C3=A9port?= and plans"},
        {"Message-ID", "<20261125.1234@client.test>"},
        {"Date", "Wed, 25 Nov 2026 12:00:00 +0000"},
        {"MIME-Version", "1.0"},
        {"Content-Type", "text/plain; charset=utf-8"},
        {"X-Mailer", "Example Mail 1.0"},
    };
    static const char *const rcpts[] = {"john@friend.com", "alice@company.dom"};
    struct wp_message m = {
        .return_path = "someone@client.test",
        .rcpts = rcpts,
        .nrcpts = 2,
        .headers = headers,
        .nheaders = sizeof(headers) / sizeof(headers[0]),
        .size = 4000,
        .client_addr = "192.0.2.10",
        .auth_user = "",
        .now = time(NULL),
    };
    long done = 0;
    size_t fired = 0;
    double start = now_s(), elapsed;
    do {
        for (int i = 0; i < 100; i++) {
            struct wp_outcome out;
            wp_rules_evaluate(wp_milter_conf(s)->rules, &wp_milter_conf(s)->rules_env, &m, &out);
            fired = out.nfired;
            wp_outcome_free(&out);
        }
        done += 100;
        elapsed = now_s() - start;
    } while (elapsed < seconds);
    printf("rules=%zu fired=%zu messages=%ld seconds=%.2f per_s=%.0f us_each=%.1f\n",
           wp_rules_count(wp_milter_conf(s)->rules), fired, done, elapsed, (double)done / elapsed,
           elapsed * 1e6 / (double)done);
    wp_snapshot_unref(s);
    return 0;
}
