/* SPDX-License-Identifier: MIT */
/*
 * mx.c - next-hop addresses for held-queue delivery (see mx.h).
 */
#include "config.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "odmr/mx.h"

#define MX_HOSTS_MAX 10

/* A private resolver state, its servers from dns_servers when set. */
static bool res_open(res_state rs, const char *servers, char *err, size_t errlen)
{
    memset(rs, 0, sizeof(*rs));
    if (res_ninit(rs) != 0) {
        snprintf(err, errlen, "cannot initialise the resolver");
        return false;
    }
    if (!servers || !servers[0])
        return true;
    char buf[512];
    if (!wp_strlcpy(buf, servers, sizeof(buf))) {
        snprintf(err, errlen, "odmr.dns_servers is too long");
        return false;
    }
    int n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ", ", &save); t && n < MAXNS;
         t = strtok_r(NULL, ", ", &save)) {
        struct sockaddr_in sin;
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_port = htons(53);
        char *colon = strchr(t, ':');
        if (colon) {
            *colon = '\0';
            int p = atoi(colon + 1);
            if (p <= 0 || p > 65535) {
                snprintf(err, errlen, "odmr.dns_servers: bad port in '%s'", t);
                return false;
            }
            sin.sin_port = htons((uint16_t)p);
        }
        if (inet_pton(AF_INET, t, &sin.sin_addr) != 1) {
            snprintf(err, errlen, "odmr.dns_servers: '%s' is not an IPv4 address", t);
            return false;
        }
        rs->nsaddr_list[n++] = sin;
    }
    rs->nscount = n;
    rs->retrans = 2;
    rs->retry = 2;
    return true;
}

struct mx_host {
    int pref;
    char name[256];
};

static int cmp_mx(const void *a, const void *b)
{
    return ((const struct mx_host *)a)->pref - ((const struct mx_host *)b)->pref;
}

/* MX records of domain: their count (0: none), -1 on a failure other than
 * "no such record". */
static int mx_query(res_state rs, const char *domain, struct mx_host *hosts, int max)
{
    unsigned char ans[4096];
    int len = res_nquery(rs, domain, ns_c_in, ns_t_mx, ans, sizeof(ans));
    if (len < 0)
        return rs->res_h_errno == NO_DATA || rs->res_h_errno == HOST_NOT_FOUND ? 0 : -1;
    ns_msg msg;
    if (ns_initparse(ans, len, &msg) != 0)
        return -1;
    int n = 0;
    for (int i = 0; i < ns_msg_count(msg, ns_s_an) && n < max; i++) {
        ns_rr rr;
        if (ns_parserr(&msg, ns_s_an, i, &rr) != 0 || ns_rr_type(rr) != ns_t_mx || ns_rr_rdlen(rr) < 3)
            continue;
        const unsigned char *rd = ns_rr_rdata(rr);
        hosts[n].pref = (rd[0] << 8) | rd[1];
        if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), rd + 2, hosts[n].name, sizeof(hosts[n].name)) < 0)
            continue;
        n++;
    }
    qsort(hosts, (size_t)n, sizeof(*hosts), cmp_mx);
    return n;
}

