/* SPDX-License-Identifier: MIT */
/*
 * pcmerge.c - the merge of `waypost postconf` (see postconf.c's header for
 * what is added where): read the running configuration, plan each
 * parameter's new value, report conflicts, print or apply the postconf
 * commands, and record (DIR/waypost-postconf.saved) and restore the
 * original values for --undo.
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

#include "cli/postconf_int.h"

/* ---------------------------------------------------------------- the parameters */

enum {
    P_RELAY,
    P_RCPT,
    P_VIRTUAL,
    P_TRANSPORT,
    P_VAD,
    P_RELAY_R,
    P_RCPT_R,
    P_ETRN_R,
    P_MILTERS,
    P_NS_MILTERS,
    P_DEFER,
    P_FLUSH,
    P_MYDEST,
    P_VMD,
    P_QDIR,
    P_COUNT
};
static const char *const pc_names[P_COUNT] = {
    "relay_domains",
    "relay_recipient_maps",
    "virtual_alias_maps",
    "transport_maps",
    "virtual_alias_domains",
    "smtpd_relay_restrictions",
    "smtpd_recipient_restrictions",
    "smtpd_etrn_restrictions",
    "smtpd_milters",
    "non_smtpd_milters",
    "defer_transports",
    "fast_flush_domains",
    "mydestination",
    "virtual_mailbox_domains",
    "queue_directory",
};

struct pc_param {
    bool set;   /* explicitly set in main.cf */
    char *raw;  /* as set (set), else NULL */
    char *base; /* what Waypost edits: raw, the default, or the effective value */
    char *eff;  /* after $parameter expansion */
    char *want; /* the new value (NULL: unchanged) */
    char *why;  /* what the change does */
};

