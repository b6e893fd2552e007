/* SPDX-License-Identifier: MIT */
/*
 * import.c - `waypost import cgp SOURCE... -o DIR [--force]`.
 *
 * Reads CommuniGate Pro's own data, one file per CLI command as the CLI
 * returns it after its "200 data follow" line (what `waypost export cgp`
 * writes), and writes a Waypost configuration plus IMPORT-REPORT:
 *
 *   MainDomainName           string               router.main_domain
 *   ListDomains              array of names       router.domains
 *   GetDomainSettings.D      dictionary           mail_to_unknown (MailToUnknown,
 *                                                 MailRerouteAddress)
 *   GetDomainAliases.D       array                aliases
 *   ListAccounts.D           dictionary name=type D.passwd (passwd-file, names only)
 *   ListForwarders.D         array                forwarders = [ "Relay:n: target" ]
 *   GetForwarder.N@D         string
 *   ListGroups.D, GetGroup.N@D  array, dictionary groups = [ "Relay:n: members" ]
 *   ListLists.D              array                report (list manager)
 *   GetRouterTable           one string, records  router.table
 *                            separated by \e
 *     (or RouterTable.txt, the WebAdmin text form, one record a line)
 *   GetServerMailRules       array of rules       rules = ( ... ) in waypost.conf
 *     (or Rules.settings)
 *
 * Documented behaviour followed (CommuniGate Guide): Data.html for the
 * format (lib/cgpdata.c); CLI.html for the answers; Rules.html for a rule,
 * (priority, "name", ((condition, operation, parameter), ...), ((action,
 * parameter), ...)), priorities 9 (first) .. 1 and Inactive (not applied);
 * Domains.html "Mail to Unknown" (Rejected, Discarded, Rerouted to,
 * Accepted and Bounced); Router.html for the table (one record a line, ';'
 * comments).  The settings key names MailToUnknown and MailRerouteAddress
 * and the Members array of GetGroup are as we recall them from CLI output,
 * not read in a Guide page: keys are matched in any case, and a GetGroup
 * answer that is a bare array is taken as the members.
 *
 * Nothing is dropped silently: every item not written into the
 * configuration is a line of IMPORT-REPORT with what to use on the
 * Postfix/Dovecot side instead.  The output depends only on the input:
 * domains are sorted, no timestamps, so running the import twice gives the
 * same files.  Existing files are never replaced without --force; the
 * files are written only when the whole input was read without errors.
 *
 * Limits: each input file at most 64 MB (lib/cgpdata.h bounds the rest).
 */
#include "config.h"

#include "cli/import.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/address.h"
#include "lib/cgpdata.h"
#include "lib/errors.h"
#include "lib/util.h"
#include "router/table.h"

#define IMPORT_FILE_MAX (64u << 20)

struct import {
    char **sources;
    size_t nsources;
    char **used; /* file names read, for the "not read" report */
    size_t nused;
    char **report;
    size_t nreport;
    int errors;
    char *main_domain;
};

/* ---------------------------------------------------------------- helpers */

static void push(char ***v, size_t *n, char *s)
{
    *v = wp_realloc(*v, (*n + 1) * sizeof(char *));
    (*v)[(*n)++] = s;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void report(struct import *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(struct import *im, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        abort();
    va_end(ap);
    /* One item, one line, no terminal escapes: names come from the input. */
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < ' ' || *p == 0x7f)
            *p = *p == '\n' || *p == '\r' || *p == '\t' ? ' ' : '?';
    push(&im->report, &im->nreport, s);
}

static void error(struct import *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void error(struct import *im, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++) /* names come from the input */
        if ((unsigned char)*p < ' ' || *p == 0x7f)
            *p = '?';
    fprintf(stderr, "waypost import: %s\n", msg);
    im->errors++;
}

/* "an array", "a string": for messages. */
static const char *a_type(enum wp_cgp_type t)
{
    switch (t) {
    case WP_CGP_STRING: return "a string";
    case WP_CGP_DATA: return "a data block";
    case WP_CGP_ARRAY: return "an array";
    case WP_CGP_DICT: return "a dictionary";
    }
    return "?";
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Quote s as a libconfig string (which has \\ \" \n \r \t \f and \xNN). */
static void put_conf_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < ' ' || *p == 0x7f)
                fprintf(f, "\\x%02x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

/* A domain name we are willing to write: letters, digits, '-', '_', '.'. */
static bool good_domain(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > WP_DOMAIN_MAX || s[0] == '.' || s[0] == '-')
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
            return false;
    return true;
}

/* An account, forwarder or group name: CommuniGate object names. */
static bool good_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > WP_LOCAL_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("-_.+", *p))
            return false;
    return true;
}

/* A target address or pattern for a Router record or a rule: printable,
 * no white space, nothing the table grammar reads as syntax. */
static bool good_target(const char *s)
{
    if (!*s || strlen(s) > WP_LOCAL_MAX + WP_DOMAIN_MAX + 1)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 0x7f || *p == ';' || *p == '"' || *p == '<' || *p == '>' || *p == ',')
            return false;
    return true;
}

static char *lower_dup(const char *s)
{
    char *d = wp_strdup(s);
    wp_str_lower(d);
    return d;
}

/* ---------------------------------------------------------------- input */

