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
#include "cli/import_int.h"
#include "lib/strbuf.h"

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
    wp_strv_free(d->groups, d->ngroups);
    wp_strv_free(d->forwarders, d->nforwarders);
    wp_strv_free(d->aliases, d->naliases);
    wp_strv_free(d->accounts, d->naccounts);
    free(d->mail_to_unknown);
}

/* GetDomainSettings.D -> the mail_to_unknown value. */
static char *mail_to_unknown(struct import *im, const char *domain)
{
    char *file = wp_asprintf("GetDomainSettings.%s", domain);
    bool present;
    struct wp_cgp *v = wp_imp_read_cgp(im, file, &present);
    char *out = NULL;
    if (!present) {
        wp_imp_report(im, "%s: missing; Mail to Unknown of %s taken as Rejected (CommuniGate's default)",
                      file, domain);
        out = wp_strdup("Rejected");
    } else if (v && v->type != WP_CGP_DICT) {
        wp_imp_error(im, "%s: a dictionary was expected, found %s", file, wp_imp_type_name(v->type));
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
            if (!pat || !wp_imp_good_target(pat)) {
                wp_imp_error(im, "%s: Mail to Unknown is Rerouted, but %s", file,
                             pat ? "the address is not one Waypost can write"
                                 : "MailRerouteAddress is missing");
            } else {
                out = wp_asprintf("Rerouted to %s", pat);
            }
        } else {
            wp_imp_error(
                im,
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
            wp_imp_report(im,
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
    wp_imp_read_names(im, file, true, &names, &n);
    for (size_t i = 0; i < n; i++) {
        if (wp_imp_good_domain(names[i]))
            wp_strv_push(&d->aliases, &d->naliases, names[i]);
        else {
            wp_imp_report(im, "%s: alias '%s' not carried over: not a domain name", file, names[i]);
            free(names[i]);
        }
    }
    free(names);
    free(file);

    file = wp_asprintf("ListAccounts.%s", d->name);
    if (!wp_imp_read_names(im, file, true, &names, &n))
        wp_imp_report(im, "%s: missing; domain %s imported without accounts", file, d->name);
    for (size_t i = 0; i < n; i++) {
        if (wp_imp_good_name(names[i]))
            wp_strv_push(&d->accounts, &d->naccounts, names[i]);
        else {
            wp_imp_report(im, "%s: account '%s' not carried over: not a name Waypost can write", file,
                          names[i]);
            free(names[i]);
        }
    }
    free(names);
    free(file);

    /* Forwarders: the domain's forwarders setting, with Relay: so that
     * anyone may send to the forwarder as in CommuniGate, wherever its
     * target is. */
    file = wp_asprintf("ListForwarders.%s", d->name);
    wp_imp_read_names(im, file, true, &names, &n);
    for (size_t i = 0; i < n; i++) {
        if (!wp_imp_good_name(names[i])) { /* it names a file: never a '/' */
            wp_imp_report(im, "%s: forwarder '%s' not carried over: not a name Waypost can write", file,
                          names[i]);
            continue;
        }
        char *gf = wp_asprintf("GetForwarder.%s@%s", names[i], d->name);
        bool present;
        struct wp_cgp *v = wp_imp_read_cgp(im, gf, &present);
        const char *target = wp_cgp_str(v);
        if (!present)
            wp_imp_report(im, "%s: missing; forwarder %s@%s not carried over -> export it again", gf,
                          names[i], d->name);
        else if (v && !target)
            wp_imp_error(im, "%s: a string was expected, found %s", gf, wp_imp_type_name(v->type));
        else if (v && !wp_imp_good_target(target))
            wp_imp_report(im,
                          "%s: forwarder %s@%s -> '%s' not carried over: not an address Waypost can write",
                          gf, names[i], d->name, target);
        else if (v) {
            /* A name without a domain is in the main domain (Router.html). */
            char *entry = wp_asprintf("Relay:%s: %s%s%s", names[i], target, strchr(target, '@') ? "" : "@",
                                      strchr(target, '@') ? "" : im->main_domain);
            wp_strv_push(&d->forwarders, &d->nforwarders, entry);
        }
        wp_cgp_free(v);
        free(gf);
    }
    wp_strv_free(names, n);
    free(file);

    /* Groups: the domain's groups setting, with Relay: (anyone may send to
     * a CommuniGate group, wherever its members are). */
    file = wp_asprintf("ListGroups.%s", d->name);
    wp_imp_read_names(im, file, true, &names, &n);
    for (size_t i = 0; i < n; i++) {
        if (!wp_imp_good_name(names[i])) { /* it names a file: never a '/' */
            wp_imp_report(im, "%s: group '%s' not carried over: not a name Waypost can write", file,
                          names[i]);
            continue;
        }
        char *gg = wp_asprintf("GetGroup.%s@%s", names[i], d->name);
        bool present;
        struct wp_cgp *v = wp_imp_read_cgp(im, gg, &present);
        /* The group's dictionary with a Members array (as we recall the CLI's
         * answer); a bare array of members is taken as well. */
        const struct wp_cgp *members = v && v->type == WP_CGP_ARRAY ? v : wp_cgp_get_ci(v, "Members");
        if (!present) {
            wp_imp_report(im, "%s: missing; group %s@%s not carried over -> export it again", gg, names[i],
                          d->name);
        } else if (v && (v->type == WP_CGP_STRING || v->type == WP_CGP_DATA ||
                         (members && members->type != WP_CGP_ARRAY))) {
            wp_imp_error(im, "%s: a dictionary with a Members array was expected", gg);
        } else if (v) {
            char *entry = NULL;
            size_t elen = 0;
            FILE *groups = open_memstream(&entry, &elen);
            fprintf(groups, "Relay:%s: ", names[i]);
            size_t nm = 0;
            for (size_t k = 0; k < wp_cgp_count(members); k++) {
                const char *m = wp_cgp_str(wp_cgp_item(members, k));
                if (!m || !wp_imp_good_target(m)) {
                    wp_imp_report(im, "%s: member %zu of group %s@%s not written: not an address", gg, k + 1,
                                  names[i], d->name);
                    continue;
                }
                fprintf(groups, "%s%s%s%s", nm++ ? ", " : "", m, strchr(m, '@') ? "" : "@",
                        strchr(m, '@') ? "" : d->name);
            }
            fclose(groups);
            if (nm)
                wp_strv_push(&d->groups, &d->ngroups, entry);
            else {
                wp_imp_report(im, "%s: group %s@%s not carried over: no members Waypost can write", gg,
                              names[i], d->name);
                free(entry);
            }
        }
        wp_cgp_free(v);
        free(gg);
    }
    wp_strv_free(names, n);
    free(file);

    file = wp_asprintf("ListLists.%s", d->name);
    wp_imp_read_names(im, file, true, &names, &n);
    for (size_t i = 0; i < n; i++)
        wp_imp_report(
            im,
            "%s: mailing list %s@%s not carried over -> a list manager (Mailman, Sympa, mlmmj) with its "
            "Postfix transport; export the subscribers with CommuniGate's ReadSubscribers",
            file, names[i], d->name);
    wp_strv_free(names, n);
    free(file);
}

/* ---------------------------------------------------------------- Router table */

static void import_table(struct import *im, FILE *out)
{
    bool present;
    const char *src = "GetRouterTable";
    struct wp_cgp *v = wp_imp_read_cgp(im, src, &present);
    char *text = NULL;
    if (present) {
        if (v && !wp_cgp_str(v))
            wp_imp_error(im, "GetRouterTable: a string was expected, found %s", wp_imp_type_name(v->type));
        else if (v)
            text = wp_strdup(v->str);
        char *other = wp_imp_find_file(im, "RouterTable.txt");
        if (other)
            wp_imp_report(im, "RouterTable.txt: not read, GetRouterTable was used instead");
        free(other);
    } else {
        src = "RouterTable.txt";
        char *path = wp_imp_find_file(im, src);
        if (path) {
            wp_strv_push(&im->used, &im->nused, wp_strdup(src));
            char err[256];
            size_t len;
            text = wp_read_file(path, IMPORT_FILE_MAX, &len, err, sizeof(err));
            if (!text)
                wp_imp_error(im, "%s: %s", path, err);
            else if (strlen(text) != len)
                wp_imp_error(im, "%s: holds a zero byte", path), free(text), text = NULL;
            free(path);
        } else {
            wp_imp_report(
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
            wp_imp_report(im, "%s: record %d not carried over: it holds control characters", src, lineno);
        } else if (*p == '\0' || *p == ';') {
            fprintf(out, "%s\n", line);
        } else if (record_ok(p, im->main_domain, why, sizeof(why))) {
            fprintf(out, "%s\n", p);
        } else {
            fprintf(out, "; not imported (%s): %s\n", why, p);
            wp_imp_report(
                im,
                "%s: record %d '%s' not carried over: %s -> rewrite it in waypost-router(5) form or as a "
                "Postfix map entry",
                src, lineno, p, why);
        }
        line = nl && nl[1] ? nl + 1 : NULL; /* a last line break ends the last record */
    }
    free(text);
}

/* ---------------------------------------------------------------- output */

struct outfile {
    char *name; /* in the output directory */
    char *text;
    size_t len;
};

/* Files in the source directories that nothing read. */
static void report_unread(struct import *im)
{
    char **names = NULL;
    size_t n = 0;
    if (im->nused > 1)
        qsort(im->used, im->nused, sizeof(char *), wp_imp_cmp_str);
    for (size_t i = 0; i < im->nsources; i++) {
        DIR *d = opendir(im->sources[i]);
        if (!d)
            continue;
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] == '.')
                continue;
            const char *key = e->d_name;
            if (!bsearch(&key, im->used, im->nused, sizeof(char *), wp_imp_cmp_str))
                wp_strv_push(&names, &n, wp_strdup(e->d_name));
        }
        closedir(d);
    }
    if (n > 1)
        qsort(names, n, sizeof(char *), wp_imp_cmp_str);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(names[i], names[i - 1]) != 0)
            wp_imp_report(im, "%s: not read (waypost import reads the files listed in waypost-import(8))",
                          names[i]);
    wp_strv_free(names, n);
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
    struct wp_cgp *v = wp_imp_read_cgp(&im, "MainDomainName", &present);
    if (!present)
        wp_imp_error(&im, "MainDomainName: missing (the answer of the CLI command MainDomainName)");
    else if (v && (!wp_cgp_str(v) || !wp_imp_good_domain(v->str)))
        wp_imp_error(&im, "MainDomainName: a domain name was expected");
    else if (v)
        im.main_domain = wp_imp_lower(v->str);
    wp_cgp_free(v);

    char **dnames = NULL;
    size_t nd = 0;
    if (im.main_domain && !wp_imp_read_names(&im, "ListDomains", true, &dnames, &nd))
        wp_imp_error(&im, "ListDomains: missing (the answer of the CLI command ListDomains)");

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
        if (!wp_imp_good_domain(dnames[i])) {
            wp_imp_report(&im, "ListDomains: domain '%s' not carried over: not a domain name", dnames[i]);
            continue;
        }
        main_listed |= strcmp(dnames[i], im.main_domain) == 0;
        doms[ndoms].name = wp_strdup(dnames[i]);
        read_domain(&im, &doms[ndoms]);
        ndoms++;
    }
    wp_strv_free(dnames, nd);
    if (im.main_domain && nd && !main_listed)
        wp_imp_error(&im, "ListDomains: the main domain %s is not listed", im.main_domain);

    struct outfile *files = wp_calloc(ndoms + 4, sizeof(*files));
    size_t nfiles = 0;
    if (im.main_domain) {
        import_table(&im, ftable);
        fputs("# Waypost configuration imported from CommuniGate Pro by \"waypost import cgp\".\n"
              "# What was not carried over, and what to use instead: IMPORT-REPORT.\n"
              "# Syntax: waypost.conf(5).\n\nrouter: {\n  table = \"router.table\";\n  main_domain = ",
              fconf);
        wp_imp_put_str(fconf, im.main_domain);
        fputs(";\n  domains = (\n", fconf);
        for (size_t i = 0; i < ndoms; i++) {
            struct domain *d = &doms[i];
            fputs("    { name = ", fconf);
            wp_imp_put_str(fconf, d->name);
            fputc(';', fconf);
            if (d->naliases) {
                fputs(" aliases = [ ", fconf);
                for (size_t k = 0; k < d->naliases; k++) {
                    fputs(k ? ", " : "", fconf);
                    wp_imp_put_str(fconf, d->aliases[k]);
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
                wp_imp_put_str(fconf, d->mail_to_unknown);
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
                    wp_imp_put_str(fconf, ents[k]);
                }
                fputs(" ];", fconf);
            }
            fputs(i + 1 < ndoms ? " },\n" : " }\n", fconf);
        }
        fputs("  );\n};\n", fconf);
        wp_imp_rules(&im, fconf);
        bool any_accounts = false;
        for (size_t i = 0; i < ndoms; i++)
            any_accounts |= doms[i].naccounts > 0;
        if (any_accounts)
            wp_imp_report(
                &im, "ListAccounts: account passwords and settings not carried over (the CLI does not give "
                     "them) -> set passwords in the *.passwd files or Dovecot's userdb; copy the mail with "
                     "imapsync or doveadm backup");
    }
    report_unread(&im);
    /* Settings outside the files read, which every CommuniGate server has. */
    wp_imp_report(
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
        struct wp_outfile *out = wp_calloc(nfiles + 1, sizeof(*out));
        for (size_t i = 0; i < nfiles; i++)
            out[i] = (struct wp_outfile){files[i].name, files[i].text, files[i].len, false};
        rc = wp_write_files("waypost import", outdir, out, nfiles, force);
        free(out);
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
    wp_strv_free(im.report, im.nreport);
    wp_strv_free(im.used, im.nused);
    free(im.main_domain);
    free(im.sources);
    return rc;
}
