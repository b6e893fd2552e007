/* SPDX-License-Identifier: MIT */
/* libFuzzer target: policyd's framing (policy/framing.h): socketmap
 * netstrings, tcp_table requests and policy delegation blocks, each read
 * request after request as the server does, and the answer writer.  The
 * first byte picks the protocol and the max request size. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/framing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = data[0] % 3;
    size_t max = 64 + (size_t)(data[0] >> 2) * 64;
    size_t len = size - 1;
    char *buf = malloc(len + 1);
    memcpy(buf, data + 1, len);
    buf[len] = '\0';
    char *in = buf;
    struct wp_policy_reader r;
    memset(&r, 0, sizeof(r));
    for (int rounds = 0; rounds < 10000 && len > 0; rounds++) {
        size_t used = 0;
        enum wp_frame f;
        if (mode == 0) {
            const char *map, *key;
            f = wp_framing_socketmap(in, len, max, &map, &key, &used);
            if (f == WP_FRAME_REQUEST) {
                char out[2 * 4096 + WP_FRAMING_OVERHEAD];
                if (strlen(map) + strlen(key) < 4096)
                    wp_framing_put(out, true, map, " ", key);
            }
        } else if (mode == 1) {
            const char *key;
            f = wp_framing_tcp(in, len, max, &key, &used);
        } else {
            f = wp_framing_policy(&r, in, len, max, &used);
            if (f == WP_FRAME_REQUEST)
                wp_framing_policy_next(&r);
        }
        if (used > len)
            abort(); /* the framing claims bytes it was not given */
        if (f != WP_FRAME_REQUEST || used == 0)
            break;
        in += used;
        len -= used;
    }
    free(buf);
    return 0;
}