static void add_addr(struct wp_mx_addr *out, size_t *n, const struct sockaddr *sa, socklen_t len,
                     const char *host)
{
    if (*n >= WP_MX_ADDRS_MAX)
        return;
    struct wp_mx_addr *a = &out[*n];
    memset(a, 0, sizeof(*a));
    memcpy(&a->sa, sa, len);
    a->len = len;
    wp_strlcpy(a->host, host, sizeof(a->host));
    const void *ip = sa->sa_family == AF_INET ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
                                              : (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
    inet_ntop(sa->sa_family, ip, a->text, sizeof(a->text));
    (*n)++;
}

/* The addresses of one host name: A records through rs when it has
 * servers of its own, getaddrinfo otherwise. */
static void host_addrs(res_state rs, bool own_servers, const char *host, int port, struct wp_mx_addr *out,
                       size_t *n)
{
    if (own_servers) {
        unsigned char ans[4096];
        int len = res_nquery(rs, host, ns_c_in, ns_t_a, ans, sizeof(ans));
        ns_msg msg;
        if (len < 0 || ns_initparse(ans, len, &msg) != 0)
            return;
        for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
            ns_rr rr;
            if (ns_parserr(&msg, ns_s_an, i, &rr) != 0 || ns_rr_type(rr) != ns_t_a || ns_rr_rdlen(rr) != 4)
                continue;
            struct sockaddr_in sin;
            memset(&sin, 0, sizeof(sin));
            sin.sin_family = AF_INET;
            sin.sin_port = htons((uint16_t)port);
            memcpy(&sin.sin_addr, ns_rr_rdata(rr), 4);
            add_addr(out, n, (struct sockaddr *)&sin, sizeof(sin), host);
        }
        return;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", port);
    if (getaddrinfo(host, ps, &hints, &res) != 0)
        return;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
        add_addr(out, n, ai->ai_addr, ai->ai_addrlen, host);
    freeaddrinfo(res);
}

size_t wp_mx_resolve(const char *nexthop, bool mx, int port, const char *dns_servers, struct wp_mx_addr *out,
                     char *err, size_t errlen)
{
    size_t n = 0;
    if (port <= 0)
        port = 25;
    if (nexthop[0] == '[') { /* an address literal: no lookup */
        char ip[64];
        size_t len = strlen(nexthop);
        if (len < 3 || nexthop[len - 1] != ']' || len - 2 >= sizeof(ip)) {
            snprintf(err, errlen, "bad address literal %s", nexthop);
            return 0;
        }
        memcpy(ip, nexthop + 1, len - 2);
        ip[len - 2] = '\0';
        const char *v = strncasecmp(ip, "IPv6:", 5) == 0 ? ip + 5 : ip;
        struct sockaddr_in sin;
        struct sockaddr_in6 sin6;
        memset(&sin, 0, sizeof(sin));
        memset(&sin6, 0, sizeof(sin6));
        if (inet_pton(AF_INET, v, &sin.sin_addr) == 1) {
            sin.sin_family = AF_INET;
            sin.sin_port = htons((uint16_t)port);
            add_addr(out, &n, (struct sockaddr *)&sin, sizeof(sin), nexthop);
        } else if (inet_pton(AF_INET6, v, &sin6.sin6_addr) == 1) {
            sin6.sin6_family = AF_INET6;
            sin6.sin6_port = htons((uint16_t)port);
            add_addr(out, &n, (struct sockaddr *)&sin6, sizeof(sin6), nexthop);
        } else {
            snprintf(err, errlen, "bad address literal %s", nexthop);
        }
        return n;
    }
    struct __res_state rs;
    if (!res_open(&rs, dns_servers, err, errlen)) {
        res_nclose(&rs);
        return 0;
    }
    bool own = dns_servers && dns_servers[0];
    if (mx) {
        struct mx_host hosts[MX_HOSTS_MAX];
        int nmx = mx_query(&rs, nexthop, hosts, MX_HOSTS_MAX);
        if (nmx < 0) {
            snprintf(err, errlen, "MX lookup for %s failed", nexthop);
            res_nclose(&rs);
            return 0;
        }
        for (int i = 0; i < nmx; i++)
            host_addrs(&rs, own, hosts[i].name, port, out, &n);
        if (nmx == 0) /* RFC 5321 5.1: no MX, the domain itself */
            host_addrs(&rs, own, nexthop, port, out, &n);
    } else {
        host_addrs(&rs, own, nexthop, port, out, &n);
    }
    res_nclose(&rs);
    if (n == 0)
        snprintf(err, errlen, "no address found for %s%s", nexthop, mx ? " (MX or A)" : "");
    return n;
}
