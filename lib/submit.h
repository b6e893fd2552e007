/* SPDX-License-Identifier: MIT */
/*
 * submit.h - hand a finished message to the host MTA.
 *
 * One mail-injection interface for everything Waypost sends itself (the
 * milter's automatic replies, waypost-odmrd's delivery reports), as
 * Postfix's post_mail.c is for Postfix's own notices.  The caller builds
 * the whole message text (LF line ends); this module only delivers it:
 *
 *   smtp:HOST:PORT   one SMTP transaction (EHLO, MAIL, RCPT..., DATA), dot
 *                    stuffing and CRLF done here; 30 s per step
 *   sendmail:PATH    PATH -i -f SENDER -- RCPT... with the text on stdin
 *
 * The message counts as sent when the MTA took it for at least one
 * recipient.  Limits: no TLS, no AUTH (the MTA is local), no pipelining.
 */
#ifndef WP_SUBMIT_H
#define WP_SUBMIT_H

#include <stdbool.h>
#include <stddef.h>

/* Send text from sender ("" for the null sender) to rcpts through via.
 * False with a reason in err when the MTA did not take it. */
bool wp_submit(const char *via, const char *sender, const char *const *rcpts, size_t nrcpts, const char *text,
               char *err, size_t errlen);

#endif
