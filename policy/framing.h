/* SPDX-License-Identifier: MIT */
/*
 * framing.h - the three request formats waypost-policyd speaks, as pure
 * functions over a buffer: socketmap netstrings, tcp_table lines and policy
 * delegation attribute blocks, and the answers' framing.  No sockets, no
 * events: the server (server.c) reads, calls these, looks up and writes.
 *
 * A request is parsed where it lies: the parsers terminate the strings they
 * return in the buffer itself (overwriting the ',' of a netstring or the
 * '\n' of a line), so the caller must own the bytes.  Every parser takes
 * max, the longest request allowed (policyd.max_request), and never reads
 * past len.
 */
#ifndef WP_POLICY_FRAMING_H
#define WP_POLICY_FRAMING_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/maps.h"

enum wp_frame {
    WP_FRAME_MORE,      /* no complete request yet */
    WP_FRAME_REQUEST,   /* one complete request, *used bytes */
    WP_FRAME_TOO_BIG,   /* over max: refuse and close */
    WP_FRAME_MALFORMED, /* not this protocol: refuse and close */
    WP_FRAME_NO_KEY,    /* socketmap: a netstring, but not "<map> <key>" */
    WP_FRAME_NUL,       /* policy: a NUL byte in a line */
    WP_FRAME_LONG_ATTR, /* policy: a value we keep does not fit its buffer */
    WP_FRAME_NOT_POLICY /* policy: the block lacks request=smtpd_access_policy */
};

/* socketmap: "<len>:<map> <key>," -> map and key (NUL-terminated in place). */
enum wp_frame wp_framing_socketmap(char *in, size_t len, size_t max, const char **map, const char **key,
                                   size_t *used);

/* tcp_table: "get <%XX-encoded key>\n" (CR LF too) -> the decoded key. */
enum wp_frame wp_framing_tcp(char *in, size_t len, size_t max, const char **key, size_t *used);

/* Policy delegation: name=value lines up to an empty line.  A request may
 * come in several reads: the reader keeps what the earlier ones brought.
 * *used counts the bytes of whole lines taken, whatever the result; after
 * WP_FRAME_REQUEST the request is in r->req until wp_framing_policy_next. */
struct wp_policy_reader {
    size_t bytes;          /* of the request so far */
    const char *long_attr; /* after WP_FRAME_LONG_ATTR: its name, in the buffer */
    struct wp_policy_request req;
};
enum wp_frame wp_framing_policy(struct wp_policy_reader *r, char *in, size_t len, size_t max, size_t *used);
/* Forget the request just served. */
void wp_framing_policy_next(struct wp_policy_reader *r);

/* Room an answer of payload length n needs in wp_framing_put's buffer. */
#define WP_FRAMING_OVERHEAD 24
/* Write a then b then d (b, d may be NULL) at dst, as a netstring when
 * netstring is set; the bytes written.  dst must hold their length plus
 * WP_FRAMING_OVERHEAD. */
size_t wp_framing_put(char *dst, bool netstring, const char *a, const char *b, const char *d);

#endif
