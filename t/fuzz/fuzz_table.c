/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the Router table parser and index on arbitrary bytes,
 * then a few lookups through whatever table came out. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "router/table.h"
#include "lib/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = wp_malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_table *t = wp_table_parse(buf, size, "fuzz.table", "company.dom", &err);
    if (t) {
        static const char *const probes[][2] = {
            {"u", "d.com"}, {"loginpage", "x.domain.dom"}, {"", ""}, {"a", "b.c.d.e"}, {"*", "*"},
        };
        for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
            struct wp_lookup_mode m = {i & 1, i & 2};
            struct wp_capture caps[2];
            size_t n;
            const struct wp_record *r = wp_table_lookup(t, probes[i][0], probes[i][1], &m, caps, &n);
            if (r && r->target) {
                char out[4096];
                wp_picture_expand(r->target, caps, n, out, sizeof(out));
            }
        }
        wp_table_free(t);
    }
    wp_errors_free(&err);
    return 0;
}
