/* SPDX-License-Identifier: MIT */
/* libFuzzer target: odmrd's credentials (odmr/auth.h): the passwd-file
 * reader, the password schemes behind PLAIN and CRAM-MD5, base64 and the
 * SASL PLAIN split.  The input is a passwd file; its first line's user is
 * looked up.  Stored fields asking for crypt rounds are skipped: the file
 * is the administrator's, and a million rounds is slow, not a bug. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "odmr/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    char user[256];
    size_t n = strcspn(text, ":\n");
    if (n >= sizeof(user))
        n = sizeof(user) - 1;
    memcpy(user, text, n);
    user[n] = '\0';
    const char *users[] = {user, "cust1", ""};
    for (size_t u = 0; u < 3; u++) {
        char *stored = wp_passwd_find(text, size, users[u]);
        if (!stored)
            continue;
        if (!strstr(stored, "rounds=")) {
            wp_auth_check_plain(stored, "secret");
            if (wp_auth_cram_capable(stored))
                wp_auth_check_cram(stored, "<1896.697170952@postoffice.example.net>",
                                   "b913a602c7eda7a495b4e6e7334d3890");
        }
        free(stored);
    }
    unsigned char dec[1024];
    long m = wp_base64_decode(text, dec, sizeof(dec));
    if (m >= 0) {
        const char *cu, *pw;
        if (wp_sasl_plain_split(dec, (size_t)m, &cu, &pw) && (!cu || !pw))
            abort();
        char enc[2048];
        wp_base64_encode(dec, (size_t)m, enc, sizeof(enc));
    }
    free(text);
    return 0;
}
