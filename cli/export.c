/* SPDX-License-Identifier: MIT */
/*
 * export.c - `waypost export cgp --host H [--port 106] --user U
 *            --password-file F -o DIR [--force] [--timeout SECONDS]`.
 *
 * Fetches from a running CommuniGate Pro, over its CLI (the PWD protocol,
 * port 106), the data `waypost import cgp` reads, one file per command,
 * named after the command and its argument (GetDomainSettings.company.dom,
 * GetForwarder.name@company.dom), holding the data line exactly as the
 * server sent it.
 *
 * The session follows CLI.html: the server greets with "200 ...", the
 * client logs in with "USER name" (answer "300 please send the PASS") and
 * "PASS password" (answer "200 ..."), then sends commands; a command that
 * produces data is answered "200 data follow" with the data on the next
 * line, one without data "200 OK", a failure with an error line (a code
 * other than 2xx).  "QUIT" ends the session.
 *
 * Why C in the waypost command rather than a script: it validates every
 * answer with the same parser the import uses (lib/cgpdata.c), so a
 * malformed answer is refused here, with the command named, instead of
 * surfacing later; and it adds no interpreter to the package.
 *
 * Nothing is written unless the whole export succeeded: a refused login, a
 * lost connection or a malformed answer leaves DIR untouched.  A command
 * the server refuses for one domain (say ListLists without the LIST
 * module) is a warning; its file is missing and the import reports it.
 * Existing files are replaced only with --force.
 *
 * Limits: a line is at most 64 MB; every read and write has the timeout
 * (default 30 s).
 */
#include "config.h"

#include "cli/export.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "lib/cgpdata.h"
#include "lib/util.h"

#define EXPORT_LINE_MAX (64u << 20)

struct session {
    int fd;
    char *buf; /* received bytes not yet returned as lines */
    size_t len, cap;
    const char *host;
};

struct file {
    char *name;
    char *data;
};

struct export
{
    struct session s;
    struct file *files;
    size_t nfiles;
    int warnings;
};

static int connect_to(const char *host, const char *port, int timeout)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "waypost export: %s: %s\n", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    int saved = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        struct timeval tv = {.tv_sec = timeout};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        fprintf(stderr, "waypost export: cannot connect to %s port %s: %s\n", host, port, strerror(saved));
    return fd;
}

/* The next line without its CR LF, malloc'ed; NULL on EOF, error or a line
 * past the limit (reported). */
static char *read_line(struct session *s)
{
    for (;;) {
        char *nl = s->len ? memchr(s->buf, '\n', s->len) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - s->buf);
            char *line = wp_strndup(s->buf, n && s->buf[n - 1] == '\r' ? n - 1 : n);
            if (strlen(line) != (n && s->buf[n - 1] == '\r' ? n - 1 : n)) {
                fprintf(stderr, "waypost export: %s sent a zero byte\n", s->host);
                free(line);
                return NULL;
            }
            memmove(s->buf, nl + 1, s->len - n - 1);
            s->len -= n + 1;
            return line;
        }
        if (s->len >= EXPORT_LINE_MAX) {
            fprintf(stderr, "waypost export: %s sent a line longer than %u bytes\n", s->host,
                    EXPORT_LINE_MAX);
            return NULL;
        }
        if (s->cap - s->len < 65536) {
            s->cap = s->cap ? s->cap * 2 : 131072;
            s->buf = wp_realloc(s->buf, s->cap);
        }
        ssize_t r = recv(s->fd, s->buf + s->len, s->cap - s->len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            fprintf(stderr, "waypost export: %s: %s\n", s->host,
                    r == 0            ? "the connection was closed"
                    : errno == EAGAIN ? "timed out"
                                      : strerror(errno));
            return NULL;
        }
        s->len += (size_t)r;
    }
}

