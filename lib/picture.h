/* SPDX-License-Identifier: MIT */
/*
 * picture.h - CommuniGate "pictures": strings where '*' stands for any text.
 *
 * Matching is ASCII case-insensitive.  Each '*' matches any run of bytes,
 * the empty one included.  The text each '*' matched is reported as a
 * capture so that it can be put back into a target ("<*@old> = *@new").
 * At most WP_PICTURE_STARS stars are honoured; more make the picture invalid.
 * Matching is linear in practice (backtracking only to the last star).
 */
#ifndef WP_PICTURE_H
#define WP_PICTURE_H

#include <stdbool.h>
#include <stddef.h>

#define WP_PICTURE_STARS 8

struct wp_capture {
    const char *start;
    size_t len;
};

size_t wp_picture_stars(const char *pic, size_t len);

/* True if text matches pic.  caps (may be NULL) receives one capture per star. */
bool wp_picture_match(const char *pic, size_t plen, const char *text, size_t tlen, struct wp_capture *caps);

/* Replace the k-th '*' of tmpl by caps[k] (stars beyond ncaps stay '*').
 * Returns false if the result does not fit in out. */
bool wp_picture_expand(const char *tmpl, const struct wp_capture *caps, size_t ncaps, char *out,
                       size_t outsize);

#endif
