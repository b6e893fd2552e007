/* SPDX-License-Identifier: MIT */
/*
 * cidr.c - network lists and membership tests.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cidr.h"
#include "lib/util.h"

bool wp_net_parse(const char *text, struct wp_net *net)
{
    char buf[64];
    memset(net, 0, sizeof(*net));
    if (!wp_strlcpy(buf, text, sizeof(buf)))
        return false;
    char *slash = strchr(buf, '/');
    int prefix = -1;
    if (slash) {
        *slash = '\0';
        char *end;
        long v = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || v < 0 || v > 128)
            return false;
        prefix = (int)v;
    }
    if (inet_pton(AF_INET, buf, net->addr) == 1) {
        net->family = AF_INET;
        if (prefix > 32)
            return false;
        net->prefix = prefix < 0 ? 32 : prefix;
    } else if (inet_pton(AF_INET6, buf, net->addr) == 1) {
        net->family = AF_INET6;
        net->prefix = prefix < 0 ? 128 : prefix;
    } else {
        return false;
    }
    return true;
}

void wp_nets_add(struct wp_nets *list, const struct wp_net *net)
{
    list->nets = wp_realloc(list->nets, (list->count + 1) * sizeof(*list->nets));
    list->nets[list->count++] = *net;
}

void wp_nets_free(struct wp_nets *list)
{
    free(list->nets);
    list->nets = NULL;
    list->count = 0;
}

static bool prefix_equal(const unsigned char *a, const unsigned char *b, int bits)
{
    int bytes = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)bytes) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[bytes] & mask) == (b[bytes] & mask);
}

/* A dotted quad as inet_pton(AF_INET) reads it (four decimal parts of at
 * most 255, no leading zeros, nothing else), without its generality: the
 * policy service checks the client address of every request. */
static bool ipv4_parse(const char *s, unsigned char out[4])
{
    for (int part = 0; part < 4; part++) {
        if (part > 0 && *s++ != '.')
            return false;
        if (*s < '0' || *s > '9')
            return false;
        unsigned v = 0;
        const char *start = s;
        while (*s >= '0' && *s <= '9' && s - start < 4)
            v = v * 10 + (unsigned)(*s++ - '0');
        if (v > 255 || s - start > 3 || (*start == '0' && s - start > 1))
            return false;
        out[part] = (unsigned char)v;
    }
    return *s == '\0';
}

bool wp_nets_contain(const struct wp_nets *list, const char *addr)
{
    unsigned char bin[16];
    int family;
    if (ipv4_parse(addr, bin)) {
        family = AF_INET;
    } else if (inet_pton(AF_INET6, addr, bin) == 1) {
        family = AF_INET6;
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(bin, mapped, 12) == 0) {
            memmove(bin, bin + 12, 4);
            family = AF_INET;
        }
    } else {
        return false;
    }
    for (size_t i = 0; i < list->count; i++) {
        const struct wp_net *n = &list->nets[i];
        if (n->family == family && prefix_equal(n->addr, bin, n->prefix))
            return true;
    }
    return false;
}
