/* SPDX-License-Identifier: MIT */
/*
 * mx.h - the addresses of a held queue's next hop, as the route says:
 * the MX hosts of a domain (by preference, then the domain itself when it
 * has no MX), a fixed host name (its A records), or an "[ip]" literal.
 *
 * Lookups go through libresolv's res_nquery on a private resolver state,
 * so they are pointable at a test's DNS server (odmr.dns_servers,
 * "IP" or "IP:PORT", comma separated); with no servers set the system's
 * resolv.conf applies and host names are resolved with getaddrinfo()
 * (which also reads /etc/hosts).  Blocking: run it in a delivery process,
 * never in the event loop.  IPv4 only when a DNS server is set (A records);
 * getaddrinfo may also give IPv6.
 */
#ifndef WP_ODMR_MX_H
#define WP_ODMR_MX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define WP_MX_ADDRS_MAX 16

struct wp_mx_addr {
    struct sockaddr_storage sa;
    socklen_t len;
    char host[256]; /* the name it came from, for logs */
    char text[64];  /* the address as text */
};

/* Fill out[] (at most WP_MX_ADDRS_MAX) with the addresses to try in order;
 * their count, or 0 with err (no such host, lookup failure). */
size_t wp_mx_resolve(const char *nexthop, bool mx, int port, const char *dns_servers, struct wp_mx_addr *out,
                     char *err, size_t errlen);

#endif
