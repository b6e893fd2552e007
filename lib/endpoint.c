/* SPDX-License-Identifier: MIT */
/*
 * endpoint.c - parse unix:/inet:/inet6: endpoint strings.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "lib/endpoint.h"
#include "lib/util.h"

static bool parse_port(const char *s, int *port)
{
    if (!*s || strlen(s) > 5)
        return false;
    int v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (*s - '0');
    }
    if (v < 1 || v > 65535)
        return false;
    *port = v;
    return true;
}

bool wp_endpoint_parse(const char *text, struct wp_endpoint *ep, const char **why)
{
    memset(ep, 0, sizeof(*ep));
    if (strncmp(text, "unix:", 5) == 0) {
        ep->family = WP_EP_UNIX;
        const char *path = text + 5;
        if (!*path) {
            *why = "empty unix socket path";
            return false;
        }
        if (!wp_strlcpy(ep->path, path, sizeof(ep->path))) {
            *why = "unix socket path too long (max 107 bytes)";
            return false;
        }
        return true;
    }
    if (strncmp(text, "inet6:", 6) == 0) {
        ep->family = WP_EP_INET6;
        const char *p = text + 6;
        const char *close = strchr(p, ']');
        if (*p != '[' || !close || close[1] != ':') {
            *why = "expected inet6:[ADDRESS]:PORT";
            return false;
        }
        size_t n = (size_t)(close - p - 1);
        if (n == 0 || n >= sizeof(ep->host)) {
            *why = "bad IPv6 address";
            return false;
        }
        memcpy(ep->host, p + 1, n);
        ep->host[n] = '\0';
        unsigned char bin[16];
        if (inet_pton(AF_INET6, ep->host, bin) != 1) {
            *why = "bad IPv6 address";
            return false;
        }
        if (!parse_port(close + 2, &ep->port)) {
            *why = "bad port (1-65535)";
            return false;
        }
        return true;
    }
    if (strncmp(text, "inet:", 5) == 0) {
        ep->family = WP_EP_INET;
        const char *p = text + 5;
        const char *colon = strrchr(p, ':');
        if (!colon || colon == p) {
            *why = "expected inet:HOST:PORT";
            return false;
        }
        size_t n = (size_t)(colon - p);
        if (n >= sizeof(ep->host)) {
            *why = "host name too long";
            return false;
        }
        memcpy(ep->host, p, n);
        ep->host[n] = '\0';
        if (strchr(ep->host, ':')) {
            *why = "IPv6 addresses need inet6:[ADDRESS]:PORT";
            return false;
        }
        for (const char *c = ep->host; *c; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                  *c == '.' || *c == '-' || *c == '*')) {
                *why = "bad host name";
                return false;
            }
        if (!parse_port(colon + 1, &ep->port)) {
            *why = "bad port (1-65535)";
            return false;
        }
        return true;
    }
    *why = "endpoint must start with unix:, inet: or inet6:";
    return false;
}

bool wp_endpoint_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return strcmp(host, "localhost") == 0;
}
