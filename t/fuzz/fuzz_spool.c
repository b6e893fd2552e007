/* SPDX-License-Identifier: MIT */
/* libFuzzer target: reading a spool file (odmr/spool.h) whose bytes are
 * anything: a queue file is written by waypost-odmrd itself, but a disk
 * error, a crash mid-write or a hand-edited file must never crash the
 * daemon or `waypost queue`.  The input becomes the file's content; it is
 * loaded with and without its body, and a loaded message is handed to
 * the DSN builder as expiry does. */
#include "config.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "odmr/dsn.h"
#include "odmr/spool.h"

static char root[64];

/* libFuzzer ends with exit(): leave nothing in /tmp. */
static void cleanup(void)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/domain1.dom/1", root);
    unlink(path);
    snprintf(path, sizeof(path), "%s/domain1.dom", root);
    rmdir(path);
    rmdir(root);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[256];
    snprintf(root, sizeof(root), "/tmp/wp-fuzz-spool-%ld", (long)getpid());
    if (!wp_spool_open(root, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/domain1.dom", root);
    mkdir(dir, 0700);
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/domain1.dom/1", root);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        abort();
    if (size && write(fd, data, size) != (ssize_t)size)
        abort();
    close(fd);
    char err[256];
    for (int body = 0; body < 2; body++) {
        struct wp_spool_msg m;
        memset(&m, 0, sizeof(m));
        if (wp_spool_load(root, "domain1.dom", "1", body == 1, &m, err, sizeof(err))) {
            if (body && m.nrcpts > 0 && m.nrcpts <= 64) {
                bool which[64];
                memset(which, 1, sizeof(which));
                free(wp_dsn_text("odmr.test", &m, which, NULL, 432000));
            }
            wp_spool_msg_free(&m);
        }
    }
    return 0;
}
