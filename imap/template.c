/* SPDX-License-Identifier: MIT */
/*
 * template.c - the account template, applied once per account (see
 * template.h for the file formats and why they look like that).
 */
#include "config.h"

#include "imap/template.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/defaults.h"
#include "lib/util.h"

/* Longest subscriptions file we merge into: Dovecot's own stay far below. */
#define SUBSCRIPTIONS_MAX (4u << 20)

char *wp_imap_subscription_line(const char *name, size_t prefix_len, char sep)
{
    char *line = wp_strdup(name);
    /* A namespace prefix ("~owner/", "Aliases/") is stored as it is, the
     * rest in storage form; then the line is split on the storage's
     * separator (prefix included). */
    if (prefix_len > strlen(line))
        prefix_len = strlen(line);
    for (char *p = line; *p; p++)
        if ((size_t)(p - line) >= prefix_len ? (*p == '/' || *p == sep) : *p == sep)
            *p = '\t';
    return line;
}

/* The namespace prefix of a name: "~owner/" or the alias prefix; 0 for the
 * user's own mailboxes. */
static size_t ns_prefix_len(const struct wp_imap_conf *c, const char *name)
{
    if (name[0] == '~') {
        const char *slash = strchr(name, '/');
        return slash ? (size_t)(slash - name) + 1 : strlen(name);
    }
    size_t n = strlen(c->alias_prefix);
    return strncmp(name, c->alias_prefix, n) == 0 ? n : 0;
}

char *wp_imap_alias_virtual(const char *target)
{
    return wp_asprintf("%s\n  all\n", target);
}

/* mkdir -p with mode 0700 for what is created. */
static int mkdirs(const char *path)
{
    char *p = wp_strdup(path);
    int rc = 0;
    for (char *s = p + 1; rc == 0; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            rc = -1;
        *s = c;
        if (c == '\0')
            break;
    }
    free(p);
    return rc;
}

