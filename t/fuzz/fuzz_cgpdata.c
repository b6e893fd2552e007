/* SPDX-License-Identifier: MIT */
/* libFuzzer target: CommuniGate's textual data format (lib/cgpdata.c) on
 * arbitrary bytes, then a walk over whatever tree came out. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "lib/cgpdata.h"

static size_t walk(const struct wp_cgp *v, size_t depth)
{
    size_t sum = v->len + depth;
    if (v->type == WP_CGP_STRING && strlen(v->str) != v->len)
        __builtin_trap(); /* a string never holds a zero byte */
    for (size_t i = 0; i < v->n; i++) {
        if (v->type == WP_CGP_DICT && wp_cgp_get(v, v->keys[i]) != v->items[i])
            __builtin_trap(); /* keys are unique: a lookup finds its own value */
        sum += walk(v->items[i], depth + 1);
    }
    return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    struct wp_cgp *v = wp_cgp_parse((const char *)data, size, err, sizeof(err));
    if (v) {
        volatile size_t s = walk(v, 0);
        (void)s;
        wp_cgp_free(v);
    } else if (err[0] == '\0') {
        __builtin_trap(); /* every failure says where and why */
    }
    return 0;
}
