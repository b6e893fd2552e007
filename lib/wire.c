/* SPDX-License-Identifier: MIT */
/*
 * wire.c - netstrings and %XX coding.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "lib/wire.h"

enum wp_wire_status wp_netstring_parse(const char *buf, size_t len, size_t max, const char **payload,
                                       size_t *plen, size_t *used)
{
    size_t n = 0, i = 0;
    for (; i < len && buf[i] != ':'; i++) {
        if (buf[i] < '0' || buf[i] > '9' || i >= 9 || (i == 1 && buf[0] == '0'))
            return WP_WIRE_BAD;
        n = n * 10 + (size_t)(buf[i] - '0');
    }
    if (n > max)
        return WP_WIRE_TOO_BIG;
    if (i == len)
        return WP_WIRE_MORE;
    if (i == 0)
        return WP_WIRE_BAD;
    /* i is the ':' */
    if (len < i + 1 + n + 1)
        return WP_WIRE_MORE;
    if (buf[i + 1 + n] != ',')
        return WP_WIRE_BAD;
    *payload = buf + i + 1;
    *plen = n;
    *used = i + 1 + n + 1;
    return WP_WIRE_OK;
}

int wp_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long wp_xdecode(char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%') {
            if (i + 2 >= len)
                return -1;
            int hi = wp_hexval(s[i + 1]), lo = wp_hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            char c = (char)(hi * 16 + lo);
            if (c == '\0')
                return -1;
            s[o++] = c;
            i += 2;
        } else {
            s[o++] = s[i];
        }
    }
    return (long)o;
}

bool wp_xencode(const char *in, char *out, size_t outsize)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f || *p == '%') {
            if (o + 3 >= outsize)
                return false;
            snprintf(out + o, 4, "%%%02X", *p);
            o += 3;
        } else {
            if (o + 1 >= outsize)
                return false;
            out[o++] = (char)*p;
        }
    }
    if (o >= outsize)
        return false;
    out[o] = '\0';
    return true;
}
