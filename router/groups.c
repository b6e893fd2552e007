/* SPDX-License-Identifier: MIT */
/*
 * groups.c - a local domain's groups and forwarders (see groups.h).
 *
 * Everything is parsed and checked at load: a lookup is one hash probe and
 * the virtual map's answer is ready-made, so a group costs a lookup no more
 * than an account does.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/address.h"
#include "lib/defaults.h"
#include "lib/util.h"
#include "router/groups.h"

/* Files of groups are small; a larger one is a mistake, not a workload. */
#define GROUPS_FILE_MAX (4u << 20)

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* One member: a full address in its canonical form, or false with why. */
static bool member_address(const char *text, const char *domain, char *out, size_t size, const char **why)
{
    struct wp_address a;
    if (!wp_address_parse(text, strlen(text), 0, &a, why))
        return false;
    if (a.routed) {
        *why = "a member must not carry source routing";
        return false;
    }
    if (!wp_address_format(a.local, a.domain[0] ? a.domain : domain, out, size)) {
        *why = "address too long";
        return false;
    }
    return true;
}

/* Is the member (canonical form) the group's own address? */
static bool self_member(const char *member, const char *local, const char *domain)
{
    char own[WP_ADDR_MAX + 1];
    return wp_address_format(local, domain, own, sizeof(own)) && wp_strieq(member, own);
}

