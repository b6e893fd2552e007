/* SPDX-License-Identifier: MIT */
/*
 * pclist.c - running Postfix's own tools (postconf, postfix) and editing a
 * Postfix list value as text: elements separated by commas or white space,
 * found by their endpoint, cut or added so that everything around them is
 * kept character for character (postconf_int.h).
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

/* ---------------------------------------------------------------- running Postfix's tools */

/* Postfix's programs live in /usr/sbin, which a user's PATH may lack. */
const char *wp_pclist_program(const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "/usr/sbin/%s", name);
    return access(buf, X_OK) == 0 ? buf : name;
}

/* Runs argv; its standard output in *out (malloc'ed, NUL-terminated, when
 * out is not NULL), its standard error passed on unless quiet.  Returns
 * the exit status, -1 if it could not run or said more than PC_OUT_MAX. */
int wp_pclist_run(char *const argv[], char **out, bool quiet)
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

bool wp_pclist_sep(char c)
{
    return c == ',' || isspace((unsigned char)c);
}

/* The next element of a Postfix list from *pos: separators are white space
 * and commas, a {...} group (and a $... reference with its braces) is one
 * element.  False at the end. */
bool wp_pclist_next(const char *v, size_t *pos, size_t *start, size_t *end)
{
    size_t i = *pos;
    while (v[i] && wp_pclist_sep(v[i]))
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
        } else if (depth == 0 && wp_pclist_sep(v[i])) {
            break;
        }
    }
    *end = i;
    *pos = i;
    return true;
}

/* Does the element v[s..e) start with the word w (for a group: the first
 * word inside the braces)? */
bool wp_pclist_elem_is(const char *v, size_t s, size_t e, const char *w)
{
    if (v[s] == '{') {
        s++;
        while (s < e && isspace((unsigned char)v[s]))
            s++;
    }
    size_t n = 0;
    while (s + n < e && !wp_pclist_sep(v[s + n]) && v[s + n] != '}')
        n++;
    return n == strlen(w) && strncmp(v + s, w, n) == 0;
}

/* Where the element w is (with follow: "w" followed by an element starting
 * with follow, as in "check_policy_service ENDPOINT"). */
bool wp_pclist_find(const char *v, const char *w, const char *follow, size_t *fs, size_t *fe)
{
    size_t pos = 0, s, e;
    while (wp_pclist_next(v, &pos, &s, &e)) {
        if (!wp_pclist_elem_is(v, s, e, w))
            continue;
        if (!follow) {
            *fs = s;
            *fe = e;
            return true;
        }
        size_t p2 = pos, s2, e2;
        if (wp_pclist_next(v, &p2, &s2, &e2) && wp_pclist_elem_is(v, s2, e2, follow)) {
            *fs = s;
            *fe = e2;
            return true;
        }
    }
    return false;
}

/* v without the element v[s..e) and one separator run next to it. */
char *wp_pclist_cut(const char *v, size_t s, size_t e)
{
    size_t n = strlen(v), e2 = e;
    while (e2 < n && wp_pclist_sep(v[e2]))
        e2++;
    if (e2 < n)
        e = e2; /* an element follows: take the separators after */
    else
        while (s > 0 && wp_pclist_sep(v[s - 1]))
            s--; /* the last one: take those before */
    return wp_asprintf("%.*s%s", (int)s, v, v + e);
}

/* v without every occurrence of w [follow] (Waypost's elements only). */
char *wp_pclist_remove_all(const char *v, const char *w, const char *follow)
{
    char *cur = wp_strdup(v);
    size_t s, e;
    while (wp_pclist_find(cur, w, follow, &s, &e)) {
        char *next = wp_pclist_cut(cur, s, e);
        free(cur);
        cur = next;
    }
    return cur;
}

bool wp_pclist_blank(const char *v)
{
    while (*v && wp_pclist_sep(*v))
        v++;
    return *v == '\0';
}

char *wp_pclist_prepend(const char *v, const char *elem)
{
    return wp_pclist_blank(v) ? wp_strdup(elem) : wp_asprintf("%s, %s", elem, v);
}

char *wp_pclist_append(const char *v, const char *elem)
{
    if (wp_pclist_blank(v))
        return wp_strdup(elem);
    size_t n = strlen(v);
    while (n > 0 && isspace((unsigned char)v[n - 1]))
        n--;
    return wp_asprintf("%.*s, %s", (int)n, v, elem);
}
