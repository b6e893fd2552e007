/* SPDX-License-Identifier: MIT */
/*
 * kvline.c - decision log lines (kvline.h).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/kvline.h"

void wp_kvline_init(struct wp_kvline *l)
{
    l->buf[0] = '\0';
    l->len = 0;
    l->cut = false;
}

/* Room for n more bytes and the "..." of a cut line, or mark it cut. */
static bool room(struct wp_kvline *l, size_t n)
{
    if (l->cut)
        return false;
    if (l->len + n + 4 > sizeof(l->buf)) {
        memcpy(l->buf + l->len, "...", 4);
        l->len += 3;
        l->cut = true;
        return false;
    }
    return true;
}

static void put(struct wp_kvline *l, const char *s, size_t n)
{
    if (!room(l, n))
        return;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    l->buf[l->len] = '\0';
}

static bool needs_quotes(const char *v)
{
    if (!*v)
        return true;
    for (; *v; v++)
        if (*v == ' ' || *v == '"' || *v == '\\' || *v == '=')
            return true;
    return false;
}

void wp_kvline_add(struct wp_kvline *l, const char *key, const char *value)
{
    if (!value)
        value = "";
    if (l->len > 0)
        put(l, " ", 1);
    put(l, key, strlen(key));
    put(l, "=", 1);
    bool quote = needs_quotes(value);
    if (quote)
        put(l, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)value; *p && !l->cut; p++) {
        char esc[5];
        if (*p < 0x20 || *p == 0x7f) {
            snprintf(esc, sizeof(esc), "\\x%02x", *p);
            put(l, esc, 4);
        } else if (quote && (*p == '"' || *p == '\\')) {
            esc[0] = '\\';
            esc[1] = (char)*p;
            put(l, esc, 2);
        } else {
            put(l, (const char *)p, 1);
        }
    }
    if (quote)
        put(l, "\"", 1);
}

void wp_kvline_addf(struct wp_kvline *l, const char *key, const char *fmt, ...)
{
    char v[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof(v), fmt, ap);
    va_end(ap);
    wp_kvline_add(l, key, v);
}

const char *wp_kvline_text(const struct wp_kvline *l)
{
    return l->buf;
}
