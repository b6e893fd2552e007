/* SPDX-License-Identifier: MIT */
/*
 * control.h - waypost-odmrd's control socket (odmr.control_socket, a unix
 * socket, mode odmr.control_mode): one request line, one answer line.
 *
 *   FLUSH queue       release the held queue: "OK ..." at once, the
 *                     delivery runs on (policyd's ETRN)
 *   FLUSH-WAIT queue  the same, answered when the delivery is over:
 *                     "OK queue: D delivered, R returned, W waiting" or
 *                     "FAIL queue: why" (waypost queue flush)
 *
 * "BUSY ..." when an ATRN session or another release holds the queue,
 * "ERR ..." for a bad request.  Each release is a process of its own
 * (odmr/deliver.c: blocking SMTP client), so the event loop never waits
 * for a customer's server; it dies with the daemon (PR_SET_PDEATHSIG), so
 * a kill -9 leaves at most the message in flight to be sent again.
 * Clients are trusted by the socket's mode: a request line must arrive
 * within a second.
 */
#ifndef WP_ODMR_CONTROL_H
#define WP_ODMR_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

struct server;
struct wp_control;

/* Listen on fd (already bound); NULL on failure. */
struct wp_control *wp_control_new(struct server *srv, int fd);
void wp_control_free(struct wp_control *c);

#endif
