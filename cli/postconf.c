/* SPDX-License-Identifier: MIT */
/*
 * postconf.c - `waypost postconf`: Waypost's wiring in Postfix's main.cf
 * and master.cf.
 *
 *   waypost postconf [--chroot|--no-chroot]   print the postconf commands that
 *                                             merge Waypost into the running
 *                                             configuration
 *   waypost postconf --apply                  run them and reload Postfix
 *   waypost postconf --undo                   take out what --apply put in
 *   waypost postconf --fresh [--main|--master] the finished values for a Postfix
 *                                             with nothing of its own
 *
 * The merge reads the configuration in postfix.config_directory with
 * `postconf -c DIR` and adds Waypost's entries to what is there, keeping
 * every existing one:
 *   - Waypost's maps in front of relay_domains, relay_recipient_maps,
 *     virtual_alias_maps and transport_maps (Waypost answers "not found"
 *     for what is not its own, so the existing maps still decide the rest);
 *   - virtual_alias_domains keeps meaning what it meant: its default
 *     $virtual_alias_maps would make Waypost's virtual map a domain list;
 *   - check_policy_service before reject_unauth_destination (or
 *     defer_unauth_destination) in the first restriction list that holds
 *     it, and first in smtpd_etrn_restrictions;
 *   - the milter after the existing ones in smtpd_milters and
 *     non_smtpd_milters: the rules see mail from sendmail too, as
 *     CommuniGate's Enqueuer applies them to every message;
 *   - held queue names in fast_flush_domains (held mail itself waits in
 *     waypost-odmrd's spool, not in defer_transports: Postfix's flush
 *     would release every customer's deferred mail).
 * The policy service and the milter carry their own default_action
 * ({ endpoint, default_action=... }, Postfix >= 3.0), so the global
 * defaults other services rely on stay as they are.
 *
 * Every edit is textual: an existing value is kept character for character
 * around what is inserted, and an element already present (by its
 * endpoint) is not added again, so applying twice changes nothing.
 * --apply first records the original value of each parameter it changes
 * (and whether it was set at all) in DIR/waypost-postconf.saved; --undo
 * restores those, so `postconf -n` is exactly what it was.  A value edited
 * since --apply is instead only stripped of Waypost's elements (and said
 * so).  A Waypost domain that Postfix also lists in mydestination,
 * virtual_mailbox_domains or virtual_alias_domains is a conflict (Postfix
 * would deliver it itself and never ask Waypost): reported with the value
 * to set, and --apply refuses to run until it is resolved.
 *
 * Limits: postconf output up to 1 MiB; an entry hidden behind a
 * $parameter or inside a ${{...}} expression of an explicitly set value is
 * not found (the placement is then reported as impossible); domains listed
 * only in lookup tables are not checked for conflicts.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/postconf.h"
#include "lib/errors.h"
#include "lib/util.h"
#include "milter/settings.h"
#include "odmr/settings.h"
#include "policy/maps.h"
#include "policy/settings.h"
#include "state/snapshot.h"
#include "cli/sections.h"

#define PC_OUT_MAX (1024 * 1024)
#define PC_SAVED "waypost-postconf.saved"
#define PC_POLICY_DEFAULT "451 4.3.5 Waypost policy service unavailable"

/* ---------------------------------------------------------------- endpoints */

/* How a chrooted or plain Postfix process names a unix socket: relative to
 * the queue directory when it lies inside it (Postfix daemons run there,
 * chrooted or not), else absolute (unreachable from a chroot). */
static const char *postfix_socket_path(const char *qdir, const char *path, bool chroot, bool *unreachable)
{
    size_t q = strlen(qdir);
    *unreachable = false;
    while (q > 1 && qdir[q - 1] == '/')
        q--;
    if (strncmp(path, qdir, q) == 0 && path[q] == '/')
        return path + q + 1;
    *unreachable = chroot;
    return path;
}

/* The Postfix client syntax of a map endpoint, or NULL if none serves it. */
static char *map_endpoint(const struct wp_snapshot *s, const char *qdir, const char *map, bool chroot,
                          bool *unreachable)
{
    const struct wp_policyd_conf *p = wp_policyd_conf(s);
    *unreachable = false;
    for (size_t i = 0; i < p->nlisten; i++) {
        const struct wp_listen *l = &p->listen[i];
        if (l->proto != WP_PROTO_SOCKETMAP)
            continue;
        if (l->ep.family == WP_EP_UNIX)
            return wp_asprintf("socketmap:unix:%s:%s", postfix_socket_path(qdir, l->ep.path, chroot, unreachable),
                               map);
        if (l->ep.family == WP_EP_INET)
            return wp_asprintf("socketmap:inet:%s:%d:%s", l->ep.host, l->ep.port, map);
        return wp_asprintf("socketmap:inet:[%s]:%d:%s", l->ep.host, l->ep.port, map);
    }
    for (size_t i = 0; i < p->nlisten; i++) {
        const struct wp_listen *l = &p->listen[i];
        if (l->proto == WP_PROTO_TCP && strcmp(wp_map_name(l->map), map) == 0)
            return wp_asprintf("tcp:%s:%d", l->ep.host, l->ep.port);
    }
    return NULL;
}

static char *policy_endpoint(const struct wp_snapshot *s, const char *qdir, bool chroot, bool *unreachable)
{
    const struct wp_policyd_conf *p = wp_policyd_conf(s);
    *unreachable = false;
    for (size_t i = 0; i < p->nlisten; i++) {
        const struct wp_listen *l = &p->listen[i];
        if (l->proto != WP_PROTO_POLICY)
            continue;
        if (l->ep.family == WP_EP_UNIX)
            return wp_asprintf("unix:%s", postfix_socket_path(qdir, l->ep.path, chroot, unreachable));
        if (l->ep.family == WP_EP_INET)
            return wp_asprintf("inet:%s:%d", l->ep.host, l->ep.port);
        return wp_asprintf("inet:[%s]:%d", l->ep.host, l->ep.port);
    }
    return NULL;
}

