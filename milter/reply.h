/* SPDX-License-Identifier: MIT */
/*
 * reply.h - "Reply with" and "Reply to All with": build the reply.
 *
 * The rule's text may begin with header lines (CommuniGate marks them with
 * a leading '+'; a first line "Subject:", "MIME-Version:" or
 * "Content-Type:" also starts them) ended by an empty line, so a reply can
 * set its Subject and carry a MIME body with attachments.  Replies go with
 * a null envelope sender and "Auto-Submitted: auto-replied", and never to
 * mail that is not human-generated (bulk, lists, auto-submitted, bounces).
 * The finished text goes to the host MTA through lib/submit.h (milter.reply_via).
 */
#ifndef WP_REPLY_H
#define WP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "milter/rules.h"

struct wp_view;

struct wp_reply_message {
    char *text;   /* the whole message, LF line ends */
    char **rcpts; /* envelope recipients */
    size_t nrcpts;
};

/* Build the reply; false (with *why) when no reply must be sent.  The
 * view's addresses and Subject (view.h) are those the rules saw. */
bool wp_reply_build_view(struct wp_view *v, const struct wp_reply *r, const char *from,
                         struct wp_reply_message *out, const char **why);
/* The same on a view of its own. */
bool wp_reply_build(const struct wp_message *m, const struct wp_reply *r, const char *from,
                    struct wp_reply_message *out, const char **why);
void wp_reply_message_free(struct wp_reply_message *rm);

#endif
