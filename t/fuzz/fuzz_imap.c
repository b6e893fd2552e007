/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the Dovecot and template helpers (imap/dovecot.h,
 * imap/template.h) on arbitrary text: mailbox names as the account
 * template and the post-login helper write them into Dovecot's files
 * (subscriptions lines, virtual-mailbox text, only for names the checker
 * accepts, as waypost-imap-login does), account addresses as the Dovecot
 * user name is made from them, and `dovecot --version` answers. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/sections.h"
#include "imap/dovecot.h"
#include "imap/template.h"
#include "state/snapshot.h"

static struct wp_snapshot *snap;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *conf = getenv("WAYPOST_FUZZ_CONF");
    struct wp_errors err;
    wp_errors_init(&err);
    snap = wp_snapshot_load(conf ? conf : "conf/waypost.conf", wp_sections_all, &err);
    wp_errors_free(&err);
    if (!snap)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    if (wp_imap_name_valid(s)) {
        size_t slash = strcspn(s, "/");
        for (size_t p = 0; p <= 2; p++) {
            size_t prefix = p == 0 ? 0 : p == 1 ? (s[slash] ? slash + 1 : 0) : strlen(s);
            free(wp_imap_subscription_line(s, prefix, p == 2 ? '.' : '/'));
        }
        free(wp_imap_alias_virtual(s));
    }
    char user[512];
    (void)wp_dovecot_user(snap->router, s, user, sizeof(user));
    (void)wp_dovecot_user(snap->router, s, user, 8);
    (void)wp_dovecot_version_parse(s, true);
    (void)wp_dovecot_version_parse(s, false);
    free(s);
    return 0;
}
