/* SPDX-License-Identifier: MIT */
/*
 * command.h - waypost-odmrd's command parser for the LMTP intake and the
 * customer session: the command word and the envelope address of MAIL and
 * RCPT.  Pure functions on one line (already split off at LF, the CR
 * dropped, NUL refused by the line reader).
 *
 * Limits: an address longer than WP_ADDR_MAX or size-1 is refused; so is
 * any control character in it, quoted or escaped (a bare CR would reach a
 * header or a DSN line); ESMTP parameters are left to the caller.
 */
#ifndef WP_ODMR_COMMAND_H
#define WP_ODMR_COMMAND_H

#include <stdbool.h>
#include <stddef.h>

/* Is the command word cmd at the start of line (then a space or the end)?
 * *arg: the argument, leading spaces skipped. */
bool wp_command_is(const char *line, const char *cmd, const char **arg);

/* The address of "FROM:<addr> params" or "TO:<addr> params": copied into
 * out; *params points after it.  A source route (@a,@b:) is dropped. */
bool wp_command_envelope_arg(const char *arg, const char *prefix, char *out, size_t size,
                             const char **params);

#endif
