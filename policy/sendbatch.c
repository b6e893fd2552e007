/* SPDX-License-Identifier: MIT */
/*
 * sendbatch.c - send to many sockets with one system call (see sendbatch.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/sendbatch.h"

bool wp_sendbatch_init(struct wp_sendbatch *b, bool use_uring, char *why, size_t whylen)
{
    b->uring = false;
    b->n = 0;
    if (why && whylen)
        why[0] = '\0';
    if (!use_uring)
        return false;
    int rc = io_uring_queue_init(WP_SENDBATCH_MAX, &b->ring, 0);
    if (rc == 0) {
        b->uring = true;
        return true;
    }
    if (why)
        snprintf(why, whylen, "io_uring: %s", strerror(-rc));
    return false;
}

void wp_sendbatch_free(struct wp_sendbatch *b)
{
    if (b->uring)
        io_uring_queue_exit(&b->ring);
    b->uring = false;
    b->n = 0;
}

void wp_sendbatch_add(struct wp_sendbatch *b, int fd, const void *buf, size_t len, void *user)
{
    b->items[b->n++] = (struct wp_sendbatch_item){fd, buf, len, user};
}

static ssize_t send_one(const struct wp_sendbatch_item *it)
{
    for (;;) {
        ssize_t n = send(it->fd, it->buf, it->len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return -errno;
    }
}

/* Submit every item; fill result[] for those io_uring reports on.  Returns
 * how many were handed to the kernel (all of them when the ring works), or
 * -1 if none was. */
static ssize_t run_uring(struct wp_sendbatch *b, ssize_t *result, bool *known)
{
    for (size_t i = 0; i < b->n; i++) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
        if (!sqe)
            return -1; /* cannot happen: the ring holds WP_SENDBATCH_MAX */
        /* MSG_DONTWAIT: a full socket buffer comes back as -EAGAIN instead
         * of io_uring waiting for room on our behalf. */
        io_uring_prep_send(sqe, b->items[i].fd, b->items[i].buf, b->items[i].len,
                           MSG_NOSIGNAL | MSG_DONTWAIT);
        io_uring_sqe_set_data64(sqe, i);
    }
    int submitted;
    do
        submitted = io_uring_submit(&b->ring);
    while (submitted == -EINTR);
    if (submitted <= 0)
        return -1;
    /* Non-blocking sends complete during the submission: their results
     * are in the completion ring already, and reading them is no system
     * call. */
    for (int got = 0; got < submitted; got++) {
        struct io_uring_cqe *cqe;
        int rc;
        do
            rc = io_uring_wait_cqe(&b->ring, &cqe);
        while (rc == -EINTR);
        if (rc < 0)
            break;
        uint64_t i = io_uring_cqe_get_data64(cqe);
        if (i < b->n) {
            result[i] = cqe->res;
            known[i] = true;
        }
        io_uring_cqe_seen(&b->ring, cqe);
    }
    return submitted;
}

void wp_sendbatch_run(struct wp_sendbatch *b, void (*done)(void *user, ssize_t result))
{
    ssize_t result[WP_SENDBATCH_MAX];
    bool known[WP_SENDBATCH_MAX];
    memset(known, 0, b->n * sizeof(known[0]));
    ssize_t submitted = -1;
    if (b->uring && b->n > 0) {
        submitted = run_uring(b, result, known);
        if (submitted < (ssize_t)b->n) {
            /* A ring that fails is not trusted again (nor left holding
             * entries that a later submission would send): from now on,
             * send(2). */
            io_uring_queue_exit(&b->ring);
            b->uring = false;
        }
    }
    for (size_t i = 0; i < b->n; i++) {
        if (known[i])
            continue;
        /* Not handed to the kernel: send it now.  Handed over but not
         * reported: whether it went out cannot be told, and sending it
         * again could repeat an answer, so the connection must end. */
        result[i] = submitted < 0 ? send_one(&b->items[i]) : -EIO;
    }
    size_t n = b->n;
    b->n = 0;
    for (size_t i = 0; i < n; i++)
        done(b->items[i].user, result[i]);
}
