/* SPDX-License-Identifier: MIT */
/*
 * sendbatch.h - send to many sockets with one system call.
 *
 * A server that answers the requests of one event-loop pass sends one
 * answer to each of many sockets.  Each send(2) wakes the client that waits
 * for it, and on a busy machine the woken client takes the CPU from the
 * server right after that send returns: the server then sends its next
 * answer only after the client has run, and every answer costs two context
 * switches.  Submitted together through io_uring, all the sends of a pass
 * happen inside one system call, and the clients run after it, each finding
 * all of its answers.
 *
 * Limits: one batch per thread, not shared.  The buffers must stay as they
 * are until wp_sendbatch_run() returns.  Sends never block and are never
 * retried here: a result short of the length, or -EAGAIN, is the caller's
 * to finish (with send(2) and its event loop).  Where io_uring is not
 * available (an old kernel, kernel.io_uring_disabled, a container's system
 * call filter) or not wanted, the same calls send with send(2), one call
 * per socket.
 */
#ifndef WP_SENDBATCH_H
#define WP_SENDBATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <liburing.h>

#define WP_SENDBATCH_MAX 256 /* sends per system call; a longer batch takes several */

struct wp_sendbatch_item {
    int fd;
    const void *buf;
    size_t len;
    void *user;
};

struct wp_sendbatch {
    bool uring; /* false: send(2) each */
    struct io_uring ring;
    size_t n;
    struct wp_sendbatch_item items[WP_SENDBATCH_MAX];
};

/* Set up a batch; with use_uring false, or when io_uring cannot be set up,
 * it sends with send(2) (why then says why, if io_uring was wanted).
 * Returns whether io_uring is in use. */
bool wp_sendbatch_init(struct wp_sendbatch *b, bool use_uring, char *why, size_t whylen);
void wp_sendbatch_free(struct wp_sendbatch *b);

/* Is the batch full?  Then run it before adding more. */
static inline bool wp_sendbatch_full(const struct wp_sendbatch *b)
{
    return b->n == WP_SENDBATCH_MAX;
}

/* Queue len bytes at buf for fd (len > 0, the batch not full). */
void wp_sendbatch_add(struct wp_sendbatch *b, int fd, const void *buf, size_t len, void *user);

/* Send everything queued, then call done(user, result) once per item in the
 * order added: bytes sent (possibly fewer than len), or -errno (-EAGAIN:
 * the socket's buffer is full).  done may close the item's socket but must
 * not add to this batch.  The batch is empty afterwards. */
void wp_sendbatch_run(struct wp_sendbatch *b, void (*done)(void *user, ssize_t result));

#endif
