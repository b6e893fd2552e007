/* SPDX-License-Identifier: MIT */
/*
 * accounts.c - account sources: fixed list, passwd-file, Dovecot auth-userdb.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "router/accounts.h"
#include "lib/daemon.h"
#include "lib/defaults.h"
#include "lib/log.h"
#include "lib/strmap.h"
#include "lib/util.h"

enum source_kind { SRC_LIST, SRC_PASSWD, SRC_USERDB };

/* A set of names: the strings live in one buffer owned by the set. */
struct name_set {
    char *buf;
    struct wp_strmap map;
};

#define USERDB_CACHE_SLOTS 1024

struct userdb_slot {
    char name[WP_LOCAL_MAX + WP_DOMAIN_MAX + 2];
    uint64_t expires_ms;
    enum wp_account_answer answer;
};

struct wp_accounts {
    enum source_kind kind;
    char *domain;
    char *path;
    int cache_ms;
    int timeout_ms;
    pthread_mutex_t lock; /* guards everything below */
    struct name_set *names;
    uint64_t checked_ms;
    struct stat seen; /* passwd-file identity when last read */
    struct userdb_slot *cache;
};

static void set_free(struct name_set *s)
{
    if (!s)
        return;
    wp_strmap_free(&s->map);
    free(s->buf);
    free(s);
}

static void set_add(struct name_set *s, char *name)
{
    wp_str_lower(name);
    size_t n = strlen(name);
    wp_strmap_put(&s->map, wp_hash_fwd(name, n), name, n);
}

static bool set_has(const struct name_set *s, const char *name)
{
    size_t n = strlen(name);
    return wp_strmap_get(&s->map, wp_hash_fwd(name, n), name, n) != NULL;
}

/* Parse Dovecot passwd-file text; entries for other domains are skipped. */
static struct name_set *parse_passwd(char *buf, const char *domain, const char *path, struct wp_errors *err)
{
    struct name_set *s = wp_calloc(1, sizeof(*s));
    s->buf = buf;
    wp_strmap_init(&s->map, 64);
    int lineno = 0;
    for (char *line = buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        lineno++;
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p && *p != '#') {
            char *colon = strchr(p, ':');
            if (colon)
                *colon = '\0';
            char *at = strchr(p, '@');
            if (at) {
                *at = '\0';
                if (!wp_strieq(at + 1, domain))
                    p = NULL;
            }
            if (p && (!*p || strlen(p) > WP_LOCAL_MAX)) {
                if (err)
                    wp_error(err, path, lineno, "bad user name");
                p = NULL;
            }
            if (p)
                set_add(s, p);
        }
        line = nl ? nl + 1 : NULL;
    }
    return s;
}

