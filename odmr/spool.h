/* SPDX-License-Identifier: MIT */
/*
 * spool.h - the durable spool of waypost-odmrd: one directory per queue,
 * one file per message.
 *
 * A message file is a short text envelope, an empty line, then the message
 * exactly as LMTP delivered it (dot-unstuffed, CRLF line ends):
 *
 *   WAYPOST-ODMR 1
 *   Q domain1.dom                 the queue (also the directory name)
 *   T 1764672000                  arrival, seconds since the epoch
 *   S sender@example.com          envelope sender ("S " alone: null sender)
 *   R user@domain2.dom            one line per recipient still to deliver
 *
 * Every change is atomic and durable before it is reported: the new content
 * goes to a temporary name, the file is fsync'ed, renamed over its final
 * name and the directory fsync'ed.  So a crash leaves either the old or the
 * new file, never a torn one; temporary files of a crashed run start with
 * '.' and are removed by wp_spool_open().  A message whose recipients were
 * delivered in part keeps the rest (wp_spool_settle rewrites it).
 *
 * Limits: addresses must not hold CR, LF or NUL (LMTP cannot carry them
 * anyway); a file is read whole, so a message must fit in memory (the
 * daemon caps messages at odmr.max_message_size).
 */
#ifndef WP_SPOOL_H
#define WP_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define WP_SPOOL_ID_MAX 64

struct wp_spool_msg {
    char queue[256];
    char id[WP_SPOOL_ID_MAX];
    time_t arrival;
    char *sender; /* "" for the null sender */
    char **rcpts;
    size_t nrcpts;
    char *body; /* only when loaded with the body; NUL-terminated */
    size_t body_len;
    size_t size; /* size of the whole file */
};

/* A queue name is a next-hop host: letters, digits, '.', '-', '_', or an
 * IP literal in brackets; not empty, no leading '.', at most 255 bytes. */
bool wp_spool_queue_name_valid(const char *queue);

/* Create the spool root (mode 0700) if missing and remove temporary files
 * left by a crash. */
bool wp_spool_open(const char *root, char *err, size_t errlen);

/* Store one message durably; its id goes to id (WP_SPOOL_ID_MAX bytes). */
bool wp_spool_store(const char *root, const char *queue, const char *sender, char *const *rcpts,
                    size_t nrcpts, const char *body, size_t len, time_t arrival, char *id, char *err,
                    size_t errlen);

/* Read a message (with or without its body). */
bool wp_spool_load(const char *root, const char *queue, const char *id, bool with_body,
                   struct wp_spool_msg *m, char *err, size_t errlen);
void wp_spool_msg_free(struct wp_spool_msg *m);

/* The recipients with done[i] set were delivered: drop them, and the whole
 * file once none remains.  m is updated to what is left.  A removal is
 * made durable at once only with sync_dir; without it the caller calls
 * wp_spool_sync() later (a removal the disk forgets in a system crash
 * means a duplicate, never a loss, and one directory fsync for many
 * removals is what makes a long ATRN session fast).  A rewrite is always
 * durable. */
bool wp_spool_settle(const char *root, struct wp_spool_msg *m, const bool *done, bool sync_dir, char *err,
                     size_t errlen);

/* Remove a message (sync_dir as above). */
bool wp_spool_remove(const char *root, const char *queue, const char *id, bool sync_dir, char *err,
                     size_t errlen);

/* Take a queue's lock without waiting: an flock on its directory, held by
 * whoever delivers or changes the queue (a release process, an ATRN
 * session, `waypost queue delete|bounce`).  The descriptor that holds it
 * (close it to let go; a fork shares it, so a child that does not deliver
 * the queue closes its copy), or -1 with errno EWOULDBLOCK (someone else
 * holds it), ENOENT (no directory: nothing ever arrived) or another. */
int wp_spool_lock(const char *root, const char *queue);

/* fsync a queue's directory: removals before it are durable. */
bool wp_spool_sync(const char *root, const char *queue, char *err, size_t errlen);

/* Message ids of a queue, oldest first (NULL-terminated, free with
 * wp_spool_names_free); queue names of the spool, sorted. */
char **wp_spool_list(const char *root, const char *queue, size_t *n);
char **wp_spool_queues(const char *root, size_t *n);
void wp_spool_names_free(char **names, size_t n);

#endif
