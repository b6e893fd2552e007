/* SPDX-License-Identifier: MIT */
/*
 * decision.c - waypost-odmrd's decision log lines (decision.h).
 */
#include "config.h"

#include <string.h>

#include "lib/kvline.h"
#include "lib/log.h"
#include "odmr/decision.h"

void wp_odmr_log_intake(const char *queue, const char *id, const char *sender, size_t size, size_t nrcpt,
                        const char *result, const char *reason)
{
    struct wp_kvline l;
    wp_kvline_init(&l);
    wp_kvline_add(&l, "event", "intake");
    wp_kvline_add(&l, "queue", queue);
    wp_kvline_add(&l, "id", id);
    wp_kvline_add(&l, "sender", sender);
    wp_kvline_addf(&l, "size", "%zu", size);
    wp_kvline_addf(&l, "recipients", "%zu", nrcpt);
    wp_kvline_add(&l, "result", result);
    wp_kvline_add(&l, "reason", reason);
    wp_log(strcmp(result, "queued") == 0 ? WP_LOG_INFO : WP_LOG_NOTICE, "%s", wp_kvline_text(&l));
}

void wp_odmr_log_session(const char *client, const char *user, const char *mech, bool tls, bool ok)
{
    struct wp_kvline l;
    wp_kvline_init(&l);
    wp_kvline_add(&l, "event", "session");
    wp_kvline_add(&l, "client", client);
    wp_kvline_add(&l, "user", user);
    wp_kvline_add(&l, "mechanism", mech);
    wp_kvline_add(&l, "tls", tls ? "yes" : "no");
    wp_kvline_add(&l, "result", ok ? "authenticated" : "failed");
    wp_log(ok ? WP_LOG_INFO : WP_LOG_NOTICE, "%s", wp_kvline_text(&l));
}

void wp_odmr_log_atrn(const char *client, const char *user, const char *domains, size_t messages,
                      const char *result)
{
    struct wp_kvline l;
    wp_kvline_init(&l);
    wp_kvline_add(&l, "event", "atrn");
    wp_kvline_add(&l, "client", client);
    wp_kvline_add(&l, "user", user);
    wp_kvline_add(&l, "domains", domains);
    wp_kvline_addf(&l, "messages", "%zu", messages);
    wp_kvline_add(&l, "result", result);
    wp_log(strcmp(result, "refused") == 0 ? WP_LOG_NOTICE : WP_LOG_INFO, "%s", wp_kvline_text(&l));
}

void wp_odmr_log_delivery(const char *queue, const char *id, const char *rcpt, const char *result,
                          const char *reply)
{
    struct wp_kvline l;
    wp_kvline_init(&l);
    wp_kvline_add(&l, "event", "delivery");
    wp_kvline_add(&l, "queue", queue);
    wp_kvline_add(&l, "id", id);
    wp_kvline_add(&l, "recipient", rcpt);
    wp_kvline_add(&l, "result", result);
    wp_kvline_add(&l, "reply", reply);
    wp_log(strcmp(result, "sent") == 0 ? WP_LOG_INFO : WP_LOG_NOTICE, "%s", wp_kvline_text(&l));
}
