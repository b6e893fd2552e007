/* SPDX-License-Identifier: MIT */
/*
 * wire.h - framing of Postfix's table protocols.
 *
 * Netstrings (socketmap): "<decimal length>:<bytes>,".  The parser works on
 * whatever has arrived so far and says whether it needs more; a length
 * with more than 9 digits, a leading zero, a missing ':' or ',' or a length
 * over the caller's limit is malformed, and the stream cannot be resynced.
 *
 * %XX (tcp_table): requests and replies escape '%', white space and
 * non-printing bytes as %XX.  Decoding rejects a '%' not followed by two hex
 * digits and a decoded NUL byte.
 */
#ifndef WP_WIRE_H
#define WP_WIRE_H

#include <stdbool.h>
#include <stddef.h>

enum wp_wire_status { WP_WIRE_OK, WP_WIRE_MORE, WP_WIRE_BAD, WP_WIRE_TOO_BIG };

/* Parse one netstring at the start of buf.  On OK, payload and plen point
 * into buf and *used is the whole frame's length. */
enum wp_wire_status wp_netstring_parse(const char *buf, size_t len, size_t max, const char **payload,
                                       size_t *plen, size_t *used);

/* Decode %XX in place (len bytes); returns the new length, or -1 if malformed. */
/* The value of one hexadecimal digit, -1 for any other character. */
int wp_hexval(char c);
long wp_xdecode(char *s, size_t len);

/* Encode for a tcp_table reply; false if it does not fit in outsize. */
bool wp_xencode(const char *in, char *out, size_t outsize);

#endif