/* The path of a source file (first SOURCE directory holding it) or NULL. */
static char *find_file(struct import *im, const char *name)
{
    for (size_t i = 0; i < im->nsources; i++) {
        char *p = wp_asprintf("%s/%s", im->sources[i], name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
            return p;
        free(p);
    }
    return NULL;
}

/* Read and parse one source file.  NULL if it is absent (*present false)
 * or broken (an error is counted). */
static struct wp_cgp *read_cgp(struct import *im, const char *name, bool *present)
{
    *present = false;
    char *path = find_file(im, name);
    if (!path)
        return NULL;
    *present = true;
    push(&im->used, &im->nused, wp_strdup(name));
    char err[256];
    size_t len;
    char *text = wp_read_file(path, IMPORT_FILE_MAX, &len, err, sizeof(err));
    struct wp_cgp *v = NULL;
    if (!text) {
        error(im, "%s: %s", path, err);
    } else {
        v = wp_cgp_parse(text, len, err, sizeof(err));
        if (!v)
            error(im, "%s:%s", path, err);
    }
    free(text);
    free(path);
    return v;
}

/* An array of strings from a source file (sorted, lower case if fold).
 * Returns false if the file is absent. */
static bool read_names(struct import *im, const char *name, bool fold, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    bool present;
    struct wp_cgp *v = read_cgp(im, name, &present);
    if (!v)
        return present;
    if (v->type == WP_CGP_DICT) {
        /* ListAccounts: {name = type; ...} */
        for (size_t i = 0; i < v->n; i++)
            push(out, n, fold ? lower_dup(v->keys[i]) : wp_strdup(v->keys[i]));
    } else if (v->type == WP_CGP_ARRAY) {
        for (size_t i = 0; i < v->n; i++) {
            const char *s = wp_cgp_str(v->items[i]);
            if (s)
                push(out, n, fold ? lower_dup(s) : wp_strdup(s));
            else
                error(im, "%s:%d:%d: a name was expected, found %s", name, v->items[i]->line,
                      v->items[i]->col, a_type(v->items[i]->type));
        }
    } else {
        error(im, "%s: an array of names was expected, found %s", name, a_type(v->type));
    }
    wp_cgp_free(v);
    if (*n > 1)
        qsort(*out, *n, sizeof(char *), cmp_str);
    return true;
}

/* One Router record is checked by Waypost's own table parser, so that what
 * router.table holds is exactly what `waypost check` accepts. */
static bool record_ok(const char *line, const char *main_domain, char *why, size_t whylen)
{
    char *buf = wp_strdup(line); /* taken over by wp_table_parse */
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_table *t = wp_table_parse(buf, strlen(buf), "router.table", main_domain, &err);
    bool ok = t && err.count == 0;
    if (!ok && err.count) {
        /* "router.table:1: message" -> "message" */
        const char *m = strstr(err.msgs[0], ":1: ");
        wp_strlcpy(why, m ? m + 4 : err.msgs[0], whylen);
    } else if (!ok) {
        wp_strlcpy(why, "not a Router record", whylen);
    }
    if (t)
        wp_table_free(t);
    wp_errors_free(&err);
    return ok; /* buf belongs to the table parser */
}

/* ---------------------------------------------------------------- domains */

struct domain {
    char *name;
    char **aliases;
    size_t naliases;
    char **accounts;
    size_t naccounts;
    char *mail_to_unknown;
    char **groups; /* "Relay:NAME: MEMBER, ..." entries of the groups setting */
    size_t ngroups;
    char **forwarders; /* "Relay:NAME: TARGET" */
    size_t nforwarders;
};

static void free_domain(struct domain *d)
{
    free(d->name);
    free_strv(d->groups, d->ngroups);
    free_strv(d->forwarders, d->nforwarders);
    free_strv(d->aliases, d->naliases);
    free_strv(d->accounts, d->naccounts);
    free(d->mail_to_unknown);
}

/* GetDomainSettings.D -> the mail_to_unknown value. */
static char *mail_to_unknown(struct import *im, const char *domain)
{
    char *file = wp_asprintf("GetDomainSettings.%s", domain);
    bool present;
    struct wp_cgp *v = read_cgp(im, file, &present);
    char *out = NULL;
    if (!present) {
        report(im, "%s: missing; Mail to Unknown of %s taken as Rejected (CommuniGate's default)", file,
               domain);
        out = wp_strdup("Rejected");
    } else if (v && v->type != WP_CGP_DICT) {
        error(im, "%s: a dictionary was expected, found %s", file, a_type(v->type));
    } else if (v) {
        const char *mtu = wp_cgp_str(wp_cgp_get_ci(v, "MailToUnknown"));
        const char *addr = wp_cgp_str(wp_cgp_get_ci(v, "MailRerouteAddress"));
        char norm[64] = "";
        size_t k = 0;
        for (const char *p = mtu ? mtu : "rejected"; *p && k + 1 < sizeof(norm); p++)
            if (*p != ' ' && *p != '-' && *p != '_')
                norm[k++] = wp_lower(*p);
        norm[k] = '\0';
        if (strcmp(norm, "rejected") == 0) {
            out = wp_strdup("Rejected");
        } else if (strcmp(norm, "discarded") == 0) {
            out = wp_strdup("Discarded");
        } else if (strcmp(norm, "acceptedandbounced") == 0 || strcmp(norm, "bounced") == 0) {
            out = wp_strdup("Accepted and Bounced");
        } else if (strcmp(norm, "rerouted") == 0 || strcmp(norm, "reroutedto") == 0 ||
                   strncmp(norm, "reroutedto", 10) == 0) {
            /* "Rerouted" with MailRerouteAddress, or "Rerouted to X" in one value. */
            const char *pat = addr;
            if (!pat && mtu && wp_strnieq(mtu, "Rerouted to ", 12))
                pat = mtu + 12;
            while (pat && *pat == ' ')
                pat++;
            if (!pat || !good_target(pat)) {
                error(im, "%s: Mail to Unknown is Rerouted, but %s", file,
                      pat ? "the address is not one Waypost can write" : "MailRerouteAddress is missing");
            } else {
                out = wp_asprintf("Rerouted to %s", pat);
            }
        } else {
            error(im,
                  "%s: MailToUnknown '%.80s' is none of Rejected, Discarded, Rerouted, Accepted and Bounced",
                  file, mtu);
        }
        /* Everything else of the domain's settings is CommuniGate's own. */
        char *rest = NULL;
        size_t rlen = 0;
        FILE *f = open_memstream(&rest, &rlen);
        size_t nrest = 0;
        for (size_t i = 0; i < v->n; i++) {
            if (wp_strieq(v->keys[i], "MailToUnknown") || wp_strieq(v->keys[i], "MailRerouteAddress"))
                continue;
            fprintf(f, "%s%s", nrest++ ? ", " : "", v->keys[i]);
        }
        fclose(f);
        if (nrest)
            report(im,
                   "%s: settings not carried over: %s -> no Waypost equivalent; set them on the "
                   "Postfix/Dovecot side where they matter",
                   file, rest);
        free(rest);
    }
    wp_cgp_free(v);
    free(file);
    return out;
}

static void read_domain(struct import *im, struct domain *d)
{
    d->mail_to_unknown = mail_to_unknown(im, d->name);

    char *file = wp_asprintf("GetDomainAliases.%s", d->name);
    char **names;
    size_t n;
    read_names(im, file, true, &names, &n);
    for (size_t i = 0; i < n; i++) {
        if (good_domain(names[i]))
            push(&d->aliases, &d->naliases, names[i]);
        else {
            report(im, "%s: alias '%s' not carried over: not a domain name", file, names[i]);
            free(names[i]);
        }
    }
    free(names);
    free(file);

    file = wp_asprintf("ListAccounts.%s", d->name);
    if (!read_names(im, file, true, &names, &n))
        report(im, "%s: missing; domain %s imported without accounts", file, d->name);
    for (size_t i = 0; i < n; i++) {
        if (good_name(names[i]))
            push(&d->accounts, &d->naccounts, names[i]);
        else {
            report(im, "%s: account '%s' not carried over: not a name Waypost can write", file, names[i]);
            free(names[i]);
        }
    }
    free(names);
    free(file);

    /* Forwarders: the domain's forwarders setting, with Relay: so that
     * anyone may send to the forwarder as in CommuniGate, wherever its
     * target is. */
    file = wp_asprintf("ListForwarders.%s", d->name);
    read_names(im, file, true, &names, &n);
    for (size_t i = 0; i < n; i++) {
        if (!good_name(names[i])) { /* it names a file: never a '/' */
            report(im, "%s: forwarder '%s' not carried over: not a name Waypost can write", file, names[i]);
            continue;
        }
        char *gf = wp_asprintf("GetForwarder.%s@%s", names[i], d->name);
        bool present;
        struct wp_cgp *v = read_cgp(im, gf, &present);
        const char *target = wp_cgp_str(v);
        if (!present)
            report(im, "%s: missing; forwarder %s@%s not carried over -> export it again", gf, names[i],
                   d->name);
        else if (v && !target)
            error(im, "%s: a string was expected, found %s", gf, a_type(v->type));
        else if (v && !good_target(target))
            report(im, "%s: forwarder %s@%s -> '%s' not carried over: not an address Waypost can write", gf,
                   names[i], d->name, target);
        else if (v) {
            /* A name without a domain is in the main domain (Router.html). */
            char *entry = wp_asprintf("Relay:%s: %s%s%s", names[i], target, strchr(target, '@') ? "" : "@",
                                      strchr(target, '@') ? "" : im->main_domain);
            push(&d->forwarders, &d->nforwarders, entry);
        }
        wp_cgp_free(v);
        free(gf);
    }
    free_strv(names, n);
    free(file);

    /* Groups: the domain's groups setting, with Relay: (anyone may send to
     * a CommuniGate group, wherever its members are). */
    file = wp_asprintf("ListGroups.%s", d->name);
    read_names(im, file, true, &names, &n);
    for (size_t i = 0; i < n; i++) {
        if (!good_name(names[i])) { /* it names a file: never a '/' */
            report(im, "%s: group '%s' not carried over: not a name Waypost can write", file, names[i]);
            continue;
        }
        char *gg = wp_asprintf("GetGroup.%s@%s", names[i], d->name);
        bool present;
        struct wp_cgp *v = read_cgp(im, gg, &present);
        /* The group's dictionary with a Members array (as we recall the CLI's
         * answer); a bare array of members is taken as well. */
        const struct wp_cgp *members = v && v->type == WP_CGP_ARRAY ? v : wp_cgp_get_ci(v, "Members");
        if (!present) {
            report(im, "%s: missing; group %s@%s not carried over -> export it again", gg, names[i], d->name);
        } else if (v && (v->type == WP_CGP_STRING || v->type == WP_CGP_DATA ||
                         (members && members->type != WP_CGP_ARRAY))) {
            error(im, "%s: a dictionary with a Members array was expected", gg);
        } else if (v) {
            char *entry = NULL;
            size_t elen = 0;
            FILE *groups = open_memstream(&entry, &elen);
            fprintf(groups, "Relay:%s: ", names[i]);
            size_t nm = 0;
            for (size_t k = 0; k < wp_cgp_count(members); k++) {
                const char *m = wp_cgp_str(wp_cgp_item(members, k));
                if (!m || !good_target(m)) {
                    report(im, "%s: member %zu of group %s@%s not written: not an address", gg, k + 1,
                           names[i], d->name);
                    continue;
                }
                fprintf(groups, "%s%s%s%s", nm++ ? ", " : "", m, strchr(m, '@') ? "" : "@",
                        strchr(m, '@') ? "" : d->name);
            }
            fclose(groups);
            if (nm)
                push(&d->groups, &d->ngroups, entry);
            else {
                report(im, "%s: group %s@%s not carried over: no members Waypost can write", gg, names[i],
                       d->name);
                free(entry);
            }
        }
        wp_cgp_free(v);
        free(gg);
    }
    free_strv(names, n);
    free(file);

    file = wp_asprintf("ListLists.%s", d->name);
    read_names(im, file, true, &names, &n);
    for (size_t i = 0; i < n; i++)
        report(im,
               "%s: mailing list %s@%s not carried over -> a list manager (Mailman, Sympa, mlmmj) with its "
               "Postfix transport; export the subscribers with CommuniGate's ReadSubscribers",
               file, names[i], d->name);
    free_strv(names, n);
    free(file);
}

/* ---------------------------------------------------------------- Router table */

static void import_table(struct import *im, FILE *out)
{
    bool present;
    const char *src = "GetRouterTable";
    struct wp_cgp *v = read_cgp(im, src, &present);
    char *text = NULL;
    if (present) {
        if (v && !wp_cgp_str(v))
            error(im, "GetRouterTable: a string was expected, found %s", a_type(v->type));
        else if (v)
            text = wp_strdup(v->str);
        char *other = find_file(im, "RouterTable.txt");
        if (other)
            report(im, "RouterTable.txt: not read, GetRouterTable was used instead");
        free(other);
    } else {
        src = "RouterTable.txt";
        char *path = find_file(im, src);
        if (path) {
            push(&im->used, &im->nused, wp_strdup(src));
            char err[256];
            size_t len;
            text = wp_read_file(path, IMPORT_FILE_MAX, &len, err, sizeof(err));
            if (!text)
                error(im, "%s: %s", path, err);
            else if (strlen(text) != len)
                error(im, "%s: holds a zero byte", path), free(text), text = NULL;
            free(path);
        } else {
            report(
                im,
                "GetRouterTable: missing (and no RouterTable.txt); router.table holds the forwarders only");
        }
    }
    wp_cgp_free(v);
    fprintf(out,
            "; Router table imported from CommuniGate Pro (%s) by waypost import cgp.\n"
            "; Grammar: waypost-router(5).  Records Waypost cannot read are kept as comments\n"
            "; and listed in IMPORT-REPORT.\n",
            src);
    if (!text)
        return;
    int lineno = 0;
    for (char *line = text; line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        lineno++;
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
            line[--len] = '\0';
        const char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        char why[256];
        bool printable = true;
        for (const unsigned char *q = (const unsigned char *)line; *q; q++)
            if ((*q < ' ' && *q != '\t') || *q == 0x7f)
                printable = false;
        if (!printable) {
            fprintf(out, "; not imported (record %d: control characters)\n", lineno);
            report(im, "%s: record %d not carried over: it holds control characters", src, lineno);
        } else if (*p == '\0' || *p == ';') {
            fprintf(out, "%s\n", line);
        } else if (record_ok(p, im->main_domain, why, sizeof(why))) {
            fprintf(out, "%s\n", p);
        } else {
            fprintf(out, "; not imported (%s): %s\n", why, p);
            report(im,
                   "%s: record %d '%s' not carried over: %s -> rewrite it in waypost-router(5) form or as a "
                   "Postfix map entry",
                   src, lineno, p, why);
        }
        line = nl && nl[1] ? nl + 1 : NULL; /* a last line break ends the last record */
    }
    free(text);
}

/* ---------------------------------------------------------------- rules */

/* The conditions Waypost's rules read (waypost.conf(5), RULES), spelled as
 * CommuniGate spells them. */
static const char *const cond_names[] = {
    "From",
    "Sender",
    "Return-Path",
    "To",
    "Cc",
    "Reply-To",
    "Any To or Cc",
    "Each To or Cc",
    "Any Recipient",
    "Each Recipient",
    "Any Route",
    "Each Route",
    "Submit Address",
    "Source",
    "Subject",
    "Header Field",
    "Message Size",
    "Human Generated",
    "Current Date",
    "Current Day",
    "Current Time",
};
static const char *const op_names[] = {"is", "is not", "in", "not in", "greater than", "less than"};
/* Actions Waypost carries out; the number says whether a parameter is taken. */
static const struct {
    const char *name;
    int param; /* 0 none, 1 required, 2 optional */
} act_names[] = {
    {"Reject with", 2}, {"Discard", 0},    {"Stop Processing", 0},   {"Mirror to", 1},
    {"Redirect to", 1}, {"Forward to", 1}, {"Store in", 1},          {"Add Header", 1},
    {"Tag Subject", 1}, {"Reply with", 1}, {"Reply to All with", 1},
};
/* CommuniGate actions Waypost does not carry out, and what does the job
 * on the Postfix/Dovecot side.  Matched without case, spaces ignored. */
static const struct {
    const char *name;
    const char *instead;
} act_instead[] = {
    {"Execute", "run the program as a Postfix content_filter or pipe(8) transport"},
    {"ExternalFilter", "run the filter as a milter (DKIM signing: opendkim in smtpd_milters and "
                       "non_smtpd_milters)"},
    {"FingerNotify", "none (obsolete); Dovecot's IMAP IDLE notifies clients"},
    {"Remember 'From' in", "Dovecot Sieve vacation, which remembers whom it answered"},
    {"React with", "Dovecot Sieve vacation or reject"},
    {"Send Notification", "Dovecot Sieve enotify"},
    {"Write To Log", "Postfix header_checks with WARN"},
    {"Store Encrypted in", "Dovecot's mail-crypt plugin"},
    {"Copy attachments into", "none in Postfix/Dovecot; a content_filter"},
    {"Accept Request", "none: a Signal (SIP) rule action"},
    {"Redirect Request", "none: a Signal (SIP) rule action"},
    {"Fork Request", "none: a Signal (SIP) rule action"},
};

static bool eq_nospace(const char *a, const char *b)
{
    for (;;) {
        while (*a == ' ')
            a++;
        while (*b == ' ')
            b++;
        if (!*a || !*b)
            return !*a && !*b;
        if (wp_lower(*a++) != wp_lower(*b++))
            return false;
    }
}

/* CommuniGate's priority: 1..9, "Inactive" or 0 (not applied), "Highest"
 * (9) and "Lowest" (1), with "9 (Highest)"-style labels accepted too.
 * Returns 0 for disabled, -1 if unreadable. */
static int rule_priority(const char *s, bool *clamped)
{
    *clamped = false;
    while (*s == ' ')
        s++;
    if (wp_strieq(s, "Inactive") || wp_strieq(s, "Disabled"))
        return 0;
    if (wp_strieq(s, "Highest"))
        return 9;
    if (wp_strieq(s, "Lowest"))
        return 1;
    if (*s < '0' || *s > '9')
        return -1;
    long v = 0;
    while (*s >= '0' && *s <= '9' && v < 1000)
        v = v * 10 + (*s++ - '0');
    while (*s == ' ')
        s++;
    if (*s && *s != '(')
        return -1;
    if (v > 9) {
        *clamped = true;
        v = 9;
    }
    return (int)v;
}

/* An address list for Mirror/Redirect/Forward: names without a domain are
 * in the main domain (Router.html: "name" is name@main-domain). */
static char *qualify_list(const char *list, const char *main_domain, bool *ok)
{
    char *out = NULL;
    size_t olen = 0;
    FILE *f = open_memstream(&out, &olen);
    *ok = true;
    size_t n = 0;
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && t[-1] == ' ')
            t--;
        if (t > p) {
            char *a = wp_strndup(p, (size_t)(t - p));
            if (!good_target(a))
                *ok = false;
            fprintf(f, "%s%s%s%s", n++ ? "," : "", a, strchr(a, '@') ? "" : "@",
                    strchr(a, '@') ? "" : main_domain);
            free(a);
        }
        p = e;
    }
    fclose(f);
    if (n == 0)
        *ok = false;
    return out;
}