static char *milter_endpoint(const struct wp_snapshot *s, const char *qdir, bool chroot, bool *unreachable)
{
    const struct wp_endpoint *me = &wp_milter_conf(s)->listen;
    *unreachable = false;
    if (me->family == WP_EP_UNIX)
        return wp_asprintf("unix:%s", postfix_socket_path(qdir, me->path, chroot, unreachable));
    return wp_asprintf("inet:%s%s%s:%d", me->family == WP_EP_INET6 ? "[" : "", me->host,
                       me->family == WP_EP_INET6 ? "]" : "", me->port);
}

/* ---------------------------------------------------------------- --fresh */

/* The finished values for a Postfix with nothing of its own (the output of
 * earlier versions, used by the test harness to write a private main.cf). */
static int postconf_fresh(const struct wp_snapshot *s, bool chroot, bool want_main, bool want_master)
{
    static const struct {
        const char *param, *map;
    } maps[] = {
        { "relay_domains", "relay" },
        { "relay_recipient_maps", "recipient" },
        { "virtual_alias_maps", "virtual" },
        { "transport_maps", "transport" },
    };
    const char *qdir = s->postfix.queue_directory;
    int missing = 0;
    if (!want_main)
        goto master;
    printf("# Postfix wiring for %s (%s Postfix).\n", s->path, chroot ? "chrooted" : "non-chrooted");
    printf("# main.cf: set with  postconf -e '...'  or paste.\n");
    for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
        bool unreachable = false;
        char *ep = map_endpoint(s, qdir, maps[i].map, chroot, &unreachable);
        if (!ep) {
            printf("# %s: no policyd.listen endpoint serves the '%s' map\n", maps[i].param, maps[i].map);
            missing++;
            continue;
        }
        if (unreachable)
            printf("# warning: this socket is outside %s, a chrooted Postfix cannot reach it\n", qdir);
        printf("%s = %s\n", maps[i].param, ep);
        free(ep);
    }
    printf("# Waypost domains are relay domains; nothing is a virtual alias domain.\n");
    printf("virtual_alias_domains =\n");
    bool unreachable = false;
    char *pol = policy_endpoint(s, qdir, chroot, &unreachable);
    if (pol) {
        if (unreachable)
            printf("# warning: this socket is outside %s, a chrooted Postfix cannot reach it\n", qdir);
        printf("smtpd_recipient_restrictions = permit_mynetworks, permit_sasl_authenticated,\n"
               "    check_policy_service %s, reject_unauth_destination\n", pol);
        /* The policy service first: a permit before it would skip the
         * merged-domain flushes. */
        printf("# ETRN: waypost-policyd releases held queues (with their merged domains) to the\n"
               "# clients policyd.etrn_release allows and refuses the rest; other names: Postfix's default.\n");
        printf("smtpd_etrn_restrictions = check_policy_service %s\n", pol);
        printf("# A Waypost daemon that is down or slow must make Postfix try again later.\n");
        printf("smtpd_policy_service_default_action = %s\n", PC_POLICY_DEFAULT);
        free(pol);
    } else {
        printf("# no policyd.listen endpoint speaks the policy protocol: relaying cannot be checked\n");
        missing++;
    }
    /* The milter: a unix socket (an inet milter costs ~88 ms a message). */
    bool far = false;
    char *mil = milter_endpoint(s, qdir, chroot, &far);
    if (far)
        printf("# warning: this socket is outside %s, a chrooted Postfix cannot reach it\n", qdir);
    printf("smtpd_milters = %s\n", mil);
    free(mil);
    printf("# Mail that the rules could not see must not get through.\n");
    printf("milter_default_action = tempfail\n");
    /* ETRN and postqueue -s flush only domains listed here ("service
     * unavailable" otherwise): every Waypost domain, and held queue names
     * that are not one. */
    printf("fast_flush_domains = $relay_domains");
    const struct wp_strmap *held = &s->router->hold_queues;
    for (size_t i = 0; i < held->cap; i++)
        if (held->slots[i].key && !wp_router_routes_domain(s->router, held->slots[i].key))
            printf(", %s", held->slots[i].key);
    printf("\n");
    if (s->router->odmr_queues.count > 0 || s->router->hold_queues.count > 0) {
        /* The transport map answers HOLD and ODMR routes with
         * postfix.odmr_transport; waypost-odmrd listens where it points
         * (odmr.lmtp_listen). */
        printf("# %s queues go to waypost-odmrd over LMTP: transport %s, listening on %s\n",
               s->router->odmr_queues.count == 0 ? "Held" : s->router->hold_queues.count == 0 ? "ATRN" : "Held and ATRN",
               s->postfix.odmr_transport, wp_odmr_conf(s)->lmtp_text);
        if (chroot && wp_odmr_conf(s)->lmtp.family == WP_EP_UNIX &&
            strncmp(s->postfix.odmr_transport, "lmtp:unix:/", 11) == 0) {
            postfix_socket_path(qdir, wp_odmr_conf(s)->lmtp.path, chroot, &far);
            if (far)
                printf("# warning: a chrooted lmtp client cannot reach %s: set postfix.odmr_transport to "
                       "\"lmtp:unix:private/waypost-odmr\" (under %s)\n",
                       wp_odmr_conf(s)->lmtp.path, qdir);
        }
    }
    if (!want_master)
        goto done;
    printf("\n");
master:
    printf("# master.cf: mail for held queues waits in this transport until ETRN.\n");
    printf("%-12s unix  -       -       %c       -       -       smtp\n", s->postfix.hold_transport,
           chroot ? 'y' : 'n');
done:
    return missing ? 1 : 0;
}

/* ---------------------------------------------------------------- running Postfix's tools */