static bool send_line(struct session *s, const char *line)
{
    char *l = wp_asprintf("%s\r\n", line);
    size_t n = strlen(l), off = 0;
    while (off < n) {
        ssize_t w = send(s->fd, l + off, n - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            fprintf(stderr, "waypost export: %s: %s\n", s->host, strerror(errno));
            free(l);
            return false;
        }
        off += (size_t)w;
    }
    free(l);
    return true;
}

/* A line that shows the peer's answer without echoing control bytes. */
static void print_answer(const char *what, const char *line)
{
    fprintf(stderr, "waypost export: %s: '", what);
    for (const unsigned char *p = (const unsigned char *)line; *p && p - (const unsigned char *)line < 200;
         p++)
        fputc(*p >= ' ' && *p < 0x7f ? *p : '?', stderr);
    fputs("'\n", stderr);
}

/* A CommuniGate quoted string of s, for command arguments. */
static char *quote(const char *s)
{
    size_t n = strlen(s);
    char *q = wp_malloc(2 * n + 3), *p = q;
    *p++ = '"';
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            *p++ = '\\';
        *p++ = *s;
    }
    *p++ = '"';
    *p = '\0';
    return q;
}

enum answer { ANS_DATA, ANS_OK, ANS_REFUSED, ANS_BROKEN };

/* Send one command; on ANS_DATA *data is the parsed data line (and *raw
 * its text).  Every way the answer can be wrong is ANS_BROKEN, reported. */
static enum answer command(struct export *ex, const char *cmd, char **raw, struct wp_cgp **data)
{
    *raw = NULL;
    *data = NULL;
    if (!send_line(&ex->s, cmd))
        return ANS_BROKEN;
    char *line = read_line(&ex->s);
    if (!line)
        return ANS_BROKEN;
    enum answer a;
    if (strncmp(line, "200 data follow", 15) == 0) {
        char *d = read_line(&ex->s);
        if (!d) {
            free(line);
            return ANS_BROKEN;
        }
        char err[256];
        *data = wp_cgp_parse(d, strlen(d), err, sizeof(err));
        if (!*data) {
            fprintf(stderr, "waypost export: %s: malformed data from %s: %s\n", cmd, ex->s.host, err);
            free(d);
            a = ANS_BROKEN;
        } else {
            *raw = d;
            a = ANS_DATA;
        }
    } else if (line[0] == '2' && isdigit((unsigned char)line[1]) && isdigit((unsigned char)line[2]) &&
               (line[3] == ' ' || line[3] == '\0')) {
        a = ANS_OK;
    } else if (isdigit((unsigned char)line[0]) && line[0] >= '3' && isdigit((unsigned char)line[1]) &&
               isdigit((unsigned char)line[2]) && (line[3] == ' ' || line[3] == '\0')) {
        print_answer(cmd, line);
        a = ANS_REFUSED;
    } else {
        print_answer(cmd, line);
        fprintf(stderr, "waypost export: %s: not a CLI answer from %s\n", cmd, ex->s.host);
        a = ANS_BROKEN;
    }
    free(line);
    return a;
}

/* A name from the server that may become part of a file name. */
static bool safe_name(const char *s)
{
    if (!*s || *s == '.' || strlen(s) > 255 - 32)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == '/' || *p == '\\' || *p == 0x7f || *p == '"')
            return false;
    return true;
}

/* Run "Verb [arg]" and keep its data as the file "Verb[.arg]".  required:
 * a refusal or "200 OK" is an error.  Returns false on errors; *tree (if
 * asked for) receives the parsed data. */
