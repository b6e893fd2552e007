/* SPDX-License-Identifier: MIT */
/* Unit tests: sending to many sockets in one batch, through io_uring and
 * through send(2), with full and closed sockets among them. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "policy/sendbatch.h"
#include "unit.h"

enum { PAIRS = 40 };

struct outcome {
    int order; /* when done() saw it */
    ssize_t result;
};

static int done_count;
static struct outcome outcomes[WP_SENDBATCH_MAX];

static void record(void *user, ssize_t result)
{
    struct outcome *o = user;
    o->order = done_count++;
    o->result = result;
}

/* May this process use io_uring at all?  Not when the kernel setting
 * closes it, nor under a system call filter (containers often block it). */
static bool kernel_allows_uring(void)
{
    int disabled = 0, seccomp = 0;
    FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
    if (f) { /* older kernels have no such setting */
        if (fscanf(f, "%d", &disabled) != 1)
            disabled = 0;
        fclose(f);
    }
    f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof(line), f))
            if (sscanf(line, "Seccomp: %d", &seccomp) == 1)
                break;
        fclose(f);
    }
    return disabled == 0 && seccomp == 0;
}

static void run_mode(bool uring)
{
    struct wp_sendbatch *b = calloc(1, sizeof(*b));
    char why[128];
    bool got = wp_sendbatch_init(b, uring, why, sizeof(why));
    if (!uring)
        ck_assert(!got && why[0] == '\0');
    else if (kernel_allows_uring())
        ck_assert_msg(got, "io_uring wanted and allowed but not set up: %s", why);

    int sv[PAIRS][2];
    char msg[PAIRS][32];
    for (int i = 0; i < PAIRS; i++) {
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]), 0);
        snprintf(msg[i], sizeof(msg[i]), "answer %d,", i);
    }
    /* Socket 3: its buffer full.  Socket 5: the peer is gone. */
    fcntl(sv[3][0], F_SETFL, O_NONBLOCK);
    static char filler[65536];
    while (send(sv[3][0], filler, sizeof(filler), MSG_DONTWAIT) > 0)
        ;
    close(sv[5][1]);

    done_count = 0;
    memset(outcomes, 0, sizeof(outcomes));
    for (int i = 0; i < PAIRS; i++) {
        ck_assert(!wp_sendbatch_full(b));
        wp_sendbatch_add(b, sv[i][0], msg[i], strlen(msg[i]), &outcomes[i]);
    }
    wp_sendbatch_run(b, record);
    ck_assert_int_eq(done_count, PAIRS);
    for (int i = 0; i < PAIRS; i++) {
        ck_assert_int_eq(outcomes[i].order, i); /* in the order added */
        if (i == 3) {
            ck_assert_int_eq(outcomes[i].result, -EAGAIN);
        } else if (i == 5) {
            ck_assert_int_eq(outcomes[i].result, -EPIPE); /* and no SIGPIPE killed us */
        } else {
            ck_assert_int_eq(outcomes[i].result, (ssize_t)strlen(msg[i]));
            char in[64];
            ssize_t n = recv(sv[i][1], in, sizeof(in), MSG_DONTWAIT);
            ck_assert_int_eq(n, (ssize_t)strlen(msg[i]));
            ck_assert(memcmp(in, msg[i], (size_t)n) == 0);
            ck_assert_int_lt(recv(sv[i][1], in, sizeof(in), MSG_DONTWAIT), 0); /* sent once */
        }
    }
    /* The batch is empty again, and a second run goes on working. */
    ck_assert_uint_eq(b->n, 0);
    done_count = 0;
    wp_sendbatch_add(b, sv[0][0], "again,", 6, &outcomes[0]);
    wp_sendbatch_run(b, record);
    ck_assert_int_eq(done_count, 1);
    ck_assert_int_eq(outcomes[0].result, 6);
    /* An empty run calls nothing. */
    wp_sendbatch_run(b, record);
    ck_assert_int_eq(done_count, 1);
    /* A batch holds WP_SENDBATCH_MAX. */
    for (int i = 0; i < WP_SENDBATCH_MAX; i++) {
        ck_assert(!wp_sendbatch_full(b));
        wp_sendbatch_add(b, sv[1][0], "x", 1, &outcomes[i]);
    }
    ck_assert(wp_sendbatch_full(b));
    done_count = 0;
    wp_sendbatch_run(b, record);
    ck_assert_int_eq(done_count, WP_SENDBATCH_MAX);
    for (int i = 0; i < WP_SENDBATCH_MAX; i++)
        ck_assert_int_eq(outcomes[i].result, 1);

    for (int i = 0; i < PAIRS; i++) {
        close(sv[i][0]);
        if (i != 5)
            close(sv[i][1]);
    }
    wp_sendbatch_free(b);
    free(b);
}

START_TEST(through_io_uring)
{
    run_mode(true);
}
END_TEST

START_TEST(through_send)
{
    run_mode(false);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sendbatch");
    TCase *tc = tcase_create("sendbatch");
    tcase_add_test(tc, through_io_uring);
    tcase_add_test(tc, through_send);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(suite)