/* Postfix's programs live in /usr/sbin, which a user's PATH may lack. */
static const char *pc_program(const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "/usr/sbin/%s", name);
    return access(buf, X_OK) == 0 ? buf : name;
}

/* Runs argv; its standard output in *out (malloc'ed, NUL-terminated, when
 * out is not NULL), its standard error passed on unless quiet.  Returns
 * the exit status, -1 if it could not run or said more than PC_OUT_MAX. */
static int pc_run(char *const argv[], char **out, bool quiet)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(p[1], 1);
        if (quiet) {
            int nul = open("/dev/null", O_WRONLY);
            if (nul >= 0)
                dup2(nul, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    size_t len = 0, cap = 4096;
    char *buf = wp_malloc(cap);
    bool over = false;
    for (;;) {
        if (len + 1 >= cap) {
            if (cap >= PC_OUT_MAX) {
                over = true;
                len = 0; /* keep draining, the answer is lost */
            } else {
                cap *= 2;
                buf = wp_realloc(buf, cap);
            }
        }
        ssize_t n = read(p[0], buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    close(p[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) {
            st = -1;
            break;
        }
    if (out)
        *out = buf;
    else
        free(buf);
    if (over || st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

/* ---------------------------------------------------------------- Postfix lists */

static bool pc_sep(char c)
{
    return c == ',' || isspace((unsigned char)c);
}

/* The next element of a Postfix list from *pos: separators are white space
 * and commas, a {...} group (and a $... reference with its braces) is one
 * element.  False at the end. */
static bool pc_next(const char *v, size_t *pos, size_t *start, size_t *end)
{
    size_t i = *pos;
    while (v[i] && pc_sep(v[i]))
        i++;
    if (!v[i])
        return false;
    *start = i;
    int depth = 0;
    for (; v[i]; i++) {
        if (v[i] == '{') {
            depth++;
        } else if (v[i] == '}') {
            if (depth > 0)
                depth--;
            if (depth == 0 && v[*start] == '{') {
                i++;
                break;
            }
        } else if (depth == 0 && pc_sep(v[i])) {
            break;
        }
    }
    *end = i;
    *pos = i;
    return true;
}

/* Does the element v[s..e) start with the word w (for a group: the first
 * word inside the braces)? */
static bool pc_elem_is(const char *v, size_t s, size_t e, const char *w)
{
    if (v[s] == '{') {
        s++;
        while (s < e && isspace((unsigned char)v[s]))
            s++;
    }
    size_t n = 0;
    while (s + n < e && !pc_sep(v[s + n]) && v[s + n] != '}')
        n++;
    return n == strlen(w) && strncmp(v + s, w, n) == 0;
}

/* Where the element w is (with follow: "w" followed by an element starting
 * with follow, as in "check_policy_service ENDPOINT"). */
static bool pc_find(const char *v, const char *w, const char *follow, size_t *fs, size_t *fe)
{
    size_t pos = 0, s, e;
    while (pc_next(v, &pos, &s, &e)) {
        if (!pc_elem_is(v, s, e, w))
            continue;
        if (!follow) {
            *fs = s;
            *fe = e;
            return true;
        }
        size_t p2 = pos, s2, e2;
        if (pc_next(v, &p2, &s2, &e2) && pc_elem_is(v, s2, e2, follow)) {
            *fs = s;
            *fe = e2;
            return true;
        }
    }
    return false;
}

/* v without the element v[s..e) and one separator run next to it. */
static char *pc_cut(const char *v, size_t s, size_t e)
{
    size_t n = strlen(v), e2 = e;
    while (e2 < n && pc_sep(v[e2]))
        e2++;
    if (e2 < n)
        e = e2; /* an element follows: take the separators after */
    else
        while (s > 0 && pc_sep(v[s - 1]))
            s--; /* the last one: take those before */
    return wp_asprintf("%.*s%s", (int)s, v, v + e);
}

/* v without every occurrence of w [follow] (Waypost's elements only). */
static char *pc_remove_all(const char *v, const char *w, const char *follow)
{
    char *cur = wp_strdup(v);
    size_t s, e;
    while (pc_find(cur, w, follow, &s, &e)) {
        char *next = pc_cut(cur, s, e);
        free(cur);
        cur = next;
    }
    return cur;
}

static bool pc_blank(const char *v)
{
    while (*v && pc_sep(*v))
        v++;
    return *v == '\0';
}

static char *pc_prepend(const char *v, const char *elem)
{
    return pc_blank(v) ? wp_strdup(elem) : wp_asprintf("%s, %s", elem, v);
}

static char *pc_append(const char *v, const char *elem)
{
    if (pc_blank(v))
        return wp_strdup(elem);
    size_t n = strlen(v);
    while (n > 0 && isspace((unsigned char)v[n - 1]))
        n--;
    return wp_asprintf("%.*s, %s", (int)n, v, elem);
}

/* ---------------------------------------------------------------- the parameters */

enum {
    P_RELAY, P_RCPT, P_VIRTUAL, P_TRANSPORT, P_VAD, P_RELAY_R, P_RCPT_R, P_ETRN_R,
    P_MILTERS, P_NS_MILTERS, P_DEFER, P_FLUSH, P_MYDEST, P_VMD, P_QDIR, P_COUNT
};
static const char *const pc_names[P_COUNT] = {
    "relay_domains", "relay_recipient_maps", "virtual_alias_maps", "transport_maps",
    "virtual_alias_domains", "smtpd_relay_restrictions", "smtpd_recipient_restrictions",
    "smtpd_etrn_restrictions", "smtpd_milters", "non_smtpd_milters", "defer_transports",
    "fast_flush_domains", "mydestination", "virtual_mailbox_domains", "queue_directory",
};

struct pc_param {
    bool set;      /* explicitly set in main.cf */
    char *raw;     /* as set (set), else NULL */
    char *base;    /* what Waypost edits: raw, the default, or the effective value */
    char *eff;     /* after $parameter expansion */
    char *want;    /* the new value (NULL: unchanged) */
    char *why;     /* what the change does */
};

struct pc_ctx {
    const struct wp_snapshot *s;
    const char *dir;
    char postconf[64], postfix[64];
    char *qdir;
    bool chroot;
    struct pc_param p[P_COUNT];
    /* Waypost's elements */
    char *map[4];  /* relay, recipient, virtual, transport */
    char *policy;  /* endpoint */
    char *milter;  /* endpoint */
    bool master_add;
    int problems;  /* elements that could not be placed */
    int conflicts;
};

static void pc_free(struct pc_ctx *c)
{
    for (int i = 0; i < P_COUNT; i++) {
        free(c->p[i].raw);
        free(c->p[i].base);
        free(c->p[i].eff);
        free(c->p[i].want);
        free(c->p[i].why);
    }
    for (int i = 0; i < 4; i++)
        free(c->map[i]);
    free(c->policy);
    free(c->milter);
    free(c->qdir);
}

/* Split postconf -h output into exactly P_COUNT lines (in place). */
static bool pc_lines(char *out, char *line[P_COUNT])
{
    char *p = out;
    for (int i = 0; i < P_COUNT; i++) {
        char *nl = strchr(p, '\n');
        if (!nl)
            return false;
        *nl = '\0';
        line[i] = p;
        p = nl + 1;
    }
    return *p == '\0';
}

static int pc_index(const char *name, size_t len)
{
    for (int i = 0; i < P_COUNT; i++)
        if (strlen(pc_names[i]) == len && strncmp(pc_names[i], name, len) == 0)
            return i;
    return -1;
}

/* Read the parameters: which are set (postconf -n), their defaults (-d -h)
 * and effective values (-x -h). */
static bool pc_read(struct pc_ctx *c)
{
    char *argv[P_COUNT + 6];
    int k = 0;
    argv[k++] = c->postconf;
    argv[k++] = (char *)"-c";
    argv[k++] = (char *)c->dir;
    int opt = k++;
    for (int i = 0; i < P_COUNT; i++)
        argv[k++] = (char *)pc_names[i];
    argv[k] = NULL;
    char *nout = NULL, *dout = NULL, *xout = NULL;
    argv[opt] = (char *)"-n";
    int rn = pc_run(argv, &nout, false);
    argv[opt] = (char *)"-dh";
    int rd = pc_run(argv, &dout, false);
    argv[opt] = (char *)"-xh";
    int rx = pc_run(argv, &xout, false);
    bool ok = false;
    char *dl[P_COUNT], *xl[P_COUNT];
    if (rn != 0 || rd != 0 || rx != 0 || !pc_lines(dout, dl) || !pc_lines(xout, xl)) {
        fprintf(stderr, "waypost: cannot read the Postfix configuration in %s with %s\n", c->dir, c->postconf);
        goto out;
    }
    for (char *line = nout; *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char *eq = strstr(line, " =");
        if (eq) {
            int i = pc_index(line, (size_t)(eq - line));
            const char *val = eq[2] == ' ' ? eq + 3 : eq + 2;
            if (i >= 0) {
                c->p[i].set = true;
                c->p[i].raw = wp_strdup(val);
            }
        }
        if (!nl)
            break;
        line = nl + 1;
    }
    for (int i = 0; i < P_COUNT; i++) {
        struct pc_param *p = &c->p[i];
        p->eff = wp_strdup(xl[i]);
        /* An unset parameter: its default as written, unless that is a
         * compatibility-level expression, which Waypost cannot edit inside. */
        if (p->set)
            p->base = wp_strdup(p->raw);
        else
            p->base = wp_strdup(strstr(dl[i], "${{") ? xl[i] : dl[i]);
    }
    c->qdir = wp_strdup(c->p[P_QDIR].eff);
    ok = true;
out:
    free(nout);
    free(dout);
    free(xout);
    return ok;
}

static void pc_want(struct pc_ctx *c, int i, char *value, const char *why)
{
    struct pc_param *p = &c->p[i];
    if (p->want && strcmp(p->want, value) == 0) {
        free(value);
        return;
    }
    if (!p->want && p->set && strcmp(p->base, value) == 0) {
        free(value);
        return;
    }
    free(p->want);
    p->want = value;
    if (!p->why)
        p->why = wp_strdup(why);
}

static char *pc_policy_elem(const char *ep)
{
    /* A value with white space is itself in braces (postconf(5)). */
    return wp_asprintf("check_policy_service { %s, { default_action = %s } }", ep, PC_POLICY_DEFAULT);
}

/* Is the domain (from a Postfix domain list) one Waypost routes? */
static bool pc_waypost_domain(const struct wp_router *r, const char *v, size_t s, size_t e)
{
    if (e - s >= 256 || v[s] == '$' || v[s] == '!' || v[s] == '{')
        return false;
    char d[256];
    memcpy(d, v + s, e - s);
    d[e - s] = '\0';
    if (strchr(d, ':') || strchr(d, '/'))
        return false; /* a lookup table */
    wp_str_lower(d);
    return wp_router_routes_domain(r, d);
}

static void pc_conflicts(struct pc_ctx *c)
{
    static const int lists[] = { P_MYDEST, P_VMD, P_VAD };
    for (size_t k = 0; k < sizeof(lists) / sizeof(lists[0]); k++) {
        int i = lists[k];
        const char *v = c->p[i].eff;
        size_t pos = 0, s, e;
        while (pc_next(v, &pos, &s, &e)) {
            if (!pc_waypost_domain(c->s->router, v, s, e))
                continue;
            c->conflicts++;
            char *dom = wp_strndup(v + s, e - s);
            printf("# conflict: %s is a Waypost domain and is listed in %s: Postfix delivers it itself\n"
                   "#   and never asks Waypost.  Take it out of %s", dom, pc_names[i], pc_names[i]);
            size_t fs, fe;
            if (pc_find(c->p[i].base, dom, NULL, &fs, &fe)) {
                char *fixed = pc_cut(c->p[i].base, fs, fe);
                printf(":\n#   postconf -c %s -e '%s = %s'\n", c->dir, pc_names[i], fixed);
                free(fixed);
            } else {
                printf(" (it comes from a $parameter in it: change that one).\n");
            }
            free(dom);
        }
    }
}

/* What the merge changes: c->p[i].want for each parameter. */
static void pc_plan(struct pc_ctx *c)
{
    const struct wp_snapshot *s = c->s;
    static const char *const mapnames[4] = { "relay", "recipient", "virtual", "transport" };
    static const int mapparams[4] = { P_RELAY, P_RCPT, P_VIRTUAL, P_TRANSPORT };
    bool far;
    for (int m = 0; m < 4; m++) {
        c->map[m] = map_endpoint(s, c->qdir, mapnames[m], c->chroot, &far);
        if (!c->map[m]) {
            printf("# %s: no policyd.listen endpoint serves the '%s' map\n", pc_names[mapparams[m]], mapnames[m]);
            c->problems++;
            continue;
        }
        if (far)
            printf("# warning: %s is outside %s, a chrooted Postfix cannot reach it\n", c->map[m], c->qdir);
        size_t fs, fe;
        if (!pc_find(c->p[mapparams[m]].base, c->map[m], NULL, &fs, &fe))
            pc_want(c, mapparams[m], pc_prepend(c->p[mapparams[m]].base, c->map[m]),
                    "Waypost's map in front of the existing ones");
    }
    /* virtual_alias_domains: its default, $virtual_alias_maps, would ask
     * Waypost's virtual map for domains; it keeps the domains of the maps
     * that were there. */
    struct pc_param *vad = &c->p[P_VAD];
    char *old_vam = c->map[2] ? pc_remove_all(c->p[P_VIRTUAL].base, c->map[2], NULL)
                              : wp_strdup(c->p[P_VIRTUAL].base);
    if (!vad->set) {
        pc_want(c, P_VAD, wp_strdup(old_vam), "the virtual alias domains stay those of the existing maps");
    } else {
        size_t fs, fe;
        const char *ref = pc_find(vad->base, "$virtual_alias_maps", NULL, &fs, &fe) ? "$virtual_alias_maps"
                          : pc_find(vad->base, "${virtual_alias_maps}", NULL, &fs, &fe) ? "${virtual_alias_maps}"
                                                                                          : NULL;
        if (ref) {
            char *v = pc_blank(old_vam) ? pc_cut(vad->base, fs, fe)
                                        : wp_asprintf("%.*s%s%s", (int)fs, vad->base, old_vam, vad->base + fe);
            pc_want(c, P_VAD, v, "the virtual alias domains stay those of the existing maps");
        }
    }
    free(old_vam);

    c->policy = policy_endpoint(s, c->qdir, c->chroot, &far);
    if (!c->policy) {
        printf("# no policyd.listen endpoint speaks the policy protocol: relaying cannot be checked\n");
        c->problems++;
    } else {
        if (far)
            printf("# warning: %s is outside %s, a chrooted Postfix cannot reach it\n", c->policy, c->qdir);
        char *elem = pc_policy_elem(c->policy);
        size_t fs, fe;
        if (!pc_find(c->p[P_RELAY_R].base, "check_policy_service", c->policy, &fs, &fe) &&
            !pc_find(c->p[P_RCPT_R].base, "check_policy_service", c->policy, &fs, &fe)) {
            /* Relaying is decided where Postfix decides it: before the
             * first reject/defer_unauth_destination it evaluates. */
            static const int lists[] = { P_RELAY_R, P_RCPT_R };
            bool placed = false;
            for (size_t k = 0; k < 2 && !placed; k++) {
                const char *v = c->p[lists[k]].base;
                if (pc_find(v, "reject_unauth_destination", NULL, &fs, &fe) ||
                    pc_find(v, "defer_unauth_destination", NULL, &fs, &fe)) {
                    pc_want(c, lists[k], wp_asprintf("%.*s%s, %s", (int)fs, v, elem, v + fs),
                            "the relay decision on the resolved route, before reject_unauth_destination");
                    placed = true;
                }
            }
            if (!placed) {
                printf("# cannot place the policy service: neither smtpd_relay_restrictions nor\n"
                       "#   smtpd_recipient_restrictions names reject_unauth_destination; add\n"
                       "#   %s before it by hand\n", elem);
                c->problems++;
            }
        }
        /* ETRN: the policy service first, so that no permit skips the
         * merged-domain flushes. */
        if (!pc_find(c->p[P_ETRN_R].base, "check_policy_service", c->policy, &fs, &fe))
            pc_want(c, P_ETRN_R, pc_prepend(c->p[P_ETRN_R].base, elem),
                    "ETRN releases held queues with their merged domains");
        free(elem);
    }

    c->milter = milter_endpoint(s, c->qdir, c->chroot, &far);
    if (far)
        printf("# warning: %s is outside %s, a chrooted Postfix cannot reach it\n", c->milter, c->qdir);
    /* Mail that the rules could not see must not get through: tempfail,
     * for this milter only. */
    char *melem = wp_asprintf("{ %s, default_action=tempfail }", c->milter);
    static const int milters[] = { P_MILTERS, P_NS_MILTERS };
    for (size_t k = 0; k < 2; k++) {
        size_t fs, fe;
        if (!pc_find(c->p[milters[k]].base, c->milter, NULL, &fs, &fe))
            pc_want(c, milters[k], pc_append(c->p[milters[k]].base, melem),
                    k == 0 ? "the Server-wide Rules after the existing milters"
                           : "the rules see mail from sendmail too");
    }
    free(melem);

    size_t fs, fe;
    /* ETRN and postqueue -s flush only domains listed here: every Waypost
     * domain (through relay_domains) and held queue names that are not one. */
    char *flush = wp_strdup(c->p[P_FLUSH].base);
    if (!strstr(flush, "relay_domains") && c->map[0] && !pc_find(flush, c->map[0], NULL, &fs, &fe)) {
        char *n = pc_append(flush, c->map[0]);
        free(flush);
        flush = n;
    }
    const struct wp_strmap *held = &s->router->hold_queues;
    for (size_t i = 0; i < held->cap; i++) {
        const char *q = held->slots[i].key;
        if (q && !wp_router_routes_domain(s->router, q) && !pc_find(flush, q, NULL, &fs, &fe)) {
            char *n = pc_append(flush, q);
            free(flush);
            flush = n;
        }
    }
    if (strcmp(flush, c->p[P_FLUSH].base) != 0)
        pc_want(c, P_FLUSH, flush, "ETRN may flush Waypost's domains and held queues");
    else
        free(flush);
}

/* ---------------------------------------------------------------- master.cf */

static char *pc_master_name(const struct pc_ctx *c)
{
    return wp_asprintf("%s/unix", c->s->postfix.hold_transport);
}

static char *pc_master_entry(const struct pc_ctx *c)
{
    return wp_asprintf("%s unix - - %c - - smtp", c->s->postfix.hold_transport, c->chroot ? 'y' : 'n');
}

static bool pc_master_exists(struct pc_ctx *c)
{
    char *name = pc_master_name(c), *out = NULL;
    char *argv[] = { c->postconf, (char *)"-c", (char *)c->dir, (char *)"-M", name, NULL };
    int rc = pc_run(argv, &out, true);
    bool exists = rc == 0 && out && !pc_blank(out);
    free(out);
    free(name);
    return exists;
}

/* Chrooted or not, as master.cf runs cleanup (which runs the milters and
 * asks the maps on every message); NULL if master.cf does not say. */
static const char *pc_master_chroot(struct pc_ctx *c)
{
    char *out = NULL;
    char *argv[] = { c->postconf, (char *)"-c", (char *)c->dir, (char *)"-Fh", (char *)"cleanup/unix/chroot", NULL };
    int rc = pc_run(argv, &out, true);
    const char *r = NULL;
    if (rc == 0 && out) {
        if (out[0] == 'y')
            r = "y";
        else if (out[0] == 'n' || out[0] == '-') /* "-": Postfix 3's default, n */
            r = "n";
    }
    free(out);
    return r;
}

/* ---------------------------------------------------------------- the saved originals */

struct pc_saved {
    char *name;
    bool set;
    char *orig, *applied;
};

struct pc_state {
    struct pc_saved main[P_COUNT];
    size_t n;
    char *master; /* the master.cf entry --apply added, or NULL */
    bool found;
};

static char *pc_state_path(const struct pc_ctx *c)
{
    return wp_asprintf("%s/%s", c->dir, PC_SAVED);
}

static void pc_escape(FILE *f, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            fputs("\\\\", f);
        else if (*v == '\t')
            fputs("\\t", f);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

static char *pc_unescape(const char *v, size_t len)
{
    char *out = wp_malloc(len + 1), *o = out;
    for (size_t i = 0; i < len; i++) {
        if (v[i] == '\\' && i + 1 < len) {
            i++;
            *o++ = v[i] == 't' ? '\t' : v[i] == 'n' ? '\n' : v[i];
        } else {
            *o++ = v[i];
        }
    }
    *o = '\0';
    return out;
}

static void pc_state_free(struct pc_state *st)
{
    for (size_t i = 0; i < st->n; i++) {
        free(st->main[i].name);
        free(st->main[i].orig);
        free(st->main[i].applied);
    }
    free(st->master);
}

/* Lines "main TAB name TAB set TAB original TAB applied" and
 * "master TAB name/type". */
static bool pc_state_read(const struct pc_ctx *c, struct pc_state *st)
{
    memset(st, 0, sizeof(*st));
    char *path = pc_state_path(c), err[256];
    if (access(path, F_OK) < 0 && errno == ENOENT) {
        free(path);
        return true; /* nothing applied yet */
    }
    size_t len;
    char *text = wp_read_file(path, PC_OUT_MAX, &len, err, sizeof(err));
    if (!text)
        fprintf(stderr, "waypost: %s\n", err);
    free(path);
    if (!text)
        return false;
    st->found = true;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char *f[5];
        int nf = 0;
        f[nf++] = line;
        for (char *p = line; *p && nf < 5; p++)
            if (*p == '\t') {
                *p = '\0';
                f[nf++] = p + 1;
            }
        if (nf == 5 && strcmp(f[0], "main") == 0 && pc_index(f[1], strlen(f[1])) >= 0) {
            /* One record per parameter (the first): at most P_COUNT. */
            bool dup = false;
            for (size_t k = 0; k < st->n; k++)
                dup = dup || strcmp(st->main[k].name, f[1]) == 0;
            if (!dup) {
                struct pc_saved *sv = &st->main[st->n++];
                sv->name = wp_strdup(f[1]);
                sv->set = strcmp(f[2], "1") == 0;
                sv->orig = pc_unescape(f[3], strlen(f[3]));
                sv->applied = pc_unescape(f[4], strlen(f[4]));
            }
        } else if (nf == 2 && strcmp(f[0], "master") == 0) {
            free(st->master);
            st->master = wp_strdup(f[1]);
        }
        if (!nl)
            break;
        line = nl + 1;
    }
    free(text);
    return true;
}

static bool pc_state_write(const struct pc_ctx *c, const struct pc_state *st)
{
    char *path = pc_state_path(c);
    char *tmp = wp_asprintf("%s.tmp", path);
    bool ok = false;
    FILE *f = fopen(tmp, "w");
    if (!f)
        goto out;
    fprintf(f, "# waypost postconf --apply: the values before it, for --undo.  Do not edit.\n");
    for (size_t i = 0; i < st->n; i++) {
        fprintf(f, "main\t%s\t%d\t", st->main[i].name, st->main[i].set ? 1 : 0);
        pc_escape(f, st->main[i].orig);
        fputc('\t', f);
        pc_escape(f, st->main[i].applied);
        fputc('\n', f);
    }
    if (st->master)
        fprintf(f, "master\t%s\n", st->master);
    if (fclose(f) != 0 || rename(tmp, path) < 0)
        goto out;
    ok = true;
out:
    if (!ok) {
        fprintf(stderr, "waypost: %s: %s\n", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    free(path);
    return ok;
}

/* ---------------------------------------------------------------- doing it */

static void pc_print_quoted(const char *s)
{
    putchar('\'');
    for (; *s; s++) {
        if (*s == '\'')
            fputs("'\\''", stdout);
        else
            putchar(*s);
    }
    putchar('\'');
}

/* Runs postconf -c DIR OPTION ARGS... (each "name = value" or a name). */
static bool pc_postconf(struct pc_ctx *c, const char *option, char **args, size_t n)
{
    if (n == 0)
        return true;
    char **argv = wp_calloc(n + 5, sizeof(char *));
    argv[0] = c->postconf;
    argv[1] = (char *)"-c";
    argv[2] = (char *)c->dir;
    argv[3] = (char *)option;
    for (size_t i = 0; i < n; i++)
        argv[4 + i] = args[i];
    int rc = pc_run(argv, NULL, false);
    free(argv);
    if (rc != 0)
        fprintf(stderr, "waypost: %s -c %s %s failed\n", c->postconf, c->dir, option);
    return rc == 0;
}

/* postfix reload, if this Postfix is running. */
static void pc_reload(struct pc_ctx *c)
{
    char *status[] = { c->postfix, (char *)"-c", (char *)c->dir, (char *)"status", NULL };
    if (pc_run(status, NULL, true) != 0) {
        printf("# Postfix (%s) is not running: the changes apply when it starts\n", c->dir);
        return;
    }
    char *reload[] = { c->postfix, (char *)"-c", (char *)c->dir, (char *)"reload", NULL };
    if (pc_run(reload, NULL, true) == 0)
        printf("# Postfix (%s) reloaded\n", c->dir);
    else
        fprintf(stderr, "waypost: %s -c %s reload failed\n", c->postfix, c->dir);
}

static int pc_apply(struct pc_ctx *c, bool apply)
{
    char *args[P_COUNT];
    size_t nargs = 0;
    printf("# Waypost wiring merged into the Postfix configuration in %s (%s Postfix)\n", c->dir,
           c->chroot ? "chrooted" : "non-chrooted");
    for (int i = 0; i < P_COUNT; i++) {
        if (!c->p[i].want)
            continue;
        printf("# %s: %s\n", pc_names[i], c->p[i].why);
        args[nargs] = wp_asprintf("%s = %s", pc_names[i], c->p[i].want);
        printf("postconf -c %s -e ", c->dir);
        pc_print_quoted(args[nargs]);
        putchar('\n');
        nargs++;
    }
    char *mname = pc_master_name(c), *mentry = pc_master_entry(c);
    char *marg = wp_asprintf("%s=%s", mname, mentry);
    if (c->master_add) {
        printf("# master.cf: mail for held queues waits in this transport until ETRN\n");
        printf("postconf -c %s -M ", c->dir);
        pc_print_quoted(marg);
        putchar('\n');
    }
    int rc = 0;
    bool change = nargs > 0 || c->master_add;
    if (!change)
        printf("# nothing to change: Postfix already has Waypost's wiring\n");
    else if (!apply)
        printf("postfix -c %s reload\n", c->dir);
    if (c->conflicts || c->problems) {
        rc = 1;
        if (apply && change)
            printf("# not applied: resolve the conflicts above first\n");
    } else if (apply && change) {
        /* Record the originals first: a failure half-way can be undone. */
        struct pc_state st;
        if (!pc_state_read(c, &st)) {
            rc = 1;
            goto out;
        }
        for (int i = 0; i < P_COUNT; i++) {
            if (!c->p[i].want)
                continue;
            struct pc_saved *sv = NULL;
            for (size_t k = 0; k < st.n; k++)
                if (strcmp(st.main[k].name, pc_names[i]) == 0)
                    sv = &st.main[k];
            if (!sv) {
                sv = &st.main[st.n++];
                sv->name = wp_strdup(pc_names[i]);
                sv->set = c->p[i].set;
                sv->orig = wp_strdup(c->p[i].set ? c->p[i].raw : "");
                sv->applied = NULL;
            }
            free(sv->applied);
            sv->applied = wp_strdup(c->p[i].want);
        }
        if (c->master_add && !st.master)
            st.master = wp_strdup(mname);
        bool ok = pc_state_write(c, &st) && pc_postconf(c, "-e", args, nargs);
        if (ok && c->master_add)
            ok = pc_postconf(c, "-M", &marg, 1);
        pc_state_free(&st);
        if (!ok) {
            rc = 1;
            goto out;
        }
        pc_reload(c);
    }
out:
    for (size_t i = 0; i < nargs; i++)
        free(args[i]);
    free(mname);
    free(mentry);
    free(marg);
    return rc;
}

/* Waypost's elements taken out of a value (for values changed since
 * --apply, and wiring made without it). */
static char *pc_strip(const struct pc_ctx *c, int i, const char *v)
{
    char *cur = wp_strdup(v), *n;
#define PC_STRIP(w, follow) (n = pc_remove_all(cur, (w), (follow)), free(cur), cur = n)
    switch (i) {
    case P_RELAY: case P_RCPT: case P_VIRTUAL: case P_TRANSPORT: {
        int m = i - P_RELAY;
        if (c->map[m])
            PC_STRIP(c->map[m], NULL);
        break;
    }
    case P_RELAY_R: case P_RCPT_R: case P_ETRN_R:
        if (c->policy)
            PC_STRIP("check_policy_service", c->policy);
        break;
    case P_MILTERS: case P_NS_MILTERS:
        PC_STRIP(c->milter, NULL);
        break;
    case P_DEFER:
        PC_STRIP(c->s->postfix.hold_transport, NULL);
        break;
    default:
        break;
    }
#undef PC_STRIP
    return cur;
}

static int pc_undo(struct pc_ctx *c)
{
    struct pc_state st;
    if (!pc_state_read(c, &st))
        return 1;
    char *set[P_COUNT], *unset[P_COUNT];
    size_t nset = 0, nunset = 0;
    if (!st.found)
        printf("# no %s/%s (written by --apply): taking out Waypost's elements only\n", c->dir, PC_SAVED);
    for (int i = 0; i < P_COUNT; i++) {
        const struct pc_param *p = &c->p[i];
        const struct pc_saved *sv = NULL;
        for (size_t k = 0; k < st.n; k++)
            if (strcmp(st.main[k].name, pc_names[i]) == 0)
                sv = &st.main[k];
        if (sv && p->set && strcmp(p->raw, sv->applied) == 0) {
            if (sv->set) {
                set[nset++] = wp_asprintf("%s = %s", pc_names[i], sv->orig);
            } else {
                unset[nunset++] = wp_strdup(pc_names[i]);
            }
            continue;
        }
        if (!p->set || (!sv && st.found))
            continue;
        char *v = pc_strip(c, i, p->raw);
        if (strcmp(v, p->raw) != 0) {
            if (sv)
                printf("# %s was changed since --apply: only Waypost's elements are taken out\n", pc_names[i]);
            set[nset++] = wp_asprintf("%s = %s", pc_names[i], v);
        }
        free(v);
    }
    for (size_t k = 0; k < nset; k++) {
        printf("postconf -c %s -e ", c->dir);
        pc_print_quoted(set[k]);
        putchar('\n');
    }
    for (size_t k = 0; k < nunset; k++)
        printf("postconf -c %s -X %s\n", c->dir, unset[k]);
    bool master = st.master && pc_master_exists(c);
    if (master)
        printf("postconf -c %s -MX %s\n", c->dir, st.master);
    int rc = 0;
    if (nset + nunset == 0 && !master) {
        printf("# nothing to undo\n");
    } else if (!pc_postconf(c, "-e", set, nset) || !pc_postconf(c, "-X", unset, nunset) ||
               (master && !pc_postconf(c, "-MX", &st.master, 1))) {
        rc = 1;
    } else {
        pc_reload(c);
    }
    if (rc == 0 && st.found) {
        char *path = pc_state_path(c);
        unlink(path);
        free(path);
    }
    for (size_t k = 0; k < nset; k++)
        free(set[k]);
    for (size_t k = 0; k < nunset; k++)
        free(unset[k]);
    pc_state_free(&st);
    return rc;
}

static void pc_usage(FILE *out)
{
    fputs("usage: waypost [-c FILE] postconf [--apply|--undo] [--chroot|--no-chroot]\n"
          "       waypost [-c FILE] postconf --fresh [--main|--master] [--chroot|--no-chroot]\n",
          out);
}

int wp_postconf_main(const char *config, int argc, char **argv)
{
    bool fresh = false, apply = false, undo = false, want_main = true, want_master = true;
    int chroot = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--main") == 0)
            want_master = false, fresh = true;
        else if (strcmp(argv[i], "--master") == 0)
            want_main = false, fresh = true;
        else if (strcmp(argv[i], "--fresh") == 0)
            fresh = true;
        else if (strcmp(argv[i], "--apply") == 0)
            apply = true;
        else if (strcmp(argv[i], "--undo") == 0)
            undo = true;
        else if (strcmp(argv[i], "--chroot") == 0)
            chroot = 1;
        else if (strcmp(argv[i], "--no-chroot") == 0)
            chroot = 0;
        else {
            pc_usage(stderr);
            return 2;
        }
    }
    if ((fresh && (apply || undo)) || (apply && undo) || (!want_main && !want_master)) {
        pc_usage(stderr);
        return 2;
    }
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_snapshot *s = wp_snapshot_load(config, wp_sections_all, &err);
    if (!s)
        for (size_t i = 0; i < err.count; i++)
            fprintf(stderr, "%s\n", err.msgs[i]);
    wp_errors_free(&err);
    if (!s)
        return 1;
    int rc;
    if (fresh) {
        rc = postconf_fresh(s, chroot < 0 ? s->postfix.chroot : chroot == 1, want_main, want_master);
        wp_snapshot_unref(s);
        return rc;
    }
    struct pc_ctx c;
    memset(&c, 0, sizeof(c));
    c.s = s;
    c.dir = s->postfix.config_directory;
    pc_program("postconf", c.postconf, sizeof(c.postconf));
    pc_program("postfix", c.postfix, sizeof(c.postfix));
    if (!pc_read(&c)) {
        rc = 1;
        goto out;
    }
    if (chroot >= 0) {
        c.chroot = chroot == 1;
    } else {
        const char *mc = pc_master_chroot(&c);
        c.chroot = mc ? mc[0] == 'y' : s->postfix.chroot;
    }
    pc_plan(&c);
    if (undo) {
        rc = pc_undo(&c);
        goto out;
    }
    pc_conflicts(&c);
    c.master_add = !pc_master_exists(&c);
    rc = pc_apply(&c, apply);
out:
    pc_free(&c);
    wp_snapshot_unref(s);
    return rc;
}