static bool fetch(struct export *ex, const char *verb, const char *arg, bool required, struct wp_cgp **tree)
{
    if (tree)
        *tree = NULL;
    char *q = arg ? quote(arg) : NULL;
    char *cmd = arg ? wp_asprintf("%s %s", verb, q) : wp_strdup(verb);
    free(q);
    char *raw;
    struct wp_cgp *data;
    enum answer a = command(ex, cmd, &raw, &data);
    bool ok = true;
    if (a == ANS_DATA) {
        ex->files = wp_realloc(ex->files, (ex->nfiles + 1) * sizeof(*ex->files));
        ex->files[ex->nfiles].name = arg ? wp_asprintf("%s.%s", verb, arg) : wp_strdup(verb);
        ex->files[ex->nfiles].data = raw;
        ex->nfiles++;
        if (tree)
            *tree = data;
        else
            wp_cgp_free(data);
    } else if (a == ANS_BROKEN) {
        ok = false;
    } else if (required) {
        fprintf(stderr, "waypost export: %s: %s\n", cmd, a == ANS_OK ? "the server sent no data" : "refused");
        ok = false;
    } else {
        fprintf(stderr, "waypost export: %s: %s; its file is left out (warning)\n", cmd,
                a == ANS_OK ? "no data" : "refused");
        ex->warnings++;
    }
    free(cmd);
    return ok;
}

/* The names of an array answer (ListForwarders, ListGroups). */
static bool names_of(const struct wp_cgp *v, const char *what, size_t i, const char **out)
{
    const char *s = wp_cgp_str(wp_cgp_item(v, i));
    if (!s || !safe_name(s)) {
        fprintf(stderr, "waypost export: %s: item %zu is not a name\n", what, i + 1);
        return false;
    }
    *out = s;
    return true;
}

static bool export_domain(struct export *ex, const char *d)
{
    if (!fetch(ex, "GetDomainSettings", d, false, NULL) || !fetch(ex, "GetDomainAliases", d, false, NULL) ||
        !fetch(ex, "ListAccounts", d, false, NULL) || !fetch(ex, "ListLists", d, false, NULL))
        return false;
    static const char *const lists[][2] = {{"ListForwarders", "GetForwarder"}, {"ListGroups", "GetGroup"}};
    for (size_t k = 0; k < 2; k++) {
        struct wp_cgp *v;
        if (!fetch(ex, lists[k][0], d, false, &v))
            return false;
        if (v && v->type != WP_CGP_ARRAY) {
            fprintf(stderr, "waypost export: %s %s: an array was expected\n", lists[k][0], d);
            wp_cgp_free(v);
            return false;
        }
        for (size_t i = 0; i < wp_cgp_count(v); i++) {
            const char *n;
            if (!names_of(v, lists[k][0], i, &n)) {
                wp_cgp_free(v);
                return false;
            }
            char *addr = wp_asprintf("%s@%s", n, d);
            bool ok = fetch(ex, lists[k][1], addr, false, NULL);
            free(addr);
            if (!ok) {
                wp_cgp_free(v);
                return false;
            }
        }
        wp_cgp_free(v);
    }
    return true;
}

static int write_all(const char *dir, const struct export *ex, bool force)
{
    struct wp_outfile *out = wp_calloc(ex->nfiles + 1, sizeof(*out));
    for (size_t i = 0; i < ex->nfiles; i++)
        out[i] = (struct wp_outfile){ex->files[i].name, ex->files[i].data, strlen(ex->files[i].data), true};
    int rc = wp_write_files("waypost export", dir, out, ex->nfiles, force);
    free(out);
    return rc;
}

static void usage(FILE *out)
{
    fputs("usage: waypost export cgp --host HOST [--port 106] --user USER --password-file FILE -o DIR\n"
          "                          [--force] [--timeout SECONDS]\n",
          out);
}