static struct name_set *read_passwd(const char *path, const char *domain, struct stat *st, char *why,
                                    size_t whylen)
{
    if (stat(path, st) < 0) {
        snprintf(why, whylen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = wp_read_file(path, 256UL << 20, NULL, why, whylen);
    if (!buf)
        return NULL;
    return parse_passwd(buf, domain, path, NULL);
}

struct wp_accounts *wp_accounts_new(const char *spec, const char *domain, const char *basedir,
                                    int cache_seconds, int timeout_ms, const char *file, int line,
                                    struct wp_errors *err)
{
    struct wp_accounts *a = wp_calloc(1, sizeof(*a));
    a->domain = wp_strdup(domain);
    a->cache_ms = cache_seconds * 1000;
    a->timeout_ms = timeout_ms;
    pthread_mutex_init(&a->lock, NULL);

    if (strncmp(spec, "list:", 5) == 0) {
        a->kind = SRC_LIST;
        struct name_set *s = wp_calloc(1, sizeof(*s));
        s->buf = wp_strdup(spec + 5);
        wp_strmap_init(&s->map, 16);
        for (char *tok = s->buf; tok;) {
            char *comma = strchr(tok, ',');
            if (comma)
                *comma = '\0';
            while (*tok == ' ')
                tok++;
            char *e = tok + strlen(tok);
            while (e > tok && e[-1] == ' ')
                *--e = '\0';
            if (*tok) {
                if (strchr(tok, '@') || strchr(tok, '*') || strlen(tok) > WP_LOCAL_MAX)
                    wp_error(err, file, line, "bad account name '%.64s' in list:", tok);
                else
                    set_add(s, tok);
            }
            tok = comma ? comma + 1 : NULL;
        }
        a->names = s;
    } else if (strncmp(spec, "passwd-file:", 12) == 0) {
        a->kind = SRC_PASSWD;
        a->path = wp_path_relative_to(basedir, spec + 12);
        char why[512];
        struct wp_errors perr;
        wp_errors_init(&perr);
        struct stat st;
        if (stat(a->path, &st) < 0) {
            wp_error(err, file, line, "accounts file %s: %s", a->path, strerror(errno));
        } else {
            char *buf = wp_read_file(a->path, 256UL << 20, NULL, why, sizeof(why));
            if (!buf) {
                wp_error(err, file, line, "accounts file: %s", why);
            } else {
                a->names = parse_passwd(buf, domain, a->path, &perr);
                a->seen = st;
                a->checked_ms = wp_now_ms();
            }
        }
        wp_errors_move(err, &perr);
    } else if (strncmp(spec, "userdb:unix:", 12) == 0) {
        a->kind = SRC_USERDB;
        a->path = wp_path_relative_to(basedir, spec + 12);
        if (strlen(a->path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
            wp_error(err, file, line, "userdb socket path too long");
        a->cache = wp_calloc(USERDB_CACHE_SLOTS, sizeof(*a->cache));
    } else {
        wp_error(err, file, line,
                 "unknown account source '%.64s' (list:NAMES, passwd-file:PATH, userdb:unix:PATH)", spec);
    }
    return a;
}

void wp_accounts_free(struct wp_accounts *a)
{
    if (!a)
        return;
    set_free(a->names);
    free(a->cache);
    free(a->path);
    free(a->domain);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

const char *wp_accounts_kind(const struct wp_accounts *a)
{
    return a->kind == SRC_LIST ? "list" : a->kind == SRC_PASSWD ? "passwd-file" : "userdb";
}

/* Re-read the passwd-file if it changed; called with the lock held. */
static void passwd_refresh(struct wp_accounts *a)
{
    uint64_t now = wp_now_ms();
    if (a->names && now - a->checked_ms < (uint64_t)a->cache_ms)
        return;
    a->checked_ms = now;
    struct stat st;
    if (stat(a->path, &st) < 0) {
        wp_warn("accounts file %s: %s; keeping the accounts read before", a->path, strerror(errno));
        return;
    }
    if (a->names && st.st_ino == a->seen.st_ino && st.st_size == a->seen.st_size &&
        st.st_mtim.tv_sec == a->seen.st_mtim.tv_sec && st.st_mtim.tv_nsec == a->seen.st_mtim.tv_nsec)
        return;
    char why[512];
    struct name_set *s = read_passwd(a->path, a->domain, &st, why, sizeof(why));
    if (!s) {
        wp_warn("%s; keeping the accounts read before", why);
        return;
    }
    set_free(a->names);
    a->names = s;
    a->seen = st;
    wp_info("accounts file %s re-read", a->path);
}

/* One auth-master USER request.  Protocol (Dovecot auth-master):
 *   C: VERSION\t1\t0\n  USER\t1\t<name>\tservice=waypost\n
 *   S: VERSION\t1\t<minor>\n  SPID\t<pid>\n  then USER\t1\t... | NOTFOUND\t1 | FAIL\t1\t... */
static enum wp_account_answer userdb_ask(const char *path, const char *name, int timeout_ms)
{
    int fd = wp_unix_connect(path);
    if (fd < 0) {
        wp_warn("userdb %s: connect: %s", path, strerror(errno));
        return WP_ACCT_TEMP;
    }
    char req[WP_LOCAL_MAX + WP_DOMAIN_MAX + 64];
    int n = snprintf(req, sizeof(req), "VERSION\t1\t0\nUSER\t1\t%s\tservice=waypost\n", name);
    if (n < 0 || (size_t)n >= sizeof(req) || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return WP_ACCT_TEMP;
    }
    char buf[8192];
    size_t have = 0;
    uint64_t deadline = wp_now_ms() + (uint64_t)timeout_ms;
    enum wp_account_answer ans = WP_ACCT_TEMP;
    for (;;) {
        /* Look at every complete line received so far. */
        char *line = buf, *nl;
        bool done = false;
        while ((nl = memchr(line, '\n', have - (size_t)(line - buf))) != NULL) {
            *nl = '\0';
            if (strncmp(line, "USER\t1\t", 7) == 0) {
                ans = WP_ACCT_YES;
                done = true;
            } else if (strcmp(line, "NOTFOUND\t1") == 0 || strncmp(line, "NOTFOUND\t1\t", 11) == 0) {
                ans = WP_ACCT_NO;
                done = true;
            } else if (strncmp(line, "FAIL\t1", 6) == 0) {
                wp_warn("userdb %s: lookup of %s failed: %s", path, name, line);
                done = true;
            }
            line = nl + 1;
            if (done)
                break;
        }
        if (done)
            break;
        size_t rest = have - (size_t)(line - buf);
        memmove(buf, line, rest);
        have = rest;
        if (have >= sizeof(buf) - 1) {
            wp_warn("userdb %s: reply line too long", path);
            break;
        }
        uint64_t now = wp_now_ms();
        if (now >= deadline) {
            wp_warn("userdb %s: no answer within %d ms", path, timeout_ms);
            break;
        }
        struct pollfd pfd = {fd, POLLIN, 0};
        int pr = poll(&pfd, 1, (int)(deadline - now));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        ssize_t r = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
        if (r <= 0) {
            wp_warn("userdb %s: connection closed before an answer", path);
            break;
        }
        have += (size_t)r;
    }
    close(fd);
    return ans;
}

enum wp_account_answer wp_accounts_lookup(struct wp_accounts *a, const char *local)
{
    char name[WP_LOCAL_MAX + WP_DOMAIN_MAX + 2];
    size_t n = strlen(local);
    if (n > WP_LOCAL_MAX)
        return WP_ACCT_NO;
    for (size_t i = 0; i <= n; i++)
        name[i] = wp_lower(local[i]);

    if (a->kind == SRC_LIST)
        return a->names && set_has(a->names, name) ? WP_ACCT_YES : WP_ACCT_NO;
    if (a->kind == SRC_PASSWD) {
        pthread_mutex_lock(&a->lock);
        passwd_refresh(a);
        bool yes = a->names && set_has(a->names, name);
        pthread_mutex_unlock(&a->lock);
        return yes ? WP_ACCT_YES : WP_ACCT_NO;
    }
    /* userdb: the full address, with a direct-mapped cache. */
    snprintf(name + n, sizeof(name) - n, "@%s", a->domain);
    for (const char *c = name; *c; c++)
        if ((unsigned char)*c < 0x20)
            return WP_ACCT_NO; /* cannot be sent in the tab-separated protocol */
    struct userdb_slot *slot = &a->cache[wp_hash_fwd(name, strlen(name)) % USERDB_CACHE_SLOTS];
    uint64_t now = wp_now_ms();
    pthread_mutex_lock(&a->lock);
    if (strcmp(slot->name, name) == 0 && slot->expires_ms > now) {
        enum wp_account_answer cached = slot->answer;
        pthread_mutex_unlock(&a->lock);
        return cached;
    }
    pthread_mutex_unlock(&a->lock);
    enum wp_account_answer ans = userdb_ask(a->path, name, a->timeout_ms);
    if (ans != WP_ACCT_TEMP) {
        pthread_mutex_lock(&a->lock);
        wp_strlcpy(slot->name, name, sizeof(slot->name));
        slot->answer = ans;
        slot->expires_ms = now + (uint64_t)a->cache_ms;
        pthread_mutex_unlock(&a->lock);
    }
    return ans;
}