/* One rule, written into f; false (and a report line) if it is not carried
 * over.  A rule whose condition or operation Waypost cannot check is left
 * out whole: without it the rule would act on mail CommuniGate's did not. */
static bool import_rule(struct import *im, const char *src, size_t idx, const struct wp_cgp *r, FILE *f,
                        size_t *written)
{
    char label[160];
    const char *name = wp_cgp_str(wp_cgp_item(r, 1));
    if (name && *name)
        snprintf(label, sizeof(label), "rule \"%.120s\"", name);
    else
        snprintf(label, sizeof(label), "rule %zu", idx + 1);
    if (r->type != WP_CGP_ARRAY || r->n < 2 || r->n > 4 || !wp_cgp_str(r->items[0]) || !name) {
        error(im, "%s:%d:%d: a rule is (priority, \"name\", (conditions), (actions))", src, r->line, r->col);
        return false;
    }
    bool clamped;
    int prio = rule_priority(r->items[0]->str, &clamped);
    if (prio < 0) {
        report(im, "%s: %s not carried over: priority '%s' is unreadable", src, label, r->items[0]->str);
        return false;
    }
    if (clamped)
        report(im, "%s: %s: priority %s written as 9, Waypost's highest", src, label, r->items[0]->str);
    const struct wp_cgp *conds = r->n > 2 ? r->items[2] : NULL;
    const struct wp_cgp *acts = r->n > 3 ? r->items[3] : NULL;
    if ((conds && conds->type != WP_CGP_ARRAY) || (acts && acts->type != WP_CGP_ARRAY)) {
        error(im, "%s:%d:%d: %s: conditions and actions are arrays", src, r->line, r->col, label);
        return false;
    }
    char *body = NULL;
    size_t blen = 0;
    FILE *b = open_memstream(&body, &blen);
    bool keep = true;
    fputs("    data = ( ", b);
    for (size_t i = 0; keep && i < wp_cgp_count(conds); i++) {
        const struct wp_cgp *c = conds->items[i];
        const char *v[3] = {NULL, NULL, NULL};
        for (size_t k = 0; k < 3 && k < wp_cgp_count(c); k++)
            v[k] = wp_cgp_str(c->items[k]);
        if (!v[0] || wp_cgp_count(c) > 3) {
            error(im, "%s:%d:%d: %s: a condition is (name, operation, parameter)", src, c->line, c->col,
                  label);
            keep = false;
            break;
        }
        size_t k = 0;
        while (k < sizeof(cond_names) / sizeof(cond_names[0]) && !wp_strieq(v[0], cond_names[k]))
            k++;
        if (k == sizeof(cond_names) / sizeof(cond_names[0])) {
            report(im,
                   "%s: %s not carried over: condition '%s' is not one Waypost checks -> rewrite the rule "
                   "with Waypost's conditions (waypost.conf(5)) or as a Dovecot Sieve script",
                   src, label, v[0]);
            keep = false;
            break;
        }
        fputs(i ? ",\n             (" : "(", b);
        put_conf_str(b, cond_names[k]);
        if (strcmp(cond_names[k], "Human Generated") == 0) {
            /* CommuniGate stores ("Human Generated", "---"): no operation. */
            if (v[1] && wp_strieq(v[1], "is not"))
                fputs(", \"is not\"", b);
            fputc(')', b);
            continue;
        }
        size_t o = 0;
        while (v[1] && o < 6 && !wp_strieq(v[1], op_names[o]))
            o++;
        if (!v[1] || o == 6 || !v[2]) {
            report(im,
                   "%s: %s not carried over: condition %s has operation '%s' -> is, is not, in, not in, "
                   "greater than, less than",
                   src, label, cond_names[k], v[1] ? v[1] : "(none)");
            keep = false;
            break;
        }
        if (strcmp(cond_names[k], "Source") == 0) {
            /* Waypost's sources: authenticated, trusted, untrusted. */
            bool known = true;
            char *dup = wp_strdup(v[2]);
            for (char *save = NULL, *t = strtok_r(dup, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
                if (!wp_strieq(t, "authenticated") && !wp_strieq(t, "trusted") &&
                    !wp_strieq(t, "untrusted") && strchr(t, '*') == NULL)
                    known = false;
            free(dup);
            if (!known) {
                report(im,
                       "%s: %s not carried over: Source '%s' -> Waypost knows authenticated, trusted and "
                       "untrusted; blacklisted sources: Postfix postscreen or smtpd restrictions",
                       src, label, v[2]);
                keep = false;
                break;
            }
        }
        fputs(", ", b);
        put_conf_str(b, op_names[o]);
        fputs(", ", b);
        put_conf_str(b, v[2]);
        fputc(')', b);
    }
    fputs(wp_cgp_count(conds) ? " );\n    action = ( " : ");\n    action = ( ", b);
    size_t nact = 0, dropped = 0;
    bool takes_away = false; /* a kept action that takes the message from its recipients */
    for (size_t i = 0; keep && i < wp_cgp_count(acts); i++) {
        const struct wp_cgp *a = acts->items[i];
        const char *an = wp_cgp_str(wp_cgp_item(a, 0));
        const char *ap = wp_cgp_str(wp_cgp_item(a, 1));
        if (!an || wp_cgp_count(a) > 2 || (wp_cgp_count(a) == 2 && !ap)) {
            error(im, "%s:%d:%d: %s: an action is (name, parameter)", src, a->line, a->col, label);
            keep = false;
            break;
        }
        size_t k = 0;
        while (k < sizeof(act_names) / sizeof(act_names[0]) && !wp_strieq(an, act_names[k].name))
            k++;
        if (k == sizeof(act_names) / sizeof(act_names[0])) {
            size_t j = 0;
            while (j < sizeof(act_instead) / sizeof(act_instead[0]) && !eq_nospace(an, act_instead[j].name))
                j++;
            report(im, "%s: %s: action %s%s%s%s not carried over -> %s", src, label, an, ap ? " \"" : "",
                   ap ? ap : "", ap ? "\"" : "",
                   j < sizeof(act_instead) / sizeof(act_instead[0])
                       ? act_instead[j].instead
                       : "no Postfix/Dovecot counterpart known to waypost import; rewrite it by hand");
            dropped++;
            continue;
        }
        if (ap && !*ap && act_names[k].param != 1)
            ap = NULL; /* ("Discard", "") */
        if (act_names[k].param == 1 && (!ap || !*ap)) {
            report(im, "%s: %s: action %s without a parameter not carried over", src, label, an);
            dropped++;
            continue;
        }
        char *param = ap ? wp_strdup(ap) : NULL;
        if (k == 0 && param) {
            /* Reject with: one line of text. */
            for (char *p = param; *p; p++)
                if (*p == '\n' || *p == '\r')
                    *p = ' ';
        } else if (k >= 3 && k <= 5) {
            bool ok;
            char *q = qualify_list(param, im->main_domain, &ok);
            free(param);
            param = q;
            if (!ok) {
                report(im, "%s: %s: action %s \"%s\" not carried over: not a list of addresses", src, label,
                       an, ap);
                free(param);
                dropped++;
                continue;
            }
        } else if (k == 6 && param[0] != '~') {
            report(im,
                   "%s: %s: action Store in \"%s\" not carried over: a Server-wide rule stores into "
                   "~account/mailbox only -> Dovecot Sieve fileinto for the account's own mailboxes",
                   src, label, param);
            free(param);
            dropped++;
            continue;
        }
        takes_away |= k == 0 || k == 1 || k == 4 || k == 5; /* Reject, Discard, Redirect, Forward */
        fputs(nact++ ? ",\n               (" : "(", b);
        put_conf_str(b, act_names[k].name);
        if (param) {
            fputs(", ", b);
            put_conf_str(b, param);
        }
        fputc(')', b);
        free(param);
    }
    fputs(" ); }", b);
    fclose(b);
    if (keep && nact == 0) {
        report(im, "%s: %s not carried over: none of its actions is one Waypost carries out", src, label);
        keep = false;
    }
    if (keep && dropped && takes_away && prio != 0) {
        /* Execute + Discard, say: without the action left out the rule would
         * only throw away mail that CommuniGate handed to a program. */
        report(
            im,
            "%s: %s written disabled: it discards, rejects or redirects mail, and without the action%s "
            "left out it would lose mail CommuniGate handled -> enable it once the replacement is in place",
            src, label, dropped > 1 ? "s" : "");
        prio = 0;
    }
    if (keep) {
        fputs((*written)++ ? ",\n  { name = " : "  { name = ", f);
        put_conf_str(f, name);
        if (prio == 0)
            fputs("; priority = \"disabled\";\n", f);
        else
            fprintf(f, "; priority = %d;\n", prio);
        fputs(body, f);
    }
    free(body);
    return keep;
}

static void import_rules(struct import *im, FILE *out)
{
    bool present;
    const char *src = "GetServerMailRules";
    struct wp_cgp *v = read_cgp(im, src, &present);
    if (!present) {
        src = "Rules.settings";
        v = read_cgp(im, src, &present);
    } else {
        char *other = find_file(im, "Rules.settings");
        if (other)
            report(im, "Rules.settings: not read, GetServerMailRules was used instead");
        free(other);
    }
    if (!present) {
        report(im, "GetServerMailRules: missing (and no Rules.settings); no rules imported");
        return;
    }
    if (!v)
        return;
    if (v->type != WP_CGP_ARRAY) {
        error(im, "%s: an array of rules was expected, found %s", src, a_type(v->type));
        wp_cgp_free(v);
        return;
    }
    fprintf(out,
            "\n# Server-wide Rules imported from CommuniGate Pro (%s), in its order;\n"
            "# priority 9 runs first (waypost.conf(5), RULES).\nrules = (\n",
            src);
    size_t written = 0;
    for (size_t i = 0; i < v->n; i++)
        import_rule(im, src, i, v->items[i], out, &written);
    fputs("\n);\n", out);
    wp_cgp_free(v);
}

/* ---------------------------------------------------------------- output */

struct outfile {
    char *name; /* in the output directory */
    char *text;
    size_t len;
};

/* Write every file, or none: all names are checked before the first is
 * written; each goes through a temporary name and rename(2). */
static int write_files(const char *dir, struct outfile *files, size_t n, bool force)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "waypost import: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    int clash = 0;
    for (size_t i = 0; i < n; i++) {
        char *p = wp_asprintf("%s/%s", dir, files[i].name);
        struct stat st;
        if (!force && lstat(p, &st) == 0) {
            fprintf(stderr, "waypost import: %s exists (--force replaces it)\n", p);
            clash++;
        }
        free(p);
    }
    if (clash)
        return 1;
    for (size_t i = 0; i < n; i++) {
        char *p = wp_asprintf("%s/%s", dir, files[i].name);
        char *tmp = wp_asprintf("%s/.%s.tmp", dir, files[i].name);
        FILE *f = fopen(tmp, "w");
        bool ok = f && fwrite(files[i].text, 1, files[i].len, f) == files[i].len;
        if (f && fclose(f) != 0)
            ok = false;
        if (!ok || rename(tmp, p) != 0) {
            fprintf(stderr, "waypost import: %s: %s\n", p, strerror(errno));
            unlink(tmp);
            free(p);
            free(tmp);
            return 1;
        }
        free(p);
        free(tmp);
    }
    return 0;
}

/* Files in the source directories that nothing read. */
static void report_unread(struct import *im)
{
    char **names = NULL;
    size_t n = 0;
    if (im->nused > 1)
        qsort(im->used, im->nused, sizeof(char *), cmp_str);
    for (size_t i = 0; i < im->nsources; i++) {
        DIR *d = opendir(im->sources[i]);
        if (!d)
            continue;
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] == '.')
                continue;
            const char *key = e->d_name;
            if (!bsearch(&key, im->used, im->nused, sizeof(char *), cmp_str))
                push(&names, &n, wp_strdup(e->d_name));
        }
        closedir(d);
    }
    if (n > 1)
        qsort(names, n, sizeof(char *), cmp_str);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(names[i], names[i - 1]) != 0)
            report(im, "%s: not read (waypost import reads the files listed in waypost-import(8))", names[i]);
    free_strv(names, n);
}

