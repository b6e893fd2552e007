/* SPDX-License-Identifier: MIT */
/*
 * endpoint.h - listen/connect endpoints: "unix:PATH", "inet:HOST:PORT",
 * "inet6:[ADDR]:PORT".
 *
 * Only the syntax is checked here; binding happens in the daemons.  Ports
 * are 1..65535; unix paths must fit in sockaddr_un.
 */
#ifndef WP_ENDPOINT_H
#define WP_ENDPOINT_H

#include <stdbool.h>

enum wp_endpoint_family { WP_EP_UNIX, WP_EP_INET, WP_EP_INET6 };

struct wp_endpoint {
    enum wp_endpoint_family family;
    char path[108]; /* unix */
    char host[256]; /* inet, inet6 (without brackets) */
    int port;
};

/* Parse text; on failure *why explains. */
bool wp_endpoint_parse(const char *text, struct wp_endpoint *ep, const char **why);

/* Is host (a numeric address, or "localhost") a loopback address? */
bool wp_endpoint_is_loopback(const char *host);

#endif