static void add_entry(struct wp_groups *g, char *text, bool forwarders, const char *domain, const char *file,
                      int line, struct wp_errors *err)
{
    const char *what = forwarders ? "forwarder" : "group";
    bool relay = false;
    if (wp_strnieq(text, "Relay:", 6)) {
        relay = true;
        text = trim(text + 6);
    }
    char *colon = strchr(text, ':');
    if (!colon) {
        wp_error(err, file, line, "%s: expected \"NAME: %s\", got '%.100s'", what,
                 forwarders ? "TARGET" : "MEMBER, MEMBER, ...", text);
        return;
    }
    *colon = '\0';
    char *name = trim(text);
    char *rest = trim(colon + 1);
    struct wp_address na;
    const char *why;
    if (!*name || strchr(name, '@') || !wp_address_parse(name, strlen(name), 0, &na, &why) || na.routed) {
        wp_error(err, file, line, "%s: '%.100s' is not a name in the domain", what, name);
        return;
    }
    wp_str_lower(na.local);
    size_t nlen = strlen(na.local);
    uint64_t h = wp_hash_fwd(na.local, nlen);
    if (wp_strmap_get(&g->index, h, na.local, nlen)) {
        wp_error(err, file, line, "%s: %s@%s is already a group or forwarder", what, na.local, domain);
        return;
    }
    struct wp_group grp = {0};
    grp.forwarder = forwarders;
    grp.relay = relay;
    grp.line = line;
    size_t alen = 0;
    bool bad = false;
    for (char *save = NULL, *m = strtok_r(rest, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
        m = trim(m);
        if (!*m)
            continue;
        char addr[WP_ADDR_MAX + 1];
        if (!member_address(m, domain, addr, sizeof(addr), &why)) {
            wp_error(err, file, line, "%s %s: member '%.100s': %s", what, na.local, m, why);
            bad = true;
            continue;
        }
        /* as tcp_table sends it: '%' and white space escaped as %XX */
        if (!forwarders && self_member(addr, na.local, domain)) {
            /* Postfix keeps an address that its own expansion lists, and it
             * would then leave by relay_transport: refuse it here. */
            wp_error(err, file, line, "group %s: lists itself as a member", na.local);
            bad = true;
            continue;
        }
        alen += 2;
        for (const char *c = addr; *c; c++)
            alen += (*c == '%' || (unsigned char)*c <= ' ') ? 3 : 1;
        grp.members = wp_realloc(grp.members, (grp.nmembers + 1) * sizeof(char *));
        grp.members[grp.nmembers++] = wp_strdup(addr);
    }
    if (!bad && grp.nmembers == 0)
        wp_error(err, file, line, "%s %s: no %s", what, na.local, forwarders ? "target" : "members");
    else if (!bad && forwarders && grp.nmembers != 1)
        wp_error(err, file, line, "forwarder %s: one target only (a name with several is a group)", na.local);
    else if (!bad && alen > WP_GROUP_ANSWER_MAX)
        wp_error(err, file, line,
                 "group %s: its members take %zu bytes (as tcp_table sends them), more than one Postfix "
                 "answer holds (%d): "
                 "split it into groups that are members of it",
                 na.local, alen, WP_GROUP_ANSWER_MAX);
    else if (!bad) {
        grp.name = wp_strdup(na.local);
        char buf[WP_ADDR_MAX + 1];
        wp_address_format(na.local, domain, buf, sizeof(buf));
        grp.address = wp_strdup(buf);
        grp.answer = wp_malloc(alen + 3 * grp.nmembers + 1);
        grp.answer[0] = '\0';
        for (size_t i = 0; i < grp.nmembers; i++) {
            if (i)
                strcat(grp.answer, ", ");
            strcat(grp.answer, grp.members[i]);
        }
        grp.file = wp_strdup(file ? file : "");
        g->v = wp_realloc(g->v, (g->n + 1) * sizeof(*g->v));
        g->v[g->n] = grp;
        struct wp_strmap_entry *e = wp_strmap_put(&g->index, h, g->v[g->n].name, nlen);
        e->head = e->tail = (uint32_t)g->n;
        g->n++;
        return;
    }
    for (size_t i = 0; i < grp.nmembers; i++)
        free(grp.members[i]);
    free(grp.members);
}

static void add_file(struct wp_groups *g, const char *path, bool forwarders, const char *domain,
                     const char *basedir, const char *file, int line, struct wp_errors *err)
{
    char *full = wp_path_relative_to(basedir ? basedir : ".", path);
    char why[256];
    size_t len;
    char *text = wp_read_file(full, GROUPS_FILE_MAX, &len, why, sizeof(why));
    if (!text) {
        wp_error(err, file, line, "%s: %s", forwarders ? "forwarders" : "groups", why);
        free(full);
        return;
    }
    int n = 0;
    for (char *save = NULL, *l = text; l; l = save) {
        char *nl = strchr(l, '\n');
        save = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        n++;
        char *t = trim(l);
        if (!*t || *t == '#')
            continue;
        add_entry(g, t, forwarders, domain, full, n, err);
    }
    free(text);
    free(full);
}

void wp_groups_add(struct wp_groups *g, const char *const *entries, bool forwarders, const char *domain,
                   const char *basedir, const char *file, int line, struct wp_errors *err)
{
    for (size_t i = 0; entries && entries[i]; i++) {
        char *copy = wp_strdup(entries[i]);
        char *t = trim(copy);
        if (wp_strnieq(t, "file:", 5))
            add_file(g, trim(t + 5), forwarders, domain, basedir, file, line, err);
        else
            add_entry(g, t, forwarders, domain, file, line, err);
        free(copy);
    }
}

const struct wp_group *wp_groups_find(const struct wp_groups *g, const char *local)
{
    if (!g || !g->n)
        return NULL;
    char key[WP_LOCAL_MAX + 1];
    if (!wp_strlcpy(key, local, sizeof(key)))
        return NULL;
    wp_str_lower(key);
    size_t n = strlen(key);
    const struct wp_strmap_entry *e = wp_strmap_get(&g->index, wp_hash_fwd(key, n), key, n);
    return e ? &g->v[e->head] : NULL;
}

void wp_groups_free(struct wp_groups *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n; i++) {
        struct wp_group *grp = &g->v[i];
        for (size_t k = 0; k < grp->nmembers; k++)
            free(grp->members[k]);
        free(grp->members);
        free(grp->name);
        free(grp->address);
        free(grp->answer);
        free(grp->file);
    }
    free(g->v);
    wp_strmap_free(&g->index);
    memset(g, 0, sizeof(*g));
}
