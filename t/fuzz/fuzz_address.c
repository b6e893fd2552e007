/* SPDX-License-Identifier: MIT */
/* libFuzzer target: address parsing (both modes) and formatting. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "lib/address.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wp_address a;
    const char *why;
    for (unsigned flags = 0; flags <= WP_ADDR_HOSTPORT; flags++) {
        if (wp_address_parse((const char *)data, size, flags, &a, &why)) {
            char out[WP_ADDR_MAX * 2 + 8];
            wp_address_format(a.local, a.domain, out, sizeof(out));
            char ip[64];
            wp_domain_ip_literal(a.domain, ip, sizeof(ip));
        }
    }
    return 0;
}
