/* SPDX-License-Identifier: MIT */
/*
 * framing.c - socketmap, tcp_table and policy request framing (framing.h).
 * Moved out of the server unchanged in behaviour: the same limits, the same
 * refusals, parsed in place.
 */
#include "config.h"

#include <string.h>

#include "lib/wire.h"
#include "policy/framing.h"

enum wp_frame wp_framing_socketmap(char *in, size_t len, size_t max, const char **map, const char **key,
                                   size_t *used)
{
    const char *payload;
    size_t plen, frame;
    enum wp_wire_status st = wp_netstring_parse(in, len, max, &payload, &plen, &frame);
    if (st == WP_WIRE_MORE)
        return WP_FRAME_MORE;
    if (st != WP_WIRE_OK)
        return st == WP_WIRE_TOO_BIG ? WP_FRAME_TOO_BIG : WP_FRAME_MALFORMED;
    /* The frame is ours now: terminate the payload on its ',' and split
     * "<map> <key>" on the first space, in place. */
    char *text = in + (payload - in);
    *used = frame;
    text[plen] = '\0';
    char *space = memchr(text, ' ', plen);
    if (!space || space == text || memchr(text, '\0', plen) || !space[1])
        return WP_FRAME_NO_KEY;
    *space = '\0';
    *map = text;
    *key = space + 1;
    return WP_FRAME_REQUEST;
}

enum wp_frame wp_framing_tcp(char *in, size_t len, size_t max, const char **key, size_t *used)
{
    char *nl = memchr(in, '\n', len);
    if (!nl)
        return len > max ? WP_FRAME_TOO_BIG : WP_FRAME_MORE;
    size_t n = (size_t)(nl - in);
    *used = n + 1;
    if (n > 0 && in[n - 1] == '\r')
        n--;
    in[n] = '\0';
    if (n > max)
        return WP_FRAME_TOO_BIG;
    long klen = -1;
    if (n >= 4 && strncmp(in, "get ", 4) == 0 && !memchr(in, '\0', n))
        klen = wp_xdecode(in + 4, n - 4);
    if (klen <= 0)
        return WP_FRAME_MALFORMED;
    in[4 + klen] = '\0';
    *key = in + 4;
    return WP_FRAME_REQUEST;
}

enum wp_frame wp_framing_policy(struct wp_policy_reader *r, char *in, size_t len, size_t max, size_t *used)
{
    size_t pos = 0;
    /* No line may hold a NUL byte: one search over everything read, not
     * one per line. */
    const char *nul = memchr(in, '\0', len);
    enum wp_frame result = WP_FRAME_MORE;
    while (pos < len) {
        char *line = in + pos;
        char *nl = memchr(line, '\n', len - pos);
        if (!nl) {
            if (r->bytes + (len - pos) > max)
                result = WP_FRAME_TOO_BIG;
            break;
        }
        size_t n = (size_t)(nl - line);
        pos += n + 1;
        r->bytes += n + 1;
        if (r->bytes > max) {
            result = WP_FRAME_TOO_BIG;
            break;
        }
        if (nul && nul < nl) {
            result = WP_FRAME_NUL;
            break;
        }
        if (n > 0 && line[n - 1] == '\r')
            n--;
        line[n] = '\0';
        if (n == 0) {
            result =
                strcmp(r->req.request, "smtpd_access_policy") == 0 ? WP_FRAME_REQUEST : WP_FRAME_NOT_POLICY;
            break;
        }
        char *eq = memchr(line, '=', n);
        if (!eq || eq == line) {
            result = WP_FRAME_MALFORMED;
            break;
        }
        *eq = '\0';
        size_t name_len = (size_t)(eq - line);
        int k = wp_policy_kept_index(line, name_len);
        if (k >= 0 && !wp_policy_attr_set(&r->req, (enum wp_policy_kept)k, eq + 1, n - name_len - 1)) {
            r->long_attr = line;
            result = WP_FRAME_LONG_ATTR;
            break;
        }
    }
    *used = pos;
    return result;
}

void wp_framing_policy_next(struct wp_policy_reader *r)
{
    wp_policy_request_clear(&r->req);
    r->bytes = 0;
    r->long_attr = NULL;
}

/* Formatted by hand: this runs once per request, and printf would cost more
 * than the lookup. */
size_t wp_framing_put(char *dst, bool netstring, const char *a, const char *b, const char *d)
{
    size_t la = strlen(a), lb = b ? strlen(b) : 0, ld = d ? strlen(d) : 0;
    size_t len = la + lb + ld;
    char *p = dst;
    if (netstring) {
        char digits[24];
        size_t k = 0, v = len;
        do
            digits[k++] = (char)('0' + v % 10);
        while ((v /= 10) > 0);
        while (k > 0)
            *p++ = digits[--k];
        *p++ = ':';
    }
    memcpy(p, a, la);
    p += la;
    if (lb)
        memcpy(p, b, lb);
    p += lb;
    if (ld)
        memcpy(p, d, ld);
    p += ld;
    if (netstring)
        *p++ = ',';
    return (size_t)(p - dst);
}
