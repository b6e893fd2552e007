/* SPDX-License-Identifier: MIT */
/*
 * json.c - JSON string output.
 */
#include "config.h"

#include "lib/json.h"

void wp_json_string(FILE *out, const char *s)
{
    putc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            putc('\\', out);
            putc(*p, out);
        } else if (*p < 0x20 || *p == 0x7f) {
            fprintf(out, "\\u%04x", *p);
        } else if (*p >= 0x80) {
            /* Keep valid UTF-8 sequences, replace anything else. */
            int n = (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2 : (*p & 0xf8) == 0xf0 ? 3 : -1;
            int ok = n > 0;
            for (int i = 1; ok && i <= n; i++)
                ok = (p[i] & 0xc0) == 0x80;
            if (!ok) {
                fputs("\\ufffd", out);
                continue;
            }
            fwrite(p, 1, (size_t)n + 1, out);
            p += n;
        } else {
            putc(*p, out);
        }
    }
    putc('"', out);
}