static void usage(FILE *out)
{
    fputs("usage: waypost import cgp SOURCE... -o DIR [--force]\n", out);
}

int wp_import_main(int argc, char **argv)
{
    struct import im = {0};
    const char *outdir = NULL;
    bool force = false;
    if (argc < 2 || strcmp(argv[1], "cgp") != 0) {
        usage(stderr);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            outdir = argv[++i];
        else if (strcmp(argv[i], "--force") == 0)
            force = true;
        else if (argv[i][0] == '-') {
            usage(stderr);
            free(im.sources);
            return 2;
        } else {
            im.sources = wp_realloc(im.sources, (im.nsources + 1) * sizeof(char *));
            im.sources[im.nsources++] = argv[i];
        }
    }
    if (!outdir || !im.nsources) {
        usage(stderr);
        free(im.sources);
        return 2;
    }
    for (size_t i = 0; i < im.nsources; i++) {
        struct stat st;
        if (stat(im.sources[i], &st) != 0 || !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "waypost import: %s: not a directory\n", im.sources[i]);
            free(im.sources);
            return 1;
        }
    }

    bool present;
    struct wp_cgp *v = read_cgp(&im, "MainDomainName", &present);
    if (!present)
        error(&im, "MainDomainName: missing (the answer of the CLI command MainDomainName)");
    else if (v && (!wp_cgp_str(v) || !good_domain(v->str)))
        error(&im, "MainDomainName: a domain name was expected");
    else if (v)
        im.main_domain = lower_dup(v->str);
    wp_cgp_free(v);

    char **dnames = NULL;
    size_t nd = 0;
    if (im.main_domain && !read_names(&im, "ListDomains", true, &dnames, &nd))
        error(&im, "ListDomains: missing (the answer of the CLI command ListDomains)");

    char *conf = NULL, *table = NULL, *rep = NULL;
    size_t conflen = 0, tablelen = 0, replen = 0;
    FILE *fconf = open_memstream(&conf, &conflen);
    FILE *ftable = open_memstream(&table, &tablelen);
    struct domain *doms = wp_calloc(nd + 1, sizeof(*doms));
    size_t ndoms = 0;
    bool main_listed = false;
    for (size_t i = 0; i < nd; i++) {
        if (i && strcmp(dnames[i], dnames[i - 1]) == 0)
            continue;
        if (!good_domain(dnames[i])) {
            report(&im, "ListDomains: domain '%s' not carried over: not a domain name", dnames[i]);
            continue;
        }
        main_listed |= strcmp(dnames[i], im.main_domain) == 0;
        doms[ndoms].name = wp_strdup(dnames[i]);
        read_domain(&im, &doms[ndoms]);
        ndoms++;
    }
    free_strv(dnames, nd);
    if (im.main_domain && nd && !main_listed)
        error(&im, "ListDomains: the main domain %s is not listed", im.main_domain);

    struct outfile *files = wp_calloc(ndoms + 4, sizeof(*files));
    size_t nfiles = 0;
    if (im.main_domain) {
        import_table(&im, ftable);
        fputs("# Waypost configuration imported from CommuniGate Pro by \"waypost import cgp\".\n"
              "# What was not carried over, and what to use instead: IMPORT-REPORT.\n"
              "# Syntax: waypost.conf(5).\n\nrouter: {\n  table = \"router.table\";\n  main_domain = ",
              fconf);
        put_conf_str(fconf, im.main_domain);
        fputs(";\n  domains = (\n", fconf);
        for (size_t i = 0; i < ndoms; i++) {
            struct domain *d = &doms[i];
            fputs("    { name = ", fconf);
            put_conf_str(fconf, d->name);
            fputc(';', fconf);
            if (d->naliases) {
                fputs(" aliases = [ ", fconf);
                for (size_t k = 0; k < d->naliases; k++) {
                    fputs(k ? ", " : "", fconf);
                    put_conf_str(fconf, d->aliases[k]);
                }
                fputs(" ];", fconf);
            }
            if (d->naccounts) {
                char *pw = wp_asprintf("%s.passwd", d->name);
                fprintf(fconf, "\n      accounts = \"passwd-file:%s\";", pw);
                char *text = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&text, &len);
                fprintf(f,
                        "# Accounts of %s imported from CommuniGate Pro (ListAccounts.%s).\n"
                        "# Dovecot passwd-file; passwords are not in CommuniGate's CLI answers.\n",
                        d->name, d->name);
                for (size_t k = 0; k < d->naccounts; k++)
                    fprintf(f, "%s@%s::::::\n", d->accounts[k], d->name);
                fclose(f);
                files[nfiles++] = (struct outfile){pw, text, len};
            }
            if (d->mail_to_unknown) {
                fputs("\n      mail_to_unknown = ", fconf);
                put_conf_str(fconf, d->mail_to_unknown);
                fputc(';', fconf);
            }
            /* Relay: on each, as CommuniGate lets anyone send to them. */
            for (int w = 0; w < 2; w++) {
                char **ents = w ? d->forwarders : d->groups;
                size_t nv = w ? d->nforwarders : d->ngroups;
                if (!nv)
                    continue;
                fprintf(fconf, "\n      %s = [", w ? "forwarders" : "groups");
                for (size_t k = 0; k < nv; k++) {
                    fputs(k ? ",\n        " : "\n        ", fconf);
                    put_conf_str(fconf, ents[k]);
                }
                fputs(" ];", fconf);
            }
            fputs(i + 1 < ndoms ? " },\n" : " }\n", fconf);
        }
        fputs("  );\n};\n", fconf);
        import_rules(&im, fconf);
        bool any_accounts = false;
        for (size_t i = 0; i < ndoms; i++)
            any_accounts |= doms[i].naccounts > 0;
        if (any_accounts)
            report(&im,
                   "ListAccounts: account passwords and settings not carried over (the CLI does not give "
                   "them) -> set passwords in the *.passwd files or Dovecot's userdb; copy the mail with "
                   "imapsync or doveadm backup");
    }
    report_unread(&im);
    /* Settings outside the files read, which every CommuniGate server has. */
    report(
        &im,
        "Client IP Addresses, SMTP, POP/IMAP and other module settings: not in the files read -> "
        "router.trusted_networks (waypost.conf(5)), Postfix mynetworks and main.cf, Dovecot's configuration");

    int rc = 0;
    if (im.errors) {
        fprintf(stderr, "waypost import: %d error%s; nothing written\n", im.errors,
                im.errors == 1 ? "" : "s");
        rc = 1;
        fclose(fconf);
        fclose(ftable);
    } else {
        fclose(fconf);
        fclose(ftable);
        FILE *frep = open_memstream(&rep, &replen);
        fputs("# IMPORT-REPORT: what \"waypost import cgp\" did not carry over from CommuniGate Pro,\n"
              "# one item a line, with what does the job on the Postfix/Dovecot side (after ->).\n",
              frep);
        for (size_t i = 0; i < im.nreport; i++)
            fprintf(frep, "%s\n", im.report[i]);
        fclose(frep);
        files[nfiles++] = (struct outfile){wp_strdup("waypost.conf"), conf, conflen};
        files[nfiles++] = (struct outfile){wp_strdup("router.table"), table, tablelen};
        files[nfiles++] = (struct outfile){wp_strdup("IMPORT-REPORT"), rep, replen};
        conf = table = rep = NULL;
        rc = write_files(outdir, files, nfiles, force);
        if (rc == 0)
            printf("waypost import: wrote %zu files to %s; %zu items in %s/IMPORT-REPORT\n", nfiles, outdir,
                   im.nreport, outdir);
    }
    for (size_t i = 0; i < nfiles; i++) {
        free(files[i].name);
        free(files[i].text);
    }
    free(files);
    free(conf);
    free(table);
    free(rep);
    for (size_t i = 0; i < ndoms; i++)
        free_domain(&doms[i]);
    free(doms);
    free_strv(im.report, im.nreport);
    free_strv(im.used, im.nused);
    free(im.main_domain);
    free(im.sources);
    return rc;
}
