/* SPDX-License-Identifier: MIT */
/*
 * import_rules.c - CommuniGate's Server-wide Rules into Waypost's rules:
 * (priority, "name", ((condition, operation, parameter), ...), ((action,
 * parameter), ...)) as Rules.html documents them, priorities as
 * CommuniGate writes them (9..1, 0 or Inactive: disabled, Highest,
 * Lowest).  A rule with a condition Waypost cannot check is left out
 * whole; an action it cannot take is left out of its rule (the rule is
 * written disabled if what remains would discard, reject or redirect
 * mail); each goes to IMPORT-REPORT with its replacement.
 */
#include "config.h"

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
#include "milter/rules.h"
#include "lib/strbuf.h"

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
            if (!wp_imp_good_target(a))
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
        wp_imp_error(im, "%s:%d:%d: a rule is (priority, \"name\", (conditions), (actions))", src, r->line,
                     r->col);
        return false;
    }
    bool clamped;
    int prio = rule_priority(r->items[0]->str, &clamped);
    if (prio < 0) {
        wp_imp_report(im, "%s: %s not carried over: priority '%s' is unreadable", src, label,
                      r->items[0]->str);
        return false;
    }
    if (clamped)
        wp_imp_report(im, "%s: %s: priority %s written as 9, Waypost's highest", src, label,
                      r->items[0]->str);
    const struct wp_cgp *conds = r->n > 2 ? r->items[2] : NULL;
    const struct wp_cgp *acts = r->n > 3 ? r->items[3] : NULL;
    if ((conds && conds->type != WP_CGP_ARRAY) || (acts && acts->type != WP_CGP_ARRAY)) {
        wp_imp_error(im, "%s:%d:%d: %s: conditions and actions are arrays", src, r->line, r->col, label);
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
            wp_imp_error(im, "%s:%d:%d: %s: a condition is (name, operation, parameter)", src, c->line,
                         c->col, label);
            keep = false;
            break;
        }
        size_t k = 0;
        while (k < sizeof(cond_names) / sizeof(cond_names[0]) && !wp_strieq(v[0], cond_names[k]))
            k++;
        if (k == sizeof(cond_names) / sizeof(cond_names[0])) {
            wp_imp_report(
                im,
                "%s: %s not carried over: condition '%s' is not one Waypost checks -> rewrite the rule "
                "with Waypost's conditions (waypost.conf(5)) or as a Dovecot Sieve script",
                src, label, v[0]);
            keep = false;
            break;
        }
        fputs(i ? ",\n             (" : "(", b);
        wp_imp_put_str(b, cond_names[k]);
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
            wp_imp_report(
                im,
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
                wp_imp_report(
                    im,
                    "%s: %s not carried over: Source '%s' -> Waypost knows authenticated, trusted and "
                    "untrusted; blacklisted sources: Postfix postscreen or smtpd restrictions",
                    src, label, v[2]);
                keep = false;
                break;
            }
        }
        fputs(", ", b);
        wp_imp_put_str(b, op_names[o]);
        fputs(", ", b);
        wp_imp_put_str(b, v[2]);
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
            wp_imp_error(im, "%s:%d:%d: %s: an action is (name, parameter)", src, a->line, a->col, label);
            keep = false;
            break;
        }
        size_t k = 0;
        while (k < sizeof(act_names) / sizeof(act_names[0]) && !wp_strieq(an, act_names[k].name))
            k++;
        if (k == sizeof(act_names) / sizeof(act_names[0])) {
            const char *instead = wp_rules_replacement(an, true);
            wp_imp_report(im, "%s: %s: action %s%s%s%s not carried over -> %s", src, label, an,
                          ap ? " \"" : "", ap ? ap : "", ap ? "\"" : "",
                          instead
                              ? instead
                              : "no Postfix/Dovecot counterpart known to waypost import; rewrite it by hand");
            dropped++;
            continue;
        }
        if (ap && !*ap && act_names[k].param != 1)
            ap = NULL; /* ("Discard", "") */
        if (act_names[k].param == 1 && (!ap || !*ap)) {
            wp_imp_report(im, "%s: %s: action %s without a parameter not carried over", src, label, an);
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
                wp_imp_report(im, "%s: %s: action %s \"%s\" not carried over: not a list of addresses", src,
                              label, an, ap);
                free(param);
                dropped++;
                continue;
            }
        } else if (k == 6 && param[0] != '~') {
            wp_imp_report(im,
                          "%s: %s: action Store in \"%s\" not carried over: a Server-wide rule stores into "
                          "~account/mailbox only -> Dovecot Sieve fileinto for the account's own mailboxes",
                          src, label, param);
            free(param);
            dropped++;
            continue;
        }
        takes_away |= k == 0 || k == 1 || k == 4 || k == 5; /* Reject, Discard, Redirect, Forward */
        fputs(nact++ ? ",\n               (" : "(", b);
        wp_imp_put_str(b, act_names[k].name);
        if (param) {
            fputs(", ", b);
            wp_imp_put_str(b, param);
        }
        fputc(')', b);
        free(param);
    }
    fputs(" ); }", b);
    fclose(b);
    if (keep && nact == 0) {
        wp_imp_report(im, "%s: %s not carried over: none of its actions is one Waypost carries out", src,
                      label);
        keep = false;
    }
    if (keep && dropped && takes_away && prio != 0) {
        /* Execute + Discard, say: without the action left out the rule would
         * only throw away mail that CommuniGate handed to a program. */
        wp_imp_report(
            im,
            "%s: %s written disabled: it discards, rejects or redirects mail, and without the action%s "
            "left out it would lose mail CommuniGate handled -> enable it once the replacement is in place",
            src, label, dropped > 1 ? "s" : "");
        prio = 0;
    }
    if (keep) {
        fputs((*written)++ ? ",\n  { name = " : "  { name = ", f);
        wp_imp_put_str(f, name);
        if (prio == 0)
            fputs("; priority = \"disabled\";\n", f);
        else
            fprintf(f, "; priority = %d;\n", prio);
        fputs(body, f);
    }
    free(body);
    return keep;
}

void wp_imp_rules(struct import *im, FILE *out)
{
    bool present;
    const char *src = "GetServerMailRules";
    struct wp_cgp *v = wp_imp_read_cgp(im, src, &present);
    if (!present) {
        src = "Rules.settings";
        v = wp_imp_read_cgp(im, src, &present);
    } else {
        char *other = wp_imp_find_file(im, "Rules.settings");
        if (other)
            wp_imp_report(im, "Rules.settings: not read, GetServerMailRules was used instead");
        free(other);
    }
    if (!present) {
        wp_imp_report(im, "GetServerMailRules: missing (and no Rules.settings); no rules imported");
        return;
    }
    if (!v)
        return;
    if (v->type != WP_CGP_ARRAY) {
        wp_imp_error(im, "%s: an array of rules was expected, found %s", src, wp_imp_type_name(v->type));
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