struct pc_ctx {
    const struct wp_snapshot *s;
    const char *dir;
    char postconf[64], postfix[64];
    char *qdir;
    bool chroot;
    struct pc_param p[P_COUNT];
    /* Waypost's elements */
    char *map[4]; /* relay, recipient, virtual, transport */
    char *policy; /* endpoint */
    char *milter; /* endpoint */
    bool master_add;
    int problems; /* elements that could not be placed */
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
    int rn = wp_pclist_run(argv, &nout, false);
    argv[opt] = (char *)"-dh";
    int rd = wp_pclist_run(argv, &dout, false);
    argv[opt] = (char *)"-xh";
    int rx = wp_pclist_run(argv, &xout, false);
    bool ok = false;
    char *dl[P_COUNT], *xl[P_COUNT];
    if (rn != 0 || rd != 0 || rx != 0 || !pc_lines(dout, dl) || !pc_lines(xout, xl)) {
        fprintf(stderr, "waypost: cannot read the Postfix configuration in %s with %s\n", c->dir,
                c->postconf);
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
    static const int lists[] = {P_MYDEST, P_VMD, P_VAD};
    for (size_t k = 0; k < sizeof(lists) / sizeof(lists[0]); k++) {
        int i = lists[k];
        const char *v = c->p[i].eff;
        size_t pos = 0, s, e;
        while (wp_pclist_next(v, &pos, &s, &e)) {
            if (!pc_waypost_domain(c->s->router, v, s, e))
                continue;
            c->conflicts++;
            char *dom = wp_strndup(v + s, e - s);
            printf("# conflict: %s is a Waypost domain and is listed in %s: Postfix delivers it itself\n"
                   "#   and never asks Waypost.  Take it out of %s",
                   dom, pc_names[i], pc_names[i]);
            size_t fs, fe;
            if (wp_pclist_find(c->p[i].base, dom, NULL, &fs, &fe)) {
                char *fixed = wp_pclist_cut(c->p[i].base, fs, fe);
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
    static const char *const mapnames[4] = {"relay", "recipient", "virtual", "transport"};
    static const int mapparams[4] = {P_RELAY, P_RCPT, P_VIRTUAL, P_TRANSPORT};
    bool far;
    for (int m = 0; m < 4; m++) {
        c->map[m] = wp_pc_map_endpoint(s, c->qdir, mapnames[m], c->chroot, &far);
        if (!c->map[m]) {
            printf("# %s: no policyd.listen endpoint serves the '%s' map\n", pc_names[mapparams[m]],
                   mapnames[m]);
            c->problems++;
            continue;
        }
        if (far)
            printf("# warning: %s is outside %s, a chrooted Postfix cannot reach it\n", c->map[m], c->qdir);
        size_t fs, fe;
        if (!wp_pclist_find(c->p[mapparams[m]].base, c->map[m], NULL, &fs, &fe))
            pc_want(c, mapparams[m], wp_pclist_prepend(c->p[mapparams[m]].base, c->map[m]),
                    "Waypost's map in front of the existing ones");
    }
    /* virtual_alias_domains: its default, $virtual_alias_maps, would ask
     * Waypost's virtual map for domains; it keeps the domains of the maps
     * that were there. */
    struct pc_param *vad = &c->p[P_VAD];
    char *old_vam = c->map[2] ? wp_pclist_remove_all(c->p[P_VIRTUAL].base, c->map[2], NULL)
                              : wp_strdup(c->p[P_VIRTUAL].base);
    if (!vad->set) {
        pc_want(c, P_VAD, wp_strdup(old_vam), "the virtual alias domains stay those of the existing maps");
    } else {
        size_t fs, fe;
        const char *ref =
            wp_pclist_find(vad->base, "$virtual_alias_maps", NULL, &fs, &fe)     ? "$virtual_alias_maps"
            : wp_pclist_find(vad->base, "${virtual_alias_maps}", NULL, &fs, &fe) ? "${virtual_alias_maps}"
                                                                                 : NULL;
        if (ref) {
            char *v = wp_pclist_blank(old_vam)
                          ? wp_pclist_cut(vad->base, fs, fe)
                          : wp_asprintf("%.*s%s%s", (int)fs, vad->base, old_vam, vad->base + fe);
            pc_want(c, P_VAD, v, "the virtual alias domains stay those of the existing maps");
        }
    }
    free(old_vam);

    c->policy = wp_pc_policy_endpoint(s, c->qdir, c->chroot, &far);
    if (!c->policy) {
        printf("# no policyd.listen endpoint speaks the policy protocol: relaying cannot be checked\n");
        c->problems++;
    } else {
        if (far)
            printf("# warning: %s is outside %s, a chrooted Postfix cannot reach it\n", c->policy, c->qdir);
        char *elem = pc_policy_elem(c->policy);
        size_t fs, fe;
        if (!wp_pclist_find(c->p[P_RELAY_R].base, "check_policy_service", c->policy, &fs, &fe) &&
            !wp_pclist_find(c->p[P_RCPT_R].base, "check_policy_service", c->policy, &fs, &fe)) {
            /* Relaying is decided where Postfix decides it: before the
             * first reject/defer_unauth_destination it evaluates. */
            static const int lists[] = {P_RELAY_R, P_RCPT_R};
            bool placed = false;
            for (size_t k = 0; k < 2 && !placed; k++) {
                const char *v = c->p[lists[k]].base;
                if (wp_pclist_find(v, "reject_unauth_destination", NULL, &fs, &fe) ||
                    wp_pclist_find(v, "defer_unauth_destination", NULL, &fs, &fe)) {
                    pc_want(c, lists[k], wp_asprintf("%.*s%s, %s", (int)fs, v, elem, v + fs),
                            "the relay decision on the resolved route, before reject_unauth_destination");
                    placed = true;
                }
            }
            if (!placed) {
                printf("# cannot place the policy service: neither smtpd_relay_restrictions nor\n"
                       "#   smtpd_recipient_restrictions names reject_unauth_destination; add\n"
                       "#   %s before it by hand\n",
                       elem);
                c->problems++;
            }
        }
        /* ETRN: the policy service first, so that no permit skips the
         * merged-domain flushes. */
        if (!wp_pclist_find(c->p[P_ETRN_R].base, "check_policy_service", c->policy, &fs, &fe))
            pc_want(c, P_ETRN_R, wp_pclist_prepend(c->p[P_ETRN_R].base, elem),
                    "ETRN releases held queues with their merged domains");
        free(elem);
    }

    c->milter = wp_pc_milter_endpoint(s, c->qdir, c->chroot, &far);
    if (far)
        printf("# warning: %s is outside %s, a chrooted Postfix cannot reach it\n", c->milter, c->qdir);
    /* Mail that the rules could not see must not get through: tempfail,
     * for this milter only. */
    char *melem = wp_asprintf("{ %s, default_action=tempfail }", c->milter);
    static const int milters[] = {P_MILTERS, P_NS_MILTERS};
    for (size_t k = 0; k < 2; k++) {
        size_t fs, fe;
        if (!wp_pclist_find(c->p[milters[k]].base, c->milter, NULL, &fs, &fe))
            pc_want(c, milters[k], wp_pclist_append(c->p[milters[k]].base, melem),
                    k == 0 ? "the Server-wide Rules after the existing milters"
                           : "the rules see mail from sendmail too");
    }
    free(melem);

    size_t fs, fe;
    /* ETRN and postqueue -s flush only domains listed here: every Waypost
     * domain (through relay_domains) and held queue names that are not one. */
    char *flush = wp_strdup(c->p[P_FLUSH].base);
    if (!strstr(flush, "relay_domains") && c->map[0] && !wp_pclist_find(flush, c->map[0], NULL, &fs, &fe)) {
        char *n = wp_pclist_append(flush, c->map[0]);
        free(flush);
        flush = n;
    }
    const struct wp_strmap *held = &s->router->hold_queues;
    for (size_t i = 0; i < held->cap; i++) {
        const char *q = held->slots[i].key;
        if (q && !wp_router_routes_domain(s->router, q) && !wp_pclist_find(flush, q, NULL, &fs, &fe)) {
            char *n = wp_pclist_append(flush, q);
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
    char *argv[] = {c->postconf, (char *)"-c", (char *)c->dir, (char *)"-M", name, NULL};
    int rc = wp_pclist_run(argv, &out, true);
    bool exists = rc == 0 && out && !wp_pclist_blank(out);
    free(out);
    free(name);
    return exists;
}

/* Chrooted or not, as master.cf runs cleanup (which runs the milters and
 * asks the maps on every message); NULL if master.cf does not say. */
static const char *pc_master_chroot(struct pc_ctx *c)
{
    char *out = NULL;
    char *argv[] = {c->postconf, (char *)"-c", (char *)c->dir, (char *)"-Fh", (char *)"cleanup/unix/chroot",
                    NULL};
    int rc = wp_pclist_run(argv, &out, true);
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
    int rc = wp_pclist_run(argv, NULL, false);
    free(argv);
    if (rc != 0)
        fprintf(stderr, "waypost: %s -c %s %s failed\n", c->postconf, c->dir, option);
    return rc == 0;
}

/* postfix reload, if this Postfix is running. */
static void pc_reload(struct pc_ctx *c)
{
    char *status[] = {c->postfix, (char *)"-c", (char *)c->dir, (char *)"status", NULL};
    if (wp_pclist_run(status, NULL, true) != 0) {
        printf("# Postfix (%s) is not running: the changes apply when it starts\n", c->dir);
        return;
    }
    char *reload[] = {c->postfix, (char *)"-c", (char *)c->dir, (char *)"reload", NULL};
    if (wp_pclist_run(reload, NULL, true) == 0)
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
#define PC_STRIP(w, follow) (n = wp_pclist_remove_all(cur, (w), (follow)), free(cur), cur = n)
    switch (i) {
    case P_RELAY:
    case P_RCPT:
    case P_VIRTUAL:
    case P_TRANSPORT: {
        int m = i - P_RELAY;
        if (c->map[m])
            PC_STRIP(c->map[m], NULL);
        break;
    }
    case P_RELAY_R:
    case P_RCPT_R:
    case P_ETRN_R:
        if (c->policy)
            PC_STRIP("check_policy_service", c->policy);
        break;
    case P_MILTERS:
    case P_NS_MILTERS: PC_STRIP(c->milter, NULL); break;
    case P_DEFER: PC_STRIP(c->s->postfix.hold_transport, NULL); break;
    default: break;
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
                printf("# %s was changed since --apply: only Waypost's elements are taken out\n",
                       pc_names[i]);
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

/* The merge, its --apply and its --undo (postconf_int.h). */
int wp_pcmerge_run(const struct wp_snapshot *s, int chroot, bool apply, bool undo)
{
    int rc;
    struct pc_ctx c;
    memset(&c, 0, sizeof(c));
    c.s = s;
    c.dir = s->postfix.config_directory;
    wp_pclist_program("postconf", c.postconf, sizeof(c.postconf));
    wp_pclist_program("postfix", c.postfix, sizeof(c.postfix));
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
    return rc;
}
