/* SPDX-License-Identifier: MIT */
/*
 * queue.h - `waypost queue list|show|flush|delete|bounce`: the held and
 * ATRN queues in waypost-odmrd's spool, administered as postqueue and
 * postsuper administer Postfix's queue.  `waypost odmr list` is the old
 * name of `queue list` (its columns as they were).
 */
#ifndef WP_CLI_QUEUE_H
#define WP_CLI_QUEUE_H

#include <stdbool.h>

/* argv[0] is "queue" (or "odmr" for the old alias); the exit status. */
int wp_queue_main(const char *config, int argc, char **argv);

#endif
