/* SPDX-License-Identifier: MIT */
/*
 * picture.c - '*' picture matching with captures, and target expansion.
 */
#include "config.h"

#include <string.h>

#include "lib/picture.h"
#include "lib/util.h"

size_t wp_picture_stars(const char *pic, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += pic[i] == '*';
    return n;
}

/* No star, or one: the shapes every Router picture has ("*@d", "*.d.com",
 * "user"), matched with two comparisons instead of the backtracking walk.
 * With one star the text around it must equal the picture around it, so
 * the capture is whatever lies between: the walk would find the same. */
static bool match_simple(const char *pic, size_t plen, const char *star, const char *text, size_t tlen,
                         struct wp_capture *caps)
{
    if (!star)
        return plen == tlen && wp_strnieq(pic, text, plen);
    size_t head = (size_t)(star - pic), tail = plen - head - 1;
    if (tlen < head + tail || !wp_strnieq(pic, text, head) || !wp_strnieq(star + 1, text + tlen - tail, tail))
        return false;
    if (caps) {
        caps[0].start = text + head;
        caps[0].len = tlen - head - tail;
    }
    return true;
}

bool wp_picture_match(const char *pic, size_t plen, const char *text, size_t tlen, struct wp_capture *caps)
{
    size_t cap_start[WP_PICTURE_STARS], cap_end[WP_PICTURE_STARS];
    size_t p = 0, t = 0, nstar = 0;
    /* Where to resume if the text after the last star fails to match. */
    size_t back_p = (size_t)-1, back_t = 0, back_star = 0;

    const char *star = memchr(pic, '*', plen);
    if (!star || !memchr(star + 1, '*', plen - (size_t)(star - pic) - 1))
        return match_simple(pic, plen, star, text, tlen, caps);
    if (wp_picture_stars(pic, plen) > WP_PICTURE_STARS)
        return false;
    while (t < tlen) {
        if (p < plen && pic[p] == '*') {
            cap_start[nstar] = t;
            cap_end[nstar] = t;
            back_star = nstar++;
            back_p = ++p;
            back_t = t;
        } else if (p < plen && wp_lower(pic[p]) == wp_lower(text[t])) {
            p++;
            t++;
        } else if (back_p != (size_t)-1) {
            /* Let the last star swallow one more byte and retry after it. */
            nstar = back_star + 1;
            p = back_p;
            t = ++back_t;
            cap_end[back_star] = t;
        } else {
            return false;
        }
    }
    while (p < plen && pic[p] == '*') {
        cap_start[nstar] = t;
        cap_end[nstar] = t;
        nstar++;
        p++;
    }
    if (p != plen)
        return false;
    if (caps) {
        for (size_t i = 0; i < nstar; i++) {
            caps[i].start = text + cap_start[i];
            caps[i].len = cap_end[i] - cap_start[i];
        }
    }
    return true;
}

bool wp_picture_expand(const char *tmpl, const struct wp_capture *caps, size_t ncaps, char *out,
                       size_t outsize)
{
    size_t o = 0, k = 0;
    for (const char *s = tmpl; *s; s++) {
        if (*s == '*' && k < ncaps) {
            if (o + caps[k].len >= outsize)
                return false;
            memcpy(out + o, caps[k].start, caps[k].len);
            o += caps[k].len;
            k++;
        } else {
            if (o + 1 >= outsize)
                return false;
            out[o++] = *s;
        }
    }
    if (o >= outsize)
        return false;
    out[o] = '\0';
    return true;
}
