/* SPDX-License-Identifier: MIT */
/*
 * cidr.h - lists of IPv4/IPv6 networks ("127.0.0.0/8", "::1/128", "10.1.2.3").
 *
 * Used for trusted networks.  A lookup scans the list: such lists are short
 * (a handful of networks), unlike Router tables.
 */
#ifndef WP_CIDR_H
#define WP_CIDR_H

#include <stdbool.h>
#include <stddef.h>

struct wp_net {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int prefix;
};

struct wp_nets {
    struct wp_net *nets;
    size_t count;
};

bool wp_net_parse(const char *text, struct wp_net *net);
void wp_nets_add(struct wp_nets *list, const struct wp_net *net);
void wp_nets_free(struct wp_nets *list);
/* True if the address text (IPv4, IPv6, or IPv4-mapped IPv6) is in a listed network. */
bool wp_nets_contain(const struct wp_nets *list, const char *addr);

#endif