/* Write text to path through a temporary file and rename (atomic). */
static int write_file(const char *path, const char *text, size_t len)
{
    char *tmp = wp_asprintf("%s.waypost-tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
    int rc = -1;
    if (fd >= 0) {
        size_t off = 0;
        while (off < len) {
            ssize_t w = write(fd, text + off, len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        if (close(fd) == 0 && off == len && rename(tmp, path) == 0)
            rc = 0;
    }
    if (rc != 0) {
        int saved = errno;
        unlink(tmp);
        errno = saved;
    }
    free(tmp);
    return rc;
}

/* Is line (len bytes) one of the lines of body? */
static int has_line(const char *body, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = body; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) : strlen(p);
        if (l == n && memcmp(p, line, n) == 0)
            return 1;
        p = nl ? nl + 1 : NULL;
    }
    return 0;
}

static int add_subscriptions(const struct wp_imap_conf *c, const char *root, char *why, size_t whysize)
{
    if (c->nsubscriptions + c->naliases == 0)
        return 0;
    char *path = wp_asprintf("%s/subscriptions", root);
    size_t len = 0;
    char *old = NULL;
    struct stat st;
    if (lstat(path, &st) == 0) {
        char err[256];
        old = wp_read_file(path, SUBSCRIPTIONS_MAX, &len, err, sizeof(err));
        if (!old) {
            snprintf(why, whysize, "%s", err);
            free(path);
            return -1;
        }
    } else if (errno != ENOENT) {
        snprintf(why, whysize, "%s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    if (old && memchr(old, '\0', len)) {
        snprintf(why, whysize, "%s: not a subscriptions file", path);
        free(old), free(path);
        return -1;
    }
    /* A new file, or one Dovecot wrote in version 2, gets version-2 lines;
     * an old version-1 file its own kind (names in storage form). */
    int v2 = !old || len == 0 || strncmp(old, "V\t2\n", 4) == 0;
    /* The template's names, then its aliases: clients that show only
     * subscribed mailboxes show the aliases too. */
    size_t nnames = c->nsubscriptions + c->naliases;
    char **names = wp_calloc(nnames + 1, sizeof(*names));
    size_t cap = (old ? len : 0) + 16;
    for (size_t i = 0; i < nnames; i++) {
        names[i] = i < c->nsubscriptions
                       ? wp_strdup(c->subscriptions[i])
                       : wp_asprintf("%s%s", c->alias_prefix, c->aliases[i - c->nsubscriptions].name);
        cap += strlen(names[i]) + 2;
    }
    char *text = wp_malloc(cap);
    size_t n = 0;
    if (old && len) {
        memcpy(text, old, len);
        n = len;
        if (text[n - 1] != '\n')
            text[n++] = '\n';
    } else {
        memcpy(text, "V\t2\n\n", 5);
        n = 5;
    }
    text[n] = '\0';
    char sep = wp_imap_storage_separator(c);
    for (size_t i = 0; i < nnames; i++) {
        char *line = wp_imap_subscription_line(names[i], ns_prefix_len(c, names[i]), sep);
        if (!v2)
            for (char *p = line; *p; p++)
                if (*p == '\t')
                    *p = sep;
        if (!has_line(text, line)) {
            size_t l = strlen(line);
            memcpy(text + n, line, l);
            n += l;
            text[n++] = '\n';
            text[n] = '\0';
        }
        free(line);
        free(names[i]);
    }
    free(names);
    int rc = write_file(path, text, n);
    if (rc != 0)
        snprintf(why, whysize, "%s: %s", path, strerror(errno));
    free(text), free(old), free(path);
    return rc;
}

static int add_aliases(const struct wp_imap_conf *c, const char *home, char *why, size_t whysize)
{
    for (size_t i = 0; i < c->naliases; i++) {
        char *dir = wp_asprintf("%s/" WP_IMAP_ALIAS_DIR "/%s", home, c->aliases[i].name);
        char *file = wp_asprintf("%s/dovecot-virtual", dir);
        struct stat st;
        int rc = 0;
        if (lstat(dir, &st) == 0) {
            /* the user's own alias of that name stays */
        } else if (mkdirs(dir) != 0) {
            snprintf(why, whysize, "%s: %s", dir, strerror(errno));
            rc = -1;
        } else {
            char *text = wp_imap_alias_virtual(c->aliases[i].target);
            if (write_file(file, text, strlen(text)) != 0) {
                snprintf(why, whysize, "%s: %s", file, strerror(errno));
                rc = -1;
            }
            free(text);
        }
        free(file), free(dir);
        if (rc != 0)
            return -1;
    }
    return 0;
}

int wp_imap_template_apply(const struct wp_imap_conf *c, const char *home, char *why, size_t whysize)
{
    why[0] = '\0';
    if (home[0] != '/') {
        snprintf(why, whysize, "home '%s' is not an absolute path", home);
        return -1;
    }
    char *marker = wp_asprintf("%s/" WP_IMAP_TEMPLATE_MARKER, home);
    struct stat st;
    if (lstat(marker, &st) == 0) {
        free(marker);
        return 0;
    }
    int rc = -1;
    char *root = wp_imap_mail_root(c, home);
    if (!root)
        snprintf(why, whysize, "imap.mail_location '%s' is not supported", c->mail_location);
    else if (mkdirs(root) != 0)
        snprintf(why, whysize, "%s: %s", root, strerror(errno));
    else if (add_subscriptions(c, root, why, whysize) == 0 && add_aliases(c, home, why, whysize) == 0) {
        /* Last: a failure above leaves no marker, so the next login retries. */
        int fd = open(marker, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
        if (fd >= 0 || errno == EEXIST) {
            rc = 1;
            if (fd >= 0)
                close(fd);
        } else {
            snprintf(why, whysize, "%s: %s", marker, strerror(errno));
        }
    }
    free(root), free(marker);
    return rc;
}
