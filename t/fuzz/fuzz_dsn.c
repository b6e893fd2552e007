/* SPDX-License-Identifier: MIT */
/* libFuzzer target: odmrd's DSN builder (odmr/dsn.h) on an arbitrary
 * message: the input is split at NUL bytes into sender, up to 8
 * recipients each with the customer's refusal text, and the message text
 * whose header block the report quotes; once with refusals, once expired.
 * The refusal text goes through wp_str_printable first, as turn.c does. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "odmr/dsn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    char *parts[18];
    size_t np = 0;
    char *p = text, *end = text + size;
    while (np < 17 && p < end) {
        parts[np++] = p;
        p += strlen(p) + 1;
    }
    struct wp_spool_msg m;
    memset(&m, 0, sizeof(m));
    strcpy(m.queue, "domain1.dom");
    strcpy(m.id, "1");
    m.arrival = 1700000000;
    m.sender = np > 0 ? parts[0] : "";
    char *rcpts[8], *why[8];
    bool which[8];
    size_t k = 1;
    for (; m.nrcpts < 8 && k + 1 < np; k += 2) {
        rcpts[m.nrcpts] = parts[k];
        wp_str_printable(parts[k + 1]);
        why[m.nrcpts] = parts[k + 1][0] ? parts[k + 1] : NULL;
        which[m.nrcpts] = (parts[k + 1][0] & 1) == 0;
        m.nrcpts++;
    }
    if (m.nrcpts == 0) {
        free(text);
        return 0;
    }
    m.rcpts = rcpts;
    if (p < end) {
        m.body = p; /* the rest, up to a NUL (the copy ends in one) */
        m.body_len = strlen(m.body);
    }
    free(wp_dsn_text("odmr.test", &m, which, why, 432000));
    free(wp_dsn_text("odmr.test", &m, which, NULL, 432000));
    free(text);
    return 0;
}