int wp_export_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"user", required_argument, NULL, 'u'},
        {"password-file", required_argument, NULL, 'P'},
        {"force", no_argument, NULL, 'f'},
        {"timeout", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    const char *host = NULL, *port = "106", *user = NULL, *pwfile = NULL, *outdir = NULL;
    bool force = false;
    int timeout = 30;
    if (argc < 2 || strcmp(argv[1], "cgp") != 0) {
        usage(stderr);
        return 2;
    }
    optind = 2;
    int c;
    while ((c = getopt_long(argc, argv, "+o:", opts, NULL)) != -1) {
        switch (c) {
        case 'H': host = optarg; break;
        case 'p': port = optarg; break;
        case 'u': user = optarg; break;
        case 'P': pwfile = optarg; break;
        case 'o': outdir = optarg; break;
        case 'f': force = true; break;
        case 't':
            timeout = atoi(optarg);
            if (timeout < 1 || timeout > 3600) {
                fprintf(stderr, "waypost export: --timeout takes 1..3600 seconds\n");
                return 2;
            }
            break;
        default: usage(stderr); return 2;
        }
    }
    if (!host || !user || !pwfile || !outdir || optind != argc) {
        usage(stderr);
        return 2;
    }
    for (const char *p = user; *p; p++)
        if ((unsigned char)*p < ' ' || *p == 0x7f) {
            fprintf(stderr, "waypost export: the user name holds a control character\n");
            return 2;
        }
    char err[256];
    size_t pwlen;
    char *password = wp_read_file(pwfile, 4096, &pwlen, err, sizeof(err));
    if (!password) {
        fprintf(stderr, "waypost export: %s: %s\n", pwfile, err);
        return 1;
    }
    password[strcspn(password, "\r\n")] = '\0';

    struct export ex = {.s = {.fd = -1, .host = host}};
    int rc = 1;
    ex.s.fd = connect_to(host, port, timeout);
    if (ex.s.fd < 0)
        goto out;
    char *line = read_line(&ex.s);
    if (!line)
        goto out;
    if (strncmp(line, "200", 3) != 0) {
        print_answer("greeting", line);
        fprintf(stderr, "waypost export: %s is not a CommuniGate PWD server\n", host);
        free(line);
        goto out;
    }
    free(line);
    char *cmd = wp_asprintf("USER %s", user);
    bool sent = send_line(&ex.s, cmd);
    free(cmd);
    line = sent ? read_line(&ex.s) : NULL;
    if (!line)
        goto out;
    bool ok = strncmp(line, "300", 3) == 0;
    if (!ok)
        print_answer("USER", line);
    free(line);
    if (ok) {
        cmd = wp_asprintf("PASS %s", password);
        sent = send_line(&ex.s, cmd);
        explicit_bzero(cmd, strlen(cmd));
        free(cmd);
        line = sent ? read_line(&ex.s) : NULL;
        if (!line)
            goto out;
        ok = strncmp(line, "200", 3) == 0;
        if (!ok)
            print_answer("PASS", line);
        free(line);
    }
    if (!ok) {
        fprintf(stderr, "waypost export: %s refused the login of %s; nothing written\n", host, user);
        goto out;
    }

    struct wp_cgp *domains = NULL;
    if (!fetch(&ex, "MainDomainName", NULL, true, NULL) || !fetch(&ex, "ListDomains", NULL, true, &domains) ||
        !fetch(&ex, "GetRouterTable", NULL, false, NULL) ||
        !fetch(&ex, "GetServerMailRules", NULL, false, NULL))
        goto fail;
    if (domains->type != WP_CGP_ARRAY) {
        fprintf(stderr, "waypost export: ListDomains: an array was expected\n");
        goto fail;
    }
    for (size_t i = 0; i < domains->n; i++) {
        const char *d;
        if (!names_of(domains, "ListDomains", i, &d) || !export_domain(&ex, d))
            goto fail;
    }
    wp_cgp_free(domains);
    domains = NULL;
    if (send_line(&ex.s, "QUIT"))
        free(read_line(&ex.s)); /* the server's goodbye; the data is complete either way */
    rc = write_all(outdir, &ex, force);
    if (rc == 0)
        printf("waypost export: %zu files written to %s%s\n", ex.nfiles, outdir,
               ex.warnings ? " (see the warnings above)" : "");
    goto out;
fail:
    wp_cgp_free(domains);
    fprintf(stderr, "waypost export: nothing written\n");
out:
    if (ex.s.fd >= 0)
        close(ex.s.fd);
    explicit_bzero(password, strlen(password));
    free(password);
    free(ex.s.buf);
    for (size_t i = 0; i < ex.nfiles; i++) {
        free(ex.files[i].name);
        free(ex.files[i].data);
    }
    free(ex.files);
    return rc;
}
